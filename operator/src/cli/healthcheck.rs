//! `ecs-operator healthcheck`: the container health check of a running operator.
//!
//! The operator's image has no shell, curl or wget (distroless), so an ECS container health
//! check cannot be `CMD-SHELL curl ...`. Instead the task definition runs
//! `["CMD", "/usr/local/bin/ecs-operator", "healthcheck"]`: one HTTP/1.0 `GET /healthz` to the
//! `run` process's metrics address on loopback, exit 0 on `200`, 1 on anything else (nothing
//! listening, a timeout, another status). No AWS settings are read.
//!
//! The address defaults to `ECS_OPERATOR_METRICS_ADDR`, the variable `run` serves on, so in a
//! task whose environment sets it the check needs no arguments. An unspecified listen address
//! (`0.0.0.0:9090`, `[::]:9090`) is checked on the loopback address of the same family.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::run::parse_duration;
use super::{CliError, Context};

/// Where `run --metrics-addr` listens when the image's default is kept.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9090";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operator's metrics address (as given to `run --metrics-addr`); 0.0.0.0 and [::] mean
    /// loopback.
    #[arg(long, env = "ECS_OPERATOR_METRICS_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// The path to request.
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Give up after this long (connect, send and read together).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    if !args.path.starts_with('/') {
        return Err(CliError::Environment(format!(
            "--path `{}` must start with `/`",
            args.path
        )));
    }
    let addrs = resolve(&args.addr)?;
    let url = format!("http://{}{}", args.addr, args.path);
    // One short blocking exchange; nothing else runs in this process.
    match check(&addrs, &args.path, args.timeout) {
        Ok(200) => {
            writeln!(ctx.out, "healthy: {url} answered 200")?;
            Ok(())
        }
        Ok(code) => Err(CliError::Failed(format!(
            "unhealthy: {url} answered {code}"
        ))),
        Err(e) => Err(CliError::Failed(format!("unhealthy: {url}: {e}"))),
    }
}

/// The socket addresses to try for `addr` (`host:port`), unspecified IPs turned into loopback.
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, CliError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            CliError::Environment(format!("--addr `{addr}` is not a HOST:PORT address: {e}"))
        })?
        .map(loopback_if_unspecified)
        .collect();
    if addrs.is_empty() {
        return Err(CliError::Environment(format!(
            "--addr `{addr}` resolves to no address"
        )));
    }
    Ok(addrs)
}

/// `0.0.0.0:P` -> `127.0.0.1:P`, `[::]:P` -> `[::1]:P`; anything else unchanged.
pub fn loopback_if_unspecified(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), a.port())
        }
        _ => a,
    }
}

/// `GET path` from the first address that accepts a connection: the HTTP status code.
fn check(addrs: &[SocketAddr], path: &str, timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {timeout:?}"));
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => return exchange(stream, addr, path, deadline),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn exchange(
    mut s: TcpStream,
    addr: &SocketAddr,
    path: &str,
    deadline: Instant,
) -> Result<u16, String> {
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        // A zero timeout means "block forever" to the socket API.
        Some(d.max(Duration::from_millis(1)))
    };
    let io = |e: std::io::Error| format!("{addr}: {e}");
    s.set_write_timeout(left()).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: ecs-operator-healthcheck\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).map_err(io)?;
    // Only the status line matters: read until it is complete (or 4 KiB, or the end).
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        s.set_read_timeout(left()).map_err(io)?;
        let n = s.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).ok_or_else(|| {
        format!(
            "{addr}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&head[..head.len().min(80)])
        )
    })
}

/// The code of an HTTP status line (`HTTP/1.1 200 OK`).
pub fn status_code(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then_some(())?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_checked_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert_eq!(
            loopback_if_unspecified(v4),
            "127.0.0.1:9090".parse().unwrap()
        );
        let v6: SocketAddr = "[::]:9090".parse().unwrap();
        assert_eq!(loopback_if_unspecified(v6), "[::1]:9090".parse().unwrap());
        let other: SocketAddr = "10.0.0.5:9090".parse().unwrap();
        assert_eq!(loopback_if_unspecified(other), other);
    }

    #[test]
    fn status_lines_parse_and_anything_else_is_refused() {
        assert_eq!(
            status_code(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n"),
            Some(200)
        );
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn an_address_without_a_port_is_a_usage_error() {
        assert!(matches!(
            resolve("localhost"),
            Err(CliError::Environment(_))
        ));
        assert!(resolve("0.0.0.0:9090").unwrap()[0].ip().is_loopback());
    }
}
