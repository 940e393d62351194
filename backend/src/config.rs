//! The typed `[server]` configuration and what it resolves to at start: which database, cache,
//! queue and blob storage to use (chosen by URL), where the data directory is, token lifetimes
//! and limits. The binary layers defaults < file < environment < flags into [`Config`]; this
//! module only validates and resolves it ([`Config::resolve`]) so tests can build one directly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `hivesync server` can be configured with (`[server]` table,
/// `HIVESYNC_SERVER_<KEY>` variables, flags). Secrets are redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the API listens on.
    pub bind: SocketAddr,
    /// Directory for the embedded database, the generated JWT secret and local blobs.
    pub data_dir: PathBuf,
    /// `sqlite://…` (default `sqlite://<data_dir>/hivesync.db`) or `postgres://…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `redis://…` for ephemeral data; in-process when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// `amqp://…` for the job queue and cross-instance events; in-process when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amqp_url: Option<String>,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub redis_key_prefix: String,
    /// `file://…` (default `file://<data_dir>/blobs`) or `s3://bucket[/prefix]` (credentials,
    /// region and endpoint from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_url: Option<String>,
    /// HMAC secret for access tokens (at least 32 bytes). Required with PostgreSQL; generated
    /// once into `<data_dir>/jwt_secret` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// `iss` of issued access tokens (and the only issuer accepted).
    pub jwt_issuer: String,
    /// Whether anyone may register. The first user can always register and becomes admin.
    pub registration_open: bool,
    /// Lifetime of an access token.
    pub access_token_ttl_seconds: u64,
    /// Lifetime of one refresh token (each refresh issues a new one).
    pub refresh_token_ttl_seconds: u64,
    /// Absolute lifetime of a login session (a refresh-token family), however often refreshed.
    pub session_max_seconds: u64,
    /// Requests per client address and minute on each login/token endpoint.
    pub auth_rate_limit_per_minute: u32,
    /// Take the client address for rate limiting from the last `X-Forwarded-For` entry (only
    /// behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Largest accepted request body on the JSON API.
    pub max_body_bytes: usize,
    /// Time limit for producing a response (streams, once started, are not cut).
    pub request_timeout_seconds: u64,
    /// How long shutdown waits for in-flight requests before exiting anyway.
    pub shutdown_grace_seconds: u64,
    /// Connections in the database pool.
    pub database_max_connections: u32,
    /// Largest file accepted by `PUT …/blobs/{hash}`.
    pub blob_max_bytes: u64,
    /// Total size of the distinct blobs one project may store.
    pub project_quota_bytes: u64,
    /// Largest manifest accepted by `POST …/snapshots`.
    pub manifest_max_bytes: usize,
    /// Address the preview content listener binds (a separate origin from the API).
    pub preview_bind: SocketAddr,
    /// Public base URL of the preview origin (e.g. `https://preview.example.com`); defaults to
    /// `http://<preview_bind>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_base_url: Option<String>,
    /// Lifetime of a preview token when the request names none.
    pub preview_default_ttl_seconds: u64,
    /// Longest lifetime a preview token may be given.
    pub preview_max_ttl_seconds: u64,
    /// Largest preview bundle (compressed) accepted.
    pub preview_max_bundle_bytes: u64,
    /// Largest total uncompressed size of a preview bundle.
    pub preview_max_unpacked_bytes: u64,
    /// Most files a preview bundle may hold.
    pub preview_max_files: u64,
    /// Failed preview-token lookups allowed per client address and minute.
    pub preview_lookup_failures_per_minute: u32,
    /// Job workers run inside `hivesync server`. Unset: 2 with the embedded queue (so the
    /// zero-config server processes jobs), 0 with RabbitMQ (run `hivesync worker`). 0 disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// How long a claimed job stays with its worker without a heartbeat before another worker
    /// may take it over (workers heartbeat at a third of it).
    pub job_lease_seconds: u64,
    /// Attempts of a job that keeps failing with a retryable error before it is `failed`.
    pub job_max_attempts: u32,
    /// RabbitMQ job queues are named `<prefix>.<kind>` (and `.retry`, `.dead`).
    pub job_queue_prefix: String,
    /// How often the server schedules `preview_cleanup` (0: never).
    pub cleanup_interval_seconds: u64,
    /// How long revoked or expired previews keep their bundles, and unreferenced blobs stay,
    /// before `preview_cleanup` removes them.
    pub cleanup_grace_seconds: u64,
    /// Let `repo_sync` mirror local `file://` remotes (tests and single-user setups only: it
    /// reads repositories on the server's disk).
    pub repo_sync_allow_local: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir: default_data_dir(),
            database_url: None,
            redis_url: None,
            amqp_url: None,
            redis_key_prefix: crate::ephemeral::DEFAULT_REDIS_PREFIX.into(),
            storage_url: None,
            jwt_secret: None,
            jwt_issuer: "hivesync".into(),
            registration_open: true,
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 14 * 24 * 3600,
            session_max_seconds: 90 * 24 * 3600,
            auth_rate_limit_per_minute: 20,
            trust_forwarded_for: false,
            max_body_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
            database_max_connections: 16,
            blob_max_bytes: 64 * 1024 * 1024,
            project_quota_bytes: 4 * 1024 * 1024 * 1024,
            manifest_max_bytes: 32 * 1024 * 1024,
            preview_bind: SocketAddr::from(([127, 0, 0, 1], 7879)),
            preview_base_url: None,
            preview_default_ttl_seconds: 3600,
            preview_max_ttl_seconds: 7 * 24 * 3600,
            preview_max_bundle_bytes: 200 * 1024 * 1024,
            preview_max_unpacked_bytes: 1024 * 1024 * 1024,
            preview_max_files: 20_000,
            preview_lookup_failures_per_minute: 10,
            workers: None,
            job_lease_seconds: 60,
            job_max_attempts: 5,
            job_queue_prefix: "hivesync.jobs".into(),
            cleanup_interval_seconds: 3600,
            cleanup_grace_seconds: 24 * 3600,
            repo_sync_allow_local: false,
        }
    }
}

/// `<user data dir>/hivesync`, or `./hivesync-data` on systems without one.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("hivesync"))
        .unwrap_or_else(|| PathBuf::from("hivesync-data"))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("amqp_url", &self.amqp_url.as_deref().map(redact_url))
            .field("storage_url", &self.storage_url.as_deref().map(redact_url))
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("registration_open", &self.registration_open)
            .finish_non_exhaustive()
    }
}

/// The URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// The database behind `DATABASE_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

/// A configuration value the server cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration for `server.{key}`: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
    }
}

/// [`Config`] with defaults filled in and every URL checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    pub database_url: String,
    pub database_kind: DatabaseKind,
    /// Where snapshot blobs live (`storage_url`).
    pub storage: Storage,
}

/// Where snapshot blobs live, from `storage_url` (`HIVESYNC_STORAGE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `file:///dir` (the default, `<data_dir>/blobs`).
    Local(PathBuf),
    /// `s3://bucket[/prefix]`, credentials and endpoint from the usual AWS variables.
    S3(S3Storage),
}

impl Storage {
    /// `"file"` or `"s3"` (for `/readyz`).
    pub fn backend(&self) -> &'static str {
        match self {
            Storage::Local(_) => "file",
            Storage::S3(_) => "s3",
        }
    }

    /// The local directory of `file://` storage.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        match self {
            Storage::Local(dir) => Some(dir),
            Storage::S3(_) => None,
        }
    }
}

/// An S3 (or S3-compatible) bucket. The secret key is redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Storage {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    pub region: String,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server (MinIO, …); AWS itself when `None`.
    pub endpoint: Option<String>,
    /// Plain-HTTP endpoints are accepted only with `AWS_ALLOW_HTTP=true`.
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Resolves `storage_url`; `env` reads the AWS variables (the process environment in
/// [`Config::resolve`]). Errors name `storage_url` and the variable at fault, never a secret.
fn resolve_storage(
    url: Option<&str>,
    data_dir: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Storage, ConfigError> {
    let key = "storage_url";
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(Storage::Local(data_dir.join("blobs")));
    };
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(bad(key, "file:// needs a directory: file:///absolute/path"));
        }
        return Ok(Storage::Local(PathBuf::from(path)));
    }
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(bad(
            key,
            format!(
                "`{}` is not supported; use file:///absolute/path or s3://bucket[/prefix]",
                redact_url(url)
            ),
        ));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        return Err(bad(
            key,
            format!(
                "`{}`: the bucket name must be 3-63 lowercase letters, digits, `-` or `.` (s3://bucket[/prefix])",
                redact_url(url)
            ),
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|seg| {
        seg.is_empty() && !prefix.is_empty()
            || seg == "."
            || seg == ".."
            || seg.chars().any(char::is_control)
    }) {
        return Err(bad(
            key,
            format!(
                "`{}`: the prefix must be `/`-separated names without empty, `.` or `..` parts",
                redact_url(url)
            ),
        ));
    }
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let access_key_id = var("AWS_ACCESS_KEY_ID");
    let secret_access_key = var("AWS_SECRET_ACCESS_KEY");
    match (&access_key_id, &secret_access_key) {
        (Some(_), None) => {
            return Err(bad(
                key,
                "s3:// storage: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                key,
                "s3:// storage: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
            ));
        }
        _ => {}
    }
    let allow_http = match var("AWS_ALLOW_HTTP").as_deref() {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
        Some(_) => {
            return Err(bad(
                key,
                "s3:// storage: AWS_ALLOW_HTTP must be `true` or `false`",
            ));
        }
    };
    let endpoint = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
    if let Some(endpoint) = &endpoint {
        let shown = redact_url(endpoint);
        let host = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .unwrap_or("");
        if host.is_empty() || host.starts_with('/') {
            return Err(bad(
                key,
                format!("s3:// storage: AWS_ENDPOINT_URL `{shown}` is not an http(s):// URL"),
            ));
        }
        if endpoint.starts_with("http://") && !allow_http {
            return Err(bad(
                key,
                format!(
                    "s3:// storage: AWS_ENDPOINT_URL `{shown}` is plain http; set AWS_ALLOW_HTTP=true to allow it"
                ),
            ));
        }
    }
    let region = match var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        Some(region) => region,
        None if endpoint.is_some() => "us-east-1".to_string(),
        None => {
            return Err(bad(
                key,
                "s3:// storage on AWS needs AWS_REGION (the bucket's region)",
            ));
        }
    };
    Ok(Storage::S3(S3Storage {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        region,
        endpoint,
        allow_http,
        access_key_id,
        secret_access_key,
        session_token: var("AWS_SESSION_TOKEN"),
    }))
}

impl Config {
    /// Fills in defaults that depend on the data directory and validates every value.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let database_url = match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => format!("sqlite://{}/hivesync.db", self.data_dir.display()),
        };
        let database_kind = if database_url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            DatabaseKind::Postgres
        } else {
            return Err(bad(
                "database_url",
                format!(
                    "`{}` is neither sqlite://… nor postgres://…",
                    redact_url(&database_url)
                ),
            ));
        };
        let storage = resolve_storage(self.storage_url.as_deref(), &self.data_dir, &|name| {
            std::env::var(name).ok()
        })?;
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return Err(bad(
                "jwt_secret",
                "must be at least 32 bytes long (e.g. `openssl rand -base64 48`)",
            ));
        }
        if database_kind == DatabaseKind::Postgres && self.jwt_secret.is_none() {
            return Err(bad(
                "jwt_secret",
                "must be set (HIVESYNC_SERVER_JWT_SECRET or [server] jwt_secret) when the database is PostgreSQL, so every instance signs tokens alike",
            ));
        }
        if self.jwt_issuer.trim().is_empty() {
            return Err(bad("jwt_issuer", "must not be empty"));
        }
        for (key, value) in [
            ("access_token_ttl_seconds", self.access_token_ttl_seconds),
            ("refresh_token_ttl_seconds", self.refresh_token_ttl_seconds),
            ("session_max_seconds", self.session_max_seconds),
            ("request_timeout_seconds", self.request_timeout_seconds),
        ] {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        if self.auth_rate_limit_per_minute == 0 {
            return Err(bad("auth_rate_limit_per_minute", "must be greater than 0"));
        }
        if self.max_body_bytes < 1024 {
            return Err(bad("max_body_bytes", "must be at least 1024"));
        }
        for (key, value) in [
            ("blob_max_bytes", self.blob_max_bytes),
            ("project_quota_bytes", self.project_quota_bytes),
            (
                "preview_default_ttl_seconds",
                self.preview_default_ttl_seconds,
            ),
            ("preview_max_ttl_seconds", self.preview_max_ttl_seconds),
            ("preview_max_bundle_bytes", self.preview_max_bundle_bytes),
            (
                "preview_max_unpacked_bytes",
                self.preview_max_unpacked_bytes,
            ),
            ("preview_max_files", self.preview_max_files),
        ] {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        if self.preview_default_ttl_seconds > self.preview_max_ttl_seconds {
            return Err(bad(
                "preview_default_ttl_seconds",
                "must not exceed preview_max_ttl_seconds",
            ));
        }
        if self.preview_lookup_failures_per_minute == 0 {
            return Err(bad(
                "preview_lookup_failures_per_minute",
                "must be greater than 0",
            ));
        }
        if let Some(url) = &self.preview_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad(
                "preview_base_url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        if self.job_lease_seconds < 3 {
            return Err(bad("job_lease_seconds", "must be at least 3"));
        }
        if self.job_max_attempts == 0 {
            return Err(bad("job_max_attempts", "must be at least 1"));
        }
        if self.job_queue_prefix.trim().is_empty() {
            return Err(bad("job_queue_prefix", "must not be empty"));
        }
        if self.database_max_connections == 0 {
            return Err(bad("database_max_connections", "must be greater than 0"));
        }
        for (key, url, scheme) in [
            ("redis_url", &self.redis_url, "redis"),
            ("amqp_url", &self.amqp_url, "amqp"),
        ] {
            if let Some(url) = url
                && !url.starts_with(&format!("{scheme}://"))
                && !url.starts_with(&format!("{scheme}s://"))
            {
                return Err(bad(
                    key,
                    format!("`{}` is not a {scheme}:// URL", redact_url(url)),
                ));
            }
        }
        Ok(Resolved {
            config: self.clone(),
            database_url,
            database_kind,
            storage,
        })
    }

    /// The base URL preview content is served under (no trailing slash).
    pub fn preview_base(&self) -> String {
        match &self.preview_base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.preview_bind),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    /// In-process job workers of `hivesync server` (see [`Config::workers`]).
    pub fn in_process_workers(&self) -> u32 {
        self.workers
            .unwrap_or(if self.amqp_url.is_some() { 0 } else { 2 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let cfg = Config {
            data_dir: PathBuf::from("/srv/hs"),
            ..Config::default()
        };
        let r = cfg.resolve().expect("valid");
        assert_eq!(r.database_url, "sqlite:///srv/hs/hivesync.db");
        assert_eq!(r.database_kind, DatabaseKind::Sqlite);
        assert_eq!(r.storage, Storage::Local(PathBuf::from("/srv/hs/blobs")));
    }

    #[test]
    fn postgres_requires_a_secret() {
        let cfg = Config {
            database_url: Some("postgres://u:pw@db/hs".into()),
            ..Config::default()
        };
        let err = cfg.resolve().expect_err("must refuse");
        assert_eq!(err.key, "jwt_secret");
        let cfg = Config {
            jwt_secret: Some("x".repeat(40)),
            ..cfg
        };
        assert_eq!(
            cfg.resolve().expect("valid").database_kind,
            DatabaseKind::Postgres
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            (
                Config {
                    database_url: Some("mysql://x".into()),
                    ..Config::default()
                },
                "database_url",
            ),
            (
                Config {
                    jwt_secret: Some("short".into()),
                    ..Config::default()
                },
                "jwt_secret",
            ),
            (
                Config {
                    storage_url: Some("gs://bucket".into()),
                    ..Config::default()
                },
                "storage_url",
            ),
            (
                Config {
                    redis_url: Some("http://x".into()),
                    ..Config::default()
                },
                "redis_url",
            ),
            (
                Config {
                    access_token_ttl_seconds: 0,
                    ..Config::default()
                },
                "access_token_ttl_seconds",
            ),
        ];
        for (cfg, key) in cases {
            assert_eq!(cfg.resolve().expect_err(key).key, key);
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let cfg = Config {
            database_url: Some("postgres://app:hunter2@db:5432/hs".into()),
            jwt_secret: Some("s".repeat(40)),
            ..Config::default()
        };
        let text = format!("{cfg:?}");
        assert!(
            !text.contains("hunter2") && !text.contains(&"s".repeat(40)),
            "{text}"
        );
        assert!(text.contains("postgres://app:***@db:5432/hs"), "{text}");
    }

    fn storage_with(url: &str, vars: &[(&str, &str)]) -> Result<Storage, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_storage(Some(url), std::path::Path::new("/data"), &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn s3_url_with_endpoint_and_credentials() {
        let storage = storage_with(
            "s3://hs-blobs/team/a/",
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "very-secret-key"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("AWS_ALLOW_HTTP", "true"),
            ],
        )
        .expect("valid");
        let Storage::S3(s3) = &storage else {
            panic!("not s3: {storage:?}")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
            ("hs-blobs", "team/a", "us-east-1")
        );
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.allow_http);
        assert_eq!(storage.backend(), "s3");
        let shown = format!("{storage:?}");
        assert!(!shown.contains("very-secret-key"), "{shown}");

        let aws = storage_with("s3://hs-blobs", &[("AWS_REGION", "eu-west-1")]).expect("valid");
        let Storage::S3(aws) = aws else {
            panic!("not s3")
        };
        assert_eq!(
            (aws.prefix.as_str(), aws.region.as_str()),
            ("", "eu-west-1")
        );
        assert!(aws.endpoint.is_none() && !aws.allow_http);
        assert_eq!(
            storage_with("file:///srv/blobs", &[]).expect("valid"),
            Storage::Local(PathBuf::from("/srv/blobs"))
        );
    }

    #[test]
    fn bad_s3_settings_name_the_variable_and_hide_the_secret() {
        let secret = ("AWS_SECRET_ACCESS_KEY", "very-secret-key");
        let region = ("AWS_REGION", "eu-west-1");
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("s3://Bad_Bucket", &[region], "bucket name"),
            ("s3://ok-bucket/a/../b", &[region], "prefix"),
            ("s3://ok-bucket/a//b", &[region], "prefix"),
            ("s3://ok-bucket", &[], "AWS_REGION"),
            ("s3://ok-bucket", &[region, secret], "AWS_ACCESS_KEY_ID"),
            (
                "s3://ok-bucket",
                &[region, ("AWS_ACCESS_KEY_ID", "AKID")],
                "AWS_SECRET_ACCESS_KEY",
            ),
            (
                "s3://ok-bucket",
                &[("AWS_ENDPOINT_URL", "http://minio:9000")],
                "AWS_ALLOW_HTTP",
            ),
            (
                "s3://ok-bucket",
                &[("AWS_ENDPOINT_URL", "minio:9000")],
                "AWS_ENDPOINT_URL",
            ),
            (
                "s3://ok-bucket",
                &[region, ("AWS_ALLOW_HTTP", "maybe")],
                "AWS_ALLOW_HTTP",
            ),
            ("gs://ok-bucket", &[], "s3://bucket"),
        ];
        for (url, vars, needle) in cases {
            let err = storage_with(url, vars).expect_err(url);
            let text = err.to_string();
            assert_eq!(err.key, "storage_url", "{text}");
            assert!(text.contains(needle), "{url}: {text}");
            assert!(
                !text.contains("very-secret-key") && !text.contains('\n'),
                "{text}"
            );
        }
    }
}
