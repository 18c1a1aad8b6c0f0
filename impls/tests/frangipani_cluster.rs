//! Frangipani as real processes on loopback (issue 24): file servers `a` (node 0) and `b`
//! (node 1), the lock server (node 2) and Petal (node 3), the model's actors once per file.
//! Reference: §5 (cache coherence under locks: a read through one server sees a write through
//! the other), §4 (a failed server's log, replayed by another, only records newer than the
//! block), §6 (the lock server finds the lease expired and starts the recovery).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use impls::client::Driven;
use impls::cluster::{Cluster, ClusterSpec};
use impls::frangipani::{check_history, FrangipaniService};
use impls::jepsen::{History, HistoryEvent, OpRecord, Outcome};
use impls::service::{Service, Tuning};
use models::frangipani::tcp::{FileCall, FileOp, FileRet};

const A: usize = 0;
const B: usize = 1;
const LOCK_SERVER: usize = 2;
const PETAL: usize = 3;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("frangipani-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The tuning with the update demon's period: long keeps the data dirty in the cache.
fn tuning(sync: Duration) -> Tuning {
    Tuning {
        timeout: sync..sync,
        ..FrangipaniService::tuning()
    }
}

fn start(name: &str, bug: Option<&'static str>, sync: Duration) -> Cluster {
    let cluster = Cluster::start(ClusterSpec {
        protocol: "frangipani".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes: 4,
        base_port: None,
        tuning: tuning(sync),
        bug,
        seed: None,
        capacity: None,
    })
    .unwrap();
    for fs in [A, B] {
        let s = wait_for(&cluster, fs, "file server: 0 files");
        assert!(s.starts_with("file server: 0 files"), "node {fs}: {s}");
    }
    cluster
}

fn status(cluster: &Cluster, i: usize) -> String {
    cluster.query_status(i).ok().flatten().unwrap_or_default()
}

/// Waits until node `i`'s role starts with `prefix`.
fn wait_for(cluster: &Cluster, i: usize, prefix: &str) -> String {
    wait_until(cluster, i, |s| s.starts_with(prefix))
}

/// Waits (at most 5 s) until node `i`'s role satisfies `ok`, and returns it.
fn wait_until(cluster: &Cluster, i: usize, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(cluster, i);
        if ok(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that records what it did, for the history check.
struct Recorded {
    client: Driven<FrangipaniService>,
    history: History<FileCall, FileRet>,
    t0: Instant,
}

const LONG: Duration = Duration::from_secs(5);

impl Recorded {
    fn new(cluster: &Cluster) -> Recorded {
        let client =
            Driven::<FrangipaniService>::start(&cluster.config, &FrangipaniService::tuning(), None)
                .unwrap();
        Recorded {
            client,
            history: History::default(),
            t0: Instant::now(),
        }
    }

    fn call(&mut self, server: usize, op: FileOp) -> Option<FileRet> {
        let op = FileCall { server, op };
        let i = self.history.ops.len();
        let invoked = self.t0.elapsed().as_secs_f64();
        let got = self.client.call(op.clone(), LONG).ok();
        let outcome = match (&got, &op.op) {
            (Some(ret), _) => Outcome::Ok(ret.clone()),
            (None, FileOp::Write { .. }) => Outcome::Info,
            (None, _) => Outcome::Fail,
        };
        self.history.ops.push(OpRecord {
            process: i as u64,
            id: i as u64,
            shown: format!("{op:?} => {got:?}"),
            op,
            outcome,
            invoked,
            completed: Some(self.t0.elapsed().as_secs_f64()),
        });
        for completes in [false, true] {
            self.history.events.push(HistoryEvent { op: i, completes });
        }
        got
    }

    fn write(&mut self, server: usize, name: &str, data: &str) -> bool {
        let op = FileOp::Write {
            name: name.into(),
            data: data.into(),
        };
        self.call(server, op) == Some(FileRet::Written)
    }

    fn read(&mut self, server: usize, name: &str) -> Option<String> {
        match self.call(server, FileOp::Read { name: name.into() }) {
            Some(FileRet::Data(d)) => Some(d),
            other => panic!("read {name} at {server}: {other:?}"),
        }
    }

    fn ls(&mut self, server: usize) -> Vec<String> {
        match self.call(server, FileOp::Ls) {
            Some(FileRet::Names(names)) => names,
            other => panic!("ls at {server}: {other:?}"),
        }
    }

    fn check(&self, cluster: &Cluster) -> impls::service::Checked {
        check_history(&self.history, cluster.config_path.parent().unwrap()).unwrap()
    }
}

/// Reference: §5: a read through one file server sees the write through the other (the
/// reader's lock request revokes the writer's lock, which writes its dirty block to Petal
/// first); §6: many readers share a read lock. Junk bytes stop no node.
#[test]
fn writes_through_a_are_read_through_b_and_junk_stops_no_node() {
    let mut cluster = start("coherence", None, Duration::from_secs(60));
    let mut c = Recorded::new(&cluster);
    assert!(c.write(A, "notes", "one"));
    assert_eq!(c.read(B, "notes").as_deref(), Some("one"));
    assert_eq!(
        c.read(A, "notes").as_deref(),
        Some("one"),
        "a shared read lock"
    );
    assert!(c.write(B, "notes", "two words"));
    assert!(c.write(B, "todo", "x"));
    assert_eq!(c.read(A, "notes").as_deref(), Some("two words"));
    assert_eq!(c.read(A, "never").as_deref(), Some(""));
    for node in 0..4 {
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0, 0, 0, 5, b'j', b'u', b'n', b'k', b'!', 0xff]);
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0xff; 64]);
    }
    for i in 0..10 {
        let (w, r) = if i % 2 == 0 { (A, B) } else { (B, A) };
        assert!(c.write(w, "counter", &i.to_string()));
        assert_eq!(c.read(r, "counter"), Some(i.to_string()));
    }
    assert_eq!(c.ls(B), vec!["counter", "notes", "todo"]);
    let checked = c.check(&cluster);
    assert!(checked.ok, "{:?}", checked.failure);
    assert!(status(&cluster, LOCK_SERVER).starts_with("lock server: "));
    assert!(status(&cluster, PETAL).starts_with("Petal: 3 blocks"));
    cluster.stop();
}

/// Reference: §4, §6: kill -9 file server `a` while its writes are in its log in Petal but
/// only in its cache otherwise (the update demon's period is long). The lock server finds its
/// lease expired and asks `b`'s recovery demon to replay `a`'s log; every acknowledged write
/// reads back through `b`. Petal, restarted, keeps its blocks and logs; `a`, restarted, joins
/// again once its log is recovered and reads them too.
#[test]
fn a_killed_servers_dirty_log_is_replayed_by_the_survivor() {
    let mut cluster = start("recovery", None, Duration::from_secs(60));
    let mut c = Recorded::new(&cluster);
    assert!(c.write(B, "f0", "old"));
    assert!(c.write(A, "f0", "v0"));
    // b's read makes a write f0 to Petal and keep a read lock: a's record of f0 is not newer
    // than the block any more.
    assert_eq!(c.read(B, "f0").as_deref(), Some("v0"));
    for i in 1..5 {
        assert!(c.write(A, &format!("f{i}"), &format!("v{i}")));
    }
    let a = status(&cluster, A);
    assert!(a.starts_with("file server: 5 files, 4 dirty"), "{a}");
    let petal = status(&cluster, PETAL);
    assert!(petal.ends_with("6 log records"), "{petal}");
    cluster.kill(A);
    let killed = Instant::now();
    assert_eq!(c.read(B, "f1").as_deref(), Some("v1"));
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_millis(1200),
        "{waited:?}: before the lease expired"
    );
    for i in 2..5 {
        assert_eq!(c.read(B, &format!("f{i}")), Some(format!("v{i}")), "f{i}");
    }
    assert_eq!(c.read(B, "f0").as_deref(), Some("v0"));
    // a's log: f0 v2 (skipped: the block has it), f1..f4 v1 (applied).
    let b = status(&cluster, B);
    assert!(b.ends_with("replayed node 0's log (4 records)"), "{b}");
    let ls = wait_until(&cluster, LOCK_SERVER, |s| {
        s.contains("recovered node 0's log")
    });
    assert!(ls.contains("recovered node 0's log"), "{ls}");
    // Petal keeps everything across a restart; a comes back and reads from it.
    cluster.kill(PETAL);
    cluster.restart(PETAL).unwrap();
    cluster.restart(A).unwrap();
    let a = wait_for(&cluster, A, "file server: 0 files");
    assert!(a.starts_with("file server: 0 files"), "{a}");
    for i in 1..5 {
        assert_eq!(
            c.read(A, &format!("f{i}")),
            Some(format!("v{i}")),
            "f{i} at a"
        );
    }
    assert!(c.write(A, "f0", "after"));
    // b asks Petal again after its restart (b pings it first).
    assert_eq!(c.read(B, "f0").as_deref(), Some("after"));
    assert!(c.write(B, "f5", "new"));
    assert_eq!(c.read(A, "f5").as_deref(), Some("new"));
    let checked = c.check(&cluster);
    assert!(checked.ok, "{:?}", checked.failure);
    cluster.stop();
}

/// Bad input: an unknown file server or malformed arguments get a one-line error and exit 2;
/// a node with an id not in the cluster file does not start.
#[test]
fn bad_input_is_a_one_line_error_and_a_non_zero_exit() {
    let dir = scratch("bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("cluster.toml");
    let mut c = impls::config::ClusterConfig::default();
    for i in 0..4 {
        c.nodes.insert(
            stateright::actor::Id::from(i),
            std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        );
    }
    std::fs::write(&config, c.to_toml()).unwrap();
    let client = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_client"))
            .args([
                "frangipani",
                "--cluster",
                config.to_str().unwrap(),
                "--timeout",
                "1",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, says) in [
        (&["read", "c", "notes"][..], "unknown file server 'c'"),
        (&["write", "a", "notes"][..], "expected: write FS NAME DATA"),
        (&["read", "a"][..], "expected:"),
        (&["rm", "a", "notes"][..], "expected:"),
        (&["ls"][..], "expected:"),
    ] {
        let out = client(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let node = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "frangipani",
            "--config",
            config.to_str().unwrap(),
            "--id",
            "7",
        ])
        .args(["--data-dir", dir.join("node-7").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&node.stderr);
    assert!(!node.status.success(), "{err}");
    assert!(err.contains("node 7 is not in the cluster file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `release-without-flush` (§5): `a` gives its lock up with the write still dirty in its
/// cache; `grant-without-revoke` (§6): the lock server grants `b` the read lock while `a` holds
/// the write lock. Either way `b` reads the old block from Petal: a stale read, which the
/// history check rejects.
#[test]
fn release_without_flush_and_grant_without_revoke_serve_a_stale_read() {
    for bug in ["release-without-flush", "grant-without-revoke"] {
        let mut cluster = start(bug, Some(bug), Duration::from_secs(60));
        let mut c = Recorded::new(&cluster);
        assert!(c.write(A, "notes", "one"));
        assert_eq!(
            c.read(B, "notes").as_deref(),
            Some(""),
            "{bug}: the stale read"
        );
        let checked = c.check(&cluster);
        assert!(!checked.ok, "{bug}: the stale read must be caught");
        assert_eq!(checked.verdict, "not linearizable");
        cluster.stop();
    }
}

/// `replay-without-version` (§4): `a`'s log holds a write that `b` has since overwritten; the
/// demon replays it over `b`'s newer block, and a read after the recovery sees the lost update.
#[test]
fn replay_without_version_puts_an_old_write_back_and_the_check_rejects_it() {
    let mut cluster = start(
        "replay-without-version",
        Some("replay-without-version"),
        Duration::from_secs(60),
    );
    let mut c = Recorded::new(&cluster);
    assert!(c.write(A, "f", "one"));
    assert!(c.write(B, "f", "two"));
    // a's read makes b write its dirty block to Petal and keep a read lock.
    assert_eq!(c.read(A, "f").as_deref(), Some("two"));
    cluster.kill(A);
    assert_eq!(c.read(B, "f").as_deref(), Some("two"), "b's cache");
    let ls = wait_until(&cluster, LOCK_SERVER, |s| {
        s.contains("recovered node 0's log")
    });
    assert!(ls.contains("recovered node 0's log"), "{ls}");
    let b = status(&cluster, B);
    assert!(b.ends_with("replayed node 0's log (1 records)"), "{b}");
    // a comes back without a cache and reads Petal, where the replay put "one" back.
    cluster.restart(A).unwrap();
    let a = wait_for(&cluster, A, "file server: 0 files");
    assert!(a.starts_with("file server: 0 files"), "{a}");
    assert_eq!(c.read(A, "f").as_deref(), Some("one"), "the lost update");
    let checked = c.check(&cluster);
    assert!(!checked.ok, "the lost update must be caught");
    cluster.stop();
}
