//! Bounded, non-blocking reads of the small files the agent reads (sysfs and
//! debugfs attributes, module parameters, procfs, the config file).
//!
//! A hostile or careless tree must never hang or bloat the agent: every open
//! is `O_NONBLOCK` (a FIFO does not wait for a writer) and `O_CLOEXEC`, and
//! `O_NOFOLLOW` where the last component is never a symlink on a real node
//! (sysfs attributes); the opened file must be a regular one (a FIFO or
//! `/dev/zero` is refused after an `fstat`); and a read stops one byte past
//! its limit, which is an error, not a truncated value.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A sysfs attribute is at most one page less its NUL: kernfs'
/// `sysfs_kf_seq_show` caps a show() at `PAGE_SIZE - 1` bytes.
pub const ATTR_MAX: usize = 4095;

/// The configuration file (a YAML file of a few KiB in practice).
pub const CONFIG_MAX: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}", errno_text(.0))]
    Io(#[from] io::Error),
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("not UTF-8 text")]
    NotText,
}

impl FileError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            FileError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

/// Whether the last path component may be a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// It may (the config file, often a link into a Kubernetes ConfigMap).
    Yes,
    /// It never is on a real node (sysfs, debugfs attributes): a link is refused (ELOOP).
    No,
}

/// The errno's name and its text: `EACCES (Permission denied (os error 13))`.
pub fn errno_text(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EIO) => "EIO",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EISDIR) => "EISDIR",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::ELOOP) => "ELOOP",
        Some(libc::ETIMEDOUT) => "ETIMEDOUT",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::EBUSY) => "EBUSY",
        _ => return e.to_string(),
    };
    format!("{name} ({e})")
}

/// Refuses anything but a regular file: one `fstat`. A directory is
/// reported as EISDIR, as read(2) would.
pub fn check_regular(file: &File) -> Result<(), FileError> {
    let t = file.metadata()?.file_type();
    if t.is_file() {
        return Ok(());
    }
    if t.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR).into());
    }
    Err(FileError::NotRegular(if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }))
}

/// Opens `path` for reading, non-blocking, and checks it is a regular file.
pub fn open(path: &Path, follow: Follow) -> Result<File, FileError> {
    let nofollow = if follow == Follow::No {
        libc::O_NOFOLLOW
    } else {
        0
    };
    // std adds O_CLOEXEC itself.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | nofollow)
        .open(path)?;
    check_regular(&file)?;
    Ok(file)
}

/// Reads the whole of `path`, at most `limit` bytes.
pub fn read(path: &Path, limit: usize, follow: Follow) -> Result<Vec<u8>, FileError> {
    let file = open(path, follow)?;
    let mut buf = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > limit {
        return Err(FileError::TooLarge(limit));
    }
    Ok(buf)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, limit: usize, follow: Follow) -> Result<String, FileError> {
    String::from_utf8(read(path, limit, follow)?).map_err(|_| FileError::NotText)
}

/// A sysfs-style attribute: at most [`ATTR_MAX`] bytes, never through a
/// symlink, trimmed.
pub fn read_attr(path: &Path) -> Result<String, FileError> {
    read_text(path, ATTR_MAX, Follow::No).map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// A FIFO with no writer: refused at once, not waited on.
    #[test]
    fn fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dev_port");
        mkfifo(&p);
        let e = read_attr(&p).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (FIFO)");
        let e = read_text(&p, CONFIG_MAX, Follow::Yes).unwrap_err();
        assert!(matches!(e, FileError::NotRegular("FIFO")), "{e}");
    }

    /// `/dev/zero` is endless: refused as a device when opened directly,
    /// and as a symlink (ELOOP) where links are not followed.
    #[test]
    fn dev_zero_is_refused() {
        let e = read(Path::new("/dev/zero"), CONFIG_MAX, Follow::Yes).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (character device)");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("param");
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        let e = read_attr(&p).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ELOOP), "{e}");
    }

    /// A symlink to a regular file is followed when allowed (a ConfigMap mount).
    #[test]
    fn symlink_followed_when_allowed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("real"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert_eq!(
            read_text(&d.path().join("link"), CONFIG_MAX, Follow::Yes).unwrap(),
            "a: 1\n"
        );
    }

    /// One byte over the limit is an error; at the limit, the value.
    #[test]
    fn bounded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big");
        std::fs::write(&p, vec![b'1'; ATTR_MAX + 1]).unwrap();
        let e = read_attr(&p).unwrap_err();
        assert_eq!(e.to_string(), format!("larger than {ATTR_MAX} bytes"));
        std::fs::write(&p, vec![b'1'; ATTR_MAX]).unwrap();
        assert_eq!(read_attr(&p).unwrap().len(), ATTR_MAX);
    }

    #[test]
    fn directory_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let e = read_attr(d.path()).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EISDIR));
        let e = read_attr(&d.path().join("none")).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert!(e.to_string().starts_with("ENOENT"), "{e}");
        std::fs::write(d.path().join("bin"), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_attr(&d.path().join("bin")),
            Err(FileError::NotText)
        ));
    }
}
