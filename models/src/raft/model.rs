//! The checked model: servers and clients in one `ActorModel`, in the workbench's [`Harness`]
//! (a crash is a restart from storage in one step) to keep the history variables the paper's
//! properties are stated over (who led which term, which entries were committed), like the
//! history variables of the TLA+ specification of Raft.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use stateright::actor::{ActorModel, ActorModelAction, Envelope, Id, Network};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::Property;

use super::actor::{
    AdminCfg, ClientCfg, Heartbeats, RaftActor, RaftBug, RaftMsg, RaftState, RaftTimer, Reads,
    Role, ServerCfg, ServerState,
};
use super::kv::{KvData, KvOp, KvRet, Seq};
use super::log::{show_servers, EntryKind, Index, Term};
use crate::client::ClientMsg;
pub use crate::harness::NetworkKind;
use crate::harness::{HAction, HState, Harness, Harnessed};

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftCfg {
    pub servers: usize,
    pub clients: usize,
    /// Operations per client: client c's j-th operation is a Put of its own value "c.j" to key
    /// "x" when c + j is even, a Get of "x" otherwise.
    pub ops: usize,
    pub network: NetworkKind,
    /// Which followers the leader's heartbeat repeats AppendEntries to; `None`: those behind
    /// over a lossy network, none otherwise.
    pub heartbeats: Option<Heartbeats>,
    /// How many server crashes in all. A crash is a restart: the server loses its volatile
    /// state and starts again from its storage in one step. (A server that is down for a while
    /// is, to everyone else, a server that takes no steps for a while, which the interleavings
    /// already cover.) Clients do not crash.
    pub crashes: usize,
    /// Whether only leaders crash (else any server).
    pub crash_leaders_only: bool,
    /// How often a client may retry one operation after a timeout.
    pub client_retries: u8,
    /// Only the first `candidates` servers' election timers fire; the others only vote and
    /// follow.
    pub candidates: usize,
    /// How many times in all a follower may time out although it has heard from the leader of
    /// its term (a delayed or lost heartbeat, a partition). Followers that have not heard from a
    /// leader, and candidates, may always time out.
    pub spurious_timeouts: u8,
    /// Boundary: no server's term exceeds this.
    pub max_term: Term,
    /// Boundary: no server's log (snapshot included) is longer than this.
    pub max_log: Index,
    /// Boundary: at most this many messages in flight on any one channel.
    pub max_in_flight: usize,
    pub snapshot_every: u64,
    /// Items of the state machine per InstallSnapshot chunk (0: one chunk).
    pub snapshot_chunk: u64,
    /// How leaders answer Gets: ReadIndex, leases, or through the log.
    pub reads: Reads,
    /// Whether servers ignore RequestVote within the minimum election timeout of hearing from a
    /// leader (thesis §4.2.3); always with lease reads.
    pub guard: bool,
    /// The clock drift, in percent, that leaders allow for when they size their leases.
    pub drift_bound: u32,
    /// The most, in percent, that the clocks of the modelled world drift. The model has no
    /// clocks, only the order of timeouts, and this is what drift decides: while a leader holds
    /// the lease of a round that a follower received, the follower's minimum election timeout
    /// ends only after the lease if the leader's bound covers the drift (see
    /// [`ServerCfg::lease_duration`]), and may end at any time otherwise.
    pub clock_drift: u32,
    /// Whether new leaders append a no-op (§8).
    pub noop: bool,
    pub workload: Workload,
    /// The initial configuration: the first `members` servers (0: all). The others wait to be
    /// added.
    pub members: usize,
    /// Which configuration changes administrators ask for.
    pub changes: Changes,
    pub bug: Option<RaftBug>,
}

/// The configuration changes of a model run (thesis §4.1), each asked for by an administrator
/// actor of its own, to its own first server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Changes {
    None,
    /// Add the first server outside the initial configuration (asked of server 0).
    Add,
    /// Remove server 0 (asked of server 0: a leader removing itself).
    Remove,
    /// Two removals that two leaders of consecutive terms may start (the 2015 bug's scenario):
    /// server 0 is asked to remove the last server, server 1 the one before it.
    RemoveTwo,
}

/// What the model's clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Each client runs `ops` operations, Put and Get in turn ([`client_op`]).
    Alternate,
    /// The smallest history with a read that must see a write it did not overlap: client 0
    /// Gets twice (its second Get may start after the Put returned), client 1 Puts once; any
    /// further client alternates.
    ReadAfterWrite,
}

impl Default for RaftCfg {
    fn default() -> Self {
        RaftCfg {
            servers: 3,
            clients: 2,
            ops: 1,
            network: NetworkKind::Ordered,
            heartbeats: None,
            crashes: 1,
            crash_leaders_only: true,
            client_retries: 0,
            spurious_timeouts: 0,
            candidates: 2,
            max_term: 2,
            max_log: 2,
            max_in_flight: 3,
            snapshot_every: 1,
            snapshot_chunk: 0,
            reads: Reads::ReadIndex,
            guard: false,
            drift_bound: 10,
            clock_drift: 10,
            noop: true,
            workload: Workload::Alternate,
            members: 0,
            changes: Changes::None,
            bug: None,
        }
    }
}

/// The liveness property's name (a seeded bug breaks it).
pub const EVENTUALLY_ELECTED: &str = "with no crash or loss, a leader is elected";

/// Boundary: the most rounds of heartbeats for reads a leader starts in one term (each read
/// starts one).
pub const MAX_ROUND: u64 = 2;

/// The example of a read without the log.
pub const READ_INDEX_SERVED: &str =
    "a leader answers a Get without the log once a majority acknowledges a later heartbeat (ReadIndex)";

/// The example of a lease read (thesis §6.4.1).
pub const LEASE_READ_SERVED: &str =
    "a leader answers a Get under its lease, without a round of heartbeats";

/// The example of the guard against disruptive servers (thesis §4.2.3).
pub const VOTE_IGNORED: &str =
    "a server that heard from a leader within the minimum election timeout ignores a RequestVote";

/// The property a partial snapshot breaks.
pub const MACHINE_FOLLOWS_LOG: &str =
    "a server's state machine is the committed entries applied in order";

/// The example of a configuration change.
pub const CONFIG_COMMITTED: &str = "a configuration change commits";

/// The example of a leader removing itself (thesis §4.2.2).
pub const REMOVED_LEADER_STEPS_DOWN: &str =
    "a leader that removed itself steps down once the change commits";

/// The key the model's clients use.
pub const KEY: &str = "x";

/// Client `c`'s `j`-th operation.
pub fn client_op(c: usize, j: usize) -> KvOp {
    if (c + j) % 2 == 0 {
        KvOp::Put(KEY.into(), format!("{c}.{j}"))
    } else {
        KvOp::Get(KEY.into())
    }
}

/// The client that wrote a value "c.j".
fn writer(value: &str) -> Option<usize> {
    value.split('.').next()?.parse().ok()
}

/// An entry known to be committed: its term and command, and the term in which it was first
/// seen committed (the term of the leader that committed it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Committed {
    pub term: Term,
    pub kind: EntryKind,
    pub in_term: Term,
    /// The configurations of the server that counted it committed, before and after the step
    /// (a leader may append a configuration in the step that commits an entry, and count
    /// with either): a majority of one of them holds the entry.
    pub configs: Vec<Vec<Id>>,
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Every (term, server) that has been leader.
    pub leaders: BTreeSet<(Term, Id)>,
    /// Every index some server has counted as committed, with the first entry seen there.
    pub committed: BTreeMap<Index, Committed>,
    /// Some server counted a different entry as committed at an index already committed.
    pub conflicting_commit: bool,
    /// A leader deleted or overwrote an entry of its log within its term.
    pub leader_rewrote_log: bool,
    /// A server installed a snapshot it received from the leader.
    pub snapshot_installed: bool,
    /// How many times servers have crashed.
    pub crashes: u8,
    /// A leader was elected after a crash.
    pub leader_after_crash: bool,
    /// A message was lost.
    pub dropped: bool,
    /// Election timeouts of followers that knew their leader.
    pub spurious_timeouts: u8,
    /// A client's Get returned the value another client Put.
    pub read_other_put: bool,
    /// A leader answered a Get without the log, once a majority acknowledged a round of
    /// heartbeats sent after the Get arrived (ReadIndex).
    pub read_index_served: bool,
    /// A leader answered a Get under its lease.
    pub lease_read_served: bool,
    /// A server ignored a RequestVote under the guard of §4.2.3.
    pub vote_ignored: bool,
    /// A configuration entry was committed.
    pub config_committed: bool,
    /// A leader stepped down in its term once the configuration that removed it committed.
    pub removed_leader_stepped_down: bool,
}

/// The recorded history: the clients' operations for the linearizability tester, and the
/// history variables.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftHistory {
    pub lin: LinearizabilityTester<Id, KvData>,
    /// Each client's latest invoked serial number and whether it has returned.
    pub invoked: BTreeMap<Id, (Seq, bool)>,
    pub ghost: Ghost,
}

impl Default for RaftHistory {
    fn default() -> Self {
        RaftHistory {
            lin: LinearizabilityTester::new(KvData::default()),
            invoked: BTreeMap::new(),
            ghost: Ghost::default(),
        }
    }
}

pub type RaftModelState = HState<Raft>;
pub type RaftAction = HAction<Raft>;

/// The Raft model.
pub type RaftModel = Harness<Raft>;

/// The state of server `i` (crashed servers keep their last state until they recover).
pub fn server(s: &RaftModelState, i: usize) -> &ServerState {
    match &*s.actor_states[i] {
        RaftState::Server(server) => server,
        _ => panic!("actor {i} is not a server"),
    }
}

/// The servers that are up, with their ids.
pub fn live_servers<'a>(
    cfg: &RaftCfg,
    s: &'a RaftModelState,
) -> impl Iterator<Item = (usize, &'a ServerState)> + 'a {
    let n = cfg.servers;
    (0..n)
        .filter(|i| !s.crashed[*i])
        .map(move |i| (i, server(s, i)))
}

impl RaftCfg {
    pub fn into_model(self) -> RaftModel {
        let servers: Vec<Id> = (0..self.servers).map(Id::from).collect();
        let members = match self.members {
            0 => self.servers,
            m => m.min(self.servers),
        };
        let mut actors = Vec::new();
        for me in &servers {
            actors.push(RaftActor::Server(ServerCfg {
                peers: servers.iter().copied().filter(|p| p != me).collect(),
                members: servers[..members].to_vec(),
                accept_changes: true,
                election_timeout: Duration::from_millis(150)..Duration::from_millis(300),
                heartbeat: Duration::from_millis(50),
                snapshot_every: self.snapshot_every,
                snapshot_chunk: self.snapshot_chunk,
                heartbeats: self.heartbeats.unwrap_or(match self.network {
                    NetworkKind::Lossy => Heartbeats::Behind,
                    _ => Heartbeats::Off,
                }),
                reads: self.reads,
                guard: self.guard || self.reads == Reads::Lease,
                drift_bound: self.drift_bound,
                noop: self.noop,
                bug: self.bug,
            }));
        }
        for c in 0..self.clients {
            actors.push(RaftActor::Client(ClientCfg {
                servers: servers.clone(),
                ops: match (self.workload, c) {
                    (Workload::ReadAfterWrite, 0) => vec![KvOp::Get(KEY.into()); 2],
                    (Workload::ReadAfterWrite, 1) => vec![KvOp::Put(KEY.into(), "1.0".into())],
                    _ => (0..self.ops).map(|j| client_op(c, j)).collect(),
                },
                retry_timeout: Duration::from_millis(500)..Duration::from_millis(1000),
                max_retries: Some(self.client_retries),
                driver: None,
            }));
        }
        let (added, last) = (
            Id::from(members.min(self.servers - 1)),
            self.servers.saturating_sub(1),
        );
        let changes: &[(Id, bool, usize)] = match self.changes {
            Changes::None => &[],
            Changes::Add => &[(added, true, 0)],
            Changes::Remove => &[(Id::from(0), false, 0)],
            Changes::RemoveTwo => &[
                (Id::from(last), false, 0),
                (Id::from(last.saturating_sub(1)), false, 1),
            ],
        };
        for (server, add, first) in changes {
            actors.push(RaftActor::Admin(AdminCfg {
                servers: servers.clone(),
                server: *server,
                add: *add,
                first: *first,
                retry_timeout: Duration::from_millis(500)..Duration::from_millis(1000),
                max_retries: self.client_retries,
            }));
        }
        let (network, lossy, crashes) =
            (self.network.network(), self.network.lossy(), self.crashes);
        let inner = ActorModel::new(self, RaftHistory::default())
            .actors(actors)
            .init_network(network)
            .lossy_network(lossy)
            .record_msg_out(record_out)
            .record_msg_in(record_in);
        Harness::new(inner, crashes)
    }
}

/// A client's request is the invocation of its operation; retries of it are not.
fn record_out(_: &RaftCfg, h: &RaftHistory, env: Envelope<&RaftMsg>) -> Option<RaftHistory> {
    let RaftMsg::Client(ClientMsg::Request { client, seq, op }) = env.msg else {
        return None;
    };
    if env.src != *client || h.invoked.get(client).is_some_and(|(s, _)| s >= seq) {
        return None;
    }
    let mut h = h.clone();
    // The tester refuses a second invocation while one is in flight; clients never do that.
    let _ = h.lin.on_invoke(*client, op.clone());
    h.invoked.insert(*client, (*seq, false));
    Some(h)
}

/// The first reply to the invocation in flight is its return.
fn record_in(cfg: &RaftCfg, h: &RaftHistory, env: Envelope<&RaftMsg>) -> Option<RaftHistory> {
    let RaftMsg::Client(ClientMsg::Reply { seq, ret }) = env.msg else {
        return None;
    };
    if h.invoked.get(&env.dst) != Some(&(*seq, false)) {
        return None;
    }
    let mut h = h.clone();
    let _ = h.lin.on_return(env.dst, ret.clone());
    h.invoked.insert(env.dst, (*seq, true));
    if let KvRet::Value(v) = ret {
        // Client c is actor `servers + c`.
        if writer(v).is_some_and(|w| Id::from(cfg.servers + w) != env.dst) {
            h.ghost.read_other_put = true;
        }
    }
    Some(h)
}

/// What the history variables need to know about a step (so the step's action, message and
/// all, need not be cloned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Crash,
    Drop,
    /// Server i's election timer fired.
    ElectionTimeout(usize),
    /// An InstallSnapshot was delivered to server i.
    InstallSnapshot(usize),
    /// A RequestVote was delivered to server i.
    RequestVote(usize),
    /// A client's Get was delivered to server `server`.
    Get {
        server: usize,
        client: Id,
        seq: Seq,
    },
    Other,
}

impl Step {
    fn of(action: &RaftAction) -> Step {
        match action {
            ActorModelAction::Crash(_) => Step::Crash,
            ActorModelAction::Drop(_) => Step::Drop,
            ActorModelAction::Timeout(id, RaftTimer::Election) => {
                Step::ElectionTimeout(usize::from(*id))
            }
            ActorModelAction::Deliver {
                dst,
                msg: RaftMsg::InstallSnapshot { .. },
                ..
            } => Step::InstallSnapshot(usize::from(*dst)),
            ActorModelAction::Deliver {
                dst,
                msg: RaftMsg::RequestVote { .. },
                ..
            } => Step::RequestVote(usize::from(*dst)),
            ActorModelAction::Deliver {
                dst,
                msg:
                    RaftMsg::Client(ClientMsg::Request {
                        client,
                        seq,
                        op: KvOp::Get(_),
                    }),
                ..
            } => Step::Get {
                server: usize::from(*dst),
                client: *client,
                seq: *seq,
            },
            _ => Step::Other,
        }
    }
}

impl RaftModel {
    /// Updates the history variables after a step from `prev` (`None` for an initial state).
    fn update_ghost(&self, prev: Option<&RaftModelState>, step: Step, next: &mut RaftModelState) {
        let cfg = self.cfg();
        // A crash is already counted (by the harness).
        let mut g = std::mem::take(&mut next.history.ghost);
        match (step, prev) {
            (Step::Drop, _) => g.dropped = true,
            (Step::ElectionTimeout(i), Some(prev)) if knows_leader(server(prev, i)) => {
                g.spurious_timeouts += 1;
            }
            (Step::InstallSnapshot(i), Some(prev))
                if server(next, i).log.first_index() > server(prev, i).log.first_index() =>
            {
                g.snapshot_installed = true;
            }
            (Step::RequestVote(i), Some(prev)) => {
                let was = server(prev, i);
                if server_cfg(self, i).guard && (was.is_leader() || was.heard_leader.is_some()) {
                    g.vote_ignored = true;
                }
            }
            // A Get that a leader with a lease answered in the step it arrived.
            (
                Step::Get {
                    server: i,
                    client,
                    seq,
                },
                Some(prev),
            ) => {
                let pending = |s: &ServerState| match &s.role {
                    Role::Leader { reads, .. } => {
                        reads.iter().any(|r| r.client == client && r.seq == seq)
                    }
                    _ => false,
                };
                let (was, now) = (server(prev, i), server(next, i));
                if server_cfg(self, i).holds_lease(Id::from(i), was)
                    && !pending(was)
                    && now.is_leader()
                    && !pending(now)
                {
                    g.lease_read_served = true;
                }
            }
            _ => {}
        }
        for (i, s) in live_servers(cfg, next) {
            let configs = || {
                let mut configs = vec![s.config.clone()];
                if let Some(before) = prev.map(|p| &server(p, i).config) {
                    if *before != s.config {
                        configs.insert(0, before.clone());
                    }
                }
                configs
            };
            if s.is_leader() && g.leaders.insert((s.current_term, Id::from(i))) && g.crashes > 0 {
                g.leader_after_crash = true;
            }
            for index in s.log.first_index() + 1..=s.commit_index {
                let Some(e) = s.log.entry(index) else { break };
                match g.committed.get(&index) {
                    None => {
                        g.config_committed |= e.config().is_some();
                        g.committed.insert(
                            index,
                            Committed {
                                term: e.term,
                                kind: e.kind.clone(),
                                in_term: s.current_term,
                                configs: configs(),
                            },
                        );
                    }
                    Some(c) if c.term != e.term || c.kind != e.kind => {
                        g.conflicting_commit = true;
                    }
                    Some(_) => {}
                }
            }
            // Leader Append-Only: compare with the same leader's log before the step.
            if let Some(prev) = prev {
                let was = server(prev, i);
                if let (Role::Leader { reads: before, .. }, Role::Leader { reads: after, .. }) =
                    (&was.role, &s.role)
                {
                    if before.iter().any(|r| r.round > 0 && !after.contains(r)) {
                        g.read_index_served = true;
                    }
                    if before.iter().any(|r| r.lease && !after.contains(r)) {
                        g.lease_read_served = true;
                    }
                }
                if step != Step::Crash
                    && was.is_leader()
                    && !s.is_leader()
                    && was.current_term == s.current_term
                    && !s.is_member(Id::from(i))
                {
                    g.removed_leader_stepped_down = true;
                }
                if step != Step::Crash
                    && was.is_leader()
                    && s.is_leader()
                    && was.current_term == s.current_term
                {
                    let from = was.log.first_index().max(s.log.first_index()) + 1;
                    let kept = s.log.last_index() >= was.log.last_index()
                        && (from..=was.log.last_index())
                            .all(|k| s.log.entry(k) == was.log.entry(k));
                    if !kept {
                        g.leader_rewrote_log = true;
                    }
                }
            }
        }
        next.history.ghost = g;
    }
}

/// Server `i`'s configuration.
pub fn server_cfg(m: &RaftModel, i: usize) -> &ServerCfg {
    match &m.inner.actors[i] {
        RaftActor::Server(cfg) => cfg,
        _ => panic!("actor {i} is not a server"),
    }
}

/// Whether real time keeps server `f`'s minimum election timeout from ending now: a leader
/// still holds the lease of a round `f` received (its lease timer runs), and the leader's drift
/// bound covers the clocks' drift, so the lease ends first (thesis §6.4.1).
/// Returns that leader.
fn lease_outlasts(m: &RaftModel, s: &RaftModelState, f: usize) -> Option<usize> {
    let (term, heard) = server(s, f).heard_leader?;
    live_servers(m.cfg(), s)
        .find(|(l, leader)| {
            *l != f
                && leader.current_term == term
                && matches!(&leader.role, Role::Leader { leases, .. } if leases.iter().any(|r| heard >= *r))
                && server_cfg(m, *l).effective_drift_bound() >= m.cfg().clock_drift
        })
        .map(|(l, _)| l)
}

/// Whether the end of server `f`'s minimum election timeout would let it do anything: start
/// an election (its election timer may fire) or answer a RequestVote waiting for it.
fn may_vote_or_campaign(m: &RaftModel, s: &RaftModelState, f: usize) -> bool {
    let cfg = m.cfg();
    let spurious_ok = s.history.ghost.spurious_timeouts < cfg.spurious_timeouts;
    let may_campaign = f < cfg.candidates && (spurious_ok || !knows_leader(server(s, f)));
    may_campaign
        || s.network
            .iter_deliverable()
            .any(|e| usize::from(e.dst) == f && matches!(e.msg, RaftMsg::RequestVote { .. }))
}

/// Whether a server is a follower that has heard from the leader of its term.
fn knows_leader(s: &ServerState) -> bool {
    matches!(s.role, Role::Follower { leader: Some(_) })
}

/// Property: at most one leader per term (§5.2, Figure 3).
fn election_safety(_: &RaftModel, s: &RaftModelState) -> bool {
    let terms: Vec<Term> = s.history.ghost.leaders.iter().map(|(t, _)| *t).collect();
    terms.windows(2).all(|w| w[0] != w[1])
}

/// `s` in the paper's terms: a line per server (Figure 2's state) and per client, the messages
/// in flight, and who has led which term.
pub fn view(m: &RaftModel, s: &RaftModelState) -> String {
    let id = |i: &Id| format!("S{}", usize::from(*i));
    let mut lines = Vec::new();
    for (i, actor) in s.actor_states.iter().enumerate() {
        match &**actor {
            RaftState::Server(srv) if i < m.cfg().servers && s.crashed[i] => {
                lines.push(format!("S{i} crashed (t{} on disk)", srv.current_term));
            }
            RaftState::Server(srv) => {
                let role = match &srv.role {
                    Role::Follower { leader: Some(l) } => format!("Follower (leader {})", id(l)),
                    Role::Follower { leader: None } => "Follower".to_string(),
                    Role::Candidate { votes } => format!(
                        "Candidate (votes {})",
                        votes.iter().map(id).collect::<Vec<_>>().join(",")
                    ),
                    Role::Leader {
                        match_index,
                        change,
                        ..
                    } => {
                        let change = change.as_ref().map_or(String::new(), |c| {
                            let verb = if c.add { "adding" } else { "removing" };
                            format!(", {verb} S{}", usize::from(c.server))
                        });
                        format!("Leader (match {match_index:?}{change})")
                    }
                };
                let members = if srv.config.len() == m.cfg().servers {
                    String::new()
                } else {
                    format!(" config {}", show_servers(&srv.config))
                };
                let log: Vec<String> = (srv.log.first_index() + 1..=srv.log.last_index())
                    .filter_map(|k| srv.log.entry(k).map(|e| (k, e)))
                    .map(|(k, e)| format!("{k}:t{} {}", e.term, e.brief()))
                    .collect();
                let snapshot = match srv.log.first_index() {
                    0 => String::new(),
                    n => format!(" snapshot to {n}"),
                };
                lines.push(format!(
                    "S{i} {role} t{} voted {} log [{}]{snapshot} commit {}{members}",
                    srv.current_term,
                    srv.voted_for.as_ref().map_or("-".to_string(), id),
                    log.join(", "),
                    srv.commit_index,
                ));
            }
            RaftState::Admin(a) => {
                let status = if a.done { "done" } else { "asking" };
                lines.push(format!("A{i} {status}, at S{}", a.target));
            }
            RaftState::Client(c) => lines.push(match &c.op {
                Some(o) => format!("C{i} {} (request {}) to S{}", o.brief(), c.seq, c.target),
                None => format!("C{i} idle after request {}", c.seq),
            }),
        }
    }
    lines.push(crate::catalog::in_flight_line(
        s,
        &actor_names(m),
        brief_msg,
    ));
    let leaders: Vec<String> = s
        .history
        .ghost
        .leaders
        .iter()
        .map(|(t, l)| format!("t{t} {}", id(l)))
        .collect();
    lines.push(format!(
        "leaders so far: {}",
        if leaders.is_empty() {
            "none".to_string()
        } else {
            leaders.join(", ")
        }
    ));
    lines.join("\n")
}

/// The actors' names: servers `S0`.., then clients `C3`...
pub fn actor_names(m: &RaftModel) -> Vec<String> {
    let (servers, clients) = (m.cfg().servers, m.cfg().clients);
    let admins = match m.cfg().changes {
        Changes::None => 0,
        Changes::Add | Changes::Remove => 1,
        Changes::RemoveTwo => 2,
    };
    (0..servers + clients + admins)
        .map(|i| {
            let kind = match i {
                i if i < servers => "S",
                i if i < servers + clients => "C",
                _ => "A",
            };
            format!("{kind}{i}")
        })
        .collect()
}

/// A message in a view: its kind and term (`RequestVote t1`), from its `Debug`.
fn brief_msg(msg: &str) -> String {
    let kind = msg.split([' ', '(', '{']).next().unwrap_or_default();
    let term = msg
        .split("term: ")
        .nth(1)
        .and_then(|t| t.split([',', ' ', '}']).next())
        .map(|t| format!(" t{t}"))
        .unwrap_or_default();
    format!("{kind}{term}")
}

/// The evidence of a violated property at `s`, for people: the leaders of a term that had two.
pub fn explain(_: &RaftModel, s: &RaftModelState, property: &str) -> Option<String> {
    match property {
        "Election Safety" => {
            let mut by_term: BTreeMap<Term, Vec<String>> = BTreeMap::new();
            for (term, id) in &s.history.ghost.leaders {
                by_term
                    .entry(*term)
                    .or_default()
                    .push(format!("S{}", usize::from(*id)));
            }
            let (term, leaders) = by_term.into_iter().find(|(_, l)| l.len() > 1)?;
            Some(format!(
                "term {term} has {} leaders: {} (§5.2: at most one leader per term)",
                leaders.len(),
                leaders.join(" and ")
            ))
        }
        _ => None,
    }
}

/// Property: two logs with an entry of the same index and term are identical up to it (§5.3).
fn log_matching(m: &RaftModel, s: &RaftModelState) -> bool {
    let live: Vec<&ServerState> = live_servers(m.cfg(), s).map(|(_, s)| s).collect();
    for (a_i, a) in live.iter().enumerate() {
        for b in &live[a_i + 1..] {
            let from = a.log.first_index().max(b.log.first_index()) + 1;
            let to = a.log.last_index().min(b.log.last_index());
            let last_same_term = (from..=to)
                .rev()
                .find(|k| a.log.term_at(*k) == b.log.term_at(*k));
            if let Some(k) = last_same_term {
                if (from..=k).any(|j| a.log.entry(j) != b.log.entry(j)) {
                    return false;
                }
            }
        }
    }
    true
}

/// Property: a leader holds every entry committed in an earlier term (§5.4, Figure 3).
fn leader_completeness(m: &RaftModel, s: &RaftModelState) -> bool {
    live_servers(m.cfg(), s)
        .filter(|(_, l)| l.is_leader())
        .all(|(_, l)| {
            s.history
                .ghost
                .committed
                .iter()
                .filter(|(_, c)| c.in_term < l.current_term)
                .all(|(index, c)| {
                    *index <= l.log.first_index()
                        || l.log
                            .entry(*index)
                            .is_some_and(|e| e.term == c.term && e.kind == c.kind)
                })
        })
}

/// Property: each server's state machine is what applying the committed entries up to its
/// `lastApplied`, in order, gives (§5.3, §7: a snapshot stands for the entries it replaces).
/// Where a committed index is unknown to the history (not seen committed), nothing is claimed.
fn machine_follows_log(m: &RaftModel, s: &RaftModelState) -> bool {
    let committed = &s.history.ghost.committed;
    live_servers(m.cfg(), s).all(|(_, srv)| {
        let mut machine = super::kv::KvMachine::default();
        for index in 1..=srv.last_applied {
            let Some(c) = committed.get(&index) else {
                return true;
            };
            if let EntryKind::Command(command) = &c.kind {
                machine.apply(command);
            }
        }
        machine == srv.machine
    })
}

/// Property: each committed entry is on the stable storage of a majority of the configuration
/// it was committed in, so no crash loses it.
fn committed_survive_crashes(_: &RaftModel, s: &RaftModelState) -> bool {
    s.history.ghost.committed.iter().all(|(index, c)| {
        c.configs.iter().any(|config| {
            let holders = config
                .iter()
                .filter_map(|i| s.actor_storages[usize::from(*i)].as_ref())
                .filter(|st| {
                    *index <= st.log.first_index()
                        || st.log.entry(*index).is_some_and(|e| e.term == c.term)
                })
                .count();
            holders > config.len() / 2
        })
    })
}

/// Raft's part of the [`Harness`].
pub struct Raft;

impl Harnessed for Raft {
    type Actor = RaftActor;
    type Cfg = RaftCfg;
    type History = RaftHistory;
    type Step = Step;

    fn step_of(action: &RaftAction) -> Step {
        Step::of(action)
    }

    fn crashes(h: &RaftHistory) -> usize {
        usize::from(h.ghost.crashes)
    }

    fn count_crash(h: &mut RaftHistory) {
        h.ghost.crashes += 1;
    }

    /// Servers crash (leaders only, with `crash_leaders_only`); clients do not.
    fn may_crash(m: &RaftModel, s: &RaftModelState, i: usize) -> bool {
        let cfg = m.cfg();
        i < cfg.servers && (!cfg.crash_leaders_only || server(s, i).is_leader())
    }

    /// Only candidates' election timers fire, and a follower that knows its leader times out
    /// only within the budget of spurious timeouts.
    fn allow(m: &RaftModel, state: &RaftModelState, a: &RaftAction) -> bool {
        let cfg = m.cfg();
        match a {
            // (With the guard, the minimum election timeout ends first.)
            ActorModelAction::Timeout(id, RaftTimer::Election) => {
                let i = usize::from(*id);
                let spurious_ok = state.history.ghost.spurious_timeouts < cfg.spurious_timeouts;
                i < cfg.candidates
                    && (spurious_ok || !knows_leader(server(state, i)))
                    && server(state, i).heard_leader.is_none()
            }
            // The end of the minimum election timeout changes nothing until the server campaigns
            // or is asked for its vote: it ends only then (a reduction: ending earlier and then
            // hearing from the leader again is the same as not ending), and not while a lease
            // it acknowledged outlasts it.
            ActorModelAction::Timeout(id, RaftTimer::HeardLeader) => {
                let i = usize::from(*id);
                may_vote_or_campaign(m, state, i) && lease_outlasts(m, state, i).is_none()
            }
            // Likewise the end of a lease changes nothing until a Get arrives, a heartbeat
            // would renew it, or a server whose minimum election timeout it holds back wants
            // to vote or campaign.
            ActorModelAction::Timeout(id, RaftTimer::Lease(_)) => {
                let l = usize::from(*id);
                let get = state.network.iter_deliverable().any(|e| {
                    e.dst == *id
                        && matches!(
                            e.msg,
                            RaftMsg::Client(ClientMsg::Request {
                                op: KvOp::Get(_),
                                ..
                            })
                        )
                });
                get || server_cfg(m, l).heartbeats == Heartbeats::Every
                    || (0..cfg.servers).any(|f| {
                        lease_outlasts(m, state, f) == Some(l) && may_vote_or_campaign(m, state, f)
                    })
            }
            _ => true,
        }
    }

    fn record(m: &RaftModel, prev: Option<(&RaftModelState, Step)>, next: &mut RaftModelState) {
        match prev {
            None => m.update_ghost(None, Step::Other, next),
            Some((last, step)) => m.update_ghost(Some(last), step, next),
        }
    }

    fn properties(m: &RaftModel) -> Vec<Property<RaftModel>> {
        let mut properties = vec![
            Property::always("Election Safety", election_safety),
            Property::always("Leader Append-Only", |_, s: &RaftModelState| {
                !s.history.ghost.leader_rewrote_log
            }),
            Property::always("Log Matching", log_matching),
            Property::always("Leader Completeness", leader_completeness),
            Property::always("State Machine Safety", |_, s: &RaftModelState| {
                !s.history.ghost.conflicting_commit
            }),
            Property::always("linearizable client history", |_, s: &RaftModelState| {
                s.history.lin.serialized_history().is_some()
            }),
            Property::always(
                "committed entries are never lost across crashes",
                committed_survive_crashes,
            ),
            Property::always(MACHINE_FOLLOWS_LOG, machine_follows_log),
            Property::sometimes("a leader is elected", |_, s: &RaftModelState| {
                !s.history.ghost.leaders.is_empty()
            }),
            Property::sometimes("an entry is committed", |_, s: &RaftModelState| {
                !s.history.ghost.committed.is_empty()
            }),
            Property::sometimes("a follower installs a snapshot", |_, s: &RaftModelState| {
                s.history.ghost.snapshot_installed
            }),
            Property::sometimes(
                "a Get returns another client's Put",
                |_, s: &RaftModelState| s.history.ghost.read_other_put,
            ),
            Property::sometimes(
                "a leader is elected after a crash",
                |_, s: &RaftModelState| s.history.ghost.leader_after_crash,
            ),
            Property::eventually(EVENTUALLY_ELECTED, |_, s: &RaftModelState| {
                let g = &s.history.ghost;
                !g.leaders.is_empty() || g.crashes > 0 || g.dropped
            }),
        ];
        let clients_get = (0..m.cfg().clients).any(|c| match m.cfg().workload {
            Workload::ReadAfterWrite => c == 0,
            Workload::Alternate => (0..m.cfg().ops).any(|j| (c + j) % 2 == 1),
        });
        if m.cfg().changes != Changes::None {
            properties.push(Property::sometimes(
                CONFIG_COMMITTED,
                |_, s: &RaftModelState| s.history.ghost.config_committed,
            ));
        }
        if m.cfg().changes == Changes::Remove {
            properties.push(Property::sometimes(
                REMOVED_LEADER_STEPS_DOWN,
                |_, s: &RaftModelState| s.history.ghost.removed_leader_stepped_down,
            ));
        }
        if m.cfg().reads != Reads::Log && clients_get {
            properties.push(Property::sometimes(
                READ_INDEX_SERVED,
                |_, s: &RaftModelState| s.history.ghost.read_index_served,
            ));
        }
        if m.cfg().reads == Reads::Lease && clients_get {
            properties.push(Property::sometimes(
                LEASE_READ_SERVED,
                |_, s: &RaftModelState| s.history.ghost.lease_read_served,
            ));
        }
        if m.cfg().guard || m.cfg().reads == Reads::Lease {
            properties.push(Property::sometimes(
                VOTE_IGNORED,
                |_, s: &RaftModelState| s.history.ghost.vote_ignored,
            ));
        }
        properties
    }

    fn within_boundary(m: &RaftModel, s: &RaftModelState) -> bool {
        let cfg = m.cfg();
        let servers_ok = (0..cfg.servers).all(|i| {
            let sv = server(s, i);
            let rounds_ok = match &sv.role {
                Role::Leader { round, .. } => *round <= MAX_ROUND,
                _ => true,
            };
            sv.current_term <= cfg.max_term && sv.log.last_index() <= cfg.max_log && rounds_ok
        });
        let clients_up = s.crashed[cfg.servers..].iter().all(|c| !c);
        servers_ok && clients_up && channels_within(&s.network, cfg.max_in_flight)
    }
}

/// Whether no channel holds more than `max` messages.
fn channels_within(network: &Network<RaftMsg>, max: usize) -> bool {
    match network {
        Network::Ordered(channels) => channels.values().all(|q| q.len() <= max),
        Network::UnorderedNonDuplicating(envelopes) => {
            let mut per: BTreeMap<(Id, Id), usize> = BTreeMap::new();
            for (env, count) in envelopes.iter() {
                *per.entry((env.src, env.dst)).or_default() += count;
            }
            per.values().all(|n| *n <= max)
        }
        Network::UnorderedDuplicating(..) => true,
    }
}
