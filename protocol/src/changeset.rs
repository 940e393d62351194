//! `ChangeSet`: the one unit of change everywhere (rename plans, AI documentation proposals,
//! approved hunks). A change set never touches a file by itself: whoever applies it checks each
//! file's `base_hash` first and writes all files or none (see `hivesync_analysis::changeset`).

use serde::{Deserialize, Serialize};

/// How sure the engine is that an edit belongs to the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Resolved through scopes and imports.
    Exact,
    /// Matched by name only (e.g. `obj.method()` where the type of `obj` is unknown).
    Probable,
}

/// A set of edits over several files, each computed against a known base content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChangeSet {
    /// What the change does, in the user's words ("Rename `foo` to `bar`").
    pub title: String,
    /// One entry per file, sorted by path, at most one entry per path.
    pub files: Vec<FileChange>,
}

/// The edits to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    /// blake3 hex of the content the edits were computed against; `None` means the file must
    /// not exist yet (the change creates it).
    pub base_hash: Option<String>,
    /// Non-overlapping edits sorted by `start`.
    pub edits: Vec<TextEdit>,
    /// The change deletes the file (after checking `base_hash`); `edits` is then empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

/// Replace the bytes `start..end` of the base content with `new_text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextEdit {
    /// Byte offset into the base content (inclusive).
    pub start: usize,
    /// Byte offset into the base content (exclusive).
    pub end: usize,
    pub new_text: String,
    pub confidence: Confidence,
}

impl ChangeSet {
    /// True when applying the change would alter nothing (creating an empty file is a change).
    pub fn is_empty(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.edits.is_empty() && !f.delete && f.base_hash.is_some())
    }

    /// The same change restricted to edits of the given confidences (files left without
    /// edits are dropped; deletions and creations of empty files are kept).
    pub fn filtered(&self, keep: &[Confidence]) -> ChangeSet {
        let files = self
            .files
            .iter()
            .filter_map(|f| {
                let edits: Vec<TextEdit> = f
                    .edits
                    .iter()
                    .filter(|e| keep.contains(&e.confidence))
                    .cloned()
                    .collect();
                let creates_empty = f.base_hash.is_none() && f.edits.is_empty();
                (!edits.is_empty() || f.delete || creates_empty).then(|| FileChange {
                    path: f.path.clone(),
                    base_hash: f.base_hash.clone(),
                    edits,
                    delete: f.delete,
                })
            })
            .collect();
        ChangeSet {
            title: self.title.clone(),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(start: usize, confidence: Confidence) -> TextEdit {
        TextEdit {
            start,
            end: start + 3,
            new_text: "bar".into(),
            confidence,
        }
    }

    #[test]
    fn filtered_keeps_only_requested_confidence_and_drops_empty_files() {
        let cs = ChangeSet {
            title: "Rename".into(),
            files: vec![
                FileChange {
                    path: "a.py".into(),
                    base_hash: Some("h".into()),
                    edits: vec![edit(0, Confidence::Exact), edit(10, Confidence::Probable)],
                    delete: false,
                },
                FileChange {
                    path: "b.py".into(),
                    base_hash: Some("h".into()),
                    edits: vec![edit(0, Confidence::Probable)],
                    delete: false,
                },
            ],
        };
        let exact = cs.filtered(&[Confidence::Exact]);
        assert_eq!(exact.files.len(), 1);
        assert_eq!(exact.files[0].edits, vec![edit(0, Confidence::Exact)]);
        assert!(!exact.is_empty());
        assert!(cs.filtered(&[]).is_empty());
    }

    #[test]
    fn creating_an_empty_file_is_a_change() {
        let cs = ChangeSet {
            title: "Create".into(),
            files: vec![FileChange {
                path: "empty.txt".into(),
                base_hash: None,
                edits: vec![],
                delete: false,
            }],
        };
        assert!(!cs.is_empty());
        assert_eq!(cs.filtered(&[Confidence::Exact]), cs);
    }

    #[test]
    fn json_shape_is_stable() {
        let cs = ChangeSet {
            title: "t".into(),
            files: vec![FileChange {
                path: "a.rs".into(),
                base_hash: None,
                edits: vec![edit(1, Confidence::Exact)],
                delete: false,
            }],
        };
        let json = serde_json::to_string(&cs).expect("serialises");
        assert_eq!(
            json,
            r#"{"title":"t","files":[{"path":"a.rs","base_hash":null,"edits":[{"start":1,"end":4,"new_text":"bar","confidence":"exact"}]}]}"#
        );
        let back: ChangeSet = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, cs);
    }
}
