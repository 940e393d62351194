//! `hivesync worker` and the server's in-process workers as real processes sharing one
//! database (SQLite in a temporary data directory; PostgreSQL when `DATABASE_URL` is set, one
//! schema per test) and, when `AMQP_URL` is set, RabbitMQ. The test records jobs through the
//! backend library on the same database and watches the jobs table. Besides the built-in kinds
//! (a `docs` job talks to a chat-completions server inside the test), the child processes run
//! the test-only kinds (`HIVESYNC_TEST_JOB_KINDS=1`, set for them only).
#![allow(clippy::unwrap_used)]

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use hivesync_analysis::changeset::{apply_to_text, content_hash};
use hivesync_analysis::manifest::manifest_hash;
use hivesync_backend::ai::settings::{AiSettingsStore, StoredAiSettings};
use hivesync_backend::ai::{ProviderKind, ProviderSettings, Secret};
use hivesync_backend::config::Config;
use hivesync_backend::queue::{JobStatus, NewJob, SYSTEM_PROJECT};
use hivesync_backend::store::{ProposalKind, Snapshot};
use hivesync_backend::worker::kinds;
use hivesync_backend::{AppState, Services, build_state};
use hivesync_e2e::{hivesync, text};
use hivesync_protocol::{Language, Manifest, ManifestFile};
use serde_json::{Value, json};
use sqlx::Connection;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// Where the processes of one test meet: database, queue, data directory.
struct Shared {
    home: tempfile::TempDir,
    /// Environment for the child processes.
    env: Vec<(String, String)>,
    label: String,
    pg: Option<(String, String)>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some((url, schema)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::AnyConnection::connect(&url).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&mut c)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

const SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-0123456789";

/// SQLite with the embedded queue always; PostgreSQL when `DATABASE_URL` is set; RabbitMQ (over
/// SQLite) when `AMQP_URL` is set.
async fn variants() -> Vec<Shared> {
    sqlx::any::install_default_drivers();
    let mut list = vec![shared("sqlite", None, None).await];
    if let Ok(url) = std::env::var("DATABASE_URL")
        && url.starts_with("postgres")
    {
        list.push(shared("postgres", Some(url), None).await);
    }
    if let Ok(url) = std::env::var("AMQP_URL") {
        list.push(shared("rabbitmq", None, Some(url)).await);
    }
    list
}

async fn shared(label: &str, pg: Option<String>, amqp: Option<String>) -> Shared {
    let home = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("HIVESYNC_TEST_JOB_KINDS".into(), "1".into()),
        ("HIVESYNC_SERVER_JOB_LEASE_SECONDS".into(), "3".into()),
        ("HIVESYNC_SERVER_SHUTDOWN_GRACE_SECONDS".into(), "5".into()),
        (
            "HIVESYNC_SERVER_CLEANUP_INTERVAL_SECONDS".into(),
            "0".into(),
        ),
        ("HIVESYNC_SERVER_BIND".into(), "127.0.0.1:0".into()),
        ("HIVESYNC_SERVER_PREVIEW_BIND".into(), "127.0.0.1:0".into()),
        (
            "HIVESYNC_SERVER_DATA_DIR".into(),
            home.path().join("data").display().to_string(),
        ),
    ];
    let mut pg_schema = None;
    if let Some(url) = pg {
        let schema = format!("hs_e2e_{}", Uuid::new_v4().simple());
        let mut c = sqlx::AnyConnection::connect(&url)
            .await
            .expect("DATABASE_URL is set but PostgreSQL does not answer");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut c)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        env.push((
            "DATABASE_URL".into(),
            format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        ));
        env.push(("HIVESYNC_SERVER_JWT_SECRET".into(), SECRET.into()));
        pg_schema = Some((url, schema));
    }
    if let Some(url) = amqp {
        env.push(("AMQP_URL".into(), url));
        let prefix =
            std::env::var("HIVESYNC_TEST_PREFIX").unwrap_or_else(|_| "hivesync-e2e-".into());
        env.push((
            "HIVESYNC_SERVER_JOB_QUEUE_PREFIX".into(),
            format!("{prefix}{}", Uuid::new_v4().simple()),
        ));
    }
    Shared {
        home,
        env,
        label: label.into(),
        pg: pg_schema,
    }
}

impl Shared {
    fn var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The same configuration the processes read, for the test's own connection.
    async fn state(&self) -> (AppState, watch::Sender<bool>) {
        let config = Config {
            data_dir: self.var("HIVESYNC_SERVER_DATA_DIR").unwrap().into(),
            database_url: self.var("DATABASE_URL").map(str::to_string),
            amqp_url: self.var("AMQP_URL").map(str::to_string),
            jwt_secret: self.var("DATABASE_URL").map(|_| SECRET.to_string()),
            job_queue_prefix: self
                .var("HIVESYNC_SERVER_JOB_QUEUE_PREFIX")
                .unwrap_or("hivesync.jobs")
                .to_string(),
            job_lease_seconds: 3,
            workers: Some(0),
            ..Config::default()
        };
        let mut registry = kinds::registry();
        kinds::testing::register(&mut registry);
        let (tx, rx) = watch::channel(false);
        let state = build_state(
            config.resolve().unwrap(),
            Services {
                registry: Some(registry),
                ..Services::default()
            },
            rx,
        )
        .await
        .unwrap();
        (state, tx)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = hivesync(self.home.path());
        for key in [
            "DATABASE_URL",
            "AMQP_URL",
            "REDIS_URL",
            "HIVESYNC_STORAGE_URL",
        ] {
            cmd.env_remove(key);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().unwrap()
    }
}

async fn create(state: &AppState, kind: &str, params: Value) -> Uuid {
    create_in(state, SYSTEM_PROJECT, kind, params).await
}

async fn create_in(state: &AppState, project_id: Uuid, kind: &str, params: Value) -> Uuid {
    let job = state
        .queue
        .jobs()
        .create(NewJob {
            project_id,
            kind: kind.into(),
            params,
            max_attempts: None,
        })
        .await
        .unwrap();
    state.queue.enqueue(job.id, kind).await.unwrap();
    job.id
}

async fn wait_status(
    state: &AppState,
    id: Uuid,
    want: JobStatus,
    label: &str,
) -> hivesync_backend::queue::Job {
    let start = Instant::now();
    loop {
        let job = state.queue.jobs().get(id).await.unwrap().unwrap();
        if job.status == want {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{label}: job {id} stuck at {:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM and waits for the exit status.
fn terminate(mut child: Child) -> (std::process::ExitStatus, String) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// A chat-completions endpoint (the `openai` provider's API) that answers its first request
/// at once and holds every later one until `release` flips to true.
#[derive(Clone)]
struct Provider {
    requests: Arc<AtomicUsize>,
    /// Flips to true when a request is being held.
    holding: Arc<watch::Sender<bool>>,
    release: watch::Receiver<bool>,
}

const ANSWER: &str = "Scales `x` by a constant factor.";
const KEY: &str = "sk-e2e-never-logged-0123456789";

async fn chat_completions(State(p): State<Provider>, headers: HeaderMap) -> Json<Value> {
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {KEY}").as_str())
    );
    if p.requests.fetch_add(1, Ordering::SeqCst) > 0 {
        let mut release = p.release.clone();
        p.holding.send_replace(true);
        // Never answers until released (the worker holding this request is killed meanwhile).
        let _ = release.wait_for(|r| *r).await;
    }
    Json(json!({
        "id": "chatcmpl-e2e",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}
    }))
}

/// Starts the provider; returns its base URL, a receiver of "a request is held" and the
/// release switch.
async fn provider() -> (String, watch::Receiver<bool>, watch::Sender<bool>) {
    let (holding, held) = watch::channel(false);
    let (release_tx, release) = watch::channel(false);
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(Provider {
            requests: Arc::default(),
            holding: Arc::new(holding),
            release,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), held, release_tx)
}

const SOURCE: &str = "def double(x):\n    return x * 2\n\n\ndef triple(x):\n    return x * 3\n";

/// A project with one committed snapshot (`calc.py`) and AI settings for the `openai` provider
/// at `base_url`; returns (project id, snapshot id).
async fn docs_project(state: &AppState, base_url: &str) -> (Uuid, Uuid) {
    let project_id = Uuid::now_v7();
    sqlx::query("INSERT INTO projects (id, name, created_at, updated_at) VALUES ($1, 'e2e', 0, 0)")
        .bind(project_id.to_string())
        .execute(state.sql.pool())
        .await
        .unwrap();
    let hash = content_hash(SOURCE.as_bytes());
    state
        .blobs
        .put(&hash, bytes::Bytes::from_static(SOURCE.as_bytes()))
        .await
        .unwrap();
    let now = hivesync_backend::store::now();
    state
        .snapshots
        .add_blob(project_id, &hash, SOURCE.len() as u64, u64::MAX, now)
        .await
        .unwrap();
    let files = vec![ManifestFile {
        path: "calc.py".into(),
        hash,
        size: SOURCE.len() as u64,
        language: Language::from_path("calc.py"),
    }];
    let manifest = Manifest {
        hash: manifest_hash(&files),
        files,
        metadata: Default::default(),
    };
    let snapshot = Snapshot {
        id: Uuid::now_v7(),
        project_id,
        manifest_hash: manifest.hash.clone(),
        file_count: 1,
        total_size: SOURCE.len() as u64,
        created_by: None,
        created_at: now,
        committed_at: None,
    };
    state
        .snapshots
        .create_snapshot(&snapshot, &serde_json::to_string(&manifest).unwrap())
        .await
        .unwrap();
    state
        .snapshots
        .commit_snapshot(project_id, snapshot.id, now)
        .await
        .unwrap();
    state
        .sql
        .put_ai_settings(&StoredAiSettings {
            project_id,
            settings: ProviderSettings {
                provider: ProviderKind::OpenAi,
                base_url: Some(base_url.into()),
                model: Some("e2e-model".into()),
                api_key: Some(Secret::new(KEY)),
                ..ProviderSettings::default()
            },
            updated_by: None,
            updated_at: now,
        })
        .await
        .unwrap();
    (project_id, snapshot.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_the_middle_of_a_docs_job_leaves_one_proposal() {
    for shared in variants().await {
        let label = shared.label.clone();
        let (state, _stop) = shared.state().await;
        let (base_url, mut held, release) = provider().await;
        let (project_id, snapshot_id) = docs_project(&state, &base_url).await;
        let mut a = shared.spawn(&["worker", "--concurrency", "1"]);
        let id = create_in(
            &state,
            project_id,
            "docs",
            json!({"snapshot_id": snapshot_id, "provider": "openai"}),
        )
        .await;
        // Worker A documented `double` and waits for the provider's answer about `triple`.
        let start = Instant::now();
        while !*held.borrow_and_update() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{label}: worker A never reached the second definition"
            );
            if let Ok(Some(status)) = a.try_wait() {
                let (_, err) = text(&a.wait_with_output().unwrap());
                panic!("{label}: worker A exited ({status}): {err}");
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), held.changed()).await;
        }
        a.kill().unwrap(); // SIGKILL: no chance to clean up
        a.wait().unwrap();
        let running = state.queue.jobs().get(id).await.unwrap().unwrap();
        assert_eq!(running.status, JobStatus::Running, "{label}");
        assert_eq!(running.attempts, 1, "{label}");
        release.send_replace(true);
        let b = shared.spawn(&["worker", "--concurrency", "2"]);
        let job = wait_status(&state, id, JobStatus::Succeeded, &label).await;
        assert_eq!(job.attempts, 2, "{label}");
        assert_eq!(job.error, None, "{label}");
        let proposals = state
            .proposals
            .proposals(project_id, None, 100)
            .await
            .unwrap();
        assert_eq!(proposals.len(), 1, "{label}: exactly one proposal");
        let proposal = &proposals[0];
        let result = job.result.clone().unwrap();
        assert_eq!(result["proposal_id"], json!(proposal.id), "{label}");
        assert_eq!(result["documented"], json!(2), "{label}");
        assert_eq!(proposal.job_id, id, "{label}");
        assert_eq!(proposal.kind, ProposalKind::Docs, "{label}");
        assert_eq!(proposal.snapshot_id, snapshot_id, "{label}");
        assert_eq!(
            state
                .proposals
                .proposal_by_job(id)
                .await
                .unwrap()
                .map(|p| p.id),
            Some(proposal.id),
            "{label}"
        );
        let [file] = proposal.change.files.as_slice() else {
            panic!("{label}: one file expected: {:?}", proposal.change);
        };
        assert_eq!(file.path, "calc.py", "{label}");
        assert_eq!(
            file.base_hash.as_deref(),
            Some(content_hash(SOURCE.as_bytes()).as_str())
        );
        assert_eq!(
            apply_to_text(SOURCE, &file.edits).unwrap(),
            format!(
                "def double(x):\n    \"\"\"{ANSWER}\"\"\"\n    return x * 2\n\n\n\
                 def triple(x):\n    \"\"\"{ANSWER}\"\"\"\n    return x * 3\n"
            ),
            "{label}"
        );
        // The key is in no job row.
        assert!(
            !serde_json::to_string(&job).unwrap().contains(KEY),
            "{label}"
        );
        // SIGTERM: a clean stop, and nothing the worker logged shows the key.
        let (status, err) = terminate(b);
        assert!(status.success(), "{label}: {status}: {err}");
        assert!(err.contains("job workers stopped"), "{label}: {err}");
        assert!(!err.contains(KEY), "{label}: {err}");
        if let Some(r) = &state.rabbit_queue {
            r.delete_queues(&state.registry.kinds()).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_config_server_runs_jobs_in_process() {
    let shared = shared("sqlite", None, None).await;
    let (state, _stop) = shared.state().await;
    let server = shared.spawn(&["server"]);
    let ids = [
        create(&state, "test_noop", json!({})).await,
        create(&state, "test_noop", json!({})).await,
    ];
    for id in ids {
        let job = wait_status(&state, id, JobStatus::Succeeded, "server").await;
        assert_eq!(job.result, Some(json!({})));
    }
    let (status, err) = terminate(server);
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn worker_refuses_unknown_kinds_and_zero_concurrency() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let out = hivesync(home.path())
        .args(["worker", "--kinds", "repo_sync,nope", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (_, err) = text(&out);
    assert!(
        err.contains("worker.kinds") && err.contains("nope"),
        "{err}"
    );
    assert!(
        err.contains("preview_cleanup"),
        "lists the known kinds: {err}"
    );
    let out = hivesync(home.path())
        .args(["worker", "--concurrency", "0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("worker.concurrency"));
}
