//! Time formatting shared by messages and checklists: the runbook writes times as `14:32 UTC`.

use time::{Duration, OffsetDateTime, UtcOffset, macros::format_description};

/// `14:32 UTC`, the runbook's way of writing a time of day.
pub fn hm_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let f = format_description!("[hour]:[minute]");
    format!("{} UTC", t.format(&f).unwrap_or_default())
}

/// `2026-01-12 14:32 UTC`.
pub fn date_hm_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]");
    format!("{} UTC", t.format(&f).unwrap_or_default())
}

/// `2026-01-12`.
pub fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let f = format_description!("[year]-[month]-[day]");
    t.format(&f).unwrap_or_default()
}

/// RFC 3339 in UTC with second precision: the storage and API representation.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

/// A human duration: `45s`, `12 minutes`, `1h 23m`, `2d 4h`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.whole_seconds().max(0);
    if secs < 60 {
        return format!("{secs}s");
    }
    let mins = secs / 60;
    if mins < 60 {
        return if mins == 1 {
            "1 minute".to_owned()
        } else {
            format!("{mins} minutes")
        };
    }
    let hours = mins / 60;
    if hours < 48 {
        return format!("{hours}h {}m", mins % 60);
    }
    format!("{}d {}h", hours / 24, hours % 24)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_the_runbook() {
        let t = datetime!(2026-01-12 14:32:09 UTC);
        assert_eq!(hm_utc(t), "14:32 UTC");
        assert_eq!(date(t), "2026-01-12");
        assert_eq!(rfc3339(t), "2026-01-12T14:32:09.000Z");
        assert_eq!(human_duration(Duration::seconds(59)), "59s");
        assert_eq!(human_duration(Duration::minutes(1)), "1 minute");
        assert_eq!(human_duration(Duration::minutes(83)), "1h 23m");
        assert_eq!(human_duration(Duration::hours(50)), "2d 2h");
    }

    #[test]
    fn non_utc_inputs_are_shown_in_utc() {
        let t = datetime!(2026-01-12 16:32 +02:00);
        assert_eq!(hm_utc(t), "14:32 UTC");
    }
}
