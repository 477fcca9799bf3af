//! Structural follow-up parsing.
//!
//! The parser reads the ways people actually write follow-ups (plan tables in
//! any column order, task lists, headings with a status marker, bullets under
//! a heading that says they are open, inline `**Action (open):**` markers)
//! and reports everything it could not read instead of silently returning
//! nothing.

pub(crate) mod blocks;
mod lists;
mod tables;
pub mod vocab;

use std::ops::Range;

use serde::Serialize;

use crate::meta::{self, Meta};
use blocks::{Block, Inline, LineIndex};
use vocab::{Inferred, ItemType, Priority, StatusKind};

/// Largest document [`parse_bytes`] accepts. Real post-mortems are tens of
/// kilobytes; 8 MiB leaves room for pasted logs while keeping a parse well
/// under a second.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// Why a document could not be parsed at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes are not UTF-8.
    #[error(
        "{label}: not valid UTF-8 at byte {offset}; re-save the file as UTF-8 (for example `iconv -t UTF-8`)"
    )]
    NotUtf8 {
        /// The file label passed in.
        label: String,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The document is larger than [`MAX_DOCUMENT_BYTES`].
    #[error(
        "{label}: {size} bytes is over the {limit}-byte limit for a post-mortem; move logs and dumps to separate files and link them"
    )]
    TooLarge {
        /// The file label passed in.
        label: String,
        /// Size of the input.
        size: usize,
        /// The limit, [`MAX_DOCUMENT_BYTES`].
        limit: usize,
    },
}

/// Where an item's priority came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrioritySource {
    /// A Priority/Prio column.
    Column,
    /// The nearest heading, e.g. `### P1 — Eliminate the single point of failure`.
    Heading,
    /// Bold text in the item, e.g. `**P1**`.
    Bold,
    /// Nothing said; [`Priority::DEFAULT`].
    Default,
}

/// Where an item's type came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeSource {
    /// A Type/Kind/Category column (it always wins when non-blank).
    Column,
    /// Whole-word cues in the action text.
    Inferred,
    /// Neither; the type is [`ItemType::Unknown`].
    Unknown,
}

/// How the item is written in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemFormat {
    /// A row of a plan table.
    Table,
    /// A `- [ ]` / `- [x]` task-list item.
    TaskList,
    /// A heading carrying a status marker, e.g. `### Pin the driver (DEFERRED)`.
    Heading,
    /// A plain bullet under a follow-up heading.
    Bullet,
    /// A paragraph or bullet starting with `**Action (open):**`.
    InlineMarker,
}

/// The bytes the editor changes to set an item's status. Ranges index the
/// source text the document was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StatusSpan {
    /// A table cell between its pipes (padding included); its content is replaced.
    Cell(Range<usize>),
    /// A task-list checkbox.
    Checkbox {
        /// The `[ ]` or `[x]`.
        marker: Range<usize>,
        /// Text inside a trailing `(optional)`-style marker on the same line.
        trailing: Option<Range<usize>>,
        /// End of the item's first line, where a marker can be appended.
        line_end: usize,
    },
    /// Status text inside a marker such as `(DEFERRED)` or `**Action (open):**`; replaced.
    Marker(Range<usize>),
    /// Nothing to replace: a ` (Done)` marker is inserted at this offset.
    Append(usize),
    /// The status cannot be edited in place (e.g. it comes from a ✅ prefix).
    #[default]
    None,
}

/// One follow-up item found in a post-mortem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Stable id: a hash of the file name and the normalised action text.
    pub id: String,
    /// What to do, markup and status markers removed.
    pub action: String,
    /// Details/Notes/Description column, or text following a heading item.
    pub details: Option<String>,
    /// Owner/Assignee column.
    pub owner: Option<String>,
    /// P0..P3.
    pub priority: Priority,
    /// Where [`Item::priority`] came from.
    pub priority_source: PrioritySource,
    /// Normalised type.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// Where [`Item::item_type`] came from.
    pub type_source: TypeSource,
    /// The Type column's text as written, when there is one.
    pub type_raw: Option<String>,
    /// The status as written (cell text, checkbox, marker, heading words).
    pub status_raw: Option<String>,
    /// Normalised status.
    pub status: StatusKind,
    /// Text of the nearest heading above the item.
    pub section: Option<String>,
    /// 1-based line of the item in the source.
    pub line: usize,
    /// How the item is written.
    pub format: ItemFormat,
    /// Whether automation may implement it: a confidently typed Alert, Config or Monitor.
    pub safe: bool,
    /// Why it is not safe, when it is not.
    pub unsafe_reason: Option<String>,
    /// Where the editor changes the status.
    #[serde(skip)]
    pub span: StatusSpan,
}

impl Item {
    /// Whether automation should implement it now: safe, and plainly open
    /// (not deferred, blocked, in progress or awaiting triage).
    pub fn is_automation_todo(&self) -> bool {
        self.safe && self.status == StatusKind::Open
    }
}

/// Something the parser noticed but worked around.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// 1-based source line, when the problem has one.
    pub line: Option<usize>,
    /// What happened and how to fix it.
    pub message: String,
}

/// The result of parsing one post-mortem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDocument {
    /// The label the caller passed (usually the path).
    pub file: String,
    /// Title, date, severity, duration, services.
    pub meta: Meta,
    /// Every follow-up, done ones included, in source order.
    pub items: Vec<Item>,
    /// Things worked around.
    pub warnings: Vec<Warning>,
    /// Set when the document has follow-up-like content we could not read.
    pub needs_review: bool,
    /// Why [`ParsedDocument::needs_review`] is set.
    pub review_reasons: Vec<String>,
}

impl ParsedDocument {
    /// Items automation should implement (pending and safe).
    pub fn todos(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.is_automation_todo())
    }

    /// Items pending for automation that it must not implement.
    pub fn skipped(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .filter(|i| i.status.is_pending_for_automation() && !i.is_automation_todo())
    }

    /// Items still open for a human (everything not done or dropped).
    pub fn open_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.status.is_open())
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }
}

/// The JSON shape: the reference parser's fields first, then ours.
impl Serialize for ParsedDocument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            file: &'a str,
            todos: Vec<&'a Item>,
            skipped: Vec<&'a Item>,
            total_todos_in_doc: usize,
            safe_todos: usize,
            skipped_todos: usize,
            meta: &'a Meta,
            items: &'a [Item],
            warnings: &'a [Warning],
            needs_review: bool,
            review_reasons: &'a [String],
        }
        let todos: Vec<&Item> = self.todos().collect();
        let skipped: Vec<&Item> = self.skipped().collect();
        Out {
            file: &self.file,
            total_todos_in_doc: todos.len() + skipped.len(),
            safe_todos: todos.len(),
            skipped_todos: skipped.len(),
            todos,
            skipped,
            meta: &self.meta,
            items: &self.items,
            warnings: &self.warnings,
            needs_review: self.needs_review,
            review_reasons: &self.review_reasons,
        }
        .serialize(s)
    }
}

/// Checks size and encoding, then parses.
pub fn parse_bytes(file_label: &str, bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(ParseError::TooLarge {
            label: file_label.to_string(),
            size: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
        label: file_label.to_string(),
        offset: e.valid_up_to(),
    })?;
    Ok(parse_document(file_label, text))
}

/// Parses one post-mortem. Never fails: what cannot be read becomes a
/// warning or sets [`ParsedDocument::needs_review`]. The size limit is not
/// checked here; read untrusted files through [`parse_bytes`].
pub fn parse_document(file_label: &str, text: &str) -> ParsedDocument {
    let blocks = blocks::collect(text);
    let mut w = Walker {
        src: text,
        lines: LineIndex::new(text),
        stack: Vec::new(),
        items: Vec::new(),
        warnings: Vec::new(),
        reviews: Vec::new(),
    };
    for (idx, block) in blocks.iter().enumerate() {
        w.block(block, blocks.get(idx + 1));
    }
    while let Some(h) = w.stack.pop() {
        w.close_section(&h);
    }
    assign_ids(file_label, &mut w.items);
    let meta = meta::extract(file_label, &blocks);
    ParsedDocument {
        file: file_label.to_string(),
        meta,
        items: w.items,
        needs_review: !w.reviews.is_empty(),
        warnings: w.warnings,
        review_reasons: w.reviews,
    }
}

/// A pending item together with the document it came from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PendingItem<'a> {
    /// The document's label.
    pub file: &'a str,
    /// The item.
    #[serde(flatten)]
    pub item: &'a Item,
}

/// Open items across documents, for `warroom postmortem todos DIR`:
/// P0 first, then by document date (undated last) and name, then line.
pub fn pending_across(docs: &[ParsedDocument]) -> Vec<PendingItem<'_>> {
    let mut out: Vec<(&ParsedDocument, &Item)> = docs
        .iter()
        .flat_map(|d| d.open_items().map(move |i| (d, i)))
        .collect();
    out.sort_by(|(da, a), (db, b)| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| match (da.meta.date, db.meta.date) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| da.file.cmp(&db.file))
            .then_with(|| a.line.cmp(&b.line))
    });
    out.into_iter()
        .map(|(d, item)| PendingItem {
            file: &d.file,
            item,
        })
        .collect()
}

/// 64-bit FNV-1a. Tiny, dependency-free and stable across Rust versions,
/// which `std`'s `DefaultHasher` does not promise.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Ids hash the file's base name (so moving the folder keeps them) and the
/// action's words (so markup and status edits keep them). Repeated actions
/// in one file get an occurrence suffix.
fn assign_ids(file_label: &str, items: &mut [Item]) {
    let base = file_label.rsplit(['/', '\\']).next().unwrap_or(file_label);
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in items.iter_mut() {
        let norm = vocab::words(&item.action).join(" ");
        let n = {
            let n = seen.entry(norm.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let key = if n == 1 {
            format!("{base}\0{norm}")
        } else {
            format!("{base}\0{norm}\0{n}")
        };
        item.id = format!("{:012x}", fnv1a(key.as_bytes()) >> 16);
    }
}

/// How a heading classifies the content under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Action items, follow-ups, prevention, remediation, recommendations.
    FollowUp,
    /// Timeline, detection gaps, the implementation log, checklists: never follow-ups.
    Excluded,
    /// Summary, impact, root cause, lessons learned...
    Other,
    /// Anything else takes its parent's class.
    Inherit,
}

/// An open heading and what was found under it.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub level: u8,
    pub text: String,
    pub class: Class,
    /// Status the heading states for the content under it.
    pub status: Option<(StatusKind, String)>,
    pub priority: Option<Priority>,
    /// The heading is itself a follow-up item.
    pub is_item: bool,
    pub line: usize,
    pub items: usize,
    pub prose: usize,
    pub tables: usize,
}

/// Second pass over the blocks, keeping the heading context.
pub(crate) struct Walker<'s> {
    pub src: &'s str,
    pub lines: LineIndex,
    pub stack: Vec<Section>,
    pub items: Vec<Item>,
    pub warnings: Vec<Warning>,
    pub reviews: Vec<String>,
}

impl Walker<'_> {
    fn block(&mut self, block: &Block, next: Option<&Block>) {
        match block {
            Block::Heading {
                level,
                inlines,
                range,
            } => self.heading(*level, inlines, range, next),
            Block::Table(t) => self.table(t),
            Block::Item(it) => lists::list_item(self, it),
            Block::Paragraph { inlines, range } => self.paragraph(inlines, range),
            Block::Code { range, unclosed } => {
                if *unclosed {
                    self.warn(
                        range.start,
                        "code fence is never closed, so everything after it is treated as code; add the closing ``` line",
                    );
                }
            }
        }
    }

    pub(crate) fn warn(&mut self, offset: usize, message: impl Into<String>) {
        let line = Some(self.lines.line(offset));
        self.warnings.push(Warning {
            line,
            message: message.into(),
        });
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        self.lines.line(offset)
    }

    /// Class of the innermost heading that has one.
    pub(crate) fn class(&self) -> Class {
        self.stack
            .iter()
            .rev()
            .map(|s| s.class)
            .find(|c| *c != Class::Inherit)
            .unwrap_or(Class::Other)
    }

    /// Status stated by the nearest section heading (heading items excluded:
    /// their marker is their own).
    pub(crate) fn inherited_status(&self) -> Option<(StatusKind, String)> {
        self.stack
            .iter()
            .rev()
            .filter(|s| !s.is_item)
            .find_map(|s| s.status.clone())
    }

    pub(crate) fn inherited_priority(&self) -> Option<Priority> {
        self.stack.iter().rev().find_map(|s| s.priority)
    }

    pub(crate) fn section_text(&self) -> Option<String> {
        self.stack.last().map(|s| s.text.clone())
    }

    pub(crate) fn under_heading_item(&self) -> bool {
        self.stack.last().is_some_and(|s| s.is_item)
    }

    /// Records that something of a kind was found in every open section.
    pub(crate) fn count(&mut self, f: impl Fn(&mut Section)) {
        for s in self.stack.iter_mut() {
            f(s);
        }
    }

    pub(crate) fn push_item(&mut self, item: Item) {
        self.count(|s| s.items += 1);
        self.items.push(item);
    }

    fn close_section(&mut self, s: &Section) {
        if s.class == Class::FollowUp && s.items == 0 && s.tables == 0 && s.prose > 0 {
            self.reviews.push(format!(
                "line {}: section \"{}\" reads like follow-ups but has no table, task list or bullets we can read; rewrite them as a Prevention Plan table or `- [ ]` task list",
                s.line, s.text
            ));
        }
    }

    fn heading(
        &mut self,
        level: u8,
        inlines: &[Inline],
        range: &Range<usize>,
        next: Option<&Block>,
    ) {
        while self.stack.last().is_some_and(|s| s.level >= level) {
            if let Some(s) = self.stack.pop() {
                self.close_section(&s);
            }
        }
        let section = lists::heading_section(self, level, inlines, range, next);
        self.stack.push(section);
    }

    fn paragraph(&mut self, inlines: &[Inline], range: &Range<usize>) {
        if self.class() == Class::Excluded {
            return;
        }
        if lists::inline_marker(self, inlines, range.start, None) {
            return;
        }
        if self.class() == Class::FollowUp && is_prose(inlines) {
            self.count(|s| s.prose += 1);
        }
    }
}

/// Whether a paragraph says something (not "None." or "N/A").
fn is_prose(inlines: &[Inline]) -> bool {
    let ws = vocab::words(&blocks::plain(inlines));
    let filler = [
        "none", "n", "a", "no", "nothing", "tbd", "yet", "follow", "ups", "up", "action", "items",
    ];
    !ws.is_empty() && !ws.iter().all(|w| filler.contains(&w.as_str()))
}

/// Settles type, safety and the reason together, so they cannot disagree.
pub(crate) fn classify(
    action: &str,
    column: Option<&str>,
) -> (ItemType, TypeSource, Option<String>, Option<String>) {
    if let Some(raw) = column.map(str::trim).filter(|r| !vocab::is_blank_marker(r)) {
        let t = vocab::type_from_column(raw);
        let reason = match t {
            ItemType::Unknown => Some(format!(
                "Type \"{raw}\" is not exactly one of Alert, Config, Monitor, Architecture, Investigation, Migration, Runbook"
            )),
            t if !t.is_auto_implementable() => Some(format!("{} items need a human", t.as_str())),
            _ => None,
        };
        return (t, TypeSource::Column, Some(raw.to_string()), reason);
    }
    match vocab::infer_type(action) {
        Inferred::One(t) => {
            let reason =
                (!t.is_auto_implementable()).then(|| format!("{} items need a human", t.as_str()));
            (t, TypeSource::Inferred, None, reason)
        }
        Inferred::Ambiguous(ts) => {
            let names: Vec<&str> = ts.iter().map(|t| t.as_str()).collect();
            (
                ItemType::Unknown,
                TypeSource::Unknown,
                None,
                Some(format!(
                    "the action mentions several types ({}); add a Type column to say which",
                    names.join(", ")
                )),
            )
        }
        Inferred::Nothing => (
            ItemType::Unknown,
            TypeSource::Unknown,
            None,
            Some("no Type column and nothing in the action names a type".to_string()),
        ),
    }
}

/// Everything an item needs besides its type, which [`build_item`] settles.
pub(crate) struct ItemParts {
    pub action: String,
    pub details: Option<String>,
    pub owner: Option<String>,
    pub priority: (Priority, PrioritySource),
    pub type_column: Option<String>,
    pub status: StatusKind,
    pub status_raw: Option<String>,
    pub section: Option<String>,
    pub line: usize,
    pub format: ItemFormat,
    pub span: StatusSpan,
}

pub(crate) fn build_item(p: ItemParts) -> Item {
    let (item_type, type_source, type_raw, unsafe_reason) =
        classify(&p.action, p.type_column.as_deref());
    Item {
        id: String::new(),
        action: p.action,
        details: p.details.filter(|d| !d.is_empty()),
        owner: p
            .owner
            .filter(|o| !o.is_empty() && !vocab::is_blank_marker(o)),
        priority: p.priority.0,
        priority_source: p.priority.1,
        item_type,
        type_source,
        type_raw,
        status_raw: p.status_raw,
        status: p.status,
        section: p.section,
        line: p.line,
        format: p.format,
        safe: unsafe_reason.is_none(),
        unsafe_reason,
        span: p.span,
    }
}

/// `**P1**` anywhere in the item.
pub(crate) fn bold_priority(inlines: &[Inline]) -> Option<Priority> {
    inlines.iter().filter(|i| i.strong).find_map(|i| {
        let ws = vocab::words(&i.text);
        match ws.as_slice() {
            [w] => vocab::priority_word(w),
            _ => None,
        }
    })
}

/// Removes `**P1**` markers from action text (and the separator after a
/// leading one), since the priority is reported separately.
pub(crate) fn strip_bold_priority(inlines: &[Inline]) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::new();
    let mut dropped_leading = false;
    let mut leading = true;
    for i in inlines {
        let is_prio = i.strong
            && matches!(vocab::words(&i.text).as_slice(), [w] if vocab::priority_word(w).is_some());
        if is_prio {
            dropped_leading |= leading;
            continue;
        }
        let mut c = i.clone();
        if leading && dropped_leading {
            c.text = c
                .text
                .trim_start_matches([' ', ':', '-', '—', '–'])
                .to_string();
        }
        leading &= c.text.trim().is_empty();
        out.push(c);
    }
    out
}
