//! Sync against local git repositories standing in for upstream (file:// URLs, no network).
//!
//! Contents:
//! - `update_cycle`: first sync, a no-op re-sync, an upstream commit, the diff, annotation.
//! - `unreachable_source_keeps_cache`: one source gone, the other fine; the old copy stays usable.
//! - `broken_update_keeps_old_snapshot`: the fetch works but the checkout cannot complete.
//! - `offline_uses_cache_only`, `pinned_tag`, `local_folder_source`, `spec_downloads`.

use ruleatlas_corpus::testkit::{self, git, write};
use ruleatlas_ir::{Lowered, Rule};
use ruleatlas_sync::progress::Silent;
use ruleatlas_sync::{
    annotate, diff_locks, sync, Cache, Extract, Lock, RuleSource, Sources, SpecSource, Status,
    SyncOptions, SyncReport, LOCK_FILE, PREV_LOCK_FILE,
};
use std::io::Write;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    testkit::scratch("sync-tests", name)
}

fn commit_all(repo: &Path, msg: &str) -> String {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", msg]);
    git(repo, &["rev-parse", "HEAD"])
}

fn new_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
}

const SIGMA_EXEC: &str = r#"title: Kubectl Exec Into Pod
id: 7b9b3d4e-0c1f-4a3e-9d59-2f7c1e0e8a11
status: experimental
logsource:
  product: kubernetes
  service: audit
detection:
  selection:
    verb: create
    objectRef.resource: pods
    objectRef.subresource: exec
  condition: selection
level: medium
"#;

const SIGMA_SECRETS: &str = r#"title: Secrets Listed
id: 0f6c3a52-7d4c-4f0e-8c0e-51d3a3a5b0c2
status: test
logsource:
  product: kubernetes
  service: audit
detection:
  selection:
    verb: list
    objectRef.resource: secrets
  condition: selection
level: low
"#;

const SIGMA_HUNT: &str = r#"title: Anonymous Request
id: 3c1e2f6a-9b8d-4e7f-a1b2-c3d4e5f60718
logsource:
  product: kubernetes
  service: audit
detection:
  selection:
    user.username: 'system:anonymous'
  condition: selection
level: high
"#;

const ELASTIC_RULE: &str = r#"[metadata]
creation_date = "2024/01/01"
maturity = "production"

[rule]
author = ["test"]
description = "A pod was created with hostNetwork."
name = "Kubernetes Pod With Host Network"
risk_score = 47
rule_id = "a1b2c3d4-0000-4000-8000-000000000001"
severity = "medium"
type = "query"
language = "kuery"
index = ["logs-kubernetes.audit_logs-*"]
query = '''
kubernetes.audit.verb:create and kubernetes.audit.objectRef.resource:pods and
kubernetes.audit.requestObject.spec.hostNetwork:true
'''
"#;

/// Two upstream repositories: a Sigma-like one and an Elastic-like one, each with files outside
/// their rule folders that must not be synced.
fn upstreams(base: &Path) -> (PathBuf, PathBuf) {
    let sigma = base.join("up-sigma");
    new_repo(&sigma);
    write(&sigma, "rules/kubernetes/exec.yml", SIGMA_EXEC);
    write(
        &sigma,
        "rules-threat-hunting/kubernetes/anon.yml",
        SIGMA_HUNT,
    );
    write(&sigma, "tests/test_rules.py", "print('not a rule')\n");
    write(&sigma, "README.md", "# sigma stand-in\n");
    commit_all(&sigma, "initial");
    let elastic = base.join("up-elastic");
    new_repo(&elastic);
    write(
        &elastic,
        "rules/integrations/kubernetes/host_network.toml",
        ELASTIC_RULE,
    );
    write(&elastic, "rules_building_block/.gitkeep", "");
    write(&elastic, "docs/index.md", "docs\n");
    commit_all(&elastic, "initial");
    (sigma, elastic)
}

fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn git_source(name: &str, vendor: &str, repo: &Path, folders: &[&str]) -> RuleSource {
    RuleSource {
        name: name.into(),
        vendor: vendor.into(),
        git: Some(url(repo)),
        path: None,
        git_ref: None,
        folders: folders.iter().map(|s| s.to_string()).collect(),
    }
}

fn run(cache: &Path, sources: &Sources, offline: bool) -> SyncReport {
    sync(
        &SyncOptions {
            cache: cache.to_path_buf(),
            sources: sources.clone(),
            offline,
        },
        &Silent,
    )
    .unwrap()
}

fn status<'r>(report: &'r SyncReport, name: &str) -> &'r Status {
    &report
        .outcomes
        .iter()
        .find(|o| o.name == name)
        .unwrap()
        .status
}

fn rule_at(path: &Path) -> Rule {
    let mut r = Rule::new(
        "sigma",
        "x",
        "x",
        "sigma",
        Lowered::Error {
            diagnostic: ruleatlas_ir::Diagnostic::error("test", "not lowered in this test"),
        },
    );
    r.source.path = path.display().to_string();
    r
}

#[test]
fn update_cycle() {
    let base = scratch("update_cycle");
    let (sigma, elastic) = upstreams(&base);
    let cache = base.join("cache");
    let sources = Sources {
        rules: vec![
            git_source("sigma", "sigma", &sigma, &["rules*"]),
            git_source(
                "elastic",
                "elastic",
                &elastic,
                &["rules", "rules_building_block"],
            ),
        ],
        specs: vec![],
    };

    // First sync: everything fetched, only the rule folders.
    let r1 = run(&cache, &sources, false);
    assert!(r1.all_ok(), "{:?}", r1.outcomes);
    assert!(matches!(
        status(&r1, "sigma"),
        Status::Updated { from: None, .. }
    ));
    let c1 = git(&sigma, &["rev-parse", "HEAD"]);
    let lock1 = Cache::open(&cache).unwrap().lock().clone();
    let s1 = lock1.rules_named("sigma").unwrap();
    assert_eq!(s1.commit.as_deref(), Some(c1.as_str()));
    assert_eq!(
        s1.commit_date.as_deref(),
        Some(git(&sigma, &["log", "-1", "--format=%cI"]).as_str())
    );
    let files: Vec<&str> = s1.files.keys().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "rules-threat-hunting/kubernetes/anon.yml",
            "rules/kubernetes/exec.yml"
        ]
    );
    let exec_hash = &s1.files["rules/kubernetes/exec.yml"];
    assert_eq!(exec_hash.len(), 64);
    let snap1 = lock1.dir_of(s1);
    assert!(snap1.join("rules/kubernetes/exec.yml").is_file());
    assert!(!snap1.join("tests").exists() && !snap1.join("README.md").exists());

    let cache1 = Cache::open(&cache).unwrap();
    let paths = cache1.rule_paths();
    let names: Vec<(String, String)> = paths
        .iter()
        .map(|(v, p)| (v.clone(), p.file_name().unwrap().to_string_lossy().into()))
        .collect();
    assert_eq!(
        names,
        [
            ("sigma".into(), "rules".into()),
            ("sigma".into(), "rules-threat-hunting".into()),
            ("elastic".into(), "rules".into()),
            ("elastic".into(), "rules_building_block".into()),
        ]
    );
    assert!(cache1.specs_dir().is_none());

    // Nothing changed upstream: nothing fetched, no previous lock rotated.
    let r2 = run(&cache, &sources, false);
    assert!(r2.all_ok());
    assert!(!r2.changed);
    assert!(matches!(status(&r2, "sigma"), Status::Unchanged { revision } if *revision == c1));
    assert!(!cache.join(PREV_LOCK_FILE).exists());

    // Upstream moves: one rule changed, one added, one removed.
    write(
        &sigma,
        "rules/kubernetes/exec.yml",
        &SIGMA_EXEC.replace("level: medium", "level: high"),
    );
    write(&sigma, "rules/kubernetes/secrets.yml", SIGMA_SECRETS);
    std::fs::remove_file(sigma.join("rules-threat-hunting/kubernetes/anon.yml")).unwrap();
    let c2 = commit_all(&sigma, "second");
    let r3 = run(&cache, &sources, false);
    assert!(r3.all_ok(), "{:?}", r3.outcomes);
    assert!(r3.changed);
    assert!(
        matches!(status(&r3, "sigma"), Status::Updated { from: Some(f), to } if *f == c1 && *to == c2)
    );
    assert!(matches!(status(&r3, "elastic"), Status::Unchanged { .. }));

    let cache3 = Cache::open(&cache).unwrap();
    let prev = cache3.prev_lock().expect("previous lock kept");
    assert_eq!(
        prev.rules_named("sigma").unwrap().commit.as_deref(),
        Some(c1.as_str())
    );
    let d = diff_locks(&prev, cache3.lock());
    let ds = d.sources.iter().find(|s| s.name == "sigma").unwrap();
    assert_eq!(ds.added, ["rules/kubernetes/secrets.yml"]);
    assert_eq!(ds.removed, ["rules-threat-hunting/kubernetes/anon.yml"]);
    assert_eq!(ds.changed, ["rules/kubernetes/exec.yml"]);
    assert!(d
        .sources
        .iter()
        .find(|s| s.name == "elastic")
        .unwrap()
        .is_empty());
    let text = ruleatlas_sync::SyncDiff {
        files: d.clone(),
        rules: None,
        coverage: None,
    }
    .render_text();
    assert!(
        text.contains(&format!("sigma (sigma): {} → {}", &c1[..12], &c2[..12])),
        "{text}"
    );
    assert!(text.contains("  + rules/kubernetes/secrets.yml"), "{text}");
    assert!(
        text.contains("  - rules-threat-hunting/kubernetes/anon.yml"),
        "{text}"
    );
    assert!(!text.contains("elastic"), "{text}");

    // Loading reads the new commit: new folders, the new file, annotation with the new commit.
    let (_, sigma_rules) = cache3
        .rule_paths()
        .into_iter()
        .find(|(v, p)| v == "sigma" && p.ends_with("rules"))
        .unwrap();
    let new_file = sigma_rules.join("kubernetes/secrets.yml");
    assert!(new_file.is_file());
    assert!(
        std::fs::read_to_string(sigma_rules.join("kubernetes/exec.yml"))
            .unwrap()
            .contains("level: high")
    );
    assert!(!cache3
        .rule_paths()
        .iter()
        .any(|(_, p)| p.ends_with("rules-threat-hunting")));
    let mut rule = rule_at(&new_file);
    assert!(cache3.annotate(&mut rule));
    assert_eq!(rule.source.commit.as_deref(), Some(c2.as_str()));
    assert_eq!(
        rule.source.repo_path.as_deref(),
        Some("rules/kubernetes/secrets.yml")
    );
    assert_eq!(rule.source.repo_url.as_deref(), Some(url(&sigma).as_str()));
    assert!(rule.source.commit_date.is_some());
    // A path spelled differently (`..`) still finds its source.
    let mut roundabout = rule_at(&sigma_rules.join("../rules/kubernetes/secrets.yml"));
    assert!(cache3.annotate(&mut roundabout));
    assert_eq!(
        roundabout.source.repo_path.as_deref(),
        Some("rules/kubernetes/secrets.yml")
    );
    // The previous snapshot stays on disk for `sync --diff`, and still annotates with its commit.
    assert!(snap1.join("rules/kubernetes/exec.yml").is_file());
    let mut old_rule = rule_at(&snap1.join("rules/kubernetes/exec.yml"));
    assert!(annotate(&mut old_rule, &prev));
    assert_eq!(old_rule.source.commit.as_deref(), Some(c1.as_str()));
    // A file outside the cache is left alone.
    let mut outside = rule_at(&sigma.join("rules/kubernetes/exec.yml"));
    assert!(!annotate(&mut outside, cache3.lock()));
    assert!(outside.source.commit.is_none());

    // A third commit: the first snapshot is no longer named by any lock and is removed.
    write(
        &sigma,
        "rules/kubernetes/more.yml",
        &SIGMA_SECRETS.replace("0f6c3a52", "1f6c3a52"),
    );
    commit_all(&sigma, "third");
    assert!(run(&cache, &sources, false).all_ok());
    assert!(!snap1.exists());
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("repos/sigma"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "current and previous snapshot only: {leftovers:?}"
    );
}

#[test]
fn unreachable_source_keeps_cache() {
    let base = scratch("unreachable");
    let (sigma, elastic) = upstreams(&base);
    let cache = base.join("cache");
    let mut sources = Sources {
        rules: vec![
            git_source("sigma", "sigma", &sigma, &["rules"]),
            git_source("elastic", "elastic", &elastic, &["rules"]),
        ],
        specs: vec![],
    };
    assert!(run(&cache, &sources, false).all_ok());
    let before = Cache::open(&cache).unwrap().lock().clone();

    // Upstream disappears (host down, repository renamed) and a never-synced source is added.
    std::fs::rename(&sigma, base.join("gone")).unwrap();
    sources.rules.push(git_source(
        "private",
        "sigma",
        &base.join("no-such-repo"),
        &["rules"],
    ));
    write(
        &elastic,
        "rules/new.toml",
        &ELASTIC_RULE.replace("0001", "0002"),
    );
    let c_el = commit_all(&elastic, "more");

    let r = run(&cache, &sources, false);
    assert!(!r.all_ok());
    let failed: Vec<&str> = r.failures().map(|o| o.name.as_str()).collect();
    assert_eq!(failed, ["sigma", "private"]);
    match status(&r, "sigma") {
        Status::Failed { error, kept } => {
            assert!(
                error.contains("gone") || error.contains("up-sigma"),
                "{error}"
            );
            assert_eq!(
                kept.as_deref(),
                before.rules_named("sigma").unwrap().commit.as_deref()
            );
        }
        s => panic!("{s:?}"),
    }
    assert!(matches!(
        status(&r, "private"),
        Status::Failed { kept: None, .. }
    ));
    // The reachable source still moved on.
    assert!(matches!(status(&r, "elastic"), Status::Updated { to, .. } if *to == c_el));

    // The cached copy of the failed source is still in the lock and on disk.
    let cache_now = Cache::open(&cache).unwrap();
    assert_eq!(
        cache_now.lock().rules_named("sigma"),
        before.rules_named("sigma"),
        "failed source keeps its previous entry"
    );
    assert!(cache_now.lock().rules_named("private").is_none());
    let sigma_dir = cache_now
        .rule_paths()
        .into_iter()
        .find(|(v, _)| v == "sigma")
        .unwrap()
        .1;
    assert!(sigma_dir.join("kubernetes/exec.yml").is_file());
}

#[test]
fn broken_update_keeps_old_snapshot() {
    let base = scratch("broken_update");
    let (sigma, _) = upstreams(&base);
    let cache = base.join("cache");
    let sources = Sources {
        rules: vec![git_source(
            "sigma",
            "sigma",
            &sigma,
            &["rules", "rules-threat-hunting"],
        )],
        specs: vec![],
    };
    assert!(run(&cache, &sources, false).all_ok());
    let lock_before = std::fs::read_to_string(cache.join(LOCK_FILE)).unwrap();
    // Upstream drops a configured folder: the new commit cannot be checked out as configured.
    git(&sigma, &["rm", "-r", "-q", "rules-threat-hunting"]);
    commit_all(&sigma, "drop hunting rules");
    let r = run(&cache, &sources, false);
    assert!(!r.all_ok());
    let Status::Failed { error, kept } = status(&r, "sigma") else {
        panic!()
    };
    assert!(
        error.contains("missing") || error.contains("did not match"),
        "{error}"
    );
    assert!(kept.is_some());
    // No half-written snapshot is left behind, and the lock content is what it was.
    let names: Vec<String> = std::fs::read_dir(cache.join("repos/sigma"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(!names[0].starts_with(".tmp"));
    let before = serde_json::from_str::<Lock>(&lock_before).unwrap();
    let after = Cache::open(&cache).unwrap().lock().clone();
    assert!(before.same_content(&after));
}

#[test]
fn offline_uses_cache_only() {
    let base = scratch("offline");
    let (sigma, elastic) = upstreams(&base);
    let cache = base.join("cache");
    let mut sources = Sources {
        rules: vec![git_source("sigma", "sigma", &sigma, &["rules"])],
        specs: vec![],
    };
    assert!(run(&cache, &sources, false).all_ok());
    let c1 = git(&sigma, &["rev-parse", "HEAD"]);
    write(&sigma, "rules/kubernetes/secrets.yml", SIGMA_SECRETS);
    commit_all(&sigma, "second");
    sources
        .rules
        .push(git_source("elastic", "elastic", &elastic, &["rules"]));
    let r = run(&cache, &sources, true);
    assert!(matches!(status(&r, "sigma"), Status::Unchanged { revision } if *revision == c1));
    assert!(
        matches!(status(&r, "elastic"), Status::Failed { error, kept: None } if error.contains("offline"))
    );
    let lock = Cache::open(&cache).unwrap().lock().clone();
    assert_eq!(
        lock.rules_named("sigma").unwrap().commit.as_deref(),
        Some(c1.as_str())
    );
    assert!(!cache.join("git/elastic.git").exists());
}

#[test]
fn pinned_tag() {
    let base = scratch("pinned");
    let (sigma, _) = upstreams(&base);
    let tagged = git(&sigma, &["rev-parse", "HEAD"]);
    git(
        &sigma,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "tag",
            "-a",
            "r1",
            "-m",
            "release",
        ],
    );
    write(&sigma, "rules/kubernetes/secrets.yml", SIGMA_SECRETS);
    let head = commit_all(&sigma, "after the tag");
    let cache = base.join("cache");
    let mut src = git_source("sigma", "sigma", &sigma, &["rules"]);
    src.git_ref = Some("r1".into());
    let mut sources = Sources {
        rules: vec![src],
        specs: vec![],
    };
    let r = run(&cache, &sources, false);
    assert!(r.all_ok(), "{:?}", r.outcomes);
    let lock = Cache::open(&cache).unwrap().lock().clone();
    let s = lock.rules_named("sigma").unwrap();
    // The annotated tag resolves to its commit, not the tag object.
    assert_eq!(s.commit.as_deref(), Some(tagged.as_str()));
    assert!(!s.files.contains_key("rules/kubernetes/secrets.yml"));
    // A full commit id pins too, with no ls-remote needed.
    sources.rules[0].git_ref = Some(head.clone());
    let r = run(&cache, &sources, false);
    assert!(r.all_ok(), "{:?}", r.outcomes);
    let lock = Cache::open(&cache).unwrap().lock().clone();
    assert_eq!(
        lock.rules_named("sigma").unwrap().commit.as_deref(),
        Some(head.as_str())
    );
    sources.rules[0].git_ref = Some("no-such-branch".into());
    let r = run(&cache, &sources, false);
    assert!(
        matches!(status(&r, "sigma"), Status::Failed { error, kept: Some(_) } if error.contains("no-such-branch"))
    );
}

#[test]
fn local_folder_source() {
    let base = scratch("folder");
    let mine = base.join("my-rules");
    write(&mine, "k8s/exec.yml", SIGMA_EXEC);
    write(&mine, "notes/todo.txt", "not synced\n");
    let cache = base.join("cache");
    let sources = Sources {
        rules: vec![RuleSource {
            name: "mine".into(),
            vendor: "sigma".into(),
            git: None,
            path: Some(mine.clone()),
            git_ref: None,
            folders: vec!["k8s".into()],
        }],
        specs: vec![],
    };
    // Local folders sync offline too: they need no network.
    let r = run(&cache, &sources, true);
    assert!(r.all_ok(), "{:?}", r.outcomes);
    let lock = Cache::open(&cache).unwrap().lock().clone();
    let s = lock.rules_named("mine").unwrap();
    assert!(s.commit.is_none());
    assert_eq!(s.files.keys().collect::<Vec<_>>(), ["k8s/exec.yml"]);
    assert!(matches!(
        status(&run(&cache, &sources, true), "mine"),
        Status::Unchanged { .. }
    ));
    // Under git, with an edit not committed: the commit is recorded, flagged dirty, and not
    // claimed for the rules.
    new_repo(&mine);
    let c = commit_all(&mine, "mine");
    write(&mine, "k8s/secrets.yml", SIGMA_SECRETS);
    let r = run(&cache, &sources, false);
    assert!(
        matches!(status(&r, "mine"), Status::Updated { .. }),
        "{:?}",
        r.outcomes
    );
    let cache_now = Cache::open(&cache).unwrap();
    let s = cache_now.lock().rules_named("mine").unwrap();
    assert_eq!(s.commit.as_deref(), Some(c.as_str()));
    assert!(s.dirty);
    let mut rule = rule_at(&cache_now.lock().dir_of(s).join("k8s/secrets.yml"));
    assert!(cache_now.annotate(&mut rule));
    assert_eq!(rule.source.repo_path.as_deref(), Some("k8s/secrets.yml"));
    assert!(rule.source.commit.is_none() && rule.source.repo_url.is_none());
    let _ = std::fs::remove_dir_all(&base);
}

/// A zip archive with one stored and one deflated member, like a wheel.
fn make_zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let body = if *deflate {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.to_vec()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend(0u16.to_le_bytes());
            h.extend(method.to_le_bytes());
            h.extend(0u32.to_le_bytes());
            h.extend(crc.sum().to_le_bytes());
            h.extend((body.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                h.extend([0u8; 10]); // comment len, disk, attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(&body);
        central.extend(header(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[test]
fn spec_downloads() {
    let base = scratch("specs");
    let swagger = base.join("upstream/swagger.json");
    write(
        &base,
        "upstream/swagger.json",
        r#"{"swagger":"2.0","paths":{}}"#,
    );
    let model = br#"{"metadata":{"signingName":"ec2"},"operations":{}}"#;
    let wheel = base.join("upstream/botocore-9.9.9-py3-none-any.whl");
    std::fs::write(
        &wheel,
        make_zip(&[
            (
                "botocore/data/ec2/2016-11-15/service-2.json.gz",
                model,
                true,
            ),
            (
                "botocore/data/ec2/2016-11-15/paginators-1.json",
                b"{}",
                false,
            ),
            (
                "botocore/data/s3/2006-03-01/service-2.json.gz",
                b"{\"s3\":1}",
                false,
            ),
            ("botocore/__init__.py", b"", false),
        ]),
    )
    .unwrap();
    let cache = base.join("cache");
    let mut sources = Sources {
        rules: vec![],
        specs: vec![
            SpecSource {
                name: "kubernetes".into(),
                url: Some(url(&swagger)),
                pypi: None,
                version: None,
                index: None,
                dest: "kubernetes/swagger.v1.36.json".into(),
                extract: None,
                sha256: None,
            },
            SpecSource {
                name: "botocore".into(),
                url: Some(url(&wheel)),
                pypi: None,
                version: None,
                index: None,
                dest: "aws/botocore-9.9.9".into(),
                extract: Some(Extract {
                    prefix: "botocore/data/".into(),
                    suffix: "/service-2.json.gz".into(),
                }),
                sha256: None,
            },
        ],
    };
    let r = run(&cache, &sources, false);
    assert!(r.all_ok(), "{:?}", r.outcomes);
    let c = Cache::open(&cache).unwrap();
    let specs = c.specs_dir().unwrap();
    assert!(specs.join("kubernetes/swagger.v1.36.json").is_file());
    assert_eq!(
        std::fs::read(specs.join("aws/botocore-9.9.9/ec2/2016-11-15/service-2.json.gz")).unwrap(),
        model
    );
    assert!(specs
        .join("aws/botocore-9.9.9/s3/2006-03-01/service-2.json.gz")
        .is_file());
    assert!(!specs
        .join("aws/botocore-9.9.9/ec2/2016-11-15/paginators-1.json")
        .exists());
    assert_eq!(c.lock().spec_named("botocore").unwrap().files, 2);
    // Pinned sources are not downloaded again, even when the URL's content were to change.
    std::fs::remove_file(&wheel).unwrap();
    let r = run(&cache, &sources, false);
    assert!(r.all_ok() && !r.changed, "{:?}", r.outcomes);
    // A wrong pinned hash fails and keeps what was there.
    sources.specs[0].sha256 = Some("0".repeat(64));
    sources.specs[0].dest = "kubernetes/swagger.v1.37.json".into();
    let r = run(&cache, &sources, false);
    let Status::Failed { error, kept } = status(&r, "kubernetes") else {
        panic!("{:?}", r.outcomes)
    };
    assert!(error.contains("sha256"), "{error}");
    assert!(kept.is_some());
    assert!(specs.join("kubernetes/swagger.v1.36.json").is_file());
    assert!(!specs.join("kubernetes/swagger.v1.37.json").exists());
}

#[test]
fn sources_file_paths_are_relative_to_it() {
    let base = scratch("sources_file");
    let file = base.join("conf/sources.toml");
    write(
        &base,
        "conf/sources.toml",
        "[[rules]]\nname = 'mine'\nvendor = 'sigma'\npath = '../my-rules'\nfolders = ['k8s']\n",
    );
    let s = Sources::load(&file).unwrap();
    assert_eq!(
        s.rules[0].path.as_deref(),
        Some(base.join("conf/../my-rules").as_path())
    );
    let err = Sources::load(&base.join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
}
