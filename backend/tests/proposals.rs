//! Proposals end to end, on SQLite and (with `DATABASE_URL`) PostgreSQL: a snapshot uploaded
//! through the API, the `refactor` job's functions planning a rename on it (exact and probable
//! edits in hunks of their own), review (approve, partial, reject), the approved ChangeSet and
//! its `git apply`-able patch, applying and reverting byte for byte, applied/reverted records,
//! idempotency by job id, engine refusals and materialisation errors.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, app, backends, manifest};
use hivesync_analysis::changeset::apply;
use hivesync_backend::jobs::refactor::{RefactorFailure, parse_params, run_refactor, validate};
use hivesync_backend::jobs::snapshot::materialize;
use hivesync_backend::store::{NewProposal, ProposalKind, ProposalStatus, Snapshot};
use hivesync_protocol::{ChangeSet, Confidence};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use uuid::Uuid;

const LIB_PY: &str = "__all__ = [\"Job\"]\nclass Job:\n    def start(self):\n        pass\n\n    def again(self):\n        self.start()\n";
const APP_PY: &str = "from lib import Job\n\n\ndef go(j):\n    Job().start()\n    j.start()\n";
const UTIL_TS: &str = "export function area(w: number, h: number): number {\n  return w * h;\n}\n";
const MAIN_TS: &str = "import { area } from \"./util\";\n\nconsole.log(area(2, 3));\n";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("app.py", APP_PY),
        ("lib.py", LIB_PY),
        ("web/main.ts", MAIN_TS),
        ("web/util.ts", UTIL_TS),
    ]
}

/// Uploads and commits a snapshot of `files` through the snapshot API; returns its id.
async fn upload(app: &TestApp, token: &str, project: &str, files: &[(&str, &str)]) -> Uuid {
    Uuid::parse_str(&app.upload_snapshot(token, project, files).await).unwrap()
}

struct Setup {
    app: TestApp,
    owner: String,
    owner_id: String,
    reviewer: String,
    viewer: String,
    project: String,
    project_id: Uuid,
    snapshot: Uuid,
}

async fn setup(b: &common::Backend) -> Setup {
    let app = app(b).await;
    let (owner_id, owner, _) = app.user("owner@example.com").await;
    let (reviewer_id, reviewer, _) = app.user("reviewer@example.com").await;
    let (viewer_id, viewer, _) = app.user("viewer@example.com").await;
    let project = app.project(&owner, "p").await;
    for (id, role) in [(&reviewer_id, "reviewer"), (&viewer_id, "viewer")] {
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{project}/members/{id}"),
                Some(&owner),
                Some(json!({"role": role})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let snapshot = upload(&app, &owner, &project, &files()).await;
    Setup {
        project_id: Uuid::parse_str(&project).unwrap(),
        app,
        owner,
        owner_id,
        reviewer,
        viewer,
        project,
        snapshot,
    }
}

fn rename_params(s: &Setup, include_probable: bool) -> Value {
    json!({"snapshot_id": s.snapshot, "path": "lib.py", "line": 3, "column": 9,
        "new_name": "launch", "include_probable": include_probable})
}

/// Runs the refactor job's functions as the worker will; returns the proposal id.
async fn refactor(s: &Setup, job_id: Uuid, params: &Value) -> Result<Uuid, RefactorFailure> {
    validate(&s.app.state, s.project_id, params).await.unwrap();
    let p = parse_params(params).unwrap();
    let result = run_refactor(&s.app.state, s.project_id, job_id, &p).await?;
    Ok(Uuid::parse_str(result["proposal_id"].as_str().unwrap()).unwrap())
}

async fn get_proposal(s: &Setup, id: Uuid, token: &str) -> Value {
    let r = s.app.get(&format!("/api/v1/proposals/{id}"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn review(s: &Setup, id: Uuid, token: &str, body: Value) -> Reply {
    s.app
        .call(
            Method::POST,
            &format!("/api/v1/proposals/{id}/review"),
            Some(token),
            Some(body),
        )
        .await
}

/// `(path, confidence, id, text)` of every hunk.
fn hunks(p: &Value) -> Vec<(String, String, String, String)> {
    p["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f["hunks"].as_array().unwrap().iter().map(move |h| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    h["confidence"].as_str().unwrap().to_string(),
                    h["id"].as_str().unwrap().to_string(),
                    h["text"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

async fn event_kinds(s: &Setup) -> Vec<String> {
    let r = s
        .app
        .get(
            &format!("/api/v1/projects/{}/events?after=0&limit=1000", s.project),
            &s.owner,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Every file under `root` with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with(".git") {
                    stack.push(path);
                }
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn git(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn refactor_job_makes_one_proposal_with_exact_and_probable_hunks_apart() {
    for b in backends() {
        let s = setup(&b).await;
        let job = Uuid::now_v7();
        let id = refactor(&s, job, &rename_params(&s, true)).await.unwrap();

        let p = get_proposal(&s, id, &s.viewer).await;
        assert_eq!(p["status"], "pending", "{}", b.name());
        assert_eq!(p["kind"], "refactor");
        assert_eq!(p["job_id"], job.to_string());
        assert_eq!(p["snapshot_id"], s.snapshot.to_string());
        assert_eq!(p["manifest_hash"], manifest(&files()).hash);
        assert_eq!(p["exact_edits"], 3, "{p}");
        assert_eq!(p["probable_edits"], 1, "{p}");
        assert!(
            p["title"]
                .as_str()
                .unwrap()
                .contains("Rename `start` to `launch`")
        );
        let change: ChangeSet = serde_json::from_value(p["change"].clone()).unwrap();
        assert_eq!(change.files.len(), 2);

        // app.py: `Job().start()` (exact) and `j.start()` (probable) sit on adjacent lines, yet
        // they are two hunks, each of one confidence.
        let list = hunks(&p);
        let app_hunks: Vec<_> = list.iter().filter(|h| h.0 == "app.py").collect();
        assert_eq!(app_hunks.len(), 2, "{list:?}");
        let exact = app_hunks.iter().find(|h| h.1 == "exact").unwrap();
        let probable = app_hunks.iter().find(|h| h.1 == "probable").unwrap();
        assert!(exact.3.contains("+    Job().launch()\n"), "{}", exact.3);
        assert!(!exact.3.contains("j.launch()"), "{}", exact.3);
        assert!(probable.3.contains("+    j.launch()\n"), "{}", probable.3);
        assert!(!probable.3.contains("Job().launch()"), "{}", probable.3);
        assert!(
            list.iter()
                .filter(|h| h.0 == "lib.py")
                .all(|h| h.1 == "exact")
        );
        assert_eq!(p["hunks_total"], list.len());
        // The per-file diff shows every edit.
        let app_diff = p["diffs"][0]["diff"].as_str().unwrap();
        assert!(
            app_diff.starts_with("diff --git a/app.py b/app.py\n"),
            "{app_diff}"
        );
        assert!(
            app_diff.contains("+    Job().launch()\n+    j.launch()\n"),
            "{app_diff}"
        );

        // Ids are stable across requests.
        assert_eq!(hunks(&get_proposal(&s, id, &s.owner).await), list);

        // A redelivered job finds its proposal; nothing new is created.
        let again = refactor(&s, job, &rename_params(&s, true)).await.unwrap();
        assert_eq!(again, id);
        let r = s
            .app
            .get(
                &format!("/api/v1/projects/{}/proposals", s.project),
                &s.viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_array().unwrap().len(), 1, "{:?}", r.body);
        assert_eq!(
            event_kinds(&s)
                .await
                .iter()
                .filter(|k| *k == "proposal.created")
                .count(),
            1
        );

        // Without include_probable the probable edit is not proposed at all.
        let exact_only = refactor(&s, Uuid::now_v7(), &rename_params(&s, false))
            .await
            .unwrap();
        let p = get_proposal(&s, exact_only, &s.viewer).await;
        assert_eq!(p["probable_edits"], 0);
        assert!(hunks(&p).iter().all(|h| h.1 == "exact"));

        // Status filter.
        let list = |query: &'static str| {
            let s = &s;
            async move {
                s.app
                    .get(
                        &format!("/api/v1/projects/{}/proposals?{query}", s.project),
                        &s.viewer,
                    )
                    .await
            }
        };
        assert_eq!(
            list("status=pending").await.body.as_array().unwrap().len(),
            2
        );
        assert_eq!(
            list("status=approved").await.body.as_array().unwrap().len(),
            0
        );
        let r = list("status=done").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("done")
        );
    }
}

#[tokio::test]
async fn review_approve_partial_reject_and_the_approved_change_set() {
    for b in backends() {
        let s = setup(&b).await;
        let id = refactor(&s, Uuid::now_v7(), &rename_params(&s, true))
            .await
            .unwrap();
        let p = get_proposal(&s, id, &s.viewer).await;
        let list = hunks(&p);
        let probable_id = list.iter().find(|h| h.1 == "probable").unwrap().2.clone();
        let full: ChangeSet = serde_json::from_value(p["change"].clone()).unwrap();

        // Nothing is approved before a review.
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{id}/approved"), &s.viewer)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "not_reviewed");

        // Bad reviews.
        let r = review(&s, id, &s.viewer, json!({"accept_all": true})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", b.name());
        let r = review(
            &s,
            id,
            &s.reviewer,
            json!({"decisions": [{"hunk_id": "feedfeedfeedfeed", "decision": "accept"},
                {"hunk_id": probable_id, "decision": "accept"},
                {"hunk_id": "0000000000000000", "decision": "reject"}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.code(), "unknown_hunks");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("feedfeedfeedfeed") && message.contains("0000000000000000"),
            "{message}"
        );
        for bad in [
            json!({}),
            json!({"accept_all": true, "reject_all": true}),
            json!({"reject_all": true, "include_probable": true}),
            json!({"decisions": [{"hunk_id": probable_id, "decision": "accept"},
                {"hunk_id": probable_id, "decision": "reject"}]}),
        ] {
            let r = review(&s, id, &s.reviewer, bad.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}: {:?}",
                r.body
            );
        }
        let r = review(
            &s,
            id,
            &s.reviewer,
            json!({"decisions": [{"hunk_id": probable_id, "decision": "maybe"}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(get_proposal(&s, id, &s.viewer).await["status"], "pending");

        // accept_all accepts the exact hunks only: partially approved.
        let r = review(&s, id, &s.reviewer, json!({"accept_all": true})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["status"], "partially_approved");
        assert_eq!(r.body["hunks_accepted"], list.len() - 1);
        let decided: Vec<Value> = r.body["diffs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["hunks"].as_array().unwrap().clone())
            .map(|h| h["decision"].clone())
            .collect();
        assert_eq!(
            decided.iter().filter(|d| d.is_null()).count(),
            1,
            "{decided:?}"
        );
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{id}/approved"), &s.viewer)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let approved: ChangeSet = serde_json::from_value(r.body["change"].clone()).unwrap();
        assert_eq!(
            approved,
            full.filtered(&[Confidence::Exact]),
            "exactly the accepted hunks"
        );
        assert_eq!(r.body["hunk_ids"].as_array().unwrap().len(), list.len() - 1);

        // The patch applies with `git apply` on a materialised copy of the snapshot, and gives
        // what applying the approved ChangeSet gives.
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{id}/patch"), &s.viewer)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/x-diff")
        );
        let patch = r.body.as_str().unwrap().to_string();
        let by_git = tempfile::tempdir().unwrap();
        materialize(&s.app.state, s.project_id, s.snapshot, by_git.path())
            .await
            .unwrap();
        let out = git(by_git.path(), &["apply", "--verbose", "-"], Some(&patch));
        assert!(
            out.status.success(),
            "git apply: {}\n{patch}",
            String::from_utf8_lossy(&out.stderr)
        );
        let app_py = std::fs::read_to_string(by_git.path().join("app.py")).unwrap();
        assert_eq!(app_py, APP_PY.replace("Job().start()", "Job().launch()"));
        let by_apply = tempfile::tempdir().unwrap();
        materialize(&s.app.state, s.project_id, s.snapshot, by_apply.path())
            .await
            .unwrap();
        apply(by_apply.path(), &approved).unwrap();
        assert_eq!(tree(by_git.path()), tree(by_apply.path()));

        // Accepting the probable hunk by name: approved, and the approved ChangeSet is all of it.
        let r = review(
            &s,
            id,
            &s.reviewer,
            json!({"decisions": [{"hunk_id": probable_id, "decision": "accept"}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["status"], "approved");
        assert!(r.body["reviewed_by"].is_string(), "{:?}", r.body);
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{id}/approved"), &s.viewer)
            .await;
        let approved: ChangeSet = serde_json::from_value(r.body["change"].clone()).unwrap();
        assert_eq!(approved, full);

        // Applying it then its inverse restores every byte.
        let dir = tempfile::tempdir().unwrap();
        materialize(&s.app.state, s.project_id, s.snapshot, dir.path())
            .await
            .unwrap();
        let before = tree(dir.path());
        let inverse = apply(dir.path(), &approved).unwrap();
        let after = tree(dir.path());
        assert_eq!(
            String::from_utf8(after["app.py"].clone()).unwrap(),
            APP_PY.replace(".start()", ".launch()")
        );
        assert_eq!(
            String::from_utf8(after["lib.py"].clone()).unwrap(),
            LIB_PY.replace("start", "launch")
        );
        apply(dir.path(), &inverse).unwrap();
        assert_eq!(tree(dir.path()), before);

        // Rejecting everything: rejected, nothing approved, an empty patch.
        let r = review(&s, id, &s.reviewer, json!({"reject_all": true})).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["status"], "rejected");
        assert_eq!(r.body["hunks_rejected"], list.len());
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{id}/approved"), &s.viewer)
            .await;
        assert_eq!(r.body["change"]["files"], json!([]));
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{id}/patch"), &s.viewer)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, Value::Null, "empty patch");

        // accept_all with include_probable: approved in one go.
        let r = review(
            &s,
            id,
            &s.reviewer,
            json!({"accept_all": true, "include_probable": true}),
        )
        .await;
        assert_eq!(r.body["status"], "approved", "{:?}", r.body);
        let kinds = event_kinds(&s).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "proposal.reviewed").count(),
            4
        );
    }
}

#[tokio::test]
async fn applied_and_reverted_are_recorded() {
    for b in backends() {
        let s = setup(&b).await;
        let id = refactor(&s, Uuid::now_v7(), &rename_params(&s, false))
            .await
            .unwrap();
        let report = |action: &'static str, token: String, snapshot: Uuid| {
            let app = &s.app;
            async move {
                app.call(
                    Method::POST,
                    &format!("/api/v1/proposals/{id}/{action}"),
                    Some(&token),
                    Some(json!({ "snapshot_id": snapshot })),
                )
                .await
            }
        };
        // Nothing approved yet.
        let r = report("applied", s.reviewer.clone(), s.snapshot).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", b.name());
        assert_eq!(r.code(), "cannot_apply");
        let r = report("reverted", s.reviewer.clone(), s.snapshot).await;
        assert_eq!(r.code(), "not_applied");

        let r = review(&s, id, &s.reviewer, json!({"accept_all": true})).await;
        assert_eq!(r.body["status"], "approved");
        // The client applied it and uploaded the result as a new snapshot.
        let renamed: Vec<(&str, String)> = vec![
            ("app.py", APP_PY.replace("Job().start()", "Job().launch()")),
            ("lib.py", LIB_PY.replace("start", "launch")),
            ("web/main.ts", MAIN_TS.to_string()),
            ("web/util.ts", UTIL_TS.to_string()),
        ];
        let renamed: Vec<(&str, &str)> = renamed.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let after = upload(&s.app, &s.owner, &s.project, &renamed).await;

        let r = report("applied", s.viewer.clone(), after).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = report("applied", s.reviewer.clone(), Uuid::now_v7()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("snapshot")
        );

        let r = report("applied", s.reviewer.clone(), after).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["applied_snapshot_id"], after.to_string());
        // A retried report changes nothing; another snapshot is a conflict.
        let r = report("applied", s.owner.clone(), after).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["applications"].as_array().unwrap().len(), 1);
        let r = report("applied", s.owner.clone(), s.snapshot).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "cannot_apply");
        // Decisions are frozen while applied.
        let r = review(&s, id, &s.reviewer, json!({"reject_all": true})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "proposal_applied");

        let reverted = upload(&s.app, &s.owner, &s.project, &files()).await;
        let r = report("reverted", s.owner.clone(), reverted).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["applied_snapshot_id"], Value::Null);
        let r = report("reverted", s.owner.clone(), reverted).await;
        assert_eq!(r.status, StatusCode::OK, "a retried report");
        let apps = r.body["applications"].as_array().unwrap().clone();
        assert_eq!(apps.len(), 2, "{apps:?}");
        assert_eq!(apps[0]["action"], "applied");
        assert_eq!(apps[0]["snapshot_id"], after.to_string());
        assert_eq!(apps[1]["action"], "reverted");
        assert_eq!(apps[1]["snapshot_id"], reverted.to_string());
        assert_eq!(apps[1]["actor_id"], s.owner_id);
        let r = report("reverted", s.owner.clone(), after).await;
        assert_eq!(r.code(), "not_applied");

        // Reviewable again once reverted.
        let r = review(&s, id, &s.reviewer, json!({"reject_all": true})).await;
        assert_eq!(r.status, StatusCode::OK);
        let kinds = event_kinds(&s).await;
        assert_eq!(kinds.iter().filter(|k| *k == "proposal.applied").count(), 1);
        assert_eq!(
            kinds.iter().filter(|k| *k == "proposal.reverted").count(),
            1
        );
    }
}

#[tokio::test]
async fn refusals_and_bad_snapshots_fail_clearly_and_create_nothing() {
    for b in backends() {
        let s = setup(&b).await;
        let run = |params: Value| {
            let s = &s;
            async move {
                let p = parse_params(&params).unwrap();
                run_refactor(&s.app.state, s.project_id, Uuid::now_v7(), &p).await
            }
        };
        let base = |new_name: &str| {
            json!({"snapshot_id": s.snapshot, "path": "lib.py", "line": 3, "column": 9,
                "new_name": new_name})
        };
        // Engine refusals are permanent and carry the engine's message.
        let err = run(base("class")).await.unwrap_err();
        assert!(
            matches!(&err, RefactorFailure::Refused(m) if m.contains("keyword")),
            "{err}"
        );
        assert!(err.is_permanent());
        let err = run(base("again")).await.unwrap_err();
        assert!(
            matches!(&err, RefactorFailure::Refused(m) if m.contains("conflict")),
            "{err}"
        );
        let err = run(
            json!({"snapshot_id": s.snapshot, "path": "lib.py", "line": 4,
            "column": 1, "new_name": "x"}),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RefactorFailure::Refused(_)), "{err}");
        // TypeScript renames work the same way.
        let ts = run(
            json!({"snapshot_id": s.snapshot, "path": "web/util.ts", "line": 1,
            "column": 17, "new_name": "surface"}),
        )
        .await
        .unwrap();
        let ts_id = Uuid::parse_str(ts["proposal_id"].as_str().unwrap()).unwrap();
        let p = get_proposal(&s, ts_id, &s.viewer).await;
        let paths: Vec<&str> = p["diffs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["web/main.ts", "web/util.ts"], "{p}");

        // A snapshot that does not exist (or belongs to another project).
        let missing = Uuid::now_v7();
        let params = json!({"snapshot_id": missing, "path": "lib.py", "line": 2, "column": 9,
            "new_name": "launch"});
        let err = validate(&s.app.state, s.project_id, &params)
            .await
            .unwrap_err();
        assert!(err.contains(&missing.to_string()), "{err}");
        let err = run(params).await.unwrap_err();
        assert!(
            matches!(&err, RefactorFailure::Invalid(m) if m.contains(&missing.to_string())),
            "{err}"
        );
        assert!(err.is_permanent());
        let other = s.app.project(&s.owner, "other").await;
        let err = validate(
            &s.app.state,
            Uuid::parse_str(&other).unwrap(),
            &rename_params(&s, false),
        )
        .await
        .unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = validate(
            &s.app.state,
            s.project_id,
            &json!({"snapshot_id": s.snapshot, "path": "nope.py", "line": 1, "column": 1,
                "new_name": "x"}),
        )
        .await
        .unwrap_err();
        assert!(err.contains("nope.py"), "{err}");

        let r = s
            .app
            .get(
                &format!("/api/v1/projects/{}/proposals", s.project),
                &s.viewer,
            )
            .await;
        assert_eq!(
            r.body.as_array().unwrap().len(),
            1,
            "only the TypeScript one"
        );
    }
}

#[tokio::test]
async fn materialize_writes_committed_snapshots_and_refuses_unsafe_ones() {
    for b in backends() {
        let s = setup(&b).await;
        let dir = tempfile::tempdir().unwrap();
        let m = materialize(&s.app.state, s.project_id, s.snapshot, dir.path())
            .await
            .unwrap();
        assert_eq!(m.files.len(), 4);
        let written = tree(dir.path());
        let expected: BTreeMap<String, Vec<u8>> = files()
            .into_iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        assert_eq!(written, expected, "{}", b.name());

        // Not committed yet.
        let mut uncommitted = manifest(&[("x.py", "x = 1\n")]);
        let r = s
            .app
            .raw(
                Method::POST,
                &format!("/api/v1/projects/{}/snapshots", s.project),
                &s.owner,
                serde_json::to_vec(&uncommitted).unwrap(),
            )
            .await;
        let sid = Uuid::parse_str(r.body["snapshot_id"].as_str().unwrap()).unwrap();
        let err = materialize(
            &s.app.state,
            s.project_id,
            sid,
            tempfile::tempdir().unwrap().path(),
        )
        .await
        .unwrap_err();
        assert!(err.contains("not committed"), "{err}");

        // A stored manifest with an escaping path (never accepted by the API, but the worker
        // does not trust the database either): refused, nothing written outside.
        uncommitted.files[0].path = "../escape.py".into();
        let bad = Uuid::now_v7();
        let now = hivesync_backend::store::now();
        s.app
            .state
            .snapshots
            .create_snapshot(
                &Snapshot {
                    id: bad,
                    project_id: s.project_id,
                    manifest_hash: uncommitted.hash.clone(),
                    file_count: 1,
                    total_size: 6,
                    created_by: None,
                    created_at: now,
                    committed_at: Some(now),
                },
                &serde_json::to_string(&uncommitted).unwrap(),
            )
            .await
            .unwrap();
        let outer = tempfile::tempdir().unwrap();
        let inner = outer.path().join("inner");
        let err = materialize(&s.app.state, s.project_id, bad, &inner)
            .await
            .unwrap_err();
        assert!(err.contains("escape.py"), "{err}");
        assert!(!outer.path().join("escape.py").exists());
    }
}

#[tokio::test]
async fn create_proposal_is_idempotent_by_job_id() {
    for b in backends() {
        let s = setup(&b).await;
        let job_id = Uuid::now_v7();
        let change = ChangeSet {
            title: "Nothing".into(),
            files: vec![],
        };
        let new = |title: &str| NewProposal {
            id: Uuid::now_v7(),
            project_id: s.project_id,
            job_id,
            snapshot_id: s.snapshot,
            manifest_hash: "m".into(),
            kind: ProposalKind::Docs,
            title: title.into(),
            change: change.clone(),
            created_by: None,
            created_at: hivesync_backend::store::now(),
        };
        let first_new = new("first");
        let first = s
            .app
            .state
            .proposals
            .create_proposal(&first_new)
            .await
            .unwrap();
        assert_eq!(first.id, first_new.id, "{}", b.name());
        assert_eq!(first.status, ProposalStatus::Pending);
        let second = s
            .app
            .state
            .proposals
            .create_proposal(&new("second"))
            .await
            .unwrap();
        assert_eq!(second, first, "the second call returns the first proposal");
        let list = s
            .app
            .state
            .proposals
            .proposals(s.project_id, None, 100)
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].title, "first");

        // Non-members do not learn it exists; viewers cannot review it.
        let (_, outsider, _) = s.app.user("outsider@example.com").await;
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{}", first.id), &outsider)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = s
            .app
            .get(&format!("/api/v1/proposals/{}", Uuid::now_v7()), &s.owner)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn concurrent_reviews_of_single_hunks_all_count() {
    for b in backends() {
        let s = setup(&b).await;
        let id = refactor(&s, Uuid::now_v7(), &rename_params(&s, true))
            .await
            .unwrap();
        let ids: Vec<String> = hunks(&get_proposal(&s, id, &s.viewer).await)
            .into_iter()
            .map(|h| h.2)
            .collect();
        assert_eq!(ids.len(), 3);
        let replies = futures::future::join_all(ids.iter().map(|hunk| {
            review(
                &s,
                id,
                &s.reviewer,
                json!({"decisions": [{"hunk_id": hunk, "decision": "accept"}]}),
            )
        }))
        .await;
        for r in &replies {
            assert_eq!(r.status, StatusCode::OK, "{}: {:?}", b.name(), r.body);
        }
        let p = get_proposal(&s, id, &s.viewer).await;
        assert_eq!(p["hunks_accepted"], 3, "{}", b.name());
        assert_eq!(p["status"], "approved", "{}", b.name());
    }
}
