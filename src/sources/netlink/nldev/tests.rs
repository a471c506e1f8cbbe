//! Byte-level tests: replies built from the UAPI definitions, in the layout
//! nldev.c produces, decoded to the expected values.

use super::poll::NetlinkSource;
use super::settings::{OptIns, set_optional_counters};
use super::*;
use crate::model::DeviceFilter;
use crate::sources::netlink::testing::*;
use crate::sources::netlink::wire::{self, MessageBuilder, align4};
use crate::sources::netlink::{Exchange, NlError, Replay};
use crate::sys::*;
use std::time::{Duration, Instant};

/// Hands one payload to every NLDEV decoder: none may panic, whatever it holds.
fn decode_as_every_reply(payload: &[u8]) {
    let _ = decode_device(payload);
    let _ = decode_port(payload);
    let _ = decode_port_stats(payload);
    let _ = decode_stat_status(payload);
    let _ = decode_resources(payload);
    let _ = decode_sys(payload);
    let _ = decode_bound_counters(payload);
}

fn hw_entry(name: &str, value: u64) -> Vec<u8> {
    nest(
        RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY,
        &[
            stra(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME, name),
            u64a(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_VALUE, value),
        ],
    )
}

/// rxe0's device reply as nldev.c fills it (fill_dev_info), values of the sample report.
fn rxe_device(index: u32, name: &str, guid: u64) -> Vec<u8> {
    msg(
        nldev_type(RDMA_NLDEV_CMD_GET),
        NLM_F_MULTI as u16,
        1,
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, index),
            stra(RDMA_NLDEV_ATTR_DEV_NAME, name),
            u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
            u64a(RDMA_NLDEV_ATTR_CAP_FLAGS, 0x1223c76),
            u64a(RDMA_NLDEV_ATTR_NODE_GUID, guid),
            u64a(RDMA_NLDEV_ATTR_SYS_IMAGE_GUID, guid),
            u8a(RDMA_NLDEV_ATTR_DEV_NODE_TYPE, 1),
            u8a(RDMA_NLDEV_ATTR_DEV_DIM, 0),
            stra(RDMA_NLDEV_ATTR_DEV_PROTOCOL, "roce"),
            // An attribute newer than any header we know: skipped.
            u8a(200, 7),
        ],
    )
}

#[test]
fn decodes_a_device() {
    let m = rxe_device(0, "rxe0", 0x6c38_7dff_fec3_d22e);
    let msg = wire::messages(&m).next().unwrap().unwrap();
    let d = decode_device(msg.payload).unwrap();
    assert_eq!(d.index, 0);
    assert_eq!(d.name, "rxe0");
    assert_eq!(d.ports, Some(1));
    assert_eq!(d.node_guid, Some(0x6c38_7dff_fec3_d22e));
    assert_eq!(d.cap_flags, Some(0x1223c76));
    assert_eq!(d.node_type, Some(1));
    assert_eq!(d.protocol.as_deref(), Some("roce"));
    assert_eq!(d.fw_version, None, "rxe has no firmware: absent, not empty");
}

#[test]
fn decodes_port_stats_and_status() {
    let reply = msg(
        nldev_type(RDMA_NLDEV_CMD_STAT_GET),
        0,
        5,
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 0),
            stra(RDMA_NLDEV_ATTR_DEV_NAME, "rxe0"),
            u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
            nest(
                RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
                &[
                    hw_entry("sent_pkts", 663),
                    hw_entry("rcvd_pkts", 662),
                    hw_entry("big", u64::MAX),
                ],
            ),
        ],
    );
    let m = wire::messages(&reply).next().unwrap().unwrap();
    let s = decode_port_stats(m.payload).unwrap();
    assert_eq!((s.dev_index, s.port), (0, 1));
    let got: Vec<(&str, u64)> = s
        .counters
        .iter()
        .map(|n| (n.name.as_str(), n.value))
        .collect();
    assert_eq!(
        got,
        [("sent_pkts", 663), ("rcvd_pkts", 662), ("big", u64::MAX)]
    );

    let status = msg(
        nldev_type(RDMA_NLDEV_CMD_STAT_GET_STATUS),
        0,
        6,
        &[nest(
            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
            &[
                nest(
                    RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY,
                    &[
                        stra(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME, "sent_pkts"),
                        u32a(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_INDEX, 0),
                    ],
                ),
                nest(
                    RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY,
                    &[
                        stra(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME, "cc_rx_ce_pkts"),
                        u32a(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_INDEX, 1),
                        u8a(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_DYNAMIC, 0),
                    ],
                ),
            ],
        )],
    );
    let m = wire::messages(&status).next().unwrap().unwrap();
    let st = decode_stat_status(m.payload).unwrap();
    assert_eq!(st[0].optional_enabled, None);
    assert_eq!(
        (st[1].name.as_str(), st[1].index, st[1].optional_enabled),
        ("cc_rx_ce_pkts", 1, Some(false))
    );
}

#[test]
fn decodes_ports_resources_and_bound_counters() {
    let port = msg(
        nldev_type(RDMA_NLDEV_CMD_PORT_GET),
        NLM_F_MULTI as u16,
        1,
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 3),
            stra(RDMA_NLDEV_ATTR_DEV_NAME, "mlx5_0"),
            u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
            u64a(RDMA_NLDEV_ATTR_CAP_FLAGS, 0xa751e848),
            u64a(RDMA_NLDEV_ATTR_SUBNET_PREFIX, 0xfe80_0000_0000_0000),
            u32a(RDMA_NLDEV_ATTR_LID, 0x12),
            u32a(RDMA_NLDEV_ATTR_SM_LID, 1),
            u8a(RDMA_NLDEV_ATTR_LMC, 0),
            u8a(RDMA_NLDEV_ATTR_PORT_STATE, 4),
            u8a(RDMA_NLDEV_ATTR_PORT_PHYS_STATE, 5),
            u32a(RDMA_NLDEV_ATTR_NDEV_INDEX, 7),
            stra(RDMA_NLDEV_ATTR_NDEV_NAME, "ib0"),
        ],
    );
    let m = wire::messages(&port).next().unwrap().unwrap();
    let p = decode_port(m.payload).unwrap();
    assert_eq!(
        (p.dev_index, p.port, p.state, p.phys_state),
        (3, 1, Some(4), Some(5))
    );
    assert_eq!((p.lid, p.sm_lid, p.lmc), (Some(0x12), Some(1), Some(0)));
    assert_eq!(p.netdev.as_deref(), Some("ib0"));

    let res = msg(
        nldev_type(RDMA_NLDEV_CMD_RES_GET),
        NLM_F_MULTI as u16,
        1,
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 0),
            stra(RDMA_NLDEV_ATTR_DEV_NAME, "rxe0"),
            nest(
                RDMA_NLDEV_ATTR_RES_SUMMARY,
                &[
                    nest(
                        RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY,
                        &[
                            stra(RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_NAME, "qp"),
                            u64a(RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_CURR, 3),
                        ],
                    ),
                    nest(
                        RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY,
                        &[
                            stra(RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_NAME, "cq"),
                            u64a(RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_CURR, 2),
                        ],
                    ),
                ],
            ),
        ],
    );
    let m = wire::messages(&res).next().unwrap().unwrap();
    let r = decode_resources(m.payload).unwrap();
    assert_eq!(
        r.entries,
        [
            Named {
                name: "qp".into(),
                value: 3
            },
            Named {
                name: "cq".into(),
                value: 2
            }
        ]
    );

    let bound = msg(
        nldev_type(RDMA_NLDEV_CMD_STAT_GET),
        NLM_F_MULTI as u16,
        1,
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 0),
            stra(RDMA_NLDEV_ATTR_DEV_NAME, "mlx5_0"),
            nest(
                RDMA_NLDEV_ATTR_STAT_COUNTER,
                &[nest(
                    RDMA_NLDEV_ATTR_STAT_COUNTER_ENTRY,
                    &[
                        u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
                        u32a(RDMA_NLDEV_ATTR_STAT_COUNTER_ID, 4),
                        u32a(RDMA_NLDEV_ATTR_STAT_MODE, RDMA_COUNTER_MODE_AUTO),
                        u8a(RDMA_NLDEV_ATTR_RES_TYPE, 2),
                        nest(
                            RDMA_NLDEV_ATTR_RES_QP,
                            &[
                                nest(
                                    RDMA_NLDEV_ATTR_RES_QP_ENTRY,
                                    &[u32a(RDMA_NLDEV_ATTR_RES_LQPN, 17)],
                                ),
                                nest(
                                    RDMA_NLDEV_ATTR_RES_QP_ENTRY,
                                    &[u32a(RDMA_NLDEV_ATTR_RES_LQPN, 18)],
                                ),
                            ],
                        ),
                        nest(
                            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
                            &[hw_entry("rx_write_requests", 41)],
                        ),
                    ],
                )],
            ),
        ],
    );
    let m = wire::messages(&bound).next().unwrap().unwrap();
    let b = decode_bound_counters(m.payload).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].port, b[0].id, b[0].mode, b[0].qp_type),
        (1, 4, Some(1), Some(2))
    );
    assert_eq!(b[0].qpns, [17, 18]);
    assert_eq!(b[0].counters[0].value, 41);
}

#[test]
fn missing_identity_is_malformed() {
    let m = msg(
        nldev_type(RDMA_NLDEV_CMD_GET),
        0,
        1,
        &[u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 0)],
    );
    let msg = wire::messages(&m).next().unwrap().unwrap();
    assert!(decode_device(msg.payload).is_err());
}

#[test]
fn requests_encode_as_the_uapi_says() {
    // STAT_GET doit for dev 1 port 1: header + two u32 attributes.
    let r = get_port_stats(9, 1, 1);
    assert_eq!(r.len(), 16 + 8 + 8);
    assert_eq!(
        u16::from_ne_bytes([r[4], r[5]]),
        0x1411,
        "RDMA_NL_GET_TYPE(NLDEV, STAT_GET)"
    );
    assert_eq!(u16::from_ne_bytes([r[6], r[7]]), NLM_F_REQUEST as u16);
    assert_eq!(u32::from_ne_bytes([r[8], r[9], r[10], r[11]]), 9);
    // The dump flag for PORT_GET, with the device index attribute.
    let p = get_ports(3, 2);
    assert_eq!(
        u16::from_ne_bytes([p[6], p[7]]),
        (NLM_F_REQUEST | NLM_F_DUMP) as u16
    );
    let m = wire::messages(&p).next().unwrap().unwrap();
    let a = wire::attrs(m.payload).next().unwrap().unwrap();
    assert_eq!(
        (u32::from(a.kind), a.u32().unwrap()),
        (RDMA_NLDEV_ATTR_DEV_INDEX, 2)
    );
    // Round trip: a request we build decodes back to what we put in.
    let s = set_optional_counters(4, 0, 1, &[3, 5]);
    let m = wire::messages(&s).next().unwrap().unwrap();
    let table = wire::attrs(m.payload).nth(2).unwrap().unwrap();
    let idx: Vec<u32> = table.nested().map(|a| a.unwrap().u32().unwrap()).collect();
    assert_eq!(idx, [3, 5]);
}

#[test]
fn exchange_ends_on_done_error_or_single_reply() {
    let dump = get_devices(7);
    let mut ex = Exchange::for_request(&dump, NETLINK_RDMA as i32).unwrap();
    let mut first = rxe_device(0, "rxe0", 1);
    first[8..12].copy_from_slice(&7u32.to_ne_bytes());
    assert!(!ex.feed(&first).unwrap(), "a dump goes on until DONE");
    assert!(ex.feed(&done(7)).unwrap());
    let mut ex = Exchange::for_request(&get_port_stats(8, 0, 1), NETLINK_RDMA as i32).unwrap();
    assert!(matches!(
        ex.feed(&error(8, libc::EINVAL)),
        Err(NlError::Kernel {
            errno: libc::EINVAL,
            ..
        })
    ));
    let mut ex = Exchange::for_request(&get_port_stats(9, 0, 1), NETLINK_RDMA as i32).unwrap();
    assert!(
        !ex.feed(&error(3, libc::EINVAL)).unwrap(),
        "another request's reply is ignored"
    );
    assert!(ex.feed(&error(9, 0)).unwrap(), "errno 0 is an ACK");
}

/// One full cycle on replayed replies: the requests the source sends, in order,
/// and what it makes of the answers.
#[test]
fn one_cycle_over_replayed_replies() {
    let mut devices = rxe_device(0, "rxe0", 11);
    devices.extend(rxe_device(1, "rxe1", 12));
    devices.extend(done(1));
    let sys = msg(
        nldev_type(RDMA_NLDEV_CMD_SYS_GET),
        0,
        1,
        &[u8a(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 1)],
    );
    let res = |dev: u32| {
        msg(
            nldev_type(RDMA_NLDEV_CMD_RES_GET),
            0,
            1,
            &[
                u32a(RDMA_NLDEV_ATTR_DEV_INDEX, dev),
                nest(
                    RDMA_NLDEV_ATTR_RES_SUMMARY,
                    &[nest(
                        RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY,
                        &[
                            stra(RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_NAME, "qp"),
                            u64a(RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_CURR, u64::from(dev) + 3),
                        ],
                    )],
                ),
            ],
        )
    };
    // nldev_port_get_doit answers with a message of type RDMA_NLDEV_CMD_GET.
    let port = |dev: u32, ndev: &str| {
        msg(
            nldev_type(RDMA_NLDEV_CMD_GET),
            0,
            1,
            &[
                u32a(RDMA_NLDEV_ATTR_DEV_INDEX, dev),
                u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
                u8a(RDMA_NLDEV_ATTR_PORT_STATE, 4),
                u8a(RDMA_NLDEV_ATTR_PORT_PHYS_STATE, 5),
                stra(RDMA_NLDEV_ATTR_NDEV_NAME, ndev),
            ],
        )
    };
    let stats = |sent: u64| {
        msg(
            nldev_type(RDMA_NLDEV_CMD_STAT_GET),
            0,
            1,
            &[
                u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 0),
                u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
                nest(
                    RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
                    &[hw_entry("sent_pkts", sent)],
                ),
            ],
        )
    };
    // At discovery, port by port: STAT_GET_STATUS (an old kernel has none).
    // Then one batch: each port's PORT_GET and STAT_GET, each device's
    // RES_GET and bound-counter dump.
    let replies = vec![
        devices,
        sys,
        error(1, libc::EOPNOTSUPP),
        error(1, libc::EOPNOTSUPP),
        port(0, "veth0"),
        stats(663),
        res(0),
        done(1), // bound counters: none
        port(1, "veth1"),
        error(1, libc::EINVAL), // STAT_GET: this port has no hw counters
        res(1),
        done(1),
    ];
    let mut src = NetlinkSource::new(
        Replay::new(replies),
        DeviceFilter::default(),
        Duration::from_secs(60),
    );
    let r = src.poll(Instant::now()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.devices.len(), 2);
    assert_eq!(r.sys.as_ref().unwrap().netns_shared, Some(true));
    let p0 = &r.devices[0].ports[0];
    assert_eq!(p0.port.netdev.as_deref(), Some("veth0"));
    assert_eq!(p0.hw_counters.as_ref().unwrap()[0].value, 663);
    assert_eq!(r.devices[1].ports[0].hw_counters, None);
    let qps: Vec<u64> = r.devices.iter().map(|d| d.resources[0].value).collect();
    assert_eq!(qps, [3, 4], "each device's own RES_GET answer");
    assert_eq!(src.stats().round_trips, 12);
    // A cycle whose device list fails (the replay has nothing left) keeps
    // the list's storage for the next one.
    let kept = src.kept_devices();
    assert!(kept >= 2);
    assert!(src.poll(Instant::now()).is_err());
    assert_eq!(src.kept_devices(), kept, "the kept device list dropped");
}

fn status_entry(name: &str, index: u32, dynamic: Option<u8>) -> Vec<u8> {
    let mut e = vec![
        stra(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME, name),
        u32a(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_INDEX, index),
    ];
    if let Some(d) = dynamic {
        e.push(u8a(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_DYNAMIC, d));
    }
    nest(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY, &e)
}

/// The opt-ins send exactly the STAT_SET requests `rdma statistic set` would,
/// keep optional counters that were already on, and name unknown ones.
/// One mlx5 port with optional counters: the replies to devices, sys,
/// port, status, STAT_SET and STAT_GET.
fn opt_in_port() -> [Vec<u8>; 6] {
    let mut devices = rxe_device(0, "mlx5_0", 11);
    devices.extend(done(1));
    let sys = msg(nldev_type(RDMA_NLDEV_CMD_SYS_GET), 0, 1, &[]);
    let mut port = msg(
        nldev_type(RDMA_NLDEV_CMD_PORT_GET),
        NLM_F_MULTI as u16,
        1,
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 0),
            u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
            u8a(RDMA_NLDEV_ATTR_PORT_STATE, 4),
        ],
    );
    port.extend(done(1));
    let status = msg(
        nldev_type(RDMA_NLDEV_CMD_STAT_GET_STATUS),
        0,
        1,
        &[nest(
            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
            &[
                status_entry("rx_write_requests", 0, None),
                status_entry("cc_rx_ce_pkts", 1, Some(1)),
                status_entry("cc_rx_cnp_pkts", 2, Some(0)),
                status_entry("cc_tx_cnp_pkts", 3, Some(0)),
            ],
        )],
    );
    let set_reply = msg(nldev_type(RDMA_NLDEV_CMD_STAT_SET), 0, 1, &[]);
    let stats = msg(
        nldev_type(RDMA_NLDEV_CMD_STAT_GET),
        0,
        1,
        &[nest(
            RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
            &[hw_entry("rx_write_requests", 1)],
        )],
    );
    [devices, sys, port, status, set_reply, stats]
}

#[test]
fn opt_ins_are_applied_once_and_keep_what_is_on() {
    let [devices, sys, port, status, set_reply, stats] = opt_in_port();
    let replies = vec![
        devices,
        sys,
        set_reply.clone(), // auto mode
        status.clone(),    // status read by the opt-in
        set_reply,         // optional counters
        status,            // status for the reading
        port,
        stats,
        msg(nldev_type(RDMA_NLDEV_CMD_RES_GET), 0, 1, &[]),
        done(1), // bound counters
    ];
    let opt_ins = OptIns {
        optional_counters: vec!["cc_tx_cnp_pkts".into(), "no_such_counter".into()],
        auto_mode_mask: Some(RDMA_COUNTER_MASK_QP_TYPE),
    };
    let mut src = NetlinkSource::new(
        Replay::new(replies),
        DeviceFilter::default(),
        Duration::from_secs(60),
    );
    let r = super::settings::poll_applying(&mut src, &opt_ins, Instant::now()).unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].contains("no_such_counter"), "{:?}", r.errors);
    let requests = &src_requests(&mut src);
    let auto = wire::messages(&requests[2]).next().unwrap().unwrap();
    assert_eq!(auto.kind, nldev_type(RDMA_NLDEV_CMD_STAT_SET));
    let attrs: Vec<(u16, u32)> = wire::attrs(auto.payload)
        .map(|a| a.unwrap())
        .map(|a| (a.kind, a.u32().unwrap()))
        .collect();
    assert!(attrs.contains(&(RDMA_NLDEV_ATTR_STAT_MODE as u16, RDMA_COUNTER_MODE_AUTO)));
    assert!(attrs.contains(&(
        RDMA_NLDEV_ATTR_STAT_AUTO_MODE_MASK as u16,
        RDMA_COUNTER_MASK_QP_TYPE
    )));
    let set = wire::messages(&requests[4]).next().unwrap().unwrap();
    let table = wire::attrs(set.payload)
        .find(|a| a.as_ref().unwrap().kind == RDMA_NLDEV_ATTR_STAT_HWCOUNTERS as u16)
        .unwrap()
        .unwrap();
    let enabled: Vec<u32> = table.nested().map(|a| a.unwrap().u32().unwrap()).collect();
    assert_eq!(
        enabled,
        [1, 3],
        "cc_rx_ce_pkts stays on, cc_tx_cnp_pkts is added"
    );
}

/// The poll only reads: no STAT_SET, whatever the configuration; the
/// writes come from `settings::poll_applying`, once per port.
#[test]
fn the_poll_writes_nothing_and_opt_ins_are_written_once_per_port() {
    let is_set = |r: &Vec<u8>| {
        wire::messages(r).next().unwrap().unwrap().kind == nldev_type(RDMA_NLDEV_CMD_STAT_SET)
    };
    let [devices, sys, port, status, set_reply, stats] = opt_in_port();
    let res = || msg(nldev_type(RDMA_NLDEV_CMD_RES_GET), 0, 1, &[]);
    // A cycle's batch: port, hw counters, resources, bound counters (done).
    let batch = || vec![port.clone(), stats.clone(), res(), done(1)];
    let mut first = vec![devices.clone(), sys.clone(), status.clone()];
    first.extend(batch());
    let mut src = NetlinkSource::new(
        Replay::new(first),
        DeviceFilter::default(),
        Duration::from_secs(60),
    );
    src.poll(Instant::now()).unwrap();
    let requests = src_requests(&mut src);
    assert_eq!(requests.len(), 7);
    assert!(!requests.iter().any(is_set), "the poll wrote to the kernel");

    // Auto mode only: one STAT_SET the first time the port is seen, none after.
    let opt_ins = OptIns {
        optional_counters: Vec::new(),
        auto_mode_mask: Some(RDMA_COUNTER_MASK_QP_TYPE),
    };
    let mut replies = vec![devices.clone(), sys, set_reply, status];
    replies.extend(batch());
    replies.push(devices.clone());
    replies.extend(batch());
    let mut src = NetlinkSource::new(
        Replay::new(replies),
        DeviceFilter::default(),
        Duration::from_secs(60),
    );
    let now = Instant::now();
    for _ in 0..2 {
        super::settings::poll_applying(&mut src, &opt_ins, now).unwrap();
    }
    let requests = src_requests(&mut src);
    assert_eq!(requests.iter().filter(|r| is_set(r)).count(), 1);
    assert!(
        is_set(&requests[2]),
        "written when the port is first seen, before its status and counters"
    );
}

fn src_requests(src: &mut NetlinkSource<Replay>) -> Vec<Vec<u8>> {
    src.client_mut().transport_mut().requests.clone()
}

#[test]
fn decoders_survive_garbage() {
    let seeds = [rxe_device(0, "rxe0", 1), done(1), error(1, 22)];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..20_000 {
        let mut b = seeds[round % seeds.len()].clone();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x as usize) % b.len();
        b[i] = (x >> 32) as u8;
        b.truncate(((x >> 40) as usize) % (b.len() + 1));
        for m in wire::messages(&b) {
            let Ok(m) = m else { break };
            decode_as_every_reply(m.payload);
        }
    }
}

#[test]
fn builder_pads_strings() {
    let m = MessageBuilder::new(1, 0, 1).string(2, "abc").finish();
    assert_eq!(m.len(), 16 + align4(4 + 4));
}

/// Attributes of the wrong size for their type (iproute2's nldev_policy
/// types): counted and skipped, never read as a prefix, never the end of the
/// whole reply.
#[test]
fn wrong_sized_attributes_are_counted_and_skipped() {
    let before = wire::malformed_on_this_thread();
    let d = decode_device(
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 1),
            stra(RDMA_NLDEV_ATTR_DEV_NAME, "rxe0"),
            u64a(RDMA_NLDEV_ATTR_PORT_INDEX, 1), // u32 sent as u64
            u32a(RDMA_NLDEV_ATTR_NODE_GUID, 0x1234), // u64 sent as u32
            attr(RDMA_NLDEV_ATTR_DEV_NODE_TYPE, &[1, 0]), // u8 in 2 bytes
            attr(RDMA_NLDEV_ATTR_FW_VERSION, b"1.0"), // no NUL
            stra(RDMA_NLDEV_ATTR_DEV_PROTOCOL, "roce"),
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!((d.index, d.name.as_str()), (1, "rxe0"));
    assert_eq!((d.ports, d.node_guid, d.node_type), (None, None, None));
    assert_eq!((d.fw_version, d.protocol.as_deref()), (None, Some("roce")));
    assert_eq!(wire::malformed_on_this_thread() - before, 4);
    // A required attribute of the wrong size: the reply lacks it.
    let e = decode_port(
        &[
            attr(RDMA_NLDEV_ATTR_DEV_INDEX, &[1, 0]),
            u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
        ]
        .concat(),
    );
    assert!(e.is_err());
    // A hw counter whose value is 12 bytes: that entry is skipped (counted
    // once), the others stay.
    let bad = nest(
        RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY,
        &[
            stra(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_NAME, "rcvd_pkts"),
            attr(RDMA_NLDEV_ATTR_STAT_HWCOUNTER_ENTRY_VALUE, &[9; 12]),
        ],
    );
    let before = wire::malformed_on_this_thread();
    let s = decode_port_stats(
        &[
            u32a(RDMA_NLDEV_ATTR_DEV_INDEX, 1),
            u32a(RDMA_NLDEV_ATTR_PORT_INDEX, 1),
            nest(
                RDMA_NLDEV_ATTR_STAT_HWCOUNTERS,
                &[hw_entry("sent_pkts", 5), bad, hw_entry("link_downed", 0)],
            ),
        ]
        .concat(),
    )
    .unwrap();
    let names: Vec<_> = s
        .counters
        .iter()
        .map(|c| (c.name.as_str(), c.value))
        .collect();
    assert_eq!(names, [("sent_pkts", 5), ("link_downed", 0)]);
    assert_eq!(wire::malformed_on_this_thread() - before, 1);
}

/// Replies recorded on the real kernel (fixtures/netlink/rxe-6.1, see its
/// README), decoded to the values `rdma -j` printed at the same moment.
mod recorded {
    use super::*;
    use std::path::PathBuf;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/netlink/rxe-6.1")
    }
    fn file(name: &str) -> Vec<u8> {
        std::fs::read(dir().join(name)).unwrap()
    }
    fn json(name: &str) -> serde_json::Value {
        serde_json::from_slice(&file(name)).unwrap()
    }

    #[test]
    fn devices_ports_and_resources_match_rdma_tool() {
        let mut c = Client::new(Replay::new([file("02-get-dump.bin")]));
        let devices = c.devices().unwrap();
        let dev_json = json("rdma-dev.json");
        assert_eq!(devices.len(), 2);
        for (d, j) in devices.iter().zip(dev_json.as_array().unwrap()) {
            assert_eq!(d.name, j["ifname"]);
            assert_eq!(d.index, j["ifindex"].as_u64().unwrap() as u32);
            let guid = u64::from_str_radix(&j["node_guid"].as_str().unwrap().replace(':', ""), 16)
                .unwrap();
            assert_eq!(d.node_guid, Some(guid));
            assert_eq!(d.protocol.as_deref(), Some("roce"));
            assert_eq!(d.node_type, Some(1));
        }
        let mut c = Client::new(Replay::new([
            file("04-port-dump-rxe0.bin"),
            file("08-port-dump-rxe1.bin"),
        ]));
        for (dev, link) in json("rdma-link.json")
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let p = c.ports(dev as u32).unwrap();
            assert_eq!(p.len(), 1);
            assert_eq!(
                (p[0].state, p[0].phys_state),
                (Some(4), Some(5)),
                "ACTIVE / LINK_UP"
            );
            assert_eq!(p[0].netdev.as_deref(), link["netdev"].as_str());
            assert_eq!(
                p[0].netdev_index,
                link["netdev_index"].as_u64().map(|v| v as u32)
            );
            assert_eq!(p[0].lid, None, "RoCE ports carry no LID");
        }
        let mut c = Client::new(Replay::new([file("03-res-dump.bin")]));
        let res = c.resources().unwrap();
        for (r, j) in res.iter().zip(json("rdma-res.json").as_array().unwrap()) {
            assert_eq!(r.name, j["ifname"]);
            assert_eq!(r.entries.len(), 7);
            for e in &r.entries {
                assert_eq!(
                    Some(e.value),
                    j[e.name.as_str()].as_u64(),
                    "{} {}",
                    r.name,
                    e.name
                );
            }
        }
    }

    #[test]
    fn hw_counters_match_rdma_statistic() {
        let stat = json("rdma-statistic.json");
        let mut c = Client::new(Replay::new([
            file("05-stat-rxe0-1.bin"),
            file("09-stat-rxe1-1.bin"),
        ]));
        for (dev, j) in stat.as_array().unwrap().iter().enumerate() {
            let s = c.port_stats(dev as u32, 1).unwrap();
            let obj = j.as_object().unwrap();
            let expected = obj.len() - 2; // ifname, port
            assert_eq!(s.counters.len(), expected);
            for n in &s.counters {
                assert_eq!(Some(n.value), obj[&n.name].as_u64(), "{}", n.name);
            }
        }
    }

    #[test]
    fn status_sys_and_empty_bound_counter_dump() {
        let mut c = Client::new(Replay::new([
            file("06-stat-status-rxe0-1.bin"),
            file("01-sys.bin"),
            file("07-stat-qp-dump-rxe0.bin"),
        ]));
        let st = c.stat_status(0, 1).unwrap();
        assert_eq!(st.len(), 15);
        assert!(
            st.iter()
                .enumerate()
                .all(|(i, s)| s.index == i as u32 && s.optional_enabled.is_none())
        );
        let sys = c.sys().unwrap();
        assert_eq!(
            (sys.netns_shared, sys.copy_on_fork),
            (Some(true), Some(true))
        );
        assert!(c.bound_counters(0).unwrap().is_empty());
    }

    /// Every prefix of every recording: an error or a value, never a panic.
    #[test]
    fn every_truncation_is_handled() {
        for entry in std::fs::read_dir(dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "bin") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            for cut in 0..bytes.len() {
                for m in wire::messages(&bytes[..cut]) {
                    let Ok(m) = m else { break };
                    decode_as_every_reply(m.payload);
                }
            }
        }
    }
}
