//! OpenAPI document.
use axum::Json;
use serde_json::Value;
/// doc
pub async fn document() -> Json<Value> {
    Json(Value::Null)
}
