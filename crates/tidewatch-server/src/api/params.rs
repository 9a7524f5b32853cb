//! Query-string parameters shared by the read routes.

use tidewatch_types::TimestampMs;
use tidewatch_types::time::parse_rfc3339_ms;

use crate::error::ApiError;

/// A time parameter: RFC 3339 or epoch milliseconds.
pub fn parse_time(name: &str, text: &str) -> Result<TimestampMs, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    parse_rfc3339_ms(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "parameter {name:?}: {text:?} is neither an RFC 3339 timestamp nor epoch milliseconds"
        ))
    })
}

/// Parameters a route knows by name, borrowed from the query string.
pub type Named<'a> = Vec<(&'a str, &'a str)>;
/// `(tag, value)` pairs that select rows.
pub type TagFilter = Vec<(String, String)>;

/// Splits query pairs into the named parameters and the rest, which are tag filters.
/// A parameter given twice is an error rather than a silent choice.
pub fn split_params<'a>(
    pairs: &'a [(String, String)],
    named: &[&str],
) -> Result<(Named<'a>, TagFilter), ApiError> {
    let mut known: Vec<(&str, &str)> = Vec::new();
    let mut tags: Vec<(String, String)> = Vec::new();
    for (key, value) in pairs {
        let repeated = known.iter().any(|(k, _)| k == key) || tags.iter().any(|(k, _)| k == key);
        if repeated {
            return Err(ApiError::bad_request(format!(
                "parameter {key:?} is given more than once"
            )));
        }
        if named.contains(&key.as_str()) {
            known.push((key, value));
        } else {
            tags.push((key.clone(), value.clone()));
        }
    }
    Ok((known, tags))
}

pub fn get<'a>(known: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    known.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

pub fn time_param(known: &[(&str, &str)], name: &str) -> Result<Option<TimestampMs>, ApiError> {
    get(known, name)
        .map(|text| parse_time(name, text))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_epoch_millis() {
        assert_eq!(
            parse_time("from", "1795428000000").unwrap(),
            1_795_428_000_000
        );
        assert_eq!(
            parse_time("from", "2026-11-23T10:00:00Z").unwrap(),
            1_795_428_000_000
        );
        let err = parse_time("from", "soon").unwrap_err();
        assert!(err.message.contains("\"from\""));
    }

    #[test]
    fn repeated_parameters_are_rejected() {
        let pairs = vec![
            ("limit".to_owned(), "1".to_owned()),
            ("limit".to_owned(), "2".to_owned()),
        ];
        assert!(split_params(&pairs, &["limit"]).is_err());
        let pairs = vec![
            ("limit".to_owned(), "1".to_owned()),
            ("symbol".to_owned(), "BTC".to_owned()),
        ];
        let (known, tags) = split_params(&pairs, &["limit"]).unwrap();
        assert_eq!(get(&known, "limit"), Some("1"));
        assert_eq!(tags, vec![("symbol".to_owned(), "BTC".to_owned())]);
    }
}
