//! `hivesync analyze`: the analysis engine from the command line. Loads a project directory
//! (honouring `.gitignore`), runs one query and prints the answer — human-readable, or one JSON
//! document on stdout with `--json`. Never writes to the project's files; the persisted index
//! cache (`hivesync_analysis::cache`, in the user's cache directory) is read before and written
//! after the query, unless `--no-cache` (or `HIVESYNC_NO_CACHE=1`).
//!
//! One variant of [`Command`] per sub-subcommand, one `fn` per variant.

use anyhow::{Context, bail};
use hivesync_analysis::cache::{CacheError, CacheStore};
use hivesync_analysis::{
    Analysis, AnalysisError, AnalysisHost, FilePosition, IndexCache, LoadReport,
};
use hivesync_protocol::Confidence;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Files per language, definitions, references by confidence, parse errors, timings, memory
    Stats(RootArgs),
    /// Go to definition: where the symbol at PATH:LINE:COLUMN is defined
    Defs(PosArgs),
    /// Find references of the symbol at PATH:LINE:COLUMN
    Refs(RefsArgs),
    /// Plan renaming the symbol at PATH:LINE:COLUMN; prints the diff (never writes files)
    Rename(RenameArgs),
    /// Public definitions without documentation, with where the doc comment goes
    DocsGaps(RootArgs),
    /// Fuzzy search for definitions across the project
    Symbols(SymbolsArgs),
    /// The project's files with blake3 hashes, sizes and languages, and the snapshot's hash
    Manifest(super::analyze_manifest::ManifestArgs),
}

#[derive(Debug, clap::Args)]
struct RootArgs {
    /// Project root [default: current directory]
    #[arg(value_name = "ROOT")]
    root: Option<PathBuf>,
    /// Project root (same as ROOT)
    #[arg(long = "root", value_name = "DIR", conflicts_with = "root")]
    root_flag: Option<PathBuf>,
    /// Print one JSON document on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Clone, Copy, clap::Args)]
struct CacheArgs {
    /// Neither read nor write the persisted index cache (in the user's cache directory; also
    /// HIVESYNC_NO_CACHE=1)
    #[arg(long)]
    no_cache: bool,
}

#[derive(Debug, clap::Args)]
struct PosArgs {
    /// PATH:LINE:COLUMN, 1-based, column counted in characters
    #[arg(value_name = "POS")]
    pos: String,
    /// Project root [default: current directory]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print one JSON document on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, clap::Args)]
struct RefsArgs {
    #[command(flatten)]
    pos: PosArgs,
    /// Include the definition itself
    #[arg(long)]
    include_declaration: bool,
}

#[derive(Debug, clap::Args)]
struct RenameArgs {
    #[command(flatten)]
    pos: PosArgs,
    /// The new name
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
    /// Also rename probable references (matched by name only)
    #[arg(long)]
    include_probable: bool,
}

#[derive(Debug, clap::Args)]
struct SymbolsArgs {
    /// What to search for (fuzzy, case-insensitive)
    #[arg(value_name = "QUERY")]
    query: String,
    /// Project root [default: current directory]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// At most this many results
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print one JSON document on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Command::Stats(a) => stats(a),
        Command::Defs(a) => defs(a),
        Command::Refs(a) => refs(a),
        Command::Rename(a) => rename(a),
        Command::DocsGaps(a) => docs_gaps(a),
        Command::Symbols(a) => symbols(a),
        Command::Manifest(a) => super::analyze_manifest::manifest(a),
    }
}

fn root_of(root: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let canonical = root
        .canonicalize()
        .with_context(|| format!("project root {} does not exist", root.display()))?;
    if !canonical.is_dir() {
        bail!("project root {} is not a directory", root.display());
    }
    Ok(canonical)
}

/// A loaded project, and the index cache it was loaded with.
struct Loaded {
    host: AnalysisHost,
    report: LoadReport,
    cache: Option<IndexCache>,
}

fn load(root: &Path, cache: CacheArgs) -> anyhow::Result<Loaded> {
    let cache = if cache.no_cache {
        None
    } else {
        IndexCache::for_root(root)
    };
    let (host, report) = AnalysisHost::load_dir_cached(root, cache.as_ref())?;
    for skipped in &report.skipped {
        if skipped.minified {
            tracing::debug!(path = %skipped.path, "skipped: {}", skipped.reason);
        } else {
            tracing::warn!(path = %skipped.path, "skipped: {}", skipped.reason);
        }
    }
    if let Some(why) = report.cache.as_ref().and_then(|c| c.ignored.as_deref()) {
        tracing::debug!("index cache ignored: {why}");
    }
    Ok(Loaded {
        host,
        report,
        cache,
    })
}

/// Writes the indexes this run computed back to the cache (after the answer is printed; a
/// cache problem is logged, never an error), then lets the process exit without freeing the
/// engine's memory piece by piece (≈ 5 % of a run that loads from the cache).
fn finish(loaded: Loaded, analysis: Analysis) -> Option<CacheStore> {
    let stored = stored(loaded.cache.as_ref().map(|c| c.store(analysis)));
    std::mem::forget(loaded.host);
    stored
}

/// What writing the cache gave; a failure is logged at `debug` (the answer stands without it).
fn stored(result: Option<Result<CacheStore, CacheError>>) -> Option<CacheStore> {
    match result {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            tracing::debug!("{e}");
            None
        }
        None => None,
    }
}

/// Parses `PATH:LINE:COLUMN` into a position relative to `root`.
fn position(pos: &str, root: &Path) -> anyhow::Result<FilePosition> {
    let mut parts = pos.rsplitn(3, ':');
    let (Some(column), Some(line), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("bad position `{pos}`: expected PATH:LINE:COLUMN (e.g. src/app.py:12:5)");
    };
    let parse = |what: &str, v: &str| -> anyhow::Result<u32> {
        match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("bad position `{pos}`: {what} must be a number starting at 1, got `{v}`"),
        }
    };
    let (line, column) = (parse("LINE", line)?, parse("COLUMN", column)?);
    let given = Path::new(path);
    let absolute = if given.is_absolute() {
        given.to_path_buf()
    } else if given.exists() {
        std::env::current_dir()?.join(given)
    } else {
        root.join(given)
    };
    let absolute = absolute
        .canonicalize()
        .with_context(|| format!("no such file: {path}"))?;
    let rel = absolute
        .strip_prefix(root)
        .map_err(|_| anyhow::anyhow!("{path} is outside the project root {}", root.display()))?;
    let rel: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(FilePosition {
        path: rel.join("/"),
        line,
        column,
    })
}

/// A clearer message for a position in a file the loader skipped or cannot analyse.
fn explain(err: AnalysisError, report: &LoadReport) -> anyhow::Error {
    if let AnalysisError::FileNotFound(path) = &err {
        if let Some(s) = report.skipped.iter().find(|s| &s.path == path) {
            return anyhow::anyhow!("{path}: {}", s.reason);
        }
        return anyhow::anyhow!(
            "{path} is not a source file of the project (unknown language, or ignored by .gitignore)"
        );
    }
    err.into()
}

fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn stats(args: &RootArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = root_of(args.root.as_deref().or(args.root_flag.as_deref()))?;
    let loaded = load(&root, args.cache)?;
    let report = loaded.report.clone();
    let analysis = loaded.host.snapshot();
    let index_time = analysis.warm_indexes()?;
    // The indexes are what the cache keeps: write it while references are resolved.
    let (resolved, stored) = std::thread::scope(|scope| {
        let store = loaded.cache.as_ref().map(|cache| {
            let snapshot = loaded.host.snapshot();
            scope.spawn(move || cache.store(snapshot))
        });
        let resolved = analysis.warm_resolution().and_then(|resolve_time| {
            let count_started = Instant::now();
            Ok((resolve_time, analysis.stats()?, count_started.elapsed()))
        });
        let stored =
            stored(store.map(|s| s.join().unwrap_or_else(|p| std::panic::resume_unwind(p))));
        (resolved, stored)
    });
    let (resolve_time, stats, count_time) = resolved?;
    let elapsed = started.elapsed();
    drop(analysis);
    std::mem::forget(loaded.host);
    let mut files_by_language = report.files_by_language.clone();
    files_by_language.insert("other".into(), report.other_files);
    let total: usize = files_by_language.values().sum();
    let peak = peak_memory_bytes();
    let cache_doc = report.cache.as_ref().map(|l| {
        json!({
            "hits": l.hits,
            "misses": l.misses,
            "pack_bytes": l.pack_bytes,
            "ignored": l.ignored,
            "load_ms": ms(l.time),
            "stored": stored.as_ref().map(|s| json!({
                "written": s.written,
                "entries": s.entries,
                "encoded": s.encoded,
                "pack_bytes": s.pack_bytes,
                "store_ms": ms(s.time),
            })),
        })
    });
    if args.json {
        let doc = json!({
            "root": root.display().to_string(),
            "files": total,
            "files_by_language": files_by_language,
            "definitions": stats.definitions,
            "references": stats.references,
            "parse_errors": stats.parse_errors,
            "skipped": report.skipped,
            "elapsed_ms": ms(elapsed),
            "phases_ms": {
                "discover": ms(report.discover),
                "read": ms(report.read),
                "index": ms(index_time),
                "resolve": ms(resolve_time),
                "count": ms(count_time),
            },
            "peak_memory_bytes": peak,
            "cpu_ms": cpu_ms(),
            "cache": cache_doc,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("root          {}", root.display());
    let langs: Vec<String> = files_by_language
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    println!("files         {total} ({})", langs.join(", "));
    println!("definitions   {}", stats.definitions);
    let r = &stats.references;
    println!(
        "references    exact {}, probable {}, unresolved {} (builtin {}, external {})",
        r.exact, r.probable, r.unresolved, r.builtin, r.external
    );
    println!("parse errors  {} file(s)", stats.parse_errors);
    if !report.skipped.is_empty() {
        let minified = report.skipped.iter().filter(|s| s.minified).count();
        println!(
            "skipped       {} file(s): {} minified bundle(s), {} binary or not UTF-8",
            report.skipped.len(),
            minified,
            report.skipped.len() - minified
        );
    }
    println!(
        "time          {:.1} ms (discover {:.1}, read {:.1}, index {:.1}, resolve {:.1}, count {:.1})",
        ms(elapsed),
        ms(report.discover),
        ms(report.read),
        ms(index_time),
        ms(resolve_time),
        ms(count_time)
    );
    if let Some(p) = peak {
        println!("peak memory   {:.1} MB", p as f64 / 1_048_576.0);
    }
    if let Some(cpu) = cpu_ms() {
        println!("CPU           {cpu:.0} ms (user+sys, all threads, cache write included)");
    }
    match (&report.cache, &stored) {
        (None, _) => println!("index cache   off"),
        (Some(l), s) => {
            let ignored = l
                .ignored
                .as_deref()
                .map(|w| format!("; pack ignored: {w}"))
                .unwrap_or_default();
            let wrote = match s {
                Some(s) if s.written => format!(
                    "; wrote {} entries ({} new), {:.1} MB in {:.1} ms",
                    s.entries,
                    s.encoded,
                    s.pack_bytes as f64 / 1_048_576.0,
                    ms(s.time)
                ),
                Some(s) => format!("; unchanged ({:.1} ms)", ms(s.time)),
                None => "; not written".to_owned(),
            };
            println!(
                "index cache   {} hits, {} misses (load {:.1} ms){ignored}{wrote}",
                l.hits,
                l.misses,
                ms(l.time)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// CPU time of the process so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state (field 3).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1000.0 / 100.0)
}

fn open(
    root: Option<&Path>,
    pos: &str,
    cache: CacheArgs,
) -> anyhow::Result<(Loaded, FilePosition)> {
    let root = root_of(root)?;
    let pos = position(pos, &root)?;
    Ok((load(&root, cache)?, pos))
}

fn print_locations(locations: &[hivesync_analysis::Location], json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "locations": locations }))?
        );
        return Ok(());
    }
    if locations.is_empty() {
        println!("(none)");
    }
    for l in locations {
        let note = match l.confidence {
            Confidence::Exact => "",
            Confidence::Probable => "  (probable)",
        };
        println!("{}:{}:{}{note}", l.path, l.line, l.column);
    }
    Ok(())
}

fn defs(args: &PosArgs) -> anyhow::Result<ExitCode> {
    let (loaded, pos) = open(args.root.as_deref(), &args.pos, args.cache)?;
    let analysis = loaded.host.snapshot();
    let locations = analysis
        .definition(&pos)
        .map_err(|e| explain(e, &loaded.report))?;
    print_locations(&locations, args.json)?;
    finish(loaded, analysis);
    Ok(ExitCode::SUCCESS)
}

fn refs(args: &RefsArgs) -> anyhow::Result<ExitCode> {
    let (loaded, pos) = open(args.pos.root.as_deref(), &args.pos.pos, args.pos.cache)?;
    let analysis = loaded.host.snapshot();
    let locations = analysis
        .references(&pos, args.include_declaration)
        .map_err(|e| explain(e, &loaded.report))?;
    print_locations(&locations, args.pos.json)?;
    finish(loaded, analysis);
    Ok(ExitCode::SUCCESS)
}

fn rename(args: &RenameArgs) -> anyhow::Result<ExitCode> {
    let (loaded, pos) = open(args.pos.root.as_deref(), &args.pos.pos, args.pos.cache)?;
    let analysis = loaded.host.snapshot();
    let plan = match analysis.rename(&pos, &args.new_name) {
        Ok(plan) => plan,
        Err(AnalysisError::Rename(refusal)) => {
            eprintln!("hivesync: rename refused: {refusal}");
            finish(loaded, analysis);
            return Ok(ExitCode::from(crate::exit::FAILURE));
        }
        Err(e) => return Err(explain(e, &loaded.report)),
    };
    let keep: &[Confidence] = if args.include_probable {
        &[Confidence::Exact, Confidence::Probable]
    } else {
        &[Confidence::Exact]
    };
    let change = plan.change.filtered(keep);
    if args.pos.json {
        println!("{}", serde_json::to_string_pretty(&change)?);
    } else {
        let mut bases = BTreeMap::new();
        for f in &change.files {
            if let Some(text) = analysis.text(&f.path) {
                bases.insert(f.path.clone(), text.to_string());
            }
        }
        let diff = hivesync_analysis::changeset::render_unified_diff(&bases, &change)?;
        print!("{diff}");
        if plan.probable_edits > 0 && !args.include_probable {
            eprintln!(
                "note: {} probable reference(s) (matched by name only) left unchanged; add --include-probable to rename them too",
                plan.probable_edits
            );
        }
    }
    finish(loaded, analysis);
    Ok(ExitCode::SUCCESS)
}

fn docs_gaps(args: &RootArgs) -> anyhow::Result<ExitCode> {
    let root = root_of(args.root.as_deref().or(args.root_flag.as_deref()))?;
    let loaded = load(&root, args.cache)?;
    let analysis = loaded.host.snapshot();
    let gaps = analysis.doc_gaps()?;
    print_gaps(&gaps, args.json)?;
    finish(loaded, analysis);
    Ok(ExitCode::SUCCESS)
}

fn print_gaps(gaps: &[hivesync_analysis::DocGap], json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "gaps": gaps }))?
        );
        return Ok(());
    }
    for g in gaps {
        println!(
            "{}:{}:{}  {} `{}` has no documentation (insert {}…{} at {}:{})",
            g.path,
            g.line,
            g.column,
            g.kind.name(),
            g.qualified_name,
            g.syntax.open,
            g.syntax.close,
            g.insert_line,
            g.insert_column
        );
    }
    println!("{} undocumented public definition(s)", gaps.len());
    Ok(())
}

fn symbols(args: &SymbolsArgs) -> anyhow::Result<ExitCode> {
    let root = root_of(args.root.as_deref())?;
    let loaded = load(&root, args.cache)?;
    let analysis = loaded.host.snapshot();
    let hits = analysis.workspace_symbols(&args.query, args.limit)?;
    print_symbols(&hits, args.json)?;
    finish(loaded, analysis);
    Ok(ExitCode::SUCCESS)
}

fn print_symbols(hits: &[hivesync_analysis::WorkspaceSymbol], json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "symbols": hits }))?
        );
        return Ok(());
    }
    for h in hits {
        let name = match &h.container {
            Some(c) => format!("{c}.{}", h.name),
            None => h.name.clone(),
        };
        println!(
            "{}:{}:{}  {} {name}",
            h.path,
            h.line,
            h.column,
            h.kind.name()
        );
    }
    Ok(())
}
