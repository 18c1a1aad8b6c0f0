//! The checked model: the master, the chain nodes and the clients in one `ActorModel` over
//! ordered links, in the workbench's [`Harness`] without its crash-as-restart (a chain node's
//! failure is fail-stop: its `Fail` timer, within a budget), and with history variables for the
//! clients' operations and the examples.

use std::collections::{BTreeMap, BTreeSet};

use stateright::actor::{model_timeout, ActorModel, ActorModelAction, Envelope, Id, Network};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::Property;

use super::actor::{
    ChainActor, ChainBug, ChainMsg, ChainState, ChainTimer, ClientCfg, ClientState, MasterCfg,
    MasterState, Mode, NodeCfg, NodeState, ReadAt, SeqNo,
};
use crate::client::{ClientMsg, RequestId};
use crate::harness::{HAction, HState, Harness, Harnessed};
use crate::raft::kv::{KvData, KvOp, KvRet};

/// The master runs at id 0, the nodes at `1..=nodes` (head first), the clients after them.
pub const MASTER: usize = 0;

/// The one key the clients use.
pub const KEY: &str = "x";

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChainCfg {
    pub mode: Mode,
    /// Chain nodes, 1 or more.
    pub nodes: usize,
    /// Clients, 1 to 3, with the operations of [`ChainCfg::ops`].
    pub clients: usize,
    /// Node failures in all (fail-stop); at most `nodes - 1` take effect.
    pub failures: usize,
    /// Failed nodes that come back empty and join at the tail (CR §3, extending a chain).
    pub rejoins: usize,
    pub bug: Option<ChainBug>,
}

impl Default for ChainCfg {
    fn default() -> Self {
        ChainCfg {
            mode: Mode::Cr,
            nodes: 3,
            clients: 2,
            failures: 1,
            rejoins: 0,
            bug: None,
        }
    }
}

impl ChainCfg {
    /// Client `c`'s operations. Client 0 writes `a` and reads; client 1 reads twice, at the head
    /// and then further down when reads are spread (the pair that shows a dirty read); client 2
    /// writes `c` and reads.
    pub fn ops(c: usize) -> Vec<KvOp> {
        let put = |v: &str| KvOp::Put(KEY.into(), v.into());
        let get = || KvOp::Get(KEY.into());
        match c {
            0 => vec![put("a"), get()],
            1 => vec![get(), get()],
            _ => vec![put("c"), get()],
        }
    }

    pub fn node_ids(&self) -> Vec<Id> {
        (1..=self.nodes).map(Id::from).collect()
    }

    pub fn client_ids(&self) -> Vec<Id> {
        (0..self.clients)
            .map(|c| Id::from(1 + self.nodes + c))
            .collect()
    }

    /// The failures that can take effect: the master never removes the last node.
    pub fn max_failures(&self) -> usize {
        self.failures.min(self.nodes - 1)
    }

    pub fn into_model(self) -> ChainModel {
        let chain = self.node_ids();
        let mut actors = vec![ChainActor::Master(MasterCfg {
            chain: chain.clone(),
            clients: self.client_ids(),
            probe: None,
            persist: false,
        })];
        for _ in &chain {
            actors.push(ChainActor::Node(NodeCfg {
                master: Id::from(MASTER),
                chain: chain.clone(),
                mode: self.mode,
                fail_after: (self.max_failures() > 0).then(model_timeout),
                persist: false,
                rejoin: self.rejoins > 0,
                resend: false,
                lease: None,
                bug: self.bug,
            }));
        }
        let spread = self.mode == Mode::Craq || self.bug == Some(ChainBug::ReadAnyReplica);
        for c in 0..self.clients {
            actors.push(ChainActor::Client(ClientCfg {
                chain: chain.clone(),
                reads: if spread { ReadAt::Spread } else { ReadAt::Tail },
                ops: Self::ops(c),
                driver: None,
                master: Id::from(MASTER),
                retry: None,
            }));
        }
        let inner = ActorModel::new(self, ChainHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_out(record_out)
            .record_msg_in(record_in);
        Harness::new(inner, 0)
    }
}

/// History variables.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChainHistory {
    /// The clients' operations, for the linearizability tester.
    pub lin: LinearizabilityTester<Id, KvData>,
    /// Each client's latest invoked request id, whether it has returned, and whether it is a
    /// write.
    pub invoked: BTreeMap<Id, (RequestId, bool, bool)>,
    /// Every write acknowledged to its client: (client, request id).
    pub acked_writes: BTreeSet<(Id, RequestId)>,
    /// The highest update each node has sent; sending one at or below it is a resend.
    pub forwarded: BTreeMap<Id, SeqNo>,
    /// A node resent an update (§3: to a new successor).
    pub resent: bool,
    /// A CRAQ version query was sent.
    pub version_query: bool,
    /// A node that is not the tail answered a read without asking the tail.
    pub local_read: bool,
    /// Node failures and rejoins so far.
    pub failed: usize,
    pub rejoined: usize,
    /// A node added at the tail got the old tail's history (CR §3).
    pub handed_over: bool,
}

impl Default for ChainHistory {
    fn default() -> Self {
        ChainHistory {
            lin: LinearizabilityTester::new(KvData::default()),
            invoked: BTreeMap::new(),
            acked_writes: BTreeSet::new(),
            forwarded: BTreeMap::new(),
            resent: false,
            version_query: false,
            local_read: false,
            failed: 0,
            rejoined: 0,
            handed_over: false,
        }
    }
}

pub type ChainModelState = HState<Chain>;
pub type ChainAction = HAction<Chain>;

/// The chain replication / CRAQ model.
pub type ChainModel = Harness<Chain>;

/// A client's request is the invocation of its operation (a resend is not); updates and
/// version queries feed the examples.
fn record_out(_: &ChainCfg, h: &ChainHistory, env: Envelope<&ChainMsg>) -> Option<ChainHistory> {
    match env.msg {
        ChainMsg::Client(ClientMsg::Request { client, seq, op }) => {
            if env.src != *client || h.invoked.get(client).is_some_and(|(s, ..)| s >= seq) {
                return None;
            }
            let mut h = h.clone();
            // The tester refuses a second invocation while one is in flight; clients never do.
            let _ = h.lin.on_invoke(*client, op.clone());
            let write = !matches!(op, KvOp::Get(_));
            h.invoked.insert(*client, (*seq, false, write));
            Some(h)
        }
        ChainMsg::Update { update: u, .. } => {
            let before = h.forwarded.get(&env.src).copied().unwrap_or(0);
            let mut h = h.clone();
            if u.seq_no <= before {
                h.resent = true;
            } else {
                h.forwarded.insert(env.src, u.seq_no);
            }
            Some(h)
        }
        ChainMsg::VersionQuery { .. } if !h.version_query => {
            let mut h = h.clone();
            h.version_query = true;
            Some(h)
        }
        _ => None,
    }
}

/// The first reply to the invocation in flight is its return.
fn record_in(_: &ChainCfg, h: &ChainHistory, env: Envelope<&ChainMsg>) -> Option<ChainHistory> {
    if matches!(env.msg, ChainMsg::Handover { .. }) && !h.handed_over {
        let mut h = h.clone();
        h.handed_over = true;
        return Some(h);
    }
    let ChainMsg::Client(ClientMsg::Reply { seq, ret }) = env.msg else {
        return None;
    };
    let Some((s, false, write)) = h.invoked.get(&env.dst).copied() else {
        return None;
    };
    if s != *seq {
        return None;
    }
    let mut h = h.clone();
    let _ = h.lin.on_return(env.dst, ret.clone());
    h.invoked.insert(env.dst, (s, true, write));
    if write && *ret == KvRet::Ok {
        h.acked_writes.insert((env.dst, s));
    }
    Some(h)
}

/// What the history variables need to know about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A read request delivered to actor `Id`.
    Read(Id),
    /// A node fails, or comes back.
    Fail,
    Rejoin,
    Other,
}

/// The chain model's part of the [`Harness`].
pub struct Chain;

impl Harnessed for Chain {
    type Actor = ChainActor;
    type Cfg = ChainCfg;
    type History = ChainHistory;
    type Step = Step;

    fn step_of(action: &ChainAction) -> Step {
        match action {
            ActorModelAction::Deliver {
                dst,
                msg:
                    ChainMsg::Client(ClientMsg::Request {
                        op: KvOp::Get(_), ..
                    }),
                ..
            } => Step::Read(*dst),
            ActorModelAction::Timeout(_, ChainTimer::Fail) => Step::Fail,
            ActorModelAction::Timeout(_, ChainTimer::Rejoin) => Step::Rejoin,
            _ => Step::Other,
        }
    }

    /// Failures are fail-stop, not the harness's restarts.
    fn crashes(_: &ChainHistory) -> usize {
        0
    }

    fn count_crash(_: &mut ChainHistory) {}

    fn may_crash(_: &ChainModel, _: &ChainModelState, _: usize) -> bool {
        false
    }

    /// A node fails, and comes back, within the budgets. Messages to a failed node are lost:
    /// one that may come back takes them in (and drops them) before it does; without rejoins
    /// they are never delivered (they would change nothing).
    fn allow(m: &ChainModel, s: &ChainModelState, a: &ChainAction) -> bool {
        match a {
            ActorModelAction::Timeout(_, ChainTimer::Fail) => {
                s.history.failed < m.cfg().max_failures()
            }
            ActorModelAction::Timeout(id, ChainTimer::Rejoin) => {
                s.history.rejoined < m.cfg().rejoins
                    && s.network.iter_deliverable().all(|e| e.dst != *id)
            }
            ActorModelAction::Deliver { dst, .. } => {
                m.cfg().rejoins > 0
                    || !matches!(*s.actor_states[usize::from(*dst)], ChainState::Failed)
            }
            _ => true,
        }
    }

    fn record(_: &ChainModel, prev: Option<(&ChainModelState, Step)>, next: &mut ChainModelState) {
        match prev {
            Some((_, Step::Fail)) => next.history.failed += 1,
            Some((_, Step::Rejoin)) => next.history.rejoined += 1,
            _ => {}
        }
        let Some((last, Step::Read(at))) = prev else {
            return;
        };
        if next.history.local_read || usize::from(at) == MASTER {
            return;
        }
        let (ChainState::Node(before), ChainState::Node(after)) = (
            &*last.actor_states[usize::from(at)],
            &*next.actor_states[usize::from(at)],
        ) else {
            return;
        };
        let asked = after.queries.len() > before.queries.len()
            || after.deferred.len() > before.deferred.len();
        if !asked && tail(last).0 != at {
            next.history.local_read = true;
        }
    }

    fn properties(m: &ChainModel) -> Vec<Property<ChainModel>> {
        let cfg = m.cfg();
        let mut props = vec![
            Property::always("linearizable client history", |_, s: &ChainModelState| {
                s.history.lin.serialized_history().is_some()
            }),
            Property::always("Update Propagation Invariant (CR §3)", update_propagation),
            Property::always("Inprocess Requests Invariant (CR §3)", inprocess_requests),
            Property::always(
                "acknowledged writes survive reconfiguration",
                acknowledged_writes_survive,
            ),
        ];
        if cfg.mode == Mode::Craq {
            props.push(Property::always(
                "no clean version is newer than the tail's (CRAQ §2.3)",
                clean_not_newer_than_tail,
            ));
        }
        props.push(Property::sometimes(
            "a write is acknowledged",
            |_, s: &ChainModelState| !s.history.acked_writes.is_empty(),
        ));
        if cfg.nodes >= 3 && cfg.max_failures() >= 1 {
            props.push(Property::sometimes(
                "a middle node fails and its predecessor resends (CR §3)",
                |_, s: &ChainModelState| s.history.resent,
            ));
        }
        if cfg.rejoins > 0 && cfg.max_failures() > 0 {
            props.push(Property::sometimes(
                "a node added at the tail gets the old tail's history (CR §3)",
                |_, s: &ChainModelState| s.history.handed_over,
            ));
        }
        if cfg.mode == Mode::Craq {
            props.push(Property::sometimes(
                "a non-tail node answers a read itself (CRAQ §2.3)",
                |_, s: &ChainModelState| s.history.local_read,
            ));
            props.push(Property::sometimes(
                "a node asks the tail for the committed version (CRAQ §2.3)",
                |_, s: &ChainModelState| s.history.version_query,
            ));
        }
        props.push(Property::eventually(
            "every operation returns, every version is clean and every node that came back serves",
            all_done,
        ));
        props
    }
}

pub fn master(s: &ChainModelState) -> &MasterState {
    match &*s.actor_states[MASTER] {
        ChainState::Master(m) => m,
        _ => panic!("actor {MASTER} is the master"),
    }
}

/// The live nodes in the master's chain order, head first: a failed node the master has not
/// removed yet is left out, and so is a node added at the tail until it has the old tail's
/// history (CR §3: the old tail is the tail until then).
pub fn live_chain(s: &ChainModelState) -> Vec<(Id, &NodeState)> {
    master(s)
        .chain
        .iter()
        .filter_map(|id| match &*s.actor_states[usize::from(*id)] {
            ChainState::Node(n) if n.serving(*id) => Some((*id, n)),
            _ => None,
        })
        .collect()
}

/// The tail: the last live node.
pub fn tail(s: &ChainModelState) -> (Id, &NodeState) {
    *live_chain(s)
        .last()
        .expect("fewer failures than nodes: a node is live")
}

pub fn client(s: &ChainModelState, id: Id) -> &ClientState {
    match &*s.actor_states[usize::from(id)] {
        ChainState::Client(c) => c,
        _ => panic!("actor {id:?} is a client"),
    }
}

/// CR §3, Update Propagation Invariant: for nodes `i <= j` (`i` nearer the head),
/// `Hist_j ⪯ Hist_i`: the history of a node nearer the tail is a prefix of one nearer the head.
fn update_propagation(_: &ChainModel, s: &ChainModelState) -> bool {
    let chain = live_chain(s);
    chain.iter().enumerate().all(|(i, (_, a))| {
        chain[i + 1..]
            .iter()
            .all(|(_, b)| a.hist.starts_with(&b.hist))
    })
}

/// CR §3, Inprocess Requests Invariant: for a node `i` and its successor `j`,
/// `Hist_i = Hist_j ⊕ Sent_i`: what `i` has is what `j` has and what `i` has sent but the
/// tail has not acknowledged. With `Sent_i = Hist_i[acked_i..]` and `Hist_j ⪯ Hist_i` this says
/// `Hist_i[..acked_i] ⪯ Hist_j`: nothing leaves `Sent_i` before `j` has it.
fn inprocess_requests(_: &ChainModel, s: &ChainModelState) -> bool {
    live_chain(s).windows(2).all(|w| {
        let ((_, i), (_, j)) = (&w[0], &w[1]);
        let sent = i.sent();
        let merged = j
            .hist
            .iter()
            .chain(sent.iter().filter(|u| !j.hist.contains(u)));
        merged.eq(i.hist.iter())
    })
}

/// Every write acknowledged to a client is in the tail's history, whatever nodes have failed.
fn acknowledged_writes_survive(_: &ChainModel, s: &ChainModelState) -> bool {
    let (_, t) = tail(s);
    s.history
        .acked_writes
        .iter()
        .all(|(c, seq)| t.hist.iter().any(|u| u.client == *c && u.req == *seq))
}

/// CRAQ §2.3: no node's clean version of a key is newer than the tail's committed one.
fn clean_not_newer_than_tail(_: &ChainModel, s: &ChainModelState) -> bool {
    let (_, t) = tail(s);
    let committed = t.newest(KEY);
    live_chain(s).iter().all(|(_, n)| n.clean(KEY) <= committed)
}

/// Eventually every client has run all its operations, every live node's versions are clean
/// (every `Sent` set is empty), and every node that came back is serving again.
fn all_done(m: &ChainModel, s: &ChainModelState) -> bool {
    m.cfg().client_ids().iter().all(|c| {
        let c = client(s, *c);
        c.op.is_none()
    }) && live_chain(s).iter().all(|(_, n)| n.sent().is_empty())
        && m.cfg()
            .node_ids()
            .iter()
            .all(|id| match &*s.actor_states[usize::from(*id)] {
                ChainState::Node(n) => n.serving(*id),
                _ => true,
            })
}

/// The actors' names: the master `M0`, the nodes `N1`.., the clients `C4`...
pub fn actor_names(m: &ChainModel) -> Vec<String> {
    let cfg = m.cfg();
    (0..1 + cfg.nodes + cfg.clients)
        .map(|i| match i {
            MASTER => format!("M{i}"),
            i if i <= cfg.nodes => format!("N{i}"),
            i => format!("C{i}"),
        })
        .collect()
}

/// `s` in the papers' terms: the master's chain, each node's `Hist` (update number and the
/// value it wrote) with how much is acknowledged (the rest is `Sent`), each client's request,
/// and the messages in flight.
pub fn view(m: &ChainModel, s: &ChainModelState) -> String {
    let names = actor_names(m);
    let name = |i: usize| crate::catalog::name_of(&names, i);
    let chain = |c: &[Id]| {
        c.iter()
            .map(|n| name(usize::from(*n)))
            .collect::<Vec<_>>()
            .join("→")
    };
    let mut lines = Vec::new();
    for (i, actor) in s.actor_states.iter().enumerate() {
        lines.push(match &**actor {
            ChainState::Master(ms) => format!(
                "{} chain {} (epoch {})",
                name(i),
                chain(&ms.chain),
                ms.epoch
            ),
            ChainState::Failed => format!("{} failed", name(i)),
            ChainState::Node(n) if n.chain.is_empty() => format!("{} joining", name(i)),
            ChainState::Node(n) => {
                let hist: Vec<String> = n
                    .hist
                    .iter()
                    .map(|u| format!("{}:{}={}", u.seq_no, u.key, u.value))
                    .collect();
                let mut line = format!(
                    "{} Hist [{}] acked {} (chain {}, epoch {})",
                    name(i),
                    hist.join(", "),
                    n.acked,
                    chain(&n.chain),
                    n.epoch
                );
                if n.catching_up.is_some() {
                    line.push_str(" catching up");
                }
                if !n.queries.is_empty() {
                    line.push_str(&format!(" {} version queries", n.queries.len()));
                }
                if !n.deferred.is_empty() {
                    line.push_str(&format!(" {} waiting", n.deferred.len()));
                }
                line
            }
            ChainState::Client(c) => match (&c.op, c.at) {
                (Some(o), Some(at)) => {
                    format!(
                        "{} {} (request {}) at {}",
                        name(i),
                        o.brief(),
                        c.seq,
                        name(usize::from(at))
                    )
                }
                (Some(o), None) => format!("{} {} (request {})", name(i), o.brief(), c.seq),
                (None, _) => format!("{} idle after request {}", name(i), c.seq),
            },
        });
    }
    lines.push(crate::catalog::in_flight_line(s, &names, str::to_string));
    lines.join("\n")
}
