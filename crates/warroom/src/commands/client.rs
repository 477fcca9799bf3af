//! Commands that talk to a running server over its JSON API.

use anyhow::{Context, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::{local::signals, output};
use crate::cli::{ClientArgs, Command, ResolutionArgs};

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<crate::secret::Secret>,
}

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Client {
            http,
            base: args.url.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
        })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach warroom at {}: {}; is `warroom serve` running and WARROOM_URL right?",
                self.base,
                root_cause(&e)
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.context("reading the server's answer")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        // Alertmanager's routes answer a client error with the message alone, as a string.
        let message = value
            .as_str()
            .or_else(|| value.get("message").and_then(Value::as_str))
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            bail!("{message} (set WARROOM_TOKEN or pass --token)");
        }
        bail!("{message} (HTTP {})", status.as_u16())
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// One monitor from a file, as the API's JSON. TOML is parsed here only into a value: the
/// server validates it, so its errors (`$.interval_secs: ...`) are the same for every client.
/// `90s`, `30m`, `2h`, `1d`.
fn duration_arg(arg: &str) -> anyhow::Result<time::Duration> {
    let bad = || anyhow!("--for `{arg}`: give a number and a unit, e.g. 90s, 30m, 2h or 1d");
    let unit = arg.chars().last().ok_or_else(bad)?;
    let n: i64 = arg[..arg.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let per_unit: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    // Ten years at most: a longer silence is a disabled alert, and the arithmetic must not
    // overflow on a typo.
    match n.checked_mul(per_unit) {
        Some(secs) if n > 0 && secs <= 10 * 366 * 86_400 => Ok(time::Duration::seconds(secs)),
        _ => Err(anyhow!(
            "--for `{arg}`: give a positive length up to 10 years, e.g. 90s, 30m, 2h or 1d"
        )),
    }
}

fn monitor_file(path: &std::path::Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the monitor file {}", path.display()))?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    } else {
        toml::from_str(&text).with_context(|| {
            format!(
                "{} is not valid TOML; write one monitor's keys (id, service, interval_secs, [check]) at the top level",
                path.display()
            )
        })
    }
}

fn number(raw: &str) -> anyhow::Result<i64> {
    raw.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            anyhow!("`{raw}` is not an incident number; use a positive whole number such as 12")
        })
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn print_incident(i: &Value) {
    println!("#{} {}", s(i, "number"), s(i, "title"));
    println!(
        "Severity:  {} ({}), by {}",
        s(i, "severity"),
        s(i, "severity_name"),
        s(i, "severity_basis").replace('_', " ")
    );
    if let Some(trace) = i.get("severity_trace").and_then(Value::as_array) {
        for t in trace {
            println!(
                "           {} → {} ({})",
                s(t, "text"),
                s(t, "answer"),
                s(t, "value")
            );
        }
    }
    println!("Status:    {}", s(i, "status"));
    println!(
        "Services:  {}",
        i.get("services").map(|v| v.to_string()).unwrap_or_default()
    );
    println!("Channel:   {}", s(i, "channel"));
    println!("Reporter:  {}", s(i, "reporter"));
    println!("Detected:  {}", s(i, "detected_at"));
    println!("Declared:  {}", s(i, "declared_at"));
    for (k, label) in [
        ("acknowledged_at", "Acked:     "),
        ("identified_at", "Identified:"),
        ("mitigated_at", "Mitigated: "),
        ("resolved_at", "Resolved:  "),
        ("closed_at", "Closed:    "),
        ("next_update_due", "Next update due:"),
        ("root_cause", "Root cause:"),
        ("fix_applied", "Fix:       "),
        ("verification", "Verified:  "),
    ] {
        if i.get(k).is_some_and(|v| !v.is_null()) {
            println!("{label} {}", s(i, k));
        }
    }
    if let Some(roles) = i.get("roles") {
        println!(
            "Roles:     commander={} communication_lead={} on_call_manager={} responders={}",
            s(roles, "commander"),
            s(roles, "communication_lead"),
            s(roles, "on_call_manager"),
            roles
                .get("technical_responders")
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
    if let Some(m) = i.get("missing_roles").and_then(Value::as_array)
        && !m.is_empty()
    {
        let names: Vec<String> = m
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_owned())
            .collect();
        println!(
            "Missing:   {} (assign with `warroom assign`)",
            names.join(", ")
        );
    }
    if i.get("update_overdue") == Some(&Value::Bool(true)) {
        println!("UPDATE OVERDUE: post one with `warroom update`");
    }
}

fn resolution_body(to: &str, f: &ResolutionArgs) -> Value {
    let mut body = json!({ "to": to });
    for (k, v) in [
        ("note", &f.note),
        ("root_cause", &f.root_cause),
        ("fix_applied", &f.fix_applied),
        ("verification", &f.verification),
    ] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    if f.impact_who.is_some() || f.impact_count.is_some() || f.impact_duration.is_some() {
        body["impact"] = json!({ "who": f.impact_who, "how_many": f.impact_count, "how_long": f.impact_duration });
    }
    body
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    let (client_args, method, path, body) = match &cmd {
        Command::Declare {
            service,
            also,
            summary,
            severity,
            signals: sig,
            reporter,
            detected_at,
            client,
        } => {
            let sig = signals(sig);
            let mut body = json!({ "service": service, "summary": summary, "services": also });
            if !sig.is_empty() {
                body["signals"] = serde_json::to_value(&sig)?;
            }
            for (k, v) in [("reporter", reporter), ("detected_at", detected_at)] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if let Some(sev) = severity {
                body["severity"] = json!(sev);
            }
            (
                client,
                Method::POST,
                "/api/v1/incidents".to_owned(),
                Some(body),
            )
        }
        Command::Incidents {
            status,
            severity,
            service,
            limit,
            client,
        } => {
            let mut q = vec![format!("limit={limit}")];
            if let Some(v) = status {
                q.push(format!("status={v}"));
            }
            if let Some(v) = severity {
                q.push(format!("severity={v}"));
            }
            if let Some(v) = service {
                q.push(format!("service={v}"));
            }
            (
                client,
                Method::GET,
                format!("/api/v1/incidents?{}", q.join("&")),
                None,
            )
        }
        Command::Show { number: n, client } => (
            client,
            Method::GET,
            format!("/api/v1/incidents/{}", number(n)?),
            None,
        ),
        Command::Update {
            number: n,
            current_action,
            findings,
            next_step,
            status,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/updates", number(n)?),
            Some(
                json!({ "current_action": current_action, "findings": findings, "next_step": next_step, "status": status }),
            ),
        ),
        Command::Note {
            number: n,
            text,
            action,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/notes", number(n)?),
            Some(json!({ "text": text, "action": action })),
        ),
        Command::Assign {
            number: n,
            role,
            person,
            remove,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/roles", number(n)?),
            Some(json!({ "role": role, "person": person, "remove": remove })),
        ),
        Command::Severity {
            number: n,
            severity,
            signals: sig,
            reason,
            client,
        } => {
            let sig = signals(sig);
            let mut body = json!({ "reason": reason, "severity": severity });
            if !sig.is_empty() {
                body["signals"] = serde_json::to_value(&sig)?;
            }
            (
                client,
                Method::POST,
                format!("/api/v1/incidents/{}/severity", number(n)?),
                Some(body),
            )
        }
        Command::Transition {
            number: n,
            status,
            fields,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/transition", number(n)?),
            Some(resolution_body(status, fields)),
        ),
        Command::Resolve {
            number: n,
            fields,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/transition", number(n)?),
            Some(resolution_body("resolved", fields)),
        ),
        Command::Close {
            number: n,
            note,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/transition", number(n)?),
            Some(json!({ "to": "closed", "note": note })),
        ),
        Command::Ack {
            number: n,
            person,
            client,
        } => (
            client,
            Method::POST,
            format!("/api/v1/incidents/{}/ack", number(n)?),
            Some(json!({ "person": person })),
        ),
        Command::Health { client } => (client, Method::GET, "/api/v1/health".to_owned(), None),
        Command::Alerts {
            status,
            incident: Some(n),
            client,
        } if status.is_none() => (
            client,
            Method::GET,
            format!("/api/v1/incidents/{}/alerts", number(n)?),
            None,
        ),
        Command::Alerts { status, client, .. } => {
            let q = status
                .as_ref()
                .map(|s| format!("?status={s}"))
                .unwrap_or_default();
            (client, Method::GET, format!("/api/v1/alerts{q}"), None)
        }
        Command::Monitors { command, client } => match command {
            None => (client, Method::GET, "/api/v1/monitors".to_owned(), None),
            Some(crate::cli::MonitorsCommand::Add { file }) => (
                client,
                Method::POST,
                "/api/v1/monitors".to_owned(),
                Some(monitor_file(file)?),
            ),
            Some(crate::cli::MonitorsCommand::Rm { id }) => (
                client,
                Method::DELETE,
                format!("/api/v1/monitors/{id}"),
                None,
            ),
        },
        Command::Silences { command, client } => match command {
            None => (client, Method::GET, "/api/v2/silences".to_owned(), None),
            Some(crate::cli::SilencesCommand::Add {
                matchers,
                duration,
                comment,
            }) => {
                let specs = matchers
                    .iter()
                    .map(|m| warroom_domain::alert::MatcherSpec::parse(m))
                    .collect::<Result<Vec<_>, _>>()?;
                let length = duration_arg(duration)?;
                let now = time::OffsetDateTime::now_utc();
                (
                    client,
                    Method::POST,
                    "/api/v2/silences".to_owned(),
                    Some(json!({
                        "matchers": specs,
                        "startsAt": warroom_domain::timefmt::rfc3339(now),
                        "endsAt": warroom_domain::timefmt::rfc3339(now + length),
                        "comment": comment,
                    })),
                )
            }
            Some(crate::cli::SilencesCommand::Expire { id }) => (
                client,
                Method::DELETE,
                format!("/api/v2/silence/{id}"),
                None,
            ),
        },
        Command::Oncall { at, client } => {
            let q = at.as_ref().map(|a| format!("?at={a}")).unwrap_or_default();
            (client, Method::GET, format!("/api/v1/oncall{q}"), None)
        }
        Command::Timeline { number: n, client } => (
            client,
            Method::GET,
            format!("/api/v1/incidents/{}/timeline", number(n)?),
            None,
        ),
        Command::Checklist {
            number: n,
            tick,
            client,
        } => match tick {
            Some(item) => (
                client,
                Method::POST,
                format!("/api/v1/incidents/{}/checklists/{item}/tick", number(n)?),
                None,
            ),
            None => (
                client,
                Method::GET,
                format!("/api/v1/incidents/{}/checklists", number(n)?),
                None,
            ),
        },
        Command::Messages { number: n, client } => (
            client,
            Method::GET,
            format!("/api/v1/incidents/{}/messages", number(n)?),
            None,
        ),
        Command::Serve { .. }
        | Command::Worker { .. }
        | Command::Token { .. }
        | Command::Config { .. }
        | Command::Classify { .. }
        | Command::Postmortem { .. }
        | Command::Site { .. }
        | Command::Pipeline { .. } => {
            bail!("not a client command")
        }
    };
    let client = Client::new(client_args)?;
    let v = client.call(method, &path, body).await?;
    if client_args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    match cmd {
        Command::Incidents { .. } => {
            let rows: Vec<Vec<String>> = v["incidents"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            vec![
                                s(i, "number"),
                                format!("SEV{}", s(i, "severity")),
                                s(i, "status"),
                                s(i, "title"),
                                s(i, "declared_at"),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            output::table(&["#", "SEV", "STATUS", "TITLE", "DECLARED"], &rows);
        }
        Command::Timeline { .. } => {
            for e in v["events"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<12} {:<16} {}",
                    s(e, "at"),
                    s(e, "author"),
                    s(e, "kind"),
                    s(e, "text")
                );
            }
        }
        Command::Checklist { .. } => {
            for i in v["items"].as_array().into_iter().flatten() {
                let done = if i["done"].is_null() { "[ ]" } else { "[x]" };
                let due = if i["due_at"].is_null() {
                    String::new()
                } else {
                    format!(" (due {})", s(i, "due_at"))
                };
                let overdue = if i["overdue"] == Value::Bool(true) {
                    " OVERDUE"
                } else {
                    ""
                };
                println!("{done} {:<32} {}{due}{overdue}", s(i, "id"), s(i, "text"));
            }
        }
        Command::Messages { .. } => {
            for k in [
                "declared",
                "update",
                "status_page",
                "escalation",
                "resolved",
            ] {
                if let Some(m) = v[k].as_str() {
                    println!("--- {k} ---\n{m}\n");
                }
            }
        }
        Command::Note { .. } => println!("noted"),
        Command::Health { .. } => {
            let rows: Vec<Vec<String>> = v["services"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    vec![
                        s(h, "service"),
                        s(h, "status"),
                        s(h, "since"),
                        s(h, "cause"),
                    ]
                })
                .collect();
            output::table(&["SERVICE", "HEALTH", "SINCE", "CAUSE"], &rows);
        }
        Command::Alerts { .. } => {
            let rows: Vec<Vec<String>> = v["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    vec![
                        s(a, "name"),
                        s(a, "status"),
                        a["service"].as_str().unwrap_or("-").to_owned(),
                        s(a, "starts_at"),
                        s(a, "received"),
                        if a["suggestion"].is_string() {
                            "suggested".to_owned()
                        } else {
                            s(a, "incident")
                        },
                    ]
                })
                .collect();
            output::table(
                &[
                    "ALERT", "STATUS", "SERVICE", "SINCE", "RECEIVED", "INCIDENT",
                ],
                &rows,
            );
            for a in v["alerts"].as_array().into_iter().flatten() {
                if let Some(sug) = a["suggestion"].as_str() {
                    println!("{}: {sug}", s(a, "name"));
                }
            }
        }
        Command::Silences {
            command: Some(crate::cli::SilencesCommand::Add { .. }),
            ..
        } => println!(
            "silence {} created; matching alerts are muted",
            s(&v, "silenceID")
        ),
        Command::Silences {
            command: Some(crate::cli::SilencesCommand::Expire { id }),
            ..
        } => println!(
            "silence {id} expired; the firing alerts it held back are acted on within a second"
        ),
        Command::Silences { .. } => {
            let rows: Vec<Vec<String>> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    let matchers: Vec<String> = serde_json::from_value::<
                        Vec<warroom_domain::alert::MatcherSpec>,
                    >(x["matchers"].clone())
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                    vec![
                        s(x, "id"),
                        s(&x["status"], "state"),
                        matchers.join(","),
                        s(x, "startsAt"),
                        s(x, "endsAt"),
                        s(x, "createdBy"),
                        s(x, "comment"),
                    ]
                })
                .collect();
            output::table(
                &["ID", "STATE", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT"],
                &rows,
            );
        }
        Command::Monitors {
            command: Some(crate::cli::MonitorsCommand::Add { .. }),
            ..
        } => println!(
            "monitor {} created (source: api); it starts within a second",
            s(&v, "id")
        ),
        Command::Monitors {
            command: Some(crate::cli::MonitorsCommand::Rm { id }),
            ..
        } => println!("monitor {id} deleted; it is no longer checked"),
        Command::Monitors { .. } => {
            let pct = |u: &Value| {
                u["availability_percent"]
                    .as_f64()
                    .map(|p| format!("{p:.3}%"))
                    .unwrap_or_else(|| "-".into())
            };
            let rows: Vec<Vec<String>> = v["monitors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let last = &m["last_check"];
                    let last = match (last["ok"].as_bool(), last["failure"].as_str()) {
                        (Some(true), _) => format!("ok {} ms", last["latency_ms"]),
                        (Some(false), Some(f)) => format!("{f} {} ms", last["latency_ms"]),
                        _ => "-".into(),
                    };
                    vec![
                        s(m, "id"),
                        s(m, "service"),
                        s(m, "status").to_uppercase(),
                        last,
                        s(m, "interval_secs"),
                        s(m, "source"),
                        pct(&m["uptime_24h"]),
                        pct(&m["uptime_30d"]),
                    ]
                })
                .collect();
            output::table(
                &[
                    "MONITOR",
                    "SERVICE",
                    "STATUS",
                    "LAST CHECK",
                    "EVERY (S)",
                    "SOURCE",
                    "24H",
                    "30D",
                ],
                &rows,
            );
        }
        Command::Oncall { .. } => {
            for sch in v["schedules"].as_array().into_iter().flatten() {
                let who = sch["on_call"]["person"].as_str().unwrap_or("NOBODY");
                println!(
                    "{}: {who} (until {})",
                    s(sch, "schedule"),
                    s(&sch["on_call"], "shift_end")
                );
                for g in sch["gaps_next_7_days"].as_array().into_iter().flatten() {
                    println!("  gap: {} to {}", s(g, "start"), s(g, "end"));
                }
            }
        }
        Command::Update { .. } => {
            if let Some(m) = v["message"].as_str() {
                println!("{m}");
            }
        }
        _ => print_incident(&v),
    }
    Ok(())
}
