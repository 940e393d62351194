//! HiveSync's language server (`hivesync lsp`): the Language Server Protocol over the analysis
//! engine, on `tower-lsp-server`. It knows LSP and ropes; everything about code is asked of
//! `hivesync-analysis`.
//!
//! Map: [`text`] holds open documents (ropes) and position conversion (UTF-16 or negotiated
//! UTF-8); [`world`] the per-workspace-folder engines, open documents and disk state;
//! [`settings`] the client-configurable settings; `convert` turns engine answers into LSP
//! types; [`server`] is the `LanguageServer` implementation (indexing with progress, requests
//! on blocking threads, debounced diagnostics, cancellation); [`transport`] frames and checks
//! the editor's messages before the server sees them.
//!
//! Invariant: nothing but protocol messages is written to stdout — logs go through `tracing`,
//! which the binary points at stderr.

mod convert;
pub mod server;
pub mod settings;
pub mod text;
pub mod transport;
pub mod world;

pub use server::Backend;
pub use settings::Settings;
pub use tower_lsp_server::ls_types;
pub use transport::Ending;

use tower_lsp_server::{LspService, Server};

/// Serves one client over stdin/stdout until it sends `exit` (or closes stdin).
pub async fn serve_stdio(defaults: Settings) -> Ending {
    serve(tokio::io::stdin(), tokio::io::stdout(), defaults).await
}

/// Serves one client over any byte streams (tests use in-memory pipes). Incoming bytes go
/// through [`transport`], which answers malformed messages itself and bounds the time to stop
/// after `exit`.
pub async fn serve<I, O>(input: I, output: O, defaults: Settings) -> Ending
where
    I: tokio::io::AsyncRead + Unpin,
    O: tokio::io::AsyncWrite + Unpin,
{
    let (service, socket) = LspService::new(move |client| Backend::new(client, defaults));
    let (to_server, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, from_server) = tokio::io::duplex(1 << 16);
    // Engine work runs on blocking threads, so many requests may be in flight; a high limit
    // keeps `$/cancelRequest` and edits from queueing behind slow requests.
    let server = Server::new(server_in, server_out, socket)
        .concurrency_level(64)
        .serve(service);
    transport::pump(input, output, to_server, from_server, server).await
}
