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
    fn ethtool(&mut self, ifname: &str, buf: &mut [u8]) -> io::Result<()> {
        if ifname != "eth2" {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        let cmd = u32_at(buf, 0);
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
    assert_eq!(e.stats("eth2", names.len()).unwrap(), [17, 4, 99]);
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
