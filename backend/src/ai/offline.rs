//! The offline provider: no network, deterministic. It answers from the request's
//! [`Subject`] — what the engine knows about the definition (parameters, return type, errors
//! raised or thrown in the body, callers) — in the language's documentation conventions, and
//! never fails.

use super::explain::ExplainInput;
use super::{AiError, AiProvider, ChatReply, ChatRequest, Subject, TokenUsage};
use async_trait::async_trait;
use hivesync_analysis::context::{DefSummary, DefinitionContext, estimate_tokens};
use hivesync_analysis::model::SymbolKind;
use hivesync_protocol::Language;

pub struct OfflineProvider;

#[async_trait]
impl AiProvider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatReply, AiError> {
        let text = match &request.subject {
            Some(Subject::Document(ctx)) => document(ctx),
            Some(Subject::Explain(input)) => explain(input),
            None => "The offline provider answers only documentation and explanation requests \
                     it has the engine's facts for."
                .to_owned(),
        };
        Ok(ChatReply {
            usage: TokenUsage {
                input_tokens: estimate_tokens(&request.system) as u64
                    + estimate_tokens(&request.user) as u64,
                output_tokens: estimate_tokens(&text) as u64,
            },
            text,
        })
    }
}

/// Words of an identifier: `parseHTTPRequest` → `parse http request`, `get_user` → `get user`.
pub fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = name.chars().collect();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '$' || c == '-' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && !cur.is_empty()
            && (prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || next.is_some_and(char::is_lowercase) && prev.is_some_and(char::is_uppercase));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `get_user_name` → `Get user name`.
fn phrase(name: &str) -> String {
    let w = words(name).join(" ");
    let mut chars = w.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_owned(),
    }
}

fn summary(ctx: &DefinitionContext) -> String {
    match (ctx.kind, ctx.name.as_str()) {
        (SymbolKind::Method, "__init__" | "constructor" | "new") => {
            let owner = ctx
                .qualified_name
                .rsplit_once('.')
                .map(|(o, _)| o.rsplit('.').next().unwrap_or(o).to_owned())
                .unwrap_or_else(|| ctx.name.clone());
            format!("Create a new `{owner}`.")
        }
        (SymbolKind::Function | SymbolKind::Method, _) => format!("{}.", phrase(&ctx.name)),
        (kind, _) => format!("{} {}.", phrase(&ctx.name), kind.name().replace('_', " ")),
    }
}

fn caller_names(callers: &[DefSummary]) -> Vec<String> {
    callers
        .iter()
        .take(5)
        .map(|c| {
            if c.kind == SymbolKind::Module {
                format!("module code in {}", c.path)
            } else {
                format!("`{}` ({})", c.qualified_name, c.path)
            }
        })
        .collect()
}

fn used_by(ctx: &DefinitionContext) -> Option<String> {
    let names = caller_names(&ctx.callers);
    if names.is_empty() {
        return None;
    }
    let more = ctx.callers.len().saturating_sub(names.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!("Used by {}{tail}.", names.join(", ")))
}

/// The documentation text (no comment markers) for a definition, in its language's
/// conventions.
pub fn document(ctx: &DefinitionContext) -> String {
    let callable = matches!(ctx.kind, SymbolKind::Function | SymbolKind::Method);
    let mut blocks: Vec<String> = Vec::new();
    match ctx.language {
        Some(Language::Python) => {
            blocks.push(summary(ctx));
            if callable && !ctx.parameters.is_empty() {
                let mut b = String::from("Args:");
                for p in &ctx.parameters {
                    let name = p.name.trim_start_matches('*');
                    let optional = p.declaration.contains('=');
                    let ty = match (&p.annotation, optional) {
                        (Some(t), true) => format!(" ({t}, optional)"),
                        (Some(t), false) => format!(" ({t})"),
                        (None, true) => " (optional)".to_owned(),
                        (None, false) => String::new(),
                    };
                    b.push_str(&format!("\n    {name}{ty}: The `{name}` argument."));
                }
                blocks.push(b);
            }
            if callable
                && (ctx.return_type.as_deref().is_some_and(|r| r != "None") || ctx.returns_value)
            {
                let ty = ctx.return_type.clone().unwrap_or_else(|| "object".into());
                blocks.push(format!("Returns:\n    {ty}: The result."));
            }
            if !ctx.raises.is_empty() {
                let mut b = String::from("Raises:");
                for r in &ctx.raises {
                    b.push_str(&format!("\n    {r}: Raised by `{}`.", ctx.name));
                }
                blocks.push(b);
            }
            blocks.extend(used_by(ctx));
        }
        Some(Language::Rust) => {
            blocks.push(summary(ctx));
            blocks.extend(used_by(ctx));
            let errors: Vec<&String> = ctx.raises.iter().filter(|r| *r != "panic").collect();
            if !errors.is_empty() {
                let list: Vec<String> = errors.iter().map(|e| format!("`{e}`")).collect();
                blocks.push(format!(
                    "# Errors\n\nReturns {} on failure.",
                    list.join(", ")
                ));
            }
            if ctx.raises.iter().any(|r| r == "panic") {
                blocks.push("# Panics\n\nPanics on some inputs (the body calls `panic!`).".into());
            }
        }
        Some(Language::Go) => {
            let mut s = if callable {
                let params: Vec<String> = ctx
                    .parameters
                    .iter()
                    .map(|p| p.declaration.clone())
                    .collect();
                let takes = if params.is_empty() {
                    "takes no arguments".to_owned()
                } else {
                    format!("takes {}", params.join(", "))
                };
                match &ctx.return_type {
                    Some(r) => format!("{} {takes} and returns {r}.", ctx.name),
                    None => format!("{} {takes}.", ctx.name),
                }
            } else {
                format!("{} is a {}.", ctx.name, ctx.kind.name().replace('_', " "))
            };
            if ctx.raises.iter().any(|r| r == "panic") {
                s.push_str(" It panics on some inputs.");
            }
            if let Some(u) = used_by(ctx) {
                s.push(' ');
                s.push_str(&u);
            }
            blocks.push(s);
        }
        _ => {
            blocks.push(summary(ctx));
            blocks.extend(used_by(ctx));
            let mut tags: Vec<String> = Vec::new();
            if callable {
                for p in &ctx.parameters {
                    let name = p.name.trim_start_matches('.');
                    tags.push(format!("@param {name} - The `{name}` argument."));
                }
                match &ctx.return_type {
                    Some(r) if r != "void" => tags.push(format!("@returns The result ({r}).")),
                    None if ctx.returns_value => tags.push("@returns The result.".into()),
                    _ => {}
                }
            }
            for r in &ctx.raises {
                tags.push(format!("@throws {{{r}}}"));
            }
            if !tags.is_empty() {
                blocks.push(tags.join("\n"));
            }
        }
    }
    blocks.join("\n\n")
}

/// The offline explanation of anchored code: where it is and what the engine knows about the
/// definition around it.
pub fn explain(input: &ExplainInput) -> String {
    let (lines, verb) = if input.start_line == input.end_line {
        (format!("Line {}", input.start_line), "is")
    } else {
        (
            format!("Lines {}–{}", input.start_line, input.end_line),
            "are",
        )
    };
    let mut out = format!("{lines} of `{}`", input.path);
    let Some(ctx) = &input.enclosing else {
        out.push_str(&format!(
            " {verb} top-level code (not inside a function or type)."
        ));
        return out;
    };
    out.push_str(&format!(
        " {verb} part of the {} `{}`",
        ctx.kind.name().replace('_', " "),
        ctx.qualified_name
    ));
    match &ctx.signature {
        Some(sig) => out.push_str(&format!(": `{sig}`.")),
        None => out.push('.'),
    }
    let mut facts: Vec<String> = Vec::new();
    if !ctx.parameters.is_empty() {
        let names: Vec<String> = ctx
            .parameters
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect();
        facts.push(format!("It takes {}.", names.join(", ")));
    }
    if let Some(r) = &ctx.return_type {
        facts.push(format!("It returns `{r}`."));
    }
    if !ctx.raises.is_empty() {
        let names: Vec<String> = ctx.raises.iter().map(|r| format!("`{r}`")).collect();
        facts.push(format!("It can raise {}.", names.join(", ")));
    }
    if !ctx.callees.is_empty() {
        let names: Vec<String> = ctx
            .callees
            .iter()
            .take(6)
            .map(|c| format!("`{}` ({})", c.qualified_name, c.path))
            .collect();
        facts.push(format!("It uses {}.", names.join(", ")));
    }
    facts.extend(used_by(ctx));
    if ctx.references > 0 {
        facts.push(format!(
            "The project refers to it {} time(s).",
            ctx.references
        ));
    }
    if !facts.is_empty() {
        out.push_str("\n\n");
        out.push_str(&facts.join(" "));
    }
    out.push_str("\n\n_Written by the offline provider from the code's structure; configure an AI provider for a prose explanation._");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_snake_camel_and_acronyms() {
        assert_eq!(words("get_user_name"), ["get", "user", "name"]);
        assert_eq!(words("parseHTTPRequest"), ["parse", "http", "request"]);
        assert_eq!(words("UserProfile"), ["user", "profile"]);
        assert_eq!(words("__init__"), ["init"]);
        assert_eq!(phrase("toJSON"), "To json");
    }
}
