//! Admin users (argon2id password hashes) and their sessions (SHA-256 of the bearer
//! token), both in the database so that every replica accepts a session and a logout
//! applies everywhere on the next request. Hashing happens in `auth::admin`; this
//! module only stores what it is given.

use sqlx::Row;

use super::{now_ms, Store, StoreError};

/// An admin user as stored.
#[derive(Debug, Clone)]
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

fn admin(row: &sqlx::sqlite::SqliteRow) -> Result<AdminUser, StoreError> {
    Ok(AdminUser {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

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
        let inserted = sqlx::query(
            "INSERT INTO admin_users (id, username, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(new_admin_id())
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
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
        let inserted = sqlx::query(
            "INSERT INTO admin_users (id, username, password_hash, created_at, updated_at)
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM admin_users)",
        )
        .bind(new_admin_id())
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// True when at least one admin user exists.
    pub async fn has_admins(&self) -> Result<bool, StoreError> {
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM admin_users LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(any.is_some())
    }

    /// One admin user by username.
    pub async fn find_admin(&self, username: &str) -> Result<Option<AdminUser>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, created_at, updated_at FROM admin_users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(admin).transpose()
    }

    /// Every admin user, by username.
    pub async fn list_admins(&self) -> Result<Vec<AdminUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, username, password_hash, created_at, updated_at FROM admin_users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(admin).collect()
    }

    /// Sets a user's password hash and ends every session of that user, in one
    /// transaction: a changed password logs the user out everywhere.
    pub async fn set_admin_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        check_hash(password_hash)?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE admin_users SET password_hash = ?, updated_at = ? WHERE username = ?",
        )
        .bind(password_hash)
        .bind(now_ms())
        .bind(username)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(username));
        }
        sqlx::query("DELETE FROM admin_sessions WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions (token_hash, username, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(username)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session with that token hash at `now_ms`: `None` when there is none,
    /// it expired, or its user no longer exists.
    pub async fn find_admin_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<AdminSession>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT s.username, s.expires_at FROM admin_sessions s
             JOIN admin_users u ON u.username = s.username
             WHERE s.token_hash = ? AND s.expires_at > ?",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(username, expires_at)| AdminSession {
            username,
            expires_at,
        }))
    }

    /// Ends a session; answers whether there was one.
    pub async fn delete_admin_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM admin_sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("opens");
        (dir, store)
    }

    #[tokio::test]
    async fn the_first_admin_is_added_once() {
        let (_dir, store) = temp_store().await;
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

    #[tokio::test]
    async fn users_are_unique_and_plaintext_is_refused() {
        let (_dir, store) = temp_store().await;
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

    #[tokio::test]
    async fn sessions_expire_end_on_logout_and_on_a_password_change() {
        let (_dir, store) = temp_store().await;
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
