//! The server's mutable state: one analysis host per workspace folder (multi-root; a file
//! outside every folder gets a folder of its own, its parent directory), the open documents,
//! and the settings. Open documents override disk; closed files follow disk through
//! watched-file events.
//!
//! Every input change goes through here, under the server's one lock. A host write cancels the
//! queries running on that host's snapshots (salsa), which is what keeps typing responsive.

use crate::settings::Settings;
use crate::text::{Document, Encoding};
use globset::{Glob, GlobSet, GlobSetBuilder};
use hivesync_analysis::{Analysis, AnalysisHost};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tower_lsp_server::ls_types::Uri;

/// One workspace folder and its engine.
pub struct Root {
    pub path: PathBuf,
    pub host: AnalysisHost,
    /// True once the folder's files were loaded from disk (open documents answer before).
    pub indexed: bool,
    /// A folder made up for files opened outside every workspace folder: never indexed.
    pub loose: bool,
    /// Paths (relative) that changed on disk while the folder was being loaded.
    pub changed_while_loading: HashSet<String>,
}

/// Where a file lives: the index of its root and its `/`-separated path relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub root: usize,
    pub rel: String,
}

pub struct World {
    pub roots: Vec<Root>,
    pub docs: HashMap<PathBuf, Document>,
    pub settings: Settings,
    exclude: GlobSet,
    pub encoding: Encoding,
    /// The last rename of the session (old name, new name): the code actions offer its
    /// probable matches and its new name.
    pub last_rename: Option<(String, String)>,
    /// Open documents' URIs as the client spelled them.
    pub uris: HashMap<PathBuf, Uri>,
}

impl World {
    pub fn new(settings: Settings) -> World {
        let exclude = build_globs(&settings.exclude).unwrap_or_else(|_| GlobSet::empty());
        World {
            roots: Vec::new(),
            docs: HashMap::new(),
            settings,
            exclude,
            encoding: Encoding::Utf16,
            last_rename: None,
            uris: HashMap::new(),
        }
    }

    /// Replaces the settings; returns the glob error, if any pattern was invalid (the others
    /// still apply).
    pub fn set_settings(&mut self, settings: Settings) -> Option<String> {
        let (set, err) = match build_globs(&settings.exclude) {
            Ok(set) => (set, None),
            Err(e) => (GlobSet::empty(), Some(e)),
        };
        self.exclude = set;
        self.settings = settings;
        err
    }

    pub fn add_root(&mut self, path: PathBuf) -> usize {
        if let Some(i) = self.roots.iter().position(|r| r.path == path) {
            return i;
        }
        self.roots.push(Root {
            path,
            host: editor_host(),
            indexed: false,
            loose: false,
            changed_while_loading: HashSet::new(),
        });
        self.roots.len() - 1
    }

    /// The root containing `path` (the deepest one), and the relative path.
    pub fn locate(&self, path: &Path) -> Option<FileRef> {
        self.roots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| path.strip_prefix(&r.path).ok().map(|rel| (i, r, rel)))
            .max_by_key(|(_, r, _)| r.path.components().count())
            .map(|(i, _, rel)| FileRef {
                root: i,
                rel: rel_string(rel),
            })
    }

    /// Like [`World::locate`], creating a loose root (the parent directory) when needed.
    pub fn locate_or_add(&mut self, path: &Path) -> Option<FileRef> {
        if let Some(f) = self.locate(path) {
            return Some(f);
        }
        let parent = path.parent()?.to_path_buf();
        let i = self.add_root(parent);
        if let Some(r) = self.roots.get_mut(i) {
            r.loose = true;
            r.indexed = true;
        }
        self.locate(path)
    }

    pub fn is_excluded(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }

    /// A snapshot of the root holding `path`, with the file's place in it.
    pub fn snapshot(&self, path: &Path) -> Option<(Analysis, FileRef, PathBuf)> {
        let f = self.locate(path)?;
        let root = self.roots.get(f.root)?;
        Some((root.host.snapshot(), f, root.path.clone()))
    }

    pub fn open(&mut self, path: PathBuf, text: &str, version: i32) {
        if let Some(f) = self.locate_or_add(&path)
            && let Some(root) = self.roots.get_mut(f.root)
        {
            root.host.set_edited_file(&f.rel, text);
        }
        self.docs.insert(path, Document::new(text, version));
    }

    /// Applies `didChange` content changes to an open document and to its host.
    pub fn change(
        &mut self,
        path: &Path,
        version: i32,
        changes: &[tower_lsp_server::ls_types::TextDocumentContentChangeEvent],
    ) -> bool {
        let encoding = self.encoding;
        let Some(doc) = self.docs.get_mut(path) else {
            return false;
        };
        for c in changes {
            doc.apply(c, encoding);
        }
        doc.version = version;
        let text = doc.text();
        if let Some(f) = self.locate(path)
            && let Some(root) = self.roots.get_mut(f.root)
        {
            root.host.set_edited_file(&f.rel, text);
        }
        true
    }

    /// Closing a document hands the file back to disk.
    pub fn close(&mut self, path: &Path) {
        self.docs.remove(path);
        self.reload_from_disk(path);
    }

    /// A file or directory changed on disk (watched-file event). Open documents keep their
    /// editor text; a deleted directory takes its files with it.
    pub fn disk_changed(&mut self, path: &Path) {
        if self.docs.contains_key(path) {
            return;
        }
        if !path.exists()
            && let Some(f) = self.locate(path)
            && let Some(root) = self.roots.get_mut(f.root)
        {
            let prefix = format!("{}/", f.rel);
            for rel in host_files(&root.host) {
                if rel.starts_with(&prefix) {
                    root.host.remove_file(&rel);
                }
            }
        }
        if let Some(f) = self.locate(path)
            && let Some(root) = self.roots.get_mut(f.root)
            && !root.indexed
        {
            root.changed_while_loading.insert(f.rel.clone());
        }
        self.reload_from_disk(path);
    }

    fn reload_from_disk(&mut self, path: &Path) {
        let Some(f) = self.locate(path) else { return };
        let excluded = self.is_excluded(&f.rel);
        let Some(root) = self.roots.get_mut(f.root) else {
            return;
        };
        if root.loose {
            // Loose files exist for open documents only.
            root.host.remove_file(&f.rel);
            return;
        }
        match read_source(path) {
            Some(text) if !excluded && wanted(&f.rel) => {
                root.host.set_file(&f.rel, text);
            }
            _ => root.host.remove_file(&f.rel),
        }
    }

    /// Installs a freshly loaded host for root `i`: open documents and files that changed on
    /// disk meanwhile are applied on top, excluded files removed.
    pub fn install(&mut self, root_path: &Path, mut host: AnalysisHost, excluded: Vec<String>) {
        for rel in excluded {
            host.remove_file(&rel);
        }
        let Some(i) = self.roots.iter().position(|r| r.path == root_path) else {
            return;
        };
        let Some(root) = self.roots.get_mut(i) else {
            return;
        };
        let root_path = root.path.clone();
        let changed: Vec<String> = root.changed_while_loading.drain().collect();
        root.host = host;
        root.indexed = true;
        for rel in changed {
            self.reload_from_disk(&root_path.join(&rel));
        }
        let open: Vec<(String, String)> = self
            .docs
            .iter()
            .filter_map(|(p, d)| {
                let f = self.locate(p)?;
                (f.root == i).then(|| (f.rel, d.text()))
            })
            .collect();
        if let Some(root) = self.roots.get_mut(i) {
            for (rel, text) in open {
                root.host.set_edited_file(&rel, text);
            }
        }
    }
}

/// An empty host as the server keeps them: files from disk at `MEDIUM` durability, open
/// documents at `LOW` (`set_edited_file`), so that typing re-validates only what depends on
/// the document being typed in.
pub fn editor_host() -> AnalysisHost {
    AnalysisHost::with_workspace_durability(EDITOR_DURABILITY)
}

/// The durability of the files a server reads from disk.
pub const EDITOR_DURABILITY: salsa::Durability = salsa::Durability::MEDIUM;

/// Every path in a host.
pub fn host_files(host: &AnalysisHost) -> Vec<String> {
    let db = host.db();
    hivesync_analysis::db::Workspace::try_get(db)
        .map(|ws| {
            ws.files(db)
                .iter()
                .map(|f| f.path(db).to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Files the engine reads: sources of a known language (but not minified bundles) and import
/// configuration.
pub fn wanted(rel: &str) -> bool {
    (hivesync_protocol::Language::from_path(rel).is_some()
        && !hivesync_analysis::db::is_minified_path(rel))
        || hivesync_analysis::db::is_config_file(rel)
}

/// A source file's text, or `None` when it is missing or left out like the loader leaves it
/// out (binary, not UTF-8, minified).
pub fn read_source(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    hivesync_analysis::db::source_text(&path.to_string_lossy(), bytes).ok()
}

fn rel_string(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn build_globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    let mut errors = Vec::new();
    for p in patterns {
        match Glob::new(p) {
            Ok(g) => {
                b.add(g);
            }
            Err(e) => errors.push(format!("`{p}`: {e}")),
        }
    }
    let set = b.build().map_err(|e| e.to_string())?;
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(format!("invalid exclude pattern {}", errors.join(", ")))
    }
}

/// The file path of a `file:` URI.
pub fn uri_path(uri: &Uri) -> Option<PathBuf> {
    if uri.scheme().as_str() != "file" {
        return None;
    }
    uri.to_file_path().map(|p| p.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepest_root_wins_and_loose_files_get_their_own() {
        let mut w = World::new(Settings::default());
        w.add_root(PathBuf::from("/ws"));
        w.add_root(PathBuf::from("/ws/sub"));
        assert_eq!(
            w.locate(Path::new("/ws/sub/a/b.py")),
            Some(FileRef {
                root: 1,
                rel: "a/b.py".into()
            })
        );
        assert_eq!(w.locate(Path::new("/elsewhere/x.py")), None);
        let f = w
            .locate_or_add(Path::new("/elsewhere/x.py"))
            .expect("added");
        assert_eq!(f.rel, "x.py");
        assert!(w.roots[f.root].loose);
    }

    #[test]
    fn open_documents_override_disk_until_closed() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("m.py");
        std::fs::write(&file, "x = 1\n").expect("write");
        let mut w = World::new(Settings::default());
        let i = w.add_root(dir.path().to_path_buf());
        w.open(file.clone(), "y = 2\n", 1);
        w.disk_changed(&file);
        let text = |w: &World| {
            w.roots[i]
                .host
                .snapshot()
                .text("m.py")
                .map(|t| t.to_string())
        };
        assert_eq!(text(&w).as_deref(), Some("y = 2\n"));
        w.close(&file);
        assert_eq!(text(&w).as_deref(), Some("x = 1\n"));
        std::fs::remove_file(&file).expect("rm");
        w.disk_changed(&file);
        assert_eq!(text(&w), None);
    }
}
