//! The Raft server and the key-value client as stateright actors. They take their peers and
//! timeouts from their configuration only, so the same actors run in the checker and over TCP.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use super::kv::{Command, KvMachine, KvOp, KvRet, Seq};
use super::log::{Entry, EntryKind, Index, Log, Snapshot, Term};
use crate::client::ClientMsg;

/// The RPCs of Figure 2 and Figure 13 and the client protocol of §8.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftMsg {
    /// Invoked by candidates to gather votes (§5.2).
    RequestVote {
        term: Term,
        candidate_id: Id,
        last_log_index: Index,
        last_log_term: Term,
    },
    RequestVoteReply {
        term: Term,
        vote_granted: bool,
    },
    /// Invoked by the leader to replicate log entries (§5.3); also used as heartbeat (§5.2).
    /// `round` is the leader's latest round of heartbeats for reads (thesis §6.4: ReadIndex and
    /// leases), echoed in the reply, so that the leader knows the reply answers a message sent
    /// after a read arrived.
    AppendEntries {
        term: Term,
        leader_id: Id,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        round: u64,
    },
    /// `match_index` is the index of the follower's last entry known to match the leader's on
    /// success, and on failure a hint: the highest index that may still match. `round` echoes
    /// the request's.
    AppendEntriesReply {
        term: Term,
        success: bool,
        match_index: Index,
        round: u64,
    },
    /// Invoked by the leader to send a snapshot to a follower that is too far behind (§7,
    /// Figure 13), in chunks: `data` holds the state machine's items from `offset` (keys, then
    /// client sessions; [`KvMachine::chunk`]), `done` is set on the last chunk.
    InstallSnapshot {
        term: Term,
        leader_id: Id,
        last_included_index: Index,
        last_included_term: Term,
        offset: u64,
        data: Arc<KvMachine>,
        done: bool,
        /// The configuration the snapshot holds (thesis §5.1).
        config: Option<Vec<Id>>,
    },
    /// Figure 13's reply carries only the term; `last_included_index` (the follower's commit
    /// index) tells the leader which snapshot the follower has, and `received` how many items
    /// of the snapshot being sent it holds, so that the leader sends the next chunk.
    InstallSnapshotReply {
        term: Term,
        last_included_index: Index,
        received: u64,
    },
    /// From an administrator to the leader: add `new_server` to the configuration (thesis §4.1,
    /// Figure 4.1). The leader catches the new server up first (§4.2.1), then appends the new
    /// configuration, and answers once it is committed.
    AddServer {
        new_server: Id,
    },
    /// From an administrator to the leader: remove `old_server` from the configuration (Figure
    /// 4.1). A leader that removes itself steps down once the change commits (§4.2.2).
    RemoveServer {
        old_server: Id,
    },
    /// Figure 4.1's result: `ok` once the change of `server` is committed, else NOT_LEADER with
    /// the leader the server last heard from.
    ServerChangeReply {
        server: Id,
        ok: bool,
        leader_hint: Option<Id>,
    },
    /// The client protocol of §8 in the workbench's client envelope: a client's command
    /// (`Request`), the response to a committed (or, for a duplicate, already applied) command
    /// (`Reply`), `Redirect` from a server that is not the leader (its hint is the leader it last
    /// heard from), and the driver's `Invoke` and `Return` over TCP.
    Client(ClientMsg<KvOp, KvRet>),
}

/// Timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftTimer {
    /// A follower or candidate starts an election (§5.2).
    Election,
    /// The leader sends AppendEntries to every follower, with whatever entries they lack.
    Heartbeat,
    /// A client (or an administrator) gives up waiting and tries the next server.
    Retry,
    /// The minimum election timeout has passed since a follower last heard from its leader:
    /// it may vote again (thesis §4.2.3, with [`ServerCfg::guard`]).
    HeardLeader,
    /// The lease of the leader's round of heartbeats, counted from the round's start, runs
    /// out (thesis §6.4.1, with [`Reads::Lease`]).
    Lease(u64),
}

crate::seeded_bugs! {
    /// The seeded bugs (pitfalls the paper warns about).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum RaftBug {
        /// The leader counts replicas to commit an entry from an older term (Figure 8, §5.4.2).
        CommitPreviousTerm = "commit-previous-term",
        /// `currentTerm` and `votedFor` are not persisted (Figure 2's persistent state).
        ForgetVote = "forget-vote",
        /// Votes are granted without the up-to-date check (§5.4.1).
        VoteAnyLog = "vote-any-log",
        /// A follower keeps a conflicting entry instead of deleting it and all that follow (§5.3).
        NoTruncate = "no-truncate",
        /// ReadIndex without the round of heartbeats: the leader answers a Get once its state
        /// machine reaches the commit index, without confirming that it still leads (§8;
        /// thesis §6.4).
        ReadIndexWithoutHeartbeat = "read-index-without-heartbeat",
        /// InstallSnapshot keeps the entries from the last included index instead of after it
        /// (§7).
        SnapshotOffByOne = "snapshot-off-by-one",
        /// AppendEntries from an older term is processed instead of rejected (Figure 2, receiver
        /// implementation step 1).
        IgnoreStaleTerm = "ignore-stale-term",
        /// The log is kept in memory only: not persisted before acknowledging (Figure 2).
        VolatileLog = "volatile-log",
        /// A candidate whose election fails does not arm a new election timeout (§5.2).
        NoElectionRetry = "no-election-retry",
        /// A follower installs a snapshot before its last chunk arrived (Figure 13: only `done`
        /// completes it), with a state machine missing the items still to come.
        PartialSnapshot = "partial-snapshot",
        /// A leader appends a configuration change before an entry of its term is committed:
        /// the single-server change bug Ongaro reported on raft-dev in 2015 (thesis §4.1 as
        /// first published; the fix is to commit the term's no-op first).
        NoNoopBeforeChange = "no-noop-before-change",
        /// The leader's lease lasts the whole minimum election timeout, as if clocks did not
        /// drift (thesis §6.4.1: the lease must be shortened by the clock drift bound): a
        /// follower whose clock runs fast may vote for a new leader while the old one still
        /// answers reads from its lease.
        LeaseWithoutDriftBound = "lease-without-drift-bound",
    }
}

/// Which followers the leader's heartbeat timer sends AppendEntries to. The leader sends new
/// entries and a new commit index at once in any case; the heartbeat only repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Heartbeats {
    /// Every follower, every interval (a real cluster: heartbeats hold elections off, §5.2).
    Every,
    /// Only followers that have not acknowledged the whole log, or were not sent the current
    /// commit index: retransmission over a lossy network. A model-checking abstraction: a
    /// heartbeat to an up-to-date follower only resets its election timer, and the model's
    /// timeouts fire at any time anyway.
    Behind,
    /// None: over a reliable network every message arrives, so a repeat adds nothing but
    /// states. A model-checking abstraction.
    Off,
}

/// A server's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerCfg {
    /// The other servers: every server that may ever be in the configuration.
    pub peers: Vec<Id>,
    /// The initial configuration (thesis §4): the servers that form the cluster until the log
    /// holds a configuration entry. A server outside its configuration does not start
    /// elections (a new server waits to be added, §4.2.1; a removed one stays out, §4.2.2).
    pub members: Vec<Id>,
    /// Whether the server takes AddServer and RemoveServer. Off over TCP until the runtime can
    /// tell an administrator from a client (any client could otherwise reconfigure the
    /// cluster).
    pub accept_changes: bool,
    /// Randomised election timeout (§5.2).
    pub election_timeout: Range<Duration>,
    /// Interval between the leader's AppendEntries.
    pub heartbeat: Duration,
    /// Snapshot after this many applied entries beyond the last snapshot; 0 never (§7).
    pub snapshot_every: u64,
    /// Items of the state machine per InstallSnapshot chunk; 0: the whole snapshot in one.
    pub snapshot_chunk: u64,
    /// Which followers the leader's heartbeat goes to.
    pub heartbeats: Heartbeats,
    /// How the leader answers a Get.
    pub reads: Reads,
    /// Disruptive servers (thesis §4.2.3): a follower that has heard from its leader within
    /// the minimum election timeout ignores RequestVote (neither its term nor its vote
    /// changes), and so does a leader. A removed server that times out then cannot depose the
    /// leader, and lease reads rely on it: the followers that acknowledged a lease vote for no
    /// one until it has run out.
    pub guard: bool,
    /// The most, in percent, that clocks may drift from real time, which a leader allows for
    /// when it sizes its lease ([`ServerCfg::lease_duration`]).
    pub drift_bound: u32,
    /// Whether a new leader appends a no-op entry at the start of its term (§8). Always over
    /// TCP; the model can leave it out to show what it protects against (Figure 8).
    pub noop: bool,
    pub bug: Option<RaftBug>,
}

/// How a leader answers read-only operations (§8; thesis §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reads {
    /// Through the log, like a write: the Get is an entry, answered when it is applied.
    Log,
    /// ReadIndex (thesis §6.4): the leader records its commit index (at least its term's no-op),
    /// confirms that it still leads with a round of heartbeats a majority acknowledges, waits
    /// until its state machine has applied that index, and answers. No log entry, no disk write.
    ReadIndex,
    /// Leases (thesis §6.4.1): once a majority acknowledges a round of heartbeats, the leader
    /// holds a lease until [`ServerCfg::lease_duration`] after the round began, and answers
    /// Gets without a round of their own (at the read index, as ReadIndex). Safe only with the
    /// guard of §4.2.3 (the followers that acknowledged vote for no one within the minimum
    /// election timeout) and clocks that drift by at most the bound. Without a lease, a Get
    /// takes the ReadIndex path, and its round renews the lease.
    Lease,
}

/// A client's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    pub servers: Vec<Id>,
    /// The operations to run, one after another (request `j + 1` is `ops[j]`); empty for a
    /// client driven over TCP.
    pub ops: Vec<KvOp>,
    pub retry_timeout: Range<Duration>,
    /// How often one operation may be retried after a timeout; `None`: without limit. The
    /// model bounds it to keep the state space finite and small.
    pub max_retries: Option<u8>,
    /// Who hands the client operations ([`ClientMsg::Invoke`]) and hears their results
    /// ([`ClientMsg::Return`]): the runtime's driver over TCP; `None` in the model.
    pub driver: Option<Id>,
}

/// An administrator's configuration: the one change it asks for (thesis §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdminCfg {
    pub servers: Vec<Id>,
    /// The server to add (`add`) or remove.
    pub server: Id,
    pub add: bool,
    /// The server it asks first: index into `servers`.
    pub first: usize,
    pub retry_timeout: Range<Duration>,
    /// How often it may retry after a timeout (the model bounds it).
    pub max_retries: u8,
}

/// A server, a client, or an administrator that changes the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftActor {
    Server(ServerCfg),
    Client(ClientCfg),
    Admin(AdminCfg),
}

/// Figure 2's persistent state, saved before any message of the step that changed it is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Storage {
    pub current_term: Term,
    pub voted_for: Option<Id>,
    pub log: Log,
}

/// A server's role (§5.1) with its role-specific volatile state.
// A leader's state is the large one, and a server is a leader for most of its steps; boxing it
// would add a hop to each of them.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `leader` is the leader this server last heard from in its current term.
    Follower {
        leader: Option<Id>,
    },
    Candidate {
        votes: BTreeSet<Id>,
    },
    /// `next_index` and `match_index` are indexed like `ServerCfg::peers`; `commit_sent` is the
    /// commit index last sent to each, `inflight` whether an AppendEntries or InstallSnapshot to
    /// it awaits its reply (one at a time per follower, like etcd's probe state).
    ///
    /// Reads: `round` is the latest round of heartbeats started (each read starts one), `acked`
    /// the latest round each peer acknowledged in this term, `reads` the reads that wait for
    /// their round or for the state machine.
    Leader {
        next_index: Vec<Index>,
        match_index: Vec<Index>,
        commit_sent: Vec<Index>,
        inflight: Vec<bool>,
        round: u64,
        acked: Vec<u64>,
        reads: Vec<PendingRead>,
        change: Option<PendingChange>,
        /// The items of the snapshot each peer has acknowledged (the next chunk's offset).
        chunk_offset: Vec<u64>,
        /// With [`Reads::Lease`]: the rounds of heartbeats whose leases have not run out
        /// ([`RaftTimer::Lease`]), oldest first. A round a majority has acknowledged gives the
        /// lease; one acknowledged round makes the earlier ones moot (they end sooner).
        leases: Vec<u64>,
    },
}

/// A configuration change the leader works on (one at a time, thesis §4.1): the
/// administrator to answer, the server added or removed, and the index of its configuration
/// entry once appended (before that, an added server is being caught up, §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingChange {
    pub admin: Id,
    pub server: Id,
    pub add: bool,
    pub index: Option<Index>,
}

/// A read waiting at the leader (ReadIndex): its client, request and operation, the index the
/// state machine must reach, and the round of heartbeats that must confirm the leadership
/// (0: none, under `read-index-without-heartbeat`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingRead {
    pub client: Id,
    pub seq: Seq,
    pub op: KvOp,
    pub index: Index,
    pub round: u64,
    /// Taken under the leader's lease: no round of its own (`round` is 0).
    pub lease: bool,
}

/// A server's state: Figure 2's persistent and volatile state, and the state machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerState {
    pub current_term: Term,
    pub voted_for: Option<Id>,
    pub log: Log,
    pub commit_index: Index,
    pub last_applied: Index,
    pub role: Role,
    pub machine: KvMachine,
    /// The configuration in effect: the latest in the log, else the initial one (derived from
    /// the log, kept to spare a scan of the log at every count of a majority).
    pub config: Vec<Id>,
    /// A snapshot whose chunks are arriving (Figure 13, steps 2-5), with the items so far;
    /// volatile: a restart asks the leader for it again.
    pub receiving: Option<Snapshot>,
    /// With [`ServerCfg::guard`]: the term and latest round of heartbeats of the leader this
    /// server heard from within the minimum election timeout ([`RaftTimer::HeardLeader`]),
    /// `None` once that timeout has passed. A restart counts as hearing every round of its
    /// term (`u64::MAX`): the restarted server waits out the timeout before it votes.
    pub heard_leader: Option<(Term, u64)>,
}

impl ServerState {
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// Whether `id` is in the configuration in effect.
    pub fn is_member(&self, id: Id) -> bool {
        self.config.contains(&id)
    }

    /// How many servers of the configuration make a majority.
    pub fn quorum(&self) -> usize {
        self.config.len() / 2 + 1
    }
}

/// An administrator's state: the server it sends to (index into `AdminCfg::servers`), its
/// timeouts so far, and whether the change is done.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdminState {
    pub target: usize,
    pub retries: u8,
    pub done: bool,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The request id of the operation in flight, or of the last one when idle (0: none yet).
    pub seq: Seq,
    /// The operation in flight; `None` when idle.
    pub op: Option<KvOp>,
    /// The server the client sends to: index into `ClientCfg::servers`.
    pub target: usize,
    /// Timeouts of the current operation so far.
    pub retries: u8,
}

// Actor states live behind an `Arc` in the model; boxing the server's would only add a hop.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftState {
    Server(ServerState),
    Client(ClientState),
    Admin(AdminState),
}

impl Actor for RaftActor {
    type Msg = RaftMsg;
    type Timer = RaftTimer;
    type State = RaftState;
    type Storage = Storage;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<Storage>, o: &mut Out<Self>) -> RaftState {
        match self {
            RaftActor::Server(cfg) => RaftState::Server(cfg.start(storage, o)),
            RaftActor::Client(cfg) => RaftState::Client(cfg.start(id, o)),
            RaftActor::Admin(cfg) => RaftState::Admin(cfg.start(id, o)),
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<RaftState>, src: Id, msg: RaftMsg, o: &mut Out<Self>) {
        // A runtime that owns the state (over TCP) lets the server change it in place; the
        // checker lends it, and gets a new state only if the step changed it.
        if let (RaftActor::Server(cfg), Cow::Owned(RaftState::Server(s))) = (self, &mut *state) {
            return cfg.on_msg(id, s, src, msg, o);
        }
        match (self, &**state) {
            (RaftActor::Server(cfg), RaftState::Server(s)) => {
                let mut next = s.clone();
                cfg.on_msg(id, &mut next, src, msg, o);
                if next != *s {
                    *state = Cow::Owned(RaftState::Server(next));
                }
            }
            (RaftActor::Client(cfg), RaftState::Client(s)) => {
                if let Some(next) = cfg.on_msg(id, s, src, msg, o) {
                    *state = Cow::Owned(RaftState::Client(next));
                }
            }
            (RaftActor::Admin(cfg), RaftState::Admin(s)) => {
                if let Some(next) = cfg.on_msg(id, s, src, msg, o) {
                    *state = Cow::Owned(RaftState::Admin(next));
                }
            }
            _ => unreachable!("actor and state kinds agree"),
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<RaftState>, timer: &RaftTimer, o: &mut Out<Self>) {
        if let (RaftActor::Server(cfg), Cow::Owned(RaftState::Server(s))) = (self, &mut *state) {
            return cfg.on_timeout(id, s, *timer, o);
        }
        match (self, &**state) {
            (RaftActor::Server(cfg), RaftState::Server(s)) => {
                let mut next = s.clone();
                cfg.on_timeout(id, &mut next, *timer, o);
                if next != *s {
                    *state = Cow::Owned(RaftState::Server(next));
                }
            }
            (RaftActor::Client(cfg), RaftState::Client(s)) => {
                if let Some(next) = cfg.on_timeout(id, s, *timer, o) {
                    *state = Cow::Owned(RaftState::Client(next));
                }
            }
            (RaftActor::Admin(cfg), RaftState::Admin(s)) => {
                if let Some(next) = cfg.on_timeout(id, s, *timer, o) {
                    *state = Cow::Owned(RaftState::Admin(next));
                }
            }
            _ => unreachable!("actor and state kinds agree"),
        }
    }
}

impl ServerCfg {
    /// Whether the leader replicates to peer `p`: a server of its configuration, or the server
    /// it is catching up before adding it (§4.2.1).
    fn is_target(&self, s: &ServerState, p: usize) -> bool {
        let peer = self.peers[p];
        s.is_member(peer)
            || matches!(&s.role, Role::Leader { change: Some(c), .. } if c.add && c.server == peer)
    }

    /// The configuration in effect with `log`: its latest, else the initial one.
    fn config_of(&self, log: &Log) -> Vec<Id> {
        log.latest_config()
            .map_or_else(|| self.members.clone(), |(_, c)| c.clone())
    }

    /// The minimum election timeout, as a timer's range.
    fn min_election(&self) -> Range<Duration> {
        self.election_timeout.start..self.election_timeout.start
    }

    /// The drift bound the lease allows for: none under `lease-without-drift-bound`.
    pub fn effective_drift_bound(&self) -> u32 {
        if self.bug == Some(RaftBug::LeaseWithoutDriftBound) {
            0
        } else {
            self.drift_bound.min(99)
        }
    }

    /// How long a lease lasts from the start of its round, on the leader's clock (thesis
    /// §6.4.1). A follower that acknowledged the round votes again only a minimum election
    /// timeout `E` after it received it, on its own clock. With clocks that drift by at most
    /// `ρ`, the lease `L` ends first if `L / (1 - ρ) <= E / (1 + ρ)`: `L = E (1 - ρ) / (1 + ρ)`.
    pub fn lease_duration(&self) -> Duration {
        let rho = self.effective_drift_bound();
        self.election_timeout.start * (100 - rho) / (100 + rho)
    }

    /// Starts a round of heartbeats that, once a majority acknowledges it, gives the leader a
    /// lease, and arms the lease's timer: the lease counts from the round's start.
    fn start_lease_round(&self, s: &mut ServerState, o: &mut Out<RaftActor>) {
        if let Role::Leader { round, leases, .. } = &mut s.role {
            *round += 1;
            leases.push(*round);
            let d = self.lease_duration();
            o.set_timer(RaftTimer::Lease(*round), d..d);
        }
    }

    /// Whether the leader holds a lease: a majority acknowledged a round whose lease timer
    /// runs.
    pub fn holds_lease(&self, id: Id, s: &ServerState) -> bool {
        let Role::Leader { leases, .. } = &s.role else {
            return false;
        };
        if leases.is_empty() {
            return false;
        }
        let confirmed = self.confirmed_round(id, s);
        leases.iter().any(|r| *r <= confirmed)
    }

    /// Whether a lease round waits for a majority to acknowledge it.
    fn renewing(&self, id: Id, s: &ServerState) -> bool {
        let Role::Leader { leases, .. } = &s.role else {
            return false;
        };
        if leases.is_empty() {
            return false;
        }
        let confirmed = self.confirmed_round(id, s);
        leases.iter().any(|r| *r > confirmed)
    }

    /// Drops the lease rounds before the latest acknowledged one, and their timers.
    fn prune_leases(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        let confirmed = self.confirmed_round(id, s);
        let Role::Leader { leases, .. } = &mut s.role else {
            return;
        };
        if let Some(latest) = leases.iter().copied().filter(|r| *r <= confirmed).max() {
            for r in leases.iter().filter(|r| **r < latest) {
                o.cancel_timer(RaftTimer::Lease(*r));
            }
            leases.retain(|r| *r >= latest);
        }
    }

    /// Starts from saved storage, or empty; volatile state starts over (Figure 2): the state
    /// machine from the snapshot, `commitIndex` and `lastApplied` at its last included index.
    pub fn start(&self, storage: &Option<Storage>, o: &mut Out<RaftActor>) -> ServerState {
        let storage = storage.clone().unwrap_or_default();
        let base = storage.log.snapshot.last_included_index;
        o.set_timer(RaftTimer::Election, self.election_timeout.clone());
        let heard_leader = self.guard.then(|| {
            o.set_timer(RaftTimer::HeardLeader, self.min_election());
            (storage.current_term, u64::MAX)
        });
        ServerState {
            config: self.config_of(&storage.log),
            receiving: None,
            heard_leader,
            current_term: storage.current_term,
            voted_for: storage.voted_for,
            machine: (*storage.log.snapshot.machine).clone(),
            log: storage.log,
            commit_index: base,
            last_applied: base,
            role: Role::Follower { leader: None },
        }
    }

    /// Saves the persistent state (as the bugs allow).
    fn persist(&self, s: &ServerState, o: &mut Out<RaftActor>) {
        let mut storage = Storage {
            current_term: s.current_term,
            voted_for: s.voted_for,
            log: s.log.clone(),
        };
        match self.bug {
            Some(RaftBug::ForgetVote) => {
                storage.current_term = 0;
                storage.voted_for = None;
            }
            Some(RaftBug::VolatileLog) => storage.log = Log::default(),
            _ => {}
        }
        o.save(storage);
    }

    /// "If RPC request or response contains term T > currentTerm: set currentTerm = T, convert to
    /// follower" (Figure 2, rules for all servers).
    /// `leader` is the sender when the message comes from the leader of `term`.
    fn observe_term(
        &self,
        s: &mut ServerState,
        term: Term,
        leader: Option<Id>,
        o: &mut Out<RaftActor>,
    ) {
        if term > s.current_term {
            s.current_term = term;
            s.voted_for = None;
            if s.is_leader() {
                self.step_down(s, leader, o);
            }
            s.role = Role::Follower { leader: None };
        }
    }

    /// A leader gives up leadership (a higher term, or its own removal, §4.2.2): it fails the
    /// requests still waiting, with `leader` as the hint. Their clients retry elsewhere, and the
    /// session table keeps a retried command from running twice if this leader's entry commits
    /// after all.
    fn step_down(&self, s: &mut ServerState, leader: Option<Id>, o: &mut Out<RaftActor>) {
        o.cancel_timer(RaftTimer::Heartbeat);
        if let Role::Leader { leases, .. } = &s.role {
            for r in leases {
                o.cancel_timer(RaftTimer::Lease(*r));
            }
        }
        o.set_timer(RaftTimer::Election, self.election_timeout.clone());
        for c in s
            .log
            .entries_from(s.commit_index + 1)
            .iter()
            .filter_map(Entry::command)
        {
            o.send(
                c.client,
                RaftMsg::Client(ClientMsg::Redirect {
                    seq: c.seq,
                    leader_hint: leader,
                }),
            );
        }
        if let Role::Leader { reads, change, .. } = &s.role {
            for r in reads {
                o.send(
                    r.client,
                    RaftMsg::Client(ClientMsg::Redirect {
                        seq: r.seq,
                        leader_hint: leader,
                    }),
                );
            }
            if let Some(c) = change {
                o.send(
                    c.admin,
                    RaftMsg::ServerChangeReply {
                        server: c.server,
                        ok: false,
                        leader_hint: leader,
                    },
                );
            }
        }
        s.role = Role::Follower { leader: None };
    }

    pub fn on_timeout(
        &self,
        id: Id,
        s: &mut ServerState,
        timer: RaftTimer,
        o: &mut Out<RaftActor>,
    ) {
        self.maybe_snapshot(s, o);
        match timer {
            // A server outside its configuration waits to be added (§4.2.1) or stays out
            // (§4.2.2); hearing from a leader arms its timer again.
            // The election timer, armed with the minimum election timeout's and never shorter,
            // ends that one too (over TCP two timers due at once fire in any order; the model
            // fires the minimum's first).
            RaftTimer::Election if !s.is_leader() => {
                s.heard_leader = None;
                if s.is_member(id) {
                    self.start_election(id, s, o)
                }
            }
            RaftTimer::HeardLeader => s.heard_leader = None,
            RaftTimer::Lease(r) => {
                if let Role::Leader { leases, .. } = &mut s.role {
                    leases.retain(|x| *x != r);
                }
            }
            RaftTimer::Heartbeat if s.is_leader() => {
                // Over a real network the heartbeats renew the lease: each starts a round,
                // unless the last one still waits for a majority.
                if self.reads == Reads::Lease
                    && self.heartbeats == Heartbeats::Every
                    && !self.renewing(id, s)
                {
                    self.start_lease_round(s, o);
                }
                for p in 0..self.peers.len() {
                    let send = self.is_target(s, p)
                        && match self.heartbeats {
                            Heartbeats::Every => true,
                            Heartbeats::Behind => self.inflight(s, p) || self.behind(s, p),
                            Heartbeats::Off => false,
                        };
                    if send {
                        self.send_append(id, s, p, o);
                    }
                }
                o.set_timer(RaftTimer::Heartbeat, self.heartbeat..self.heartbeat);
            }
            _ => {}
        }
    }

    /// §5.2: increment the term, vote for self, request votes from every other server.
    fn start_election(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        s.current_term += 1;
        s.voted_for = Some(id);
        s.role = Role::Candidate {
            votes: BTreeSet::from([id]),
        };
        self.persist(s, o);
        if self.bug != Some(RaftBug::NoElectionRetry) {
            o.set_timer(RaftTimer::Election, self.election_timeout.clone());
        }
        let voters: Vec<Id> = self
            .peers
            .iter()
            .copied()
            .filter(|p| s.is_member(*p))
            .collect();
        o.broadcast(
            &voters,
            &RaftMsg::RequestVote {
                term: s.current_term,
                candidate_id: id,
                last_log_index: s.log.last_index(),
                last_log_term: s.log.last_term(),
            },
        );
        if s.quorum() == 1 {
            self.become_leader(id, s, o);
        }
    }

    fn become_leader(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        let next = s.log.last_index() + 1;
        let n = self.peers.len();
        s.role = Role::Leader {
            next_index: vec![next; n],
            match_index: vec![0; n],
            commit_sent: vec![0; n],
            inflight: vec![false; n],
            round: 0,
            acked: vec![0; n],
            reads: Vec::new(),
            change: None,
            chunk_offset: vec![0; n],
            leases: Vec::new(),
        };
        if self.reads == Reads::Lease {
            self.start_lease_round(s, o);
        }
        o.cancel_timer(RaftTimer::Election);
        o.set_timer(RaftTimer::Heartbeat, self.heartbeat..self.heartbeat);
        // §8: "each leader commit a blank no-op entry into the log at the start of its term",
        // so that it learns which entries are committed (an entry of its own term must commit
        // first, §5.4.2) and reads can be answered.
        if self.noop {
            s.log.entries.push(Entry {
                term: s.current_term,
                kind: EntryKind::Noop,
            });
            self.persist(s, o);
        }
        // "Upon election: send initial empty AppendEntries RPCs (heartbeat) to each server":
        // here they carry the no-op.
        for p in 0..n {
            if self.is_target(s, p) {
                self.send_append(id, s, p, o);
            }
        }
        self.advance_commit(id, s, o);
    }

    /// Sends peer `p` what it lacks from `nextIndex[p]` on: entries, or the snapshot when the
    /// entries it needs are compacted away (§7).
    fn send_append(&self, id: Id, s: &mut ServerState, p: usize, o: &mut Out<RaftActor>) {
        let Role::Leader {
            next_index,
            commit_sent,
            inflight,
            round,
            chunk_offset,
            ..
        } = &mut s.role
        else {
            return;
        };
        let round = *round;
        let next = next_index[p];
        commit_sent[p] = s.commit_index;
        inflight[p] = true;
        let msg = if next <= s.log.first_index() {
            let machine = &s.log.snapshot.machine;
            let (offset, data, done) = match self.snapshot_chunk {
                0 => (0, machine.clone(), true),
                n => {
                    let offset = chunk_offset[p].min(machine.items());
                    let chunk = machine.chunk(offset, n);
                    let done = offset + chunk.items() >= machine.items();
                    (offset, Arc::new(chunk), done)
                }
            };
            RaftMsg::InstallSnapshot {
                term: s.current_term,
                leader_id: id,
                last_included_index: s.log.snapshot.last_included_index,
                last_included_term: s.log.snapshot.last_included_term,
                offset,
                data,
                done,
                config: s.log.snapshot.config.clone(),
            }
        } else {
            let prev = next - 1;
            RaftMsg::AppendEntries {
                term: s.current_term,
                leader_id: id,
                prev_log_index: prev,
                prev_log_term: s.log.term_at(prev).expect("nextIndex - 1 is in the log"),
                entries: s.log.entries_from(next).to_vec(),
                leader_commit: s.commit_index,
                round,
            }
        };
        o.send(self.peers[p], msg);
    }

    pub fn on_msg(
        &self,
        id: Id,
        s: &mut ServerState,
        src: Id,
        msg: RaftMsg,
        o: &mut Out<RaftActor>,
    ) {
        self.maybe_snapshot(s, o);
        let before = (s.current_term, s.voted_for);
        match msg {
            RaftMsg::RequestVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => {
                // §4.2.3: within the minimum election timeout of hearing from a leader, a
                // server neither updates its term nor grants its vote (and does not answer).
                if self.guard && (s.is_leader() || s.heard_leader.is_some()) {
                    return;
                }
                self.observe_term(s, term, None, o);
                let log_ok = self.bug == Some(RaftBug::VoteAnyLog)
                    || s.log.is_up_to_date(last_log_index, last_log_term);
                let vote_granted = term == s.current_term
                    && s.voted_for.is_none_or(|v| v == candidate_id)
                    && log_ok;
                if vote_granted {
                    s.voted_for = Some(candidate_id);
                    o.set_timer(RaftTimer::Election, self.election_timeout.clone());
                }
                self.persist_if_changed(s, before, o);
                o.send(
                    src,
                    RaftMsg::RequestVoteReply {
                        term: s.current_term,
                        vote_granted,
                    },
                );
            }
            RaftMsg::RequestVoteReply { term, vote_granted } => {
                self.observe_term(s, term, None, o);
                self.persist_if_changed(s, before, o);
                if let Role::Candidate { votes } = &mut s.role {
                    if term == s.current_term && vote_granted {
                        votes.insert(src);
                        let members = votes.iter().filter(|v| s.config.contains(v)).count();
                        if members >= s.quorum() {
                            self.become_leader(id, s, o);
                        }
                    }
                }
            }
            RaftMsg::AppendEntries {
                term,
                leader_id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
            } => self.on_append_entries(
                id,
                s,
                src,
                before,
                term,
                leader_id,
                (prev_log_index, prev_log_term),
                entries,
                leader_commit,
                round,
                o,
            ),
            RaftMsg::AppendEntriesReply {
                term,
                success,
                match_index,
                round,
            } => self.on_replication_reply(
                id,
                s,
                src,
                before,
                term,
                success,
                match_index,
                Some(round),
                o,
            ),
            RaftMsg::InstallSnapshot {
                term,
                leader_id,
                last_included_index,
                last_included_term,
                offset,
                data,
                done,
                config,
            } => {
                self.observe_term(s, term, Some(leader_id), o);
                let mut received = 0;
                if term == s.current_term {
                    self.follow(s, leader_id, 0, o);
                    if last_included_index > s.commit_index {
                        // Figure 13: 2. create a new snapshot if the first chunk (offset 0);
                        // 3. write data at offset (chunks come in order: a chunk that does not
                        // continue the snapshot being received is dropped); 5. wait for more
                        // unless done.
                        let continues = s.receiving.as_ref().is_some_and(|r| {
                            (
                                r.last_included_index,
                                r.last_included_term,
                                r.machine.items(),
                            ) == (last_included_index, last_included_term, offset)
                        });
                        if continues {
                            let r = s.receiving.as_mut().expect("a snapshot being received");
                            Arc::make_mut(&mut r.machine).merge(&data);
                        } else if offset == 0 {
                            s.receiving = Some(Snapshot {
                                last_included_index,
                                last_included_term,
                                machine: data,
                                config,
                            });
                        }
                        if offset == 0 || continues {
                            if done {
                                let snapshot = s.receiving.take().expect("a received snapshot");
                                self.install_snapshot(s, snapshot);
                                self.persist(s, o);
                            } else if self.bug == Some(RaftBug::PartialSnapshot) {
                                let snapshot = s.receiving.clone().expect("a snapshot");
                                self.install_snapshot(s, snapshot);
                                self.persist(s, o);
                            }
                            received = s.receiving.as_ref().map_or(0, |r| r.machine.items());
                        }
                    }
                } else {
                    self.persist_if_changed(s, before, o);
                }
                o.send(
                    src,
                    RaftMsg::InstallSnapshotReply {
                        term: s.current_term,
                        last_included_index: s.commit_index,
                        received,
                    },
                );
            }
            // The follower now holds everything up to the snapshot: as a successful
            // AppendEntries up to that index.
            RaftMsg::InstallSnapshotReply {
                term,
                last_included_index,
                received,
            } => {
                // The next chunk starts where the follower's snapshot ends (from the start once
                // it has installed it, or holds none of this one).
                let first = s.log.first_index();
                if let Role::Leader { chunk_offset, .. } = &mut s.role {
                    if let Some(p) = self.peers.iter().position(|q| *q == src) {
                        if self.snapshot_chunk > 0 && term == s.current_term {
                            chunk_offset[p] = if last_included_index >= first {
                                0
                            } else {
                                received
                            };
                        }
                    }
                }
                self.on_replication_reply(
                    id,
                    s,
                    src,
                    before,
                    term,
                    true,
                    last_included_index,
                    None,
                    o,
                )
            }
            RaftMsg::Client(ClientMsg::Request { client, seq, op }) => {
                self.on_request(id, s, src, client, seq, op, o)
            }
            RaftMsg::AddServer { new_server } if self.accept_changes => {
                self.on_change_request(id, s, src, new_server, true, o)
            }
            RaftMsg::RemoveServer { old_server } if self.accept_changes => {
                self.on_change_request(id, s, src, old_server, false, o)
            }
            RaftMsg::Client(_)
            | RaftMsg::AddServer { .. }
            | RaftMsg::RemoveServer { .. }
            | RaftMsg::ServerChangeReply { .. } => {}
        }
    }

    /// The leader's side of AppendEntries and InstallSnapshot replies: `match_index` is the
    /// follower's last matching entry on success, a hint on failure; `round` the round of
    /// heartbeats an AppendEntries reply acknowledges (success or not: either way the follower
    /// took the sender as the leader of its term).
    #[allow(clippy::too_many_arguments)]
    fn on_replication_reply(
        &self,
        id: Id,
        s: &mut ServerState,
        src: Id,
        before: (Term, Option<Id>),
        term: Term,
        success: bool,
        match_index: Index,
        round: Option<u64>,
        o: &mut Out<RaftActor>,
    ) {
        self.observe_term(s, term, None, o);
        self.persist_if_changed(s, before, o);
        let Some(p) = self.peers.iter().position(|q| *q == src) else {
            return;
        };
        if term != s.current_term {
            return;
        }
        let Role::Leader {
            next_index,
            match_index: matched,
            inflight,
            acked,
            ..
        } = &mut s.role
        else {
            return;
        };
        inflight[p] = false;
        if let Some(r) = round {
            acked[p] = acked[p].max(r);
        }
        if success {
            matched[p] = matched[p].max(match_index);
            next_index[p] = next_index[p].max(match_index + 1);
            self.advance_commit(id, s, o);
        } else {
            next_index[p] = (next_index[p] - 1).min(match_index + 1).max(1);
        }
        if self.reads == Reads::Lease && round.is_some() {
            self.prune_leases(id, s, o);
        }
        self.serve_reads(id, s, o);
        self.replicate(id, s, o);
    }

    /// Whether peer `p` has not acknowledged the leader's whole log or not been sent its commit
    /// index.
    fn behind(&self, s: &ServerState, p: usize) -> bool {
        match &s.role {
            Role::Leader {
                match_index,
                commit_sent,
                round,
                acked,
                ..
            } => {
                match_index[p] < s.log.last_index()
                    || acked[p] < *round
                    || (self.heartbeats != Heartbeats::Off && commit_sent[p] < s.commit_index)
            }
            _ => false,
        }
    }

    fn persist_if_changed(
        &self,
        s: &ServerState,
        before: (Term, Option<Id>),
        o: &mut Out<RaftActor>,
    ) {
        if (s.current_term, s.voted_for) != before {
            self.persist(s, o);
        }
    }

    /// Recognises `leader` as the leader of the current term, heard from in its `round` of
    /// heartbeats (0: a message without one).
    fn follow(&self, s: &mut ServerState, leader: Id, round: u64, o: &mut Out<RaftActor>) {
        if !s.is_leader() {
            s.role = Role::Follower {
                leader: Some(leader),
            };
        }
        o.set_timer(RaftTimer::Election, self.election_timeout.clone());
        if self.guard {
            let term = s.current_term;
            let round = match s.heard_leader {
                Some((t, r)) if t == term => r.max(round),
                _ => round,
            };
            s.heard_leader = Some((term, round));
            o.set_timer(RaftTimer::HeardLeader, self.min_election());
        }
    }

    /// Figure 2, AppendEntries RPC, receiver implementation.
    #[allow(clippy::too_many_arguments)]
    fn on_append_entries(
        &self,
        id: Id,
        s: &mut ServerState,
        src: Id,
        before: (Term, Option<Id>),
        term: Term,
        leader_id: Id,
        (mut prev_log_index, mut prev_log_term): (Index, Term),
        mut entries: Vec<Entry>,
        leader_commit: Index,
        round: u64,
        o: &mut Out<RaftActor>,
    ) {
        self.observe_term(s, term, Some(leader_id), o);
        let reply = |s: &ServerState, success, match_index, o: &mut Out<RaftActor>| {
            o.send(
                src,
                RaftMsg::AppendEntriesReply {
                    term: s.current_term,
                    success,
                    match_index,
                    round,
                },
            )
        };
        // 1. Reply false if term < currentTerm.
        if term < s.current_term && self.bug != Some(RaftBug::IgnoreStaleTerm) {
            self.persist_if_changed(s, before, o);
            return reply(s, false, 0, o);
        }
        if term == s.current_term {
            self.follow(s, leader_id, round, o);
        }
        // Entries up to the snapshot are committed and so match the leader's (§7).
        let first = s.log.first_index();
        if prev_log_index < first {
            let skip = ((first - prev_log_index) as usize).min(entries.len());
            entries.drain(..skip);
            prev_log_index = first;
            prev_log_term = s.log.snapshot.last_included_term;
        }
        // 2. Reply false if log doesn't contain an entry at prevLogIndex whose term matches
        // prevLogTerm.
        if s.log.term_at(prev_log_index) != Some(prev_log_term) {
            self.persist_if_changed(s, before, o);
            let hint = s.log.last_index().min(prev_log_index.saturating_sub(1));
            return reply(s, false, hint, o);
        }
        // 3. If an existing entry conflicts with a new one (same index but different terms),
        // delete the existing entry and all that follow it. 4. Append any new entries not
        // already in the log.
        let mut changed = false;
        // Whether the configuration in effect may have changed: a configuration entry appended
        // or deleted.
        let mut reconfigured = false;
        let mut index = prev_log_index;
        for entry in entries {
            index += 1;
            match s.log.term_at(index) {
                Some(t) if t == entry.term => {}
                Some(_) if self.bug == Some(RaftBug::NoTruncate) => {}
                Some(_) => {
                    reconfigured |= s
                        .log
                        .entries_from(index)
                        .iter()
                        .any(|e| e.config().is_some());
                    s.log.truncate_from(index);
                    reconfigured |= entry.config().is_some();
                    s.log.entries.push(entry);
                    changed = true;
                }
                None => {
                    reconfigured |= entry.config().is_some();
                    s.log.entries.push(entry);
                    changed = true;
                }
            }
        }
        if reconfigured {
            s.config = self.config_of(&s.log);
        }
        if changed {
            self.persist(s, o);
        } else {
            self.persist_if_changed(s, before, o);
        }
        // 5. If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last
        // new entry).
        if leader_commit > s.commit_index {
            s.commit_index = leader_commit.min(index);
            self.apply_committed(id, s, o);
        }
        reply(s, true, index, o);
    }

    /// Figure 13, InstallSnapshot RPC, receiver implementation, steps 6-8.
    fn install_snapshot(&self, s: &mut ServerState, snapshot: Snapshot) {
        let (last_included_index, last_included_term) =
            (snapshot.last_included_index, snapshot.last_included_term);
        let data = snapshot.machine.clone();
        let keep_from = if self.bug == Some(RaftBug::SnapshotOffByOne) {
            last_included_index
        } else {
            last_included_index + 1
        };
        // 6. If an existing log entry has the same index and term as the snapshot's last included
        // entry, retain log entries following it; 7. otherwise discard the entire log.
        let entries = if s.log.term_at(last_included_index) == Some(last_included_term) {
            s.log.entries_from(keep_from).to_vec()
        } else {
            Vec::new()
        };
        s.log = Log { snapshot, entries };
        s.config = self.config_of(&s.log);
        // 8. Reset the state machine using snapshot contents.
        s.machine = (*data).clone();
        s.commit_index = last_included_index;
        s.last_applied = last_included_index;
    }

    /// "If there exists an N such that N > commitIndex, a majority of matchIndex[i] >= N, and
    /// log[N].term == currentTerm: set commitIndex = N" (Figure 2, rules for leaders; §5.4.2).
    /// The majority is of the configuration in effect (thesis §4.1), the leader counted only if
    /// it is in it (a leader that removes itself, §4.2.2). Then the configuration change moves
    /// on.
    fn advance_commit(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        let Role::Leader { match_index, .. } = &s.role else {
            return;
        };
        let mut n = s.log.last_index();
        while n > s.commit_index {
            let current = s.log.term_at(n) == Some(s.current_term)
                || self.bug == Some(RaftBug::CommitPreviousTerm);
            let replicas = usize::from(s.is_member(id))
                + (0..self.peers.len())
                    .filter(|p| s.is_member(self.peers[*p]) && match_index[*p] >= n)
                    .count();
            if current && replicas >= s.quorum() {
                s.commit_index = n;
                self.apply_committed(id, s, o);
                break;
            }
            n -= 1;
        }
        self.advance_change(id, s, o);
    }

    /// An administrator's AddServer or RemoveServer (thesis §4.1, Figure 4.1): NOT_LEADER from a
    /// server that does not lead; one change at a time (a second waits for its administrator
    /// to retry); OK at once when the configuration already has what is asked and is committed.
    #[allow(clippy::too_many_arguments)]
    fn on_change_request(
        &self,
        id: Id,
        s: &mut ServerState,
        src: Id,
        server: Id,
        add: bool,
        o: &mut Out<RaftActor>,
    ) {
        let reply = |ok, leader_hint, o: &mut Out<RaftActor>| {
            o.send(
                src,
                RaftMsg::ServerChangeReply {
                    server,
                    ok,
                    leader_hint,
                },
            )
        };
        let known = server == id || self.peers.contains(&server);
        let last = !add && s.config == [server];
        let latest = s.log.latest_config().map(|(i, _)| i);
        let Role::Leader { change, .. } = &mut s.role else {
            let leader_hint = match s.role {
                Role::Follower { leader } => leader,
                _ => None,
            };
            return reply(false, leader_hint, o);
        };
        // A server the cluster does not know, or the last one: refused, with this leader as
        // the hint.
        if !known || last {
            return reply(false, Some(id), o);
        }
        match change {
            // A retry: answered when the change commits.
            Some(c) if c.server == server && c.add == add => {
                c.admin = src;
                return;
            }
            Some(_) => return,
            None => {}
        }
        // The configuration already has what is asked: OK once it is committed.
        let index = (s.config.contains(&server) == add).then(|| latest.unwrap_or(0));
        *change = Some(PendingChange {
            admin: src,
            server,
            add,
            index,
        });
        self.advance_change(id, s, o);
        self.replicate(id, s, o);
    }

    /// Moves the leader's configuration change on. Before its entry: an added server must have
    /// caught up with the committed entries (§4.2.1), the previous configuration must be
    /// committed (one change at a time, §4.1), and an entry of the leader's term must be
    /// committed (the 2015 fix: its no-op); then it appends the new configuration, which takes
    /// effect at once. Once that entry commits, it answers the administrator, and a leader that
    /// removed itself steps down (§4.2.2).
    fn advance_change(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        let Role::Leader {
            change: Some(c),
            match_index,
            ..
        } = &s.role
        else {
            return;
        };
        match c.index {
            None => {
                let caught_up = !c.add
                    || self
                        .peers
                        .iter()
                        .position(|q| *q == c.server)
                        .is_some_and(|p| {
                            match_index[p] >= s.commit_index.max(1).min(s.log.last_index())
                        });
                let previous_committed = s
                    .log
                    .latest_config()
                    .is_none_or(|(i, _)| i <= s.commit_index);
                let term_committed = self.bug == Some(RaftBug::NoNoopBeforeChange)
                    || s.log.term_at(s.commit_index) == Some(s.current_term);
                if !(caught_up && previous_committed && term_committed) {
                    return;
                }
                let mut config = s.config.clone();
                if c.add {
                    config.push(c.server);
                    config.sort();
                } else {
                    config.retain(|x| *x != c.server);
                }
                s.log.entries.push(Entry {
                    term: s.current_term,
                    kind: EntryKind::Config(config.clone()),
                });
                s.config = config;
                let index = s.log.last_index();
                if let Role::Leader {
                    change: Some(c), ..
                } = &mut s.role
                {
                    c.index = Some(index);
                }
                self.persist(s, o);
                self.advance_commit(id, s, o);
                self.replicate(id, s, o);
            }
            Some(index) if index <= s.commit_index => {
                o.send(
                    c.admin,
                    RaftMsg::ServerChangeReply {
                        server: c.server,
                        ok: true,
                        leader_hint: Some(id),
                    },
                );
                if let Role::Leader { change, .. } = &mut s.role {
                    *change = None;
                }
                if !s.is_member(id) {
                    self.step_down(s, None, o);
                }
            }
            Some(_) => {}
        }
    }

    /// Sends each follower with no request in flight what it lacks: entries, a round of
    /// heartbeats for reads, or the new commit index. With heartbeats to every follower every
    /// interval, the commit index alone waits for the next heartbeat (or the next entries): a
    /// message of its own would hold the next client's entries back until its reply (one
    /// request in flight per follower), and only followers' state machines wait for it.
    fn replicate(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        for p in 0..self.peers.len() {
            if self.is_target(s, p) && !self.inflight(s, p) && self.behind(s, p) {
                let commit_only = matches!(&s.role, Role::Leader { match_index, round, acked, .. }
                    if match_index[p] >= s.log.last_index() && acked[p] >= *round);
                if commit_only && self.heartbeats == Heartbeats::Every {
                    continue;
                }
                self.send_append(id, s, p, o);
            }
        }
    }

    fn inflight(&self, s: &ServerState, p: usize) -> bool {
        matches!(&s.role, Role::Leader { inflight, .. } if inflight[p])
    }

    /// Applies committed entries in order; the leader answers their clients (§8), and the
    /// reads that waited for the state machine.
    fn apply_committed(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        while s.last_applied < s.commit_index {
            s.last_applied += 1;
            let Some(entry) = s.log.entry(s.last_applied) else {
                // Only the seeded bugs leave a committed index the log does not hold.
                s.last_applied = s.commit_index;
                break;
            };
            let Some(command) = entry.command().cloned() else {
                continue;
            };
            let ret = s.machine.apply(&command);
            if s.is_leader() {
                o.send(
                    command.client,
                    RaftMsg::Client(ClientMsg::Reply {
                        seq: command.seq,
                        ret,
                    }),
                );
            }
        }
        self.serve_reads(id, s, o);
    }

    /// The highest round of heartbeats a majority of the configuration (the leader included if
    /// it is in it) has acknowledged.
    fn confirmed_round(&self, id: Id, s: &ServerState) -> u64 {
        let Role::Leader { round, acked, .. } = &s.role else {
            return 0;
        };
        let mut rounds: Vec<u64> = (0..self.peers.len())
            .filter(|p| s.is_member(self.peers[*p]))
            .map(|p| acked[p])
            .chain(s.is_member(id).then_some(*round))
            .collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        rounds.get(s.quorum() - 1).copied().unwrap_or(0)
    }

    /// Answers the waiting reads whose round a majority has acknowledged and whose index the
    /// state machine has reached (thesis §6.4, steps 3 and 4).
    fn serve_reads(&self, id: Id, s: &mut ServerState, o: &mut Out<RaftActor>) {
        if !matches!(&s.role, Role::Leader { reads, .. } if !reads.is_empty()) {
            return;
        }
        let confirmed = self.confirmed_round(id, s);
        let Role::Leader { reads, .. } = &mut s.role else {
            return;
        };
        let (last_applied, machine) = (s.last_applied, &s.machine);
        reads.retain(|r| {
            let ready = r.round <= confirmed && r.index <= last_applied;
            if ready {
                let ret = machine.data.read(&r.op);
                o.send(
                    r.client,
                    RaftMsg::Client(ClientMsg::Reply { seq: r.seq, ret }),
                );
            }
            !ready
        });
    }

    /// A Get at the leader without the log (thesis §6.4). Its read index is the commit index, or
    /// the term's no-op if that is not committed yet (step 1: the leader must have committed an
    /// entry of its term). It starts a round of heartbeats (step 2).
    fn start_read(
        &self,
        id: Id,
        s: &mut ServerState,
        client: Id,
        seq: Seq,
        op: KvOp,
        o: &mut Out<RaftActor>,
    ) {
        // Until an entry of the term commits, the term's first entry (its no-op) is among the
        // uncommitted entries at the log's end: look back from the end only that far.
        let term_start = if s.log.term_at(s.commit_index) == Some(s.current_term) {
            0
        } else {
            (s.commit_index + 1..=s.log.last_index())
                .rev()
                .take_while(|k| s.log.term_at(*k) == Some(s.current_term))
                .last()
                .unwrap_or(0)
        };
        let index = s.commit_index.max(term_start);
        let leased = self.reads == Reads::Lease && self.holds_lease(id, s);
        let renewing = self.renewing(id, s);
        let Role::Leader {
            round,
            reads,
            leases,
            ..
        } = &mut s.role
        else {
            return;
        };
        // A retried request already waiting is answered once, when its round comes back.
        if reads.iter().any(|r| r.client == client && r.seq == seq) {
            return;
        }
        let needs = if self.bug == Some(RaftBug::ReadIndexWithoutHeartbeat) || leased {
            0
        } else {
            *round += 1;
            *round
        };
        // Without a lease (or a round that will give one), this read's round renews it.
        let renew = self.reads == Reads::Lease && !renewing && needs > 0;
        if renew {
            leases.push(needs);
        }
        reads.push(PendingRead {
            client,
            seq,
            op,
            index,
            round: needs,
            lease: leased,
        });
        if renew {
            let d = self.lease_duration();
            o.set_timer(RaftTimer::Lease(needs), d..d);
        }
        self.serve_reads(id, s, o);
        self.replicate(id, s, o);
    }

    /// Compacts the log into a snapshot once `snapshot_every` entries were applied since the last
    /// one (§7). Called when the server next handles an event, as a service snapshots in the
    /// background: the step that applies an entry does not also discard it.
    fn maybe_snapshot(&self, s: &mut ServerState, o: &mut Out<RaftActor>) {
        if self.snapshot_every > 0
            && s.last_applied >= s.log.first_index() + self.snapshot_every
            && s.log.term_at(s.last_applied).is_some()
        {
            s.log.compact(s.last_applied, s.machine.clone());
            self.persist(s, o);
        }
    }

    /// A client's command (§8): only the leader takes it; it appends it to its log unless the
    /// command is already applied (then it answers at once) or already in its log in this term.
    #[allow(clippy::too_many_arguments)]
    fn on_request(
        &self,
        id: Id,
        s: &mut ServerState,
        src: Id,
        client: Id,
        seq: Seq,
        op: KvOp,
        o: &mut Out<RaftActor>,
    ) {
        if !s.is_leader() {
            let leader_hint = match s.role {
                Role::Follower { leader } => leader,
                _ => None,
            };
            return o.send(
                src,
                RaftMsg::Client(ClientMsg::Redirect { seq, leader_hint }),
            );
        }
        if let Some(ret) = s.machine.applied(client, seq) {
            return o.send(
                src,
                RaftMsg::Client(ClientMsg::Reply {
                    seq,
                    ret: ret.clone(),
                }),
            );
        }
        if let (KvOp::Get(_), Reads::ReadIndex | Reads::Lease) = (&op, self.reads) {
            return self.start_read(id, s, src, seq, op, o);
        }
        // Already in the log in this term: it commits with it. An entry of an earlier term is
        // not enough: this leader commits it only once an entry of its own term commits (§5.4.2),
        // and without other clients none would come; append the command again (the session
        // table runs it once).
        let pending = s.log.entries_from(s.last_applied + 1).iter().any(|e| {
            e.term == s.current_term
                && e.command()
                    .is_some_and(|c| c.client == client && c.seq == seq)
        });
        if pending {
            return;
        }
        s.log.entries.push(Entry {
            term: s.current_term,
            kind: EntryKind::Command(Command { client, seq, op }),
        });
        self.persist(s, o);
        self.advance_commit(id, s, o);
        self.replicate(id, s, o);
    }
}

impl AdminCfg {
    fn request(&self) -> RaftMsg {
        if self.add {
            RaftMsg::AddServer {
                new_server: self.server,
            }
        } else {
            RaftMsg::RemoveServer {
                old_server: self.server,
            }
        }
    }

    pub fn start(&self, _id: Id, o: &mut Out<RaftActor>) -> AdminState {
        let s = AdminState {
            target: self.first,
            retries: 0,
            done: false,
        };
        o.send(self.servers[s.target], self.request());
        if self.max_retries > 0 {
            o.set_timer(RaftTimer::Retry, self.retry_timeout.clone());
        }
        s
    }

    /// OK ends it; NOT_LEADER with a hint sends the request to the hinted leader.
    pub fn on_msg(
        &self,
        _id: Id,
        s: &AdminState,
        src: Id,
        msg: RaftMsg,
        o: &mut Out<RaftActor>,
    ) -> Option<AdminState> {
        let RaftMsg::ServerChangeReply {
            server,
            ok,
            leader_hint,
        } = msg
        else {
            return None;
        };
        if s.done || server != self.server {
            return None;
        }
        if ok {
            o.cancel_timer(RaftTimer::Retry);
            return Some(AdminState { done: true, ..*s });
        }
        let target = leader_hint
            .filter(|l| *l != src)
            .and_then(|l| self.servers.iter().position(|x| *x == l))?;
        o.send(self.servers[target], self.request());
        Some(AdminState { target, ..*s })
    }

    /// A timeout sends the request to the next server.
    pub fn on_timeout(
        &self,
        _id: Id,
        s: &AdminState,
        timer: RaftTimer,
        o: &mut Out<RaftActor>,
    ) -> Option<AdminState> {
        if s.done || timer != RaftTimer::Retry {
            return None;
        }
        let next = AdminState {
            target: (s.target + 1) % self.servers.len(),
            retries: s.retries.saturating_add(1),
            done: false,
        };
        o.send(self.servers[next.target], self.request());
        if next.retries < self.max_retries {
            o.set_timer(RaftTimer::Retry, self.retry_timeout.clone());
        }
        Some(next)
    }
}

impl ClientCfg {
    fn send_current(&self, id: Id, s: &ClientState, o: &mut Out<RaftActor>) {
        let Some(op) = &s.op else { return };
        o.send(
            self.servers[s.target],
            RaftMsg::Client(ClientMsg::Request {
                client: id,
                seq: s.seq,
                op: op.clone(),
            }),
        );
    }

    /// Sends the current request and arms the retry timer (if retries are left).
    fn issue(&self, id: Id, s: &ClientState, o: &mut Out<RaftActor>) {
        self.send_current(id, s, o);
        if self.max_retries != Some(0) {
            o.set_timer(RaftTimer::Retry, self.retry_timeout.clone());
        }
    }

    pub fn start(&self, id: Id, o: &mut Out<RaftActor>) -> ClientState {
        // Clients spread over the servers to begin with.
        let s = ClientState {
            seq: 0,
            op: None,
            target: usize::from(id) % self.servers.len(),
            retries: 0,
        };
        if self.ops.is_empty() {
            return s;
        }
        self.next_op(id, s, o)
    }

    /// Moves on to the configuration's next operation, if any, and sends it.
    fn next_op(&self, id: Id, s: ClientState, o: &mut Out<RaftActor>) -> ClientState {
        let next = ClientState {
            seq: s.seq + 1,
            op: self.ops.get(s.seq as usize).cloned(),
            retries: 0,
            ..s
        };
        if next.op.is_none() {
            o.cancel_timer(RaftTimer::Retry);
            return ClientState { seq: s.seq, ..next };
        }
        self.issue(id, &next, o);
        next
    }

    /// The request in flight, if any.
    fn current_seq(&self, s: &ClientState) -> Option<Seq> {
        s.op.is_some().then_some(s.seq)
    }

    pub fn on_msg(
        &self,
        id: Id,
        s: &ClientState,
        src: Id,
        msg: RaftMsg,
        o: &mut Out<RaftActor>,
    ) -> Option<ClientState> {
        let RaftMsg::Client(msg) = msg else {
            return None;
        };
        match msg {
            // The driver's next operation; an unanswered one is abandoned (the driver gave up
            // on it; a server may still run it once).
            ClientMsg::Invoke { seq, op } if Some(src) == self.driver && seq > s.seq => {
                let next = ClientState {
                    seq,
                    op: Some(op),
                    retries: 0,
                    ..*s
                };
                self.issue(id, &next, o);
                Some(next)
            }
            ClientMsg::Reply { seq, ret } if Some(seq) == self.current_seq(s) => {
                let target = self.servers.iter().position(|x| *x == src)?;
                if let Some(driver) = self.driver {
                    o.send(driver, RaftMsg::Client(ClientMsg::Return { seq, ret }));
                }
                Some(self.next_op(
                    id,
                    ClientState {
                        target,
                        op: None,
                        ..*s
                    },
                    o,
                ))
            }
            // Redirected to the leader the server knows, or else to the next server.
            ClientMsg::Redirect { seq, leader_hint } if Some(seq) == self.current_seq(s) => {
                let target = leader_hint
                    .filter(|l| *l != src)
                    .and_then(|l| self.servers.iter().position(|x| *x == l))?;
                let next = ClientState {
                    target,
                    op: s.op.clone(),
                    ..*s
                };
                self.send_current(id, &next, o);
                Some(next)
            }
            _ => None,
        }
    }

    pub fn on_timeout(
        &self,
        id: Id,
        s: &ClientState,
        timer: RaftTimer,
        o: &mut Out<RaftActor>,
    ) -> Option<ClientState> {
        if timer != RaftTimer::Retry || self.current_seq(s).is_none() {
            return None;
        }
        let next = ClientState {
            target: (s.target + 1) % self.servers.len(),
            retries: s.retries.saturating_add(1),
            op: s.op.clone(),
            ..*s
        };
        self.send_current(id, &next, o);
        if self.max_retries.is_none_or(|m| next.retries < m) {
            o.set_timer(RaftTimer::Retry, self.retry_timeout.clone());
        }
        Some(next)
    }
}
