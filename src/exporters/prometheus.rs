//! The built-in HTTP endpoint: `GET /metrics` (Prometheus text), `/healthz`,
//! `/snapshot` (latest JSON). It only reads what the collection loop
//! published; a scrape never triggers collection. A small HTTP/1.1 subset is
//! enough for Prometheus and curl and keeps the static binary small.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::Published;

/// Connections served at once; more are answered 503 and closed.
const MAX_CONNECTIONS: usize = 16;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUEST_HEAD: usize = 8192;

pub struct Server {
    pub local_addr: SocketAddr,
}

/// Binds now (so a taken port is an error at startup) and serves on a thread.
pub fn spawn(addr: SocketAddr, published: Arc<Published>) -> io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    let local_addr = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::AcqRel);
                    let _ = respond(&stream, 503, "text/plain", b"busy\n", false);
                    continue;
                }
                let published = published.clone();
                let active = active.clone();
                let spawned = std::thread::Builder::new()
                    .name("http-conn".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let _ = handle(stream, &published);
                        active.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    log::warn!("http: cannot start a connection thread");
                }
            }
        })?;
    Ok(Server { local_addr })
}

fn handle(mut stream: TcpStream, published: &Published) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() > MAX_REQUEST_HEAD {
            return respond(
                &stream,
                431,
                "text/plain",
                b"request head too large\n",
                false,
            );
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&stream, 405, "text/plain", b"only GET and HEAD\n", false);
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {
            let set = published.metrics.load();
            respond(
                &stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                set.text(),
                head_only,
            )
        }
        "/snapshot" => match published.snapshot.load_full() {
            Some(doc) => respond(&stream, 200, "application/json", doc.json(), head_only),
            None => respond(
                &stream,
                503,
                "text/plain",
                b"no cycle has completed yet\n",
                head_only,
            ),
        },
        "/analysis" => match published.analysis.load_full() {
            Some(json) => respond(&stream, 200, "application/json", &json, head_only),
            None => respond(&stream, 404, "text/plain", b"no analysis yet (llm/dify off, or not posted yet)\n", head_only),
        },
        "/healthz" => {
            // A dead or stuck AI worker fails the check too, and says so.
            if let Some(why) = published.ai_worker.load().as_ref().and_then(|w| w.problem()) {
                let why = format!("{why}\n");
                return respond(&stream, 503, "text/plain", why.as_bytes(), head_only);
            }
            if published.healthy() {
                respond(&stream, 200, "text/plain", b"ok\n", head_only)
            } else {
                respond(
                    &stream,
                    503,
                    "text/plain",
                    b"collection is stalled or has not run\n",
                    head_only,
                )
            }
        }
        "/" => respond(
            &stream,
            200,
            "text/html; charset=utf-8",
            b"<html><head><title>rdma-monitor</title></head><body><h1>rdma-monitor</h1>\
              <p><a href=\"/metrics\">/metrics</a> <a href=\"/snapshot\">/snapshot</a> \
              <a href=\"/analysis\">/analysis</a> <a href=\"/healthz\">/healthz</a></p></body></html>\n",
            head_only,
        ),
        _ => respond(&stream, 404, "text/plain", b"not found\n", head_only),
    }
}

fn respond(
    mut stream: &TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let header = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}
