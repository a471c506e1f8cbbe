//! A small HTTP/1.1 server, hardened against slow and hostile clients.
//!
//! One thread waits on the listener and on every connection that has not yet
//! sent its whole request head (poll(2)), each with a deadline for the whole
//! head counted from accept, not per read. A slow client costs an entry in
//! that bounded set, never a worker: the fixed pool of workers, started once,
//! only writes answers to complete requests. A full set evicts its oldest
//! entry; a full work queue is answered 503 after the request was read, so
//! the client sees an answer, not a reset. Accept errors (EMFILE) back off.
//! Every answer closes the connection; Prometheus and curl need nothing more.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The whole request head must arrive within this time from accept.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The whole answer must be written within this time.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
const MAX_REQUEST_HEAD: usize = 8192;
/// Connections still sending their request head.
const MAX_PENDING: usize = 256;
/// Complete requests waiting for a worker.
const MAX_QUEUED: usize = 256;
const WORKERS: usize = 4;
const WORKER_STACK: usize = 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A parsed request: only what the exporter routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (anything else is answered 405 before a handler sees it).
    pub head_only: bool,
    /// The path without the query.
    pub path: String,
    /// The client accepts `Content-Encoding: gzip`.
    pub accepts_gzip: bool,
}

/// What the server counts about its clients, since start.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    /// Answered 503 because every worker was busy and the queue full.
    pub busy: AtomicU64,
    /// Closed because the request head did not arrive within [`HEAD_DEADLINE`].
    pub head_timeouts: AtomicU64,
    /// Closed to make room for a new connection (the oldest pending one).
    pub evicted: AtomicU64,
    /// Malformed or oversized request heads and unsupported methods.
    pub bad_requests: AtomicU64,
    /// accept(2) failures (EMFILE, ENFILE, ENOBUFS ...), each followed by a back-off.
    pub accept_errors: AtomicU64,
}

/// Answers one request. Called on a worker thread.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request, out: &mut Responder<'_>) -> io::Result<()>;
}

pub struct Server {
    pub local_addr: SocketAddr,
    pub stats: Arc<Stats>,
}

/// Binds now (so a taken port is an error at startup), starts the workers and
/// the connection thread. A worker that cannot start is a startup error.
pub fn spawn(
    addr: SocketAddr,
    handler: impl FnOnce(Arc<Stats>) -> Arc<dyn Handler>,
) -> io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let handler = handler(stats.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel::<(TcpStream, Request)>(MAX_QUEUED);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..WORKERS {
        let rx = rx.clone();
        let handler = handler.clone();
        std::thread::Builder::new()
            .name(format!("http-{i}"))
            // miniz_oxide's compressor state passes through the stack in
            // debug builds; untouched stack pages cost no memory.
            .stack_size(WORKER_STACK)
            .spawn(move || worker(&rx, &*handler))?;
    }
    let stats2 = stats.clone();
    std::thread::Builder::new()
        .name("http".into())
        .stack_size(128 * 1024)
        .spawn(move || Acceptor::new(listener, tx, stats2).run())?;
    Ok(Server { local_addr, stats })
}

fn worker(rx: &Mutex<Receiver<(TcpStream, Request)>>, handler: &dyn Handler) {
    loop {
        // The lock is held only while waiting; recv never panics, so no poison.
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((stream, req)) = job else { return };
        // A handler bug costs one answer, never a worker.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if stream.set_nonblocking(false).is_ok() {
                let mut out = Responder {
                    stream: &stream,
                    deadline: Instant::now() + WRITE_DEADLINE,
                    head_only: req.head_only,
                };
                let _ = handler.handle(&req, &mut out);
            }
        }));
        close(stream);
    }
}

/// Writes one answer within the write deadline.
pub struct Responder<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    head_only: bool,
}

impl Responder<'_> {
    /// The status line, `headers`, and the body made of `body` parts in order
    /// (the body is left out for HEAD).
    pub fn send(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[&[u8]],
    ) -> io::Result<()> {
        let len: usize = body.iter().map(|b| b.len()).sum();
        let head = response_head(status, headers, len);
        self.write(head.as_bytes())?;
        if !self.head_only {
            for part in body {
                self.write(part)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream.set_write_timeout(Some(left))?;
            match (&mut &*self.stream).write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn response_head(status: u16, headers: &[(&str, &str)], len: usize) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    head
}

/// A short answer from the connection thread: one non-blocking write, which
/// an empty socket buffer always takes whole; a client that made it fail
/// loses only its own answer.
fn answer_now(stream: TcpStream, status: u16, headers: &[(&str, &str)], body: &str) {
    let mut msg = response_head(status, headers, body.len());
    msg.push_str(body);
    let _ = (&stream).write(msg.as_bytes());
    close(stream);
}

/// Closes after the answer: reads what the client still sent (without
/// waiting), so that closing does not turn into a reset that could discard
/// the answer on its way.
fn close(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match (&stream).read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
}

struct Pending {
    stream: TcpStream,
    head: Vec<u8>,
    /// Bytes of `head` already searched for the end of the head.
    scanned: usize,
    deadline: Instant,
}

struct Acceptor {
    listener: TcpListener,
    queue: SyncSender<(TcpStream, Request)>,
    stats: Arc<Stats>,
    pending: Vec<Pending>,
    /// Accepting is paused until then after an accept error.
    backoff_until: Option<Instant>,
    backoff: Duration,
}

enum Head {
    Incomplete,
    Closed,
    Done(Result<Request, Reject>),
}

impl Acceptor {
    fn new(
        listener: TcpListener,
        queue: SyncSender<(TcpStream, Request)>,
        stats: Arc<Stats>,
    ) -> Self {
        Acceptor {
            listener,
            queue,
            stats,
            pending: Vec::with_capacity(16),
            backoff_until: None,
            backoff: BACKOFF_MIN,
        }
    }

    fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(16);
        loop {
            let now = Instant::now();
            self.expire(now);
            if self.backoff_until.is_some_and(|t| t <= now) {
                self.backoff_until = None;
            }
            let listening = self.backoff_until.is_none();
            fds.clear();
            fds.extend(self.pending.iter().map(|p| pollfd(&p.stream)));
            if listening {
                fds.push(pollfd(&self.listener));
            }
            let wake = self
                .pending
                .iter()
                .map(|p| p.deadline)
                .chain(self.backoff_until)
                .min();
            let timeout = wake.map_or(BACKOFF_MAX, |t| {
                t.saturating_duration_since(now).min(BACKOFF_MAX)
            });
            if let Err(e) = poll(&mut fds, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // Never a busy loop, whatever the kernel says.
                    log::warn!("http: poll: {e}");
                    std::thread::sleep(BACKOFF_MIN);
                }
                continue;
            }
            let polled = std::mem::take(&mut self.pending);
            for (mut p, fd) in polled.into_iter().zip(&fds) {
                if fd.revents == 0 {
                    self.pending.push(p);
                    continue;
                }
                match read_head(&mut p) {
                    Head::Incomplete => self.pending.push(p),
                    Head::Closed => {}
                    Head::Done(r) => self.dispatch(p.stream, r),
                }
            }
            if listening && fds.last().is_some_and(|f| f.revents != 0) {
                self.accept();
            }
        }
    }

    /// Closes connections whose head did not arrive in time.
    fn expire(&mut self, now: Instant) {
        let polled = std::mem::take(&mut self.pending);
        for p in polled {
            if p.deadline > now {
                self.pending.push(p);
                continue;
            }
            self.stats.head_timeouts.fetch_add(1, Relaxed);
            answer_now(p.stream, 408, &[], "request head not received in time\n");
        }
    }

    fn accept(&mut self) {
        // A bounded batch per wake-up, so that pending heads are read too.
        for _ in 0..64 {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.backoff = BACKOFF_MIN;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.pending.len() >= MAX_PENDING {
                        // The oldest has had the longest to send its head.
                        let old = self.pending.remove(0);
                        self.stats.evicted.fetch_add(1, Relaxed);
                        answer_now(
                            old.stream,
                            503,
                            &[("Retry-After", "1")],
                            "too many connections\n",
                        );
                    }
                    self.pending.push(Pending {
                        stream,
                        head: Vec::new(),
                        scanned: 0,
                        deadline: Instant::now() + HEAD_DEADLINE,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The peer went away before accept: nothing to do.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR)) => {}
                Err(e) => {
                    // EMFILE and friends: the connection stays queued in the
                    // kernel and poll would report it again at once.
                    let n = self.stats.accept_errors.fetch_add(1, Relaxed);
                    if n == 0 || self.backoff == BACKOFF_MAX {
                        log::warn!("http: accept: {e}; pausing {:?}", self.backoff);
                    }
                    self.backoff_until = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    return;
                }
            }
        }
    }

    fn dispatch(&self, stream: TcpStream, r: Result<Request, Reject>) {
        self.stats.requests.fetch_add(1, Relaxed);
        let req = match r {
            Ok(req) => req,
            Err(reject) => {
                self.stats.bad_requests.fetch_add(1, Relaxed);
                let (status, headers, body): (u16, &[(&str, &str)], &str) = match reject {
                    Reject::TooLarge => (431, &[], "request head too large\n"),
                    Reject::Malformed => (400, &[], "malformed request\n"),
                    Reject::Method => (405, &[("Allow", "GET, HEAD")], "only GET and HEAD\n"),
                };
                return answer_now(stream, status, headers, body);
            }
        };
        match self.queue.try_send((stream, req)) {
            Ok(()) => {}
            Err(TrySendError::Full((stream, _)) | TrySendError::Disconnected((stream, _))) => {
                self.stats.busy.fetch_add(1, Relaxed);
                answer_now(stream, 503, &[("Retry-After", "1")], "busy, try again\n");
            }
        }
    }
}

/// Reads what arrived; `Done` once the head is complete (or cannot be).
fn read_head(p: &mut Pending) -> Head {
    let mut chunk = [0u8; 2048];
    loop {
        match (&p.stream).read(&mut chunk) {
            Ok(0) => return Head::Closed,
            Ok(n) => {
                p.head.extend_from_slice(&chunk[..n]);
                if let Some(end) = head_end(&p.head, p.scanned) {
                    return Head::Done(parse_head(&p.head[..end]));
                }
                if p.head.len() > MAX_REQUEST_HEAD {
                    return Head::Done(Err(Reject::TooLarge));
                }
                p.scanned = p.head.len();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Head::Incomplete,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Head::Closed,
        }
    }
}

/// The length of the head up to and including its empty line, which ends in
/// CRLF or a bare LF (RFC 9112 §2.2 lets a server accept a bare LF).
pub fn head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    // An end split across two reads starts at most two bytes back.
    let from = scanned.saturating_sub(2);
    (from..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            return None;
        }
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => Some(i + 2),
            Some([b'\r', b'\n', ..]) => Some(i + 3),
            _ => None,
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Malformed,
    TooLarge,
    Method,
}

/// Parses a complete request head (request line and header fields).
pub fn parse_head(head: &[u8]) -> Result<Request, Reject> {
    let text = std::str::from_utf8(head).map_err(|_| Reject::Malformed)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(Reject::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::Malformed);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(Reject::Malformed);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Reject::Method),
    };
    let mut accepts_gzip = false;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("accept-encoding") {
            accepts_gzip |= accepts(value, "gzip");
        }
    }
    Ok(Request {
        head_only,
        path: target.split('?').next().unwrap_or_default().to_string(),
        accepts_gzip,
    })
}

/// `coding` is listed in an Accept-Encoding value with a non-zero q.
fn accepts(value: &str, coding: &str) -> bool {
    value.split(',').any(|item| {
        let mut params = item.split(';');
        let name = params.next().unwrap_or_default().trim();
        let zero = params.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        name.eq_ignore_ascii_case(coding) && !zero
    })
}

fn pollfd(fd: &impl AsRawFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is an exclusively borrowed slice of initialised pollfd
    // structs, and its length is the count passed; the kernel writes only
    // `revents` within it.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
#[path = "http/tests.rs"]
mod tests;
