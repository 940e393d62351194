//! Queries only editors ask, on an [`Analysis`] snapshot: parameter names at call sites whose
//! callee resolves exactly (inlay hints), the doc-comment skeleton for the definition under a
//! cursor (the "Add documentation comment" action), warming the whole workspace with progress
//! reports, and a per-snapshot cancellation handle. Like [`crate::ide`]: plain data, no LSP
//! types.
//!
//! Call sites come from a tracked per-file query ([`call_sites`]) that re-parses only the
//! file's text, so scrolling through a file asks tree-sitter once per edit, not per request.

use crate::AnalysisError;
use crate::db::{SourceFile, Workspace, file_index, file_interface};
use crate::ide::{Analysis, FilePosition, Location};
use crate::lang;
use crate::model::{Def, DefIdx, FileIndex, LineIndex, SymbolKind, TextRange};
use crate::resolve::{Target, def_index, file_resolution};
use hivesync_protocol::Confidence;
use hivesync_protocol::Language;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tree_sitter::Node;

/// One argument of a call, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallArgument {
    pub range: TextRange,
    /// `name=value`, `*xs`, `**kw`, `...xs`: arguments that stop positional matching.
    pub positional: bool,
    /// The argument's trailing identifier when it is a plain name or attribute (`x`, `self.x`).
    pub name: Option<String>,
}

/// A call expression: the callee's identifier and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    pub callee: TextRange,
    /// The callee is `obj.m(...)` (its receiver is bound to the first parameter of a method).
    pub receiver: Option<TextRange>,
    pub arguments: Vec<CallArgument>,
}

/// A parameter name to show before an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterHint {
    /// Byte offset where the argument starts.
    pub offset: u32,
    /// 1-based line and character column of `offset`.
    pub line: u32,
    pub column: u32,
    pub parameter: String,
    /// The argument's identifier, when it is a plain name (`x`, `self.x` → `x`).
    pub argument_name: Option<String>,
    /// Number of arguments of the call.
    pub argument_count: usize,
    /// The callee's name.
    pub callee: String,
}

/// A doc comment to insert for one definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSkeleton {
    pub name: String,
    pub insert_offset: u32,
    /// 1-based line and character column of `insert_offset`.
    pub insert_line: u32,
    pub insert_column: u32,
    /// The text to insert at `insert_offset` (ends with the indentation of what follows).
    pub text: String,
}

/// Every call expression of a file, with its arguments, in source order.
#[salsa::tracked(returns(clone))]
pub fn call_sites(db: &dyn salsa::Database, file: SourceFile) -> Arc<Vec<CallSite>> {
    let Some(language) = file.language(db) else {
        return Arc::new(Vec::new());
    };
    let text = file.text(db);
    let parsed;
    let tree = match file.syntax(db) {
        Some(s) if Arc::ptr_eq(&s.text, text) => &s.tree,
        _ => match parse(language, text) {
            Some(t) => {
                parsed = t;
                &parsed
            }
            None => return Arc::new(Vec::new()),
        },
    };
    let mut out = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if matches!(node.kind(), "call" | "call_expression")
            && let Some(site) = call_site(node, text)
        {
            out.push(site);
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    out.sort_by_key(|s| s.callee.start);
    Arc::new(out)
}

pub(crate) fn parse(language: Language, text: &str) -> Option<tree_sitter::Tree> {
    parse_with(language, text, None)
}

/// The syntax tree of one version of a document being edited, kept beside its text (the
/// `syntax` field of [`SourceFile`]) so that the next version re-parses incrementally and
/// [`crate::db::file_index`] indexes it without parsing. It is used only for the very text it
/// was parsed from (the same `Arc`), so it can never describe another text.
pub struct EditorTree {
    pub text: Arc<str>,
    pub tree: tree_sitter::Tree,
}

impl std::fmt::Debug for EditorTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EditorTree({} bytes)", self.text.len())
    }
}

impl EditorTree {
    /// The tree of `text`: an incremental re-parse of `previous` when there is one (the edit is
    /// found by comparing the two texts, so it does not depend on what the editor reported),
    /// else a full parse. `None` when tree-sitter gives up on the text.
    pub fn parse(
        language: Option<Language>,
        text: Arc<str>,
        previous: Option<&EditorTree>,
    ) -> Option<EditorTree> {
        let language = language?;
        let old = previous.map(|p| {
            let mut tree = p.tree.clone();
            tree.edit(&text_edit(&p.text, &text));
            tree
        });
        let tree = parse_with(language, &text, old.as_ref())?;
        Some(EditorTree { text, tree })
    }
}

/// The one edit that turns `old` into `new`: everything between their common prefix and their
/// common suffix (both cut at character boundaries).
pub fn text_edit(old: &str, new: &str) -> tree_sitter::InputEdit {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let mut start = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while !(old.is_char_boundary(start) && new.is_char_boundary(start)) {
        start -= 1;
    }
    let room = a.len().min(b.len()) - start;
    let mut suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    while !(old.is_char_boundary(a.len() - suffix) && new.is_char_boundary(b.len() - suffix)) {
        suffix -= 1;
    }
    let point = |text: &[u8], at: usize| {
        let before = &text[..at];
        let row = before.iter().filter(|&&c| c == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        tree_sitter::Point::new(row, at - line_start)
    };
    let start_position = point(a, start);
    let old_end = a.len() - suffix;
    let new_end = b.len() - suffix;
    // Rows and columns after `start` are counted from `start` only.
    let advance = |text: &[u8], end: usize| {
        let span = &text[start..end];
        match span.iter().rposition(|&c| c == b'\n') {
            Some(last) => tree_sitter::Point::new(
                start_position.row + span.iter().filter(|&&c| c == b'\n').count(),
                end - (start + last + 1),
            ),
            None => {
                tree_sitter::Point::new(start_position.row, start_position.column + (end - start))
            }
        }
    };
    tree_sitter::InputEdit {
        start_byte: start,
        old_end_byte: old_end,
        new_end_byte: new_end,
        start_position,
        old_end_position: advance(a, old_end),
        new_end_position: advance(b, new_end),
    }
}

fn parse_with(
    language: Language,
    text: &str,
    old: Option<&tree_sitter::Tree>,
) -> Option<tree_sitter::Tree> {
    lang::grammar_of(language).reparse(text, old)
}

fn range(node: Node<'_>) -> TextRange {
    TextRange::new(node.start_byte(), node.end_byte())
}

/// The identifier that names what `node` evaluates to (`f`, `a.b.f` → `f`).
fn last_identifier(node: Node<'_>) -> Option<Node<'_>> {
    match node.kind() {
        "identifier" | "property_identifier" | "field_identifier" | "type_identifier" => Some(node),
        "attribute" => node.child_by_field_name("attribute"),
        "member_expression" => node.child_by_field_name("property"),
        "selector_expression" | "field_expression" => node.child_by_field_name("field"),
        "scoped_identifier" => node.child_by_field_name("name"),
        "generic_function" => node
            .child_by_field_name("function")
            .and_then(last_identifier),
        "parenthesized_expression" => node.named_child(0).and_then(last_identifier),
        _ => None,
    }
}

/// The receiver of `obj.m` (`obj`), when the callee is a member access.
fn receiver(node: Node<'_>) -> Option<Node<'_>> {
    match node.kind() {
        "attribute" | "member_expression" => node.child_by_field_name("object"),
        "selector_expression" => node.child_by_field_name("operand"),
        "field_expression" => node.child_by_field_name("value"),
        _ => None,
    }
}

fn call_site(node: Node<'_>, text: &str) -> Option<CallSite> {
    let function = node.child_by_field_name("function")?;
    let callee = last_identifier(function)?;
    let args = node.child_by_field_name("arguments")?;
    if !matches!(args.kind(), "argument_list" | "arguments") {
        return None;
    }
    let mut cursor = args.walk();
    let arguments = args
        .named_children(&mut cursor)
        .filter(|a| a.kind() != "comment")
        .map(|a| {
            let positional = !matches!(
                a.kind(),
                "keyword_argument"
                    | "list_splat"
                    | "dictionary_splat"
                    | "spread_element"
                    | "variadic_argument"
            );
            let name = last_identifier(a)
                .filter(|n| n.kind() != "type_identifier")
                .and_then(|n| text.get(n.byte_range()))
                .map(str::to_owned);
            CallArgument {
                range: range(a),
                positional,
                name,
            }
        })
        .collect();
    Some(CallSite {
        callee: range(callee),
        receiver: receiver(function).map(range),
        arguments,
    })
}

/// The parameters of a function definition, in order.
pub(crate) fn parameters(index: &FileIndex, d: DefIdx) -> Vec<&Def> {
    let Some(def) = index.def(d) else {
        return Vec::new();
    };
    let Some(body) = def.body else {
        return Vec::new();
    };
    let mut params: Vec<&Def> = index
        .defs
        .iter()
        .filter(|p| {
            p.kind == SymbolKind::Parameter
                && p.scope == body
                && def.full_range.contains_range(p.full_range)
        })
        .collect();
    params.sort_by_key(|p| p.name_range.start);
    params
}

fn is_variadic(param: &Def) -> bool {
    param
        .signature
        .as_deref()
        .is_some_and(|s| s.starts_with('*') || s.starts_with("...") || s.contains("..."))
}

impl Analysis {
    /// Parameter names for the arguments of calls inside `range` (a byte range of the file)
    /// whose callee resolves exactly to a function, method or class in the project. Calls with
    /// probable or unresolved callees get no hints; matching stops at the first keyword or
    /// spread argument and at a variadic parameter.
    pub fn parameter_hints(
        &self,
        path: &str,
        range: Option<TextRange>,
    ) -> Result<Vec<ParameterHint>, AnalysisError> {
        self.catch_editor(|| {
            let db = self.db();
            let file = self
                .file(path)
                .ok_or_else(|| AnalysisError::FileNotFound(path.to_owned()))?;
            if file.language(db).and_then(lang::module_for).is_none() {
                return Ok(Vec::new());
            }
            let index = file_index(db, file);
            let res = file_resolution(db, file);
            let text = file.text(db);
            let li = LineIndex::new(text);
            let mut out = Vec::new();
            for site in call_sites(db, file).iter() {
                if range.is_some_and(|r| !r.contains_range(site.callee)) {
                    continue;
                }
                let Some(r) = index.refs.iter().position(|r| r.range == site.callee) else {
                    continue;
                };
                let Some(Target::Def(id)) = res.targets.get(r) else {
                    continue;
                };
                let target_index = file_index(db, id.file);
                let Some(d) = def_index(&target_index, id) else {
                    continue;
                };
                let Some(def) = target_index.def(d) else {
                    continue;
                };
                let (callable, drop_first) = match def.kind {
                    SymbolKind::Function => (Some(d), false),
                    SymbolKind::Method => (Some(d), site.receiver.is_some()),
                    SymbolKind::Class => {
                        let init = target_index.children(Some(d)).find(|(_, m)| {
                            m.kind == SymbolKind::Method
                                && matches!(&*m.name, "__init__" | "constructor")
                        });
                        (init.map(|(i, _)| i), true)
                    }
                    _ => (None, false),
                };
                let Some(callable) = callable else { continue };
                let mut params = parameters(&target_index, callable);
                let language = target_index.language;
                if language == Some(Language::Python)
                    && drop_first
                    && params
                        .first()
                        .is_some_and(|p| matches!(&*p.name, "self" | "cls"))
                {
                    params.remove(0);
                }
                let callee = text
                    .get(site.callee.as_usize())
                    .unwrap_or_default()
                    .to_owned();
                for (arg, param) in site.arguments.iter().zip(params) {
                    if !arg.positional || is_variadic(param) {
                        break;
                    }
                    let (line, column) = li.position(text, arg.range.start);
                    out.push(ParameterHint {
                        offset: arg.range.start,
                        line,
                        column,
                        parameter: param.name.to_string(),
                        argument_name: arg.name.clone(),
                        argument_count: site.arguments.len(),
                        callee: callee.clone(),
                    });
                }
            }
            Ok(out)
        })
    }

    /// The doc-comment skeleton for the innermost function, method, class or other documentable
    /// definition at `pos` (on its name or anywhere inside it) that has no doc comment yet.
    pub fn doc_skeleton(&self, pos: &FilePosition) -> Result<Option<DocSkeleton>, AnalysisError> {
        self.catch_editor(|| {
            let db = self.db();
            let file = self
                .file(&pos.path)
                .ok_or_else(|| AnalysisError::FileNotFound(pos.path.clone()))?;
            let Some(module) = file.language(db).and_then(lang::module_for) else {
                return Ok(None);
            };
            let text = file.text(db);
            let li = LineIndex::new(text);
            let offset = li.offset(text, pos.line, pos.column).ok_or_else(|| {
                AnalysisError::PositionOutOfRange {
                    path: pos.path.clone(),
                    line: pos.line,
                    column: pos.column,
                }
            })?;
            let index = file_index(db, file);
            let Some((d, def)) = index
                .defs
                .iter()
                .enumerate()
                .filter(|(_, d)| d.kind.wants_doc() && d.full_range.touches(offset))
                .min_by_key(|(_, d)| d.full_range.len())
            else {
                return Ok(None);
            };
            if def.doc.is_some() {
                return Ok(None);
            }
            let insert = def.doc_insert.unwrap_or(def.full_range.start);
            let line_start = text
                .get(..insert as usize)
                .and_then(|t| t.rfind('\n'))
                .map(|p| p + 1)
                .unwrap_or(0);
            let indent: String = text
                .get(line_start..insert as usize)
                .unwrap_or("")
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            let params: Vec<String> = parameters(&index, d as DefIdx)
                .into_iter()
                .map(|p| p.name.to_string())
                .filter(|n| !matches!(n.as_str(), "self" | "cls"))
                .collect();
            let syntax = module.doc_syntax();
            let text_out = skeleton(
                index.language,
                syntax,
                &def.name,
                def.kind,
                &params,
                &indent,
            );
            let (insert_line, insert_column) = li.position(text, insert);
            Ok(Some(DocSkeleton {
                name: def.name.to_string(),
                insert_offset: insert,
                insert_line,
                insert_column,
                text: text_out,
            }))
        })
    }

    /// Indexes and resolves every file like [`Analysis::warm`], calling `progress(done, total)`
    /// as files finish (first the index phase, then resolution: `total` is twice the file
    /// count). Returns [`AnalysisError::Cancelled`] when a change interrupts it.
    pub fn warm_with_progress(
        &self,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(), AnalysisError> {
        let total = self.all_files().len() * 2;
        let done = AtomicUsize::new(0);
        let tick = || {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(n, total);
        };
        self.each_file_in_parallel(&|db, f| {
            file_interface(db, f);
            tick();
        })?;
        self.each_file_in_parallel(&|db, f| {
            file_resolution(db, f);
            tick();
        })?;
        Ok(())
    }

    /// Every probable reference named `name` (`obj.name` where the type of `obj` is unknown),
    /// sorted by path and position. After a rename of a member, these are the sites that may
    /// still use the old name.
    pub fn probable_references_named(&self, name: &str) -> Result<Vec<Location>, AnalysisError> {
        self.catch_editor(|| {
            let db = self.db();
            let files: Vec<SourceFile> = Workspace::try_get(db)
                .map(|ws| ws.files(db).to_vec())
                .unwrap_or_default();
            let mut out = Vec::new();
            for f in files {
                salsa::Database::unwind_if_revision_cancelled(db);
                let res = file_resolution(db, f);
                let Some(refs) = res.probable.get(name) else {
                    continue;
                };
                let index = file_index(db, f);
                for &r in refs {
                    if let Some(reference) = index.refs.get(r as usize) {
                        let mut loc = self.location_of(f, reference.range);
                        loc.confidence = Confidence::Probable;
                        out.push(loc);
                    }
                }
            }
            out.sort();
            Ok(out)
        })
    }

    /// A handle that cancels queries running on this snapshot (only this one): they return
    /// [`AnalysisError::Cancelled`]. Editors cancel a request's work when the request is.
    pub fn cancellation_token(&self) -> salsa::CancellationToken {
        salsa::Database::cancellation_token(self.db())
    }

    fn catch_editor<T>(
        &self,
        f: impl FnOnce() -> Result<T, AnalysisError>,
    ) -> Result<T, AnalysisError> {
        match salsa::Cancelled::catch(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(_) => Err(AnalysisError::Cancelled),
        }
    }
}

/// The language's doc comment for a definition, ending with `indent` so that the line it is
/// inserted before keeps its indentation.
fn skeleton(
    language: Option<Language>,
    syntax: lang::DocSyntax,
    name: &str,
    kind: SymbolKind,
    params: &[String],
    indent: &str,
) -> String {
    let callable = matches!(kind, SymbolKind::Function | SymbolKind::Method);
    let mut lines: Vec<String> = Vec::new();
    match language {
        Some(Language::Python) => {
            lines.push(format!("{}TODO: describe `{name}`.", syntax.open));
            if callable && !params.is_empty() {
                lines.push(String::new());
                lines.push("Args:".to_owned());
                for p in params {
                    lines.push(format!("    {p}: TODO."));
                }
            }
            lines.push(syntax.close.to_owned());
        }
        Some(Language::Go) => lines.push(format!("{} {name} TODO: describe it.", syntax.open)),
        Some(Language::Rust) => lines.push(format!("{} TODO: describe `{name}`.", syntax.open)),
        _ if syntax.close.is_empty() => {
            lines.push(format!("{} TODO: describe `{name}`.", syntax.open));
        }
        _ => {
            lines.push(syntax.open.to_owned());
            lines.push(format!(" * TODO: describe `{name}`."));
            if callable {
                for p in params {
                    lines.push(format!(" * @param {p} TODO."));
                }
            }
            lines.push(format!(" {}", syntax.close));
        }
    }
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 && !l.is_empty() {
            out.push_str(indent);
        }
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(indent);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AnalysisHost;

    fn host(files: &[(&str, &str)]) -> AnalysisHost {
        let mut host = AnalysisHost::new();
        for (p, t) in files {
            host.set_file(p, *t);
        }
        host
    }

    #[test]
    fn hints_name_parameters_of_exactly_resolved_calls() {
        let host = host(&[
            (
                "lib.py",
                "def area(width, height, *rest):\n    return width * height\n\nclass Box:\n    def __init__(self, size):\n        self.size = size\n    def grow(self, by):\n        return by\n",
            ),
            (
                "app.py",
                "from lib import area, Box\n\nw = 2\nprint(area(w, 3, 4, 5))\nb = Box(7)\nb.grow(1)\nBox(7).grow(by=2)\n",
            ),
        ]);
        let a = host.snapshot();
        let hints = a.parameter_hints("app.py", None).expect("hints");
        let names: Vec<(&str, Option<&str>)> = hints
            .iter()
            .map(|h| (h.parameter.as_str(), h.argument_name.as_deref()))
            .collect();
        // `print` is a builtin and `b.grow` is probable: no hints. `*rest` stops matching;
        // `by=2` is a keyword argument.
        assert_eq!(
            names,
            vec![
                ("width", Some("w")),
                ("height", None),
                ("size", None),
                ("size", None)
            ]
        );
        assert_eq!((hints[0].line, hints[0].column), (4, 12));
    }

    #[test]
    fn skeleton_for_python_function_goes_into_the_body() {
        let host = host(&[("m.py", "def f(a, b):\n    return a\n")]);
        let a = host.snapshot();
        let pos = FilePosition {
            path: "m.py".into(),
            line: 1,
            column: 5,
        };
        let s = a.doc_skeleton(&pos).expect("ok").expect("a skeleton");
        assert_eq!(s.insert_offset, 17);
        assert_eq!(
            s.text,
            "\"\"\"TODO: describe `f`.\n\n    Args:\n        a: TODO.\n        b: TODO.\n    \"\"\"\n    "
        );
        let host2 = self::host(&[("m.py", "def f(a):\n    \"\"\"Doc.\"\"\"\n")]);
        assert_eq!(host2.snapshot().doc_skeleton(&pos).expect("ok"), None);
    }

    #[test]
    fn probable_references_by_name() {
        let host = host(&[
            ("a.py", "class A:\n    def area(self):\n        pass\n"),
            ("b.py", "def f(x):\n    return x.area() + x.other()\n"),
        ]);
        let found = host
            .snapshot()
            .probable_references_named("area")
            .expect("query");
        let places: Vec<(&str, u32, u32)> = found
            .iter()
            .map(|l| (l.path.as_str(), l.line, l.column))
            .collect();
        assert_eq!(places, vec![("b.py", 2, 14)]);
        assert_eq!(found[0].confidence, Confidence::Probable);
    }

    #[test]
    fn warm_reports_progress_to_the_total() {
        let host = host(&[("a.py", "x = 1\n"), ("b.py", "from a import x\n")]);
        let seen = std::sync::Mutex::new(Vec::new());
        host.snapshot()
            .warm_with_progress(&|done, total| {
                seen.lock().expect("lock").push((done, total));
            })
            .expect("warm");
        let seen = seen.into_inner().expect("lock");
        assert_eq!(seen.len(), 4);
        assert!(seen.contains(&(4, 4)));
    }

    /// Applies `(start, end, replacement)` byte edits one at a time, as an editor would type
    /// them, through [`AnalysisHost::set_edited_file`]; after each, the incrementally re-parsed
    /// tree and the index built from it equal a full parse of the same text.
    #[test]
    fn incremental_reparse_equals_a_full_parse() {
        let mut text = String::from(
            "import os\n\nclass Café:\n    \"\"\"Crème brûlée.\"\"\"\n\n    def run(self, n):\n        total = 0\n        for i in range(n):\n            total += i  # ünïcode\n        return total\n\n\ndef helper(x):\n    return os.path.join(x, \"日本\")\n",
        );
        let mut host = AnalysisHost::new();
        host.set_edited_file("m.py", text.as_str());
        let at = |t: &str, s: &str| t.find(s).expect("anchor");
        let edits: Vec<(&str, usize, &str)> = vec![
            // (anchor, bytes to remove from it, text to insert)
            ("total = 0", 0, "x"),
            ("xtotal", 1, ""),
            ("return total", 0, "probe = ü + 1\n        "),
            // Spans lines: joins the loop header with its body.
            ("for i in range(n):\n", 19, "for i in range(n): "),
            // Replaces a multi-byte character with another of a different width.
            ("ünïcode", 2, "u"),
            ("Café", 5, "Caf€"),
            // An unclosed bracket swallows what follows, then is closed.
            ("def helper", 0, "value = (\n"),
            ("value = (\n", 10, "value = ()\n"),
            ("日本", 6, "\u{1F600}"),
            // Deletes across several lines, then a whole new text.
            ("class Caf€", 30, ""),
        ];
        let python = lang::module_for(Language::Python).expect("python");
        let check = |host: &AnalysisHost, text: &str| {
            let db = host.db();
            let file = host.file("m.py").expect("file");
            let syntax = file.syntax(db).clone().expect("a kept tree");
            assert_eq!(&*syntax.text, text);
            let fresh = parse(Language::Python, text).expect("parses");
            assert_eq!(
                syntax.tree.root_node().to_sexp(),
                fresh.root_node().to_sexp()
            );
            assert_eq!(
                *file_index(db, file),
                python.index(Language::Python, "m.py", text),
                "after editing to {text:?}"
            );
        };
        check(&host, &text);
        for (anchor, remove, insert) in edits {
            let start = at(&text, anchor);
            text.replace_range(start..start + remove, insert);
            host.set_edited_file("m.py", text.as_str());
            check(&host, &text);
        }
        text = "def other():\n    pass\n".to_owned();
        host.set_edited_file("m.py", text.as_str());
        check(&host, &text);
        // Handed back to disk: the tree is dropped.
        host.set_file("m.py", "x = 1\n");
        let file = host.file("m.py").expect("file");
        assert!(file.syntax(host.db()).is_none());
        assert_eq!(file_index(host.db(), file).defs.len(), 1);
    }

    /// An edit: (anchor, bytes to remove from it, text to insert).
    type Edit = (&'static str, usize, &'static str);

    /// The same for the other languages' grammars (TypeScript, TSX, Rust, Go).
    #[test]
    fn incremental_reparse_equals_a_full_parse_in_every_language() {
        let cases: [(&str, Language, &str, &[Edit]); 4] = [
            (
                "m.ts",
                Language::TypeScript,
                "import { a } from './a';\n\nexport class Café {\n  run(n: number): number {\n    let total = 0;\n    return total + a(n); // ü\n  }\n}\n",
                &[
                    ("total = 0", 0, "x"),
                    ("xtotal", 1, ""),
                    ("return", 0, "const ü = (\n    "),
                    ("const ü = (\n", 0, ""),
                ],
            ),
            (
                "m.tsx",
                Language::Tsx,
                "export function View({ name }: { name: string }) {\n  return <div title=\"é\">{name}</div>;\n}\n",
                &[
                    ("{name}</div>", 6, "{name.trim()}"),
                    ("title=", 0, "id=\"x\" "),
                ],
            ),
            (
                "m.rs",
                Language::Rust,
                "use std::fmt;\n\npub struct Café;\n\nimpl Café {\n    pub fn run(&self, n: u32) -> u32 {\n        let total = 0;\n        total + n // ü\n    }\n}\n",
                &[
                    ("total = 0", 0, "x"),
                    ("xtotal", 1, ""),
                    ("total + n", 0, "let ü = {\n        "),
                    ("let ü = {\n        ", 10, ""),
                ],
            ),
            (
                "m.go",
                Language::Go,
                "package m\n\nimport \"fmt\"\n\n// Run sums.\nfunc Run(n int) int {\n\ttotal := 0\n\tfmt.Println(\"é\")\n\treturn total + n\n}\n",
                &[
                    ("total := 0", 0, "x"),
                    ("xtotal", 1, ""),
                    ("return", 0, "if n > 0 {\n\t"),
                    ("if n > 0 {\n\t", 11, ""),
                ],
            ),
        ];
        for (path, language, start, edits) in cases {
            let module = lang::module_for(language).expect("module");
            let mut text = start.to_owned();
            let mut host = AnalysisHost::new();
            host.set_edited_file(path, text.as_str());
            let check = |host: &AnalysisHost, text: &str| {
                let db = host.db();
                let file = host.file(path).expect("file");
                let syntax = file.syntax(db).clone().expect("a kept tree");
                assert_eq!(&*syntax.text, text);
                let fresh = parse(language, text).expect("parses");
                assert_eq!(
                    syntax.tree.root_node().to_sexp(),
                    fresh.root_node().to_sexp(),
                    "{path}: {text:?}"
                );
                assert_eq!(
                    *file_index(db, file),
                    module.index(language, path, text),
                    "{path}: after editing to {text:?}"
                );
            };
            check(&host, &text);
            for (anchor, remove, insert) in edits {
                let at = text.find(anchor).expect("anchor");
                text.replace_range(at..at + remove, insert);
                host.set_edited_file(path, text.as_str());
                check(&host, &text);
            }
        }
    }

    #[test]
    fn text_edit_spans_the_changed_bytes_at_char_boundaries() {
        let e = text_edit("a\nbé\nc", "a\nbè\nc");
        assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (3, 5, 5));
        assert_eq!(e.start_position, tree_sitter::Point::new(1, 1));
        assert_eq!(e.old_end_position, tree_sitter::Point::new(1, 3));
        let e = text_edit("ab\ncd", "ab\nX\nY\ncd");
        assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (3, 3, 7));
        assert_eq!(e.new_end_position, tree_sitter::Point::new(3, 0));
        let e = text_edit("same", "same");
        assert_eq!((e.start_byte, e.old_end_byte, e.new_end_byte), (4, 4, 4));
    }

    #[test]
    fn cancelled_snapshot_returns_cancelled() {
        let host = host(&[("a.py", "def f():\n    pass\n")]);
        let a = host.snapshot();
        a.cancellation_token().cancel();
        let pos = FilePosition {
            path: "a.py".into(),
            line: 1,
            column: 5,
        };
        assert_eq!(a.definition(&pos), Err(AnalysisError::Cancelled));
    }
}
