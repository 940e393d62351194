//! The salsa database: inputs (the workspace's file set and each file's text), the per-file
//! tracked queries (index, interface), and [`AnalysisHost`], which owns the database, applies
//! changes and hands out [`Analysis`] snapshots for queries.
//!
//! Durability: workspace files are set at `Durability::LOW`, files under library roots
//! (`site-packages`, `node_modules`, `vendor`, virtual environments) at `Durability::HIGH`, so
//! an edit in the workspace never re-validates what depends only on libraries. An editor's host
//! ([`AnalysisHost::with_workspace_durability`]) keeps the workspace's files at `MEDIUM` and
//! the documents being edited at `LOW` ([`AnalysisHost::set_edited_file`]): a keystroke then
//! re-validates only what depends on an edited document, not every file's resolution.

use crate::AnalysisError;
use crate::cache::{CacheLoad, CachedIndex, IndexCache};
use crate::lang;
use crate::model::{FileIndex, FileInterface, Name};
use hivesync_protocol::Language;
use salsa::{Durability, Setter};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One file of the workspace. `path` is relative to the root and `/`-separated.
#[salsa::input]
pub struct SourceFile {
    #[returns(ref)]
    pub path: Name,
    #[returns(ref)]
    pub text: Arc<str>,
    #[returns(copy)]
    pub language: Option<Language>,
    /// The syntax tree of `text`, for a document being edited
    /// ([`AnalysisHost::set_edited_file`] re-parses it incrementally); `file_index` indexes
    /// it instead of parsing. Used only when it was parsed from this very `text`.
    #[default]
    #[returns(ref)]
    pub syntax: Option<Arc<crate::editor::EditorTree>>,
    /// The file's entry of the persisted index cache, looked up when the project was loaded
    /// ([`AnalysisHost::load_dir_cached`]); `file_index` returns its index instead of
    /// parsing. Used only when it was looked up for this very `text` (the same `Arc`).
    #[default]
    #[returns(ref)]
    pub cached: Option<Arc<crate::cache::CachedIndex>>,
}

impl std::fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use salsa::plumbing::AsId;
        write!(f, "SourceFile({:?})", self.as_id())
    }
}

/// The set of files (sorted by path). A singleton: one workspace per database.
#[salsa::input(singleton)]
pub struct Workspace {
    #[returns(ref)]
    pub files: Arc<Vec<SourceFile>>,
}

/// Which queries ran, recorded from salsa's `WillExecute` events (tests use it to prove
/// incrementality).
#[derive(Default)]
pub struct ExecutionLog {
    enabled: AtomicBool,
    entries: Mutex<Vec<Execution>>,
}

/// One query execution: the query's name and the salsa id of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub query: String,
    pub key: salsa::Id,
}

/// Which files' `file_index` ran (by salsa id), recorded from salsa's `WillExecute` events
/// while on: the persisted cache writes back only what a run indexed.
#[derive(Default)]
pub(crate) struct IndexTracker {
    on: AtomicBool,
    /// `file_index`'s ingredient, learnt from the first event naming it.
    ingredient: std::sync::OnceLock<salsa::IngredientIndex>,
    executed: Mutex<HashSet<salsa::Id>>,
}

impl IndexTracker {
    pub(crate) fn start(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    pub(crate) fn stop(&self) {
        self.on.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.executed.lock() {
            *e = HashSet::new();
        }
    }

    pub(crate) fn executed(&self) -> HashSet<salsa::Id> {
        self.executed.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn record(&self, key: salsa::DatabaseKeyIndex) {
        let is_index = match self.ingredient.get() {
            Some(&i) => key.ingredient_index() == i,
            None => {
                let found = format!("{key:?}").starts_with("file_index(");
                if found {
                    let _ = self.ingredient.set(key.ingredient_index());
                }
                found
            }
        };
        if is_index && let Ok(mut e) = self.executed.lock() {
            e.insert(key.key_index());
        }
    }
}

/// The database. Cheap to clone: clones share storage (a snapshot for another thread).
#[salsa::db]
#[derive(Clone)]
pub struct RootDatabase {
    storage: salsa::Storage<Self>,
    log: Arc<ExecutionLog>,
    indexed: Arc<IndexTracker>,
}

#[salsa::db]
impl salsa::Database for RootDatabase {}

impl Default for RootDatabase {
    fn default() -> Self {
        let log = Arc::new(ExecutionLog::default());
        let indexed = Arc::new(IndexTracker::default());
        let storage = salsa::Storage::new(Some(Box::new({
            let log = log.clone();
            let indexed = indexed.clone();
            move |event: salsa::Event| {
                let track = indexed.on.load(Ordering::Relaxed);
                if !track && !log.enabled.load(Ordering::Relaxed) {
                    return;
                }
                if let salsa::EventKind::WillExecute { database_key } = event.kind {
                    if track {
                        indexed.record(database_key);
                    }
                    if !log.enabled.load(Ordering::Relaxed) {
                        return;
                    }
                    let name = format!("{database_key:?}");
                    let query = name.split('(').next().unwrap_or("").to_owned();
                    if let Ok(mut entries) = log.entries.lock() {
                        entries.push(Execution {
                            query,
                            key: database_key.key_index(),
                        });
                    }
                }
            }
        })));
        RootDatabase {
            storage,
            log,
            indexed,
        }
    }
}

impl RootDatabase {
    pub(crate) fn index_tracker(&self) -> Arc<IndexTracker> {
        self.indexed.clone()
    }
}

/// Parse → index: everything about one file, positions included.
#[salsa::tracked(returns(clone))]
pub fn file_index(db: &dyn salsa::Database, file: SourceFile) -> Arc<FileIndex> {
    let language = file.language(db);
    let module = language.and_then(lang::module_for);
    match (language, module) {
        (Some(language), Some(module)) => {
            let text = file.text(db);
            if let Some(cached) = file.cached(db)
                && let Some(index) = &cached.index
                && Arc::ptr_eq(&cached.text, text)
            {
                return index.clone();
            }
            Arc::new(match file.syntax(db) {
                Some(s) if Arc::ptr_eq(&s.text, text) => {
                    module.index_tree(language, file.path(db), text, &s.tree)
                }
                _ => module.index(language, file.path(db), text),
            })
        }
        _ => Arc::new(FileIndex::empty(language)),
    }
}

/// The part of a file other files depend on. Equal across body-only edits, so salsa stops
/// propagating a body edit here.
#[salsa::tracked(returns(clone))]
pub fn file_interface(db: &dyn salsa::Database, file: SourceFile) -> Arc<FileInterface> {
    Arc::new(FileInterface::from_index(&file_index(db, file)))
}

/// Line starts of a file, for converting offsets to line/column (memoized per text).
#[salsa::tracked(returns(clone))]
pub fn line_index(db: &dyn salsa::Database, file: SourceFile) -> Arc<crate::model::LineIndex> {
    Arc::new(crate::model::LineIndex::new(file.text(db)))
}

/// Paths the engine reads besides source files (import configuration of other languages).
pub fn is_config_file(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    matches!(
        base,
        "go.mod" | "tsconfig.json" | "jsconfig.json" | "package.json" | "Cargo.toml"
    ) || ((base.starts_with("tsconfig.") || base.starts_with("jsconfig."))
        && base.ends_with(".json"))
}

/// Paths treated as libraries (high durability).
pub fn is_library_path(path: &str) -> bool {
    path.split('/').any(|seg| {
        matches!(
            seg,
            "site-packages" | "node_modules" | "vendor" | ".venv" | "venv" | "dist-packages"
        )
    })
}

/// Why a file was left out of the analysis.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
    /// A minified bundle, left out on purpose (not a problem to report).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub minified: bool,
}

/// A minified JavaScript bundle by its name (`jquery.min.js`): a build output nobody edits or
/// navigates — it repeats its source file with mangled names, and parsing it costs more than
/// most of a project's own sources. The loader skips it without reading it.
pub fn is_minified_path(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    [".min.js", ".min.mjs", ".min.cjs", "-min.js"]
        .iter()
        .any(|suffix| base.len() > suffix.len() && base.ends_with(suffix))
}

/// JavaScript/TypeScript text that is minified whatever its name: at least 4 KiB with lines of
/// more than 400 bytes on average (hand-written code averages 30–40).
pub fn looks_minified(path: &str, text: &str) -> bool {
    const MIN_BYTES: usize = 4096;
    const MIN_AVERAGE_LINE: usize = 400;
    matches!(
        Language::from_path(path),
        Some(Language::JavaScript | Language::TypeScript | Language::Tsx)
    ) && text.len() >= MIN_BYTES
        && text.len() / (text.bytes().filter(|&b| b == b'\n').count() + 1) > MIN_AVERAGE_LINE
}

/// The text of a source file read from disk, or why it is left out: binary (NUL bytes), not
/// UTF-8, or a minified bundle ([`looks_minified`]). The one check every loader applies.
pub fn source_text(path: &str, bytes: Vec<u8>) -> Result<String, SkippedFile> {
    let skip = |reason: String, minified: bool| SkippedFile {
        path: path.to_owned(),
        reason,
        minified,
    };
    if bytes.contains(&0) {
        return Err(skip("binary file (contains NUL bytes)".into(), false));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        skip(
            format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            false,
        )
    })?;
    if looks_minified(path, &text) {
        return Err(skip("minified bundle (very long lines)".into(), true));
    }
    Ok(text)
}

/// What loading a directory found, and how long each phase took.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    /// Files of a language the engine knows, by language name.
    pub files_by_language: std::collections::BTreeMap<String, usize>,
    /// Files of other types (counted, not analysed).
    pub other_files: usize,
    pub skipped: Vec<SkippedFile>,
    /// Walking the tree and reading the files (together, on every core; the index cache's
    /// pack loads meanwhile, and this waits for it too).
    #[serde(skip)]
    pub discover: Duration,
    /// Sorting out what was read (counting, skipping).
    #[serde(skip)]
    pub read: Duration,
    /// What the persisted index cache gave, when one was used.
    pub cache: Option<CacheLoad>,
}

/// A file read from disk: path, text, cache entry.
type LoadedFile = (String, Arc<str>, Option<Arc<CachedIndex>>);

/// Owns the database and the path → file table; the only place inputs change.
pub struct AnalysisHost {
    db: RootDatabase,
    files: HashMap<Name, SourceFile>,
    workspace: Workspace,
    /// Durability of workspace (non-library) files and of the file set.
    workspace_durability: Durability,
    /// Files set through [`AnalysisHost::set_edited_file`], held at `Durability::LOW`.
    edited: HashSet<Name>,
}

impl Default for AnalysisHost {
    fn default() -> Self {
        AnalysisHost::new()
    }
}

impl AnalysisHost {
    pub fn new() -> AnalysisHost {
        AnalysisHost::with_workspace_durability(Durability::LOW)
    }

    /// A host whose workspace files and file set are stored at `durability` (libraries stay
    /// `HIGH`). Editors use `MEDIUM` and set open documents with
    /// [`AnalysisHost::set_edited_file`].
    pub fn with_workspace_durability(durability: Durability) -> AnalysisHost {
        let db = RootDatabase::default();
        let workspace = Workspace::builder(Arc::new(Vec::new()))
            .files_durability(durability)
            .new(&db);
        AnalysisHost {
            db,
            files: HashMap::new(),
            workspace,
            workspace_durability: durability,
            edited: HashSet::new(),
        }
    }

    fn durability_of(&self, path: &str) -> Durability {
        if is_library_path(path) {
            Durability::HIGH
        } else {
            self.workspace_durability
        }
    }

    /// Like [`AnalysisHost::set_file`] for a document being edited: the file is held at
    /// `Durability::LOW` from now on (even when its text is unchanged), so that its edits
    /// re-validate only what depends on it. [`AnalysisHost::set_file`] with a different text
    /// hands it back to the workspace durability.
    pub fn set_edited_file(&mut self, path: &str, text: impl Into<Arc<str>>) -> SourceFile {
        let text = text.into();
        if let Some(&file) = self.files.get(path) {
            if !self.edited.contains(path) || **file.text(&self.db) != *text {
                let previous = file.syntax(&self.db).clone();
                let syntax = crate::editor::EditorTree::parse(
                    file.language(&self.db),
                    text.clone(),
                    previous.as_deref(),
                );
                file.set_text(&mut self.db)
                    .with_durability(Durability::LOW)
                    .to(text);
                self.forget_cached(file, Durability::LOW);
                file.set_syntax(&mut self.db)
                    .with_durability(Durability::LOW)
                    .to(syntax.map(Arc::new));
                self.edited.insert(Name::from(path));
            }
            return file;
        }
        let language = Language::from_path(path);
        let syntax = crate::editor::EditorTree::parse(language, text.clone(), None);
        let file = SourceFile::builder(Name::from(path), text, language)
            .syntax(syntax.map(Arc::new))
            .path_durability(Durability::LOW)
            .text_durability(Durability::LOW)
            .language_durability(Durability::LOW)
            .syntax_durability(Durability::LOW)
            .cached_durability(Durability::LOW)
            .new(&self.db);
        self.files.insert(Name::from(path), file);
        self.edited.insert(Name::from(path));
        self.sync_workspace();
        file
    }

    /// Adds or replaces a file. The language comes from the extension.
    pub fn set_file(&mut self, path: &str, text: impl Into<Arc<str>>) -> SourceFile {
        let text = text.into();
        let durability = self.durability_of(path);
        if let Some(&file) = self.files.get(path) {
            if **file.text(&self.db) != *text {
                self.forget_edits(file, path);
                self.forget_cached(file, durability);
                file.set_text(&mut self.db)
                    .with_durability(durability)
                    .to(text);
            }
            return file;
        }
        let file = SourceFile::builder(Name::from(path), text, Language::from_path(path))
            .path_durability(durability)
            .text_durability(durability)
            .language_durability(durability)
            .syntax_durability(durability)
            .cached_durability(durability)
            .new(&self.db);
        self.files.insert(Name::from(path), file);
        self.sync_workspace();
        file
    }

    /// Adds many files at once (one new revision for the file set).
    pub fn set_files(&mut self, files: Vec<(String, Arc<str>)>) {
        self.set_files_cached(files.into_iter().map(|(p, t)| (p, t, None)).collect());
    }

    /// [`AnalysisHost::set_files`] with each file's entry of the persisted index cache.
    fn set_files_cached(&mut self, files: Vec<LoadedFile>) {
        for (path, text, cached) in files {
            let durability = self.durability_of(&path);
            if let Some(&file) = self.files.get(path.as_str()) {
                self.forget_edits(file, &path);
                if cached.is_some() || file.cached(&self.db).is_some() {
                    file.set_cached(&mut self.db)
                        .with_durability(durability)
                        .to(cached);
                }
                file.set_text(&mut self.db)
                    .with_durability(durability)
                    .to(text);
                continue;
            }
            let language = Language::from_path(&path);
            let file = SourceFile::builder(Name::from(path.as_str()), text, language)
                .cached(cached)
                .path_durability(durability)
                .text_durability(durability)
                .language_durability(durability)
                .syntax_durability(durability)
                .cached_durability(durability)
                .new(&self.db);
            self.files.insert(Name::from(path.as_str()), file);
        }
        self.sync_workspace();
    }

    /// A file no longer edited: its syntax tree is dropped.
    fn forget_edits(&mut self, file: SourceFile, path: &str) {
        if self.edited.remove(path) {
            let durability = self.durability_of(path);
            file.set_syntax(&mut self.db)
                .with_durability(durability)
                .to(None);
            file.set_cached(&mut self.db)
                .with_durability(durability)
                .to(None);
        }
    }

    /// Drops a file's cache entry once its text changes (it could no longer be used).
    fn forget_cached(&mut self, file: SourceFile, durability: Durability) {
        if file.cached(&self.db).is_some() {
            file.set_cached(&mut self.db)
                .with_durability(durability)
                .to(None);
        }
    }

    pub fn remove_file(&mut self, path: &str) {
        self.edited.remove(path);
        if self.files.remove(path).is_some() {
            self.sync_workspace();
        }
    }

    fn sync_workspace(&mut self) {
        let mut files: Vec<(Name, SourceFile)> =
            self.files.iter().map(|(p, f)| (p.clone(), *f)).collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let files: Vec<SourceFile> = files.into_iter().map(|(_, f)| f).collect();
        self.workspace
            .set_files(&mut self.db)
            .with_durability(self.workspace_durability)
            .to(Arc::new(files));
    }

    pub fn file(&self, path: &str) -> Option<SourceFile> {
        self.files.get(path).copied()
    }

    /// A snapshot for queries. Any later change through the host cancels queries running on
    /// it (they return [`AnalysisError::Cancelled`]).
    pub fn snapshot(&self) -> crate::Analysis {
        crate::Analysis::new(self.db.clone(), Arc::new(self.files.clone()))
    }

    /// Starts recording query executions (see [`AnalysisHost::take_executions`]).
    pub fn record_executions(&self, on: bool) {
        self.db.log.enabled.store(on, Ordering::Relaxed);
    }

    /// The query executions recorded since the last call.
    pub fn take_executions(&self) -> Vec<Execution> {
        self.db
            .log
            .entries
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    pub fn db(&self) -> &RootDatabase {
        &self.db
    }

    /// Loads every file under `root` (honouring `.gitignore`), reading source files in
    /// parallel. Binary and non-UTF-8 source files are skipped and reported, never fatal.
    pub fn load_dir(root: &Path) -> Result<(AnalysisHost, LoadReport), AnalysisError> {
        AnalysisHost::load_dir_with(root, Durability::LOW)
    }

    /// [`AnalysisHost::load_dir`] into a host of the given workspace durability (see
    /// [`AnalysisHost::with_workspace_durability`]).
    pub fn load_dir_with(
        root: &Path,
        durability: Durability,
    ) -> Result<(AnalysisHost, LoadReport), AnalysisError> {
        AnalysisHost::load_dir_with_cache(root, durability, None)
    }

    /// [`AnalysisHost::load_dir`], taking each unchanged file's index from the persisted
    /// `cache` (see [`crate::cache`]) instead of parsing it. Write the indexes back after the
    /// analysis with [`IndexCache::store`]. A missing, corrupt or foreign cache only means
    /// that files are parsed.
    pub fn load_dir_cached(
        root: &Path,
        cache: Option<&IndexCache>,
    ) -> Result<(AnalysisHost, LoadReport), AnalysisError> {
        AnalysisHost::load_dir_with_cache(root, Durability::LOW, cache)
    }

    /// [`AnalysisHost::load_dir_cached`] into a host of the given workspace durability.
    pub fn load_dir_with_cache(
        root: &Path,
        durability: Durability,
        cache: Option<&IndexCache>,
    ) -> Result<(AnalysisHost, LoadReport), AnalysisError> {
        use rayon::prelude::*;
        let meta = std::fs::metadata(root).map_err(|e| AnalysisError::Io {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(AnalysisError::NotADirectory(root.display().to_string()));
        }
        let started = Instant::now();
        let mut report = LoadReport::default();
        // Walk and read together, on every core: each walker thread reads the files it finds,
        // so reading overlaps the directory walk; the cache pack loads meanwhile.
        let (mut found, pack) = std::thread::scope(|scope| {
            let pack = cache.map(|cache| {
                scope.spawn(move || {
                    let started = Instant::now();
                    (cache.load(), started.elapsed())
                })
            });
            let found = walk_and_read(root);
            (found, pack.map(|p| p.join()))
        });
        found.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
        report.discover = started.elapsed();
        let started = Instant::now();
        let pack = match pack {
            Some(Ok(pack)) => Some(pack),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => None,
        };
        let mut files = Vec::with_capacity(found.len());
        for f in found {
            // A minified bundle is not a file of its language; an unreadable one still is.
            let language = match &f.read {
                Some(Err(skip)) if skip.minified => None,
                Some(_) => Language::from_path(&f.rel),
                None => None,
            };
            match language {
                Some(l) => {
                    *report
                        .files_by_language
                        .entry(l.name().to_owned())
                        .or_default() += 1
                }
                None => report.other_files += 1,
            }
            match f.read {
                Some(Ok(text)) => files.push((f.rel, text)),
                Some(Err(skip)) => report.skipped.push(skip),
                None => {}
            }
        }
        report.read = started.elapsed();
        let mut host = AnalysisHost::with_workspace_durability(durability);
        let Some(((pack, ignored), pack_time)) = pack else {
            host.set_files(files);
            return Ok((host, report));
        };
        let started = Instant::now();
        let files: Vec<LoadedFile> = files
            .into_par_iter()
            .map(|(path, text)| {
                let cached = Language::from_path(&path)
                    .filter(|&l| lang::module_for(l).is_some())
                    .map(|language| {
                        let key = crate::cache::cache_key(language, &path, &text);
                        let index = pack.get(&key).map(Arc::new);
                        Arc::new(CachedIndex {
                            text: text.clone(),
                            key,
                            index,
                        })
                    });
                (path, text, cached)
            })
            .collect();
        let mut load = CacheLoad {
            pack_bytes: pack.size(),
            ignored,
            ..CacheLoad::default()
        };
        for (_, _, c) in &files {
            match c.as_ref().map(|c| c.index.is_some()) {
                Some(true) => load.hits += 1,
                Some(false) => load.misses += 1,
                None => {}
            }
        }
        host.set_files_cached(files);
        host.db.indexed.start();
        load.time = pack_time + started.elapsed();
        report.cache = Some(load);
        Ok((host, report))
    }
}

/// One entry the walk found: a file the engine reads (its text, or why it was skipped) or
/// another file (`read` is `None`).
struct Found {
    rel: String,
    read: Option<Result<Arc<str>, SkippedFile>>,
}

/// Walks `root` (honouring `.gitignore`, skipping hidden entries and `.git`) on every core,
/// reading each source and import-configuration file as it is found. Unordered.
fn walk_and_read(root: &Path) -> Vec<Found> {
    let found = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    ignore::WalkBuilder::new(root)
        .hidden(true)
        .parents(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(|e| e.file_name() != ".git")
        .build_parallel()
        .run(|| {
            let found = &found;
            Box::new(move |entry: Result<ignore::DirEntry, ignore::Error>| {
                use ignore::WalkState;
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                let Ok(rel) = entry.path().strip_prefix(root) else {
                    return WalkState::Continue;
                };
                let rel: String = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let read = match Language::from_path(&rel) {
                    Some(_) if is_minified_path(&rel) => Some(Err(SkippedFile {
                        path: rel.clone(),
                        reason: "minified bundle (by its name)".into(),
                        minified: true,
                    })),
                    Some(_) => Some(read_source(&rel, entry.path())),
                    None if is_config_file(&rel) => Some(read_source(&rel, entry.path())),
                    None => None,
                };
                if let Ok(mut all) = found.lock() {
                    all.push(Found { rel, read });
                }
                WalkState::Continue
            })
        });
    found.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Reads a source file; binary, non-UTF-8 and minified files are skipped with a reason
/// ([`source_text`]).
fn read_source(rel: &str, abs: &Path) -> Result<Arc<str>, SkippedFile> {
    let bytes = std::fs::read(abs).map_err(|e| SkippedFile {
        path: rel.to_owned(),
        reason: format!("cannot read: {e}"),
        minified: false,
    })?;
    Ok(Arc::from(source_text(rel, bytes)?))
}
