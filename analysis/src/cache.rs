//! The persisted per-file index cache: each file's [`FileIndex`] kept on disk between runs, so
//! a restart (a CLI run, an editor start) indexes only the files that changed since.
//!
//! **Keys.** An entry is keyed by the blake3 hash of (pack format, engine fingerprint,
//! language, path, content). The fingerprint (`build.rs`) hashes the engine's sources, its
//! tree-sitter queries and the lock file, so a cache written by any other build is never used.
//!
//! **Where.** `HIVESYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/hivesync`, else `~/.cache/hivesync`;
//! packs live in its `index/` directory, one per project root (`<blake3 of the root path>.pack`,
//! one read and one write per run). Never inside the project: a cache directory inside the
//! root disables the cache. `HIVESYNC_NO_CACHE=1` disables it everywhere.
//!
//! **Pack format.** `magic, format version, fingerprint, entry count, entries (key, length,
//! postcard-encoded FileIndex), blake3 of everything before`. A pack that is truncated, fails
//! its checksum, or was written by another format or engine is ignored as a whole (and
//! replaced by the next write); an entry that does not decode is a miss. A cache problem is
//! never an error for the user: the file is parsed, as without a cache.
//!
//! **Writes** go to a temporary file in the same directory, renamed over the pack: readers see
//! the old pack or the new one, and concurrent writers each leave a whole pack (the last rename
//! wins). A write holds the entries of the files the run saw (entries of deleted files are
//! dropped); packs beyond the size bound (`HIVESYNC_CACHE_MAX_MB`, default 1024) are removed
//! least recently used first.
//!
//! **Salsa.** [`crate::AnalysisHost::load_dir_cached`] looks every file up (in parallel) and
//! stores the hit in the file's [`SourceFile::cached`](crate::db::SourceFile) input, beside the
//! very text `Arc` it belongs to; `file_index` returns it only for that text, so the query stays
//! a pure function of its inputs and an edited file is indexed as always.

use crate::Analysis;
use crate::db::file_index;
use crate::model::FileIndex;
use hivesync_protocol::Language;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Version of the pack layout (bump when the layout below changes).
pub const FORMAT_VERSION: u32 = 1;
/// Hash of the engine's sources, queries and dependency versions (see `build.rs`).
pub const FINGERPRINT: &str = env!("HIVESYNC_ENGINE_FINGERPRINT");
const MAGIC: &[u8; 8] = b"HSIDXPK\0";
const KEY_LEN: usize = 32;
const SUM_LEN: usize = 32;
/// Default bound of the `index/` directory.
const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Temporary files older than this are left-overs of a killed writer.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The key of one file's entry.
pub type CacheKey = [u8; KEY_LEN];

/// The key of a file's entry: blake3 of the pack format, the engine fingerprint, the
/// language, the path and the content.
pub fn cache_key(language: Language, path: &str, text: &str) -> CacheKey {
    let mut h = blake3::Hasher::new();
    h.update(&FORMAT_VERSION.to_le_bytes());
    h.update(FINGERPRINT.as_bytes());
    h.update(language.name().as_bytes());
    h.update(&[0]);
    h.update(&(path.len() as u64).to_le_bytes());
    h.update(path.as_bytes());
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

/// A file's cache entry as loaded: its key and, on a hit, the decoded index. Held by
/// [`SourceFile::cached`] together with the text it was computed for.
pub struct CachedIndex {
    /// The text the key was computed from (`file_index` compares the `Arc`, not the bytes).
    pub text: Arc<str>,
    pub key: CacheKey,
    /// The index read from the cache; `None` on a miss (the file is parsed).
    pub index: Option<Arc<FileIndex>>,
}

impl std::fmt::Debug for CachedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CachedIndex({} bytes, {})",
            self.text.len(),
            if self.index.is_some() { "hit" } else { "miss" }
        )
    }
}

/// What loading found in the cache.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CacheLoad {
    /// Files whose index came from the cache.
    pub hits: usize,
    /// Files to index (no entry, or one that did not decode).
    pub misses: usize,
    /// Size of the pack read.
    pub pack_bytes: u64,
    /// Why the pack was ignored as a whole, if it was (checksum, truncated, other version).
    pub ignored: Option<String>,
    /// Reading and checking the pack, hashing and decoding entries.
    #[serde(skip)]
    pub time: Duration,
}

/// What [`IndexCache::store`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CacheStore {
    /// A new pack was written (otherwise the old one was still right and was only touched).
    pub written: bool,
    /// Entries in the pack.
    pub entries: usize,
    /// Entries encoded by this run (files indexed by it).
    pub encoded: usize,
    /// Size of the pack.
    pub pack_bytes: u64,
    #[serde(skip)]
    pub time: Duration,
}

/// Errors while writing the cache (never fatal: callers log them and go on).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("index cache {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the analysis was cancelled by a newer change")]
    Cancelled,
    #[error("index cache {path}: the pack would be {bytes} bytes, over the cache's bound")]
    TooLarge { path: String, bytes: u64 },
}

/// The cache directory: `HIVESYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/hivesync`, else
/// `~/.cache/hivesync`; `None` without any of them.
pub fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("HIVESYNC_CACHE_DIR") {
        return Some(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return Some(d.join("hivesync"));
    }
    var("HOME").map(|h| h.join(".cache").join("hivesync"))
}

/// True when `HIVESYNC_NO_CACHE` asks for no cache (any value but empty, `0` or `false`).
pub fn disabled_by_env() -> bool {
    std::env::var("HIVESYNC_NO_CACHE")
        .is_ok_and(|v| !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")))
}

/// The persisted index of one project root. Cheap to create: nothing is read or written until
/// [`crate::AnalysisHost::load_dir_cached`] and [`IndexCache::store`].
pub struct IndexCache {
    dir: PathBuf,
    pack: PathBuf,
    max_bytes: u64,
    /// The pack read by the last load (its entries are copied, not re-encoded, on store).
    loaded: Mutex<Option<Arc<Pack>>>,
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexCache({})", self.pack.display())
    }
}

impl IndexCache {
    /// The cache of the project at `root` in [`default_dir`]; `None` when disabled
    /// (`HIVESYNC_NO_CACHE`), when no cache directory is known, or when it lies inside `root`.
    pub fn for_root(root: &Path) -> Option<IndexCache> {
        if disabled_by_env() {
            return None;
        }
        IndexCache::in_dir(&default_dir()?, root)
    }

    /// The cache of the project at `root` under `cache_dir`; `None` when `cache_dir` lies
    /// inside `root` (the cache never writes into a project).
    pub fn in_dir(cache_dir: &Path, root: &Path) -> Option<IndexCache> {
        let root = resolve(root);
        let cache_dir = resolve(cache_dir);
        if cache_dir.starts_with(&root) {
            return None;
        }
        let dir = cache_dir.join("index");
        let name = blake3::hash(root.to_string_lossy().as_bytes()).to_hex();
        let max_bytes = std::env::var("HIVESYNC_CACHE_MAX_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(DEFAULT_MAX_BYTES, |mb| mb.saturating_mul(1024 * 1024));
        Some(IndexCache {
            pack: dir.join(format!("{}.pack", &name.as_str()[..32])),
            dir,
            max_bytes,
            loaded: Mutex::new(None),
        })
    }

    /// Bounds the `index/` directory to `bytes` (default `HIVESYNC_CACHE_MAX_MB`, else 1 GiB).
    pub fn with_max_bytes(mut self, bytes: u64) -> IndexCache {
        self.max_bytes = bytes;
        self
    }

    /// The pack file of this root.
    pub fn pack_path(&self) -> &Path {
        &self.pack
    }

    /// Reads and checks the pack (an empty one when it is missing or ignored) and keeps it for
    /// [`IndexCache::store`].
    pub(crate) fn load(&self) -> (Arc<Pack>, Option<String>) {
        let (pack, ignored) = match std::fs::read(&self.pack) {
            Ok(bytes) => match Pack::parse(bytes) {
                Ok(p) => (p, None),
                Err(why) => (Pack::default(), Some(why.to_owned())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Pack::default(), None),
            Err(e) => (Pack::default(), Some(format!("cannot read: {e}"))),
        };
        let pack = Arc::new(pack);
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Some(pack.clone());
        (pack, ignored)
    }

    /// Writes the indexes of `analysis`'s files back: the entries that were hits, and the files
    /// this run indexed (the ones never indexed are left out). Files changed or edited since
    /// loading are left out too. The snapshot is dropped before encoding and writing, so a
    /// language server can run this on a blocking thread without holding up edits. Writes
    /// nothing when the pack on disk already holds exactly these entries.
    pub fn store(&self, analysis: Analysis) -> Result<CacheStore, CacheError> {
        let started = Instant::now();
        let collected = analysis.catch(|| Ok(collect(&analysis)));
        let db_log = analysis.db().index_tracker();
        drop(analysis);
        let entries = collected.map_err(|_| CacheError::Cancelled)?;
        db_log.stop();
        let old = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        let mut report = CacheStore {
            entries: entries.len(),
            ..CacheStore::default()
        };
        let unchanged = entries.len() == old.entries.len()
            && entries
                .iter()
                .all(|e| e.fresh.is_none() && old.entries.contains_key(&e.key));
        if unchanged {
            // Still right: only mark it recently used (for the size bound).
            let _ = std::fs::File::options()
                .write(true)
                .open(&self.pack)
                .and_then(|f| f.set_modified(SystemTime::now()));
            report.pack_bytes = old.size;
            report.time = started.elapsed();
            return Ok(report);
        }
        let encoded: Vec<(CacheKey, Option<Vec<u8>>)> = entries
            .par_iter()
            .map(|e| {
                let reuse = e.fresh.is_none() && old.entries.contains_key(&e.key);
                let bytes = if reuse {
                    None
                } else {
                    let index = e.fresh.as_ref().or(e.cached.as_ref());
                    index.and_then(|i| postcard::to_allocvec(&**i).ok())
                };
                (e.key, bytes)
            })
            .collect();
        report.encoded = entries.iter().filter(|e| e.fresh.is_some()).count();
        let mut rows: Vec<(&CacheKey, &[u8])> = encoded
            .iter()
            .filter_map(|(key, bytes)| match bytes {
                Some(b) => Some((key, b.as_slice())),
                None => old.payload(key).map(|p| (key, p)),
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        report.entries = rows.len();
        report.pack_bytes = self.write(&rows)?;
        report.written = true;
        self.prune();
        report.time = started.elapsed();
        Ok(report)
    }

    /// Writes a pack of `rows` (sorted keys) atomically: a temporary file renamed over the pack.
    fn write(&self, rows: &[(&CacheKey, &[u8])]) -> Result<u64, CacheError> {
        let size = (MAGIC.len() + 4 + 1 + FINGERPRINT.len() + 4 + SUM_LEN) as u64
            + rows
                .iter()
                .map(|(_, p)| (KEY_LEN + 4 + p.len()) as u64)
                .sum::<u64>();
        if size > self.max_bytes {
            return Err(CacheError::TooLarge {
                path: self.pack.display().to_string(),
                bytes: size,
            });
        }
        let io = |e: std::io::Error| CacheError::Io {
            path: self.pack.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let tmp = tempfile::Builder::new()
            .prefix(".pack-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(io)?;
        {
            let mut out = HashingWriter {
                inner: std::io::BufWriter::with_capacity(1 << 20, tmp.as_file()),
                hasher: blake3::Hasher::new(),
            };
            out.write_all(MAGIC).map_err(io)?;
            out.write_all(&FORMAT_VERSION.to_le_bytes()).map_err(io)?;
            out.write_all(&[FINGERPRINT.len() as u8]).map_err(io)?;
            out.write_all(FINGERPRINT.as_bytes()).map_err(io)?;
            out.write_all(&(rows.len() as u32).to_le_bytes())
                .map_err(io)?;
            for (key, payload) in rows {
                out.write_all(&key[..]).map_err(io)?;
                out.write_all(&(payload.len() as u32).to_le_bytes())
                    .map_err(io)?;
                out.write_all(payload).map_err(io)?;
            }
            let sum = out.hasher.finalize();
            out.inner.write_all(sum.as_bytes()).map_err(io)?;
            out.inner.flush().map_err(io)?;
        }
        tmp.persist(&self.pack).map_err(|e| io(e.error))?;
        Ok(size)
    }

    /// Keeps the `index/` directory under its bound: removes the least recently used packs
    /// (never this root's) and temporary files a killed writer left behind.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut packs: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".pack-") && name.ends_with(".tmp") {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                    let _ = std::fs::remove_file(&path);
                }
            } else if name.ends_with(".pack") && path != self.pack {
                packs.push((modified, meta.len(), path));
            }
        }
        let own = std::fs::metadata(&self.pack).map(|m| m.len()).unwrap_or(0);
        let mut total = own + packs.iter().map(|p| p.1).sum::<u64>();
        packs.sort();
        for (_, len, path) in packs {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// `path` made absolute, symbolic links resolved as far as it exists.
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |p, r| p.join(r));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Writes through, hashing what it writes.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A pack read from disk and checked: its bytes and where each entry's payload lies.
#[derive(Default)]
pub(crate) struct Pack {
    bytes: Vec<u8>,
    entries: FxHashMap<CacheKey, (usize, usize)>,
    size: u64,
}

impl Pack {
    /// Checks and indexes a pack; the reason it is unusable otherwise.
    fn parse(bytes: Vec<u8>) -> Result<Pack, &'static str> {
        let header = MAGIC.len() + 4 + 1;
        if bytes.len() < header + SUM_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not an index pack (or truncated)");
        }
        let body = bytes.len() - SUM_LEN;
        if blake3::hash(&bytes[..body]).as_bytes()[..] != bytes[body..] {
            return Err("checksum mismatch (corrupt or truncated)");
        }
        let mut cur = Cursor {
            bytes: &bytes[..body],
            at: MAGIC.len(),
        };
        if cur.u32()? != FORMAT_VERSION {
            return Err("written in another pack format");
        }
        let flen = cur.take(1)?[0] as usize;
        if cur.take(flen)? != FINGERPRINT.as_bytes() {
            return Err("written by another build of the engine");
        }
        let count = cur.u32()? as usize;
        let mut entries = FxHashMap::default();
        entries.reserve(count.min(body / (KEY_LEN + 4)));
        for _ in 0..count {
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(cur.take(KEY_LEN)?);
            let len = cur.u32()? as usize;
            let start = cur.at;
            cur.take(len)?;
            entries.insert(key, (start, len));
        }
        let at = cur.at;
        if at != body {
            return Err("trailing bytes");
        }
        let size = bytes.len() as u64;
        Ok(Pack {
            bytes,
            entries,
            size,
        })
    }

    fn payload(&self, key: &CacheKey) -> Option<&[u8]> {
        let &(start, len) = self.entries.get(key)?;
        self.bytes.get(start..start + len)
    }

    /// The decoded index of `key`, if the pack has one that decodes.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<FileIndex> {
        postcard::from_bytes(self.payload(key)?).ok()
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// Reads a pack's fields in order, never past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let s = self
            .bytes
            .get(self.at..self.at.saturating_add(n))
            .ok_or("truncated")?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// One file to write back.
struct Pending {
    key: CacheKey,
    /// Read from the cache (a hit).
    cached: Option<Arc<FileIndex>>,
    /// Indexed by this run.
    fresh: Option<Arc<FileIndex>>,
}

/// The files whose entries go into the next pack: hits, and files this run indexed, whose text
/// is still the one loaded.
fn collect(analysis: &Analysis) -> Vec<Pending> {
    let db = analysis.db();
    let indexed = db.index_tracker().executed();
    let mut out = Vec::new();
    for f in analysis.all_files() {
        salsa::Database::unwind_if_revision_cancelled(db);
        let Some(c) = f.cached(db) else { continue };
        if !Arc::ptr_eq(&c.text, f.text(db)) {
            continue;
        }
        match &c.index {
            Some(index) => out.push(Pending {
                key: c.key,
                cached: Some(index.clone()),
                fresh: None,
            }),
            None if indexed.contains(&salsa::plumbing::AsId::as_id(&f)) => out.push(Pending {
                key: c.key,
                cached: None,
                fresh: Some(file_index(db, f)),
            }),
            None => {}
        }
    }
    out
}
