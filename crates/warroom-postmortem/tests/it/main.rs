//! Integration tests of warroom-postmortem, linked into one binary.
#![expect(clippy::unwrap_used, reason = "helpers fail the test loudly")]

mod draft_roundtrip;
mod edit_props;
mod edits;
mod fixtures;
mod rules;
mod site;

use warroom_postmortem::{Item, ParsedDocument, parse_document};

/// Parses `md` under a fixed dated label.
pub fn doc(md: &str) -> ParsedDocument {
    parse_document("docs/post-mortems/2026-04-14-test.md", md)
}

/// The items of `md`.
pub fn items(md: &str) -> Vec<Item> {
    doc(md).items
}

/// The only item of a document; fails the test when there is not exactly one.
pub fn one(md: &str) -> Item {
    let mut v = items(md);
    assert_eq!(v.len(), 1, "expected one item, got {v:#?}");
    v.remove(0)
}
