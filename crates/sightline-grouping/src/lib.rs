//! Sightline's error-grouping core: turns an exception's stack trace text into frames and a fingerprint
//! the way Sentry does, so that ingest can group error events into issues. Pure: no I/O.
//!
//! The recipe at ingest, one named step each:
//! 1. [`parse_stacktrace`] reads the runtime's printed trace (OTel `exception.stacktrace`) into
//!    [`ParsedStack`]: chained exceptions, each with [`StackFrame`]s ordered outermost first like Sentry.
//! 2. [`InAppRules::apply`] marks frames as application code (project prefixes, then per-platform
//!    defaults); [`parse_stacktrace`] already applied the defaults.
//! 3. [`fingerprint`] hashes the exception the way Sentry's grouping does (client fingerprint, else
//!    stack trace "app" and "system" variants, else exception type and parameterized message), and
//!    [`culprit`] names the frame to show in the issue title.
//!
//! Sources followed: Sentry's develop docs (`grouping.mdx`, "Data Handling" for trimming), Sentry's
//! `src/sentry/grouping/` (strategies, `parameterization.py`), the SDKs' in-app defaults
//! (sentry-python, sentry-java, sentry-go `stacktrace.go`, sentry-rust `sentry-backtrace`) and the
//! runtimes' own trace printers (CPython `traceback.py`, V8 / SpiderMonkey / JavaScriptCore
//! `Error.prototype.stack`, `Throwable.printStackTrace`, Go `runtime/traceback.go`, Rust `std::backtrace`,
//! .NET `Exception.ToString`).

mod culprit;
mod fingerprint;
mod frame;
mod in_app;
mod names;
mod parameterize;
mod parse;
mod platform;

pub use culprit::culprit;
pub use fingerprint::{Fingerprint, GroupingInput, fingerprint};
pub use frame::{
    MAX_FIELD_BYTES, MAX_FRAMES_PER_EXCEPTION, MAX_INPUT_LINES, MAX_MESSAGE_BYTES, ParsedException, ParsedStack,
    StackFrame,
};
pub use in_app::InAppRules;
pub use parameterize::normalize_message;
pub use parse::parse_stacktrace;
pub use platform::Platform;
