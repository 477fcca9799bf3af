//! The whole route table, in one place.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    routing::{get, post},
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{AppState, api, error::ApiError};

/// Every route as (method, path), in the order of the table below. The OpenAPI test checks the
/// document against this list and calls each route to prove a handler answers.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v2/silences"),
    ("POST", "/api/v2/silences"),
    ("GET", "/api/v2/silence/{id}"),
    ("DELETE", "/api/v2/silence/{id}"),
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/classify"),
    ("GET", "/api/v1/severities"),
    ("GET", "/api/v1/services"),
    ("POST", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents/{number}"),
    ("PATCH", "/api/v1/incidents/{number}"),
    ("POST", "/api/v1/incidents/{number}/severity"),
    ("POST", "/api/v1/incidents/{number}/roles"),
    ("POST", "/api/v1/incidents/{number}/transition"),
    ("POST", "/api/v1/incidents/{number}/updates"),
    ("POST", "/api/v1/incidents/{number}/notes"),
    ("GET", "/api/v1/incidents/{number}/timeline"),
    ("GET", "/api/v1/incidents/{number}/alerts"),
    ("GET", "/api/v1/incidents/{number}/checklists"),
    ("POST", "/api/v1/incidents/{number}/checklists/{item}/tick"),
    ("GET", "/api/v1/incidents/{number}/messages"),
    ("POST", "/api/v1/incidents/{number}/postmortem"),
    ("POST", "/api/v1/incidents/{number}/ack"),
    ("GET", "/api/v1/oncall"),
    ("GET", "/api/v1/incidents/{number}/notifications"),
    ("GET", "/metrics"),
    ("POST", "/api/v2/alerts"),
    ("GET", "/api/v2/alerts"),
    ("GET", "/api/v2/alerts/groups"),
    ("GET", "/api/v2/status"),
    ("GET", "/api/v2/receivers"),
    ("POST", "/hooks/alertmanager"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/monitors"),
    ("POST", "/api/v1/monitors"),
    ("GET", "/api/v1/monitors/{id}"),
    ("PUT", "/api/v1/monitors/{id}"),
    ("DELETE", "/api/v1/monitors/{id}"),
    ("GET", "/api/v1/services/{slug}/health"),
    ("GET", "/ack/{incident}/{person}/{expires}/{sig}"),
    ("POST", "/ack/{incident}/{person}/{expires}/{sig}"),
    ("GET", "/postmortems/"),
    ("GET", "/postmortems/{page}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("POST", "/hooks/git"),
    ("GET", "/api/v1/pipeline/runs"),
    ("GET", "/api/v1/pipeline/runs/{id}"),
    ("POST", "/api/v1/pipeline/approvals"),
];

/// Builds the application.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.body_limit;
    let api = Router::new()
        .route("/openapi.json", get(crate::openapi::document))
        .route("/classify", post(api::classify::classify))
        .route("/severities", get(api::classify::severities))
        .route("/services", get(api::services::list_services))
        .route(
            "/incidents",
            post(api::incidents::declare_incident).get(api::incidents::list_incidents),
        )
        .route(
            "/incidents/{number}",
            get(api::incidents::show_incident).patch(api::incidents::update_incident),
        )
        .route(
            "/incidents/{number}/severity",
            post(api::incidents::change_severity),
        )
        .route(
            "/incidents/{number}/roles",
            post(api::incidents::assign_role),
        )
        .route(
            "/incidents/{number}/transition",
            post(api::incidents::transition_incident),
        )
        .route(
            "/incidents/{number}/updates",
            post(api::incidents::post_update),
        )
        .route("/incidents/{number}/notes", post(api::incidents::add_note))
        .route(
            "/incidents/{number}/timeline",
            get(api::incidents::timeline),
        )
        .route(
            "/incidents/{number}/alerts",
            get(api::alerts::incident_alerts),
        )
        .route(
            "/incidents/{number}/checklists",
            get(api::incidents::checklists),
        )
        .route(
            "/incidents/{number}/checklists/{item}/tick",
            post(api::incidents::tick_checklist),
        )
        .route(
            "/incidents/{number}/messages",
            get(api::incidents::messages),
        )
        .route(
            "/incidents/{number}/postmortem",
            post(crate::postmortems::draft_postmortem),
        )
        .route("/incidents/{number}/ack", post(api::incidents::acknowledge))
        .route("/oncall", get(api::services::on_call))
        .route("/alerts", get(api::alerts::list_alerts))
        .route("/health", get(api::alerts::health))
        .route(
            "/monitors",
            get(api::monitors::list_monitors).post(api::monitors::create_monitor),
        )
        .route(
            "/monitors/{id}",
            get(api::monitors::show_monitor)
                .put(api::monitors::replace_monitor)
                .delete(api::monitors::delete_monitor),
        )
        .route("/services/{slug}/health", get(api::alerts::health_history))
        .route(
            "/incidents/{number}/notifications",
            get(api::incidents::notifications),
        )
        .route(
            "/tokens",
            get(api::tokens::list_tokens).post(api::tokens::create_token),
        )
        .route(
            "/tokens/{id}",
            axum::routing::delete(api::tokens::revoke_token),
        )
        .route("/pipeline/runs", get(crate::pipeline::list_runs))
        .route("/pipeline/runs/{id}", get(crate::pipeline::show_run))
        .route("/pipeline/approvals", post(crate::pipeline::approve));
    Router::new()
        .route("/", get(crate::home::page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::services::ready))
        .route("/metrics", get(api::metrics::metrics))
        .route("/api/v2/alerts", post(api::alerts::post_alerts).get(api::alertmanager::list_alerts))
        .route("/api/v2/alerts/groups", get(api::alertmanager::list_groups))
        .route("/api/v2/status", get(api::alertmanager::status))
        .route("/api/v2/receivers", get(api::alertmanager::receivers))
        .route(
            "/api/v2/silences",
            get(api::silences::list_silences).post(api::silences::create_silence),
        )
        .route(
            "/api/v2/silence/{id}",
            get(api::silences::show_silence).delete(api::silences::expire_silence),
        )
        .route("/hooks/alertmanager", post(api::alerts::alertmanager_webhook))
        .route("/hooks/git", post(crate::pipeline::git_push))
        .route("/ack/{incident}/{person}/{expires}/{sig}", get(crate::ack_link::confirm).post(crate::ack_link::acknowledge))
        .route("/postmortems/", get(crate::postmortems::site_index))
        .route("/postmortems/{page}", get(crate::postmortems::site_page))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::not_found("no such route; see /api/v1/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method; see /api/v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "warroom hit a bug handling this request; nothing was saved by it. Please report it",
            ))
        }))
        .with_state(state)
}
