//! In-place edits. Nothing is re-serialised: each edit is one splice into
//! the original text, so every other byte of the document stays identical.

use std::ops::Range;

use time::Date;

use crate::meta::format_date;
use crate::parse::blocks::{self, Block};
use crate::parse::vocab::{ItemType, Priority, StatusKind};
use crate::parse::{MAX_DOCUMENT_BYTES, StatusSpan, parse_document};

/// The statuses the editor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditStatus {
    /// The follow-up was implemented.
    Done,
    /// Automation skipped it; a human has to look.
    NeedsHumanReview,
}

impl EditStatus {
    fn kind(self) -> StatusKind {
        match self {
            EditStatus::Done => StatusKind::Done,
            EditStatus::NeedsHumanReview => StatusKind::NeedsHumanReview,
        }
    }

    fn word(self) -> &'static str {
        match self {
            EditStatus::Done => "Done",
            EditStatus::NeedsHumanReview => "Needs human review",
        }
    }
}

/// Why an edit was refused. The document is never half-edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    /// No item has that id.
    #[error(
        "{file}: no follow-up with id {id}; ids come from `warroom postmortem todos`, re-run it if the document changed"
    )]
    ItemNotFound {
        /// The file label.
        file: String,
        /// The id asked for.
        id: String,
    },
    /// The item's status is written in a way the editor cannot change safely.
    #[error(
        "{file} line {line}: cannot mark \"{action}\" as {status}: {reason}; edit that line by hand"
    )]
    NotEditable {
        /// The file label.
        file: String,
        /// The item's line.
        line: usize,
        /// The item's action text.
        action: String,
        /// The status asked for.
        status: String,
        /// What is in the way.
        reason: String,
    },
    /// The document is over [`MAX_DOCUMENT_BYTES`].
    #[error("{file}: {size} bytes is over the {limit}-byte limit; split the document")]
    TooLarge {
        /// The file label.
        file: String,
        /// Its size.
        size: usize,
        /// [`MAX_DOCUMENT_BYTES`].
        limit: usize,
    },
}

/// One replacement of a byte range (empty for an insertion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// The bytes replaced, on char boundaries of the original text.
    pub range: Range<usize>,
    /// What goes there.
    pub replacement: String,
}

impl Splice {
    /// The text with this splice applied.
    pub fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + self.replacement.len());
        out.push_str(text.get(..self.range.start).unwrap_or(text));
        out.push_str(&self.replacement);
        out.push_str(text.get(self.range.end..).unwrap_or(""));
        out
    }
}

/// Escapes text for a table cell: `|` would end the cell, a newline the row.
pub fn escape_cell(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(one_line.len());
    let mut prev_backslash = false;
    for c in one_line.chars() {
        if c == '|' && !prev_backslash {
            out.push('\\');
        }
        prev_backslash = c == '\\' && !prev_backslash;
        out.push(c);
    }
    out
}

/// Writes `word` in the letter case of the text it replaces (`TODO` → `DONE`).
fn styled(word: &str, sample: &str) -> String {
    let letters: Vec<char> = sample.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        word.to_uppercase()
    } else if letters.first().is_some_and(|c| c.is_lowercase()) {
        word.to_lowercase()
    } else {
        word.to_string()
    }
}

/// Works out the single splice that gives item `item_id` the status `new`.
/// `Ok(None)` when it already has that status.
///
/// How each format is edited:
/// - table with a Status column: the cell's content is replaced (padding kept);
/// - status read from the Priority column: that cell is replaced;
/// - table without a Status column, plain bullet, `**Action:**` marker
///   without a status: ` (Done)` is appended to the action text, which the
///   parser reads back as the item's own marker;
/// - task list: `[ ]` becomes `[x]`; "needs human review" is appended as a
///   marker since a checkbox has no such state;
/// - heading or inline marker: the text inside the parentheses is replaced.
pub fn plan_status_edit(
    file_label: &str,
    text: &str,
    item_id: &str,
    new: EditStatus,
) -> Result<Option<Splice>, EditError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(EditError::TooLarge {
            file: file_label.to_string(),
            size: text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let doc = parse_document(file_label, text);
    let item = doc.item(item_id).ok_or_else(|| EditError::ItemNotFound {
        file: file_label.to_string(),
        id: item_id.to_string(),
    })?;
    if item.status == new.kind() {
        return Ok(None);
    }
    let refuse = |reason: &str| EditError::NotEditable {
        file: file_label.to_string(),
        line: item.line,
        action: item.action.clone(),
        status: new.word().to_string(),
        reason: reason.to_string(),
    };
    let appended = |at: usize| Splice {
        range: at..at,
        replacement: format!(" ({})", new.word()),
    };
    let splice = match &item.span {
        StatusSpan::Cell(range) => {
            let raw = text
                .get(range.clone())
                .ok_or_else(|| refuse("cell out of range"))?;
            let content = raw.trim();
            if content.is_empty() {
                Splice {
                    range: range.clone(),
                    replacement: format!(" {} ", new.word()),
                }
            } else {
                let lead = raw.len() - raw.trim_start().len();
                let start = range.start + lead;
                Splice {
                    range: start..start + content.len(),
                    replacement: escape_cell(&styled(new.word(), content)),
                }
            }
        }
        StatusSpan::Checkbox {
            marker,
            trailing,
            line_end,
        } => match new {
            EditStatus::Done => Splice {
                range: marker.clone(),
                replacement: "[x]".into(),
            },
            EditStatus::NeedsHumanReview => {
                if text.get(marker.clone()).is_some_and(|m| m != "[ ]") {
                    return Err(refuse("the box is ticked; untick it first"));
                }
                match trailing {
                    Some(r) => Splice {
                        range: r.clone(),
                        replacement: new.word().to_lowercase(),
                    },
                    None => Splice {
                        range: *line_end..*line_end,
                        replacement: format!(" ({})", new.word().to_lowercase()),
                    },
                }
            }
        },
        StatusSpan::Marker(range) => {
            let sample = text.get(range.clone()).unwrap_or("");
            Splice {
                range: range.clone(),
                replacement: styled(new.word(), sample),
            }
        }
        StatusSpan::Append(at) => appended(*at),
        StatusSpan::None => {
            return Err(refuse("its status comes from strikethrough or a ✅ prefix"));
        }
    };
    if text.get(splice.range.clone()).is_none() {
        return Err(refuse("the status is not on a character boundary"));
    }
    // Read the result back: the rules are subtle enough that an edit is
    // only accepted when the parser agrees it did what was asked.
    let after = splice.apply(text);
    let reparsed = parse_document(file_label, &after);
    match reparsed.item(item_id) {
        Some(i) if i.status == new.kind() => Ok(Some(splice)),
        _ => Err(refuse(
            "the edited text would not read back with that status",
        )),
    }
}

/// Sets one item's status in place; see [`plan_status_edit`] for how each
/// format is edited. Returns the text unchanged when the item already has
/// the status, so running it twice is harmless.
pub fn set_item_status(
    file_label: &str,
    text: &str,
    item_id: &str,
    new: EditStatus,
) -> Result<String, EditError> {
    Ok(match plan_status_edit(file_label, text, item_id, new)? {
        Some(s) => s.apply(text),
        None => text.to_string(),
    })
}

/// A commit (or other reference) that implemented a follow-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRef {
    /// Short hash, e.g. `abc1234`.
    pub sha: String,
    /// Link to the commit, when the forge is known.
    pub url: Option<String>,
}

/// One row of the Follow-up Implementation table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImplementationRow {
    /// When it was implemented; `None` renders `—` (e.g. skipped items).
    pub date: Option<Date>,
    /// The follow-up's action text.
    pub action: String,
    /// Its priority.
    pub priority: Priority,
    /// Its type.
    pub item_type: ItemType,
    /// The implementing commit; `None` renders `—`.
    pub commit: Option<CommitRef>,
    /// Who or what implemented it, e.g. `postmortem-todo-resolver` or `Needs human review`.
    pub implemented_by: String,
}

/// Column order of the table we create.
const IMPL_HEADERS: [&str; 6] = [
    "Date",
    "Action",
    "Priority",
    "Type",
    "Commit",
    "Implemented By",
];

fn impl_column(header: &str) -> Option<usize> {
    match crate::parse::vocab::words(header).join(" ").as_str() {
        "date" => Some(0),
        "action" | "item" | "follow up" => Some(1),
        "priority" => Some(2),
        "type" => Some(3),
        "commit" | "commits" => Some(4),
        "implemented by" | "by" => Some(5),
        _ => None,
    }
}

fn url_safe(url: &str) -> String {
    url.replace('|', "%7C")
        .replace(' ', "%20")
        .replace(')', "%29")
        .replace('(', "%28")
}

fn row_cells(r: &ImplementationRow) -> [String; 6] {
    let dash = || "—".to_string();
    let commit = match &r.commit {
        Some(c) => {
            let sha: String = c.sha.chars().filter(|ch| *ch != '`').collect();
            match &c.url {
                Some(u) => format!("[`{sha}`]({})", url_safe(u)),
                None => format!("`{sha}`"),
            }
        }
        None => dash(),
    };
    [
        r.date.map_or_else(dash, format_date),
        escape_cell(&r.action),
        r.priority.as_str().to_string(),
        r.item_type.as_str().to_string(),
        escape_cell(&commit),
        escape_cell(&r.implemented_by),
    ]
}

fn render_row(cells: &[String]) -> String {
    let mut s = String::from("|");
    for c in cells {
        s.push(' ');
        s.push_str(if c.is_empty() { "—" } else { c });
        s.push_str(" |");
    }
    s.push('\n');
    s
}

/// Works out the single insertion that appends `rows` to the Follow-up
/// Implementation table, creating the section (or just the table under an
/// existing heading) when missing. Rows follow the existing table's column
/// order; unknown columns get `—`.
pub fn plan_implementation_rows(text: &str, rows: &[ImplementationRow]) -> Splice {
    let blocks = blocks::collect(text);
    let is_impl_heading = |inlines: &[blocks::Inline]| {
        let ws = crate::parse::vocab::words(&blocks::plain(inlines));
        ws.iter().any(|w| w == "implementation")
            && ws.iter().any(|w| w == "follow" || w == "followup")
    };
    let table = blocks.iter().rev().find_map(|b| match b {
        Block::Table(t) if t.head.iter().any(|h| impl_column(&h.text()) == Some(4)) => Some(t),
        _ => None,
    });
    if let Some(t) = table {
        let order: Vec<Option<usize>> = t.head.iter().map(|h| impl_column(&h.text())).collect();
        let mut body = String::new();
        for r in rows {
            let cells = row_cells(r);
            let picked: Vec<String> = order
                .iter()
                .map(|c| c.and_then(|i| cells.get(i).cloned()).unwrap_or_default())
                .collect();
            body.push_str(&render_row(&picked));
        }
        let at = t.range.end.min(text.len());
        let needs_nl = !text.get(..at).unwrap_or("").ends_with('\n');
        let replacement = if needs_nl { format!("\n{body}") } else { body };
        return Splice {
            range: at..at,
            replacement,
        };
    }
    let mut table = render_row(&IMPL_HEADERS.map(String::from));
    table.push_str(&render_row(&IMPL_HEADERS.map(|h| "-".repeat(h.len()))));
    for r in rows {
        table.push_str(&render_row(&row_cells(r)));
    }
    // An existing heading without a table: put the table at its section's end.
    let mut heading_level = None;
    let mut at = text.len();
    let mut with_heading = true;
    for b in &blocks {
        if let Block::Heading {
            level,
            inlines,
            range,
        } = b
        {
            match heading_level {
                None if is_impl_heading(inlines) => {
                    heading_level = Some(*level);
                    with_heading = false;
                }
                Some(l) if *level <= l => {
                    at = range.start;
                    break;
                }
                _ => {}
            }
        }
    }
    let before = text.get(..at).unwrap_or("");
    let sep = if before.is_empty() || before.ends_with("\n\n") {
        ""
    } else if before.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    let mut replacement = sep.to_string();
    if with_heading {
        replacement.push_str("## Follow-up Implementation\n\n");
    }
    replacement.push_str(&table);
    if at < text.len() {
        replacement.push('\n');
    }
    Splice {
        range: at..at,
        replacement,
    }
}

/// A row already in a Follow-up Implementation table, as far as callers need to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRow {
    /// The Action cell's text, whitespace collapsed.
    pub action: String,
    /// The Implemented By cell's text (`Needs human review: ...` for a handed-over item).
    pub implemented_by: String,
}

/// The rows of every Follow-up Implementation table in the document (tables with a Commit
/// column, the same test [`plan_implementation_rows`] uses to find where to append), so that a
/// caller can tell whether an item was already recorded before adding a row for it again.
pub fn recorded_implementations(text: &str) -> Vec<RecordedRow> {
    let mut out = Vec::new();
    for b in blocks::collect(text) {
        let Block::Table(t) = b else { continue };
        let order: Vec<Option<usize>> = t.head.iter().map(|h| impl_column(&h.text())).collect();
        if !order.contains(&Some(4)) {
            continue;
        }
        let col = |want: usize| order.iter().position(|c| *c == Some(want));
        let (Some(a), by) = (col(1), col(5)) else {
            continue;
        };
        for r in &t.rows {
            let cell = |i: usize| r.cells.get(i).map(|c| c.text()).unwrap_or_default();
            out.push(RecordedRow {
                action: cell(a),
                implemented_by: by.map(cell).unwrap_or_default(),
            });
        }
    }
    out
}

/// Appends rows to the Follow-up Implementation table; see
/// [`plan_implementation_rows`].
pub fn append_implementation_rows(text: &str, rows: &[ImplementationRow]) -> String {
    if rows.is_empty() {
        return text.to_string();
    }
    plan_implementation_rows(text, rows).apply(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_cell_escapes_bare_pipes_only() {
        assert_eq!(escape_cell("a | b \\| c\nd"), "a \\| b \\| c d");
    }

    #[test]
    fn recorded_rows_are_read_back_from_every_implementation_table() {
        let text = "# PM\n\n| Priority | Action | Status |\n|---|---|---|\n| P1 | A | TODO |\n\n## Follow-up Implementation\n\n| Date | Action | Priority | Type | Commit | Implemented By |\n|---|---|---|---|---|---|\n| — | Migrate a \\| b | P1 | Migration | — | Needs human review: type Migration |\n";
        let rows = recorded_implementations(text);
        assert_eq!(
            rows,
            [RecordedRow {
                action: "Migrate a | b".into(),
                implemented_by: "Needs human review: type Migration".into()
            }]
        );
    }

    #[test]
    fn styled_follows_case() {
        assert_eq!(styled("Done", "TODO"), "DONE");
        assert_eq!(styled("Done", "pending"), "done");
        assert_eq!(styled("Done", "Open"), "Done");
    }
}
