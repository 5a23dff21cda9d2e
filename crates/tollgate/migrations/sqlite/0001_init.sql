-- Tollgate schema, version 1. Portable by design: TEXT ids, BIGINT unix-millisecond
-- timestamps, money in BIGINT nano-units, JSON as TEXT; the PostgreSQL migrations
-- mirror these tables type for type.

CREATE TABLE client_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    owner        TEXT,
    team         TEXT,
    tier         TEXT NOT NULL DEFAULT 'standard',
    env          TEXT NOT NULL DEFAULT 'live',
    secret_hash  TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the secret
    masked       TEXT NOT NULL,          -- tg-live-AbCd…wXyZ
    status       TEXT NOT NULL DEFAULT 'active',  -- active | suspended | revoked
    expires_at   BIGINT,
    dedicated_upstream TEXT,                      -- the upstream key only this client uses
    region       TEXT,                            -- preferred upstream key region
    policy       TEXT NOT NULL DEFAULT '{}',      -- permissions, limits, budgets (JSON)
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX client_keys_owner ON client_keys (owner);

-- Change counters that running gateways poll, so a change made by the CLI or another
-- replica applies within a second without a restart.
CREATE TABLE revisions (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('client_keys', 0);

-- One row per call, written in batches off the request path; idempotent by request id.
-- The table is clustered by request id, and request ids start with the time
-- (req_<12 hex digits of Unix ms><random>): rows are appended at the end, and a time
-- range is a key range (request_id BETWEEN 'req_<from>' AND 'req_<to>'), with no
-- second B-tree to maintain on every insert.
CREATE TABLE request_logs (
    request_id         TEXT NOT NULL PRIMARY KEY,
    created_at         BIGINT NOT NULL,
    key_id             TEXT,
    owner              TEXT,
    endpoint           TEXT NOT NULL,
    model_requested    TEXT,
    model_served       TEXT,
    provider           TEXT,
    upstream_key_id    TEXT,
    status             INTEGER NOT NULL,
    error_type         TEXT,
    stream             INTEGER NOT NULL DEFAULT 0,
    latency_ms         BIGINT NOT NULL,
    ttfb_ms            BIGINT,
    prompt_tokens      BIGINT NOT NULL DEFAULT 0,
    completion_tokens  BIGINT NOT NULL DEFAULT 0,
    usage_estimated    INTEGER NOT NULL DEFAULT 0,
    cost_nanos         BIGINT NOT NULL DEFAULT 0,
    cache_hit          INTEGER NOT NULL DEFAULT 0,
    downgraded_from    TEXT,
    client_ip          TEXT,
    user_agent         TEXT
) WITHOUT ROWID;
