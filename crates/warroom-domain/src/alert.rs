//! Alerts from Prometheus-style sources, as Alertmanager understands them.
//!
//! Two wire formats come in: the Alertmanager API v2 body (`POST /api/v2/alerts`, a JSON array of
//! `postableAlert`) that Prometheus and other senders use, and the Alertmanager webhook payload
//! (version 4) that an Alertmanager receiver posts. Both are parsed into [`Alert`], whose identity
//! is the [`Fingerprint`] of its labels, computed exactly as Alertmanager does so that ids shown in
//! Alertmanager's UI and in warroom agree.
//!
//! The parsers walk a `serde_json::Value` by hand instead of deriving `Deserialize`, because the
//! errors must name the JSON path of the problem (`[3].labels: missing`) for the sender to fix it;
//! serde's derived errors only give a line and column.
//!
//! Also here: firing/resolved state, grouping into incidents, severity from a label, the
//! runbook's common incident types with their playbooks, and silence matchers.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::monitor::FailureKind;
use crate::{DomainError, ServiceSlug, Severity};

/// Label or annotation names to values. Sorted by name, which is the order the fingerprint needs.
pub type LabelSet = BTreeMap<String, String>;

/// The label every Prometheus alert carries.
pub const ALERTNAME: &str = "alertname";

// ---------------------------------------------------------------------------------------------
// Fingerprint

/// An alert's identity: a hash of its label set, as Prometheus' `model.LabelSet.Fingerprint()`.
///
/// Displayed as 16 lowercase hex digits, the form Alertmanager prints in webhooks and its UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Cannot occur in UTF-8, so `{a="bc"}` and `{ab="c"}` never hash the same.
const SEPARATOR: u8 = 0xff;

/// FNV-1a 64 over each name and value, each followed by 0xff, in name order. An empty set hashes
/// to the FNV offset basis, as in Prometheus.
pub fn fingerprint(labels: &LabelSet) -> Fingerprint {
    let mut h = FNV_OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels {
        feed(name.as_bytes());
        feed(&[SEPARATOR]);
        feed(value.as_bytes());
        feed(&[SEPARATOR]);
    }
    Fingerprint(h)
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Fingerprint {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            u64::from_str_radix(s, 16)
                .map(Fingerprint)
                .map_err(|e| DomainError::invalid("fingerprint", e.to_string()))
        } else {
            Err(DomainError::invalid(
                "fingerprint",
                format!(
                    "`{s}` is not a fingerprint; expected 16 hex digits like `1a30ba71cca2921f`"
                ),
            ))
        }
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> String {
        f.to_string()
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// Go's zero `time.Time`, which Alertmanager writes for "no end time" on firing alerts.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Serde for optional times as Alertmanager writes them: `None` is Go's zero time.
mod go_time {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.format(&Rfc3339).map_err(serde::ser::Error::custom)?),
            None => s.serialize_str(GO_ZERO_TIME),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(raw) => parse_time(&raw).map_err(serde::de::Error::custom),
        }
    }
}

/// One element of the Alertmanager API v2 `POST /api/v2/alerts` body (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostableAlert {
    /// Identifying labels; required and non-empty.
    pub labels: LabelSet,
    /// Extra information that does not identify the alert (`summary`, `description`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: LabelSet,
    /// When the alert started; the receiver's `now` when absent.
    #[serde(
        rename = "startsAt",
        default,
        with = "go_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub starts_at: Option<OffsetDateTime>,
    /// When the alert ends (or ended); absent while the sender does not know.
    #[serde(
        rename = "endsAt",
        default,
        with = "go_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub ends_at: Option<OffsetDateTime>,
    /// Link back to the rule that produced the alert.
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
}

/// `firing` or `resolved`, as the webhook writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Still happening.
    Firing,
    /// Ended: `endsAt` is set and not in the future.
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert of an Alertmanager webhook payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookAlert {
    /// State when Alertmanager sent it.
    pub status: AlertState,
    /// Identifying labels.
    pub labels: LabelSet,
    /// Extra information.
    #[serde(default)]
    pub annotations: LabelSet,
    /// When the alert started.
    #[serde(rename = "startsAt", with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it ended; `None` is written as Go's zero time, as Alertmanager does.
    #[serde(rename = "endsAt", default, with = "go_time")]
    pub ends_at: Option<OffsetDateTime>,
    /// Link back to the rule that produced the alert.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    /// Alertmanager's fingerprint, as sent. Kept verbatim: other senders (Grafana) hash
    /// differently, and the sender's id is what its UI shows.
    #[serde(default)]
    pub fingerprint: String,
}

/// The Alertmanager webhook payload, version 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// Always `"4"`.
    pub version: String,
    /// Identifies the alert group in Alertmanager (stable across notifications of one group).
    #[serde(rename = "groupKey")]
    pub group_key: String,
    /// Alerts left out because of the receiver's `max_alerts`.
    #[serde(rename = "truncatedAlerts", default)]
    pub truncated_alerts: u64,
    /// `resolved` only when every alert of the group is resolved.
    pub status: AlertState,
    /// The receiver name in Alertmanager's configuration.
    pub receiver: String,
    /// The labels the group was formed by.
    #[serde(rename = "groupLabels", default)]
    pub group_labels: LabelSet,
    /// Labels shared by all alerts.
    #[serde(rename = "commonLabels", default)]
    pub common_labels: LabelSet,
    /// Annotations shared by all alerts.
    #[serde(rename = "commonAnnotations", default)]
    pub common_annotations: LabelSet,
    /// Where the sending Alertmanager is reachable.
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

impl WebhookMessage {
    /// The alerts in warroom's normalised form. Alertmanager's `status` decides: a firing
    /// alert's `endsAt` is Alertmanager's own guess of when it ends unless sent again (it is
    /// re-sent to a receiver only every `repeat_interval`, hours), so it is dropped rather than
    /// let expire an alert that is still firing; a resolved alert ends at its `endsAt`, or at
    /// `now` if that is missing or still ahead (clocks disagree).
    pub fn to_alerts(&self, now: OffsetDateTime) -> Vec<Alert> {
        self.alerts
            .iter()
            .map(|a| Alert {
                fingerprint: fingerprint(&a.labels),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: match a.status {
                    AlertState::Firing => None,
                    AlertState::Resolved => Some(a.ends_at.map_or(now, |e| e.min(now))),
                },
                generator_url: (!a.generator_url.is_empty()).then(|| a.generator_url.clone()),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Normalised alert

/// An alert after validation, whatever format it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity of the alert: the fingerprint of `labels`.
    pub fingerprint: Fingerprint,
    /// Identifying labels; never empty, no empty values.
    pub labels: LabelSet,
    /// Extra information.
    pub annotations: LabelSet,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it ends or ended; `None` while unknown.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// Link back to the rule that produced it.
    pub generator_url: Option<String>,
}

impl Alert {
    /// The `alertname` label, or `""`.
    pub fn name(&self) -> &str {
        self.labels.get(ALERTNAME).map_or("", String::as_str)
    }

    /// Firing or resolved at `now`: resolved once `endsAt` is set and not after `now`, as
    /// Alertmanager's `Alert.ResolvedAt`.
    pub fn state_at(&self, now: OffsetDateTime) -> AlertState {
        state_at(self.ends_at, now)
    }

    /// The `summary` annotation, else `description`, else the alert name: the text people see.
    pub fn summary(&self) -> &str {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("description"))
            .map_or_else(|| self.name(), String::as_str)
    }
}

/// Firing or resolved, given an optional end time and the current time.
pub fn state_at(ends_at: Option<OffsetDateTime>, now: OffsetDateTime) -> AlertState {
    match ends_at {
        Some(end) if end <= now => AlertState::Resolved,
        _ => AlertState::Firing,
    }
}

/// Alertmanager's default `resolve_timeout`.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::minutes(5);

/// When an alert sent without an end at `now` ends, Alertmanager's `resolve_timeout` rule: it
/// must be sent again by the first time returned, and it ends at the second, a tenth of the
/// timeout later. The margin lets a repeat within it keep the stored end (a count, not a
/// write); the alert then ends between one and 1.1 timeouts after its last sighting, never
/// before one, so that it does not flap resolved while its sender still sends it.
pub fn timeout_end(
    now: OffsetDateTime,
    resolve_timeout: Duration,
) -> (OffsetDateTime, OffsetDateTime) {
    let resend_by = now + resolve_timeout;
    (resend_by, resend_by + resolve_timeout / 10)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// The outcome of a `POST /api/v2/alerts` body. Like Alertmanager, valid alerts are kept even
/// when others in the same batch are invalid: Prometheus drops a batch answered with 4xx, so
/// refusing all of it would lose the good alerts too.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedAlerts {
    /// The valid alerts, in body order.
    pub accepted: Vec<Alert>,
    /// One error per invalid alert, each naming its JSON path (`[3].labels: missing`).
    pub rejected: Vec<DomainError>,
}

/// Parses an Alertmanager API v2 alerts body. A body that is not a JSON array is an error; invalid
/// elements are reported in [`PostedAlerts::rejected`].
///
/// As in Alertmanager: labels with empty values are dropped (Prometheus treats an empty label as
/// absent), a missing `startsAt` becomes `endsAt` if given or else `now`, a Go zero time means
/// "unset", and `endsAt` before `startsAt` is invalid.
pub fn parse_postable_alerts(
    body: &[u8],
    now: OffsetDateTime,
) -> Result<PostedAlerts, DomainError> {
    // Each element is read straight into its fields; only one that does not fit that shape
    // (a number for a label, say) is read again as a JSON value, for an error that names it.
    // Reading every alert through a JSON value first took a fifth of the server's time.
    let items: Vec<&serde_json::value::RawValue> = match serde_json::from_slice(body) {
        Ok(items) => items,
        Err(_) => {
            let value = parse_json(body)?;
            return Err(DomainError::invalid(
                "body",
                format!(
                    "expected a JSON array of alerts, found {}; wrap a single alert in [ ]",
                    kind_of(&value)
                ),
            ));
        }
    };
    let mut out = PostedAlerts {
        accepted: Vec::with_capacity(items.len()),
        rejected: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("[{i}]");
        let raw = item.get();
        let fast = if raw.trim_start().starts_with('{') {
            serde_json::from_str::<AlertFields>(raw).ok()
        } else {
            None
        };
        let alert = match fast {
            Some(fields) => fields.into_alert(&path, now),
            None => parse_json(raw.as_bytes()).and_then(|v| postable_alert(&v, &path, now)),
        };
        match alert {
            Ok(a) => out.accepted.push(a),
            Err(e) => out.rejected.push(e),
        }
    }
    Ok(out)
}

/// An API v2 alert's fields, when each has the type it should. Checked in the order
/// [`postable_alert`] checks them, so that either way an alert gets the same first error.
#[derive(Deserialize)]
struct AlertFields {
    labels: Option<LabelSet>,
    annotations: Option<LabelSet>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

impl AlertFields {
    fn into_alert(self, path: &str, now: OffsetDateTime) -> Result<Alert, DomainError> {
        let field = join(path, "labels");
        let Some(labels) = self.labels else {
            return Err(DomainError::invalid(field, "missing"));
        };
        let labels = checked_labels(labels, &field)?;
        let annotations = self.annotations.unwrap_or_default();
        check_names(&annotations, &join(path, "annotations"))?;
        let starts = checked_time(self.starts_at.as_deref(), path, "startsAt")?;
        let ends = checked_time(self.ends_at.as_deref(), path, "endsAt")?;
        assemble(
            labels,
            annotations,
            (starts, ends),
            self.generator_url,
            path,
            now,
        )
    }
}

fn postable_alert(v: &Value, path: &str, now: OffsetDateTime) -> Result<Alert, DomainError> {
    let obj = object(v, path)?;
    let labels = labels_field(obj, path)?;
    let annotations = annotations_field(obj, path)?;
    let starts = time_field(obj, path, "startsAt")?;
    let ends = time_field(obj, path, "endsAt")?;
    let generator_url = opt_string_field(obj, path, "generatorURL")?;
    assemble(
        labels,
        annotations,
        (starts, ends),
        generator_url,
        path,
        now,
    )
}

/// An API v2 alert from its checked fields: a missing start is the end if given, else `now`;
/// an empty generator URL is none.
fn assemble(
    labels: LabelSet,
    annotations: LabelSet,
    (starts, ends): (Option<OffsetDateTime>, Option<OffsetDateTime>),
    generator_url: Option<String>,
    path: &str,
    now: OffsetDateTime,
) -> Result<Alert, DomainError> {
    let starts_at = starts.or(ends).unwrap_or(now);
    check_order(starts_at, ends, path)?;
    Ok(Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations,
        starts_at,
        ends_at: ends,
        generator_url: generator_url.filter(|u| !u.is_empty()),
    })
}

/// Parses an Alertmanager webhook payload (version 4). Any invalid part refuses the whole payload:
/// Alertmanager itself always sends valid ones, so an error means a sender that must be fixed.
/// A missing `startsAt` becomes `now`; a Go zero `endsAt` becomes `None`.
pub fn parse_webhook(body: &[u8], now: OffsetDateTime) -> Result<WebhookMessage, DomainError> {
    let value = parse_json(body)?;
    let obj = object(&value, "body")?;
    let version = string_field(obj, "", "version")?;
    if version != "4" {
        return Err(DomainError::invalid(
            "version",
            format!(
                "webhook version `{version}` is not supported; warroom reads version \"4\" (Alertmanager 0.16 and later)"
            ),
        ));
    }
    let group_key = string_field(obj, "", "groupKey")?;
    let truncated_alerts = match obj.get("truncatedAlerts") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| DomainError::invalid("truncatedAlerts", "not a non-negative integer"))?,
    };
    let status = state_field(obj, "", "status")?;
    let receiver = opt_string_field(obj, "", "receiver")?.unwrap_or_default();
    let group_labels = string_map(obj.get("groupLabels"), "groupLabels")?;
    let common_labels = string_map(obj.get("commonLabels"), "commonLabels")?;
    let common_annotations = string_map(obj.get("commonAnnotations"), "commonAnnotations")?;
    let external_url = opt_string_field(obj, "", "externalURL")?.unwrap_or_default();
    let alerts_value = obj
        .get("alerts")
        .ok_or_else(|| DomainError::invalid("alerts", "missing"))?;
    let Value::Array(items) = alerts_value else {
        return Err(DomainError::invalid(
            "alerts",
            format!("expected an array, found {}", kind_of(alerts_value)),
        ));
    };
    let mut alerts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("alerts[{i}]");
        let a = object(item, &path)?;
        let status = state_field(a, &path, "status")?;
        let labels = labels_field(a, &path)?;
        let annotations = annotations_field(a, &path)?;
        let starts_at = time_field(a, &path, "startsAt")?.unwrap_or(now);
        let ends_at = time_field(a, &path, "endsAt")?;
        check_order(starts_at, ends_at, &path)?;
        let generator_url = opt_string_field(a, &path, "generatorURL")?.unwrap_or_default();
        let fingerprint = opt_string_field(a, &path, "fingerprint")?.unwrap_or_default();
        alerts.push(WebhookAlert {
            status,
            labels,
            annotations,
            starts_at,
            ends_at,
            generator_url,
            fingerprint,
        });
    }
    Ok(WebhookMessage {
        version,
        group_key,
        truncated_alerts,
        status,
        receiver,
        group_labels,
        common_labels,
        common_annotations,
        external_url,
        alerts,
    })
}

fn parse_json(body: &[u8]) -> Result<Value, DomainError> {
    serde_json::from_slice(body)
        .map_err(|e| DomainError::invalid("body", format!("not valid JSON: {e}")))
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, DomainError> {
    v.as_object().ok_or_else(|| {
        DomainError::invalid(path, format!("expected an object, found {}", kind_of(v)))
    })
}

fn string_field(obj: &Map<String, Value>, path: &str, field: &str) -> Result<String, DomainError> {
    opt_string_field(obj, path, field)?
        .ok_or_else(|| DomainError::invalid(join(path, field), "missing"))
}

fn opt_string_field(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
) -> Result<Option<String>, DomainError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(DomainError::invalid(
            join(path, field),
            format!("expected a string, found {}", kind_of(other)),
        )),
    }
}

fn state_field(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
) -> Result<AlertState, DomainError> {
    match string_field(obj, path, field)?.as_str() {
        "firing" => Ok(AlertState::Firing),
        "resolved" => Ok(AlertState::Resolved),
        other => Err(DomainError::invalid(
            join(path, field),
            format!("`{other}` is not a status; use `firing` or `resolved`"),
        )),
    }
}

fn string_map(v: Option<&Value>, path: &str) -> Result<LabelSet, DomainError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(LabelSet::new()),
        Some(v) => object(v, path)?,
    };
    let mut out = LabelSet::new();
    for (k, v) in obj {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            other => {
                return Err(DomainError::invalid(
                    format!("{path}.{k}"),
                    format!("expected a string, found {}", kind_of(other)),
                ));
            }
        }
    }
    Ok(out)
}

fn labels_field(obj: &Map<String, Value>, path: &str) -> Result<LabelSet, DomainError> {
    let field = join(path, "labels");
    let Some(v) = obj.get("labels").filter(|v| !v.is_null()) else {
        return Err(DomainError::invalid(field, "missing"));
    };
    checked_labels(string_map(Some(v), &field)?, &field)
}

fn checked_labels(mut labels: LabelSet, field: &str) -> Result<LabelSet, DomainError> {
    // Alertmanager drops empty-valued labels before validating: an empty label is an absent one.
    labels.retain(|_, v| !v.is_empty());
    if labels.is_empty() {
        return Err(DomainError::invalid(
            field,
            "at least one label with a non-empty value is required, e.g. {\"alertname\": \"HighErrorRate\"}",
        ));
    }
    check_names(&labels, field)?;
    Ok(labels)
}

fn annotations_field(obj: &Map<String, Value>, path: &str) -> Result<LabelSet, DomainError> {
    let field = join(path, "annotations");
    let annotations = string_map(obj.get("annotations"), &field)?;
    check_names(&annotations, &field)?;
    Ok(annotations)
}

fn check_names(set: &LabelSet, path: &str) -> Result<(), DomainError> {
    match set.keys().find(|k| !is_valid_label_name(k)) {
        None => Ok(()),
        Some(bad) => Err(DomainError::invalid(
            path,
            format!(
                "`{bad}` is not a valid label name; use letters, digits and underscores, not starting with a digit"
            ),
        )),
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus' classic label name rule.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn time_field(
    obj: &Map<String, Value>,
    path: &str,
    field: &str,
) -> Result<Option<OffsetDateTime>, DomainError> {
    checked_time(opt_string_field(obj, path, field)?.as_deref(), path, field)
}

/// A time field's text, parsed (`None` when absent or a Go zero time).
fn checked_time(
    raw: Option<&str>,
    path: &str,
    field: &str,
) -> Result<Option<OffsetDateTime>, DomainError> {
    match raw {
        None => Ok(None),
        Some(raw) => parse_time(raw).map_err(|m| DomainError::invalid(join(path, field), m)),
    }
}

/// RFC 3339; Go's zero time (year 1) means unset.
fn parse_time(raw: &str) -> Result<Option<OffsetDateTime>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let t = OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| format!("`{raw}` is not an RFC 3339 time; use e.g. `2026-01-12T14:32:00Z`"))?;
    Ok((t.year() > 1).then_some(t))
}

fn check_order(
    starts_at: OffsetDateTime,
    ends_at: Option<OffsetDateTime>,
    path: &str,
) -> Result<(), DomainError> {
    match ends_at {
        Some(end) if end < starts_at => Err(DomainError::invalid(
            join(path, "endsAt"),
            "is before startsAt; an alert must start before it ends",
        )),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Grouping

/// How alerts are gathered into one incident: by the values of some labels, never by summary
/// text (two alerts about one outage rarely share their wording; they do share `service`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grouping {
    /// Labels whose values form the key, when the alert has at least one of them.
    pub by: Vec<String>,
    /// Used when the alert has none of `by`.
    pub fallback: String,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            by: vec!["service".to_owned()],
            fallback: ALERTNAME.to_owned(),
        }
    }
}

/// Which group an alert belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// `{service="payments"}`: the grouping labels in Alertmanager's label-set notation, sorted by
    /// name. Stable, so it can be stored and compared.
    pub key: String,
    /// The service the group is about, when a grouping label's value makes a valid slug after
    /// lowercasing (`Payments_DB` → `payments-db`). `None` when grouped by the fallback label.
    pub service: Option<ServiceSlug>,
}

/// The label that names a service.
const SERVICE_LABEL: &str = "service";

impl Grouping {
    /// The group of an alert with these labels.
    pub fn group(&self, labels: &LabelSet) -> GroupKey {
        let (pairs, fell_back) = self.key_pairs(labels);
        if fell_back {
            return GroupKey {
                key: pairs_string(pairs),
                service: None,
            };
        }
        // The `service` label names the service whenever it is one of the grouping labels,
        // wherever it is listed (`group_by = ["cluster", "service"]` files incidents under the
        // service, not the cluster); otherwise the first grouping label present does.
        let service = self
            .by
            .iter()
            .find(|n| n.as_str() == SERVICE_LABEL)
            .and_then(|n| labels.get(n))
            .or_else(|| self.by.iter().find_map(|n| labels.get(n)))
            .and_then(|v| slug_candidate(v));
        GroupKey {
            key: pairs_string(pairs),
            service,
        }
    }

    /// The labels that put an alert in its group (those of [`Grouping::group`]'s key), as
    /// Alertmanager shows a group's labels.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        self.key_pairs(labels)
            .0
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The grouping labels an alert has, sorted by name, else its fallback label; and whether
    /// it fell back. Borrowed: this runs for every alert received.
    fn key_pairs<'a>(&'a self, labels: &'a LabelSet) -> (Vec<(&'a str, &'a str)>, bool) {
        let mut present: Vec<(&str, &str)> = self
            .by
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.as_str(), v.as_str())))
            .collect();
        present.sort_unstable();
        present.dedup_by_key(|(n, _)| *n);
        if !present.is_empty() {
            return (present, false);
        }
        let fallback = labels
            .get(&self.fallback)
            .map(|v| (self.fallback.as_str(), v.as_str()));
        (fallback.into_iter().collect(), true)
    }
}

/// `{a="1", b="2"}` as Alertmanager prints label sets (values escaped like Go's `%q`).
pub fn label_set_string(labels: &LabelSet) -> String {
    pairs_string(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// [`label_set_string`] of pairs already in name order.
fn pairs_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::with_capacity(64);
    out.push('{');
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        quote_into(&mut out, v);
    }
    out.push('}');
    out
}

fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    quote_into(&mut out, v);
    out
}

fn quote_into(out: &mut String, v: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lowercase, with every run of other characters turned into one dash; `None` if the result is
/// not a valid slug.
pub fn slug_candidate(value: &str) -> Option<ServiceSlug> {
    let mut s = String::with_capacity(value.len());
    for c in value.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    ServiceSlug::parse_field(s.trim_matches('-'), "service").ok()
}

// ---------------------------------------------------------------------------------------------
// Severity

/// Severity read from a label. When it gives no answer the caller runs the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeverityMapping {
    /// The label to read.
    pub label: String,
    /// Lowercase label values to severities; values are compared case-insensitively.
    pub values: BTreeMap<String, Severity>,
}

impl Default for SeverityMapping {
    fn default() -> Self {
        let values = [
            ("critical", Severity::Sev1),
            ("page", Severity::Sev1),
            ("major", Severity::Sev2),
            ("error", Severity::Sev2),
            ("warning", Severity::Sev3),
            ("info", Severity::Sev4),
            ("none", Severity::Sev4),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        SeverityMapping {
            label: "severity".to_owned(),
            values,
        }
    }
}

impl SeverityMapping {
    /// The severity the alert's label names, if the label is there and its value is mapped.
    pub fn severity_of(&self, labels: &LabelSet) -> Option<Severity> {
        let value = labels.get(&self.label)?.trim().to_lowercase();
        self.values
            .iter()
            .find(|(k, _)| k.to_lowercase() == value)
            .map(|(_, s)| *s)
    }
}

// ---------------------------------------------------------------------------------------------
// Incident types and playbooks

/// The runbook's "Common Incidents & Responses".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentType {
    /// Nothing answers: connection refused, or the service hangs.
    ServiceUnresponsive,
    /// More than 10 % of requests fail with 5xx.
    HighErrorRate,
    /// p99 latency above 2 seconds.
    HighLatency,
    /// Pods restart over and over (CrashLoopBackOff).
    PodRestarting,
    /// The application cannot reach its database.
    DatabaseConnectivity,
}

/// What to do about one incident type: the runbook's entry, in our words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Playbook {
    /// Which type this is.
    pub incident_type: IncidentType,
    /// Human name.
    pub name: &'static str,
    /// How it is noticed.
    pub detection: &'static str,
    /// How long diagnosis should take before escalating or acting.
    #[serde(serialize_with = "serialize_secs")]
    pub diagnosis_time: Duration,
    /// Ordered diagnosis steps.
    pub response: &'static [&'static str],
    /// Fixes, each introduced by the finding that calls for it.
    pub solutions: &'static [&'static str],
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.whole_seconds())
}

const PLAYBOOKS: [Playbook; 5] = [
    Playbook {
        incident_type: IncidentType::ServiceUnresponsive,
        name: "Service unresponsive",
        detection: "Health check gets \"connection refused\" (or no answer at all)",
        diagnosis_time: Duration::minutes(1),
        response: &[
            "Check whether the pods are running (kubectl get pods)",
            "Not running: it probably crashed, read the logs",
            "Running but not answering: suspect the port or the network",
            "Check that the Service object exists (kubectl get service <name>)",
        ],
        solutions: &[
            "Pods crashed: read the logs; usually a config or deployment problem",
            "Pods hanging: restart them (kubectl delete pods -l app=<name>)",
            "Service or endpoints missing: apply the service manifest",
        ],
    },
    Playbook {
        incident_type: IncidentType::HighErrorRate,
        name: "High error rate",
        detection: "More than 10% of responses are 5xx",
        diagnosis_time: Duration::minutes(2),
        response: &[
            "Find the failing endpoint",
            "Look for the error pattern in the logs",
            "Identify the affected service",
            "Compare with the baseline from when it last worked",
        ],
        solutions: &[
            "Recent deployment: roll back",
            "Config change: revert it",
            "Database problem: contact the DBA",
            "Third party down: switch to the fallback",
        ],
    },
    Playbook {
        incident_type: IncidentType::HighLatency,
        name: "High latency",
        detection: "p99 latency above 2 seconds",
        diagnosis_time: Duration::minutes(2),
        response: &[
            "Check whether requests still succeed (slow, or failing?)",
            "Check CPU and memory (kubectl top pods)",
            "Check whether the database is slow (query diagnostics)",
            "Check the network for packet loss",
        ],
        solutions: &[
            "Resources exhausted: scale up or shed load",
            "Database slow: DBA investigation",
            "Network problem: infrastructure team",
            "Legitimately higher load: no action, expected",
        ],
    },
    Playbook {
        incident_type: IncidentType::PodRestarting,
        name: "Pod restarting repeatedly",
        detection: "High RESTARTS count, CrashLoopBackOff",
        diagnosis_time: Duration::minutes(1),
        response: &[
            "Check the restart counts (kubectl get pods -n <namespace>)",
            "Read the previous container's logs (kubectl logs <pod> --previous)",
            "Read the pod's events (kubectl describe pod <pod>)",
        ],
        solutions: &[
            "Application error: fix it from the logs and redeploy",
            "Config problem: fix the ConfigMap and restart the pods",
            "Resource limits: raise them or scale out",
            "Liveness probe failing: adjust its timing or fix the health check",
        ],
    },
    Playbook {
        incident_type: IncidentType::DatabaseConnectivity,
        name: "Database connectivity",
        detection: "Logs or alerts say \"database connection refused\"",
        diagnosis_time: Duration::minutes(2),
        response: &[
            "Check that the database pod or service is running",
            "Check the database credentials in the ConfigMap",
            "Test connectivity from an app pod (psql $DB_URL)",
            "Check firewall rules and network policies",
        ],
        solutions: &[
            "Database down: escalate to the DBA, possibly restore from backup",
            "Wrong credentials: fix the ConfigMap and restart the app pods",
            "Network problem: network team",
            "Out of disk: DBA cleanup",
        ],
    },
];

/// An annotation naming the incident type outright (snake_case, e.g. `high_error_rate`), for
/// senders that know it better than the alert's text shows: warroom's own monitors set it from
/// their checks.
pub const INCIDENT_TYPE_ANNOTATION: &str = "warroom_incident_type";
/// The evidence for [`INCIDENT_TYPE_ANNOTATION`], shown in the timeline.
pub const INCIDENT_TYPE_BECAUSE_ANNOTATION: &str = "warroom_incident_because";

impl IncidentType {
    /// The snake_case name, as in JSON and in [`INCIDENT_TYPE_ANNOTATION`].
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentType::ServiceUnresponsive => "service_unresponsive",
            IncidentType::HighErrorRate => "high_error_rate",
            IncidentType::HighLatency => "high_latency",
            IncidentType::PodRestarting => "pod_restarting",
            IncidentType::DatabaseConnectivity => "database_connectivity",
        }
    }

    /// All types, in the runbook's order.
    pub const ALL: [IncidentType; 5] = [
        IncidentType::ServiceUnresponsive,
        IncidentType::HighErrorRate,
        IncidentType::HighLatency,
        IncidentType::PodRestarting,
        IncidentType::DatabaseConnectivity,
    ];

    /// The runbook's response for this type.
    pub fn playbook(self) -> &'static Playbook {
        match self {
            IncidentType::ServiceUnresponsive => &PLAYBOOKS[0],
            IncidentType::HighErrorRate => &PLAYBOOKS[1],
            IncidentType::HighLatency => &PLAYBOOKS[2],
            IncidentType::PodRestarting => &PLAYBOOKS[3],
            IncidentType::DatabaseConnectivity => &PLAYBOOKS[4],
        }
    }

    /// The type a failed check points to, following the runbook's triage of a health check
    /// (refused → down, timeout → hung, both the "unresponsive" playbook; 5xx → error rate).
    /// DNS failures fall under "unresponsive" too: its playbook checks that the service exists.
    /// TLS, unexpected status and missing keyword point to no single playbook.
    pub fn for_check_failure(kind: FailureKind) -> Option<IncidentType> {
        match kind {
            FailureKind::Down | FailureKind::Hung | FailureKind::DnsFailure => {
                Some(IncidentType::ServiceUnresponsive)
            }
            FailureKind::Crashed => Some(IncidentType::HighErrorRate),
            FailureKind::TlsError
            | FailureKind::UnexpectedStatus
            | FailureKind::KeywordMissing
            | FailureKind::CertExpiring => None,
        }
    }
}

/// The runbook's thresholds.
const ERROR_RATE_THRESHOLD_PERCENT: f64 = 10.0;
const LATENCY_THRESHOLD_SECS: f64 = 2.0;

/// Alert names (lowercased) from kube-prometheus, awesome-prometheus-alerts and blackbox setups.
const CRASHLOOP_ALERTS: &[&str] = &[
    "kubepodcrashlooping",
    "kubernetespodcrashlooping",
    "podcrashlooping",
    "kubernetescontainerrestarting",
    "kubepodrestartingtoomuch",
    "containerrestarting",
];
const DOWN_ALERTS: &[&str] = &[
    "targetdown",
    "instancedown",
    "servicedown",
    "endpointdown",
    "blackboxprobefailed",
    "probefailure",
];
const DATABASE_WORDS: &[&str] = &[
    "database",
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "db",
    "pg",
];
/// Exporter alerts that say a database cannot be reached (the usual rule names of the
/// postgres, mysql and mongodb exporters), lowercased.
const DATABASE_DOWN_ALERTS: &[&str] = &[
    "postgresqldown",
    "postgresdown",
    "pgdown",
    "mysqldown",
    "mariadbdown",
    "mongodbdown",
    "databasedown",
];
/// How alert texts say a connection was refused or could not be made.
const REFUSED_WORDS: &[&str] = &[
    "connection refused",
    "could not connect",
    "unable to connect",
    "can't connect",
];

/// A recognised incident type and the evidence that decided it, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recognised {
    /// The type.
    pub incident_type: IncidentType,
    /// What in the alert decided it.
    pub because: String,
}

/// Recognises the runbook's incident type from an alert's labels, annotations and generator URL.
///
/// Checked most specific first, because the texts overlap: a database refusing connections also
/// says "connection refused", and a crash-looping pod also makes its service unresponsive.
pub fn recognise(alert: &Alert) -> Option<Recognised> {
    let name = alert.name().to_lowercase();
    let text = format!(
        " {} {} ",
        alert
            .annotations
            .values()
            .map(|v| v.to_lowercase())
            .collect::<Vec<_>>()
            .join(" "),
        alert
            .labels
            .values()
            .map(|v| v.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let url = alert.generator_url.as_deref().unwrap_or("").to_lowercase();
    let hit = |t: IncidentType, because: String| {
        Some(Recognised {
            incident_type: t,
            because,
        })
    };
    if let Some(named) = alert.annotations.get(INCIDENT_TYPE_ANNOTATION)
        && let Some(t) = IncidentType::ALL
            .into_iter()
            .find(|t| t.as_str() == named.trim())
    {
        let because = alert
            .annotations
            .get(INCIDENT_TYPE_BECAUSE_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| format!("the alert says {INCIDENT_TYPE_ANNOTATION}={named}"));
        return hit(t, because);
    }

    if DATABASE_DOWN_ALERTS.contains(&name.as_str()) {
        return hit(
            IncidentType::DatabaseConnectivity,
            format!("alertname {}", alert.name()),
        );
    }
    // Whole words, so that `payments-db` is a database and `dbus` is not.
    let words: std::collections::HashSet<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if REFUSED_WORDS.iter().any(|w| text.contains(w))
        && DATABASE_WORDS.iter().any(|w| words.contains(w))
    {
        return hit(
            IncidentType::DatabaseConnectivity,
            "alert text mentions a database refusing connections".to_owned(),
        );
    }
    if CRASHLOOP_ALERTS.contains(&name.as_str()) {
        return hit(
            IncidentType::PodRestarting,
            format!("alertname {}", alert.name()),
        );
    }
    if alert
        .labels
        .get("reason")
        .is_some_and(|r| r.eq_ignore_ascii_case("CrashLoopBackOff"))
        || text.contains("crashloopbackoff")
    {
        return hit(
            IncidentType::PodRestarting,
            "CrashLoopBackOff in the alert".to_owned(),
        );
    }
    if url.contains("kube_pod_container_status_restarts_total") {
        return hit(
            IncidentType::PodRestarting,
            "rule expression uses kube_pod_container_status_restarts_total".to_owned(),
        );
    }
    if text.contains("connection refused") {
        return hit(
            IncidentType::ServiceUnresponsive,
            "alert text says connection refused".to_owned(),
        );
    }
    if DOWN_ALERTS.contains(&name.as_str()) {
        return hit(
            IncidentType::ServiceUnresponsive,
            format!("alertname {}", alert.name()),
        );
    }
    if let Some((field, pct)) = number_in(alert, &["error_rate", "error_ratio", "error_percent"]) {
        // Ratios (0.25) and percentages (25) both occur in the wild; ≤ 1 reads as a ratio.
        let pct = if pct <= 1.0 { pct * 100.0 } else { pct };
        if pct > ERROR_RATE_THRESHOLD_PERCENT {
            return hit(
                IncidentType::HighErrorRate,
                format!("{field} is {pct:.1}% (> 10%)"),
            );
        }
    }
    if name.contains("errorrate")
        || name.contains("higherror")
        || name.contains("5xx")
        || text.contains("5xx")
    {
        return hit(
            IncidentType::HighErrorRate,
            format!("alert {} is about 5xx errors", alert.name()),
        );
    }
    if let Some((field, secs)) = number_in(alert, &["latency_p99_seconds", "p99_latency_seconds"])
        && secs > LATENCY_THRESHOLD_SECS
    {
        return hit(
            IncidentType::HighLatency,
            format!("{field} is {secs}s (> 2s)"),
        );
    }
    if name.contains("latency") || text.contains("p99 latency") {
        return hit(
            IncidentType::HighLatency,
            format!("alert {} is about latency", alert.name()),
        );
    }
    None
}

/// One check result, as far as incident types care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSample {
    /// Why it failed, if it did.
    pub failure: Option<FailureKind>,
    /// How long it took.
    pub latency: std::time::Duration,
}

/// Recognises the runbook's incident type from a window of one monitor's recent checks, oldest
/// first, using the runbook's own thresholds: the latest check refused, hung or unresolvable →
/// unresponsive; more than 10 % of the window answered 5xx → high error rate; p99 latency of the
/// window above 2 s → high latency. `None` for an empty window or a healthy one.
pub fn recognise_checks(window: &[CheckSample]) -> Option<Recognised> {
    let last = window.last()?;
    if let Some(kind @ (FailureKind::Down | FailureKind::Hung | FailureKind::DnsFailure)) =
        last.failure
    {
        return Some(Recognised {
            incident_type: IncidentType::ServiceUnresponsive,
            because: format!("latest check failed: {kind}"),
        });
    }
    let crashed = window
        .iter()
        .filter(|s| s.failure == Some(FailureKind::Crashed))
        .count();
    // Windows are far below 2^52 checks, so the casts are exact.
    let pct = crashed as f64 * 100.0 / window.len() as f64;
    if pct > ERROR_RATE_THRESHOLD_PERCENT {
        return Some(Recognised {
            incident_type: IncidentType::HighErrorRate,
            because: format!(
                "{crashed} of the last {} checks answered 5xx ({pct:.0}% > 10%)",
                window.len()
            ),
        });
    }
    let mut latencies: Vec<_> = window.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    // Nearest rank: the smallest latency at or above 99 % of the window.
    let p99 = latencies[(latencies.len() * 99).div_ceil(100).max(1) - 1];
    if p99.as_secs_f64() > LATENCY_THRESHOLD_SECS {
        return Some(Recognised {
            incident_type: IncidentType::HighLatency,
            because: format!(
                "p99 latency of the last {} checks is {p99:?} (> 2s)",
                window.len()
            ),
        });
    }
    None
}

fn number_in<'a>(alert: &Alert, fields: &[&'a str]) -> Option<(&'a str, f64)> {
    fields.iter().find_map(|f| {
        alert
            .labels
            .get(*f)
            .or_else(|| alert.annotations.get(*f))
            .and_then(|v| v.trim().trim_end_matches('%').parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .map(|v| (*f, v))
    })
}

// ---------------------------------------------------------------------------------------------
// Matchers and silences

/// A label matcher as Alertmanager's silences write it on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatcherSpec {
    /// Label name.
    pub name: String,
    /// Value, or regular expression when `is_regex`.
    pub value: String,
    /// Regular expression match, anchored at both ends.
    #[serde(rename = "isRegex", default)]
    pub is_regex: bool,
    /// `false` negates the match (`!=`, `!~`). Absent means `true`, as in Alertmanager.
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl MatcherSpec {
    /// The operator the two flags stand for.
    pub fn op(&self) -> MatchOp {
        match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }

    /// Alertmanager's matcher syntax on a command line: `name=value`, `name!=value`,
    /// `name=~regex`, `name!~regex` (a value may be quoted).
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        // The leftmost operator: a label name holds neither `=` nor `!`, while a value may
        // (`alertname="a=~b"` is an equality). At that place a two-character operator wins.
        let found = text.find(['=', '!']).and_then(|at| {
            let rest = &text[at..];
            let op = [
                MatchOp::NotRegex,
                MatchOp::Regex,
                MatchOp::NotEqual,
                MatchOp::Equal,
            ]
            .into_iter()
            .find(|op| rest.starts_with(op.as_str()))?;
            Some((op, &text[..at], &rest[op.as_str().len()..]))
        });
        let Some((op, name, value)) = found else {
            return Err(DomainError::invalid(
                "matcher",
                format!(
                    "`{text}`: write it as name=value (or name!=value, name=~regex, name!~regex)"
                ),
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid(
                "matcher",
                format!(
                    "`{text}`: the label name is missing before `{}`",
                    op.as_str()
                ),
            ));
        }
        Ok(MatcherSpec {
            name: name.to_owned(),
            value: unquote(value.trim()),
            is_regex: matches!(op, MatchOp::Regex | MatchOp::NotRegex),
            is_equal: matches!(op, MatchOp::Equal | MatchOp::Regex),
        })
    }
}

/// A matcher's value as written: a double-quoted one loses its quotes and its escapes (`\"`,
/// `\\`, `\n`), as Go's strconv.Unquote reads Alertmanager's; a bare one is taken as it is.
fn unquote(v: &str) -> String {
    let Some(inner) = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| v.len() >= 2)
    else {
        return v.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits `a="1", b=~"x,y"` at the commas outside quotes.
fn split_matchers(text: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl std::fmt::Display for MatcherSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.name, self.op().as_str(), self.value)
    }
}

/// `=`, `!=`, `=~`, `!~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as written in matcher strings.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// A validated matcher. A missing label matches as the empty string, as in Alertmanager, so
/// `env=""` matches alerts without `env` and `env!=""` requires it.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher; `path` names the field for errors (`matchers[1]`).
    pub fn new(name: &str, op: MatchOp, value: &str, path: &str) -> Result<Self, DomainError> {
        if !is_valid_label_name(name) {
            return Err(DomainError::invalid(
                join(path, "name"),
                format!("`{name}` is not a valid label name; use letters, digits and underscores"),
            ));
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                // Anchored like Alertmanager, so `api` does not match `api-gateway`.
                Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    DomainError::invalid(
                        join(path, "value"),
                        format!("invalid regular expression: {e}"),
                    )
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// From the wire form.
    pub fn from_spec(spec: &MatcherSpec, path: &str) -> Result<Self, DomainError> {
        Matcher::new(&spec.name, spec.op(), &spec.value, path)
    }

    /// As Alertmanager writes it on the wire.
    pub fn to_spec(&self) -> MatcherSpec {
        MatcherSpec {
            name: self.name.clone(),
            value: self.value.clone(),
            is_regex: matches!(self.op, MatchOp::Regex | MatchOp::NotRegex),
            is_equal: matches!(self.op, MatchOp::Equal | MatchOp::Regex),
        }
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or pattern.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` when absent) satisfies the matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // new() always compiles the regex for regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether the label set satisfies the matcher.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

/// Matchers that all have to match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Validates wire matchers as Alertmanager validates a silence: at least one, and at least
    /// one that does not match the empty label set (else the silence would mute everything).
    pub fn from_specs(specs: &[MatcherSpec], path: &str) -> Result<Self, DomainError> {
        let matchers = specs
            .iter()
            .enumerate()
            .map(|(i, s)| Matcher::from_spec(s, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if matchers.is_empty() {
            return Err(DomainError::invalid(
                path,
                "at least one matcher is required, e.g. {\"name\": \"service\", \"value\": \"api\", \"isRegex\": false}",
            ));
        }
        if matchers.iter().all(|m| m.matches_value("")) {
            return Err(DomainError::invalid(
                path,
                "every matcher matches an empty label, so this would mute all alerts; add one that needs a value, e.g. service=\"api\"",
            ));
        }
        Ok(Matchers(matchers))
    }

    /// As Alertmanager writes them on the wire.
    pub fn to_specs(&self) -> Vec<MatcherSpec> {
        self.0.iter().map(Matcher::to_spec).collect()
    }

    /// True when every matcher matches.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }
}

/// A silence or maintenance window: alerts matching it between `starts_at` and `ends_at` are
/// recorded but open no incident and page nobody.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// How Alertmanager's API names it: `config-N` for the config file's N-th, else the id
    /// the API gave it.
    pub id: String,
    /// Which alerts.
    pub matchers: Matchers,
    /// From.
    pub starts_at: OffsetDateTime,
    /// Until (exclusive).
    pub ends_at: OffsetDateTime,
    /// Why, shown next to muted alerts.
    pub comment: String,
}

impl Silence {
    /// Active at `now`: `starts_at <= now < ends_at`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether this silence mutes an alert with these labels at `now`.
    pub fn mutes(&self, labels: &LabelSet, now: OffsetDateTime) -> bool {
        self.is_active(now) && self.matchers.matches(labels)
    }
}

/// Whether a listing filter selects a silence with these matchers. As in Alertmanager's
/// `GET /api/v2/silences?filter=`, each filter matcher has to be one of the silence's own
/// (same name, operator and value), not merely overlap with them: `amtool silence query
/// service=api` finds the silences written for `service=api`.
pub fn silence_listed_by(matchers: &[MatcherSpec], filter: &[Matcher]) -> bool {
    filter.iter().all(|f| {
        matchers
            .iter()
            .any(|m| m.op() == f.op() && m.name == f.name && m.value == f.value)
    })
}

/// Whether a change to a silence keeps its id, as Alertmanager decides: the matchers stay the
/// same, and an active silence keeps its start and does not end in the past, while a pending
/// one may move anywhere that has not begun. An ended silence never changes: the change
/// becomes a new silence (and an active one it replaces is expired).
pub fn silence_changes_in_place(
    old: (&[MatcherSpec], OffsetDateTime, OffsetDateTime),
    new: (&[MatcherSpec], OffsetDateTime, OffsetDateTime),
    now: OffsetDateTime,
) -> bool {
    let ((old_m, old_start, old_end), (new_m, new_start, new_end)) = (old, new);
    if old_m != new_m || old_end <= now {
        return false;
    }
    if old_start <= now {
        new_start == old_start && new_end >= now
    } else {
        new_start >= now
    }
}

/// The ids of the silences that mute an alert with these labels at `now`, in their order.
pub fn silenced_by<'a>(
    silences: &'a [Silence],
    labels: &LabelSet,
    now: OffsetDateTime,
) -> Vec<&'a str> {
    silences
        .iter()
        .filter(|s| s.mutes(labels, now))
        .map(|s| s.id.as_str())
        .collect()
}

/// The `filter` parameters of Alertmanager's listing endpoints, one matcher each
/// (`alertname="DiskFull"`, `service=~"api|web"`); errors name the parameter and its place.
pub fn parse_filter<S: AsRef<str>>(filters: &[S]) -> Result<Vec<Matcher>, DomainError> {
    let mut out = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let path = format!("filter[{i}]");
        let text = f.as_ref().trim();
        // `{a="1", b="2"}`, as newer Alertmanagers take it, is several matchers.
        let parts = match text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(inner) => split_matchers(inner),
            None => vec![text],
        };
        for part in parts {
            let spec = MatcherSpec::parse(part.trim()).map_err(|e| match e {
                DomainError::Invalid { message, .. } => DomainError::invalid(&path, message),
                other => other,
            })?;
            out.push(Matcher::from_spec(&spec, &path)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Every API v2 alert is read straight into its fields unless it does not fit them; both
    /// ways must give the same alert, or the same first error.
    #[test]
    fn reading_alerts_into_their_fields_agrees_with_reading_them_as_json_values() {
        let cases = [
            r#"{"labels":{"alertname":"A","service":"api"},"annotations":{"summary":"s"},"startsAt":"2026-01-12T14:00:00.123Z","generatorURL":"http://p/g"}"#,
            r#"{"labels":{"alertname":"A"},"endsAt":"2026-01-12T14:00:00Z"}"#,
            r#"{"labels":{"alertname":"A"},"endsAt":"0001-01-01T00:00:00Z","generatorURL":""}"#,
            r#"{"labels":{"alertname":"A"},"startsAt":"2026-01-12T15:00:00Z","endsAt":"2026-01-12T14:00:00Z"}"#,
            r#"{"labels":{"alertname":"A"},"startsAt":"yesterday"}"#,
            r#"{"labels":{"alertname":"A"},"annotations":null,"startsAt":null}"#,
            r#"{"labels":{"alertname":"A","empty":""}}"#,
            r#"{"labels":{"empty":""}}"#,
            r#"{"labels":{"bad-name":"x"}}"#,
            r#"{"labels":{"alertname":"A"},"annotations":{"bad name":"x"}}"#,
            r#"{"labels":null}"#,
            r#"{}"#,
            r#"{"labels":{"alertname":"A"},"unknown":[1,2]}"#,
            r#"{"labels":{"alertname":"A"},"labels":{"alertname":"B"}}"#,
            r#"{"labels":{"alertname":"A\n\"q\""}}"#,
            r#"{"labels":{"alertname":1}}"#,
            r#"{"labels":{"alertname":"A"},"annotations":{"n":2}}"#,
            r#"{"labels":{"alertname":"A"},"startsAt":5}"#,
            r#"{"labels":"alertname=A"}"#,
            r#"[{"alertname":"A"}]"#,
            r#""alert""#,
            r#"null"#,
        ];
        // The fast way is taken at all (else this would compare the slow way with itself).
        assert!(serde_json::from_str::<AlertFields>(cases[0]).is_ok());
        assert!(serde_json::from_str::<AlertFields>(cases[15]).is_err());
        for case in cases {
            let body = format!("[{case}, {case}]");
            let got = parse_postable_alerts(body.as_bytes(), NOW).unwrap();
            let value: Value = serde_json::from_str(case).unwrap();
            let want = postable_alert(&value, "[1]", NOW);
            match want {
                Ok(a) => {
                    assert_eq!(got.accepted.len(), 2, "{case}: {:?}", got.rejected);
                    assert_eq!(format!("{:?}", got.accepted[1]), format!("{a:?}"), "{case}");
                }
                Err(e) => {
                    assert_eq!(got.rejected.len(), 2, "{case}");
                    assert_eq!(got.rejected[1].to_string(), e.to_string(), "{case}");
                }
            }
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-01-12 14:32:00 UTC);

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn alert(l: &[(&str, &str)], a: &[(&str, &str)]) -> Alert {
        let labels = labels(l);
        Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: super::tests::labels(a),
            starts_at: NOW,
            ends_at: None,
            generator_url: None,
        }
    }

    // Values from prometheus/common model/signature_test.go (TestMetricToFingerprint and the
    // fingerprint benchmarks), which Alertmanager's fingerprints are.
    #[test]
    fn fingerprints_match_prometheus_published_values() {
        assert_eq!(fingerprint(&LabelSet::new()).0, 14_695_981_039_346_656_037);
        assert_eq!(
            fingerprint(&labels(&[
                ("name", "garland, briggs"),
                ("fear", "love is not enough")
            ]))
            .0,
            5_799_056_148_416_392_346
        );
        assert_eq!(
            fingerprint(&labels(&[("first-label", "first-label-value")])).0,
            5_146_282_821_936_882_169
        );
        assert_eq!(
            fingerprint(&labels(&[
                ("first-label", "first-label-value"),
                ("second-label", "second-label-value")
            ]))
            .0,
            3_195_800_080_984_914_717
        );
        assert_eq!(
            fingerprint(&labels(&[
                ("first-label", "first-label-value"),
                ("second-label", "second-label-value"),
                ("third-label", "third-label-value")
            ]))
            .0,
            13_843_036_195_897_128_121
        );
    }

    #[test]
    fn fingerprint_strings_are_16_hex_digits() {
        assert_eq!(Fingerprint(0xab).to_string(), "00000000000000ab");
        let f: Fingerprint = "1a30ba71cca2921f".parse().unwrap();
        assert_eq!(f.to_string(), "1a30ba71cca2921f");
        assert!("1a30ba71cca2921".parse::<Fingerprint>().is_err());
        assert!("1a30ba71cca2921g".parse::<Fingerprint>().is_err());
        assert_eq!(
            serde_json::to_string(&Fingerprint(1)).unwrap(),
            "\"0000000000000001\""
        );
    }

    #[test]
    fn separator_keeps_name_value_boundaries_apart() {
        assert_ne!(
            fingerprint(&labels(&[("a", "bc")])),
            fingerprint(&labels(&[("ab", "c")]))
        );
    }

    const WEBHOOK: &str = r#"{
      "receiver": "sms", "status": "firing",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "ProbeFailure", "instance": "https://server.example.org",
                   "job": "http_checks", "monitor": "master", "severity": "critical"},
        "annotations": {"summary": "BlackBox Probe Failure: https://server.example.org"},
        "startsAt": "2023-02-06T13:08:45.828Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0",
        "fingerprint": "1a30ba71cca2921f"
      }],
      "groupLabels": {"alertname": "ProbeFailure"},
      "commonLabels": {"alertname": "ProbeFailure"},
      "commonAnnotations": {},
      "externalURL": "http://prometheus.example.org:9093",
      "version": "4",
      "groupKey": "{}/{severity=\"critical\"}:{alertname=\"ProbeFailure\"}",
      "truncatedAlerts": 0
    }"#;

    #[test]
    fn a_webhook_alert_is_in_the_state_alertmanager_says_whatever_its_end() {
        let mut m = parse_webhook(WEBHOOK.as_bytes(), NOW).unwrap();
        let mut firing = m.alerts[0].clone();
        // Alertmanager's guess of the end, already behind warroom's clock: still firing.
        firing.ends_at = Some(NOW - time::Duration::minutes(1));
        let mut resolved = firing.clone();
        resolved.labels.insert("instance".into(), "b".into());
        resolved.status = AlertState::Resolved;
        // Resolved with an end still ahead of warroom's clock: resolved now.
        resolved.ends_at = Some(NOW + time::Duration::minutes(3));
        let mut no_end = resolved.clone();
        no_end.labels.insert("instance".into(), "c".into());
        no_end.ends_at = None;
        m.alerts = vec![firing, resolved, no_end];
        let alerts = m.to_alerts(NOW);
        assert_eq!(alerts[0].ends_at, None);
        assert_eq!(alerts[0].state_at(NOW), AlertState::Firing);
        assert_eq!(alerts[1].ends_at, Some(NOW));
        assert_eq!(alerts[1].state_at(NOW), AlertState::Resolved);
        assert_eq!(alerts[2].state_at(NOW), AlertState::Resolved);
    }

    #[test]
    fn webhook_v4_is_parsed_and_zero_end_means_unset() {
        let m = parse_webhook(WEBHOOK.as_bytes(), NOW).unwrap();
        assert_eq!(m.version, "4");
        assert_eq!(m.status, AlertState::Firing);
        assert_eq!(m.truncated_alerts, 0);
        assert_eq!(m.receiver, "sms");
        let a = &m.alerts[0];
        assert_eq!(a.ends_at, None);
        assert_eq!(a.starts_at, datetime!(2023-02-06 13:08:45.828 UTC));
        let alerts = m.to_alerts(NOW);
        assert_eq!(alerts[0].state_at(NOW), AlertState::Firing);
        assert_eq!(alerts[0].name(), "ProbeFailure");
        // The sender's fingerprint is kept verbatim; ours is recomputed from the labels (this
        // published sample was anonymised after Alertmanager hashed it, so the two differ).
        assert_eq!(a.fingerprint, "1a30ba71cca2921f");
        assert_eq!(alerts[0].fingerprint, fingerprint(&a.labels));
        // Round trip keeps Alertmanager's zero time for "no end".
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["alerts"][0]["endsAt"], GO_ZERO_TIME);
        let again: WebhookMessage = serde_json::from_value(json).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn webhook_errors_name_the_path() {
        let cases = [
            (
                WEBHOOK.replace("\"version\": \"4\"", "\"version\": \"3\""),
                "version:",
            ),
            (
                WEBHOOK.replace("2023-02-06T13:08:45.828Z", "yesterday"),
                "alerts[0].startsAt: `yesterday` is not an RFC 3339 time",
            ),
            (
                WEBHOOK.replace(
                    "\"status\": \"firing\",\n        \"labels\"",
                    "\"status\": \"burning\",\n        \"labels\"",
                ),
                "alerts[0].status:",
            ),
            (
                WEBHOOK.replace("\"monitor\": \"master\"", "\"monitor\": 3"),
                "alerts[0].labels.monitor: expected a string",
            ),
            (
                WEBHOOK.replace("\"groupKey\"", "\"groupkey\""),
                "groupKey: missing",
            ),
            ("[]".to_owned(), "body: expected an object"),
            ("{".to_owned(), "body: not valid JSON"),
        ];
        for (body, want) in cases {
            let e = parse_webhook(body.as_bytes(), NOW).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} (wanted {want})");
        }
    }

    #[test]
    fn webhook_without_starts_at_starts_now() {
        let body = WEBHOOK.replace("\"startsAt\": \"2023-02-06T13:08:45.828Z\",", "");
        let m = parse_webhook(body.as_bytes(), NOW).unwrap();
        assert_eq!(m.alerts[0].starts_at, NOW);
    }

    #[test]
    fn postable_alerts_follow_alertmanager_rules() {
        let body = r#"[
          {"labels": {"alertname": "HighErrorRate", "service": "api"},
           "annotations": {"summary": "5xx above 10%"},
           "startsAt": "2026-01-12T14:00:00Z", "generatorURL": "http://prom/graph"},
          {"labels": {"alertname": "Old", "env": ""}, "endsAt": "2026-01-12T14:10:00Z"},
          {"labels": {"alertname": "Zero"}, "endsAt": "0001-01-01T00:00:00Z"},
          {"annotations": {"summary": "no labels"}},
          {"labels": {"env": ""}},
          {"labels": {"1bad": "x"}},
          {"labels": {"a": "b"}, "startsAt": "2026-01-12T15:00:00Z", "endsAt": "2026-01-12T14:00:00Z"},
          {"labels": {"a": "b"}, "startsAt": "12/01/2026"},
          "not an object"
        ]"#;
        let r = parse_postable_alerts(body.as_bytes(), NOW).unwrap();
        assert_eq!(r.accepted.len(), 3);
        let first = &r.accepted[0];
        assert_eq!(first.starts_at, datetime!(2026-01-12 14:00 UTC));
        assert_eq!(first.summary(), "5xx above 10%");
        assert_eq!(first.generator_url.as_deref(), Some("http://prom/graph"));
        // Missing startsAt with an end: starts at the end, as Alertmanager does; resolved.
        let old = &r.accepted[1];
        assert_eq!(old.starts_at, datetime!(2026-01-12 14:10 UTC));
        assert_eq!(old.state_at(NOW), AlertState::Resolved);
        // Empty-valued labels are dropped before fingerprinting.
        assert_eq!(old.labels, labels(&[("alertname", "Old")]));
        assert_eq!(
            old.fingerprint,
            fingerprint(&labels(&[("alertname", "Old")]))
        );
        // Go zero endsAt is unset; no startsAt means now.
        let zero = &r.accepted[2];
        assert_eq!((zero.starts_at, zero.ends_at), (NOW, None));
        let errors: Vec<String> = r.rejected.iter().map(ToString::to_string).collect();
        let wanted = [
            "[3].labels: missing",
            "[4].labels: at least one label",
            "[5].labels: `1bad` is not a valid label name",
            "[6].endsAt: is before startsAt",
            "[7].startsAt: `12/01/2026` is not an RFC 3339 time",
            "[8]: expected an object, found a string",
        ];
        assert_eq!(errors.len(), wanted.len(), "{errors:?}");
        for (e, w) in errors.iter().zip(wanted) {
            assert!(e.starts_with(w), "{e} (wanted {w})");
        }
        let e = parse_postable_alerts(br#"{"labels":{}}"#, NOW).unwrap_err();
        assert!(
            e.to_string().starts_with("body: expected a JSON array"),
            "{e}"
        );
    }

    #[test]
    fn postable_alert_serialises_in_the_wire_format() {
        let a = PostableAlert {
            labels: labels(&[("alertname", "X")]),
            annotations: LabelSet::new(),
            starts_at: Some(NOW),
            ends_at: None,
            generator_url: None,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"labels": {"alertname": "X"}, "startsAt": "2026-01-12T14:32:00Z"})
        );
        let back: PostableAlert = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn resolved_when_end_is_set_and_not_after_now() {
        assert_eq!(state_at(None, NOW), AlertState::Firing);
        assert_eq!(state_at(Some(NOW), NOW), AlertState::Resolved);
        assert_eq!(
            state_at(Some(NOW + Duration::seconds(1)), NOW),
            AlertState::Firing
        );
        assert_eq!(
            state_at(Some(NOW - Duration::minutes(5)), NOW),
            AlertState::Resolved
        );
    }

    #[test]
    fn grouping_uses_labels_never_summaries() {
        let g = Grouping::default();
        let a = g.group(&labels(&[
            ("alertname", "HighErrorRate"),
            ("service", "Payments_DB"),
        ]));
        let b = g.group(&labels(&[
            ("alertname", "HighLatency"),
            ("service", "Payments_DB"),
        ]));
        assert_eq!(a, b);
        assert_eq!(a.key, r#"{service="Payments_DB"}"#);
        assert_eq!(a.service.unwrap().as_str(), "payments-db");
        let c = g.group(&labels(&[("alertname", "DiskFull"), ("instance", "db1")]));
        assert_eq!(c.key, r#"{alertname="DiskFull"}"#);
        assert_eq!(c.service, None);
        let multi = Grouping {
            by: vec!["service".into(), "env".into()],
            fallback: "alertname".into(),
        };
        let d = multi.group(&labels(&[("env", "prod"), ("service", "api"), ("x", "y")]));
        assert_eq!(d.key, r#"{env="prod", service="api"}"#);
        assert_eq!(d.service.unwrap().as_str(), "api");
        let e = g.group(&labels(&[("service", "!!!")]));
        assert_eq!(e.service, None);
        // Listed after another grouping label, `service` still names the service.
        let cluster_first = Grouping {
            by: vec!["cluster".into(), "service".into()],
            fallback: "alertname".into(),
        };
        let f = cluster_first.group(&labels(&[("cluster", "eu-1"), ("service", "api")]));
        assert_eq!(f.service.unwrap().as_str(), "api");
        let f = cluster_first.group(&labels(&[("cluster", "eu-1")]));
        assert_eq!(
            f.service.unwrap().as_str(),
            "eu-1",
            "no service label: the first present"
        );
    }

    #[test]
    fn matchers_read_and_write_alertmanagers_syntax() {
        for (text, shown) in [
            ("service=db", "service=db"),
            ("env!=prod", "env!=prod"),
            ("env=~dev|test", "env=~dev|test"),
            ("env!~dev|test", "env!~dev|test"),
            (r#"team = "sre""#, "team=sre"),
            // The leftmost operator is the matcher's; the rest belongs to the value.
            (r#"alertname="a=~b""#, "alertname=a=~b"),
            ("url!=http://x/?a=b", "url!=http://x/?a=b"),
        ] {
            let spec = MatcherSpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), shown, "{text}");
            let back = Matcher::from_spec(&spec, "m").unwrap().to_spec();
            assert_eq!(back, spec, "{text}");
        }
        assert!(MatcherSpec::parse("service").is_err());
        assert!(MatcherSpec::parse("=db").is_err());
    }

    #[test]
    fn a_groups_labels_are_those_of_its_key() {
        let g = Grouping {
            by: vec!["service".into(), "cluster".into()],
            fallback: ALERTNAME.into(),
        };
        let both = labels(&[("service", "api"), ("cluster", "eu"), ("pod", "p1")]);
        assert_eq!(
            g.group_labels(&both),
            labels(&[("cluster", "eu"), ("service", "api")])
        );
        assert_eq!(label_set_string(&g.group_labels(&both)), g.group(&both).key);
        let neither = labels(&[("alertname", "Down"), ("pod", "p1")]);
        assert_eq!(g.group_labels(&neither), labels(&[("alertname", "Down")]));
        assert_eq!(
            label_set_string(&g.group_labels(&neither)),
            g.group(&neither).key
        );
    }

    #[test]
    fn listing_filters_select_alerts_and_silences_as_alertmanagers_do() {
        let f = parse_filter(&[
            r#"service="api""#,
            "{env=~prod|staging}",
            r#"{team="a,b", note="say \"hi\""}"#,
        ])
        .unwrap();
        assert_eq!(f.len(), 4, "the braces hold two matchers");
        assert_eq!((f[2].name(), f[2].value()), ("team", "a,b"));
        assert_eq!(
            (f[3].name(), f[3].value()),
            ("note", r#"say "hi""#),
            "unescaped"
        );
        assert!(f[0].matches(&labels(&[("service", "api")])));
        assert!(f[1].matches(&labels(&[("env", "staging")])));
        assert!(!f[1].matches(&labels(&[("env", "prodx")])), "anchored");
        let e = parse_filter(&["service=api", "env=~("])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("filter[1].value: invalid regular expression"),
            "{e}"
        );
        let e = parse_filter(&["service"]).unwrap_err().to_string();
        assert!(
            e.starts_with("filter[0]: `service`: write it as name=value"),
            "{e}"
        );

        // A silence is listed when it has every filter matcher among its own.
        let own = [
            MatcherSpec::parse("service=api").unwrap(),
            MatcherSpec::parse("env!=prod").unwrap(),
        ];
        let by = |text: &str| silence_listed_by(&own, &parse_filter(&[text]).unwrap());
        assert!(by("service=api") && by("env!=prod"));
        assert!(!by("service=~api"), "the operator counts");
        assert!(!by("service=web") && !by("env=prod"));
        assert!(silence_listed_by(&own, &[]), "no filter lists everything");

        let silence = |id: &str, service: &str, from: i64, to: i64| Silence {
            id: id.into(),
            matchers: Matchers::from_specs(
                &[MatcherSpec::parse(&format!("service={service}")).unwrap()],
                "m",
            )
            .unwrap(),
            starts_at: NOW + Duration::minutes(from),
            ends_at: NOW + Duration::minutes(to),
            comment: String::new(),
        };
        let all = [
            silence("a", "api", -10, 10),
            silence("b", "web", -10, 10),
            silence("c", "api", 5, 10),
            silence("d", "api", -10, 10),
        ];
        let api = labels(&[("service", "api")]);
        assert_eq!(
            silenced_by(&all, &api, NOW),
            ["a", "d"],
            "active ones, in order"
        );

        // Changes that keep the silence's id, as Alertmanager decides.
        let m = [MatcherSpec::parse("service=api").unwrap()];
        let other = [MatcherSpec::parse("service=web").unwrap()];
        let at = |min: i64| NOW + Duration::minutes(min);
        let active = (&m[..], at(-10), at(10));
        assert!(
            silence_changes_in_place(active, (&m, at(-10), at(60)), NOW),
            "extended"
        );
        assert!(
            silence_changes_in_place(active, (&m, at(-10), at(1)), NOW),
            "shortened"
        );
        assert!(
            !silence_changes_in_place(active, (&m, at(-5), at(60)), NOW),
            "start moved"
        );
        assert!(!silence_changes_in_place(
            active,
            (&other, at(-10), at(60)),
            NOW
        ));
        let pending = (&m[..], at(10), at(20));
        assert!(silence_changes_in_place(pending, (&m, at(5), at(30)), NOW));
        assert!(
            !silence_changes_in_place(pending, (&m, at(-1), at(30)), NOW),
            "started"
        );
        let ended = (&m[..], at(-20), at(-10));
        assert!(!silence_changes_in_place(ended, (&m, at(-20), at(30)), NOW));
        assert_eq!(
            silenced_by(&all, &api, NOW + Duration::minutes(6)),
            ["a", "c", "d"]
        );
        assert!(
            silenced_by(&all, &api, NOW + Duration::minutes(10)).is_empty(),
            "ended"
        );
    }

    #[test]
    fn severity_from_the_configured_label() {
        let m = SeverityMapping::default();
        let sev = |v: &str| m.severity_of(&labels(&[("severity", v)]));
        assert_eq!(sev("critical"), Some(Severity::Sev1));
        assert_eq!(sev("Page"), Some(Severity::Sev1));
        assert_eq!(sev("error"), Some(Severity::Sev2));
        assert_eq!(sev("major"), Some(Severity::Sev2));
        assert_eq!(sev("warning"), Some(Severity::Sev3));
        assert_eq!(sev("info"), Some(Severity::Sev4));
        assert_eq!(sev("none"), Some(Severity::Sev4));
        assert_eq!(sev("weird"), None);
        assert_eq!(m.severity_of(&labels(&[("alertname", "X")])), None);
        let custom: SeverityMapping =
            serde_json::from_str(r#"{"label": "priority", "values": {"P1": 1, "p2": 2}}"#).unwrap();
        assert_eq!(
            custom.severity_of(&labels(&[("priority", "p1")])),
            Some(Severity::Sev1)
        );
        assert_eq!(
            custom.severity_of(&labels(&[("severity", "critical")])),
            None
        );
    }

    #[test]
    fn runbook_incident_types_are_recognised() {
        let t = |a: Alert| recognise(&a).map(|r| r.incident_type);
        use IncidentType::*;
        assert_eq!(
            t(alert(
                &[("alertname", "AppErrors")],
                &[("description", "pq: database connection refused")]
            )),
            Some(DatabaseConnectivity)
        );
        assert_eq!(
            t(alert(&[("alertname", "PostgresqlDown")], &[])),
            Some(DatabaseConnectivity),
            "the postgres exporter's rule"
        );
        assert_eq!(
            t(alert(
                &[("alertname", "AppErrors"), ("service", "payments-db")],
                &[("summary", "could not connect to server")]
            )),
            Some(DatabaseConnectivity),
            "a database named by a word of its service"
        );
        assert_ne!(
            t(alert(
                &[("alertname", "AppErrors"), ("job", "dbus-monitor")],
                &[("summary", "connection refused")]
            )),
            Some(DatabaseConnectivity),
            "dbus is not a database"
        );
        assert_eq!(
            t(alert(&[("alertname", "KubePodCrashLooping")], &[])),
            Some(PodRestarting)
        );
        assert_eq!(
            t(alert(
                &[("alertname", "X"), ("reason", "CrashLoopBackOff")],
                &[]
            )),
            Some(PodRestarting)
        );
        let mut restarts = alert(&[("alertname", "TooManyRestarts")], &[]);
        restarts.generator_url = Some(
            "http://prom/graph?g0.expr=increase(kube_pod_container_status_restarts_total%5B1h%5D)+%3E+5"
                .into(),
        );
        assert_eq!(t(restarts), Some(PodRestarting));
        assert_eq!(
            t(alert(
                &[("alertname", "HealthCheck")],
                &[("summary", "curl: Connection refused")]
            )),
            Some(ServiceUnresponsive)
        );
        assert_eq!(
            t(alert(&[("alertname", "TargetDown")], &[])),
            Some(ServiceUnresponsive)
        );
        assert_eq!(
            t(alert(&[("alertname", "Errors")], &[("error_rate", "0.25")])),
            Some(HighErrorRate)
        );
        assert_eq!(
            t(alert(&[("alertname", "Errors")], &[("error_rate", "12%")])),
            Some(HighErrorRate)
        );
        assert_eq!(
            t(alert(&[("alertname", "Errors")], &[("error_rate", "0.05")])),
            None
        );
        assert_eq!(
            t(alert(&[("alertname", "HighErrorRate")], &[])),
            Some(HighErrorRate)
        );
        assert_eq!(
            t(alert(
                &[("alertname", "Slow")],
                &[("latency_p99_seconds", "3.5")]
            )),
            Some(HighLatency)
        );
        assert_eq!(
            t(alert(
                &[("alertname", "Slow")],
                &[("latency_p99_seconds", "1.5")]
            )),
            None
        );
        assert_eq!(
            t(alert(&[("alertname", "APIHighLatency")], &[])),
            Some(HighLatency)
        );
        assert_eq!(
            t(alert(
                &[("alertname", "DiskFull")],
                &[("summary", "disk 91% full")]
            )),
            None
        );
    }

    #[test]
    fn check_windows_use_the_runbook_thresholds() {
        use std::time::Duration as D;
        let ok = |ms| CheckSample {
            failure: None,
            latency: D::from_millis(ms),
        };
        let crashed = CheckSample {
            failure: Some(FailureKind::Crashed),
            latency: D::from_millis(20),
        };
        let t = |w: &[CheckSample]| recognise_checks(w).map(|r| r.incident_type);
        assert_eq!(t(&[]), None);
        assert_eq!(t(&[ok(20); 10]), None);
        let mut w = vec![ok(20); 9];
        w.push(CheckSample {
            failure: Some(FailureKind::Down),
            latency: D::ZERO,
        });
        assert_eq!(t(&w), Some(IncidentType::ServiceUnresponsive));
        // Exactly 10 % is not "more than 10 %".
        let mut w = vec![ok(20); 9];
        w.insert(3, crashed);
        assert_eq!(t(&w), None);
        w.insert(5, crashed);
        assert_eq!(t(&w), Some(IncidentType::HighErrorRate));
        // p99 of 100 samples is the 99th smallest: one slow outlier is not enough, two are.
        let mut w = vec![ok(100); 99];
        w.push(ok(3000));
        assert_eq!(t(&w), None);
        w[0] = ok(2500);
        assert_eq!(t(&w), Some(IncidentType::HighLatency));
        assert!(recognise_checks(&w).unwrap().because.contains("2.5s"));
    }

    #[test]
    fn check_failures_map_to_playbooks() {
        use FailureKind::*;
        assert_eq!(
            IncidentType::for_check_failure(Down),
            Some(IncidentType::ServiceUnresponsive)
        );
        assert_eq!(
            IncidentType::for_check_failure(Hung),
            Some(IncidentType::ServiceUnresponsive)
        );
        assert_eq!(
            IncidentType::for_check_failure(Crashed),
            Some(IncidentType::HighErrorRate)
        );
        assert_eq!(IncidentType::for_check_failure(CertExpiring), None);
    }

    #[test]
    fn every_type_has_a_complete_playbook() {
        for t in IncidentType::ALL {
            let p = t.playbook();
            assert_eq!(p.incident_type, t);
            assert!(!p.response.is_empty() && !p.solutions.is_empty());
            assert!(p.diagnosis_time <= Duration::minutes(2));
        }
        let v = serde_json::to_value(IncidentType::HighLatency.playbook()).unwrap();
        assert_eq!(v["diagnosis_time"], 120);
        assert_eq!(v["incident_type"], "high_latency");
    }

    fn spec(name: &str, value: &str, is_regex: bool, is_equal: bool) -> MatcherSpec {
        MatcherSpec {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn matchers_behave_like_alertmanager() {
        let l = labels(&[("service", "api-gateway"), ("env", "prod")]);
        let m = |s: MatcherSpec| Matcher::from_spec(&s, "m").unwrap().matches(&l);
        assert!(m(spec("service", "api-gateway", false, true)));
        assert!(!m(spec("service", "api", false, true)));
        assert!(m(spec("service", "api", false, false)));
        // Regexes are anchored: `api` does not match `api-gateway`.
        assert!(!m(spec("service", "api", true, true)));
        assert!(m(spec("service", "api.*", true, true)));
        assert!(m(spec("service", "web|api-gateway", true, true)));
        assert!(m(spec("env", "staging|dev", true, false)));
        // A missing label is the empty string.
        assert!(m(spec("team", "", false, true)));
        assert!(!m(spec("team", ".+", true, true)));
        let wire: MatcherSpec =
            serde_json::from_str(r#"{"name": "env", "value": "prod", "isRegex": false}"#).unwrap();
        assert!(wire.is_equal, "isEqual defaults to true");
        assert_eq!(
            Matcher::from_spec(&spec("env", "p.*", true, false), "m")
                .unwrap()
                .to_string(),
            r#"env!~"p.*""#
        );
    }

    #[test]
    fn silences_need_a_selective_matcher_and_an_active_window() {
        let e = Matchers::from_specs(&[], "matchers")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("matchers: at least one"), "{e}");
        let e = Matchers::from_specs(&[spec("env", ".*", true, true)], "matchers")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("matchers: every matcher matches an empty label"),
            "{e}"
        );
        let e = Matchers::from_specs(&[spec("env", "(", true, true)], "matchers")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("matchers[0].value: invalid regular expression"),
            "{e}"
        );
        let e = Matchers::from_specs(&[spec("bad-name", "x", false, true)], "matchers")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("matchers[0].name:"), "{e}");
        let silence = Silence {
            id: "config-1".into(),
            matchers: Matchers::from_specs(
                &[
                    spec("service", "api", false, true),
                    spec("env", "prod", false, false),
                ],
                "matchers",
            )
            .unwrap(),
            starts_at: NOW,
            ends_at: NOW + Duration::hours(1),
            comment: "maintenance".into(),
        };
        let staging = labels(&[("service", "api"), ("env", "staging")]);
        let prod = labels(&[("service", "api"), ("env", "prod")]);
        assert!(silence.mutes(&staging, NOW));
        assert!(!silence.mutes(&prod, NOW));
        assert!(!silence.mutes(&staging, NOW - Duration::seconds(1)));
        assert!(!silence.mutes(&staging, NOW + Duration::hours(1)));
    }
}
