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

/// `GET /api/v1/oncall?at=RFC3339`: who is on call now (or at `at`) on every schedule, and the
/// coverage gaps of the next seven days.
pub async fn on_call(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let at = match q.get("at") {
        Some(raw) => {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    ApiError::invalid(
                        "at",
                        format!(
                            "`{raw}` is not an RFC 3339 time; write it like 2026-01-12T14:30:00Z"
                        ),
                    )
                })?
        }
        None => state.clock.now(),
    };
    if let Some(other) = q.keys().find(|k| k.as_str() != "at") {
        return Err(ApiError::invalid(other, "unknown query parameter; use at"));
    }
    let schedules: Vec<Value> = state
        .settings
        .paging
        .schedules
        .iter()
        .map(|s| {
            let gaps: Vec<Value> = s
                .gaps(at, at + time::Duration::days(7))
                .into_iter()
                .map(|(a, b)| json!({ "start": warroom_domain::timefmt::rfc3339(a), "end": warroom_domain::timefmt::rfc3339(b) }))
                .collect();
            json!({ "schedule": s.name, "on_call": s.on_call_at(at), "gaps_next_7_days": gaps })
        })
        .collect();
    Ok(Json(
        json!({ "at": warroom_domain::timefmt::rfc3339(at), "schedules": schedules }),
    ))
}
