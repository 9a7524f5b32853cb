//! Integration tests: a real engine on a temporary directory, a fake exchange speaking
//! Binance's message format over a real WebSocket on 127.0.0.1, and the real connector
//! between them.

mod binance;
mod support;
