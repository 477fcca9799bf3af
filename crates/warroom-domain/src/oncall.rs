//! On-call schedules: rotations in a time zone, layered, with overrides.
//!
//! Hand-offs are civil times in the schedule's IANA time zone, so a 09:00 Europe/Berlin
//! hand-off stays at 09:00 across daylight-saving changes (the tz database is compiled in; no
//! files are read). Later layers sit on top of earlier ones wherever they have coverage, and
//! overrides sit on top of everything.

use jiff::{Timestamp, ToSpan, Zoned, civil, tz::TimeZone};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::DomainError;

/// How long each shift is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// One calendar day per member.
    Daily,
    /// One calendar week per member.
    Weekly,
    /// `shift_hours` per member, in elapsed time.
    Custom,
}

/// One layer of a schedule, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Name, shown as the source of an on-call answer.
    pub name: String,
    /// Shift length kind.
    pub rotation: Rotation,
    /// Shift length for `custom` rotations.
    pub shift_hours: Option<u32>,
    /// The first hand-off, a civil time in the schedule's zone: `2026-01-05T09:00`.
    pub handoff: String,
    /// Who rotates, in order.
    pub members: Vec<String>,
    /// When the layer stops covering, a civil time in the schedule's zone.
    pub end: Option<String>,
}

/// A person covering for a while, on top of every layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Who covers.
    pub person: String,
    /// From.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// Until.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

/// A schedule as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Name, referenced by escalation policies.
    pub name: String,
    /// IANA zone, e.g. `Europe/Berlin`, or `UTC`.
    pub time_zone: String,
    /// Layers, lowest first.
    pub layers: Vec<Layer>,
    /// Overrides.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone)]
struct CheckedLayer {
    name: String,
    rotation: Rotation,
    shift_hours: i64,
    start: Zoned,
    end: Option<Timestamp>,
    members: Vec<String>,
}

/// A validated schedule, ready to answer "who is on call".
#[derive(Debug, Clone)]
pub struct CheckedSchedule {
    /// Name.
    pub name: String,
    layers: Vec<CheckedLayer>,
    overrides: Vec<Override>,
}

/// Who is on call, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnCall {
    /// The person.
    pub person: String,
    /// `override`, or the layer's name.
    pub source: String,
    /// When this person's shift started.
    #[serde(with = "time::serde::rfc3339")]
    pub shift_start: OffsetDateTime,
    /// When it ends, if it ends.
    #[serde(with = "time::serde::rfc3339::option")]
    pub shift_end: Option<OffsetDateTime>,
}

fn to_ts(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn from_ts(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Schedule {
    /// Validates, naming the config key of any problem (`schedules[0].layers[1].handoff`).
    pub fn check(&self, key: &str) -> Result<CheckedSchedule, DomainError> {
        if self.name.trim().is_empty() {
            return Err(DomainError::invalid(
                format!("{key}.name"),
                "must not be empty",
            ));
        }
        let tz = TimeZone::get(&self.time_zone).map_err(|_| {
            DomainError::invalid(
                format!("{key}.time_zone"),
                format!(
                    "`{}` is not an IANA time zone; write e.g. Europe/Berlin or UTC",
                    self.time_zone
                ),
            )
        })?;
        if self.layers.is_empty() && self.overrides.is_empty() {
            return Err(DomainError::invalid(
                format!("{key}.layers"),
                "a schedule needs at least one layer",
            ));
        }
        let civil_at = |field: String, raw: &str| -> Result<Zoned, DomainError> {
            raw.parse::<civil::DateTime>()
                .ok()
                .and_then(|dt| dt.to_zoned(tz.clone()).ok())
                .ok_or_else(|| {
                    DomainError::invalid(
                        field,
                        format!(
                            "`{raw}` is not a local date and time; write e.g. 2026-01-05T09:00"
                        ),
                    )
                })
        };
        let mut layers = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let lk = format!("{key}.layers[{i}]");
            if l.members.is_empty() || l.members.iter().any(|m| m.trim().is_empty()) {
                return Err(DomainError::invalid(
                    format!("{lk}.members"),
                    "list at least one person, none blank",
                ));
            }
            let shift_hours = match (l.rotation, l.shift_hours) {
                (Rotation::Custom, Some(h)) if h > 0 => i64::from(h),
                (Rotation::Custom, _) => {
                    return Err(DomainError::invalid(
                        format!("{lk}.shift_hours"),
                        "a custom rotation needs shift_hours of at least 1",
                    ));
                }
                (Rotation::Daily, _) => 24,
                (Rotation::Weekly, _) => 24 * 7,
            };
            let start = civil_at(format!("{lk}.handoff"), &l.handoff)?;
            let end = l
                .end
                .as_deref()
                .map(|e| civil_at(format!("{lk}.end"), e))
                .transpose()?
                .map(|z| z.timestamp());
            if end.is_some_and(|e| e <= start.timestamp()) {
                return Err(DomainError::invalid(
                    format!("{lk}.end"),
                    "must be after the first hand-off",
                ));
            }
            layers.push(CheckedLayer {
                name: l.name.clone(),
                rotation: l.rotation,
                shift_hours,
                start,
                end,
                members: l.members.clone(),
            });
        }
        for (i, o) in self.overrides.iter().enumerate() {
            if o.end <= o.start {
                return Err(DomainError::invalid(
                    format!("{key}.overrides[{i}].end"),
                    "must be after start",
                ));
            }
        }
        Ok(CheckedSchedule {
            name: self.name.clone(),
            layers,
            overrides: self.overrides.clone(),
        })
    }
}

impl CheckedLayer {
    fn shift_start(&self, k: i64) -> Option<Zoned> {
        match self.rotation {
            Rotation::Custom => self.start.checked_add((k * self.shift_hours).hours()).ok(),
            Rotation::Daily => self.start.checked_add(k.days()).ok(),
            Rotation::Weekly => self.start.checked_add((k * 7).days()).ok(),
        }
    }

    fn at(&self, t: Timestamp) -> Option<OnCall> {
        if t < self.start.timestamp() || self.end.is_some_and(|e| t >= e) {
            return None;
        }
        let elapsed_h = (t.as_second() - self.start.timestamp().as_second()) / 3600;
        let mut k = elapsed_h / self.shift_hours;
        // Calendar days are 23 or 25 hours across DST changes; settle the estimate exactly.
        while k > 0 && self.shift_start(k).is_some_and(|s| s.timestamp() > t) {
            k -= 1;
        }
        while self.shift_start(k + 1).is_some_and(|s| s.timestamp() <= t) {
            k += 1;
        }
        let start = self.shift_start(k)?.timestamp();
        let mut end = self.shift_start(k + 1).map(|z| z.timestamp());
        if let (Some(e), Some(layer_end)) = (end, self.end) {
            end = Some(e.min(layer_end));
        }
        let idx = usize::try_from(k).ok()? % self.members.len();
        Some(OnCall {
            person: self.members[idx].clone(),
            source: self.name.clone(),
            shift_start: from_ts(start),
            shift_end: end.map(from_ts),
        })
    }
}

impl CheckedSchedule {
    /// Who is on call at `t`: the latest override covering `t`, else the highest layer with
    /// coverage, else nobody.
    pub fn on_call_at(&self, t: OffsetDateTime) -> Option<OnCall> {
        if let Some(o) = self
            .overrides
            .iter()
            .rev()
            .find(|o| o.start <= t && t < o.end)
        {
            return Some(OnCall {
                person: o.person.clone(),
                source: "override".into(),
                shift_start: o.start,
                shift_end: Some(o.end),
            });
        }
        let ts = to_ts(t);
        self.layers.iter().rev().find_map(|l| l.at(ts))
    }

    /// Stretches of `[from, to)` with nobody on call. Coverage can only change where a layer
    /// starts or ends or an override starts or ends, so those instants are all that is checked.
    pub fn gaps(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        let mut points = vec![from, to];
        for l in &self.layers {
            points.push(from_ts(l.start.timestamp()));
            if let Some(e) = l.end {
                points.push(from_ts(e));
            }
        }
        for o in &self.overrides {
            points.extend([o.start, o.end]);
        }
        points.retain(|p| *p >= from && *p <= to);
        points.sort();
        points.dedup();
        let mut gaps: Vec<(OffsetDateTime, OffsetDateTime)> = Vec::new();
        for w in points.windows(2) {
            let (a, b) = (w[0], w[1]);
            if self.on_call_at(a).is_none() {
                match gaps.last_mut() {
                    Some(last) if last.1 == a => last.1 = b,
                    _ => gaps.push((a, b)),
                }
            }
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn weekly_berlin() -> Schedule {
        Schedule {
            name: "primary".into(),
            time_zone: "Europe/Berlin".into(),
            layers: vec![Layer {
                name: "weekly".into(),
                rotation: Rotation::Weekly,
                shift_hours: None,
                handoff: "2026-03-23T09:00".into(),
                members: vec!["ana".into(), "bo".into(), "cy".into()],
                end: None,
            }],
            overrides: vec![],
        }
    }

    #[test]
    fn weekly_rotation_hands_off_at_local_time_across_dst() {
        let s = weekly_berlin().check("schedules[0]").unwrap();
        // 09:00 CET is 08:00 UTC before the change on 2026-03-29; 09:00 CEST is 07:00 UTC after.
        assert_eq!(
            s.on_call_at(datetime!(2026-03-23 08:00 UTC))
                .unwrap()
                .person,
            "ana"
        );
        assert_eq!(
            s.on_call_at(datetime!(2026-03-30 06:59 UTC))
                .unwrap()
                .person,
            "ana"
        );
        let bo = s.on_call_at(datetime!(2026-03-30 07:00 UTC)).unwrap();
        assert_eq!(bo.person, "bo");
        assert_eq!(bo.shift_start, datetime!(2026-03-30 07:00 UTC));
        assert_eq!(bo.shift_end, Some(datetime!(2026-04-06 07:00 UTC)));
        assert_eq!(
            s.on_call_at(datetime!(2026-04-13 07:00 UTC))
                .unwrap()
                .person,
            "ana",
            "wraps around"
        );
        assert!(
            s.on_call_at(datetime!(2026-03-23 07:59 UTC)).is_none(),
            "nobody before the first hand-off"
        );
    }

    #[test]
    fn higher_layers_and_overrides_win() {
        let mut sch = weekly_berlin();
        sch.layers.push(Layer {
            name: "holiday cover".into(),
            rotation: Rotation::Custom,
            shift_hours: Some(12),
            handoff: "2026-04-01T00:00".into(),
            members: vec!["dee".into(), "eve".into()],
            end: Some("2026-04-02T00:00".into()),
        });
        sch.overrides.push(Override {
            person: "fay".into(),
            start: datetime!(2026-04-01 20:00 UTC),
            end: datetime!(2026-04-01 21:00 UTC),
        });
        let s = sch.check("s").unwrap();
        assert_eq!(
            s.on_call_at(datetime!(2026-03-31 23:00 UTC))
                .unwrap()
                .person,
            "dee"
        );
        assert_eq!(
            s.on_call_at(datetime!(2026-04-01 11:00 UTC))
                .unwrap()
                .person,
            "eve"
        );
        let o = s.on_call_at(datetime!(2026-04-01 20:30 UTC)).unwrap();
        assert_eq!((o.person.as_str(), o.source.as_str()), ("fay", "override"));
        assert_eq!(
            s.on_call_at(datetime!(2026-04-02 00:00 UTC))
                .unwrap()
                .person,
            "bo",
            "the bottom layer again"
        );
    }

    #[test]
    fn gaps_are_reported() {
        let mut sch = weekly_berlin();
        sch.layers[0].end = Some("2026-04-06T09:00".into());
        let s = sch.check("s").unwrap();
        let gaps = s.gaps(
            datetime!(2026-03-20 00:00 UTC),
            datetime!(2026-04-10 00:00 UTC),
        );
        assert_eq!(
            gaps,
            vec![
                (
                    datetime!(2026-03-20 00:00 UTC),
                    datetime!(2026-03-23 08:00 UTC)
                ),
                (
                    datetime!(2026-04-06 07:00 UTC),
                    datetime!(2026-04-10 00:00 UTC)
                ),
            ]
        );
    }

    #[test]
    fn bad_schedules_name_the_key() {
        let mut s = weekly_berlin();
        s.time_zone = "Mars/Olympus".into();
        assert!(
            s.check("schedules[2]")
                .unwrap_err()
                .to_string()
                .starts_with("schedules[2].time_zone:")
        );
        let mut s = weekly_berlin();
        s.layers[0].handoff = "monday".into();
        assert!(
            s.check("schedules[0]")
                .unwrap_err()
                .to_string()
                .starts_with("schedules[0].layers[0].handoff:")
        );
        let mut s = weekly_berlin();
        s.layers[0].rotation = Rotation::Custom;
        assert!(
            s.check("x")
                .unwrap_err()
                .to_string()
                .contains("shift_hours")
        );
        let mut s = weekly_berlin();
        s.layers[0].members.clear();
        assert!(
            s.check("x")
                .unwrap_err()
                .to_string()
                .starts_with("x.layers[0].members")
        );
    }
}
