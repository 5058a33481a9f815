//! `ruleatlas`: the command line. Each subcommand lives in its own module, which turns what the
//! user typed (its clap `Args`) into calls on the library crates; exit codes are decided here.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// Parsing events into JSON trees is allocation-bound; mimalloc parses ~20 % faster than the
// system allocator here (BENCHMARKS.md). Built with `no_thp` (Cargo.toml): with transparent huge
// pages mimalloc's arenas were faulted in 2 MB at a time, and pages it purged came back as fresh
// huge pages to clear (6–12 % of a one-thread hunt's samples in `clear_page_erms`); without them
// peak RSS is ~25 % lower and a one-thread hunt ~2 % faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd_build;
mod cmd_catalog;
mod cmd_check;
mod cmd_demo;
mod cmd_hunt;
mod cmd_map;
mod cmd_query;
mod cmd_serve;
mod cmd_sync;
mod cmd_webhook;
mod rule_input;

#[derive(Parser)]
#[command(
    name = "ruleatlas",
    version,
    about = "Map detection rules to the log events they watch, and run them on real logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and lower every rule under the paths; report errors with file:line:col.
    Check(cmd_check::Args),
    /// Run an ad-hoc query over event files and print the matching events.
    Query(cmd_query::Args),
    /// Run rules over logs and emit alerts as NDJSON.
    Hunt(cmd_hunt::Args),
    /// Print or generate the operation catalog of a log source.
    Catalog(cmd_catalog::Args),
    /// Show which operations each rule can match, and why.
    Map(cmd_map::Args),
    /// Build the static atlas site.
    Build(cmd_build::Args),
    /// Serve a built atlas (building it first if asked).
    Serve(cmd_serve::Args),
    /// Build the atlas from the bundled examples, hunt the bundled logs, and serve.
    Demo(cmd_demo::Args),
    /// Fetch upstream rule repositories and specs into the cache, pinned and recorded.
    Sync(cmd_sync::Args),
    /// Kubernetes audit webhook backend: live detection.
    Webhook(cmd_webhook::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => cmd_check::run(a),
        Command::Query(a) => cmd_query::run(a),
        Command::Hunt(a) => cmd_hunt::run(a),
        Command::Catalog(a) => cmd_catalog::run(a),
        Command::Map(a) => cmd_map::run(a),
        Command::Build(a) => cmd_build::run(a),
        Command::Serve(a) => cmd_serve::run(a),
        Command::Demo(a) => cmd_demo::run(a),
        Command::Sync(a) => cmd_sync::run(a),
        Command::Webhook(a) => cmd_webhook::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`ruleatlas check --json … | head`) is the reader's choice, not an error.
        Err(err)
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ruleatlas: {err:#}");
            ExitCode::from(2)
        }
    }
}
