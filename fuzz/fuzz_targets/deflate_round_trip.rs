//! Any bytes, cut into pieces at the places the first bytes say, through the
//! agent's deflate: flate2's inflater (miniz_oxide) gives back exactly the bytes.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use rdma_monitor::exporters::deflate::deflate;

fuzz_target!(|data: &[u8]| {
    let (cuts, text) = data.split_at(data.len().min(4));
    let mut pieces = Vec::new();
    let mut rest = text;
    for &c in cuts {
        let at = (usize::from(c) * 37).min(rest.len());
        let (piece, tail) = rest.split_at(at);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    let mut stream = Vec::new();
    deflate(&pieces, &mut stream);
    stream.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    let mut back = Vec::new();
    flate2::read::DeflateDecoder::new(&stream[..])
        .read_to_end(&mut back)
        .expect("a valid deflate stream");
    assert_eq!(back, text);
});
