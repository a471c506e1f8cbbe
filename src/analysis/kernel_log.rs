//! Kernel log patterns: which /dev/kmsg records become `kernel_log_event`
//! findings, and which device a record names. Built-in patterns, each with
//! the driver source that prints it (format strings as in upstream Linux);
//! `events.patterns` from the configuration are tried first.

use std::collections::HashMap;

use crate::config::events::{Pattern, PatternSeverity};
use crate::model::events::KmsgRecord;
use crate::model::finding::Severity;
use crate::snapshot::Snapshot;

/// A built-in pattern: (name, driver, strings in order, max level, severity).
type Builtin = (
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
    Option<u8>,
    PatternSeverity,
);

use PatternSeverity::{Critical, Info, Warning};

/// The first that matches wins: specific patterns before the per-driver catch-alls.
pub const BUILTIN: &[Builtin] = &[
    // mlx5 cmd.c, wait_func() and cb_timeout_handler(): a firmware command
    // did not complete ("%s(0x%x) timeout. Will cause a leak of a command
    // resource"; cmd_work_handler's async path prints the same text).
    (
        "mlx5_command_timeout",
        Some("mlx5_core"),
        &["timeout. Will cause a leak of a command resource"],
        None,
        Critical,
    ),
    // mlx5 health.c, poll_health(): the firmware's health counter stopped.
    (
        "mlx5_health_compromised",
        Some("mlx5_core"),
        &["health compromised - reached miss count"],
        None,
        Critical,
    ),
    // mlx5 health.c, poll_health(): "Fatal error %u detected".
    (
        "mlx5_fatal_error",
        Some("mlx5_core"),
        &["Fatal error", "detected"],
        None,
        Critical,
    ),
    // mlx5 health.c, print_health_info(): "synd 0x%x: %s" (the syndrome).
    (
        "mlx5_health_syndrome",
        Some("mlx5_core"),
        &["synd 0x"],
        None,
        Critical,
    ),
    // mlx5 events.c, port_module(): "Port module event[error]: module %u, %s, %s".
    (
        "mlx5_port_module_error",
        Some("mlx5_core"),
        &["Port module event[error]"],
        None,
        Warning,
    ),
    // mlx5 events.c, port_module(): "Port module event: module %u, %s" (plugged, unplugged).
    (
        "mlx5_port_module_event",
        Some("mlx5_core"),
        &["Port module event:"],
        None,
        Info,
    ),
    // mlx5 en_main.c, mlx5e_update_carrier(): netdev_info "Link down".
    (
        "mlx5_link_down",
        Some("mlx5_core"),
        &["Link down"],
        None,
        Warning,
    ),
    // drivers/pci/pcie/aer.c (dev_fmt "AER: "): "Uncorrected (Fatal|Non-Fatal) error message received from ..."
    (
        "pcie_aer_uncorrected",
        None,
        &["AER:", "Uncorrected"],
        None,
        Critical,
    ),
    // aer.c: "PCIe Bus Error: severity=Uncorrected (...)".
    (
        "pcie_aer_uncorrected",
        None,
        &["PCIe Bus Error: severity=Uncorrected"],
        None,
        Critical,
    ),
    // aer.c: "Corrected error message received from ...", "severity=Corrected".
    (
        "pcie_aer_corrected",
        None,
        &["AER:", "Corrected error"],
        None,
        Warning,
    ),
    // rxe_net.c, rxe_port_down(): dev_info(&ib_dev.dev, "set down") — the
    // soft-RoCE port followed its netdev down.
    (
        "rxe_port_down",
        Some("infiniband"),
        &["set down"],
        None,
        Info,
    ),
    // Anything the RDMA drivers log at err or worse (dev_err, ibdev_err,
    // pr_err with their KBUILD_MODNAME prefix).
    ("driver_error", Some("mlx5_core"), &[], Some(3), Warning),
    ("driver_error", Some("mlx5_ib"), &[], Some(3), Warning),
    ("driver_error", Some("ib_core"), &[], Some(3), Warning),
    ("driver_error", Some("irdma"), &[], Some(3), Warning),
    ("driver_error", Some("bnxt_re"), &[], Some(3), Warning),
    ("driver_error", Some("efa"), &[], Some(3), Warning),
    ("driver_error", Some("hfi1"), &[], Some(3), Warning),
    ("driver_error", Some("rdma_rxe"), &[], Some(3), Warning),
    ("driver_error", Some("infiniband"), &[], Some(3), Warning),
];

/// The patterns in force: the configured ones, then the built-in ones.
pub fn patterns(configured: &[Pattern], builtin: bool) -> Vec<Pattern> {
    let mut out = configured.to_vec();
    if builtin {
        out.extend(
            BUILTIN
                .iter()
                .map(|(name, driver, contains, max_level, severity)| Pattern {
                    name: name.to_string(),
                    driver: driver.map(str::to_string),
                    contains: contains.iter().map(|s| s.to_string()).collect(),
                    max_level: *max_level,
                    severity: *severity,
                }),
        );
    }
    out
}

/// The first word of a record's text, without its colon: the driver of a
/// dev_printk line ("mlx5_core 0000:08:00.0: ..."), the module of a pr_*
/// line ("rdma_rxe: ..."), the class of a class device ("infiniband rxe0: ...").
pub fn driver_of(message: &str) -> &str {
    message
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches(':')
}

/// The first pattern `r` matches.
pub fn matching<'p>(patterns: &'p [Pattern], r: &KmsgRecord) -> Option<&'p Pattern> {
    let driver = driver_of(&r.message);
    patterns.iter().find(|p| {
        p.driver.as_deref().is_none_or(|d| d == driver)
            && p.max_level.is_none_or(|l| r.level <= l)
            && contains_in_order(&r.message, &p.contains)
    })
}

fn contains_in_order(text: &str, parts: &[String]) -> bool {
    let mut rest = text;
    for p in parts {
        match rest.find(p.as_str()) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

pub fn severity(s: PatternSeverity) -> Severity {
    match s {
        Critical => Severity::Critical,
        Warning => Severity::Warning,
        Info => Severity::Info,
    }
}

/// `dddd:bb:dd.f`, the PCI address form dev_name() gives a PCI device.
fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b':',
            10 => *c == b'.',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Where a record is: an RDMA device of the snapshot (the `device` label),
/// or a subject with a space in it ("pci 0000:08:00.0", "driver irdma")
/// when it names nothing this node's snapshot knows.
pub fn place_of(r: &KmsgRecord, names: &Names) -> String {
    // The dictionary first (dev_printk records carry it), then the text.
    if let Some(d) = r.device.as_deref().and_then(|d| d.strip_prefix('+'))
        && let Some((subsystem, name)) = d.split_once(':')
    {
        return names
            .resolve(subsystem, name)
            .unwrap_or_else(|| format!("{subsystem} {name}"));
    }
    let mut words = r.message.split_whitespace();
    let driver = words.next().unwrap_or("").trim_end_matches(':');
    for w in words.take(2) {
        let w = w.trim_end_matches(':');
        if is_pci_address(w) {
            return names
                .resolve("pci", w)
                .unwrap_or_else(|| format!("pci {w}"));
        }
        if let Some(found) = names
            .resolve("infiniband", w)
            .or_else(|| names.resolve("net", w))
        {
            return found;
        }
    }
    if driver.is_empty() {
        "kernel log".to_string()
    } else {
        format!("driver {driver}")
    }
}

/// The node's names, from the snapshot: RDMA devices, and the PCI address
/// and netdev of each RDMA port's netdev.
#[derive(Default)]
pub struct Names {
    devices: Vec<String>,
    by_pci: HashMap<String, String>,
    by_netdev: HashMap<String, String>,
}

impl Names {
    pub fn of(snap: &Snapshot) -> Names {
        let mut n = Names::default();
        for d in &snap.devices {
            n.devices.push(d.info.name.to_string());
            for p in &d.ports {
                if let Some(nd) = &p.info.netdev {
                    n.by_netdev.insert(nd.clone(), d.info.name.to_string());
                }
            }
        }
        for nd in &snap.netdevs {
            if let Some(dev) = n.by_netdev.get(&nd.name).cloned()
                && let Some(bus) = nd.info.drvinfo.as_ref().map(|d| d.bus_info.clone())
                && !bus.is_empty()
            {
                n.by_pci.insert(bus, dev);
            }
        }
        n
    }

    /// The netdev of an RDMA port.
    pub fn is_rdma_netdev(&self, netdev: &str) -> bool {
        self.by_netdev.contains_key(netdev)
    }

    fn resolve(&self, subsystem: &str, name: &str) -> Option<String> {
        match subsystem {
            "infiniband" => self.devices.iter().find(|d| *d == name).cloned(),
            "pci" => self.by_pci.get(name).cloned(),
            "net" => self.by_netdev.get(name).cloned(),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "kernel_log_tests.rs"]
mod tests;
