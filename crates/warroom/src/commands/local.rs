//! Commands that work without a server: tokens on the local database, config, classify.

use anyhow::Context;
use warroom_domain::{Severity, Signals, classify as run_tree};
use warroom_store::TokenRole;

use super::{output, serve};
use crate::{
    cli::{ConfigCommand, SignalArgs, TokenCommand},
    config,
};

pub fn signals(s: &SignalArgs) -> Signals {
    Signals {
        users_can_access: s.users_can_access.map(Into::into),
        failing_percent: s.failing_percent,
        recovering: s.recovering.map(Into::into),
        user_action_or_data_loss: s.user_action_or_data_loss.map(Into::into),
        latency_ratio: s.latency_ratio,
    }
}

pub async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        TokenCommand::Create { role, name, server } => {
            let role = TokenRole::parse(&role)?;
            let cfg = serve::load_config(&server)?;
            let store = serve::open_store(&cfg.config.database_url.0).await?;
            let t = store.create_token(&name, role, now).await?;
            // Only the secret on stdout, so `export WARROOM_TOKEN=$(warroom token create ...)` works.
            println!("{}", t.secret);
            eprintln!(
                "created {} token `{}` (id {}); it is shown only once",
                t.token.role, t.token.name, t.token.id
            );
        }
        TokenCommand::List { server } => {
            let cfg = serve::load_config(&server)?;
            let store = serve::open_store(&cfg.config.database_url.0).await?;
            let rows: Vec<Vec<String>> = store
                .list_tokens()
                .await?
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.name,
                        t.role.to_string(),
                        warroom_domain::timefmt::date_hm_utc(t.created_at),
                        t.revoked_at
                            .map(warroom_domain::timefmt::date_hm_utc)
                            .unwrap_or_else(|| "live".into()),
                    ]
                })
                .collect();
            output::table(&["ID", "NAME", "ROLE", "CREATED", "REVOKED"], &rows);
        }
        TokenCommand::Revoke { id, server } => {
            let cfg = serve::load_config(&server)?;
            let store = serve::open_store(&cfg.config.database_url.0).await?;
            if !store.revoke_token(&id, now).await? {
                anyhow::bail!("no live token with id {id}; see `warroom token list`");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

pub fn config(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check { file, config } => {
            // clap requires one of the two.
            let file = file.or(config).context("name the config file to check")?;
            let cfg = config::load(Some(&file))
                .with_context(|| format!("{} is not valid", file.display()))?;
            let checked =
                config::check(cfg).with_context(|| format!("{} is not valid", file.display()))?;
            println!(
                "{}: ok (listen {}, database {}, {} services, strict_services={})",
                file.display(),
                checked.listen,
                checked.config.database_url.redacted(),
                checked.services.len(),
                checked.config.strict_services
            );
            if let Some(p) = &checked.pipeline {
                println!(
                    "pipeline: {} ({}/{}, {}), agent `{}`, budget ${:.2}, webhook {}",
                    p.config.repo.display(),
                    p.config.remote,
                    p.config.branch,
                    p.config.postmortems_dir,
                    p.config.agent.join(" "),
                    p.config.budget_usd,
                    if p.webhook_secret.is_some() {
                        "signed"
                    } else {
                        "off (no secret)"
                    }
                );
            }
        }
        ConfigCommand::Example => print!("{}", config::EXAMPLE),
    }
    Ok(())
}

pub fn classify(s: SignalArgs, severity: Option<i64>, json: bool) -> anyhow::Result<()> {
    let explicit = severity.map(Severity::from_level).transpose()?;
    let c = run_tree(&signals(&s), explicit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    let policy = warroom_domain::SeverityPolicies::default();
    println!("Severity: {}", policy.get(c.severity).label());
    for step in &c.trace {
        println!("  {} → {} ({})", step.text, step.answer, step.value);
    }
    Ok(())
}
