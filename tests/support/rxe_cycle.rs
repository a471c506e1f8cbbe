//! The recorded rxe VM replies (fixtures/netlink/rxe-6.1, 2 devices) in the
//! order a batched netlink cycle asks for them; shared by tests/allocations.rs
//! and benches/agent.rs (`#[path]`: a bench cannot import a test crate).

use std::path::PathBuf;

/// `(first, steady)`: the discovery cycle's replies, then every later cycle's.
pub fn rxe_cycle_replies() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/netlink/rxe-6.1");
    let f = |n: &str| std::fs::read(dir.join(n)).expect("recorded reply");
    // The resource dump holds both devices; a cycle asks each with a RES_GET doit.
    let res = f("03-res-dump.bin");
    let res: Vec<Vec<u8>> = rdma_monitor::sources::netlink::wire::frames(&res)
        .take(2)
        .map(<[u8]>::to_vec)
        .collect();
    // Every cycle: the device dump, then one batch (port, hw counters,
    // resources, bound counters of each device).
    let steady = vec![
        f("02-get-dump.bin"),
        f("04-port-dump-rxe0.bin"),
        f("05-stat-rxe0-1.bin"),
        res[0].clone(),
        f("07-stat-qp-dump-rxe0.bin"),
        f("08-port-dump-rxe1.bin"),
        f("09-stat-rxe1-1.bin"),
        res[1].clone(),
        f("11-stat-qp-dump-rxe1.bin"),
    ];
    // Discovery adds the system settings and each port's counter status.
    let mut first = steady.clone();
    first.splice(
        1..1,
        [
            f("01-sys.bin"),
            f("06-stat-status-rxe0-1.bin"),
            f("10-stat-status-rxe1-1.bin"),
        ],
    );
    (first, steady)
}
