//! The times rectify writes: now as RFC 3339 in UTC with milliseconds (every stored time), and
//! today as `YYYY-MM-DD` (what exemptions' last days are compared with).

use chrono::{SecondsFormat, Utc};

/// Now, as RFC 3339 with milliseconds.
pub fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Today in UTC, as `YYYY-MM-DD`.
pub fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}
