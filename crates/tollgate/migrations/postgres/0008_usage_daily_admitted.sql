-- PostgreSQL mirror of sqlite/0008.
-- usage_daily counts the calls that reached a model (`admitted`: the request log rows
-- with a model_served), so that in-process limits and budgets resume the month at
-- start from these per-day rows (Store::usage_totals_month) instead of sorting every
-- request log row since the 1st (which grew with the month's traffic: ~45 s at a
-- million calls a day). Tokens and cost were already exact here: refused calls have
-- none. Rows written before this migration do not know their count: -1, until a
-- recomputation from the log (Store::refresh_daily) writes it; while a month holds
-- such a row, the resume reads the request log as before.
ALTER TABLE usage_daily ADD COLUMN admitted BIGINT NOT NULL DEFAULT -1;
