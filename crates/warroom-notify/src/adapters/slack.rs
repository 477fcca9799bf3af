//! Slack: an incoming webhook, or the Web API with a bot token.
//!
//! **Incoming webhook**: every message is one POST of `{text, blocks}` to the webhook URL, which
//! names its channel itself.
//!
//! **Web API** (`Authorization: Bearer xoxb-…`): a notification about an incident goes to that
//! incident's own channel, named by the runbook (`incident-YYYYMMDD-<service>`). Before the first
//! post the adapter creates it (`conversations.create`, with `-2`, `-3`… when the name is taken),
//! invites the responders who have a `slack_user`, and sets the topic to severity and status;
//! each later message re-checks both and changes only what differs. Messages without an incident
//! go to the configured fallback `channel`.
//!
//! **What Slack can and cannot deduplicate.** Slack has no idempotency key for
//! `chat.postMessage`. The adapter attaches the outbox idempotency key as message metadata
//! (`event_type = warroom_notification`) and marks every post it starts in the store; when an
//! earlier attempt of the same message started (a crash, or a timeout whose request may have
//! landed), it reads the channel's recent history first and skips the post if a message carrying
//! that key is there. So Web API posts are effectively exactly-once (given the `channels:history`
//! scope; without it the check is skipped and a retry may post twice). Incoming webhooks accept no
//! metadata and cannot be read back: a crash between Slack's 200 and our commit re-sends there.
//! Channel creation is made crash-safe in the store (see `warroom_store::rooms`).
//!
//! **Errors.** Slack answers HTTP 200 with `{"ok": false, "error": "…"}`. `ratelimited` and HTTP
//! 429 retry after Slack's `Retry-After`; 5xx, timeouts and Slack's own transient errors retry
//! with backoff; token, scope and channel errors fail at once with what to change.
//!
//! **Pacing.** Slack allows about one message per second per channel: posts to one Slack channel
//! are spaced by [`Slack::with_min_interval`] (one second) inside the adapter. The dispatcher
//! runs each warroom channel on its own, so a slow Slack never delays another channel's page.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{sync::OnceCell, time::Instant};
use warroom_domain::notify::{Notification, NotificationKind};
use warroom_store::{OutboxMessage, Store};

use super::webhook::{classify_status, retry_after};
use crate::{Adapter, DeliveryError};

/// Slack's own base URL for the Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The `event_type` of the metadata carrying the idempotency key.
pub const METADATA_EVENT_TYPE: &str = "warroom_notification";

/// Slack channel names: at most 80 characters.
const MAX_NAME: usize = 80;

/// How a Slack channel is reached.
#[derive(Clone)]
pub enum SlackMode {
    /// An incoming webhook URL (itself a secret: anyone holding it can post).
    Webhook {
        /// The `https://hooks.slack.com/services/…` URL.
        url: String,
    },
    /// The Web API with a bot token.
    Api {
        /// The `xoxb-…` token.
        token: String,
        /// Base URL, `https://slack.com/api` unless a test points it elsewhere.
        api_url: String,
        /// Where messages without an incident go (a channel id such as `C0123`, or a name).
        fallback_channel: Option<String>,
        /// warroom person → Slack user id, for invitations and mentions.
        users: HashMap<String, String>,
    },
}

impl fmt::Debug for SlackMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlackMode::Webhook { .. } => f
                .debug_struct("Webhook")
                .field("url", &"[redacted]")
                .finish(),
            SlackMode::Api {
                api_url,
                fallback_channel,
                users,
                ..
            } => f
                .debug_struct("Api")
                .field("token", &"[redacted]")
                .field("api_url", api_url)
                .field("fallback_channel", fallback_channel)
                .field("users", users)
                .finish(),
        }
    }
}

/// One Slack channel of warroom's config.
pub struct Slack {
    mode: SlackMode,
    store: Arc<dyn Store>,
    client: reqwest::Client,
    timeout: Duration,
    min_interval: Duration,
    /// Slack channel id → when the next post may go out.
    pacer: Mutex<HashMap<String, Instant>>,
    bot_user: OnceCell<String>,
}

impl fmt::Debug for Slack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slack")
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A Web API answer with `ok: false`.
struct SlackError {
    code: String,
    needed: Option<String>,
    retry_after: Option<Duration>,
}

enum CallError {
    /// Slack answered `ok: false`; the caller decides what the code means for it.
    Slack(SlackError),
    Delivery(DeliveryError),
}

impl From<DeliveryError> for CallError {
    fn from(e: DeliveryError) -> Self {
        CallError::Delivery(e)
    }
}

/// Slack's mrkdwn needs exactly these three escaped; everything else is literal.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::IncidentDeclared => "Declared",
        NotificationKind::UpdatePosted => "Update",
        NotificationKind::SeverityChanged => "Severity changed",
        NotificationKind::Escalation => "Escalation",
        NotificationKind::IncidentResolved => "Resolved",
        NotificationKind::Page => "Page",
        NotificationKind::Reminder => "Reminder",
        NotificationKind::Info => "Info",
    }
}

/// The Block Kit blocks and the plain-text fallback (`text`, shown in notifications and by
/// clients that cannot render blocks) for a notification. `mention` is a Slack user id to
/// address, for pages.
pub fn render(n: &Notification, mention: Option<&str>) -> (String, Value) {
    let mention = mention.map(|u| format!("<@{u}> ")).unwrap_or_default();
    // Header blocks are plain text of at most 150 characters; section text at most 3000.
    let header = truncate(&n.title, 150);
    let body = truncate(&format!("{mention}{}", escape(&n.text)), 3000);
    let mut context = vec![kind_label(n.kind).to_owned()];
    if let Some(s) = n.severity {
        context.push(format!("Sev{}", s.level()));
    }
    if let Some(i) = n.incident {
        context.push(format!("incident {i}"));
    }
    context.push("warroom".to_owned());
    let blocks = json!([
        { "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } },
        { "type": "section", "text": { "type": "mrkdwn", "text": body } },
        { "type": "context", "elements": [ { "type": "mrkdwn", "text": context.join(" · ") } ] },
    ]);
    let fallback = truncate(
        &format!("{mention}{}\n{}", escape(&n.title), escape(&n.text)),
        4000,
    );
    (fallback, blocks)
}

/// The channel name for an incident: the runbook's `#incident-YYYYMMDD-<service>` without `#`,
/// in the characters Slack allows, with room for a `-NN` suffix.
pub fn channel_name(incident_channel: &str) -> String {
    let cleaned: String = incident_channel
        .trim_start_matches('#')
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.chars().take(MAX_NAME - 4).collect()
}

fn with_suffix(base: &str, k: u32) -> String {
    if k <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{k}")
    }
}

/// Which attempt of `base` a reserved name is: `base` is 1, `base-2` is 2.
fn suffix_of(base: &str, name: &str) -> u32 {
    name.strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|k| k.parse().ok())
        .unwrap_or(1)
}

/// What to tell the user for a Slack error code, or `None` when it is worth retrying.
fn permanent_advice(code: &str, needed: Option<&str>) -> Option<String> {
    Some(match code {
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired"
        | "no_permission" | "ekm_access_denied" => format!(
            "Slack rejected the bot token ({code}); put a valid bot token (xoxb-…) of an installed app into the channel's token_env or token_file"
        ),
        "missing_scope" => format!(
            "the Slack app lacks the `{}` scope (missing_scope); add it under OAuth & Permissions and reinstall the app",
            needed.unwrap_or("required")
        ),
        "channel_not_found" => "Slack has no channel by that id that the bot can see (channel_not_found); check the channel's `channel` setting, or invite the bot to private channels".to_owned(),
        "not_in_channel" => "the bot is not a member of the Slack channel (not_in_channel); invite it with /invite @<app> or give the app chat:write.public".to_owned(),
        "is_archived" => "the Slack channel is archived (is_archived); unarchive it or point the channel setting elsewhere".to_owned(),
        "restricted_action" => "the Slack workspace does not let the bot do this (restricted_action); a workspace admin must allow apps to create channels and post".to_owned(),
        "invalid_name" | "invalid_name_specials" | "invalid_name_maxlength" | "invalid_name_required" => format!(
            "Slack refused the channel name ({code}); check the service slug"
        ),
        "msg_too_long" | "invalid_blocks" | "invalid_blocks_format" | "invalid_arguments" | "invalid_form_data" | "too_many_attachments" => format!(
            "Slack refused the message ({code}); this is a warroom bug, please report it"
        ),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" | "ratelimited" | "team_added_to_org" => return None,
        other => format!("Slack refused the request ({other})"),
    })
}

fn to_delivery(method: &str, e: SlackError) -> DeliveryError {
    match permanent_advice(&e.code, e.needed.as_deref()) {
        Some(advice) => DeliveryError::Permanent(format!("Slack {method}: {advice}")),
        None => DeliveryError::Retry {
            error: format!("Slack {method} answered {}", e.code),
            retry_after: e.retry_after,
        },
    }
}

fn transport_error(what: &str, timeout: Duration, e: &reqwest::Error) -> DeliveryError {
    DeliveryError::Retry {
        error: if e.is_timeout() {
            format!("Slack {what} timed out after {timeout:?}")
        } else {
            // reqwest's message can carry the URL, which for webhooks is the secret.
            format!(
                "Slack {what} unreachable ({})",
                if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                }
            )
        },
        retry_after: None,
    }
}

impl Slack {
    /// A Slack channel. The store keeps each incident's Slack channel and the post markers;
    /// `client` is shared across adapters so connections are reused.
    pub fn new(
        mode: SlackMode,
        store: Arc<dyn Store>,
        timeout: Duration,
        client: reqwest::Client,
    ) -> Self {
        Slack {
            mode,
            store,
            client,
            timeout,
            min_interval: Duration::from_secs(1),
            pacer: Mutex::new(HashMap::new()),
            bot_user: OnceCell::new(),
        }
    }

    /// Replaces the one-second spacing of posts to one Slack channel.
    pub fn with_min_interval(mut self, min_interval: Duration) -> Self {
        self.min_interval = min_interval;
        self
    }

    /// Waits (at most `min_interval`) until `room` may receive the next post, and books the slot.
    async fn pace(&self, room: &str) {
        let wait = {
            let mut slots = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // Slots in the past constrain nothing; dropping them keeps one entry per active room.
            slots.retain(|_, t| *t > now);
            let at = slots.get(room).copied().unwrap_or(now);
            slots.insert(room.to_owned(), at + self.min_interval);
            at - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    async fn call(&self, method: &str, form: &[(&str, String)]) -> Result<Value, CallError> {
        let SlackMode::Api { token, api_url, .. } = &self.mode else {
            return Err(DeliveryError::Permanent("Web API call in webhook mode".into()).into());
        };
        let resp = self
            .client
            .post(format!("{}/{method}", api_url.trim_end_matches('/')))
            .timeout(self.timeout)
            .bearer_auth(token)
            .form(form)
            .send()
            .await
            .map_err(|e| transport_error(method, self.timeout, &e))?;
        // Slack also answers `ok: false, error: ratelimited` with a 200 and a Retry-After.
        let ra = retry_after(resp.headers());
        match classify_status(resp.status(), resp.headers(), &format!("Slack {method}")) {
            Ok(()) => {}
            Err(retry @ DeliveryError::Retry { .. }) => return Err(retry.into()),
            Err(DeliveryError::Permanent(_)) => {
                return Err(DeliveryError::Permanent(format!(
                    "Slack {method} answered HTTP {}; check the channel's api_url",
                    resp.status().as_u16()
                ))
                .into());
            }
        }
        let body: Value = resp.json().await.map_err(|_| DeliveryError::Retry {
            error: format!("Slack {method} answered something that is not JSON"),
            retry_after: None,
        })?;
        if body["ok"].as_bool() == Some(true) {
            return Ok(body);
        }
        Err(CallError::Slack(SlackError {
            code: body["error"].as_str().unwrap_or("unknown_error").to_owned(),
            needed: body["needed"].as_str().map(str::to_owned),
            retry_after: ra,
        }))
    }

    /// [`Slack::call`] where every `ok: false` is a delivery error.
    async fn call_or_fail(
        &self,
        method: &str,
        form: &[(&str, String)],
    ) -> Result<Value, DeliveryError> {
        match self.call(method, form).await {
            Ok(v) => Ok(v),
            Err(CallError::Slack(e)) => Err(to_delivery(method, e)),
            Err(CallError::Delivery(e)) => Err(e),
        }
    }

    async fn bot_user(&self) -> Result<&str, DeliveryError> {
        self.bot_user
            .get_or_try_init(|| async {
                let v = self.call_or_fail("auth.test", &[]).await?;
                Ok(v["user_id"].as_str().unwrap_or_default().to_owned())
            })
            .await
            .map(String::as_str)
    }

    /// The public channel named `name` that our bot created, if there is one (crash recovery).
    async fn find_own_channel(&self, name: &str) -> Result<Option<String>, DeliveryError> {
        let me = self.bot_user().await?.to_owned();
        let mut cursor = String::new();
        // 20 pages of 200: 4,000 channels, beyond which recovery gives up and takes a new name.
        for _ in 0..20 {
            let mut form = vec![
                ("types", "public_channel".to_owned()),
                ("exclude_archived", "true".to_owned()),
                ("limit", "200".to_owned()),
            ];
            if !cursor.is_empty() {
                form.push(("cursor", cursor.clone()));
            }
            let v = self.call_or_fail("conversations.list", &form).await?;
            for c in v["channels"].as_array().into_iter().flatten() {
                if c["name"] == name && c["creator"] == me.as_str() {
                    return Ok(c["id"].as_str().map(str::to_owned));
                }
            }
            cursor = v["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    /// The incident's Slack channel id, creating the channel the first time.
    async fn ensure_room(
        &self,
        warroom_channel: &str,
        incident: i64,
        incident_channel: &str,
    ) -> Result<String, DeliveryError> {
        let store_err = |e: warroom_store::StoreError| DeliveryError::Retry {
            error: format!("storing the Slack channel failed: {e}"),
            retry_after: None,
        };
        let existing = self
            .store
            .chat_room(warroom_channel, incident)
            .await
            .map_err(store_err)?;
        if let Some(id) = existing.as_ref().and_then(|r| r.room_id.clone()) {
            return Ok(id);
        }
        let base = channel_name(incident_channel);
        // A reservation left by an earlier attempt may name a channel that attempt created
        // before it could record the id.
        let mut maybe_ours = existing.is_some();
        let mut name = match existing {
            Some(r) => r.name,
            None => {
                self.store
                    .reserve_chat_room(
                        warroom_channel,
                        incident,
                        &base,
                        time::OffsetDateTime::now_utc(),
                    )
                    .await
                    .map_err(store_err)?
                    .name
            }
        };
        // 50 names taken by other channels on one day for one service means something is wrong.
        for _ in 0..50 {
            match self
                .call(
                    "conversations.create",
                    &[("name", name.clone()), ("is_private", "false".to_owned())],
                )
                .await
            {
                Ok(v) => {
                    // Bound for good, so an empty id would fail every later post.
                    let Some(id) = v["channel"]["id"].as_str().filter(|id| !id.is_empty()) else {
                        return Err(DeliveryError::Retry {
                            error: "Slack conversations.create answered ok without a channel id"
                                .into(),
                            retry_after: None,
                        });
                    };
                    let id = id.to_owned();
                    self.store
                        .bind_chat_room(warroom_channel, incident, &id)
                        .await
                        .map_err(store_err)?;
                    tracing::info!(incident.number = incident, slack.channel = %id, slack.name = %name, "created the incident's Slack channel");
                    return Ok(id);
                }
                Err(CallError::Slack(e)) if e.code == "name_taken" => {
                    let own = if maybe_ours {
                        match self.find_own_channel(&name).await {
                            Ok(own) => own,
                            // Without channels:read the interrupted attempt's channel cannot be
                            // found; a second channel beats no message.
                            Err(DeliveryError::Permanent(e)) => {
                                tracing::warn!(incident.number = incident, error = %e, "cannot look for the Slack channel an interrupted attempt may have created; taking the next name");
                                None
                            }
                            Err(e) => return Err(e),
                        }
                    } else {
                        None
                    };
                    if let Some(id) = own
                        && self
                            .store
                            .chat_room_owner(warroom_channel, &id)
                            .await
                            .map_err(store_err)?
                            .is_none()
                    {
                        self.store
                            .bind_chat_room(warroom_channel, incident, &id)
                            .await
                            .map_err(store_err)?;
                        tracing::info!(incident.number = incident, slack.channel = %id, "adopted the Slack channel an interrupted attempt created");
                        return Ok(id);
                    }
                    name = with_suffix(&base, suffix_of(&base, &name) + 1);
                    self.store
                        .rename_chat_room(warroom_channel, incident, &name)
                        .await
                        .map_err(store_err)?;
                    maybe_ours = false;
                }
                Err(CallError::Slack(e)) => return Err(to_delivery("conversations.create", e)),
                Err(CallError::Delivery(e)) => {
                    // The create may have landed; the retry must check before taking a new name.
                    return Err(e);
                }
            }
        }
        Err(DeliveryError::Permanent(format!(
            "Slack: 50 channel names starting with {base} are taken; archive old incident channels"
        )))
    }

    /// Invites responders not invited yet, and sets the topic when it changed.
    async fn sync_room(
        &self,
        warroom_channel: &str,
        incident: i64,
        room: &str,
        users: &HashMap<String, String>,
    ) -> Result<(), DeliveryError> {
        let store_err = |e: warroom_store::StoreError| DeliveryError::Retry {
            error: format!("reading the incident for Slack failed: {e}"),
            retry_after: None,
        };
        let inc = self.store.incident(incident).await.map_err(store_err)?;
        let state = self
            .store
            .chat_room(warroom_channel, incident)
            .await
            .map_err(store_err)?;
        let mut members = state
            .as_ref()
            .map(|s| s.members.clone())
            .unwrap_or_default();
        let old_topic = state.and_then(|s| s.topic);

        let mut people: Vec<String> = inc
            .roles
            .commander
            .iter()
            .chain(inc.roles.communication_lead.iter())
            .chain(inc.roles.on_call_manager.iter())
            .chain(inc.roles.technical_responders.iter())
            .cloned()
            .collect();
        for m in self
            .store
            .outbox_for_incident(incident)
            .await
            .map_err(store_err)?
        {
            if m.notification.kind == NotificationKind::Page
                && let Some(r) = m.recipient
            {
                people.push(r);
            }
        }
        let mut invite: Vec<String> = people
            .iter()
            .filter_map(|p| users.get(p).cloned())
            .filter(|u| !members.contains(u))
            .collect();
        invite.sort();
        invite.dedup();
        let mut changed = false;
        if !invite.is_empty() {
            match self
                .call(
                    "conversations.invite",
                    &[("channel", room.to_owned()), ("users", invite.join(","))],
                )
                .await
            {
                Ok(_) => {}
                // Partly done or not possible for someone: the message matters more.
                Err(CallError::Slack(e))
                    if matches!(
                        e.code.as_str(),
                        "already_in_channel"
                            | "user_not_found"
                            | "cant_invite_self"
                            | "user_is_restricted"
                            | "cant_invite"
                    ) =>
                {
                    tracing::warn!(incident.number = incident, slack.error = %e.code, "some responders could not be invited to the Slack channel; check their slack_user ids");
                }
                Err(CallError::Slack(e)) => return Err(to_delivery("conversations.invite", e)),
                Err(CallError::Delivery(e)) => return Err(e),
            }
            members.extend(invite);
            changed = true;
        }
        // Slack topics are at most 250 characters.
        let topic = truncate(
            &format!(
                "Sev{} · {} · {}",
                inc.severity.level(),
                inc.status.as_str(),
                inc.title
            ),
            250,
        );
        if old_topic.as_deref() != Some(topic.as_str()) {
            self.call_or_fail(
                "conversations.setTopic",
                &[("channel", room.to_owned()), ("topic", topic.clone())],
            )
            .await?;
            changed = true;
        }
        if changed {
            self.store
                .record_chat_room_state(warroom_channel, incident, Some(&topic), &members)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// True when a message carrying `key` is among the room's recent messages.
    async fn already_posted(&self, room: &str, key: &str) -> Result<bool, DeliveryError> {
        let v = self
            .call_or_fail(
                "conversations.history",
                &[
                    ("channel", room.to_owned()),
                    ("limit", "100".to_owned()),
                    ("include_all_metadata", "true".to_owned()),
                ],
            )
            .await?;
        Ok(v["messages"].as_array().into_iter().flatten().any(|m| {
            m["metadata"]["event_type"] == METADATA_EVENT_TYPE
                && m["metadata"]["event_payload"]["idempotency_key"] == key
        }))
    }

    async fn deliver_api(
        &self,
        message: &OutboxMessage,
        fallback_channel: Option<&str>,
        users: &HashMap<String, String>,
    ) -> Result<(), DeliveryError> {
        let n = &message.notification;
        let room = match (message.incident.or(n.incident), &n.incident_channel) {
            (Some(incident), Some(name)) => {
                let room = self.ensure_room(&message.channel, incident, name).await?;
                self.sync_room(&message.channel, incident, &room, users)
                    .await?;
                room
            }
            _ => fallback_channel.map(str::to_owned).ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "Slack channel `{}` got a message without an incident and has no fallback; set `channel` (e.g. \"C0123456\") on it in the config",
                    message.channel
                ))
            })?,
        };
        let first = self
            .store
            .begin_chat_post(
                &message.channel,
                &message.idempotency_key,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|e| DeliveryError::Retry {
                error: format!("recording the Slack post failed: {e}"),
                retry_after: None,
            })?;
        if !first {
            match self.already_posted(&room, &message.idempotency_key).await {
                Ok(true) => {
                    tracing::info!(
                        outbox.id = message.id,
                        "Slack already has this message; not posting it again"
                    );
                    return Ok(());
                }
                Ok(false) => {}
                // Without channels:history (or access to the history) the check cannot be
                // made; posting again beats not posting at all.
                Err(DeliveryError::Permanent(e)) => {
                    tracing::warn!(outbox.id = message.id, error = %e, "cannot check Slack for an earlier post of this message; posting it, possibly twice");
                }
                Err(e) => return Err(e),
            }
        }
        let mention = message
            .recipient
            .as_ref()
            .filter(|_| n.kind == NotificationKind::Page)
            .and_then(|p| users.get(p))
            .map(String::as_str);
        let (text, blocks) = render(n, mention);
        let metadata = json!({
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {
                "idempotency_key": message.idempotency_key,
                "incident": message.incident.unwrap_or_default(),
                "kind": kind_label(n.kind),
            }
        });
        self.pace(&room).await;
        // A 429 here reschedules this outbox row by Slack's Retry-After; the channel's later
        // messages queue behind it in the outbox, so nothing else needs to remember it.
        self.call_or_fail(
            "chat.postMessage",
            &[
                ("channel", room),
                ("text", text),
                ("blocks", blocks.to_string()),
                ("metadata", metadata.to_string()),
                ("unfurl_links", "false".to_owned()),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn deliver_webhook(&self, url: &str, n: &Notification) -> Result<(), DeliveryError> {
        let (text, blocks) = render(n, None);
        self.pace(url).await;
        let resp = self
            .client
            .post(url)
            .timeout(self.timeout)
            .json(&json!({ "text": text, "blocks": blocks }))
            .send()
            .await
            .map_err(|e| transport_error("webhook", self.timeout, &e))?;
        let status = resp.status();
        let outcome = classify_status(status, resp.headers(), "Slack webhook");
        if outcome.is_ok() {
            return Ok(());
        }
        // Incoming webhooks answer errors as short plain-text codes (`invalid_token`,
        // `channel_not_found`, `no_service`…).
        let code: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect();
        if let Err(DeliveryError::Retry { error, retry_after }) = outcome {
            return Err(DeliveryError::Retry {
                error: format!("{error} {code}"),
                retry_after,
            });
        }
        Err(DeliveryError::Permanent(format!(
            "Slack webhook answered HTTP {} {code}; the webhook URL is revoked or its channel is gone: create a new incoming webhook and update the channel's webhook_url_env or webhook_url_file",
            status.as_u16()
        )))
    }
}

#[async_trait]
impl Adapter for Slack {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        let work = async {
            match &self.mode {
                SlackMode::Webhook { url } => {
                    self.deliver_webhook(url, &message.notification).await
                }
                SlackMode::Api {
                    fallback_channel,
                    users,
                    ..
                } => {
                    self.deliver_api(message, fallback_channel.as_deref(), users)
                        .await
                }
            }
        };
        // A first message makes up to seven calls, each with its own timeout; the whole must
        // end well inside the dispatcher's 60 s lease, or a second dispatcher could take it over.
        let deadline = (self.timeout * 4).min(Duration::from_secs(45));
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(DeliveryError::Retry {
                error: format!("Slack did not finish within {deadline:?}"),
                retry_after: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_the_runbook_and_slack_rules() {
        assert_eq!(
            channel_name("#incident-20260111-api"),
            "incident-20260111-api"
        );
        assert_eq!(channel_name("#Incident 2026.01"), "incident-2026-01");
        let long = format!("#incident-20260111-{}", "x".repeat(100));
        assert_eq!(channel_name(&long).len(), MAX_NAME - 4);
        let base = "incident-20260111-api";
        assert_eq!(suffix_of(base, base), 1);
        assert_eq!(suffix_of(base, "incident-20260111-api-7"), 7);
        assert_eq!(with_suffix(base, 2), "incident-20260111-api-2");
    }

    #[test]
    fn errors_that_need_a_person_say_what_to_change() {
        let e = to_delivery(
            "chat.postMessage",
            SlackError {
                code: "invalid_auth".into(),
                needed: None,
                retry_after: None,
            },
        );
        assert!(
            matches!(&e, DeliveryError::Permanent(m) if m.contains("token_env")),
            "{e}"
        );
        let e = to_delivery(
            "chat.postMessage",
            SlackError {
                code: "ratelimited".into(),
                needed: None,
                retry_after: Some(Duration::from_secs(7)),
            },
        );
        assert_eq!(
            e,
            DeliveryError::Retry {
                error: "Slack chat.postMessage answered ratelimited".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let e = to_delivery(
            "conversations.create",
            SlackError {
                code: "missing_scope".into(),
                needed: Some("channels:manage".into()),
                retry_after: None,
            },
        );
        assert!(e.to_string().contains("`channels:manage`"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let m = SlackMode::Api {
            token: "xoxb-very-secret".into(),
            api_url: DEFAULT_API_URL.into(),
            fallback_channel: None,
            users: HashMap::new(),
        };
        let w = SlackMode::Webhook {
            url: "https://hooks.slack.com/services/T/B/secret".into(),
        };
        let d = format!("{m:?} {w:?}");
        assert!(!d.contains("secret"), "{d}");
    }
}
