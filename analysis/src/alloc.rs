//! Memory settings for programs that run the engine (the `hivesync` binary, the engine
//! benchmark). Indexing makes many small allocations (tree-sitter's parse trees, names, vectors):
//! such a program uses mimalloc as its global allocator, with mimalloc's `override` feature so
//! that tree-sitter's C code allocates there too, and calls [`prefer_small_pages`] first thing in
//! `main`:
//!
//! ```text
//! #[global_allocator]
//! static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
//!
//! fn main() {
//!     hivesync_analysis::alloc::prefer_small_pages();
//!     // …
//! }
//! ```

/// Turns transparent huge pages off for this process (Linux; elsewhere it does nothing). Where
/// the kernel backs every large anonymous mapping with 2 MiB pages (`transparent_hugepage` set to
/// `always`), mimalloc's regions fault in whole huge pages: on Django that cost five times the
/// system time and 50 % more peak memory than with 4 KiB pages.
pub fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    {
        // Not fatal: an old kernel without the flag just keeps its default.
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}
