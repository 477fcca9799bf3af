//! The follow-up pipeline's HTTP side: the git push webhook, runs and their logs, approvals.
//!
//! The server only queues runs in the store; runners (`warroom serve`'s worker loop, or
//! `warroom worker` on other hosts) claim and execute them, so the server never depends on the
//! pipeline crate and a slow agent never holds a request.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    AppState,
    error::ApiError,
    extract::{ApiJson, Caller, Responder, Viewer},
};

/// A follow-up an approval names, as the lookup found it in the repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApprovalTarget {
    /// Post-mortem path.
    pub postmortem: String,
    /// The action.
    pub action: String,
    /// Type.
    #[serde(rename = "type")]
    pub item_type: String,
    /// Priority.
    pub priority: String,
    /// Still to do (not Done or Dropped).
    pub open: bool,
}

/// What a lookup of an item id returns: the item, none, or why the repository could not be read.
pub type ItemLookupFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<ApprovalTarget>, String>> + Send>,
>;

/// Finds a follow-up by id in the configured repository. The binary wires the pipeline's scan
/// in, so the server checks approvals without depending on the pipeline crate.
pub type ItemLookup = std::sync::Arc<dyn Fn(String) -> ItemLookupFuture + Send + Sync>;

/// What the server needs to know about the pipeline.
#[derive(Clone)]
pub struct PipelineSettings {
    /// The key runs are stored under (the runner uses the same one).
    pub repo_key: String,
    /// The branch whose pushes matter.
    pub branch: String,
    /// The post-mortem folder, relative to the repository root.
    pub postmortems_dir: String,
    /// `owner/name` that payloads must name, when set.
    pub repository: Option<String>,
    /// The shared webhook secret; without it every delivery is refused.
    pub webhook_secret: Option<Vec<u8>>,
    /// Checks that an approved id names a follow-up; without it any well-formed id is taken.
    pub items: Option<ItemLookup>,
}

impl std::fmt::Debug for PipelineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineSettings")
            .field("repo_key", &self.repo_key)
            .field("branch", &self.branch)
            .field("postmortems_dir", &self.postmortems_dir)
            .field("repository", &self.repository)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("items", &self.items.as_ref().map(|_| "lookup"))
            .finish()
    }
}

fn settings(state: &AppState) -> Result<&PipelineSettings, ApiError> {
    state.settings.pipeline.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "the follow-up pipeline is not configured; add a [pipeline] section to the config",
        )
    })
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", message)
}

/// Checks the delivery's HMAC-SHA256 in constant time: GitHub's `X-Hub-Signature-256:
/// sha256=<hex>` or Gitea/Forgejo's `X-Gitea-Signature: <hex>`.
pub fn verify_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let hex_sig = if let Some(v) = header("x-hub-signature-256") {
        v.trim().strip_prefix("sha256=").ok_or_else(|| {
            unauthorized("X-Hub-Signature-256 must read sha256=<hex HMAC-SHA256 of the body>")
        })?
    } else if let Some(v) = header("x-gitea-signature").or(header("x-forgejo-signature")) {
        v.trim()
    } else {
        return Err(unauthorized(
            "missing signature: send X-Hub-Signature-256 (GitHub) or X-Gitea-Signature (Gitea, Forgejo), signed with the configured webhook secret",
        ));
    };
    let sig = hex::decode(hex_sig).map_err(|_| {
        unauthorized("the signature is not hexadecimal; check the webhook settings")
    })?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
        .map_err(|_| unauthorized("the webhook secret cannot be used as an HMAC key"))?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig).map_err(|_| {
        unauthorized("the signature does not match; the webhook secret differs from warroom's")
    })
}

fn field<'a>(v: &'a Value, path: &str) -> Result<&'a str, ApiError> {
    v.pointer(&format!("/{}", path.replace('.', "/")))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{path}: missing or not a string in the push payload"
            ))
            .with_details(json!({ "field": path }))
        })
}

/// `POST /hooks/git`: a push from GitHub or Gitea/Forgejo. Queues a run when the push is to
/// the configured branch and touches the post-mortem folder; answers 202 only after the run is
/// committed to the store. Redeliveries of the same push get the same run.
pub async fn git_push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = settings(&state)?;
    let Some(secret) = &p.webhook_secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "no webhook secret is configured (pipeline.webhook_secret_env or webhook_secret_file); deliveries are refused until one is",
        ));
    };
    verify_signature(secret, &headers, &body)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event = header("x-github-event")
        .or(header("x-gitea-event"))
        .or(header("x-forgejo-event"))
        .unwrap_or("");
    let ignored = |reason: String| {
        (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "ignored", "reason": reason })),
        )
    };
    if event == "ping" {
        return Ok((StatusCode::OK, Json(json!({ "status": "pong" }))));
    }
    if event != "push" {
        return Ok(ignored(format!(
            "event `{event}` is not a push (X-GitHub-Event or X-Gitea-Event must be push)"
        )));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the push payload is not valid JSON: {e}"),
        )
    })?;
    let git_ref = field(&v, "ref")?;
    if let (Some(want), Some(got)) = (
        &p.repository,
        v.pointer("/repository/full_name").and_then(Value::as_str),
    ) && !want.eq_ignore_ascii_case(got)
    {
        return Err(ApiError::not_found(format!(
            "unknown repository `{got}`; this warroom runs the pipeline for `{want}`"
        ))
        .with_details(json!({ "field": "repository.full_name" })));
    }
    let want_ref = format!("refs/heads/{}", p.branch);
    if git_ref != want_ref {
        return Ok(ignored(format!(
            "push to {git_ref}, not to the configured branch {want_ref}"
        )));
    }
    let after = match v.get("after") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        // Silently falling back to the delivery id would let two forges' copies of one push
        // make two runs.
        Some(_) => {
            return Err(ApiError::bad_request(
                "after: must be the pushed commit's hash, as a string",
            )
            .with_details(json!({ "field": "after" })));
        }
    };
    let dir = format!("{}/", p.postmortems_dir.trim_end_matches('/'));
    match v.get("commits") {
        Some(Value::Array(commits)) => {
            // GitHub lists at most 20 commits (Gitea a configurable number); a full list may
            // be truncated, so only a short list can prove the folder was not touched.
            let touched = commits.iter().any(|c| {
                ["added", "modified", "removed"].iter().any(|k| {
                    c.get(*k).and_then(Value::as_array).is_some_and(|files| {
                        files
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|f| f.starts_with(&dir))
                    })
                })
            });
            if !touched && commits.len() < 20 {
                return Ok(ignored(format!("the push does not touch {dir}")));
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request("commits: must be a list")
                .with_details(json!({ "field": "commits" })));
        }
        None => {}
    }
    let delivery = header("x-github-delivery").or(header("x-gitea-delivery"));
    // The pushed commit identifies the push across redeliveries and across forges; the
    // delivery id is the fallback for payloads without one.
    let key = match (after, delivery) {
        (Some(sha), _) if !sha.trim_matches('0').is_empty() => {
            Some(format!("push:{}:{sha}", p.branch))
        }
        (Some(_), _) => return Ok(ignored("the branch was deleted".into())),
        (None, Some(d)) => Some(format!("delivery:{d}")),
        (None, None) => None,
    };
    let (run, created) = state
        .store
        .enqueue_run(&p.repo_key, "webhook", key.as_deref(), state.clock.now())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "queued", "run": run.id, "duplicate": !created })),
    ))
}

/// `GET /api/v1/pipeline/runs`.
pub async fn list_runs(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "runs": state.store.list_runs(50).await? })))
}

/// Query of `GET /api/v1/pipeline/runs/{id}`.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Only log lines after this id (to follow a log).
    #[serde(default)]
    pub after: i64,
}

/// `GET /api/v1/pipeline/runs/{id}`: the run with its progress and log.
pub async fn show_run(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`{id}` is not a run number; see GET /api/v1/pipeline/runs"
        ))
    })?;
    let run = state.store.pipeline_run(id).await?;
    let log = state.store.run_log(id, q.after).await?;
    Ok(Json(json!({ "run": run, "log": log })))
}

/// Body of `POST /api/v1/pipeline/approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// The item id, as `warroom postmortem todos` prints it.
    pub item: String,
}

/// Whether a string is an item id: the engine's 12 lowercase hex digits.
pub fn is_item_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `POST /api/v1/pipeline/approvals`: a person lets automation implement an item it would
/// not take on its own; a run is queued, and the item goes through the same guardrails.
pub async fn approve(
    State(state): State<AppState>,
    c: Caller<Responder>,
    ApiJson(req): ApiJson<ApprovalRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = settings(&state)?;
    let item = req.item.trim();
    if !is_item_id(item) {
        return Err(ApiError::invalid(
            "item",
            format!(
                "`{item}` is not an item id; ids are 12 hex digits, see `warroom postmortem todos`"
            ),
        ));
    }
    // A typo would otherwise be stored, answered 201 and then silently match nothing.
    let target = match &p.items {
        None => None,
        Some(lookup) => match lookup(item.to_string()).await {
            Ok(Some(t)) if t.open => Some(t),
            Ok(Some(t)) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_done",
                    format!(
                        "{item} (\"{}\" in {}) is already done or dropped; nothing to approve",
                        t.action, t.postmortem
                    ),
                )
                .with_details(json!({ "field": "item" })));
            }
            Ok(None) => {
                return Err(ApiError::not_found(format!(
                    "no follow-up with id {item} in {} on {}; ids come from `warroom postmortem todos` or `warroom pipeline run --dry-run`, and change when the action text is edited",
                    p.postmortems_dir, p.branch
                ))
                .with_details(json!({ "field": "item" })));
            }
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "repository_unavailable",
                    format!("cannot read the post-mortems to check the id: {e}; try again"),
                ));
            }
        },
    };
    let now = state.clock.now();
    let approval = state
        .store
        .approve_item(&p.repo_key, item, c.name(), now)
        .await?;
    let (run, _) = state
        .store
        .enqueue_run(&p.repo_key, "approval", None, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "approval": approval, "item": target, "run": run.id })),
    ))
}
