//! Email over SMTP: one `multipart/alternative` message (plain text and HTML) per notification.
//!
//! Recipients are the channel's fixed `to` addresses plus, for a message to a person (a page, a
//! reminder), that person's `email`. `Message-ID` is derived from the outbox idempotency key and
//! repeated as `X-Warroom-Idempotency-Key`, so a message re-sent after a crash carries the same
//! id and receivers (and most mail stores) can drop the duplicate.
//!
//! SMTP 4xx is retried, 5xx fails at once, connection and TLS trouble is retried; the error
//! texts come from the server and never contain the password.

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use std::{collections::HashMap, fmt, time::Duration};
use warroom_domain::notify::{Notification, NotificationKind};
use warroom_store::OutboxMessage;

use crate::{Adapter, DeliveryError};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS`, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// One email channel.
#[derive(Clone)]
pub struct EmailConfig {
    /// SMTP server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// PEM file of an extra CA to trust, for a relay with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// User name and password for `AUTH`, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// `From:`.
    pub from: String,
    /// Fixed recipients.
    pub to: Vec<String>,
    /// warroom person → email address, for messages addressed to a person.
    pub people: HashMap<String, String>,
    /// Per SMTP command.
    pub timeout: Duration,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "[redacted]")),
            )
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The email adapter.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    people: HashMap<String, Mailbox>,
    /// Right-hand side of generated Message-IDs.
    domain: String,
    /// For a whole delivery: connect, TLS, AUTH, envelope and data.
    deadline: Duration,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// `X-Warroom-Idempotency-Key`.
#[derive(Debug, Clone)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Warroom-Idempotency-Key")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IdempotencyKey(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Why an address in the config is unusable.
#[derive(Debug, thiserror::Error)]
#[error(
    "{field}: `{value}` is not an email address ({reason}); write e.g. ops@example.com or \"Ops <ops@example.com>\""
)]
pub struct AddressError {
    /// Which setting.
    pub field: String,
    /// Its value.
    pub value: String,
    /// What the parser said.
    pub reason: String,
}

/// Parses an address as the config gives it, naming the field when it is not one.
pub fn parse_address(field: &str, value: &str) -> Result<Mailbox, AddressError> {
    value.parse::<Mailbox>().map_err(|e| AddressError {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::IncidentDeclared => "Incident declared",
        NotificationKind::UpdatePosted => "Status update",
        NotificationKind::SeverityChanged => "Severity changed",
        NotificationKind::Escalation => "Escalation",
        NotificationKind::IncidentResolved => "Incident resolved",
        NotificationKind::Page => "Page",
        NotificationKind::Reminder => "Reminder",
        NotificationKind::Info => "Info",
    }
}

/// `[Sev1] Page: INCIDENT: API - API down`: severity first so mail filters can sort on it.
pub fn subject(n: &Notification) -> String {
    let sev = n
        .severity
        .map(|s| format!("[Sev{}] ", s.level()))
        .unwrap_or_default();
    format!("{sev}{}: {}", kind_label(n.kind), n.title)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML part: the same runbook text, line breaks kept, links left as text.
pub fn html(n: &Notification) -> String {
    let mut footer = vec![kind_label(n.kind).to_owned()];
    if let Some(s) = n.severity {
        footer.push(format!("Sev{}", s.level()));
    }
    if let Some(i) = n.incident {
        footer.push(format!("incident {i}"));
    }
    if let Some(c) = &n.incident_channel {
        footer.push(c.clone());
    }
    footer.push("warroom".to_owned());
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h2>{title}</h2>\n<pre style=\"font-family: sans-serif; white-space: pre-wrap\">{text}</pre>\n<p style=\"color: #666; font-size: small\">{footer}</p>\n</body></html>\n",
        title = html_escape(&n.title),
        text = html_escape(&n.text),
        footer = html_escape(&footer.join(" · ")),
    )
}

/// The `Message-ID` for an outbox message: the same on every retry.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    format!("<{idempotency_key}@{domain}>")
}

impl Email {
    /// Builds the SMTP transport (connections are opened per delivery and pooled).
    pub fn new(config: EmailConfig) -> Result<Self, String> {
        let from = parse_address("from", &config.from).map_err(|e| e.to_string())?;
        let to = config
            .to
            .iter()
            .enumerate()
            .map(|(i, a)| parse_address(&format!("to[{i}]"), a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let people = config
            .people
            .iter()
            .map(|(p, a)| Ok((p.clone(), parse_address(&format!("email of {p}"), a)?)))
            .collect::<Result<HashMap<_, _>, AddressError>>()
            .map_err(|e| e.to_string())?;
        let tls_params = || {
            let mut b = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| format!("the CA file is not a PEM certificate: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| format!("cannot set up TLS for {}: {e}", config.host))
        };
        let tls = match config.tls {
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
            SmtpTls::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some((user, password)) = config.credentials {
            b = b.credentials(Credentials::new(user, password));
        }
        let domain = from.email.domain().to_owned();
        Ok(Email {
            transport: b.build(),
            from,
            to,
            people,
            domain,
            deadline: config.timeout * 3,
        })
    }

    /// The message for an outbox row, exactly as it is sent.
    pub fn build(&self, message: &OutboxMessage) -> Result<Message, DeliveryError> {
        let n = &message.notification;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject(n))
            .message_id(Some(message_id(&message.idempotency_key, &self.domain)))
            .header(IdempotencyKey(message.idempotency_key.clone()));
        let mut any = false;
        for m in self.to.iter().chain(
            message
                .recipient
                .as_ref()
                .and_then(|p| self.people.get(p))
                .filter(|m| !self.to.contains(m)),
        ) {
            b = b.to(m.clone());
            any = true;
        }
        if !any {
            return Err(DeliveryError::Permanent(format!(
                "email channel `{}` has no recipient for this message: give the channel `to` addresses, or {} an `email` in [[people]]",
                message.channel,
                message.recipient.as_deref().unwrap_or("the person"),
            )));
        }
        b.multipart(MultiPart::alternative_plain_html(n.text.clone(), html(n)))
            .map_err(|e| DeliveryError::Permanent(format!("could not build the email: {e}")))
    }
}

/// SMTP's answer classes: 4xx later, 5xx never; anything before an answer (connect, TLS,
/// timeout) is the network and is retried.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() {
        DeliveryError::Permanent(format!(
            "the SMTP server refused the message: {e}; check the from/to addresses and the relay's rules"
        ))
    } else if e.is_tls() {
        DeliveryError::Retry {
            error: format!(
                "TLS with the SMTP server failed: {e}; check host (it must match the certificate), tls and ca_file"
            ),
            retry_after: None,
        }
    } else {
        DeliveryError::Retry {
            error: format!("SMTP delivery failed: {e}"),
            retry_after: None,
        }
    }
}

#[async_trait]
impl Adapter for Email {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        let email = self.build(message)?;
        // lettre's timeout is per command; a server that stalls between commands (seen with
        // aiosmtpd after a failed AUTH) would otherwise hold this channel forever.
        match tokio::time::timeout(self.deadline, self.transport.send(email)).await {
            Ok(r) => r.map(|_| ()).map_err(|e| classify(&e)),
            Err(_) => Err(DeliveryError::Retry {
                error: format!("the SMTP server did not finish within {:?}", self.deadline),
                retry_after: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_reaches_debug() {
        let c = EmailConfig {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            ca_pem: None,
            credentials: Some(("warroom".into(), "hunter2".into())),
            from: "warroom@example.com".into(),
            to: vec![],
            people: HashMap::new(),
            timeout: Duration::from_secs(10),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && d.contains("[redacted]"), "{d}");
    }

    #[test]
    fn bad_addresses_name_their_field() {
        let e = parse_address("to[1]", "not an address").unwrap_err();
        assert!(e.to_string().starts_with("to[1]: `not an address`"), "{e}");
    }
}
