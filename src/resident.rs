//! The agent's own resident pages: the executable's code and read-only data
//! that startup touched (configuration parsing, discovery, TLS and listener
//! setup) stay mapped for the life of the process, each touch having mapped
//! a 64 KiB fault-around window of the file. [`release_file_pages`] unmaps
//! them once the agent runs steadily; what the next cycles touch is mapped
//! again from the page cache (a minor fault, no disk read), the rest is not.
//!
//! What it does and does not do, so the figure it lowers is not mistaken:
//! the pages leave this process's page tables (VmRSS, `Rss` in smaps), not
//! memory. They stay in the page cache as clean, unmapped file pages: still
//! charged to the cgroup that first read them (`memory.current`,
//! `file` in `memory.stat`), but the first the kernel reclaims under
//! pressure, where mapped executable pages are kept on the active list. A
//! rescan or a reload that runs startup code again maps its pages again
//! until the next release.

use std::io::{self, Read};

/// What a release unmapped: mappings of the executable, and their resident KiB.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub mappings: usize,
    pub kib: u64,
}

/// One mapping of /proc/self/smaps that may be released: read-only, private,
/// of the executable's file, and with no anonymous (copied-on-write) page,
/// so every page of it is the file's bytes and faults back the same.
#[derive(Debug, PartialEq, Eq)]
struct FileMapping {
    start: usize,
    end: usize,
    rss_kib: u64,
}

/// The releasable mappings of the file that holds `anchor` (an address in
/// the executable's code), from the text of /proc/self/smaps.
fn releasable(smaps: &str, anchor: usize) -> Vec<FileMapping> {
    struct Entry<'a> {
        start: usize,
        end: usize,
        perms: &'a str,
        file: Option<(&'a str, &'a str)>,
        rss: u64,
        anon: Option<u64>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // start-end perms offset dev inode [path]
            let perms = f.next().unwrap_or("");
            let _offset = f.next();
            let dev = f.next().unwrap_or("");
            let inode = f.next().unwrap_or("0");
            entries.push(Entry {
                start,
                end,
                perms,
                file: (inode != "0").then_some((dev, inode)),
                rss: 0,
                anon: None,
            });
            continue;
        }
        let Some(e) = entries.last_mut() else {
            continue;
        };
        let kib = f.next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => e.rss = kib.unwrap_or(0),
            "Anonymous:" => e.anon = kib,
            _ => {}
        }
    }
    let Some(exe) = entries
        .iter()
        .find(|e| e.start <= anchor && anchor < e.end)
        .and_then(|e| e.file)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| {
            e.file == Some(exe)
                && e.perms.len() == 4
                && !e.perms.contains('w')
                && e.perms.ends_with('p')
                && e.anon == Some(0)
                && e.rss > 0
        })
        .map(|e| FileMapping {
            start: e.start,
            end: e.end,
            rss_kib: e.rss,
        })
        .collect()
}

/// Unmaps the executable's resident read-only file pages (see the module
/// text); the pages the agent still uses fault back from the page cache.
pub fn release_file_pages() -> io::Result<Released> {
    // Sized for the agent's ~40 mappings, so it is read in a few calls.
    let mut smaps = String::with_capacity(64 * 1024);
    std::fs::File::open("/proc/self/smaps")?.read_to_string(&mut smaps)?;
    let anchor = release_file_pages as fn() -> io::Result<Released> as usize;
    let mut done = Released::default();
    for m in releasable(&smaps, anchor) {
        dontneed(m.start, m.end - m.start)?;
        done.mappings += 1;
        done.kib += m.rss_kib;
    }
    Ok(done)
}

/// Drops the page table entries of `[start, start + len)`, one whole
/// mapping of /proc/self/smaps that is private, read-only, file-backed and
/// holds no anonymous page: no byte of it was ever written here and none can
/// be (no 'w'). The next access faults the file's bytes back from the page
/// cache: the same bytes unless the file was written in place while it runs
/// (refused with ETXTBSY on most kernels; an upgrade renames a new file over
/// the name, which leaves this inode as it is) — the same exposure as any
/// clean page the kernel reclaims under pressure.
fn dontneed(start: usize, len: usize) -> io::Result<()> {
    // SAFETY: no Rust object owns this read-only file mapping (see above):
    // dropping its PTEs changes no byte; code running in it faults back.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
