//! Helpers shared by the CLI tests: fixture paths, running `soak`, and the
//! workspace's own peer and testnet binaries.

#![allow(dead_code, unreachable_pub)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use assert_cmd::cargo::CommandCargoExt;

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A shipped scenario file.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

/// Runs `soak` with `args` and extra `env`, in `dir` if given.
pub fn soak_in(dir: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::cargo_bin("soak").unwrap();
    command.args(args).stdin(Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// Stdout then stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The workspace's own peer and testnet binaries, built if a narrower
/// `cargo test -p soakgate` left them out.
pub fn workspace_binaries() -> (String, String) {
    let soak = assert_cmd::cargo::cargo_bin("soak");
    let dir = soak.parent().unwrap().to_path_buf();
    let (peer, testnet) = (dir.join("sphere-peer"), dir.join("sphere-testnet"));
    if !peer.exists() || !testnet.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "sphere-sdk",
                "-p",
                "sphere-testnet",
                "--bins",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the workspace binaries failed");
    }
    (peer.display().to_string(), testnet.display().to_string())
}

/// Live processes (zombies excluded) with their command lines, arguments
/// joined by spaces: for tests that check what is left running.
pub fn processes() -> Vec<(i32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // The state follows the last `)` (the name may hold spaces).
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            (state != 'Z').then_some((pid, cmdline))
        })
        .collect()
}

/// Runs `git args` in `dir` as a fixed test author; panics if it fails.
pub fn git_in(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}
