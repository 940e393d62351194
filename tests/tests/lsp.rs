//! `hivesync lsp` end to end: the real binary, spoken to over stdio as an editor would.
//! initialize (encoding negotiation, watcher registration, indexing progress) → didOpen → every
//! feature → incremental didChange → updated results; watched-file changes on disk; diagnostics;
//! configuration; cancellation; malformed input; shutdown/exit with nothing but protocol on
//! stdout.

use hivesync_e2e::lsp::{LspClient, uri};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const SHAPES: &str = "\
class Shape:
    \"\"\"A shape.\"\"\"

    def area(self, scale):
        return 0


def make_shape(width, height):
    return Shape()
";

const APP: &str = "\
from pkg.shapes import Shape, make_shape
import pkg.missing


def main():
    s = make_shape(3, 4)
    width = 2
    t = make_shape(width, 5)
    s.area(2)
    return Shape(), t
";

fn project(home: &Path) -> PathBuf {
    let root = home.join("proj");
    std::fs::create_dir_all(root.join("pkg")).expect("mkdir");
    std::fs::write(root.join("pkg/__init__.py"), "").expect("write");
    std::fs::write(root.join("pkg/shapes.py"), SHAPES).expect("write");
    std::fs::write(root.join("app.py"), APP).expect("write");
    root
}

fn full_caps() -> Value {
    json!({
        "general": {"positionEncodings": ["utf-16"]},
        "window": {"workDoneProgress": true, "showDocument": {"support": true}},
        "workspace": {
            "didChangeWatchedFiles": {"dynamicRegistration": true},
            "workspaceEdit": {"documentChanges": true, "changeAnnotationSupport": {"groupsOnLabel": true}},
            "codeLens": {"refreshSupport": true},
            "inlayHint": {"refreshSupport": true}
        }
    })
}

/// A started, indexed server on the Python project.
fn start(home: &Path) -> (LspClient, PathBuf) {
    let root = project(home);
    let mut c = LspClient::start(home);
    c.initialize(&root, full_caps(), json!({}));
    c.wait_indexed();
    (c, root)
}

fn pos(path: &Path, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri(path)}, "position": {"line": line, "character": character}})
}

/// (file name, line, character) of each location.
fn places(locations: &Value) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = locations
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {locations}"))
        .iter()
        .map(|l| {
            let u = l["uri"].as_str().expect("uri");
            let name = u.rsplit("/proj/").next().unwrap_or(u).to_owned();
            (
                name,
                l["range"]["start"]["line"].as_u64().expect("line"),
                l["range"]["start"]["character"]
                    .as_u64()
                    .expect("character"),
            )
        })
        .collect();
    out.sort();
    out
}

fn finish(c: LspClient) {
    let (status, violations) = c.shutdown();
    assert!(status.success(), "exit status {status:?}");
    assert!(violations.is_empty(), "non-protocol output: {violations:?}");
}

#[test]
fn initialize_negotiates_encoding_registers_watchers_and_reports_indexing() {
    let home = tempfile::tempdir().expect("tmp");
    let root = project(home.path());
    let mut c = LspClient::start(home.path());
    let mut caps = full_caps();
    caps["general"]["positionEncodings"] = json!(["utf-8", "utf-16"]);
    let init = c.initialize(&root, caps, json!({}));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(init["capabilities"]["textDocumentSync"]["change"], 2);
    assert_eq!(init["serverInfo"]["name"], "hivesync");
    let reg = c.wait_for("the watcher registration", |m| {
        m["method"] == "client/registerCapability"
    });
    assert_eq!(
        reg["params"]["registrations"][0]["method"],
        "workspace/didChangeWatchedFiles"
    );
    c.wait_indexed();
    let reports: Vec<String> = c
        .received
        .iter()
        .filter(|m| m["method"] == "$/progress")
        .filter_map(|m| m["params"]["value"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reports.iter().any(|r| r == "Indexing 3/3 files"),
        "{reports:?}"
    );
    finish(c);

    // Without UTF-8 on offer, positions are UTF-16.
    let mut c = LspClient::start(home.path());
    let init = c.initialize(&root, json!({}), json!({}));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");
    finish(c);
}

/// Requests sent right after `initialized`, while the project is still loading, wait for it:
/// a rename or references computed on a half-loaded project would miss files (or refuse a
/// rename of a name whose definition is not loaded yet as "defined outside the project").
#[test]
fn cross_file_requests_during_indexing_see_the_whole_project() {
    let home = tempfile::tempdir().expect("tmp");
    let root = project(home.path());
    for i in 0..300 {
        std::fs::write(
            root.join(format!("filler{i}.py")),
            format!("def filler_{i}(a):\n    return a\n").repeat(20),
        )
        .expect("write");
    }
    let mut c = LspClient::start(home.path());
    c.initialize(&root, full_caps(), json!({}));
    let app = root.join("app.py");
    c.open(&app, "python", APP);
    let mut params = pos(&app, 5, 10);
    params["newName"] = json!("build_shape");
    let rename = c.request("textDocument/rename", params);
    let mut refs = pos(&app, 5, 10);
    refs["context"] = json!({"includeDeclaration": true});
    let refs = c.result("textDocument/references", refs);
    let symbols = c.result("workspace/symbol", json!({"query": "filler_299"}));
    assert!(rename.get("error").is_none(), "{rename}");
    let edit = &rename["result"]["changes"];
    assert_eq!(
        edit[uri(&root.join("pkg/shapes.py"))]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(edit[uri(&app)].as_array().map(Vec::len), Some(3));
    assert_eq!(places(&refs).len(), 4);
    assert_eq!(symbols[0]["name"], "filler_299");
    finish(c);
}

#[test]
fn navigation_hover_and_symbols_on_python() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let app = root.join("app.py");
    let shapes = root.join("pkg/shapes.py");
    c.open(&app, "python", APP);

    // `make_shape` in `s = make_shape(3, 4)`.
    let defs = c.result("textDocument/definition", pos(&app, 5, 9));
    assert_eq!(places(&defs), vec![("pkg/shapes.py".into(), 7, 4)]);
    let decl = c.result("textDocument/declaration", pos(&app, 5, 9));
    assert_eq!(places(&decl), places(&defs));

    let mut with_decl = pos(&shapes, 7, 5);
    with_decl["context"] = json!({"includeDeclaration": true});
    let refs = c.result("textDocument/references", with_decl.clone());
    assert_eq!(
        places(&refs),
        vec![
            ("app.py".into(), 0, 30),
            ("app.py".into(), 5, 8),
            ("app.py".into(), 7, 8),
            ("pkg/shapes.py".into(), 7, 4),
        ]
    );
    with_decl["context"] = json!({"includeDeclaration": false});
    let refs = c.result("textDocument/references", with_decl);
    assert_eq!(places(&refs).len(), 3);

    let hover = c.result("textDocument/hover", pos(&app, 9, 12));
    assert_eq!(hover["contents"]["kind"], "markdown");
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.starts_with("```python\nclass Shape"), "{text}");
    assert!(text.contains("A shape."), "{text}");

    let symbols = c.result(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri(&shapes)}}),
    );
    assert_eq!(symbols[0]["name"], "Shape");
    assert_eq!(symbols[0]["kind"], 5);
    assert_eq!(symbols[0]["children"][0]["name"], "area");
    assert_eq!(symbols[0]["children"][0]["kind"], 6);
    assert_eq!(symbols[1]["name"], "make_shape");
    assert_eq!(
        symbols[1]["selectionRange"]["start"],
        json!({"line": 7, "character": 4})
    );

    let found = c.result("workspace/symbol", json!({"query": "mkshp"}));
    assert_eq!(found[0]["name"], "make_shape");
    assert_eq!(
        places(&json!([found[0]["location"]])),
        vec![("pkg/shapes.py".into(), 7, 4)]
    );
    finish(c);
}

/// The same requests on TypeScript: definition across an ES import, references, rename, and
/// positions counted in UTF-16 after a non-BMP character.
#[test]
fn typescript_definition_references_and_rename() {
    let home = tempfile::tempdir().expect("tmp");
    let root = home.path().join("web");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    let geometry = root.join("src/geometry.ts");
    let main = root.join("src/main.ts");
    std::fs::write(
        &geometry,
        "/** Area of a rectangle. */\nexport function area(w: number, h: number): number {\n  return w * h;\n}\n",
    )
    .expect("write");
    let main_text = "import { area } from \"./geometry\";\n\nconst label = \"😀\"; const a = area(2, 3);\nconsole.log(label, area(a, 1));\n";
    std::fs::write(&main, main_text).expect("write");
    let mut c = LspClient::start(home.path());
    c.initialize(&root, full_caps(), json!({}));
    c.wait_indexed();
    c.open(&main, "typescript", main_text);

    // `area` after the emoji starts at UTF-16 column 30 (29 characters: the emoji counts two).
    let defs = c.result("textDocument/definition", pos(&main, 2, 31));
    assert_eq!(defs.as_array().map(Vec::len), Some(1), "{defs}");
    assert_eq!(defs[0]["uri"], uri(&geometry));
    assert_eq!(
        defs[0]["range"]["start"],
        json!({"line": 1, "character": 16})
    );
    let mut refs = pos(&geometry, 1, 17);
    refs["context"] = json!({"includeDeclaration": true});
    let refs = c.result("textDocument/references", refs);
    assert_eq!(refs.as_array().map(Vec::len), Some(4), "{refs}");
    let hover = c.result("textDocument/hover", pos(&main, 3, 20));
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.starts_with("```typescript"), "{text}");
    assert!(text.contains("Area of a rectangle."), "{text}");

    let mut params = pos(&main, 3, 20);
    params["newName"] = json!("surface");
    let edit = c.result("textDocument/rename", params);
    let changes = edit["changes"].as_object().expect("changes");
    assert_eq!(changes[&uri(&main)].as_array().map(Vec::len), Some(3));
    assert_eq!(changes[&uri(&geometry)].as_array().map(Vec::len), Some(1));
    assert_eq!(
        changes[&uri(&main)][1]["range"]["start"],
        json!({"line": 2, "character": 30})
    );
    finish(c);
}

#[test]
fn rename_gives_exact_edits_and_clear_refusals() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let app = root.join("app.py");
    let shapes = root.join("pkg/shapes.py");
    c.open(&app, "python", APP);

    let prep = c.result("textDocument/prepareRename", pos(&app, 5, 10));
    assert_eq!(prep["placeholder"], "make_shape");
    assert_eq!(prep["range"]["start"], json!({"line": 5, "character": 8}));

    let mut params = pos(&app, 5, 10);
    params["newName"] = json!("build_shape");
    let edit = c.result("textDocument/rename", params);
    let changes = edit["changes"].as_object().expect("changes");
    assert_eq!(changes[&uri(&app)].as_array().map(Vec::len), Some(3));
    assert_eq!(changes[&uri(&shapes)].as_array().map(Vec::len), Some(1));
    assert_eq!(changes[&uri(&shapes)][0]["newText"], "build_shape");

    // `area` has a probable reference (`s.area`): rename edits only the exact ones.
    let mut params = pos(&shapes, 3, 9);
    params["newName"] = json!("surface");
    let edit = c.result("textDocument/rename", params);
    assert!(edit["changes"].get(uri(&app)).is_none(), "{edit}");

    let mut params = pos(&app, 5, 10);
    params["newName"] = json!("class");
    let refused = c.request("textDocument/rename", params);
    let message = refused["error"]["message"].as_str().expect("an error");
    assert!(message.contains("keyword"), "{message}");

    let mut params = pos(&app, 5, 10);
    params["newName"] = json!("Shape");
    let refused = c.request("textDocument/rename", params);
    let message = refused["error"]["message"].as_str().expect("an error");
    assert!(
        message.contains("conflict") && message.contains("Shape"),
        "{message}"
    );

    // A name from outside the project cannot be renamed: prepareRename says so.
    let outside = c.request("textDocument/prepareRename", pos(&app, 1, 9));
    assert!(
        outside["error"]["message"].as_str().is_some() || outside["result"].is_null(),
        "{outside}"
    );
    finish(c);
}

#[test]
fn incremental_edits_update_results_in_utf16() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let app = root.join("app.py");
    c.open(&app, "python", APP);
    let refs_of_make_shape = |c: &mut LspClient| {
        let mut p = pos(&app, 0, 32);
        p["context"] = json!({"includeDeclaration": false});
        places(&c.result("textDocument/references", p))
    };
    assert_eq!(refs_of_make_shape(&mut c).len(), 3);

    // Insert a line with an emoji (two UTF-16 units) before a new call.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri(&app), "version": 2},
            "contentChanges": [{
                "range": {"start": {"line": 6, "character": 0}, "end": {"line": 6, "character": 0}},
                "text": "    e = \"😀\"; u = make_shape(1, 2)\n"
            }]
        }),
    );
    let refs = refs_of_make_shape(&mut c);
    assert!(refs.contains(&("app.py".into(), 6, 18)), "{refs:?}");
    assert_eq!(refs.len(), 4);
    // Definition at the UTF-16 column of the new call.
    let defs = c.result("textDocument/definition", pos(&app, 6, 20));
    assert_eq!(places(&defs), vec![("pkg/shapes.py".into(), 7, 4)]);

    // Replace the new line's call with a plain value: back to three references.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri(&app), "version": 3},
            "contentChanges": [{
                "range": {"start": {"line": 6, "character": 18}, "end": {"line": 6, "character": 34}},
                "text": "1"
            }]
        }),
    );
    assert_eq!(refs_of_make_shape(&mut c).len(), 3);
    finish(c);
}

/// The byte offset of an LSP position (line, UTF-16 column) in `text`.
fn utf16_offset(text: &str, line: u32, character: u32) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line as usize)
        .map(str::len)
        .sum();
    let mut units = 0;
    for (i, ch) in text[start..].char_indices() {
        if units >= character as usize || ch == '\n' {
            return start + i;
        }
        units += ch.len_utf16();
    }
    text.len()
}

/// Everything the editor sees of `app.py`: outline, inlay hints, and definition and hover at
/// the start of every identifier, plus the references of `make_shape`.
fn answers(c: &mut LspClient, app: &Path, shapes: &Path, text: &str) -> Vec<Value> {
    let doc = json!({"textDocument": {"uri": uri(app)}});
    let mut out = vec![c.result("textDocument/documentSymbol", doc.clone())];
    let mut hints = doc;
    hints["range"] =
        json!({"start": {"line": 0, "character": 0}, "end": {"line": 99, "character": 0}});
    out.push(c.result("textDocument/inlayHint", hints));
    let mut refs = pos(shapes, 7, 5);
    refs["context"] = json!({"includeDeclaration": true});
    out.push(c.result("textDocument/references", refs));
    for (line, l) in text.lines().enumerate() {
        let mut units = 0u32;
        let mut prev = ' ';
        for ch in l.chars() {
            if (ch.is_alphabetic() || ch == '_') && !(prev.is_alphanumeric() || prev == '_') {
                let at = pos(app, line as u32, units);
                out.push(json!([
                    line,
                    units,
                    c.result("textDocument/definition", at.clone())
                ]));
                out.push(json!([line, units, c.result("textDocument/hover", at)]));
            }
            units += ch.len_utf16() as u32;
            prev = ch;
        }
    }
    out
}

/// One content change: start and end (line, UTF-16 column), new text.
type Change = ((u32, u32), (u32, u32), &'static str);

/// Incremental edits (re-parsed incrementally by the server) give exactly the answers of the
/// same text opened afresh (parsed in full): edits spanning lines, multi-byte and non-BMP
/// characters, an unclosed bracket, several changes in one notification.
#[test]
fn incremental_edits_answer_like_a_fresh_parse() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let app = root.join("app.py");
    let shapes = root.join("pkg/shapes.py");
    c.open(&app, "python", APP);
    let mut text = APP.to_owned();
    let edits: &[&[Change]] = &[
        &[((6, 0), (6, 0), "    é = \"😀\"\n    k = make_shape(\n")],
        &[((7, 19), (7, 19), "1, 2)")],
        // One line into two, across a non-BMP character (two UTF-16 units).
        &[((6, 9), (6, 12), "😀😀\"\n    m = Shape(")],
        &[((7, 14), (7, 14), ")")],
        // Joins three lines, then two changes in one notification.
        &[((8, 23), (10, 13), ", 2)\n    t = make_")],
        &[
            ((0, 0), (0, 0), "# ünïcode\n"),
            ((10, 4), (10, 4), "ç = s.area(1)\n    "),
        ],
    ];
    for (i, changes) in edits.iter().enumerate() {
        let mut content = Vec::new();
        for &((sl, sc), (el, ec), insert) in changes.iter() {
            let (start, end) = (utf16_offset(&text, sl, sc), utf16_offset(&text, el, ec));
            text.replace_range(start..end, insert);
            content.push(json!({
                "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
                "text": insert
            }));
        }
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri(&app), "version": i + 2}, "contentChanges": content}),
        );
    }
    assert!(
        text.contains("    k = make_shape(1, 2, 2)\n    ç = s.area(1)\n"),
        "{text}"
    );
    let incremental = answers(&mut c, &app, &shapes, &text);
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri(&app)}}),
    );
    c.open(&app, "python", &text);
    let fresh = answers(&mut c, &app, &shapes, &text);
    assert_eq!(incremental.len(), fresh.len());
    for (a, b) in incremental.iter().zip(&fresh) {
        assert_eq!(a, b, "in {text}");
    }
    // The edits are visible: `k = make_shape(1, 2, 2)` is one more reference.
    assert_eq!(fresh[2].as_array().map(Vec::len), Some(5), "{}", fresh[2]);
    finish(c);
}

#[test]
fn diagnostics_follow_edits() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let app = root.join("app.py");
    c.open(&app, "python", APP);
    let published = c.wait_for("diagnostics for app.py", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri(&app)
            && m["params"]["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
    });
    let d = &published["params"]["diagnostics"][0];
    assert_eq!(d["code"], "unresolved-import");
    assert_eq!(d["range"]["start"]["line"], 1);
    assert_eq!(d["source"], "hivesync");
    c.clear_received();
    // Delete the bad import: the next publication is empty.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri(&app), "version": 2},
            "contentChanges": [{
                "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}},
                "text": ""
            }]
        }),
    );
    let published = c.wait_for("new diagnostics", |m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri(&app)
    });
    assert_eq!(published["params"]["diagnostics"], json!([]));
    assert_eq!(published["params"]["version"], 2);
    finish(c);
}

#[test]
fn watched_file_changes_on_disk_update_results() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let shapes = root.join("pkg/shapes.py");
    let refs = |c: &mut LspClient| {
        let mut p = pos(&shapes, 7, 5);
        p["context"] = json!({"includeDeclaration": false});
        places(&c.result("textDocument/references", p))
    };
    assert_eq!(refs(&mut c).len(), 3);

    let other = root.join("other.py");
    std::fs::write(
        &other,
        "from pkg.shapes import make_shape\nmake_shape(1, 2)\n",
    )
    .expect("write");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&other), "type": 1}]}),
    );
    let found = refs(&mut c);
    assert!(found.contains(&("other.py".into(), 1, 0)), "{found:?}");
    assert_eq!(found.len(), 5);

    // A checkout that rewrites app.py without the calls.
    std::fs::write(root.join("app.py"), "x = 1\n").expect("write");
    std::fs::remove_file(&other).expect("rm");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [
            {"uri": uri(&root.join("app.py")), "type": 2},
            {"uri": uri(&other), "type": 3}
        ]}),
    );
    assert_eq!(refs(&mut c), Vec::new());
    finish(c);
}

/// An editor that never answers the server's requests (here the `workspace/codeLens/refresh`
/// and `workspace/inlayHint/refresh` a watched-file change or new settings cause) must not keep
/// the server alive after `exit`: no handler waits for those answers.
#[test]
fn exit_is_prompt_when_server_requests_go_unanswered() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    c.answer_server_requests = false;
    c.clear_received();
    std::fs::write(root.join("other.py"), "x = 1\n").expect("write");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&root.join("other.py")), "type": 1}]}),
    );
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"hivesync": {"codeLens": true}}}),
    );
    c.wait_for("a code lens refresh", |m| {
        m["method"] == "workspace/codeLens/refresh"
    });
    // The server goes on answering while its requests wait.
    let found = c.result("workspace/symbol", json!({"query": "make_shape"}));
    assert_eq!(found[0]["name"], "make_shape");
    let log = c.stderr.clone();
    finish(c);
    // The session ended by itself, not by the transport's deadline.
    let log = log.lock().expect("lock");
    assert!(!log.contains("abandoning"), "{log}");
}

/// The protocol's exit codes: 0 after `shutdown` then `exit` (see `finish`), 1 for `exit`
/// without `shutdown`.
#[test]
fn exit_without_shutdown_is_an_error_status() {
    let home = tempfile::tempdir().expect("tmp");
    let (c, _root) = start(home.path());
    let (status, violations) = c.exit();
    assert_eq!(status.code(), Some(1));
    assert!(violations.is_empty(), "{violations:?}");
}

#[test]
fn inlay_hints_code_lens_and_code_actions() {
    let home = tempfile::tempdir().expect("tmp");
    let root = project(home.path());
    let mut c = LspClient::start(home.path());
    let init = c.initialize(&root, full_caps(), json!({}));
    c.wait_indexed();
    let app = root.join("app.py");
    let shapes = root.join("pkg/shapes.py");
    c.open(&app, "python", APP);
    c.open(&shapes, "python", SHAPES);

    let range = json!({"start": {"line": 0, "character": 0}, "end": {"line": 20, "character": 0}});
    let hints = c.result(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri(&app)}, "range": range}),
    );
    let labels: Vec<(u64, u64, String)> = hints
        .as_array()
        .expect("hints")
        .iter()
        .map(|h| {
            (
                h["position"]["line"].as_u64().expect("line"),
                h["position"]["character"].as_u64().expect("char"),
                h["label"].as_str().expect("label").to_owned(),
            )
        })
        .collect();
    // `make_shape(width, 5)`: `width` names its parameter already; `s.area(2)` is probable.
    assert_eq!(
        labels,
        vec![
            (5, 19, "width:".into()),
            (5, 22, "height:".into()),
            (7, 26, "height:".into()),
        ]
    );

    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"hivesync": {"inlayHints": {"parameterNames": false}, "colour": 1}}}),
    );
    let hints = c.result(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri(&app)}, "range": range}),
    );
    assert_eq!(hints, json!([]));
    let warning = c.wait_for("a warning about the unknown key", |m| {
        m["method"] == "window/logMessage"
            && m["params"]["message"]
                .as_str()
                .is_some_and(|s| s.contains("colour"))
    });
    assert_eq!(warning["params"]["type"], 2);

    // Lenses come unresolved (ranges only; counting every definition's references on each
    // edit would be workspace-wide work); the editor resolves those it shows.
    let unresolved = c.result(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri(&shapes)}}),
    );
    assert_eq!(
        init["capabilities"]["codeLensProvider"]["resolveProvider"],
        true
    );
    let lenses: Vec<Value> = unresolved
        .as_array()
        .expect("lenses")
        .iter()
        .map(|l| {
            assert!(l.get("command").is_none(), "{l}");
            c.result("codeLens/resolve", l.clone())
        })
        .collect();
    let lenses = Value::Array(lenses);
    let titles: Vec<&str> = lenses
        .as_array()
        .expect("lenses")
        .iter()
        .filter_map(|l| l["command"]["title"].as_str())
        .collect();
    // `Shape`: the import in app.py, `Shape()` in app.py and `Shape()` in `make_shape`;
    // `make_shape`: the import and two calls; `area`: only `s.area(2)`, probable (the type of
    // `s` is not inferred). The declaration itself is not counted.
    assert_eq!(
        titles,
        vec!["3 references", "0 references (+1 probable)", "3 references"]
    );
    // Each lens agrees with "find references" (declaration excluded) at its position, and
    // carries those locations for the editor's references view.
    for lens in lenses.as_array().expect("lenses") {
        let start = &lens["range"]["start"];
        let mut p = pos(
            &shapes,
            start["line"].as_u64().expect("line") as u32,
            start["character"].as_u64().expect("character") as u32,
        );
        p["context"] = json!({"includeDeclaration": false});
        let refs = c.result("textDocument/references", p);
        assert_eq!(places(&lens["command"]["arguments"][2]), places(&refs));
        // The lens's command runs on the server too (editors without a references view of
        // their own send it there): it answers the same locations.
        let command = &lens["command"];
        assert!(
            init["capabilities"]["executeCommandProvider"]["commands"]
                .as_array()
                .is_some_and(|a| a.contains(&command["command"])),
            "{init}"
        );
        let ran = c.result(
            "workspace/executeCommand",
            json!({"command": command["command"], "arguments": command["arguments"]}),
        );
        assert_eq!(places(&ran), places(&refs));
    }
    // With a single reference (`area`'s probable one), the editor is asked to show it.
    let shown = c.wait_for("a showDocument request", |m| {
        m["method"] == "window/showDocument"
    });
    assert_eq!(shown["params"]["uri"], uri(&app));
    assert_eq!(
        shown["params"]["selection"]["start"],
        json!({"line": 8, "character": 6})
    );
    let foreign = c.request(
        "codeLens/resolve",
        json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}}),
    );
    assert_eq!(foreign["error"]["code"], -32602, "{foreign}");
    let unknown = c.request(
        "workspace/executeCommand",
        json!({"command": "hivesync.noSuchCommand", "arguments": []}),
    );
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("hivesync.noSuchCommand")),
        "{unknown}"
    );

    // "Add documentation comment" on `make_shape`.
    let actions = c.result(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": uri(&shapes)},
            "range": {"start": {"line": 7, "character": 5}, "end": {"line": 7, "character": 5}},
            "context": {"diagnostics": []}
        }),
    );
    let doc = actions
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["title"] == "Add documentation comment")
        .unwrap_or_else(|| panic!("no doc action in {actions}"));
    let edit = &doc["edit"]["changes"][uri(&shapes)][0];
    assert_eq!(edit["range"]["start"], json!({"line": 8, "character": 4}));
    assert!(
        edit["newText"]
            .as_str()
            .is_some_and(|t| t.starts_with("\"\"\"TODO: describe `make_shape`.")
                && t.contains("width: TODO.")),
        "{edit}"
    );

    // "Rename … including probable matches" on `area`: first a command (no name known yet).
    let area_actions = |c: &mut LspClient| {
        c.result(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri(&shapes)},
                "range": {"start": {"line": 3, "character": 9}, "end": {"line": 3, "character": 9}},
                "context": {"diagnostics": []}
            }),
        )
    };
    let actions = area_actions(&mut c);
    let rename = actions
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| {
            a["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Rename symbol across files"))
        })
        .unwrap_or_else(|| panic!("no probable rename action in {actions}"))
        .clone();
    assert_eq!(
        rename["command"]["command"],
        "hivesync.renameIncludingProbable"
    );

    // Executed with a name, it asks the editor to apply an edit whose probable part needs
    // confirmation.
    let mut args = rename["command"]["arguments"].clone();
    args.as_array_mut().expect("args").push(json!("surface"));
    let r = c.result(
        "workspace/executeCommand",
        json!({"command": "hivesync.renameIncludingProbable", "arguments": args}),
    );
    assert_eq!(r["applied"], true);
    let applied = c
        .applied_edits
        .last()
        .expect("an applyEdit request")
        .clone();
    let annotations = &applied["edit"]["changeAnnotations"];
    assert_eq!(annotations["hivesync.probable"]["needsConfirmation"], true);
    let app_edits = applied["edit"]["documentChanges"]
        .as_array()
        .expect("documentChanges")
        .iter()
        .find(|d| d["textDocument"]["uri"] == uri(&app))
        .expect("app.py is edited")
        .clone();
    assert_eq!(app_edits["edits"][0]["annotationId"], "hivesync.probable");
    assert_eq!(
        app_edits["edits"][0]["range"]["start"],
        json!({"line": 8, "character": 6})
    );

    // After a rename request, the action carries the edit for the last name directly.
    let mut params = pos(&shapes, 3, 9);
    params["newName"] = json!("surface");
    c.result("textDocument/rename", params);
    let actions = area_actions(&mut c);
    let direct = actions
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| {
            a["title"]
                .as_str()
                .is_some_and(|t| t.contains("to `surface`"))
        })
        .unwrap_or_else(|| panic!("no direct action in {actions}"));
    assert!(direct["edit"]["changeAnnotations"]["hivesync.probable"].is_object());

    // The editor applies that rename (exact edits): on the renamed method, the follow-up
    // action renames the probable matches of the old name, each for review.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri(&shapes), "version": 2},
            "contentChanges": [{
                "range": {"start": {"line": 3, "character": 8}, "end": {"line": 3, "character": 12}},
                "text": "surface"
            }]
        }),
    );
    let actions = area_actions(&mut c);
    let follow = actions
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["title"] == "Rename 1 probable match of `area` to `surface` (review each)")
        .unwrap_or_else(|| panic!("no follow-up action in {actions}"));
    let changes = follow["edit"]["documentChanges"]
        .as_array()
        .expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["textDocument"]["uri"], uri(&app));
    assert_eq!(changes[0]["edits"][0]["annotationId"], "hivesync.probable");
    assert_eq!(changes[0]["edits"][0]["newText"], "surface");
    finish(c);
}

#[test]
fn cancelled_and_outdated_requests_answer_request_cancelled_and_content_modified() {
    let home = tempfile::tempdir().expect("tmp");
    let root = home.path().join("big");
    std::fs::create_dir_all(&root).expect("mkdir");
    for i in 0..400 {
        let mut text = String::new();
        for j in 0..30 {
            text.push_str(&format!("def function_{i}_{j}(a, b):\n    return a\n\n"));
        }
        std::fs::write(root.join(format!("m{i}.py")), text).expect("write");
    }
    let mut c = LspClient::start(home.path());
    c.initialize(&root, full_caps(), json!({}));
    c.wait_indexed();
    let id = c.send_request("workspace/symbol", json!({"query": "f"}));
    c.notify("$/cancelRequest", json!({"id": id}));
    let response = c.response(id);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    // The server goes on answering.
    let found = c.result("workspace/symbol", json!({"query": "function_3_4"}));
    assert_eq!(found[0]["name"], "function_3_4");

    // An edit while a query runs on the old text: the query answers ContentModified (the
    // request took its snapshot before the edit was handled), and the next one sees the edit.
    let m0 = root.join("m0.py");
    let text = std::fs::read_to_string(&m0).expect("read");
    c.open(&m0, "python", &text);
    let id = c.send_request("workspace/symbol", json!({"query": "f"}));
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri(&m0), "version": 2},
            "contentChanges": [{"text": "def renamed_function(a):\n    return a\n"}]
        }),
    );
    let response = c.response(id);
    assert_eq!(response["error"]["code"], -32801, "{response}");
    let found = c.result("workspace/symbol", json!({"query": "renamed_function"}));
    assert_eq!(found[0]["name"], "renamed_function");
    finish(c);
}

#[test]
fn bad_input_gets_protocol_answers_and_never_a_crash() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let missing = root.join("nope.py");
    // Unopened, non-existent file.
    assert_eq!(
        c.result("textDocument/definition", pos(&missing, 0, 0)),
        Value::Null
    );
    assert_eq!(
        c.result(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri(&missing)}})
        ),
        Value::Null
    );
    // Positions outside the document.
    let app = root.join("app.py");
    assert_eq!(
        c.result("textDocument/hover", pos(&app, 999, 0)),
        Value::Null
    );
    // Past the end of a line: clamped to the line's end (the protocol's rule).
    let far = c.request("textDocument/definition", pos(&app, 0, 999));
    assert!(far.get("error").is_none(), "{far}");
    // A binary-ish document and a file type without a language.
    let bin = root.join("blob.py");
    c.open(&bin, "python", "\u{0}\u{1}\u{2}def \u{0}(");
    assert!(
        c.request("textDocument/hover", pos(&bin, 0, 4))
            .get("error")
            .is_none()
    );
    // A binary file on disk (a NUL byte; then one not UTF-8), announced by the watcher:
    // skipped by the engine, so requests on it answer nothing.
    let on_disk = root.join("packed.py");
    std::fs::write(&on_disk, b"def f():\n    return 1\n\x00\x01").expect("write");
    let latin1 = root.join("latin1.py");
    std::fs::write(&latin1, b"name = '\xe9t\xe9'\n").expect("write");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&on_disk), "type": 1}, {"uri": uri(&latin1), "type": 1}]}),
    );
    for file in [&on_disk, &latin1] {
        assert_eq!(
            c.result("textDocument/definition", pos(file, 0, 4)),
            Value::Null
        );
        assert_eq!(
            c.result(
                "textDocument/documentSymbol",
                json!({"textDocument": {"uri": uri(file)}})
            ),
            Value::Null
        );
    }
    // An existing file that is not open answers from disk.
    let shapes = root.join("pkg/shapes.py");
    let symbols = c.result(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri(&shapes)}}),
    );
    assert_eq!(symbols[1]["name"], "make_shape");
    // Positions outside the document, for each kind of request.
    let mut far_refs = pos(&app, 999, 0);
    far_refs["context"] = json!({"includeDeclaration": true});
    assert_eq!(c.result("textDocument/references", far_refs), Value::Null);
    let mut far_rename = pos(&app, 999, 3);
    far_rename["newName"] = json!("x");
    let refused = c.request("textDocument/rename", far_rename);
    let message = refused["error"]["message"].as_str().expect("an error");
    assert!(message.contains("line 999"), "{message}");
    // An edit of a document that was never opened is ignored; one out of range is clamped.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&missing), "version": 2},
               "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "x"}]}),
    );
    let readme = root.join("README.md");
    c.open(&readme, "markdown", "# hi\n");
    assert_eq!(
        c.result("textDocument/definition", pos(&readme, 0, 2)),
        Value::Null
    );
    // A non-file URI.
    let r = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": "untitled:Untitled-1"}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(r["result"], Value::Null);
    // Unknown method (a request gets MethodNotFound; a notification is ignored).
    let r = c.request("hivesync/noSuchMethod", json!({}));
    assert_eq!(r["error"]["code"], -32601);
    c.notify("hivesync/noSuchNotification", json!({}));
    // Malformed JSON-RPC: each gets an error response and the session goes on.
    for (bytes, why) in [
        (&b"Content-Length: 8\r\n\r\n{\"jsonrp"[..], "not JSON"),
        (b"Content-Length: nine\r\n\r\n", "Content-Length"),
        (b"Content-Length: 2\r\n\r\n\xff\xfe", "not UTF-8"),
    ] {
        c.send_raw(bytes);
        let e = c.error_without_id();
        assert_eq!(e["error"]["code"], -32700, "{e}");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{e}");
    }
    // JSON, but not a JSON-RPC message: Invalid Request, with the id it had.
    let body = br#"{"id":77,"method":"textDocument/hover"}"#;
    c.send_raw(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    c.send_raw(body);
    let e = c.response(77);
    assert_eq!(e["error"]["code"], -32600, "{e}");
    let defs = c.result("textDocument/definition", pos(&app, 5, 9));
    assert_eq!(places(&defs).len(), 1);
    finish(c);
}

/// The `.pack` files of the persisted index cache under `home` (the isolated user's cache).
fn cache_packs(home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(home.join(".cache/hivesync/index"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pack"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_restart_indexes_from_the_persisted_cache_with_the_same_answers() {
    let home = tempfile::tempdir().expect("tmp");
    let (mut c, root) = start(home.path());
    let app = root.join("app.py");
    let ask = |c: &mut LspClient| {
        let mut refs = pos(&app, 5, 10);
        refs["context"] = json!({"includeDeclaration": true});
        let refs = c.result("textDocument/references", refs);
        let def = c.result("textDocument/definition", pos(&app, 8, 6));
        (places(&refs), places(&def))
    };
    let first = ask(&mut c);
    assert_eq!(first.0.len(), 4, "{first:?}");
    // The cache is written in the background after indexing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while cache_packs(home.path()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no index cache was written"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    finish(c);
    let pack = cache_packs(home.path());
    assert_eq!(pack.len(), 1);
    assert!(
        !pack[0].starts_with(&root),
        "the cache is never in the project"
    );

    let mut c = LspClient::start(home.path());
    c.initialize(&root, full_caps(), json!({}));
    c.wait_indexed();
    assert_eq!(ask(&mut c), first);
    let log = c.stderr.lock().expect("lock").clone();
    assert!(log.contains("index cache 3 hits, 0 misses"), "{log}");
    finish(c);
}

#[test]
fn the_index_cache_can_be_turned_off() {
    let home = tempfile::tempdir().expect("tmp");
    let root = project(home.path());
    let mut c = LspClient::start(home.path());
    c.initialize(&root, full_caps(), json!({"indexCache": false}));
    c.wait_indexed();
    let refs = c.result("textDocument/definition", pos(&root.join("app.py"), 5, 10));
    assert_eq!(places(&refs).len(), 1);
    finish(c);
    assert!(!home.path().join(".cache/hivesync").exists());
}
