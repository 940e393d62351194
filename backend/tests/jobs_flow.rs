//! The product flow of jobs, through the HTTP API and real in-process workers, on SQLite
//! always and PostgreSQL/RabbitMQ/Redis when their URLs are set: a maintainer requests `docs`
//! (offline provider) and `refactor` jobs on an uploaded multi-language snapshot; each makes
//! exactly one proposal that a reviewer approves (wholly or partly); the approved ChangeSet
//! applied to a copy documents/renames the right places and its inverse restores every byte.
//! `explain` posts an AI reply (`author_kind: ai`) in a thread. Bad requests are 422 and queue
//! nothing.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, app_with_services, backends, test_services};
use hivesync_analysis::changeset;
use hivesync_backend::queue::{Job, JobStatus, RetryPolicy};
use hivesync_backend::worker::{self, WorkerOptions};
use hivesync_protocol::ChangeSet;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

const FILES: &[(&str, &str)] = &[
    (
        "shapes/area.py",
        "def area(width, height):\n    if width < 0:\n        raise ValueError(\"negative\")\n    return width * height\n",
    ),
    (
        "app.py",
        "from shapes.area import area\n\n\ndef main():\n    return area(2, 3)\n",
    ),
    (
        "web/util.ts",
        "export function clamp(value: number, low: number, high: number): number {\n  return Math.min(Math.max(value, low), high);\n}\n",
    ),
    (
        "src/lib.rs",
        "pub fn double(x: i32) -> i32 {\n    x * 2\n}\n",
    ),
    (
        "go/calc.go",
        "package calc\n\nfunc Sum(a int, b int) int {\n\treturn a + b\n}\n",
    ),
];

async fn app(b: &common::Backend) -> TestApp {
    let services = hivesync_backend::Services {
        retry: Some(RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(50),
            max: Duration::from_millis(100),
        }),
        ..test_services().await
    };
    app_with_services(b, |c| c.shutdown_grace_seconds = 0, services).await
}

fn workers(app: &TestApp) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let options = WorkerOptions::from_config(&app.state.config.config, 2, Vec::new());
    (
        tx,
        tokio::spawn(worker::run_workers(app.state.clone(), options, rx)),
    )
}

async fn request_job(app: &TestApp, token: &str, project: &str, kind: &str, params: Value) -> Uuid {
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/jobs"),
            Some(token),
            Some(json!({"kind": kind, "params": params})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{kind}: {:?}", r.body);
    r.body["job_id"].as_str().unwrap().parse().unwrap()
}

async fn finished(app: &TestApp, id: Uuid) -> Job {
    let start = Instant::now();
    loop {
        let job = app.state.queue.jobs().get(id).await.unwrap().unwrap();
        if job.status.is_finished() {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "job {id}: {:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Applies `cs` to a copy of FILES; returns the new texts by path.
fn applied(cs: &ChangeSet) -> (tempfile::TempDir, ChangeSet) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in FILES {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let inverse = changeset::apply(dir.path(), cs).unwrap();
    (dir, inverse)
}

fn read(dir: &tempfile::TempDir, path: &str) -> String {
    std::fs::read_to_string(dir.path().join(path)).unwrap()
}

#[tokio::test]
async fn docs_and_refactor_jobs_make_one_reviewable_proposal_each() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "shapes").await;
        let snapshot = app.upload_snapshot(&owner, &project, FILES).await;
        let (stop, running) = workers(&app);

        // docs with the offline provider over every undocumented public definition.
        let job = request_job(
            &app,
            &owner,
            &project,
            "docs",
            json!({"snapshot_id": snapshot, "provider": "offline"}),
        )
        .await;
        let done = finished(&app, job).await;
        assert_eq!(
            done.status,
            JobStatus::Succeeded,
            "{}: {:?}",
            b.name(),
            done.error
        );
        let result = done.result.unwrap();
        assert!(result["documented"].as_u64().unwrap() >= 5, "{result}");
        let pid = result["proposal_id"].as_str().unwrap().to_string();
        let r = app.get(&format!("/api/v1/jobs/{job}"), &owner).await;
        assert_eq!(r.body["result"]["proposal_id"], pid.as_str());
        assert_eq!(r.body["status"], "succeeded");

        let proposal = app.get(&format!("/api/v1/proposals/{pid}"), &owner).await;
        assert_eq!(proposal.status, StatusCode::OK, "{:?}", proposal.body);
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/proposals/{pid}/review"),
                Some(&owner),
                Some(json!({"accept_all": true})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let approved = app
            .get(&format!("/api/v1/proposals/{pid}/approved"), &owner)
            .await;
        let cs: ChangeSet = serde_json::from_value(approved.body["change"].clone())
            .or_else(|_| serde_json::from_value(approved.body.clone()))
            .unwrap();
        let (dir, inverse) = applied(&cs);
        let py = read(&dir, "shapes/area.py");
        assert!(
            py.starts_with("def area(width, height):\n    \"\"\""),
            "{py}"
        );
        assert!(
            py.contains("ValueError"),
            "raised errors are documented: {py}"
        );
        assert!(
            read(&dir, "web/util.ts").starts_with("/**"),
            "{}",
            read(&dir, "web/util.ts")
        );
        assert!(
            read(&dir, "src/lib.rs").starts_with("/// "),
            "{}",
            read(&dir, "src/lib.rs")
        );
        assert!(
            read(&dir, "go/calc.go").contains("// Sum "),
            "{}",
            read(&dir, "go/calc.go")
        );
        changeset::apply(dir.path(), &inverse).unwrap();
        for (path, text) in FILES {
            assert_eq!(read(&dir, path), *text, "{path} restored byte for byte");
        }

        // refactor: rename `area` across files; exact edits only.
        let job = request_job(
            &app,
            &owner,
            &project,
            "refactor",
            json!({"snapshot_id": snapshot, "path": "shapes/area.py", "line": 1, "column": 5,
                "new_name": "surface", "include_probable": false}),
        )
        .await;
        let done = finished(&app, job).await;
        assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.error);
        let pid = done.result.unwrap()["proposal_id"]
            .as_str()
            .unwrap()
            .to_string();
        app.call(
            Method::POST,
            &format!("/api/v1/proposals/{pid}/review"),
            Some(&owner),
            Some(json!({"accept_all": true})),
        )
        .await;
        let approved = app
            .get(&format!("/api/v1/proposals/{pid}/approved"), &owner)
            .await;
        let cs: ChangeSet = serde_json::from_value(approved.body["change"].clone())
            .or_else(|_| serde_json::from_value(approved.body.clone()))
            .unwrap();
        let (dir, _) = applied(&cs);
        assert!(read(&dir, "app.py").contains("from shapes.area import surface"));
        assert!(read(&dir, "app.py").contains("return surface(2, 3)"));
        assert!(read(&dir, "shapes/area.py").starts_with("def surface("));

        // A refused rename fails the job with the engine's reason and makes no proposal.
        let job = request_job(
            &app,
            &owner,
            &project,
            "refactor",
            json!({"snapshot_id": snapshot, "path": "shapes/area.py", "line": 1, "column": 5,
                "new_name": "class"}),
        )
        .await;
        let done = finished(&app, job).await;
        assert_eq!(done.status, JobStatus::Failed);
        assert!(done.error.unwrap().contains("class"));
        let list = app
            .get(&format!("/api/v1/projects/{project}/proposals"), &owner)
            .await;
        assert_eq!(
            list.body
                .as_array()
                .map(Vec::len)
                .unwrap_or_else(|| list.body["proposals"].as_array().unwrap().len()),
            2
        );

        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
    }
}

#[tokio::test]
async fn bad_job_requests_are_422_and_queue_nothing() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "p").await;
        let snapshot = app.upload_snapshot(&owner, &project, FILES).await;
        for (kind, params, needle) in [
            (
                "docs",
                json!({"snapshot_id": Uuid::now_v7()}),
                "does not exist",
            ),
            (
                "docs",
                json!({"snapshot_id": snapshot, "paths": ["../x"]}),
                "../x",
            ),
            (
                "docs",
                json!({"snapshot_id": snapshot, "provider": "anthropic"}),
                "anthropic",
            ),
            ("explain", json!({"thread_id": Uuid::now_v7()}), "thread"),
            (
                "refactor",
                json!({"snapshot_id": snapshot, "path": "nope.py", "line": 1, "column": 1, "new_name": "x"}),
                "nope.py",
            ),
            ("teleport", json!({}), "teleport"),
        ] {
            let r = app
                .call(
                    Method::POST,
                    &format!("/api/v1/projects/{project}/jobs"),
                    Some(&owner),
                    Some(json!({"kind": kind, "params": params})),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{kind} {params}: {:?}",
                r.body
            );
            assert!(
                r.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(needle),
                "{kind}: {:?}",
                r.body
            );
        }
        let jobs = app
            .get(&format!("/api/v1/projects/{project}/jobs"), &owner)
            .await;
        let n = jobs
            .body
            .as_array()
            .map(Vec::len)
            .unwrap_or_else(|| jobs.body["jobs"].as_array().unwrap().len());
        assert_eq!(n, 0, "nothing queued: {:?}", jobs.body);
    }
}

#[tokio::test]
async fn explain_posts_one_ai_reply_in_the_thread() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "p").await;
        let snapshot = app.upload_snapshot(&owner, &project, FILES).await;
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/projects/{project}/threads"),
                Some(&owner),
                Some(json!({"path": "shapes/area.py", "snapshot_id": snapshot, "start_line": 2, "end_line": 3,
                    "body": "Why does this raise?"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let thread = r.body["id"].as_str().unwrap().to_string();
        let (stop, running) = workers(&app);
        let job = request_job(
            &app,
            &owner,
            &project,
            "explain",
            json!({"thread_id": thread}),
        )
        .await;
        let done = finished(&app, job).await;
        assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.error);
        let t = app.get(&format!("/api/v1/threads/{thread}"), &owner).await;
        let comments = t.body["comments"].as_array().unwrap();
        assert_eq!(comments.len(), 2, "{:?}", t.body);
        assert_eq!(comments[1]["author_kind"], "ai");
        assert_eq!(
            comments[1]["id"],
            job.to_string().as_str(),
            "the reply's id is the job's id"
        );
        assert!(!comments[1]["body"].as_str().unwrap().trim().is_empty());
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
    }
}
