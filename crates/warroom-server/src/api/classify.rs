//! The decision tree as a service, and the severity table.

use axum::{Json, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};
use warroom_domain::{Severity, Signals, classify as run_tree};

use crate::{
    AppState,
    error::ApiError,
    extract::{ApiJson, Caller, Viewer},
};

/// Body of `POST /api/v1/classify`: the signals, flat or under `signals`, and an optional
/// explicit severity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// Signals, nested.
    pub signals: Option<Signals>,
    /// Explicit severity.
    pub severity: Option<i64>,
    /// Flat signal fields, as the CLI flags name them.
    #[serde(flatten)]
    pub flat: FlatSignals,
}

/// The signal fields at top level.
#[derive(Debug, Default, Deserialize)]
pub struct FlatSignals {
    users_can_access: Option<bool>,
    failing_percent: Option<f64>,
    recovering: Option<bool>,
    user_action_or_data_loss: Option<bool>,
    latency_ratio: Option<f64>,
}

impl ClassifyRequest {
    fn signals(self) -> Signals {
        self.signals.unwrap_or(Signals {
            users_can_access: self.flat.users_can_access,
            failing_percent: self.flat.failing_percent,
            recovering: self.flat.recovering,
            user_action_or_data_loss: self.flat.user_action_or_data_loss,
            latency_ratio: self.flat.latency_ratio,
        })
    }
}

/// Parses an optional explicit severity.
pub fn explicit_severity(raw: Option<i64>) -> Result<Option<Severity>, ApiError> {
    raw.map(Severity::from_level)
        .transpose()
        .map_err(ApiError::from)
}

/// `POST /api/v1/classify`.
pub async fn classify(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    ApiJson(req): ApiJson<ClassifyRequest>,
) -> Result<Json<Value>, ApiError> {
    let explicit = explicit_severity(req.severity)?;
    let c = run_tree(&req.signals(), explicit)?;
    let policy = state.settings.policies.get(c.severity);
    Ok(Json(json!({
        "severity": c.severity,
        "severity_name": policy.name,
        "basis": c.basis,
        "trace": c.trace,
        "policy": policy,
    })))
}

/// `GET /api/v1/severities`.
pub async fn severities(State(state): State<AppState>, _c: Caller<Viewer>) -> Json<Value> {
    Json(json!({ "severities": state.settings.policies.all() }))
}
