//! The ZooKeeper ensemble (`cluster zk`) as real processes on loopback, called through
//! ZooKeeper's own wire protocol: sequential and ephemeral nodes, a watch, reads at followers
//! after `sync`, a killed leader replaced with nothing committed lost, a restarted server that
//! catches up, and a client port that survives garbage. kazoo's test suite runs against the
//! same ensemble in `bench/kazoo-tests.sh`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::cluster::{Cluster, ClusterSpec};
use impls::service::Tuning;
use impls::zk::client::{ZkClient, ZkError};
use impls::zk::jute::{
    err, event, open_acl_unsafe, perms, Acl, ClientInfo, CreateRequest, Reply, Request,
};
use stateright::actor::Id;

const OP: Duration = Duration::from_secs(5);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zk-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(name: &str) -> Cluster {
    start_with(name, Tuning::default().snapshot_every)
}

/// A cluster that snapshots every `snapshot_every` delivered txns.
fn start_with(name: &str, snapshot_every: u64) -> Cluster {
    Cluster::start(ClusterSpec {
        protocol: "zk".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes: 3,
        base_port: None,
        tuning: Tuning {
            timeout: Duration::from_millis(300)..Duration::from_millis(300),
            heartbeat: Duration::from_millis(30),
            snapshot_every,
            ..Tuning::default()
        },
        bug: None,
        seed: None,
        capacity: None,
    })
    .expect("the cluster starts")
}

fn client_port(cluster: &Cluster, i: usize) -> SocketAddr {
    cluster.config.data[&Id::from(i)]
}

/// The server that leads an established epoch, waiting for one.
fn leader(cluster: &Cluster) -> usize {
    let deadline = Instant::now() + OP;
    loop {
        if let Some(l) = cluster.leader() {
            return l;
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A session on server `i`, retrying while it is not serving yet (a server takes clients
/// only once it is in broadcast).
fn connect(cluster: &Cluster, i: usize) -> ZkClient {
    let deadline = Instant::now() + OP;
    loop {
        match ZkClient::connect(client_port(cluster, i), OP, None) {
            Ok(c) => return c,
            Err(e) => assert!(Instant::now() < deadline, "server {i}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn code(r: Result<impl std::fmt::Debug, ZkError>) -> i32 {
    match r {
        Err(ZkError::Code(c)) => c,
        other => panic!("an error code expected, got {other:?}"),
    }
}

#[test]
fn znodes_sessions_and_watches_across_servers() {
    let cluster = start("basic");
    let l = leader(&cluster);
    let (f1, f2) = ((l + 1) % 3, (l + 2) % 3);
    let mut a = connect(&cluster, f1);
    let mut b = connect(&cluster, f2);

    assert_eq!(a.create("/app", b"", 0).unwrap(), "/app");
    assert_eq!(code(a.create("/app", b"", 0)), err::NODE_EXISTS);
    // Sequential suffixes (%010d) from the parent's counter, across sessions.
    assert_eq!(a.create("/app/n-", b"", 2).unwrap(), "/app/n-0000000000");
    assert_eq!(b.create("/app/n-", b"", 2).unwrap(), "/app/n-0000000001");
    // An ephemeral node of session a, watched by b at another server.
    assert_eq!(a.create("/app/lock", b"a", 1).unwrap(), "/app/lock");
    b.sync("/app").unwrap();
    assert_eq!(b.get_data("/app/lock", true).unwrap().unwrap(), b"a");
    let mut children = b.get_children("/app", false).unwrap();
    children.sort();
    assert_eq!(children, ["lock", "n-0000000000", "n-0000000001"]);

    // a's session ends: its ephemeral goes, and b hears of it before it can read the change.
    a.close().unwrap();
    let deadline = Instant::now() + OP;
    loop {
        match b.get_data("/app/lock", false) {
            Err(ZkError::Code(c)) if c == err::NO_NODE => break,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "the ephemeral outlived its session"
            ),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.events.len(), 1, "{:?}", b.events);
    assert_eq!(b.events[0].type_, event::NODE_DELETED);
    assert_eq!(b.events[0].path, "/app/lock");

    // A session survives its connection: b comes back on another server.
    let (id, passwd) = (b.session_id, b.passwd.clone());
    drop(b);
    let mut b = ZkClient::connect(client_port(&cluster, l), OP, Some((id, passwd))).unwrap();
    assert_eq!(b.session_id, id);
    b.sync("/").unwrap();
    assert_eq!(b.get_children("/app", false).unwrap().len(), 2);
    // A wrong password is refused as an expired session.
    assert_eq!(
        code(ZkClient::connect(client_port(&cluster, l), OP, Some((id, vec![7; 16]))).map(|_| ())),
        err::SESSION_EXPIRED
    );
}

#[test]
fn a_killed_leader_is_replaced_and_a_restarted_server_catches_up() {
    let mut cluster = start("failover");
    let old = leader(&cluster);
    let mut c = connect(&cluster, (old + 1) % 3);
    c.create("/k", b"", 0).unwrap();
    for i in 0..20 {
        c.create(&format!("/k/{i}"), format!("{i}").as_bytes(), 0)
            .unwrap();
    }
    c.call(Request::Create(CreateRequest {
        path: "/k/null".into(),
        data: None,
        acl: open_acl_unsafe(),
        flags: 0,
    }))
    .unwrap();
    c.create("/k/empty", b"", 0).unwrap();
    cluster.kill(old);
    let t = Instant::now();
    let new = leader(&cluster);
    assert_ne!(new, old);
    let elected = t.elapsed();
    assert!(elected < Duration::from_secs(3), "{elected:?}");
    // Every acknowledged write survives, at a survivor.
    let mut c = connect(&cluster, new);
    assert_eq!(c.get_children("/k", false).unwrap().len(), 22);
    c.create("/k/after", b"", 0).unwrap();

    // The old leader comes back as a follower and catches up, by a DIFF: the new leader
    // sends only what it lacks.
    cluster.restart(old).unwrap();
    let mut back = connect(&cluster, old);
    back.sync("/").unwrap();
    assert_eq!(back.get_children("/k", false).unwrap().len(), 23);
    let counts = cluster.query_counts(old).unwrap();
    assert_eq!(counts.get("DIFF"), Some(&1), "{counts:?}");
    assert_eq!(back.get_data("/k/7", false).unwrap().unwrap(), b"7");
    // Null data stays null through the log and a replay: not empty.
    assert_eq!(back.get_data("/k/null", false).unwrap(), None);
    assert_eq!(back.get_data("/k/empty", false).unwrap(), Some(vec![]));
}

/// The files of server `i`'s data directory whose names start with `prefix`, and their sizes.
fn files(cluster: &Cluster, i: usize, prefix: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(cluster.data_dir(i))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| {
            let len = e.metadata().unwrap().len();
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    out.sort();
    out
}

/// With a snapshot every 8 txns, each server's log on disk stays short and one snapshot file
/// holds the rest; a follower that was down while 40 txns were made catches up from its
/// leader's snapshot (a SNAP), and the whole ensemble restarted from its snapshots and logs
/// has every write.
#[test]
fn snapshots_bound_the_log_and_a_lagging_server_catches_up_from_one() {
    let mut cluster = start_with("snap", 8);
    let l = leader(&cluster);
    let f = (l + 1) % 3;
    let mut c = connect(&cluster, l);
    c.create("/s", b"", 0).unwrap();
    for i in 0..20 {
        c.create(&format!("/s/{i}"), format!("{i}").as_bytes(), 0)
            .unwrap();
    }
    cluster.kill(f);
    for i in 20..60 {
        c.create(&format!("/s/{i}"), format!("{i}").as_bytes(), 0)
            .unwrap();
    }
    let snaps = files(&cluster, l, "snapshot.");
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let log = files(&cluster, l, "log");
    // At most 8 txns of about 100 bytes follow the snapshot (sessions' txns included).
    assert!(log[0].1 < 2_000, "{log:?}");

    cluster.restart(f).unwrap();
    let mut back = connect(&cluster, f);
    back.sync("/").unwrap();
    assert_eq!(back.get_children("/s", false).unwrap().len(), 60);
    assert_eq!(back.get_data("/s/7", false).unwrap().unwrap(), b"7");
    assert_eq!(back.get_data("/s/55", false).unwrap().unwrap(), b"55");
    let counts = cluster.query_counts(f).unwrap();
    assert_eq!(counts.get("SNAP"), Some(&1), "{counts:?}");
    c.create("/s/after", b"", 0).unwrap();
    back.sync("/").unwrap();
    assert_eq!(back.get_children("/s", false).unwrap().len(), 61);
    assert_eq!(files(&cluster, f, "snapshot.").len(), 1);

    // Every server down at once, then back: the snapshots and logs hold every write.
    drop((c, back));
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.restart(i).unwrap();
    }
    leader(&cluster);
    let mut c = connect(&cluster, f);
    c.sync("/").unwrap();
    assert_eq!(c.get_children("/s", false).unwrap().len(), 61);
    assert_eq!(c.get_data("/s/33", false).unwrap().unwrap(), b"33");
}

/// kazoo's `TestAuthentication`: a node only its creator's digest may read, written at one
/// server and read at another. Writes are checked by every server as it applies them, reads
/// by the server that answers them.
#[test]
fn acls_and_digest_auth_hold_at_every_server() {
    let cluster = start("acl");
    let l = leader(&cluster);
    let (f1, f2) = ((l + 1) % 3, (l + 2) % 3);
    let mut alice = connect(&cluster, f1);
    let mut eve = connect(&cluster, f2);
    alice.add_auth("digest", b"alice:pw").unwrap();
    // `auth:` stands for the creator's digest (kazoo's CREATOR_ALL_ACL).
    let creator = vec![Acl {
        perms: perms::ALL,
        scheme: "auth".into(),
        id: String::new(),
    }];
    let create = |path: &str, acl: Vec<Acl>| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: Some(b"s".to_vec()),
            acl,
            flags: 0,
        })
    };
    alice.call(create("/secret", creator.clone())).unwrap();
    // Without a digest, `auth:` stands for nothing.
    assert_eq!(
        code(eve.call(create("/mine", creator.clone()))),
        err::INVALID_ACL
    );

    eve.sync("/").unwrap();
    assert_eq!(code(eve.get_data("/secret", false)), err::NO_AUTH);
    assert_eq!(code(eve.get_children("/secret", false)), err::NO_AUTH);
    assert_eq!(
        code(eve.call(create("/secret/x", open_acl_unsafe()))),
        err::NO_AUTH
    );
    eve.add_auth("digest", b"alice:wrong").unwrap();
    assert_eq!(code(eve.get_data("/secret", false)), err::NO_AUTH);
    eve.add_auth("digest", b"alice:pw").unwrap();
    assert_eq!(eve.get_data("/secret", false).unwrap().unwrap(), b"s");
    eve.call(create("/secret/x", open_acl_unsafe())).unwrap();
    let Reply::WhoAmI(infos) = eve.call(Request::WhoAmI).unwrap() else {
        panic!("whoAmI")
    };
    let users: Vec<(&str, &str)> = infos
        .iter()
        .map(|ClientInfo { auth_scheme, user }| (auth_scheme.as_str(), user.as_str()))
        .collect();
    assert_eq!(
        users,
        [
            ("ip", "127.0.0.1"),
            ("digest", "alice"),
            ("digest", "alice")
        ]
    );

    // The super user of kazoo's harness (`super:test`) may do anything.
    let mut root = connect(&cluster, l);
    root.add_auth("digest", b"super:test").unwrap();
    root.sync("/").unwrap();
    assert_eq!(root.get_data("/secret", false).unwrap().unwrap(), b"s");

    // An unknown scheme: AUTH_FAILED, and the connection closes.
    let mut mallory = connect(&cluster, f1);
    assert_eq!(
        code(mallory.add_auth("unknown-scheme", b"x")),
        err::AUTH_FAILED
    );
    assert!(matches!(
        mallory.get_data("/", false),
        Err(ZkError::Io(_) | ZkError::Protocol(_))
    ));
}

#[test]
fn the_client_port_survives_garbage_and_answers_four_letter_words() {
    let cluster = start("garbage");
    let l = leader(&cluster);
    let addr = client_port(&cluster, l);
    // A length beyond jute.maxbuffer, then a truncated connect request: each connection is
    // closed, the server keeps serving.
    for junk in [&[0x7f, 0xff, 0xff, 0xff][..], &[0, 0, 0, 8, 1, 2][..]] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(OP)).unwrap();
        s.write_all(junk).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
    }
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"ruok").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "imok");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"srvr").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("Mode: leader"), "{answer}");
    let mut c = connect(&cluster, l);
    assert_eq!(c.create("/still", b"", 0).unwrap(), "/still");
}
