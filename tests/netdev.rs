//! The Ethernet side on real interfaces: a veth pair in a network namespace
//! this test creates gives real SIOCETHTOOL and rtnetlink answers. The
//! agent's statistics must equal `ethtool -S`, its driver info `ethtool -i`,
//! its features `ethtool -k`, its link counters `ip -s -j link`, after
//! traffic. Needs root, iproute2 and ethtool: without them it says so
//! loudly and skips, except under CI, where it fails.

use std::collections::BTreeMap;
use std::process::Command;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_rdma-monitor");

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn available() -> Result<(), String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Err("not root".into());
    }
    for tool in ["ip", "ethtool"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{tool} not installed"));
        }
    }
    Ok(())
}

struct Veth {
    ns: String,
    dev: String,
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.dev]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn veth_matches_ethtool_and_ip() {
    if let Err(why) = available() {
        return common::skip("netdev test (veth against ethtool and ip)", &why);
    }
    let id = std::process::id() % 100_000;
    let v = Veth {
        ns: format!("rmns{id}"),
        dev: format!("rmv{id}a"),
    };
    let peer = format!("rmv{id}b");
    sh(&format!(
        "ip netns add {ns} && ip link add {dev} type veth peer name {peer} && ip link set {peer} netns {ns} \
        && ip addr add 10.201.{a}.1/24 dev {dev} && ip link set {dev} up \
        && ip -n {ns} addr add 10.201.{a}.2/24 dev {peer} && ip -n {ns} link set {peer} up",
        ns = v.ns,
        dev = v.dev,
        a = id % 250
    ));
    // Traffic: UDP datagrams through the pair.
    let sock = std::net::UdpSocket::bind(format!("10.201.{}.1:0", id % 250)).unwrap();
    for _ in 0..200 {
        let _ = sock.send_to(&[7u8; 1000], format!("10.201.{}.2:9", id % 250));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("RDMA_MON_GENERAL__SYSFS_ROOT", empty.path())
        .env("RDMA_MON_NETWORK__NETDEVS", &v.dev)
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nd = &snap["netdevs"][0];
    assert_eq!(nd["name"], v.dev.as_str());

    // ethtool -S
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for line in sh(&format!("ethtool -S {}", v.dev)).lines().skip(1) {
        if let Some((k, val)) = line.trim().split_once(": ") {
            want.insert(k.to_string(), val.trim().parse().unwrap());
        }
    }
    let got: BTreeMap<String, u64> = nd["ethtool_stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["value"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "ethtool -S");

    // ethtool -i
    let info: BTreeMap<String, String> = sh(&format!("ethtool -i {}", v.dev))
        .lines()
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect();
    assert_eq!(nd["drvinfo"]["driver"], info["driver"].as_str());
    assert_eq!(nd["drvinfo"]["version"], info["version"].as_str());
    assert_eq!(
        nd["drvinfo"]["fw_version"],
        info.get("firmware-version").map_or("", |s| s.as_str())
    );

    // ethtool -k: every named feature line the kernel's feature strings cover.
    let k = sh(&format!("ethtool -k {}", v.dev));
    let mut checked = 0;
    for f in nd["features"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let Some(line) = k
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
        else {
            continue;
        };
        let state = line.split_once(": ").unwrap().1;
        assert_eq!(
            state.starts_with("on"),
            f["active"].as_bool().unwrap(),
            "{name}: {line}"
        );
        assert_eq!(
            state.contains("[fixed]"),
            f["fixed"].as_bool().unwrap(),
            "{name}: {line}"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} features compared");

    // ip -s -j link: the IFLA_STATS64 counters.
    let ip: serde_json::Value =
        serde_json::from_str(&sh(&format!("ip -s -j link show {}", v.dev))).unwrap();
    let st = &ip[0]["stats64"];
    let link: BTreeMap<String, u64> = nd["link"]["stats64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    assert!(
        link["tx_bytes"] >= 200 * 1000,
        "traffic counted: {}",
        link["tx_bytes"]
    );
    // ip reads a moment later: equal, but for the odd IPv6 ND/MLD packet in between.
    for (ours, dir, what, slack) in [
        ("tx_bytes", "tx", "bytes", 2000),
        ("tx_packets", "tx", "packets", 20),
        ("rx_bytes", "rx", "bytes", 2000),
    ] {
        let theirs = st[dir][what].as_u64().unwrap();
        assert!(
            link[ours] <= theirs && theirs - link[ours] <= slack,
            "{ours}: agent {}, ip {theirs}",
            link[ours]
        );
    }
    assert_eq!(nd["link"]["mtu"], ip[0]["mtu"]);
    // ethtool netlink: the link state answers on veth (pause and FEC statistics don't).
    assert_eq!(nd["ethtool_nl"]["link_up"], true, "{}", nd["ethtool_nl"]);
    assert!(sh(&format!("ethtool {}", v.dev)).contains("Link detected: yes"));
    eprintln!(
        "netdev {}: {} ethtool stats, {checked} features, link counters equal to ethtool/ip",
        v.dev,
        got.len()
    );
}
