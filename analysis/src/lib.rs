//! HiveSync's analysis engine. Pure: no network, no async, no database — only files in, plain
//! data out. The language server, the CLI (`hivesync analyze`) and the backend's workers all ask
//! it the same questions.

//!
//! Map: [`db`] holds the salsa inputs and per-file queries and the [`AnalysisHost`];
//! [`lang`] has one module per language (start there to add one); [`model`] is the
//! language-neutral per-file data; [`resolve`] links references to definitions across files;
//! [`ide`] answers queries on an [`Analysis`] snapshot; `rename` plans renames as
//! `ChangeSet`s; [`context`] gathers what documentation and explanations need (callers,
//! callees, thrown errors, a ranked repository map); [`fixture`] parses the multi-file test fixtures every language's tests use;
//! [`cache`] persists each file's index between runs ([`AnalysisHost::load_dir_cached`],
//! [`IndexCache::store`]).

pub mod alloc;
pub mod cache;
pub mod changeset;
pub mod context;
pub mod db;
pub mod editor;
pub mod fixture;
pub mod ide;
pub mod lang;
pub mod manifest;
pub mod model;
mod rename;
pub mod resolve;

pub use cache::IndexCache;
pub use db::{AnalysisHost, LoadReport, SourceFile};
pub use ide::{
    Analysis, Diagnostic, DocGap, DocumentSymbol, FilePosition, HoverInfo, Location,
    ReferenceCounts, RenameError, RenamePlan, Stats, WorkspaceSymbol,
};

/// Errors of the query API. Each names the file or position that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    #[error("no such file in the analysed project: {0}")]
    FileNotFound(String),
    #[error("{path}:{line}:{column} is outside the file (lines and columns start at 1)")]
    PositionOutOfRange {
        path: String,
        line: u32,
        column: u32,
    },
    #[error("{0}: no language support for this file type yet")]
    UnsupportedLanguage(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("rename refused: {0}")]
    Rename(#[from] RenameError),
    #[error("the query was cancelled by a newer change")]
    Cancelled,
}
