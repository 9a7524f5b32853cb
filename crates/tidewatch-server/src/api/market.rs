//! `GET /api/v1/market/*`: quotes, candles with indicators, sentiment and market alerts.
//! The computing is in `tidewatch_market`; here parameters are read and checked.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use tidewatch_market::{Candles, CandlesRequest, Quote, SymbolSentiment};
use tidewatch_types::WindowWidth;

use crate::api::params::{Named, get, split_params, time_param};
use crate::error::ApiError;
use crate::state::AppState;

type Pairs = Query<Vec<(String, String)>>;

/// The named parameters of a route that takes no others (no tag filters here).
fn only<'a>(pairs: &'a [(String, String)], named: &[&str]) -> Result<Named<'a>, ApiError> {
    let (known, unknown) = split_params(pairs, named)?;
    match unknown.first() {
        Some((name, _)) => Err(ApiError::bad_request(format!(
            "unknown parameter {name:?}; this route takes {}",
            named.join(", ")
        ))),
        None => Ok(known),
    }
}

fn required<'a>(known: &Named<'a>, name: &str) -> Result<&'a str, ApiError> {
    get(known, name).ok_or_else(|| ApiError::bad_request(format!("parameter {name:?} is required")))
}

fn limit(known: &Named<'_>) -> Result<Option<usize>, ApiError> {
    get(known, "limit")
        .map(|text| {
            text.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!(
                    "parameter \"limit\": {text:?} is not a non-negative integer"
                ))
            })
        })
        .transpose()
}

pub async fn symbols(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    let symbols = state.market()?.symbols()?;
    Ok(Json(json!({ "symbols": symbols })))
}

pub async fn quote(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    Query(pairs): Pairs,
) -> Result<Json<Quote>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(state.market()?.quote(&symbol)?))
}

pub async fn candles(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Candles>, ApiError> {
    let known = only(
        &pairs,
        &["symbol", "window", "from", "to", "limit", "annualise"],
    )?;
    let window = get(&known, "window").unwrap_or("1m");
    let window = window
        .parse::<WindowWidth>()
        .map_err(|e| ApiError::bad_request(format!("parameter \"window\": {e}")))?;
    let annualise = match get(&known, "annualise") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameter \"annualise\": {other:?} is not true or false"
            )));
        }
    };
    let request = CandlesRequest {
        symbol: required(&known, "symbol")?.to_owned(),
        window,
        from: time_param(&known, "from")?,
        to: time_param(&known, "to")?,
        limit: limit(&known)?,
        annualise,
    };
    Ok(Json(state.market()?.candles(&request)?))
}

pub async fn sentiment(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["symbol"])?;
    let market = state.market()?;
    Ok(Json(match get(&known, "symbol") {
        Some(symbol) => json!(market.sentiment(symbol)?),
        None => {
            let all: Vec<SymbolSentiment> = market.sentiments()?;
            json!({ "sentiment": all })
        }
    }))
}

pub async fn alerts(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["symbol", "kind", "limit", "cursor"])?;
    let page = state.market()?.alerts(
        get(&known, "symbol"),
        get(&known, "kind"),
        limit(&known)?,
        get(&known, "cursor").map(str::to_owned),
    )?;
    Ok(Json(
        json!({"alerts": page.events, "next_cursor": page.next_cursor}),
    ))
}
