//! IB or RoCE, decided per port: a host can carry both (a VPI card with one
//! port on each, an IB HCA next to a RoCE NIC).

use serde::Serialize;

use crate::config::NetworkMode;
use crate::model::{DeviceInfo, PortInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Ib,
    Roce,
    Iwarp,
    /// Neither (EFA's "Unknown" link layer, a port that says nothing).
    Other,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ib => "ib",
            Transport::Roce => "roce",
            Transport::Iwarp => "iwarp",
            Transport::Other => "other",
        }
    }
}

/// Kernel node type of an iWARP RNIC (`enum rdma_node_type`, RDMA_NODE_RNIC).
const NODE_TYPE_RNIC: u8 = 4;

/// `network.mode: ib|roce` forces the answer; `auto` reads the port's
/// `link_layer` ("InfiniBand" / "Ethernet"), and an Ethernet port of an RNIC
/// node is iWARP, not RoCE.
pub fn transport(device: &DeviceInfo, port: &PortInfo, mode: NetworkMode) -> Transport {
    match mode {
        NetworkMode::Ib => return Transport::Ib,
        NetworkMode::Roce => return Transport::Roce,
        NetworkMode::Auto => {}
    }
    match port.link_layer.as_deref() {
        Some("InfiniBand") => Transport::Ib,
        Some("Ethernet") => {
            if device
                .node_type
                .as_ref()
                .is_some_and(|t| t.value == NODE_TYPE_RNIC)
            {
                Transport::Iwarp
            } else {
                Transport::Roce
            }
        }
        _ => Transport::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Enumerated;

    fn port(ll: Option<&str>) -> PortInfo {
        PortInfo {
            link_layer: ll.map(str::to_string),
            ..PortInfo::default()
        }
    }

    fn dev(node_type: u8) -> DeviceInfo {
        DeviceInfo {
            node_type: Some(Enumerated {
                value: node_type,
                name: String::new(),
            }),
            ..DeviceInfo::default()
        }
    }

    #[test]
    fn auto_reads_link_layer_per_port() {
        let ca = dev(1);
        assert_eq!(
            transport(&ca, &port(Some("InfiniBand")), NetworkMode::Auto),
            Transport::Ib
        );
        assert_eq!(
            transport(&ca, &port(Some("Ethernet")), NetworkMode::Auto),
            Transport::Roce
        );
        assert_eq!(
            transport(&ca, &port(Some("Unknown")), NetworkMode::Auto),
            Transport::Other
        );
        assert_eq!(
            transport(&ca, &port(None), NetworkMode::Auto),
            Transport::Other
        );
        assert_eq!(
            transport(&dev(4), &port(Some("Ethernet")), NetworkMode::Auto),
            Transport::Iwarp
        );
    }

    #[test]
    fn mode_forces() {
        let ca = dev(1);
        assert_eq!(
            transport(&ca, &port(Some("Ethernet")), NetworkMode::Ib),
            Transport::Ib
        );
        assert_eq!(
            transport(&ca, &port(Some("InfiniBand")), NetworkMode::Roce),
            Transport::Roce
        );
    }
}
