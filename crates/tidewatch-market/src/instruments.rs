//! The instruments the market domain knows by name. Symbols outside this list (from the
//! exchange connector or a user's producer) work the same, with the symbol as their name.

pub struct Instrument {
    pub symbol: &'static str,
    pub name: &'static str,
    pub venue: &'static str,
    pub asset_class: &'static str,
}

const fn equity(symbol: &'static str, name: &'static str) -> Instrument {
    Instrument {
        symbol,
        name,
        venue: "NASDAQ",
        asset_class: "equity",
    }
}

const fn crypto(symbol: &'static str, name: &'static str) -> Instrument {
    Instrument {
        symbol,
        name,
        venue: "BINANCE",
        asset_class: "crypto",
    }
}

pub const INSTRUMENTS: [Instrument; 13] = [
    equity("AAPL", "Apple Inc."),
    equity("MSFT", "Microsoft Corporation"),
    equity("GOOGL", "Alphabet Inc. Class A"),
    equity("AMZN", "Amazon.com, Inc."),
    equity("NVDA", "NVIDIA Corporation"),
    equity("META", "Meta Platforms, Inc."),
    equity("TSLA", "Tesla, Inc."),
    equity("NFLX", "Netflix, Inc."),
    crypto("BTCUSDT", "Bitcoin / Tether"),
    crypto("ETHUSDT", "Ether / Tether"),
    crypto("SOLUSDT", "Solana / Tether"),
    crypto("BNBUSDT", "BNB / Tether"),
    crypto("XRPUSDT", "XRP / Tether"),
];

pub fn find(symbol: &str) -> Option<&'static Instrument> {
    INSTRUMENTS.iter().find(|i| i.symbol == symbol)
}
