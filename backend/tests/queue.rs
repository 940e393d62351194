//! The job queue contract, run on the embedded queue over SQLite always (and PostgreSQL when
//! `DATABASE_URL` is set, one fresh schema per test) and on RabbitMQ when `AMQP_URL` is set
//! (queues under a random per-test prefix, deleted at the end). A set URL that does not answer
//! fails the test.
#![allow(clippy::unwrap_used)]

use hivesync_backend::config::DatabaseKind;
use hivesync_backend::queue::amqp::{RabbitQueue, RabbitQueueOptions};
use hivesync_backend::queue::{
    FailOutcome, JobStatus, JobStore, NewJob, Progress, Queue, QueueError, RetryPolicy, SqlQueue,
};
use hivesync_backend::store::sql::SqlStore;
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;
use uuid::Uuid;

const KIND: &str = "docs";

/// A database for one test: its store, and what to clean up.
struct Db {
    store: SqlStore,
    _dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some((url, name)) = self.schema.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn databases() -> Vec<Db> {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let store = SqlStore::connect(&url, DatabaseKind::Sqlite, 4)
        .await
        .expect("sqlite");
    let mut list = vec![Db {
        store,
        _dir: dir,
        schema: None,
    }];
    if let Ok(url) = std::env::var("DATABASE_URL")
        && (url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        let name = format!("hs_queue_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .expect("DATABASE_URL is set but PostgreSQL does not answer");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let sep = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{sep}options=-c%20search_path%3D{name}");
        let store = SqlStore::connect(&scoped, DatabaseKind::Postgres, 8)
            .await
            .expect("postgres");
        list.push(Db {
            store,
            _dir: tempfile::tempdir().expect("tempdir"),
            schema: Some((url, name)),
        });
    }
    list
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
    }
}

/// Embedded queue on every database; RabbitMQ (over SQLite) when `AMQP_URL` is set.
async fn with_queues<F, Fut>(lease: Duration, test: F)
where
    F: Fn(Box<dyn Queue>, Option<std::sync::Arc<RabbitQueue>>, SqlStore) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in databases().await {
        let jobs = JobStore::new(&db.store, [KIND, "refactor"], retry());
        let q = SqlQueue::new(jobs, lease, Duration::from_millis(20));
        test(Box::new(q), None, db.store.clone()).await;
    }
    if let Ok(url) = std::env::var("AMQP_URL") {
        let db = databases().await.remove(0);
        let jobs = JobStore::new(&db.store, [KIND, "refactor"], retry());
        let prefix = format!("hivesync-test-{}", Uuid::new_v4().simple());
        let rabbit = std::sync::Arc::new(
            RabbitQueue::connect(
                &url,
                jobs,
                RabbitQueueOptions {
                    prefix,
                    prefetch: 4,
                    lease,
                    reconnect_attempts: 30,
                },
            )
            .await
            .expect("AMQP_URL is set but RabbitMQ does not answer"),
        );
        test(
            Box::new(Shared(rabbit.clone())),
            Some(rabbit.clone()),
            db.store.clone(),
        )
        .await;
        rabbit
            .delete_queues(&[KIND.to_string(), "refactor".to_string()])
            .await
            .expect("delete test queues");
    }
}

/// A `Queue` over a shared `RabbitQueue`, so the test keeps a handle for broker operations.
struct Shared(std::sync::Arc<RabbitQueue>);

#[async_trait::async_trait]
impl Queue for Shared {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn jobs(&self) -> &JobStore {
        self.0.jobs()
    }
    async fn enqueue(&self, id: Uuid, kind: &str) -> Result<(), QueueError> {
        self.0.enqueue(id, kind).await
    }
    async fn next(
        &self,
        kinds: &[String],
    ) -> Result<hivesync_backend::queue::Delivery, QueueError> {
        self.0.next(kinds).await
    }
    async fn ack(
        &self,
        d: hivesync_backend::queue::Delivery,
        result: serde_json::Value,
    ) -> Result<hivesync_backend::queue::Job, QueueError> {
        self.0.ack(d, result).await
    }
    async fn nack(
        &self,
        d: hivesync_backend::queue::Delivery,
        error: &str,
    ) -> Result<FailOutcome, QueueError> {
        self.0.nack(d, error).await
    }
    async fn give_up(
        &self,
        d: hivesync_backend::queue::Delivery,
        error: &str,
    ) -> Result<hivesync_backend::queue::Job, QueueError> {
        self.0.give_up(d, error).await
    }
}

async fn project(store: &SqlStore) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO projects (id, name, created_at, updated_at) VALUES ($1, 'p', 0, 0)")
        .bind(id.to_string())
        .execute(store.pool())
        .await
        .expect("project");
    id
}

fn kinds() -> Vec<String> {
    vec![KIND.to_string()]
}

async fn next(q: &dyn Queue) -> hivesync_backend::queue::Delivery {
    tokio::time::timeout(Duration::from_secs(20), q.next(&kinds()))
        .await
        .expect("a job within 20 s")
        .expect("next")
}

/// Nothing is handed out within `wait`.
async fn nothing(q: &dyn Queue, wait: Duration) {
    if let Ok(d) = tokio::time::timeout(wait, q.next(&kinds())).await {
        panic!("expected no job, got {:?}", d.map(|d| d.job));
    }
}

async fn create(q: &dyn Queue, project_id: Uuid, max: Option<u32>) -> Uuid {
    let job = q
        .jobs()
        .create(NewJob {
            project_id,
            kind: KIND.into(),
            params: json!({"snapshot_id": "s"}),
            max_attempts: max,
        })
        .await
        .expect("create");
    assert_eq!(job.status, JobStatus::Queued);
    q.enqueue(job.id, KIND).await.expect("enqueue");
    job.id
}

#[tokio::test]
async fn create_validates_lists_and_complete_is_idempotent() {
    with_queues(Duration::from_secs(30), |q, _, store| async move {
        let p = project(&store).await;
        let bad = q
            .jobs()
            .create(NewJob {
                project_id: p,
                kind: "nope".into(),
                params: json!({}),
                max_attempts: None,
            })
            .await;
        assert!(matches!(bad, Err(QueueError::UnknownKind(k)) if k == "nope"));
        let bad = q
            .jobs()
            .create(NewJob {
                project_id: p,
                kind: KIND.into(),
                params: json!([1]),
                max_attempts: None,
            })
            .await;
        assert!(matches!(bad, Err(QueueError::InvalidParams(_))));
        assert!(q.jobs().list(p, None).await.unwrap().is_empty());

        let id = create(q.as_ref(), p, None).await;
        let d = next(q.as_ref()).await;
        assert_eq!(d.job.id, id);
        assert_eq!(d.job.status, JobStatus::Running);
        assert_eq!(d.job.attempts, 1);
        assert_eq!(d.job.params, json!({"snapshot_id": "s"}));
        let progress = Progress {
            done: 2,
            total: 5,
            message: Some("documenting".into()),
        };
        assert!(
            q.jobs()
                .heartbeat(id, Duration::from_secs(30), Some(&progress))
                .await
                .unwrap()
        );
        assert_eq!(q.jobs().get(id).await.unwrap().unwrap().progress, progress);
        let running = q.jobs().list(p, Some(JobStatus::Running)).await.unwrap();
        assert_eq!(running.len(), 1);

        let job = q.ack(d, json!({"proposal_id": "first"})).await.unwrap();
        assert_eq!(job.status, JobStatus::Succeeded);
        assert_eq!(job.result, Some(json!({"proposal_id": "first"})));
        let again = q
            .jobs()
            .complete(id, &json!({"proposal_id": "second"}))
            .await
            .unwrap();
        assert_eq!(again.result, Some(json!({"proposal_id": "first"})));
        assert!(
            !q.jobs()
                .heartbeat(id, Duration::from_secs(1), None)
                .await
                .unwrap()
        );
        assert_eq!(
            q.jobs()
                .list(p, Some(JobStatus::Succeeded))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            q.jobs()
                .list(p, Some(JobStatus::Queued))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(q.jobs().get(Uuid::new_v4()).await, Ok(None)));
    })
    .await;
}

#[tokio::test]
async fn an_abandoned_job_is_claimed_again_and_completes_once() {
    with_queues(Duration::from_millis(600), |q, rabbit, store| async move {
        let p = project(&store).await;
        let id = create(q.as_ref(), p, None).await;
        let first = next(q.as_ref()).await;
        assert_eq!(first.job.attempts, 1);
        // The worker dies holding the job: on RabbitMQ its connection goes with it.
        drop(first);
        if let Some(r) = &rabbit {
            r.close_connections().await;
        }
        let second = next(q.as_ref()).await;
        assert_eq!(second.job.id, id);
        assert_eq!(second.job.attempts, 2);
        let job = q.ack(second, json!({"run": 2})).await.unwrap();
        assert_eq!(job.status, JobStatus::Succeeded);
        // A late completion by the first worker keeps the stored result.
        let late = q.jobs().complete(id, &json!({"run": 1})).await.unwrap();
        assert_eq!(late.result, Some(json!({"run": 2})));
        nothing(q.as_ref(), Duration::from_millis(1500)).await;
        assert_eq!(q.jobs().get(id).await.unwrap().unwrap().attempts, 2);
    })
    .await;
}

#[tokio::test]
async fn a_live_heartbeat_keeps_the_job_with_its_worker() {
    with_queues(Duration::from_millis(400), |q, _, store| async move {
        let p = project(&store).await;
        let id = create(q.as_ref(), p, None).await;
        let d = next(q.as_ref()).await;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert!(
                q.jobs()
                    .heartbeat(id, Duration::from_millis(400), None)
                    .await
                    .unwrap()
            );
        }
        let job = q.ack(d, json!({})).await.unwrap();
        assert_eq!(job.attempts, 1);
    })
    .await;
}

#[tokio::test]
async fn a_job_that_always_fails_is_retried_with_backoff_then_failed() {
    with_queues(Duration::from_secs(30), |q, rabbit, store| async move {
        let p = project(&store).await;
        let id = create(q.as_ref(), p, None).await;
        let mut last_fail = None;
        for attempt in 1..=3u32 {
            let d = next(q.as_ref()).await;
            assert_eq!(d.job.id, id);
            assert_eq!(d.job.attempts, attempt);
            if let Some(at) = last_fail {
                let waited = std::time::Instant::now().duration_since(at);
                let backoff = retry().backoff(attempt - 1);
                assert!(
                    waited + Duration::from_millis(20) >= backoff,
                    "attempt {attempt} came after {waited:?}, backoff {backoff:?}"
                );
            }
            let outcome = q.nack(d, &format!("boom {attempt}")).await.unwrap();
            last_fail = Some(std::time::Instant::now());
            match (attempt, outcome) {
                (3, FailOutcome::Failed(job)) => {
                    assert_eq!(job.status, JobStatus::Failed);
                    assert_eq!(job.error.as_deref(), Some("boom 3"));
                }
                (a, FailOutcome::Retry { after, job }) if a < 3 => {
                    assert_eq!(after, retry().backoff(a));
                    assert_eq!(job.status, JobStatus::Queued);
                    assert!(job.run_after >= job.updated_at + after);
                }
                (a, other) => panic!("attempt {a}: unexpected {other:?}"),
            }
        }
        nothing(q.as_ref(), Duration::from_millis(800)).await;
        let job = q.jobs().get(id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.attempts, 3);
        if let Some(r) = &rabbit {
            assert_eq!(r.dead_letter_count(KIND).await.unwrap(), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn permanent_failures_and_workers_dead_on_the_last_attempt_are_dead_lettered() {
    with_queues(Duration::from_millis(600), |q, rabbit, store| async move {
        let p = project(&store).await;
        // The handler says retrying cannot help: `failed` at once, with its error.
        let permanent = create(q.as_ref(), p, None).await;
        let d = next(q.as_ref()).await;
        assert_eq!(d.job.id, permanent);
        let job = q.give_up(d, "snapshot s does not exist").await.unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.attempts, 1);
        assert_eq!(job.error.as_deref(), Some("snapshot s does not exist"));
        if let Some(r) = &rabbit {
            assert_eq!(r.dead_letter_count(KIND).await.unwrap(), 1);
        }
        // A cancelled job given up on afterwards stays cancelled and is no dead letter.
        let cancelled = create(q.as_ref(), p, None).await;
        let d = next(q.as_ref()).await;
        assert_eq!(d.job.id, cancelled);
        q.jobs().cancel(cancelled).await.unwrap();
        let job = q.give_up(d, "too late").await.unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        // The worker dies on the job's last attempt: once the lease passes it is `failed`.
        let last = create(q.as_ref(), p, Some(1)).await;
        let d = next(q.as_ref()).await;
        assert_eq!(d.job.id, last);
        drop(d);
        if let Some(r) = &rabbit {
            r.close_connections().await;
        }
        nothing(q.as_ref(), Duration::from_millis(2500)).await;
        let job = q.jobs().get(last).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.attempts, 1);
        assert_eq!(
            job.error.as_deref(),
            Some("the worker stopped answering (lease expired)")
        );
        if let Some(r) = &rabbit {
            assert_eq!(r.dead_letter_count(KIND).await.unwrap(), 2);
        }
    })
    .await;
}

#[tokio::test]
async fn cancelled_jobs_do_not_run() {
    with_queues(Duration::from_secs(30), |q, _, store| async move {
        let p = project(&store).await;
        let queued = create(q.as_ref(), p, None).await;
        let job = q.jobs().cancel(queued).await.unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        nothing(q.as_ref(), Duration::from_millis(800)).await;

        let running = create(q.as_ref(), p, None).await;
        let d = next(q.as_ref()).await;
        assert_eq!(d.job.id, running);
        q.jobs().cancel(running).await.unwrap();
        // The worker learns it from its heartbeat; its result does not override the cancel.
        assert!(
            !q.jobs()
                .heartbeat(running, Duration::from_secs(30), None)
                .await
                .unwrap()
        );
        let job = q.ack(d, json!({"late": true})).await.unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        assert_eq!(job.result, None);
        assert!(matches!(
            q.jobs().cancel(Uuid::new_v4()).await,
            Err(QueueError::NotFound(_))
        ));
        assert_eq!(
            q.jobs()
                .list(p, Some(JobStatus::Cancelled))
                .await
                .unwrap()
                .len(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn a_redelivered_finished_job_does_not_run_twice() {
    with_queues(Duration::from_secs(30), |q, _, store| async move {
        let p = project(&store).await;
        let id = create(q.as_ref(), p, None).await;
        let d = next(q.as_ref()).await;
        q.ack(d, json!({"n": 1})).await.unwrap();
        // The same id arrives again (a broker redelivery, a duplicate publish).
        q.enqueue(id, KIND).await.unwrap();
        nothing(q.as_ref(), Duration::from_millis(800)).await;
        let job = q.jobs().get(id).await.unwrap().unwrap();
        assert_eq!(job.attempts, 1);
        assert_eq!(job.result, Some(json!({"n": 1})));
    })
    .await;
}

#[tokio::test]
async fn dropping_the_broker_connection_loses_no_job() {
    with_queues(Duration::from_secs(2), |q, rabbit, store| async move {
        let p = project(&store).await;
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(create(q.as_ref(), p, None).await);
        }
        for _ in 0..3 {
            let d = next(q.as_ref()).await;
            q.ack(d, json!({})).await.unwrap();
        }
        // Mid-flow: one job in hand when the connection drops.
        let in_hand = next(q.as_ref()).await;
        if let Some(r) = &rabbit {
            r.close_connections().await;
        }
        q.ack(in_hand, json!({})).await.unwrap();
        for _ in 0..10 {
            ids.push(create(q.as_ref(), p, None).await);
        }
        let mut done = 4;
        while done < ids.len() {
            let d = next(q.as_ref()).await;
            let job = q.ack(d, json!({})).await.unwrap();
            assert_eq!(job.status, JobStatus::Succeeded);
            done += 1;
        }
        nothing(q.as_ref(), Duration::from_millis(800)).await;
        for id in ids {
            let job = q.jobs().get(id).await.unwrap().unwrap();
            assert_eq!(job.status, JobStatus::Succeeded, "job {id}");
            assert_eq!(job.attempts, 1, "job {id} ran more than once");
        }
    })
    .await;
}
