//! The checked model: two shards and the clients in one `ActorModel`, wrapped so that a shard's
//! crash is a restart in one step and so that history variables record what the properties
//! need beyond the actors' states (who voted yes, who restarted while prepared).

use std::collections::{BTreeMap, BTreeSet};

use properties::commitment::{agreement, Decision};
use properties::serializability::{check_serializable, Op, Txn, TxnId};
use stateright::actor::{ActorModel, ActorModelAction, ActorModelState, Envelope, Id, Network};
use stateright::{Model, Path, Property};

use super::actor::{
    ClientCfg, ClientState, Key, Phase, ShardCfg, ShardState, TwoPcActor, TwoPcBug, TwoPcMsg,
    TwoPcState, TxnOp, TxnSpec,
};
use crate::twophase::RmState;

/// The keys, one per shard: shard `i` holds `KEYS[i]`.
pub const KEYS: [Key; 2] = ['x', 'y'];

/// Shards run at ids `0..SHARDS`, clients after them.
pub const SHARDS: usize = KEYS.len();

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPcCfg {
    /// Clients, each the coordinator of its own transactions.
    pub clients: usize,
    /// Transactions per client, run one after another.
    pub txns: usize,
    /// Shard crashes in all. A crash is a restart: the shard loses its volatile state (working
    /// transactions and their locks) and starts again from its storage in one step; messages
    /// to it wait in their channels. A crash that would lose nothing is not explored. Clients
    /// (and so coordinators) do not crash.
    pub crashes: usize,
    pub bug: Option<TwoPcBug>,
}

impl Default for TwoPcCfg {
    fn default() -> Self {
        TwoPcCfg {
            clients: 3,
            txns: 1,
            crashes: 2,
            bug: None,
        }
    }
}

impl TwoPcCfg {
    /// Client `c`'s `j`-th transaction: its id (from 1) reads one key and writes the other,
    /// alternating, so that T1 reads x and writes y while T2 reads y and writes x: the pair
    /// that write skew needs (two reads, then two writes into what the other read).
    pub fn txn(&self, c: usize, j: usize) -> TxnSpec {
        let read = KEYS[(c + j) % 2];
        let write = KEYS[(c + j + 1) % 2];
        TxnSpec {
            id: (c * self.txns + j + 1) as TxnId,
            ops: vec![TxnOp::Read(read), TxnOp::Write(write)],
        }
    }

    /// The client and index of transaction `id`.
    fn owner(&self, id: TxnId) -> (usize, usize) {
        let i = id as usize - 1;
        (i / self.txns, i % self.txns)
    }

    /// Every transaction id.
    pub fn txn_ids(&self) -> impl Iterator<Item = TxnId> {
        1..=(self.clients * self.txns) as TxnId
    }

    pub fn into_model(self) -> TwoPcModel {
        let shard_of: BTreeMap<Key, Id> = KEYS
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, Id::from(i)))
            .collect();
        let mut actors: Vec<TwoPcActor> = KEYS
            .iter()
            .map(|k| {
                TwoPcActor::Shard(ShardCfg {
                    keys: vec![*k],
                    bug: self.bug,
                })
            })
            .collect();
        for c in 0..self.clients {
            actors.push(TwoPcActor::Client(ClientCfg {
                shard_of: shard_of.clone(),
                txns: (0..self.txns).map(|j| self.txn(c, j)).collect(),
                bug: self.bug,
            }));
        }
        let inner = ActorModel::new(self, TwoPcHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_out(record_out);
        TwoPcModel { inner }
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TwoPcHistory {
    /// Every (transaction, shard) whose Prepared vote was sent.
    pub voted_yes: BTreeSet<(TxnId, Id)>,
    /// Shard crashes so far.
    pub crashes: u8,
    /// Every (transaction, shard) where the shard restarted while the transaction was prepared.
    pub restarted_prepared: BTreeSet<(TxnId, Id)>,
}

pub type TwoPcModelState = ActorModelState<TwoPcActor, TwoPcHistory>;
pub type TwoPcAction = ActorModelAction<TwoPcMsg, (), ()>;

fn record_out(_: &TwoPcCfg, h: &TwoPcHistory, env: Envelope<&TwoPcMsg>) -> Option<TwoPcHistory> {
    let TwoPcMsg::Prepared { txn } = env.msg else {
        return None;
    };
    let mut h = h.clone();
    h.voted_yes.insert((*txn, env.src));
    Some(h)
}

/// The 2PL + 2PC model.
pub struct TwoPcModel {
    pub inner: ActorModel<TwoPcActor, TwoPcCfg, TwoPcHistory>,
}

impl TwoPcModel {
    pub fn cfg(&self) -> &TwoPcCfg {
        &self.inner.cfg
    }
}

/// The state of shard `i`.
pub fn shard(s: &TwoPcModelState, i: usize) -> &ShardState {
    match &*s.actor_states[i] {
        TwoPcState::Shard(shard) => shard,
        TwoPcState::Client(_) => panic!("actor {i} is a client"),
    }
}

/// The state of client `c`.
pub fn client(s: &TwoPcModelState, c: usize) -> &ClientState {
    match &*s.actor_states[SHARDS + c] {
        TwoPcState::Client(client) => client,
        TwoPcState::Shard(_) => panic!("actor {} is a shard", SHARDS + c),
    }
}

/// The coordinator's decision on `txn`, if made.
pub fn decision(cfg: &TwoPcCfg, s: &TwoPcModelState, txn: TxnId) -> Option<Decision> {
    let (c, j) = cfg.owner(txn);
    client(s, c).outcomes.get(j).copied()
}

/// Each shard's outcome for `txn` (`None`: undecided there, or never heard of).
fn outcomes(s: &TwoPcModelState, txn: TxnId) -> impl Iterator<Item = Option<Decision>> + '_ {
    (0..SHARDS).map(move |i| shard(s, i).txns.get(&txn).and_then(|p| p.state.decision()))
}

/// The history of the decided transactions for the serializability checker: each one's reads,
/// with the versions they saw, then its writes, with the versions they installed, as the
/// shards recorded them. A committed transaction whose Commit has not reached a shard yet shows
/// only what it did elsewhere: fewer edges, never a false one (a shard installs in order).
pub fn history(cfg: &TwoPcCfg, s: &TwoPcModelState) -> Vec<Txn<Key>> {
    let mut txns = Vec::new();
    for id in cfg.txn_ids() {
        let Some(d) = decision(cfg, s, id) else {
            continue;
        };
        let records: Vec<_> = (0..SHARDS)
            .filter_map(|i| shard(s, i).txns.get(&id))
            .collect();
        let mut ops: Vec<Op<Key>> = Vec::new();
        for p in &records {
            ops.extend(p.reads.iter().map(|(key, version)| Op::Read {
                key: *key,
                version: *version,
            }));
        }
        for p in &records {
            ops.extend(p.writes.iter().filter_map(|(key, installed)| {
                installed.map(|version| Op::Write { key: *key, version })
            }));
        }
        txns.push(Txn {
            id,
            ops,
            committed: d == Decision::Commit,
            start: None,
            end: None,
        });
    }
    txns
}

/// Property: atomicity, Gray & Lamport's `TCConsistent` per transaction: no transaction is
/// committed at one shard and aborted at another.
fn atomicity(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    m.cfg().txn_ids().all(|t| agreement(outcomes(s, t)))
}

/// Property: the committed transactions are serializable (Adya's PL-3, checked on the direct
/// serialization graph).
fn serializable(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    let h = history(m.cfg(), s);
    // One committed transaction alone is always serializable (no aborted or intermediate
    // reads are possible: writes are installed only at commit).
    h.iter().filter(|t| t.committed).count() < 2 || check_serializable(&h).is_ok()
}

/// Property: a participant that voted Prepared no longer decides alone (§9.6.3; Gray & Lamport
/// §3): it stays prepared until it learns the coordinator's decision, and then follows it.
fn prepared_waits(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    s.history.voted_yes.iter().all(|(txn, at)| {
        // A shard that lost its record of a yes vote breaks the promise too.
        shard(s, usize::from(*at)).txns.get(txn).is_some_and(|p| {
            p.state == RmState::Prepared
                || p.state.decision().is_some() && p.state.decision() == decision(m.cfg(), s, *txn)
        })
    })
}

/// Sometimes: a transaction committed at both shards.
fn commits_across_shards(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    m.cfg()
        .txn_ids()
        .any(|t| outcomes(s, t).all(|d| d == Some(Decision::Commit)))
}

/// Sometimes: a committed transaction read a version another committed transaction wrote.
fn reads_committed_write(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    history(m.cfg(), s).iter().any(|t| {
        t.committed
            && t.ops
                .iter()
                .any(|op| matches!(op, Op::Read { version, .. } if *version > 0))
    })
}

/// Sometimes: a shard restarted with a transaction prepared, then learned the decision.
fn recovered_prepared_decided(_: &TwoPcModel, s: &TwoPcModelState) -> bool {
    s.history.restarted_prepared.iter().any(|(txn, at)| {
        shard(s, usize::from(*at))
            .txns
            .get(txn)
            .is_some_and(|p| p.state.decision().is_some())
    })
}

/// Eventually: every client has decided all its transactions and no shard holds one working or
/// prepared (strict 2PL with no-wait cannot deadlock; over a network that loses nothing the
/// decision reaches every prepared participant).
fn all_ended(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    (0..m.cfg().clients).all(|c| client(s, c).phase == Phase::Done)
        && (0..SHARDS).all(|i| {
            shard(s, i)
                .txns
                .values()
                .all(|p| p.state.decision().is_some())
        })
}

impl Model for TwoPcModel {
    type State = TwoPcModelState;
    type Action = TwoPcAction;

    fn init_states(&self) -> Vec<TwoPcModelState> {
        self.inner.init_states()
    }

    fn actions(&self, state: &TwoPcModelState, actions: &mut Vec<TwoPcAction>) {
        self.inner.actions(state, actions);
        if usize::from(state.history.crashes) < self.cfg().crashes {
            actions.extend(
                (0..SHARDS)
                    .filter(|i| shard(state, *i).has_volatile())
                    .map(|i| ActorModelAction::Crash(Id::from(i))),
            );
        }
    }

    fn next_state(&self, last: &TwoPcModelState, action: TwoPcAction) -> Option<TwoPcModelState> {
        match action {
            // A crash restarts the shard from its storage (see `TwoPcCfg::crashes`).
            ActorModelAction::Crash(id) => {
                let down = self.inner.next_state(last, ActorModelAction::Crash(id))?;
                let mut next = self
                    .inner
                    .next_state(&down, ActorModelAction::Recover(id))?;
                let h = &mut next.history;
                h.crashes += 1;
                for (txn, p) in &shard(last, usize::from(id)).txns {
                    if p.state == RmState::Prepared {
                        h.restarted_prepared.insert((*txn, id));
                    }
                }
                Some(next)
            }
            action => self.inner.next_state(last, action),
        }
    }

    fn format_action(&self, action: &TwoPcAction) -> String {
        self.inner.format_action(action)
    }

    fn format_step(&self, last: &TwoPcModelState, action: TwoPcAction) -> Option<String> {
        self.inner.format_step(last, action)
    }

    fn as_svg(&self, path: Path<TwoPcModelState, TwoPcAction>) -> Option<String> {
        self.inner.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("atomicity", atomicity),
            Property::always("serializability", serializable),
            Property::always(
                "a prepared participant waits for the decision",
                prepared_waits,
            ),
            Property::sometimes(
                "a transaction commits across two shards",
                commits_across_shards,
            ),
            Property::sometimes("a transaction aborts", |m: &TwoPcModel, s| {
                m.cfg()
                    .txn_ids()
                    .any(|t| decision(m.cfg(), s, t) == Some(Decision::Abort))
            }),
            Property::sometimes(
                "a committed transaction reads another's write",
                reads_committed_write,
            ),
            Property::sometimes(
                "a participant restarts prepared, then learns the decision",
                recovered_prepared_decided,
            ),
            Property::eventually("every transaction ends everywhere", all_ended),
        ]
    }
}
