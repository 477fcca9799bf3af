//! Follow-ups written as headings, task lists, bullets and inline markers.

use std::ops::Range;

use super::blocks::{self, Block, Inline, ListItem};
use super::vocab::{self, Priority, StatusKind};
use super::{
    Class, ItemFormat, ItemParts, PrioritySource, Section, StatusSpan, Walker, bold_priority,
    build_item, strip_bold_priority,
};

/// A status marker at the end of a line: `(DEFERRED)`, `[done]`, `— blocked`.
pub(crate) struct Trailing {
    pub kind: StatusKind,
    pub raw: String,
    /// The marker's text in the source, when it can be located exactly.
    pub range: Option<Range<usize>>,
    /// The line with the marker removed.
    pub rest: Vec<Inline>,
}

/// Markers longer than this are sentences, not statuses.
const MAX_MARKER_WORDS: usize = 6;

pub(crate) fn trailing_marker(src: &str, line: &[Inline]) -> Option<Trailing> {
    let k = line.iter().rposition(|i| !i.text.trim().is_empty())?;
    let last = line.get(k)?;
    if last.code {
        return None;
    }
    let t = last.text.as_str();
    let tt = t.trim_end();
    let (cut, inner_start, inner_end) = if let Some(body) = tt.strip_suffix(')') {
        let open = body.rfind('(')?;
        (open, open + 1, body.len())
    } else if let Some(body) = tt.strip_suffix(']') {
        let open = body.rfind('[')?;
        (open, open + 1, body.len())
    } else {
        let (pos, sep) = [" — ", " – ", " - "]
            .iter()
            .find_map(|s| tt.rfind(s).map(|p| (p, *s)))?;
        (pos, pos + sep.len(), tt.len())
    };
    let inner_raw = t.get(inner_start..inner_end)?;
    let inner = inner_raw.trim();
    if inner.is_empty() || vocab::words(inner).len() > MAX_MARKER_WORDS {
        return None;
    }
    let kind = vocab::status_from_text(inner)?;
    let lead = inner_raw.len() - inner_raw.trim_start().len();
    let range = src
        .get(last.range.clone())
        .filter(|raw| raw.ends_with(t))
        .map(|raw| {
            let base = last.range.start + raw.len() - t.len() + inner_start + lead;
            base..base + inner.len()
        });
    let mut rest: Vec<Inline> = line.get(..k).map(<[Inline]>::to_vec).unwrap_or_default();
    let mut cut_inline = last.clone();
    cut_inline.text = t.get(..cut).unwrap_or("").trim_end().to_string();
    rest.push(cut_inline);
    Some(Trailing {
        kind,
        raw: inner.to_string(),
        range,
        rest,
    })
}

/// Text people leave where a follow-up will go.
pub(crate) fn is_placeholder(action: &str) -> bool {
    let a = action.trim();
    vocab::is_blank_marker(a)
        || vocab::words(a).starts_with(&["to".into(), "be".into(), "written".into()])
}

/// Words that make a heading a follow-up section.
fn follow_up_named(ws: &[String]) -> bool {
    let has = |w: &str| ws.iter().any(|x| x == w);
    let pair = |a: &str, b: &[&str]| {
        ws.windows(2)
            .any(|p| matches!(p, [x, y] if x == a && b.contains(&y.as_str())))
    };
    pair("action", &["item", "items", "plan"])
        || pair("follow", &["up", "ups"])
        || pair("next", &["step", "steps"])
        || [
            "actions",
            "followup",
            "followups",
            "prevention",
            "preventive",
            "preventative",
        ]
        .iter()
        .any(|w| has(w))
        || [
            "remediation",
            "remediations",
            "recommendation",
            "recommendations",
            "todo",
            "todos",
        ]
        .iter()
        .any(|w| has(w))
        || ["corrective", "improvements"].iter().any(|w| has(w))
}

fn excluded_named(ws: &[String]) -> bool {
    let has = |w: &str| ws.iter().any(|x| x == w);
    has("timeline")
        || (has("detection") && (has("gap") || has("gaps")))
        || (has("implementation") && (has("follow") || has("followup") || has("log")))
        || has("metadata")
        || has("checklist")
        || has("checklists")
}

fn other_named(ws: &[String]) -> bool {
    let has = |w: &str| ws.iter().any(|x| x == w);
    let first = ws.first().map(String::as_str).unwrap_or("");
    (has("root") && has("cause"))
        || [
            "summary",
            "impact",
            "contributing",
            "lessons",
            "resolution",
            "background",
            "appendix",
            "references",
            "verification",
            "overview",
            "detection",
            "mitigation",
            "symptoms",
        ]
        .contains(&first)
        || (first == "what" && ws.get(1).is_some_and(|w| w == "went"))
}

/// Strips `3.` / `3)` enumerators from the start of heading text.
fn strip_enumerator(text: &str) -> &str {
    let t = text.trim_start();
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return t;
    }
    let after = t.get(digits..).unwrap_or("");
    match after.strip_prefix(['.', ')']) {
        Some(rest) => rest.trim_start(),
        None => t,
    }
}

/// Strips a leading `P1 —` from heading text.
fn strip_priority_prefix(text: &str) -> &str {
    let t = text.trim_start();
    let is_p = t.len() >= 2
        && t.get(..2)
            .is_some_and(|p| vocab::priority_word(&p.to_lowercase()).is_some())
        && !t
            .get(2..3)
            .is_some_and(|c| c.chars().all(char::is_alphanumeric));
    if is_p {
        t.get(2..)
            .unwrap_or("")
            .trim_start_matches([' ', ':', '-', '—', '–'])
    } else {
        t
    }
}

pub(crate) fn heading_section(
    w: &mut Walker<'_>,
    level: u8,
    inlines: &[Inline],
    range: &Range<usize>,
    next: Option<&Block>,
) -> Section {
    let text = blocks::plain(inlines);
    let ws = vocab::words(&text);
    let enumerated = strip_enumerator(&text).len() != text.trim_start().len();
    let line = w.line(range.start);
    let priority = vocab::priority_in_text(&text);
    let mut section = Section {
        level,
        text: text.clone(),
        class: Class::Inherit,
        status: None,
        priority,
        is_item: false,
        line,
        items: 0,
        prose: 0,
        tables: 0,
    };
    if excluded_named(&ws) {
        section.class = Class::Excluded;
        return section;
    }
    let named = follow_up_named(&ws);
    let context = w.class();
    let trailing = trailing_marker(w.src, inlines);
    if let Some(tr) = &trailing {
        let rest = blocks::plain(&tr.rest);
        let core = strip_priority_prefix(strip_enumerator(&rest)).to_string();
        let rest_ws = vocab::words(&core);
        let is_item = !rest_ws.is_empty()
            && !named
            && !other_named(&rest_ws)
            && vocab::status_from_text(&core).is_none_or(|_| rest_ws.len() > 2)
            && (context == Class::FollowUp || enumerated)
            // "### Quick wins (done)" followed by a table or list is a
            // section stating its children's status; numbered headings are
            // always items.
            && (enumerated || !matches!(next, Some(Block::Table(_) | Block::Item(_))));
        if is_item && context != Class::Excluded {
            let details = match next {
                Some(Block::Paragraph { inlines, .. }) => Some(blocks::plain(inlines)),
                _ => None,
            };
            let (prio, source) = match priority.or_else(|| w.inherited_priority()) {
                Some(p) => (p, PrioritySource::Heading),
                None => (Priority::DEFAULT, PrioritySource::Default),
            };
            let item = build_item(ItemParts {
                action: core,
                details,
                owner: None,
                priority: (prio, source),
                type_column: None,
                status: tr.kind,
                status_raw: Some(tr.raw.clone()),
                section: w.section_text(),
                line,
                format: ItemFormat::Heading,
                span: tr
                    .range
                    .clone()
                    .map_or(StatusSpan::None, StatusSpan::Marker),
            });
            w.push_item(item);
            section.is_item = true;
            return section;
        }
    }
    if named {
        section.class = Class::FollowUp;
    } else if other_named(&ws) {
        section.class = Class::Other;
    }
    section.status = trailing.map(|t| (t.kind, t.raw)).or_else(|| {
        (named || context == Class::FollowUp)
            .then(|| vocab::status_at_edges(&text).map(|k| (k, text.clone())))
            .flatten()
    });
    section
}

/// Priority for list-style items: bold beats heading beats default.
fn list_priority(w: &Walker<'_>, inlines: &[Inline]) -> (Priority, PrioritySource) {
    if let Some(p) = bold_priority(inlines) {
        (p, PrioritySource::Bold)
    } else if let Some(p) = w.inherited_priority() {
        (p, PrioritySource::Heading)
    } else {
        (Priority::DEFAULT, PrioritySource::Default)
    }
}

/// Joins an item's lines into action text, with the first line replaced.
fn action_text(first: Vec<Inline>, lines: &[&[Inline]]) -> String {
    let mut all = first;
    for l in lines.iter().skip(1) {
        all.push(Inline {
            text: " ".into(),
            strong: false,
            strike: false,
            code: false,
            range: 0..0,
        });
        all.extend_from_slice(l);
    }
    blocks::plain(&all)
}

pub(crate) fn list_item(w: &mut Walker<'_>, it: &ListItem) {
    if w.class() == Class::Excluded {
        return;
    }
    if it.task.is_none() && inline_marker(w, &it.inlines, it.range.start, Some(it)) {
        return;
    }
    let body = strip_bold_priority(&it.inlines);
    let lines = blocks::lines(&body);
    let first: &[Inline] = lines.first().copied().unwrap_or(&[]);
    let trailing = trailing_marker(w.src, first);
    let first_text = trailing
        .as_ref()
        .map_or_else(|| first.to_vec(), |t| t.rest.clone());
    let mut action = action_text(first_text, &lines);
    let struck = blocks::all_struck(&it.inlines);
    let line = w.line(it.range.start);
    let line_end = it.first_line_end.unwrap_or(it.range.start);

    let (status, status_raw, span, format) = if let Some((checked, marker)) = &it.task {
        let span = StatusSpan::Checkbox {
            marker: marker.clone(),
            trailing: trailing.as_ref().and_then(|t| t.range.clone()),
            line_end,
        };
        let (kind, raw) = if *checked {
            (StatusKind::Done, "[x]".to_string())
        } else if let Some(t) = &trailing {
            (t.kind, t.raw.clone())
        } else if struck {
            (StatusKind::Done, "~~struck through~~".to_string())
        } else {
            (StatusKind::Open, "[ ]".to_string())
        };
        (kind, Some(raw), span, ItemFormat::TaskList)
    } else {
        if w.class() != Class::FollowUp || w.under_heading_item() || it.depth != 1 {
            return;
        }
        let done_mark = ["✅", "✔", "☑", "✓"]
            .iter()
            .find(|m| action.starts_with(**m));
        if let Some(t) = &trailing {
            let span = t.range.clone().map_or(StatusSpan::None, StatusSpan::Marker);
            (t.kind, Some(t.raw.clone()), span, ItemFormat::Bullet)
        } else if struck {
            (
                StatusKind::Done,
                Some("~~struck through~~".into()),
                StatusSpan::None,
                ItemFormat::Bullet,
            )
        } else if let Some(m) = done_mark {
            action = action.trim_start_matches(*m).trim().to_string();
            (
                StatusKind::Done,
                Some((*m).to_string()),
                StatusSpan::None,
                ItemFormat::Bullet,
            )
        } else if let Some((k, raw)) = w.inherited_status() {
            (
                k,
                Some(raw),
                StatusSpan::Append(line_end),
                ItemFormat::Bullet,
            )
        } else {
            (
                StatusKind::NeedsTriage,
                None,
                StatusSpan::Append(line_end),
                ItemFormat::Bullet,
            )
        }
    };
    if action.is_empty() || is_placeholder(&action) {
        return;
    }
    let priority = list_priority(w, &it.inlines);
    let item = build_item(ItemParts {
        action,
        details: None,
        owner: None,
        priority,
        type_column: None,
        status,
        status_raw,
        section: w.section_text(),
        line,
        format,
        span,
    });
    w.push_item(item);
}

/// Labels that introduce an inline follow-up: `**Action (open):**`.
fn marker_label(ws: &[String]) -> bool {
    let s: Vec<&str> = ws.iter().map(String::as_str).collect();
    matches!(
        s.as_slice(),
        ["action"]
            | ["action", "item"]
            | ["follow", "up"]
            | ["followup"]
            | ["todo"]
            | ["to", "do"]
            | ["fix"]
            | ["recommendation"]
            | ["next", "step"]
    )
}

/// Reads `**Action (open):** text` at the start of a paragraph or bullet.
/// Returns whether an item was recorded.
pub(crate) fn inline_marker(
    w: &mut Walker<'_>,
    inlines: &[Inline],
    start: usize,
    _item: Option<&ListItem>,
) -> bool {
    let Some(k) = inlines.iter().position(|i| !i.text.trim().is_empty()) else {
        return false;
    };
    let Some(label) = inlines.get(k).filter(|i| i.strong && !i.code) else {
        return false;
    };
    let lt = label.text.trim().trim_end_matches(':').trim_end();
    let (name, inner) = match lt
        .strip_suffix(')')
        .and_then(|b| b.rfind('(').map(|o| (b, o)))
    {
        Some((body, open)) => (body.get(..open).unwrap_or("").trim(), body.get(open + 1..)),
        None => (lt, None),
    };
    let name_ws = vocab::words(name);
    if !marker_label(&name_ws) {
        return false;
    }
    let rest: Vec<Inline> = inlines
        .get(k + 1..)
        .map(<[Inline]>::to_vec)
        .unwrap_or_default();
    let action = blocks::plain(&rest)
        .trim_start_matches(':')
        .trim()
        .to_string();
    if action.is_empty() || is_placeholder(&action) {
        return false;
    }
    // Locate text inside the label in the source; `None` when escapes or
    // entities make the event text differ from the bytes.
    let locate = |needle: &str| -> Option<Range<usize>> {
        let raw = w.src.get(label.range.clone())?;
        if raw != label.text {
            return None;
        }
        let at = label.text.find(needle)?;
        Some(label.range.start + at..label.range.start + at + needle.len())
    };
    let todo_label = matches!(name_ws.as_slice(), [a] if a == "todo") || name_ws == ["to", "do"];
    let (status, raw, span) = match inner.map(str::trim) {
        Some(inner) if !inner.is_empty() => {
            let kind = vocab::status_from_text(inner).unwrap_or(StatusKind::NeedsTriage);
            let span = locate(&format!("({inner})"))
                .map(|r| r.start + 1..r.end - 1)
                .map_or(StatusSpan::None, StatusSpan::Marker);
            (kind, Some(inner.to_string()), span)
        }
        _ if todo_label => {
            // Rewriting the label itself would stop it being a marker, so
            // the editor adds `(done)` after it instead.
            let span = locate(name).map_or(StatusSpan::None, |r| StatusSpan::Append(r.end));
            (StatusKind::Open, Some(name.to_string()), span)
        }
        _ => {
            let span = locate(name).map_or(StatusSpan::None, |r| StatusSpan::Append(r.end));
            match w.inherited_status() {
                Some((k, raw)) => (k, Some(raw), span),
                None => (StatusKind::NeedsTriage, None, span),
            }
        }
    };
    let priority = list_priority(w, &rest);
    let item = build_item(ItemParts {
        action,
        details: None,
        owner: None,
        priority,
        type_column: None,
        status,
        status_raw: raw,
        section: w.section_text(),
        line: w.line(start),
        format: ItemFormat::InlineMarker,
        span,
    });
    w.push_item(item);
    true
}
