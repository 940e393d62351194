//! Manifests: the snapshot of a project's files that names the exact state a proposal was
//! computed on. This module owns walking a project directory (honouring `.gitignore`), hashing
//! every file, the manifest's own hash, and the one rule for what a manifest path may look like
//! ([`validate_manifest_path`]) — shared with [`crate::changeset`] and the backend's snapshot API.
//!
//! What goes into a manifest (see [`build_snapshot`]):
//! - regular files under the root, walked with the `ignore` crate honouring `.gitignore` and
//!   `.ignore` files. Only ignore files *inside* the root count (not those of parent
//!   directories, not the user's global excludes, not `.git/info/exclude`), so the same tree
//!   gives the same manifest on every machine (the desktop and the server's mirror must agree);
//! - `.gitignore` files are honoured whether or not the root is a git repository;
//! - `.git/` is never included;
//! - hidden entries (name starting with `.`) are skipped, except the well-known project files in
//!   [`WELL_KNOWN_HIDDEN`] (`.gitignore`, `.editorconfig`, `.github/`, …). Hidden files are where
//!   secrets live (`.env`, `.npmrc`, `.pypirc`), so they stay out unless
//!   [`ManifestOptions::include_hidden`] asks for them;
//! - symbolic links are never followed as directories; a link to a regular file *inside* the
//!   root is included under the link's path with the target's content, any other link is
//!   skipped;
//! - entries that cannot be part of a snapshot — unreadable files, FIFOs, sockets, links out of
//!   the root, names that are not valid manifest paths (not UTF-8, control characters,
//!   backslashes) — are skipped and reported in [`Snapshot::skipped`] (and counted in the
//!   `skipped` metadata entry) instead of failing the whole snapshot.
//!
//! Error messages are complete (they name the path and include the cause), with no `source()`
//! chain to print twice.

use hivesync_protocol::{Language, Manifest, ManifestFile};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Hidden names kept in a manifest even when hidden entries are skipped: project configuration
/// that tools and reviewers need and that does not hold secrets. Directories in this list
/// (`.github`) are walked like any other directory.
pub const WELL_KNOWN_HIDDEN: &[&str] = &[
    ".gitignore",
    ".gitattributes",
    ".gitmodules",
    ".ignore",
    ".editorconfig",
    ".github",
    ".rustfmt.toml",
    ".clippy.toml",
    ".prettierrc",
    ".prettierrc.json",
    ".prettierignore",
    ".eslintrc",
    ".eslintrc.json",
    ".eslintrc.js",
    ".eslintrc.cjs",
    ".eslintignore",
    ".python-version",
    ".flake8",
    ".pylintrc",
    ".nvmrc",
    ".node-version",
];

/// How to build a manifest.
#[derive(Debug, Clone, Default)]
pub struct ManifestOptions {
    /// Include every hidden file and directory (still never `.git/`), not only
    /// [`WELL_KNOWN_HIDDEN`].
    pub include_hidden: bool,
}

/// A manifest plus what was left out of it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub manifest: Manifest,
    /// Entries under the root that are not in the manifest although the ignore rules did not
    /// exclude them, sorted by path.
    pub skipped: Vec<SkippedEntry>,
}

/// An entry that could not be part of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEntry {
    /// Relative to the root, `/`-separated (lossy for names that are not UTF-8).
    pub path: String,
    /// Why, in words ("unreadable: Permission denied", "symbolic link out of the root", …).
    pub reason: String,
}

/// A manifest could not be built at all.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("project root {path} cannot be read: {error}")]
    Root { path: PathBuf, error: io::Error },
    #[error("project root {path} is not a directory")]
    RootNotDirectory { path: PathBuf },
}

/// Why a path cannot appear in a manifest or a change set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path {0:?} is absolute; paths are relative to the project root")]
    Absolute(String),
    #[error("path {0:?} starts with a drive letter; paths are relative to the project root")]
    Drive(String),
    #[error("path {0:?} contains a backslash; separate directories with `/`")]
    Backslash(String),
    #[error("path {0:?} contains an empty segment (`//` or a trailing `/`)")]
    EmptySegment(String),
    #[error("path {0:?} contains a `.` or `..` segment")]
    DotSegment(String),
    #[error("path {0:?} contains a NUL or other control character")]
    ControlCharacter(String),
}

/// Check that `path` is a manifest path: relative, `/`-separated, every segment a plain name —
/// no leading `/`, no drive (`C:`), no backslash, no empty, `.` or `..` segment, no NUL or other
/// control character (they would make diffs and the manifest hash's encoding ambiguous).
/// Each file has exactly one spelling, so two entries never name the same file.
pub fn validate_manifest_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter(path.to_owned()));
    }
    if path.contains('\\') {
        return Err(PathError::Backslash(path.to_owned()));
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute(path.to_owned()));
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(PathError::Drive(path.to_owned()));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(PathError::EmptySegment(path.to_owned())),
            "." | ".." => return Err(PathError::DotSegment(path.to_owned())),
            _ => {}
        }
    }
    Ok(())
}

/// The manifest hash of `files` (which must already be sorted by path): blake3, as lowercase
/// hex, over the concatenation, for each file in order, of
/// `path` (UTF-8) ‖ `0x00` ‖ `hash` (the file's lowercase hex digest) ‖ `0x0A`.
/// Paths contain neither NUL nor newline ([`validate_manifest_path`]), so the encoding is
/// unambiguous. Sizes, languages and metadata are not hashed: equal trees have equal hashes.
pub fn manifest_hash(files: &[ManifestFile]) -> String {
    let mut hasher = blake3::Hasher::new();
    for file in files {
        hasher.update(file.path.as_bytes());
        hasher.update(&[0]);
        hasher.update(file.hash.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// What is wrong with a manifest received from elsewhere (e.g. by the backend).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestValidationError {
    #[error("manifest entry {index} has an invalid path: {error}")]
    Path { index: usize, error: PathError },
    #[error(
        "manifest entry {index} ({path:?}) is out of order or a duplicate; files must be sorted by path, each path once"
    )]
    Order { index: usize, path: String },
    #[error(
        "manifest entry {index} ({path:?}) has hash {hash:?}, not a 64-digit lowercase blake3 hex digest"
    )]
    FileHash {
        index: usize,
        path: String,
        hash: String,
    },
    #[error("manifest hash is {found}, but its files hash to {expected}")]
    Hash { expected: String, found: String },
}

/// Check a manifest built elsewhere: every path valid, files strictly sorted by path, every
/// file hash a blake3 hex digest, and `hash` equal to [`manifest_hash`] of the files.
pub fn validate_manifest(manifest: &Manifest) -> Result<(), ManifestValidationError> {
    for (index, file) in manifest.files.iter().enumerate() {
        validate_manifest_path(&file.path)
            .map_err(|error| ManifestValidationError::Path { index, error })?;
        if index > 0 && manifest.files[index - 1].path >= file.path {
            return Err(ManifestValidationError::Order {
                index,
                path: file.path.clone(),
            });
        }
        if !is_blake3_hex(&file.hash) {
            return Err(ManifestValidationError::FileHash {
                index,
                path: file.path.clone(),
                hash: file.hash.clone(),
            });
        }
    }
    let expected = manifest_hash(&manifest.files);
    if expected != manifest.hash {
        return Err(ManifestValidationError::Hash {
            expected,
            found: manifest.hash.clone(),
        });
    }
    Ok(())
}

/// True for a 64-digit lowercase hex string (what [`crate::changeset::content_hash`] returns).
pub fn is_blake3_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Build the manifest of the tree under `root` (see the module docs for what is included).
/// Skipped entries are dropped silently; use [`build_snapshot`] to see them.
pub fn build_manifest(root: &Path, opts: &ManifestOptions) -> Result<Manifest, ManifestError> {
    build_snapshot(root, opts).map(|s| s.manifest)
}

/// Build the manifest of the tree under `root`, reporting what had to be skipped.
///
/// Files are hashed in parallel (rayon). Metadata keys: `name` (the root directory's name),
/// `file_count`, `total_size` (bytes), `skipped` (number of skipped entries) and, when
/// `.git/HEAD` can be read, `git_head` (the commit) and `git_ref` (e.g. `refs/heads/main`,
/// absent for a detached HEAD).
pub fn build_snapshot(root: &Path, opts: &ManifestOptions) -> Result<Snapshot, ManifestError> {
    let meta = fs::metadata(root).map_err(|error| ManifestError::Root {
        path: root.to_owned(),
        error,
    })?;
    if !meta.is_dir() {
        return Err(ManifestError::RootNotDirectory {
            path: root.to_owned(),
        });
    }
    let canonical_root = fs::canonicalize(root).map_err(|error| ManifestError::Root {
        path: root.to_owned(),
        error,
    })?;

    let (candidates, mut skipped) = walk(root, &canonical_root, opts);

    let hashed: Vec<Result<ManifestFile, SkippedEntry>> = candidates
        .into_par_iter()
        .map(|(rel, abs)| match hash_file(&abs) {
            Ok((hash, size)) => Ok(ManifestFile {
                language: Language::from_path(&rel),
                path: rel,
                hash,
                size,
            }),
            Err(e) => Err(SkippedEntry {
                path: rel,
                reason: format!("unreadable: {e}"),
            }),
        })
        .collect();
    let mut files = Vec::with_capacity(hashed.len());
    for entry in hashed {
        match entry {
            Ok(f) => files.push(f),
            Err(s) => skipped.push(s),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));

    let mut metadata = BTreeMap::new();
    let name = canonical_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    metadata.insert("name".to_owned(), name);
    metadata.insert("file_count".to_owned(), files.len().to_string());
    let total: u64 = files.iter().map(|f| f.size).sum();
    metadata.insert("total_size".to_owned(), total.to_string());
    metadata.insert("skipped".to_owned(), skipped.len().to_string());
    if let Some(head) = read_git_head(root) {
        metadata.insert("git_head".to_owned(), head.commit);
        if let Some(r) = head.reference {
            metadata.insert("git_ref".to_owned(), r);
        }
    }

    let manifest = Manifest {
        hash: manifest_hash(&files),
        files,
        metadata,
    };
    Ok(Snapshot { manifest, skipped })
}

/// Walk the tree: files to hash (relative path, path to read) and entries skipped on the way.
fn walk(
    root: &Path,
    canonical_root: &Path,
    opts: &ManifestOptions,
) -> (Vec<(String, PathBuf)>, Vec<SkippedEntry>) {
    let include_hidden = opts.include_hidden;
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false) // decided by the filter below, with its allow-list
        .parents(false)
        .ignore(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            if entry.depth() == 0 {
                return true;
            }
            let name = entry.file_name();
            if name == ".git" {
                return false;
            }
            let name = name.to_string_lossy();
            !name.starts_with('.') || include_hidden || WELL_KNOWN_HIDDEN.contains(&&*name)
        });

    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for result in builder.build() {
        let entry = match result {
            Ok(e) => e,
            Err(err) => {
                skipped.push(SkippedEntry {
                    path: error_path(&err, root),
                    reason: format!("unreadable: {err}"),
                });
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            continue;
        }
        let abs = entry.path();
        let rel = relative_path(root, abs);
        let rel = match rel {
            Ok(r) => r,
            Err(lossy) => {
                skipped.push(SkippedEntry {
                    path: lossy,
                    reason: "file name is not UTF-8".to_owned(),
                });
                continue;
            }
        };
        if let Err(e) = validate_manifest_path(&rel) {
            skipped.push(SkippedEntry {
                path: rel,
                reason: e.to_string(),
            });
            continue;
        }
        if file_type.is_symlink() {
            match fs::canonicalize(abs) {
                Ok(target) if target.starts_with(canonical_root) => match fs::metadata(&target) {
                    Ok(m) if m.is_file() => files.push((rel, target)),
                    Ok(_) => skipped.push(SkippedEntry {
                        path: rel,
                        reason: "symbolic link to something other than a regular file".to_owned(),
                    }),
                    Err(e) => skipped.push(SkippedEntry {
                        path: rel,
                        reason: format!("unreadable symbolic link target: {e}"),
                    }),
                },
                Ok(_) => skipped.push(SkippedEntry {
                    path: rel,
                    reason: "symbolic link out of the root".to_owned(),
                }),
                Err(e) => skipped.push(SkippedEntry {
                    path: rel,
                    reason: format!("dangling symbolic link: {e}"),
                }),
            }
            continue;
        }
        if !file_type.is_file() {
            skipped.push(SkippedEntry {
                path: rel,
                reason: "not a regular file (FIFO, socket or device)".to_owned(),
            });
            continue;
        }
        files.push((rel, abs.to_owned()));
    }
    (files, skipped)
}

/// `abs` relative to `root`, `/`-separated; `Err(lossy form)` when a component is not UTF-8.
fn relative_path(root: &Path, abs: &Path) -> Result<String, String> {
    let rel = abs.strip_prefix(root).unwrap_or(abs);
    let mut out = String::new();
    let mut lossy = String::new();
    let mut ok = true;
    for component in rel.components() {
        let part = component.as_os_str();
        if !out.is_empty() {
            out.push('/');
            lossy.push('/');
        }
        lossy.push_str(&part.to_string_lossy());
        match part.to_str() {
            Some(s) => out.push_str(s),
            None => ok = false,
        }
    }
    if ok { Ok(out) } else { Err(lossy) }
}

fn error_path(err: &ignore::Error, root: &Path) -> String {
    fn find(err: &ignore::Error) -> Option<&Path> {
        match err {
            ignore::Error::WithPath { path, .. } => Some(path),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                find(err)
            }
            ignore::Error::Loop { child, .. } => Some(child),
            ignore::Error::Partial(errs) => errs.iter().find_map(find),
            _ => None,
        }
    }
    find(err)
        .map(|p| relative_path(root, p).unwrap_or_else(|lossy| lossy))
        .unwrap_or_default()
}

/// blake3 hex and size of a file, read in chunks (large files are never held in memory).
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// The commit checked out in a git repository at `root`, read from the files (no git library).
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitHead {
    commit: String,
    reference: Option<String>,
}

/// Reads `.git/HEAD` (or the directory a `.git` file points to, as in worktrees and
/// submodules), following a symbolic ref through loose refs and `packed-refs`.
/// `None` when anything is missing or malformed: the metadata is informative only.
fn read_git_head(root: &Path) -> Option<GitHead> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = fs::read_to_string(&dot_git).ok()?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        let target = Path::new(target);
        if target.is_absolute() {
            target.to_owned()
        } else {
            root.join(target)
        }
    } else {
        dot_git
    };
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:") else {
        return is_commit_id(head).then(|| GitHead {
            commit: head.to_owned(),
            reference: None,
        });
    };
    let reference = reference.trim();
    // Worktrees keep shared refs in the common directory.
    let common = fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()));
    let dirs: Vec<&Path> = std::iter::once(git_dir.as_path())
        .chain(common.as_deref())
        .collect();
    for dir in &dirs {
        if let Ok(text) = fs::read_to_string(dir.join(reference)) {
            let commit = text.trim();
            if is_commit_id(commit) {
                return Some(GitHead {
                    commit: commit.to_owned(),
                    reference: Some(reference.to_owned()),
                });
            }
        }
    }
    for dir in &dirs {
        let Ok(packed) = fs::read_to_string(dir.join("packed-refs")) else {
            continue;
        };
        for line in packed.lines() {
            if let Some((commit, name)) = line.split_once(' ')
                && name == reference
                && is_commit_id(commit)
            {
                return Some(GitHead {
                    commit: commit.to_owned(),
                    reference: Some(reference.to_owned()),
                });
            }
        }
    }
    None
}

/// SHA-1 (40) or SHA-256 (64) hex object id.
fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        for p in [
            "a",
            "a/b.rs",
            "src/é/ü.py",
            ".gitignore",
            "a b/c d.ts",
            "x..y",
            "..a",
        ] {
            assert_eq!(validate_manifest_path(p), Ok(()), "{p}");
        }
    }

    type MakeError = fn(String) -> PathError;

    #[test]
    fn invalid_paths_say_why() {
        let cases: &[(&str, MakeError)] = &[
            ("/etc/passwd", PathError::Absolute),
            ("C:/x", PathError::Drive),
            ("c:x", PathError::Drive),
            ("a\\b", PathError::Backslash),
            ("a//b", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("../a", PathError::DotSegment),
            ("a/../b", PathError::DotSegment),
            ("./a", PathError::DotSegment),
            ("a/.", PathError::DotSegment),
            ("a\0b", PathError::ControlCharacter),
            ("a\nb", PathError::ControlCharacter),
        ];
        for (p, make) in cases {
            assert_eq!(
                validate_manifest_path(p),
                Err(make((*p).to_owned())),
                "{p:?}"
            );
        }
        assert_eq!(validate_manifest_path(""), Err(PathError::Empty));
        let msg = validate_manifest_path("../x")
            .expect_err("invalid")
            .to_string();
        assert!(msg.contains("\"../x\""), "{msg}");
    }

    #[test]
    fn manifest_hash_is_the_documented_encoding() {
        let files = vec![
            ManifestFile {
                path: "a.py".into(),
                hash: "11".into(),
                size: 1,
                language: Some(Language::Python),
            },
            ManifestFile {
                path: "b".into(),
                hash: "22".into(),
                size: 9,
                language: None,
            },
        ];
        let expected = blake3::hash(b"a.py\x0011\nb\x0022\n").to_hex().to_string();
        assert_eq!(manifest_hash(&files), expected);
        assert_eq!(manifest_hash(&[]), blake3::hash(b"").to_hex().to_string());
    }

    #[test]
    fn validate_manifest_names_the_bad_entry() {
        let good = "0".repeat(64);
        let file = |path: &str, hash: &str| ManifestFile {
            path: path.into(),
            hash: hash.into(),
            size: 0,
            language: None,
        };
        let mk = |files: Vec<ManifestFile>| Manifest {
            hash: manifest_hash(&files),
            files,
            metadata: BTreeMap::new(),
        };
        assert_eq!(validate_manifest(&mk(vec![file("a", &good)])), Ok(()));
        assert!(matches!(
            validate_manifest(&mk(vec![file("a", &good), file("../b", &good)])),
            Err(ManifestValidationError::Path { index: 1, .. })
        ));
        assert!(matches!(
            validate_manifest(&mk(vec![file("b", &good), file("a", &good)])),
            Err(ManifestValidationError::Order { index: 1, .. })
        ));
        assert!(matches!(
            validate_manifest(&mk(vec![file("a", &good), file("a", &good)])),
            Err(ManifestValidationError::Order { index: 1, .. })
        ));
        assert!(matches!(
            validate_manifest(&mk(vec![file("a", "XYZ")])),
            Err(ManifestValidationError::FileHash { index: 0, .. })
        ));
        let mut tampered = mk(vec![file("a", &good)]);
        tampered.hash = good.clone();
        assert!(matches!(
            validate_manifest(&tampered),
            Err(ManifestValidationError::Hash { .. })
        ));
    }
}
