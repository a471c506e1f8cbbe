use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/node-jobs")
}

fn resolver() -> Resolver {
    let root = fixture();
    Resolver::new(&root.join("proc"), &root)
}

const POD1: &str = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901";

#[test]
fn stat_comm_may_hold_parentheses_and_spaces() {
    let s = parse_stat(
        "161 (ib_write_bw) (x) S 1 161 161 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 50010 1 2",
    )
    .unwrap();
    assert_eq!(s.comm, "ib_write_bw) (x");
    assert_eq!(s.starttime, 50010);
    assert_eq!(parse_stat("1 (x) S 1 2"), None, "too few fields");
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn cgroup_paths_v2_first_systemd_last() {
    let t =
        "1:name=systemd:/system.slice/slurmd.service\n12:freezer:/slurm/uid_1/job_5/step_0\n0::/\n";
    assert_eq!(
        parse_cgroup(t),
        [
            "/",
            "/slurm/uid_1/job_5/step_0",
            "/system.slice/slurmd.service"
        ]
    );
    assert!(parse_cgroup("no colons here\n").is_empty());
}

#[test]
fn classifies_slurm_v1_and_v2_paths() {
    assert_eq!(
        classify("/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0"),
        Some(Placement::Slurm {
            job_id: "4242".into(),
            step: Some("0".into()),
            uid: None
        })
    );
    assert_eq!(
        classify("/system.slice/node07_slurmstepd.scope/job_77/step_batch/user/task_0"),
        Some(Placement::Slurm {
            job_id: "77".into(),
            step: Some("batch".into()),
            uid: None
        })
    );
    assert_eq!(
        classify("/slurm/uid_1001/job_55/step_1/task_0"),
        Some(Placement::Slurm {
            job_id: "55".into(),
            step: Some("1".into()),
            uid: Some(1001)
        })
    );
    // slurmstepd itself sits in `system` beside the jobs: its unit, not a job.
    assert_eq!(
        classify("/system.slice/slurmstepd.scope/system"),
        Some(Placement::Unit("slurmstepd.scope".into()))
    );
}

#[test]
fn classifies_kubernetes_paths_of_both_drivers_and_three_runtimes() {
    let cid = "a".repeat(64);
    let want = |uid: &str, c: &str| {
        Some(Placement::Pod {
            pod_uid: uid.into(),
            container_id: Some(c.into()),
        })
    };
    assert_eq!(
        classify(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{cid}.scope",
            POD1.replace('-', "_")
        )),
        want(POD1, &cid)
    );
    assert_eq!(
        classify(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{cid}.scope",
            POD1.replace('-', "_")
        )),
        want(POD1, &cid)
    );
    assert_eq!(
        classify(&format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/docker-{cid}.scope",
            POD1.replace('-', "_")
        )),
        want(POD1, &cid)
    );
    assert_eq!(
        classify(&format!("/kubepods/besteffort/pod{POD1}/{cid}")),
        want(POD1, &cid)
    );
    assert_eq!(
        classify(&format!("/kubepods/pod{POD1}/{cid}")),
        want(POD1, &cid)
    );
    // The pod's own cgroup (no container yet), and CRI-O's conmon: the pod, no container.
    for p in [
        format!("/kubepods/burstable/pod{POD1}"),
        format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-conmon-{cid}.scope",
            POD1.replace('-', "_")
        ),
    ] {
        assert_eq!(
            classify(&p),
            Some(Placement::Pod {
                pod_uid: POD1.into(),
                container_id: None
            }),
            "{p}"
        );
    }
    // Not a pod: a uid of the wrong length.
    assert_eq!(classify("/kubepods/besteffort/pod1234/abc"), None);
}

#[test]
fn classifies_units_and_nothing() {
    assert_eq!(
        classify("/system.slice/nvmet-rdma-load.service"),
        Some(Placement::Unit("nvmet-rdma-load.service".into()))
    );
    assert_eq!(classify("/"), None);
    assert_eq!(classify("/user.slice"), None);
}

#[test]
fn passwd_pods_and_status() {
    let p = parse_passwd("root:x:0:0::/:/bin/sh\nbad line\n:x:5:5::/:\nbob:x:1001:1001::/:\n");
    assert_eq!(p.len(), 2);
    assert_eq!(p[&1001], "bob");
    assert_eq!(
        parse_pod_dir(&format!("ml-team_trainer-0_{POD1}")),
        Some(("ml-team".into(), "trainer-0".into(), POD1.into()))
    );
    assert_eq!(parse_pod_dir("ml-team_trainer-0"), None);
    assert_eq!(
        parse_status_uid("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n"),
        Some(1000)
    );
    assert_eq!(parse_status_uid("Name:\tx\n"), None);
}

fn labels(r: &mut Resolver, pid: u32) -> (Kind, String, Labels) {
    let i = r.resolve(pid, Some(100_000)).unwrap().identity;
    (i.kind, i.id, i.labels)
}

#[test]
fn resolves_the_fixture_tree() {
    let mut r = resolver();
    let (k, id, l) = labels(&mut r, 160);
    assert_eq!((k, id.as_str()), (Kind::SlurmJob, "4242.0"));
    assert_eq!(l.job_id.as_deref(), Some("4242"));
    assert_eq!(l.step.as_deref(), Some("0"));
    assert_eq!(l.user.as_deref(), Some("alice"), "v2: uid from status");
    assert_eq!(labels(&mut r, 161).1, "4242.0", "same step, same consumer");
    assert_eq!(labels(&mut r, 163).1, "77.batch");
    let (_, id, l) = labels(&mut r, 170);
    assert_eq!((id.as_str(), l.user.as_deref()), ("55.1", Some("bob")));

    let (k, id, l) = labels(&mut r, 180);
    assert_eq!(k, Kind::Pod);
    assert_eq!(id, format!("{POD1}/{}", "a".repeat(64)));
    assert_eq!(l.namespace.as_deref(), Some("ml-team"));
    assert_eq!(l.pod.as_deref(), Some("trainer-0"));
    assert_eq!(l.pod_uid.as_deref(), Some(POD1));
    let (_, _, l) = labels(&mut r, 181);
    assert_eq!(
        (l.namespace.as_deref(), l.pod.as_deref()),
        (Some("default"), Some("probe-x"))
    );
    let (k, _, l) = labels(&mut r, 182);
    assert_eq!(k, Kind::Pod);
    assert_eq!(
        (l.namespace, l.pod),
        (None, None),
        "no log directory: names absent"
    );
    assert_eq!(l.container_id, Some("c".repeat(64)));
    let (_, _, l) = labels(&mut r, 183);
    assert_eq!(l.pod.as_deref(), Some("rdma-shared-dp-abcde"));
    assert_eq!(l.container_id, Some("d".repeat(64)));

    let (k, id, _) = labels(&mut r, 190);
    assert_eq!((k, id.as_str()), (Kind::Unit, "nvmet-rdma-load.service"));
    let (k, id, l) = labels(&mut r, 191);
    assert_eq!(
        (k, id.as_str(), l.comm.as_deref()),
        (Kind::Process, "rping", Some("rping"))
    );
}

#[test]
fn vanished_and_reused_pids_are_not_attributed() {
    let mut r = resolver();
    assert_eq!(r.resolve(200, Some(100_000)), Err(Unresolved::Vanished));
    // Started at tick 200000, after the dump (tick 100000): the PID was reused.
    assert_eq!(r.resolve(210, Some(100_000)), Err(Unresolved::Reused));
    assert!(r.resolve(210, Some(300_000)).is_ok());
}

/// A cached answer holds only while the PID's start time does: a new process
/// under an old PID is resolved again.
#[test]
fn pid_reuse_after_caching_is_resolved_again() {
    let tmp = tempfile::tempdir().unwrap();
    crate::testutil::copy_tree(&fixture(), tmp.path());
    let proc_root = tmp.path().join("proc");
    let mut r = Resolver::new(&proc_root, tmp.path());
    assert_eq!(labels(&mut r, 191).0, Kind::Process);
    r.begin_cycle();
    let d = proc_root.join("191");
    std::fs::write(
        d.join("cgroup"),
        "0::/system.slice/slurmstepd.scope/job_5/step_0/user/task_0\n",
    )
    .unwrap();
    // Same start time: still the cached process.
    assert_eq!(labels(&mut r, 191).0, Kind::Process);
    let stat = std::fs::read_to_string(d.join("stat"))
        .unwrap()
        .replace(" 91000 ", " 91500 ");
    std::fs::write(d.join("stat"), stat).unwrap();
    assert_eq!(labels(&mut r, 191).1, "5.0");
}

/// A systemd hybrid host: the unified `0::` path names slurmd.service, the
/// v1 hierarchies the job. The job wins, whatever order the lines come in.
#[test]
fn most_specific_placement_wins_over_hierarchies() {
    let job = Some(Placement::Slurm {
        job_id: "56".into(),
        step: Some("0".into()),
        uid: Some(1001),
    });
    let hybrid = "12:freezer:/slurm/uid_1001/job_56/step_0/task_0\n1:name=systemd:/system.slice/slurmd.service\n0::/system.slice/slurmd.service\n";
    assert_eq!(classify_process(hybrid), job);
    let reordered =
        "0::/system.slice/slurmd.service\n12:freezer:/slurm/uid_1001/job_56/step_0/task_0\n";
    assert_eq!(classify_process(reordered), job);
    assert_eq!(
        classify_process("0::/system.slice/slurmd.service\n1:name=systemd:/user.slice\n"),
        Some(Placement::Unit("slurmd.service".into()))
    );
    assert_eq!(classify_process("0::/\n"), None);
    let (k, id, l) = labels(&mut resolver(), 171);
    assert_eq!((k, id.as_str()), (Kind::SlurmJob, "56.0"));
    assert_eq!(l.user.as_deref(), Some("bob"));
}

/// The cgroupfs driver seen from a private cgroup namespace, and static
/// (mirror) pods, whose UIDs are 32 hex digits without dashes.
#[test]
fn classifies_private_namespace_paths_and_static_pods() {
    let cid = "e".repeat(64);
    assert_eq!(
        classify(&format!("/../../pod{POD1}/{cid}")),
        Some(Placement::Pod {
            pod_uid: POD1.into(),
            container_id: Some(cid.clone()),
        })
    );
    assert_eq!(
        classify(&format!("/../../../burstable/pod{POD1}/{cid}")),
        Some(Placement::Pod {
            pod_uid: POD1.into(),
            container_id: Some(cid.clone()),
        })
    );
    // Outside kubepods and not namespace-relative: a `pod…` directory is not a pod.
    assert_eq!(classify(&format!("/srv/pod{POD1}/{cid}")), None);
    let stat = "8f14e45fceea167a5a36dedd4bea2543";
    assert_eq!(
        classify(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{stat}.slice/crio-{cid}.scope"
        )),
        Some(Placement::Pod {
            pod_uid: stat.into(),
            container_id: Some(cid.clone()),
        })
    );
    assert_eq!(
        canonical_pod_uid("8F14E45FCEEA167A5A36DEDD4BEA2543").as_deref(),
        Some(stat)
    );
    assert_eq!(
        canonical_pod_uid("1b2c3d4e5-f60-7182-93a4-b5c6d7e8f901"),
        None,
        "dashes misplaced"
    );
    assert_eq!(canonical_pod_uid(&"g".repeat(32)), None);

    let mut r = resolver();
    let (k, _, l) = labels(&mut r, 184);
    assert_eq!(k, Kind::Pod);
    assert_eq!(
        (l.namespace.as_deref(), l.pod.as_deref()),
        (Some("default"), Some("probe-x"))
    );
    let (k, _, l) = labels(&mut r, 185);
    assert_eq!(k, Kind::Pod);
    assert_eq!(
        (
            l.namespace.as_deref(),
            l.pod.as_deref(),
            l.pod_uid.as_deref()
        ),
        (Some("kube-system"), Some("etcd-node07"), Some(stat))
    );
}

/// A `comm` that is not UTF-8 (PR_SET_NAME takes bytes) is the process's name
/// read lossily, not a vanished process.
#[test]
fn non_utf8_comm_is_read_lossily() {
    let (k, id, _) = labels(&mut resolver(), 192);
    assert_eq!(k, Kind::Process);
    assert_eq!(id, "rd\u{fffd}\u{fffd}");
}
