//! `ruleatlas build [--rules PATH...] [--specs DIR] --out DIR`: rules + catalog + mapping → the
//! static atlas. Without `--rules`, the rules `ruleatlas sync` put in the cache; rules from the
//! cache are annotated with the lock (upstream URL, commit, date), so each rule page links to its
//! file at that commit and the home page lists every source's commit.

use anyhow::Context;
use ruleatlas_catalog::Catalog;
use ruleatlas_ir::{DiagSeverity, Rule};
use ruleatlas_site::{LoadedRules, Provenance};
use ruleatlas_sync::{Cache, Lock, LockedRules, LockedSpec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (Elastic TOML, Sigma YAML, Falco YAML); default: the rule folders of
    /// the sync cache.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Folder laid out like catalog-sources/ (kubernetes/swagger*.json, aws/botocore-*/…);
    /// default: the sync cache, else the built-in snapshot.
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
    /// Where to write the site.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Date shown in the footer (default: today, UTC); fix it for reproducible builds.
    #[arg(long, value_name = "TEXT")]
    pub date: Option<String>,
    /// Print the build report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The rules of an atlas, loaded and annotated, and where they came from.
pub struct AtlasRules {
    pub loaded: LoadedRules,
    /// One entry per locked rule source the rules come from (commit, date, upstream URL).
    pub lock_provenance: Vec<Provenance>,
    /// The sync cache, when one is in use.
    pub cache: Option<Cache>,
    /// Whether the rules were read from the cache because no path was given.
    pub from_cache: bool,
}

/// Loads `paths`, or the sync cache's rule folders when `paths` is empty, and annotates every
/// rule that lies inside a synced snapshot with its upstream repository, commit and date.
pub fn load_rules(paths: &[PathBuf]) -> anyhow::Result<AtlasRules> {
    let cache = Cache::open_default();
    let from_cache = paths.is_empty();
    let paths: Vec<PathBuf> = if from_cache {
        let folders = match &cache {
            Ok(c) => c.rule_folders(),
            Err(e) => anyhow::bail!("no --rules given and no synced rules: {e}"),
        };
        if folders.is_empty() {
            anyhow::bail!(
                "no --rules given and the sync cache holds no rule folders: pass --rules PATH..., or run `ruleatlas sync`"
            );
        }
        folders
    } else {
        paths.to_vec()
    };
    let mut loaded = ruleatlas_site::load_rules(&paths);
    let cache = cache.ok();
    let mut lock_provenance = Vec::new();
    if let Some(c) = &cache {
        let used = annotate(c, &mut loaded.rules);
        lock_provenance = c
            .lock()
            .rules
            .iter()
            .filter(|r| from_cache || used.contains(&r.name))
            .map(rules_provenance)
            .collect();
    }
    Ok(AtlasRules {
        loaded,
        lock_provenance,
        cache,
        from_cache,
    })
}

/// Annotates the rules from synced snapshots; returns the names of the sources they came from.
fn annotate(cache: &Cache, rules: &mut [Rule]) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for r in rules {
        if cache.annotate(r) {
            if let Some((src, _)) = ruleatlas_sync::locate(Path::new(&r.source.path), cache.lock())
            {
                used.insert(src.name.clone());
            }
        }
    }
    used
}

/// A browsable URL, or none: local paths and file:// URLs do not belong on a published page.
fn public_url(url: String) -> Option<String> {
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

/// The home page's line for a locked rule source.
pub fn rules_provenance(r: &LockedRules) -> Provenance {
    let local = Path::new(&r.url).is_dir() || r.url.starts_with("file://");
    let mut note = vec![format!("{} rules", r.vendor)];
    if let Some(git_ref) = &r.git_ref {
        note.push(format!("ref {git_ref}"));
    }
    if local {
        note.push("local repository".into());
    }
    if r.dirty {
        note.push("uncommitted changes: no commit recorded".into());
    } else if r.commit.is_none() {
        let tree = r.tree_sha256.get(..12).unwrap_or(&r.tree_sha256);
        note.push(format!("not a git repository (tree sha256 {tree})"));
    }
    note.push(format!("synced {}", r.fetched_at));
    Provenance {
        kind: "rules".into(),
        name: r.name.clone(),
        url: if r.commit.is_some() && !Path::new(&r.url).is_dir() {
            public_url(r.web_url())
        } else {
            None
        },
        commit: if r.dirty { None } else { r.commit.clone() },
        date: if r.dirty { None } else { r.commit_date.clone() },
        note: Some(note.join("; ")),
    }
}

/// The home page's line for a downloaded spec: the URL (pinned by version or tag), its hash, and
/// when it was fetched (a download has no commit).
pub fn spec_provenance(s: &LockedSpec) -> Provenance {
    let sha = s.sha256.get(..12).unwrap_or(&s.sha256);
    // `https://…` or `pypi:botocore==1.44.5`; a local file's path stays off the page.
    let from = if s.source.starts_with("file:") || Path::new(&s.source).is_absolute() {
        "a local file"
    } else {
        s.source.as_str()
    };
    let files = if s.files == 1 { "file" } else { "files" };
    Provenance {
        kind: "spec".into(),
        name: s.name.clone(),
        url: public_url(s.url.clone()),
        commit: None,
        date: Some(s.fetched_at.clone()),
        note: Some(format!(
            "synced from {from} (sha256 {sha}, {} {files}); date: when it was downloaded",
            s.files
        )),
    }
}

/// Records the lock's spec downloads as the catalog's provenance, per specs folder.
fn apply_spec_lock(input: &mut ruleatlas_site::SiteInput, lock: &Lock) {
    for s in &lock.specs {
        let sub = s.dest.split(['/', '\\']).next().unwrap_or_default();
        ruleatlas_site::set_spec_provenance(input, sub, spec_provenance(s));
    }
}

/// The catalog to build with, and whether it was generated from the sync cache's specs.
fn catalog_for(specs: Option<&Path>, cache: Option<&Cache>) -> anyhow::Result<(Catalog, bool)> {
    let cache_specs = cache.and_then(Cache::specs_dir);
    if let Some(dir) = specs {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let is_cache = cache_specs.as_deref().is_some_and(|c| same(c, dir));
        return Ok((crate::cmd_catalog::load_catalog(Some(dir))?, is_cache));
    }
    if let Some(dir) = cache_specs {
        match Catalog::from_specs(&dir) {
            Ok(c) => return Ok((c, true)),
            Err(e) => eprintln!(
                "ruleatlas: the synced specs in {} do not load ({e}); using the built-in catalog snapshot",
                dir.display()
            ),
        }
    }
    Ok((Catalog::snapshot()?, false))
}

/// Builds the site; shared with `serve` and `demo`. `rules` empty: the sync cache's rules.
/// Returns the report and the (annotated) rules, for a hunt with the same rules.
pub fn build_site(
    rules: &[PathBuf],
    specs: Option<&Path>,
    out: &Path,
    date: Option<String>,
    quiet: bool,
) -> anyhow::Result<(ruleatlas_site::BuildReport, Vec<Rule>)> {
    let t0 = Instant::now();
    let atlas = load_rules(rules)?;
    if !atlas.loaded.path_errors.is_empty() {
        anyhow::bail!(
            "cannot read rule paths:\n  {}",
            atlas.loaded.path_errors.join("\n  ")
        );
    }
    let t_load = t0.elapsed();
    let (catalog, specs_from_cache) = catalog_for(specs, atlas.cache.as_ref())?;
    let t_cat = t0.elapsed();
    let mut provenance = atlas.lock_provenance;
    provenance.extend(atlas.loaded.provenance);
    let diagnostics = atlas.loaded.diagnostics;
    let mut input = ruleatlas_site::prepare_rules(atlas.loaded.rules, provenance, catalog, specs);
    if let (true, Some(c)) = (specs_from_cache, &atlas.cache) {
        apply_spec_lock(&mut input, c.lock());
    }
    let t_map = t0.elapsed();
    input.generated_at = Some(date.unwrap_or_else(today));
    let report = ruleatlas_site::build(&input, out)
        .with_context(|| format!("building the atlas in {}", out.display()))?;
    if !quiet {
        if let (true, Some(c)) = (atlas.from_cache, &atlas.cache) {
            eprintln!(
                "rules from the sync cache {} (synced {}):",
                c.root().display(),
                c.lock().synced_at
            );
            for r in &c.lock().rules {
                let commit = match (&r.commit, r.dirty) {
                    (Some(c), false) => c.get(..12).unwrap_or(c).to_string(),
                    (Some(_), true) => "uncommitted changes".to_string(),
                    (None, _) => "no commit".to_string(),
                };
                eprintln!(
                    "  {:<16} {commit} {}",
                    r.name,
                    r.commit_date.as_deref().unwrap_or("")
                );
            }
        }
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == DiagSeverity::Error)
            .count();
        let not_lowered = input
            .rules
            .iter()
            .filter(|r| r.pipeline().is_none())
            .count();
        let mapped = input
            .mappings
            .iter()
            .filter(|m| !m.operations.is_empty())
            .count();
        eprintln!(
            "loaded {} rules ({} not lowered, {} file problems), {} mapped to an operation",
            input.rules.len(),
            not_lowered,
            errors,
            mapped
        );
        eprintln!(
            "wrote {} pages, {} files, {:.1} MB to {} (largest page {} KB: {})",
            report.pages,
            report.files,
            report.bytes as f64 / 1e6,
            out.display(),
            report.largest_page.1 / 1024,
            report.largest_page.0
        );
        eprintln!(
            "time: load {:.2}s, catalog {:.2}s, map {:.2}s, pages {:.2}s, total {:.2}s",
            t_load.as_secs_f64(),
            (t_cat - t_load).as_secs_f64(),
            (t_map - t_cat).as_secs_f64(),
            report.elapsed_ms as f64 / 1000.0,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok((report, input.rules))
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = ruleatlas_ir::func::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (report, _) = build_site(
        &args.rules,
        args.specs.as_deref(),
        &args.out,
        args.date,
        args.json,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(url: &str, commit: Option<&str>, dirty: bool) -> LockedRules {
        LockedRules {
            name: "sigma".into(),
            vendor: "sigma".into(),
            url: url.into(),
            git_ref: None,
            commit: commit.map(str::to_string),
            commit_date: commit.map(|_| "2026-11-20T08:00:00Z".to_string()),
            dirty,
            folders: vec!["rules".into()],
            dir: "repos/sigma/x".into(),
            tree_sha256: "ab".repeat(32),
            files: Default::default(),
            fetched_at: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn lock_lines_for_the_home_page() {
        let p = rules_provenance(&locked(
            "https://user:token@github.com/SigmaHQ/sigma.git",
            Some("8eaafff1"),
            false,
        ));
        assert_eq!(p.url.as_deref(), Some("https://github.com/SigmaHQ/sigma"));
        assert_eq!(p.commit.as_deref(), Some("8eaafff1"));
        assert_eq!(p.date.as_deref(), Some("2026-11-20T08:00:00Z"));
        // Local repositories and folders: no path of the user's machine on the page.
        let p = rules_provenance(&locked("file:///home/me/rules", Some("8eaafff1"), false));
        assert_eq!(p.url, None);
        assert_eq!(p.commit.as_deref(), Some("8eaafff1"));
        let p = rules_provenance(&locked("/home/me/rules", Some("8eaafff1"), true));
        assert_eq!((p.url, p.commit, p.date), (None, None, None));
        assert!(p.note.unwrap().contains("uncommitted"));
        let p = rules_provenance(&locked("/home/me/rules", None, false));
        assert!(p.note.unwrap().contains("tree sha256 abababababab"));
        let s = LockedSpec {
            name: "kubernetes".into(),
            source: "https://example.org/swagger.json".into(),
            url: "https://example.org/swagger.json".into(),
            sha256: "cd".repeat(32),
            dest: "kubernetes/swagger.json".into(),
            files: 1,
            fetched_at: "2026-12-01T00:00:00Z".into(),
        };
        let p = spec_provenance(&s);
        assert_eq!(p.url.as_deref(), Some("https://example.org/swagger.json"));
        let note = p.note.unwrap();
        assert!(note.contains("sha256 cdcdcdcdcdcd, 1 file)"), "{note}");
        let local = LockedSpec {
            source: "file:///home/me/swagger.json".into(),
            url: "file:///home/me/swagger.json".into(),
            ..s
        };
        let p = spec_provenance(&local);
        assert_eq!(p.url, None);
        assert!(!p.note.unwrap().contains("/home/me"));
    }
    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
