//! First pass: turn pulldown-cmark's event stream into a flat list of the
//! blocks the follow-up rules care about, each with exact byte ranges into
//! the source so the editor can splice without re-serialising anything.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// The markdown extensions post-mortems use. Shared with the site renderer
/// so what we parse and what we show agree.
pub(crate) fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
}

/// A run of inline text with the formatting the rules look at.
#[derive(Debug, Clone)]
pub(crate) struct Inline {
    /// Plain text; `"\n"` for a soft or hard line break.
    pub text: String,
    pub strong: bool,
    pub strike: bool,
    pub code: bool,
    pub range: Range<usize>,
}

impl Inline {
    pub fn is_break(&self) -> bool {
        self.text == "\n" && !self.code
    }
}

/// Inline content split into lines at breaks.
pub(crate) fn lines(inlines: &[Inline]) -> Vec<&[Inline]> {
    inlines.split(|i| i.is_break()).collect()
}

/// Plain text of inlines, breaks become spaces, whitespace collapsed.
pub(crate) fn plain(inlines: &[Inline]) -> String {
    let mut s = String::new();
    for i in inlines {
        s.push_str(if i.is_break() { " " } else { &i.text });
    }
    collapse(&s)
}

/// Collapses runs of whitespace into one space and trims.
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One table cell. `range` is the content between the pipes, padding
/// included (empty for `||`).
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub inlines: Vec<Inline>,
    pub range: Range<usize>,
    /// The row was short: pulldown invents the cell, it is not in the source.
    pub absent: bool,
}

impl Cell {
    pub fn text(&self) -> String {
        plain(&self.inlines)
    }
    pub fn missing(&self) -> bool {
        self.absent
    }
    /// Whether every non-blank bit of text is struck through.
    pub fn all_struck(&self) -> bool {
        all_struck(&self.inlines)
    }
}

/// Whether all visible text is struck through (and there is some).
pub(crate) fn all_struck(inlines: &[Inline]) -> bool {
    let mut any = false;
    for i in inlines.iter().filter(|i| !i.text.trim().is_empty()) {
        if !i.strike {
            return false;
        }
        any = true;
    }
    any
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub cells: Vec<Cell>,
    pub range: Range<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub head: Vec<Cell>,
    pub rows: Vec<Row>,
    pub range: Range<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct ListItem {
    /// 1 for a top-level item, 2 for an item in a nested list, ...
    pub depth: usize,
    /// `Some((checked, range of "[ ]"))` for a task-list item.
    pub task: Option<(bool, Range<usize>)>,
    /// The item's own text, nested lists excluded; paragraphs separated by breaks.
    pub inlines: Vec<Inline>,
    pub range: Range<usize>,
    /// Byte offset just after the last inline of the item's first line.
    pub first_line_end: Option<usize>,
    /// Set once a break or nested block ends the first line.
    first_line_done: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Block {
    Heading {
        level: u8,
        inlines: Vec<Inline>,
        range: Range<usize>,
    },
    Paragraph {
        inlines: Vec<Inline>,
        range: Range<usize>,
    },
    Item(ListItem),
    Table(Table),
    Code {
        range: Range<usize>,
        unclosed: bool,
    },
}

/// Where inline content currently goes.
enum Target {
    Block(usize),
    Cell,
    /// Content we do not look at (code, raw HTML, images' alt text is kept).
    Ignore,
}

/// Runs pulldown-cmark once and collects [`Block`]s in source order.
pub(crate) fn collect(src: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    let mut items: Vec<usize> = Vec::new();
    let mut table: Option<usize> = None;
    let mut in_head = false;
    let mut strong = 0usize;
    let mut strike = 0usize;

    for (ev, range) in Parser::new_ext(src, options()).into_offset_iter() {
        let code = matches!(
            ev,
            Event::Code(_) | Event::InlineMath(_) | Event::DisplayMath(_)
        );
        match ev {
            Event::Start(tag) => match tag {
                Tag::Heading { level, .. } => {
                    blocks.push(Block::Heading {
                        level: level as u8,
                        inlines: Vec::new(),
                        range,
                    });
                    targets.push(Target::Block(blocks.len() - 1));
                }
                Tag::Paragraph => {
                    if let Some(Target::Block(idx)) = targets.last()
                        && let Some(Block::Item(it)) = blocks.get_mut(*idx)
                    {
                        // A second paragraph inside an item continues its text.
                        if !it.inlines.is_empty() {
                            it.first_line_done = true;
                            it.inlines.push(brk(range.start..range.start));
                        }
                        targets.push(Target::Block(*idx));
                    } else if matches!(targets.last(), Some(Target::Ignore)) {
                        targets.push(Target::Ignore);
                    } else {
                        blocks.push(Block::Paragraph {
                            inlines: Vec::new(),
                            range,
                        });
                        targets.push(Target::Block(blocks.len() - 1));
                    }
                }
                Tag::Item => {
                    if let Some(parent) = items.last()
                        && let Some(Block::Item(p)) = blocks.get_mut(*parent)
                    {
                        p.first_line_done = true;
                    }
                    blocks.push(Block::Item(ListItem {
                        depth: items.len() + 1,
                        task: None,
                        inlines: Vec::new(),
                        range,
                        first_line_end: None,
                        first_line_done: false,
                    }));
                    items.push(blocks.len() - 1);
                    targets.push(Target::Block(blocks.len() - 1));
                }
                Tag::CodeBlock(kind) => {
                    let unclosed = matches!(kind, CodeBlockKind::Fenced(_))
                        && fence_unclosed(src.get(range.clone()).unwrap_or(""));
                    blocks.push(Block::Code { range, unclosed });
                    targets.push(Target::Ignore);
                }
                Tag::HtmlBlock | Tag::MetadataBlock(_) => targets.push(Target::Ignore),
                Tag::Table(_) => {
                    blocks.push(Block::Table(Table {
                        head: Vec::new(),
                        rows: Vec::new(),
                        range,
                    }));
                    table = Some(blocks.len() - 1);
                }
                Tag::TableHead => in_head = true,
                Tag::TableRow => {
                    if let Some(Some(Block::Table(t))) = table.map(|i| blocks.get_mut(i)) {
                        t.rows.push(Row {
                            cells: Vec::new(),
                            range,
                        });
                    }
                }
                Tag::TableCell => {
                    if let Some(Some(Block::Table(t))) = table.map(|i| blocks.get_mut(i)) {
                        // A real empty cell (`||`) sits right after a pipe;
                        // an invented one sits after the row's line break.
                        let absent = range.is_empty()
                            && range
                                .start
                                .checked_sub(1)
                                .and_then(|i| src.as_bytes().get(i))
                                != Some(&b'|');
                        let cell = Cell {
                            inlines: Vec::new(),
                            range,
                            absent,
                        };
                        if in_head {
                            t.head.push(cell);
                        } else if let Some(r) = t.rows.last_mut() {
                            r.cells.push(cell);
                        }
                    }
                    targets.push(Target::Cell);
                }
                Tag::Strong => strong += 1,
                Tag::Strikethrough => strike += 1,
                _ => {}
            },
            Event::End(end) => match end {
                TagEnd::Heading(_)
                | TagEnd::Paragraph
                | TagEnd::CodeBlock
                | TagEnd::HtmlBlock
                | TagEnd::MetadataBlock(_)
                | TagEnd::TableCell => {
                    targets.pop();
                }
                TagEnd::Item => {
                    targets.pop();
                    items.pop();
                }
                TagEnd::TableHead => in_head = false,
                TagEnd::Table => table = None,
                TagEnd::Strong => {
                    strong = strong.saturating_sub(1);
                    extend_first_line(&mut blocks, &targets, &range);
                }
                TagEnd::Strikethrough => {
                    strike = strike.saturating_sub(1);
                    extend_first_line(&mut blocks, &targets, &range);
                }
                TagEnd::Link | TagEnd::Emphasis | TagEnd::Image => {
                    extend_first_line(&mut blocks, &targets, &range);
                }
                _ => {}
            },
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                let inline = Inline {
                    text: t.to_string(),
                    strong: strong > 0,
                    strike: strike > 0,
                    code,
                    range: range.clone(),
                };
                push_inline(&mut blocks, &targets, table, inline);
            }
            Event::TaskListMarker(checked) => {
                if let Some(Target::Block(idx)) = targets.last()
                    && let Some(Block::Item(it)) = blocks.get_mut(*idx)
                {
                    it.task = Some((checked, range));
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                push_inline(&mut blocks, &targets, table, brk(range));
            }
            Event::Html(_) | Event::InlineHtml(_) => {
                // Comments such as `<!-- TODO(human) -->` are prompts, not text.
            }
            Event::FootnoteReference(_) | Event::Rule => {}
        }
    }
    blocks
}

fn brk(range: Range<usize>) -> Inline {
    Inline {
        text: "\n".into(),
        strong: false,
        strike: false,
        code: false,
        range,
    }
}

/// Appends an inline, merging it into the previous one when pulldown merely
/// split contiguous text (it splits at `[`, `(` and similar), so markers
/// like `[DONE]` arrive as one piece.
fn append(list: &mut Vec<Inline>, inline: Inline) {
    if let Some(prev) = list.last_mut()
        && !prev.is_break()
        && !inline.is_break()
        && !prev.code
        && !inline.code
        && prev.strong == inline.strong
        && prev.strike == inline.strike
        && prev.range.end == inline.range.start
    {
        prev.text.push_str(&inline.text);
        prev.range.end = inline.range.end;
        return;
    }
    list.push(inline);
}

fn push_inline(blocks: &mut [Block], targets: &[Target], table: Option<usize>, inline: Inline) {
    match targets.last() {
        Some(Target::Block(idx)) => match blocks.get_mut(*idx) {
            Some(Block::Heading { inlines, .. }) | Some(Block::Paragraph { inlines, .. }) => {
                append(inlines, inline)
            }
            Some(Block::Item(it)) => {
                if inline.is_break() {
                    it.first_line_done = true;
                } else if !it.first_line_done {
                    it.first_line_end = Some(it.first_line_end.unwrap_or(0).max(inline.range.end));
                }
                append(&mut it.inlines, inline);
            }
            _ => {}
        },
        Some(Target::Cell) => {
            if let Some(Some(Block::Table(t))) = table.map(|i| blocks.get_mut(i)) {
                // Header cells arrive before any body row exists.
                let cell = if t.rows.is_empty() {
                    t.head.last_mut()
                } else {
                    t.rows.last_mut().and_then(|r| r.cells.last_mut())
                };
                if let Some(c) = cell {
                    append(&mut c.inlines, inline);
                }
            }
        }
        Some(Target::Ignore) | None => {}
    }
}

/// Closing markup (`**`, `~~`, `](url)`) ends after the last text event, so
/// the first line of an item really ends at the closing tag's range.
fn extend_first_line(blocks: &mut [Block], targets: &[Target], range: &Range<usize>) {
    if let Some(Target::Block(idx)) = targets.last()
        && let Some(Block::Item(it)) = blocks.get_mut(*idx)
        && !it.first_line_done
        && it.first_line_end.is_some()
    {
        it.first_line_end = Some(it.first_line_end.unwrap_or(0).max(range.end));
    }
}

/// A fenced block is unclosed when its last line is not a fence made of the
/// same character at least as long as the opening one.
fn fence_unclosed(raw: &str) -> bool {
    let mut lines = raw.lines();
    let Some(first) = lines.next() else {
        return false;
    };
    let first = first.trim_start();
    let Some(ch) = first.chars().next() else {
        return false;
    };
    let open_len = first.chars().take_while(|c| *c == ch).count();
    let Some(last) = raw.trim_end_matches(['\n', '\r']).lines().skip(1).last() else {
        return true;
    };
    let last = last.trim();
    !(last.chars().all(|c| c == ch) && last.chars().count() >= open_len)
}

/// Maps byte offsets to 1-based line numbers.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }
    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}
