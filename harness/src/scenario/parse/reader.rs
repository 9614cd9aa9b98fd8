//! Reading a spanned TOML tree (`toml::de::DeTable`) field by field, with
//! every error pointing at the key or value it is about.

use std::ops::Range;

use serde_json::{Map, Number, Value};
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::super::{
    ScenarioError,
    model::{Location, MAX_TIMEOUT_MS},
    vars,
};

/// A `${...}` reference found in the text, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    /// The reference without `${}` (`alice.mnemonic`).
    pub(crate) reference: String,
    /// Where it is written.
    pub(crate) location: Location,
}

/// The scenario text and its path, for turning byte spans into
/// `file:line:col` errors.
pub(crate) struct Doc<'t> {
    pub(crate) path: String,
    pub(crate) text: &'t str,
}

impl Doc<'_> {
    /// The 1-based line and column (in characters) of a byte offset.
    pub(crate) fn loc(&self, offset: usize) -> Location {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    pub(crate) fn err(&self, span: &Range<usize>, message: impl Into<String>) -> ScenarioError {
        self.err_at(self.loc(span.start), message)
    }

    pub(crate) fn err_at(&self, location: Location, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.clone(),
            location,
            message: message.into(),
        }
    }

    /// Converts a TOML value to JSON, collecting the variable references in
    /// its strings (located at the `${` when the string is written plainly,
    /// else at the string).
    pub(crate) fn to_json(
        &self,
        value: &Spanned<DeValue<'_>>,
        refs: &mut Vec<VarRef>,
    ) -> Result<Value, ScenarioError> {
        self.convert(value, &mut Some(refs))
    }

    /// Converts a TOML value to JSON as a literal: `${` in its strings is
    /// plain text (params are never substituted).
    pub(crate) fn to_json_literal(
        &self,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<Value, ScenarioError> {
        self.convert(value, &mut None)
    }

    /// Records the `${...}` references of a string value.
    fn collect_refs(
        &self,
        text: &str,
        span: &Range<usize>,
        refs: &mut Vec<VarRef>,
    ) -> Result<(), ScenarioError> {
        let found = vars::references(text).map_err(|e| self.err(span, e.to_string()))?;
        let raw = self.text.get(span.clone()).unwrap_or_default();
        for reference in found {
            // Exact when the TOML string is written without escapes;
            // otherwise the string's start is close enough.
            let offset = raw
                .find(&format!("${{{reference}}}"))
                .map_or(span.start, |at| span.start + at);
            refs.push(VarRef {
                reference,
                location: self.loc(offset),
            });
        }
        Ok(())
    }

    fn convert(
        &self,
        value: &Spanned<DeValue<'_>>,
        refs: &mut Option<&mut Vec<VarRef>>,
    ) -> Result<Value, ScenarioError> {
        let span = value.span();
        Ok(match value.get_ref() {
            DeValue::String(s) => {
                if let Some(refs) = refs.as_deref_mut() {
                    self.collect_refs(s, &span, refs)?;
                }
                Value::String(s.to_string())
            }
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .map(Value::from)
                .map_err(|_| self.err(&span, format!("integer `{i}` does not fit in 64 bits")))?,
            DeValue::Float(f) => f
                .as_str()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| self.err(&span, format!("float `{f}` has no JSON form")))?,
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.convert(item, refs))
                    .collect::<Result<_, _>>()?,
            ),
            DeValue::Table(table) => {
                let mut map = Map::new();
                for (key, item) in table.iter() {
                    map.insert(key.get_ref().to_string(), self.convert(item, refs)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// What a TOML value is, in error messages.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One TOML table being read: `what` names it in messages (`step`,
/// `[defaults]`).
pub(crate) struct Fields<'a, 'i> {
    pub(crate) doc: &'a Doc<'a>,
    pub(crate) table: &'a DeTable<'i>,
    pub(crate) span: Range<usize>,
    pub(crate) what: String,
}

impl<'a, 'i> Fields<'a, 'i> {
    /// A reader for a value that must be a table.
    pub(crate) fn of(
        doc: &'a Doc<'a>,
        value: &'a Spanned<DeValue<'i>>,
        what: impl Into<String>,
    ) -> Result<Self, ScenarioError> {
        let what = what.into();
        match value.get_ref() {
            DeValue::Table(table) => Ok(Fields {
                doc,
                table,
                span: value.span(),
                what,
            }),
            other => Err(doc.err(
                &value.span(),
                format!("{what} must be a table, not {}", type_name(other)),
            )),
        }
    }

    /// The same table, called `what` in messages.
    pub(crate) fn named(&self, what: &str) -> Fields<'a, 'i> {
        Fields {
            doc: self.doc,
            table: self.table,
            span: self.span.clone(),
            what: what.to_owned(),
        }
    }

    /// Refuses any key not in `allowed`, naming the first one in the text.
    pub(crate) fn deny_unknown(&self, allowed: &[&str]) -> Result<(), ScenarioError> {
        let unknown = self
            .table
            .iter()
            .filter(|(key, _)| !allowed.contains(&key.get_ref().as_ref()))
            .min_by_key(|(key, _)| key.span().start);
        match unknown {
            None => Ok(()),
            Some((key, _)) => Err(self.doc.err(
                &key.span(),
                format!(
                    "unknown field `{}` in {} (allowed: {})",
                    key.get_ref(),
                    self.what,
                    allowed.join(", ")
                ),
            )),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    /// Where a key is written, if present.
    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get_key_value(key).map(|(k, _)| k.span())
    }

    pub(crate) fn missing(&self, key: &str) -> ScenarioError {
        self.doc.err(
            &self.span,
            format!("missing field `{key}` in {}", self.what),
        )
    }

    pub(crate) fn bad_type(&self, key: &str, expected: &str) -> ScenarioError {
        match self.get(key) {
            Some(value) => self.doc.err(
                &value.span(),
                format!(
                    "`{key}` in {} must be {expected}, not {}",
                    self.what,
                    type_name(value.get_ref())
                ),
            ),
            None => self.missing(key),
        }
    }

    /// An optional string field, with its location.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<(String, Location)>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                DeValue::String(s) => Ok(Some((s.to_string(), self.doc.loc(value.span().start)))),
                _ => Err(self.bad_type(key, "a string")),
            },
        }
    }

    pub(crate) fn req_str(&self, key: &str) -> Result<(String, Location), ScenarioError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A required string that must be a (dotted, if allowed) name.
    pub(crate) fn req_name(
        &self,
        key: &str,
        dotted: bool,
    ) -> Result<(String, Location), ScenarioError> {
        let (name, location) = self.req_str(key)?;
        self.check_name(key, &name, location, dotted)?;
        Ok((name, location))
    }

    pub(crate) fn check_name(
        &self,
        key: &str,
        name: &str,
        location: Location,
        dotted: bool,
    ) -> Result<(), ScenarioError> {
        let valid = if dotted {
            name.split('.').all(vars::is_name)
        } else {
            vars::is_name(name)
        };
        if valid {
            return Ok(());
        }
        let shape = if dotted { "a dotted name" } else { "a name" };
        Err(self.doc.err_at(
            location,
            format!("`{key}` `{name}` must be {shape} (letters, digits, `_`, `-`)"),
        ))
    }

    /// An optional positive integer of milliseconds, at most
    /// [`MAX_TIMEOUT_MS`].
    pub(crate) fn opt_millis(&self, key: &str) -> Result<Option<u64>, ScenarioError> {
        let out_of_range = |value: &Spanned<DeValue<'_>>, n: &dyn std::fmt::Display| {
            self.doc.err(
                &value.span(),
                format!(
                    "`{key}` in {} must be a positive integer of milliseconds up to {MAX_TIMEOUT_MS} (a day), not `{n}`",
                    self.what
                ),
            )
        };
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        // Before the JSON conversion, which refuses `nan` and `inf` without
        // naming the key.
        if let DeValue::Float(f) = value.get_ref() {
            return Err(out_of_range(value, f));
        }
        match self.doc.to_json_literal(value)? {
            Value::Number(n)
                if n.as_u64()
                    .is_some_and(|ms| (1..=MAX_TIMEOUT_MS).contains(&ms)) =>
            {
                Ok(n.as_u64())
            }
            Value::Number(n) => Err(out_of_range(value, &n)),
            _ => Err(self.bad_type(key, "a positive integer of milliseconds")),
        }
    }

    /// An optional value of any type, as JSON, with its references.
    pub(crate) fn opt_json(
        &self,
        key: &str,
        refs: &mut Vec<VarRef>,
    ) -> Result<Option<Value>, ScenarioError> {
        self.get(key)
            .map(|value| self.doc.to_json(value, refs))
            .transpose()
    }

    /// An optional table, as a JSON object, with its references.
    pub(crate) fn opt_object(
        &self,
        key: &str,
        refs: &mut Vec<VarRef>,
    ) -> Result<Option<Value>, ScenarioError> {
        match self.get(key) {
            Some(value) if !matches!(value.get_ref(), DeValue::Table(_)) => {
                Err(self.bad_type(key, "a table"))
            }
            _ => self.opt_json(key, refs),
        }
    }

    /// A required array of tables, each with its span.
    pub(crate) fn req_tables(
        &self,
        key: &str,
    ) -> Result<Vec<&'a Spanned<DeValue<'i>>>, ScenarioError> {
        match self.get(key) {
            None => Err(self.missing(key)),
            Some(value) => match value.get_ref() {
                DeValue::Array(items) => Ok(items.iter().collect()),
                _ => Err(self.bad_type(key, "an array of tables")),
            },
        }
    }
}
