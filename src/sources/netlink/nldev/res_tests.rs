//! The resource dump decoders on replies recorded in the rxe VM
//! (fixtures/netlink/rxe-6.1-res, README there), checked against
//! `rdma -j -d res show` of the same moment, and on malformed entries.

use super::*;
use crate::model::consumers::qp_type_name;
use crate::sources::netlink::Replay;
use crate::sources::netlink::wire::{NLA_HDRLEN, align4, malformed_on_this_thread};

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/netlink/rxe-6.1-res")
}

pub(crate) fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rdma_json(t: &str) -> Vec<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir().join(format!("rdma-res-{t}.json"))).unwrap())
        .unwrap()
}

/// The recorded dumps in the order [`crate::sources::attribution`] asks for them.
pub(crate) const RECORDED_PASS: [&str; 8] = [
    "02-res-qp-rxe0.bin",
    "03-res-mr-rxe0.bin",
    "04-res-cq-rxe0.bin",
    "05-res-pd-rxe0.bin",
    "07-res-qp-rxe1.bin",
    "08-res-mr-rxe1.bin",
    "09-res-cq-rxe1.bin",
    "10-res-pd-rxe1.bin",
];

/// One attribution pass's recorded replies.
pub(crate) fn recorded_replay() -> Replay {
    Replay::new(RECORDED_PASS.map(recorded))
}

fn owner_json(e: &serde_json::Value) -> Owner {
    match e.get("pid") {
        Some(p) => Owner::Pid(p.as_u64().unwrap() as u32),
        None => Owner::Kernel(e["comm"].as_str().unwrap().to_string()),
    }
}

#[test]
fn recorded_qps_equal_rdma_res_show_qp() {
    let mut c = Client::new(Replay::new([
        recorded("02-res-qp-rxe0.bin"),
        recorded("07-res-qp-rxe1.bin"),
    ]));
    let before = malformed_on_this_thread();
    let mut qps = c.res_qps(0).unwrap();
    qps.extend(c.res_qps(1).unwrap());
    assert_eq!(malformed_on_this_thread(), before);
    let kernel = rdma_json("qp");
    assert_eq!(qps.len(), kernel.len());
    for (q, k) in qps.iter().zip(&kernel) {
        assert_eq!(u64::from(q.dev_index), k["ifindex"].as_u64().unwrap());
        assert_eq!(q.port.map(u64::from), k["port"].as_u64());
        assert_eq!(u64::from(q.lqpn), k["lqpn"].as_u64().unwrap());
        assert_eq!(
            qp_type_name(q.qp_type.unwrap()),
            k["type"].as_str().unwrap()
        );
        assert_eq!(
            crate::model::consumers::qp_state_name(q.state.unwrap()),
            k["state"].as_str().unwrap()
        );
        assert_eq!(q.owner, owner_json(k));
    }
    // The request: a dump with DEV_INDEX.
    let req = &c.transport_mut().requests[1];
    let m = crate::sources::netlink::wire::messages(req)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(u32::from(m.kind) & 0x3ff, RDMA_NLDEV_CMD_RES_QP_GET);
    assert_eq!(m.flags, DUMP);
}

#[test]
fn recorded_mrs_cqs_pds_equal_rdma_res_show() {
    for (kind, t, files, id) in [
        (
            ResKind::Mr,
            "mr",
            ["03-res-mr-rxe0.bin", "08-res-mr-rxe1.bin"],
            "mrn",
        ),
        (
            ResKind::Cq,
            "cq",
            ["04-res-cq-rxe0.bin", "09-res-cq-rxe1.bin"],
            "cqn",
        ),
        (
            ResKind::Pd,
            "pd",
            ["05-res-pd-rxe0.bin", "10-res-pd-rxe1.bin"],
            "pdn",
        ),
    ] {
        let mut c = Client::new(Replay::new(files.map(recorded)));
        let mut got = c.res_objects(0, kind).unwrap();
        got.extend(c.res_objects(1, kind).unwrap());
        let kernel = rdma_json(t);
        assert_eq!(got.len(), kernel.len(), "{t}");
        for (o, k) in got.iter().zip(&kernel) {
            assert_eq!(
                u64::from(o.dev_index),
                k["ifindex"].as_u64().unwrap(),
                "{t}"
            );
            assert_eq!(o.id.map(u64::from), k[id].as_u64(), "{t}");
            assert_eq!(o.mrlen, k.get("mrlen").and_then(|v| v.as_u64()), "{t}");
            assert_eq!(o.owner, owner_json(k), "{t}");
        }
    }
}

fn attr(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&(kind as u16).to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(align4(v.len()), 0);
    v
}

fn reply(table: u32, entry: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Vec::new();
    for e in entries {
        t.extend(attr(entry, e));
    }
    let mut p = attr(RDMA_NLDEV_ATTR_DEV_INDEX, &3u32.to_ne_bytes());
    p.extend(attr(table, &t));
    p
}

/// Each attribute wants its exact size: a wrong-sized PID or type is counted
/// and reads as absent; a QP without a readable number, or an MR whose length
/// cannot be read, is skipped whole (its memory would be under-counted).
#[test]
fn wrong_sizes_are_counted_and_skipped() {
    let qp_ok = [
        attr(RDMA_NLDEV_ATTR_RES_LQPN, &9u32.to_ne_bytes()),
        attr(RDMA_NLDEV_ATTR_RES_PID, &[1, 0]), // u16: wrong
        attr(RDMA_NLDEV_ATTR_RES_TYPE, &[2, 0, 0, 0]), // u32: wrong
    ]
    .concat();
    let qp_bad = attr(RDMA_NLDEV_ATTR_RES_LQPN, &9u64.to_ne_bytes());
    let before = malformed_on_this_thread();
    let qps = decode_qps(&reply(
        RDMA_NLDEV_ATTR_RES_QP,
        RDMA_NLDEV_ATTR_RES_QP_ENTRY,
        &[qp_ok, qp_bad],
    ))
    .unwrap();
    assert_eq!(malformed_on_this_thread() - before, 3);
    assert_eq!(qps.len(), 1);
    assert_eq!((qps[0].dev_index, qps[0].lqpn), (3, 9));
    assert_eq!((qps[0].qp_type, &qps[0].owner), (None, &Owner::Unknown));

    let mr_bad = [
        attr(RDMA_NLDEV_ATTR_RES_MRN, &1u32.to_ne_bytes()),
        attr(RDMA_NLDEV_ATTR_RES_MRLEN, &4096u32.to_ne_bytes()),
    ]
    .concat();
    let mr_ok = [
        attr(RDMA_NLDEV_ATTR_RES_MRN, &2u32.to_ne_bytes()),
        attr(RDMA_NLDEV_ATTR_RES_MRLEN, &(1u64 << 30).to_ne_bytes()),
        attr(RDMA_NLDEV_ATTR_RES_PID, &77u32.to_ne_bytes()),
    ]
    .concat();
    let before = malformed_on_this_thread();
    let mrs = decode_objects(
        &reply(
            RDMA_NLDEV_ATTR_RES_MR,
            RDMA_NLDEV_ATTR_RES_MR_ENTRY,
            &[mr_bad, mr_ok],
        ),
        ResKind::Mr,
    )
    .unwrap();
    assert_eq!(malformed_on_this_thread() - before, 1);
    assert_eq!(mrs.len(), 1);
    assert_eq!((mrs[0].id, mrs[0].mrlen), (Some(2), Some(1 << 30)));
    assert_eq!(mrs[0].owner, Owner::Pid(77));
}

#[test]
fn truncated_replies_are_errors_not_panics() {
    let p = recorded("02-res-qp-rxe0.bin");
    let m = crate::sources::netlink::wire::messages(&p)
        .next()
        .unwrap()
        .unwrap();
    let payload = m.payload.to_vec();
    for cut in 0..payload.len() {
        let _ = decode_qps(&payload[..cut]);
        let _ = decode_objects(&payload[..cut], ResKind::Mr);
    }
    // A reply without DEV_INDEX cannot place its entries.
    assert!(decode_qps(&attr(RDMA_NLDEV_ATTR_RES_QP, &[])).is_err());
}
