//! Every status edit is one splice: the output equals the input outside
//! the replaced range, and the item reads back with the new status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warroom_postmortem::{
    EditStatus, ImplementationRow, ItemType, Priority, StatusKind, append_implementation_rows,
    parse_document, plan_implementation_rows, plan_status_edit, set_item_status,
};

const LABEL: &str = "2026-01-01-fuzz.md";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let doc = parse_document(LABEL, text);
    for item in doc.items.iter().take(16) {
        for new in [EditStatus::Done, EditStatus::NeedsHumanReview] {
            let Ok(Some(splice)) = plan_status_edit(LABEL, text, &item.id, new) else { continue };
            let out = set_item_status(LABEL, text, &item.id, new).expect("planned edit applies");
            let r = splice.range.clone();
            assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
            assert_eq!(out.len(), text.len() - r.len() + splice.replacement.len());
            assert_eq!(&out[..r.start], &text[..r.start]);
            assert_eq!(&out[r.start + splice.replacement.len()..], &text[r.end..]);
            let want = match new {
                EditStatus::Done => StatusKind::Done,
                EditStatus::NeedsHumanReview => StatusKind::NeedsHumanReview,
            };
            let after = parse_document(LABEL, &out);
            assert_eq!(after.item(&item.id).map(|i| i.status), Some(want));
            assert_eq!(after.items.len(), doc.items.len());
        }
    }
    let rows = [ImplementationRow {
        date: None,
        action: "fuzz | row".into(),
        priority: Priority::P2,
        item_type: ItemType::Alert,
        commit: None,
        implemented_by: "fuzz".into(),
    }];
    let splice = plan_implementation_rows(text, &rows);
    let out = append_implementation_rows(text, &rows);
    let at = splice.range.start;
    assert!(splice.range.is_empty());
    assert_eq!(&out[..at], &text[..at]);
    assert_eq!(&out[at + splice.replacement.len()..], &text[at..]);
});
