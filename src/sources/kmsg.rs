//! The kernel log, natively: `/dev/kmsg` (Documentation/ABI/testing/dev-kmsg).
//! Opened O_RDONLY|O_NONBLOCK and moved to the end (SEEK_END: only what the
//! kernel logs from now on), one record per read(2), a bounded number of
//! records per cycle; the rest wait in the kernel's ring for the next cycle.
//! A record overwritten before it was read makes read(2) fail with EPIPE;
//! the sequence numbers say how many were lost, and reading goes on.
//! Without permission (`kernel.dmesg_restrict`, no CAP_SYSLOG) open fails
//! with EPERM: the caller says so once.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use crate::model::events::KmsgRecord;

/// The kernel's largest record (CONSOLE_EXT_LOG_MAX, 8 KiB) fits; a read
/// into a smaller buffer would fail with EINVAL.
const RECORD_MAX: usize = 8192 + 256;

#[derive(Debug, thiserror::Error)]
pub enum KmsgError {
    #[error("{}: no permission to read the kernel log ({source}; kernel.dmesg_restrict or no CAP_SYSLOG)", .path.display())]
    Permission {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed kernel log record: {0}")]
    Malformed(&'static str),
}

/// Counts since the reader was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KmsgStats {
    pub read: u64,
    /// Records overwritten in the ring before they were read (sequence gaps).
    pub lost: u64,
    pub malformed: u64,
}

pub struct Kmsg {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// The sequence number expected next; unknown until the first record.
    next_seq: Option<u64>,
    stats: KmsgStats,
}

impl Kmsg {
    /// Opens the log and moves to its end.
    pub fn open(path: &Path) -> Result<Kmsg, KmsgError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => KmsgError::Permission {
                    path: path.to_path_buf(),
                    source,
                },
                _ => KmsgError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        let mut k = Kmsg {
            file,
            path: path.to_path_buf(),
            buf: vec![0; RECORD_MAX],
            next_seq: None,
            stats: KmsgStats::default(),
        };
        k.file.seek(SeekFrom::End(0)).map_err(|e| k.io(e))?;
        Ok(k)
    }

    fn io(&self, source: io::Error) -> KmsgError {
        KmsgError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub fn stats(&self) -> KmsgStats {
        self.stats
    }

    /// Makes up to `max` reads (on /dev/kmsg one record each) into `out`;
    /// returns how many records were read.
    /// Ends early when nothing more is there (EAGAIN), never waits.
    pub fn read_some(&mut self, max: usize, out: &mut Vec<KmsgRecord>) -> Result<usize, KmsgError> {
        let mut n = 0;
        while n < max {
            let got = match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    // Overwritten before it was read: the next record's
                    // sequence number tells how many; count at least one.
                    Some(libc::EPIPE) => {
                        if self.next_seq.is_none() {
                            self.stats.lost += 1;
                        }
                        continue;
                    }
                    _ => return Err(self.io(e)),
                },
            };
            // /dev/kmsg gives one record per read; a plain file (tests) may
            // give several: each is parsed.
            for rec in split_records(&self.buf[..got]) {
                match parse_record(rec) {
                    Ok(r) => {
                        if let Some(want) = self.next_seq
                            && r.seq > want
                        {
                            self.stats.lost += r.seq - want;
                        }
                        self.next_seq = Some(r.seq + 1);
                        self.stats.read += 1;
                        n += 1;
                        out.push(r);
                    }
                    Err(_) => self.stats.malformed += 1,
                }
            }
        }
        Ok(n)
    }
}

/// The records in one buffer: a header line, then continuation lines that
/// begin with a space (the `KEY=value` dictionary).
pub fn split_records(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        loop {
            match rest[end..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    end += i + 1;
                    if rest.get(end) != Some(&b' ') {
                        break;
                    }
                }
                None => {
                    end = rest.len();
                    break;
                }
            }
        }
        let (rec, tail) = rest.split_at(end);
        rest = tail;
        Some(rec)
    })
}

/// `<prefix>,<seq>,<ts_usec>,<flags>[,...];<message>\n[ KEY=value\n]...`;
/// prefix is facility << 3 | level.
pub fn parse_record(rec: &[u8]) -> Result<KmsgRecord, KmsgError> {
    let text = std::str::from_utf8(rec).map_err(|_| KmsgError::Malformed("not UTF-8"))?;
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let (head, message) = first
        .split_once(';')
        .ok_or(KmsgError::Malformed("no ';' after the header"))?;
    let mut fields = head.split(',');
    let mut num = |what: &'static str| -> Result<u64, KmsgError> {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or(KmsgError::Malformed(what))
    };
    let prefix = num("prefix")?;
    let seq = num("sequence number")?;
    let ts_usec = num("timestamp")?;
    let mut device = None;
    for l in lines {
        if let Some(v) = l.strip_prefix(" DEVICE=") {
            device = Some(v.to_string());
        }
    }
    Ok(KmsgRecord {
        seq,
        level: (prefix & 7) as u8,
        facility: (prefix >> 3) as u32,
        ts_usec,
        message: message.to_string(),
        device,
    })
}

#[cfg(test)]
#[path = "kmsg_tests.rs"]
mod tests;
