//! Language-server replay benchmark: the real `hivesync lsp` binary over stdio, as an editor
//! drives it. Measures the time from `initialized` until a cross-file request is answered (the
//! project is loaded) and until indexing is done (progress `end`) — once without an index
//! cache, and once more at the end on a restart that finds the cache the first session
//! wrote — then replays typing in a function body — 50 `didChange` edits (a new line, then one
//! character at a time), each followed by definition, references and hover on a name of that
//! body that is defined in another file — and prints p50/p99/max per request kind. Latencies
//! are as the editor sees them (request written → response read). Asserts nothing about time.
//!
//! ```sh
//! cargo build --release -p hivesync
//! pip download django==5.2.8 --no-deps --no-binary :all: -d /tmp/dj && tar xzf /tmp/dj/django-5.2.8.tar.gz -C /tmp/dj
//! HIVESYNC_BENCH_ROOT=/tmp/dj/django-5.2.8 cargo bench -p hivesync-e2e --bench lsp_replay
//! ```
//!
//! The binary is `HIVESYNC_BIN`, else `<target>/release/hivesync` (falling back, with a
//! warning, to the debug build). The edited file is `HIVESYNC_BENCH_FILE` (relative to the
//! root), else `django/db/models/query.py` when present, else the largest Python file. Without
//! `HIVESYNC_BENCH_ROOT` a synthetic Python project is generated, so the benchmark always runs;
//! run as a test (`cargo test --all-targets`, no `--bench` argument) it does a short smoke run.

use hivesync_e2e::lsp::{LspClient, uri};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What gets typed, one character per edit after the first edit (a new indented line). No
/// brackets: an unclosed one would swallow the statements below while it is being typed.
const TYPED: &str = "probe_total = self.count_limit + 2 * offset_value - 1  # typed by the bench";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let edits = if full { 50 } else { 5 };
    let home = tempfile::tempdir().expect("tempdir");
    let root = match std::env::var_os("HIVESYNC_BENCH_ROOT") {
        Some(r) => PathBuf::from(r),
        None => {
            let root = home.path().join("synthetic");
            generate(&root, if full { 300 } else { 30 });
            root
        }
    };
    let bin = binary();
    println!("binary: {}", bin.display());
    println!(
        "root: {} ({} Python files)",
        root.display(),
        count_py(&root)
    );

    // An open file answers its outline at once, even while the project is indexing.
    let rel = bench_file(&root);
    let path = root.join(&rel);
    let text = std::fs::read_to_string(&path).expect("read the bench file");
    let (mut c, cold) = start_indexed(home.path(), &bin, &root, &path, &text);
    cold.print("no index cache");
    let pid = c.pid();
    // The index cache is written in the background after indexing; wait for it (so the
    // restart below finds it) before typing.
    let t = Instant::now();
    let packs = home.path().join(".cache/hivesync/index");
    let written = || {
        std::fs::read_dir(&packs).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "pack"))
        })
    };
    while !written() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "index cache written {:.0} ms after the end of indexing",
        ms(t.elapsed())
    );

    let Some(target) = find_target(&mut c, &path, &text) else {
        panic!("no statement in {rel} uses a name defined in another file");
    };
    println!(
        "editing {rel}: typing before line {} ({} edits); queries on `{}` at {}:{} (defined in {})",
        target.line + 1,
        edits,
        target.name,
        target.line + 1,
        target.character + 1,
        target.defined_in
    );

    // Edit 1: a new line with the statement's indentation; then one character per edit.
    // (kind, wall times, server CPU times): the CPU the server spent, all threads, from the
    // previous answer (the edit, for definition) to this one.
    let mut kinds: [(&str, Vec<Duration>, Vec<Duration>); 3] = [
        ("definition", Vec::new(), Vec::new()),
        ("references", Vec::new(), Vec::new()),
        ("hover", Vec::new(), Vec::new()),
    ];
    let mut refs_count = 0;
    let mut empty = Vec::new();
    for i in 0..edits {
        let (range, inserted) = if i == 0 {
            let at = json!({"line": target.line, "character": 0});
            (
                json!({"start": at, "end": at}),
                format!("{}\n", " ".repeat(target.indent as usize)),
            )
        } else {
            let ch = TYPED.chars().nth((i - 1) % TYPED.len()).unwrap_or('x');
            let at = json!({"line": target.line, "character": target.indent + i as u32 - 1});
            (json!({"start": at, "end": at}), ch.to_string())
        };
        // The edit's CPU counts with the definition that follows it (the server handles the
        // notification before that request, as it does in an editor).
        let mut cpu = thread_cpu(pid);
        c.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri(&path), "version": i + 2},
                "contentChanges": [{"range": range, "text": inserted}]
            }),
        );
        let at = json!({
            "textDocument": {"uri": uri(&path)},
            "position": {"line": target.line + 1, "character": target.character}
        });
        let mut refs = at.clone();
        refs["context"] = json!({"includeDeclaration": false});
        for (kind, params) in [
            ("textDocument/definition", at.clone()),
            ("textDocument/references", refs),
            ("textDocument/hover", at),
        ] {
            let t = Instant::now();
            let result = c.result(kind, params);
            let took = t.elapsed();
            let cpu_now = thread_cpu(pid);
            if let Some((_, times, cpus)) = kinds.iter_mut().find(|(k, _, _)| kind.ends_with(k)) {
                times.push(took);
                cpus.push(cpu_now.saturating_sub(cpu));
            }
            cpu = cpu_now;
            if kind == "textDocument/references" {
                refs_count = result.as_array().map_or(0, Vec::len);
            }
            if result.is_null() || result.as_array().is_some_and(Vec::is_empty) {
                empty.push(format!("{kind} after edit {}", i + 1));
            }
        }
    }
    println!(
        "after each edit ({refs_count} references; load average {}):",
        load_average()
    );
    for (kind, mut times, mut cpus) in kinds {
        times.sort();
        cpus.sort();
        println!(
            "  {kind:<11} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   CPU p50 {:>6.2} ms   \
             p99 {:>6.2} ms",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(times.last().copied().unwrap_or_default()),
            ms(percentile(&cpus, 50)),
            ms(percentile(&cpus, 99)),
        );
    }
    if !empty.is_empty() {
        println!("empty answers (the line being typed is incomplete): {empty:?}");
    }
    let (status, violations) = c.shutdown();
    assert!(status.success() && violations.is_empty());

    // A restart: the same project, the index cache written by the session above.
    let (c, warm) = start_indexed(home.path(), &bin, &root, &path, &text);
    warm.print("restart with a warm index cache");
    let (status, violations) = c.shutdown();
    assert!(status.success() && violations.is_empty());
}

/// How long a server took to get ready, from `initialized`.
struct Startup {
    outline: Duration,
    loaded: Duration,
    indexed: Duration,
    indexed_cpu: Duration,
}

impl Startup {
    fn print(&self, what: &str) {
        println!(
            "{what}: after `initialized`: first cross-file answer {:.0} ms (project loaded); \
             indexing done (progress end) {:.0} ms, {:.0} ms CPU; outline of an open file during \
             indexing {:.1} ms (load average {})",
            ms(self.loaded),
            ms(self.indexed),
            ms(self.indexed_cpu),
            ms(self.outline),
            load_average()
        );
    }
}

/// Starts the server on `root`, opens `path` and waits for the end of indexing.
fn start_indexed(
    home: &Path,
    bin: &Path,
    root: &Path,
    path: &Path,
    text: &str,
) -> (LspClient, Startup) {
    let mut c = LspClient::start_with(home, bin);
    let caps = json!({
        "window": {"workDoneProgress": true},
        "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}
    });
    c.result(
        "initialize",
        json!({
            "processId": null,
            "rootUri": uri(root),
            "workspaceFolders": [{"uri": uri(root), "name": "bench"}],
            "capabilities": caps,
        }),
    );
    let pid = c.pid();
    let started = Instant::now();
    let cpu_started = process_cpu(pid);
    c.notify("initialized", json!({}));
    c.open(path, "python", text);
    let t = Instant::now();
    c.result(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri(path)}}),
    );
    let outline = t.elapsed();
    // A cross-file request waits until the project is loaded (not for the warm-up).
    c.result(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri(path)}, "position": {"line": 0, "character": 0}}),
    );
    let loaded = started.elapsed();
    c.wait_indexed();
    let indexed = started.elapsed();
    let indexed_cpu = process_cpu(pid).saturating_sub(cpu_started);
    (
        c,
        Startup {
            outline,
            loaded,
            indexed,
            indexed_cpu,
        },
    )
}

struct Target {
    /// 0-based line of the statement whose name is queried (before the edits).
    line: u32,
    character: u32,
    indent: u32,
    name: String,
    defined_in: String,
}

/// A statement that opens a block body (the line before ends with `:`) and uses a name that
/// resolves to another file: typing goes on a new line before it.
fn find_target(c: &mut LspClient, path: &Path, text: &str) -> Option<Target> {
    let lines: Vec<&str> = text.lines().collect();
    let own = uri(path);
    let mut probes = 0;
    for (i, line) in lines.iter().enumerate().skip(lines.len() / 4) {
        let indent = line.len() - line.trim_start().len();
        let prev = i
            .checked_sub(1)
            .and_then(|j| lines.get(j))
            .map_or("", |l| l.trim_end());
        if indent < 8 || !prev.ends_with(':') || line.trim_start().starts_with('#') {
            continue;
        }
        for (col, name) in identifiers(line) {
            if probes > 400 {
                return None;
            }
            probes += 1;
            let defs = c.result(
                "textDocument/definition",
                json!({
                    "textDocument": {"uri": own},
                    "position": {"line": i, "character": col}
                }),
            );
            let elsewhere = defs
                .as_array()
                .and_then(|d| d.first())
                .and_then(|d| d["uri"].as_str())
                .filter(|u| *u != own)
                .map(str::to_owned);
            if let Some(defined_in) = elsewhere {
                return Some(Target {
                    line: i as u32,
                    character: col as u32,
                    indent: indent as u32,
                    name: name.to_owned(),
                    defined_in: defined_in.rsplit('/').next().unwrap_or("").to_owned(),
                });
            }
        }
    }
    None
}

/// (column, identifier) of the identifiers of an ASCII line, keywords skipped.
fn identifiers(line: &str) -> Vec<(usize, &str)> {
    const KEYWORDS: &[&str] = &[
        "if", "else", "elif", "for", "in", "not", "and", "or", "is", "return", "def", "class",
        "self", "None", "True", "False", "while", "with", "as", "try", "except", "raise", "yield",
        "await", "async", "lambda", "pass", "import", "from",
    ];
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &line[start..i];
            let after_dot = start > 0 && bytes[start - 1] == b'.';
            if !after_dot && !KEYWORDS.contains(&word) {
                out.push((start, word));
            }
        } else if bytes[i] == b'#' || bytes[i] == b'"' || bytes[i] == b'\'' {
            break;
        } else {
            i += 1;
        }
    }
    out
}

fn bench_file(root: &Path) -> String {
    if let Ok(f) = std::env::var("HIVESYNC_BENCH_FILE") {
        return f;
    }
    if root.join("django/db/models/query.py").is_file() {
        return "django/db/models/query.py".into();
    }
    let mut best: Option<(u64, PathBuf)> = None;
    walk_py(root, &mut |p| {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        if best.as_ref().is_none_or(|(l, _)| len > *l) {
            best = Some((len, p.to_path_buf()));
        }
    });
    let (_, best) = best.expect("no Python file under the bench root");
    best.strip_prefix(root)
        .expect("under root")
        .to_string_lossy()
        .into_owned()
}

fn walk_py(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                walk_py(&p, f);
            }
        } else if p.extension().is_some_and(|x| x == "py") {
            f(&p);
        }
    }
}

fn count_py(root: &Path) -> usize {
    let mut n = 0;
    walk_py(root, &mut |_| n += 1);
    n
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HIVESYNC_BIN") {
        return PathBuf::from(p);
    }
    let release = hivesync_e2e::built_binary("release");
    if release.is_file() {
        return release;
    }
    eprintln!(
        "warning: {} is missing (cargo build --release -p hivesync); timing the debug build",
        release.display()
    );
    hivesync_e2e::hivesync_bin()
}

/// A project of `modules` Python modules, each using classes and functions of others.
fn generate(root: &Path, modules: usize) {
    let pkg = root.join("app");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(pkg.join("__init__.py"), "").expect("write");
    for i in 0..modules {
        let dep = (i + 1) % modules;
        let mut text = format!("from app.m{dep} import Model{dep}, helper{dep}\n\n\n");
        text.push_str(&format!(
            "def helper{i}(value, scale=1):\n    \"\"\"Scales a value.\"\"\"\n    return value * scale\n\n\n"
        ));
        text.push_str(&format!("class Model{i}:\n    \"\"\"Model {i}.\"\"\"\n\n"));
        for j in 0..8 {
            text.push_str(&format!(
                "    def method{j}(self, other):\n        if other:\n            result = Model{dep}()\n            return helper{dep}(result, {j})\n        return self\n\n"
            ));
        }
        std::fs::write(pkg.join(format!("m{i}.py")), text).expect("write");
    }
}

/// CPU time of every live thread of process `pid` (nanosecond `schedstat` counters; zero
/// where `/proc` is unavailable).
fn thread_cpu(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// User + system CPU time of process `pid`, exited threads included (clock ticks, assumed
/// 100 per second).
fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
