//! `soak ab`: two branches, interleaved, compared, gated.
//!
//! [`branches`] prepares (checks out and builds) both sides before anything
//! is measured; [`schedule`] interleaves their iterations in ABBA blocks;
//! [`metrics`] turns iteration records into one number per metric per
//! iteration; [`compare`] runs the statistics and the gate; [`diagnosis`]
//! says which kind of time moved in a changed section; [`strays`] which
//! iterations kept an undecided one from deciding; [`report`]
//! assembles what the reports crate renders.

pub mod branches;
pub mod compare;
pub mod diagnosis;
pub mod gate_config;
pub mod metrics;
pub mod report;
pub mod schedule;
pub mod shard;
pub mod strays;
