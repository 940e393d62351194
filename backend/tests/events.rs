//! The event log and its delivery: what the project routes record, polling with `after`,
//! the SSE stream (replay after `Last-Event-ID`, then live), that nobody sees the events of a
//! project they are not a member of, and `/metrics`. On SQLite always, on PostgreSQL when
//! `DATABASE_URL` is set; delivery through RabbitMQ and ephemeral data in Redis when
//! `AMQP_URL` / `REDIS_URL` are set.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::{Body, BodyDataStream};
use axum::http::{Method, Request, StatusCode};
use common::{TestApp, app, app_with, backends};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

fn kinds(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

/// Registers `other@…` and adds them to the project with `role`; returns (id, token).
async fn member(
    app: &TestApp,
    owner: &str,
    project: &str,
    email: &str,
    role: &str,
) -> (String, String) {
    let (id, token, _) = app.user(email).await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/projects/{project}/members/{id}"),
            Some(owner),
            Some(json!({ "role": role })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (id, token)
}

#[tokio::test]
async fn project_and_member_changes_are_logged_and_polled_in_order() {
    for b in backends() {
        let app = app(&b).await;
        let (owner_id, owner, _) = app.user("owner@example.com").await;
        let p = app.project(&owner, "shop").await;
        let (vid, viewer) = member(&app, &owner, &p, "viewer@example.com", "viewer").await;
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{p}/members/{vid}"),
                Some(&owner),
                Some(json!({ "role": "reviewer" })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{p}"),
                Some(&owner),
                Some(json!({ "name": "store" })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);

        let page = app
            .get(&format!("/api/v1/projects/{p}/events"), &viewer)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}: {:?}", b.name(), page.body);
        let events = &page.body["events"];
        assert_eq!(
            kinds(events),
            [
                "project.created",
                "member.added",
                "member.role_changed",
                "project.updated"
            ],
            "{}",
            b.name()
        );
        let ids: Vec<i64> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(page.body["last_id"], ids[3]);
        assert_eq!(page.body["more"], false);
        assert_eq!(events[0]["actor_id"], owner_id);
        assert_eq!(events[0]["project_id"], p);
        assert_eq!(events[0]["payload"]["name"], "shop");
        assert_eq!(events[2]["payload"]["user_id"], vid);
        assert_eq!(events[2]["payload"]["role"], "reviewer");
        assert_eq!(events[2]["payload"]["previous_role"], "viewer");

        // Paging: `after` and `limit`.
        let page = app
            .get(
                &format!("/api/v1/projects/{p}/events?after={}&limit=2", ids[0]),
                &viewer,
            )
            .await;
        assert_eq!(
            kinds(&page.body["events"]),
            ["member.added", "member.role_changed"]
        );
        assert_eq!(page.body["last_id"], ids[2]);
        assert_eq!(page.body["more"], true);
        let page = app
            .get(
                &format!("/api/v1/projects/{p}/events?after={}", ids[3]),
                &viewer,
            )
            .await;
        assert_eq!(page.body["events"], json!([]));
        assert_eq!(
            page.body["last_id"], ids[3],
            "an empty page keeps the position"
        );

        // Removal is logged; the removed member can no longer poll.
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/projects/{p}/members/{vid}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let page = app
            .get(
                &format!("/api/v1/projects/{p}/events?after={}", ids[3]),
                &owner,
            )
            .await;
        assert_eq!(kinds(&page.body["events"]), ["member.removed"]);
        let r = app
            .get(&format!("/api/v1/projects/{p}/events"), &viewer)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn polling_checks_membership_and_arguments() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let (_, stranger, _) = app.user("stranger@example.com").await;
        let p = app.project(&owner, "shop").await;
        let path = format!("/api/v1/projects/{p}/events");
        let r = app.get(&path, &stranger).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "no existence leak");
        assert_eq!(r.code(), "not_found");
        let r = app.call(Method::GET, &path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = app.get(&format!("{path}?after=-1"), &owner).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = app.get(&format!("{path}?limit=0"), &owner).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = app.get(&format!("{path}?after=x"), &owner).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = app.get("/api/v1/projects/not-a-uuid/events", &owner).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

/// An open SSE response, read frame by frame.
struct Stream {
    body: BodyDataStream,
    buf: String,
}

/// One SSE frame: its `id:` (if any) and its `data:` as JSON.
#[derive(Debug)]
struct Frame {
    id: Option<i64>,
    data: Value,
}

impl Stream {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Stream {
        let mut req = Request::builder()
            .uri("/api/v1/events")
            .header("authorization", format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = app
            .router
            .clone()
            .oneshot_with_peer(app, req.body(Body::empty()).unwrap())
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            body: resp.into_body().into_data_stream(),
            buf: String::new(),
        }
    }

    /// The next frame with data (keep-alive comments are skipped); fails after 10 s.
    async fn next(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Frame {
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream is open")
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

trait OneshotWithPeer {
    async fn oneshot_with_peer(self, app: &TestApp, req: Request<Body>)
    -> axum::response::Response;
}

impl OneshotWithPeer for axum::Router {
    async fn oneshot_with_peer(
        self,
        app: &TestApp,
        mut req: Request<Body>,
    ) -> axum::response::Response {
        use tower::ServiceExt;
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(app.peer));
        self.oneshot(req).await.unwrap()
    }
}

async fn rename(app: &TestApp, token: &str, project: &str, name: &str) {
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(token),
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn the_stream_replays_after_last_event_id_then_follows_live() {
    for b in backends() {
        let app = app(&b).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let p = app.project(&owner, "one").await;
        rename(&app, &owner, &p, "two").await;

        // From the start of the log: both past events, in order, with their ids.
        let mut s = Stream::open(&app, &owner, Some("0")).await;
        let first = s.next().await;
        assert_eq!(first.data["kind"], "project.created", "{}", b.name());
        assert_eq!(first.id, first.data["id"].as_i64());
        let second = s.next().await;
        assert_eq!(second.data["kind"], "project.updated");
        assert_eq!(second.data["payload"]["name"], "two");
        // Then live.
        rename(&app, &owner, &p, "three").await;
        let third = s.next().await;
        assert_eq!(third.data["payload"]["name"], "three");
        assert!(first.id < second.id && second.id < third.id);

        // Resuming after the second event gives exactly the third, then live again.
        let mut resumed = Stream::open(&app, &owner, Some(&second.id.unwrap().to_string())).await;
        assert_eq!(resumed.next().await.id, third.id);
        rename(&app, &owner, &p, "four").await;
        assert_eq!(resumed.next().await.data["payload"]["name"], "four");
        assert_eq!(s.next().await.data["payload"]["name"], "four");

        // Without Last-Event-ID the stream starts with the next new event.
        let mut fresh = Stream::open(&app, &owner, None).await;
        rename(&app, &owner, &p, "five").await;
        assert_eq!(fresh.next().await.data["payload"]["name"], "five");
    }
}

#[tokio::test]
async fn streams_only_carry_the_callers_projects() {
    for b in backends() {
        let app = app(&b).await;
        let (_, alice, _) = app.user("alice@example.com").await;
        let (bob_id, bob, _) = app.user("bob@example.com").await;
        let secret = app.project(&alice, "secret").await;
        let bobs = app.project(&bob, "bobs").await;

        let mut bob_stream = Stream::open(&app, &bob, Some("0")).await;
        // Bob's replay holds only his own project's events.
        let f = bob_stream.next().await;
        assert_eq!(f.data["project_id"], bobs, "{}", b.name());
        assert_eq!(f.data["kind"], "project.created");
        // Alice's project changes; then Bob's: the next thing Bob sees is his own event.
        rename(&app, &alice, &secret, "still secret").await;
        rename(&app, &bob, &bobs, "bobs2").await;
        let f = bob_stream.next().await;
        assert_eq!(f.data["project_id"], bobs);
        assert_eq!(f.data["payload"]["name"], "bobs2");

        // Once Alice adds Bob, he sees that and what follows (not the history before it).
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{secret}/members/{bob_id}"),
                Some(&alice),
                Some(json!({ "role": "viewer" })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let f = bob_stream.next().await;
        assert_eq!(f.data["kind"], "member.added");
        assert_eq!(f.data["project_id"], secret);
        rename(&app, &alice, &secret, "shared").await;
        assert_eq!(bob_stream.next().await.data["payload"]["name"], "shared");

        // Deleting the project reaches the open stream as a notice without an id.
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/projects/{secret}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let f = bob_stream.next().await;
        assert_eq!(f.data["kind"], "project.deleted");
        assert_eq!(f.data["project_id"], secret);
        assert_eq!(f.id, None, "notices are not in the log");

        // A stranger's replay from the start of the log has nothing of either project.
        let (_, carol, _) = app.user("carol@example.com").await;
        let mut carol_stream = Stream::open(&app, &carol, Some("0")).await;
        let own = app.project(&carol, "carols").await;
        let f = carol_stream.next().await;
        assert_eq!(f.data["project_id"], own);
    }
}

#[tokio::test]
async fn the_stream_rejects_bad_resume_points_and_anonymous_callers() {
    let app = app(&common::Backend::Sqlite).await;
    let (_, token, _) = app.user("a@example.com").await;
    let r = app.call(Method::GET, "/api/v1/events", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let req = Request::builder()
        .uri("/api/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .header("last-event-id", "abc")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID")
    );
    let r = app.get("/api/v1/events?after=-5", &token).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = app(&common::Backend::Sqlite).await;
    let (_, token, _) = app.user("a@example.com").await;
    let p = app.project(&token, "x").await;
    app.get(&format!("/api/v1/projects/{p}"), &token).await;
    app.get("/no/such/path", &token).await;
    let req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot_with_peer(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(
            "hivesync_http_requests_total{method=\"GET\",route=\"/api/v1/projects/{project_id}\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/projects\",status=\"201\""),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "{text}"
    );
    assert!(!text.contains(&p), "raw paths never become labels");
    assert!(text.contains("hivesync_http_request_duration_seconds_bucket{"));
    assert!(text.contains("hivesync_events_published_total 1"));
}

#[tokio::test]
async fn readiness_reports_each_part() {
    let app = app(&common::Backend::Sqlite).await;
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "ready");
    let cache = if std::env::var("REDIS_URL").is_ok() {
        "redis"
    } else {
        "memory"
    };
    let queue = if std::env::var("AMQP_URL").is_ok() {
        "rabbitmq"
    } else {
        "in-process"
    };
    assert_eq!(r.body["database"]["backend"], "sqlite");
    assert_eq!(r.body["cache"]["backend"], cache);
    assert_eq!(r.body["queue"]["backend"], queue);
    assert_eq!(r.body["storage"]["backend"], "file");
    for part in ["database", "cache", "queue", "storage"] {
        assert_eq!(r.body[part]["status"], "ok", "{part}");
    }
}

impl Stream {
    /// Reads until the server ends the response; fails if it is still open after 10 s.
    async fn ended(&mut self) {
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("the stream ends within 10 s");
            match chunk {
                None => return,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("stream failed instead of ending: {e}"),
            }
        }
    }
}

#[tokio::test]
async fn streams_end_when_the_token_expires_or_the_session_is_logged_out() {
    for b in backends() {
        // Access tokens live 4 s: the stream delivers while the token is valid, then ends.
        let app = app_with(&b, |c| c.access_token_ttl_seconds = 4).await;
        let (_, owner, refresh) = app.user("owner@example.com").await;
        let p = app.project(&owner, "one").await;
        let mut s = Stream::open(&app, &owner, None).await;
        rename(&app, &owner, &p, "two").await;
        assert_eq!(
            s.next().await.data["payload"]["name"],
            "two",
            "{}",
            b.name()
        );
        s.ended().await;
        // The client reconnects with a fresh token and Last-Event-ID, missing nothing.
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": refresh})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let fresh = r.body["access_token"].as_str().unwrap().to_string();
        let last = app
            .get(&format!("/api/v1/projects/{p}/events"), &fresh)
            .await
            .body["events"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let mut s = Stream::open(&app, &fresh, Some(&(last - 1).to_string())).await;
        assert_eq!(s.next().await.id, Some(last), "{}", b.name());

        // Logging out ends the stream of that session at its next wake-up.
        let plain = common::app(&b).await;
        let (_, owner, refresh) = plain.user("owner@example.com").await;
        let p = plain.project(&owner, "one").await;
        let (_, other) = member(&plain, &owner, &p, "other@example.com", "maintainer").await;
        let mut s = Stream::open(&plain, &owner, None).await;
        let r = plain
            .call(
                Method::POST,
                "/api/v1/auth/logout",
                Some(&owner),
                Some(json!({"refresh_token": refresh})),
            )
            .await;
        assert!(r.status.is_success(), "{}: {}", r.status, r.body);
        rename(&plain, &other, &p, "wake").await;
        s.ended().await;
    }
}
