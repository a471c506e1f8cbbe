use std::io::Read;

use super::*;

/// flate2's inflater (miniz_oxide, its Rust backend) is the reference reader:
/// it refuses incomplete and oversubscribed codes as zlib does, which curl
/// uses; Go's reader, Prometheus's, refuses them too.
fn inflate(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(stream)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("invalid deflate stream: {e}"));
    out
}

/// Deflates `pieces` and closes the stream with a final empty stored block.
fn round_trip(pieces: &[&[u8]]) -> usize {
    let mut out = Vec::new();
    deflate(pieces, &mut out);
    let len = out.len();
    assert_eq!(&out[len - 4..], &[0, 0, 0xff, 0xff], "ends in a sync flush");
    out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    assert_eq!(inflate(&out), pieces.concat());
    len
}

/// A xorshift stream: the same bytes every run, no pattern deflate finds.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A scrape of the agent on the 16-HCA fixture, cut into its families'
/// texts (at each `# HELP` line) as the agent holds them.
pub(crate) fn sixteen_hca_text() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scrapes/node-16hca.prom"
    );
    let text = std::fs::read(path).unwrap();
    let mut pieces = vec![Vec::new()];
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"# HELP ") && !pieces[pieces.len() - 1].is_empty() {
            pieces.push(Vec::new());
        }
        pieces.last_mut().unwrap().extend_from_slice(line);
    }
    assert!(pieces.len() > 50, "{} families", pieces.len());
    pieces
}

#[test]
fn the_sixteen_hca_set_inflates_to_itself_and_shrinks_as_much_as_miniz_oxide_level_1() {
    let texts = sixteen_hca_text();
    let pieces: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let text = pieces.concat();
    assert!(text.len() > 100_000, "{}", text.len());
    let ours = round_trip(&pieces);
    let mut miniz = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut miniz, &text).unwrap();
    let miniz = miniz.finish().unwrap().len();
    eprintln!(
        "{} bytes: ours {ours}, miniz_oxide level 1 {miniz}",
        text.len()
    );
    assert!(
        ours <= miniz,
        "{ours} bytes against miniz_oxide level 1's {miniz}"
    );
}

#[test]
fn any_cut_of_the_text_into_pieces_inflates_to_the_text() {
    let text = sixteen_hca_text().concat();
    for cut in [1, 3, 4, 5, 17, 258, 4096, 40_000] {
        let pieces: Vec<&[u8]> = text.chunks(cut).take(3000).collect();
        round_trip(&pieces);
    }
    // Empty pieces among them, and nothing at all.
    round_trip(&[b"", &text[..1000], b"", b"", &text[1000..2000], b""]);
    round_trip(&[]);
    round_trip(&[b""]);
}

#[test]
fn short_noisy_and_repetitive_inputs_inflate_to_themselves() {
    for n in 0..10 {
        round_trip(&[&noise(n, 7)]);
    }
    // Incompressible, several blocks of literals.
    let random = noise(200_000, 1);
    assert!(round_trip(&[&random]) < random.len() * 9 / 8);
    // Overlapping matches (distance 1), runs past 258, and a repeat 32 KiB
    // back, at the edge of the window.
    round_trip(&[&[b'a'; 100_000]]);
    let block = noise(WINDOW, 3);
    let far = [&block[..], &block[..], b"tail"].concat();
    assert!(
        round_trip(&[&far]) < far.len() * 2 / 3,
        "the repeat was found"
    );
    let too_far = [&block[..], b"x", &block[..]].concat();
    round_trip(&[&too_far]);
    // Every distance and length code used once at least.
    let mut mixed = Vec::new();
    for d in (1..WINDOW).step_by(97) {
        mixed.extend_from_slice(&noise(3 + d % 256, d as u64));
        let from = mixed.len().saturating_sub(d);
        let rep: Vec<u8> = mixed[from..].iter().take(3 + d % 300).copied().collect();
        mixed.extend_from_slice(&rep);
    }
    round_trip(&[&mixed]);
}

#[test]
fn length_and_distance_codes_cover_their_ranges() {
    for len in 3..=258 {
        let c = len_code(len);
        let base = usize::from(LEN_BASE[c]);
        assert!(
            base <= len && len - base < 1 << LEN_EXTRA[c],
            "len {len} code {c}"
        );
    }
    assert_eq!(len_code(258), 28);
    assert_eq!(len_code(257), 27);
    for dist in 1..=WINDOW {
        let c = dist_code(dist);
        let base = usize::from(DIST_BASE[c]);
        assert!(
            base <= dist && dist - base < 1 << DIST_EXTRA[c],
            "dist {dist} code {c}"
        );
    }
}

#[test]
fn code_lengths_stay_within_their_limit_and_make_a_complete_code() {
    // Fibonacci weights make the deepest unlimited Huffman tree: 25 of
    // them one 24 deep, the largest 75,025 (code_lengths takes frequencies
    // below 2^23; a block's are at most 8,193).
    let mut fib = [0u32; 25];
    fib[0] = 1;
    fib[1] = 1;
    for i in 2..25 {
        fib[i] = fib[i - 1] + fib[i - 2];
    }
    let cases: [(&[u32], u8); 4] = [
        (&fib, 15),
        (&fib[..19], 7),
        (&[5, 0, 0, 9], 15),
        (&[1; 286], 15),
    ];
    for (freq, limit) in cases {
        let mut lens = vec![0u8; freq.len()];
        code_lengths(freq, limit, &mut lens);
        let kraft: f64 = lens
            .iter()
            .filter(|&&l| l != 0)
            .map(|&l| 0.5f64.powi(l.into()))
            .sum();
        assert!(
            (kraft - 1.0).abs() < 1e-12,
            "Kraft sum {kraft} for {freq:?}"
        );
        assert!(lens.iter().all(|&l| l <= limit), "{lens:?} over {limit}");
        for (f, l) in freq.iter().zip(&lens) {
            assert_eq!(*f == 0, *l == 0, "a length for each used symbol only");
        }
    }
    // Unlimited, the Fibonacci tree would be 24 deep.
    let mut lens = vec![0u8; fib.len()];
    code_lengths(&fib, 15, &mut lens);
    assert_eq!(lens.iter().max(), Some(&15));
}

#[test]
fn a_reused_deflater_gives_what_a_fresh_one_gives() {
    let texts = sixteen_hca_text();
    let pieces: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let mut fresh = Vec::new();
    deflate(&pieces, &mut fresh);
    let mut kept = Deflater::default();
    for before in [
        &pieces[..],
        &pieces[pieces.len() / 2..],
        &[&noise(50_000, 9)[..]],
    ] {
        let mut ignored = Vec::new();
        kept.deflate(before, &mut ignored);
        let mut again = Vec::new();
        kept.deflate(&pieces, &mut again);
        assert!(again == fresh, "nothing of the text before shows");
    }
    // A window that straddles a match's end is never hashed ("cdXY" at 6),
    // so only an entry left by an earlier text (the same 4 bytes at 2^16 +
    // 6) could find it again at 14.
    let earlier = [&vec![b'.'; 1 << 16][..], b"......cdXY"].concat();
    let text = b"abcdabcdXY----cdXY";
    let mut fresh = Vec::new();
    deflate(&[text], &mut fresh);
    let mut again = Vec::new();
    kept.deflate(&[&earlier], &mut Vec::new());
    kept.deflate(&[text], &mut again);
    assert_eq!(again, fresh, "an entry of the text before was used");
}

/// Reads `n` bits, least significant first, from `data` at bit `at`.
fn read_bits(data: &[u8], at: &mut usize, n: u32) -> u32 {
    let mut v = 0;
    for k in 0..n {
        let bit = (data[*at / 8] >> (*at % 8)) & 1;
        v |= u32::from(bit) << k;
        *at += 1;
    }
    v
}

/// Decodes one symbol of the canonical code with `lens`, a bit at a time.
fn read_symbol(data: &[u8], at: &mut usize, lens: &[u8]) -> usize {
    let mut codes = vec![0u16; lens.len()];
    canonical(lens, &mut codes);
    let (mut code, mut len) = (0u16, 0u8);
    loop {
        code |= (read_bits(data, at, 1) as u16) << len;
        len += 1;
        if let Some(s) = (0..lens.len()).find(|&s| lens[s] == len && codes[s] == code) {
            return s;
        }
        assert!(len < 16, "no symbol");
    }
}

#[test]
fn a_deep_code_length_code_is_limited_to_7_bits_and_reads_back() {
    // Lengths 1..=11 used 1, 1, 2, 3, 5, … 89 times, never twice in a row
    // (so no repeat codes): unlimited, the code-length code would be 10
    // deep, past the 7 its 3-bit header fields can say.
    let fib = [1usize, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89];
    let mut left: Vec<(usize, u8)> = fib.iter().zip(1u8..).map(|(&n, l)| (n, l)).collect();
    let mut seq: Vec<u8> = Vec::new();
    while left.iter().any(|&(n, _)| n > 0) {
        let last = seq.last().copied();
        let pick = left
            .iter_mut()
            .filter(|(n, l)| *n > 0 && Some(*l) != last)
            .max_by_key(|(n, _)| *n)
            .expect("the counts allow alternation");
        pick.0 -= 1;
        seq.push(pick.1);
    }
    let (lit, dist) = seq.split_at(seq.len() - 20);
    let mut out = Vec::new();
    let mut w = BitWriter::new(&mut out);
    write_lengths(&mut w, lit, dist);
    w.sync_flush();
    let mut at = 0;
    let ncl = read_bits(&out, &mut at, 4) as usize + 4;
    let mut cl_lens = [0u8; CODE_LENGTH_CODES];
    for &s in &CODE_LENGTH_ORDER[..ncl] {
        cl_lens[s] = read_bits(&out, &mut at, 3) as u8;
    }
    let kraft: f64 = cl_lens
        .iter()
        .filter(|&&l| l != 0)
        .map(|&l| 0.5f64.powi(l.into()))
        .sum();
    assert!((kraft - 1.0).abs() < 1e-12, "a complete code: {cl_lens:?}");
    let mut back = Vec::new();
    while back.len() < seq.len() {
        match read_symbol(&out, &mut at, &cl_lens) {
            l @ 0..=15 => back.push(l as u8),
            s => panic!("a repeat code {s} where no length repeats"),
        }
    }
    assert_eq!(back, seq);
}

#[test]
fn blocks_stay_bounded_whatever_the_pieces() {
    // Pieces too short to hash end blocks too: 100,000 of them made one
    // block of 300,000 symbols, kept by a reused deflater.
    let tiny = vec![&b"abc"[..]; 100_000];
    let mut kept = Deflater::default();
    let mut out = Vec::new();
    kept.deflate(&tiny, &mut out);
    out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    assert_eq!(inflate(&out), tiny.concat());
    assert!(
        kept.block.symbols.capacity() <= BLOCK_SYMBOLS,
        "{} symbols held",
        kept.block.symbols.capacity()
    );
}
