//! Transceiver EEPROM decoding: SFF-8472 (SFP/SFP+: A0h identity, A2h
//! diagnostics and thresholds), SFF-8636 (QSFP+/QSFP28: lower page
//! monitors, upper page 00h identity, page 03h thresholds when the dump has
//! it) and CMIS (QSFP-DD/OSFP: lower page monitors, page 00h identity; lane
//! monitors live in page 11h, which the ioctl does not return).
//! Offsets are the specs'; a short or garbage image is an error, never a panic.

use crate::model::netdev::{Module, Standard, Thresholds};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("module EEPROM of {0} bytes is too short for its identifier")]
    Short(usize),
    #[error("unknown module identifier {0:#04x}")]
    Unknown(u8),
}

impl Thresholds {
    /// "high_alarm", "low_warning"... for a value past a threshold, alarms first.
    pub fn crossed(&self, v: f64) -> Option<&'static str> {
        if v >= self.high_alarm {
            Some("high_alarm")
        } else if v <= self.low_alarm {
            Some("low_alarm")
        } else if v >= self.high_warning {
            Some("high_warning")
        } else if v <= self.low_warning {
            Some("low_warning")
        } else {
            None
        }
    }
}

fn identifier_name(id: u8) -> &'static str {
    match id {
        0x03 => "SFP/SFP+/SFP28",
        0x0c => "QSFP",
        0x0d => "QSFP+",
        0x11 => "QSFP28",
        0x18 => "QSFP-DD",
        0x19 => "OSFP",
        0x1e => "QSFP+ (CMIS)",
        _ => "other",
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .trim()
        .to_string()
}

fn u16be(b: &[u8], at: usize) -> f64 {
    f64::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn i16be(b: &[u8], at: usize) -> f64 {
    f64::from(i16::from_be_bytes([b[at], b[at + 1]]))
}

/// Units of the monitor words (SFF-8472 §9.2, SFF-8636 §6.2.4, CMIS §8.2.5).
const TEMP: f64 = 1.0 / 256.0; // °C per LSB
const VOLT: f64 = 100e-6; // V per LSB
const BIAS: f64 = 2e-6; // A per LSB
const POWER: f64 = 0.1e-6; // W per LSB

/// Four thresholds stored high alarm, low alarm, high warning, low warning.
fn thresholds(b: &[u8], at: usize, signed: bool, unit: f64) -> Thresholds {
    let v = |i: usize| if signed { i16be(b, at + 2 * i) } else { u16be(b, at + 2 * i) } * unit;
    Thresholds {
        high_alarm: v(0),
        low_alarm: v(1),
        high_warning: v(2),
        low_warning: v(3),
    }
}

pub fn decode(eeprom: &[u8]) -> Result<Module, ModuleError> {
    let id = *eeprom.first().ok_or(ModuleError::Short(0))?;
    match id {
        0x03 => sff8472(eeprom),
        0x0c | 0x0d | 0x11 => sff8636(eeprom),
        0x18 | 0x19 | 0x1e => cmis(eeprom),
        other => Err(ModuleError::Unknown(other)),
    }
}

fn sff8472(e: &[u8]) -> Result<Module, ModuleError> {
    if e.len() < 96 {
        return Err(ModuleError::Short(e.len()));
    }
    let lengths = [
        (e[14], 1000.0),
        (e[15], 100.0),
        (e[16], 10.0),
        (e[17], 10.0),
        (e[18], 1.0),
        (e[19], 10.0),
    ];
    let mut m = Module {
        standard: Some(Standard::Sff8472),
        identifier: e[0],
        identifier_name: identifier_name(e[0]),
        vendor: text(&e[20..36]),
        part_number: text(&e[40..56]),
        revision: text(&e[56..60]),
        serial: text(&e[68..84]),
        date_code: text(&e[84..92]),
        wavelength_nm: Some(u16be(e, 60)).filter(|w| *w > 0.0),
        length_m: lengths
            .iter()
            .map(|(v, unit)| f64::from(*v) * unit)
            .reduce(f64::max)
            .filter(|l| *l > 0.0),
        ..Module::default()
    };
    // A2h (bytes 256..511) exists when diagnostics are implemented (byte 92 bit 6).
    let a2 = e.get(256..512);
    if let (Some(a2), true) = (a2, e[92] & 0x40 != 0) {
        m.temperature_thresholds = Some(thresholds(a2, 0, true, TEMP));
        m.voltage_thresholds = Some(thresholds(a2, 8, false, VOLT));
        m.tx_bias_thresholds = Some(thresholds(a2, 16, false, BIAS));
        m.tx_power_thresholds = Some(thresholds(a2, 24, false, POWER));
        m.rx_power_thresholds = Some(thresholds(a2, 32, false, POWER));
        m.temperature_celsius = Some(i16be(a2, 96) * TEMP);
        m.supply_voltage_volts = Some(u16be(a2, 98) * VOLT);
        m.tx_bias_amperes = vec![u16be(a2, 100) * BIAS];
        m.tx_power_watts = vec![u16be(a2, 102) * POWER];
        m.rx_power_watts = vec![u16be(a2, 104) * POWER];
    }
    Ok(m)
}

fn sff8636(e: &[u8]) -> Result<Module, ModuleError> {
    if e.len() < 256 {
        return Err(ModuleError::Short(e.len()));
    }
    let lane = |at: usize, unit: f64| {
        (0..4)
            .map(|i| u16be(e, at + 2 * i) * unit)
            .collect::<Vec<_>>()
    };
    let lengths = [
        (e[142], 1000.0),
        (e[143], 2.0),
        (e[144], 1.0),
        (e[145], 1.0),
        (e[146], 1.0),
    ];
    let mut m = Module {
        standard: Some(Standard::Sff8636),
        identifier: e[0],
        identifier_name: identifier_name(e[0]),
        vendor: text(&e[148..164]),
        part_number: text(&e[168..184]),
        revision: text(&e[184..186]),
        serial: text(&e[196..212]),
        date_code: text(&e[212..220]),
        wavelength_nm: Some(u16be(e, 186) / 20.0).filter(|w| *w > 0.0),
        length_m: lengths
            .iter()
            .map(|(v, unit)| f64::from(*v) * unit)
            .reduce(f64::max)
            .filter(|l| *l > 0.0),
        temperature_celsius: Some(i16be(e, 22) * TEMP),
        supply_voltage_volts: Some(u16be(e, 26) * VOLT),
        rx_power_watts: lane(34, POWER),
        tx_bias_amperes: lane(42, BIAS),
        tx_power_watts: lane(50, POWER),
        ..Module::default()
    };
    // Page 03h (thresholds) is the last 128 bytes of ethtool's 640-byte dump.
    if let Some(p3) = e.get(512..640) {
        m.temperature_thresholds = Some(thresholds(p3, 0, true, TEMP));
        m.voltage_thresholds = Some(thresholds(p3, 16, false, VOLT));
        m.rx_power_thresholds = Some(thresholds(p3, 48, false, POWER));
        m.tx_bias_thresholds = Some(thresholds(p3, 56, false, BIAS));
        m.tx_power_thresholds = Some(thresholds(p3, 64, false, POWER));
    }
    Ok(m)
}

fn cmis(e: &[u8]) -> Result<Module, ModuleError> {
    if e.len() < 256 {
        return Err(ModuleError::Short(e.len()));
    }
    Ok(Module {
        standard: Some(Standard::Cmis),
        identifier: e[0],
        identifier_name: identifier_name(e[0]),
        vendor: text(&e[129..145]),
        part_number: text(&e[148..164]),
        revision: text(&e[164..166]),
        serial: text(&e[166..182]),
        date_code: text(&e[182..190]),
        length_m: Some(
            f64::from(e[202] & 0x3f) * [0.1, 1.0, 10.0, 100.0][usize::from(e[202] >> 6)],
        )
        .filter(|l| *l > 0.0),
        temperature_celsius: Some(i16be(e, 14) * TEMP),
        supply_voltage_volts: Some(u16be(e, 16) * VOLT),
        ..Module::default()
    })
}

/// Adds CMIS lane monitors (page 11h) and thresholds (page 02h), each the
/// 128 bytes of the upper page (offsets below are the spec's minus 128).
pub fn cmis_pages(m: &mut Module, page_11h: Option<&[u8]>, page_02h: Option<&[u8]>) {
    if let Some(p) = page_11h.filter(|p| p.len() >= 74) {
        let lanes = |at: usize, unit: f64| {
            (0..8)
                .map(|i| u16be(p, at + 2 * i) * unit)
                .collect::<Vec<_>>()
        };
        m.tx_power_watts = lanes(154 - 128, POWER);
        m.tx_bias_amperes = lanes(170 - 128, BIAS);
        m.rx_power_watts = lanes(186 - 128, POWER);
    }
    if let Some(p) = page_02h.filter(|p| p.len() >= 72) {
        m.temperature_thresholds = Some(thresholds(p, 0, true, TEMP));
        m.voltage_thresholds = Some(thresholds(p, 8, false, VOLT));
        m.tx_power_thresholds = Some(thresholds(p, 176 - 128, false, POWER));
        m.tx_bias_thresholds = Some(thresholds(p, 184 - 128, false, BIAS));
        m.rx_power_thresholds = Some(thresholds(p, 192 - 128, false, POWER));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_text(e: &mut [u8], at: usize, len: usize, s: &str) {
        e[at..at + len].fill(b' ');
        e[at..at + s.len()].copy_from_slice(s.as_bytes());
    }

    fn put16(e: &mut [u8], at: usize, v: u16) {
        e[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// An SFP+ 10GBASE-SR module as SFF-8472 lays it out: 35.5 °C, 3.3 V,
    /// 6 mA bias, 0.6 mW out, 0.45 mW in; thresholds as commonly shipped.
    pub fn sfp_image() -> Vec<u8> {
        let mut e = vec![0u8; 512];
        e[0] = 0x03;
        e[2] = 0x07; // LC connector
        put_text(&mut e, 20, 16, "FINISAR CORP.");
        put_text(&mut e, 40, 16, "FTLX8574D3BCL");
        put_text(&mut e, 56, 4, "A");
        put16(&mut e, 60, 850);
        e[16] = 8; // OM2: 80 m
        e[19] = 30; // OM3: 300 m
        put_text(&mut e, 68, 16, "ALN1ABC");
        put_text(&mut e, 84, 8, "20240115");
        e[92] = 0x68; // DDM implemented, internally calibrated
        let a2 = 256;
        for (i, v) in [
            (0, 80 * 256),
            (1, (-10 * 256) as i16 as u16 as i32),
            (2, 75 * 256),
            (3, (-5 * 256) as i16 as u16 as i32),
        ] {
            put16(&mut e, a2 + 2 * i, v as u16);
        }
        for (i, v) in [36000u16, 30000, 35000, 31000].into_iter().enumerate() {
            put16(&mut e, a2 + 8 + 2 * i, v);
        }
        for (i, v) in [(0, 6000u16), (1, 1000), (2, 5500), (3, 1500)] {
            put16(&mut e, a2 + 24 + 2 * i, v); // tx power
        }
        for (i, v) in [(0, 10000u16), (1, 100), (2, 8000), (3, 200)] {
            put16(&mut e, a2 + 32 + 2 * i, v); // rx power
        }
        put16(&mut e, a2 + 96, 35 * 256 + 128);
        put16(&mut e, a2 + 98, 33000);
        put16(&mut e, a2 + 100, 3000);
        put16(&mut e, a2 + 102, 6000);
        put16(&mut e, a2 + 104, 4500);
        e
    }

    #[test]
    fn sff8472_identity_monitors_and_thresholds() {
        let m = decode(&sfp_image()).unwrap();
        assert_eq!(m.standard, Some(Standard::Sff8472));
        assert_eq!(
            (m.vendor.as_str(), m.part_number.as_str(), m.serial.as_str()),
            ("FINISAR CORP.", "FTLX8574D3BCL", "ALN1ABC")
        );
        assert_eq!(m.wavelength_nm, Some(850.0));
        assert_eq!(m.length_m, Some(300.0));
        assert_eq!(m.temperature_celsius, Some(35.5));
        assert!((m.supply_voltage_volts.unwrap() - 3.3).abs() < 1e-9);
        assert!((m.tx_bias_amperes[0] - 0.006).abs() < 1e-12);
        assert!((m.tx_power_watts[0] - 0.0006).abs() < 1e-12);
        assert!((m.rx_power_watts[0] - 0.00045).abs() < 1e-12);
        let t = m.temperature_thresholds.unwrap();
        assert_eq!((t.high_alarm, t.low_alarm), (80.0, -10.0));
        assert_eq!(t.crossed(35.5), None);
        assert_eq!(t.crossed(77.0), Some("high_warning"));
        assert_eq!(
            m.tx_power_thresholds.unwrap().crossed(0.0006),
            Some("high_alarm")
        );
    }

    /// A QSFP28 100GBASE-SR4 (SFF-8636) with page 03h: lane 3 receives nothing.
    pub fn qsfp28_image() -> Vec<u8> {
        let mut e = vec![0u8; 640];
        e[0] = 0x11;
        put16(&mut e, 22, (41 * 256) as u16);
        put16(&mut e, 26, 32900);
        for lane in 0..4 {
            put16(
                &mut e,
                34 + 2 * lane,
                if lane == 2 { 0 } else { 7000 + lane as u16 },
            );
            put16(&mut e, 42 + 2 * lane, 3500);
            put16(&mut e, 50 + 2 * lane, 8000);
        }
        e[128] = 0x11;
        e[143] = 50; // OM3, 2 m units: 100 m
        put_text(&mut e, 148, 16, "Mellanox");
        put_text(&mut e, 168, 16, "MMA1B00-C100D");
        put_text(&mut e, 184, 2, "B2");
        put16(&mut e, 186, 850 * 20);
        put_text(&mut e, 196, 16, "MT2117FT01234");
        put_text(&mut e, 212, 8, "210420");
        let p3 = 512;
        put16(&mut e, p3, 75 * 256);
        put16(&mut e, p3 + 2, (-5i16) as u16);
        put16(&mut e, p3 + 4, 70 * 256);
        put16(&mut e, p3 + 6, 0);
        for (i, v) in [22000u16, 300, 17000, 600].into_iter().enumerate() {
            put16(&mut e, p3 + 48 + 2 * i, v);
        }
        e
    }

    #[test]
    fn sff8636_lanes_and_page_03() {
        let m = decode(&qsfp28_image()).unwrap();
        assert_eq!(m.identifier_name, "QSFP28");
        assert_eq!(
            (
                m.vendor.as_str(),
                m.part_number.as_str(),
                m.revision.as_str()
            ),
            ("Mellanox", "MMA1B00-C100D", "B2")
        );
        assert_eq!(m.wavelength_nm, Some(850.0));
        assert_eq!(m.length_m, Some(100.0));
        assert_eq!(m.temperature_celsius, Some(41.0));
        assert_eq!(m.rx_power_watts.len(), 4);
        assert_eq!(m.rx_power_watts[2], 0.0);
        let rx = m.rx_power_thresholds.unwrap();
        assert_eq!(rx.crossed(m.rx_power_watts[2]), Some("low_alarm"));
        assert_eq!(rx.crossed(m.rx_power_watts[0]), None);
        // Without page 03h (a 256-byte dump) there are no thresholds.
        let m = decode(&qsfp28_image()[..256]).unwrap();
        assert!(m.rx_power_thresholds.is_none());
    }

    #[test]
    fn cmis_identity_and_module_monitors() {
        let mut e = vec![0u8; 256];
        e[0] = 0x18;
        put16(&mut e, 14, 45 * 256);
        put16(&mut e, 16, 33100);
        put_text(&mut e, 129, 16, "NVIDIA");
        put_text(&mut e, 148, 16, "MMA4Z00-NS400");
        put_text(&mut e, 166, 16, "MT2330FT09999");
        e[202] = (1 << 6) | 50; // 50 × 1 m
        let m = decode(&e).unwrap();
        assert_eq!(m.standard, Some(Standard::Cmis));
        assert_eq!(m.identifier_name, "QSFP-DD");
        assert_eq!(m.vendor, "NVIDIA");
        assert_eq!(m.length_m, Some(50.0));
        assert_eq!(m.temperature_celsius, Some(45.0));
        assert!(m.rx_power_watts.is_empty(), "lane monitors are in page 11h");
    }

    #[test]
    fn cmis_lane_pages() {
        let mut m = Module::default();
        let mut p11 = vec![0u8; 128];
        for lane in 0..8 {
            put16(&mut p11, 154 - 128 + 2 * lane, 10_000 + lane as u16); // ~1 mW
            put16(&mut p11, 170 - 128 + 2 * lane, 4000); // 8 mA
            put16(
                &mut p11,
                186 - 128 + 2 * lane,
                if lane == 5 { 0 } else { 9000 },
            );
        }
        let mut p02 = vec![0u8; 128];
        put16(&mut p02, 0, 75 * 256);
        for (i, v) in [30000u16, 50, 25000, 100].into_iter().enumerate() {
            put16(&mut p02, 192 - 128 + 2 * i, v); // rx power thresholds
        }
        cmis_pages(&mut m, Some(&p11), Some(&p02));
        assert_eq!(m.rx_power_watts.len(), 8);
        assert!((m.tx_bias_amperes[0] - 0.008).abs() < 1e-12);
        assert!((m.tx_power_watts[7] - 0.0010007).abs() < 1e-12);
        assert_eq!(
            m.rx_power_thresholds.unwrap().crossed(m.rx_power_watts[5]),
            Some("low_alarm")
        );
        assert_eq!(m.temperature_thresholds.unwrap().high_alarm, 75.0);
        // Short pages are ignored, not a panic.
        let mut m2 = Module::default();
        cmis_pages(&mut m2, Some(&p11[..10]), Some(&p02[..10]));
        assert!(m2.rx_power_watts.is_empty() && m2.rx_power_thresholds.is_none());
    }

    #[test]
    fn short_and_garbage_images_are_errors() {
        assert_eq!(decode(&[]), Err(ModuleError::Short(0)));
        assert_eq!(decode(&[0x03; 40]), Err(ModuleError::Short(40)));
        assert_eq!(decode(&[0x11; 200]), Err(ModuleError::Short(200)));
        assert_eq!(decode(&[0x42; 256]), Err(ModuleError::Unknown(0x42)));
        let mut x: u32 = 0x1234_5678;
        for len in 0..700 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    if i == 0 {
                        [0x03, 0x11, 0x18][(x >> 30) as usize % 3]
                    } else {
                        (x >> 24) as u8
                    }
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
