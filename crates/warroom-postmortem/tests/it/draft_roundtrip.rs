//! A rendered draft parses back into its own metadata and no follow-ups.

use time::macros::datetime;
use warroom_postmortem::{
    ChecklistState, DraftInput, TimelineEntry, draft_file_name, parse_document, render_draft,
};

fn input() -> DraftInput {
    DraftInput {
        incident_number: 42,
        title: "NFS server hung | Immich down".into(),
        summary: Some("The NFS server stopped answering and Immich went down.".into()),
        severity: 1,
        severity_name: "Critical".into(),
        services: vec!["immich".into(), "nextcloud".into()],
        status: "Resolved".into(),
        detected_at: Some(datetime!(2026-04-14 13:58 UTC)),
        declared_at: Some(datetime!(2026-04-14 16:05 +02:00)),
        acknowledged_at: Some(datetime!(2026-04-14 14:07 UTC)),
        identified_at: None,
        mitigated_at: Some(datetime!(2026-04-14 15:02 UTC)),
        resolved_at: Some(datetime!(2026-04-14 15:21 UTC)),
        closed_at: Some(datetime!(2026-04-15 09:00 UTC)),
        timeline: vec![TimelineEntry {
            at: datetime!(2026-04-14 14:30 UTC),
            author: "viktor".into(),
            text: "Restarted nfs-server | no change".into(),
        }],
        root_cause: None,
        fix_applied: Some("Rebooted the NAS.".into()),
        verification: None,
        impact: None,
        checklist: vec![ChecklistState {
            list: "IC".into(),
            item: "Page on-call".into(),
            done: true,
        }],
    }
}

#[test]
fn draft_renders_as_expected() {
    insta::assert_snapshot!(render_draft(&input()));
}

#[test]
fn draft_parses_back_with_meta_and_no_follow_ups() {
    let md = render_draft(&input());
    let name = draft_file_name(time::macros::date!(2026 - 04 - 14), &input().title);
    assert_eq!(name, "2026-04-14-nfs-server-hung-immich-down.md");
    let d = parse_document(&name, &md);
    assert_eq!(
        d.meta.title.as_deref(),
        Some("NFS server hung | Immich down")
    );
    assert_eq!(
        d.meta.date.map(|d| d.to_string()).as_deref(),
        Some("2026-04-14")
    );
    assert_eq!(d.meta.severity, Some(1));
    assert_eq!(
        d.meta.duration.as_deref(),
        Some("1h 23m (detection to resolution)")
    );
    assert_eq!(d.meta.services, ["immich", "nextcloud"]);
    assert_eq!(d.meta.status.as_deref(), Some("Resolved"));
    assert!(
        d.items.is_empty(),
        "placeholder row counted: {:#?}",
        d.items
    );
    assert!(!d.needs_review, "{:?}", d.review_reasons);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn filled_in_draft_yields_the_rows_humans_add() {
    let md = render_draft(&input()).replace(
        "| P2 | <!-- TODO(human): action --> | | | TODO |\n",
        "| P1 | Add NFS RPC retransmission alert | Alert | 5% | TODO |\n| P1 | Migrate Vault to encrypted PVC | Migration | | TODO |\n",
    );
    let d = parse_document("x.md", &md);
    assert_eq!(d.items.len(), 2);
    assert_eq!(d.todos().count(), 1);
    assert_eq!(d.skipped().count(), 1);
}

#[test]
fn empty_input_still_renders_prompts() {
    let md = render_draft(&DraftInput::default());
    assert!(md.contains("_To be written: incident date_"));
    let d = parse_document("x.md", &md);
    assert!(d.items.is_empty());
    assert_eq!(d.meta.date, None);
}
