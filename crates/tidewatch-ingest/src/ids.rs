//! Event ids: the producer's UUID when given (making a re-sent batch idempotent), otherwise
//! a UUIDv7 assigned at ingest, so ids sort by ingest time.

use tidewatch_types::EventId;
use uuid::Uuid;

/// A fresh time-ordered id. `uuid` keeps v7 ids monotonic within the process.
pub fn assign_id() -> EventId {
    Uuid::now_v7().as_u128()
}

/// Parses a producer-given id.
pub fn parse_id(text: &str) -> Option<EventId> {
    Uuid::try_parse(text).ok().map(|u| u.as_u128())
}

/// The canonical text form of an id, as the API returns it.
pub fn format_id(id: EventId) -> String {
    Uuid::from_u128(id).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_ids_increase() {
        let ids: Vec<EventId> = (0..1000).map(|_| assign_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = assign_id();
        assert_eq!(parse_id(&format_id(id)), Some(id));
        assert_eq!(parse_id("not-a-uuid"), None);
    }
}
