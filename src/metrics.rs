//! The metrics registry: the collection loop builds a complete [`MetricSet`]
//! each cycle and publishes it with one atomic pointer swap; scrapes load the
//! current set without locks and never trigger collection. A set's
//! Prometheus text is written as the set is built, a piece per family, and
//! every scrape of the set sends those pieces as they are.
//!
//! Kernel counters are absolute values rebuilt each cycle, so a device reset
//! shows as a drop that Prometheus treats as a counter reset.

use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    U64(u64),
    F64(f64),
}

/// Where a sample's labels and its line end in its family's `text`; the
/// line starts where the previous sample's ends (the first where the
/// family's HELP and TYPE lines do), with the family's name. The value is
/// only in the text: two sets of every series are kept (the published one
/// and the one being built), and 12 bytes a sample instead of 32 is ~0.2 MiB
/// less at 64 HCAs. Offsets past 4 GiB are `u32::MAX`: such a sample's
/// labels read as empty in [`MetricSet::get`] and [`MetricSet::check`].
#[derive(Debug, Clone)]
struct Sample {
    labels_end: u32,
    end: u32,
    /// Written from an `f64` (`Value::F64`).
    float: bool,
}

fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// HELP texts at other addresses found equal to `help` (catalog entries
    /// of one family each carry their own copy): a pointer match settles a
    /// push without comparing the text again.
    help_seen: Vec<&'static str>,
    /// The family's exposition text: its HELP and TYPE lines, then each
    /// sample's line `name{a="b",c="d"} value`, written as the sample is
    /// pushed. A scrape's text is these texts back to back: rendering is one
    /// copy per family, not a second pass over every series' pieces. UTF-8:
    /// made of `&str` pieces and ASCII only.
    text: Vec<u8>,
    /// Where the HELP and TYPE lines end in `text`.
    head: usize,
    /// Where this set's text ends while it is built: bytes past it are an
    /// earlier set's, written over as samples come (not zeroed first), and
    /// cut at [`Builder::finish`].
    used: usize,
    samples: Vec<Sample>,
}

/// Writes a family's HELP and TYPE lines at the start of `text`; where they end.
fn write_head(text: &mut Vec<u8>, name: &str, help: &str, kind: Kind) -> usize {
    let mut c = Cursor::over(text, 0);
    // "# HELP " name " " help "\n# TYPE " name " counter\n"
    c.room(help.len() + 2 * name.len() + 26);
    c.put(b"# HELP ");
    c.put(name.as_bytes());
    c.byte(b' ');
    escape_help(help, &mut c);
    c.put(b"\n# TYPE ");
    c.put(name.as_bytes());
    c.put(match kind {
        Kind::Counter => b" counter\n",
        Kind::Gauge => b" gauge\n",
    });
    c.at
}

impl Family {
    /// A family with its HELP and TYPE lines, in the storage of `spare`
    /// (the same family in an earlier set) when there is one.
    fn new(name: &'static str, help: &'static str, kind: Kind, spare: Option<Family>) -> Family {
        let (mut text, mut samples, mut help_seen, spare_help, spare_head) = match spare {
            Some(f) => {
                // Its HELP and TYPE lines are this family's (spares are found
                // by name) when its help is this text and its kind this kind:
                // kept, not written and escaped again every cycle.
                let same = std::ptr::eq(f.help, help) && f.kind == kind;
                (
                    f.text,
                    f.samples,
                    f.help_seen,
                    f.help,
                    same.then_some(f.head),
                )
            }
            None => Default::default(),
        };
        let head = match spare_head {
            Some(head) => head,
            None => write_head(&mut text, name, help, kind),
        };
        // The addresses seen stand for the same text only if it is still this one.
        if !std::ptr::eq(spare_help, help) && spare_help != help {
            help_seen.clear();
        }
        samples.clear();
        Family {
            name,
            help,
            kind,
            help_seen,
            head,
            used: head,
            text,
            samples,
        }
    }

    /// `help` is this family's HELP text, at its address or at one already
    /// found equal (remembered in `help_seen`).
    fn same_help(&mut self, help: &'static str) -> bool {
        if std::ptr::eq(self.help, help) || self.help_seen.iter().any(|h| std::ptr::eq(*h, help)) {
            return true;
        }
        if self.help != help {
            return false;
        }
        self.help_seen.push(help);
        true
    }

    /// Appends a sample and its line; its labels are `prefix` (rendered,
    /// open: see [`Builder::prefixed`]) then `labels`.
    fn add(&mut self, prefix: &[u8], labels: Labels<'_>, value: Value) {
        let mut c = Cursor::over(&mut self.text, self.used);
        // The line when nothing is escaped and the value is at most 20
        // digits, the common case; more room is made as it goes otherwise.
        let room = match labels {
            Labels::Pairs(l) => label_room(l),
            Labels::Tail(t) => t.0.len(),
        };
        c.room(self.name.len() + prefix.len() + room + 23);
        c.put(self.name.as_bytes());
        match labels {
            Labels::Pairs(l) => write_labels(prefix, l, &mut c),
            Labels::Tail(t) => write_tail(prefix, t, &mut c),
        }
        let labels_end = c.at;
        c.byte(b' ');
        match value {
            Value::U64(v) => c.put(itoa::Buffer::new().format(v).as_bytes()),
            Value::F64(v) => write_f64(v, &mut c),
        }
        c.byte(b'\n');
        let end = c.at;
        drop(c);
        self.used = end;
        self.samples.push(Sample {
            labels_end: offset(labels_end),
            end: offset(end),
            float: matches!(value, Value::F64(_)),
        });
    }

    /// Each sample's rendered labels and value.
    fn series(&self) -> impl Iterator<Item = (&[u8], Option<Value>)> {
        let mut start = self.head;
        self.samples.iter().map(move |s| {
            let from = start + self.name.len();
            let (labels_end, end) = (s.labels_end as usize, s.end as usize);
            start = end;
            let labels = self.text.get(from..labels_end).unwrap_or_default();
            // After the labels' space, before the newline.
            let value = self.text.get(labels_end + 1..end.saturating_sub(1));
            let value = std::str::from_utf8(value.unwrap_or_default()).ok();
            let value = value.and_then(|v| match s.float {
                true => v.parse().ok().map(Value::F64),
                false => v.parse().ok().map(Value::U64),
            });
            (labels, value)
        })
    }
}

/// One cycle's worth of metrics.
#[derive(Debug, Default)]
pub struct MetricSet {
    families: Vec<Family>,
    conflicts: Vec<Conflict>,
    /// The text in one buffer, made when asked for (scrapes send the
    /// families' texts as they are: [`MetricSet::family_text`]).
    rendered: OnceLock<Vec<u8>>,
    /// The builder's family indexes, emptied, for the next builder: made
    /// afresh each cycle they were allocated and freed every cycle, and musl
    /// handed their pages back to the kernel and mapped them again.
    spare_index: Indexes,
}

/// A builder's families by name and by the name's address.
#[derive(Debug, Default)]
struct Indexes {
    by_name: rustc_hash::FxHashMap<&'static str, usize>,
    by_addr: rustc_hash::FxHashMap<(usize, usize), usize>,
}

/// Conflicts kept per set: one is a bug already, the rest only repeat it.
const MAX_CONFLICTS: usize = 64;

/// A family used inconsistently: Prometheus would reject or misread the scrape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Conflict {
    #[error("{name} registered as {first:?} and as {second:?}")]
    Kind {
        name: &'static str,
        first: Kind,
        second: Kind,
    },
    #[error("{name} has two HELP texts: {first:?} and {second:?}")]
    Help {
        name: &'static str,
        first: &'static str,
        second: &'static str,
    },
    #[error("{name}{labels} appears twice")]
    Duplicate { name: &'static str, labels: String },
}

impl MetricSet {
    /// Samples refused while building (a second TYPE or HELP for a family).
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Every conflict, including series that appear twice in one family.
    pub fn check(&self) -> Vec<Conflict> {
        let mut all = self.conflicts.clone();
        for f in &self.families {
            let mut labels: Vec<&[u8]> = f.series().map(|(l, _)| l).collect();
            labels.sort_unstable();
            for w in labels.windows(2) {
                if w[0] == w[1] && all.len() < MAX_CONFLICTS {
                    all.push(Conflict::Duplicate {
                        name: f.name,
                        labels: String::from_utf8_lossy(w[0]).into_owned(),
                    });
                }
            }
        }
        all
    }

    /// The Prometheus text exposition (format 0.0.4) in one buffer, made
    /// once per set.
    pub fn text(&self) -> &[u8] {
        self.rendered.get_or_init(|| {
            let mut out = Vec::new();
            self.render(&mut out);
            out
        })
    }

    /// The families that have samples: those a scrape shows.
    fn shown(&self) -> impl Iterator<Item = &Family> + Clone {
        self.families.iter().filter(|f| !f.samples.is_empty())
    }

    /// How many families the set has (some may be empty: every sample
    /// refused).
    pub fn families(&self) -> usize {
        self.families.len()
    }

    /// Family `i`'s part of the text: its HELP and TYPE lines and its
    /// samples' lines, or nothing (no samples, or past the last).
    pub fn family_text(&self, i: usize) -> &[u8] {
        self.families
            .get(i)
            .filter(|f| !f.samples.is_empty())
            .map_or(&[], |f| &f.text)
    }

    /// The text in pieces, in order: what [`MetricSet::text`] joins.
    pub fn texts(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.shown().map(|f| &f.text[..])
    }

    /// Appends the text exposition to `out`.
    pub fn render(&self, out: &mut Vec<u8>) {
        self.render_into(Cursor::new(out));
    }

    /// The families' texts back to back, in the room of their exact length.
    fn render_into(&self, mut c: Cursor<'_>) {
        c.room(self.texts().map(<[u8]>::len).sum());
        for text in self.texts() {
            c.put(text);
        }
    }

    /// Number of samples (series) in the set.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of one series, for tests and the snapshot: labels as rendered.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<Value> {
        let mut want = Vec::new();
        render_labels(labels, &mut want);
        self.families
            .iter()
            .find(|f| f.name == name)?
            .series()
            .find(|(l, _)| *l == want)?
            .1
    }
}

fn write_f64(v: f64, c: &mut Cursor<'_>) {
    if v.is_nan() {
        c.put(b"NaN");
    } else if v.is_infinite() {
        c.put(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Whole numbers print without a fraction, exactly.
        c.put(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        // Display never uses an exponent: the longest (5e-324) is 326 bytes.
        let mut text = [0u8; 400];
        let mut rest = &mut text[..];
        let _ = std::io::Write::write_fmt(&mut rest, format_args!("{v}"));
        let n = 400 - rest.len();
        c.put(&text[..n]);
    }
}

fn escape_help(help: &str, c: &mut Cursor<'_>) {
    if !help.bytes().any(|b| b == b'\\' || b == b'\n') {
        c.put(help.as_bytes());
        return;
    }
    for b in help.bytes() {
        match b {
            b'\\' => c.put(b"\\\\"),
            b'\n' => c.put(b"\\n"),
            _ => c.byte(b),
        }
    }
}

/// Whether a label value has a byte to escape (`\\`, `"`, newline), a word
/// at a time: every series' labels are checked every cycle.
fn needs_escape(v: &[u8]) -> bool {
    let n = v.len();
    if n < 8 {
        return word_escapes(short_word(v));
    }
    let mut i = 0;
    while i + 8 < n {
        if word_escapes(word_at(v, i)) {
            return true;
        }
        i += 8;
    }
    // The last word overlaps the one before: no byte is missed.
    word_escapes(word_at(v, n - 8))
}

/// Whether a word holds a `\\`, a `"` or a newline: the classic test for a
/// zero byte (exact as to whether there is one) on the word xor each.
#[inline]
fn word_escapes(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |y: u64| y.wrapping_sub(ONES) & !y;
    (zero(x ^ (ONES * u64::from(b'\\')))
        | zero(x ^ (ONES * u64::from(b'"')))
        | zero(x ^ (ONES * u64::from(b'\n'))))
        & HIGHS
        != 0
}

/// The eight bytes of `v` from `at` (zero past its end, which cannot be one
/// of the three).
#[inline]
fn word_at(v: &[u8], at: usize) -> u64 {
    v.get(at..)
        .and_then(|v| v.first_chunk::<8>())
        .map_or(0, |w| u64::from_le_bytes(*w))
}

/// Every byte of a value shorter than eight in one word (some twice, the
/// rest zero).
#[inline]
fn short_word(v: &[u8]) -> u64 {
    let n = v.len();
    let half = |at: usize| {
        v.get(at..)
            .and_then(|v| v.first_chunk::<4>())
            .map_or(0, |w| u64::from(u32::from_le_bytes(*w)))
    };
    if n >= 4 {
        half(0) | half(n - 4) << 32
    } else if n > 0 {
        u64::from(v[0]) | u64::from(v[n / 2]) << 8 | u64::from(v[n - 1]) << 16
    } else {
        0
    }
}

/// Writes a buffer piece by piece: grown once to the room the caller
/// expects (only bytes past its length are zeroed), filled by short word
/// moves with one room check per piece, and cut to what was written when
/// dropped (or, made by [`Cursor::over`], left as long as it was, for the
/// caller to cut). The pieces of a series (a name, a label, a value: a few dozen
/// bytes) are too short for the static build's memcpy: musl's starts every
/// copy with `rep movsq`, about 19 ns for a 10-byte piece (musl build on
/// this machine), and a byte pushed at a time checks the capacity each time.
struct Cursor<'a> {
    out: &'a mut Vec<u8>,
    at: usize,
    /// Where this cursor began: it grows by what it wrote, not by what the
    /// buffer held before (a line appended to a family's text).
    start: usize,
    /// Leave the bytes past where the writing stopped (see [`Cursor::over`]).
    keep: bool,
}

impl<'a> Cursor<'a> {
    /// Writes after what `out` holds.
    fn new(out: &'a mut Vec<u8>) -> Cursor<'a> {
        let at = out.len();
        Cursor {
            out,
            at,
            start: at,
            keep: false,
        }
    }

    /// Writes from `at` over what `out` holds past it, and leaves what it
    /// did not write over: an earlier text's bytes are room that need not
    /// be zeroed again. The caller keeps where its text ends.
    fn over(out: &'a mut Vec<u8>, at: usize) -> Cursor<'a> {
        Cursor {
            out,
            at,
            start: at,
            keep: true,
        }
    }

    /// Makes room for `n` more bytes.
    fn room(&mut self, n: usize) {
        let want = self.at + n;
        if self.out.len() < want {
            self.out.resize(want, 0);
        }
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        self.room(n.max((self.at - self.start) / 2).max(64));
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if self.at >= self.out.len() {
            self.grow(1);
        }
        if let Some(d) = self.out.get_mut(self.at) {
            *d = b;
        }
        self.at += 1;
    }

    #[inline]
    fn put(&mut self, piece: &[u8]) {
        let n = piece.len();
        if self.out.len().saturating_sub(self.at) < n {
            self.grow(n);
        }
        if let Some(dst) = self.out.get_mut(self.at..self.at + n) {
            copy_short(dst, piece);
        }
        self.at += n;
    }
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        if !self.keep {
            self.out.truncate(self.at);
        }
    }
}

/// `dst.copy_from_slice(src)` (same lengths) in fixed-size moves: eight
/// bytes at a time, the last word overlapping the one before; shorter
/// pieces in two overlapping halves. Long pieces go to memcpy.
#[inline]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() {
        return;
    }
    if n > 64 {
        dst.copy_from_slice(src);
    } else if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            move_word::<8>(dst, src, i);
            i += 8;
        }
        move_word::<8>(dst, src, n - 8);
    } else if n >= 4 {
        move_word::<4>(dst, src, 0);
        move_word::<4>(dst, src, n - 4);
    } else if n > 0 {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

/// `N` bytes of `src` from `at` to `dst` at `at`, as one move (a slice's
/// `copy_from_slice` of a length known only at run time is a memcpy call).
#[inline(always)]
fn move_word<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    let d = dst.get_mut(at..).and_then(|d| d.first_chunk_mut::<N>());
    let s = src.get(at..).and_then(|s| s.first_chunk::<N>());
    if let (Some(d), Some(s)) = (d, s) {
        *d = *s;
    }
}

/// Appends `{a="b",c="d"}` (nothing for no labels) to `s`.
fn render_labels(labels: &[(&str, &str)], s: &mut Vec<u8>) {
    let mut c = Cursor::new(s);
    c.room(label_room(labels));
    write_labels(&[], labels, &mut c);
}

/// The length of `{a="b",c="d"}` when nothing is escaped, the common case
/// (an escape makes more room as it goes): `{`, each `k="v"` and a `,` or
/// the `}`.
fn label_room(labels: &[(&str, &str)]) -> usize {
    if labels.is_empty() {
        return 0;
    }
    1 + labels
        .iter()
        .map(|(k, v)| k.len() + v.len() + 4)
        .sum::<usize>()
}

/// Writes `{a="b",c="d"}` (nothing for no labels), after `prefix`'s
/// rendered labels when there are any (`{a="b"`, open).
fn write_labels(prefix: &[u8], labels: &[(&str, &str)], c: &mut Cursor<'_>) {
    if prefix.is_empty() {
        if labels.is_empty() {
            return;
        }
        c.byte(b'{');
    } else {
        c.put(prefix);
    }
    write_pairs(labels, !prefix.is_empty(), c);
    c.byte(b'}');
}

/// Writes `a="b",c="d"`, with a comma before the first too when `comma`.
fn write_pairs(labels: &[(&str, &str)], comma: bool, c: &mut Cursor<'_>) {
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 || comma {
            c.byte(b',');
        }
        c.put(k.as_bytes());
        c.put(b"=\"");
        if needs_escape(v.as_bytes()) {
            // The three are ASCII: no byte of a longer UTF-8 sequence is one.
            for &b in v.as_bytes() {
                match b {
                    b'\\' => c.put(b"\\\\"),
                    b'"' => c.put(b"\\\""),
                    b'\n' => c.put(b"\\n"),
                    _ => c.byte(b),
                }
            }
        } else {
            c.put(v.as_bytes());
        }
        c.byte(b'"');
    }
}

/// Writes a line's labels: `prefix` (open, as in [`write_labels`]) then a
/// rendered tail. A tail starts with its comma, or is the lone `}` of no
/// labels: after no prefix, the comma becomes the `{` (nothing for `}`).
fn write_tail(prefix: &[u8], tail: Tail<'_>, c: &mut Cursor<'_>) {
    if !prefix.is_empty() {
        c.put(prefix);
        c.put(tail.0);
    } else if let Some(rest) = tail.0.strip_prefix(b",") {
        c.byte(b'{');
        c.put(rest);
    }
}

/// How a pushed sample's labels come: as pairs, rendered as the line is
/// written, or as a tail rendered before (see [`Tails`]).
#[derive(Clone, Copy)]
enum Labels<'a> {
    Pairs(&'a [(&'a str, &'a str)]),
    Tail(Tail<'a>),
}

/// Labels rendered once, for series a collector pushes every cycle with
/// the same labels: each is what follows a [`Builder::prefixed`] prefix
/// (`,a="b",c="d"}`), copied into the line instead of rendered and escaped
/// again (a port's counters, most of the series, with tails that are the
/// same on every port of a driver).
#[derive(Debug, Default)]
pub struct Tails {
    text: Vec<u8>,
    /// Where each tail ends in `text` (it starts where the one before ends).
    ends: Vec<usize>,
}

/// One of [`Tails`]' rendered tails.
#[derive(Debug, Clone, Copy)]
pub struct Tail<'a>(&'a [u8]);

impl<'a> Tail<'a> {
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }
}

impl Tails {
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Renders `labels` as a tail: its index for [`Tails::get`].
    pub fn add(&mut self, labels: &[(&str, &str)]) -> usize {
        let mut c = Cursor::new(&mut self.text);
        c.room(label_room(labels));
        write_pairs(labels, true, &mut c);
        c.byte(b'}');
        drop(c);
        self.ends.push(self.text.len());
        self.ends.len() - 1
    }

    pub fn get(&self, i: usize) -> Option<Tail<'_>> {
        let end = *self.ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => *self.ends.get(i - 1)?,
        };
        self.text.get(start..end).map(Tail)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Builds a [`MetricSet`]. Families are keyed by name: pushing to a name
/// twice appends to the same family, whichever collector does it.
#[derive(Debug, Default)]
pub struct Builder {
    families: Vec<Family>,
    /// Samples refused because their family was registered otherwise.
    conflicts: Vec<Conflict>,
    /// Families by name, and by the name's address and length: a name
    /// pushed from the same place is found without hashing its text.
    index: Indexes,
    /// Collectors push runs of one family: the last one is checked first.
    last: usize,
    /// The text and sample storage of an earlier set's families (their
    /// text written over, not emptied first: see [`Family::used`]), by name, for the same families of this one (see [`Registry::builder`]).
    spare: rustc_hash::FxHashMap<&'static str, Family>,
    /// `{a="b",c="d"` while a [`Prefixed`] guard lives (empty otherwise).
    prefix: Vec<u8>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// A builder that fills the storage of `old` (its families' labels and
    /// samples' texts) instead of allocating afresh: a cycle
    /// builds the same families as the one before, so in steady state the
    /// set costs no allocation.
    pub fn reusing(old: MetricSet) -> Builder {
        let mut b = Builder::new();
        b.index = old.spare_index;
        b.index.by_name.clear();
        b.index.by_addr.clear();
        for f in old.families {
            b.spare.insert(f.name, f);
        }
        b
    }

    /// The index of the family `name` in `families`, made if new.
    fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) -> usize {
        if self
            .families
            .get(self.last)
            .is_some_and(|f| std::ptr::eq(f.name, name))
        {
            return self.last;
        }
        let addr = (name.as_ptr() as usize, name.len());
        if let Some(&i) = self.index.by_addr.get(&addr) {
            self.last = i;
            return i;
        }
        let spare = &mut self.spare;
        let i = *self.index.by_name.entry(name).or_insert_with(|| {
            self.families
                .push(Family::new(name, help, kind, spare.remove(name)));
            self.families.len() - 1
        });
        self.index.by_addr.insert(addr, i);
        self.last = i;
        i
    }

    pub fn push(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        value: Value,
    ) {
        self.push_labels(name, help, kind, Labels::Pairs(labels), value);
    }

    fn push_labels(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels<'_>,
        value: Value,
    ) {
        let i = self.family(name, help, kind);
        let Some(f) = self.families.get_mut(i) else {
            return;
        };
        // As client_golang's Gather: one TYPE and one HELP per family. The
        // sample is refused, not rendered under the wrong TYPE.
        let conflict = if f.kind != kind {
            Some(Conflict::Kind {
                name,
                first: f.kind,
                second: kind,
            })
        } else if !f.same_help(help) {
            Some(Conflict::Help {
                name,
                first: f.help,
                second: help,
            })
        } else {
            f.add(&self.prefix, labels, value);
            None
        };
        if let Some(c) = conflict
            && self.conflicts.len() < MAX_CONFLICTS
        {
            self.conflicts.push(c);
        }
    }

    /// This builder, with `labels` rendered once before the labels of every
    /// series pushed through the guard (a port's device and port for each
    /// of its counters) instead of once per series: the same series,
    /// written the same way. The prefix ends with the guard.
    pub fn prefixed(&mut self, labels: &[(&str, &str)]) -> Prefixed<'_> {
        self.prefix.clear();
        render_labels(labels, &mut self.prefix);
        // Open, for the series' own labels to follow.
        self.prefix.pop();
        Prefixed(self)
    }

    /// A monotonic counter as the kernel reports it (absolute, never accumulated here).
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: u64,
    ) {
        self.push(name, help, Kind::Counter, labels, Value::U64(v));
    }

    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        self.push(name, help, Kind::Gauge, labels, Value::F64(v));
    }

    pub fn gauge_u64(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: u64,
    ) {
        self.push(name, help, Kind::Gauge, labels, Value::U64(v));
    }

    /// The set of this cycle. In debug and test builds a conflicting family or a
    /// duplicate series is a bug that stops the build's tests: it panics with
    /// every conflict. Release builds refuse conflicting samples (see
    /// [`MetricSet::conflicts`]) and skip the duplicate search, which costs a
    /// sort per family each cycle.
    pub fn finish(mut self) -> MetricSet {
        for f in &mut self.families {
            f.text.truncate(f.used);
        }
        let set = MetricSet {
            families: self.families,
            conflicts: self.conflicts,
            rendered: OnceLock::new(),
            spare_index: self.index,
        };
        if cfg!(debug_assertions) {
            let all = set.check();
            assert!(all.is_empty(), "inconsistent metric set: {all:#?}");
        }
        set
    }
}

/// A [`Builder`] whose pushes start with a label prefix (see
/// [`Builder::prefixed`]).
pub struct Prefixed<'a>(&'a mut Builder);

impl std::ops::Deref for Prefixed<'_> {
    type Target = Builder;
    fn deref(&self) -> &Builder {
        self.0
    }
}

impl std::ops::DerefMut for Prefixed<'_> {
    fn deref_mut(&mut self) -> &mut Builder {
        self.0
    }
}

impl Prefixed<'_> {
    /// A series whose labels after the prefix are a rendered `tail`: the
    /// series [`Builder::push`] makes of the same labels, without
    /// rendering them again.
    pub fn push_tail(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        tail: Tail<'_>,
        value: Value,
    ) {
        self.0
            .push_labels(name, help, kind, Labels::Tail(tail), value);
    }
}

impl Drop for Prefixed<'_> {
    fn drop(&mut self) {
        self.0.prefix.clear();
    }
}

/// The published metrics: written by the collection loop, read by scrapes.
pub struct Registry {
    current: ArcSwap<MetricSet>,
    /// The set the last publish replaced, kept for the next builder.
    spent: Mutex<Option<Spent>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            current: ArcSwap::from_pointee(MetricSet::default()),
            spent: Mutex::new(None),
        }
    }
}

/// The set a publish replaced, kept for the next builder's storage: its own
/// (its text dropped), or still held by a scrape when it was replaced.
#[derive(Debug)]
enum Spent {
    Free(MetricSet),
    Scraped(Arc<MetricSet>),
}

impl Registry {
    pub fn publish(&self, set: MetricSet) {
        let old = self.current.swap(Arc::new(set));
        // A text joined for a caller of `text()` is dropped now, not kept
        // for the next builder: it would stay resident the whole interval.
        let spent = match Arc::try_unwrap(old) {
            Ok(mut set) => {
                set.rendered = OnceLock::new();
                Spent::Free(set)
            }
            Err(scraped) => Spent::Scraped(scraped),
        };
        *self.spent.lock().unwrap_or_else(|e| e.into_inner()) = Some(spent);
    }

    /// A builder for the next set, reusing the storage of the set the last
    /// publish replaced when no scrape holds it any more (else a new one).
    pub fn builder(&self) -> Builder {
        let spent = self.spent.lock().unwrap_or_else(|e| e.into_inner()).take();
        match spent {
            Some(Spent::Free(set)) => Builder::reusing(set),
            Some(Spent::Scraped(shared)) => match Arc::try_unwrap(shared) {
                Ok(set) => Builder::reusing(set),
                Err(_) => Builder::new(),
            },
            None => Builder::new(),
        }
    }

    pub fn load(&self) -> Arc<MetricSet> {
        self.current.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set a publish replaced keeps its storage for the next builder but
    /// not its rendered text, which would stay resident all interval.
    #[test]
    fn a_replaced_set_is_kept_without_its_text() {
        let r = Registry::default();
        let mut b = r.builder();
        fill(&mut b, 40);
        r.publish(b.finish());
        assert!(!r.load().text().is_empty());
        let mut b = r.builder();
        fill(&mut b, 40);
        r.publish(b.finish());
        let spent = r.spent.lock().unwrap();
        match spent.as_ref() {
            Some(Spent::Free(set)) => {
                assert!(set.rendered.get().is_none());
                assert!(!set.families.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    /// The eight-at-a-time check finds what the byte loop finds, wherever
    /// the byte sits.
    #[test]
    fn escape_check_agrees_with_a_byte_loop() {
        let plain = b"mlx5_0port_xmit_data-1.2/ABCxyz~\x7f\x80\xff";
        for len in 0..plain.len() {
            for at in 0..=len {
                for bad in [b'\\', b'"', b'\n', b'a', 0, 0x5b, 0x23, 0x0b] {
                    let mut v = plain[..len].to_vec();
                    v.insert(at, bad);
                    let naive = v.iter().any(|b| matches!(b, b'\\' | b'"' | b'\n'));
                    assert_eq!(needs_escape(&v), naive, "{v:?}");
                }
            }
        }
    }

    /// A label renders as a byte loop escapes it, whatever its length (up
    /// to past the word moves' 64) and wherever the byte to escape sits.
    #[test]
    fn labels_render_as_a_byte_loop_escapes_them() {
        let plain =
            "mlx5_0port_xmit_data-1.2/ABCxyz~ü0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP";
        for len in (0..plain.len()).filter(|&l| plain.is_char_boundary(l)) {
            for at in (0..=len).filter(|&a| plain.is_char_boundary(a)) {
                for bad in ["\\", "\"", "\n", "a", "\0", "é"] {
                    let v = format!("{}{bad}{}", &plain[..at], &plain[at..len]);
                    let mut want = String::from("{k=\"");
                    for ch in v.chars() {
                        match ch {
                            '\\' => want.push_str("\\\\"),
                            '"' => want.push_str("\\\""),
                            '\n' => want.push_str("\\n"),
                            _ => want.push(ch),
                        }
                    }
                    want.push_str("\"}");
                    let mut out = b"x".to_vec();
                    render_labels(&[("k", &v)], &mut out);
                    assert_eq!(&out[1..], want.as_bytes(), "{v:?}");
                }
            }
        }
    }

    /// A piece copied in words is the piece, whatever its length and
    /// wherever the buffer stood, with room made beforehand or not; the
    /// buffer ends where the writing did.
    #[test]
    fn pieces_are_copied_whole() {
        let text = "mlx5_0 port_xmit_data ünïcödé \\\"\n 0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let piece = &text.as_bytes()[start..end];
                for before in [0, 3, 8] {
                    for room in [0, 1, piece.len(), 300] {
                        let mut out = vec![b'.'; before];
                        let mut c = Cursor::new(&mut out);
                        c.room(room);
                        c.put(piece);
                        c.byte(b'!');
                        drop(c);
                        assert!(out[..before].iter().all(|&b| b == b'.'));
                        assert_eq!(
                            &out[before..out.len() - 1],
                            piece,
                            "{start}..{end} after {before}, room {room}"
                        );
                        assert_eq!(out.last(), Some(&b'!'));
                    }
                }
            }
        }
    }

    /// A cursor appending to a long buffer grows it by what it writes, not
    /// by half the buffer: label sets with a byte to escape, each appended
    /// to a family's labels, once zeroed half the family each time.
    #[test]
    fn a_cursor_grows_by_what_it_writes() {
        let mut v = vec![b'.'; 1 << 20];
        let mut c = Cursor::new(&mut v);
        c.put(b"0123456789");
        assert!(c.out.len() <= (1 << 20) + 1024, "{}", c.out.len());
        // The buffer holds what was written once the cursor is gone.
        drop(c);
        assert_eq!(v.len(), (1 << 20) + 10);
    }

    /// Fractional values print as Rust's Display prints them (never an
    /// exponent), however long: the longest is over 300 bytes.
    #[test]
    fn fractions_print_whole_however_long() {
        for v in [
            0.25,
            -1.5e-7,
            1e300 + 0.5,
            5e-324,
            -f64::MAX,
            123_456_789_012_345.6,
        ] {
            let mut b = Builder::new();
            b.gauge("rdma_v", "V.", &[], v);
            let text = String::from_utf8(b.finish().text().to_vec()).unwrap();
            let line = text.lines().last().unwrap();
            let want = if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("rdma_v {}", v as i64)
            } else {
                format!("rdma_v {v}")
            };
            assert_eq!(line, want);
        }
    }

    /// Labels render as text: escaped where the value asks, other UTF-8 as it is.
    #[test]
    fn labels_render_escaped_and_utf8_intact() {
        let mut out = Vec::new();
        render_labels(
            &[
                ("device", "mlx5_0"),
                ("path", "a\\b\"c\nd ü"),
                (
                    "name",
                    "x_ü_very_long_label_value_over_sixty_four_bytes_long_0123456789",
                ),
            ],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{device=\"mlx5_0\",path=\"a\\\\b\\\"c\\nd ü\",name=\"x_ü_very_long_label_value_over_sixty_four_bytes_long_0123456789\"}"
        );
    }

    /// A HELP text at another address with the same words is the same HELP;
    /// other words are a conflict however often the first ones were seen.
    #[test]
    fn help_texts_compare_by_words_not_address() {
        let same: &'static str = String::from("X.").leak();
        let other: &'static str = String::from("Y.").leak();
        let mut b = Builder::new();
        for i in 0..3u64 {
            let l = i.to_string();
            b.counter("rdma_x_total", "X.", &[("i", &l)], i);
            b.counter("rdma_x_total", same, &[("j", &l)], i);
        }
        b.counter("rdma_x_total", other, &[("k", "0")], 0);
        assert_eq!(b.conflicts.len(), 1, "{:?}", b.conflicts);
        assert_eq!(b.families[0].samples.len(), 6);
    }

    /// Labels split between a prefix and the rest at every place by the
    /// prefix and tail tests: one with every byte that is escaped.
    const SPLIT_LABELS: [(&str, &str); 4] = [
        ("device", "mlx5_0"),
        ("port", "1"),
        ("node_desc", "a \"b\" \\ c\nd"),
        ("counter", "rx_prio0_bytes"),
    ];

    /// A series pushed after a prefix is the series pushed with all its
    /// labels: however the labels split between prefix and the rest
    /// (none, some, all), escapes included.
    #[test]
    fn prefixed_series_are_the_series() {
        let all = SPLIT_LABELS;
        for split in 0..=all.len() {
            let (head, rest) = all.split_at(split);
            let mut whole = Builder::new();
            let mut prefixed = Builder::new();
            for v in 0..3u64 {
                let i = v.to_string();
                let mut full = all.to_vec();
                let mut own = rest.to_vec();
                if v > 0 {
                    full.push(("i", &i));
                    own.push(("i", &i));
                }
                let half = Value::F64(v as f64 / 2.0);
                whole.counter("rdma_a_total", "A.", &full, v);
                whole.push("rdma_b", "B.", Kind::Gauge, &own, half);
                prefixed.prefixed(head).push(
                    "rdma_a_total",
                    "A.",
                    Kind::Counter,
                    &own,
                    Value::U64(v),
                );
                prefixed.push("rdma_b", "B.", Kind::Gauge, &own, half);
            }
            let (whole, prefixed) = (whole.finish(), prefixed.finish());
            assert_eq!(
                String::from_utf8_lossy(whole.text()),
                String::from_utf8_lossy(prefixed.text()),
                "prefix {head:?}"
            );
        }
    }

    /// A series pushed with a rendered tail is the series pushed with its
    /// labels: for every split of the labels between prefix and tail
    /// (none, some, all), escapes included, and from tails rendered among
    /// others.
    #[test]
    fn a_tail_is_the_labels_it_was_rendered_from() {
        let all = SPLIT_LABELS;
        for split in 0..=all.len() {
            let (head, rest) = all.split_at(split);
            let mut tails = Tails::default();
            tails.add(&[("x", "y")]);
            let i = tails.add(rest);
            tails.add(&[]);
            let mut whole = Builder::new();
            let mut tailed = Builder::new();
            for (name, v) in [
                ("rdma_a_total", 0),
                ("rdma_b_total", 1),
                ("rdma_c_total", 2),
            ] {
                whole.counter(name, "A.", &all, v);
                let tail = tails.get(i).unwrap();
                let mut p = tailed.prefixed(head);
                p.push_tail(name, "A.", Kind::Counter, tail, Value::U64(v));
            }
            let (whole, tailed) = (whole.finish(), tailed.finish());
            assert_eq!(
                String::from_utf8_lossy(whole.text()),
                String::from_utf8_lossy(tailed.text()),
                "prefix {head:?}"
            );
        }
        // No labels at all: no prefix and the lone `}`.
        let mut tails = Tails::default();
        assert_eq!(tails.add(&[]), 0);
        assert_eq!(tails.get(0).unwrap().as_bytes(), b"}");
        assert!(tails.get(1).is_none());
        let mut whole = Builder::new();
        whole.counter("rdma_a_total", "A.", &[], 5);
        let mut tailed = Builder::new();
        let tail = tails.get(0).unwrap();
        tailed
            .prefixed(&[])
            .push_tail("rdma_a_total", "A.", Kind::Counter, tail, Value::U64(5));
        let (whole, tailed) = (whole.finish(), tailed.finish());
        assert_eq!(whole.text(), tailed.text());
        assert!(tailed.text().ends_with(b"\nrdma_a_total 5\n"));
    }

    /// A value kept only in the text reads back as it was pushed, integers
    /// and floats alike (a whole float is written as an integer).
    #[test]
    fn values_read_back_from_the_text() {
        let ints = [0, 1, 9, 10, u64::from(u32::MAX) + 1, u64::MAX - 1, u64::MAX];
        // -0.0 is left out: written as 0, it reads back as 0.0, equal to it.
        let floats = [
            0.0,
            0.25,
            -3.0,
            1e15,
            1e-300,
            5e-324,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut b = Builder::new();
        for (i, v) in ints.iter().enumerate() {
            b.gauge_u64("rdma_i", "I.", &[("i", &i.to_string())], *v);
        }
        for (i, v) in floats.iter().enumerate() {
            b.gauge("rdma_f", "F.", &[("i", &i.to_string())], *v);
        }
        b.gauge("rdma_nan", "NaN.", &[], f64::NAN);
        let set = b.finish();
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(
                set.get("rdma_i", &[("i", &i.to_string())]),
                Some(Value::U64(*v))
            );
        }
        for (i, v) in floats.iter().enumerate() {
            assert_eq!(
                set.get("rdma_f", &[("i", &i.to_string())]),
                Some(Value::F64(*v))
            );
        }
        assert!(matches!(set.get("rdma_nan", &[]), Some(Value::F64(v)) if v.is_nan()));
        assert_eq!(set.get("rdma_i", &[("i", "99")]), None);
    }

    #[test]
    fn renders_text_format() {
        let mut b = Builder::new();
        b.counter(
            "rdma_x_total",
            "Help with \\ and\nnewline.",
            &[("device", "mlx5_0"), ("port", "1")],
            42,
        );
        b.gauge("rdma_y", "A gauge.", &[], 0.25);
        b.counter(
            "rdma_x_total",
            "Help with \\ and\nnewline.",
            &[("device", "a\"b\\c\nd"), ("port", "2")],
            u64::MAX,
        );
        b.gauge("rdma_z", "Whole.", &[], 3.0);
        b.gauge("rdma_w", "Odd.", &[], f64::NAN);
        let set = b.finish();
        let text = String::from_utf8(set.text().to_vec()).unwrap();
        assert_eq!(
            text,
            "# HELP rdma_x_total Help with \\\\ and\\nnewline.\n\
             # TYPE rdma_x_total counter\n\
             rdma_x_total{device=\"mlx5_0\",port=\"1\"} 42\n\
             rdma_x_total{device=\"a\\\"b\\\\c\\nd\",port=\"2\"} 18446744073709551615\n\
             # HELP rdma_y A gauge.\n\
             # TYPE rdma_y gauge\n\
             rdma_y 0.25\n\
             # HELP rdma_z Whole.\n\
             # TYPE rdma_z gauge\n\
             rdma_z 3\n\
             # HELP rdma_w Odd.\n\
             # TYPE rdma_w gauge\n\
             rdma_w NaN\n"
        );
        assert_eq!(set.len(), 5);
        assert_eq!(
            set.get("rdma_x_total", &[("device", "mlx5_0"), ("port", "1")]),
            Some(Value::U64(42))
        );
    }

    fn built(f: impl FnOnce(&mut Builder)) -> Vec<Conflict> {
        let mut b = Builder::new();
        f(&mut b);
        let set = MetricSet {
            families: b.families,
            conflicts: b.conflicts,
            rendered: OnceLock::new(),
            spare_index: Indexes::default(),
        };
        set.check()
    }

    #[test]
    fn duplicate_series_and_mismatched_families_are_rejected() {
        let dup = built(|b| {
            b.gauge("rdma_a", "A.", &[("device", "d")], 1.0);
            b.gauge("rdma_a", "A.", &[("device", "e")], 1.0);
            b.gauge("rdma_a", "A.", &[("device", "d")], 2.0);
        });
        assert_eq!(
            dup,
            [Conflict::Duplicate {
                name: "rdma_a",
                labels: "{device=\"d\"}".into()
            }]
        );
        let kind = built(|b| {
            b.gauge("rdma_b", "B.", &[], 1.0);
            b.counter("rdma_b", "B.", &[("x", "1")], 1);
        });
        assert!(
            matches!(kind[..], [Conflict::Kind { name: "rdma_b", .. }]),
            "{kind:?}"
        );
        let help = built(|b| {
            b.gauge("rdma_c", "C.", &[], 1.0);
            b.gauge("rdma_c", "Other.", &[("x", "1")], 1.0);
        });
        assert!(
            matches!(help[..], [Conflict::Help { name: "rdma_c", .. }]),
            "{help:?}"
        );
        assert!(built(|b| b.gauge("rdma_d", "D.", &[], 1.0)).is_empty());
    }

    #[test]
    #[should_panic(expected = "inconsistent metric set")]
    fn a_test_build_stops_on_a_duplicate() {
        let mut b = Builder::new();
        b.gauge("rdma_a", "A.", &[], 1.0);
        b.gauge("rdma_a", "A.", &[], 1.0);
        b.finish();
    }

    fn fill(b: &mut Builder, n: u64) {
        b.gauge("rdma_b", "B.", &[("device", "x")], n as f64 / 4.0);
        for i in 0..n {
            b.counter("rdma_a_total", "A.", &[("port", &i.to_string())], i);
        }
    }

    #[test]
    fn a_builder_reusing_a_set_builds_what_a_new_one_builds() {
        // Fewer, more and as many series as the set reused, with values of
        // other lengths: what is written over an earlier text is this text
        // alone, nothing of the earlier one left inside or after it.
        for (before, after) in [(50, 40), (40, 50), (10, 10), (1000, 3)] {
            let mut b = Builder::new();
            fill(&mut b, before);
            b.gauge("rdma_gone", "Only in the first set.", &[], 1.0);
            let old = b.finish();
            old.text();
            let mut fresh = Builder::new();
            fill(&mut fresh, after);
            let mut reused = Builder::reusing(old);
            assert_eq!(reused.spare.len(), 3);
            fill(&mut reused, after);
            let (fresh, reused) = (fresh.finish(), reused.finish());
            assert_eq!(
                String::from_utf8_lossy(fresh.text()),
                String::from_utf8_lossy(reused.text())
            );
            assert_eq!(reused.len(), after as usize + 1);
            let last = (after - 1).to_string();
            assert_eq!(
                reused.get("rdma_a_total", &[("port", &last)]),
                Some(Value::U64(after - 1))
            );
        }
    }

    /// A family's HELP and TYPE lines are kept from the set reused only
    /// while they are still its own: another help (equal text at another
    /// address, or another text) or another kind writes them again. The old
    /// set's head is marked before each reuse, so a kept head shows.
    #[test]
    fn a_reused_family_keeps_its_head_only_while_it_is_the_same() {
        let help: &'static str = "Help \\ with a backslash.";
        let other_address: &'static str = help.to_string().leak();
        let other: &'static str = "Other help.";
        // (help, kind, TYPE word, kept)
        let cases = [
            (help, Kind::Counter, "counter", true),
            (other_address, Kind::Counter, "counter", false),
            (other, Kind::Counter, "counter", false),
            (other, Kind::Counter, "counter", true),
            (other, Kind::Gauge, "gauge", false),
        ];
        let mut set = {
            let mut b = Builder::new();
            b.push("rdma_h", help, Kind::Counter, &[], Value::U64(1));
            b.finish()
        };
        for (help, kind, type_word, kept) in cases {
            // "# HELP" becomes "# hELP" in the set about to be reused.
            set.families[0].text[2] = b'h';
            let mut b = Builder::reusing(set);
            b.push("rdma_h", help, kind, &[("a", "b")], Value::U64(2));
            set = b.finish();
            let want = format!(
                "# {}ELP rdma_h {}\n# TYPE rdma_h {type_word}\nrdma_h{{a=\"b\"}} 2\n",
                if kept { "h" } else { "H" },
                help.replace('\\', "\\\\")
            );
            assert_eq!(
                String::from_utf8_lossy(set.text()),
                want,
                "{help} {type_word}"
            );
        }
    }

    #[test]
    fn the_registry_reuses_a_replaced_set_no_scrape_holds() {
        let r = Registry::default();
        let set = |v: f64| {
            let mut b = Builder::new();
            b.gauge("a", "a", &[("x", "y")], v);
            b.finish()
        };
        r.publish(set(1.0));
        r.publish(set(2.0));
        // The first set was replaced and nobody holds it: its storage is reused.
        assert_eq!(r.builder().spare.len(), 1);
        r.publish(set(3.0));
        let scrape = r.load();
        r.publish(set(4.0));
        // A scrape still holds the replaced set: a new builder, the set untouched.
        assert!(r.builder().spare.is_empty());
        assert_eq!(scrape.get("a", &[("x", "y")]), Some(Value::F64(3.0)));
    }

    #[test]
    fn publish_swaps_whole_sets() {
        let r = Registry::default();
        assert!(r.load().is_empty());
        let mut b = Builder::new();
        b.gauge("a", "a", &[], 1.0);
        r.publish(b.finish());
        let held = r.load();
        let mut b = Builder::new();
        b.gauge("a", "a", &[], 2.0);
        r.publish(b.finish());
        // A scrape that loaded the old set still sees it whole.
        assert_eq!(held.get("a", &[]), Some(Value::F64(1.0)));
        assert_eq!(r.load().get("a", &[]), Some(Value::F64(2.0)));
    }
}
