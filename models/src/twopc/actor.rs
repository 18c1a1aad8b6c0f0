//! The shards (participants) and the clients (coordinators) as stateright actors. They take their
//! peers from their configuration only, so the same actors could run over TCP.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use properties::commitment::Decision;
use properties::serializability::{TxnId, Version};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use crate::twophase::RmState;

/// A key of the store. Each shard holds some keys; the model's are `x` and `y`.
pub type Key = char;

/// The messages: operations under locks (Saltzer & Kaashoek §9.5.3) and the two phases of the
/// commit protocol (§9.6.3; Gray & Lamport §3 name them Prepare, Prepared, Commit, Abort).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TwoPcMsg {
    /// Client to shard: read `key` under a shared lock.
    Read {
        txn: TxnId,
        key: Key,
    },
    /// The shared lock is granted; `version` is the committed version read.
    ReadReply {
        txn: TxnId,
        key: Key,
        version: Version,
    },
    /// Client to shard: write `key` under an exclusive lock. The shard buffers the write and
    /// installs it at commit (a redo record: nothing to undo at abort).
    Write {
        txn: TxnId,
        key: Key,
    },
    /// The exclusive lock is granted and the write buffered.
    WriteReply {
        txn: TxnId,
        key: Key,
    },
    /// The lock is held by another transaction in a conflicting mode. No-wait locking: the shard
    /// refuses at once instead of queueing the request, and the client aborts its transaction.
    Refused {
        txn: TxnId,
        key: Key,
    },
    /// Phase one, coordinator to participant: prepare to commit. `keys` are the keys on which
    /// the coordinator's operations were granted locks at this participant: one that restarted
    /// since has lost those locks (they are volatile) and must not vote yes.
    Prepare {
        txn: TxnId,
        keys: Vec<Key>,
    },
    /// The participant's yes vote, sent after its vote, locks and writes are on stable storage.
    /// From here on it may not abort on its own: it waits for the decision.
    Prepared {
        txn: TxnId,
    },
    /// The participant's no vote: it has aborted the transaction (Gray & Lamport §3 let a
    /// resource manager abort on its own until it has prepared).
    Aborted {
        txn: TxnId,
    },
    /// Phase two: the coordinator's decision.
    Commit {
        txn: TxnId,
    },
    Abort {
        txn: TxnId,
    },
}

impl TwoPcMsg {
    pub fn txn(&self) -> TxnId {
        match self {
            TwoPcMsg::Read { txn, .. }
            | TwoPcMsg::ReadReply { txn, .. }
            | TwoPcMsg::Write { txn, .. }
            | TwoPcMsg::WriteReply { txn, .. }
            | TwoPcMsg::Refused { txn, .. }
            | TwoPcMsg::Prepare { txn, .. }
            | TwoPcMsg::Prepared { txn }
            | TwoPcMsg::Aborted { txn }
            | TwoPcMsg::Commit { txn }
            | TwoPcMsg::Abort { txn } => *txn,
        }
    }
}

crate::seeded_bugs! {
    /// The seeded bugs (see the module documentation).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum TwoPcBug {
        /// A participant releases a transaction's locks, exclusive ones included, when it votes
        /// Prepared, not at the decision: locking stays two-phase but is no longer strict.
        EarlyUnlock = "early-unlock",
        /// A restarted participant ignores the yes votes on its storage and aborts those
        /// transactions.
        ForgetVote = "forget-vote",
        /// The coordinator commits on the first Prepared instead of waiting for every
        /// participant.
        CoordinatorCommitsOnPartialVotes = "coordinator-commits-on-partial-votes",
        /// On a refused lock, the coordinator tells only the shard that refused: the shards that
        /// granted earlier locks never hear of the abort and hold them forever.
        AbortForgetsParticipants = "abort-forgets-participants",
    }
}

/// A lock mode (§9.5.3): any number of readers share a key, a writer holds it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// What a transaction did at one shard and where it stands there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Participation {
    /// The keys it read here, with the committed version each read saw.
    pub reads: Vec<(Key, Version)>,
    /// The keys it wrote here; the version is the one installed at commit (`None` before).
    pub writes: Vec<(Key, Option<Version>)>,
    /// Gray & Lamport's `rmState` for this transaction at this shard.
    pub state: RmState,
}

impl Participation {
    /// A transaction's record at its first operation here.
    pub fn working() -> Self {
        Participation {
            reads: Vec::new(),
            writes: Vec::new(),
            state: RmState::Working,
        }
    }

    /// The keys it holds locks on here (while it holds any), sorted.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.reads.iter().map(|(k, _)| *k).collect();
        keys.extend(self.writes.iter().map(|(k, _)| *k));
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The mode of its lock on `key`, if it has operated on `key`.
    pub fn lock_on(&self, key: Key) -> Option<LockMode> {
        if self.writes.iter().any(|(k, _)| *k == key) {
            Some(LockMode::Exclusive)
        } else if self.reads.iter().any(|(k, _)| *k == key) {
            Some(LockMode::Shared)
        } else {
            None
        }
    }

    /// Strict two-phase locking (§9.5.3): a transaction holds its locks from the operation that
    /// acquires them until its outcome is known here, prepared transactions included. With
    /// `early_unlock` a prepared transaction holds none.
    pub fn holds_locks(&self, early_unlock: bool) -> bool {
        match self.state {
            RmState::Working => true,
            RmState::Prepared => !early_unlock,
            RmState::Committed | RmState::Aborted => false,
        }
    }
}

/// A shard's state. Its stable storage is the same type holding only what survives a crash.
///
/// The lock table is not stored apart: it is the set of locks that the transactions of `txns`
/// hold ([`Participation::holds_locks`]), so a restart restores the locks of prepared
/// transactions with their records and loses those of working ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardState {
    /// The latest committed version of each key held here; 0 is the initial one.
    pub versions: BTreeMap<Key, Version>,
    /// Every transaction that operated or voted here.
    /// Invariant (storage): no `Working` record is saved.
    pub txns: BTreeMap<TxnId, Participation>,
}

impl ShardState {
    pub fn new(keys: &[Key]) -> Self {
        ShardState {
            versions: keys.iter().map(|k| (*k, 0)).collect(),
            txns: BTreeMap::new(),
        }
    }

    /// What goes to stable storage: the data and every record that has voted or has an
    /// outcome (a working transaction's record is volatile, and so are its locks).
    pub fn durable(&self) -> ShardState {
        ShardState {
            versions: self.versions.clone(),
            txns: self
                .txns
                .iter()
                .filter(|(_, p)| p.state != RmState::Working)
                .map(|(t, p)| (*t, p.clone()))
                .collect(),
        }
    }

    /// Whether another transaction holds a lock on `key` that conflicts with `mode`.
    pub fn conflicts(&self, txn: TxnId, key: Key, mode: LockMode, early_unlock: bool) -> bool {
        self.txns.iter().any(|(other, p)| {
            *other != txn
                && p.holds_locks(early_unlock)
                && match p.lock_on(key) {
                    None => false,
                    Some(held) => held == LockMode::Exclusive || mode == LockMode::Exclusive,
                }
        })
    }

    /// Whether anything here would be lost by a crash: a working transaction, or locks of a
    /// prepared one to restore.
    pub fn has_volatile(&self) -> bool {
        self.txns
            .values()
            .any(|p| matches!(p.state, RmState::Working | RmState::Prepared))
    }
}

/// A shard's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardCfg {
    /// The keys this shard holds.
    pub keys: Vec<Key>,
    pub bug: Option<TwoPcBug>,
}

impl ShardCfg {
    /// Starts from stable storage, or empty. A prepared transaction comes back prepared, with
    /// its locks: it waits for the decision, which the coordinator has sent or will send.
    pub fn start(&self, storage: &Option<ShardState>, o: &mut Out<TwoPcActor>) -> ShardState {
        let mut s = storage
            .clone()
            .unwrap_or_else(|| ShardState::new(&self.keys));
        if self.bug == Some(TwoPcBug::ForgetVote) {
            let mut forgot = false;
            for p in s.txns.values_mut() {
                if p.state == RmState::Prepared {
                    p.state = RmState::Aborted;
                    forgot = true;
                }
            }
            if forgot {
                o.save(s.durable());
            }
        }
        s
    }

    fn early_unlock(&self) -> bool {
        self.bug == Some(TwoPcBug::EarlyUnlock)
    }

    pub fn on_msg(&self, s: &mut ShardState, src: Id, msg: TwoPcMsg, o: &mut Out<TwoPcActor>) {
        match msg {
            TwoPcMsg::Read { txn, key } => self.operate(s, src, txn, key, LockMode::Shared, o),
            TwoPcMsg::Write { txn, key } => self.operate(s, src, txn, key, LockMode::Exclusive, o),
            TwoPcMsg::Prepare { txn, keys } => {
                let holds = s
                    .txns
                    .get(&txn)
                    .is_some_and(|p| p.state == RmState::Working && p.keys() == keys);
                if holds {
                    // 1. Force the vote, with the writes and the locks, to stable storage
                    //    before answering: once the coordinator has the vote it may commit.
                    s.txns.get_mut(&txn).expect("checked above").state = RmState::Prepared;
                    o.save(s.durable());
                    o.send(src, TwoPcMsg::Prepared { txn });
                } else {
                    // 2. The shard does not hold what the coordinator believes it does: it
                    //    restarted since and lost the transaction's locks (or never saw it).
                    //    It aborts, and records that it did, so it never commits it.
                    let p = s.txns.entry(txn).or_insert_with(Participation::working);
                    if p.state == RmState::Working {
                        p.state = RmState::Aborted;
                        o.save(s.durable());
                    }
                    o.send(src, TwoPcMsg::Aborted { txn });
                }
            }
            TwoPcMsg::Commit { txn } => {
                // Only a prepared transaction can learn Commit; anything else is the bug of
                // another actor, which the properties catch, so it is left as it is.
                let Some(p) = s.txns.get_mut(&txn) else {
                    return;
                };
                if p.state != RmState::Prepared {
                    return;
                }
                for (key, installed) in &mut p.writes {
                    let v = s
                        .versions
                        .get_mut(key)
                        .expect("a shard only grants locks on its own keys");
                    *v += 1;
                    *installed = Some(*v);
                }
                p.state = RmState::Committed;
                o.save(s.durable());
            }
            TwoPcMsg::Abort { txn } => {
                // A shard that lost a working transaction in a restart has nothing to undo.
                if let Some(p) = s.txns.get_mut(&txn) {
                    if matches!(p.state, RmState::Working | RmState::Prepared) {
                        p.state = RmState::Aborted;
                        o.save(s.durable());
                    }
                }
            }
            TwoPcMsg::ReadReply { .. }
            | TwoPcMsg::WriteReply { .. }
            | TwoPcMsg::Refused { .. }
            | TwoPcMsg::Prepared { .. }
            | TwoPcMsg::Aborted { .. } => {}
        }
    }

    /// A read or a write: acquire the lock, or refuse (no-wait).
    fn operate(
        &self,
        s: &mut ShardState,
        src: Id,
        txn: TxnId,
        key: Key,
        mode: LockMode,
        o: &mut Out<TwoPcActor>,
    ) {
        let working = s.txns.get(&txn).is_none_or(|p| p.state == RmState::Working);
        if !working || s.conflicts(txn, key, mode, self.early_unlock()) {
            o.send(src, TwoPcMsg::Refused { txn, key });
            return;
        }
        let version = *s
            .versions
            .get(&key)
            .expect("clients send each key to the shard that holds it");
        let p = s.txns.entry(txn).or_insert_with(Participation::working);
        match mode {
            LockMode::Shared => {
                p.reads.push((key, version));
                o.send(src, TwoPcMsg::ReadReply { txn, key, version });
            }
            LockMode::Exclusive => {
                p.writes.push((key, None));
                o.send(src, TwoPcMsg::WriteReply { txn, key });
            }
        }
    }
}

/// One operation of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnOp {
    Read(Key),
    Write(Key),
}

impl TxnOp {
    pub fn key(self) -> Key {
        match self {
            TxnOp::Read(k) | TxnOp::Write(k) => k,
        }
    }
}

/// A transaction a client runs: its operations in program order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnSpec {
    pub id: TxnId,
    pub ops: Vec<TxnOp>,
}

/// A client's configuration. The client coordinates its own transactions (§9.6.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    /// The shard that holds each key.
    pub shard_of: BTreeMap<Key, Id>,
    /// Its transactions, run one after another.
    pub txns: Vec<TxnSpec>,
    pub bug: Option<TwoPcBug>,
}

/// Where a client is in its current transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for the reply to operation `op`.
    Executing { op: usize },
    /// Phase one: waiting for the votes; `prepared` are the participants that voted yes
    /// (Gray & Lamport's `tmPrepared`).
    Preparing { prepared: BTreeSet<Id> },
    /// Every transaction is decided.
    Done,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The decision on each finished transaction, in order: the coordinator's outcome records.
    /// The current transaction is `txns[outcomes.len()]`.
    pub outcomes: Vec<Decision>,
    pub phase: Phase,
}

impl ClientCfg {
    pub fn start(&self, o: &mut Out<TwoPcActor>) -> ClientState {
        let mut s = ClientState {
            outcomes: Vec::new(),
            phase: Phase::Done,
        };
        self.begin(&mut s, o);
        s
    }

    /// Starts the next transaction, if any.
    fn begin(&self, s: &mut ClientState, o: &mut Out<TwoPcActor>) {
        s.phase = match self.txns.get(s.outcomes.len()) {
            Some(t) => {
                self.send_op(t, 0, o);
                Phase::Executing { op: 0 }
            }
            None => Phase::Done,
        };
    }

    fn send_op(&self, t: &TxnSpec, op: usize, o: &mut Out<TwoPcActor>) {
        let msg = match t.ops[op] {
            TxnOp::Read(key) => TwoPcMsg::Read { txn: t.id, key },
            TxnOp::Write(key) => TwoPcMsg::Write { txn: t.id, key },
        };
        o.send(self.shard_of[&t.ops[op].key()], msg);
    }

    /// The shards on which operations `..upto` of `t` run: its participants once all ran.
    pub fn participants(&self, t: &TxnSpec, upto: usize) -> BTreeSet<Id> {
        t.ops[..upto]
            .iter()
            .map(|op| self.shard_of[&op.key()])
            .collect()
    }

    /// The keys `t` locks at `shard`, sorted.
    fn keys_at(&self, t: &TxnSpec, shard: Id) -> Vec<Key> {
        let mut keys: Vec<Key> = t
            .ops
            .iter()
            .map(|op| op.key())
            .filter(|k| self.shard_of[k] == shard)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Records the decision, sends it to `to`, and goes on with the next transaction. The
    /// coordinator does not crash in this model, so its record needs no stable storage.
    fn decide(
        &self,
        s: &mut ClientState,
        t: &TxnSpec,
        decision: Decision,
        to: BTreeSet<Id>,
        o: &mut Out<TwoPcActor>,
    ) {
        let msg = match decision {
            Decision::Commit => TwoPcMsg::Commit { txn: t.id },
            Decision::Abort => TwoPcMsg::Abort { txn: t.id },
        };
        o.broadcast(&to, &msg);
        s.outcomes.push(decision);
        self.begin(s, o);
    }

    pub fn on_msg(&self, s: &mut ClientState, src: Id, msg: TwoPcMsg, o: &mut Out<TwoPcActor>) {
        let Some(t) = self.txns.get(s.outcomes.len()) else {
            return;
        };
        if msg.txn() != t.id {
            // A late vote on a decided transaction.
            return;
        }
        match (&mut s.phase, msg) {
            (Phase::Executing { op }, TwoPcMsg::ReadReply { .. } | TwoPcMsg::WriteReply { .. }) => {
                let next = *op + 1;
                if next < t.ops.len() {
                    self.send_op(t, next, o);
                    s.phase = Phase::Executing { op: next };
                } else {
                    // Phase one: ask every participant to prepare.
                    for shard in self.participants(t, t.ops.len()) {
                        let keys = self.keys_at(t, shard);
                        o.send(shard, TwoPcMsg::Prepare { txn: t.id, keys });
                    }
                    s.phase = Phase::Preparing {
                        prepared: BTreeSet::new(),
                    };
                }
            }
            (Phase::Executing { op }, TwoPcMsg::Refused { .. }) => {
                // No-wait: abort, releasing the locks the earlier operations got.
                let granted = if self.bug == Some(TwoPcBug::AbortForgetsParticipants) {
                    BTreeSet::from([src])
                } else {
                    self.participants(t, *op)
                };
                self.decide(s, t, Decision::Abort, granted, o);
            }
            (Phase::Preparing { prepared }, TwoPcMsg::Prepared { .. }) => {
                prepared.insert(src);
                let all = self.participants(t, t.ops.len());
                let partial = self.bug == Some(TwoPcBug::CoordinatorCommitsOnPartialVotes);
                // Commit only with a yes vote from every participant (§9.6.3).
                if *prepared == all || partial {
                    self.decide(s, t, Decision::Commit, all, o);
                }
            }
            (Phase::Preparing { .. }, TwoPcMsg::Aborted { .. }) => {
                let all = self.participants(t, t.ops.len());
                self.decide(s, t, Decision::Abort, all, o);
            }
            _ => {}
        }
    }
}

/// An actor: a shard or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TwoPcActor {
    Shard(ShardCfg),
    Client(ClientCfg),
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TwoPcState {
    Shard(ShardState),
    Client(ClientState),
}

impl Actor for TwoPcActor {
    type Msg = TwoPcMsg;
    type Timer = ();
    type State = TwoPcState;
    type Storage = ShardState;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<ShardState>, o: &mut Out<Self>) -> TwoPcState {
        match self {
            TwoPcActor::Shard(cfg) => TwoPcState::Shard(cfg.start(storage, o)),
            TwoPcActor::Client(cfg) => TwoPcState::Client(cfg.start(o)),
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<TwoPcState>,
        src: Id,
        msg: TwoPcMsg,
        o: &mut Out<Self>,
    ) {
        match (self, state.to_mut()) {
            (TwoPcActor::Shard(cfg), TwoPcState::Shard(s)) => cfg.on_msg(s, src, msg, o),
            (TwoPcActor::Client(cfg), TwoPcState::Client(s)) => cfg.on_msg(s, src, msg, o),
            _ => unreachable!("actor and state kinds agree"),
        }
    }
}
