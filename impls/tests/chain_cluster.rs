//! Chain replication and CRAQ as real processes on loopback, through the same registry,
//! cluster, client and Jepsen code as Raft: nodes killed, cut off and losing messages (the
//! master removes them), a restarted node that joins again at the tail with the old tail's
//! history, and `craq-dirty-read` caught from the recorded history.

use std::path::PathBuf;
use std::time::Duration;

use impls::chain::{ChainService, CraqService};
use impls::client::{Driven, CLIENT_IDS};
use impls::cluster::{Cluster, ClusterSpec};
use impls::jepsen::{self, JepsenOpts, Nemesis};
use impls::service::Service;
use models::raft::kv::{KvOp, KvRet};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chain-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn status(cluster: &Cluster, i: usize) -> String {
    cluster.query_status(i).unwrap().unwrap_or_default()
}

#[test]
fn the_master_removes_a_killed_tail_and_it_rejoins_at_the_tail() {
    let mut cluster = Cluster::start(ClusterSpec {
        protocol: "chain".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch("basic"),
        nodes: 4,
        base_port: None,
        tuning: ChainService::tuning(),
        bug: None,
        seed: None,
        capacity: None,
    })
    .unwrap();
    let mut c = Driven::<ChainService>::start(
        &cluster.config,
        &ChainService::tuning(),
        Some(CLIENT_IDS + 1),
    )
    .unwrap();
    let op = Duration::from_secs(5);
    let put = KvOp::Put("x".into(), "1".into());
    assert_eq!(c.call(put, op).unwrap(), KvRet::Ok);
    assert_eq!(status(&cluster, 0), "master of chain 1 -> 2 -> 3");
    // The tail fails: the master's probes find it, and node 2 is the tail.
    cluster.kill(3);
    let append = KvOp::Append("x".into(), "2".into());
    assert_eq!(c.call(append, op).unwrap(), KvRet::Ok);
    assert_eq!(
        c.call(KvOp::Get("x".into()), op).unwrap(),
        KvRet::Value("12".into())
    );
    assert_eq!(status(&cluster, 0), "master of chain 1 -> 2");
    // Started again, it has lost its state: it joins at the tail, the old tail hands it the
    // history, and it serves the reads at the tail.
    cluster.restart(3).unwrap();
    let deadline = std::time::Instant::now() + op;
    while status(&cluster, 3) != "node of chain 1 -> 2 -> 3" {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            status(&cluster, 3)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(&cluster, 0), "master of chain 1 -> 2 -> 3");
    assert_eq!(
        c.call(KvOp::Get("x".into()), op).unwrap(),
        KvRet::Value("12".into())
    );
    // Now the head fails, and comes back at the tail: 2 -> 3 -> 1.
    cluster.kill(1);
    let append = KvOp::Append("x".into(), "3".into());
    assert_eq!(c.call(append, op).unwrap(), KvRet::Ok);
    cluster.restart(1).unwrap();
    while status(&cluster, 0) != "master of chain 2 -> 3 -> 1"
        || status(&cluster, 1).starts_with('c')
    {
        assert!(
            std::time::Instant::now() < deadline + op,
            "{}",
            status(&cluster, 1)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        c.call(KvOp::Get("x".into()), op).unwrap(),
        KvRet::Value("123".into())
    );
}

fn opts(name: &str, nemesis: Vec<Nemesis>, bug: Option<&'static str>) -> JepsenOpts {
    JepsenOpts {
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes: 4,
        clients: 4,
        duration: Duration::from_secs(7),
        nemesis,
        seed: 3,
        keys: 2,
        op_timeout: Duration::from_secs(2),
        tuning: CraqService::tuning(),
        bug,
        insecure: false,
    }
}

#[test]
fn a_craq_jepsen_run_with_kills_partitions_loss_and_delays_is_linearizable() {
    let nemesis = vec![
        Nemesis::Kill,
        Nemesis::Partition,
        Nemesis::Loss,
        Nemesis::Delay,
    ];
    let o = opts("jepsen", nemesis, None);
    let report = jepsen::run::<CraqService>(&o).unwrap();
    assert_eq!(report.check.verdict, "linearizable", "{report:?}");
    assert!(!report.faults.is_empty(), "{report:?}");
    assert!(report.ok_after_heal > 0, "{report:?}");
    assert!(report.passed());
}

/// The model's `craq-dirty-read` on real nodes: a node answers with its dirty version without
/// asking the tail, and the history is not linearizable.
#[test]
fn craq_dirty_read_on_real_nodes_is_caught() {
    let report =
        jepsen::run::<CraqService>(&opts("dirty", Vec::new(), Some("craq-dirty-read"))).unwrap();
    assert!(report.refuted(), "{report:?}");
    assert_eq!(report.check.verdict, "not linearizable");
    assert!(report.check.failure.unwrap().contains("process"));
}
