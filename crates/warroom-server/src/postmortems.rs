//! Post-mortems: drafting one from an incident's record, and serving the published site.
//!
//! The engine (`warroom-postmortem`) is pure; this module does the IO around it: reading the
//! store, writing the draft file, committing it when the folder is a git work tree, and reading
//! the folder to serve the site. Every `git` call is an argv list, never a shell string.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use std::path::{Path as FsPath, PathBuf};
use warroom_domain::{Incident, checklist, timefmt};
use warroom_postmortem as pm;

use crate::{
    AppState,
    error::ApiError,
    extract::{Caller, Number, Responder},
};

/// Where post-mortems live and what to do with them.
#[derive(Debug, Clone)]
pub struct PostmortemSettings {
    /// The folder of `YYYY-MM-DD-<slug>.md` files.
    pub dir: PathBuf,
    /// Commit new drafts when the folder is inside a git work tree.
    pub git_commit: bool,
    /// Draft automatically when an incident is resolved.
    pub draft_on_resolve: bool,
}

/// The title a post-mortem gets: the incident title without the `INCIDENT: ` prefix.
pub fn postmortem_title(incident: &Incident) -> String {
    incident
        .title
        .strip_prefix("INCIDENT: ")
        .unwrap_or(&incident.title)
        .to_owned()
}

/// Everything the store knows, mapped into the engine's input.
pub async fn draft_input(
    state: &AppState,
    incident: &Incident,
) -> Result<pm::DraftInput, ApiError> {
    let events = state.store.timeline(incident.number).await?;
    let mut services = Vec::new();
    for s in &incident.services {
        services.push(
            state
                .store
                .service(s.as_str())
                .await?
                .map(|s| s.name)
                .unwrap_or_else(|| s.to_string()),
        );
    }
    let status = incident.status.as_str();
    Ok(pm::DraftInput {
        incident_number: u64::try_from(incident.number).unwrap_or(0),
        title: postmortem_title(incident),
        summary: Some(incident.summary.clone()),
        severity: incident.severity.level(),
        severity_name: state.settings.policies.get(incident.severity).name.clone(),
        services,
        status: format!("{}{}", status[..1].to_uppercase(), &status[1..]),
        detected_at: Some(incident.detected_at),
        declared_at: Some(incident.declared_at),
        acknowledged_at: incident.acknowledged_at,
        identified_at: incident.identified_at,
        mitigated_at: incident.mitigated_at,
        resolved_at: incident.resolved_at,
        closed_at: incident.closed_at,
        timeline: events
            .iter()
            .map(|e| pm::TimelineEntry {
                at: e.at,
                author: e.author.clone(),
                text: e.kind.describe(),
            })
            .collect(),
        root_cause: incident.root_cause.clone(),
        fix_applied: incident.fix_applied.clone(),
        verification: incident.verification.clone(),
        impact: incident.impact.describe(),
        checklist: checklist::evaluate(incident, state.clock.now())
            .into_iter()
            .map(|c| pm::ChecklistState {
                list: c.list.title().to_owned(),
                item: c.text,
                done: c.done.is_some(),
            })
            .collect(),
    })
}

/// What drafting did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drafted {
    /// Full path of the written file.
    pub path: String,
    /// File name.
    pub file_name: String,
    /// The commit, when one was made.
    pub commit: Option<String>,
    /// The markdown.
    pub markdown: String,
}

async fn git(dir: &FsPath, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Commits one file with the source document's convention, if `dir` is in a git work tree.
async fn commit_draft(
    dir: &FsPath,
    file_name: &str,
    message: &str,
) -> Result<Option<String>, String> {
    if git(dir, &["rev-parse", "--is-inside-work-tree"])
        .await
        .as_deref()
        != Ok("true")
    {
        return Ok(None);
    }
    // A machine without a git identity still gets a commit, attributed to warroom.
    let mut identity: Vec<&str> = Vec::new();
    if git(dir, &["config", "user.email"])
        .await
        .map(|s| s.is_empty())
        .unwrap_or(true)
    {
        identity = vec![
            "-c",
            "user.name=warroom",
            "-c",
            "user.email=warroom@localhost",
        ];
    }
    git(dir, &["add", "--", file_name]).await?;
    let mut args = identity.clone();
    args.extend(["commit", "-q", "-m", message, "--", file_name]);
    git(dir, &args).await?;
    git(dir, &["rev-parse", "HEAD"]).await.map(Some)
}

/// Drafts the post-mortem of one incident into the folder. Refuses to overwrite an existing
/// file: a draft someone has started editing is theirs.
pub async fn draft(
    state: &AppState,
    number: i64,
    author: &str,
    commit: bool,
) -> Result<Drafted, ApiError> {
    let Some(settings) = state.settings.postmortems.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "postmortems_not_configured",
            "no post-mortem folder is configured; set [postmortems] dir in the config",
        ));
    };
    let incident = state.store.incident(number).await?;
    let input = draft_input(state, &incident).await?;
    let markdown = pm::render_draft(&input);
    let date = incident.detected_at.to_offset(time::UtcOffset::UTC).date();
    let file_name = pm::draft_file_name(date, &input.title);
    let path = settings.dir.join(&file_name);
    tokio::fs::create_dir_all(&settings.dir)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                format!("cannot create {}: {e}", settings.dir.display()),
            )
        })?;
    let mut file = match tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .await
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "postmortem_exists",
                format!(
                    "{} already exists; edit it, or move it away to draft again",
                    path.display()
                ),
            )
            .with_details(json!({ "path": path.display().to_string() })));
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                format!("cannot write {}: {e}", path.display()),
            ));
        }
    };
    use tokio::io::AsyncWriteExt;
    file.write_all(markdown.as_bytes()).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "io",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    file.sync_all().await.ok();
    let message = format!(
        "docs: post-mortem for {} {} [ci skip]",
        timefmt::date(incident.detected_at),
        input.title
    );
    let commit = if commit && settings.git_commit {
        match commit_draft(&settings.dir, &file_name, &message).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "post-mortem written but not committed");
                None
            }
        }
    } else {
        None
    };
    let note = match &commit {
        Some(c) => format!(
            "Post-mortem drafted: {file_name} (commit {})",
            &c[..c.len().min(12)]
        ),
        None => format!("Post-mortem drafted: {file_name}"),
    };
    // The seed promises the reporter a word when the post-mortem is published; the served site
    // shows it from the moment it is written.
    let page = warroom_postmortem::page_path(&file_name);
    let link = match &state.settings.public_url {
        Some(base) => format!("{}/postmortems/{page}", base.trim_end_matches('/')),
        None => format!("/postmortems/{page}"),
    };
    let (paging, routing) = (
        state.settings.paging.clone(),
        state.settings.routing.clone(),
    );
    let now = state.clock.now();
    let _ = state
        .store
        .mutate_incident(
            number,
            author,
            now,
            Box::new(move |i| {
                let events = i.add_note(&note, false)?;
                let news = warroom_domain::escalation::Outgoing {
                    audience: warroom_domain::escalation::Audience::Reporter(i.reporter.clone()),
                    notification: warroom_domain::notify::Notification {
                        kind: warroom_domain::notify::NotificationKind::Info,
                        incident: Some(i.number),
                        severity: Some(i.severity),
                        title: format!("Post-mortem published: {}", i.title),
                        text: format!("The post-mortem of what you reported is published: {link}"),
                        incident_channel: Some(i.channel.clone()),
                    },
                };
                let outbox =
                    crate::api::incidents::deliveries(paging.route(vec![news], &routing), now);
                Ok(warroom_store::Change { events, outbox })
            }),
        )
        .await;
    Ok(Drafted {
        path: path.display().to_string(),
        file_name,
        commit,
        markdown,
    })
}

/// Body of `POST /api/v1/incidents/{number}/postmortem`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// Skip the git commit even when the folder is a work tree.
    #[serde(default)]
    pub no_commit: bool,
}

/// `POST /api/v1/incidents/{number}/postmortem`.
pub async fn draft_postmortem(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Drafted>), ApiError> {
    // The body is optional: an empty POST drafts with the defaults.
    let req: DraftRequest = crate::extract::optional_json(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(draft(&state, n, caller.name(), !req.no_commit).await?),
    ))
}

async fn read_folder(dir: &FsPath) -> Result<Vec<pm::SourceDoc>, ApiError> {
    let mut docs = Vec::new();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::not_found(format!(
                "post-mortem folder {} cannot be read: {e}",
                dir.display()
            )));
        }
    };
    while let Ok(Some(entry)) = rd.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".md") || name.eq_ignore_ascii_case("README.md") {
            continue;
        }
        match tokio::fs::read(entry.path()).await {
            Ok(bytes) if bytes.len() <= pm::MAX_DOCUMENT_BYTES => match String::from_utf8(bytes) {
                Ok(text) => docs.push(pm::SourceDoc {
                    file_name: name,
                    text,
                }),
                Err(_) => tracing::warn!(file = %name, "skipping a post-mortem that is not UTF-8"),
            },
            Ok(_) => tracing::warn!(file = %name, "skipping an oversized post-mortem"),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "skipping an unreadable post-mortem")
            }
        }
    }
    Ok(docs)
}

fn site_error(e: pm::SiteError) -> ApiError {
    ApiError::not_found(e.to_string())
}

/// `GET /postmortems/`: the index, built from the folder on every request so it can never
/// go stale.
pub async fn site_index(State(state): State<AppState>) -> Result<Response, ApiError> {
    site_page(State(state), Path("index.html".to_owned())).await
}

/// `GET /postmortems/{page}`.
pub async fn site_page(
    State(state): State<AppState>,
    Path(page): Path<String>,
) -> Result<Response, ApiError> {
    let Some(settings) = state.settings.postmortems.clone() else {
        return Err(ApiError::not_found(
            "no post-mortem folder is configured; set [postmortems] dir in the config",
        ));
    };
    let docs = read_folder(&settings.dir).await?;
    let files = pm::build_site(&docs).map_err(site_error)?;
    match files.into_iter().find(|f| f.path == page) {
        Some(f) => Ok(([(header::CACHE_CONTROL, "no-cache")], Html(f.contents)).into_response()),
        None => Err(ApiError::not_found(format!(
            "no post-mortem page {page}; see /postmortems/"
        ))),
    }
}
