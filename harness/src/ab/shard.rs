//! Shards: one `soak ab` spread over several machines (a CI matrix), each
//! running its own complete ABBA blocks of both branches, merged and judged
//! with the shard as a block ([`crate::stats::stratified_shift`]).
//!
//! Shards of one run agree on a run id without talking to each other: it
//! is a hash of everything that must be the same for their iterations to
//! be comparable (scenario, parameters, profile, branches, variants asked
//! for, iterations, gate), so two jobs of one matrix get the same id and a
//! shard of another commit does not.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::manifest::{BranchInfo, Manifest, sha256_hex};

/// Most shards one run may have: more than any CI matrix runs.
pub const MAX_SHARDS: u32 = 64;

/// `I/N`: this is shard `index` of `count` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u32,
    /// How many shards the run has.
    pub count: u32,
}

/// Why a `--shard` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard `{given}`: {why}; expected I/N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 2/4")]
pub struct ShardError {
    given: String,
    why: &'static str,
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |why| ShardError {
            given: text.to_owned(),
            why,
        };
        let (index, count) = text.trim().split_once('/').ok_or(refuse("no `/`"))?;
        let number = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| refuse("not two whole numbers"))
        };
        let (index, count) = (number(index)?, number(count)?);
        if count == 0 || count > MAX_SHARDS {
            return Err(refuse("N out of range"));
        }
        if index == 0 || index > count {
            return Err(refuse("I out of range"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a shard's manifest records about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Which shard of how many.
    pub shard: Shard,
    /// The run the shard belongs to ([`run_id`]).
    pub run_id: String,
}

/// The inputs that make shards comparable, as hashed into the run id.
#[derive(Serialize)]
struct RunInputs<'a> {
    scenario_sha256: &'a str,
    scenario_params: &'a serde_json::Value,
    network_profile: &'a str,
    branches: Vec<BranchInputs<'a>>,
    iterations: &'a str,
    shards: u32,
    gate: &'a serde_json::Value,
}

#[derive(Serialize)]
struct BranchInputs<'a> {
    name: &'a str,
    git_ref: Option<&'a str>,
    commit: Option<&'a str>,
    peer_env: &'a [(String, String)],
}

/// The id every shard of one run computes alike: `run-` and 16 hex digits
/// of a hash of the run's inputs (`RunInputs`).
pub fn run_id(manifest: &Manifest, shards: u32, gate: &serde_json::Value) -> String {
    let inputs = RunInputs {
        scenario_sha256: &manifest.scenario.sha256,
        scenario_params: &manifest.scenario.params,
        network_profile: &manifest.network_profile,
        branches: manifest.branches.iter().map(branch_inputs).collect(),
        iterations: &manifest.iterations,
        shards,
        gate,
    };
    let text = serde_json::to_string(&inputs).unwrap_or_default();
    format!("run-{}", &sha256_hex(&text)[..16])
}

fn branch_inputs(branch: &BranchInfo) -> BranchInputs<'_> {
    BranchInputs {
        name: &branch.name,
        git_ref: branch.git_ref.as_deref(),
        commit: branch.commit.as_deref(),
        peer_env: &branch.peer_env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_in_words() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(
            " 1 / 1 ".parse::<Shard>().map(|s| s.to_string()),
            Ok("1/1".into())
        );
        for (bad, why) in [
            ("2", "no `/`"),
            ("a/4", "not two whole numbers"),
            ("-1/4", "not two whole numbers"),
            ("0/4", "I out of range"),
            ("5/4", "I out of range"),
            ("1/0", "N out of range"),
            ("1/65", "N out of range"),
        ] {
            let error = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(error.contains(why) && error.contains(bad), "{bad}: {error}");
        }
    }
}
