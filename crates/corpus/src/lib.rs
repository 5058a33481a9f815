//! Locates the shared corpora (`../shared/data` beside the workspace) for corpus suites.
//!
//! Contract for every corpus test: call [`data_dir`]; on `None` print why and return (a user's
//! fresh clone has no corpora). CI sets `RULEATLAS_REQUIRE_CORPUS=1`, which turns a missing
//! corpus into a panic so a misconfigured run cannot pass by skipping.

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(here)
}

/// `$RULEATLAS_SHARED_DATA`, else `<workspace>/../shared/data`, if it exists.
/// `suite` names the caller in the skip message.
pub fn data_dir(suite: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RULEATLAS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("RULEATLAS_REQUIRE_CORPUS").is_some_and(|v| v != "0") {
        panic!(
            "{suite}: corpus directory {} is missing and RULEATLAS_REQUIRE_CORPUS is set",
            dir.display()
        );
    }
    eprintln!(
        "{suite}: skipped, corpus directory {} not found (set RULEATLAS_SHARED_DATA)",
        dir.display()
    );
    None
}

/// Scaffolding for tests that stand local git repositories in for upstream ones (`sync`, and
/// the atlas and CLI tests built on it). Test code: failures panic with what went wrong.
pub mod testkit {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A fresh scratch folder `<temp>/ruleatlas-<suite>-<pid>/<name>`, outside any git work
    /// tree: `CARGO_TARGET_TMPDIR` lies inside the project's own checkout when the target dir is
    /// the default one (as on CI), and a folder inside a work tree rightly gets that tree's
    /// commit recorded.
    pub fn scratch(suite: &str, name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("ruleatlas-{suite}-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        assert!(
            !inside_work_tree(&dir),
            "{} is inside a git work tree",
            dir.display()
        );
        dir
    }

    fn inside_work_tree(dir: &Path) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--is-inside-work-tree"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Runs `git -C dir ARGS` with a fixed test identity and no signing; returns its trimmed
    /// stdout and panics (with git's stderr) when it fails.
    pub fn git(dir: &Path, args: &[&str]) -> String {
        git_with_env(dir, args, &[])
    }

    /// [`git`] with extra environment variables (`GIT_COMMITTER_DATE`, say).
    pub fn git_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.org",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("running git: {e}"));
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes `text` to `root/rel`, creating the folders on the way.
    pub fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    }
}
