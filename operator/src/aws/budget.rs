//! The AWS call budget: token buckets per service and call class, shared by every reconcile
//! (DESIGN.md invariant 5), set below AWS's published limits so the operator is throttled by
//! itself, not by AWS.
//!
//! Every AWS call the operator makes first waits on [`Budget::acquire`] for its service and class.
//! A class may draw on two buckets at once: for the services whose limit is account-wide
//! (ELBv2, Route53, ACM), every call also takes a token from the service's `Read` bucket, which
//! stands for the account-wide bucket.
//!
//! **Why below, not at, AWS's numbers.** A token released here reaches AWS after a delay that
//! varies per request (connection setup, scheduling on a busy host, the network), so two calls
//! released `1/rate` apart can arrive closer together. A stream shaped to `(rate r, burst b)`
//! arrives shaped to `(r, b + r*J)` after a jitter of up to `J` seconds, so buckets equal to
//! AWS's would be throttled now and then. Each default is about 80% of AWS's rate, with a burst
//! smaller than AWS's where AWS's is above one: that tolerates `(b_aws - b_ours) / r_ours`
//! seconds of jitter (0.25 s for ECS writes, Route53 and ACM, 0.4 s for ELBv2 writes, 1 s for
//! the ELBv2 account bucket), and the lower rate lets AWS's bucket refill during any pause.
//! RegisterTaskDefinition (burst 1) relies on the rate alone: calls leave 1.25 s apart, so each
//! may arrive up to 0.25 s early. The benchmark (`docs/benchmarks.md`)
//! checks this against a proxy that enforces AWS's buckets: 0 throttles is the target.
//!
//! The SDK's own retries (standard mode, 5 attempts, `operator/src/aws/sdk.rs`) do not pass
//! through the budget: a retry is sent without waiting for a token. That only happens after an
//! answer that asked for a retry (a throttle, a 5xx, a dropped connection), and the SDK backs
//! off exponentially between attempts.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

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

/// A rate: `per_second` sustained (fractions allowed: 0.8 is one call every 1.25 s), `burst`
/// at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

const fn rate(per_second: f64, burst: u32) -> Rate {
    Rate { per_second, burst }
}

/// Services whose limit is account-wide: every call, read or write, also draws on the
/// service's `Read` bucket.
fn account_wide(service: Service) -> bool {
    matches!(service, Service::Elbv2 | Service::Route53 | Service::Acm)
}

/// The default buckets, about 80% of AWS's published limits (DESIGN.md invariant 5; see the
/// module doc for why below and not at them). AWS's numbers, as the benchmark's proxy enforces
/// them (`tests/src/bucket_proxy.rs`), are in the comments. For ELBv2, Route53 and ACM the
/// `Read` bucket is the account-wide one: writes draw on it too.
///
/// Route53 is 4/s because AWS allows five requests per second per account for the whole
/// Route53 API (DESIGN.md's 10/s is above that). Where DESIGN gives no burst, AWS's is taken as
/// one second's worth (the strictest reading).
pub fn default_rates() -> Vec<((Service, CallClass), Rate)> {
    use CallClass::*;
    use Service::*;
    vec![
        ((Ecs, Read), rate(16.0, 80)),                  // AWS: 20/s, burst 100
        ((Ecs, Write), rate(4.0, 4)),                   // AWS: 5/s
        ((Ecs, RegisterTaskDefinition), rate(0.8, 1)),  // AWS: 1/s
        ((Elbv2, Read), rate(8.0, 32)),                 // AWS: 10/s, burst 40, account-wide
        ((Elbv2, Write), rate(2.4, 2)),                 // AWS: 3/s
        ((Route53, Read), rate(4.0, 4)),                // AWS: 5/s per account, everything
        ((Route53, Write), rate(4.0, 4)),               // (also draws on Read)
        ((Acm, Read), rate(8.0, 8)),                    // AWS: 10/s
        ((Acm, Write), rate(8.0, 8)),                   // (also draws on Read)
        ((Acm, RequestCertificate), rate(4.0, 4)),      // AWS: 5/s
        ((Ecr, Read), rate(20.0, 20)),
        ((Ecr, Write), rate(10.0, 10)),
        ((ApplicationAutoScaling, Read), rate(10.0, 10)),
        ((ApplicationAutoScaling, Write), rate(5.0, 5)),
        ((S3, Read), rate(50.0, 100)),
        ((S3, Write), rate(50.0, 100)),
        ((DynamoDb, Read), rate(50.0, 100)),
        ((DynamoDb, Write), rate(50.0, 100)),
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
                let burst = NonZeroU32::new(r.burst.max(1)).expect("at least 1");
                // One token every `1/per_second` seconds (at least one per hour, at most one
                // per microsecond).
                let period = Duration::from_secs_f64(1.0 / r.per_second.clamp(1.0 / 3600.0, 1e6));
                let quota = Quota::with_period(period)
                    .expect("a non-zero period")
                    .allow_burst(burst);
                (*k, RateLimiter::direct_with_clock(quota, C::clone(clock)))
            })
            .collect();
        Budget {
            buckets: Arc::new(buckets),
        }
    }

    /// The buckets a call draws on: its own class (falling back to the service's `Write`
    /// bucket for the special write classes), plus the account-wide bucket (the service's
    /// `Read` one) for the writes of ELBv2, Route53 and ACM.
    fn buckets_for(&self, service: Service, class: CallClass) -> Vec<&Limiter<C>> {
        let mut out = Vec::new();
        let own = self
            .buckets
            .get(&(service, class))
            .or_else(|| self.buckets.get(&(service, CallClass::Write)));
        out.extend(own);
        if account_wide(service) && class != CallClass::Read {
            out.extend(self.buckets.get(&(service, CallClass::Read)));
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
    fn ecs_describes_burst_to_80_then_refill_at_16_per_second() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Ecs, CallClass::Read), 80);
        clock.advance(Duration::from_secs(1));
        assert_eq!(drain(&b, Service::Ecs, CallClass::Read), 16);
    }

    #[test]
    fn register_task_definition_is_one_every_1_25_seconds_and_separate_from_other_writes() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(
            drain(&b, Service::Ecs, CallClass::RegisterTaskDefinition),
            1
        );
        assert_eq!(drain(&b, Service::Ecs, CallClass::Write), 4);
        clock.advance(Duration::from_millis(1200));
        assert_eq!(
            drain(&b, Service::Ecs, CallClass::RegisterTaskDefinition),
            0
        );
        clock.advance(Duration::from_millis(50));
        assert_eq!(
            drain(&b, Service::Ecs, CallClass::RegisterTaskDefinition),
            1
        );
    }

    #[test]
    fn elbv2_writes_also_draw_on_the_account_wide_elbv2_bucket() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Elbv2, CallClass::Write), 2);
        // 2 of the 32 account-wide tokens went to the writes.
        assert_eq!(drain(&b, Service::Elbv2, CallClass::Read), 30);
    }

    #[test]
    fn route53_reads_and_writes_share_one_account_wide_bucket_of_four() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Route53, CallClass::Read), 4);
        assert_eq!(drain(&b, Service::Route53, CallClass::Write), 0);
        clock.advance(Duration::from_secs(1));
        assert_eq!(drain(&b, Service::Route53, CallClass::Write), 4);
        assert_eq!(drain(&b, Service::Route53, CallClass::Read), 0);
    }

    #[test]
    fn request_certificate_has_its_own_bucket_of_four_inside_the_acm_one() {
        let clock = FakeRelativeClock::default();
        let b = budget(&clock);
        assert_eq!(drain(&b, Service::Acm, CallClass::RequestCertificate), 4);
        assert_eq!(drain(&b, Service::Acm, CallClass::Read), 4);
    }
}
