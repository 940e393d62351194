//! Job runtime throughput and latency: `cargo bench -p hivesync-backend --bench jobs`.
//!
//! For the embedded queue (SQLite in a temporary directory) and, when `AMQP_URL` is set,
//! RabbitMQ, with 1 and 4 workers: enqueues no-op jobs (as the API does: record the row, then
//! hand it to the queue) while the workers run — a burst of `JOBS` as fast as one producer can,
//! then 200 paced 10 ms apart — and prints jobs/s (first enqueue to last completion) and the
//! enqueue→start latency p50/p99 measured in the handler.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use hivesync_backend::config::Config;
use hivesync_backend::queue::{JobStatus, NewJob, SYSTEM_PROJECT};
use hivesync_backend::worker::{self, JobContext, JobError, JobHandler, Registry, WorkerOptions};
use hivesync_backend::{AppState, Services, build_state};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

const JOBS: usize = 1000;

#[derive(Default)]
struct Clock {
    enqueued: Mutex<HashMap<Uuid, Instant>>,
    latencies: Mutex<Vec<Duration>>,
}

struct Noop(Arc<Clock>);

#[async_trait::async_trait]
impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        "bench_noop"
    }
    async fn validate(&self, _: &AppState, _: Uuid, _: &Value) -> Result<(), String> {
        Ok(())
    }
    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let now = Instant::now();
        let at = self.0.enqueued.lock().unwrap().get(&ctx.job.id).copied();
        if let Some(at) = at {
            self.0
                .latencies
                .lock()
                .unwrap()
                .push(now.duration_since(at));
        }
        Ok(json!({}))
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `pace`: `None` enqueues `jobs` as fast as possible (a burst: latency includes the backlog);
/// `Some(gap)` enqueues one every `gap` (latency of an idle system).
async fn run(amqp: Option<&str>, workers: u32, jobs: usize, pace: Option<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(Clock::default());
    let mut registry = Registry::new();
    registry.register(Arc::new(Noop(clock.clone())));
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        amqp_url: amqp.map(str::to_string),
        job_queue_prefix: format!("hivesync-bench-{}", Uuid::new_v4().simple()),
        workers: Some(workers),
        ..Config::default()
    };
    let (stop, stopped) = watch::channel(false);
    let state = build_state(
        config.resolve().unwrap(),
        Services {
            registry: Some(registry),
            ..Services::default()
        },
        stopped.clone(),
    )
    .await
    .unwrap();
    let options = WorkerOptions::from_config(&state.config.config, workers, Vec::new());
    let task = tokio::spawn(worker::run_workers(state.clone(), options, stopped));
    let start = Instant::now();
    for _ in 0..jobs {
        if let Some(gap) = pace {
            tokio::time::sleep(gap).await;
        }
        let job = state
            .queue
            .jobs()
            .create(NewJob {
                project_id: SYSTEM_PROJECT,
                kind: "bench_noop".into(),
                params: json!({}),
                max_attempts: None,
            })
            .await
            .unwrap();
        clock
            .enqueued
            .lock()
            .unwrap()
            .insert(job.id, Instant::now());
        state.queue.enqueue(job.id, "bench_noop").await.unwrap();
    }
    loop {
        let done = state
            .queue
            .jobs()
            .list(SYSTEM_PROJECT, Some(JobStatus::Succeeded))
            .await
            .unwrap()
            .len();
        if done == jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let mut lat = clock.latencies.lock().unwrap().clone();
    lat.sort();
    println!(
        "{:<9} workers={workers}  {:<5} {jobs:>4} jobs in {:>6.2} s  {:>7.1} jobs/s  enqueue→start p50 {:>8.2} ms  p99 {:>8.2} ms",
        state.queue.backend(),
        if pace.is_some() { "paced" } else { "burst" },
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64(),
        pct(&lat, 0.5).as_secs_f64() * 1000.0,
        pct(&lat, 0.99).as_secs_f64() * 1000.0,
    );
    stop.send(true).unwrap();
    task.await.unwrap();
    if let Some(r) = &state.rabbit_queue {
        r.delete_queues(&state.registry.kinds()).await.unwrap();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let amqp = std::env::var("AMQP_URL").ok();
        let mut queues = vec![None];
        if let Some(url) = &amqp {
            queues.push(Some(url.as_str()));
        }
        for q in queues {
            for workers in [1, 4] {
                run(q, workers, JOBS, None).await;
                run(q, workers, 200, Some(Duration::from_millis(10))).await;
            }
        }
    });
}
