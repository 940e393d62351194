//! Anthropic's Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version`; the reply is the concatenated `text` blocks of `content`.

use super::http::{Endpoint, malformed, usage};
use super::{AiError, AiProvider, ChatReply, ChatRequest, ProviderSettings};
use async_trait::async_trait;
use serde_json::json;

const NAME: &str = "anthropic";
/// The API version HiveSync speaks.
pub const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    endpoint: Endpoint,
}

impl AnthropicProvider {
    pub fn new(settings: ProviderSettings) -> Result<AnthropicProvider, AiError> {
        if settings.api_key.as_ref().is_none_or(|k| k.is_empty()) {
            return Err(AiError::Config(
                "the anthropic provider needs an API key".into(),
            ));
        }
        let endpoint = Endpoint::new(NAME, settings, |base| {
            if base.ends_with("/v1") {
                format!("{base}/messages")
            } else {
                format!("{base}/v1/messages")
            }
        })?;
        Ok(AnthropicProvider { endpoint })
    }
}

/// Reply text and usage from a Messages API answer.
pub fn parse_reply(body: &serde_json::Value) -> Result<ChatReply, AiError> {
    let blocks = body
        .get("content")
        .and_then(|c| c.as_array())
        .ok_or_else(|| malformed(NAME, "no `content` array in the answer"))?;
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
        .collect();
    if texts.is_empty() {
        return Err(malformed(NAME, "the answer has no text content block"));
    }
    Ok(ChatReply {
        text: texts.concat(),
        usage: usage(body, "/usage/input_tokens", "/usage/output_tokens"),
    })
}

#[async_trait]
impl AiProvider for AnthropicProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatReply, AiError> {
        let body = json!({
            "model": self.endpoint.model,
            "max_tokens": request.max_output_tokens,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
            "temperature": 0,
        });
        let key = self
            .endpoint
            .settings
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .unwrap_or_default();
        let headers = [
            ("x-api-key", key),
            ("anthropic-version", API_VERSION.to_owned()),
        ];
        let answer = self.endpoint.post(&headers, &body).await?;
        parse_reply(&answer)
    }
}
