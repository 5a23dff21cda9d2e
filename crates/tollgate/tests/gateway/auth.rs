//! Client key authentication.

use tollgate::store::KeyStatus;

use crate::common::{chat, create_key, error_of, within_a_second, TestGateway};

#[tokio::test]
async fn missing_and_unknown_keys_are_401() {
    let gw = TestGateway::start().await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let response = gw.client.post(&url).json(&chat("hi")).send().await.unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_api_key"))
    );

    let wrong = "tg-live-ThisKeyWasNeverIssuedByTheGatewayXYZ";
    let response = gw
        .client
        .post(&url)
        .bearer_auth(wrong)
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("invalid_api_key"));
    assert!(!text.contains(wrong), "the key was echoed: {text}");
    assert_eq!(gw.mock.total_requests(), 0);
}

#[tokio::test]
async fn x_api_key_header_is_accepted() {
    let gw = TestGateway::start().await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-api-key", &gw.key)
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn revoked_key_is_403_key_revoked_and_stays_so() {
    let gw = TestGateway::start().await;
    let store = &gw.running().gateway.store;
    store
        .set_key_status(&gw.key_id, KeyStatus::Revoked)
        .await
        .unwrap();
    gw.running()
        .gateway
        .keys
        .reload(store, &crate::common::master_key())
        .await
        .unwrap();
    let (status, error) = error_of(gw.post("/v1/chat/completions", chat("hi")).await).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("key_revoked")));
    assert_eq!(gw.mock.total_requests(), 0);
}

#[tokio::test]
async fn keys_changed_in_the_database_apply_within_a_second() {
    let gw = TestGateway::start().await;
    // A second process (the CLI) writes to the same database file.
    let other = tollgate::store::Store::connect(&gw.db_url).await.unwrap();
    let secret = tollgate::auth::secret::generate("live");
    let id = tollgate::auth::secret::new_key_id();
    other
        .insert_key(&tollgate::store::NewKey {
            id: id.clone(),
            name: "late".into(),
            owner: None,
            team: None,
            tier: "standard".into(),
            env: "live".into(),
            secret_hash: tollgate::auth::secret::hash_hex(&tollgate::auth::secret::hash(&secret)),
            masked: tollgate::auth::secret::mask(&secret),
            expires_at: None,
            dedicated_upstream: None,
            region: None,
            policy: Default::default(),
            hmac_secret: None,
        })
        .await
        .unwrap();
    within_a_second(&gw, &secret, 200, "new key accepted").await;
    other.set_key_status(&id, KeyStatus::Revoked).await.unwrap();
    within_a_second(&gw, &secret, 403, "revocation applied").await;
    other.close().await;
}

#[tokio::test]
async fn each_key_is_accounted_to_itself() {
    let gw = TestGateway::start().await;
    let (second_id, second) = create_key(gw.running(), "second").await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&second)
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rows = gw.wait_for_rows(1).await;
    assert_eq!(rows[0].key_id.as_deref(), Some(second_id.as_str()));
}
