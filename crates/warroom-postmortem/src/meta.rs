//! Document metadata: title, date, severity, duration, affected services.
//!
//! People write these as a field/value table or as bold `**Date:**` lines;
//! both are read, the first occurrence of a field wins.

use serde::{Serialize, Serializer};
use time::{Date, Month};

use crate::parse::blocks::{self, Block, Inline};
use crate::parse::vocab;

/// What a post-mortem says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// From the `# Post-Mortem: ...` H1 (prefix removed), else any H1, else a Title field.
    pub title: Option<String>,
    /// The incident date; falls back to a `YYYY-MM-DD-` file-name prefix.
    #[serde(serialize_with = "ser_date")]
    pub date: Option<Date>,
    /// The Date field as written.
    pub date_raw: Option<String>,
    /// 1 (most severe) to 4.
    pub severity: Option<u8>,
    /// The Severity field as written (`SEV1`, `SEV-1`, `1 (Critical)`, `Critical`).
    pub severity_raw: Option<String>,
    /// The Duration field as written.
    pub duration: Option<String>,
    /// Affected services, split on commas.
    pub services: Vec<String>,
    /// The document's own Status field (e.g. "Resolved", "Draft").
    pub status: Option<String>,
}

fn ser_date<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_date(*d)),
        None => s.serialize_none(),
    }
}

/// `YYYY-MM-DD`, without going through a fallible formatter.
pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The first `YYYY-MM-DD` in `s` that is a real calendar date.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    (0..b.len().saturating_sub(9)).find_map(|i| {
        if b.get(i + 4) != Some(&b'-') || b.get(i + 7) != Some(&b'-') {
            return None;
        }
        if i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let y = i32::try_from(num(i..i + 4)?).ok()?;
        let m = Month::try_from(u8::try_from(num(i + 5..i + 7)?).ok()?).ok()?;
        let d = u8::try_from(num(i + 8..i + 10)?).ok()?;
        Date::from_calendar_date(y, m, d).ok()
    })
}

/// Reads a severity written `SEV1`, `SEV-1`, `SEV 1`, `Sev1`, `1 (Critical)` or `Critical`.
pub fn parse_severity(raw: &str) -> Option<u8> {
    let ws = vocab::words(raw);
    let first = ws.first()?;
    let n = if first == "sev" || first == "severity" {
        ws.get(1)?.parse::<u8>().ok()?
    } else if let Some(rest) = first.strip_prefix("sev").filter(|r| !r.is_empty()) {
        rest.parse::<u8>().ok()?
    } else if let Ok(n) = first.parse::<u8>() {
        n
    } else {
        match first.as_str() {
            "critical" => 1,
            "major" | "high" => 2,
            "minor" | "medium" | "moderate" => 3,
            "low" | "informational" | "info" => 4,
            _ => return None,
        }
    };
    (1..=4).contains(&n).then_some(n)
}

/// Strips `Post-Mortem:` and similar prefixes from an H1.
fn title_from_h1(text: &str) -> String {
    const PREFIXES: &[&str] = &[
        "incident post-mortem",
        "post-mortem",
        "postmortem",
        "post mortem",
        "incident report",
    ];
    let t = text.trim();
    for p in PREFIXES {
        if t.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)) {
            let rest = t
                .get(p.len()..)
                .unwrap_or("")
                .trim_start_matches([':', '-', '—', '–', ' ']);
            if !rest.is_empty() {
                return rest.to_string();
            }
        }
    }
    t.to_string()
}

#[derive(Clone, Copy)]
enum Field {
    Title,
    Date,
    Severity,
    Duration,
    Services,
    Status,
}

fn field(key: &str) -> Option<Field> {
    match vocab::words(key).join(" ").as_str() {
        "title" | "incident" => Some(Field::Title),
        "date" | "incident date" => Some(Field::Date),
        "severity" | "sev" => Some(Field::Severity),
        "duration" | "total duration" | "outage duration" => Some(Field::Duration),
        "affected services" | "affected service" | "services" | "service" | "impacted services"
        | "services affected" | "affected" => Some(Field::Services),
        "status" => Some(Field::Status),
        _ => None,
    }
}

impl Meta {
    fn set(&mut self, f: Field, value: &str) {
        let v = value.trim();
        if v.is_empty() {
            return;
        }
        match f {
            Field::Title if self.title.is_none() => self.title = Some(v.to_string()),
            Field::Date if self.date_raw.is_none() => {
                self.date_raw = Some(v.to_string());
                self.date = parse_date(v);
            }
            Field::Severity if self.severity_raw.is_none() => {
                self.severity_raw = Some(v.to_string());
                self.severity = parse_severity(v);
            }
            Field::Duration if self.duration.is_none() => self.duration = Some(v.to_string()),
            Field::Services if self.services.is_empty() => {
                self.services = v
                    .split([',', ';'])
                    .map(|s| s.trim().trim_matches('`').trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            Field::Status if self.status.is_none() => self.status = Some(v.to_string()),
            _ => {}
        }
    }

    /// `**Key:** value` lines; several keys may share a line
    /// (`**Date:** 2026-02-11 · **Severity:** Sev3`).
    fn bold_lines(&mut self, inlines: &[Inline]) {
        for line in blocks::lines(inlines) {
            let mut current: Option<(Option<Field>, String)> = None;
            let mut pairs: Vec<(Option<Field>, String)> = Vec::new();
            let mut first = true;
            for (n, i) in line.iter().enumerate() {
                let key = i.text.trim();
                let next_colon = line.get(n + 1).is_some_and(|x| x.text.starts_with(':'));
                let starts_line = first;
                first &= key.is_empty();
                if i.strong
                    && (key.ends_with(':') || next_colon)
                    && (starts_line || current.is_some())
                {
                    if let Some(p) = current.take() {
                        pairs.push(p);
                    }
                    current = Some((field(key.trim_end_matches(':')), String::new()));
                } else if let Some((_, v)) = current.as_mut() {
                    v.push_str(&i.text);
                }
            }
            pairs.extend(current);
            for (f, v) in pairs {
                let v = v.trim().trim_start_matches(':');
                let v = v.trim().trim_end_matches(['·', '|', ',', ';', '•']).trim();
                if let Some(f) = f {
                    self.set(f, v);
                }
            }
        }
    }
}

/// Collects metadata from the parsed blocks.
pub(crate) fn extract(file_label: &str, blocks: &[Block]) -> Meta {
    let mut m = Meta::default();
    for b in blocks {
        match b {
            Block::Heading {
                level: 1, inlines, ..
            } if m.title.is_none() => {
                let t = title_from_h1(&blocks::plain(inlines));
                if !t.is_empty() {
                    m.title = Some(t);
                }
            }
            Block::Table(t) => {
                // A field/value table names at least two fields; this keeps a
                // `| Status | Fix |` plan table from being read as metadata.
                let rows = || std::iter::once(&t.head).chain(t.rows.iter().map(|r| &r.cells));
                let fields = rows()
                    .filter(|cells| cells.first().is_some_and(|k| field(&k.text()).is_some()))
                    .count();
                if fields < 2 {
                    continue;
                }
                for cells in rows() {
                    if let (Some(k), Some(v)) = (cells.first(), cells.get(1))
                        && let Some(f) = field(&k.text())
                    {
                        m.set(f, &v.text());
                    }
                }
            }
            Block::Paragraph { inlines, .. } => m.bold_lines(inlines),
            Block::Item(it) => m.bold_lines(&it.inlines),
            _ => {}
        }
    }
    if m.date.is_none() {
        let base = file_label.rsplit(['/', '\\']).next().unwrap_or(file_label);
        m.date = base.get(..10).and_then(parse_date);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_spellings() {
        for s in [
            "SEV1",
            "SEV-1",
            "SEV 1",
            "Sev1",
            "1 (Critical)",
            "Critical",
            "sev-1 (critical)",
        ] {
            assert_eq!(parse_severity(s), Some(1), "{s}");
        }
        assert_eq!(parse_severity("SEV-3"), Some(3));
        assert_eq!(parse_severity("P1"), None);
        assert_eq!(parse_severity("SEV9"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2026-04-14 (Tue)").map(format_date).as_deref(),
            Some("2026-04-14")
        );
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("12026-04-14x"), None);
    }
}
