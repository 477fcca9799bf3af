//! Pure post-mortem engine of warroom.
//!
//! - [`render_draft`] writes a new post-mortem from what the incident store knows,
//!   leaving clearly marked prompts for what only a human can write.
//! - [`parse_document`] reads follow-up items structurally (tables, task lists,
//!   headings, bullets, inline markers) and classifies which ones automation may
//!   implement.
//! - [`set_item_status`] and [`append_implementation_rows`] edit a document in
//!   place, changing only the bytes they must.
//! - [`build_site`] renders a static HTML site of all post-mortems.
//!
//! The crate does no IO and reads no clock: callers pass text and dates in.
//!
//! # The safety rule
//! An item is *safe* for automation only when its type is Alert, Config or
//! Monitor **and** that type is known confidently: an explicit Type column
//! that maps to exactly one type, or whole-word inference from the action
//! that finds exactly one type. Unknown is never safe.
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
    CommitRef, EditError, EditStatus, ImplementationRow, Splice, append_implementation_rows,
    escape_cell, plan_implementation_rows, plan_status_edit, set_item_status,
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
