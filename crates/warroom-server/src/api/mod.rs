//! JSON API handlers, one module per resource.

pub mod alert_auth;
pub mod alertmanager;
pub mod alerts;
pub mod classify;
pub mod detection;
pub mod incidents;
pub mod metrics;
pub mod monitors;
pub mod services;
pub mod silences;
pub mod tokens;
