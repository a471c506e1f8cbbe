//! Reads a topology in `ibnetdiscover`'s file format (infiniband-diags
//! `ibnetdiscover.c`: `out_switch`, `out_ca`, `out_switch_port`,
//! `out_ca_port`; what `rdma-monitor topology` writes): the nodes with their
//! GUID, type, port count and description, and the cables with both ends and
//! the rate the comment gives (`4xEDR`). `fabric.expected_topology` is such a
//! file, saved on a good day.
//!
//! Accepted lines: blank and `#` lines; `vendid=`, `devid=`, `sysimgguid=`;
//! `switchguid=0x…(…)`, `caguid=0x…`, `rtrguid=0x…` (the GUID of the node
//! header that follows); `Switch N "name" # "desc" …`, `Ca N "name" # "desc"`,
//! `Rt N "name" # "desc"`; and port lines `[p](portguid) "peer"[q](guid) # … 4xEDR`
//! under a node. A peer is named by a node header's name (ibnetdiscover
//! writes `S-`/`H-`/`R-` and the GUID in hex; ibsim's topologies use any
//! name). Anything else is an error naming the line: a file operators keep
//! by hand must not be half read in silence.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::file::{self, FileError, Follow};

/// A topology file is a few hundred bytes per port: 4 MiB is ~20k ports.
pub const TOPOLOGY_MAX: usize = file::CONFIG_MAX;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{0}")]
    Read(#[from] FileError),
    #[error("line {line}: {what}")]
    Parse { line: usize, what: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopoNode {
    pub guid: u64,
    /// IBTA NodeType: 1 CA, 2 switch, 3 router.
    pub node_type: u8,
    pub num_ports: u8,
    pub description: String,
}

/// One cable, ends as (node GUID, port), the smaller end first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopoLink {
    pub a: (u64, u8),
    pub b: (u64, u8),
    /// Lanes and speed name from the comment (`4xEDR` → 4, "EDR"), when given.
    pub rate: Option<(u8, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub nodes: Vec<TopoNode>,
    pub links: Vec<TopoLink>,
}

impl Topology {
    pub fn node(&self, guid: u64) -> Option<&TopoNode> {
        self.nodes.iter().find(|n| n.guid == guid)
    }
}

/// Reads and parses the file at `path` (bounded, non-blocking, a FIFO refused).
pub fn read(path: &Path) -> Result<Topology, TopologyError> {
    parse(&file::read_text(path, TOPOLOGY_MAX, Follow::Yes)?)
}

fn hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The text between the first pair of double quotes, and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some((&s[start..start + len], &s[start + len + 1..]))
}

/// `[7]` at the start: the number and the rest.
fn bracketed(s: &str) -> Option<(u8, &str)> {
    let s = s.strip_prefix('[')?;
    let end = s.find(']')?;
    Some((s[..end].trim().parse().ok()?, &s[end + 1..]))
}

/// An optional `(hex)` right at the start.
fn skip_paren(s: &str) -> Option<&str> {
    match s.strip_prefix('(') {
        Some(rest) => {
            let end = rest.find(')')?;
            hex(&rest[..end])?;
            Some(&rest[end + 1..])
        }
        None => Some(s),
    }
}

/// `4xEDR` → (4, "EDR"): the last word of a port line's comment.
fn rate(comment: &str) -> Option<(u8, String)> {
    let word = comment.split_whitespace().last()?;
    let (lanes, speed) = word.split_once('x')?;
    let lanes: u8 = lanes.parse().ok()?;
    let ok = !speed.is_empty() && speed.chars().all(|c| c.is_ascii_alphanumeric());
    ok.then(|| (lanes, speed.to_string()))
}

struct RawPort {
    line: usize,
    node: usize,
    port: u8,
    peer: String,
    peer_port: u8,
    rate: Option<(u8, String)>,
}

/// Parses the text of a topology file.
pub fn parse(text: &str) -> Result<Topology, TopologyError> {
    let err = |line: usize, what: &str| TopologyError::Parse {
        line,
        what: what.to_string(),
    };
    let mut nodes: Vec<TopoNode> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut raw: Vec<RawPort> = Vec::new();
    let mut pending_guid: Option<u64> = None;
    let mut current: Option<usize> = None;
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = l.split_once('=')
            && !l.starts_with('[')
        {
            match key.trim() {
                "vendid" | "devid" | "sysimgguid" => {}
                "switchguid" | "caguid" | "rtrguid" => {
                    let g = value.split('(').next().and_then(hex);
                    pending_guid = Some(g.ok_or_else(|| err(n, "a GUID that is not hex"))?);
                }
                _ => return Err(err(n, &format!("unknown key {:?}", key.trim()))),
            }
            continue;
        }
        let kind = l.split_whitespace().next().unwrap_or_default();
        let node_type = match kind {
            "Switch" => Some(2),
            "Ca" => Some(1),
            "Rt" => Some(3),
            _ => None,
        };
        if let Some(node_type) = node_type {
            let rest = &l[kind.len()..];
            let num_ports: u8 = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| err(n, "a node line without its port count"))?;
            let (name, after) = quoted(rest).ok_or_else(|| err(n, "a node without a name"))?;
            let description = after
                .split_once('#')
                .and_then(|(_, c)| quoted(c))
                .map(|(d, _)| d.to_string())
                .unwrap_or_default();
            let guid = pending_guid
                .take()
                .or_else(|| name.get(2..).and_then(hex))
                .ok_or_else(|| err(n, "a node without switchguid=/caguid= before it"))?;
            if nodes.iter().any(|x| x.guid == guid) {
                return Err(err(n, &format!("node {guid:#018x} twice")));
            }
            names.insert(name.to_string(), nodes.len());
            current = Some(nodes.len());
            nodes.push(TopoNode {
                guid,
                node_type,
                num_ports,
                description,
            });
            continue;
        }
        if l.starts_with('[') {
            let node = current.ok_or_else(|| err(n, "a port line before any node"))?;
            let (port, rest) =
                bracketed(l).ok_or_else(|| err(n, "a port number that is not one"))?;
            let rest = skip_paren(rest).ok_or_else(|| err(n, "a port GUID that is not hex"))?;
            let (peer, rest) = quoted(rest).ok_or_else(|| err(n, "a port without its peer"))?;
            let (peer_port, rest) =
                bracketed(rest).ok_or_else(|| err(n, "a peer without its port"))?;
            let rest = skip_paren(rest).ok_or_else(|| err(n, "a peer GUID that is not hex"))?;
            let rate = rest.split_once('#').and_then(|(_, c)| rate(c));
            if port == 0 || port > nodes[node].num_ports {
                return Err(err(
                    n,
                    &format!("port {port} of a {}-port node", nodes[node].num_ports),
                ));
            }
            raw.push(RawPort {
                line: n,
                node,
                port,
                peer: peer.to_string(),
                peer_port,
                rate,
            });
            continue;
        }
        return Err(err(n, "not a line of an ibnetdiscover topology"));
    }
    // Each cable is listed from both ends: one link per pair of ends.
    type Ends = ((u64, u8), (u64, u8));
    let mut links: BTreeMap<Ends, Option<(u8, String)>> = BTreeMap::new();
    for p in raw {
        let peer = names.get(&p.peer).map(|&i| nodes[i].guid).ok_or_else(|| {
            err(
                p.line,
                &format!("peer {:?} is not a node of the file", p.peer),
            )
        })?;
        let me = (nodes[p.node].guid, p.port);
        let other = (peer, p.peer_port);
        let key = if me <= other {
            (me, other)
        } else {
            (other, me)
        };
        let slot = links.entry(key).or_default();
        if slot.is_none() {
            *slot = p.rate;
        }
    }
    Ok(Topology {
        nodes,
        links: links
            .into_iter()
            .map(|((a, b), rate)| TopoLink { a, b, rate })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../fixtures/ibnetdiscover/ibsim-good.txt");
    const UNLINKED: &str = include_str!("../../fixtures/ibnetdiscover/ibsim-unlinked.txt");

    const LEAF1: u64 = 0x248a_0703_009c_0a10;
    const LEAF2: u64 = 0x248a_0703_009c_0b20;
    const NODE03: u64 = 0x0c42_a103_00e1_a030;

    #[test]
    fn reads_ibnetdiscover_output_of_the_ibsim_fabric() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.nodes.len(), 7);
        // 5 HCA cables (node05 has two) + 2 inter-switch cables.
        assert_eq!(t.links.len(), 8);
        let leaf1 = t.node(LEAF1).unwrap();
        assert_eq!(
            (leaf1.node_type, leaf1.num_ports, leaf1.description.as_str()),
            (2, 8, "MF0;leaf1:MSB7800/U1")
        );
        assert_eq!(t.node(NODE03).unwrap().description, "node03 HCA-1");
        let isl = t
            .links
            .iter()
            .find(|l| l.a == (LEAF1, 7))
            .expect("leaf1[7] is cabled");
        assert_eq!(isl.b, (LEAF2, 7));
        assert_eq!(isl.rate, Some((4, "EDR".to_string())));
        let node02 = t
            .links
            .iter()
            .find(|l| l.b == (LEAF1, 2) || l.a == (LEAF1, 2))
            .unwrap();
        assert_eq!(node02.rate, Some((4, "FDR".to_string())));
    }

    #[test]
    fn the_unlinked_fabric_lacks_exactly_the_pulled_cables() {
        let good = parse(GOOD).unwrap();
        let cut = parse(UNLINKED).unwrap();
        let gone: Vec<_> = good
            .links
            .iter()
            .filter(|l| !cut.links.iter().any(|c| c.a == l.a && c.b == l.b))
            .map(|l| (l.a, l.b))
            .collect();
        assert_eq!(
            gone,
            vec![((NODE03, 1), (LEAF2, 1)), ((LEAF1, 7), (LEAF2, 7))]
        );
        assert!(cut.node(NODE03).is_none());
    }

    #[test]
    fn ibsim_style_names_resolve_through_the_node_headers() {
        let t = parse(
            "switchguid=0x10\nSwitch 2 \"leaf\" # \"a switch\"\n[1] \"host\"[1] # lid 2 4xHDR\n\
             caguid=0x20\nCa 1 \"host\" # \"a host\"\n[1](21) \"leaf\"[1]\n",
        )
        .unwrap();
        assert_eq!(
            t.links,
            vec![TopoLink {
                a: (0x10, 1),
                b: (0x20, 1),
                rate: Some((4, "HDR".into()))
            }]
        );
    }

    #[test]
    fn a_broken_file_names_the_line() {
        for (text, line, what) in [
            ("Switch 8 \"S-zz\" # \"x\"\n", 1, "switchguid"),
            (
                "caguid=0x1\nCa 1 \"H-1\"\n[1] \"nobody\"[1]\n",
                3,
                "not a node",
            ),
            ("caguid=0x1\nCa 1 \"H-1\"\n[9] \"H-1\"[1]\n", 3, "1-port"),
            ("[1] \"x\"[1]\n", 1, "before any node"),
            ("\u{0}garbage\n", 1, "not a line"),
            ("caguid=0xnothex\n", 1, "not hex"),
            ("color=blue\n", 1, "unknown key"),
        ] {
            match parse(text) {
                Err(TopologyError::Parse { line: l, what: w }) => {
                    assert_eq!(l, line, "{text:?}: {w}");
                    assert!(w.contains(what), "{text:?}: {w}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_directory_or_a_missing_file_is_an_error() {
        // file::read_text refuses FIFOs and devices the same way (its tests).
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("EISDIR"), "{e}");
        let e = read(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("ENOENT"), "{e}");
    }
}
