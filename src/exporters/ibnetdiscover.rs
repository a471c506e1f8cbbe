//! A swept fabric in `ibnetdiscover`'s topology file format, so existing
//! tooling (and operators' eyes) can read it: switches first, then CAs,
//! each in the reverse of discovery order, as ibnetdiscover prints them.

use std::fmt::Write;

use crate::sources::mad::discovery::{
    Fabric, NODE_CA, NODE_SWITCH, Node, PortRecord, speed, width,
};

fn name(n: &Node) -> String {
    let prefix = match n.node_type {
        NODE_SWITCH => 'S',
        NODE_CA => 'H',
        _ => 'R',
    };
    format!("{prefix}-{:016x}", n.guid)
}

fn link_rate(p: Option<&PortRecord>) -> String {
    p.map_or_else(String::new, |p| {
        format!("{}{}", width(p.width_active), speed(p))
    })
}

/// Exit status of `rdma-monitor topology` when the sweep was cut short by
/// `fabric.sweep_budget`: the tree printed is partial.
pub const EXIT_INCOMPLETE: u8 = 4;

/// Why the tree of `f` is partial, when it is: the sweep ran out of time
/// with paths left to explore.
pub fn incomplete(f: &Fabric) -> Option<String> {
    (f.unexplored_paths > 0).then(|| {
        format!(
            "sweep incomplete: fabric.sweep_budget ran out with {} path(s) not explored; the tree is partial",
            f.unexplored_paths
        )
    })
}

/// The topology text; `generated` goes on the "generated on" line.
pub fn render(f: &Fabric, generated: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#\n# Topology file: generated on {generated}\n#");
    let _ = writeln!(
        out,
        "# Initiated from node {:016x} port {:016x}",
        f.local_guid, f.local_port_guid
    );
    let order = |t: u8| f.nodes.iter().rev().filter(move |n| n.node_type == t);
    for n in order(NODE_SWITCH).chain(order(NODE_CA)) {
        let _ = writeln!(
            out,
            "\nvendid={:#x}\ndevid={:#x}\nsysimgguid={:#x}",
            n.vendor_id, n.device_id, n.system_image_guid
        );
        if n.node_type == NODE_SWITCH {
            let p0 = n.port(0);
            let _ = writeln!(out, "switchguid={:#x}({:x})", n.guid, n.guid);
            let _ = writeln!(
                out,
                "Switch\t{} \"{}\"\t\t# \"{}\" {} port 0 lid {} lmc {}",
                n.num_ports,
                name(n),
                n.description,
                if n.enhanced_port0 { "enhanced" } else { "base" },
                p0.map_or(0, |p| p.lid),
                p0.map_or(0, |p| p.lmc)
            );
        } else {
            let _ = writeln!(out, "caguid={:#x}", n.guid);
            let _ = writeln!(
                out,
                "Ca\t{} \"{}\"\t\t# \"{}\"",
                n.num_ports,
                name(n),
                n.description
            );
        }
        for port in 1..=n.num_ports {
            let Some((peer_guid, peer_port)) = f.peer(n.guid, port) else {
                continue;
            };
            let Some(peer) = f.node(peer_guid) else {
                continue;
            };
            let rate = link_rate(n.port(port));
            if n.node_type == NODE_SWITCH {
                let peer_guid_txt = match peer.port(peer_port).and_then(|p| p.guid) {
                    Some(g) if peer.node_type != NODE_SWITCH => format!("({g:x}) "),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "[{port}]\t\"{}\"[{peer_port}]{peer_guid_txt}\t\t# \"{}\" lid {} {rate}",
                    name(peer),
                    peer.description,
                    peer.lid_of(peer_port)
                );
            } else {
                let me = n.port(port);
                let _ = writeln!(
                    out,
                    "[{port}]({:x}) \t\"{}\"[{peer_port}]\t\t# lid {} lmc {} \"{}\" lid {} {rate}",
                    me.and_then(|p| p.guid).unwrap_or(0),
                    name(peer),
                    n.lid_of(port),
                    me.map_or(0, |p| p.lmc),
                    peer.description,
                    peer.lid_of(peer_port)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mad::discovery::Link;

    #[test]
    fn renders_like_ibnetdiscover() {
        let port = |port, lid, guid| PortRecord {
            port,
            lid,
            guid,
            width_active: 2,
            speed_ext_active: 2,
            ..PortRecord::default()
        };
        let f = Fabric {
            nodes: vec![
                Node {
                    guid: 0x0c42_a103_00e1_a010,
                    node_type: NODE_CA,
                    num_ports: 1,
                    system_image_guid: 0x0c42_a103_00e1_a010,
                    vendor_id: 0x2c9,
                    device_id: 0x1017,
                    description: "node01 HCA-1".into(),
                    ports: vec![port(1, 3, Some(0x0c42_a103_00e1_a011))],
                    ..Node::default()
                },
                Node {
                    guid: 0x248a_0703_009c_0a10,
                    node_type: NODE_SWITCH,
                    num_ports: 8,
                    system_image_guid: 0x248a_0703_009c_0a10,
                    vendor_id: 0x2c9,
                    device_id: 0xcf09,
                    description: "MF0;leaf1:MSB7800/U1".into(),
                    enhanced_port0: true,
                    ports: vec![port(0, 1, None), port(1, 0, None)],
                    ..Node::default()
                },
            ],
            links: vec![Link {
                a: (0x248a_0703_009c_0a10, 1),
                b: (0x0c42_a103_00e1_a010, 1),
            }],
            local_guid: 0x0c42_a103_00e1_a010,
            local_port: 1,
            local_port_guid: 0x0c42_a103_00e1_a011,
            ..Fabric::default()
        };
        let text = render(&f, "DATE");
        let want = "#\n# Topology file: generated on DATE\n#\n\
# Initiated from node 0c42a10300e1a010 port 0c42a10300e1a011\n\
\nvendid=0x2c9\ndevid=0xcf09\nsysimgguid=0x248a0703009c0a10\n\
switchguid=0x248a0703009c0a10(248a0703009c0a10)\n\
Switch\t8 \"S-248a0703009c0a10\"\t\t# \"MF0;leaf1:MSB7800/U1\" enhanced port 0 lid 1 lmc 0\n\
[1]\t\"H-0c42a10300e1a010\"[1](c42a10300e1a011) \t\t# \"node01 HCA-1\" lid 3 4xEDR\n\
\nvendid=0x2c9\ndevid=0x1017\nsysimgguid=0xc42a10300e1a010\ncaguid=0xc42a10300e1a010\n\
Ca\t1 \"H-0c42a10300e1a010\"\t\t# \"node01 HCA-1\"\n\
[1](c42a10300e1a011) \t\"S-248a0703009c0a10\"[1]\t\t# lid 3 lmc 0 \"MF0;leaf1:MSB7800/U1\" lid 1 4xEDR\n";
        assert_eq!(text, want);
        // What `topology` prints is what fabric.expected_topology reads back.
        let back = crate::sources::ibnetdiscover::parse(&text).unwrap();
        assert_eq!(back.nodes.len(), 2);
        assert_eq!(back.links.len(), 1);
        assert_eq!(back.links[0].a, (0x0c42_a103_00e1_a010, 1));
        assert_eq!(back.links[0].b, (0x248a_0703_009c_0a10, 1));
        assert_eq!(back.links[0].rate, Some((4, "EDR".to_string())));
    }

    #[test]
    fn a_sweep_cut_short_by_its_budget_is_incomplete() {
        use crate::sources::mad::sim::SimFabric;
        use crate::sources::mad::{Engine, Limits};
        use std::time::Duration;
        let limits = Limits {
            max_outstanding: 4,
            timeout: Duration::from_millis(20),
            retries: 2,
            budget: Duration::from_secs(5),
        };
        let mut e = Engine::new(SimFabric::default(), limits);
        let whole = crate::sources::mad::discovery::sweep(&mut e, Duration::from_secs(60));
        assert_eq!(whole.nodes.len(), 3);
        assert_eq!(incomplete(&whole), None);
        // No time at all: the first path is never explored.
        let mut e = Engine::new(SimFabric::default(), limits);
        let cut = crate::sources::mad::discovery::sweep(&mut e, Duration::ZERO);
        let why = incomplete(&cut).expect("a cut sweep says so");
        assert!(
            why.contains("fabric.sweep_budget") && why.contains("1 path(s)"),
            "{why}"
        );
    }
}
