//! A Slack stand-in on loopback that speaks Slack's documented wire format: Web API methods as
//! `POST /api/<method>` with form bodies (what Slack accepts for every method) and a bearer
//! token, answers of HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": "…"}`, and HTTP
//! 429 with `Retry-After` when rate limited; incoming webhooks as `POST /services/…` with a JSON
//! body, answered `ok` in plain text. Every call is recorded for the test to assert on.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// The bot token the stand-in accepts.
pub const TOKEN: &str = "xoxb-test-token";
/// The bot's user id (`auth.test`), which is the `creator` of the channels it creates.
pub const BOT_USER: &str = "UBOT";

/// One Web API call as Slack received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method, e.g. `chat.postMessage`.
    pub method: String,
    /// The form fields.
    pub form: HashMap<String, String>,
}

/// A channel in the stand-in's workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// `C…`.
    pub id: String,
    /// Name without `#`.
    pub name: String,
    /// Who created it.
    pub creator: String,
    /// Current topic.
    pub topic: String,
    /// Member user ids.
    pub members: Vec<String>,
    /// Posted messages, oldest first: the `chat.postMessage` fields, with `blocks` and
    /// `metadata` parsed.
    pub messages: Vec<Value>,
}

/// How the stand-in misbehaves, for the error tests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer the next N `chat.postMessage` calls with HTTP 429, `Retry-After: secs`.
    pub rate_limit: Option<(usize, u64)>,
    /// Answer every call as if the token were revoked.
    pub invalid_auth: bool,
    /// Sleep this long before answering anything.
    pub hang: Option<Duration>,
}

impl Faults {
    /// Uses up one of the rate-limited answers, if any are left: the `Retry-After` seconds.
    fn take_rate_limit(&mut self) -> Option<u64> {
        let (n, secs) = self.rate_limit.filter(|(n, _)| *n > 0)?;
        self.rate_limit = (n > 1).then_some((n - 1, secs));
        Some(secs)
    }
}

/// Everything the stand-in saw and holds.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Web API calls, in order (including refused ones).
    pub calls: Vec<Call>,
    /// Channels, in creation order.
    pub channels: Vec<Channel>,
    /// Bodies posted to the incoming webhook.
    pub webhook_posts: Vec<Value>,
    /// Users that exist.
    pub users: Vec<String>,
    /// Current faults.
    pub faults: Faults,
    next_ts: u64,
}

impl Workspace {
    /// The channel with this name.
    pub fn channel_named(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }
}

/// A running stand-in.
#[derive(Clone)]
pub struct SlackStandIn {
    /// `http://127.0.0.1:PORT/api`: the Web API base URL.
    pub api_url: String,
    /// The incoming webhook URL.
    pub webhook_url: String,
    /// The state, to inspect and to inject faults.
    pub workspace: Arc<Mutex<Workspace>>,
}

type Shared = Arc<Mutex<Workspace>>;

fn slack_error(code: &str) -> Response {
    Json(json!({ "ok": false, "error": code })).into_response()
}

/// A form field holding JSON (null when absent), or the error code Slack answers for a
/// malformed one (`invalid_<field>_format`).
fn json_field(form: &HashMap<String, String>, field: &str) -> Result<Value, String> {
    match form.get(field) {
        Some(v) => serde_json::from_str(v).map_err(|_| format!("invalid_{field}_format")),
        None => Ok(Value::Null),
    }
}

fn channel_json(c: &Channel) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "is_channel": true,
        "is_private": false,
        "is_archived": false,
        "creator": c.creator,
        "topic": { "value": c.topic, "creator": BOT_USER, "last_set": 0 },
        "num_members": c.members.len(),
    })
}

/// Slack's rules for channel names: lowercase letters, digits, `-` and `_`, at most 80.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

async fn api(
    State(ws): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        serde_json::from_slice::<HashMap<String, Value>>(&body)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect()
    } else {
        form_urlencoded(&body)
    };
    let hang = {
        let Ok(mut w) = ws.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        w.calls.push(Call {
            method: method.clone(),
            form: form.clone(),
        });
        w.faults.hang
    };
    if let Some(d) = hang {
        tokio::time::sleep(d).await;
    }
    let Ok(mut w) = ws.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth.is_empty() {
        return slack_error("not_authed");
    }
    if auth != format!("Bearer {TOKEN}") || w.faults.invalid_auth {
        return slack_error("invalid_auth");
    }
    let arg = |k: &str| form.get(k).cloned().unwrap_or_default();
    match method.as_str() {
        "auth.test" => {
            Json(json!({ "ok": true, "user_id": BOT_USER, "team_id": "T0001", "bot_id": "B0001" }))
                .into_response()
        }
        "conversations.create" => {
            let name = arg("name");
            if !valid_name(&name) {
                return slack_error("invalid_name_specials");
            }
            if w.channel_named(&name).is_some() {
                return slack_error("name_taken");
            }
            let c = Channel {
                id: format!("C{:08}", w.channels.len() + 1),
                name,
                creator: BOT_USER.into(),
                topic: String::new(),
                members: vec![BOT_USER.into()],
                messages: vec![],
            };
            let v = channel_json(&c);
            w.channels.push(c);
            Json(json!({ "ok": true, "channel": v })).into_response()
        }
        "conversations.invite" => {
            let users: Vec<String> = arg("users").split(',').map(str::to_owned).collect();
            if users.iter().any(|u| !w.users.contains(u)) {
                return slack_error("user_not_found");
            }
            let Some(c) = w.channels.iter_mut().find(|c| c.id == arg("channel")) else {
                return slack_error("channel_not_found");
            };
            let new: Vec<String> = users
                .into_iter()
                .filter(|u| !c.members.contains(u))
                .collect();
            if new.is_empty() {
                return slack_error("already_in_channel");
            }
            c.members.extend(new);
            let v = channel_json(c);
            Json(json!({ "ok": true, "channel": v })).into_response()
        }
        "conversations.setTopic" => {
            let Some(c) = w.channels.iter_mut().find(|c| c.id == arg("channel")) else {
                return slack_error("channel_not_found");
            };
            c.topic = arg("topic");
            let v = channel_json(c);
            Json(json!({ "ok": true, "channel": v })).into_response()
        }
        "conversations.list" => {
            let limit: usize = arg("limit").parse().unwrap_or(100).clamp(1, 1000);
            let start: usize = arg("cursor").parse().unwrap_or(0);
            let page: Vec<Value> = w
                .channels
                .iter()
                .skip(start)
                .take(limit)
                .map(channel_json)
                .collect();
            let next = if start + limit < w.channels.len() {
                (start + limit).to_string()
            } else {
                String::new()
            };
            Json(json!({ "ok": true, "channels": page, "response_metadata": { "next_cursor": next } })).into_response()
        }
        "conversations.history" => {
            let with_meta = arg("include_all_metadata") == "true";
            let Some(c) = w.channels.iter().find(|c| c.id == arg("channel")) else {
                return slack_error("channel_not_found");
            };
            let msgs: Vec<Value> = c
                .messages
                .iter()
                .rev()
                .map(|m| {
                    let mut m = json!({ "type": "message", "ts": m["ts"], "text": m["text"], "bot_id": "B0001", "metadata": m["metadata"] });
                    if !with_meta && let Some(o) = m.as_object_mut() {
                        o.remove("metadata");
                    }
                    m
                })
                .collect();
            Json(json!({ "ok": true, "messages": msgs, "has_more": false })).into_response()
        }
        "chat.postMessage" => {
            if let Some(secs) = w.faults.take_rate_limit() {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", secs.to_string())],
                    Json(json!({ "ok": false, "error": "ratelimited" })),
                )
                    .into_response();
            }
            if arg("text").is_empty() && arg("blocks").is_empty() {
                return slack_error("no_text");
            }
            let blocks = match json_field(&form, "blocks") {
                Ok(v) => v,
                Err(code) => return slack_error(&code),
            };
            let metadata = match json_field(&form, "metadata") {
                Ok(v) => v,
                Err(code) => return slack_error(&code),
            };
            w.next_ts += 1;
            let ts = format!("1768228200.{:06}", w.next_ts);
            let target = arg("channel");
            let Some(c) = w
                .channels
                .iter_mut()
                .find(|c| c.id == target || c.name == target.trim_start_matches('#'))
            else {
                return slack_error("channel_not_found");
            };
            let id = c.id.clone();
            let msg =
                json!({ "ts": ts, "text": arg("text"), "blocks": blocks, "metadata": metadata });
            c.messages.push(msg.clone());
            Json(json!({ "ok": true, "channel": id, "ts": ts, "message": msg })).into_response()
        }
        _ => slack_error("unknown_method"),
    }
}

async fn webhook(State(ws): State<Shared>, body: Bytes) -> Response {
    let Ok(mut w) = ws.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if w.faults.invalid_auth {
        return (StatusCode::FORBIDDEN, "invalid_token").into_response();
    }
    if let Some(secs) = w.faults.take_rate_limit() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "rate_limited",
        )
            .into_response();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v["text"].is_string() || v["blocks"].is_array() => {
            w.webhook_posts.push(v);
            (StatusCode::OK, "ok").into_response()
        }
        Ok(_) => (StatusCode::BAD_REQUEST, "no_text").into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
    }
}

fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl SlackStandIn {
    /// Starts a stand-in on `127.0.0.1:0` whose workspace has these users.
    pub async fn start(users: &[&str]) -> std::io::Result<SlackStandIn> {
        let workspace = Arc::new(Mutex::new(Workspace {
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            ..Workspace::default()
        }));
        let app = Router::new()
            .route("/api/{method}", post(api))
            .route("/services/T0001/B0001/{secret}", post(webhook))
            .with_state(workspace.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        tokio::spawn(async move { axum::serve(l, app).await });
        Ok(SlackStandIn {
            api_url: format!("http://{addr}/api"),
            webhook_url: format!("http://{addr}/services/T0001/B0001/webhook-secret"),
            workspace,
        })
    }

    /// Adds a channel somebody else created, to provoke `name_taken`.
    pub fn add_foreign_channel(&self, name: &str) {
        if let Ok(mut w) = self.workspace.lock() {
            let id = format!("C{:08}", w.channels.len() + 1);
            w.channels.push(Channel {
                id,
                name: name.into(),
                creator: "UHUMAN".into(),
                topic: String::new(),
                members: vec!["UHUMAN".into()],
                messages: vec![],
            });
        }
    }

    /// Runs `f` on the workspace.
    pub fn with<R>(&self, f: impl FnOnce(&mut Workspace) -> R) -> R {
        let mut w = self.workspace.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    }
}
