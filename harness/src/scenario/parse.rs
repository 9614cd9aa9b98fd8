//! Reading a scenario file into the model: [`Scenario::load`] and
//! [`Scenario::from_str`].
//!
//! The text is parsed with toml's spanned document tree
//! (`toml::de::DeTable`) rather than serde derive, so that every problem
//! (syntax, an unknown or missing field, a wrong type, a bad name) is
//! reported at the exact key or value, as `file:line:col: message`. This
//! module checks the shape of each table; cross-references (peers,
//! duplicate names, variables in scope) are [`super::validate`]'s job, fed
//! with the locations collected here (`Spans`).

mod reader;
mod step;

use std::{collections::BTreeMap, ops::Range, path::Path, time::Duration};

use serde_json::Value;
use toml::de::{DeTable, DeValue};

pub(crate) use reader::VarRef;
use reader::{Doc, Fields};

use super::{
    ScenarioError,
    model::{Defaults, Location, PeerSpec, Scenario, Section, SectionId, SourceInfo},
    validate,
    vars::BUILTIN_NAMES,
};

/// Where things are in the text, for the checks that run after parsing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spans {
    /// The `sections` key (or the file start when absent).
    pub(crate) sections: Location,
    /// The `peers` key (or the file start when absent).
    pub(crate) peers: Location,
    /// References in `[peer_env]` values.
    pub(crate) peer_env_refs: Vec<VarRef>,
    /// Per section, in order.
    pub(crate) section_spans: Vec<SectionSpans>,
}

/// Where a section's parts are.
#[derive(Debug, Clone, Default)]
pub(crate) struct SectionSpans {
    /// The `id` value.
    pub(crate) id: Location,
    /// Per step, in order.
    pub(crate) steps: Vec<StepSpans>,
}

/// Where a step's parts are.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepSpans {
    /// Field name to the location of its value (`peer`, `capture`,
    /// `snapshot`, `assert`, `repeat`, `ops`).
    pub(crate) fields: BTreeMap<&'static str, Location>,
    /// Every `${...}` in the step, in text order.
    pub(crate) refs: Vec<VarRef>,
}

impl StepSpans {
    /// The location of a field, or `fallback` (the step header).
    pub(crate) fn field(&self, name: &str, fallback: Location) -> Location {
        self.fields.get(name).copied().unwrap_or(fallback)
    }
}

const TOP_FIELDS: [&str; 7] = [
    "name",
    "description",
    "params",
    "defaults",
    "peer_env",
    "peers",
    "sections",
];

impl Scenario {
    /// Reads, parses and validates a scenario file; `overrides` set params
    /// (`--set bundles=5`).
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_str(path, &text, overrides)
    }

    /// Parses and validates scenario text; `path` is used in messages and
    /// kept in [`SourceInfo`].
    pub fn from_str(
        path: impl AsRef<Path>,
        text: &str,
        overrides: &[(String, String)],
    ) -> Result<Scenario, ScenarioError> {
        let (scenario, spans) = parse(path.as_ref(), text, overrides)?;
        validate::validate(&scenario, &spans)?;
        Ok(scenario)
    }
}

/// Parses the text into a [`Scenario`] and the locations validation needs.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    overrides: &[(String, String)],
) -> Result<(Scenario, Spans), ScenarioError> {
    let doc = Doc {
        path: path.display().to_string(),
        text,
    };
    let root = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        // One line, whatever the parser's message spans.
        let message: Vec<&str> = e.message().lines().map(str::trim).collect();
        doc.err(&span, format!("TOML syntax: {}", message.join(" ").trim()))
    })?;
    let root_value = toml::Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let top = Fields::of(&doc, &root_value, "the scenario")?;
    top.deny_unknown(&TOP_FIELDS)?;
    let mut spans = Spans {
        sections: top
            .key_span("sections")
            .map_or(doc.loc(0), |s| doc.loc(s.start)),
        peers: top
            .key_span("peers")
            .map_or(doc.loc(0), |s| doc.loc(s.start)),
        ..Spans::default()
    };

    let (name, name_at) = top.req_str("name")?;
    // The name heads every report and run manifest; an empty one leaves
    // them unlabelled.
    if name.trim().is_empty() {
        return Err(doc.err_at(
            name_at,
            "`name` of the scenario is empty; give it a short name, e.g. name = \"smoke\"",
        ));
    }
    let description = top
        .opt_str("description")?
        .map(|(d, _)| d)
        .unwrap_or_default();
    let mut params = read_params(&top)?;
    apply_overrides(&top, &mut params, overrides)?;
    let defaults = read_defaults(&top)?;
    let peer_env = read_peer_env(&top, &mut spans.peer_env_refs)?;
    let peers = top
        .req_tables("peers")?
        .into_iter()
        .map(|value| {
            let fields = Fields::of(&doc, value, "a peer")?;
            fields.deny_unknown(&["name"])?;
            let (name, location) = fields.req_name("name", false)?;
            Ok(PeerSpec { name, location })
        })
        .collect::<Result<Vec<_>, ScenarioError>>()?;

    let mut sections = Vec::new();
    for value in top.req_tables("sections")? {
        let (section, section_spans) = read_section(&doc, value)?;
        sections.push(section);
        spans.section_spans.push(section_spans);
    }

    let scenario = Scenario {
        name,
        description,
        params,
        defaults,
        peer_env,
        peers,
        sections,
        source: SourceInfo {
            path: path.to_path_buf(),
            text: text.to_owned(),
        },
    };
    Ok((scenario, spans))
}

/// `[params]`: literal values (never substituted), named like variables.
fn read_params(top: &Fields<'_, '_>) -> Result<BTreeMap<String, Value>, ScenarioError> {
    let mut params = BTreeMap::new();
    let Some(value) = top.get("params") else {
        return Ok(params);
    };
    let fields = Fields::of(top.doc, value, "[params]")?;
    for (key, item) in fields.table.iter() {
        let name = key.get_ref().to_string();
        let at = top.doc.loc(key.span().start);
        fields.check_name("param", &name, at, false)?;
        if BUILTIN_NAMES.contains(&name.as_str()) {
            return Err(top.doc.err_at(
                at,
                format!("param `{name}` would hide the built-in variable `${{{name}}}`"),
            ));
        }
        params.insert(name, top.doc.to_json_literal(item)?);
    }
    Ok(params)
}

/// `--set name=value`: the value keeps the declared param's type. A string
/// param takes the text verbatim (so `invoice_amount=11000000` stays the
/// string an amount must be); any other param takes the text parsed as a
/// TOML value, which must have the declared type.
fn apply_overrides(
    top: &Fields<'_, '_>,
    params: &mut BTreeMap<String, Value>,
    overrides: &[(String, String)],
) -> Result<(), ScenarioError> {
    let at: Range<usize> = top
        .key_span("params")
        .or_else(|| top.get("params").map(|v| v.span()))
        .unwrap_or(0..0);
    for (name, text) in overrides {
        let Some(declared) = params.get(name) else {
            let declared: Vec<&str> = params.keys().map(String::as_str).collect();
            return Err(top.doc.err(
                &at,
                format!(
                    "cannot set `{name}={text}`: the scenario declares no param `{name}` (declared params: {})",
                    if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
                ),
            ));
        };
        let value = if declared.is_string() {
            Value::String(text.clone())
        } else {
            let parsed = DeValue::parse(text).ok().and_then(|v| {
                let inner = Doc {
                    path: String::new(),
                    text,
                };
                inner.to_json_literal(&v).ok()
            });
            match parsed {
                Some(value) if same_type(declared, &value) => value,
                _ => {
                    return Err(top.doc.err(
                        &at,
                        format!(
                            "cannot set `{name}={text}`: param `{name}` is {} (declared `{declared}`)",
                            json_type(declared)
                        ),
                    ));
                }
            }
        };
        params.insert(name.clone(), value);
    }
    Ok(())
}

fn same_type(declared: &Value, value: &Value) -> bool {
    match (declared, value) {
        (Value::Number(d), Value::Number(v)) => d.is_f64() || !v.is_f64(),
        _ => json_type(declared) == json_type(value),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn read_defaults(top: &Fields<'_, '_>) -> Result<Defaults, ScenarioError> {
    let Some(value) = top.get("defaults") else {
        return Ok(Defaults::default());
    };
    let fields = Fields::of(top.doc, value, "[defaults]")?;
    fields.deny_unknown(&["timeout_ms"])?;
    Ok(fields
        .opt_millis("timeout_ms")?
        .map_or_else(Defaults::default, |ms| Defaults {
            timeout: Duration::from_millis(ms),
        }))
}

/// `[peer_env]`: string values, variables allowed (params and built-ins).
fn read_peer_env(
    top: &Fields<'_, '_>,
    refs: &mut Vec<VarRef>,
) -> Result<BTreeMap<String, String>, ScenarioError> {
    let mut env = BTreeMap::new();
    let Some(value) = top.get("peer_env") else {
        return Ok(env);
    };
    let fields = Fields::of(top.doc, value, "[peer_env]")?;
    for (key, item) in fields.table.iter() {
        let name = key.get_ref().to_string();
        match top.doc.to_json(item, refs)? {
            Value::String(s) => {
                env.insert(name, s);
            }
            _ => return Err(fields.bad_type(&name, "a string")),
        }
    }
    Ok(env)
}

fn read_section(
    doc: &Doc<'_>,
    value: &toml::Spanned<DeValue<'_>>,
) -> Result<(Section, SectionSpans), ScenarioError> {
    let fields = Fields::of(doc, value, "a section")?;
    fields.deny_unknown(&["id", "title", "steps"])?;
    let (id, id_location) = fields.req_str("id")?;
    // Reports show sections as `§<id>`; an empty id is a bare `§`.
    if id.trim().is_empty() {
        return Err(doc.err_at(
            id_location,
            "section `id` is empty; give it a short id, e.g. id = \"1\"",
        ));
    }
    let (title, _) = fields.req_str("title")?;
    let mut steps = Vec::new();
    let mut spans = SectionSpans {
        id: id_location,
        steps: Vec::new(),
    };
    for step_value in fields.req_tables("steps")? {
        let (step, step_spans) = step::read_step(doc, step_value)?;
        steps.push(step);
        spans.steps.push(step_spans);
    }
    let section = Section {
        id: SectionId(id),
        title,
        steps,
        location: doc.loc(value.span().start),
    };
    Ok((section, spans))
}
