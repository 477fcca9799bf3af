//! The words people use for status, type and priority, and how they normalise.
//!
//! Everything here works on whole words: text is split into lowercase
//! alphanumeric tokens first, so "Alertmanager" never matches "alert" and
//! "Remove" never matches "move".

use serde::{Serialize, Serializer};

/// Normalised status of a follow-up item. The raw text is kept next to it
/// in [`crate::Item::status_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// Not started: TODO, open, pending, not yet done.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Waiting on something outside the team's control.
    Blocked,
    /// Consciously postponed by a human.
    Deferred,
    /// Nice to have; still open.
    Optional,
    /// Tracked elsewhere (an issue, a ticket); still open.
    Tracked,
    /// Done, completed, fixed, resolved, closed, shipped, ✅, `[x]`, struck through.
    Done,
    /// Closed without doing it: won't fix, cancelled, obsolete.
    Dropped,
    /// Our automation looked at it and handed it to a human.
    NeedsHumanReview,
    /// A status we do not recognise. Never treated as done.
    NeedsTriage,
}

impl StatusKind {
    /// Whether the item still represents work somebody has to do.
    pub fn is_open(self) -> bool {
        !matches!(self, StatusKind::Done | StatusKind::Dropped)
    }

    /// Whether automation should consider the item at all (it may still be
    /// skipped as unsafe). Items already handed to a human are not.
    pub fn is_pending_for_automation(self) -> bool {
        self.is_open() && self != StatusKind::NeedsHumanReview
    }
}

/// Kind of follow-up, the `Type` column of the Prevention Plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ItemType {
    /// A Prometheus rule or alert threshold. Safe for automation.
    Alert,
    /// A configuration change (Terraform value, NFS option). Safe for automation.
    Config,
    /// An uptime/HTTP/TCP monitor. Safe for automation.
    Monitor,
    /// A redesign; needs a human.
    Architecture,
    /// Research or root-cause work; needs a human.
    Investigation,
    /// Moving data or services; needs a human.
    Migration,
    /// Writing a recovery procedure; needs a human.
    Runbook,
    /// Not typed confidently. Never safe.
    Unknown,
}

impl ItemType {
    /// The three types automation may implement without a human.
    pub fn is_auto_implementable(self) -> bool {
        matches!(self, ItemType::Alert | ItemType::Config | ItemType::Monitor)
    }

    /// The spelling used in documents and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Alert => "Alert",
            ItemType::Config => "Config",
            ItemType::Monitor => "Monitor",
            ItemType::Architecture => "Architecture",
            ItemType::Investigation => "Investigation",
            ItemType::Migration => "Migration",
            ItemType::Runbook => "Runbook",
            ItemType::Unknown => "Unknown",
        }
    }
}

/// Follow-up priority, `P0` (most urgent) to `P3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Do it now.
    P0,
    /// This week.
    P1,
    /// Normal; also the default when nothing states a priority.
    P2,
    /// When there is time.
    P3,
}

impl Priority {
    /// Priority given to items nothing prioritises. P2 keeps unprioritised
    /// work ahead of explicitly low-priority work but behind anything flagged.
    pub const DEFAULT: Priority = Priority::P2;

    /// `"P0"` .. `"P3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Lowercase alphanumeric words of `text`. Apostrophes are dropped inside
/// words so "won't" becomes "wont"; every other non-alphanumeric character
/// separates words.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’') && !cur.is_empty() {
            // keep the word going: "won't" -> "wont"
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether `phrase` (already split into words) occurs in `ws` starting at `i`.
fn phrase_at(ws: &[String], i: usize, phrase: &[&str]) -> bool {
    phrase.len() + i <= ws.len() && phrase.iter().zip(&ws[i..]).all(|(p, w)| p == w)
}

/// Status phrases, longest and negated forms first so "not yet done" is
/// read as open before "done" can match.
const STATUS_PHRASES: &[(&[&str], StatusKind)] = &[
    (&["needs", "human", "review"], StatusKind::NeedsHumanReview),
    (&["needs", "review"], StatusKind::NeedsHumanReview),
    (&["human", "review"], StatusKind::NeedsHumanReview),
    (&["not", "yet", "done"], StatusKind::Open),
    (&["not", "yet", "actioned"], StatusKind::Open),
    (&["not", "yet", "implemented"], StatusKind::Open),
    (&["not", "yet", "started"], StatusKind::Open),
    (&["not", "done"], StatusKind::Open),
    (&["not", "started"], StatusKind::Open),
    (&["not", "actioned"], StatusKind::Open),
    (&["not", "implemented"], StatusKind::Open),
    (&["to", "do"], StatusKind::Open),
    (&["in", "progress"], StatusKind::InProgress),
    (&["nice", "to", "have"], StatusKind::Optional),
    (&["wont", "fix"], StatusKind::Dropped),
    (&["wont", "do"], StatusKind::Dropped),
    (&["todo"], StatusKind::Open),
    (&["open"], StatusKind::Open),
    (&["pending"], StatusKind::Open),
    (&["planned"], StatusKind::Open),
    (&["unresolved"], StatusKind::Open),
    (&["outstanding"], StatusKind::Open),
    (&["wip"], StatusKind::InProgress),
    (&["ongoing"], StatusKind::InProgress),
    (&["started"], StatusKind::InProgress),
    (&["blocked"], StatusKind::Blocked),
    (&["deferred"], StatusKind::Deferred),
    (&["postponed"], StatusKind::Deferred),
    (&["backlog"], StatusKind::Deferred),
    (&["optional"], StatusKind::Optional),
    (&["tracked"], StatusKind::Tracked),
    (&["done"], StatusKind::Done),
    (&["completed"], StatusKind::Done),
    (&["complete"], StatusKind::Done),
    (&["fixed"], StatusKind::Done),
    (&["resolved"], StatusKind::Done),
    (&["closed"], StatusKind::Done),
    (&["shipped"], StatusKind::Done),
    (&["implemented"], StatusKind::Done),
    (&["merged"], StatusKind::Done),
    (&["deployed"], StatusKind::Done),
    (&["wontfix"], StatusKind::Dropped),
    (&["cancelled"], StatusKind::Dropped),
    (&["canceled"], StatusKind::Dropped),
    (&["dropped"], StatusKind::Dropped),
    (&["obsolete"], StatusKind::Dropped),
];

/// Emoji and check marks that mean "done" on their own.
const DONE_MARKS: &[&str] = &["✅", "✔", "☑", "✓", "[x]", "[X]"];

/// Reads a status from free text: the first status phrase, scanning left to
/// right. `None` when nothing in the text is status vocabulary.
pub(crate) fn status_from_text(text: &str) -> Option<StatusKind> {
    let ws = words(text);
    for i in 0..ws.len() {
        for (phrase, kind) in STATUS_PHRASES {
            if phrase_at(&ws, i, phrase) {
                return Some(*kind);
            }
        }
    }
    if DONE_MARKS.iter().any(|m| text.contains(m)) {
        return Some(StatusKind::Done);
    }
    if text.contains('⏳') || text.contains('🚧') {
        return Some(StatusKind::InProgress);
    }
    None
}

/// Reads a status a heading states about its content: a status phrase that
/// starts or ends the heading ("Open follow-ups", "Follow-ups completed").
/// Phrases in the middle ("what would have closed the gap") do not count,
/// so a heading never marks work done by accident.
pub(crate) fn status_at_edges(text: &str) -> Option<StatusKind> {
    let ws: Vec<String> = words(text)
        .into_iter()
        .skip_while(|w| priority_word(w).is_some() || w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    for (phrase, kind) in STATUS_PHRASES {
        if phrase_at(&ws, 0, phrase)
            || (ws.len() >= phrase.len() && phrase_at(&ws, ws.len() - phrase.len(), phrase))
        {
            return Some(*kind);
        }
    }
    None
}

/// Whether the text is nothing but status vocabulary ("TODO", "Done ✅",
/// "in progress"), as opposed to notes that happen to contain a status word.
pub(crate) fn is_pure_status(text: &str) -> bool {
    let ws = words(text);
    if ws.is_empty() {
        return DONE_MARKS.iter().any(|m| text.trim() == *m);
    }
    ws.iter()
        .all(|w| STATUS_PHRASES.iter().any(|(p, _)| p.contains(&w.as_str())))
}

/// Reads a status cell: empty means open (nobody marked it), unknown text
/// means needs triage, never done.
pub(crate) fn status_from_cell(text: &str) -> StatusKind {
    let t = text.trim();
    if t.is_empty() || is_blank_marker(t) || t == "[ ]" {
        return StatusKind::Open;
    }
    status_from_text(t).unwrap_or(StatusKind::NeedsTriage)
}

/// Dashes and ellipses people put in cells that mean "nothing here".
pub(crate) fn is_blank_marker(t: &str) -> bool {
    matches!(
        t.trim(),
        "" | "-" | "—" | "–" | "..." | "…" | "?" | "n/a" | "N/A" | "TBD"
    )
}

/// Reads `P0`..`P3` (also `p1`, `1`, `Critical`/`High`/`Medium`/`Low`)
/// from a priority cell.
pub(crate) fn priority_from_cell(text: &str) -> Option<Priority> {
    let ws = words(text);
    let first = ws.first()?;
    if let Some(p) = priority_word(first) {
        return Some(p);
    }
    match first.as_str() {
        "0" => Some(Priority::P0),
        "1" => Some(Priority::P1),
        "2" => Some(Priority::P2),
        "3" => Some(Priority::P3),
        "critical" | "urgent" | "highest" => Some(Priority::P0),
        "high" => Some(Priority::P1),
        "medium" | "med" | "normal" => Some(Priority::P2),
        "low" | "lowest" => Some(Priority::P3),
        _ => None,
    }
}

/// `p0`..`p3` as one lowercase word.
pub(crate) fn priority_word(w: &str) -> Option<Priority> {
    match w {
        "p0" => Some(Priority::P0),
        "p1" => Some(Priority::P1),
        "p2" => Some(Priority::P2),
        "p3" => Some(Priority::P3),
        _ => None,
    }
}

/// The first `P0`..`P3` word in free text such as a heading.
pub(crate) fn priority_in_text(text: &str) -> Option<Priority> {
    words(text).iter().find_map(|w| priority_word(w))
}

/// Maps an explicit Type column value. Values naming several types
/// ("Runbook + Config") or none we know ("Terraform") are `Unknown`.
pub(crate) fn type_from_column(raw: &str) -> ItemType {
    let mut found: Option<ItemType> = None;
    let mut unknown_word = false;
    for w in words(raw) {
        let t = match w.as_str() {
            "alert" | "alerts" | "alerting" | "prometheusrule" => ItemType::Alert,
            "config" | "configuration" | "setting" | "settings" => ItemType::Config,
            "monitor" | "monitors" | "monitoring" => ItemType::Monitor,
            "architecture" | "arch" | "design" | "redesign" => ItemType::Architecture,
            "investigation" | "investigate" | "research" | "analysis" => ItemType::Investigation,
            "migration" | "migrate" => ItemType::Migration,
            "runbook" | "runbooks" | "docs" | "doc" | "documentation" => ItemType::Runbook,
            "and" | "or" => continue,
            _ => {
                unknown_word = true;
                continue;
            }
        };
        match found {
            None => found = Some(t),
            Some(prev) if prev == t => {}
            Some(_) => return ItemType::Unknown,
        }
    }
    if unknown_word {
        return ItemType::Unknown;
    }
    found.unwrap_or(ItemType::Unknown)
}

/// Whole-word (and whole-phrase) cues used to infer a type from action text.
const TYPE_CUES: &[(&[&str], ItemType)] = &[
    (&["prometheusrule"], ItemType::Alert),
    (&["alert"], ItemType::Alert),
    (&["alerts"], ItemType::Alert),
    (&["alerting"], ItemType::Alert),
    (&["uptime", "check"], ItemType::Monitor),
    (&["tcp", "check"], ItemType::Monitor),
    (&["http", "check"], ItemType::Monitor),
    (&["ping"], ItemType::Monitor),
    (&["monitor"], ItemType::Monitor),
    (&["monitors"], ItemType::Monitor),
    (&["monitoring"], ItemType::Monitor),
    (&["migrate"], ItemType::Migration),
    (&["migrating"], ItemType::Migration),
    (&["migration"], ItemType::Migration),
    (&["investigate"], ItemType::Investigation),
    (&["investigation"], ItemType::Investigation),
    (&["review"], ItemType::Investigation),
    (&["verify"], ItemType::Investigation),
    (&["research"], ItemType::Investigation),
    (&["document"], ItemType::Runbook),
    (&["documentation"], ItemType::Runbook),
    (&["runbook"], ItemType::Runbook),
    (&["config"], ItemType::Config),
    (&["configure"], ItemType::Config),
    (&["configuration"], ItemType::Config),
    (&["option"], ItemType::Config),
    (&["options"], ItemType::Config),
    (&["setting"], ItemType::Config),
    (&["settings"], ItemType::Config),
    (&["redesign"], ItemType::Architecture),
    (&["architecture"], ItemType::Architecture),
];

/// Outcome of inferring a type from action text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inferred {
    /// Exactly one type's cues were found.
    One(ItemType),
    /// Cues of several types were found; the list is in first-seen order.
    Ambiguous(Vec<ItemType>),
    /// No cue at all.
    Nothing,
}

/// Infers a type from free text on whole words only.
pub(crate) fn infer_type(text: &str) -> Inferred {
    let ws = words(text);
    let mut found: Vec<ItemType> = Vec::new();
    for i in 0..ws.len() {
        for (phrase, t) in TYPE_CUES {
            if phrase_at(&ws, i, phrase) && !found.contains(t) {
                found.push(*t);
            }
        }
    }
    match found.len() {
        0 => Inferred::Nothing,
        1 => found
            .first()
            .map_or(Inferred::Nothing, |t| Inferred::One(*t)),
        _ => Inferred::Ambiguous(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negated_done_is_open() {
        assert_eq!(
            status_from_text("Follow-ups (not yet done)"),
            Some(StatusKind::Open)
        );
        assert_eq!(status_from_text("not yet actioned"), Some(StatusKind::Open));
    }

    #[test]
    fn done_vocabulary() {
        for w in [
            "Done",
            "DONE",
            "done",
            "Completed",
            "Complete",
            "Fixed",
            "Resolved",
            "Closed",
            "shipped",
            "✅",
            "[x]",
        ] {
            assert_eq!(status_from_cell(w), StatusKind::Done, "{w}");
        }
    }

    #[test]
    fn open_vocabulary() {
        assert_eq!(status_from_cell("TODO"), StatusKind::Open);
        assert_eq!(status_from_cell("pending"), StatusKind::Open);
        assert_eq!(status_from_cell("In progress"), StatusKind::InProgress);
        assert_eq!(status_from_cell("deferred"), StatusKind::Deferred);
        assert_eq!(status_from_cell("blocked"), StatusKind::Blocked);
        assert_eq!(status_from_cell("optional"), StatusKind::Optional);
        assert_eq!(status_from_cell("tracked in #41"), StatusKind::Tracked);
        assert_eq!(
            status_from_cell("Needs human review"),
            StatusKind::NeedsHumanReview
        );
    }

    #[test]
    fn unknown_status_needs_triage() {
        assert_eq!(status_from_cell("ask Bob"), StatusKind::NeedsTriage);
    }

    #[test]
    fn alertmanager_is_not_an_alert() {
        assert_eq!(infer_type("update Alertmanager routes"), Inferred::Nothing);
    }

    #[test]
    fn remove_is_not_move_and_migrate_plus_alertmanager_is_migration() {
        assert_eq!(infer_type("Remove the old PVC"), Inferred::Nothing);
        assert_eq!(
            infer_type("Migrate storage to encrypted PVC and update Alertmanager routes"),
            Inferred::One(ItemType::Migration)
        );
    }

    #[test]
    fn two_types_are_ambiguous() {
        assert!(matches!(
            infer_type("Add alert and migrate the DB"),
            Inferred::Ambiguous(_)
        ));
    }

    #[test]
    fn column_values() {
        assert_eq!(type_from_column("**Alert**"), ItemType::Alert);
        assert_eq!(type_from_column("Docs"), ItemType::Runbook);
        assert_eq!(type_from_column("Terraform"), ItemType::Unknown);
        assert_eq!(type_from_column("Runbook + Config"), ItemType::Unknown);
        assert_eq!(type_from_column("Alert / Alerting"), ItemType::Alert);
    }

    #[test]
    fn priorities() {
        assert_eq!(priority_from_cell("**P1**"), Some(Priority::P1));
        assert_eq!(priority_from_cell("high"), Some(Priority::P1));
        assert_eq!(priority_from_cell("done"), None);
        assert_eq!(
            priority_in_text("P1 — Eliminate the SPOF"),
            Some(Priority::P1)
        );
        assert_eq!(priority_in_text("SEV1 recap"), None);
    }
}
