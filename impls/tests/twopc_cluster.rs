//! Two-phase commit as real processes on loopback, through the same registry, cluster, client
//! and Jepsen code as Raft: shards killed (`kill -9`) and restarted from storage, partitions,
//! and the `early-unlock` bug caught from the recorded history.

use std::path::PathBuf;
use std::time::Duration;

use impls::client::{Driven, CLIENT_IDS};
use impls::cluster::{Cluster, ClusterSpec};
use impls::jepsen::{self, JepsenOpts, Nemesis};
use impls::service::{Client, Service};
use impls::twopc::TwoPcService;
use properties::commitment::Decision;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twopc-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn opts(name: &str, nemesis: Vec<Nemesis>, bug: Option<&'static str>) -> JepsenOpts {
    JepsenOpts {
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes: 2,
        clients: 4,
        duration: Duration::from_secs(7),
        nemesis,
        seed: 5,
        keys: 3,
        op_timeout: Duration::from_secs(2),
        tuning: TwoPcService::jepsen_tuning(),
        bug,
        insecure: false,
    }
}

#[test]
fn a_transaction_commits_across_shards_and_a_conflicting_one_aborts() {
    let cluster = Cluster::start(ClusterSpec {
        protocol: "twopc".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch("basic"),
        nodes: 2,
        base_port: None,
        tuning: TwoPcService::tuning(),
        bug: None,
        seed: None,
        capacity: None,
    })
    .unwrap();
    let mut c = Driven::<TwoPcService>::start(
        &cluster.config,
        &TwoPcService::tuning(),
        Some(CLIENT_IDS + 1),
    )
    .unwrap();
    let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    // Keys a and b live on different shards.
    let t = TwoPcService::parse_op(&words("r:a w:b")).unwrap();
    assert_eq!(c.call(t, Duration::from_secs(5)).unwrap(), Decision::Commit);
    let t = TwoPcService::parse_op(&words("w:a r:b w:b")).unwrap();
    assert_eq!(c.call(t, Duration::from_secs(5)).unwrap(), Decision::Commit);
}

#[test]
fn a_jepsen_run_with_shard_kills_and_partitions_is_strictly_serializable() {
    let o = opts("jepsen", vec![Nemesis::Kill, Nemesis::Partition], None);
    let report = jepsen::run::<TwoPcService>(&o).unwrap();
    assert_eq!(report.check.verdict, "strict serializable", "{report:?}");
    assert!(!report.faults.is_empty());
    assert!(report.ok_after_heal > 0, "{report:?}");
    assert!(report.passed());
}

/// The model's `early-unlock` bug on real shards: locks released at the Prepared vote let a
/// transaction read a version another is about to replace, and the recorded history has a G2
/// cycle.
#[test]
fn early_unlock_on_real_shards_is_caught_as_a_g2_cycle() {
    let mut o = opts("early-unlock", Vec::new(), Some("early-unlock"));
    o.keys = 2;
    let report = jepsen::run::<TwoPcService>(&o).unwrap();
    assert!(report.refuted(), "{report:?}");
    assert!(report.check.verdict.contains("G2"), "{report:?}");
    let failure = report.check.failure.unwrap();
    assert!(failure.contains("process"), "{failure}");
}
