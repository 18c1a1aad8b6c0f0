//! VMware FT as real processes on loopback: the model's primary, backup and test-and-set
//! server, driven by the model's client. A stream of inputs gets its outputs; `kill -9` of the
//! primary fails over to the backup with outputs consistent with those already received;
//! SIGSTOP of the primary (it wakes up after the backup went live) leaves one live VM, and two
//! under `go-live-without-test-and-set`, caught from the client's outputs by the model's own
//! Output Requirement check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::cluster::{Cluster, ClusterSpec};
use impls::service::Service;
use impls::vmft::{VmftService, World};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmft-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(name: &str, nodes: usize, bug: Option<&'static str>) -> Cluster {
    Cluster::start(ClusterSpec {
        protocol: "vmft".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes,
        base_port: None,
        tuning: VmftService::tuning(),
        bug,
        seed: None,
        capacity: None,
    })
    .unwrap()
}

fn status(cluster: &Cluster, i: usize) -> String {
    cluster.query_status(i).ok().flatten().unwrap_or_default()
}

fn wait_for(cluster: &Cluster, i: usize, prefix: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let s = status(cluster, i);
        if s.starts_with(prefix) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_primary_answers_a_stream_of_inputs_held_until_the_backup_has_them() {
    let cluster = start("normal", 3, None);
    let mut world = World::new(&cluster.config).unwrap();
    world.inputs(200).unwrap();
    // Garbage from an unknown peer does not bring a node down.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(cluster.addr(0)).unwrap();
        let _ = s.write_all(&[0, 0, 0, 5, b'j', b'u', b'n', b'k', b'!', 0xff, 0xfe]);
    }
    world.inputs(100).unwrap();
    world.output_requirement().unwrap();
    assert_eq!(world.received().len(), 300);
    assert_eq!(world.answered_by(0), 300, "only the primary answers");
    assert_eq!(status(&cluster, 0), "primary");
    assert_eq!(status(&cluster, 1), "backup");
    assert_eq!(status(&cluster, 2), "test-and-set: clear");
}

#[test]
fn the_unreplicated_machine_answers_alone() {
    let cluster = start("alone", 1, None);
    let mut world = World::new(&cluster.config).unwrap();
    world.inputs(50).unwrap();
    world.output_requirement().unwrap();
    assert_eq!(status(&cluster, 0), "live");
}

/// §2.3: the primary fails (kill -9); the backup hears no logging traffic, wins the
/// test-and-set, replays its log, goes live, and the outputs continue, consistent with those
/// the primary sent.
#[test]
fn kill_9_of_the_primary_fails_over_to_the_backup_with_consistent_outputs() {
    let mut cluster = start("kill", 3, None);
    let mut world = World::new(&cluster.config).unwrap();
    world.inputs(100).unwrap();
    cluster.kill(0);
    world.inputs(100).unwrap();
    world.output_requirement().unwrap();
    assert!(world.answered_by(1) > 0, "the new primary answers");
    assert_eq!(status(&cluster, 1), "live");
    assert_eq!(status(&cluster, 2), "test-and-set: set by 1");
}

/// The primary is paused (SIGSTOP) long enough for the backup to go live, then wakes up: it
/// asks the test-and-set, loses, and halts. One live VM, outputs consistent.
#[test]
fn a_paused_primary_that_wakes_after_the_failover_halts() {
    let mut cluster = start("pause", 3, None);
    let mut world = World::new(&cluster.config).unwrap();
    world.inputs(50).unwrap();
    assert_eq!(status(&cluster, 1), "backup");
    cluster.pause(0).unwrap();
    world.inputs(50).unwrap();
    assert_eq!(status(&cluster, 1), "live");
    cluster.resume(0).unwrap();
    world.inputs_for(Duration::from_millis(1500)).unwrap();
    let woken = wait_for(&cluster, 0, "halted", Duration::from_secs(3));
    assert_eq!(woken, "halted: lost the test-and-set");
    assert_eq!(status(&cluster, 1), "live");
    assert_eq!(status(&cluster, 2), "test-and-set: set by 1");
    world.output_requirement().unwrap();
    assert!(world.answered_by(1) > 0, "the new primary answers");
}

/// The same pause under `go-live-without-test-and-set`: the woken primary goes live too (split
/// brain), and its outputs contradict the backup's: the Output Requirement check on the
/// client's outputs catches it.
#[test]
fn go_live_without_test_and_set_gives_two_live_vms_and_the_outputs_show_it() {
    let mut cluster = start("split", 3, Some("go-live-without-test-and-set"));
    let mut world = World::new(&cluster.config).unwrap();
    world.inputs(50).unwrap();
    assert_eq!(status(&cluster, 1), "backup");
    cluster.pause(0).unwrap();
    world.inputs(50).unwrap();
    cluster.resume(0).unwrap();
    world.inputs_for(Duration::from_millis(1500)).unwrap();
    let woken = wait_for(&cluster, 0, "live", Duration::from_secs(3));
    assert_eq!(woken, "live");
    assert_eq!(status(&cluster, 1), "live");
    assert_eq!(status(&cluster, 2), "test-and-set: clear");
    let broken = world.output_requirement().unwrap_err();
    assert!(broken.contains("not consistent"), "{broken}");
}
