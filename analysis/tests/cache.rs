//! The persisted index cache: a hit gives the very index (and answers) a fresh parse gives, in
//! every language; a changed file misses; corrupt, truncated and foreign packs are ignored;
//! concurrent writers leave a whole pack; packs are bounded and pruned; an edit after loading
//! from the cache recomputes only the edited file.

use hivesync_analysis::cache::{self, CacheLoad, FINGERPRINT, FORMAT_VERSION};
use hivesync_analysis::db::{Execution, file_index};
use hivesync_analysis::{AnalysisHost, FilePosition, IndexCache, LoadReport};
use salsa::plumbing::AsId;
use std::path::Path;

const FILES: &[(&str, &str)] = &[
    (
        "pkg/__init__.py",
        "from .core import Engine, run as go\n__all__ = ['Engine', 'go']\n",
    ),
    (
        "pkg/core.py",
        "import os\n\n\nclass Engine:\n    \"\"\"Runs things.\"\"\"\n\n    def __init__(self, n=1):\n        self.n = n\n\n    def start(self, *args):\n        total = [x for x in args if x]\n        return lambda y: y + self.n + len(total)\n\n\ndef run(e: Engine) -> int:\n    global COUNT\n    COUNT = e.start(1)(2)\n    return os.getpid()\n\nCOUNT = 0\n",
    ),
    (
        "app.py",
        "from pkg import Engine, go\nimport pkg.core as c\n\ne = Engine(3)\ngo(e)\nc.run(e)\ne.start().missing\n",
    ),
    (
        "web/util.ts",
        "export interface Shape { area(): number }\nexport class Square implements Shape {\n  constructor(private side: number) {}\n  area(): number { return this.side * this.side; }\n}\nexport default function make(n: number): Shape { const s = new Square(n); return s; }\nexport const K = 1;\n",
    ),
    (
        "web/main.tsx",
        "import make, { Square, K } from './util';\nimport * as u from './util';\nexport function App() { const s = make(K); return <div>{s.area() + new u.Square(2).area()}</div>; }\n",
    ),
    (
        "web/legacy.js",
        "const { K } = require('./util');\nfunction f(a) { let b = a + K; { let b = 2; return b; } }\nmodule.exports = { f };\n",
    ),
    (
        "Cargo.toml",
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    ),
    (
        "src/lib.rs",
        "pub mod shapes;\nuse shapes::{Circle, Shape as S};\n\n/// Total area.\npub fn total(v: &[Circle]) -> f64 {\n    v.iter().map(|c| c.area()).sum()\n}\n\npub fn first() -> Option<impl S> { None::<Circle> }\n",
    ),
    (
        "src/shapes.rs",
        "pub trait Shape { fn area(&self) -> f64; }\n#[derive(Debug)]\npub struct Circle { pub r: f64 }\nimpl Shape for Circle { fn area(&self) -> f64 { 3.14 * self.r * self.r } }\npub enum Kind { Round(Circle), Flat }\nimpl Circle { pub fn new(r: f64) -> Self { Circle { r } } }\n",
    ),
    ("go.mod", "module example.com/demo\n\ngo 1.22\n"),
    (
        "geo/geo.go",
        "package geo\n\n// Point is a point.\ntype Point struct{ X, Y int }\n\nfunc (p Point) Add(q Point) Point { return Point{p.X + q.X, p.Y + q.Y} }\n\nvar Origin = Point{}\n",
    ),
    (
        "cmd/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/demo/geo\"\n)\n\nfunc main() {\n\tp := geo.Origin.Add(geo.Point{X: 1})\n\tfmt.Println(p)\n}\n",
    ),
    ("broken.py", "def f(:\n    return [1, 2\nclass\n"),
];

/// Source files (a language module indexes them), of the fixture above.
const SOURCES: usize = 11;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in FILES {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

/// Loads with `cache`, runs every query, writes the cache back.
fn run(root: &Path, cache: &IndexCache) -> (AnalysisHost, CacheLoad) {
    let (host, report) = AnalysisHost::load_dir_cached(root, Some(cache)).expect("load");
    let analysis = host.snapshot();
    analysis.warm().expect("warm");
    cache.store(analysis).expect("store");
    (host, report.cache.expect("cache report"))
}

/// Everything the engine answers about a project, as text, for comparing two loads.
fn answers(host: &AnalysisHost) -> String {
    let a = host.snapshot();
    let mut out = format!("{:?}\n", a.stats().expect("stats"));
    out += &format!("{:?}\n", a.doc_gaps().expect("gaps"));
    out += &format!("{:?}\n", a.diagnostics(None).expect("diagnostics"));
    out += &format!("{:?}\n", a.workspace_symbols("a", 100).expect("symbols"));
    let mut paths: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
    paths.sort();
    for path in paths {
        let Some(text) = a.text(path) else { continue };
        out += &format!("{path}: {:?}\n", a.document_symbols(path));
        for (i, line) in text.lines().enumerate() {
            for column in (1..=line.chars().count() as u32).step_by(3) {
                let pos = FilePosition {
                    path: path.into(),
                    line: i as u32 + 1,
                    column,
                };
                out += &format!(
                    "{path}:{}:{column} {:?} {:?}\n",
                    i + 1,
                    a.definition(&pos).ok(),
                    a.references(&pos, true).ok().map(|r| r.len())
                );
            }
        }
    }
    out
}

/// Each file's index from `host` next to the index a fresh parse gives.
fn assert_same_indexes(host: &AnalysisHost, root: &Path) {
    let (fresh, _) = AnalysisHost::load_dir(root).expect("load");
    for (path, _) in FILES {
        let (Some(a), Some(b)) = (host.file(path), fresh.file(path)) else {
            continue;
        };
        assert_eq!(
            file_index(host.db(), a),
            file_index(fresh.db(), b),
            "{path}: the cached index differs from a fresh parse"
        );
    }
    assert_eq!(answers(host), answers(&fresh));
}

fn cache_in(dir: &Path, root: &Path) -> IndexCache {
    IndexCache::in_dir(dir, root).expect("cache outside the root")
}

#[test]
fn a_hit_equals_a_fresh_parse_in_every_language() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = cache_in(dir.path(), root.path());
    let (_, first) = run(root.path(), &cache);
    assert_eq!((first.hits, first.misses), (0, SOURCES));
    assert!(cache.pack_path().is_file());
    assert!(cache.pack_path().starts_with(dir.path()));

    let cache = cache_in(dir.path(), root.path());
    let (host, second) = run(root.path(), &cache);
    assert_eq!((second.hits, second.misses), (SOURCES, 0));
    assert_eq!(second.ignored, None);
    // Every language's files came from the cache.
    for (path, _) in FILES {
        let Some(f) = host.file(path) else { continue };
        if let Some(c) = f.cached(host.db()) {
            assert!(c.index.is_some(), "{path} was not a hit");
        }
    }
    assert_same_indexes(&host, root.path());
}

#[test]
fn a_changed_file_misses_and_is_parsed() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    run(root.path(), &cache_in(dir.path(), root.path()));
    std::fs::write(
        root.path().join("pkg/core.py"),
        "class Engine:\n    def start(self):\n        return 2\n\ndef run(e):\n    return e\n",
    )
    .expect("write");
    let (host, load) = run(root.path(), &cache_in(dir.path(), root.path()));
    assert_eq!((load.hits, load.misses), (SOURCES - 1, 1));
    assert_same_indexes(&host, root.path());
    // The new content was written back: the next run hits everything.
    let (_, load) = run(root.path(), &cache_in(dir.path(), root.path()));
    assert_eq!((load.hits, load.misses), (SOURCES, 0));
}

#[test]
fn entries_of_deleted_files_are_dropped() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    run(root.path(), &cache_in(dir.path(), root.path()));
    std::fs::remove_file(root.path().join("web/legacy.js")).expect("rm");
    let cache = cache_in(dir.path(), root.path());
    let (host, _) = AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
    let a = host.snapshot();
    a.warm().expect("warm");
    let stored = cache.store(a).expect("store");
    assert!(stored.written);
    assert_eq!((stored.entries, stored.encoded), (SOURCES - 1, 0));
    // Unchanged now: nothing is written.
    let cache = cache_in(dir.path(), root.path());
    let (host, _) = AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
    let stored = cache.store(host.snapshot()).expect("store");
    assert!(!stored.written);
}

/// Loads with a damaged pack: it is ignored as a whole and every answer is a fresh parse's.
fn assert_ignored(root: &Path, dir: &Path, damage: impl FnOnce(&mut Vec<u8>), why: &str) {
    let cache = cache_in(dir, root);
    let mut bytes = std::fs::read(cache.pack_path()).expect("pack");
    damage(&mut bytes);
    std::fs::write(cache.pack_path(), &bytes).expect("write");
    let (host, report) = AnalysisHost::load_dir_cached(root, Some(&cache)).expect("load");
    let load = report.cache.expect("cache report");
    assert_eq!((load.hits, load.misses), (0, SOURCES), "{why}");
    let ignored = load.ignored.unwrap_or_default();
    assert!(ignored.contains(why), "{ignored:?} should say {why:?}");
    assert_same_indexes(&host, root);
    // The next store replaces it with a good pack.
    let a = host.snapshot();
    a.warm().expect("warm");
    assert!(cache.store(a).expect("store").written);
    let (_, load) = run(root, &cache_in(dir, root));
    assert_eq!((load.hits, load.ignored), (SOURCES, None));
}

/// Re-seals a pack whose content was changed (a valid checksum, so that the later checks are
/// what rejects it).
fn reseal(bytes: &mut Vec<u8>) {
    let body = bytes.len() - 32;
    bytes.truncate(body);
    let sum = *blake3::hash(bytes).as_bytes();
    bytes.extend_from_slice(&sum);
}

#[test]
fn corrupt_truncated_and_foreign_packs_are_ignored() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    run(root.path(), &cache_in(dir.path(), root.path()));
    assert_ignored(
        root.path(),
        dir.path(),
        |b| {
            let mid = b.len() / 2;
            b[mid] ^= 0x5a;
        },
        "checksum",
    );
    assert_ignored(
        root.path(),
        dir.path(),
        |b| b.truncate(b.len() * 2 / 3),
        "checksum",
    );
    assert_ignored(root.path(), dir.path(), |b| b.truncate(20), "truncated");
    assert_ignored(root.path(), dir.path(), |b| b.clear(), "not an index pack");
    // Another build of the engine (another fingerprint), with a valid checksum.
    assert_ignored(
        root.path(),
        dir.path(),
        |b| {
            let at = 8 + 4 + 1;
            b[at] = if b[at] == b'0' { b'1' } else { b'0' };
            reseal(b);
        },
        "another build",
    );
    // Another pack format.
    assert_ignored(
        root.path(),
        dir.path(),
        |b| {
            b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
            reseal(b);
        },
        "another pack format",
    );
}

#[test]
fn an_entry_that_does_not_decode_is_a_miss() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = cache_in(dir.path(), root.path());
    // A well-formed pack whose one entry (for app.py) holds garbage.
    let text = FILES.iter().find(|(p, _)| *p == "app.py").expect("app").1;
    let key = cache::cache_key(hivesync_protocol::Language::Python, "app.py", text);
    let mut b = Vec::new();
    b.extend_from_slice(b"HSIDXPK\0");
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.push(FINGERPRINT.len() as u8);
    b.extend_from_slice(FINGERPRINT.as_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&key);
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&[0xff, 0xff, 0xff]);
    let sum = *blake3::hash(&b).as_bytes();
    b.extend_from_slice(&sum);
    std::fs::create_dir_all(cache.pack_path().parent().expect("dir")).expect("mkdir");
    std::fs::write(cache.pack_path(), &b).expect("write");
    let (host, load) = run(root.path(), &cache);
    assert_eq!((load.hits, load.misses, load.ignored), (0, SOURCES, None));
    assert_same_indexes(&host, root.path());
}

#[test]
fn concurrent_writers_leave_a_whole_pack() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..3 {
                    let cache = cache_in(dir.path(), root.path());
                    let (host, report) =
                        AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
                    assert_eq!(report.cache.expect("report").ignored, None);
                    let a = host.snapshot();
                    a.warm().expect("warm");
                    cache.store(a).expect("store");
                }
            });
        }
    });
    let (host, load) = run(root.path(), &cache_in(dir.path(), root.path()));
    assert_eq!((load.hits, load.ignored), (SOURCES, None));
    assert_same_indexes(&host, root.path());
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("index"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn least_recently_used_packs_go_beyond_the_bound() {
    let dir = tempfile::tempdir().expect("cache dir");
    let index = dir.path().join("index");
    std::fs::create_dir_all(&index).expect("mkdir");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for (name, age) in [("a.pack", 3), ("b.pack", 2), ("c.pack", 1)] {
        let p = index.join(name);
        std::fs::write(&p, vec![0u8; 400 * 1024]).expect("write");
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_modified(old - std::time::Duration::from_secs(age))
            .expect("mtime");
    }
    let stale = index.join(".pack-left.tmp");
    std::fs::write(&stale, b"x").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("mtime");
    let root = project();
    let cache = cache_in(dir.path(), root.path()).with_max_bytes(700 * 1024);
    let (host, _) = AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
    let a = host.snapshot();
    a.warm().expect("warm");
    assert!(cache.store(a).expect("store").written);
    let mut left: Vec<String> = std::fs::read_dir(&index)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let own = cache
        .pack_path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // The two oldest packs (a, b) and the stale temporary file are gone.
    let mut want = vec!["c.pack".to_owned(), own];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn a_pack_over_the_bound_is_not_written() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = cache_in(dir.path(), root.path()).with_max_bytes(100);
    let (host, _) = AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
    let a = host.snapshot();
    a.warm().expect("warm");
    assert!(cache.store(a).is_err());
    assert!(!cache.pack_path().exists());
}

#[test]
fn the_cache_never_lives_inside_the_project() {
    let root = project();
    assert!(IndexCache::in_dir(&root.path().join(".cache"), root.path()).is_none());
    assert!(IndexCache::in_dir(root.path(), root.path()).is_none());
    let elsewhere = tempfile::tempdir().expect("dir");
    assert!(IndexCache::in_dir(elsewhere.path(), root.path()).is_some());
}

#[test]
fn only_what_a_run_indexed_is_written() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = cache_in(dir.path(), root.path());
    let (host, _) = AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
    // Index two files only.
    let a = host.snapshot();
    a.document_symbols("app.py").expect("symbols");
    a.document_symbols("src/lib.rs").expect("symbols");
    let stored = cache.store(a).expect("store");
    assert_eq!((stored.entries, stored.encoded), (2, 2));
    let (_, load) = run(root.path(), &cache_in(dir.path(), root.path()));
    assert_eq!((load.hits, load.misses), (2, SOURCES - 2));
}

#[test]
fn a_body_edit_after_a_cached_load_recomputes_only_that_file() {
    let root = project();
    let dir = tempfile::tempdir().expect("cache dir");
    run(root.path(), &cache_in(dir.path(), root.path()));
    let cache = cache_in(dir.path(), root.path());
    let (mut host, report): (AnalysisHost, LoadReport) =
        AnalysisHost::load_dir_cached(root.path(), Some(&cache)).expect("load");
    assert_eq!(report.cache.expect("report").hits, SOURCES);
    host.snapshot().warm().expect("warm");
    host.snapshot().stats().expect("stats");
    let core = host.file("pkg/core.py").expect("core").as_id();
    host.record_executions(true);
    let text = FILES
        .iter()
        .find(|(p, _)| *p == "pkg/core.py")
        .expect("core")
        .1;
    host.set_file(
        "pkg/core.py",
        text.replace("return os.getpid()", "x = 1\n    return os.getpid() + x"),
    );
    host.snapshot().stats().expect("stats");
    let executed: Vec<Execution> = host.take_executions();
    let others: Vec<&Execution> = executed.iter().filter(|e| e.key != core).collect();
    assert!(others.is_empty(), "other files recomputed: {others:?}");
    assert!(executed.iter().any(|e| e.query == "file_index"));
    // The edited file is parsed (its cache entry was for the old text).
    let f = host.file("pkg/core.py").expect("core");
    assert!(f.cached(host.db()).is_none());
    let (fresh, _) = AnalysisHost::load_dir(root.path()).expect("load");
    let mut fresh = fresh;
    fresh.set_file(
        "pkg/core.py",
        text.replace("return os.getpid()", "x = 1\n    return os.getpid() + x"),
    );
    assert_eq!(answers(&host), answers(&fresh));
}
