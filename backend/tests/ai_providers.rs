//! The HTTP AI providers against a local axum server in the test that speaks the same API
//! (OpenAI chat completions, Anthropic Messages): success, malformed replies, 429 with
//! `Retry-After` then success, 5xx until retries run out, timeouts, unreachable servers — and
//! the API key never appears in errors, `Debug` or serialized settings.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hivesync_backend::ai::anthropic::AnthropicProvider;
use hivesync_backend::ai::openai::OpenAiProvider;
use hivesync_backend::ai::{
    AiError, AiProvider, ChatRequest, ProviderKind, ProviderSettings, Secret, provider_for,
};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-0123456789-very-secret";

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

/// A request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    /// Answer given when the script is used up.
    fallback: Arc<Mutex<Option<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    State(script): State<Script>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let next = script.answers.lock().unwrap().pop_front();
    let next = next.or_else(|| script.fallback.lock().unwrap().clone());
    let Some(a) = next else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response();
    };
    if !a.delay.is_zero() {
        tokio::time::sleep(a.delay).await;
    }
    let mut response = (StatusCode::from_u16(a.status).unwrap(), a.body).into_response();
    for (name, value) in a.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Starts the fake provider; returns its base URL and script.
async fn server(answers: Vec<Answer>, fallback: Option<Answer>) -> (String, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers.into())),
        fallback: Arc::new(Mutex::new(fallback)),
        seen: Arc::default(),
    };
    let app = Router::new()
        .fallback(axum::routing::any(handle))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), script)
}

fn settings(provider: ProviderKind, base_url: &str) -> ProviderSettings {
    ProviderSettings {
        provider,
        base_url: Some(base_url.to_owned()),
        model: Some("test-model".into()),
        api_key: Some(Secret::new(KEY)),
        timeout: Duration::from_secs(5),
        max_retries: 2,
        retry_backoff: Duration::from_millis(10),
        ..ProviderSettings::default()
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        system: "You write docs.".into(),
        user: "Document `f`.".into(),
        max_output_tokens: 77,
        subject: None,
    }
}

fn openai_ok(text: &str) -> Answer {
    answer(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        }),
    )
}

fn anthropic_ok(text: &str) -> Answer {
    answer(
        200,
        json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 20, "output_tokens": 8}
        }),
    )
}

fn assert_no_key(e: &AiError) {
    assert!(!e.to_string().contains(KEY), "key in error: {e}");
    assert!(!format!("{e:?}").contains(KEY), "key in Debug: {e:?}");
}

async fn openai(base: &str) -> OpenAiProvider {
    OpenAiProvider::new(settings(ProviderKind::OpenAi, &format!("{base}/v1"))).unwrap()
}

async fn anthropic(base: &str) -> AnthropicProvider {
    AnthropicProvider::new(settings(ProviderKind::Anthropic, base)).unwrap()
}

#[tokio::test]
async fn openai_success_sends_the_chat_request_and_reads_text_and_usage() {
    let (base, script) = server(vec![openai_ok("Adds two numbers.")], None).await;
    let reply = openai(&base).await.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Adds two numbers.");
    assert_eq!(
        (reply.usage.input_tokens, reply.usage.output_tokens),
        (12, 5)
    );
    let seen = script.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].headers["authorization"].to_str().unwrap(),
        format!("Bearer {KEY}")
    );
    assert_eq!(seen[0].body["model"], "test-model");
    assert_eq!(seen[0].body["max_tokens"], 77);
    assert_eq!(
        seen[0].body["messages"],
        json!([
            {"role": "system", "content": "You write docs."},
            {"role": "user", "content": "Document `f`."}
        ])
    );
}

#[tokio::test]
async fn openai_without_a_key_sends_no_authorization_for_local_servers() {
    let (base, script) = server(vec![openai_ok("ok")], None).await;
    let mut s = settings(ProviderKind::OpenAi, &base);
    s.api_key = None;
    let provider = provider_for(&s).unwrap();
    assert_eq!(provider.name(), "openai");
    provider.complete(&request()).await.unwrap();
    let seen = script.seen();
    // A base URL without a version segment gets `/v1/chat/completions`.
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert!(!seen[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn openai_malformed_replies_are_clear_errors() {
    let not_json = Answer {
        body: "<html>gateway</html>".into(),
        ..answer(200, json!(null))
    };
    let (base, _) = server(
        vec![
            answer(200, json!({"choices": []})),
            answer(
                200,
                json!({"choices": [{"message": {"role": "assistant"}}]}),
            ),
            not_json,
        ],
        None,
    )
    .await;
    let p = openai(&base).await;
    let e = p.complete(&request()).await.unwrap_err();
    assert!(matches!(e, AiError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("no `choices`"), "{e}");
    let e = p.complete(&request()).await.unwrap_err();
    assert!(e.to_string().contains("message.content"), "{e}");
    let e = p.complete(&request()).await.unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn openai_429_with_retry_after_seconds_waits_then_succeeds() {
    let limited = Answer {
        headers: vec![("retry-after", "1".into())],
        ..answer(429, json!({"error": {"message": "Rate limit reached"}}))
    };
    let (base, script) = server(vec![limited, openai_ok("Second time lucky.")], None).await;
    let started = Instant::now();
    let reply = openai(&base).await.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Second time lucky.");
    assert_eq!(script.seen().len(), 2);
    // Retry-After was honoured (not the 10 ms backoff).
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn retry_after_as_an_http_date_and_too_long_waits() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let limited = Answer {
        headers: vec![("retry-after", date)],
        ..answer(503, json!({"error": {"message": "busy"}}))
    };
    let (base, script) = server(vec![limited, openai_ok("ok")], None).await;
    assert_eq!(
        openai(&base).await.complete(&request()).await.unwrap().text,
        "ok"
    );
    assert_eq!(script.seen().len(), 2);

    let far = Answer {
        headers: vec![("retry-after", "3600".into())],
        ..answer(429, json!({"error": {"message": "come back later"}}))
    };
    let (base, script) = server(vec![far], None).await;
    let e = openai(&base).await.complete(&request()).await.unwrap_err();
    assert!(matches!(e, AiError::RetryTooLate { .. }), "{e}");
    assert!(e.to_string().contains("3600 s"), "{e}");
    assert_eq!(script.seen().len(), 1, "no retry when the wait is too long");
}

#[tokio::test]
async fn server_errors_are_retried_until_the_retries_run_out() {
    let failing = answer(503, json!({"error": {"message": "upstream overloaded"}}));
    let (base, script) = server(Vec::new(), Some(failing)).await;
    let e = openai(&base).await.complete(&request()).await.unwrap_err();
    assert_eq!(
        script.seen().len(),
        3,
        "one attempt and max_retries = 2 retries"
    );
    match &e {
        AiError::Http {
            status, attempts, ..
        } => assert_eq!((*status, *attempts), (503, 3)),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(e.to_string().contains("upstream overloaded"), "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn client_errors_are_not_retried_and_never_echo_the_key() {
    let rejected = answer(
        401,
        json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error"}}),
    );
    let (base, script) = server(vec![rejected], None).await;
    let e = openai(&base).await.complete(&request()).await.unwrap_err();
    assert_eq!(script.seen().len(), 1);
    assert!(matches!(e, AiError::Http { status: 401, .. }), "{e}");
    assert!(e.to_string().contains("Incorrect API key provided"), "{e}");
    assert_no_key(&e);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let slow = Answer {
        delay: Duration::from_secs(3),
        ..openai_ok("too late")
    };
    let (base, script) = server(Vec::new(), Some(slow)).await;
    let mut s = settings(ProviderKind::OpenAi, &base);
    s.timeout = Duration::from_millis(300);
    s.max_retries = 1;
    let e = OpenAiProvider::new(s)
        .unwrap()
        .complete(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(e, AiError::Timeout { attempts: 2, .. }),
        "expected a timeout after 2 attempts, got {e:?}"
    );
    assert_eq!(script.seen().len(), 2);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn an_unreachable_server_is_a_network_error_without_the_key() {
    // Bind then drop a listener: nothing listens on that port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut s = settings(ProviderKind::OpenAi, &format!("http://{addr}"));
    s.max_retries = 0;
    let e = OpenAiProvider::new(s)
        .unwrap()
        .complete(&request())
        .await
        .unwrap_err();
    assert!(matches!(e, AiError::Network { .. }), "{e:?}");
    assert_no_key(&e);
}

#[tokio::test]
async fn anthropic_success_uses_the_messages_api() {
    let (base, script) = server(vec![anthropic_ok("Parses the config.")], None).await;
    let reply = anthropic(&base).await.complete(&request()).await.unwrap();
    assert_eq!(reply.text, "Parses the config.");
    assert_eq!(
        (reply.usage.input_tokens, reply.usage.output_tokens),
        (20, 8)
    );
    let seen = script.seen();
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(seen[0].headers["x-api-key"].to_str().unwrap(), KEY);
    assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
    assert!(!seen[0].headers.contains_key("authorization"));
    assert_eq!(seen[0].body["system"], "You write docs.");
    assert_eq!(seen[0].body["max_tokens"], 77);
    assert_eq!(
        seen[0].body["messages"],
        json!([{"role": "user", "content": "Document `f`."}])
    );
}

#[tokio::test]
async fn anthropic_malformed_overloaded_and_errors() {
    let overloaded = Answer {
        headers: vec![("retry-after", "0".into())],
        ..answer(
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )
    };
    let bad_request = answer(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("max_tokens too large for key {KEY}")}}),
    );
    let (base, script) = server(
        vec![
            answer(200, json!({"content": [{"type": "tool_use", "id": "x"}]})),
            overloaded,
            anthropic_ok("After the overload."),
            bad_request,
        ],
        None,
    )
    .await;
    let p = anthropic(&base).await;
    let e = p.complete(&request()).await.unwrap_err();
    assert!(matches!(e, AiError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("no text content"), "{e}");
    assert_eq!(
        p.complete(&request()).await.unwrap().text,
        "After the overload."
    );
    let e = p.complete(&request()).await.unwrap_err();
    assert!(matches!(e, AiError::Http { status: 400, .. }), "{e}");
    assert!(e.to_string().contains("max_tokens too large"), "{e}");
    assert_no_key(&e);
    assert_eq!(script.seen().len(), 4);
}

#[test]
fn incomplete_settings_are_refused_clearly() {
    let mut s = settings(ProviderKind::Anthropic, "http://127.0.0.1:9");
    s.api_key = None;
    let e = provider_for(&s).err().unwrap();
    assert!(e.to_string().contains("needs an API key"), "{e}");
    let mut s = settings(ProviderKind::OpenAi, "ftp://example.com");
    let e = provider_for(&s).err().unwrap();
    assert!(e.to_string().contains("http:// or https://"), "{e}");
    s.base_url = Some("http://127.0.0.1:9".into());
    s.model = None;
    let e = provider_for(&s).err().unwrap();
    assert!(e.to_string().contains("needs a model"), "{e}");
}

#[test]
fn settings_never_show_the_key() {
    let s = settings(ProviderKind::OpenAi, "http://127.0.0.1:9");
    assert!(!format!("{s:?}").contains(KEY));
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains(KEY), "{json}");
    assert!(json.contains("[redacted]"), "{json}");
    let secret = Secret::new(KEY);
    assert_eq!(secret.to_string(), "[redacted]");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(secret.expose(), KEY);
}
