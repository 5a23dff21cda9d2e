//! Admin users (argon2id password hashes) and their sessions (SHA-256 of the bearer
//! token), both in the database so that every replica accepts a session and a logout
//! applies everywhere on the next request. Hashing happens in `auth::admin`; this
//! module only stores what it is given.

use super::{now_ms, with_pool, Store, StoreError, TAKE_TURN};

/// An admin user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminUser {
    /// Random public id (`adm_…`).
    pub id: String,
    /// The login name.
    pub username: String,
    /// argon2id PHC string; never shown.
    pub password_hash: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last password change.
    pub updated_at: i64,
}

/// A live admin session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    /// Whose session it is.
    pub username: String,
    /// Unix milliseconds after which it is refused.
    pub expires_at: i64,
}

/// Longest accepted username, in characters.
const MAX_USERNAME_CHARS: usize = 64;

/// Checks a username: 1–64 of `[A-Za-z0-9_.@-]`; the message says what is allowed.
pub fn check_username(username: &str) -> Result<(), String> {
    let valid = !username.is_empty()
        && username.chars().count() <= MAX_USERNAME_CHARS
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "username {username:?} is not valid: use 1 to {MAX_USERNAME_CHARS} of the characters A-Z a-z 0-9 _ . - @"
        ))
    }
}

/// A stored password must be an argon2id PHC string, never plaintext.
fn check_hash(password_hash: &str) -> Result<(), StoreError> {
    if password_hash.starts_with("$argon2id$") {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "password_hash must be an argon2id PHC string ($argon2id$…), never plaintext"
                .to_owned(),
        ))
    }
}

fn new_admin_id() -> String {
    use rand::distr::Alphanumeric;
    use rand::Rng;
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    format!("adm_{random}")
}

const COLUMNS: &str = "id, username, password_hash, created_at, updated_at";

fn not_found(username: &str) -> StoreError {
    StoreError::NotFound {
        what: "admin user",
        id: username.to_owned(),
    }
}

impl Store {
    /// Adds an admin user; [`StoreError::Duplicate`] when the username is taken.
    pub async fn insert_admin(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<AdminUser, StoreError> {
        check_username(username).map_err(StoreError::Invalid)?;
        check_hash(password_hash)?;
        let now = now_ms();
        let inserted = with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO admin_users (id, username, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(new_admin_id())
            .bind(username)
            .bind(password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Duplicate {
                    what: "admin user",
                    id: username.to_owned(),
                })
            }
            Err(e) => return Err(e.into()),
        }
        self.find_admin(username)
            .await?
            .ok_or_else(|| not_found(username))
    }

    /// Adds the first admin user, only when there is none yet (SPEC §1 bootstrap);
    /// answers whether it was added. Replicas starting together on an empty database
    /// add at most one: the others answer `false`.
    pub async fn insert_first_admin(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        check_username(username).map_err(StoreError::Invalid)?;
        check_hash(password_hash)?;
        let now = now_ms();
        let inserted = with_pool!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                // Take turns with other bootstraps first (see TAKE_TURN): on PostgreSQL
                // the NOT EXISTS of two concurrent inserts could both be true.
                sqlx::query(TAKE_TURN)
                    .bind("admin_users")
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(
                    "INSERT INTO admin_users (id, username, password_hash, created_at, updated_at)
                     SELECT $1, $2, $3, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM admin_users)",
                )
                .bind(new_admin_id())
                .bind(username)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<u64, sqlx::Error>(done.rows_affected())
            }
            .await
        });
        match inserted {
            Ok(added) => Ok(added == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// True when at least one admin user exists.
    pub async fn has_admins(&self) -> Result<bool, StoreError> {
        let any: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM admin_users LIMIT 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(any.is_some())
    }

    /// One admin user by username.
    pub async fn find_admin(&self, username: &str) -> Result<Option<AdminUser>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM admin_users WHERE username = $1");
        Ok(with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(username).fetch_optional(pool).await?
        }))
    }

    /// Every admin user, by username.
    pub async fn list_admins(&self) -> Result<Vec<AdminUser>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM admin_users ORDER BY username");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// Sets a user's password hash and ends every session of that user, in one
    /// transaction: a changed password logs the user out everywhere.
    pub async fn set_admin_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        check_hash(password_hash)?;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE admin_users SET password_hash = $1, updated_at = $2 WHERE username = $3",
            )
            .bind(password_hash)
            .bind(now_ms())
            .bind(username)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(not_found(username));
            }
            sqlx::query("DELETE FROM admin_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a session under the hex SHA-256 of its token. Expired sessions are
    /// purged on the way, so the table holds only live ones and recent leftovers.
    pub async fn insert_admin_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO admin_sessions (token_hash, username, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(username)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The live session with that token hash at `now_ms`: `None` when there is none,
    /// it expired, or its user no longer exists.
    pub async fn find_admin_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<AdminSession>, StoreError> {
        let row: Option<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT s.username, s.expires_at FROM admin_sessions s
                 JOIN admin_users u ON u.username = s.username
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(username, expires_at)| AdminSession {
            username,
            expires_at,
        }))
    }

    /// Ends a session; answers whether there was one.
    pub async fn delete_admin_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_both_backends;

    on_both_backends!(
        the_first_admin_is_added_once,
        concurrent_bootstraps_add_one_admin,
        users_are_unique_and_plaintext_is_refused,
        sessions_expire_end_on_logout_and_on_a_password_change,
    );

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

    async fn the_first_admin_is_added_once(store: Store) {
        assert!(!store.has_admins().await.expect("query"));
        assert!(store
            .insert_first_admin("admin", HASH)
            .await
            .expect("first"));
        assert!(!store
            .insert_first_admin("other", HASH)
            .await
            .expect("second"));
        assert!(store.has_admins().await.expect("query"));
        let all = store.list_admins().await.expect("list");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].username, "admin");
        assert!(all[0].id.starts_with("adm_"));
    }

    async fn concurrent_bootstraps_add_one_admin(store: Store) {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.insert_first_admin(&format!("admin{i}"), HASH).await },
                )
            })
            .collect();
        let mut added = 0;
        for task in tasks {
            if task.await.expect("joins").expect("no bootstrap fails") {
                added += 1;
            }
        }
        assert_eq!(added, 1);
        assert_eq!(store.list_admins().await.expect("list").len(), 1);
    }

    async fn users_are_unique_and_plaintext_is_refused(store: Store) {
        store.insert_admin("ops", HASH).await.expect("insert");
        assert!(matches!(
            store.insert_admin("ops", HASH).await,
            Err(StoreError::Duplicate { .. })
        ));
        assert!(matches!(
            store.insert_admin("eve", "hunter2hunter2").await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.insert_admin("bad name", HASH).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.set_admin_password("nobody", HASH).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    async fn sessions_expire_end_on_logout_and_on_a_password_change(store: Store) {
        store.insert_admin("ops", HASH).await.expect("insert");
        let now = now_ms();
        store
            .insert_admin_session("aa", "ops", now + 60_000)
            .await
            .expect("session");
        store
            .insert_admin_session("bb", "ops", now + 60_000)
            .await
            .expect("session");
        store
            .insert_admin_session("cc", "ops", now - 1)
            .await
            .expect("expired session");
        let found = store.find_admin_session("aa", now).await.expect("find");
        assert_eq!(found.map(|s| s.username).as_deref(), Some("ops"));
        assert_eq!(
            store.find_admin_session("cc", now).await.expect("find"),
            None
        );
        assert!(store.delete_admin_session("aa").await.expect("delete"));
        assert!(!store.delete_admin_session("aa").await.expect("delete"));
        assert_eq!(
            store.find_admin_session("aa", now).await.expect("find"),
            None
        );
        store.set_admin_password("ops", HASH).await.expect("passwd");
        assert_eq!(
            store.find_admin_session("bb", now).await.expect("find"),
            None
        );
    }
}
