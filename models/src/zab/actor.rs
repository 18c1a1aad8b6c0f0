//! Zab's messages and its server actor: discovery, synchronisation and broadcast (Zab §4,
//! Zab 1.0 as ZooKeeper runs it). Leader election is abstracted (see [`super::model`]): a
//! server leaves `Looking` through a `Lead` or `Follow` timer that the model allows only when
//! an election could have had that outcome.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// An epoch (a leader's term).
pub type Epoch = u8;
/// A transaction's id: (epoch, counter), ordered lexicographically (ZooKeeper's zxid).
pub type Zxid = (Epoch, u8);

/// The highest epoch a leader may propose (a bound of the model).
pub const MAX_EPOCH: Epoch = 2;

/// The messages, named as in ZooKeeper's `Leader`/`Learner` (Zab 1.0).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZabMsg {
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
        history: Vec<Zxid>,
    },
    /// Leader to follower: the new epoch's initial history; the follower's log becomes it
    /// (a DIFF, TRUNC or SNAP in ZooKeeper, as the logs differ).
    NewLeader {
        epoch: Epoch,
        history: Vec<Zxid>,
    },
    /// Follower to leader: it has logged the initial history (ACK of NEWLEADER).
    AckNewLeader {
        epoch: Epoch,
    },
    /// Leader to follower: a quorum has the initial history; deliver the first `committed`
    /// transactions of the log.
    UpToDate {
        epoch: Epoch,
        committed: u8,
    },
    Proposal {
        epoch: Epoch,
        zxid: Zxid,
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
    }
}

/// What a server keeps on disk: the epochs and its log (Zab §4: acceptedEpoch,
/// currentEpoch, history).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ZabDisk {
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    pub history: Vec<Zxid>,
}

impl ZabDisk {
    pub fn last_zxid(&self) -> Zxid {
        self.history.last().copied().unwrap_or((0, 0))
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
pub struct Leader {
    pub phase: Phase,
    /// The new epoch, once a quorum's FOLLOWERINFO fixed it (0 until then).
    pub epoch: Epoch,
    /// FOLLOWERINFO so far: each server's accepted epoch (itself included).
    pub infos: BTreeMap<Id, Epoch>,
    /// ACKEPOCH so far: each server's current epoch and log.
    pub ackepochs: BTreeMap<Id, (Epoch, Vec<Zxid>)>,
    /// Servers that acknowledged NEWLEADER (itself included).
    pub synced: BTreeSet<Id>,
    /// Followers sent NEWLEADER: they get the proposals from then on.
    pub forward: BTreeSet<Id>,
    /// Acknowledgements of each proposal not yet committed.
    pub acks: BTreeMap<Zxid, BTreeSet<Id>>,
}

/// A server's role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Looking,
    Following { leader: Id, phase: Phase },
    Leading(Box<Leader>),
}

/// A server's state: what it keeps on disk, how much of its log it has delivered (volatile:
/// a restarted server delivers again once it is synchronised), and its role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ZabState {
    pub disk: ZabDisk,
    /// The first `delivered` transactions of the log are delivered.
    pub delivered: u8,
    pub role: Role,
}

impl ZabState {
    /// The transactions this server has delivered, in order.
    pub fn delivered(&self) -> &[Zxid] {
        &self.disk.history[..usize::from(self.delivered)]
    }

    pub fn leader(&self) -> Option<&Leader> {
        match &self.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }
}

/// A server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZabActor {
    /// Every server of the ensemble, this one included.
    pub servers: Vec<Id>,
    pub bug: Option<ZabBug>,
}

/// How long a timer waits (only the runtime uses it; the model fires timers when allowed).
pub const TICK: Duration = Duration::from_millis(100);

impl ZabActor {
    pub fn quorum(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    fn look(&self, me: Id, o: &mut Out<Self>) -> Role {
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

    fn on_leader_msg(&self, me: Id, s: &mut ZabState, src: Id, msg: ZabMsg, o: &mut Out<Self>) {
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
                    if epoch > MAX_EPOCH {
                        s.role = self.look(me, o);
                        return;
                    }
                    l.epoch = epoch;
                    s.disk.accepted_epoch = epoch;
                    o.save(s.disk.clone());
                    l.ackepochs
                        .insert(me, (s.disk.current_epoch, s.disk.history.clone()));
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
                            history: s.disk.history.clone(),
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
                let key = |(e, h): &(Epoch, Vec<Zxid>)| (*e, h.last().copied().unwrap_or((0, 0)));
                let chosen = if self.bug == Some(ZabBug::SyncFromAny) {
                    l.ackepochs.values().min_by_key(|v| key(v))
                } else {
                    l.ackepochs.values().max_by_key(|v| key(v))
                }
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
                s.delivered =
                    common_prefix(&s.disk.history[..usize::from(s.delivered)], &chosen) as u8;
                s.disk.history = chosen;
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
                            history: s.disk.history.clone(),
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
                        s.delivered = s.disk.history.len() as u8;
                        let committed = s.delivered;
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
                            committed: s.delivered,
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
                while let Some(next) = s.disk.history.get(usize::from(s.delivered)).copied() {
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

    fn on_follower_msg(&self, me: Id, s: &mut ZabState, src: Id, msg: ZabMsg, o: &mut Out<Self>) {
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
                        history: s.disk.history.clone(),
                    },
                );
            }
            (ZabMsg::NewLeader { epoch, history }, Phase::Sync)
                if epoch == s.disk.accepted_epoch =>
            {
                let keep = common_prefix(s.delivered(), &history);
                s.disk.history = history;
                s.disk.current_epoch = epoch;
                s.delivered = if self.bug == Some(ZabBug::DiffUncommitted) {
                    s.disk.history.len() as u8
                } else {
                    keep as u8
                };
                o.save(s.disk.clone());
                o.send(src, ZabMsg::AckNewLeader { epoch });
            }
            (ZabMsg::UpToDate { epoch, committed }, Phase::Sync)
                if epoch == s.disk.current_epoch =>
            {
                *phase = Phase::Broadcast;
                let c = committed.min(s.disk.history.len() as u8);
                s.delivered = s.delivered.max(c);
            }
            (ZabMsg::Proposal { epoch, zxid }, Phase::Sync | Phase::Broadcast)
                if epoch == s.disk.current_epoch =>
            {
                s.disk.history.push(zxid);
                o.save(s.disk.clone());
                o.send(src, ZabMsg::Ack { epoch, zxid });
            }
            (ZabMsg::Commit { epoch, zxid }, Phase::Broadcast) if epoch == s.disk.current_epoch => {
                if let Some(i) = s.disk.history.iter().position(|z| *z == zxid) {
                    s.delivered = s.delivered.max(i as u8 + 1);
                }
            }
            _ => {}
        }
    }
}

/// The length of the longest common prefix.
pub fn common_prefix(a: &[Zxid], b: &[Zxid]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Actor for ZabActor {
    type Msg = ZabMsg;
    type State = ZabState;
    type Timer = ZabTimer;
    type Storage = ZabDisk;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<ZabDisk>, o: &mut Out<Self>) -> ZabState {
        ZabState {
            disk: storage.clone().unwrap_or_default(),
            delivered: 0,
            role: self.look(id, o),
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<ZabState>, src: Id, msg: ZabMsg, o: &mut Out<Self>) {
        let mut s = (**state).clone();
        match s.role {
            Role::Leading(_) => self.on_leader_msg(id, &mut s, src, msg, o),
            Role::Following { .. } => self.on_follower_msg(id, &mut s, src, msg, o),
            Role::Looking => {}
        }
        if s != **state {
            *state.to_mut() = s;
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<ZabState>, timer: &ZabTimer, o: &mut Out<Self>) {
        let mut s = (**state).clone();
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
            (ZabTimer::Propose, Role::Leading(l)) if l.phase == Phase::Broadcast => {
                let epoch = l.epoch;
                let n = s.disk.history.iter().filter(|z| z.0 == epoch).count() as u8;
                let zxid = (epoch, n + 1);
                s.disk.history.push(zxid);
                o.save(s.disk.clone());
                l.acks.insert(zxid, BTreeSet::from([id]));
                for f in l.forward.iter().copied() {
                    o.send(f, ZabMsg::Proposal { epoch, zxid });
                }
                o.set_timer(ZabTimer::Propose, TICK..TICK);
            }
            (ZabTimer::LeaderLost, Role::Following { .. })
            | (ZabTimer::QuorumLost, Role::Leading(_)) => {
                s.role = self.look(id, o);
            }
            _ => {}
        }
        if s != **state {
            *state.to_mut() = s;
        }
    }
}
