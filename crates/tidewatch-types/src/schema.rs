//! Stream schemas: a stream is `ts`, an optional producer id, tags and typed fields.

use serde::{Deserialize, Serialize};

/// Longest accepted stream, tag, field or rollup name.
pub const MAX_NAME_LEN: usize = 64;
/// Most tags plus fields a stream may declare.
pub const MAX_COLUMNS: usize = 256;
/// Column names every stream has implicitly.
pub const RESERVED_COLUMNS: [&str; 2] = ["ts", "id"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("column {0:?} is declared twice")]
    DuplicateColumn(String),
    #[error("column {0:?} is reserved")]
    ReservedColumn(String),
    #[error("a stream may declare at most {MAX_COLUMNS} tags and fields, got {0}")]
    TooManyColumns(usize),
}

/// The type of a field column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    F64,
    I64,
    Bool,
    #[serde(rename = "string")]
    Str,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::F64 => "f64",
            FieldType::I64 => "i64",
            FieldType::Bool => "bool",
            FieldType::Str => "string",
        }
    }

    /// Whether aggregates such as `sum` and `vwap` can read this field as a number.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::F64 | FieldType::I64)
    }
}

/// A declared field: its name and type. Fields keep their declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// The schema of one stream. Tags are low-cardinality strings (dictionary-encoded in
/// storage, usable in `group_by` and filters); fields carry the measurements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSchema {
    pub name: String,
    pub tags: Vec<String>,
    pub fields: Vec<FieldDef>,
}

/// Where a named column lives in an [`crate::EventBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRef {
    Ts,
    Id,
    Tag(usize),
    Field(usize, FieldType),
}

impl StreamSchema {
    /// Builds and validates a schema.
    pub fn new(
        name: impl Into<String>,
        tags: Vec<String>,
        fields: Vec<FieldDef>,
    ) -> Result<Self, SchemaError> {
        let schema = StreamSchema {
            name: name.into(),
            tags,
            fields,
        };
        schema.validate()?;
        Ok(schema)
    }

    /// Checks names, duplicates and reserved columns.
    pub fn validate(&self) -> Result<(), SchemaError> {
        validate_name("stream", &self.name, true)?;
        let column_count = self.tags.len() + self.fields.len();
        if column_count > MAX_COLUMNS {
            return Err(SchemaError::TooManyColumns(column_count));
        }
        let mut seen = std::collections::HashSet::new();
        let names = self
            .tags
            .iter()
            .map(|t| ("tag", t.as_str()))
            .chain(self.fields.iter().map(|f| ("field", f.name.as_str())));
        for (what, name) in names {
            validate_name(what, name, false)?;
            if RESERVED_COLUMNS.contains(&name) {
                return Err(SchemaError::ReservedColumn(name.to_owned()));
            }
            if !seen.insert(name) {
                return Err(SchemaError::DuplicateColumn(name.to_owned()));
            }
        }
        Ok(())
    }

    pub fn column(&self, name: &str) -> Option<ColumnRef> {
        match name {
            "ts" => return Some(ColumnRef::Ts),
            "id" => return Some(ColumnRef::Id),
            _ => {}
        }
        if let Some(i) = self.tags.iter().position(|t| t == name) {
            return Some(ColumnRef::Tag(i));
        }
        self.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| ColumnRef::Field(i, self.fields[i].field_type))
    }

    pub fn tag_index(&self, name: &str) -> Option<usize> {
        self.tags.iter().position(|t| t == name)
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// Names start with a lowercase letter and continue with lowercase letters, digits and `_`;
/// stream names may also contain `.` to namespace domains (`market.ticks`).
pub fn validate_name(what: &'static str, name: &str, allow_dots: bool) -> Result<(), SchemaError> {
    let invalid = |reason| SchemaError::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid("must be 1 to 64 characters"));
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Err(invalid("must start with a lowercase letter"));
    }
    let allowed = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_dots && c == '.')
    };
    if !chars.all(allowed) {
        return Err(invalid(if allow_dots {
            "may contain only a-z, 0-9, '_' and '.'"
        } else {
            "may contain only a-z, 0-9 and '_'"
        }));
    }
    if name.ends_with('.') || name.contains("..") {
        return Err(invalid("dots must separate non-empty parts"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, field_type: FieldType) -> FieldDef {
        FieldDef {
            name: name.into(),
            field_type,
        }
    }

    #[test]
    fn valid_schema_resolves_columns() {
        let schema = StreamSchema::new(
            "market.ticks",
            vec!["symbol".into()],
            vec![field("price", FieldType::F64)],
        )
        .unwrap();
        assert_eq!(schema.column("symbol"), Some(ColumnRef::Tag(0)));
        assert_eq!(
            schema.column("price"),
            Some(ColumnRef::Field(0, FieldType::F64))
        );
        assert_eq!(schema.column("ts"), Some(ColumnRef::Ts));
        assert_eq!(schema.column("nope"), None);
    }

    #[test]
    fn rejects_bad_names_duplicates_and_reserved_columns() {
        assert!(matches!(
            StreamSchema::new("Ticks", vec![], vec![]),
            Err(SchemaError::InvalidName { .. })
        ));
        assert!(matches!(
            StreamSchema::new("a..b", vec![], vec![]),
            Err(SchemaError::InvalidName { .. })
        ));
        assert!(matches!(
            StreamSchema::new("t", vec!["sym.bol".into()], vec![]),
            Err(SchemaError::InvalidName { .. })
        ));
        assert_eq!(
            StreamSchema::new("t", vec!["x".into()], vec![field("x", FieldType::I64)]),
            Err(SchemaError::DuplicateColumn("x".into()))
        );
        assert_eq!(
            StreamSchema::new("t", vec!["ts".into()], vec![]),
            Err(SchemaError::ReservedColumn("ts".into()))
        );
    }

    #[test]
    fn field_types_use_their_documented_json_names() {
        let json = serde_json::to_string(&[FieldType::F64, FieldType::Str]).unwrap();
        assert_eq!(json, r#"["f64","string"]"#);
    }
}
