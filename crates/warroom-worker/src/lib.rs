//! Detection workers.
#![deny(missing_docs)]
