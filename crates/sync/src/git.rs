//! Git through the system `git` command.
//!
//! Why the CLI rather than libgit2 or gix: no C library or large crate graph to build, and the
//! user's own git setup applies unchanged — credential helpers and ssh agents for private rule
//! repositories, `http.proxy`, `url.<base>.insteadOf` mirrors, custom CA bundles. Every user who
//! can `git clone` a repository can sync it.

use crate::progress::Progress;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

fn git() -> Command {
    let mut c = Command::new("git");
    // Inherited from a surrounding git hook or script, these would point our commands at the
    // wrong repository.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        c.env_remove(var);
    }
    // Never block on a password prompt behind a progress bar: credentials come from helpers/agents.
    c.env("GIT_TERMINAL_PROMPT", "0");
    // File hashes must not depend on the user's line-ending settings.
    c.args(["-c", "core.autocrlf=false", "-c", "core.eol=lf"]);
    c.stdin(Stdio::null());
    c
}

fn failure(what: &str, stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    // git's progress lines end in `\r`; the cause is in the last real lines.
    let lines: Vec<&str> = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    if tail.is_empty() {
        format!("{what} failed")
    } else {
        format!("{what}: {tail}")
    }
}

fn run(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the `git` command was not found; install git to sync repositories".to_string()
        } else {
            format!("{what}: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(failure(what, &out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const FETCHED_REF: &str = "refs/ruleatlas/fetched";

pub fn is_commit_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a ref resolves to on the remote, without fetching: the cheap up-to-date check.
pub fn ls_remote(url: &str, git_ref: Option<&str>) -> Result<String, String> {
    let mut cmd = git();
    cmd.args(["ls-remote", "--", url]);
    let wanted: Vec<String> = match git_ref {
        None => vec!["HEAD".into()],
        Some(r) if r.starts_with("refs/") => vec![r.into(), format!("{r}^{{}}")],
        Some(r) => vec![
            format!("refs/tags/{r}^{{}}"),
            format!("refs/tags/{r}"),
            format!("refs/heads/{r}"),
        ],
    };
    cmd.args(&wanted);
    let out = run(cmd, &format!("git ls-remote {url}"))?;
    let refs: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (sha.trim(), name.trim()))
        .collect();
    // Order of `wanted` is the preference: a peeled tag names the commit, not the tag object.
    for w in &wanted {
        if let Some((sha, _)) = refs.iter().find(|(_, name)| name == w) {
            return Ok(sha.to_string());
        }
    }
    Err(match git_ref {
        None => format!("{url} has no HEAD (empty repository?)"),
        Some(r) => format!("{url} has no branch or tag `{r}`"),
    })
}

/// Shallow fetch of one commit or ref into the bare repository `git_dir` (created on first use).
/// Returns the fetched commit id. Objects already present from earlier syncs are not sent again.
pub fn fetch(
    git_dir: &Path,
    url: &str,
    what: &str,
    progress: &dyn Progress,
    label: &str,
) -> Result<String, String> {
    if !git_dir.join("HEAD").is_file() {
        let mut init = git();
        init.args(["init", "--bare", "--quiet"]).arg(git_dir);
        run(init, "git init")?;
    }
    let mut cmd = git();
    cmd.arg("--git-dir")
        .arg(git_dir)
        .args([
            "fetch",
            "--depth",
            "1",
            "--no-tags",
            "--progress",
            "--",
            url,
        ])
        // A ref (not just FETCH_HEAD) makes the next fetch offer this commit as a base, so only
        // the objects that changed upstream are sent again.
        .arg(format!("+{what}:{FETCHED_REF}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("running git fetch: {e}"))?;
    let mut stderr_all = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        let mut buf = [0u8; 4096];
        let mut line = Vec::new();
        loop {
            let n = match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            stderr_all.extend_from_slice(&buf[..n]);
            for &b in &buf[..n] {
                if b == b'\r' || b == b'\n' {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if !text.is_empty() {
                        progress.message(label, text);
                    }
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for git fetch: {e}"))?;
    if !status.success() {
        return Err(failure(&format!("git fetch {url} {what}"), &stderr_all));
    }
    let mut rev = git();
    rev.arg("--git-dir").arg(git_dir).args([
        "rev-parse",
        "--verify",
        &format!("{FETCHED_REF}^{{commit}}"),
    ]);
    let commit = run(rev, "git rev-parse")?.trim().to_string();
    // Shallow fetches leave older snapshots' objects behind; let git decide when to pack/prune.
    let mut gc = git();
    gc.arg("--git-dir")
        .arg(git_dir)
        .args(["gc", "--auto", "--quiet"]);
    let _ = run(gc, "git gc");
    Ok(commit)
}

/// Committer date of a commit, RFC 3339.
pub fn commit_date(git_dir: &Path, commit: &str) -> Result<String, String> {
    let mut cmd = git();
    cmd.arg("--git-dir")
        .arg(git_dir)
        .args(["log", "-1", "--format=%cI", commit, "--"]);
    Ok(run(cmd, "git log")?.trim().to_string())
}

/// Writes the files of `folders` at `commit` into the empty folder `dest`.
pub fn checkout(
    git_dir: &Path,
    commit: &str,
    folders: &[String],
    dest: &Path,
) -> Result<(), String> {
    // A private index per checkout: the bare repository's own index would carry one snapshot's
    // paths into the next.
    let index = git_dir.join(format!(
        "ruleatlas-index-{}",
        crate::fsutil::unique_suffix()
    ));
    let mut cmd = git();
    cmd.env("GIT_INDEX_FILE", &index)
        .arg("--git-dir")
        .arg(git_dir)
        .arg("--work-tree")
        .arg(dest)
        .args(["checkout", "--quiet", "--force", commit, "--"]);
    for f in folders {
        if f == "." {
            cmd.arg(".");
        } else {
            // glob magic: `*` stays inside one path part, as in `expand_folders`.
            cmd.arg(format!(":(glob){f}/**"));
        }
    }
    let res = run(cmd, "git checkout");
    let _ = std::fs::remove_file(&index);
    res.map(|_| ()).map_err(|e| {
        if e.contains("did not match") {
            format!("a folder of {folders:?} is missing at commit {commit}: {e}")
        } else {
            e
        }
    })
}

/// For a local folder inside a git work tree: its HEAD commit, date, and whether it has
/// uncommitted changes. `None` outside git.
pub fn describe_worktree(dir: &Path) -> Option<(String, String, bool)> {
    let mut head = git();
    head.arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%H %cI"]);
    let out = run(head, "git log").ok()?;
    let (sha, date) = out.trim().split_once(' ')?;
    let mut status = git();
    status.arg("-C").arg(dir).args([
        "status",
        "--porcelain",
        "--untracked-files=normal",
        "--",
        ".",
    ]);
    let dirty = run(status, "git status")
        .map(|s| !s.trim().is_empty())
        .unwrap_or(true);
    Some((sha.to_string(), date.to_string(), dirty))
}
