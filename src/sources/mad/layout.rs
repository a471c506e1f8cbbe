//! MAD layout (IBTA vol. 1 §13.4.2): the 24-byte common header, the SMP
//! variants (LID routed and directed route, §14.2.1) and the GS layout of
//! PerfMgt (40 reserved bytes, data at 64).

pub const MAD_SIZE: usize = 256;

pub const CLASS_SMP_LID: u8 = 0x01;
pub const CLASS_SMP_DR: u8 = 0x81;
pub const CLASS_PERF: u8 = 0x04;

pub const METHOD_GET: u8 = 0x01;
pub const METHOD_GET_RESP: u8 = 0x81;

pub const ATTR_CLASS_PORT_INFO: u16 = 0x0001;
pub const ATTR_NODE_DESC: u16 = 0x0010;
pub const ATTR_NODE_INFO: u16 = 0x0011;
pub const ATTR_SWITCH_INFO: u16 = 0x0012;
pub const ATTR_PORT_INFO: u16 = 0x0015;
pub const ATTR_PORT_COUNTERS: u16 = 0x0012;
pub const ATTR_PORT_RCV_ERROR_DETAILS: u16 = 0x0015;
pub const ATTR_PORT_XMIT_DISCARD_DETAILS: u16 = 0x0016;
pub const ATTR_PORT_COUNTERS_EXT: u16 = 0x001d;

/// SMP data: 64 bytes at offset 64; GS (PerfMgt) data: 192 bytes at offset 64.
pub const DATA_OFFSET: usize = 64;
pub const SMP_DATA_LEN: usize = 64;
const DR_INITIAL_PATH: usize = 128;
/// Directed-route paths hold at most 63 hops (64-byte path, entry 0 unused).
pub const MAX_HOPS: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MadError {
    #[error("MAD of {0} bytes is shorter than the header")]
    Short(usize),
    #[error("unexpected MAD: class {class:#04x} method {method:#04x}")]
    Unexpected { class: u8, method: u8 },
    #[error("MAD status {status:#06x} ({})", status_text(*status))]
    Status { status: u16 },
    #[error("directed route of {0} hops is longer than 63")]
    PathTooLong(usize),
}

/// Meaning of the MAD status field (IBTA vol. 1 table 146).
pub fn status_text(status: u16) -> &'static str {
    match (status >> 2) & 0x7 {
        0 if status & 1 == 1 => "busy",
        0 if status & 2 == 2 => "redirect",
        1 => "bad version",
        2 => "method not supported",
        3 => "method/attribute not supported",
        7 => "invalid attribute or modifier value",
        _ => "class-specific error",
    }
}

/// The fields of a reply the caller needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub class: u8,
    pub method: u8,
    pub status: u16,
    pub tid: u64,
    pub attr_id: u16,
    pub attr_mod: u32,
    pub data: [u8; 192],
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Decodes a received MAD. For SMPs the status excludes the D bit of
/// directed-route MADs; data is the 64 (SMP) or 192 (GS) bytes at offset 64.
pub fn decode(mad: &[u8]) -> Result<Reply, MadError> {
    if mad.len() < DATA_OFFSET {
        return Err(MadError::Short(mad.len()));
    }
    let class = mad[1];
    let status = if class == CLASS_SMP_DR {
        be16(mad, 4) & 0x7fff
    } else {
        be16(mad, 4)
    };
    let mut data = [0u8; 192];
    let avail = &mad[DATA_OFFSET..mad.len().min(MAD_SIZE)];
    data[..avail.len()].copy_from_slice(avail);
    Ok(Reply {
        class,
        method: mad[3],
        status,
        tid: u64::from_be_bytes(mad[8..16].try_into().expect("8 bytes")),
        attr_id: be16(mad, 16),
        attr_mod: u32::from_be_bytes(mad[20..24].try_into().expect("4 bytes")),
        data,
    })
}

fn header(class: u8, tid: u64, attr_id: u16, attr_mod: u32) -> [u8; MAD_SIZE] {
    let mut m = [0u8; MAD_SIZE];
    m[0] = 1; // BaseVersion
    m[1] = class;
    m[2] = 1; // ClassVersion: SMP 1, PerfMgt 1
    m[3] = METHOD_GET;
    m[8..16].copy_from_slice(&tid.to_be_bytes());
    m[16..18].copy_from_slice(&attr_id.to_be_bytes());
    m[20..24].copy_from_slice(&attr_mod.to_be_bytes());
    m
}

/// A directed-route SMP Get along `path` (the out-port at each hop; empty =
/// the local node). DrSLID/DrDLID are the permissive LID: the route is the path.
pub fn smp_dr_get(
    tid: u64,
    attr_id: u16,
    attr_mod: u32,
    path: &[u8],
) -> Result<[u8; MAD_SIZE], MadError> {
    if path.len() > MAX_HOPS {
        return Err(MadError::PathTooLong(path.len()));
    }
    let mut m = header(CLASS_SMP_DR, tid, attr_id, attr_mod);
    m[6] = 0; // HopPointer
    m[7] = path.len() as u8; // HopCount
    m[32..34].copy_from_slice(&0xffffu16.to_be_bytes());
    m[34..36].copy_from_slice(&0xffffu16.to_be_bytes());
    m[DR_INITIAL_PATH + 1..DR_INITIAL_PATH + 1 + path.len()].copy_from_slice(path);
    Ok(m)
}

/// A LID-routed SMP Get (the destination LID goes in the umad header).
pub fn smp_lid_get(tid: u64, attr_id: u16, attr_mod: u32) -> [u8; MAD_SIZE] {
    header(CLASS_SMP_LID, tid, attr_id, attr_mod)
}

/// A PerfMgt Get; `data` is written at offset 64 (PortSelect and friends).
pub fn perf_get(tid: u64, attr_id: u16, data: &[u8]) -> [u8; MAD_SIZE] {
    let mut m = header(CLASS_PERF, tid, attr_id, 0);
    let n = data.len().min(MAD_SIZE - DATA_OFFSET);
    m[DATA_OFFSET..DATA_OFFSET + n].copy_from_slice(&data[..n]);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr_smp_layout() {
        let m = smp_dr_get(0x0102_0304_0506_0708, ATTR_NODE_INFO, 0, &[1, 7]).unwrap();
        assert_eq!(&m[..4], &[1, 0x81, 1, 1]);
        assert_eq!((m[6], m[7]), (0, 2), "hop pointer 0, hop count 2");
        assert_eq!(&m[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&m[16..18], &[0, 0x11]);
        assert_eq!(&m[32..36], &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&m[128..131], &[0, 1, 7], "initial path from entry 1");
        assert!(smp_dr_get(1, ATTR_NODE_INFO, 0, &[1; 64]).is_err());
    }

    #[test]
    fn decode_reply() {
        let mut m = perf_get(42, ATTR_PORT_COUNTERS, &[0, 3]);
        m[3] = METHOD_GET_RESP;
        m[4..6].copy_from_slice(&0x001cu16.to_be_bytes());
        let r = decode(&m).unwrap();
        assert_eq!(
            (r.class, r.method, r.status, r.tid, r.attr_id),
            (4, 0x81, 0x1c, 42, 0x12)
        );
        assert_eq!(r.data[1], 3);
        assert_eq!(status_text(0x1c), "invalid attribute or modifier value");
        // The D bit of a DR SMP reply is not status.
        let mut dr = smp_dr_get(1, ATTR_NODE_INFO, 0, &[]).unwrap();
        dr[4] = 0x80;
        assert_eq!(decode(&dr).unwrap().status, 0);
        assert_eq!(decode(&m[..20]), Err(MadError::Short(20)));
    }
}
