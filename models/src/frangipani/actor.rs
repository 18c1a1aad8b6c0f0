//! The file servers, the lock server and Petal as stateright actors. Each takes its peers from
//! its configuration, never from indices.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use stateright::actor::{model_timeout, Actor, Id, Out};

/// A block's version number (§4): every update of a metadata block increments it, and its log
/// record carries the new number.
pub type Version = u32;

/// A block's contents in the model.
pub type Value = u8;

/// What a block holds: a [`Value`] in the model, a file's bytes over TCP (`tcp.rs`). The
/// actors only copy, compare and store it.
pub trait Contents: Clone + Debug + Default + Eq + Hash + Ord + Send + Sync + 'static {}

impl<T: Clone + Debug + Default + Eq + Hash + Ord + Send + Sync + 'static> Contents for T {}

/// Lease time, in ticks of the abstract clock (§6).
pub type Ticks = u8;

/// A lock's mode (§6): many readers or one writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mode {
    Read,
    Write,
}

/// What a file server's application asks of the block, in script order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op<V = Value> {
    /// Read the block (under a read lock).
    Read,
    /// Write the value (under the write lock); it completes when its log record is in Petal.
    Write(V),
}

impl<V> Op<V> {
    /// The lock mode the operation needs.
    pub fn mode(&self) -> Mode {
        match self {
            Op::Read => Mode::Read,
            Op::Write(_) => Mode::Write,
        }
    }
}

/// A record of a server's write-ahead log in Petal (§4): the update and the block's version
/// after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogRecord<V = Value> {
    pub version: Version,
    pub value: V,
}

/// The messages: the lock protocol (§6), Petal's block and log requests (§§2, 4), and recovery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FrangipaniMsg<V = Value> {
    /// Clerk to lock server: the server asks for the lock in `mode` (§6 "request").
    Request { mode: Mode },
    /// Lock server to clerk: the lock is held in `mode` (§6 "grant").
    Grant { mode: Mode },
    /// Lock server to clerk: another server asked for a conflicting mode; give the lock up down
    /// to `keep` (`Some(Read)`: downgrade, `None`: release) (§6 "revoke").
    Revoke { keep: Option<Mode> },
    /// Clerk to lock server: the server now holds only `keep` (§6 "release").
    Release { keep: Option<Mode> },
    /// Lock server to a live server's recovery demon: the server owning `log` has lost its
    /// lease; replay its log (§4).
    Recover { log: Id },
    /// Recovery demon to lock server: `log` is replayed (`applied` records written, `skipped`
    /// records not newer than the block); the failed server's locks can go (§4).
    Recovered { log: Id, applied: u32, skipped: u32 },
    /// A server to Petal: append `record` to the sender's log region (§4).
    AppendLog { record: LogRecord<V> },
    /// A server to Petal: write the block. `checked_lease` is the lease the server had when it
    /// checked it before the write (model only: Petal does no checking, §6; the model bounds
    /// the network delay with it). `replay`: written by a recovery demon replaying a log, with
    /// the block's version it read (model only, for the replay property).
    Write {
        version: Version,
        value: V,
        checked_lease: Ticks,
        replay: Option<(Id, Version)>,
    },
    /// Petal to a server: the write of `version` is done.
    WriteAck { version: Version, replay: bool },
    /// A server to Petal: read the block.
    Read,
    /// Petal to a server: the block.
    ReadReply { version: Version, value: V },
    /// A recovery demon to Petal: read `log`'s region and the block.
    ReadLog { log: Id },
    /// Petal to a recovery demon: `log`'s records and the block's version.
    LogReply {
        log: Id,
        records: Vec<LogRecord<V>>,
        version: Version,
    },
}

/// Timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrangipaniTimer {
    /// A file server's update demon writes dirty data back to Petal (§5: every 30 s).
    Sync,
    /// One tick of the abstract clock for a server cut off from the lock service: its lease runs
    /// down (a server in touch renews its lease in time, §6).
    LeaseTick,
    /// Model checking only: the server is cut off from the lock service for good, Petal still
    /// reachable (a zombie, §6).
    Cut,
    /// At the lock server: the lease of this server has expired (§6): its clock has run out, or
    /// it crashed.
    LeaseExpiry(Id),
}

crate::seeded_bugs! {
    /// The seeded bugs (pitfalls the paper warns about).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum FrangipaniBug {
        /// A revoked server gives the lock up without writing its dirty data to Petal or
        /// invalidating its cache (§5).
        ReleaseWithoutFlush = "release-without-flush",
        /// The recovery demon replays every log record, whatever the block's version (§4).
        ReplayWithoutVersion = "replay-without-version",
        /// A server checks only that its lease has not expired before a Petal write, without
        /// the margin (§6): a write delayed in the network lands after expiry.
        WriteAfterLeaseExpiry = "write-after-lease-expiry",
        /// The lock server grants a conflicting lock without revoking the holder's (§6).
        GrantWithoutRevoke = "grant-without-revoke",
        /// The lock server never reclaims the locks of a server whose lease expired (§6).
        NoLeaseExpiry = "no-lease-expiry",
    }
}

/// A file server's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerCfg<V = Value> {
    pub lock_server: Id,
    pub petal: Id,
    /// The operations it performs, in order.
    pub script: Vec<Op<V>>,
    /// A lease's length, in ticks (§6: 30 s).
    pub lease: Ticks,
    /// Petal writes need at least this much lease left beyond now (§6: 15 s).
    pub margin: Ticks,
    /// Model checking only: it may be cut off from the lock service (its `Cut` timer).
    pub may_cut: bool,
    pub bug: Option<FrangipaniBug>,
}

/// A cached copy of the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cached<V = Value> {
    pub version: Version,
    pub value: V,
    /// Changed in the cache, not yet written to Petal (its log record is).
    pub dirty: bool,
}

/// A file server: its clerk's locks (§6), its cache (§5), its application's progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerState<V = Value> {
    /// The lock as this server holds it. Invariant (§5): `lock != Some(Write)` implies the cache
    /// is clean, and `lock == None` implies nothing is cached.
    pub lock: Option<Mode>,
    /// Asked for, not yet granted.
    pub wanted: Option<Mode>,
    /// A revoke being served: the mode to keep.
    pub revoke: Option<Option<Mode>>,
    pub cache: Option<Cached<V>>,
    /// A write of the dirty block is on its way to Petal.
    pub flushing: bool,
    /// The next operation of the script.
    pub next_op: u8,
    /// The value the last read returned.
    pub last_read: Option<V>,
    /// Lease left, in ticks; full while the server is in touch with the lock service. At 0 it
    /// has discarded its locks and cache (§6).
    pub lease: Ticks,
    /// Cut off from the lock service (model only): it sends it nothing and ignores what comes.
    pub cut: bool,
}

/// The lock server's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockServerCfg {
    /// The file servers, in index order.
    pub servers: Vec<Id>,
    pub bug: Option<FrangipaniBug>,
}

/// The lock server's state (§6): one lock, that of the block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockServerState {
    /// What each server holds, as the lock server granted it.
    pub holders: Vec<Option<Mode>>,
    /// Requests not yet granted, first come first served: (server index, mode).
    pub queue: Vec<(usize, Mode)>,
    /// A revoke sent to this server and not yet answered.
    pub revoked: Vec<bool>,
    /// The server's lease expired: its log is being, or has been, recovered.
    pub expired: Vec<bool>,
}

/// Petal's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PetalCfg {
    /// The file servers, in index order: one log region each.
    pub servers: Vec<Id>,
}

/// Petal (§2): the block with its version, and one write-ahead log region per server (§4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PetalState<V = Value> {
    pub version: Version,
    pub value: V,
    pub logs: Vec<Vec<LogRecord<V>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FrangipaniActor<V = Value> {
    Server(ServerCfg<V>),
    LockServer(LockServerCfg),
    Petal(PetalCfg),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FrangipaniState<V = Value> {
    Server(ServerState<V>),
    LockServer(LockServerState),
    Petal(PetalState<V>),
}

impl<V: Contents> ServerCfg<V> {
    pub fn start(&self, o: &mut Out<FrangipaniActor<V>>) -> ServerState<V> {
        o.set_timer(FrangipaniTimer::Sync, model_timeout());
        if self.may_cut {
            o.set_timer(FrangipaniTimer::Cut, model_timeout());
            o.set_timer(FrangipaniTimer::LeaseTick, model_timeout());
        }
        let mut s = ServerState {
            lock: None,
            wanted: None,
            revoke: None,
            cache: None,
            flushing: false,
            next_op: 0,
            last_read: None,
            lease: self.lease,
            cut: false,
        };
        self.proceed(&mut s, o);
        s
    }

    /// §6: "a Frangipani server checks that its lease is still valid (and will still be valid
    /// for margin seconds) before attempting any write to Petal".
    pub fn may_write_petal(&self, s: &ServerState<V>) -> bool {
        if self.bug == Some(FrangipaniBug::WriteAfterLeaseExpiry) {
            s.lease > 0
        } else {
            s.lease > self.margin
        }
    }

    /// Runs the script as far as the locks and the cache allow (over TCP, `tcp.rs` calls it
    /// when a client's operation arrives).
    pub fn proceed(&self, s: &mut ServerState<V>, o: &mut Out<FrangipaniActor<V>>) {
        while let Some(op) = self.script.get(usize::from(s.next_op)).cloned() {
            // A server serving a revoke starts nothing new; one whose lease ran out is done.
            if s.revoke.is_some() || s.lease == 0 {
                return;
            }
            let need = op.mode();
            if s.lock < Some(need) {
                if s.wanted.is_none() && !s.cut {
                    s.wanted = Some(need);
                    o.send(self.lock_server, FrangipaniMsg::Request { mode: need });
                }
                return;
            }
            // Not cached: read it from Petal first (the reply comes at once).
            let Some(c) = s.cache.clone() else {
                o.send(self.petal, FrangipaniMsg::Read);
                return;
            };
            match op {
                Op::Read => s.last_read = Some(c.value),
                // §4: the update goes to the cache with the next version, and its log record to
                // the server's log in Petal (a Petal write: the lease is checked first).
                Op::Write(value) => {
                    if !self.may_write_petal(s) {
                        return;
                    }
                    let version = c.version + 1;
                    s.cache = Some(Cached {
                        version,
                        value: value.clone(),
                        dirty: true,
                    });
                    let record = LogRecord { version, value };
                    o.send(self.petal, FrangipaniMsg::AppendLog { record });
                }
            }
            s.next_op += 1;
        }
    }

    /// Writes the dirty block to Petal, if the lease allows.
    fn flush(&self, s: &mut ServerState<V>, o: &mut Out<FrangipaniActor<V>>) {
        if let Some(c) = s.cache.clone() {
            if c.dirty && !s.flushing && self.may_write_petal(s) {
                s.flushing = true;
                o.send(
                    self.petal,
                    FrangipaniMsg::Write {
                        version: c.version,
                        value: c.value,
                        checked_lease: s.lease,
                        replay: None,
                    },
                );
            }
        }
    }

    /// Serves a pending revoke (§5): dirty data goes to Petal first (1); a lock given up
    /// entirely takes the cached copy with it (2); then the release (3).
    fn try_release(&self, s: &mut ServerState<V>, o: &mut Out<FrangipaniActor<V>>) {
        let Some(keep) = s.revoke else {
            return;
        };
        if self.bug != Some(FrangipaniBug::ReleaseWithoutFlush) {
            if s.cache.as_ref().is_some_and(|c| c.dirty) {
                self.flush(s, o); // (1)
                return;
            }
            if keep.is_none() {
                s.cache = None; // (2)
            }
        }
        s.lock = s.lock.min(keep);
        s.revoke = None;
        o.send(self.lock_server, FrangipaniMsg::Release { keep: s.lock }); // (3)
        self.proceed(s, o);
    }

    pub fn on_msg(
        &self,
        s: &mut ServerState<V>,
        src: Id,
        msg: FrangipaniMsg<V>,
        o: &mut Out<FrangipaniActor<V>>,
    ) {
        if s.cut && src == self.lock_server {
            return;
        }
        match msg {
            FrangipaniMsg::Grant { mode } if s.lease > 0 => {
                s.lock = s.lock.max(Some(mode));
                s.wanted = None;
                self.proceed(s, o);
            }
            FrangipaniMsg::Revoke { keep } if s.lease > 0 => {
                s.revoke = Some(keep);
                self.try_release(s, o);
            }
            FrangipaniMsg::ReadReply { version, value } if s.cache.is_none() && s.lease > 0 => {
                s.cache = Some(Cached {
                    version,
                    value,
                    dirty: false,
                });
                self.proceed(s, o);
            }
            FrangipaniMsg::WriteAck {
                version,
                replay: false,
            } => {
                s.flushing = false;
                if let Some(c) = &mut s.cache {
                    if c.version == version {
                        c.dirty = false;
                    }
                }
                self.try_release(s, o);
            }
            // The recovery demon (§4): it reads the failed server's log and the block, and
            // replays each record whose version is newer than the block's.
            FrangipaniMsg::Recover { log } => {
                o.send(self.petal, FrangipaniMsg::ReadLog { log });
            }
            FrangipaniMsg::LogReply {
                log,
                records,
                version,
            } => {
                let (mut block, mut applied, mut skipped) = (version, 0, 0);
                for r in records {
                    if r.version > block || self.bug == Some(FrangipaniBug::ReplayWithoutVersion) {
                        o.send(
                            self.petal,
                            FrangipaniMsg::Write {
                                version: r.version,
                                value: r.value,
                                checked_lease: s.lease,
                                replay: Some((log, block)),
                            },
                        );
                        block = r.version;
                        applied += 1;
                    } else {
                        skipped += 1;
                    }
                }
                o.send(
                    self.lock_server,
                    FrangipaniMsg::Recovered {
                        log,
                        applied,
                        skipped,
                    },
                );
            }
            _ => {}
        }
    }

    pub fn on_timeout(
        &self,
        s: &mut ServerState<V>,
        timer: FrangipaniTimer,
        o: &mut Out<FrangipaniActor<V>>,
    ) {
        match timer {
            FrangipaniTimer::Sync => {
                self.flush(s, o);
                o.set_timer(FrangipaniTimer::Sync, model_timeout());
            }
            FrangipaniTimer::LeaseTick if s.cut && s.lease > 0 => {
                s.lease -= 1;
                if s.lease == 0 {
                    // §6: with its lease gone the server may use no lock and no cached data
                    // (its updates are in its log, for recovery).
                    s.lock = None;
                    s.wanted = None;
                    s.revoke = None;
                    s.cache = None;
                } else {
                    o.set_timer(FrangipaniTimer::LeaseTick, model_timeout());
                }
            }
            FrangipaniTimer::Cut => s.cut = true,
            _ => {}
        }
    }
}

impl LockServerCfg {
    fn index(&self, id: Id) -> Option<usize> {
        self.servers.iter().position(|s| *s == id)
    }

    pub fn start(&self, o: &mut Out<FrangipaniActor>) -> LockServerState {
        self.start_with(o)
    }

    /// [`LockServerCfg::start`] for blocks of any contents.
    pub fn start_with<V: Contents>(&self, o: &mut Out<FrangipaniActor<V>>) -> LockServerState {
        if self.bug != Some(FrangipaniBug::NoLeaseExpiry) {
            for id in &self.servers {
                o.set_timer(FrangipaniTimer::LeaseExpiry(*id), model_timeout());
            }
        }
        let n = self.servers.len();
        LockServerState {
            holders: vec![None; n],
            queue: Vec::new(),
            revoked: vec![false; n],
            expired: vec![false; n],
        }
    }

    /// Grants the requests at the head of the queue that conflict with no other holder; for the
    /// first that does, revokes the conflicting locks (§6).
    fn grant<V: Contents>(&self, s: &mut LockServerState, o: &mut Out<FrangipaniActor<V>>) {
        while let Some(&(i, mode)) = s.queue.first() {
            let conflicts: Vec<usize> = (0..self.servers.len())
                .filter(|j| *j != i)
                .filter(|j| s.holders[*j].is_some_and(|h| h == Mode::Write || mode == Mode::Write))
                .collect();
            if conflicts.is_empty() || self.bug == Some(FrangipaniBug::GrantWithoutRevoke) {
                s.holders[i] = s.holders[i].max(Some(mode));
                s.queue.remove(0);
                o.send(self.servers[i], FrangipaniMsg::Grant { mode });
                continue;
            }
            let keep = (mode == Mode::Read).then_some(Mode::Read);
            for j in conflicts {
                // A server whose lease expired loses its locks when recovery is done.
                if !s.revoked[j] && !s.expired[j] {
                    s.revoked[j] = true;
                    o.send(self.servers[j], FrangipaniMsg::Revoke { keep });
                }
            }
            return;
        }
    }

    pub fn on_msg<V: Contents>(
        &self,
        s: &mut LockServerState,
        src: Id,
        msg: FrangipaniMsg<V>,
        o: &mut Out<FrangipaniActor<V>>,
    ) {
        match msg {
            FrangipaniMsg::Request { mode } => {
                let Some(i) = self.index(src) else { return };
                if !s.expired[i] {
                    s.queue.push((i, mode));
                    self.grant(s, o);
                }
            }
            FrangipaniMsg::Release { keep } => {
                let Some(i) = self.index(src) else { return };
                if !s.expired[i] {
                    s.holders[i] = keep;
                    s.revoked[i] = false;
                    self.grant(s, o);
                }
            }
            // §4: the failed server's log is replayed; its locks can be given to others.
            FrangipaniMsg::Recovered { log, .. } => {
                let Some(i) = self.index(log) else { return };
                s.holders[i] = None;
                s.revoked[i] = false;
                s.queue.retain(|(j, _)| *j != i);
                self.grant(s, o);
            }
            _ => {}
        }
    }

    /// §6: a lease expired: a recovery demon on another server takes over the log (one at a
    /// time per log: the lock server asks one demon, once).
    pub fn on_timeout<V: Contents>(
        &self,
        s: &mut LockServerState,
        timer: FrangipaniTimer,
        o: &mut Out<FrangipaniActor<V>>,
    ) {
        let FrangipaniTimer::LeaseExpiry(id) = timer else {
            return;
        };
        let Some(i) = self.index(id) else { return };
        if s.expired[i] {
            return;
        }
        s.expired[i] = true;
        if let Some(demon) = (0..self.servers.len()).find(|j| !s.expired[*j]) {
            o.send(self.servers[demon], FrangipaniMsg::Recover { log: id });
        }
    }
}

impl PetalCfg {
    pub fn on_msg<V: Contents>(
        &self,
        s: &mut PetalState<V>,
        src: Id,
        msg: FrangipaniMsg<V>,
        o: &mut Out<FrangipaniActor<V>>,
    ) {
        match msg {
            FrangipaniMsg::AppendLog { record } => {
                if let Some(i) = self.servers.iter().position(|x| *x == src) {
                    s.logs[i].push(record);
                }
            }
            // §6: "Petal, however, does no checking when a write request arrives."
            FrangipaniMsg::Write {
                version,
                value,
                replay,
                ..
            } => {
                s.version = version;
                s.value = value;
                let replay = replay.is_some();
                o.send(src, FrangipaniMsg::WriteAck { version, replay });
            }
            FrangipaniMsg::Read => o.send(
                src,
                FrangipaniMsg::ReadReply {
                    version: s.version,
                    value: s.value.clone(),
                },
            ),
            FrangipaniMsg::ReadLog { log } => {
                if let Some(i) = self.servers.iter().position(|x| *x == log) {
                    o.send(
                        src,
                        FrangipaniMsg::LogReply {
                            log,
                            records: s.logs[i].clone(),
                            version: s.version,
                        },
                    );
                }
            }
            _ => {}
        }
    }
}

/// Steps `s` with `f` on a clone; the state changes only if the step changed it.
fn step<V: Contents, T: Clone + PartialEq>(
    state: &mut Cow<FrangipaniState<V>>,
    s: &T,
    wrap: fn(T) -> FrangipaniState<V>,
    f: impl FnOnce(&mut T),
) {
    let mut next = s.clone();
    f(&mut next);
    if next != *s {
        *state = Cow::Owned(wrap(next));
    }
}

impl<V: Contents> Actor for FrangipaniActor<V> {
    type Msg = FrangipaniMsg<V>;
    type Timer = FrangipaniTimer;
    type State = FrangipaniState<V>;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> FrangipaniState<V> {
        match self {
            FrangipaniActor::Server(cfg) => FrangipaniState::Server(cfg.start(o)),
            FrangipaniActor::LockServer(cfg) => FrangipaniState::LockServer(cfg.start_with(o)),
            FrangipaniActor::Petal(cfg) => FrangipaniState::Petal(PetalState {
                version: 0,
                value: V::default(),
                logs: vec![Vec::new(); cfg.servers.len()],
            }),
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<FrangipaniState<V>>,
        src: Id,
        msg: FrangipaniMsg<V>,
        o: &mut Out<Self>,
    ) {
        match (self, &**state) {
            (FrangipaniActor::Server(cfg), FrangipaniState::Server(s)) => {
                let s = s.clone();
                step(state, &s, FrangipaniState::Server, |n| {
                    cfg.on_msg(n, src, msg, o)
                })
            }
            (FrangipaniActor::LockServer(cfg), FrangipaniState::LockServer(s)) => {
                let s = s.clone();
                step(state, &s, FrangipaniState::LockServer, |n| {
                    cfg.on_msg(n, src, msg, o)
                })
            }
            (FrangipaniActor::Petal(cfg), FrangipaniState::Petal(s)) => {
                let s = s.clone();
                step(state, &s, FrangipaniState::Petal, |n| {
                    cfg.on_msg(n, src, msg, o)
                })
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<FrangipaniState<V>>,
        timer: &FrangipaniTimer,
        o: &mut Out<Self>,
    ) {
        match (self, &**state) {
            (FrangipaniActor::Server(cfg), FrangipaniState::Server(s)) => {
                let s = s.clone();
                step(state, &s, FrangipaniState::Server, |n| {
                    cfg.on_timeout(n, *timer, o)
                })
            }
            (FrangipaniActor::LockServer(cfg), FrangipaniState::LockServer(s)) => {
                let s = s.clone();
                step(state, &s, FrangipaniState::LockServer, |n| {
                    cfg.on_timeout(n, *timer, o)
                })
            }
            _ => {}
        }
    }
}
