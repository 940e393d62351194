//! The query API: plain data in, plain data out (no LSP types). [`Analysis`] is a snapshot of
//! the database; every query runs under `salsa::Cancelled::catch`, so a change made through the
//! host while a query runs makes it return [`AnalysisError::Cancelled`] instead of blocking.

use crate::AnalysisError;
use crate::db::{RootDatabase, SourceFile, Workspace, file_index, file_interface};
use crate::lang::{self, DocSyntax};
use crate::model::{Def, DefIdx, FileIndex, LineIndex, Name, Qualifier, SymbolKind, TextRange};
use crate::resolve::{DefId, DefKey, ModuleRef, Target, def_id, def_index, file_resolution};
use hivesync_protocol::Confidence;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// A position as users write it: path relative to the root, 1-based line and column (column
/// counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePosition {
    pub path: String,
    pub line: u32,
    pub column: u32,
}

/// A range in a file, with both byte offsets and 1-based line/column (end exclusive).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub confidence: Confidence,
    #[serde(skip)]
    pub range: TextRange,
}

/// One entry of a file outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentSymbol {
    pub name: String,
    pub kind: SymbolKind,
    pub detail: Option<String>,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    #[serde(skip)]
    pub full_range: TextRange,
    #[serde(skip)]
    pub name_range: TextRange,
    pub children: Vec<DocumentSymbol>,
}

/// A workspace symbol search hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceSymbol {
    pub name: String,
    /// Dotted path inside its file (`Class.method`).
    pub container: Option<String>,
    pub kind: SymbolKind,
    pub path: String,
    pub line: u32,
    pub column: u32,
    #[serde(skip)]
    pub score: u32,
}

/// Hover information for the symbol at a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoverInfo {
    pub name: String,
    pub kind: SymbolKind,
    pub signature: Option<String>,
    pub doc: Option<String>,
    pub path: String,
    pub line: u32,
}

/// A public definition without documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocGap {
    pub path: String,
    pub name: String,
    /// Dotted path inside the file.
    pub qualified_name: String,
    pub kind: SymbolKind,
    pub line: u32,
    pub column: u32,
    pub signature: Option<String>,
    /// Where the doc comment goes (1-based line/column, and byte offset).
    pub insert_line: u32,
    pub insert_column: u32,
    pub insert_offset: u32,
    /// Indentation to use for the inserted comment.
    pub indent: String,
    pub syntax: DocSyntax,
}

/// A problem in a file (unresolved project import, syntax error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// Counts over the whole workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub files_by_language: BTreeMap<String, usize>,
    pub definitions: usize,
    pub references: ReferenceCounts,
    /// Files with at least one syntax error.
    pub parse_errors: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReferenceCounts {
    pub exact: usize,
    pub probable: usize,
    pub unresolved: usize,
    /// Builtins of the language (`len`, `print`).
    pub builtin: usize,
    /// Names imported from outside the project (standard library, installed packages).
    pub external: usize,
}

/// A rename, planned but not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenamePlan {
    pub old_name: String,
    pub new_name: String,
    /// Exact and probable edits, each marked; apply only `Confidence::Exact` unless the user
    /// opted into probable ones.
    pub change: hivesync_protocol::ChangeSet,
    pub exact_edits: usize,
    pub probable_edits: usize,
}

/// Why a rename was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenameError {
    #[error("`{0}` is not a valid identifier")]
    InvalidIdentifier(String),
    #[error("`{0}` is a keyword")]
    Keyword(String),
    #[error("the new name is the same as the old one (`{0}`)")]
    SameName(String),
    #[error("no renamable symbol at {0}")]
    NothingToRename(String),
    #[error("`{name}` is defined outside the project and cannot be renamed")]
    NotInProject { name: String },
    #[error("renaming a module (`{name}`) is not supported; rename the file instead")]
    Module { name: String },
    /// A rule of the language forbids the rename (e.g. Go visibility across packages).
    #[error("{0}")]
    LanguageRule(String),
    #[error(
        "renaming to `{new_name}` would conflict with `{new_name}` {location} (at the edit in {site})"
    )]
    Conflict {
        new_name: String,
        /// Where the conflicting name is defined (`defined at a.py:3:5`, `a builtin`).
        location: String,
        /// The edited site where the conflict shows (`b.py:7:9`).
        site: String,
    },
}

/// A snapshot of the database for queries.
#[derive(Clone)]
pub struct Analysis {
    db: RootDatabase,
    files: Arc<HashMap<Name, SourceFile>>,
}

/// A resolved cursor: the file, its index, the offset.
struct Cursor {
    file: SourceFile,
    index: Arc<FileIndex>,
    offset: u32,
}

impl Analysis {
    pub(crate) fn new(db: RootDatabase, files: Arc<HashMap<Name, SourceFile>>) -> Analysis {
        Analysis { db, files }
    }

    pub(crate) fn catch<T>(
        &self,
        f: impl FnOnce() -> Result<T, AnalysisError>,
    ) -> Result<T, AnalysisError> {
        match salsa::Cancelled::catch(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(_) => Err(AnalysisError::Cancelled),
        }
    }

    pub(crate) fn all_files(&self) -> Vec<SourceFile> {
        Workspace::try_get(&self.db)
            .map(|ws| ws.files(&self.db).to_vec())
            .unwrap_or_default()
    }

    pub fn file(&self, path: &str) -> Option<SourceFile> {
        self.files.get(path).copied()
    }

    pub fn text(&self, path: &str) -> Option<Arc<str>> {
        self.file(path).map(|f| f.text(&self.db).clone())
    }

    fn path(&self, file: SourceFile) -> String {
        file.path(&self.db).to_string()
    }

    fn cursor(&self, pos: &FilePosition) -> Result<Cursor, AnalysisError> {
        let file = self
            .file(&pos.path)
            .ok_or_else(|| AnalysisError::FileNotFound(pos.path.clone()))?;
        let text = file.text(&self.db);
        let offset = LineIndex::new(text)
            .offset(text, pos.line, pos.column)
            .ok_or_else(|| AnalysisError::PositionOutOfRange {
                path: pos.path.clone(),
                line: pos.line,
                column: pos.column,
            })?;
        if file.language(&self.db).and_then(lang::module_for).is_none() {
            return Err(AnalysisError::UnsupportedLanguage(pos.path.clone()));
        }
        Ok(Cursor {
            file,
            index: file_index(&self.db, file),
            offset,
        })
    }

    fn location(&self, file: SourceFile, range: TextRange, confidence: Confidence) -> Location {
        let text = file.text(&self.db);
        let li = crate::db::line_index(&self.db, file);
        let (line, column) = li.position(text, range.start);
        let (end_line, end_column) = li.position(text, range.end);
        Location {
            path: self.path(file),
            line,
            column,
            end_line,
            end_column,
            confidence,
            range,
        }
    }

    /// What the identifier under the cursor refers to.
    fn target_at(&self, c: &Cursor) -> Option<(Target, Name)> {
        let res = file_resolution(&self.db, c.file);
        // `from m import x`: the imported name is both a binding and a reference to `m.x`;
        // the reference is the more useful answer.
        if let Some(r) = c.index.ref_at(c.offset) {
            let reference = &c.index.refs[r as usize];
            let binding_here = c.index.def_at(c.offset).filter(|&d| {
                c.index.defs[d as usize].name_range == reference.range
                    && !matches!(reference.qualifier, Qualifier::ImportMember(_))
            });
            if binding_here.is_none() {
                let target = res.targets.get(r as usize).cloned()?;
                return Some((target, reference.name.clone()));
            }
        }
        let d = c.index.def_at(c.offset)?;
        let def = &c.index.defs[d as usize];
        Some((self.def_target(c.file, &c.index, d), def.name.clone()))
    }

    /// The target a definition site stands for: itself, or what an unaliased import binding
    /// imports.
    fn def_target(&self, file: SourceFile, index: &FileIndex, d: DefIdx) -> Target {
        use crate::model::ImportKind;
        let def = &index.defs[d as usize];
        let import = def.import.and_then(|i| index.imports.get(i as usize));
        match import.map(|i| (&i.kind, i)) {
            Some((ImportKind::Module { alias: None }, imp)) => {
                let map = crate::resolve::module_map(&self.db);
                let Some(module) = index.language.and_then(lang::module_for) else {
                    return Target::External;
                };
                let root = imp.module.split('.').next().unwrap_or("");
                match module.resolve_module(
                    &map,
                    file.path(&self.db),
                    lang::ModuleRequest {
                        module: root,
                        level: imp.level,
                    },
                ) {
                    lang::ModuleResolution::Project(m) => Target::Module(m),
                    lang::ModuleResolution::External => Target::External,
                    lang::ModuleResolution::Missing => Target::Unresolved,
                }
            }
            Some((ImportKind::From { alias: None, .. }, _)) => {
                let res = file_resolution(&self.db, file);
                index
                    .refs
                    .iter()
                    .position(|r| {
                        r.range == def.name_range
                            && matches!(r.qualifier, Qualifier::ImportMember(_))
                    })
                    .and_then(|i| res.targets.get(i).cloned())
                    .unwrap_or(Target::Unresolved)
            }
            _ => Target::Def(def_id(file, index, d)),
        }
    }

    /// Where a definition is (its file, index and def).
    fn resolve_def(&self, id: &DefId) -> Option<(Arc<FileIndex>, DefIdx)> {
        let index = file_index(&self.db, id.file);
        let d = def_index(&index, id)?;
        Some((index, d))
    }

    /// Go to definition.
    pub fn definition(&self, pos: &FilePosition) -> Result<Vec<Location>, AnalysisError> {
        self.catch(|| {
            let c = self.cursor(pos)?;
            let Some((target, name)) = self.target_at(&c) else {
                return Ok(Vec::new());
            };
            let mut out = match target {
                Target::Def(id) => match self.resolve_def(&id) {
                    Some((index, d)) => vec![self.location(
                        id.file,
                        index.defs[d as usize].name_range,
                        Confidence::Exact,
                    )],
                    None => Vec::new(),
                },
                Target::Module(ModuleRef::File(f)) => {
                    vec![self.location(f, TextRange::default(), Confidence::Exact)]
                }
                Target::Probable => self.member_defs_named(&name),
                _ => Vec::new(),
            };
            out.sort();
            Ok(out)
        })
    }

    /// Members (of classes and other containers) named `name`, anywhere: the candidates of a
    /// probable reference.
    fn member_defs_named(&self, name: &str) -> Vec<Location> {
        let mut out = Vec::new();
        for f in self.all_files() {
            let iface = file_interface(&self.db, f);
            if !iface.items.iter().any(|i| &*i.name == name) {
                continue;
            }
            let index = file_index(&self.db, f);
            for d in &index.defs {
                if &*d.name == name && is_member(&index, d) {
                    out.push(self.location(f, d.name_range, Confidence::Probable));
                }
            }
        }
        out
    }

    /// Find references. With `include_declaration`, the definition's own name is included.
    pub fn references(
        &self,
        pos: &FilePosition,
        include_declaration: bool,
    ) -> Result<Vec<Location>, AnalysisError> {
        self.catch(|| {
            let c = self.cursor(pos)?;
            let Some((target, name)) = self.target_at(&c) else {
                return Ok(Vec::new());
            };
            Ok(self.references_of(&target, &name, include_declaration))
        })
    }

    fn references_of(
        &self,
        target: &Target,
        name: &str,
        include_declaration: bool,
    ) -> Vec<Location> {
        let mut out = Vec::new();
        let Target::Def(id) = target else {
            if let Target::Module(m) = target {
                for f in self.all_files() {
                    let res = file_resolution(&self.db, f);
                    let index = file_index(&self.db, f);
                    for (i, t) in res.targets.iter().enumerate() {
                        if matches!(t, Target::Module(tm) if tm == m) {
                            out.push(self.location(f, index.refs[i].range, Confidence::Exact));
                        }
                    }
                }
                out.sort();
                out.dedup();
            }
            return out;
        };
        let Some((def_file_index, d)) = self.resolve_def(id) else {
            return out;
        };
        let def = &def_file_index.defs[d as usize];
        if include_declaration {
            out.push(self.location(id.file, def.name_range, Confidence::Exact));
        }
        let member = is_member(&def_file_index, def);
        let files = match id.key {
            DefKey::Local(_) if !member => vec![id.file],
            _ => self.all_files(),
        };
        for f in files {
            salsa::Database::unwind_if_revision_cancelled(&self.db);
            let res = file_resolution(&self.db, f);
            let exact = res.by_def.get(id);
            let probable = if member { res.probable.get(name) } else { None };
            if exact.is_none() && probable.is_none() {
                continue;
            }
            let index = file_index(&self.db, f);
            for &r in exact.into_iter().flatten() {
                let range = index.refs[r as usize].range;
                if !(f == id.file && range == def.name_range) {
                    out.push(self.location(f, range, Confidence::Exact));
                }
            }
            for &r in probable.into_iter().flatten() {
                out.push(self.location(f, index.refs[r as usize].range, Confidence::Probable));
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.path == b.path && a.range == b.range);
        out
    }

    /// The outline of a file: classes with their members, functions, module variables.
    pub fn document_symbols(&self, path: &str) -> Result<Vec<DocumentSymbol>, AnalysisError> {
        self.catch(|| {
            let file = self
                .file(path)
                .ok_or_else(|| AnalysisError::FileNotFound(path.to_owned()))?;
            let index = file_index(&self.db, file);
            let text = file.text(&self.db);
            let li = LineIndex::new(text);
            Ok(self.symbols_under(&index, text, &li, None))
        })
    }

    fn symbols_under(
        &self,
        index: &FileIndex,
        text: &str,
        li: &LineIndex,
        parent: Option<DefIdx>,
    ) -> Vec<DocumentSymbol> {
        let mut out = Vec::new();
        for (i, d) in index.children(parent) {
            if !in_outline(index, d) {
                continue;
            }
            let (line, column) = li.position(text, d.full_range.start);
            let (end_line, end_column) = li.position(text, d.full_range.end);
            out.push(DocumentSymbol {
                name: d.name.to_string(),
                kind: d.kind,
                detail: d.signature.clone(),
                line,
                column,
                end_line,
                end_column,
                full_range: d.full_range,
                name_range: d.name_range,
                children: self.symbols_under(index, text, li, Some(i)),
            });
        }
        out.sort_by_key(|s| s.full_range.start);
        out
    }

    /// Fuzzy search over every named item of the workspace (case-insensitive subsequence;
    /// exact names first, then prefixes, then substrings). At most `limit` results.
    pub fn workspace_symbols(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<WorkspaceSymbol>, AnalysisError> {
        self.catch(|| {
            let q: Vec<char> = query.to_lowercase().chars().collect();
            let mut out = Vec::new();
            for f in self.all_files() {
                salsa::Database::unwind_if_revision_cancelled(&self.db);
                let index = file_index(&self.db, f);
                let mut li: Option<LineIndex> = None;
                for d in &index.defs {
                    if !in_outline(&index, d) || matches!(d.kind, SymbolKind::Parameter) {
                        continue;
                    }
                    let Some(score) = fuzzy_score(&q, &d.name) else {
                        continue;
                    };
                    let text = f.text(&self.db);
                    let li = li.get_or_insert_with(|| LineIndex::new(text));
                    let (line, column) = li.position(text, d.name_range.start);
                    out.push(WorkspaceSymbol {
                        name: d.name.to_string(),
                        container: d
                            .key
                            .as_ref()
                            .and_then(|k| k.rsplit_once('.').map(|(c, _)| c.to_owned())),
                        kind: d.kind,
                        path: self.path(f),
                        line,
                        column,
                        score,
                    });
                }
            }
            out.sort_by(|a, b| {
                b.score
                    .cmp(&a.score)
                    .then(a.name.len().cmp(&b.name.len()))
                    .then(a.path.cmp(&b.path))
                    .then(a.line.cmp(&b.line))
            });
            out.truncate(limit);
            Ok(out)
        })
    }

    /// Signature and documentation of the symbol at a position.
    pub fn hover(&self, pos: &FilePosition) -> Result<Option<HoverInfo>, AnalysisError> {
        self.catch(|| {
            let c = self.cursor(pos)?;
            let Some((Target::Def(id), _)) = self.target_at(&c) else {
                return Ok(None);
            };
            let Some((index, d)) = self.resolve_def(&id) else {
                return Ok(None);
            };
            let def = &index.defs[d as usize];
            let loc = self.location(id.file, def.name_range, Confidence::Exact);
            Ok(Some(HoverInfo {
                name: def.name.to_string(),
                kind: def.kind,
                signature: def.signature.clone(),
                doc: def.doc.clone(),
                path: loc.path,
                line: loc.line,
            }))
        })
    }

    /// Public definitions without documentation, sorted by path and position.
    pub fn doc_gaps(&self) -> Result<Vec<DocGap>, AnalysisError> {
        self.catch(|| {
            let mut out = Vec::new();
            for f in self.all_files() {
                salsa::Database::unwind_if_revision_cancelled(&self.db);
                let Some(module) = f.language(&self.db).and_then(lang::module_for) else {
                    continue;
                };
                let index = file_index(&self.db, f);
                let text = f.text(&self.db);
                let mut li: Option<LineIndex> = None;
                for d in &index.defs {
                    if !d.kind.wants_doc() || d.doc.is_some() || !module.is_public(d) {
                        continue;
                    }
                    let li = li.get_or_insert_with(|| LineIndex::new(text));
                    let (line, column) = li.position(text, d.name_range.start);
                    let insert = d.doc_insert.unwrap_or(d.full_range.start);
                    let (insert_line, insert_column) = li.position(text, insert);
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
                    out.push(DocGap {
                        path: self.path(f),
                        name: d.name.to_string(),
                        qualified_name: d.key.as_deref().unwrap_or(&d.name).to_owned(),
                        kind: d.kind,
                        line,
                        column,
                        signature: d.signature.clone(),
                        insert_line,
                        insert_column,
                        insert_offset: insert,
                        indent,
                        syntax: module.doc_syntax(),
                    });
                }
            }
            out.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
            Ok(out)
        })
    }

    /// Unresolved project imports (and names missing from project modules) and syntax errors.
    pub fn diagnostics(&self, path: Option<&str>) -> Result<Vec<Diagnostic>, AnalysisError> {
        self.catch(|| {
            let files = match path {
                Some(p) => vec![
                    self.file(p)
                        .ok_or_else(|| AnalysisError::FileNotFound(p.to_owned()))?,
                ],
                None => self.all_files(),
            };
            let mut out = Vec::new();
            for f in files {
                salsa::Database::unwind_if_revision_cancelled(&self.db);
                let index = file_index(&self.db, f);
                let res = file_resolution(&self.db, f);
                for p in &res.problems {
                    let range = match p.reference {
                        Some(r) => index.refs[r as usize].range,
                        None => index.imports[p.import as usize].range,
                    };
                    let loc = self.location(f, range, Confidence::Exact);
                    out.push(Diagnostic {
                        path: loc.path,
                        line: loc.line,
                        column: loc.column,
                        end_line: loc.end_line,
                        end_column: loc.end_column,
                        severity: "error",
                        code: "unresolved-import",
                        message: p.message.clone(),
                    });
                }
                if index.parse_errors > 0 {
                    out.push(Diagnostic {
                        path: self.path(f),
                        line: 1,
                        column: 1,
                        end_line: 1,
                        end_column: 1,
                        severity: "warning",
                        code: "syntax-error",
                        message: format!(
                            "{} syntax error(s); the rest of the file is still analysed",
                            index.parse_errors
                        ),
                    });
                }
            }
            out.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
            Ok(out)
        })
    }

    /// Indexes and resolves every file, using all cores. Returns the time spent in each phase.
    pub fn warm(&self) -> Result<(std::time::Duration, std::time::Duration), AnalysisError> {
        Ok((self.warm_indexes()?, self.warm_resolution()?))
    }

    /// Parses and indexes every file (what the persisted index cache keeps), using all cores.
    pub fn warm_indexes(&self) -> Result<std::time::Duration, AnalysisError> {
        self.each_file_in_parallel(&|db, f| {
            file_interface(db, f);
        })
    }

    /// Resolves every file's references (indexing what is not indexed yet), using all cores.
    pub fn warm_resolution(&self) -> Result<std::time::Duration, AnalysisError> {
        self.each_file_in_parallel(&|db, f| {
            file_resolution(db, f);
        })
    }

    /// Runs `phase` on every file, on all cores (each rayon task on its own database handle);
    /// returns how long it took.
    pub(crate) fn each_file_in_parallel(
        &self,
        phase: &(dyn Fn(&RootDatabase, SourceFile) + Sync),
    ) -> Result<std::time::Duration, AnalysisError> {
        use rayon::prelude::*;
        let started = std::time::Instant::now();
        let files = self.all_files();
        let template = std::sync::Mutex::new(self.db.clone());
        let fresh = || {
            template
                .lock()
                .map(|db| db.clone())
                .unwrap_or_else(|e| e.into_inner().clone())
        };
        salsa::Cancelled::catch(AssertUnwindSafe(|| {
            files.par_iter().for_each_init(fresh, |db, f| phase(db, *f));
        }))
        .map_err(|_| AnalysisError::Cancelled)?;
        Ok(started.elapsed())
    }

    /// Counts files, definitions and references by confidence.
    pub fn stats(&self) -> Result<Stats, AnalysisError> {
        self.catch(|| {
            let mut stats = Stats::default();
            for f in self.all_files() {
                salsa::Database::unwind_if_revision_cancelled(&self.db);
                let Some(language) = f.language(&self.db) else {
                    continue;
                };
                *stats
                    .files_by_language
                    .entry(language.name().to_owned())
                    .or_default() += 1;
                if lang::module_for(language).is_none() {
                    continue;
                }
                let index = file_index(&self.db, f);
                let res = file_resolution(&self.db, f);
                stats.definitions += index
                    .defs
                    .iter()
                    .filter(|d| d.kind != SymbolKind::Import)
                    .count();
                if index.parse_errors > 0 {
                    stats.parse_errors += 1;
                }
                for t in &res.targets {
                    match t {
                        Target::Def(_) | Target::Module(_) => stats.references.exact += 1,
                        Target::Probable => stats.references.probable += 1,
                        Target::Unresolved => stats.references.unresolved += 1,
                        Target::Builtin => stats.references.builtin += 1,
                        Target::External => stats.references.external += 1,
                    }
                }
            }
            Ok(stats)
        })
    }

    /// Plans renaming the symbol at `pos` to `new_name`. Exact and probable edits are both in
    /// the plan, marked; conflicts refuse the whole rename.
    pub fn rename(&self, pos: &FilePosition, new_name: &str) -> Result<RenamePlan, AnalysisError> {
        self.catch(|| crate::rename::plan(self, pos, new_name))
    }

    // ---- helpers for rename ----------------------------------------------------------------

    pub(crate) fn db(&self) -> &RootDatabase {
        &self.db
    }

    pub(crate) fn target_and_name(
        &self,
        pos: &FilePosition,
    ) -> Result<(SourceFile, Option<(Target, Name)>), AnalysisError> {
        let c = self.cursor(pos)?;
        Ok((c.file, self.target_at(&c)))
    }

    pub(crate) fn def_of(&self, id: &DefId) -> Option<(Arc<FileIndex>, DefIdx)> {
        self.resolve_def(id)
    }

    pub(crate) fn refs_of(&self, target: &Target, name: &str) -> Vec<Location> {
        self.references_of(target, name, true)
    }

    pub(crate) fn location_of(&self, file: SourceFile, range: TextRange) -> Location {
        self.location(file, range, Confidence::Exact)
    }
}

/// A member of a class-like container (reachable as `obj.name`).
pub(crate) fn is_member(index: &FileIndex, def: &Def) -> bool {
    // Members of a type declared in another file (Go methods): dotted key, no parent.
    if def.parent.is_none()
        && matches!(def.kind, SymbolKind::Method | SymbolKind::Field)
        && def.key.as_deref().is_some_and(|k| k.contains('.'))
    {
        return true;
    }
    def.parent.and_then(|p| index.def(p)).is_some_and(|p| {
        p.kind.has_members()
            && index.scope(def.scope).is_some_and(|s| {
                s.owner
                    .is_some_and(|o| index.def(o).is_some_and(|od| od.kind.has_members()))
            })
    })
}

/// Definitions that belong in outlines and symbol search: items, members, nested functions
/// and classes — not parameters, imports or function locals.
fn in_outline(index: &FileIndex, d: &Def) -> bool {
    if matches!(d.kind, SymbolKind::Parameter | SymbolKind::Import) {
        return false;
    }
    // Module-level definitions and members count even without a key (not exported).
    d.key.is_some()
        || d.scope == 0
        || is_member(index, d)
        || matches!(
            d.kind,
            SymbolKind::Class | SymbolKind::Function | SymbolKind::Method | SymbolKind::Struct
        ) && index.scope(d.scope).is_some()
}

/// Case-insensitive fuzzy match score, `None` when `query` is not a subsequence of `name`.
fn fuzzy_score(query: &[char], name: &str) -> Option<u32> {
    let lower = name.to_lowercase();
    let q: String = query.iter().collect();
    if q.is_empty() {
        return Some(1);
    }
    if lower == q {
        return Some(1000);
    }
    if lower.starts_with(&q) {
        return Some(800);
    }
    if lower.contains(&q) {
        return Some(600);
    }
    let mut qi = 0;
    let mut gaps = 0u32;
    let mut last_match: Option<usize> = None;
    for (i, c) in lower.chars().enumerate() {
        if qi < query.len() && c == query[qi] {
            if let Some(l) = last_match
                && i > l + 1
            {
                gaps += 1;
            }
            last_match = Some(i);
            qi += 1;
        }
    }
    (qi == query.len()).then(|| 400u32.saturating_sub(gaps * 10).max(1))
}
