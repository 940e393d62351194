//! The `explain` job as plain functions: [`input`] gathers a thread's anchored code and its
//! neighbourhood from the engine (the enclosing definition with its callers and callees, and
//! the repository map around it); [`reply`] asks the provider and returns the AI comment's
//! Markdown body. The job runtime materialises the snapshot, calls these and stores the
//! comment (`author_kind: ai`).

use super::prompt::{EXPLAIN_MAX_OUTPUT_TOKENS, REPO_MAP_TOKENS, clip, fence_tag, language_name};
use super::{AiError, AiProvider, ChatRequest, Subject};
use hivesync_analysis::context::DefinitionContext;
use hivesync_analysis::{Analysis, AnalysisError, FilePosition};
use serde::Serialize;

/// Longest comment body an explanation may produce, in bytes.
pub const MAX_REPLY: usize = 16 * 1024;

/// What an explanation is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainInput {
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: u64,
    pub end_line: u64,
    /// The anchored lines.
    pub code: String,
    /// The thread's question (its comments, oldest first), if any.
    pub question: String,
    /// The innermost definition around the anchored lines.
    pub enclosing: Option<DefinitionContext>,
    /// Ranked repository map around the enclosing definition.
    pub repo_map: String,
}

/// Gathers the neighbourhood of `path:start_line-end_line` from the engine. `question` is the
/// thread's text so far.
pub fn input(
    analysis: &Analysis,
    path: &str,
    start_line: u64,
    end_line: u64,
    code: &str,
    question: &str,
) -> Result<ExplainInput, AnalysisError> {
    let text = analysis
        .text(path)
        .ok_or_else(|| AnalysisError::FileNotFound(path.to_owned()))?;
    // The first non-blank character of the anchored lines: its innermost definition.
    let line = u32::try_from(start_line.max(1)).unwrap_or(u32::MAX);
    let column = text
        .lines()
        .nth(line as usize - 1)
        .map(|l| l.chars().take_while(|c| c.is_whitespace()).count() as u32 + 1)
        .unwrap_or(1);
    let graph = analysis.symbol_graph()?;
    let pos = FilePosition {
        path: path.to_owned(),
        line,
        column,
    };
    let enclosing = match analysis.definition_context(&graph, &pos) {
        Ok(found) => found,
        Err(AnalysisError::PositionOutOfRange { .. }) => None,
        Err(e) => return Err(e),
    };
    let repo_map = match &enclosing {
        Some(ctx) => analysis.repo_map(&graph, ctx, REPO_MAP_TOKENS)?,
        None => String::new(),
    };
    Ok(ExplainInput {
        path: path.to_owned(),
        start_line,
        end_line,
        code: code.to_owned(),
        question: question.to_owned(),
        enclosing,
        repo_map,
    })
}

/// The request that asks for an explanation.
pub fn request(input: &ExplainInput) -> ChatRequest {
    let language = input.enclosing.as_ref().and_then(|c| c.language);
    let system = format!(
        "You are a code reviewer answering in a comment thread on {} code. Explain what the \
         selected lines do, how they fit in the surrounding definition and its callers, and \
         anything surprising. Answer in Markdown, concisely (at most about 200 words); do not \
         repeat the code back.",
        language_name(language)
    );
    let mut user = format!(
        "Selected lines {}-{} of {}:\n```{}\n{}\n```\n\n",
        input.start_line,
        input.end_line,
        input.path,
        fence_tag(language),
        clip(&input.code, 1024).trim_end()
    );
    if !input.question.trim().is_empty() {
        user.push_str(&format!(
            "The thread so far:\n{}\n\n",
            clip(&input.question, 512).trim_end()
        ));
    }
    if let Some(ctx) = &input.enclosing {
        user.push_str(&format!(
            "They are inside the {} `{}`:\n```{}\n{}\n```\n\n",
            ctx.kind.name(),
            ctx.qualified_name,
            fence_tag(language),
            clip(&ctx.source, 1536).trim_end()
        ));
        if !ctx.callers.is_empty() {
            user.push_str("Called from:\n");
            for c in &ctx.callers {
                user.push_str(&format!("- {}:{} {}\n", c.path, c.line, c.qualified_name));
            }
            user.push('\n');
        }
    }
    if !input.repo_map.trim().is_empty() {
        user.push_str("Repository map (most relevant first):\n");
        user.push_str(&input.repo_map);
    }
    ChatRequest {
        system,
        user,
        max_output_tokens: EXPLAIN_MAX_OUTPUT_TOKENS,
        subject: Some(Subject::Explain(Box::new(input.clone()))),
    }
}

/// The AI comment's body (Markdown) for the anchored code.
pub async fn reply(input: &ExplainInput, provider: &dyn AiProvider) -> Result<String, AiError> {
    let answer = provider.complete(&request(input)).await?;
    let text = answer.text.trim().to_owned();
    if text.is_empty() {
        return Err(AiError::Malformed {
            provider: provider.name(),
            message: "the answer is empty".into(),
        });
    }
    Ok(super::http::truncate(text, MAX_REPLY))
}
