//! The binary's configuration: `config/default.toml` (embedded, the documented defaults)
//! < the file given with `--config` < `TIDEWATCH_<SECTION>__<KEY>` environment variables
//! < command-line flags.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use tidewatch_commerce::CommerceConfig;
use tidewatch_connect::BinanceConfig;
use tidewatch_engine::EngineConfig;
use tidewatch_market::MarketConfig;
use tidewatch_server::ServerConfig;
use tidewatch_sql::SqlConfig;

pub(crate) const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) server: ServerConfig,
    pub(crate) engine: EngineConfig,
    pub(crate) log: LogConfig,
    pub(crate) market: MarketConfig,
    pub(crate) commerce: CommerceConfig,
    pub(crate) connectors: ConnectorsConfig,
    pub(crate) sql: SqlConfig,
}

/// Live sources of real data, each off by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConnectorsConfig {
    pub(crate) binance: BinanceConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    pub(crate) format: LogFormat,
    pub(crate) level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Loads the layered configuration; `overrides` are the flags the user gave.
pub(crate) fn load(file: Option<&Path>, overrides: Figment) -> anyhow::Result<Config> {
    let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML));
    if let Some(file) = file {
        if !file.exists() {
            anyhow::bail!("config file {} does not exist", file.display());
        }
        figment = figment.merge(Toml::file(file));
    }
    let figment = figment
        .merge(Env::prefixed("TIDEWATCH_").split("__").ignore(&[
            "listen",
            "data_dir",
            "config",
            "log_format",
        ]))
        .merge(overrides);
    figment.extract().map_err(|e| {
        let problems: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("invalid configuration:\n  {}", problems.join("\n  "))
    })
}

/// Wraps flag values so they merge on top of the other layers.
pub(crate) fn flags<T: Serialize>(value: T) -> Figment {
    Figment::from(Serialized::defaults(value))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_match_the_code_defaults() {
        let from_toml: Config = Figment::new()
            .merge(Toml::string(DEFAULT_TOML))
            .extract()
            .unwrap();
        let from_code = Config::default();
        assert_eq!(
            serde_json::to_value(&from_toml).unwrap(),
            serde_json::to_value(&from_code).unwrap(),
            "config/default.toml and the Default impls disagree"
        );
    }

    #[test]
    fn file_env_and_flags_layer_in_that_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "t.toml",
                "[engine]\nfsync = \"never\"\nseal_rows = 10\n[server]\nws_queue = 7\n",
            )?;
            jail.set_env("TIDEWATCH_ENGINE__SEAL_ROWS", "20");
            jail.set_env("TIDEWATCH_SERVER__WS_QUEUE", "8");
            let flags = flags(serde_json::json!({"server": {"ws_queue": 9}}));
            let config = load(Some(Path::new("t.toml")), flags).map_err(|e| e.to_string())?;
            assert_eq!(config.engine.fsync, tidewatch_engine::FsyncSetting::Never);
            assert_eq!(config.engine.seal_rows, 20);
            assert_eq!(config.server.ws_queue, 9);
            Ok(())
        });
    }

    #[test]
    fn sql_limits_come_from_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "s.toml",
                "[sql]\ntimeout = \"5s\"\nmemory_limit = \"64MiB\"\n",
            )?;
            jail.set_env("TIDEWATCH_SQL__TIMEOUT", "250ms");
            jail.set_env("TIDEWATCH_SQL__MAX_ROWS", "10");
            let config =
                load(Some(Path::new("s.toml")), Figment::new()).map_err(|e| e.to_string())?;
            assert_eq!(config.sql.timeout, std::time::Duration::from_millis(250));
            assert_eq!(config.sql.memory_limit.bytes(), 64 << 20);
            assert_eq!(config.sql.max_rows, 10);
            jail.set_env("TIDEWATCH_SQL__MEMORY_LIMIT", "lots");
            let err = load(Some(Path::new("s.toml")), Figment::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains("lots"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn retention_is_read_per_stream_with_rollup_overrides() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "r.toml",
                "[engine.retention.\"market.ticks\"]\nevents = \"30d\"\nrollups = \"90d\"\n\
                 per_rollup = { quotes = \"2d\" }\n",
            )?;
            let config =
                load(Some(Path::new("r.toml")), Figment::new()).map_err(|e| e.to_string())?;
            let retention = &config.engine.retention["market.ticks"];
            let days = |n: u64| Some(std::time::Duration::from_secs(n * 86_400));
            assert_eq!(retention.events, days(30));
            assert_eq!(retention.for_rollup("ohlc"), days(90));
            assert_eq!(retention.for_rollup("quotes"), days(2));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[engine]\nfsink = \"always\"\n")?;
            let err = load(Some(Path::new("bad.toml")), Figment::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains("fsink"), "{err}");
            jail.create_file("bad2.toml", "[engine]\nfsync = \"sometimes\"\n")?;
            let err = load(Some(Path::new("bad2.toml")), Figment::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains("sometimes"), "{err}");
            Ok(())
        });
    }
}
