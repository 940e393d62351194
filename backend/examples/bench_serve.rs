//! Load-test target for the backend benchmark (see the README's Benchmarks section): runs the
//! API on `--bind` (default 127.0.0.1:7890) with the data dir given as the first argument and
//! `DATABASE_URL` / `HIVESYNC_SERVER_JWT_SECRET` from the environment, and beside it a bare axum
//! route (`GET /` → "ok", no layers) on the next port, so one load tool can compare both in the
//! same run. Logs go to stderr as `hivesync server` writes them (level from `RUST_LOG`, `info` by
//! default — the server's default), so their cost is part of the figure. The allocator is the
//! `hivesync` binary's (mimalloc, transparent huge pages off), so the figure is the shipped
//! server's. Stops on Ctrl-C.
#![allow(clippy::print_stdout)]

/// As in `src/main.rs` (the `hivesync` binary).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use hivesync_backend::{Config, Server, Services};
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    hivesync_analysis::alloc::prefer_small_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .map_event_format(hivesync_backend::request_scope::RequestLogFormat)
        .init();
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().ok_or("usage: bench_serve DATA_DIR [ADDR]")?;
    let bind: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:7890".into())
        .parse()?;
    let config = Config {
        bind,
        data_dir: data_dir.into(),
        database_url: std::env::var("DATABASE_URL").ok(),
        jwt_secret: std::env::var("HIVESYNC_SERVER_JWT_SECRET").ok(),
        auth_rate_limit_per_minute: 1_000_000,
        ..Config::default()
    };
    let server = Server::bind(&config, Services::default()).await?;
    let bare_addr = SocketAddr::new(bind.ip(), bind.port() + 1);
    let bare = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(bare_addr).await?;
    tokio::spawn(async move { axum::serve(listener, bare).await });
    println!("api on http://{bind}, bare axum route on http://{bare_addr}/");
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
