//! The checked model: two shards and the clients in one `ActorModel`, in the workbench's
//! [`Harness`]: a shard's crash is a restart in one step, and history variables record what the
//! properties need beyond the actors' states (who voted yes, who restarted while prepared, which
//! timeouts fired, which decisions were lost).

use std::collections::{BTreeMap, BTreeSet};

use properties::commitment::{agreement, Decision};
use properties::serializability::{check_serializable, Op, Txn, TxnId};
use stateright::actor::{model_timeout, ActorModel, ActorModelAction, Envelope, Id};
use stateright::Property;

use super::actor::{
    ClientCfg, ClientState, Key, Phase, ShardCfg, ShardState, TwoPcActor, TwoPcBug, TwoPcMsg,
    TwoPcState, TwoPcTimer, TxnOp, TxnSpec,
};
use crate::harness::{HAction, HState, Harness, Harnessed, NetworkKind};
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
    /// Ordered (per-pair FIFO, as over one TCP connection), unordered, or lossy (unordered, and
    /// any message may be lost: a killed or partitioned shard, a dropped connection).
    pub network: NetworkKind,
    /// Timeouts in all (coordinator and participant timers firing). 0: the actors arm no timers
    /// at all. A timer may fire at any moment, before a reply could have come back too.
    pub timeouts: usize,
    pub bug: Option<TwoPcBug>,
}

impl Default for TwoPcCfg {
    fn default() -> Self {
        TwoPcCfg {
            clients: 3,
            txns: 1,
            crashes: 2,
            network: NetworkKind::Ordered,
            timeouts: 0,
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

    /// The client of transaction `id`.
    fn owner(&self, id: TxnId) -> usize {
        (id as usize - 1) / self.txns
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
        let timeout = (self.timeouts > 0).then(model_timeout);
        let mut actors: Vec<TwoPcActor> = KEYS
            .iter()
            .map(|k| {
                TwoPcActor::Shard(ShardCfg {
                    keys: vec![*k],
                    timeout: timeout.clone(),
                    bug: self.bug,
                })
            })
            .collect();
        for c in 0..self.clients {
            actors.push(TwoPcActor::Client(ClientCfg {
                shard_of: shard_of.clone(),
                txns: (0..self.txns).map(|j| self.txn(c, j)).collect(),
                timeout: timeout.clone(),
                bug: self.bug,
            }));
        }
        let (network, lossy, crashes) =
            (self.network.network(), self.network.lossy(), self.crashes);
        let inner = ActorModel::new(self, TwoPcHistory::default())
            .actors(actors)
            .init_network(network)
            .lossy_network(lossy)
            .record_msg_out(record_out);
        Harness::new(inner, crashes)
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
    /// Timers fired so far.
    pub timeouts: u8,
    /// A coordinator timed out on an undecided transaction (and so aborted it).
    pub coordinator_timed_out: bool,
    /// Every (transaction, shard) where the coordinator's decision to the prepared shard was
    /// lost. The coordinator sends its decision once: the shard can learn it only by inquiry.
    pub lost_decision: BTreeSet<(TxnId, Id)>,
}

pub type TwoPcModelState = HState<TwoPc>;
pub type TwoPcAction = HAction<TwoPc>;

fn record_out(_: &TwoPcCfg, h: &TwoPcHistory, env: Envelope<&TwoPcMsg>) -> Option<TwoPcHistory> {
    let TwoPcMsg::Prepared { txn } = env.msg else {
        return None;
    };
    if h.voted_yes.contains(&(*txn, env.src)) {
        return None;
    }
    let mut h = h.clone();
    h.voted_yes.insert((*txn, env.src));
    Some(h)
}

/// The 2PL + 2PC model.
pub type TwoPcModel = Harness<TwoPc>;

/// What the history variables need to know about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwoPcStep {
    Crash(Id),
    Timeout(Id, TwoPcTimer),
    /// A Commit or Abort to shard `shard` was lost.
    LostDecision {
        txn: TxnId,
        shard: Id,
    },
    Other,
}

/// The twopc model's part of the [`Harness`].
pub struct TwoPc;

impl Harnessed for TwoPc {
    type Actor = TwoPcActor;
    type Cfg = TwoPcCfg;
    type History = TwoPcHistory;
    type Step = TwoPcStep;

    fn step_of(action: &TwoPcAction) -> TwoPcStep {
        match action {
            ActorModelAction::Crash(id) => TwoPcStep::Crash(*id),
            ActorModelAction::Timeout(id, timer) => TwoPcStep::Timeout(*id, *timer),
            ActorModelAction::Drop(env) if usize::from(env.dst) < SHARDS => match env.msg {
                TwoPcMsg::Commit { txn } | TwoPcMsg::Abort { txn } => TwoPcStep::LostDecision {
                    txn,
                    shard: env.dst,
                },
                _ => TwoPcStep::Other,
            },
            _ => TwoPcStep::Other,
        }
    }

    fn crashes(h: &TwoPcHistory) -> usize {
        usize::from(h.crashes)
    }

    fn count_crash(h: &mut TwoPcHistory) {
        h.crashes += 1;
    }

    /// Only shards crash, and only when the crash would lose something.
    fn may_crash(_: &TwoPcModel, s: &TwoPcModelState, i: usize) -> bool {
        i < SHARDS && shard(s, i).has_volatile()
    }

    /// Timers fire within the budget of timeouts.
    fn allow(m: &TwoPcModel, s: &TwoPcModelState, a: &TwoPcAction) -> bool {
        !matches!(a, ActorModelAction::Timeout(..))
            || usize::from(s.history.timeouts) < m.cfg().timeouts
    }

    fn record(
        _: &TwoPcModel,
        prev: Option<(&TwoPcModelState, TwoPcStep)>,
        next: &mut TwoPcModelState,
    ) {
        let Some((last, step)) = prev else {
            return;
        };
        match step {
            TwoPcStep::Crash(id) => {
                for (txn, p) in &shard(last, usize::from(id)).txns {
                    if p.state == RmState::Prepared {
                        next.history.restarted_prepared.insert((*txn, id));
                    }
                }
            }
            TwoPcStep::Timeout(id, timer) => {
                next.history.timeouts += 1;
                if timer == TwoPcTimer::Coordinator
                    && usize::from(id) >= SHARDS
                    && client(last, usize::from(id) - SHARDS).current.is_some()
                {
                    next.history.coordinator_timed_out = true;
                }
            }
            TwoPcStep::LostDecision { txn, shard: at } => {
                let prepared = shard(last, usize::from(at))
                    .txns
                    .get(&txn)
                    .is_some_and(|p| p.state == RmState::Prepared);
                if prepared {
                    next.history.lost_decision.insert((txn, at));
                }
            }
            TwoPcStep::Other => {}
        }
    }

    fn properties(m: &TwoPcModel) -> Vec<Property<TwoPcModel>> {
        let cfg = m.cfg();
        let mut props = vec![
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
        ];
        if cfg.timeouts > 0 {
            props.push(Property::sometimes(
                "a coordinator times out and aborts",
                |_, s: &TwoPcModelState| s.history.coordinator_timed_out,
            ));
        }
        if cfg.timeouts > 0 && cfg.network == NetworkKind::Lossy {
            props.push(Property::sometimes(
                "a prepared participant learns the decision by inquiry",
                learned_by_inquiry,
            ));
        }
        match (cfg.network, cfg.timeouts) {
            (NetworkKind::Lossy, 0) => {}
            (NetworkKind::Ordered, _) | (NetworkKind::Unordered, 0) => props.push(
                Property::eventually("every transaction ends everywhere", all_ended),
            ),
            (NetworkKind::Unordered | NetworkKind::Lossy, _) => props.push(Property::eventually(
                "every transaction ends everywhere, unless the timeouts run out",
                all_ended_or_out_of_timeouts,
            )),
        }
        props
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
    client(s, cfg.owner(txn)).decided.get(&txn).copied()
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

/// The actors' names: `Shard 0`, `Shard 1`, then the clients (each its transactions'
/// coordinator) `C2`...
pub fn actor_names(m: &TwoPcModel) -> Vec<String> {
    (0..SHARDS + m.cfg().clients)
        .map(|i| {
            if i < SHARDS {
                format!("Shard {i}")
            } else {
                format!("C{i}")
            }
        })
        .collect()
}

/// `s` in the book's terms: per shard its committed versions and each transaction's record
/// there (Gray & Lamport's `rmState`, what it read and wrote), per client what it coordinates,
/// and the messages in flight.
pub fn view(m: &TwoPcModel, s: &TwoPcModelState) -> String {
    let names = actor_names(m);
    let name = |i: usize| crate::catalog::name_of(&names, i);
    let mut lines = Vec::new();
    for (i, actor) in s.actor_states.iter().enumerate() {
        match &**actor {
            TwoPcState::Shard(sh) => {
                let versions: Vec<String> = sh
                    .versions
                    .iter()
                    .map(|(k, v)| format!("{k}@v{v}"))
                    .collect();
                let mut line = format!("{} [{}]", name(i), versions.join(" "));
                for (t, p) in &sh.txns {
                    let reads: Vec<String> =
                        p.reads.iter().map(|(k, v)| format!("r {k}@v{v}")).collect();
                    let writes: Vec<String> = p
                        .writes
                        .iter()
                        .map(|(k, v)| match v {
                            Some(v) => format!("w {k}→v{v}"),
                            None => format!("w {k}"),
                        })
                        .collect();
                    let ops = reads
                        .into_iter()
                        .chain(writes)
                        .collect::<Vec<_>>()
                        .join(", ");
                    line.push_str(&format!("; T{t} {:?} ({ops})", p.state));
                }
                lines.push(line);
            }
            TwoPcState::Client(c) => {
                let running = match &c.current {
                    Some(cur) => match &cur.phase {
                        Phase::Executing { op } => format!("T{} executing op {op}", cur.txn.id),
                        Phase::Preparing { prepared } => format!(
                            "T{} preparing (prepared: {})",
                            cur.txn.id,
                            prepared
                                .iter()
                                .map(|p| name(usize::from(*p)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    },
                    None => "idle".to_string(),
                };
                let decided: Vec<String> = c
                    .decided
                    .iter()
                    .map(|(t, d)| format!("T{t} {d:?}"))
                    .collect();
                lines.push(format!(
                    "{} {running}; decided: {}",
                    name(i),
                    if decided.is_empty() {
                        "none".to_string()
                    } else {
                        decided.join(", ")
                    }
                ));
            }
        }
    }
    lines.push(crate::catalog::in_flight_line(s, &names, str::to_string));
    lines.join("\n")
}

/// The evidence of a violated property at `s`, for people: the serializability checker's
/// anomaly and its dependency cycle.
pub fn explain(m: &TwoPcModel, s: &TwoPcModelState, property: &str) -> Option<String> {
    match property {
        "serializability" => check_serializable(&history(m.cfg(), s))
            .err()
            .map(|v| v.to_string()),
        _ => None,
    }
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

/// Sometimes: the decision to a prepared shard was lost, and the shard learned it all the same:
/// the coordinator sends its decision once, so the shard learned it by inquiry.
fn learned_by_inquiry(_: &TwoPcModel, s: &TwoPcModelState) -> bool {
    s.history.lost_decision.iter().any(|(txn, at)| {
        shard(s, usize::from(*at))
            .txns
            .get(txn)
            .is_some_and(|p| p.state.decision().is_some())
    })
}

/// Eventually, over a network that reorders or loses messages, with a budget of timeouts: every
/// transaction ends everywhere, or the budget is spent. No run stops with a transaction open
/// while a timer could still fire: whatever was lost or overtaken, the transaction has a timer
/// armed somewhere that moves it on. (With unfair loss nothing more can hold: every inquiry may
/// be lost, forever.)
fn all_ended_or_out_of_timeouts(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    all_ended(m, s) || usize::from(s.history.timeouts) >= m.cfg().timeouts
}

/// The leads-to property of two-phase commit (§9.6.3), for the configurations where it holds
/// without a budget escape: from any state where some participant is prepared and has not
/// learned the decision, a state follows where no participant is (every prepared participant
/// learned its decision; a participant cannot leave PREPARED on its own). Decided under weak
/// fairness: the coordinator that does not crash delivers its decision.
pub fn leads_to(m: &TwoPcModel) -> Vec<crate::catalog::LeadsTo<TwoPcModel>> {
    let cfg = m.cfg();
    let (name, to): (&'static str, fn(&TwoPcModel, &TwoPcModelState) -> bool) =
        match (cfg.network, cfg.timeouts) {
            (NetworkKind::Lossy, 0) => return Vec::new(),
            (NetworkKind::Ordered, _) | (NetworkKind::Unordered, 0) => {
                (PREPARED_LEARNS, |_, s| !some_prepared_undecided(s))
            }
            (NetworkKind::Unordered | NetworkKind::Lossy, _) => (
                PREPARED_LEARNS_UNLESS,
                |m: &TwoPcModel, s: &TwoPcModelState| {
                    !some_prepared_undecided(s)
                        || usize::from(s.history.timeouts) >= m.cfg().timeouts
                },
            ),
        };
    vec![crate::catalog::LeadsTo {
        name,
        from: |_, s| some_prepared_undecided(s),
        to,
    }]
}

/// The leads-to property's name.
pub const PREPARED_LEARNS: &str = "a prepared participant learns the decision";
/// Its name where the timeouts are a budget.
pub const PREPARED_LEARNS_UNLESS: &str =
    "a prepared participant learns the decision, unless the timeouts run out";

/// Whether some shard holds a transaction prepared and undecided.
fn some_prepared_undecided(s: &TwoPcModelState) -> bool {
    (0..SHARDS).any(|i| {
        shard(s, i)
            .txns
            .values()
            .any(|p| p.state == RmState::Prepared)
    })
}

/// Eventually: every client has decided all its transactions and no shard holds one working or
/// prepared (strict 2PL with no-wait cannot deadlock; over a network that loses nothing the
/// decision reaches every prepared participant).
fn all_ended(m: &TwoPcModel, s: &TwoPcModelState) -> bool {
    (0..m.cfg().clients).all(|c| client(s, c).is_idle())
        && (0..SHARDS).all(|i| {
            shard(s, i)
                .txns
                .values()
                .all(|p| p.state.decision().is_some())
        })
}
