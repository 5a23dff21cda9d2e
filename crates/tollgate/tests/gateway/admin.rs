//! The admin API (SPEC §1 bootstrap, §8): sessions, login limits, every route, field
//! validation, and writes that apply to the very next client request.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tollgate::http::admin::all_routes;

use crate::common::{
    admin_token, chat, error_of, TestGateway, ADMIN_PASSWORD_VAR, TEST_ADMIN_PASSWORD,
    TEST_MASTER_KEY,
};

/// A request to an admin route with the session `token`.
fn admin(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    gw.client
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(token)
}

async fn get_json(gw: &TestGateway, path: &str, token: &str) -> Value {
    let response = admin(gw, reqwest::Method::GET, path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

async fn send_json(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    admin(gw, method, path, token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// POST /v1/chat/completions with `key`.
async fn call(gw: &TestGateway, key: &str) -> reqwest::Response {
    gw.client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&chat("hi"))
        .send()
        .await
        .unwrap()
}

async fn login(gw: &TestGateway, username: &str, password: &str) -> reqwest::Response {
    gw.client
        .post(format!("{}/admin/api/login", gw.url))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The route's path with its `{id}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "key_nope")
}

#[tokio::test]
async fn every_admin_route_is_documented_and_refuses_a_request_without_a_session() {
    let gw = TestGateway::start().await;
    let response = gw
        .client
        .get(format!("{}/admin/api/openapi.json", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the document is public");
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            documented += 1;
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "operationId {id} is not unique"
            );
            assert!(
                all_routes().any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not routed"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no response"
            );
        }
    }
    let routes: Vec<_> = all_routes().collect();
    assert_eq!(documented, routes.len(), "every route is documented once");
    for path in [
        "/admin/api/login",
        "/admin/api/logout",
        "/admin/api/keys",
        "/admin/api/keys/{id}",
        "/admin/api/keys/{id}/suspend",
        "/admin/api/keys/{id}/resume",
        "/admin/api/keys/{id}/revoke",
        "/admin/api/keys/{id}/regenerate",
        "/admin/api/upstreams",
        "/admin/api/upstreams/{id}",
        "/admin/api/upstreams/{id}/enable",
        "/admin/api/upstreams/{id}/disable",
        "/admin/api/users",
        "/admin/api/models",
        "/admin/api/metrics",
        "/admin/api/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }

    for route in &routes {
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
        assert!(
            doc["paths"][route.path][route.method.to_ascii_lowercase()].is_object(),
            "{} {} is routed but not documented",
            route.method,
            route.path
        );
        let url = format!("{}{}", gw.url, concrete(route.path));
        if route.public {
            let status = gw
                .client
                .request(method, &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status();
            assert_ne!(status, 401, "{} {} is public", route.method, route.path);
            continue;
        }
        for (how, request) in [
            ("no credentials", gw.client.request(method.clone(), &url)),
            (
                "an unknown token",
                gw.client
                    .request(method.clone(), &url)
                    .bearer_auth("0".repeat(64)),
            ),
            (
                "an unknown cookie",
                gw.client
                    .request(method.clone(), &url)
                    .header("cookie", "tollgate_session=abc"),
            ),
            (
                "a client key",
                gw.client.request(method.clone(), &url).bearer_auth(&gw.key),
            ),
        ] {
            let (status, error) = error_of(request.json(&json!({})).send().await.unwrap()).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (401, Some("invalid_admin_session")),
                "{} {} with {how}",
                route.method,
                route.path
            );
        }
    }
}

#[tokio::test]
async fn login_sets_a_session_that_logout_ends_on_the_next_request() {
    let gw = TestGateway::start().await;
    let (status, error) = error_of(login(&gw, "admin", "wrong password!").await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let (status, error) = error_of(
        gw.client
            .post(format!("{}/admin/api/login", gw.url))
            .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD, "otp": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("otp")));

    let response = login(&gw, "admin", TEST_ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 43_200);
    assert!(token.len() >= 43, "{token}");
    for part in [
        &format!("tollgate_session={token}"),
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    let second = admin_token(&gw).await;
    assert_ne!(second, token, "every login is its own session");

    // The token works as a bearer token and as the cookie.
    get_json(&gw, "/admin/api/keys", &token).await;
    let with_cookie = gw
        .client
        .get(format!("{}/admin/api/keys", gw.url))
        .header("cookie", format!("theme=dark; tollgate_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 200);

    let out = admin(&gw, reqwest::Method::POST, "/admin/api/logout", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    for request in [
        admin(&gw, reqwest::Method::GET, "/admin/api/keys", &token),
        gw.client
            .get(format!("{}/admin/api/keys", gw.url))
            .header("cookie", format!("tollgate_session={token}")),
        admin(&gw, reqwest::Method::POST, "/admin/api/logout", &token),
    ] {
        let (status, error) = error_of(request.send().await.unwrap()).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (401, Some("invalid_admin_session"))
        );
    }
    // Other sessions live on.
    get_json(&gw, "/admin/api/keys", &second).await;
}

#[tokio::test]
async fn failed_logins_are_limited_even_when_the_right_password_follows() {
    let gw = TestGateway::start().await;
    for i in 0..5 {
        let (status, error) =
            error_of(login(&gw, "admin", &format!("guess number {i}")).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (401, Some("invalid_credentials")),
            "attempt {i}"
        );
    }
    let response = login(&gw, "admin", TEST_ADMIN_PASSWORD).await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("too_many_login_attempts"))
    );
    // Unknown users are limited the same way (the address is locked too).
    let (status, _) = error_of(login(&gw, "nobody", "whatever whatever").await).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn unknown_users_are_refused_like_wrong_passwords() {
    let gw = TestGateway::start().await;
    let (status, unknown) = error_of(login(&gw, "nobody", TEST_ADMIN_PASSWORD).await).await;
    let (_, wrong) = error_of(login(&gw, "admin", "not the password").await).await;
    assert_eq!(status, 401);
    assert_eq!(unknown, wrong, "the answer does not tell which was wrong");
}

#[tokio::test]
async fn keys_are_managed_through_the_api_and_every_change_applies_at_once() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    let response = send_json(
        &gw,
        reqwest::Method::POST,
        "/admin/api/keys",
        &token,
        json!({
            "name": "api key",
            "owner": "alice",
            "team": "ml",
            "tier": "premium",
            "expires_at": "30d",
            "limits": {"rpm": 50, "tpd": 100000},
            "budgets": {"daily": 2.5},
            "permissions": {"models": ["mock-gpt"], "endpoints": ["chat", "/v1/models"], "max_tokens": 500, "streaming": false},
            "ip_allowlist": ["127.0.0.0/8"],
            "cors_origins": ["https://app.example.com/"],
            "region": "eu",
            "metadata": {"project": "search"}
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let location = response
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["key"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/admin/api/keys/{id}"));
    assert!(secret.starts_with("tg-live-"), "{secret}");
    assert!(created.get("hmac_secret").is_none());
    assert_eq!(created["status"], "active");
    assert_eq!(created["tier"], "premium");
    assert_eq!(created["limits"]["rpm"], 50);
    assert_eq!(created["limits"]["rph"], Value::Null);
    assert_eq!(created["budgets"]["daily"], 2.5);
    assert_eq!(
        created["permissions"]["endpoints"],
        json!(["/v1/chat/completions", "/v1/models"])
    );
    assert_eq!(created["permissions"]["streaming"], false);
    assert_eq!(created["ip_allowlist"], json!(["127.0.0.0/8"]));
    assert_eq!(created["cors_origins"], json!(["https://app.example.com"]));
    assert_eq!(created["metadata"], json!({"project": "search"}));
    assert!(created["expires_at"].as_str().unwrap().ends_with('Z'));

    // Usable on the very next request, and never shown again.
    assert_eq!(call(&gw, &secret).await.status(), 200);
    let shown = admin(&gw, reqwest::Method::GET, &location, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    let shown_text = shown.text().await.unwrap();
    assert!(!shown_text.contains(&secret), "{shown_text}");
    let shown: Value = serde_json::from_str(&shown_text).unwrap();
    assert!(shown.get("key").is_none());
    assert_eq!(shown["masked"], created["masked"]);

    // Filters.
    for (query, expected) in [
        ("owner=alice", 1),
        ("owner=bob", 0),
        ("tier=premium", 1),
        ("status=active", 2),
        ("status=revoked", 0),
        ("q=API%20K", 1),
        ("q=owner-1", 1),
        ("q=%25", 0),
    ] {
        let page = get_json(&gw, &format!("/admin/api/keys?{query}"), &token).await;
        assert_eq!(
            page["data"].as_array().unwrap().len(),
            expected,
            "{query}: {page}"
        );
        assert_eq!(page["next_cursor"], Value::Null);
    }
    let listed = get_json(&gw, "/admin/api/keys", &token).await.to_string();
    assert!(!listed.contains(&secret));

    // Update: a field, a limit cleared, a list replaced.
    let response = send_json(
        &gw,
        reqwest::Method::PATCH,
        &location,
        &token,
        json!({"name": "renamed", "limits": {"tpd": null}, "cors_origins": null, "team": null}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "renamed");
    assert_eq!(
        updated["limits"],
        json!({"rpm": 50, "rph": null, "rpd": null, "tpm": null, "tpd": null, "tokens_per_month": null})
    );
    assert_eq!(updated["cors_origins"], json!([]));
    assert_eq!(updated["team"], Value::Null);
    assert_eq!(updated["owner"], "alice", "absent fields stay");
    let (status, _) =
        error_of(send_json(&gw, reqwest::Method::PATCH, &location, &token, json!({})).await).await;
    assert_eq!(status, 400);

    // Suspend, resume, regenerate, revoke: each applies to the next call.
    let post = |action: &str| {
        admin(
            &gw,
            reqwest::Method::POST,
            &format!("/admin/api/keys/{id}/{action}"),
            &token,
        )
        .send()
    };
    let suspended: Value = post("suspend").await.unwrap().json().await.unwrap();
    assert_eq!(suspended["status"], "suspended");
    let (status, error) = error_of(call(&gw, &secret).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("key_suspended"))
    );
    assert_eq!(post("resume").await.unwrap().status(), 200);
    assert_eq!(call(&gw, &secret).await.status(), 200);

    let response = post("regenerate").await.unwrap();
    assert_eq!(response.status(), 200);
    let regenerated: Value = response.json().await.unwrap();
    let new_secret = regenerated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(regenerated["id"], id.as_str());
    assert_eq!(call(&gw, &new_secret).await.status(), 200);
    assert_eq!(error_of(call(&gw, &secret).await).await.0, 401);

    assert_eq!(post("revoke").await.unwrap().status(), 200);
    let (status, error) = error_of(call(&gw, &new_secret).await).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("key_revoked")));
    for action in ["resume", "suspend", "regenerate"] {
        let (status, error) = error_of(post(action).await.unwrap()).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (409, Some("conflict")),
            "{action}"
        );
    }
    assert_eq!(
        post("revoke").await.unwrap().status(),
        200,
        "revoking twice is fine"
    );

    let gone = admin(&gw, reqwest::Method::DELETE, &location, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    for (method, path) in [
        (reqwest::Method::GET, location.clone()),
        (reqwest::Method::DELETE, location.clone()),
        (reqwest::Method::POST, format!("{location}/suspend")),
        (reqwest::Method::POST, format!("{location}/regenerate")),
    ] {
        let response = admin(&gw, method.clone(), &path, &token)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    let (status, _) = error_of(
        send_json(
            &gw,
            reqwest::Method::PATCH,
            &location,
            &token,
            json!({"name": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_key_created_with_hmac_gets_its_signing_secret_once() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    let response = send_json(
        &gw,
        reqwest::Method::POST,
        "/admin/api/keys",
        &token,
        json!({"name": "signed", "hmac": true, "env": "test"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let signing = created["hmac_secret"].as_str().unwrap();
    assert!(!signing.is_empty());
    assert_eq!(created["hmac"], true);
    assert!(created["key"].as_str().unwrap().starts_with("tg-test-"));
    // Unsigned calls are refused at once.
    let (status, _) = error_of(call(&gw, created["key"].as_str().unwrap()).await).await;
    assert_eq!(status, 401);
    let shown = get_json(
        &gw,
        &format!("/admin/api/keys/{}", created["id"].as_str().unwrap()),
        &token,
    )
    .await;
    assert!(!shown.to_string().contains(signing));
}

#[tokio::test]
async fn a_lowered_limit_applies_to_the_very_next_request() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    let created: Value = send_json(
        &gw,
        reqwest::Method::POST,
        "/admin/api/keys",
        &token,
        json!({"name": "limited", "limits": {"rpm": 100}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let secret = created["key"].as_str().unwrap();
    let path = format!("/admin/api/keys/{}", created["id"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(call(&gw, secret).await.status(), 200);
    }
    let response = send_json(
        &gw,
        reqwest::Method::PATCH,
        &path,
        &token,
        json!({"limits": {"rpm": 2}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (status, error) = error_of(call(&gw, secret).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    // And raised again: the next request passes.
    let response = send_json(
        &gw,
        reqwest::Method::PATCH,
        &path,
        &token,
        json!({"limits": {"rpm": null}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(call(&gw, secret).await.status(), 200);
}

#[tokio::test]
async fn invalid_fields_are_refused_naming_the_field() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({"name": "x", "limits": {"rpm": 0}}), "limits.rpm"),
        (json!({"name": "x", "limits": {"rpm": -1}}), "limits.rpm"),
        (json!({"name": "x", "limits": {"rpm": "ten"}}), "limits.rpm"),
        (json!({"name": "x", "limits": {"rpx": 1}}), "limits.rpx"),
        (
            json!({"name": "x", "budgets": {"daily": -1.0}}),
            "budgets.daily",
        ),
        (json!({"name": "x", "tier": "gold"}), "tier"),
        (json!({"name": "x", "env": "prod"}), "env"),
        (
            json!({"name": "x", "expires_at": "yesterday"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "expires_at": "2001-01-01"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "ip_allowlist": ["nope"]}),
            "ip_allowlist",
        ),
        (
            json!({"name": "x", "cors_origins": ["app.example.com"]}),
            "cors_origins",
        ),
        (
            json!({"name": "x", "permissions": {"endpoints": ["files"]}}),
            "permissions.endpoints",
        ),
        (
            json!({"name": "x", "permissions": {"models": ["ghost"]}}),
            "permissions.models",
        ),
        (
            json!({"name": "x", "permissions": {"models": []}}),
            "permissions.models",
        ),
        (
            json!({"name": "x", "permissions": {"max_tokens": 0}}),
            "permissions.max_tokens",
        ),
        (json!({"name": "x", "metadata": [1]}), "metadata"),
        (
            json!({"name": "x", "dedicated_upstream": "ghost"}),
            "dedicated_upstream",
        ),
        (json!({"name": "x", "region": "eu west"}), "region"),
        (json!({"name": "x", "hmac": "yes"}), "hmac"),
    ];
    for (body, param) in cases {
        let response = send_json(
            &gw,
            reqwest::Method::POST,
            "/admin/api/keys",
            &token,
            body.clone(),
        )
        .await;
        let (status, error) = error_of(response).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["param"].as_str(), Some(param), "{body}: {error}");
        assert_eq!(error["type"], "invalid_request_error");
        assert!(error["message"].as_str().unwrap().len() > 10, "{error}");
    }
    let response = admin(&gw, reqwest::Method::POST, "/admin/api/keys", &token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
    let keys = get_json(&gw, "/admin/api/keys", &token).await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );

    // Updates are checked the same way.
    let path = format!("/admin/api/keys/{}", gw.key_id);
    for (body, param) in [
        (json!({"status": "revoked"}), "status"),
        (json!({"limits": {"tpm": 0}}), "limits.tpm"),
        (json!({"name": null}), "name"),
        (json!({"metadata": "x"}), "metadata"),
    ] {
        let response = send_json(&gw, reqwest::Method::PATCH, &path, &token, body.clone()).await;
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["param"].as_str()),
            (400, Some(param)),
            "{body}: {error}"
        );
    }
    // Query parameters too.
    for (query, param) in [
        ("status=bogus", "status"),
        ("limit=0", "limit"),
        ("limit=lots", "limit"),
        ("cursor=junk", "cursor"),
        ("colour=red", "colour"),
    ] {
        let response = admin(
            &gw,
            reqwest::Method::GET,
            &format!("/admin/api/keys?{query}"),
            &token,
        )
        .send()
        .await
        .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["param"].as_str()),
            (400, Some(param)),
            "{query}"
        );
    }
    // And upstream keys.
    for (body, param) in [
        (json!({"provider": "local", "id": "u1"}), "key"),
        (
            json!({"provider": "ghost", "id": "u1", "key": "sk-x"}),
            "provider",
        ),
        (
            json!({"provider": "local", "id": "u 1", "key": "sk-x"}),
            "id",
        ),
        (
            json!({"provider": "local", "id": "u1", "key": "sk-x", "rpm": 0}),
            "rpm",
        ),
        (
            json!({"provider": "local", "id": "u1", "key": "sk-x", "weight": 0}),
            "weight",
        ),
        (
            json!({"provider": "local", "id": "u1", "key": "sk-x", "daily_budget": -2.0}),
            "daily_budget",
        ),
        (json!({"provider": "local", "id": "u1", "key": ""}), "key"),
    ] {
        let response = send_json(
            &gw,
            reqwest::Method::POST,
            "/admin/api/upstreams",
            &token,
            body.clone(),
        )
        .await;
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["param"].as_str()),
            (400, Some(param)),
            "{body}: {error}"
        );
    }
}

#[tokio::test]
async fn twenty_keys_created_at_once_are_distinct_and_all_listed() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    let created = futures_util::future::join_all((0..20).map(|i| {
        send_json(
            &gw,
            reqwest::Method::POST,
            "/admin/api/keys",
            &token,
            json!({"name": format!("burst {i}"), "owner": "burst"}),
        )
    }))
    .await;
    let mut ids = std::collections::BTreeSet::new();
    let mut secrets = std::collections::BTreeSet::new();
    for response in created {
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_owned());
        secrets.insert(body["key"].as_str().unwrap().to_owned());
    }
    assert_eq!((ids.len(), secrets.len()), (20, 20));
    for secret in secrets.iter().take(3) {
        assert_eq!(call(&gw, secret).await.status(), 200);
    }
    let all = get_json(&gw, "/admin/api/keys?owner=burst&limit=500", &token).await;
    let listed: std::collections::BTreeSet<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);

    // Paging walks every key once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/api/keys?limit=6&cursor={c}"),
            None => "/admin/api/keys?limit=6".to_owned(),
        };
        let page = get_json(&gw, &path, &token).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 6);
        seen.extend(data.iter().map(|k| {
            (
                k["created_at"].as_str().unwrap().to_owned(),
                k["id"].as_str().unwrap().to_owned(),
            )
        }));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 21, "20 keys and the harness's");
    let unique: std::collections::BTreeSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(unique.len(), 21);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
}

#[tokio::test]
async fn upstream_keys_are_managed_through_the_api_and_never_echoed() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    assert_eq!(call(&gw, &gw.key).await.status(), 200);
    let list = get_json(&gw, "/admin/api/upstreams", &token).await;
    let configured = &list["data"][0];
    assert_eq!(configured["id"], "up-1");
    assert_eq!(configured["source"], "config");
    assert_eq!(configured["state"], "ok");
    assert_eq!(configured["stats"]["requests"], 1);
    assert!(!list.to_string().contains("sk-upstream-one"));

    const SECRET: &str = "sk-added-through-the-api";
    let response = send_json(
        &gw,
        reqwest::Method::POST,
        "/admin/api/upstreams",
        &token,
        json!({"provider": "local", "id": "up-api", "key": SECRET, "rpm": 1000, "weight": 2, "region": "eu"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
    let added: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(added["source"], "stored");
    assert_eq!(added["state"], "ok", "in the pool before the answer");
    assert_eq!(
        (added["rpm"].as_u64(), added["weight"].as_u64()),
        (Some(1000), Some(2))
    );
    assert!(added["masked"].as_str().unwrap().contains('…'));

    // The pool uses it at once.
    for _ in 0..4 {
        assert_eq!(call(&gw, &gw.key).await.status(), 200);
    }
    assert!(gw.mock.requests_for_key(SECRET) >= 1);

    for (body, code) in [
        (
            json!({"provider": "local", "id": "up-api", "key": "sk-other"}),
            "conflict",
        ),
        (
            json!({"provider": "local", "id": "up-1", "key": "sk-other"}),
            "conflict",
        ),
    ] {
        let response = send_json(
            &gw,
            reqwest::Method::POST,
            "/admin/api/upstreams",
            &token,
            body,
        )
        .await;
        let (status, error) = error_of(response).await;
        assert_eq!((status, error["code"].as_str()), (409, Some(code)));
    }

    let path = "/admin/api/upstreams/up-api";
    let response = send_json(
        &gw,
        reqwest::Method::PATCH,
        path,
        &token,
        json!({"rpm": null, "weight": 3, "key": "sk-rotated-secret"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("sk-rotated-secret"));
    let patched: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (patched["rpm"].clone(), patched["weight"].as_u64()),
        (Value::Null, Some(3))
    );
    assert_eq!(patched["region"], "eu");

    let disabled: Value = admin(
        &gw,
        reqwest::Method::POST,
        &format!("{path}/disable"),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        (disabled["status"].as_str(), disabled["state"].as_str()),
        (Some("disabled"), Some("disabled"))
    );
    let before = gw.mock.requests_for_key("sk-rotated-secret");
    for _ in 0..3 {
        assert_eq!(call(&gw, &gw.key).await.status(), 200);
    }
    assert_eq!(
        gw.mock.requests_for_key("sk-rotated-secret"),
        before,
        "a disabled key is not used"
    );
    let enabled: Value = admin(
        &gw,
        reqwest::Method::POST,
        &format!("{path}/enable"),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        (enabled["status"].as_str(), enabled["state"].as_str()),
        (Some("enabled"), Some("ok"))
    );
    assert_eq!(get_json(&gw, path, &token).await["id"], "up-api");

    // Configured keys belong to the configuration.
    for (method, action) in [
        (reqwest::Method::POST, "/disable"),
        (reqwest::Method::DELETE, ""),
        (reqwest::Method::PATCH, ""),
    ] {
        let response = admin(
            &gw,
            method.clone(),
            &format!("/admin/api/upstreams/up-1{action}"),
            &token,
        )
        .json(&json!({"rpm": 5}))
        .send()
        .await
        .unwrap();
        let (status, _) = error_of(response).await;
        assert_eq!(status, 409, "{method} {action}");
    }
    let response = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/api/upstreams/up-1/enable",
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        200,
        "enable clears a configured key's state"
    );

    let gone = admin(&gw, reqwest::Method::DELETE, path, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let (status, _) = error_of(
        admin(&gw, reqwest::Method::GET, path, &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let list = get_json(&gw, "/admin/api/upstreams", &token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn users_models_and_metrics() {
    let gw = TestGateway::start().await;
    let token = admin_token(&gw).await;
    assert_eq!(call(&gw, &gw.key).await.status(), 200);

    let users = get_json(&gw, "/admin/api/users", &token).await;
    assert_eq!(
        users["data"],
        json!([{"owner": "owner-1", "keys": 1, "active_keys": 1}])
    );
    assert_eq!(users["admins"][0]["username"], "admin");
    assert!(!users.to_string().contains("argon2"), "no password hash");

    let models = get_json(&gw, "/admin/api/models", &token).await;
    let first = &models["data"][0];
    assert_eq!(first["name"], "mock-gpt");
    assert_eq!(first["provider"], "local");
    assert_eq!(first["input_per_1m"], 1.0);
    assert_eq!(first["output_per_1m"], 2.0);
    assert_eq!(first["aliases"], json!(["gpt-alias"]));
    assert_eq!(
        first["capabilities"],
        json!(["chat", "completions", "tools"])
    );
    assert_eq!(first["fallbacks"], json!([]));
    assert_eq!(models["data"].as_array().unwrap().len(), 3);

    let metrics = get_json(&gw, "/admin/api/metrics", &token).await;
    assert_eq!(metrics["requests"], 1);
    assert_eq!(metrics["errors"], 0);
    assert!(metrics["tokens"].as_u64().unwrap() > 0);
    assert!(metrics["uptime_s"].is_u64());
    assert!(metrics["usage_queue_depth"].is_u64());
    assert_eq!(metrics["client_keys"], 1);
    assert_eq!(metrics["providers"][0]["name"], "local");
    assert_eq!(metrics["providers"][0]["usable_keys"], 1);
}

/// `tollgate` in `dir` with the test master key and nothing from the caller's
/// environment that would change what it does.
fn tollgate(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("TOLLGATE_CONFIG")
        .env_remove(ADMIN_PASSWORD_VAR)
        .env("TOLLGATE_MASTER_KEY", TEST_MASTER_KEY)
        .env("TOLLGATE_LOG", "info");
    c
}

/// A running `tollgate serve`, killed when dropped.
struct Served {
    child: Child,
    url: String,
    /// Standard error up to the "listening" line.
    stderr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tollgate serve` on a free port and reads its standard error until it
/// listens.
fn serve(dir: &std::path::Path, env: &[(&str, &str)]) -> Served {
    let mut command = tollgate(dir);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            text.push_str(&line);
            text.push('\n');
            if let Some(i) = line.find("listening on http://") {
                let url = line[i + "listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send((url, text.clone()));
            }
        }
    });
    let (url, stderr) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("tollgate serve did not start listening");
    Served { child, url, stderr }
}

async fn login_to(url: &str, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/admin/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The password printed by the first start, if any.
fn printed_password(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    lines.find(|l| l.contains("shown only this once"))?;
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[tokio::test]
async fn the_first_start_prints_an_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &[]);
    let password = printed_password(&first.stderr)
        .unwrap_or_else(|| panic!("no password printed:\n{}", first.stderr));
    assert!(password.len() >= 12, "{password}");
    assert_eq!(
        first.stderr.matches(&password).count(),
        1,
        "printed once, never logged:\n{}",
        first.stderr
    );
    assert_eq!(login_to(&first.url, "admin", &password).await, 200);
    drop(first);

    let second = serve(dir.path(), &[]);
    assert_eq!(printed_password(&second.stderr), None, "{}", second.stderr);
    assert!(!second.stderr.contains(&password));
    assert_eq!(login_to(&second.url, "admin", &password).await, 200);
}

#[tokio::test]
async fn the_first_start_honours_tollgate_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = "chosen-by-the-operator";
    let served = serve(dir.path(), &[(ADMIN_PASSWORD_VAR, chosen)]);
    assert_eq!(printed_password(&served.stderr), None, "{}", served.stderr);
    assert!(
        !served.stderr.contains(chosen),
        "the password is never logged"
    );
    assert_eq!(login_to(&served.url, "admin", chosen).await, 200);
    drop(served);

    // A too short password on an empty database: serve refuses to start, saying why.
    let empty = tempfile::tempdir().unwrap();
    let out = tollgate(empty.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(ADMIN_PASSWORD_VAR, "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 12"), "{stderr}");
}

#[tokio::test]
async fn admin_users_are_created_and_changed_from_the_cli_with_the_password_on_stdin() {
    let gw = TestGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str, env: &[(&str, &str)]| {
        let mut command = tollgate(dir.path());
        command
            .arg("admin")
            .args(args)
            .env("TOLLGATE_STORAGE__DATABASE_URL", &gw.db_url)
            .env("TOLLGATE_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["create", "--username", "ops"], "ops-password-123\n", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(login(&gw, "ops", "ops-password-123").await.status(), 200);
    let session: Value = login(&gw, "ops", "ops-password-123")
        .await
        .json()
        .await
        .unwrap();
    let session = session["access_token"].as_str().unwrap().to_owned();
    get_json(&gw, "/admin/api/users", &session).await;

    let out = run(&["create", "--username", "ops"], "another-password\n", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    let out = run(&["passwd", "--username", "ops"], "short\n", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));
    let out = run(
        &["passwd", "--username", "ghost"],
        "long-enough-password\n",
        &[],
    );
    assert!(!out.status.success());

    let out = run(
        &["passwd", "--username", "ops"],
        "",
        &[(ADMIN_PASSWORD_VAR, "new-ops-password-456")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        error_of(login(&gw, "ops", "ops-password-123").await)
            .await
            .0,
        401
    );
    assert_eq!(
        login(&gw, "ops", "new-ops-password-456").await.status(),
        200
    );
    let (status, _) = error_of(
        admin(&gw, reqwest::Method::GET, "/admin/api/users", &session)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "a new password ends the user's sessions");
}
