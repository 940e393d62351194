-- Background jobs: the source of truth for every queue implementation (embedded or RabbitMQ).
-- status: queued -> running -> succeeded | failed | cancelled. Times are Unix milliseconds.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    progress_done BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT NOT NULL DEFAULT 0,
    progress_message TEXT,
    error TEXT,
    result TEXT,
    lease_until BIGINT,
    heartbeat_at BIGINT,
    run_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX jobs_claim ON jobs (status, kind, run_after);
CREATE INDEX jobs_project ON jobs (project_id, status, created_at);
