//! `/dev/infiniband/umadN` without libibumad: open, register one agent per
//! management class (`IB_USER_MAD_REGISTER_AGENT`), write a 56-byte
//! `ib_user_mad_hdr_old` followed by the MAD, poll, read.
//!
//! Only `open`, `ioctl`, `write`, `poll`, `read`, `close` from libc are used,
//! which is also all the ibsim `umad2sim` preload intercepts.

use std::ffi::CString;
use std::io;
use std::time::Duration;

use super::layout::MAD_SIZE;
use super::{MadPort, Outgoing, Received};
use crate::sys;

/// The pre-P_Key-index header (56 bytes): what the kernel uses unless
/// IB_USER_MAD_ENABLE_PKEY is called, and all umad2sim understands.
const HDR: usize = std::mem::size_of::<sys::ib_user_mad_hdr_old>();
const _: () = assert!(HDR == 56);

nix::ioctl_readwrite!(
    register_agent,
    sys::IB_IOCTL_MAGIC,
    1,
    sys::ib_user_mad_reg_req
);

pub struct Umad {
    fd: i32,
    /// Agent id per management class, as the kernel assigned them.
    agents: Vec<(u8, u32)>,
    buf: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct UmadError {
    pub op: &'static str,
    pub path: String,
    #[source]
    pub source: io::Error,
}

impl Umad {
    /// Opens the device and registers agents for `classes` (0x01/0x81 on QP0, 0x04 on QP1).
    pub fn open(path: &str, classes: &[u8]) -> Result<Umad, UmadError> {
        let err = |op, source| UmadError {
            op,
            path: path.to_string(),
            source,
        };
        let c = CString::new(path)
            .map_err(|_| err("open", io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: `c` is NUL-terminated. libc::open, not std: the ibsim preload
        // intercepts `open` but not `open64`.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR) };
        if fd < 0 {
            return Err(err("open", io::Error::last_os_error()));
        }
        let mut umad = Umad {
            fd,
            agents: Vec::new(),
            buf: vec![0; HDR + MAD_SIZE],
        };
        for &class in classes {
            let mut req = sys::ib_user_mad_reg_req {
                qpn: if class == super::layout::CLASS_PERF {
                    1
                } else {
                    0
                },
                mgmt_class: class,
                mgmt_class_version: 1,
                ..Default::default()
            };
            // SAFETY: `req` is a valid ib_user_mad_reg_req for this ioctl; the
            // kernel writes the agent id back into it.
            unsafe { register_agent(fd, &mut req) }
                .map_err(|e| err("IB_USER_MAD_REGISTER_AGENT", io::Error::from(e)))?;
            umad.agents.push((class, req.id));
        }
        Ok(umad)
    }

    fn agent(&self, class: u8) -> Option<u32> {
        self.agents
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, id)| *id)
    }
}

impl Drop for Umad {
    fn drop(&mut self) {
        // SAFETY: the fd is ours and closed once.
        unsafe { libc::close(self.fd) };
    }
}

impl MadPort for Umad {
    fn send(&mut self, out: &Outgoing) -> io::Result<()> {
        let class = out.mad[1];
        let agent = self.agent(class).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no agent for class {class:#04x}"),
            )
        })?;
        let mut hdr = sys::ib_user_mad_hdr_old {
            id: agent,
            timeout_ms: out.timeout_ms,
            retries: 0,
            lid: out.lid.to_be(),
            ..Default::default()
        };
        if class == super::layout::CLASS_PERF {
            hdr.qpn = 1u32.to_be();
            hdr.qkey = 0x8001_0000u32.to_be(); // the well-known GSI Q_Key
        }
        let mut frame = [0u8; HDR + MAD_SIZE];
        // SAFETY: ib_user_mad_hdr_old is plain old data of exactly HDR bytes.
        let hdr_bytes = unsafe {
            std::slice::from_raw_parts((&hdr as *const sys::ib_user_mad_hdr_old).cast::<u8>(), HDR)
        };
        frame[..HDR].copy_from_slice(hdr_bytes);
        frame[HDR..].copy_from_slice(&out.mad);
        // SAFETY: `frame` is valid for reads of its length.
        let n = unsafe { libc::write(self.fd, frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&mut self, wait: Duration) -> io::Result<Option<Received>> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd. (Under umad2sim, poll must come before read.)
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(e)
            };
        }
        if rc == 0 {
            return Ok(None);
        }
        // SAFETY: `self.buf` is valid for writes of its length.
        let n = unsafe { libc::read(self.fd, self.buf.as_mut_ptr().cast(), self.buf.len()) };
        // umad2sim returns -11 without errno when nothing is queued: any negative is "nothing".
        if n < HDR as isize {
            return Ok(None);
        }
        let hdr = self.buf.as_ptr().cast::<sys::ib_user_mad_hdr_old>();
        // SAFETY: the first HDR bytes are an ib_user_mad_hdr_old as the kernel wrote it.
        let hdr = unsafe { std::ptr::read_unaligned(hdr) };
        Ok(Some(Received {
            status: hdr.status,
            mad: self.buf[HDR..n as usize].to_vec(),
        }))
    }
}
