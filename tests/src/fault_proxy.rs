//! A fault-injection HTTP proxy between the operator and moto.
//!
//! Each accepted connection is read one HTTP/1.1 request at a time (the SDK keeps connections
//! alive), and for each request a seeded RNG decides whether to inject a fault instead of (or
//! before) forwarding it:
//!
//! - **throttling**, in the request's own protocol: JSON protocols (`X-Amz-Target` or an
//!   `application/x-amz-json` body) get `400` with `x-amzn-ErrorType: ThrottlingException`;
//!   query protocols (ELBv2, Auto Scaling: form-encoded `Action=`) and Route53 (REST-XML) get
//!   `400 <ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>...`; S3 gets
//!   `503 <Error><Code>SlowDown</Code>...`;
//! - **server errors**: `500 InternalFailure` or `503 ServiceUnavailable`, in the same shapes;
//! - **latency**: the request is held for a while, then forwarded;
//! - **dropped connections**: the connection is closed without an answer.
//!
//! **Faults are always decided and injected before the request is forwarded.** A faulted
//! request never reached moto, so a retry of a non-idempotent call (RegisterTaskDefinition,
//! CreateLoadBalancer...) after a throttle, a 5xx or a dropped connection cannot make a
//! duplicate that the proxy caused: any duplicate a test finds is the operator's. (Latency
//! delays a request and then forwards it; it never drops one that was sent.)
//!
//! Request parsing, forwarding and the protocol-shaped answers are [`crate::proxy`]'s, shared
//! with the token-bucket proxy ([`crate::bucket_proxy`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::proxy::{error_answer, throttle_answer, Protocol};
use crate::proxy::{Action, Policy, Request, Server};

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Throttling in the protocol's own shape.
    Throttle,
    /// `500 InternalFailure`.
    Error500,
    /// `503 ServiceUnavailable`.
    Error503,
    /// The request is delayed by the configured latency, then forwarded.
    Latency,
    /// The connection is closed without an answer.
    Drop,
    /// Outage mode: answered `503` without forwarding.
    OutageRefused,
    /// Outage mode: connection closed without an answer.
    OutageDropped,
}

impl Fault {
    /// Every fault a rate-based configuration can pick.
    pub const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::Error500,
        Fault::Error503,
        Fault::Latency,
        Fault::Drop,
    ];
}

/// What the proxy does with each request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Inject a fault into this fraction of requests (0.0..=1.0), the kind picked uniformly
    /// from the configured kinds.
    Faults { rate: f64 },
    /// Answer every request `503` (in its protocol's shape) without forwarding.
    Refuse503,
    /// Close every connection without answering.
    DropAll,
}

/// How to build a proxy.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub mode: Mode,
    /// The RNG seed: the same seed and the same request sequence give the same faults.
    pub seed: u64,
    /// The kinds a `Faults` mode picks from.
    pub kinds: Vec<Fault>,
    /// How long a `Latency` fault holds a request.
    pub latency: Duration,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            mode: Mode::Pass,
            seed: 1,
            kinds: Fault::ALL.to_vec(),
            latency: Duration::from_millis(300),
        }
    }
}

struct Shared {
    state: Mutex<State>,
}

struct State {
    mode: Mode,
    rng: u64,
    kinds: Vec<Fault>,
    latency: Duration,
    injected: BTreeMap<Fault, u64>,
    forwarded: u64,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    server: Server,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (e.g. moto's port).
    pub fn start(upstream_port: u16, config: FaultConfig) -> FaultProxy {
        assert!(!config.kinds.is_empty(), "at least one fault kind");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode: config.mode,
                // splitmix64 never stays at 0, but keep the seed visible as given.
                rng: config.seed,
                kinds: config.kinds,
                latency: config.latency,
                injected: BTreeMap::new(),
                forwarded: 0,
            }),
        });
        let server = Server::start(upstream_port, shared.clone(), "fault-proxy");
        FaultProxy { server, shared }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// Change what the proxy does from the next request on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.state.lock().expect("proxy state").mode = mode;
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.shared
            .state
            .lock()
            .expect("proxy state")
            .injected
            .clone()
    }

    /// Requests forwarded to the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.state.lock().expect("proxy state").forwarded
    }
}

/// splitmix64: small, seeded, good enough to pick faults.
fn next_u64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded pseudo-random generator for tests (delays, kill points).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        next_u64(&mut self.0)
    }

    /// A value in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

impl Policy for Shared {
    fn decide(&self, req: &Request) -> Action {
        decide(self, req)
    }
}

fn decide(shared: &Shared, req: &Request) -> Action {
    let mut st = shared.state.lock().expect("proxy state");
    let proto = req.protocol();
    let (fault, action) = match st.mode {
        Mode::Pass => {
            st.forwarded += 1;
            return Action::Forward;
        }
        Mode::Refuse503 => (
            Fault::OutageRefused,
            Action::Answer(error_answer(proto, 503)),
        ),
        Mode::DropAll => (Fault::OutageDropped, Action::Close),
        Mode::Faults { rate } => {
            let roll = (next_u64(&mut st.rng) >> 11) as f64 / (1u64 << 53) as f64;
            if roll >= rate {
                st.forwarded += 1;
                return Action::Forward;
            }
            let pick = (next_u64(&mut st.rng) % st.kinds.len() as u64) as usize;
            let kind = st.kinds[pick];
            let action = match kind {
                Fault::Throttle => Action::Answer(throttle_answer(proto)),
                Fault::Error500 => Action::Answer(error_answer(proto, 500)),
                Fault::Error503 | Fault::OutageRefused => Action::Answer(error_answer(proto, 503)),
                Fault::Latency => {
                    st.forwarded += 1;
                    Action::Delay(st.latency)
                }
                Fault::Drop | Fault::OutageDropped => Action::Close,
            };
            (kind, action)
        }
    };
    *st.injected.entry(fault).or_default() += 1;
    action
}
