//! The `hivesync` binary: argument parsing and dispatch to the role crates, nothing more.
//! Each subcommand module under `src/cmd/` turns parsed flags into a role's typed `Config` and
//! calls into its library crate; output formatting for the terminal lives there too.

mod cmd;
mod config;

use clap::{Parser, Subcommand};
use config::{ConfigError, ConfigSource, LogLevel};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc serves the many small allocations of indexing faster than the C library's
/// allocator; its `override` feature routes the C code's (tree-sitter's parse trees) there too
/// (see `hivesync_analysis::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// HiveSync: one analysis engine in every editor and on the server.
#[derive(Debug, Parser)]
#[command(name = "hivesync", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Configuration file [default: <config dir>/hivesync/config.toml]
    #[arg(long, global = true, value_name = "PATH", env = "HIVESYNC_CONFIG")]
    config: Option<PathBuf>,

    /// Log level for messages on stderr (overrides RUST_LOG and the config file)
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<LogLevel>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the effective configuration (file, environment and defaults merged) as TOML
    Config(cmd::config::Args),
    /// Run the API server (embedded SQLite by default; PostgreSQL via DATABASE_URL)
    Server(cmd::server::Args),
    /// Run background jobs (connects to the server's database and queue)
    Worker(cmd::worker::Args),
    /// Analyse a project: stats, definitions, references, rename plans, documentation gaps
    Analyze(cmd::analyze::Args),
    /// Run the language server on stdin/stdout (for editors)
    Lsp(cmd::lsp::Args),
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// The command ran but refused or failed (e.g. a rename that would break code).
    pub const FAILURE: u8 = 1;
    /// Bad usage or bad configuration.
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    hivesync_analysis::alloc::prefer_small_pages();
    let cli = Cli::parse();
    let source = match ConfigSource::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    let global = match source.global() {
        Ok(g) => g,
        Err(e) => return config_failure(&e),
    };
    init_tracing(cli.log_level, global.log_level);
    tracing::debug!(config = ?source.path, found = source.found, "configuration loaded");

    let result = match cli.command {
        Command::Config(args) => cmd::config::run(&args, &source, &global),
        Command::Server(args) => cmd::server::run(&args, &source),
        Command::Worker(args) => cmd::worker::run(&args, &source),
        Command::Analyze(args) => cmd::analyze::run(&args),
        Command::Lsp(args) => cmd::lsp::run(&args, &source),
    };
    match result {
        Ok(code) => code,
        Err(err) => match err.downcast_ref::<ConfigError>() {
            Some(c) => config_failure(c),
            None => {
                eprintln!("hivesync: {err:#}");
                ExitCode::from(exit::FAILURE)
            }
        },
    }
}

fn config_failure(err: &ConfigError) -> ExitCode {
    eprintln!("hivesync: {err}");
    ExitCode::from(exit::USAGE)
}

/// Logs go to stderr only: stdout belongs to the LSP protocol and to `--json` output.
/// Precedence: `--log-level` > `RUST_LOG` > config/`HIVESYNC_LOG_LEVEL`.
fn init_tracing(flag: Option<LogLevel>, configured: LogLevel) {
    use tracing_subscriber::EnvFilter;
    // salsa logs every query execution at `info`: keep it quiet unless RUST_LOG asks for it.
    let level = |l: LogLevel| EnvFilter::new(format!("{},salsa=warn", l.as_str()));
    let filter = match flag {
        Some(l) => level(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| level(configured)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: editors show the language server's log verbatim.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // A line logged while the server handles a request names it (request id, method, path).
        .map_event_format(hivesync_backend::request_scope::RequestLogFormat)
        .init();
}
