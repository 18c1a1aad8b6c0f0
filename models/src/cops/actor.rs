//! COPS's messages and actors: a data centre's store node (§4.3) and a client library (§4.2,
//! COPS-GT's `get_trans` §4.6). The same actors run in the model and over TCP.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// A value written: a number the writer picks, unique in a run (the jepsen workload's
/// operation id), so that a history knows which put each read saw.
pub type Value = u64;

use crate::client::{ClientMsg, RequestId};

/// A key, by number: `x`, `y`, `z`, then `k3`, `k4`, ...
pub type Key = u8;

/// The name of key `k`.
pub fn key_name(k: Key) -> String {
    match k {
        0 => "x".to_string(),
        1 => "y".to_string(),
        2 => "z".to_string(),
        _ => format!("k{k}"),
    }
}

/// A version: a Lamport timestamp and the data centre that wrote it (§4.1). Versions are
/// ordered by counter, then data centre: a total order that every data centre agrees on, and
/// last-writer-wins picks the greatest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Version {
    pub counter: u64,
    pub dc: u8,
}

impl Version {
    /// A unique positive number for the version, for `properties::causal` (0 is the initial
    /// value): `10 * counter + dc`, so that `3.1` reads as 31 (data centres are fewer than 10).
    pub fn number(self) -> u64 {
        10 * self.counter + u64::from(self.dc)
    }

    /// The version of [`Version::number`] `n`.
    pub fn from_number(n: u64) -> Version {
        Version {
            counter: n / 10,
            dc: (n % 10) as u8,
        }
    }
}

/// `3.1`: counter 3, data centre 1.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.counter, self.dc)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A dependency: a key and the version of it that must be visible first (§4.2).
pub type Dep = (Key, Version);

/// What the client library offers (§3.2, §4.6).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CopsOp {
    Put(Key, Value),
    Get(Key),
    /// COPS-GT's `get_trans(keys)`: a causally consistent snapshot of the keys.
    GetTrans(Vec<Key>),
}

/// A version read and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seen {
    pub version: Version,
    pub value: Value,
}

/// What an operation returned; `None` is the initial value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CopsRet {
    Put(Version),
    Get(Option<Seen>),
    GetTrans(Vec<(Key, Option<Seen>)>),
}

/// The messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CopsMsg {
    /// Client library to its local node (§4.2): write `key` after its nearest dependencies.
    /// `nearest` is what `dep_check` confirms at the other data centres; `deps` is every
    /// dependency, one version per key, stored with the value for `get_trans` (COPS-GT).
    PutAfter {
        seq: RequestId,
        key: Key,
        value: Value,
        deps: Vec<Dep>,
        nearest: Vec<Dep>,
    },
    /// The version the local node gave the put.
    PutAfterOk { seq: RequestId, version: Version },
    /// `get_by_version` (§4.6): the newest version (`None`) or a given one, with its
    /// dependencies. `round` is the round of `get_trans` it serves (1 for a plain get).
    GetByVersion {
        seq: RequestId,
        round: u8,
        key: Key,
        version: Option<Version>,
    },
    GetOk {
        seq: RequestId,
        round: u8,
        key: Key,
        seen: Option<Seen>,
        deps: Vec<Dep>,
    },
    /// Node to the other data centres' nodes (§4.3): a local put, replicated asynchronously
    /// with its version and dependencies.
    Replicate { key: Key, stored: Stored },
    /// A node to the node that replicated a put to it, over TCP: it has the put (a node resends
    /// what is not acknowledged, so a put lost in a partition arrives when it heals).
    ReplicateAck { key: Key, version: Version },
    /// A driver and its client library, over TCP.
    Client(ClientMsg<CopsOp, CopsRet>),
}

crate::seeded_bugs! {
    /// The seeded bugs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum CopsBug {
        /// Puts replicate without their dependencies: a remote data centre applies them at once.
        NoDeps = "no-deps",
        /// Versions are a node's own counter: no Lamport update on receipt and no data-centre
        /// tie break.
        WallClockVersions = "wall-clock-versions",
        /// `get_trans` returns its first round's results without the second round.
        SingleRoundGetTrans = "single-round-get-trans",
        /// Values are stored with their nearest dependencies only, as COPS (not COPS-GT) keeps
        /// them: `get_trans`'s second round misses a dependency of a dependency.
        NearestDepsGetTrans = "nearest-deps-get-trans",
        /// A put waiting for a dependency is not looked at again when the dependency arrives:
        /// it waits for good.
        NoWake = "no-wake",
    }
}

/// A data centre's store node. One node per data centre holds every key here; in COPS a
/// data centre's keys are partitioned over its nodes, and `dep_check` goes to the node of the
/// dependency's key (§4.3): with one node it is a local lookup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeCfg {
    pub dc: u8,
    /// The nodes of the other data centres.
    pub peers: Vec<Id>,
    /// Over TCP: acknowledge replicated puts, and resend unacknowledged ones at this interval.
    /// `None` in the model, whose links lose nothing.
    pub resend: Option<Duration>,
    pub bug: Option<CopsBug>,
}

/// A stored version, its dependencies (kept for `get_trans`) and its nearest ones (checked by
/// `dep_check`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stored {
    pub version: Version,
    pub value: Value,
    pub deps: Vec<Dep>,
    pub nearest: Vec<Dep>,
}

/// A node's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeState {
    /// The Lamport clock (§4.1).
    pub clock: u64,
    /// Every version applied here, per key, with its value and dependencies: COPS-GT keeps
    /// old versions for `get_by_version` (§4.6).
    pub versions: BTreeMap<(Key, Version), (Value, Vec<Dep>)>,
    /// The visible version of each key: last-writer-wins by version (§4.5, convergent
    /// conflict handling).
    pub current: BTreeMap<Key, Version>,
    /// Replicated puts waiting for `dep_check` to confirm a dependency (§4.3).
    pub pending: BTreeMap<(Key, Version), Stored>,
    /// For each dependency not yet here, the pending puts that wait for it.
    /// A set, so that the state does not depend on the order in which the puts arrived.
    pub waiting_for: BTreeMap<Dep, BTreeSet<(Key, Version)>>,
    /// Over TCP: local puts each peer has not acknowledged yet, oldest first.
    pub unacked: BTreeMap<Id, BTreeMap<Version, (Key, Stored)>>,
}

impl NodeState {
    /// `dep_check`: whether `dep`'s version has been applied here.
    pub fn has(&self, dep: &Dep) -> bool {
        self.versions.contains_key(dep)
    }

    /// Version `version` of `key` (the newest visible one for `None`), with its dependencies.
    pub fn get(&self, key: Key, version: Option<Version>) -> Option<(Seen, &[Dep])> {
        let version = version.or_else(|| self.current.get(&key).copied())?;
        let (value, deps) = self.versions.get(&(key, version))?;
        Some((
            Seen {
                version,
                value: *value,
            },
            deps,
        ))
    }
}

impl NodeCfg {
    /// Whether `incoming` replaces `current` under last-writer-wins.
    fn newer(&self, incoming: Version, current: Option<Version>) -> bool {
        match current {
            None => true,
            // The seeded bug: counters alone, and a tie keeps what is there.
            Some(c) if self.bug == Some(CopsBug::WallClockVersions) => incoming.counter > c.counter,
            Some(c) => incoming > c,
        }
    }

    /// Applies a version: stores it and makes it visible if it is newer.
    fn apply(&self, s: &mut NodeState, key: Key, stored: Stored) {
        if self.newer(stored.version, s.current.get(&key).copied()) {
            s.current.insert(key, stored.version);
        }
        s.versions
            .insert((key, stored.version), (stored.value, stored.deps));
    }

    /// Applies `key`'s version `stored` if `dep_check` finds its nearest dependencies here,
    /// and then every pending put that waited for it, and so on; otherwise it waits for the
    /// first missing one.
    fn arrive(&self, s: &mut NodeState, key: Key, stored: Stored) {
        let mut ready = vec![(key, stored)];
        while let Some((key, stored)) = ready.pop() {
            if let Some(missing) = stored.nearest.iter().find(|d| !s.has(d)).copied() {
                s.waiting_for
                    .entry(missing)
                    .or_default()
                    .insert((key, stored.version));
                s.pending.insert((key, stored.version), stored);
                continue;
            }
            let version = stored.version;
            self.apply(s, key, stored);
            if self.bug == Some(CopsBug::NoWake) {
                continue;
            }
            for waiting in s.waiting_for.remove(&(key, version)).unwrap_or_default() {
                let stored = s
                    .pending
                    .remove(&waiting)
                    .expect("a waiting put is pending");
                ready.push((waiting.0, stored));
            }
        }
    }

    /// Handles `msg` if it leaves the state as it is (a read, a put already here, an ack of
    /// nothing waiting) and says so; `false`: [`NodeCfg::on_msg`] must change the state.
    pub fn answer(&self, s: &NodeState, src: Id, msg: &CopsMsg, o: &mut Out<CopsActor>) -> bool {
        match msg {
            CopsMsg::GetByVersion {
                seq,
                round,
                key,
                version,
            } => {
                // A version asked for by number is here: the value that named it as a
                // dependency was applied only after it (§4.6). Otherwise, the newest.
                let found = s.get(*key, *version).or_else(|| s.get(*key, None));
                let (seen, deps) = match found {
                    Some((seen, deps)) => (Some(seen), deps.to_vec()),
                    None => (None, Vec::new()),
                };
                o.send(
                    src,
                    CopsMsg::GetOk {
                        seq: *seq,
                        round: *round,
                        key: *key,
                        seen,
                        deps,
                    },
                );
                true
            }
            CopsMsg::Replicate { key, stored } => {
                let known = s.has(&(*key, stored.version))
                    || s.pending.contains_key(&(*key, stored.version));
                if known && self.resend.is_some() {
                    o.send(
                        src,
                        CopsMsg::ReplicateAck {
                            key: *key,
                            version: stored.version,
                        },
                    );
                }
                known
            }
            CopsMsg::ReplicateAck { version, .. } => !s
                .unacked
                .get(&src)
                .is_some_and(|waiting| waiting.contains_key(version)),
            CopsMsg::PutAfter { .. } => false,
            _ => true,
        }
    }

    /// Handles a message that changes the state (see [`NodeCfg::answer`]).
    pub fn on_msg(&self, s: &mut NodeState, src: Id, msg: CopsMsg, o: &mut Out<CopsActor>) {
        match msg {
            // §4.2: a local put is applied at once (its dependencies were read or written here),
            // then replicated to the other data centres.
            CopsMsg::PutAfter {
                seq,
                key,
                value,
                deps,
                nearest,
            } => {
                s.clock += 1;
                let version = Version {
                    counter: s.clock,
                    dc: self.dc,
                };
                let (deps, nearest) = match self.bug {
                    Some(CopsBug::NoDeps) => (Vec::new(), Vec::new()),
                    Some(CopsBug::NearestDepsGetTrans) => (nearest.clone(), nearest),
                    _ => (deps, nearest),
                };
                let stored = Stored {
                    version,
                    value,
                    deps,
                    nearest,
                };
                self.apply(s, key, stored.clone());
                for peer in &self.peers {
                    o.send(
                        *peer,
                        CopsMsg::Replicate {
                            key,
                            stored: stored.clone(),
                        },
                    );
                    if self.resend.is_some() {
                        s.unacked
                            .entry(*peer)
                            .or_default()
                            .insert(version, (key, stored.clone()));
                    }
                }
                o.send(src, CopsMsg::PutAfterOk { seq, version });
            }
            // §4.3: the Lamport clock moves past every version received; the put waits until
            // `dep_check` finds each of its dependencies applied here.
            CopsMsg::Replicate { key, stored } => {
                let version = stored.version;
                if self.resend.is_some() {
                    o.send(src, CopsMsg::ReplicateAck { key, version });
                }
                if self.bug != Some(CopsBug::WallClockVersions) {
                    s.clock = s.clock.max(version.counter);
                }
                self.arrive(s, key, stored);
            }
            CopsMsg::ReplicateAck { version, .. } => {
                if let Some(waiting) = s.unacked.get_mut(&src) {
                    waiting.remove(&version);
                    if waiting.is_empty() {
                        s.unacked.remove(&src);
                    }
                }
            }
            _ => {}
        }
    }

    fn start(&self, o: &mut Out<CopsActor>) -> NodeState {
        if let Some(every) = self.resend {
            o.set_timer(CopsTimer::Resend, every..every);
        }
        NodeState::default()
    }

    /// Resends the oldest puts each peer has not acknowledged, at most [`RESEND_BATCH`] a
    /// peer at a time (after a long partition the rest follow at the next ticks).
    fn on_resend(&self, s: &NodeState, o: &mut Out<CopsActor>) {
        for (peer, puts) in &s.unacked {
            for (key, stored) in puts.values().take(RESEND_BATCH) {
                o.send(
                    *peer,
                    CopsMsg::Replicate {
                        key: *key,
                        stored: stored.clone(),
                    },
                );
            }
        }
        if let Some(every) = self.resend {
            o.set_timer(CopsTimer::Resend, every..every);
        }
    }
}

/// How many unacknowledged puts a node resends to a peer at each tick.
pub const RESEND_BATCH: usize = 256;

/// Timers: a node's resend, over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CopsTimer {
    Resend,
}

/// A client library: one session, attached to its data centre's node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    /// The local node.
    pub node: Id,
    /// The operations to run, in the model; over TCP a driver sends them.
    pub ops: Vec<CopsOp>,
    /// The driver, over TCP (`None` in the model).
    pub driver: Option<Id>,
    pub bug: Option<CopsBug>,
}

/// What a client library is waiting for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Waiting {
    Idle,
    Put,
    Get,
    /// `get_trans`: the keys asked for and each one's answer so far (§4.6).
    Trans {
        round: u8,
        keys: Vec<Key>,
        got: BTreeMap<Key, (Option<Seen>, Vec<Dep>)>,
        /// Round 2's answers still to come.
        missing: u8,
    },
}

/// A client library's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientState {
    /// The current request's number (from 1); 0 before the first.
    pub seq: RequestId,
    /// The operations done (the model's session history).
    pub done: Vec<(CopsOp, CopsRet)>,
    /// The context (COPS-GT, §4.2): every version the session depends on, the newest per key.
    pub context: Vec<Dep>,
    /// Its nearest dependencies: the versions no other in the context depends on (§4.2).
    pub nearest: Vec<Dep>,
    pub waiting: Waiting,
    /// The operation in progress.
    pub op: Option<CopsOp>,
}

impl ClientCfg {
    fn start(&self, o: &mut Out<CopsActor>) -> ClientState {
        let mut s = ClientState {
            seq: 0,
            done: Vec::new(),
            context: Vec::new(),
            nearest: Vec::new(),
            waiting: Waiting::Idle,
            op: None,
        };
        if self.driver.is_none() {
            if let Some(op) = self.ops.first().cloned() {
                self.invoke(&mut s, 1, op, o);
            }
        }
        s
    }

    /// Starts `op` as request `seq`.
    fn invoke(&self, s: &mut ClientState, seq: RequestId, op: CopsOp, o: &mut Out<CopsActor>) {
        s.seq = seq;
        s.op = Some(op.clone());
        match op {
            CopsOp::Put(key, value) => {
                s.waiting = Waiting::Put;
                o.send(
                    self.node,
                    CopsMsg::PutAfter {
                        seq,
                        key,
                        value,
                        deps: s.context.clone(),
                        nearest: s.nearest.clone(),
                    },
                );
            }
            CopsOp::Get(key) => {
                s.waiting = Waiting::Get;
                o.send(self.node, get(seq, 1, key, None));
            }
            // Round 1: the newest version of every key, at once (§4.6).
            CopsOp::GetTrans(keys) => {
                for k in &keys {
                    o.send(self.node, get(seq, 1, *k, None));
                }
                s.waiting = Waiting::Trans {
                    round: 1,
                    keys,
                    got: BTreeMap::new(),
                    missing: 0,
                };
            }
        }
    }

    /// `op` returned `ret`: remember it, tell the driver, start the next operation.
    fn finish(&self, s: &mut ClientState, ret: CopsRet, o: &mut Out<CopsActor>) {
        let op = s.op.take().expect("an operation is in progress");
        s.waiting = Waiting::Idle;
        match self.driver {
            Some(driver) => {
                o.send(
                    driver,
                    CopsMsg::Client(ClientMsg::Return { seq: s.seq, ret }),
                );
            }
            None => {
                s.done.push((op, ret));
                if let Some(next) = self.ops.get(s.done.len()).cloned() {
                    let seq = s.seq + 1;
                    self.invoke(s, seq, next, o);
                }
            }
        }
    }

    /// The session now depends on `dep` (§4.2): the context keeps the newest version per key.
    fn depend(context: &mut Vec<Dep>, (key, version): Dep) {
        match context.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = (*v).max(version),
            None => {
                context.push((key, version));
                context.sort();
            }
        }
    }

    /// A read of `key` at `version` with the value's dependencies `deps`: the value is a
    /// nearest dependency, and it and everything it depends on join the context.
    fn read(s: &mut ClientState, key: Key, seen: Option<Seen>, deps: &[Dep]) {
        let Some(Seen { version: v, .. }) = seen else {
            return;
        };
        Self::depend(&mut s.context, (key, v));
        for d in deps {
            Self::depend(&mut s.context, *d);
        }
        if !s.nearest.contains(&(key, v)) {
            s.nearest.push((key, v));
            s.nearest.sort();
        }
    }

    pub fn on_msg(
        &self,
        s: &ClientState,
        src: Id,
        msg: CopsMsg,
        o: &mut Out<CopsActor>,
    ) -> Option<ClientState> {
        match msg {
            CopsMsg::Client(ClientMsg::Invoke { seq, op })
                if Some(src) == self.driver && seq > s.seq =>
            {
                let mut s = s.clone();
                self.invoke(&mut s, seq, op, o);
                Some(s)
            }
            CopsMsg::PutAfterOk { seq, version } if seq == s.seq && s.waiting == Waiting::Put => {
                let mut s = s.clone();
                let Some(CopsOp::Put(key, _)) = s.op else {
                    return None;
                };
                // The put's version stands for everything before it (nearest dependencies).
                Self::depend(&mut s.context, (key, version));
                s.nearest = vec![(key, version)];
                self.finish(&mut s, CopsRet::Put(version), o);
                Some(s)
            }
            CopsMsg::GetOk {
                seq,
                round,
                key,
                seen,
                deps,
            } if seq == s.seq => {
                let mut s = s.clone();
                match &mut s.waiting {
                    Waiting::Get => {
                        Self::read(&mut s, key, seen, &deps);
                        self.finish(&mut s, CopsRet::Get(seen), o);
                    }
                    Waiting::Trans {
                        round: r,
                        keys,
                        got,
                        missing,
                    } if *r == round => {
                        got.insert(key, (seen, deps));
                        if round == 2 {
                            *missing -= 1;
                        }
                        let round1_done = round == 1 && got.len() == keys.len();
                        if round1_done && self.bug != Some(CopsBug::SingleRoundGetTrans) {
                            // §4.6: the causally correct version of each key is the newest of
                            // what round 1 read and what the values read depend on.
                            let mut ccv: BTreeMap<Key, Version> = BTreeMap::new();
                            for (k, (seen, ds)) in got.iter() {
                                if let Some(seen) = seen {
                                    let e = ccv.entry(*k).or_default();
                                    *e = (*e).max(seen.version);
                                }
                                for (dk, dv) in ds {
                                    if keys.contains(dk) {
                                        let e = ccv.entry(*dk).or_default();
                                        *e = (*e).max(*dv);
                                    }
                                }
                            }
                            let stale: Vec<(Key, Version)> = ccv
                                .into_iter()
                                .filter(|(k, v)| got[k].0.map(|g| g.version) < Some(*v))
                                .collect();
                            if !stale.is_empty() {
                                *r = 2;
                                *missing = stale.len() as u8;
                                for (k, v) in stale {
                                    o.send(self.node, get(seq, 2, k, Some(v)));
                                }
                                return Some(s);
                            }
                        }
                        if round1_done || (round == 2 && *missing == 0) {
                            let read: Vec<(Key, Option<Seen>)> =
                                keys.iter().map(|k| (*k, got[k].0)).collect();
                            let got = got.clone();
                            for (k, (v, deps)) in &got {
                                Self::read(&mut s, *k, *v, deps);
                            }
                            self.finish(&mut s, CopsRet::GetTrans(read), o);
                        }
                    }
                    _ => return None,
                }
                Some(s)
            }
            _ => None,
        }
    }
}

fn get(seq: RequestId, round: u8, key: Key, version: Option<Version>) -> CopsMsg {
    CopsMsg::GetByVersion {
        seq,
        round,
        key,
        version,
    }
}

/// A COPS actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CopsActor {
    Node(NodeCfg),
    Client(ClientCfg),
}

/// A COPS actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CopsState {
    Node(NodeState),
    Client(ClientState),
}

impl Actor for CopsActor {
    type Msg = CopsMsg;
    type Timer = CopsTimer;
    type State = CopsState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> CopsState {
        match self {
            CopsActor::Node(cfg) => CopsState::Node(cfg.start(o)),
            CopsActor::Client(cfg) => CopsState::Client(cfg.start(o)),
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<CopsState>,
        src: Id,
        msg: CopsMsg,
        o: &mut Out<Self>,
    ) {
        let next = match (self, &**state) {
            (CopsActor::Node(cfg), CopsState::Node(s)) => {
                if !cfg.answer(s, src, &msg, o) {
                    if let CopsState::Node(s) = state.to_mut() {
                        cfg.on_msg(s, src, msg, o);
                    }
                }
                return;
            }
            (CopsActor::Client(cfg), CopsState::Client(s)) => {
                cfg.on_msg(s, src, msg, o).map(CopsState::Client)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state.to_mut() = next;
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<CopsState>,
        _timer: &CopsTimer,
        o: &mut Out<Self>,
    ) {
        if let (CopsActor::Node(cfg), CopsState::Node(s)) = (self, &**state) {
            cfg.on_resend(s, o);
        }
    }
}
