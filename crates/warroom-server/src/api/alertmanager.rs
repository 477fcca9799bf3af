//! Alertmanager's read API (`GET /api/v2/alerts`, `/status`, `/receivers`) over warroom's
//! alerts, so that `amtool alert query`, `amtool config show` and Grafana's Alertmanager data
//! source work against warroom as they do against Alertmanager.
//!
//! warroom has no receivers or inhibition rules: every alert lists the one receiver
//! `warroom` (incidents, not routes, decide who hears about it), and none is inhibited.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use warroom_domain::{
    alert::{self, GO_ZERO_TIME, LabelSet, MatchOp, Matcher},
    timefmt::rfc3339,
};
use warroom_store::ListedAlert;

use crate::{
    AppState,
    error::ApiError,
    extract::{Caller, Viewer},
};

/// The receiver every alert is listed with.
pub const RECEIVER: &str = "warroom";

/// Alerts listed by default, and at most (`limit=`): the answer is built in memory, about
/// 1.1 KB an alert while it is built (measured: 100,000 alerts, 40 MB of JSON).
const LIST_DEFAULT: usize = 25_000;
const LIST_MAX: usize = 50_000;
/// Firing alerts read from the store at a time while filtering.
const PAGE: i64 = 2_000;

/// Listings built at once; the others wait their turn. Each holds its alerts and its answer in
/// memory, so a few dashboards asking for 50,000 alerts at the same moment stay within the
/// process's memory bound.
static LISTINGS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Set on a listing that stopped at its limit; the body holds the first alerts in storage
/// order, sorted by fingerprint like the rest of the answer.
pub const TRUNCATED_HEADER: &str = "warroom-truncated";

fn bad_parameter(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
        format!("{name}: {message}"),
    )
    .as_alertmanager()
}

/// A domain error about a parameter as a 400: its message, under `name` when given, else under
/// the field the error names (`filter[1].value`).
fn bad_domain(name: Option<&str>, e: warroom_domain::DomainError) -> ApiError {
    match e {
        warroom_domain::DomainError::Invalid { field, message } => {
            bad_parameter(name.unwrap_or(&field), message)
        }
        other => ApiError::from(other),
    }
}

/// The last value given for a query parameter: a later `&limit=` overrides an earlier one.
fn last<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Alertmanager's query flags: `true` or `false` (Go's spellings `1`, `0`, `t`, `f` too).
fn flag(params: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match last(params, name) {
        None => Ok(true),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Ok(true),
            "false" | "0" | "f" => Ok(false),
            _ => Err(bad_parameter(name, format!("`{v}` is not true or false"))),
        },
    }
}

/// `filter=` matchers of a listing request.
pub fn filters(params: &[(String, String)]) -> Result<Vec<Matcher>, ApiError> {
    let raw: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "filter")
        .map(|(_, v)| v.as_str())
        .collect();
    alert::parse_filter(&raw).map_err(|e| bad_domain(None, e))
}

#[derive(Serialize)]
struct Receiver {
    name: &'static str,
}

#[derive(Serialize)]
struct Status<'a> {
    state: &'static str,
    #[serde(rename = "silencedBy")]
    silenced_by: Vec<&'a str>,
    #[serde(rename = "inhibitedBy")]
    inhibited_by: [&'a str; 0],
}

/// Alertmanager's `gettableAlert`, with the incident the alert belongs to as an extra field.
#[derive(Serialize)]
struct GettableAlert<'a> {
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "updatedAt")]
    updated_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
    fingerprint: &'a str,
    receivers: [Receiver; 1],
    status: Status<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<i64>,
}

/// The alerts a listing request selects, each with the silences muting it, sorted by
/// fingerprint; `truncated` when more matched than `limit`.
struct Selection {
    alerts: Vec<(ListedAlert, Vec<String>)>,
    truncated: bool,
    limit: usize,
}

/// Reads Alertmanager's listing parameters: `filter` (label matchers, repeatable), `active`,
/// `silenced`, `inhibited`, `unprocessed` (each `true` by default) and `receiver` (a regular
/// expression); `limit` (1-50000, default 25000) is warroom's own. Then walks the firing
/// alerts and keeps those selected.
async fn select(state: &AppState, params: &[(String, String)]) -> Result<Selection, ApiError> {
    let matchers = filters(params)?;
    let active = flag(params, "active")?;
    let silenced = flag(params, "silenced")?;
    // Nothing is inhibited, and silences are applied as the listing is read (no alert waits
    // to be matched against them), so `inhibited` and `unprocessed` select nothing away; they
    // are still checked for their spelling.
    flag(params, "inhibited")?;
    flag(params, "unprocessed")?;
    let receiver_matches = match last(params, "receiver") {
        None => true,
        Some(r) => Matcher::new(RECEIVER, MatchOp::Regex, r, "receiver")
            .map_err(|e| bad_domain(Some("receiver"), e))?
            .matches_value(RECEIVER),
    };
    let limit = match last(params, "limit") {
        None => LIST_DEFAULT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=LIST_MAX).contains(l))
            .ok_or_else(|| bad_parameter("limit", format!("`{l}` is not 1-{LIST_MAX}")))?,
    };

    // Equalities with a value narrow the walk in the database; every matcher is still
    // applied below, so this only saves reading rows.
    let equalities: Vec<(&str, &str)> = matchers
        .iter()
        .filter(|m| m.op() == MatchOp::Equal && !m.value().is_empty())
        .map(|m| (m.name(), m.value()))
        .collect();
    let now = state.clock.now();
    let silences = state.silences.current();
    let mut listed = Vec::new();
    let mut truncated = false;
    let mut after = String::new();
    // A receiver filter that excludes `warroom` excludes every alert: nothing to read.
    let mut more = receiver_matches;
    while more {
        let page = state
            .store
            .firing_alerts_page(&after, PAGE, &equalities)
            .await?;
        for l in page.alerts {
            // Past its end but not yet marked resolved (the expiry runs once a second).
            if l.ends_at.is_some_and(|end| end <= now)
                || !matchers.iter().all(|m| m.matches(&l.labels))
            {
                continue;
            }
            let silenced_ids: Vec<String> = alert::silenced_by(&silences, &l.labels, now)
                .into_iter()
                .map(str::to_owned)
                .collect();
            if (silenced_ids.is_empty() && !active) || (!silenced_ids.is_empty() && !silenced) {
                continue;
            }
            if listed.len() == limit {
                truncated = true;
                break;
            }
            listed.push((l, silenced_ids));
        }
        match page.next {
            Some(next) if !truncated => after = next,
            _ => more = false,
        }
    }
    listed.sort_by(|(a, _), (b, _)| a.fingerprint.cmp(&b.fingerprint));
    if truncated {
        tracing::warn!(limit, "an Alertmanager listing stopped at its limit");
    }
    Ok(Selection {
        alerts: listed,
        truncated,
        limit,
    })
}

fn gettable<'a>(l: &'a ListedAlert, silenced_ids: &'a [String]) -> GettableAlert<'a> {
    GettableAlert {
        labels: &l.labels,
        annotations: &l.annotations,
        starts_at: rfc3339(l.starts_at),
        ends_at: l.ends_at.map_or_else(|| GO_ZERO_TIME.to_owned(), rfc3339),
        updated_at: rfc3339(l.last_seen),
        generator_url: l.generator_url.as_deref(),
        fingerprint: &l.fingerprint,
        receivers: [Receiver { name: RECEIVER }],
        status: Status {
            state: if silenced_ids.is_empty() {
                "active"
            } else {
                "suppressed"
            },
            silenced_by: silenced_ids.iter().map(String::as_str).collect(),
            inhibited_by: [],
        },
        incident: l.incident,
    }
}

/// The answer, with [`TRUNCATED_HEADER`] when the selection stopped at its limit.
fn answer(body: Vec<u8>, truncated: bool, limit: usize) -> Response {
    let mut response = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if truncated {
        response.headers_mut().insert(
            HeaderName::from_static(TRUNCATED_HEADER),
            HeaderValue::from_str(&format!(
                "more than {limit} alerts match; narrow the listing with filter= or raise limit= (at most {LIST_MAX})"
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("true")),
        );
    }
    response
}

/// Writes a JSON array of alerts, dropping each as it is written, so that a large listing is
/// never held twice (as records and as the shape they are sent in).
fn write_alerts(
    alerts: impl IntoIterator<Item = (ListedAlert, Vec<String>)>,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    out.push(b'[');
    for (i, (l, ids)) in alerts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &gettable(&l, &ids)).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("rendering alerts: {e}"),
            )
        })?;
    }
    out.push(b']');
    Ok(())
}

/// A listing: its turn among [`LISTINGS`], the selection, then the answer `render` writes.
async fn listing(
    state: &AppState,
    params: &[(String, String)],
    render: impl FnOnce(Vec<(ListedAlert, Vec<String>)>, &mut Vec<u8>) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    let _turn = LISTINGS.acquire().await;
    let Selection {
        alerts,
        truncated,
        limit,
    } = select(state, params).await?;
    let mut body = Vec::with_capacity(alerts.len() * 400 + 2);
    render(alerts, &mut body)?;
    Ok(answer(body, truncated, limit))
}

/// `GET /api/v2/alerts`: firing alerts in Alertmanager's shape, sorted by fingerprint, with
/// its parameters (see [`select`]).
pub async fn list_alerts(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    listing(&state, &params, write_alerts).await
}

/// `GET /api/v2/alerts/groups`: the same selection gathered as warroom groups alerts into
/// incidents (the `[alerts] group_by` labels), each group with those labels, as Grafana's
/// alert-group view reads an Alertmanager. Groups are sorted by their labels.
pub async fn list_groups(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let grouping = &state.settings.alerts.grouping;
    listing(&state, &params, |alerts, body| {
        type Group = (LabelSet, Vec<(ListedAlert, Vec<String>)>);
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for (l, ids) in alerts {
            // By the grouping in force, so that each group's labels are what made it.
            let labels = grouping.group_labels(&l.labels);
            groups
                .entry(alert::label_set_string(&labels))
                .or_insert_with(|| (labels, Vec::new()))
                .1
                .push((l, ids));
        }
        body.push(b'[');
        for (i, (labels, members)) in groups.into_values().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            // `{"labels":...,"receiver":...,"alerts":[...]}`, the alerts written one by one.
            let head = json!({ "labels": labels, "receiver": { "name": RECEIVER } }).to_string();
            body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
            body.extend_from_slice(b",\"alerts\":");
            write_alerts(members, body)?;
            body.push(b'}');
        }
        body.push(b']');
        Ok(())
    })
    .await
}

/// `GET /api/v2/receivers`: the one receiver alerts are listed with.
pub async fn receivers(_c: Caller<Viewer>) -> Json<Value> {
    Json(json!([{ "name": RECEIVER }]))
}

/// What `amtool config show` prints where Alertmanager would print its YAML.
const CONFIG_NOTE: &str = "# warroom: alerts are routed into incidents, not through an Alertmanager\n\
# routing tree. Grouping, the severity mapping and silences are in warroom's TOML config\n\
# (`warroom config check FILE` validates it); the API is described at /api/v1/openapi.json.\n";

/// `GET /api/v2/status`: Alertmanager's `alertmanagerStatus`, so that clients that check it
/// first (Grafana's data source test, `amtool config show`) accept warroom.
pub async fn status(State(state): State<AppState>, _c: Caller<Viewer>) -> Json<Value> {
    Json(json!({
        "cluster": { "status": "disabled", "peers": [] },
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "none (warroom)",
        },
        "config": { "original": CONFIG_NOTE },
        "uptime": rfc3339(state.started),
    }))
}
