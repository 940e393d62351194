//! Prompts for the HTTP providers, built from what the engine knows: the definition's signature
//! and source, its callers and callees from the symbol graph, and a ranked map of the
//! repository around it (most referenced neighbours first, within a token budget).

use super::{ChatRequest, Subject};
use hivesync_analysis::context::{DefSummary, DefinitionContext, estimate_tokens};
use hivesync_protocol::Language;

/// Output cap of one doc-comment request.
pub const DOC_MAX_OUTPUT_TOKENS: u32 = 400;
/// Output cap of one explanation.
pub const EXPLAIN_MAX_OUTPUT_TOKENS: u32 = 700;
/// Tokens of the repository map in a prompt.
pub const REPO_MAP_TOKENS: usize = 1024;
/// Tokens of a definition's source in a prompt (longer sources are cut).
pub const SOURCE_TOKENS: usize = 2048;

/// The language's name as a person says it.
pub fn language_name(language: Option<Language>) -> &'static str {
    match language {
        Some(Language::Python) => "Python",
        Some(Language::TypeScript) => "TypeScript",
        Some(Language::Tsx) => "TypeScript (TSX)",
        Some(Language::JavaScript) => "JavaScript",
        Some(Language::Rust) => "Rust",
        Some(Language::Go) => "Go",
        None => "source code",
    }
}

/// The fence tag for a language's code blocks.
pub fn fence_tag(language: Option<Language>) -> &'static str {
    match language {
        Some(Language::Python) => "python",
        Some(Language::TypeScript | Language::Tsx) => "typescript",
        Some(Language::JavaScript) => "javascript",
        Some(Language::Rust) => "rust",
        Some(Language::Go) => "go",
        None => "",
    }
}

fn conventions(language: Option<Language>, name: &str) -> String {
    match language {
        Some(Language::Python) => "a Google-style docstring body: a one-line summary, a blank line, then `Args:`, `Returns:` and `Raises:` sections where they apply".into(),
        Some(Language::Rust) => "rustdoc Markdown: a one-line summary, then `# Errors` and `# Panics` sections where they apply".into(),
        Some(Language::Go) => format!("Go doc comment conventions: full sentences, the first one starting with `{name}`"),
        _ => "JSDoc: a summary, then `@param name - description`, `@returns` and `@throws {Type}` tags where they apply".into(),
    }
}

/// Text cut to about `tokens` tokens at a line boundary, with a marker when cut.
pub fn clip(text: &str, tokens: usize) -> String {
    if estimate_tokens(text) <= tokens {
        return text.to_owned();
    }
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if estimate_tokens(&out) + estimate_tokens(line) > tokens {
            break;
        }
        out.push_str(line);
    }
    out.push_str("\n… (cut)\n");
    out
}

fn neighbour_lines(out: &mut String, title: &str, list: &[DefSummary]) {
    if list.is_empty() {
        return;
    }
    out.push_str(title);
    out.push('\n');
    for s in list {
        let what = s
            .signature
            .clone()
            .unwrap_or_else(|| format!("{} {}", s.kind.name(), s.qualified_name));
        out.push_str(&format!("- {}:{}: {}\n", s.path, s.line, what));
    }
    out.push('\n');
}

/// The request that asks for one definition's documentation.
pub fn doc_request(ctx: &DefinitionContext, repo_map: &str) -> ChatRequest {
    let lang = language_name(ctx.language);
    let system = format!(
        "You write documentation comments for {lang} code. Answer with the documentation text only: \
         no comment markers (no ///, //, /** */ or \"\"\"), no code fences, no preamble. Follow {}. \
         Say what the definition does and when to use it; do not invent behaviour the code does not \
         show. At most 15 lines.",
        conventions(ctx.language, &ctx.name)
    );
    let mut user = format!(
        "Document the {} `{}` in {} (line {}).\n\n",
        ctx.kind.name(),
        ctx.qualified_name,
        ctx.path,
        ctx.line
    );
    if let Some(sig) = &ctx.signature {
        user.push_str(&format!("Signature: {sig}\n\n"));
    }
    user.push_str(&format!(
        "Source:\n```{}\n{}\n```\n\n",
        fence_tag(ctx.language),
        clip(&ctx.source, SOURCE_TOKENS).trim_end()
    ));
    if !ctx.raises.is_empty() {
        user.push_str(&format!(
            "Errors raised in the body: {}\n\n",
            ctx.raises.join(", ")
        ));
    }
    neighbour_lines(&mut user, "Called from:", &ctx.callers);
    neighbour_lines(&mut user, "Uses:", &ctx.callees);
    if !repo_map.trim().is_empty() {
        user.push_str("Repository map (most relevant first):\n");
        user.push_str(repo_map);
    }
    ChatRequest {
        system,
        user,
        max_output_tokens: DOC_MAX_OUTPUT_TOKENS,
        subject: Some(Subject::Document(Box::new(ctx.clone()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_line_boundary() {
        let text = "line one\n".repeat(100);
        let cut = clip(&text, 10);
        assert!(cut.ends_with("… (cut)\n"));
        assert!(cut.starts_with("line one\nline one\n"));
        assert_eq!(clip("short\n", 10), "short\n");
    }
}
