//! Route tests: every endpoint's success and error paths, on every storage backend.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use common::{TestApp, app, app_with, backends};
use serde_json::{Value, json};
use std::net::SocketAddr;
use time::OffsetDateTime;
use uuid::Uuid;

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    for b in backends() {
        let app = app(&b).await;
        let r = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );

        let r = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["status"], "ready");
        assert_eq!(r.body["database"]["backend"], b.name());
        for part in ["database", "cache", "queue", "storage"] {
            assert_eq!(r.body[part]["status"], "ok", "{part}: {:?}", r.body);
        }

        let r = app.call(Method::GET, "/api/v1/nope", None, None).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
        let r = app.call(Method::PUT, "/healthz", None, None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        );
        let r = app
            .call(Method::DELETE, "/api/v1/projects", Some("x"), None)
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn readiness_reports_the_failing_part() {
    let app = app(&common::Backend::Sqlite).await;
    std::fs::remove_dir_all(app.state.config.storage.local_dir().unwrap()).unwrap();
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["status"], "unavailable");
    assert_eq!(r.body["storage"]["status"], "failed");
    assert_eq!(r.body["database"]["status"], "ok");
}

#[tokio::test]
async fn request_ids_are_set_and_propagated() {
    let app = app(&common::Backend::Sqlite).await;
    let r = app.call(Method::GET, "/healthz", None, None).await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok(), "{id}");
    let req = Request::builder()
        .uri("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
}

#[tokio::test]
async fn bad_bodies_get_json_errors() {
    for b in backends() {
        let app = app_with(&b, |c| c.max_body_bytes = 2048).await;
        let send = |body: &'static str, ctype: Option<&'static str>| {
            let mut req = Request::builder()
                .method(Method::POST)
                .uri("/api/v1/auth/login");
            if let Some(c) = ctype {
                req = req.header("content-type", c);
            }
            app.send(req.body(Body::from(body)).unwrap())
        };
        let r = send("{not json", Some("application/json")).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_json")
        );
        let r = send(r#"{"email":"a@b.co"}"#, Some("application/json")).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("password")
        );
        let r = send(
            r#"{"email":"a@b.co","password":"x","extra":1}"#,
            Some("application/json"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = send(r#"{"email":"a@b.co","password":"x"}"#, None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        );
        let big = format!(r#"{{"email":"{}","password":"x"}}"#, "a".repeat(4000));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(big))
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        // A streamed body without Content-Length is cut at the limit too.
        let chunks: Vec<Result<String, std::io::Error>> = vec![
            Ok("{\"email\":\"".into()),
            Ok("a".repeat(4000)),
            Ok("\"}".into()),
        ];
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from_stream(futures::stream::iter(chunks)))
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
        let r = app
            .call(Method::GET, "/api/v1/projects/not-a-uuid", Some("x"), None)
            .await;
        // Authentication comes first: no token, no details about the path.
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn registration_rules() {
    for b in backends() {
        let app = app(&b).await;
        let r = app
            .register("Ada@Example.com", "correct horse battery")
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["is_admin"], true, "first user is admin");
        assert_eq!(r.body["email"], "Ada@Example.com");
        assert!(r.body.get("password_hash").is_none());
        let r = app
            .register("bob@example.com", "correct horse battery")
            .await;
        assert_eq!(r.body["is_admin"], false);

        let r = app.register("ada@EXAMPLE.com", "another password").await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "email_taken"));
        let r = app.register("carol@example.com", "short").await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "weak_password")
        );
        let r = app.register("carol@example.com", &"p".repeat(129)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = app.register("not-an-email", "correct horse battery").await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_email")
        );
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"email": "dan@example.com", "password": "correct horse battery", "name": "  "})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn closed_registration_still_admits_the_first_user() {
    for b in backends() {
        let app = app_with(&b, |c| c.registration_open = false).await;
        let r = app
            .register("first@example.com", "correct horse battery")
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["is_admin"], true);
        let r = app
            .register("second@example.com", "correct horse battery")
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "registration_closed")
        );
    }
}

#[tokio::test]
async fn login_and_me() {
    for b in backends() {
        let app = app(&b).await;
        let (id, access, refresh) = app.user("ada@example.com").await;
        assert!(refresh.starts_with("hsr_"));
        let r = app.login("ADA@example.com", "correct horse battery").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["token_type"], "Bearer");
        assert_eq!(r.body["expires_in"], 900);

        let r = app.get("/api/v1/me", &access).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["id"], id.as_str());
        assert_eq!(r.body["email"], "ada@example.com");
        assert_eq!(r.body["name"], "ada");

        let wrong = app.login("ada@example.com", "wrong password!").await;
        let unknown = app.login("nobody@example.com", "wrong password!").await;
        for r in [&wrong, &unknown] {
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, "invalid_credentials")
            );
        }
        assert_eq!(
            wrong.body, unknown.body,
            "no hint whether the account exists"
        );

        let r = app.call(Method::GET, "/api/v1/me", None, None).await;
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        for bad in ["garbage", "a.b.c", &format!("{access}x"), "hsp_unknown"] {
            let r = app.get("/api/v1/me", bad).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, "invalid_token"),
                "{bad}"
            );
        }
        // Expired access token.
        let user = Uuid::parse_str(&id).unwrap();
        let old = app
            .state
            .jwt
            .issue(
                user,
                Uuid::new_v4(),
                OffsetDateTime::now_utc() - time::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(
            app.get("/api/v1/me", &old).await.status,
            StatusCode::UNAUTHORIZED
        );
        // Signed with another secret.
        let other = hivesync_backend::auth::Jwt::new(
            b"another-secret-another-secret-0123456789",
            "hivesync",
            std::time::Duration::from_secs(60),
        );
        let forged = other
            .issue(user, Uuid::new_v4(), OffsetDateTime::now_utc())
            .unwrap();
        assert_eq!(
            app.get("/api/v1/me", &forged).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

async fn refresh(app: &TestApp, token: &str) -> common::Reply {
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_session() {
    for b in backends() {
        let app = app(&b).await;
        let (_, access1, refresh1) = app.user("ada@example.com").await;
        let r = refresh(&app, &refresh1).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let refresh2 = r.body["refresh_token"].as_str().unwrap().to_string();
        let access2 = r.body["access_token"].as_str().unwrap().to_string();
        assert_ne!(refresh1, refresh2);
        assert_eq!(app.get("/api/v1/me", &access2).await.status, StatusCode::OK);

        // The spent token comes back: the whole family dies, including its access tokens.
        let r = refresh(&app, &refresh1).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "refresh_token_reused")
        );
        let r = refresh(&app, &refresh2).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        assert_eq!(
            app.get("/api/v1/me", &access1).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.get("/api/v1/me", &access2).await.status,
            StatusCode::UNAUTHORIZED
        );

        // Another session of the same user is untouched.
        let l = app.login("ada@example.com", "correct horse battery").await;
        let other = l.body["access_token"].as_str().unwrap();
        assert_eq!(app.get("/api/v1/me", other).await.status, StatusCode::OK);

        let r = refresh(&app, "hsr_unknown").await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    }
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused() {
    for b in backends() {
        let app = app_with(&b, |c| c.refresh_token_ttl_seconds = 1).await;
        let (_, _, refresh1) = app.user("ada@example.com").await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = refresh(&app, &refresh1).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    for b in backends() {
        let app = app(&b).await;
        let (_, access, refresh_token) = app.user("ada@example.com").await;
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/logout",
                None,
                Some(json!({"refresh_token": refresh_token})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get("/api/v1/me", &access).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = refresh(&app, &refresh_token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // Unknown tokens log out quietly.
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/logout",
                None,
                Some(json!({"refresh_token": "hsr_nothing"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn personal_access_tokens() {
    for b in backends() {
        let app = app(&b).await;
        let (id, access, _) = app.user("ada@example.com").await;
        let (_, bob, _) = app.user("bob@example.com").await;
        let r = app
            .call(
                Method::POST,
                "/api/v1/me/tokens",
                Some(&access),
                Some(json!({"name": "laptop CLI", "expires_in_days": 30})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let pat = r.body["token"].as_str().unwrap().to_string();
        let pat_id = r.body["id"].as_str().unwrap().to_string();
        assert!(pat.starts_with("hsp_"));
        assert!(pat.starts_with(r.body["token_prefix"].as_str().unwrap()));
        assert!(r.body["expires_at"].is_string());

        // Usable as a bearer token.
        let r = app.get("/api/v1/me", &pat).await;
        assert_eq!(
            (r.status, r.body["id"].as_str()),
            (StatusCode::OK, Some(id.as_str()))
        );
        // Listed without the secret, with last use recorded.
        let r = app.get("/api/v1/me/tokens", &access).await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.body.as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].get("token").is_none());
        assert!(list[0]["last_used_at"].is_string());
        assert!(!r.body.to_string().contains(&pat));
        // Other users neither see nor delete it.
        assert_eq!(app.get("/api/v1/me/tokens", &bob).await.body, json!([]));
        let path = format!("/api/v1/me/tokens/{pat_id}");
        let r = app.call(Method::DELETE, &path, Some(&bob), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // Invalid input.
        for body in [
            json!({"name": ""}),
            json!({"name": "x", "expires_in_days": 0}),
            json!({"name": "x", "expires_in_days": 4000}),
        ] {
            let r = app
                .call(Method::POST, "/api/v1/me/tokens", Some(&access), Some(body))
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let r = app
            .call(Method::DELETE, "/api/v1/me/tokens/xyz", Some(&access), None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_path")
        );
        // Deleting revokes at once.
        let r = app.call(Method::DELETE, &path, Some(&access), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get("/api/v1/me", &pat).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = app.call(Method::DELETE, &path, Some(&access), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn expired_personal_tokens_are_refused() {
    use hivesync_backend::auth::{random_token, token_hash};
    use hivesync_backend::store::PersonalAccessToken;
    for b in backends() {
        let app = app(&b).await;
        let (id, _, _) = app.user("ada@example.com").await;
        let token = random_token("hsp_");
        let now = OffsetDateTime::now_utc();
        app.state
            .tokens
            .insert_personal_token(&PersonalAccessToken {
                id: Uuid::now_v7(),
                user_id: Uuid::parse_str(&id).unwrap(),
                name: "old".into(),
                token_hash: token_hash(&token),
                token_prefix: "hsp_".into(),
                created_at: now - time::Duration::days(2),
                expires_at: Some(now - time::Duration::days(1)),
                last_used_at: None,
            })
            .await
            .unwrap();
        let r = app.get("/api/v1/me", &token).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    }
}

#[tokio::test]
async fn auth_endpoints_are_rate_limited_per_address() {
    for b in backends() {
        let app = app_with(&b, |c| c.auth_rate_limit_per_minute = 3).await;
        for _ in 0..3 {
            let r = app.login("nobody@example.com", "whatever pw").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = app.login("nobody@example.com", "whatever pw").await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        );
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        // Another address is not affected, nor is another endpoint.
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"email":"nobody@example.com","password":"whatever pw"}"#,
            ))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 5000))));
        assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);
        let r = refresh(&app, "hsr_x").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

async fn send_forwarded(app: &TestApp, forwarded: &str) -> common::Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/refresh")
        .header("content-type", "application/json")
        .header("x-forwarded-for", forwarded)
        .body(Body::from(r#"{"refresh_token":"hsr_x"}"#))
        .unwrap();
    app.send(req).await
}

#[tokio::test]
async fn forwarded_for_is_used_only_when_trusted() {
    let send = send_forwarded;
    let trusted = app_with(&common::Backend::Sqlite, |c| {
        c.auth_rate_limit_per_minute = 1;
        c.trust_forwarded_for = true;
    })
    .await;
    assert_eq!(
        send(&trusted, "1.1.1.1, 2.2.2.2").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&trusted, "2.2.2.2").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&trusted, "2.2.2.2, 3.3.3.3").await.status,
        StatusCode::UNAUTHORIZED
    );

    let untrusted = app_with(&common::Backend::Sqlite, |c| {
        c.auth_rate_limit_per_minute = 1
    })
    .await;
    assert_eq!(
        send(&untrusted, "1.1.1.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&untrusted, "2.2.2.2").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn project_lifecycle() {
    for b in backends() {
        let app = app(&b).await;
        let (_, ada, _) = app.user("ada@example.com").await;
        let (_, bob, _) = app.user("bob@example.com").await;
        let r = app
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(&ada),
                Some(json!({"name": " storefront ", "description": "the shop"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["name"], "storefront");
        assert_eq!(r.body["role"], "owner");
        let created = r.body.clone();
        let id = r.body["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/projects/{id}");
        app.project(&ada, "second").await;

        let r = app.get("/api/v1/projects", &ada).await;
        let names: Vec<&str> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["second", "storefront"]);
        assert_eq!(app.get("/api/v1/projects", &bob).await.body, json!([]));

        let r = app.get(&path, &ada).await;
        assert_eq!(
            (r.status, r.body["description"].as_str()),
            (StatusCode::OK, Some("the shop"))
        );
        assert_eq!(r.body, created, "a read returns what the create returned");

        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&ada),
                Some(json!({"name": "shop"})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["name"].as_str()),
            (StatusCode::OK, Some("shop"))
        );
        assert_eq!(r.body["description"], "the shop", "absent field kept");
        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&ada),
                Some(json!({"description": null})),
            )
            .await;
        assert_eq!(r.body["description"], Value::Null, "null clears");
        assert_eq!(r.body["name"], "shop");
        for bad in [
            json!({"name": ""}),
            json!({"name": "x".repeat(101)}),
            json!({"owner": "me"}),
        ] {
            let r = app.call(Method::PATCH, &path, Some(&ada), Some(bad)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let r = app
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(&ada),
                Some(json!({"name": ""})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

        // A non-member cannot tell the project exists.
        let hidden = app.get(&path, &bob).await;
        let missing = app
            .get(&format!("/api/v1/projects/{}", Uuid::new_v4()), &bob)
            .await;
        assert_eq!(
            (hidden.status, missing.status),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
        );
        assert_eq!(hidden.body, missing.body);

        let r = app.call(Method::DELETE, &path, Some(&ada), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get(&path, &ada).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.get("/api/v1/projects", &ada)
                .await
                .body
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn members_and_roles() {
    for b in backends() {
        let app = app(&b).await;
        let (ada_id, ada, _) = app.user("ada@example.com").await;
        let (bob_id, bob, _) = app.user("bob@example.com").await;
        let project = app.project(&ada, "p").await;
        let pid = Uuid::parse_str(&project).unwrap();
        let bob_path = format!("/api/v1/projects/{project}/members/{bob_id}");
        let ada_path = format!("/api/v1/projects/{project}/members/{ada_id}");

        let r = app
            .call(
                Method::PUT,
                &bob_path,
                Some(&ada),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(
            (r.body["role"].as_str(), r.body["email"].as_str()),
            (Some("viewer"), Some("bob@example.com"))
        );
        // Bob now sees it, as viewer.
        let r = app.get(&format!("/api/v1/projects/{project}"), &bob).await;
        assert_eq!(r.body["role"], "viewer");
        let r = app
            .call(
                Method::PUT,
                &bob_path,
                Some(&ada),
                Some(json!({"role": "maintainer"})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["role"].as_str()),
            (StatusCode::OK, Some("maintainer"))
        );
        let r = app
            .call(
                Method::PUT,
                &bob_path,
                Some(&ada),
                Some(json!({"role": "maintainer"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "unchanged role is fine");
        let r = app
            .call(
                Method::PUT,
                &bob_path,
                Some(&ada),
                Some(json!({"role": "emperor"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{project}/members/{}", Uuid::new_v4()),
                Some(&ada),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));

        let r = app
            .get(&format!("/api/v1/projects/{project}/members"), &bob)
            .await;
        let roles: Vec<(&str, &str)> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [
                ("ada@example.com", "owner"),
                ("bob@example.com", "maintainer")
            ]
        );

        // The last owner can neither be demoted nor removed.
        let r = app
            .call(
                Method::PUT,
                &ada_path,
                Some(&ada),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "last_owner"));
        let r = app.call(Method::DELETE, &ada_path, Some(&ada), None).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "last_owner"));
        // With a second owner, the first may step down.
        app.call(
            Method::PUT,
            &bob_path,
            Some(&ada),
            Some(json!({"role": "owner"})),
        )
        .await;
        let r = app
            .call(
                Method::PUT,
                &ada_path,
                Some(&ada),
                Some(json!({"role": "reviewer"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        // A member may leave by themselves.
        let r = app.call(Method::DELETE, &ada_path, Some(&ada), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get(&format!("/api/v1/projects/{project}"), &ada)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let r = app.call(Method::DELETE, &ada_path, Some(&bob), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "no longer a member");

        // Every member change is in the event log, in order (after `project.created`).
        let events: Vec<_> = app
            .state
            .event_log
            .events_after(pid, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.starts_with("member."))
            .collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "member.added",
                "member.role_changed",
                "member.role_changed",
                "member.role_changed",
                "member.removed"
            ]
        );
        assert!(events.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(events[0].payload["user_id"], bob_id.as_str());
        assert_eq!(
            events[0].actor_id.map(|a| a.to_string()),
            Some(ada_id.clone())
        );
        let later = app
            .state
            .event_log
            .events_after(pid, events[2].id, 100)
            .await
            .unwrap();
        assert_eq!(later.len(), 2);
        // Per user: bob (still a member) sees all of them; ada (who left) none.
        let bob_uuid = Uuid::parse_str(&bob_id).unwrap();
        let ada_uuid = Uuid::parse_str(&ada_id).unwrap();
        let log = &app.state.event_log;
        assert_eq!(
            log.events_for_user_after(bob_uuid, events[0].id - 1, 100)
                .await
                .unwrap(),
            events
        );
        assert_eq!(
            log.events_for_user_after(bob_uuid, events[3].id, 1)
                .await
                .unwrap(),
            events[4..]
        );
        assert!(
            log.events_for_user_after(ada_uuid, 0, 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn concurrent_demotions_keep_an_owner() {
    for b in backends() {
        let app = app(&b).await;
        let (ada_id, ada, _) = app.user("ada@example.com").await;
        let (bob_id, bob, _) = app.user("bob@example.com").await;
        for round in 0..5 {
            let project = app.project(&ada, &format!("p{round}")).await;
            let bob_path = format!("/api/v1/projects/{project}/members/{bob_id}");
            let ada_path = format!("/api/v1/projects/{project}/members/{ada_id}");
            let r = app
                .call(
                    Method::PUT,
                    &bob_path,
                    Some(&ada),
                    Some(json!({"role": "owner"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
            // Each owner steps down at the same moment: exactly one may.
            let (a, b2) = tokio::join!(
                app.call(
                    Method::PUT,
                    &ada_path,
                    Some(&ada),
                    Some(json!({"role": "viewer"}))
                ),
                app.call(
                    Method::PUT,
                    &bob_path,
                    Some(&bob),
                    Some(json!({"role": "viewer"}))
                ),
            );
            let mut statuses = [a.status, b2.status];
            statuses.sort();
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::CONFLICT],
                "{} round {round}",
                b.name()
            );
            let members = app
                .get(&format!("/api/v1/projects/{project}/members"), &ada)
                .await;
            let owners = members
                .body
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "owner")
                .count();
            assert_eq!(owners, 1);
        }
    }
}
