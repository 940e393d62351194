//! The `docs` job as plain functions: [`parse_params`] checks `{snapshot_id, paths?, symbols?,
//! provider?}`; [`plan`] asks the engine for documentation gaps (filtered by paths and
//! symbols; without them every public definition without documentation) and builds one prompt
//! per definition; [`run`] asks the provider for each and renders the answers as doc comments
//! in the language's convention at the engine's insertion point — one `exact` edit per
//! definition, with the file's base hash. A failing definition is reported in
//! `failures` and skipped. [`generate`] is both in one call.
//!
//! `plan` is synchronous engine work (run it on a blocking thread); `run` only needs the plan,
//! so its future is `Send` and holds no engine snapshot across an `.await`.

use super::prompt::{REPO_MAP_TOKENS, doc_request};
use super::{AiError, AiProvider, ChatRequest, ProviderKind, TokenUsage};
use hivesync_analysis::changeset::content_hash;
use hivesync_analysis::lang::DocSyntax;
use hivesync_analysis::{Analysis, AnalysisError, DocGap, FilePosition};
use hivesync_protocol::{ChangeSet, Confidence, FileChange, Language, TextEdit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Most entries in `paths` or `symbols`.
const MAX_FILTERS: usize = 10_000;

/// Parameters of a `docs` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsParams {
    pub snapshot_id: Uuid,
    /// Files or directories (`src/`, `src/app.py`) to cover; empty: all.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Definitions to cover, by name or dotted name inside their file (`area`,
    /// `Shape.area`); empty: all.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// `offline` forces the offline provider; otherwise it must be the project's provider.
    #[serde(default)]
    pub provider: Option<ProviderKind>,
}

/// Checks a `docs` job's parameters; the error names what is wrong.
pub fn parse_params(value: &serde_json::Value) -> Result<DocsParams, String> {
    let params: DocsParams = serde_json::from_value(value.clone())
        .map_err(|e| format!("invalid docs parameters: {e}"))?;
    if params.paths.len() > MAX_FILTERS || params.symbols.len() > MAX_FILTERS {
        return Err(format!(
            "at most {MAX_FILTERS} paths and {MAX_FILTERS} symbols per docs job"
        ));
    }
    for p in &params.paths {
        let bad = p.trim().is_empty()
            || p.starts_with('/')
            || p.contains('\\')
            || p.split('/').any(|s| s == "..");
        if bad {
            return Err(format!(
                "path `{p}` must be relative to the project root, `/`-separated, without `..`"
            ));
        }
    }
    if let Some(s) = params.symbols.iter().find(|s| s.trim().is_empty()) {
        return Err(format!("symbol `{s}` is empty"));
    }
    Ok(params)
}

/// A documented definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Documented {
    pub path: String,
    pub symbol: String,
    pub line: u32,
}

/// A definition that could not be documented, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocFailure {
    pub symbol: String,
    /// Empty when a requested symbol matched nothing.
    pub path: String,
    pub line: u32,
    pub error: String,
}

/// What a `docs` job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocsOutcome {
    /// One `exact` insertion per documented definition, with base hashes.
    pub changeset: ChangeSet,
    pub documented: Vec<Documented>,
    pub failures: Vec<DocFailure>,
    pub usage: TokenUsage,
}

/// One definition to document: its prompt and where the comment goes.
#[derive(Debug, Clone)]
pub struct DocTask {
    pub gap: DocGap,
    pub language: Option<Language>,
    /// The whole line's indentation where the comment goes, and the text between the line
    /// start and the insertion point.
    pub line_indent: String,
    pub prefix_is_blank: bool,
    /// Whitespace right before the insertion point (replaced when the comment needs a line
    /// of its own).
    pub trailing_ws: usize,
    pub request: ChatRequest,
}

/// Everything [`run`] needs, computed from the engine.
#[derive(Debug, Clone)]
pub struct DocsPlan {
    pub tasks: Vec<DocTask>,
    /// Base hashes of the files with tasks.
    pub base_hashes: BTreeMap<String, String>,
    /// Requested symbols that matched no gap, and gaps that could not get a prompt.
    pub failures: Vec<DocFailure>,
}

fn path_matches(filters: &[String], path: &str) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            let f = f.trim_end_matches('/');
            path == f
                || path
                    .strip_prefix(f)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

fn symbol_matches(filters: &[String], gap: &DocGap) -> bool {
    filters.is_empty()
        || filters
            .iter()
            .any(|s| *s == gap.qualified_name || *s == gap.name)
}

/// Gaps, contexts and prompts for a `docs` job (synchronous engine work).
pub fn plan(analysis: &Analysis, params: &DocsParams) -> Result<DocsPlan, AnalysisError> {
    let gaps: Vec<DocGap> = analysis
        .doc_gaps()?
        .into_iter()
        .filter(|g| path_matches(&params.paths, &g.path) && symbol_matches(&params.symbols, g))
        .collect();
    let mut failures: Vec<DocFailure> = params
        .symbols
        .iter()
        .filter(|s| {
            !gaps
                .iter()
                .any(|g| g.qualified_name == **s || g.name == **s)
        })
        .map(|s| DocFailure {
            symbol: s.clone(),
            path: String::new(),
            line: 0,
            error: format!(
                "no public definition named `{s}` without documentation{}",
                if params.paths.is_empty() {
                    String::new()
                } else {
                    " in the given paths".to_owned()
                }
            ),
        })
        .collect();
    let graph = analysis.symbol_graph()?;
    let mut tasks = Vec::with_capacity(gaps.len());
    let mut base_hashes = BTreeMap::new();
    let mut last_insert: Option<(String, u32, String)> = None;
    for gap in gaps {
        let Some(text) = analysis.text(&gap.path) else {
            continue;
        };
        // Two definitions sharing one insertion point (`type ( A int; B int )` …) get one
        // comment: the first one's.
        if let Some((p, at, first)) = &last_insert
            && *p == gap.path
            && *at == gap.insert_offset
        {
            failures.push(DocFailure {
                symbol: gap.qualified_name.clone(),
                path: gap.path.clone(),
                line: gap.line,
                error: format!("shares its doc comment position with `{first}`"),
            });
            continue;
        }
        last_insert = Some((
            gap.path.clone(),
            gap.insert_offset,
            gap.qualified_name.clone(),
        ));
        let pos = FilePosition {
            path: gap.path.clone(),
            line: gap.line,
            column: gap.column,
        };
        let ctx = match analysis.definition_context(&graph, &pos)? {
            Some(ctx) => ctx,
            None => {
                failures.push(DocFailure {
                    symbol: gap.qualified_name.clone(),
                    path: gap.path.clone(),
                    line: gap.line,
                    error: "the engine found no definition at its position".into(),
                });
                continue;
            }
        };
        let repo_map = analysis.repo_map(&graph, &ctx, REPO_MAP_TOKENS)?;
        let insert = gap.insert_offset as usize;
        let line_start = text
            .get(..insert)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |p| p + 1);
        let prefix = text.get(line_start..insert).unwrap_or("");
        let line_indent: String = prefix.chars().take_while(|c| c.is_whitespace()).collect();
        let trailing_ws = prefix.len() - prefix.trim_end().len();
        base_hashes
            .entry(gap.path.clone())
            .or_insert_with(|| content_hash(text.as_bytes()));
        tasks.push(DocTask {
            language: ctx.language,
            line_indent,
            prefix_is_blank: prefix.trim().is_empty(),
            trailing_ws,
            request: doc_request(&ctx, &repo_map),
            gap,
        });
    }
    Ok(DocsPlan {
        tasks,
        base_hashes,
        failures,
    })
}

/// Asks the provider for each task's documentation and renders the change set. Calls
/// `progress(done, total, symbol)` after each definition. Provider errors fail only their
/// definition; the job's token budget stops the remaining ones.
pub async fn run(
    plan: DocsPlan,
    provider: &dyn AiProvider,
    token_budget: u64,
    mut progress: impl FnMut(u64, u64, &str),
) -> DocsOutcome {
    let total = plan.tasks.len() as u64;
    let mut failures = plan.failures;
    let mut documented = Vec::new();
    let mut usage = TokenUsage::default();
    let mut edits: BTreeMap<String, Vec<TextEdit>> = BTreeMap::new();
    for (i, task) in plan.tasks.iter().enumerate() {
        let gap = &task.gap;
        let result = if usage.total() >= token_budget {
            Err(AiError::BudgetExhausted {
                used: usage.total(),
                budget: token_budget,
            }
            .to_string())
        } else {
            match provider.complete(&task.request).await {
                Ok(reply) => {
                    usage.input_tokens += reply.usage.input_tokens;
                    usage.output_tokens += reply.usage.output_tokens;
                    render(task, &reply.text)
                }
                Err(e) => Err(e.to_string()),
            }
        };
        match result {
            Ok(edit) => {
                edits.entry(gap.path.clone()).or_default().push(edit);
                documented.push(Documented {
                    path: gap.path.clone(),
                    symbol: gap.qualified_name.clone(),
                    line: gap.line,
                });
            }
            Err(error) => failures.push(DocFailure {
                symbol: gap.qualified_name.clone(),
                path: gap.path.clone(),
                line: gap.line,
                error,
            }),
        }
        progress(i as u64 + 1, total, &gap.qualified_name);
    }
    let files = edits
        .into_iter()
        .map(|(path, mut edits)| {
            edits.sort_by_key(|e| e.start);
            FileChange {
                base_hash: plan.base_hashes.get(&path).cloned(),
                path,
                edits,
                delete: false,
            }
        })
        .collect();
    let n = documented.len();
    DocsOutcome {
        changeset: ChangeSet {
            title: format!("Document {n} definition{}", if n == 1 { "" } else { "s" }),
            files,
        },
        documented,
        failures,
        usage,
    }
}

/// [`plan`] then [`run`] (holds the snapshot across provider calls: for tests, benchmarks and
/// callers that do not need a `Send` future).
pub async fn generate(
    analysis: &Analysis,
    params: &DocsParams,
    provider: &dyn AiProvider,
    token_budget: u64,
    progress: impl FnMut(u64, u64, &str),
) -> Result<DocsOutcome, AnalysisError> {
    let plan = plan(analysis, params)?;
    Ok(run(plan, provider, token_budget, progress).await)
}

/// The provider's answer as documentation text: code fences, comment markers and surrounding
/// quotes a model may add are removed; blank edges trimmed.
pub fn clean_answer(answer: &str) -> String {
    let mut text = answer.trim().replace("\r\n", "\n");
    // A fenced answer: keep the inside.
    if text.starts_with("```") {
        let inner: Vec<&str> = text.lines().skip(1).collect();
        let end = inner
            .iter()
            .rposition(|l| l.trim_start().starts_with("```"))
            .unwrap_or(inner.len());
        text = inner[..end].join("\n").trim().to_owned();
    }
    for (open, close) in [("\"\"\"", "\"\"\""), ("/**", "*/")] {
        if let Some(inner) = text.strip_prefix(open).and_then(|t| t.strip_suffix(close)) {
            text = inner.trim().to_owned();
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    for marker in ["///", "//", "*", "#"] {
        let all = lines.iter().filter(|l| !l.trim().is_empty()).all(|l| {
            let t = l.trim_start();
            t.starts_with(marker) && !(marker == "#" && t.starts_with("# "))
        });
        if all && !lines.is_empty() && marker != "#" {
            text = lines
                .iter()
                .map(|l| {
                    let t = l.trim_start();
                    let t = t.strip_prefix(marker).unwrap_or(t);
                    t.strip_prefix(' ').unwrap_or(t)
                })
                .collect::<Vec<_>>()
                .join("\n");
            break;
        }
    }
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_matches('\n')
        .to_owned()
}

/// The doc comment's lines (markers included, no indentation) for `text`.
pub fn comment_lines(
    language: Option<Language>,
    syntax: &DocSyntax,
    name: &str,
    text: &str,
) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    match language {
        Some(Language::Python) => {
            // A docstring cannot contain its own delimiter.
            let body = text.replace("\"\"\"", "'''");
            let raw = if body.contains('\\') { "r" } else { "" };
            let mut out: Vec<String> = body.lines().map(str::to_owned).collect();
            if out.is_empty() {
                out.push(String::new());
            }
            let last = out.len() - 1;
            out[0] = format!("{raw}{}{}", syntax.open, out[0]);
            if out[last].ends_with('"') {
                out[last].push(' ');
            }
            if out.len() == 1 {
                out[0].push_str(syntax.close);
            } else {
                out.push(syntax.close.to_owned());
            }
            out
        }
        Some(Language::Go) => {
            let mut text = text.to_owned();
            if !text.starts_with(name) {
                // Go doc comments start with the name they document.
                let mut chars = text.chars();
                let lowered: String = match chars.next() {
                    Some(c) => c.to_lowercase().chain(chars).collect(),
                    None => String::new(),
                };
                text = format!("{name} {lowered}");
            }
            prefixed(&text.lines().collect::<Vec<_>>(), syntax.open)
        }
        _ if syntax.close.is_empty() => prefixed(&lines, syntax.open),
        _ => {
            let escaped: Vec<String> = lines.iter().map(|l| l.replace("*/", "*\\/")).collect();
            if escaped.len() == 1 {
                return vec![format!("{} {} {}", syntax.open, escaped[0], syntax.close)];
            }
            let mut out = vec![syntax.open.to_owned()];
            for l in escaped {
                out.push(if l.is_empty() {
                    " *".to_owned()
                } else {
                    format!(" * {l}")
                });
            }
            out.push(format!(" {}", syntax.close));
            out
        }
    }
}

fn prefixed(lines: &[&str], marker: &str) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                marker.to_owned()
            } else {
                format!("{marker} {l}")
            }
        })
        .collect()
}

/// The edit that inserts the answer as a doc comment for the task's definition.
pub fn render(task: &DocTask, answer: &str) -> Result<TextEdit, String> {
    let text = clean_answer(answer);
    if text.is_empty() {
        return Err("the provider's answer is empty".into());
    }
    let gap = &task.gap;
    let lines = comment_lines(task.language, &gap.syntax, &gap.name, &text);
    let python = task.language == Some(Language::Python);
    let insert = gap.insert_offset as usize;
    let (start, indent, lead) = if task.prefix_is_blank {
        (insert, gap.indent.clone(), String::new())
    } else if python {
        // `def f(): pass`: the docstring and the statement each get a line of the body.
        let indent = format!("{}    ", task.line_indent);
        (
            insert - task.trailing_ws,
            indent.clone(),
            format!("\n{indent}"),
        )
    } else {
        (
            insert,
            task.line_indent.clone(),
            format!("\n{}", task.line_indent),
        )
    };
    let mut new_text = lead;
    for (i, l) in lines.iter().enumerate() {
        if i > 0 && !l.is_empty() {
            new_text.push_str(&indent);
        }
        new_text.push_str(l);
        new_text.push('\n');
    }
    new_text.push_str(&indent);
    Ok(TextEdit {
        start,
        end: insert,
        new_text,
        confidence: Confidence::Exact,
    })
}
