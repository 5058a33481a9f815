//! `ruleatlas serve [--addr 127.0.0.1:8080] [--dir DIR | --rules PATH... [--specs DIR]]`: serves a
//! built atlas, building it first when rules are given.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// A built atlas (default: ./site, or where --rules builds to).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Build the atlas from these rules first (into --dir, or a temporary folder).
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Catalog specs folder, with --rules.
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let dir = match (&args.dir, args.rules.is_empty()) {
        (Some(d), true) => d.clone(),
        (None, true) => PathBuf::from("site"),
        (d, false) => {
            let out = d.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("ruleatlas-site-{}", std::process::id()))
            });
            crate::cmd_build::build_site(&args.rules, args.specs.as_deref(), &out, None, false)?;
            out
        }
    };
    ruleatlas_site::serve::run(dir.clone(), args.addr, |addr| {
        // Printed on stdout so scripts (the browser tests) can read the chosen port.
        println!("serving {} at http://{addr}/", dir.display());
    })?;
    Ok(0)
}
