//! What background jobs do, as plain functions the job runtime (`worker`) wraps in its
//! handlers: [`snapshot::materialize`] writes a committed snapshot's files into a directory for
//! the engine, [`refactor`] plans a rename on a snapshot and stores it as a proposal. Each is
//! idempotent by job id (a redelivered job finds the proposal it made the first time).

pub mod refactor;
pub mod snapshot;
