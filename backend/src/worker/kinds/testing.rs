//! Test-only job kinds, registered only when `HIVESYNC_TEST_JOB_KINDS=1` (see
//! [`super::registry`]), so end-to-end tests and benchmarks can drive real worker processes:
//! - `test_noop` — returns `{}` at once;
//! - `test_sleep` `{ms, dir}` — appends `started <pid>` to `<dir>/<job id>.log`, sleeps `ms`
//!   reporting progress, then writes `<dir>/<job id>.result` once (idempotent by job id: a
//!   second run keeps the first result file) and returns its content;
//! - `test_fail` — always fails with a retryable error.

use crate::state::AppState;
use crate::worker::{JobContext, JobError, JobHandler, Registry};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub fn register(r: &mut Registry) {
    r.register(Arc::new(Noop));
    r.register(Arc::new(Sleep));
    r.register(Arc::new(Fail));
}

pub struct Noop;

#[async_trait::async_trait]
impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        "test_noop"
    }
    async fn validate(&self, _: &AppState, _: Uuid, _: &Value) -> Result<(), String> {
        Ok(())
    }
    async fn run(&self, _: &JobContext) -> Result<Value, JobError> {
        Ok(json!({}))
    }
}

pub struct Fail;

#[async_trait::async_trait]
impl JobHandler for Fail {
    fn kind(&self) -> &'static str {
        "test_fail"
    }
    async fn validate(&self, _: &AppState, _: Uuid, _: &Value) -> Result<(), String> {
        Ok(())
    }
    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        Err(JobError::Retryable(format!(
            "test failure, attempt {}",
            ctx.job.attempts
        )))
    }
}

pub struct Sleep;

fn sleep_params(params: &Value) -> Result<(u64, String), String> {
    let ms = params["ms"]
        .as_u64()
        .ok_or("params.ms must be a number of milliseconds")?;
    let dir = params["dir"]
        .as_str()
        .ok_or("params.dir must be a directory path")?;
    Ok((ms, dir.to_string()))
}

#[async_trait::async_trait]
impl JobHandler for Sleep {
    fn kind(&self) -> &'static str {
        "test_sleep"
    }
    async fn validate(&self, _: &AppState, _: Uuid, params: &Value) -> Result<(), String> {
        sleep_params(params).map(|_| ())
    }
    async fn run(&self, ctx: &JobContext) -> Result<Value, JobError> {
        let (ms, dir) = sleep_params(&ctx.job.params).map_err(JobError::Permanent)?;
        let dir = std::path::PathBuf::from(dir);
        let io = |e: std::io::Error| JobError::Retryable(format!("test_sleep: {e}"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", ctx.job.id)))
            .map_err(io)?;
        writeln!(log, "started {}", std::process::id()).map_err(io)?;
        let steps = ms.div_ceil(50).max(1);
        for step in 0..steps {
            ctx.progress(step, steps, "sleeping").await?;
            tokio::time::sleep(Duration::from_millis(ms / steps)).await;
        }
        ctx.progress(steps, steps, "done").await?;
        let result = dir.join(format!("{}.result", ctx.job.id));
        let mine = json!({"pid": std::process::id()}).to_string();
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&result)
        {
            Ok(mut f) => f.write_all(mine.as_bytes()).map_err(io)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let text = std::fs::read_to_string(&result).map_err(io)?;
        serde_json::from_str(&text).map_err(|e| JobError::Permanent(e.to_string()))
    }
}
