use super::*;

fn rec(level: u8, message: &str, device: Option<&str>) -> KmsgRecord {
    KmsgRecord {
        seq: 1,
        level,
        facility: 0,
        ts_usec: 1,
        message: message.into(),
        device: device.map(str::to_string),
    }
}

/// Lines as the drivers print them (format strings cited in BUILTIN; the
/// texts from public reports where one was at hand) → the pattern that
/// matches first.
#[test]
fn builtin_patterns_on_recorded_lines() {
    let p = patterns(&[], true);
    let name = |level, line: &str| matching(&p, &rec(level, line, None)).map(|p| p.name.as_str());
    for (level, line, want) in [
        (
            4,
            "mlx5_core 0000:18:00.0: wait_func:1155:(pid 1967079): TEARDOWN_HCA(0x103) timeout. Will cause a leak of a command resource",
            Some("mlx5_command_timeout"),
        ),
        (
            4,
            "mlx5_core 0000:08:00.0: cmd_work_handler:1012:(pid 5): cmd[3]: CREATE_MKEY(0x200) Async, timeout. Will cause a leak of a command resource",
            Some("mlx5_command_timeout"),
        ),
        (
            3,
            "mlx5_core 0000:41:00.0: poll_health:852:(pid 0): device's health compromised - reached miss count",
            Some("mlx5_health_compromised"),
        ),
        (
            3,
            "mlx5_core 0000:41:00.0: print_health_info:458:(pid 0): synd 0x8: unrecoverable hardware error",
            Some("mlx5_health_syndrome"),
        ),
        (
            3,
            "mlx5_core 0000:41:00.0: poll_health:870:(pid 0): Fatal error 1 detected",
            Some("mlx5_fatal_error"),
        ),
        (
            3,
            "mlx5_core 0000:5c:00.0: Port module event[error]: module 0, Cable error, High Temperature",
            Some("mlx5_port_module_error"),
        ),
        (
            6,
            "mlx5_core 0000:5c:00.0: Port module event: module 0, Cable plugged",
            Some("mlx5_port_module_event"),
        ),
        (
            6,
            "mlx5_core 0000:08:00.0 eth2: Link down",
            Some("mlx5_link_down"),
        ),
        (
            3,
            "pcieport 0000:00:03.0: AER: Uncorrected (Non-Fatal) error message received from 0000:3b:00.0",
            Some("pcie_aer_uncorrected"),
        ),
        (
            3,
            "mlx5_core 0000:3b:00.0: PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, (Requester ID)",
            Some("pcie_aer_uncorrected"),
        ),
        (
            4,
            "pcieport 0000:00:1c.5: AER: Corrected error message received from 0000:03:00.0",
            Some("pcie_aer_corrected"),
        ),
        (6, "infiniband rxe0: set down", Some("rxe_port_down")),
        (
            3,
            "irdma 0000:af:00.0: ICRDMA: Requesting a reset",
            Some("driver_error"),
        ),
        (
            3,
            "bnxt_re: bnxt_re_dev_init: Failed to register with netdev",
            Some("driver_error"),
        ),
        (
            3,
            "efa 0000:00:06.0: Failed to process command CREATE_QP (opcode 1) comp_status 2 err -22",
            Some("driver_error"),
        ),
        (4, "irdma 0000:af:00.0: a warning, not an error", None),
        (6, "mlx5_core 0000:08:00.0: E-Switch: cleanup", None),
        (
            3,
            "e1000e 0000:00:19.0 eno1: Detected Hardware Unit Hang",
            None,
        ),
        (6, "infiniband rxe0: set active", None),
    ] {
        assert_eq!(name(level, line), want, "{line}");
    }
}

#[test]
fn places() {
    let n = Names {
        devices: vec!["mlx5_0".into(), "rxe0".into()],
        by_pci: [("0000:08:00.0".to_string(), "mlx5_0".to_string())].into(),
        by_netdev: [("eth2".to_string(), "mlx5_0".to_string())].into(),
    };
    let at = |m: &str, d: Option<&str>| place_of(&rec(3, m, d), &n);
    assert_eq!(at("mlx5_core 0000:08:00.0: x", None), "mlx5_0");
    assert_eq!(at("mlx5_core 0000:09:00.0: x", None), "pci 0000:09:00.0");
    assert_eq!(at("x", Some("+pci:0000:08:00.0")), "mlx5_0");
    assert_eq!(at("x", Some("+net:eth2")), "mlx5_0");
    assert_eq!(at("x", Some("+net:eth9")), "net eth9");
    assert_eq!(at("infiniband rxe0: set down", None), "rxe0");
    assert_eq!(at("mlx5_core 0000:08:00.0 eth2: Link down", None), "mlx5_0");
    assert_eq!(at("irdma: gone", None), "driver irdma");
    assert_eq!(at("", None), "kernel log");
    assert!(!is_pci_address("0000:08:00") && is_pci_address("0000:af:00.1"));
}
