//! The Ethernet side of each watched netdev: rtnetlink link counters (one
//! dump for all), ethtool statistics (one GSTATS each), and, at discovery
//! and each rescan, driver info, features, pause and link settings, the
//! transceiver, and the mlx5 ECN switches in `/sys/class/net/<if>/ecn`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::Counter;
use crate::model::netdev::{Module, NetdevReading, NetdevStatic, Standard};
use crate::sources::ethtool::module;
use crate::sources::ethtool::{Ethtool, EthtoolIo, Socket, StatNames};
use crate::sources::file;
use crate::sources::netlink::rtnetlink::{self, Link};
use crate::sources::netlink::{NetlinkSocket, NlTransport, dcb, devlink, ethtool_nl, genl, wire};
use crate::sys;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetdevStats {
    pub ioctls: u64,
    /// ethtool stat names read again because the driver's count changed.
    pub ethtool_stat_name_rereads: u64,
    pub netlink_round_trips: u64,
}

struct Cached {
    /// ethtool stat names, checked against the driver's count each cycle.
    names: StatNames,
    info: Arc<NetdevStatic>,
}

pub struct NetdevSource<E: EthtoolIo = Socket> {
    ethtool: Option<Ethtool<E>>,
    route: Option<NetlinkSocket>,
    /// Generic netlink, with the ethtool and devlink family ids (when the
    /// kernel has them); boxed so that tests can replay it.
    genl: Option<Box<dyn NlTransport>>,
    ethtool_family: Option<u16>,
    devlink_family: Option<u16>,
    devlink: Vec<devlink::DevlinkInfo>,
    /// (netdev, ethtool-netlink command) the driver does not implement: not asked again until a rescan.
    nl_unsupported: std::collections::HashSet<(String, &'static str)>,
    sysfs_root: PathBuf,
    rescan_every: Duration,
    last_rescan: Option<Instant>,
    cache: HashMap<String, Cached>,
    seq: u32,
    /// The ethtool netlink requests of a cycle, and the replies to them
    /// (and before them to the link dump), kept from cycle to cycle.
    nl_batch: Vec<u8>,
    nl_replies: Vec<u8>,
    /// Where each request's replies lie in `nl_replies` (seq, start, end),
    /// sorted by seq: found without walking the whole buffer per request.
    nl_index: Vec<(u32, usize, usize)>,
    /// This cycle's link dump when made ahead of `poll` ([`NetdevSource::dump_links`]).
    dumped: Option<LinkDump>,
    /// The watched netdevs' links of this cycle, by the index of their
    /// name; the storage is kept from cycle to cycle.
    links: Vec<Option<Link>>,
    /// The (ifindex, carrier changes) list of [`NetdevSource::dump_links`],
    /// handed back after the cycle.
    carriers: Vec<(u32, u32)>,
    pub stats: NetdevStats,
}

/// A cycle's link dump, its replies in `nl_replies` until the ethtool batch.
enum LinkDump {
    /// No rtnetlink socket: no links, and no error either.
    NoSocket,
    Failed(String),
    Received {
        seq: u32,
    },
}

/// The seqs of one netdev's ethtool netlink requests in a cycle's batch:
/// the statistic count (STRSET_GET), then pause, FEC and link state.
#[derive(Default, Clone, Copy)]
struct Asked {
    stat_count: Option<u32>,
    steps: [Option<u32>; 3],
}

type Build = fn(u16, u32, &str) -> Vec<u8>;
type Decode =
    fn(&[u8], &mut ethtool_nl::EthtoolNl) -> Result<(), crate::sources::netlink::wire::WireError>;

/// Pause and FEC statistics and the link state, each cycle (what the ioctls lack).
const STEPS: [(Build, Decode, &str); 3] = [
    (
        ethtool_nl::pause_request,
        ethtool_nl::decode_pause,
        "ETHTOOL_MSG_PAUSE_GET",
    ),
    (
        ethtool_nl::fec_request,
        ethtool_nl::decode_fec,
        "ETHTOOL_MSG_FEC_GET",
    ),
    (
        ethtool_nl::linkstate_request,
        ethtool_nl::decode_linkstate,
        "ETHTOOL_MSG_LINKSTATE_GET",
    ),
];

impl NetdevSource<Socket> {
    pub fn open(sysfs_root: &Path, rescan_every: Duration) -> NetdevSource<Socket> {
        NetdevSource::with_io(Socket::open().ok(), sysfs_root, rescan_every)
    }
}

impl<E: EthtoolIo> NetdevSource<E> {
    pub fn with_io(io: Option<E>, sysfs_root: &Path, rescan_every: Duration) -> NetdevSource<E> {
        NetdevSource {
            ethtool: io.map(Ethtool::new),
            route: NetlinkSocket::open_protocol(sys::NETLINK_ROUTE as i32).ok(),
            genl: NetlinkSocket::open_protocol(libc::NETLINK_GENERIC)
                .ok()
                .map(|s| Box::new(s) as Box<dyn NlTransport>),
            ethtool_family: None,
            devlink_family: None,
            devlink: Vec::new(),
            nl_unsupported: std::collections::HashSet::new(),
            sysfs_root: sysfs_root.to_owned(),
            rescan_every,
            last_rescan: None,
            cache: HashMap::new(),
            seq: 0,
            nl_batch: Vec::new(),
            nl_replies: Vec::new(),
            nl_index: Vec::new(),
            dumped: None,
            links: Vec::new(),
            carriers: Vec::new(),
            stats: NetdevStats::default(),
        }
    }

    fn read_static(&mut self, name: &str, errors: &mut Vec<String>) -> Cached {
        let mut info = NetdevStatic::default();
        let mut names = StatNames::default();
        if let Some(e) = &mut self.ethtool {
            let mut note = |r: Result<(), crate::sources::ethtool::EthtoolError>| {
                if let Err(err) = r
                    && !err.is_unsupported()
                {
                    errors.push(err.to_string());
                }
            };
            match e.drvinfo(name) {
                Ok(d) => info.drvinfo = Some(d),
                Err(err) => note(Err(err)),
            }
            match e.stat_names(name) {
                Ok(n) => names = n,
                Err(err) => note(Err(err)),
            }
            match e
                .strings(name, sys::ETH_SS_FEATURES)
                .and_then(|f| e.features(name, &f))
            {
                Ok(f) => info.features = f,
                Err(err) => note(Err(err)),
            }
            match e.pause(name) {
                Ok(p) => info.pause = Some(p),
                Err(err) => note(Err(err)),
            }
            match e.link_settings(name) {
                Ok(l) => info.link_settings = Some(l),
                Err(err) => note(Err(err)),
            }
            match e.module_eeprom(name) {
                Ok((_, eeprom)) => match module::decode(&eeprom) {
                    Ok(mut m) => {
                        if m.standard == Some(Standard::Cmis) {
                            self.add_cmis_pages(name, &mut m);
                        }
                        info.module = Some(m);
                    }
                    Err(err) => info.module_error = Some(err.to_string()),
                },
                Err(err) if err.is_unsupported() => {}
                Err(err) => info.module_error = Some(err.to_string()),
            }
        }
        if let Some(route) = &mut self.route {
            self.seq = self.seq.wrapping_add(1);
            self.stats.netlink_round_trips += 1;
            match dcb::dcb(route, self.seq, name) {
                Ok(d) => info.dcb = d,
                Err(e) => errors.push(e.to_string()),
            }
        }
        let bus = info
            .drvinfo
            .as_ref()
            .map(|d| d.bus_info.clone())
            .unwrap_or_default();
        info.devlink = self
            .devlink
            .iter()
            .find(|d| !bus.is_empty() && d.device == bus)
            .cloned();
        for role in ["np", "rp"] {
            for prio in 0..8u8 {
                let p = self
                    .sysfs_root
                    .join(format!("class/net/{name}/ecn/roce_{role}/enable/{prio}"));
                match file::read_attr(&p) {
                    Ok(v) => info.ecn.push((role, prio, v == "1")),
                    // Only mlx5 has the switches.
                    Err(e) if e.errno() == Some(libc::ENOENT) => {}
                    Err(e) => errors.push(format!("ecn/roce_{role}/enable/{prio}: {e}")),
                }
            }
        }
        Cached {
            names,
            info: Arc::new(info),
        }
    }

    /// One cycle over `names` (ports' netdevs and configured extras).
    pub fn poll(&mut self, names: &[String], now: Instant) -> Vec<NetdevReading> {
        let due = self
            .last_rescan
            .is_none_or(|t| now.duration_since(t) >= self.rescan_every);
        if due {
            self.cache.clear();
            self.last_rescan = Some(now);
            self.rescan_genl();
        }
        // Before the ethtool batch: its replies go where the dump's are.
        let link_error = self.watched_links(names);
        let mut errors: Vec<Vec<String>> = Vec::with_capacity(names.len());
        for name in names {
            let mut e = Vec::new();
            if let Some(l) = &link_error {
                e.push(format!("rtnetlink: {l}"));
            }
            if !self.cache.contains_key(name) {
                let c = self.read_static(name, &mut e);
                self.cache.insert(name.clone(), c);
            }
            errors.push(e);
        }
        let asked = self.ask_ethtool_nl(names, &mut errors);
        let mut out = Vec::with_capacity(names.len());
        for (i, ((name, mut errors), asked)) in names.iter().zip(errors).zip(asked).enumerate() {
            let count = asked.stat_count.and_then(|seq| self.stat_count_answer(seq));
            let cached = self.cache.get_mut(name).expect("inserted above");
            let mut ethtool_stats = Vec::new();
            if let (Some(e), false) = (&mut self.ethtool, cached.names.is_empty()) {
                let values = match count {
                    Some(n) => e.stats_with_count(name, &mut cached.names, n),
                    None => e.stats(name, &mut cached.names),
                };
                match values {
                    Ok(values) => {
                        ethtool_stats = cached
                            .names
                            .by_name(&values)
                            .map(|(n, value)| Counter {
                                name: n.clone(),
                                value,
                            })
                            .collect();
                    }
                    Err(err) if err.is_unsupported() => {}
                    Err(err) => errors.push(err.to_string()),
                }
            }
            let info = cached.info.clone();
            let ethtool_nl = self.ethtool_nl_answer(name, &asked);
            out.push(NetdevReading {
                name: name.clone(),
                link: self.links[i].take(),
                ethtool_stats,
                ethtool_nl,
                info,
                errors,
            });
        }
        if let Some(e) = &self.ethtool {
            self.stats.ioctls = e.calls();
            self.stats.ethtool_stat_name_rereads = e.stat_name_rereads();
        }
        out
    }
}

impl<E: EthtoolIo> NetdevSource<E> {
    /// Every link of the node (one rtnetlink dump), received into
    /// `nl_replies`; a reply that does not decode fails the dump.
    fn link_dump(&mut self) -> LinkDump {
        let Some(route) = &mut self.route else {
            return LinkDump::NoSocket;
        };
        self.seq = self.seq.wrapping_add(1);
        self.stats.netlink_round_trips += 1;
        let seq = self.seq;
        let received = route
            .exchange(&rtnetlink::get_links(seq), &mut self.nl_replies)
            .and_then(|()| self.each_link(seq, |_, _| {}));
        match received {
            Ok(()) => LinkDump::Received { seq },
            Err(e) => LinkDump::Failed(e.to_string()),
        }
    }

    /// Each link of the dump `seq` in `nl_replies`, with its payload.
    fn each_link(
        &self,
        seq: u32,
        mut f: impl FnMut(rtnetlink::LinkHead<'_>, &[u8]),
    ) -> Result<(), crate::sources::netlink::NlError> {
        const CMD: &str = "RTM_GETLINK";
        crate::sources::netlink::for_each_reply(
            &self.nl_replies,
            seq,
            sys::RTM_NEWLINK as u16,
            CMD,
            |p| {
                let head = rtnetlink::link_head(p).map_err(|source| {
                    crate::sources::netlink::NlError::Wire { cmd: CMD, source }
                })?;
                f(head, p);
                Ok(())
            },
        )
    }

    /// This cycle's links of `names` (decoded from the dump, which is made
    /// now unless `dump_links` made it) into `links`; the dump's error.
    fn watched_links(&mut self, names: &[String]) -> Option<String> {
        let mut links = std::mem::take(&mut self.links);
        links.clear();
        links.resize_with(names.len(), || None);
        let error = match self.dumped.take().unwrap_or_else(|| self.link_dump()) {
            LinkDump::NoSocket => None,
            LinkDump::Failed(e) => Some(e),
            LinkDump::Received { seq } => {
                let _ = self.each_link(seq, |head, payload| {
                    if let Some(i) = names.iter().position(|n| *n == head.name) {
                        links[i] = rtnetlink::decode_link(payload).ok();
                    }
                });
                None
            }
        };
        self.links = links;
        error
    }

    /// This cycle's link dump, made before the RDMA sources read (the next
    /// `poll` uses it): each link's (ifindex, carrier changes) where that
    /// count tells a speed change ([`rtnetlink::speed_follows_carrier`], by
    /// the link's kind and the driver GDRVINFO named at the last rescan). A
    /// RoCE port's rate is its netdev's speed (`ib_get_eth_speed`): it is
    /// read again when the count moved (`sysfs`'s rate rule). The list is
    /// the one handed back by [`NetdevSource::keep_carriers`], refilled.
    pub fn dump_links(&mut self) -> Vec<(u32, u32)> {
        let dump = self.link_dump();
        let mut carriers = std::mem::take(&mut self.carriers);
        carriers.clear();
        if let LinkDump::Received { seq } = dump {
            self.carriers_into(seq, &mut carriers);
        }
        self.dumped = Some(dump);
        carriers
    }

    /// The list [`NetdevSource::dump_links`] returned, back for the next
    /// cycle's (its storage kept: no allocation a cycle).
    pub fn keep_carriers(&mut self, carriers: Vec<(u32, u32)>) {
        self.carriers = carriers;
    }

    /// The links of the dump `seq` whose carrier count tells their speed.
    fn carriers_into(&self, seq: u32, carriers: &mut Vec<(u32, u32)>) {
        let _ = self.each_link(seq, |head, _| {
            let driver = self
                .cache
                .get(head.name)
                .and_then(|c| c.info.drvinfo.as_ref())
                .map(|d| d.driver.as_str());
            if let (true, Ok(index), Some(changes)) = (
                rtnetlink::speed_follows_carrier(head.kind, driver),
                u32::try_from(head.index),
                head.carrier_changes,
            ) {
                carriers.push((index, changes));
            }
        });
    }

    /// Family ids and the devlink device list, at rescans.
    fn rescan_genl(&mut self) {
        let Some(g) = &mut self.genl else { return };
        self.seq = self.seq.wrapping_add(1);
        self.ethtool_family = genl::family_id(g, "ethtool", self.seq).ok().flatten();
        self.seq = self.seq.wrapping_add(1);
        self.devlink_family = genl::family_id(g, "devlink", self.seq).ok().flatten();
        self.stats.netlink_round_trips += 2;
        self.devlink.clear();
        self.nl_unsupported.clear();
        if let Some(f) = self.devlink_family.filter(|f| *f != 0) {
            self.seq = self.seq.wrapping_add(1);
            self.stats.netlink_round_trips += 1;
            if let Ok(replies) = genl::run(
                g,
                &devlink::devlink_info_request(f, self.seq),
                "DEVLINK_CMD_INFO_GET",
            ) {
                self.devlink = replies
                    .iter()
                    .filter_map(|p| devlink::decode_devlink_info(p).ok())
                    .collect();
            }
        }
    }

    /// CMIS lane monitors and thresholds, over ethtool netlink (the ioctl stops at 256 bytes).
    fn add_cmis_pages(&mut self, name: &str, m: &mut Module) {
        let (Some(g), Some(f)) = (&mut self.genl, self.ethtool_family) else {
            return;
        };
        let mut pages = Vec::new();
        for page in [0x11u8, 0x02] {
            self.seq = self.seq.wrapping_add(1);
            self.stats.netlink_round_trips += 1;
            let data = genl::run(
                g,
                &ethtool_nl::module_page_request(f, self.seq, name, page),
                "ETHTOOL_MSG_MODULE_EEPROM_GET",
            )
            .ok()
            .and_then(|r| {
                r.first()
                    .and_then(|p| ethtool_nl::decode_module_page(p).ok().flatten())
            });
            pages.push(data);
        }
        module::cmis_pages(m, pages[0].as_deref(), pages[1].as_deref());
    }

    /// Every netdev's ethtool netlink requests of the cycle in one batch
    /// (one sendto; generic netlink answers each message of a send):
    /// the statistic count for the GSTATS buffer, pause, FEC, link state.
    /// A failed batch is an error of each netdev it left unanswered, whose
    /// requests are then sent again one at a time.
    fn ask_ethtool_nl(&mut self, names: &[String], errors: &mut [Vec<String>]) -> Vec<Asked> {
        let mut asked = vec![Asked::default(); names.len()];
        self.nl_index.clear();
        let (Some(g), Some(f)) = (&mut self.genl, self.ethtool_family) else {
            return asked;
        };
        self.nl_batch.clear();
        for (name, a) in names.iter().zip(&mut asked) {
            let counted = self.cache.get(name).is_some_and(|c| !c.names.is_empty());
            if counted && self.ethtool.is_some() {
                self.seq = self.seq.wrapping_add(1);
                self.nl_batch.extend(ethtool_nl::strset_count_request(
                    f,
                    self.seq,
                    name,
                    sys::ETH_SS_STATS,
                ));
                a.stat_count = Some(self.seq);
            }
            for (step, (build, _, cmd)) in a.steps.iter_mut().zip(STEPS) {
                if self.nl_unsupported.contains(&(name.to_string(), cmd)) {
                    continue;
                }
                self.seq = self.seq.wrapping_add(1);
                self.nl_batch.extend(build(f, self.seq, name));
                *step = Some(self.seq);
            }
        }
        if self.nl_batch.is_empty() {
            return asked;
        }
        let requests = wire::messages(&self.nl_batch).count() as u64;
        self.stats.netlink_round_trips += requests;
        if let Err(e) = g.batch(&self.nl_batch, &mut self.nl_replies) {
            // What was answered before the failure stays in `nl_replies`.
            self.ask_unanswered(&asked, errors, &e);
        }
        self.index_replies();
        asked
    }

    /// One walk over the cycle's replies: where each seq's replies lie.
    fn index_replies(&mut self) {
        let base = self.nl_replies.as_ptr() as usize;
        self.nl_index.clear();
        for frame in wire::frames(&self.nl_replies) {
            let start = frame.as_ptr() as usize - base;
            let seq = u32::from_ne_bytes([frame[8], frame[9], frame[10], frame[11]]);
            self.nl_index.push((seq, start, start + frame.len()));
        }
        self.nl_index.sort_unstable();
        // One range per seq, from its first reply to its last.
        self.nl_index.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.2 = first.2.max(later.2);
            }
            same
        });
    }

    /// After a failed batch: each netdev with a request left unanswered
    /// gets the batch's error, and those requests are sent again one at a
    /// time, until one fails short of a kernel answer (the socket is
    /// unwell: each further try could wait the receive timeout). What stays
    /// unanswered is absent, the error says why; the statistic count then
    /// comes from the ioctls.
    fn ask_unanswered(
        &mut self,
        asked: &[Asked],
        errors: &mut [Vec<String>],
        batch_error: &crate::sources::netlink::NlError,
    ) {
        let Some(g) = &mut self.genl else { return };
        let seqs = |a: &Asked| {
            a.stat_count
                .into_iter()
                .chain(a.steps.into_iter().flatten())
        };
        let answered: std::collections::HashSet<u32> = wire::messages(&self.nl_replies)
            .map_while(Result::ok)
            .map(|m| m.seq)
            .collect();
        let mut failed = false;
        let mut one = Vec::new();
        for (a, errors) in asked.iter().zip(errors) {
            let unanswered: Vec<u32> = seqs(a).filter(|s| !answered.contains(s)).collect();
            if unanswered.is_empty() {
                continue;
            }
            errors.push(format!("ethtool netlink batch: {batch_error}"));
            for request in wire::frames(&self.nl_batch) {
                let seq = wire::messages(request)
                    .next()
                    .and_then(|m| m.ok())
                    .map(|m| m.seq);
                if failed || !seq.is_some_and(|s| unanswered.contains(&s)) {
                    continue;
                }
                self.stats.netlink_round_trips += 1;
                match g.exchange(request, &mut one) {
                    Ok(()) | Err(crate::sources::netlink::NlError::Kernel { .. }) => {
                        self.nl_replies.extend_from_slice(&one);
                    }
                    Err(e) => {
                        errors.push(format!("ethtool netlink, asked alone: {e}"));
                        failed = true;
                    }
                }
            }
        }
    }

    /// The payloads (after genlmsghdr) of the replies to `seq` in this
    /// cycle's batch; `Ok(false)` when it has none (not answered).
    fn each_answer(
        &self,
        seq: u32,
        cmd: &'static str,
        mut f: impl FnMut(&[u8]),
    ) -> Result<bool, crate::sources::netlink::NlError> {
        let Some(family) = self.ethtool_family else {
            return Ok(false);
        };
        let mut seen = false;
        // The indexed range of this seq; an unindexed seq (replies past a
        // malformed one) is looked for in the whole buffer, as before.
        let replies = match self.nl_index.binary_search_by_key(&seq, |e| e.0) {
            Ok(i) => &self.nl_replies[self.nl_index[i].1..self.nl_index[i].2],
            Err(_) => &self.nl_replies[..],
        };
        crate::sources::netlink::for_each_reply(replies, seq, family, cmd, |p| {
            seen = true;
            if let Some(body) = p.get(genl::GENL_HDR..) {
                f(body);
            }
            Ok(())
        })?;
        Ok(seen)
    }

    /// The driver's statistic count now, from this cycle's STRSET_GET.
    fn stat_count_answer(&self, seq: u32) -> Option<u32> {
        let mut count = None;
        let answered = self.each_answer(seq, "ETHTOOL_MSG_STRSET_GET", |p| {
            count = ethtool_nl::decode_strset_count(p, sys::ETH_SS_STATS).ok();
        });
        answered.ok().filter(|&a| a).and(count)
    }

    fn ethtool_nl_answer(&mut self, name: &str, asked: &Asked) -> Option<ethtool_nl::EthtoolNl> {
        let mut out = ethtool_nl::EthtoolNl::default();
        let mut any = false;
        for (seq, (_, decode, cmd)) in asked.steps.iter().zip(STEPS) {
            let Some(seq) = *seq else { continue };
            match self.each_answer(seq, cmd, |p| any |= decode(p, &mut out).is_ok()) {
                Ok(_) => {}
                // EOPNOTSUPP (veth has no pause or FEC): absent, and not asked each cycle.
                Err(e) if e.is_unsupported() => {
                    self.nl_unsupported.insert((name.to_string(), cmd));
                }
                Err(_) => {}
            }
        }
        any.then_some(out)
    }
}

/// mlx5's DCQCN parameters, read from debugfs `mlx5/<PCI address>/cc_params/`:
/// one decimal value per file, named as `mlx5_ib_dbg_cc_name[]` in
/// drivers/infiniband/hw/mlx5/cong.c (rp_* reaction point, np_* notification
/// point, rtt_resp_* general), created by `mlx5_ib_init_cong_debugfs` under
/// the device's debugfs directory.
#[derive(Debug, Default, PartialEq)]
pub struct CcParams {
    pub values: std::collections::BTreeMap<String, u64>,
    /// (file name, reason) of the files that did not read or parse.
    pub errors: Vec<(String, String)>,
}

/// Reads `dir` (a `cc_params/`). `Err` when the directory cannot be listed
/// (ENOENT: no debugfs there; EACCES: debugfs is root's) or a file is denied.
pub fn read_cc_params(dir: &Path) -> Result<CcParams, file::FileError> {
    let mut out = CcParams::default();
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        match file::read_attr(&e.path()) {
            Ok(v) => match v.parse() {
                Ok(n) => {
                    out.values.insert(name, n);
                }
                Err(_) => out.errors.push((name, format!("not a number: {v:.40}"))),
            },
            Err(e) if matches!(e.errno(), Some(libc::EACCES | libc::EPERM)) => return Err(e),
            Err(e) => out.errors.push((name, e.to_string())),
        }
    }
    out.errors.sort();
    Ok(out)
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    /// DCQCN parameters from a debugfs-like tree: values by name, a bad file
    /// is an error for that file only, a missing directory an ENOENT.
    #[test]
    fn dcqcn_parameters() {
        let d = tempfile::tempdir().unwrap();
        for (n, v) in [
            ("rp_ai_rate", "5\n"),
            ("rp_min_rate", "1\n"),
            ("np_cnp_dscp", "48\n"),
            ("garbage", "x\n"),
        ] {
            std::fs::write(d.path().join(n), v).unwrap();
        }
        std::os::unix::fs::symlink("/dev/zero", d.path().join("rp_gd")).unwrap();
        let got = read_cc_params(d.path()).unwrap();
        let values: Vec<(&str, u64)> = got.values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            values,
            [("np_cnp_dscp", 48), ("rp_ai_rate", 5), ("rp_min_rate", 1)]
        );
        assert_eq!(got.errors[0], ("garbage".into(), "not a number: x".into()));
        assert_eq!(got.errors[1].0, "rp_gd");
        assert!(got.errors[1].1.starts_with("ELOOP"), "{:?}", got.errors);
        let e = read_cc_params(&d.path().join("none")).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
    }

    /// mlx5's `ecn/roce_np|roce_rp/enable/<prio>` switches, from a sysfs tree.
    #[test]
    fn ecn_switches_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        for (role, prio, v) in [("np", 3, "1\n"), ("rp", 3, "1\n"), ("np", 0, "0\n")] {
            let d = root
                .path()
                .join(format!("class/net/eth2/ecn/roce_{role}/enable"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(prio.to_string()), v).unwrap();
        }
        let mut src: NetdevSource<Socket> =
            NetdevSource::with_io(None, root.path(), Duration::from_secs(60));
        let r = src.poll(&["eth2".to_string()], Instant::now());
        let mut ecn = r[0].info.ecn.clone();
        ecn.sort();
        assert_eq!(ecn, [("np", 0, false), ("np", 3, true), ("rp", 3, true)]);
    }

    /// A generic netlink transport whose batches answer their first request
    /// and then fail (as the socket does when a receive times out); single
    /// exchanges replay the recorded replies.
    struct BatchFails(crate::sources::netlink::Replay);

    impl NlTransport for BatchFails {
        fn exchange(
            &mut self,
            request: &[u8],
            out: &mut Vec<u8>,
        ) -> Result<(), crate::sources::netlink::NlError> {
            self.0.exchange(request, out)
        }
        fn stats(&self) -> crate::sources::netlink::TransportStats {
            self.0.stats()
        }
        fn batch(
            &mut self,
            requests: &[u8],
            out: &mut Vec<u8>,
        ) -> Result<(), crate::sources::netlink::NlError> {
            out.clear();
            let first = wire::frames(requests).next().unwrap();
            let mut one = Vec::new();
            match self.0.exchange(first, &mut one) {
                Ok(()) | Err(crate::sources::netlink::NlError::Kernel { .. }) => {
                    out.extend_from_slice(&one)
                }
                Err(e) => return Err(e),
            }
            Err(crate::sources::netlink::NlError::Io {
                op: "recv",
                source: std::io::Error::from_raw_os_error(libc::EAGAIN),
            })
        }
    }

    /// A failed ethtool-netlink batch is an error of each netdev it left
    /// unanswered, and their requests are asked again one at a time (the
    /// recorded veth replies: pause and FEC EOPNOTSUPP, link up). When the
    /// one-at-a-time exchange fails too, the values are absent and the
    /// errors say why.
    #[test]
    fn a_failed_ethtool_netlink_batch_is_reported_and_asked_again() {
        use crate::sources::netlink::recorded_net;
        let replies = [
            "06-getfamily-ethtool.bin",
            "07-getfamily-devlink.bin",
            "08-devlink-info-dump.bin",
            // The batch answers veth0's pause, then fails.
            "09-ethtool-pause-veth0.bin",
            // Asked again alone: the rest of veth0's and all of veth1's.
            "10-ethtool-fec-veth0.bin",
            "11-ethtool-linkstate-veth0.bin",
            "13-ethtool-pause-veth1.bin",
            "14-ethtool-fec-veth1.bin",
            "15-ethtool-linkstate-veth1.bin",
        ]
        .map(recorded_net);
        let root = tempfile::tempdir().unwrap();
        let mut src: NetdevSource<Socket> =
            NetdevSource::with_io(None, root.path(), Duration::from_secs(60));
        src.route = None;
        src.genl = Some(Box::new(BatchFails(
            crate::sources::netlink::Replay::new(replies).protocol(libc::NETLINK_GENERIC),
        )));
        let names = ["veth0".to_string(), "veth1".to_string()];
        let now = Instant::now();
        let r = src.poll(&names, now);
        for n in &r {
            let link = n.ethtool_nl.as_ref().map(|e| e.link_up);
            assert_eq!(link, Some(Some(true)), "{}: answered alone", n.name);
            assert_eq!(n.errors.len(), 1, "{}: {:?}", n.name, n.errors);
            assert!(
                n.errors[0].starts_with("ethtool netlink batch: netlink recv: "),
                "{:?}",
                n.errors
            );
        }
        // Pause and FEC are unsupported on veth: only the link states are
        // asked now, and the replay has nothing left: the batch fails at
        // once, the first request asked alone fails too, nothing more is sent.
        let before = src.genl.as_ref().unwrap().stats().round_trips;
        let r = src.poll(&names, now + Duration::from_secs(1));
        assert!(r.iter().all(|n| n.ethtool_nl.is_none()));
        assert_eq!(r[0].errors.len(), 2, "{:?}", r[0].errors);
        assert!(r[0].errors[1].starts_with("ethtool netlink, asked alone: netlink replay"));
        assert_eq!(r[1].errors.len(), 1, "{:?}", r[1].errors);
        assert!(r[1].errors[0].starts_with("ethtool netlink batch: netlink replay"));
        assert_eq!(src.genl.as_ref().unwrap().stats().round_trips - before, 2);
    }

    /// Of the recorded link dump (lo, veth0, veth1, dummy0), the carrier
    /// count stands for the speed of veth (fixed) and of a driver known to
    /// count every retrain (here lo, as if GDRVINFO had said mlx5_core);
    /// a paravirtual driver, an unknown one and a stacked link are left out
    /// (their rate is read every cycle). The list's storage is kept.
    #[test]
    fn only_veth_and_drivers_that_count_every_retrain_give_a_carrier() {
        use crate::model::netdev::DrvInfo;
        let root = tempfile::tempdir().unwrap();
        let mut src: NetdevSource<Socket> =
            NetdevSource::with_io(None, root.path(), Duration::from_secs(60));
        src.nl_replies = crate::sources::netlink::recorded_net("01-getlink-dump.bin");
        let seq = u32::from_ne_bytes(src.nl_replies[8..12].try_into().unwrap());
        let mut index = HashMap::new();
        src.each_link(seq, |h, _| {
            index.insert(h.index as u32, h.name.to_string());
        })
        .unwrap();
        let named = |src: &NetdevSource<Socket>| {
            let mut out = Vec::new();
            src.carriers_into(seq, &mut out);
            let mut names: Vec<String> = out.iter().map(|(i, _)| index[i].clone()).collect();
            names.sort();
            names
        };
        // No driver known yet (before the first rescan read GDRVINFO).
        assert_eq!(named(&src), ["veth0", "veth1"]);
        let with_driver = |driver: &str| Cached {
            names: StatNames::default(),
            info: Arc::new(NetdevStatic {
                drvinfo: Some(DrvInfo {
                    driver: driver.into(),
                    ..DrvInfo::default()
                }),
                ..NetdevStatic::default()
            }),
        };
        for driver in ["virtio_net", "hv_netvsc", "ice"] {
            src.cache.insert("lo".into(), with_driver(driver));
            assert_eq!(named(&src), ["veth0", "veth1"], "{driver}");
        }
        src.cache.insert("lo".into(), with_driver("mlx5_core"));
        src.cache.insert("dummy0".into(), with_driver("mlx5_core"));
        assert_eq!(named(&src), ["lo", "veth0", "veth1"]);
        // Handed back, the list is refilled in place.
        let kept = Vec::with_capacity(64);
        let at = kept.as_ptr();
        src.keep_carriers(kept);
        src.route = None;
        let carriers = src.dump_links();
        assert_eq!((carriers.as_ptr(), carriers.capacity()), (at, 64));
    }
}
