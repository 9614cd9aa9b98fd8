//! Child processes that cannot outlive the harness.
//!
//! Every child starts in its own process group (`process_group(0)`), so the
//! whole tree it spawns can be signalled at once. Stopping is SIGTERM to the
//! group, a grace period, then SIGKILL to the group. A [`ProcessGroups`]
//! registry knows every live group, so a Ctrl-C handler can kill them all,
//! and each [`ManagedChild`] kills its group when dropped as a last resort.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// A command line to run: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program (a path, or a name looked up on PATH).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl CommandSpec {
    /// Splits a shell-like command line on whitespace, honouring simple
    /// single and double quotes (no escapes, no expansion: this is not a
    /// shell, and running one would put another process between us and the
    /// peer).
    pub fn parse(line: &str) -> Result<CommandSpec, String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut quote: Option<char> = None;
        let mut in_word = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => current.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut current));
                        in_word = false;
                    }
                }
                (None, c) => {
                    current.push(c);
                    in_word = true;
                }
            }
        }
        if quote.is_some() {
            return Err(format!("unbalanced quote in command `{line}`"));
        }
        if in_word {
            words.push(current);
        }
        let mut words = words.into_iter().map(OsString::from);
        let program = words.next().ok_or_else(|| "empty command".to_owned())?;
        Ok(CommandSpec {
            program,
            args: words.collect(),
        })
    }

    /// The command as one line, for manifests and messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| w.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The process groups of every live child, shared with signal handling.
#[derive(Debug, Clone, Default)]
pub struct ProcessGroups {
    groups: Arc<Mutex<BTreeSet<i32>>>,
}

impl ProcessGroups {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, pgid: i32) {
        self.lock().insert(pgid);
    }

    fn remove(&self, pgid: i32) {
        self.lock().remove(&pgid);
    }

    /// SIGKILLs every live group (interrupts, panics).
    pub fn kill_all(&self) {
        for pgid in std::mem::take(&mut *self.lock()) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }

    /// How many groups are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no group is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
#[error("{role}: cannot start `{command}`: {reason}")]
pub struct SpawnError {
    /// The role the child was to play.
    pub role: String,
    /// The command line.
    pub command: String,
    /// The OS error, with a hint.
    pub reason: String,
}

/// A started child in its own process group.
#[derive(Debug)]
pub struct ManagedChild {
    role: String,
    pgid: i32,
    child: Child,
    groups: ProcessGroups,
}

/// The pipes of a child, taken once by whoever reads and writes them.
#[derive(Debug)]
pub struct ChildPipes {
    /// Its stdin.
    pub stdin: Option<ChildStdin>,
    /// Its stdout.
    pub stdout: Option<ChildStdout>,
    /// Its stderr.
    pub stderr: Option<ChildStderr>,
}

impl ManagedChild {
    /// Starts `spec` as `role` with extra `args` and `env`, in `cwd`.
    pub fn spawn(
        role: &str,
        spec: &CommandSpec,
        args: &[OsString],
        env: &[(String, String)],
        cwd: Option<&PathBuf>,
        groups: &ProcessGroups,
    ) -> Result<(ManagedChild, ChildPipes), SpawnError> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|e| SpawnError {
            role: role.to_owned(),
            command: spec.display(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "no such program (check the path, or build it first)".to_owned()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (is it executable?)".to_owned()
                }
                _ => e.to_string(),
            },
        })?;
        let pid = child.id().unwrap_or(0) as i32;
        groups.add(pid);
        let pipes = ChildPipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        };
        Ok((
            ManagedChild {
                role: role.to_owned(),
                pgid: pid,
                child,
                groups: groups.clone(),
            },
            pipes,
        ))
    }

    /// The role it plays.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Its pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pgid as u32
    }

    /// Whether it is stopped (SIGSTOP, or a debugger): it can neither
    /// answer nor die on its own. Read from `/proc/PID/stat`; `false` where
    /// that cannot be read.
    pub fn is_stopped(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pgid)) else {
            return false;
        };
        // The state follows the parenthesised command name, which may itself
        // hold spaces and parentheses: split at the last `)`.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "T" || state == "t")
    }

    /// Its exit status if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for it to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Waits up to `timeout` for it to exit on its own.
    pub async fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// SIGTERM to the group, `grace`, then SIGKILL to the group; returns the
    /// leader's exit status. Children the leader left behind die with the
    /// group either way.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let group = Pid::from_raw(self.pgid);
        let status = if let Some(status) = self.try_status() {
            Some(status)
        } else {
            let _ = killpg(group, Signal::SIGTERM);
            match self.wait_for(grace).await {
                Some(status) => Some(status),
                None => {
                    let _ = killpg(group, Signal::SIGKILL);
                    self.wait_for(Duration::from_secs(5)).await
                }
            }
        };
        // The leader may be gone while its children live on in the group.
        let _ = killpg(group, Signal::SIGKILL);
        self.groups.remove(self.pgid);
        status
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        self.groups.remove(self.pgid);
    }
}

/// A human description of how a process ended.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "still running".to_owned(),
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => {
                let name = Signal::try_from(signal)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| signal.to_string());
                format!("killed by {name}")
            }
            _ => "ended".to_owned(),
        },
    }
}

/// `--flag CMD`, or the workspace's own binary `name` next to `soak`.
pub fn resolve_command(given: Option<&str>, name: &str, flag: &str) -> Result<CommandSpec, String> {
    match given {
        // An empty command would otherwise be reported as `empty command`
        // without the value, which reads like soak's own fault.
        Some(line) if line.trim().is_empty() => Err(format!(
            "{flag} `{line}`: empty command; give the program and its arguments, e.g. {flag} \"python3 peer.py\""
        )),
        Some(line) => CommandSpec::parse(line).map_err(|e| format!("{flag}: {e}")),
        None => {
            let sibling = sibling_binary(name);
            if !sibling.exists() {
                return Err(format!(
                    "`{}` not found: build it (cargo build --release --workspace) or pass {flag}",
                    sibling.display()
                ));
            }
            Ok(CommandSpec {
                program: sibling.into_os_string(),
                args: Vec::new(),
            })
        }
    }
}

/// Where the workspace's binary `name` sits: next to the running `soak`.
pub fn sibling_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_on_spaces_and_respect_quotes() {
        let spec = CommandSpec::parse(r#"python3 -u "my peer.py" --flag 'a b'"#).unwrap();
        assert_eq!(spec.program, OsString::from("python3"));
        let args: Vec<_> = spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, vec!["-u", "my peer.py", "--flag", "a b"]);
        assert!(CommandSpec::parse("").is_err());
        assert!(CommandSpec::parse("echo 'open").is_err());
    }

    #[tokio::test]
    async fn stopping_kills_the_whole_group() {
        let groups = ProcessGroups::default();
        let spec = CommandSpec::parse("sh -c 'sleep 60 & sleep 60 & wait'").unwrap();
        let (mut child, _pipes) =
            ManagedChild::spawn("test", &spec, &[], &[], None, &groups).unwrap();
        assert_eq!(groups.len(), 1);
        let pgid = child.pid() as i32;
        tokio::time::sleep(Duration::from_millis(100)).await;
        child.stop(Duration::from_millis(200)).await;
        assert!(groups.is_empty());
        // No live member of the group is left (zombies awaiting a reaper
        // that is not us do not count: they hold no resources). A killed
        // process finishes exiting asynchronously, which on a loaded
        // machine can take a few scheduler ticks: allow it two seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while live_members(pgid) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(live_members(pgid), 0);
    }

    /// Members of process group `pgid` that are not zombies, from /proc.
    fn live_members(pgid: i32) -> usize {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                // Fields after the command name, which ends at the last ')'.
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
                let fields: Vec<&str> = rest.split_whitespace().collect();
                fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
            })
            .count()
    }

    #[test]
    fn a_missing_program_names_the_role_and_the_fix() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let groups = ProcessGroups::default();
            let spec = CommandSpec::parse("/no/such/peer --x").unwrap();
            let err = ManagedChild::spawn("peer1", &spec, &[], &[], None, &groups).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("peer1: cannot start `/no/such/peer --x`"),
                "{text}"
            );
            assert!(text.contains("no such program"), "{text}");
        });
    }
}
