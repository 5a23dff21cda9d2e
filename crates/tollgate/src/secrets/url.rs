//! Connection URLs as they may be shown: in messages and logs, never a password.

/// `url` with its password (in the user part or a `password=` parameter) replaced by
/// `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, tail) = out.split_at(query + 1);
        let params: Vec<String> = tail
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_are_shown_without_their_password() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db.internal:5432/tollgate",
                "postgres://app:***@db.internal:5432/tollgate",
            ),
            (
                "postgresql://app:p@ss@db/tollgate?sslmode=prefer",
                "postgresql://app:***@db/tollgate?sslmode=prefer",
            ),
            (
                "postgres://db/tollgate?user=app&password=s3cret",
                "postgres://db/tollgate?user=app&password=***",
            ),
            (
                "postgres://postgres@127.0.0.1/test",
                "postgres://postgres@127.0.0.1/test",
            ),
            ("sqlite://tollgate.db", "sqlite://tollgate.db"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        // Redis: `:password@` and `user:password@` alike.
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("rediss://app:p@ss@cache.example.com"),
            "rediss://app:***@cache.example.com"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}
