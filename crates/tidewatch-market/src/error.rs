//! The market domain's error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", unknown_symbol_message(.symbol, .known))]
    UnknownSymbol { symbol: String, known: bool },
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Engine(#[from] tidewatch_engine::Error),
}

fn unknown_symbol_message(symbol: &str, known: &bool) -> String {
    if *known {
        format!("symbol {symbol:?} has not traded yet")
    } else {
        format!("unknown symbol {symbol:?}: no trades of it are stored")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
