//! Zab's messages and its server actor: discovery, synchronisation and broadcast (Zab §4,
//! Zab 1.0 as ZooKeeper runs it). Leader election is abstracted (see [`super::model`]): a
//! server leaves `Looking` through a `Lead` or `Follow` timer that the model allows only when
//! an election could have had that outcome.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// An epoch (a leader's term).
pub type Epoch = u32;
/// A transaction's id: (epoch, counter), ordered lexicographically (ZooKeeper's zxid: the
/// epoch in the high 32 bits, the counter in the low 32).
pub type Zxid = (Epoch, u32);

/// What a server's log holds: the model's logs hold bare zxids; a running server's hold each
/// zxid with its transaction. Two entries with one zxid are one transaction (Zab §3: a zxid
/// names one proposal).
pub trait Entry:
    Clone + Debug + PartialEq + Eq + Hash + PartialOrd + Ord + Serialize + DeserializeOwned
{
    fn zxid(&self) -> Zxid;
    /// The entry a `Propose` timer proposes (the model's client write).
    fn noop(zxid: Zxid) -> Self;
}

impl Entry for Zxid {
    fn zxid(&self) -> Zxid {
        *self
    }
    fn noop(zxid: Zxid) -> Self {
        zxid
    }
}

/// The highest epoch a leader may propose (a bound of the model).
pub const MAX_EPOCH: Epoch = 2;

/// The messages, named as in ZooKeeper's `Leader`/`Learner` (Zab 1.0).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(bound = "E: Entry")]
pub enum ZabMsg<E = Zxid> {
    /// Follower to prospective leader: the epoch it last accepted (CEPOCH in the paper).
    FollowerInfo {
        accepted_epoch: Epoch,
    },
    /// Leader to follower: the new epoch (NEWEPOCH).
    LeaderInfo {
        epoch: Epoch,
    },
    /// Follower to leader: the epoch it is in and its log (ACK-E).
    AckEpoch {
        epoch: Epoch,
        current_epoch: Epoch,
        history: Vec<E>,
    },
    /// Leader to follower: the new epoch's initial history; the follower's log becomes it
    /// (a DIFF, TRUNC or SNAP in ZooKeeper, as the logs differ).
    NewLeader {
        epoch: Epoch,
        history: Vec<E>,
    },
    /// Follower to leader: it has logged the initial history (ACK of NEWLEADER).
    AckNewLeader {
        epoch: Epoch,
    },
    /// Leader to follower: a quorum has the initial history; deliver the log up to the
    /// transaction `committed` (the leader's last delivered; `(0, 0)`: none). A zxid, not a
    /// count, so that a leader that compacts its log (a running server's snapshot) still
    /// names the same transaction.
    UpToDate {
        epoch: Epoch,
        committed: Zxid,
    },
    Proposal {
        epoch: Epoch,
        proposal: E,
    },
    Ack {
        epoch: Epoch,
        zxid: Zxid,
    },
    Commit {
        epoch: Epoch,
        zxid: Zxid,
    },
}

/// The timers. `Lead` and `Follow` are the outcomes of the abstracted election; the others
/// fire when the model allows (a client's write, a lost leader, a lost quorum).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZabTimer {
    /// This server won an election.
    Lead,
    /// This server follows that one, which leads.
    Follow(Id),
    /// A client's write reaches this leader.
    Propose,
    /// A follower's leader is gone: back to the election.
    LeaderLost,
    /// A leader no longer has a quorum of followers: back to the election.
    QuorumLost,
}

crate::seeded_bugs! {
    /// The seeded bugs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ZabBug {
        /// The new leader takes its initial history from the member of its quorum with the
        /// lowest (currentEpoch, lastZxid) rather than the highest.
        SyncFromAny = "sync-from-any",
        /// A follower delivers the history a NEWLEADER brings at once, before the leader has
        /// a quorum for it (cf. ZOOKEEPER-3911).
        DiffUncommitted = "diff-uncommitted",
        /// The leader commits a proposal as soon as it has logged it, without waiting for a
        /// quorum of ACKs (ZooKeeper's `Leader.tryToCommit` waits for one).
        CommitWithoutQuorum = "commit-without-quorum",
    }
}

/// What a server keeps on disk: the epochs and its log (Zab §4: acceptedEpoch,
/// currentEpoch, history).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "E: Entry")]
pub struct ZabDisk<E: Clone = Zxid> {
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    /// A persistent vector: a running server copies its log into each save in O(1), where a
    /// `Vec` would cost O(log length) per write.
    pub history: im::Vector<E>,
}

impl<E: Clone> Default for ZabDisk<E> {
    fn default() -> Self {
        ZabDisk {
            accepted_epoch: 0,
            current_epoch: 0,
            history: im::Vector::new(),
        }
    }
}

impl<E: Entry> ZabDisk<E> {
    pub fn last_zxid(&self) -> Zxid {
        self.history.last().map_or((0, 0), Entry::zxid)
    }

    /// The vote a server casts for itself: (currentEpoch, lastZxid, id).
    pub fn vote(&self, id: Id) -> (Epoch, Zxid, usize) {
        (self.current_epoch, self.last_zxid(), usize::from(id))
    }
}

/// A phase of a leader or follower (Zab §4: discovery, synchronisation, broadcast).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    Discovery,
    Sync,
    Broadcast,
}

/// A leader's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "E: Entry")]
pub struct Leader<E = Zxid> {
    pub phase: Phase,
    /// The new epoch, once a quorum's FOLLOWERINFO fixed it (0 until then).
    pub epoch: Epoch,
    /// FOLLOWERINFO so far: each server's accepted epoch (itself included).
    pub infos: BTreeMap<Id, Epoch>,
    /// ACKEPOCH so far: each server's current epoch and log.
    pub ackepochs: BTreeMap<Id, (Epoch, Vec<E>)>,
    /// Servers that acknowledged NEWLEADER (itself included).
    pub synced: BTreeSet<Id>,
    /// Followers sent NEWLEADER: they get the proposals from then on.
    pub forward: BTreeSet<Id>,
    /// Acknowledgements of each proposal not yet committed.
    pub acks: BTreeMap<Zxid, BTreeSet<Id>>,
}

/// A server's role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "E: Entry")]
pub enum Role<E = Zxid> {
    Looking,
    Following { leader: Id, phase: Phase },
    Leading(Box<Leader<E>>),
}

/// A server's state: what it keeps on disk, how much of its log it has delivered (volatile:
/// a restarted server delivers again once it is synchronised), and its role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "E: Entry")]
pub struct ZabState<E: Clone = Zxid> {
    pub disk: ZabDisk<E>,
    /// The first `delivered` transactions of the log are delivered.
    pub delivered: u32,
    pub role: Role<E>,
}

impl<E: Clone> ZabState<E> {
    /// The transactions this server has delivered, in order.
    pub fn delivered(&self) -> impl Iterator<Item = &E> + '_ {
        self.disk.history.iter().take(self.delivered as usize)
    }

    pub fn leader(&self) -> Option<&Leader<E>> {
        match &self.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }
}

/// A server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZabActor<E = Zxid> {
    /// Every server of the ensemble, this one included.
    pub servers: Vec<Id>,
    pub bug: Option<ZabBug>,
    /// The highest epoch a leader may propose: [`MAX_EPOCH`] in the model, whose state space
    /// it bounds; a real ensemble lifts it ([`ZabActor::with_max_epoch`]).
    pub max_epoch: Epoch,
    entry: PhantomData<fn() -> E>,
}

/// How long a timer waits (only the runtime uses it; the model fires timers when allowed).
pub const TICK: Duration = Duration::from_millis(100);

impl<E: Entry> ZabActor<E> {
    pub fn new(servers: Vec<Id>, bug: Option<ZabBug>) -> Self {
        ZabActor {
            servers,
            bug,
            max_epoch: MAX_EPOCH,
            entry: PhantomData,
        }
    }

    /// The actor with leaders allowed to propose epochs up to `max_epoch`.
    pub fn with_max_epoch(self, max_epoch: Epoch) -> Self {
        ZabActor { max_epoch, ..self }
    }

    pub fn quorum(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    fn look(&self, me: Id, o: &mut Out<Self>) -> Role<E> {
        o.cancel_timer(ZabTimer::LeaderLost);
        o.cancel_timer(ZabTimer::QuorumLost);
        o.cancel_timer(ZabTimer::Propose);
        o.set_timer(ZabTimer::Lead, TICK..TICK);
        for s in &self.servers {
            if *s != me {
                o.set_timer(ZabTimer::Follow(*s), TICK..TICK);
            }
        }
        Role::Looking
    }

    fn stop_looking(&self, me: Id, o: &mut Out<Self>) {
        o.cancel_timer(ZabTimer::Lead);
        for s in &self.servers {
            if *s != me {
                o.cancel_timer(ZabTimer::Follow(*s));
            }
        }
    }

    fn others<'a>(
        &'a self,
        me: Id,
        set: impl IntoIterator<Item = &'a Id> + 'a,
    ) -> impl Iterator<Item = Id> + 'a {
        set.into_iter().copied().filter(move |s| *s != me)
    }

    fn on_leader_msg(
        &self,
        me: Id,
        s: &mut ZabState<E>,
        src: Id,
        msg: ZabMsg<E>,
        o: &mut Out<Self>,
    ) {
        let Role::Leading(l) = &mut s.role else {
            return;
        };
        match msg {
            ZabMsg::FollowerInfo { accepted_epoch } => {
                l.infos.insert(src, accepted_epoch);
                if l.epoch == 0 {
                    if l.infos.len() < self.quorum() {
                        return;
                    }
                    let epoch = l.infos.values().copied().max().unwrap_or(0) + 1;
                    if epoch > self.max_epoch {
                        s.role = self.look(me, o);
                        return;
                    }
                    l.epoch = epoch;
                    s.disk.accepted_epoch = epoch;
                    o.save(s.disk.clone());
                    l.ackepochs.insert(
                        me,
                        (
                            s.disk.current_epoch,
                            s.disk.history.iter().cloned().collect(),
                        ),
                    );
                    let to: Vec<Id> = self.others(me, l.infos.keys()).collect();
                    for f in to {
                        o.send(f, ZabMsg::LeaderInfo { epoch });
                    }
                } else {
                    o.send(src, ZabMsg::LeaderInfo { epoch: l.epoch });
                }
            }
            ZabMsg::AckEpoch {
                epoch,
                current_epoch,
                history,
            } if epoch == l.epoch => {
                if l.phase != Phase::Discovery {
                    // A late follower: synchronised with the log as it is now.
                    l.forward.insert(src);
                    o.send(
                        src,
                        ZabMsg::NewLeader {
                            epoch,
                            history: s.disk.history.iter().cloned().collect(),
                        },
                    );
                    return;
                }
                l.ackepochs.insert(src, (current_epoch, history));
                if l.ackepochs.len() < self.quorum() {
                    return;
                }
                // Zab §4, step l.1.2: the initial history is the log of the quorum member
                // with the highest (currentEpoch, lastZxid).
                let key = |(e, h): &(Epoch, Vec<E>)| (*e, h.last().map_or((0, 0), Entry::zxid));
                let chosen = if self.bug == Some(ZabBug::SyncFromAny) {
                    l.ackepochs.values().min_by_key(|v| key(v))
                } else {
                    l.ackepochs.values().max_by_key(|v| key(v))
                }
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
                s.delivered =
                    common_prefix(s.disk.history.iter().take(s.delivered as usize), &chosen) as u32;
                s.disk.history = chosen.into_iter().collect();
                s.disk.current_epoch = epoch;
                o.save(s.disk.clone());
                l.phase = Phase::Sync;
                l.synced.insert(me);
                let to: Vec<Id> = self.others(me, l.ackepochs.keys()).collect();
                for f in to {
                    l.forward.insert(f);
                    o.send(
                        f,
                        ZabMsg::NewLeader {
                            epoch,
                            history: s.disk.history.iter().cloned().collect(),
                        },
                    );
                }
            }
            ZabMsg::AckNewLeader { epoch } if epoch == l.epoch => {
                l.synced.insert(src);
                match l.phase {
                    Phase::Sync if l.synced.len() >= self.quorum() => {
                        // A quorum has the initial history: it is committed.
                        l.phase = Phase::Broadcast;
                        s.delivered = s.disk.history.len() as u32;
                        let committed = s.disk.last_zxid();
                        let to: Vec<Id> = self.others(me, l.synced.iter()).collect();
                        for f in to {
                            o.send(f, ZabMsg::UpToDate { epoch, committed });
                        }
                        o.set_timer(ZabTimer::Propose, TICK..TICK);
                    }
                    Phase::Broadcast => o.send(
                        src,
                        ZabMsg::UpToDate {
                            epoch,
                            committed: s.delivered().last().map_or((0, 0), Entry::zxid),
                        },
                    ),
                    _ => {}
                }
            }
            ZabMsg::Ack { epoch, zxid } if epoch == l.epoch => {
                if let Some(acks) = l.acks.get_mut(&zxid) {
                    acks.insert(src);
                }
                // Commit in order, each once a quorum has logged it.
                while let Some(next) = s.disk.history.get(s.delivered as usize).map(Entry::zxid) {
                    let quorum = l.acks.get(&next).is_some_and(|a| a.len() >= self.quorum());
                    if !quorum {
                        break;
                    }
                    l.acks.remove(&next);
                    s.delivered += 1;
                    let to: Vec<Id> = l.forward.iter().copied().collect();
                    for f in to {
                        o.send(f, ZabMsg::Commit { epoch, zxid: next });
                    }
                }
            }
            _ => {}
        }
    }

    fn on_follower_msg(
        &self,
        me: Id,
        s: &mut ZabState<E>,
        src: Id,
        msg: ZabMsg<E>,
        o: &mut Out<Self>,
    ) {
        let Role::Following { leader, phase } = &mut s.role else {
            return;
        };
        if src != *leader {
            return;
        }
        match (msg, *phase) {
            (ZabMsg::LeaderInfo { epoch }, Phase::Discovery) => {
                if epoch < s.disk.accepted_epoch {
                    s.role = self.look(me, o);
                    return;
                }
                if epoch > s.disk.accepted_epoch {
                    s.disk.accepted_epoch = epoch;
                    o.save(s.disk.clone());
                }
                *phase = Phase::Sync;
                o.send(
                    src,
                    ZabMsg::AckEpoch {
                        epoch,
                        current_epoch: s.disk.current_epoch,
                        history: s.disk.history.iter().cloned().collect(),
                    },
                );
            }
            (ZabMsg::NewLeader { epoch, history }, Phase::Sync)
                if epoch == s.disk.accepted_epoch =>
            {
                let keep = common_prefix(s.delivered(), &history);
                s.disk.history = history.into_iter().collect();
                s.disk.current_epoch = epoch;
                s.delivered = if self.bug == Some(ZabBug::DiffUncommitted) {
                    s.disk.history.len() as u32
                } else {
                    keep as u32
                };
                o.save(s.disk.clone());
                o.send(src, ZabMsg::AckNewLeader { epoch });
            }
            (ZabMsg::UpToDate { epoch, committed }, Phase::Sync)
                if epoch == s.disk.current_epoch =>
            {
                *phase = Phase::Broadcast;
                if let Some(i) = position(&s.disk.history, committed) {
                    s.delivered = s.delivered.max(i as u32 + 1);
                }
            }
            (ZabMsg::Proposal { epoch, proposal }, Phase::Sync | Phase::Broadcast)
                if epoch == s.disk.current_epoch =>
            {
                let zxid = proposal.zxid();
                s.disk.history.push_back(proposal);
                o.save(s.disk.clone());
                o.send(src, ZabMsg::Ack { epoch, zxid });
            }
            (ZabMsg::Commit { epoch, zxid }, Phase::Broadcast) if epoch == s.disk.current_epoch => {
                if let Some(i) = position(&s.disk.history, zxid) {
                    s.delivered = s.delivered.max(i as u32 + 1);
                }
            }
            _ => {}
        }
    }

    /// A leader in broadcast proposes the entry `make` builds with the next zxid of its epoch
    /// (Zab §4, phase 3): it logs it, counts its own acknowledgement and sends PROPOSAL to
    /// its followers. `None` unless this server leads an established epoch.
    pub fn propose(
        &self,
        me: Id,
        s: &mut ZabState<E>,
        make: impl FnOnce(Zxid) -> E,
        o: &mut Out<Self>,
    ) -> Option<Zxid> {
        let Role::Leading(l) = &mut s.role else {
            return None;
        };
        if l.phase != Phase::Broadcast {
            return None;
        }
        let epoch = l.epoch;
        let last = s.disk.last_zxid();
        let zxid = (epoch, if last.0 == epoch { last.1 + 1 } else { 1 });
        let proposal = make(zxid);
        s.disk.history.push_back(proposal.clone());
        o.save(s.disk.clone());
        l.acks.insert(zxid, BTreeSet::from([me]));
        for f in l.forward.iter().copied() {
            o.send(
                f,
                ZabMsg::Proposal {
                    epoch,
                    proposal: proposal.clone(),
                },
            );
        }
        if self.bug == Some(ZabBug::CommitWithoutQuorum)
            && s.delivered as usize + 1 == s.disk.history.len()
        {
            l.acks.remove(&zxid);
            s.delivered += 1;
            for f in l.forward.iter().copied() {
                o.send(f, ZabMsg::Commit { epoch, zxid });
            }
        }
        Some(zxid)
    }

    fn on_timer(&self, id: Id, s: &mut ZabState<E>, timer: &ZabTimer, o: &mut Out<Self>) {
        match (timer, &mut s.role) {
            (ZabTimer::Lead, Role::Looking) => {
                self.stop_looking(id, o);
                let mut infos = BTreeMap::new();
                infos.insert(id, s.disk.accepted_epoch);
                s.role = Role::Leading(Box::new(Leader {
                    phase: Phase::Discovery,
                    epoch: 0,
                    infos,
                    ackepochs: BTreeMap::new(),
                    synced: BTreeSet::new(),
                    forward: BTreeSet::new(),
                    acks: BTreeMap::new(),
                }));
                o.set_timer(ZabTimer::QuorumLost, TICK..TICK);
            }
            (ZabTimer::Follow(l), Role::Looking) => {
                self.stop_looking(id, o);
                s.role = Role::Following {
                    leader: *l,
                    phase: Phase::Discovery,
                };
                o.send(
                    *l,
                    ZabMsg::FollowerInfo {
                        accepted_epoch: s.disk.accepted_epoch,
                    },
                );
                o.set_timer(ZabTimer::LeaderLost, TICK..TICK);
            }
            (ZabTimer::Propose, Role::Leading(_)) => {
                let proposed = self.propose(id, s, E::noop, o);
                if proposed.is_some() {
                    o.set_timer(ZabTimer::Propose, TICK..TICK);
                }
            }
            (ZabTimer::LeaderLost, Role::Following { .. })
            | (ZabTimer::QuorumLost, Role::Leading(_)) => {
                s.role = self.look(id, o);
            }
            _ => {}
        }
    }
}

/// Where the transaction `zxid` is in a log: by binary search, as a log is in zxid order
/// (primary order), and by a scan should a seeded bug have broken that order.
fn position<E: Entry>(log: &im::Vector<E>, zxid: Zxid) -> Option<usize> {
    log.binary_search_by(|e| e.zxid().cmp(&zxid))
        .ok()
        .or_else(|| log.iter().position(|e| e.zxid() == zxid))
}

/// The length of the longest common prefix.
pub fn common_prefix<'a, E: PartialEq + 'a>(
    a: impl IntoIterator<Item = &'a E>,
    b: impl IntoIterator<Item = &'a E>,
) -> usize {
    a.into_iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<E: Entry> Actor for ZabActor<E> {
    type Msg = ZabMsg<E>;
    type State = ZabState<E>;
    type Timer = ZabTimer;
    type Storage = ZabDisk<E>;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<ZabDisk<E>>, o: &mut Out<Self>) -> ZabState<E> {
        ZabState {
            disk: storage.clone().unwrap_or_default(),
            delivered: 0,
            role: self.look(id, o),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<ZabState<E>>,
        src: Id,
        msg: ZabMsg<E>,
        o: &mut Out<Self>,
    ) {
        edit(state, |s| match s.role {
            Role::Leading(_) => self.on_leader_msg(id, s, src, msg, o),
            Role::Following { .. } => self.on_follower_msg(id, s, src, msg, o),
            Role::Looking => {}
        });
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<ZabState<E>>,
        timer: &ZabTimer,
        o: &mut Out<Self>,
    ) {
        edit(state, |s| self.on_timer(id, s, timer, o));
    }
}

/// Runs `f` on the state: in place when the caller owns it (a running node), else on a copy
/// kept only if `f` changed it (the checker lends its states, and an unchanged state must
/// stay borrowed for the step to count as a no-op).
fn edit<S: Clone + PartialEq>(state: &mut Cow<S>, f: impl FnOnce(&mut S)) {
    match state {
        Cow::Owned(s) => f(s),
        Cow::Borrowed(b) => {
            let mut s = (*b).clone();
            f(&mut s);
            if s != **b {
                *state = Cow::Owned(s);
            }
        }
    }
}
