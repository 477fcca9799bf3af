//! Extractors that turn axum's rejections into our error envelope with the field named.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{AppState, error::ApiError};
use warroom_store::{ApiToken, TokenRole};

/// JSON body; errors name the path of the offending field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON value read as `T`, a wrong field answered with its path from `$` (`$.check.port`),
/// so that the error names what to fix the way the config check names a TOML key.
pub fn typed_body<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "$".to_owned()
        } else {
            format!("$.{path}")
        };
        ApiError::invalid(&field, e.into_inner().to_string())
    })
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let text = r.body_text();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            "request body is larger than the server accepts; send less",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => {
            // axum reports `Failed to deserialize the JSON body into the target type: <path>: <problem>`.
            let detail = text
                .split_once("target type: ")
                .map(|(_, d)| d)
                .unwrap_or(&text)
                .to_owned();
            ApiError::new(status, "validation_failed", detail)
        }
        _ => {
            let detail = text
                .split_once("JSON: ")
                .map(|(_, d)| d)
                .unwrap_or(&text)
                .to_owned();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("request body is not valid JSON: {detail}"),
            )
        }
    }
}

/// The authenticated caller, checked against the role `R` requires.
pub struct Caller<R: RoleGate>(pub ApiToken, std::marker::PhantomData<R>);

impl<R: RoleGate> Caller<R> {
    /// The token's name: the author of what it does.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

/// A minimum role, as a type, so a handler's signature states its permission.
pub trait RoleGate: Send + Sync + 'static {
    /// The least role allowed.
    const ROLE: TokenRole;
}

/// Reads.
pub struct Viewer;
/// Incident changes.
pub struct Responder;
/// Token management.
pub struct Admin;
impl RoleGate for Viewer {
    const ROLE: TokenRole = TokenRole::Viewer;
}
impl RoleGate for Responder {
    const ROLE: TokenRole = TokenRole::Responder;
}
impl RoleGate for Admin {
    const ROLE: TokenRole = TokenRole::Admin;
}

impl<R: RoleGate> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!(
                    "{m}; send `Authorization: Bearer <token>` (create one with `warroom token create`)"
                ),
            )
        };
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(unauthorized("no API token"));
        };
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unauthorized("malformed Authorization header"))?;
        let token = state
            .store
            .authenticate(secret)
            .await?
            .ok_or_else(|| unauthorized("unknown or revoked API token"))?;
        if token.role < R::ROLE {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token `{}` has role {}; this needs {} or higher",
                    token.name,
                    token.role,
                    R::ROLE
                ),
            ));
        }
        Ok(Caller(token, std::marker::PhantomData))
    }
}

/// An incident number from the path, with a clear error when it is not one.
pub struct Number(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Number {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(params) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let raw = params
            .iter()
            .find(|(k, _)| k == "number")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        raw.parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Number)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{raw}` is not an incident number; use a positive whole number such as 12"
                ))
            })
    }
}

/// Parses an optional JSON body: empty means the defaults, for POSTs that are complete without one.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            e.to_string(),
        )
    })
}
