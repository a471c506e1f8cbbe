//! Kernel module parameters of the RDMA stack: `/sys/module/<m>/parameters/*`.
//! Read at rescans; a change between two reads is a configuration change.

use std::path::Path;

use crate::model::{Param, ReadError};
use crate::sources::file;

/// The modules whose parameters shape RDMA behaviour.
pub const MODULES: &[&str] = &[
    "ib_core",
    "ib_uverbs",
    "ib_umad",
    "ib_ipoib",
    "rdma_cm",
    "rdma_ucm",
    "mlx5_core",
    "mlx5_ib",
    "mlx4_core",
    "mlx4_ib",
    "mlx4_en",
    "bnxt_en",
    "bnxt_re",
    "irdma",
    "ice",
    "efa",
    "hfi1",
    "rdma_rxe",
    "nvme_rdma",
];

/// Every readable parameter of the loaded modules. Write-only ones (0200:
/// EACCES) and ones gone since the listing are left out; anything else that
/// does not read (a FIFO, a device, a link, more than a page) is an error
/// for that parameter, with its path relative to `sysfs_root`.
pub fn read_params(sysfs_root: &Path) -> (Vec<Param>, Vec<ReadError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for &module in MODULES {
        let dir = sysfs_root.join("module").join(module).join("parameters");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            match file::read_attr(&dir.join(&name)) {
                Ok(value) => out.push(Param {
                    module,
                    name,
                    value,
                }),
                Err(e) if matches!(e.errno(), Some(libc::EACCES | libc::EPERM | libc::ENOENT)) => {}
                Err(e) => errors.push(ReadError {
                    path: format!("module/{module}/parameters/{name}"),
                    reason: e.to_string(),
                }),
            }
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parameters_of_known_modules_only() {
        let root = tempfile::tempdir().unwrap();
        for (m, p, v) in [
            ("mlx5_core", "prof_sel", "2\n"),
            ("mlx5_core", "debug_mask", "0\n"),
            ("ext4", "x", "1\n"),
        ] {
            let d = root.path().join("module").join(m).join("parameters");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(p), v).unwrap();
        }
        let (got, errors) = read_params(root.path());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            got,
            [
                Param {
                    module: "mlx5_core",
                    name: "debug_mask".into(),
                    value: "0".into()
                },
                Param {
                    module: "mlx5_core",
                    name: "prof_sel".into(),
                    value: "2".into()
                },
            ]
        );
    }

    /// A parameter symlinked to /dev/zero (864 MiB in 0.9 s before) and one
    /// of 20 MB (copied into every snapshot before): both refused with a
    /// reason, the others still read.
    #[test]
    fn endless_and_huge_parameters_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("module/mlx5_core/parameters");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("prof_sel"), "2\n").unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("debug_mask")).unwrap();
        std::fs::write(d.join("huge"), vec![b'x'; 20 << 20]).unwrap();
        let (got, errors) = read_params(root.path());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "prof_sel");
        let reasons: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.path.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(reasons[0].0, "module/mlx5_core/parameters/debug_mask");
        assert!(reasons[0].1.starts_with("ELOOP"), "{reasons:?}");
        assert_eq!(
            reasons[1],
            ("module/mlx5_core/parameters/huge", "larger than 4095 bytes")
        );
    }
}
