//! Server settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default.
    pub listen: SocketAddr,
    /// Largest accepted request body, after gzip decoding.
    pub max_body_bytes: usize,
    /// Messages queued per WebSocket client before it is declared lagged and resynced.
    pub ws_queue: usize,
    /// Interval between WebSocket pings; a client silent for three intervals is dropped.
    #[serde(with = "humantime_serde")]
    pub ws_heartbeat: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024 * 1024,
            ws_queue: 1024,
            ws_heartbeat: Duration::from_secs(15),
        }
    }
}

impl ServerConfig {
    pub fn test_config() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        }
    }
}
