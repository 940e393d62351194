//! Test harness: a fresh application per test on SQLite (always) and on PostgreSQL (when
//! `DATABASE_URL` is a postgres:// URL; a failure to connect then fails the test). Each
//! PostgreSQL test gets its own schema (`search_path`), dropped afterwards, so tests run in
//! parallel without colliding. Ephemeral data goes to Redis when `REDIS_URL` is set and events
//! through RabbitMQ when `AMQP_URL` is set (see [`test_services`]).
#![allow(dead_code, clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hivesync_backend::config::Config;
use hivesync_backend::ephemeral::RedisEphemeral;
use hivesync_backend::events::{RabbitEvents, RabbitOptions};
use hivesync_backend::{AppState, Services, build_state, router};
use serde_json::{Value, json};
use sqlx::Connection;
use std::net::SocketAddr;
use tokio::sync::watch;
use tower::ServiceExt;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL too when `DATABASE_URL` points at one.
pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var("DATABASE_URL")
        && (url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        list.push(Backend::Postgres(url));
    }
    list
}

/// A PostgreSQL schema owned by one test; dropped on drop (also when the test panics).
struct PgSchema {
    url: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; use a separate thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                sqlx::any::install_default_drivers();
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

/// A random key prefix per test (under `HIVESYNC_TEST_PREFIX` when set), so tests sharing one
/// Redis or RabbitMQ never see each other's keys or events.
pub fn test_prefix() -> String {
    format!(
        "{}{}",
        std::env::var("HIVESYNC_TEST_PREFIX").unwrap_or_else(|_| "hivesync-test-".into()),
        uuid::Uuid::new_v4().simple()
    )
}

/// Redis for ephemeral data when `REDIS_URL` is set, RabbitMQ for events when `AMQP_URL` is
/// (each under a fresh prefix / exchange); in-process otherwise. A set URL that does not
/// answer fails the test.
pub async fn test_services() -> Services {
    let mut services = Services::default();
    if let Ok(url) = std::env::var("REDIS_URL") {
        let redis = RedisEphemeral::connect(&url, &format!("{}:", test_prefix()))
            .await
            .expect("REDIS_URL is set but Redis does not answer");
        services.ephemeral = Some(std::sync::Arc::new(redis));
    }
    if let Ok(url) = std::env::var("AMQP_URL") {
        let rabbit = RabbitEvents::connect(
            &url,
            RabbitOptions {
                exchange: format!("{}.events", test_prefix()),
                durable: false,
                capacity: 1024,
            },
        )
        .await
        .expect("AMQP_URL is set but RabbitMQ does not answer");
        services.events = Some(std::sync::Arc::new(rabbit));
    }
    services
}

/// A request carrying `body` as `application/octet-stream`, with a bearer token.
fn octet_request(method: Method, path: &str, token: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .body(Body::from(body))
        .expect("request")
}

pub struct TestApp {
    pub backend: Backend,
    pub router: Router,
    pub state: AppState,
    pub peer: SocketAddr,
    _dir: tempfile::TempDir,
    _schema: Option<PgSchema>,
    _shutdown: watch::Sender<bool>,
}

/// A response: status, headers and the JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn app(backend: &Backend) -> TestApp {
    app_with(backend, |_| {}).await
}

pub async fn app_with(backend: &Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    app_with_services(backend, tweak, test_services().await).await
}

/// Like [`app_with`], with the services given (job registry, retry policy, …).
pub async fn app_with_services(
    backend: &Backend,
    tweak: impl FnOnce(&mut Config),
    services: Services,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        auth_rate_limit_per_minute: 10_000,
        ..Config::default()
    };
    let mut schema = None;
    if let Backend::Postgres(url) = backend {
        sqlx::any::install_default_drivers();
        let name = format!("hs_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .expect("DATABASE_URL is set but PostgreSQL does not answer");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let sep = if url.contains('?') { '&' } else { '?' };
        config.database_url = Some(format!("{url}{sep}options=-c%20search_path%3D{name}"));
        config.jwt_secret = Some("test-secret-test-secret-test-secret-0123".into());
        schema = Some(PgSchema {
            url: url.clone(),
            name,
        });
    }
    tweak(&mut config);
    let resolved = config.resolve().expect("valid test config");
    let (tx, rx) = watch::channel(false);
    let state = build_state(resolved, services, rx).await.expect("state");
    TestApp {
        backend: backend.clone(),
        router: router(state.clone()),
        state,
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        _dir: dir,
        _schema: schema,
        _shutdown: tx,
    }
}

/// A second instance sharing `first`'s database (its PostgreSQL schema, or its SQLite file)
/// and JWT secret, as another server behind the same load balancer; drop it before `first`.
pub async fn peer(first: &TestApp) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = &first.state.config;
    let config = Config {
        data_dir: shared.config.data_dir.clone(),
        database_url: Some(shared.database_url.clone()),
        jwt_secret: shared.config.jwt_secret.clone(),
        auth_rate_limit_per_minute: 10_000,
        ..Config::default()
    };
    let resolved = config.resolve().expect("valid test config");
    let (tx, rx) = watch::channel(false);
    let state = build_state(resolved, test_services().await, rx)
        .await
        .expect("state");
    TestApp {
        backend: first.backend.clone(),
        router: router(state.clone()),
        state,
        peer: SocketAddr::from(([127, 0, 0, 1], 40001)),
        _dir: dir,
        _schema: None,
        _shutdown: tx,
    }
}

impl TestApp {
    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).expect("json"))
            }
            None => Body::empty(),
        };
        self.send(req.body(body).expect("request")).await
    }

    /// Sends a prepared request from this app's peer address.
    pub async fn send(&self, mut req: Request<Body>) -> Reply {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut().insert(ConnectInfo(self.peer));
        }
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // An event stream never ends: answered without reading it. Text (`/metrics`) as a
        // JSON string.
        if content_type.starts_with("text/event-stream") {
            return Reply {
                status,
                headers,
                body: Value::Null,
            };
        }
        if content_type.starts_with("text/plain") {
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body");
            return Reply {
                status,
                headers,
                body: Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            };
        }
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let is_json = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = if bytes.is_empty() {
            Value::Null
        } else if !is_json && status.is_success() {
            // File content, SVG, …: kept as text (errors must always be JSON).
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends raw bytes (`application/octet-stream`) as `token`'s user; the status and the
    /// response body as bytes (file contents and other non-JSON answers).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = octet_request(method, path, token, body);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn register(&self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": password, "name": email.split('@').next().unwrap()})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Registers and logs in; returns (user id, access token, refresh token).
    pub async fn user(&self, email: &str) -> (String, String, String) {
        let r = self.register(email, "correct horse battery").await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}: {:?}",
            self.backend.name(),
            r.body
        );
        let id = r.body["id"].as_str().unwrap().to_string();
        let l = self.login(email, "correct horse battery").await;
        assert_eq!(l.status, StatusCode::OK, "{:?}", l.body);
        (
            id,
            l.body["access_token"].as_str().unwrap().to_string(),
            l.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a project as `token`'s user; returns its id.
    pub async fn project(&self, token: &str, name: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Sends `body` as raw bytes (`application/octet-stream`) with a bearer token.
    pub async fn raw(&self, method: Method, path: &str, token: &str, body: Vec<u8>) -> Reply {
        self.send(octet_request(method, path, token, body)).await
    }

    /// Uploads `(path, content)` files as a snapshot through the snapshot API (manifest, every
    /// blob, commit); returns the snapshot id.
    pub async fn upload_snapshot(
        &self,
        token: &str,
        project: &str,
        files: &[(&str, &str)],
    ) -> String {
        let m = manifest(files);
        let r = self
            .raw(
                Method::POST,
                &format!("/api/v1/projects/{project}/snapshots"),
                token,
                serde_json::to_vec(&m).unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let sid = r.body["snapshot_id"].as_str().unwrap().to_string();
        for (_, content) in files {
            let hash = hivesync_analysis::changeset::content_hash(content.as_bytes());
            let r = self
                .raw(
                    Method::PUT,
                    &format!("/api/v1/projects/{project}/blobs/{hash}"),
                    token,
                    content.as_bytes().to_vec(),
                )
                .await;
            assert!(r.status.is_success(), "{}", r.body);
        }
        let r = self
            .call(
                Method::POST,
                &format!("/api/v1/projects/{project}/snapshots/{sid}/commit"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        sid
    }
}

/// A manifest of `(path, content)` pairs, as the desktop builds it (sorted, languages by
/// extension).
pub fn manifest(files: &[(&str, &str)]) -> hivesync_protocol::Manifest {
    use hivesync_protocol::{Language, ManifestFile};
    let mut list: Vec<ManifestFile> = files
        .iter()
        .map(|(path, content)| ManifestFile {
            path: (*path).to_string(),
            hash: hivesync_analysis::changeset::content_hash(content.as_bytes()),
            size: content.len() as u64,
            language: Language::from_path(path),
        })
        .collect();
    list.sort_by(|a, b| a.path.cmp(&b.path));
    hivesync_protocol::Manifest {
        hash: hivesync_analysis::manifest::manifest_hash(&list),
        files: list,
        metadata: Default::default(),
    }
}
