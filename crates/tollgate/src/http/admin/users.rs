//! `GET /admin/api/users`: the owners named on client keys, with their key counts, and
//! the admin users (never their password hashes).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{json_response, time, AdminError};
use crate::app::AppState;

/// An owner (user id) seen on client keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    /// The owner, as set on keys.
    pub owner: String,
    /// Keys of every status.
    pub keys: i64,
    /// Active keys.
    pub active_keys: i64,
}

/// An admin user.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminView {
    pub username: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last password change.
    pub updated_at: String,
}

/// The users answer: owners as the list, admins beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersView {
    /// Owners seen on keys, by name.
    pub data: Vec<OwnerView>,
    /// Always `null`: every owner is in one page.
    pub next_cursor: Option<String>,
    /// The admin users, by username.
    pub admins: Vec<AdminView>,
}

/// List users.
///
/// The owners named on client keys with their key counts, and the admin users.
#[utoipa::path(
    get,
    operation_id = "list_users",
    path = "/admin/api/users",
    tag = "users",
    responses(
        (status = 200, description = "Owners and admins", body = UsersView),
        (status = 401, description = "No valid session", body = super::ErrorEnvelope),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Response, AdminError> {
    let owners = state.store.owners_with_key_counts().await?;
    let admins = state.store.list_admins().await?;
    Ok(json_response(
        StatusCode::OK,
        &UsersView {
            data: owners
                .into_iter()
                .map(|o| OwnerView {
                    owner: o.owner,
                    keys: o.keys,
                    active_keys: o.active_keys,
                })
                .collect(),
            next_cursor: None,
            admins: admins
                .into_iter()
                .map(|a| AdminView {
                    username: a.username,
                    created_at: time(a.created_at),
                    updated_at: time(a.updated_at),
                })
                .collect(),
        },
    ))
}
