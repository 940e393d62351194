//! Preview sessions over the HTTP API and the preview origin, on SQLite and (with
//! `DATABASE_URL`) PostgreSQL: create, upload (.zip and .tar.gz), every malicious bundle
//! refused without a trace, token lookup (typed forgivingly, rate-limited, 404 alike for
//! unknown/expired/revoked), content served with its headers, revocation, QR code.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use common::{Reply, TestApp, app, app_with, backends};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use std::io::Write;
use tower::ServiceExt;
use zip::write::SimpleFileOptions;

fn zip_bundle(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file(*name, opts).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A tar.gz; each entry's type given explicitly (`b'0'` file, `b'2'` symlink, `b'3'` char device).
fn tar_gz(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::new(*kind));
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        if *kind == b'2' {
            header.set_link_name("/etc/passwd").unwrap();
        }
        // Write the name bytes directly: `set_path` itself refuses `..` and absolute paths,
        // which is exactly what a malicious archive contains.
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

const INDEX: &[u8] = b"<!doctype html><script src=\"assets/app.js\"></script>";

fn good_zip() -> Vec<u8> {
    zip_bundle(&[
        ("index.html", INDEX),
        ("assets/app.js", b"console.log(1)"),
        ("assets/style.css", b"body{}"),
    ])
}

async fn create_preview(
    app: &TestApp,
    project: &str,
    token: &str,
    body: serde_json::Value,
) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/v1/projects/{project}/previews"),
        Some(token),
        Some(body),
    )
    .await
}

async fn upload(app: &TestApp, preview: &str, token: &str, bundle: Vec<u8>) -> Reply {
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/v1/previews/{preview}/bundle"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .body(Body::from(bundle))
        .unwrap();
    app.send(req).await
}

async fn lookup(app: &TestApp, token: &str) -> Reply {
    app.call(
        Method::GET,
        &format!("/api/v1/preview-tokens/{}", token.replace(' ', "%20")),
        None,
        None,
    )
    .await
}

/// A GET on the preview origin: status, headers, body.
async fn content(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let router = hivesync_backend::preview::content_router(app.state.clone());
    let req = Request::builder().uri(path).body(Body::empty()).unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

fn preview_root(app: &TestApp) -> std::path::PathBuf {
    app.state.config.config.data_dir.join("previews")
}

/// Names in the previews directory (staging and upload leftovers would show here).
fn leftovers(app: &TestApp) -> Vec<String> {
    match std::fs::read_dir(preview_root(app)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn create_upload_lookup_serve_revoke() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let (viewer_id, viewer, _) = app.user("viewer@example.com").await;
        let (_, outsider, _) = app.user("outsider@example.com").await;
        let project = app.project(&owner, "storefront").await;
        app.call(
            Method::PUT,
            &format!("/api/v1/projects/{project}/members/{viewer_id}"),
            Some(&owner),
            Some(json!({"role": "viewer"})),
        )
        .await;

        let r = create_preview(&app, &project, &viewer, json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "a viewer cannot create a preview"
        );
        let r = create_preview(&app, &project, &outsider, json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "a non-member learns nothing"
        );
        let r = create_preview(
            &app,
            &project,
            &owner,
            json!({"ttl_seconds": 10 * 365 * 86400}),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "over the maximum lifetime"
        );
        let r = create_preview(&app, &project, &owner, json!({"entry": "../index.html"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

        let r = create_preview(&app, &project, &owner, json!({"name": "Checkout"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", b.name(), r.body);
        let id = r.body["preview_id"].as_str().unwrap().to_string();
        let token = r.body["token"].as_str().unwrap().to_string();
        assert_eq!(
            r.body["upload_url"],
            format!("/api/v1/previews/{id}/bundle")
        );
        assert_eq!(
            r.body["qr_svg_url"],
            format!("/api/v1/previews/{id}/qr.svg")
        );
        let expires: time::OffsetDateTime = time::OffsetDateTime::parse(
            r.body["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let ttl = expires - time::OffsetDateTime::now_utc();
        assert!(
            ttl > time::Duration::minutes(59) && ttl <= time::Duration::hours(1),
            "{ttl}"
        );
        assert!(
            token.len() == 19 && token.matches('-').count() == 3,
            "{token}"
        );

        // Only the hash is stored.
        let stored = app
            .state
            .previews
            .preview(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!stored.token_hash.contains(&token.replace('-', "")));

        // Pending: the token answers, the content does not exist yet.
        let r = lookup(&app, &token).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["status"], "pending");
        let (status, _, _) = content(&app, &format!("/p/{id}/")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let r = upload(&app, &id, &viewer, good_zip()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let bundle = good_zip();
        let r = upload(&app, &id, &owner, bundle.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], "ready");
        assert_eq!(r.body["file_count"], 3);
        use sha2::Digest;
        let sha: String = sha2::Sha256::digest(&bundle)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(r.body["sha256"], sha);
        let events = app
            .state
            .event_log
            .events_after(project.parse().unwrap(), 0, 100)
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.kind == "preview.ready" && e.payload["preview_id"] == id)
        );
        assert!(
            leftovers(&app).iter().all(|n| !n.starts_with('.')),
            "{:?}",
            leftovers(&app)
        );

        // Typed on a phone: lowercase, without hyphens, O for 0, I/L for 1.
        let mut typed = token.to_lowercase().replace('-', "");
        typed = typed.replace('0', "o").replace('1', "l");
        for attempt in [
            token.clone(),
            token.to_lowercase(),
            typed.clone(),
            format!(" {} ", token.replace('-', " ")),
        ] {
            let r = lookup(&app, &attempt).await;
            assert_eq!(r.status, StatusCode::OK, "{attempt}: {}", r.body);
        }
        let r = lookup(&app, &token).await;
        assert_eq!(r.body["project_name"], "storefront");
        assert_eq!(r.body["preview_name"], "Checkout");
        assert_eq!(r.body["entry"], "index.html");
        assert_eq!(r.body["file_count"], 3);
        assert_eq!(r.body["sha256"], sha);
        let open = r.body["open_url"].as_str().unwrap().to_string();
        assert_eq!(open, format!("http://127.0.0.1:7879/p/{id}/index.html"));

        // The preview origin serves it with the right headers.
        let (status, headers, body) = content(&app, &format!("/p/{id}/index.html")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, INDEX);
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("object-src 'none'")
        );
        assert!(headers.contains_key("cache-control"));
        let (status, _, body) = content(&app, &format!("/p/{id}/")).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::OK, INDEX),
            "the root opens the entry"
        );
        let (status, headers, _) = content(&app, &format!("/p/{id}/assets/app.js")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
        let (_, headers, _) = content(&app, &format!("/p/{id}/assets/style.css")).await;
        assert_eq!(headers["content-type"], "text/css; charset=utf-8");
        for bad in [
            "assets/../index.html",
            "nope.html",
            "%2e%2e/%2e%2e/etc/passwd",
        ] {
            let (status, _, _) = content(&app, &format!("/p/{id}/{bad}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        }

        // QR code of the open URL, for members.
        let req = Request::builder()
            .uri(format!("/api/v1/previews/{id}/qr.svg"))
            .header("authorization", format!("Bearer {viewer}"))
            .body(Body::empty())
            .unwrap();
        let mut req = req;
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(app.peer));
        let resp = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/svg+xml");
        let svg = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&svg).contains("<svg"));

        // A second bundle replaces the first.
        let r = upload(&app, &id, &owner, zip_bundle(&[("index.html", b"v2")])).await;
        assert_eq!(r.status, StatusCode::OK);
        let (_, _, body) = content(&app, &format!("/p/{id}/index.html")).await;
        assert_eq!(body, b"v2");
        let (status, _, _) = content(&app, &format!("/p/{id}/assets/app.js")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Revocation: at once, and revoked tokens answer like unknown ones.
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/previews/{id}"),
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/previews/{id}"),
                Some(&outsider),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/previews/{id}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let revoked = lookup(&app, &token).await;
        let unknown = lookup(&app, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await;
        assert_eq!(revoked.status, StatusCode::NOT_FOUND);
        assert_eq!(revoked.body, unknown.body, "revoked and unknown look alike");
        let (status, _, _) = content(&app, &format!("/p/{id}/index.html")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "no longer served");
        let r = upload(&app, &id, &owner, good_zip()).await;
        assert_eq!(r.status, StatusCode::GONE);
    }
}

#[tokio::test]
async fn tar_gz_bundles_work_too() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "p").await;
        let r = create_preview(&app, &project, &owner, json!({"entry": "app/main.html"})).await;
        let id = r.body["preview_id"].as_str().unwrap().to_string();
        let bundle = tar_gz(&[
            ("./app/main.html", b'0', b"<p>hi</p>"),
            ("./app/x.svg", b'0', b"<svg/>"),
        ]);
        let r = upload(&app, &id, &owner, bundle).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["file_count"], 2);
        let (status, headers, body) = content(&app, &format!("/p/{id}/")).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::OK, &b"<p>hi</p>"[..])
        );
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let (_, headers, _) = content(&app, &format!("/p/{id}/app/x.svg")).await;
        assert_eq!(headers["content-type"], "image/svg+xml");
    }
}

#[tokio::test]
async fn malicious_bundles_are_refused_without_a_trace() {
    for b in backends() {
        let app = app_with(&b, |c| {
            c.preview_max_files = 5;
            c.preview_max_unpacked_bytes = 1024 * 1024;
            c.preview_max_bundle_bytes = 512 * 1024;
        })
        .await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "p").await;
        let r = create_preview(&app, &project, &owner, json!({})).await;
        let id = r.body["preview_id"].as_str().unwrap().to_string();

        let zeros = vec![0u8; 2 * 1024 * 1024];
        let many: Vec<(String, Vec<u8>)> =
            (0..8).map(|i| (format!("f{i}.js"), vec![b'x'])).collect();
        let many_refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let mut too_many = vec![("index.html", INDEX)];
        too_many.extend(many_refs);
        let mut symlink_zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        symlink_zip
            .start_file("index.html", SimpleFileOptions::default())
            .unwrap();
        symlink_zip.write_all(INDEX).unwrap();
        symlink_zip
            .add_symlink("passwd", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let symlink_zip = symlink_zip.finish().unwrap().into_inner();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let random: Vec<u8> = (0..600 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();

        let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
            (
                "zip-slip",
                zip_bundle(&[("index.html", INDEX), ("../evil.html", b"x")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsafe_path",
            ),
            (
                "zip-slip nested",
                zip_bundle(&[("index.html", INDEX), ("a/../../evil.html", b"x")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsafe_path",
            ),
            (
                "absolute zip path",
                zip_bundle(&[("index.html", INDEX), ("/tmp/evil.html", b"x")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsafe_path",
            ),
            (
                "tar-slip",
                tar_gz(&[("index.html", b'0', INDEX), ("../evil.html", b'0', b"x")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsafe_path",
            ),
            (
                "absolute tar path",
                tar_gz(&[("index.html", b'0', INDEX), ("/tmp/evil", b'0', b"x")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsafe_path",
            ),
            (
                "zip symlink",
                symlink_zip,
                StatusCode::UNPROCESSABLE_ENTITY,
                "link_entry",
            ),
            (
                "tar symlink",
                tar_gz(&[("index.html", b'0', INDEX), ("passwd", b'2', b"")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "link_entry",
            ),
            (
                "tar device",
                tar_gz(&[("index.html", b'0', INDEX), ("tty", b'3', b"")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "special_entry",
            ),
            (
                "tar duplicate",
                tar_gz(&[("index.html", b'0', INDEX), ("index.html", b'0', b"again")]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "duplicate_entry",
            ),
            (
                "zip bomb",
                zip_bundle(&[("index.html", INDEX), ("zeros.bin", &zeros)]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            (
                "tar bomb",
                tar_gz(&[("index.html", b'0', INDEX), ("zeros.bin", b'0', &zeros)]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            (
                "too many files",
                zip_bundle(&too_many),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_files",
            ),
            (
                "missing entry",
                zip_bundle(&[("main.html", INDEX)]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_entry",
            ),
            (
                "not an archive",
                b"<html>plain</html>".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_format",
            ),
            (
                "truncated zip",
                good_zip()[..40].to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "corrupt_archive",
            ),
            (
                "over the compressed limit",
                zip_bundle(&[("index.html", INDEX), ("r.bin", &random)]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "bundle_too_large",
            ),
        ];
        for (label, bundle, status, code) in cases {
            let r = upload(&app, &id, &owner, bundle).await;
            assert_eq!(
                (r.status, r.code()),
                (status, code),
                "{} {label}: {}",
                b.name(),
                r.body
            );
            assert!(
                leftovers(&app).is_empty(),
                "{label} left {:?}",
                leftovers(&app)
            );
            let (status, _, _) = content(&app, &format!("/p/{id}/index.html")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{label}");
            let p = app
                .state
                .previews
                .preview(id.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                p.status,
                hivesync_backend::store::PreviewStatus::Pending,
                "{label}"
            );
        }
        assert!(!std::path::Path::new("/tmp/evil.html").exists());
        // After all that, a good bundle is still accepted.
        let r = upload(&app, &id, &owner, good_zip()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

#[tokio::test]
async fn failed_lookups_are_rate_limited_and_expired_tokens_vanish() {
    for b in backends() {
        let app = app_with(&b, |c| c.preview_lookup_failures_per_minute = 3).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "p").await;
        let r = create_preview(&app, &project, &owner, json!({"ttl_seconds": 1})).await;
        let id = r.body["preview_id"].as_str().unwrap().to_string();
        let token = r.body["token"].as_str().unwrap().to_string();
        assert_eq!(
            upload(&app, &id, &owner, good_zip()).await.status,
            StatusCode::OK
        );
        let (status, _, _) = content(&app, &format!("/p/{id}/")).await;
        assert_eq!(status, StatusCode::OK);

        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = lookup(&app, &token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "expired");
        let (status, _, _) = content(&app, &format!("/p/{id}/")).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "expired content is no longer served"
        );

        // Three failures so far would be: expired (1), then two guesses.
        for guess in ["AAAA-AAAA-AAAA-AAAA", "not a token"] {
            assert_eq!(lookup(&app, guess).await.status, StatusCode::NOT_FOUND);
        }
        let r = lookup(&app, "BBBB-BBBB-BBBB-BBBB").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.code(), "rate_limited");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        // Another address is not affected.
        let mut other = app_peer(&app);
        other.0 = "10.0.0.9:5000".parse().unwrap();
        let req = Request::builder()
            .uri("/api/v1/preview-tokens/CCCC-CCCC-CCCC-CCCC")
            .body(Body::empty())
            .unwrap();
        let mut req = req;
        req.extensions_mut().insert(other);
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

fn app_peer(app: &TestApp) -> axum::extract::ConnectInfo<std::net::SocketAddr> {
    axum::extract::ConnectInfo(app.peer)
}
