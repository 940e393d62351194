//! `hivesync worker`: runs background jobs. It connects to what the server uses — the
//! `[server]` table, `DATABASE_URL`, `AMQP_URL`, `HIVESYNC_STORAGE_URL` and the data
//! directory — and takes jobs of the registered kinds (`[worker] kinds`, default all) from the
//! queue, `concurrency` at a time. SIGINT/SIGTERM stop it: running jobs get
//! `shutdown_grace_seconds` to finish; the rest are taken over by another worker.

use super::server::shutdown_signal;
use crate::config::{ConfigError, ConfigSource};
use hivesync_backend::config::DatabaseKind;
use hivesync_backend::worker::{self, WorkerConfig, WorkerOptions};
use hivesync_backend::{Services, build_state};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's data directory (embedded database, local blobs, mirrors)
    /// [default: <user data dir>/hivesync]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Jobs run at the same time [default: 4]
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,

    /// Job kinds to take, comma-separated [default: every kind]
    #[arg(long, value_name = "KINDS")]
    kinds: Option<String>,
}

#[derive(Serialize)]
struct ServerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct WorkerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kinds: Option<String>,
}

fn usage(key: &str, message: String) -> anyhow::Error {
    ConfigError {
        key: key.into(),
        source: None,
        message,
    }
    .into()
}

pub fn run(args: &Args, source: &ConfigSource) -> anyhow::Result<ExitCode> {
    let mut config = source.server(&ServerFlags {
        data_dir: args.data_dir.clone(),
    })?;
    let worker: WorkerConfig = source.role(
        "worker",
        &WorkerFlags {
            concurrency: args.concurrency,
            kinds: args.kinds.clone(),
        },
    )?;
    if worker.concurrency == 0 {
        return Err(usage("worker.concurrency", "must be at least 1".into()));
    }
    // The worker signs no tokens; a PostgreSQL server's secret is not needed here.
    if config.jwt_secret.is_none()
        && config.resolve().map(|r| r.database_kind) != Ok(DatabaseKind::Sqlite)
    {
        config.jwt_secret = Some(hivesync_backend::auth::random_token(
            "worker-unused-secret-",
        ));
    }
    // RabbitMQ hands this worker as many jobs as it runs at once.
    config.workers = Some(worker.concurrency);
    let resolved = config
        .resolve()
        .map_err(|e| usage(&format!("server.{}", e.key), e.message))?;
    let registry = worker::kinds::registry();
    let unknown = worker::unknown_kinds(&registry, &worker.kinds);
    if !unknown.is_empty() {
        return Err(usage(
            "worker.kinds",
            format!(
                "unknown job kind(s) {}; known kinds: {}",
                unknown.join(", "),
                registry.kinds().join(", ")
            ),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hivesync-worker")
        .build()?;
    runtime.block_on(async {
        let (stop, stopped) = watch::channel(false);
        let options =
            WorkerOptions::from_config(&resolved.config, worker.concurrency, worker.kinds);
        let state = build_state(
            resolved,
            Services {
                registry: Some(registry),
                ..Services::default()
            },
            stopped.clone(),
        )
        .await?;
        let sweeper = tokio::spawn(worker::sweep_unpublished(
            state.clone(),
            worker::SWEEP_EVERY,
            stopped.clone(),
        ));
        let workers = tokio::spawn(worker::run_workers(state.clone(), options, stopped));
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
        let _ = workers.await;
        let _ = sweeper.await;
        state.sql.close().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
