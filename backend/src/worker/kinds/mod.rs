//! The built-in job kinds: `refactor` (a rename proposal), `docs` and `explain` (AI
//! documentation proposals and AI thread replies), `preview_cleanup` (scheduled maintenance)
//! and `repo_sync` (mirror a git remote and record a snapshot of it). With `HIVESYNC_TEST_JOB_KINDS=1` in the
//! environment the test-only kinds of [`testing`] are registered too (end-to-end tests and
//! benchmarks run them in real `hivesync worker` processes).

pub mod ai;
pub mod preview_cleanup;
pub mod refactor;
pub mod repo_sync;
pub mod testing;

use super::Registry;
use std::sync::Arc;

/// Every built-in kind (and the test kinds when `HIVESYNC_TEST_JOB_KINDS=1`).
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Arc::new(preview_cleanup::PreviewCleanup));
    r.register(Arc::new(repo_sync::RepoSync));
    r.register(Arc::new(refactor::Refactor));
    r.register(Arc::new(ai::Docs));
    r.register(Arc::new(ai::Explain));
    if std::env::var("HIVESYNC_TEST_JOB_KINDS").is_ok_and(|v| v == "1") {
        testing::register(&mut r);
    }
    r
}
