//! Services: what incidents are about.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::DomainError;

/// A service identifier: lowercase letters, digits and dashes, 1-63 characters, starting with a
/// letter or digit. It becomes part of the channel name, so it must be safe there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceSlug(String);

impl ServiceSlug {
    /// Validates a slug. `field` names where it came from, for the error.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(ServiceSlug(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                field,
                format!(
                    "`{raw}` is not a service slug; use 1-63 lowercase letters, digits and dashes, e.g. `api` or `payments-db`"
                ),
            ))
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A display name when the config gives none: short slugs are acronyms (`api` → `API`),
    /// longer ones are title-cased words (`payments-db` → `Payments Db`).
    pub fn default_display_name(&self) -> String {
        if self.0.len() <= 3 {
            return self.0.to_uppercase();
        }
        self.0
            .split('-')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl TryFrom<String> for ServiceSlug {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ServiceSlug::parse_field(&s, "service")
    }
}

impl From<ServiceSlug> for String {
    fn from(s: ServiceSlug) -> String {
        s.0
    }
}

impl fmt::Display for ServiceSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service as configured or registered on first use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Identifier.
    pub slug: ServiceSlug,
    /// Display name used in titles (`INCIDENT: <name> - ...`).
    pub name: String,
    /// Owning team or person, if known.
    pub owner: Option<String>,
    /// Whether its incidents go on the public status page by default.
    pub public: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_validated_with_the_field_named() {
        assert!(ServiceSlug::parse_field("payments-db", "service").is_ok());
        for bad in ["", "API", "a b", "-x", "x-", "é", &"a".repeat(64)] {
            let e = ServiceSlug::parse_field(bad, "services[1]")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("services[1]:"), "{e}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(
            ServiceSlug::parse_field("api", "s")
                .unwrap()
                .default_display_name(),
            "API"
        );
        assert_eq!(
            ServiceSlug::parse_field("payments-db", "s")
                .unwrap()
                .default_display_name(),
            "Payments Db"
        );
        assert_eq!(
            ServiceSlug::parse_field("backend", "s")
                .unwrap()
                .default_display_name(),
            "Backend"
        );
    }
}
