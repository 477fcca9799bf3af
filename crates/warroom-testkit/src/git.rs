//! Real git repositories in temp folders, for the pipeline's tests: a bare remote seeded with
//! post-mortems and the pipeline's clone of it.
//!
//! These helpers panic on failure: they only run inside tests, where a panic is the failure.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Runs `git -C dir args…` with a fixed identity (so commits work on a machine without a git
/// config) and returns its stdout.
///
/// # Panics
/// When git cannot be started or exits non-zero (its stderr is in the message).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "seed")
        .env("GIT_AUTHOR_EMAIL", "seed@example.com")
        .env("GIT_COMMITTER_NAME", "seed")
        .env("GIT_COMMITTER_EMAIL", "seed@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare remote `dir/remote.git` whose `master` holds one commit (marked `[ci skip]`, so the
/// pipeline does not act on it) with every file of `postmortems` under `docs/post-mortems/` and
/// the `files` given as (path, contents); and a clone of it at `dir/clone_name`.
///
/// Returns (bare remote, clone).
///
/// # Panics
/// When a file cannot be read or written, or a git command fails.
pub fn seeded_remote(
    dir: &Path,
    clone_name: &str,
    postmortems: &Path,
    files: &[(&str, &str)],
) -> (PathBuf, PathBuf) {
    let bare = dir.join("remote.git");
    let seed = dir.join("seed");
    let clone = dir.join(clone_name);
    let bare_s = bare.to_str().expect("UTF-8 temp path");
    git(dir, &["init", "-q", "--bare", "-b", "master", bare_s]);
    let pm = seed.join("docs/post-mortems");
    std::fs::create_dir_all(&pm).expect("create the seed folder");
    git(&seed, &["init", "-q", "-b", "master"]);
    for e in std::fs::read_dir(postmortems).expect("read the post-mortem fixtures") {
        let p = e.expect("read the post-mortem fixtures").path();
        let name = p.file_name().expect("a fixture file name");
        std::fs::copy(&p, pm.join(name)).expect("copy a post-mortem fixture");
    }
    for (path, contents) in files {
        let p = seed.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create a seed folder");
        }
        std::fs::write(&p, contents).expect("write a seed file");
    }
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-qm", "docs: post-mortems [ci skip]"]);
    git(&seed, &["push", "-q", bare_s, "master"]);
    let clone_s = clone.to_str().expect("UTF-8 temp path");
    git(dir, &["clone", "-q", bare_s, clone_s]);
    (bare, clone)
}
