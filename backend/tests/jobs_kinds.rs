//! The built-in job kinds run by real workers: `preview_cleanup` (bundles of expired and
//! revoked previews, stray preview directories, unreferenced blob records and blobs) and
//! `repo_sync` (a local bare repository made with `git init --bare`, mirrored through a
//! file:// URL and recorded as snapshots). SQLite always, PostgreSQL when `DATABASE_URL` is set.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, app_with_services, backends, test_services};
use hivesync_analysis::changeset::content_hash;
use hivesync_analysis::manifest::manifest_hash;
use hivesync_backend::preview::preview_dir;
use hivesync_backend::queue::{JobStatus, RetryPolicy};
use hivesync_backend::store::{Preview, PreviewStatus, Project, Snapshot};
use hivesync_backend::worker::{self, WorkerOptions};
use hivesync_protocol::{Manifest, ManifestFile};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

async fn app(b: &common::Backend) -> TestApp {
    let services = hivesync_backend::Services {
        retry: Some(RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(50),
            max: Duration::from_millis(100),
        }),
        ..test_services().await
    };
    app_with_services(
        b,
        |c| {
            c.cleanup_grace_seconds = 0;
            c.repo_sync_allow_local = true;
            c.shutdown_grace_seconds = 0;
        },
        services,
    )
    .await
}

fn workers(app: &TestApp) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let options = WorkerOptions::from_config(&app.state.config.config, 2, Vec::new());
    (
        tx,
        tokio::spawn(worker::run_workers(app.state.clone(), options, rx)),
    )
}

async fn wait_finished(app: &TestApp, id: Uuid) -> hivesync_backend::queue::Job {
    let start = Instant::now();
    loop {
        let job = app.state.queue.jobs().get(id).await.unwrap().unwrap();
        if job.status.is_finished() {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {id}: {:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn preview(project_id: Uuid, expires_at: OffsetDateTime) -> Preview {
    let now = OffsetDateTime::now_utc();
    Preview {
        id: Uuid::new_v4(),
        project_id,
        name: "p".into(),
        entry: "index.html".into(),
        token_hash: Uuid::new_v4().simple().to_string(),
        status: PreviewStatus::Pending,
        bundle: None,
        created_by: None,
        created_at: now,
        expires_at,
        ready_at: None,
        revoked_at: None,
    }
}

fn bundle(data_dir: &Path, id: Uuid) -> std::path::PathBuf {
    let dir = preview_dir(data_dir, id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
    dir
}

#[tokio::test]
async fn preview_cleanup_purges_old_bundles_and_unused_blobs_only() {
    for b in backends() {
        let app = app(&b).await;
        let s = &app.state;
        let data = s.config.config.data_dir.clone();
        let now = OffsetDateTime::now_utc();
        let pid = Uuid::now_v7();
        s.projects
            .create_project(
                &Project {
                    id: pid,
                    name: "p".into(),
                    description: None,
                    created_at: now,
                    updated_at: now,
                },
                {
                    let (id, _, _) = app.user("owner@example.com").await;
                    Uuid::parse_str(&id).unwrap()
                },
            )
            .await
            .unwrap();
        let expired = preview(pid, now - time::Duration::hours(1));
        let revoked = preview(pid, now + time::Duration::hours(1));
        let live = preview(pid, now + time::Duration::hours(1));
        for p in [&expired, &revoked, &live] {
            s.previews.create_preview(p).await.unwrap();
        }
        s.previews.revoke_preview(revoked.id, now).await.unwrap();
        let (expired_dir, revoked_dir, live_dir) = (
            bundle(&data, expired.id),
            bundle(&data, revoked.id),
            bundle(&data, live.id),
        );
        let stray = bundle(&data, Uuid::new_v4());
        let leftover = data.join("previews").join(".upload-x");
        std::fs::write(&leftover, "partial").unwrap();
        // Blobs: `kept` is in a snapshot, `unused` only recorded, `orphan` not even recorded.
        let [kept, unused, orphan] =
            [b"kept".as_slice(), b"unused", b"orphan"].map(|c| (content_hash(c), c));
        for (hash, content) in [&kept, &unused, &orphan] {
            s.blobs
                .put(hash, bytes::Bytes::copy_from_slice(content))
                .await
                .unwrap();
        }
        for (hash, content) in [&kept, &unused] {
            s.snapshots
                .add_blob(pid, hash, content.len() as u64, u64::MAX / 2, now)
                .await
                .unwrap();
        }
        let files = vec![ManifestFile {
            path: "a.txt".into(),
            hash: kept.0.clone(),
            size: 4,
            language: None,
        }];
        let manifest = Manifest {
            hash: manifest_hash(&files),
            files,
            metadata: Default::default(),
        };
        s.snapshots
            .create_snapshot(
                &Snapshot {
                    id: Uuid::now_v7(),
                    project_id: pid,
                    manifest_hash: manifest.hash.clone(),
                    file_count: 1,
                    total_size: 4,
                    created_by: None,
                    created_at: now,
                    committed_at: Some(now),
                },
                &serde_json::to_string(&manifest).unwrap(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;

        let id = worker::enqueue_cleanup(s)
            .await
            .unwrap()
            .expect("scheduled");
        assert_eq!(
            worker::enqueue_cleanup(s).await.unwrap(),
            None,
            "at most one waiting"
        );
        let (stop, task) = workers(&app);
        let job = wait_finished(&app, id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
        assert_eq!(
            job.result,
            Some(json!({"previews_purged": 2, "stray_dirs_removed": 2,
                        "blob_records_dropped": 1, "blobs_deleted": 2})),
            "{}",
            b.name()
        );
        assert!(!expired_dir.exists() && !revoked_dir.exists() && !stray.exists());
        assert!(!leftover.exists());
        assert!(
            live_dir.join("index.html").is_file(),
            "a live preview keeps its bundle"
        );
        assert!(s.blobs.exists(&kept.0).await.unwrap());
        assert!(!s.blobs.exists(&unused.0).await.unwrap());
        assert!(!s.blobs.exists(&orphan.0).await.unwrap());
        let present = s
            .snapshots
            .present_blobs(pid, &[kept.0.clone(), unused.0.clone()])
            .await
            .unwrap();
        assert_eq!(present.len(), 1);
        assert!(present.contains(&kept.0));
        // A second run finds nothing more to do; the next one may be scheduled again.
        let again = worker::enqueue_cleanup(s)
            .await
            .unwrap()
            .expect("scheduled again");
        let job = wait_finished(&app, again).await;
        assert_eq!(
            job.result,
            Some(json!({"previews_purged": 0, "stray_dirs_removed": 0,
                        "blob_records_dropped": 0, "blobs_deleted": 0}))
        );
        // Maintenance jobs belong to no project a user can see.
        let (_, token, _) = app.user("someone@example.com").await;
        let r = app.get(&format!("/api/v1/jobs/{id}"), &token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn sync(app: &TestApp, token: &str, project: &str, params: Value) -> Uuid {
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/jobs"),
            Some(token),
            Some(json!({"kind": "repo_sync", "params": params})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    Uuid::parse_str(r.body["job_id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn repo_sync_mirrors_a_git_remote_and_records_snapshots_of_its_branch() {
    for b in backends() {
        let app = app(&b).await;
        let (_, token, _) = app.user("owner@example.com").await;
        let project = app.project(&token, "mirror").await;
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote.git");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&remote).unwrap();
        std::fs::create_dir_all(work.join("src")).unwrap();
        git(&remote, &["init", "--bare", "-q", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("src/app.py"), "def f():\n    return 1\n").unwrap();
        std::fs::write(work.join("README.md"), "hello\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
        let url = format!("file://{}", remote.display());
        let (stop, task) = workers(&app);

        let first = sync(
            &app,
            &token,
            &project,
            json!({"url": url, "branch": "main"}),
        )
        .await;
        let job = wait_finished(&app, first).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
        let result = job.result.unwrap();
        assert_eq!(result["snapshot_id"], json!(first));
        assert_eq!(result["file_count"], 2);
        let list = app
            .get(&format!("/api/v1/projects/{project}/snapshots"), &token)
            .await;
        assert_eq!(list.body.as_array().unwrap().len(), 1, "{:?}", list.body);
        let file = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{first}/files/src/app.py"),
                &token,
            )
            .await;
        assert_eq!(file.status, StatusCode::OK);
        assert_eq!(file.body, json!("def f():\n    return 1\n"));
        let manifest = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{first}/manifest"),
                &token,
            )
            .await;
        assert_eq!(manifest.body["metadata"]["git_ref"], "refs/heads/main");
        assert_eq!(manifest.body["metadata"]["git_commit"], result["commit"]);

        // A new commit: the mirror is fetched and a second snapshot recorded.
        std::fs::write(work.join("src/app.py"), "def f():\n    return 2\n").unwrap();
        git(&work, &["commit", "-q", "-am", "two"]);
        git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
        let second = sync(
            &app,
            &token,
            &project,
            json!({"url": url, "branch": "main"}),
        )
        .await;
        let job = wait_finished(&app, second).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
        assert_ne!(job.result.as_ref().unwrap()["commit"], result["commit"]);
        let file = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{second}/files/src/app.py"),
                &token,
            )
            .await;
        assert_eq!(file.body, json!("def f():\n    return 2\n"));

        // A branch the remote lacks fails at once; an unreachable remote after its retries.
        let missing = sync(
            &app,
            &token,
            &project,
            json!({"url": url, "branch": "nope"}),
        )
        .await;
        let job = wait_finished(&app, missing).await;
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.attempts, 1);
        assert!(
            job.error.as_deref().unwrap().contains("`nope` not found"),
            "{:?}",
            job.error
        );
        let gone = format!("file://{}", tmp.path().join("absent.git").display());
        let unreachable = sync(
            &app,
            &token,
            &project,
            json!({"url": gone, "branch": "main"}),
        )
        .await;
        let job = wait_finished(&app, unreachable).await;
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.attempts, 2, "retried");
        assert!(
            job.error.as_deref().unwrap().starts_with("git: "),
            "{:?}",
            job.error
        );
        let list = app
            .get(&format!("/api/v1/projects/{project}/snapshots"), &token)
            .await;
        assert_eq!(list.body.as_array().unwrap().len(), 2);
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
