//! `hivesync analyze` end to end on a small multi-file Python project: stats, definitions,
//! references, rename (diff, JSON, refusal), and clear errors for bad input. Files are never
//! written by any of these commands.

use hivesync_e2e::{hivesync, text};
use serde_json::Value;
use std::path::Path;

const SHAPES: &str = "class Shape:\n    def area(self):\n        return 0\n\ndef make_shape():\n    return Shape()\n";
const APP: &str = "from pkg.shapes import Shape, make_shape\n\ndef main():\n    s = make_shape()\n    print(Shape().area())\n    return s\n";

fn project(home: &Path) -> std::path::PathBuf {
    let root = home.join("proj");
    std::fs::create_dir_all(root.join("pkg")).expect("mkdir");
    std::fs::write(root.join("pkg/__init__.py"), "").expect("write");
    std::fs::write(root.join("pkg/shapes.py"), SHAPES).expect("write");
    std::fs::write(root.join("app.py"), APP).expect("write");
    std::fs::write(root.join("latin1.py"), b"x = '\xe9'\n").expect("write");
    std::fs::write(root.join("README.md"), "# demo\n").expect("write");
    root
}

fn run(home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = hivesync(home).args(args).output().expect("runs");
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn locations(v: &Value) -> Vec<String> {
    v["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            format!(
                "{}:{}:{}-{}:{} {}",
                l["path"].as_str().unwrap_or("?"),
                l["line"],
                l["column"],
                l["end_line"],
                l["end_column"],
                l["confidence"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn stats_json_counts_files_definitions_and_references() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = project(home.path());
    let (code, stdout, stderr) = run(
        home.path(),
        &["analyze", "stats", root.to_str().expect("utf-8"), "--json"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let v = json(&stdout);
    assert_eq!(v["files"], 5, "{v}");
    assert_eq!(v["files_by_language"]["python"], 4, "{v}");
    assert_eq!(v["definitions"], 6, "{v}");
    assert!(
        v["references"]["exact"].as_u64().expect("exact") >= 6,
        "{v}"
    );
    assert!(v["references"]["probable"].as_u64().is_some(), "{v}");
    assert_eq!(v["references"]["unresolved"], 0, "{v}");
    assert_eq!(v["parse_errors"], 0, "{v}");
    assert!(v["elapsed_ms"].as_f64().is_some(), "{v}");
    assert!(v["phases_ms"]["index"].as_f64().is_some(), "{v}");
    assert_eq!(v["skipped"][0]["path"], "latin1.py", "{v}");
}

#[test]
fn defs_and_refs_json_are_sorted_root_relative_and_1_based() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = project(home.path());
    let root_arg = root.to_str().expect("utf-8");
    let (code, stdout, stderr) = run(
        home.path(),
        &[
            "analyze",
            "defs",
            "app.py:5:11",
            "--root",
            root_arg,
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(locations(&json(&stdout)), ["pkg/shapes.py:1:7-1:12 exact"]);

    let (code, stdout, stderr) = run(
        home.path(),
        &[
            "analyze",
            "refs",
            "pkg/shapes.py:1:7",
            "--root",
            root_arg,
            "--include-declaration",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        locations(&json(&stdout)),
        [
            "app.py:1:24-1:29 exact",
            "app.py:5:11-5:16 exact",
            "pkg/shapes.py:1:7-1:12 exact",
            "pkg/shapes.py:6:12-6:17 exact",
        ]
    );
    let (code, stdout, _) = run(
        home.path(),
        &[
            "analyze",
            "refs",
            "pkg/shapes.py:1:7",
            "--root",
            root_arg,
            "--json",
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!(locations(&json(&stdout)).len(), 3);
}

#[test]
fn rename_prints_a_diff_and_never_writes() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = project(home.path());
    let root_arg = root.to_str().expect("utf-8");
    let (code, stdout, stderr) = run(
        home.path(),
        &[
            "analyze",
            "rename",
            "pkg/shapes.py:1:7",
            "Form",
            "--root",
            root_arg,
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    for needle in [
        "--- a/app.py",
        "+++ b/app.py",
        "-from pkg.shapes import Shape, make_shape",
        "+from pkg.shapes import Form, make_shape",
        "+    print(Form().area())",
        "--- a/pkg/shapes.py",
        "-class Shape:",
        "+class Form:",
        "+    return Form()",
    ] {
        assert!(stdout.contains(needle), "diff lacks {needle:?}:\n{stdout}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("pkg/shapes.py")).expect("read"),
        SHAPES
    );
    assert_eq!(
        std::fs::read_to_string(root.join("app.py")).expect("read"),
        APP
    );

    let (code, stdout, stderr) = run(
        home.path(),
        &[
            "analyze",
            "rename",
            "pkg/shapes.py:1:7",
            "Form",
            "--root",
            root_arg,
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let cs = json(&stdout);
    let paths: Vec<&str> = cs["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(paths, ["app.py", "pkg/shapes.py"]);
    assert_eq!(cs["files"][0]["edits"][0]["new_text"], "Form");
    assert_eq!(cs["files"][0]["edits"][0]["confidence"], "exact");
    assert_eq!(
        cs["files"][1]["base_hash"].as_str().map(str::len),
        Some(64),
        "{cs}"
    );
}

#[test]
fn refused_rename_exits_1_with_the_reason() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = project(home.path());
    let root_arg = root.to_str().expect("utf-8");
    let (code, stdout, stderr) = run(
        home.path(),
        &[
            "analyze",
            "rename",
            "pkg/shapes.py:1:7",
            "class",
            "--root",
            root_arg,
        ],
    );
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("`class` is a keyword"), "{stderr}");

    let (code, _, stderr) = run(
        home.path(),
        &[
            "analyze",
            "rename",
            "pkg/shapes.py:1:7",
            "make_shape",
            "--root",
            root_arg,
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("pkg/shapes.py:5:5"),
        "names the conflict: {stderr}"
    );
}

#[test]
fn bad_input_gives_clear_errors_not_panics() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = project(home.path());
    let root_arg = root.to_str().expect("utf-8");
    let cases: &[(&[&str], &str)] = &[
        (
            &["analyze", "defs", "app.py:99:1", "--root", root_arg],
            "outside the file",
        ),
        (
            &["analyze", "defs", "app.py:0:1", "--root", root_arg],
            "starting at 1",
        ),
        (
            &["analyze", "defs", "app.py", "--root", root_arg],
            "PATH:LINE:COLUMN",
        ),
        (
            &["analyze", "defs", "nope.py:1:1", "--root", root_arg],
            "no such file",
        ),
        (
            &["analyze", "defs", "latin1.py:1:1", "--root", root_arg],
            "not valid UTF-8",
        ),
        (
            &["analyze", "defs", "README.md:1:1", "--root", root_arg],
            "not a source file",
        ),
        (
            &["analyze", "stats", "/definitely/not/here"],
            "does not exist",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = run(home.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Every file under `dir` with its content, for "nothing was written" checks.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_index_cache_is_reused_across_runs_and_never_written_with_no_cache() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = project(home.path());
    let root_s = root.to_str().expect("utf-8");
    let before = tree(&root);
    let cache_dir = home.path().join(".cache/hivesync");

    // --no-cache reads and writes nothing.
    let (code, stdout, stderr) = run(
        home.path(),
        &["analyze", "stats", root_s, "--json", "--no-cache"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(json(&stdout)["cache"].is_null(), "{stdout}");
    let (code, _, stderr) = run(
        home.path(),
        &[
            "analyze",
            "refs",
            "app.py:4:9",
            "--root",
            root_s,
            "--no-cache",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !cache_dir.exists(),
        "--no-cache wrote {}",
        cache_dir.display()
    );

    // The first run writes the cache (in the user's cache directory), the second uses it.
    let (code, stdout, stderr) = run(home.path(), &["analyze", "stats", root_s, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let cold = json(&stdout);
    assert_eq!(cold["cache"]["hits"], 0, "{stdout}");
    assert_eq!(cold["cache"]["misses"], 3, "{stdout}");
    assert_eq!(cold["cache"]["stored"]["written"], true, "{stdout}");
    assert!(cache_dir.join("index").is_dir());
    let (code, stdout, stderr) = run(home.path(), &["analyze", "stats", root_s, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let warm = json(&stdout);
    assert_eq!(warm["cache"]["hits"], 3, "{stdout}");
    assert_eq!(warm["cache"]["misses"], 0, "{stdout}");
    assert_eq!(warm["cache"]["stored"]["written"], false, "{stdout}");
    for key in ["definitions", "references", "parse_errors", "files"] {
        assert_eq!(cold[key], warm[key], "{key}");
    }
    let refs = |home: &Path, extra: &[&str]| {
        let mut args = vec!["analyze", "refs", "app.py:4:9", "--root", root_s, "--json"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run(home, &args);
        assert_eq!(code, Some(0), "{stderr}");
        locations(&json(&stdout))
    };
    assert_eq!(refs(home.path(), &[]), refs(home.path(), &["--no-cache"]));

    // HIVESYNC_NO_CACHE=1 turns it off too.
    let other_home = tempfile::tempdir().expect("tempdir");
    let out = hivesync(other_home.path())
        .env("HIVESYNC_NO_CACHE", "1")
        .args(["analyze", "stats", root_s])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(
        text(&out).0.contains("index cache   off"),
        "{}",
        text(&out).0
    );
    assert!(!other_home.path().join(".cache").exists());

    // The project itself was never written.
    assert_eq!(tree(&root), before);
}
