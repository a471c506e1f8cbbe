//! Records RDMA netlink replies byte for byte, for the decoder tests and the
//! fuzz corpus: `nlrecord DIR` writes `NN-<command>-<target>.bin` (the raw
//! reply datagrams of each request) into DIR. Run it in the rxe VM
//! (tests/vm/guest-check.sh does) on a quiescent node.

use std::path::PathBuf;

use rdma_monitor::sources::rdma_netlink::{
    Client, NetlinkSocket, NlError, Transport, TransportStats,
};

struct Recording {
    inner: NetlinkSocket,
    dir: PathBuf,
    label: String,
    n: usize,
}

impl Transport for Recording {
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: nlrecord DIR")?);
    std::fs::create_dir_all(&dir)?;
    let mut client = Client::new(Recording {
        inner: NetlinkSocket::open()?,
        dir,
        label: String::new(),
        n: 0,
    });
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
