//! `tidewatch backfill`: simulated history written straight into a data directory.
//!
//! Argument parsing, the progress bar and the summary; the work is
//! [`tidewatch_sim::backfill::run`], through the same commit path as HTTP ingest.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tidewatch_engine::Engine;
use tidewatch_sim::backfill::{self, BackfillPlan, BackfillSummary, Progress};
use tidewatch_sim::{MarketConfig, MarketGenerator, Simulator};
use tidewatch_types::TimestampMs;
use tidewatch_types::time::{format_rfc3339_ms, now_ms, parse_rfc3339_ms};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domains::Domains;
use crate::offline;

const MS_PER_DAY: f64 = 86_400_000.0;
/// Longest history one run generates: ten years.
const MAX_DAYS: f64 = 3650.0;

#[derive(clap::Args)]
pub(crate) struct BackfillArgs {
    /// Days of history to generate, ending at --until (fractions allowed)
    #[arg(long, default_value_t = 30.0)]
    days: f64,
    /// End of the history, RFC 3339 (e.g. 2026-11-23T10:00:00Z) [default: now]. The same
    /// --until, --days, --rate, --seed, --anomaly-rate and --market-hours give the same
    /// events
    #[arg(long, value_parser = parse_until)]
    until: Option<TimestampMs>,
    /// Simulated trades per second of simulated time, across all 13 symbols. The default
    /// makes --days 30 about 7.8 M events (half that with --market-hours): about 14 trades
    /// per symbol in each 1-minute candle, written in seconds as about 120 MB of Parquet
    #[arg(long, default_value_t = 3.0)]
    rate: f64,
    /// Seed: the same seed gives the same events
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Chance per trade of an injected, labelled anomaly (price spike or volume surge)
    #[arg(long, default_value_t = MarketConfig::default().anomaly_rate)]
    anomaly_rate: f64,
    /// Equities trade only Mon-Fri 09:30-16:00 America/New_York (holidays ignored);
    /// crypto trades around the clock
    #[arg(long)]
    market_hours: bool,
    /// Write even if the stream already holds events after the start: those events set
    /// the rollups' watermark, so the backfilled ones arrive late (as corrections, or
    /// dropped where a window is no longer kept)
    #[arg(long)]
    force: bool,
    /// Print the summary as one JSON line
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    place: offline::DataDirArgs,
}

fn parse_until(text: &str) -> Result<TimestampMs, String> {
    parse_rfc3339_ms(text).ok_or_else(|| format!("{text:?} is not an RFC 3339 time"))
}

impl BackfillArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if !(self.days > 0.0 && self.days <= MAX_DAYS) {
            bail!("--days must be more than 0 and at most {MAX_DAYS}");
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!("--rate must be a positive number of trades per second");
        }
        if !(0.0..=1.0).contains(&self.anomaly_rate) {
            bail!("--anomaly-rate is a probability per trade, between 0 and 1");
        }
        Ok(())
    }
}

/// Loads the configuration like `serve`, then backfills on a runtime of its own.
pub(crate) fn main(args: BackfillArgs) -> anyhow::Result<()> {
    args.validate()?;
    let config = offline::load_config(&args.place)?;
    crate::runtime()?.block_on(run(args, config))
}

async fn run(args: BackfillArgs, config: Config) -> anyhow::Result<()> {
    let now = now_ms();
    let until = args.until.unwrap_or(now);
    if until > now {
        bail!(
            "--until {} is in the future: backfilled history must end before now, or a live \
             feed would write events older than the history",
            format_rfc3339_ms(until)
        );
    }
    let from = until - (args.days * MS_PER_DAY).round() as i64;
    let data_dir = config.engine.data_dir.clone();
    let offline = offline::open(&config, "backfill").await?;
    let engine = Arc::clone(&offline.engine);
    let stored_before = stored_bytes(&engine);
    // The market's detectors watch the backfilled trades as they would live ones, so the
    // history comes with its alerts.
    let domains = Domains::start(&engine, &config.market)?;
    let alerts_before = alert_count(&engine);

    let mut market = MarketGenerator::new(MarketConfig {
        seed: args.seed,
        events_per_second: args.rate,
        anomaly_rate: args.anomaly_rate,
        market_hours: args.market_hours,
    });
    // Older history in the directory (an earlier backfill): continue its prices.
    market.resume_from(tidewatch_sim::runner::last_prices(&engine));
    let simulator = Simulator::new().with(market);
    let plan = BackfillPlan {
        force: args.force,
        // Generating outruns writing Parquet: past twice the limit at which maintenance
        // persists everything, wait for it, so memory stays bounded.
        max_hot_bytes: Some(config.engine.hot_memory_limit.saturating_mul(2)),
        ..BackfillPlan::new(from, until, args.rate)
    };

    let cancel = CancellationToken::new();
    let signals = tokio::spawn(crate::wait_for_signal(cancel.clone()));
    let bar = progress_bar(from, until);
    let outcome = backfill::run(&engine, simulator, &plan, &cancel, |p| {
        show_progress(&bar, p)
    })
    .await;
    bar.finish_and_clear();
    signals.abort();
    domains.stop().await;
    // Closed whatever happened: everything committed is persisted before the process ends.
    let closed = offline.close().await;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e @ backfill::Error::NewerData { .. }) => {
            return Err(e).context(
                "refusing to backfill: pass --force to write anyway, or end the history \
                 earlier with --until",
            );
        }
        Err(e) => return Err(e).context("backfilling"),
    };
    closed?;
    let written = Written {
        stored_bytes: stored_bytes(&engine).saturating_sub(stored_before),
        alerts: alert_count(&engine).saturating_sub(alerts_before),
    };
    report(&args, &data_dir, &summary, &written);
    if !summary.completed {
        bail!(
            "interrupted: {} events were written, up to {}; [{}, {}) was not",
            grouped(summary.progress.events),
            format_rfc3339_ms(summary.progress.written_until),
            format_rfc3339_ms(summary.progress.written_until),
            format_rfc3339_ms(until)
        );
    }
    Ok(())
}

/// Says plainly when the directory is held by another process, which is how a running
/// server shows up.
/// What the summary adds to the backfill's own figures.
struct Written {
    /// Growth of the market stream's Parquet segments, rollup history and checkpoint.
    stored_bytes: u64,
    /// Alerts the market's detectors raised on the backfilled trades.
    alerts: u64,
}

fn alert_count(engine: &Engine) -> u64 {
    engine
        .stream_info(tidewatch_alerts::ALERTS_STREAM)
        .map_or(0, |info| info.rows)
}

/// Bytes the market stream holds on disk (the WAL is truncated behind them).
fn stored_bytes(engine: &Engine) -> u64 {
    engine
        .stream_info(tidewatch_market::schema::TICKS_STREAM)
        .map_or(0, |info| info.bytes_on_disk)
}

/// A bar over simulated time, on stderr; hidden when stderr is not a terminal.
fn progress_bar(from: TimestampMs, to: TimestampMs) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(to - from).unwrap_or(0));
    let style =
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {percent:>3}%  {msg}")
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_progress(bar: &ProgressBar, progress: &Progress) {
    let done = progress.written_until - progress.from;
    bar.set_position(u64::try_from(done).unwrap_or(0));
    bar.set_message(format!(
        "day {:.1} of {:.1}  {} events  {} events/s",
        done as f64 / MS_PER_DAY,
        (progress.to - progress.from) as f64 / MS_PER_DAY,
        grouped(progress.events),
        si(progress.events_per_second()),
    ));
}

/// The closing summary on stdout: one JSON line with `--json`, else a few lines of text.
fn report(args: &BackfillArgs, data_dir: &Path, summary: &BackfillSummary, written: &Written) {
    let p = &summary.progress;
    if args.json {
        let line = json!({
            "completed": summary.completed,
            "events": p.events,
            "batches": p.batches,
            "anomalies": p.anomalies,
            "elapsed_ms": p.elapsed.as_millis() as u64,
            "events_per_second": p.events_per_second().round(),
            "alerts": written.alerts,
            "stored_bytes": written.stored_bytes,
            "from": format_rfc3339_ms(p.from),
            "until": format_rfc3339_ms(p.to),
            "written_until": format_rfc3339_ms(p.written_until),
            "seed": args.seed,
            "rate": args.rate,
            "market_hours": args.market_hours,
            "data_dir": data_dir,
        });
        println!("{line}");
        return;
    }
    let verb = if summary.completed {
        "backfilled"
    } else {
        "interrupted after writing"
    };
    println!(
        "{verb} {} events in {:.2} s: {} events/s",
        grouped(p.events),
        p.elapsed.as_secs_f64(),
        si(p.events_per_second())
    );
    println!(
        "  simulated  {} .. {} (seed {}, {} trades/s{})",
        format_rfc3339_ms(p.from),
        format_rfc3339_ms(p.written_until),
        args.seed,
        args.rate,
        if args.market_hours {
            ", market hours"
        } else {
            ""
        }
    );
    println!(
        "  anomalies  {} injected, {} alerts raised",
        grouped(p.anomalies),
        grouped(written.alerts)
    );
    println!(
        "  stored     {} of Parquet and checkpoints in {}",
        bytes(written.stored_bytes),
        data_dir.display()
    );
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A rate with a metric prefix: `1.23 M`, `45.6 k`.
fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.1} kB", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_prefixed_for_people() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(7_776_000), "7,776,000");
        assert_eq!(si(1_234_567.0), "1.23 M");
        assert_eq!(si(45_600.0), "45.6 k");
        assert_eq!(bytes(480_123_456), "480.1 MB");
    }

    #[test]
    fn until_takes_rfc_3339() {
        assert_eq!(parse_until("2026-11-23T10:00:00Z"), Ok(1_795_428_000_000));
        assert!(parse_until("yesterday").is_err());
    }
}
