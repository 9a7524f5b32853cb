use super::*;

/// A trade as Binance's `btcusdt@trade` stream sends it (older payloads also carry the
/// buyer and seller order ids `b` and `a`; `a` must not be taken for an aggregate id).
const TRADE: &str = r#"{"e":"trade","E":1736942400123,"s":"BTCUSDT","t":4382120611,"p":"97012.35000000","q":"0.00150000","b":33154411202,"a":33154411187,"T":1736942400122,"m":true,"M":true}"#;

const AGG_TRADE: &str = r#"{"e":"aggTrade","E":1736942400456,"s":"ETHUSDT","a":2034418877,"p":"3401.17000000","q":"1.25000000","f":2598730001,"l":2598730004,"T":1736942400455,"m":false,"M":true}"#;

fn trade(text: &str) -> Trade {
    match parse_frame(text) {
        Ok(Some(trade)) => trade,
        other => panic!("expected a trade from {text}, got {other:?}"),
    }
}

fn error(text: &str) -> FrameError {
    match parse_frame(text) {
        Err(e) => e,
        other => panic!("expected an error from {text}, got {other:?}"),
    }
}

/// `TRADE` with `field` set to the raw JSON `value`, or removed when `value` is `None`.
fn trade_with(field: &str, value: Option<&str>) -> String {
    let mut object: Map<String, Value> = serde_json::from_str(TRADE).expect("valid fixture");
    match value {
        Some(raw) => {
            object.insert(field.into(), serde_json::from_str(raw).expect("valid JSON"));
        }
        None => {
            object.remove(field);
        }
    }
    Value::Object(object).to_string()
}

#[test]
fn a_raw_trade_event_parses_with_its_values() {
    assert_eq!(
        trade(TRADE),
        Trade {
            kind: TradeKind::Trade,
            symbol: "BTCUSDT".into(),
            id: 4_382_120_611,
            price: 97_012.35,
            size: 0.0015,
            ts: 1_736_942_400_122,
        }
    );
}

#[test]
fn an_aggregate_trade_event_uses_the_aggregate_id() {
    assert_eq!(
        trade(AGG_TRADE),
        Trade {
            kind: TradeKind::AggTrade,
            symbol: "ETHUSDT".into(),
            id: 2_034_418_877,
            price: 3401.17,
            size: 1.25,
            ts: 1_736_942_400_455,
        }
    );
}

#[test]
fn combined_stream_envelopes_are_unwrapped() {
    let wrapped = format!(r#"{{"stream":"btcusdt@trade","data":{TRADE}}}"#);
    assert_eq!(trade(&wrapped), trade(TRADE));
    let wrapped = format!(r#"{{"stream":"ethusdt@aggTrade","data":{AGG_TRADE}}}"#);
    assert_eq!(trade(&wrapped), trade(AGG_TRADE));
}

#[test]
fn symbols_are_upper_cased() {
    assert_eq!(
        trade(&trade_with("s", Some(r#""btcusdt""#))).symbol,
        "BTCUSDT"
    );
}

#[test]
fn messages_that_are_not_trades_are_ignored() {
    let not_trades = [
        // the reply to a SUBSCRIBE request
        r#"{"result":null,"id":1}"#,
        r#"{"e":"24hrMiniTicker","E":1736942400000,"s":"BTCUSDT","c":"97000.00"}"#,
        // a depth update's `a` is an array of asks: it must not be read as an id
        r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","2"]],"a":[["1.1","3"]]}"#,
        r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","s":"BTCUSDT","a":[]}}"#,
        r#"{"e":"serverShutdown","E":1736942400000}"#,
    ];
    for text in not_trades {
        assert_eq!(parse_frame(text), Ok(None), "{text}");
    }
}

#[test]
fn frames_that_are_not_json_objects_are_malformed() {
    assert!(matches!(error("{\"e\":\"trade\","), FrameError::Json(_)));
    assert!(matches!(error("not json"), FrameError::Json(_)));
    assert_eq!(error("[1,2]"), FrameError::NotAnObject);
    assert_eq!(error(r#""trade""#), FrameError::NotAnObject);
    assert_eq!(
        error(r#"{"stream":"btcusdt@trade","data":"x"}"#),
        FrameError::EnvelopeData
    );
    assert_eq!(
        error(r#"{"stream":"btcusdt@trade"}"#),
        FrameError::EnvelopeData
    );
}

#[test]
fn each_missing_field_is_named() {
    for field in ["s", "t", "p", "q", "T"] {
        assert_eq!(
            error(&trade_with(field, None)),
            FrameError::MissingField {
                kind: TradeKind::Trade,
                field
            },
            "{field}"
        );
    }
    let agg_without_id = AGG_TRADE.replace(r#""a":2034418877,"#, "");
    assert_eq!(
        error(&agg_without_id),
        FrameError::MissingField {
            kind: TradeKind::AggTrade,
            field: "a"
        }
    );
}

#[test]
fn non_numeric_prices_and_sizes_are_malformed() {
    for (field, raw) in [
        ("p", r#""abc""#),
        ("p", r#""""#),
        ("p", "97012.35"), // a JSON number, not the decimal string Binance sends
        ("q", r#""1,5""#),
        ("q", "null"),
    ] {
        let e = error(&trade_with(field, Some(raw)));
        assert!(
            matches!(e, FrameError::WrongType { field: f, expected: "a decimal string", .. } if f == field),
            "{field}={raw}: {e:?}"
        );
    }
}

#[test]
fn non_positive_or_infinite_prices_and_sizes_are_malformed() {
    for (field, raw) in [
        ("p", r#""0.00000000""#),
        ("p", r#""-1.5""#),
        ("q", r#""0""#),
        ("q", r#""NaN""#),
        ("p", r#""inf""#),
    ] {
        let e = error(&trade_with(field, Some(raw)));
        assert!(
            matches!(e, FrameError::NotPositive { field: f, .. } if f == field),
            "{field}={raw}: {e:?}"
        );
    }
}

#[test]
fn ids_times_and_symbols_of_the_wrong_type_are_malformed() {
    for (field, raw) in [
        ("t", r#""4382120611""#),
        ("t", "-1"),
        ("t", "1.5"),
        ("T", r#""1736942400122""#),
        ("s", "42"),
        ("s", r#""""#),
    ] {
        let e = error(&trade_with(field, Some(raw)));
        assert!(
            matches!(e, FrameError::WrongType { field: f, .. } if f == field),
            "{field}={raw}: {e:?}"
        );
    }
}

#[test]
fn errors_read_as_log_reasons() {
    assert_eq!(
        error(&trade_with("p", Some(r#""abc""#))).to_string(),
        r#"`p` of a trade event is not a decimal string: "abc""#
    );
    assert_eq!(
        error(&trade_with("q", Some(r#""0""#))).to_string(),
        r#"`q` of a trade event is not a positive number: "0""#
    );
    assert_eq!(
        error(&trade_with("T", None)).to_string(),
        "trade event without `T`"
    );
}

#[test]
fn producer_ids_are_deterministic_and_distinct_per_symbol_and_kind() {
    let id = producer_id(TradeKind::Trade, "BTCUSDT", 7);
    assert_eq!(id, producer_id(TradeKind::Trade, "BTCUSDT", 7));
    assert_eq!(trade(TRADE).producer_id(), trade(TRADE).producer_id());
    let others = [
        producer_id(TradeKind::Trade, "BTCUSDT", 8),
        producer_id(TradeKind::AggTrade, "BTCUSDT", 7),
        producer_id(TradeKind::Trade, "ETHUSDT", 7),
        producer_id(TradeKind::Trade, "BTCUSD", 7),
    ];
    for other in others {
        assert_ne!(id, other);
    }
}

#[test]
fn producer_ids_are_rfc_9562_version_8_uuids_that_sort_like_trade_ids() {
    let text = tidewatch_ingest::ids::format_id(producer_id(TradeKind::Trade, "BTCUSDT", 7));
    assert_eq!(&text[14..15], "8", "version nibble of {text}");
    assert!(
        matches!(&text[19..20], "8" | "9" | "a" | "b"),
        "variant of {text}"
    );
    assert_eq!(
        tidewatch_ingest::ids::parse_id(&text),
        Some(producer_id(TradeKind::Trade, "BTCUSDT", 7))
    );

    let trade_ids = [
        0,
        1,
        2,
        1 << 40,
        (1 << 62) - 1,
        1 << 62,
        u64::MAX - 1,
        u64::MAX,
    ];
    let ids: Vec<EventId> = trade_ids
        .iter()
        .map(|&t| producer_id(TradeKind::AggTrade, "SOLUSDT", t))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:x?}");
}

#[test]
fn the_producer_id_layout_is_stable() {
    // Ids of stored trades depend on this value: a change breaks dedupe across upgrades.
    // Computed independently from the layout described at `producer_id`.
    assert_eq!(
        tidewatch_ingest::ids::format_id(producer_id(TradeKind::Trade, "BTCUSDT", 4_382_120_611)),
        "31110771-a326-8ca0-8000-00010531daa3"
    );
}
