//! `GET /`: what a person who opens warroom's address in a browser needs to find their way.
//! It shows no incident or alert data, since reads of those need a token and a browser has none.

use axum::{http::StatusCode, response::Response};

const LINKS: &str = concat!(
    "<ul>\n",
    "<li><a href=\"/postmortems/\">Published post-mortems</a></li>\n",
    "<li><a href=\"/api/v1/openapi.json\">API reference</a> (OpenAPI 3.1). Calls need ",
    "<code>Authorization: Bearer &lt;token&gt;</code>; create a token with ",
    "<code>warroom token create --role responder --name NAME</code></li>\n",
    "<li>Prometheus: list this server under <code>alerting.alertmanagers</code>; alerts arrive at ",
    "<code>POST /api/v2/alerts</code></li>\n",
    "<li>Alertmanager: a webhook receiver with the URL <code>/hooks/alertmanager</code></li>\n",
    "<li>Both send a token or an <code>[[alert_sources]]</code> secret as ",
    "<code>authorization: {credentials: ...}</code> (Prometheus: in the alertmanager entry; ",
    "Alertmanager: in the receiver's <code>http_config</code>)</li>\n",
    "<li><a href=\"/metrics\">Metrics</a> (Prometheus text format), ",
    "<a href=\"/healthz\">liveness</a>, <a href=\"/readyz\">readiness</a></li>\n",
    "</ul>\n",
);

/// `GET /`.
pub async fn page() -> Response {
    crate::html::page(
        StatusCode::OK,
        concat!("warroom ", env!("CARGO_PKG_VERSION")),
        LINKS,
    )
}
