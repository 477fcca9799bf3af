//! The `git` CLI through argv lists: always `-C <dir>`, never a prompt, a fixed identity.

use std::path::{Path, PathBuf};
use tokio::process::Command;

/// A failed git command, with what git said.
#[derive(Debug, thiserror::Error)]
#[error("git {args} (in {dir}) failed: {stderr}")]
pub struct GitError {
    /// The arguments, joined for the message.
    pub args: String,
    /// Where it ran.
    pub dir: String,
    /// What git printed.
    pub stderr: String,
}

/// A repository or work tree, and the identity commits are made with.
#[derive(Debug, Clone)]
pub struct Git {
    /// The directory `-C` points at.
    pub dir: PathBuf,
    /// Author and committer name.
    pub name: String,
    /// Author and committer email.
    pub email: String,
}

impl Git {
    /// The same identity in another directory (a work tree).
    pub fn at(&self, dir: &Path) -> Git {
        Git {
            dir: dir.to_path_buf(),
            ..self.clone()
        }
    }

    /// Runs git; stdout on success.
    pub async fn run(&self, args: &[&str]) -> Result<String, GitError> {
        Ok(String::from_utf8_lossy(&self.run_bytes(args).await?).into_owned())
    }

    /// Runs git; raw stdout on success (file contents, which the engine checks for UTF-8).
    pub async fn run_bytes(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.run_env(args, &[]).await
    }

    /// Runs git with extra environment variables (e.g. `GIT_INDEX_FILE` for a scratch index
    /// that leaves the clone's own index alone); raw stdout on success.
    pub async fn run_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Result<Vec<u8>, GitError> {
        let out = Command::new("git")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", &self.name)
            .env("GIT_AUTHOR_EMAIL", &self.email)
            .env("GIT_COMMITTER_NAME", &self.name)
            .env("GIT_COMMITTER_EMAIL", &self.email)
            // An editor must never open: rebases and cherry-picks keep their messages.
            .env("GIT_EDITOR", "true")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| GitError {
                args: args.join(" "),
                dir: self.dir.display().to_string(),
                stderr: format!("cannot run git: {e}; is git installed?"),
            })?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.is_empty() {
                stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            Err(GitError {
                args: args.join(" "),
                dir: self.dir.display().to_string(),
                stderr,
            })
        }
    }

    /// Runs git and trims the output.
    pub async fn line(&self, args: &[&str]) -> Result<String, GitError> {
        Ok(self.run(args).await?.trim().to_string())
    }
}
