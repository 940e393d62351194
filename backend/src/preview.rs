//! Preview sessions' machinery: the short tokens a phone types or scans ([`new_token`],
//! [`normalize_token`]), safe extraction of uploaded bundles ([`extract_bundle`]: `.zip` or
//! `.tar.gz`, every limit checked before or during extraction, nothing left behind on refusal),
//! and the preview content origin ([`content_router`]), served on its own listener so previews
//! never share an origin with the API. The HTTP routes that manage previews are in
//! `routes::previews`.

use crate::state::AppState;
use crate::store::Preview;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as AxumPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flate2::read::GzDecoder;
use rand_core::{OsRng, RngCore};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Tokens

/// Crockford's base32 alphabet: no I, L, O or U, so what a person types is unambiguous.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random bits in a token (16 characters of 5 bits).
pub const TOKEN_BITS: usize = 80;
const TOKEN_CHARS: usize = TOKEN_BITS / 5;
const GROUP: usize = 4;

/// A fresh token from the OS CSPRNG, shown as `XXXX-XXXX-XXXX-XXXX` (80 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BITS / 8];
    OsRng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(TOKEN_CHARS + TOKEN_CHARS / GROUP);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut n = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if n > 0 && n % GROUP == 0 {
                out.push('-');
            }
            out.push(char::from(CROCKFORD[((acc >> bits) & 31) as usize]));
            n += 1;
        }
    }
    out
}

/// The canonical form of a typed token: hyphens and spaces dropped, upper-cased, `O`→`0`,
/// `I`/`L`→`1`. `None` when what remains is not a token (wrong length or character).
pub fn normalize_token(input: &str) -> Option<String> {
    let mut out = String::with_capacity(TOKEN_CHARS);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == TOKEN_CHARS).then_some(out)
}

/// The stored form of a (normalised) preview token.
pub fn preview_token_hash(normalized: &str) -> String {
    crate::auth::token_hash(&format!("preview:{normalized}"))
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// Limits on one bundle.
#[derive(Debug, Clone, Copy)]
pub struct BundleLimits {
    pub max_files: u64,
    pub max_unpacked_bytes: u64,
}

/// What an accepted bundle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    pub file_count: u64,
    pub unpacked_bytes: u64,
}

/// Why a bundle was refused. Each has a stable code for the API.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle is neither a .zip nor a .tar.gz archive")]
    UnknownFormat,
    #[error("the archive is damaged or unreadable: {0}")]
    Corrupt(String),
    #[error("entry {0:?} has an unsafe path (absolute, drive, `..`, backslash or empty segment)")]
    UnsafePath(String),
    #[error("entry {0:?} is a symbolic or hard link; bundles may hold only files and directories")]
    Link(String),
    #[error("entry {0:?} is a device, FIFO or other special file")]
    Special(String),
    #[error("entry {0:?} appears more than once")]
    Duplicate(String),
    #[error("the bundle holds more than {0} files")]
    TooManyFiles(u64),
    #[error("the bundle unpacks to more than {0} bytes")]
    TooLarge(u64),
    #[error("the entry file {0:?} is not in the bundle")]
    MissingEntry(String),
    #[error("cannot write the extracted files: {0}")]
    Io(String),
}

impl BundleError {
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::UnknownFormat => "unknown_format",
            BundleError::Corrupt(_) => "corrupt_archive",
            BundleError::UnsafePath(_) => "unsafe_path",
            BundleError::Link(_) => "link_entry",
            BundleError::Special(_) => "special_entry",
            BundleError::Duplicate(_) => "duplicate_entry",
            BundleError::TooManyFiles(_) => "too_many_files",
            BundleError::TooLarge(_) => "too_large",
            BundleError::MissingEntry(_) => "missing_entry",
            BundleError::Io(_) => "io",
        }
    }
}

fn io_err(e: io::Error) -> BundleError {
    BundleError::Io(e.to_string())
}

/// A relative, `/`-separated path with plain segments (a leading `./` is dropped);
/// `None` for the archive root itself.
fn clean_entry_path(raw: &str) -> Result<Option<String>, BundleError> {
    let mut path = raw;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_end_matches('/');
    if path.is_empty() || path == "." {
        return Ok(None);
    }
    hivesync_analysis::manifest::validate_manifest_path(path)
        .map_err(|_| BundleError::UnsafePath(raw.to_string()))?;
    Ok(Some(path.to_string()))
}

/// Extraction into a fresh directory, keeping the count and size within the limits.
struct Writer<'a> {
    root: &'a Path,
    limits: BundleLimits,
    seen: HashSet<String>,
    files: u64,
    bytes: u64,
}

impl Writer<'_> {
    fn claim(&mut self, path: &str, raw: &str) -> Result<(), BundleError> {
        if !self.seen.insert(path.to_string()) {
            return Err(BundleError::Duplicate(raw.to_string()));
        }
        Ok(())
    }

    fn dir(&mut self, path: &str, raw: &str) -> Result<(), BundleError> {
        self.claim(path, raw)?;
        fs::create_dir_all(self.root.join(path)).map_err(io_err)
    }

    fn file(&mut self, path: &str, raw: &str, content: &mut dyn Read) -> Result<(), BundleError> {
        self.claim(path, raw)?;
        self.files += 1;
        if self.files > self.limits.max_files {
            return Err(BundleError::TooManyFiles(self.limits.max_files));
        }
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err)?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io_err)?;
        // Copy at most one byte past what the limit still allows: declared sizes may lie.
        let allowed = self.limits.max_unpacked_bytes - self.bytes;
        let written = io::copy(&mut content.take(allowed + 1), &mut out)
            .map_err(|e| BundleError::Corrupt(e.to_string()))?;
        if written > allowed {
            return Err(BundleError::TooLarge(self.limits.max_unpacked_bytes));
        }
        self.bytes += written;
        out.flush().map_err(io_err)
    }
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

fn extract_zip(archive: File, w: &mut Writer<'_>) -> Result<(), BundleError> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| BundleError::Corrupt(e.to_string()))?;
    // Before extracting: the central directory's count and declared sizes.
    if zip.len() as u64 > w.limits.max_files.saturating_mul(2).saturating_add(1000) {
        return Err(BundleError::TooManyFiles(w.limits.max_files));
    }
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| BundleError::Corrupt(e.to_string()))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > w.limits.max_unpacked_bytes {
        return Err(BundleError::TooLarge(w.limits.max_unpacked_bytes));
    }
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| BundleError::Corrupt(e.to_string()))?;
        let raw = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let mode = entry.unix_mode().map(|m| m & S_IFMT);
        if entry.is_symlink() || mode == Some(S_IFLNK) {
            return Err(BundleError::Link(raw));
        }
        if let Some(m) = mode
            && m != 0
            && m != S_IFREG
            && m != S_IFDIR
        {
            return Err(BundleError::Special(raw));
        }
        let Some(path) = clean_entry_path(&raw)? else {
            continue;
        };
        if entry.is_dir() {
            w.dir(&path, &raw)?;
        } else {
            w.file(&path, &raw, &mut entry)?;
        }
    }
    Ok(())
}

fn extract_tar_gz(archive: File, w: &mut Writer<'_>) -> Result<(), BundleError> {
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let entries = tar
        .entries()
        .map_err(|e| BundleError::Corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| BundleError::Corrupt(e.to_string()))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        use tar::EntryType;
        match kind {
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            EntryType::Symlink | EntryType::Link => return Err(BundleError::Link(raw)),
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            _ => return Err(BundleError::Special(raw)),
        }
        let Some(path) = clean_entry_path(&raw)? else {
            continue;
        };
        if kind == EntryType::Directory {
            w.dir(&path, &raw)?;
        } else {
            // Declared size checked before reading the content.
            let size = entry.header().size().unwrap_or(u64::MAX);
            if w.bytes.saturating_add(size) > w.limits.max_unpacked_bytes {
                return Err(BundleError::TooLarge(w.limits.max_unpacked_bytes));
            }
            w.file(&path, &raw, &mut entry)?;
        }
    }
    Ok(())
}

/// Extracts the archive at `archive` (zip or gzip'd tar, recognised by its first bytes) into
/// `dest`, a directory that must not exist yet, checking paths, entry kinds, duplicates, the
/// limits and the presence of `entry`. On any refusal `dest` is removed again.
pub fn extract_bundle(
    archive: &Path,
    dest: &Path,
    entry: &str,
    limits: BundleLimits,
) -> Result<Extracted, BundleError> {
    fs::create_dir(dest).map_err(io_err)?;
    let result = (|| {
        let mut file = File::open(archive).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        let mut w = Writer {
            root: dest,
            limits,
            seen: HashSet::new(),
            files: 0,
            bytes: 0,
        };
        match &magic[..n] {
            [b'P', b'K', 3, 4] | [b'P', b'K', 5, 6] => extract_zip(file, &mut w)?,
            [0x1f, 0x8b, ..] => extract_tar_gz(file, &mut w)?,
            _ => return Err(BundleError::UnknownFormat),
        }
        let entry_file = dest.join(entry);
        let is_file = fs::symlink_metadata(&entry_file).is_ok_and(|m| m.is_file());
        if !w.seen.contains(entry) || !is_file {
            return Err(BundleError::MissingEntry(entry.to_string()));
        }
        Ok(Extracted {
            file_count: w.files,
            unpacked_bytes: w.bytes,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

/// Where a preview's files live: `<data_dir>/previews/<id>`.
pub fn preview_dir(data_dir: &Path, id: Uuid) -> PathBuf {
    data_dir.join("previews").join(id.to_string())
}

// ---------------------------------------------------------------------------------------------
// Content origin

/// The policy every preview response carries: scripts, styles and media from the preview
/// itself only, no plugins, no form posts or base changes elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
     media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
     form-action 'self'";

/// The URL a ready preview opens at.
pub fn open_url(state: &AppState, preview: &Preview) -> String {
    format!(
        "{}/p/{}/{}",
        state.config.config.preview_base(),
        preview.id,
        preview.entry
    )
}

/// The content type for a file name (by extension).
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    let mut r = (StatusCode::NOT_FOUND, "not found").into_response();
    set_security_headers(&mut r);
    r
}

fn set_security_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revocation and expiry take effect at once: nothing may be reused without asking.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
}

/// Serves one file of a live preview; anything else (unknown, pending, expired, revoked,
/// missing file, unsafe path) is the same plain 404.
async fn serve(state: &AppState, id: &str, path: &str) -> Response {
    let Ok(id) = Uuid::parse_str(id) else {
        return not_found();
    };
    let preview = match state.previews.preview(id).await {
        Ok(Some(p)) if p.is_live(crate::store::now()) => p,
        Ok(_) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "preview lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response();
        }
    };
    let path = if path.is_empty() || path.ends_with('/') {
        format!(
            "{path}{}",
            if path.is_empty() {
                preview.entry.as_str()
            } else {
                "index.html"
            }
        )
    } else {
        path.to_string()
    };
    if hivesync_analysis::manifest::validate_manifest_path(&path).is_err() {
        return not_found();
    }
    let file = preview_dir(&state.config.config.data_dir, id).join(&path);
    match tokio::fs::symlink_metadata(&file).await {
        Ok(m) if m.is_file() => {}
        _ => return not_found(),
    }
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return not_found();
    };
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    set_security_headers(&mut response);
    response
}

async fn serve_root(State(state): State<AppState>, AxumPath(id): AxumPath<String>) -> Response {
    serve(&state, &id, "").await
}

async fn serve_path(
    State(state): State<AppState>,
    AxumPath((id, path)): AxumPath<(String, String)>,
) -> Response {
    serve(&state, &id, &path).await
}

/// The preview origin: `GET /p/{preview_id}/{path}` for live previews, nothing else.
pub fn content_router(state: AppState) -> Router {
    Router::new()
        .route("/p/{preview_id}", get(serve_root))
        .route("/p/{preview_id}/", get(serve_root))
        .route("/p/{preview_id}/{*path}", get(serve_path))
        .fallback(|| async { not_found() })
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_grouped_crockford_and_normalise() {
        let t = new_token();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(t.matches('-').count(), 3);
        let n = normalize_token(&t).expect("own token normalises");
        assert_eq!(n, t.replace('-', ""));
        let typed = t.to_lowercase().replace('-', " ");
        assert_eq!(normalize_token(&typed).as_deref(), Some(n.as_str()));
        assert_eq!(
            normalize_token("o1il-0000-0000-000l").as_deref(),
            Some("0111000000000001")
        );
        assert_eq!(normalize_token("ABCD-EFGH"), None);
        assert_eq!(normalize_token("UUUU-UUUU-UUUU-UUUU"), None);
        assert_ne!(new_token(), new_token());
    }

    #[test]
    fn entry_paths_are_cleaned_or_refused() {
        assert_eq!(
            clean_entry_path("./a/b.js").expect("ok").as_deref(),
            Some("a/b.js")
        );
        assert_eq!(clean_entry_path("./").expect("ok"), None);
        assert_eq!(
            clean_entry_path("dir/").expect("ok").as_deref(),
            Some("dir")
        );
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            "C:/x",
            "a\\..\\x",
            "a//b",
        ] {
            assert!(clean_entry_path(bad).is_err(), "{bad}");
        }
    }
}
