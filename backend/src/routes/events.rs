//! The event routes: `GET /api/v1/projects/{id}/events?after=ID` (polling, any member) and
//! `GET /api/v1/events` (Server-Sent Events of every project the caller is a member of,
//! resuming after `Last-Event-ID`).
//!
//! The stream treats a published event only as a wake-up: what it sends always comes from the
//! log ([`crate::store::EventLog::events_for_user_after`]), so it sends ids in increasing order
//! with no gaps and no duplicates, and the database decides what the caller may see at the
//! moment it reads. This is correct because the log hands out ids in commit order (see
//! `SqlStore::append_event`): when the message for event N arrives, every event below N is
//! readable. Published notices (`id` 0, e.g. `project.deleted`, whose log is gone) are
//! forwarded without an SSE `id`, only to members of that project.

use crate::auth::Ctx;
use crate::authz::require_role;
use crate::error::{AppError, ErrorBody, Json, Path, Query};
use crate::events::RESYNC;
use crate::state::AppState;
use crate::store::{Event, Role};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Events per page of the polling route (and per read of the stream's catch-up).
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// The stream also reads the log this often without a wake-up: a safety net for messages lost
/// while the broker connection was down.
const CATCH_UP_EVERY: Duration = Duration::from_secs(30);
/// Comment lines keep idle connections (and proxies) from timing out.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a larger id (default 0: from the start of the log).
    pub after: Option<i64>,
    /// At most this many events (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// One page of a project's log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<Event>,
    /// Pass as `after` to get the next page: the last event's id, or the `after` given.
    pub last_id: i64,
    /// Whether there may be more events right after this page.
    pub more: bool,
}

fn check_after(after: Option<i64>) -> Result<i64, AppError> {
    match after {
        None => Ok(0),
        Some(a) if a >= 0 => Ok(a),
        Some(_) => Err(AppError::invalid("after must be 0 or a positive event id")),
    }
}

#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/events", tag = "events",
    security(("bearer" = [])),
    params(("project_id" = Uuid, Path, description = "Project id"), EventsQuery),
    responses(
        (status = 200, description = "The project's events after `after`, oldest first (any member)", body = EventPage),
        (status = 400, description = "Malformed id or query", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such project, or the caller is not a member", body = ErrorBody),
        (status = 422, description = "Negative `after` or a `limit` of 0", body = ErrorBody),
    )
)]
pub async fn project_events(
    ctx: Ctx,
    Path(project_id): Path<Uuid>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventPage>, AppError> {
    require_role(&ctx, project_id, Role::Viewer).await?;
    let after = check_after(q.after)?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(AppError::invalid("limit must be at least 1")),
        Some(l) => l.min(MAX_LIMIT),
    };
    let events = ctx
        .state
        .event_log
        .events_after(project_id, after, limit)
        .await?;
    let last_id = events.last().map_or(after, |e| e.id);
    let more = events.len() == limit as usize;
    Ok(Json(EventPage {
        events,
        last_id,
        more,
    }))
}

/// Where the stream starts: `Last-Event-ID` (what a reconnecting `EventSource` sends), else
/// `?after=`, else "from now on".
fn resume_point(headers: &HeaderMap, after: Option<i64>) -> Result<Option<i64>, AppError> {
    if let Some(v) = headers.get("last-event-id") {
        let id = v
            .to_str()
            .ok()
            .map(str::trim)
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|id| *id >= 0)
            .ok_or_else(|| AppError::BadRequest {
                code: "bad_request",
                message: "Last-Event-ID must be an event id (a non-negative integer)".into(),
            })?;
        return Ok(Some(id));
    }
    after.map(|a| check_after(Some(a))).transpose()
}

#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    security(("bearer" = [])),
    params(
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (sent by a reconnecting EventSource)"),
        ("after" = Option<i64>, Query, description = "Resume after this event id when the header cannot be set; without either the stream starts with the next new event"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: every event of every project the caller is a member of, oldest first; each `data:` is an Event as JSON and each `id:` its id. Notices without an `id:` (`project.deleted`) are not in the log. Comment lines keep the connection alive. The stream ends when the token it was opened with expires or its session is logged out: reconnect with a fresh token and `Last-Event-ID`.", content_type = "text/event-stream", body = Event),
        (status = 400, description = "Malformed Last-Event-ID or after", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 422, description = "Negative `after`", body = ErrorBody),
    )
)]
pub async fn event_stream(
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, AppError> {
    let resume = resume_point(&headers, q.after)?;
    // Subscribe before reading the log, so nothing published in between is missed.
    let live = ctx.state.events.subscribe();
    let last_id = match resume {
        Some(id) => id,
        None => ctx.state.event_log.latest_event_id().await?,
    };
    let projects = member_projects(&ctx.state, ctx.user.id).await?;
    let (tx, rx) = mpsc::channel::<SseEvent>(64);
    let follower = Follower {
        state: ctx.state.clone(),
        user_id: ctx.user.id,
        credential: ctx.user.credential,
        expires_at: ctx.user.expires_at,
        last_id,
        projects,
        tx,
    };
    tokio::spawn(follower.run(live));
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_EVERY)))
}

/// Read from the database, not the membership cache: a `member.*` event that makes a stream
/// reload may reach this instance before the database's change notification does.
async fn member_projects(state: &AppState, user_id: Uuid) -> Result<HashSet<Uuid>, AppError> {
    Ok(state
        .sql
        .projects_of_uncached(user_id)
        .await?
        .into_iter()
        .map(|(p, _)| p.id)
        .collect())
}

/// What a published message means for one stream.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    Nothing,
    /// An event of one of the caller's projects: read the log.
    Read,
    /// The caller's memberships may have changed (or messages were lost): reload them, then
    /// read the log.
    Reload,
    /// A notice for a project the caller is a member of: forward as is.
    Forward,
}

/// One SSE connection's task: sends the log's events the caller may see, woken by published
/// messages, until the client goes away, the server shuts down, or the caller's credential
/// expires or is revoked.
struct Follower {
    state: AppState,
    user_id: Uuid,
    /// The stream ends when this login session is revoked (checked at each wake-up) …
    credential: crate::auth::Credential,
    /// … and when the token it was opened with expires; the client reconnects with a fresh
    /// token and `Last-Event-ID`.
    expires_at: Option<time::OffsetDateTime>,
    last_id: i64,
    projects: HashSet<Uuid>,
    tx: mpsc::Sender<SseEvent>,
}

impl Follower {
    fn classify(&self, event: &Event) -> Wake {
        if event.kind == RESYNC {
            return Wake::Reload;
        }
        let mine = self.projects.contains(&event.project_id);
        if event.id == 0 {
            return if mine { Wake::Forward } else { Wake::Nothing };
        }
        let about_me = event.payload.get("user_id").and_then(|v| v.as_str())
            == Some(self.user_id.to_string().as_str())
            || (event.kind.starts_with("project.") && event.actor_id == Some(self.user_id));
        if about_me {
            Wake::Reload
        } else if mine {
            Wake::Read
        } else {
            Wake::Nothing
        }
    }

    async fn run(mut self, live: broadcast::Receiver<Event>) {
        let metrics = self.state.metrics.clone();
        metrics.stream_opened();
        self.follow(live).await;
        metrics.stream_closed();
    }

    /// Whether the credential the stream was opened with is still good: not expired, and
    /// (for an access token) its session not logged out.
    async fn authorized(&self) -> bool {
        if self
            .expires_at
            .is_some_and(|exp| exp <= crate::store::now())
        {
            return false;
        }
        match self.credential {
            crate::auth::Credential::Session(sid) => !matches!(
                self.state
                    .ephemeral
                    .get(&crate::auth::revoked_session_key(sid))
                    .await,
                Ok(Some(_))
            ),
            crate::auth::Credential::PersonalToken(_) => true,
        }
    }

    async fn follow(&mut self, mut live: broadcast::Receiver<Event>) {
        let mut shutdown = self.state.shutdown.clone();
        let expiry = match self.expires_at {
            Some(exp) => {
                let left = (exp - crate::store::now()).max(time::Duration::ZERO);
                tokio::time::Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
            }
            None => tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600),
        };
        let expiry = tokio::time::sleep_until(expiry);
        tokio::pin!(expiry);
        let mut timer = tokio::time::interval(CATCH_UP_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut wake = Wake::Read; // the replay from the resume point
        loop {
            if wake != Wake::Nothing && !self.authorized().await {
                return;
            }
            if self
                .handle(std::mem::replace(&mut wake, Wake::Nothing))
                .await
                .is_err()
            {
                return;
            }
            if *shutdown.borrow() {
                return;
            }
            let first = tokio::select! {
                _ = self.tx.closed() => return,
                _ = &mut expiry => return,
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
                _ = timer.tick() => Ok(None),
                msg = live.recv() => msg.map(Some),
            };
            // Coalesce a burst: classify everything already queued, read the log once.
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Ok(None) => wake = max_wake(wake, Wake::Read),
                    Ok(Some(event)) => match self.classify(&event) {
                        Wake::Forward => {
                            if self.forward(&event).await.is_err() {
                                return;
                            }
                        }
                        w => wake = max_wake(wake, w),
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "event stream lagged; reading the log");
                        wake = Wake::Reload;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                next = match live.try_recv() {
                    Ok(e) => Some(Ok(Some(e))),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(broadcast::error::RecvError::Lagged(n)))
                    }
                    Err(_) => None,
                };
            }
        }
    }

    async fn forward(&mut self, event: &Event) -> Result<(), ()> {
        if event.kind == "project.deleted" {
            self.projects.remove(&event.project_id);
        }
        let sse = SseEvent::default()
            .json_data(event)
            .map_err(|e| tracing::warn!(error = %e, "event not serialisable"))?;
        self.tx.send(sse).await.map_err(|_| ())
    }

    /// Reads the log after `last_id` (reloading memberships first when asked) and sends it.
    /// `Err` when the client has gone.
    async fn handle(&mut self, wake: Wake) -> Result<(), ()> {
        if wake == Wake::Nothing {
            return Ok(());
        }
        if wake == Wake::Reload {
            match member_projects(&self.state, self.user_id).await {
                Ok(p) => self.projects = p,
                Err(e) => tracing::warn!(error = %e, "event stream: memberships not reloaded"),
            }
        }
        loop {
            let page = match self
                .state
                .event_log
                .events_for_user_after(self.user_id, self.last_id, MAX_LIMIT)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    // The next wake-up or the periodic catch-up tries again.
                    tracing::warn!(error = %e, "event stream: log not readable");
                    return Ok(());
                }
            };
            let full = page.len() == MAX_LIMIT as usize;
            for event in page {
                let sse = SseEvent::default()
                    .id(event.id.to_string())
                    .json_data(&event)
                    .map_err(|e| tracing::warn!(error = %e, "event not serialisable"))?;
                self.tx.send(sse).await.map_err(|_| ())?;
                self.last_id = event.id;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

fn max_wake(a: Wake, b: Wake) -> Wake {
    match (a, b) {
        (Wake::Reload, _) | (_, Wake::Reload) => Wake::Reload,
        (Wake::Read, _) | (_, Wake::Read) => Wake::Read,
        _ => Wake::Nothing,
    }
}
