//! `manifest.json`: what was run, where, with what: enough to reproduce a
//! run or to see why two runs differ.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The scenario as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Its path (or `<built-in>`).
    pub path: String,
    /// Its name.
    pub name: String,
    /// SHA-256 of its text.
    pub sha256: String,
    /// Parameters after `--set`.
    pub params: Value,
}

/// One branch as run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BranchInfo {
    /// `run`, `baseline` or `treatment`.
    pub name: String,
    /// The git ref, if built from one.
    pub git_ref: Option<String>,
    /// The commit it resolved to.
    pub commit: Option<String>,
    /// The build command, if built.
    pub build_cmd: Option<String>,
    /// The peer command.
    pub peer_cmd: String,
    /// Extra peer environment.
    pub peer_env: Vec<(String, String)>,
    /// The variant the peers reported in `hello`.
    pub variant: Option<Value>,
    /// How reports label this branch (`main @ 1a2b3c4`).
    #[serde(default)]
    pub label: Option<String>,
}

/// The machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Logical cores.
    pub cores: usize,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// OS name and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// The CPU's model name, as the OS reports it.
    #[serde(default)]
    pub cpu_model: String,
    /// A hash of the runner's name (`RUNNER_NAME` when set, as on GitHub
    /// Actions; the host name otherwise): tells runners apart without
    /// naming them.
    #[serde(default)]
    pub hostname_hash: String,
}

impl MachineInfo {
    /// Reads the current machine.
    pub fn current() -> MachineInfo {
        let memory_bytes = sysinfo::System::new()
            .map(|mut system| {
                system.refresh_memory();
                system.total_memory()
            })
            .unwrap_or(0);
        let cpu_model = sysinfo::System::new()
            .map(|mut system| {
                system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
                system
                    .cpus()
                    .first()
                    .map(|cpu| cpu.brand().trim().to_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        // GitHub Actions names each runner in RUNNER_NAME; containers of
        // one host can share a host name, runners cannot share that.
        let hostname = std::env::var("RUNNER_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .or_else(|| sysinfo::System::host_name().ok())
            .unwrap_or_default();
        MachineInfo {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_bytes,
            os: sysinfo::System::long_os_version()
                .unwrap_or_else(|_| std::env::consts::OS.to_owned()),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            cpu_model,
            hostname_hash: sha256_hex(&hostname)[..12].to_owned(),
        }
    }
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version.
    pub schema_version: u32,
    /// `soak`'s version.
    pub harness_version: String,
    /// The command line.
    pub command_line: Vec<String>,
    /// When the run started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The network profile.
    pub network_profile: String,
    /// The testnet command.
    pub testnet_cmd: String,
    /// Branches.
    pub branches: Vec<BranchInfo>,
    /// Iterations asked for (per branch).
    pub iterations: String,
    /// Unjudged warm-up iterations run per branch before the first
    /// measured one (`warmup-W` folders).
    #[serde(default)]
    pub warmup: usize,
    /// The machine.
    pub machine: MachineInfo,
    /// Whether the run was interrupted.
    pub interrupted: bool,
    /// How the run was judged (alpha of the last look), so `soak gate`
    /// re-judges it the same way.
    #[serde(default)]
    pub judged: Option<crate::ab::compare::JudgeSettings>,
    /// This folder is one shard of a run (`soak ab --shard I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::ab::shard::ShardInfo>,
    /// This folder merges shards (`soak merge`): each one's runner, in
    /// shard order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<MergedShard>,
}

/// One shard of a merged run: where it ran and what it contributed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedShard {
    /// Which shard.
    pub shard: crate::ab::shard::Shard,
    /// The folder it was merged from.
    pub dir: String,
    /// Its runner.
    pub machine: MachineInfo,
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Iterations it ran, baseline and treatment.
    pub iterations: (usize, usize),
}

/// SHA-256 of `text`, hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Manifest {
    /// A manifest for a run starting now, on this machine.
    pub fn start(
        scenario: ScenarioInfo,
        settings: &crate::runner::RunSettings,
        branches: Vec<BranchInfo>,
        iterations: String,
    ) -> Manifest {
        Manifest {
            schema_version: 1,
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            command_line: std::env::args().collect(),
            started_at: chrono::Utc::now(),
            scenario,
            network_profile: settings.profile.clone(),
            testnet_cmd: settings.testnet_cmd.display(),
            branches,
            iterations,
            warmup: 0,
            machine: MachineInfo::current(),
            interrupted: false,
            judged: None,
            shard: None,
            shards: Vec::new(),
        }
    }

    /// Fills each branch's variant from the first `hello` its peers gave.
    pub fn record_variants(&mut self, records: &[&[crate::record::IterationRecord]]) {
        for (branch, side) in self.branches.iter_mut().zip(records) {
            branch.variant = side.iter().find_map(|r| {
                r.peers
                    .values()
                    .next()
                    .and_then(|hello| hello.get("variant").cloned())
            });
        }
    }

    /// Writes it to `dir/manifest.json`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        crate::record::write_json(&dir.join("manifest.json"), self)
    }
}
