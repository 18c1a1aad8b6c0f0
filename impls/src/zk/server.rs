//! A ZooKeeper server: the model's Zab actor ([`models::zab::ZabActor`]) with what the model
//! abstracts made real.
//!
//! - **Leader election** (ZooKeeper's `FastLeaderElection`, simplified): a looking server
//!   sends every peer a notification of its vote (currentEpoch, lastZxid, id) each tick and
//!   adopts any higher vote it hears. Once a quorum's latest votes (its own included) agree
//!   and the vote has not changed for [`SETTLE`] ticks (FLE's `finalizeWait`), it leads if the
//!   vote names it and follows the named server otherwise: the outcome the model allows, "a
//!   quorum picks the server with the highest (epoch, zxid)". A server that hears a leader
//!   report `LEADING` with enough followers that it and they make a quorum follows that
//!   leader at once (FLE's `outofelection` votes), which is how a restarted server rejoins.
//! - **Failure detection** (`syncLimit`): a leader pings its followers every tick and a
//!   follower answers; a follower that hears nothing from its leader for `limit` ticks goes
//!   back to the election (the model's `LeaderLost`), and so does a leader that hears fewer
//!   than a quorum for as long (`QuorumLost`), or that has not reached broadcast by then.
//! - **Client writes**: the server a client is connected to hands the write to the leader
//!   (ZooKeeper's `REQUEST` packet), which proposes it with [`ZabActor::propose`]; the model's
//!   `Propose` timer is not used.
//! - **Sessions** (ZooKeeper's `SessionTracker`): servers report the sessions their clients
//!   touched in their pings; the leader closes a session (a `closeSession` transaction) that
//!   nobody touched for its timeout.
//!
//! What a server delivers it applies, in zxid order, to its [`Db`]: the data tree, the client
//! connections waiting for the result, and their watches.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use models::zab::{
    Entry, Epoch, Phase, Role, ZabActor, ZabBug, ZabDisk, ZabMsg, ZabState, ZabTimer, Zxid,
};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use super::db::{Db, Write};
use super::tree::{Txn, TxnOp};

/// A transaction in a server's log: its zxid and the write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZkEntry {
    pub zxid: Zxid,
    pub txn: Arc<Write>,
}

// A zxid names one proposal (Zab §3), so entries compare by zxid alone.
impl PartialEq for ZkEntry {
    fn eq(&self, other: &Self) -> bool {
        self.zxid == other.zxid
    }
}
impl Eq for ZkEntry {}
impl PartialOrd for ZkEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ZkEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.zxid.cmp(&other.zxid)
    }
}
impl std::hash::Hash for ZkEntry {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.zxid.hash(h)
    }
}

impl ZkEntry {
    /// Whether this entry is a snapshot (only ever the first of a log).
    pub fn is_snapshot(&self) -> bool {
        matches!(self.txn.txn.op, TxnOp::Snapshot(_))
    }
}

impl Entry for ZkEntry {
    fn zxid(&self) -> Zxid {
        self.zxid
    }
    fn noop(zxid: Zxid) -> Self {
        ZkEntry {
            zxid,
            txn: Arc::new(Write {
                origin: NOBODY,
                xid: 0,
                txn: Txn {
                    session: 0,
                    time_ms: 0,
                    auth: Vec::new(),
                    op: TxnOp::Sync { path: "/".into() },
                },
            }),
        }
    }
}

/// The origin of a write no client waits for (a session the leader expires).
pub const NOBODY: usize = usize::MAX;

/// ZooKeeper's 64-bit zxid: the epoch in the high 32 bits, the counter in the low 32.
pub fn zxid64(z: Zxid) -> i64 {
    (i64::from(z.0) << 32) | i64::from(z.1)
}

/// A vote: (currentEpoch, lastZxid, server id); the highest wins.
pub type Vote = (Epoch, Zxid, usize);

/// What a server says of itself in a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following(usize),
    Leading,
}

/// The messages between servers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZkMsg {
    /// Zab itself: discovery, synchronisation, broadcast.
    Zab(ZabMsg<ZkEntry>),
    /// Leader election (FLE's notification): the sender's election round, vote and state.
    Notification {
        round: u64,
        vote: Vote,
        state: PeerState,
    },
    /// Leader to follower: still here, leading `epoch` (0 before it has chosen one). Follower
    /// to leader: still here, following in `epoch` (its acceptedEpoch), and the sessions this
    /// server's clients touched since its last ping.
    Ping { epoch: Epoch, touched: Vec<i64> },
    /// A client's write, from the server it is connected to, for the leader to propose.
    Request(Write),
    /// A write from this server's own client port (accepted only from itself).
    Local(Write),
    /// Zab's NEWLEADER as it travels (ZooKeeper's DIFF, TRUNC and SNAP): the follower keeps
    /// the first `keep` entries of its log, the last of which is `base`, and appends `tail`;
    /// the leader knows the follower's log from its ACKEPOCH. `keep` is 0 when they share
    /// nothing (the leader's log starts with a snapshot the follower lacks: a SNAP).
    NewLeaderDiff {
        epoch: Epoch,
        keep: u32,
        base: Zxid,
        tail: Vec<ZkEntry>,
    },
    /// From the node to itself: the connection with this peer ended (accepted only from
    /// itself). A follower whose leader's connection closes goes back to the election at once,
    /// as ZooKeeper's does when its socket to the leader breaks; a leader counts the follower
    /// as silent.
    PeerClosed(usize),
}

/// The one timer: everything runs on ticks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tick;

/// Ticks a vote must hold before a server acts on it (FLE's `finalizeWait`).
pub const SETTLE: u32 = 2;

/// A server's election state while it looks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Election {
    pub round: u64,
    pub vote: Option<Vote>,
    /// Ticks since the vote last changed.
    pub stable: u32,
    /// The latest vote of each looking peer in this round.
    pub votes: BTreeMap<Id, Vote>,
    /// What each peer out of the election reported: whom it follows or that it leads.
    pub out: BTreeMap<Id, PeerState>,
}

/// A server's state: Zab's, the election's, and the failure detector's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZkState {
    pub zab: ZabState<ZkEntry>,
    pub election: Election,
    /// Ticks since each peer was last heard from.
    pub silent: BTreeMap<Id, u32>,
    /// Ticks in the current role.
    pub ticks_in_role: u32,
    /// A leader's sessions: ticks since each was touched.
    pub idle: BTreeMap<i64, u32>,
    /// A leader's record of each learner's log (its zxids), from its ACKEPOCH: what a
    /// NEWLEADER to it need not carry.
    pub learners: BTreeMap<Id, Vec<Zxid>>,
}

/// A ZooKeeper server.
pub struct ZkServer {
    pub zab: ZabActor<ZkEntry>,
    /// How often a tick comes.
    pub tick: Duration,
    /// Ticks of silence after which a peer is lost (`syncLimit`).
    pub limit: u32,
    pub db: Arc<Mutex<Db>>,
    /// Delivered txns after which the log is compacted into a snapshot (ZooKeeper's
    /// `snapCount`); 0: never.
    pub snap_count: u64,
}

impl ZkServer {
    pub fn new(me: Id, servers: Vec<Id>, bug: Option<ZabBug>, tick: Duration, limit: u32) -> Self {
        ZkServer {
            // The model bounds epochs to keep its state space small; an ensemble runs for
            // as many elections as it needs (an epoch is ZooKeeper's 32 high bits of a zxid).
            zab: ZabActor::new(servers, bug).with_max_epoch(Epoch::MAX - 1),
            tick,
            limit,
            db: Arc::new(Mutex::new(Db::new(usize::from(me)))),
            snap_count: 0,
        }
    }

    /// Compacts the log every `snap_count` delivered txns (0: never).
    pub fn with_snap_count(mut self, snap_count: u64) -> Self {
        self.snap_count = snap_count;
        self
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().expect("db lock")
    }

    fn peers(&self, me: Id) -> impl Iterator<Item = Id> + '_ {
        self.zab.servers.iter().copied().filter(move |s| *s != me)
    }

    /// Runs one step of the Zab actor and carries out what it asked for: its messages and
    /// its storage; its timers are the model's abstractions, replaced here by ticks.
    fn zab_step(
        &self,
        me: Id,
        s: &mut ZkState,
        f: impl FnOnce(&ZabActor<ZkEntry>, &mut Cow<ZabState<ZkEntry>>, &mut Out<ZabActor<ZkEntry>>),
        o: &mut Out<Self>,
    ) {
        let before = role_name(&s.zab.role);
        let mut inner = Out::new();
        let mut cow = Cow::Owned(std::mem::replace(&mut s.zab, placeholder()));
        f(&self.zab, &mut cow, &mut inner);
        s.zab = cow.into_owned();
        for c in inner {
            match c {
                Command::Send(dst, ZabMsg::NewLeader { epoch, history }) => {
                    o.send(dst, diff(s.learners.get(&dst), epoch, history))
                }
                Command::Send(dst, m) => o.send(dst, ZkMsg::Zab(m)),
                Command::Save(d) => o.save(d),
                Command::SetTimer(..) | Command::CancelTimer(_) | Command::ChooseRandom(..) => {}
            }
        }
        if role_name(&s.zab.role) != before {
            self.entered(me, s, o);
        }
        self.deliver(s);
        self.compact(s, o);
    }

    /// Once more than `snap_count` delivered entries are in the log, replaces them with one
    /// snapshot entry (ZooKeeper's `SyncRequestProcessor` rolls its log and takes a snapshot
    /// every `snapCount` txns): the log on disk, a restart's replay and what a NEWLEADER
    /// carries are then bounded by the tree's size and `snap_count`, not by every txn ever
    /// made. Only in broadcast: a server synchronising takes its leader's log as it comes.
    /// The delivered prefix is committed, so every server that has those txns has that tree.
    fn compact(&self, s: &mut ZkState, o: &mut Out<Self>) {
        let delivered = s.zab.delivered as usize;
        if self.snap_count == 0
            || (delivered as u64) <= self.snap_count
            || phase(&s.zab.role) != Some(Phase::Broadcast)
        {
            return;
        }
        let mut db = self.db();
        let Some(last) = s.zab.disk.history.get(delivered - 1).map(Entry::zxid) else {
            return;
        };
        if db.applied() != delivered || db.last_applied() != Some(zxid64(last)) {
            return;
        }
        let snapshot = ZkEntry {
            zxid: last,
            txn: Arc::new(Write {
                origin: NOBODY,
                xid: 0,
                txn: Txn {
                    session: 0,
                    time_ms: now_ms(),
                    auth: Vec::new(),
                    op: TxnOp::Snapshot(db.snapshot()),
                },
            }),
        };
        let mut log = im::Vector::unit(snapshot);
        log.append(s.zab.disk.history.skip(delivered));
        s.zab.disk.history = log;
        s.zab.delivered = 1;
        db.compacted(1);
        tracing::info!(zxid = ?last, nodes = db.node_count(), "snapshot");
        o.save(s.zab.disk.clone());
    }

    /// A new role: reset the failure detector; a looking server starts a round.
    fn entered(&self, me: Id, s: &mut ZkState, o: &mut Out<Self>) {
        s.ticks_in_role = 0;
        s.silent.clear();
        s.idle.clear();
        s.learners.clear();
        if matches!(s.zab.role, Role::Looking) {
            s.election.round += 1;
            s.election.vote = Some(s.zab.disk.vote(me));
            s.election.stable = 0;
            s.election.votes.clear();
            s.election.out.clear();
            self.notify_all(me, s, o);
        }
    }

    /// Applies what Zab delivered since the last step to the data tree, and tells the client
    /// port whether it may serve (only in broadcast: ZooKeeper serves no clients while it
    /// looks or synchronises).
    fn deliver(&self, s: &ZkState) {
        let mut db = self.db();
        let log = &s.zab.disk.history;
        let delivered = (s.zab.delivered as usize).min(log.len());
        let applied = db.applied();
        if applied > delivered
            || db
                .last_applied()
                .is_some_and(|z| log.get(applied - 1).is_none_or(|e| zxid64(e.zxid) != z))
        {
            // A restart or a log that changed under the tree: rebuild it from the log.
            db.reset();
        }
        let from = db.applied();
        for i in from..delivered {
            let e = &log[i];
            db.apply(zxid64(e.zxid), &e.txn);
        }
        db.set_role(
            mode(&s.zab.role),
            phase(&s.zab.role) == Some(Phase::Broadcast),
        );
    }

    fn state_of(s: &ZkState) -> PeerState {
        match &s.zab.role {
            Role::Looking => PeerState::Looking,
            Role::Following { leader, .. } => PeerState::Following(usize::from(*leader)),
            Role::Leading(_) => PeerState::Leading,
        }
    }

    fn notification(s: &ZkState, me: Id) -> ZkMsg {
        ZkMsg::Notification {
            round: s.election.round,
            vote: s.election.vote.unwrap_or_else(|| s.zab.disk.vote(me)),
            state: Self::state_of(s),
        }
    }

    fn notify_all(&self, me: Id, s: &ZkState, o: &mut Out<Self>) {
        for p in self.peers(me) {
            o.send(p, Self::notification(s, me));
        }
    }

    fn on_notification(
        &self,
        me: Id,
        s: &mut ZkState,
        src: Id,
        (round, vote, state): (u64, Vote, PeerState),
        o: &mut Out<Self>,
    ) {
        if !matches!(s.zab.role, Role::Looking) {
            // Out of the election: tell a looking peer whom this server follows or leads.
            if state == PeerState::Looking {
                o.send(src, Self::notification(s, me));
            }
            return;
        }
        let e = &mut s.election;
        if state != PeerState::Looking {
            e.out.insert(src, state);
            e.votes.remove(&src);
            return;
        }
        e.out.remove(&src);
        if round > e.round {
            e.round = round;
            e.votes.clear();
            e.vote = Some(s.zab.disk.vote(me));
            e.stable = 0;
        } else if round < e.round {
            o.send(src, Self::notification(s, me));
            return;
        }
        e.votes.insert(src, vote);
        if Some(vote) > e.vote {
            e.vote = Some(vote);
            e.stable = 0;
            self.notify_all(me, s, o);
        }
    }

    /// A looking server's tick: notify, then decide if it can.
    fn election_tick(&self, me: Id, s: &mut ZkState, o: &mut Out<Self>) {
        self.notify_all(me, s, o);
        let quorum = self.zab.quorum();
        // A leader out of the election that this server and the leader's followers make a
        // quorum with.
        let leaders: Vec<Id> = s
            .election
            .out
            .iter()
            .filter(|(_, st)| **st == PeerState::Leading)
            .map(|(l, _)| *l)
            .collect();
        for l in leaders {
            let with = s
                .election
                .out
                .iter()
                .filter(|(p, st)| **p == l || **st == PeerState::Following(usize::from(l)))
                .count();
            if with + 1 >= quorum {
                self.zab_step(
                    me,
                    s,
                    |a, st, out| a.on_timeout(me, st, &ZabTimer::Follow(l), out),
                    o,
                );
                return;
            }
        }
        let e = &mut s.election;
        let Some(vote) = e.vote else { return };
        e.stable += 1;
        // Peers that voted the same, and peers already following the vote's server (they
        // decided first and left the election).
        let agree = 1
            + e.votes.values().filter(|v| **v == vote).count()
            + e.out
                .values()
                .filter(|st| **st == PeerState::Following(vote.2))
                .count();
        if agree < quorum || e.stable < SETTLE {
            return;
        }
        let timer = if vote.2 == usize::from(me) {
            ZabTimer::Lead
        } else {
            ZabTimer::Follow(Id::from(vote.2))
        };
        self.zab_step(me, s, |a, st, out| a.on_timeout(me, st, &timer, out), o);
    }

    /// A leader's or follower's tick: pings, the failure detector, and session expiry.
    fn role_tick(&self, me: Id, s: &mut ZkState, o: &mut Out<Self>) {
        s.ticks_in_role += 1;
        for t in s.silent.values_mut() {
            *t += 1;
        }
        let touched = self.db().take_touched();
        match &s.zab.role {
            Role::Following { leader, phase } => {
                let leader = *leader;
                if *phase == Phase::Discovery {
                    // The leader may have decided after this server did and missed its
                    // FOLLOWERINFO: a learner keeps trying to connect (ZooKeeper's
                    // `Learner.connectToLeader`).
                    let accepted_epoch = s.zab.disk.accepted_epoch;
                    o.send(leader, ZkMsg::Zab(ZabMsg::FollowerInfo { accepted_epoch }));
                }
                let epoch = s.zab.disk.accepted_epoch;
                o.send(leader, ZkMsg::Ping { epoch, touched });
                let silent = s.silent.get(&leader).copied().unwrap_or(s.ticks_in_role);
                if silent > self.limit {
                    self.zab_step(
                        me,
                        s,
                        |a, st, out| a.on_timeout(me, st, &ZabTimer::LeaderLost, out),
                        o,
                    );
                }
            }
            Role::Leading(l) => {
                let broadcast = l.phase == Phase::Broadcast;
                let epoch = l.epoch;
                let followers: Vec<Id> = self.peers(me).collect();
                for f in &followers {
                    o.send(
                        *f,
                        ZkMsg::Ping {
                            epoch,
                            touched: Vec::new(),
                        },
                    );
                }
                let heard = followers
                    .iter()
                    .filter(|f| s.silent.get(f).is_some_and(|t| *t <= self.limit))
                    .count();
                let lost = heard + 1 < self.zab.quorum() && s.ticks_in_role > self.limit;
                if lost || (!broadcast && s.ticks_in_role > 4 * self.limit) {
                    self.zab_step(
                        me,
                        s,
                        |a, st, out| a.on_timeout(me, st, &ZabTimer::QuorumLost, out),
                        o,
                    );
                    return;
                }
                if broadcast {
                    self.expire_sessions(me, s, touched, o);
                }
            }
            Role::Looking => {}
        }
    }

    /// The leader's session tracker: sessions touched are fresh; a session idle past its
    /// timeout is closed by a transaction (its ephemerals go with it).
    fn expire_sessions(&self, me: Id, s: &mut ZkState, touched: Vec<i64>, o: &mut Out<Self>) {
        let sessions = self.db().sessions();
        let tick_ms = self.tick.as_millis().max(1) as u64;
        s.idle.retain(|id, _| sessions.iter().any(|(s, _)| s == id));
        let mut expired = Vec::new();
        for (id, timeout_ms) in sessions {
            let idle = s.idle.entry(id).or_insert(0);
            *idle += 1;
            if u64::from(*idle) * tick_ms > timeout_ms.max(0) as u64 {
                expired.push(id);
                // Not again until the close is applied (or a later leader retries).
                *idle = 0;
            }
        }
        for id in touched {
            s.idle.insert(id, 0);
        }
        for session in expired {
            tracing::info!(session = format!("{session:#x}"), "session expired");
            let w = Write {
                origin: NOBODY,
                xid: 0,
                txn: Txn {
                    session,
                    time_ms: now_ms(),
                    auth: Vec::new(),
                    op: TxnOp::CloseSession,
                },
            };
            self.propose(me, s, w, o);
        }
    }

    fn propose(&self, me: Id, s: &mut ZkState, txn: Write, o: &mut Out<Self>) {
        let txn = Arc::new(txn);
        self.zab_step(
            me,
            s,
            |a, st, out| {
                a.propose(me, st.to_mut(), |zxid| ZkEntry { zxid, txn }, out);
            },
            o,
        );
    }
}

/// A NEWLEADER's history for a follower whose log's zxids are `learner` (from its ACKEPOCH):
/// what they share stays out of the message. Entries with one zxid are one transaction (Zab
/// §3), and a snapshot at a zxid is the tree after the transactions up to it.
fn diff(learner: Option<&Vec<Zxid>>, epoch: Epoch, mut history: Vec<ZkEntry>) -> ZkMsg {
    let Some(learner) = learner else {
        return ZkMsg::Zab(ZabMsg::NewLeader { epoch, history });
    };
    let keep = learner
        .iter()
        .zip(&history)
        .take_while(|(z, e)| **z == e.zxid)
        .count();
    let base = if keep == 0 { (0, 0) } else { learner[keep - 1] };
    ZkMsg::NewLeaderDiff {
        epoch,
        keep: keep as u32,
        base,
        tail: history.split_off(keep),
    }
}

/// The wall clock in milliseconds (a transaction's `time_ms`: znodes' ctime and mtime).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn placeholder() -> ZabState<ZkEntry> {
    ZabState {
        disk: ZabDisk::default(),
        delivered: 0,
        role: Role::Looking,
    }
}

fn role_name(r: &Role<ZkEntry>) -> (u8, Option<Id>) {
    match r {
        Role::Looking => (0, None),
        Role::Following { leader, .. } => (1, Some(*leader)),
        Role::Leading(_) => (2, None),
    }
}

/// The server's mode as `srvr` reports it.
fn mode(r: &Role<ZkEntry>) -> &'static str {
    match r {
        Role::Looking => "looking",
        Role::Following { .. } => "follower",
        Role::Leading(_) => "leader",
    }
}

fn phase(r: &Role<ZkEntry>) -> Option<Phase> {
    match r {
        Role::Looking => None,
        Role::Following { phase, .. } => Some(*phase),
        Role::Leading(l) => Some(l.phase),
    }
}

impl Actor for ZkServer {
    type Msg = ZkMsg;
    type State = ZkState;
    type Timer = Tick;
    type Storage = ZabDisk<ZkEntry>;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<Self::Storage>, o: &mut Out<Self>) -> ZkState {
        let mut inner = Out::new();
        let zab = self.zab.on_start(id, storage, &mut inner);
        let mut s = ZkState {
            zab,
            election: Election::default(),
            silent: BTreeMap::new(),
            ticks_in_role: 0,
            idle: BTreeMap::new(),
            learners: BTreeMap::new(),
        };
        self.entered(id, &mut s, o);
        o.set_timer(Tick, self.tick..self.tick);
        s
    }

    fn on_msg(&self, id: Id, state: &mut Cow<ZkState>, src: Id, msg: ZkMsg, o: &mut Out<Self>) {
        let s = state.to_mut();
        match msg {
            ZkMsg::Zab(m) => {
                s.silent.insert(src, 0);
                if let (ZabMsg::AckEpoch { history, .. }, Role::Leading(_)) = (&m, &s.zab.role) {
                    s.learners
                        .insert(src, history.iter().map(Entry::zxid).collect());
                }
                self.zab_step(id, s, |a, st, out| a.on_msg(id, st, src, m, out), o)
            }
            ZkMsg::NewLeaderDiff {
                epoch,
                keep,
                base,
                tail,
            } => {
                s.silent.insert(src, 0);
                let syncing = matches!(
                    s.zab.role,
                    Role::Following { leader, phase: Phase::Sync } if leader == src
                );
                if !syncing {
                    return;
                }
                let log = &s.zab.disk.history;
                let keep = keep as usize;
                let fits = keep <= log.len()
                    && (keep == 0 || log.get(keep - 1).map(Entry::zxid) == Some(base));
                if !fits {
                    // Not the log this server sent in its ACKEPOCH: start over.
                    tracing::warn!(
                        keep,
                        ?base,
                        "a DIFF that does not fit the log: back to the election"
                    );
                    self.zab_step(
                        id,
                        s,
                        |a, st, out| a.on_timeout(id, st, &ZabTimer::LeaderLost, out),
                        o,
                    );
                    return;
                }
                let history: Vec<ZkEntry> = log.iter().take(keep).cloned().chain(tail).collect();
                let m = ZabMsg::NewLeader { epoch, history };
                self.zab_step(id, s, |a, st, out| a.on_msg(id, st, src, m, out), o)
            }
            ZkMsg::Notification { round, vote, state } => {
                if state == PeerState::Looking
                    && matches!(s.zab.role, Role::Following { leader, .. } if leader == src)
                {
                    // The leader is back in the election (it restarted, or gave up): so is
                    // this follower, without waiting out its silence (ZooKeeper's follower
                    // sees the leader's socket close).
                    self.zab_step(
                        id,
                        s,
                        |a, st, out| a.on_timeout(id, st, &ZabTimer::LeaderLost, out),
                        o,
                    );
                }
                self.on_notification(id, s, src, (round, vote, state), o)
            }
            ZkMsg::Ping { epoch, touched } => {
                // Only a ping of the same incarnation of the epoch counts: a leader that
                // restarted and leads again, or a follower that left, is not heard.
                let live = match &s.zab.role {
                    Role::Following { leader, phase } => {
                        *leader == src
                            && (*phase == Phase::Discovery || epoch == s.zab.disk.accepted_epoch)
                    }
                    Role::Leading(l) => l.epoch == 0 || epoch == l.epoch,
                    Role::Looking => false,
                };
                if live {
                    s.silent.insert(src, 0);
                    if matches!(s.zab.role, Role::Leading(_)) {
                        for t in touched {
                            s.idle.insert(t, 0);
                        }
                    }
                }
            }
            ZkMsg::Request(txn) => {
                if matches!(s.zab.role, Role::Leading(_)) {
                    self.propose(id, s, txn, o);
                }
            }
            ZkMsg::Local(txn) if src == id => match &s.zab.role {
                Role::Leading(_) => self.propose(id, s, txn, o),
                Role::Following { leader, .. } => o.send(*leader, ZkMsg::Request(txn)),
                Role::Looking => {}
            },
            ZkMsg::PeerClosed(peer) if src == id => {
                let peer = Id::from(peer);
                match &s.zab.role {
                    Role::Following { leader, .. } if *leader == peer => {
                        tracing::info!(leader = peer.to_string(), "connection to the leader lost");
                        self.zab_step(
                            id,
                            s,
                            |a, st, out| a.on_timeout(id, st, &ZabTimer::LeaderLost, out),
                            o,
                        );
                    }
                    Role::Leading(_) => {
                        s.silent.insert(peer, self.limit + 1);
                    }
                    _ => {}
                }
            }
            ZkMsg::Local(_) | ZkMsg::PeerClosed(_) => {
                tracing::warn!(from = usize::from(src), "a peer sent a local request")
            }
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<ZkState>, _: &Tick, o: &mut Out<Self>) {
        let s = state.to_mut();
        match s.zab.role {
            Role::Looking => self.election_tick(id, s, o),
            _ => self.role_tick(id, s, o),
        }
        o.set_timer(Tick, self.tick..self.tick);
    }
}

/// The server's role in words, for logs and `cluster status`.
pub fn describe(s: &ZkState) -> String {
    match &s.zab.role {
        Role::Looking => "looking".into(),
        Role::Following { leader, phase } => {
            format!("follower of {} ({phase:?})", usize::from(*leader))
        }
        Role::Leading(l) if l.phase == Phase::Broadcast => format!("leader of epoch {}", l.epoch),
        Role::Leading(l) => format!("leading epoch {} ({:?})", l.epoch, l.phase),
    }
}
