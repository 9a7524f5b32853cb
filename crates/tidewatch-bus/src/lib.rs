//! Bus: topics, per-subscription sequence numbers and bounded client queues
