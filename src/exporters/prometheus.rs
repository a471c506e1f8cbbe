//! The built-in HTTP endpoint: `GET /metrics` (Prometheus text), `/healthz`,
//! `/snapshot` (latest JSON), `/analysis`. It only reads what the collection
//! loop published; a scrape never triggers collection. Connection handling
//! lives in [`super::http`].
//!
//! A scrape is the published set's cached text followed by a few series
//! computed at scrape time (how old the set is, the server's own counters).
//! With `Accept-Encoding: gzip` the set is compressed once, on the first
//! such scrape, in groups of families: a group whose text is the same as in
//! the set compressed before keeps its compressed bytes (see [`GzipPrefix`]). The
//! scrape-time series are appended to that cached stream as a final stored
//! deflate block.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::Published;
use super::deflate::Deflater;
use super::http::{self, Handler, Part, Request, Responder, Stats};
use super::web_config::WebConfigSource;
use crate::config::Endpoints;
use crate::metrics::{Builder, MetricSet};

pub use super::http::Server;

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds now (so a taken port is an error at startup) and serves on threads
/// started once, plain HTTP, every endpoint on.
pub fn spawn(addr: SocketAddr, published: Arc<Published>) -> io::Result<Server> {
    let all = Endpoints {
        snapshot: true,
        analysis: true,
    };
    spawn_with(addr, published, None, all)
}

/// [`spawn`] with a choice of endpoints and a web config. `web`: TLS, basic auth and headers (exporter-toolkit's web
/// config); every endpoint is behind its auth, `/healthz` included.
pub fn spawn_with(
    addr: SocketAddr,
    published: Arc<Published>,
    web: Option<Arc<WebConfigSource>>,
    endpoints: Endpoints,
) -> io::Result<Server> {
    http::spawn("http", addr, web.clone(), http::WORKERS, |stats| {
        Arc::new(Endpoint {
            published,
            stats,
            endpoints,
            web,
            gzip: Mutex::default(),
        })
    })
}

/// `prometheus.health_listen`: plain HTTP on a loopback address, `/healthz`
/// only (anything else is 404), for a kubelet's `httpGet` probe, which has
/// neither the client certificate nor the password of the scrape endpoint.
/// The one documented exception to the web config.
pub fn spawn_health(addr: SocketAddr, published: Arc<Published>) -> io::Result<Server> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("prometheus.health_listen {addr}: only a loopback address is allowed"),
        ));
    }
    http::spawn("health", addr, None, 1, |_| Arc::new(Health { published }))
}

struct Health {
    published: Arc<Published>,
}

impl Handler for Health {
    fn handle(&self, req: &Request, out: &mut Responder<'_>) {
        match req.path.as_str() {
            "/healthz" => healthz(&self.published, req, out),
            _ => out.send(
                404,
                &[("Content-Type", "text/plain; charset=utf-8")],
                vec![Part::Static(b"only /healthz here\n")],
            ),
        }
    }
}

/// `/healthz`: 200 when every liveness check passes, 503 otherwise, a line
/// per check; `?verbose` adds the node's verdict.
fn healthz(published: &Published, req: &Request, out: &mut Responder<'_>) {
    let checks = published.health();
    let mut body = String::new();
    for c in &checks {
        let state = if c.ok { "ok" } else { "FAILING" };
        body.push_str(&format!("{}: {state}: {}\n", c.name, c.detail));
    }
    if req
        .query
        .split('&')
        .any(|p| p == "verbose" || p == "verbose=1")
    {
        // The node's verdict is news, not the agent's liveness: it never fails /healthz.
        body.push_str(&published.verdict_lines());
    }
    let status = if checks.iter().all(|c| c.ok) {
        200
    } else {
        503
    };
    out.send(
        status,
        &[("Content-Type", "text/plain; charset=utf-8")],
        vec![Part::Owned(body.into_bytes())],
    )
}

struct Endpoint {
    published: Arc<Published>,
    stats: Arc<Stats>,
    endpoints: Endpoints,
    /// Its reload status is exported.
    web: Option<Arc<WebConfigSource>>,
    gzip: Mutex<GzipCache>,
}

impl Handler for Endpoint {
    fn handle(&self, req: &Request, out: &mut Responder<'_>) {
        let plain = [("Content-Type", "text/plain; charset=utf-8")];
        let off = match req.path.as_str() {
            "/snapshot" | "/fabric" => !self.endpoints.snapshot,
            "/analysis" => !self.endpoints.analysis,
            _ => false,
        };
        if off {
            return out.send(
                404,
                &plain,
                vec![Part::Static(
                    b"endpoint turned off (prometheus.endpoints)\n",
                )],
            );
        }
        match req.path.as_str() {
            "/metrics" => self.metrics(req, out),
            "/snapshot" => {
                let doc = self.published.snapshot.load_full();
                let doc = doc.map(|d| Part::Shared(d));
                json_or(out, doc, 503, b"no cycle has completed yet\n")
            }
            "/fabric" => {
                // The last sweep whole (the detail file's document), made on
                // demand: `top` asks once per sweep, and nothing is kept twice.
                let doc = self.published.snapshot.load_full();
                let json = doc.and_then(|d| d.snapshot.mad.as_ref()?.detail_json());
                let json = json.map(Part::Owned);
                json_or(out, json, 404, b"no fabric sweep yet (fabric mode off, or not swept yet)\n")
            }
            "/analysis" => {
                let json = self.published.analysis.load_full();
                let json = json.map(|j| Part::Shared(j));
                let why = b"no analysis yet (llm/dify off, or not posted yet)\n";
                json_or(out, json, 404, why)
            }
            "/healthz" => healthz(&self.published, req, out),
            "/" => out.send(
                200,
                &[("Content-Type", "text/html; charset=utf-8")],
                vec![Part::Static(b"<html><head><title>rdma-monitor</title></head><body><h1>rdma-monitor</h1>\
                  <p><a href=\"/metrics\">/metrics</a> <a href=\"/snapshot\">/snapshot</a> \
                  <a href=\"/analysis\">/analysis</a> <a href=\"/healthz\">/healthz</a></p></body></html>\n")],
            ),
            _ => out.send(404, &plain, vec![Part::Static(b"not found\n")]),
        }
    }
}

impl Endpoint {
    fn metrics(&self, req: &Request, out: &mut Responder<'_>) {
        let freshness = self.published.freshness();
        if freshness.age.is_none() {
            // An empty 200 would read as "this node has no RDMA".
            return out.send(
                503,
                &[("Content-Type", "text/plain; charset=utf-8")],
                vec![Part::Static(b"no collection cycle has completed yet\n")],
            );
        }
        let set = self.published.metrics.load();
        let tail = scrape_time_series(&freshness, &self.stats, self.web.as_deref());
        if !req.accepts_gzip {
            let mut body = Vec::with_capacity(set.families() + 1);
            body.extend((0..set.families()).map(|i| Part::Piece(set.clone(), i)));
            body.push(Part::Owned(tail));
            return out.send(
                200,
                &[("Content-Type", TEXT_FORMAT), ("Vary", "Accept-Encoding")],
                body,
            );
        }
        let prefix = self.gzip_prefix(&set);
        let end = prefix.finish(&tail);
        out.send(
            200,
            &[
                ("Content-Type", TEXT_FORMAT),
                ("Content-Encoding", "gzip"),
                ("Vary", "Accept-Encoding"),
            ],
            vec![Part::Shared(prefix), Part::Owned(end)],
        )
    }

    fn gzip_prefix(&self, set: &Arc<MetricSet>) -> Arc<GzipPrefix> {
        // Held while compressing: concurrent scrapes of a new set wait for
        // one compression instead of each doing it.
        let mut cache = self.gzip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((held, prefix)) = cache.latest.as_ref()
            && std::ptr::eq(held.as_ptr(), Arc::as_ptr(set))
        {
            return prefix.clone();
        }
        let GzipCache { latest, deflater } = &mut *cache;
        let before = latest.as_ref().map(|(_, p)| &**p);
        let prefix = Arc::new(GzipPrefix::new(deflater, set.texts(), before));
        cache.latest = Some((Arc::downgrade(set), prefix.clone()));
        prefix
    }
}

/// A published JSON document, or `status` with `why` when there is none yet.
fn json_or(out: &mut Responder<'_>, doc: Option<Part>, status: u16, why: &'static [u8]) {
    match doc {
        Some(doc) => out.send(200, &[("Content-Type", "application/json")], vec![doc]),
        None => out.send(
            status,
            &[("Content-Type", "text/plain; charset=utf-8")],
            vec![Part::Static(why)],
        ),
    }
}

// Published buffers go out as they are, shared with the connection thread
// that writes them.
impl http::Pieces for MetricSet {
    fn piece(&self, i: usize) -> &[u8] {
        self.family_text(i)
    }
}

impl AsRef<[u8]> for crate::snapshot::SnapshotDoc {
    fn as_ref(&self) -> &[u8] {
        self.json()
    }
}

impl AsRef<[u8]> for GzipPrefix {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Series that only make sense at scrape time, in the text format: built
/// and rendered as any other set.
fn scrape_time_series(f: &super::Freshness, s: &Stats, web: Option<&WebConfigSource>) -> Vec<u8> {
    let mut b = Builder::new();
    let age = f.age.map_or(f64::NAN, |a| a.as_secs_f64());
    b.gauge(
        "rdma_monitor_last_cycle_age_seconds",
        "Seconds since the last collection cycle completed, at scrape time.",
        &[],
        age,
    );
    b.gauge_u64(
        "rdma_monitor_scrape_stale",
        "1 when no collection cycle has completed for 3 poll intervals (at least 1 s): every other series is that old.",
        &[],
        f.stale().into(),
    );
    b.gauge(
        "rdma_monitor_stale_after_seconds",
        "Age of the last cycle after which scrapes are stale and /healthz fails.",
        &[],
        f.stale_after.as_secs_f64(),
    );
    let mut counter = |name, help, reason: &str, c: &std::sync::atomic::AtomicU64| {
        let labels: &[(&str, &str)] = if reason.is_empty() {
            &[]
        } else {
            &[("reason", reason)]
        };
        b.counter(name, help, labels, c.load(Relaxed));
    };
    counter(
        "rdma_monitor_http_requests_total",
        "Complete HTTP request heads received.",
        "",
        &s.requests,
    );
    const REJECTED: &str = "HTTP connections answered with an error or closed before a request: busy (503, every worker busy), head_timeout (head not complete within 5 s), evicted (oldest unfinished head, to admit a new connection), bad_request (malformed, too large, or a method other than GET/HEAD), tls (failed TLS handshake or record: plain HTTP on the TLS port, no or untrusted client certificate), unauthorized (401, basic auth missing or wrong), auth_busy (503, a password not seen before while another was being checked: bcrypt runs one at a time).";
    for (reason, c) in [
        ("busy", &s.busy),
        ("head_timeout", &s.head_timeouts),
        ("evicted", &s.evicted),
        ("bad_request", &s.bad_requests),
        ("tls", &s.tls_errors),
        ("unauthorized", &s.unauthorized),
        ("auth_busy", &s.auth_busy),
    ] {
        counter("rdma_monitor_http_rejected_total", REJECTED, reason, c);
    }
    counter(
        "rdma_monitor_http_accept_errors_total",
        "Failed accept(2) calls (EMFILE, ENFILE ...); each pauses accepting for 50 ms to 1 s.",
        "",
        &s.accept_errors,
    );
    const WRITE_FAILURES: &str = "Answers cut off: timeout (the client did not read the whole answer within 10 s), evicted (the oldest unfinished answer, to make room: at most 64 are written at once).";
    for (reason, c) in [
        ("timeout", &s.write_timeouts),
        ("evicted", &s.write_evicted),
    ] {
        counter(
            "rdma_monitor_http_write_failures_total",
            WRITE_FAILURES,
            reason,
            c,
        );
    }
    counter(
        "rdma_monitor_http_answers_handed_back_total",
        "Answers the worker's one non-blocking write did not send whole (a slow or distant reader), and every TLS answer: finished by the connection thread as the client reads.",
        "",
        &s.handed_back,
    );
    // Only with a web config: absent is not zero.
    if let Some(web) = web {
        let (failures, ok) = web.reload_status();
        b.counter(
            "rdma_monitor_web_config_reload_failures_total",
            "Loads of the web config file (or the files it names) that failed since start, retries included; the previous configuration stayed in force.",
            &[],
            failures,
        );
        b.gauge_u64(
            "rdma_monitor_web_config_last_reload_success",
            "1 when the last load of the web config succeeded, 0 while the files on disk do not load (the previous configuration is in force).",
            &[],
            ok.into(),
        );
    }
    let mut out = Vec::with_capacity(1536);
    b.finish().render(&mut out);
    out
}

/// What gzip scrapes share, behind one lock.
#[derive(Default)]
struct GzipCache {
    /// The compressed form of the latest set scraped with gzip. A `Weak`
    /// keeps the set's allocation (so its address is not reused by a later
    /// set) without keeping its samples alive.
    latest: Option<(Weak<MetricSet>, Arc<GzipPrefix>)>,
    /// Kept from set to set: 48 KiB, against the ~310 KiB that miniz_oxide
    /// made afresh for each.
    deflater: Deflater,
}

/// A gzip stream without its end: the header and the whole text as deflate
/// blocks, flushed to a byte boundary but not final, with the CRC so far.
/// [`GzipPrefix::finish`] appends any bytes as a final stored block and the
/// trailer, so the compression runs once per set while every scrape still
/// gets its own scrape-time series.
///
/// The text is compressed in groups of consecutive families of at least
/// [`GROUP_BYTES`], each alone (its matches within itself) and ending on a
/// byte boundary: the bytes of a group whose text a group of the set before
/// had are copied from that set's stream instead of compressed again. Most
/// families of a node do not change from one cycle to the next (states,
/// link attributes, error counters, the agent's own figures but a few);
/// compressed as one text, every set cost a whole compression. The price is
/// the matches between groups and a flush per group (README, "Families
/// compressed in groups").
pub struct GzipPrefix {
    pub bytes: Vec<u8>,
    crc: crc32fast::Hasher,
    len: usize,
    /// Each group's text (its hash and length) and where its compressed
    /// bytes lie in `bytes`, in order.
    groups: Vec<CompressedGroup>,
    /// How many groups were compressed rather than copied (for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    compressed: usize,
}

/// The least text a group holds (all that is left, for the last): the
/// 16-HCA scrape (80 families) in groups of at least 2 KiB is 31 groups,
/// 16,763 bytes against 14,654 as one text (a test below prints both).
/// Smaller groups are copied more often but compress worse (each family
/// alone: 21.6 KB a scrape against 16.5), and each compressed group pays a
/// block header, whose Huffman codes are built per block. A group ends
/// where its length reaches this, so a family that grows by a line or two
/// can move the ends of the groups after it: those are compressed again.
pub const GROUP_BYTES: usize = 2048;

struct CompressedGroup {
    hash: u64,
    len: usize,
    start: usize,
    end: usize,
}

/// The hasher of a group's text: foldhash (already linked, through
/// hashbrown; a multiply per 16 bytes, where std's SipHash runs rounds per
/// 8: the whole text is hashed each set) keyed once per process from std's
/// `RandomState`, whose keys come from the kernel's random numbers
/// (foldhash's own random seed comes from addresses and the time).
fn group_hasher() -> foldhash::quality::FoldHasher<'static> {
    use std::hash::{BuildHasher, Hasher};
    static SEED: OnceLock<(u64, foldhash::SharedSeed)> = OnceLock::new();
    let (per_hasher, shared) = SEED.get_or_init(|| {
        let random = |i: u64| {
            let mut h = std::hash::RandomState::new().build_hasher();
            h.write_u64(i);
            h.finish()
        };
        (random(0), foldhash::SharedSeed::from_u64(random(1)))
    });
    foldhash::quality::FoldHasher::with_seed(*per_hasher, shared)
}

/// RFC 1952 header: deflate, no flags, no mtime, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

impl GzipPrefix {
    /// The prefix of the text made of `pieces` in order, reusing the
    /// compressed bytes of the groups `before` had (the set compressed
    /// last) where a group's pieces are the same. The bytes are the same
    /// with or without `before`: a group's stream depends on its pieces
    /// alone.
    ///
    /// A group's key is its length and a 64-bit hash of its pieces, keyed
    /// (see [`group_hasher`]): label values such as a process's name or a
    /// node description are chosen by users, who must not be able to make
    /// two texts collide. Were two ever to, the copied bytes would not match
    /// the CRC, computed from the text itself, and the client would refuse
    /// the scrape rather than read wrong numbers.
    pub fn new<'a>(
        deflater: &mut Deflater,
        pieces: impl Iterator<Item = &'a [u8]> + Clone,
        before: Option<&GzipPrefix>,
    ) -> GzipPrefix {
        use std::hash::Hasher;
        // The text compresses about 7-fold (the 16-HCA scrape: 120,794 bytes
        // in 16,763); a first set with no prefix before it grows no further.
        let len: usize = pieces.clone().map(<[u8]>::len).sum();
        let mut bytes = Vec::with_capacity(
            GZIP_HEADER.len() + before.map_or(len / 6, |b| b.bytes.len()) + 1024,
        );
        bytes.extend_from_slice(&GZIP_HEADER);
        let mut crc = crc32fast::Hasher::new();
        let mut groups = Vec::with_capacity(before.map_or(0, |b| b.groups.len()));
        let mut compressed = 0;
        // Where the next group is looked for in `before`: after the last one
        // found there, so that a group added or gone shifts the rest without
        // losing them.
        let mut next = 0;
        let mut group: Vec<&[u8]> = Vec::new();
        let mut group_len = 0;
        let mut hasher = group_hasher();
        let mut pieces = pieces.peekable();
        while let Some(text) = pieces.next() {
            crc.update(text);
            hasher.write(text);
            group.push(text);
            group_len += text.len();
            if group_len < GROUP_BYTES && pieces.peek().is_some() {
                continue;
            }
            let hash = std::mem::replace(&mut hasher, group_hasher()).finish();
            let same = |g: &CompressedGroup| g.hash == hash && g.len == group_len;
            let start = bytes.len();
            let old = before.and_then(|b| {
                let at = b.groups.get(next).filter(|g| same(g)).map(|_| next);
                let at = at.or_else(|| b.groups.iter().position(same))?;
                next = at + 1;
                let g = &b.groups[at];
                b.bytes.get(g.start..g.end)
            });
            match old {
                Some(old) => bytes.extend_from_slice(old),
                None => {
                    deflater.deflate(&group, &mut bytes);
                    compressed += 1;
                    next += 1;
                }
            }
            groups.push(CompressedGroup {
                hash,
                len: group_len,
                start,
                end: bytes.len(),
            });
            group.clear();
            group_len = 0;
        }
        GzipPrefix {
            bytes,
            crc,
            len,
            groups,
            compressed,
        }
    }

    /// The rest of the stream: `tail` in final stored blocks, CRC-32, ISIZE.
    pub fn finish(&self, tail: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(tail.len() + 16);
        let mut chunks = tail.chunks(u16::MAX as usize).peekable();
        if chunks.peek().is_none() {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        while let Some(chunk) = chunks.next() {
            // BFINAL on the last block, BTYPE 00 (stored); the prefix ends on
            // a byte boundary, so the length follows in the next bytes.
            out.push(u8::from(chunks.peek().is_none()));
            let len = chunk.len() as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        let mut crc = self.crc.clone();
        crc.update(tail);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952).
        let isize = (self.len + tail.len()) as u32;
        out.extend_from_slice(&isize.to_le_bytes());
        out
    }
}

#[cfg(test)]
#[path = "prometheus/tests.rs"]
mod tests;
