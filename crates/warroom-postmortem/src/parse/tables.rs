//! Follow-ups written as table rows, with columns found by header name.

use super::blocks::{self, Cell, Table};
use super::lists::{is_placeholder, trailing_marker};
use super::vocab::{self, Priority, StatusKind};
use super::{
    Class, ItemFormat, ItemParts, PrioritySource, StatusSpan, Walker, bold_priority, build_item,
    strip_bold_priority,
};

/// What a column holds, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Action,
    /// "Fix": the action when there is no Action column.
    Fix,
    Details,
    Status,
    Owner,
    Priority,
    Type,
    /// A header that marks a non-follow-up table (Gap, Commit, Time, Field...).
    Exclude,
    Other,
}

/// Header synonyms. "Severity" is deliberately not a priority: it rates
/// the incident, not the follow-up.
pub(crate) fn role(header: &str) -> Role {
    let joined = vocab::words(header).join(" ");
    match joined.as_str() {
        "action" | "actions" | "action item" | "action items" | "item" | "items" | "task"
        | "tasks" | "todo" | "to do" | "follow up" | "followup" | "follow ups" | "followups"
        | "recommendation" | "remediation" | "next step" | "next steps" | "what" => Role::Action,
        "fix" | "fixes" | "proposed fix" => Role::Fix,
        "details" | "detail" | "notes" | "note" | "description" | "comment" | "comments"
        | "context" | "rationale" | "why" => Role::Details,
        "status" | "state" => Role::Status,
        "owner" | "owners" | "assignee" | "assigned to" | "who" | "dri" => Role::Owner,
        "priority" | "prio" | "pri" => Role::Priority,
        "type" | "kind" | "category" => Role::Type,
        "gap" | "gaps" | "commit" | "commits" | "implemented by" | "time" | "time utc"
        | "timestamp" | "event" | "field" | "key" | "property" | "checklist" | "step" => {
            Role::Exclude
        }
        _ => Role::Other,
    }
}

fn find(roles: &[Role], r: Role) -> Option<usize> {
    roles.iter().position(|x| *x == r)
}

/// Number of cells a raw row line declares (unescaped pipes), for ragged-row warnings.
fn declared_cells(raw: &str) -> usize {
    let line = raw.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = if line.ends_with('|') && !line.ends_with("\\|") {
        line.get(..line.len() - 1).unwrap_or(line)
    } else {
        line
    };
    let mut n = 1;
    let mut prev_backslash = false;
    for c in line.chars() {
        if c == '|' && !prev_backslash {
            n += 1;
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    n
}

/// How many non-blank cells of a column are pure status words, and how many are non-blank.
fn status_hits(t: &Table, col: usize) -> (usize, usize) {
    let mut hits = 0;
    let mut nonblank = 0;
    for row in &t.rows {
        let Some(c) = row.cells.get(col) else {
            continue;
        };
        let text = c.text();
        if vocab::is_blank_marker(&text) {
            continue;
        }
        nonblank += 1;
        if vocab::is_pure_status(&text) {
            hits += 1;
        }
    }
    (hits, nonblank)
}

impl Walker<'_> {
    pub(crate) fn table(&mut self, t: &Table) {
        self.count(|s| s.tables += 1);
        if self.class() == Class::Excluded {
            return;
        }
        let width = t.head.len();
        for row in &t.rows {
            let raw = self.src.get(row.range.clone()).unwrap_or("");
            if row.cells.iter().any(Cell::missing) {
                self.warn(row.range.start, format!("table row has fewer cells than the header's {width}; missing cells are read as empty"));
            } else if declared_cells(raw) > width {
                self.warn(row.range.start, format!("table row has more cells than the header's {width}; the extra cells are ignored"));
            }
        }
        let mut roles: Vec<Role> = t.head.iter().map(|h| role(&h.text())).collect();
        if roles.contains(&Role::Exclude) {
            return;
        }
        let Some(action_col) = find(&roles, Role::Action).or_else(|| find(&roles, Role::Fix))
        else {
            if self.class() == Class::FollowUp && width > 2 {
                let names: Vec<String> = t.head.iter().map(Cell::text).collect();
                let msg = format!(
                    "line {}: table with columns [{}] sits under a follow-up heading but has no Action/Item/Task/Fix column; rename the column that says what to do",
                    self.line(t.range.start),
                    names.join(", ")
                );
                self.reviews.push(msg);
            }
            return;
        };
        let details_col = find(&roles, Role::Details)
            .or_else(|| find(&roles, Role::Fix).filter(|c| *c != action_col));
        let status_col = self.detect_swap(t, &mut roles);
        let owner_col = find(&roles, Role::Owner);
        let prio_col = find(&roles, Role::Priority);
        let type_col = find(&roles, Role::Type);
        let text_of = |row: &super::blocks::Row, col: Option<usize>| {
            col.and_then(|c| row.cells.get(c)).map(Cell::text)
        };

        for row in &t.rows {
            let Some(action_cell) = row.cells.get(action_col) else {
                continue;
            };
            let inlines = strip_bold_priority(&action_cell.inlines);
            let trailing = trailing_marker(self.src, &inlines);
            let action = blocks::plain(trailing.as_ref().map_or(&inlines, |t| &t.rest));
            if action.is_empty() || is_placeholder(&action) {
                continue;
            }
            let status_cell = status_col
                .and_then(|c| row.cells.get(c))
                .filter(|c| !c.missing());
            let prio_cell = prio_col
                .and_then(|c| row.cells.get(c))
                .filter(|c| !c.missing());
            let prio_text = prio_cell.map(Cell::text).unwrap_or_default();
            let prio = vocab::priority_from_cell(&prio_text);
            let prio_status = if prio.is_none() {
                vocab::status_from_text(&prio_text)
            } else {
                None
            };
            let action_end = self.content_end(action_cell);

            let (status, status_raw, span) = match status_cell {
                Some(sc) if !vocab::is_blank_marker(&sc.text()) => {
                    let text = sc.text();
                    let kind = if sc.all_struck() {
                        StatusKind::Done
                    } else {
                        vocab::status_from_cell(&text)
                    };
                    (kind, Some(text), StatusSpan::Cell(sc.range.clone()))
                }
                _ if action_cell.all_struck() => {
                    let span =
                        status_cell.map_or(StatusSpan::None, |c| StatusSpan::Cell(c.range.clone()));
                    (StatusKind::Done, Some("~~struck through~~".into()), span)
                }
                _ if prio_status.is_some() => {
                    let span =
                        prio_cell.map_or(StatusSpan::None, |c| StatusSpan::Cell(c.range.clone()));
                    (
                        prio_status.unwrap_or(StatusKind::NeedsTriage),
                        Some(prio_text.clone()),
                        span,
                    )
                }
                _ if trailing.is_some() && status_cell.is_none() => {
                    let tr = trailing.as_ref();
                    let span = tr
                        .and_then(|t| t.range.clone())
                        .map_or(StatusSpan::None, StatusSpan::Marker);
                    (
                        tr.map_or(StatusKind::NeedsTriage, |t| t.kind),
                        tr.map(|t| t.raw.clone()),
                        span,
                    )
                }
                Some(sc) => {
                    let (k, raw) = self
                        .inherited_status()
                        .map_or((StatusKind::Open, None), |(k, r)| (k, Some(r)));
                    (k, raw, StatusSpan::Cell(sc.range.clone()))
                }
                None => {
                    let (k, raw) = self
                        .inherited_status()
                        .map_or((StatusKind::Open, None), |(k, r)| (k, Some(r)));
                    (k, raw, StatusSpan::Append(action_end))
                }
            };
            let priority = if let Some(p) = prio {
                (p, PrioritySource::Column)
            } else if let Some(p) = bold_priority(&action_cell.inlines) {
                (p, PrioritySource::Bold)
            } else if let Some(p) = self.inherited_priority() {
                (p, PrioritySource::Heading)
            } else {
                (Priority::DEFAULT, PrioritySource::Default)
            };
            let item = build_item(ItemParts {
                action,
                details: text_of(row, details_col),
                owner: text_of(row, owner_col),
                priority,
                type_column: text_of(row, type_col),
                status,
                status_raw,
                section: self.section_text(),
                line: self.line(row.range.start),
                format: ItemFormat::Table,
                span,
            });
            self.push_item(item);
        }
    }

    /// Byte offset just after a cell's visible content (before its padding).
    fn content_end(&self, cell: &Cell) -> usize {
        let raw = self.src.get(cell.range.clone()).unwrap_or("");
        cell.range.start + raw.trim_end().len()
    }

    /// People sometimes put the status in the Owner or Details column and
    /// notes in Status. When most Status cells are not plain status words
    /// and another column's mostly are, swap them and say so.
    fn detect_swap(&mut self, t: &Table, roles: &mut [Role]) -> Option<usize> {
        let status_col = find(roles, Role::Status)?;
        let (hits, nonblank) = status_hits(t, status_col);
        if nonblank == 0 || hits * 2 >= nonblank {
            return Some(status_col);
        }
        for other in [Role::Owner, Role::Details] {
            let Some(col) = find(roles, other) else {
                continue;
            };
            let (h, n) = status_hits(t, col);
            if h > hits && h * 2 > n {
                if let (Some(a), Some(b)) =
                    (roles.get(status_col).copied(), roles.get(col).copied())
                {
                    if let Some(r) = roles.get_mut(status_col) {
                        *r = b;
                    }
                    if let Some(r) = roles.get_mut(col) {
                        *r = a;
                    }
                }
                let head = |c: usize| t.head.get(c).map(Cell::text).unwrap_or_default();
                self.warn(
                    t.range.start,
                    format!(
                        "the \"{}\" column holds statuses and the \"{}\" column does not; read them swapped. Swap the headers to silence this",
                        head(col),
                        head(status_col)
                    ),
                );
                return Some(col);
            }
        }
        Some(status_col)
    }
}
