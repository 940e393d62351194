//! What the HTTP providers share: one `reqwest` client per provider (rustls with ring, no
//! system TLS), the POST-with-retries loop (429 and 5xx answers, timeouts and connection
//! failures are retried up to `max_retries` times, waiting what `Retry-After` asks — seconds
//! or an HTTP date — or an exponential backoff), and error texts scrubbed of the API key.

use super::{AiError, ProviderSettings, TokenUsage};
use std::time::{Duration, SystemTime};

/// Longest provider error message kept in an [`AiError`].
const MAX_MESSAGE: usize = 300;
/// Longest backoff between two attempts when the provider sends no `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Statuses worth another attempt: rate limited, server errors, Anthropic's "overloaded" (529).
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// The wait a `Retry-After` value asks for: delay-seconds or an HTTP date (a date in the past
/// means now). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `text` cut to at most `max` bytes (at a character boundary), with `…` when cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `text` with every occurrence of the key replaced, cut to a readable length.
pub fn scrub(text: &str, settings: &ProviderSettings) -> String {
    let mut out = text.to_owned();
    if let Some(key) = settings.api_key.as_ref().filter(|k| k.expose().len() >= 4) {
        out = out.replace(key.expose(), "[redacted]");
    }
    truncate(out, MAX_MESSAGE)
}

/// An HTTP provider's endpoint: settings, client, URL and model, checked once.
pub struct Endpoint {
    pub provider: &'static str,
    pub settings: ProviderSettings,
    pub client: reqwest::Client,
    pub url: String,
    pub model: String,
}

impl Endpoint {
    /// Checks the settings (a model, an http(s) base URL); `path` turns the base URL into the
    /// endpoint's URL.
    pub fn new(
        provider: &'static str,
        settings: ProviderSettings,
        path: impl FnOnce(&str) -> String,
    ) -> Result<Endpoint, AiError> {
        let model = settings
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| AiError::Config(format!("the {provider} provider needs a model")))?;
        let url = path(&base_url(&settings)?);
        Ok(Endpoint {
            provider,
            client: client(&settings)?,
            settings,
            url,
            model,
        })
    }

    /// POSTs the request body with retries; the answer's JSON.
    pub async fn post(
        &self,
        headers: &[(&str, String)],
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, AiError> {
        post_json(
            self.provider,
            &self.client,
            &self.settings,
            &self.url,
            headers,
            body,
        )
        .await
    }
}

/// An answer HiveSync cannot read.
pub fn malformed(provider: &'static str, message: impl Into<String>) -> AiError {
    AiError::Malformed {
        provider,
        message: message.into(),
    }
}

/// Token counts at two JSON pointers of an answer (0 when absent).
pub fn usage(body: &serde_json::Value, input: &str, output: &str) -> TokenUsage {
    let count = |k: &str| body.pointer(k).and_then(|v| v.as_u64()).unwrap_or(0);
    TokenUsage {
        input_tokens: count(input),
        output_tokens: count(output),
    }
}

/// The provider's own error message from an error body (`{"error":{"message"}}`, used by
/// OpenAI-compatible servers and Anthropic), else the body's start.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        if text.is_empty() {
            "no details".to_owned()
        } else {
            text
        }
    })
}

/// A client for one provider: rustls (ring) TLS, the settings' per-request timeout.
pub fn client(settings: &ProviderSettings) -> Result<reqwest::Client, AiError> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("hivesync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AiError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The base URL checked: `http://` or `https://`, no trailing slash.
pub fn base_url(settings: &ProviderSettings) -> Result<String, AiError> {
    let base = settings
        .effective_base_url()
        .ok_or_else(|| AiError::Config("no base URL".into()))?;
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| AiError::Config(format!("base URL `{base}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AiError::Config(format!(
            "base URL `{base}` must start with http:// or https://"
        )));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

/// POSTs `body` to `url` with `headers`, retrying as the settings allow; the successful
/// answer's JSON.
pub async fn post_json(
    provider: &'static str,
    client: &reqwest::Client,
    settings: &ProviderSettings,
    url: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
) -> Result<serde_json::Value, AiError> {
    let payload = serde_json::to_vec(body).map_err(|e| AiError::Malformed {
        provider,
        message: format!("cannot encode the request: {e}"),
    })?;
    let attempts_allowed = settings.max_retries.saturating_add(1);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.clone());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let failure = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                match response.bytes().await {
                    Ok(bytes) if (200..300).contains(&status) => {
                        return serde_json::from_slice(&bytes).map_err(|e| AiError::Malformed {
                            provider,
                            message: scrub(&format!("the body is not JSON ({e})"), settings),
                        });
                    }
                    Ok(bytes) => {
                        let error = AiError::Http {
                            provider,
                            status,
                            message: scrub(&error_message(&bytes), settings),
                            attempts: attempt,
                        };
                        if !retryable_status(status) {
                            return Err(error);
                        }
                        (error, retry_after)
                    }
                    Err(e) => (transport_error(provider, settings, &e, attempt), None),
                }
            }
            Err(e) => (transport_error(provider, settings, &e, attempt), None),
        };
        let (error, retry_after) = failure;
        if attempt >= attempts_allowed {
            return Err(error);
        }
        let wait = match retry_after {
            Some(wait) if wait > settings.max_retry_wait => {
                return Err(AiError::RetryTooLate {
                    provider,
                    wait,
                    limit: settings.max_retry_wait,
                });
            }
            Some(wait) => wait,
            None => settings
                .retry_backoff
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(MAX_BACKOFF),
        };
        tracing::info!(
            provider,
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "AI request failed, retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

fn transport_error(
    provider: &'static str,
    settings: &ProviderSettings,
    e: &reqwest::Error,
    attempts: u32,
) -> AiError {
    if e.is_timeout() {
        return AiError::Timeout {
            provider,
            timeout: settings.timeout,
            attempts,
        };
    }
    // The source chain says why (connection refused, DNS…).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    AiError::Network {
        provider,
        message: scrub(&message, settings),
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::Secret;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn scrub_removes_the_key_and_cuts_long_text() {
        let settings = ProviderSettings {
            api_key: Some(Secret::new("sk-very-secret")),
            ..ProviderSettings::default()
        };
        assert_eq!(
            scrub("bad key sk-very-secret given", &settings),
            "bad key [redacted] given"
        );
        assert!(scrub(&"x".repeat(1000), &settings).chars().count() <= MAX_MESSAGE + 1);
    }
}
