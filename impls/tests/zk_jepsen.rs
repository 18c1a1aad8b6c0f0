//! `jepsen zk` (issue 21): the ensemble under kills, partitions and pauses keeps its writes
//! linearizable, each session's operations in FIFO order and the lock recipe to one holder;
//! the lock clients' `lock-no-recheck` is caught live, in ZooKeeper's own order.

use std::path::PathBuf;
use std::time::Duration;

use impls::jepsen::{JepsenOpts, JepsenReport, Nemesis};
use impls::service::{self, Service};
use impls::zk::ZkService;

fn opts(name: &str, nemesis: Vec<Nemesis>, bug: Option<&'static str>, seed: u64) -> JepsenOpts {
    let dir = std::env::temp_dir().join(format!("zk-jepsen-{name}-{}", std::process::id()));
    JepsenOpts {
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir,
        nodes: 3,
        clients: 4,
        duration: Duration::from_secs(8),
        nemesis,
        seed,
        keys: 3,
        op_timeout: Duration::from_secs(2),
        tuning: ZkService::jepsen_tuning(),
        bug,
        insecure: false,
    }
}

fn run(o: &JepsenOpts) -> JepsenReport {
    service::find("zk").unwrap().jepsen(o).unwrap()
}

#[test]
fn kills_partitions_and_pauses_keep_all_three_guarantees() {
    let o = opts(
        "faults",
        vec![Nemesis::Kill, Nemesis::Partition, Nemesis::Pause],
        None,
        3,
    );
    let report = run(&o);
    assert!(
        report.passed(),
        "{} {:?}",
        report.check.verdict,
        report.check.failure
    );
    let v = &report.check.verdict;
    for property in [
        "writes linearizable",
        "FIFO client order",
        "one lock holder",
    ] {
        assert!(v.contains(property), "{v}");
    }
    assert!(!report.faults.is_empty());
    assert!(report.ok > 1000, "{}", report.ok);
    let _ = std::fs::remove_dir_all(&o.dir);
}

/// See: issue 21. A waiter that takes the lock when its predecessor's node goes, without listing
/// the children again, holds beside the holder below when the predecessor was a waiter whose
/// session expired in a pause.
#[test]
fn lock_no_recheck_is_caught_as_two_holders() {
    let o = opts("no-recheck", Vec::new(), Some("lock-no-recheck"), 1);
    let report = run(&o);
    assert!(report.refuted(), "{}", report.check.verdict);
    assert_eq!(report.check.verdict, "two lock holders");
    let failure = report.check.failure.clone().unwrap_or_default();
    assert!(failure.contains("lock recipe (§2.4)"), "{failure}");
    assert!(failure.contains("was the lowest"), "{failure}");
    let _ = std::fs::remove_dir_all(&o.dir);
}

#[test]
fn lock_no_recheck_is_the_clients_bug_and_nodes_refuse_it() {
    let zk = service::find("zk").unwrap();
    assert!(zk.bugs().contains(&"lock-no-recheck"));
    // `node zk --bug lock-no-recheck`: a one-line refusal, not a server that ignores it.
    let dir = std::env::temp_dir().join(format!("zk-jepsen-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ports = impls::cluster::free_ports(2).unwrap();
    let config = dir.join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            "[nodes]\n0 = \"127.0.0.1:{}\"\n\n[data]\n0 = \"127.0.0.1:{}\"\n",
            ports[0], ports[1]
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["zk", "--id", "0", "--bug", "lock-no-recheck", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("node-0"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("node:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("jepsen zk"), "{stderr}");
    assert!("nope".parse::<Nemesis>().unwrap_err().contains("pause"));
    let _ = std::fs::remove_dir_all(&dir);
}
