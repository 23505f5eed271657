//! Sign-in throttling: a per-account budget (against guessing one user's password) and a
//! server-wide budget (Argon2id costs real CPU, so a spray over many e-mails must not starve
//! ingest). Both are GCRA limiters from `governor`.
//!
//! Follows the OWASP Authentication Cheat Sheet ("Protect against automated attacks": throttle
//! per account rather than lock it out). An attempt over budget is refused before any password
//! work with 429 and `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Attempts one account may make in a burst; then one more every [`ACCOUNT_REPLENISH`].
pub const ACCOUNT_BURST: u32 = 5;
/// How often an account regains one attempt (5 a minute once the burst is spent).
pub const ACCOUNT_REPLENISH: Duration = Duration::from_secs(12);
/// Sign-in attempts the whole server checks per second, with a burst of twice that.
pub const SERVER_PER_SECOND: u32 = 10;
/// Accounts remembered before stale entries are dropped (bounds memory under a spray).
const MAX_TRACKED_ACCOUNTS: usize = 10_000;

/// The two budgets. Cheap to check (a hash-map entry and an atomic compare-and-swap).
pub struct SignInLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    server: DefaultDirectRateLimiter,
}

impl std::fmt::Debug for SignInLimits {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SignInLimits").field("tracked_accounts", &self.per_account.len()).finish()
    }
}

impl Default for SignInLimits {
    /// [`ACCOUNT_BURST`] / [`ACCOUNT_REPLENISH`] per account, [`SERVER_PER_SECOND`] server-wide.
    fn default() -> Self {
        let account_burst = NonZeroU32::new(ACCOUNT_BURST).unwrap_or(NonZeroU32::MIN);
        let server_rate = NonZeroU32::new(SERVER_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let account_quota = Quota::with_period(ACCOUNT_REPLENISH)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(account_burst);
        let server_burst = NonZeroU32::new(SERVER_PER_SECOND * 2).unwrap_or(NonZeroU32::MIN);
        let server_quota = Quota::per_second(server_rate).allow_burst(server_burst);
        Self::new(account_quota, server_quota)
    }
}

impl SignInLimits {
    /// Limits with the given quotas (tests use small ones).
    pub fn new(per_account: Quota, server: Quota) -> Self {
        Self { per_account: RateLimiter::keyed(per_account), server: RateLimiter::direct(server) }
    }

    /// Takes one attempt for `account` (the normalized e-mail, or the text as typed when it is not
    /// an e-mail). `Err(retry_after)` when either budget is spent (an attempt the server budget
    /// refuses still counts against its account).
    pub fn check(&self, account: &str) -> Result<(), Duration> {
        if self.per_account.len() > MAX_TRACKED_ACCOUNTS {
            self.per_account.retain_recent();
        }
        let clock = DefaultClock::default();
        if let Err(not_until) = self.per_account.check_key(&account.to_owned()) {
            return Err(not_until.wait_time_from(clock.now()));
        }
        if let Err(not_until) = self.server.check() {
            return Err(not_until.wait_time_from(clock.now()));
        }
        Ok(())
    }
}

/// Whole seconds for `Retry-After`, at least 1 (RFC 9110 §10.2.3: delay-seconds).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_gets_its_burst_then_waits_while_others_still_sign_in() {
        let limits = SignInLimits::default();
        for attempt in 0..ACCOUNT_BURST {
            assert_eq!(limits.check("alice@example.com"), Ok(()), "attempt {attempt} is within the burst");
        }
        let wait = limits.check("alice@example.com").expect_err("the sixth attempt is refused");
        assert!(wait > Duration::from_secs(10) && wait <= ACCOUNT_REPLENISH, "{wait:?}");
        assert_eq!(limits.check("bob@example.com"), Ok(()), "another account is not affected");
    }

    #[test]
    fn the_server_budget_caps_a_spray_over_many_accounts() {
        let limits = SignInLimits::default();
        let allowed = (0..100).filter(|index| limits.check(&format!("user{index}@example.com")).is_ok()).count();
        // The burst is 2 × SERVER_PER_SECOND; one more replenishes every 100 ms should the loop be
        // descheduled on a busy machine.
        assert!((20..=30).contains(&allowed), "{allowed} of 100 distinct accounts got through");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(11_200)), 12);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
