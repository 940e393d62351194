//! Multi-file test fixtures in the rust-analyzer style, shared by every language's tests:
//!
//! ```text
//! //- /pkg/__init__.py
//! //- /pkg/a.py
//! def helper(): ...
//! //- /main.py
//! from pkg.a import helper
//! helper$0()
//! ```
//!
//! Each `//- /path` line starts a file (the leading `/` is the project root); an empty file is
//! just its header. `$0` marks the cursor (at most one per fixture) and is removed from the
//! text. A fixture without any header is one file, `/main.py`. Common leading indentation is
//! stripped so fixtures can be indented inside raw strings.
//!
//! ```
//! use hivesync_analysis::fixture::Fixture;
//! let f = Fixture::parse("//- /a.py\nx = 1\n//- /b.py\nfrom a import x\nprint(x$0)\n");
//! let analysis = f.analysis();
//! let defs = analysis.definition(&f.position()).unwrap();
//! assert_eq!(hivesync_analysis::fixture::render(&defs), ["a.py:1:1"]);
//! ```

use crate::AnalysisHost;
use crate::ide::{Analysis, FilePosition, Location};
use crate::model::LineIndex;
use hivesync_protocol::Confidence;

/// A parsed fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// `(path relative to the root, text)` in fixture order.
    pub files: Vec<(String, String)>,
    /// The `$0` marker: file and byte offset.
    pub cursor: Option<(String, usize)>,
}

impl Fixture {
    pub fn parse(fixture: &str) -> Fixture {
        let text = dedent(fixture);
        let mut files: Vec<(String, String)> = Vec::new();
        for line in text.split_inclusive('\n') {
            if let Some(path) = line.trim_end().strip_prefix("//- /") {
                files.push((path.trim().to_owned(), String::new()));
                continue;
            }
            if files.is_empty() {
                files.push(("main.py".to_owned(), String::new()));
            }
            if let Some(last) = files.last_mut() {
                last.1.push_str(line);
            }
        }
        let mut cursor = None;
        for (path, body) in &mut files {
            if let Some(at) = body.find("$0") {
                body.replace_range(at..at + 2, "");
                cursor = Some((path.clone(), at));
            }
        }
        Fixture { files, cursor }
    }

    /// A host with every fixture file loaded.
    pub fn host(&self) -> AnalysisHost {
        let mut host = AnalysisHost::new();
        host.set_files(
            self.files
                .iter()
                .map(|(p, t)| (p.clone(), t.as_str().into()))
                .collect(),
        );
        host
    }

    /// A snapshot of [`Fixture::host`] (the host is dropped; fine for read-only tests).
    pub fn analysis(&self) -> Analysis {
        self.host().snapshot()
    }

    /// The `$0` position as 1-based line/column.
    ///
    /// # Panics
    /// When the fixture has no `$0` marker (a broken test, not a runtime condition).
    pub fn position(&self) -> FilePosition {
        let Some((path, offset)) = &self.cursor else {
            panic!("fixture has no $0 cursor marker");
        };
        let text = self
            .files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
            .unwrap_or("");
        let (line, column) = LineIndex::new(text).position(text, *offset as u32);
        FilePosition {
            path: path.clone(),
            line,
            column,
        }
    }

    pub fn text(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
    }
}

/// Locations as `path:line:column`, with ` (probable)` appended to probable ones — compact
/// expectations for tests.
pub fn render(locations: &[Location]) -> Vec<String> {
    locations
        .iter()
        .map(|l| {
            let suffix = match l.confidence {
                Confidence::Exact => "",
                Confidence::Probable => " (probable)",
            };
            format!("{}:{}:{}{suffix}", l.path, l.line, l.column)
        })
        .collect()
}

/// Definitions at the fixture's `$0`, rendered with [`render`].
pub fn defs(fixture: &str) -> Vec<String> {
    let f = Fixture::parse(fixture);
    render(&f.analysis().definition(&f.position()).expect("definition"))
}

/// References of the symbol at the fixture's `$0`, rendered with [`render`].
pub fn refs(fixture: &str, include_declaration: bool) -> Vec<String> {
    let f = Fixture::parse(fixture);
    render(
        &f.analysis()
            .references(&f.position(), include_declaration)
            .expect("references"),
    )
}

/// Applies the rename at the fixture's `$0` (exact edits, plus probable ones when asked) and
/// returns the new texts of the edited files.
pub fn rename(
    fixture: &str,
    new_name: &str,
    include_probable: bool,
) -> Result<Vec<(String, String)>, crate::AnalysisError> {
    let f = Fixture::parse(fixture);
    let plan = f.analysis().rename(&f.position(), new_name)?;
    let keep: &[Confidence] = if include_probable {
        &[Confidence::Exact, Confidence::Probable]
    } else {
        &[Confidence::Exact]
    };
    let change = plan.change.filtered(keep);
    let mut out = Vec::new();
    for file in &change.files {
        let base = f.text(&file.path).expect("file in fixture");
        let text = crate::changeset::apply_to_text(base, &file.edits).expect("valid edits");
        out.push((file.path.clone(), text));
    }
    Ok(out)
}

/// The engine's refusal of the rename at the fixture's `$0`; panics when it is not refused.
pub fn refused(fixture: &str, new_name: &str) -> crate::RenameError {
    match rename(fixture, new_name, false) {
        Err(crate::AnalysisError::Rename(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(if line.ends_with('\n') { "\n" } else { "" });
        } else {
            out.push_str(line.get(indent..).unwrap_or(line));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_files_and_cursor() {
        let f = Fixture::parse(
            r#"
            //- /a.py
            x = 1
            //- /pkg/__init__.py
            //- /b.py
            def f():
                return x$0
            "#,
        );
        assert_eq!(f.files.len(), 3);
        assert_eq!(f.files[0], ("a.py".into(), "x = 1\n".into()));
        assert_eq!(f.files[1].1, "");
        assert_eq!(f.text("b.py"), Some("def f():\n    return x\n"));
        let pos = f.position();
        assert_eq!((pos.path.as_str(), pos.line, pos.column), ("b.py", 2, 13));
    }
}
