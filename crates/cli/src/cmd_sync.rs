//! `ruleatlas sync`: fetch the sources into the cache, write the lock, and optionally report what
//! changed since the previous sync (`--diff`). Exit 0 when every source synced, 1 when any source
//! failed (its previous copy stays in use), 2 when the cache itself is unusable.

use anyhow::Context;
use ruleatlas_sync::progress::{Silent, Terminal};
use ruleatlas_sync::{diff_locks, diff_rules, Cache, Lock, Sources, Status, SyncDiff, SyncOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Sources file (TOML); default: the built-in list (see --print-default-sources).
    #[arg(long, value_name = "FILE")]
    sources: Option<PathBuf>,
    /// Cache folder; default: $RULEATLAS_CACHE, else the platform cache folder + `ruleatlas`.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Use only what is already cached: no git or HTTP traffic (local `path` sources still copy).
    #[arg(long)]
    offline: bool,
    /// After syncing, report files, rules and coverage changed since the previous lock.
    #[arg(long)]
    diff: bool,
    /// With --diff: compare against this lock file instead of the previous one.
    #[arg(long, value_name = "LOCK", requires = "diff")]
    against: Option<PathBuf>,
    /// Print the report (outcomes, and the diff with --diff) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress display.
    #[arg(long, short)]
    quiet: bool,
    /// Print the built-in sources file and exit (a starting point for --sources).
    #[arg(long)]
    print_default_sources: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.print_default_sources {
        emit(ruleatlas_sync::DEFAULT_SOURCES)?;
        return Ok(0);
    }
    let cache_dir = match &args.cache {
        Some(d) => d.clone(),
        None => Cache::default_dir()
            .context("no cache folder on this platform: pass --cache or set RULEATLAS_CACHE")?,
    };
    let sources = match &args.sources {
        Some(f) => Sources::load(f)?,
        None => Sources::builtin(),
    };
    let opts = SyncOptions {
        cache: cache_dir.clone(),
        sources,
        offline: args.offline,
    };
    let report = if args.quiet || args.json {
        ruleatlas_sync::sync(&opts, &Silent)?
    } else {
        ruleatlas_sync::sync(&opts, &Terminal::new())?
    };
    for w in &report.warnings {
        eprintln!("ruleatlas sync: warning: {w}");
    }
    let failures: Vec<_> = report.failures().collect();
    if !args.json {
        for o in &failures {
            if let Status::Failed { error, kept } = &o.status {
                let kept = match kept {
                    Some(rev) => format!("keeping the cached copy at {rev}"),
                    None if o.kind == "spec" => "no cached copy of this spec".to_string(),
                    None => "no cached copy: its rules are missing".to_string(),
                };
                eprintln!("ruleatlas sync: {} failed: {error} ({kept})", o.name);
            }
        }
        emit(&in_use(&report.lock))?;
        let lock_path = cache_dir.join(ruleatlas_sync::LOCK_FILE);
        emit(&format!(
            "{} sources, {} failed, {}; lock: {}\n",
            report.outcomes.len(),
            failures.len(),
            if report.changed {
                "changed"
            } else {
                "nothing changed"
            },
            lock_path.display()
        ))?;
    }

    let diff = if args.diff {
        let old = match &args.against {
            Some(p) => Some(Lock::read(p, &cache_dir)?),
            None => Cache::open(&cache_dir).ok().and_then(|c| c.prev_lock()),
        };
        match old {
            Some(old) => Some(full_diff(&old, &report.lock, &cache_dir)),
            None => {
                eprintln!(
                    "ruleatlas sync: no previous sync to compare with (the first sync has no diff)"
                );
                None
            }
        }
    } else {
        None
    };

    if args.json {
        let doc = serde_json::json!({
            "cache": cache_dir,
            "changed": report.changed,
            "outcomes": report.outcomes,
            "diff": diff,
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    } else if let Some(d) = &diff {
        emit(&d.render_text())?;
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}

/// File diff from the locks; rule diff from loading both snapshots of every changed source (the
/// previous snapshot is kept in the cache for exactly this); coverage diff from mapping them.
fn full_diff(old: &Lock, new: &Lock, cache: &std::path::Path) -> SyncDiff {
    let files = diff_locks(old, new);
    let changed: Vec<&str> = files
        .sources
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.name.as_str())
        .collect();
    if changed.is_empty() {
        return SyncDiff {
            files,
            rules: Some(Default::default()),
            coverage: Some(Vec::new()),
        };
    }
    let mut complete = true;
    let mut load_side = |lock: &Lock, names: &mut dyn Iterator<Item = &str>| {
        let mut rules = Vec::new();
        for name in names {
            let Some(locked) = lock.rules_named(name) else {
                continue;
            };
            if !lock.dir_of(locked).is_dir() {
                complete = false;
                continue;
            }
            let one = Lock {
                rules: vec![locked.clone()],
                ..lock.clone()
            };
            let folders: Vec<PathBuf> = ruleatlas_sync::rule_paths_of(&one)
                .into_iter()
                .map(|(_, p)| p)
                .collect();
            rules.extend(load(&folders, lock));
        }
        rules
    };
    let old_rules = load_side(old, &mut changed.iter().copied());
    let new_rules = load_side(new, &mut changed.iter().copied());
    // Operations covered by the sources that did not change count on both sides, so that "no
    // longer covered" means no rule at all covers the operation any more.
    let mut unchanged = new
        .rules
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !changed.contains(n));
    let same_rules = load_side(new, &mut unchanged);
    let rules = complete.then(|| diff_rules(&old_rules, &new_rules));
    let coverage = complete
        .then(|| coverage_diff(&old_rules, &new_rules, &same_rules, cache))
        .flatten();
    SyncDiff {
        files,
        rules,
        coverage,
    }
}

/// Maps both rule sets with the catalog of the synced specs (or the built-in snapshot). Spec
/// changes are reported separately: both sides use today's catalog, so coverage changes here come
/// from rule changes.
fn coverage_diff(
    old: &[ruleatlas_ir::Rule],
    new: &[ruleatlas_ir::Rule],
    same: &[ruleatlas_ir::Rule],
    cache: &std::path::Path,
) -> Option<Vec<ruleatlas_sync::diff::CoverageChange>> {
    let specs = Cache::open(cache).ok().and_then(|c| c.specs_dir());
    let catalog = match specs.as_deref().map(ruleatlas_catalog::Catalog::from_specs) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            eprintln!("ruleatlas sync: the synced specs do not build a catalog ({e}); using the built-in one");
            ruleatlas_catalog::Catalog::snapshot().ok()?
        }
        None => ruleatlas_catalog::Catalog::snapshot().ok()?,
    };
    let mapper = ruleatlas_mapper::Mapper::new(&catalog);
    let triples = |rules: &[ruleatlas_ir::Rule]| {
        let mut out = Vec::new();
        for (rule, m) in rules.iter().zip(mapper.map_rules(rules)) {
            for op in m.operations {
                out.push((
                    op.source.as_str().to_string(),
                    op.id,
                    format!("{}:{}", rule.vendor, rule.id),
                ));
            }
        }
        out
    };
    let same = triples(same);
    let before = same.iter().cloned().chain(triples(old));
    let after = same.iter().cloned().chain(triples(new));
    Some(ruleatlas_sync::diff_coverage(before, after))
}

fn load(folders: &[PathBuf], lock: &Lock) -> Vec<ruleatlas_ir::Rule> {
    if folders.is_empty() {
        return Vec::new();
    }
    let (report, _errors) = ruleatlas_rules::load_paths(folders);
    let mut rules = report.rules;
    for r in &mut rules {
        ruleatlas_sync::annotate(r, lock);
    }
    rules
}

/// Writes to stdout; a closed pipe (`ruleatlas sync --diff | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// One line per source in use: what the cache now says the atlas is built from.
fn in_use(lock: &Lock) -> String {
    let mut rows: Vec<[String; 5]> = Vec::new();
    for r in &lock.rules {
        let rev = match (&r.commit, r.dirty) {
            (Some(c), false) => c.get(..12).unwrap_or(c).to_string(),
            (Some(c), true) => format!("{}+dirty", c.get(..12).unwrap_or(c)),
            (None, _) => format!("tree:{}", r.tree_sha256.get(..7).unwrap_or("")),
        };
        let date = r
            .commit_date
            .as_deref()
            .map(|d| d.get(..10).unwrap_or(d).to_string())
            .unwrap_or_else(|| "-".into());
        rows.push([
            r.name.clone(),
            r.vendor.clone(),
            rev,
            date,
            format!("{} files", r.files.len()),
        ]);
    }
    for s in &lock.specs {
        rows.push([
            s.name.clone(),
            "spec".into(),
            format!("sha256:{}", s.sha256.get(..7).unwrap_or("")),
            s.fetched_at.get(..10).unwrap_or("-").to_string(),
            format!("{} files → specs/{}", s.files, s.dest),
        ]);
    }
    let mut width = [0usize; 5];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
