//! Manifest sync and snapshots over the HTTP API, on SQLite and (with `DATABASE_URL`)
//! PostgreSQL: create → missing blobs → upload (verified, limited, deduplicated) → commit,
//! then list, manifest, file content and diff; every error path.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Reply, TestApp, app, app_with, backends, manifest};
use hivesync_analysis::changeset::content_hash;
use hivesync_protocol::Manifest;
use serde_json::{Value, json};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

async fn post_manifest(app: &TestApp, project: &str, token: &str, m: &Value) -> Reply {
    raw(
        app,
        Method::POST,
        &format!("/api/v1/projects/{project}/snapshots"),
        token,
        serde_json::to_vec(m).unwrap(),
        "application/json",
    )
    .await
}

async fn put_blob(app: &TestApp, project: &str, token: &str, hash: &str, content: &[u8]) -> Reply {
    raw(
        app,
        Method::PUT,
        &format!("/api/v1/projects/{project}/blobs/{hash}"),
        token,
        content.to_vec(),
        "application/octet-stream",
    )
    .await
}

/// The bytes of a non-JSON response.
async fn get_bytes(app: &TestApp, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let mut req = req;
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(app.peer));
    let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

#[tokio::test]
async fn sync_upload_commit_and_read_back() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let (viewer_id, viewer, _) = app.user("viewer@example.com").await;
        let (_, outsider, _) = app.user("outsider@example.com").await;
        let project = app.project(&owner, "mirror").await;
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{project}/members/{viewer_id}"),
                Some(&owner),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);

        let files = [
            ("README.md", "# hi\n"),
            ("src/app.py", "print('hi')\n"),
            ("src/copy.py", "print('hi')\n"),
        ];
        let m1 = manifest(&files);
        let r = post_manifest(&app, &project, &owner, &serde_json::to_value(&m1).unwrap()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", b.name(), r.body);
        let s1 = r.body["snapshot_id"].as_str().unwrap().to_string();
        let mut missing: Vec<String> = serde_json::from_value(r.body["missing"].clone()).unwrap();
        missing.sort();
        let mut want = vec![content_hash(b"# hi\n"), content_hash(b"print('hi')\n")];
        want.sort();
        assert_eq!(missing, want, "identical contents are asked for once");

        // Commit before the uploads: 409 naming what is missing.
        let commit = format!("/api/v1/projects/{project}/snapshots/{s1}/commit");
        let r = app.call(Method::POST, &commit, Some(&owner), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "missing_blobs");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&want[0]) && message.contains(&want[1]),
            "{message}"
        );

        // Upload: wrong content for the hash, a malformed hash, then the real ones.
        let h_readme = content_hash(b"# hi\n");
        let r = put_blob(&app, &project, &owner, &h_readme, b"# tampered\n").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.code(), "hash_mismatch");
        let r = put_blob(&app, &project, &owner, "ABC", b"x").await;
        assert_eq!(r.code(), "invalid_hash");
        let r = put_blob(&app, &project, &viewer, &h_readme, b"# hi\n").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "viewers do not write");
        let r = put_blob(&app, &project, &outsider, &h_readme, b"# hi\n").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        for (_, content) in &files[..2] {
            let r = put_blob(
                &app,
                &project,
                &owner,
                &content_hash(content.as_bytes()),
                content.as_bytes(),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body["created"], true);
        }
        let r = put_blob(&app, &project, &owner, &h_readme, b"# hi\n").await;
        assert_eq!(r.status, StatusCode::OK, "re-upload is a no-op");
        assert_eq!(r.body["created"], false);

        let r = app.call(Method::POST, &commit, Some(&owner), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["committed"], true);
        assert_eq!(r.body["file_count"], 3);
        let r = app.call(Method::POST, &commit, Some(&owner), None).await;
        assert_eq!(r.status, StatusCode::OK, "committing again is fine");

        // A second snapshot only asks for what changed.
        let m2 = manifest(&[
            ("README.md", "# hi\n"),
            ("src/app.py", "print('hello')\n"),
            ("src/new.py", "x = 1\n"),
        ]);
        let r = post_manifest(&app, &project, &owner, &serde_json::to_value(&m2).unwrap()).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let s2 = r.body["snapshot_id"].as_str().unwrap().to_string();
        let mut missing: Vec<String> = serde_json::from_value(r.body["missing"].clone()).unwrap();
        missing.sort();
        let mut want = vec![content_hash(b"print('hello')\n"), content_hash(b"x = 1\n")];
        want.sort();
        assert_eq!(missing, want);
        for c in ["print('hello')\n", "x = 1\n"] {
            let r = put_blob(
                &app,
                &project,
                &owner,
                &content_hash(c.as_bytes()),
                c.as_bytes(),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/projects/{project}/snapshots/{s2}/commit"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // Reads: any member; newest first.
        let r = app
            .get(&format!("/api/v1/projects/{project}/snapshots"), &viewer)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let ids: Vec<&str> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![s2.as_str(), s1.as_str()]);
        let r = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{s1}/manifest"),
                &viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let back: Manifest = serde_json::from_value(r.body).unwrap();
        assert_eq!(back, m1);
        let (status, bytes) = get_bytes(
            &app,
            &format!("/api/v1/projects/{project}/snapshots/{s1}/files/src/app.py"),
            &viewer,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bytes, b"print('hi')\n");
        let (status, bytes) = get_bytes(
            &app,
            &format!("/api/v1/projects/{project}/snapshots/{s2}/files/src/app.py"),
            &viewer,
        )
        .await;
        assert_eq!(
            (status, bytes.as_slice()),
            (StatusCode::OK, &b"print('hello')\n"[..])
        );
        let r = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{s1}/files/src/nope.py"),
                &viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{s1}/diff/{s2}"),
                &viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["added"], json!(["src/new.py"]));
        assert_eq!(r.body["removed"], json!(["src/copy.py"]));
        assert_eq!(r.body["modified"], json!(["src/app.py"]));
        let unknown = uuid::Uuid::new_v4();
        let r = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{s1}/diff/{unknown}"),
                &viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app
            .get(
                &format!("/api/v1/projects/{project}/snapshots/{unknown}/manifest"),
                &viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app
            .get(&format!("/api/v1/projects/{project}/snapshots"), &outsider)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "non-members learn nothing");

        // Blobs are per project: another project must upload its own copy to use it.
        let other = app.project(&owner, "other").await;
        let r = post_manifest(&app, &other, &owner, &serde_json::to_value(&m1).unwrap()).await;
        assert_eq!(r.body["missing"].as_array().unwrap().len(), 2);
        let r = put_blob(&app, &other, &owner, &h_readme, b"# hi\n").await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "recorded for this project, stored once"
        );

        // The snapshot was announced.
        let events = app
            .state
            .event_log
            .events_after(project.parse().unwrap(), 0, 100)
            .await
            .unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == "snapshot.committed")
                .count(),
            2
        );
    }
}

#[tokio::test]
async fn bad_manifests_are_refused_whole_naming_the_entry() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "mirror").await;
        let good = serde_json::to_value(manifest(&[("a.txt", "a"), ("b.txt", "b")])).unwrap();
        for (bad_path, fragment) in [
            ("../etc/passwd", "`..`"),
            ("/etc/passwd", "absolute"),
            ("C:/windows", "drive"),
            ("a\\b.txt", "backslash"),
            ("a\u{0}b", "control"),
        ] {
            let mut m = good.clone();
            m["files"][1]["path"] = json!(bad_path);
            let r = post_manifest(&app, &project, &owner, &m).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad_path}: {}",
                r.body
            );
            assert_eq!(r.code(), "invalid_manifest");
            let message = r.body["error"]["message"].as_str().unwrap();
            assert!(message.contains("entry 1"), "{message}");
            assert!(message.contains(fragment), "{bad_path}: {message}");
        }
        let mut m = good.clone();
        m["hash"] = json!(content_hash(b"not the manifest"));
        let r = post_manifest(&app, &project, &owner, &m).await;
        assert_eq!(r.code(), "invalid_manifest");
        let r = post_manifest(&app, &project, &owner, &json!({"files": 3})).await;
        assert_eq!(r.code(), "invalid_manifest");
        // Nothing was stored by any of them.
        let r = app
            .get(&format!("/api/v1/projects/{project}/snapshots"), &owner)
            .await;
        assert_eq!(r.body, json!([]));
    }
}

#[tokio::test]
async fn size_limits_and_quota() {
    for b in backends() {
        let app = app_with(&b, |c| {
            c.blob_max_bytes = 16;
            c.project_quota_bytes = 24;
            c.manifest_max_bytes = 2048;
        })
        .await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "mirror").await;
        let big = [b'x'; 17];
        let r = put_blob(&app, &project, &owner, &content_hash(&big), &big).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.code(), "blob_too_large");
        let first = [b'a'; 16];
        let r = put_blob(&app, &project, &owner, &content_hash(&first), &first).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let second = [b'b'; 16];
        let r = put_blob(&app, &project, &owner, &content_hash(&second), &second).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.code(), "quota_exceeded");
        // Re-uploading what the project has costs nothing.
        let r = put_blob(&app, &project, &owner, &content_hash(&first), &first).await;
        assert_eq!(r.status, StatusCode::OK);
        let files: Vec<(String, String)> = (0..40)
            .map(|i| (format!("f{i:03}.txt"), format!("{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let m = serde_json::to_value(manifest(&refs)).unwrap();
        let r = post_manifest(&app, &project, &owner, &m).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.code(), "manifest_too_large");
        // The JSON limit still holds on the other routes.
        let r = raw(
            &app,
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            &owner,
            serde_json::to_vec(&json!({"description": "d".repeat(2 * 1024 * 1024)})).unwrap(),
            "application/json",
        )
        .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
