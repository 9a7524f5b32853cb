//! Live rollups: mergeable partial aggregates over tumbling windows with watermarks
