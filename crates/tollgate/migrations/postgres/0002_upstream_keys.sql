-- Upstream (provider) keys added at run time: migrations/sqlite/0002_upstream_keys.sql
-- table for table (see there). The secret is stored only sealed (AES-256-GCM under
-- the master key, nonce and ciphertext as base64 TEXT) with the fingerprint of the
-- master key that sealed it; `masked` is all listings ever show. NULL limits mean
-- unlimited; daily_budget is BIGINT nano-units of the configured currency.
CREATE TABLE upstream_keys (
    id                  TEXT COLLATE "C" PRIMARY KEY,  -- [A-Za-z0-9_.-]+, chosen by the operator
    provider            TEXT NOT NULL,              -- a [[providers]] name
    status              TEXT NOT NULL DEFAULT 'enabled',  -- enabled | disabled
    nonce               TEXT NOT NULL,              -- base64, 12 bytes
    ciphertext          TEXT NOT NULL,              -- base64, AES-256-GCM output
    key_fingerprint     TEXT NOT NULL,              -- 8 hex digits naming the master key
    masked              TEXT NOT NULL,              -- sk-p…wXyZ
    rpm                 BIGINT,
    tpm                 BIGINT,
    daily_budget_nanos  BIGINT,
    region              TEXT,
    weight              BIGINT NOT NULL DEFAULT 1,
    tier                TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX upstream_keys_provider ON upstream_keys (provider);

INSERT INTO revisions (name, value) VALUES ('upstream_keys', 0);
