//! Amazon Aurora as real processes on loopback (issue 23): the model's writer and six segments
//! (zones {1, 2}, {3, 4}, {5, 6}), driven by a client of puts and gets. Reference: §2.1 (a
//! zone down, writes go on; a zone and one more, reads go on), §4.2 (commit at the VDL, reads at
//! one segment), §4.3 (a restarted writer recovers at the next epoch from a read quorum).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::aurora::AuroraService;
use impls::client::Driven;
use impls::cluster::{Cluster, ClusterSpec};
use impls::jepsen::{History, HistoryEvent, JepsenOpts, Nemesis, OpRecord, Outcome};
use impls::service::{self, Jepsen, Service};
use models::raft::kv::{KvOp, KvRet};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aurora-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(name: &str, bug: Option<&'static str>) -> Cluster {
    Cluster::start(ClusterSpec {
        protocol: "aurora".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes: 7,
        base_port: None,
        tuning: AuroraService::tuning(),
        bug,
        seed: None,
        capacity: None,
    })
    .unwrap()
}

fn status(cluster: &Cluster, i: usize) -> String {
    cluster.query_status(i).ok().flatten().unwrap_or_default()
}

/// Waits until node `i`'s role starts with `prefix`.
fn wait_for(cluster: &Cluster, i: usize, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(cluster, i);
        if s.starts_with(prefix) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that records what it did, as `jepsen` does, for the history check.
struct Recorded {
    client: Driven<AuroraService>,
    history: History<KvOp, KvRet>,
    t0: Instant,
    process: u64,
}

impl Recorded {
    fn new(cluster: &Cluster) -> Recorded {
        let client =
            Driven::<AuroraService>::start(&cluster.config, &AuroraService::tuning(), None)
                .unwrap();
        Recorded {
            client,
            history: History::default(),
            t0: Instant::now(),
            process: 0,
        }
    }

    fn call(&mut self, op: KvOp, timeout: Duration) -> Option<KvRet> {
        let i = self.history.ops.len();
        let invoked = self.t0.elapsed().as_secs_f64();
        let got = self.client.call(op.clone(), timeout).ok();
        let outcome = match (&got, &op) {
            (Some(ret), _) => Outcome::Ok(ret.clone()),
            (None, KvOp::Get(_)) => Outcome::Fail,
            (None, _) => Outcome::Info,
        };
        self.history.ops.push(OpRecord {
            process: self.process,
            id: i as u64,
            shown: format!("{op:?} => {got:?}"),
            op,
            outcome,
            invoked,
            completed: Some(self.t0.elapsed().as_secs_f64()),
        });
        self.history.events.push(HistoryEvent {
            op: i,
            completes: false,
        });
        self.history.events.push(HistoryEvent {
            op: i,
            completes: true,
        });
        // After an indefinite put the client carries on as a new process (its put may still
        // take effect).
        if matches!(self.history.ops[i].outcome, Outcome::Info) {
            self.process += 1;
        }
        got
    }

    fn put(&mut self, k: &str, v: &str, timeout: Duration) -> bool {
        self.call(KvOp::Put(k.into(), v.into()), timeout).is_some()
    }

    fn get(&mut self, k: &str) -> Option<String> {
        match self.call(KvOp::Get(k.into()), Duration::from_secs(3)) {
            Some(KvRet::Value(v)) => Some(v),
            _ => None,
        }
    }

    fn check(&self, dir: &std::path::Path) -> impls::service::Checked {
        AuroraService::check(&self.history, dir).unwrap()
    }
}

const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(5);

#[test]
fn puts_commit_at_the_vdl_and_gets_read_them_back_and_junk_bytes_stop_no_node() {
    let mut cluster = start("normal", None);
    assert_eq!(
        wait_for(&cluster, 0, "writer of epoch 1"),
        "writer of epoch 1 (recovered VDL 0)"
    );
    let mut c = Recorded::new(&cluster);
    for i in 0..50 {
        assert!(c.put(&format!("k{}", i % 5), &i.to_string(), LONG));
    }
    // Malformed frames, to the writer and to a segment.
    for node in [0, 3] {
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0, 0, 0, 5, b'j', b'u', b'n', b'k', b'!', 0xff, 0xfe]);
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0xff; 64]);
    }
    for k in 0..5 {
        assert_eq!(c.get(&format!("k{k}")), Some((45 + k).to_string()));
    }
    assert_eq!(c.get("never"), Some(String::new()));
    assert!(c.put("k0", "last", LONG));
    assert_eq!(c.get("k0").as_deref(), Some("last"));
    for node in 1..7 {
        assert_eq!(status(&cluster, node), "segment of epoch 1");
    }
    let checked = c.check(cluster.config_path.parent().unwrap());
    assert!(checked.ok, "{:?}", checked.failure);
    // Only redo records crossed the network: well under a page a put.
    let counts = cluster.query_counts(0).unwrap();
    let bytes = counts[impls::node::BYTES_TO_PEERS];
    assert!(bytes < 52 * 6 * 1024, "{bytes} bytes for 52 records");
    cluster.stop();
}

#[test]
fn writes_go_on_with_a_zone_down() {
    let mut cluster = start("zone", None);
    let mut c = Recorded::new(&cluster);
    assert!(c.put("x", "1", LONG));
    cluster.kill(5);
    cluster.kill(6);
    for i in 2..20 {
        assert!(c.put("x", &i.to_string(), LONG), "put {i} with a zone down");
    }
    assert_eq!(c.get("x").as_deref(), Some("19"));
    // The zone comes back with its log and catches up.
    cluster.restart(5).unwrap();
    cluster.restart(6).unwrap();
    assert!(c.put("x", "20", LONG));
    let checked = c.check(cluster.config_path.parent().unwrap());
    assert!(checked.ok, "{:?}", checked.failure);
    cluster.stop();
}

#[test]
fn writes_stop_with_a_zone_and_one_more_down_while_reads_go_on() {
    let mut cluster = start("zone-plus-one", None);
    let mut c = Recorded::new(&cluster);
    assert!(c.put("x", "1", LONG));
    for n in [4, 5, 6] {
        cluster.kill(n);
    }
    assert!(!c.put("x", "2", SHORT), "no write quorum: not acknowledged");
    assert!(!c.put("y", "3", SHORT), "no write quorum: not acknowledged");
    // §4.2.3: read at the VDL from one segment whose SCL reaches it.
    assert_eq!(c.get("x").as_deref(), Some("1"));
    assert_eq!(c.get("y").as_deref(), Some(""));
    for n in [4, 5, 6] {
        cluster.restart(n).unwrap();
    }
    assert!(c.put("x", "4", LONG), "writes go on once a quorum is back");
    assert_eq!(c.get("x").as_deref(), Some("4"));
    let checked = c.check(cluster.config_path.parent().unwrap());
    assert!(checked.ok, "{:?}", checked.failure);
    cluster.stop();
}

#[test]
fn a_restarted_writer_recovers_every_acknowledged_write_from_a_read_quorum() {
    let mut cluster = start("recovery", None);
    let mut c = Recorded::new(&cluster);
    for i in 0..30 {
        assert!(c.put(&format!("k{}", i % 6), &i.to_string(), LONG));
    }
    // kill -9 the writer, and half the segments: it recovers from the other three (Vr = 3).
    for n in [0, 1, 2, 3] {
        cluster.kill(n);
    }
    cluster.restart(0).unwrap();
    let role = wait_for(&cluster, 0, "writer of epoch 2");
    assert!(
        role.starts_with("writer of epoch 2 (recovered VDL"),
        "{role}"
    );
    for k in 0..6 {
        assert_eq!(c.get(&format!("k{k}")), Some((24 + k).to_string()), "k{k}");
    }
    for n in [1, 2, 3] {
        cluster.restart(n).unwrap();
    }
    assert!(c.put("k0", "after", LONG));
    assert_eq!(c.get("k0").as_deref(), Some("after"));
    let checked = c.check(cluster.config_path.parent().unwrap());
    assert!(checked.ok, "{:?}", checked.failure);
    cluster.stop();
}

/// `write-quorum-3`: a put acknowledged by segments 1-3 alone; the recovery after the writer's
/// kill reads segments 4-6, truncates it, and the history check finds the write lost.
#[test]
fn write_quorum_3_loses_an_acknowledged_write_and_the_check_rejects_the_history() {
    let mut cluster = start("write-quorum-3", Some("write-quorum-3"));
    let mut c = Recorded::new(&cluster);
    assert!(c.put("x", "1", LONG));
    // Let the first put reach every segment before three of them go.
    std::thread::sleep(Duration::from_millis(300));
    for n in [4, 5, 6] {
        cluster.kill(n);
    }
    assert!(
        c.put("x", "2", LONG),
        "Vw = 3: acknowledged by segments 1-3"
    );
    for n in [0, 1, 2, 3] {
        cluster.kill(n);
    }
    for n in [4, 5, 6, 0] {
        cluster.restart(n).unwrap();
    }
    assert!(wait_for(&cluster, 0, "writer of epoch 2").starts_with("writer of epoch 2"));
    assert_eq!(
        c.get("x").as_deref(),
        Some("1"),
        "the recovery truncated x = 2"
    );
    let checked = c.check(cluster.config_path.parent().unwrap());
    assert!(!checked.ok, "the lost write must be caught");
    assert_eq!(checked.verdict, "not linearizable");
    let failure = checked.failure.unwrap();
    assert!(failure.contains("acknowledged write was lost"), "{failure}");
    cluster.stop();
}

#[test]
fn jepsen_aurora_runs_its_kill_plan_and_the_history_checks() {
    let dir = std::env::temp_dir().join(format!("aurora-jepsen-{}", std::process::id()));
    let opts = JepsenOpts {
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: dir.clone(),
        nodes: 3,
        clients: 3,
        duration: Duration::from_secs(10),
        nemesis: vec![Nemesis::Kill],
        seed: 1,
        keys: 3,
        op_timeout: Duration::from_millis(500),
        tuning: AuroraService::jepsen_tuning(),
        bug: None,
        insecure: false,
    };
    let report = service::find("aurora").unwrap().jepsen(&opts).unwrap();
    assert!(
        report.passed(),
        "{} {:?} {:?}",
        report.check.verdict,
        report.check.failure,
        report.expectations
    );
    assert_eq!(report.faults.len(), 4, "{:?}", report.faults);
    assert_eq!(report.expectations.len(), 5);
    let _ = std::fs::remove_dir_all(&dir);
}
