//! Incrementality and cancellation: an edit inside a function body re-runs queries of the
//! edited file only (counted through salsa's `WillExecute` events), a change to what a file
//! exports does reach its importers, and a write cancels queries running on a snapshot.

use hivesync_analysis::db::Execution;
use hivesync_analysis::{AnalysisError, AnalysisHost, FilePosition};
use salsa::plumbing::AsId;

const LIB: &str = "def helper(x):\n    return x + 1\n\nclass K:\n    def m(self):\n        self.v = 1\n        return self.v\n";
const LIB_BODY_EDIT: &str = "def helper(x):\n    y = x * 2\n    # a new line shifts every position below\n    return y + 1\n\nclass K:\n    def m(self):\n        self.v = 1\n        return self.v + 2\n";

fn host() -> AnalysisHost {
    let mut host = AnalysisHost::new();
    host.set_file("lib.py", LIB);
    host.set_file(
        "app.py",
        "from lib import helper, K\nprint(helper(2))\nK().m()\n",
    );
    host.set_file("other.py", "import lib\nlib.helper(3)\nlib.K.m\n");
    let a = host.snapshot();
    a.warm().expect("warm");
    a.stats().expect("stats");
    host
}

fn run_everything(host: &AnalysisHost) {
    let a = host.snapshot();
    a.stats().expect("stats");
    let refs = a
        .references(
            &FilePosition {
                path: "app.py".into(),
                line: 2,
                column: 7,
            },
            true,
        )
        .expect("refs");
    assert_eq!(refs.len(), 4, "{refs:?}");
}

#[test]
fn body_edit_recomputes_no_other_file() {
    let mut host = host();
    run_everything(&host);
    let lib = host.file("lib.py").expect("lib").as_id();
    host.record_executions(true);
    host.set_file("lib.py", LIB_BODY_EDIT);
    run_everything(&host);
    let executed: Vec<Execution> = host.take_executions();
    let others: Vec<&Execution> = executed.iter().filter(|e| e.key != lib).collect();
    assert!(others.is_empty(), "other files recomputed: {others:?}");
    for query in ["file_index", "file_interface", "file_resolution"] {
        assert!(
            executed.iter().any(|e| e.query == query),
            "{query} of the edited file should run: {executed:?}"
        );
    }
}

#[test]
fn interface_edit_reaches_importers() {
    let mut host = host();
    let app = host.file("app.py").expect("app").as_id();
    host.record_executions(true);
    host.set_file("lib.py", format!("{LIB}\ndef added(): pass\n"));
    run_everything(&host);
    let executed = host.take_executions();
    assert!(
        executed
            .iter()
            .any(|e| e.key == app && e.query == "file_resolution"),
        "{executed:?}"
    );
}

#[test]
fn a_write_cancels_running_queries() {
    let mut host = host();
    let snapshot = host.snapshot();
    let worker = std::thread::spawn(move || {
        loop {
            match snapshot.stats() {
                Err(AnalysisError::Cancelled) => return true,
                Err(other) => panic!("unexpected error {other}"),
                Ok(_) => std::thread::yield_now(),
            }
        }
    });
    // Blocks until the snapshot's query notices the cancellation and the thread drops it.
    host.set_file("app.py", "print(1)\n");
    assert!(worker.join().expect("worker"));
    assert_eq!(host.snapshot().stats().expect("stats").definitions, 6);
}

const GO_LIB: &str = "package lib\n\n// Ask answers.\nfunc Ask(x int) int {\n\treturn x + 1\n}\n\ntype K struct{ V int }\n\nfunc (k *K) M() int {\n\treturn k.V\n}\n";
const GO_LIB_BODY_EDIT: &str = "package lib\n\n// Ask answers.\nfunc Ask(x int) int {\n\ty := x * 2\n\t// a new line shifts every position below\n\treturn y + 1\n}\n\ntype K struct{ V int }\n\nfunc (k *K) M() int {\n\tk.V++\n\treturn k.V + 2\n}\n";

#[test]
fn go_body_edit_recomputes_no_other_file() {
    let mut host = AnalysisHost::new();
    host.set_file("go.mod", "module example.com/m\n");
    host.set_file("lib/lib.go", GO_LIB);
    host.set_file(
        "lib/more.go",
        "package lib\n\nfunc more() int { return Ask(1) }\n",
    );
    host.set_file(
        "main.go",
        "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() {\n\tvar k lib.K\n\tk.M()\n\tlib.Ask(2)\n}\n",
    );
    let refs = |host: &AnalysisHost| {
        let a = host.snapshot();
        a.stats().expect("stats");
        a.references(
            &FilePosition {
                path: "main.go".into(),
                line: 8,
                column: 6,
            },
            true,
        )
        .expect("refs")
        .len()
    };
    assert_eq!(refs(&host), 3);
    let lib = host.file("lib/lib.go").expect("lib").as_id();
    host.record_executions(true);
    host.set_file("lib/lib.go", GO_LIB_BODY_EDIT);
    assert_eq!(refs(&host), 3);
    let executed = host.take_executions();
    let others: Vec<&Execution> = executed.iter().filter(|e| e.key != lib).collect();
    assert!(others.is_empty(), "other files recomputed: {others:?}");
    assert!(
        executed.iter().any(|e| e.query == "file_resolution"),
        "{executed:?}"
    );
}

const TS_LIB: &str = "/** Helps. */\nexport function helper(x: number): number {\n  return x + 1;\n}\n\nexport class K {\n  m() {\n    this.v = 1;\n    return this.v;\n  }\n}\n\nexport const arrow = (a: number) => a * 2;\n";
const TS_LIB_BODY_EDIT: &str = "/** Helps. */\nexport function helper(x: number): number {\n  const y = x * 2;\n  // a new line shifts every position below\n  return y + 1;\n}\n\nexport class K {\n  m() {\n    this.v = 1;\n    let local = this.v;\n    return local + 2;\n  }\n}\n\nexport const arrow = (a: number) => {\n  return a * 3;\n};\n";

#[test]
fn typescript_body_edit_recomputes_no_other_file() {
    let mut host = AnalysisHost::new();
    host.set_file(
        "tsconfig.json",
        "{ \"compilerOptions\": { \"baseUrl\": \".\" } }\n",
    );
    host.set_file("src/lib.ts", TS_LIB);
    host.set_file("src/index.ts", "export * from './lib';\n");
    host.set_file(
        "src/app.tsx",
        "import { helper, K, arrow } from './index';\nhelper(2);\nnew K().m();\narrow(1);\n",
    );
    host.set_file(
        "other.js",
        "const lib = require('./src/lib');\nlib.helper(3);\n",
    );
    let refs = |host: &AnalysisHost| {
        let a = host.snapshot();
        a.stats().expect("stats");
        a.references(
            &FilePosition {
                path: "src/app.tsx".into(),
                line: 2,
                column: 1,
            },
            true,
        )
        .expect("refs")
        .len()
    };
    assert_eq!(refs(&host), 4);
    let lib = host.file("src/lib.ts").expect("lib").as_id();
    host.record_executions(true);
    host.set_file("src/lib.ts", TS_LIB_BODY_EDIT);
    assert_eq!(refs(&host), 4);
    let executed = host.take_executions();
    let others: Vec<&Execution> = executed.iter().filter(|e| e.key != lib).collect();
    assert!(others.is_empty(), "other files recomputed: {others:?}");
    for query in ["file_index", "file_interface", "file_resolution"] {
        assert!(
            executed.iter().any(|e| e.query == query),
            "{query} of the edited file should run: {executed:?}"
        );
    }
}

const RS_LIB: &str =
    "pub mod shapes;\n\n/// Adds one.\npub fn add(x: i32) -> i32 {\n    x + 1\n}\n";
const RS_LIB_BODY_EDIT: &str = "pub mod shapes;\n\n/// Adds one.\npub fn add(x: i32) -> i32 {\n    let y = x * 2;\n    // a new line shifts every position below\n    y + 1\n}\n";
const RS_SHAPES: &str = "pub struct Circle { pub r: f64 }\n\nimpl Circle {\n    pub fn area(&self) -> f64 {\n        self.r * self.r\n    }\n}\n";
const RS_SHAPES_BODY_EDIT: &str = "pub struct Circle { pub r: f64 }\n\nimpl Circle {\n    pub fn area(&self) -> f64 {\n        let r = self.r;\n        r * r * 1.0\n    }\n}\n";

#[test]
fn rust_body_edit_recomputes_no_other_file() {
    let mut host = AnalysisHost::new();
    host.set_file("Cargo.toml", "[package]\nname = \"geo\"\n");
    host.set_file("src/lib.rs", RS_LIB);
    host.set_file("src/shapes.rs", RS_SHAPES);
    host.set_file(
        "src/main.rs",
        "use geo::shapes::Circle;\n\nfn main() {\n    let c = Circle { r: 1.0 };\n    let _ = geo::add(1) as f64 + c.area();\n}\n",
    );
    let refs = |host: &AnalysisHost| {
        let a = host.snapshot();
        a.stats().expect("stats");
        a.references(
            &FilePosition {
                path: "src/main.rs".into(),
                line: 5,
                column: 18,
            },
            true,
        )
        .expect("refs")
        .len()
    };
    assert_eq!(refs(&host), 2);
    for (path, edit) in [
        ("src/lib.rs", RS_LIB_BODY_EDIT),
        ("src/shapes.rs", RS_SHAPES_BODY_EDIT),
    ] {
        let edited = host.file(path).expect("file").as_id();
        host.record_executions(true);
        host.set_file(path, edit);
        assert_eq!(refs(&host), 2);
        let executed = host.take_executions();
        let others: Vec<&Execution> = executed.iter().filter(|e| e.key != edited).collect();
        assert!(
            others.is_empty(),
            "{path}: other files recomputed: {others:?}"
        );
        assert!(
            executed.iter().any(|e| e.query == "file_resolution"),
            "{executed:?}"
        );
    }
}
