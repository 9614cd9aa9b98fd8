//! Variables: `${...}` in scenario strings, the store of captured results
//! ([`Captures`]), substitution ([`substitute`]) and secret redaction
//! ([`redact`]).
//!
//! A reference is a param (`${bundles}`), a built-in (`${iteration}`), or a
//! capture root followed by a dotted path (`${alice.mnemonic}`,
//! `${x.coins.0.confirmed}`: numeric segments index arrays). A string that
//! is exactly one `${...}` becomes the referenced JSON value itself, keeping
//! its type; otherwise each `${...}` is spliced in as text (strings
//! unquoted, other values as compact JSON). `$${` writes a literal `${`.
//! Params are literals: they are never substituted themselves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

mod template;

pub use template::{Segment, is_name, parse_template, references};

/// What a redacted value is replaced with in logs and reports.
pub const REDACTED: &str = "<redacted>";

/// Names the runner defines on its own, always in scope.
pub const BUILTIN_NAMES: [&str; 2] = ["iteration", "repeat_index"];

/// Values of the built-in variables for the step being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Builtins {
    /// The soak iteration, from 1 (`${iteration}`).
    pub iteration: u64,
    /// The index within a repeated step, from 0 (`${repeat_index}`); 0 for
    /// a step without `repeat`.
    pub repeat_index: u64,
}

impl Builtins {
    fn get(&self, name: &str) -> Option<Value> {
        match name {
            "iteration" => Some(Value::from(self.iteration)),
            "repeat_index" => Some(Value::from(self.repeat_index)),
            _ => None,
        }
    }
}

/// Why a variable could not be resolved; one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// `${` without `}`, or a name with characters outside
    /// `A-Z a-z 0-9 _ - .`.
    #[error("bad variable in `{text}`: {reason}")]
    Syntax {
        /// The string holding it.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// The root names no param, built-in or capture.
    #[error("unknown variable `${{{reference}}}` (defined: {})", defined.join(", "))]
    Unknown {
        /// The reference, without `${}`.
        reference: String,
        /// What is defined, sorted.
        defined: Vec<String>,
    },
    /// The root exists but the path leads nowhere.
    #[error("`${{{reference}}}`: {reason}")]
    Missing {
        /// The reference, without `${}`.
        reference: String,
        /// Which segment failed and what was there.
        reason: String,
    },
    /// A `repeat` variable that is not a non-negative integer.
    #[error("repeat `${{{reference}}}` is `{value}`, not a non-negative integer")]
    NotACount {
        /// The reference, without `${}`.
        reference: String,
        /// What it resolved to, as compact JSON.
        value: String,
    },
}

/// Results captured so far, as one JSON object: `set("before.alice", v)`
/// makes `{"before": {"alice": v}}`. Remembers which paths are secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Captures {
    root: Map<String, Value>,
    secrets: BTreeSet<String>,
}

impl Captures {
    /// An empty store.
    pub fn new() -> Self {
        Captures::default()
    }

    /// Stores `value` under a dotted name, creating objects along the way
    /// (a numeric segment indexes an existing array; anything else in the
    /// way is replaced by an object); a later capture of the same name wins.
    pub fn set(&mut self, dotted_name: &str, value: Value) {
        let segments: Vec<&str> = dotted_name.split('.').collect();
        let mut root = Value::Object(std::mem::take(&mut self.root));
        set_in(&mut root, &segments, value);
        if let Value::Object(map) = root {
            self.root = map;
        }
    }

    /// Stores an op result under `dotted_name` (as [`Captures::set`]) and
    /// marks every field in it named in `secret_field_names` (what the
    /// peer's `hello` lists, e.g. `mnemonic`) as secret, at any depth.
    pub fn capture(&mut self, dotted_name: &str, value: Value, secret_field_names: &[String]) {
        let mut secret_paths = Vec::new();
        collect_secret_paths(dotted_name, &value, secret_field_names, &mut secret_paths);
        self.set(dotted_name, value);
        for path in secret_paths {
            self.mark_secret(&path);
        }
    }

    /// The value at a dotted path (numeric segments index arrays).
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut segments = path.split('.');
        let mut current = self.root.get(segments.next()?)?;
        for segment in segments {
            current = step_into(current, segment)?;
        }
        Some(current)
    }

    /// Marks a dotted path as secret: [`Captures::redacted`] hides it.
    pub fn mark_secret(&mut self, dotted_path: &str) {
        self.secrets.insert(dotted_path.to_owned());
    }

    /// Whether `path` is, or lies inside, a path marked secret.
    pub fn is_secret(&self, path: &str) -> bool {
        self.secrets
            .iter()
            .any(|secret| path == secret || path.starts_with(&format!("{secret}.")))
    }

    /// The top-level capture names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.root.keys().cloned().collect()
    }

    /// Everything captured, as one JSON object.
    pub fn as_value(&self) -> Value {
        Value::Object(self.root.clone())
    }

    /// Everything captured, with secret paths replaced by `<redacted>`:
    /// what may go into a log or report.
    pub fn redacted(&self) -> Value {
        let mut copy = Captures {
            root: self.root.clone(),
            secrets: BTreeSet::new(),
        };
        for secret in &self.secrets {
            // Replaced in place: `set` would turn an array on the path
            // (`keys.0.mnemonic`) into an object.
            if let Some(slot) = copy.get_mut(secret) {
                *slot = Value::String(REDACTED.to_owned());
            }
        }
        copy.as_value()
    }

    fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        let mut segments = path.split('.');
        let mut current = self.root.get_mut(segments.next()?)?;
        for segment in segments {
            current = match current {
                Value::Object(map) => map.get_mut(segment)?,
                Value::Array(items) => items.get_mut(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

fn set_in(target: &mut Value, segments: &[&str], value: Value) {
    let Some((first, rest)) = segments.split_first() else {
        *target = value;
        return;
    };
    if let Value::Array(items) = target
        && let Some(item) = first.parse::<usize>().ok().and_then(|i| items.get_mut(i))
    {
        return set_in(item, rest, value);
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        let slot = map.entry((*first).to_owned()).or_insert(Value::Null);
        set_in(slot, rest, value);
    }
}

fn collect_secret_paths(path: &str, value: &Value, names: &[String], out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let inner = format!("{path}.{key}");
                if names.iter().any(|n| n == key) {
                    out.push(inner);
                } else {
                    collect_secret_paths(&inner, item, names, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_secret_paths(&format!("{path}.{i}"), item, names, out);
            }
        }
        _ => {}
    }
}

fn step_into<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

/// Resolves one reference (without `${}`): built-ins, then params, then
/// captures.
pub fn lookup(
    reference: &str,
    captures: &Captures,
    params: &BTreeMap<String, Value>,
    builtins: &Builtins,
) -> Result<Value, VarError> {
    let mut segments = reference.split('.');
    let root = segments.next().unwrap_or_default();
    let builtin = builtins.get(root);
    let mut current: &Value = match (&builtin, params.get(root), captures.root.get(root)) {
        (Some(value), _, _) | (None, Some(value), _) | (None, None, Some(value)) => value,
        (None, None, None) => {
            let mut defined: BTreeSet<String> = params.keys().cloned().collect();
            defined.extend(captures.names());
            defined.extend(BUILTIN_NAMES.iter().map(|s| (*s).to_owned()));
            return Err(VarError::Unknown {
                reference: reference.to_owned(),
                defined: defined.into_iter().collect(),
            });
        }
    };
    let mut walked = root.to_owned();
    for segment in segments {
        current = step_into(current, segment).ok_or_else(|| VarError::Missing {
            reference: reference.to_owned(),
            reason: missing_reason(&walked, current, segment),
        })?;
        walked = format!("{walked}.{segment}");
    }
    Ok(current.clone())
}

fn missing_reason(walked: &str, value: &Value, segment: &str) -> String {
    match value {
        Value::Object(map) => format!(
            "no field `{segment}` in `{walked}` (fields: {})",
            map.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        Value::Array(items) => format!(
            "`{walked}` has {} element(s); `{segment}` is not an index of it",
            items.len()
        ),
        other => format!("`{walked}` is `{other}`, which has no field `{segment}`"),
    }
}

/// Replaces every variable in `value` (recursively through arrays and
/// object values; keys stay literal).
pub fn substitute(
    value: &Value,
    captures: &Captures,
    params: &BTreeMap<String, Value>,
    builtins: &Builtins,
) -> Result<Value, VarError> {
    Ok(match value {
        Value::String(text) => substitute_str(text, captures, params, builtins)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute(item, captures, params, builtins))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), substitute(item, captures, params, builtins)?)))
                .collect::<Result<_, VarError>>()?,
        ),
        other => other.clone(),
    })
}

/// Substitutes one string: a lone `${...}` keeps the value's type,
/// anything else is interpolated as text.
pub fn substitute_str(
    text: &str,
    captures: &Captures,
    params: &BTreeMap<String, Value>,
    builtins: &Builtins,
) -> Result<Value, VarError> {
    let segments = parse_template(text)?;
    if let [Segment::Var(reference)] = segments.as_slice() {
        return lookup(reference, captures, params, builtins);
    }
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Literal(literal) => out.push_str(&literal),
            Segment::Var(reference) => match lookup(&reference, captures, params, builtins)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

/// Resolves a step's `repeat` to a count.
pub fn resolve_repeat(
    repeat: &super::model::RepeatCount,
    captures: &Captures,
    params: &BTreeMap<String, Value>,
    builtins: &Builtins,
) -> Result<u64, VarError> {
    match repeat {
        super::model::RepeatCount::Fixed(count) => Ok(*count),
        super::model::RepeatCount::Var(reference) => {
            let value = lookup(reference, captures, params, builtins)?;
            as_count(&value).ok_or_else(|| VarError::NotACount {
                reference: reference.clone(),
                value: value.to_string(),
            })
        }
    }
}

/// A non-negative integer, given as a JSON integer or a decimal string
/// (a `--set` override may arrive as either).
pub fn as_count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A copy of `value` with every object field named in `secret_field_names`
/// (at any depth) replaced by `"<redacted>"`: what the runner logs.
pub fn redact(value: &Value, secret_field_names: &[String]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let item = if secret_field_names.iter().any(|s| s == key) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact(item, secret_field_names)
                    };
                    (key.clone(), item)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| redact(item, secret_field_names))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
