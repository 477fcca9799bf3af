#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod draft;
mod edit;
mod meta;
mod parse;
mod site;

pub use draft::{
    ChecklistState, DraftInput, TimelineEntry, draft_file_name, human_duration, render_draft, slug,
};
pub use edit::{
    CommitRef, EditError, EditStatus, ImplementationRow, RecordedRow, Splice,
    append_implementation_rows, escape_cell, plan_implementation_rows, plan_status_edit,
    recorded_implementations, set_item_status,
};
pub use site::{
    IndexEntry, SiteError, SiteFile, SourceDoc, build_site, escape_html, page_path, render_index,
    render_markdown, render_page,
};

pub use meta::{Meta, parse_date, parse_severity};
pub use parse::vocab::{ItemType, Priority, StatusKind};
pub use parse::{
    Item, ItemFormat, MAX_DOCUMENT_BYTES, ParseError, ParsedDocument, PendingItem, PrioritySource,
    StatusSpan, TypeSource, Warning, parse_bytes, parse_document, pending_across,
};
