use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::providers::{UpstreamError, UpstreamErrorKind};

fn key(id: &str, attributes: KeyAttributes) -> UpstreamKey {
    UpstreamKey::new(
        id,
        None,
        KeyAttributes {
            weight: attributes.weight.max(1),
            ..attributes
        },
    )
}

fn plain(ids: &[&str]) -> Vec<UpstreamKey> {
    ids.iter()
        .map(|id| key(id, KeyAttributes::default()))
        .collect()
}

fn none() -> HashSet<Arc<str>> {
    HashSet::new()
}

/// Picks `n` times (leases dropped at once) and counts the keys chosen.
fn spread(
    pool: &KeyPool,
    caller: Caller<'_>,
    bound: &HashSet<Arc<str>>,
    n: usize,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let lease = pool
            .pick(caller, bound, &[], Demand::default())
            .expect("a key");
        *counts.entry(lease.key().id.to_string()).or_insert(0) += 1;
    }
    counts
}

fn status_error(status: u16, retry_after: Option<Duration>) -> UpstreamError {
    UpstreamError {
        status: Some(status),
        retry_after,
        ..UpstreamError::new(UpstreamErrorKind::Status, "x".into())
    }
}

#[test]
fn round_robin_spreads_evenly() {
    let pool = KeyPool::new(plain(&["a", "b", "c"]), Strategy::RoundRobin);
    let counts = spread(&pool, Caller::default(), &none(), 1000);
    for id in ["a", "b", "c"] {
        let n = counts[id] as i64;
        assert!((n - 333).abs() <= 1, "{id}: {n} of 1000");
    }
}

#[test]
fn weighted_follows_the_weights() {
    let keys = vec![
        key(
            "one",
            KeyAttributes {
                weight: 1,
                ..Default::default()
            },
        ),
        key(
            "two",
            KeyAttributes {
                weight: 2,
                ..Default::default()
            },
        ),
        key(
            "seven",
            KeyAttributes {
                weight: 7,
                ..Default::default()
            },
        ),
    ];
    let pool = KeyPool::new(keys, Strategy::Weighted);
    let counts = spread(&pool, Caller::default(), &none(), 1000);
    for (id, share) in [("one", 0.1), ("two", 0.2), ("seven", 0.7)] {
        let got = counts[id] as f64 / 1000.0;
        assert!(
            (got - share).abs() <= 0.05 * share.max(0.1),
            "{id}: {got} for {share}"
        );
    }
}

#[test]
fn smooth_weighted_interleaves() {
    assert_eq!(
        order::smooth_weighted(&[5, 1, 1]),
        vec![0, 0, 1, 0, 2, 0, 0]
    );
}

#[test]
fn least_loaded_follows_reported_headroom() {
    let pool = KeyPool::new(plain(&["busy", "idle"]), Strategy::LeastLoaded);
    let hot = Headroom {
        limit_requests: Some(100),
        remaining_requests: Some(5),
        ..Default::default()
    };
    let cool = Headroom {
        limit_requests: Some(100),
        remaining_requests: Some(90),
        ..Default::default()
    };
    pool.pick(
        Caller::default(),
        &none(),
        &["idle".into()],
        Demand::default(),
    )
    .expect("busy")
    .succeeded(Some(hot));
    pool.pick(
        Caller::default(),
        &none(),
        &["busy".into()],
        Demand::default(),
    )
    .expect("idle")
    .succeeded(Some(cool));
    let counts = spread(&pool, Caller::default(), &none(), 50);
    assert_eq!(counts.get("idle"), Some(&50), "{counts:?}");
}

#[test]
fn least_loaded_follows_own_rpm_use() {
    let limited = KeyAttributes {
        limits: Limits {
            rpm: Some(10),
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = KeyPool::new(
        vec![key("a", limited.clone()), key("b", limited)],
        Strategy::LeastLoaded,
    );
    // Leases are dropped at once, but the requests stay in the window: use alternates.
    let counts = spread(&pool, Caller::default(), &none(), 10);
    assert_eq!((counts["a"], counts["b"]), (5, 5));
}

#[test]
fn dedicated_keys_serve_only_their_client() {
    for strategy in [Strategy::Dedicated, Strategy::Hybrid, Strategy::RoundRobin] {
        let pool = KeyPool::new(plain(&["shared-1", "shared-2", "vip"]), strategy);
        let bound: HashSet<Arc<str>> = [Arc::from("vip")].into_iter().collect();
        let others = spread(&pool, Caller::default(), &bound, 200);
        assert!(!others.contains_key("vip"), "{strategy:?}: {others:?}");
        if strategy != Strategy::RoundRobin {
            let own = spread(
                &pool,
                Caller {
                    dedicated: Some("vip"),
                    ..Default::default()
                },
                &bound,
                20,
            );
            assert_eq!(own.get("vip"), Some(&20), "{strategy:?}: {own:?}");
        }
    }
}

#[test]
fn region_is_preferred() {
    let keys = vec![
        key(
            "us",
            KeyAttributes {
                region: Some("us".into()),
                ..Default::default()
            },
        ),
        key(
            "eu",
            KeyAttributes {
                region: Some("eu".into()),
                ..Default::default()
            },
        ),
    ];
    let pool = KeyPool::new(keys, Strategy::RoundRobin);
    let counts = spread(
        &pool,
        Caller {
            region: Some("eu"),
            ..Default::default()
        },
        &none(),
        20,
    );
    assert_eq!(counts.get("eu"), Some(&20));
}

#[test]
fn rpm_is_never_exceeded_and_says_when_to_return() {
    let limited = KeyAttributes {
        limits: Limits {
            rpm: Some(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = KeyPool::new(
        vec![key("a", limited.clone()), key("b", limited)],
        Strategy::RoundRobin,
    );
    let leases: Vec<Lease> = (0..10)
        .map(|_| {
            pool.pick(Caller::default(), &none(), &[], Demand::default())
                .expect("under quota")
        })
        .collect();
    let refused = pool
        .pick(Caller::default(), &none(), &[], Demand::default())
        .expect_err("at quota");
    let wait = refused.retry_after.expect("a time");
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    drop(leases);
}

#[test]
fn tpm_and_daily_budget_reserve_and_settle() {
    let limits = Limits {
        tpm: Some(1000),
        daily_budget_nanos: Some(1_000),
        ..Default::default()
    };
    let pool = KeyPool::new(
        vec![key(
            "a",
            KeyAttributes {
                limits,
                ..Default::default()
            },
        )],
        Strategy::RoundRobin,
    );
    let big = Demand {
        tokens: 600,
        cost_nanos: 100,
    };
    let first = pool
        .pick(Caller::default(), &none(), &[], big)
        .expect("fits");
    assert!(
        pool.pick(Caller::default(), &none(), &[], big).is_err(),
        "600 + 600 > 1000 tpm"
    );
    first.settle(100, 100); // it used far less than reserved
    let second = pool
        .pick(Caller::default(), &none(), &[], big)
        .expect("fits after settling");
    second.settle(600, 850); // spend today: 950 of 1000
    let over = pool
        .pick(
            Caller::default(),
            &none(),
            &[],
            Demand {
                tokens: 1,
                cost_nanos: 100,
            },
        )
        .expect_err("budget");
    assert!(over
        .retry_after
        .is_some_and(|w| w <= Duration::from_secs(86_400)));
}

#[test]
fn a_429_cools_a_key_until_the_upstream_says() {
    let pool = KeyPool::new(plain(&["a", "b"]), Strategy::RoundRobin);
    let lease = pool
        .pick(Caller::default(), &none(), &["b".into()], Demand::default())
        .expect("a");
    lease.failed(&status_error(429, Some(Duration::from_millis(150))), &pool);
    assert!(matches!(
        pool.keys()[0].health(),
        Health::CoolingDown { .. }
    ));
    let counts = spread(&pool, Caller::default(), &none(), 10);
    assert_eq!(counts.get("b"), Some(&10));
    std::thread::sleep(Duration::from_millis(200));
    let counts = spread(&pool, Caller::default(), &none(), 10);
    assert_eq!(
        counts.get("a"),
        Some(&5),
        "a is back after its cooldown: {counts:?}"
    );
}

#[test]
fn an_invalid_key_never_returns_by_itself() {
    let pool = KeyPool::new(plain(&["bad", "good"]), Strategy::RoundRobin);
    let lease = pool
        .pick(
            Caller::default(),
            &none(),
            &["good".into()],
            Demand::default(),
        )
        .expect("bad");
    lease.failed(&status_error(401, None), &pool);
    assert_eq!(pool.keys()[0].health(), Health::Invalid);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!spread(&pool, Caller::default(), &none(), 20).contains_key("bad"));
    pool.keys()[0].set_enabled(true);
    assert!(spread(&pool, Caller::default(), &none(), 20).contains_key("bad"));
}

#[test]
fn failures_back_off_and_reset_on_success() {
    let pool = KeyPool::new(plain(&["a"]), Strategy::RoundRobin);
    let key = &pool.keys()[0];
    let cooldown = || match key.health() {
        Health::CoolingDown { until } => until.saturating_duration_since(std::time::Instant::now()),
        other => panic!("not cooling down: {other:?}"),
    };
    let fail = |status| {
        key.with_state(|s| s.health = Health::Ok); // as if the cooldown had passed
        let lease = pool
            .pick(Caller::default(), &none(), &[], Demand::default())
            .expect("a");
        lease.failed(&status_error(status, None), &pool);
    };
    fail(500);
    assert!(cooldown() <= Duration::from_secs(1));
    fail(503);
    assert!(
        cooldown() > Duration::from_millis(1500),
        "the second failure in a row rests longer"
    );
    assert_eq!(key.with_state(|s| s.consecutive_failures), 2);
    key.with_state(|s| s.health = Health::Ok);
    pool.pick(Caller::default(), &none(), &[], Demand::default())
        .expect("a")
        .succeeded(None);
    assert_eq!(key.with_state(|s| s.consecutive_failures), 0);
    fail(500);
    assert!(
        cooldown() <= Duration::from_secs(1),
        "counting starts again after a success"
    );
}

#[test]
fn a_429_on_every_key_cools_the_provider() {
    let pool = KeyPool::new(plain(&["a", "b"]), Strategy::RoundRobin);
    for tried in [["b"], ["a"]] {
        let tried: Vec<Arc<str>> = tried.iter().map(|t| Arc::from(*t)).collect();
        let lease = pool
            .pick(Caller::default(), &none(), &tried, Demand::default())
            .expect("key");
        lease.failed(&status_error(429, Some(Duration::from_secs(5))), &pool);
    }
    let refused = pool
        .pick(Caller::default(), &none(), &[], Demand::default())
        .expect_err("provider cooling");
    assert!(refused
        .retry_after
        .is_some_and(|w| w <= Duration::from_secs(5) && w > Duration::from_secs(4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_picks_never_exceed_rpm() {
    let limited = KeyAttributes {
        limits: Limits {
            rpm: Some(50),
            ..Default::default()
        },
        ..Default::default()
    };
    let keys = vec![
        key("a", limited.clone()),
        key("b", limited.clone()),
        key("c", limited),
    ];
    let pool = Arc::new(KeyPool::new(keys, Strategy::LeastLoaded));
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.pick(Caller::default(), &HashSet::new(), &[], Demand::default())
                    .ok()
                    .map(|l| l.key().id.to_string())
            })
        })
        .collect();
    let mut admitted: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        if let Some(id) = t.await.expect("task") {
            *admitted.entry(id).or_insert(0) += 1;
        }
    }
    assert_eq!(admitted.values().sum::<usize>(), 150, "{admitted:?}");
    assert!(admitted.values().all(|n| *n == 50), "{admitted:?}");
}

#[test]
fn stats_report_state_errors_and_use() {
    let limited = KeyAttributes {
        limits: Limits {
            rpm: Some(4),
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = KeyPool::new(
        vec![key("a", limited), key("b", KeyAttributes::default())],
        Strategy::RoundRobin,
    );
    let a = pool
        .pick(Caller::default(), &none(), &["b".into()], Demand::default())
        .expect("a");
    a.settle(120, 2_500_000_000);
    let b = pool
        .pick(Caller::default(), &none(), &["a".into()], Demand::default())
        .expect("b");
    b.failed(&status_error(429, Some(Duration::from_secs(30))), &pool);
    let stats = pool.stats();
    assert_eq!(stats[0].id, "a");
    assert_eq!(
        (stats[0].state, stats[0].requests, stats[0].tokens),
        ("ok", 1, 120)
    );
    assert_eq!(stats[0].spend, 2.5);
    assert_eq!(stats[0].utilization, 0.25);
    assert_eq!(stats[1].state, "cooling_down");
    assert!(stats[1].cooldown_remaining_ms.is_some_and(|ms| ms > 29_000));
    assert_eq!((stats[1].errors, stats[1].error_rate), (1, 1.0));
    assert_eq!(
        stats[1].errors_by_type.get("upstream_rate_limited"),
        Some(&1)
    );
}

#[test]
fn replacing_keys_keeps_the_state_of_those_that_stay() {
    let pool = KeyPool::new(plain(&["stay", "go"]), Strategy::RoundRobin);
    let lease = pool
        .pick(
            Caller::default(),
            &none(),
            &["go".into()],
            Demand::default(),
        )
        .expect("stay");
    lease.failed(&status_error(429, Some(Duration::from_secs(30))), &pool);
    pool.replace(vec![
        (key("stay", KeyAttributes::default()), true),
        (key("new", KeyAttributes::default()), true),
        (key("off", KeyAttributes::default()), false),
    ]);
    let ids: Vec<String> = pool.keys().iter().map(|k| k.id.to_string()).collect();
    assert_eq!(ids, ["stay", "new", "off"]);
    assert!(
        matches!(pool.keys()[0].health(), Health::CoolingDown { .. }),
        "live state kept"
    );
    assert_eq!(pool.keys()[2].health(), Health::Disabled);
    let counts = spread(&pool, Caller::default(), &none(), 6);
    assert_eq!(
        counts.get("new"),
        Some(&6),
        "only the new key is usable: {counts:?}"
    );
    // Re-enabling through a replacement puts a disabled key back.
    pool.replace(vec![(key("off", KeyAttributes::default()), true)]);
    assert_eq!(pool.keys()[0].health(), Health::Ok);
}

#[test]
fn an_unlimited_key_keeps_no_window() {
    let pool = KeyPool::new(plain(&["free"]), Strategy::RoundRobin);
    for _ in 0..1000 {
        pool.pick(
            Caller::default(),
            &none(),
            &[],
            Demand {
                tokens: 10,
                cost_nanos: 1,
            },
        )
        .expect("key")
        .settle(10, 1);
    }
    assert_eq!(pool.keys()[0].with_state(|s| s.requests_in_window()), 0);
    assert_eq!(pool.stats()[0].requests, 1000);
}

#[tokio::test]
async fn a_pick_uses_the_calls_time_and_waits_only_for_a_slot_that_frees_soon() {
    let one_a_minute = KeyAttributes {
        limits: Limits {
            rpm: Some(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = KeyPool::new(vec![key("a", one_a_minute)], Strategy::RoundRobin);
    let received_ms = crate::store::now_ms() - 1_234;
    let held = pool
        .pick_waiting(
            Caller::default(),
            &none(),
            &[],
            Demand::default(),
            received_ms,
        )
        .await
        .expect("a free key");
    assert_eq!(pool.stats()[0].last_used_ms, Some(received_ms));
    // The slot frees in a minute, past the longest wait: refused at once.
    let started = std::time::Instant::now();
    let refused = pool
        .pick_waiting(
            Caller::default(),
            &none(),
            &[],
            Demand::default(),
            received_ms,
        )
        .await
        .expect_err("the key is at its rpm");
    assert!(refused.retry_after.is_some_and(|wait| wait > MAX_WAIT));
    assert!(
        started.elapsed() < MAX_WAIT,
        "did not wait for a slot past the limit"
    );
    drop(held);
}
