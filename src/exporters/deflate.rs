//! Deflate (RFC 1951) for the metrics text, written for speed at a scrape a
//! second: greedy LZ77 through a one-entry hash table of 4-byte prefixes,
//! then one dynamic Huffman block per [`BLOCK_SYMBOLS`] symbols.
//!
//! Why not miniz_oxide (flate2), the crate before it: at level 1 it took
//! 1.7–2.3× this one's time on the 16-HCA set (three runs side by side), in
//! a ~310 KiB state made afresh per set, and wrote 8 % more (README, "The agent's own deflate",
//! gives the figures and the commands). The text repeats itself line to
//! line (names and labels), so most of it leaves as long matches and the
//! simple matcher loses little against a chained one.
//!
//! Matches may reach back into earlier pieces (the families' texts), never
//! across a piece's end on the source side.

/// How far back a match may reach (RFC 1951: 32 KiB).
const WINDOW: usize = 32 * 1024;
/// The hash reads 4 bytes, so no match is shorter.
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 13;
/// Symbols per block: each block's Huffman codes follow its part of the
/// text, and the symbol buffer stays at 32 KiB. The 16-HCA set as scraped
/// (120,794 bytes) makes ~9,400 symbols: in blocks of 4,096 / 8,192 /
/// 16,384 symbols 14,585 / 14,654 / 14,696 bytes for 1.90 / 1.83 / 1.76 M
/// instructions (callgrind of a test program built with glibc, its own
/// figures: 4 % fewer instructions per doubling, from fewer block headers).
const BLOCK_SYMBOLS: usize = 8 * 1024;

const END_OF_BLOCK: usize = 256;
const LITLEN_CODES: usize = 286;
const DIST_CODES: usize = 30;
const CODE_LENGTH_CODES: usize = 19;
/// A symbol is a literal byte, or a match coded as `MATCH | length code
/// << 24 | length extra << 19 | distance code << 14 | distance extra`.
const MATCH: u32 = 1 << 31;

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which a block's header gives the code-length code's lengths.
const CODE_LENGTH_ORDER: [usize; CODE_LENGTH_CODES] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The length code (0..29, symbol 257 + it) of a match length 3..=258.
fn len_code(len: usize) -> usize {
    let l = len - 3;
    if l < 8 {
        l
    } else if l == 255 {
        28
    } else {
        let top = usize::BITS as usize - 1 - l.leading_zeros() as usize;
        4 * (top - 1) + ((l >> (top - 2)) & 3)
    }
}

/// The distance code (0..30) of a distance 1..=32768.
fn dist_code(dist: usize) -> usize {
    let d = dist - 1;
    if d < 4 {
        d
    } else {
        let top = usize::BITS as usize - 1 - d.leading_zeros() as usize;
        2 * top + ((d >> (top - 1)) & 1)
    }
}

/// Appends the raw deflate of `pieces`, taken as one text in order, to
/// `out`: non-final blocks ending in a sync flush (an empty stored block), so
/// the stream stops on a byte boundary and more blocks may follow.
pub fn deflate(pieces: &[&[u8]], out: &mut Vec<u8>) {
    Deflater::default().deflate(pieces, out);
}

/// A compressor whose memory (48 KiB) serves one text after another: made
/// afresh for each set, it would be mapped and faulted in each time.
#[derive(Default)]
pub struct Deflater {
    /// Hash of 4 bytes → the last global position they began at, modulo
    /// 2^16: the window is 2^15, so a position within it is recovered
    /// exactly, and an older one (aliased) names some earlier position whose
    /// bytes are compared like any candidate's (16 KiB, where whole
    /// positions took 32 KiB for the same matches).
    table: Vec<u16>,
    /// Each piece's global start.
    starts: Vec<usize>,
    /// For each [`PAGE`] bytes of the text, the piece holding its first
    /// byte: a source in an earlier piece is found from there in a step or
    /// two (a search of `starts` per match cost 5 % more instructions in
    /// all, 1.80 M against 1.71 M a compression of the 16-HCA scrape).
    page_piece: Vec<u32>,
    block: Block,
}

/// The granularity of [`Deflater::page_piece`] (2^8 bytes): most pieces
/// are longer.
const PAGE: u32 = 8;

impl Deflater {
    /// [`deflate`], in this compressor's memory.
    pub fn deflate(&mut self, pieces: &[&[u8]], out: &mut Vec<u8>) {
        // The same text gives the same stream whatever came before.
        self.table.clear();
        self.table.resize(1 << HASH_BITS, 0);
        self.starts.clear();
        self.page_piece.clear();
        self.block.clear();
        let mut start = 0;
        for piece in pieces {
            self.starts.push(start);
            start += piece.len();
        }
        self.index_pages(start);
        let mut w = BitWriter::new(out);
        for (p, piece) in pieces.iter().enumerate() {
            self.piece(pieces, p, piece, &mut w);
        }
        self.block.write(&mut w);
        w.sync_flush();
    }

    fn index_pages(&mut self, total: usize) {
        let mut q = 0;
        for k in 0..=(total >> PAGE) {
            let at = k << PAGE;
            while q + 1 < self.starts.len() && self.starts[q + 1] <= at {
                q += 1;
            }
            self.page_piece.push(q as u32);
        }
    }

    /// The piece holding global position `at`: the one its page begins in,
    /// or a later one among those that begin in the page (a search, so that
    /// many empty pieces cost no walk).
    fn piece_of(&self, at: usize) -> usize {
        let page = at >> PAGE;
        let lo = self.page_piece[page] as usize;
        if self.starts.get(lo + 1).is_none_or(|&next| next > at) {
            return lo;
        }
        let hi = self
            .page_piece
            .get(page + 1)
            .map_or(self.starts.len(), |&q| q as usize + 1);
        lo + self.starts[lo..hi].partition_point(|&s| s <= at) - 1
    }

    fn piece(&mut self, pieces: &[&[u8]], p: usize, data: &[u8], w: &mut BitWriter) {
        let base = self.starts[p];
        let mut i = 0;
        while i + MIN_MATCH <= data.len() {
            let word = read_u32(data, i);
            let slot = hash(word);
            let here = base + i;
            // A stale or aliased entry gives some earlier position, whose
            // bytes are compared before it is used.
            let dist = usize::from((here as u16).wrapping_sub(self.table[slot]));
            self.table[slot] = here as u16;
            let len = if dist != 0 && dist <= WINDOW && dist <= here {
                let from = here - dist;
                let (src, off) = if from >= base {
                    (data, from - base)
                } else {
                    let q = self.piece_of(from);
                    (pieces[q], from - self.starts[q])
                };
                if off + MIN_MATCH <= src.len() && read_u32(src, off) == word {
                    let max = MAX_MATCH.min(data.len() - i).min(src.len() - off);
                    MIN_MATCH
                        + common_prefix(
                            &src[off + MIN_MATCH..off + max],
                            &data[i + MIN_MATCH..i + max],
                        )
                } else {
                    0
                }
            } else {
                0
            };
            if len == 0 {
                self.block.literal(data[i]);
                i += 1;
            } else {
                // Positions inside a match are not hashed: the table then
                // keeps line starts and label boundaries, whose next match
                // is longer (the 16-HCA scrape: 14,618 bytes against 15,198
                // hashing every 4th position, and 20 % faster).
                self.block.matched(len, dist);
                i += len;
            }
            if self.block.full() {
                self.block.write(w);
            }
        }
        for &b in &data[i..] {
            self.block.literal(b);
            // Pieces of 3 bytes or less never enter the loop above.
            if self.block.full() {
                self.block.write(w);
            }
        }
    }
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

fn hash(word: u32) -> usize {
    (word.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// How many leading bytes `a` and `b` (of one length) share, eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let mut xa = [0; 8];
        let mut ya = [0; 8];
        xa.copy_from_slice(x);
        ya.copy_from_slice(y);
        let diff = u64::from_le_bytes(xa) ^ u64::from_le_bytes(ya);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// The symbols of one block and their frequencies.
struct Block {
    symbols: Vec<u32>,
    litlen: [u32; LITLEN_CODES],
    dist: [u32; DIST_CODES],
}

impl Default for Block {
    fn default() -> Block {
        Block {
            symbols: Vec::new(),
            litlen: [0; LITLEN_CODES],
            dist: [0; DIST_CODES],
        }
    }
}

impl Block {
    fn clear(&mut self) {
        self.symbols.clear();
        self.litlen = [0; LITLEN_CODES];
        self.dist = [0; DIST_CODES];
    }

    fn literal(&mut self, b: u8) {
        self.symbols.push(u32::from(b));
        self.litlen[usize::from(b)] += 1;
    }

    fn matched(&mut self, len: usize, dist: usize) {
        let lc = len_code(len);
        let dc = dist_code(dist);
        let len_extra = (len - usize::from(LEN_BASE[lc])) as u32;
        let dist_extra = (dist - usize::from(DIST_BASE[dc])) as u32;
        self.symbols
            .push(MATCH | (lc as u32) << 24 | len_extra << 19 | (dc as u32) << 14 | dist_extra);
        self.litlen[257 + lc] += 1;
        self.dist[dc] += 1;
    }

    fn full(&self) -> bool {
        self.symbols.len() >= BLOCK_SYMBOLS
    }

    /// Writes the block (if it holds any symbol) and empties it.
    fn write(&mut self, w: &mut BitWriter) {
        if self.symbols.is_empty() {
            return;
        }
        self.litlen[END_OF_BLOCK] += 1;
        // Each tree gets at least two used codes, so every code is complete
        // (zlib does the same: a lone code would be one bit with a hole).
        at_least_two(&mut self.litlen);
        at_least_two(&mut self.dist);
        let mut lit_lens = [0u8; LITLEN_CODES];
        let mut dist_lens = [0u8; DIST_CODES];
        code_lengths(&self.litlen, 15, &mut lit_lens);
        code_lengths(&self.dist, 15, &mut dist_lens);
        let mut lit_codes = [0u16; LITLEN_CODES];
        let mut dist_codes = [0u16; DIST_CODES];
        canonical(&lit_lens, &mut lit_codes);
        canonical(&dist_lens, &mut dist_codes);

        let nlit = 257.max(lit_lens.iter().rposition(|&l| l != 0).map_or(0, |p| p + 1));
        let ndist = 1.max(dist_lens.iter().rposition(|&l| l != 0).map_or(0, |p| p + 1));
        // BFINAL 0, BTYPE 10 (dynamic Huffman).
        w.bits(0b100, 3);
        w.bits((nlit - 257) as u64, 5);
        w.bits((ndist - 1) as u64, 5);
        write_lengths(w, &lit_lens[..nlit], &dist_lens[..ndist]);

        // Each code with its length, and a length code's extra bits' count:
        // one table look-up per part of a symbol.
        let mut lit = [(0u64, 0u32); LITLEN_CODES];
        for (s, slot) in lit.iter_mut().enumerate() {
            *slot = (u64::from(lit_codes[s]), u32::from(lit_lens[s]));
        }
        let mut dist = [(0u64, 0u32); DIST_CODES];
        for (d, slot) in dist.iter_mut().enumerate() {
            *slot = (u64::from(dist_codes[d]), u32::from(dist_lens[d]));
        }
        for &s in &self.symbols {
            if s & MATCH == 0 {
                let (code, n) = lit[(s & 0xff) as usize];
                w.bits(code, n);
            } else {
                let lc = ((s >> 24) & 0x1f) as usize;
                let dc = ((s >> 14) & 0x1f) as usize;
                let (lcode, ln) = lit[(257 + lc).min(LITLEN_CODES - 1)];
                let (dcode, dn) = dist[dc.min(DIST_CODES - 1)];
                let le = u32::from(LEN_EXTRA[lc.min(28)]);
                let de = u32::from(DIST_EXTRA[dc.min(29)]);
                // At most 15 + 5 + 15 + 13 = 48 bits: one write.
                let v = lcode
                    | u64::from((s >> 19) & 0x1f) << ln
                    | dcode << (ln + le)
                    | u64::from(s & 0x1fff) << (ln + le + dn);
                w.bits(v, ln + le + dn + de);
            }
        }
        w.bits(
            u64::from(lit_codes[END_OF_BLOCK]),
            u32::from(lit_lens[END_OF_BLOCK]),
        );

        self.clear();
    }
}

fn at_least_two(freq: &mut [u32]) {
    let mut used = freq.iter().filter(|&&f| f != 0).count();
    for f in freq.iter_mut() {
        if used >= 2 {
            break;
        }
        if *f == 0 {
            *f = 1;
            used += 1;
        }
    }
}

/// The code lengths of the block's two trees, run-length coded with the
/// code-length code (symbols 16: repeat the last 3–6 times, 17: 3–10 zeros,
/// 18: 11–138 zeros), preceded by that code's own lengths.
fn write_lengths(w: &mut BitWriter, lit: &[u8], dist: &[u8]) {
    let all = || lit.iter().chain(dist).copied();
    let n = lit.len() + dist.len();
    // (symbol, extra bits' value); at most one entry per length.
    let mut runs = [(0u8, 0u8); LITLEN_CODES + DIST_CODES];
    let mut nruns = 0;
    let mut push = |runs: &mut [(u8, u8)], sym: u8, extra: u8| {
        runs[nruns] = (sym, extra);
        nruns += 1;
    };
    let mut seq = [0u8; LITLEN_CODES + DIST_CODES];
    for (slot, l) in seq.iter_mut().zip(all()) {
        *slot = l;
    }
    let seq = &seq[..n];
    let mut i = 0;
    while i < n {
        let l = seq[i];
        let run = seq[i..].iter().take_while(|&&x| x == l).count();
        if l == 0 {
            let mut left = run;
            while left >= 11 {
                let r = left.min(138);
                push(&mut runs, 18, (r - 11) as u8);
                left -= r;
            }
            if left >= 3 {
                push(&mut runs, 17, (left - 3) as u8);
                left = 0;
            }
            for _ in 0..left {
                push(&mut runs, 0, 0);
            }
        } else {
            push(&mut runs, l, 0);
            let mut left = run - 1;
            while left >= 3 {
                let r = left.min(6);
                push(&mut runs, 16, (r - 3) as u8);
                left -= r;
            }
            for _ in 0..left {
                push(&mut runs, l, 0);
            }
        }
        i += run;
    }
    let runs = &runs[..nruns];
    let mut freq = [0u32; CODE_LENGTH_CODES];
    for &(s, _) in runs {
        freq[usize::from(s)] += 1;
    }
    at_least_two(&mut freq);
    let mut lens = [0u8; CODE_LENGTH_CODES];
    let mut codes = [0u16; CODE_LENGTH_CODES];
    code_lengths(&freq, 7, &mut lens);
    canonical(&lens, &mut codes);
    let ncl = 4.max(
        CODE_LENGTH_ORDER
            .iter()
            .rposition(|&s| lens[s] != 0)
            .map_or(0, |p| p + 1),
    );
    w.bits((ncl - 4) as u64, 4);
    for &s in &CODE_LENGTH_ORDER[..ncl] {
        w.bits(u64::from(lens[s]), 3);
    }
    for &(s, extra) in runs {
        let s = usize::from(s);
        let extra_bits = match s {
            16 => 2,
            17 => 3,
            18 => 7,
            _ => 0,
        };
        w.bits(
            u64::from(codes[s]) | u64::from(extra) << lens[s],
            u32::from(lens[s]) + extra_bits,
        );
    }
}

/// Huffman code lengths for `freq` (each below 2^23), none longer than
/// `limit`; unused symbols get 0. At most 286 symbols, so everything lives on the stack.
fn code_lengths(freq: &[u32], limit: u8, lens: &mut [u8]) {
    lens.iter_mut().for_each(|l| *l = 0);
    // The used symbols, least frequent first (ties by symbol), as one word
    // each: frequency above the symbol's 9 bits. A block holds at most
    // 8,193 symbols, so a frequency fits in the other 23; sorting words
    // took half the instructions of sorting (frequency, symbol) pairs.
    const SYMBOL_BITS: u32 = 9;
    let mut sorted = [0u32; LITLEN_CODES];
    let mut n = 0;
    for (s, &f) in freq.iter().enumerate() {
        if f != 0 {
            debug_assert!(f < 1 << (32 - SYMBOL_BITS));
            sorted[n] = f << SYMBOL_BITS | s as u32;
            n += 1;
        }
    }
    let sorted = &mut sorted[..n];
    sorted.sort_unstable();
    let symbol = |word: u32| (word & ((1 << SYMBOL_BITS) - 1)) as usize;
    let weight = |word: u32| u64::from(word >> SYMBOL_BITS);
    match n {
        0 => return,
        1 => {
            lens[symbol(sorted[0])] = 1;
            return;
        }
        _ => {}
    }
    // Two queues: the sorted leaves, and the inner nodes, made in order of
    // weight; each node notes its parent, which is always made later.
    let mut inner_weight = [0u64; LITLEN_CODES];
    let mut inner_parent = [0u16; LITLEN_CODES];
    let mut leaf_parent = [0u16; LITLEN_CODES];
    let (mut leaf, mut inner) = (0, 0);
    for made in 0..n - 1 {
        let mut sum = 0;
        for _ in 0..2 {
            if leaf < n && (inner >= made || weight(sorted[leaf]) <= inner_weight[inner]) {
                sum += weight(sorted[leaf]);
                leaf_parent[leaf] = made as u16;
                leaf += 1;
            } else {
                sum += inner_weight[inner];
                inner_parent[inner] = made as u16;
                inner += 1;
            }
        }
        inner_weight[made] = sum;
    }
    // Depths: the root (made last) is 0, every other inner node one below
    // its parent; count the leaves per depth, deeper than `limit` at `limit`.
    let limit = usize::from(limit);
    let mut depth = [0u16; LITLEN_CODES];
    let root = n - 2;
    for k in (0..root).rev() {
        depth[k] = depth[usize::from(inner_parent[k])] + 1;
    }
    let mut count = [0u32; 16];
    for &p in &leaf_parent[..n] {
        let d = usize::from(depth[usize::from(p)]) + 1;
        count[d.min(limit)] += 1;
    }
    // Leaves moved up to `limit` oversubscribe the code (Kraft sum above 1):
    // take a leaf off the last level and split the deepest shorter leaf into
    // two one level down, until the sum is exactly 1 again. A tree deeper
    // than 15 needs a total weight of 4,180 or more (Fibonacci weights), in
    // reach of a block of 8,192 symbols; the code-length code's limit of 7
    // is reached with far fewer.
    let mut kraft: u64 = (1..=limit)
        .map(|l| u64::from(count[l]) << (limit - l))
        .sum();
    while kraft > 1 << limit {
        count[limit] -= 1;
        if let Some(l) = (1..limit).rev().find(|&l| count[l] != 0) {
            count[l] -= 1;
            count[l + 1] += 2;
        }
        kraft -= 1;
    }
    // The least frequent symbols get the longest codes.
    let mut next = sorted.iter();
    for l in (1..=limit).rev() {
        for _ in 0..count[l] {
            if let Some(&word) = next.next() {
                lens[symbol(word)] = l as u8;
            }
        }
    }
}

/// Canonical codes (RFC 1951 3.2.2) from lengths, bit-reversed for the
/// LSB-first stream.
fn canonical(lens: &[u8], codes: &mut [u16]) {
    let mut count = [0u16; 16];
    for &l in lens {
        count[usize::from(l)] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    for (s, &l) in lens.iter().enumerate() {
        if l != 0 {
            let c = next[usize::from(l)];
            next[usize::from(l)] += 1;
            codes[s] = c.reverse_bits() >> (16 - l);
        }
    }
}

/// Bits, least significant first, gathered in a small buffer that goes to
/// `out` when nearly full: each write stores the whole accumulator there and
/// moves on by its whole bytes, with no check of `out`'s capacity.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    buf: [u8; BUF],
    pos: usize,
    acc: u64,
    n: u32,
}

const BUF: usize = 4096;

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter {
            out,
            buf: [0; BUF],
            pos: 0,
            acc: 0,
            n: 0,
        }
    }

    /// Appends the low `n` (≤ 56) bits of `v`.
    #[inline(always)]
    fn bits(&mut self, v: u64, n: u32) {
        self.acc |= v << self.n;
        self.n += n;
        if self.pos > BUF - 8 {
            self.drain();
        }
        self.buf[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        // n ≤ 7 + 56, so at most 7 whole bytes leave.
        let whole = self.n / 8;
        self.pos += whole as usize;
        self.acc >>= whole * 8;
        self.n -= whole * 8;
    }

    /// Moves the whole bytes written so far to `out`.
    #[inline(never)]
    fn drain(&mut self) {
        self.out.extend_from_slice(&self.buf[..self.pos]);
        self.pos = 0;
    }

    /// Pads to a byte boundary.
    fn align(&mut self) {
        if self.n > 0 {
            self.bits(0, 8 - self.n);
        }
    }

    /// Appends bytes at a byte boundary.
    fn bytes(&mut self, b: &[u8]) {
        self.drain();
        self.out.extend_from_slice(b);
    }

    /// An empty stored block: the stream ends on a byte boundary. Nothing is
    /// left in the writer after it.
    fn sync_flush(&mut self) {
        self.bits(0, 3);
        self.align();
        self.bytes(&[0, 0, 0xff, 0xff]);
    }
}

#[cfg(test)]
#[path = "deflate/tests.rs"]
pub(crate) mod tests;
