//! Loading a directory: which files become part of the analysis and which are left out (with a
//! reason), so a project's answers never depend on binaries, other encodings or minified
//! bundles.

use hivesync_analysis::AnalysisHost;
use hivesync_analysis::db::{is_minified_path, looks_minified, source_text};

fn write(root: &std::path::Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// A minified bundle: one 6 KB line of statements.
fn bundle() -> String {
    (0..300)
        .map(|i| format!("var a{i}=b({i});"))
        .collect::<String>()
}

#[test]
fn minified_bundles_binaries_and_other_encodings_are_left_out_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "app.js", b"import { f } from './lib.js';\nf();\n");
    write(root, "lib.js", b"export function f() { return 1; }\n");
    write(root, "static/vendor/jquery.min.js", bundle().as_bytes());
    write(root, "static/bundle.js", bundle().as_bytes());
    write(root, "blob.py", b"x = 1\0\n");
    write(root, "latin1.py", b"s = '\xe9'\n");
    // Long lines in a Python file are data, not minification.
    write(
        root,
        "data.py",
        format!("DATA = '{}'\n", "x".repeat(8000)).as_bytes(),
    );

    let (host, report) = AnalysisHost::load_dir(root).expect("load");
    let analysis = host.snapshot();
    let mut skipped: Vec<(String, bool)> = report
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.minified))
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("blob.py".to_string(), false),
            ("latin1.py".to_string(), false),
            ("static/bundle.js".to_string(), true),
            ("static/vendor/jquery.min.js".to_string(), true),
        ]
    );
    for s in &report.skipped {
        assert!(analysis.text(&s.path).is_none(), "{} was loaded", s.path);
        assert!(!s.reason.is_empty());
    }
    // Minified bundles are counted as other files, not as JavaScript.
    assert_eq!(report.files_by_language.get("javascript"), Some(&2));
    assert_eq!(report.other_files, 2);
    for kept in ["app.js", "lib.js", "data.py"] {
        assert!(analysis.text(kept).is_some(), "{kept} was left out");
    }
    // The import of a kept file still resolves.
    let defs = analysis
        .definition(&hivesync_analysis::FilePosition {
            path: "app.js".into(),
            line: 2,
            column: 1,
        })
        .expect("definition");
    assert_eq!(defs.len(), 1, "{defs:?}");
    assert_eq!(defs[0].path, "lib.js");
}

#[test]
fn minified_by_name_or_by_text() {
    assert!(is_minified_path("a/jquery.min.js"));
    assert!(is_minified_path("x.min.mjs"));
    assert!(is_minified_path("select2-min.js"));
    assert!(!is_minified_path("min.js"));
    assert!(!is_minified_path("admin.js"));
    assert!(!is_minified_path("a.min.py"));
    assert!(looks_minified("b.js", &bundle()));
    assert!(looks_minified("b.ts", &bundle()));
    assert!(!looks_minified("b.py", &bundle()));
    // Short files and ordinary code are never minified.
    assert!(!looks_minified("b.js", "var a=1;"));
    let code = "function f(a) {\n  return a + 1;\n}\n".repeat(200);
    assert!(!looks_minified("b.js", &code));
    let err = source_text("b.js", bundle().into_bytes()).expect_err("minified");
    assert!(err.minified && err.reason.contains("minified"), "{err:?}");
    assert_eq!(
        source_text("c.js", b"let a;\n".to_vec()).expect("text"),
        "let a;\n"
    );
}
