use super::*;

#[test]
fn head_ends_at_an_empty_line_with_crlf_or_bare_lf() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0), Some(27));
    assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\n", 0), Some(24));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\n\r\n", 0), Some(26));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
    // The end split over two reads: the first 25 bytes were scanned already.
    let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(head_end(&buf[..25], 0), None);
    assert_eq!(head_end(buf, 25), Some(27));
    assert_eq!(head_end(b"", 0), None);
}

#[test]
fn parses_the_request_line_and_accept_encoding() {
    let r = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n").unwrap();
    assert_eq!(
        r,
        Request {
            head_only: false,
            path: "/metrics".into(),
            query: "x=1".into(),
            accepts_gzip: true,
            authorization: None,
        }
    );
    let r = parse_head(b"HEAD / HTTP/1.0\naccept-encoding: deflate, GZIP;q=0.5\n\n").unwrap();
    assert!(r.head_only && r.accepts_gzip);
    let r = parse_head(b"GET / HTTP/1.1\r\nAccept-Encoding: gzip;q=0, br\r\n\r\n").unwrap();
    assert!(!r.accepts_gzip);
    let r = parse_head(b"GET / HTTP/1.1\r\nAccept-Encoding: x-gzip-not\r\n\r\n").unwrap();
    assert!(!r.accepts_gzip);
}

#[test]
fn rejects_other_methods_and_malformed_lines() {
    assert_eq!(
        parse_head(b"POST /metrics HTTP/1.1\r\n\r\n"),
        Err(Reject::Method)
    );
    for bad in [
        &b"GET /metrics\r\n\r\n"[..],
        b"GET  /metrics HTTP/1.1\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics SPDY/3\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
        b"\r\n\r\n",
    ] {
        assert_eq!(parse_head(bad), Err(Reject::Malformed), "{bad:?}");
    }
}

#[test]
fn response_head_has_length_and_close() {
    let h = response_head(405, &[("Allow", "GET, HEAD")], &[], 3);
    assert_eq!(
        h,
        "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn asterisk_and_absolute_forms() {
    // Any method but GET/HEAD is 405 (with Allow), whatever the target.
    for other in [
        &b"OPTIONS * HTTP/1.1\r\n\r\n"[..],
        b"OPTIONS /metrics HTTP/1.1\r\n\r\n",
        b"CONNECT host:443 HTTP/1.1\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\n",
    ] {
        let want = if other.starts_with(b"PRI") {
            Err(Reject::Malformed)
        } else {
            Err(Reject::Method)
        };
        assert_eq!(parse_head(other).map(|_| ()), want, "{other:?}");
    }
    // The absolute form must be accepted (RFC 9112 §3.2.2).
    let r = parse_head(b"GET http://node1:9090/metrics?x=1 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!((r.path.as_str(), r.query.as_str()), ("/metrics", "x=1"));
    let r = parse_head(b"HEAD HTTPS://node1 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(r.path, "/");
    for bad in [
        &b"GET * HTTP/1.1\r\n\r\n"[..],
        b"GET ftp://node1/metrics HTTP/1.1\r\n\r\n",
        b"GET node1:9090 HTTP/1.1\r\n\r\n",
        b" / HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(parse_head(bad), Err(Reject::Malformed), "{bad:?}");
    }
}

fn fed(chunks: &[&[u8]]) -> Option<Result<Request, Reject>> {
    let (mut head, mut scanned) = (Vec::new(), 0);
    for c in chunks {
        if let Some(Head::Done(r)) = take_head(&mut head, &mut scanned, c) {
            assert!(
                head.len() <= MAX_REQUEST_HEAD + 1,
                "{} bytes kept",
                head.len()
            );
            return Some(r);
        }
    }
    None
}

#[test]
fn the_head_limit_is_exact_and_checked_as_bytes_arrive() {
    let line = b"GET / HTTP/1.1\r\n";
    let end = b"\r\n";
    // A head of exactly the limit passes; one byte more is 431, even when its
    // end arrives in the same read.
    let filler = |n: usize| {
        let mut h = b"X-Pad: ".to_vec();
        h.resize(n - 2, b'a');
        h.extend_from_slice(b"\r\n");
        h
    };
    let fits = filler(MAX_REQUEST_HEAD - line.len() - end.len());
    assert!(fed(&[line, &fits, end]).unwrap().is_ok());
    let over = filler(MAX_REQUEST_HEAD + 1 - line.len() - end.len());
    assert_eq!(
        fed(&[&[&line[..], &over, end].concat()]),
        Some(Err(Reject::TooLarge))
    );
    // An endless head is refused once the limit is passed, in whatever
    // pieces it arrives.
    let mut chunks: Vec<&[u8]> = vec![line];
    let a = [b'a'; 1000];
    chunks.extend(std::iter::repeat_n(&a[..], 9));
    assert_eq!(fed(&chunks), Some(Err(Reject::TooLarge)));
    assert_eq!(fed(&chunks[..8]), None);
}

/// With nothing due the connection thread sleeps in poll until a client
/// comes (no wake-up a second for nothing); otherwise until the first
/// deadline, never longer than the backoff's cap.
#[test]
fn the_connection_thread_sleeps_until_the_first_deadline_or_a_client() {
    let now = Instant::now();
    assert_eq!(poll_timeout(now, std::iter::empty()), None);
    let soon = crate::clock::after(now, Duration::from_millis(300));
    let later = crate::clock::after(now, Duration::from_secs(4));
    assert_eq!(
        poll_timeout(now, [later, soon].into_iter()),
        Some(Duration::from_millis(300))
    );
    assert_eq!(
        poll_timeout(
            now,
            [crate::clock::after(now, Duration::from_secs(3600))].into_iter()
        ),
        Some(BACKOFF_MAX)
    );
    // A deadline already past: poll returns at once.
    assert_eq!(
        poll_timeout(later, [soon].into_iter()),
        Some(Duration::ZERO)
    );
}

/// A timeout below a millisecond is one millisecond, not poll(0): the
/// thread would spin until the deadline passed.
#[test]
fn a_timeout_below_a_millisecond_rounds_up() {
    assert_eq!(poll_ms(None), -1);
    assert_eq!(poll_ms(Some(Duration::ZERO)), 0);
    assert_eq!(poll_ms(Some(Duration::from_micros(200))), 1);
    assert_eq!(poll_ms(Some(Duration::from_micros(1_001))), 2);
    assert_eq!(poll_ms(Some(Duration::from_millis(7))), 7);
    assert_eq!(poll_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
}

/// Pieces of a published buffer, for `Part::Piece`.
struct Numbered(Vec<Vec<u8>>);

impl Pieces for Numbered {
    fn piece(&self, i: usize) -> &[u8] {
        self.0.get(i).map_or(&[], Vec::as_slice)
    }
}

/// An answer of more parts than one `sendmsg` takes (`MAX_IOVECS`), of
/// every size, empty ones and shared pieces among them, written to a socket
/// whose small send buffer takes a little at a time, arrives whole and in
/// order.
#[test]
fn an_answer_of_many_parts_arrives_whole() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let small: libc::c_int = 4096;
    crate::sources::netlink::set_option(server.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, &small)
        .unwrap();
    let n = 3 * MAX_IOVECS + 7;
    let shared = Arc::new(Numbered(
        (0..n)
            .map(|i| vec![(i % 251) as u8; (i * 37) % 3000])
            .collect(),
    ));
    let parts: Vec<Part> = (0..n)
        .map(|i| match i % 3 {
            0 => Part::Owned(vec![b'o'; i % 5]),
            1 => Part::Static(b""),
            _ => Part::Piece(shared.clone(), i),
        })
        .collect();
    let want: Vec<u8> = parts.iter().flat_map(|p| p.bytes().to_vec()).collect();
    // A reader slow at first: the writes stop mid-part.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            std::thread::sleep(Duration::from_millis(u64::from(got.len() < 8192)));
            match client.read(&mut buf).unwrap() {
                0 => return got,
                k => got.extend_from_slice(&buf[..k]),
            }
        }
    });
    let mut out = Outgoing {
        parts,
        part: 0,
        offset: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut blocked = 0;
    loop {
        match out.progress_plain(&server) {
            Progress::Done => break,
            Progress::Blocked => {
                blocked += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Progress::Failed => panic!("write failed"),
        }
        assert!(Instant::now() < deadline, "not written in 20 s");
    }
    drop(server);
    assert_eq!(reader.join().unwrap(), want);
    assert!(blocked > 0, "every write was whole: nothing was tested");
}
