//! The one place where errors become HTTP responses.
//!
//! Every error leaves as `{ "error": code, "message": text, "details": ... }`, except on the
//! Alertmanager routes amtool reads and writes (alert listing, silences), whose client errors
//! leave as Alertmanager's do: a 400 (or 404, 409) whose body is the message as one JSON
//! string, which amtool prints ([`ApiError::as_alertmanager`]). A client's
//! mistake is always a 4xx whose message names the field; only our own failures are 5xx, and
//! those are logged here, once.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use warroom_domain::DomainError;
use warroom_store::StoreError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    alertmanager: bool,
}

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            alertmanager: false,
        }
    }

    /// Sends a client error's message as Alertmanager does: the body is the message alone, as
    /// a JSON string, and a refused value is a 400 (Alertmanager has no 422, and amtool shows
    /// the message only of the statuses its API declares).
    pub fn as_alertmanager(mut self) -> Self {
        self.alertmanager = true;
        self
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 for malformed input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 naming a field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {message}"),
        )
        .with_details(json!({ "field": field }))
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        match e {
            DomainError::Invalid { field, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
            .with_details(json!({ "field": field })),
            DomainError::InvalidTransition { from, to, allowed } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", message)
                    .with_details(json!({ "from": from, "to": to, "allowed": allowed }))
            }
            DomainError::NoSeverityBasis => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "severity_required",
                message,
            )
            .with_details(json!({ "field": "severity" })),
            DomainError::UnknownChecklistItem(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            DomainError::AutomaticChecklistItem { .. } => {
                ApiError::new(StatusCode::CONFLICT, "automatic_item", message)
            }
            DomainError::Closed => ApiError::new(StatusCode::CONFLICT, "incident_closed", message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(d) => d.into(),
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database failed; the change was not saved, retry shortly",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.code == "internal" {
            tracing::error!(error.message = %self.message, "internal error");
        }
        if self.alertmanager && self.status.is_client_error() {
            let status = match self.status {
                StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                s => s,
            };
            return (status, Json(Value::String(self.message))).into_response();
        }
        let mut body = json!({ "error": self.code, "message": self.message });
        if !self.details.is_null() {
            body["details"] = self.details;
        }
        (self.status, Json(body)).into_response()
    }
}
