//! Sightline's privacy rules, with no I/O: find personal data (e-mails, IP addresses, card
//! numbers, IBANs, UUIDs, phone numbers, bearer tokens, URL credentials, secret-named keys,
//! project regexes) in product events and OTLP attributes and remove, replace, mask or
//! pseudonymize it (HMAC-SHA256 with a per-project key), recording which rule changed which
//! field; decide whether an event may be forwarded (consent, opt-outs, privacy levels).
//!
//! The vocabulary follows Sentry Relay's `relay-pii` (`rules`, `applications`, `vars`, built-ins
//! such as `@email`, `@ip:hash`, `@common`); the matching and redaction code is our own.
//!
//! ```
//! use sightline_privacy::{PrivacyConfig, Scrubber};
//! let scrubber = Scrubber::new(&PrivacyConfig::common_preset()).expect("valid");
//! let mut attributes = serde_json::json!({"client.address": "203.0.113.9", "note": "mail jane@example.com"});
//! let remarks = scrubber.scrub_attributes(attributes.as_object_mut().expect("object"));
//! assert_eq!(attributes["client.address"], "[ip]");
//! assert_eq!(attributes["note"], "mail [email]");
//! assert_eq!(remarks.len(), 2);
//! ```

mod builtin;
mod config;
mod consent;
pub mod detect;
mod scrubber;
mod selector;

pub use builtin::COMMON;
pub use config::{HashKey, Method, PrivacyConfig, PrivacyConfigError, Redaction, RuleSpec, RuleType, Vars};
pub use consent::{
    ConsentPolicy, DEFAULT_CONSENT_ATTRIBUTE, DropReason, ForwardDecision, PRIVACY_LEVEL_KEY, PrivacyLevel,
};
pub use scrubber::{MAX_APPLICATIONS, Remark, Scrubber};
pub use selector::Selector;
