//! Monitors through the API, beside the ones in the config file.
//!
//! API monitors go through the same validation as `[[monitors]]` (errors name the JSON path:
//! `$.interval_secs`, `$.check.url`), are stored, and the running scheduler picks them up
//! within a second by polling the store's monitor-set version: the server never talks to the
//! worker directly. Config monitors are listed with `source: config` and are read-only here,
//! because the file is their source of truth and would undo an API change at the next restart.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};
use warroom_domain::monitor::{Check, Monitor, MonitorSpec};
use warroom_store::StoredMonitor;

use crate::{
    AppState,
    error::ApiError,
    extract::{ApiJson, Caller, Responder, Viewer},
};

/// Ids appear in URLs (`/api/v1/monitors/{id}`) and in alert labels, so the API keeps them to
/// characters that need no escaping in either.
const MAX_ID_LEN: usize = 100;

fn check_id(id: &str, field: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "`{id}` is not a monitor id; use 1-{MAX_ID_LEN} letters, digits, `-`, `_` or `.`, starting with a letter or digit, e.g. `shop-web`"
            ),
        ))
    }
}

fn config_monitor<'a>(state: &'a AppState, id: &str) -> Option<&'a Monitor> {
    state.settings.monitors.iter().find(|m| m.id == id)
}

fn read_only(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "config_monitor",
        format!(
            "monitor `{id}` is defined in the config file ([[monitors]]), which is its source of truth; change it there and restart warroom, or use another id"
        ),
    )
    .with_details(json!({ "id": id, "source": "config" }))
}

/// Parses a body into a spec with serde's errors naming the JSON path, then validates it like
/// a config monitor, with `$` as the root of every field name.
async fn parse_spec(state: &AppState, body: Value) -> Result<(MonitorSpec, Monitor), ApiError> {
    let spec: MonitorSpec = crate::extract::typed_body(body)?;
    check_id(&spec.id, "$.id")?;
    let monitor = spec.validate("$")?;
    super::incidents::resolve_service(state, &spec.service, "$.service").await?;
    Ok((spec, monitor))
}

fn check_view(c: &Check, reveal: bool) -> Value {
    match c {
        Check::Http(h) => {
            let url = match reveal {
                true => None,
                false => redact_url(&h.url),
            };
            json!({ "kind": "http", "method": h.method, "url": url.as_deref().unwrap_or(&h.url) })
        }
        Check::Tcp { host, port } => json!({ "kind": "tcp", "host": host, "port": port }),
        Check::Dns { name, expected } => {
            json!({ "kind": "dns", "name": name, "expected": expected })
        }
    }
}

/// What stands in for a secret a viewer may not read.
const REDACTED: &str = "[redacted]";

/// A monitor's headers carry credentials (`Authorization`, API keys) as often as not, and a URL
/// may carry a password or a token: viewers see that they are there, not what they are. Responders, who
/// may replace the monitor with PUT, see the spec they would send.
fn redact_spec(spec: &mut Value) {
    let check = &mut spec["check"];
    if let Some(headers) = check.get_mut("headers").and_then(Value::as_object_mut) {
        for value in headers.values_mut() {
            *value = json!(REDACTED);
        }
    }
    if let Some(url) = check
        .get("url")
        .and_then(Value::as_str)
        .and_then(redact_url)
    {
        check["url"] = json!(url);
    }
}

/// A URL as a viewer may see it: the user info (`user:secret@`, or a token used as the user
/// name) and every query value (`?token=…`) replaced; `None` when there is nothing to hide.
fn redact_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_owned(),
    };
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((t, f)) => (t, Some(f)),
        None => (tail, None),
    };
    let tail = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}={REDACTED}"),
                    None => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => before_fragment.to_owned(),
    };
    let out = match fragment {
        Some(f) => format!("{scheme}://{host}{tail}#{f}"),
        None => format!("{scheme}://{host}{tail}"),
    };
    (out != url).then_some(out)
}

/// Whether the caller may see a monitor's secrets: anyone who may change the monitor.
fn reveals(c: &crate::extract::Caller<crate::extract::Viewer>) -> bool {
    c.0.role != warroom_store::TokenRole::Viewer
}

async fn view(
    state: &AppState,
    m: &Monitor,
    stored: Option<&StoredMonitor>,
    reveal: bool,
) -> Result<Value, ApiError> {
    let now = state.clock.now();
    let day = state
        .store
        .uptime(&m.id, now - time::Duration::hours(24), now)
        .await?;
    let month = state
        .store
        .uptime(&m.id, now - time::Duration::days(30), now)
        .await?;
    // DOWN is what flap damping decided (the monitor's firing `MonitorDown` alert), not the
    // last result alone: one failed check below the threshold is still UP.
    let down = state
        .store
        .firing_alerts_for(m.service.as_str())
        .await?
        .iter()
        .any(|a| {
            a.name == warroom_domain::detection::DOWN_ALERT
                && a.labels.get("monitor") == Some(&m.id)
        });
    let last = state
        .store
        .latest_checks(&m.id, 1)
        .await?
        .into_iter()
        .next();
    let status = match (&last, down) {
        (_, true) => "down",
        (None, false) => "pending",
        (Some(_), false) => "up",
    };
    let last_check = last.map(|c| {
        json!({
            "at": warroom_domain::timefmt::rfc3339(c.at),
            "ok": c.ok,
            "latency_ms": c.latency_ms,
            "failure": c.failure,
        })
    });
    let mut v = json!({
        "id": m.id, "name": m.name, "service": m.service, "user_facing": m.user_facing,
        "status": status, "last_check": last_check,
        "interval_secs": m.interval.as_secs(),
        "timeout_ms": u64::try_from(m.timeout.as_millis()).unwrap_or(u64::MAX),
        "failures_to_down": m.thresholds.failures_to_down,
        "successes_to_up": m.thresholds.successes_to_up,
        "check": check_view(&m.check, reveal),
        "source": if stored.is_some() { "api" } else { "config" },
        "uptime_24h": day, "uptime_30d": month,
    });
    if let Some(s) = stored {
        v["spec"] = json!(s.spec);
        if !reveal {
            redact_spec(&mut v["spec"]);
        }
        v["created_by"] = json!(s.created_by);
        v["created_at"] = json!(warroom_domain::timefmt::rfc3339(s.created_at));
        v["updated_at"] = json!(warroom_domain::timefmt::rfc3339(s.updated_at));
    }
    Ok(v)
}

/// An API monitor as validated now; a stored spec that no longer validates (after an upgrade
/// tightened a rule) is reported rather than hidden.
fn validated(s: &StoredMonitor) -> Result<Monitor, ApiError> {
    s.spec.validate("$").map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            "stored_monitor_invalid",
            format!(
                "stored monitor `{}` no longer validates ({e}); replace it with PUT",
                s.spec.id
            ),
        )
    })
}

/// `GET /api/v1/monitors`: config monitors, then API ones, each with its availability over the
/// last 24 hours and 30 days.
pub async fn list_monitors(
    State(state): State<AppState>,
    c: Caller<Viewer>,
) -> Result<Json<Value>, ApiError> {
    let reveal = reveals(&c);
    let mut out = Vec::new();
    for m in &state.settings.monitors {
        out.push(view(&state, m, None, reveal).await?);
    }
    for s in state.store.api_monitors().await? {
        if config_monitor(&state, &s.spec.id).is_some() {
            // The config took this id after the API monitor was made; the scheduler runs the
            // config one, so only that one is listed.
            continue;
        }
        match validated(&s) {
            Ok(m) => out.push(view(&state, &m, Some(&s), reveal).await?),
            Err(e) => {
                tracing::warn!(monitor.id = %s.spec.id, error = ?e, "stored monitor does not validate; not running");
                let mut v =
                    json!({ "id": s.spec.id, "source": "api", "spec": s.spec, "invalid": true });
                if !reveal {
                    redact_spec(&mut v["spec"]);
                }
                out.push(v);
            }
        }
    }
    Ok(Json(json!({ "monitors": out })))
}

/// `GET /api/v1/monitors/{id}`.
pub async fn show_monitor(
    State(state): State<AppState>,
    c: Caller<Viewer>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(m) = config_monitor(&state, &id) {
        return Ok(Json(view(&state, m, None, reveals(&c)).await?));
    }
    let s = state
        .store
        .api_monitor(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let m = validated(&s)?;
    Ok(Json(view(&state, &m, Some(&s), reveals(&c)).await?))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no monitor with id `{id}`; list them with GET /api/v1/monitors"
    ))
}

/// `POST /api/v1/monitors`: a monitor in the `[[monitors]]` format, as JSON. 201 once stored;
/// the scheduler starts it within a second.
pub async fn create_monitor(
    State(state): State<AppState>,
    c: Caller<Responder>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (spec, monitor) = parse_spec(&state, body).await?;
    if config_monitor(&state, &spec.id).is_some() {
        return Err(read_only(&spec.id));
    }
    let stored = state
        .store
        .create_monitor(&spec, c.name(), state.clock.now())
        .await?;
    tracing::info!(monitor.id = %spec.id, service.slug = %spec.service, "monitor created through the API");
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &monitor, Some(&stored), true).await?),
    ))
}

/// `PUT /api/v1/monitors/{id}`: replaces an API monitor's definition. The body's `id` may be
/// left out; when present it must be the path's.
pub async fn replace_monitor(
    State(state): State<AppState>,
    _c: Caller<Responder>,
    Path(id): Path<String>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    if config_monitor(&state, &id).is_some() {
        return Err(read_only(&id));
    }
    match body.get("id") {
        None => {
            if let Some(o) = body.as_object_mut() {
                o.insert("id".into(), Value::String(id.clone()));
            }
        }
        Some(Value::String(s)) if *s == id => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "$.id",
                format!(
                    "{other} differs from the path's `{id}`; an id cannot be changed, delete and create instead"
                ),
            ));
        }
    }
    let (spec, monitor) = parse_spec(&state, body).await?;
    let stored = state
        .store
        .replace_monitor(&spec, state.clock.now())
        .await
        .map_err(|e| match e {
            warroom_store::StoreError::NotFound { .. } => ApiError::not_found(format!(
                "no API monitor with id `{id}`; create it with POST /api/v1/monitors"
            )),
            other => other.into(),
        })?;
    tracing::info!(monitor.id = %id, "monitor replaced through the API");
    Ok(Json(view(&state, &monitor, Some(&stored), true).await?))
}

/// `DELETE /api/v1/monitors/{id}`: stops and forgets an API monitor. A monitor that was DOWN has
/// its alert resolved by the scheduler, so its incident can calm down.
pub async fn delete_monitor(
    State(state): State<AppState>,
    _c: Caller<Responder>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if config_monitor(&state, &id).is_some() {
        return Err(read_only(&id));
    }
    if state.store.delete_monitor(&id).await? {
        tracing::info!(monitor.id = %id, "monitor deleted through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_viewer_sees_no_user_info_and_no_query_values() {
        let r = |u: &str| redact_url(u);
        assert_eq!(
            r("https://ghp_abc@api.github.com/repos").as_deref(),
            Some("https://[redacted]@api.github.com/repos"),
            "a token used as the user name"
        );
        assert_eq!(
            r("https://u:p@h:8443/x?token=t0k&debug#top").as_deref(),
            Some("https://[redacted]@h:8443/x?token=[redacted]&debug#top")
        );
        assert_eq!(r("https://shop.example.com/health"), None);
        assert_eq!(r("not a url"), None);
        assert_eq!(
            r("http://h/p@q?a=1").as_deref(),
            Some("http://h/p@q?a=[redacted]"),
            "an @ in the path is not user info"
        );
    }
}
