//! The runbook's severity decision tree, with a trace of every question it asked.
//!
//! Q1 can any users access the service? no → Sev1.
//! Q2 what share of requests fail? > 50 % → Sev1; 10–50 % → Sev2; 5 % ≤ x < 10 % → Sev3; < 5 % → Q3.
//! Q3 is it recovering on its own? no → Sev2; yes → Q4.
//! Q4 does it require user action or cause data loss? yes → Sev2; no → Sev3.
//!
//! The severity definitions add two rules the tree leaves out: latency ≥ 10× normal is at least
//! Sev2 and ≥ 2× at least Sev3; and no user impact at all is Sev4. An unknown signal stops the
//! tree with the most severe answer still reachable from that question, never a guess.

use serde::{Deserialize, Serialize};

use crate::{DomainError, Severity};

/// What is known about the impact. `None` means unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signals {
    /// Can any users access the service at all?
    pub users_can_access: Option<bool>,
    /// Share of failing requests, 0-100.
    pub failing_percent: Option<f64>,
    /// Is it recovering on its own?
    pub recovering: Option<bool>,
    /// Does it require user action, or cause data loss?
    pub user_action_or_data_loss: Option<bool>,
    /// Current latency divided by normal latency.
    pub latency_ratio: Option<f64>,
}

impl Signals {
    /// True when no signal is known.
    pub fn is_empty(&self) -> bool {
        self == &Signals::default()
    }

    /// Rejects values no measurement can produce, naming the field.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(p) = self.failing_percent
            && !(p.is_finite() && (0.0..=100.0).contains(&p))
        {
            return Err(DomainError::invalid(
                "signals.failing_percent",
                format!("{p} is not a percentage; give a number from 0 to 100"),
            ));
        }
        if let Some(r) = self.latency_ratio
            && !(r.is_finite() && r > 0.0)
        {
            return Err(DomainError::invalid(
                "signals.latency_ratio",
                format!("{r} is not a latency ratio; give current ÷ normal latency, e.g. 2.5"),
            ));
        }
        Ok(())
    }
}

/// One question of the tree and how it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Stable id: `q1_users_can_access`, `q2_failing_percent`, `q3_recovering`,
    /// `q4_user_action_or_data_loss`, `no_user_impact`, `latency_floor`, `explicit`.
    pub question: String,
    /// The question in words.
    pub text: String,
    /// The answer: `yes`, `no`, `unknown`, a band such as `10-50%`, or `overridden`.
    pub answer: String,
    /// The value that was used, as given (`30`, `true`), or `unknown`.
    pub value: String,
    /// The severity this step decided, if it decided one.
    pub outcome: Option<Severity>,
}

/// How the severity was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityBasis {
    /// The decision tree, from signals.
    DecisionTree,
    /// Stated by a person; wins over the tree.
    Explicit,
}

/// The result: a severity and the reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The severity.
    pub severity: Severity,
    /// How it was decided.
    pub basis: SeverityBasis,
    /// Every question asked, in order.
    pub trace: Vec<TraceStep>,
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn step(
    question: &str,
    text: &str,
    answer: impl Into<String>,
    value: impl Into<String>,
    outcome: Option<Severity>,
) -> TraceStep {
    TraceStep {
        question: question.to_owned(),
        text: text.to_owned(),
        answer: answer.into(),
        value: value.into(),
        outcome,
    }
}

const Q1: (&str, &str) = ("q1_users_can_access", "Can any users access the service?");
const Q2: (&str, &str) = (
    "q2_failing_percent",
    "What percentage of requests are failing?",
);
const Q3: (&str, &str) = ("q3_recovering", "Is the service recovering on its own?");
const Q4: (&str, &str) = (
    "q4_user_action_or_data_loss",
    "Does it require any user action, or cause data loss?",
);

fn unknown(q: (&str, &str), most_severe: Severity) -> TraceStep {
    step(q.0, q.1, "unknown", "unknown", Some(most_severe))
}

fn tree(signals: &Signals, trace: &mut Vec<TraceStep>) -> Severity {
    use Severity::*;
    match signals.users_can_access {
        None => {
            trace.push(unknown(Q1, Sev1));
            return Sev1;
        }
        Some(false) => {
            trace.push(step(Q1.0, Q1.1, "no", "false", Some(Sev1)));
            return Sev1;
        }
        Some(true) => trace.push(step(Q1.0, Q1.1, "yes", "true", None)),
    }
    let Some(p) = signals.failing_percent else {
        trace.push(unknown(Q2, Sev1));
        return Sev1;
    };
    let shown = format!("{p}");
    if p > 50.0 {
        trace.push(step(Q2.0, Q2.1, ">50%", shown, Some(Sev1)));
        return Sev1;
    }
    if p >= 10.0 {
        trace.push(step(Q2.0, Q2.1, "10-50%", shown, Some(Sev2)));
        return Sev2;
    }
    if p >= 5.0 {
        trace.push(step(Q2.0, Q2.1, "5-10%", shown, Some(Sev3)));
        return Sev3;
    }
    trace.push(step(Q2.0, Q2.1, "<5%", shown, None));

    // The severity table's Sev4 ("no user impact") sits outside the tree; it needs positive
    // evidence of every kind of impact being absent, otherwise the tree continues.
    let no_latency_rise = signals.latency_ratio.is_some_and(|r| r <= 1.0);
    if p == 0.0 && no_latency_rise && signals.user_action_or_data_loss != Some(true) {
        trace.push(step(
            "no_user_impact",
            "No failures, no latency rise, nothing user-visible?",
            "yes",
            format!(
                "failing_percent=0, latency_ratio={}",
                signals.latency_ratio.unwrap_or(1.0)
            ),
            Some(Sev4),
        ));
        return Sev4;
    }

    match signals.recovering {
        None => {
            trace.push(unknown(Q3, Sev2));
            return Sev2;
        }
        Some(false) => {
            trace.push(step(Q3.0, Q3.1, "no", "false", Some(Sev2)));
            return Sev2;
        }
        Some(true) => trace.push(step(Q3.0, Q3.1, "yes", "true", None)),
    }
    match signals.user_action_or_data_loss {
        None => {
            trace.push(unknown(Q4, Sev2));
            Sev2
        }
        Some(b) => {
            let sev = if b { Sev2 } else { Sev3 };
            trace.push(step(Q4.0, Q4.1, yes_no(b), b.to_string(), Some(sev)));
            sev
        }
    }
}

fn latency_floor(signals: &Signals) -> Option<(Severity, f64)> {
    let r = signals.latency_ratio?;
    if r >= 10.0 {
        Some((Severity::Sev2, r))
    } else if r >= 2.0 {
        Some((Severity::Sev3, r))
    } else {
        None
    }
}

/// Decides a severity.
///
/// `explicit` is what a person said; it wins, and the trace records the tree's own answer
/// beside it when signals were given. With neither, the declare is refused.
pub fn classify(
    signals: &Signals,
    explicit: Option<Severity>,
) -> Result<Classification, DomainError> {
    signals.validate()?;
    if signals.is_empty() {
        return match explicit {
            Some(s) => Ok(Classification {
                severity: s,
                basis: SeverityBasis::Explicit,
                trace: vec![step(
                    "explicit",
                    "Severity given by the declarer",
                    "given",
                    s.level().to_string(),
                    Some(s),
                )],
            }),
            None => Err(DomainError::NoSeverityBasis),
        };
    }
    let mut trace = Vec::new();
    let mut severity = tree(signals, &mut trace);
    if let Some((floor, ratio)) = latency_floor(signals)
        && floor.is_more_severe_than(severity)
    {
        trace.push(step(
            "latency_floor",
            "Latency against normal: 10x or more is at least SEV2, 2x or more at least SEV3",
            format!("raised to {floor}"),
            format!("{ratio}"),
            Some(floor),
        ));
        severity = floor;
    }
    match explicit {
        Some(s) => {
            trace.push(step(
                "explicit",
                "Severity given by the declarer overrides the decision tree",
                "overridden",
                format!(
                    "tree said {}, declarer said {}",
                    severity.level(),
                    s.level()
                ),
                Some(s),
            ));
            Ok(Classification {
                severity: s,
                basis: SeverityBasis::Explicit,
                trace,
            })
        }
        None => Ok(Classification {
            severity,
            basis: SeverityBasis::DecisionTree,
            trace,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    fn sig(
        access: Option<bool>,
        pct: Option<f64>,
        rec: Option<bool>,
        loss: Option<bool>,
        lat: Option<f64>,
    ) -> Signals {
        Signals {
            users_can_access: access,
            failing_percent: pct,
            recovering: rec,
            user_action_or_data_loss: loss,
            latency_ratio: lat,
        }
    }

    fn sev(s: Signals) -> Severity {
        classify(&s, None).unwrap().severity
    }

    #[test]
    fn q1_no_access_is_sev1() {
        let c = classify(
            &sig(Some(false), Some(0.0), Some(true), Some(false), None),
            None,
        )
        .unwrap();
        assert_eq!(c.severity, Sev1);
        assert_eq!(c.trace.len(), 1);
        assert_eq!(c.trace[0].question, "q1_users_can_access");
        assert_eq!(c.trace[0].answer, "no");
    }

    #[test]
    fn q2_bands_and_their_boundaries() {
        let at = |p: f64| sev(sig(Some(true), Some(p), Some(false), Some(false), None));
        assert_eq!(at(100.0), Sev1);
        assert_eq!(at(50.1), Sev1);
        assert_eq!(at(50.0), Sev2, "exactly 50% is in the 10-50% band");
        assert_eq!(at(30.0), Sev2);
        assert_eq!(at(10.0), Sev2, "exactly 10% is in the 10-50% band");
        assert_eq!(at(9.99), Sev3);
        assert_eq!(at(5.0), Sev3, "exactly 5% is in the 5-10% band");
        // Below 5% the tree goes on to Q3; not recovering → Sev2.
        assert_eq!(at(4.99), Sev2);
    }

    #[test]
    fn q3_and_q4_below_five_percent() {
        assert_eq!(
            sev(sig(Some(true), Some(2.0), Some(false), None, None)),
            Sev2
        );
        assert_eq!(
            sev(sig(Some(true), Some(2.0), Some(true), Some(true), None)),
            Sev2
        );
        assert_eq!(
            sev(sig(Some(true), Some(2.0), Some(true), Some(false), None)),
            Sev3
        );
    }

    #[test]
    fn unknown_signals_stop_with_the_most_severe_reachable_answer() {
        let c = classify(&sig(None, Some(1.0), None, None, None), None).unwrap();
        assert_eq!((c.severity, c.trace.len()), (Sev1, 1));
        assert_eq!(c.trace[0].answer, "unknown");

        let c = classify(&sig(Some(true), None, None, None, None), None).unwrap();
        assert_eq!(c.severity, Sev1);
        assert_eq!(c.trace.last().unwrap().question, "q2_failing_percent");

        let c = classify(&sig(Some(true), Some(1.0), None, Some(false), None), None).unwrap();
        assert_eq!(c.severity, Sev2);
        assert_eq!(c.trace.last().unwrap().question, "q3_recovering");

        let c = classify(&sig(Some(true), Some(1.0), Some(true), None, None), None).unwrap();
        assert_eq!(c.severity, Sev2);
        assert_eq!(
            c.trace.last().unwrap().question,
            "q4_user_action_or_data_loss"
        );
        assert_eq!(c.trace.last().unwrap().answer, "unknown");
    }

    #[test]
    fn latency_floors_raise_but_never_lower() {
        // Tree alone says Sev3; 2x latency keeps it Sev3; 10x raises to Sev2.
        let base = |lat| sig(Some(true), Some(1.0), Some(true), Some(false), Some(lat));
        assert_eq!(sev(base(1.5)), Sev3);
        assert_eq!(sev(base(2.0)), Sev3);
        let c = classify(&base(10.0), None).unwrap();
        assert_eq!(c.severity, Sev2);
        assert_eq!(c.trace.last().unwrap().question, "latency_floor");
        // Already Sev1: latency does not lower it.
        assert_eq!(
            sev(sig(Some(true), Some(80.0), None, None, Some(12.0))),
            Sev1
        );
        // Zero failures but 2x latency: no Sev4; the tree continues and the floor applies.
        assert_eq!(
            sev(sig(
                Some(true),
                Some(0.0),
                Some(true),
                Some(false),
                Some(2.0)
            )),
            Sev3
        );
    }

    #[test]
    fn no_user_impact_is_sev4_only_with_evidence() {
        let c = classify(&sig(Some(true), Some(0.0), None, None, Some(1.0)), None).unwrap();
        assert_eq!(c.severity, Sev4);
        assert_eq!(c.trace.last().unwrap().question, "no_user_impact");
        // Latency unknown: no claim of zero impact.
        assert_eq!(
            sev(sig(Some(true), Some(0.0), Some(true), Some(false), None)),
            Sev3
        );
        // Data loss is impact even without failing requests.
        assert_eq!(
            sev(sig(
                Some(true),
                Some(0.0),
                Some(true),
                Some(true),
                Some(1.0)
            )),
            Sev2
        );
    }

    #[test]
    fn explicit_severity_wins_and_the_trace_says_so() {
        let c = classify(
            &sig(Some(true), Some(30.0), Some(false), None, None),
            Some(Sev4),
        )
        .unwrap();
        assert_eq!(c.severity, Sev4);
        assert_eq!(c.basis, SeverityBasis::Explicit);
        let last = c.trace.last().unwrap();
        assert_eq!(last.question, "explicit");
        assert!(last.value.contains("tree said 2"), "{}", last.value);

        let c = classify(&Signals::default(), Some(Sev1)).unwrap();
        assert_eq!((c.severity, c.trace.len()), (Sev1, 1));
    }

    #[test]
    fn neither_severity_nor_signals_is_refused() {
        assert_eq!(
            classify(&Signals::default(), None).unwrap_err(),
            DomainError::NoSeverityBasis
        );
    }

    #[test]
    fn impossible_values_are_refused_naming_the_field() {
        let e = classify(&sig(Some(true), Some(130.0), None, None, None), None).unwrap_err();
        assert!(e.to_string().starts_with("signals.failing_percent"), "{e}");
        let e = classify(&sig(Some(true), Some(f64::NAN), None, None, None), None).unwrap_err();
        assert!(e.to_string().starts_with("signals.failing_percent"), "{e}");
        let e = classify(&sig(Some(true), Some(1.0), None, None, Some(-2.0)), None).unwrap_err();
        assert!(e.to_string().starts_with("signals.latency_ratio"), "{e}");
    }

    #[test]
    fn walkthrough_example_30_percent_not_recovering_is_sev2() {
        let c = classify(&sig(Some(true), Some(30.0), Some(false), None, None), None).unwrap();
        assert_eq!(c.severity, Sev2);
        let qs: Vec<_> = c.trace.iter().map(|s| s.question.as_str()).collect();
        assert_eq!(qs, ["q1_users_can_access", "q2_failing_percent"]);
        assert_eq!(c.trace[1].answer, "10-50%");
        assert_eq!(c.trace[1].value, "30");
    }
}
