use super::*;
use crate::store::testing::on_both_backends;

on_both_backends!(
    reports_group_by_day_model_key_and_owner,
    reports_without_rows,
    report_percentiles_per_group,
    report_filters,
    log_pages_are_newest_first_and_stable,
    retention_deletes_only_older_rows_in_chunks,
    apply_retention_aggregates_then_deletes_old_days,
    refresh_daily_is_idempotent,
    concurrent_refreshes_of_a_day_take_turns,
    catch_up_fills_missing_days_within_retention,
    the_writer_keeps_daily_aggregates_equal_to_a_refresh,
    concurrent_batches_all_count_in_the_daily_aggregates,
    whole_day_reports_from_usage_daily_equal_the_log,
);

/// 2024-03-10T00:00:00Z.
const DAY1: i64 = 1_710_028_800_000;
const DAY_MS: i64 = 86_400_000;

/// A request log row, written with plain SQL (independent of the writer's types).
#[derive(Clone)]
struct Row {
    at_ms: i64,
    seq: u64,
    key: &'static str,
    owner: Option<&'static str>,
    requested: Option<&'static str>,
    served: Option<&'static str>,
    status: i64,
    error: Option<&'static str>,
    latency: i64,
    prompt: i64,
    completion: i64,
    cost_nanos: i64,
}

fn row(at_ms: i64, seq: u64) -> Row {
    Row {
        at_ms,
        seq,
        key: "k1",
        owner: Some("alice"),
        requested: Some("gpt"),
        served: Some("gpt"),
        status: 200,
        error: None,
        latency: 100,
        prompt: 10,
        completion: 5,
        cost_nanos: 1_000,
    }
}

impl Row {
    fn id(&self) -> String {
        format!("req_{:012x}{:012x}", self.at_ms, self.seq)
    }
}

async fn insert(store: &Store, rows: &[Row]) {
    for r in rows {
        with_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO request_logs (request_id, created_at, key_id, owner, endpoint,
                    model_requested, model_served, status, error_type, latency_ms,
                    prompt_tokens, completion_tokens, cost_nanos)
                 VALUES ($1, $2, $3, $4, '/v1/chat/completions', $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(r.id())
            // created_at a little after the id's time, as in the gateway.
            .bind(r.at_ms + 3)
            .bind(r.key)
            .bind(r.owner)
            .bind(r.requested)
            .bind(r.served)
            .bind(r.status)
            .bind(r.error)
            .bind(r.latency)
            .bind(r.prompt)
            .bind(r.completion)
            .bind(r.cost_nanos)
            .execute(pool)
            .await
            .expect("insert");
        });
    }
}

/// [`insert`], then `usage_daily` recomputed for the rows' days: the state the
/// gateway's writer keeps (it adds each batch to `usage_daily` as it inserts it).
async fn insert_with_daily(store: &Store, rows: &[Row]) {
    insert(store, rows).await;
    let days: std::collections::BTreeSet<NaiveDate> =
        rows.iter().map(|r| day_of_ms(r.at_ms)).collect();
    for day in days {
        store.refresh_daily(day).await.expect("refresh");
    }
}

fn by(group_by: &[GroupBy]) -> ReportQuery {
    ReportQuery {
        filter: ReportFilter::default(),
        group_by: group_by.to_vec(),
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// Two days, two keys (two owners), two models, some failures.
fn mixed() -> Vec<Row> {
    vec![
        row(DAY1 + 1_000, 1),
        Row {
            latency: 300,
            ..row(DAY1 + 2_000, 2)
        },
        Row {
            served: Some("claude"),
            requested: Some("claude"),
            cost_nanos: 5_000,
            ..row(DAY1 + 3_000, 3)
        },
        Row {
            status: 502,
            error: Some("upstream_failed"),
            prompt: 0,
            completion: 0,
            cost_nanos: 0,
            ..row(DAY1 + 4_000, 4)
        },
        Row {
            key: "k2",
            owner: Some("bob"),
            status: 429,
            error: Some("rate_limited"),
            served: None,
            prompt: 0,
            completion: 0,
            cost_nanos: 0,
            ..row(DAY1 + DAY_MS + 1_000, 5)
        },
        Row {
            key: "k2",
            owner: Some("bob"),
            ..row(DAY1 + DAY_MS + 2_000, 6)
        },
        // The day's last millisecond by id time; created_at falls on the next day.
        Row {
            key: "k2",
            owner: None,
            ..row(DAY1 + 2 * DAY_MS - 1, 7)
        },
    ]
}

async fn reports_group_by_day_model_key_and_owner(store: Store) {
    insert(&store, &mixed()).await;

    let days = store
        .usage_report(&by(&[GroupBy::Day]))
        .await
        .expect("report");
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].day.as_deref(), Some("2024-03-10"));
    assert_eq!(
        (days[0].requests, days[0].successes, days[0].failures),
        (4, 3, 1)
    );
    assert_eq!(days[0].prompt_tokens, 30);
    assert_eq!(days[0].completion_tokens, 15);
    assert_eq!(days[0].cost_nanos, 7_000);
    assert_eq!(
        days[0].errors,
        BTreeMap::from([("upstream_failed".to_owned(), 1)])
    );
    // The row at the day's last millisecond counts on its id's day.
    assert_eq!(days[1].day.as_deref(), Some("2024-03-11"));
    assert_eq!(
        (days[1].requests, days[1].successes, days[1].failures),
        (3, 2, 1)
    );
    assert_eq!(days[1].model, None);

    let models = store
        .usage_report(&by(&[GroupBy::Model]))
        .await
        .expect("report");
    let names: Vec<_> = models.iter().map(|r| r.model.as_deref()).collect();
    assert_eq!(names, [Some("claude"), Some("gpt")]);
    assert_eq!(models[0].cost_nanos, 5_000);
    // The refused call was served by nothing: it counts under the model it asked for.
    assert_eq!(models[1].requests, 6);

    let owners = store
        .usage_report(&by(&[GroupBy::Owner]))
        .await
        .expect("report");
    let names: Vec<_> = owners
        .iter()
        .map(|r| (r.owner.as_deref(), r.requests))
        .collect();
    assert_eq!(names, [(None, 1), (Some("alice"), 4), (Some("bob"), 2)]);

    let pairs = store
        .usage_report(&by(&[GroupBy::Key, GroupBy::Day]))
        .await
        .expect("report");
    let got: Vec<_> = pairs
        .iter()
        .map(|r| (r.key_id.as_deref(), r.day.as_deref(), r.requests))
        .collect();
    assert_eq!(
        got,
        [
            (Some("k1"), Some("2024-03-10"), 4),
            (Some("k2"), Some("2024-03-11"), 3)
        ]
    );
    assert!(pairs.iter().all(|r| r.model.is_none() && r.owner.is_none()));

    let total = store.usage_report(&by(&[])).await.expect("report");
    assert_eq!(total.len(), 1);
    assert_eq!(total[0].requests, 7);
    assert_eq!(total[0].day, None);
    assert_eq!(total[0].cost_nanos, 9_000);
    assert_eq!(total[0].cost(), 9_000.0 / 1e9);
}

async fn reports_without_rows(store: Store) {
    let total = store.usage_report(&by(&[])).await.expect("report");
    assert_eq!(total.len(), 1, "one row of totals, also when empty");
    assert_eq!(total[0].requests, 0);
    assert_eq!(total[0].p50_ms, None);
    let grouped = store
        .usage_report(&by(&[GroupBy::Day]))
        .await
        .expect("report");
    assert!(grouped.is_empty());
}

fn latencies(values: impl IntoIterator<Item = i64>) -> Latencies {
    let mut latencies = Latencies::default();
    for v in values {
        latencies.add(v);
    }
    latencies
}

#[test]
fn percentiles_are_nearest_rank() {
    let hundred = latencies((1..=100).rev());
    assert_eq!(hundred.percentile(50), Some(50));
    assert_eq!(hundred.percentile(95), Some(95));
    assert_eq!(hundred.percentile(99), Some(99));
    assert_eq!(latencies([7]).percentile(50), Some(7));
    assert_eq!(latencies([7]).percentile(99), Some(7));
    assert_eq!(latencies([1, 2, 3, 4]).percentile(50), Some(2));
    assert_eq!(latencies([1, 2, 3, 4]).percentile(95), Some(4));
    assert_eq!(latencies([4, 4, 1, 4]).percentile(25), Some(1));
    assert_eq!(latencies([]).percentile(50), None);
}

#[test]
fn long_latencies_are_counted_within_a_sixty_fourth() {
    assert_eq!(
        latencies([1023]).percentile(50),
        Some(1023),
        "exact below 1024"
    );
    for ms in [1024, 1500, 4095, 4096, 65_000, 600_000, 86_400_000] {
        let counted = latencies([ms]).percentile(50).expect("one latency");
        assert!(
            counted >= ms && counted - ms <= ms / 64,
            "{ms} ms counted as {counted}"
        );
    }
}

#[test]
fn a_group_holds_a_bounded_number_of_counts_however_many_calls() {
    // A call per millisecond value from 0 to 10 minutes: 600,001 calls.
    let many = latencies(0..=600_000);
    assert!(many.counts.len() < 1024 + 64 * 10, "{}", many.counts.len());
    assert_eq!(many.total, 600_001);
    let p50 = many.percentile(50).expect("latencies");
    assert!((300_000..=300_000 + 300_000 / 64).contains(&p50), "{p50}");
}

async fn report_percentiles_per_group(store: Store) {
    // Latencies 1..=100 ms for gpt, in shuffled order; 1000 ms once for claude.
    let mut rows: Vec<Row> = (1..=100u64)
        .map(|i| Row {
            latency: ((i * 37) % 100 + 1) as i64,
            ..row(DAY1 + i as i64, i)
        })
        .collect();
    rows.push(Row {
        served: Some("claude"),
        latency: 1_000,
        ..row(DAY1 + 500, 500)
    });
    insert(&store, &rows).await;
    let report = store
        .usage_report(&by(&[GroupBy::Model]))
        .await
        .expect("report");
    assert_eq!(report[0].model.as_deref(), Some("claude"));
    assert_eq!(
        (report[0].p50_ms, report[0].p95_ms, report[0].p99_ms),
        (Some(1_000), Some(1_000), Some(1_000))
    );
    assert_eq!(
        (report[1].p50_ms, report[1].p95_ms, report[1].p99_ms),
        (Some(50), Some(95), Some(99))
    );
}

async fn report_filters(store: Store) {
    insert_with_daily(&store, &mixed()).await;
    let count = |filter: ReportFilter| {
        let store = store.clone();
        async move {
            let rows = store
                .usage_report(&ReportQuery {
                    filter,
                    group_by: Vec::new(),
                })
                .await
                .expect("report");
            rows[0].requests
        }
    };
    let f = ReportFilter::default;
    assert_eq!(
        count(ReportFilter {
            key_id: Some("k2".into()),
            ..f()
        })
        .await,
        3
    );
    assert_eq!(
        count(ReportFilter {
            owner: Some("alice".into()),
            ..f()
        })
        .await,
        4
    );
    assert_eq!(
        count(ReportFilter {
            model: Some("claude".into()),
            ..f()
        })
        .await,
        1
    );
    // Served or, when nothing served it, asked for.
    assert_eq!(
        count(ReportFilter {
            model: Some("gpt".into()),
            ..f()
        })
        .await,
        6
    );
    // from inclusive, to exclusive, by the ids' time.
    assert_eq!(
        count(ReportFilter {
            from_ms: Some(DAY1 + 2_000),
            to_ms: Some(DAY1 + 4_000),
            ..f()
        })
        .await,
        2
    );
    assert_eq!(
        count(ReportFilter {
            from_ms: Some(DAY1 + DAY_MS),
            ..f()
        })
        .await,
        3
    );
    assert_eq!(
        count(ReportFilter {
            to_ms: Some(DAY1 + DAY_MS),
            key_id: Some("k1".into()),
            owner: Some("alice".into()),
            ..f()
        })
        .await,
        4
    );
    assert_eq!(
        count(ReportFilter {
            key_id: Some("nobody".into()),
            ..f()
        })
        .await,
        0
    );
}

async fn log_pages_are_newest_first_and_stable(store: Store) {
    let rows: Vec<Row> = (0..25u64)
        .map(|i| Row {
            status: if i % 5 == 0 { 502 } else { 200 },
            error: (i % 5 == 0).then_some("upstream_failed"),
            ..row(DAY1 + i as i64 * 10, i)
        })
        .collect();
    insert(&store, &rows).await;

    let query = LogQuery::default();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = store
            .logs_page(&query, 7, cursor.as_deref())
            .await
            .expect("page");
        pages += 1;
        assert!(page.len() <= 7);
        seen.extend(page.iter().map(|r| r.request_id.clone()));
        if pages == 1 {
            // Rows written while paging are newer: they do not shift later pages.
            insert(&store, &[row(DAY1 + 1_000_000, 99)]).await;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let mut expected: Vec<String> = rows.iter().map(Row::id).collect();
    expected.reverse();
    assert_eq!(seen, expected, "every row once, newest first");

    // An exact page: no cursor after it.
    let (page, next) = store.logs_page(&query, 26, None).await.expect("page");
    assert_eq!(page.len(), 26);
    assert_eq!(next, None);

    let failed = LogQuery {
        status: Some(StatusFilter::Class(5)),
        ..LogQuery::default()
    };
    let (page, _) = store.logs_page(&failed, 100, None).await.expect("page");
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|r| r.status == 502));
    let exact = LogQuery {
        status: Some(StatusFilter::Exact(200)),
        error_type: None,
        filter: ReportFilter {
            to_ms: Some(DAY1 + 100),
            ..ReportFilter::default()
        },
    };
    let (page, _) = store.logs_page(&exact, 100, None).await.expect("page");
    assert_eq!(page.len(), 8, "ids 1..=9 but 5");
    let by_error = LogQuery {
        error_type: Some("upstream_failed".into()),
        ..LogQuery::default()
    };
    let (page, _) = store.logs_page(&by_error, 2, None).await.expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].request_id, rows[20].id());
}

async fn retention_deletes_only_older_rows_in_chunks(store: Store) {
    let rows: Vec<Row> = (0..10u64)
        .map(|i| row(DAY1 + i as i64 * 1_000, i))
        .collect();
    insert(&store, &rows).await;
    assert_eq!(
        store.oldest_log_day().await.expect("oldest"),
        Some(date("2024-03-10"))
    );

    assert_eq!(
        store
            .delete_logs_chunk(DAY1 + 4_500, 2)
            .await
            .expect("delete"),
        2
    );
    assert_eq!(
        store
            .delete_logs_chunk(DAY1 + 4_500, 2)
            .await
            .expect("delete"),
        2
    );
    assert_eq!(
        store
            .delete_logs_chunk(DAY1 + 4_500, 2)
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        store
            .delete_logs_chunk(DAY1 + 4_500, 2)
            .await
            .expect("delete"),
        0
    );
    let left: Vec<String> = store
        .logs_page(&LogQuery::default(), 100, None)
        .await
        .expect("page")
        .0
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    let mut expected: Vec<String> = rows[5..].iter().map(Row::id).collect();
    expected.reverse();
    assert_eq!(left, expected);
}

async fn apply_retention_aggregates_then_deletes_old_days(store: Store) {
    use crate::usage::aggregates::apply_retention;
    // Days 1, 2, 3 and 4; "today" is day 4 and one whole day before it is kept.
    let rows: Vec<Row> = (0..4u64)
        .flat_map(|d| (0..3u64).map(move |i| row(DAY1 + d as i64 * DAY_MS + i as i64, d * 10 + i)))
        .collect();
    insert(&store, &rows).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let deleted = apply_retention(&store, date("2024-03-13"), 1, &stop)
        .await
        .expect("retention");
    assert_eq!(deleted, 6);
    assert_eq!(
        store.oldest_log_day().await.expect("oldest"),
        Some(date("2024-03-12"))
    );
    // The deleted days were aggregated first, and their aggregates stay.
    let daily = store
        .daily_rows(date("2024-03-01"), date("2024-03-31"))
        .await
        .expect("daily");
    let days: Vec<_> = daily.iter().map(|r| (r.day.as_str(), r.requests)).collect();
    assert_eq!(days, [("2024-03-10", 3), ("2024-03-11", 3)]);
    // Nothing more to delete.
    assert_eq!(
        apply_retention(&store, date("2024-03-13"), 1, &stop)
            .await
            .expect("retention"),
        0
    );
}

async fn refresh_daily_is_idempotent(store: Store) {
    insert(&store, &mixed()).await;
    let day = date("2024-03-10");
    assert_eq!(store.refresh_daily(day).await.expect("refresh"), 2);
    let first = store.daily_rows(day, day).await.expect("daily");
    assert_eq!(store.refresh_daily(day).await.expect("refresh"), 2);
    let second = store.daily_rows(day, day).await.expect("daily");
    let strip = |rows: Vec<DailyRow>| {
        rows.into_iter()
            .map(|r| DailyRow { updated_at: 0, ..r })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(first.clone()), strip(second));

    assert_eq!(first.len(), 2);
    let claude = &first[0];
    assert_eq!(
        (
            claude.key_id.as_str(),
            claude.model.as_str(),
            claude.requests
        ),
        ("k1", "claude", 1)
    );
    let gpt = &first[1];
    assert_eq!((gpt.model.as_str(), gpt.requests), ("gpt", 3));
    assert_eq!((gpt.successes, gpt.failures), (2, 1));
    assert_eq!(gpt.errors, r#"{"upstream_failed":1}"#);
    assert_eq!((gpt.prompt_tokens, gpt.completion_tokens), (20, 10));
    assert_eq!(gpt.cost_nanos, 2_000);
    // Latencies 100, 300, 100.
    assert_eq!(gpt.latency_avg_ms, 167);
    assert_eq!((gpt.latency_p95_ms, gpt.latency_p99_ms), (300, 300));
    assert_eq!(gpt.owner.as_deref(), Some("alice"));

    // New rows: the refresh replaces the day's figures.
    insert(&store, &[row(DAY1 + 50_000, 50)]).await;
    store.refresh_daily(day).await.expect("refresh");
    let third = store.daily_rows(day, day).await.expect("daily");
    assert_eq!(third[1].requests, 4);

    // The other day is its own key range; the row without an owner or model stays keyed.
    let next = date("2024-03-11");
    store.refresh_daily(next).await.expect("refresh");
    let rows = store.daily_rows(next, next).await.expect("daily");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].key_id.as_str(), rows[0].requests), ("k2", 3));
    // The newest row of the day had no owner; the newest owner seen is kept.
    assert_eq!(rows[0].owner.as_deref(), Some("bob"));

    // A day without log rows leaves its aggregates alone.
    with_pool!(store, pool => {
        sqlx::query("DELETE FROM request_logs")
            .execute(pool)
            .await
            .expect("delete");
    });
    assert_eq!(store.refresh_daily(day).await.expect("refresh"), 0);
    assert_eq!(store.daily_rows(day, day).await.expect("daily").len(), 2);
}

async fn concurrent_refreshes_of_a_day_take_turns(store: Store) {
    insert(&store, &mixed()).await;
    let day = date("2024-03-10");
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.refresh_daily(day).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("joins").expect("no refresh fails"), 2);
    }
    let rows = store.daily_rows(day, day).await.expect("daily");
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.model.as_str(), r.requests))
        .collect();
    assert_eq!(got, [("claude", 1), ("gpt", 3)]);
}

async fn catch_up_fills_missing_days_within_retention(store: Store) {
    use crate::usage::aggregates::catch_up;
    insert(&store, &mixed()).await;
    // Today is 2024-03-13: yesterday has no rows; 10th and 11th are kept (90 days).
    catch_up(&store, date("2024-03-13"), 90)
        .await
        .expect("catch up");
    let daily = store
        .daily_rows(date("2024-03-01"), date("2024-03-31"))
        .await
        .expect("daily");
    let days: Vec<_> = daily.iter().map(|r| r.day.as_str()).collect();
    assert_eq!(days, ["2024-03-10", "2024-03-10", "2024-03-11"]);
}

/// A varied call for the writer: `n` picks its day, key, model, status and latency.
fn call(n: i64) -> crate::usage::UsageRow {
    let mut r = crate::store::usage::tests::row(DAY1 + (n % 2) * DAY_MS, n);
    r.key_id = Some(["k1", "k2", "k3"][(n % 3) as usize].into());
    r.owner = (n % 5 != 0).then(|| format!("owner{}", n % 4).into());
    r.model_served = (n % 7 != 0).then(|| ["gpt", "claude"][(n % 2) as usize].into());
    r.status = [200, 200, 200, 429, 502][(n % 5) as usize];
    r.error_type =
        (r.status >= 400).then(|| ["rate_limited", "upstream_error"][(n % 2) as usize].into());
    // Exact values and, past 1,024 ms, bucketed ones.
    r.latency_ms = (n * 37) % 3_000;
    r.prompt_tokens = n as u64;
    r.completion_tokens = 2 * n as u64;
    r.cost_nanos = 1_000 + n;
    r
}

/// Each batch the writer stores adds its calls to `usage_daily`; a retried batch
/// adds only the rows it really inserted. The figures equal a full recomputation
/// from the log, percentiles included.
async fn the_writer_keeps_daily_aggregates_equal_to_a_refresh(store: Store) {
    use std::sync::Arc;
    let batches: [std::ops::Range<i64>; 4] = [0..40, 40..41, 41..150, 100..200];
    for batch in batches {
        let rows: Vec<_> = batch.map(call).collect();
        store.insert_usage(Arc::new(rows)).await.expect("the batch");
    }
    let (first, last) = (date("2024-03-10"), date("2024-03-11"));
    let strip = |rows: Vec<DailyRow>| {
        rows.into_iter()
            .map(|r| DailyRow { updated_at: 0, ..r })
            .collect::<Vec<_>>()
    };
    let kept = strip(store.daily_rows(first, last).await.expect("daily"));
    assert_eq!(kept.iter().map(|r| r.requests).sum::<i64>(), 200);
    for day in [first, last] {
        store.refresh_daily(day).await.expect("refresh");
    }
    let recomputed = strip(store.daily_rows(first, last).await.expect("daily"));
    assert_eq!(kept, recomputed);
    assert!(kept
        .iter()
        .any(|r| r.latency_p99_ms > 1_024 && r.errors != "{}"));
}

/// Batches written at once by many writers (replicas, on PostgreSQL) all count.
async fn concurrent_batches_all_count_in_the_daily_aggregates(store: Store) {
    use std::sync::Arc;
    let writers: Vec<_> = (0..8_i64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..5 {
                    let start = 1_000 * w + 20 * b;
                    // Every batch touches the same groups as the others.
                    let rows: Vec<_> = (start..start + 20).map(call).collect();
                    store.insert_usage(Arc::new(rows)).await.expect("the batch");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    let rows = store
        .daily_rows(date("2024-03-10"), date("2024-03-11"))
        .await
        .expect("daily");
    let counted: i64 = rows.iter().map(|r| r.requests).sum();
    assert_eq!(counted, 8 * 5 * 20);
}

/// Latency counts go to bytes and back unchanged, exact values and buckets alike,
/// and bytes that are not such counts are refused.
#[test]
fn latency_counts_round_trip_through_bytes() {
    let values = [
        0,
        0,
        5,
        999,
        1_023,
        1_024,
        1_500,
        1_500,
        70_000,
        3_600_000,
        1 << 50,
    ];
    let counted = latencies(values);
    let bytes = counted.to_bytes();
    let back = Latencies::from_bytes(&bytes).expect("the bytes read");
    assert_eq!(back.counts, counted.counts);
    assert_eq!(back.total, values.len() as u64);
    assert_eq!(back.percentile(99), counted.percentile(99));
    // Every bucket's place maps back to its value.
    for ms in [
        0,
        1,
        1_023,
        1_024,
        1_025,
        2_047,
        2_048,
        99_999,
        1 << 40,
        i64::MAX,
    ] {
        let top = bucket_top(ms);
        assert_eq!(value_of(slot_of(top)), Some(top), "{ms}");
    }
    // Under a second: about a byte per millisecond.
    assert!(latencies(0..1_000).to_bytes().len() <= 1_000);
    assert!(Latencies::from_bytes(&[]).expect("empty").counts.is_empty());
    assert!(
        Latencies::from_bytes(&[0x80]).is_none(),
        "a number cut short"
    );
    assert!(
        Latencies::from_bytes(&[0xff; 11]).is_none(),
        "a number too long"
    );
}

#[test]
fn ids_and_days() {
    assert_eq!(id_at(DAY1), format!("req_{DAY1:012x}"));
    assert_eq!(
        id_time_ms(&format!("req_{DAY1:012x}0123456789ab")),
        Some(DAY1)
    );
    assert_eq!(id_time_ms("chatcmpl-1"), None);
    assert_eq!(id_time_ms("req_zz"), None);
    assert_eq!(day_start_ms(date("2024-03-10")), DAY1);
    assert_eq!(day_of_ms(DAY1 + DAY_MS - 1), date("2024-03-10"));
    assert_eq!(GroupBy::parse("owner"), Some(GroupBy::Owner));
    assert_eq!(GroupBy::parse("week"), None);
}

/// Reports over whole days read `usage_daily`, and answer what the log answers, for
/// every grouping and filter it can serve; ranges it cannot serve exactly (part of a
/// day, owners, days retention has deleted from the log) read the log.
async fn whole_day_reports_from_usage_daily_equal_the_log(store: Store) {
    let mut rows = mixed();
    rows.extend([
        // A slow call (percentiles above 1,024 ms are bucketed alike on both paths).
        Row {
            latency: 4_321,
            ..row(DAY1 + 2 * DAY_MS + 5, 20)
        },
        Row {
            key: "k2",
            served: None,
            requested: None,
            status: 400,
            error: Some("invalid_request"),
            prompt: 0,
            completion: 0,
            cost_nanos: 0,
            ..row(DAY1 + 2 * DAY_MS + 7, 21)
        },
    ]);
    insert_with_daily(&store, &rows).await;
    let query = |from_ms: i64, to_ms: Option<i64>, group_by: &[GroupBy]| ReportQuery {
        filter: ReportFilter {
            from_ms: Some(from_ms),
            to_ms,
            ..ReportFilter::default()
        },
        group_by: group_by.to_vec(),
    };
    let groupings: [&[GroupBy]; 6] = [
        &[],
        &[GroupBy::Day],
        &[GroupBy::Model],
        &[GroupBy::Key],
        &[GroupBy::Day, GroupBy::Model],
        &[GroupBy::Key, GroupBy::Day],
    ];
    let mut served = Vec::new();
    for group_by in groupings {
        served.push(query(DAY1, None, group_by));
        served.push(query(DAY1 + DAY_MS, Some(DAY1 + 3 * DAY_MS), group_by));
    }
    for (key_id, model) in [
        (Some("k2"), None),
        (None, Some("gpt")),
        (Some("k1"), Some("claude")),
    ] {
        let mut q = query(DAY1, None, &[GroupBy::Day]);
        q.filter.key_id = key_id.map(Into::into);
        q.filter.model = model.map(Into::into);
        served.push(q);
    }
    for q in &served {
        assert!(
            store.whole_days(q).await.expect("days").is_some(),
            "usage_daily should answer {q:?}"
        );
        let from_log = store.usage_report_from_log(q).await.expect("log");
        assert!(from_log.iter().any(|r| r.requests > 0), "{q:?}");
        assert_eq!(
            store.usage_report(q).await.expect("report"),
            from_log,
            "{q:?}"
        );
    }

    let mut by_owner = query(DAY1, None, &[GroupBy::Day]);
    by_owner.filter.owner = Some("alice".into());
    for q in [
        query(DAY1 + 1, None, &[GroupBy::Day]),
        query(DAY1, Some(DAY1 + DAY_MS + 5), &[]),
        query(DAY1, None, &[GroupBy::Owner]),
        by_owner,
    ] {
        assert!(
            store.whole_days(&q).await.expect("days").is_none(),
            "the log should answer {q:?}"
        );
    }
    // Retention deleted the first day's rows (usage_daily keeps them): a range that
    // starts there reads usage_daily from the log's oldest day on, as the log answers.
    store
        .delete_logs_chunk(DAY1 + DAY_MS, 1_000)
        .await
        .expect("delete");
    for group_by in groupings {
        let q = query(DAY1, None, group_by);
        assert_eq!(
            store.whole_days(&q).await.expect("days"),
            Some((day_of_ms(DAY1 + DAY_MS), date("9999-12-31")))
        );
        let from_log = store.usage_report_from_log(&q).await.expect("log");
        assert_eq!(
            store.usage_report(&q).await.expect("report"),
            from_log,
            "{q:?}"
        );
    }
}
