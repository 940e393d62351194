//! Wire types shared by every HiveSync party — the CLI, the language server, the backend, the
//! workers and the clients. This crate owns the *shape* of what crosses a process boundary and
//! nothing else: serde only, no I/O, no async, no hashing. Every type here serialises to the JSON
//! documented on it, and that JSON is the contract: change it only together with its readers.

pub mod changeset;
pub mod error;
pub mod manifest;

pub use changeset::{ChangeSet, Confidence, FileChange, TextEdit};
pub use error::{ApiError, ApiErrorBody};
pub use manifest::{Language, Manifest, ManifestFile};
