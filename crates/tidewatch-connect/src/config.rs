//! Connector settings. Defaults here are the documented ones.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the Binance connector connects and how long it waits at most between attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BinanceConfig {
    /// Off by default: the connector needs network access to the exchange.
    pub enabled: bool,
    /// A raw (`/ws/<stream>`) or combined (`/stream?streams=a/b`) stream URL of `@trade`
    /// or `@aggTrade` streams; `wss://` and `ws://` both work.
    pub url: String,
    /// Longest wait between reconnection attempts; waits start at 500 ms and double.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for BinanceConfig {
    fn default() -> Self {
        BinanceConfig {
            enabled: false,
            url: "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade".into(),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl BinanceConfig {
    /// A configuration for tests: enabled, connecting to `url`, retrying quickly.
    pub fn test_config(url: impl Into<String>) -> Self {
        BinanceConfig {
            enabled: true,
            url: url.into(),
            max_backoff: Duration::from_millis(200),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_their_defaults_and_unknown_keys_are_rejected() {
        let config: BinanceConfig =
            serde_json::from_str(r#"{"enabled": true, "max_backoff": "1m"}"#).expect("valid");
        assert!(config.enabled);
        assert_eq!(config.max_backoff, Duration::from_secs(60));
        assert_eq!(config.url, BinanceConfig::default().url);

        let typo = serde_json::from_str::<BinanceConfig>(r#"{"max_backof": "1m"}"#);
        assert!(typo.is_err());
    }
}
