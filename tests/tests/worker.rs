//! `hivesync worker` and the server's in-process workers as real processes sharing one
//! database (SQLite in a temporary data directory; PostgreSQL when `DATABASE_URL` is set, one
//! schema per test) and, when `AMQP_URL` is set, RabbitMQ. The test records jobs through the
//! backend library on the same database and watches the jobs table. Job kinds are the
//! test-only ones (`HIVESYNC_TEST_JOB_KINDS=1`, set for the child processes only).
#![allow(clippy::unwrap_used)]

use hivesync_backend::config::Config;
use hivesync_backend::queue::{JobStatus, NewJob, SYSTEM_PROJECT};
use hivesync_backend::worker::{Registry, kinds};
use hivesync_backend::{AppState, Services, build_state};
use hivesync_e2e::{hivesync, text};
use serde_json::{Value, json};
use sqlx::Connection;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
        let mut registry = Registry::new();
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
    let job = state
        .queue
        .jobs()
        .create(NewJob {
            project_id: SYSTEM_PROJECT,
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

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_leaves_its_job_to_another_worker_with_one_result() {
    for shared in variants().await {
        let label = shared.label.clone();
        let (state, _stop) = shared.state().await;
        let marks = shared.home.path().join("marks");
        std::fs::create_dir_all(&marks).unwrap();
        let mut a = shared.spawn(&["worker", "--concurrency", "1"]);
        let id = create(
            &state,
            "test_sleep",
            json!({"ms": 6000, "dir": marks.display().to_string()}),
        )
        .await;
        let log = marks.join(format!("{id}.log"));
        let start = Instant::now();
        while lines(&log).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{label}: worker A never started the job"
            );
            if let Ok(Some(status)) = a.try_wait() {
                let (_, err) = text(&a.wait_with_output().unwrap());
                panic!("{label}: worker A exited ({status}): {err}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid_a = a.id();
        a.kill().unwrap(); // SIGKILL: no chance to clean up
        a.wait().unwrap();
        let b = shared.spawn(&["worker", "--concurrency", "2"]);
        let pid_b = b.id();
        let job = wait_status(&state, id, JobStatus::Succeeded, &label).await;
        assert_eq!(job.attempts, 2, "{label}");
        assert_eq!(job.result, Some(json!({"pid": pid_b})), "{label}");
        assert_eq!(
            lines(&log),
            [format!("started {pid_a}"), format!("started {pid_b}")],
            "{label}"
        );
        let results: Vec<_> = std::fs::read_dir(&marks)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".result"))
            .collect();
        assert_eq!(results.len(), 1, "{label}: exactly one result");
        // SIGTERM: a clean stop.
        let (status, err) = terminate(b);
        assert!(status.success(), "{label}: {status}: {err}");
        assert!(err.contains("job workers stopped"), "{label}: {err}");
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
