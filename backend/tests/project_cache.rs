//! The membership cache (`store::project_cache`) across instances: two apps share one database
//! (SQLite file, or PostgreSQL schema when `DATABASE_URL` is set), as instances behind a load
//! balancer do. A change through one — member added, role changed, project renamed, member
//! removed, project deleted — is seen at once by the writing instance and, within a bounded
//! wait (PostgreSQL notifications, the SQLite change counter), by the other, whose cache held
//! the old answer. A removal that the other instance kept serving would be a security bug.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, app, backends, peer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Longest wait for another instance to hear of a change.
const PROPAGATION: Duration = Duration::from_secs(5);

/// Waits until `app` (with the cache on) answers what `check` wants.
async fn eventually(app: &TestApp, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} not seen within {PROPAGATION:?}",
            app.backend.name()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_cache(app: &TestApp) {
    eventually(app, "membership cache on", async || {
        app.state.sql.project_cache().is_enabled()
    })
    .await;
}

async fn list(app: &TestApp, token: &str) -> Vec<(String, String, String)> {
    let r = app.get("/api/v1/projects", token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("id"), s("name"), s("role"))
        })
        .collect()
}

async fn get_project(app: &TestApp, token: &str, id: &str) -> (StatusCode, Value) {
    let r = app.get(&format!("/api/v1/projects/{id}"), token).await;
    (r.status, r.body)
}

#[tokio::test]
async fn changes_through_one_instance_reach_the_other() {
    for b in backends() {
        let a = app(&b).await;
        let other = peer(&a).await;
        wait_for_cache(&a).await;
        wait_for_cache(&other).await;
        let (_, alice) = {
            let (id, token, _) = a.user("alice@example.com").await;
            (id, token)
        };
        let (bob_id, bob, _) = a.user("bob@example.com").await;
        let project = a.project(&alice, "shared").await;
        let members = format!("/api/v1/projects/{project}/members/{bob_id}");

        // Both instances cache bob's (empty) memberships and refuse him the project.
        assert!(list(&a, &bob).await.is_empty());
        assert!(list(&other, &bob).await.is_empty());
        assert_eq!(
            get_project(&other, &bob, &project).await.0,
            StatusCode::NOT_FOUND
        );
        assert!(!other.state.sql.project_cache().is_empty(), "{}", b.name());

        // Added as a viewer through `a`: at once on `a`, soon on `other`.
        let r = a
            .call(
                Method::PUT,
                &members,
                Some(&alice),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
        let want = vec![(project.clone(), "shared".to_string(), "viewer".to_string())];
        assert_eq!(list(&a, &bob).await, want, "{}", b.name());
        eventually(&other, "member added", async || {
            list(&other, &bob).await == want
        })
        .await;
        assert_eq!(get_project(&other, &bob, &project).await.0, StatusCode::OK);
        let rename = json!({"name": "by bob"});
        let r = other
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{project}"),
                Some(&bob),
                Some(rename.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", b.name());

        // Promoted to maintainer through `a`: `other` lets him edit.
        let r = a
            .call(
                Method::PUT,
                &members,
                Some(&alice),
                Some(json!({"role": "maintainer"})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
        assert_eq!(list(&a, &bob).await[0].2, "maintainer");
        eventually(&other, "role changed", async || {
            list(&other, &bob).await[0].2 == "maintainer"
        })
        .await;
        let r = other
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{project}"),
                Some(&bob),
                Some(rename),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {:?}", b.name(), r.body);
        // That rename went through `other`: at once there, soon on `a` (alice's cached list).
        assert_eq!(list(&other, &bob).await[0].1, "by bob");
        eventually(&a, "rename through the other instance", async || {
            list(&a, &alice).await[0].1 == "by bob"
        })
        .await;

        // Renamed through `a`.
        let r = a
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{project}"),
                Some(&alice),
                Some(json!({"name": "renamed"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(
            get_project(&a, &bob, &project).await.1["name"],
            "renamed",
            "{}",
            b.name()
        );
        eventually(&other, "rename", async || {
            get_project(&other, &bob, &project).await.1["name"] == "renamed"
        })
        .await;

        // Removed through `a`: access ends at once on `a` and soon on `other`, for good.
        let r = a.call(Method::DELETE, &members, Some(&alice), None).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        assert_eq!(
            get_project(&a, &bob, &project).await.0,
            StatusCode::NOT_FOUND,
            "{}",
            b.name()
        );
        assert!(list(&a, &bob).await.is_empty());
        eventually(&other, "member removed", async || {
            get_project(&other, &bob, &project).await.0 == StatusCode::NOT_FOUND
        })
        .await;
        assert!(list(&other, &bob).await.is_empty());
        let r = other
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{project}"),
                Some(&bob),
                Some(json!({"name": "still mine?"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", b.name());

        // Deleted through `a` while both instances have it cached for alice.
        assert_eq!(list(&other, &alice).await.len(), 1);
        let r = a
            .call(
                Method::DELETE,
                &format!("/api/v1/projects/{project}"),
                Some(&alice),
                None,
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
        assert!(list(&a, &alice).await.is_empty());
        eventually(&other, "project deleted", async || {
            list(&other, &alice).await.is_empty()
        })
        .await;
        assert_eq!(
            get_project(&other, &alice, &project).await.0,
            StatusCode::NOT_FOUND
        );
        drop(other);
    }
}

/// A change made behind the store's back (another process, a migration, an operator's SQL)
/// still reaches the cache: through the PostgreSQL triggers or the SQLite change counter.
#[tokio::test]
async fn changes_made_in_sql_reach_the_cache() {
    for b in backends() {
        let a = app(&b).await;
        wait_for_cache(&a).await;
        let (_, alice, _) = a.user("alice@example.com").await;
        let (bob_id, bob, _) = a.user("bob@example.com").await;
        let project = a.project(&alice, "p").await;
        let r = a
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{project}/members/{bob_id}"),
                Some(&alice),
                Some(json!({"role": "reviewer"})),
            )
            .await;
        assert!(r.status.is_success());
        assert_eq!(get_project(&a, &bob, &project).await.0, StatusCode::OK);
        sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
            .bind(&project)
            .bind(&bob_id)
            .execute(a.state.sql.pool())
            .await
            .unwrap();
        eventually(&a, "removal made in SQL", async || {
            get_project(&a, &bob, &project).await.0 == StatusCode::NOT_FOUND
        })
        .await;
        sqlx::query("UPDATE projects SET name = 'sql' WHERE id = $1")
            .bind(&project)
            .execute(a.state.sql.pool())
            .await
            .unwrap();
        eventually(&a, "rename made in SQL", async || {
            list(&a, &alice).await[0].1 == "sql"
        })
        .await;
    }
}
