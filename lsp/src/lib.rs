//! HiveSync's language server (`hivesync lsp`): the Language Server Protocol over the analysis
//! engine, on `tower-lsp-server`. It knows LSP and ropes; everything about code is asked of
//! `hivesync-analysis`.
//!
//! Map: [`text`] holds open documents (ropes) and position conversion (UTF-16 or negotiated
//! UTF-8); [`world`] the per-workspace-folder engines, open documents and disk state;
//! [`settings`] the client-configurable settings; `convert` turns engine answers into LSP
//! types; [`server`] is the `LanguageServer` implementation (indexing with progress, requests
//! on blocking threads, debounced diagnostics, cancellation).
//!
//! Invariant: nothing but protocol messages is written to stdout — logs go through `tracing`,
//! which the binary points at stderr.

mod convert;
pub mod server;
pub mod settings;
pub mod text;
pub mod world;

pub use server::Backend;
pub use settings::Settings;
pub use tower_lsp_server::ls_types;

use tower_lsp_server::{LspService, Server};

/// Serves one client over stdin/stdout until it sends `exit` (or closes stdin).
pub async fn serve_stdio(defaults: Settings) {
    serve(tokio::io::stdin(), tokio::io::stdout(), defaults).await;
}

/// Serves one client over any byte streams (tests use in-memory pipes).
pub async fn serve<I, O>(input: I, output: O, defaults: Settings)
where
    I: tokio::io::AsyncRead + Unpin,
    O: tokio::io::AsyncWrite,
{
    let (service, socket) = LspService::new(move |client| Backend::new(client, defaults));
    // Engine work runs on blocking threads, so many requests may be in flight; a high limit
    // keeps `$/cancelRequest` and edits from queueing behind slow requests.
    Server::new(input, output, socket)
        .concurrency_level(64)
        .serve(service)
        .await;
}
