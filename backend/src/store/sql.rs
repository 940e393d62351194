//! [`SqlStore`]: every storage trait over SQLite or PostgreSQL with ONE set of queries.
//!
//! Why sqlx's `Any` driver rather than a generic layer over `sqlx::Database`: the queries are
//! plain SQL that both databases accept (`$1` placeholders work on SQLite too, `RETURNING` on
//! both), so one `AnyPool` and one query string per operation is the least code that keeps
//! both in step; a generic `<DB: Database>` layer would need trait bounds on every
//! encode/decode and still duplicate nothing. The price is that `Any` only carries integers,
//! floats, text and blobs — so ids are UUID text and times are Unix milliseconds (BIGINT), which
//! also keeps the two schemas nearly identical (`migrations/sqlite` and `migrations/postgres`
//! differ only where SQL does: the event id column).

use super::project_cache::{self, Change, ProjectCache};
use super::*;
use crate::config::DatabaseKind;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection, Executor, Row};
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A pooled connection idle for at least this long is pinged before it is handed out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(5);

/// The SQL implementation of every storage trait.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    kind: DatabaseKind,
    /// Each user's memberships, kept fresh by [`watch_changes`]; shared by every clone.
    cache: Arc<ProjectCache>,
    /// Stops [`watch_changes`] when sent to or when the last clone is dropped.
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl SqlStore {
    /// Connects (creating the SQLite file and its directory if needed) and runs the
    /// migrations for this database.
    pub async fn connect(
        url: &str,
        kind: DatabaseKind,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let mut url = url.to_string();
        if kind == DatabaseKind::Sqlite {
            if let Some(path) = sqlite_path(&url)
                && let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot create the database directory {}: {e}",
                        parent.display()
                    ))
                })?;
            }
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
        }
        let is_sqlite = kind == DatabaseKind::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings every connection it hands out by default: one more round trip to the
            // database per query. Only a connection that sat idle a while is checked (a broken
            // one is closed and replaced, as the default check does); one in steady use has just
            // answered a query and been pinged on release.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if is_sqlite {
                        // WAL lets readers run beside the writer; NORMAL is durable in WAL mode
                        // except for the last transactions on power loss.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect: {e}")))?;
        let migrator = match kind {
            DatabaseKind::Sqlite => &SQLITE_MIGRATIONS,
            DatabaseKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("migrations failed: {e}")))?;
        let cache = Arc::new(ProjectCache::new(project_cache::DEFAULT_CAPACITY));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(watch_changes(
            kind,
            url,
            pool.clone(),
            cache.clone(),
            stopped,
        ));
        Ok(SqlStore {
            pool,
            kind,
            cache,
            stop: Arc::new(stop),
        })
    }

    /// The membership cache (for tests and `/readyz`-style checks).
    pub fn project_cache(&self) -> &ProjectCache {
        &self.cache
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Answers when the database does (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        let _ = self.stop.send(true);
        self.pool.close().await;
    }

    /// The user's projects read from the database, bypassing the cache (for readers that may
    /// have heard of a change before this instance's cache did, such as event streams).
    pub async fn projects_of_uncached(&self, user_id: Uuid) -> StoreResult<Vec<(Project, Role)>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS}, m.role FROM projects p
             JOIN project_members m ON m.project_id = p.id
             WHERE m.user_id = $1 ORDER BY p.created_at DESC, p.id DESC"
        ))
        .bind(user_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((project_from(r)?, get_role(r, "role")?)))
            .collect()
    }

    /// The user's memberships, from the cache or (then cached) from the database.
    async fn memberships(&self, user_id: Uuid) -> StoreResult<Arc<project_cache::Memberships>> {
        if let Some(hit) = self.cache.get(user_id) {
            return Ok(hit);
        }
        // Taken before the query: an invalidation during it keeps its result out.
        let generation = self.cache.generation();
        let projects = self.projects_of_uncached(user_id).await?;
        Ok(self.cache.fill(user_id, generation, projects))
    }
}

/// Keeps the membership cache fresh against changes made elsewhere (see `project_cache`):
/// LISTEN on PostgreSQL, the change counter on SQLite. Runs until `stop`.
async fn watch_changes(
    kind: DatabaseKind,
    url: String,
    pool: AnyPool,
    cache: Arc<ProjectCache>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    match kind {
        DatabaseKind::Postgres => {
            tokio::select! {
                () = listen_for_changes(&url, &cache) => {}
                () = stopped => {}
            }
        }
        DatabaseKind::Sqlite => {
            tokio::select! {
                () = poll_for_changes(&pool, &cache) => {}
                () = stopped => {}
            }
        }
    }
    cache.disable();
}

/// PostgreSQL: the cache is on only while this instance LISTENs; a lost or failing listener
/// turns it off until it listens again.
async fn listen_for_changes(url: &str, cache: &ProjectCache) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(url, cache).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "membership cache off: change notifications unavailable");
            }
        }
        cache.disable();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One listening connection, until it fails (`Ok` when it was lost and could be reopened
/// only by starting over).
async fn listen_once(url: &str, cache: &ProjectCache) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(project_cache::CHANNEL).await?;
    cache.enable();
    let mut check = tokio::time::interval(project_cache::LISTENER_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    loop {
        tokio::select! {
            message = listener.try_recv() => match message? {
                Some(n) => cache.invalidate(Change::parse(n.payload())),
                // The connection was lost and has been re-established (LISTEN again):
                // anything sent meanwhile was missed.
                None => cache.invalidate(Change::All),
            },
            _ = check.tick() => {
                let alive = tokio::time::timeout(
                    project_cache::LISTENER_CHECK_EVERY,
                    sqlx::query("SELECT 1").execute(&mut listener),
                )
                .await;
                match alive {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Ok(()),
                }
            }
        }
    }
}

/// SQLite: reads the `projects` change counter every `SQLITE_POLL_EVERY`; a change (by any
/// process, this one included) clears the cache, a failed read turns it off.
async fn poll_for_changes(pool: &AnyPool, cache: &ProjectCache) {
    let mut last: Option<i64> = None;
    let mut tick = tokio::time::interval(project_cache::SQLITE_POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let counter = sqlx::query("SELECT counter FROM change_counters WHERE name = 'projects'")
            .fetch_one(pool)
            .await
            .and_then(|row| row.try_get::<i64, _>("counter"));
        match (counter, last) {
            (Ok(now), Some(before)) if now == before => {}
            (Ok(now), Some(_)) => {
                cache.invalidate(Change::All);
                last = Some(now);
            }
            (Ok(now), None) => {
                cache.enable();
                last = Some(now);
            }
            (Err(e), Some(_)) => {
                tracing::warn!(error = %e, "membership cache off: cannot read the change counter");
                cache.disable();
                last = None;
            }
            (Err(_), None) => {}
        }
    }
}

/// The file path in a `sqlite://PATH[?…]` URL (`None` for in-memory databases).
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.to_string())
    }
}

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(v: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {v}: {e}")))
}

pub(crate) fn get_uuid(row: &AnyRow, col: &str) -> StoreResult<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt(format!("{col} `{s}`: {e}")))
}

pub(crate) fn get_opt_uuid(row: &AnyRow, col: &str) -> StoreResult<Option<Uuid>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt(format!("{col} `{s}`: {e}"))))
        .transpose()
}

pub(crate) fn get_ts(row: &AnyRow, col: &str) -> StoreResult<OffsetDateTime> {
    from_ms(row.try_get(col)?)
}

pub(crate) fn get_opt_ts(row: &AnyRow, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(from_ms).transpose()
}

fn get_role(row: &AnyRow, col: &str) -> StoreResult<Role> {
    let s: String = row.try_get(col)?;
    Role::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{col} `{s}` is not a role")))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.is_admin, u.created_at";

fn user_from(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: get_uuid(row, "id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        created_at: get_ts(row, "created_at")?,
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, new: NewUser, open: bool) -> StoreResult<CreateUser> {
        // One statement decides "first user → admin" and "closed registration → only the first
        // user" atomically with the insert.
        let result = sqlx::query(
            "INSERT INTO users (id, email, email_normalized, name, password_hash, is_admin, created_at)
             SELECT $1, $2, $3, $4, $5,
                    CASE WHEN EXISTS (SELECT 1 FROM users) THEN 0 ELSE 1 END, $6
             WHERE $7 = 1 OR NOT EXISTS (SELECT 1 FROM users)",
        )
        .bind(new.id.to_string())
        .bind(&new.email)
        .bind(&new.email_normalized)
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(ms(new.created_at))
        .bind(i64::from(open))
        .execute(&self.pool)
        .await;
        match result {
            Err(e) if is_unique_violation(&e) => Ok(CreateUser::EmailTaken),
            Err(e) => Err(e.into()),
            Ok(r) if r.rows_affected() == 0 => Ok(CreateUser::Closed),
            Ok(_) => match self.user_by_id(new.id).await? {
                Some(user) => Ok(CreateUser::Created(user)),
                None => Err(StoreError::Database("inserted user not found".into())),
            },
        }
    }

    async fn user_by_email(&self, email_normalized: &str) -> StoreResult<Option<(User, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email_normalized = $1"
        ))
        .bind(email_normalized)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((user_from(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }
}

fn refresh_from(row: &AnyRow) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        id: get_uuid(row, "id")?,
        family_id: get_uuid(row, "family_id")?,
        user_id: get_uuid(row, "user_id")?,
        token_hash: row.try_get("token_hash")?,
        created_at: get_ts(row, "created_at")?,
        expires_at: get_ts(row, "expires_at")?,
        session_expires_at: get_ts(row, "session_expires_at")?,
        used_at: get_opt_ts(row, "used_at")?,
        revoked_at: get_opt_ts(row, "revoked_at")?,
    })
}

fn pat_from(row: &AnyRow) -> StoreResult<PersonalAccessToken> {
    Ok(PersonalAccessToken {
        id: get_uuid(row, "id")?,
        user_id: get_uuid(row, "user_id")?,
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        token_prefix: row.try_get("token_prefix")?,
        created_at: get_ts(row, "created_at")?,
        expires_at: get_opt_ts(row, "expires_at")?,
        last_used_at: get_opt_ts(row, "last_used_at")?,
    })
}

const PAT_COLUMNS: &str =
    "id, user_id, name, token_hash, token_prefix, created_at, expires_at, last_used_at";

#[async_trait]
impl TokenStore for SqlStore {
    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens
                (id, family_id, user_id, token_hash, created_at, expires_at, session_expires_at,
                 used_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(t.id.to_string())
        .bind(t.family_id.to_string())
        .bind(t.user_id.to_string())
        .bind(&t.token_hash)
        .bind(ms(t.created_at))
        .bind(ms(t.expires_at))
        .bind(ms(t.session_expires_at))
        .bind(t.used_at.map(ms))
        .bind(t.revoked_at.map(ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn refresh_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
        let row = sqlx::query(
            "SELECT id, family_id, user_id, token_hash, created_at, expires_at,
                    session_expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refresh_from).transpose()
    }

    async fn mark_refresh_token_used(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1
             WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn revoke_refresh_family(&self, family_id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(family_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_personal_token(&self, t: &PersonalAccessToken) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO personal_access_tokens ({PAT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(t.id.to_string())
        .bind(t.user_id.to_string())
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(&t.token_prefix)
        .bind(ms(t.created_at))
        .bind(t.expires_at.map(ms))
        .bind(t.last_used_at.map(ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalAccessToken>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE user_id = $1
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pat_from).collect()
    }

    async fn personal_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<PersonalAccessToken>> {
        let row = sqlx::query(&format!(
            "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pat_from).transpose()
    }

    async fn delete_personal_token(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM personal_access_tokens WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn touch_personal_token(&self, id: Uuid, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE personal_access_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(ms(at))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn project_from(row: &AnyRow) -> StoreResult<Project> {
    Ok(Project {
        id: get_uuid(row, "id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.description, p.created_at, p.updated_at";

fn member_from(row: &AnyRow) -> StoreResult<Member> {
    Ok(Member {
        user: user_from(row)?,
        role: get_role(row, "role")?,
        added_at: get_ts(row, "added_at")?,
    })
}

impl SqlStore {
    /// Owners other than `user_id` (for the last-owner rule).
    async fn other_owners<'e, E>(executor: E, project_id: Uuid, user_id: Uuid) -> StoreResult<i64>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM project_members
             WHERE project_id = $1 AND role = 'owner' AND user_id <> $2",
        )
        .bind(project_id.to_string())
        .bind(user_id.to_string())
        .fetch_one(executor)
        .await?;
        Ok(row.try_get("n")?)
    }
}

/// Project writes; the [`ProjectStore`] methods wrap them to invalidate the membership cache
/// of this instance once they are done (read-your-writes; other instances hear of it
/// through the database, see `project_cache`).
impl SqlStore {
    async fn create_project_in_db(&self, p: &Project, owner: Uuid) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO projects (id, name, description, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id.to_string())
        .bind(&p.name)
        .bind(p.description.as_deref())
        .bind(ms(p.created_at))
        .bind(ms(p.updated_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role, added_at)
             VALUES ($1, $2, 'owner', $3)",
        )
        .bind(p.id.to_string())
        .bind(owner.to_string())
        .bind(ms(p.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_project_in_db(
        &self,
        id: Uuid,
        patch: &ProjectPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<Project>> {
        // CASE keeps one statement for every combination of fields present.
        let r = sqlx::query(
            "UPDATE projects SET
                name = CASE WHEN $1 = 1 THEN $2 ELSE name END,
                description = CASE WHEN $3 = 1 THEN $4 ELSE description END,
                updated_at = $5
             WHERE id = $6",
        )
        .bind(i64::from(patch.name.is_some()))
        .bind(patch.name.clone().unwrap_or_default())
        .bind(i64::from(patch.description.is_some()))
        .bind(patch.description.clone().flatten())
        .bind(ms(at))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(project_from).transpose()
    }

    async fn delete_project_in_db(&self, id: Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_member_role_in_db(
        &self,
        project_id: Uuid,
        user_id: Uuid,
        role: Role,
        at: OffsetDateTime,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.pool.begin().await?;
        // Write first so SQLite takes its write lock at the start of the transaction (no
        // read-to-write upgrade that could fail under concurrency); a no-op when absent.
        sqlx::query("UPDATE projects SET updated_at = updated_at WHERE id = $1")
            .bind(project_id.to_string())
            .execute(&mut *tx)
            .await?;
        let user_exists = sqlx::query("SELECT 1 AS one FROM users WHERE id = $1")
            .bind(user_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !user_exists {
            return Ok(MemberChange::NoSuchUser);
        }
        let previous =
            sqlx::query("SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2")
                .bind(project_id.to_string())
                .bind(user_id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| get_role(&r, "role"))
                .transpose()?;
        if previous == Some(Role::Owner)
            && role != Role::Owner
            && Self::other_owners(&mut *tx, project_id, user_id).await? == 0
        {
            return Ok(MemberChange::LastOwner);
        }
        match previous {
            Some(_) => {
                sqlx::query(
                    "UPDATE project_members SET role = $1 WHERE project_id = $2 AND user_id = $3",
                )
                .bind(role.as_str())
                .bind(project_id.to_string())
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO project_members (project_id, user_id, role, added_at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(project_id.to_string())
                .bind(user_id.to_string())
                .bind(role.as_str())
                .bind(ms(at))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(MemberChange::Done { previous })
    }

    async fn remove_member_in_db(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<MemberChange> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE projects SET updated_at = updated_at WHERE id = $1")
            .bind(project_id.to_string())
            .execute(&mut *tx)
            .await?;
        let previous =
            sqlx::query("SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2")
                .bind(project_id.to_string())
                .bind(user_id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| get_role(&r, "role"))
                .transpose()?;
        let Some(previous) = previous else {
            return Ok(MemberChange::NoSuchUser);
        };
        if previous == Role::Owner && Self::other_owners(&mut *tx, project_id, user_id).await? == 0
        {
            return Ok(MemberChange::LastOwner);
        }
        sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
            .bind(project_id.to_string())
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(MemberChange::Done {
            previous: Some(previous),
        })
    }
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn projects_of(&self, user_id: Uuid) -> StoreResult<Arc<project_cache::Memberships>> {
        self.memberships(user_id).await
    }

    async fn membership(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Option<(Project, Role)>> {
        Ok(self
            .memberships(user_id)
            .await?
            .role_on(project_id)
            .cloned())
    }

    async fn members(&self, project_id: Uuid) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.added_at FROM project_members m
             JOIN users u ON u.id = m.user_id
             WHERE m.project_id = $1 ORDER BY m.added_at, u.id"
        ))
        .bind(project_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from).collect()
    }

    async fn member(&self, project_id: Uuid, user_id: Uuid) -> StoreResult<Option<Member>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.added_at FROM project_members m
             JOIN users u ON u.id = m.user_id
             WHERE m.project_id = $1 AND m.user_id = $2"
        ))
        .bind(project_id.to_string())
        .bind(user_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(member_from).transpose()
    }

    async fn create_project(&self, p: &Project, owner: Uuid) -> StoreResult<()> {
        let result = self.create_project_in_db(p, owner).await;
        self.cache.invalidate(Change::User(owner));
        result
    }

    async fn update_project(
        &self,
        id: Uuid,
        patch: &ProjectPatch,
        at: OffsetDateTime,
    ) -> StoreResult<Option<Project>> {
        let result = self.update_project_in_db(id, patch, at).await;
        self.cache.invalidate(Change::Project(id));
        result
    }

    async fn delete_project(&self, id: Uuid) -> StoreResult<bool> {
        let result = self.delete_project_in_db(id).await;
        self.cache.invalidate(Change::Project(id));
        result
    }

    async fn set_member_role(
        &self,
        project_id: Uuid,
        user_id: Uuid,
        role: Role,
        at: OffsetDateTime,
    ) -> StoreResult<MemberChange> {
        let result = self
            .set_member_role_in_db(project_id, user_id, role, at)
            .await;
        self.cache.invalidate(Change::User(user_id));
        result
    }

    async fn remove_member(&self, project_id: Uuid, user_id: Uuid) -> StoreResult<MemberChange> {
        let result = self.remove_member_in_db(project_id, user_id).await;
        self.cache.invalidate(Change::User(user_id));
        result
    }
}

/// The advisory lock key serialising event appends on PostgreSQL ("HSEVENTS" in ASCII).
const EVENT_APPEND_LOCK: i64 = 0x4853_4556_454E_5453;

fn event_from(row: &AnyRow) -> StoreResult<Event> {
    let payload: String = row.try_get("payload")?;
    Ok(Event {
        id: row.try_get("id")?,
        project_id: get_uuid(row, "project_id")?,
        kind: row.try_get("kind")?,
        actor_id: get_opt_uuid(row, "actor_id")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?,
        created_at: get_ts(row, "created_at")?,
    })
}

#[async_trait]
impl EventLog for SqlStore {
    async fn append_event(&self, e: &NewEvent) -> StoreResult<Event> {
        let payload = serde_json::to_string(&e.payload)
            .map_err(|err| StoreError::Corrupt(format!("event payload: {err}")))?;
        // Readers resume with "id > N", so ids must become visible in increasing order. A
        // PostgreSQL identity hands out ids before commit, so two concurrent appends could
        // commit 7 before 6 and a reader at 7 would skip 6: appends take a transaction-scoped
        // advisory lock, making id order commit order. SQLite has one writer at a time anyway.
        let mut tx = self.pool.begin().await?;
        if self.kind == DatabaseKind::Postgres {
            // The function returns `void`, which the Any driver cannot decode: select a constant.
            sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(EVENT_APPEND_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO events (project_id, kind, actor_id, payload, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(e.project_id.to_string())
        .bind(&e.kind)
        .bind(e.actor_id.map(|a| a.to_string()))
        .bind(payload)
        .bind(ms(e.created_at))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Event {
            id: row.try_get("id")?,
            project_id: e.project_id,
            kind: e.kind.clone(),
            actor_id: e.actor_id,
            payload: e.payload.clone(),
            created_at: from_ms(ms(e.created_at))?,
        })
    }

    async fn events_after(
        &self,
        project_id: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, project_id, kind, actor_id, payload, created_at FROM events
             WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(project_id.to_string())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from).collect()
    }
    async fn events_for_user_after(
        &self,
        user_id: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT e.id, e.project_id, e.kind, e.actor_id, e.payload, e.created_at FROM events e
             JOIN project_members m ON m.project_id = e.project_id AND m.user_id = $1
             WHERE e.id > $2 ORDER BY e.id LIMIT $3",
        )
        .bind(user_id.to_string())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from).collect()
    }

    async fn latest_event_id(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }
}
