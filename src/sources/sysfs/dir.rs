//! A directory held open so attribute reads are `openat` relative to it:
//! the kernel walks one path component per read instead of the whole
//! `/sys/class/infiniband/<dev>/ports/<n>/counters/<name>` chain with its
//! symlink into `/sys/devices`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sources::file::{self, FileError};

#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        Dir::open_c(&c)
    }

    fn open_c(path: &CStr) -> io::Result<Dir> {
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Dir {
            // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Opens an attribute to keep: later reads are one `pread` at offset 0,
    /// which makes sysfs (kernfs seq_file) call the attribute's show() again.
    /// Non-blocking, never through a symlink (sysfs attributes are not
    /// links; `device`, `driver` are directories), and only a regular file:
    /// a FIFO or a device node in a hostile tree is refused, not read.
    pub fn open_file(&self, name: &CStr) -> Result<OwnedFd, FileError> {
        // SAFETY: `name` is NUL-terminated and `self.fd` is an open directory.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: a fresh descriptor owned by nobody else.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file::check_regular(&file)?;
        Ok(file.into())
    }

    /// Lists the directory at `path` (4 syscalls: open, getdents64 until it
    /// returns nothing, close) into `buf`, kept by the caller between
    /// listings so a steady listing allocates nothing; each entry's name is
    /// pushed to `names` as its range in `buf`. `.` and `..` are left out.
    /// A listing larger than [`MAX_LISTING`] bytes is refused (EFBIG): a
    /// wrong root or an endless directory must not grow memory without bound.
    pub fn list(path: &CStr, buf: &mut Vec<u8>, names: &mut Vec<(usize, usize)>) -> io::Result<()> {
        names.clear();
        let dir = Dir::open_c(path)?;
        let mut filled = 0;
        loop {
            // Room for at least one whole entry (a name is at most 255 bytes).
            if buf.len() - filled < 512 {
                if buf.len() >= MAX_LISTING {
                    return Err(io::Error::from_raw_os_error(libc::EFBIG));
                }
                buf.resize((buf.len() * 2).clamp(4096, MAX_LISTING), 0);
            }
            let n = getdents64(&dir.fd, &mut buf[filled..])?;
            if n == 0 {
                break;
            }
            let end = filled + n;
            let mut at = filled;
            // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
            while at + 19 <= end {
                let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
                if reclen < 20 || at + reclen > end {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
                let name = &buf[at + 19..at + reclen];
                let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                if !matches!(&name[..len], b"." | b"..") {
                    names.push((at + 19, len));
                }
                at += reclen;
            }
            filled = end;
        }
        Ok(())
    }

    /// Reads a small attribute file (sysfs returns a whole attribute in one read).
    pub fn read<'b>(&self, name: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8], FileError> {
        pread0(&self.open_file(name)?, buf)
    }
}

/// The most bytes of directory entries a listing reads: the RDMA class of a
/// node is a few dozen entries of ~40 bytes; 1 MiB is ~25,000 of them.
pub const MAX_LISTING: usize = 1 << 20;

/// One getdents64 into `buf`: the bytes of whole entries it wrote (0 at the end).
fn getdents64(dir: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `dir` is an
    // open directory; the kernel writes whole entries only.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Re-reads a held attribute from its start: one syscall. A read that fills
/// `buf` is refused: a sysfs attribute is at most `PAGE_SIZE - 1` bytes, so
/// a full page is not one (and never silently truncated).
pub fn pread0<'b>(file: &OwnedFd, buf: &'b mut [u8]) -> Result<&'b [u8], FileError> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `file` is open.
    let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let n = n as usize;
    if n >= buf.len() {
        return Err(FileError::TooLarge(buf.len() - 1));
    }
    Ok(&buf[..n])
}
