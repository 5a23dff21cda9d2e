use super::*;
use crate::secrets::MasterKey;
use crate::store::testing::on_both_backends;

on_both_backends!(
    insert_list_and_revisions,
    undecryptable_rows_are_named_and_block_reencryption,
    invalid_input_is_refused_with_the_field_named,
    a_second_master_key_cannot_seal_into_the_same_table,
    update_changes_only_what_it_names_and_reseals_a_new_secret,
);

const SECRET: &str = "sk-test-0123456789abcdefSECRET";

fn new_key(id: &str) -> NewUpstreamKey {
    NewUpstreamKey {
        id: id.to_owned(),
        provider: "openai".to_owned(),
        secret: Secret::new(SECRET),
        rpm: Some(3500),
        tpm: None,
        daily_budget: Some(12.5),
        region: Some("us".to_owned()),
        weight: 3,
        tier: None,
    }
}

async fn insert_list_and_revisions(store: Store) {
    let master = MasterKey::generate();
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 0);
    store
        .insert_upstream_key(&new_key("oa-1"), &master)
        .await
        .expect("insert");
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 1);

    let keys = store.list_upstream_keys(&master).await.expect("list");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].status, UpstreamKeyStatus::Enabled);
    let k = &keys[0].key;
    assert_eq!(k.secret.expose(), SECRET);
    assert_eq!(
        (k.rpm, k.tpm, k.daily_budget),
        (Some(3500), None, Some(12.5))
    );
    assert_eq!((k.weight, k.region.as_deref()), (3, Some("us")));

    let rows = store.list_upstream_key_rows().await.expect("rows");
    assert_eq!(rows[0].masked, "sk-t…CRET");
    assert_eq!(rows[0].key_fingerprint, master.fingerprint());

    let dup = store.insert_upstream_key(&new_key("oa-1"), &master).await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 1);

    store
        .set_upstream_key_status("oa-1", UpstreamKeyStatus::Disabled)
        .await
        .expect("disable");
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 2);
    store
        .set_upstream_key_status("oa-1", UpstreamKeyStatus::Disabled)
        .await
        .expect("no-op");
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 2);
    let missing = store
        .set_upstream_key_status("nope", UpstreamKeyStatus::Enabled)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    store.delete_upstream_key("oa-1").await.expect("delete");
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 3);
    assert!(matches!(
        store.delete_upstream_key("oa-1").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn undecryptable_rows_are_named_and_block_reencryption(store: Store) {
    let a = MasterKey::generate();
    for id in ["a-good", "b-stray", "c-altered"] {
        store
            .insert_upstream_key(&new_key(id), &a)
            .await
            .expect("insert");
    }
    // One row sealed under another key, one altered.
    let foreign = MasterKey::generate().encrypt(SECRET);
    with_pool!(store, pool => {
        sqlx::query(
            "UPDATE upstream_keys SET ciphertext = $1, key_fingerprint = $2 WHERE id = 'b-stray'",
        )
        .bind(BASE64.encode(&foreign.ciphertext))
        .bind(&foreign.key_fingerprint)
        .execute(pool)
        .await
        .expect("update");
        sqlx::query(
            "UPDATE upstream_keys SET ciphertext = 'AAAA' || ciphertext WHERE id = 'c-altered'",
        )
        .execute(pool)
        .await
        .expect("update");
    });
    let err = store.list_upstream_keys(&a).await.expect_err("stray");
    let text = err.to_string();
    assert!(
        text.contains("b-stray, c-altered") && !text.contains("a-good"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    let c = MasterKey::generate();
    let err = store
        .reencrypt_upstream_keys(&a, &c)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("b-stray, c-altered"), "{err}");
    // Nothing changed.
    assert!(store.list_upstream_keys(&c).await.is_err());
    store.delete_upstream_key("b-stray").await.expect("delete");
    store
        .delete_upstream_key("c-altered")
        .await
        .expect("delete");

    let rev = store.upstream_keys_revision().await.expect("rev");
    assert_eq!(
        store
            .reencrypt_upstream_keys(&a, &c)
            .await
            .expect("rotates"),
        1
    );
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), rev);
    assert_eq!(
        store.list_upstream_keys(&c).await.expect("new key")[0]
            .key
            .secret
            .expose(),
        SECRET
    );
    assert!(store.list_upstream_keys(&a).await.is_err());
}

async fn invalid_input_is_refused_with_the_field_named(store: Store) {
    let master = MasterKey::generate();
    let cases: Vec<(NewUpstreamKey, &str)> = vec![
        (
            NewUpstreamKey {
                id: "bad id".into(),
                ..new_key("x")
            },
            "id \"bad id\"",
        ),
        (
            NewUpstreamKey {
                id: String::new(),
                ..new_key("x")
            },
            "id \"\"",
        ),
        (
            NewUpstreamKey {
                provider: "a/b".into(),
                ..new_key("x")
            },
            "provider",
        ),
        (
            NewUpstreamKey {
                secret: Secret::new(""),
                ..new_key("x")
            },
            "empty",
        ),
        (
            NewUpstreamKey {
                secret: Secret::new("a b"),
                ..new_key("x")
            },
            "spaces",
        ),
        (
            NewUpstreamKey {
                rpm: Some(0),
                ..new_key("x")
            },
            "rpm",
        ),
        (
            NewUpstreamKey {
                tpm: Some(0),
                ..new_key("x")
            },
            "tpm",
        ),
        (
            NewUpstreamKey {
                weight: 0,
                ..new_key("x")
            },
            "weight",
        ),
        (
            NewUpstreamKey {
                daily_budget: Some(-1.0),
                ..new_key("x")
            },
            "daily budget",
        ),
        (
            NewUpstreamKey {
                daily_budget: Some(f64::NAN),
                ..new_key("x")
            },
            "daily budget",
        ),
    ];
    for (key, expected) in cases {
        let err = store
            .insert_upstream_key(&key, &master)
            .await
            .expect_err(expected);
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err} lacks {expected}");
    }
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 0);
}

async fn a_second_master_key_cannot_seal_into_the_same_table(store: Store) {
    let (a, b) = (MasterKey::generate(), MasterKey::generate());
    store
        .insert_upstream_key(&new_key("one"), &a)
        .await
        .expect("insert");
    let err = store
        .insert_upstream_key(&new_key("two"), &b)
        .await
        .expect_err("other master key");
    assert!(err.to_string().contains(&a.fingerprint()), "{err}");
    assert_eq!(store.list_upstream_key_rows().await.expect("rows").len(), 1);
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 1);
}

async fn update_changes_only_what_it_names_and_reseals_a_new_secret(store: Store) {
    let master = MasterKey::generate();
    store
        .insert_upstream_key(&new_key("oa-1"), &master)
        .await
        .expect("insert");
    let update = UpstreamKeyUpdate {
        rpm: Some(None),
        weight: Some(5),
        tier: Some(Some("premium".to_owned())),
        secret: Some(Secret::new("sk-new-secret-0123456789")),
        ..UpstreamKeyUpdate::default()
    };
    assert!(!update.is_empty() && UpstreamKeyUpdate::default().is_empty());
    let row = store
        .update_upstream_key("oa-1", &update, &master)
        .await
        .expect("update");
    assert_eq!(
        (row.rpm, row.weight, row.tier.as_deref()),
        (None, 5, Some("premium"))
    );
    assert_eq!(
        (row.daily_budget, row.region.as_deref()),
        (Some(12.5), Some("us"))
    );
    assert_eq!(row.masked, "sk-n…6789");
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 2);
    let keys = store.list_upstream_keys(&master).await.expect("list");
    assert_eq!(keys[0].key.secret.expose(), "sk-new-secret-0123456789");

    let bad = UpstreamKeyUpdate {
        weight: Some(0),
        ..UpstreamKeyUpdate::default()
    };
    match store.update_upstream_key("oa-1", &bad, &master).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("weight"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.update_upstream_key("nope", &update, &master).await,
        Err(StoreError::NotFound { .. })
    ));
    // Refused updates leave the revision as it was.
    assert_eq!(store.upstream_keys_revision().await.expect("rev"), 2);
}
