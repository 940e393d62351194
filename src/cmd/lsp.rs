//! `hivesync lsp`: the language server on stdin/stdout. The `[lsp]` config table (and
//! `HIVESYNC_LSP_*` variables) give the settings' defaults; the editor's
//! `initializationOptions` and `workspace/didChangeConfiguration` override them. The server
//! lives in the `hivesync-lsp` crate; this module owns the tokio runtime. Exit status: 0 after
//! `shutdown` + `exit`, 1 when the editor exits without `shutdown` or closes the pipe.

use crate::config::ConfigSource;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Talk LSP over stdin/stdout (the only transport; accepted because editors pass it)
    #[arg(long)]
    stdio: bool,
}

/// No flag overrides a setting.
#[derive(Serialize)]
struct Flags {}

pub fn run(args: &Args, source: &ConfigSource) -> anyhow::Result<ExitCode> {
    let _ = args.stdio;
    let settings: hivesync_lsp::Settings = source.role("lsp", &Flags {})?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hivesync-lsp")
        .build()?;
    let ending = runtime.block_on(hivesync_lsp::serve_stdio(settings));
    // Blocking threads may still be finishing a cancelled query: do not wait for them.
    runtime.shutdown_background();
    // The protocol's rule: 0 after `shutdown` then `exit`, 1 for any other ending.
    Ok(if ending.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
