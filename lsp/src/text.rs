//! Open documents held as ropes (full and incremental sync), and conversion between LSP
//! positions — line plus UTF-16 code units by default, UTF-8 bytes when negotiated — and the
//! byte offsets and 1-based character columns the analysis engine speaks.
//!
//! Line breaks are `\n` and `\r\n` (ropey is built without Unicode line separators, so the rope,
//! [`LineMap`] and the engine agree on line numbers). Positions past the end of a line clamp to
//! the line's end, as the protocol asks; lines past the end of the text are `None`.

use ls_types::{Position, Range, TextDocumentContentChangeEvent};
use ropey::Rope;
use tower_lsp_server::ls_types;

/// How the `character` of an LSP position is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// An open document: its text and the version the client gave it.
#[derive(Debug, Clone)]
pub struct Document {
    pub rope: Rope,
    pub version: i32,
}

impl Document {
    pub fn new(text: &str, version: i32) -> Document {
        Document {
            rope: Rope::from_str(text),
            version,
        }
    }

    /// Applies one `didChange` content change (a whole new text when it has no range).
    pub fn apply(&mut self, change: &TextDocumentContentChangeEvent, encoding: Encoding) {
        match change.range {
            None => self.rope = Rope::from_str(&change.text),
            Some(range) => {
                let start = rope_char(&self.rope, range.start, encoding);
                let end = rope_char(&self.rope, range.end, encoding).max(start);
                self.rope.remove(start..end);
                self.rope.insert(start, &change.text);
            }
        }
    }

    pub fn text(&self) -> String {
        self.rope.to_string()
    }
}

/// The char index of an LSP position in a rope, clamped into the text.
fn rope_char(rope: &Rope, pos: Position, encoding: Encoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let line_start = rope.line_to_char(line);
    let slice = rope.line(line);
    let mut content = slice.len_chars();
    // Exclude the line break.
    if content > 0 && slice.char(content - 1) == '\n' {
        content -= 1;
        if content > 0 && slice.char(content - 1) == '\r' {
            content -= 1;
        }
    }
    let within = match encoding {
        Encoding::Utf16 => {
            let max = slice.char_to_utf16_cu(content);
            slice.utf16_cu_to_char((pos.character as usize).min(max))
        }
        Encoding::Utf8 => {
            let max = slice.char_to_byte(content);
            slice.byte_to_char((pos.character as usize).min(max))
        }
    };
    line_start + within.min(content)
}

/// Line starts of a text, for converting between byte offsets and LSP positions.
#[derive(Debug, Clone)]
pub struct LineMap {
    starts: Vec<usize>,
}

impl LineMap {
    pub fn new(text: &str) -> LineMap {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineMap { starts }
    }

    /// The text of a line without its line break.
    fn line<'t>(&self, text: &'t str, line: usize) -> Option<(usize, &'t str)> {
        let start = *self.starts.get(line)?;
        let end = self.starts.get(line + 1).copied().unwrap_or(text.len());
        let s = text.get(start..end)?;
        let s = s.strip_suffix('\n').unwrap_or(s);
        let s = s.strip_suffix('\r').unwrap_or(s);
        Some((start, s))
    }

    /// The byte offset of an LSP position; `None` when the line is past the end. A character
    /// past the end of the line clamps to it; one inside a multi-unit character snaps to its
    /// start.
    pub fn offset(&self, text: &str, pos: Position, encoding: Encoding) -> Option<usize> {
        let (start, line) = self.line(text, pos.line as usize)?;
        let want = pos.character as usize;
        let mut units = 0;
        for (byte, c) in line.char_indices() {
            let width = match encoding {
                Encoding::Utf16 => c.len_utf16(),
                Encoding::Utf8 => c.len_utf8(),
            };
            if units + width > want {
                return Some(start + byte);
            }
            units += width;
        }
        Some(start + line.len())
    }

    /// The LSP position of a byte offset (clamped into the text).
    pub fn position(&self, text: &str, offset: usize, encoding: Encoding) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let prefix = text.get(start..offset).unwrap_or("");
        let character = match encoding {
            Encoding::Utf16 => prefix.encode_utf16().count(),
            Encoding::Utf8 => prefix.len(),
        };
        Position::new(
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(character).unwrap_or(u32::MAX),
        )
    }

    pub fn range(&self, text: &str, start: usize, end: usize, encoding: Encoding) -> Range {
        Range::new(
            self.position(text, start, encoding),
            self.position(text, end, encoding),
        )
    }

    /// The engine's 1-based (line, character column) of a byte offset.
    pub fn engine_position(&self, text: &str, offset: usize) -> (u32, u32) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column = text.get(start..offset).map_or(0, |s| s.chars().count());
        (
            u32::try_from(line + 1).unwrap_or(u32::MAX),
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a😀b = 1\r\nçx\n";

    #[test]
    fn utf16_counts_surrogate_pairs_as_two() {
        let map = LineMap::new(TEXT);
        let b = TEXT.find('b').expect("b");
        assert_eq!(
            map.offset(TEXT, Position::new(0, 3), Encoding::Utf16),
            Some(b)
        );
        assert_eq!(map.position(TEXT, b, Encoding::Utf16), Position::new(0, 3));
        // Inside the surrogate pair: snaps to the emoji's start.
        assert_eq!(
            map.offset(TEXT, Position::new(0, 2), Encoding::Utf16),
            Some(1)
        );
    }

    #[test]
    fn utf8_counts_bytes() {
        let map = LineMap::new(TEXT);
        let b = TEXT.find('b').expect("b");
        assert_eq!(
            map.offset(TEXT, Position::new(0, 5), Encoding::Utf8),
            Some(b)
        );
        assert_eq!(map.position(TEXT, b, Encoding::Utf8), Position::new(0, 5));
        let x = TEXT.find('x').expect("x");
        assert_eq!(map.position(TEXT, x, Encoding::Utf8), Position::new(1, 2));
        assert_eq!(map.position(TEXT, x, Encoding::Utf16), Position::new(1, 1));
    }

    #[test]
    fn out_of_range_clamps_or_is_none() {
        let map = LineMap::new(TEXT);
        let eol = TEXT.find('\r').expect("cr");
        assert_eq!(
            map.offset(TEXT, Position::new(0, 99), Encoding::Utf16),
            Some(eol)
        );
        assert_eq!(
            map.offset(TEXT, Position::new(2, 0), Encoding::Utf16),
            Some(TEXT.len())
        );
        assert_eq!(map.offset(TEXT, Position::new(3, 0), Encoding::Utf16), None);
        assert_eq!(
            map.position(TEXT, 999, Encoding::Utf16),
            Position::new(2, 0)
        );
        let x = TEXT.find('x').expect("x");
        assert_eq!(map.engine_position(TEXT, x), (2, 2));
    }

    fn change(
        range: Option<((u32, u32), (u32, u32))>,
        text: &str,
    ) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: range.map(|(s, e)| Range::new(Position::new(s.0, s.1), Position::new(e.0, e.1))),
            range_length: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn incremental_changes_apply_in_both_encodings() {
        let mut doc = Document::new(TEXT, 1);
        // Replace `b` (UTF-16 column 3) with `bee`.
        doc.apply(&change(Some(((0, 3), (0, 4))), "bee"), Encoding::Utf16);
        assert_eq!(doc.text(), "a😀bee = 1\r\nçx\n");
        // Insert after `ç` (UTF-8 column 2) on line 1.
        doc.apply(&change(Some(((1, 2), (1, 2))), "!"), Encoding::Utf8);
        assert_eq!(doc.text(), "a😀bee = 1\r\nç!x\n");
        // A range past the end of a line clamps before its CRLF; past the end of the text,
        // to the end.
        doc.apply(&change(Some(((0, 50), (0, 60))), ";"), Encoding::Utf16);
        doc.apply(&change(Some(((9, 0), (9, 0))), "z"), Encoding::Utf16);
        assert_eq!(doc.text(), "a😀bee = 1;\r\nç!x\nz");
        doc.apply(&change(None, "new"), Encoding::Utf16);
        assert_eq!(doc.text(), "new");
    }
}
