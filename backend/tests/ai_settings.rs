//! Per-project AI provider settings over the HTTP API, on SQLite and (with `DATABASE_URL`)
//! PostgreSQL: the offline default, owners set them, maintainers read them, the API key is
//! write-only (kept, replaced or removed; never in a response or an event), bad values are 422
//! naming the field, and jobs load the stored key.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app, backends};
use hivesync_backend::ai::settings::{AiSettingsStore, load};
use hivesync_backend::ai::{ProviderKind, provider_for};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const KEY: &str = "sk-project-key-0123456789";

#[tokio::test]
async fn settings_round_trip_with_a_write_only_key() {
    for backend in backends() {
        let app = app(&backend).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let (maintainer_id, maintainer, _) = app.user("maint@example.com").await;
        let project = app.project(&owner, "ai").await;
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/projects/{project}/members/{maintainer_id}"),
                Some(&owner),
                Some(json!({"role": "maintainer"})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
        let url = format!("/api/v1/projects/{project}/ai-settings");

        // Default: offline, no key, never updated.
        let r = app.get(&url, &maintainer).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {:?}", backend.name(), r.body);
        assert_eq!(r.body["provider"], "offline");
        assert_eq!(r.body["has_api_key"], false);
        assert!(r.body["updated_at"].is_null());

        // The owner sets an OpenAI-compatible endpoint with a key.
        let r = app
            .call(
                Method::PUT,
                &url,
                Some(&owner),
                Some(json!({
                    "provider": "openai",
                    "base_url": "http://localhost:11434/v1",
                    "model": "llama3.1",
                    "api_key": KEY,
                    "timeout_seconds": 30,
                    "max_retries": 1,
                    "token_budget": 5000
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert!(!r.body.to_string().contains(KEY), "{}", r.body);
        assert_eq!(r.body["has_api_key"], true);
        assert_eq!(r.body["model"], "llama3.1");
        assert_eq!(r.body["timeout_seconds"], 30);

        // Maintainers read it, without the key; they cannot change it.
        let r = app.get(&url, &maintainer).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.body.to_string().contains(KEY));
        assert_eq!(r.body["provider"], "openai");
        assert_eq!(r.body["has_api_key"], true);
        assert_eq!(r.body["token_budget"], 5000);
        let r = app
            .call(
                Method::PUT,
                &url,
                Some(&maintainer),
                Some(json!({"provider": "offline"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Jobs load the stored settings with the key.
        let pid: Uuid = project.parse().unwrap();
        let store: &dyn AiSettingsStore = &app.state.sql;
        let settings = load(store, pid).await.unwrap();
        assert_eq!(settings.provider, ProviderKind::OpenAi);
        assert_eq!(settings.api_key.as_ref().unwrap().expose(), KEY);
        assert_eq!(settings.timeout, Duration::from_secs(30));
        assert_eq!(settings.max_retries, 1);
        assert_eq!(provider_for(&settings).unwrap().name(), "openai");

        // Omitting the key keeps it; `null` removes it.
        let r = app
            .call(
                Method::PUT,
                &url,
                Some(&owner),
                Some(json!({"provider": "openai", "model": "gpt-4o-mini"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["has_api_key"], true);
        assert!(r.body["base_url"].is_null());
        assert_eq!(r.body["timeout_seconds"], 60);
        let r = app
            .call(
                Method::PUT,
                &url,
                Some(&owner),
                Some(json!({"provider": "openai", "model": "gpt-4o-mini", "api_key": null})),
            )
            .await;
        assert_eq!(r.body["has_api_key"], false);
        assert!(load(store, pid).await.unwrap().api_key.is_none());

        // The event says what changed, never the key.
        let r = app
            .get(&format!("/api/v1/projects/{project}/events"), &owner)
            .await;
        let text = r.body.to_string();
        assert!(text.contains("project.ai_settings_updated"), "{text}");
        assert!(!text.contains(KEY));
    }
}

#[tokio::test]
async fn bad_settings_are_refused_naming_the_field() {
    for backend in backends() {
        let app = app(&backend).await;
        let (_, owner, _) = app.user("owner@example.com").await;
        let project = app.project(&owner, "ai").await;
        let url = format!("/api/v1/projects/{project}/ai-settings");
        let cases = [
            (json!({"provider": "gpt"}), "gpt"),
            (json!({"provider": "openai"}), "needs a `model`"),
            (
                json!({"provider": "anthropic", "model": "claude-sonnet-4-5"}),
                "needs an `api_key`",
            ),
            (
                json!({"provider": "openai", "model": "m", "base_url": "file:///etc/passwd"}),
                "`base_url`",
            ),
            (
                json!({"provider": "offline", "timeout_seconds": 0}),
                "`timeout_seconds`",
            ),
            (
                json!({"provider": "offline", "max_retries": 99}),
                "`max_retries`",
            ),
            (
                json!({"provider": "offline", "token_budget": 0}),
                "`token_budget`",
            ),
            (json!({"provider": "offline", "colour": "red"}), "colour"),
        ];
        for (body, needle) in cases {
            let r = app
                .call(Method::PUT, &url, Some(&owner), Some(body.clone()))
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {:?}",
                r.body
            );
            let message = r.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{body}: {message}");
        }
        // Nothing was stored.
        let r = app.get(&url, &owner).await;
        assert_eq!(r.body["provider"], "offline");
    }
}
