//! One suite of admission scenarios, written once and run against every counter
//! backend: `local_backend::*` in this process, `redis_backend::*` against the Redis
//! server at `TOLLGATE_TEST_REDIS_URL` (default [`REDIS_URL`]; each test under a
//! random prefix of its own, removed at the end; every key has a TTL in any case). Times are fixed, so windows are
//! deterministic.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::counters::{
    Actual, Admitted, Ask, BudgetNanos, BudgetPeriod, Estimate, LimitKind, Refusal, Scope, Ticket,
    UsageSnapshot,
};
use super::local::LocalCounters;
use super::redis::RedisCounters;
use super::{Admission, AdmissionError, Counters, RateLimits};
use crate::config::{Config, Env, StorageConfig};

/// The Redis the `redis_backend` tests use unless `TOLLGATE_TEST_REDIS_URL` names
/// another. Start one with
/// `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`.
const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn redis_url() -> String {
    std::env::var("TOLLGATE_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| REDIS_URL.to_owned())
}

/// An admission service over one backend.
struct Backend {
    admission: Admission,
    /// The Redis counters, when the backend is Redis.
    redis: Option<RedisCounters>,
}

impl Backend {
    fn new(counters: Counters) -> Backend {
        let config = Config::load_text_for_tests("", &Env::new());
        Backend {
            admission: Admission::new(&config, counters),
            redis: None,
        }
    }

    fn local() -> Backend {
        Backend::new(Counters::Local(LocalCounters::new()))
    }

    async fn redis() -> Backend {
        let prefix = format!("tollgate-test:{}:", hex::encode(rand::random::<[u8; 8]>()));
        let url = redis_url();
        let redis = RedisCounters::connect(&url, &prefix)
            .await
            .unwrap_or_else(|e| {
                let shown = crate::secrets::redact_url(&url);
                panic!(
                    "the Redis tests need a server at {shown} ({e}); start one with \
                     redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
                )
            });
        let mut backend = Backend::new(Counters::Redis(redis.clone()));
        backend.redis = Some(redis);
        backend
    }

    async fn admit(&self, ask: &Ask) -> Result<Admitted, Box<Refusal>> {
        match self.admission.admit(ask).await {
            Ok(admitted) => Ok(admitted),
            Err(AdmissionError::Refused(refusal)) => Err(refusal),
            Err(AdmissionError::Backend(e)) => panic!("backend failed: {e}"),
        }
    }

    /// Settles and waits until the settlement is counted.
    async fn settle(&self, ticket: &Ticket, actual: Actual) {
        match &self.redis {
            Some(redis) => redis.settle_now(ticket, actual).await.expect("settle"),
            None => self.admission.settle(ticket, actual),
        }
    }

    async fn snapshot(&self, key_id: &str, limits: &RateLimits, now_ms: i64) -> UsageSnapshot {
        let key_id: Arc<str> = key_id.into();
        match &self.admission.counters {
            Counters::Local(local) => local.snapshot(&key_id, limits, now_ms),
            Counters::Redis(redis) => redis
                .snapshot(&key_id, limits, now_ms)
                .await
                .expect("snapshot"),
        }
    }

    /// Every Redis key under this backend's prefix.
    async fn redis_keys(&self) -> Vec<String> {
        let Some(redis) = &self.redis else {
            return Vec::new();
        };
        let mut conn = raw_connection().await;
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", redis.prefix()))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("scan");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// Removes this test's Redis keys.
    async fn cleanup(&self) {
        let keys = self.redis_keys().await;
        if keys.is_empty() {
            return;
        }
        let mut conn = raw_connection().await;
        let _: i64 = ::redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
}

async fn raw_connection() -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// Unix milliseconds of a UTC time.
fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("time")
        .timestamp_millis()
}

/// 2026-03-10T12:00:10Z.
fn t0() -> i64 {
    at(2026, 3, 10, 12, 0, 10)
}

const S: i64 = 1000;

/// A call of `key` at `now_ms` using 100 tokens and 1,000 nanos, with no limits.
fn ask(key: &str, now_ms: i64) -> Ask {
    Ask {
        key_id: key.into(),
        owner: None,
        limits: RateLimits::default(),
        key_budgets: BudgetNanos::default(),
        owner_budgets: BudgetNanos::default(),
        global_budgets: BudgetNanos::default(),
        soft_threshold: 0.8,
        estimate: Estimate {
            tokens: 100,
            cost_nanos: 1_000,
        },
        downgrade: None,
        now_ms,
    }
}

fn daily(nanos: i64) -> BudgetNanos {
    BudgetNanos {
        daily: Some(nanos),
        monthly: None,
    }
}

/// Runs `ask` 50 times at once; the admitted and the refused.
async fn admit_concurrently(b: &Arc<Backend>, ask: &Ask) -> (Vec<Admitted>, Vec<Box<Refusal>>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let b = b.clone();
            let ask = ask.clone();
            tokio::spawn(async move { b.admit(&ask).await })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(a) => admitted.push(a),
            Err(r) => refused.push(r),
        }
    }
    (admitted, refused)
}

/// The scenarios, each run once per backend.
mod scenarios {
    use super::*;

    pub async fn concurrent_admits_stop_at_the_rpm_limit(b: Arc<Backend>) {
        let mut a = ask("key_rpm", t0());
        a.limits.rpm = Some(10);
        let (admitted, refused) = admit_concurrently(&b, &a).await;
        assert_eq!(admitted.len(), 10);
        assert_eq!(refused.len(), 40);
        for r in &refused {
            let Refusal::RateLimited {
                kind,
                limit,
                retry_after_s,
                report,
            } = **r
            else {
                panic!("expected a rate limit, got {r:?}");
            };
            assert_eq!((kind, limit), (LimitKind::Rpm, 10));
            assert!((1..=61).contains(&retry_after_s), "{retry_after_s}");
            let rpm = report.get(LimitKind::Rpm).expect("rpm reported");
            assert_eq!(rpm.remaining, 0);
        }
        let snap = b.snapshot("key_rpm", &a.limits, t0()).await;
        assert_eq!(snap.today.requests, 10);
        assert_eq!(snap.limits.get(LimitKind::Rpm).expect("rpm").remaining, 0);
    }

    pub async fn the_sliding_minute_frees_capacity_61_seconds_later(b: Arc<Backend>) {
        let mut a = ask("key_slide", t0());
        a.limits.rpm = Some(3);
        for _ in 0..3 {
            b.admit(&a).await.expect("admitted");
        }
        for (later, retry) in [(30, 31), (60, 1)] {
            a.now_ms = t0() + later * S;
            match *b.admit(&a).await.expect_err("still in the window") {
                Refusal::RateLimited {
                    kind: LimitKind::Rpm,
                    retry_after_s,
                    ..
                } => assert_eq!(retry_after_s, retry, "{later} s later"),
                other => panic!("{other:?}"),
            }
        }
        a.now_ms = t0() + 61 * S;
        for _ in 0..3 {
            b.admit(&a).await.expect("the window has moved on");
        }
        assert!(b.admit(&a).await.is_err());
    }

    pub async fn the_hour_limit_resets_on_the_calendar_hour(b: Arc<Backend>) {
        let mut a = ask("key_hour", at(2026, 3, 10, 12, 10, 0));
        a.limits.rph = Some(2);
        b.admit(&a).await.expect("first");
        a.now_ms = at(2026, 3, 10, 12, 59, 50);
        let admitted = b.admit(&a).await.expect("second");
        let rph = admitted.report.get(LimitKind::Rph).expect("rph");
        assert_eq!((rph.limit, rph.remaining, rph.reset_s), (2, 0, 10));
        a.now_ms = at(2026, 3, 10, 12, 59, 55);
        match *b.admit(&a).await.expect_err("hour is full") {
            Refusal::RateLimited {
                kind: LimitKind::Rph,
                retry_after_s: 5,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        a.now_ms = at(2026, 3, 10, 13, 0, 0);
        b.admit(&a).await.expect("a new hour");
        b.admit(&a).await.expect("a new hour");
        assert!(b.admit(&a).await.is_err());
    }

    pub async fn the_day_and_month_roll_over_on_the_calendar(b: Arc<Backend>) {
        let mut a = ask("key_cal", at(2026, 1, 31, 23, 59, 59));
        a.limits.rpd = Some(1);
        a.limits.tokens_per_month = Some(150);
        b.admit(&a).await.expect("January");
        a.now_ms = at(2026, 1, 31, 23, 59, 59) + 500;
        assert!(b.admit(&a).await.is_err());
        a.now_ms = at(2026, 2, 1, 0, 0, 0);
        let admitted = b.admit(&a).await.expect("February");
        let month = admitted
            .report
            .get(LimitKind::TokensPerMonth)
            .expect("tokens_per_month");
        assert_eq!(month.remaining, 50);
        let snap = b.snapshot("key_cal", &a.limits, a.now_ms).await;
        assert_eq!((snap.today.requests, snap.month.requests), (1, 1));
    }

    pub async fn tpm_counts_estimates_and_settle_corrects_them(b: Arc<Backend>) {
        let mut a = ask("key_tpm", t0());
        a.limits.tpm = Some(1000);
        a.estimate.tokens = 400;
        let first = b.admit(&a).await.expect("400");
        let second = b.admit(&a).await.expect("800");
        assert_eq!(
            second.report.get(LimitKind::Tpm).expect("tpm").remaining,
            200
        );
        match *b.admit(&a).await.expect_err("1200 > 1000") {
            Refusal::RateLimited {
                kind: LimitKind::Tpm,
                limit: 1000,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        // The first call used 150 tokens, not 400: 250 are free again.
        a.now_ms = t0() + 5 * S;
        b.settle(
            &first.ticket,
            Actual {
                prompt_tokens: 100,
                completion_tokens: 50,
                cost_nanos: 0,
            },
        )
        .await;
        let snap = b.snapshot("key_tpm", &a.limits, a.now_ms).await;
        assert_eq!(snap.limits.get(LimitKind::Tpm).expect("tpm").remaining, 450);
        let third = b.admit(&a).await.expect("950");
        assert_eq!(third.report.get(LimitKind::Tpm).expect("tpm").remaining, 50);
    }

    pub async fn concurrent_admits_stop_at_the_daily_key_budget(b: Arc<Backend>) {
        let mut a = ask("key_budget", t0());
        a.key_budgets = daily(10 * 1_000);
        let (admitted, refused) = admit_concurrently(&b, &a).await;
        assert_eq!(admitted.len(), 10);
        assert_eq!(refused.len(), 40);
        let day_reset = super::super::windows::Periods::at(t0()).day_reset_s();
        for r in &refused {
            match **r {
                Refusal::BudgetExceeded {
                    scope: Scope::Key,
                    period: BudgetPeriod::Daily,
                    limit_nanos: 10_000,
                    committed_nanos: 10_000,
                    retry_after_s,
                    ..
                } => assert_eq!(retry_after_s, day_reset),
                ref other => panic!("{other:?}"),
            }
        }
        let snap = b.snapshot("key_budget", &a.limits, t0()).await;
        assert_eq!(snap.today.spend.reserved_nanos, 10_000);
        assert_eq!(snap.today.requests, 10);
    }

    pub async fn an_owner_budget_is_shared_by_the_owners_keys(b: Arc<Backend>) {
        let of = |key: &str, owner: &str| {
            let mut a = ask(key, t0());
            a.owner = Some(owner.into());
            a.owner_budgets = daily(3_000);
            a
        };
        let (a1, a2) = (
            of("key_a1", "alice@example.com"),
            of("key_a2", "alice@example.com"),
        );
        b.admit(&a1).await.expect("alice 1");
        b.admit(&a1).await.expect("alice 2");
        b.admit(&a2).await.expect("alice 3");
        for a in [&a2, &a1] {
            match *b.admit(a).await.expect_err("alice is out") {
                Refusal::BudgetExceeded {
                    scope: Scope::Owner,
                    period: BudgetPeriod::Daily,
                    committed_nanos: 3_000,
                    ..
                } => {}
                other => panic!("{other:?}"),
            }
        }
        b.admit(&of("key_b1", "bob:ops")).await.expect("bob's own");
    }

    pub async fn the_global_budget_covers_every_key(b: Arc<Backend>) {
        let of = |key: &str| {
            let mut a = ask(key, t0());
            a.global_budgets = BudgetNanos {
                daily: None,
                monthly: Some(2_500),
            };
            a
        };
        b.admit(&of("key_g1")).await.expect("first");
        b.admit(&of("key_g2")).await.expect("second");
        match *b.admit(&of("key_g3")).await.expect_err("over") {
            Refusal::BudgetExceeded {
                scope: Scope::Global,
                period: BudgetPeriod::Monthly,
                limit_nanos: 2_500,
                committed_nanos: 2_000,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        // A call that fits the rest still passes.
        let mut small = of("key_g3");
        small.estimate.cost_nanos = 500;
        b.admit(&small).await.expect("fits");
    }

    pub async fn past_the_soft_threshold_calls_are_downgraded(b: Arc<Backend>) {
        let mut a = ask("key_soft", t0());
        a.key_budgets = daily(10_000);
        a.limits.tpd = Some(10_000);
        a.estimate = Estimate {
            tokens: 100,
            cost_nanos: 3_000,
        };
        let cheaper = Estimate {
            tokens: 50,
            cost_nanos: 500,
        };
        a.downgrade = Some(cheaper);
        // 0, 30 and 60 % committed before the call: below 80 %.
        for _ in 0..3 {
            let admitted = b.admit(&a).await.expect("below the threshold");
            assert!(!admitted.downgraded);
            assert_eq!(admitted.ticket.reserved, a.estimate);
        }
        // 90 % before the call: the downgrade estimate is counted.
        let admitted = b.admit(&a).await.expect("downgraded");
        assert!(admitted.downgraded);
        assert_eq!(admitted.ticket.reserved, cheaper);
        assert_eq!(
            admitted.report.get(LimitKind::Tpd).expect("tpd").remaining,
            10_000 - 350
        );
        let snap = b.snapshot("key_soft", &a.limits, t0()).await;
        assert_eq!(snap.today.spend.reserved_nanos, 9_500);
        assert_eq!(
            snap.limits.get(LimitKind::Tpd).expect("tpd").remaining,
            9_650
        );
        // Without a downgrade on offer, the full estimate no longer fits.
        a.downgrade = None;
        assert!(b.admit(&a).await.is_err());
    }

    pub async fn settle_moves_reserved_to_spent(b: Arc<Backend>) {
        let mut a = ask("key_settle", t0());
        a.owner = Some("owner one".into());
        a.owner_budgets = daily(6_000);
        a.global_budgets = daily(1_000_000);
        a.estimate = Estimate {
            tokens: 300,
            cost_nanos: 5_000,
        };
        let admitted = b.admit(&a).await.expect("admitted");
        assert!(admitted.ticket.owner.is_some() && admitted.ticket.global);
        assert!(b.admit(&a).await.is_err(), "5,000 + 5,000 > 6,000");
        // The path the gateway takes: settled off the request path.
        b.admission.settle(
            &admitted.ticket,
            Actual {
                prompt_tokens: 120,
                completion_tokens: 80,
                cost_nanos: 2_000,
            },
        );
        let mut snap = b.snapshot("key_settle", &a.limits, t0()).await;
        for _ in 0..200 {
            if snap.today.spend.reserved_nanos == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            snap = b.snapshot("key_settle", &a.limits, t0()).await;
        }
        for figures in [snap.today, snap.month] {
            assert_eq!(figures.requests, 1);
            assert_eq!(figures.prompt_tokens, 120);
            assert_eq!(figures.completion_tokens, 80);
            assert_eq!(figures.spend.spent_nanos, 2_000);
            assert_eq!(figures.spend.reserved_nanos, 0);
        }
        // The owner's spend is settled too: 2,000 + 3,000 fits 6,000.
        a.estimate.cost_nanos = 3_000;
        b.admit(&a).await.expect("owner has room again");
    }

    pub async fn a_refused_call_counts_nothing(b: Arc<Backend>) {
        let mut a = ask("key_refused", t0());
        a.limits.rpm = Some(1);
        a.limits.tpm = Some(10_000);
        a.limits.rph = Some(5);
        b.admit(&a).await.expect("first");
        let before = b.snapshot("key_refused", &a.limits, t0()).await;
        let refusal = b.admit(&a).await.expect_err("rpm");
        // The refusal shows the state without the refused call.
        let report = refusal.report();
        assert_eq!(report.get(LimitKind::Rpm).expect("rpm").remaining, 0);
        assert_eq!(report.get(LimitKind::Rph).expect("rph").remaining, 4);
        assert_eq!(
            report.get(LimitKind::Tpm).expect("tpm").remaining,
            10_000 - 100
        );
        assert_eq!(b.snapshot("key_refused", &a.limits, t0()).await, before);

        // Over budget: nothing counted anywhere.
        let mut poor = ask("key_poor", t0());
        poor.limits.rpm = Some(5);
        poor.key_budgets = daily(500);
        poor.owner = Some("poor owner".into());
        poor.owner_budgets = daily(100_000);
        poor.global_budgets = daily(100_000);
        assert!(b.admit(&poor).await.is_err());
        let snap = b.snapshot("key_poor", &poor.limits, t0()).await;
        assert_eq!(snap.today, Default::default());
        assert_eq!(snap.month, Default::default());
        assert_eq!(snap.limits.get(LimitKind::Rpm).expect("rpm").remaining, 5);
        // The owner and global budgets were not charged either.
        let mut rich = ask("key_rich", t0());
        rich.owner = poor.owner.clone();
        rich.owner_budgets = daily(1_000);
        rich.global_budgets = daily(1_000);
        b.admit(&rich).await.expect("owner and global untouched");
    }

    pub async fn a_nonce_is_claimed_once(b: Arc<Backend>) {
        let admission = &b.admission;
        assert!(admission.claim_nonce("nonce-1", 60).await.expect("claim"));
        assert!(!admission.claim_nonce("nonce-1", 60).await.expect("claim"));
        assert!(admission.claim_nonce("nonce-2", 60).await.expect("claim"));
        assert!(admission
            .claim_nonce("a nonce: with spaces", 60)
            .await
            .expect("claim"));
    }
}

/// Declares each scenario as a test per backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod local_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let b = std::sync::Arc::new(super::Backend::local());
                    super::scenarios::$name(b).await;
                }
            )*
        }
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let b = std::sync::Arc::new(super::Backend::redis().await);
                    super::scenarios::$name(b.clone()).await;
                    b.cleanup().await;
                }
            )*
        }
    };
}

on_every_backend!(
    concurrent_admits_stop_at_the_rpm_limit,
    the_sliding_minute_frees_capacity_61_seconds_later,
    the_hour_limit_resets_on_the_calendar_hour,
    the_day_and_month_roll_over_on_the_calendar,
    tpm_counts_estimates_and_settle_corrects_them,
    concurrent_admits_stop_at_the_daily_key_budget,
    an_owner_budget_is_shared_by_the_owners_keys,
    the_global_budget_covers_every_key,
    past_the_soft_threshold_calls_are_downgraded,
    settle_moves_reserved_to_spent,
    a_refused_call_counts_nothing,
    a_nonce_is_claimed_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_key_expires() {
    let b = Backend::redis().await;
    let mut a = ask("key_ttl", t0());
    a.owner = Some("owner".into());
    a.owner_budgets = daily(1_000_000);
    a.global_budgets = daily(1_000_000);
    a.limits.rph = Some(100);
    let admitted = b.admit(&a).await.expect("admitted");
    b.settle(&admitted.ticket, Actual::default()).await;
    assert!(b.admission.claim_nonce("n", 30).await.expect("nonce"));
    let keys = b.redis_keys().await;
    // minute, hour, key day and month, owner day and month, global day and month, nonce
    assert_eq!(keys.len(), 9, "{keys:?}");
    let mut conn = raw_connection().await;
    for key in &keys {
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("ttl");
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    // A settlement after the windows are gone does not bring them back.
    b.cleanup().await;
    b.settle(&admitted.ticket, Actual::default()).await;
    assert!(b.redis_keys().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error_without_the_password() {
    let storage = StorageConfig {
        database_url: "sqlite://unused.db".to_owned(),
        redis_url: Some("redis://:hunter2@127.0.0.1:1".to_owned()),
        log_retention_days: 1,
        spool_path: "unused.usage-spool".into(),
    };
    let e = Counters::from_config(&storage)
        .await
        .expect_err("nothing listens on port 1");
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("redis://:***@127.0.0.1:1"), "{text}");
    assert!(text.contains("storage.redis_url"), "{text}");
}

#[tokio::test]
async fn no_redis_url_keeps_the_counters_in_process() {
    let storage = StorageConfig {
        database_url: "sqlite://unused.db".to_owned(),
        redis_url: None,
        log_retention_days: 1,
        spool_path: "unused.usage-spool".into(),
    };
    assert!(matches!(
        Counters::from_config(&storage).await,
        Ok(Counters::Local(_))
    ));
}
