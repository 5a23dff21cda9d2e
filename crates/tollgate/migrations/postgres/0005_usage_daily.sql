-- Daily aggregates of request_logs per UTC day, client key and model (SPEC §7). They
-- outlive the rows they are computed from: retention deletes old request_logs, never
-- these. Recomputed from request_logs by `Store::refresh_daily` (today every minute,
-- yesterday once after midnight, and a day before its rows are deleted).
-- A row's day is the day of its request id's time (ids start with Unix ms), so a day
-- is one key range of request_logs.
-- Portable: TEXT day, BIGINT counts, money in BIGINT nano-units, JSON as TEXT; key
-- columns are NOT NULL ('' stands for "none"), as PostgreSQL requires of a primary key.
-- PostgreSQL mirror of sqlite/0005: the key columns compare byte-wise (COLLATE "C"),
-- as on SQLite, so day ranges and the listing order are the same on both.
CREATE TABLE usage_daily (
    day                TEXT COLLATE "C" NOT NULL,   -- UTC day, YYYY-MM-DD
    key_id             TEXT COLLATE "C" NOT NULL,   -- client key id; '' when the call had none
    model              TEXT COLLATE "C" NOT NULL,   -- model served, else the one asked for; '' when neither
    owner              TEXT,                        -- the key's owner in the day's newest row
    requests           BIGINT NOT NULL,
    successes          BIGINT NOT NULL,             -- status < 400
    failures           BIGINT NOT NULL,             -- status >= 400
    errors             TEXT NOT NULL DEFAULT '{}',  -- {"error_type": count, …}
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    latency_avg_ms     BIGINT NOT NULL,             -- rounded to the millisecond
    latency_p95_ms     BIGINT NOT NULL,             -- nearest-rank percentiles
    latency_p99_ms     BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,             -- Unix ms of the last refresh
    PRIMARY KEY (day, key_id, model)
);
