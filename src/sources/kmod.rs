//! Kernel module parameters of the RDMA stack: `/sys/module/<m>/parameters/*`.
//! Read at rescans; a change between two reads is a configuration change.

use std::path::Path;

use serde::Serialize;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub module: &'static str,
    pub name: String,
    pub value: String,
}

/// Every readable parameter of the loaded modules (unreadable ones, 0200, are left out).
pub fn read_params(sysfs_root: &Path) -> Vec<Param> {
    let mut out = Vec::new();
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
            if let Ok(v) = std::fs::read_to_string(dir.join(&name)) {
                out.push(Param {
                    module,
                    name,
                    value: v.trim().to_string(),
                });
            }
        }
    }
    out
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
        let got = read_params(root.path());
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
}
