//! Why an iteration stopped early, as a typed value that reaches the CLI
//! edge: the binary picks the exit code from it, `soak ab` decides from it
//! whether to re-run the iteration, and its `Display` is the one line a user
//! reads.

use serde::{Deserialize, Serialize};

/// An iteration that could not run to its end.
///
/// Every variant but [`IterationFailure::Scenario`] is outside both
/// branches' control as far as the harness can tell (a process would not
/// start, died or hung, a disk refused), so it never counts as a branch's
/// failure: `soak ab` re-runs the iteration, a bounded number of times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IterationFailure {
    /// The iteration's folder could not be written.
    #[error("run folder: {message}")]
    RunFolder {
        /// What the file system said.
        message: String,
    },
    /// The testnet did not start or announce itself.
    #[error("testnet: {message}")]
    TestnetStart {
        /// Why, in the testnet's own words where it gave any.
        message: String,
    },
    /// The testnet refused its input (a bad profile or setting) and exited
    /// with the usage code before it was ready: exit 2.
    #[error("testnet: {message}")]
    TestnetRefused {
        /// Its own reason.
        message: String,
    },
    /// The testnet died while the scenario ran; noticed by the watchdog.
    #[error("testnet: exited ({exit}) during {section}{last_words}")]
    TestnetDied {
        /// How it ended (`killed by SIGKILL`).
        exit: String,
        /// The section that was running (or `start-up`).
        section: String,
        /// `: <its last stderr line>`, or empty.
        last_words: String,
    },
    /// The testnet is alive but stopped answering (stopped, or hung), found
    /// when a step failed: the step's failure is the testnet's, not the
    /// branch's.
    #[error("testnet: stopped answering during {section} (a step failed with: {step})")]
    TestnetUnresponsive {
        /// The section that was running.
        section: String,
        /// The failure the step reported.
        step: String,
    },
    /// A peer did not start or did not answer `hello`.
    #[error("{role}: {message}")]
    PeerStart {
        /// The peer's role.
        role: String,
        /// Why, in the peer's own words where it gave any.
        message: String,
    },
    /// A peer was found stopped (SIGSTOP) after a step failed: whatever
    /// failed was waiting on it.
    #[error(
        "{role}: stopped (SIGSTOP) during {section}; a step failed while it could not answer: {step}"
    )]
    PeerStopped {
        /// The peer's role.
        role: String,
        /// The section that was running.
        section: String,
        /// The failure the step reported.
        step: String,
    },
    /// A peer refused its input (a bad variant setting) and exited with
    /// the usage code before answering `hello`: exit 2.
    #[error("{role}: {message}")]
    PeerRefused {
        /// The peer's role.
        role: String,
        /// Why, in the peer's own words.
        message: String,
    },
    /// A peer died while a request was pending.
    #[error("{role}: exited ({exit}) while `{op}` was pending in {section}{last_words}")]
    PeerExited {
        /// The peer's role.
        role: String,
        /// How it ended.
        exit: String,
        /// The request it did not answer.
        op: String,
        /// The section that was running.
        section: String,
        /// `: <its last stderr line>`, or empty.
        last_words: String,
    },
    /// A peer did not answer a step in time.
    #[error(
        "{role}: no answer to `{op}` within {seconds:.0} s in {section} (the peer hangs; raise the step's timeout_ms if it is just slow)"
    )]
    StepTimedOut {
        /// The peer's role.
        role: String,
        /// The request.
        op: String,
        /// The section that was running.
        section: String,
        /// The step's timeout.
        seconds: f64,
    },
    /// A request could not be written to a peer.
    #[error("{role}: cannot send `{op}` in {section}: {reason}")]
    PeerUnreachable {
        /// The peer's role.
        role: String,
        /// The request.
        op: String,
        /// The section that was running.
        section: String,
        /// The I/O error.
        reason: String,
    },
    /// The scenario does not fit the peer (an op it does not offer, a bad
    /// `[peer_env]`): a mistake in the input, not in either branch.
    #[error("scenario: {message}")]
    Scenario {
        /// What does not fit.
        message: String,
    },
}

impl IterationFailure {
    /// Whether running the iteration again could help: a crash, a hang or
    /// a process that would not start may be a passing fault of the
    /// machine; a scenario that does not fit or a disk that refuses will
    /// fail the same way again.
    pub fn worth_retrying(&self) -> bool {
        !matches!(
            self,
            IterationFailure::Scenario { .. }
                | IterationFailure::TestnetRefused { .. }
                | IterationFailure::PeerRefused { .. }
                | IterationFailure::RunFolder { .. }
        )
    }

    /// Whether the input is at fault (exit 2) rather than the
    /// infrastructure (exit 3).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            IterationFailure::Scenario { .. }
                | IterationFailure::TestnetRefused { .. }
                | IterationFailure::PeerRefused { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_role_the_step_and_the_section() {
        let died = IterationFailure::PeerExited {
            role: "peer1".into(),
            exit: "killed by SIGKILL".into(),
            op: "faucet".into(),
            section: "§1".into(),
            last_words: String::new(),
        };
        assert_eq!(
            died.to_string(),
            "peer1: exited (killed by SIGKILL) while `faucet` was pending in §1"
        );
        assert!(died.worth_retrying());
        let scenario = IterationFailure::Scenario {
            message: "peer1 does not offer `teleport`".into(),
        };
        assert!(scenario.is_input_error() && !scenario.worth_retrying());
        let json = serde_json::to_value(&died).unwrap();
        assert_eq!(json["kind"], "peer_exited");
    }
}
