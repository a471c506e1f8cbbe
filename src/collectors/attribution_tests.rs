use super::*;
use crate::metrics::Value;
use crate::model::NodeReading;
use crate::model::consumers::{
    self, Identity, Labels, Owner, ProcessInfo, ResDump, ResObject, ResQp,
};

fn qp(dev: u32, lqpn: u32, pid: u32) -> ResQp {
    ResQp {
        dev_index: dev,
        port: Some(1),
        lqpn,
        qp_type: Some(2),
        state: Some(3),
        owner: Owner::Pid(pid),
    }
}

fn info(kind: Kind, id: &str, labels: Labels) -> ProcessInfo {
    ProcessInfo {
        identity: Identity {
            kind,
            id: id.into(),
            labels,
        },
        comm: Some("x".into()),
    }
}

/// pid 1, 2: job 42 steps 0 and 1; 3, 4: two containers of one pod; 5: a unit; 6: a process.
fn resolve(pid: u32) -> Option<ProcessInfo> {
    let job = |step: &str| Labels {
        job_id: Some("42".into()),
        step: Some(step.into()),
        ..Labels::default()
    };
    let pod = |c: &str| Labels {
        namespace: Some("ml".into()),
        pod: Some("trainer-0".into()),
        pod_uid: Some("u1".into()),
        container_id: Some(c.into()),
        ..Labels::default()
    };
    Some(match pid {
        1 => info(Kind::SlurmJob, "42.0", job("0")),
        2 => info(Kind::SlurmJob, "42.1", job("1")),
        3 => info(Kind::Pod, "u1/a", pod("a")),
        4 => info(Kind::Pod, "u1/b", pod("b")),
        5 => info(
            Kind::Unit,
            "nvmf.service",
            Labels {
                unit: Some("nvmf.service".into()),
                ..Labels::default()
            },
        ),
        6 => info(
            Kind::Process,
            "rping",
            Labels {
                comm: Some("rping".into()),
                ..Labels::default()
            },
        ),
        _ => return None,
    })
}

fn attribution(max: usize) -> consumers::Attribution {
    let mut d = ResDump {
        devices: [(0, "mlx5_0".to_string())].into(),
        ..ResDump::default()
    };
    for (n, pid) in [1, 1, 2, 3, 4, 4, 5, 6, 7].into_iter().enumerate() {
        d.qps.push(qp(0, 100 + n as u32, pid));
    }
    d.mrs.push(ResObject {
        dev_index: 0,
        id: Some(0),
        mrlen: Some(1 << 30),
        owner: Owner::Pid(2),
    });
    let g = consumers::group(&d, &[], max, resolve);
    consumers::Attribution {
        consumers: g.consumers.into(),
        status: consumers::AttributionStatus {
            unattributed: g.unattributed,
            consumers: g.exported,
            overflowed: g.overflowed,
            ..Default::default()
        },
    }
}

fn collect(a: &consumers::Attribution) -> crate::metrics::MetricSet {
    let node = NodeReading::default();
    let snapshot = crate::collectors::test_snapshot(&node);
    let cycle = Cycle {
        node: &node,
        mode: crate::config::NetworkMode::Auto,
        mad: None,
        attribution: Some(a),
        snapshot: &snapshot,
        findings: &[],
        known: Default::default(),
    };
    let mut b = Builder::new();
    Attribution.collect(&cycle, &mut b).unwrap();
    b.finish()
}

#[test]
fn steps_and_containers_sum_into_job_and_pod_series() {
    let set = collect(&attribution(256));
    let port = [("device", "mlx5_0"), ("port", "1")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut l = port.to_vec();
        l.extend_from_slice(extra);
        l
    };
    assert_eq!(
        set.get("rdma_job_qps", &with(&[("job_id", "42")])),
        Some(Value::U64(3))
    );
    assert_eq!(
        set.get("rdma_job_mr_bytes", &[("job_id", "42")]),
        Some(Value::U64(1 << 30))
    );
    assert_eq!(
        set.get(
            "rdma_pod_qps",
            &with(&[("namespace", "ml"), ("pod", "trainer-0"), ("pod_uid", "u1")])
        ),
        Some(Value::U64(3))
    );
    assert_eq!(
        set.get("rdma_unit_qps", &with(&[("unit", "nvmf.service")])),
        Some(Value::U64(1))
    );
    assert_eq!(
        set.get("rdma_process_qps", &with(&[("comm", "rping")])),
        Some(Value::U64(1))
    );
    assert_eq!(
        set.get("rdma_unattributed_qps", &[("owner", "unknown")]),
        Some(Value::U64(1))
    );
    assert_eq!(
        set.get("rdma_monitor_attribution_consumers", &[]),
        Some(Value::U64(4)),
        "job 42, pod u1, the unit, the process"
    );
    let text = String::from_utf8(set.text().to_vec()).unwrap();
    assert!(!text.contains("pid=\""), "never a pid label:\n{text}");
}

#[test]
fn past_max_consumers_one_overflow_series_and_a_self_metric() {
    let set = collect(&attribution(2));
    let port = [("device", "mlx5_0"), ("port", "1")];
    // Kept whole: job 42 (both steps, 3 QPs) and pod u1 (both containers, 3
    // QPs); the unit and the process overflow.
    assert_eq!(
        set.get("rdma_monitor_attribution_overflow_consumers", &[]),
        Some(Value::U64(2))
    );
    assert_eq!(
        set.get("rdma_monitor_attribution_consumers", &[]),
        Some(Value::U64(4))
    );
    assert_eq!(
        set.get(
            "rdma_job_qps",
            &[("device", "mlx5_0"), ("port", "1"), ("job_id", "42")]
        ),
        Some(Value::U64(3)),
        "a kept job is never cut in part"
    );
    assert_eq!(
        set.get("rdma_job_mr_bytes", &[("job_id", "42")]),
        Some(Value::U64(1 << 30))
    );
    assert_eq!(
        set.get("rdma_attribution_overflow_qps", &port),
        Some(Value::U64(2))
    );
    assert_eq!(
        set.get("rdma_attribution_overflow_mr_bytes", &[]),
        Some(Value::U64(0))
    );
}

/// mlx5 on Linux ≥ 6.15 with optional counters bound per PID (operator
/// opt-in): the constructed STAT dump, in nldev.c's layout, carries
/// `rdma_tx_bytes` and friends per process; they are summed per job into
/// byte and packet counters. Without them those families are absent.
#[test]
fn optional_per_qp_byte_counters_become_bytes_per_job() {
    use crate::sources::attribution::tests::{attr, pid_counter_with, reading};
    use crate::sources::netlink::nldev::decode_bound_counters;
    use crate::sys::*;
    let hws = |tx: u64, rx: u64| {
        [
            ("rx_write_requests", 3),
            ("rdma_tx_packets", tx / 1000),
            ("rdma_tx_bytes", tx),
            ("rdma_rx_packets", rx / 1000),
            ("rdma_rx_bytes", rx),
        ]
    };
    let payload = [
        attr(RDMA_NLDEV_ATTR_DEV_INDEX, &1u32.to_ne_bytes()),
        attr(
            RDMA_NLDEV_ATTR_STAT_COUNTER,
            &[
                pid_counter_with(4, 161, 17, &hws(1_000_000, 2_000_000)),
                pid_counter_with(5, 160, 18, &hws(500_000, 0)),
            ]
            .concat(),
        ),
    ]
    .concat();
    let bound = decode_bound_counters(&payload).unwrap();
    let root = crate::sources::attribution::tests::fixture();
    let mut src = crate::sources::attribution::AttributionSource::new(
        &root.join("proc"),
        &root,
        std::time::Duration::ZERO,
        256,
    );
    let mut client = crate::sources::netlink::nldev::Client::new(
        crate::sources::netlink::nldev::res::tests::recorded_replay(),
    );
    let a = src
        .poll(
            std::time::Instant::now(),
            || 1,
            &mut client,
            &reading(bound),
        )
        .unwrap();
    let set = collect(&a);
    let l = [("device", "rxe1"), ("port", "1"), ("job_id", "4242")];
    assert_eq!(
        set.get("rdma_job_transmit_bytes_total", &l),
        Some(Value::U64(1_500_000))
    );
    assert_eq!(
        set.get("rdma_job_receive_bytes_total", &l),
        Some(Value::U64(2_000_000))
    );
    assert_eq!(
        set.get("rdma_job_transmit_packets_total", &l),
        Some(Value::U64(1_500))
    );
    assert_eq!(
        set.get("rdma_job_receive_packets_total", &l),
        Some(Value::U64(2_000))
    );
    // Without optional counters: no byte series at all (absent, not 0).
    let set = collect(&attribution(256));
    let text = String::from_utf8(set.text().to_vec()).unwrap();
    assert!(!text.contains("_transmit_bytes_total"), "{text}");
}

#[test]
fn implicit_odp_mrs_are_their_own_series() {
    let mut a = attribution(256);
    let c = std::sync::Arc::make_mut(&mut a.consumers);
    let j = c.iter_mut().find(|c| c.labels.job_id.is_some()).unwrap();
    j.odp_mrs = 2;
    let set = collect(&a);
    assert_eq!(
        set.get("rdma_job_odp_mrs", &[("job_id", "42")]),
        Some(Value::U64(2))
    );
    assert_eq!(
        set.get("rdma_job_mr_bytes", &[("job_id", "42")]),
        Some(Value::U64(1 << 30))
    );
}

/// The PID namespace gauge is there when known; an unavailable cycle shows
/// no consumer series, no unattributed zeros, and fails the collector.
#[test]
fn pid_namespace_gauge_and_unavailable_cycles() {
    let mut a = attribution(256);
    a.status.host_pid_namespace = Some(false);
    let set = collect(&a);
    assert_eq!(
        set.get("rdma_monitor_attribution_pid_namespace_host", &[]),
        Some(Value::U64(0))
    );
    let set = collect(&attribution(256));
    assert_eq!(
        set.get("rdma_monitor_attribution_pid_namespace_host", &[]),
        None
    );

    let mut a = consumers::Attribution::default();
    a.status.unavailable = Some("RDMA_NLDEV_CMD_GET: ENOBUFS".into());
    a.status.host_pid_namespace = Some(true);
    let node = NodeReading::default();
    let snapshot = crate::collectors::test_snapshot(&node);
    let cycle = Cycle {
        node: &node,
        mode: crate::config::NetworkMode::Auto,
        mad: None,
        attribution: Some(&a),
        snapshot: &snapshot,
        findings: &[],
        known: Default::default(),
    };
    let mut b = Builder::new();
    let err = Attribution.collect(&cycle, &mut b).unwrap_err();
    assert!(err.to_string().contains("ENOBUFS"), "{err}");
    let set = b.finish();
    assert_eq!(
        set.get("rdma_monitor_attribution_pid_namespace_host", &[]),
        Some(Value::U64(1))
    );
    assert_eq!(
        set.get("rdma_unattributed_qps", &[("owner", "unknown")]),
        None
    );
}
