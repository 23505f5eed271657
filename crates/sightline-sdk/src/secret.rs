//! A redacting wrapper for API keys: `Debug` and `Display` print nothing of the key.

/// An API key (Sightline ingest key or ProductGraph key). Only [`ApiKey::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ApiKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("sl_ingest_very_secret");
        let printed = format!("{key:?} {:?}", Some(&key));
        assert!(!printed.contains("very_secret"), "{printed}");
        assert_eq!(key.expose(), "sl_ingest_very_secret");
    }
}
