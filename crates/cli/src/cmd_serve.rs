//! `ruleatlas serve [--addr 127.0.0.1:8080] [--dir DIR | --rules PATH... [--specs DIR]]`: serves a
//! built atlas, building it first when rules are given — or, given neither, from the rules of the
//! sync cache (the plain `./site` folder when nothing is synced).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// A built atlas to serve as it is; with --rules, where to build it.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Build the atlas from these rules first (into --dir, or a temporary folder). Without --rules
    /// and --dir: the rules of the sync cache, else ./site as built.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Catalog specs folder when building (default: the sync cache, else the built-in snapshot).
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
}

fn temp_site() -> PathBuf {
    std::env::temp_dir().join(format!("ruleatlas-site-{}", std::process::id()))
}

fn synced() -> bool {
    ruleatlas_sync::Cache::open_default().is_ok_and(|c| !c.rule_folders().is_empty())
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let dir = match (&args.dir, args.rules.is_empty()) {
        (Some(d), true) => d.clone(),
        (None, true) if synced() => {
            let out = temp_site();
            crate::cmd_build::build_site(&[], args.specs.as_deref(), &out, None, false)?;
            out
        }
        (None, true) => PathBuf::from("site"),
        (d, false) => {
            let out = d.clone().unwrap_or_else(temp_site);
            crate::cmd_build::build_site(&args.rules, args.specs.as_deref(), &out, None, false)?;
            out
        }
    };
    if !dir.join("index.html").is_file() {
        anyhow::bail!(
            "{} holds no built atlas (no index.html): pass --dir DIR, or --rules PATH... to build one, or run `ruleatlas sync` first",
            dir.display()
        );
    }
    ruleatlas_site::serve::run(dir.clone(), args.addr, |addr| {
        // Printed on stdout so scripts (the browser tests) can read the chosen port.
        println!("serving {} at http://{addr}/", dir.display());
    })?;
    Ok(0)
}
