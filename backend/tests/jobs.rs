//! The job runtime end to end through the API and real workers: validation, the life of a job
//! with its events, cancellation, retries with backoff and dead-lettering, a worker dying
//! mid-job, broker connection loss, the sweeper. Every test runs on the embedded queue over
//! SQLite (and PostgreSQL when `DATABASE_URL` is set) and on RabbitMQ when `AMQP_URL` is set
//! (queues under a fresh per-test prefix). Test job kinds are registered in the test.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp, app_with_services, backends, test_prefix, test_services};
use hivesync_backend::AppState;
use hivesync_backend::queue::{ClaimById, JobStatus, NewJob, RetryPolicy};
use hivesync_backend::store::Event;
use hivesync_backend::worker::{self, JobContext, JobError, JobHandler, Registry, WorkerOptions};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// What the test kinds did, shared with the test.
#[derive(Default)]
struct Record {
    /// Side effects by job id, written once (the handlers' idempotency).
    results: Mutex<HashMap<Uuid, Value>>,
    /// Runs that returned because they saw the job cancelled.
    stopped: AtomicUsize,
    /// Runs started, by job id.
    runs: Mutex<HashMap<Uuid, u32>>,
}

struct Kind {
    name: &'static str,
    record: Arc<Record>,
}

#[async_trait::async_trait]
impl JobHandler for Kind {
    fn kind(&self) -> &'static str {
        self.name
    }

    async fn validate(&self, _: &AppState, _: Uuid, params: &Value) -> Result<(), String> {
        if self.name == "echo" && !params["n"].is_number() {
            return Err("params.n must be a number".into());
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let p = &ctx.job.params;
        *self
            .record
            .runs
            .lock()
            .unwrap()
            .entry(ctx.job.id)
            .or_default() += 1;
        match self.name {
            "echo" => {
                let steps = p["steps"].as_u64().unwrap_or(1);
                for i in 0..steps {
                    ctx.progress(i, steps, "echoing").await?;
                    tokio::time::sleep(Duration::from_millis(p["ms"].as_u64().unwrap_or(0))).await;
                }
                ctx.progress(steps, steps, "echoed").await?;
                Ok(json!({"n": p["n"]}))
            }
            "always_fail" => Err(JobError::Retryable(format!(
                "boom attempt {}",
                ctx.job.attempts
            ))),
            "permanent" => Err(JobError::Permanent("this never works".into())),
            "wait_cancel" => {
                for i in 0..3000 {
                    if let Err(e) = ctx.progress(i, 3000, "waiting").await {
                        self.record.stopped.fetch_add(1, Ordering::SeqCst);
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(json!({"cancel": "never came"}))
            }
            // Long on its first run (the worker dies meanwhile), quick afterwards; the side
            // effect is written once per job id and returned on every run.
            "once" => {
                let hold = if ctx.job.attempts == 1 { 60_000 } else { 0 };
                for _ in 0..(hold / 50) {
                    ctx.progress(0, 1, "holding").await?;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let mut results = self.record.results.lock().unwrap();
                let stored = results
                    .entry(ctx.job.id)
                    .or_insert_with(|| json!({"attempt": ctx.job.attempts}));
                Ok(stored.clone())
            }
            _ => Ok(json!({})),
        }
    }
}

fn registry(record: &Arc<Record>) -> Registry {
    let mut r = worker::kinds::registry();
    for name in ["echo", "always_fail", "permanent", "wait_cancel", "once"] {
        r.register(Arc::new(Kind {
            name,
            record: record.clone(),
        }));
    }
    r
}

fn tiny_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
    }
}

/// One app per database with the embedded queue, and per database with RabbitMQ when
/// `AMQP_URL` is set; each with its own `Record`.
async fn setups() -> Vec<(TestApp, Arc<Record>, &'static str)> {
    let mut list = Vec::new();
    let rabbit = std::env::var("AMQP_URL").ok();
    for b in backends() {
        let modes: Vec<Option<String>> = match &rabbit {
            Some(url) => vec![None, Some(url.clone())],
            None => vec![None],
        };
        for amqp in modes {
            list.push(setup(&b, amqp).await);
        }
    }
    list
}

async fn setup(b: &Backend, amqp: Option<String>) -> (TestApp, Arc<Record>, &'static str) {
    let record = Arc::new(Record::default());
    let services = hivesync_backend::Services {
        registry: Some(registry(&record)),
        retry: Some(tiny_retry()),
        ..test_services().await
    };
    let label = if amqp.is_some() {
        "rabbitmq"
    } else {
        "embedded"
    };
    let app = app_with_services(
        b,
        |c| {
            c.job_lease_seconds = 3;
            c.shutdown_grace_seconds = 0;
            if let Some(url) = amqp {
                c.amqp_url = Some(url);
                c.job_queue_prefix = test_prefix();
            }
        },
        services,
    )
    .await;
    (app, record, label)
}

/// Workers on `app`'s state until the returned sender is dropped or set.
fn workers(app: &TestApp, concurrency: u32) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let options = WorkerOptions::from_config(&app.state.config.config, concurrency, Vec::new());
    let task = tokio::spawn(worker::run_workers(app.state.clone(), options, rx));
    (tx, task)
}

async fn owner(app: &TestApp) -> (String, String) {
    let (_, token, _) = app.user("owner@example.com").await;
    let project = app.project(&token, "jobs").await;
    (token, project)
}

async fn post_job(app: &TestApp, token: &str, project: &str, body: Value) -> common::Reply {
    app.call(
        Method::POST,
        &format!("/api/v1/projects/{project}/jobs"),
        Some(token),
        Some(body),
    )
    .await
}

async fn submit(app: &TestApp, token: &str, project: &str, kind: &str, params: Value) -> String {
    let r = post_job(app, token, project, json!({"kind": kind, "params": params})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["job_id"].as_str().unwrap().to_string()
}

/// Polls the job until `done` holds (20 s at most).
async fn wait_job(app: &TestApp, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = app.get(&format!("/api/v1/jobs/{id}"), token).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if done(&r.body) {
            return r.body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job {id} never got there: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn finished(j: &Value) -> bool {
    matches!(
        j["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

/// The job's events once its last one is in (the worker emits it just after storing the
/// outcome the test saw).
async fn job_events(app: &TestApp, project: &str, job: &str) -> Vec<Event> {
    let project = Uuid::parse_str(project).unwrap();
    let start = Instant::now();
    loop {
        let events: Vec<Event> = app
            .state
            .event_log
            .events_after(project, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.payload["job_id"].as_str() == Some(job))
            .collect();
        let last = events.last().map(|e| e.kind.as_str());
        if matches!(last, Some("job.succeeded" | "job.failed" | "job.cancelled"))
            || start.elapsed() > Duration::from_secs(5)
        {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The job's events once the last one is `kind` (events follow the row they describe).
async fn events_until(app: &TestApp, project: &str, job: &str, kind: &str) -> Vec<Event> {
    let start = Instant::now();
    loop {
        let events = job_events(app, project, job).await;
        if events.last().is_some_and(|e| e.kind == kind) {
            return events;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {kind} for job {job}: {:?}",
            kinds_of(&events)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kinds_of(events: &[Event]) -> Vec<String> {
    let mut kinds: Vec<String> = events.iter().map(|e| e.kind.clone()).collect();
    kinds.dedup();
    kinds
}

/// Stops the workers and deletes the test's RabbitMQ queues.
async fn finish(app: TestApp, stop: watch::Sender<bool>, task: tokio::task::JoinHandle<()>) {
    stop.send(true).unwrap();
    task.await.unwrap();
    if let Some(r) = &app.state.rabbit_queue {
        r.delete_queues(&app.state.registry.kinds()).await.unwrap();
    }
}

#[tokio::test]
async fn the_api_validates_before_recording_or_queueing_anything() {
    for (app, record, label) in setups().await {
        let (token, project) = owner(&app).await;
        let (_, viewer, _) = app.user("viewer@example.com").await;
        for (body, code, needle) in [
            (
                json!({"kind": "nope", "params": {}}),
                "unknown_job_kind",
                "`nope`",
            ),
            (
                json!({"kind": "echo", "params": {}}),
                "invalid_job_params",
                "params.n",
            ),
            (
                json!({"kind": "echo", "params": [1]}),
                "invalid_job_params",
                "JSON object",
            ),
            (
                json!({"kind": "preview_cleanup"}),
                "invalid_job_params",
                "scheduled",
            ),
            (
                json!({"kind": "repo_sync", "params": {"url": "https://u:hunter2@example.com/r.git", "branch": "main"}}),
                "invalid_job_params",
                "password",
            ),
        ] {
            let r = post_job(&app, &token, &project, body.clone()).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{label} {body}");
            assert_eq!(r.code(), code, "{label} {body}: {:?}", r.body);
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle), "{label}: {msg}");
            assert!(!msg.contains("hunter2"), "{label}: {msg}");
        }
        let r = post_job(&app, &token, &project, json!({"params": {}})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        let list = app
            .get(&format!("/api/v1/projects/{project}/jobs"), &token)
            .await;
        assert_eq!(list.body, json!([]), "{label}: nothing recorded");
        // Nothing was queued either: a worker finds no job.
        let (stop, task) = workers(&app, 2);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(record.runs.lock().unwrap().is_empty(), "{label}");
        // A viewer may not request jobs.
        let r = post_job(
            &app,
            &viewer,
            &project,
            json!({"kind": "echo", "params": {"n": 1}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "non-member");
        let bad = app
            .get(
                &format!("/api/v1/projects/{project}/jobs?status=done"),
                &token,
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        let missing = app
            .get(&format!("/api/v1/jobs/{}", Uuid::new_v4()), &token)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        finish(app, stop, task).await;
    }
}

#[tokio::test]
async fn a_job_goes_from_queued_to_running_to_succeeded_with_progress_events() {
    for (app, _, label) in setups().await {
        let (token, project) = owner(&app).await;
        let id = submit(
            &app,
            &token,
            &project,
            "echo",
            json!({"n": 7, "steps": 6, "ms": 250}),
        )
        .await;
        let queued = app.get(&format!("/api/v1/jobs/{id}"), &token).await;
        assert_eq!(queued.body["status"], "queued", "{label}: no worker yet");
        assert_eq!(queued.body["kind"], "echo");
        assert_eq!(queued.body["attempts"], 0);
        let (stop, task) = workers(&app, 2);
        let running = wait_job(&app, &token, &id, |j| j["status"] == "running").await;
        assert_eq!(running["attempts"], 1, "{label}");
        let done = wait_job(&app, &token, &id, finished).await;
        assert_eq!(done["status"], "succeeded", "{label}: {done}");
        assert_eq!(done["result"], json!({"n": 7}));
        assert_eq!(
            done["progress"],
            json!({"done": 6, "total": 6, "message": "echoed"})
        );
        assert_eq!(done["error"], Value::Null);
        assert_eq!(done["attempts"], 1);
        for key in [
            "id",
            "created_at",
            "updated_at",
            "project_id",
            "max_attempts",
        ] {
            assert!(!done[key].is_null(), "{label}: {key} in {done}");
        }
        let events = job_events(&app, &project, &id).await;
        assert_eq!(
            kinds_of(&events),
            ["job.queued", "job.started", "job.progress", "job.succeeded"],
            "{label}"
        );
        let progress: Vec<&Event> = events.iter().filter(|e| e.kind == "job.progress").collect();
        // 7 progress calls over ~1.5 s: throttled to about one a second, the last always sent.
        assert!(
            (2..=4).contains(&progress.len()),
            "{label}: {} progress events",
            progress.len()
        );
        assert_eq!(progress.last().unwrap().payload["done"], 6);
        assert_eq!(events.last().unwrap().payload["result"], json!({"n": 7}));
        let list = app
            .get(
                &format!("/api/v1/projects/{project}/jobs?status=succeeded"),
                &token,
            )
            .await;
        assert_eq!(list.body.as_array().unwrap().len(), 1, "{label}");
        let none = app
            .get(
                &format!("/api/v1/projects/{project}/jobs?status=running"),
                &token,
            )
            .await;
        assert_eq!(none.body, json!([]));
        finish(app, stop, task).await;
    }
}

#[tokio::test]
async fn cancel_stops_a_running_job_at_its_next_progress_call_and_a_queued_one_never_runs() {
    for (app, record, label) in setups().await {
        let (token, project) = owner(&app).await;
        let queued = submit(&app, &token, &project, "echo", json!({"n": 1})).await;
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/jobs/{queued}/cancel"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["status"], "cancelled");
        let (stop, task) = workers(&app, 2);
        let id = submit(&app, &token, &project, "wait_cancel", json!({})).await;
        wait_job(&app, &token, &id, |j| {
            j["status"] == "running" && j["progress"]["done"].as_u64() > Some(0)
        })
        .await;
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/jobs/{id}/cancel"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(r.body["status"], "cancelled", "{label}");
        let start = Instant::now();
        while record.stopped.load(Ordering::SeqCst) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{label}: handler never stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let job = app.get(&format!("/api/v1/jobs/{id}"), &token).await.body;
        assert_eq!(job["status"], "cancelled", "{label}: {job}");
        assert_eq!(job["result"], Value::Null);
        assert!(
            !record
                .runs
                .lock()
                .unwrap()
                .contains_key(&Uuid::parse_str(&queued).unwrap())
        );
        let events = job_events(&app, &project, &id).await;
        assert_eq!(
            events.iter().filter(|e| e.kind == "job.cancelled").count(),
            1,
            "{label}: {:?}",
            kinds_of(&events)
        );
        // Cancelling a finished job changes nothing.
        let again = app
            .call(
                Method::POST,
                &format!("/api/v1/jobs/{id}/cancel"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(again.body["status"], "cancelled");
        finish(app, stop, task).await;
    }
}

#[tokio::test]
async fn a_job_that_always_fails_is_retried_with_backoff_then_failed_and_dead_lettered() {
    for (app, record, label) in setups().await {
        let (token, project) = owner(&app).await;
        let (stop, task) = workers(&app, 2);
        let id = submit(&app, &token, &project, "always_fail", json!({})).await;
        let done = wait_job(&app, &token, &id, finished).await;
        assert_eq!(done["status"], "failed", "{label}: {done}");
        assert_eq!(done["attempts"], 3);
        assert_eq!(done["error"], "boom attempt 3");
        let events = events_until(&app, &project, &id, "job.failed").await;
        let retries: Vec<u64> = events
            .iter()
            .filter(|e| e.kind == "job.retrying")
            .map(|e| e.payload["retry_in_ms"].as_u64().unwrap())
            .collect();
        assert_eq!(retries, [100, 200], "{label}: exponential backoff");
        let starts: Vec<_> = events
            .iter()
            .filter(|e| e.kind == "job.started")
            .map(|e| e.created_at)
            .collect();
        assert_eq!(starts.len(), 3, "{label}");
        for (i, pair) in starts.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= time::Duration::milliseconds(retries[i] as i64 - 5),
                "{label}: attempt {} after {gap}",
                i + 2
            );
        }
        let last = events.last().unwrap();
        assert_eq!(last.kind, "job.failed");
        assert_eq!(last.payload["error"], "boom attempt 3");
        if let Some(r) = &app.state.rabbit_queue {
            assert_eq!(
                r.dead_letter_count("always_fail").await.unwrap(),
                1,
                "{label}"
            );
        }
        // A permanent failure is not retried.
        let id = submit(&app, &token, &project, "permanent", json!({})).await;
        let done = wait_job(&app, &token, &id, finished).await;
        assert_eq!(done["status"], "failed", "{label}");
        assert_eq!(done["attempts"], 1);
        assert_eq!(done["error"], "this never works");
        assert_eq!(
            record.runs.lock().unwrap()[&Uuid::parse_str(&id).unwrap()],
            1
        );
        let last = events_until(&app, &project, &id, "job.failed")
            .await
            .pop()
            .unwrap();
        assert_eq!(last.payload["error"], "this never works", "{label}");
        if let Some(r) = &app.state.rabbit_queue {
            assert_eq!(
                r.dead_letter_count("permanent").await.unwrap(),
                1,
                "{label}"
            );
        }
        finish(app, stop, task).await;
    }
}

#[tokio::test]
async fn a_worker_that_dies_mid_job_is_replaced_and_the_job_has_exactly_one_result() {
    for (app, record, label) in setups().await {
        let (token, project) = owner(&app).await;
        let (stop_a, task_a) = workers(&app, 1);
        let id = submit(&app, &token, &project, "once", json!({})).await;
        wait_job(&app, &token, &id, |j| j["status"] == "running").await;
        // Claimed is not yet started: wait for the handler to be running.
        let uuid = Uuid::parse_str(&id).unwrap();
        while !record.runs.lock().unwrap().contains_key(&uuid) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Worker A goes away holding the job (no grace: its run is abandoned mid-way); on
        // RabbitMQ its connection goes with it.
        stop_a.send(true).unwrap();
        task_a.await.unwrap();
        if let Some(r) = &app.state.rabbit_queue {
            r.close_connections().await;
        }
        let (stop_b, task_b) = workers(&app, 1);
        let done = wait_job(&app, &token, &id, finished).await;
        assert_eq!(done["status"], "succeeded", "{label}: {done}");
        assert_eq!(done["attempts"], 2, "{label}");
        assert_eq!(done["result"], json!({"attempt": 2}));
        assert_eq!(record.results.lock().unwrap().len(), 1, "{label}");
        assert_eq!(record.runs.lock().unwrap()[&uuid], 2);
        // Nothing runs it a third time.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(record.runs.lock().unwrap()[&uuid], 2, "{label}");
        finish(app, stop_b, task_b).await;
    }
}

#[tokio::test]
async fn a_job_whose_worker_died_on_its_last_attempt_fails_with_a_job_failed_event() {
    for (app, record, label) in setups().await {
        let (token, project) = owner(&app).await;
        let pid = Uuid::parse_str(&project).unwrap();
        let job = app
            .state
            .queue
            .jobs()
            .create(NewJob {
                project_id: pid,
                kind: "once".into(),
                params: json!({}),
                max_attempts: Some(1),
            })
            .await
            .unwrap();
        app.state.queue.enqueue(job.id, "once").await.unwrap();
        // A worker claims it (its only attempt) and dies at once: its short lease runs out.
        let claimed = app
            .state
            .queue
            .jobs()
            .claim_id(job.id, Duration::from_millis(200))
            .await
            .unwrap();
        assert!(
            matches!(claimed, ClaimById::Claimed(_)),
            "{label}: {claimed:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (stop, task) = workers(&app, 1);
        let id = job.id.to_string();
        let done = wait_job(&app, &token, &id, finished).await;
        assert_eq!(done["status"], "failed", "{label}: {done}");
        assert!(
            done["error"]
                .as_str()
                .unwrap_or("")
                .contains("stopped answering"),
            "{label}: {done}"
        );
        let events = events_until(&app, &project, &id, "job.failed").await;
        assert_eq!(
            events.iter().filter(|e| e.kind == "job.failed").count(),
            1,
            "{label}: {:?}",
            kinds_of(&events)
        );
        // No attempt was left: nothing ran it.
        assert!(
            !record.runs.lock().unwrap().contains_key(&job.id),
            "{label}"
        );
        finish(app, stop, task).await;
    }
}

#[tokio::test]
async fn jobs_flow_through_a_dropped_broker_connection_and_unpublished_rows_are_swept() {
    for (app, _, label) in setups().await {
        let (token, project) = owner(&app).await;
        let (stop, task) = workers(&app, 4);
        let mut ids = Vec::new();
        for n in 0..30 {
            ids.push(submit(&app, &token, &project, "echo", json!({"n": n, "ms": 20})).await);
            if n == 12
                && let Some(r) = &app.state.rabbit_queue
            {
                r.close_connections().await;
            }
        }
        // A job recorded while the broker was unreachable (never published): the sweeper
        // hands it over.
        let pid = Uuid::parse_str(&project).unwrap();
        let unpublished = app
            .state
            .queue
            .jobs()
            .create(NewJob {
                project_id: pid,
                kind: "echo".into(),
                params: json!({"n": 99}),
                max_attempts: None,
            })
            .await
            .unwrap();
        let swept = app
            .state
            .queue
            .republish_unpublished(Duration::ZERO)
            .await
            .unwrap();
        if app.state.rabbit_queue.is_some() {
            assert_eq!(swept, 1, "{label}: only the unpublished row");
        }
        ids.push(unpublished.id.to_string());
        for (n, id) in ids.iter().enumerate() {
            let done = wait_job(&app, &token, id, finished).await;
            assert_eq!(done["status"], "succeeded", "{label}: job {n}: {done}");
        }
        let all = app
            .state
            .queue
            .jobs()
            .list(pid, Some(JobStatus::Succeeded))
            .await
            .unwrap();
        assert_eq!(all.len(), 31, "{label}");
        finish(app, stop, task).await;
    }
}
