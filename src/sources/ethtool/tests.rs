//! The ioctl decoding against a fake driver that fills the buffers the way
//! the kernel does (net/ethtool/ioctl.c): headers from linux/ethtool.h,
//! strings of ETH_GSTRING_LEN, u64 statistics, feature blocks.

use super::*;

/// A driver with three statistics and 40 features, no pause support.
struct FakeNic {
    calls: Vec<u32>,
}

const STATS: [(&str, u64); 3] = [
    ("rx_prio3_pause", 17),
    ("tx_prio3_pause", 4),
    ("rx_discards_phy", 99),
];

impl EthtoolIo for FakeNic {
    fn ethtool(&mut self, ifname: &str, req: &mut Request<'_>) -> io::Result<()> {
        if ifname != "eth2" {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        let cmd = req.cmd();
        assert_eq!(
            cmd,
            u32_at(req.bytes(), 0),
            "the header carries the command"
        );
        let buf = req.bytes_mut();
        self.calls.push(cmd);
        match cmd {
            sys::ETHTOOL_GDRVINFO => {
                let mut d: sys::ethtool_drvinfo = read(buf);
                for (dst, src) in [
                    (&mut d.driver[..], "mlx5_core"),
                    (&mut d.fw_version[..], "22.36.1010 (MT_0000000359)"),
                    (&mut d.bus_info[..], "0000:5e:00.0"),
                ] {
                    for (x, y) in dst.iter_mut().zip(src.bytes()) {
                        *x = y as libc::c_char;
                    }
                }
                d.n_stats = STATS.len() as u32;
                write(buf, &d);
            }
            sys::ETHTOOL_GSSET_INFO => {
                let at = offset_of!(sys::ethtool_sset_info, sset_mask);
                let mask = u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap());
                let n = if mask == 1 << sys::ETH_SS_STATS {
                    STATS.len() as u32
                } else {
                    40
                };
                let head = size_of::<sys::ethtool_sset_info>();
                buf[head..head + 4].copy_from_slice(&n.to_ne_bytes());
            }
            sys::ETHTOOL_GSTRINGS => {
                let len = u32_at(buf, offset_of!(sys::ethtool_gstrings, len));
                let set = u32_at(buf, offset_of!(sys::ethtool_gstrings, string_set));
                let head = size_of::<sys::ethtool_gstrings>();
                for i in 0..len as usize {
                    let name = if set == sys::ETH_SS_STATS {
                        STATS[i].0.to_string()
                    } else {
                        format!("feature-{i}")
                    };
                    buf[head + i * 32..head + i * 32 + name.len()].copy_from_slice(name.as_bytes());
                }
            }
            sys::ETHTOOL_GSTATS => {
                let head = size_of::<sys::ethtool_stats>();
                put_u32(
                    buf,
                    offset_of!(sys::ethtool_stats, n_stats),
                    STATS.len() as u32,
                );
                for (i, (_, v)) in STATS.iter().enumerate() {
                    buf[head + 8 * i..head + 8 * i + 8].copy_from_slice(&v.to_ne_bytes());
                }
            }
            sys::ETHTOOL_GFEATURES => {
                let head = size_of::<sys::ethtool_gfeatures>();
                // Feature 1 on and fixed; feature 33 (second block) available and on.
                let b0 = sys::ethtool_get_features_block {
                    available: 0b11,
                    requested: 0b10,
                    active: 0b10,
                    never_changed: 0b10,
                };
                let b1 = sys::ethtool_get_features_block {
                    available: 0b10,
                    requested: 0b10,
                    active: 0b10,
                    never_changed: 0,
                };
                write(&mut buf[head..], &b0);
                write(&mut buf[head + 16..], &b1);
            }
            sys::ETHTOOL_GLINKSETTINGS => {
                type L = sys::ethtool_link_settings;
                let at = offset_of!(L, link_mode_masks_nwords);
                if buf[at] == 0 {
                    buf[at] = (-3i8) as u8;
                } else {
                    assert_eq!(buf.len(), size_of::<L>() + 36, "3 masks of 3 words");
                    buf[offset_of!(L, speed)..offset_of!(L, speed) + 4]
                        .copy_from_slice(&100_000u32.to_ne_bytes());
                    buf[offset_of!(L, duplex)] = 1;
                    buf[offset_of!(L, autoneg)] = 1;
                }
            }
            _ => return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
        Ok(())
    }
}

#[test]
fn drvinfo_strings_stats_features_link() {
    let mut e = Ethtool::new(FakeNic { calls: Vec::new() });
    let d = e.drvinfo("eth2").unwrap();
    assert_eq!(
        (d.driver.as_str(), d.bus_info.as_str(), d.n_stats),
        ("mlx5_core", "0000:5e:00.0", 3)
    );
    assert_eq!(d.fw_version, "22.36.1010 (MT_0000000359)");
    let names = e.strings("eth2", sys::ETH_SS_STATS).unwrap();
    assert_eq!(
        names,
        ["rx_prio3_pause", "tx_prio3_pause", "rx_discards_phy"]
    );
    let mut stat_names = e.stat_names("eth2").unwrap();
    assert_eq!(stat_names.names().len(), 3);
    assert_eq!(e.stats("eth2", &mut stat_names).unwrap(), [17, 4, 99]);
    let by_name: Vec<(&str, u64)> = stat_names
        .by_name(&[17, 4, 99])
        .map(|(n, v)| (&**n, v))
        .collect();
    assert_eq!(
        by_name,
        [
            ("rx_discards_phy", 99),
            ("rx_prio3_pause", 17),
            ("tx_prio3_pause", 4)
        ]
    );
    assert_eq!(e.stat_name_rereads(), 0);
    let fnames = e.strings("eth2", sys::ETH_SS_FEATURES).unwrap();
    assert_eq!(fnames.len(), 40);
    let f = e.features("eth2", &fnames).unwrap();
    assert_eq!(
        (
            f[1].active,
            f[1].fixed,
            f[0].active,
            f[0].available,
            f[0].fixed
        ),
        (true, true, false, true, false)
    );
    assert!(f[2].fixed, "not available: fixed");
    assert!(f[33].active && !f[33].fixed);
    let l = e.link_settings("eth2").unwrap();
    assert_eq!(
        (l.speed_mbps, l.duplex, l.autoneg),
        (Some(100_000), Some(1), true)
    );
    let err = e.pause("eth2").unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "ETHTOOL_GPAUSEPARAM on eth2: {}",
            io::Error::from_raw_os_error(libc::EOPNOTSUPP)
        )
    );
    assert!(e.drvinfo("eth9").unwrap_err().is_unsupported());
}

/// How `net/ethtool/ioctl.c` answers GSTRINGS and GSTATS when the caller's
/// count is not the driver's.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kernel {
    /// Before 7b07be1ff1cb: the caller's count is ignored, the driver's
    /// current count is copied out, whatever the buffer.
    Old,
    /// With 7b07be1ff1cb (v6.19, stable backports): a non-zero count that
    /// is not the driver's gets a reply of 0 and nothing copied.
    Fixed,
}

/// A driver whose statistic count changes at run time (mlx5: channels,
/// PTP, XDP), under either kernel. It fails the test on any copy past the
/// buffer it was given, unless `guarded`, where it stops at the end and
/// answers EFAULT as copy_to_user does at a guard page.
struct Driver {
    kernel: Kernel,
    /// The driver's statistic count now; names and values follow from it.
    count: usize,
    /// (call index, new count): the count changes just before that call.
    changes: Vec<(usize, usize)>,
    calls: Vec<u32>,
    gsset_info: bool,
    guarded: bool,
}

fn stat_name(i: usize) -> String {
    format!("ch{}_stat{}", i / 10, i % 10)
}

fn stat_value(i: usize) -> u64 {
    1000 + i as u64
}

impl Driver {
    fn new(kernel: Kernel, count: usize) -> Driver {
        Driver {
            kernel,
            count,
            changes: Vec::new(),
            calls: Vec::new(),
            gsset_info: true,
            guarded: false,
        }
    }

    /// The count the kernel copies out for a caller's `asked`.
    fn copied(&self, asked: u32) -> u32 {
        match self.kernel {
            Kernel::Fixed if asked != 0 && asked as usize != self.count => 0,
            _ => self.count as u32,
        }
    }

    /// copy_to_user of `data` at `at`: the whole of it, or a test failure
    /// (an overflow), or EFAULT at a guard page.
    fn copy_out(&self, buf: &mut [u8], at: usize, data: &[u8]) -> io::Result<()> {
        if at + data.len() > buf.len() {
            assert!(
                self.guarded,
                "the kernel would write {} bytes past the {}-byte buffer",
                at + data.len() - buf.len(),
                buf.len()
            );
            let fits = buf.len() - at;
            buf[at..].copy_from_slice(&data[..fits]);
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        buf[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

impl EthtoolIo for Driver {
    fn ethtool(&mut self, _ifname: &str, req: &mut Request<'_>) -> io::Result<()> {
        let k = self.calls.len();
        if let Some(&(_, c)) = self.changes.iter().find(|(at, _)| *at == k) {
            self.count = c;
        }
        self.calls.push(req.cmd());
        let buf = req.bytes_mut();
        match u32_at(buf, 0) {
            sys::ETHTOOL_GDRVINFO => {
                let mut d: sys::ethtool_drvinfo = read(buf);
                d.n_stats = self.count as u32;
                write(buf, &d);
            }
            sys::ETHTOOL_GSSET_INFO if self.gsset_info => {
                let head = size_of::<sys::ethtool_sset_info>();
                put_u32(buf, head, self.count as u32);
            }
            sys::ETHTOOL_GSTRINGS => {
                let at = offset_of!(sys::ethtool_gstrings, len);
                let n = self.copied(u32_at(buf, at));
                put_u32(buf, at, n);
                let mut data = vec![0u8; n as usize * 32];
                for (i, c) in data.chunks_exact_mut(32).enumerate() {
                    c[..stat_name(i).len()].copy_from_slice(stat_name(i).as_bytes());
                }
                self.copy_out(buf, size_of::<sys::ethtool_gstrings>(), &data)?;
            }
            sys::ETHTOOL_GSTATS => {
                let at = offset_of!(sys::ethtool_stats, n_stats);
                let n = self.copied(u32_at(buf, at));
                put_u32(buf, at, n);
                let data: Vec<u8> = (0..n as usize)
                    .flat_map(|i| stat_value(i).to_ne_bytes())
                    .collect();
                self.copy_out(buf, size_of::<sys::ethtool_stats>(), &data)?;
            }
            _ => return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
        Ok(())
    }
}

/// What the agent exported for a netdev: (name, value) in name order.
fn exported(names: &StatNames, values: &[u64]) -> Vec<(String, u64)> {
    names
        .by_name(values)
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

/// What `ethtool -S` would print for a driver with `count` statistics.
fn truth(count: usize) -> Vec<(String, u64)> {
    let mut t: Vec<(String, u64)> = (0..count).map(|i| (stat_name(i), stat_value(i))).collect();
    t.sort();
    t
}

/// The count grows (3 → 300, past any headroom) between the names read at
/// a rescan and the next cycle's GSTATS. An old kernel copies 300 values
/// whatever it was asked: the buffer must be sized from the count asked
/// just before, and the names read again to match.
#[test]
fn count_grows_between_names_and_stats() {
    for kernel in [Kernel::Old, Kernel::Fixed] {
        let mut e = Ethtool::new(Driver::new(kernel, 3));
        let mut names = e.stat_names("eth2").unwrap();
        assert_eq!(names.len(), 3, "{kernel:?}");
        e.io.count = 300;
        let values = e.stats("eth2", &mut names).unwrap();
        assert_eq!(exported(&names, &values), truth(300), "{kernel:?}");
        assert_eq!(e.stat_name_rereads(), 1, "{kernel:?}");
        assert_eq!(
            e.io.calls[2..],
            [
                sys::ETHTOOL_GSSET_INFO,
                sys::ETHTOOL_GSTRINGS,
                sys::ETHTOOL_GSTATS
            ],
            "{kernel:?}"
        );
        // The next cycle: one count query and one GSTATS, no more names.
        let values = e.stats("eth2", &mut names).unwrap();
        assert_eq!(values.len(), 300);
        assert_eq!((e.calls(), e.stat_name_rereads()), (7, 1), "{kernel:?}");
    }
}

/// The count shrinks (40 → 25): an old kernel's 25 values under the first
/// 25 of 40 names would be shifted statistics; a fixed kernel's 0 would be
/// silence. Both must give the 25 right (name, value) pairs.
#[test]
fn count_shrinks_between_names_and_stats() {
    for kernel in [Kernel::Old, Kernel::Fixed] {
        let mut e = Ethtool::new(Driver::new(kernel, 40));
        let mut names = e.stat_names("eth2").unwrap();
        e.io.count = 25;
        let values = e.stats("eth2", &mut names).unwrap();
        assert_eq!(exported(&names, &values), truth(25), "{kernel:?}");
        assert_eq!(e.stat_name_rereads(), 1);
    }
}

/// The count changes between the count query and GSTATS of one cycle (the
/// window the ioctls leave open): the reply is not used, the cycle asks
/// again. Small growth lands in the headroom; large growth, on an old
/// kernel, meets the guard page (EFAULT), never memory past the buffer.
#[test]
fn count_changes_between_count_query_and_gstats() {
    for (kernel, grown, guarded) in [
        (Kernel::Old, 12, false),
        (Kernel::Old, 5000, true),
        (Kernel::Fixed, 12, false),
        (Kernel::Fixed, 5000, false),
    ] {
        let mut d = Driver::new(kernel, 10);
        d.guarded = guarded;
        // Calls: 0 GSSET_INFO, 1 GSTRINGS (rescan); 2 GSSET_INFO, 3 GSTATS.
        d.changes = vec![(3, grown)];
        let mut e = Ethtool::new(d);
        let mut names = e.stat_names("eth2").unwrap();
        let values = e.stats("eth2", &mut names).unwrap();
        assert_eq!(
            exported(&names, &values),
            truth(grown),
            "{kernel:?} {grown}"
        );
        assert_eq!(e.stat_name_rereads(), 1);
    }
}

/// A count that changes before every call never settles: an error, no
/// values, nothing written past a buffer, no endless retry.
#[test]
fn count_that_never_settles_is_an_error() {
    for kernel in [Kernel::Old, Kernel::Fixed] {
        let mut d = Driver::new(kernel, 10);
        d.guarded = true;
        d.changes = (0..64).map(|k| (k, 10 + 100 * (k % 2))).collect();
        let mut e = Ethtool::new(d);
        let mut names = StatNames::new(vec!["x".into()], false);
        let err = e.stats("eth2", &mut names).unwrap_err();
        assert!(!err.is_unsupported());
        assert!(err.to_string().contains("count changed"), "{err}");
        assert!(e.calls() <= 6, "{} calls", e.calls());
        assert!(e.stat_names("eth2").is_err());
    }
}

/// A driver without GSSET_INFO: the count comes from GDRVINFO's n_stats,
/// and GSSET_INFO is not tried again each cycle.
#[test]
fn count_from_drvinfo_when_gsset_info_fails() {
    let mut d = Driver::new(Kernel::Old, 7);
    d.gsset_info = false;
    let mut e = Ethtool::new(d);
    let mut names = e.stat_names("eth2").unwrap();
    assert_eq!(names.len(), 7);
    e.io.count = 9;
    let values = e.stats("eth2", &mut names).unwrap();
    assert_eq!(exported(&names, &values), truth(9));
    let before = e.calls();
    e.stats("eth2", &mut names).unwrap();
    assert_eq!(
        e.io.calls[before as usize..],
        [sys::ETHTOOL_GDRVINFO, sys::ETHTOOL_GSTATS]
    );
}

/// No driver statistics at all: nothing asked past the count (a count of 0
/// in GSTRINGS or GSTATS would ask every kernel for all the driver has).
#[test]
fn zero_count_asks_nothing_more() {
    let mut e = Ethtool::new(Driver::new(Kernel::Fixed, 0));
    let mut names = e.stat_names("eth2").unwrap();
    assert!(names.is_empty());
    assert!(e.stats("eth2", &mut names).unwrap().is_empty());
    assert!(e.io.calls.iter().all(|&c| c == sys::ETHTOOL_GSSET_INFO));
}

/// The buffer a request gets ends at a page nobody may touch: the kernel's
/// copy past it fails (EFAULT or a short read) instead of landing in our heap.
#[test]
fn guard_page_stops_a_kernel_copy_past_the_buffer() {
    use std::os::fd::AsRawFd;
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let mut g = GuardedBuf::new();
    for len in [1usize, 100, 4096, 70_000] {
        let region = g.region(len).unwrap();
        assert_eq!(region.len(), len);
        assert!(region.iter().all(|&b| b == 0));
        let p = region.as_mut_ptr();
        // Only `len` of the `len + 64` bytes are ours; the rest is the guard page.
        // SAFETY: the kernel cannot write to the guard page: that is what is tested.
        let n = unsafe { libc::read(zero.as_raw_fd(), p.cast(), len + 64) };
        let err = io::Error::last_os_error();
        assert!(
            n < 0 && err.raw_os_error() == Some(libc::EFAULT) || (0..=len as isize).contains(&n),
            "read {n} of {len}: {err}"
        );
    }
}

/// The socket sends only the read command a request was built for: a
/// header rewritten to another command (a set command here) is refused
/// before the kernel sees it.
#[test]
fn socket_refuses_a_rewritten_command() {
    let Ok(s) = Socket::open() else {
        panic!("an AF_INET socket opens unprivileged");
    };
    let mut g = GuardedBuf::new();
    let buf = g.region(size_of::<sys::ethtool_drvinfo>()).unwrap();
    put_u32(buf, 0, sys::ETHTOOL_GDRVINFO);
    let mut req = Request {
        cmd: sys::ETHTOOL_GDRVINFO,
        buf,
    };
    put_u32(req.bytes_mut(), 0, sys::ETHTOOL_SCHANNELS);
    let err = siocethtool(&s.fd, "lo", &mut req).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // Built for a set command: refused as well.
    put_u32(req.bytes_mut(), 0, sys::ETHTOOL_SCHANNELS);
    req.cmd = sys::ETHTOOL_SCHANNELS;
    let err = siocethtool(&s.fd, "lo", &mut req).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // The read it was built for reaches the kernel (lo has no driver info:
    // the kernel's EOPNOTSUPP, not our EINVAL).
    put_u32(req.bytes_mut(), 0, sys::ETHTOOL_GDRVINFO);
    req.cmd = sys::ETHTOOL_GDRVINFO;
    let err = siocethtool(&s.fd, "lo", &mut req).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP));
}

/// The driver's count asked this cycle over ethtool netlink (STRSET_GET,
/// counts only: the same `get_sset_count`) stands in for GSSET_INFO: when
/// it matches the names, GSTATS is the one ioctl. A count that no longer
/// matches the names, or that moves between the netlink answer and GSTATS
/// (past the headroom, at the guard page on an old kernel), takes the whole
/// ioctl path: never values under another statistic's name.
#[test]
fn a_count_asked_over_netlink_leaves_gstats_alone() {
    for kernel in [Kernel::Old, Kernel::Fixed] {
        let mut d = Driver::new(kernel, 10);
        d.guarded = true;
        let mut e = Ethtool::new(d);
        let mut names = e.stat_names("eth2").unwrap();
        let before = e.calls();
        let values = e.stats_with_count("eth2", &mut names, 10).unwrap();
        assert_eq!(exported(&names, &values), truth(10), "{kernel:?}");
        assert_eq!(e.io.calls[before as usize..], [sys::ETHTOOL_GSTATS]);
        // The count grew to 300 and netlink says so: names read again first.
        e.io.count = 300;
        let values = e.stats_with_count("eth2", &mut names, 300).unwrap();
        assert_eq!(exported(&names, &values), truth(300), "{kernel:?}");
        assert_eq!(e.stat_name_rereads(), 1);
        // Netlink said 300, the driver has 5000 by GSTATS: not used, asked again.
        let at = e.calls() as usize;
        e.io.changes = vec![(at, 5000)];
        let values = e.stats_with_count("eth2", &mut names, 300).unwrap();
        assert_eq!(exported(&names, &values), truth(5000), "{kernel:?}");
        assert_eq!(e.io.calls[at], sys::ETHTOOL_GSTATS);
        assert_eq!(e.stat_name_rereads(), 2);
    }
}
