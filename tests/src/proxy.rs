//! The HTTP plumbing shared by the test proxies ([`crate::fault_proxy`], [`crate::bucket_proxy`]):
//! a loopback server between the operator and moto that reads one HTTP/1.1 request at a time
//! (the SDK keeps connections alive), asks a [`Policy`] what to do with it, and forwards it,
//! answers it in the request's own protocol, delays it or drops the connection.
//!
//! Also here: what a request is ([`Request::call`]: the AWS service from the SigV4 credential
//! scope, the operation from `X-Amz-Target`, the query `Action=` or the REST path) and the
//! protocol-shaped error answers ([`throttle_answer`], [`error_answer`]).
//!
//! Forwarding opens a fresh upstream connection per request with `Connection: close`, reads
//! moto's whole answer and relays it re-framed with a `Content-Length`, so the client's
//! connection can stay alive; a client that sends `Connection: close` (another of these
//! proxies, chained in front) has its connection closed after the answer, so proxies chain.
//!
//! The server runs on its own thread and runtime, so it keeps serving while a test thread blocks
//! (on a child process, or `std::thread::sleep` between polls).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// An AWS service, as the proxies tell requests apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AwsService {
    Ecs,
    Ecr,
    Elbv2,
    Route53,
    Acm,
    ApplicationAutoScaling,
    AutoScaling,
    S3,
    DynamoDb,
    /// Any other signing name (`ec2`, `sts`...), as signed.
    Other(String),
}

impl AwsService {
    /// From a SigV4 signing name (the credential scope's service part).
    pub fn from_signing_name(name: &str) -> AwsService {
        match name {
            "ecs" => AwsService::Ecs,
            "ecr" => AwsService::Ecr,
            "elasticloadbalancing" => AwsService::Elbv2,
            "route53" => AwsService::Route53,
            "acm" => AwsService::Acm,
            "application-autoscaling" => AwsService::ApplicationAutoScaling,
            "autoscaling" => AwsService::AutoScaling,
            "s3" => AwsService::S3,
            "dynamodb" => AwsService::DynamoDb,
            other => AwsService::Other(other.to_string()),
        }
    }

    /// From a JSON protocol's `X-Amz-Target` prefix (`AmazonEC2ContainerServiceV20141113`).
    pub fn from_target_prefix(prefix: &str) -> Option<AwsService> {
        Some(match prefix {
            p if p.starts_with("AmazonEC2ContainerServiceV") => AwsService::Ecs,
            p if p.starts_with("AmazonEC2ContainerRegistry") => AwsService::Ecr,
            "CertificateManager" => AwsService::Acm,
            "AnyScaleFrontendService" => AwsService::ApplicationAutoScaling,
            p if p.starts_with("DynamoDB") => AwsService::DynamoDb,
            _ => return None,
        })
    }

    /// The label the operator's metrics use (`ecs`, `elasticloadbalancingv2`, ...).
    pub fn label(&self) -> &str {
        match self {
            AwsService::Ecs => "ecs",
            AwsService::Ecr => "ecr",
            AwsService::Elbv2 => "elasticloadbalancingv2",
            AwsService::Route53 => "route53",
            AwsService::Acm => "acm",
            AwsService::ApplicationAutoScaling => "applicationautoscaling",
            AwsService::AutoScaling => "autoscaling",
            AwsService::S3 => "s3",
            AwsService::DynamoDb => "dynamodb",
            AwsService::Other(s) => s,
        }
    }
}

/// What one request asks for: its service and operation (`DescribeServices`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    pub service: AwsService,
    pub operation: String,
}

impl Call {
    /// Whether the operation changes AWS state (the operator's own definition).
    pub fn is_mutating(&self) -> bool {
        ecs_operator::aws::calls::is_mutating(&self.operation)
    }
}

/// One parsed request: its head (without the blank line) and decoded body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request from its parts (tests build requests with it).
    pub fn new(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn protocol(&self) -> Protocol {
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

    /// The service (from the SigV4 credential scope `AKID/DATE/REGION/SERVICE/aws4_request`,
    /// else from `X-Amz-Target` or the protocol) and the operation.
    pub fn call(&self) -> Call {
        let target = self.header("x-amz-target");
        let signed = self
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|scope| scope.split('/').nth(3))
            .map(AwsService::from_signing_name);
        let from_target = target
            .and_then(|t| t.split_once('.'))
            .and_then(|(prefix, _)| AwsService::from_target_prefix(prefix));
        let proto = self.protocol();
        let service = signed.or(from_target).unwrap_or(match proto {
            Protocol::Route53 => AwsService::Route53,
            Protocol::S3 => AwsService::S3,
            _ => AwsService::Other("unknown".into()),
        });
        let operation = match proto {
            Protocol::Json => target
                .and_then(|t| t.rsplit_once('.'))
                .map(|(_, op)| op.to_string())
                .unwrap_or_else(|| "unknown".into()),
            Protocol::Query => form_value(&self.body, "Action").unwrap_or_else(|| "unknown".into()),
            Protocol::Route53 => route53_operation(&self.method, &self.path),
            Protocol::S3 => s3_operation(&self.method, &self.path),
        };
        Call { service, operation }
    }
}

/// The value of `key` in a form-encoded body (`Action=DescribeTags&Version=...`).
fn form_value(body: &[u8], key: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// Route53's REST operations, from the method and the path (`/2013-04-01/hostedzone/Z1/rrset`).
pub fn route53_operation(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path
        .trim_start_matches("/2013-04-01/")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let m = method.to_ascii_uppercase();
    let op = match (m.as_str(), parts.as_slice()) {
        ("GET", ["hostedzonesbyname", ..]) => "ListHostedZonesByName",
        ("GET", ["hostedzone"]) => "ListHostedZones",
        ("POST", ["hostedzone"]) => "CreateHostedZone",
        ("GET", ["hostedzone", _]) => "GetHostedZone",
        ("DELETE", ["hostedzone", _]) => "DeleteHostedZone",
        ("GET", ["hostedzone", _, "rrset", ..]) => "ListResourceRecordSets",
        ("POST", ["hostedzone", _, "rrset", ..]) => "ChangeResourceRecordSets",
        ("GET", ["change", _]) => "GetChange",
        ("GET", ["tags", ..]) => "ListTagsForResource",
        ("POST", ["tags", ..]) => "ChangeTagsForResource",
        _ => return format!("{m} {}", parts.first().copied().unwrap_or("/")),
    };
    op.to_string()
}

/// S3's REST operations, roughly (the store's calls).
fn s3_operation(method: &str, path: &str) -> String {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    match method.to_ascii_uppercase().as_str() {
        "GET" if query.contains("list-type=2") => "ListObjectsV2",
        "GET" => "GetObject",
        "HEAD" => "HeadObject",
        "PUT" => "PutObject",
        "DELETE" => "DeleteObject",
        "POST" if query.contains("delete") => "DeleteObjects",
        _ => "PostObject",
    }
    .to_string()
}

/// What a policy does with one request.
#[derive(Debug)]
pub enum Action {
    /// Forward it to the upstream and relay the answer.
    Forward,
    /// Hold it this long, then forward it.
    Delay(Duration),
    /// Answer with these bytes without forwarding.
    Answer(Vec<u8>),
    /// Close the connection without answering.
    Close,
}

/// Decides, per request, what the proxy does. Called before anything is forwarded.
pub trait Policy: Send + Sync + 'static {
    fn decide(&self, req: &Request) -> Action;
}

/// A running proxy server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    /// Requests read from a client and not yet answered by upstream (a request keeps going
    /// to upstream when its client dies: the proxy, like a network, does not cancel it).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server on a free loopback port forwarding to `upstream_port` (moto's) under `policy`.
    pub fn start(upstream_port: u16, policy: Arc<dyn Policy>, name: &str) -> Server {
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port for the proxy");
        std_listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = std_listener.local_addr().expect("the proxy's address");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = in_flight.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("a tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, upstream, policy, counter) => {}
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("the proxy thread starts");
        Server {
            addr,
            in_flight,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests forwarded to upstream and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    policy: Arc<dyn Policy>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let p = policy.clone();
        let n = in_flight.clone();
        tokio::spawn(async move {
            let _ = serve(conn, upstream, p, n).await;
        });
    }
}

/// Counts one request as in flight while it lives.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn new(n: &Arc<std::sync::atomic::AtomicUsize>) -> InFlight {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(n.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    policy: Arc<dyn Policy>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf).await? {
        let _counted = InFlight::new(&in_flight);
        match policy.decide(&req) {
            Action::Close => return Ok(()),
            Action::Answer(bytes) => conn.write_all(&bytes).await?,
            Action::Delay(d) => {
                tokio::time::sleep(d).await;
                let bytes = forward(upstream, &req).await?;
                conn.write_all(&bytes).await?;
            }
            Action::Forward => {
                let bytes = forward(upstream, &req).await?;
                conn.write_all(&bytes).await?;
            }
        }
        // A client that asked to close (a proxy chained in front, which forwards with
        // `Connection: close` and reads to the end) gets the end of the stream after its answer.
        if req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            return Ok(());
        }
    }
    Ok(())
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

/// Throttling as each protocol's service would answer it: JSON protocols get `400` with
/// `x-amzn-ErrorType: ThrottlingException`; query protocols (ELBv2, Auto Scaling) and Route53
/// get `400 <ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>...`; S3 gets
/// `503 <Error><Code>SlowDown</Code>...`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request::new(method, path, headers, body)
    }

    fn auth(service: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=testing/20250101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0")
    }

    #[test]
    fn a_json_request_is_named_by_its_target() {
        let a = auth("ecs");
        let r = req(
            "POST",
            "/",
            &[
                (
                    "X-Amz-Target",
                    "AmazonEC2ContainerServiceV20141113.DescribeServices",
                ),
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Authorization", &a),
            ],
            "{}",
        );
        let c = r.call();
        assert_eq!(c.service, AwsService::Ecs);
        assert_eq!(c.operation, "DescribeServices");
        assert!(!c.is_mutating());
        assert_eq!(r.protocol(), Protocol::Json);
    }

    #[test]
    fn a_json_request_without_a_signature_is_named_by_its_target_prefix() {
        let r = req(
            "POST",
            "/",
            &[("X-Amz-Target", "CertificateManager.RequestCertificate")],
            "{}",
        );
        assert_eq!(
            r.call(),
            Call {
                service: AwsService::Acm,
                operation: "RequestCertificate".into()
            }
        );
    }

    #[test]
    fn a_query_request_is_named_by_its_action_and_signing_name() {
        let a = auth("elasticloadbalancing");
        let r = req(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &a),
            ],
            "Action=CreateRule&Version=2015-12-01&ListenerArn=x",
        );
        let c = r.call();
        assert_eq!(c.service, AwsService::Elbv2);
        assert_eq!(c.operation, "CreateRule");
        assert!(c.is_mutating());
    }

    #[test]
    fn route53_rest_paths_map_to_operations() {
        let cases = [
            (
                "GET",
                "/2013-04-01/hostedzonesbyname?dnsname=example.com",
                "ListHostedZonesByName",
            ),
            ("GET", "/2013-04-01/hostedzone/Z1", "GetHostedZone"),
            (
                "GET",
                "/2013-04-01/hostedzone/Z1/rrset?maxitems=300",
                "ListResourceRecordSets",
            ),
            (
                "POST",
                "/2013-04-01/hostedzone/Z1/rrset/",
                "ChangeResourceRecordSets",
            ),
            ("GET", "/2013-04-01/change/C1", "GetChange"),
            ("POST", "/2013-04-01/hostedzone", "CreateHostedZone"),
        ];
        for (m, p, op) in cases {
            let r = req(m, p, &[], "");
            assert_eq!(r.protocol(), Protocol::Route53, "{p}");
            let c = r.call();
            assert_eq!(c.service, AwsService::Route53, "{p}");
            assert_eq!(c.operation, op, "{p}");
        }
    }
}
