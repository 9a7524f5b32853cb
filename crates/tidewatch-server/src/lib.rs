//! HTTP, WebSocket and metrics server over the engine
