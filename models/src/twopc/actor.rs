//! The shards (participants) and the clients (coordinators) as stateright actors. They take their
//! peers from their configuration only, so the same actors could run over TCP.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

use properties::commitment::Decision;
use properties::serializability::{TxnId, Version};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use crate::twophase::RmState;

/// A key of the store. Each shard holds some keys; the model's are `x` and `y`.
pub type Key = char;

/// The messages: operations under locks (Saltzer & Kaashoek §9.5.3), the two phases of the
/// commit protocol (§9.6.3; Gray & Lamport §3 name them Prepare, Prepared, Commit, Abort), the
/// participant's inquiry (§9.6.3), and the exchange between a client and the local driver that
/// hands it transactions (live runs only). They go over TCP as JSON.
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
    /// Participant to coordinator (§9.6.3): a prepared participant that has waited too long for
    /// the decision asks for it again. The coordinator answers from its outcome records with
    /// Commit or Abort; it does not answer for a transaction it has not decided.
    Inquire {
        txn: TxnId,
    },
    /// Driver to client: run this transaction next. The client queues it and starts it once it
    /// is idle. A Begin for a transaction already decided is answered with its Outcome again.
    Begin(TxnSpec),
    /// Client to the driver that sent Begin: the coordinator's decision on `txn`.
    Outcome {
        txn: TxnId,
        decision: Decision,
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
            | TwoPcMsg::Abort { txn }
            | TwoPcMsg::Inquire { txn }
            | TwoPcMsg::Outcome { txn, .. } => *txn,
            TwoPcMsg::Begin(spec) => spec.id,
        }
    }
}

/// The timers (§9.6.3: what to do when an expected message does not come). Each is armed only
/// when the actor's configuration has a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TwoPcTimer {
    /// A client's, armed while it runs a transaction: the transaction has taken too long. Until
    /// it has decided, the coordinator may abort unilaterally.
    Coordinator,
    /// A shard's, armed while it has working or prepared transactions: it aborts the working
    /// ones (it has not voted yet) and inquires about the prepared ones.
    Participant,
}

/// Live timeouts for the coordinator: a few hundred round trips on a local network.
pub const COORDINATOR_TIMEOUT: Range<Duration> =
    Duration::from_millis(500)..Duration::from_millis(1000);

/// Live timeouts for a participant, of the same order as the coordinator's.
pub const PARTICIPANT_TIMEOUT: Range<Duration> =
    Duration::from_millis(500)..Duration::from_millis(1000);

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
        /// On its timeout a participant aborts its prepared transactions as well as its working
        /// ones: it takes back a yes vote instead of inquiring and waiting.
        AbortAfterVote = "abort-after-vote",
        /// On the last Prepared vote the coordinator sends Commit only to the participant whose
        /// vote completed the set: the others stay prepared, waiting for a decision that never
        /// comes.
        CommitToLastVoter = "commit-to-last-voter",
    }
}

/// A lock mode (§9.5.3): any number of readers share a key, a writer holds it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// What a transaction did at one shard and where it stands there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Participation {
    /// Its coordinator (the sender of its operations and of Prepare): the one to inquire of
    /// once prepared, so it is on stable storage with the vote.
    pub coordinator: Id,
    /// The keys it read here, with the committed version each read saw.
    pub reads: Vec<(Key, Version)>,
    /// The keys it wrote here; the version is the one installed at commit (`None` before).
    pub writes: Vec<(Key, Option<Version>)>,
    /// Gray & Lamport's `rmState` for this transaction at this shard.
    pub state: RmState,
}

impl Participation {
    /// A transaction's record at its first operation here.
    pub fn working(coordinator: Id) -> Self {
        Participation {
            coordinator,
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The participant timeout ([`TwoPcTimer::Participant`]); `None`: no timer (a network that
    /// loses nothing needs none).
    pub timeout: Option<Range<Duration>>,
    pub bug: Option<TwoPcBug>,
}

impl ShardCfg {
    /// A shard for a live run: it holds `keys` and times out after `timeout` (e.g.
    /// [`PARTICIPANT_TIMEOUT`]).
    pub fn live(keys: Vec<Key>, timeout: Range<Duration>) -> Self {
        ShardCfg {
            keys,
            timeout: Some(timeout),
            bug: None,
        }
    }

    /// Starts from stable storage, or empty. A prepared transaction comes back prepared, with
    /// its locks: it waits for the decision, which the coordinator has sent or will send, and
    /// inquires about it when its timer fires.
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
        self.rearm(false, &s, o);
        s
    }

    fn early_unlock(&self) -> bool {
        self.bug == Some(TwoPcBug::EarlyUnlock)
    }

    /// Keeps the timer armed exactly while the shard has working or prepared transactions:
    /// armed when the first appears (`had` says whether there was one before the step),
    /// cancelled when the last ends. It is not re-armed at every message, so a busy shard still
    /// times out on a transaction that is stuck.
    fn rearm(&self, had: bool, s: &ShardState, o: &mut Out<TwoPcActor>) {
        let Some(timeout) = &self.timeout else {
            return;
        };
        match (had, s.has_volatile()) {
            (false, true) => o.set_timer(TwoPcTimer::Participant, timeout.clone()),
            (true, false) => o.cancel_timer(TwoPcTimer::Participant),
            _ => {}
        }
    }

    pub fn on_msg(&self, s: &mut ShardState, src: Id, msg: TwoPcMsg, o: &mut Out<TwoPcActor>) {
        let had = s.has_volatile();
        self.handle(s, src, msg, o);
        self.rearm(had, s, o);
    }

    fn handle(&self, s: &mut ShardState, src: Id, msg: TwoPcMsg, o: &mut Out<TwoPcActor>) {
        match msg {
            TwoPcMsg::Read { txn, key } => self.operate(s, src, txn, key, LockMode::Shared, o),
            TwoPcMsg::Write { txn, key } => self.operate(s, src, txn, key, LockMode::Exclusive, o),
            TwoPcMsg::Prepare { txn, keys } => match s.txns.get(&txn).map(|p| p.state) {
                // 1. A Prepare sent again (or duplicated): the vote is already on storage, and
                //    it is the same vote.
                Some(RmState::Prepared | RmState::Committed) => {
                    o.send(src, TwoPcMsg::Prepared { txn });
                }
                Some(RmState::Working) if s.txns[&txn].keys() == keys => {
                    // 2. Force the vote, with the writes, the locks and the coordinator's
                    //    name, to stable storage before answering: once the coordinator has
                    //    the vote it may commit.
                    s.txns.get_mut(&txn).expect("matched above").state = RmState::Prepared;
                    o.save(s.durable());
                    o.send(src, TwoPcMsg::Prepared { txn });
                }
                _ => {
                    // 3. The shard does not hold what the coordinator believes it does: it
                    //    restarted since and lost the transaction's locks, never saw it, or
                    //    aborted it on its own. It aborts, and records that it did, so it never
                    //    commits it.
                    let p = s
                        .txns
                        .entry(txn)
                        .or_insert_with(|| Participation::working(src));
                    if p.state == RmState::Working {
                        p.state = RmState::Aborted;
                        o.save(s.durable());
                    }
                    o.send(src, TwoPcMsg::Aborted { txn });
                }
            },
            TwoPcMsg::Commit { txn } => {
                // Only a prepared transaction can learn Commit; anything else is the bug of
                // another actor (or a repeated Commit), which the properties catch, so it is
                // left as it is.
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
            | TwoPcMsg::Aborted { .. }
            | TwoPcMsg::Inquire { .. }
            | TwoPcMsg::Begin(_)
            | TwoPcMsg::Outcome { .. } => {}
        }
    }

    /// The participant timeout (§9.6.3). A working transaction has not voted: the shard may
    /// abort it on its own, releasing its locks (its coordinator learns it at Prepare, which is
    /// answered Aborted). A prepared one has voted yes and may not: the shard asks its
    /// coordinator for the decision, and asks again at the next timeout.
    pub fn on_timeout(&self, s: &mut ShardState, timer: TwoPcTimer, o: &mut Out<TwoPcActor>) {
        if timer != TwoPcTimer::Participant {
            return;
        }
        let revoke_votes = self.bug == Some(TwoPcBug::AbortAfterVote);
        let mut aborted = false;
        for (txn, p) in &mut s.txns {
            match p.state {
                RmState::Prepared if !revoke_votes => {
                    o.send(p.coordinator, TwoPcMsg::Inquire { txn: *txn });
                }
                RmState::Working | RmState::Prepared => {
                    p.state = RmState::Aborted;
                    aborted = true;
                }
                RmState::Committed | RmState::Aborted => {}
            }
        }
        if aborted {
            o.save(s.durable());
        }
        // The timer has fired: arm it again while something is still undecided here.
        self.rearm(false, s, o);
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
        // A key this shard does not hold (a misrouted or malformed request) is refused too: a
        // node survives what its clients send.
        let Some(&version) = s.versions.get(&key) else {
            o.send(src, TwoPcMsg::Refused { txn, key });
            return;
        };
        if !working || s.conflicts(txn, key, mode, self.early_unlock()) {
            o.send(src, TwoPcMsg::Refused { txn, key });
            return;
        }
        let p = s
            .txns
            .entry(txn)
            .or_insert_with(|| Participation::working(src));
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// A transaction a client runs: its operations in program order. Live, the driver assigns the
/// ids, unique across clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxnSpec {
    pub id: TxnId,
    pub ops: Vec<TxnOp>,
}

/// A client's configuration. The client coordinates its own transactions (§9.6.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    /// The shard that holds each key.
    pub shard_of: BTreeMap<Key, Id>,
    /// Transactions queued at start, run one after another (the model's; live, none: they come
    /// in Begin messages).
    pub txns: Vec<TxnSpec>,
    /// The coordinator timeout ([`TwoPcTimer::Coordinator`]); `None`: no timer.
    pub timeout: Option<Range<Duration>>,
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
}

/// A transaction a client has accepted, with the driver to tell its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Queued {
    pub txn: TxnSpec,
    /// The sender of its Begin; `None` for one from the configuration.
    pub driver: Option<Id>,
}

/// The transaction a client is running.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Current {
    pub txn: TxnSpec,
    pub driver: Option<Id>,
    pub phase: Phase,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The coordinator's outcome records (§9.6.3): its decision on every transaction it has
    /// decided. It answers inquiries from them. The coordinator does not crash in this model, so
    /// they need no stable storage; nor are they ever discarded.
    pub decided: BTreeMap<TxnId, Decision>,
    /// The transaction it runs, undecided; `None`: idle.
    pub current: Option<Current>,
    /// Transactions waiting for the client to be idle, in order.
    pub queue: VecDeque<Queued>,
}

impl ClientState {
    /// Whether the client has nothing left to run.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }
}

impl ClientCfg {
    /// A client for a live run: it starts idle and runs the transactions that Begin messages
    /// bring, timing out after `timeout` (e.g. [`COORDINATOR_TIMEOUT`]).
    pub fn live(shard_of: BTreeMap<Key, Id>, timeout: Range<Duration>) -> Self {
        ClientCfg {
            shard_of,
            txns: Vec::new(),
            timeout: Some(timeout),
            bug: None,
        }
    }

    pub fn start(&self, o: &mut Out<TwoPcActor>) -> ClientState {
        let mut s = ClientState {
            decided: BTreeMap::new(),
            current: None,
            queue: self
                .txns
                .iter()
                .map(|txn| Queued {
                    txn: txn.clone(),
                    driver: None,
                })
                .collect(),
        };
        self.next(&mut s, o);
        s
    }

    /// When idle, starts the next queued transaction, if any, and arms the coordinator timer.
    fn next(&self, s: &mut ClientState, o: &mut Out<TwoPcActor>) {
        if s.current.is_some() {
            return;
        }
        while let Some(Queued { txn, driver }) = s.queue.pop_front() {
            if txn.ops.is_empty() {
                // Nothing to do anywhere: committed at once.
                self.record(s, txn.id, driver, Decision::Commit, o);
                continue;
            }
            self.send_op(&txn, 0, o);
            if let Some(timeout) = &self.timeout {
                o.set_timer(TwoPcTimer::Coordinator, timeout.clone());
            }
            s.current = Some(Current {
                txn,
                driver,
                phase: Phase::Executing { op: 0 },
            });
            return;
        }
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

    /// Records the decision and tells the driver, if any.
    fn record(
        &self,
        s: &mut ClientState,
        txn: TxnId,
        driver: Option<Id>,
        decision: Decision,
        o: &mut Out<TwoPcActor>,
    ) {
        s.decided.insert(txn, decision);
        if let Some(driver) = driver {
            o.send(driver, TwoPcMsg::Outcome { txn, decision });
        }
    }

    /// Records the decision on the current transaction, sends it to `to`, and goes on with the
    /// next transaction.
    fn decide(
        &self,
        s: &mut ClientState,
        decision: Decision,
        to: BTreeSet<Id>,
        o: &mut Out<TwoPcActor>,
    ) {
        let cur = s
            .current
            .take()
            .expect("only the current transaction is decided");
        let txn = cur.txn.id;
        o.broadcast(&to, &decision_msg(txn, decision));
        self.record(s, txn, cur.driver, decision, o);
        self.next(s, o);
        if s.current.is_none() && self.timeout.is_some() {
            o.cancel_timer(TwoPcTimer::Coordinator);
        }
    }

    pub fn on_msg(&self, s: &mut ClientState, src: Id, msg: TwoPcMsg, o: &mut Out<TwoPcActor>) {
        match msg {
            TwoPcMsg::Begin(txn) => return self.accept(s, src, txn, o),
            TwoPcMsg::Inquire { txn } => {
                // Answer from the outcome records. An inquiry about the undecided current
                // transaction is not answered: the coordinator's own timeout bounds the wait,
                // and its decision then goes to every participant.
                if let Some(d) = s.decided.get(&txn) {
                    o.send(src, decision_msg(txn, *d));
                }
                return;
            }
            _ => {}
        }
        let Some(cur) = &mut s.current else {
            return;
        };
        if msg.txn() != cur.txn.id {
            // A late reply or vote on a decided transaction.
            return;
        }
        let t = &cur.txn;
        let decision = match (&mut cur.phase, msg) {
            (Phase::Executing { op }, TwoPcMsg::ReadReply { .. } | TwoPcMsg::WriteReply { .. }) => {
                let next = *op + 1;
                if next < t.ops.len() {
                    self.send_op(t, next, o);
                    cur.phase = Phase::Executing { op: next };
                } else {
                    // Phase one: ask every participant to prepare.
                    for shard in self.participants(t, t.ops.len()) {
                        let keys = self.keys_at(t, shard);
                        o.send(shard, TwoPcMsg::Prepare { txn: t.id, keys });
                    }
                    cur.phase = Phase::Preparing {
                        prepared: BTreeSet::new(),
                    };
                }
                None
            }
            (Phase::Executing { op }, TwoPcMsg::Refused { .. }) => {
                // No-wait: abort, releasing the locks the earlier operations got.
                let granted = if self.bug == Some(TwoPcBug::AbortForgetsParticipants) {
                    BTreeSet::from([src])
                } else {
                    self.participants(t, *op)
                };
                Some((Decision::Abort, granted))
            }
            (Phase::Preparing { prepared }, TwoPcMsg::Prepared { .. }) => {
                prepared.insert(src);
                let all = self.participants(t, t.ops.len());
                let partial = self.bug == Some(TwoPcBug::CoordinatorCommitsOnPartialVotes);
                // Commit only with a yes vote from every participant (§9.6.3), and tell them all.
                let to = if self.bug == Some(TwoPcBug::CommitToLastVoter) {
                    BTreeSet::from([src])
                } else {
                    all.clone()
                };
                (*prepared == all || partial).then_some((Decision::Commit, to))
            }
            (Phase::Preparing { .. }, TwoPcMsg::Aborted { .. }) => {
                Some((Decision::Abort, self.participants(t, t.ops.len())))
            }
            _ => None,
        };
        if let Some((decision, to)) = decision {
            self.decide(s, decision, to, o);
        }
    }

    /// A transaction from the driver: queued, answered at once if already decided, ignored if
    /// already accepted.
    fn accept(&self, s: &mut ClientState, driver: Id, txn: TxnSpec, o: &mut Out<TwoPcActor>) {
        if let Some(d) = s.decided.get(&txn.id) {
            o.send(
                driver,
                TwoPcMsg::Outcome {
                    txn: txn.id,
                    decision: *d,
                },
            );
            return;
        }
        let accepted = s.current.as_ref().is_some_and(|c| c.txn.id == txn.id)
            || s.queue.iter().any(|q| q.txn.id == txn.id);
        if accepted {
            return;
        }
        if txn
            .ops
            .iter()
            .any(|op| !self.shard_of.contains_key(&op.key()))
        {
            // A key no shard holds: nothing can run, so the coordinator aborts it at once.
            return self.record(s, txn.id, Some(driver), Decision::Abort, o);
        }
        s.queue.push_back(Queued {
            txn,
            driver: Some(driver),
        });
        self.next(s, o);
    }

    /// The coordinator timeout (§9.6.3): until it has decided, the coordinator may abort on its
    /// own. It tells every shard the transaction touched, the one with an operation outstanding
    /// included (that operation may yet be granted there).
    pub fn on_timeout(&self, s: &mut ClientState, timer: TwoPcTimer, o: &mut Out<TwoPcActor>) {
        if timer != TwoPcTimer::Coordinator {
            return;
        }
        let Some(cur) = &s.current else {
            return;
        };
        let touched = match cur.phase {
            Phase::Executing { op } => self.participants(&cur.txn, op + 1),
            Phase::Preparing { .. } => self.participants(&cur.txn, cur.txn.ops.len()),
        };
        self.decide(s, Decision::Abort, touched, o);
    }
}

/// The phase-two message carrying `decision`.
fn decision_msg(txn: TxnId, decision: Decision) -> TwoPcMsg {
    match decision {
        Decision::Commit => TwoPcMsg::Commit { txn },
        Decision::Abort => TwoPcMsg::Abort { txn },
    }
}

/// An actor: a shard or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TwoPcActor {
    Shard(ShardCfg),
    Client(ClientCfg),
}

impl TwoPcActor {
    /// A live shard holding `keys`, with [`PARTICIPANT_TIMEOUT`]. Its storage is a
    /// [`ShardState`] (serde), to be saved before the messages of the same step are sent.
    pub fn live_shard(keys: Vec<Key>) -> Self {
        TwoPcActor::Shard(ShardCfg::live(keys, PARTICIPANT_TIMEOUT))
    }

    /// A live client (coordinator) that finds each key's shard in `shard_of`, with
    /// [`COORDINATOR_TIMEOUT`]. It runs the transactions that Begin messages bring and answers
    /// each with an Outcome.
    pub fn live_client(shard_of: BTreeMap<Key, Id>) -> Self {
        TwoPcActor::Client(ClientCfg::live(shard_of, COORDINATOR_TIMEOUT))
    }
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TwoPcState {
    Shard(ShardState),
    Client(ClientState),
}

impl Actor for TwoPcActor {
    type Msg = TwoPcMsg;
    type Timer = TwoPcTimer;
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

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<TwoPcState>,
        timer: &TwoPcTimer,
        o: &mut Out<Self>,
    ) {
        match (self, state.to_mut()) {
            (TwoPcActor::Shard(cfg), TwoPcState::Shard(s)) => cfg.on_timeout(s, *timer, o),
            (TwoPcActor::Client(cfg), TwoPcState::Client(s)) => cfg.on_timeout(s, *timer, o),
            _ => unreachable!("actor and state kinds agree"),
        }
    }
}
