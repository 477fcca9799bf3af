//! Channel kinds, one module each.

pub mod email;
pub mod slack;
pub mod webhook;
