//! Property tests: edits change exactly one range and nothing else.

use proptest::prelude::*;
use warroom_postmortem::{
    EditError, EditStatus, ImplementationRow, ItemType, Priority, StatusKind, StatusSpan,
    append_implementation_rows, parse_document, plan_implementation_rows, plan_status_edit,
    set_item_status,
};

const LABEL: &str = "docs/post-mortems/2026-04-14-prop.md";

fn piece() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Add",
        "alert",
        "Alertmanager",
        "migrate",
        "config",
        "option",
        "NFS",
        "größe",
        "日本語",
        "🚀",
        "`a\\|b`",
        "x\\|y",
        "**P1**",
        "~~old~~",
        "monitor",
        "review",
        "café",
        "Remove",
        "uptime check",
        "runbook",
        "the",
        "on",
        "(see #12)",
        "TODO",
        "[link](x.md)",
        "a_b",
    ])
    .prop_map(String::from)
}

fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), min..max).prop_map(|v| v.join(" "))
}

fn status() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "TODO",
        "Done",
        "",
        "pending",
        "deferred",
        "✅",
        "in progress",
        "Needs human review",
        "blocked",
        "ask Bob",
        "~~TODO~~",
        "open",
    ])
    .prop_map(String::from)
}

fn heading() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "## Prevention Plan",
            "## Action Items",
            "## Follow-ups (not yet done)",
            "## Notes",
            "## Timeline (UTC)",
            "## Lessons Learned",
            "### P1 — Fix the SPOF",
            "## Remediation (Pending)",
            "## Completed",
        ])
        .prop_map(String::from),
        (
            1u8..9,
            text(1, 4),
            prop::sample::select(vec!["DEFERRED", "done", "Blocked", "pending"])
        )
            .prop_map(|(n, t, s)| format!("### {n}. {t} ({s})")),
    ]
}

fn table() -> impl Strategy<Value = String> {
    let headers = prop::sample::select(vec![
        vec!["Priority", "Action", "Type", "Details", "Status"],
        vec!["Status", "Action", "Owner"],
        vec!["Action", "Owner", "Status"],
        vec!["Priority", "Action"],
        vec!["Status", "Fix"],
        vec!["Prio", "Task", "Kind"],
    ]);
    (
        headers,
        prop::collection::vec((text(1, 5), text(0, 3), status(), 0u8..5), 1..5),
    )
        .prop_map(|(h, rows)| {
            let mut s = format!("| {} |\n|{}\n", h.join(" | "), "---|".repeat(h.len()));
            for (action, other, st, prio) in rows {
                let cells: Vec<String> = h
                    .iter()
                    .map(|c| match *c {
                        "Action" | "Task" | "Fix" => action.clone(),
                        "Status" => st.clone(),
                        "Priority" | "Prio" => {
                            if prio == 4 {
                                "done".into()
                            } else {
                                format!("P{prio}")
                            }
                        }
                        "Type" | "Kind" => ["Alert", "Config", "", "Migration", "Terraform"]
                            [usize::from(prio)]
                        .into(),
                        _ => other.clone(),
                    })
                    .collect();
                s.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            s
        })
}

fn tasks() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (any::<bool>(), text(1, 5), prop::option::of(status())),
        1..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(done, t, marker)| {
                let m = marker
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                format!("- [{}] {t}{m}\n", if done { "x" } else { " " })
            })
            .collect()
    })
}

fn block() -> impl Strategy<Value = String> {
    prop_oneof![
        text(1, 8).prop_map(|t| format!("{t}\n")),
        heading().prop_map(|h| format!("{h}\n")),
        table(),
        tasks(),
        prop::collection::vec(text(1, 4), 1..3)
            .prop_map(|v| v.iter().map(|t| format!("- {t}\n")).collect()),
        table().prop_map(|t| format!("```\n{t}- [ ] fenced\n```\n")),
        (status(), text(1, 4)).prop_map(|(s, t)| format!(
            "**Action ({}):** {t}\n",
            if s.is_empty() { "open".into() } else { s }
        )),
    ]
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(block(), 1..10).prop_map(|v| v.join("\n"))
}

/// What must not change about the other items.
fn summary(i: &warroom_postmortem::Item) -> (String, String, StatusKind, Priority, ItemType, bool) {
    (
        i.id.clone(),
        i.action.clone(),
        i.status,
        i.priority,
        i.item_type,
        i.safe,
    )
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn status_edit_touches_only_the_target(doc in document()) {
        let before = parse_document(LABEL, &doc);
        for item in &before.items {
            for new in [EditStatus::Done, EditStatus::NeedsHumanReview] {
                let want = match new {
                    EditStatus::Done => StatusKind::Done,
                    EditStatus::NeedsHumanReview => StatusKind::NeedsHumanReview,
                };
                match plan_status_edit(LABEL, &doc, &item.id, new) {
                    Ok(None) => prop_assert_eq!(item.status, want),
                    Ok(Some(splice)) => {
                        let out = set_item_status(LABEL, &doc, &item.id, new).unwrap();
                        // Only the target range differs.
                        prop_assert_eq!(&out[..splice.range.start], &doc[..splice.range.start]);
                        prop_assert_eq!(&out[splice.range.start + splice.replacement.len()..], &doc[splice.range.end..]);
                        prop_assert_eq!(&out[splice.range.start..splice.range.start + splice.replacement.len()], splice.replacement.as_str());
                        prop_assert!(!splice.replacement.contains('\n'));
                        prop_assert_eq!(line_of(&doc, splice.range.start), item.line, "edit lands on the item's line");
                        let after = parse_document(LABEL, &out);
                        prop_assert_eq!(after.items.len(), before.items.len());
                        for (b, a) in before.items.iter().zip(&after.items) {
                            if b.id == item.id {
                                prop_assert_eq!(a.status, want);
                                prop_assert_eq!(&a.action, &b.action);
                            } else {
                                prop_assert_eq!(summary(a), summary(b));
                            }
                        }
                    }
                    Err(EditError::NotEditable { .. }) => {
                        let ticked_box = matches!(&item.span, StatusSpan::Checkbox { marker, .. } if doc.get(marker.clone()) != Some("[ ]"));
                        prop_assert!(
                            item.span == StatusSpan::None || (new == EditStatus::NeedsHumanReview && ticked_box),
                            "refused an editable item {:#?} in\n{}", item, doc
                        );
                    }
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
        }
    }

    #[test]
    fn implementation_rows_are_one_insertion(doc in document(), action in text(1, 5)) {
        let rows = [ImplementationRow {
            date: Some(time::macros::date!(2026 - 04 - 15)),
            action: format!("{action} | raw pipe"),
            priority: Priority::P2,
            item_type: ItemType::Alert,
            commit: Some(warroom_postmortem::CommitRef { sha: "abc1234".into(), url: Some("https://example.com/c/abc1234".into()) }),
            implemented_by: "postmortem-todo-resolver".into(),
        }];
        let splice = plan_implementation_rows(&doc, &rows);
        prop_assert!(splice.range.is_empty());
        let out = append_implementation_rows(&doc, &rows);
        prop_assert_eq!(&out[..splice.range.start], &doc[..splice.range.start]);
        prop_assert_eq!(&out[splice.range.start + splice.replacement.len()..], &doc[splice.range.start..]);
        let before: Vec<_> = parse_document(LABEL, &doc).items.iter().map(summary).collect();
        let after: Vec<_> = parse_document(LABEL, &out).items.iter().map(summary).collect();
        prop_assert_eq!(before, after);
        let twice = append_implementation_rows(&out, &rows);
        prop_assert_eq!(twice.matches("## Follow-up Implementation").count(), out.matches("## Follow-up Implementation").count());
        prop_assert_eq!(twice.matches("raw pipe").count(), 2 * doc.matches("raw pipe").count() + 2);
    }
}
