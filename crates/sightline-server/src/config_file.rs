//! The configuration file (`sightline serve --config sightline.toml`): forwarding destinations
//! declared as data, next to the ProductGraph environment variables and the per-project API.
//!
//! ```toml
//! [[destinations]]
//! project = "default"          # a project slug; leave out for every project (server-wide)
//! name = "amplitude-eu"        # unique per project; the file's entry replaces the stored one
//! enabled = true               # default true
//! [destinations.config]        # the same shape as `POST /api/v1/projects/{p}/destinations`
//! type = "amplitude"
//! api_key = "..."
//! region = "eu"
//! [destinations.config.routing]
//! events = ["checkout.*"]
//! ```
//!
//! At every start each entry is created or updated (by project and name); destinations made
//! through the API are left alone. Keys in the file are secrets like any other.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::exporters::DestinationConfig;

/// A destination declared in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDestination {
    /// Project slug, or `None` for a server-wide destination (every project's events).
    pub project: Option<String>,
    /// Name, unique within the project.
    pub name: String,
    /// False keeps the destination but pauses delivery.
    pub enabled: bool,
    /// Vendor settings, routing and batching.
    pub config: DestinationConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    destinations: Vec<RawDestination>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    project: Option<String>,
    name: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    config: DestinationConfig,
}

fn enabled_by_default() -> bool {
    true
}

/// Parses and validates the file's text. Errors name the entry and the field (TOML line and
/// column from the parser) and never include secret values.
pub fn parse(text: &str) -> Result<Vec<FileDestination>, ConfigError> {
    let file: File = toml::from_str(text).map_err(|error| ConfigError(format!("configuration file: {error}")))?;
    let mut seen = std::collections::HashSet::new();
    let mut destinations = Vec::with_capacity(file.destinations.len());
    for (index, raw) in file.destinations.into_iter().enumerate() {
        let label = format!("destinations[{index}] ({:?})", raw.name);
        if raw.name.trim().is_empty() {
            return Err(ConfigError(format!("configuration file: {label}: name must not be empty")));
        }
        if !seen.insert((raw.project.clone(), raw.name.clone())) {
            return Err(ConfigError(format!("configuration file: {label}: the name is used twice for this project")));
        }
        raw.config.validate().map_err(|message| ConfigError(format!("configuration file: {label}: {message}")))?;
        destinations.push(FileDestination {
            project: raw.project,
            name: raw.name,
            enabled: raw.enabled,
            config: raw.config,
        });
    }
    Ok(destinations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::DestinationSettings;

    #[test]
    fn destinations_parse_with_defaults_and_redacted_debug() {
        let parsed = parse(
            r#"
            [[destinations]]
            project = "default"
            name = "hook"
            [destinations.config]
            type = "webhook"
            url = "https://hooks.example.com/sightline"
            secret = "very-secret-hmac-key"
            [destinations.config.routing]
            events = ["checkout.*"]

            [[destinations]]
            name = "amplitude"
            enabled = false
            [destinations.config]
            type = "amplitude"
            api_key = "amp-key-123456"
            "#,
        )
        .expect("valid file");
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[0].project.as_deref(), parsed[0].name.as_str(), parsed[0].enabled),
            (Some("default"), "hook", true)
        );
        assert!(matches!(parsed[0].config.settings, DestinationSettings::Webhook(_)));
        assert_eq!(parsed[0].config.routing.events, vec!["checkout.*".to_owned()]);
        assert_eq!((parsed[1].project.as_deref(), parsed[1].enabled), (None, false));
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("very-secret-hmac-key") && !shown.contains("amp-key-123456"), "{shown}");
        assert_eq!(parse("").expect("an empty file is fine"), Vec::new());
    }

    #[test]
    fn mistakes_are_named() {
        let error = |text: &str| parse(text).expect_err("refused").0;
        assert!(error("[[destination]]\nname = \"x\"").contains("unknown field"), "typo in the table name");
        let unknown_type = error("[[destinations]]\nname = \"x\"\n[destinations.config]\ntype = \"segment\"");
        assert!(unknown_type.contains("segment") || unknown_type.contains("variant"), "{unknown_type}");
        let bad_url = error(
            "[[destinations]]\nname = \"x\"\n[destinations.config]\ntype = \"webhook\"\nurl = \"ftp://x\"\nsecret = \"s\"",
        );
        assert!(bad_url.contains("destinations[0]") && bad_url.contains("ftp://x"), "{bad_url}");
        let twice = error(
            "[[destinations]]\nname = \"x\"\n[destinations.config]\ntype = \"webhook\"\nurl = \"https://a\"\nsecret = \"s\"\n\
             [[destinations]]\nname = \"x\"\n[destinations.config]\ntype = \"webhook\"\nurl = \"https://b\"\nsecret = \"s\"",
        );
        assert!(twice.contains("used twice"), "{twice}");
        assert!(!bad_url.contains("\"s\""), "no secret values in errors");
    }
}
