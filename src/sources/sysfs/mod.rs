//! `/sys/class/infiniband`: devices, ports, PMA counters (`counters/`),
//! driver counters (`hw_counters/`), the GID table and the port's netdev.
//!
//! Decoding only: values come out typed, absent ones as `None` or left out of
//! the lists, never as 0. Static attributes (firmware, GUIDs, GIDs, LIDs, the
//! list of counter files) are read at discovery and every rescan; a cycle
//! reads only what moves (state, physical state, rate, counters). A file that
//! is unsupported (EINVAL, EOPNOTSUPP, `N/A (no PMA)`) is not read again until
//! its device is rediscovered from scratch; one that is missing (ENOENT: a
//! devlink reload, a driver restart) or fails otherwise is retried at the next
//! rescan, so a broken attribute never costs a read (and a kernel log line)
//! per cycle, and a transient one comes back.
//!
//! Every attribute is opened non-blocking, never through a symlink, must be a
//! regular file and is read into one page: a FIFO, a device node or an
//! endless file in the tree is an error for that attribute, not a hang.

mod dir;
pub mod parse;

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sources::file::{self, FileError, errno_text};
use dir::Dir;
pub use parse::ParseError;

use crate::model::{
    Counter, DeviceFilter, DeviceInfo, DeviceReading, Enumerated, GidEntry, NodeReading, PortInfo,
    PortOrigin, PortReading, Rate, ReadError,
};

/// Ports whose state and hw counters another source has read this cycle.
/// A netdev's (ifindex, carrier changes) this cycle.
type Carrier = (u32, u32);

#[derive(Debug, Clone, Default)]
pub struct Covered {
    /// Ports whose state and hw counters another source read, with the
    /// state it read and, where it tells a speed change, the port's netdev
    /// this cycle as netlink named it: (ifindex, carrier changes).
    ports: Vec<(String, u32, u8, Option<Carrier>)>,
    /// Ports whose PMA counters (`counters/`) were read by MAD.
    pma: Vec<(String, u32)>,
    /// Every RDMA device the kernel listed this cycle (the filter applied),
    /// by name and kernel index, when another source listed them completely
    /// (RDMA netlink's device dump).
    devices: Option<Vec<(String, u32)>>,
}

impl Covered {
    pub fn insert_pma(&mut self, device: &str, port: u32) {
        self.pma.push((device.to_string(), port));
    }
    pub fn covers_pma(&self, device: &str, port: u32) -> bool {
        self.pma.iter().any(|(d, p)| d == device && *p == port)
    }
    /// `state`: the port state the other source read this cycle.
    pub fn insert(&mut self, device: &str, port: u32, state: u8) {
        self.ports.push((device.to_string(), port, state, None));
    }
    /// The port's netdev this cycle, (ifindex, carrier changes), where that
    /// count tells a speed change (the rtnetlink link dump made before
    /// sysfs), noted on the port [`Covered::insert`] put in (no allocation:
    /// it is made for every RoCE port every cycle). Only a covered port's
    /// rate can stand (`read_device`): another port's carrier is dropped.
    pub fn set_carrier(&mut self, device: &str, port: u32, carrier: (u32, u32)) {
        if let Some(p) = self
            .ports
            .iter_mut()
            .find(|(d, p, ..)| d == device && *p == port)
        {
            p.3 = Some(carrier);
        }
    }
    fn carrier_of(&self, device: &str, port: u32) -> Option<(u32, u32)> {
        self.ports
            .iter()
            .find(|(d, p, ..)| d == device && *p == port)
            .and_then(|(.., c)| *c)
    }
    pub fn covers(&self, device: &str, port: u32) -> bool {
        self.state_of(device, port).is_some()
    }
    fn state_of(&self, device: &str, port: u32) -> Option<u8> {
        self.ports
            .iter()
            .find(|(d, p, ..)| d == device && *p == port)
            .map(|(_, _, s, _)| *s)
    }
    /// The kernel's whole device list this cycle (name, index), as another source read it.
    pub fn set_devices(&mut self, devices: Vec<(String, u32)>) {
        self.devices = Some(devices);
    }
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.pma.is_empty()
    }
}

/// Reads and syscalls made by the source, for self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    pub file_reads: u64,
    pub read_failures: u64,
    pub rescans: u64,
    /// System calls made: 4 per attribute read (openat, fstat, read, close),
    /// 1 per re-read of a held attribute, 4 per directory listing, 2 per
    /// directory held open.
    pub syscalls: u64,
}

/// How a failed read is treated.
enum Failure {
    /// The driver does not provide the attribute: not read again until the
    /// device is rediscovered from scratch.
    Unsupported,
    /// The file is not there (ENOENT): absent until the next rescan, which
    /// tries it again. A device being reloaded loses its files for a moment.
    Missing,
    /// Anything else: counted as an error, retried at the next rescan.
    Error(String),
}

fn classify(e: &FileError) -> Failure {
    match e.errno() {
        Some(libc::ENOENT) => Failure::Missing,
        // ENOSYS and the kernel-internal ENOTSUPP (524) say the same as EOPNOTSUPP.
        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS | 524) => Failure::Unsupported,
        _ => Failure::Error(e.to_string()),
    }
}

/// An attribute's bytes as text for `parse`: not UTF-8 and the kernel's
/// "not available" texts are failures of their own.
fn text<T>(bytes: &[u8], parse: impl FnOnce(&str) -> Result<T, ParseError>) -> Result<T, Failure> {
    match std::str::from_utf8(bytes) {
        Ok(text) => match parse::classify(text) {
            parse::Text::NotAvailable => Err(Failure::Unsupported),
            parse::Text::Value(v) => parse(v).map_err(|e| Failure::Error(e.to_string())),
        },
        Err(_) => Err(Failure::Error(FileError::NotText.to_string())),
    }
}

/// A device's attributes left out: the unsupported ones, and among them the
/// missing ones, which are forgotten (so tried again) at every rescan.
#[derive(Debug, Default)]
struct Absent {
    paths: HashSet<Arc<str>>,
    missing: HashSet<Arc<str>>,
}

/// One readable attribute and whether to skip it.
#[derive(Debug)]
struct Attr {
    file: CString,
    /// Path relative to the class directory, for errors and the unsupported list.
    path: Arc<str>,
    /// The counter's name as exported (the file name).
    name: Arc<str>,
    skip: bool,
    /// Kept open between cycles (within the fd budget): a read is one pread.
    held: Option<std::os::fd::OwnedFd>,
}

#[derive(Debug)]
struct CounterDir {
    dir: Dir,
    attrs: Vec<Attr>,
}

#[derive(Debug)]
struct PortHandle {
    port: u32,
    dir: Dir,
    info: Arc<PortInfo>,
    state: Attr,
    phys_state: Attr,
    rate: Attr,
    counters: Option<CounterDir>,
    hw_counters: Option<CounterDir>,
    /// This port's unsupported paths, worked out again only when the device's
    /// set has grown (it never shrinks between rescans): `unsupported_seen` is
    /// the set's size when they were.
    unsupported: Vec<Arc<str>>,
    unsupported_seen: usize,
    /// The rate read while netlink covered the port, with the port state
    /// and what tells a retrain at that read; handles are rebuilt at each rescan.
    last_rate: Option<(u8, Retrain, Rate)>,
}

#[derive(Debug)]
struct DeviceHandle {
    info: Arc<DeviceInfo>,
    hw_counters: Option<CounterDir>,
    ports: Vec<PortHandle>,
    /// A held attribute failed with ENODEV this cycle (the device went away): rediscover.
    vanished: bool,
}

/// Reads `<root>/class/infiniband`.
pub struct SysfsSource {
    class_dir: PathBuf,
    /// `<sysfs_root>/kernel/debug`: mlx5's DCQCN parameters.
    debugfs: PathBuf,
    /// A device's `cc_params` were unreadable (not root) and the log said so.
    cc_params_denied_said: bool,
    filter: DeviceFilter,
    rescan_every: Duration,
    devices: Vec<DeviceHandle>,
    last_rescan: Option<Instant>,
    /// The other source's device list (name, index) at the last listing.
    listed_with: Option<Vec<(String, u32)>>,
    /// Unsupported attribute paths per device, kept across rescans while the
    /// device stays (less the missing ones).
    absent: HashMap<Arc<str>, Absent>,
    stats: SourceStats,
    buf: Box<[u8; 4096]>,
    /// `class_dir` for open(2), and the class listing's kept buffers.
    class_path: Option<CString>,
    dirents: Vec<u8>,
    listing: Vec<(usize, usize)>,
    /// Attribute fds this source may hold, and how many are free now.
    fd_limit: usize,
    fd_budget: usize,
    /// Counter names, one allocation per name however many ports have the
    /// file: a cycle clones each into its reading, and 16 ports' clones of
    /// `port_xmit_data` then touch one cache line, not 16.
    names: HashSet<Arc<str>>,
}

/// Per-read context: the shared buffer, the error list and the stats.
struct Reader<'a> {
    buf: &'a mut [u8; 4096],
    errors: &'a mut Vec<ReadError>,
    stats: &'a mut SourceStats,
    unsupported: &'a mut HashSet<Arc<str>>,
    /// The subset of `unsupported` that was missing (ENOENT).
    missing: &'a mut HashSet<Arc<str>>,
    /// File descriptors this source may still keep open.
    fd_budget: &'a mut usize,
    /// The source's counter names (`SysfsSource::names`).
    names: &'a mut HashSet<Arc<str>>,
}

impl Reader<'_> {
    /// Reads `attr` in `dir`, hands its text to `parse`. `None` when skipped,
    /// unsupported, missing or failing; failures land in `errors`, unsupported
    /// and missing ones in the device's unsupported set, and either way the
    /// attribute is skipped until the next rescan.
    fn read<T>(
        &mut self,
        dir: &Dir,
        attr: &mut Attr,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        self.read_bytes(dir, attr, |bytes| text(bytes, parse))
    }

    /// [`Reader::read`] of a counter: the common text (digits and a newline)
    /// is taken as it is, anything else goes through `parse_u64`'s checks.
    fn read_u64(&mut self, dir: &Dir, attr: &mut Attr) -> Option<u64> {
        self.read_bytes(dir, attr, |bytes| match parse::digits(bytes) {
            Some(v) => Ok(v),
            None => text(bytes, parse::parse_u64),
        })
    }

    fn read_bytes<T>(
        &mut self,
        dir: &Dir,
        attr: &mut Attr,
        parse: impl FnOnce(&[u8]) -> Result<T, Failure>,
    ) -> Option<T> {
        if attr.skip {
            return None;
        }
        self.stats.file_reads += 1;
        // Held open: one pread. Within budget: open once, keep. Else open, read, close.
        let bytes = if let Some(fd) = &attr.held {
            self.stats.syscalls += 1;
            dir::pread0(fd, self.buf)
        } else if *self.fd_budget > 0 {
            self.stats.syscalls += 3;
            match dir.open_file(&attr.file) {
                Ok(fd) => {
                    *self.fd_budget -= 1;
                    let fd = attr.held.insert(fd);
                    dir::pread0(fd, self.buf)
                }
                Err(e) => Err(e),
            }
        } else {
            self.stats.syscalls += 4;
            dir.read(&attr.file, self.buf)
        };
        let failure = match bytes {
            Ok(bytes) => match parse(bytes) {
                Ok(value) => return Some(value),
                Err(f) => f,
            },
            Err(e) => classify(&e),
        };
        attr.skip = true;
        if attr.held.take().is_some() {
            *self.fd_budget += 1;
        }
        match failure {
            Failure::Unsupported => {
                self.unsupported.insert(attr.path.clone());
            }
            Failure::Missing => {
                self.unsupported.insert(attr.path.clone());
                self.missing.insert(attr.path.clone());
            }
            Failure::Error(reason) => {
                self.stats.read_failures += 1;
                self.errors.push(ReadError {
                    path: attr.path.to_string(),
                    reason,
                });
            }
        }
        None
    }

    fn read_string(&mut self, dir: &Dir, attr: &mut Attr) -> Option<String> {
        self.read(dir, attr, |s| Ok(s.to_string()))
            .filter(|s| !s.is_empty())
    }
}

fn attr(file: &str, parent: &str) -> Attr {
    Attr {
        file: CString::new(file).unwrap_or_default(),
        path: format!("{parent}/{file}").into(),
        name: file.into(),
        skip: false,
        held: None,
    }
}

/// File names in `path`, sorted so readings have a stable order.
fn list(path: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Half of the soft RLIMIT_NOFILE, less a margin for sockets and the rest:
/// held attribute fds must never starve the agent of descriptors.
fn default_fd_budget() -> usize {
    // SAFETY: rlimit is two integers; all-zero is a valid value.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes into the struct we pass, which lives across the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 0;
    }
    (rl.rlim_cur as usize / 2).saturating_sub(64).min(16_384)
}

impl SysfsSource {
    /// Caps the attribute fds held open (0: open, read, close every time).
    pub fn set_fd_budget(&mut self, n: usize) {
        self.fd_limit = n;
        self.fd_budget = n;
    }

    pub fn new(sysfs_root: &Path, filter: DeviceFilter, rescan_every: Duration) -> SysfsSource {
        let class_dir = sysfs_root.join("class/infiniband");
        SysfsSource {
            class_path: CString::new(class_dir.as_os_str().as_bytes()).ok(),
            class_dir,
            debugfs: sysfs_root.join("kernel/debug"),
            cc_params_denied_said: false,
            filter,
            rescan_every,
            devices: Vec::new(),
            last_rescan: None,
            listed_with: None,
            absent: HashMap::new(),
            stats: SourceStats::default(),
            buf: Box::new([0; 4096]),
            dirents: Vec::new(),
            listing: Vec::new(),
            fd_limit: default_fd_budget(),
            fd_budget: default_fd_budget(),
            names: HashSet::new(),
        }
    }

    pub fn stats(&self) -> SourceStats {
        self.stats
    }

    /// Counts failed reads of other files under the same root (module
    /// parameters) with this source's own.
    pub fn note_read_failures(&mut self, n: usize) {
        self.stats.read_failures += n as u64;
    }

    /// Rescans at the next cycle (an RDMA monitor event said a device or its
    /// netdev changed).
    pub fn rescan_soon(&mut self) {
        self.last_rescan = None;
    }

    /// One cycle: notices arrivals and removals, rescans when due, reads what moves.
    pub fn poll(&mut self, now: Instant) -> NodeReading {
        self.poll_covered(now, &Covered::default())
    }

    /// A cycle that leaves out the state, physical state and hw counters of
    /// the ports in `covered` (read from RDMA netlink instead).
    pub fn poll_covered(&mut self, now: Instant, covered: &Covered) -> NodeReading {
        let mut reading = NodeReading::default();
        self.poll_into(now, covered, &mut reading);
        reading
    }

    /// [`SysfsSource::poll_covered`] into `reading`, an earlier cycle's
    /// reading handed back: its devices, ports and counter lists are
    /// overwritten in place (every field this source fills is written, the
    /// rest cleared), so a steady cycle allocates nothing.
    pub fn poll_into(&mut self, now: Instant, covered: &Covered, reading: &mut NodeReading) {
        reading.netlink = false;
        reading.class_present = false;
        reading.errors.clear();
        let due = self
            .last_rescan
            .is_none_or(|t| now.duration_since(t) >= self.rescan_every);
        // The device list another source read this cycle stands for the
        // directory listing (5 syscalls) while it is the list (names and
        // kernel indices) it was at the last listing: a device registered
        // again under the same name has a new index and is rediscovered.
        let unchanged = covered.devices.is_some() && covered.devices == self.listed_with;
        if unchanged && !due && !self.devices.iter().any(|d| d.vanished) {
            reading.class_present = true;
        } else {
            let reregistered = match (&covered.devices, &self.listed_with) {
                (Some(now), Some(then)) => now != then,
                _ => false,
            };
            self.list_devices(now, due || reregistered, reading);
            if self.listed_with != covered.devices {
                self.listed_with.clone_from(&covered.devices);
            }
        }
        reading.devices.truncate(self.devices.len());
        for (i, dev) in self.devices.iter_mut().enumerate() {
            let absent = self.absent.entry(dev.info.name.clone()).or_default();
            let mut r = Reader {
                buf: &mut self.buf,
                errors: &mut reading.errors,
                stats: &mut self.stats,
                unsupported: &mut absent.paths,
                missing: &mut absent.missing,
                fd_budget: &mut self.fd_budget,
                names: &mut self.names,
            };
            if i == reading.devices.len() {
                reading.devices.push(empty_reading(&dev.info));
            }
            read_device(dev, &mut r, covered, &mut reading.devices[i]);
        }
    }

    /// Lists the class directory; rescans when the list changed, a held
    /// device vanished or the rescan is `due`.
    fn list_devices(&mut self, now: Instant, due: bool, reading: &mut NodeReading) {
        self.stats.syscalls += 4;
        // Listed into kept buffers: a steady listing allocates nothing;
        // owned names are made only for a rescan.
        // A root with a NUL byte cannot be opened: said, not taken for no RDMA.
        let listed = match &self.class_path {
            Some(path) => dir::Dir::list(path, &mut self.dirents, &mut self.listing),
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        let names: Vec<String> = match listed {
            Ok(()) => {
                reading.class_present = true;
                let (buf, filter) = (&self.dirents, &self.filter);
                let name = |&(at, len): &(usize, usize)| std::str::from_utf8(&buf[at..at + len]);
                self.listing
                    .retain(|e| name(e).is_ok_and(|n| !n.starts_with('.') && filter.accepts(n)));
                self.listing
                    .sort_unstable_by(|a, b| buf[a.0..a.0 + a.1].cmp(&buf[b.0..b.0 + b.1]));
                let changed = self.listing.len() != self.devices.len()
                    || self
                        .listing
                        .iter()
                        .zip(&self.devices)
                        .any(|(&(at, len), d)| buf[at..at + len] != *d.info.name.as_bytes())
                    || self.devices.iter().any(|d| d.vanished);
                if !(due || changed) {
                    return;
                }
                self.listing
                    .iter()
                    .map(|e| name(e).unwrap_or_default().to_string())
                    .collect()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !due && self.devices.is_empty() {
                    return;
                }
                Vec::new()
            }
            Err(e) => {
                reading.errors.push(ReadError {
                    path: self.class_dir.display().to_string(),
                    reason: errno_text(&e),
                });
                if !due && !self.devices.iter().any(|d| d.vanished) {
                    return;
                }
                // Keep reading the devices we know; the listing may come back.
                self.devices
                    .iter()
                    .map(|d| d.info.name.to_string())
                    .collect()
            }
        };
        self.rescan(&names, &mut reading.errors);
        self.last_rescan = Some(now);
    }

    fn rescan(&mut self, names: &[String], errors: &mut Vec<ReadError>) {
        self.stats.rescans += 1;
        self.absent
            .retain(|dev, _| names.iter().any(|n| **n == **dev));
        // What was missing is tried again: it may have come back.
        for a in self.absent.values_mut() {
            for p in a.missing.drain() {
                a.paths.remove(&p);
            }
        }
        // Dropping the handles closes every held fd.
        self.devices.clear();
        self.fd_budget = self.fd_limit;
        // Names of counters that are gone are not kept.
        self.names.clear();
        for name in names {
            let key: Arc<str> = name.as_str().into();
            let absent = self.absent.entry(key).or_default();
            let mut r = Reader {
                buf: &mut self.buf,
                errors,
                stats: &mut self.stats,
                unsupported: &mut absent.paths,
                missing: &mut absent.missing,
                // Discovery reads static attributes once: nothing to hold.
                fd_budget: &mut 0,
                names: &mut self.names,
            };
            match discover_device(&self.class_dir, &self.debugfs, name, &mut r) {
                Ok(dev) => {
                    let denied = format!("{name}/cc_params");
                    if !self.cc_params_denied_said
                        && dev.info.unsupported.iter().any(|u| **u == *denied)
                    {
                        log::info!(
                            "DCQCN parameters of {name} are unreadable under {} \
                             (debugfs is root's): not exported",
                            self.debugfs.display()
                        );
                        self.cc_params_denied_said = true;
                    }
                    self.devices.push(dev);
                }
                Err(e) => {
                    // Gone between the listing and now, or unreadable: report, go on.
                    errors.push(ReadError {
                        path: name.clone(),
                        reason: errno_text(&e),
                    });
                }
            }
        }
    }
}

fn counter_dir(path: &Path, rel: &str, r: &mut Reader) -> Option<CounterDir> {
    r.stats.syscalls += 1;
    let dir = Dir::open(path).ok()?;
    r.stats.syscalls += 1 + 4;
    let names = match list(path) {
        Ok(n) => n,
        Err(e) => {
            r.errors.push(ReadError {
                path: rel.to_string(),
                reason: errno_text(&e),
            });
            return None;
        }
    };
    let attrs = names
        .iter()
        .map(|n| {
            let mut a = attr(n, rel);
            a.skip = r.unsupported.contains(&a.path);
            match r.names.get(n.as_str()) {
                Some(name) => a.name = name.clone(),
                None => {
                    r.names.insert(a.name.clone());
                }
            }
            a
        })
        .collect();
    Some(CounterDir { dir, attrs })
}

/// Makes an attribute that starts skipped when it was found unsupported before.
fn known_attr(file: &str, parent: &str, r: &Reader) -> Attr {
    let mut a = attr(file, parent);
    a.skip = r.unsupported.contains(&a.path);
    a
}

fn discover_device(
    class_dir: &Path,
    debugfs: &Path,
    name: &str,
    r: &mut Reader,
) -> io::Result<DeviceHandle> {
    let path = class_dir.join(name);
    r.stats.syscalls += 2;
    let dir = Dir::open(&path)?;
    let mut info = DeviceInfo {
        name: name.into(),
        ..DeviceInfo::default()
    };
    let string_attrs: [(&str, &mut Option<String>); 4] = [
        ("fw_ver", &mut info.fw_ver),
        ("board_id", &mut info.board_id),
        ("hca_type", &mut info.hca_type),
        ("node_desc", &mut info.node_desc),
    ];
    for (file, slot) in string_attrs {
        let mut a = known_attr(file, name, r);
        *slot = r.read_string(&dir, &mut a);
    }
    let mut a = known_attr("node_type", name, r);
    info.node_type = r.read(&dir, &mut a, parse::parse_enum).map(enumerated);
    let mut a = known_attr("node_guid", name, r);
    info.node_guid = r.read(&dir, &mut a, parse::parse_guid);
    let mut a = known_attr("sys_image_guid", name, r);
    info.sys_image_guid = r.read(&dir, &mut a, parse::parse_guid);
    info.driver = std::fs::read_link(path.join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));

    let hw_counters = counter_dir(&path.join("hw_counters"), &format!("{name}/hw_counters"), r)
        .map(|mut d| {
            // `lifespan` is a setting, not a counter.
            d.attrs.retain(|a| &*a.name != "lifespan");
            d
        });

    let mut ports = Vec::new();
    let ports_dir = path.join("ports");
    r.stats.syscalls += 4 + 2;
    let port_names = list(&ports_dir).unwrap_or_default();
    let mut port_nums: Vec<u32> = port_names.iter().filter_map(|p| p.parse().ok()).collect();
    port_nums.sort_unstable();
    for port in port_nums {
        match discover_port(&path, name, port, r) {
            Ok(p) => ports.push(p),
            Err(e) => r.errors.push(ReadError {
                path: format!("{name}/ports/{port}"),
                reason: errno_text(&e),
            }),
        }
    }
    let roce = ports
        .iter()
        .any(|p| p.info.link_layer.as_deref() == Some("Ethernet"));
    if roce && info.driver.as_deref() == Some("mlx5_core") {
        info.dcqcn = read_dcqcn(debugfs, &path, name, r);
    }
    info.unsupported = collect_unsupported(r.unsupported, name, &["/ports/", "/hw_counters/"]);
    Ok(DeviceHandle {
        info: Arc::new(info),
        hw_counters,
        ports,
        vanished: false,
    })
}

/// mlx5's DCQCN parameters from `<debugfs>/mlx5/<PCI address>/cc_params/`
/// (the PCI address is the `device` link's target). No debugfs: none. Denied
/// (debugfs is root's): `<dev>/cc_params` is unsupported for this device.
fn read_dcqcn(
    debugfs: &Path,
    dev_path: &Path,
    name: &str,
    r: &mut Reader,
) -> std::collections::BTreeMap<String, u64> {
    let key: Arc<str> = format!("{name}/cc_params").into();
    if r.unsupported.contains(&key) {
        return Default::default();
    }
    let Some(pci) = std::fs::read_link(dev_path.join("device"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
    else {
        return Default::default();
    };
    r.stats.syscalls += 1 + 4;
    match crate::sources::netdev::read_cc_params(&debugfs.join("mlx5").join(pci).join("cc_params"))
    {
        Ok(cc) => {
            let files = (cc.values.len() + cc.errors.len()) as u64;
            r.stats.file_reads += files;
            r.stats.syscalls += 4 * files;
            for (file, reason) in cc.errors {
                r.stats.read_failures += 1;
                r.errors.push(ReadError {
                    path: format!("{key}/{file}"),
                    reason,
                });
            }
            cc.values
        }
        Err(e) => {
            match e.errno() {
                Some(libc::ENOENT) => {}
                Some(libc::EACCES | libc::EPERM) => {
                    r.unsupported.insert(key);
                }
                _ => {
                    r.stats.read_failures += 1;
                    r.errors.push(ReadError {
                        path: key.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
            Default::default()
        }
    }
}

/// The device's unsupported attribute paths that are not under the excluded sub-paths.
fn collect_unsupported(set: &HashSet<Arc<str>>, prefix: &str, exclude: &[&str]) -> Vec<Arc<str>> {
    let mut v: Vec<Arc<str>> = set
        .iter()
        .filter(|p| {
            p.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
                && !exclude.iter().any(|x| p[prefix.len()..].starts_with(x))
        })
        .cloned()
        .collect();
    v.sort();
    v
}

fn enumerated((value, name): (u8, String)) -> Enumerated {
    Enumerated { value, name }
}

fn discover_port(dev_path: &Path, dev: &str, port: u32, r: &mut Reader) -> io::Result<PortHandle> {
    let path = dev_path.join(format!("ports/{port}"));
    let rel = format!("{dev}/ports/{port}");
    r.stats.syscalls += 2;
    let dir = Dir::open(&path)?;
    let mut info = PortInfo::default();
    let mut a = known_attr("link_layer", &rel, r);
    info.link_layer = r.read_string(&dir, &mut a);
    let hex_attrs: [(&str, &mut Option<u64>); 4] = [
        ("lid", &mut info.lid),
        ("sm_lid", &mut info.sm_lid),
        ("lmc", &mut info.lmc),
        ("cap_mask", &mut info.cap_mask),
    ];
    for (file, slot) in hex_attrs {
        let mut a = known_attr(file, &rel, r);
        *slot = r.read(&dir, &mut a, parse::parse_hex_or_dec);
    }
    info.gids = read_gids(&path, &rel, r);

    let counters = counter_dir(&path.join("counters"), &format!("{rel}/counters"), r);
    let mut hw_counters = counter_dir(&path.join("hw_counters"), &format!("{rel}/hw_counters"), r);
    info.has_counters = counters.is_some();
    info.has_hw_counters = hw_counters.is_some();
    // A port without the directory (rxe, efa, irdma have no PMA `counters/`)
    // says so in its unsupported list; nothing from it is exported as 0.
    for (present, dir) in [
        (info.has_counters, "counters"),
        (info.has_hw_counters, "hw_counters"),
    ] {
        if !present {
            r.unsupported.insert(format!("{rel}/{dir}").into());
        }
    }
    if let Some(hw) = &mut hw_counters
        && let Some(pos) = hw.attrs.iter().position(|a| &*a.name == "lifespan")
    {
        let mut a = hw.attrs.remove(pos);
        info.hw_counters_lifespan_ms = r.read(&hw.dir, &mut a, parse::parse_u64);
    }
    info.netdev = port_netdev(dev_path, port, &info.gids, r.stats);
    Ok(PortHandle {
        port,
        state: known_attr("state", &rel, r),
        phys_state: known_attr("phys_state", &rel, r),
        rate: known_attr("rate", &rel, r),
        dir,
        info: Arc::new(info),
        counters,
        hw_counters,
        unsupported: Vec::new(),
        unsupported_seen: usize::MAX,
        last_rate: None,
    })
}

/// The GID table: `gids/N` with `gid_attrs/types/N` and `gid_attrs/ndevs/N`.
/// Unused entries are all-zero GIDs (and their attrs fail with EINVAL): left out.
/// Reads of this table are not recorded as unsupported, they are sparse by design.
fn read_gids(port_path: &Path, rel: &str, r: &mut Reader) -> Vec<GidEntry> {
    let gids_path = port_path.join("gids");
    let Ok(gids_dir) = Dir::open(&gids_path) else {
        return Vec::new();
    };
    let types_dir = Dir::open(&port_path.join("gid_attrs/types")).ok();
    let ndevs_dir = Dir::open(&port_path.join("gid_attrs/ndevs")).ok();
    r.stats.syscalls += 4 + 3 * 2;
    let mut indices: Vec<u32> = list(&gids_path)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    indices.sort_unstable();
    let mut out = Vec::new();
    for index in indices {
        let file = CString::new(index.to_string()).unwrap_or_default();
        r.stats.file_reads += 1;
        r.stats.syscalls += 4;
        let gid = match gids_dir.read(&file, r.buf) {
            Ok(bytes) => match parse::parse_gid(&String::from_utf8_lossy(bytes)) {
                Ok(Some(g)) => parse::format_gid(&g),
                Ok(None) => continue,
                Err(e) => {
                    r.errors.push(ReadError {
                        path: format!("{rel}/gids/{index}"),
                        reason: e.to_string(),
                    });
                    continue;
                }
            },
            Err(_) => continue,
        };
        let mut text_of = |dir: &Option<Dir>| -> Option<String> {
            let dir = dir.as_ref()?;
            r.stats.file_reads += 1;
            r.stats.syscalls += 4;
            let bytes = dir.read(&file, r.buf).ok()?;
            let s = String::from_utf8_lossy(bytes).trim().to_string();
            (!s.is_empty()).then_some(s)
        };
        let gid_type = text_of(&types_dir);
        let netdev = text_of(&ndevs_dir);
        out.push(GidEntry {
            index,
            gid,
            gid_type,
            netdev,
        });
    }
    out
}

/// The port's netdev: the RoCE GID table names it; for IB (IPoIB) the PCI
/// device's `net/*` entry whose `dev_port` is port-1 (ipoib sets it so).
fn port_netdev(
    dev_path: &Path,
    port: u32,
    gids: &[GidEntry],
    stats: &mut SourceStats,
) -> Option<String> {
    if let Some(n) = gids.iter().find_map(|g| g.netdev.clone()) {
        return Some(n);
    }
    let net = dev_path.join("device/net");
    stats.syscalls += 4;
    let names = list(&net).ok()?;
    let want = (port - 1).to_string();
    let mut fallback = None;
    for n in names {
        stats.syscalls += 5;
        // A FIFO or an endless file here must not stall discovery: bounded, non-blocking.
        match file::read_attr(&net.join(&n).join("dev_port")) {
            Ok(p) if p == want => return Some(n),
            Ok(_) => {}
            Err(_) => fallback = fallback.or(Some(n)),
        }
    }
    fallback
}

/// Reads a counter directory into `out`, the previous reading's list: a
/// counter in the same place as last cycle (the same name, by pointer)
/// only has its value set, so a steady cycle allocates nothing here.
fn read_counters(cd: &mut Option<CounterDir>, r: &mut Reader, out: &mut Vec<Counter>) {
    let Some(cd) = cd else {
        out.clear();
        return;
    };
    let mut k = 0;
    for a in &mut cd.attrs {
        if let Some(value) = r.read_u64(&cd.dir, a) {
            match out.get_mut(k) {
                Some(c) => {
                    if !Arc::ptr_eq(&c.name, &a.name) {
                        c.name = a.name.clone();
                    }
                    c.value = value;
                }
                None => out.push(Counter {
                    name: a.name.clone(),
                    value,
                }),
            }
            k += 1;
        }
    }
    out.truncate(k);
}

/// The port's `link_downed` counter in this cycle's PMA reading, if read.
fn link_downed(counters: &[Counter]) -> Option<u64> {
    counters
        .iter()
        .find(|c| &*c.name == "link_downed")
        .map(|c| c.value)
}

/// What tells that a port's link trained again (its rate can change only
/// then): the PMA `link_downed` counter while readable and unsaturated (8
/// bits in PortCounters, stuck at 255), and for a RoCE port the carrier
/// count of its netdev (whose speed the rate is: `ib_get_eth_speed`), with
/// the netdev's ifindex (a port bound to another netdev differs too).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Retrain {
    link_downed: Option<u64>,
    carrier: Option<(u32, u32)>,
}

impl Retrain {
    /// `None` when nothing tells: the rate is read every cycle.
    fn of(counters: &[Counter], carrier: Option<(u32, u32)>) -> Option<Retrain> {
        let link_downed = link_downed(counters).filter(|&d| d < 255);
        (link_downed.is_some() || carrier.is_some()).then_some(Retrain {
            link_downed,
            carrier,
        })
    }
}

/// Writes an enumerated value into `slot`, keeping its name string when the
/// name is the same.
fn store_enum(slot: &mut Option<Enumerated>, (value, name): (u8, &str)) {
    match slot {
        Some(e) => {
            e.value = value;
            if e.name != name {
                name.clone_into(&mut e.name);
            }
        }
        None => {
            *slot = Some(Enumerated {
                value,
                name: name.to_string(),
            })
        }
    }
}

/// Reads an enumerated attribute (`state`, `phys_state`) into `slot`.
fn read_enum(r: &mut Reader, dir: &Dir, attr: &mut Attr, slot: &mut Option<Enumerated>) {
    let read = r.read(dir, attr, |t| {
        parse::parse_enum_ref(t).map(|v| store_enum(slot, v))
    });
    if read.is_none() {
        *slot = None;
    }
}

/// A reading of no device's storage, for a device read the first time.
fn empty_reading(info: &Arc<DeviceInfo>) -> DeviceReading {
    DeviceReading {
        info: info.clone(),
        hw_counters: Vec::new(),
        ports: Vec::new(),
        resources: Vec::new(),
        qp_counters: Vec::new(),
    }
}

/// Reads one device into `out`, the reading of a cycle before (of this
/// device or another: every field is written), reusing its storage.
fn read_device(dev: &mut DeviceHandle, r: &mut Reader, covered: &Covered, out: &mut DeviceReading) {
    if !Arc::ptr_eq(&out.info, &dev.info) {
        out.info = dev.info.clone();
    }
    out.resources.clear();
    out.qp_counters.clear();
    read_counters(&mut dev.hw_counters, r, &mut out.hw_counters);
    out.ports.truncate(dev.ports.len());
    let errors_before = r.errors.len();
    for (i, p) in dev.ports.iter_mut().enumerate() {
        if i == out.ports.len() {
            out.ports.push(PortReading::new(p.port, p.info.clone()));
        }
        let o = &mut out.ports[i];
        o.port = p.port;
        if !Arc::ptr_eq(&o.info, &p.info) {
            o.info = p.info.clone();
        }
        o.origin = PortOrigin::default();
        // What another source already read this cycle is not read again here.
        if covered.covers(&dev.info.name, p.port) {
            o.state = None;
            o.phys_state = None;
            o.hw_counters.clear();
        } else {
            read_enum(r, &p.dir, &mut p.state, &mut o.state);
            read_enum(r, &p.dir, &mut p.phys_state, &mut o.phys_state);
            read_counters(&mut p.hw_counters, r, &mut o.hw_counters);
        }
        if covered.covers_pma(&dev.info.name, p.port) {
            o.counters.clear();
        } else {
            read_counters(&mut p.counters, r, &mut o.counters);
        }
        // The netdev's speed is the rate of an Ethernet (RoCE) port only.
        let carrier = covered
            .carrier_of(&dev.info.name, p.port)
            .filter(|_| p.info.link_layer.as_deref() == Some("Ethernet"));
        let retrain = Retrain::of(&o.counters, carrier);
        match (covered.state_of(&dev.info.name, p.port), &p.last_rate) {
            // A link's rate changes when it trains again, which counts in
            // link_downed and moves the netdev's carrier even when two polls
            // both see it active: while the state netlink read and what
            // tells a retrain ([`Retrain`]) stay as when `rate` was read, the
            // rate stands — a pread per port a cycle saved, and for mlx5 a
            // firmware query. Ports with nothing to tell (no link_downed, no
            // netdev whose carrier tells its speed: only veth and drivers
            // that count every retrain, rtnetlink::speed_follows_carrier;
            // virtio_net and hv_netvsc change speed with no carrier event)
            // read it every cycle.
            (Some(state), Some((at_state, at_retrain, rate)))
                if *at_state == state && Some(*at_retrain) == retrain =>
            {
                if o.rate.as_ref() != Some(rate) {
                    o.rate = Some(rate.clone());
                }
            }
            (state, _) => {
                let rate = &mut o.rate;
                if r.read(&p.dir, &mut p.rate, |t| {
                    parse::parse_rate_ref(t).map(|v| v.store(rate))
                })
                .is_none()
                {
                    *rate = None;
                }
                p.last_rate = match (state, retrain, &o.rate) {
                    (Some(s), Some(retrain), Some(rate)) => Some((s, retrain, rate.clone())),
                    _ => None,
                };
            }
        }
        if p.unsupported_seen != r.unsupported.len() {
            let prefix = format!("{}/ports/{}/", dev.info.name, p.port);
            p.unsupported = r
                .unsupported
                .iter()
                .filter(|u| u.starts_with(&prefix))
                .cloned()
                .collect();
            p.unsupported.sort();
            p.unsupported_seen = r.unsupported.len();
        }
        o.unsupported.clone_from(&p.unsupported);
    }
    // A held attribute of a device that went away fails with ENODEV (kernfs
    // deactivated the file): rediscover at the next cycle. A missing file
    // (ENOENT) waits for the next scheduled rescan instead.
    dev.vanished = r.errors[errors_before..]
        .iter()
        .any(|e| e.reason.starts_with("ENODEV"));
}

#[cfg(test)]
mod tests;
