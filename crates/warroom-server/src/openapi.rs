//! The OpenAPI 3.1 document, written by hand next to the route table. A test compares its
//! paths and methods with [`crate::ROUTES`] and calls every one, so it cannot drift silently.

use axum::Json;
use serde_json::{Value, json};

fn op(tag: &str, summary: &str, role: Option<&str>, body: Option<&str>, ok: (&str, &str)) -> Value {
    let mut o = json!({
        "tags": [tag],
        "summary": summary,
        "responses": {
            ok.0: { "description": ok.1, "content": { "application/json": { "schema": { "type": "object" } } } },
            "4XX": { "description": "The request was refused; the message says why and names the field.",
                     "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    });
    if let Some(r) = role {
        o["security"] = json!([{ "bearer": [] }]);
        o["description"] = json!(format!("Needs a token with role `{r}` or higher."));
    }
    if let Some(schema) = body {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    }
    o
}

fn number_param() -> Value {
    json!([{ "name": "number", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } }])
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}

/// Builds the document.
pub fn build() -> Value {
    let inc = "incidents";
    let mut paths = json!({
        "/": { "get": op("health", "Where to find things: post-mortems, the API, metrics (HTML)", None, None, ("200", "HTML")) },
        "/healthz": { "get": op("health", "Process is up", None, None, ("200", "ok")) },
        "/readyz": { "get": op("health", "Database is reachable", None, None, ("200", "ready")) },
        "/api/v1/openapi.json": { "get": op("meta", "This document", None, None, ("200", "OpenAPI document")) },
        "/api/v1/classify": { "post": op("severity", "Run the severity decision tree", Some("viewer"), Some("ClassifyRequest"), ("200", "Severity, basis and trace")) },
        "/api/v1/severities": { "get": op("severity", "The severity table in force", Some("viewer"), None, ("200", "Severity policies")) },
        "/api/v1/services": { "get": op("services", "Known services", Some("viewer"), None, ("200", "Services")) },
        "/api/v1/incidents": {
            "post": op(inc, "Declare an incident", Some("responder"), Some("DeclareRequest"), ("201", "The incident")),
            "get": {
                "tags": [inc], "summary": "List incidents, newest first", "security": [{ "bearer": [] }],
                "parameters": [
                    { "name": "status", "in": "query", "schema": { "type": "string" }, "description": "Comma-separated statuses, or `open`" },
                    { "name": "severity", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 4 } },
                    { "name": "service", "in": "query", "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500, "default": 50 } }
                ],
                "responses": { "200": { "description": "`{\"incidents\": [Incident]}`", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "incidents": { "type": "array", "items": { "$ref": "#/components/schemas/Incident" } } } } } } } }
            }
        },
        "/api/v1/incidents/{number}": {
            "get": op(inc, "Show an incident", Some("viewer"), None, ("200", "The incident")),
            "patch": op(inc, "Record descriptive fields", Some("responder"), Some("IncidentPatch"), ("200", "The incident"))
        },
        "/api/v1/incidents/{number}/severity": { "post": op(inc, "Change severity (explicit or from new signals)", Some("responder"), Some("SeverityRequest"), ("200", "The incident")) },
        "/api/v1/incidents/{number}/roles": { "post": op(inc, "Assign or remove a role", Some("responder"), Some("RoleRequest"), ("200", "The incident")) },
        "/api/v1/incidents/{number}/transition": { "post": op(inc, "Move through the lifecycle", Some("responder"), Some("TransitionRequest"), ("200", "The incident")) },
        "/api/v1/incidents/{number}/updates": { "post": op(inc, "Post a status update; restarts the cadence", Some("responder"), Some("UpdateRequest"), ("201", "The incident and the rendered update")) },
        "/api/v1/incidents/{number}/notes": { "post": op(inc, "Add a note or an action taken", Some("responder"), Some("NoteRequest"), ("201", "The appended events")) },
        "/api/v1/incidents/{number}/timeline": { "get": op(inc, "The append-only timeline", Some("viewer"), None, ("200", "`{\"events\": [...]}`")) },
        "/api/v1/incidents/{number}/alerts": { "get": op(inc, "The alerts linked to the incident (all of them; the timeline lists the first few of each storm), firing first, `?limit=` (default 1000, at most 10000)", Some("viewer"), None, ("200", "`{\"total\": n, \"alerts\": [...]}`")) },
        "/api/v1/incidents/{number}/checklists": { "get": op(inc, "Runbook checklists with their state", Some("viewer"), None, ("200", "Checklist items")) },
        "/api/v1/incidents/{number}/checklists/{item}/tick": { "post": op(inc, "Tick a checklist item", Some("responder"), None, ("200", "Checklist items")) },
        "/api/v1/incidents/{number}/messages": { "get": op(inc, "The runbook's messages rendered from the record", Some("viewer"), None, ("200", "Messages by kind")) },
        "/api/v1/incidents/{number}/postmortem": { "post": op(inc, "Draft the post-mortem into the configured folder (and commit it in a git work tree)", Some("responder"), None, ("201", "Path, commit and markdown of the draft")) },
        "/api/v1/incidents/{number}/ack": { "post": op(inc, "Acknowledge the page: stops escalation, records MTTA", Some("responder"), None, ("200", "The incident")) },
        "/api/v1/oncall": { "get": op("oncall", "Who is on call on every schedule (now or `?at=`), and the gaps of the next 7 days", Some("viewer"), None, ("200", "Schedules")) },
        "/api/v1/incidents/{number}/notifications": { "get": op(inc, "Notifications of the incident with delivery state, attempts and last error", Some("viewer"), None, ("200", "`{\"notifications\": [...]}`")) },
        "/metrics": { "get": op("health", "Prometheus metrics (text format)", None, None, ("200", "metrics")) },
        "/ack/{incident}/{person}/{expires}/{sig}": {
            "get": op("paging", "Signed one-click acknowledgement: the confirmation page (HTML)", None, None, ("200", "HTML")),
            "post": op("paging", "Signed one-click acknowledgement: acknowledge (HTML)", None, None, ("200", "HTML"))
        },
        "/api/v2/alerts": {
            "post": op("alerts", "Alertmanager API v2: a JSON array of alerts (Prometheus can send here directly). The bearer may also be an [[alert_sources]] secret", Some("responder"), None, ("200", "Stored; deduplicated by fingerprint")),
            "get": op("alerts", "Firing alerts in Alertmanager's `gettableAlert` shape, sorted by fingerprint (`amtool alert query` works): `filter=` label matchers (repeatable), `active`, `silenced`, `inhibited`, `unprocessed`, `receiver`; `limit=` (default 25000, at most 50000; a cut listing carries the `warroom-truncated` header). `status.silencedBy` names the silences muting each; the receiver is always `warroom`", Some("viewer"), None, ("200", "An array of alerts"))
        },
        "/api/v2/alerts/groups": { "get": op("alerts", "The same firing alerts and parameters as GET /api/v2/alerts, gathered into groups as warroom groups alerts into incidents (`[alerts] group_by`), each with its grouping labels and the receiver `warroom` (Grafana's alert-group view)", Some("viewer"), None, ("200", "An array of `{labels, receiver, alerts}`")) },
        "/api/v2/status": { "get": op("alerts", "Alertmanager's status shape (cluster disabled, version, uptime), for clients that check it first: Grafana's data source test, `amtool config show`", Some("viewer"), None, ("200", "Status")) },
        "/api/v2/receivers": { "get": op("alerts", "The one receiver alerts are listed with, `warroom`", Some("viewer"), None, ("200", "`[{\"name\": \"warroom\"}]`")) },
        "/api/v2/silences": {
            "get": op("alerts", "Silences and maintenance windows, Alertmanager's shape: the config's (`config-N`) and the API's, those that ended within 5 days too; `filter=` keeps those that have each matcher given (`amtool silence query` works)", Some("viewer"), None, ("200", "An array of silences with `status.state` active, pending or expired")),
            "post": op("alerts", "Make a silence (Alertmanager's body: matchers, startsAt, endsAt, createdBy, comment; `amtool silence add` works); matching alerts are stored but open no incident while it is active. With the `id` of an existing silence it changes it as Alertmanager does (`amtool silence update`): in place when the matchers stay and an active one keeps its start, else the old one expires and the answer names a new id (409 for a config silence)", Some("responder"), None, ("200", "`{\"silenceID\": ...}`"))
        },
        "/api/v2/silence/{id}": {
            "get": op("alerts", "One silence, made through the API or the config's `config-N`", Some("viewer"), None, ("200", "The silence")),
            "delete": op("alerts", "Expire a silence now; the firing alerts it held back are acted on within a second (409 for a config silence)", Some("responder"), None, ("200", "The silence, expired"))
        },
        "/hooks/alertmanager": { "post": op("alerts", "Alertmanager webhook payload, version 4. The bearer may also be an [[alert_sources]] secret", Some("responder"), None, ("200", "Stored; deduplicated by fingerprint")) },
        "/api/v1/alerts": { "get": op("alerts", "Alerts received, `?status=firing|resolved&limit=`", Some("viewer"), None, ("200", "`{\"alerts\": [...]}`")) },
        "/api/v1/monitors": {
            "get": op("monitors", "Monitors (config ones with `source: config`, API ones with `source: api`) with availability over the last 24 hours and 30 days", Some("viewer"), None, ("200", "Monitors")),
            "post": op("monitors", "Create a monitor (the `[[monitors]]` format as JSON); the scheduler starts it within a second", Some("responder"), Some("MonitorSpec"), ("201", "The monitor"))
        },
        "/api/v1/monitors/{id}": {
            "get": op("monitors", "One monitor", Some("viewer"), None, ("200", "The monitor")),
            "put": op("monitors", "Replace an API monitor (409 for a config monitor)", Some("responder"), Some("MonitorSpec"), ("200", "The monitor")),
            "delete": op("monitors", "Delete an API monitor; it stops being checked and its alert resolves (409 for a config monitor)", Some("responder"), None, ("204", "Deleted"))
        },
        "/api/v1/health": { "get": op("services", "Every service's health: HEALTHY, DEGRADED or UNHEALTHY, since when and why", Some("viewer"), None, ("200", "Health")) },
        "/api/v1/services/{slug}/health": { "get": op("services", "A service's health changes with their causes, newest first", Some("viewer"), None, ("200", "Changes")) },
        "/postmortems/": { "get": op("postmortems", "Published post-mortems: the index page (HTML)", None, None, ("200", "HTML")) },
        "/postmortems/{page}": { "get": op("postmortems", "One published post-mortem (HTML)", None, None, ("200", "HTML")) },
        "/api/v1/tokens": {
            "get": op("tokens", "List tokens (never secrets)", Some("admin"), None, ("200", "Tokens")),
            "post": op("tokens", "Create a token; the secret is in this response only", Some("admin"), Some("CreateToken"), ("201", "Token and secret"))
        },
        "/api/v1/tokens/{id}": { "delete": op("tokens", "Revoke a token", Some("admin"), None, ("204", "Revoked")) },
        "/hooks/git": { "post": {
            "tags": ["pipeline"],
            "summary": "Git push webhook (GitHub, Gitea, Forgejo): queues a follow-up pipeline run when the configured branch's post-mortem folder changed",
            "description": "Authenticated by the body's HMAC-SHA256 with the configured secret: `X-Hub-Signature-256: sha256=<hex>` (GitHub) or `X-Gitea-Signature: <hex>` (Gitea/Forgejo). The event comes from `X-GitHub-Event` or `X-Gitea-Event`. Redeliveries of one push get the same run.",
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PushEvent" } } } },
            "responses": {
                "200": { "description": "`{\"status\": \"pong\"}` for a ping", "content": { "application/json": { "schema": { "type": "object" } } } },
                "202": { "description": "`{\"status\": \"queued\", \"run\": N, \"duplicate\": bool}` (committed), or `{\"status\": \"ignored\", \"reason\": ...}`", "content": { "application/json": { "schema": { "type": "object" } } } },
                "4XX": { "description": "401: missing or wrong signature; 400: malformed payload (the field is named); 404: pipeline not configured or unknown repository",
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        } },
        "/api/v1/pipeline/runs": { "get": op("pipeline", "Pipeline runs, newest first, with status and progress (items done / total, cost)", Some("viewer"), None, ("200", "`{\"runs\": [...]}`")) },
        "/api/v1/pipeline/runs/{id}": { "get": op("pipeline", "One run with its log (`?after=<log id>` to follow it)", Some("viewer"), None, ("200", "`{\"run\": {...}, \"log\": [...]}`")) },
        "/api/v1/pipeline/approvals": { "post": op("pipeline", "Approve an item automation would not implement on its own, and queue a run; it goes through the same guardrails", Some("responder"), Some("ApprovalRequest"), ("201", "`{\"approval\": {...}, \"item\": {...}, \"run\": N}`; 404 when no post-mortem has the id, 409 when the item is already done")) }
    });
    if let Some(obj) = paths.as_object_mut() {
        for (path, item) in obj.iter_mut() {
            let mut params = Vec::new();
            if path.contains("{number}") {
                params.extend(number_param().as_array().cloned().unwrap_or_default());
            }
            if path.contains("{item}") {
                params.push(json!({ "name": "item", "in": "path", "required": true, "schema": { "type": "string" } }));
            }
            if path.contains("{page}") {
                params.push(json!({ "name": "page", "in": "path", "required": true, "schema": { "type": "string" } }));
            }
            if path.contains("{slug}") {
                params.push(json!({ "name": "slug", "in": "path", "required": true, "schema": { "type": "string" } }));
            }
            if path.contains("{sig}") {
                for (name, ty) in [
                    ("incident", "integer"),
                    ("person", "string"),
                    ("expires", "integer"),
                    ("sig", "string"),
                ] {
                    params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": ty } }));
                }
            }
            if path.contains("{id}") {
                params.push(json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }));
            }
            if !params.is_empty()
                && let Some(ops) = item.as_object_mut()
            {
                for op in ops.values_mut() {
                    op["parameters"] = json!(params);
                }
            }
        }
    }
    let signals = json!({ "type": "object", "additionalProperties": false, "properties": {
        "users_can_access": { "type": "boolean" }, "failing_percent": { "type": "number", "minimum": 0, "maximum": 100 },
        "recovering": { "type": "boolean" }, "user_action_or_data_loss": { "type": "boolean" },
        "latency_ratio": { "type": "number", "exclusiveMinimum": 0 } } });
    let impact = json!({ "type": "object", "properties": { "who": { "type": "string" }, "how_many": { "type": "string" }, "how_long": { "type": "string" } } });
    let status = json!({ "type": "string", "enum": ["declared", "investigating", "identified", "mitigating", "monitoring", "resolved", "closed"] });
    json!({
        "openapi": "3.1.0",
        "info": { "title": "warroom API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Incident response: declare, classify, coordinate, resolve. Errors are `{error, message, details}`." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": {
                    "error": { "type": "string" }, "message": { "type": "string" }, "details": {} } },
                "Signals": signals,
                "Impact": impact,
                "Status": status,
                "ClassifyRequest": { "type": "object", "properties": { "signals": { "$ref": "#/components/schemas/Signals" },
                    "severity": { "type": "integer", "minimum": 1, "maximum": 4 } } },
                "DeclareRequest": { "type": "object", "required": ["service", "summary"], "additionalProperties": false, "properties": {
                    "service": { "type": "string" }, "services": { "type": "array", "items": { "type": "string" } },
                    "summary": { "type": "string", "maxLength": 200 }, "severity": { "type": "integer", "minimum": 1, "maximum": 4 },
                    "signals": { "$ref": "#/components/schemas/Signals" }, "reporter": { "type": "string" },
                    "detected_at": { "type": "string", "format": "date-time" }, "public": { "type": "boolean" } } },
                "IncidentPatch": { "type": "object", "additionalProperties": false, "properties": {
                    "summary": { "type": "string" }, "root_cause": { "type": "string" }, "fix_applied": { "type": "string" },
                    "verification": { "type": "string" }, "impact": { "$ref": "#/components/schemas/Impact" }, "public": { "type": "boolean" } } },
                "SeverityRequest": { "type": "object", "additionalProperties": false, "properties": {
                    "severity": { "type": "integer", "minimum": 1, "maximum": 4 }, "signals": { "$ref": "#/components/schemas/Signals" }, "reason": { "type": "string" } } },
                "RoleRequest": { "type": "object", "required": ["role", "person"], "additionalProperties": false, "properties": {
                    "role": { "type": "string", "enum": ["commander", "technical_responder", "communication_lead", "on_call_manager"] },
                    "person": { "type": "string" }, "remove": { "type": "boolean" } } },
                "TransitionRequest": { "type": "object", "required": ["to"], "additionalProperties": false, "properties": {
                    "to": { "$ref": "#/components/schemas/Status" }, "note": { "type": "string" }, "root_cause": { "type": "string" },
                    "fix_applied": { "type": "string" }, "verification": { "type": "string" }, "impact": { "$ref": "#/components/schemas/Impact" } } },
                "UpdateRequest": { "type": "object", "required": ["current_action", "findings", "next_step"], "additionalProperties": false, "properties": {
                    "status": { "$ref": "#/components/schemas/Status" }, "current_action": { "type": "string" }, "findings": { "type": "string" }, "next_step": { "type": "string" } } },
                "NoteRequest": { "type": "object", "required": ["text"], "additionalProperties": false, "properties": {
                    "text": { "type": "string" }, "action": { "type": "boolean" } } },
                "ApprovalRequest": { "type": "object", "required": ["item"], "additionalProperties": false, "properties": {
                    "item": { "type": "string", "pattern": "^[0-9a-f]{12}$", "description": "Item id from `warroom postmortem todos`" } } },
                "PushEvent": { "type": "object", "required": ["ref"], "properties": {
                    "ref": { "type": "string", "example": "refs/heads/master" }, "after": { "type": "string" },
                    "repository": { "type": "object", "properties": { "full_name": { "type": "string" } } },
                    "commits": { "type": "array", "items": { "type": "object", "properties": {
                        "added": { "type": "array", "items": { "type": "string" } },
                        "modified": { "type": "array", "items": { "type": "string" } },
                        "removed": { "type": "array", "items": { "type": "string" } } } } } } },
                "MonitorSpec": { "type": "object", "required": ["id", "service", "interval_secs", "check"], "additionalProperties": false, "properties": {
                    "id": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$" }, "name": { "type": "string" }, "service": { "type": "string" },
                    "user_facing": { "type": "boolean" }, "interval_secs": { "type": "integer", "minimum": 1 }, "timeout_ms": { "type": "integer", "minimum": 1 },
                    "failures_to_down": { "type": "integer", "minimum": 1 }, "successes_to_up": { "type": "integer", "minimum": 1 },
                    "check": { "type": "object", "required": ["kind"], "description": "`{kind: http, url, method, headers, expected_status, keyword, json_path, json_value, cert_expiry_warn_days}`, `{kind: tcp, host, port}` or `{kind: dns, name, expected}`",
                        "properties": { "kind": { "type": "string", "enum": ["http", "tcp", "dns"] } } } } },
                "CreateToken": { "type": "object", "required": ["name", "role"], "properties": {
                    "name": { "type": "string" }, "role": { "type": "string", "enum": ["viewer", "responder", "admin"] } } },
                "Incident": { "type": "object", "required": ["number", "title", "severity", "severity_trace", "status", "channel", "services", "detected_at", "next_update_due"],
                    "properties": {
                        "number": { "type": "integer" }, "title": { "type": "string" }, "summary": { "type": "string" },
                        "severity": { "type": "integer" }, "severity_name": { "type": "string" }, "severity_basis": { "type": "string", "enum": ["decision_tree", "explicit"] },
                        "severity_trace": { "type": "array", "items": { "type": "object" } }, "status": { "$ref": "#/components/schemas/Status" },
                        "channel": { "type": "string" }, "services": { "type": "array", "items": { "type": "string" } },
                        "reporter": { "type": "string" }, "detected_at": { "type": "string", "format": "date-time" },
                        "declared_at": { "type": "string", "format": "date-time" }, "next_update_due": { "type": ["string", "null"], "format": "date-time" },
                        "missing_roles": { "type": "array", "items": { "type": "string" } }, "update_overdue": { "type": "boolean" },
                        "roles": { "type": "object" }, "impact": { "$ref": "#/components/schemas/Impact" }, "public": { "type": "boolean" } } }
            }
        }
    })
}
