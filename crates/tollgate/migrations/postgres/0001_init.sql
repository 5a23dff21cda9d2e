-- Tollgate schema, version 1, for PostgreSQL: migrations/sqlite/0001_init.sql table for
-- table. TEXT ids, BIGINT unix-millisecond timestamps, money in BIGINT nano-units,
-- JSON as TEXT. Every integer column is BIGINT (SQLite's INTEGER is 64-bit, and the
-- code reads i64); SQLite's 0/1 INTEGER flags are BOOLEAN here (the code binds and
-- reads bool). Ids compare byte-wise (COLLATE "C"), as on SQLite.

CREATE TABLE client_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
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
-- replica applies within a second without a restart. A writer of a table updates its
-- row first, so the row's lock makes that table's writers take turns.
CREATE TABLE revisions (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('client_keys', 0);

-- One row per call, written in batches off the request path; idempotent by request id.
-- Request ids start with the time (req_<12 hex digits of Unix ms><random>), so the
-- primary key's B-tree, compared byte-wise (COLLATE "C"), is also the time index: a
-- time range is a key range (request_id BETWEEN 'req_<from>' AND 'req_<to>'), and
-- rows arrive in key order, so the heap is appended to in that order too and a range
-- reads neighbouring pages. No second index to maintain on every insert.
CREATE TABLE request_logs (
    request_id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_at         BIGINT NOT NULL,
    key_id             TEXT,
    owner              TEXT,
    endpoint           TEXT NOT NULL,
    model_requested    TEXT,
    model_served       TEXT,
    provider           TEXT,
    upstream_key_id    TEXT,
    status             BIGINT NOT NULL,
    error_type         TEXT,
    stream             BOOLEAN NOT NULL DEFAULT FALSE,
    latency_ms         BIGINT NOT NULL,
    ttfb_ms            BIGINT,
    prompt_tokens      BIGINT NOT NULL DEFAULT 0,
    completion_tokens  BIGINT NOT NULL DEFAULT 0,
    usage_estimated    BOOLEAN NOT NULL DEFAULT FALSE,
    cost_nanos         BIGINT NOT NULL DEFAULT 0,
    cache_hit          BOOLEAN NOT NULL DEFAULT FALSE,
    downgraded_from    TEXT,
    client_ip          TEXT,
    user_agent         TEXT
);
