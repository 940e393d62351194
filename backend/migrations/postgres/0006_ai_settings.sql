-- Per-project AI provider settings (one row per project; no row = the offline provider).
-- The API key is write-only through the API: stored here, never returned or logged.
CREATE TABLE ai_settings (
    project_id TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    base_url TEXT,
    model TEXT,
    api_key TEXT,
    timeout_ms BIGINT NOT NULL,
    max_retries BIGINT NOT NULL,
    token_budget BIGINT NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);
