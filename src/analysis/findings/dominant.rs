//! A port with a warning or critical finding (congestion, errors, drops),
//! where one consumer holds most of the port's user QPs: name it, so the
//! operator knows which job or pod to look at first.

use super::{KeyedHit, Severity, ev};
use crate::model::consumers::OVERFLOW_ID;
use crate::snapshot::Snapshot;

/// "Most": more than half of the QPs attributed on the port.
const SHARE: f64 = 0.5;

pub(super) fn hits(snap: &Snapshot, port_hits: &[KeyedHit]) -> Vec<KeyedHit> {
    let mut out = Vec::new();
    // No consumer holds a QP anywhere (attribution off, or idle).
    if snap.consumers.is_empty() {
        return out;
    }
    // The serious hits on a port (local ports only: fabric hits have none),
    // grouped by port in the order of each port's first.
    let troubled: Vec<(&str, u32, &'static str)> = port_hits
        .iter()
        .filter(|(_, sev, _, _)| *sev <= Severity::Warning)
        .filter_map(|((id, dev, port, _), ..)| Some((dev.as_str(), (*port)?, *id)))
        .collect();
    let places = super::first_appearance(troubled.iter().map(|&(dev, port, _)| (dev, port)));
    let mut ports: Vec<(&str, u32, Vec<&'static str>)> = Vec::new();
    for ((dev, port, id), at) in troubled.into_iter().zip(places) {
        match ports.get_mut(at) {
            Some((_, _, ids)) => ids.push(id),
            None => ports.push((dev, port, vec![id])),
        }
    }
    for (dev, port, ids) in ports {
        let on_port = |c: &crate::model::consumers::Consumer| {
            c.ports
                .iter()
                .filter(|p| p.device == dev && p.port == port)
                .map(|p| p.qps)
                .sum::<u64>()
        };
        let total: u64 = snap.consumers.iter().map(on_port).sum();
        let Some((top, n)) = snap
            .consumers
            .iter()
            .filter(|c| c.id != OVERFLOW_ID)
            .map(|c| (c, on_port(c)))
            .max_by_key(|(_, n)| *n)
        else {
            continue;
        };
        if total == 0 || (n as f64) <= SHARE * total as f64 {
            continue;
        }
        out.push((
            ("port_dominant_consumer", dev.to_string(), Some(port), None),
            Severity::Info,
            format!(
                "{dev}/{port}: {} {} holds {n} of the port's {total} attributed QPs while {} is raised",
                top.kind.as_str(),
                top.id,
                ids.join(", ")
            ),
            ev(&[
                ("consumer_kind", top.kind.as_str().into()),
                ("consumer", top.id.clone().into()),
                ("labels", serde_json::to_value(&top.labels).unwrap_or_default()),
                ("qps", n.into()),
                ("port_qps", total.into()),
                ("findings", ids.into()),
            ]),
        ));
    }
    out
}
