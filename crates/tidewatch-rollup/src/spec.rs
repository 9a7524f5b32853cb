//! The rollup declaration: `{name, group_by, windows, aggregates}`, its expression language
//! and its validation against a stream schema.
//!
//! Declarations arrive as JSON from users (`POST /api/v1/streams/{s}/rollups`) or are built
//! in code by domains. Validation happens here once, so the engine can bind names to column
//! indices without re-checking.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tidewatch_types::schema::{ColumnRef, validate_name};
use tidewatch_types::{FieldType, StreamSchema, WindowWidth};

use crate::{Error, Result};

/// Names a row already uses for its own columns; aggregate outputs may not take them.
pub const RESERVED_OUTPUTS: [&str; 3] = ["window_start", "window_end", "closed"];

/// A rollup as declared, e.g.
///
/// ```json
/// {"name": "bars", "group_by": ["symbol"], "windows": ["1m", "5m"],
///  "aggregates": {"n": "count", "volume": "sum(size)", "vwap": "vwap(price, size)"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupSpec {
    pub name: String,
    #[serde(default)]
    pub group_by: Vec<String>,
    pub windows: Vec<WindowWidth>,
    pub aggregates: Aggregates,
}

/// Ordered `(output name, expression)` pairs. (De)serializes as a JSON object whose key order
/// is the declaration order, which is also the order of values in rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates(pub Vec<(String, AggregateExpr)>);

/// One aggregate expression. Arguments name columns of the stream; which columns are
/// acceptable is checked by [`RollupSpec::validate`], not by parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AggregateExpr {
    /// `count`: rows.
    Count,
    /// `count(f)`: rows where `f` is non-null.
    CountField(String),
    Sum(String),
    Min(String),
    Max(String),
    /// `mean(f)`, also spelled `avg(f)`.
    Mean(String),
    First(String),
    Last(String),
    /// Sample variance.
    Variance(String),
    /// Square root of the sample variance.
    Stddev(String),
    Vwap {
        price: String,
        quantity: String,
    },
    /// `distinct(f)`, also spelled `count_distinct(f)`: HyperLogLog estimate.
    DistinctCount(String),
}

impl AggregateExpr {
    /// The function name as displayed.
    pub fn function(&self) -> &'static str {
        match self {
            AggregateExpr::Count | AggregateExpr::CountField(_) => "count",
            AggregateExpr::Sum(_) => "sum",
            AggregateExpr::Min(_) => "min",
            AggregateExpr::Max(_) => "max",
            AggregateExpr::Mean(_) => "mean",
            AggregateExpr::First(_) => "first",
            AggregateExpr::Last(_) => "last",
            AggregateExpr::Variance(_) => "variance",
            AggregateExpr::Stddev(_) => "stddev",
            AggregateExpr::Vwap { .. } => "vwap",
            AggregateExpr::DistinctCount(_) => "distinct",
        }
    }

    /// The columns the expression reads, in argument order.
    pub fn arguments(&self) -> Vec<&str> {
        match self {
            AggregateExpr::Count => vec![],
            AggregateExpr::CountField(f)
            | AggregateExpr::Sum(f)
            | AggregateExpr::Min(f)
            | AggregateExpr::Max(f)
            | AggregateExpr::Mean(f)
            | AggregateExpr::First(f)
            | AggregateExpr::Last(f)
            | AggregateExpr::Variance(f)
            | AggregateExpr::Stddev(f)
            | AggregateExpr::DistinctCount(f) => vec![f],
            AggregateExpr::Vwap { price, quantity } => vec![price, quantity],
        }
    }

    /// Whether every argument must be a numeric field.
    pub fn needs_numeric(&self) -> bool {
        !matches!(
            self,
            AggregateExpr::Count | AggregateExpr::CountField(_) | AggregateExpr::DistinctCount(_)
        )
    }
}

impl FromStr for AggregateExpr {
    type Err = Error;

    /// Parses `count`, `count(f)`, `sum(f)`, `min(f)`, `max(f)`, `mean(f)`/`avg(f)`,
    /// `first(f)`, `last(f)`, `variance(f)`, `stddev(f)`, `vwap(p, q)` and
    /// `distinct(f)`/`count_distinct(f)`. Whitespace around tokens is ignored and function
    /// names are case-insensitive.
    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidExpression {
            expr: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let (function, args) = match trimmed.find('(') {
            None => (trimmed, None),
            Some(open) => {
                let Some(inner) = trimmed[open + 1..].strip_suffix(')') else {
                    return Err(invalid("missing closing ')' at the end".into()));
                };
                (trimmed[..open].trim_end(), Some(inner))
            }
        };
        if function.is_empty() {
            return Err(invalid("missing function name".into()));
        }
        let function = function.to_ascii_lowercase();
        let args: Vec<&str> = match args {
            None => vec![],
            Some(inner) if inner.trim().is_empty() => vec![],
            Some(inner) => inner.split(',').map(str::trim).collect(),
        };
        for arg in &args {
            if arg.is_empty() {
                return Err(invalid("empty argument".into()));
            }
            if arg.contains(|c: char| c.is_whitespace() || "()".contains(c)) {
                return Err(invalid(format!("{arg:?} is not a column name")));
            }
        }
        let arity = |expected: usize| {
            if args.len() == expected {
                Ok(())
            } else {
                let plural = if expected == 1 { "" } else { "s" };
                Err(invalid(format!(
                    "{function} takes {expected} argument{plural}, got {}",
                    args.len()
                )))
            }
        };
        let one = |build: fn(String) -> AggregateExpr| {
            arity(1)?;
            Ok(build(args[0].to_owned()))
        };
        match function.as_str() {
            "count" if args.is_empty() => Ok(AggregateExpr::Count),
            "count" => one(AggregateExpr::CountField),
            "sum" => one(AggregateExpr::Sum),
            "min" => one(AggregateExpr::Min),
            "max" => one(AggregateExpr::Max),
            "mean" | "avg" => one(AggregateExpr::Mean),
            "first" => one(AggregateExpr::First),
            "last" => one(AggregateExpr::Last),
            "variance" => one(AggregateExpr::Variance),
            "stddev" => one(AggregateExpr::Stddev),
            "distinct" | "count_distinct" => one(AggregateExpr::DistinctCount),
            "vwap" => {
                arity(2)?;
                Ok(AggregateExpr::Vwap {
                    price: args[0].to_owned(),
                    quantity: args[1].to_owned(),
                })
            }
            _ => Err(invalid(format!(
                "unknown function {function:?} (expected count, sum, min, max, mean, avg, \
                 first, last, variance, stddev, vwap, distinct or count_distinct)"
            ))),
        }
    }
}

impl fmt::Display for AggregateExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateExpr::Count => f.write_str("count"),
            AggregateExpr::Vwap { price, quantity } => write!(f, "vwap({price}, {quantity})"),
            other => {
                let args = other.arguments();
                write!(f, "{}({})", other.function(), args.join(", "))
            }
        }
    }
}

impl Serialize for AggregateExpr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AggregateExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Aggregates {
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &AggregateExpr)> {
        self.0.iter().map(|(name, expr)| (name.as_str(), expr))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, AggregateExpr)> for Aggregates {
    fn from_iter<I: IntoIterator<Item = (String, AggregateExpr)>>(iter: I) -> Self {
        Aggregates(iter.into_iter().collect())
    }
}

impl Serialize for Aggregates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, expr) in &self.0 {
            map.serialize_entry(name, expr)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Aggregates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;

        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Aggregates;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping output names to aggregate expressions")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Aggregates, A::Error> {
                let mut entries: Vec<(String, AggregateExpr)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((name, expr)) = map.next_entry::<String, AggregateExpr>()? {
                    // Duplicates would silently shadow each other in a JSON object; say so.
                    if entries.iter().any(|(seen, _)| *seen == name) {
                        return Err(serde::de::Error::custom(Error::DuplicateAggregate(name)));
                    }
                    entries.push((name, expr));
                }
                Ok(Aggregates(entries))
            }
        }

        deserializer.deserialize_map(OrderedVisitor)
    }
}

/// How an aggregate argument is read from a batch, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Tag(usize),
    Field(usize, FieldType),
}

impl RollupSpec {
    /// Checks the declaration against the stream's schema. Errors name the offending rollup
    /// name, tag, window, output or expression and say why it is rejected.
    pub fn validate(&self, schema: &StreamSchema) -> Result<()> {
        validate_name("rollup", &self.name, false)?;

        let mut group_tags = HashSet::new();
        for tag in &self.group_by {
            if schema.tag_index(tag).is_none() {
                return Err(Error::UnknownGroupTag {
                    tag: tag.clone(),
                    stream: schema.name.clone(),
                });
            }
            if !group_tags.insert(tag.as_str()) {
                return Err(Error::DuplicateGroupTag(tag.clone()));
            }
        }

        if self.windows.is_empty() {
            return Err(Error::NoWindows);
        }
        let mut windows = HashSet::new();
        for &width in &self.windows {
            if !windows.insert(width) {
                return Err(Error::DuplicateWindow(width));
            }
        }

        if self.aggregates.is_empty() {
            return Err(Error::NoAggregates);
        }
        let mut outputs = HashSet::new();
        for (name, expr) in self.aggregates.iter() {
            validate_name("aggregate", name, false)?;
            if !outputs.insert(name) {
                return Err(Error::DuplicateAggregate(name.to_owned()));
            }
            if group_tags.contains(name) {
                return Err(Error::AggregateNameClash {
                    name: name.to_owned(),
                    clash: "a group_by tag".into(),
                });
            }
            if RESERVED_OUTPUTS.contains(&name) {
                return Err(Error::AggregateNameClash {
                    name: name.to_owned(),
                    clash: format!("the row column {name:?}"),
                });
            }
            bind_arguments(name, expr, schema)?;
        }
        Ok(())
    }
}

/// Resolves the arguments of one aggregate to columns, checking that they exist and have a
/// type the function accepts.
pub(crate) fn bind_arguments(
    name: &str,
    expr: &AggregateExpr,
    schema: &StreamSchema,
) -> Result<Vec<Column>> {
    let numeric = expr.needs_numeric();
    expr.arguments()
        .into_iter()
        .map(|arg| {
            let unknown = |expected| Error::UnknownColumn {
                name: name.to_owned(),
                expr: expr.to_string(),
                column: arg.to_owned(),
                expected,
                stream: schema.name.clone(),
            };
            match schema.column(arg) {
                Some(ColumnRef::Field(index, field_type)) => {
                    if numeric && !field_type.is_numeric() {
                        return Err(Error::NonNumericField {
                            name: name.to_owned(),
                            expr: expr.to_string(),
                            field: arg.to_owned(),
                            field_type: field_type.as_str(),
                        });
                    }
                    Ok(Column::Field(index, field_type))
                }
                Some(ColumnRef::Tag(index)) if !numeric => Ok(Column::Tag(index)),
                Some(ColumnRef::Tag(_)) => Err(unknown("numeric field")),
                // `ts` and `id` are not aggregatable columns.
                Some(ColumnRef::Ts | ColumnRef::Id) | None if numeric => {
                    Err(unknown("numeric field"))
                }
                Some(ColumnRef::Ts | ColumnRef::Id) | None => Err(unknown("tag or field")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tidewatch_types::schema::FieldDef;

    use super::*;

    fn schema() -> StreamSchema {
        let field = |name: &str, field_type| FieldDef {
            name: name.into(),
            field_type,
        };
        StreamSchema::new(
            "market.ticks",
            vec!["symbol".into(), "venue".into()],
            vec![
                field("price", FieldType::F64),
                field("size", FieldType::I64),
                field("side", FieldType::Str),
                field("maker", FieldType::Bool),
            ],
        )
        .unwrap()
    }

    fn parse(text: &str) -> AggregateExpr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn spec(aggregates: &[(&str, &str)]) -> RollupSpec {
        RollupSpec {
            name: "bars".into(),
            group_by: vec!["symbol".into()],
            windows: vec!["1m".parse().unwrap()],
            aggregates: aggregates
                .iter()
                .map(|(n, e)| (n.to_string(), parse(e)))
                .collect(),
        }
    }

    #[test]
    fn parses_and_displays_every_expression() {
        let s = |x: &str| x.to_owned();
        let cases = [
            ("count", AggregateExpr::Count, "count"),
            ("count()", AggregateExpr::Count, "count"),
            (
                "count(size)",
                AggregateExpr::CountField(s("size")),
                "count(size)",
            ),
            ("sum(size)", AggregateExpr::Sum(s("size")), "sum(size)"),
            ("min(price)", AggregateExpr::Min(s("price")), "min(price)"),
            ("max(price)", AggregateExpr::Max(s("price")), "max(price)"),
            (
                "mean(price)",
                AggregateExpr::Mean(s("price")),
                "mean(price)",
            ),
            ("avg(price)", AggregateExpr::Mean(s("price")), "mean(price)"),
            (
                "first(price)",
                AggregateExpr::First(s("price")),
                "first(price)",
            ),
            (
                "last(price)",
                AggregateExpr::Last(s("price")),
                "last(price)",
            ),
            (
                "variance(price)",
                AggregateExpr::Variance(s("price")),
                "variance(price)",
            ),
            (
                "stddev(price)",
                AggregateExpr::Stddev(s("price")),
                "stddev(price)",
            ),
            (
                "vwap(price,size)",
                AggregateExpr::Vwap {
                    price: s("price"),
                    quantity: s("size"),
                },
                "vwap(price, size)",
            ),
            (
                "distinct(venue)",
                AggregateExpr::DistinctCount(s("venue")),
                "distinct(venue)",
            ),
            (
                "count_distinct(side)",
                AggregateExpr::DistinctCount(s("side")),
                "distinct(side)",
            ),
            // Whitespace and case tolerance.
            (
                "  Sum ( size )  ",
                AggregateExpr::Sum(s("size")),
                "sum(size)",
            ),
            (
                "vwap( price ,\tsize )",
                AggregateExpr::Vwap {
                    price: s("price"),
                    quantity: s("size"),
                },
                "vwap(price, size)",
            ),
            (" COUNT ", AggregateExpr::Count, "count"),
        ];
        for (text, expected, displayed) in cases {
            let parsed = parse(text);
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(parsed.to_string(), displayed, "{text}");
            // Display output parses back to the same expression.
            assert_eq!(parse(displayed), expected, "{displayed}");
        }
    }

    #[test]
    fn rejects_unknown_functions_and_wrong_arity() {
        for (text, reason) in [
            (
                "median(price)",
                "unknown function \"median\" (expected count, sum, min, max, mean, avg, first, last, variance, stddev, vwap, distinct or count_distinct)",
            ),
            (
                "price",
                "unknown function \"price\" (expected count, sum, min, max, mean, avg, first, last, variance, stddev, vwap, distinct or count_distinct)",
            ),
            ("sum()", "sum takes 1 argument, got 0"),
            ("sum", "sum takes 1 argument, got 0"),
            ("sum(a, b)", "sum takes 1 argument, got 2"),
            ("count(a, b)", "count takes 1 argument, got 2"),
            ("vwap(price)", "vwap takes 2 arguments, got 1"),
            ("vwap(a, b, c)", "vwap takes 2 arguments, got 3"),
            ("sum(price", "missing closing ')' at the end"),
            ("sum(price) + 1", "missing closing ')' at the end"),
            ("(price)", "missing function name"),
            ("", "missing function name"),
            ("vwap(price,)", "empty argument"),
            ("sum(a b)", "\"a b\" is not a column name"),
            ("sum((a))", "\"(a)\" is not a column name"),
        ] {
            let err = text.parse::<AggregateExpr>().unwrap_err();
            assert_eq!(
                err,
                Error::InvalidExpression {
                    expr: text.into(),
                    reason: reason.into()
                },
                "{text}"
            );
        }
    }

    #[test]
    fn validates_a_full_spec() {
        spec(&[
            ("n", "count"),
            ("quoted", "count(side)"),
            ("volume", "sum(size)"),
            ("low", "min(price)"),
            ("high", "max(price)"),
            ("avg", "mean(price)"),
            ("open", "first(price)"),
            ("close", "last(price)"),
            ("var", "variance(price)"),
            ("sd", "stddev(size)"),
            ("vwap", "vwap(price, size)"),
            ("venues", "distinct(venue)"),
            ("sides", "distinct(side)"),
            ("makers", "distinct(maker)"),
            ("price", "max(price)"),
        ])
        .validate(&schema())
        .unwrap();
    }

    #[test]
    fn rejects_unknown_and_non_numeric_columns() {
        let schema = schema();
        let err = spec(&[("total", "sum(qty)")])
            .validate(&schema)
            .unwrap_err();
        assert_eq!(
            err,
            Error::UnknownColumn {
                name: "total".into(),
                expr: "sum(qty)".into(),
                column: "qty".into(),
                expected: "numeric field",
                stream: "market.ticks".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "aggregate \"total\" = \"sum(qty)\": \"qty\" is not a numeric field of stream \
             \"market.ticks\""
        );
        let err = spec(&[("v", "vwap(price, side)")])
            .validate(&schema)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "aggregate \"v\" = \"vwap(price, side)\": field \"side\" is string, not numeric"
        );
        let err = spec(&[("m", "max(maker)")]).validate(&schema).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonNumericField {
                    field_type: "bool",
                    ..
                }
            ),
            "{err}"
        );
        // A tag is not a number either.
        let err = spec(&[("m", "sum(venue)")]).validate(&schema).unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownColumn {
                expected: "numeric field",
                ..
            }
        ));
        // Implicit columns are not aggregatable.
        let err = spec(&[("t", "max(ts)")]).validate(&schema).unwrap_err();
        assert!(matches!(err, Error::UnknownColumn { .. }), "{err}");
        let err = spec(&[("d", "distinct(nope)")])
            .validate(&schema)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownColumn {
                expected: "tag or field",
                ..
            }
        ));
        let err = spec(&[("d", "count(id)")]).validate(&schema).unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownColumn {
                expected: "tag or field",
                ..
            }
        ));
    }

    #[test]
    fn rejects_bad_names_duplicates_and_clashes() {
        let schema = schema();
        let mut bad = spec(&[("n", "count")]);
        bad.name = "Bars".into();
        assert!(matches!(
            bad.validate(&schema),
            Err(Error::InvalidName(
                tidewatch_types::SchemaError::InvalidName { what: "rollup", .. }
            ))
        ));

        let err = spec(&[("Total", "count")]).validate(&schema).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidName(tidewatch_types::SchemaError::InvalidName { what: "aggregate", name, .. }) if name == "Total"),
            "{err}"
        );

        let err = spec(&[("n", "count"), ("n", "sum(size)")])
            .validate(&schema)
            .unwrap_err();
        assert_eq!(err, Error::DuplicateAggregate("n".into()));

        let err = spec(&[("symbol", "count")]).validate(&schema).unwrap_err();
        assert_eq!(
            err.to_string(),
            "aggregate output \"symbol\" clashes with a group_by tag"
        );
        for reserved in RESERVED_OUTPUTS {
            let err = spec(&[(reserved, "count")]).validate(&schema).unwrap_err();
            assert!(
                matches!(err, Error::AggregateNameClash { .. }),
                "{reserved}"
            );
        }
        // A tag that is not grouped on may be used as an output name.
        spec(&[("venue", "distinct(venue)")])
            .validate(&schema)
            .unwrap();

        let mut bad = spec(&[("n", "count")]);
        bad.group_by = vec!["symbol".into(), "symbol".into()];
        assert_eq!(
            bad.validate(&schema),
            Err(Error::DuplicateGroupTag("symbol".into()))
        );
        bad.group_by = vec!["price".into()];
        assert_eq!(
            bad.validate(&schema).unwrap_err().to_string(),
            "group_by tag \"price\" is not a tag of stream \"market.ticks\""
        );

        let mut bad = spec(&[("n", "count")]);
        bad.windows.clear();
        assert_eq!(bad.validate(&schema), Err(Error::NoWindows));
        bad.windows = vec!["1m".parse().unwrap(), "60s".parse().unwrap()];
        assert_eq!(
            bad.validate(&schema).unwrap_err().to_string(),
            "window 1m is listed twice"
        );
        assert_eq!(spec(&[]).validate(&schema), Err(Error::NoAggregates));
    }

    #[test]
    fn json_round_trip_keeps_aggregate_order() {
        let json = r#"{"name": "bars", "group_by": ["symbol"], "windows": ["1m","5m"],
            "aggregates": {"n": "count", "volume": "sum(size)", "vwap": "vwap(price, size)",
                           "high": "max(price)", "open": "first(price)", "avg": "avg(price)"}}"#;
        let parsed: RollupSpec = serde_json::from_str(json).unwrap();
        let names: Vec<&str> = parsed.aggregates.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["n", "volume", "vwap", "high", "open", "avg"]);
        parsed.validate(&schema()).unwrap();

        let text = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            text,
            r#"{"name":"bars","group_by":["symbol"],"windows":["1m","5m"],"aggregates":{"n":"count","volume":"sum(size)","vwap":"vwap(price, size)","high":"max(price)","open":"first(price)","avg":"mean(price)"}}"#
        );
        assert_eq!(serde_json::from_str::<RollupSpec>(&text).unwrap(), parsed);

        // group_by defaults to no grouping.
        let ungrouped: RollupSpec =
            serde_json::from_str(r#"{"name":"all","windows":["1h"],"aggregates":{"n":"count"}}"#)
                .unwrap();
        assert!(ungrouped.group_by.is_empty());
    }

    #[test]
    fn json_rejects_duplicates_bad_expressions_and_unknown_keys() {
        let dup = r#"{"name":"b","windows":["1m"],"aggregates":{"n":"count","n":"sum(size)"}}"#;
        let err = serde_json::from_str::<RollupSpec>(dup)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aggregate output \"n\" is declared twice"),
            "{err}"
        );

        let bad = r#"{"name":"b","windows":["1m"],"aggregates":{"n":"median(size)"}}"#;
        let err = serde_json::from_str::<RollupSpec>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown function \"median\""), "{err}");

        let typo =
            r#"{"name":"b","groupby":["symbol"],"windows":["1m"],"aggregates":{"n":"count"}}"#;
        assert!(serde_json::from_str::<RollupSpec>(typo).is_err());

        let list = r#"{"name":"b","windows":["1m"],"aggregates":["count"]}"#;
        assert!(serde_json::from_str::<RollupSpec>(list).is_err());
    }
}
