//! The fake exchange, the engine under test, and Binance-format messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tidewatch_connect::{BinanceConfig, TICKS_STREAM};
use tidewatch_engine::engine::EventsRequest;
use tidewatch_engine::{Engine, EngineConfig};
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

/// A WebSocket server on an ephemeral port; each connection a client opens is handed to
/// the test, which plays the exchange on it.
pub(crate) struct FakeExchange {
    addr: SocketAddr,
    connections: mpsc::UnboundedReceiver<ExchangeConnection>,
    accept_loop: JoinHandle<()>,
}

impl FakeExchange {
    pub(crate) async fn start() -> FakeExchange {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (sender, connections) = mpsc::unbounded_channel();
        let accept_loop = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(socket) = tokio_tungstenite::accept_async(tcp).await
                    && sender.send(ExchangeConnection { socket }).is_err()
                {
                    return;
                }
            }
        });
        FakeExchange {
            addr,
            connections,
            accept_loop,
        }
    }

    /// A combined-stream URL, as the connector's default configuration uses.
    pub(crate) fn url(&self) -> String {
        format!(
            "ws://{}/stream?streams=btcusdt@trade/ethusdt@aggTrade",
            self.addr
        )
    }

    /// The next connection a client opens.
    pub(crate) async fn next_connection(&mut self) -> ExchangeConnection {
        timeout(PATIENCE, self.connections.recv())
            .await
            .expect("the connector connects")
            .expect("the accept loop runs")
    }
}

impl Drop for FakeExchange {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The exchange's side of one connection. Dropping it drops the TCP connection without a
/// close handshake, as a failing exchange or network would.
pub(crate) struct ExchangeConnection {
    socket: WebSocketStream<TcpStream>,
}

impl ExchangeConnection {
    pub(crate) async fn send_text(&mut self, text: impl Into<String>) {
        self.socket
            .send(Message::text(text.into()))
            .await
            .expect("send to the connector");
    }

    pub(crate) async fn send_binary(&mut self, bytes: &'static [u8]) {
        self.socket
            .send(Message::binary(bytes))
            .await
            .expect("send to the connector");
    }

    /// Pings as Binance does and waits for the pong carrying the same payload.
    pub(crate) async fn ping_and_expect_pong(&mut self, payload: &'static [u8]) {
        self.socket
            .send(Message::Ping(payload.into()))
            .await
            .expect("ping the connector");
        let pong = timeout(PATIENCE, async {
            while let Some(message) = self.socket.next().await {
                if let Ok(Message::Pong(data)) = message {
                    return Some(data);
                }
            }
            None
        })
        .await
        .expect("a pong arrives");
        assert_eq!(pong.as_deref(), Some(payload));
    }

    /// Waits until the client closes the connection; true if it sent a close frame.
    pub(crate) async fn closed_by_client(&mut self) -> bool {
        timeout(PATIENCE, async {
            while let Some(message) = self.socket.next().await {
                match message {
                    Ok(Message::Close(_)) => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
            false
        })
        .await
        .expect("the client closes the connection")
    }
}

/// `market.ticks` as the market domain declares it.
pub(crate) fn ticks_schema() -> StreamSchema {
    let field = |name: &str| FieldDef {
        name: name.into(),
        field_type: FieldType::F64,
    };
    StreamSchema {
        name: TICKS_STREAM.into(),
        tags: vec!["symbol".into(), "venue".into(), "asset_class".into()],
        fields: vec![field("price"), field("size"), field("bid"), field("ask")],
    }
}

/// An engine on `dir` (not yet with any stream).
pub(crate) fn open_engine(dir: &std::path::Path) -> Arc<Engine> {
    Arc::new(Engine::open(EngineConfig::test_config(dir)).expect("open the engine"))
}

/// The connector under test, running as the binary runs it.
pub(crate) struct RunningConnector {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningConnector {
    pub(crate) fn start(engine: &Arc<Engine>, url: String) -> RunningConnector {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(tidewatch_connect::run(
            Arc::clone(engine),
            BinanceConfig::test_config(url),
            shutdown.clone(),
        ));
        RunningConnector { shutdown, task }
    }

    pub(crate) fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// Waits for `run` to return (after `cancel`, or on its own).
    pub(crate) async fn finished(self) {
        timeout(PATIENCE, self.task)
            .await
            .expect("run returns")
            .expect("run does not panic");
    }
}

/// Every event of `market.ticks`, oldest first.
pub(crate) fn stored_ticks(engine: &Engine) -> Vec<Value> {
    let request = EventsRequest {
        limit: Some(1000),
        ..EventsRequest::default()
    };
    let mut events = engine
        .events(TICKS_STREAM, &request)
        .expect("query market.ticks")
        .events;
    events.reverse();
    events
}

/// Polls `condition` until it holds, failing the test after [`PATIENCE`].
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// A raw `<symbol>@trade` event; `symbol` in upper case, as Binance sends `s`.
pub(crate) fn trade(symbol: &str, id: u64, price: &str, quantity: &str, ts: i64) -> Value {
    json!({
        "e": "trade", "E": ts + 1, "s": symbol, "t": id, "p": price, "q": quantity,
        "T": ts, "m": true, "M": true
    })
}

/// A raw `<symbol>@aggTrade` event.
pub(crate) fn agg_trade(symbol: &str, id: u64, price: &str, quantity: &str, ts: i64) -> Value {
    json!({
        "e": "aggTrade", "E": ts + 1, "s": symbol, "a": id, "p": price, "q": quantity,
        "f": id * 3, "l": id * 3 + 2, "T": ts, "m": false, "M": true
    })
}

/// `event` in the combined-stream envelope.
pub(crate) fn combined(event: &Value) -> String {
    let symbol = event["s"].as_str().unwrap_or_default().to_lowercase();
    let kind = event["e"].as_str().unwrap_or_default();
    json!({ "stream": format!("{symbol}@{kind}"), "data": event }).to_string()
}
