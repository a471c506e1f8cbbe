//! The curated families of `ethtool -S` statistics (PFC and link-level
//! pause, pause storms, drops and marks per priority, PHY health), from the
//! catalog's per-driver tables. Called by the netdev collector for each
//! statistic; what it does not export stays in `rdma_netdev_ethtool_stat`.

use crate::catalog::ethtool::{self, Unit};
use crate::metrics::{Builder, Kind, Value};
use crate::model::Counter;

/// Exports `c` of `netdev` under its curated family; false when it has none.
pub(super) fn export(out: &mut Builder, netdev: &str, c: &Counter) -> bool {
    let Some(hit) = ethtool::lookup(&c.name) else {
        return false;
    };
    let Some(family) = hit.stat.family else {
        return false;
    };
    let index = hit.index.map(|i| i.to_string());
    // netdev, at most two fixed labels, the index and stat: on the stack.
    let mut buf = [("", ""); 5];
    buf[0] = ("netdev", netdev);
    let mut n = 1;
    for l in hit.stat.labels.iter().take(2) {
        buf[n] = *l;
        n += 1;
    }
    if let (Some(label), Some(i)) = (hit.stat.index, index.as_deref()) {
        buf[n] = (label, i);
        n += 1;
    }
    if hit.stat.stat_label {
        buf[n] = ("stat", &c.name);
        n += 1;
    }
    let labels = &buf[..n];
    match hit.stat.unit {
        Unit::Microseconds => out.push(
            family.metric,
            family.help,
            Kind::Counter,
            labels,
            Value::F64(c.value as f64 / 1e6),
        ),
        Unit::Count | Unit::Bits | Unit::Bytes => {
            out.counter(family.metric, family.help, labels, c.value)
        }
    }
    true
}
