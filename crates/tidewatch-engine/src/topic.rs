//! Live topic names: `stream.<stream>` carries raw events,
//! `rollup.<stream>.<rollup>.<window>` carries window rows. Stream names may contain dots,
//! rollup names and windows may not, so a rollup topic is read from the right.

use tidewatch_types::WindowWidth;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    Stream {
        stream: String,
    },
    Rollup {
        stream: String,
        rollup: String,
        window: WindowWidth,
    },
}

impl Topic {
    pub fn parse(text: &str) -> Result<Topic, String> {
        if let Some(stream) = text.strip_prefix("stream.") {
            if stream.is_empty() {
                return Err("topic \"stream.<name>\" needs a stream name".into());
            }
            return Ok(Topic::Stream {
                stream: stream.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("rollup.") {
            let mut parts = rest.rsplitn(3, '.');
            let (Some(window), Some(rollup), Some(stream)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "topic {text:?} must look like rollup.<stream>.<rollup>.<window>"
                ));
            };
            let window = window
                .parse::<WindowWidth>()
                .map_err(|e| format!("topic {text:?}: {e}"))?;
            return Ok(Topic::Rollup {
                stream: stream.to_owned(),
                rollup: rollup.to_owned(),
                window,
            });
        }
        Err(format!(
            "unknown topic {text:?}: topics are stream.<stream> or rollup.<stream>.<rollup>.<window>"
        ))
    }

    pub fn stream(&self) -> &str {
        match self {
            Topic::Stream { stream } | Topic::Rollup { stream, .. } => stream,
        }
    }
}

pub fn stream_topic(stream: &str) -> String {
    format!("stream.{stream}")
}

pub fn rollup_topic(stream: &str, rollup: &str, window: WindowWidth) -> String {
    format!("rollup.{stream}.{rollup}.{window}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_including_dotted_stream_names() {
        assert_eq!(
            Topic::parse("stream.market.ticks").unwrap(),
            Topic::Stream {
                stream: "market.ticks".into()
            }
        );
        let t = Topic::parse("rollup.market.ticks.bars.5m").unwrap();
        assert_eq!(
            t,
            Topic::Rollup {
                stream: "market.ticks".into(),
                rollup: "bars".into(),
                window: "5m".parse().unwrap()
            }
        );
        assert_eq!(
            rollup_topic("market.ticks", "bars", "5m".parse().unwrap()),
            "rollup.market.ticks.bars.5m"
        );
        for bad in ["alerts.x", "stream.", "rollup.x.5m", "rollup.s.r.7x"] {
            assert!(Topic::parse(bad).is_err(), "{bad}");
        }
    }
}
