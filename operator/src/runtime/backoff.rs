//! Per-key failure backoff: exponential with jitter, capped (docs/design.md, runtime invariant 4).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How failures back off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub min: Duration,
    pub max: Duration,
    /// Add up to 100% random jitter to each delay (still capped at `max`).
    pub jitter: bool,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        }
    }
}

/// The backoff state of one key: the next delay grows with each failure, up to `max`.
#[derive(Debug)]
pub struct KeyBackoff {
    inner: ExponentialBackoff,
    max: Duration,
    failures: u32,
}

impl KeyBackoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        let mut b = ExponentialBuilder::default()
            .with_min_delay(policy.min)
            .with_max_delay(policy.max)
            .with_factor(2.0)
            .without_max_times();
        if policy.jitter {
            b = b.with_jitter();
        }
        KeyBackoff {
            inner: b.build(),
            max: policy.max,
            failures: 0,
        }
    }

    /// The delay after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        self.failures += 1;
        self.inner.next().unwrap_or(self.max).min(self.max)
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_min_up_to_max_without_jitter() {
        let mut b = KeyBackoff::new(BackoffPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: false,
        });
        let d: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(b.failures(), 6);
    }

    #[test]
    fn jittered_delays_stay_between_the_base_and_twice_it_and_under_the_cap() {
        let policy = BackoffPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        };
        let mut b = KeyBackoff::new(policy);
        let mut base = Duration::from_secs(1);
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(
                d >= base.min(policy.max) && d <= (base * 2).min(policy.max),
                "{d:?} for base {base:?}"
            );
            base = (base * 2).min(policy.max);
        }
    }
}
