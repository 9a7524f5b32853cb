//! `tidewatch simulate`: the simulator as an HTTP producer for a running server.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tidewatch_engine::render::event_json;
use tidewatch_sim::{MarketConfig, MarketGenerator, Simulator};
use tidewatch_types::StreamSchema;
use tidewatch_types::time::now_ms;
use tracing::{info, warn};

#[derive(clap::Args)]
pub(crate) struct SimulateArgs {
    /// Base URL of the server
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Trades per second
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seed: the same seed gives the same events
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after this many seconds (default: run until Ctrl-C)
    #[arg(long)]
    duration: Option<u64>,
    /// Equities trade only Mon-Fri 09:30-16:00 America/New_York (holidays ignored);
    /// crypto trades around the clock
    #[arg(long)]
    market_hours: bool,
}

pub(crate) async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    let mut simulator = Simulator::new().with(MarketGenerator::new(MarketConfig {
        seed: args.seed,
        events_per_second: args.rate,
        market_hours: args.market_hours,
        ..MarketConfig::default()
    }));
    let mut schemas: Vec<StreamSchema> = Vec::new();
    for declaration in simulator.streams() {
        let schema = &declaration.schema;
        let fields: serde_json::Map<String, Value> = schema
            .fields
            .iter()
            .map(|f| (f.name.clone(), json!(f.field_type)))
            .collect();
        post_declaration(
            &client,
            &format!("{base}/api/v1/streams"),
            &json!({"name": schema.name, "tags": schema.tags, "fields": fields}),
        )
        .await?;
        for rollup in &declaration.rollups {
            post_declaration(
                &client,
                &format!("{base}/api/v1/streams/{}/rollups", schema.name),
                &json!(rollup),
            )
            .await?;
        }
        schemas.push(declaration.schema);
    }

    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    let (mut sent, mut last) = (0u64, now_ms());
    info!(url = %base, rate = args.rate, seed = args.seed, "simulating");
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        let now = now_ms();
        for (stream, batch) in simulator.generate(last, now) {
            let Some(schema) = schemas.iter().find(|s| s.name == stream) else {
                continue;
            };
            let mut body = String::new();
            for row in 0..batch.len() {
                let mut event = event_json(schema, &batch, row);
                // The server assigns ids: re-sending is not needed here, and it keeps the
                // server's dedupe set free of simulated ids.
                if let Some(object) = event.as_object_mut() {
                    object.remove("id");
                }
                body.push_str(&event.to_string());
                body.push('\n');
            }
            let url = format!("{base}/api/v1/streams/{stream}/events");
            match client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => sent += batch.len() as u64,
                Ok(r) => {
                    warn!(status = r.status().as_u16(), body = %r.text().await.unwrap_or_default(), "batch refused")
                }
                Err(e) => warn!(error = %e, "server unreachable"),
            }
        }
        last = now;
    }
    info!(events = sent, "simulation stopped");
    println!("sent {sent} events");
    Ok(())
}

async fn post_declaration(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<()> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "POST {url} answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
