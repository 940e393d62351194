//! Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server,
//! LM Studio, DeepSeek) by base URL: `POST {base}/chat/completions` when the base already ends
//! in a version segment (`…/v1`), else `POST {base}/v1/chat/completions`; `Authorization:
//! Bearer` when a key is set (local servers need none).

use super::http::{Endpoint, malformed, usage};
use super::{AiError, AiProvider, ChatReply, ChatRequest, ProviderSettings};
use async_trait::async_trait;
use serde_json::json;

const NAME: &str = "openai";

pub struct OpenAiProvider {
    endpoint: Endpoint,
}

/// The chat-completions URL for a base URL.
pub fn endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/chat/completions") {
        return base.to_owned();
    }
    let last = base.rsplit('/').next().unwrap_or("");
    let versioned = last.len() >= 2
        && last.starts_with('v')
        && last[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
    if versioned {
        format!("{base}/chat/completions")
    } else {
        format!("{base}/v1/chat/completions")
    }
}

impl OpenAiProvider {
    pub fn new(settings: ProviderSettings) -> Result<OpenAiProvider, AiError> {
        Ok(OpenAiProvider {
            endpoint: Endpoint::new(NAME, settings, endpoint)?,
        })
    }
}

/// Reply text and usage from a chat-completions answer.
pub fn parse_reply(body: &serde_json::Value) -> Result<ChatReply, AiError> {
    let choice = body
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
        .ok_or_else(|| malformed(NAME, "no `choices` in the answer"))?;
    let text = choice
        .pointer("/message/content")
        .and_then(|c| c.as_str())
        .ok_or_else(|| malformed(NAME, "the first choice has no `message.content` text"))?;
    Ok(ChatReply {
        text: text.to_owned(),
        usage: usage(body, "/usage/prompt_tokens", "/usage/completion_tokens"),
    })
}

#[async_trait]
impl AiProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatReply, AiError> {
        let body = json!({
            "model": self.endpoint.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "max_tokens": request.max_output_tokens,
            "temperature": 0,
            "stream": false,
        });
        let mut headers = Vec::new();
        let key = self.endpoint.settings.api_key.as_ref();
        if let Some(key) = key.filter(|k| !k.is_empty()) {
            headers.push(("authorization", format!("Bearer {}", key.expose())));
        }
        let answer = self.endpoint.post(&headers, &body).await?;
        parse_reply(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_accepts_bases_with_and_without_a_version() {
        assert_eq!(
            endpoint("https://api.openai.com/v1"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://localhost:11434/"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            endpoint("https://api.deepseek.com"),
            "https://api.deepseek.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://h/v1/chat/completions"),
            "http://h/v1/chat/completions"
        );
    }
}
