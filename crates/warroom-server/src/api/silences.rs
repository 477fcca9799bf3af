//! Silences and maintenance windows through Alertmanager's API (`/api/v2/silences`), so that
//! `amtool silence add` and scripts written for Alertmanager work against warroom, and an
//! on-call engineer mutes a planned failover without editing the config and restarting.
//! The config file's `[[silences]]` are listed too, and cannot be expired here.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use warroom_domain::alert::{
    MatcherSpec, Matchers, Silence, silence_changes_in_place, silence_listed_by,
};
use warroom_store::silences::StoredSilence;

use crate::{
    AppState,
    error::ApiError,
    extract::{ApiJson, Caller, Responder, Viewer},
};

/// How long after its end a silence is still listed (Alertmanager keeps expired silences
/// for 5 days by default).
const LISTED_AFTER_END: time::Duration = time::Duration::days(5);

/// The silences in force for the alert processor and health: the config's, and the API's
/// that end after a day ago (so that the processor still sees the ones that just ended).
/// Refreshed from the store by the processor once a second, and at once by this process's own
/// changes; other processes' changes arrive within that second.
#[derive(Debug)]
pub struct SilenceBoard {
    config: Vec<Silence>,
    all: RwLock<Arc<Vec<Silence>>>,
}

impl SilenceBoard {
    /// The config's silences only, until the first refresh.
    pub fn new(config: Vec<Silence>) -> Self {
        let all = RwLock::new(Arc::new(config.clone()));
        SilenceBoard { config, all }
    }

    /// The config's and the API's silences.
    pub fn current(&self) -> Arc<Vec<Silence>> {
        self.all.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the API's silences again.
    pub async fn refresh(&self, state: &AppState) -> Result<(), ApiError> {
        let since = state.clock.now() - time::Duration::days(1);
        let mut all = self.config.clone();
        for s in state.store.silences_ending_after(since).await? {
            match Matchers::from_specs(&s.matchers, "matchers") {
                Ok(matchers) => all.push(Silence {
                    id: s.id,
                    matchers,
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    comment: s.comment,
                }),
                Err(e) => {
                    tracing::warn!(silence.id = %s.id, error = %e, "stored silence no longer validates; not applied")
                }
            }
        }
        *self.all.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(all);
        Ok(())
    }
}

/// Alertmanager's `postableSilence`.
#[derive(Debug, Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<MatcherSpec>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "createdBy", default)]
    created_by: Option<String>,
    #[serde(default)]
    comment: String,
}

fn time_field(value: &str, field: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map_err(|e| {
        ApiError::invalid(
            field,
            format!("`{value}` is not an RFC 3339 time ({e}); e.g. 2026-12-01T22:00:00Z"),
        )
    })
}

fn state_of(
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    now: OffsetDateTime,
) -> &'static str {
    if ends_at <= now || ends_at <= starts_at {
        "expired"
    } else if now < starts_at {
        "pending"
    } else {
        "active"
    }
}

fn stored_view(s: &StoredSilence, now: OffsetDateTime) -> Value {
    json!({
        "id": s.id,
        "status": { "state": state_of(s.starts_at, s.ends_at, now) },
        "matchers": s.matchers,
        "startsAt": warroom_domain::timefmt::rfc3339(s.starts_at),
        "endsAt": warroom_domain::timefmt::rfc3339(s.ends_at),
        "updatedAt": warroom_domain::timefmt::rfc3339(s.updated_at),
        "createdBy": s.created_by,
        "comment": s.comment,
        "source": "api",
    })
}

/// A config silence in Alertmanager's shape.
fn config_view(state: &AppState, s: &Silence, now: OffsetDateTime) -> Value {
    json!({
        "id": s.id,
        "status": { "state": state_of(s.starts_at, s.ends_at, now) },
        "matchers": s.matchers.to_specs(),
        "startsAt": warroom_domain::timefmt::rfc3339(s.starts_at),
        "endsAt": warroom_domain::timefmt::rfc3339(s.ends_at),
        // The config's silences change only with the file: the server's start.
        "updatedAt": warroom_domain::timefmt::rfc3339(state.started),
        "createdBy": "config",
        "comment": s.comment,
        "source": "config",
    })
}

/// `POST /api/v2/silences`: Alertmanager's body; answers `{"silenceID": ...}`.
pub async fn create_silence(
    State(state): State<AppState>,
    c: Result<Caller<Responder>, ApiError>,
    body: Result<ApiJson<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    // A refused token or body too is answered Alertmanager's way, so that amtool shows why.
    let answer = match (c, body) {
        (Ok(c), Ok(ApiJson(body))) => create(state, c, body).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    answer.map_err(ApiError::as_alertmanager)
}

async fn create(
    state: AppState,
    c: Caller<Responder>,
    body: Value,
) -> Result<Json<Value>, ApiError> {
    let p: PostableSilence = crate::extract::typed_body(body)?;
    let changing = p.id.clone().filter(|id| !id.is_empty());
    if let Some(id) = &changing
        && in_config(&state, id)
    {
        return Err(config_silence(id));
    }
    Matchers::from_specs(&p.matchers, "$.matchers").map_err(ApiError::from)?;
    let starts_at = time_field(&p.starts_at, "$.startsAt")?;
    let ends_at = time_field(&p.ends_at, "$.endsAt")?;
    let now = state.clock.now();
    if ends_at <= starts_at {
        return Err(ApiError::invalid("$.endsAt", "must be after startsAt"));
    }
    if ends_at <= now {
        return Err(ApiError::invalid(
            "$.endsAt",
            "is in the past: a silence that already ended would mute nothing",
        ));
    }
    if p.comment.trim().is_empty() {
        return Err(ApiError::invalid(
            "$.comment",
            "say why, e.g. \"planned database failover\": it is shown next to the muted alerts",
        ));
    }
    let mut silence = StoredSilence {
        id: uuid::Uuid::new_v4().to_string(),
        matchers: p.matchers,
        starts_at,
        ends_at,
        created_by: p
            .created_by
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| c.name().to_owned()),
        comment: p.comment,
        updated_at: now,
    };
    match changing {
        None => {
            state.store.create_silence(&silence).await?;
            tracing::info!(silence.id = %silence.id, by = %c.name(), "silence created through the API");
        }
        // `amtool silence update`: Alertmanager keeps the id when it can change the silence in
        // place, and otherwise replaces it with a new one.
        Some(id) => {
            let old = state
                .store
                .silence(&id)
                .await?
                .ok_or_else(|| not_found(&id))?;
            let in_place = silence_changes_in_place(
                (&old.matchers, old.starts_at, old.ends_at),
                (&silence.matchers, silence.starts_at, silence.ends_at),
                now,
            );
            if in_place {
                silence.id = id;
                state.store.update_silence(&silence, now).await?;
            } else {
                state.store.replace_silence(&id, &silence, now).await?;
            }
            tracing::info!(silence.id = %silence.id, replaced = %old.id, in_place, by = %c.name(), "silence changed through the API");
        }
    }
    state.silences.refresh(&state).await?;
    Ok(Json(json!({ "silenceID": silence.id })))
}

/// `GET /api/v2/silences`: the config's and the API's (those that ended within 5 days too).
/// `filter=` (repeatable) keeps the silences that have each of its matchers, as Alertmanager
/// does for `amtool silence query service=api`.
pub async fn list_silences(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let filter = super::alertmanager::filters(&params)?;
    let now = state.clock.now();
    let mut out: Vec<Value> = state
        .settings
        .alerts
        .silences
        .iter()
        .filter(|s| silence_listed_by(&s.matchers.to_specs(), &filter))
        .map(|s| config_view(&state, s, now))
        .collect();
    for s in state
        .store
        .silences_ending_after(now - LISTED_AFTER_END)
        .await?
    {
        if silence_listed_by(&s.matchers, &filter) {
            out.push(stored_view(&s, now));
        }
    }
    Ok(Json(Value::Array(out)))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no silence with id `{id}`; list them with GET /api/v2/silences"
    ))
}

/// The config's silence with this id (`config-N`).
fn config_named<'a>(state: &'a AppState, id: &str) -> Option<&'a Silence> {
    state.settings.alerts.silences.iter().find(|s| s.id == id)
}

fn in_config(state: &AppState, id: &str) -> bool {
    config_named(state, id).is_some()
}

fn config_silence(id: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "config_silence",
        format!(
            "silence `{id}` is defined in the config file's [[silences]]; remove or change it there"
        ),
    )
}

/// `GET /api/v2/silence/{id}`: one made through the API, or the config's `config-N`.
pub async fn show_silence(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    if let Some(s) = config_named(&state, &id) {
        return Ok(Json(config_view(&state, s, now)));
    }
    let s = state
        .store
        .silence(&id)
        .await?
        .ok_or_else(|| not_found(&id).as_alertmanager())?;
    Ok(Json(stored_view(&s, now)))
}

/// `DELETE /api/v2/silence/{id}`: expires it now (a pending one never starts). The alerts it
/// held back are acted on at the processor's next look.
pub async fn expire_silence(
    State(state): State<AppState>,
    c: Caller<Responder>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if in_config(&state, &id) {
        return Err(config_silence(&id).as_alertmanager());
    }
    let s = match state.store.expire_silence(&id, state.clock.now()).await {
        Err(warroom_store::StoreError::NotFound { .. }) => {
            return Err(not_found(&id).as_alertmanager());
        }
        other => other?,
    };
    state.silences.refresh(&state).await?;
    tracing::info!(silence.id = %id, by = %c.name(), "silence expired through the API");
    Ok(Json(stored_view(&s, state.clock.now())))
}
