//! The shard and client actors one step at a time (no checker), then the checker on the
//! default configuration (whose verdicts the checker crate also pins in `reports/twopc.json`),
//! on a larger one, and on each seeded bug.

use std::collections::{BTreeMap, BTreeSet};

use properties::commitment::Decision;
use properties::serializability::{check_serializable, Anomaly};
use stateright::actor::{ActorModelAction, Command, Id, Out};
use stateright::{Checker, Model};

use super::actor::{
    ClientCfg, ClientState, ShardCfg, ShardState, TwoPcActor, TwoPcBug, TwoPcMsg, TwoPcTimer,
    TxnOp, TxnSpec,
};
use super::model::{history, shard, TwoPcCfg};
use super::TwoPcSpec;
use crate::catalog::{Params, Spec};
use crate::harness::NetworkKind;
use crate::twophase::RmState;

type Cmd = Command<TwoPcMsg, TwoPcTimer, (), ShardState>;

const X: char = 'x';
const Y: char = 'y';

/// A client's id in the unit tests (the shards are 0 and 1, as in the model).
fn client() -> Id {
    Id::from(2)
}

fn shard_cfg(key: char, bug: Option<TwoPcBug>) -> ShardCfg {
    ShardCfg {
        keys: vec![key],
        timeout: None,
        bug,
    }
}

/// Delivers `msg` from the client to the shard; returns what the shard did.
fn deliver(cfg: &ShardCfg, s: &mut ShardState, msg: TwoPcMsg) -> Vec<Cmd> {
    let mut o = Out::new();
    cfg.on_msg(s, client(), msg, &mut o);
    o.into_iter().collect()
}

fn sent(cmds: &[Cmd]) -> Vec<TwoPcMsg> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send(_, m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn saved(cmds: &[Cmd]) -> Option<ShardState> {
    cmds.iter().rev().find_map(|c| match c {
        Command::Save(st) => Some(st.clone()),
        _ => None,
    })
}

fn read(txn: u64, key: char) -> TwoPcMsg {
    TwoPcMsg::Read { txn, key }
}

fn write(txn: u64, key: char) -> TwoPcMsg {
    TwoPcMsg::Write { txn, key }
}

fn prepare(txn: u64, key: char) -> TwoPcMsg {
    TwoPcMsg::Prepare {
        txn,
        keys: vec![key],
    }
}

/// Reference: Saltzer & Kaashoek §9.5.3, shared and exclusive locks.
#[test]
fn readers_share_a_lock_and_a_writer_excludes_everyone() {
    let cfg = shard_cfg(X, None);
    let mut s = ShardState::new(&[X]);
    assert_eq!(
        sent(&deliver(&cfg, &mut s, read(1, X))),
        vec![TwoPcMsg::ReadReply {
            txn: 1,
            key: X,
            version: 0
        }]
    );
    assert!(matches!(
        sent(&deliver(&cfg, &mut s, read(2, X)))[..],
        [TwoPcMsg::ReadReply { txn: 2, .. }]
    ));
    // No-wait: a conflicting request is refused at once, nothing is queued or recorded.
    assert_eq!(
        sent(&deliver(&cfg, &mut s, write(3, X))),
        vec![TwoPcMsg::Refused { txn: 3, key: X }]
    );
    assert!(!s.txns.contains_key(&3));
    deliver(&cfg, &mut s, TwoPcMsg::Abort { txn: 1 });
    deliver(&cfg, &mut s, TwoPcMsg::Abort { txn: 2 });
    assert_eq!(
        sent(&deliver(&cfg, &mut s, write(3, X))),
        vec![TwoPcMsg::WriteReply { txn: 3, key: X }]
    );
    assert_eq!(
        sent(&deliver(&cfg, &mut s, read(4, X))),
        vec![TwoPcMsg::Refused { txn: 4, key: X }]
    );
}

/// Reference: §9.6.3, a participant logs its PREPARED state before it answers.
#[test]
fn the_vote_is_on_storage_before_it_is_sent() {
    let cfg = shard_cfg(Y, None);
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    let cmds = deliver(&cfg, &mut s, prepare(1, Y));
    let save = cmds.iter().position(|c| matches!(c, Command::Save(_)));
    let send = cmds.iter().position(|c| matches!(c, Command::Send(..)));
    assert!(save.expect("saved") < send.expect("sent"));
    assert_eq!(sent(&cmds), vec![TwoPcMsg::Prepared { txn: 1 }]);
    let storage = saved(&cmds).unwrap();
    assert_eq!(storage.txns[&1].state, RmState::Prepared);
    assert_eq!(storage.txns[&1].writes, vec![(Y, None)]);
}

/// Reference: §9.5.3 strict two-phase locking: locks are held until the outcome.
#[test]
fn a_prepared_transaction_keeps_its_locks_until_commit_installs_its_write() {
    let cfg = shard_cfg(Y, None);
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    deliver(&cfg, &mut s, prepare(1, Y));
    assert_eq!(
        sent(&deliver(&cfg, &mut s, read(2, Y))),
        vec![TwoPcMsg::Refused { txn: 2, key: Y }]
    );
    let cmds = deliver(&cfg, &mut s, TwoPcMsg::Commit { txn: 1 });
    assert_eq!(saved(&cmds).unwrap().versions[&Y], 1);
    assert_eq!(s.txns[&1].writes, vec![(Y, Some(1))]);
    assert_eq!(
        sent(&deliver(&cfg, &mut s, read(2, Y))),
        vec![TwoPcMsg::ReadReply {
            txn: 2,
            key: Y,
            version: 1
        }]
    );
}

#[test]
fn early_unlock_lets_a_reader_see_the_version_a_prepared_write_will_replace() {
    let cfg = shard_cfg(Y, Some(TwoPcBug::EarlyUnlock));
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    deliver(&cfg, &mut s, prepare(1, Y));
    assert_eq!(
        sent(&deliver(&cfg, &mut s, read(2, Y))),
        vec![TwoPcMsg::ReadReply {
            txn: 2,
            key: Y,
            version: 0
        }]
    );
}

/// Reference: §9.6.3 recovery: a prepared participant comes back prepared and waits.
#[test]
fn a_restart_restores_prepared_transactions_and_forgets_working_ones() {
    let cfg = shard_cfg(Y, None);
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, read(1, Y));
    deliver(&cfg, &mut s, read(2, Y));
    let storage = saved(&deliver(&cfg, &mut s, prepare(1, Y)));
    let mut o = Out::new();
    let mut s = cfg.start(&storage, &mut o);
    assert!(o.is_empty(), "a restart neither saves nor sends");
    assert_eq!(s.txns[&1].state, RmState::Prepared);
    assert!(!s.txns.contains_key(&2));
    // T1's shared lock is back: a writer is refused.
    assert_eq!(
        sent(&deliver(&cfg, &mut s, write(3, Y))),
        vec![TwoPcMsg::Refused { txn: 3, key: Y }]
    );
    // T2 lost its lock in the restart: it must not prepare.
    assert_eq!(
        sent(&deliver(&cfg, &mut s, prepare(2, Y))),
        vec![TwoPcMsg::Aborted { txn: 2 }]
    );
    assert_eq!(s.txns[&2].state, RmState::Aborted);
    deliver(&cfg, &mut s, TwoPcMsg::Commit { txn: 1 });
    assert_eq!(s.txns[&1].state, RmState::Committed);
}

#[test]
fn a_prepare_naming_locks_the_shard_lost_is_answered_aborted() {
    // Shard 0 holds both keys here: the read's lock was lost in a restart, the write's was not.
    let cfg = ShardCfg {
        keys: vec![X, Y],
        timeout: None,
        bug: None,
    };
    let mut s = ShardState::new(&[X, Y]);
    deliver(&cfg, &mut s, read(1, X));
    let mut s = cfg.start(&None, &mut Out::new());
    deliver(&cfg, &mut s, write(1, Y));
    let cmds = deliver(
        &cfg,
        &mut s,
        TwoPcMsg::Prepare {
            txn: 1,
            keys: vec![X, Y],
        },
    );
    assert_eq!(sent(&cmds), vec![TwoPcMsg::Aborted { txn: 1 }]);
    assert_eq!(saved(&cmds).unwrap().txns[&1].state, RmState::Aborted);
}

#[test]
fn forget_vote_aborts_prepared_transactions_on_restart() {
    let cfg = shard_cfg(Y, Some(TwoPcBug::ForgetVote));
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    let storage = saved(&deliver(&cfg, &mut s, prepare(1, Y)));
    let mut o = Out::new();
    let mut s = cfg.start(&storage, &mut o);
    assert_eq!(s.txns[&1].state, RmState::Aborted);
    deliver(&cfg, &mut s, TwoPcMsg::Commit { txn: 1 });
    assert_eq!(s.txns[&1].state, RmState::Aborted);
    assert_eq!(s.versions[&Y], 0);
}

fn client_cfg(bug: Option<TwoPcBug>) -> ClientCfg {
    ClientCfg {
        shard_of: BTreeMap::from([(X, Id::from(0)), (Y, Id::from(1))]),
        txns: vec![TxnSpec {
            id: 1,
            ops: vec![TxnOp::Read(X), TxnOp::Write(Y)],
        }],
        timeout: None,
        bug,
    }
}

/// Delivers `msg` from `src` to the client; returns the messages it sent, with their
/// destinations.
fn to_client(
    cfg: &ClientCfg,
    s: &mut ClientState,
    src: usize,
    msg: TwoPcMsg,
) -> Vec<(Id, TwoPcMsg)> {
    let mut o: Out<TwoPcActor> = Out::new();
    cfg.on_msg(s, Id::from(src), msg, &mut o);
    o.into_iter()
        .filter_map(|c| match c {
            Command::Send(dst, m) => Some((dst, m)),
            _ => None,
        })
        .collect()
}

/// Runs the client to phase one; returns its state.
fn client_preparing(cfg: &ClientCfg) -> ClientState {
    let mut o: Out<TwoPcActor> = Out::new();
    let mut s = cfg.start(&mut o);
    assert!(
        matches!(&o[..], [Command::Send(dst, TwoPcMsg::Read { txn: 1, key: X }), ..] if *dst == Id::from(0))
    );
    let reply = TwoPcMsg::ReadReply {
        txn: 1,
        key: X,
        version: 0,
    };
    assert_eq!(
        to_client(cfg, &mut s, 0, reply),
        vec![(Id::from(1), write(1, Y))]
    );
    let prepares = to_client(cfg, &mut s, 1, TwoPcMsg::WriteReply { txn: 1, key: Y });
    assert_eq!(
        prepares,
        vec![(Id::from(0), prepare(1, X)), (Id::from(1), prepare(1, Y))]
    );
    s
}

/// Reference: §9.6.3, Gray & Lamport §3: Commit needs Prepared from every participant.
#[test]
fn the_coordinator_commits_only_with_every_vote() {
    let cfg = client_cfg(None);
    let mut s = client_preparing(&cfg);
    assert!(to_client(&cfg, &mut s, 1, TwoPcMsg::Prepared { txn: 1 }).is_empty());
    assert_eq!(
        to_client(&cfg, &mut s, 0, TwoPcMsg::Prepared { txn: 1 }),
        vec![
            (Id::from(0), TwoPcMsg::Commit { txn: 1 }),
            (Id::from(1), TwoPcMsg::Commit { txn: 1 })
        ]
    );
    assert_eq!(s.decided, BTreeMap::from([(1, Decision::Commit)]));
    assert!(s.is_idle());

    let mut s = client_preparing(&cfg);
    to_client(&cfg, &mut s, 1, TwoPcMsg::Prepared { txn: 1 });
    assert_eq!(
        to_client(&cfg, &mut s, 0, TwoPcMsg::Aborted { txn: 1 }),
        vec![
            (Id::from(0), TwoPcMsg::Abort { txn: 1 }),
            (Id::from(1), TwoPcMsg::Abort { txn: 1 })
        ]
    );
    assert_eq!(s.decided, BTreeMap::from([(1, Decision::Abort)]));

    let mut s = client_preparing(&cfg_with_bug());
    assert_eq!(
        to_client(&cfg_with_bug(), &mut s, 1, TwoPcMsg::Prepared { txn: 1 }).len(),
        2,
        "the bug commits on the first vote"
    );
    assert_eq!(s.decided, BTreeMap::from([(1, Decision::Commit)]));
}

fn cfg_with_bug() -> ClientCfg {
    client_cfg(Some(TwoPcBug::CoordinatorCommitsOnPartialVotes))
}

#[test]
fn a_refused_lock_aborts_at_the_shards_that_granted_one() {
    let cfg = client_cfg(None);
    let mut s = cfg.start(&mut Out::new());
    let reply = TwoPcMsg::ReadReply {
        txn: 1,
        key: X,
        version: 0,
    };
    to_client(&cfg, &mut s, 0, reply);
    assert_eq!(
        to_client(&cfg, &mut s, 1, TwoPcMsg::Refused { txn: 1, key: Y }),
        vec![(Id::from(0), TwoPcMsg::Abort { txn: 1 })]
    );
    assert_eq!(s.decided, BTreeMap::from([(1, Decision::Abort)]));
}

/// The default configuration (3 clients, one transaction each, 2 shard crashes): every
/// property as expected. The checker crate pins the same counts in `reports/twopc.json`.
#[test]
fn default_configuration_holds() {
    let model = TwoPcSpec::build(&Params::defaults(TwoPcSpec::PARAMS), None);
    assert_eq!(*model.cfg(), TwoPcCfg::default());
    let checker = model.checker().spawn_bfs().join();
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), 153_533);
    assert_eq!(checker.state_count(), 506_964);
}

#[test]
fn two_transactions_per_client_hold_too() {
    let cfg = TwoPcCfg {
        clients: 2,
        txns: 2,
        crashes: 2,
        bug: None,
        ..TwoPcCfg::default()
    };
    let checker = cfg.into_model().checker().spawn_bfs().join();
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), 268_604);
}

fn deliver_action(
    src: usize,
    dst: usize,
    msg: TwoPcMsg,
) -> ActorModelAction<TwoPcMsg, TwoPcTimer, ()> {
    ActorModelAction::Deliver {
        src: Id::from(src),
        dst: Id::from(dst),
        msg,
    }
}

#[test]
fn a_transaction_commits_across_two_shards_in_ten_deliveries() {
    let cfg = TwoPcCfg {
        clients: 1,
        txns: 1,
        crashes: 0,
        bug: None,
        ..TwoPcCfg::default()
    };
    let checker = cfg.into_model().checker().spawn_bfs().join();
    checker.assert_discovery(
        "a transaction commits across two shards",
        vec![
            deliver_action(2, 0, read(1, X)),
            deliver_action(
                0,
                2,
                TwoPcMsg::ReadReply {
                    txn: 1,
                    key: X,
                    version: 0,
                },
            ),
            deliver_action(2, 1, write(1, Y)),
            deliver_action(1, 2, TwoPcMsg::WriteReply { txn: 1, key: Y }),
            deliver_action(2, 0, prepare(1, X)),
            deliver_action(2, 1, prepare(1, Y)),
            deliver_action(0, 2, TwoPcMsg::Prepared { txn: 1 }),
            deliver_action(1, 2, TwoPcMsg::Prepared { txn: 1 }),
            deliver_action(2, 0, TwoPcMsg::Commit { txn: 1 }),
            deliver_action(2, 1, TwoPcMsg::Commit { txn: 1 }),
        ],
    );
}

/// Checks `bug` in its own configuration (as `checker twopc --bug` does).
fn check_bug(bug: &'static str) -> impl Checker<super::TwoPcModel> {
    let spec = TwoPcSpec::BUGS
        .iter()
        .find(|b| b.name == bug)
        .expect("a seeded bug");
    let params = spec.configure(TwoPcSpec::PARAMS, &Params::defaults(TwoPcSpec::PARAMS));
    TwoPcSpec::build(&params, Some(bug))
        .checker()
        .spawn_bfs()
        .join()
}

#[test]
fn early_unlock_commits_a_write_skew() {
    let checker = check_bug("early-unlock");
    let path = checker.assert_any_discovery("serializability");
    let state = path.last_state();
    let violation = check_serializable(&history(checker.model().cfg(), state))
        .expect_err("the counterexample is not serializable");
    assert_eq!(violation.anomaly, Anomaly::G2, "{violation}");
    assert_eq!(violation.txns.iter().collect::<BTreeSet<_>>().len(), 2);
    checker.assert_no_discovery("atomicity");
    checker.assert_no_discovery("a prepared participant waits for the decision");
}

#[test]
fn forget_vote_breaks_atomicity_and_the_prepared_promise() {
    let checker = check_bug("forget-vote");
    checker.assert_any_discovery("atomicity");
    checker.assert_any_discovery("a prepared participant waits for the decision");
    checker.assert_no_discovery("serializability");
}

#[test]
fn an_abort_that_forgets_a_participant_leaves_its_transaction_open_forever() {
    let checker = check_bug("abort-forgets-participants");
    let path = checker.assert_any_discovery("every transaction ends everywhere");
    // The run stops with every client done and a transaction still working at a shard.
    let state = path.last_state();
    assert!((0..2).any(|i| super::model::shard(state, i)
        .txns
        .values()
        .any(|p| p.state == RmState::Working)));
    checker.assert_no_discovery("atomicity");
    checker.assert_no_discovery("serializability");
}

#[test]
fn commit_on_partial_votes_breaks_atomicity() {
    let checker = check_bug("coordinator-commits-on-partial-votes");
    let path = checker.assert_any_discovery("atomicity");
    // The shard that voted Aborted is not the one that voted Prepared.
    let state = path.last_state();
    assert!(state.history.voted_yes.iter().all(|(_, at)| {
        super::model::shard(state, usize::from(*at)).txns[&1].state != RmState::Aborted
    }));
    checker.assert_no_discovery("a prepared participant waits for the decision");
    checker.assert_no_discovery("serializability");
}

fn timed_shard(key: char, bug: Option<TwoPcBug>) -> ShardCfg {
    ShardCfg {
        timeout: Some(super::PARTICIPANT_TIMEOUT),
        ..shard_cfg(key, bug)
    }
}

fn timers(cmds: &[Cmd]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::SetTimer(t, _) => Some(format!("set {t:?}")),
            Command::CancelTimer(t) => Some(format!("cancel {t:?}")),
            _ => None,
        })
        .collect()
}

/// A shard's timeout; returns what it did, with destinations.
fn shard_timeout(cfg: &ShardCfg, s: &mut ShardState) -> Vec<Cmd> {
    let mut o = Out::new();
    cfg.on_timeout(s, TwoPcTimer::Participant, &mut o);
    o.into_iter().collect()
}

#[test]
fn a_prepare_sent_again_gets_the_same_vote() {
    let cfg = shard_cfg(Y, None);
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    deliver(&cfg, &mut s, prepare(1, Y));
    let again = deliver(&cfg, &mut s, prepare(1, Y));
    assert_eq!(sent(&again), vec![TwoPcMsg::Prepared { txn: 1 }]);
    assert!(saved(&again).is_none(), "the vote is on storage already");
    assert_eq!(s.txns[&1].state, RmState::Prepared);
    // An aborted transaction is refused again.
    deliver(&cfg, &mut s, prepare(2, Y));
    assert_eq!(
        sent(&deliver(&cfg, &mut s, prepare(2, Y))),
        vec![TwoPcMsg::Aborted { txn: 2 }]
    );
}

/// Reference: §9.6.3, a participant may abort until it has voted; once prepared it inquires.
#[test]
fn a_participant_timeout_aborts_working_transactions_and_inquires_about_prepared_ones() {
    let cfg = ShardCfg {
        keys: vec![X, Y],
        ..timed_shard(Y, None)
    };
    let mut s = ShardState::new(&[X, Y]);
    let first = deliver(&cfg, &mut s, write(1, Y));
    assert_eq!(timers(&first), vec!["set Participant"]);
    assert!(
        timers(&deliver(&cfg, &mut s, read(2, X))).is_empty(),
        "not re-armed while armed: a busy shard still times out"
    );
    let storage = saved(&deliver(&cfg, &mut s, prepare(1, Y)));
    // The coordinator's name is on storage with the vote.
    assert_eq!(storage.unwrap().txns[&1].coordinator, client());
    let cmds = shard_timeout(&cfg, &mut s);
    assert_eq!(s.txns[&2].state, RmState::Aborted);
    assert_eq!(s.txns[&1].state, RmState::Prepared);
    assert!(
        matches!(&cmds[..], [Command::Send(to, TwoPcMsg::Inquire { txn: 1 }), ..] if *to == client())
    );
    assert_eq!(saved(&cmds).unwrap().txns[&2].state, RmState::Aborted);
    assert_eq!(timers(&cmds), vec!["set Participant"]);
    // T2's shared lock on x is gone: a writer gets x.
    assert!(matches!(
        sent(&deliver(&cfg, &mut s, write(3, X)))[..],
        [TwoPcMsg::WriteReply { txn: 3, .. }]
    ));
    // A restart brings the prepared transaction back with its timer.
    let mut o = Out::new();
    let s2 = cfg.start(&storage_of(&s), &mut o);
    assert_eq!(s2.txns[&1].state, RmState::Prepared);
    assert_eq!(
        timers(&o.into_iter().collect::<Vec<_>>()),
        vec!["set Participant"]
    );
    // The decision, learned by inquiry, disarms the timer once nothing is undecided here.
    deliver(&cfg, &mut s, TwoPcMsg::Abort { txn: 3 });
    let cmds = deliver(&cfg, &mut s, TwoPcMsg::Commit { txn: 1 });
    assert_eq!(timers(&cmds), vec!["cancel Participant"]);
}

fn storage_of(s: &ShardState) -> Option<ShardState> {
    Some(s.durable())
}

#[test]
fn abort_after_vote_takes_back_a_yes_vote() {
    let cfg = timed_shard(Y, Some(TwoPcBug::AbortAfterVote));
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    deliver(&cfg, &mut s, prepare(1, Y));
    assert!(sent(&shard_timeout(&cfg, &mut s)).is_empty());
    assert_eq!(s.txns[&1].state, RmState::Aborted);
}

fn timed_client() -> ClientCfg {
    ClientCfg {
        timeout: Some(super::COORDINATOR_TIMEOUT),
        ..client_cfg(None)
    }
}

fn client_timeout(cfg: &ClientCfg, s: &mut ClientState) -> Vec<(Id, TwoPcMsg)> {
    let mut o: Out<TwoPcActor> = Out::new();
    cfg.on_timeout(s, TwoPcTimer::Coordinator, &mut o);
    o.into_iter()
        .filter_map(|c| match c {
            Command::Send(dst, m) => Some((dst, m)),
            _ => None,
        })
        .collect()
}

/// Reference: §9.6.3, the coordinator may abort unilaterally until it has decided, and answers
/// inquiries from its outcome records.
#[test]
fn a_coordinator_timeout_aborts_everywhere_the_transaction_went() {
    let cfg = timed_client();
    // Executing its first operation: the shard it went to hears Abort.
    let mut s = cfg.start(&mut Out::new());
    assert_eq!(
        client_timeout(&cfg, &mut s),
        vec![(Id::from(0), TwoPcMsg::Abort { txn: 1 })]
    );
    assert_eq!(s.decided, BTreeMap::from([(1, Decision::Abort)]));
    assert!(s.is_idle());
    // Preparing: every participant hears Abort; a late vote changes nothing.
    let mut s = client_preparing(&cfg);
    to_client(&cfg, &mut s, 1, TwoPcMsg::Prepared { txn: 1 });
    // An inquiry about the undecided transaction is not answered.
    assert!(to_client(&cfg, &mut s, 1, TwoPcMsg::Inquire { txn: 1 }).is_empty());
    assert_eq!(client_timeout(&cfg, &mut s).len(), 2);
    assert!(to_client(&cfg, &mut s, 0, TwoPcMsg::Prepared { txn: 1 }).is_empty());
    assert_eq!(
        to_client(&cfg, &mut s, 1, TwoPcMsg::Inquire { txn: 1 }),
        vec![(Id::from(1), TwoPcMsg::Abort { txn: 1 })]
    );
    // Nothing to time out on once idle.
    assert!(client_timeout(&cfg, &mut s).is_empty());
}

/// The runtime's driver hands transactions over one at a time and gets each outcome back.
#[test]
fn a_live_client_runs_the_transactions_begin_brings_and_reports_outcomes() {
    let driver = 7;
    let shard_of = BTreeMap::from([(X, Id::from(0)), (Y, Id::from(1))]);
    let TwoPcActor::Client(cfg) = TwoPcActor::live_client(shard_of) else {
        unreachable!()
    };
    let mut o: Out<TwoPcActor> = Out::new();
    let mut s = cfg.start(&mut o);
    assert!(o.is_empty() && s.is_idle());
    let t = |id| TxnSpec {
        id,
        ops: vec![TxnOp::Read(X), TxnOp::Write(Y)],
    };
    let mut o: Out<TwoPcActor> = Out::new();
    cfg.on_msg(&mut s, Id::from(driver), TwoPcMsg::Begin(t(10)), &mut o);
    assert!(matches!(
        &o[..],
        [
            Command::Send(_, TwoPcMsg::Read { txn: 10, key: X }),
            Command::SetTimer(TwoPcTimer::Coordinator, _)
        ]
    ));
    // A second Begin waits in the queue.
    assert!(to_client(&cfg, &mut s, driver, TwoPcMsg::Begin(t(11))).is_empty());
    assert_eq!(s.queue.len(), 1);
    let sends = to_client(&cfg, &mut s, 0, TwoPcMsg::Refused { txn: 10, key: X });
    assert_eq!(
        sends,
        vec![
            (
                Id::from(driver),
                TwoPcMsg::Outcome {
                    txn: 10,
                    decision: Decision::Abort
                }
            ),
            (Id::from(0), read(11, X)),
        ]
    );
    // A Begin sent again for a decided transaction gets its outcome again.
    assert_eq!(
        to_client(&cfg, &mut s, driver, TwoPcMsg::Begin(t(10))),
        vec![(
            Id::from(driver),
            TwoPcMsg::Outcome {
                txn: 10,
                decision: Decision::Abort
            }
        )]
    );
}

/// Messages go over TCP as JSON, and a shard's storage is written to a file.
#[test]
fn messages_and_storage_survive_json() {
    let msgs = [
        TwoPcMsg::Begin(TxnSpec {
            id: 3,
            ops: vec![TxnOp::Read(X), TxnOp::Write(Y)],
        }),
        TwoPcMsg::Outcome {
            txn: 3,
            decision: Decision::Commit,
        },
        TwoPcMsg::Inquire { txn: 3 },
        prepare(3, X),
    ];
    for m in msgs {
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<TwoPcMsg>(&text).unwrap(), m);
    }
    let cfg = shard_cfg(Y, None);
    let mut s = ShardState::new(&[Y]);
    deliver(&cfg, &mut s, write(1, Y));
    let storage = saved(&deliver(&cfg, &mut s, prepare(1, Y))).unwrap();
    let text = serde_json::to_string(&storage).unwrap();
    assert_eq!(serde_json::from_str::<ShardState>(&text).unwrap(), storage);
}

/// The configuration that runs over TCP: messages lost and reordered, timers on.
fn over_tcp() -> TwoPcCfg {
    TwoPcCfg {
        clients: 2,
        network: NetworkKind::Lossy,
        timeouts: 1,
        ..TwoPcCfg::default()
    }
}

#[test]
fn over_a_lossy_network_with_timeouts_every_property_holds() {
    let checker = over_tcp().into_model().checker().spawn_dfs().join();
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), 359_111);
    assert_eq!(checker.state_count(), 1_874_749);
}

#[test]
fn timeouts_over_an_ordered_network_keep_every_transaction_ending() {
    let cfg = TwoPcCfg {
        clients: 2,
        timeouts: 1,
        ..TwoPcCfg::default()
    };
    let checker = cfg.into_model().checker().spawn_bfs().join();
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), 60_561);
}

#[test]
fn abort_after_vote_breaks_atomicity() {
    let checker = check_bug("abort-after-vote");
    checker.assert_any_discovery("atomicity");
    checker.assert_any_discovery("a prepared participant waits for the decision");
    checker.assert_no_discovery("serializability");
    assert_eq!(checker.unique_state_count(), 110);
}

#[test]
fn commit_to_last_voter_leaves_a_participant_prepared() {
    let checker = check_bug("commit-to-last-voter");
    let path = checker.assert_any_discovery("every transaction ends everywhere");
    let last = path.last_state();
    let prepared = (0..super::model::SHARDS)
        .filter(|&i| {
            shard(last, i)
                .txns
                .values()
                .any(|p| p.state == RmState::Prepared)
        })
        .count();
    assert_eq!(prepared, 1, "one participant never hears the Commit");
    checker.assert_no_discovery("atomicity");
    checker.assert_no_discovery("a prepared participant waits for the decision");
    assert_eq!(checker.unique_state_count(), 16);
}

/// The runtime seeds `early-unlock` on real nodes: it is caught over a lossy network too.
#[test]
fn early_unlock_is_caught_over_a_lossy_network_with_timeouts() {
    let model = TwoPcCfg {
        crashes: 0,
        bug: Some(TwoPcBug::EarlyUnlock),
        ..over_tcp()
    }
    .into_model();
    let checker = model.checker().spawn_bfs().join();
    let path = checker.assert_any_discovery("serializability");
    let violation = check_serializable(&history(checker.model().cfg(), path.last_state()))
        .expect_err("the counterexample is not serializable");
    assert_eq!(violation.anomaly, Anomaly::G2, "{violation}");
    checker.assert_no_discovery("atomicity");
    assert_eq!(checker.unique_state_count(), 49_984);
}

/// A request for a key the shard does not hold (a misrouted or malformed client over TCP) is
/// refused, and the shard keeps no record of it.
#[test]
fn a_shard_refuses_a_key_it_does_not_hold() {
    let cfg = shard_cfg('x', None);
    let mut s = ShardState::new(&['x']);
    for msg in [read(1, 'q'), write(1, 'q')] {
        let cmds = deliver(&cfg, &mut s, msg);
        assert_eq!(sent(&cmds), vec![TwoPcMsg::Refused { txn: 1, key: 'q' }]);
    }
    assert!(s.txns.is_empty());
}
