//! PortXmitWait as time. IBTA vol. 1 §16.1.3.5 counts "ticks during which
//! the port had data to transmit but no data was sent during the entire
//! tick"; PortSamplesControl.Tick (§16.1.3.2) says a tick is Tick + 1
//! symbol times, a symbol time being the time one byte takes on one lane
//! (4 ns at SDR). NVIDIA's ibdiagnet manual ("Congestion Assessment on
//! InfiniBand Links", v2.13) warns that its ASICs differ and gives, per
//! generation, what one increment means:
//! - Quantum, Quantum-2, Quantum-3: one increment per 8 bytes of the whole
//!   port, whatever its width; the port reports Tick = 7; lost bytes =
//!   counter × (Tick + 1).
//! - Switch-IB, Switch-IB 2 (and SwitchX): one increment per 32 bytes per
//!   lane; Tick = 31; lost bytes = counter × (Tick + 1) × lanes — the IBTA
//!   definition.
//!
//! So one increment lasts (Tick + 1) × 8 bits / R, where R is the port's
//! data rate on the first kind and one lane's on the second. Other ASICs
//! have no documented behaviour: their seconds are absent, never a guess;
//! their raw ticks stay in `rdma_*port_transmit_wait_total`.
//!
//! ConnectX HCAs among them. The manual's table names switch ASICs only.
//! The HCA's own PortSamplesControl.Tick is no answer either: the IBTA
//! reading of Tick (symbol times of one lane) is exactly what the manual
//! says Quantum does not follow while reporting Tick 7, so a Tick value
//! alone does not say how a device counts. NVIDIA's ib-traffic-monitor
//! (github.com/NVIDIA/ib-traffic-monitor issue #3, July 2025) proposes the
//! Quantum formula for the sysfs `port_xmit_wait` of "newer generations",
//! but the list of devices it holds for was asked there and not given, and
//! the tool does not implement it. An HCA port's wait has seconds once
//! NVIDIA names its devices; until then the switch port at the far end of
//! the link (a Quantum) gives the link's wait as time.
//!
//! ASICs are known by NodeInfo VendorID/DeviceID; the device IDs are the
//! `sw_dev_id` of Mellanox/mstflint dev_mgt/tools_dev_types.c.

/// How an ASIC counts PortXmitWait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// (Tick + 1) byte times of the whole port (Quantum family).
    PortBytes,
    /// (Tick + 1) byte times of one lane: the IBTA symbol time (Switch-IB family).
    LaneBytes,
}

/// Mellanox/NVIDIA OUI, NodeInfo.VendorID.
pub const VENDOR_MELLANOX: u32 = 0x02c9;

/// (device id, name, counting).
pub const ASICS: &[(u16, &str, Counting)] = &[
    (52000, "Switch-IB", Counting::LaneBytes),
    (53000, "Switch-IB 2", Counting::LaneBytes),
    (54000, "Quantum", Counting::PortBytes),
    (54002, "Quantum-2", Counting::PortBytes),
    (54004, "Quantum-3", Counting::PortBytes),
];

/// What a port's wait counter needs to become time: who counts, in which
/// tick, on which link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WaitClock {
    pub vendor_id: u32,
    pub device_id: u16,
    /// PortSamplesControl.Tick.
    pub tick: u8,
    /// PortInfo LinkWidthActive, LinkSpeedActive, LinkSpeedExtActive.
    pub width_active: u8,
    pub speed_active: u8,
    pub speed_ext_active: u8,
}

/// Lanes of a LinkWidthActive code (IBTA vol. 1 §14.2.5.6: 1x, 4x, 8x, 12x, 2x).
pub fn lanes(width_active: u8) -> Option<u32> {
    match width_active {
        1 => Some(1),
        2 => Some(4),
        4 => Some(8),
        8 => Some(12),
        16 => Some(2),
        _ => None,
    }
}

/// Data rate of one lane in bits per second, after line coding: SDR/DDR/QDR
/// 8b/10b (2, 4, 8 Gb/s), FDR 14.0625 GBd × 64/66, EDR 25.78125 GBd × 64/66
/// = 25 Gb/s, HDR 50 and NDR 100 Gb/s (LinkSpeedExtActive wins when set).
pub fn lane_bits_per_second(speed_active: u8, speed_ext_active: u8) -> Option<f64> {
    match (speed_ext_active, speed_active) {
        (1, _) => Some(14.0625e9 * 64.0 / 66.0),
        (2, _) => Some(25e9),
        (4, _) => Some(50e9),
        (8, _) => Some(100e9),
        (0, 1) => Some(2e9),
        (0, 2) => Some(4e9),
        (0, 4) => Some(8e9),
        _ => None,
    }
}

/// How the ASIC counts, when NVIDIA documents it.
pub fn counting(vendor_id: u32, device_id: u16) -> Option<(&'static str, Counting)> {
    if vendor_id != VENDOR_MELLANOX {
        return None;
    }
    ASICS
        .iter()
        .find(|(id, _, _)| *id == device_id)
        .map(|(_, name, c)| (*name, *c))
}

/// A PortXmitWait read at 2^32 − 1: the 32-bit counter (PortCounters, or
/// PortCountersExtended without the additional counters) has stopped, so
/// its ticks are no time any more. The reading does not say which width it
/// came from; a 64-bit counter exactly there is taken as stopped too.
pub fn wait_saturated(ticks: u64) -> bool {
    ticks == u64::from(u32::MAX)
}

/// Seconds one PortXmitWait increment stands for; None when the ASIC, the
/// width or the speed is not known.
pub fn seconds_per_tick(c: &WaitClock) -> Option<f64> {
    let (_, counting) = counting(c.vendor_id, c.device_id)?;
    let lane = lane_bits_per_second(c.speed_active, c.speed_ext_active)?;
    let lanes = lanes(c.width_active)?;
    let rate = match counting {
        Counting::PortBytes => lane * f64::from(lanes),
        Counting::LaneBytes => lane,
    };
    Some((f64::from(c.tick) + 1.0) * 8.0 / rate)
}
