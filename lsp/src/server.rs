//! The LSP front: [`Backend`] implements tower-lsp-server's `LanguageServer` over the
//! [`World`]. Notifications change the world synchronously (so a request that follows an edit
//! sees it); every engine query runs on a blocking thread with a cloned `Analysis` snapshot, so
//! nothing blocks the message loop. A newer edit cancels running queries (they answer
//! `ContentModified`); `$/cancelRequest` drops the request and cancels its snapshot's work.

use crate::convert::{self, Ctx};
use crate::settings::Settings;
use crate::text::Encoding;
use crate::world::{self, World, uri_path};
use hivesync_analysis::cache::CacheError;
use hivesync_analysis::{AnalysisError, AnalysisHost, FilePosition, IndexCache, RenameError};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

/// The command behind "Rename symbol across files (including probable matches)".
/// Arguments: `[uri, position, newName?]`; without a new name, the last name given to
/// `textDocument/rename` is used.
pub const RENAME_INCLUDING_PROBABLE: &str = "hivesync.renameIncludingProbable";
/// The command of "N references" code lenses (arguments: `[uri, position, locations]`, the shape
/// of VS Code's `editor.action.showReferences`). Editors may map it to their references view;
/// sent to the server as `workspace/executeCommand`, it answers the references at `position`
/// as of now (`Location[]`), and shows the document of a single one when the editor supports
/// `window/showDocument`.
pub const SHOW_REFERENCES: &str = "hivesync.showReferences";

const DIAGNOSTICS_DEBOUNCE: Duration = Duration::from_millis(200);
/// Pause before warming resumes after an edit interrupted it.
const WARM_RESUME_DELAY: Duration = Duration::from_millis(100);
/// Pause before writing the index cache again after an edit interrupted it.
const CACHE_RETRY_DELAY: Duration = Duration::from_millis(500);

/// What the client said it supports.
#[derive(Debug, Clone, Default)]
struct ClientCaps {
    progress: bool,
    watch_dynamic: bool,
    change_annotations: bool,
    code_lens_refresh: bool,
    inlay_hint_refresh: bool,
    show_document: bool,
}

pub(crate) struct Inner {
    client: Client,
    world: Mutex<World>,
    caps: Mutex<ClientCaps>,
    diagnostics_generation: AtomicU64,
    /// Bumped each time a workspace folder's files were loaded (see [`Inner::wait_loaded`]).
    loaded: tokio::sync::watch::Sender<u64>,
    /// Unknown settings keys already warned about.
    warned: Mutex<HashSet<String>>,
}

/// The language server.
pub struct Backend {
    inner: Arc<Inner>,
}

impl Backend {
    /// A server whose settings start from `defaults` (the `[lsp]` config table).
    pub fn new(client: Client, defaults: Settings) -> Backend {
        Backend {
            inner: Arc::new(Inner {
                client,
                world: Mutex::new(World::new(defaults)),
                caps: Mutex::new(ClientCaps::default()),
                diagnostics_generation: AtomicU64::new(0),
                loaded: tokio::sync::watch::Sender::new(0),
                warned: Mutex::new(HashSet::new()),
            }),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    fn caps(&self) -> ClientCaps {
        lock(&self.caps).clone()
    }

    /// Applies client settings, logging unknown keys once each.
    async fn apply_settings(&self, value: &Value) {
        let mut settings = self.world().settings.clone();
        let ignored = settings.merge_client(value);
        let fresh: Vec<String> = {
            let mut warned = lock(&self.warned);
            ignored
                .into_iter()
                .filter(|k| warned.insert(k.clone()))
                .collect()
        };
        if !fresh.is_empty() {
            let msg = format!(
                "hivesync: ignoring unknown or mistyped settings: {}",
                fresh.join(", ")
            );
            tracing::warn!("{msg}");
            self.client.log_message(MessageType::WARNING, msg).await;
        }
        let err = self.world().set_settings(settings);
        if let Some(err) = err {
            tracing::warn!("{err}");
            self.client.log_message(MessageType::WARNING, err).await;
        }
    }

    /// Waits until the workspace folder holding `path` (every folder, for `None`) has its files
    /// loaded: answers that look across files are never computed on a partial project — a
    /// rename would miss edits, references would be missing. (The engine's warm-up after
    /// loading is not waited for; queries compute what they need.) Dropping the future (a
    /// cancelled request) stops the wait.
    async fn wait_loaded(&self, path: Option<&std::path::Path>) {
        let mut rx = self.loaded.subscribe();
        loop {
            let ready = {
                let w = self.world();
                match path {
                    Some(p) => w
                        .locate(p)
                        .and_then(|f| w.roots.get(f.root))
                        .is_none_or(|r| r.indexed),
                    None => w.roots.iter().all(|r| r.indexed),
                }
            };
            if ready || rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Runs `f` on a blocking thread with a snapshot of the root holding `uri`, once that root
    /// is loaded. Unknown files give `None`; cancellation gives `ContentModified`.
    async fn query<T, F>(&self, uri: &Uri, f: F) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx) -> std::result::Result<Option<T>, AnalysisError> + Send + 'static,
    {
        if let Some(path) = uri_path(uri) {
            self.wait_loaded(Some(&path)).await;
        }
        self.query_now(uri, f).await
    }

    /// Like [`Inner::query`], without waiting for the project to be loaded: for answers about
    /// the file itself (outline, hints and lenses, which the editor re-requests after loading).
    async fn query_now<T, F>(&self, uri: &Uri, f: F) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx) -> std::result::Result<Option<T>, AnalysisError> + Send + 'static,
    {
        let Some(path) = uri_path(uri) else {
            return Ok(None);
        };
        let ctx = {
            let w = self.world();
            let Some((analysis, file, root)) = w.snapshot(&path) else {
                return Ok(None);
            };
            Ctx::new(analysis, file, root, w.encoding, w.uris.clone())
        };
        run_blocking(ctx, f).await
    }

    fn schedule_diagnostics(self: &Arc<Self>) {
        let generation = self.diagnostics_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let inner = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DIAGNOSTICS_DEBOUNCE).await;
            if inner.diagnostics_generation.load(Ordering::SeqCst) == generation {
                inner.publish_diagnostics().await;
            }
        });
    }

    async fn publish_diagnostics(&self) {
        let jobs: Vec<(Uri, i32, Ctx)> = {
            let w = self.world();
            w.docs
                .iter()
                .filter_map(|(path, doc)| {
                    let (analysis, file, root) = w.snapshot(path)?;
                    // Imports into a folder still loading would look unresolved: its
                    // documents get diagnostics when loading ends.
                    if !w.roots.get(file.root).is_some_and(|r| r.indexed) {
                        return None;
                    }
                    let uri = w
                        .uris
                        .get(path)
                        .cloned()
                        .or_else(|| Uri::from_file_path(path))?;
                    Some((
                        uri,
                        doc.version,
                        Ctx::new(analysis, file, root, w.encoding, HashMap::new()),
                    ))
                })
                .collect()
        };
        if jobs.is_empty() {
            return;
        }
        // One blocking task for all documents: snapshots never wait idle in async code (a
        // host write waits for every snapshot to be dropped).
        let computed = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .filter_map(|(uri, version, mut ctx)| {
                    let rel = ctx.file.rel.clone();
                    let found = ctx.analysis.diagnostics(Some(&rel)).ok()?;
                    let diags: Vec<Diagnostic> = found
                        .iter()
                        .filter_map(|d| convert::diagnostic(&mut ctx, d))
                        .collect();
                    Some((uri, version, diags))
                })
                .collect::<Vec<_>>()
        })
        .await;
        for (uri, version, diags) in computed.unwrap_or_default() {
            self.client
                .publish_diagnostics(uri, diags, Some(version))
                .await;
        }
    }

    /// Asks the editor to re-request code lenses and inlay hints. The requests run in their own
    /// task: a notification handler that awaited the editor's answer would hold up the session's
    /// end forever when no answer comes (the server stops reading at `exit`).
    fn refresh_views(self: &Arc<Self>) {
        let caps = self.caps();
        if !(caps.code_lens_refresh || caps.inlay_hint_refresh) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            if caps.code_lens_refresh {
                let _ = inner.client.code_lens_refresh().await;
            }
            if caps.inlay_hint_refresh {
                let _ = inner.client.inlay_hint_refresh().await;
            }
        });
    }

    /// Loads every workspace folder not loaded yet, reporting progress, then warms the engine.
    async fn index(self: Arc<Self>) {
        let roots: Vec<PathBuf> = self
            .world()
            .roots
            .iter()
            .filter(|r| !r.indexed && !r.loose)
            .map(|r| r.path.clone())
            .collect();
        if roots.is_empty() {
            return;
        }
        let progress = if self.caps().progress {
            let token = NumberOrString::String(format!(
                "hivesync/indexing/{}",
                self.diagnostics_generation.load(Ordering::SeqCst)
            ));
            match self.client.create_work_done_progress(token.clone()).await {
                Ok(()) => Some(
                    self.client
                        .progress(token, "Indexing")
                        .with_message("Reading files")
                        .with_percentage(0)
                        .begin()
                        .await,
                ),
                Err(_) => None,
            }
        } else {
            None
        };
        let many = roots.len() > 1;
        for root in roots {
            let started = std::time::Instant::now();
            let path = root.clone();
            let mut cache = if self.world().settings.index_cache {
                IndexCache::for_root(&root).map(Arc::new)
            } else {
                None
            };
            let load_cache = cache.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                AnalysisHost::load_dir_with_cache(
                    &path,
                    world::EDITOR_DURABILITY,
                    load_cache.as_deref(),
                )
            })
            .await;
            let host = match loaded {
                Ok(Ok((host, report))) => {
                    if !report.skipped.is_empty() {
                        tracing::info!(
                            "{}: skipped {} file(s) (binary, not UTF-8 or minified)",
                            root.display(),
                            report.skipped.len()
                        );
                    }
                    if let Some(c) = &report.cache {
                        tracing::info!(
                            "{}: index cache {} hits, {} misses in {} ms{}",
                            root.display(),
                            c.hits,
                            c.misses,
                            c.time.as_millis(),
                            c.ignored
                                .as_deref()
                                .map(|w| format!(" (pack ignored: {w})"))
                                .unwrap_or_default()
                        );
                    }
                    host
                }
                Ok(Err(e)) => {
                    tracing::warn!("cannot load {}: {e}", root.display());
                    world::editor_host()
                }
                Err(e) => {
                    tracing::error!("loading {} failed: {e}", root.display());
                    world::editor_host()
                }
            };
            {
                let mut w = self.world();
                let excluded: Vec<String> = world::host_files(&host)
                    .into_iter()
                    .filter(|p| w.is_excluded(p))
                    .collect();
                w.install(&root, host, excluded);
                self.loaded.send_modify(|n| *n += 1);
            }
            let name = root
                .file_name()
                .map(|n| format!("{}: ", n.to_string_lossy()))
                .filter(|_| many)
                .unwrap_or_default();
            // Warm the engine; an edit interrupts it (salsa cancellation), and it resumes on a
            // fresh snapshot once typing pauses — what was computed before is kept.
            loop {
                let Some(snapshot) = self.root_snapshot(&root) else {
                    break;
                };
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
                let warm = tokio::task::spawn_blocking(move || {
                    snapshot.warm_with_progress(&|done, total| {
                        let step = (total / 50).max(1);
                        if done % step == 0 || done == total {
                            let _ = tx.send((done, total));
                        }
                    })
                });
                while let Some((done, total)) = rx.recv().await {
                    let files = total / 2;
                    let message = if done <= files {
                        format!("{name}Indexing {done}/{files} files")
                    } else {
                        format!("{name}Resolving {}/{files} files", done - files)
                    };
                    if let Some(p) = &progress {
                        let pct = u32::try_from(done * 100 / total.max(1)).unwrap_or(100);
                        p.report_with_message(message, pct).await;
                    }
                }
                match warm.await {
                    Ok(Ok(())) => {
                        tracing::info!(
                            "indexed {} in {} ms",
                            root.display(),
                            started.elapsed().as_millis()
                        );
                        if let Some(cache) = cache.take() {
                            tokio::spawn(self.clone().store_cache(root.clone(), cache));
                        }
                        break;
                    }
                    Ok(Err(_)) => {
                        tracing::debug!("warming {} was interrupted; resuming", root.display());
                        tokio::time::sleep(WARM_RESUME_DELAY).await;
                    }
                    Err(e) => {
                        tracing::error!("warming {} failed: {e}", root.display());
                        break;
                    }
                }
            }
        }
        if let Some(p) = progress {
            p.finish_with_message("Indexed").await;
        }
        self.publish_diagnostics().await;
        self.refresh_views();
    }

    /// A snapshot of the workspace folder at `root`, if it is still open.
    fn root_snapshot(&self, root: &std::path::Path) -> Option<hivesync_analysis::Analysis> {
        self.world()
            .roots
            .iter()
            .find(|r| r.path == root)
            .map(|r| r.host.snapshot())
    }

    /// Writes the folder's indexes to the persisted cache, in the background (a blocking
    /// thread; the snapshot is dropped before encoding and writing, so edits never wait for
    /// it). An edit during the short collection cancels it; it is retried a few times.
    async fn store_cache(self: Arc<Self>, root: PathBuf, cache: Arc<IndexCache>) {
        for _ in 0..5 {
            let Some(snapshot) = self.root_snapshot(&root) else {
                return;
            };
            let cache = cache.clone();
            match tokio::task::spawn_blocking(move || cache.store(snapshot)).await {
                Ok(Ok(r)) => {
                    tracing::info!(
                        "{}: index cache {} ({} entries, {} new, {} bytes) in {} ms",
                        root.display(),
                        if r.written { "written" } else { "unchanged" },
                        r.entries,
                        r.encoded,
                        r.pack_bytes,
                        r.time.as_millis()
                    );
                    return;
                }
                Ok(Err(CacheError::Cancelled)) => tokio::time::sleep(CACHE_RETRY_DELAY).await,
                Ok(Err(e)) => {
                    tracing::debug!("{e}");
                    return;
                }
                Err(e) => {
                    tracing::error!("writing the index cache failed: {e}");
                    return;
                }
            }
        }
    }

    async fn register_watchers(&self) {
        if !self.caps().watch_dynamic {
            return;
        }
        let globs = [
            "**/*.{py,pyi,ts,tsx,mts,cts,js,jsx,mjs,cjs,go,rs}",
            "**/{go.mod,tsconfig.json,jsconfig.json,package.json,Cargo.toml}",
        ];
        let options = DidChangeWatchedFilesRegistrationOptions {
            watchers: globs
                .iter()
                .map(|g| FileSystemWatcher {
                    glob_pattern: GlobPattern::String((*g).to_owned()),
                    kind: None,
                })
                .collect(),
        };
        let registration = Registration {
            id: "hivesync/watched-files".to_owned(),
            method: "workspace/didChangeWatchedFiles".to_owned(),
            register_options: serde_json::to_value(options).ok(),
        };
        if let Err(e) = self.client.register_capability(vec![registration]).await {
            tracing::warn!("the client refused the file watcher: {e}");
        }
    }
}

/// Cancels the snapshots' running work when dropped before being disarmed (cleared): a
/// request future dropped by `$/cancelRequest` stops its engine work too.
struct CancelOnDrop(Vec<salsa::CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for t in self.0.drain(..) {
            t.cancel();
        }
    }
}

/// Runs a query closure on a blocking thread; dropping the returned future (a cancelled
/// request) cancels the snapshot's running work.
async fn run_blocking<T, F>(mut ctx: Ctx, f: F) -> Result<Option<T>>
where
    T: Send + 'static,
    F: FnOnce(&mut Ctx) -> std::result::Result<Option<T>, AnalysisError> + Send + 'static,
{
    let mut guard = CancelOnDrop(vec![ctx.analysis.cancellation_token()]);
    let joined = tokio::task::spawn_blocking(move || f(&mut ctx)).await;
    guard.0.clear();
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => analysis_error(e),
        Err(e) => {
            tracing::error!("a query failed: {e}");
            Err(Error {
                code: ErrorCode::InternalError,
                message: "internal error while answering the request (see the server log)".into(),
                data: None,
            })
        }
    }
}

/// Engine errors as protocol answers: a missing file or a position outside it is an empty
/// answer, cancellation is `ContentModified`, a refused rename is `RequestFailed`.
fn analysis_error<T>(e: AnalysisError) -> Result<Option<T>> {
    match e {
        AnalysisError::Cancelled => Err(Error::content_modified()),
        AnalysisError::FileNotFound(_)
        | AnalysisError::PositionOutOfRange { .. }
        | AnalysisError::UnsupportedLanguage(_) => Ok(None),
        AnalysisError::Rename(r) => Err(request_failed(format!("rename refused: {r}"))),
        other => Err(request_failed(other.to_string())),
    }
}

fn request_failed(message: String) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into(),
        data: None,
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let caps = &params.capabilities;
        let offered = caps
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.clone())
            .unwrap_or_default();
        let encoding = if offered.contains(&PositionEncodingKind::UTF8) {
            Encoding::Utf8
        } else {
            Encoding::Utf16
        };
        let workspace = caps.workspace.as_ref();
        *lock(&self.inner.caps) = ClientCaps {
            progress: caps
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            watch_dynamic: workspace
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false),
            change_annotations: workspace
                .and_then(|w| w.workspace_edit.as_ref())
                .is_some_and(|e| {
                    e.change_annotation_support.is_some() && e.document_changes == Some(true)
                }),
            code_lens_refresh: workspace
                .and_then(|w| w.code_lens.as_ref())
                .and_then(|c| c.refresh_support)
                .unwrap_or(false),
            inlay_hint_refresh: workspace
                .and_then(|w| w.inlay_hint.as_ref())
                .and_then(|c| c.refresh_support)
                .unwrap_or(false),
            show_document: caps
                .window
                .as_ref()
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|d| d.support),
        };
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| uri_path(&f.uri))
            .collect();
        #[allow(deprecated)]
        if roots.is_empty()
            && let Some(p) = params.root_uri.as_ref().and_then(uri_path)
        {
            roots.push(p);
        }
        {
            let mut w = self.inner.world();
            w.encoding = encoding;
            for r in roots {
                w.add_root(r);
            }
        }
        if let Some(options) = &params.initialization_options {
            self.inner.apply_settings(options).await;
        }
        let position_encoding = match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        };
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(position_encoding),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        ..TextDocumentSyncOptions::default()
                    },
                )),
                definition_provider: Some(OneOf::Left(true)),
                declaration_provider: Some(DeclarationCapability::Simple(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
                document_symbol_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                inlay_hint_provider: Some(OneOf::Left(true)),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(true),
                }),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![CodeActionKind::REFACTOR_REWRITE]),
                        resolve_provider: Some(false),
                        work_done_progress_options: WorkDoneProgressOptions::default(),
                    },
                )),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![
                        RENAME_INCLUDING_PROBABLE.to_owned(),
                        SHOW_REFERENCES.to_owned(),
                    ],
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                }),
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                        supported: Some(true),
                        change_notifications: Some(OneOf::Left(true)),
                    }),
                    file_operations: None,
                }),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "hivesync".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        tokio::spawn(self.inner.clone().index());
        // Not awaited here, like every server->client request (see `refresh_views`).
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.register_watchers().await });
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let Some(path) = uri_path(&doc.uri) else {
            return;
        };
        {
            let mut w = self.inner.world();
            w.uris.insert(path.clone(), doc.uri);
            w.open(path, &doc.text, doc.version);
        }
        self.inner.schedule_diagnostics();
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Some(path) = uri_path(&params.text_document.uri) else {
            return;
        };
        let changed =
            self.inner
                .world()
                .change(&path, params.text_document.version, &params.content_changes);
        if changed {
            self.inner.schedule_diagnostics();
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        let Some(path) = uri_path(&uri) else {
            return;
        };
        {
            let mut w = self.inner.world();
            w.uris.remove(&path);
            w.close(&path);
        }
        self.inner
            .client
            .publish_diagnostics(uri, Vec::new(), None)
            .await;
        self.inner.schedule_diagnostics();
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        {
            let mut w = self.inner.world();
            for change in &params.changes {
                if let Some(path) = uri_path(&change.uri) {
                    w.disk_changed(&path);
                }
            }
        }
        self.inner.schedule_diagnostics();
        self.inner.refresh_views();
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.inner.apply_settings(&params.settings).await;
        self.inner.refresh_views();
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        {
            let mut w = self.inner.world();
            for removed in &params.event.removed {
                if let Some(p) = uri_path(&removed.uri) {
                    w.roots.retain(|r| r.path != p);
                }
            }
            for added in &params.event.added {
                if let Some(p) = uri_path(&added.uri) {
                    w.add_root(p);
                }
            }
        }
        tokio::spawn(self.inner.clone().index());
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let tdp = params.text_document_position_params;
        let position = tdp.position;
        self.inner
            .query(&tdp.text_document.uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let found = ctx.analysis.definition(&pos)?;
                let locations: Vec<Location> =
                    found.iter().filter_map(|l| ctx.location(l)).collect();
                Ok(Some(GotoDefinitionResponse::Array(locations)))
            })
            .await
    }

    async fn goto_declaration(
        &self,
        params: request::GotoDeclarationParams,
    ) -> Result<Option<request::GotoDeclarationResponse>> {
        self.goto_definition(params).await
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let tdp = params.text_document_position;
        let position = tdp.position;
        let include = params.context.include_declaration;
        self.inner
            .query(&tdp.text_document.uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let found = ctx.analysis.references(&pos, include)?;
                Ok(Some(found.iter().filter_map(|l| ctx.location(l)).collect()))
            })
            .await
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        let position = params.position;
        self.inner
            .query(&params.text_document.uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let Some(offset) = ctx.offset(position) else {
                    return Ok(None);
                };
                // The engine has no separate "prepare" query: plan a rename to a name no
                // program uses and keep only the verdict and the range under the cursor.
                match ctx.analysis.rename(&pos, "hivesync_prepare_rename_probe") {
                    Ok(plan) => {
                        let rel = ctx.file.rel.clone();
                        let range = plan
                            .change
                            .files
                            .iter()
                            .filter(|f| f.path == rel)
                            .flat_map(|f| f.edits.iter())
                            .find(|e| e.start <= offset && offset <= e.end)
                            .and_then(|e| ctx.lsp_range(&rel, e.start, e.end));
                        Ok(Some(match range {
                            Some(range) => PrepareRenameResponse::RangeWithPlaceholder {
                                range,
                                placeholder: plan.old_name,
                            },
                            None => PrepareRenameResponse::DefaultBehavior {
                                default_behavior: true,
                            },
                        }))
                    }
                    Err(AnalysisError::Rename(
                        RenameError::Conflict { .. } | RenameError::LanguageRule(_),
                    )) => Ok(Some(PrepareRenameResponse::DefaultBehavior {
                        default_behavior: true,
                    })),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let tdp = params.text_document_position;
        let position = tdp.position;
        let new_name = params.new_name;
        let answer = self
            .inner
            .query(&tdp.text_document.uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Err(AnalysisError::Rename(RenameError::NothingToRename(
                        format!("line {} character {}", position.line, position.character),
                    )));
                };
                let plan = ctx.analysis.rename(&pos, &new_name)?;
                let edit = ctx.workspace_edit(&plan, false, false);
                Ok(Some((edit, plan.old_name, plan.new_name)))
            })
            .await?;
        Ok(answer.map(|(edit, old, new)| {
            self.inner.world().last_rename = Some((old, new));
            edit
        }))
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.inner
            .query_now(&params.text_document.uri, |ctx| {
                let rel = ctx.file.rel.clone();
                let symbols = ctx.analysis.document_symbols(&rel)?;
                Ok(Some(DocumentSymbolResponse::Nested(
                    symbols
                        .iter()
                        .filter_map(|s| convert::document_symbol(ctx, &rel, s))
                        .collect(),
                )))
            })
            .await
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        self.inner.wait_loaded(None).await;
        let ctxs: Vec<Ctx> = {
            let w = self.inner.world();
            w.roots
                .iter()
                .map(|r| {
                    Ctx::new(
                        r.host.snapshot(),
                        world::FileRef {
                            root: 0,
                            rel: String::new(),
                        },
                        r.path.clone(),
                        w.encoding,
                        w.uris.clone(),
                    )
                })
                .collect()
        };
        // All roots in one blocking task (see `publish_diagnostics`).
        let query = params.query;
        let mut guard = CancelOnDrop(
            ctxs.iter()
                .map(|c| c.analysis.cancellation_token())
                .collect(),
        );
        let joined = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            for mut ctx in ctxs {
                let found = ctx.analysis.workspace_symbols(&query, 256)?;
                all.extend(
                    found
                        .iter()
                        .filter_map(|s| convert::workspace_symbol(&mut ctx, s)),
                );
            }
            Ok::<_, AnalysisError>(all)
        });
        let joined = joined.await;
        guard.0.clear();
        let all = match joined {
            Ok(Ok(all)) => all,
            Ok(Err(e)) => return analysis_error(e),
            Err(e) => {
                tracing::error!("workspace/symbol failed: {e}");
                return Err(Error::internal_error());
            }
        };
        Ok(Some(WorkspaceSymbolResponse::Flat(all)))
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let tdp = params.text_document_position_params;
        let position = tdp.position;
        self.inner
            .query(&tdp.text_document.uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let Some(info) = ctx.analysis.hover(&pos)? else {
                    return Ok(None);
                };
                Ok(Some(Hover {
                    contents: HoverContents::Markup(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: convert::hover_markdown(&info),
                    }),
                    range: None,
                }))
            })
            .await
    }

    async fn inlay_hint(&self, params: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        let (enabled, hide_obvious) = {
            let w = self.inner.world();
            (w.settings.inlay_hints, w.settings.hide_obvious_hints)
        };
        if !enabled {
            return Ok(Some(Vec::new()));
        }
        let range = params.range;
        self.inner
            .query_now(&params.text_document.uri, move |ctx| {
                let rel = ctx.file.rel.clone();
                let byte_range = ctx.byte_range(&rel, range);
                let hints = ctx.analysis.parameter_hints(&rel, byte_range)?;
                Ok(Some(
                    hints
                        .iter()
                        .filter(|h| !(hide_obvious && convert::obvious_hint(h)))
                        .filter_map(|h| convert::inlay_hint(ctx, &rel, h))
                        .collect(),
                ))
            })
            .await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        if !self.inner.world().settings.code_lens {
            return Ok(Some(Vec::new()));
        }
        let uri = params.text_document.uri;
        let lens_uri = uri.clone();
        self.inner
            .query_now(&uri, move |ctx| {
                let rel = ctx.file.rel.clone();
                let symbols = ctx.analysis.document_symbols(&rel)?;
                let mut out = Vec::new();
                convert::reference_lenses(ctx, &lens_uri, &symbols, &mut out);
                Ok(Some(out))
            })
            .await
    }

    async fn code_lens_resolve(&self, lens: CodeLens) -> Result<CodeLens> {
        let uri: Option<Uri> = lens
            .data
            .as_ref()
            .and_then(|d| d.get("uri"))
            .and_then(|u| serde_json::from_value(u.clone()).ok());
        let Some(uri) = uri else {
            return Err(Error::invalid_params(
                "codeLens/resolve: the lens has no `data.uri` (it did not come from this server)",
            ));
        };
        let lens_uri = uri.clone();
        let unresolved = lens.clone();
        // Counting needs the whole project: this waits for loading, so no lens reads
        // "0 references" while indexing.
        let resolved = self
            .inner
            .query(&uri, move |ctx| {
                convert::resolve_reference_lens(ctx, &lens_uri, unresolved)
            })
            .await?;
        Ok(resolved.unwrap_or(lens))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let wanted = params.context.only.as_ref().is_none_or(|only| {
            only.iter().any(|k| {
                let k = k.as_str();
                k == "refactor" || k == "refactor.rewrite" || k.is_empty()
            })
        });
        if !wanted {
            return Ok(Some(Vec::new()));
        }
        let uri = params.text_document.uri;
        let position = params.range.start;
        let (last_name, annotations) = {
            let w = self.inner.world();
            (w.last_rename.clone(), self.inner.caps().change_annotations)
        };
        let action_uri = uri.clone();
        self.inner
            .query(&uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let mut actions = Vec::new();
                if let Some(skeleton) = ctx.analysis.doc_skeleton(&pos)? {
                    let rel = ctx.file.rel.clone();
                    let off = skeleton.insert_offset as usize;
                    if let Some(range) = ctx.lsp_range(&rel, off, off) {
                        let mut changes = HashMap::new();
                        changes.insert(
                            action_uri.clone(),
                            vec![TextEdit {
                                range,
                                new_text: skeleton.text.clone(),
                            }],
                        );
                        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                            title: "Add documentation comment".to_owned(),
                            kind: Some(CodeActionKind::REFACTOR_REWRITE),
                            edit: Some(WorkspaceEdit {
                                changes: Some(changes),
                                ..WorkspaceEdit::default()
                            }),
                            ..CodeAction::default()
                        }));
                    }
                }
                if let Some(action) = probable_rename_action(
                    ctx,
                    &pos,
                    &action_uri,
                    position,
                    last_name.clone().map(|(_, new)| new),
                    annotations,
                )? {
                    actions.push(action);
                }
                if let Some(action) = follow_up_action(ctx, position, last_name, annotations)? {
                    actions.push(action);
                }
                Ok(Some(actions))
            })
            .await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        match params.command.as_str() {
            RENAME_INCLUDING_PROBABLE => {}
            SHOW_REFERENCES => return self.show_references(&params.arguments).await,
            other => {
                return Err(Error::invalid_params(format!(
                    "unknown command `{other}` (this server runs {RENAME_INCLUDING_PROBABLE} \
                     and {SHOW_REFERENCES})"
                )));
            }
        }
        let args = &params.arguments;
        let (uri, position) =
            command_target(args, RENAME_INCLUDING_PROBABLE, "[uri, position, newName]")?;
        let new_name = args
            .get(2)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.inner.world().last_rename.clone().map(|(_, new)| new));
        let Some(new_name) = new_name else {
            return Err(Error::invalid_params(format!(
                "{RENAME_INCLUDING_PROBABLE} needs the new name as its third argument"
            )));
        };
        let annotations = self.inner.caps().change_annotations;
        let edit = self
            .inner
            .query(&uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let plan = ctx.analysis.rename(&pos, &new_name)?;
                Ok(Some(ctx.workspace_edit(&plan, true, annotations)))
            })
            .await?;
        let Some(edit) = edit else {
            return Err(request_failed(
                "no renamable symbol at that position".into(),
            ));
        };
        let response = self
            .inner
            .client
            .apply_edit(edit)
            .await
            .map_err(|e| request_failed(format!("the editor did not apply the edit: {e}")))?;
        Ok(Some(json!({
            "applied": response.applied,
            "failureReason": response.failure_reason,
        })))
    }
}

/// The `[uri, position, …]` a command's arguments start with.
fn command_target(args: &[Value], command: &str, usage: &str) -> Result<(Uri, Position)> {
    let uri: Option<Uri> = args
        .first()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let position: Option<Position> = args
        .get(1)
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    match (uri, position) {
        (Some(uri), Some(position)) => Ok((uri, position)),
        _ => Err(Error::invalid_params(format!("{command} takes {usage}"))),
    }
}

impl Backend {
    /// `hivesync.showReferences [uri, position, …]`: the references at `position` now (the
    /// lens's own list may be stale), declaration excluded.
    async fn show_references(&self, args: &[Value]) -> Result<Option<Value>> {
        let (uri, position) = command_target(args, SHOW_REFERENCES, "[uri, position, locations?]")?;
        let found = self
            .inner
            .query(&uri, move |ctx| {
                let Some(pos) = ctx.engine_position(position) else {
                    return Ok(None);
                };
                let found = ctx.analysis.references(&pos, false)?;
                Ok(Some(
                    found
                        .iter()
                        .filter_map(|l| ctx.location(l))
                        .collect::<Vec<Location>>(),
                ))
            })
            .await?
            .unwrap_or_default();
        if let [only] = found.as_slice()
            && self.inner.caps().show_document
        {
            let shown = self
                .inner
                .client
                .show_document(ShowDocumentParams {
                    uri: only.uri.clone(),
                    external: Some(false),
                    take_focus: Some(true),
                    selection: Some(only.range),
                })
                .await;
            if let Err(e) = shown {
                tracing::debug!("the editor did not show the reference: {e}");
            }
        }
        Ok(Some(json!(found)))
    }
}

/// "Rename symbol across files (including probable matches)": offered when the symbol at the
/// cursor is renamable and has probable references. With a known new name (the last
/// `textDocument/rename` of the session) the action carries the edit itself, probable edits
/// annotated `needsConfirmation`; without one it is a command the editor completes with a name.
fn probable_rename_action(
    ctx: &mut Ctx,
    pos: &FilePosition,
    uri: &Uri,
    position: Position,
    last_name: Option<String>,
    annotations: bool,
) -> std::result::Result<Option<CodeActionOrCommand>, AnalysisError> {
    let refs = ctx.analysis.references(pos, true)?;
    let probable = refs
        .iter()
        .filter(|l| l.confidence == hivesync_protocol::Confidence::Probable)
        .count();
    if probable == 0 {
        return Ok(None);
    }
    let plural = if probable == 1 { "match" } else { "matches" };
    if let Some(name) = last_name {
        match ctx.analysis.rename(pos, &name) {
            Ok(plan) if plan.probable_edits > 0 => {
                return Ok(Some(CodeActionOrCommand::CodeAction(CodeAction {
                    title: format!(
                        "Rename `{}` to `{name}` across files (including {} probable {plural})",
                        plan.old_name, plan.probable_edits
                    ),
                    kind: Some(CodeActionKind::REFACTOR_REWRITE),
                    edit: Some(ctx.workspace_edit(&plan, true, annotations)),
                    ..CodeAction::default()
                })));
            }
            Ok(_) | Err(AnalysisError::Rename(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(CodeActionOrCommand::CodeAction(CodeAction {
        title: format!("Rename symbol across files (including {probable} probable {plural})…"),
        kind: Some(CodeActionKind::REFACTOR_REWRITE),
        command: Some(Command {
            title: "Rename symbol across files (including probable matches)".to_owned(),
            command: RENAME_INCLUDING_PROBABLE.to_owned(),
            arguments: Some(vec![json!(uri), json!(position)]),
        }),
        ..CodeAction::default()
    })))
}

/// After a rename (`old` → `new`) applied in the editor: on the renamed symbol, "Rename N
/// probable matches of `old` to `new`" — every `obj.old` whose receiver's type is unknown, all
/// annotated `needsConfirmation` so the editor shows each for review.
fn follow_up_action(
    ctx: &mut Ctx,
    position: Position,
    last: Option<(String, String)>,
    annotations: bool,
) -> std::result::Result<Option<CodeActionOrCommand>, AnalysisError> {
    use hivesync_protocol::{ChangeSet, Confidence, FileChange, TextEdit as Edit};
    let Some((old, new)) = last else {
        return Ok(None);
    };
    let Some(offset) = ctx.offset(position) else {
        return Ok(None);
    };
    let rel = ctx.file.rel.clone();
    let Some(text) = ctx.analysis.text(&rel) else {
        return Ok(None);
    };
    if convert::word_at(&text, offset) != Some(new.as_str()) {
        return Ok(None);
    }
    let sites = ctx.analysis.probable_references_named(&old)?;
    if sites.is_empty() {
        return Ok(None);
    }
    let mut by_file: std::collections::BTreeMap<String, Vec<Edit>> =
        std::collections::BTreeMap::new();
    for s in &sites {
        by_file.entry(s.path.clone()).or_default().push(Edit {
            start: s.range.start as usize,
            end: s.range.end as usize,
            new_text: new.clone(),
            confidence: Confidence::Probable,
        });
    }
    let plan = hivesync_analysis::RenamePlan {
        old_name: old.clone(),
        new_name: new.clone(),
        change: ChangeSet {
            title: format!("Rename probable matches of `{old}` to `{new}`"),
            files: by_file
                .into_iter()
                .map(|(path, edits)| FileChange {
                    path,
                    base_hash: None,
                    edits,
                    delete: false,
                })
                .collect(),
        },
        exact_edits: 0,
        probable_edits: sites.len(),
    };
    let n = sites.len();
    let plural = if n == 1 { "match" } else { "matches" };
    Ok(Some(CodeActionOrCommand::CodeAction(CodeAction {
        title: format!("Rename {n} probable {plural} of `{old}` to `{new}` (review each)"),
        kind: Some(CodeActionKind::REFACTOR_REWRITE),
        edit: Some(ctx.workspace_edit(&plan, true, annotations)),
        ..CodeAction::default()
    })))
}
