//! One test per parsing rule, asserting exact priority, type, status and safety.

use warroom_postmortem::{
    ItemFormat, ItemType, MAX_DOCUMENT_BYTES, ParseError, Priority, PrioritySource, StatusKind,
    TypeSource, parse_bytes, pending_across,
};

use crate::{doc, items, one};

const PLAN: &str = "## Prevention Plan\n\n| Priority | Action | Type | Details | Status |\n|---|---|---|---|---|\n";

#[test]
fn template_row_reads_every_column() {
    let i = one(&format!(
        "{PLAN}| P1 | Add NFS alert | Alert | 5% retrans | TODO |\n"
    ));
    assert_eq!(i.action, "Add NFS alert");
    assert_eq!(
        (i.priority, i.priority_source),
        (Priority::P1, PrioritySource::Column)
    );
    assert_eq!(
        (i.item_type, i.type_source),
        (ItemType::Alert, TypeSource::Column)
    );
    assert_eq!(i.details.as_deref(), Some("5% retrans"));
    assert_eq!(
        (i.status, i.status_raw.as_deref()),
        (StatusKind::Open, Some("TODO"))
    );
    assert!(i.safe);
    assert_eq!(i.format, ItemFormat::Table);
    assert_eq!(i.line, 5);
}

#[test]
fn adjacent_rows_are_never_merged() {
    let v = items(&format!(
        "{PLAN}| P1 | Add disk alert | Alert | | TODO |\n| P2 | Add CPU alert | Alert | | Done |\n| P3 | Add RAM alert | Alert | | TODO |\n"
    ));
    let actions: Vec<&str> = v.iter().map(|i| i.action.as_str()).collect();
    assert_eq!(
        actions,
        ["Add disk alert", "Add CPU alert", "Add RAM alert"]
    );
    assert_eq!(v.iter().map(|i| i.line).collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(v[1].status, StatusKind::Done);
}

#[test]
fn columns_in_any_order_with_synonyms_and_markup() {
    let i = one(
        "## Follow-ups\n\n| **State** | Assignee | Task | Notes | Kind | Prio |\n|---|---|---|---|---|---|\n| pending | @ana | Raise the NFS timeout option | see #12 | *Config* | high |\n",
    );
    assert_eq!(i.action, "Raise the NFS timeout option");
    assert_eq!(i.owner.as_deref(), Some("@ana"));
    assert_eq!(i.details.as_deref(), Some("see #12"));
    assert_eq!(
        (i.item_type, i.type_source),
        (ItemType::Config, TypeSource::Column)
    );
    assert_eq!(
        (i.priority, i.priority_source),
        (Priority::P1, PrioritySource::Column)
    );
    assert_eq!(i.status, StatusKind::Open);
    assert!(i.safe);
}

#[test]
fn severity_column_is_not_priority() {
    let i = one(
        "## Action Items\n\n| Severity | Action | Status |\n|---|---|---|\n| P0 | Add alert on queue depth | TODO |\n",
    );
    assert_eq!(
        (i.priority, i.priority_source),
        (Priority::P2, PrioritySource::Default)
    );
}

#[test]
fn alertmanager_is_not_an_alert_and_migration_is_unsafe() {
    let i = one(&format!(
        "{PLAN}| P1 | Migrate storage to encrypted PVC and update Alertmanager routes | | | TODO |\n"
    ));
    assert_eq!(
        (i.item_type, i.type_source),
        (ItemType::Migration, TypeSource::Inferred)
    );
    assert!(!i.safe);
    assert!(i.unsafe_reason.is_some());
}

#[test]
fn remove_is_not_move_and_untyped_is_unknown_and_unsafe() {
    let i = one(&format!(
        "{PLAN}| P2 | Remove the stale exporter | | | TODO |\n"
    ));
    assert_eq!(
        (i.item_type, i.type_source),
        (ItemType::Unknown, TypeSource::Unknown)
    );
    assert!(!i.safe);
}

#[test]
fn alertmanager_only_is_unknown_not_alert() {
    let i = one(&format!(
        "{PLAN}| P2 | Update Alertmanager routes | | | TODO |\n"
    ));
    assert_eq!(i.item_type, ItemType::Unknown);
    assert!(!i.safe);
}

#[test]
fn two_inferred_types_are_ambiguous_and_unsafe() {
    let i = one(&format!(
        "{PLAN}| P2 | Add alert and verify it fires | | | TODO |\n"
    ));
    assert_eq!(
        (i.item_type, i.type_source),
        (ItemType::Unknown, TypeSource::Unknown)
    );
    assert!(!i.safe);
    assert!(
        i.unsafe_reason
            .as_deref()
            .is_some_and(|r| r.contains("several types"))
    );
}

#[test]
fn type_column_always_wins_and_free_form_values_are_kept_raw() {
    let v = items(&format!(
        "{PLAN}| P2 | Add alert for disk | Migration | | TODO |\n| P2 | Add alert for CPU | Terraform | | TODO |\n| P2 | Write the restore steps | Docs | | TODO |\n| P2 | Tune probe | Runbook + Config | | TODO |\n"
    ));
    assert_eq!(v[0].item_type, ItemType::Migration);
    assert!(!v[0].safe);
    assert_eq!(
        (v[1].item_type, v[1].type_raw.as_deref()),
        (ItemType::Unknown, Some("Terraform"))
    );
    assert!(!v[1].safe);
    assert_eq!(v[2].item_type, ItemType::Runbook);
    assert_eq!(v[3].item_type, ItemType::Unknown);
    assert!(v.iter().all(|i| i.type_source == TypeSource::Column));
}

#[test]
fn unknown_is_never_safe_even_when_open() {
    let d = doc(&format!("{PLAN}| P0 | Do the thing | | | TODO |\n"));
    assert_eq!(d.todos().count(), 0);
    assert_eq!(d.skipped().count(), 1);
}

#[test]
fn swapped_owner_and_status_columns_are_detected() {
    let d = doc(
        "## Action Items\n\n| Action | Owner | Status |\n|---|---|---|\n| Add disk alert | TODO | Viktor to pair with Ana |\n| Add uptime check for grafana | Done | shipped Tuesday |\n",
    );
    assert_eq!(d.items[0].status, StatusKind::Open);
    assert_eq!(d.items[0].owner.as_deref(), Some("Viktor to pair with Ana"));
    assert_eq!(d.items[1].status, StatusKind::Done);
    assert!(
        d.warnings.iter().any(|w| w.message.contains("swapped")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn status_word_in_priority_column_is_a_status() {
    let i = one(
        "## Prevention\n\n| Priority | Action | Type |\n|---|---|---|\n| done | Add CPU alert | Alert |\n",
    );
    assert_eq!(
        (i.status, i.status_raw.as_deref()),
        (StatusKind::Done, Some("done"))
    );
    assert_eq!(i.priority_source, PrioritySource::Default);
}

#[test]
fn status_fix_table_uses_fix_as_action() {
    let i = one(
        "## Remediation\n\n| Status | Fix |\n|---|---|\n| ✅ | Set `soft,timeo=30` mount option |\n",
    );
    assert_eq!(i.action, "Set soft,timeo=30 mount option");
    assert_eq!(i.status, StatusKind::Done);
}

#[test]
fn plan_table_without_status_column_is_open_unless_heading_says_done() {
    let open = one(
        "## Prevention Plan\n\n| Priority | Action |\n|---|---|\n| P1 | Add TCP check for the NAS |\n",
    );
    assert_eq!(
        (open.status, open.status_raw.as_deref()),
        (StatusKind::Open, None)
    );
    assert_eq!(open.item_type, ItemType::Monitor);
    let done = one(
        "## Prevention Plan\n\n### Completed\n\n| Priority | Action |\n|---|---|\n| P1 | Add TCP check for the NAS |\n",
    );
    assert_eq!(done.status, StatusKind::Done);
    let done2 = one("## Follow-ups (Done)\n\n| Action |\n|---|\n| Add ping monitor |\n");
    assert_eq!(done2.status, StatusKind::Done);
}

#[test]
fn timeline_detection_gaps_metadata_and_implementation_tables_are_not_follow_ups() {
    let d = doc(
        "| Field | Value |\n|---|---|\n| Date | 2026-04-14 |\n\n## Timeline (UTC)\n\n| Time | Event |\n|---|---|\n| 14:00 | Action: restart |\n\n## Detection Gaps\n\n| Gap | Impact | Fix |\n|---|---|---|\n| No alert | 40m | Add alert |\n\n## Follow-up Implementation\n\n| Date | Action | Priority | Type | Commit | Implemented By |\n|---|---|---|---|---|---|\n| 2026-04-15 | Add alert | P2 | Alert | abc | bot |\n",
    );
    assert!(d.items.is_empty(), "{:#?}", d.items);
    assert!(!d.needs_review);
}

#[test]
fn heading_priority_is_inherited() {
    let i = one(
        "## Prevention Plan\n\n### P1 — Eliminate the single point of failure\n\n| Action | Status |\n|---|---|\n| Add a second NFS server | TODO |\n",
    );
    assert_eq!(
        (i.priority, i.priority_source),
        (Priority::P1, PrioritySource::Heading)
    );
    assert_eq!(
        i.section.as_deref(),
        Some("P1 — Eliminate the single point of failure")
    );
}

#[test]
fn bold_priority_in_item() {
    let i = one("## Action Items\n\n- [ ] **P0** Add alert for certificate expiry\n");
    assert_eq!(
        (i.priority, i.priority_source),
        (Priority::P0, PrioritySource::Bold)
    );
    assert_eq!(i.action, "Add alert for certificate expiry");
    let j = one(
        "## Prevention Plan\n\n| Action | Status |\n|---|---|\n| **P3** Add ping monitor | TODO |\n",
    );
    assert_eq!(
        (j.priority, j.priority_source),
        (Priority::P3, PrioritySource::Bold)
    );
}

#[test]
fn task_lists_open_done_and_multi_line() {
    let v = items(
        "## Remediation (Pending)\n\n- [ ] Add alert for\n  NFS latency\n- [x] Configure retries option\n  - [ ] Verify retries in staging\n",
    );
    assert_eq!(v.len(), 3);
    assert_eq!(
        (v[0].action.as_str(), v[0].status),
        ("Add alert for NFS latency", StatusKind::Open)
    );
    assert_eq!(v[1].status, StatusKind::Done);
    assert_eq!(v[2].item_type, ItemType::Investigation);
    assert!(v.iter().all(|i| i.format == ItemFormat::TaskList));
}

#[test]
fn heading_with_status_is_an_item() {
    let v = items(
        "## Action Items\n\n### 3. Pin the driver version (DEFERRED)\n\nUpstream has not released the fix.\n\n- more context, not an item\n",
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].action, "Pin the driver version");
    assert_eq!(
        (v[0].status, v[0].status_raw.as_deref()),
        (StatusKind::Deferred, Some("DEFERRED"))
    );
    assert_eq!(v[0].format, ItemFormat::Heading);
    assert_eq!(
        v[0].details.as_deref(),
        Some("Upstream has not released the fix.")
    );
}

#[test]
fn bullets_under_open_heading_are_open_items() {
    for h in [
        "Follow-ups (not yet done)",
        "Recommendation (not yet actioned)",
        "Open follow-ups",
    ] {
        let v = items(&format!(
            "## {h}\n\n- Add ping monitor for the router\n- Write a runbook for NAS failover\n"
        ));
        assert_eq!(v.len(), 2, "{h}");
        assert!(
            v.iter().all(|i| i.status == StatusKind::Open),
            "{h}: {v:#?}"
        );
        assert!(v.iter().all(|i| i.format == ItemFormat::Bullet));
    }
}

#[test]
fn bullets_under_plain_follow_up_heading_need_triage() {
    let i = one("## Action Items\n\n- Add ping monitor for the router\n");
    assert_eq!(
        (i.status, i.status_raw.as_deref()),
        (StatusKind::NeedsTriage, None)
    );
    assert!(!i.is_automation_todo());
}

#[test]
fn bullets_outside_follow_up_sections_are_not_items() {
    assert!(items("## Lessons Learned\n\n- Add more alerts next time\n").is_empty());
}

#[test]
fn inline_marker() {
    let i = one("## Notes\n\n**Action (open):** Add alert on replication lag\n");
    assert_eq!(
        (i.status, i.status_raw.as_deref()),
        (StatusKind::Open, Some("open"))
    );
    assert_eq!(i.action, "Add alert on replication lag");
    assert_eq!(i.format, ItemFormat::InlineMarker);
    assert!(i.safe);
}

#[test]
fn status_vocabulary() {
    let cases = [
        ("TODO", StatusKind::Open),
        ("open", StatusKind::Open),
        ("pending", StatusKind::Open),
        ("deferred", StatusKind::Deferred),
        ("blocked", StatusKind::Blocked),
        ("in progress", StatusKind::InProgress),
        ("optional", StatusKind::Optional),
        ("tracked", StatusKind::Tracked),
        ("Done", StatusKind::Done),
        ("DONE", StatusKind::Done),
        ("Completed", StatusKind::Done),
        ("Complete", StatusKind::Done),
        ("Fixed", StatusKind::Done),
        ("Resolved", StatusKind::Done),
        ("Closed", StatusKind::Done),
        ("shipped", StatusKind::Done),
        ("✅", StatusKind::Done),
        ("[x]", StatusKind::Done),
        ("~~TODO~~", StatusKind::Done),
        ("Needs human review", StatusKind::NeedsHumanReview),
        ("ask Bob", StatusKind::NeedsTriage),
    ];
    for (raw, want) in cases {
        let i = one(&format!(
            "{PLAN}| P2 | Add alert for X | Alert | | {raw} |\n"
        ));
        assert_eq!(i.status, want, "{raw}");
    }
}

#[test]
fn needs_human_review_is_not_pending_for_automation() {
    let d = doc(&format!(
        "{PLAN}| P2 | Add alert for X | Alert | | Needs human review |\n"
    ));
    assert_eq!(d.todos().count() + d.skipped().count(), 0);
    assert_eq!(d.open_items().count(), 1);
}

#[test]
fn deferred_safe_item_is_skipped_not_a_todo() {
    let d = doc(&format!(
        "{PLAN}| P2 | Add alert for X | Alert | | deferred |\n"
    ));
    assert_eq!((d.todos().count(), d.skipped().count()), (0, 1));
}

#[test]
fn code_fenced_tables_and_lists_are_ignored() {
    let v = items(
        "## Action Items\n\n```markdown\n| Priority | Action | Type | Details | Status |\n|---|---|---|---|---|\n| P1 | Add fake alert | Alert | | TODO |\n- [ ] fake task\n```\n\n- [ ] Real task: add uptime check\n",
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].action, "Real task: add uptime check");
}

#[test]
fn escaped_pipes_and_code_stay_in_one_cell() {
    let i = one(&format!(
        "{PLAN}| P2 | Set `a\\|b` option \\| keep order | Config | x \\| y | TODO |\n"
    ));
    assert_eq!(i.action, "Set a|b option | keep order");
    assert_eq!(i.details.as_deref(), Some("x | y"));
    assert_eq!(i.item_type, ItemType::Config);
}

#[test]
fn prose_only_follow_up_section_needs_review() {
    let d =
        doc("## Follow-ups\n\nWe should add an alert for NFS and probably migrate the database.\n");
    assert!(d.items.is_empty());
    assert!(d.needs_review);
    assert!(d.review_reasons[0].contains("Follow-ups"));
    let fine = doc("## Follow-ups\n\nNone.\n");
    assert!(!fine.needs_review);
}

#[test]
fn unreadable_table_under_follow_ups_needs_review() {
    let d = doc(
        "## Action Items\n\n| Who | When | What to change |\n|---|---|---|\n| ana | May | alerts |\n",
    );
    assert!(d.needs_review, "{d:#?}");
}

#[test]
fn ragged_rows_and_unclosed_fences_warn() {
    let d = doc(&format!(
        "{PLAN}| P2 | Add alert for X |\n| P2 | Add alert for Y | Alert | | TODO | extra |\n\n```\nnever closed\n"
    ));
    assert_eq!(d.items.len(), 2);
    assert_eq!(d.warnings.len(), 3, "{:#?}", d.warnings);
}

#[test]
fn ids_are_stable_across_markup_status_and_folder() {
    let a = warroom_postmortem::parse_document(
        "a/2026-04-14-x.md",
        &format!("{PLAN}| P2 | Add **NFS** alert | Alert | | TODO |\n"),
    );
    let b = warroom_postmortem::parse_document(
        "b/2026-04-14-x.md",
        &format!("{PLAN}| P1 | Add NFS alert | Alert | | Done |\n"),
    );
    assert_eq!(a.items[0].id, b.items[0].id);
    assert_eq!(a.items[0].id.len(), 12);
    let c = warroom_postmortem::parse_document(
        "b/2026-04-15-y.md",
        &format!("{PLAN}| P1 | Add NFS alert | Alert | | Done |\n"),
    );
    assert_ne!(a.items[0].id, c.items[0].id);
}

#[test]
fn duplicate_actions_get_distinct_ids() {
    let v = items(&format!(
        "{PLAN}| P2 | Add alert | Alert | | TODO |\n| P2 | Add alert | Alert | | TODO |\n"
    ));
    assert_ne!(v[0].id, v[1].id);
}

#[test]
fn metadata_from_bold_lines() {
    let d = doc(
        "# Incident: Grafana down\n\n**Date:** 2026-03-02  \n**Severity:** SEV 2\n**Duration**: 45m\n**Affected services:** grafana, `loki`\n",
    );
    assert_eq!(d.meta.title.as_deref(), Some("Incident: Grafana down"));
    assert_eq!(
        d.meta.date.map(|d| d.to_string()).as_deref(),
        Some("2026-03-02")
    );
    assert_eq!(d.meta.severity, Some(2));
    assert_eq!(d.meta.duration.as_deref(), Some("45m"));
    assert_eq!(d.meta.services, ["grafana", "loki"]);
}

#[test]
fn parse_bytes_rejects_non_utf8_with_offset_and_oversize() {
    let err = parse_bytes("x.md", b"# ok\n\xff\xfe").unwrap_err();
    assert_eq!(
        err,
        ParseError::NotUtf8 {
            label: "x.md".into(),
            offset: 5
        }
    );
    assert!(err.to_string().contains("byte 5"));
    let big = vec![b'a'; MAX_DOCUMENT_BYTES + 1];
    assert!(matches!(
        parse_bytes("big.md", &big),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn pending_across_orders_by_priority_then_date_then_line() {
    let a = warroom_postmortem::parse_document(
        "2026-05-01-b.md",
        &format!(
            "{PLAN}| P2 | Add alert one | Alert | | TODO |\n| P1 | Add alert two | Alert | | TODO |\n"
        ),
    );
    let b = warroom_postmortem::parse_document(
        "2026-04-01-a.md",
        &format!(
            "{PLAN}| P2 | Add alert three | Alert | | TODO |\n| P0 | Add alert four | Alert | | Done |\n"
        ),
    );
    let docs = [a, b];
    let order: Vec<&str> = pending_across(&docs)
        .iter()
        .map(|p| p.item.action.as_str())
        .collect();
    assert_eq!(order, ["Add alert two", "Add alert three", "Add alert one"]);
}

#[test]
fn json_keeps_the_reference_shape() {
    let d = doc(&format!(
        "{PLAN}| P2 | Add alert | Alert | | TODO |\n| P1 | Migrate Vault | Migration | | TODO |\n"
    ));
    let v = serde_json::to_value(&d).unwrap();
    for k in [
        "file",
        "todos",
        "skipped",
        "total_todos_in_doc",
        "safe_todos",
        "skipped_todos",
        "items",
        "warnings",
        "needs_review",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["safe_todos"], 1);
    assert_eq!(v["skipped_todos"], 1);
    assert_eq!(v["total_todos_in_doc"], 2);
    assert_eq!(v["todos"][0]["type"], "Alert");
    assert_eq!(v["todos"][0]["priority"], "P2");
}

#[test]
fn unnumbered_heading_with_status_over_a_list_is_a_section() {
    let v = items(
        "## Follow-ups\n\n### Quick wins (done)\n\n- Add ping monitor for the NAS\n- Raise the timeout option\n",
    );
    assert_eq!(v.len(), 2);
    assert!(
        v.iter()
            .all(|i| i.status == StatusKind::Done && i.format == ItemFormat::Bullet)
    );
}

#[test]
fn inline_action_without_status_needs_triage_and_edits_by_appending() {
    let md = "**Action:** Add alert on replication lag\n";
    let i = one(md);
    assert_eq!(i.status, StatusKind::NeedsTriage);
    let out = warroom_postmortem::set_item_status(
        "2026-04-14-test.md",
        md,
        &i.id,
        warroom_postmortem::EditStatus::Done,
    )
    .unwrap();
    assert_eq!(out, "**Action (Done):** Add alert on replication lag\n");
}
