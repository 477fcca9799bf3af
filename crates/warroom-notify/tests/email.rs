//! The email adapter against a real SMTP server on loopback (aiosmtpd), through the dispatcher.
#![allow(clippy::unwrap_used)]

use std::{collections::HashMap, sync::Arc, time::Duration as StdDuration};
use time::Duration;
use warroom_domain::{
    Severity,
    notify::{Notification, NotificationKind, RetryPolicy},
};
use warroom_notify::{
    Adapter, Dispatcher,
    adapters::email::{Email, EmailConfig, SmtpTls},
};
use warroom_store::{ManualClock, NewOutboxMessage, OutboxStatus, Store};
use warroom_testkit::{
    T0, backends, fresh_database, open_store,
    smtp::{SinkOptions, SmtpSink, self_signed_cert},
};

fn config(port: u16) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        ca_pem: None,
        credentials: None,
        from: "warroom <warroom@example.com>".into(),
        to: vec!["oncall@example.com".into()],
        people: HashMap::from([("ana".to_owned(), "ana@example.com".to_owned())]),
        timeout: StdDuration::from_secs(5),
    }
}

fn page() -> Notification {
    Notification {
        kind: NotificationKind::Page,
        incident: Some(1),
        severity: Some(Severity::Sev1),
        title: "INCIDENT: API - API down".into(),
        text: "🔴 INCIDENT DECLARED\nService: API\nSeverity: 1 (Critical) <now> & then".into(),
        incident_channel: Some("#incident-20260112-api".into()),
    }
}

fn dispatcher(store: &Arc<dyn Store>, clock: &Arc<ManualClock>, email: Email) -> Dispatcher {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let adapters: HashMap<String, Arc<dyn Adapter>> =
        HashMap::from([("email".to_owned(), Arc::new(email) as Arc<dyn Adapter>)]);
    Dispatcher::new(
        store.clone(),
        clock.clone(),
        adapters,
        RetryPolicy::default(),
    )
}

/// A header's value (unfolded) from the message's header block.
fn header(content: &str, name: &str) -> Option<String> {
    let head = content.split("\r\n\r\n").next()?.replace("\r\n ", " ");
    head.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

#[tokio::test]
async fn a_page_arrives_as_text_and_html_with_a_stable_message_id() {
    let Some(sink) = SmtpSink::start(&SinkOptions::default()).unwrap() else {
        return;
    };
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let before = sink.received().unwrap().len();
        let mut m = NewOutboxMessage::new("email", page());
        m.recipient = Some("ana".into());
        let key = store.enqueue(vec![m], T0).await.unwrap()[0]
            .idempotency_key
            .clone();
        let d = dispatcher(&store, &clock, Email::new(config(sink.port)).unwrap());
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 1, "{b:?}");
        let got = sink.wait_for(before + 1).await.unwrap();
        let mail = &got[before];
        assert_eq!(mail.mail_from, "warroom@example.com");
        assert_eq!(mail.rcpt_tos, ["oncall@example.com", "ana@example.com"]);
        let c = &mail.content;
        assert_eq!(
            header(c, "Subject").as_deref(),
            Some("[Sev1] Page: INCIDENT: API - API down"),
            "{c}"
        );
        assert_eq!(
            header(c, "Message-ID").as_deref(),
            Some(format!("<{key}@example.com>").as_str())
        );
        assert_eq!(
            header(c, "X-Warroom-Idempotency-Key").as_deref(),
            Some(key.as_str())
        );
        assert_eq!(
            header(c, "From").as_deref(),
            Some("warroom <warroom@example.com>")
        );
        assert_eq!(
            header(c, "To").as_deref(),
            Some("oncall@example.com, ana@example.com")
        );
        assert!(
            header(c, "Content-Type")
                .unwrap()
                .starts_with("multipart/alternative;"),
            "{c}"
        );
        // Both parts, each decodable: lettre picks the transfer encoding, so compare decoded.
        let parts = mime_parts(c);
        assert_eq!(parts.len(), 2, "{c}");
        assert!(
            parts[0].0.starts_with("text/plain; charset=utf-8"),
            "{parts:?}"
        );
        assert_eq!(parts[0].1, page().text);
        assert!(
            parts[1].0.starts_with("text/html; charset=utf-8"),
            "{parts:?}"
        );
        assert_eq!(
            parts[1].1,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>INCIDENT: API - API down</title></head>\n<body>\n<h2>INCIDENT: API - API down</h2>\n<pre style=\"font-family: sans-serif; white-space: pre-wrap\">🔴 INCIDENT DECLARED\nService: API\nSeverity: 1 (Critical) &lt;now&gt; &amp; then</pre>\n<p style=\"color: #666; font-size: small\">Page · Sev1 · incident 1 · #incident-20260112-api · warroom</p>\n</body></html>\n"
        );
    }
}

#[tokio::test]
async fn smtp_5xx_fails_at_once_and_4xx_is_retried() {
    let Some(sink) = SmtpSink::start(&SinkOptions::default()).unwrap() else {
        return;
    };
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let mut rejecting = config(sink.port);
        rejecting.to = vec!["reject@example.com".into()];
        let mut deferring = config(sink.port);
        deferring.to = vec!["tempfail@example.com".into()];
        store
            .enqueue(vec![NewOutboxMessage::new("email", page())], T0)
            .await
            .unwrap();
        let d = dispatcher(&store, &clock, Email::new(deferring).unwrap());
        let o = d.run_until_idle().await.unwrap();
        assert_eq!((o.retried, o.failed), (1, 0), "{b:?}: 451 is retried");
        clock.advance(Duration::seconds(5));
        let d = dispatcher(&store, &clock, Email::new(rejecting).unwrap());
        let o = d.run_until_idle().await.unwrap();
        assert_eq!((o.retried, o.failed), (0, 1), "{b:?}: 550 is final");
        let counts = store.outbox_counts().await.unwrap();
        assert!(counts.contains(&(OutboxStatus::Failed, 1)), "{counts:?}");
        // A server that is not there is the network: retried.
        store
            .enqueue(vec![NewOutboxMessage::new("email", page())], T0)
            .await
            .unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dispatcher(&store, &clock, Email::new(config(closed)).unwrap());
        assert_eq!(d.run_until_idle().await.unwrap().retried, 1, "{b:?}");
    }
}

#[tokio::test]
async fn starttls_and_auth_are_used_when_configured() {
    let work = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed_cert(work.path()) else {
        eprintln!("!!!!!!!! openssl is missing: the STARTTLS test is SKIPPED !!!!!!!!");
        return;
    };
    let opts = SinkOptions {
        auth: Some(("warroom".into(), "s3cret-pass".into())),
        tls: Some((cert.clone(), key)),
    };
    let Some(sink) = SmtpSink::start(&opts).unwrap() else {
        return;
    };
    let b = backends()[0];
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut c = config(sink.port);
    c.tls = SmtpTls::Starttls;
    c.credentials = Some(("warroom".into(), "s3cret-pass".into()));
    store
        .enqueue(vec![NewOutboxMessage::new("email", page())], T0)
        .await
        .unwrap();
    // Not trusting the server's certificate: nothing is sent, not even the password.
    let d = dispatcher(&store, &clock, Email::new(c.clone()).unwrap());
    assert_eq!(d.run_until_idle().await.unwrap().retried, 1);
    let last = store.outbox_counts().await.unwrap();
    assert!(last.contains(&(OutboxStatus::Pending, 1)), "{last:?}");
    assert!(sink.received().unwrap().is_empty());
    clock.advance(Duration::seconds(10));
    c.ca_pem = Some(std::fs::read(&cert).unwrap());
    let d = dispatcher(&store, &clock, Email::new(c).unwrap());
    assert_eq!(d.run_until_idle().await.unwrap().delivered, 1);
    let got = sink.wait_for(1).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the session was upgraded with STARTTLS");
    assert!(got[0].auth, "the client authenticated");
}

/// (content type, decoded body) of each part of a multipart message.
fn mime_parts(content: &str) -> Vec<(String, String)> {
    let ct = header(content, "Content-Type").unwrap_or_default();
    let boundary = ct
        .split("boundary=\"")
        .nth(1)
        .and_then(|b| b.split('"').next())
        .unwrap_or_default()
        .to_owned();
    content
        .split(&format!("--{boundary}"))
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .map(|p| {
            let p = p.trim_start_matches("\r\n");
            let (head, body) = p.split_once("\r\n\r\n").unwrap_or((p, ""));
            let get = |n: &str| {
                head.split("\r\n")
                    .find_map(|l| l.strip_prefix(&format!("{n}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            let body = body.strip_suffix("\r\n").unwrap_or(body);
            let decoded = match get("Content-Transfer-Encoding").as_str() {
                "quoted-printable" => quoted_printable(body),
                "base64" => base64(body),
                _ => body.replace("\r\n", "\n"),
            };
            (get("Content-Type"), decoded)
        })
        .collect()
}

fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("\r\n", "\n");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = A.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}
