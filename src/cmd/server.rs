//! `hivesync server`: runs the HTTP API. Flags and configuration become a
//! `hivesync_backend::Config`; the server itself lives in the backend crate. The binary's `main`
//! is synchronous, so this module owns the tokio runtime.

use crate::config::{ConfigError, ConfigSource};
use hivesync_backend::{Server, Services};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR")]
    bind: Option<SocketAddr>,

    /// Directory for the embedded database, the generated JWT secret and local blobs
    /// [default: <user data dir>/hivesync]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Address the preview content origin listens on, separate from the API
    /// [default: 127.0.0.1:7879]
    #[arg(long, value_name = "ADDR")]
    preview_bind: Option<SocketAddr>,
}

/// The flags as a configuration layer (unset flags leave lower layers alone).
#[derive(Serialize)]
struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview_bind: Option<String>,
}

pub fn run(args: &Args, source: &ConfigSource) -> anyhow::Result<ExitCode> {
    let flags = Flags {
        bind: args.bind.map(|a| a.to_string()),
        data_dir: args.data_dir.clone(),
        preview_bind: args.preview_bind.map(|a| a.to_string()),
    };
    let config = source.server(&flags)?;
    // Checked before the runtime starts so a bad value is a usage error (exit code 2).
    if let Err(e) = config.resolve() {
        return Err(ConfigError {
            key: format!("server.{}", e.key),
            source: None,
            message: e.message,
        }
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hivesync-server")
        .build()?;
    runtime.block_on(async {
        let server = Server::bind(&config, Services::default()).await?;
        tracing::info!("listening on http://{}", server.local_addr()?);
        tracing::info!("serving previews on http://{}", server.preview_addr()?);
        server.run(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
