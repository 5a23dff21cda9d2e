//! `/metrics` (parsed as Prometheus text) and `/ready` (SPEC §9).

use std::collections::HashMap;

use crate::common::*;

async fn scrape(gw: &TestGateway, token: Option<&str>) -> reqwest::Response {
    let mut request = gw.client.get(format!("{}/metrics", gw.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

fn find<'a>(
    scrape: &'a prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

#[tokio::test]
async fn metrics_count_calls_by_route_model_provider_and_status() {
    let gw = TestGateway::start_with(Setup {
        extra: "[tiers.standard]\nrpm = 3\nrph = 0\n",
        ..Setup::default()
    })
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("fail [[mock:500]]"))
            .await
            .status(),
        502
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("hi")).await.status(),
        429
    );
    let r = scrape(&gw, None).await;
    assert_eq!(r.status(), 200);

    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let scrape = parse(&r.text().await.unwrap());
    let ok = find(
        &scrape,
        "tollgate_requests_total",
        &[
            ("route", "/v1/chat/completions"),
            ("model", "mock-gpt"),
            ("provider", "local"),
            ("status", "200"),
        ],
    )
    .expect("the 200 series");
    assert_eq!(value(ok), 2.0);
    let failed = find(&scrape, "tollgate_requests_total", &[("status", "502")]).expect("502");
    assert_eq!(value(failed), 1.0);
    assert_eq!(
        value(find(&scrape, "tollgate_rate_limited_total", &[]).expect("429s")),
        1.0
    );
    assert!(
        value(
            find(
                &scrape,
                "tollgate_tokens_total",
                &[("model", "mock-gpt"), ("kind", "completion")]
            )
            .expect("tokens")
        ) > 0.0
    );
    assert!(
        value(find(&scrape, "tollgate_cost_total", &[("model", "mock-gpt")]).expect("cost")) > 0.0
    );
    // One state series per state; exactly one is 1 (the 500 above cooled the key).
    let states: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "tollgate_upstream_key_state" && s.labels.get("key") == Some("up-1")
        })
        .collect();
    assert_eq!(states.len(), 4);
    assert_eq!(states.iter().map(|s| value(s)).sum::<f64>(), 1.0);
    assert_eq!(
        value(
            find(
                &scrape,
                "tollgate_upstream_key_state",
                &[("key", "up-1"), ("state", "cooling_down")]
            )
            .expect("state")
        ),
        1.0
    );
    assert!(find(
        &scrape,
        "tollgate_upstream_key_utilization",
        &[("provider", "local"), ("key", "up-1")]
    )
    .is_some());
    assert!(find(&scrape, "tollgate_usage_queue_depth", &[]).is_some());
    assert_eq!(
        value(find(&scrape, "tollgate_usage_dropped_total", &[]).expect("dropped")),
        0.0
    );
    // Histograms: 4 calls on the chat route.
    let durations: HashMap<_, _> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "tollgate_request_duration_seconds")
        .map(|s| (s.labels.get("route").map(str::to_owned), s))
        .collect();
    let chat = durations
        .get(&Some("/v1/chat/completions".to_owned()))
        .expect("histogram");
    match &chat.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .expect("+Inf");
            assert_eq!(inf.count, 4.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // No upstream secret anywhere.
    let text = scrape_text(&gw).await;
    assert!(!text.contains("sk-upstream-one"));
}

async fn scrape_text(gw: &TestGateway) -> String {
    scrape(gw, None).await.text().await.unwrap()
}

#[tokio::test]
async fn a_metrics_token_guards_the_endpoint() {
    let gw = TestGateway::start_with(Setup {
        server: "metrics_token = \"scrape-secret\"",
        ..Setup::default()
    })
    .await;
    assert_eq!(scrape(&gw, None).await.status(), 401);
    assert_eq!(scrape(&gw, Some("wrong")).await.status(), 401);
    assert_eq!(scrape(&gw, Some("scrape-secret")).await.status(), 200);
}

#[tokio::test]
async fn ready_checks_the_database_and_the_pools() {
    let gw = TestGateway::start_with(Setup {
        upstream_keys: vec![("up-bad", "mock-401")],
        ..Setup::default()
    })
    .await;
    let ready = gw
        .client
        .get(format!("{}/ready", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["limits"], "in-process");
    // The only key turns out invalid: no usable key, not ready.
    let _ = gw.post("/v1/chat/completions", chat("hi")).await;
    let ready = gw
        .client
        .get(format!("{}/ready", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(body["checks"]["providers"]["local"]
        .as_str()
        .unwrap()
        .contains("no usable"));
}
