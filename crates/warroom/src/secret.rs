//! Values that must never reach a log or a `Debug` dump.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// A secret string: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// A database URL; `Debug` hides the password (`postgres://user:***@host/db`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL without its password, for messages.
    pub fn redacted(&self) -> String {
        let u = &self.0;
        match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let creds = &u[s + 3..at];
                match creds.split_once(':') {
                    Some((user, _)) => format!("{}{user}:***{}", &u[..s + 3], &u[at..]),
                    None => u.clone(),
                }
            }
            _ => u.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts() {
        assert_eq!(format!("{:?}", Secret("wr_abc".into())), "[redacted]");
        let u = DatabaseUrl("postgres://app:hunter2@db:5432/warroom".into());
        assert_eq!(format!("{u:?}"), "\"postgres://app:***@db:5432/warroom\"");
        assert!(!format!("{u:?}").contains("hunter2"));
        assert_eq!(
            DatabaseUrl("sqlite://warroom.db".into()).redacted(),
            "sqlite://warroom.db"
        );
    }
}
