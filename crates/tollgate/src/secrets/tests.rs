use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const UPSTREAM: &str = "sk-proj-0123456789abcdefSECRET";

#[test]
fn encryption_round_trips_with_a_fresh_nonce_each_time() {
    let key = MasterKey::generate();
    let a = key.encrypt(UPSTREAM);
    let b = key.encrypt(UPSTREAM);
    assert_eq!(a.nonce.len(), 12);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
    assert_eq!(a.ciphertext.len(), UPSTREAM.len() + 16);
    assert_eq!(a.key_fingerprint, key.fingerprint());
    assert_eq!(key.decrypt(&a).expect("opens").expose(), UPSTREAM);
    assert_eq!(key.decrypt(&b).expect("opens").expose(), UPSTREAM);
    assert!(!String::from_utf8_lossy(&a.ciphertext).contains("SECRET"));
}

#[test]
fn a_wrong_key_fails() {
    let sealed = MasterKey::generate().encrypt(UPSTREAM);
    let other = MasterKey::generate();
    let err = other.decrypt(&sealed).expect_err("wrong key");
    assert!(matches!(err, SecretsError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains(&other.fingerprint()), "{err}");
    // Even with the fingerprint forged to match, authentication fails.
    let forged = Sealed {
        key_fingerprint: other.fingerprint(),
        ..sealed
    };
    assert!(matches!(
        other.decrypt(&forged),
        Err(SecretsError::Tampered)
    ));
}

#[test]
fn tampering_fails() {
    let key = MasterKey::generate();
    let sealed = key.encrypt(UPSTREAM);
    for i in 0..sealed.ciphertext.len() {
        let mut bad = sealed.clone();
        bad.ciphertext[i] ^= 0x01;
        assert!(
            matches!(key.decrypt(&bad), Err(SecretsError::Tampered)),
            "byte {i}"
        );
    }
    let mut bad = sealed.clone();
    bad.nonce[0] ^= 0x80;
    assert!(matches!(key.decrypt(&bad), Err(SecretsError::Tampered)));
    let mut bad = sealed.clone();
    bad.ciphertext.truncate(10);
    assert!(matches!(key.decrypt(&bad), Err(SecretsError::Tampered)));
    let mut bad = sealed;
    bad.nonce.pop();
    assert!(matches!(key.decrypt(&bad), Err(SecretsError::BadNonce(11))));
}

#[test]
fn text_forms_are_base64_or_hex_of_exactly_32_bytes() {
    let key = MasterKey::generate();
    let b64 = key.to_base64();
    assert_eq!(MasterKey::from_text(&b64).expect("base64"), key);
    assert_eq!(
        MasterKey::from_text(&format!("  {b64}\n")).expect("trimmed"),
        key
    );
    assert_eq!(
        MasterKey::from_text(b64.trim_end_matches('=')).expect("unpadded"),
        key
    );
    let url_safe = b64.replace('+', "-").replace('/', "_");
    assert_eq!(MasterKey::from_text(&url_safe).expect("url-safe"), key);
    let hex = text::to_hex(&key.bytes);
    assert_eq!(MasterKey::from_text(&hex).expect("hex"), key);
    assert_eq!(MasterKey::from_text(&hex.to_uppercase()).expect("HEX"), key);

    let short = MasterKey::from_text("dHdlbHZlIGJ5dGVz").expect_err("12 bytes");
    assert_eq!(
        short.to_string(),
        "the master key must be 32 bytes in base64 or hex; got 12 bytes (generate one with `openssl rand -base64 32`)"
    );
    let long_hex = MasterKey::from_text(&"ab".repeat(33)).expect_err("33 bytes");
    assert!(long_hex.to_string().contains("got 33 bytes"), "{long_hex}");
    let junk = MasterKey::from_text("not a key!").expect_err("junk");
    assert!(
        junk.to_string().contains("neither hex nor base64"),
        "{junk}"
    );
    assert!(MasterKey::from_text("  ").is_err());
}

#[test]
fn debug_and_errors_never_show_the_key() {
    let key = MasterKey::generate();
    let shown = format!("{key:?}");
    assert!(!shown.contains(&key.to_base64()));
    assert!(shown.contains(&key.fingerprint()));
    assert_eq!(key.fingerprint().len(), 8);
    assert_ne!(key.fingerprint(), MasterKey::generate().fingerprint());
    let secret = key.decrypt(&key.encrypt(UPSTREAM)).expect("opens");
    assert!(!format!("{secret:?}").contains("SECRET"));
    let err = MasterKey::from_text(&format!("{}xyz!", key.to_base64())).expect_err("junk");
    assert!(!err.to_string().contains(&key.to_base64()));
}

#[test]
fn load_prefers_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tollgate.key");
    let key = MasterKey::generate();
    let (loaded, source) =
        MasterKey::load(&env(&[(MASTER_KEY_VAR, &key.to_base64())]), &path).expect("loads");
    assert_eq!(loaded, key);
    assert_eq!(source, MasterKeySource::Environment);
    assert!(!path.exists(), "no key file when the variable is set");

    let err = MasterKey::load(&env(&[(MASTER_KEY_VAR, "c2hvcnQ=")]), &path).expect_err("short");
    assert!(
        err.to_string()
            .starts_with("TOLLGATE_MASTER_KEY must be 32 bytes in base64 or hex; got 5 bytes"),
        "{err}"
    );
    let empty = MasterKey::load(&env(&[(MASTER_KEY_VAR, "")]), &path).expect_err("empty");
    assert!(empty.to_string().contains("it is empty"), "{empty}");
}

#[test]
fn load_creates_the_key_file_once_with_mode_0600() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tollgate.key");
    let (first, source) = MasterKey::load(&Env::new(), &path).expect("creates");
    assert_eq!(
        source,
        MasterKeySource::File {
            path: path.clone(),
            created: true
        }
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (again, source) = MasterKey::load(&Env::new(), &path).expect("reads");
    assert_eq!(again, first);
    assert!(matches!(
        source,
        MasterKeySource::File { created: false, .. }
    ));
    let leftovers = std::fs::read_dir(dir.path()).expect("list").count();
    assert_eq!(leftovers, 1, "temp files were left behind");

    let replacement = MasterKey::generate();
    key_file::replace(&path, &replacement).expect("replaces");
    assert_eq!(key_file::read(&path).expect("reads"), Some(replacement));

    std::fs::write(&path, "garbage").expect("write");
    let err = MasterKey::load(&Env::new(), &path).expect_err("bad file");
    assert!(
        err.to_string().contains("tollgate.key must be 32 bytes"),
        "{err}"
    );
}

#[test]
fn mask_shows_four_and_four() {
    assert_eq!(mask(UPSTREAM), "sk-p…CRET");
    assert_eq!(mask("short-key"), "…");
}
