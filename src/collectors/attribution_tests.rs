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
    let (c, un, over) = consumers::group(&d, &[], max, resolve);
    consumers::Attribution {
        consumers: c.into(),
        status: consumers::AttributionStatus {
            unattributed: un,
            overflowed: over,
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
        Some(Value::U64(6))
    );
    let text = String::from_utf8(set.text().to_vec()).unwrap();
    assert!(!text.contains("pid=\""), "never a pid label:\n{text}");
}

#[test]
fn past_max_consumers_one_overflow_series_and_a_self_metric() {
    let set = collect(&attribution(2));
    let port = [("device", "mlx5_0"), ("port", "1")];
    // Kept: the pod container b (2 QPs) and job step 42.0 (2 QPs); 4 others overflow.
    assert_eq!(
        set.get("rdma_monitor_attribution_overflow_consumers", &[]),
        Some(Value::U64(4))
    );
    assert_eq!(
        set.get("rdma_monitor_attribution_consumers", &[]),
        Some(Value::U64(6))
    );
    assert_eq!(
        set.get("rdma_attribution_overflow_qps", &port),
        Some(Value::U64(4))
    );
    assert_eq!(
        set.get("rdma_attribution_overflow_mr_bytes", &[]),
        Some(Value::U64(1 << 30))
    );
}
