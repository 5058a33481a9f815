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
        print!("{}", ruleatlas_sync::DEFAULT_SOURCES);
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
                    None => "no cached copy: its rules are missing".to_string(),
                };
                eprintln!("ruleatlas sync: {} failed: {error} ({kept})", o.name);
            }
        }
        let lock_path = cache_dir.join(ruleatlas_sync::LOCK_FILE);
        println!(
            "{} sources, {} failed, {}; lock: {}",
            report.outcomes.len(),
            failures.len(),
            if report.changed {
                "changed"
            } else {
                "nothing changed"
            },
            lock_path.display()
        );
    }

    let diff = if args.diff {
        let old = match &args.against {
            Some(p) => Some(Lock::read(p, &cache_dir)?),
            None => Cache::open(&cache_dir).ok().and_then(|c| c.prev_lock()),
        };
        match old {
            Some(old) => Some(full_diff(&old, &report.lock)),
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
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if let Some(d) = &diff {
        print!("{}", d.render_text());
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}

/// File diff from the locks; rule diff from loading both snapshots of every changed source (the
/// previous snapshot is kept in the cache for exactly this).
fn full_diff(old: &Lock, new: &Lock) -> SyncDiff {
    let files = diff_locks(old, new);
    let mut old_rules = Vec::new();
    let mut new_rules = Vec::new();
    let mut complete = true;
    for s in files.sources.iter().filter(|s| !s.is_empty()) {
        let sides = [(old, &mut old_rules), (new, &mut new_rules)];
        for (lock, out) in sides {
            let Some(locked) = lock.rules_named(&s.name) else {
                continue;
            };
            if !lock.dir_of(locked).is_dir() {
                complete = false;
                continue;
            }
            let folders: Vec<PathBuf> = ruleatlas_sync::rule_paths_of(&Lock {
                rules: vec![locked.clone()],
                ..lock.clone()
            })
            .into_iter()
            .map(|(_, p)| p)
            .collect();
            out.extend(load(&folders, lock));
        }
    }
    SyncDiff {
        files,
        rules: complete.then(|| diff_rules(&old_rules, &new_rules)),
        coverage: None,
    }
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
