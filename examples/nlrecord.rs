//! Records netlink replies byte for byte, for the decoder tests and the fuzz
//! corpus. Run it in the rxe VM (tests/vm/guest-check.sh does) on a quiescent
//! node; each request's raw reply datagrams go to `NN-<command>-<target>.bin`.
//!
//! - `nlrecord DIR`: the RDMA netlink (NLDEV) requests of the agent.
//! - `nlrecord net DIR NETDEV...`: the agent's rtnetlink link dump, and per
//!   netdev its DCB, ethtool netlink (pause, FEC, link state, module EEPROM)
//!   requests; the generic netlink family lookups and the devlink info dump.
//! - `nlrecord res DIR`: per device, the QP, MR, CQ and PD dumps of
//!   attribution (`RES_*_GET`), and the bound-counter dump.

use std::path::PathBuf;

use rdma_monitor::sources::netlink::nldev::Client;
use rdma_monitor::sources::netlink::{
    NetlinkSocket, NlError, NlTransport, TransportStats, dcb, devlink, ethtool_nl, genl, rtnetlink,
};

struct Recording {
    inner: NetlinkSocket,
    dir: PathBuf,
    label: String,
    n: usize,
}

impl Recording {
    fn new(protocol: i32, dir: PathBuf, first: usize) -> Result<Recording, NlError> {
        Ok(Recording {
            inner: NetlinkSocket::open_protocol(protocol)?,
            dir,
            label: String::new(),
            n: first,
        })
    }
}

impl NlTransport for Recording {
    fn exchange(&mut self, request: &[u8], out: &mut Vec<u8>) -> Result<(), NlError> {
        let result = self.inner.exchange(request, out);
        self.n += 1;
        let name = format!("{:02}-{}.bin", self.n, self.label);
        // A failed exchange is recorded too: its NLMSG_ERROR is in `out`.
        std::fs::write(self.dir.join(name), &out).map_err(|source| NlError::Io {
            op: "write",
            source,
        })?;
        result
    }
    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }
}

fn nldev(dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::new(Recording::new(
        rdma_monitor::sys::NETLINK_RDMA as i32,
        dir,
        0,
    )?);
    let label = |c: &mut Client<Recording>, l: String| c.transport_mut().label = l;
    label(&mut client, "sys".into());
    client.sys()?;
    label(&mut client, "get-dump".into());
    let devices = client.devices()?;
    label(&mut client, "res-dump".into());
    client.resources()?;
    for d in &devices {
        label(&mut client, format!("port-dump-{}", d.name));
        let ports = client.ports(d.index)?;
        for p in &ports {
            label(&mut client, format!("stat-{}-{}", d.name, p.port));
            let _ = client.port_stats(d.index, p.port);
            label(&mut client, format!("stat-status-{}-{}", d.name, p.port));
            let _ = client.stat_status(d.index, p.port);
        }
        label(&mut client, format!("stat-qp-dump-{}", d.name));
        let _ = client.bound_counters(d.index);
    }
    Ok(())
}

/// The per-object resource dumps attribution reads, and the bound counters.
fn res(dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    use rdma_monitor::sources::netlink::nldev::res::ResKind;
    let mut client = Client::new(Recording::new(
        rdma_monitor::sys::NETLINK_RDMA as i32,
        dir,
        0,
    )?);
    let label = |c: &mut Client<Recording>, l: String| c.transport_mut().label = l;
    label(&mut client, "get-dump".into());
    let devices = client.devices()?;
    for d in &devices {
        label(&mut client, format!("res-qp-{}", d.name));
        eprintln!(
            "{} QPs: {:?}",
            d.name,
            client.res_qps(d.index).map(|v| v.len())
        );
        for (kind, what) in [
            (ResKind::Mr, "mr"),
            (ResKind::Cq, "cq"),
            (ResKind::Pd, "pd"),
        ] {
            label(&mut client, format!("res-{what}-{}", d.name));
            let r = client.res_objects(d.index, kind).map(|v| v.len());
            eprintln!("{} {what}: {r:?}", d.name);
        }
        label(&mut client, format!("stat-qp-dump-{}", d.name));
        eprintln!("{} bound: {:?}", d.name, client.bound_counters(d.index));
    }
    Ok(())
}

/// The netdev side, with the agent's own request builders. Errors are
/// recorded and reported, not fatal: "not supported" is a reply worth keeping.
fn net(dir: PathBuf, netdevs: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let mut route = Recording::new(libc::NETLINK_ROUTE, dir.clone(), 0)?;
    route.label = "getlink-dump".into();
    let links = rtnetlink::links(&mut route, 1)?;
    eprintln!("RTM_GETLINK: {} links", links.len());
    for (i, nd) in netdevs.iter().enumerate() {
        route.label = format!("getdcb-{nd}");
        let r = dcb::dcb(&mut route, 2 + i as u32, nd);
        eprintln!("RTM_GETDCB {nd}: {r:?}");
    }
    let mut g = Recording::new(libc::NETLINK_GENERIC, dir, route.n)?;
    let mut seq = 100;
    let mut next = || {
        seq += 1;
        seq
    };
    g.label = "getfamily-ethtool".into();
    let ethtool = genl::family_id(&mut g, "ethtool", next())?;
    g.label = "getfamily-devlink".into();
    let devlink = genl::family_id(&mut g, "devlink", next())?;
    eprintln!("families: ethtool {ethtool:?}, devlink {devlink:?}");
    if let Some(f) = devlink {
        g.label = "devlink-info-dump".into();
        let r = genl::run(
            &mut g,
            &devlink::devlink_info_request(f, next()),
            "INFO_GET",
        );
        eprintln!("DEVLINK_CMD_INFO_GET: {r:?}");
    }
    let Some(f) = ethtool else { return Ok(()) };
    type Build = fn(u16, u32, &str) -> Vec<u8>;
    let steps: [(&str, Build); 3] = [
        ("pause", ethtool_nl::pause_request),
        ("fec", ethtool_nl::fec_request),
        ("linkstate", ethtool_nl::linkstate_request),
    ];
    for nd in netdevs {
        for (what, build) in steps {
            g.label = format!("ethtool-{what}-{nd}");
            let r = genl::run(&mut g, &build(f, next(), nd), "ETHTOOL_MSG_GET");
            eprintln!("ETHTOOL {what} {nd}: {r:?}");
        }
        g.label = format!("ethtool-module-eeprom-{nd}");
        let r = genl::run(
            &mut g,
            &ethtool_nl::module_page_request(f, next(), nd, 0x11),
            "ETHTOOL_MSG_MODULE_EEPROM_GET",
        );
        eprintln!("ETHTOOL module page 11h {nd}: {r:?}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: nlrecord DIR | nlrecord net DIR NETDEV... | nlrecord res DIR";
    match args.first().map(String::as_str) {
        Some("net") => {
            let dir = PathBuf::from(args.get(1).ok_or(usage)?);
            std::fs::create_dir_all(&dir)?;
            net(dir, &args[2..])
        }
        Some("res") => {
            let dir = PathBuf::from(args.get(1).ok_or(usage)?);
            std::fs::create_dir_all(&dir)?;
            res(dir)
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            nldev(PathBuf::from(dir))
        }
        None => Err(usage.into()),
    }
}
