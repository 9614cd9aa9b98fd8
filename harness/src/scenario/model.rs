//! The scenario as typed data: [`Scenario`], its [`Section`]s and their
//! [`Step`]s, each step knowing where it is in the file ([`Location`]) so
//! that errors found while running still point at the text.
//!
//! Values that may hold variables (`args`, `expect`, assertion operands)
//! stay `serde_json::Value` templates here; [`super::vars::substitute`]
//! resolves them when the step runs.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ScenarioError,
    vars::{Builtins, Captures, VarError, substitute_str},
};

/// Per-step timeout when neither the step nor `[defaults]` gives one.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest `timeout_ms` a scenario may give a step: a day. A larger one is
/// a typo (a hang would go unnoticed for longer than anyone waits), and
/// near `u64::MAX` milliseconds the runner's clock arithmetic overflows.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// Most times a step may `repeat`: far above any scenario (the default one
/// repeats 70 times, its benchmark 300), far below "runs for ever".
pub const MAX_REPEAT: u64 = 100_000;

/// A position in the scenario file, 1-based; shown as `line:column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where the scenario came from, kept for error messages and the run
/// folder (which stores the exact text that ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The path as given (relative paths stay relative in messages).
    pub path: PathBuf,
    /// The whole file.
    pub text: String,
}

/// A whole scenario, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name, used in run folders and reports.
    pub name: String,
    /// Free text for humans.
    pub description: String,
    /// Variables, after `--set` overrides: `${bundles}`.
    pub params: BTreeMap<String, Value>,
    /// Defaults for steps.
    pub defaults: Defaults,
    /// Environment for every peer process; values may hold `${param}`
    /// variables, resolved by the runner with [`super::vars::substitute`].
    pub peer_env: BTreeMap<String, String>,
    /// The peer roles; the runner starts one process per peer.
    pub peers: Vec<PeerSpec>,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// The file and its text.
    pub source: SourceInfo,
}

/// The `[defaults]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Per-step timeout, in plain milliseconds in the file (the runner may
    /// scale it with the time scale).
    pub timeout: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// One `[[peers]]` entry: a role the steps address by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The role's name (`peer1`).
    pub name: String,
    /// Where it is declared.
    pub location: Location,
}

/// A section's id as written (`"C.1b"`); shown as `§C.1b`. It travels
/// typed from the scenario through the records and metrics to the report
/// model, which is where it becomes display text; records store it without
/// the `§`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SectionId(pub String);

impl SectionId {
    /// The id without the `§`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id a user typed, with or without its `§`.
    pub fn parse_label(text: &str) -> SectionId {
        SectionId(text.trim().trim_start_matches('§').to_owned())
    }
}

impl From<&str> for SectionId {
    /// An id as a scenario writes it, without the `§`.
    fn from(id: &str) -> Self {
        SectionId(id.to_owned())
    }
}

impl fmt::Display for SectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "§{}", self.0)
    }
}

/// A timed unit of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Unique id (`1`, `A.1`, ...).
    pub id: SectionId,
    /// Human title (`Peer1 setup`).
    pub title: String,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Where the section starts.
    pub location: Location,
}

/// One step and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's `[[sections.steps]]` header.
    pub location: Location,
    /// What the step does.
    pub kind: StepKind,
}

/// The three kinds of step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// One op sent to one peer.
    Op(OpStep),
    /// Several read ops on one wallet, captured together.
    Snapshot(SnapshotStep),
    /// A check over captured values; sends nothing.
    Assert(AssertStep),
}

/// An op sent to a peer.
#[derive(Debug, Clone, PartialEq)]
pub struct OpStep {
    /// The peer role.
    pub peer: String,
    /// The op name (`invoice_pay`).
    pub op: String,
    /// Where the `op` value is (what [`Scenario::check_ops`] points at).
    pub op_location: Location,
    /// Arguments, a JSON object template (`{}` when absent).
    pub args: Value,
    /// Dotted name under which the result is stored (`before.alice`).
    pub capture: Option<String>,
    /// Per-step timeout, overriding `[defaults]`.
    pub timeout: Option<Duration>,
    /// How many times to send it (0 skips the step).
    pub repeat: Option<RepeatCount>,
    /// The result must contain these (subset match, after substitution:
    /// see [`super::assertions::expect_mismatch`]) or the step fails.
    pub expect: Option<Value>,
    /// The op must FAIL with this error kind (`unknown_wallet`) or the step
    /// fails; the error object `{kind, message}` is what gets captured.
    pub expect_error: Option<String>,
}

/// A `repeat` count: a number, or one variable giving a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepeatCount {
    /// A literal count.
    Fixed(u64),
    /// A `${...}` reference (without the braces), resolved when the step
    /// runs ([`super::vars::resolve_repeat`]).
    Var(String),
}

/// Several read ops on one wallet, captured as `<name>.<op>`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotStep {
    /// Dotted capture prefix (`before.alice`).
    pub name: String,
    /// The peer role.
    pub peer: String,
    /// The wallet (may hold variables).
    pub wallet: String,
    /// Read ops, each sent with `{"wallet": wallet}` (`balance`, `tokens`).
    pub ops: Vec<String>,
    /// Timeout for each op, overriding `[defaults]`.
    pub timeout: Option<Duration>,
}

impl SnapshotStep {
    /// The requests to send, in order: op, argument template, and the
    /// dotted name its result is captured under.
    pub fn requests(&self) -> Vec<(String, Value, String)> {
        self.ops
            .iter()
            .map(|op| {
                let args = serde_json::json!({ "wallet": self.wallet });
                (op.clone(), args, format!("{}.{op}", self.name))
            })
            .collect()
    }
}

/// How much a failed assertion matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the run (the default).
    #[default]
    Error,
    /// Reported, never fails the run.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// The name of an assertion's kind, as written in `kind = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssertKind {
    /// Both sides are the same JSON value.
    Equal,
    /// Two decimal amounts within a tolerance.
    Approx,
    /// Decimal amounts summing exactly to a total.
    Conservation,
    /// A string, array or object containing the other side.
    Contains,
}

impl AssertKind {
    /// Every kind, in the order the error messages list them.
    pub const ALL: [AssertKind; 4] = [
        AssertKind::Equal,
        AssertKind::Approx,
        AssertKind::Conservation,
        AssertKind::Contains,
    ];

    /// The kind as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            AssertKind::Equal => "equal",
            AssertKind::Approx => "approx",
            AssertKind::Conservation => "conservation",
            AssertKind::Contains => "contains",
        }
    }
}

impl fmt::Display for AssertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An assertion step.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertStep {
    /// Unique across the scenario (`bob-peer1-vs-peer2-after`).
    pub name: String,
    /// Error (fails the run) or warning.
    pub severity: Severity,
    /// What to check, with its operands (templates).
    pub check: Check,
}

impl AssertStep {
    /// The kind of check.
    pub fn kind(&self) -> AssertKind {
        self.check.kind()
    }
}

/// An assertion's check and operands; each kind carries exactly the
/// operands it needs, so a conservation without a total cannot exist.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `left` and `right` are equal JSON values.
    Equal {
        /// Expected side (shown as `-` in the diff).
        left: Value,
        /// Actual side (shown as `+`).
        right: Value,
    },
    /// `|left - right| <= tolerance`, as decimals.
    Approx {
        /// A decimal amount.
        left: Value,
        /// A decimal amount.
        right: Value,
        /// A non-negative decimal.
        tolerance: Value,
    },
    /// The decimal `values` sum exactly to `total`.
    Conservation {
        /// Decimal amounts.
        values: Vec<Value>,
        /// The expected sum.
        total: Value,
    },
    /// `left` contains `right`: substring, array element (subset match for
    /// objects) or sub-object.
    Contains {
        /// The string, array or object searched.
        left: Value,
        /// What must be in it.
        right: Value,
    },
}

impl Check {
    /// The kind of this check.
    pub fn kind(&self) -> AssertKind {
        match self {
            Check::Equal { .. } => AssertKind::Equal,
            Check::Approx { .. } => AssertKind::Approx,
            Check::Conservation { .. } => AssertKind::Conservation,
            Check::Contains { .. } => AssertKind::Contains,
        }
    }
}

impl Scenario {
    /// Every step with its section, in document order.
    pub fn steps(&self) -> impl Iterator<Item = (&Section, &Step)> {
        self.sections
            .iter()
            .flat_map(|section| section.steps.iter().map(move |step| (section, step)))
    }

    /// Checks that every op sent to `peer` is one the peer lists in its
    /// `hello` (`known_ops`); the error points at the first step using an
    /// op the peer lacks.
    pub fn check_ops(&self, peer: &str, known_ops: &[String]) -> Result<(), ScenarioError> {
        let missing = self
            .ops_with_peers()
            .find(|(p, op, _)| *p == peer && !known_ops.iter().any(|k| k == op));
        match missing {
            None => Ok(()),
            Some((_, op, location)) => Err(self.error_at(
                location,
                format!(
                    "op `{op}` is not offered by peer `{peer}` (its ops: {})",
                    known_ops.join(", ")
                ),
            )),
        }
    }

    /// An error at `location` in this scenario's file: how the runner
    /// reports a step that failed at run time (a variable that resolved to
    /// nothing, an `expect` that did not match) against the text.
    pub fn error_at(&self, location: Location, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.source.path.display().to_string(),
            location,
            message: message.into(),
        }
    }

    /// The timeout for an op step or snapshot: its own, else the default.
    pub fn timeout_for(&self, step: &Step) -> Duration {
        let own = match &step.kind {
            StepKind::Op(op) => op.timeout,
            StepKind::Snapshot(snapshot) => snapshot.timeout,
            StepKind::Assert(_) => None,
        };
        own.unwrap_or(self.defaults.timeout)
    }

    /// `[peer_env]` with its variables resolved (params and built-ins):
    /// the environment the runner adds to every peer process.
    pub fn resolved_peer_env(
        &self,
        builtins: &Builtins,
    ) -> Result<BTreeMap<String, String>, VarError> {
        let captures = Captures::new();
        self.peer_env
            .iter()
            .map(|(key, template)| {
                let value = substitute_str(template, &captures, &self.params, builtins)?;
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                Ok((key.clone(), text))
            })
            .collect()
    }

    /// `(peer, op, location)` for every op sent, in document order.
    fn ops_with_peers(&self) -> impl Iterator<Item = (&str, &str, Location)> {
        self.steps().flat_map(|(_, step)| {
            let ops: Vec<(&str, &str, Location)> = match &step.kind {
                StepKind::Op(op) => vec![(op.peer.as_str(), op.op.as_str(), op.op_location)],
                StepKind::Snapshot(snapshot) => snapshot
                    .ops
                    .iter()
                    .map(|op| (snapshot.peer.as_str(), op.as_str(), step.location))
                    .collect(),
                StepKind::Assert(_) => Vec::new(),
            };
            ops
        })
    }
}
