use std::io::Write;

use super::*;

/// A record as the kernel formats it for /dev/kmsg (printk's
/// info_print_ext_header + msg_add_dict_text): a dev_err() of mlx5_core
/// carries its SUBSYSTEM and DEVICE. The text is a public report's line
/// (mlx5 wait_func timeout, as in the issue).
const MLX5_TIMEOUT: &[u8] = b"3,1204,257137072,-;mlx5_core 0000:56:00.0: wait_func:1189:(pid 72061): ACCESS_REG(0x805) timeout. Will cause a leak of a command resource\n SUBSYSTEM=pci\n DEVICE=+pci:0000:56:00.0\n";

#[test]
fn a_record_with_its_dictionary() {
    let r = parse_record(MLX5_TIMEOUT).unwrap();
    assert_eq!(
        (r.level, r.facility, r.seq, r.ts_usec),
        (3, 0, 1204, 257137072)
    );
    assert!(r.message.starts_with("mlx5_core 0000:56:00.0: wait_func"));
    assert!(r.message.ends_with("command resource"));
    assert_eq!(r.device.as_deref(), Some("+pci:0000:56:00.0"));
    // A line written from user space (`echo "<3>..." > /dev/kmsg`): facility 1, no dictionary.
    let u = parse_record(b"11,1205,300000000,-;mlx5_core 0000:08:00.0: stand-in\n").unwrap();
    assert_eq!((u.level, u.facility, u.device), (3, 1, None));
    // Newer kernels add fields after the flags (",caller=T123"): still read.
    let c = parse_record(b"6,7,8,-,caller=T1;rdma_rxe: loaded\n").unwrap();
    assert_eq!(c.message, "rdma_rxe: loaded");
    for bad in [
        &b"garbage\n"[..],
        b"x,1,2,-;m\n",
        b"3,,2,-;m\n",
        b"\xff\xfe;\n",
    ] {
        assert!(parse_record(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn records_split_at_their_header_lines() {
    let two = [MLX5_TIMEOUT, b"6,1205,1,-;infiniband rxe0: set down\n"].concat();
    let recs: Vec<_> = split_records(&two).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0], MLX5_TIMEOUT);
}

/// The reader on a plain file standing in for /dev/kmsg: what was there at
/// open is skipped (SEEK_END), what is appended is read, a sequence gap is
/// counted as lost, a broken record as malformed. (A plain file gives all
/// that was appended in one read; /dev/kmsg one record per read, which is
/// what `max` counts.)
#[test]
fn reads_from_the_end_and_counts_gaps() {
    let dir = tempdir();
    let path = dir.join("kmsg");
    std::fs::write(&path, b"6,1,1,-;old line, before the agent started\n").unwrap();
    let mut k = Kmsg::open(&path).unwrap();
    let mut out = Vec::new();
    assert_eq!(k.read_some(10, &mut out).unwrap(), 0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"6,10,5,-;first\n6,11,6,-;second\nnot a record\n6,15,7,-;after three lost\n")
        .unwrap();
    assert_eq!(k.read_some(1, &mut out).unwrap(), 3);
    assert_eq!(k.read_some(10, &mut out).unwrap(), 0);
    let msgs: Vec<_> = out.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(msgs, ["first", "second", "after three lost"]);
    assert_eq!(
        k.stats(),
        KmsgStats {
            read: 3,
            lost: 3,
            malformed: 1
        }
    );
}

#[test]
fn a_missing_log_is_an_error_naming_it() {
    let e = Kmsg::open(Path::new("/nonexistent/kmsg")).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/kmsg"), "{e}");
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rdma-mon-kmsg-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
