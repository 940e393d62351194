//! Resources benchmark (`cargo bench -p hivesync-backend --bench resources`): preview token
//! lookups per second with p50/p99 latency — in-process ephemeral store, and Redis when
//! `REDIS_URL` is set — and bundle upload+extract throughput for a 50 MB `.tar.gz` of 5,000
//! files, beside `tar -xzf` of the same archive. Runs the real router in-process (no sockets),
//! on the embedded SQLite database, or PostgreSQL when `DATABASE_URL` is set.
//!
//! Knobs: `HIVESYNC_BENCH_LOOKUPS` (default 20000), `HIVESYNC_BENCH_CONCURRENCY` (default 32).
//! Under `cargo test --all-targets` (no `--bench` argument) it runs a small smoke version.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use hivesync_backend::config::Config;
use hivesync_backend::ephemeral::RedisEphemeral;
use hivesync_backend::{Services, build_state, router};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const FILE_BYTES: usize = 10 * 1024;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    router: Router,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

impl Bench {
    async fn new(services: Services) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            database_url: std::env::var("DATABASE_URL").ok(),
            jwt_secret: Some("bench-secret-bench-secret-bench-secret-0".into()),
            auth_rate_limit_per_minute: 1_000_000,
            ..Config::default()
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        let state = build_state(config.resolve().unwrap(), services, rx)
            .await
            .unwrap();
        Bench {
            router: router(state),
            _dir: dir,
            _shutdown: tx,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        send(&self.router, req).await
    }

    async fn json(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (status, bytes) = self
            .send(req.body(Body::from(body.to_string())).unwrap())
            .await;
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    /// A user, a project and a preview: (access token, preview id, preview token).
    async fn preview(&self) -> (String, String, String) {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let creds = json!({"email": email, "password": "correct horse battery"});
        let mut register = creds.clone();
        register["name"] = json!("Bench");
        self.json(Method::POST, "/api/v1/auth/register", None, register)
            .await;
        let login = self
            .json(Method::POST, "/api/v1/auth/login", None, creds)
            .await;
        let token = login["access_token"].as_str().unwrap().to_string();
        let project = self
            .json(
                Method::POST,
                "/api/v1/projects",
                Some(&token),
                json!({"name": "bench"}),
            )
            .await;
        let pid = project["id"].as_str().unwrap();
        let preview = self
            .json(
                Method::POST,
                &format!("/api/v1/projects/{pid}/previews"),
                Some(&token),
                json!({"name": "bench"}),
            )
            .await;
        (
            token,
            preview["preview_id"].as_str().unwrap().to_string(),
            preview["token"].as_str().unwrap().to_string(),
        )
    }

    async fn upload(&self, token: &str, preview: &str, bundle: Vec<u8>) -> Duration {
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("/api/v1/previews/{preview}/bundle"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(bundle))
            .unwrap();
        let started = Instant::now();
        let (status, bytes) = self.send(req).await;
        let took = started.elapsed();
        assert!(
            status.is_success(),
            "upload: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        took
    }
}

async fn send(router: &Router, mut req: Request<Body>) -> (StatusCode, Vec<u8>) {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn lookups(label: &str, services: Services, default_total: usize) {
    let bench = Bench::new(services).await;
    let (token, preview, code) = bench.preview().await;
    bench
        .upload(
            &token,
            &preview,
            bundle(&[("index.html", b"<p>hi</p>".to_vec())]),
        )
        .await;
    let total = env_usize("HIVESYNC_BENCH_LOOKUPS", default_total);
    let concurrency = env_usize("HIVESYNC_BENCH_CONCURRENCY", 32).max(1);
    let path = Arc::new(format!("/api/v1/preview-tokens/{code}"));
    let router = bench.router.clone();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (router, path) = (router.clone(), path.clone());
        let n = total / concurrency + usize::from(worker < total % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let req = Request::get(path.as_str()).body(Body::empty()).unwrap();
                let t = Instant::now();
                let (status, _) = send(&router, req).await;
                lat.push(t.elapsed());
                assert_eq!(status, StatusCode::OK);
            }
            lat
        }));
    }
    let mut lat = Vec::with_capacity(total);
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    lat.sort();
    println!(
        "token lookups ({label}): {total} in {:.2} s = {:.0}/s at concurrency {concurrency}; p50 {:.2} ms, p99 {:.2} ms",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

/// Incompressible bytes (xorshift), so the archive is as large as its content.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn bundle(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, content.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

async fn bundles(count: usize) {
    let mut files = vec![("index.html".to_string(), b"<p>bench</p>".to_vec())];
    for i in 1..count {
        files.push((
            format!("assets/d{}/f{i}.bin", i % 50),
            noise(i as u64, FILE_BYTES),
        ));
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    let archive = bundle(&refs);
    let mb = archive.len() as f64 / 1e6;
    let content_mb = refs.iter().map(|(_, c)| c.len()).sum::<usize>() as f64 / 1e6;

    let bench = Bench::new(Services::default()).await;
    let (token, preview, _) = bench.preview().await;
    let took = bench.upload(&token, &preview, archive.clone()).await;

    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("bundle.tar.gz");
    std::fs::write(&path, &archive).unwrap();
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let t = Instant::now();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&path)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    let tar_took = t.elapsed();
    assert!(status.success());
    println!(
        "bundle upload+extract: {count} files, {content_mb:.1} MB unpacked in a {mb:.1} MB .tar.gz: {:.2} s = {:.1} MB/s unpacked; `tar -xzf` of the same archive {:.2} s = {:.1} MB/s",
        took.as_secs_f64(),
        content_mb / took.as_secs_f64(),
        tar_took.as_secs_f64(),
        content_mb / tar_took.as_secs_f64(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs a smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    let (total, files) = if full { (20_000, 5_000) } else { (200, 50) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "database: {}",
            if std::env::var("DATABASE_URL").is_ok() {
                "PostgreSQL (DATABASE_URL)"
            } else {
                "embedded SQLite"
            }
        );
        lookups("in-process", Services::default(), total).await;
        if let Ok(url) = std::env::var("REDIS_URL") {
            let prefix = format!("hivesync-bench-{}:", uuid::Uuid::new_v4().simple());
            let redis = RedisEphemeral::connect(&url, &prefix)
                .await
                .expect("REDIS_URL is set but Redis does not answer");
            let services = Services {
                ephemeral: Some(Arc::new(redis)),
                ..Services::default()
            };
            lookups("Redis", services, total).await;
        } else {
            println!("token lookups (Redis): skipped, REDIS_URL is not set");
        }
        bundles(files).await;
    });
}
