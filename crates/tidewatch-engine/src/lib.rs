//! Engine: the catalog, the durable write path and recovery, queries and live subscriptions
