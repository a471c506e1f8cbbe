//! ethtool over `SIOCETHTOOL` ioctls: driver info, every NIC statistic by
//! name, features (offloads), pause settings, link settings, and the
//! transceiver EEPROM. Structs and command numbers are the kernel's
//! (linux/ethtool.h through bindgen); the ioctl sits behind a trait so the
//! decoding runs on recorded replies too.

pub mod module;

use std::io;
use std::mem::size_of;

use serde::Serialize;

use crate::sys;

/// One ioctl: the buffer goes to the kernel as `ifr_data` and comes back filled.
pub trait EthtoolIo: Send {
    fn ethtool(&mut self, ifname: &str, buf: &mut [u8]) -> io::Result<()>;
}

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
    fd: std::os::fd::OwnedFd,
    pub ioctls: u64,
}

impl Socket {
    pub fn open() -> io::Result<Socket> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2); checked below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        Ok(Socket {
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
            ioctls: 0,
        })
    }
}

impl EthtoolIo for Socket {
    fn ethtool(&mut self, ifname: &str, buf: &mut [u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: ifreq is plain data; zero is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = ifname.as_bytes();
        if name.len() >= ifr.ifr_name.len() {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
        self.ioctls += 1;
        // SAFETY: `ifr` names the interface and points at `buf`, which is as
        // large as the command in its first word needs (the callers size it
        // from the kernel's own answers).
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), sys::SIOCETHTOOL as _, &mut ifr) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrvInfo {
    pub driver: String,
    pub version: String,
    pub fw_version: String,
    pub bus_info: String,
    pub erom_version: String,
    pub n_stats: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    pub name: String,
    pub available: bool,
    pub requested: bool,
    pub active: bool,
    /// It cannot be changed ("[fixed]" in `ethtool -k`): not available, or never to change.
    pub fixed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pause {
    pub autoneg: bool,
    pub rx: bool,
    pub tx: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkSettings {
    /// Mb/s; None when unknown (SPEED_UNKNOWN).
    pub speed_mbps: Option<u32>,
    /// 0 half, 1 full; None when unknown.
    pub duplex: Option<u8>,
    pub autoneg: bool,
    pub port: u8,
}

fn cstr(bytes: &[libc::c_char]) -> String {
    // SAFETY: reinterpreting c_char as u8 of the same length.
    let b: &[u8] = unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), bytes.len()) };
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Reads a struct from the start of a byte buffer.
fn read<T: Copy>(buf: &[u8]) -> T {
    assert!(
        buf.len() >= size_of::<T>(),
        "buffer sized for the struct by the caller"
    );
    // SAFETY: the buffer holds at least size_of::<T>() bytes and T is plain old data.
    unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) }
}

fn write<T: Copy>(buf: &mut [u8], v: &T) {
    assert!(
        buf.len() >= size_of::<T>(),
        "buffer sized for the struct by the caller"
    );
    // SAFETY: as above, for writing.
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

pub struct Ethtool<T: EthtoolIo> {
    io: T,
}

impl<T: EthtoolIo> Ethtool<T> {
    pub fn new(io: T) -> Self {
        Ethtool { io }
    }

    pub fn io(&self) -> &T {
        &self.io
    }

    fn call(
        &mut self,
        cmd: &'static str,
        ifname: &str,
        buf: &mut [u8],
    ) -> Result<(), EthtoolError> {
        self.io.ethtool(ifname, buf).map_err(|source| EthtoolError {
            cmd,
            ifname: ifname.to_string(),
            source,
        })
    }

    pub fn drvinfo(&mut self, ifname: &str) -> Result<DrvInfo, EthtoolError> {
        let mut buf = vec![0u8; size_of::<sys::ethtool_drvinfo>()];
        write(
            &mut buf,
            &sys::ethtool_drvinfo {
                cmd: sys::ETHTOOL_GDRVINFO,
                ..Default::default()
            },
        );
        self.call("ETHTOOL_GDRVINFO", ifname, &mut buf)?;
        let d: sys::ethtool_drvinfo = read(&buf);
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
        let mut buf = vec![0u8; head + 4];
        put_u32(
            &mut buf,
            offset_of!(sys::ethtool_sset_info, cmd),
            sys::ETHTOOL_GSSET_INFO,
        );
        let mask_at = offset_of!(sys::ethtool_sset_info, sset_mask);
        buf[mask_at..mask_at + 8].copy_from_slice(&(1u64 << set).to_ne_bytes());
        self.call("ETHTOOL_GSSET_INFO", ifname, &mut buf)?;
        let mask = u64::from_ne_bytes(buf[mask_at..mask_at + 8].try_into().expect("8 bytes"));
        Ok((mask & (1u64 << set) != 0).then(|| u32_at(&buf, head)))
    }

    /// The names of a string set (GSTRINGS): ETH_SS_STATS, ETH_SS_FEATURES.
    pub fn strings(&mut self, ifname: &str, set: u32) -> Result<Vec<String>, EthtoolError> {
        let Some(n) = self.set_len(ifname, set)? else {
            return Ok(Vec::new());
        };
        let n = n.min(MAX_STRINGS);
        let head = size_of::<sys::ethtool_gstrings>();
        let len = sys::ETH_GSTRING_LEN as usize;
        let mut buf = vec![0u8; head + n as usize * len];
        put_u32(
            &mut buf,
            offset_of!(sys::ethtool_gstrings, cmd),
            sys::ETHTOOL_GSTRINGS,
        );
        put_u32(&mut buf, offset_of!(sys::ethtool_gstrings, string_set), set);
        put_u32(&mut buf, offset_of!(sys::ethtool_gstrings, len), n);
        self.call("ETHTOOL_GSTRINGS", ifname, &mut buf)?;
        let got = u32_at(&buf, offset_of!(sys::ethtool_gstrings, len));
        Ok(buf[head..]
            .chunks_exact(len)
            .take(got.min(n) as usize)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(&c[..end]).into_owned()
            })
            .collect())
    }

    /// The statistic values (GSTATS), in the order of the ETH_SS_STATS names.
    pub fn stats(&mut self, ifname: &str, n: usize) -> Result<Vec<u64>, EthtoolError> {
        let head = size_of::<sys::ethtool_stats>();
        let mut buf = vec![0u8; head + n * 8];
        put_u32(
            &mut buf,
            offset_of!(sys::ethtool_stats, cmd),
            sys::ETHTOOL_GSTATS,
        );
        put_u32(&mut buf, offset_of!(sys::ethtool_stats, n_stats), n as u32);
        self.call("ETHTOOL_GSTATS", ifname, &mut buf)?;
        let got = u32_at(&buf, offset_of!(sys::ethtool_stats, n_stats));
        Ok(buf[head..]
            .chunks_exact(8)
            .take((got as usize).min(n))
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect())
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
        let mut buf = vec![0u8; head + blocks * block];
        put_u32(
            &mut buf,
            offset_of!(sys::ethtool_gfeatures, cmd),
            sys::ETHTOOL_GFEATURES,
        );
        put_u32(
            &mut buf,
            offset_of!(sys::ethtool_gfeatures, size),
            blocks as u32,
        );
        self.call("ETHTOOL_GFEATURES", ifname, &mut buf)?;
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
        let mut buf = vec![0u8; size_of::<sys::ethtool_pauseparam>()];
        write(
            &mut buf,
            &sys::ethtool_pauseparam {
                cmd: sys::ETHTOOL_GPAUSEPARAM,
                ..Default::default()
            },
        );
        self.call("ETHTOOL_GPAUSEPARAM", ifname, &mut buf)?;
        let p: sys::ethtool_pauseparam = read(&buf);
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
        let mut buf = vec![0u8; head];
        put_u32(&mut buf, offset_of!(L, cmd), sys::ETHTOOL_GLINKSETTINGS);
        self.call("ETHTOOL_GLINKSETTINGS", ifname, &mut buf)?;
        // The kernel answers the handshake with -nwords.
        let nwords = (-i16::from(buf[nwords_at] as i8)).clamp(0, 127) as usize;
        let mut buf = vec![0u8; head + 3 * 4 * nwords];
        put_u32(&mut buf, offset_of!(L, cmd), sys::ETHTOOL_GLINKSETTINGS);
        buf[nwords_at] = nwords as u8;
        self.call("ETHTOOL_GLINKSETTINGS", ifname, &mut buf)?;
        let speed = u32_at(&buf, offset_of!(L, speed));
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
        let mut buf = vec![0u8; size_of::<sys::ethtool_modinfo>()];
        write(
            &mut buf,
            &sys::ethtool_modinfo {
                cmd: sys::ETHTOOL_GMODULEINFO,
                ..Default::default()
            },
        );
        self.call("ETHTOOL_GMODULEINFO", ifname, &mut buf)?;
        let info: sys::ethtool_modinfo = read(&buf);
        let len = info.eeprom_len.min(MAX_EEPROM);
        let head = size_of::<sys::ethtool_eeprom>();
        let mut buf = vec![0u8; head + len as usize];
        put_u32(
            &mut buf,
            offset_of!(sys::ethtool_eeprom, cmd),
            sys::ETHTOOL_GMODULEEEPROM,
        );
        put_u32(&mut buf, offset_of!(sys::ethtool_eeprom, offset), 0);
        put_u32(&mut buf, offset_of!(sys::ethtool_eeprom, len), len);
        self.call("ETHTOOL_GMODULEEEPROM", ifname, &mut buf)?;
        Ok((info.type_, buf[head..].to_vec()))
    }
}

#[cfg(test)]
mod tests;
