//! Signed one-click acknowledgement links for pages.
//!
//! A link names the incident, the person and an expiry, signed with HMAC-SHA256 under a
//! server secret. Opening it shows a confirmation page whose button POSTs back: mail scanners
//! and chat unfurlers fetch links with GET, and must not acknowledge pages by doing so.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use time::{Duration, OffsetDateTime};

use crate::{AppState, html::page};

/// How long a link works: a page is acted on within minutes; a day covers slow mail.
pub const LINK_LIFETIME: Duration = Duration::hours(24);

/// Makes and checks links.
#[derive(Clone)]
pub struct AckLinks {
    base_url: String,
    key: Vec<u8>,
}

impl fmt::Debug for AckLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckLinks")
            .field("base_url", &self.base_url)
            .field("key", &"[redacted]")
            .finish()
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not signed by this server, or altered.
    BadSignature,
    /// Past its expiry.
    Expired,
}

impl AckLinks {
    /// Links under `base_url` (warroom's public URL) signed with `key`.
    pub fn new(base_url: &str, key: &[u8]) -> Self {
        AckLinks {
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_vec(),
        }
    }

    fn mac(&self, incident: i64, person: &str, expires: i64) -> Hmac<Sha256> {
        // Keys of any length are accepted by HMAC; the fallback is unreachable in practice.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).unwrap_or_else(|_| {
            <Hmac<Sha256> as KeyInit>::new_from_slice(b"-")
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
        });
        mac.update(format!("ack\n{incident}\n{person}\n{expires}").as_bytes());
        mac
    }

    /// The link for one person and incident, valid for [`LINK_LIFETIME`].
    pub fn link(&self, incident: i64, person: &str, now: OffsetDateTime) -> String {
        let expires = (now + LINK_LIFETIME).unix_timestamp();
        let sig = hex::encode(self.mac(incident, person, expires).finalize().into_bytes());
        format!(
            "{}/ack/{incident}/{}/{expires}/{sig}",
            self.base_url,
            encode(person)
        )
    }

    /// Checks a link's parts, in constant time.
    pub fn verify(
        &self,
        incident: i64,
        person: &str,
        expires: i64,
        sig: &str,
        now: OffsetDateTime,
    ) -> Result<(), LinkError> {
        let sig = hex::decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(incident, person, expires)
            .verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        if now.unix_timestamp() > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

type LinkParts = (i64, String, i64, String);

/// The refusal page, if the link is not good.
fn refusal(state: &AppState, parts: &LinkParts) -> Option<Response> {
    let Some(links) = &state.settings.ack_links else {
        return Some(page(
            StatusCode::NOT_FOUND,
            "Links are off",
            "<p>This warroom does not issue acknowledgement links.</p>",
        ));
    };
    let (incident, person, expires, sig) = parts;
    match links.verify(*incident, person, *expires, sig, state.clock.now()) {
        Ok(()) => None,
        Err(LinkError::BadSignature) => Some(page(
            StatusCode::FORBIDDEN,
            "Invalid link",
            "<p>This link was not issued by this warroom, or it was altered. Acknowledge with <code>warroom ack</code>.</p>",
        )),
        Err(LinkError::Expired) => Some(page(
            StatusCode::GONE,
            "Link expired",
            "<p>This link has expired. Acknowledge with <code>warroom ack</code>.</p>",
        )),
    }
}

/// `GET /ack/{incident}/{person}/{expires}/{sig}`: the confirmation page.
pub async fn confirm(State(state): State<AppState>, Path(parts): Path<LinkParts>) -> Response {
    if let Some(r) = refusal(&state, &parts) {
        return r;
    }
    let (incident, person, ..) = &parts;
    let title = match state.store.incident(*incident).await {
        Ok(i) => i.title,
        Err(_) => {
            return page(
                StatusCode::NOT_FOUND,
                "No such incident",
                "<p>The incident no longer exists.</p>",
            );
        }
    };
    page(
        StatusCode::OK,
        "Acknowledge this page?",
        &format!(
            "<p>{}</p><p>As <strong>{}</strong>. This stops the escalation.</p><form method=\"post\"><button type=\"submit\">Acknowledge</button></form>",
            warroom_postmortem::escape_html(&title),
            warroom_postmortem::escape_html(person)
        ),
    )
}

/// `POST /ack/{incident}/{person}/{expires}/{sig}`: acknowledges.
pub async fn acknowledge(State(state): State<AppState>, Path(parts): Path<LinkParts>) -> Response {
    if let Some(r) = refusal(&state, &parts) {
        return r;
    }
    let (incident, person, ..) = parts;
    let now = state.clock.now();
    let who = person.clone();
    let r = state
        .store
        .mutate_incident(
            incident,
            &person,
            now,
            Box::new(move |i| i.acknowledge(&who, now).map(Into::into)),
        )
        .await;
    if r.is_ok() {
        crate::api::incidents::cancel_later_pages(&state, incident, now).await;
    }
    match r {
        Ok((i, _)) => page(
            StatusCode::OK,
            "Acknowledged",
            &format!(
                "<p>{} is acknowledged by {}.</p>",
                warroom_postmortem::escape_html(&i.title),
                warroom_postmortem::escape_html(
                    i.paging.acknowledged_by.as_deref().unwrap_or(&person)
                )
            ),
        ),
        Err(e) => page(
            StatusCode::CONFLICT,
            "Not acknowledged",
            &format!("<p>{}</p>", warroom_postmortem::escape_html(&e.to_string())),
        ),
    }
}

/// The decorator that adds a person's link to their pages.
pub fn decorator(
    links: std::sync::Arc<AckLinks>,
    clock: std::sync::Arc<dyn warroom_store::Clock>,
) -> impl Fn(&str, &mut warroom_domain::notify::Notification) + Send + Sync {
    move |person, n| {
        let now = clock.now();
        if n.kind == warroom_domain::notify::NotificationKind::Page
            && let Some(incident) = n.incident
        {
            n.text.push_str(&format!(
                "\n\nAcknowledge with one click: {}",
                links.link(incident, person, now)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn links_verify_and_reject_tampering_and_expiry() {
        let l = AckLinks::new("https://wr.example/", b"secret");
        let now = datetime!(2026-01-12 14:30 UTC);
        let url = l.link(7, "Ana Lee", now);
        assert!(
            url.starts_with("https://wr.example/ack/7/Ana%20Lee/"),
            "{url}"
        );
        let parts: Vec<&str> = url.rsplitn(3, '/').collect();
        let (sig, exp) = (parts[0], parts[1].parse::<i64>().unwrap());
        assert_eq!(l.verify(7, "Ana Lee", exp, sig, now), Ok(()));
        assert_eq!(
            l.verify(8, "Ana Lee", exp, sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            l.verify(7, "Bo", exp, sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            l.verify(7, "Ana Lee", exp + 1, sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            l.verify(7, "Ana Lee", exp, "zz", now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            l.verify(7, "Ana Lee", exp, sig, now + Duration::hours(25)),
            Err(LinkError::Expired)
        );
        assert!(!format!("{l:?}").contains("secret"));
    }
}
