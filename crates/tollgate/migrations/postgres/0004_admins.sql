-- Admin users and their sessions (SPEC §1, §8), for PostgreSQL: mirrors sqlite/0004.
-- TEXT ids and usernames (byte-wise order, as on SQLite), BIGINT unix-millisecond
-- timestamps.

-- People who may use the admin API and dashboard. The password is stored only as an
-- argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
CREATE TABLE admin_users (
    id             TEXT COLLATE "C" PRIMARY KEY,
    username       TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Logged-in sessions, shared by every replica. The bearer token itself is never
-- stored: only the hex SHA-256 of it (a 256-bit random token needs no slow hash).
CREATE TABLE admin_sessions (
    token_hash  TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX admin_sessions_username ON admin_sessions (username);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);
