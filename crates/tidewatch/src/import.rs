//! `tidewatch import commerce`: CSV files into a data directory, all or nothing.
//!
//! Argument parsing, the progress bar and the report; the work is
//! [`tidewatch_commerce::Commerce::import`]. Any bad row is listed on stderr as
//! `file:line: column: reason`, the command exits non-zero and nothing is written.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tidewatch_commerce::import::Phase;
use tidewatch_commerce::{ImportError, ImportFiles, ImportProgress};

use crate::config::Config;
use crate::domains::Domains;
use crate::offline;

#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    #[command(subcommand)]
    what: ImportWhat,
}

#[derive(clap::Subcommand)]
enum ImportWhat {
    /// Products, suppliers (with their offers), customers and historical transactions
    /// from CSV files (columns in docs/commerce.md). Run it while no server uses the
    /// directory.
    Commerce(CommerceImportArgs),
}

#[derive(clap::Args)]
struct CommerceImportArgs {
    /// Products: sku, name, category, price, cost, stock, reorder_point[, supplier_id,
    /// lead_time_days]
    #[arg(long)]
    products: Option<PathBuf>,
    /// Customers: id, name, loyalty_tier, region, signup_date
    #[arg(long)]
    customers: Option<PathBuf>,
    /// Suppliers, one row per offer: id, name, reliability, avg_delivery_days[, sku,
    /// unit_price]
    #[arg(long)]
    suppliers: Option<PathBuf>,
    /// Transactions: timestamp, customer_id, sku, quantity[, id, unit_price, region,
    /// payment_method]
    #[arg(long)]
    transactions: Option<PathBuf>,
    /// Print the summary (or the bad rows) as one JSON line on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    place: offline::DataDirArgs,
}

pub(crate) fn main(args: ImportArgs) -> anyhow::Result<()> {
    let ImportWhat::Commerce(args) = args.what;
    if args.products.is_none()
        && args.customers.is_none()
        && args.suppliers.is_none()
        && args.transactions.is_none()
    {
        bail!(
            "nothing to import: give at least one of --products, --customers, --suppliers, --transactions"
        );
    }
    let config = offline::load_config(&args.place)?;
    crate::runtime()?.block_on(run(args, config))
}

async fn run(args: CommerceImportArgs, config: Config) -> anyhow::Result<()> {
    let data_dir = config.engine.data_dir.clone();
    let offline = offline::open(&config, "import").await?;
    let engine = Arc::clone(&offline.engine);
    let mut domains = Domains::start(&engine, &config.market)?;
    let commerce = domains
        .open_commerce(&engine, &data_dir, &config.commerce, false)
        .await?;
    let files = ImportFiles {
        products: args.products.clone(),
        suppliers: args.suppliers.clone(),
        customers: args.customers.clone(),
        transactions: args.transactions.clone(),
    };
    let bar = progress_bar();
    let outcome = commerce
        .import(&files, &mut |progress| show_progress(&bar, &progress))
        .await;
    bar.finish_and_clear();
    domains.stop().await;
    let closed = offline.close().await;
    match outcome {
        Ok(summary) => {
            closed?;
            if args.json {
                println!("{}", json!({"imported": summary}));
            } else {
                println!(
                    "imported {} products, {} suppliers ({} offers), {} customers, {} transactions \
                     ({} suspicious, {} already stored) into {}",
                    summary.products,
                    summary.suppliers,
                    summary.offers,
                    summary.customers,
                    summary.transactions,
                    summary.suspicious,
                    summary.duplicates,
                    data_dir.display()
                );
            }
            Ok(())
        }
        Err(ImportError::Rows(problems)) => {
            if args.json {
                println!("{}", json!({"rejected": problems}));
            }
            for problem in &problems {
                eprintln!("{problem}");
            }
            bail!(
                "{} bad row{}; nothing was imported",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )
        }
        Err(ImportError::Failed(e)) => Err(e).context("importing"),
    }
}

/// Says plainly when the directory is held by another process (a running server).
/// A bar over rows, on stderr; hidden when stderr is not a terminal.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} rows  {msg}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_progress(bar: &ProgressBar, progress: &ImportProgress) {
    bar.set_length(progress.total);
    bar.set_position(progress.done);
    bar.set_message(match progress.phase {
        Phase::Checking => "checking",
        Phase::Streaming => "writing transactions",
    });
}
