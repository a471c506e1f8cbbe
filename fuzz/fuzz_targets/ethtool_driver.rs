//! A driver whose statistic count changes before any call, under a kernel
//! with or without 7b07be1ff1cb ("ethtool: Avoid overflowing userspace
//! buffer on stats query"), answering the agent's names and stats reads.
//! Never a copy past the buffer the agent sized from a count it had just
//! asked; never a panic; every value exported goes under its own name.
//! Run from the `netdev_replies` target on the same bytes.

use std::io;
use std::mem::{offset_of, size_of};

use rdma_monitor::sources::ethtool::{Ethtool, EthtoolIo, Request};
use rdma_monitor::sys;

// asm-generic/errno-base.h and errno.h.
const EIO: i32 = 5;
const EFAULT: i32 = 14;
const EOPNOTSUPP: i32 = 95;

struct Driver<'a> {
    data: &'a [u8],
    count: usize,
    /// Old kernel: the driver's count is copied whatever the caller asked.
    old_kernel: bool,
    /// The count changed just before this call, after the agent's previous
    /// ioctl: a copy past the buffer is then the race the guard page is for
    /// (EFAULT). A count that changed before an earlier call is one the
    /// agent could have asked: sizing from anything older is a bug.
    changed_now: bool,
    gsset_info: bool,
}

impl Driver<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        b
    }

    fn copied(&self, asked: u32) -> u32 {
        if !self.old_kernel && asked != 0 && asked as usize != self.count {
            0
        } else {
            self.count as u32
        }
    }

    fn copy_out(&self, buf: &mut [u8], at: usize, data: &[u8]) -> io::Result<()> {
        if at + data.len() > buf.len() {
            assert!(
                self.changed_now,
                "buffer of {} bytes sized from a stale count: the kernel writes {}",
                buf.len(),
                at + data.len()
            );
            let fits = buf.len() - at;
            buf[at..].copy_from_slice(&data[..fits]);
            return Err(io::Error::from_raw_os_error(EFAULT));
        }
        buf[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Names and values carry the count they belong to: a value under a name of
/// another count, or of another index, is a mismatch.
fn name(count: usize, i: usize) -> String {
    format!("c{count}_s{i}")
}

fn value(count: usize, i: usize) -> u64 {
    (count as u64) << 32 | i as u64
}

impl EthtoolIo for Driver<'_> {
    fn ethtool(&mut self, _ifname: &str, req: &mut Request<'_>) -> io::Result<()> {
        let b = self.byte();
        self.changed_now = false;
        if b & 0x80 != 0 {
            let c = (usize::from(b & 0x7f) << 8 | usize::from(self.byte())) % 600;
            self.changed_now = c != self.count;
            self.count = c;
        }
        if b & 0x7f == 0x7f {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let buf = req.bytes_mut();
        let cmd = u32::from_ne_bytes(buf[..4].try_into().unwrap());
        match cmd {
            sys::ETHTOOL_GDRVINFO => {
                let at = offset_of!(sys::ethtool_drvinfo, n_stats);
                buf[at..at + 4].copy_from_slice(&(self.count as u32).to_ne_bytes());
            }
            sys::ETHTOOL_GSSET_INFO if self.gsset_info => {
                let head = size_of::<sys::ethtool_sset_info>();
                buf[head..head + 4].copy_from_slice(&(self.count as u32).to_ne_bytes());
            }
            sys::ETHTOOL_GSTRINGS => {
                let at = offset_of!(sys::ethtool_gstrings, len);
                let asked = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
                let n = self.copied(asked);
                buf[at..at + 4].copy_from_slice(&n.to_ne_bytes());
                let mut data = vec![0u8; n as usize * 32];
                for (i, c) in data.chunks_exact_mut(32).enumerate() {
                    let s = name(self.count, i);
                    c[..s.len()].copy_from_slice(s.as_bytes());
                }
                self.copy_out(buf, size_of::<sys::ethtool_gstrings>(), &data)?;
            }
            sys::ETHTOOL_GSTATS => {
                let at = offset_of!(sys::ethtool_stats, n_stats);
                let asked = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
                let n = self.copied(asked);
                buf[at..at + 4].copy_from_slice(&n.to_ne_bytes());
                let data: Vec<u8> = (0..n as usize)
                    .flat_map(|i| value(self.count, i).to_ne_bytes())
                    .collect();
                self.copy_out(buf, size_of::<sys::ethtool_stats>(), &data)?;
            }
            _ => return Err(io::Error::from_raw_os_error(EOPNOTSUPP)),
        }
        Ok(())
    }
}

/// The first three bytes: kernel and GSSET_INFO flags, the starting count;
/// the rest: one byte (and a second on a count change) per call.
pub fn run(data: &[u8]) {
    let [flags, c0, c1, rest @ ..] = data else {
        return;
    };
    let mut e = Ethtool::new(Driver {
        data: rest,
        count: (usize::from(*c0) << 8 | usize::from(*c1)) % 600,
        old_kernel: flags & 1 != 0,
        changed_now: false,
        gsset_info: flags & 2 != 0,
    });
    let Ok(mut names) = e.stat_names("eth0") else {
        return;
    };
    for _ in 0..8 {
        if let Ok(values) = e.stats("eth0", &mut names) {
            assert_eq!(values.len(), names.len());
            for (i, (n, v)) in names.names().iter().zip(&values).enumerate() {
                let count = (v >> 32) as usize;
                assert_eq!(**n, name(count, i), "value {v:#x} under {n}");
                assert_eq!(*v, value(count, i));
            }
        }
    }
}
