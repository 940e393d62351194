//! What documentation and explanations need to know about a definition, on an [`Analysis`]
//! snapshot: its source, parameters, return type, the errors its body raises or throws, who
//! calls it and what it calls (from the symbol graph), and a ranked map of the repository
//! around it — in the spirit of aider's repo map: the most referenced neighbours first, cut to
//! a token budget.
//!
//! [`SymbolGraph`] is built once per snapshot (one pass over every file's resolution) and
//! answers reference counts and incoming references cheaply; [`Analysis::definition_context`]
//! and [`Analysis::repo_map`] use it. Thrown errors and returned values come from a tracked
//! per-file query ([`body_facts`]) that parses the file once per edit.

use crate::AnalysisError;
use crate::db::{SourceFile, Workspace, file_index, line_index};
use crate::editor::{parameters, parse};
use crate::ide::{Analysis, FilePosition};
use crate::model::{Def, DefIdx, FileIndex, Qualifier, RefIdx, SymbolKind, TextRange};
use crate::resolve::{DefId, DefKey, Target, def_id, file_resolution};
use hivesync_protocol::Language;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tree_sitter::Node;

/// At most this many callers and callees are listed per definition.
pub const MAX_NEIGHBOURS: usize = 12;
/// Definitions kept in the graph's "most referenced" list, the global part of every repo map.
const TOP_REFERENCED: usize = 200;

/// A definition as the repository map and neighbour lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefSummary {
    pub path: String,
    /// Dotted path inside the file (`Class.method`); `<module>` for top-level code.
    pub qualified_name: String,
    pub kind: SymbolKind,
    /// 1-based line of the name.
    pub line: u32,
    pub signature: Option<String>,
    /// Exact references to it in the whole project.
    pub references: usize,
}

/// One parameter of a callable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterInfo {
    pub name: String,
    /// The parameter as written (`a: int = 1`, `ctx context.Context`).
    pub declaration: String,
    /// The type annotation, when written.
    pub annotation: Option<String>,
}

/// Everything the engine knows about one definition, for a prompt or an offline doc comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionContext {
    pub path: String,
    pub language: Option<Language>,
    pub name: String,
    pub qualified_name: String,
    pub kind: SymbolKind,
    pub line: u32,
    pub signature: Option<String>,
    /// The definition's whole source text.
    pub source: String,
    /// Parameters in order, without `self`/`cls` and Go receivers.
    pub parameters: Vec<ParameterInfo>,
    /// The declared return type (`-> int`, `: string`, Go results).
    pub return_type: Option<String>,
    /// The body returns a value (`return x`) somewhere.
    pub returns_value: bool,
    /// Errors raised or thrown in the body, in order, deduplicated (`ValueError`, `panic`).
    pub raises: Vec<String>,
    /// Definitions whose code refers to this one (or `<module>` for top-level code), at most
    /// [`MAX_NEIGHBOURS`], most referenced first.
    pub callers: Vec<DefSummary>,
    /// Project definitions this one's body refers to, at most [`MAX_NEIGHBOURS`], in order of
    /// first use.
    pub callees: Vec<DefSummary>,
    /// Exact references to this definition in the whole project.
    pub references: usize,
}

/// Exact references per definition over the whole project, built once per snapshot.
pub struct SymbolGraph {
    incoming: HashMap<DefId, Vec<(SourceFile, RefIdx)>>,
    top: Vec<DefSummary>,
    /// Documentable items per file with their reference counts, computed on first use.
    items: std::sync::Mutex<HashMap<SourceFile, Arc<Vec<DefSummary>>>>,
}

impl SymbolGraph {
    /// Exact references to `id`.
    fn count(&self, id: &DefId) -> usize {
        self.incoming.get(id).map_or(0, Vec::len)
    }

    /// The most referenced definitions of the project, most referenced first.
    pub fn most_referenced(&self) -> &[DefSummary] {
        &self.top
    }
}

/// Errors and returned values found in a file's bodies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyFacts {
    /// `raise X(…)`, `throw new X(…)`, `panic!(…)`, `Err(X::Y)`, `panic(…)`: where, and the
    /// error's name.
    pub throws: Vec<(TextRange, String)>,
    /// `return <value>` statements.
    pub returns: Vec<TextRange>,
}

/// Thrown errors and value returns of one file (parses the file once per edit).
#[salsa::tracked(returns(clone))]
pub fn body_facts(db: &dyn salsa::Database, file: SourceFile) -> Arc<BodyFacts> {
    let Some(language) = file.language(db) else {
        return Arc::new(BodyFacts::default());
    };
    let text = file.text(db);
    let Some(tree) = parse(language, text) else {
        return Arc::new(BodyFacts::default());
    };
    let mut facts = BodyFacts::default();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        collect_fact(language, node, text, &mut facts);
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    Arc::new(facts)
}

fn node_text<'t>(node: Node<'_>, text: &'t str) -> &'t str {
    text.get(node.byte_range()).unwrap_or("")
}

/// The name of an error expression: `errors.NotFound("x")` → `errors.NotFound`.
fn error_name(node: Node<'_>, text: &str) -> Option<String> {
    let target = match node.kind() {
        "call" | "call_expression" => node.child_by_field_name("function")?,
        "new_expression" => node.child_by_field_name("constructor")?,
        _ => node,
    };
    let raw = node_text(target, text);
    let name: String = raw
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '$'))
        .take(80)
        .collect();
    (!name.is_empty()).then_some(name)
}

fn collect_fact(language: Language, node: Node<'_>, text: &str, facts: &mut BodyFacts) {
    let range = TextRange::new(node.start_byte(), node.end_byte());
    match (language, node.kind()) {
        (Language::Python, "raise_statement") => {
            if let Some(name) = node.named_child(0).and_then(|e| error_name(e, text)) {
                facts.throws.push((range, name));
            }
        }
        (Language::TypeScript | Language::Tsx | Language::JavaScript, "throw_statement") => {
            if let Some(name) = node.named_child(0).and_then(|e| error_name(e, text)) {
                facts.throws.push((range, name));
            }
        }
        (Language::Rust, "macro_invocation") => {
            let name = node
                .child_by_field_name("macro")
                .map(|m| node_text(m, text))
                .unwrap_or("");
            if matches!(name, "panic" | "unreachable" | "unimplemented" | "todo") {
                facts.throws.push((range, "panic".to_owned()));
            }
        }
        (Language::Rust, "call_expression") => {
            let function = node.child_by_field_name("function");
            if function.is_some_and(|f| node_text(f, text) == "Err")
                && let Some(arg) = node
                    .child_by_field_name("arguments")
                    .and_then(|a| a.named_child(0))
                && let Some(name) = error_name(arg, text)
            {
                facts.throws.push((range, name));
            }
        }
        (Language::Go, "call_expression")
            if node
                .child_by_field_name("function")
                .is_some_and(|f| node_text(f, text) == "panic") =>
        {
            facts.throws.push((range, "panic".to_owned()));
        }
        (_, "return_statement" | "return_expression") if node.named_child_count() > 0 => {
            facts.returns.push(range);
        }
        _ => {}
    }
}

/// The innermost function or method of `index` whose source contains `range`.
fn innermost_callable(index: &FileIndex, range: TextRange) -> Option<DefIdx> {
    index
        .defs
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            matches!(d.kind, SymbolKind::Function | SymbolKind::Method)
                && d.full_range.contains_range(range)
        })
        .min_by_key(|(_, d)| d.full_range.len())
        .map(|(i, _)| i as DefIdx)
}

/// The innermost documentable definition (function, class…) containing `range`: the "caller"
/// of a reference there.
fn enclosing_item(index: &FileIndex, range: TextRange) -> Option<DefIdx> {
    index
        .defs
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.kind.wants_doc() && d.full_range.contains_range(range) && d.name_range != range
        })
        .min_by_key(|(_, d)| d.full_range.len())
        .map(|(i, _)| i as DefIdx)
}

/// The declared return type found in a one-line signature.
pub fn return_type(language: Option<Language>, signature: &str) -> Option<String> {
    let sig = signature.trim().trim_end_matches(['{', ':', ';']).trim();
    let found = match language? {
        Language::Python => sig.rsplit_once("->").map(|(_, r)| r.trim().to_owned()),
        Language::Rust => {
            let after = after_params(sig, sig.find("fn ").map_or(0, |i| i + 3))?;
            let after = after.trim_start();
            after.strip_prefix("->").map(|r| {
                let r = r.split(" where ").next().unwrap_or(r);
                r.trim().to_owned()
            })
        }
        Language::TypeScript | Language::Tsx | Language::JavaScript => {
            let start = sig.find('(').unwrap_or(0);
            let after = after_params(sig, start)?;
            after
                .trim_start()
                .strip_prefix(':')
                .map(|r| r.trim().trim_end_matches("=>").trim().to_owned())
        }
        Language::Go => {
            let rest = sig.strip_prefix("func")?.trim_start();
            // A method's receiver comes first: `func (r *T) Name(…) …`.
            let rest = if rest.starts_with('(') {
                after_params(rest, 0)?.trim_start()
            } else {
                rest
            };
            let start = rest.find('(')?;
            Some(after_params(rest, start)?.trim().to_owned())
        }
    };
    found.filter(|r| !r.is_empty())
}

/// The text after the parenthesised list that starts at or after byte `from`.
fn after_params(sig: &str, from: usize) -> Option<&str> {
    let open = from + sig.get(from..)?.find('(')?;
    let mut depth = 0i32;
    for (i, c) in sig.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '(' | '[' | '<' | '{' => depth += 1,
            ')' | ']' | '>' | '}' => {
                // `->` and `=>` are not closing brackets.
                if c == '>' && sig[..i].ends_with(['-', '=']) {
                    continue;
                }
                depth -= 1;
                if depth == 0 {
                    return sig.get(i + 1..);
                }
            }
            _ => {}
        }
    }
    None
}

fn parameter_info(language: Option<Language>, p: &Def) -> ParameterInfo {
    let declaration = p.signature.clone().unwrap_or_else(|| p.name.to_string());
    let annotation = match language {
        Some(Language::Go) => declaration
            .split_once(char::is_whitespace)
            .map(|(_, t)| t.trim().to_owned()),
        _ => declaration.split_once(':').map(|(_, t)| {
            let t = t.split_once('=').map_or(t, |(t, _)| t);
            t.trim().to_owned()
        }),
    }
    .filter(|a| !a.is_empty());
    ParameterInfo {
        name: p.name.to_string(),
        declaration,
        annotation,
    }
}

impl Analysis {
    fn workspace_files(&self) -> Vec<SourceFile> {
        Workspace::try_get(self.db())
            .map(|ws| ws.files(self.db()).to_vec())
            .unwrap_or_default()
    }

    /// Exact references per definition over the whole project (one pass over every file's
    /// resolution; warm the snapshot first on big projects).
    pub fn symbol_graph(&self) -> Result<SymbolGraph, AnalysisError> {
        self.catch(|| {
            let db = self.db();
            let mut incoming: HashMap<DefId, Vec<(SourceFile, RefIdx)>> = HashMap::new();
            for f in self.workspace_files() {
                salsa::Database::unwind_if_revision_cancelled(db);
                let res = file_resolution(db, f);
                let mut ids: Vec<(&DefId, &Vec<RefIdx>)> = res.by_def.iter().collect();
                // Deterministic order inside a file: by first reference.
                ids.sort_by_key(|(_, refs)| refs.first().copied());
                for (id, refs) in ids {
                    let entry = incoming.entry(id.clone()).or_default();
                    entry.extend(refs.iter().map(|&r| (f, r)));
                }
            }
            let mut ranked: Vec<(&DefId, usize)> = incoming
                .iter()
                .filter(|(id, _)| matches!(id.key, DefKey::Path(_)))
                .map(|(id, refs)| (id, refs.len()))
                .collect();
            ranked.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| self.id_sort_key(a.0).cmp(&self.id_sort_key(b.0)))
            });
            let mut graph = SymbolGraph {
                incoming: HashMap::new(),
                top: Vec::new(),
                items: std::sync::Mutex::default(),
            };
            let top: Vec<DefSummary> = ranked
                .iter()
                .filter_map(|(id, n)| {
                    let (index, d) = self.def_of(id)?;
                    let def = index.def(d)?;
                    def.kind.wants_doc().then(|| self.summary(id.file, def, *n))
                })
                .take(TOP_REFERENCED)
                .collect();
            graph.top = top;
            graph.incoming = incoming;
            Ok(graph)
        })
    }

    fn id_sort_key(&self, id: &DefId) -> (String, String) {
        let key = match &id.key {
            DefKey::Path(k) => k.to_string(),
            DefKey::Local(i) => format!("#{i:08}"),
        };
        (id.file.path(self.db()).to_string(), key)
    }

    fn summary(&self, file: SourceFile, def: &Def, references: usize) -> DefSummary {
        let db = self.db();
        let (line, _) = line_index(db, file).position(file.text(db), def.name_range.start);
        DefSummary {
            path: file.path(db).to_string(),
            qualified_name: def.key.as_deref().unwrap_or(&def.name).to_owned(),
            kind: def.kind,
            line,
            signature: def.signature.clone(),
            references,
        }
    }

    /// The documentable items of `file` visible to other files, with reference counts.
    fn file_items(&self, graph: &SymbolGraph, file: SourceFile) -> Arc<Vec<DefSummary>> {
        let cached = graph.items.lock().ok().and_then(|m| m.get(&file).cloned());
        if let Some(items) = cached {
            return items;
        }
        let index = file_index(self.db(), file);
        let items: Arc<Vec<DefSummary>> = Arc::new(
            index
                .defs
                .iter()
                .enumerate()
                .filter(|(_, d)| d.key.is_some() && d.kind.wants_doc())
                .map(|(i, d)| {
                    let n = graph.count(&def_id(file, &index, i as DefIdx));
                    self.summary(file, d, n)
                })
                .collect(),
        );
        if let Ok(mut m) = graph.items.lock() {
            m.insert(file, items.clone());
        }
        items
    }

    fn module_summary(&self, file: SourceFile) -> DefSummary {
        DefSummary {
            path: file.path(self.db()).to_string(),
            qualified_name: "<module>".to_owned(),
            kind: SymbolKind::Module,
            line: 1,
            signature: None,
            references: 0,
        }
    }

    /// What the engine knows about the definition named at `pos` (on its name, or anywhere
    /// inside it: the innermost documentable definition). `None` when there is none.
    pub fn definition_context(
        &self,
        graph: &SymbolGraph,
        pos: &FilePosition,
    ) -> Result<Option<DefinitionContext>, AnalysisError> {
        self.catch(|| {
            let db = self.db();
            let file = self
                .file(&pos.path)
                .ok_or_else(|| AnalysisError::FileNotFound(pos.path.clone()))?;
            let text = file.text(db);
            let offset = line_index(db, file)
                .offset(text, pos.line, pos.column)
                .ok_or_else(|| AnalysisError::PositionOutOfRange {
                    path: pos.path.clone(),
                    line: pos.line,
                    column: pos.column,
                })?;
            let index = file_index(db, file);
            let found = index
                .def_at(offset)
                .filter(|&d| index.defs[d as usize].kind != SymbolKind::Parameter)
                .or_else(|| {
                    enclosing_item(&index, TextRange::new(offset as usize, offset as usize))
                });
            let Some(d) = found else {
                return Ok(None);
            };
            Ok(Some(self.context_of(graph, file, &index, d)))
        })
    }

    fn context_of(
        &self,
        graph: &SymbolGraph,
        file: SourceFile,
        index: &FileIndex,
        d: DefIdx,
    ) -> DefinitionContext {
        let db = self.db();
        let def = &index.defs[d as usize];
        let text = file.text(db);
        let language = index.language;
        let id = def_id(file, index, d);
        let references = graph.count(&id);
        let (line, _) = line_index(db, file).position(text, def.name_range.start);

        let callable = matches!(def.kind, SymbolKind::Function | SymbolKind::Method);
        let parameters: Vec<ParameterInfo> = if callable {
            parameters(index, d)
                .into_iter()
                .filter(|p| !matches!(&*p.name, "self" | "cls"))
                .filter(|p| {
                    // Go receivers come before the name.
                    language != Some(Language::Go) || p.name_range.start > def.name_range.start
                })
                .map(|p| parameter_info(language, p))
                .collect()
        } else {
            Vec::new()
        };
        let return_type = if callable {
            def.signature
                .as_deref()
                .and_then(|s| return_type(language, s))
        } else {
            None
        };

        let facts = body_facts(db, file);
        let mine = |r: TextRange| {
            def.full_range.contains_range(r)
                && (!callable || innermost_callable(index, r) == Some(d))
        };
        let mut raises: Vec<String> = Vec::new();
        for (r, name) in &facts.throws {
            if callable && mine(*r) && !raises.contains(name) {
                raises.push(name.clone());
            }
        }
        let returns_value = callable && facts.returns.iter().any(|r| mine(*r));

        // Callers: the definitions around each exact reference.
        let mut callers: Vec<DefSummary> = Vec::new();
        let mut seen: HashSet<(SourceFile, Option<DefIdx>)> = HashSet::new();
        if let Some(refs) = graph.incoming.get(&id) {
            let mut indexes: HashMap<SourceFile, Arc<FileIndex>> = HashMap::new();
            for &(f, r) in refs {
                let fi = indexes
                    .entry(f)
                    .or_insert_with(|| file_index(db, f))
                    .clone();
                let Some(reference) = fi.refs.get(r as usize) else {
                    continue;
                };
                // An import names the definition without using it.
                if matches!(
                    reference.qualifier,
                    Qualifier::ImportMember(_) | Qualifier::ModulePath { .. }
                ) {
                    continue;
                }
                let around = enclosing_item(&fi, reference.range);
                if around == Some(d) && f == file {
                    continue; // recursion is not a caller
                }
                if !seen.insert((f, around)) {
                    continue;
                }
                callers.push(match around.and_then(|a| fi.def(a).map(|x| (a, x))) {
                    Some((a, caller)) => self.summary(f, caller, graph.count(&def_id(f, &fi, a))),
                    None => self.module_summary(f),
                });
                if callers.len() >= MAX_NEIGHBOURS * 4 {
                    break;
                }
            }
        }
        callers.sort_by(|a, b| {
            b.references
                .cmp(&a.references)
                .then_with(|| (&a.path, a.line).cmp(&(&b.path, b.line)))
        });
        callers.truncate(MAX_NEIGHBOURS);

        // Callees: project definitions the body refers to.
        let mut callees: Vec<DefSummary> = Vec::new();
        let res = file_resolution(db, file);
        let mut seen_ids: HashSet<&DefId> = HashSet::new();
        for (i, reference) in index.refs.iter().enumerate() {
            if callees.len() >= MAX_NEIGHBOURS {
                break;
            }
            if !def.full_range.contains_range(reference.range) || reference.write {
                continue;
            }
            let Some(Target::Def(target)) = res.targets.get(i) else {
                continue;
            };
            if target == &id || !seen_ids.insert(target) {
                continue;
            }
            let Some((ti, td)) = self.def_of(target) else {
                continue;
            };
            let Some(callee) = ti.def(td) else { continue };
            // Locals and parameters of the definition itself are not neighbours.
            if target.file == file && def.full_range.contains_range(callee.full_range) {
                continue;
            }
            if !callee.kind.wants_doc() && callee.key.is_none() {
                continue;
            }
            callees.push(self.summary(target.file, callee, graph.count(target)));
        }

        DefinitionContext {
            path: file.path(db).to_string(),
            language,
            name: def.name.to_string(),
            qualified_name: def.key.as_deref().unwrap_or(&def.name).to_owned(),
            kind: def.kind,
            line,
            signature: def.signature.clone(),
            source: text.get(def.full_range.as_usize()).unwrap_or("").to_owned(),
            parameters,
            return_type,
            returns_value,
            raises,
            callers,
            callees,
            references,
        }
    }

    /// A ranked map of the repository around `focus`, at most about `budget_tokens` tokens
    /// (estimated as characters / 4): the definition's callees and callers first, then other
    /// definitions of its file, then the project's most referenced definitions, each group by
    /// reference count. Rendered per file, one signature per line:
    ///
    /// ```text
    /// lib/shapes.py:
    ///   def area(w, h) -> int  (12 refs)
    /// ```
    pub fn repo_map(
        &self,
        graph: &SymbolGraph,
        focus: &DefinitionContext,
        budget_tokens: usize,
    ) -> Result<String, AnalysisError> {
        self.catch(|| {
            let log = |n: usize| (n as f64 + 1.0).log2();
            let items = match self.file(&focus.path) {
                Some(file) => self.file_items(graph, file),
                None => Arc::new(Vec::new()),
            };
            let groups: [(f64, &[DefSummary]); 4] = [
                (100.0, &focus.callees),
                (80.0, &focus.callers),
                (40.0, &items),
                (0.0, &graph.top),
            ];
            let mut scored: Vec<(f64, &DefSummary)> = Vec::new();
            let mut seen: HashSet<(&str, &str)> = HashSet::new();
            for (base, list) in groups {
                for s in list {
                    let is_focus = s.path == focus.path && s.qualified_name == focus.qualified_name;
                    if s.kind == SymbolKind::Module || is_focus {
                        continue;
                    }
                    if seen.insert((&s.path, &s.qualified_name)) {
                        scored.push((base + log(s.references), s));
                    }
                }
            }
            scored.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then_with(|| (&a.1.path, a.1.line).cmp(&(&b.1.path, b.1.line)))
            });
            // Group by file in rank order, within the budget.
            let budget_chars = budget_tokens.saturating_mul(4);
            let mut files: Vec<(String, Vec<String>)> = Vec::new();
            let mut used = 0usize;
            for (_, s) in scored {
                // No entry fits in what is left.
                if used + 16 > budget_chars {
                    break;
                }
                let sig = s
                    .signature
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", s.kind.name(), s.qualified_name));
                let line = if s.references > 0 {
                    format!("  {sig}  ({} refs)\n", s.references)
                } else {
                    format!("  {sig}\n")
                };
                let header = if files.iter().any(|(p, _)| *p == s.path) {
                    0
                } else {
                    s.path.len() + 2
                };
                if used + header + line.len() > budget_chars {
                    continue;
                }
                used += header + line.len();
                match files.iter_mut().find(|(p, _)| *p == s.path) {
                    Some((_, lines)) => lines.push(line),
                    None => files.push((s.path.clone(), vec![line])),
                }
            }
            let mut out = String::new();
            for (path, lines) in files {
                out.push_str(&path);
                out.push_str(":\n");
                for l in lines {
                    out.push_str(&l);
                }
            }
            Ok(out)
        })
    }
}

/// Crude token estimate used for budgets: one token per four bytes, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AnalysisHost;

    fn host(files: &[(&str, &str)]) -> AnalysisHost {
        let mut host = AnalysisHost::new();
        host.set_files(
            files
                .iter()
                .map(|(p, t)| ((*p).to_owned(), (*t).into()))
                .collect(),
        );
        host
    }

    fn at(path: &str, line: u32, column: u32) -> FilePosition {
        FilePosition {
            path: path.into(),
            line,
            column,
        }
    }

    #[test]
    fn python_context_has_params_return_raises_callers_and_callees() {
        let host = host(&[
            (
                "shapes.py",
                "def check(x):\n    return x\n\ndef area(w: int, h: int = 1) -> int:\n    if w < 0:\n        raise ValueError(\"negative\")\n    def inner():\n        raise KeyError()\n    return check(w) * h\n",
            ),
            (
                "app.py",
                "from shapes import area\n\ndef main():\n    return area(2, 3)\n\nprint(area(1))\n",
            ),
        ]);
        let a = host.snapshot();
        let graph = a.symbol_graph().expect("graph");
        let c = a
            .definition_context(&graph, &at("shapes.py", 4, 5))
            .expect("ok")
            .expect("a definition");
        assert_eq!(c.qualified_name, "area");
        assert_eq!(c.kind, SymbolKind::Function);
        let params: Vec<(&str, Option<&str>)> = c
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.annotation.as_deref()))
            .collect();
        assert_eq!(params, vec![("w", Some("int")), ("h", Some("int"))]);
        assert_eq!(c.return_type.as_deref(), Some("int"));
        assert!(c.returns_value);
        // `KeyError` is raised by the nested function, not by `area`.
        assert_eq!(c.raises, vec!["ValueError".to_owned()]);
        let callers: Vec<(&str, &str)> = c
            .callers
            .iter()
            .map(|s| (s.path.as_str(), s.qualified_name.as_str()))
            .collect();
        assert_eq!(callers, vec![("app.py", "<module>"), ("app.py", "main")]);
        // The import names `area` without calling it: not a caller, but a reference.
        let callees: Vec<&str> = c
            .callees
            .iter()
            .map(|s| s.qualified_name.as_str())
            .collect();
        assert_eq!(callees, vec!["check"]);
        assert_eq!(c.references, 3);
        assert!(c.source.starts_with("def area("));
    }

    #[test]
    fn return_types_and_errors_in_every_language() {
        assert_eq!(
            return_type(
                Some(Language::Rust),
                "pub fn f<T>(a: T) -> Result<T, E> where T: Copy"
            ),
            Some("Result<T, E>".into())
        );
        assert_eq!(return_type(Some(Language::Rust), "fn f(a: u8)"), None);
        assert_eq!(
            return_type(
                Some(Language::TypeScript),
                "function f(a: (x: number) => void): string"
            ),
            Some("string".into())
        );
        assert_eq!(
            return_type(
                Some(Language::Go),
                "func (s *Server) Get(key string) (int, error)"
            ),
            Some("(int, error)".into())
        );
        assert_eq!(return_type(Some(Language::Go), "func Run()"), None);

        let host = host(&[
            (
                "lib.rs",
                "pub fn parse(s: &str) -> Result<u8, Error> {\n    if s.is_empty() { return Err(Error::Empty); }\n    if s == \"x\" { panic!(\"x\"); }\n    Ok(1)\n}\n",
            ),
            (
                "a.ts",
                "export function load(path: string): number {\n  if (!path) { throw new TypeError(\"empty\"); }\n  return 1;\n}\n",
            ),
            (
                "g.go",
                "package g\n\nfunc Must(v int, err error) int {\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\treturn v\n}\n",
            ),
        ]);
        let a = host.snapshot();
        let graph = a.symbol_graph().expect("graph");
        let ctx = |p: &str, l: u32, c: u32| {
            a.definition_context(&graph, &at(p, l, c))
                .expect("ok")
                .expect("a definition")
        };
        let rs = ctx("lib.rs", 1, 8);
        assert_eq!(
            rs.raises,
            vec!["Error::Empty".to_owned(), "panic".to_owned()]
        );
        assert_eq!(rs.return_type.as_deref(), Some("Result<u8, Error>"));
        let ts = ctx("a.ts", 1, 17);
        assert_eq!(ts.raises, vec!["TypeError".to_owned()]);
        assert_eq!(ts.return_type.as_deref(), Some("number"));
        let go = ctx("g.go", 3, 6);
        assert_eq!(go.raises, vec!["panic".to_owned()]);
        let names: Vec<&str> = go.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["v", "err"]);
        assert_eq!(go.parameters[1].annotation.as_deref(), Some("error"));
    }

    #[test]
    fn repo_map_ranks_neighbours_first_and_respects_the_budget() {
        let host = host(&[
            (
                "core.py",
                "def popular():\n    pass\n\ndef helper():\n    pass\n\ndef lonely():\n    pass\n",
            ),
            (
                "use.py",
                "from core import popular, helper\n\ndef target():\n    return helper()\n\ndef a():\n    popular()\n\ndef b():\n    popular()\n\ndef c():\n    popular()\n",
            ),
        ]);
        let a = host.snapshot();
        let graph = a.symbol_graph().expect("graph");
        assert_eq!(graph.most_referenced()[0].qualified_name, "popular");
        let focus = a
            .definition_context(&graph, &at("use.py", 3, 5))
            .expect("ok")
            .expect("target");
        let map = a.repo_map(&graph, &focus, 1000).expect("map");
        let first_entry = map.lines().nth(1).expect("an entry");
        assert!(first_entry.contains("def helper()"), "{map}");
        assert!(map.contains("def popular()  (4 refs)"), "{map}");
        assert!(
            !map.contains("def target()"),
            "the focus is not in its own map: {map}"
        );
        let small = a.repo_map(&graph, &focus, 10).expect("map");
        assert!(estimate_tokens(&small) <= 10, "{small}");
        assert!(small.contains("helper"), "{small}");
    }
}
