//! Dashboard users: Argon2id password hashing (PHC strings), session and CSRF tokens, and the
//! redacting secret types that carry them.
//!
//! Passwords are hashed with Argon2id at the `argon2` crate's defaults (RFC 9106's second
//! recommended option: m = 19 MiB, t = 2, p = 1, per the OWASP password storage cheat sheet) and
//! stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so parameters can change
//! later without breaking old hashes. Session tokens are 256-bit random strings; only their
//! SHA-256 is stored, like API keys ([`crate::auth`]).

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Shortest password accepted, characters (NIST SP 800-63B §3.1.1.2: at least 8).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, bytes: bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a user-related operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The password is too short or too long.
    #[error("password must have at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes")]
    WeakPassword,
    /// The e-mail address is not plausible (`name@domain`).
    #[error("{0:?} is not an e-mail address")]
    InvalidEmail(String),
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A plain password as typed. `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password; see [`Password::validate`] for the length rules.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Errors with [`UserError::WeakPassword`] outside `MIN_PASSWORD_CHARS..=MAX_PASSWORD_BYTES`.
    pub fn validate(&self) -> Result<(), UserError> {
        if self.0.chars().count() < MIN_PASSWORD_CHARS || self.0.len() > MAX_PASSWORD_BYTES {
            return Err(UserError::WeakPassword);
        }
        Ok(())
    }

    /// A random 20-character alphanumeric password (≈119 bits), for the first admin.
    pub fn generate() -> Self {
        Self(rand::rng().sample_iter(&Alphanumeric).take(20).map(char::from).collect())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Password(<redacted>)")
    }
}

/// Hashes a (validated) password into an Argon2id PHC string with a fresh random salt.
pub fn hash_password(password: &Password) -> Result<String, UserError> {
    password.validate()?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| UserError::Hashing(error.to_string()))
}

/// True when `password` matches the PHC string `phc_hash`; false for a wrong password or an
/// unreadable hash. Runs in constant time with respect to the hash comparison.
pub fn verify_password(password: &Password, phc_hash: &str) -> bool {
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc_hash) else {
        return false;
    };
    Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok()
}

/// A PHC hash of a random password, verified against when the e-mail is unknown so that sign-in
/// takes as long for unknown users as for known ones (no user enumeration by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&Password::generate()).unwrap_or_default())
}

/// Normalizes an e-mail address (trimmed, lowercase) and checks it looks like `name@domain`.
pub fn normalize_email(text: &str) -> Result<String, UserError> {
    let email = text.trim().to_lowercase();
    let plausible = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(name, domain)| !name.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        && !email.chars().any(char::is_whitespace);
    if plausible { Ok(email) } else { Err(UserError::InvalidEmail(text.to_owned())) }
}

/// A random secret token: a dashboard session's cookie value or a CSRF token. `Debug` prints
/// nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// 43 random alphanumeric characters (≈256 bits).
    pub fn generate() -> Self {
        Self(rand::rng().sample_iter(&Alphanumeric).take(43).map(char::from).collect())
    }

    /// Wraps a token received from a browser.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The token itself, to put in a cookie or a form.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token: what the store keeps and looks up.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// Constant-time comparison with a token sent back (CSRF check).
    pub fn matches(&self, sent: &str) -> bool {
        let (ours, theirs) = (self.0.as_bytes(), sent.as_bytes());
        if ours.len() != theirs.len() {
            return false;
        }
        ours.iter().zip(theirs).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_phc_strings_and_verify() {
        let password = Password::new("correct horse battery");
        let hash = hash_password(&password).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Password::new("correct horse battery!"), &hash));
        assert!(!verify_password(&password, "not a phc string"));
        assert_ne!(hash, hash_password(&password).expect("hash"), "fresh salt each time");
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(matches!(hash_password(&Password::new("short")), Err(UserError::WeakPassword)));
        assert!(matches!(hash_password(&Password::new("x".repeat(2000))), Err(UserError::WeakPassword)));
        assert!(Password::generate().validate().is_ok());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let password = Password::new("hunter2hunter2");
        assert!(!format!("{password:?}").contains("hunter2"));
        let token = SecretToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn tokens_compare_exactly() {
        let token = SecretToken::new("abc123");
        assert!(token.matches("abc123"));
        assert!(!token.matches("abc124"));
        assert!(!token.matches("abc12"));
        assert!(!token.matches(""));
        assert_eq!(SecretToken::generate().expose().len(), 43);
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Ada@Example.COM ").expect("valid"), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@localhost", "a da@example.com", "ada@.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
