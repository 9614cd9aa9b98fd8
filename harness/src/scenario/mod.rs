//! Scenario files: what the runner sends to the peers, as data.
//!
//! A scenario (`scenarios/*.toml`) names its peers and a list of sections;
//! each section is a list of steps, and a step is one of three things:
//!
//! - an **op** on a peer (`op`, `args`, optional `capture`, `repeat`,
//!   `expect`, `expect_error`, `timeout_ms`);
//! - a **snapshot**: several read ops on one wallet, captured together;
//! - an **assertion** over captured values (`equal`, `approx`,
//!   `conservation`, `contains`).
//!
//! Strings may hold variables (`${bob.mnemonic}`, `${bundles}`,
//! `${iteration}`), resolved when the step runs ([`vars`]).
//!
//! [`Scenario::load`] reads, parses ([`parse`]) and validates ([`validate`])
//! a file before any process starts, so a typo costs a second rather than a
//! testnet; every error is one line naming `file:line:col`:
//!
//! ```text
//! scenarios/x.toml:12:3: unknown variable `${bob.mnemonik}` (defined so far: alice, bob, bundles, iteration, repeat_index)
//! ```
//!
//! After `hello`, the runner calls [`Scenario::check_ops`] with the ops the
//! peer offers. While running it keeps results in [`vars::Captures`],
//! substitutes variables with [`vars::substitute`], checks `expect` with
//! [`assertions::expect_mismatch`], and evaluates assertion steps with
//! [`assertions::evaluate`]; a failed assertion carries a unified diff
//! ([`diff`]).
//!
//! ```no_run
//! use std::path::Path;
//! use soakgate::scenario::Scenario;
//!
//! let overrides = vec![("bundles".to_owned(), "5".to_owned())];
//! let scenario = Scenario::load(Path::new("scenarios/smoke.toml"), &overrides)?;
//! for (section, step) in scenario.steps() {
//!     println!("{} {}", section.id, step.location);
//! }
//! # Ok::<(), soakgate::scenario::ScenarioError>(())
//! ```

pub mod assertions;
pub mod diff;
pub mod model;
pub mod parse;
pub mod validate;
pub mod vars;

pub use assertions::{AssertionOutcome, evaluate, evaluate_with, expect_mismatch};
pub use model::{
    AssertKind, AssertStep, Check, Defaults, Location, OpStep, PeerSpec, RepeatCount, Scenario,
    Section, SectionId, Severity, SnapshotStep, SourceInfo, Step, StepKind,
};
pub use vars::{Builtins, Captures, VarError, redact, substitute};

/// Why a scenario cannot be used: one line, naming the file and, for
/// anything in its text, the line and column (`x.toml:12:3: ...`).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read at all (there is no line to point at).
    #[error("{path}: cannot read the scenario file: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// Something in the text is wrong: syntax, structure, names, variables,
    /// or (from [`Scenario::check_ops`]) an op the peer does not offer.
    #[error("{path}:{location}: {message}")]
    Invalid {
        /// The path as given.
        path: String,
        /// Where in the file (1-based line and column).
        location: Location,
        /// What is wrong, naming the offending thing in backticks.
        message: String,
    },
}

impl ScenarioError {
    /// Where in the file the error is, if it is about the text.
    pub fn location(&self) -> Option<Location> {
        match self {
            ScenarioError::Read { .. } => None,
            ScenarioError::Invalid { location, .. } => Some(*location),
        }
    }

    /// The message alone, without `file:line:col`.
    pub fn message(&self) -> String {
        match self {
            ScenarioError::Read { source, .. } => {
                format!("cannot read the scenario file: {source}")
            }
            ScenarioError::Invalid { message, .. } => message.clone(),
        }
    }
}
