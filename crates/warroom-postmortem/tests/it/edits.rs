//! Example-based edit tests: one per way a status can be written.

use warroom_postmortem::{
    CommitRef, EditError, EditStatus, ImplementationRow, ItemType, Priority, StatusKind,
    append_implementation_rows, parse_document, set_item_status,
};

const LABEL: &str = "2026-04-14-edit.md";

/// Sets the status of the item whose action is `action` and returns the new text.
fn set(md: &str, action: &str, new: EditStatus) -> Result<String, EditError> {
    let d = parse_document(LABEL, md);
    let item = d
        .items
        .iter()
        .find(|i| i.action == action)
        .unwrap_or_else(|| panic!("no {action} in {:#?}", d.items));
    set_item_status(LABEL, md, &item.id, new)
}

fn status_of(md: &str, action: &str) -> StatusKind {
    parse_document(LABEL, md)
        .items
        .iter()
        .find(|i| i.action == action)
        .map(|i| i.status)
        .unwrap()
}

#[test]
fn table_status_cell_keeps_padding_and_case() {
    let md = "## Prevention Plan\n\n| Priority | Action | Status |\n|---|---|---|\n| P1 | Add alert | TODO   |\n| P2 | Add monitor | TODO |\n";
    let out = set(md, "Add alert", EditStatus::Done).unwrap();
    assert_eq!(out, md.replacen("| TODO   |", "| DONE   |", 1));
    let out = set(md, "Add monitor", EditStatus::NeedsHumanReview).unwrap();
    assert!(out.ends_with("| Add monitor | NEEDS HUMAN REVIEW |\n"));
}

#[test]
fn empty_status_cell_is_filled() {
    let md = "## Prevention Plan\n\n| Action | Status |\n|---|---|\n| Add alert ||\n";
    let out = set(md, "Add alert", EditStatus::Done).unwrap();
    assert_eq!(
        out,
        "## Prevention Plan\n\n| Action | Status |\n|---|---|\n| Add alert | Done |\n"
    );
}

#[test]
fn table_without_status_column_gets_a_marker() {
    let md = "## Prevention Plan\n\n| Priority | Action |\n|---|---|\n| P1 | Add TCP check for the NAS |\n";
    let out = set(md, "Add TCP check for the NAS", EditStatus::Done).unwrap();
    assert_eq!(out, md.replace("NAS |", "NAS (Done) |"));
    assert_eq!(
        status_of(&out, "Add TCP check for the NAS"),
        StatusKind::Done
    );
}

#[test]
fn status_in_priority_column_is_edited_there() {
    let md = "## Prevention\n\n| Priority | Action |\n|---|---|\n| todo | Add CPU alert |\n";
    let out = set(md, "Add CPU alert", EditStatus::Done).unwrap();
    assert_eq!(out, md.replace("| todo |", "| done |"));
}

#[test]
fn checkbox_is_ticked_and_review_is_appended() {
    let md = "## Action Items\n\n- [ ] Add alert for\n  NFS latency\n- [ ] Add ping monitor (optional)\n";
    let out = set(md, "Add alert for NFS latency", EditStatus::Done).unwrap();
    assert_eq!(out, md.replacen("- [ ] Add alert", "- [x] Add alert", 1));
    let out = set(
        md,
        "Add alert for NFS latency",
        EditStatus::NeedsHumanReview,
    )
    .unwrap();
    assert_eq!(
        out,
        md.replacen("Add alert for\n", "Add alert for (needs human review)\n", 1)
    );
    let out = set(md, "Add ping monitor", EditStatus::NeedsHumanReview).unwrap();
    assert!(out.ends_with("- [ ] Add ping monitor (needs human review)\n"));
}

#[test]
fn ticked_box_cannot_become_needs_review() {
    let md = "## Action Items\n\n- [x] Add alert\n";
    let err = set(md, "Add alert", EditStatus::NeedsHumanReview).unwrap_err();
    assert!(err.to_string().contains("untick"), "{err}");
}

#[test]
fn heading_marker_is_replaced() {
    let md = "## Action Items\n\n### 3. Pin the driver version (DEFERRED)\n\nText.\n";
    let out = set(md, "Pin the driver version", EditStatus::Done).unwrap();
    assert_eq!(out, md.replace("(DEFERRED)", "(DONE)"));
}

#[test]
fn inline_marker_is_replaced() {
    let md = "**Action (open):** Add alert on lag\n\n**TODO:** Add ping monitor\n";
    let out = set(md, "Add alert on lag", EditStatus::Done).unwrap();
    assert_eq!(out, md.replace("(open)", "(done)"));
    let out = set(md, "Add ping monitor", EditStatus::Done).unwrap();
    assert_eq!(out, md.replace("**TODO:**", "**TODO (Done):**"));
    assert_eq!(status_of(&out, "Add ping monitor"), StatusKind::Done);
}

#[test]
fn bullet_under_open_heading_gets_a_marker() {
    let md = "## Follow-ups (not yet done)\n\n- Add alert for **disk** usage\n- Write runbook\n";
    let out = set(md, "Add alert for disk usage", EditStatus::Done).unwrap();
    assert_eq!(out, md.replace("usage\n", "usage (Done)\n"));
    assert_eq!(status_of(&out, "Write runbook"), StatusKind::Open);
}

#[test]
fn already_done_is_a_no_op_and_unknown_id_errors() {
    let md = "## Prevention Plan\n\n| Action | Status |\n|---|---|\n| Add alert | Done |\n";
    assert_eq!(set(md, "Add alert", EditStatus::Done).unwrap(), md);
    let err = set_item_status(LABEL, md, "000000000000", EditStatus::Done).unwrap_err();
    assert!(matches!(err, EditError::ItemNotFound { .. }));
    assert!(err.to_string().contains("warroom postmortem todos"));
}

#[test]
fn struck_through_item_is_not_editable_to_review() {
    let md = "## Follow-ups\n\n- ~~Add alert~~\n";
    assert!(matches!(
        set(md, "Add alert", EditStatus::NeedsHumanReview),
        Err(EditError::NotEditable { .. })
    ));
}

fn row(action: &str, commit: Option<&str>) -> ImplementationRow {
    ImplementationRow {
        date: commit.map(|_| time::macros::date!(2026 - 04 - 15)),
        action: action.into(),
        priority: Priority::P2,
        item_type: ItemType::Alert,
        commit: commit.map(|c| CommitRef {
            sha: c.into(),
            url: Some(format!("https://github.com/o/r/commit/{c}")),
        }),
        implemented_by: if commit.is_some() {
            "postmortem-todo-resolver".into()
        } else {
            "Needs human review".into()
        },
    }
}

#[test]
fn rows_append_to_existing_table_in_its_column_order() {
    let md = "# PM\n\n## Follow-up Implementation\n\n| Action | Commit | Date |\n|---|---|---|\n| Old | `a` | 2026-01-01 |\n\n## After\n";
    let out = append_implementation_rows(
        md,
        &[
            row("Add a|b alert", Some("abc1234")),
            row("Migrate Vault", None),
        ],
    );
    assert_eq!(
        out,
        "# PM\n\n## Follow-up Implementation\n\n| Action | Commit | Date |\n|---|---|---|\n| Old | `a` | 2026-01-01 |\n| Add a\\|b alert | [`abc1234`](https://github.com/o/r/commit/abc1234) | 2026-04-15 |\n| Migrate Vault | — | — |\n\n## After\n"
    );
}

#[test]
fn section_is_created_when_missing() {
    let md = "# PM\n\nBody.";
    let out = append_implementation_rows(md, &[row("Add alert", Some("abc1234"))]);
    assert_eq!(
        out,
        "# PM\n\nBody.\n\n## Follow-up Implementation\n\n| Date | Action | Priority | Type | Commit | Implemented By |\n| ---- | ------ | -------- | ---- | ------ | -------------- |\n| 2026-04-15 | Add alert | P2 | Alert | [`abc1234`](https://github.com/o/r/commit/abc1234) | postmortem-todo-resolver |\n"
    );
    // A second append goes into the table the first one made.
    let again = append_implementation_rows(&out, &[row("Add monitor", None)]);
    assert_eq!(
        again,
        format!("{out}| — | Add monitor | P2 | Alert | — | Needs human review |\n")
    );
}

#[test]
fn heading_without_table_gets_the_table_under_it() {
    let md = "## Follow-up Implementation\n\nNothing yet.\n\n## Appendix\n";
    let out = append_implementation_rows(md, &[row("Add alert", None)]);
    assert!(
        out.starts_with("## Follow-up Implementation\n\nNothing yet.\n\n| Date |"),
        "{out}"
    );
    assert!(
        out.ends_with("| — | Add alert | P2 | Alert | — | Needs human review |\n\n## Appendix\n"),
        "{out}"
    );
    assert_eq!(out.matches("Follow-up Implementation").count(), 1);
}
