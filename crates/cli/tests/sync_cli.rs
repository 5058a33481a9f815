//! `ruleatlas sync` end to end, through the binary: local git repositories stand in for upstream
//! (file:// URLs, no network), and `map` reads the synced cache when given no paths.

use ruleatlas_corpus::testkit::{self, git, write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    testkit::scratch("sync-cli", name)
}

fn ruleatlas(cache: &Path, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
        .args(args)
        .env("RULEATLAS_CACHE", cache)
        .output()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

const EXEC: &str = "title: Exec Into Pod\nid: 11111111-2222-4333-8444-555555555555\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n  selection:\n    verb: create\n    objectRef.resource: pods\n    objectRef.subresource: exec\n  condition: selection\nlevel: medium\n";
const SECRETS: &str = "title: Secrets Listed\nid: 66666666-7777-4888-8999-000000000000\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n  selection:\n    verb: list\n    objectRef.resource: secrets\n  condition: selection\nlevel: low\n";

#[test]
fn sync_diff_map_and_unreachable() {
    let base = scratch("cycle");
    let up = base.join("upstream");
    std::fs::create_dir_all(&up).unwrap();
    git(&up, &["init", "-q", "-b", "main"]);
    write(&up, "rules/k8s/exec.yml", EXEC);
    git(&up, &["add", "-A"]);
    git(&up, &["commit", "-q", "-m", "one"]);
    let sources = base.join("sources.toml");
    write(
        &base,
        "sources.toml",
        &format!(
            "[[rules]]\nname = \"sigma\"\nvendor = \"sigma\"\ngit = \"file://{}\"\nfolders = [\"rules\"]\n",
            up.display()
        ),
    );
    let cache = base.join("cache");
    let s = sources.to_str().unwrap();
    let c = cache.to_str().unwrap();

    let (code, out, err) = ruleatlas(&cache, &["sync", "--sources", s, "--cache", c, "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 sources, 0 failed"), "{out}");

    // No paths: `map` reads the cache.
    let (code, out, err) = ruleatlas(&cache, &["map", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("11111111-2222-4333-8444-555555555555"),
        "{out}"
    );
    assert!(!out.contains("66666666"), "{out}");

    write(&up, "rules/k8s/secrets.yml", SECRETS);
    git(&up, &["add", "-A"]);
    git(&up, &["commit", "-q", "-m", "two"]);
    let (code, out, err) = ruleatlas(
        &cache,
        &["sync", "--sources", s, "--cache", c, "-q", "--diff"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("  + rules/k8s/secrets.yml"), "{out}");
    assert!(
        out.contains("rules: 1 added, 0 removed, 0 changed"),
        "{out}"
    );
    assert!(
        out.contains("+ sigma:66666666-7777-4888-8999-000000000000 Secrets Listed"),
        "{out}"
    );
    assert!(out.contains("(now covered)"), "{out}");

    let (code, out, _) = ruleatlas(&cache, &["map", "--json"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("66666666-7777-4888-8999-000000000000"),
        "{out}"
    );

    // Upstream unreachable: exit 1, the reason on stderr, the cached copy still used.
    std::fs::rename(&up, base.join("moved")).unwrap();
    let (code, out, err) = ruleatlas(&cache, &["sync", "--sources", s, "--cache", c, "-q"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("sigma failed") && err.contains("keeping the cached copy"),
        "{err}"
    );
    let (code, out, _) = ruleatlas(&cache, &["map", "--json"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("66666666-7777-4888-8999-000000000000"),
        "{out}"
    );

    // A relative --cache works (git resolves some paths against its work tree, not ours).
    let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
        .args([
            "sync",
            "-q",
            "--cache",
            "rel-cache",
            "--sources",
            "sources.toml",
        ])
        .current_dir(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "upstream is still moved away");
    std::fs::rename(base.join("moved"), &up).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ruleatlas"))
        .args([
            "sync",
            "-q",
            "--cache",
            "rel-cache",
            "--sources",
            "sources.toml",
        ])
        .current_dir(&base)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(base.join("rel-cache/ruleatlas.lock.json").is_file());

    // A broken sources file is a usage error (2), with the file named.
    write(&base, "bad.toml", "[[rules]]\nname = \"x\"\n");
    let bad = base.join("bad.toml");
    let (code, _, err) = ruleatlas(
        &cache,
        &["sync", "--sources", bad.to_str().unwrap(), "--cache", c],
    );
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml"), "{err}");
}
