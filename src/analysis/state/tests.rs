//! The state file across a restart of the agent (same boot, new boot), and
//! what a broken or planted file does.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::agent::Agent;
use crate::config::Config;
use crate::exporters::Published;

struct Node {
    tree: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let tree = tempfile::tempdir().unwrap();
        crate::testutil::copy_tree(Path::new("fixtures/sysfs/node-16hca"), tree.path());
        let dir = tempfile::tempdir().unwrap();
        let node = Node { tree, dir };
        node.boot("11111111-2222-3333-4444-555555555555");
        node
    }

    fn boot(&self, id: &str) {
        let p = self.dir.path().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("boot_id"), format!("{id}\n")).unwrap();
    }

    fn agent(&self) -> Agent {
        let d = self.dir.path();
        let config = Config::load(
            None,
            [
                ("GENERAL__SYSFS_ROOT", self.tree.path().to_path_buf()),
                ("GENERAL__STATE_DIR", d.join("state")),
                ("GENERAL__PROC_ROOT", d.join("proc")),
                ("GENERAL__SNAPSHOT_DIR", d.join("snapshots")),
            ]
            .map(|(k, v)| (format!("RDMA_MON_{k}"), v.display().to_string())),
        )
        .unwrap();
        let published = Arc::new(Published::new(config.poll_interval()));
        Agent::with_netlink(config, published, None)
    }

    fn set_state(&self, up: bool) {
        let state = if up { "4: ACTIVE\n" } else { "1: DOWN\n" };
        let p = self
            .tree
            .path()
            .join("class/infiniband/mlx5_0/ports/1/state");
        std::fs::write(p, state).unwrap();
    }
}

fn flapping(agent: &mut Agent) -> Option<crate::model::finding::Finding> {
    let doc = agent.cycle();
    doc.findings
        .iter()
        .find(|f| f.id == "link_flapping")
        .cloned()
}

/// Up, down, up, down, up: two down→up transitions, a flap (the default
/// analysis.flap_transitions is 2); the snapshot write saves the state.
fn flap_and_save(node: &Node) -> crate::model::finding::Finding {
    let mut agent = node.agent();
    for up in [true, false, true, false] {
        node.set_state(up);
        assert!(flapping(&mut agent).is_none());
    }
    node.set_state(true);
    let f = flapping(&mut agent).expect("two transitions make a flap");
    let doc = agent.cycle();
    agent.write_snapshot(&doc);
    f
}

#[test]
fn a_restart_mid_flap_keeps_the_flap_and_its_first_seen_time() {
    let node = Node::new();
    let before = flap_and_save(&node);
    // Let the wall clock move on, so a re-raised finding would show a later time.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut agent = node.agent();
    let after = flapping(&mut agent).expect("the flap survives the restart");
    assert_eq!(after.first_seen_unix_ms, before.first_seen_unix_ms);
    assert!(after.last_seen_unix_ms > before.first_seen_unix_ms);
    assert_eq!(after.evidence["transitions"], 2);
}

#[test]
fn a_new_boot_starts_fresh() {
    let node = Node::new();
    flap_and_save(&node);
    node.boot("99999999-2222-3333-4444-555555555555");
    let mut agent = node.agent();
    assert!(flapping(&mut agent).is_none());
}

#[test]
fn a_broken_state_file_is_an_error_and_the_engine_starts_fresh() {
    let node = Node::new();
    let state = node.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join(FILE), "{not json").unwrap();
    let e = load(&state, "x").unwrap_err().to_string();
    assert!(e.contains("not a state file"), "{e}");
    // The agent says so and runs.
    let mut agent = node.agent();
    assert!(flapping(&mut agent).is_none());
    // A FIFO where the file belongs: refused, not a hang.
    std::fs::remove_file(state.join(FILE)).unwrap();
    let c = std::ffi::CString::new(state.join(FILE).to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(load(&state, "x").is_err());
}

#[test]
fn save_never_follows_a_planted_symlink_and_replaces_the_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(TMP)).unwrap();
    let s = EngineState {
        carrier: [("eth2".to_string(), 7)].into(),
        ..EngineState::default()
    };
    save(dir.path(), "boot", &s).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(load(dir.path(), "boot").unwrap(), Some(s));
    assert_eq!(load(dir.path(), "another boot").unwrap(), None);
    assert!(!dir.path().join(TMP).exists());
}
