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
//! Forwarding opens a fresh upstream connection per request with `Connection: close`, reads
//! moto's whole answer and relays it re-framed with a `Content-Length`, so the client's
//! connection can stay alive.
//!
//! The proxy runs on its own thread and runtime, so it keeps serving while a test thread blocks
//! (on a child process, or `std::thread::sleep` between polls).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// The wire protocol of a request, for shaping error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson1_0/1_1 (ECS, ECR, ACM, DynamoDB, Application Auto Scaling).
    Json,
    /// awsQuery (ELBv2, Auto Scaling).
    Query,
    /// Route53's REST-XML.
    Route53,
    /// S3's REST-XML (and anything else).
    S3,
}

struct Shared {
    upstream: SocketAddr,
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
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (e.g. moto's port).
    pub fn start(upstream_port: u16, config: FaultConfig) -> FaultProxy {
        assert!(!config.kinds.is_empty(), "at least one fault kind");
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
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
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port for the proxy");
        std_listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = std_listener.local_addr().expect("the proxy's address");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("a tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, s) => {}
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("the proxy thread starts");
        FaultProxy {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let s = shared.clone();
        tokio::spawn(async move {
            let _ = serve(conn, s).await;
        });
    }
}

/// One parsed request: its head (without the blank line) and decoded body.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn protocol(&self) -> Protocol {
        let ct = self.header("content-type").unwrap_or_default();
        if self.header("x-amz-target").is_some() || ct.contains("application/x-amz-json") {
            Protocol::Json
        } else if ct.contains("x-www-form-urlencoded")
            && String::from_utf8_lossy(&self.body).contains("Action=")
        {
            Protocol::Query
        } else if self.path.starts_with("/2013-04-01/") {
            Protocol::Route53
        } else {
            Protocol::S3
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Read more bytes into `buf`; `false` at end of stream.
async fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = conn.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// Parse a head (`lines` up to, not including, the blank line).
fn parse_head(head: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let first = lines.next()?.to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Some((first, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decode a chunked body that starts at `buf[0]`: `Some((body, bytes consumed))` when complete.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&buf[at..], b"\r\n")?;
        let size_text = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, then a blank line.
            let end = at
                + find(&buf[at..], b"\r\n\r\n")
                    .map(|i| i + 4)
                    .or_else(|| buf[at..].starts_with(b"\r\n").then_some(2))?;
            return Some((body, end));
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// Read one request from `conn` (bytes past it stay in `buf`); `None` at a clean end.
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if !fill(conn, buf).await? {
            return Ok(None);
        }
    };
    let (first, headers) = parse_head(&buf[..head_end])
        .ok_or_else(|| std::io::Error::other("an unreadable request head"))?;
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let start = head_end + 4;
    let chunked = header(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let (body, end) = if chunked {
        loop {
            if let Some((body, used)) = dechunk(&buf[start..]) {
                break (body, start + used);
            }
            if !fill(conn, buf).await? {
                return Err(std::io::Error::other("a truncated chunked request"));
            }
        }
    } else {
        let len: usize = header(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < start + len {
            if !fill(conn, buf).await? {
                return Err(std::io::Error::other("a truncated request"));
            }
        }
        (buf[start..start + len].to_vec(), start + len)
    };
    buf.drain(..end);
    let headers = headers
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"))
        .collect();
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// What to do with one request.
enum Action {
    Forward,
    Delay(Duration),
    Answer(Vec<u8>),
    Close,
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

fn answer(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "x-amzn-RequestId: injected-fault\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

/// Throttling as each protocol's service would answer it.
pub fn throttle_answer(proto: Protocol) -> Vec<u8> {
    match proto {
        Protocol::Json => answer(
            400,
            "Bad Request",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", "ThrottlingException"),
            ],
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ),
        Protocol::Query | Protocol::Route53 => answer(
            400,
            "Bad Request",
            &[("Content-Type", "text/xml")],
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>",
        ),
        Protocol::S3 => answer(
            503,
            "Slow Down",
            &[("Content-Type", "application/xml")],
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>x</RequestId></Error>",
        ),
    }
}

/// A 500 or 503 in the protocol's shape.
pub fn error_answer(proto: Protocol, status: u16) -> Vec<u8> {
    let (reason, code) = if status == 500 {
        ("Internal Server Error", "InternalFailure")
    } else {
        ("Service Unavailable", "ServiceUnavailable")
    };
    match proto {
        Protocol::Json => answer(
            status,
            reason,
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", code),
            ],
            &format!(r#"{{"__type":"{code}","message":"injected fault"}}"#),
        ),
        Protocol::Query | Protocol::Route53 => answer(
            status,
            reason,
            &[("Content-Type", "text/xml")],
            &format!("<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>injected fault</Message></Error><RequestId>x</RequestId></ErrorResponse>"),
        ),
        Protocol::S3 => answer(
            status,
            reason,
            &[("Content-Type", "application/xml")],
            &format!("<Error><Code>{}</Code><Message>injected fault</Message><RequestId>x</RequestId></Error>",
                if status == 500 { "InternalError" } else { "ServiceUnavailable" }),
        ),
    }
}

async fn serve(mut conn: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf).await? {
        match decide(&shared, &req) {
            Action::Close => return Ok(()),
            Action::Answer(bytes) => conn.write_all(&bytes).await?,
            Action::Delay(d) => {
                tokio::time::sleep(d).await;
                let bytes = forward(shared.upstream, &req).await?;
                conn.write_all(&bytes).await?;
            }
            Action::Forward => {
                let bytes = forward(shared.upstream, &req).await?;
                conn.write_all(&bytes).await?;
            }
        }
    }
    Ok(())
}

/// Send `req` to the upstream on a fresh connection and return its answer re-framed for a
/// kept-alive client connection.
async fn forward(upstream: SocketAddr, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        req.body.len()
    ));
    up.write_all(head.as_bytes()).await?;
    up.write_all(&req.body).await?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).await?;
    let head_end =
        find(&raw, b"\r\n\r\n").ok_or_else(|| std::io::Error::other("an answer without a head"))?;
    let (status_line, headers) = parse_head(&raw[..head_end])
        .ok_or_else(|| std::io::Error::other("an unreadable answer head"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let rest = &raw[head_end + 4..];
    let no_body = req.method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304;
    let chunked = header(&headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body: Vec<u8> = if no_body {
        Vec::new()
    } else if chunked {
        dechunk(rest).map(|(b, _)| b).unwrap_or_default()
    } else {
        match header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => rest[..n.min(rest.len())].to_vec(),
            None => rest.to_vec(),
        }
    };
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or("");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in &headers {
        let drop = k.eq_ignore_ascii_case("connection")
            || k.eq_ignore_ascii_case("keep-alive")
            || k.eq_ignore_ascii_case("transfer-encoding")
            || (!no_body && k.eq_ignore_ascii_case("content-length"));
        if !drop {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !no_body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Ok(bytes)
}
