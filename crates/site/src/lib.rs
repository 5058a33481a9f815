//! The atlas: catalog + rules + mapping → a static site, and the server behind `ruleatlas serve`.
//!
//! Place in the data flow: last stop after the catalog (log sources, groups, operations) and the
//! mapper (rule → operations, with reasons). Central type: [`SiteInput`]; central function:
//! [`build`], which writes every page in parallel and returns a [`BuildReport`].
//!
//! The site works from any static host and from `file://`: every link is relative and points at
//! an explicit `index.html`, search loads its index through a `<script>` (no `fetch`), and no
//! asset comes from elsewhere. Everything taken from rules is untrusted: templates auto-escape,
//! Markdown is rendered with raw HTML shown as text and unsafe URLs replaced (see [`markdown`]).
//!
//! ```
//! use ruleatlas_ir::{Lowered, Rule, Expr, Pipeline};
//! use ruleatlas_site::{build, SiteInput, RuleMapping};
//! let rule = Rule::new("sigma", "abc", "<b>Title</b>", "sigma", Lowered::Ok { pipeline: Pipeline::filter(Expr::Const(true)) });
//! let input = SiteInput { rules: vec![rule], mappings: vec![RuleMapping::default()], ..SiteInput::default() };
//! let dir = std::env::temp_dir().join(format!("ruleatlas-site-doctest-{}", std::process::id()));
//! let report = build(&input, &dir).unwrap();
//! let page = std::fs::read_to_string(dir.join("rules/sigma/abc/index.html")).unwrap();
//! assert!(page.contains("&lt;b&gt;Title") && !page.contains("<b>Title"));
//! assert!(report.pages > 3);
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

pub mod adapt;
pub mod attack;
pub mod highlight;
pub mod irfmt;
pub mod markdown;
mod model;
mod pages;
pub mod provenance;
#[cfg(feature = "serve")]
pub mod serve;

pub use adapt::{load_rules, prepare, prepare_rules, set_spec_provenance, LoadedRules};
pub use model::*;

use anyhow::Context;
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

/// What a build wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildReport {
    /// HTML pages written.
    pub pages: usize,
    /// All files written (pages, JSON, assets).
    pub files: usize,
    pub bytes: u64,
    /// Path (relative to the output folder) and size of the largest HTML page.
    pub largest_page: (String, u64),
    pub rules: usize,
    pub elapsed_ms: u128,
}

/// Writes the whole site under `out_dir` (created if missing; files of a previous build are
/// overwritten, others left alone).
pub fn build(input: &SiteInput, out_dir: &Path) -> anyhow::Result<BuildReport> {
    let start = Instant::now();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let site = pages::Site::new(input)?;
    let jobs = site.jobs();
    let results: Vec<anyhow::Result<(String, u64, bool)>> = jobs
        .par_iter()
        .map(|job| {
            let (rel, bytes) = site.render(job)?;
            let path = out_dir.join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            Ok((rel, bytes.len() as u64, job.is_page()))
        })
        .collect();
    let mut report = BuildReport {
        rules: input.rules.len(),
        ..BuildReport::default()
    };
    for r in results {
        let (rel, size, is_page) = r?;
        report.files += 1;
        report.bytes += size;
        if is_page {
            report.pages += 1;
            if size > report.largest_page.1 {
                report.largest_page = (rel, size);
            }
        }
    }
    report.elapsed_ms = start.elapsed().as_millis();
    Ok(report)
}
