//! The post-mortem template: everything the incident store knows is filled
//! in, everything only a human can write is a visible prompt.

use time::{Date, OffsetDateTime, UtcOffset};

use crate::edit::escape_cell;
use crate::meta::format_date;

/// One entry of the incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// When it happened (any offset; rendered in UTC).
    pub at: OffsetDateTime,
    /// Who wrote it.
    pub author: String,
    /// What happened.
    pub text: String,
}

/// One checklist step and whether it was done during the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistState {
    /// The checklist's name, e.g. "Incident Commander".
    pub list: String,
    /// The step.
    pub item: String,
    /// Whether it was ticked.
    pub done: bool,
}

/// What the incident store knows about an incident, mapped by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftInput {
    /// Incident number, e.g. 42.
    pub incident_number: u64,
    /// Incident title.
    pub title: String,
    /// Summary written during the incident, if any.
    pub summary: Option<String>,
    /// 1 (most severe) to 4.
    pub severity: u8,
    /// The severity's name, e.g. "Critical".
    pub severity_name: String,
    /// Affected service names.
    pub services: Vec<String>,
    /// Lifecycle status, e.g. "Resolved".
    pub status: String,
    /// When monitoring or a person first noticed.
    pub detected_at: Option<OffsetDateTime>,
    /// When the incident was declared.
    pub declared_at: Option<OffsetDateTime>,
    /// When the on-call acknowledged.
    pub acknowledged_at: Option<OffsetDateTime>,
    /// When the cause was identified.
    pub identified_at: Option<OffsetDateTime>,
    /// When user impact stopped.
    pub mitigated_at: Option<OffsetDateTime>,
    /// When the fix was confirmed.
    pub resolved_at: Option<OffsetDateTime>,
    /// When the incident was closed.
    pub closed_at: Option<OffsetDateTime>,
    /// Timeline entries written during the incident.
    pub timeline: Vec<TimelineEntry>,
    /// Root cause as recorded, if any.
    pub root_cause: Option<String>,
    /// The fix that was applied, if recorded.
    pub fix_applied: Option<String>,
    /// How the fix was verified, if recorded.
    pub verification: Option<String>,
    /// User-facing impact, if recorded.
    pub impact: Option<String>,
    /// Checklist state at the end of the response.
    pub checklist: Vec<ChecklistState>,
}

/// A prompt for something only a human can write. Italic text shows up in
/// every renderer, so nobody publishes a draft with holes by accident.
fn prompt(what: &str) -> String {
    format!("_To be written: {what}_")
}

/// `1h 23m`, `2d 4h`, `45m`, `30s`. Seconds are dropped above a minute
/// because post-mortem durations are read, not computed with.
pub fn human_duration(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn between(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) if b >= a => Some(human_duration(b - a)),
        _ => None,
    }
}

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(UtcOffset::UTC)
}

fn hhmm(t: OffsetDateTime, day: Option<Date>) -> String {
    let t = utc(t);
    let time = format!("{:02}:{:02}", t.hour(), t.minute());
    if Some(t.date()) == day {
        time
    } else {
        format!("{} {time}", format_date(t.date()))
    }
}

/// Lowercase ASCII words joined by `-`, at most 60 bytes, never empty.
pub fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let mut s = s.trim_end_matches('-').to_string();
    if s.len() > 60 {
        s.truncate(60);
        s = s.trim_end_matches('-').to_string();
    }
    if s.is_empty() {
        "incident".to_string()
    } else {
        s
    }
}

/// `YYYY-MM-DD-<slug>.md`: dated names sort chronologically in a folder.
pub fn draft_file_name(date: Date, title: &str) -> String {
    format!("{}-{}.md", format_date(date), slug(title))
}

/// Renders a new post-mortem draft.
pub fn render_draft(input: &DraftInput) -> String {
    let lifecycle = [
        (input.detected_at, "Detected"),
        (input.declared_at, "Incident declared"),
        (input.acknowledged_at, "Acknowledged by on-call"),
        (input.identified_at, "Cause identified"),
        (input.mitigated_at, "Mitigated: user impact stopped"),
        (input.resolved_at, "Resolved"),
        (input.closed_at, "Incident closed"),
    ];
    let start = lifecycle.iter().filter_map(|(t, _)| *t).min().map(utc);
    let day = start.map(|t| t.date());
    let began = input.detected_at.or(input.declared_at);
    let ended = input.resolved_at.or(input.mitigated_at);
    let duration = between(began, ended);
    let title = input.title.split_whitespace().collect::<Vec<_>>().join(" ");
    let services = if input.services.is_empty() {
        prompt("which services were affected?")
    } else {
        input.services.join(", ")
    };
    let text_or = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map_or_else(|| prompt(what), String::from)
    };

    let mut o = String::new();
    o.push_str(&format!("# Post-Mortem: {title}\n\n"));
    o.push_str("| Field | Value |\n|-------|-------|\n");
    let field =
        |o: &mut String, k: &str, v: &str| o.push_str(&format!("| {k} | {} |\n", escape_cell(v)));
    field(
        &mut o,
        "Date",
        &day.map_or_else(|| prompt("incident date"), format_date),
    );
    field(&mut o, "Incident", &format!("#{}", input.incident_number));
    field(
        &mut o,
        "Duration",
        &duration.clone().map_or_else(
            || prompt("detection to resolution"),
            |d| format!("{d} (detection to resolution)"),
        ),
    );
    field(
        &mut o,
        "Severity",
        &format!("SEV{} ({})", input.severity, input.severity_name),
    );
    field(&mut o, "Affected Services", &services);
    field(&mut o, "Status", &input.status);

    o.push_str("\n## Summary\n\n");
    o.push_str(&text_or(
        &input.summary,
        "two or three sentences a newcomer can follow: what broke, for whom, how it was fixed.",
    ));
    o.push_str("\n\n## Impact\n\n");
    o.push_str(&format!(
        "- **User-facing:** {}\n",
        text_or(&input.impact, "what users saw")
    ));
    o.push_str(&format!("- **Blast radius:** {services}\n"));
    o.push_str(&format!(
        "- **Duration:** {}\n",
        duration.clone().unwrap_or_else(|| prompt("how long"))
    ));
    for (label, a, b) in [
        ("Time to acknowledge", began, input.acknowledged_at),
        ("Time to mitigate", began, input.mitigated_at),
    ] {
        if let Some(d) = between(a, b) {
            o.push_str(&format!("- **{label}:** {d}\n"));
        }
    }
    o.push_str(&format!(
        "- **Data loss:** {}\n",
        prompt("was any data lost or corrupted? Say \"none\" explicitly")
    ));
    let gap = match between(input.detected_at, input.declared_at) {
        Some(d) => format!(
            "declared {d} after detection. {}",
            prompt("what should have caught it sooner?")
        ),
        None => prompt("what should have caught it sooner?"),
    };
    o.push_str(&format!("- **Monitoring gap:** {gap}\n"));

    o.push_str("\n## Timeline (UTC)\n\n| Time | Event |\n|------|-------|\n");
    let mut rows: Vec<(OffsetDateTime, String)> = lifecycle
        .iter()
        .filter_map(|(t, what)| t.map(|t| (t, (*what).to_string())))
        .collect();
    rows.extend(input.timeline.iter().map(|e| {
        let who = e.author.trim();
        let text = if who.is_empty() {
            e.text.clone()
        } else {
            format!("{} ({who})", e.text)
        };
        (e.at, text)
    }));
    rows.sort_by_key(|(t, _)| *t);
    for (t, what) in &rows {
        o.push_str(&format!("| {} | {} |\n", hhmm(*t, day), escape_cell(what)));
    }
    if rows.is_empty() {
        o.push_str(&format!("| {} | |\n", escape_cell(&prompt("times"))));
    }

    o.push_str("\n## Root Cause Chain\n\n");
    o.push_str(&text_or(&input.root_cause, "the chain from trigger to outage, one link per line: what happened, and why that was possible."));
    o.push_str("\n\n## Fix Applied\n\n");
    o.push_str(&text_or(
        &input.fix_applied,
        "what was changed to restore service",
    ));
    o.push_str("\n\n## Verification\n\n");
    o.push_str(&text_or(&input.verification, "how we know the fix worked"));
    o.push_str("\n\n## Contributing Factors\n\n");
    o.push_str(&prompt(
        "what made this worse or more likely (missing alerts, risky defaults, timing).",
    ));
    o.push_str("\n\n## Detection Gaps\n\n| Gap | Impact | Fix |\n|-----|--------|-----|\n");
    o.push_str("| <!-- TODO(human): what did monitoring miss? --> | | |\n");
    o.push_str("\n## Prevention Plan\n\n");
    o.push_str("<!-- TODO(human): one row per follow-up. Type is one of Alert, Config, Monitor, Architecture, Investigation, Migration, Runbook; only Alert, Config and Monitor are implemented automatically. Status starts as TODO. -->\n\n");
    o.push_str("| Priority | Action | Type | Details | Status |\n|----------|--------|------|---------|--------|\n");
    o.push_str("| P2 | <!-- TODO(human): action --> | | | TODO |\n");
    if !input.checklist.is_empty() {
        o.push_str(
            "\n## Response Checklist\n\n| Checklist | Step | Done |\n|-----------|------|------|\n",
        );
        for c in &input.checklist {
            let done = if c.done { "yes" } else { "no" };
            o.push_str(&format!(
                "| {} | {} | {done} |\n",
                escape_cell(&c.list),
                escape_cell(&c.item)
            ));
        }
    }
    o.push_str("\n## Lessons Learned\n\n");
    o.push_str(&prompt(
        "what went well, what went badly, where we got lucky.",
    ));
    o.push_str("\n\n## Follow-up Implementation\n\n");
    o.push_str("| Date | Action | Priority | Type | Commit | Implemented By |\n");
    o.push_str("|------|--------|----------|------|--------|----------------|\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(time::Duration::minutes(83)), "1h 23m");
        assert_eq!(human_duration(time::Duration::seconds(42)), "42s");
        assert_eq!(human_duration(time::Duration::hours(50)), "2d 2h");
        assert_eq!(human_duration(time::Duration::minutes(-5)), "0s");
    }

    #[test]
    fn file_names_are_dated_slugs() {
        let d = time::macros::date!(2026 - 04 - 14);
        assert_eq!(
            draft_file_name(d, "NFS outage: Immich & Nextcloud down!"),
            "2026-04-14-nfs-outage-immich-nextcloud-down.md"
        );
        assert_eq!(draft_file_name(d, "Überlast"), "2026-04-14-berlast.md");
        assert_eq!(draft_file_name(d, "???"), "2026-04-14-incident.md");
    }
}
