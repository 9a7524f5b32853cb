//! Ingest: turns a request body (JSON array or NDJSON) into a validated [`EventBatch`] for
//! one stream, with every rejected row named by position and field.
//!
//! Layout:
//! - [`parse`]: the streaming parser; it validates each row straight into column vectors,
//!   without building an intermediate JSON tree.
//! - [`ids`]: producer-given ids and time-ordered (UUIDv7) ids assigned at ingest.
//!
//! Validation policy (documented for users in `docs/ingest.md`):
//! - every row needs `ts` (RFC 3339 string or epoch milliseconds) inside the accepted range;
//! - tags are strings or null; fields must match their declared type; null or an omitted
//!   field is stored as null; integers are accepted for `f64` fields, not the other way round;
//! - a key the schema does not declare is an error (typos would otherwise vanish silently);
//! - `id`, when given, is a UUID in its canonical text form.

pub mod ids;
pub mod parse;

pub use parse::{Format, IngestError, IngestLimits, ParsedBatch, RowError, parse_batch};
