//! Reading stored values back, shared by every store module.

use sqlx::{Row, any::AnyRow};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{Result, StoreError};

/// A stored RFC 3339 timestamp; anything else means the row is corrupt.
pub(crate) fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

/// A nullable timestamp column.
pub(crate) fn opt_ts(row: &AnyRow, col: &str) -> Result<Option<OffsetDateTime>> {
    row.try_get::<Option<String>, _>(col)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

/// Whether the database refused a write for a duplicate key.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
