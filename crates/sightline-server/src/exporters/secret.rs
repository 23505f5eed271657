//! A redacting secret type for vendor keys, tokens and webhook secrets (Vector's
//! `SensitiveString`): `Debug` and `Display` print nothing of the value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A vendor credential (Amplitude API key, Mixpanel token or service-account secret, webhook
/// signing secret). Serialises as the plain string *only* for the store's `config` column; the
/// API never serialises it (it shows `"set"` / `"unset"`), and `Debug`/`Display` print
/// `"<redacted>"`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for building requests only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_and_display_print_nothing_of_the_value() {
        let secret = Secret::new("amp-key-123456");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert!(!format!("{:?}", Some(&secret)).contains("amp-key"));
        assert_eq!(secret.expose(), "amp-key-123456");
    }
}
