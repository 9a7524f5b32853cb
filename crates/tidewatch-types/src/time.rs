//! Time: event timestamps are epoch milliseconds in UTC; windows are whole seconds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Epoch milliseconds, UTC.
pub type TimestampMs = i64;

/// Parses an RFC 3339 timestamp into epoch milliseconds (sub-millisecond digits truncated).
pub fn parse_rfc3339_ms(text: &str) -> Option<TimestampMs> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Formats epoch milliseconds as RFC 3339 with millisecond precision, e.g.
/// `2026-11-23T10:00:00.123Z`.
pub fn format_rfc3339_ms(ts: TimestampMs) -> String {
    let nanos = i128::from(ts) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        ),
        // Out-of-range values never pass ingest validation; print them raw rather than panic.
        Err(_) => ts.to_string(),
    }
}

/// The current wall-clock time in epoch milliseconds.
pub fn now_ms() -> TimestampMs {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A rollup window width, between one second and one day, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowWidth {
    seconds: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid window {text:?}: {reason}")]
pub struct WindowParseError {
    pub text: String,
    pub reason: &'static str,
}

impl WindowWidth {
    pub const MIN_SECONDS: u32 = 1;
    pub const MAX_SECONDS: u32 = 86_400;

    pub fn from_seconds(seconds: u32) -> Option<Self> {
        (Self::MIN_SECONDS..=Self::MAX_SECONDS)
            .contains(&seconds)
            .then_some(WindowWidth { seconds })
    }

    /// A width known when compiling, e.g. `WindowWidth::constant::<60>()`; an
    /// out-of-range width fails the build rather than the program.
    pub const fn constant<const SECONDS: u32>() -> Self {
        const {
            assert!(SECONDS >= Self::MIN_SECONDS && SECONDS <= Self::MAX_SECONDS);
        }
        WindowWidth { seconds: SECONDS }
    }

    pub fn seconds(self) -> u32 {
        self.seconds
    }

    pub fn millis(self) -> i64 {
        i64::from(self.seconds) * 1000
    }

    /// Start of the window containing `ts` (windows are aligned to the Unix epoch),
    /// saturating at `i64::MIN` for times before the earliest whole window.
    pub fn window_start(self, ts: TimestampMs) -> TimestampMs {
        ts.saturating_sub(ts.rem_euclid(self.millis()))
    }
}

impl FromStr for WindowWidth {
    type Err = WindowParseError;

    /// Accepts `<n>s`, `<n>m`, `<n>h` and `<n>d`, e.g. `1s`, `5m`, `1h`, `1d`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| WindowParseError {
            text: text.to_owned(),
            reason,
        };
        let unit_at = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| err("missing unit (s, m, h or d)"))?;
        let (digits, unit) = text.split_at(unit_at);
        let count: u32 = digits.parse().map_err(|_| err("missing count"))?;
        let per_unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(err("unit must be s, m, h or d")),
        };
        let seconds = count
            .checked_mul(per_unit)
            .ok_or_else(|| err("out of range"))?;
        WindowWidth::from_seconds(seconds).ok_or_else(|| err("must be between 1s and 1d"))
    }
}

impl fmt::Display for WindowWidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        if s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl Serialize for WindowWidth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WindowWidth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_windows() {
        for (text, seconds) in [
            ("1s", 1),
            ("1m", 60),
            ("5m", 300),
            ("15m", 900),
            ("1h", 3600),
            ("1d", 86_400),
            ("90s", 90),
        ] {
            let w: WindowWidth = text.parse().unwrap();
            assert_eq!(w.seconds(), seconds);
            assert_eq!(w.to_string(), text);
        }
        assert_eq!("60s".parse::<WindowWidth>().unwrap().to_string(), "1m");
    }

    #[test]
    fn rejects_out_of_range_and_malformed_windows() {
        for text in ["0s", "2d", "5", "m", "5x", "", "99999999999s"] {
            assert!(
                text.parse::<WindowWidth>().is_err(),
                "{text} should be rejected"
            );
        }
    }

    #[test]
    fn window_start_aligns_to_epoch_including_negative_times() {
        let w: WindowWidth = "1m".parse().unwrap();
        assert_eq!(w.window_start(125_000), 120_000);
        assert_eq!(w.window_start(120_000), 120_000);
        assert_eq!(w.window_start(-1), -60_000);
        assert_eq!(w.window_start(i64::MIN), i64::MIN);
        assert_eq!(
            w.window_start(i64::MAX),
            i64::MAX - i64::MAX.rem_euclid(60_000)
        );
    }

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let ts = parse_rfc3339_ms("2026-11-23T10:00:00.123Z").unwrap();
        assert_eq!(ts, 1_795_428_000_123);
        assert_eq!(format_rfc3339_ms(ts), "2026-11-23T10:00:00.123Z");
        assert_eq!(
            parse_rfc3339_ms("2026-11-23T11:00:00+01:00"),
            Some(1_795_428_000_000)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
