-- PostgreSQL mirror of sqlite/0007.
-- usage_daily is kept up to date by the usage writer: each batch of request log rows
-- adds its calls to their days' rows in the same transaction (Store::insert_usage),
-- instead of a task recomputing today from all of today's rows every minute (a scan
-- that grew with the day's traffic). To add a batch to a row, the row keeps what its
-- derived figures come from: the latency sum (for the average) and the latency counts
-- (for p95/p99: store::reports::Latencies::to_bytes, one LEB128 count per value).
-- Rows written before this migration get their sum back from the average; their counts
-- stay empty, so a day that was open at the upgrade takes its percentiles from the
-- calls added since.
ALTER TABLE usage_daily ADD COLUMN latency_sum_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN latency_counts BYTEA NOT NULL DEFAULT ''::bytea;
UPDATE usage_daily SET latency_sum_ms = latency_avg_ms * requests;
