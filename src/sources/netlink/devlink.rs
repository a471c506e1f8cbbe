//! devlink (the "devlink" generic netlink family): `devlink dev info` —
//! driver, serial numbers, fixed/running/stored firmware versions.

use super::genl::request;
use super::wire::{self, NlAttr, WireError, skip};
use crate::sys;

/// Decoded straight into the model's type: the snapshot schema is the model's.
pub use crate::model::netdev::DevlinkInfo;

pub fn devlink_info_request(family: u16, seq: u32) -> Vec<u8> {
    request(family, sys::DEVLINK_CMD_INFO_GET as u8, true, seq).finish()
}

/// A string attribute, or `None` (counted) when it is not a NUL-terminated UTF-8 string.
fn string(a: &NlAttr) -> Option<String> {
    skip(a.str()).map(str::to_string)
}

pub fn decode_devlink_info(p: &[u8]) -> Result<DevlinkInfo, WireError> {
    let mut d = DevlinkInfo::default();
    for a in wire::attrs(p) {
        let a = a?;
        match u32::from(a.kind) {
            sys::DEVLINK_ATTR_BUS_NAME => d.bus = string(&a).unwrap_or_default(),
            sys::DEVLINK_ATTR_DEV_NAME => d.device = string(&a).unwrap_or_default(),
            sys::DEVLINK_ATTR_INFO_DRIVER_NAME => d.driver = string(&a),
            sys::DEVLINK_ATTR_INFO_SERIAL_NUMBER => d.serial = string(&a),
            sys::DEVLINK_ATTR_INFO_BOARD_SERIAL_NUMBER => d.board_serial = string(&a),
            k @ (sys::DEVLINK_ATTR_INFO_VERSION_FIXED
            | sys::DEVLINK_ATTR_INFO_VERSION_RUNNING
            | sys::DEVLINK_ATTR_INFO_VERSION_STORED) => {
                let kind = match k {
                    sys::DEVLINK_ATTR_INFO_VERSION_FIXED => "fixed",
                    sys::DEVLINK_ATTR_INFO_VERSION_RUNNING => "running",
                    _ => "stored",
                };
                let (mut name, mut value) = (None, None);
                for v in a.nested() {
                    let v = v?;
                    match u32::from(v.kind) {
                        sys::DEVLINK_ATTR_INFO_VERSION_NAME => name = string(&v),
                        sys::DEVLINK_ATTR_INFO_VERSION_VALUE => value = string(&v),
                        _ => {}
                    }
                }
                if let (Some(n), Some(v)) = (name, value) {
                    d.versions.push((kind, n, v));
                }
            }
            _ => {}
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::netlink::Replay;
    use crate::sources::netlink::genl::run;
    use crate::sources::netlink::testing::*;

    #[test]
    fn devlink_without_devices_recorded() {
        // The VM has no devlink instance: the dump is NLMSG_DONE alone.
        let got = run(
            &mut genl_replay(&["08-devlink-info-dump.bin"]),
            &devlink_info_request(21, 1),
            "DEVLINK_CMD_INFO_GET",
        )
        .unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn devlink_dev_info() {
        let p = [
            stra(sys::DEVLINK_ATTR_BUS_NAME, "pci"),
            stra(sys::DEVLINK_ATTR_DEV_NAME, "0000:5e:00.0"),
            stra(sys::DEVLINK_ATTR_INFO_DRIVER_NAME, "mlx5_core"),
            stra(sys::DEVLINK_ATTR_INFO_SERIAL_NUMBER, "MT2117X12345"),
            nest(
                sys::DEVLINK_ATTR_INFO_VERSION_FIXED,
                &[
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_NAME, "fw.psid"),
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_VALUE, "MT_0000000359"),
                ],
            ),
            nest(
                sys::DEVLINK_ATTR_INFO_VERSION_RUNNING,
                &[
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_NAME, "fw.version"),
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_VALUE, "22.36.1010"),
                ],
            ),
            nest(
                sys::DEVLINK_ATTR_INFO_VERSION_STORED,
                &[
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_NAME, "fw.version"),
                    stra(sys::DEVLINK_ATTR_INFO_VERSION_VALUE, "22.39.1002"),
                ],
            ),
        ]
        .concat();
        let d = decode_devlink_info(&p).unwrap();
        assert_eq!(
            (d.bus.as_str(), d.device.as_str(), d.driver.as_deref()),
            ("pci", "0000:5e:00.0", Some("mlx5_core"))
        );
        assert_eq!(d.versions.len(), 3);
        assert_eq!(
            d.versions[2],
            ("stored", "fw.version".into(), "22.39.1002".into()),
            "a pending firmware update shows"
        );
        let mut t = Replay::new([genl_reply(0x14, sys::DEVLINK_CMD_INFO_GET as u8, &[])]);
        let got = run(
            &mut t,
            &devlink_info_request(0x14, 1),
            "DEVLINK_CMD_INFO_GET",
        )
        .unwrap();
        assert_eq!(got.len(), 1);
    }
}
