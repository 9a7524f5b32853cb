//! Ingest: parses JSON and NDJSON rows against a stream schema into validated event batches
