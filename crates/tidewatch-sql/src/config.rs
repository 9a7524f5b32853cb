//! SQL settings with their documented defaults (`[sql]` in the binary's `default.toml`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// Longest a query may take, planning, execution and collecting the result included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Memory the operators of all running queries may hold together (sorts, joins,
    /// aggregations); `"1GiB"`, `"512MiB"` or a number of bytes. Nothing spills to disk.
    pub memory_limit: ByteSize,
    /// Most rows a result may have; a larger result fails rather than being cut short.
    pub max_rows: usize,
    /// Worker threads of the SQL runtime, and DataFusion's partitions per query. Queries
    /// run there, not on the server's workers, so a heavy query cannot stall ingest.
    pub threads: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            timeout: Duration::from_secs(30),
            memory_limit: ByteSize(1024 * 1024 * 1024),
            max_rows: 1_000_000,
            threads: 2,
        }
    }
}

impl SqlConfig {
    pub fn test_config() -> Self {
        SqlConfig {
            timeout: Duration::from_secs(10),
            memory_limit: ByteSize(256 * 1024 * 1024),
            ..SqlConfig::default()
        }
    }
}

/// A number of bytes, written as an integer or with a unit: `B`, `KiB`, `MiB`, `GiB`,
/// `TiB` (powers of 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000). Serializes as an
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"1GiB"`, `"512 MiB"`, `"1048576"`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit = unit.trim();
        let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            "tib" | "t" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => {
                return Err(format!(
                    "invalid size {text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
                ));
            }
        };
        let value: f64 = number.parse().map_err(|_| {
            format!("invalid size {text:?}: expected a number and a unit, e.g. \"1GiB\"")
        })?;
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("invalid size {text:?}: out of range"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly, e.g. `1GiB`, `1536KiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a size such as \"1GiB\"")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("1GiB"), Ok(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("512 MiB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("1.5KiB"), Ok(ByteSize(1536)));
        assert_eq!(ByteSize::parse("2MB"), Ok(ByteSize(2_000_000)));
        assert_eq!(ByteSize::parse("1048576"), Ok(ByteSize(1 << 20)));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("GiB").is_err());
        assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
        assert_eq!(ByteSize(1536 << 10).to_string(), "1536KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn config_reads_strings_and_integers_and_rejects_unknown_keys() {
        let config: SqlConfig =
            serde_json::from_str(r#"{"timeout": "200ms", "memory_limit": "1MiB"}"#).unwrap();
        assert_eq!(config.timeout, Duration::from_millis(200));
        assert_eq!(config.memory_limit, ByteSize(1 << 20));
        assert_eq!(config.max_rows, SqlConfig::default().max_rows);
        let config: SqlConfig = serde_json::from_str(r#"{"memory_limit": 4096}"#).unwrap();
        assert_eq!(config.memory_limit, ByteSize(4096));
        assert!(serde_json::from_str::<SqlConfig>(r#"{"timeout_s": 3}"#).is_err());
        assert!(serde_json::from_str::<SqlConfig>(r#"{"memory_limit": -1}"#).is_err());
    }
}
