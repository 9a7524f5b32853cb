//! SQL against the real server: ticks posted over HTTP, part of them persisted to Parquet by
//! a restart and part still in memory, queried through `POST /api/v1/sql` in every format
//! and through `tidewatch sql`, each answer checked against sums computed here from the
//! posted ticks; the rollup table against the REST rollup endpoint; refused statements.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use tidewatch_sql::arrow::array::{AsArray, RecordBatch};
use tidewatch_sql::arrow::compute::cast;
use tidewatch_sql::arrow::datatypes::{DataType, Float64Type, Int64Type};
use tidewatch_sql::arrow::ipc::reader::StreamReader;
use tidewatch_sql::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::*;

const TICKS: &str = "/api/v1/streams/market.ticks/events";
const SYMBOLS: [&str; 4] = ["AAPL", "BTCUSDT", "ETHUSDT", "MSFT"];

#[derive(Debug, Clone, Copy)]
struct Tick {
    ts: i64,
    symbol: &'static str,
    price: f64,
    size: f64,
}

impl Tick {
    fn json(&self) -> Value {
        json!({"ts": self.ts, "symbol": self.symbol, "venue": "TESTVENUE", "asset_class": "equity",
               "price": self.price, "size": self.size, "bid": self.price - 0.01, "ask": self.price + 0.01})
    }
}

/// 20 minutes from `t0`, 4 symbols, 5 trades a minute each: 400 ticks.
fn ticks(t0: i64) -> Vec<Tick> {
    let mut ticks = Vec::new();
    for minute in 0..20i64 {
        for (s, symbol) in SYMBOLS.iter().enumerate() {
            for k in 0..5i64 {
                let i = minute * 20 + s as i64 * 5 + k;
                ticks.push(Tick {
                    ts: t0 + minute * 60_000 + k * 11_000 + s as i64 * 700 + 250,
                    symbol,
                    price: 100.0 * (s + 1) as f64 + ((i * 37) % 101) as f64 / 8.0,
                    size: (1 + (i * 13) % 9) as f64,
                });
            }
        }
    }
    ticks
}

/// Count, volume and notional per symbol, computed from the ticks.
fn by_symbol(ticks: &[Tick]) -> BTreeMap<String, (i64, f64, f64)> {
    let mut out: BTreeMap<String, (i64, f64, f64)> = BTreeMap::new();
    for t in ticks {
        let e = out.entry(t.symbol.to_owned()).or_default();
        e.0 += 1;
        e.1 += t.size;
        e.2 += t.price * t.size;
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_by_symbol(
    got: &BTreeMap<String, (i64, f64, f64)>,
    want: &BTreeMap<String, (i64, f64, f64)>,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (symbol, (n, volume, notional)) in want {
        let (got_n, got_volume, got_notional) = got[symbol];
        assert_eq!(got_n, *n, "{symbol}");
        assert!(
            close(got_volume, *volume),
            "{symbol} volume {got_volume} != {volume}"
        );
        assert!(
            close(got_notional, *notional),
            "{symbol} notional {got_notional} != {notional}"
        );
    }
}

async fn post_ticks(server: &TestServer, ticks: &[Tick]) {
    for chunk in ticks.chunks(97) {
        let batch: Vec<Value> = chunk.iter().map(Tick::json).collect();
        let (status, body) = server.post(TICKS, &json!(batch)).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Posts `{"sql": ..., "format": ...}` and returns the status, content type and response.
async fn sql_raw(server: &TestServer, sql: &str, format: &str) -> (u16, String, reqwest::Response) {
    let response = server
        .client
        .post(server.url("/api/v1/sql"))
        .json(&json!({"sql": sql, "format": format}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response)
}

/// The JSON rows of a successful query.
async fn sql_rows(server: &TestServer, sql: &str) -> Vec<Value> {
    let (status, body) = server.post("/api/v1/sql", &json!({"sql": sql})).await;
    assert_eq!(status, 200, "{sql}: {body}");
    assert_eq!(
        body["row_count"].as_u64().unwrap() as usize,
        body["rows"].as_array().unwrap().len()
    );
    body["rows"].as_array().unwrap().clone()
}

const PER_SYMBOL: &str = "SELECT symbol, count(*) AS trades, sum(size) AS volume, sum(price * size) AS notional \
                          FROM market_ticks GROUP BY symbol ORDER BY symbol";

fn from_json_rows(rows: &[Value]) -> BTreeMap<String, (i64, f64, f64)> {
    rows.iter()
        .map(|r| {
            (
                r["symbol"].as_str().unwrap().to_owned(),
                (
                    r["trades"].as_i64().unwrap(),
                    r["volume"].as_f64().unwrap(),
                    r["notional"].as_f64().unwrap(),
                ),
            )
        })
        .collect()
}

fn from_batches(batches: &[RecordBatch]) -> BTreeMap<String, (i64, f64, f64)> {
    let mut out = BTreeMap::new();
    for batch in batches {
        let symbols = cast(batch.column(0), &DataType::Utf8).unwrap();
        for row in 0..batch.num_rows() {
            out.insert(
                symbols.as_string::<i32>().value(row).to_owned(),
                (
                    batch.column(1).as_primitive::<Int64Type>().value(row),
                    batch.column(2).as_primitive::<Float64Type>().value(row),
                    batch.column(3).as_primitive::<Float64Type>().value(row),
                ),
            );
        }
    }
    out
}

#[tokio::test]
async fn sql_answers_match_the_posted_ticks_hot_and_persisted_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = {
        let t = base_ms() - 1_800_000;
        t - t.rem_euclid(300_000)
    };
    let ticks = ticks(t0);
    let (older, newer) = ticks.split_at(240);

    // The older ticks go to Parquet: a clean shutdown persists everything in memory.
    let mut server = TestServer::start(dir.path()).await;
    post_ticks(&server, older).await;
    assert!(server.terminate().success());
    let server = TestServer::start(dir.path()).await;
    post_ticks(&server, newer).await;
    assert!(
        !parquet_files(dir.path()).is_empty(),
        "the restart persisted no segment"
    );

    // Count, volume and notional per symbol.
    let want = by_symbol(&ticks);
    assert_by_symbol(&from_json_rows(&sql_rows(&server, PER_SYMBOL).await), &want);

    // VWAP per symbol per 5 minutes.
    let rows = sql_rows(
        &server,
        "SELECT symbol, date_bin(interval '5 minutes', ts) AS window_start, \
                sum(price * size) / sum(size) AS vwap, count(*) AS trades \
         FROM market_ticks GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    let mut windows: BTreeMap<(String, i64), (f64, f64, i64)> = BTreeMap::new();
    for t in &ticks {
        let start = t.ts - t.ts.rem_euclid(300_000);
        let e = windows.entry((t.symbol.to_owned(), start)).or_default();
        e.0 += t.price * t.size;
        e.1 += t.size;
        e.2 += 1;
    }
    assert_eq!(rows.len(), windows.len());
    for (row, ((symbol, start), (notional, volume, n))) in rows.iter().zip(&windows) {
        assert_eq!(row["symbol"], symbol.as_str());
        assert_eq!(
            parse_ts(row["window_start"].as_str().unwrap()),
            *start,
            "{row}"
        );
        assert_eq!(row["trades"].as_i64().unwrap(), *n, "{row}");
        let vwap = notional / volume;
        assert!(
            close(row["vwap"].as_f64().unwrap(), vwap),
            "{row}: want {vwap}"
        );
    }

    // A time filter on the newest 5 minutes only.
    let cut = t0 + 15 * 60_000;
    let rows = sql_rows(
        &server,
        &format!(
            "SELECT count(*) AS n FROM market_ticks WHERE ts >= '{}'",
            rfc3339(cut)
        ),
    )
    .await;
    let recent = ticks.iter().filter(|t| t.ts >= cut).count();
    assert_eq!(rows[0]["n"].as_u64().unwrap() as usize, recent);

    // The rollup table is what the REST rollup endpoint serves.
    let (status, rest) = server
        .get("/api/v1/streams/market.ticks/rollups/ohlc?window=5m")
        .await;
    assert_eq!(status, 200, "{rest}");
    let rest = rest["rows"].as_array().unwrap();
    let table = sql_rows(
        &server,
        "SELECT * FROM market_ticks_ohlc_5m ORDER BY symbol, window_start",
    )
    .await;
    assert_eq!(table.len(), rest.len());
    assert_eq!(table.len(), windows.len());
    let key = |r: &Value| {
        (
            r["symbol"].as_str().unwrap().to_owned(),
            parse_ts(r["window_start"].as_str().unwrap()),
        )
    };
    let rest: BTreeMap<(String, i64), &Value> = rest.iter().map(|r| (key(r), r)).collect();
    for row in &table {
        let want = rest[&key(row)];
        assert_eq!(
            parse_ts(row["window_end"].as_str().unwrap()),
            parse_ts(want["window_end"].as_str().unwrap())
        );
        assert_eq!(row["closed"], want["closed"]);
        for column in [
            "open", "high", "low", "close", "volume", "vwap", "trades", "bid", "ask",
        ] {
            assert_eq!(
                row[column].as_f64(),
                want[column].as_f64(),
                "{column} of {row}"
            );
        }
        let (notional, volume, n) = windows[&key(row)];
        assert_eq!(row["trades"].as_f64().unwrap(), n as f64);
        assert!(
            close(row["vwap"].as_f64().unwrap(), notional / volume),
            "{row}"
        );
    }

    // The same numbers in every format.
    let (status, content_type, response) = sql_raw(&server, PER_SYMBOL, "csv").await;
    let body = response.bytes().await.unwrap();
    assert_eq!((status, content_type.as_str()), (200, "text/csv"));
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("symbol,trades,volume,notional"));
    let csv: BTreeMap<String, (i64, f64, f64)> = lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (
                cells[0].to_owned(),
                (
                    cells[1].parse().unwrap(),
                    cells[2].parse().unwrap(),
                    cells[3].parse().unwrap(),
                ),
            )
        })
        .collect();
    assert_by_symbol(&csv, &want);

    let (status, content_type, response) = sql_raw(&server, PER_SYMBOL, "ndjson").await;
    let body = response.bytes().await.unwrap();
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/x-ndjson")
    );
    let rows: Vec<Value> = String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_by_symbol(&from_json_rows(&rows), &want);

    let (status, content_type, response) = sql_raw(&server, PER_SYMBOL, "arrow").await;
    let body = response.bytes().await.unwrap();
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apache.arrow.stream")
    );
    let batches: Vec<RecordBatch> = StreamReader::try_new(std::io::Cursor::new(body), None)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_by_symbol(&from_batches(&batches), &want);

    let (status, content_type, response) = sql_raw(&server, PER_SYMBOL, "parquet").await;
    let body = response.bytes().await.unwrap();
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apache.parquet")
    );
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_by_symbol(&from_batches(&batches), &want);

    // `?format=` and `Accept` choose the format too.
    let response = server
        .client
        .post(server.url("/api/v1/sql?format=csv"))
        .json(&json!({"sql": "SELECT 1 AS one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "one\n1\n");
    let response = server
        .client
        .post(server.url("/api/v1/sql"))
        .header("accept", "application/x-ndjson")
        .json(&json!({"sql": "SELECT 1 AS one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap().trim(), r#"{"one":1}"#);

    // The CLI prints a table of the same figures.
    let output = tidewatch_sql_cli(&server.base, &[PER_SYMBOL]).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    for (symbol, (n, _, _)) in &want {
        let line = stdout
            .lines()
            .find(|line| line.contains(&format!("| {symbol} ")))
            .unwrap_or_else(|| panic!("no row for {symbol} in\n{stdout}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[2], n.to_string(), "{line}");
    }
    assert!(stdout.contains("| symbol "), "{stdout}");
    assert!(stdout.trim_end().ends_with("(4 rows)"), "{stdout}");

    let output = tidewatch_sql_cli(&server.base, &["--format", "csv", "SELECT 2 AS two"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "two\n2\n");
}

#[tokio::test]
async fn statements_that_are_not_read_only_queries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    post_ticks(&server, &ticks(base_ms())[..20]).await;

    for (statement, reason) in [
        (
            "CREATE TABLE t AS SELECT * FROM market_ticks",
            "CREATE TABLE",
        ),
        (
            "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/'",
            "CREATE EXTERNAL TABLE",
        ),
        ("INSERT INTO market_ticks (symbol) VALUES ('X')", "INSERT"),
        ("DELETE FROM market_ticks", "DELETE"),
        ("DROP TABLE market_ticks", "DROP TABLE"),
        ("COPY (SELECT 1) TO '/tmp/tidewatch-it-copy.csv'", "COPY"),
        ("SET datafusion.execution.batch_size = 1", "SET"),
        ("SELECT 1; SELECT 2", "2 statements"),
    ] {
        let (status, body) = server.post("/api/v1/sql", &json!({"sql": statement})).await;
        assert_eq!(status, 400, "{statement}: {body}");
        assert_eq!(body["error"]["code"], "sql_rejected", "{statement}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.ends_with(&format!("got {reason}")),
            "{statement}: {message}"
        );
    }
    assert!(!std::path::Path::new("/tmp/tidewatch-it-copy.csv").exists());

    // Reading files is not possible; planning errors are the query's fault.
    for statement in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/x')",
        "SELECT nope FROM market_ticks",
    ] {
        let (status, body) = server.post("/api/v1/sql", &json!({"sql": statement})).await;
        assert_eq!(status, 400, "{statement}: {body}");
        assert_eq!(body["error"]["code"], "sql_error", "{statement}: {body}");
    }

    // A body that is not JSON, or lacks `sql`, or names an unknown format.
    let (status, body) = server
        .post_raw("/api/v1/sql", "application/json", "{\"sql\": ")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_body")),
        "{body}"
    );
    let (status, body) = server
        .post("/api/v1/sql", &json!({"query": "SELECT 1"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = server
        .post("/api/v1/sql", &json!({"sql": "SELECT 1", "format": "xml"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // The CLI shows the server's message and fails.
    let output = tidewatch_sql_cli(&server.base, &["DROP TABLE market_ticks"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("only SELECT, WITH and EXPLAIN are allowed; got DROP TABLE")
            && stderr.contains("sql_rejected"),
        "{stderr}"
    );
}

/// Runs `tidewatch sql --url <base> <args>`.
async fn tidewatch_sql_cli(base: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
    command
        .args(["sql", "--url", base])
        .args(args)
        .env_remove("RUST_LOG");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Every `.parquet` file under `dir`.
fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
