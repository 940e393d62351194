//! AI providers and the AI job functions. [`AiProvider`] is one chat-style call (system + user
//! message, a cap on output tokens → reply text and token usage) with three implementations:
//! [`openai::OpenAiProvider`] (any OpenAI-compatible `/v1/chat/completions` endpoint: OpenAI,
//! Ollama, vLLM, llama.cpp server, LM Studio, DeepSeek), [`anthropic::AnthropicProvider`] (the
//! Messages API) and [`offline::OfflineProvider`] (no network, deterministic: writes the doc
//! comment from what the engine knows). HTTP providers share [`http`]: request timeouts,
//! bounded retries on 429/5xx honouring `Retry-After`, readable errors that never contain the
//! API key.
//!
//! [`settings`] stores each project's [`ProviderSettings`] (the key is write-only through the
//! API); [`prompt`] builds prompts from the engine's [`DefinitionContext`] and a ranked
//! repository map; [`docs`] and [`explain`] are the `docs` and `explain` jobs as plain
//! functions the job runtime wraps.

pub mod anthropic;
pub mod docs;
pub mod explain;
pub mod http;
pub mod offline;
pub mod openai;
pub mod prompt;
pub mod settings;

use async_trait::async_trait;
use hivesync_analysis::context::DefinitionContext;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// A secret (an API key). `Debug`, `Display` and `Serialize` print `[redacted]`; only
/// [`Secret::expose`] gives the value, for the one header that needs it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Which provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat-completions endpoint.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// No network: doc comments from what the engine knows.
    #[default]
    Offline,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Offline,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The base URL used when none is configured.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Offline => None,
        }
    }
}

/// How a project talks to its AI provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderSettings {
    pub provider: ProviderKind,
    /// `None`: the provider's public endpoint.
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<Secret>,
    /// Per HTTP request.
    pub timeout: Duration,
    /// Further attempts after a 429, 5xx, timeout or connection failure.
    pub max_retries: u32,
    /// Most tokens (prompt + reply, as the provider counts them) one job may use.
    pub token_budget: u64,
    /// First wait between retries when the provider sends no `Retry-After` (doubles each time).
    pub retry_backoff: Duration,
    /// Longest wait HiveSync accepts; a `Retry-After` asking for more fails the request.
    pub max_retry_wait: Duration,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            provider: ProviderKind::Offline,
            base_url: None,
            model: None,
            api_key: None,
            timeout: Duration::from_secs(60),
            max_retries: 3,
            token_budget: 1_000_000,
            retry_backoff: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

impl ProviderSettings {
    /// The endpoint base URL to use (configured or the provider's default).
    pub fn effective_base_url(&self) -> Option<&str> {
        self.base_url
            .as_deref()
            .or_else(|| self.provider.default_base_url())
    }
}

/// What the engine knows about the subject of a request; HTTP providers read only the prompt
/// text, the offline provider writes its answer from this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Subject {
    /// Document this definition.
    Document(Box<DefinitionContext>),
    /// Explain the anchored code (with the enclosing definition when there is one).
    Explain(Box<explain::ExplainInput>),
}

/// One chat-style request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    pub system: String,
    pub user: String,
    pub max_output_tokens: u32,
    pub subject: Option<Subject>,
}

/// Tokens a request used, as the provider counted them (estimated for offline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl TokenUsage {
    pub fn total(self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReply {
    pub text: String,
    pub usage: TokenUsage,
}

/// Why a provider call failed. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    #[error("AI provider settings are incomplete: {0}")]
    Config(String),
    #[error("{provider} did not answer within {} s ({attempts} attempt(s))", .timeout.as_secs_f64())]
    Timeout {
        provider: &'static str,
        timeout: Duration,
        attempts: u32,
    },
    #[error("could not reach {provider}: {message} ({attempts} attempt(s))")]
    Network {
        provider: &'static str,
        message: String,
        attempts: u32,
    },
    #[error("{provider} answered HTTP {status}: {message} ({attempts} attempt(s))")]
    Http {
        provider: &'static str,
        status: u16,
        message: String,
        attempts: u32,
    },
    #[error(
        "{provider} asked to retry after {} s, longer than the {} s HiveSync waits", .wait.as_secs(), .limit.as_secs()
    )]
    RetryTooLate {
        provider: &'static str,
        wait: Duration,
        limit: Duration,
    },
    #[error("{provider} sent a reply HiveSync cannot read: {message}")]
    Malformed {
        provider: &'static str,
        message: String,
    },
    #[error("the job's token budget is used up ({used} of {budget} tokens)")]
    BudgetExhausted { used: u64, budget: u64 },
}

impl AiError {
    /// Worth trying again later (the job runtime's `Retryable`): timeouts, connection failures,
    /// 429 and 5xx answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            AiError::Timeout { .. } | AiError::Network { .. } | AiError::RetryTooLate { .. } => {
                true
            }
            AiError::Http { status, .. } => http::retryable_status(*status),
            _ => false,
        }
    }
}

/// A chat-style AI provider.
#[async_trait]
pub trait AiProvider: Send + Sync {
    /// `openai`, `anthropic` or `offline`.
    fn name(&self) -> &'static str;
    async fn complete(&self, request: &ChatRequest) -> Result<ChatReply, AiError>;
}

/// The provider the settings describe (checks they are complete).
pub fn provider_for(settings: &ProviderSettings) -> Result<Arc<dyn AiProvider>, AiError> {
    Ok(match settings.provider {
        ProviderKind::Offline => Arc::new(offline::OfflineProvider),
        ProviderKind::OpenAi => Arc::new(openai::OpenAiProvider::new(settings.clone())?),
        ProviderKind::Anthropic => Arc::new(anthropic::AnthropicProvider::new(settings.clone())?),
    })
}

/// The provider for a job: the project's settings, or the offline provider when the job asks
/// for it (`provider: "offline"`). Asking for another provider than the configured one is an
/// error naming both.
pub fn provider_for_job(
    settings: &ProviderSettings,
    requested: Option<ProviderKind>,
) -> Result<Arc<dyn AiProvider>, AiError> {
    match requested {
        None => provider_for(settings),
        Some(ProviderKind::Offline) => Ok(Arc::new(offline::OfflineProvider)),
        Some(kind) if kind == settings.provider => provider_for(settings),
        Some(kind) => Err(AiError::Config(format!(
            "the job asks for `{}` but the project's AI settings configure `{}`; change the settings first",
            kind.as_str(),
            settings.provider.as_str()
        ))),
    }
}
