//! `hivesync analyze manifest`: the snapshot of a project directory — every file the ignore
//! rules keep, with its blake3 hash, size and language, and the manifest's own hash. With
//! `--json` it prints exactly the document the backend's snapshot API accepts
//! (`{"hash", "files": [{"path", "hash", "size", "language"}], "metadata": {…}}`); without, a
//! summary for people. Entries that cannot be part of a snapshot are reported on stderr (and
//! in the summary), never fatal. Reads only; never writes.

use anyhow::Context;
use hivesync_analysis::manifest::{ManifestOptions, Snapshot, build_snapshot};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// Project root [default: current directory]
    #[arg(value_name = "ROOT")]
    root: Option<PathBuf>,
    /// Project root (same as ROOT)
    #[arg(long = "root", value_name = "DIR", conflicts_with = "root")]
    root_flag: Option<PathBuf>,
    /// Include hidden files and directories (`.env`, `.cache/`, …); `.git/` is never included
    #[arg(long)]
    include_hidden: bool,
    /// Print the manifest as one JSON document on stdout
    #[arg(long)]
    json: bool,
}

pub fn manifest(args: &ManifestArgs) -> anyhow::Result<ExitCode> {
    let root = match args.root.as_ref().or(args.root_flag.as_ref()) {
        Some(r) => r.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let opts = ManifestOptions {
        include_hidden: args.include_hidden,
    };
    let snapshot = build_snapshot(&root, &opts)?;
    if args.json {
        for s in &snapshot.skipped {
            tracing::warn!("skipped {}: {}", s.path, s.reason);
        }
        println!("{}", serde_json::to_string(&snapshot.manifest)?);
    } else {
        print!("{}", summary(&root, &snapshot));
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(root: &std::path::Path, snapshot: &Snapshot) -> String {
    use std::fmt::Write as _;
    let m = &snapshot.manifest;
    let mut per_language: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for f in &m.files {
        let name = f.language.map_or("other", |l| l.name());
        let entry = per_language.entry(name).or_default();
        entry.0 += 1;
        entry.1 += f.size;
    }
    let total: u64 = m.files.iter().map(|f| f.size).sum();
    let mut out = String::new();
    let _ = writeln!(out, "manifest of {}", root.display());
    let _ = writeln!(out, "  hash   {}", m.hash);
    let _ = writeln!(out, "  files  {} ({})", m.files.len(), human_size(total));
    if let Some(head) = m.metadata.get("git_head") {
        let reference = m
            .metadata
            .get("git_ref")
            .map_or("detached HEAD", String::as_str);
        let _ = writeln!(out, "  git    {head} ({reference})");
    }
    if !per_language.is_empty() {
        let _ = writeln!(out, "  by language:");
        // Languages the engine analyses first, "other" last.
        let mut rows: Vec<(&str, (usize, u64))> = per_language.into_iter().collect();
        rows.sort_by_key(|(name, _)| (*name == "other", *name));
        for (name, (count, size)) in rows {
            let _ = writeln!(
                out,
                "    {name:<11} {count:>6} file{} {:>10}",
                if count == 1 { " " } else { "s" },
                human_size(size)
            );
        }
    }
    if !snapshot.skipped.is_empty() {
        let _ = writeln!(out, "  skipped {} entries:", snapshot.skipped.len());
        for s in &snapshot.skipped {
            let _ = writeln!(out, "    {}: {}", s.path, s.reason);
        }
    }
    out
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
