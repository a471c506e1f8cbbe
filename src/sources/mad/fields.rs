//! Table-driven attribute fields, as the IBTA spec lays them out: a bit
//! offset from the start of the attribute (bit 0 = the most significant bit
//! of byte 0), a width in bits, a name. One table per attribute.

/// One field of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub bit: usize,
    pub width: usize,
}

const fn f(name: &'static str, bit: usize, width: usize) -> Field {
    Field { name, bit, width }
}

/// Reads a field of up to 64 bits; `None` when the buffer is too short.
pub fn get(data: &[u8], field: &Field) -> Option<u64> {
    let first = field.bit / 8;
    let last = (field.bit + field.width).div_ceil(8);
    let bytes = data.get(first..last)?;
    let mut acc: u128 = 0;
    for b in bytes {
        acc = (acc << 8) | u128::from(*b);
    }
    let trailing = last * 8 - (field.bit + field.width);
    let mask = if field.width >= 64 {
        u64::MAX as u128
    } else {
        (1u128 << field.width) - 1
    };
    Some(((acc >> trailing) & mask) as u64)
}

/// Writes a field of up to 64 bits (requests: PortSelect, CounterSelect).
pub fn set(data: &mut [u8], field: &Field, value: u64) {
    for i in 0..field.width {
        let bit = field.bit + i;
        let on = (value >> (field.width - 1 - i)) & 1 == 1;
        let (byte, shift) = (bit / 8, 7 - bit % 8);
        if let Some(b) = data.get_mut(byte) {
            if on {
                *b |= 1 << shift;
            } else {
                *b &= !(1 << shift);
            }
        }
    }
}

/// A field by name from a table (tests and tools).
pub fn by_name(table: &'static [Field], name: &str) -> Option<&'static Field> {
    table.iter().find(|f| f.name == name)
}

/// NodeInfo (SMP attribute 0x0011), IBTA vol. 1 §14.2.5.3.
pub const NODE_INFO: &[Field] = &[
    f("BaseVersion", 0, 8),
    f("ClassVersion", 8, 8),
    f("NodeType", 16, 8),
    f("NumPorts", 24, 8),
    f("SystemImageGUID", 32, 64),
    f("NodeGUID", 96, 64),
    f("PortGUID", 160, 64),
    f("PartitionCap", 224, 16),
    f("DeviceID", 240, 16),
    f("Revision", 256, 32),
    f("LocalPortNum", 288, 8),
    f("VendorID", 296, 24),
];

/// PortInfo (SMP attribute 0x0015), IBTA vol. 1 §14.2.5.6.
pub const PORT_INFO: &[Field] = &[
    f("M_Key", 0, 64),
    f("GidPrefix", 64, 64),
    f("LID", 128, 16),
    f("MasterSMLID", 144, 16),
    f("CapabilityMask", 160, 32),
    f("LocalPortNum", 224, 8),
    f("LinkWidthEnabled", 232, 8),
    f("LinkWidthSupported", 240, 8),
    f("LinkWidthActive", 248, 8),
    f("LinkSpeedSupported", 256, 4),
    f("PortState", 260, 4),
    f("PortPhysicalState", 264, 4),
    f("LMC", 277, 3),
    f("LinkSpeedActive", 280, 4),
    f("LinkSpeedEnabled", 284, 4),
    f("NeighborMTU", 288, 4),
    f("LocalPhyErrors", 424, 4),
    f("OverrunErrors", 428, 4),
    f("CapabilityMask2", 480, 16),
    f("LinkSpeedExtActive", 496, 4),
    f("LinkSpeedExtSupported", 500, 4),
    f("LinkSpeedExtEnabled", 507, 5),
];

/// SwitchInfo (SMP attribute 0x0012), IBTA vol. 1 §14.2.5.4.
pub const SWITCH_INFO: &[Field] = &[
    f("LinearFDBCap", 0, 16),
    f("LinearFDBTop", 48, 16),
    f("LifeTimeValue", 88, 5),
    f("LIDsPerPort", 96, 16),
    f("EnhancedPort0", 132, 1),
];

/// ClassPortInfo (attribute 0x0001), IBTA vol. 1 §13.4.8.1.
pub const CLASS_PORT_INFO: &[Field] = &[
    f("BaseVersion", 0, 8),
    f("ClassVersion", 8, 8),
    f("CapabilityMask", 16, 16),
    f("CapabilityMask2", 32, 27),
    f("RespTimeValue", 59, 5),
];

/// PortCounters (PerfMgt attribute 0x0012), IBTA vol. 1 §16.1.3.5.
pub const PORT_COUNTERS: &[Field] = &[
    f("PortSelect", 8, 8),
    f("CounterSelect", 16, 16),
    f("SymbolErrorCounter", 32, 16),
    f("LinkErrorRecoveryCounter", 48, 8),
    f("LinkDownedCounter", 56, 8),
    f("PortRcvErrors", 64, 16),
    f("PortRcvRemotePhysicalErrors", 80, 16),
    f("PortRcvSwitchRelayErrors", 96, 16),
    f("PortXmitDiscards", 112, 16),
    f("PortXmitConstraintErrors", 128, 8),
    f("PortRcvConstraintErrors", 136, 8),
    f("CounterSelect2", 144, 8),
    f("LocalLinkIntegrityErrors", 152, 4),
    f("ExcessiveBufferOverrunErrors", 156, 4),
    f("QP1Dropped", 160, 16),
    f("VL15Dropped", 176, 16),
    f("PortXmitData", 192, 32),
    f("PortRcvData", 224, 32),
    f("PortXmitPkts", 256, 32),
    f("PortRcvPkts", 288, 32),
    f("PortXmitWait", 320, 32),
];

/// PortCountersExtended (PerfMgt attribute 0x001D), IBTA vol. 1 §16.1.4.11.
/// The fields past PortMulticastRcvPkts are the additional 64-bit counters a
/// PMA has when ClassPortInfo.CapabilityMask2 bit 1 (IsAdditionalPortCountersExtendedSupported)
/// is set; offsets as libibmad fields.c (`IB_PC_EXT_XMT_WAIT_F`) and perfquery -x read them.
pub const PORT_COUNTERS_EXT: &[Field] = &[
    f("PortSelect", 8, 8),
    f("CounterSelect", 16, 16),
    f("PortXmitData", 64, 64),
    f("PortRcvData", 128, 64),
    f("PortXmitPkts", 192, 64),
    f("PortRcvPkts", 256, 64),
    f("PortUnicastXmitPkts", 320, 64),
    f("PortUnicastRcvPkts", 384, 64),
    f("PortMulticastXmitPkts", 448, 64),
    f("PortMulticastRcvPkts", 512, 64),
    f("PortXmitWait", 1344, 64),
];

/// PortRcvErrorDetails (PerfMgt attribute 0x0015), IBTA vol. 1 §16.1.4.2.
pub const PORT_RCV_ERROR_DETAILS: &[Field] = &[
    f("PortSelect", 8, 8),
    f("PortLocalPhysicalErrors", 32, 16),
    f("PortMalformedPacketErrors", 48, 16),
    f("PortBufferOverrunErrors", 64, 16),
    f("PortDLIDMappingErrors", 80, 16),
    f("PortVLMappingErrors", 96, 16),
    f("PortLoopingErrors", 112, 16),
];

/// PortXmitDiscardDetails (PerfMgt attribute 0x0016), IBTA vol. 1 §16.1.4.3.
pub const PORT_XMIT_DISCARD_DETAILS: &[Field] = &[
    f("PortSelect", 8, 8),
    f("PortInactiveDiscards", 32, 16),
    f("PortNeighborMTUDiscards", 48, 16),
    f("PortSwLifetimeLimitDiscards", 64, 16),
    f("PortSwHOQLifetimeLimitDiscards", 80, 16),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_big_endian() {
        let d = [0b1010_0101u8, 0xff, 0x12, 0x34];
        assert_eq!(get(&d, &f("a", 0, 4)), Some(0b1010));
        assert_eq!(get(&d, &f("b", 4, 4)), Some(0b0101));
        assert_eq!(get(&d, &f("c", 16, 16)), Some(0x1234));
        assert_eq!(get(&d, &f("d", 6, 4)), Some(0b0111));
        assert_eq!(get(&d, &f("e", 24, 16)), None, "past the end");
        let wide: Vec<u8> = (1..=9).collect();
        assert_eq!(get(&wide, &f("w", 4, 64)), Some(0x1020_3040_5060_7080));
    }

    #[test]
    fn set_then_get() {
        let mut d = [0u8; 16];
        for field in PORT_COUNTERS.iter().take(4) {
            set(&mut d, field, 0x5a);
            assert_eq!(get(&d, field), Some(0x5a), "{}", field.name);
        }
    }

    #[test]
    fn tables_fit_their_attributes() {
        for (table, bytes) in [
            (NODE_INFO, 40),
            (PORT_INFO, 64),
            (SWITCH_INFO, 64),
            (CLASS_PORT_INFO, 72),
            (PORT_COUNTERS, 44),
            (PORT_COUNTERS_EXT, 192),
            (PORT_RCV_ERROR_DETAILS, 16),
            (PORT_XMIT_DISCARD_DETAILS, 12),
        ] {
            for fl in table {
                assert!(fl.bit + fl.width <= bytes * 8, "{}", fl.name);
                assert!(fl.width <= 64, "{}", fl.name);
            }
        }
    }
}
