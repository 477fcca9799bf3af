//! Storage errors.

use warroom_domain::DomainError;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record.
    #[error("{what} {key} not found")]
    NotFound {
        /// Kind of record (`incident`, `token`).
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// The domain refused the change; nothing was written.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// A uniqueness rule was broken.
    #[error("{0}")]
    Conflict(String),
    /// Stored data could not be read back; a bug or a hand-edited database.
    #[error("stored data is unreadable ({0}); restore from a backup or report a bug")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A database operation failed; the message says what (shared with several callers).
    #[error("database error: {0}")]
    Failed(String),
    /// Migrations failed or the schema is newer than this binary.
    #[error("migration failed: {0}")]
    Migration(String),
}
