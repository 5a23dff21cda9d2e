-- Alert history (SPEC §9): one row each time an alert fires and each time it resolves.
-- An alert is one rule about one subject (an upstream key, a provider, a budget); it
-- fires once when its condition becomes true and resolves once when it becomes false.
-- Portable types as in 0001: TEXT ids, BIGINT unix-millisecond timestamps, DOUBLE
-- PRECISION figures; the PostgreSQL mirror is the same statements.
-- Ids start with the time (alert_<12 hex digits of Unix ms><random>), so newest first
-- is the primary key read backwards, and rows are appended at the end.
CREATE TABLE alert_events (
    id         TEXT NOT NULL PRIMARY KEY,
    rule       TEXT NOT NULL,              -- the rule's name
    kind       TEXT NOT NULL,              -- upstream_utilization | error_rate | budget | unused_key | invalid_key
    subject    TEXT NOT NULL,              -- e.g. upstream_key=openai/oa-1, provider=openai, budget=global/daily
    state      TEXT NOT NULL,              -- fired | resolved
    message    TEXT NOT NULL,              -- what happened, for people; never a secret
    value      DOUBLE PRECISION,           -- the measured figure, when the rule has one
    threshold  DOUBLE PRECISION,           -- the rule's threshold, when it has one
    at         BIGINT NOT NULL             -- Unix ms of the evaluation that saw the change
) WITHOUT ROWID;
-- The latest event of each alert, read at start to carry open episodes over a restart.
CREATE INDEX alert_events_rule_subject ON alert_events (rule, subject, id);
