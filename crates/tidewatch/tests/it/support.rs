//! `TestServer`: the real binary as a child process on port 0, with its own data dir.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) struct TestServer {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    /// Lines the server wrote to stderr, collected by a thread.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) args: Vec<String>,
}

impl TestServer {
    pub(crate) async fn start(data_dir: &Path) -> TestServer {
        Self::start_with(data_dir, Options::default()).await
    }

    pub(crate) async fn start_with(data_dir: &Path, options: Options) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(&options.args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn tidewatch");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log_sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log_sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix("tidewatch listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server printed its address");
        let server = TestServer {
            child,
            base,
            client: reqwest::Client::new(),
            log,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server not ready in time; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("{}/api/v1/ws", self.base.replacen("http://", "ws://", 1))
    }

    pub(crate) fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Declares the `ticks` stream and its `bars` rollup used across tests.
    pub(crate) async fn declare_ticks(&self) {
        let (status, body) = self.post("/api/v1/streams", &ticks_schema()).await;
        assert!(status == 201 || status == 200, "{status} {body}");
        let (status, body) = self
            .post("/api/v1/streams/ticks/rollups", &bars_spec())
            .await;
        assert!(status == 201 || status == 200, "{status} {body}");
    }

    pub(crate) async fn rows(&self, stream: &str) -> u64 {
        let (_, body) = self.get("/api/v1/streams").await;
        body["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == stream)
            .map_or(0, |s| s["rows"].as_u64().unwrap())
    }

    /// Every stored event of `stream`, following cursors.
    pub(crate) async fn all_events(&self, stream: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/streams/{stream}/events?limit=1000");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.get(&path).await;
            assert_eq!(status, 200, "{page}");
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return events,
            }
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn ticks_schema() -> Value {
    json!({"name": "ticks", "tags": ["symbol"], "fields": {"price": "f64", "size": "f64"}})
}

pub(crate) fn bars_spec() -> Value {
    json!({
        "name": "bars", "group_by": ["symbol"], "windows": ["1m", "5m"],
        "aggregates": {"n": "count", "volume": "sum(size)", "vwap": "vwap(price, size)",
                        "high": "max(price)", "low": "min(price)", "open": "first(price)", "close": "last(price)"}
    })
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A minute-aligned time an hour ago, so test windows do not straddle the clock.
pub(crate) fn base_ms() -> i64 {
    let t = now_ms() - 3_600_000;
    t - t.rem_euclid(60_000)
}

pub(crate) fn tick(ts: i64, symbol: &str, price: f64, size: f64) -> Value {
    json!({"ts": ts, "symbol": symbol, "price": price, "size": size})
}

/// Parses an RFC 3339 millisecond timestamp as the API prints it.
pub(crate) fn parse_ts(text: &str) -> i64 {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}
