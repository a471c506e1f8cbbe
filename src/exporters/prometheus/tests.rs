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
        let prefix = GzipPrefix::new(&mut Deflater::default(), pieces.iter().copied(), None);
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
    let empty = GzipPrefix::new(&mut Deflater::default(), std::iter::empty(), None);
    assert_eq!(gunzip(&[&empty.bytes, &empty.finish(b"x\n")]), b"x\n");
}

/// A set of families `a`..: each family's series (one per port of `ports`)
/// have the value given.
fn families(ports: usize, values: &[(&'static str, f64)]) -> MetricSet {
    let mut b = Builder::new();
    for &(name, v) in values {
        for port in 1..=ports {
            let port = port.to_string();
            b.gauge(
                name,
                "Some help.",
                &[("device", "mlx5_0"), ("port", &port)],
                v,
            );
        }
    }
    b.finish()
}

#[test]
fn unchanged_groups_keep_their_compressed_bytes_and_the_stream_is_the_same() {
    // 100 ports: each family is a group of its own.
    let big = |values: &[(&'static str, f64)]| {
        let set = families(100, values);
        assert!(set.texts().all(|t| t.len() >= GROUP_BYTES));
        set
    };
    let mut deflater = Deflater::default();
    let first = big(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)]);
    let one = GzipPrefix::new(&mut deflater, first.texts(), None);
    assert_eq!(one.compressed, 5);
    assert_eq!(gunzip(&[&one.bytes, &one.finish(b"")]), first.text());

    // c changed, x is new, e is gone: a, b and d are copied, d after the
    // shift that x and c's change make in the order.
    let second = big(&[("a", 1.0), ("b", 2.0), ("x", 9.0), ("c", 3.5), ("d", 4.0)]);
    let two = GzipPrefix::new(&mut deflater, second.texts(), Some(&one));
    assert_eq!(two.compressed, 2);
    let tail = b"rdma_monitor_scrape_stale 0\n";
    assert_eq!(
        gunzip(&[&two.bytes, &two.finish(tail)]),
        [second.text(), &tail[..]].concat()
    );
    // Copied or compressed, a group's bytes are those of its pieces alone.
    let fresh = GzipPrefix::new(&mut Deflater::default(), second.texts(), None);
    assert!(
        fresh.bytes == two.bytes,
        "the same stream with or without the set before"
    );
    assert_eq!(fresh.compressed, 5);

    // The same set again: nothing compressed.
    let three = GzipPrefix::new(&mut deflater, second.texts(), Some(&two));
    assert_eq!(three.compressed, 0);
    assert!(three.bytes == two.bytes);
    // Families swapped: found out of order, still copied.
    let swapped = big(&[("d", 4.0), ("a", 1.0), ("b", 2.0), ("x", 9.0), ("c", 3.5)]);
    let four = GzipPrefix::new(&mut deflater, swapped.texts(), Some(&three));
    assert_eq!(four.compressed, 0);
    assert_eq!(gunzip(&[&four.bytes, &four.finish(b"")]), swapped.text());
}

#[test]
fn small_families_are_grouped_and_a_change_recompresses_their_group() {
    // Six ports: ~250 bytes a family, so 20 families make two groups or
    // more, the last with what is left.
    const NAMES: [&str; 20] = [
        "f00", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10", "f11", "f12",
        "f13", "f14", "f15", "f16", "f17", "f18", "f19",
    ];
    let values = |changed: usize| -> Vec<(&'static str, f64)> {
        NAMES
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, if i == changed { 7.0 } else { 1.0 }))
            .collect()
    };
    let first = families(6, &values(usize::MAX));
    let mut deflater = Deflater::default();
    let one = GzipPrefix::new(&mut deflater, first.texts(), None);
    assert!(
        one.groups.len() >= 2 && one.groups.len() < 20,
        "{}",
        one.groups.len()
    );
    // One family's value changed: only its group is compressed again.
    let second = families(6, &values(0));
    let two = GzipPrefix::new(&mut deflater, second.texts(), Some(&one));
    assert_eq!(two.compressed, 1);
    assert_eq!(gunzip(&[&two.bytes, &two.finish(b"")]), second.text());
    assert!(two.bytes[two.groups[0].end..] == one.bytes[one.groups[0].end..]);
}

#[test]
fn the_sixteen_hca_scrape_in_groups_inflates_and_stays_near_one_text() {
    let texts = crate::exporters::deflate::tests::sixteen_hca_text();
    let pieces: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let text = pieces.concat();

    let mut deflater = Deflater::default();
    let grouped = GzipPrefix::new(&mut deflater, pieces.iter().copied(), None);
    assert_eq!(gunzip(&[&grouped.bytes, &grouped.finish(b"")]), text);
    let mut whole = Vec::new();
    deflater.deflate(&pieces, &mut whole);
    let in_groups = grouped.bytes.len() - GZIP_HEADER.len();
    eprintln!(
        "{} bytes, {} families in {} groups: {in_groups} bytes, {} as one text",
        text.len(),
        pieces.len(),
        grouped.groups.len(),
        whole.len()
    );
    assert!(
        in_groups * 4 <= whole.len() * 5,
        "groups cost more than a quarter over one text: {in_groups} against {}",
        whole.len()
    );
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
    // Two families of a group each; b's value changes in the second set.
    published
        .metrics
        .publish(families(100, &[("a", 1.0), ("b", 2.0)]));
    let set = published.metrics.load();
    let first = e.gzip_prefix(&set);
    assert_eq!(first.compressed, 2);
    assert!(Arc::ptr_eq(
        &first,
        &e.gzip_prefix(&published.metrics.load())
    ));
    drop(set);
    published
        .metrics
        .publish(families(100, &[("a", 1.0), ("b", 3.0)]));
    let second = e.gzip_prefix(&published.metrics.load());
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.compressed, 1, "a's group copied from the set before");
    assert_eq!(
        gunzip(&[&second.bytes, &second.finish(b"")]),
        published.metrics.load().text()
    );
}
