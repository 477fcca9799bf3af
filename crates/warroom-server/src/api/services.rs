//! Services and readiness.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{
    AppState,
    error::ApiError,
    extract::{Caller, Viewer},
};

/// `GET /api/v1/services`.
pub async fn list_services(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "services": state.store.services().await? })))
}

/// `GET /readyz`: 200 when the database answers.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(
            json!({ "status": "ready", "database": state.store.backend() }),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database is not reachable",
            ))
        }
    }
}
