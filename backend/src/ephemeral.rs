//! Ephemeral data: short-lived keys with a time to live — rate-limit counters, revoked login
//! sessions, later preview-token lookups. Losing it is harmless (a counter restarts, a revoked
//! session's access token lives until its short expiry). [`Ephemeral`] is the trait; the
//! in-process [`MemoryEphemeral`] is the embedded default, and [`RedisEphemeral`] is used when
//! `REDIS_URL` is set so every API instance sees the same counters and revocations. Both pass
//! the same tests (`tests` below run on Redis too when `REDIS_URL` is set).

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failure of the ephemeral store (e.g. Redis not answering).
#[derive(Debug, thiserror::Error)]
#[error("ephemeral store unavailable: {0}")]
pub struct EphemeralError(pub String);

/// A counter in a fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// The count after this increment.
    pub count: u64,
    /// Until the window ends and the counter starts again.
    pub resets_in: Duration,
}

#[async_trait]
pub trait Ephemeral: Send + Sync {
    /// `"memory"`, `"redis"`, … (for `/readyz`).
    fn backend(&self) -> &'static str;
    /// Increments `key`; the first increment starts a window of `window`.
    async fn incr(&self, key: &str, window: Duration) -> Result<Counter, EphemeralError>;
    /// Stores `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), EphemeralError>;
    async fn get(&self, key: &str) -> Result<Option<String>, EphemeralError>;
    async fn delete(&self, key: &str) -> Result<(), EphemeralError>;
    /// Answers when the store does.
    async fn ping(&self) -> Result<(), EphemeralError>;
}

#[derive(Debug)]
enum Value {
    Count(u64),
    Text(String),
}

/// In-process ephemeral store: a map with expiry times, swept as it grows.
#[derive(Debug, Default)]
pub struct MemoryEphemeral {
    entries: Mutex<HashMap<String, (Value, Instant)>>,
}

/// Sweep expired entries when the map grows past this many since the last sweep.
const SWEEP_EVERY: usize = 4096;

impl MemoryEphemeral {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (Value, Instant)>) -> T) -> T {
        // A poisoned lock only means another request panicked mid-update of a cache entry;
        // the map itself is still usable.
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= SWEEP_EVERY && map.len().is_power_of_two() {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
        }
        f(&mut map)
    }
}

#[async_trait]
impl Ephemeral for MemoryEphemeral {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<Counter, EphemeralError> {
        let now = Instant::now();
        Ok(self.with(|map| {
            let entry = map
                .entry(key.to_string())
                .or_insert((Value::Count(0), now + window));
            if entry.1 <= now || !matches!(entry.0, Value::Count(_)) {
                *entry = (Value::Count(0), now + window);
            }
            let count = match &mut entry.0 {
                Value::Count(c) => {
                    *c += 1;
                    *c
                }
                Value::Text(_) => 1,
            };
            Counter {
                count,
                resets_in: entry.1.saturating_duration_since(now),
            }
        }))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), EphemeralError> {
        let until = Instant::now() + ttl;
        self.with(|map| map.insert(key.to_string(), (Value::Text(value.to_string()), until)));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, EphemeralError> {
        let now = Instant::now();
        Ok(self.with(|map| match map.get(key) {
            Some((Value::Text(v), until)) if *until > now => Some(v.clone()),
            Some((Value::Count(c), until)) if *until > now => Some(c.to_string()),
            _ => None,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.with(|map| map.remove(key));
        Ok(())
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        Ok(())
    }
}

/// Ephemeral data in Redis, every key under a prefix (`hivesync:` by default; tests use a
/// random one each). The connection manager reconnects by itself; a command during an outage
/// fails with [`EphemeralError`] (the request then answers 503).
#[derive(Clone)]
pub struct RedisEphemeral {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

/// The default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "hivesync:";

/// `INCR` and start the window on the first increment, atomically; answers the count and the
/// milliseconds left in the window (a key that somehow lost its expiry gets one again).
const INCR_SCRIPT: &str = r"
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}
";

fn redis_err(e: redis::RedisError) -> EphemeralError {
    EphemeralError(format!("redis: {e}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisEphemeral {
    /// Connects to `url` (`redis://…` or `rediss://…` is refused in this build: plain only).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, EphemeralError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(redis_err)?;
        Ok(RedisEphemeral {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Ephemeral for RedisEphemeral {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<Counter, EphemeralError> {
        let mut conn = self.conn.clone();
        let (count, ttl_ms): (u64, i64) = redis::Script::new(INCR_SCRIPT)
            .key(self.key(key))
            .arg(millis(window))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(Counter {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        })
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), EphemeralError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, EphemeralError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(redis_err)
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(redis_err)
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(redis_err)
    }
}

/// Decides whether a client may make one more request of a kind.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// `Ok(())` to go ahead, `Err(retry_after)` when over the limit.
    async fn check(
        &self,
        bucket: &str,
        client: &str,
    ) -> Result<Result<(), Duration>, EphemeralError>;
}

/// Fixed-window limiter over any [`Ephemeral`] store: `limit` requests per `window` for each
/// bucket and client. Shared counters (Redis) make it hold across API instances.
pub struct WindowRateLimiter {
    store: std::sync::Arc<dyn Ephemeral>,
    limit: u64,
    window: Duration,
}

impl WindowRateLimiter {
    pub fn new(store: std::sync::Arc<dyn Ephemeral>, limit: u32, window: Duration) -> Self {
        WindowRateLimiter {
            store,
            limit: u64::from(limit),
            window,
        }
    }
}

#[async_trait]
impl RateLimiter for WindowRateLimiter {
    async fn check(
        &self,
        bucket: &str,
        client: &str,
    ) -> Result<Result<(), Duration>, EphemeralError> {
        let counter = self
            .store
            .incr(&format!("ratelimit:{bucket}:{client}"), self.window)
            .await?;
        if counter.count > self.limit {
            Ok(Err(counter.resets_in.max(Duration::from_secs(1))))
        } else {
            Ok(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The in-process store, and Redis when `REDIS_URL` is set (a failure to connect fails the
    /// test), each Redis one under a fresh prefix.
    async fn stores() -> Vec<Arc<dyn Ephemeral>> {
        let mut list: Vec<Arc<dyn Ephemeral>> = vec![Arc::new(MemoryEphemeral::new())];
        if let Ok(url) = std::env::var("REDIS_URL") {
            let prefix = format!(
                "{}{}:",
                std::env::var("HIVESYNC_TEST_PREFIX").unwrap_or_else(|_| "hivesync-test:".into()),
                uuid::Uuid::new_v4().simple()
            );
            list.push(Arc::new(
                RedisEphemeral::connect(&url, &prefix)
                    .await
                    .expect("REDIS_URL is set but Redis does not answer"),
            ));
        }
        list
    }

    #[tokio::test]
    async fn values_expire() {
        for e in stores().await {
            values_expire_on(&*e).await;
        }
    }

    #[tokio::test]
    async fn limiter_counts_per_bucket_and_client_and_resets() {
        for store in stores().await {
            limiter_on(store).await;
        }
    }

    #[tokio::test]
    async fn counters_and_values_are_separate_keys_and_ping_answers() {
        for e in stores().await {
            let c = e.incr("n", Duration::from_secs(5)).await.expect("incr");
            assert_eq!(c.count, 1, "{}", e.backend());
            assert!(c.resets_in <= Duration::from_secs(5) && c.resets_in > Duration::ZERO);
            assert_eq!(
                e.incr("n", Duration::from_secs(5))
                    .await
                    .expect("incr")
                    .count,
                2
            );
            assert_eq!(e.get("n").await.expect("get").as_deref(), Some("2"));
            assert_eq!(e.get("missing").await.expect("get"), None);
            e.delete("missing").await.expect("deleting nothing is fine");
            e.ping().await.expect("ping");
        }
    }

    async fn values_expire_on(e: &dyn Ephemeral) {
        e.set("k", "v", Duration::from_millis(30))
            .await
            .expect("set");
        assert_eq!(e.get("k").await.expect("get").as_deref(), Some("v"));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(e.get("k").await.expect("get"), None);
        e.set("k", "v", Duration::from_secs(5)).await.expect("set");
        e.delete("k").await.expect("delete");
        assert_eq!(e.get("k").await.expect("get"), None);
    }

    async fn limiter_on(store: Arc<dyn Ephemeral>) {
        let l = WindowRateLimiter::new(store, 2, Duration::from_millis(50));
        assert!(l.check("login", "a").await.expect("ok").is_ok());
        assert!(l.check("login", "a").await.expect("ok").is_ok());
        let retry = l
            .check("login", "a")
            .await
            .expect("ok")
            .expect_err("limited");
        assert!(retry >= Duration::from_secs(1));
        assert!(l.check("login", "b").await.expect("ok").is_ok());
        assert!(l.check("refresh", "a").await.expect("ok").is_ok());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(l.check("login", "a").await.expect("ok").is_ok());
    }
}
