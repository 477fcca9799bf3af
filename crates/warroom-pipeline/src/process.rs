//! Running configured commands: argv lists only, a time limit, and the whole process group
//! killed when it is exceeded.
//!
//! Each command starts in its own process group (`process_group(0)`), so anything it spawns
//! (a language server, a `terraform` child, a stray `sleep`) is in that group. On timeout, and
//! also after a normal exit, the group is killed with `kill -KILL -- -PGID` (run through argv,
//! so no `libc` or `unsafe` is needed): nothing the agent started may keep editing the work
//! tree, or keep our pipes open, after we stopped waiting for it.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Output kept per stream; more is dropped (and says so), so a chatty agent cannot exhaust memory.
const MAX_CAPTURE: usize = 4 * 1024 * 1024;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code (`None`: killed by a signal).
    Code(Option<i32>),
    /// It ran past its limit and its process group was killed.
    TimedOut,
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it ended.
    pub exit: Exit,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(Some(0))
    }

    /// A short description of a failure, for logs and reasons.
    pub fn describe_failure(&self) -> String {
        let tail: String = {
            let t = self.stderr.trim();
            let start = t.char_indices().rev().nth(300).map(|(i, _)| i).unwrap_or(0);
            t[start..].to_string()
        };
        match &self.exit {
            Exit::TimedOut => "timed out; its process group was killed".to_string(),
            Exit::Code(Some(c)) if tail.is_empty() => format!("exited with status {c}"),
            Exit::Code(Some(c)) => format!("exited with status {c}: {tail}"),
            Exit::Code(None) => "was killed by a signal".to_string(),
        }
    }
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// Program and arguments; never passed through a shell.
    pub argv: &'a [String],
    /// Working directory.
    pub cwd: &'a Path,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// The only variables of our own environment the command sees (`NAME`, or `PREFIX*`).
    /// warroom's environment holds its secrets (database URL, webhook secret, tokens); an
    /// agent driven by a model must not be able to read them.
    pub pass_env: &'a [String],
    /// Written to standard input, then closed.
    pub stdin: Option<String>,
    /// Time limit.
    pub timeout: Duration,
}

/// Why a command could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The argv was empty.
    #[error("the command is empty; configure it as a list such as [\"claude\", \"-p\"]")]
    Empty,
    /// The program could not be started.
    #[error("cannot start `{program}`: {source}; is it installed and on PATH?")]
    Start {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut truncated = false;
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.len() < MAX_CAPTURE {
                    let take = n.min(MAX_CAPTURE - buf.len());
                    buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
                    truncated |= take < n;
                } else {
                    truncated = true;
                }
            }
        }
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if truncated {
        s.push_str("\n[output truncated]");
    }
    s
}

/// Whether `name` is on the pass list: an exact name, or a `PREFIX*` pattern.
pub fn passes(list: &[String], name: &str) -> bool {
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Kills a process group. Errors are ignored: the group may already be gone.
pub async fn kill_group(pgid: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Runs a command to completion or its time limit.
pub async fn run(inv: Invocation<'_>) -> Result<Output, SpawnError> {
    let (program, args) = inv.argv.split_first().ok_or(SpawnError::Empty)?;
    // `scripts/plan-json` means the repository's script in the work tree the command runs in;
    // std leaves a relative program path with a working directory platform-specific.
    let path = Path::new(program);
    let resolved = if program.contains('/') && path.is_relative() {
        inv.cwd.join(path)
    } else {
        path.to_path_buf()
    };
    let mut cmd = tokio::process::Command::new(&resolved);
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        let Some(name) = k.to_str() else { continue };
        if passes(inv.pass_env, name) {
            cmd.env(&k, v);
        }
    }
    cmd.args(args)
        .current_dir(inv.cwd)
        .envs(&inv.env)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
        program: program.clone(),
        source,
    })?;
    let pgid = child.id();
    if let (Some(input), Some(mut stdin)) = (inv.stdin, child.stdin.take()) {
        // Written from a task: a command that never reads its input must not block us.
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
    let exit = match tokio::time::timeout(inv.timeout, child.wait()).await {
        Ok(Ok(status)) => Exit::Code(status.code()),
        Ok(Err(_)) => Exit::Code(None),
        Err(_) => Exit::TimedOut,
    };
    // After a timeout, and after a normal exit too: whatever the command left running in its
    // group is killed, which also closes the pipes the readers below wait on.
    if let Some(pgid) = pgid {
        kill_group(pgid).await;
    }
    if exit == Exit::TimedOut {
        let _ = child.kill().await;
    }
    let join = |h: Option<tokio::task::JoinHandle<String>>| async move {
        match h {
            Some(h) => tokio::time::timeout(Duration::from_secs(5), h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        }
    };
    Ok(Output {
        exit,
        stdout: join(out).await,
        stderr: join(err).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relative_program_is_the_work_trees_own_script() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        let script = dir.path().join("scripts/plan-json");
        std::fs::write(&script, "#!/bin/sh\necho '{\"format_version\":\"1.2\"}'\n").unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        let argv = vec!["scripts/plan-json".to_string()];
        let out = run(Invocation {
            argv: &argv,
            cwd: dir.path(),
            env: BTreeMap::new(),
            pass_env: &["PATH".to_string()],
            stdin: None,
            timeout: Duration::from_secs(10),
        })
        .await
        .unwrap();
        assert!(out.success(), "{}", out.describe_failure());
        assert_eq!(out.stdout.trim(), r#"{"format_version":"1.2"}"#);
    }
}
