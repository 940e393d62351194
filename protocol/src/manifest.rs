//! `Manifest`: a snapshot of a project's files — tree, content hashes, sizes, languages and
//! metadata. Its `hash` identifies the snapshot, so a proposal always names the exact state it
//! was computed on. Produced by `hivesync analyze manifest --json`, accepted verbatim by the
//! backend's snapshot API.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Languages the analysis engine understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    TypeScript,
    Tsx,
    JavaScript,
    Rust,
    Go,
}

impl Language {
    /// The lowercase name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::JavaScript => "javascript",
            Language::Rust => "rust",
            Language::Go => "go",
        }
    }

    /// The language of a file, from its extension.
    pub fn from_path(path: &str) -> Option<Language> {
        let ext = path.rsplit_once('.')?.1;
        Some(match ext {
            "py" | "pyi" => Language::Python,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "rs" => Language::Rust,
            "go" => Language::Go,
            _ => return None,
        })
    }
}

/// A snapshot of a project's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// blake3 hex over the sorted `(path, hash)` pairs: equal manifests have equal hashes.
    pub hash: String,
    /// Files sorted by path.
    pub files: Vec<ManifestFile>,
    /// Free-form project metadata (name, VCS revision, …), sorted by key.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative to the project root, `/`-separated.
    pub path: String,
    /// blake3 hex of the content.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// `None` for files the engine does not analyse (they are still part of the snapshot).
    pub language: Option<Language>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_extension() {
        assert_eq!(Language::from_path("a/b.py"), Some(Language::Python));
        assert_eq!(Language::from_path("x.tsx"), Some(Language::Tsx));
        assert_eq!(Language::from_path("x.mjs"), Some(Language::JavaScript));
        assert_eq!(Language::from_path("main.go"), Some(Language::Go));
        assert_eq!(Language::from_path("README"), None);
        assert_eq!(Language::from_path("notes.txt"), None);
    }

    #[test]
    fn language_serialises_lowercase() {
        let json = serde_json::to_string(&Language::TypeScript).expect("serialises");
        assert_eq!(json, "\"typescript\"");
        assert_eq!(Language::TypeScript.name(), "typescript");
    }
}
