//! The node actor one step at a time (no checker), then the checker on small configurations
//! of the scenario matrix. The defaults' verdicts and counts are pinned in `reports/chain.json`
//! and `reports/craq.json` by the checker crate, and every seeded bug by its `bugs` test.

use stateright::actor::{Command, Id, Out};
use stateright::{Checker, Expectation, Model};

use super::actor::{ChainActor, ChainBug, ChainMsg, Mode, NodeCfg, NodeState, Update};
use super::model::ChainCfg;
use crate::client::ClientMsg;
use crate::raft::kv::{KvOp, KvRet};

type Cmd = Command<ChainMsg, super::ChainTimer, (), super::actor::ChainStorage>;

const CLIENT: usize = 9;

fn ids(v: &[usize]) -> Vec<Id> {
    v.iter().copied().map(Id::from).collect()
}

fn node_cfg(mode: Mode, bug: Option<ChainBug>) -> NodeCfg {
    NodeCfg {
        master: Id::from(0),
        chain: ids(&[1, 2, 3]),
        mode,
        fail_after: None,
        persist: false,
        rejoin: false,
        resend: false,
        lease: None,
        bug,
    }
}

fn update(seq_no: u64, value: &str) -> Update {
    Update {
        seq_no,
        client: Id::from(CLIENT),
        req: seq_no,
        key: "x".into(),
        value: value.into(),
    }
}

/// A node of chain `chain` with history `hist`, of which the first `acked` reached the tail.
fn node(chain: &[usize], hist: &[&str], acked: u64) -> NodeState {
    NodeState {
        chain: ids(chain),
        hist: hist
            .iter()
            .enumerate()
            .map(|(k, v)| update(k as u64 + 1, v))
            .collect(),
        acked,
        ..NodeState::empty(0)
    }
}

/// Delivers `msg` from `src` to node `id`; returns the messages it sent.
fn deliver(
    cfg: &NodeCfg,
    id: usize,
    s: &mut NodeState,
    src: usize,
    msg: ChainMsg,
) -> Vec<(Id, ChainMsg)> {
    let mut o: Out<ChainActor> = Out::new();
    cfg.on_msg(Id::from(id), s, Id::from(src), msg, &mut o);
    o.into_iter()
        .filter_map(|c: Cmd| match c {
            Command::Send(dst, m) => Some((dst, m)),
            _ => None,
        })
        .collect()
}

/// `u` as a node at chain 0 (the configuration's) sends it.
fn upd(u: Update) -> ChainMsg {
    upd_at(u, 0)
}

/// `u` as a node at chain `epoch` sends it.
fn upd_at(u: Update, epoch: u64) -> ChainMsg {
    ChainMsg::Update { update: u, epoch }
}

fn request(seq: u64, op: KvOp) -> ChainMsg {
    ChainMsg::Client(ClientMsg::Request {
        client: Id::from(CLIENT),
        seq,
        op,
    })
}

fn reply(seq: u64, ret: KvRet) -> (Id, ChainMsg) {
    (
        Id::from(CLIENT),
        ChainMsg::Client(ClientMsg::Reply { seq, ret }),
    )
}

fn get() -> KvOp {
    KvOp::Get("x".into())
}

/// Reference: CR §2, update processing: the head runs the write and forwards it; the tail
/// answers the client and acknowledges back.
#[test]
fn the_head_forwards_and_the_tail_replies_and_acks() {
    let cfg = node_cfg(Mode::Cr, None);
    let mut head = node(&[1, 2, 3], &[], 0);
    let sent = deliver(
        &cfg,
        1,
        &mut head,
        CLIENT,
        request(1, KvOp::Put("x".into(), "a".into())),
    );
    assert_eq!(sent, vec![(Id::from(2), upd(update(1, "a")))]);
    assert_eq!(head.sent().len(), 1);
    // Asked again (the client resent it after a reconfiguration): run at most once.
    assert!(deliver(
        &cfg,
        1,
        &mut head,
        CLIENT,
        request(1, KvOp::Put("x".into(), "a".into()))
    )
    .is_empty());
    assert_eq!(head.hist.len(), 1);

    let mut tail = node(&[1, 2, 3], &[], 0);
    let sent = deliver(&cfg, 3, &mut tail, 2, upd(update(1, "a")));
    assert_eq!(
        sent,
        vec![
            reply(1, KvRet::Ok),
            (Id::from(2), ChainMsg::Ack { seq_no: 1 })
        ]
    );
    assert_eq!(tail.acked, 1);
    // A duplicate (a resend) changes nothing.
    assert!(deliver(&cfg, 3, &mut tail, 2, upd(update(1, "a"))).is_empty());
}

/// Reference: CR §2, query processing: reads at the tail; a node that is not the tail yet keeps
/// a read until the master makes it the tail.
#[test]
fn cr_reads_are_answered_by_the_tail() {
    let cfg = node_cfg(Mode::Cr, None);
    let mut tail = node(&[1, 2, 3], &["a"], 1);
    assert_eq!(
        deliver(&cfg, 3, &mut tail, CLIENT, request(2, get())),
        vec![reply(2, KvRet::Value("a".into()))]
    );
    let mut middle = node(&[1, 2, 3], &["a", "b"], 1);
    assert!(deliver(&cfg, 2, &mut middle, CLIENT, request(2, get())).is_empty());
    // The tail failed: node 2 is the tail now. It answers its Sent's clients and the read.
    let sent = deliver(
        &cfg,
        2,
        &mut middle,
        0,
        ChainMsg::Chain {
            chain: ids(&[1, 2]),
            epoch: 1,
        },
    );
    assert_eq!(
        sent,
        vec![
            reply(2, KvRet::Ok),
            (Id::from(1), ChainMsg::Ack { seq_no: 2 }),
            reply(2, KvRet::Value("b".into())),
        ]
    );
    assert!(middle.sent().is_empty());
}

/// Reference: CR §3, failure of a middle server: the predecessor resends `Sent` to its new
/// successor; the successor tells its new predecessor how far the tail has acknowledged.
#[test]
fn a_middle_failure_makes_the_predecessor_resend() {
    let cfg = node_cfg(Mode::Cr, None);
    let mut head = node(&[1, 2, 3], &["a", "b", "c"], 1);
    let sent = deliver(
        &cfg,
        1,
        &mut head,
        0,
        ChainMsg::Chain {
            chain: ids(&[1, 3]),
            epoch: 1,
        },
    );
    assert_eq!(
        sent,
        vec![
            (Id::from(3), upd_at(update(2, "b"), 1)),
            (Id::from(3), upd_at(update(3, "c"), 1)),
        ]
    );
    let mut tail = node(&[1, 2, 3], &["a", "b"], 2);
    let sent = deliver(
        &cfg,
        3,
        &mut tail,
        0,
        ChainMsg::Chain {
            chain: ids(&[1, 3]),
            epoch: 1,
        },
    );
    assert_eq!(sent, vec![(Id::from(1), ChainMsg::Ack { seq_no: 2 })]);

    let cfg = node_cfg(Mode::Cr, Some(ChainBug::NoResend));
    let mut head = node(&[1, 2, 3], &["a", "b", "c"], 1);
    assert!(deliver(
        &cfg,
        1,
        &mut head,
        0,
        ChainMsg::Chain {
            chain: ids(&[1, 3]),
            epoch: 1,
        }
    )
    .is_empty());
}

/// Reference: CRAQ §2.3: a clean version is answered at once; a dirty one is confirmed with the
/// tail, and the node answers with the version the tail names.
#[test]
fn craq_answers_clean_reads_and_asks_the_tail_about_dirty_ones() {
    let cfg = node_cfg(Mode::Craq, None);
    let mut head = node(&[1, 2, 3], &["a"], 1);
    assert_eq!(
        deliver(&cfg, 1, &mut head, CLIENT, request(2, get())),
        vec![reply(2, KvRet::Value("a".into()))]
    );
    let mut head = node(&[1, 2, 3], &["a", "b"], 1);
    let query = ChainMsg::VersionQuery {
        key: "x".into(),
        client: Id::from(CLIENT),
        req: 2,
    };
    assert_eq!(
        deliver(&cfg, 1, &mut head, CLIENT, request(2, get())),
        vec![(Id::from(3), query.clone())]
    );
    let mut tail = node(&[1, 2, 3], &["a"], 1);
    let answer = ChainMsg::VersionReply {
        key: "x".into(),
        version: 1,
        client: Id::from(CLIENT),
        req: 2,
    };
    assert_eq!(
        deliver(&cfg, 3, &mut tail, 1, query),
        vec![(Id::from(1), answer.clone())]
    );
    assert_eq!(
        deliver(&cfg, 1, &mut head, 3, answer),
        vec![reply(2, KvRet::Value("a".into()))]
    );
    assert!(head.queries.is_empty());

    let cfg = node_cfg(Mode::Craq, Some(ChainBug::CraqDirtyRead));
    let mut head = node(&[1, 2, 3], &["a", "b"], 1);
    assert_eq!(
        deliver(&cfg, 1, &mut head, CLIENT, request(2, get())),
        vec![reply(2, KvRet::Value("b".into()))]
    );
}

/// Checks `cfg` to the end with stateright's BFS, asserts that no `always` or `eventually`
/// property is violated, and returns the unique and generated state counts and the `sometimes`
/// properties not found (a small configuration cannot reach some examples).
fn check(cfg: ChainCfg) -> (usize, usize, Vec<&'static str>) {
    let properties = cfg.clone().into_model().properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    let mut missed = Vec::new();
    for p in properties {
        match (p.expectation, found.contains_key(p.name)) {
            (Expectation::Sometimes, false) => missed.push(p.name),
            (Expectation::Sometimes, true) | (_, false) => {}
            (_, true) => panic!("{} violated", p.name),
        }
    }
    (checker.unique_state_count(), checker.state_count(), missed)
}

/// The names of the properties with a discovery (a violation, or an example found).
fn discovered(cfg: ChainCfg) -> Vec<(&'static str, Expectation)> {
    let properties = cfg.clone().into_model().properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    properties
        .into_iter()
        .filter(|p| found.contains_key(p.name))
        .map(|p| (p.name, p.expectation))
        .collect()
}

fn cfg(mode: Mode, nodes: usize, clients: usize, failures: usize) -> ChainCfg {
    ChainCfg {
        mode,
        nodes,
        clients,
        failures,
        rejoins: 0,
        bug: None,
    }
}

/// A part of the scenario matrix of 3FS's P model of CRAQ (1-3 clients, 2-4 replicas, 0-3
/// failures), small enough for every `cargo test`; the README lists larger ones.
#[test]
fn can_model_chain_replication() {
    assert_eq!(check(cfg(Mode::Cr, 2, 1, 0)), (10, 13, vec![]));
    assert_eq!(check(cfg(Mode::Cr, 2, 2, 1)), (14_482, 41_806, vec![]));
    assert_eq!(check(cfg(Mode::Cr, 3, 1, 2)), (13_966, 36_920, vec![]));
    assert_eq!(check(cfg(Mode::Cr, 4, 1, 1)), (4_528, 14_849, vec![]));
}

#[test]
fn can_model_craq() {
    // One client reads only at the tail (its second request, on a chain of two).
    assert_eq!(
        check(cfg(Mode::Craq, 2, 1, 0)),
        (
            10,
            13,
            vec![
                "a non-tail node answers a read itself (CRAQ §2.3)",
                "a node asks the tail for the committed version (CRAQ §2.3)",
            ]
        )
    );
    assert_eq!(check(cfg(Mode::Craq, 2, 2, 1)), (25_166, 67_098, vec![]));
    assert_eq!(check(cfg(Mode::Craq, 3, 1, 2)), (27_976, 70_614, vec![]));
    assert_eq!(check(cfg(Mode::Craq, 3, 2, 0)), (849, 1_667, vec![]));
}

/// CR §3, extending a chain: a failed node comes back empty and joins at the tail, the old
/// tail hands it its history, and every property still holds (the README has larger runs).
#[test]
fn can_model_a_node_rejoining_at_the_tail() {
    let rejoin = |mode| ChainCfg {
        rejoins: 1,
        ..cfg(mode, 2, 1, 1)
    };
    assert_eq!(check(rejoin(Mode::Cr)), (3_666, 11_452, vec![]));
    assert_eq!(check(rejoin(Mode::Craq)), (4_370, 13_964, vec![]));
}

/// Reference: CRAQ §2.3 (and the reason for it): a read at the head sees a write that has not
/// reached the tail, and a later read at the tail does not.
#[test]
fn a_dirty_read_is_not_linearizable() {
    for (mode, bug) in [
        (Mode::Cr, ChainBug::ReadAnyReplica),
        (Mode::Craq, ChainBug::CraqDirtyRead),
    ] {
        let found = discovered(ChainCfg {
            bug: Some(bug),
            ..cfg(mode, 2, 2, 0)
        });
        assert!(
            found.contains(&("linearizable client history", Expectation::Always)),
            "{bug:?}: {found:?}"
        );
    }
}

/// Over TCP the master is the failure detector (§3 assumes one): a node that leaves more than
/// `MISSED_PROBES` probes in a row unanswered is removed, the others and the removed node hear
/// the new chain, and the master keeps it on disk. A node that answers stays.
#[test]
fn the_masters_probes_remove_a_silent_node_and_keep_an_answering_one() {
    use super::actor::{ChainState, ChainStorage, MasterCfg, MISSED_PROBES};
    use stateright::actor::Actor;
    use std::borrow::Cow;
    let master = ChainActor::Master(MasterCfg {
        chain: ids(&[1, 2, 3]),
        clients: Vec::new(),
        probe: Some(std::time::Duration::from_millis(100)..std::time::Duration::from_millis(100)),
        persist: true,
    });
    let me = Id::from(0);
    let mut o: Out<ChainActor> = Out::new();
    let mut state = Cow::Owned(master.on_start(me, &None, &mut o));
    let mut last: Vec<Cmd> = Vec::new();
    for _ in 0..=MISSED_PROBES {
        // Nodes 1 and 3 answer every probe; node 2 never does.
        for n in [1, 3] {
            let mut o = Out::new();
            master.on_msg(me, &mut state, Id::from(n), ChainMsg::Pong, &mut o);
        }
        let mut o = Out::new();
        master.on_timeout(me, &mut state, &super::ChainTimer::Probe, &mut o);
        last = o.into_iter().collect();
    }
    let ChainState::Master(s) = &*state else {
        panic!("a master")
    };
    assert_eq!(s.chain, ids(&[1, 3]));
    let told: Vec<Id> = last
        .iter()
        .filter_map(|c| match c {
            Command::Send(dst, ChainMsg::Chain { chain, epoch: 1 }) if *chain == ids(&[1, 3]) => {
                Some(*dst)
            }
            _ => None,
        })
        .collect();
    assert_eq!(told, ids(&[1, 3, 2]));
    assert!(last.iter().any(|c| matches!(
        c,
        Command::Save(ChainStorage::Master { chain, epoch: 1 }) if *chain == ids(&[1, 3])
    )));
    // A master that restarts keeps the chain it saved.
    let mut o = Out::new();
    let again = master.on_start(
        me,
        &Some(ChainStorage::Master {
            chain: ids(&[1, 3]),
            epoch: 1,
        }),
        &mut o,
    );
    assert!(matches!(again, ChainState::Master(s) if s.chain == ids(&[1, 3])));
}

/// Over TCP a node counts its starts on disk: one that starts again has lost its state. A
/// fail-stop node stays out of the chain; one that may rejoin asks the master to add it at the
/// tail. A node removed while alive does the same.
#[test]
fn a_restarted_or_removed_node_stays_out_or_joins_again() {
    use super::actor::{ChainState, ChainStorage};
    use stateright::actor::Actor;
    use std::borrow::Cow;
    for rejoin in [false, true] {
        let mut cfg = node_cfg(Mode::Craq, None);
        cfg.persist = true;
        cfg.rejoin = rejoin;
        let actor = ChainActor::Node(cfg);
        let mut o: Out<ChainActor> = Out::new();
        let fresh = actor.on_start(Id::from(2), &None, &mut o);
        assert!(matches!(fresh, ChainState::Node(_)));
        assert!(o
            .into_iter()
            .any(|c: Cmd| matches!(c, Command::Save(ChainStorage::Node { incarnation: 0 }))));
        let mut o = Out::new();
        let storage = Some(ChainStorage::Node { incarnation: 0 });
        let restarted = actor.on_start(Id::from(2), &storage, &mut o);
        let sent: Vec<Cmd> = o.into_iter().collect();
        let joins = |sent: &[Cmd]| {
            sent.iter().any(|c| {
                matches!(c, Command::Send(m, ChainMsg::Join { incarnation: 1 }) if *m == Id::from(0))
            })
        };
        if rejoin {
            assert!(matches!(&restarted, ChainState::Node(s) if !s.member(Id::from(2))));
            assert!(joins(&sent));
        } else {
            assert_eq!(restarted, ChainState::Failed);
        }
        let mut state = Cow::Owned(fresh);
        let mut o = Out::new();
        let removed = ChainMsg::Chain {
            chain: ids(&[1, 3]),
            epoch: 1,
        };
        actor.on_msg(Id::from(2), &mut state, Id::from(0), removed, &mut o);
        let sent: Vec<Cmd> = o.into_iter().collect();
        if rejoin {
            assert!(matches!(&*state, ChainState::Node(s) if !s.member(Id::from(2))));
            assert!(joins(&sent));
        } else {
            assert_eq!(*state, ChainState::Failed);
        }
    }
}

/// Reference: CR §3, extending a chain. The master adds a joining node at the tail (removing it
/// first if it is still in the chain: it lost its state); a `Join` repeated by the same
/// incarnation gets the chain again.
#[test]
fn the_master_adds_a_joining_node_at_the_tail() {
    use super::actor::{ChainState, MasterCfg};
    use stateright::actor::Actor;
    use std::borrow::Cow;
    let master = ChainActor::Master(MasterCfg {
        chain: ids(&[1, 2, 3]),
        clients: Vec::new(),
        probe: None,
        persist: false,
    });
    let me = Id::from(0);
    let mut o: Out<ChainActor> = Out::new();
    let mut state = Cow::Owned(master.on_start(me, &None, &mut o));
    let chains = |o: Out<ChainActor>| -> Vec<(Id, Vec<Id>, u64)> {
        o.into_iter()
            .filter_map(|c: Cmd| match c {
                Command::Send(dst, ChainMsg::Chain { chain, epoch }) => Some((dst, chain, epoch)),
                _ => None,
            })
            .collect()
    };
    // Node 2 restarted while still in the chain: removed, then added at the tail.
    let mut o = Out::new();
    master.on_msg(
        me,
        &mut state,
        Id::from(2),
        ChainMsg::Join { incarnation: 1 },
        &mut o,
    );
    let told = chains(o);
    assert_eq!(
        told,
        vec![
            (Id::from(1), ids(&[1, 3]), 1),
            (Id::from(3), ids(&[1, 3]), 1),
            (Id::from(1), ids(&[1, 3, 2]), 2),
            (Id::from(3), ids(&[1, 3, 2]), 2),
            (Id::from(2), ids(&[1, 3, 2]), 2),
        ]
    );
    // The same incarnation asks again (its chain was lost): it hears the chain, nothing changes.
    let before = state.clone();
    let mut o = Out::new();
    master.on_msg(
        me,
        &mut state,
        Id::from(2),
        ChainMsg::Join { incarnation: 1 },
        &mut o,
    );
    assert_eq!(chains(o), vec![(Id::from(2), ids(&[1, 3, 2]), 2)]);
    assert_eq!(state, before);
    // A node that is not in the configuration is never added.
    let mut o = Out::new();
    master.on_msg(
        me,
        &mut state,
        Id::from(7),
        ChainMsg::Join { incarnation: 0 },
        &mut o,
    );
    assert!(matches!(&*state, ChainState::Master(m) if m.chain == ids(&[1, 3, 2])));
}

/// Reference: CR §3, extending a chain: the old tail sends the new one its history, and is a
/// middle node from then on (a CR read that still reaches it goes on to the tail); the new tail
/// serves nothing until it has the history, then answers what waited.
#[test]
fn the_old_tail_hands_its_history_to_the_new_one() {
    let cfg = node_cfg(Mode::Cr, None);
    let extended = || ChainMsg::Chain {
        chain: ids(&[1, 2, 3]),
        epoch: 2,
    };
    let mut old_tail = node(&[1, 2], &["a", "b"], 2);
    old_tail.epoch = 1;
    let sent = deliver(&cfg, 2, &mut old_tail, 0, extended());
    let handover = ChainMsg::Handover {
        epoch: 2,
        hist: vec![update(1, "a"), update(2, "b")],
    };
    assert_eq!(sent, vec![(Id::from(3), handover.clone())]);
    let sent = deliver(&cfg, 2, &mut old_tail, CLIENT, request(3, get()));
    assert_eq!(sent, vec![(Id::from(3), request(3, get()))]);

    for bug in [None, Some(ChainBug::ServeBeforeHandover)] {
        let cfg = node_cfg(Mode::Cr, bug);
        let mut new_tail = super::actor::NodeState::empty(1);
        assert!(deliver(&cfg, 3, &mut new_tail, 0, extended()).is_empty());
        assert_eq!(new_tail.catching_up, Some(2));
        let early = deliver(&cfg, 3, &mut new_tail, CLIENT, request(3, get()));
        if bug.is_some() {
            // The pitfall: the new tail answers from an empty history.
            assert_eq!(early, vec![reply(3, KvRet::Value(String::new()))]);
            continue;
        }
        assert!(early.is_empty());
        let sent = deliver(&cfg, 3, &mut new_tail, 2, handover.clone());
        assert_eq!(
            sent,
            vec![
                (Id::from(2), ChainMsg::Ack { seq_no: 2 }),
                reply(3, KvRet::Value("b".into())),
            ]
        );
        assert_eq!(new_tail.catching_up, None);
        // The updates that follow the handover are the old tail's `Sent`: the new tail
        // commits them.
        let sent = deliver(&cfg, 3, &mut new_tail, 2, upd(update(3, "c")));
        assert_eq!(
            sent,
            vec![
                reply(3, KvRet::Ok),
                (Id::from(2), ChainMsg::Ack { seq_no: 3 })
            ]
        );
    }
}

/// Over TCP (`resend`), where the runtime's fault injection loses messages: a probe finds a
/// `Sent` that has not shrunk and resends it, a duplicate update is answered with the ack
/// level, and the head answers a write asked again that has reached the tail.
#[test]
fn lost_messages_are_sent_again_over_tcp() {
    let mut cfg = node_cfg(Mode::Cr, None);
    cfg.resend = true;
    let ping = || ChainMsg::Ping {
        chain: ids(&[1, 2, 3]),
        epoch: 0,
    };
    let mut head = node(&[1, 2, 3], &["a", "b"], 1);
    head.probed_acked = 1;
    let sent = deliver(&cfg, 1, &mut head, 0, ping());
    assert_eq!(
        sent,
        vec![
            (Id::from(0), ChainMsg::Pong),
            (Id::from(2), upd(update(2, "b"))),
        ]
    );
    let mut middle = node(&[1, 2, 3], &["a", "b"], 1);
    let sent = deliver(&cfg, 2, &mut middle, 1, upd(update(2, "b")));
    assert_eq!(sent, vec![(Id::from(1), ChainMsg::Ack { seq_no: 1 })]);
    let write = |seq| request(seq, KvOp::Put("x".into(), "a".into()));
    assert_eq!(
        deliver(&cfg, 1, &mut head, CLIENT, write(1)),
        vec![reply(1, KvRet::Ok)]
    );
    // Not at the tail yet: the tail answers it.
    assert!(deliver(&cfg, 1, &mut head, CLIENT, write(2)).is_empty());
}

/// Over TCP a client whose request goes unanswered asks the master for the chain and sends the
/// request again.
#[test]
fn an_unanswered_client_asks_the_master_and_sends_again() {
    use super::actor::{ClientCfg, ReadAt};
    let cfg = ClientCfg {
        chain: ids(&[1, 2, 3]),
        reads: ReadAt::Tail,
        ops: vec![KvOp::Put("x".into(), "a".into())],
        driver: None,
        master: Id::from(0),
        retry: Some(std::time::Duration::from_millis(300)..std::time::Duration::from_millis(300)),
    };
    let me = Id::from(CLIENT);
    let mut o: Out<ChainActor> = Out::new();
    let s = cfg.start(me, &mut o);
    let mut o: Out<ChainActor> = Out::new();
    cfg.on_retry(me, &s, &mut o)
        .expect("a request is in flight");
    let sent: Vec<Cmd> = o.into_iter().collect();
    assert!(matches!(&sent[0], Command::Send(m, ChainMsg::GetChain) if *m == Id::from(0)));
    assert!(matches!(
        &sent[1],
        Command::Send(h, ChainMsg::Client(ClientMsg::Request { seq: 1, .. })) if *h == Id::from(1)
    ));
    assert!(matches!(
        &sent[2],
        Command::SetTimer(super::ChainTimer::Retry, _)
    ));
}
