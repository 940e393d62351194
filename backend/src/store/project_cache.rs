//! [`ProjectCache`]: each user's memberships (their projects with their role), kept in process
//! so `GET /api/v1/projects` and the authorization check of every project route
//! (`ProjectStore::membership`) need no database round trip. It is a droppable cache — the
//! server stays stateless — and stays correct across instances and processes:
//!
//! - **The writing instance** invalidates synchronously after each write through
//!   [`ProjectStore`](super::ProjectStore) (read-your-writes).
//! - **Other instances on PostgreSQL** hear every change through `LISTEN hivesync_projects`:
//!   triggers on `projects` and `project_members` (migration 0011) `pg_notify` the user whose
//!   membership changed (`u:<user id>`) or the project that changed (`p:<project id>`; a rename,
//!   a delete — whose cascade also notifies each member). While the listener is not connected
//!   (at start, after a lost connection, or when a periodic check through it fails) the cache is
//!   off and empty: notifications could be missed.
//! - **Other processes on SQLite** (a second server or a `hivesync worker` on the same file) are
//!   noticed through a counter that triggers bump on every change of those tables
//!   (`change_counters`, migration 0011); it is polled every [`SQLITE_POLL_EVERY`] and any change
//!   clears the cache, so another process's change is seen within that time.
//!
//! A read that started before an invalidation never fills the cache with what it read: every
//! fill carries the [generation](ProjectCache::generation) taken before its query, and each
//! invalidation bumps it. Entries also expire after [`ENTRY_TTL`] (a bound on any missed
//! invalidation), and at most `capacity` users are kept.

use super::{Project, Role};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The PostgreSQL notification channel the triggers of migration 0011 notify.
pub const CHANNEL: &str = "hivesync_projects";
/// How often the SQLite change counter is read.
pub const SQLITE_POLL_EVERY: Duration = Duration::from_millis(100);
/// How often the PostgreSQL listener's connection is checked with a query (a connection cut
/// without a reset would otherwise go unnoticed, and with it every notification).
pub const LISTENER_CHECK_EVERY: Duration = Duration::from_secs(5);
/// The longest an entry is served, whatever happens.
pub const ENTRY_TTL: Duration = Duration::from_secs(60);
/// A user in more projects than this is not cached (their list is read each time).
const MAX_PROJECTS_PER_ENTRY: usize = 1000;
/// Users kept by default.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One user's memberships, newest project first (the order of `projects_of`).
#[derive(Debug)]
pub struct Memberships {
    pub projects: Vec<(Project, Role)>,
    /// The list as `GET /api/v1/projects` answers it (JSON), rendered by that route on first
    /// use: a pure function of `projects`, so it lives and dies with the entry.
    pub rendered: OnceLock<bytes::Bytes>,
    filled_at: Instant,
}

impl Memberships {
    pub fn role_on(&self, project_id: Uuid) -> Option<&(Project, Role)> {
        self.projects.iter().find(|(p, _)| p.id == project_id)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every invalidation; a fill is kept only if it is unchanged since the fill's
    /// query started.
    generation: u64,
    /// Off while changes by others could go unnoticed (listener not connected).
    enabled: bool,
    users: HashMap<Uuid, Arc<Memberships>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct ProjectCache {
    inner: RwLock<Inner>,
    capacity: usize,
}

/// What a change invalidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The user's memberships (added, removed, role changed).
    User(Uuid),
    /// The project's row (renamed, deleted): every cached user who is a member.
    Project(Uuid),
    /// Anything (an unknown notification, a truncate).
    All,
}

impl Change {
    /// Parses a notification payload of the triggers (`u:<uuid>`, `p:<uuid>`, `*`); anything
    /// else invalidates everything.
    pub fn parse(payload: &str) -> Change {
        let id = |s: &str| Uuid::parse_str(s).ok();
        match payload.split_once(':') {
            Some(("u", s)) => id(s).map_or(Change::All, Change::User),
            Some(("p", s)) => id(s).map_or(Change::All, Change::Project),
            _ => Change::All,
        }
    }
}

impl ProjectCache {
    /// An empty cache, off until [`enable`](Self::enable).
    pub fn new(capacity: usize) -> Self {
        ProjectCache {
            inner: RwLock::new(Inner::default()),
            capacity,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user's memberships, if cached and fresh.
    pub fn get(&self, user_id: Uuid) -> Option<Arc<Memberships>> {
        let inner = self.read();
        if !inner.enabled {
            return None;
        }
        let entry = inner.users.get(&user_id)?;
        (entry.filled_at.elapsed() < ENTRY_TTL).then(|| entry.clone())
    }

    /// The generation to pass to [`fill`](Self::fill), taken before the query; `None` when
    /// the cache is off (then nothing is filled).
    pub fn generation(&self) -> Option<u64> {
        let inner = self.read();
        inner.enabled.then_some(inner.generation)
    }

    /// Keeps what a query started at `generation` read, unless something was invalidated
    /// since. Returns the entry either way.
    pub fn fill(
        &self,
        user_id: Uuid,
        generation: Option<u64>,
        projects: Vec<(Project, Role)>,
    ) -> Arc<Memberships> {
        let entry = Arc::new(Memberships {
            projects,
            rendered: OnceLock::new(),
            filled_at: Instant::now(),
        });
        let Some(generation) = generation else {
            return entry;
        };
        if entry.projects.len() > MAX_PROJECTS_PER_ENTRY || self.capacity == 0 {
            return entry;
        }
        let mut inner = self.write();
        if !inner.enabled || inner.generation != generation {
            return entry;
        }
        if inner.users.len() >= self.capacity && !inner.users.contains_key(&user_id) {
            // Expired entries first; if none, an arbitrary one.
            inner.users.retain(|_, e| e.filled_at.elapsed() < ENTRY_TTL);
            if inner.users.len() >= self.capacity
                && let Some(victim) = inner.users.keys().next().copied()
            {
                inner.users.remove(&victim);
            }
        }
        inner.users.insert(user_id, entry.clone());
        entry
    }

    /// Drops what `change` affects.
    pub fn invalidate(&self, change: Change) {
        let mut inner = self.write();
        inner.generation += 1;
        match change {
            Change::User(user) => {
                inner.users.remove(&user);
            }
            Change::Project(project) => inner
                .users
                .retain(|_, e| e.projects.iter().all(|(p, _)| p.id != project)),
            Change::All => inner.users.clear(),
        }
    }

    /// Turns the cache on (empty): changes by others are being heard from now on.
    pub fn enable(&self) {
        let mut inner = self.write();
        inner.generation += 1;
        inner.users.clear();
        inner.enabled = true;
    }

    /// Turns the cache off and empties it: changes by others could go unheard.
    pub fn disable(&self) {
        let mut inner = self.write();
        inner.generation += 1;
        inner.users.clear();
        inner.enabled = false;
    }

    pub fn is_enabled(&self) -> bool {
        self.read().enabled
    }

    /// Users cached now.
    pub fn len(&self) -> usize {
        self.read().users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: Uuid) -> (Project, Role) {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        (
            Project {
                id,
                name: "p".into(),
                description: None,
                created_at: t,
                updated_at: t,
            },
            Role::Owner,
        )
    }

    #[test]
    fn off_until_enabled_and_cleared_when_disabled() {
        let cache = ProjectCache::new(10);
        let user = Uuid::new_v4();
        assert_eq!(cache.generation(), None);
        cache.fill(user, cache.generation(), vec![]);
        assert!(cache.get(user).is_none());
        cache.enable();
        cache.fill(user, cache.generation(), vec![]);
        assert!(cache.get(user).is_some());
        cache.disable();
        assert!(cache.get(user).is_none());
        cache.enable();
        assert!(cache.get(user).is_none(), "enabling starts empty");
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let cache = ProjectCache::new(10);
        cache.enable();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let before = cache.generation();
        cache.invalidate(Change::User(b));
        cache.fill(a, before, vec![]);
        assert!(cache.get(a).is_none());
        // Across a disable/enable too (the listener reconnected meanwhile).
        let before = cache.generation();
        cache.disable();
        cache.enable();
        cache.fill(a, before, vec![]);
        assert!(cache.get(a).is_none());
    }

    #[test]
    fn invalidation_by_user_project_and_all() {
        let cache = ProjectCache::new(10);
        cache.enable();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (p, q) = (Uuid::new_v4(), Uuid::new_v4());
        cache.fill(a, cache.generation(), vec![project(p)]);
        cache.fill(b, cache.generation(), vec![project(p), project(q)]);
        cache.fill(c, cache.generation(), vec![project(q)]);
        assert!(cache.get(a).is_some_and(|m| m.role_on(p).is_some()));
        cache.invalidate(Change::Project(p));
        assert!(cache.get(a).is_none() && cache.get(b).is_none());
        assert!(cache.get(c).is_some());
        cache.invalidate(Change::User(c));
        assert!(cache.get(c).is_none());
        cache.fill(a, cache.generation(), vec![]);
        cache.invalidate(Change::All);
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded() {
        let cache = ProjectCache::new(3);
        cache.enable();
        for _ in 0..10 {
            cache.fill(Uuid::new_v4(), cache.generation(), vec![]);
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn payloads() {
        let id = Uuid::new_v4();
        assert_eq!(Change::parse(&format!("u:{id}")), Change::User(id));
        assert_eq!(Change::parse(&format!("p:{id}")), Change::Project(id));
        assert_eq!(Change::parse("*"), Change::All);
        assert_eq!(Change::parse("u:nope"), Change::All);
    }
}
