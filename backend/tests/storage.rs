//! The blob store contract on every configured store: local files always, and S3 when
//! `HIVESYNC_TEST_S3_URL` is set (`s3://bucket`, with `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` as for the server; CI points it at moto's S3
//! server). Each test works under a fresh key prefix. Covers put/get/exists/dedup, missing
//! blobs, readiness, start-up failures, and the snapshot upload → commit → file download flow
//! through the API with its blobs landing in the store.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use common::{app_with, backends, test_prefix};
use futures::TryStreamExt;
use hivesync_analysis::changeset::content_hash;
use hivesync_backend::blobs::BlobStore;
use hivesync_backend::config::{Config, S3Storage, Storage};
use object_store::ObjectStore;

/// `storage_url` values to run against: `file://` in a temp dir (`None` = the default) and,
/// when configured, a fresh prefix in the S3 test bucket.
fn storage_urls() -> Vec<Option<String>> {
    let mut urls = vec![None];
    if let Ok(url) = std::env::var("HIVESYNC_TEST_S3_URL") {
        assert!(
            url.starts_with("s3://"),
            "HIVESYNC_TEST_S3_URL must be s3://bucket"
        );
        urls.push(Some(format!(
            "{}/{}",
            url.trim_end_matches('/'),
            test_prefix()
        )));
    }
    urls
}

fn resolve(url: &Option<String>, dir: &std::path::Path) -> Storage {
    Config {
        data_dir: dir.to_path_buf(),
        storage_url: url.clone(),
        ..Config::default()
    }
    .resolve()
    .expect("HIVESYNC_TEST_S3_URL and the AWS_* variables must form a valid configuration")
    .storage
}

/// Every object under the store's prefix (to see what a put really wrote).
async fn objects(store: &BlobStore) -> Vec<object_store::ObjectMeta> {
    let (raw, prefix) = store.raw();
    let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
    raw.list(prefix).try_collect().await.unwrap()
}

#[tokio::test]
async fn put_get_exists_and_dedup_on_every_store() {
    for url in storage_urls() {
        let dir = tempfile::tempdir().unwrap();
        let storage = resolve(&url, dir.path());
        let store = BlobStore::from_config(&storage).unwrap();
        let name = store.backend();
        assert_eq!(name, storage.backend());
        store.ping().await.unwrap_or_else(|e| panic!("{name}: {e}"));

        let content = b"fn main() {}\n";
        let hash = content_hash(content);
        assert!(!store.exists(&hash).await.unwrap(), "{name}");
        assert!(store.get(&hash).await.unwrap().is_none(), "{name}");
        assert!(objects(&store).await.is_empty(), "{name}: fresh prefix");

        store
            .put(&hash, Bytes::from_static(content))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(store.exists(&hash).await.unwrap(), "{name}");
        assert_eq!(
            store.get(&hash).await.unwrap().as_deref(),
            Some(&content[..]),
            "{name}"
        );
        let first = objects(&store).await;
        assert_eq!(first.len(), 1, "{name}: {first:?}");
        assert!(
            first[0]
                .location
                .as_ref()
                .ends_with(&format!("{}/{}/{hash}", &hash[..2], &hash[2..4])),
            "{name}: {}",
            first[0].location
        );

        // The same content again writes nothing: one object, untouched.
        store.put(&hash, Bytes::from_static(content)).await.unwrap();
        let again = objects(&store).await;
        assert_eq!(again.len(), 1, "{name}");
        assert_eq!(
            (again[0].last_modified, &again[0].e_tag),
            (first[0].last_modified, &first[0].e_tag),
            "{name}: a second put of present content must not rewrite it"
        );

        // Another blob sits beside it; an absent one is still absent.
        let other = b"other\n";
        store
            .put(&content_hash(other), Bytes::from_static(other))
            .await
            .unwrap();
        assert_eq!(objects(&store).await.len(), 2, "{name}");
        let absent = content_hash(b"never stored");
        assert!(!store.exists(&absent).await.unwrap(), "{name}");
        assert!(store.get(&absent).await.unwrap().is_none(), "{name}");

        // Two stores on the same location see each other's blobs (several instances).
        let twin = BlobStore::from_config(&storage).unwrap();
        assert_eq!(
            twin.get(&hash).await.unwrap().as_deref(),
            Some(&content[..]),
            "{name}"
        );
    }
}

/// An S3 store nobody answers for: a closed local port.
fn unreachable_s3() -> S3Storage {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    S3Storage {
        bucket: "hivesync-unreachable".into(),
        prefix: "blobs".into(),
        region: "us-east-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        allow_http: true,
        access_key_id: Some("AKIDUNREACHABLE".into()),
        secret_access_key: Some("secret-that-must-not-leak".into()),
        session_token: None,
    }
}

#[tokio::test]
async fn an_unreachable_s3_store_fails_ping_and_start_without_leaking_the_secret() {
    let store = BlobStore::s3(&unreachable_s3()).unwrap();
    assert_eq!(store.backend(), "s3");
    let err = store.ping().await.expect_err("nothing listens there");
    assert!(
        !err.to_string().contains("secret-that-must-not-leak"),
        "{err}"
    );
    let hash = content_hash(b"x");
    assert!(store.get(&hash).await.is_err(), "an error, not `absent`");
    assert!(store.exists(&hash).await.is_err(), "an error, not `absent`");

    // HTTPS is required unless plain HTTP is allowed explicitly.
    let https_only = BlobStore::s3(&S3Storage {
        allow_http: false,
        ..unreachable_s3()
    })
    .unwrap();
    let err = https_only.ping().await.expect_err("http refused");
    assert!(
        !err.to_string().contains("secret-that-must-not-leak"),
        "{err}"
    );
}

#[tokio::test]
async fn readiness_reaches_the_store() {
    for url in storage_urls() {
        let app = app_with(&common::Backend::Sqlite, |c| c.storage_url = url.clone()).await;
        let r = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["storage"]["backend"],
            app.state.config.storage.backend()
        );
        assert_eq!(r.body["storage"]["status"], "ok");
    }
    // With S3: a bucket that does not exist is reported, and stops the start.
    if let Some(Some(url)) = storage_urls().pop() {
        let dir = tempfile::tempdir().unwrap();
        let Storage::S3(mut s3) = resolve(&Some(url), dir.path()) else {
            panic!("not s3")
        };
        s3.bucket = format!("hivesync-missing-{}", uuid::Uuid::new_v4().simple());
        let err = BlobStore::s3(&s3)
            .unwrap()
            .ping()
            .await
            .expect_err("no bucket");
        let text = err.to_string();
        assert!(
            text.contains("NoSuchBucket") || text.contains("bucket"),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line: {text}");
    }
}

#[tokio::test]
async fn the_server_refuses_to_start_on_unreachable_storage() {
    let dir = tempfile::tempdir().unwrap();
    // Resolved as a file store (the environment may lack AWS_REGION), then pointed at S3.
    let mut resolved = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    }
    .resolve()
    .unwrap();
    resolved.config.storage_url = Some("s3://hivesync-unreachable/blobs".into());
    resolved.storage = Storage::S3(unreachable_s3());
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = match hivesync_backend::build_state(resolved, Default::default(), rx).await {
        Ok(_) => panic!("started on storage nobody answers for"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("HIVESYNC_STORAGE_URL s3://hivesync-unreachable/blobs"),
        "{err}"
    );
    assert!(
        !err.contains("secret-that-must-not-leak") && !err.contains('\n'),
        "{err}"
    );
}

/// The manifest the desktop would send for these files (built from a directory holding them).
fn manifest_json(files: &[(&str, &[u8])]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    let manifest =
        hivesync_analysis::manifest::build_manifest(dir.path(), &Default::default()).unwrap();
    assert_eq!(manifest.files.len(), files.len(), "{manifest:?}");
    serde_json::to_value(manifest).unwrap()
}

#[tokio::test]
async fn snapshot_upload_commit_and_download_through_every_store() {
    for b in backends() {
        for url in storage_urls() {
            let app = app_with(&b, |c| c.storage_url = url.clone()).await;
            let name = format!("{}+{}", app.state.blobs.backend(), b.name());
            let (_, owner, _) = app.user("owner@example.com").await;
            let project = app.project(&owner, "mirror").await;
            let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
            let files: [(&str, &[u8]); 3] = [
                ("README.md", b"# mirror\n"),
                ("assets/logo.bin", &binary),
                ("docs/README.md", b"# mirror\n"),
            ];
            let r = app
                .call(
                    Method::POST,
                    &format!("/api/v1/projects/{project}/snapshots"),
                    Some(&owner),
                    Some(manifest_json(&files)),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.body);
            let sid = r.body["snapshot_id"].as_str().unwrap().to_string();
            assert_eq!(r.body["missing"].as_array().unwrap().len(), 2, "{name}");

            let commit = format!("/api/v1/projects/{project}/snapshots/{sid}/commit");
            let r = app.call(Method::POST, &commit, Some(&owner), None).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{name}");
            assert_eq!(r.code(), "missing_blobs", "{name}");

            for (_, content) in &files[..2] {
                let hash = content_hash(content);
                let path = format!("/api/v1/projects/{project}/blobs/{hash}");
                let (status, body) = app
                    .send_bytes(Method::PUT, &path, &owner, content.to_vec())
                    .await;
                assert_eq!(
                    status,
                    StatusCode::CREATED,
                    "{name}: {}",
                    String::from_utf8_lossy(&body)
                );
                assert!(app.state.blobs.exists(&hash).await.unwrap(), "{name}");
            }
            assert_eq!(
                objects(&app.state.blobs).await.len(),
                2,
                "{name}: identical contents are stored once"
            );
            let r = app.call(Method::POST, &commit, Some(&owner), None).await;
            assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
            assert_eq!(r.body["file_count"], 3, "{name}");

            for (path, content) in files {
                let (status, body) = app
                    .send_bytes(
                        Method::GET,
                        &format!("/api/v1/projects/{project}/snapshots/{sid}/files/{path}"),
                        &owner,
                        Vec::new(),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{name}: {path}");
                assert_eq!(body, content, "{name}: {path} reads back byte for byte");
            }

            // A second project with the same content: nothing new in the store.
            let other = app.project(&owner, "fork").await;
            let r = app
                .call(
                    Method::POST,
                    &format!("/api/v1/projects/{other}/snapshots"),
                    Some(&owner),
                    Some(manifest_json(&files[..1])),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}");
            let hash = content_hash(files[0].1);
            let (status, _) = app
                .send_bytes(
                    Method::PUT,
                    &format!("/api/v1/projects/{other}/blobs/{hash}"),
                    &owner,
                    files[0].1.to_vec(),
                )
                .await;
            assert!(status.is_success(), "{name}: {status}");
            assert_eq!(objects(&app.state.blobs).await.len(), 2, "{name}");
        }
    }
}
