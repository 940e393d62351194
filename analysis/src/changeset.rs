//! Working with [`ChangeSet`]s, the one unit of change: content hashing, validation, applying
//! to a directory (all files or none, returning the exact inverse), unified diffs with stable
//! hunk ids, and narrowing a change set to the hunks a reviewer accepted.
//!
//! The wire types live in `hivesync_protocol::changeset`; this module owns their rules:
//! - every hash is [`content_hash`] (blake3, lowercase hex) of the file's bytes;
//! - paths follow [`validate_manifest_path`] (relative, `/`-separated, no `..`);
//! - edits are byte ranges into the base content, sorted, non-overlapping, within bounds and on
//!   UTF-8 character boundaries (two insertions at the same offset are allowed and applied in
//!   order);
//! - a file entry with `base_hash: None` creates the file, one with `delete: true` deletes it
//!   (after checking its base hash) and carries no edits.
//!
//! [`apply`] checks every file's base hash before writing anything, then stages every new
//! content in a temporary file beside its target and renames them into place; if a rename
//! fails, the files already replaced are restored from the originals it kept. Files are only
//! ever written under the root: a path through a symbolic link is refused. Directories created
//! for new files are removed again on rollback; deleting a file never removes directories.
//!
//! Every error's message is complete — it names the file and includes its cause — so errors
//! carry no `source()` chain that a `{:#}` formatter would print twice.

use crate::manifest::{PathError, is_blake3_hex, validate_manifest_path};
use hivesync_protocol::{ChangeSet, Confidence, FileChange, TextEdit};
use serde::Serialize;
use similar::{Algorithm, DiffOp, DiffTag};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Lines of context around each diff hunk (as `git diff`).
pub const CONTEXT_LINES: usize = 3;

/// The content hash used everywhere (change sets, manifests, the backend): blake3 of the bytes,
/// as 64 lowercase hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

// ---------------------------------------------------------------------------------------------
// Validation

/// What is wrong with a list of edits against a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("edit {index} ends (byte {end}) before it starts (byte {start})")]
    Inverted {
        index: usize,
        start: usize,
        end: usize,
    },
    #[error(
        "edit {index} starts at byte {start}, before the previous edit ends (byte {prev_end}); edits must be sorted and must not overlap"
    )]
    Overlap {
        index: usize,
        start: usize,
        prev_end: usize,
    },
    #[error("edit {index} ends at byte {end}, past the end of the text ({len} bytes)")]
    OutOfBounds {
        index: usize,
        end: usize,
        len: usize,
    },
    #[error("edit {index} splits a UTF-8 character at byte {offset}")]
    NotCharBoundary { index: usize, offset: usize },
}

/// What is wrong with a change set, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeSetError {
    #[error("invalid path in change set: {error}")]
    Path { path: String, error: PathError },
    #[error("{path} appears more than once in the change set")]
    Duplicate { path: String },
    #[error("{path}: base hash {hash:?} is not a blake3 hex digest")]
    BadHash { path: String, hash: String },
    #[error("{path}: a deletion must name the base hash of the file it deletes")]
    DeleteWithoutBase { path: String },
    #[error("{path}: a deletion carries no edits")]
    DeleteWithEdits { path: String },
    #[error("{path}: {error}")]
    Edit { path: String, error: EditError },
    #[error(
        "{path}: the file is not UTF-8 text, so a change set cannot edit or delete it (its inverse could not restore it)"
    )]
    NotUtf8 { path: String },
}

/// Check that `edits` are sorted, non-overlapping, inside `text` and on character boundaries.
pub fn check_edits(text: &str, edits: &[TextEdit]) -> Result<(), EditError> {
    check_edit_order(edits)?;
    for (index, e) in edits.iter().enumerate() {
        if e.end > text.len() {
            return Err(EditError::OutOfBounds {
                index,
                end: e.end,
                len: text.len(),
            });
        }
        for offset in [e.start, e.end] {
            if !text.is_char_boundary(offset) {
                return Err(EditError::NotCharBoundary { index, offset });
            }
        }
    }
    Ok(())
}

fn check_edit_order(edits: &[TextEdit]) -> Result<(), EditError> {
    let mut prev_end = 0;
    for (index, e) in edits.iter().enumerate() {
        if e.end < e.start {
            return Err(EditError::Inverted {
                index,
                start: e.start,
                end: e.end,
            });
        }
        if e.start < prev_end {
            return Err(EditError::Overlap {
                index,
                start: e.start,
                prev_end,
            });
        }
        prev_end = e.end;
    }
    Ok(())
}

/// `text` with `edits` applied (pure; see [`check_edits`] for the rules).
pub fn apply_to_text(text: &str, edits: &[TextEdit]) -> Result<String, EditError> {
    check_edits(text, edits)?;
    let inserted: usize = edits.iter().map(|e| e.new_text.len()).sum();
    let mut out = String::with_capacity(text.len() + inserted);
    let mut pos = 0;
    for e in edits {
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.new_text);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

/// Check everything about a change set that does not need the files: paths, duplicates, hash
/// syntax, deletion rules and edit order. Bounds and character boundaries are checked against
/// the base content by [`apply`], [`diff_files`] and [`apply_to_text`].
pub fn validate(cs: &ChangeSet) -> Result<(), ChangeSetError> {
    let mut seen = BTreeSet::new();
    for f in &cs.files {
        validate_manifest_path(&f.path).map_err(|error| ChangeSetError::Path {
            path: f.path.clone(),
            error,
        })?;
        if !seen.insert(f.path.as_str()) {
            return Err(ChangeSetError::Duplicate {
                path: f.path.clone(),
            });
        }
        if let Some(h) = &f.base_hash
            && !is_blake3_hex(h)
        {
            return Err(ChangeSetError::BadHash {
                path: f.path.clone(),
                hash: h.clone(),
            });
        }
        if f.delete {
            if f.base_hash.is_none() {
                return Err(ChangeSetError::DeleteWithoutBase {
                    path: f.path.clone(),
                });
            }
            if !f.edits.is_empty() {
                return Err(ChangeSetError::DeleteWithEdits {
                    path: f.path.clone(),
                });
            }
        }
        check_edit_order(&f.edits).map_err(|error| ChangeSetError::Edit {
            path: f.path.clone(),
            error,
        })?;
    }
    Ok(())
}

/// The content of `f` after its edits, given its base text (`""` for a creation).
fn new_text_of(f: &FileChange, base: &str) -> Result<String, ChangeSetError> {
    apply_to_text(base, &f.edits).map_err(|error| ChangeSetError::Edit {
        path: f.path.clone(),
        error,
    })
}

// ---------------------------------------------------------------------------------------------
// Applying

/// A file whose state on disk is not the one the change set was computed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileConflict {
    pub path: String,
    /// The base hash the change expects; `None` when it expects the file not to exist.
    pub expected: Option<String>,
    /// The hash on disk; `None` when the file does not exist.
    pub found: Option<String>,
}

impl fmt::Display for FileConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.expected, &self.found) {
            (Some(e), Some(x)) => write!(
                f,
                "{} changed since the change was computed (expected blake3 {e}, found {x})",
                self.path
            ),
            (Some(e), None) => write!(
                f,
                "{} does not exist (expected a file with blake3 {e})",
                self.path
            ),
            (None, Some(x)) => write!(
                f,
                "{} already exists (blake3 {x}) but the change creates it",
                self.path
            ),
            (None, None) => write!(f, "{}: no conflict", self.path),
        }
    }
}

fn conflicts_message(conflicts: &[FileConflict]) -> String {
    let list: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
    format!(
        "the change set does not match the files ({} conflict{}); nothing was written: {}",
        conflicts.len(),
        if conflicts.len() == 1 { "" } else { "s" },
        list.join("; ")
    )
}

/// Why [`apply`] wrote nothing (or, for [`ApplyError::RollbackFailed`] only, could not undo
/// what it wrote).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] ChangeSetError),
    /// One entry per file whose base hash does not match, in path order.
    #[error("{}", conflicts_message(.0))]
    Conflict(Vec<FileConflict>),
    #[error("{path}: {reason}; nothing was written")]
    Unsafe { path: String, reason: String },
    #[error("{path}: cannot {action}: {error}; no file was changed")]
    Io {
        path: String,
        action: &'static str,
        error: io::Error,
    },
    #[error(
        "{path}: cannot {action}: {error}; restoring the files already written failed too, these may be left changed: {}",
        unrestored.join(", ")
    )]
    RollbackFailed {
        path: String,
        action: &'static str,
        error: io::Error,
        /// `path: error` for each file that could not be restored.
        unrestored: Vec<String>,
    },
}

/// What happens to one file, computed before anything is written.
struct Planned<'a> {
    change: &'a FileChange,
    target: PathBuf,
    /// The file's bytes before the change (`None` when it does not exist).
    old: Option<Vec<u8>>,
    old_permissions: Option<fs::Permissions>,
    action: Action,
}

enum Action {
    /// An entry without edits on an existing file only checks its hash (it may not even be
    /// text): never rewrite it.
    Check,
    Write(String),
    Delete,
}

impl Planned<'_> {
    /// Whether the file on disk changes (an edit may reproduce the same bytes).
    fn writes(&self) -> bool {
        match (&self.action, &self.old) {
            (Action::Check, _) => false,
            (Action::Write(new), Some(old)) => old != new.as_bytes(),
            (Action::Write(_), None) | (Action::Delete, _) => true,
        }
    }
}

/// Apply `cs` to the files under `root`: check every base hash, then write every file or none.
/// Returns the inverse change set, whose base hashes are the new contents: applying it restores
/// every byte (created files are deleted again, deleted files recreated).
pub fn apply(root: &Path, cs: &ChangeSet) -> Result<ChangeSet, ApplyError> {
    apply_with_hook(root, cs, &mut |_| Ok(()))
}

/// [`apply`], calling `before_commit(path)` before each file is renamed into place or deleted;
/// an error from the hook is treated like a failed rename (tests use it to exercise rollback).
fn apply_with_hook(
    root: &Path,
    cs: &ChangeSet,
    before_commit: &mut dyn FnMut(&str) -> io::Result<()>,
) -> Result<ChangeSet, ApplyError> {
    validate(cs)?;
    let mut changes: Vec<&FileChange> = cs.files.iter().collect();
    changes.sort_by(|a, b| a.path.cmp(&b.path));

    // 1. Read every file and check every base hash before deciding anything else.
    let mut states = Vec::with_capacity(changes.len());
    let mut conflicts = Vec::new();
    for f in &changes {
        let target = safe_target(root, &f.path)?;
        let old = read_existing(&target, &f.path)?;
        let found = old.as_ref().map(|(bytes, _)| content_hash(bytes));
        if found != f.base_hash {
            conflicts.push(FileConflict {
                path: f.path.clone(),
                expected: f.base_hash.clone(),
                found,
            });
        }
        states.push((target, old));
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflict(conflicts));
    }

    // 2. Compute every new content in memory.
    let mut plan = Vec::with_capacity(changes.len());
    for (f, (target, old)) in changes.iter().zip(states) {
        let (old, old_permissions) = match old {
            Some((bytes, perms)) => (Some(bytes), Some(perms)),
            None => (None, None),
        };
        let action = if f.delete {
            if let Some(bytes) = &old
                && std::str::from_utf8(bytes).is_err()
            {
                return Err(ChangeSetError::NotUtf8 {
                    path: f.path.clone(),
                }
                .into());
            }
            Action::Delete
        } else if f.edits.is_empty() && old.is_some() {
            Action::Check
        } else {
            let base = match &old {
                Some(bytes) => std::str::from_utf8(bytes).map_err(|_| ChangeSetError::NotUtf8 {
                    path: f.path.clone(),
                })?,
                None => "",
            };
            Action::Write(new_text_of(f, base)?)
        };
        plan.push(Planned {
            change: f,
            target,
            old,
            old_permissions,
            action,
        });
    }
    let writes: Vec<&Planned> = plan.iter().filter(|p| p.writes()).collect();

    // 3. Stage every new content beside its target.
    let mut created_dirs = Vec::new();
    let mut staged = Vec::with_capacity(writes.len());
    for p in &writes {
        let temp = match &p.action {
            Action::Write(text) => match stage(root, p, text.as_bytes(), &mut created_dirs) {
                Ok(t) => Some(t),
                Err((action, error)) => {
                    drop(staged);
                    remove_created_dirs(&created_dirs);
                    return Err(ApplyError::Io {
                        path: p.change.path.clone(),
                        action,
                        error,
                    });
                }
            },
            Action::Check | Action::Delete => None,
        };
        staged.push(temp);
    }

    // 4. Rename (or delete) into place; on failure put back what was already replaced. Each
    //    file is checked again right before: staging takes time, and an editor may have saved
    //    the file meanwhile — its content must not be lost silently.
    let mut done: Vec<&Planned> = Vec::new();
    let mut staged = staged.into_iter();
    for p in &writes {
        let temp = staged.next().flatten();
        let action = match p.action {
            Action::Delete => "delete the file",
            _ => "replace the file",
        };
        let outcome = match recheck(p) {
            Err(e) => Err(Failure::Io("read the file again", e)),
            Ok(Some(conflict)) => Err(Failure::Conflict(conflict)),
            Ok(None) => before_commit(&p.change.path)
                .and_then(|()| match temp {
                    Some(t) => t.persist(&p.target).map(drop).map_err(|e| e.error),
                    None => fs::remove_file(&p.target),
                })
                .map_err(|e| Failure::Io(action, e)),
        };
        if let Err(failure) = outcome {
            drop(staged);
            let unrestored = roll_back(&done);
            remove_created_dirs(&created_dirs);
            let path = p.change.path.clone();
            return Err(match (failure, unrestored.is_empty()) {
                (Failure::Conflict(c), true) => ApplyError::Conflict(vec![c]),
                (Failure::Io(action, error), true) => ApplyError::Io {
                    path,
                    action,
                    error,
                },
                (Failure::Conflict(c), false) => ApplyError::RollbackFailed {
                    path,
                    action,
                    error: io::Error::other(c.to_string()),
                    unrestored,
                },
                (Failure::Io(action, error), false) => ApplyError::RollbackFailed {
                    path,
                    action,
                    error,
                    unrestored,
                },
            });
        }
        done.push(p);
    }

    Ok(inverse_of(cs, &plan))
}

enum Failure {
    Conflict(FileConflict),
    Io(&'static str, io::Error),
}

/// The file's state now, if it is no longer the one checked in step 1.
fn recheck(p: &Planned) -> io::Result<Option<FileConflict>> {
    let found = match fs::read(&p.target) {
        Ok(bytes) => Some(content_hash(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok((found != p.change.base_hash).then(|| FileConflict {
        path: p.change.path.clone(),
        expected: p.change.base_hash.clone(),
        found,
    }))
}

/// `root/path`, refusing a path that passes through a symbolic link or a non-directory.
fn safe_target(root: &Path, path: &str) -> Result<PathBuf, ApplyError> {
    let mut current = root.to_path_buf();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        current.push(segment);
        let is_last = i + 1 == segments.len();
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ApplyError::Unsafe {
                    path: path.to_owned(),
                    reason: format!(
                        "{} is a symbolic link; change sets only write real files under the root",
                        segments[..=i].join("/")
                    ),
                });
            }
            Ok(m) if !is_last && !m.is_dir() => {
                return Err(ApplyError::Unsafe {
                    path: path.to_owned(),
                    reason: format!("{} is not a directory", segments[..=i].join("/")),
                });
            }
            Ok(m) if is_last && !m.is_file() => {
                return Err(ApplyError::Unsafe {
                    path: path.to_owned(),
                    reason: "exists and is not a regular file".to_owned(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(error) => {
                return Err(ApplyError::Io {
                    path: path.to_owned(),
                    action: "inspect the path",
                    error,
                });
            }
        }
    }
    Ok(root.join(path))
}

fn read_existing(
    target: &Path,
    path: &str,
) -> Result<Option<(Vec<u8>, fs::Permissions)>, ApplyError> {
    let io_err = |error| ApplyError::Io {
        path: path.to_owned(),
        action: "read the file",
        error,
    };
    match fs::read(target) {
        Ok(bytes) => {
            let perms = fs::metadata(target).map_err(io_err)?.permissions();
            Ok(Some((bytes, perms)))
        }
        // A missing parent directory, or a file in its place (caught by safe_target), both
        // mean "the file does not exist".
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory =>
        {
            Ok(None)
        }
        Err(e) => Err(io_err(e)),
    }
}

/// Write `bytes` to a synced temporary file beside `p.target`, with the old file's permissions.
fn stage(
    root: &Path,
    p: &Planned,
    bytes: &[u8],
    created_dirs: &mut Vec<PathBuf>,
) -> Result<tempfile::NamedTempFile, (&'static str, io::Error)> {
    let dir = p.target.parent().unwrap_or(root);
    create_dirs(root, dir, created_dirs).map_err(|e| ("create its directory", e))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".hivesync-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ("create a temporary file", e))?;
    temp.write_all(bytes)
        .map_err(|e| ("write a temporary file", e))?;
    if let Some(perms) = &p.old_permissions {
        fs::set_permissions(temp.path(), perms.clone())
            .map_err(|e| ("copy the file's permissions", e))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| ("sync a temporary file", e))?;
    Ok(temp)
}

/// Create `dir` and its missing ancestors below `root`, remembering each one created.
fn create_dirs(root: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    if dir == root || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(root, parent, created)?;
    }
    fs::create_dir(dir)?;
    created.push(dir.to_owned());
    Ok(())
}

/// Remove directories created for new files, deepest first (only if empty again).
fn remove_created_dirs(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

/// Put back the original content of every file in `done` (newest first); returns the files
/// that could not be restored.
fn roll_back(done: &[&Planned]) -> Vec<String> {
    let mut unrestored = Vec::new();
    for p in done.iter().rev() {
        let result = match &p.old {
            Some(bytes) => restore(p, bytes),
            None => fs::remove_file(&p.target),
        };
        if let Err(e) = result {
            unrestored.push(format!("{}: {e}", p.change.path));
        }
    }
    unrestored
}

fn restore(p: &Planned, bytes: &[u8]) -> io::Result<()> {
    let dir = p.target.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".hivesync-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if let Some(perms) = &p.old_permissions {
        fs::set_permissions(temp.path(), perms.clone())?;
    }
    temp.as_file().sync_all()?;
    temp.persist(&p.target).map(drop).map_err(|e| e.error)
}

/// The change set that undoes `plan` exactly, sorted by path.
fn inverse_of(cs: &ChangeSet, plan: &[Planned]) -> ChangeSet {
    let files = plan
        .iter()
        .map(|p| {
            let f = p.change;
            match (&p.old, &p.action) {
                // Deleted: recreate with the old content (UTF-8 was checked before deleting).
                (Some(old), Action::Delete) => FileChange {
                    path: f.path.clone(),
                    base_hash: None,
                    edits: if old.is_empty() {
                        Vec::new()
                    } else {
                        vec![TextEdit {
                            start: 0,
                            end: 0,
                            new_text: String::from_utf8_lossy(old).into_owned(),
                            confidence: Confidence::Exact,
                        }]
                    },
                    delete: false,
                },
                // Edited: the reverse edits, against the new content.
                (Some(old), Action::Write(new)) => FileChange {
                    path: f.path.clone(),
                    base_hash: Some(content_hash(new.as_bytes())),
                    edits: inverse_edits(old, &f.edits),
                    delete: false,
                },
                // Created: delete again.
                (None, Action::Write(new)) => FileChange {
                    path: f.path.clone(),
                    base_hash: Some(content_hash(new.as_bytes())),
                    edits: Vec::new(),
                    delete: true,
                },
                // Only hash-checked (validation guarantees a deletion has a base, and a check
                // an existing file): check the same hash again.
                (old, Action::Check | Action::Delete) => FileChange {
                    path: f.path.clone(),
                    base_hash: old.as_deref().map(content_hash),
                    edits: Vec::new(),
                    delete: false,
                },
            }
        })
        .collect();
    ChangeSet {
        title: format!("Revert \"{}\"", cs.title),
        files,
    }
}

/// Edits that turn `apply_to_text(base, edits)` back into `base`.
fn inverse_edits(base: &[u8], edits: &[TextEdit]) -> Vec<TextEdit> {
    let mut out = Vec::with_capacity(edits.len());
    let mut shift: isize = 0;
    for e in edits {
        let start = e.start.saturating_add_signed(shift);
        out.push(TextEdit {
            start,
            end: start + e.new_text.len(),
            new_text: String::from_utf8_lossy(&base[e.start..e.end]).into_owned(),
            confidence: e.confidence,
        });
        shift += e.new_text.len() as isize - (e.end - e.start) as isize;
    }
    out
}

/// The base text of every file `cs` edits or deletes, read from `root` and checked against its
/// base hash (for [`render_unified_diff`] and [`select_hunks`]).
pub fn read_base_texts(
    root: &Path,
    cs: &ChangeSet,
) -> Result<BTreeMap<String, String>, ApplyError> {
    validate(cs)?;
    let mut texts = BTreeMap::new();
    let mut conflicts = Vec::new();
    for f in &cs.files {
        let target = safe_target(root, &f.path)?;
        let old = read_existing(&target, &f.path)?;
        let found = old.as_ref().map(|(bytes, _)| content_hash(bytes));
        if found != f.base_hash {
            conflicts.push(FileConflict {
                path: f.path.clone(),
                expected: f.base_hash.clone(),
                found,
            });
            continue;
        }
        if let Some((bytes, _)) = old {
            let text = String::from_utf8(bytes).map_err(|_| ChangeSetError::NotUtf8 {
                path: f.path.clone(),
            })?;
            texts.insert(f.path.clone(), text);
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(ApplyError::Conflict(conflicts));
    }
    Ok(texts)
}

// ---------------------------------------------------------------------------------------------
// Diffs and hunks

/// What a change does to a file as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Modified,
    Created,
    Deleted,
}

/// The diff of one file: a git header and hunks a reviewer can accept or reject one by one.
/// A created or deleted file is a single hunk (its creation or deletion is all or nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub path: String,
    pub status: FileStatus,
    pub hunks: Vec<Hunk>,
}

/// One hunk of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunk {
    /// Stable id: the first 16 hex digits of blake3 over the path, the file status and the
    /// hunk's text. The same change on the same base always yields the same ids.
    pub id: String,
    /// The `@@ -old_start,old_lines +new_start,new_lines @@` numbers (1-based, as in the header).
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    /// `probable` when any edit behind the hunk is probable.
    pub confidence: Confidence,
    /// The hunk as it appears in the diff, `@@` line included; empty for the creation or
    /// deletion of an empty file.
    pub text: String,
}

/// Why a diff could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Invalid(#[from] ChangeSetError),
    #[error("{path}: no base text was given for a file the change edits or deletes")]
    MissingBase { path: String },
    #[error("{path}: the base text has blake3 {found}, but the change was computed on {expected}")]
    BaseMismatch {
        path: String,
        expected: String,
        found: String,
    },
    #[error("no hunk has the id{} {}", if ids.len() == 1 { "" } else { "s" }, ids.join(", "))]
    UnknownHunks { ids: Vec<String> },
}

impl FileDiff {
    /// The git header of this file's diff (`diff --git`, creation/deletion mode, `---`/`+++`).
    pub fn header(&self) -> String {
        let a = quote_path("a/", &self.path);
        let b = quote_path("b/", &self.path);
        let mut out = format!("diff --git {a} {b}\n");
        let has_content = self.hunks.iter().any(|h| !h.text.is_empty());
        match self.status {
            FileStatus::Modified => {}
            FileStatus::Created => out.push_str("new file mode 100644\n"),
            FileStatus::Deleted => out.push_str("deleted file mode 100644\n"),
        }
        if has_content {
            let old = match self.status {
                FileStatus::Created => "/dev/null".to_owned(),
                _ => a,
            };
            let new = match self.status {
                FileStatus::Deleted => "/dev/null".to_owned(),
                _ => b,
            };
            let _ = write!(out, "--- {old}\n+++ {new}\n");
        }
        out
    }

    /// Header and every hunk: this file's part of a unified diff.
    pub fn render(&self) -> String {
        let mut out = self.header();
        for h in &self.hunks {
            out.push_str(&h.text);
        }
        out
    }
}

/// `prefix + path`, quoted as git does when the path holds a `"` (backslashes and control
/// characters are not valid in change set paths).
fn quote_path(prefix: &str, path: &str) -> String {
    if path.contains('"') {
        format!("\"{prefix}{}\"", path.replace('"', "\\\""))
    } else {
        format!("{prefix}{path}")
    }
}

/// A hunk plus the byte ranges it covers, for [`select_hunks`].
struct HunkSpan {
    hunk: Hunk,
    /// Bytes of the base replaced by the hunk: from its first to its last changed line.
    old_change: Range<usize>,
    /// Bytes of the new text that replace them.
    new_change: Range<usize>,
}

struct FileWork<'a> {
    change: &'a FileChange,
    status: FileStatus,
    base: &'a str,
    new: String,
    spans: Vec<HunkSpan>,
}

/// The per-file diffs of `cs` against `base_texts` (path → text for every file it edits or
/// deletes), sorted by path; files the change leaves identical have no entry.
pub fn diff_files(
    base_texts: &BTreeMap<String, String>,
    cs: &ChangeSet,
) -> Result<Vec<FileDiff>, DiffError> {
    Ok(work(base_texts, cs)?
        .into_iter()
        .filter(|w| !w.spans.is_empty())
        .map(|w| FileDiff {
            path: w.change.path.clone(),
            status: w.status,
            hunks: w.spans.into_iter().map(|s| s.hunk).collect(),
        })
        .collect())
}

/// The unified diff of `cs` against `base_texts`, git style (`diff --git`, `--- a/path`,
/// `+++ b/path`, 3 lines of context, `\ No newline at end of file`): `git apply` accepts it.
pub fn render_unified_diff(
    base_texts: &BTreeMap<String, String>,
    cs: &ChangeSet,
) -> Result<String, DiffError> {
    Ok(diff_files(base_texts, cs)?
        .iter()
        .map(FileDiff::render)
        .collect())
}

/// `cs` narrowed to the hunks whose ids are in `accepted` (ids from [`diff_files`] on the same
/// base texts). Edits of accepted hunks are kept as they were where a hunk's edits reproduce it
/// exactly; otherwise the hunk becomes one edit replacing its changed lines. Files left without
/// accepted hunks are dropped. Unknown ids are an error (the diff they came from is stale).
pub fn select_hunks(
    cs: &ChangeSet,
    base_texts: &BTreeMap<String, String>,
    accepted: &[impl AsRef<str>],
) -> Result<ChangeSet, DiffError> {
    let wanted: BTreeSet<&str> = accepted.iter().map(AsRef::as_ref).collect();
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut files = Vec::new();
    for w in work(base_texts, cs)? {
        let chosen: Vec<&HunkSpan> = w
            .spans
            .iter()
            .filter(|s| wanted.contains(s.hunk.id.as_str()))
            .collect();
        found.extend(chosen.iter().map(|s| s.hunk.id.clone()));
        if chosen.is_empty() {
            continue;
        }
        if w.status != FileStatus::Modified {
            files.push(w.change.clone());
            continue;
        }
        let mut edits = Vec::new();
        for span in chosen {
            edits.extend(edits_for_hunk(&w, span));
        }
        files.push(FileChange {
            path: w.change.path.clone(),
            base_hash: w.change.base_hash.clone(),
            edits,
            delete: false,
        });
    }
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|id| !found.contains(**id))
        .map(|id| (*id).to_owned())
        .collect();
    if !unknown.is_empty() {
        return Err(DiffError::UnknownHunks { ids: unknown });
    }
    Ok(ChangeSet {
        title: cs.title.clone(),
        files,
    })
}

/// The edits that make exactly the change of `span`: the original edits inside it when they
/// reproduce it, else one edit replacing its changed lines.
fn edits_for_hunk(w: &FileWork, span: &HunkSpan) -> Vec<TextEdit> {
    let old = &span.old_change;
    let touching: Vec<&TextEdit> = w
        .change
        .edits
        .iter()
        .filter(|e| e.start <= old.end && e.end >= old.start)
        .collect();
    let contained = touching
        .iter()
        .all(|e| e.start >= old.start && e.end <= old.end);
    if contained && !touching.is_empty() {
        let local: Vec<TextEdit> = touching
            .iter()
            .map(|e| TextEdit {
                start: e.start - old.start,
                end: e.end - old.start,
                ..(*e).clone()
            })
            .collect();
        if apply_to_text(&w.base[old.clone()], &local).as_deref()
            == Ok(&w.new[span.new_change.clone()])
        {
            return touching.into_iter().cloned().collect();
        }
    }
    vec![TextEdit {
        start: old.start,
        end: old.end,
        new_text: w.new[span.new_change.clone()].to_owned(),
        confidence: span.hunk.confidence,
    }]
}

fn work<'a>(
    base_texts: &'a BTreeMap<String, String>,
    cs: &'a ChangeSet,
) -> Result<Vec<FileWork<'a>>, DiffError> {
    validate(cs)?;
    let mut changes: Vec<&FileChange> = cs.files.iter().collect();
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::with_capacity(changes.len());
    for f in changes {
        let base: &str = match &f.base_hash {
            None => "",
            Some(expected) => {
                let text = base_texts
                    .get(&f.path)
                    .ok_or_else(|| DiffError::MissingBase {
                        path: f.path.clone(),
                    })?;
                let found = content_hash(text.as_bytes());
                if &found != expected {
                    return Err(DiffError::BaseMismatch {
                        path: f.path.clone(),
                        expected: expected.clone(),
                        found,
                    });
                }
                text
            }
        };
        let status = match (f.delete, &f.base_hash) {
            (true, _) => FileStatus::Deleted,
            (false, None) => FileStatus::Created,
            (false, Some(_)) => FileStatus::Modified,
        };
        let new = if f.delete {
            String::new()
        } else {
            new_text_of(f, base)?
        };
        let file_confidence = weakest(f.edits.iter().map(|e| e.confidence));
        let mut spans = line_hunks(base, &new, |ctx| {
            weakest(
                f.edits
                    .iter()
                    .filter(|e| e.start <= ctx.end && e.end >= ctx.start)
                    .map(|e| e.confidence),
            )
            .or(file_confidence)
            .unwrap_or(Confidence::Exact)
        });
        if status != FileStatus::Modified {
            spans = vec![whole_file_span(spans, base, &new, file_confidence)];
        }
        for s in &mut spans {
            s.hunk.id = hunk_id(&f.path, status, &s.hunk.text);
        }
        out.push(FileWork {
            change: f,
            status,
            base,
            new,
            spans,
        });
    }
    Ok(out)
}

fn weakest(confidences: impl Iterator<Item = Confidence>) -> Option<Confidence> {
    confidences.max() // Exact < Probable
}

fn hunk_id(path: &str, status: FileStatus, text: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(path.as_bytes());
    hasher.update(&[0]);
    hasher.update(format!("{status:?}").as_bytes());
    hasher.update(&[0]);
    hasher.update(text.as_bytes());
    hasher.finalize().to_hex()[..16].to_owned()
}

/// A creation or deletion as one hunk (there is at most one line hunk anyway, none for an
/// empty file).
fn whole_file_span(
    spans: Vec<HunkSpan>,
    base: &str,
    new: &str,
    confidence: Option<Confidence>,
) -> HunkSpan {
    let mut spans = spans.into_iter();
    match (spans.next(), spans.next()) {
        (Some(only), None) => only,
        _ => HunkSpan {
            hunk: Hunk {
                id: String::new(),
                old_start: 0,
                old_lines: 0,
                new_start: 0,
                new_lines: 0,
                confidence: confidence.unwrap_or(Confidence::Exact),
                text: String::new(),
            },
            old_change: 0..base.len(),
            new_change: 0..new.len(),
        },
    }
}

/// Lines split after each `\n` (as git does: a lone `\r` is part of its line).
fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Byte offset of each line start, plus the text length at the end.
fn line_offsets(lines: &[&str]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(lines.len() + 1);
    let mut pos = 0;
    offsets.push(0);
    for l in lines {
        pos += l.len();
        offsets.push(pos);
    }
    offsets
}

/// The hunks of a line diff of `old` → `new` with [`CONTEXT_LINES`] of context (ids empty).
/// `confidence` gets the old byte range a hunk covers, context included.
fn line_hunks(
    old: &str,
    new: &str,
    confidence: impl Fn(Range<usize>) -> Confidence,
) -> Vec<HunkSpan> {
    let old_lines = split_lines(old);
    let new_lines = split_lines(new);
    let old_off = line_offsets(&old_lines);
    let new_off = line_offsets(&new_lines);
    let ops = normalise_ops(
        similar::capture_diff_slices(Algorithm::Myers, &old_lines, &new_lines),
        &old_lines,
        &new_lines,
    );
    let mut spans = Vec::new();
    for group in similar::group_diff_ops(ops, CONTEXT_LINES) {
        let changed: Vec<&DiffOp> = group
            .iter()
            .filter(|op| op.tag() != DiffTag::Equal)
            .collect();
        let (Some(first), Some(last), Some(g_first), Some(g_last)) =
            (changed.first(), changed.last(), group.first(), group.last())
        else {
            continue;
        };
        let old_range = g_first.old_range().start..g_last.old_range().end;
        let new_range = g_first.new_range().start..g_last.new_range().end;
        let (old_start, old_count) = header_range(&old_range);
        let (new_start, new_count) = header_range(&new_range);
        let mut text = format!(
            "@@ -{} +{} @@\n",
            header_numbers(old_start, old_count),
            header_numbers(new_start, new_count)
        );
        for op in &group {
            match op.tag() {
                DiffTag::Equal => push_lines(&mut text, ' ', &old_lines[op.old_range()]),
                DiffTag::Delete => push_lines(&mut text, '-', &old_lines[op.old_range()]),
                DiffTag::Insert => push_lines(&mut text, '+', &new_lines[op.new_range()]),
                DiffTag::Replace => {
                    push_lines(&mut text, '-', &old_lines[op.old_range()]);
                    push_lines(&mut text, '+', &new_lines[op.new_range()]);
                }
            }
        }
        let ctx = old_off[old_range.start]..old_off[old_range.end];
        spans.push(HunkSpan {
            hunk: Hunk {
                id: String::new(),
                old_start,
                old_lines: old_count,
                new_start,
                new_lines: new_count,
                confidence: confidence(ctx),
                text,
            },
            old_change: old_off[first.old_range().start]..old_off[last.old_range().end],
            new_change: new_off[first.new_range().start]..new_off[last.new_range().end],
        });
    }
    spans
}

/// `ops` with indices recomputed from their lengths alone. similar's Myers sometimes reports a
/// `Delete` with a `new_index` (or an `Insert` with an `old_index`) past where the op sits in
/// the other text (seen: a deletion before an equal line reported one line too far), which
/// would shift hunk headers and selections; the lengths are right, so positions are
/// re-derived by walking the ops in order. Should the equal runs not match after that, the
/// whole text becomes one replacement — a coarse but correct diff.
fn normalise_ops(ops: Vec<DiffOp>, old: &[&str], new: &[&str]) -> Vec<DiffOp> {
    let (mut oi, mut ni) = (0, 0);
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let (old_len, new_len) = (op.old_range().len(), op.new_range().len());
        out.push(match op.tag() {
            DiffTag::Equal => DiffOp::Equal {
                old_index: oi,
                new_index: ni,
                len: old_len,
            },
            DiffTag::Delete => DiffOp::Delete {
                old_index: oi,
                old_len,
                new_index: ni,
            },
            DiffTag::Insert => DiffOp::Insert {
                old_index: oi,
                new_index: ni,
                new_len,
            },
            DiffTag::Replace => DiffOp::Replace {
                old_index: oi,
                old_len,
                new_index: ni,
                new_len,
            },
        });
        oi += old_len;
        ni += new_len;
    }
    let consistent = oi == old.len()
        && ni == new.len()
        && out.iter().all(|op| {
            op.tag() != DiffTag::Equal || old.get(op.old_range()) == new.get(op.new_range())
        });
    if consistent {
        return out;
    }
    match (old.is_empty(), new.is_empty()) {
        (true, true) => Vec::new(),
        (false, true) => vec![DiffOp::Delete {
            old_index: 0,
            old_len: old.len(),
            new_index: 0,
        }],
        (true, false) => vec![DiffOp::Insert {
            old_index: 0,
            new_index: 0,
            new_len: new.len(),
        }],
        (false, false) => vec![DiffOp::Replace {
            old_index: 0,
            old_len: old.len(),
            new_index: 0,
            new_len: new.len(),
        }],
    }
}

/// 1-based start and length for a hunk header; an empty range starts at the line before it.
fn header_range(range: &Range<usize>) -> (usize, usize) {
    let len = range.end - range.start;
    if len == 0 {
        (range.start, 0)
    } else {
        (range.start + 1, len)
    }
}

fn header_numbers(start: usize, len: usize) -> String {
    if len == 1 {
        start.to_string()
    } else {
        format!("{start},{len}")
    }
}

fn push_lines(out: &mut String, tag: char, lines: &[&str]) {
    for line in lines {
        out.push(tag);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn edit(start: usize, end: usize, new_text: &str) -> TextEdit {
        TextEdit {
            start,
            end,
            new_text: new_text.into(),
            confidence: Confidence::Exact,
        }
    }

    fn modify(path: &str, base: &str, edits: Vec<TextEdit>) -> FileChange {
        FileChange {
            path: path.into(),
            base_hash: Some(content_hash(base.as_bytes())),
            edits,
            delete: false,
        }
    }

    fn cs(files: Vec<FileChange>) -> ChangeSet {
        ChangeSet {
            title: "t".into(),
            files,
        }
    }

    #[test]
    fn content_hash_is_blake3_hex() {
        assert_eq!(
            content_hash(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert!(is_blake3_hex(&content_hash(b"x")));
    }

    #[test]
    fn apply_to_text_applies_in_order() {
        let text = "héllo wörld";
        let out = apply_to_text(
            text,
            &[
                edit(0, 0, ">"),
                edit(0, 1, "H"),
                edit(7, 13, "there"),
                edit(13, 13, "!"),
            ],
        )
        .unwrap();
        assert_eq!(out, ">Héllo there!");
    }

    #[test]
    fn edit_errors() {
        let t = "aé";
        assert_eq!(
            apply_to_text(t, &[edit(2, 1, "")]),
            Err(EditError::Inverted {
                index: 0,
                start: 2,
                end: 1
            })
        );
        assert_eq!(
            apply_to_text(t, &[edit(0, 2, ""), edit(1, 1, "")]),
            Err(EditError::Overlap {
                index: 1,
                start: 1,
                prev_end: 2
            })
        );
        assert_eq!(
            apply_to_text(t, &[edit(0, 4, "")]),
            Err(EditError::OutOfBounds {
                index: 0,
                end: 4,
                len: 3
            })
        );
        assert_eq!(
            apply_to_text(t, &[edit(2, 3, "")]),
            Err(EditError::NotCharBoundary {
                index: 0,
                offset: 2
            })
        );
        let msg = EditError::Overlap {
            index: 1,
            start: 1,
            prev_end: 2,
        }
        .to_string();
        assert!(msg.contains("must not overlap"), "{msg}");
    }

    #[test]
    fn validate_errors_name_the_file() {
        let h = content_hash(b"x");
        let bad_path = cs(vec![modify("../x", "", vec![])]);
        assert!(
            matches!(validate(&bad_path), Err(ChangeSetError::Path { path, .. }) if path == "../x")
        );
        let abs = cs(vec![modify("/x", "", vec![])]);
        assert!(matches!(validate(&abs), Err(ChangeSetError::Path { .. })));
        let dup = cs(vec![modify("a", "", vec![]), modify("a", "", vec![])]);
        assert_eq!(
            validate(&dup),
            Err(ChangeSetError::Duplicate { path: "a".into() })
        );
        let mut bad_hash = modify("a", "", vec![]);
        bad_hash.base_hash = Some("nothex".into());
        assert!(matches!(
            validate(&cs(vec![bad_hash])),
            Err(ChangeSetError::BadHash { .. })
        ));
        let del_no_base = FileChange {
            path: "a".into(),
            base_hash: None,
            edits: vec![],
            delete: true,
        };
        assert_eq!(
            validate(&cs(vec![del_no_base])),
            Err(ChangeSetError::DeleteWithoutBase { path: "a".into() })
        );
        let del_edits = FileChange {
            path: "a".into(),
            base_hash: Some(h),
            edits: vec![edit(0, 0, "x")],
            delete: true,
        };
        assert_eq!(
            validate(&cs(vec![del_edits])),
            Err(ChangeSetError::DeleteWithEdits { path: "a".into() })
        );
        let overlap = cs(vec![modify("a", "", vec![edit(2, 4, ""), edit(3, 5, "")])]);
        let err = validate(&overlap).unwrap_err();
        assert!(err.to_string().starts_with("a: edit 1"), "{err}");
    }

    #[test]
    fn apply_rejects_out_of_bounds_and_split_characters_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "é").unwrap();
        let oob = cs(vec![modify("a.txt", "é", vec![edit(0, 9, "")])]);
        let err = apply(dir.path(), &oob).unwrap_err();
        assert!(
            matches!(&err, ApplyError::Invalid(ChangeSetError::Edit { path, error: EditError::OutOfBounds { .. } }) if path == "a.txt"),
            "{err}"
        );
        let split = cs(vec![modify("a.txt", "é", vec![edit(1, 2, "")])]);
        let err = apply(dir.path(), &split).unwrap_err();
        assert!(err.to_string().starts_with("a.txt: edit 0 splits"), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("a.txt")).unwrap(), "é");
    }

    #[test]
    fn apply_reports_missing_existing_and_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("changed.txt"), "now").unwrap();
        fs::write(dir.path().join("exists.txt"), "here").unwrap();
        let change = cs(vec![
            modify("changed.txt", "before", vec![edit(0, 0, "x")]),
            FileChange {
                path: "exists.txt".into(),
                base_hash: None,
                edits: vec![edit(0, 0, "new")],
                delete: false,
            },
            modify("missing.txt", "gone", vec![]),
        ]);
        let err = apply(dir.path(), &change).unwrap_err();
        let ApplyError::Conflict(conflicts) = &err else {
            panic!("expected a conflict, got {err}");
        };
        assert_eq!(
            conflicts,
            &vec![
                FileConflict {
                    path: "changed.txt".into(),
                    expected: Some(content_hash(b"before")),
                    found: Some(content_hash(b"now")),
                },
                FileConflict {
                    path: "exists.txt".into(),
                    expected: None,
                    found: Some(content_hash(b"here")),
                },
                FileConflict {
                    path: "missing.txt".into(),
                    expected: Some(content_hash(b"gone")),
                    found: None,
                },
            ]
        );
        let msg = err.to_string();
        for needle in [
            "3 conflicts",
            "nothing was written",
            "changed.txt changed since",
            &content_hash(b"before"),
            &content_hash(b"now"),
            "exists.txt already exists",
            "missing.txt does not exist",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("changed.txt")).unwrap(),
            "now"
        );
    }

    #[test]
    fn apply_refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("f.txt"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let through = cs(vec![modify("link/f.txt", "x", vec![edit(0, 1, "y")])]);
        let err = apply(dir.path(), &through).unwrap_err();
        assert!(
            matches!(&err, ApplyError::Unsafe { path, .. } if path == "link/f.txt"),
            "{err}"
        );
        assert!(err.to_string().contains("link is a symbolic link"), "{err}");
        assert_eq!(
            fs::read_to_string(outside.path().join("f.txt")).unwrap(),
            "x"
        );

        fs::create_dir(dir.path().join("d")).unwrap();
        let onto_dir = cs(vec![FileChange {
            path: "d".into(),
            base_hash: None,
            edits: vec![],
            delete: false,
        }]);
        let err = apply(dir.path(), &onto_dir).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");

        fs::write(dir.path().join("file"), "").unwrap();
        let under_file = cs(vec![FileChange {
            path: "file/x".into(),
            base_hash: None,
            edits: vec![],
            delete: false,
        }]);
        let err = apply(dir.path(), &under_file).unwrap_err();
        assert!(err.to_string().contains("file is not a directory"), "{err}");
    }

    #[test]
    fn apply_refuses_to_edit_or_delete_non_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = [0xffu8, 0xfe, 0x00];
        fs::write(dir.path().join("bin"), bytes).unwrap();
        let base_hash = Some(content_hash(&bytes));
        for f in [
            FileChange {
                path: "bin".into(),
                base_hash: base_hash.clone(),
                edits: vec![edit(0, 0, "x")],
                delete: false,
            },
            FileChange {
                path: "bin".into(),
                base_hash: base_hash.clone(),
                edits: vec![],
                delete: true,
            },
        ] {
            let err = apply(dir.path(), &cs(vec![f])).unwrap_err();
            assert!(
                matches!(&err, ApplyError::Invalid(ChangeSetError::NotUtf8 { path }) if path == "bin"),
                "{err}"
            );
        }
        // Checking the hash of a binary file without editing it is fine.
        let check = cs(vec![FileChange {
            path: "bin".into(),
            base_hash,
            edits: vec![],
            delete: false,
        }]);
        let inverse = apply(dir.path(), &check).unwrap();
        assert_eq!(inverse.files[0].base_hash, check.files[0].base_hash);
        assert_eq!(fs::read(dir.path().join("bin")).unwrap(), bytes);
    }

    #[test]
    fn failed_rename_rolls_back_every_written_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.txt"), "alpha\n").unwrap();
        fs::write(root.join("b.txt"), "beta\n").unwrap();
        fs::write(root.join("c.txt"), "gamma\n").unwrap();
        let change = cs(vec![
            modify("a.txt", "alpha\n", vec![edit(0, 5, "ALPHA")]),
            modify("b.txt", "beta\n", vec![]),
            FileChange {
                path: "b.txt.del".into(),
                base_hash: None,
                edits: vec![edit(0, 0, "fresh")],
                delete: false,
            },
            FileChange {
                path: "c.txt".into(),
                base_hash: Some(content_hash(b"gamma\n")),
                edits: vec![],
                delete: true,
            },
            FileChange {
                path: "new/dir/d.txt".into(),
                base_hash: None,
                edits: vec![edit(0, 0, "delta")],
                delete: false,
            },
        ]);
        let mut calls = Vec::new();
        let err = apply_with_hook(root, &change, &mut |path| {
            calls.push(path.to_owned());
            if path == "new/dir/d.txt" {
                Err(io::Error::other("disk on fire"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(
            matches!(&err, ApplyError::Io { path, .. } if path == "new/dir/d.txt"),
            "{err}"
        );
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert_eq!(calls, ["a.txt", "b.txt.del", "c.txt", "new/dir/d.txt"]);
        assert_eq!(fs::read_to_string(root.join("a.txt")).unwrap(), "alpha\n");
        assert_eq!(fs::read_to_string(root.join("c.txt")).unwrap(), "gamma\n");
        assert!(!root.join("b.txt.del").exists());
        assert!(
            !root.join("new").exists(),
            "created directories are removed"
        );
        let mut names: Vec<String> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.txt", "b.txt", "c.txt"],
            "no temporary files left"
        );
    }

    #[test]
    fn a_file_changed_during_apply_is_a_conflict_and_nothing_stays_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        fs::write(root.join("a.txt"), "a\n").unwrap();
        fs::write(root.join("b.txt"), "b\n").unwrap();
        let change = cs(vec![
            modify("a.txt", "a\n", vec![edit(0, 1, "A")]),
            modify("b.txt", "b\n", vec![edit(0, 1, "B")]),
        ]);
        // An editor saves b.txt after the hashes were checked, while a.txt is being renamed.
        let err = apply_with_hook(&root, &change, &mut |path| {
            if path == "a.txt" {
                fs::write(root.join("b.txt"), "saved by the editor\n")?;
            }
            Ok(())
        })
        .unwrap_err();
        let ApplyError::Conflict(conflicts) = &err else {
            panic!("expected a conflict, got {err}");
        };
        assert_eq!(conflicts[0].path, "b.txt");
        assert_eq!(
            conflicts[0].found,
            Some(content_hash(b"saved by the editor\n"))
        );
        assert_eq!(fs::read_to_string(root.join("a.txt")).unwrap(), "a\n");
        assert_eq!(
            fs::read_to_string(root.join("b.txt")).unwrap(),
            "saved by the editor\n"
        );
    }

    #[test]
    fn apply_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.sh");
        fs::write(&path, "echo hi\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        apply(
            dir.path(),
            &cs(vec![modify("run.sh", "echo hi\n", vec![edit(5, 7, "yo")])]),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "echo yo\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn diff_marks_missing_newline_and_keeps_crlf() {
        let base = "one\r\ntwo\r\nthree";
        let change = cs(vec![modify("a.txt", base, vec![edit(10, 15, "THREE")])]);
        let texts = BTreeMap::from([("a.txt".to_owned(), base.to_owned())]);
        let diff = render_unified_diff(&texts, &change).unwrap();
        assert_eq!(
            diff,
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\r\n two\r\n-three\n\\ No newline at end of file\n+THREE\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn diff_of_created_and_deleted_files() {
        let change = cs(vec![
            FileChange {
                path: "new.py".into(),
                base_hash: None,
                edits: vec![edit(0, 0, "x = 1\n")],
                delete: false,
            },
            FileChange {
                path: "old.py".into(),
                base_hash: Some(content_hash(b"y = 2\n")),
                edits: vec![],
                delete: true,
            },
            FileChange {
                path: "empty".into(),
                base_hash: None,
                edits: vec![],
                delete: false,
            },
        ]);
        let texts = BTreeMap::from([("old.py".to_owned(), "y = 2\n".to_owned())]);
        let files = diff_files(&texts, &change).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|f| f.hunks.len() == 1));
        let diff = render_unified_diff(&texts, &change).unwrap();
        assert_eq!(
            diff,
            "diff --git a/empty b/empty\nnew file mode 100644\n\
             diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x = 1\n\
             diff --git a/old.py b/old.py\ndeleted file mode 100644\n--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-y = 2\n"
        );
    }

    #[test]
    fn diff_errors() {
        let change = cs(vec![modify("a", "base", vec![])]);
        assert_eq!(
            diff_files(&BTreeMap::new(), &change),
            Err(DiffError::MissingBase { path: "a".into() })
        );
        let texts = BTreeMap::from([("a".to_owned(), "other".to_owned())]);
        assert!(matches!(
            diff_files(&texts, &change),
            Err(DiffError::BaseMismatch { path, .. }) if path == "a"
        ));
        let texts = BTreeMap::from([("a".to_owned(), "base".to_owned())]);
        assert_eq!(
            select_hunks(&change, &texts, &["nope"]),
            Err(DiffError::UnknownHunks {
                ids: vec!["nope".into()]
            })
        );
    }

    #[test]
    fn hunk_positions_do_not_trust_myers_indices() {
        // similar's Myers reports the deletion of the first line at new index 1 here; the
        // header and the selection must still start at line 1.
        let base = "one\n\n\t";
        let change = cs(vec![modify("f", base, vec![edit(0, 3, "\ntwo")])]);
        let texts = BTreeMap::from([("f".to_owned(), base.to_owned())]);
        let hunks = diff_files(&texts, &change).unwrap().remove(0).hunks;
        assert_eq!(hunks.len(), 1);
        assert!(
            hunks[0].text.starts_with("@@ -1,3 +1,4 @@\n"),
            "{}",
            hunks[0].text
        );
        let all = select_hunks(&change, &texts, &[hunks[0].id.as_str()]).unwrap();
        assert_eq!(
            apply_to_text(base, &all.files[0].edits).unwrap(),
            "\ntwo\n\n\t"
        );
    }

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn hunk_ids_are_stable_and_selection_keeps_only_accepted_edits() {
        let base = numbered(30);
        let l3 = base.find("line 3\n").unwrap();
        let l25 = base.find("line 25\n").unwrap();
        let change = cs(vec![modify(
            "f.txt",
            &base,
            vec![
                edit(l3, l3 + 4, "LINE"),
                TextEdit {
                    confidence: Confidence::Probable,
                    ..edit(l25, l25 + 4, "LINE")
                },
            ],
        )]);
        let texts = BTreeMap::from([("f.txt".to_owned(), base.clone())]);
        let files = diff_files(&texts, &change).unwrap();
        let hunks = &files[0].hunks;
        assert_eq!(hunks.len(), 2);
        assert_eq!(hunks[0].confidence, Confidence::Exact);
        assert_eq!(hunks[1].confidence, Confidence::Probable);
        assert_eq!((hunks[0].old_start, hunks[0].old_lines), (1, 6));
        assert_eq!(hunks[0].id.len(), 16);
        assert_ne!(hunks[0].id, hunks[1].id);
        assert_eq!(
            diff_files(&texts, &change).unwrap(),
            files,
            "ids are stable"
        );

        let second = select_hunks(&change, &texts, &[hunks[1].id.clone()]).unwrap();
        assert_eq!(
            second.files[0].edits,
            vec![change.files[0].edits[1].clone()]
        );
        let both = select_hunks(
            &change,
            &texts,
            &[hunks[0].id.as_str(), hunks[1].id.as_str()],
        )
        .unwrap();
        assert_eq!(both, change);
        let none = select_hunks(&change, &texts, &[] as &[&str]).unwrap();
        assert!(none.files.is_empty());
    }

    #[test]
    fn selection_falls_back_to_line_edits_when_edits_do_not_match_hunks() {
        // One edit that the line diff splits into two hunks far apart.
        let base = numbered(20);
        let mut new_middle: String = numbered(20);
        new_middle = new_middle
            .replace("line 2\n", "two\n")
            .replace("line 19\n", "nineteen\n");
        let start = base.find("line 2\n").unwrap();
        let end = base.find("line 20\n").unwrap();
        let replacement = new_middle[start..new_middle.find("line 20\n").unwrap()].to_owned();
        let change = cs(vec![modify(
            "f",
            &base,
            vec![edit(start, end, &replacement)],
        )]);
        let texts = BTreeMap::from([("f".to_owned(), base.clone())]);
        let hunks = diff_files(&texts, &change).unwrap().remove(0).hunks;
        assert_eq!(hunks.len(), 2);
        let first = select_hunks(&change, &texts, &[hunks[0].id.as_str()]).unwrap();
        let text = apply_to_text(&base, &first.files[0].edits).unwrap();
        assert_eq!(text, base.replace("line 2\n", "two\n"));
        let both = select_hunks(
            &change,
            &texts,
            &[hunks[0].id.as_str(), hunks[1].id.as_str()],
        )
        .unwrap();
        assert_eq!(
            apply_to_text(&base, &both.files[0].edits).unwrap(),
            new_middle
        );
    }
}
