use super::*;

fn qp(dev: u32, port: u32, lqpn: u32, t: u8, s: u8, owner: Owner) -> ResQp {
    ResQp {
        dev_index: dev,
        port: Some(port),
        lqpn,
        qp_type: Some(t),
        state: Some(s),
        owner,
    }
}

fn mr(dev: u32, len: u64, owner: Owner) -> ResObject {
    ResObject {
        dev_index: dev,
        id: None,
        mrlen: Some(len),
        owner,
    }
}

fn job(id: &str) -> ProcessInfo {
    ProcessInfo {
        identity: Identity {
            kind: Kind::SlurmJob,
            id: id.into(),
            labels: Labels {
                job_id: Some(id.into()),
                ..Labels::default()
            },
        },
        comm: Some("app".into()),
    }
}

fn dump() -> ResDump {
    ResDump {
        devices: [(0, "mlx5_0".to_string()), (1, "mlx5_1".to_string())].into(),
        qps: vec![
            qp(0, 1, 1, 1, 3, Owner::Kernel("ib_core".into())),
            qp(0, 1, 10, 2, 3, Owner::Pid(100)),
            qp(0, 1, 11, 2, 6, Owner::Pid(101)),
            qp(1, 1, 12, 4, 3, Owner::Pid(100)),
            qp(0, 1, 13, 2, 3, Owner::Pid(200)),
            qp(0, 1, 14, 2, 3, Owner::Unknown),
        ],
        mrs: vec![
            mr(0, 4096, Owner::Pid(100)),
            mr(0, 1 << 20, Owner::Pid(101)),
            mr(0, 8192, Owner::Pid(200)),
        ],
        cqs: vec![ResObject {
            dev_index: 0,
            id: Some(1),
            mrlen: None,
            owner: Owner::Pid(100),
        }],
        pds: vec![],
    }
}

/// PIDs 100 and 101 are one job; 200 is gone. Each PID is resolved once.
#[test]
fn groups_by_consumer_and_counts_the_rest() {
    let mut asked = Vec::new();
    let Grouped {
        consumers: c,
        unattributed: un,
        overflowed: over,
        ..
    } = group(&dump(), &[], 16, |pid| {
        asked.push(pid);
        (pid != 200).then(|| job("42"))
    });
    asked.sort();
    assert_eq!(asked, [100, 101, 200]);
    assert_eq!(over, 0);
    assert_eq!(c.len(), 1);
    let j = &c[0];
    assert_eq!((j.kind, j.id.as_str()), (Kind::SlurmJob, "42"));
    assert_eq!(j.qps(), 3);
    assert_eq!(j.ports.len(), 2);
    let p = &j.ports[0];
    assert_eq!((p.device.as_str(), p.port, p.qps), ("mlx5_0", 1, 2));
    assert_eq!(p.qps_by_type["RC"], 2);
    assert_eq!((p.qps_by_state["RTS"], p.qps_by_state["ERR"]), (1, 1));
    assert_eq!(j.ports[1].qps_by_type["UD"], 1);
    assert_eq!(
        (j.mrs, j.mr_bytes, j.cqs, j.pds),
        (2, 4096 + (1 << 20), 1, 0)
    );
    assert_eq!(
        j.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [100, 101]
    );
    assert_eq!(
        un,
        Unattributed {
            kernel_qps: 1,
            user_qps: 2,
            mrs: 1,
            mr_bytes: 8192,
            odp_mrs: 0,
        }
    );
}

#[test]
fn past_max_consumers_the_smallest_go_to_one_overflow_bucket() {
    let mut d = ResDump::default();
    for pid in 1..=5u32 {
        for q in 0..pid {
            d.qps.push(qp(0, 1, pid * 100 + q, 2, 3, Owner::Pid(pid)));
        }
    }
    let g = group(&d, &[], 2, |pid| Some(job(&pid.to_string())));
    let (c, over) = (g.consumers, g.overflowed);
    assert_eq!(over, 3);
    let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["5", "4", OVERFLOW_ID]);
    assert_eq!(c[2].qps(), 1 + 2 + 3);
    assert_eq!(c.iter().map(Consumer::qps).sum::<u64>(), 15, "nothing lost");
}

#[test]
fn bound_pid_counters_are_summed_per_consumer() {
    let counters = [
        PidCounter {
            dev_index: 0,
            port: 1,
            pid: 100,
            counters: vec![
                ("rx_write_requests".into(), 5),
                ("out_of_sequence".into(), 1),
            ],
        },
        PidCounter {
            dev_index: 0,
            port: 1,
            pid: 101,
            counters: vec![("rx_write_requests".into(), 7)],
        },
    ];
    let c = group(&dump(), &counters, 16, |pid| {
        (pid != 200).then(|| job("42"))
    })
    .consumers;
    assert_eq!(c[0].counters.len(), 1);
    let pc = &c[0].counters[0];
    assert_eq!((pc.device.as_str(), pc.port), ("mlx5_0", 1));
    assert_eq!(pc.values["rx_write_requests"], 12);
    assert_eq!(pc.values["out_of_sequence"], 1);
}

#[test]
fn names_of_types_and_states() {
    assert_eq!(qp_type_name(2), "RC");
    assert_eq!(qp_type_name(7), "type_7");
    assert_eq!(qp_state_name(6), "ERR");
    assert_eq!(qp_state_name(9), "state_9");
}

/// An implicit on-demand-paging MR (mlx5) reports a length of u64::MAX: it
/// is counted as an ODP MR, not as 16 EiB of pinned memory (nor a saturated sum).
#[test]
fn implicit_odp_mrs_are_counted_apart_from_pinned_bytes() {
    let mut d = dump();
    d.mrs.push(mr(0, IMPLICIT_ODP_MRLEN, Owner::Pid(100)));
    d.mrs.push(mr(0, IMPLICIT_ODP_MRLEN, Owner::Pid(200)));
    let g = group(&d, &[], 16, |pid| (pid != 200).then(|| job("42")));
    let c = &g.consumers[0];
    assert_eq!((c.mrs, c.mr_bytes, c.odp_mrs), (3, 4096 + (1 << 20), 1));
    let un = &g.unattributed;
    assert_eq!((un.mrs, un.mr_bytes, un.odp_mrs), (2, 8192, 1));
    // Hostile lengths near 2^64 that are not the ODP marker still cannot overflow.
    d.mrs.push(mr(0, u64::MAX - 1, Owner::Pid(101)));
    let g = group(&d, &[], 16, |pid| (pid != 200).then(|| job("42")));
    assert_eq!(g.consumers[0].mr_bytes, u64::MAX);
}

fn step(job_id: &str, step: &str) -> ProcessInfo {
    let mut p = job(job_id);
    p.identity.id = format!("{job_id}.{step}");
    p.identity.labels.step = Some(step.into());
    p
}

/// `max_consumers` counts exported consumers (jobs, pods): a kept job keeps
/// all its steps, however small each is, so its series never under-report;
/// the overflow bucket holds whole jobs only.
#[test]
fn max_consumers_cuts_whole_jobs_not_steps() {
    let mut d = ResDump::default();
    // Job 1: steps 0 and 1 with 3 QPs each (6 in all); job 2: one step, 5 QPs;
    // job 3: one step, 1 QP.
    let owners = [(10, 3), (11, 3), (20, 5), (30, 1)];
    let mut n = 0;
    for (pid, qps) in owners {
        for _ in 0..qps {
            d.qps.push(qp(0, 1, n, 2, 3, Owner::Pid(pid)));
            n += 1;
        }
    }
    let resolve = |pid: u32| match pid {
        10 => Some(step("1", "0")),
        11 => Some(step("1", "1")),
        20 => Some(step("2", "0")),
        30 => Some(step("3", "0")),
        _ => None,
    };
    let g = group(&d, &[], 1, resolve);
    assert_eq!((g.exported, g.overflowed), (3, 2));
    let kept: Vec<(&str, u64)> = g
        .consumers
        .iter()
        .map(|c| (c.id.as_str(), c.qps()))
        .collect();
    assert_eq!(kept, [("1.0", 3), ("1.1", 3), (OVERFLOW_ID, 6)]);
    let g = group(&d, &[], 2, resolve);
    assert_eq!((g.exported, g.overflowed), (3, 1));
    let kept: Vec<&str> = g.consumers.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(kept, ["1.0", "1.1", "2.0", OVERFLOW_ID]);
    assert_eq!(g.consumers[3].qps(), 1);
}
