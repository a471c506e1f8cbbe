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
