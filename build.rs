//! Generates Rust bindings for the kernel UAPI headers listed in wrapper.h.
//! Only the RDMA netlink, umad and ethtool names are kept, so the bindings stay
//! small and a newer header only adds items.

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .allowlist_type("rdma_nldev_.*|rdma_nl_.*|ib_user_mad.*|ethtool_.*")
        .allowlist_var("RDMA_.*|IB_USER_MAD.*|IB_IOCTL_MAGIC|ETHTOOL_.*|ETH_GSTRING_LEN|ETH_SS_.*|SIOCETHTOOL|NETLINK_RDMA")
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
