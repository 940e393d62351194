//! The language server alone on stdin/stdout, with default settings and no log: what
//! `hivesync lsp` runs, without the rest of the binary (the backend's dependency tree). For
//! timing the server in release when building the whole binary is too slow:
//!
//! ```sh
//! cargo build --release -p hivesync-lsp --example stdio
//! HIVESYNC_BIN=target/release/examples/stdio HIVESYNC_BENCH_ROOT=… cargo bench -p hivesync-e2e --bench lsp_replay
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ending = runtime.block_on(hivesync_lsp::serve_stdio(hivesync_lsp::Settings::default()));
    runtime.shutdown_background();
    if ending.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
