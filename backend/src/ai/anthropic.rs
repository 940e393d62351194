//! Anthropic's Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version`; the reply is the concatenated `text` blocks of `content`.

use super::http::{base_url, client, post_json};
use super::{AiError, AiProvider, ChatReply, ChatRequest, ProviderSettings, TokenUsage};
use async_trait::async_trait;
use serde_json::json;

const NAME: &str = "anthropic";
/// The API version HiveSync speaks.
pub const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    settings: ProviderSettings,
    client: reqwest::Client,
    url: String,
    model: String,
}

impl AnthropicProvider {
    pub fn new(settings: ProviderSettings) -> Result<AnthropicProvider, AiError> {
        let model = settings
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| AiError::Config("the anthropic provider needs a model".into()))?;
        if settings.api_key.as_ref().is_none_or(|k| k.is_empty()) {
            return Err(AiError::Config(
                "the anthropic provider needs an API key".into(),
            ));
        }
        let base = base_url(&settings)?;
        let url = if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        Ok(AnthropicProvider {
            client: client(&settings)?,
            settings,
            url,
            model,
        })
    }
}

fn malformed(message: impl Into<String>) -> AiError {
    AiError::Malformed {
        provider: NAME,
        message: message.into(),
    }
}

/// Reply text and usage from a Messages API answer.
pub fn parse_reply(body: &serde_json::Value) -> Result<ChatReply, AiError> {
    let blocks = body
        .get("content")
        .and_then(|c| c.as_array())
        .ok_or_else(|| malformed("no `content` array in the answer"))?;
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
        .collect();
    if texts.is_empty() {
        return Err(malformed("the answer has no text content block"));
    }
    let count = |k: &str| body.pointer(k).and_then(|v| v.as_u64()).unwrap_or(0);
    Ok(ChatReply {
        text: texts.concat(),
        usage: TokenUsage {
            input_tokens: count("/usage/input_tokens"),
            output_tokens: count("/usage/output_tokens"),
        },
    })
}

#[async_trait]
impl AiProvider for AnthropicProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatReply, AiError> {
        let body = json!({
            "model": self.model,
            "max_tokens": request.max_output_tokens,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
            "temperature": 0,
        });
        let key = self
            .settings
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .unwrap_or_default();
        let headers = [
            ("x-api-key", key),
            ("anthropic-version", API_VERSION.to_owned()),
        ];
        let answer = post_json(
            NAME,
            &self.client,
            &self.settings,
            &self.url,
            &headers,
            &body,
        )
        .await?;
        parse_reply(&answer)
    }
}
