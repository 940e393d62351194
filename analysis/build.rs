//! Computes the engine's fingerprint: a hash of everything that decides what the engine
//! extracts from a file — its sources and tree-sitter queries, its manifest and the workspace's
//! lock file (grammar and serializer versions). The persisted index cache
//! (`src/cache.rs`) keys every entry by it, so a cache written by any other build of the
//! engine is never used: no version number to forget to bump.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    collect(&dir.join("src"), &mut files);
    files.sort();
    files.push(dir.join("Cargo.toml"));
    files.push(dir.join("build.rs"));
    files.push(dir.join("../Cargo.lock"));
    // Two independent 64-bit hashes (FNV-1a and std's SipHash with fixed keys) make a
    // 128-bit fingerprint; it only has to tell builds apart.
    let mut fnv = Fnv(0xcbf2_9ce4_8422_2325);
    #[allow(deprecated)]
    let mut sip = std::hash::SipHasher::new_with_keys(0x6869_7665, 0x7379_6e63);
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&dir).unwrap_or(f);
        let bytes = std::fs::read(f).unwrap_or_default();
        for part in [rel.to_string_lossy().as_bytes(), &[0], &bytes[..], &[0]] {
            fnv.write(part);
            sip.write(part);
        }
    }
    fnv.write(
        std::env::var("CARGO_PKG_VERSION")
            .unwrap_or_default()
            .as_bytes(),
    );
    println!("cargo:rerun-if-changed={}", dir.join("src").display());
    println!(
        "cargo:rustc-env=HIVESYNC_ENGINE_FINGERPRINT={:016x}{:016x}",
        fnv.finish(),
        sip.finish()
    );
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs" || x == "scm") {
            out.push(path);
        }
    }
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
