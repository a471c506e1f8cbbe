//! Fabric discovery by directed-route SMPs, breadth first from the local
//! port: NodeInfo along each path, then NodeDescription, PortInfo of every
//! port and SwitchInfo of switches; switches' active ports lead one hop
//! further. Each level is one engine batch, so the number of MADs in flight
//! stays bounded and the sweep has a time budget.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fields::{self, Field};
use super::layout::{self as mad, MAX_HOPS};
use super::{Engine, MadPort, MadStats, Query, QueryError};

pub const NODE_CA: u8 = 1;
pub const NODE_SWITCH: u8 = 2;
/// PortPhysicalState LinkUp: a neighbour answers behind the port.
const PHYS_LINK_UP: u64 = 5;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PortRecord {
    pub port: u8,
    /// Port GUID (CA ports; a switch's ports share the node GUID).
    pub guid: Option<u64>,
    pub lid: u16,
    pub lmc: u8,
    pub state: u8,
    pub phys_state: u8,
    pub width_active: u8,
    pub speed_active: u8,
    pub speed_ext_active: u8,
    /// What the port can do and is allowed to (PortInfo LinkWidth/Speed/SpeedExt
    /// Supported and Enabled): what a link between two ports should train to.
    pub width_supported: u8,
    pub width_enabled: u8,
    pub speed_supported: u8,
    pub speed_enabled: u8,
    pub speed_ext_supported: u8,
    pub speed_ext_enabled: u8,
    pub capability_mask: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Node {
    pub guid: u64,
    pub node_type: u8,
    pub num_ports: u8,
    pub system_image_guid: u64,
    pub vendor_id: u32,
    pub device_id: u16,
    pub description: String,
    pub enhanced_port0: bool,
    /// Directed route from the local port.
    pub path: Vec<u8>,
    /// The port the sweep first entered this node through.
    pub arrival_port: Option<u8>,
    /// Indexed by port number (switches include port 0).
    pub ports: Vec<PortRecord>,
}

impl Node {
    pub fn port(&self, n: u8) -> Option<&PortRecord> {
        self.ports.iter().find(|p| p.port == n)
    }
    /// The LID a port answers to: switches have one LID, on port 0.
    pub fn lid_of(&self, port: u8) -> u16 {
        if self.node_type == NODE_SWITCH {
            self.port(0).map_or(0, |p| p.lid)
        } else {
            self.port(port).map_or(0, |p| p.lid)
        }
    }
}

/// One cable: both ends as (node GUID, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Link {
    pub a: (u64, u8),
    pub b: (u64, u8),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Fabric {
    /// In discovery order.
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub local_guid: u64,
    pub local_port: u8,
    pub local_port_guid: u64,
    pub mads: MadStats,
    pub duration_seconds: f64,
    /// Queries that failed (timeouts, bad status): the sweep goes on without them.
    pub errors: Vec<String>,
    /// Paths left unexplored when the time budget ran out, a node whose
    /// attributes were not all asked counting as one: 0 for a whole sweep.
    pub unexplored_paths: usize,
}

impl Fabric {
    pub fn node(&self, guid: u64) -> Option<&Node> {
        self.nodes.iter().find(|n| n.guid == guid)
    }
    /// The far end of (guid, port), if cabled.
    pub fn peer(&self, guid: u64, port: u8) -> Option<(u64, u8)> {
        self.links.iter().find_map(|l| {
            if l.a == (guid, port) {
                Some(l.b)
            } else if l.b == (guid, port) {
                Some(l.a)
            } else {
                None
            }
        })
    }
}

/// A field of an attribute by name; 0 when the data is short (never for a full MAD).
pub fn get(data: &[u8], table: &'static [Field], name: &str) -> u64 {
    fields::by_name(table, name)
        .and_then(|f| fields::get(data, f))
        .unwrap_or(0)
}

fn dr(attr: u16, attr_mod: u32, path: &[u8]) -> Option<Query> {
    mad::smp_dr_get(0, attr, attr_mod, path)
        .ok()
        .map(|m| Query {
            mad: m,
            lid: 0xffff,
        })
}

fn port_record(port: u8, data: &[u8]) -> PortRecord {
    let t = fields::PORT_INFO;
    PortRecord {
        port,
        guid: None,
        lid: get(data, t, "LID") as u16,
        lmc: get(data, t, "LMC") as u8,
        state: get(data, t, "PortState") as u8,
        phys_state: get(data, t, "PortPhysicalState") as u8,
        width_active: get(data, t, "LinkWidthActive") as u8,
        speed_active: get(data, t, "LinkSpeedActive") as u8,
        speed_ext_active: get(data, t, "LinkSpeedExtActive") as u8,
        width_supported: get(data, t, "LinkWidthSupported") as u8,
        width_enabled: get(data, t, "LinkWidthEnabled") as u8,
        speed_supported: get(data, t, "LinkSpeedSupported") as u8,
        speed_enabled: get(data, t, "LinkSpeedEnabled") as u8,
        speed_ext_supported: get(data, t, "LinkSpeedExtSupported") as u8,
        speed_ext_enabled: get(data, t, "LinkSpeedExtEnabled") as u8,
        capability_mask: get(data, t, "CapabilityMask") as u32,
    }
}

#[derive(Clone)]
struct Arrival {
    path: Vec<u8>,
    /// (node, port) it was reached from.
    from: Option<(u64, u8)>,
}

/// Sweeps the fabric reachable from the local port.
pub fn sweep<P: MadPort>(engine: &mut Engine<P>, budget: Duration) -> Fabric {
    let started = Instant::now();
    let before = engine.stats();
    let mut fabric = Fabric::default();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut frontier = vec![Arrival {
        path: Vec::new(),
        from: None,
    }];
    // Paths and nodes the engine's own budget kept us from asking about: the
    // sweep was cut short there, it did not fail (a loaded node can use up a
    // tiny budget between the sweep's check and the engine's).
    let mut unsent: Vec<Arrival> = Vec::new();
    let mut nodes_half_read = 0usize;
    while !frontier.is_empty() && started.elapsed() < budget {
        // 1. NodeInfo along every path of this level.
        let queries: Vec<Query> = frontier
            .iter()
            .filter_map(|a| dr(mad::ATTR_NODE_INFO, 0, &a.path))
            .collect();
        let answers = engine.run(&queries);
        let mut new_nodes: Vec<usize> = Vec::new();
        for (arrival, answer) in frontier.iter().zip(answers) {
            let reply = match answer {
                Ok(r) => r,
                Err(QueryError::Budget) => {
                    unsent.push(arrival.clone());
                    continue;
                }
                Err(e) => {
                    fabric
                        .errors
                        .push(format!("NodeInfo via {:?}: {e}", arrival.path));
                    continue;
                }
            };
            let t = fields::NODE_INFO;
            let d = &reply.data;
            let guid = get(d, t, "NodeGUID");
            let local_port = get(d, t, "LocalPortNum") as u8;
            let port_guid = get(d, t, "PortGUID");
            if arrival.from.is_none() {
                fabric.local_guid = guid;
                fabric.local_port = local_port;
                fabric.local_port_guid = port_guid;
            }
            let i = *index.entry(guid).or_insert_with(|| {
                fabric.nodes.push(Node {
                    guid,
                    node_type: get(d, t, "NodeType") as u8,
                    num_ports: get(d, t, "NumPorts") as u8,
                    system_image_guid: get(d, t, "SystemImageGUID"),
                    vendor_id: get(d, t, "VendorID") as u32,
                    device_id: get(d, t, "DeviceID") as u16,
                    path: arrival.path.clone(),
                    arrival_port: Some(local_port),
                    ..Node::default()
                });
                new_nodes.push(fabric.nodes.len() - 1);
                fabric.nodes.len() - 1
            });
            let node = &mut fabric.nodes[i];
            if node.node_type != NODE_SWITCH {
                // A CA's PortGUID belongs to the port we came in through.
                let rec = PortRecord {
                    port: local_port,
                    guid: Some(port_guid),
                    ..PortRecord::default()
                };
                match node.ports.iter_mut().find(|p| p.port == local_port) {
                    Some(p) => p.guid = Some(port_guid),
                    None => node.ports.push(rec),
                }
            }
            if let Some(from) = arrival.from {
                let link = Link {
                    a: from,
                    b: (guid, local_port),
                };
                let dup = fabric
                    .links
                    .iter()
                    .any(|l| (l.a == link.a && l.b == link.b) || (l.a == link.b && l.b == link.a));
                if !dup {
                    fabric.links.push(link);
                }
            }
        }

        // 2. Description, every port's PortInfo and SwitchInfo of the new nodes.
        let mut queries = Vec::new();
        let mut what: Vec<(usize, u16, u8)> = Vec::new();
        for &i in &new_nodes {
            let n = &fabric.nodes[i];
            let mut push = |attr, port: u8| {
                if let Some(q) = dr(attr, u32::from(port), &n.path) {
                    queries.push(q);
                    what.push((i, attr, port));
                }
            };
            push(mad::ATTR_NODE_DESC, 0);
            let first = if n.node_type == NODE_SWITCH { 0 } else { 1 };
            for p in first..=n.num_ports {
                push(mad::ATTR_PORT_INFO, p);
            }
            if n.node_type == NODE_SWITCH {
                push(mad::ATTR_SWITCH_INFO, 0);
            }
        }
        let answers = engine.run(&queries);
        let mut half_read: Vec<usize> = Vec::new();
        for ((i, attr, port), answer) in what.into_iter().zip(answers) {
            let reply = match answer {
                Ok(r) => r,
                Err(QueryError::Budget) => {
                    if !half_read.contains(&i) {
                        half_read.push(i);
                    }
                    continue;
                }
                Err(e) => {
                    fabric.errors.push(format!(
                        "attribute {attr:#06x} port {port} of {:#018x}: {e}",
                        fabric.nodes[i].guid
                    ));
                    continue;
                }
            };
            let node = &mut fabric.nodes[i];
            match attr {
                mad::ATTR_NODE_DESC => {
                    let raw = &reply.data[..mad::SMP_DATA_LEN];
                    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                    node.description = String::from_utf8_lossy(&raw[..end]).into_owned();
                }
                mad::ATTR_SWITCH_INFO => {
                    node.enhanced_port0 =
                        get(&reply.data, fields::SWITCH_INFO, "EnhancedPort0") == 1;
                }
                _ => {
                    let mut rec = port_record(port, &reply.data);
                    if let Some(existing) = node.ports.iter_mut().find(|p| p.port == port) {
                        rec.guid = existing.guid;
                        *existing = rec;
                    } else {
                        node.ports.push(rec);
                    }
                }
            }
        }
        for &i in &new_nodes {
            fabric.nodes[i].ports.sort_by_key(|p| p.port);
        }

        // 3. The next level: out of every switch port that is up, and out of
        //    the local port of the starting node.
        let mut next = Vec::new();
        for &i in &new_nodes {
            let n = &fabric.nodes[i];
            if n.path.len() >= MAX_HOPS {
                continue;
            }
            let exits: Vec<u8> = if n.path.is_empty() && n.node_type != NODE_SWITCH {
                vec![fabric.local_port]
            } else if n.node_type == NODE_SWITCH {
                n.ports
                    .iter()
                    .filter(|p| p.port != 0 && u64::from(p.phys_state) == PHYS_LINK_UP)
                    .map(|p| p.port)
                    .collect()
            } else {
                Vec::new()
            };
            for p in exits {
                // Not back up the cable we came down.
                if n.arrival_port == Some(p) && !n.path.is_empty() {
                    continue;
                }
                let mut path = n.path.clone();
                path.push(p);
                next.push(Arrival {
                    path,
                    from: Some((n.guid, p)),
                });
            }
        }
        frontier = next;
        // A node whose ports were not all read hides the paths beyond it.
        nodes_half_read += half_read.len();
        if !unsent.is_empty() || !half_read.is_empty() {
            break;
        }
    }
    fabric.unexplored_paths = frontier.len() + unsent.len() + nodes_half_read;
    if fabric.unexplored_paths > 0 {
        fabric.errors.push(format!(
            "time budget of {budget:?} used up; {} paths not explored",
            fabric.unexplored_paths
        ));
    }
    let after = engine.stats();
    fabric.mads = MadStats {
        sent: after.sent - before.sent,
        answered: after.answered - before.answered,
        timeouts: after.timeouts - before.timeouts,
        retries: after.retries - before.retries,
        errors: after.errors - before.errors,
    };
    fabric.duration_seconds = started.elapsed().as_secs_f64();
    fabric
}
/// "4x" from LinkWidthActive (IBTA: 1 = 1x, 2 = 4x, 4 = 8x, 8 = 12x, 16 = 2x).
pub fn width(w: u8) -> &'static str {
    match w {
        1 => "1x",
        2 => "4x",
        4 => "8x",
        8 => "12x",
        16 => "2x",
        _ => "?x",
    }
}

/// "EDR" from LinkSpeedExtActive, else LinkSpeedActive.
pub fn speed(p: &PortRecord) -> &'static str {
    match (p.speed_ext_active, p.speed_active) {
        (1, _) => "FDR",
        (2, _) => "EDR",
        (4, _) => "HDR",
        (8, _) => "NDR",
        (_, 1) => "SDR",
        (_, 2) => "DDR",
        (_, 4) => "QDR",
        _ => "?",
    }
}
