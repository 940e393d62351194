//! Engine benchmark: cold analysis of a project, references after a one-line body edit, and a
//! rename plan for the most-referenced symbol. Prints figures; asserts nothing about time.
//!
//! ```sh
//! HIVESYNC_BENCH_ROOT=/tmp/dj/src cargo bench -p hivesync-analysis --bench engine
//! ```
//!
//! Without `HIVESYNC_BENCH_ROOT` it generates a synthetic Python project (200 modules) in a
//! temporary directory, so the benchmark always runs. With `HIVESYNC_BENCH_LINES=N` it
//! generates a multi-language workspace of about N lines (see `generate.rs`) in a temporary
//! directory (under `HIVESYNC_BENCH_ROOT` when set) and measures that:
//!
//! ```sh
//! HIVESYNC_BENCH_LINES=1000000 cargo bench -p hivesync-analysis --bench engine
//! ```
//!
//! After the cold run it measures the persisted index cache: a cold run that writes it, then
//! two new processes that load the project with it (`HIVESYNC_BENCH_WARM_CACHE=<dir>` runs
//! only that, for profiling).

use hivesync_analysis::db::file_index;
use hivesync_analysis::model::{LineIndex, SymbolKind};
use hivesync_analysis::resolve::{DefKey, def_index, file_resolution};
use hivesync_analysis::{AnalysisHost, FilePosition, IndexCache};
use hivesync_protocol::Language;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod generate;

/// The binary's allocator and settings (see `hivesync_analysis::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    hivesync_analysis::alloc::prefer_small_pages();
    if let Some(cache_dir) = std::env::var_os("HIVESYNC_BENCH_WARM_CACHE") {
        warm_cache_run(&PathBuf::from(cache_dir));
        return;
    }
    let lines: Option<usize> = std::env::var("HIVESYNC_BENCH_LINES")
        .ok()
        .and_then(|l| l.parse().ok());
    let (root, _guard) = match (std::env::var_os("HIVESYNC_BENCH_ROOT"), lines) {
        (Some(r), None) => (PathBuf::from(r), None),
        (root, lines) => {
            let dir = match root {
                Some(r) => tempfile::tempdir_in(r),
                None => tempfile::tempdir(),
            }
            .expect("tempdir");
            match lines {
                Some(lines) => {
                    let (files, written) = generate::generate(dir.path(), lines).expect("generate");
                    println!("generated {files} files, {written} lines");
                }
                None => generate_python(dir.path(), 200),
            }
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    println!("root: {}", root.display());

    let started = Instant::now();
    let cpu_started = cpu_ms();
    let (mut host, report) = AnalysisHost::load_dir(&root).expect("load");
    let analysis = host.snapshot();
    let (index, resolve) = analysis.warm().expect("warm");
    let stats = analysis.stats().expect("stats");
    let cold = started.elapsed();
    let cold_cpu = cpu_ms() - cpu_started;
    drop(analysis);
    println!(
        "cold: {:.1} ms wall, {cold_cpu:.0} ms CPU (user+sys), peak memory {} MB (walk+read {:.1}, index {:.1}, resolve {:.1}); files {:?}; definitions {}; references {:?}",
        ms(cold),
        peak_mb(),
        ms(report.discover),
        ms(index),
        ms(resolve),
        report.files_by_language,
        stats.definitions,
        stats.references
    );
    if std::env::var_os("HIVESYNC_BENCH_COLD_ONLY").is_some() {
        return;
    }
    persisted_cache(&root);

    // Raw indexing speed, one thread, no salsa: separates parsing from database overhead.
    {
        use hivesync_analysis::lang::LanguageModule;
        let snapshot = host.snapshot();
        let texts: Vec<(String, std::sync::Arc<str>)> = report_paths(&host)
            .into_iter()
            .filter_map(|p| snapshot.text(&p).map(|t| (p, t)))
            .collect();
        let t = Instant::now();
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&tree_sitter_python::LANGUAGE.into())
            .expect("python grammar");
        let mut nodes = 0;
        for (_, text) in &texts {
            if let Some(tree) = parser.parse(text.as_bytes(), None) {
                nodes += tree.root_node().descendant_count();
            }
        }
        println!(
            "raw python parsing (tree-sitter only), one thread: {:.1} ms for {} files ({nodes} nodes)",
            ms(t.elapsed()),
            texts.len()
        );
        let t = Instant::now();
        let mut defs = 0;
        for (path, text) in &texts {
            defs += hivesync_analysis::lang::python::Python
                .index(Language::Python, path, text)
                .defs
                .len();
        }
        println!(
            "raw python indexing, one thread: {:.1} ms for {} files ({defs} definitions)",
            ms(t.elapsed()),
            texts.len()
        );
    }

    // The most-referenced definition (exact references), and a function body to edit.
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut body_sites: Vec<(String, u32)> = Vec::new();
    let files: Vec<_> = {
        let db = host.db();
        let mut v: Vec<_> = hivesync_analysis::db::Workspace::try_get(db)
            .map(|w| w.files(db).to_vec())
            .unwrap_or_default();
        v.retain(|f| f.language(db) == Some(Language::Python));
        v
    };
    {
        let db = host.db();
        for &f in &files {
            let res = file_resolution(db, f);
            for (id, refs) in &res.by_def {
                if let DefKey::Path(key) = &id.key {
                    *counts
                        .entry((id.file.path(db).to_string(), key.to_string()))
                        .or_default() += refs.len();
                }
            }
            if body_sites.len() < 2 {
                let idx = file_index(db, f);
                if let Some(d) = idx.defs.iter().find(|d| {
                    // A function or method body: an edit there must stay body-only (a
                    // class body's statements are part of the interface).
                    matches!(d.kind, SymbolKind::Function | SymbolKind::Method)
                        && d.body.is_some()
                        && d.doc_insert.is_some()
                        && d.key.is_some()
                }) {
                    body_sites.push((f.path(db).to_string(), d.doc_insert.unwrap_or(0)));
                }
            }
        }
    }
    let Some(((def_path, def_key), nrefs)) = counts.into_iter().max_by_key(|(_, n)| *n) else {
        println!("no cross-file references found; nothing more to measure");
        return;
    };
    let def_pos = {
        let db = host.db();
        let file = host.file(&def_path).expect("file");
        let idx = file_index(db, file);
        let id = hivesync_analysis::resolve::DefId {
            file,
            key: DefKey::Path(def_key.as_str().into()),
        };
        let d = def_index(&idx, &id).expect("def");
        let text = file.text(db);
        let (line, column) =
            LineIndex::new(text).position(text, idx.defs[d as usize].name_range.start);
        FilePosition {
            path: def_path.clone(),
            line,
            column,
        }
    };
    println!("most referenced: {def_key} in {def_path} ({nrefs} exact references)");

    // Rename plan.
    let analysis = host.snapshot();
    let mut samples = Vec::new();
    let cpu_before = cpu_ms();
    for i in 0..5 {
        let t = Instant::now();
        let plan = analysis.rename(&def_pos, &format!("renamed_{i}"));
        samples.push(t.elapsed());
        if i == 0 {
            match plan {
                Ok(p) => println!(
                    "rename plan: {} exact and {} probable edits in {} files",
                    p.exact_edits,
                    p.probable_edits,
                    p.change.files.len()
                ),
                Err(e) => println!("rename plan refused: {e}"),
            }
        }
    }
    let cpu_mean = (cpu_ms() - cpu_before) / 5.0;
    println!(
        "rename plan: p50 {:.2} ms wall, mean {cpu_mean:.1} ms CPU",
        ms(p50(&mut samples))
    );
    drop(analysis);

    // One-line edits inside a function body, each followed by the references query.
    // Edit a file other than the definition's, so the cursor position stays valid.
    let Some((edit_path, at)) = body_sites.into_iter().find(|(p, _)| *p != def_path) else {
        println!("no function body to edit");
        return;
    };
    let original = host.snapshot().text(&edit_path).expect("text").to_string();
    let at = at as usize;
    let line_start = original[..at].rfind('\n').map(|p| p + 1).unwrap_or(0);
    let indent: String = original[line_start..at]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let mut samples = Vec::new();
    let mut found = 0;
    let mut executed = 0;
    let cpu_before = cpu_ms();
    for i in 0..30 {
        host.record_executions(i == 0);
        let mut text = original.clone();
        text.insert_str(at, &format!("_bench_local = {i}\n{indent}"));
        host.set_file(&edit_path, text);
        let analysis = host.snapshot();
        let t = Instant::now();
        let refs = analysis.references(&def_pos, true).expect("refs");
        samples.push(t.elapsed());
        found = refs.len();
        if i == 0 {
            executed = host.take_executions().len();
        }
    }
    let cpu_mean = (cpu_ms() - cpu_before) / 30.0;
    println!(
        "references after a one-line body edit in {edit_path}: p50 {:.2} ms wall, mean {cpu_mean:.1} ms CPU per edit+query ({found} locations; {executed} query executions after the first edit)",
        ms(p50(&mut samples))
    );
    let analysis = host.snapshot();
    let t = Instant::now();
    let _ = analysis.stats();
    println!(
        "re-resolving everything after the edits (stats): {:.2} ms",
        ms(t.elapsed())
    );
}

/// The persisted index cache: a cold run that writes it (in this process), then a new process
/// that loads the project with it (`warm_cache_run`), as a CLI run or an editor start would.
fn persisted_cache(root: &std::path::Path) {
    let dir = tempfile::tempdir().expect("cache dir");
    let cache = IndexCache::in_dir(dir.path(), root).expect("cache outside the root");
    let started = Instant::now();
    let cpu_started = cpu_ms();
    let (host, report) = AnalysisHost::load_dir_cached(root, Some(&cache)).expect("load");
    let analysis = host.snapshot();
    analysis.warm().expect("warm");
    analysis.stats().expect("stats");
    let analysed = started.elapsed();
    let stored = cache.store(analysis).expect("store");
    println!(
        "cold with an empty index cache: {:.1} ms wall, {:.0} ms CPU, then writing the cache {:.1} ms ({} entries, {:.1} MB; {} misses)",
        ms(analysed),
        cpu_ms() - cpu_started,
        ms(stored.time),
        stored.entries,
        stored.pack_bytes as f64 / 1_048_576.0,
        report.cache.map(|c| c.misses).unwrap_or(0)
    );
    drop(host);
    for _ in 0..2 {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env("HIVESYNC_BENCH_WARM_CACHE", dir.path())
            .env("HIVESYNC_BENCH_ROOT", root)
            .env_remove("HIVESYNC_BENCH_LINES")
            .output()
            .expect("run the warm-cache process");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

/// A new process (started by `persisted_cache`, or by hand with
/// `HIVESYNC_BENCH_WARM_CACHE=<cache dir>` to profile it): cold analysis with the cache.
fn warm_cache_run(cache_dir: &std::path::Path) {
    let root = PathBuf::from(std::env::var_os("HIVESYNC_BENCH_ROOT").expect("HIVESYNC_BENCH_ROOT"));
    let cache = IndexCache::in_dir(cache_dir, &root).expect("cache outside the root");
    let started = Instant::now();
    let cpu_started = cpu_ms();
    let (host, report) = AnalysisHost::load_dir_cached(&root, Some(&cache)).expect("load");
    let analysis = host.snapshot();
    let (index, resolve) = analysis.warm().expect("warm");
    let stats = analysis.stats().expect("stats");
    let wall = started.elapsed();
    let cpu = cpu_ms() - cpu_started;
    let stored = cache.store(analysis).expect("store");
    let load = report.cache.unwrap_or_default();
    println!(
        "new process, warm index cache: {:.1} ms wall, {cpu:.0} ms CPU, peak memory {} MB (walk+read {:.1}, cache {:.1} for {} hits / {} misses, {:.1} MB pack; index {:.1}, resolve {:.1}); definitions {}; cache {} in {:.1} ms",
        ms(wall),
        peak_mb(),
        ms(report.discover),
        ms(load.time),
        load.hits,
        load.misses,
        load.pack_bytes as f64 / 1_048_576.0,
        ms(index),
        ms(resolve),
        stats.definitions,
        if stored.written {
            "rewritten"
        } else {
            "unchanged"
        },
        ms(stored.time)
    );
}

fn report_paths(host: &AnalysisHost) -> Vec<String> {
    let db = host.db();
    hivesync_analysis::db::Workspace::try_get(db)
        .map(|w| {
            w.files(db)
                .iter()
                .filter(|f| f.language(db) == Some(Language::Python))
                .map(|f| f.path(db).to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) * 10.0
}

/// Peak resident memory of this process in MB (`VmHWM`).
fn peak_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn p50(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A synthetic project: `n` modules in packages, each importing helpers from the previous one.
fn generate_python(root: &std::path::Path, n: usize) {
    std::fs::create_dir_all(root.join("proj")).expect("mkdir");
    std::fs::write(root.join("proj/__init__.py"), "").expect("write");
    std::fs::write(
        root.join("proj/core.py"),
        "class Base:\n    \"\"\"Base.\"\"\"\n    def run(self, x):\n        return x\n\ndef helper(a, b=1):\n    return a + b\n",
    )
    .expect("write");
    for i in 0..n {
        let mut s =
            String::from("from proj.core import Base, helper\nimport proj.core as core\n\n");
        for j in 0..10 {
            s.push_str(&format!(
                "class C{i}_{j}(Base):\n    def method(self, v):\n        total = helper(v)\n        for k in range(v):\n            total += helper(k, total)\n        return self.run(total)\n\ndef f{i}_{j}(a):\n    obj = C{i}_{j}()\n    return obj.method(a) + core.helper(a)\n\n"
            ));
        }
        std::fs::write(root.join(format!("proj/m{i}.py")), s).expect("write");
    }
}
