//! A small HTTP/1.1 server, hardened against slow and hostile clients.
//!
//! One thread waits on the listener and on every connection that has not yet
//! sent its whole request head (poll(2)), each with a deadline for the whole
//! head counted from accept, not per read. A slow client costs an entry in
//! that bounded set, never a worker: the fixed pool of workers, started once,
//! takes complete requests from a bounded queue (each request wakes exactly
//! one idle worker) and renders their answers. A worker sends a plain-HTTP
//! answer itself, head and body parts in one non-blocking `sendmsg`, and
//! closes the connection when the socket took it all, the common case (16
//! HCAs scrape in ~17 KB with gzip, 120 KB without, which loopback takes): the
//! connection thread hears nothing of it. Only what the socket did not take
//! (and every TLS answer) is handed back to the connection thread, which
//! writes it as the socket takes it (POLLOUT), within a write deadline, at
//! most `MAX_WRITERS` at once (a new one evicts the oldest). A slow reader
//! thus never holds a worker either. A full pending set evicts its oldest
//! entry; a full work queue is answered 503 after the request was read, so
//! the client sees an answer, not a reset. Accept errors (EMFILE)
//! back off. Every answer closes the connection; Prometheus and curl need
//! nothing more.
//!
//! With TLS (a web config file, [`super::web_config`]) the handshake runs in
//! that same thread on the non-blocking socket, under the same head deadline:
//! a client that stalls its handshake costs a pending entry like one that
//! stalls its head, never a worker. The handshake's CPU (one signature and
//! one key exchange, about a millisecond) is paid there, and so is the
//! encryption of the answers as they are written. Basic auth is checked by the worker, since bcrypt
//! may take ~70 ms on a password not seen before; one bcrypt runs at a time, and a request that
//! needs another meanwhile is answered 503 at once (see [`super::web_config`]).
//!
//! The request head is limited to 8 KiB, checked as bytes arrive (431, then close).
//! Only GET and HEAD are served; any other method is 405 with `Allow`, whatever its target; an
//! absolute-form target is served by its path, an asterisk-form one with GET is 400.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::ServerConnection;

use super::web_config::{Auth, WebConfig, WebConfigSource};
use crate::clock;

/// The whole request head must arrive within this time from accept.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The whole answer must be written within this time.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Answers being written at once; a new one evicts the oldest.
const MAX_WRITERS: usize = 64;
const MAX_REQUEST_HEAD: usize = 8192;
/// Connections still sending their request head.
const MAX_PENDING: usize = 256;
/// Complete requests waiting for a worker; one more is answered 503.
pub const MAX_QUEUED: usize = 256;
/// Workers of the scrape endpoint.
pub const WORKERS: usize = 4;
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
    /// What follows the `?` of the target (empty without one).
    pub query: String,
    /// The client accepts `Content-Encoding: gzip`.
    pub accepts_gzip: bool,
    /// The `Authorization` header's value.
    pub authorization: Option<String>,
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
    /// TLS handshakes or records that failed (plain HTTP on a TLS port,
    /// a missing or untrusted client certificate ...).
    pub tls_errors: AtomicU64,
    /// Answered 401: basic auth missing or wrong.
    pub unauthorized: AtomicU64,
    /// Answered 503: a password not seen before needed bcrypt while another
    /// was being checked (one at a time, so a flood of wrong passwords holds
    /// one worker at most).
    pub auth_busy: AtomicU64,
    /// Answers cut off because the client did not read them within the write deadline.
    pub write_timeouts: AtomicU64,
    /// Answers cut off to make room for a new one (the oldest writer).
    pub write_evicted: AtomicU64,
    /// Answers handed back by a worker to the connection thread, which
    /// writes them as the client reads: plain answers the socket did not
    /// take whole at once (a slow or distant reader), and every TLS answer.
    pub handed_back: AtomicU64,
}

/// An accepted connection: the socket, its TLS session if any, and the web
/// configuration in force when it was accepted.
struct Conn {
    stream: TcpStream,
    tls: Option<Box<ServerConnection>>,
    web: Option<Arc<WebConfig>>,
}

/// Answers one request. Called on a worker thread.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request, out: &mut Responder<'_>);
}

pub struct Server {
    pub local_addr: SocketAddr,
    pub stats: Arc<Stats>,
}

/// Binds now (so a taken port is an error at startup), starts `workers`
/// workers, the connection thread and, with a web config, the thread that
/// reloads it; threads are named after `name`. A thread that cannot start is
/// a startup error.
pub fn spawn(
    name: &str,
    addr: SocketAddr,
    web: Option<Arc<WebConfigSource>>,
    workers: usize,
    handler: impl FnOnce(Arc<Stats>) -> Arc<dyn Handler>,
) -> io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    defer_accept(&listener);
    let local_addr = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    let handler = handler(stats.clone());
    let queue = Arc::new(Queue::default());
    // Workers hand the answers the socket did not take back to the
    // connection thread, and wake its poll(2) through the socket pair.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Writer>();
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let wake_tx = Arc::new(wake_tx);
    if let Some(web) = &web {
        web.watch()?;
    }
    for i in 0..workers.max(1) {
        let queue = queue.clone();
        let handler = handler.clone();
        let web = web.clone();
        let stats = stats.clone();
        let done = done_tx.clone();
        let wake = wake_tx.clone();
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            // Debug builds' frames are large (the deflater's bit buffer is
            // 4 KiB); untouched stack pages cost no memory.
            .stack_size(WORKER_STACK)
            .spawn(move || {
                // A compressed text per set (~81 KiB at 64 HCAs): given
                // back when freed instead of kept by the allocator.
                crate::allocator::short_lived_blocks();
                worker(&queue, &*handler, web.as_deref(), &stats, &done, &wake)
            })?;
    }
    let stats2 = stats.clone();
    let acceptor = Acceptor::new(listener, queue, stats2, web, done_rx, wake_rx);
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(128 * 1024)
        .spawn(move || acceptor.run())?;
    Ok(Server { local_addr, stats })
}

/// Complete requests waiting for a worker, at most [`MAX_QUEUED`]. A request
/// wakes exactly one idle worker, and none of the others: idle workers wait
/// on the condition variable, never on the lock.
#[derive(Default)]
struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

#[derive(Default)]
struct Jobs {
    waiting: VecDeque<(Conn, Request)>,
    /// The connection thread is gone: workers end once the queue is empty.
    closed: bool,
}

impl Queue {
    /// The jobs; a thread that panicked holding them left them consistent
    /// (every change is a single push, pop or flag).
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job unless the queue is full (or closed): then it is given back.
    fn push(&self, job: (Conn, Request)) -> Result<(), (Conn, Request)> {
        let mut jobs = self.lock();
        if jobs.closed || jobs.waiting.len() >= MAX_QUEUED {
            return Err(job);
        }
        jobs.waiting.push_back(job);
        drop(jobs);
        // After the unlock, so the woken worker does not wait for the lock.
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, waiting for one; `None` once closed and empty.
    fn pop(&self) -> Option<(Conn, Request)> {
        let mut jobs = self.lock();
        loop {
            if let Some(job) = jobs.waiting.pop_front() {
                return Some(job);
            }
            if jobs.closed {
                return None;
            }
            jobs = self.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

fn worker(
    queue: &Queue,
    handler: &dyn Handler,
    web: Option<&WebConfigSource>,
    stats: &Stats,
    done: &Sender<Writer>,
    wake: &UnixStream,
) {
    while let Some((mut conn, req)) = queue.pop() {
        // A handler bug costs one answer, never a worker.
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut out = Responder {
                head_only: req.head_only,
                extra: conn.web.as_ref().map_or(&[], |c| &c.headers[..]),
                parts: Vec::new(),
            };
            let auth = match (web, &conn.web) {
                (Some(web), Some(config)) => web.authorize(config, req.authorization.as_deref()),
                _ => Auth::Granted,
            };
            match auth {
                Auth::Granted => handler.handle(&req, &mut out),
                Auth::Denied => {
                    stats.unauthorized.fetch_add(1, Relaxed);
                    out.send(
                        401,
                        &[
                            ("WWW-Authenticate", "Basic"),
                            ("Content-Type", "text/plain; charset=utf-8"),
                        ],
                        vec![Part::Static(b"Unauthorized\n")],
                    );
                }
                Auth::Busy => {
                    stats.auth_busy.fetch_add(1, Relaxed);
                    out.send(
                        503,
                        &[
                            ("Retry-After", "1"),
                            ("Content-Type", "text/plain; charset=utf-8"),
                        ],
                        vec![Part::Static(
                            b"another password is being checked, try again\n",
                        )],
                    );
                }
            }
            out.parts
        }));
        let parts = match answer {
            Ok(parts) if !parts.is_empty() => parts,
            _ => {
                close(conn);
                continue;
            }
        };
        let mut out = Outgoing {
            parts,
            part: 0,
            offset: 0,
        };
        // What the socket takes now goes at once, without blocking; TLS
        // answers are encrypted and written by the connection thread.
        if conn.tls.is_none() {
            match out.progress(&mut conn) {
                Progress::Done => {
                    close(conn);
                    continue;
                }
                Progress::Failed => continue,
                Progress::Blocked => {}
            }
        }
        // The rest is written by the connection thread as the client reads:
        // a slow reader never holds a worker.
        stats.handed_back.fetch_add(1, Relaxed);
        let w = Writer {
            conn,
            out,
            deadline: clock::from_now(WRITE_DEADLINE),
        };
        if done.send(w).is_ok() {
            // A full pipe already means a wake-up is due.
            let _ = (&*wake).write(&[1]);
        }
    }
}

/// A piece of an answer's body: what the socket did not take from the
/// worker is written by the connection thread after the worker returned, so
/// parts own or share their bytes.
pub enum Part {
    Static(&'static [u8]),
    Owned(Vec<u8>),
    /// A published buffer (snapshot JSON, gzip prefix), shared rather than
    /// copied.
    Shared(Arc<dyn AsRef<[u8]> + Send + Sync>),
    /// Piece `usize` of a published buffer made of pieces (a metric set's
    /// families' texts), shared: the answer is its pieces in one
    /// `sendmsg`, never copied into one text.
    Piece(Arc<dyn Pieces + Send + Sync>, usize),
}

/// A published buffer in pieces.
pub trait Pieces {
    /// Piece `i` (empty past the last).
    fn piece(&self, i: usize) -> &[u8];
}

impl Part {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Static(b) => b,
            Part::Owned(b) => b,
            Part::Shared(b) => (**b).as_ref(),
            Part::Piece(b, i) => b.piece(*i),
        }
    }
}

/// Collects one answer; the worker sends it (what is left, the connection thread).
pub struct Responder<'a> {
    head_only: bool,
    /// Headers from the web config, added to every answer.
    extra: &'a [(String, String)],
    parts: Vec<Part>,
}

impl Responder<'_> {
    /// The status line, `headers`, and the body made of `body` parts in order
    /// (the body is left out for HEAD). A second call replaces the first.
    pub fn send(&mut self, status: u16, headers: &[(&str, &str)], body: Vec<Part>) {
        let len: usize = body.iter().map(|b| b.bytes().len()).sum();
        let head = response_head(status, headers, self.extra, len);
        self.parts.clear();
        self.parts.reserve(1 + body.len());
        self.parts.push(Part::Owned(head.into_bytes()));
        if !self.head_only {
            self.parts.extend(body);
        }
    }
}

/// An answer being written by the connection thread on POLLOUT.
struct Writer {
    conn: Conn,
    out: Outgoing,
    deadline: Instant,
}

/// An answer's parts and how far they were written.
struct Outgoing {
    parts: Vec<Part>,
    /// The part being written and the bytes of it already written (or, with
    /// TLS, given to rustls).
    part: usize,
    offset: usize,
}

enum Progress {
    Blocked,
    Done,
    Failed,
}

/// Parts given to one `sendmsg` (or to rustls at once): a metrics answer is
/// a head, a part per family (~150 at 16 HCAs) and a tail; a longer one
/// takes more calls.
const MAX_IOVECS: usize = 256;

impl Outgoing {
    /// Writes what the socket takes now, without blocking.
    fn progress(&mut self, conn: &mut Conn) -> Progress {
        match conn.tls.as_deref_mut() {
            Some(tls) => self.progress_tls(&conn.stream, tls),
            None => self.progress_plain(&conn.stream),
        }
    }

    /// Every part left in one `sendmsg` (head and body together, so the
    /// answer costs one syscall and leaves in full segments); a short write
    /// means the socket buffer is full, and POLLOUT tells when to go on.
    fn progress_plain(&mut self, stream: &TcpStream) -> Progress {
        loop {
            let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
            let (n, want) = self.unwritten(&mut iov);
            if n == 0 {
                return Progress::Done;
            }
            let sent = match send_vectored(stream, &iov[..n]) {
                Ok(0) => return Progress::Failed,
                Ok(sent) => sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Progress::Failed,
            };
            self.advance(sent);
            if sent < want {
                return Progress::Blocked;
            }
        }
    }

    /// The parts not yet written, from where the writing stands, into `iov`
    /// (empty ones left out): how many slices and their bytes.
    fn unwritten<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOVECS]) -> (usize, usize) {
        let mut n = 0;
        let mut want = 0;
        for (i, part) in self.parts.iter().enumerate().skip(self.part) {
            if n == MAX_IOVECS {
                break;
            }
            let skip = if i == self.part { self.offset } else { 0 };
            let bytes = part.bytes().get(skip..).unwrap_or_default();
            if !bytes.is_empty() {
                iov[n] = IoSlice::new(bytes);
                n += 1;
                want += bytes.len();
            }
        }
        (n, want)
    }

    /// Moves past `n` written bytes.
    fn advance(&mut self, mut n: usize) {
        while let Some(part) = self.parts.get(self.part) {
            let rest = part.bytes().len() - self.offset;
            if n < rest {
                self.offset += n;
                return;
            }
            n -= rest;
            self.part += 1;
            self.offset = 0;
        }
    }

    fn progress_tls(&mut self, stream: &TcpStream, tls: &mut ServerConnection) -> Progress {
        loop {
            // What rustls already encrypted goes out before more is given.
            while tls.wants_write() {
                match tls.write_tls(&mut &*stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Progress::Blocked;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Progress::Failed,
                }
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
            let (n, _) = self.unwritten(&mut iov);
            if n == 0 {
                return Progress::Done;
            }
            // rustls takes plaintext up to its buffer limit, in full records
            // across the slices; its buffer was flushed just above, so 0 is
            // an error.
            match tls.writer().write_vectored(&iov[..n]) {
                Ok(0) => return Progress::Failed,
                Ok(taken) => self.advance(taken),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Failed,
            }
        }
    }
}

/// One non-blocking `sendmsg` of `bufs`; no SIGPIPE when the peer is gone
/// (EPIPE instead, like std's `send`).
fn send_vectored(stream: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (std documents it); the
    // kernel only reads the buffers, which `bufs` borrows for the call.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: `msg` points at `bufs.len()` live iovecs and nothing else; the
    // descriptor is the stream's, open for the call.
    let n = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
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

fn response_head(
    status: u16,
    headers: &[(&str, &str)],
    extra: &[(String, String)],
    len: usize,
) -> String {
    use std::fmt::Write as _;
    // One allocation: a scrape's head is ~150 bytes, and longer headers grow it.
    let mut head = String::with_capacity(256);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    let extra = extra.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in headers.iter().copied().chain(extra) {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    let _ = write!(head, "Content-Length: {len}\r\nConnection: close\r\n\r\n");
    head
}

/// A short answer from the connection thread: one non-blocking write, which
/// an empty socket buffer always takes whole; a client that made it fail
/// loses only its own answer.
fn answer_now(mut conn: Conn, status: u16, headers: &[(&str, &str)], body: &str) {
    let extra = conn.web.as_ref().map_or(&[][..], |c| &c.headers[..]);
    let mut msg = response_head(status, headers, extra, body.len());
    msg.push_str(body);
    match conn.tls.as_deref_mut() {
        // Before the handshake is done there is no one to answer.
        Some(tls) if !tls.is_handshaking() => {
            let _ = tls.writer().write_all(msg.as_bytes());
        }
        Some(_) => {}
        None => {
            let _ = (&conn.stream).write(msg.as_bytes());
        }
    }
    close(conn);
}

/// Closes after the answer: reads what the client still sent (without
/// waiting), so that closing does not turn into a reset that could discard
/// the answer on its way.
fn close(mut conn: Conn) {
    let stream = conn.stream;
    if let Some(tls) = conn.tls.as_deref_mut() {
        tls.send_close_notify();
        let mut out = Vec::new();
        while tls.wants_write() && tls.write_tls(&mut out).is_ok() {}
        // Whatever the kernel buffer takes now; the answer itself was
        // already written in full.
        let _ = (&stream).write(&out);
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Every connection is non-blocking from accept on.
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match (&stream).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

struct Pending {
    conn: Conn,
    head: Vec<u8>,
    /// Bytes of `head` already searched for the end of the head.
    scanned: usize,
    deadline: Instant,
}

struct Acceptor {
    listener: TcpListener,
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    web: Option<Arc<WebConfigSource>>,
    pending: Vec<Pending>,
    /// Answers the workers handed back, and the wake-up that comes with each.
    done: Receiver<Writer>,
    wake: UnixStream,
    writers: Vec<Writer>,
    /// Accepting is paused until then after an accept error.
    backoff_until: Option<Instant>,
    backoff: Duration,
}

impl Drop for Acceptor {
    /// Lets the workers end (the connection thread panicked).
    fn drop(&mut self) {
        self.queue.close();
    }
}

enum Head {
    Incomplete,
    Closed,
    Done(Result<Request, Reject>),
}

impl Acceptor {
    fn new(
        listener: TcpListener,
        queue: Arc<Queue>,
        stats: Arc<Stats>,
        web: Option<Arc<WebConfigSource>>,
        done: Receiver<Writer>,
        wake: UnixStream,
    ) -> Self {
        Acceptor {
            listener,
            queue,
            stats,
            web,
            pending: Vec::with_capacity(16),
            done,
            wake,
            writers: Vec::with_capacity(16),
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
            fds.extend(self.pending.iter().map(|p| {
                let mut fd = pollfd(&p.conn.stream);
                if p.conn.tls.as_ref().is_some_and(|t| t.wants_write()) {
                    fd.events |= libc::POLLOUT;
                }
                fd
            }));
            fds.extend(self.writers.iter().map(|w| libc::pollfd {
                events: libc::POLLOUT,
                ..pollfd(&w.conn.stream)
            }));
            fds.push(pollfd(&self.wake));
            if listening {
                fds.push(pollfd(&self.listener));
            }
            let due = self
                .pending
                .iter()
                .map(|p| p.deadline)
                .chain(self.writers.iter().map(|w| w.deadline))
                .chain(self.backoff_until);
            if let Err(e) = poll(&mut fds, poll_timeout(now, due)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // Never a busy loop, whatever the kernel says.
                    log::warn!("http: poll: {e}");
                    std::thread::sleep(BACKOFF_MIN);
                }
                continue;
            }
            let (pending_fds, rest) = fds.split_at(self.pending.len());
            let (writer_fds, rest) = rest.split_at(self.writers.len());
            let woken = rest[0].revents != 0;
            let writing = std::mem::take(&mut self.writers);
            for (mut w, fd) in writing.into_iter().zip(writer_fds) {
                if fd.revents == 0 {
                    self.writers.push(w);
                    continue;
                }
                match w.out.progress(&mut w.conn) {
                    Progress::Blocked => self.writers.push(w),
                    Progress::Done => close(w.conn),
                    Progress::Failed => {}
                }
            }
            if woken {
                self.take_answers();
            }
            let polled = std::mem::take(&mut self.pending);
            for (p, fd) in polled.into_iter().zip(pending_fds) {
                if fd.revents == 0 {
                    self.pending.push(p);
                    continue;
                }
                self.read(p);
            }
            if listening && fds.last().is_some_and(|f| f.revents != 0) {
                self.accept();
            }
        }
    }

    /// Goes on writing the answers the workers handed back.
    fn take_answers(&mut self) {
        let mut sink = [0u8; 64];
        while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        while let Ok(mut w) = self.done.try_recv() {
            // The client may have read meanwhile (and a TLS answer is not
            // started yet): what the socket takes now goes before a writer
            // slot is taken.
            match w.out.progress(&mut w.conn) {
                Progress::Blocked => {}
                Progress::Done => {
                    close(w.conn);
                    continue;
                }
                Progress::Failed => continue,
            }
            if self.writers.len() >= MAX_WRITERS {
                // The oldest has had the longest to read its answer.
                self.writers.remove(0);
                self.stats.write_evicted.fetch_add(1, Relaxed);
            }
            self.writers.push(w);
        }
    }

    /// Closes connections whose head did not arrive, or whose answer was
    /// not read, in time.
    fn expire(&mut self, now: Instant) {
        let before = self.writers.len();
        self.writers.retain(|w| w.deadline > now);
        let expired = (before - self.writers.len()) as u64;
        self.stats.write_timeouts.fetch_add(expired, Relaxed);
        let polled = std::mem::take(&mut self.pending);
        for p in polled {
            if p.deadline > now {
                self.pending.push(p);
                continue;
            }
            self.stats.head_timeouts.fetch_add(1, Relaxed);
            answer_now(p.conn, 408, &[], "request head not received in time\n");
        }
    }

    /// Reads what a pending connection sent: it stays pending, goes, or
    /// its request is dispatched.
    fn read(&mut self, mut p: Pending) {
        let head = if p.conn.tls.is_some() {
            read_tls_head(&mut p, &self.stats)
        } else {
            read_head(&mut p)
        };
        match head {
            Head::Incomplete => self.pending.push(p),
            Head::Closed => {}
            Head::Done(r) => self.dispatch(p.conn, r),
        }
    }

    fn accept(&mut self) {
        // A bounded batch per wake-up, so that pending heads are read too.
        for _ in 0..64 {
            match accept_nonblocking(&self.listener) {
                Ok(stream) => {
                    self.backoff = BACKOFF_MIN;
                    if self.pending.len() >= MAX_PENDING {
                        // The oldest has had the longest to send its head.
                        let old = self.pending.remove(0);
                        self.stats.evicted.fetch_add(1, Relaxed);
                        answer_now(
                            old.conn,
                            503,
                            &[("Retry-After", "1")],
                            "too many connections\n",
                        );
                    }
                    let web = self.web.as_ref().map(|w| w.current());
                    let tls = match web.as_ref().and_then(|w| w.tls.clone()) {
                        Some(config) => match ServerConnection::new(config) {
                            Ok(tls) => Some(Box::new(tls)),
                            Err(e) => {
                                log::warn!("http: TLS session: {e}");
                                continue;
                            }
                        },
                        None => None,
                    };
                    let conn = Conn { stream, tls, web };
                    // The head (or TLS hello) has usually arrived by now: read
                    // at once rather than after another poll.
                    self.read(Pending {
                        conn,
                        head: Vec::new(),
                        scanned: 0,
                        deadline: clock::from_now(HEAD_DEADLINE),
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
                    self.backoff_until = Some(clock::from_now(self.backoff));
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    return;
                }
            }
        }
    }

    fn dispatch(&self, conn: Conn, r: Result<Request, Reject>) {
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
                return answer_now(conn, status, headers, body);
            }
        };
        match self.queue.push((conn, req)) {
            Ok(()) => {}
            Err((conn, _)) => {
                self.stats.busy.fetch_add(1, Relaxed);
                answer_now(conn, 503, &[("Retry-After", "1")], "busy, try again\n");
            }
        }
    }
}

/// TCP_DEFER_ACCEPT: the listener reports a connection once its first bytes
/// (the request head, or the TLS hello) are in, so that accepting it and
/// reading its head take one wake-up of the connection thread, not two. A
/// client that connects and sends nothing is still accepted after about a
/// second (one SYN-ACK retransmission, RFC 6298's initial RTO; the kernel
/// turns the seconds into retransmissions), and its head deadline then runs
/// as for any other; until then it costs a request socket in the kernel's
/// bounded SYN queue, nothing here. Only an optimisation: a kernel that
/// refuses it changes nothing else.
fn defer_accept(listener: &TcpListener) {
    let secs: libc::c_int = 1;
    let set = crate::sources::netlink::set_option(
        listener.as_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        &secs,
    );
    if let Err(e) = set {
        log::debug!("http: TCP_DEFER_ACCEPT: {e}");
    }
}

/// accept(2) of a non-blocking connection (accept4 with `SOCK_NONBLOCK`:
/// no second syscall to make it so); the peer's address is not asked for.
fn accept_nonblocking(listener: &TcpListener) -> io::Result<TcpStream> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: null address and length pointers ask for no peer address; the
    // listener's descriptor is open for the call.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            flags,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(unsafe { TcpStream::from_raw_fd(fd) })
}

/// Reads what arrived; `Done` once the head is complete (or cannot be).
fn read_head(p: &mut Pending) -> Head {
    let mut chunk = [0u8; 2048];
    loop {
        match (&p.conn.stream).read(&mut chunk) {
            Ok(0) => return Head::Closed,
            Ok(n) => {
                if let Some(done) = take_head(&mut p.head, &mut p.scanned, &chunk[..n]) {
                    return done;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Head::Incomplete,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Head::Closed,
        }
    }
}

/// Adds request bytes; `Some` once the head is complete (or cannot be).
/// The limit is exact and checked as bytes arrive: a head that does not end
/// within [`MAX_REQUEST_HEAD`] bytes is refused as soon as they are in,
/// whether or not its end came in the same read.
fn take_head(head: &mut Vec<u8>, scanned: &mut usize, bytes: &[u8]) -> Option<Head> {
    let room = (MAX_REQUEST_HEAD + 1).saturating_sub(head.len());
    head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    match head_end(head, *scanned) {
        Some(end) if end <= MAX_REQUEST_HEAD => Some(Head::Done(parse_head(&head[..end]))),
        Some(_) => Some(Head::Done(Err(Reject::TooLarge))),
        None if head.len() > MAX_REQUEST_HEAD => Some(Head::Done(Err(Reject::TooLarge))),
        None => {
            *scanned = head.len();
            None
        }
    }
}

/// The TLS form of [`read_head`]: feeds what arrived to rustls (handshake
/// or records), sends what it has to send without blocking, and reads the
/// decrypted head.
fn read_tls_head(p: &mut Pending, stats: &Stats) -> Head {
    let Some(tls) = p.conn.tls.as_deref_mut() else {
        return Head::Closed;
    };
    let stream = &p.conn.stream;
    let mut chunk = [0u8; 2048];
    loop {
        // Handshake messages (or an alert) first: the client waits for them.
        while tls.wants_write() {
            match tls.write_tls(&mut &*stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Head::Closed,
            }
        }
        match tls.read_tls(&mut &*stream) {
            Ok(0) => return Head::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Head::Incomplete,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Head::Closed,
        }
        if let Err(e) = tls.process_new_packets() {
            stats.tls_errors.fetch_add(1, Relaxed);
            log::debug!("http: TLS: {e}");
            // The alert rustls queued tells the client why.
            while tls.wants_write() && tls.write_tls(&mut &*stream).is_ok() {}
            return Head::Closed;
        }
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Head::Closed,
                Ok(n) => {
                    if let Some(done) = take_head(&mut p.head, &mut p.scanned, &chunk[..n]) {
                        return done;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Head::Closed,
            }
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
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Err(Reject::Malformed);
    }
    // Any other method (`OPTIONS *` too) is 405 with Allow, whatever its target.
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Reject::Method),
    };
    let target = origin_form(target).ok_or(Reject::Malformed)?;
    let mut accepts_gzip = false;
    let mut authorization = None;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("accept-encoding") {
            accepts_gzip |= accepts(value, "gzip");
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.trim().to_string());
        }
    }
    Ok(Request {
        head_only,
        path: target.split('?').next().unwrap_or_default().to_string(),
        query: target
            .split_once('?')
            .map(|(_, q)| q.to_string())
            .unwrap_or_default(),
        accepts_gzip,
        authorization,
    })
}

/// The origin form (`/path?query`) of a request target: as is, or the path
/// of an absolute form (`http://host:port/path?query`, which RFC 9112 §3.2.2
/// says a server must accept). The asterisk form (`*`, for OPTIONS only) and
/// anything else: `None`.
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    // An empty path is "/" (RFC 9110 §4.2.3).
    Some(match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => &rest[i..],
        _ => "/",
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

/// How long the connection thread may sleep: until the first of the `due`
/// deadlines (at most [`BACKOFF_MAX`]), or with nothing due until a client or
/// a handed-back answer comes (`None`), rather than waking every second for
/// nothing.
fn poll_timeout(now: Instant, due: impl Iterator<Item = Instant>) -> Option<Duration> {
    due.min()
        .map(|t| t.saturating_duration_since(now).min(BACKOFF_MAX))
}

/// poll(2)'s timeout: -1 for none, else milliseconds rounded up (a
/// deadline 0.9 ms away must not become poll(0) and a spin until it passes).
fn poll_ms(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |t| {
        t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
    })
}

/// poll(2); `None` waits without a timeout.
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = poll_ms(timeout);
    // SAFETY: `fds` is an exclusively borrowed slice of initialised pollfds, its
    // length the count passed; the kernel writes only `revents` within it.
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
