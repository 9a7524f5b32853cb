//! Exponential backoff between connection attempts, with jitter.

use std::time::Duration;

use rand::Rng;

/// The first wait after a failure.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Floor of the cap, so a zero `max_backoff` cannot turn retries into a busy loop.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// Waits of 500 ms, 1 s, 2 s, ... up to a cap; each one drawn between half and all of the
/// step, so many clients dropped at once do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    step: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(cap: Duration) -> Self {
        let cap = cap.max(MIN_BACKOFF);
        Backoff {
            step: INITIAL_BACKOFF.min(cap),
            cap,
        }
    }

    /// The wait before the next attempt; the step after it doubles, up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.next_step();
        step.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Starts again from the initial step, after a connection that stayed up.
    pub(crate) fn reset(&mut self) {
        self.step = INITIAL_BACKOFF.min(self.cap);
    }

    /// The current step without jitter, and doubles the next one.
    fn next_step(&mut self) -> Duration {
        let step = self.step;
        self.step = self.step.saturating_mul(2).min(self.cap);
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn steps_double_from_500_ms_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let steps: Vec<Duration> = (0..7).map(|_| backoff.next_step()).collect();
        assert_eq!(
            steps,
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(5000),
                ms(5000),
                ms(5000)
            ]
        );
        backoff.reset();
        assert_eq!(backoff.next_step(), ms(500));
    }

    #[test]
    fn jittered_delays_stay_between_half_and_all_of_the_step() {
        let mut backoff = Backoff::new(Duration::from_secs(30));
        for step in [500, 1000, 2000, 4000] {
            let delay = backoff.next_delay();
            assert!(
                delay >= ms(step / 2) && delay <= ms(step),
                "{delay:?} for {step} ms"
            );
        }
    }

    #[test]
    fn a_cap_below_the_initial_step_is_used_from_the_start_and_never_zero() {
        let mut backoff = Backoff::new(ms(200));
        assert_eq!(backoff.next_step(), ms(200));
        assert_eq!(backoff.next_step(), ms(200));
        let mut backoff = Backoff::new(Duration::ZERO);
        assert_eq!(backoff.next_step(), MIN_BACKOFF);
    }
}
