//! Channel kinds, one module each.

pub mod webhook;
