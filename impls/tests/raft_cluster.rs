//! The Raft KV service as real processes on loopback: elections, partitions, snapshots,
//! durability, bad clients, and a short Jepsen-style run. Each test starts its own cluster of
//! `node` processes with short timeouts and takes a few seconds.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::client::{Driven, CLIENT_IDS};
use impls::cluster::{Cluster, ClusterSpec};
use impls::config::ClusterConfig;
use impls::frame::write_frame;
use impls::jepsen::{self, JepsenOpts, Nemesis};
use impls::node::{Faults, SENT_EARLY};
use impls::raft::wal::RaftWal;
use impls::raft::RaftService;
use impls::service::Tuning;
use impls::tls::Who;
use models::raft::actor::Storage;
use models::raft::kv::{KvOp, KvRet};
use properties::linearizability::formats::parse_jsonl_kv;
use properties::linearizability::{check, KvStore, Verdict};
use stateright::actor::Id;

const OP: Duration = Duration::from_secs(10);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raft-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

type Client = Driven<RaftService>;

fn tuning(snapshot_every: u64) -> Tuning {
    Tuning {
        timeout: Duration::from_millis(150)..Duration::from_millis(300),
        heartbeat: Duration::from_millis(30),
        snapshot_every,
        ..Tuning::default()
    }
}

fn start(name: &str, snapshot_every: u64, bug: Option<&'static str>) -> Cluster {
    start_with(name, 3, tuning(snapshot_every), bug)
}

fn start_with(name: &str, nodes: usize, tuning: Tuning, bug: Option<&'static str>) -> Cluster {
    Cluster::start(ClusterSpec {
        protocol: "raft".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes,
        base_port: None,
        tuning,
        bug,
        seed: None,
        capacity: None,
    })
    .expect("the cluster starts")
}

/// The model's client actor, as `client raft` runs it, with the tests' short retry timeout.
fn client(config: &ClusterConfig, id: usize) -> Client {
    Driven::start(config, &tuning(0), Some(id)).expect("the client starts")
}

fn put(c: &mut Client, k: &str, v: &str) {
    let r = c.call(KvOp::Put(k.into(), v.into()), OP);
    assert_eq!(r.expect("put answered"), KvRet::Ok);
}

fn get(c: &mut Client, k: &str) -> String {
    match c.call(KvOp::Get(k.into()), OP).expect("get answered") {
        KvRet::Value(v) => v,
        KvRet::Ok => panic!("a get answers a value"),
    }
}

/// A client that knows only node `i`.
fn client_of(cluster: &Cluster, i: usize, id: usize) -> Client {
    let mut only = cluster.config.clone();
    only.nodes.retain(|n, _| *n == Id::from(i));
    client(&only, id)
}

/// The node that says it leads (`cluster status`), waiting for one.
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

#[test]
fn a_new_leader_takes_over_after_the_leader_is_killed() {
    let mut cluster = start("election", 1000, None);
    let mut c = client(&cluster.config, CLIENT_IDS + 1);
    put(&mut c, "x", "1");
    let old = leader(&cluster);
    cluster.kill(old);
    let t = Instant::now();
    put(&mut c, "x", "2");
    let new = leader(&cluster);
    assert_ne!(new, old, "a killed node cannot answer");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(get(&mut c, "x"), "2");
}

/// Thesis §10.2.1: the leader's AppendEntries leave before its own save (the node counts
/// them); with `--no-parallel-write` none do. Either way the writes are acknowledged.
#[test]
fn the_leader_sends_append_entries_while_it_writes_them() {
    for parallel in [true, false] {
        let name = if parallel { "parallel" } else { "serial" };
        let cluster = start_with(
            name,
            3,
            Tuning {
                parallel_write: parallel,
                ..tuning(1000)
            },
            None,
        );
        let mut c = client(&cluster.config, CLIENT_IDS + 1);
        for i in 0..20 {
            put(&mut c, "x", &i.to_string());
        }
        assert_eq!(get(&mut c, "x"), "19");
        let early: u64 = (0..3)
            .map(|i| {
                let counts = cluster.query_counts(i).expect("counts");
                counts.get(SENT_EARLY).copied().unwrap_or(0)
            })
            .sum();
        if parallel {
            assert!(early > 0, "{name}: {early} sent early");
        } else {
            assert_eq!(early, 0, "{name}");
        }
    }
}

#[test]
fn a_majority_makes_progress_and_a_cut_off_leader_does_not() {
    let mut cluster = start("partition", 1000, None);
    let mut c = client(&cluster.config, CLIENT_IDS + 1);
    put(&mut c, "x", "1");
    let old = leader(&cluster);
    assert!(cluster.partition(&[old]).is_empty());
    // The majority elects a leader and commits.
    put(&mut c, "x", "2");
    assert_ne!(leader(&cluster), old);
    // The old leader, alone, answers nothing: it cannot commit a write, and a read waits for a
    // majority to acknowledge a round of heartbeats (ReadIndex), which never comes.
    let mut alone = client_of(&cluster, old, CLIENT_IDS + 2);
    assert!(alone
        .call(
            KvOp::Append("x".into(), "lost?".into()),
            Duration::from_millis(1500)
        )
        .is_err());
    assert!(alone
        .call(KvOp::Get("x".into()), Duration::from_millis(1500))
        .is_err());
    // Healed: the old leader learns the new term, drops its uncommitted append, and catches up.
    assert!(cluster.set_all(&Faults::default()).is_empty());
    assert_eq!(get(&mut c, "x"), "2");
    cluster.stop();
}

/// The same scenario with the model's `read-index-without-heartbeat` bug: the cut-off leader
/// answers a read at its commit index without confirming that it still leads, and the
/// linearizability checker rejects the recorded history.
#[test]
fn a_stale_read_from_a_cut_off_leader_is_caught() {
    let mut cluster = start("stale-read", 1000, Some("read-index-without-heartbeat"));
    let mut c = client(&cluster.config, CLIENT_IDS + 1);
    let mut history = Vec::new();
    let mut event = |p: u64, ty: &str, f: &str, v: Option<&str>| {
        history.push(
            serde_json::json!({"process": p, "type": ty, "f": f, "key": "x", "value": v})
                .to_string(),
        );
    };
    event(0, "invoke", "put", Some("1"));
    put(&mut c, "x", "1");
    event(0, "ok", "put", Some("1"));
    let old = leader(&cluster);
    assert!(cluster.partition(&[old]).is_empty());
    event(0, "invoke", "put", Some("2"));
    put(&mut c, "x", "2");
    event(0, "ok", "put", Some("2"));
    let mut alone = client_of(&cluster, old, CLIENT_IDS + 2);
    event(1, "invoke", "get", None);
    let read = alone.call(KvOp::Get("x".into()), Duration::from_millis(1500));
    assert_eq!(
        read.expect("the stale leader answers"),
        KvRet::Value("1".into())
    );
    event(1, "ok", "get", Some("1"));
    let (h, _) = parse_jsonl_kv(&history.join("\n")).unwrap();
    assert!(matches!(
        check(&KvStore, &h, None),
        Verdict::NotLinearizable(_)
    ));
    cluster.stop();
}

/// Node `behind` of a fresh cluster misses 60 writes while down, and on its return catches up
/// through InstallSnapshot in chunks of 16 keys and sessions (the snapshot, 61 keys and a
/// session, takes 4; Figure 13). Returns the cluster, its client, the node, and whether the
/// snapshot the node installed holds every key.
fn catch_up_by_snapshot(name: &str, bug: Option<&'static str>) -> (Cluster, Client, usize, bool) {
    let mut cluster = start_with(
        name,
        3,
        Tuning {
            snapshot_chunk: 16,
            ..tuning(10)
        },
        bug,
    );
    let mut c = client(&cluster.config, CLIENT_IDS + 1);
    put(&mut c, "warm", "up");
    let behind = (leader(&cluster) + 1) % 3;
    cluster.kill(behind);
    for i in 0..60 {
        put(&mut c, &format!("k{i}"), &i.to_string());
    }
    cluster.restart(behind).unwrap();
    // The leader compacted the entries it lacks: it catches up through InstallSnapshot (§7).
    let deadline = Instant::now() + Duration::from_secs(10);
    let whole = |s: &Storage| {
        let data = &s.log.snapshot.machine.data.0;
        (0..45).all(|i| data.get(&format!("k{i}")) == Some(&i.to_string()))
    };
    loop {
        let s: Option<Storage> = RaftWal::read(&cluster.data_dir(behind)).unwrap();
        if let Some(s) = s.filter(|s| s.log.snapshot.last_included_index >= 50) {
            // Give the rest of the chunks a moment, then judge.
            if whole(&s) || Instant::now() + Duration::from_secs(8) > deadline {
                return (cluster, c, behind, whole(&s));
            }
        }
        assert!(Instant::now() < deadline, "node {behind} did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_back_from_a_long_outage_catches_up_by_snapshot() {
    let (mut cluster, mut c, behind, whole) = catch_up_by_snapshot("snapshot", None);
    assert!(
        whole,
        "node {behind} installed a snapshot without every key"
    );
    // With another node down, the cluster needs the one that was behind, and it has everything.
    let other = (behind + 1) % 3;
    cluster.kill(other);
    for i in (0..60).step_by(7) {
        assert_eq!(get(&mut c, &format!("k{i}")), i.to_string());
    }
}

/// `--bug partial-snapshot` over TCP: the node that was behind installs the first chunk as if
/// it were the whole snapshot, and its state machine misses keys.
#[test]
fn a_snapshot_installed_before_its_last_chunk_misses_keys() {
    let (_cluster, _c, behind, whole) = catch_up_by_snapshot("partial", Some("partial-snapshot"));
    assert!(
        !whole,
        "node {behind} should have installed a partial snapshot"
    );
}

#[test]
fn acknowledged_writes_survive_minority_kills_and_a_full_restart() {
    let mut cluster = start("durability", 8, None);
    let mut c = client(&cluster.config, CLIENT_IDS + 1);
    for i in 0..20 {
        c.call(KvOp::Append("log".into(), format!("{i},")), OP)
            .expect("append answered");
    }
    let expected: String = (0..20).map(|i| format!("{i},")).collect();
    // Kill the leader (a minority): the rest still has every acknowledged write.
    let l = leader(&cluster);
    cluster.kill(l);
    assert_eq!(get(&mut c, "log"), expected);
    cluster.restart(l).unwrap();
    // Kill everyone at once, then restart from disk.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.restart(i).unwrap();
    }
    let mut fresh = client(&cluster.config, CLIENT_IDS + 2);
    assert_eq!(get(&mut fresh, "log"), expected);
    // The first client's session survived too: a retry of its last append would not run twice.
    c.call(KvOp::Append("log".into(), "20,".into()), OP)
        .expect("append answered");
    assert_eq!(get(&mut fresh, "log"), format!("{expected}20,"));
}

#[test]
fn malformed_client_frames_close_only_their_connection() {
    let mut cluster = start("malformed", 1000, None);
    let addr = cluster.addr(0);
    let hello = |id: usize, role: &str| {
        format!(r#"{{"Hello":{{"id":{id},"role":"{role}"}}}}"#).into_bytes()
    };
    // Garbage before any handshake; an oversized length; then, over TLS with the client
    // certificate, a client whose message does not decode, a client that sends a fault command,
    // and an unknown peer.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"\x00\x00\x00\x05hello").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let as_client = || {
        let tls = cluster.config.tls(Who::Client).unwrap();
        impls::tls::connect(tls.as_deref(), addr, OP, Who::Node(0)).unwrap()
    };
    let s = as_client();
    write_frame(&mut &s, &hello(CLIENT_IDS + 9, "Client")).unwrap();
    write_frame(&mut &s, br#"{"Msg":{"Request":{"client":1,"seq":"x"}}}"#).unwrap();
    // The node closes the connection at the frame before: this write may find it closed.
    let _ = write_frame(&mut &s, &[0xff; 64]);
    let s = as_client();
    write_frame(&mut &s, &hello(CLIENT_IDS + 10, "Client")).unwrap();
    write_frame(
        &mut &s,
        br#"{"Admin":{"blocked":[1,2],"loss":0.0,"max_delay_ms":0}}"#,
    )
    .unwrap();
    // A client that asks to remove node 0 (only an administrator may change the
    // configuration): cut off, and node 0 stays in (it must commit below).
    let s = as_client();
    write_frame(&mut &s, &hello(CLIENT_IDS + 11, "Client")).unwrap();
    write_frame(&mut &s, br#"{"Msg":{"RemoveServer":{"old_server":0}}}"#).unwrap();
    let s = as_client();
    write_frame(&mut &s, &hello(77, "Peer")).unwrap();
    // The node refuses the hello and closes the connection: this write may find it closed.
    let _ = write_frame(
        &mut &s,
        br#"{"Msg":{"RequestVote":{"term":99,"candidate_id":77,"last_log_index":0,"last_log_term":0}}}"#,
    );
    drop(s);
    // A loss rate outside [0, 1] is refused.
    assert!(cluster
        .set_faults(
            0,
            &Faults {
                loss: 2.0,
                ..Faults::default()
            }
        )
        .is_err());
    // Node 0 still serves clients (a reply, or a redirect if it is not the leader)...
    let mut s = as_client();
    s.tcp().set_read_timeout(Some(OP)).unwrap();
    write_frame(&mut &s, &hello(CLIENT_IDS + 1, "Client")).unwrap();
    let request =
        br#"{"Msg":{"Client":{"Request":{"client":1099511627777,"seq":1,"op":{"Get":"x"}}}}}"#;
    write_frame(&mut &s, request).unwrap();
    let mut answered = false;
    while let Ok(Some(frame)) = impls::frame::read_frame(&mut s, 1 << 20) {
        let text = String::from_utf8_lossy(&frame);
        if text.contains("Reply") || text.contains("Redirect") {
            answered = true;
            break;
        }
    }
    assert!(answered, "node 0 no longer answers clients");
    // ... and the cluster, node 0 included, still commits.
    let mut all = client(&cluster.config, CLIENT_IDS + 2);
    put(&mut all, "x", "1");
    // With node 1 down, nothing commits without node 0.
    cluster.kill(1);
    put(&mut all, "x", "2");
    assert!(cluster.is_running(0));
}

/// Thesis §4: node 3 starts outside the configuration and is added (caught up first); the
/// leader removes itself and steps down; node 3 then counts in a majority.
#[test]
fn a_node_is_added_and_a_leader_that_removes_itself_steps_down() {
    let cluster = start_with(
        "membership",
        4,
        Tuning {
            members: Some(3),
            ..tuning(1000)
        },
        None,
    );
    let mut c = client(&cluster.config, CLIENT_IDS + 1);
    put(&mut c, "x", "1");
    assert_ne!(leader(&cluster), 3, "node 3 is outside the configuration");
    cluster.change(3, true, OP).expect("node 3 added");
    let old = leader(&cluster);
    cluster.change(old, false, OP).expect("the leader removed");
    put(&mut c, "x", "2");
    let new = leader(&cluster);
    assert_ne!(new, old, "a removed leader steps down");
    let status = cluster.query_status(old).unwrap().unwrap_or_default();
    assert!(status.starts_with("follower"), "{status}");
    // Of {0, 1, 2, 3} without `old`, kill one that is neither the leader nor node 3: the
    // majority left needs node 3.
    let mut cluster = cluster;
    let victim = (0..3).find(|i| *i != old && *i != new).unwrap();
    cluster.kill(victim);
    put(&mut c, "x", "3");
    assert_eq!(get(&mut c, "x"), "3");
    // A node the cluster does not know is refused by the leader, at once.
    let err = cluster.change(9, true, OP).unwrap_err().to_string();
    assert!(err.contains("refuses"), "{err}");
}

/// `jepsen raft --nemesis membership,kill`: nodes leave the configuration and come back while
/// others are killed, and the history stays linearizable.
#[test]
fn a_jepsen_run_with_membership_changes_is_linearizable() {
    let opts = jepsen_opts(
        "jepsen-membership",
        vec![Nemesis::Membership, Nemesis::Kill],
        3,
    );
    let report = jepsen::run::<RaftService>(&opts).unwrap();
    assert_eq!(report.check.verdict, "linearizable", "{report:?}");
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.kind == Nemesis::Membership && f.detail.contains("added back")),
        "{:?}",
        report.faults
    );
    assert!(report.passed(), "{report:?}");
}

/// An 8-second Jepsen run of 3 nodes and 3 clients on 2 keys with `nemesis`.
fn jepsen_opts(name: &str, nemesis: Vec<Nemesis>, seed: u64) -> JepsenOpts {
    JepsenOpts {
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes: 3,
        clients: 3,
        duration: Duration::from_secs(8),
        nemesis,
        seed,
        keys: 2,
        op_timeout: Duration::from_secs(2),
        tuning: tuning(50),
        bug: None,
        insecure: false,
    }
}

#[test]
fn a_short_jepsen_run_is_linearizable() {
    let opts = jepsen_opts(
        "jepsen",
        vec![Nemesis::Kill, Nemesis::Partition, Nemesis::Loss],
        7,
    );
    let report = jepsen::run::<RaftService>(&opts).unwrap();
    assert_eq!(report.check.verdict, "linearizable", "{report:?}");
    assert!(!report.faults.is_empty());
    assert!(report.ok_after_heal > 0, "{report:?}");
    assert!(report.passed());
}

/// Lease reads (thesis §6.4.1) on clocks that drift: the followers' clocks run 10% fast (the
/// drift the leases allow for by default), then the leader is cut off. The followers elect a
/// new leader as soon as their minimum election timeout (2 s, 1.82 s of real time on their
/// clocks) has passed since they last heard from it, and commit x=2; at once a client that
/// knows only the old leader reads x. Returns the read's answer, or `None` when the scenario
/// did not run in time: the read must leave before the old leader's lease would end without the
/// drift bound (2 s after its last round), which is what the test is about.
fn read_from_a_cut_off_leaseholder(cluster: &Cluster, attempt: usize) -> Option<Option<String>> {
    let id = CLIENT_IDS + 10 * attempt;
    let mut c = client(&cluster.config, id + 1);
    put(&mut c, "x", "1");
    let old = leader(cluster);
    let mut alone = client_of(cluster, old, id + 2);
    assert_eq!(get(&mut alone, "x"), "1", "a lease read");
    let others: Vec<usize> = (0..cluster.len()).filter(|i| *i != old).collect();
    let fast = |blocked: Vec<usize>| Faults {
        blocked,
        clock_skew_percent: 10,
        ..Faults::default()
    };
    for &i in &others {
        cluster.set_faults(i, &fast(Vec::new())).unwrap();
    }
    // Heartbeats arm the followers' timers on their fast clocks.
    std::thread::sleep(Duration::from_millis(200));
    for &i in &others {
        cluster.set_faults(i, &fast(vec![old])).unwrap();
    }
    cluster
        .set_faults(
            old,
            &Faults {
                blocked: others.clone(),
                ..Faults::default()
            },
        )
        .unwrap();
    let cut = Instant::now();
    let new = loop {
        let leaders: Vec<usize> = others
            .iter()
            .copied()
            .filter(|i| {
                cluster
                    .query_status(*i)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.starts_with("leader"))
            })
            .collect();
        if let Some(l) = leaders.first() {
            break *l;
        }
        if cut.elapsed() > Duration::from_secs(3) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut at_new = client_of(cluster, new, id + 3);
    put(&mut at_new, "x", "2");
    if cut.elapsed() > Duration::from_millis(1950) {
        return None;
    }
    let read = alone.call(KvOp::Get("x".into()), Duration::from_millis(500));
    Some(match read {
        Ok(KvRet::Value(v)) => Some(v),
        _ => None,
    })
}

fn lease_tuning() -> Tuning {
    Tuning {
        timeout: Duration::from_millis(2000)..Duration::from_millis(2100),
        heartbeat: Duration::from_millis(20),
        lease_reads: true,
        ..tuning(1000)
    }
}

/// Runs the scenario until it runs in time (at most three times: a split vote or a slow
/// election can miss the window), healing the cluster in between.
fn lease_scenario(name: &str, bug: Option<&'static str>) -> Option<String> {
    let mut cluster = start_with(name, 3, lease_tuning(), bug);
    for attempt in 1..=3 {
        if let Some(read) = read_from_a_cut_off_leaseholder(&cluster, attempt) {
            cluster.stop();
            return read;
        }
        assert!(cluster.set_all(&Faults::default()).is_empty());
    }
    panic!("no attempt elected a new leader in time");
}

/// The lease allows for 10% drift and the clocks drift 10%: the old leader's lease has ended
/// before any follower could vote, and the cut-off leader does not answer the read.
#[test]
fn a_lease_ends_before_followers_with_fast_clocks_elect_a_new_leader() {
    assert_eq!(lease_scenario("lease", None), None);
}

/// The same with `lease-without-drift-bound`: the old leader's lease lasts the whole minimum
/// election timeout, outlives the fast followers' timeout, and the read returns the value a
/// committed write already replaced.
#[test]
fn a_lease_without_the_drift_bound_answers_a_stale_read() {
    assert_eq!(
        lease_scenario("lease-bug", Some("lease-without-drift-bound")),
        Some("1".to_string())
    );
}
