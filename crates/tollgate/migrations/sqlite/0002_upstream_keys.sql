-- Upstream (provider) keys added at run time (`tollgate upstream add`, admin API).
-- The secret is stored only sealed: AES-256-GCM under the master key (SPEC §1), the
-- 12-byte nonce and the ciphertext (with its 16-byte tag) as standard base64 TEXT, so
-- the PostgreSQL mirror uses the same types, and the fingerprint of the master key
-- that sealed it (a row under another key is refused, never used as plaintext).
-- `masked` (first 4 + … + last 4) is all listings ever show.
-- Limits are configuration; NULL means unlimited. daily_budget is money, so like
-- cost_nanos it is BIGINT nano-units of the configured currency (1.0 = 1e9).
CREATE TABLE upstream_keys (
    id                  TEXT PRIMARY KEY,           -- [A-Za-z0-9_.-]+, chosen by the operator
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
