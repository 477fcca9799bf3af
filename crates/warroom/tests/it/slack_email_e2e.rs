//! Slack and email end to end: the real binary with its config, a Slack stand-in speaking
//! Slack's wire format, and a real SMTP server.

use std::time::Duration;
use warroom_testkit::{
    backends, fresh_database,
    slack::{Channel, SlackStandIn},
    smtp::{SinkOptions, SmtpSink},
};

use super::cli::{Server, create_token, ok, run};

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_sev1_opens_its_slack_channel_emails_the_page_and_updates_move_the_topic() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(smtp) = SmtpSink::start(&SinkOptions::default()).unwrap() else {
        return;
    };
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let slack = SlackStandIn::start(&["UANA"]).await.unwrap();
        let before = smtp.received().unwrap().len();
        std::fs::write(
            dir.join("slack-token"),
            format!("{}\n", warroom_testkit::slack::TOKEN),
        )
        .unwrap();
        let cfg = dir.join("warroom.toml");
        std::fs::write(
            &cfg,
            format!(
                "[[channels]]\nname = \"slack\"\nkind = \"slack\"\ntoken_file = \"{token}\"\napi_url = \"{api}\"\n\n\
                 [[channels]]\nname = \"email\"\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
                 from = \"warroom@example.com\"\nto = [\"oncall@example.com\"]\n\n\
                 [[people]]\nname = \"ana\"\nslack_user = \"UANA\"\nemail = \"ana@example.com\"\n\n\
                 [routing]\npage = [\"email\"]\nteam = [\"slack\"]\nupdates = [\"slack\"]\n",
                token = dir.join("slack-token").display(),
                api = slack.api_url,
                port = smtp.port,
            ),
        )
        .unwrap();
        let cfg = cfg.to_str().unwrap();
        ok(&run(dir, &[], &["config", "check", cfg]));
        let token = create_token(dir, &db.url, "responder", "ana");
        let server = Server::start_with(&db.url, dir, &["--config", cfg], &[]);
        let env = server.client_env(&token);
        ok(&run(
            dir,
            &env,
            &[
                "declare",
                "--service",
                "api",
                "--summary",
                "API down",
                "--severity",
                "1",
            ],
        ));
        let incident: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/incidents/1", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let name = incident["channel"]
            .as_str()
            .unwrap()
            .trim_start_matches('#')
            .to_owned();
        let room = |slack: &SlackStandIn| -> Option<Channel> {
            slack.with(|w| w.channel_named(&name).cloned())
        };
        wait_until(|| room(&slack).is_some_and(|c| !c.messages.is_empty())).await;
        let c = room(&slack).unwrap_or_else(|| panic!("{b:?}: no Slack channel {name}"));
        assert_eq!(
            c.topic, "Sev1 · declared · INCIDENT: API - API down",
            "{b:?}"
        );
        assert_eq!(c.messages.len(), 1, "{b:?}");
        assert!(
            c.messages[0]["text"]
                .as_str()
                .unwrap()
                .contains("🔴 INCIDENT DECLARED"),
            "{b:?}: {:?}",
            c.messages[0]
        );
        assert_eq!(c.messages[0]["blocks"][0]["type"], "header");

        let mail = smtp.wait_for(before + 1).await.unwrap();
        assert_eq!(mail.len(), before + 1, "{b:?}: the page was emailed");
        assert_eq!(mail[before].rcpt_tos, ["oncall@example.com"]);
        assert!(
            mail[before]
                .content
                .contains("Subject: [Sev1] Page: INCIDENT: API - API down"),
            "{}",
            mail[before].content
        );

        // ana takes command; the next update invites her and moves the topic.
        ok(&run(
            dir,
            &env,
            &["assign", "1", "--role", "commander", "--person", "ana"],
        ));
        ok(&run(
            dir,
            &env,
            &[
                "update",
                "1",
                "--status",
                "investigating",
                "--action",
                "Failing over",
                "--findings",
                "DB unreachable",
                "--next",
                "Restore",
            ],
        ));
        wait_until(|| room(&slack).is_some_and(|c| c.messages.len() >= 2)).await;
        let c = room(&slack).unwrap();
        assert_eq!(c.messages.len(), 2, "{b:?}");
        assert_eq!(
            c.topic, "Sev1 · investigating · INCIDENT: API - API down",
            "{b:?}"
        );
        assert!(c.members.contains(&"UANA".to_owned()), "{b:?}: {c:?}");
        assert_eq!(
            slack.with(|w| w.calls_of("conversations.create").len()),
            1,
            "{b:?}: one channel for the incident"
        );
        let tl = ok(&run(dir, &env, &["timeline", "1"]));
        assert!(tl.contains("notification_delivered"), "{b:?}: {tl}");
    }
}
