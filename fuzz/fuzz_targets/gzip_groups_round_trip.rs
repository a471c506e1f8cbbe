//! Two sets of pieces through the exporter's gzip prefix, the second reusing
//! the groups of the first where its pieces are the same: whatever was copied
//! and whatever compressed, flate2's gzip decoder gives back the second text,
//! and the stream is the one compressed without the first.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use rdma_monitor::exporters::deflate::Deflater;
use rdma_monitor::exporters::prometheus::GzipPrefix;

fn gunzip(prefix: &GzipPrefix, tail: &[u8]) -> Vec<u8> {
    let stream = [&prefix.bytes[..], &prefix.finish(tail)].concat();
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&stream[..])
        .read_to_end(&mut back)
        .expect("a valid gzip stream");
    back
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: how many cuts follow (up to 15); each cut byte × 97 is a
    // piece's length, so that groups of 2 KiB are both reached and missed.
    // The next byte: which pieces the second set changes (bit i: piece i,
    // for i < 6), bit 6: it drops its first piece, bit 7: it moves its
    // first piece to the end.
    let Some((&n, rest)) = data.split_first() else { return };
    let (cuts, rest) = rest.split_at(usize::from(n % 16).min(rest.len()));
    let Some((&flip, mut text)) = rest.split_first() else { return };
    let mut first: Vec<&[u8]> = Vec::new();
    for &c in cuts {
        let (piece, tail) = text.split_at((usize::from(c) * 97).min(text.len()));
        first.push(piece);
        text = tail;
    }
    first.push(text);
    let changed: Vec<Vec<u8>> = first
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.to_vec();
            if i < 6 && flip >> i & 1 == 1 {
                p.push(b'0' + i as u8);
            }
            p
        })
        .collect();
    let mut second: Vec<&[u8]> = changed.iter().map(Vec::as_slice).collect();
    if flip & 0x40 != 0 {
        second.remove(0);
    }
    if flip & 0x80 != 0 && !second.is_empty() {
        second.rotate_left(1);
    }

    let mut deflater = Deflater::default();
    let one = GzipPrefix::new(&mut deflater, first.iter().copied(), None);
    assert_eq!(gunzip(&one, b""), first.concat());
    let two = GzipPrefix::new(&mut deflater, second.iter().copied(), Some(&one));
    assert_eq!(gunzip(&two, b"tail\n"), [second.concat(), b"tail\n".to_vec()].concat());
    let fresh = GzipPrefix::new(&mut Deflater::default(), second.iter().copied(), None);
    assert!(fresh.bytes == two.bytes, "the same stream with or without the set before");
});
