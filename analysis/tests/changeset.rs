//! `ChangeSet` application and diffs against real directories: apply then apply the inverse
//! restores every byte, a conflict anywhere writes nothing, and the unified diff is one that
//! `git apply` accepts and that produces the same files as `apply`.

use hivesync_analysis::changeset::{
    ApplyError, apply, apply_to_text, content_hash, diff_files, read_base_texts,
    render_unified_diff, select_hunks,
};
use hivesync_protocol::{ChangeSet, Confidence, FileChange, TextEdit};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Every regular file under `root`, relative path → bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                if entry.file_name() != ".git" {
                    walk(root, &path, out);
                }
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn write_all(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(p, text).expect("write");
    }
}

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

fn create(path: &str, text: &str) -> FileChange {
    FileChange {
        path: path.into(),
        base_hash: None,
        edits: if text.is_empty() {
            vec![]
        } else {
            vec![edit(0, 0, text)]
        },
        delete: false,
    }
}

fn delete(path: &str, base: &str) -> FileChange {
    FileChange {
        path: path.into(),
        base_hash: Some(content_hash(base.as_bytes())),
        edits: vec![],
        delete: true,
    }
}

#[test]
fn conflict_in_the_last_file_leaves_every_file_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let files = [
        ("a.py", "def a():\n    pass\n"),
        ("b/b.py", "import a\n"),
        ("c.py", "x = 1\n"),
        ("gone.py", "bye\n"),
        ("z.py", "changed on disk\n"),
    ];
    write_all(root, &files);
    let before = snapshot(root);
    let cs = ChangeSet {
        title: "Rename a".into(),
        files: vec![
            modify("a.py", files[0].1, vec![edit(4, 5, "alpha")]),
            modify("b/b.py", files[1].1, vec![edit(7, 8, "alpha")]),
            create("new/created.py", "fresh\n"),
            delete("gone.py", files[3].1),
            modify(
                "z.py",
                "what the change expected\n",
                vec![edit(0, 4, "CHANGED")],
            ),
        ],
    };
    let err = apply(root, &cs).expect_err("the last file conflicts");
    let ApplyError::Conflict(conflicts) = &err else {
        panic!("expected a conflict, got {err}");
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].path, "z.py");
    assert_eq!(
        conflicts[0].expected.as_deref(),
        Some(content_hash(b"what the change expected\n").as_str())
    );
    assert_eq!(
        conflicts[0].found.as_deref(),
        Some(content_hash(files[4].1.as_bytes()).as_str())
    );
    let msg = err.to_string();
    assert!(msg.contains("z.py changed since"), "{msg}");
    assert_eq!(
        snapshot(root),
        before,
        "no file was written, created or deleted"
    );
    assert!(!root.join("new").exists());
}

#[test]
fn apply_then_inverse_with_create_delete_and_nested_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_all(
        root,
        &[("src/lib.rs", "fn foo() {}\n"), ("old.rs", "// old\n")],
    );
    let before = snapshot(root);
    let cs = ChangeSet {
        title: "Move".into(),
        files: vec![
            modify("src/lib.rs", "fn foo() {}\n", vec![edit(3, 6, "bar")]),
            create("src/deep/er/new.rs", "pub fn new() {}\n"),
            create("empty.txt", ""),
            delete("old.rs", "// old\n"),
        ],
    };
    let inverse = apply(root, &cs).expect("applies");
    let after = snapshot(root);
    assert_eq!(after["src/lib.rs"], b"fn bar() {}\n");
    assert_eq!(after["src/deep/er/new.rs"], b"pub fn new() {}\n");
    assert_eq!(after["empty.txt"], b"");
    assert!(!after.contains_key("old.rs"));
    assert_eq!(inverse.title, "Revert \"Move\"");
    assert!(!inverse.is_empty());

    // Applying the same change again conflicts: its bases are gone.
    assert!(matches!(apply(root, &cs), Err(ApplyError::Conflict(_))));

    let again = apply(root, &inverse).expect("inverse applies");
    assert_eq!(snapshot(root), before);
    // The inverse of the inverse is the original change's effect again.
    apply(root, &again).expect("redo applies");
    assert_eq!(snapshot(root), after);
}

#[test]
fn read_base_texts_checks_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_all(dir.path(), &[("a", "one\n"), ("b", "two\n")]);
    let cs = ChangeSet {
        title: "t".into(),
        files: vec![modify("a", "one\n", vec![]), modify("b", "TWO\n", vec![])],
    };
    let err = read_base_texts(dir.path(), &cs).expect_err("b differs");
    assert!(err.to_string().contains("b changed since"), "{err}");
    let ok = ChangeSet {
        title: "t".into(),
        files: vec![modify("a", "one\n", vec![]), create("c", "x")],
    };
    let texts = read_base_texts(dir.path(), &ok).expect("reads");
    assert_eq!(
        texts,
        BTreeMap::from([("a".to_owned(), "one\n".to_owned())])
    );
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs")
}

#[test]
fn unified_diff_applies_with_git_and_matches_apply() {
    let base_files: Vec<(&str, &str)> = vec![
        (
            "src/main.py",
            "import os\n\ndef main():\n    print('héllo')\n    return 0\n\n\n\n\n\n\n\nif __name__ == '__main__':\n    main()\n",
        ),
        ("crlf.txt", "one\r\ntwo\r\nthree\r\n"),
        ("no_newline.txt", "first\nlast"),
        ("gone.txt", "delete me\n"),
        ("gone_empty.txt", ""),
        ("quoted \"name\".txt", "q\n"),
        ("spaced name.txt", "s\n"),
        ("src/ünï.py", "u = 1\n"),
    ];
    let py = base_files[0].1;
    let def = py.find("main():").expect("def");
    let hello = py.find("héllo").expect("hello");
    let call = py.rfind("main()").expect("call");
    let cs = ChangeSet {
        title: "Mixed".into(),
        files: vec![
            modify(
                "src/main.py",
                py,
                vec![
                    edit(def, def + 4, "entry"),
                    edit(hello, hello + "héllo".len(), "hello"),
                    edit(call, call + 4, "entry"),
                ],
            ),
            modify(
                "crlf.txt",
                base_files[1].1,
                vec![edit(5, 8, "TWO\r\nand a half")],
            ),
            modify("no_newline.txt", base_files[2].1, vec![edit(6, 10, "LAST")]),
            delete("gone.txt", base_files[3].1),
            delete("gone_empty.txt", ""),
            modify("quoted \"name\".txt", "q\n", vec![edit(0, 1, "Q")]),
            modify("spaced name.txt", "s\n", vec![edit(2, 2, "added")]),
            modify("src/ünï.py", "u = 1\n", vec![edit(4, 5, "2")]),
            create("added/new.txt", "new file\nno newline"),
            create("added/empty.txt", ""),
        ],
    };

    let ours = tempfile::tempdir().expect("tempdir");
    write_all(ours.path(), &base_files);
    let texts = read_base_texts(ours.path(), &cs).expect("bases");
    let diff = render_unified_diff(&texts, &cs).expect("diff");
    apply(ours.path(), &cs).expect("applies");

    let theirs = tempfile::tempdir().expect("tempdir");
    write_all(theirs.path(), &base_files);
    assert!(git(theirs.path(), &["init", "-q"]).status.success());
    let patch = theirs.path().join(".git").join("change.patch");
    fs::write(&patch, &diff).expect("write patch");
    let patch = patch.to_string_lossy().into_owned();
    let check = git(theirs.path(), &["apply", "--check", &patch]);
    assert!(
        check.status.success(),
        "git apply --check failed: {}\n{diff}",
        String::from_utf8_lossy(&check.stderr)
    );
    let applied = git(theirs.path(), &["apply", &patch]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(snapshot(theirs.path()), snapshot(ours.path()), "{diff}");
}

#[test]
fn selecting_every_hunk_gives_the_same_files() {
    let base = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
    let cs = ChangeSet {
        title: "t".into(),
        files: vec![
            modify("x", base, vec![edit(0, 1, "A"), edit(22, 23, "L")]),
            create("y", "new\n"),
        ],
    };
    let texts = BTreeMap::from([("x".to_owned(), base.to_owned())]);
    let ids: Vec<String> = diff_files(&texts, &cs)
        .expect("diff")
        .iter()
        .flat_map(|f| f.hunks.iter().map(|h| h.id.clone()))
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(select_hunks(&cs, &texts, &ids).expect("select"), cs);
    let only_create = select_hunks(&cs, &texts, &ids[2..]).expect("select");
    assert_eq!(only_create.files, vec![cs.files[1].clone()]);
}

// ---------------------------------------------------------------------------------------------
// Property: apply then apply(inverse) restores every byte.

#[derive(Debug, Clone)]
enum Action {
    Keep,
    Edit(Vec<(usize, usize, String, bool)>),
    Delete,
}

fn text() -> &'static str {
    "[a-zé€😀\n\r\t ]{0,40}"
}

/// Short lines from a tiny alphabet: many equal lines, so the line diff has choices to make.
fn lines() -> &'static str {
    "[ab\n\n\r€]{0,30}"
}

fn action() -> impl Strategy<Value = Action> {
    action_with(text())
}

fn action_with(text: &'static str) -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => Just(Action::Keep),
        4 => prop::collection::vec((any::<usize>(), any::<usize>(), text, any::<bool>()), 0..5)
            .prop_map(Action::Edit),
        1 => Just(Action::Delete),
    ]
}

/// Random raw edits turned into valid ones: positions on character boundaries, sorted,
/// overlapping ones dropped.
fn normalise(base: &str, raw: &[(usize, usize, String, bool)]) -> Vec<TextEdit> {
    let bounds: Vec<usize> = base
        .char_indices()
        .map(|(i, _)| i)
        .chain([base.len()])
        .collect();
    let mut edits: Vec<TextEdit> = raw
        .iter()
        .map(|(a, b, t, probable)| {
            let x = bounds[a % bounds.len()];
            let y = bounds[b % bounds.len()];
            TextEdit {
                start: x.min(y),
                end: x.max(y),
                new_text: t.clone(),
                confidence: if *probable {
                    Confidence::Probable
                } else {
                    Confidence::Exact
                },
            }
        })
        .collect();
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out: Vec<TextEdit> = Vec::new();
    for e in edits {
        if out.last().is_none_or(|p| e.start >= p.end) {
            out.push(e);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn apply_then_inverse_restores_every_byte(
        files in prop::collection::vec((text(), action()), 1..6),
        creates in prop::collection::vec(text(), 0..3),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let mut changes = Vec::new();
        let mut expected = BTreeMap::new();
        for (i, (content, action)) in files.iter().enumerate() {
            let path = if i % 2 == 0 { format!("f{i}.txt") } else { format!("d/f{i}.txt") };
            write_all(root, &[(path.as_str(), content.as_str())]);
            match action {
                Action::Keep => {
                    expected.insert(path.clone(), content.clone().into_bytes());
                }
                Action::Delete => changes.push(delete(&path, content)),
                Action::Edit(raw) => {
                    let edits = normalise(content, raw);
                    let new = apply_to_text(content, &edits).expect("valid edits");
                    expected.insert(path.clone(), new.into_bytes());
                    changes.push(modify(&path, content, edits));
                }
            }
        }
        for (i, content) in creates.iter().enumerate() {
            let path = format!("new/sub{i}/c{i}.txt");
            expected.insert(path.clone(), content.clone().into_bytes());
            changes.push(create(&path, content));
        }
        let before = snapshot(root);
        let cs = ChangeSet { title: "random".into(), files: changes };

        // The diff and hunk selection agree with apply.
        let texts = read_base_texts(root, &cs).expect("bases");
        let ids: Vec<String> = diff_files(&texts, &cs)
            .expect("diff")
            .into_iter()
            .flat_map(|f| f.hunks.into_iter().map(|h| h.id))
            .collect();
        let selected = select_hunks(&cs, &texts, &ids).expect("select");
        let odd: Vec<String> = ids.iter().skip(1).step_by(2).cloned().collect();
        let partial = select_hunks(&cs, &texts, &odd).expect("select some");

        let inverse = apply(root, &cs).expect("applies");
        prop_assert_eq!(&snapshot(root), &expected);
        let redo = apply(root, &inverse).expect("inverse applies");
        prop_assert_eq!(&snapshot(root), &before);
        let undo = apply(root, &redo).expect("inverse of the inverse applies");
        prop_assert_eq!(&snapshot(root), &expected);
        apply(root, &undo).expect("its inverse applies");
        prop_assert_eq!(&snapshot(root), &before);

        let undo_selected = apply(root, &selected).expect("all hunks apply");
        prop_assert_eq!(&snapshot(root), &expected);
        apply(root, &undo_selected).expect("their inverse applies");
        prop_assert_eq!(&snapshot(root), &before);

        let undo_partial = apply(root, &partial).expect("some hunks apply");
        apply(root, &undo_partial).expect("their inverse applies");
        prop_assert_eq!(&snapshot(root), &before);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `git apply` of the rendered diff gives the same files as `apply` (random text with
    /// CRLF, lone CR, multibyte characters and missing final newlines).
    #[test]
    fn git_applies_the_rendered_diff_like_apply(
        files in prop::collection::vec((lines(), action_with(lines())), 1..4),
        creates in prop::collection::vec(lines(), 0..2),
    ) {
        let ours = tempfile::tempdir().expect("tempdir");
        let theirs = tempfile::tempdir().expect("tempdir");
        let mut changes = Vec::new();
        for (i, (content, action)) in files.iter().enumerate() {
            let path = format!("d{}/f{i}.txt", i % 2);
            write_all(ours.path(), &[(path.as_str(), content.as_str())]);
            write_all(theirs.path(), &[(path.as_str(), content.as_str())]);
            match action {
                Action::Keep => {}
                Action::Delete => changes.push(delete(&path, content)),
                Action::Edit(raw) => changes.push(modify(&path, content, normalise(content, raw))),
            }
        }
        for (i, content) in creates.iter().enumerate() {
            changes.push(create(&format!("new/c{i}.txt"), content));
        }
        let cs = ChangeSet { title: "random".into(), files: changes };
        let texts = read_base_texts(ours.path(), &cs).expect("bases");
        let diff = render_unified_diff(&texts, &cs).expect("diff");
        apply(ours.path(), &cs).expect("applies");

        prop_assert!(git(theirs.path(), &["init", "-q"]).status.success());
        let patch = theirs.path().join(".git").join("change.patch");
        fs::write(&patch, &diff).expect("write patch");
        let patch = patch.to_string_lossy().into_owned();
        if !diff.is_empty() {
            let applied = git(theirs.path(), &["apply", "--whitespace=nowarn", &patch]);
            prop_assert!(
                applied.status.success(),
                "git apply failed: {}\n{}",
                String::from_utf8_lossy(&applied.stderr),
                diff
            );
        }
        prop_assert_eq!(snapshot(theirs.path()), snapshot(ours.path()), "{}", diff);
    }
}
