//! Event ids for generated batches, without a system call per event.

use tidewatch_types::EventId;
use tidewatch_types::time::now_ms;

const COUNTER_BITS: u32 = 74;
const RAND_B_BITS: u32 = 62;

/// Consecutive UUIDv7 ids: the wall-clock millisecond at which the sequence starts, then a
/// 74-bit counter from a random start (RFC 9562 section 6.2, method 2, randomly seeded).
/// Ids are unique (a random start among 2^73) and increase in generation order, so ties of
/// `(ts, id)` in `first`/`last` break the same way on every run. One sequence per batch:
/// `tidewatch_ingest::ids::assign_id` reads fresh random bytes from the OS for every id,
/// which costs more than generating the event itself.
pub struct IdSequence {
    millis: u128,
    counter: u128,
}

impl IdSequence {
    pub fn starting_now() -> Self {
        let millis = u128::try_from(now_ms()).unwrap_or(0) & ((1 << 48) - 1);
        // The counter's top bit starts clear, so 2^73 ids follow before it could wrap.
        let counter = rand::random::<u128>() & ((1 << (COUNTER_BITS - 1)) - 1);
        IdSequence { millis, counter }
    }

    pub fn next_id(&mut self) -> EventId {
        let counter = self.counter & ((1 << COUNTER_BITS) - 1);
        self.counter += 1;
        let rand_a = counter >> RAND_B_BITS;
        let rand_b = counter & ((1 << RAND_B_BITS) - 1);
        (self.millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    }
}

#[cfg(test)]
mod tests {
    use tidewatch_ingest::ids::{format_id, parse_id};

    use super::*;

    #[test]
    fn ids_are_version_7_uuids_that_increase_and_differ_between_sequences() {
        let before = now_ms();
        let mut sequence = IdSequence::starting_now();
        let ids: Vec<EventId> = (0..10_000).map(|_| sequence.next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for &id in [ids[0], ids[9_999]].iter() {
            let text = format_id(id);
            assert_eq!(parse_id(&text), Some(id));
            assert_eq!(&text[14..15], "7", "version 7: {text}");
            assert!(
                matches!(&text[19..20], "8" | "9" | "a" | "b"),
                "variant: {text}"
            );
            let millis = (id >> 80) as i64;
            assert!((before..=now_ms()).contains(&millis));
        }
        let other = IdSequence::starting_now().next_id();
        assert!(!ids.contains(&other));
    }
}
