//! Hot store: Arrow column builders per stream and hour, sealed into immutable record batches
