//! A proxy between the operator and moto that enforces AWS's published API rate limits as token
//! buckets, and answers a request beyond them with throttling in its protocol's own shape
//! (without forwarding it, as AWS would), counting it per service and operation.
//!
//! It is the "AWS" of the benchmark (`docs/benchmarks.md`): the operator's own buckets
//! (`operator/src/aws/budget.rs`) must keep it under these, so the target is 0 throttles.
//!
//! The buckets, per account (docs/design.md, runtime invariant 5, except Route53, whose published limit is
//! 5 requests per second per account for the whole API, below the design's 10/s):
//!
//! | bucket | requests | rate /s | burst |
//! |---|---|---|---|
//! | `ecs-read` | ECS `Describe*`, `List*` | 20 | 100 |
//! | `ecs-write` | every other ECS call but RegisterTaskDefinition (service, cluster and tag writes, pooled) | 5 | 5 |
//! | `ecs-register-td` | ECS RegisterTaskDefinition | 1 | 1 |
//! | `elbv2-account` | every ELBv2 call | 10 | 40 |
//! | `elbv2-write` | ELBv2 calls that change state (also take an `elbv2-account` token) | 3 | 3 |
//! | `route53` | every Route53 call | 5 | 5 |
//! | `acm` | every ACM call | 10 | 10 |
//! | `acm-request` | ACM RequestCertificate (also takes an `acm` token) | 5 | 5 |
//! | `ecr` | every ECR call (generous) | 50 | 100 |
//! | `app-autoscaling` | every Application Auto Scaling call (generous) | 50 | 100 |
//! | `s3`, `dynamodb` | the stores (generous) | 50 | 100 |
//!
//! Anything else (EC2, STS, Auto Scaling) is not limited. Where docs/design.md gives a rate but no
//! burst, the burst is one second's worth (the strictest reading). Buckets refill continuously
//! (`rate` tokens per second, up to `burst`); a request takes one token from each of its
//! buckets, only if each has one (a throttled request takes nothing, as with AWS). A request is
//! decided when it has been read in full, before it is forwarded, so moto's own slowness never
//! counts against the operator.
//!
//! Which requests: the service comes from the SigV4 credential scope, the operation from
//! `X-Amz-Target`, the query `Action=` or Route53's REST path ([`crate::proxy::Request::call`]);
//! "changes state" is the operator's own definition (`is_mutating`: not Describe/List/Get/Head).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proxy::{throttle_answer, Action, AwsService, Call, Policy, Request, Server};

/// One of AWS's token buckets, as the proxy models them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    EcsRead,
    EcsWrite,
    EcsRegisterTaskDefinition,
    Elbv2Account,
    Elbv2Write,
    Route53,
    Acm,
    AcmRequestCertificate,
    Ecr,
    ApplicationAutoScaling,
    S3,
    DynamoDb,
}

/// A bucket's refill rate (tokens per second) and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
}

const fn limit(rate: f64, burst: f64) -> Limit {
    Limit { rate, burst }
}

impl Bucket {
    pub const ALL: [Bucket; 12] = [
        Bucket::EcsRead,
        Bucket::EcsWrite,
        Bucket::EcsRegisterTaskDefinition,
        Bucket::Elbv2Account,
        Bucket::Elbv2Write,
        Bucket::Route53,
        Bucket::Acm,
        Bucket::AcmRequestCertificate,
        Bucket::Ecr,
        Bucket::ApplicationAutoScaling,
        Bucket::S3,
        Bucket::DynamoDb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bucket::EcsRead => "ecs-read",
            Bucket::EcsWrite => "ecs-write",
            Bucket::EcsRegisterTaskDefinition => "ecs-register-td",
            Bucket::Elbv2Account => "elbv2-account",
            Bucket::Elbv2Write => "elbv2-write",
            Bucket::Route53 => "route53",
            Bucket::Acm => "acm",
            Bucket::AcmRequestCertificate => "acm-request",
            Bucket::Ecr => "ecr",
            Bucket::ApplicationAutoScaling => "app-autoscaling",
            Bucket::S3 => "s3",
            Bucket::DynamoDb => "dynamodb",
        }
    }

    /// The requests it applies to, in words (for the tables the benchmark prints).
    pub fn applies_to(self) -> &'static str {
        match self {
            Bucket::EcsRead => "ECS Describe*/List*",
            Bucket::EcsWrite => "every other ECS call but RegisterTaskDefinition",
            Bucket::EcsRegisterTaskDefinition => "ECS RegisterTaskDefinition",
            Bucket::Elbv2Account => "every ELBv2 call",
            Bucket::Elbv2Write => "ELBv2 writes (also take an elbv2-account token)",
            Bucket::Route53 => "every Route53 call",
            Bucket::Acm => "every ACM call",
            Bucket::AcmRequestCertificate => "ACM RequestCertificate (also takes an acm token)",
            Bucket::Ecr => "every ECR call (generous)",
            Bucket::ApplicationAutoScaling => "every Application Auto Scaling call (generous)",
            Bucket::S3 => "S3, the store (generous)",
            Bucket::DynamoDb => "DynamoDB, the store (generous)",
        }
    }

    /// AWS's limit (see the module doc).
    pub fn aws_limit(self) -> Limit {
        match self {
            Bucket::EcsRead => limit(20.0, 100.0),
            Bucket::EcsWrite => limit(5.0, 5.0),
            Bucket::EcsRegisterTaskDefinition => limit(1.0, 1.0),
            Bucket::Elbv2Account => limit(10.0, 40.0),
            Bucket::Elbv2Write => limit(3.0, 3.0),
            Bucket::Route53 => limit(5.0, 5.0),
            Bucket::Acm => limit(10.0, 10.0),
            Bucket::AcmRequestCertificate => limit(5.0, 5.0),
            Bucket::Ecr | Bucket::ApplicationAutoScaling | Bucket::S3 | Bucket::DynamoDb => {
                limit(50.0, 100.0)
            }
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// AWS's buckets, every one.
pub fn aws_limits() -> BTreeMap<Bucket, Limit> {
    Bucket::ALL.iter().map(|b| (*b, b.aws_limit())).collect()
}

/// The buckets a call takes a token from (none: not limited).
pub fn buckets_for(call: &Call) -> Vec<Bucket> {
    let write = call.is_mutating();
    match &call.service {
        AwsService::Ecs if call.operation == "RegisterTaskDefinition" => {
            vec![Bucket::EcsRegisterTaskDefinition]
        }
        AwsService::Ecs if write => vec![Bucket::EcsWrite],
        AwsService::Ecs => vec![Bucket::EcsRead],
        AwsService::Elbv2 if write => vec![Bucket::Elbv2Write, Bucket::Elbv2Account],
        AwsService::Elbv2 => vec![Bucket::Elbv2Account],
        AwsService::Route53 => vec![Bucket::Route53],
        AwsService::Acm if call.operation == "RequestCertificate" => {
            vec![Bucket::AcmRequestCertificate, Bucket::Acm]
        }
        AwsService::Acm => vec![Bucket::Acm],
        AwsService::Ecr => vec![Bucket::Ecr],
        AwsService::ApplicationAutoScaling => vec![Bucket::ApplicationAutoScaling],
        AwsService::S3 => vec![Bucket::S3],
        AwsService::DynamoDb => vec![Bucket::DynamoDb],
        AwsService::AutoScaling | AwsService::Other(_) => Vec::new(),
    }
}

/// One token bucket on an injected clock (`now` is time since any fixed start).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: Limit,
    tokens: f64,
    at: Duration,
}

impl TokenBucket {
    /// A full bucket at time zero.
    pub fn full(limit: Limit) -> TokenBucket {
        TokenBucket {
            limit,
            tokens: limit.burst,
            at: Duration::ZERO,
        }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            let dt = (now - self.at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.limit.rate).min(self.limit.burst);
            self.at = now;
        }
    }

    /// Whether a token is there at `now`.
    pub fn has_token(&mut self, now: Duration) -> bool {
        self.refill(now);
        // A hair of tolerance so that exactly `1/rate` seconds refill exactly one token.
        self.tokens >= 1.0 - 1e-9
    }

    /// Take a token (after [`TokenBucket::has_token`] said yes).
    pub fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// Take a token at `now` if there is one.
    pub fn try_take(&mut self, now: Duration) -> bool {
        let ok = self.has_token(now);
        if ok {
            self.take();
        }
        ok
    }
}

/// Every bucket, on an injected clock: the proxy's decisions, without the proxy.
#[derive(Debug, Clone)]
pub struct Limiter {
    buckets: BTreeMap<Bucket, TokenBucket>,
}

impl Limiter {
    /// Full buckets at these limits (a bucket left out does not limit).
    pub fn new(limits: &BTreeMap<Bucket, Limit>) -> Limiter {
        Limiter {
            buckets: limits
                .iter()
                .map(|(b, l)| (*b, TokenBucket::full(*l)))
                .collect(),
        }
    }

    /// Admit `call` at `now`: `Ok(buckets it took a token from)`, or `Err(the first empty one)`,
    /// in which case it took nothing.
    pub fn admit(&mut self, call: &Call, now: Duration) -> Result<Vec<Bucket>, Bucket> {
        let wanted: Vec<Bucket> = buckets_for(call)
            .into_iter()
            .filter(|b| self.buckets.contains_key(b))
            .collect();
        for b in &wanted {
            let bucket = self.buckets.get_mut(b).expect("checked above");
            if !bucket.has_token(now) {
                return Err(*b);
            }
        }
        for b in &wanted {
            self.buckets.get_mut(b).expect("checked above").take();
        }
        Ok(wanted)
    }
}

/// What the proxy saw of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Admitted and forwarded to moto.
    pub forwarded: u64,
    /// Answered with throttling, not forwarded.
    pub throttled: u64,
    /// When the first and the last forwarded one arrived, since the proxy started.
    pub first: Option<Duration>,
    pub last: Option<Duration>,
}

/// Everything the proxy counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub by_call: BTreeMap<Call, OpCounts>,
    /// Forwarded requests that took a token from each bucket.
    pub admitted: BTreeMap<Bucket, u64>,
    /// Throttled requests, by the bucket that was empty.
    pub throttled: BTreeMap<Bucket, u64>,
}

impl Counts {
    pub fn forwarded(&self) -> u64 {
        self.by_call.values().map(|c| c.forwarded).sum()
    }

    pub fn throttled_total(&self) -> u64 {
        self.by_call.values().map(|c| c.throttled).sum()
    }

    /// Forwarded calls that change state, by `service/operation`.
    pub fn mutating(&self) -> BTreeMap<String, u64> {
        self.by_call
            .iter()
            .filter(|(c, n)| c.is_mutating() && n.forwarded > 0)
            .map(|(c, n)| {
                (
                    format!("{}/{}", c.service.label(), c.operation),
                    n.forwarded,
                )
            })
            .collect()
    }

    /// Forwarded reads, by `service/operation`.
    pub fn reads(&self) -> BTreeMap<String, u64> {
        self.by_call
            .iter()
            .filter(|(c, n)| !c.is_mutating() && n.forwarded > 0)
            .map(|(c, n)| {
                (
                    format!("{}/{}", c.service.label(), c.operation),
                    n.forwarded,
                )
            })
            .collect()
    }
}

/// The shortest time in which the calls counted in `admitted` could have been made under
/// `limits`, ignoring every dependency between them: for each bucket,
/// `max(0, calls - burst) / rate`, and the largest of those, with its bucket. `None` when no
/// bucket had to wait at all.
pub fn lower_bound(
    admitted: &BTreeMap<Bucket, u64>,
    limits: &BTreeMap<Bucket, Limit>,
) -> Option<(Bucket, f64)> {
    admitted
        .iter()
        .filter_map(|(b, n)| {
            let l = limits.get(b)?;
            let wait = (*n as f64 - l.burst).max(0.0) / l.rate;
            (wait > 0.0).then_some((*b, wait))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

struct State {
    limiter: Limiter,
    counts: Counts,
}

struct Shared {
    start: Instant,
    state: Mutex<State>,
}

impl Policy for Shared {
    fn decide(&self, req: &Request) -> Action {
        let call = req.call();
        let now = self.start.elapsed();
        let mut st = self.state.lock().expect("proxy state");
        match st.limiter.admit(&call, now) {
            Ok(took) => {
                for b in took {
                    *st.counts.admitted.entry(b).or_default() += 1;
                }
                let op = st.counts.by_call.entry(call).or_default();
                op.forwarded += 1;
                op.first.get_or_insert(now);
                op.last = Some(now);
                Action::Forward
            }
            Err(empty) => {
                *st.counts.throttled.entry(empty).or_default() += 1;
                st.counts.by_call.entry(call).or_default().throttled += 1;
                Action::Answer(throttle_answer(req.protocol()))
            }
        }
    }
}

/// A running token-bucket proxy; stops when dropped.
pub struct BucketProxy {
    server: Server,
    shared: Arc<Shared>,
}

impl BucketProxy {
    /// A proxy enforcing AWS's buckets ([`aws_limits`]) in front of moto's port.
    pub fn start(upstream_port: u16) -> BucketProxy {
        BucketProxy::start_with(upstream_port, &aws_limits())
    }

    /// A proxy enforcing `limits` (tests use small ones).
    pub fn start_with(upstream_port: u16, limits: &BTreeMap<Bucket, Limit>) -> BucketProxy {
        let shared = Arc::new(Shared {
            start: Instant::now(),
            state: Mutex::new(State {
                limiter: Limiter::new(limits),
                counts: Counts::default(),
            }),
        });
        let server = Server::start(upstream_port, shared.clone(), "bucket-proxy");
        BucketProxy { server, shared }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// What it counted so far.
    pub fn counts(&self) -> Counts {
        self.shared
            .state
            .lock()
            .expect("proxy state")
            .counts
            .clone()
    }

    /// Start counting afresh (the buckets keep their tokens).
    pub fn reset_counts(&self) {
        self.shared.state.lock().expect("proxy state").counts = Counts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: AwsService, op: &str) -> Call {
        Call {
            service,
            operation: op.into(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// How many `c` are admitted at `now`, one after the other.
    fn burst(l: &mut Limiter, c: &Call, now: Duration) -> usize {
        let mut n = 0;
        while l.admit(c, now).is_ok() {
            n += 1;
            assert!(n < 10_000, "never throttles");
        }
        n
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_refills_at_its_rate() {
        let mut b = TokenBucket::full(limit(20.0, 100.0));
        let taken = (0..200).filter(|_| b.try_take(ms(0))).count();
        assert_eq!(taken, 100);
        assert!(!b.try_take(ms(49)), "one token takes 50 ms");
        assert!(b.try_take(ms(50)));
        assert!(!b.try_take(ms(50)));
        let later = (0..200).filter(|_| b.try_take(ms(1050))).count();
        assert_eq!(later, 20, "one second refills 20");
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        let mut b = TokenBucket::full(limit(3.0, 3.0));
        assert!(b.try_take(ms(0)));
        let after_an_hour = (0..100).filter(|_| b.try_take(ms(3_600_000))).count();
        assert_eq!(after_an_hour, 3);
    }

    #[test]
    fn register_task_definition_is_one_per_second_apart_from_other_ecs_writes() {
        let mut l = Limiter::new(&aws_limits());
        let rtd = call(AwsService::Ecs, "RegisterTaskDefinition");
        let update = call(AwsService::Ecs, "UpdateService");
        let describe = call(AwsService::Ecs, "DescribeServices");
        assert_eq!(burst(&mut l, &rtd, ms(0)), 1);
        assert_eq!(burst(&mut l, &update, ms(0)), 5);
        assert_eq!(burst(&mut l, &describe, ms(0)), 100);
        assert_eq!(
            l.admit(&rtd, ms(999)),
            Err(Bucket::EcsRegisterTaskDefinition)
        );
        assert_eq!(
            l.admit(&rtd, ms(1000)),
            Ok(vec![Bucket::EcsRegisterTaskDefinition])
        );
    }

    #[test]
    fn elbv2_writes_take_from_the_write_and_the_account_buckets() {
        let mut l = Limiter::new(&aws_limits());
        let create = call(AwsService::Elbv2, "CreateRule");
        let describe = call(AwsService::Elbv2, "DescribeRules");
        assert_eq!(
            l.admit(&create, ms(0)),
            Ok(vec![Bucket::Elbv2Write, Bucket::Elbv2Account])
        );
        assert_eq!(burst(&mut l, &create, ms(0)), 2);
        assert_eq!(l.admit(&create, ms(0)), Err(Bucket::Elbv2Write));
        // 3 of the 40 account tokens went to writes; a refused write took none.
        assert_eq!(burst(&mut l, &describe, ms(0)), 37);
        // By 400 ms the write bucket has a token again; reads took the account's 4 first.
        assert_eq!(burst(&mut l, &describe, ms(400)), 4);
        assert_eq!(l.admit(&create, ms(400)), Err(Bucket::Elbv2Account));
    }

    #[test]
    fn route53_is_five_per_second_for_reads_and_writes_together() {
        let mut l = Limiter::new(&aws_limits());
        let list = call(AwsService::Route53, "ListResourceRecordSets");
        let change = call(AwsService::Route53, "ChangeResourceRecordSets");
        assert_eq!(burst(&mut l, &list, ms(0)), 5);
        assert_eq!(l.admit(&change, ms(0)), Err(Bucket::Route53));
        assert_eq!(burst(&mut l, &change, ms(1000)), 5);
    }

    #[test]
    fn request_certificate_also_spends_an_acm_token() {
        let mut l = Limiter::new(&aws_limits());
        let request = call(AwsService::Acm, "RequestCertificate");
        let describe = call(AwsService::Acm, "DescribeCertificate");
        assert_eq!(burst(&mut l, &request, ms(0)), 5);
        assert_eq!(burst(&mut l, &describe, ms(0)), 5);
    }

    #[test]
    fn calls_of_unlisted_services_are_not_limited() {
        let mut l = Limiter::new(&aws_limits());
        let ec2 = call(AwsService::Other("ec2".into()), "DescribeSubnets");
        assert!((0..1000).all(|_| l.admit(&ec2, ms(0)) == Ok(vec![])));
    }

    #[test]
    fn the_lower_bound_is_the_slowest_bucket_past_its_burst() {
        let limits = aws_limits();
        let admitted = BTreeMap::from([
            // 300 task definitions at 1/s after a burst of 1: 299 s.
            (Bucket::EcsRegisterTaskDefinition, 300),
            // 1000 ELBv2 calls at 10/s after 40: 96 s.
            (Bucket::Elbv2Account, 1000),
            // Within the burst: no wait.
            (Bucket::EcsRead, 100),
        ]);
        let (b, secs) = lower_bound(&admitted, &limits).expect("some bucket waits");
        assert_eq!(b, Bucket::EcsRegisterTaskDefinition);
        assert!((secs - 299.0).abs() < 1e-9, "{secs}");
        let small = BTreeMap::from([(Bucket::EcsRead, 100), (Bucket::Route53, 5)]);
        assert_eq!(lower_bound(&small, &limits), None);
    }

    #[test]
    fn the_operators_own_buckets_are_below_these() {
        use ecs_operator::aws::budget::{default_rates, CallClass, Service};
        let ours: BTreeMap<(Service, CallClass), _> = default_rates().into_iter().collect();
        let pairs = [
            (Bucket::EcsRead, (Service::Ecs, CallClass::Read)),
            (Bucket::EcsWrite, (Service::Ecs, CallClass::Write)),
            (
                Bucket::EcsRegisterTaskDefinition,
                (Service::Ecs, CallClass::RegisterTaskDefinition),
            ),
            (Bucket::Elbv2Account, (Service::Elbv2, CallClass::Read)),
            (Bucket::Elbv2Write, (Service::Elbv2, CallClass::Write)),
            (Bucket::Route53, (Service::Route53, CallClass::Read)),
            (Bucket::Route53, (Service::Route53, CallClass::Write)),
            (Bucket::Acm, (Service::Acm, CallClass::Read)),
            (Bucket::Acm, (Service::Acm, CallClass::Write)),
            (
                Bucket::AcmRequestCertificate,
                (Service::Acm, CallClass::RequestCertificate),
            ),
            (Bucket::Ecr, (Service::Ecr, CallClass::Read)),
            (Bucket::Ecr, (Service::Ecr, CallClass::Write)),
            (
                Bucket::ApplicationAutoScaling,
                (Service::ApplicationAutoScaling, CallClass::Read),
            ),
            (
                Bucket::ApplicationAutoScaling,
                (Service::ApplicationAutoScaling, CallClass::Write),
            ),
        ];
        for (aws, key) in pairs {
            let a = aws.aws_limit();
            let o = ours
                .get(&key)
                .unwrap_or_else(|| panic!("no operator bucket {key:?}"));
            assert!(
                o.per_second < a.rate,
                "{key:?}: {} /s is not below AWS's {aws} at {} /s",
                o.per_second,
                a.rate
            );
            assert!(
                f64::from(o.burst) <= a.burst,
                "{key:?}: burst {} is above AWS's {aws} burst {}",
                o.burst,
                a.burst
            );
        }
    }
}
