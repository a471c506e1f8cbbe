//! Pure parsers for the text of `/sys/class/infiniband` attributes.
//! Formats are those of `drivers/infiniband/core/sysfs.c` and
//! Documentation/ABI/stable/sysfs-class-infiniband.

use crate::model::Rate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a number: {0:?}")]
    Number(String),
    #[error("not a `<n>: <name>` value: {0:?}")]
    Enum(String),
    #[error("not a rate: {0:?}")]
    Rate(String),
    #[error("not a GUID: {0:?}")]
    Guid(String),
    #[error("not a GID: {0:?}")]
    Gid(String),
}

/// What reading an attribute's text can mean besides a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text<'a> {
    Value(&'a str),
    /// The kernel says the attribute has no backing (`N/A (no PMA)` and the like).
    NotAvailable,
}

/// Trims the trailing newline; recognises the kernel's "not available" texts.
pub fn classify(text: &str) -> Text<'_> {
    let t = text.trim();
    if t.starts_with("N/A") {
        Text::NotAvailable
    } else {
        Text::Value(t)
    }
}

/// A counter: decimal `%llu` (hw_counters, counters/*).
pub fn parse_u64(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse::<u64>().map_err(|_| ParseError::Number(t.into()))
}

/// A counter's usual text, decimal digits and one newline, as a number
/// without the `&str` round trip; `None` for anything else (no digits, any
/// other byte, more than `u64`), which [`parse_u64`] then judges.
pub fn digits(text: &[u8]) -> Option<u64> {
    let digits = text.strip_suffix(b"\n")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// `lid`, `sm_lid`, `cap_mask`: hex with a `0x` prefix; `lmc` is decimal.
pub fn parse_hex_or_dec(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| ParseError::Number(t.into()))
}

/// `state` ("4: ACTIVE"), `phys_state` ("5: LinkUp"), `node_type` ("1: CA").
pub fn parse_enum(text: &str) -> Result<(u8, String), ParseError> {
    parse_enum_ref(text).map(|(num, name)| (num, name.to_string()))
}

/// [`parse_enum`] with the name borrowed from `text` (the per-cycle read
/// copies it into the previous reading's string only when it changed).
pub fn parse_enum_ref(text: &str) -> Result<(u8, &str), ParseError> {
    let t = text.trim();
    let (num, name) = t
        .split_once(':')
        .ok_or_else(|| ParseError::Enum(t.into()))?;
    let num = num
        .trim()
        .parse::<u8>()
        .map_err(|_| ParseError::Enum(t.into()))?;
    Ok((num, name.trim()))
}

/// A parsed `rate` whose speed name is borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRef<'a> {
    pub gbit_per_sec: f64,
    pub width: Option<u8>,
    pub speed: Option<&'a str>,
}

impl RateRef<'_> {
    /// Writes this rate into `slot`, keeping the speed string `slot` has
    /// when it is the same (no allocation in steady state).
    pub fn store(self, slot: &mut Option<Rate>) {
        match slot {
            Some(r) => {
                r.gbit_per_sec = self.gbit_per_sec;
                r.width = self.width;
                if r.speed.as_deref() != self.speed {
                    r.speed = self.speed.map(str::to_string);
                }
            }
            None => *slot = Some(self.owned()),
        }
    }

    pub fn owned(self) -> Rate {
        Rate {
            gbit_per_sec: self.gbit_per_sec,
            width: self.width,
            speed: self.speed.map(str::to_string),
        }
    }
}

pub fn parse_rate(text: &str) -> Result<Rate, ParseError> {
    parse_rate_ref(text).map(RateRef::owned)
}

/// [`parse_rate`] with the speed name borrowed from `text`.
pub fn parse_rate_ref(text: &str) -> Result<RateRef<'_>, ParseError> {
    let t = text.trim();
    let err = || ParseError::Rate(t.into());
    let (num, rest) = t.split_once(' ').ok_or_else(err)?;
    let gbit_per_sec: f64 = num.parse().map_err(|_| err())?;
    if !gbit_per_sec.is_finite() || gbit_per_sec < 0.0 {
        return Err(err());
    }
    let rest = rest.trim_start();
    if !rest.starts_with("Gb/sec") {
        return Err(err());
    }
    let (mut width, mut speed) = (None, None);
    if let (Some(open), Some(close)) = (rest.find('('), rest.rfind(')')) {
        if close < open {
            return Err(err());
        }
        let inner = rest[open + 1..close].trim();
        let (w, s) = inner.split_once(' ').unwrap_or((inner, ""));
        width = w.strip_suffix('X').and_then(|n| n.parse::<u8>().ok());
        if !s.trim().is_empty() {
            speed = Some(s.trim());
        }
    }
    Ok(RateRef {
        gbit_per_sec,
        width,
        speed,
    })
}

/// `node_guid`, `sys_image_guid`: "0002:c903:0049:6f10" (four 16-bit groups).
pub fn parse_guid(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    let mut value: u64 = 0;
    let mut groups = 0;
    for g in t.split(':') {
        if g.is_empty() || g.len() > 4 {
            return Err(ParseError::Guid(t.into()));
        }
        let v = u16::from_str_radix(g, 16).map_err(|_| ParseError::Guid(t.into()))?;
        value = (value << 16) | u64::from(v);
        groups += 1;
    }
    if groups != 4 {
        return Err(ParseError::Guid(t.into()));
    }
    Ok(value)
}

/// The GUID as `ibstat`/`rdma dev` print it: 0x0002c90300496f10, on the
/// stack (labels written every cycle).
pub struct GuidText([u8; 18]);

impl GuidText {
    pub fn new(guid: u64) -> GuidText {
        let mut t = *b"0x0000000000000000";
        for (i, d) in t[2..].iter_mut().enumerate() {
            *d = b"0123456789abcdef"[(guid >> (60 - 4 * i) & 0xf) as usize];
        }
        GuidText(t)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `gids/N`: eight 16-bit hex groups. Returns `None` for the all-zero (unused) GID.
pub fn parse_gid(text: &str) -> Result<Option<[u16; 8]>, ParseError> {
    let t = text.trim();
    let mut out = [0u16; 8];
    let mut n = 0;
    for g in t.split(':') {
        if n == 8 || g.is_empty() || g.len() > 4 {
            return Err(ParseError::Gid(t.into()));
        }
        out[n] = u16::from_str_radix(g, 16).map_err(|_| ParseError::Gid(t.into()))?;
        n += 1;
    }
    if n != 8 {
        return Err(ParseError::Gid(t.into()));
    }
    Ok(if out == [0; 8] { None } else { Some(out) })
}

/// A GID in the form the kernel prints it (fixed-width groups), for labels.
pub fn format_gid(gid: &[u16; 8]) -> String {
    let mut s = String::with_capacity(39);
    for (i, g) in gid.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{g:04x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters() {
        assert_eq!(parse_u64("123\n"), Ok(123));
        assert_eq!(parse_u64("18446744073709551615\n"), Ok(u64::MAX));
        assert!(parse_u64("18446744073709551616").is_err());
        assert!(parse_u64("-1").is_err());
        assert!(parse_u64("").is_err());
        assert_eq!(classify("N/A (no PMA)\n"), Text::NotAvailable);
        assert_eq!(classify("7\n"), Text::Value("7"));
    }

    #[test]
    fn digits_agree_with_parse_u64() {
        for t in [
            "0\n",
            "123\n",
            "18446744073709551615\n",
            "18446744073709551616\n",
            "00000000000000000000001\n",
            "12",
            "",
            "\n",
            "1 2\n",
            "-1\n",
            "+1\n",
            "1\n\n",
        ] {
            if let Some(v) = digits(t.as_bytes()) {
                assert_eq!(Ok(v), parse_u64(t), "{t:?}");
            }
        }
        assert_eq!(digits(b"18446744073709551615\n"), Some(u64::MAX));
        assert_eq!(digits(b"18446744073709551616\n"), None);
        assert_eq!(digits(b"7"), None);
    }

    #[test]
    fn hex_attributes() {
        assert_eq!(parse_hex_or_dec("0x2651e84a\n"), Ok(0x2651_e84a));
        assert_eq!(parse_hex_or_dec("0x5"), Ok(5));
        assert_eq!(parse_hex_or_dec("0\n"), Ok(0));
        assert!(parse_hex_or_dec("0xzz").is_err());
    }

    #[test]
    fn enums() {
        assert_eq!(parse_enum("4: ACTIVE\n"), Ok((4, "ACTIVE".into())));
        assert_eq!(parse_enum("5: LinkUp"), Ok((5, "LinkUp".into())));
        assert_eq!(parse_enum("6: usNIC UDP"), Ok((6, "usNIC UDP".into())));
        assert!(parse_enum("ACTIVE").is_err());
        assert!(parse_enum("x: ACTIVE").is_err());
        assert!(parse_enum("300: big").is_err());
    }

    #[test]
    fn rates() {
        let r = parse_rate("100 Gb/sec (4X EDR)\n").unwrap();
        assert_eq!(r.gbit_per_sec, 100.0);
        assert_eq!(r.width, Some(4));
        assert_eq!(r.speed.as_deref(), Some("EDR"));
        let r = parse_rate("2.5 Gb/sec (1X SDR)").unwrap();
        assert_eq!(r.gbit_per_sec, 2.5);
        assert_eq!(r.width, Some(1));
        let r = parse_rate("10 Gb/sec (4X)").unwrap();
        assert_eq!((r.width, r.speed), (Some(4), None));
        let r = parse_rate("25 Gb/sec (1X EDR)").unwrap();
        assert_eq!(r.gbit_per_sec, 25.0);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10 Mb/sec (1X)").is_err());
        assert!(parse_rate("NaN Gb/sec (1X)").is_err());
        assert!(parse_rate("10 Gb/sec )4X(").is_err());
    }

    #[test]
    fn guids() {
        assert_eq!(
            parse_guid("0002:c903:0049:6f10\n"),
            Ok(0x0002_c903_0049_6f10)
        );
        for g in [0, 1, 0x0002_c903_0049_6f10, u64::MAX, 0xf000_0000_0000_000f] {
            assert_eq!(GuidText::new(g).as_str(), format!("{g:#018x}"));
        }
        assert!(parse_guid("0002:c903:0049").is_err());
        assert!(parse_guid("0002:c903:0049:6f10:0000").is_err());
        assert!(parse_guid("00020:c903:0049:6f1").is_err());
    }

    #[test]
    fn gids() {
        let g = parse_gid("fe80:0000:0000:0000:0002:c903:0049:6f11\n")
            .unwrap()
            .unwrap();
        assert_eq!(format_gid(&g), "fe80:0000:0000:0000:0002:c903:0049:6f11");
        assert_eq!(
            parse_gid("0000:0000:0000:0000:0000:0000:0000:0000"),
            Ok(None)
        );
        assert!(parse_gid("fe80::1").is_err());
        assert!(parse_gid("fe80:0:0:0:0:0:0:0:1").is_err());
    }

    /// Arbitrary bytes never make a parser panic.
    #[test]
    fn parsers_survive_garbage() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789abcdefxX:. ()GbsecN/A-\n\t\xff";
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 56)) as usize + i) % alphabet.len()])
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_u64(&s);
            let _ = parse_hex_or_dec(&s);
            let _ = parse_enum(&s);
            let _ = parse_rate(&s);
            let _ = parse_guid(&s);
            let _ = parse_gid(&s);
            let _ = classify(&s);
        }
    }
}
