//! ethtool over `SIOCETHTOOL` ioctls: driver info, every NIC statistic by
//! name, features (offloads), pause settings, link settings, and the
//! transceiver EEPROM. Structs and command numbers are the kernel's
//! (linux/ethtool.h through bindgen); the ioctl sits behind a trait so the
//! decoding runs on recorded replies too.

pub mod module;

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use crate::model::netdev::{DrvInfo, Feature, LinkSettings, Pause};
use crate::sys;

/// One SIOCETHTOOL request as it goes to the kernel: a read command and a
/// buffer sized for it, whose end is followed by an inaccessible page.
/// Only this module builds requests (the fields are private), so no safe
/// caller can hand the kernel a buffer too small for what it asked.
pub struct Request<'a> {
    cmd: u32,
    buf: &'a mut [u8],
}

impl Request<'_> {
    /// The ethtool command (`ETHTOOL_G*`) the request was built for.
    pub fn cmd(&self) -> u32 {
        self.cmd
    }

    /// The request header, then room for the reply.
    pub fn bytes(&self) -> &[u8] {
        self.buf
    }

    /// Where a replay or a fake driver writes its reply.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf
    }
}

/// Carries one request to the driver and back: the real socket, or a replay.
pub trait EthtoolIo: Send {
    fn ethtool(&mut self, ifname: &str, req: &mut Request<'_>) -> io::Result<()>;
}

/// The read commands requests are built for: nothing else reaches the
/// kernel, whatever a caller writes into a request's header.
const READ_COMMANDS: [u32; 9] = [
    sys::ETHTOOL_GDRVINFO,
    sys::ETHTOOL_GSSET_INFO,
    sys::ETHTOOL_GSTRINGS,
    sys::ETHTOOL_GSTATS,
    sys::ETHTOOL_GFEATURES,
    sys::ETHTOOL_GPAUSEPARAM,
    sys::ETHTOOL_GLINKSETTINGS,
    sys::ETHTOOL_GMODULEINFO,
    sys::ETHTOOL_GMODULEEEPROM,
];

#[derive(Debug, thiserror::Error)]
#[error("{cmd} on {ifname}: {source}")]
pub struct EthtoolError {
    pub cmd: &'static str,
    pub ifname: String,
    #[source]
    pub source: io::Error,
}

impl EthtoolError {
    /// The driver doesn't implement it: not an error, just absent.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENODEV)
        )
    }
}

/// The real thing: an AF_INET datagram socket to carry the ioctls.
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    pub fn open() -> io::Result<Socket> {
        use std::os::fd::FromRawFd;
        // SAFETY: socket(2) takes no pointers; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd })
    }
}

impl EthtoolIo for Socket {
    fn ethtool(&mut self, ifname: &str, req: &mut Request<'_>) -> io::Result<()> {
        siocethtool(&self.fd, ifname, req)
    }
}

/// The one ioctl. The request's buffer ends at a guard page (`GuardedBuf`),
/// so a kernel that writes more than was asked faults (EFAULT) instead of
/// writing into our heap, and the command is checked to be a read.
fn siocethtool(fd: &OwnedFd, ifname: &str, req: &mut Request<'_>) -> io::Result<()> {
    if req.buf.len() < 4 || u32_at(req.buf, 0) != req.cmd || !READ_COMMANDS.contains(&req.cmd) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: ifreq is integers, arrays and a union of integers and pointers: all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = req.buf.as_mut_ptr().cast();
    // A driver whose count grew since we sized the buffer, on a kernel without
    // 7b07be1ff1cb, can write past it: there the guard page stops it and the call fails.
    // SAFETY: `ifr` holds a NUL-terminated name and points at `req.buf`, borrowed
    // mutably for the call, whose first word is a read command (checked above).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), sys::SIOCETHTOOL as _, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Memory for the ioctls, reused from call to call: each request gets a
/// zeroed region that ends where a `PROT_NONE` page begins. Grows (a new
/// mapping) only when a request needs more than the last one had.
struct GuardedBuf {
    /// Start of the read-write part; null before the first request.
    base: *mut u8,
    /// Bytes of the read-write part; the guard page follows.
    usable: usize,
}

// SAFETY: the mapping belongs to this value alone (no copy of `base` leaves
// it except in borrows of `&mut self`), so moving it to another thread is sound.
unsafe impl Send for GuardedBuf {}

fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers and has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

impl GuardedBuf {
    fn new() -> GuardedBuf {
        GuardedBuf {
            base: std::ptr::null_mut(),
            usable: 0,
        }
    }

    /// A zeroed region of exactly `len` bytes, right before the guard page.
    fn region(&mut self, len: usize) -> io::Result<&mut [u8]> {
        if self.base.is_null() || len > self.usable {
            let page = page_size();
            let usable = len.max(1).div_ceil(page) * page;
            let base = map_guarded(usable, page)?;
            self.unmap();
            self.base = base;
            self.usable = usable;
        }
        let start = self.base.wrapping_add(self.usable - len);
        // SAFETY: `start..start + len` is in our mapping's read-write part (len <= usable),
        // referenced by nothing else while the slice borrows `self` mutably.
        let region = unsafe { std::slice::from_raw_parts_mut(start, len) };
        region.fill(0);
        Ok(region)
    }

    fn unmap(&mut self) {
        if !self.base.is_null() {
            unmap_guarded(self.base, self.usable);
            self.base = std::ptr::null_mut();
        }
    }
}

impl Drop for GuardedBuf {
    fn drop(&mut self) {
        self.unmap();
    }
}

/// `usable` read-write bytes (a multiple of `page`), then one page nobody may touch.
fn map_guarded(usable: usize, page: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh anonymous private mapping wherever the kernel puts it:
    // no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            usable + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = p.cast::<u8>();
    // SAFETY: the last page of the mapping just made (page aligned, as `usable` is a multiple of the page size).
    if unsafe { libc::mprotect(base.wrapping_add(usable).cast(), page, libc::PROT_NONE) } != 0 {
        let e = io::Error::last_os_error();
        unmap_guarded(base, usable);
        return Err(e);
    }
    Ok(base)
}

fn unmap_guarded(base: *mut u8, usable: usize) {
    // SAFETY: `base` and the length are those of a mapping made by
    // `map_guarded` that no slice borrows any more (callers hold `&mut GuardedBuf`).
    unsafe { libc::munmap(base.cast(), usable + page_size()) };
}

fn cstr(bytes: &[libc::c_char]) -> String {
    let b: Vec<u8> = bytes
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// The linux/ethtool.h structs read and written whole: integers and arrays
/// of integers only, so every bit pattern is a valid value.
trait Plain: Copy {}
impl Plain for sys::ethtool_drvinfo {}
impl Plain for sys::ethtool_pauseparam {}
impl Plain for sys::ethtool_modinfo {}
impl Plain for sys::ethtool_get_features_block {}

/// Reads a struct from the start of a byte buffer.
fn read<T: Plain>(buf: &[u8]) -> T {
    assert!(
        buf.len() >= size_of::<T>(),
        "buffer sized for the struct by the caller"
    );
    // SAFETY: the buffer holds at least size_of::<T>() bytes (asserted) and
    // any bytes are a valid T (`Plain`); read_unaligned needs no alignment.
    unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) }
}

fn write<T: Plain>(buf: &mut [u8], v: &T) {
    assert!(
        buf.len() >= size_of::<T>(),
        "buffer sized for the struct by the caller"
    );
    // SAFETY: the buffer has room for size_of::<T>() bytes (asserted) and is
    // borrowed mutably; write_unaligned needs no alignment.
    unsafe { std::ptr::write_unaligned(buf.as_mut_ptr().cast(), *v) }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Field offsets of the headers that end in a flexible array (not `Copy`
/// in Rust), taken from the bindgen structs so they follow the kernel's layout.
use std::mem::offset_of;

/// Upper bounds against a driver that reports absurd sizes.
const MAX_STRINGS: u32 = 1 << 16;
const MAX_EEPROM: u32 = 1 << 16;

/// Room past the count we ask for in GSTRINGS and GSTATS: a kernel without
/// 7b07be1ff1cb copies the driver's count at that moment, and a count that
/// grew by this much still lands in our buffer (and is noticed) rather than
/// at the guard page (EFAULT).
fn headroom(n: u32) -> usize {
    n as usize / 4 + 64
}

/// The ETH_SS_STATS names of one netdev, in the driver's order (the order
/// of the values), with their order by name worked out once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatNames {
    names: Vec<Arc<str>>,
    by_name: Vec<usize>,
    /// GSSET_INFO failed on this netdev: the count comes from GDRVINFO's n_stats.
    count_from_drvinfo: bool,
}

impl StatNames {
    fn new(names: Vec<String>, count_from_drvinfo: bool) -> StatNames {
        let names: Vec<Arc<str>> = names.into_iter().map(Arc::from).collect();
        let mut by_name: Vec<usize> = (0..names.len()).collect();
        by_name.sort_by(|&a, &b| names[a].cmp(&names[b]));
        StatNames {
            names,
            by_name,
            count_from_drvinfo,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// In the driver's order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// (name, value) in name order, for values read against these names.
    pub fn by_name<'a>(&'a self, values: &'a [u64]) -> impl Iterator<Item = (&'a Arc<str>, u64)> {
        self.by_name
            .iter()
            .filter_map(move |&i| Some((&self.names[i], *values.get(i)?)))
    }
}

pub struct Ethtool<T: EthtoolIo> {
    io: T,
    buf: GuardedBuf,
    calls: u64,
    stat_name_rereads: u64,
}

/// The driver's count moved while we read (between two ioctls): nothing of
/// that read is used.
fn count_changed(detail: String) -> io::Error {
    io::Error::other(format!(
        "the driver's statistic count changed during the read ({detail})"
    ))
}

impl<T: EthtoolIo> Ethtool<T> {
    pub fn new(io: T) -> Self {
        Ethtool {
            io,
            buf: GuardedBuf::new(),
            calls: 0,
            stat_name_rereads: 0,
        }
    }

    pub fn io(&self) -> &T {
        &self.io
    }

    /// SIOCETHTOOL ioctls made (requests handed to the `EthtoolIo`).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Times the statistic names were read again because the driver's count
    /// no longer matched them (mlx5 changes it with channels, PTP, XDP).
    pub fn stat_name_rereads(&self) -> u64 {
        self.stat_name_rereads
    }

    /// One request of `len` bytes whose header `head` writes; the reply.
    fn call(
        &mut self,
        cmd: &'static str,
        ifname: &str,
        len: usize,
        head: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8], EthtoolError> {
        let err = |source| EthtoolError {
            cmd,
            ifname: ifname.to_string(),
            source,
        };
        let buf = self.buf.region(len).map_err(err)?;
        head(buf);
        let mut req = Request {
            cmd: u32_at(buf, 0),
            buf,
        };
        self.calls += 1;
        self.io.ethtool(ifname, &mut req).map_err(err)?;
        Ok(req.buf)
    }

    /// A command whose request and reply are one struct.
    fn get_struct<S: Plain>(
        &mut self,
        cmd: &'static str,
        ifname: &str,
        request: S,
    ) -> Result<S, EthtoolError> {
        let buf = self.call(cmd, ifname, size_of::<S>(), |b| write(b, &request))?;
        Ok(read(buf))
    }

    pub fn drvinfo(&mut self, ifname: &str) -> Result<DrvInfo, EthtoolError> {
        let d = self.get_struct(
            "ETHTOOL_GDRVINFO",
            ifname,
            sys::ethtool_drvinfo {
                cmd: sys::ETHTOOL_GDRVINFO,
                ..Default::default()
            },
        )?;
        Ok(DrvInfo {
            driver: cstr(&d.driver),
            version: cstr(&d.version),
            fw_version: cstr(&d.fw_version),
            bus_info: cstr(&d.bus_info),
            erom_version: cstr(&d.erom_version),
            n_stats: d.n_stats,
        })
    }

    /// Number of strings in a string set (GSSET_INFO); None when the set is not there.
    pub fn set_len(&mut self, ifname: &str, set: u32) -> Result<Option<u32>, EthtoolError> {
        let head = size_of::<sys::ethtool_sset_info>();
        let mask_at = offset_of!(sys::ethtool_sset_info, sset_mask);
        let buf = self.call("ETHTOOL_GSSET_INFO", ifname, head + 4, |b| {
            put_u32(
                b,
                offset_of!(sys::ethtool_sset_info, cmd),
                sys::ETHTOOL_GSSET_INFO,
            );
            b[mask_at..mask_at + 8].copy_from_slice(&(1u64 << set).to_ne_bytes());
        })?;
        let mask = u64::from_ne_bytes(buf[mask_at..mask_at + 8].try_into().expect("8 bytes"));
        Ok((mask & (1u64 << set) != 0).then(|| u32_at(buf, head)))
    }

    /// GSTRINGS for a set the driver says has `n` names; None when it has
    /// another count by now (a fixed kernel answers 0, an older one its count).
    fn gstrings(
        &mut self,
        ifname: &str,
        set: u32,
        n: u32,
    ) -> Result<Option<Vec<String>>, EthtoolError> {
        let len = sys::ETH_GSTRING_LEN as usize;
        let data = self.counted::<sys::ethtool_gstrings>(
            "ETHTOOL_GSTRINGS",
            ifname,
            n,
            len,
            offset_of!(sys::ethtool_gstrings, len),
            |b| {
                put_u32(
                    b,
                    offset_of!(sys::ethtool_gstrings, cmd),
                    sys::ETHTOOL_GSTRINGS,
                );
                put_u32(b, offset_of!(sys::ethtool_gstrings, string_set), set);
            },
        )?;
        Ok(data.map(|d| {
            d.chunks_exact(len)
                .map(|c| {
                    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                    String::from_utf8_lossy(&c[..end]).into_owned()
                })
                .collect()
        }))
    }

    /// A GSTRINGS or GSTATS request (header `H`, then elements of `elem`
    /// bytes) for `n` elements, with headroom; the `n` elements of the reply,
    /// or None when the driver has another count by now. The count in the
    /// reply is compared, never used to index: 0 from a fixed kernel, the
    /// driver's own from an older one.
    fn counted<H>(
        &mut self,
        cmd: &'static str,
        ifname: &str,
        n: u32,
        elem: usize,
        count_at: usize,
        head: impl FnOnce(&mut [u8]),
    ) -> Result<Option<&[u8]>, EthtoolError> {
        // n = 0 would tell every kernel to copy all the driver has: nothing to ask.
        if n == 0 {
            return Ok(Some(&[]));
        }
        if n > MAX_STRINGS {
            return Err(EthtoolError {
                cmd,
                ifname: ifname.to_string(),
                source: io::Error::other(format!("{n} entries, more than {MAX_STRINGS}")),
            });
        }
        let start = size_of::<H>();
        let room = n as usize + headroom(n);
        let reply = self.call(cmd, ifname, start + room * elem, |b| {
            head(b);
            put_u32(b, count_at, n);
        });
        let buf = match reply {
            Ok(buf) => buf,
            // The count outgrew even the headroom: the guard page stopped the copy.
            Err(e) if e.source.raw_os_error() == Some(libc::EFAULT) => return Ok(None),
            Err(e) => return Err(e),
        };
        if u32_at(buf, count_at) != n {
            return Ok(None);
        }
        Ok(Some(&buf[start..start + n as usize * elem]))
    }

    /// The names of a string set (GSTRINGS): ETH_SS_STATS, ETH_SS_FEATURES.
    pub fn strings(&mut self, ifname: &str, set: u32) -> Result<Vec<String>, EthtoolError> {
        let mut last = 0;
        for _ in 0..2 {
            let Some(n) = self.set_len(ifname, set)? else {
                return Ok(Vec::new());
            };
            if let Some(names) = self.gstrings(ifname, set, n)? {
                return Ok(names);
            }
            last = n;
        }
        Err(EthtoolError {
            cmd: "ETHTOOL_GSTRINGS",
            ifname: ifname.to_string(),
            source: count_changed(format!("GSSET_INFO said {last}")),
        })
    }

    /// The driver's statistic count now: GSSET_INFO, or GDRVINFO's n_stats
    /// where GSSET_INFO fails (an old driver), remembered in `names`.
    fn stat_count(&mut self, ifname: &str, names: &mut StatNames) -> Result<u32, EthtoolError> {
        if !names.count_from_drvinfo {
            match self.set_len(ifname, sys::ETH_SS_STATS) {
                Ok(n) => return Ok(n.unwrap_or(0)),
                Err(e) if e.is_unsupported() => names.count_from_drvinfo = true,
                Err(e) => return Err(e),
            }
        }
        Ok(self.drvinfo(ifname)?.n_stats)
    }

    /// The ETH_SS_STATS names, read against the count just asked.
    pub fn stat_names(&mut self, ifname: &str) -> Result<StatNames, EthtoolError> {
        let mut names = StatNames::default();
        let mut last = 0;
        for _ in 0..2 {
            let n = self.stat_count(ifname, &mut names)?;
            if let Some(list) = self.gstrings(ifname, sys::ETH_SS_STATS, n)? {
                return Ok(StatNames::new(list, names.count_from_drvinfo));
            }
            last = n;
        }
        Err(EthtoolError {
            cmd: "ETHTOOL_GSTRINGS",
            ifname: ifname.to_string(),
            source: count_changed(format!("the driver said {last}")),
        })
    }

    /// GSTATS for `n` values; None when the driver has another count by now.
    fn gstats(&mut self, ifname: &str, n: u32) -> Result<Option<Vec<u64>>, EthtoolError> {
        let data = self.counted::<sys::ethtool_stats>(
            "ETHTOOL_GSTATS",
            ifname,
            n,
            8,
            offset_of!(sys::ethtool_stats, n_stats),
            |b| put_u32(b, offset_of!(sys::ethtool_stats, cmd), sys::ETHTOOL_GSTATS),
        )?;
        Ok(data.map(|d| {
            d.chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
                .collect()
        }))
    }

    /// The statistic values (GSTATS), in the order of `names`. The count is
    /// asked first; when it no longer matches `names`, the names are read
    /// again (and counted) before the values, so values never go out under
    /// another statistic's name and the kernel is never asked for more than
    /// the buffer holds.
    pub fn stats(&mut self, ifname: &str, names: &mut StatNames) -> Result<Vec<u64>, EthtoolError> {
        let mut detail = String::new();
        for _ in 0..2 {
            let n = self.stat_count(ifname, names)?;
            if n as usize != names.len() {
                self.stat_name_rereads += 1;
                match self.gstrings(ifname, sys::ETH_SS_STATS, n)? {
                    Some(list) => *names = StatNames::new(list, names.count_from_drvinfo),
                    None => {
                        detail = format!("{n} names asked");
                        continue;
                    }
                }
            }
            match self.gstats(ifname, n)? {
                Some(values) => return Ok(values),
                None => detail = format!("{n} values asked"),
            }
        }
        Err(EthtoolError {
            cmd: "ETHTOOL_GSTATS",
            ifname: ifname.to_string(),
            source: count_changed(detail),
        })
    }

    /// [`Ethtool::stats`] when the driver's count was asked this cycle by
    /// another way (ethtool netlink's STRSET_GET, counts only, calls the
    /// same `get_sset_count` as GSSET_INFO): when `count` matches `names`,
    /// GSTATS sized by it is the only ioctl. Otherwise, or when the count
    /// moved again before GSTATS (the reply's count differs, or the guard
    /// page stopped the copy), the whole ioctl path of `stats`.
    pub fn stats_with_count(
        &mut self,
        ifname: &str,
        names: &mut StatNames,
        count: u32,
    ) -> Result<Vec<u64>, EthtoolError> {
        if !names.count_from_drvinfo
            && count > 0
            && count as usize == names.len()
            && let Some(values) = self.gstats(ifname, count)?
        {
            return Ok(values);
        }
        self.stats(ifname, names)
    }

    /// Features (GFEATURES), named by the ETH_SS_FEATURES strings.
    pub fn features(
        &mut self,
        ifname: &str,
        names: &[String],
    ) -> Result<Vec<Feature>, EthtoolError> {
        let blocks = names.len().div_ceil(32);
        let head = size_of::<sys::ethtool_gfeatures>();
        let block = size_of::<sys::ethtool_get_features_block>();
        let buf = self.call("ETHTOOL_GFEATURES", ifname, head + blocks * block, |b| {
            put_u32(
                b,
                offset_of!(sys::ethtool_gfeatures, cmd),
                sys::ETHTOOL_GFEATURES,
            );
            put_u32(b, offset_of!(sys::ethtool_gfeatures, size), blocks as u32);
        })?;
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let b: sys::ethtool_get_features_block = read(&buf[head + (i / 32) * block..]);
            let bit = 1u32 << (i % 32);
            out.push(Feature {
                name: name.clone(),
                available: b.available & bit != 0,
                requested: b.requested & bit != 0,
                active: b.active & bit != 0,
                // As ethtool prints "[fixed]": not changeable, or never to change.
                fixed: b.available & bit == 0 || b.never_changed & bit != 0,
            });
        }
        Ok(out)
    }

    pub fn pause(&mut self, ifname: &str) -> Result<Pause, EthtoolError> {
        let p = self.get_struct(
            "ETHTOOL_GPAUSEPARAM",
            ifname,
            sys::ethtool_pauseparam {
                cmd: sys::ETHTOOL_GPAUSEPARAM,
                ..Default::default()
            },
        )?;
        Ok(Pause {
            autoneg: p.autoneg != 0,
            rx: p.rx_pause != 0,
            tx: p.tx_pause != 0,
        })
    }

    /// GLINKSETTINGS, with the kernel's two-step handshake on the mask size.
    pub fn link_settings(&mut self, ifname: &str) -> Result<LinkSettings, EthtoolError> {
        type L = sys::ethtool_link_settings;
        let head = size_of::<L>();
        let nwords_at = offset_of!(L, link_mode_masks_nwords);
        let buf = self.call("ETHTOOL_GLINKSETTINGS", ifname, head, |b| {
            put_u32(b, offset_of!(L, cmd), sys::ETHTOOL_GLINKSETTINGS)
        })?;
        // The kernel answers the handshake with -nwords.
        let nwords = (-i16::from(buf[nwords_at] as i8)).clamp(0, 127) as usize;
        let buf = self.call(
            "ETHTOOL_GLINKSETTINGS",
            ifname,
            head + 3 * 4 * nwords,
            |b| {
                put_u32(b, offset_of!(L, cmd), sys::ETHTOOL_GLINKSETTINGS);
                b[nwords_at] = nwords as u8;
            },
        )?;
        let speed = u32_at(buf, offset_of!(L, speed));
        let duplex = buf[offset_of!(L, duplex)];
        Ok(LinkSettings {
            speed_mbps: (speed != 0 && speed != u32::MAX).then_some(speed),
            duplex: (duplex != 0xff).then_some(duplex),
            autoneg: buf[offset_of!(L, autoneg)] != 0,
            port: buf[offset_of!(L, port)],
        })
    }

    /// The module EEPROM (GMODULEINFO, then GMODULEEEPROM of its length).
    pub fn module_eeprom(&mut self, ifname: &str) -> Result<(u32, Vec<u8>), EthtoolError> {
        let info = self.get_struct(
            "ETHTOOL_GMODULEINFO",
            ifname,
            sys::ethtool_modinfo {
                cmd: sys::ETHTOOL_GMODULEINFO,
                ..Default::default()
            },
        )?;
        let len = info.eeprom_len.min(MAX_EEPROM);
        let head = size_of::<sys::ethtool_eeprom>();
        let buf = self.call("ETHTOOL_GMODULEEEPROM", ifname, head + len as usize, |b| {
            put_u32(
                b,
                offset_of!(sys::ethtool_eeprom, cmd),
                sys::ETHTOOL_GMODULEEEPROM,
            );
            put_u32(b, offset_of!(sys::ethtool_eeprom, offset), 0);
            put_u32(b, offset_of!(sys::ethtool_eeprom, len), len);
        })?;
        Ok((info.type_, buf[head..].to_vec()))
    }
}

#[cfg(test)]
mod tests;
