//! Decoder outputs converted into the model's types. The netlink decoders
//! keep their own structs; the JSON schema is the model's, so a change in a
//! decoder shows up here, at compile time, and not in the snapshot.

use crate::model::netdev as model;
use crate::sources::netlink::{dcb, devlink, ethtool_nl, rtnetlink};

impl From<rtnetlink::Link> for model::Link {
    fn from(l: rtnetlink::Link) -> model::Link {
        model::Link {
            index: l.index,
            name: l.name,
            mtu: l.mtu,
            operstate: l.operstate,
            carrier_changes: l.carrier_changes,
            carrier_up_count: l.carrier_up_count,
            carrier_down_count: l.carrier_down_count,
            stats64: l.stats64,
        }
    }
}

impl From<dcb::Dcb> for model::Dcb {
    fn from(d: dcb::Dcb) -> model::Dcb {
        model::Dcb {
            pfc_enabled: d.pfc_enabled,
            pfc_cap: d.pfc_cap,
            pfc_requests: d.pfc_requests,
            pfc_indications: d.pfc_indications,
            prio_tc: d.prio_tc,
            tc_bw: d.tc_bw,
            app_entries: d.app_entries,
            dscp_trust: d.dscp_trust,
        }
    }
}

impl From<ethtool_nl::EthtoolNl> for model::EthtoolNl {
    fn from(e: ethtool_nl::EthtoolNl) -> model::EthtoolNl {
        model::EthtoolNl {
            pause_tx_frames: e.pause_tx_frames,
            pause_rx_frames: e.pause_rx_frames,
            fec_corrected: e.fec_corrected,
            fec_corrected_lanes: e.fec_corrected_lanes,
            fec_uncorrectable: e.fec_uncorrectable,
            fec_uncorrectable_lanes: e.fec_uncorrectable_lanes,
            fec_corrected_bits: e.fec_corrected_bits,
            fec_corrected_bits_lanes: e.fec_corrected_bits_lanes,
            link_up: e.link_up,
            link_down_events: e.link_down_events,
        }
    }
}

impl From<devlink::DevlinkInfo> for model::DevlinkInfo {
    fn from(d: devlink::DevlinkInfo) -> model::DevlinkInfo {
        model::DevlinkInfo {
            bus: d.bus,
            device: d.device,
            driver: d.driver,
            serial: d.serial,
            board_serial: d.board_serial,
            versions: d.versions,
        }
    }
}
