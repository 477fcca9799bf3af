//! Static HTML site: an index and one page per post-mortem, with inline CSS
//! and relative links so it works from disk, from GitHub Pages and from the
//! server's `/postmortems/`.

use pulldown_cmark::{CowStr, Event, Parser, Tag, TagEnd, html};

use crate::meta::format_date;
use crate::parse::blocks::options;
use crate::parse::{ParsedDocument, parse_document};

/// A post-mortem as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDoc {
    /// File name, e.g. `2026-04-14-nfs-outage.md` (a leading folder is ignored).
    pub file_name: String,
    /// The markdown.
    pub text: String,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    /// Relative path, e.g. `index.html`.
    pub path: String,
    /// HTML.
    pub contents: String,
}

/// Why the site could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SiteError {
    /// There is nothing to publish.
    #[error("no post-mortems found; write one with `warroom postmortem new`")]
    NoDocuments,
    /// Two files would produce the same page.
    #[error("{first} and {second} would both be published as {path}; rename one of them")]
    DuplicatePage {
        /// The clashing page path.
        path: String,
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page's stable path: the file name's stem with anything outside
/// `[A-Za-z0-9._-]` replaced, plus `.html`.
pub fn page_path(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base
        .strip_suffix(".md")
        .or_else(|| base.strip_suffix(".markdown"))
        .unwrap_or(base);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    format!(
        "{}.html",
        if clean.is_empty() {
            "post-mortem"
        } else {
            clean
        }
    )
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1f2328}\
a{color:#0969da}table{border-collapse:collapse;margin:1rem 0;display:block;overflow-x:auto}\
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;vertical-align:top;text-align:left}th{background:#f6f8fa}\
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}code{font-size:.9em}\
h1 .anchor,h2 .anchor,h3 .anchor,h4 .anchor{visibility:hidden;text-decoration:none;margin-left:.3rem}\
h1:hover .anchor,h2:hover .anchor,h3:hover .anchor,h4:hover .anchor{visibility:visible}\
li:has(> input[type=checkbox]){list-style:none}.review{color:#9a6700}.muted{color:#59636e}";

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape_html(title)
    )
}

/// Heading ids already handed out on a page, and the next suffix per base.
#[derive(Default)]
struct Ids {
    used: std::collections::HashSet<String>,
    next: std::collections::HashMap<String, usize>,
}

/// GitHub-style heading id: lowercase, spaces to `-`, punctuation dropped,
/// `-1`, `-2`... for repeats.
fn heading_id(text: &str, ids: &mut Ids) -> String {
    let mut s = String::new();
    for c in text.trim().chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            s.extend(c.to_lowercase());
        } else if c.is_whitespace() {
            s.push('-');
        }
    }
    if s.is_empty() {
        s.push_str("section");
    }
    let n = ids.next.entry(s.clone()).or_insert(0);
    loop {
        let id = if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        };
        *n += 1;
        if ids.used.insert(id.clone()) {
            return id;
        }
    }
}

/// Links into other post-mortems point at their pages; script URLs are dropped.
fn rewrite_url(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return "#".to_string();
    }
    if url.contains("://") || url.starts_with('#') || url.starts_with('/') {
        return url.to_string();
    }
    let (path, frag) = url
        .split_once('#')
        .map_or((url, None), |(p, f)| (p, Some(f)));
    match path.strip_suffix(".md") {
        Some(stem) if !stem.is_empty() => {
            let p = format!("{stem}.html");
            frag.map_or(p.clone(), |f| format!("{p}#{f}"))
        }
        _ => url.to_string(),
    }
}

/// Markdown to HTML with heading anchors. Raw HTML in the document is shown
/// as text (and comments, which hold the template's prompts, are dropped) so
/// a post-mortem cannot inject script into the site.
pub fn render_markdown(text: &str) -> String {
    let events: Vec<Event> = Parser::new_ext(text, options()).collect();
    let mut used = Ids::default();
    let mut out: Vec<Event> = Vec::with_capacity(events.len());
    let mut i = 0;
    while let Some(ev) = events.get(i).cloned() {
        i += 1;
        match ev {
            Event::Start(Tag::Heading {
                level,
                classes,
                attrs,
                ..
            }) => {
                let mut title = String::new();
                for e in events.iter().skip(i) {
                    match e {
                        Event::End(TagEnd::Heading(_)) => break,
                        Event::Text(t) | Event::Code(t) => title.push_str(t),
                        _ => {}
                    }
                }
                let id = heading_id(&title, &mut used);
                out.push(Event::Start(Tag::Heading {
                    level,
                    id: Some(CowStr::from(id.clone())),
                    classes,
                    attrs,
                }));
                let close = events
                    .iter()
                    .skip(i)
                    .position(|e| matches!(e, Event::End(TagEnd::Heading(_))));
                let inner_end = close.map_or(events.len(), |p| i + p);
                for e in events.get(i..inner_end).unwrap_or(&[]) {
                    out.push(sanitize(e.clone()));
                }
                let anchor = format!(
                    "<a class=\"anchor\" href=\"#{0}\" aria-label=\"Link to this section\">#</a>",
                    escape_html(&id)
                );
                out.push(Event::InlineHtml(CowStr::from(anchor)));
                i = inner_end;
            }
            other => out.push(sanitize(other)),
        }
    }
    let mut html_out = String::new();
    html::push_html(&mut html_out, out.into_iter());
    html_out
}

fn sanitize(ev: Event<'_>) -> Event<'_> {
    match ev {
        Event::Html(h) | Event::InlineHtml(h) => {
            let t = h.trim();
            if t.starts_with("<!--") && t.ends_with("-->") {
                Event::Text(CowStr::from(""))
            } else {
                Event::Text(h)
            }
        }
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: CowStr::from(rewrite_url(&dest_url)),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::from(rewrite_url(&dest_url)),
            title,
            id,
        }),
        other => other,
    }
}

/// One post-mortem's page.
pub fn render_page(doc: &SourceDoc) -> String {
    let parsed = parse_document(&doc.file_name, &doc.text);
    let title = parsed
        .meta
        .title
        .clone()
        .unwrap_or_else(|| doc.file_name.clone());
    let body = format!(
        "<nav><a href=\"index.html\">← All post-mortems</a></nav>\n<main>\n{}</main>\n",
        render_markdown(&doc.text)
    );
    shell(&format!("Post-mortem: {title}"), &body)
}

/// One row of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Page path, relative to the index.
    pub path: String,
    /// File name it came from.
    pub file_name: String,
    /// Title, or the file name.
    pub title: String,
    /// Date, if known.
    pub date: Option<time::Date>,
    /// Severity as `SEV1`, or as written when it could not be read.
    pub severity: Option<String>,
    /// Duration as written.
    pub duration: Option<String>,
    /// Affected services.
    pub services: Vec<String>,
    /// Follow-ups done (or dropped).
    pub done: usize,
    /// Follow-ups still open.
    pub open: usize,
    /// The parser could not read part of the follow-ups.
    pub needs_review: bool,
}

impl IndexEntry {
    /// Summarises a parsed document for the index.
    pub fn new(file_name: &str, parsed: &ParsedDocument) -> Self {
        let m = &parsed.meta;
        let open = parsed.open_items().count();
        IndexEntry {
            path: page_path(file_name),
            file_name: file_name.to_string(),
            title: m.title.clone().unwrap_or_else(|| file_name.to_string()),
            date: m.date,
            severity: m
                .severity
                .map(|s| format!("SEV{s}"))
                .or_else(|| m.severity_raw.clone()),
            duration: m.duration.clone(),
            services: m.services.clone(),
            done: parsed.items.len() - open,
            open,
            needs_review: parsed.needs_review,
        }
    }
}

/// The index page, newest first (undated last, then by file name).
pub fn render_index(entries: &[IndexEntry]) -> String {
    let mut sorted: Vec<&IndexEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        b.date
            .cmp(&a.date)
            .then_with(|| b.file_name.cmp(&a.file_name))
    });
    let dash = || "—".to_string();
    let mut rows = String::new();
    for e in sorted {
        let review = if e.needs_review {
            " <span class=\"review\" title=\"some follow-ups could not be read\">⚠ needs review</span>"
        } else {
            ""
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} done / {} open{review}</td></tr>\n",
            escape_html(&e.date.map_or_else(dash, format_date)),
            escape_html(&e.path),
            escape_html(&e.title),
            escape_html(&e.severity.clone().unwrap_or_else(dash)),
            escape_html(&e.duration.clone().unwrap_or_else(dash)),
            escape_html(&if e.services.is_empty() { dash() } else { e.services.join(", ") }),
            e.done,
            e.open,
        ));
    }
    let body = format!(
        "<h1>Post-mortems</h1>\n<p class=\"muted\">{} post-mortems, newest first.</p>\n<table>\n<thead><tr><th>Date</th><th>Title</th><th>Severity</th><th>Duration</th><th>Affected services</th><th>Follow-ups</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n",
        entries.len()
    );
    shell("Post-mortems", &body)
}

/// Builds `index.html` and one page per document.
pub fn build_site(docs: &[SourceDoc]) -> Result<Vec<SiteFile>, SiteError> {
    if docs.is_empty() {
        return Err(SiteError::NoDocuments);
    }
    let mut files: Vec<SiteFile> = Vec::with_capacity(docs.len() + 1);
    let mut entries = Vec::with_capacity(docs.len());
    let mut owners: Vec<(String, &str)> = Vec::new();
    for d in docs {
        let path = page_path(&d.file_name);
        if path == "index.html" {
            return Err(SiteError::DuplicatePage {
                path,
                first: "the index".into(),
                second: d.file_name.clone(),
            });
        }
        if let Some((_, first)) = owners.iter().find(|(p, _)| *p == path) {
            return Err(SiteError::DuplicatePage {
                path,
                first: (*first).to_string(),
                second: d.file_name.clone(),
            });
        }
        owners.push((path.clone(), &d.file_name));
        let parsed = parse_document(&d.file_name, &d.text);
        entries.push(IndexEntry::new(&d.file_name, &parsed));
        files.push(SiteFile {
            path,
            contents: render_page(d),
        });
    }
    files.insert(
        0,
        SiteFile {
            path: "index.html".into(),
            contents: render_index(&entries),
        },
    );
    Ok(files)
}
