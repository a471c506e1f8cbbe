use std::io::Read;

use super::*;
use crate::exporters::Freshness;
use crate::metrics::Builder;

fn gunzip(parts: &[&[u8]]) -> Vec<u8> {
    let stream = parts.concat();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&stream[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn sample_text(n: usize) -> Vec<u8> {
    let mut b = Builder::new();
    for i in 0..n {
        let dev = format!("mlx5_{i}");
        b.counter(
            "rdma_x_total",
            "X.",
            &[("device", &dev), ("port", "1")],
            i as u64 * 7919,
        );
    }
    b.finish().text().to_vec()
}

#[test]
fn gzip_prefix_and_tail_decompress_to_text_and_tail() {
    let text = sample_text(2000);
    // One piece, and pieces of every size up to past the compressor's
    // output steps (a family's text is tens of bytes to tens of KiB).
    let cuts = [
        vec![text.len()],
        vec![1, 7, 100, 4096, 65_536, 5, text.len()],
    ];
    for cut in cuts {
        let mut pieces = Vec::new();
        let mut at = 0;
        for n in cut {
            let end = (at + n).min(text.len());
            pieces.push(&text[at..end]);
            at = end;
        }
        assert_eq!(pieces.concat(), text);
        let prefix = GzipPrefix::new(&mut Deflater::default(), pieces.iter().copied());
        assert!(prefix.bytes.len() < text.len() / 4, "compressed at all");
        for tail in [
            &b""[..],
            b"rdma_monitor_scrape_stale 0\n",
            &vec![b'a'; 70_000],
        ] {
            let end = prefix.finish(tail);
            assert_eq!(gunzip(&[&prefix.bytes, &end]), [&text[..], tail].concat());
        }
    }
    // An empty set is a valid stream too.
    let empty = GzipPrefix::new(&mut Deflater::default(), std::iter::empty());
    assert_eq!(gunzip(&[&empty.bytes, &empty.finish(b"x\n")]), b"x\n");
}

#[test]
fn scrape_time_series_are_valid_text_and_say_stale() {
    let stats = Stats::default();
    stats.busy.store(3, Relaxed);
    let fresh = Freshness {
        age: Some(std::time::Duration::from_millis(250)),
        stale_after: std::time::Duration::from_secs(3),
    };
    let text = String::from_utf8(scrape_time_series(&fresh, &stats, None)).unwrap();
    assert!(
        text.contains("\nrdma_monitor_last_cycle_age_seconds 0.25\n"),
        "{text}"
    );
    assert!(text.contains("\nrdma_monitor_scrape_stale 0\n"), "{text}");
    assert!(
        text.contains("\nrdma_monitor_stale_after_seconds 3\n"),
        "{text}"
    );
    assert!(text.contains("\nrdma_monitor_http_rejected_total{reason=\"busy\"} 3\n"));
    let stale = Freshness {
        age: Some(std::time::Duration::from_millis(3001)),
        ..fresh
    };
    let text = String::from_utf8(scrape_time_series(&stale, &stats, None)).unwrap();
    assert!(text.contains("\nrdma_monitor_scrape_stale 1\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = line.rsplit_once(' ').unwrap();
        v.parse::<f64>().unwrap();
    }
}

#[test]
fn gzip_is_compressed_once_per_published_set() {
    let published = Arc::new(Published::new(std::time::Duration::from_secs(1)));
    let e = Endpoint {
        published: published.clone(),
        stats: Arc::new(Stats::default()),
        endpoints: crate::config::Endpoints {
            snapshot: true,
            analysis: true,
        },
        web: None,
        gzip: Mutex::default(),
    };
    let mut b = Builder::new();
    b.gauge("a", "A.", &[], 1.0);
    published.metrics.publish(b.finish());
    let set = published.metrics.load();
    let first = e.gzip_prefix(&set);
    assert!(Arc::ptr_eq(
        &first,
        &e.gzip_prefix(&published.metrics.load())
    ));
    drop(set);
    let mut b = Builder::new();
    b.gauge("a", "A.", &[], 2.0);
    published.metrics.publish(b.finish());
    let second = e.gzip_prefix(&published.metrics.load());
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(
        gunzip(&[&second.bytes, &second.finish(b"")]),
        published.metrics.load().text()
    );
}
