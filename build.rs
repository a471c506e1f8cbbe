//! Generates Rust bindings for the kernel UAPI headers listed in wrapper.h.
//! Only the RDMA netlink, umad and ethtool names are kept, so the bindings stay
//! small and a newer header only adds items.

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    // The kernel ABI does not depend on the libc: parse the headers as the
    // glibc target of the same architecture, whose include paths Debian's
    // clang knows, also when building for musl.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(format!("--target={arch}-linux-gnu"))
        .allowlist_type("rdma_nldev_.*|rdma_nl_.*|ib_user_mad.*|ethtool_.*|nlmsghdr|nlmsgerr|nlattr|ifinfomsg|rtnl_link_stats64|genlmsghdr|dcbmsg|ieee_pfc|ieee_ets|devlink_command|devlink_attr|dcbnl_commands|dcbnl_attrs|ieee_attrs")
        .allowlist_var("RDMA_.*|IB_USER_MAD.*|IB_IOCTL_MAGIC|ETHTOOL_.*|ETH_GSTRING_LEN|ETH_SS_.*|SIOCETHTOOL|NETLINK_RDMA|NLM_F_.*|NLMSG_.*|NLA_F_.*|NLA_ALIGNTO|RTM_.*|IFLA_.*|NETLINK_ROUTE|IF_OPER_.*|DUPLEX_.*|AUTONEG_.*|PORT_.*|CTRL_.*|GENL_.*|DEVLINK_.*|DCB_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(false)
        .wrap_unsafe_ops(true)
        .generate()
        .expect("bindgen could not read wrapper.h: install libclang-dev and the kernel UAPI headers (linux-libc-dev)");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("uapi.rs"))
        .expect("writing uapi.rs into OUT_DIR");
}
