//! Token management (admin only).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};
use warroom_store::TokenRole;

use crate::{
    AppState,
    error::ApiError,
    extract::{Admin, ApiJson, Caller},
};

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Name; the author of what the token does.
    pub name: String,
    /// viewer, responder or admin.
    pub role: String,
}

/// `GET /api/v1/tokens`.
pub async fn list_tokens(
    State(state): State<AppState>,
    _c: Caller<Admin>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "tokens": state.store.list_tokens().await? })))
}

/// `POST /api/v1/tokens`: the secret appears in this response only.
pub async fn create_token(
    State(state): State<AppState>,
    _c: Caller<Admin>,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = TokenRole::parse(&req.role)?;
    let t = state
        .store
        .create_token(&req.name, role, state.clock.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": t.token, "secret": t.secret })),
    ))
}

/// `DELETE /api/v1/tokens/{id}`.
pub async fn revoke_token(
    State(state): State<AppState>,
    _c: Caller<Admin>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.revoke_token(&id, state.clock.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no live token with id {id}; list them with GET /api/v1/tokens"
        )))
    }
}
