//! Regenerates `src/sys/uapi.rs`, the Rust bindings of the kernel UAPI
//! headers listed in wrapper.h, when asked: `make bindings` (the
//! `regen-bindings` feature, which needs libclang-dev and linux-libc-dev).
//! An ordinary build uses the committed file and compiles no bindgen, so
//! building the agent needs nothing beyond Rust and a C linker.
//! Only the RDMA netlink, umad, ethtool, rtnetlink, genetlink, devlink and
//! DCB names are kept, so the bindings stay small and a newer header only
//! adds items.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The static musl binary is position-independent and relocates itself
    // at start: packed relative relocations (DT_RELR, applied by musl since
    // 1.2.4; Rust ships 1.2.5) take a few KiB instead of ~150 KiB of
    // .rela.dyn in the file.
    // Only the self-contained static build (musl's default): a dynamic musl
    // build (`-C target-feature=-crt-static`) would load through the
    // system's musl (Debian 12: 1.2.3, no DT_RELR). Cargo leaves crt-static
    // out of CARGO_CFG_TARGET_FEATURE, so the flags are what tells.
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl")
        && !rustflags.contains("-crt-static")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        link_with_lld();
    }
    #[cfg(feature = "regen-bindings")]
    regen::write_bindings();
}

/// The static binary is linked by the toolchain's own lld (rust-lld, shipped
/// with every rustup toolchain), for two things GNU ld 2.40 cannot do:
/// - `--symbol-ordering-file=link/hot.order`: the functions a steady cycle
///   and scrape run (from a profile, `make hot-order`) placed together at the
///   start of .text, so the pages the agent keeps mapped are those, not one
///   64 KiB fault-around window (or a whole large folio) per scattered hot
///   function. A name the file lists and the build no longer has (renamed,
///   another toolchain's hash) is skipped: the layout degrades, the binary
///   stays correct.
/// - `--icf=all`: identical functions (monomorphized generics) kept once,
///   ~56 KB. Rust promises no distinct addresses for distinct functions.
///
/// Without rust-lld the default linker links as before, with a warning.
fn link_with_lld() {
    println!("cargo:rerun-if-changed=link/hot.order");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let host = std::env::var("HOST").unwrap_or_default();
    let sysroot = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let gcc_ld =
        sysroot.map(|s| std::path::Path::new(&s).join(format!("lib/rustlib/{host}/bin/gcc-ld")));
    let Some(gcc_ld) = gcc_ld.filter(|d| d.join("ld.lld").is_file()) else {
        println!(
            "cargo:warning=rust-lld not found in the toolchain: linking with the default linker, without the hot-code order (more resident pages)"
        );
        return;
    };
    let order = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link/hot.order");
    for arg in [
        "-fuse-ld=lld".to_string(),
        format!("-B{}", gcc_ld.display()),
        "-Wl,--icf=all".to_string(),
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}

#[cfg(feature = "regen-bindings")]
mod regen {
    /// Puts a SAFETY line above every `unsafe` bindgen writes, saying why its
    /// pattern holds, so the generated file meets the project's unsafe rule too.
    /// Bindgen emits exactly these; anything else stops the regeneration.
    fn annotate_unsafe(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 4096);
        for line in text.lines() {
            let t = line.trim_start();
            let why = if t.starts_with("pub unsafe fn as_slice")
                || t.starts_with("pub unsafe fn as_mut_slice")
            {
                Some(
                    "callers promise `len` elements follow the struct (a C flexible array member).",
                )
            } else if t.starts_with("unsafe { ::std::slice::from_raw_parts") {
                Some(
                    "the caller's contract above: `len` elements follow, and they live as long as `self`.",
                )
            } else if t == "unsafe {" {
                Some(
                    "all-zero bytes are a valid value of this C struct of integers, arrays and pointers.",
                )
            } else if t.contains("unsafe") {
                panic!("bindgen wrote an unsafe this build.rs has no reason for: {t}");
            } else {
                None
            };
            if let Some(why) = why {
                let indent = &line[..line.len() - t.len()];
                out.push_str(&format!("{indent}// SAFETY: {why}\n"));
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    use std::path::PathBuf;

    pub fn write_bindings() {
        println!("cargo:rerun-if-changed=wrapper.h");
        println!("cargo:rerun-if-env-changed=UAPI_HEADERS");
        // The kernel ABI does not depend on the libc: parse the headers as the
        // glibc target of the same architecture, whose include paths Debian's
        // clang knows, also when building for musl.
        let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
        let bindings = bindgen::Builder::default()
            .header("wrapper.h")
            .clang_arg(format!("--target={arch}-linux-gnu"))
            .allowlist_type("rdma_nldev_.*|rdma_nl_.*|ib_user_mad.*|ethtool_.*|nlmsghdr|nlmsgerr|nlattr|ifinfomsg|rtnl_link_stats64|genlmsghdr|dcbmsg|ieee_pfc|ieee_ets|devlink_command|devlink_attr|dcbnl_commands|dcbnl_attrs|ieee_attrs")
            .allowlist_var("LINUX_VERSION_.*|RDMA_.*|IB_USER_MAD.*|IB_IOCTL_MAGIC|ETHTOOL_.*|ETH_GSTRING_LEN|ETH_SS_.*|SIOCETHTOOL|NETLINK_RDMA|NLM_F_.*|NLMSG_.*|NLA_F_.*|NLA_ALIGNTO|RTM_.*|IFLA_.*|NETLINK_ROUTE|IF_OPER_.*|DUPLEX_.*|AUTONEG_.*|PORT_.*|CTRL_.*|GENL_.*|DEVLINK_.*|DCB_.*")
            .prepend_enum_name(false)
            .derive_default(true)
            .layout_tests(false)
            .wrap_unsafe_ops(true)
            .generate()
            .expect("bindgen could not read wrapper.h: install libclang-dev and the kernel UAPI headers (linux-libc-dev)");
        // Which headers these are: the package, as `make bindings` names it
        // (dpkg-query), and the kernel version the headers carry themselves.
        let headers = std::env::var("UAPI_HEADERS")
            .unwrap_or_else(|_| "the UAPI headers clang found (UAPI_HEADERS unset)".into());
        let header = format!(
            "// Kernel UAPI bindings: bindgen over wrapper.h, target {arch}-linux-gnu.\n\
             // Headers: {headers}; their kernel version is LINUX_VERSION_* below.\n\
             // Generated by `make bindings` (build.rs, feature regen-bindings): do not edit.\n"
        );
        let out = PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("src/sys/uapi.rs");
        std::fs::write(&out, header + &annotate_unsafe(&bindings.to_string()))
            .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    }
}
