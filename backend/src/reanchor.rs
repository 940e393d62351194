//! Re-anchoring comment threads: where does a range of lines anchored in one version of a file
//! sit in another version? Pure functions over texts, used by `routes::threads` when threads
//! are listed at a newer snapshot.
//!
//! The walk: the line diff (`similar`, Myers) between the anchor's text and the target text
//! maps every unchanged line to its new number, so insertions and deletions above the anchor
//! shift it. When the diff touches the anchored lines, they are searched for by content (the
//! exact block, the occurrence nearest to where the diff puts it, ties broken by matching
//! context) — a moved block is found again; an edited one is `outdated`.

use similar::{ChangeTag, TextDiff};

/// Lines of context stored on each side of an anchor.
pub const CONTEXT_LINES: usize = 3;

/// A range of lines, 1-based, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRange {
    pub start: usize,
    pub end: usize,
}

/// Where the anchored lines are in the target text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relocation {
    /// The same lines, unchanged, at this range (possibly shifted).
    Found(LineRange),
    /// The anchored lines were edited and could not be found again.
    Outdated,
}

/// The lines of a text (without their line breaks).
pub fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The anchored lines and their context, as stored with a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorText {
    pub lines: String,
    pub before: String,
    pub after: String,
}

/// Cuts the anchored lines and up to [`CONTEXT_LINES`] of context on each side out of `text`.
/// `None` when the range is not within the text.
pub fn anchor_text(text: &str, range: LineRange) -> Option<AnchorText> {
    let all = lines(text);
    if range.start == 0 || range.end < range.start || range.end > all.len() {
        return None;
    }
    let (s, e) = (range.start - 1, range.end);
    Some(AnchorText {
        lines: all[s..e].join("\n"),
        before: all[s.saturating_sub(CONTEXT_LINES)..s].join("\n"),
        after: all[e..(e + CONTEXT_LINES).min(all.len())].join("\n"),
    })
}

/// Where `range` of `old` is in `new`.
pub fn relocate(old: &str, new: &str, range: LineRange, anchor: &AnchorText) -> Relocation {
    if old == new {
        return Relocation::Found(range);
    }
    let diff = TextDiff::from_lines(old, new);
    // old line index (0-based) → new line index, for unchanged lines.
    let old_count = lines(old).len();
    let mut map: Vec<Option<usize>> = vec![None; old_count + 1];
    // The new index just after the last mapped line before each old line (for "expected
    // position" when the anchored lines are gone).
    let mut expected_new: Vec<usize> = vec![0; old_count + 1];
    let mut new_cursor = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => {
                if let (Some(o), Some(n)) = (change.old_index(), change.new_index()) {
                    if o < map.len() {
                        map[o] = Some(n);
                        expected_new[o] = n;
                    }
                    new_cursor = n + 1;
                }
            }
            ChangeTag::Delete => {
                if let Some(o) = change.old_index()
                    && o < expected_new.len()
                {
                    expected_new[o] = new_cursor;
                }
            }
            ChangeTag::Insert => {
                if let Some(n) = change.new_index() {
                    new_cursor = n + 1;
                }
            }
        }
    }
    let (s, e) = (range.start - 1, range.end - 1);
    if e < old_count {
        let mapped: Vec<Option<usize>> = (s..=e).map(|i| map[i]).collect();
        if let (Some(Some(first)), true) = (mapped.first(), mapped.iter().all(Option::is_some)) {
            let contiguous = mapped
                .iter()
                .enumerate()
                .all(|(k, n)| *n == Some(first + k));
            if contiguous {
                return Relocation::Found(LineRange {
                    start: first + 1,
                    end: first + 1 + (e - s),
                });
            }
        }
    }
    let expected = expected_new.get(s).copied().unwrap_or(0);
    match find_block(new, anchor, expected) {
        Some(start) => Relocation::Found(LineRange {
            start: start + 1,
            end: start + 1 + (range.end - range.start),
        }),
        None => Relocation::Outdated,
    }
}

/// The 0-based start of the occurrence of the anchored block in `text` nearest to `expected`,
/// preferring occurrences whose surrounding lines match the stored context.
fn find_block(text: &str, anchor: &AnchorText, expected: usize) -> Option<usize> {
    let all = lines(text);
    let block: Vec<&str> = anchor.lines.split('\n').collect();
    if block.is_empty() || block.len() > all.len() || block.iter().all(|l| l.trim().is_empty()) {
        return None;
    }
    let before: Vec<&str> = if anchor.before.is_empty() {
        Vec::new()
    } else {
        anchor.before.split('\n').collect()
    };
    let after: Vec<&str> = if anchor.after.is_empty() {
        Vec::new()
    } else {
        anchor.after.split('\n').collect()
    };
    let mut best: Option<(usize, usize, usize)> = None; // (context misses, distance, start)
    for start in 0..=(all.len() - block.len()) {
        if all[start..start + block.len()] != block[..] {
            continue;
        }
        let end = start + block.len();
        let mut misses = 0;
        for (k, line) in before.iter().rev().enumerate() {
            if start < k + 1 || all[start - k - 1] != *line {
                misses += 1;
            }
        }
        for (k, line) in after.iter().enumerate() {
            if all.get(end + k) != Some(line) {
                misses += 1;
            }
        }
        let key = (misses, start.abs_diff(expected), start);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best.map(|(_, _, start)| start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    fn at(old: &str, new: &str, start: usize, end: usize) -> Relocation {
        let range = LineRange { start, end };
        let anchor = anchor_text(old, range).expect("range in text");
        relocate(old, new, range, &anchor)
    }

    fn found(start: usize, end: usize) -> Relocation {
        Relocation::Found(LineRange { start, end })
    }

    #[test]
    fn unchanged_text_keeps_the_range() {
        let t = text(10);
        assert_eq!(at(&t, &t, 4, 5), found(4, 5));
    }

    #[test]
    fn insertions_above_shift_down() {
        let old = text(10);
        let new = format!("new a\nnew b\n{old}");
        assert_eq!(at(&old, &new, 4, 5), found(6, 7));
    }

    #[test]
    fn deletions_above_shift_up_and_below_do_not_matter() {
        let old = text(10);
        let new: String = old
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != 1 && *i != 8)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        assert_eq!(at(&old, &new, 4, 5), found(2, 3));
    }

    #[test]
    fn an_edit_inside_is_outdated() {
        let old = text(10);
        let new = old.replace("line 5\n", "line five, rewritten\n");
        assert_eq!(at(&old, &new, 4, 5), Relocation::Outdated);
        // An edit next to the range does not touch it.
        let new = old.replace("line 6\n", "line six\n");
        assert_eq!(at(&old, &new, 4, 5), found(4, 5));
    }

    #[test]
    fn deleted_lines_are_outdated() {
        let old = text(10);
        let new = old.replace("line 4\nline 5\n", "");
        assert_eq!(at(&old, &new, 4, 5), Relocation::Outdated);
    }

    #[test]
    fn a_moved_block_is_found_again_by_content() {
        let old = "fn a() {\n    one();\n}\n\nfn b() {\n    two();\n}\n";
        let new = "fn b() {\n    two();\n}\n\nfn a() {\n    one();\n}\n";
        // `fn a` (lines 1-3) moved below `fn b`.
        assert_eq!(at(old, new, 1, 3), found(5, 7));
    }

    #[test]
    fn duplicates_prefer_matching_context() {
        let old = "a\nx\nb\n\nc\nx\nd\n";
        // The second `x` (line 6, between c and d) moves to the top of the file with its
        // context; the other `x` stays.
        let new = "c\nx\nd\n\na\nx\nb\n";
        assert_eq!(at(old, new, 6, 6), found(2, 2));
    }

    #[test]
    fn out_of_range_anchors_are_refused() {
        assert!(anchor_text("a\nb\n", LineRange { start: 2, end: 3 }).is_none());
        assert!(anchor_text("a\nb\n", LineRange { start: 0, end: 1 }).is_none());
        assert!(anchor_text("a\nb\n", LineRange { start: 2, end: 1 }).is_none());
    }
}
