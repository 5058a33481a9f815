//! `ruleatlas build --rules PATH... [--specs DIR] --out DIR`: rules + catalog + mapping → the
//! static atlas.

use anyhow::Context;
use ruleatlas_ir::DiagSeverity;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (Elastic TOML, Sigma YAML, Falco YAML).
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
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

/// Builds the site; shared with `serve --rules` and `demo`. Returns the report.
pub fn build_site(
    rules: &[PathBuf],
    specs: Option<&Path>,
    out: &Path,
    date: Option<String>,
    quiet: bool,
) -> anyhow::Result<ruleatlas_site::BuildReport> {
    let t0 = Instant::now();
    let catalog = crate::cmd_catalog::load_catalog(specs)?;
    let t_cat = t0.elapsed();
    let (mut input, diagnostics, path_errors) = ruleatlas_site::prepare(rules, catalog, specs);
    if !path_errors.is_empty() {
        anyhow::bail!("cannot read rule paths:\n  {}", path_errors.join("\n  "));
    }
    let t_map = t0.elapsed();
    input.generated_at = Some(date.unwrap_or_else(today));
    let report = ruleatlas_site::build(&input, out)
        .with_context(|| format!("building the atlas in {}", out.display()))?;
    if !quiet {
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
            "time: catalog {:.2}s, load+map {:.2}s, pages {:.2}s, total {:.2}s",
            t_cat.as_secs_f64(),
            (t_map - t_cat).as_secs_f64(),
            report.elapsed_ms as f64 / 1000.0,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(report)
}

fn today() -> String {
    // Days since the epoch → civil date (Howard Hinnant's algorithm), to avoid a date dependency.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let report = build_site(
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
    #[test]
    fn today_is_a_date() {
        let d = super::today();
        assert_eq!(d.len(), 10, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
