//! The admin API's reports: usage, costs and logs over real calls (SPEC §7, §8).

use std::collections::HashSet;

use serde_json::Value;

use crate::common::*;

/// Calls through the gateway: key A makes 4 good calls, one for an unknown model and
/// 2 that fail upstream (`[[mock:500]]`); key B makes 2 good calls. 9 rows.
async fn traffic(gw: &TestGateway) -> (String, String) {
    let (key_b_id, key_b) = create_key(gw.running(), "second").await;
    for i in 0..4 {
        let r = gw
            .post("/v1/chat/completions", chat(&format!("hello {i}")))
            .await;
        assert_eq!(r.status(), 200);
    }
    for i in 0..2 {
        let r = gw
            .client
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&key_b)
            .json(&chat(&format!("from b {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = gw
        .post(
            "/v1/chat/completions",
            serde_json::json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status(), 404);
    for _ in 0..2 {
        let r = gw
            .post("/v1/chat/completions", chat("fail [[mock:500]]"))
            .await;
        assert_eq!(r.status(), 502);
    }
    assert_eq!(gw.wait_for_rows(9).await.len(), 9);
    (gw.key_id.clone(), key_b_id)
}

async fn admin_get(gw: &TestGateway, token: &str, path_and_query: &str) -> reqwest::Response {
    gw.client
        .get(format!("{}{path_and_query}", gw.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn json(gw: &TestGateway, token: &str, path_and_query: &str) -> Value {
    let r = admin_get(gw, token, path_and_query).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{path_and_query}: {body}");
    body
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn reports_usage_grouped_and_filtered() {
    let gw = TestGateway::start().await;
    let (key_a, key_b) = traffic(&gw).await;
    let token = admin_token(&gw).await;

    let total = json(&gw, &token, "/admin/api/usage").await;
    assert_eq!(total["next_cursor"], Value::Null);
    assert_eq!(total["currency"], "USD");
    let data = total["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    let row = &data[0];
    assert_eq!(row["requests"], 9);
    assert_eq!(row["successes"], 6);
    assert_eq!(row["failures"], 3);
    assert_eq!(row["errors"]["upstream_server_error"], 2);
    assert_eq!(row["errors"]["model_not_found"], 1);
    assert!(row["cost"].as_f64().unwrap() > 0.0);
    assert!(row["prompt_tokens"].as_i64().unwrap() > 0);
    assert!(row["completion_tokens"].as_i64().unwrap() > 0);
    let p50 = row["p50_ms"].as_i64().unwrap();
    let p99 = row["p99_ms"].as_i64().unwrap();
    assert!(p50 <= row["p95_ms"].as_i64().unwrap() && row["p95_ms"].as_i64().unwrap() <= p99);
    // Only the group fields asked for.
    for field in ["day", "model", "key_id", "owner"] {
        assert!(row.get(field).is_none(), "{field} in {row}");
    }
    // The total agrees with the request log.
    let rows = gw.usage_rows().await;
    let cost_nanos: i64 = rows.iter().map(|r| r.cost_nanos).sum();
    assert!((row["cost"].as_f64().unwrap() - cost_nanos as f64 / 1e9).abs() < 1e-12);

    let by_model = json(&gw, &token, "/admin/api/usage?group_by=model").await;
    let models: Vec<(String, i64, i64)> = by_model["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_owned(),
                r["requests"].as_i64().unwrap(),
                r["failures"].as_i64().unwrap(),
            )
        })
        .collect();
    // The refused call counts under the model it asked for.
    assert_eq!(
        models,
        [
            ("mock-gpt".to_owned(), 8, 2),
            ("no-such-model".to_owned(), 1, 1)
        ]
    );

    let by_key = json(&gw, &token, "/admin/api/usage?group_by=key").await;
    let mut keys: Vec<(String, i64)> = by_key["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key_id"].as_str().unwrap().to_owned(),
                r["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    keys.sort();
    let mut expected = vec![(key_a.clone(), 7), (key_b.clone(), 2)];
    expected.sort();
    assert_eq!(keys, expected);

    let by_day_owner = json(&gw, &token, "/admin/api/usage?group_by=day,owner").await;
    let data = by_day_owner["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["day"], today());
    assert_eq!(data[0]["owner"], "owner-1");
    assert_eq!(data[0]["requests"], 9);

    // Filters: key, model, owner, dates (a date as `to` includes its day).
    let one = |body: Value| body["data"][0]["requests"].as_i64().unwrap();
    assert_eq!(
        one(json(&gw, &token, &format!("/admin/api/usage?key_id={key_b}")).await),
        2
    );
    assert_eq!(
        one(json(&gw, &token, "/admin/api/usage?model=mock-gpt&owner=owner-1").await),
        8
    );
    assert_eq!(
        one(json(
            &gw,
            &token,
            &format!("/admin/api/usage?key_id={key_a}&model=mock-gpt")
        )
        .await),
        6
    );
    let day = today();
    assert_eq!(
        one(json(
            &gw,
            &token,
            &format!("/admin/api/usage?from={day}&to={day}")
        )
        .await),
        9
    );
    let now_ms = chrono::Utc::now().timestamp_millis() + 1;
    assert_eq!(
        one(json(&gw, &token, &format!("/admin/api/usage?from={now_ms}")).await),
        0
    );
    assert_eq!(
        one(json(&gw, &token, &format!("/admin/api/usage?to={now_ms}")).await),
        9
    );
    let grouped_empty = json(&gw, &token, "/admin/api/usage?owner=nobody&group_by=day").await;
    assert_eq!(grouped_empty["data"], serde_json::json!([]));
}

#[tokio::test]
async fn reports_costs_sorted_by_cost_and_csv() {
    let gw = TestGateway::start().await;
    let (key_a, key_b) = traffic(&gw).await;
    let token = admin_token(&gw).await;

    let costs = json(&gw, &token, "/admin/api/costs?group_by=key").await;
    let data = costs["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["key_id"], key_a.as_str(), "highest cost first");
    assert_eq!(data[1]["key_id"], key_b.as_str());
    assert!(data[0]["cost"].as_f64().unwrap() > data[1]["cost"].as_f64().unwrap());
    assert_eq!(data[0]["requests"], 7);
    let fields: HashSet<&str> = data[0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        fields,
        HashSet::from([
            "key_id",
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "cost"
        ])
    );

    // CSV: a header row, one line per group, CRLF, the same figures.
    let r = admin_get(
        &gw,
        &token,
        "/admin/api/usage?group_by=model,key&format=csv",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    assert!(text.ends_with("\r\n"));
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "model,key_id,requests,successes,failures,prompt_tokens,completion_tokens,cost,p50_ms,p95_ms,p99_ms,errors"
    );
    assert_eq!(lines.len(), 1 + 3, "{text}");
    let no_model = lines
        .iter()
        .find(|l| l.starts_with("no-such-model,"))
        .unwrap();
    // The errors map is JSON in one quoted field, its quotes doubled.
    assert!(
        no_model.ends_with(",\"{\"\"model_not_found\"\":1}\""),
        "{no_model}"
    );
    assert!(no_model.starts_with(&format!("no-such-model,{key_a},1,0,1,")));

    let r = admin_get(&gw, &token, "/admin/api/costs?format=csv").await;
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "requests,prompt_tokens,completion_tokens,cost");
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("9,"));
}

#[tokio::test]
async fn reports_logs_page_through_every_row_once() {
    let gw = TestGateway::start().await;
    let (key_a, _) = traffic(&gw).await;
    let token = admin_token(&gw).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/api/logs?limit=2&cursor={c}"),
            None => "/admin/api/logs?limit=2".to_owned(),
        };
        let page = json(&gw, &token, &path).await;
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(
            data.iter()
                .map(|r| r["request_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let stored: Vec<String> = gw
        .usage_rows()
        .await
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(seen, stored, "every row exactly once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 9);

    // Filters.
    let failed = json(&gw, &token, "/admin/api/logs?status=5xx").await;
    let data = failed["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for row in data {
        assert_eq!(row["status"], 502);
        assert_eq!(row["error_type"], "upstream_server_error");
        assert_eq!(row["model_served"], "mock-gpt");
        assert_eq!(row["endpoint"], "/v1/chat/completions");
        assert!(row["time"].as_str().unwrap().ends_with('Z'));
    }
    let exact = json(
        &gw,
        &token,
        "/admin/api/logs?status=404&error_type=model_not_found",
    )
    .await;
    assert_eq!(exact["data"].as_array().unwrap().len(), 1);
    assert_eq!(exact["data"][0]["model_requested"], "no-such-model");
    assert_eq!(exact["data"][0]["model_served"], Value::Null);
    let mine = json(
        &gw,
        &token,
        &format!("/admin/api/logs?key_id={key_a}&status=200"),
    )
    .await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 4);
    let good = &mine["data"][0];
    assert!(good["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(good["key_id"], key_a.as_str());

    // CSV pages: the cursor in a header.
    let r = admin_get(&gw, &token, "/admin/api/logs?format=csv&limit=5").await;
    assert_eq!(r.status(), 200);
    let next = r.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert!(lines[0].starts_with("request_id,created_at,time,key_id,"));
    assert_eq!(lines.len(), 6);
    assert_eq!(next, seen[4]);
    let r = admin_get(
        &gw,
        &token,
        &format!("/admin/api/logs?format=csv&limit=5&cursor={next}"),
    )
    .await;
    assert!(r.headers().get("x-next-cursor").is_none());
    let text = r.text().await.unwrap();
    assert_eq!(text.trim_end().split("\r\n").count(), 1 + 4);
}

#[tokio::test]
async fn reports_refuse_bad_parameters_naming_them() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    for (query, param) in [
        ("/admin/api/usage?group_by=week", "group_by"),
        ("/admin/api/costs?group_by=day,day", "group_by"),
        ("/admin/api/usage?from=yesterday", "from"),
        ("/admin/api/usage?to=1700000000", "to"),
        ("/admin/api/usage?from=2024-03-11&to=2024-03-10", "to"),
        ("/admin/api/usage?format=xml", "format"),
        ("/admin/api/usage?limit=5", "limit"),
        ("/admin/api/logs?limit=0", "limit"),
        ("/admin/api/logs?limit=100000", "limit"),
        ("/admin/api/logs?status=abc", "status"),
        ("/admin/api/logs?cursor=x%27%20OR%201", "cursor"),
        ("/admin/api/logs?group_by=day", "group_by"),
    ] {
        let (status, error) = error_of(admin_get(&gw, &token, query).await).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(error["param"], param, "{query}: {error}");
        assert_eq!(error["type"], "invalid_request_error");
        assert!(error["message"].as_str().unwrap().len() > 20, "{error}");
    }
    let (_, error) = error_of(admin_get(&gw, &token, "/admin/api/usage?group_by=week").await).await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("week") && message.contains("day, model, key or owner"),
        "{message}"
    );

    // Without a session: 401.
    for path in ["/admin/api/usage", "/admin/api/costs", "/admin/api/logs"] {
        let r = gw
            .client
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn reports_are_in_the_openapi_document() {
    let gw = TestGateway::start().await;
    let doc: Value = gw
        .client
        .get(format!("{}/admin/api/openapi.json", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in ["/admin/api/usage", "/admin/api/costs", "/admin/api/logs"] {
        let get = &doc["paths"][path]["get"];
        assert!(get.is_object(), "{path} missing");
        let params: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            params.contains(&"from") && params.contains(&"format"),
            "{path}: {params:?}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "UsageReport",
        "UsageReportRow",
        "CostReport",
        "CostReportRow",
        "LogEntry",
    ] {
        assert!(schemas[schema].is_object(), "{schema} missing");
    }
}
