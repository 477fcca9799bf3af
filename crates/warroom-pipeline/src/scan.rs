//! Finding the work: every post-mortem in the folder at a commit, every eligible item, in
//! priority order across all of them.
//!
//! The reference pipeline processed the first file alphabetically that had a TODO, so one old
//! document blocked every other; this reads them all, at the branch tip (not the pushed diff,
//! which misses documents a failed run left behind).

use std::collections::HashSet;
use warroom_postmortem::{self as pm, Item, ParsedDocument, StatusKind};

use crate::git::{Git, GitError};

/// One post-mortem read from git.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Path relative to the repository root.
    pub path: String,
    /// File name (the engine's label and the item ids' salt).
    pub file_name: String,
    /// The parsed document.
    pub parsed: ParsedDocument,
    /// The text it was parsed from.
    pub text: String,
}

impl Doc {
    /// `PM-YYYY-MM-DD`, from the document's date (or its file name's date prefix).
    pub fn pm_tag(&self) -> String {
        match self.parsed.meta.date {
            Some(d) => format!(
                "PM-{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
            None => format!("PM-{}", self.file_name.trim_end_matches(".md")),
        }
    }
}

/// Why an item is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// Safe type (Alert, Config, Monitor), plainly open.
    Safe,
    /// Approved by a person.
    Approved,
}

/// An item to work on, with its document.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Index into the scanned documents.
    pub doc: usize,
    /// The item.
    pub item: Item,
    /// Why.
    pub why: Eligibility,
}

/// Reads every `*.md` (except README.md) in `dir` at `rev`. Unreadable documents (not UTF-8,
/// too large) are returned as warnings instead of stopping the scan.
pub async fn read_docs(
    git: &Git,
    rev: &str,
    dir: &str,
) -> Result<(Vec<Doc>, Vec<String>), GitError> {
    let dir = dir.trim_end_matches('/');
    let listing = git
        .run(&[
            "ls-tree",
            "-z",
            "--name-only",
            rev,
            "--",
            &format!("{dir}/"),
        ])
        .await?;
    let mut paths: Vec<&str> = listing
        .split('\0')
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or_default();
            name.ends_with(".md") && !name.eq_ignore_ascii_case("README.md")
        })
        .collect();
    paths.sort_unstable();
    let mut docs = Vec::new();
    let mut warnings = Vec::new();
    for path in paths {
        let bytes = git.run_bytes(&["show", &format!("{rev}:{path}")]).await?;
        let file_name = path.rsplit('/').next().unwrap_or(path).to_string();
        match pm::parse_bytes(&file_name, &bytes) {
            Ok(parsed) => docs.push(Doc {
                path: path.to_string(),
                file_name,
                parsed,
                // parse_bytes checked it is UTF-8.
                text: String::from_utf8_lossy(&bytes).into_owned(),
            }),
            Err(e) => warnings.push(format!("skipped {path}: {e}")),
        }
    }
    Ok((docs, warnings))
}

/// The items to work on: safe open ones, and approved ones that are open or were handed to a
/// person; P0 first across all documents, then by document date (undated last), file and line.
pub fn candidates(docs: &[Doc], approved: &HashSet<String>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for item in &doc.parsed.items {
            let why = if item.is_automation_todo() {
                Eligibility::Safe
            } else if approved.contains(&item.id)
                && (item.status.is_pending_for_automation()
                    || item.status == StatusKind::NeedsHumanReview)
            {
                Eligibility::Approved
            } else {
                continue;
            };
            out.push(Candidate {
                doc: d,
                item: item.clone(),
                why,
            });
        }
    }
    out.sort_by(|a, b| {
        let (da, db) = (&docs[a.doc], &docs[b.doc]);
        a.item
            .priority
            .cmp(&b.item.priority)
            .then_with(|| match (da.parsed.meta.date, db.parsed.meta.date) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| da.file_name.cmp(&db.file_name))
            .then_with(|| a.item.line.cmp(&b.item.line))
    });
    out
}

/// The items of one post-mortem's `text` that automation leaves to a person and has not yet
/// said so about: not a safe type, plainly open (a person who wrote Deferred or In progress
/// already owns the item), not approved, and without a row in the Follow-up Implementation
/// table. The source design lists exactly these as `| — | <action> | P1 | Migration | — |
/// Needs human review |`; checking the table itself (not the store) keeps that row to one
/// across runs, resumed runs and rebases onto a tip someone else edited.
pub fn unrecorded_for_review(file_name: &str, text: &str, approved: &HashSet<String>) -> Vec<Item> {
    let parsed = pm::parse_document(file_name, text);
    let recorded: HashSet<String> = pm::recorded_implementations(text)
        .into_iter()
        .map(|r| normalise(&r.action))
        .collect();
    parsed
        .items
        .into_iter()
        .filter(|i| {
            !i.safe
                && i.status == StatusKind::Open
                && !approved.contains(&i.id)
                && !recorded.contains(&normalise(&i.action))
                // Our own row names the id: found even in a table without an Action column.
                && !text.contains(&approve_command(&i.id))
        })
        .collect()
}

/// Why an item waits for a person, for its row: the type, and how to let automation take it.
pub fn review_reason(item: &Item) -> String {
    let why = match item.item_type {
        pm::ItemType::Unknown => item
            .unsafe_reason
            .clone()
            .unwrap_or_else(|| "its type is unknown".into()),
        t => format!("type {} needs a person", t.as_str()),
    };
    format!("{why}: approve with `{}`", approve_command(&item.id))
}

fn approve_command(id: &str) -> String {
    format!("warroom pipeline approve {id}")
}

fn normalise(action: &str) -> String {
    action
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_row_is_recognised_by_its_action_or_by_the_id_it_names() {
        let plan = "# PM\n\n## Prevention Plan\n\n| Priority | Action | Type | Status |\n|---|---|---|---|\n| P1 | Migrate Vault to encrypted PVC | Migration | TODO |\n";
        let none = HashSet::new();
        let items = unrecorded_for_review("a.md", plan, &none);
        assert_eq!(items.len(), 1);
        let id = items[0].id.clone();
        let reason = review_reason(&items[0]);
        assert_eq!(
            reason,
            format!("type Migration needs a person: approve with `warroom pipeline approve {id}`")
        );
        // A person's row for it, under a differently cased action.
        let by_action = format!(
            "{plan}\n## Follow-up Implementation\n\n| Date | Action | Commit |\n|---|---|---|\n| — | migrate vault to  encrypted PVC | — |\n"
        );
        assert!(unrecorded_for_review("a.md", &by_action, &none).is_empty());
        // A table without an Action column: our row still carries the id.
        let by_id = format!(
            "{plan}\n## Follow-up Implementation\n\n| Date | Commit | Implemented By |\n|---|---|---|\n| — | — | Needs human review: {reason} |\n"
        );
        assert!(unrecorded_for_review("a.md", &by_id, &none).is_empty());
        // Approved items are the run's to attempt, not to hand over.
        let approved: HashSet<String> = [id].into();
        assert!(unrecorded_for_review("a.md", plan, &approved).is_empty());
    }
}
