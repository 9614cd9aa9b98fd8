//! Checks across the whole scenario, run by [`super::Scenario::load`]
//! before any process starts: peers exist, section ids and assertion names
//! are unique, `repeat` params are counts, and every variable refers to
//! something defined EARLIER in document order (a param, a built-in, or a
//! capture or snapshot of an earlier step). The shape of each table was
//! already checked by [`super::parse`]; the ops a peer offers are checked
//! later, after `hello` ([`super::Scenario::check_ops`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    ScenarioError,
    model::{Location, MAX_REPEAT, RepeatCount, Scenario, StepKind},
    parse::{Spans, StepSpans, VarRef},
    vars::{self, BUILTIN_NAMES, Builtins, Captures},
};

/// Runs every check; the first problem in document order wins.
pub(crate) fn validate(scenario: &Scenario, spans: &Spans) -> Result<(), ScenarioError> {
    check_peers(scenario, spans)?;
    check_sections(scenario, spans)?;
    check_peer_env(scenario, spans)?;
    check_steps(scenario, spans)
}

fn check_peers(scenario: &Scenario, spans: &Spans) -> Result<(), ScenarioError> {
    if scenario.peers.is_empty() {
        return Err(scenario.error_at(
            spans.peers,
            "the scenario has no peers (add a `[[peers]]` table)",
        ));
    }
    let mut seen: BTreeMap<&str, Location> = BTreeMap::new();
    for peer in &scenario.peers {
        if let Some(first) = seen.insert(&peer.name, peer.location) {
            return Err(scenario.error_at(
                peer.location,
                format!(
                    "duplicate peer `{}` (first at line {})",
                    peer.name, first.line
                ),
            ));
        }
    }
    Ok(())
}

fn check_sections(scenario: &Scenario, spans: &Spans) -> Result<(), ScenarioError> {
    if scenario.sections.is_empty() {
        return Err(scenario.error_at(
            spans.sections,
            "the scenario has no sections (add a `[[sections]]` table)",
        ));
    }
    let mut seen: BTreeMap<&str, Location> = BTreeMap::new();
    for (section, section_spans) in scenario.sections.iter().zip(&spans.section_spans) {
        if let Some(first) = seen.insert(section.id.as_str(), section_spans.id) {
            return Err(scenario.error_at(
                section_spans.id,
                format!(
                    "duplicate section id `{}` (first at line {})",
                    section.id.as_str(),
                    first.line
                ),
            ));
        }
        if section.steps.is_empty() {
            return Err(scenario.error_at(
                section.location,
                format!("section {} has no steps", section.id),
            ));
        }
    }
    Ok(())
}

/// `[peer_env]` is resolved when the peers start, before any step ran, so
/// only params and built-ins are in scope.
fn check_peer_env(scenario: &Scenario, spans: &Spans) -> Result<(), ScenarioError> {
    let scope = Scope::new(&scenario.params);
    for var in &spans.peer_env_refs {
        scope.check(scenario, var, &[])?;
    }
    Ok(())
}

/// One capture made by a step: its dotted name and where it is written.
struct Defined {
    name: String,
    shown: String,
    location: Location,
}

fn check_steps(scenario: &Scenario, spans: &Spans) -> Result<(), ScenarioError> {
    // Every capture in document order, so that a reference to one made
    // later can be told apart from a typo.
    let all: Vec<Vec<Defined>> = scenario
        .steps()
        .zip(spans.section_spans.iter().flat_map(|s| &s.steps))
        .map(|((_, step), step_spans)| captures_of(&step.kind, step_spans, step.location))
        .collect();
    let peers: Vec<&str> = scenario.peers.iter().map(|p| p.name.as_str()).collect();
    let mut scope = Scope::new(&scenario.params);
    let mut assertions: BTreeMap<&str, Location> = BTreeMap::new();
    let step_spans = spans.section_spans.iter().flat_map(|s| &s.steps);
    for (index, ((_, step), step_spans)) in scenario.steps().zip(step_spans).enumerate() {
        let peer = match &step.kind {
            StepKind::Op(op) => Some(op.peer.as_str()),
            StepKind::Snapshot(snapshot) => Some(snapshot.peer.as_str()),
            StepKind::Assert(_) => None,
        };
        if let Some(peer) = peer.filter(|p| !peers.contains(p)) {
            return Err(scenario.error_at(
                step_spans.field("peer", step.location),
                format!("unknown peer `{peer}` (peers: {})", peers.join(", ")),
            ));
        }
        let later: Vec<&Defined> = all.iter().skip(index).flatten().collect();
        for var in &step_spans.refs {
            scope.check(scenario, var, &later)?;
        }
        match &step.kind {
            StepKind::Op(op) => {
                if let Some(repeat) = &op.repeat {
                    check_repeat(scenario, repeat, step_spans.field("repeat", step.location))?;
                }
            }
            StepKind::Assert(assert) => {
                let at = step_spans.field("assert", step.location);
                if let Some(first) = assertions.insert(&assert.name, at) {
                    return Err(scenario.error_at(
                        at,
                        format!(
                            "duplicate assertion name `{}` (first at line {})",
                            assert.name, first.line
                        ),
                    ));
                }
            }
            StepKind::Snapshot(_) => {}
        }
        for defined in &all[index] {
            scope.define(scenario, defined)?;
        }
    }
    Ok(())
}

fn captures_of(kind: &StepKind, spans: &StepSpans, fallback: Location) -> Vec<Defined> {
    match kind {
        StepKind::Op(op) => op
            .capture
            .iter()
            .map(|name| Defined {
                name: name.clone(),
                shown: name.clone(),
                location: spans.field("capture", fallback),
            })
            .collect(),
        StepKind::Snapshot(snapshot) => snapshot
            .ops
            .iter()
            .map(|op| Defined {
                name: format!("{}.{op}", snapshot.name),
                shown: snapshot.name.clone(),
                location: spans.field("snapshot", fallback),
            })
            .collect(),
        StepKind::Assert(_) => Vec::new(),
    }
}

/// A `repeat` naming a param must be a count now; one naming a capture is
/// checked when the step runs.
fn check_repeat(
    scenario: &Scenario,
    repeat: &RepeatCount,
    at: Location,
) -> Result<(), ScenarioError> {
    let RepeatCount::Var(reference) = repeat else {
        return Ok(());
    };
    let root = reference.split('.').next().unwrap_or_default();
    if !scenario.params.contains_key(root) && !BUILTIN_NAMES.contains(&root) {
        return Ok(());
    }
    let count = vars::resolve_repeat(
        repeat,
        &Captures::new(),
        &scenario.params,
        &Builtins::default(),
    )
    .map_err(|e| scenario.error_at(at, e.to_string()))?;
    // A param is usually set with `--set`, so say which one to lower.
    if count > MAX_REPEAT {
        return Err(scenario.error_at(
            at,
            format!(
                "repeat `${{{reference}}}` is `{count}`, more than {MAX_REPEAT} repeats; lower it (--set {root}=...)"
            ),
        ));
    }
    Ok(())
}

/// What variables may refer to at a point of the document.
struct Scope<'p> {
    params: &'p BTreeMap<String, Value>,
    /// Dotted names captured so far.
    captured: Vec<String>,
    /// The same, as written (a snapshot's name rather than `name.op`).
    shown: BTreeSet<String>,
}

impl<'p> Scope<'p> {
    fn new(params: &'p BTreeMap<String, Value>) -> Self {
        Scope {
            params,
            captured: Vec::new(),
            shown: BTreeSet::new(),
        }
    }

    fn define(&mut self, scenario: &Scenario, defined: &Defined) -> Result<(), ScenarioError> {
        let root = defined.name.split('.').next().unwrap_or_default();
        let hides = if self.params.contains_key(root) {
            Some("param")
        } else if BUILTIN_NAMES.contains(&root) {
            Some("built-in variable")
        } else {
            None
        };
        if let Some(what) = hides {
            return Err(scenario.error_at(
                defined.location,
                format!(
                    "capture `{}` would hide the {what} `${{{root}}}`",
                    defined.name
                ),
            ));
        }
        self.captured.push(defined.name.clone());
        self.shown.insert(defined.shown.clone());
        Ok(())
    }

    /// Whether a capture path and a reference path overlap: one is a
    /// prefix of the other, segment by segment (`${before.alice}` reads the
    /// snapshot `before.alice.*`; `${alice.mnemonic}` reads into `alice`).
    fn overlaps(captured: &str, reference: &str) -> bool {
        let (a, b): (Vec<&str>, Vec<&str>) = (
            captured.split('.').collect(),
            reference.split('.').collect(),
        );
        a.iter().zip(&b).all(|(x, y)| x == y)
    }

    fn check(
        &self,
        scenario: &Scenario,
        var: &VarRef,
        later: &[&Defined],
    ) -> Result<(), ScenarioError> {
        let reference = &var.reference;
        let root = reference.split('.').next().unwrap_or_default();
        if BUILTIN_NAMES.contains(&root) || self.params.contains_key(root) {
            // A path into a param (`${limits.max}`) can be checked now.
            return vars::lookup(
                reference,
                &Captures::new(),
                self.params,
                &Builtins::default(),
            )
            .map(|_| ())
            .map_err(|e| scenario.error_at(var.location, e.to_string()));
        }
        if self.captured.iter().any(|c| Self::overlaps(c, reference)) {
            return Ok(());
        }
        let message = match later.iter().find(|d| Self::overlaps(&d.name, reference)) {
            Some(defined) => format!(
                "variable `${{{reference}}}` is used before it is captured (`{}` at line {})",
                defined.name, defined.location.line
            ),
            None => format!(
                "unknown variable `${{{reference}}}` (defined so far: {})",
                self.shown().join(", ")
            ),
        };
        Err(scenario.error_at(var.location, message))
    }

    /// Params, built-ins and captures so far, sorted (a snapshot shown by
    /// its name, not once per op).
    fn shown(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.params.keys().cloned().collect();
        names.extend(BUILTIN_NAMES.iter().map(|s| (*s).to_owned()));
        names.extend(self.shown.iter().cloned());
        names.into_iter().collect()
    }
}
