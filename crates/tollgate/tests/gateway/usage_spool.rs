//! SPEC §7: while the database cannot take writes, usage rows go to the spool and
//! arrive once it is back; none is lost, none is written twice.
//!
//! SQLite only, also when TOLLGATE_TEST_DATABASE=postgres: the outage is simulated by
//! holding the SQLite file's write lock (`Setup::sqlite`).

use std::time::Duration;

use futures_util::future::join_all;
use sqlx::Connection;

use crate::common::*;

/// A gateway on a SQLite file, whatever TOLLGATE_TEST_DATABASE says.
async fn sqlite_gateway() -> TestGateway {
    TestGateway::start_with(Setup {
        sqlite: true,
        ..Setup::default()
    })
    .await
}

/// Holds SQLite's write lock (as a stuck or down database would) until dropped.
async fn lock_database(db_url: &str) -> sqlx::SqliteConnection {
    let mut conn = sqlx::SqliteConnection::connect(db_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

fn spool_len(gw: &TestGateway) -> u64 {
    let path = gw.running().gateway.config.storage.spool_path.clone();
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn calls(gw: &TestGateway, n: usize) {
    let statuses =
        join_all((0..n).map(|i| gw.post("/v1/chat/completions", chat(&format!("call {i}")))))
            .await
            .into_iter()
            .map(|r| r.status().as_u16())
            .collect::<Vec<_>>();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_wait_in_the_spool_while_the_database_is_locked() {
    let gw = sqlite_gateway().await;
    let lock = lock_database(&gw.db_url).await;
    // Calls are served while the database refuses writes.
    calls(&gw, 120).await;
    // The writer counts spooled rows once their lines are written and synced, so wait
    // for the count (the file grows before it: watching the file raced the count).
    let counters = gw.running().gateway.usage.counters();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while counters.spooled.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing was spooled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        spool_len(&gw) > 0,
        "rows counted as spooled, but the spool is empty"
    );
    // The database comes back: every row arrives, once, and the spool empties.
    drop(lock);
    let rows = gw.wait_for_rows(120).await;
    assert_eq!(rows.len(), 120);
    let mut ids: Vec<_> = rows.iter().map(|r| r.request_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 120);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while spool_len(&gw) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the spool did not empty"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // What was spooled was replayed, and /metrics says so.
    let spooled = counters.spooled.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        counters.replayed.load(std::sync::atomic::Ordering::Relaxed),
        spooled
    );
    let metrics = gw
        .client
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("tollgate_usage_replayed_total {spooled}")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_spooled_at_shutdown_are_written_at_the_next_start() {
    let mut gw = sqlite_gateway().await;
    let lock = lock_database(&gw.db_url).await;
    calls(&gw, 40).await;
    // Stop while the database is still locked: the rows stay in the spool.
    gw.stop().await;
    assert!(spool_len_at(&gw) > 0, "the rows should wait in the spool");
    drop(lock);
    gw.restart().await;
    let rows = gw.wait_for_rows(40).await;
    assert_eq!(rows.len(), 40);
    assert_eq!(spool_len(&gw), 0);
}

fn spool_len_at(gw: &TestGateway) -> u64 {
    let db = gw.db_url.trim_start_matches("sqlite://");
    std::fs::metadata(format!("{db}.usage-spool"))
        .map(|m| m.len())
        .unwrap_or(0)
}
