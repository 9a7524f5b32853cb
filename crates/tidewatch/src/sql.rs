//! `tidewatch sql`: runs a read-only query on a running server and prints the result.

use std::io::Write;

use anyhow::Context;
use serde_json::{Value, json};
use tidewatch_sql::arrow::ipc::reader::StreamReader;
use tidewatch_sql::arrow::util::pretty::pretty_format_batches_with_schema;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    tidewatch sql \"SELECT symbol, count(*) AS trades FROM market_ticks GROUP BY symbol\"\n  \
    tidewatch sql --format csv \"SELECT * FROM market_ticks_ohlc_5m WHERE symbol = 'AAPL'\"\n\n\
    Tables: every stream (market.ticks -> market_ticks) and every rollup window\n\
    (market_ticks_ohlc_5m); see docs/sql.md.")]
pub(crate) struct SqlArgs {
    /// The query: one SELECT, WITH or EXPLAIN statement
    query: String,
    /// Base URL of the server
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How to print the result: an aligned table, or the server's CSV, JSON or NDJSON
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
}

impl OutputFormat {
    /// The format asked of the server: the table is drawn from Arrow, the others are
    /// printed as they come.
    fn wire_name(self) -> &'static str {
        match self {
            OutputFormat::Table => "arrow",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Ndjson => "ndjson",
        }
    }
}

pub(crate) async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/sql", args.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .json(&json!({"sql": args.query, "format": args.format.wire_name()}))
        .send()
        .await
        .with_context(|| format!("sending the query to {url}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        // The server's answer is the whole story: no "Error:" wrapper or backtrace.
        eprintln!("error: {}", server_error(status, &body));
        std::process::exit(1);
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        OutputFormat::Table => {
            let reader = StreamReader::try_new(std::io::Cursor::new(body), None)
                .context("the server's answer is not an Arrow IPC stream")?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .context("decoding the server's Arrow IPC stream")?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let table = pretty_format_batches_with_schema(schema, &batches)
                .context("formatting the result")?;
            writeln!(stdout, "{table}")?;
            writeln!(
                stdout,
                "({rows} {})",
                if rows == 1 { "row" } else { "rows" }
            )?;
        }
        OutputFormat::Csv | OutputFormat::Json | OutputFormat::Ndjson => {
            stdout.write_all(&body)?;
            if !body.ends_with(b"\n") {
                writeln!(stdout)?;
            }
        }
    }
    Ok(())
}

/// The message of the server's `{"error": {"code", "message"}}`, or what it sent instead.
fn server_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value["error"]["message"].is_string() => format!(
            "{} ({status}, {})",
            value["error"]["message"].as_str().unwrap_or_default(),
            value["error"]["code"].as_str().unwrap_or("error"),
        ),
        _ => format!("{status}: {}", String::from_utf8_lossy(body).trim()),
    }
}
