//! The built-in job kinds run by real workers: `preview_cleanup` (bundles of expired and
//! revoked previews, stray preview directories, unreferenced blob records and blobs) and
//! `repo_sync` (a local bare repository made with `git init --bare`, mirrored through a
//! file:// URL and recorded as snapshots; and a smart-HTTP server in the test that demands HTTP
//! Basic auth, so the project's git credentials are needed — and never show in a job, an event
//! or the log). SQLite always, PostgreSQL when `DATABASE_URL` is set.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use common::{TestApp, app_with_services, backends, test_services};
use hivesync_analysis::changeset::content_hash;
use hivesync_analysis::manifest::manifest_hash;
use hivesync_backend::preview::preview_dir;
use hivesync_backend::queue::{JobStatus, RetryPolicy};
use hivesync_backend::store::{Preview, PreviewStatus, Project, Snapshot};
use hivesync_backend::worker::{self, WorkerOptions};
use hivesync_protocol::{Manifest, ManifestFile};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
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

const GIT_USER: &str = "sync-bot";
const GIT_SECRET: &str = "glpat-s3cret-0123456789abcdef";

/// Everything the tests' tracing logged (installed once per test binary).
fn captured_log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct Sink(&'static Mutex<Vec<u8>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Sink(log))
            .try_init();
        log
    })
}

/// `git http-backend` as CGI for the repositories under `root`, behind HTTP Basic auth.
async fn git_http(
    State(root): State<PathBuf>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{GIT_USER}:{GIT_SECRET}"))
    );
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if header("authorization") != expected {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
            "authentication required",
        )
            .into_response();
    }
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", GIT_USER)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &body)
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        })
        .expect("CGI headers");
    let head = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
    let mut response = Response::new(axum::body::Body::from(out.stdout[split.1..].to_vec()));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap().parse::<u16>().unwrap();
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
        } else {
            response.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
    }
    response
}

/// Serves the bare repositories under `root`; returns the base URL.
async fn git_server(root: PathBuf) -> String {
    let app = axum::Router::new().fallback(git_http).with_state(root);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The ways the secret could leak: as it is, or inside a Basic header.
fn leaks(text: &str) -> bool {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{GIT_USER}:{GIT_SECRET}"));
    text.contains(GIT_SECRET) || text.contains(&encoded)
}

#[tokio::test]
async fn repo_sync_authenticates_with_the_projects_git_credentials_and_never_shows_them() {
    let log = captured_log();
    for b in backends() {
        let app = app(&b).await;
        let (_, token, _) = app.user("owner@example.com").await;
        let project = app.project(&token, "private").await;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("served");
        let remote = root.join("private.git");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&remote).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&remote, &["init", "--bare", "-q", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("lib.py"), "def secret_sauce():\n    return 42\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
        let url = format!("{}/private.git", git_server(root).await);
        let params = json!({"url": url, "branch": "main"});
        let (stop, task) = workers(&app);
        let creds = format!("/api/v1/projects/{project}/git-credentials");

        // No credentials: a clear, permanent failure.
        let r = app.get(&creds, &token).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["has_secret"], false);
        assert_eq!(r.body["username"], Value::Null);
        let without = sync(&app, &token, &project, params.clone()).await;
        let job = wait_finished(&app, without).await;
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.attempts, 1, "an authentication failure is not retried");
        let error = job.error.unwrap();
        assert!(
            error.contains("requires authentication") && error.contains("git-credentials"),
            "{error}"
        );

        // Bad input is refused by name, and its secret is not echoed.
        for (body, field) in [
            (json!({"username": "", "secret": GIT_SECRET}), "`username`"),
            (json!({"username": GIT_USER, "secret": ""}), "`secret`"),
        ] {
            let r = app
                .call(Method::PUT, &creds, Some(&token), Some(body))
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
            assert!(r.body.to_string().contains(field), "{:?}", r.body);
            assert!(!leaks(&r.body.to_string()));
        }
        // A wrong secret: refused, named as the project's credentials.
        let r = app
            .call(
                Method::PUT,
                &creds,
                Some(&token),
                Some(json!({"username": GIT_USER, "secret": "wrong-0000"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let wrong = sync(&app, &token, &project, params.clone()).await;
        let job = wait_finished(&app, wrong).await;
        assert_eq!(job.status, JobStatus::Failed);
        let error = job.error.unwrap();
        assert!(
            error.contains("refused the project's git credentials"),
            "{error}"
        );
        assert!(!error.contains("wrong-0000"), "{error}");

        // The right ones: stored write-only, and the sync succeeds.
        let r = app
            .call(
                Method::PUT,
                &creds,
                Some(&token),
                Some(json!({"username": GIT_USER, "secret": GIT_SECRET})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["has_secret"], true);
        assert_eq!(r.body["username"], GIT_USER);
        let r = app.get(&creds, &token).await;
        assert_eq!(r.body["has_secret"], true);
        assert!(!leaks(&r.body.to_string()), "{:?}", r.body);
        let with = sync(&app, &token, &project, params.clone()).await;
        let job = wait_finished(&app, with).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);
        assert_eq!(job.result.as_ref().unwrap()["snapshot_id"], json!(with));
        let file = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{with}/files/lib.py"),
                &token,
            )
            .await;
        assert_eq!(file.body, json!("def secret_sauce():\n    return 42\n"));
        let manifest = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{with}/manifest"),
                &token,
            )
            .await;
        assert_eq!(manifest.body["metadata"]["source"], json!(url));

        // A later sync fetches the existing mirror with them too.
        let again = sync(&app, &token, &project, params.clone()).await;
        let job = wait_finished(&app, again).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.error);

        // The secret is in no job, event, mirror config or log line.
        let jobs = app
            .get(&format!("/api/v1/projects/{project}/jobs"), &token)
            .await;
        assert_eq!(jobs.body.as_array().unwrap().len(), 4, "{:?}", jobs.body);
        assert!(!leaks(&jobs.body.to_string()));
        let events = app
            .get(
                &format!("/api/v1/projects/{project}/events?limit=1000"),
                &token,
            )
            .await;
        assert_eq!(events.status, StatusCode::OK);
        let events = events.body.to_string();
        assert!(
            events.contains("project.git_credentials_updated"),
            "{events}"
        );
        assert!(!leaks(&events));
        let mirrors = app.state.config.config.data_dir.join("mirrors");
        for entry in walk(&mirrors) {
            if entry.file_name().is_some_and(|n| n == "config") {
                let text = std::fs::read_to_string(&entry).unwrap();
                assert!(!leaks(&text), "{}: {text}", entry.display());
            }
        }
        let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        assert!(!leaks(&logged), "the log shows the secret");

        // Removed: syncing needs them again.
        let r = app.call(Method::DELETE, &creds, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = app.get(&creds, &token).await;
        assert_eq!(r.body["has_secret"], false);
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
