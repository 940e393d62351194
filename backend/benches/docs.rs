//! `docs` job benchmark with the offline provider: definitions documented per second over a
//! whole project (engine gaps → context → prompt → provider → rendered doc comment). Prints
//! figures; asserts nothing about time.
//!
//! ```sh
//! pip download django==5.2.8 --no-deps --no-binary :all: -d /tmp/dj && tar xzf /tmp/dj/django-5.2.8.tar.gz -C /tmp/dj
//! HIVESYNC_BENCH_ROOT=/tmp/dj/django-5.2.8 cargo bench -p hivesync-backend --bench docs
//! ```
//!
//! Without `HIVESYNC_BENCH_ROOT` it generates a small synthetic Python project so the benchmark
//! always runs.

use hivesync_analysis::AnalysisHost;
use hivesync_analysis::changeset::apply_to_text;
use hivesync_backend::ai::docs::{self, DocsParams};
use hivesync_backend::ai::offline::OfflineProvider;
use std::path::PathBuf;
use std::time::Instant;

fn generate(dir: &std::path::Path, modules: usize) {
    for m in 0..modules {
        let mut text = String::new();
        if m > 0 {
            text.push_str(&format!("from mod{} import helper_{}\n\n", m - 1, m - 1));
        }
        for f in 0..20 {
            text.push_str(&format!(
                "def helper_{m}_{f}(a, b: int = 1) -> int:\n    if a is None:\n        raise ValueError('a')\n    return a + b\n\n"
            ));
        }
        text.push_str(&format!(
            "def helper_{m}(x):\n    return helper_{m}_0(x)\n\nclass Thing{m}:\n    def run(self, n):\n        return helper_{m}(n)\n"
        ));
        std::fs::write(dir.join(format!("mod{m}.py")), text).expect("write");
    }
}

fn main() {
    let (root, _guard) = match std::env::var_os("HIVESYNC_BENCH_ROOT") {
        Some(r) => (PathBuf::from(r), None),
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            generate(dir.path(), 100);
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    println!("root: {}", root.display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let started = Instant::now();
    let (host, report) = AnalysisHost::load_dir(&root).expect("load");
    let analysis = host.snapshot();
    analysis.warm().expect("warm");
    println!(
        "load + warm: {:.0} ms ({:?})",
        started.elapsed().as_secs_f64() * 1000.0,
        report.files_by_language
    );

    let params = DocsParams {
        snapshot_id: uuid::Uuid::nil(),
        paths: Vec::new(),
        symbols: Vec::new(),
        provider: None,
    };
    let t = Instant::now();
    let plan = docs::plan(&analysis, &params).expect("plan");
    let plan_time = t.elapsed();
    let tasks = plan.tasks.len();
    let t = Instant::now();
    let outcome = runtime.block_on(docs::run(plan, &OfflineProvider, u64::MAX, |_, _, _| {}));
    let run_time = t.elapsed();
    let total = plan_time + run_time;
    let documented = outcome.documented.len();
    println!(
        "docs (offline): {tasks} definitions without documentation; {documented} documented, {} failed",
        outcome.failures.len()
    );
    println!(
        "  plan (gaps, callers/callees, repo maps, prompts) {:.0} ms; provider + rendering {:.0} ms",
        plan_time.as_secs_f64() * 1000.0,
        run_time.as_secs_f64() * 1000.0
    );
    println!(
        "  => {:.0} definitions documented per second ({:.2} ms each)",
        documented as f64 / total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / documented.max(1) as f64
    );

    // The change set applies to every file it touches.
    let mut bad = 0;
    for change in &outcome.changeset.files {
        let text = analysis.text(&change.path).unwrap_or_default();
        if apply_to_text(&text, &change.edits).is_err() {
            bad += 1;
        }
    }
    println!(
        "  change set: {} files, {} edits, {bad} files that do not apply",
        outcome.changeset.files.len(),
        outcome
            .changeset
            .files
            .iter()
            .map(|f| f.edits.len())
            .sum::<usize>()
    );
}
