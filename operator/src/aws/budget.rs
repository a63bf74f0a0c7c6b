//! The AWS call budget: token buckets per service and call class, shared by every reconcile
//! (DESIGN.md invariant 5), set below AWS's published limits so the operator is throttled by
//! itself, not by AWS.
//!
//! Every AWS call the operator makes first waits on [`Budget::acquire`] for its service and class.
//! A class may draw on two buckets at once: ELBv2 writes take a write token and an account-wide
//! ELBv2 token.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// An AWS service the operator calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Ecs,
    Elbv2,
    Route53,
    Acm,
    Ecr,
    ApplicationAutoScaling,
    S3,
    DynamoDb,
}

/// What kind of call, for services whose limits differ by call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallClass {
    Read,
    Write,
    /// ECS RegisterTaskDefinition (1/s).
    RegisterTaskDefinition,
    /// ACM RequestCertificate (5/s).
    RequestCertificate,
}

/// A rate: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

const fn rate(per_second: u32, burst: u32) -> Rate {
    Rate { per_second, burst }
}

/// The default buckets, below AWS's published limits (DESIGN.md invariant 5). The ELBv2
/// account-wide bucket is `(Elbv2, Read)`: every ELBv2 call draws on it.
pub fn default_rates() -> Vec<((Service, CallClass), Rate)> {
    use CallClass::*;
    use Service::*;
    vec![
        ((Ecs, Read), rate(20, 100)),
        ((Ecs, Write), rate(5, 5)),
        ((Ecs, RegisterTaskDefinition), rate(1, 1)),
        ((Elbv2, Read), rate(10, 40)),
        ((Elbv2, Write), rate(3, 3)),
        ((Route53, Read), rate(10, 10)),
        ((Route53, Write), rate(10, 10)),
        ((Acm, Read), rate(10, 10)),
        ((Acm, Write), rate(10, 10)),
        ((Acm, RequestCertificate), rate(5, 5)),
        ((Ecr, Read), rate(20, 20)),
        ((Ecr, Write), rate(10, 10)),
        ((ApplicationAutoScaling, Read), rate(10, 10)),
        ((ApplicationAutoScaling, Write), rate(5, 5)),
        ((S3, Read), rate(50, 100)),
        ((S3, Write), rate(50, 100)),
        ((DynamoDb, Read), rate(50, 100)),
        ((DynamoDb, Write), rate(50, 100)),
    ]
}

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The shared token buckets. Cheap to clone.
pub struct Budget<C: Clock = DefaultClock> {
    buckets: Arc<HashMap<(Service, CallClass), Limiter<C>>>,
}

impl<C: Clock> Clone for Budget<C> {
    fn clone(&self) -> Self {
        Budget {
            buckets: self.buckets.clone(),
        }
    }
}

impl Default for Budget<DefaultClock> {
    fn default() -> Self {
        Budget::with_rates(&default_rates(), &DefaultClock::default())
    }
}

impl<C: Clock + Clone> Budget<C> {
    /// Buckets at the given rates, on `clock` (tests use a fake one).
    pub fn with_rates(rates: &[((Service, CallClass), Rate)], clock: &C) -> Self {
        let buckets = rates
            .iter()
            .map(|(k, r)| {
                let per_second = NonZeroU32::new(r.per_second.max(1)).expect("at least 1");
                let burst = NonZeroU32::new(r.burst.max(1)).expect("at least 1");
                (
                    *k,
                    RateLimiter::direct_with_clock(
                        Quota::per_second(per_second).allow_burst(burst),
                        C::clone(clock),
                    ),
                )
            })
            .collect();
        Budget {
            buckets: Arc::new(buckets),
        }
    }

    /// The buckets a call draws on: its own class (falling back to the service's `Write`
    /// bucket for the special write classes), plus the ELBv2 account-wide bucket for ELBv2 writes.
    fn buckets_for(&self, service: Service, class: CallClass) -> Vec<&Limiter<C>> {
        let mut out = Vec::new();
        let own = self
            .buckets
            .get(&(service, class))
            .or_else(|| self.buckets.get(&(service, CallClass::Write)));
        out.extend(own);
        if service == Service::Elbv2 && class != CallClass::Read {
            out.extend(self.buckets.get(&(Service::Elbv2, CallClass::Read)));
        }
        out
    }

    /// Take a token from each of the call's buckets without waiting; false when one is empty.
    /// Buckets are checked own-class first, so an empty write bucket never spends account-wide
    /// tokens; a token taken before a later bucket turns out empty is spent (governor cannot
    /// return it).
    pub fn try_acquire(&self, service: Service, class: CallClass) -> bool {
        self.buckets_for(service, class)
            .iter()
            .all(|b| b.check().is_ok())
    }
}

impl Budget<DefaultClock> {
    /// Wait until the call may be made.
    pub async fn acquire(&self, service: Service, class: CallClass) {
        for bucket in self.buckets_for(service, class) {
            loop {
                match bucket.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(DefaultClock::default().now());
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn budget(clock: &FakeRelativeClock) -> Budget<FakeRelativeClock> {
        Budget::with_rates(&default_rates(), clock)
    }

    fn drain(b: &Budget<FakeRelativeClock>, s: Service, c: CallClass) -> u32 {
        let mut n = 0;
        while b.try_acquire(s, c) {
            n += 1;
            assert!(n < 10_000, "bucket never empties");
        }
        n
    }

    #[test]
    fn ecs_describes_burst_to_100_then_refill_at_20_per_second() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Ecs, CallClass::Read), 100);
        clock.advance(Duration::from_secs(1));
        assert_eq!(drain(&b, Service::Ecs, CallClass::Read), 20);
    }

    #[test]
    fn register_task_definition_is_one_per_second_and_separate_from_other_writes() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(
            drain(&b, Service::Ecs, CallClass::RegisterTaskDefinition),
            1
        );
        assert_eq!(drain(&b, Service::Ecs, CallClass::Write), 5);
        clock.advance(Duration::from_secs(3));
        assert_eq!(
            drain(&b, Service::Ecs, CallClass::RegisterTaskDefinition),
            1
        );
    }

    #[test]
    fn elbv2_writes_also_draw_on_the_account_wide_elbv2_bucket() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Elbv2, CallClass::Write), 3);
        // 3 of the 40 account-wide tokens went to the writes.
        assert_eq!(drain(&b, Service::Elbv2, CallClass::Read), 37);
    }

    #[test]
    fn request_certificate_has_its_own_bucket_of_five() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Acm, CallClass::RequestCertificate), 5);
        assert_eq!(drain(&b, Service::Acm, CallClass::Read), 10);
    }
}
