//! Who may speak to a node (issue 28): a hello is believed only when the sender's certificate,
//! issued by the cluster's own authority, names what the hello claims.
//!
//! Each test starts a real three-node Raft cluster (`cluster raft`, mutual TLS by default) and
//! tries what a process on the same machine could: a forged peer, a client posing as an
//! administrator, an expired certificate, one from a foreign authority. The control run shows the
//! forged `AppendEntries` is well formed: in plaintext (`--insecure`) the node takes it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use impls::cluster::{Cluster, ClusterSpec};
use impls::frame::write_frame;
use impls::node::{AdminTarget, Faults, Wire};
use impls::raft::wal::RaftWal;
use impls::tls::{Authority, Stream, Tls, Who};
use models::raft::actor::{RaftMsg, Storage};
use models::raft::kv::{Command, KvOp};
use models::raft::log::{Entry, EntryKind};
use stateright::actor::Id;

const OP: Duration = Duration::from_secs(2);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spec(dir: &Path) -> ClusterSpec {
    let raft = impls::service::find("raft").unwrap();
    ClusterSpec {
        protocol: "raft".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: dir.to_path_buf(),
        nodes: 3,
        base_port: None,
        tuning: raft.tuning(),
        bug: None,
        seed: None,
        capacity: None,
    }
}

/// The forged message of the issue: a Raft `AppendEntries` of term 1000 from "leader 1", with an
/// entry of its own and `leader_commit: 1`.
fn forged_append_entries() -> Vec<u8> {
    let entry = Entry {
        term: 1000,
        kind: EntryKind::Command(Command {
            client: Id::from(1usize << 41),
            seq: 1,
            op: KvOp::Put("forged".into(), "yes".into()),
        }),
    };
    let msg = RaftMsg::AppendEntries {
        term: 1000,
        leader_id: Id::from(1),
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry],
        leader_commit: 1,
        round: 0,
    };
    serde_json::to_vec(&Wire::Msg(msg)).unwrap()
}

fn hello(id: usize, role: impls::node::Role) -> Vec<u8> {
    serde_json::to_vec(&Wire::<()>::Hello { id, role }).unwrap()
}

/// Says hello as peer 1 on `stream` and sends the forged `AppendEntries`; the write errors are
/// ignored: a node that refuses may close the connection at any point.
fn forge(stream: &Stream) {
    let _ = write_frame(&mut &*stream, &hello(1, impls::node::Role::Peer));
    let _ = write_frame(&mut &*stream, &forged_append_entries());
    std::thread::sleep(Duration::from_millis(300));
}

/// Node `i`'s durable Raft state, as its write-ahead log has it.
fn durable(cluster: &Cluster, i: usize) -> Storage {
    RaftWal::read(&cluster.data_dir(i))
        .unwrap()
        .unwrap_or_default()
}

fn log_of(dir: &Path, i: usize) -> String {
    std::fs::read_to_string(dir.join(format!("node-{i}.log"))).unwrap_or_default()
}

/// Waits until node `i`'s log has a line with every one of `words`.
fn logged(dir: &Path, i: usize, words: &[&str]) -> bool {
    let deadline = Instant::now() + OP;
    while Instant::now() < deadline {
        if log_of(dir, i)
            .lines()
            .any(|l| words.iter().all(|w| l.contains(w)))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A connection to node 0 presenting `tls`'s certificate.
fn connect(cluster: &Cluster, tls: &Tls) -> std::io::Result<Stream> {
    tls.connect(cluster.addr(0), OP, Who::Node(0))
}

// See: issue 28.
#[test]
fn a_forged_append_entries_changes_nothing() {
    let dir = scratch("forged");
    // Kept down, node 0 is the target: no leader sends it anything that would move its term.
    let mut cluster = Cluster::start(spec(&dir)).unwrap();
    cluster.kill(1);
    cluster.kill(2);
    let before = durable(&cluster, 0);
    // 1. Plaintext, no certificate at all.
    let tcp = std::net::TcpStream::connect(cluster.addr(0)).unwrap();
    forge(&Stream::plain(tcp));
    assert!(logged(&dir, 0, &["TLS handshake failed: refused"]));
    // 2. The client certificate, claiming to be peer 1.
    let client = cluster.config.tls(Who::Client).unwrap().unwrap();
    forge(&connect(&cluster, &client).unwrap());
    assert!(logged(
        &dir,
        0,
        &[
            "hello not backed by the certificate",
            "does not name node-1"
        ]
    ));
    // 3. Node 2's certificate, claiming to be peer 1.
    let node2 = cluster.config.tls(Who::Node(2)).unwrap().unwrap();
    forge(&connect(&cluster, &node2).unwrap());
    assert!(logged(&dir, 0, &["peer=1", "does not name node-1"]));
    // The node took neither the term nor the entry.
    let after = durable(&cluster, 0);
    assert!(after.current_term < 1000, "term {}", after.current_term);
    assert_eq!(after.log.last_index(), before.log.last_index());
    let status = cluster.query_status(0).unwrap().unwrap_or_default();
    assert!(!status.contains("1000"), "{status}");
    cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The control: without TLS (`--insecure`) the same bytes do what the issue says. This is what
/// makes the test above mean something.
#[test]
fn in_plaintext_the_forged_append_entries_is_taken() {
    let dir = scratch("forged-plain");
    let mut cluster = Cluster::start_plain(spec(&dir)).unwrap();
    cluster.kill(1);
    cluster.kill(2);
    let tcp = std::net::TcpStream::connect(cluster.addr(0)).unwrap();
    forge(&Stream::plain(tcp));
    let deadline = Instant::now() + OP;
    while durable(&cluster, 0).current_term != 1000 {
        assert!(Instant::now() < deadline, "the forged term was not taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(durable(&cluster, 0).log.last_index() >= 1);
    cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_certificate_cannot_send_fault_commands() {
    let dir = scratch("client-admin");
    let cluster = Cluster::start(spec(&dir)).unwrap();
    let client = cluster.config.tls(Who::Client).unwrap().unwrap();
    // An administrator's hello on a client certificate is refused...
    let as_admin = AdminTarget {
        tls: Some(&client),
        node: 0,
        addr: cluster.addr(0),
    };
    let cut_off = Faults {
        blocked: vec![1, 2],
        ..Faults::default()
    };
    assert!(impls::node::set_faults(as_admin, &cut_off).is_err());
    assert!(logged(&dir, 0, &["role=Admin", "does not name admin"]));
    // ... and so is a fault command on a client's connection.
    let s = connect(&cluster, &client).unwrap();
    write_frame(&mut &s, &hello(1 << 41, impls::node::Role::Client)).unwrap();
    write_frame(
        &mut &s,
        &serde_json::to_vec(&Wire::<()>::Admin(cut_off)).unwrap(),
    )
    .unwrap();
    assert!(logged(&dir, 0, &["fault command from a non-administrator"]));
    // The administrator's certificate works, and node 0 was never cut off.
    assert!(cluster
        .query_status(0)
        .unwrap()
        .is_some_and(|s| !s.is_empty()));
    assert!(!log_of(&dir, 0).contains("faults set"));
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn expired_and_foreign_certificates_are_refused_with_a_reason() {
    let dir = scratch("expired");
    // The cluster's authority is made here, so that the test can issue an expired certificate;
    // `cluster` keeps certificates it finds.
    let ca = Authority::new().unwrap();
    impls::tls::write_certificates(&ca, &dir, 0..3).unwrap();
    let cluster = Cluster::start(spec(&dir)).unwrap();
    // Node 1's name, the right authority, but expired yesterday.
    let expired = scratch("expired-cert");
    std::fs::copy(dir.join("ca.pem"), expired.join("ca.pem")).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (cert, key) = ca
        .issue(
            Who::Node(1),
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .unwrap();
    std::fs::write(expired.join("node-1.pem"), cert).unwrap();
    std::fs::write(expired.join("node-1-key.pem"), key).unwrap();
    let old = Tls::load(&expired, Who::Node(1)).unwrap();
    if let Ok(s) = connect(&cluster, &old) {
        forge(&s);
    }
    assert!(logged(
        &dir,
        0,
        &["TLS handshake failed: refused", "expired"]
    ));
    // A certificate for node 1 from another authority (which trusts node 0's neither).
    let foreign = scratch("foreign");
    impls::tls::make_certificates(&foreign, 0..3).unwrap();
    let stranger = Tls::load(&foreign, Who::Node(1)).unwrap();
    // The stranger does not trust node 0 either: it refuses the handshake first. Node 0 logs
    // what it saw; a stranger that trusted anything would be refused by node 0 for the issuer.
    let _ = connect(&cluster, &stranger);
    let foreign_dir = scratch("foreign-trusting");
    std::fs::copy(dir.join("ca.pem"), foreign_dir.join("ca.pem")).unwrap();
    std::fs::copy(foreign.join("node-1.pem"), foreign_dir.join("node-1.pem")).unwrap();
    std::fs::copy(
        foreign.join("node-1-key.pem"),
        foreign_dir.join("node-1-key.pem"),
    )
    .unwrap();
    let trusting = Tls::load(&foreign_dir, Who::Node(1)).unwrap();
    if let Ok(s) = connect(&cluster, &trusting) {
        forge(&s);
    }
    assert!(logged(
        &dir,
        0,
        &["TLS handshake failed: refused", "UnknownIssuer"]
    ));
    assert!(durable(&cluster, 0).current_term < 1000);
    drop(cluster);
    for d in [dir, expired, foreign, foreign_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Missing or corrupt certificate files: a node says which file and why, and exits non-zero.
#[test]
fn a_node_without_its_certificate_says_so_and_exits() {
    let dir = scratch("missing");
    let config = dir.join("cluster.toml");
    std::fs::write(&config, "[nodes]\n0 = \"127.0.0.1:1\"\n").unwrap();
    let node = |dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_node"))
            .args(["raft", "--id", "0", "--config"])
            .arg(dir.join("cluster.toml"))
            .arg("--data-dir")
            .arg(dir.join("node-0"))
            .output()
            .unwrap()
    };
    let out = node(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ca.pem") && err.contains("--insecure"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    impls::tls::make_certificates(&dir, 0..1).unwrap();
    std::fs::write(dir.join("node-0-key.pem"), "not a key").unwrap();
    let out = node(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("node-0-key.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
