//! Frangipani as real nodes: the model's file servers, lock server and Petal, run once per file,
//! with what the model abstracts away made real: named files, operations from clients, lease
//! renewal on a clock, Petal on disk, and the lock server's detection of an expired lease. The
//! runtime (`impls/src/frangipani.rs`) runs these actors over TCP; the model never builds them,
//! so its state space is unchanged.
//!
//! - **One model per file.** A file is one block keyed by its name, with one lock (§6). Each
//!   node keeps, for every file, the model's own state ([`ServerState`], [`LockServerState`],
//!   [`PetalState`]) and steps it with the model's own code ([`ServerCfg`], [`LockServerCfg`],
//!   [`PetalCfg`]); their messages travel wrapped in [`NodeMsg::File`] with the file's name.
//!   Locking, caching, the write-ahead log, the version check of a replay and the lease check
//!   before a Petal write are the model's, unchanged. A file's log records go to its own log
//!   region of the server (the model's one-block log, once per file).
//! - **Operations from clients.** A file server's script is the file's queue of client
//!   operations: the model runs the first (`proceed`), and when it completes the server answers
//!   the client and starts the next. A read answers with the cached value; a write is
//!   acknowledged once Petal says its log record is on disk ([`NodeMsg::Logged`]), the model's
//!   "a write completes when its record is in Petal" (§4).
//! - **Leases** (§6). A file server's clerk sends [`NodeMsg::Renew`] every lease tick
//!   ([`Timing::tick`]); the lock server answers and sets that server's expiry timer to a lease
//!   and a tick. The server counts its lease down a tick at a time from a tick short of full
//!   at each answer, so its lease runs out before the lock server's view of it; the margin
//!   ([`Timing::margin`] ticks, half the lease as in the paper) covers a write's delay in the
//!   network. With no renewal for a lease, the lock server finds the lease expired and asks the
//!   other server's recovery demon to replay the failed server's log, file by file (the model's
//!   `LeaseExpiry`). A server whose lease runs out discards its locks and cache and serves no
//!   more (the model's cut server at zero); a server refused a renewal does the same.
//! - **Coming back.** A restarted file server's first renewal says it is fresh. If the lock
//!   server still counts locks for it (it died and came back within a lease), that renewal is
//!   its lease's end: recovery starts at once, so its dirty data, lost with its cache, is
//!   replayed from its log. Once every file of its log is recovered it may join again.
//! - **Petal** keeps its blocks and logs in the node's durable store: the runtime writes them
//!   to disk before it sends the step's messages, so a log record is on disk before its
//!   `Logged` leaves, and a restarted Petal has them all.
//!
//! Not here: directories (`ls` lists the files Petal has a block or a log record for), log
//! trimming, a replicated lock service (the lock server keeps its state in memory), and the
//! recovery of a log when no other file server is up.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use super::actor::{
    FrangipaniActor, FrangipaniBug, FrangipaniMsg, FrangipaniTimer, LockServerCfg, LockServerState,
    LogRecord, Op, PetalCfg, PetalState, ServerCfg, ServerState, Ticks, Version,
};
use crate::client::{ClientMsg, RequestId};

/// A file's name: its block's key.
pub type FileName = String;

/// A file's contents.
pub type Data = String;

/// An operation of the file API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileOp {
    /// Replace the file's contents.
    Write { name: FileName, data: Data },
    /// The file's contents (empty for a file never written).
    Read { name: FileName },
    /// The files there are.
    Ls,
}

/// A client's call: `op` at file server `server` (its index: 0 is `a`, 1 is `b`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileCall {
    pub server: usize,
    pub op: FileOp,
}

/// What a file operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileRet {
    /// The write is in the server's log in Petal (§4): it survives the server.
    Written,
    /// The contents read.
    Data(Data),
    /// The files, by name.
    Names(Vec<FileName>),
    /// Not done, and why (a definite failure: the operation had no effect).
    Refused(String),
}

/// The messages between nodes, and with clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeMsg {
    /// One file's share of the model's protocol: its lock, its block, its log.
    File {
        name: FileName,
        msg: FrangipaniMsg<Data>,
    },
    /// Clerk to lock server: renew this server's lease (§6). `fresh`: the first renewal since
    /// the server started.
    Renew { fresh: bool },
    /// Lock server to clerk: the lease is renewed, or refused (it expired: the server's log is
    /// recovered by another, and the server must start again).
    Renewed { ok: bool },
    /// Petal to a file server: `name`'s log record of `version` is on disk.
    Logged { name: FileName, version: Version },
    /// A file server to Petal: the files' names, for `client`'s request `seq`.
    List { client: Id, seq: RequestId },
    /// Petal to a file server: the names.
    Names {
        client: Id,
        seq: RequestId,
        names: Vec<FileName>,
    },
    /// A file server to Petal, until Petal answers (at the start, and after Petal's
    /// connection closed): a message sent on a connection whose other end died is lost.
    Ping,
    /// Petal to a file server: here.
    Pong,
    /// The runtime to a node: the connection with `peer` has closed.
    PeerClosed { peer: Id },
    /// The client envelope: a driver's operations, a client's requests, the answers.
    Client(ClientMsg<FileCall, FileRet>),
}

/// Timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeTimer {
    /// A file server: one tick of its lease's clock; its clerk renews the lease (§6).
    LeaseTick,
    /// A file server's update demon writes dirty data back to Petal (§5).
    Sync,
    /// The lock server: this server's lease expired, no renewal for a lease's length (§6).
    LeaseExpiry(Id),
    /// A client: send the request again.
    Retry,
}

/// The real durations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// A lease tick: a clerk renews its lease this often.
    pub tick: Duration,
    /// A lease's length, in ticks (§6: 30 s).
    pub lease: Ticks,
    /// The lease a Petal write needs left, in ticks (§6: 15 s).
    pub margin: Ticks,
    /// The update demon's period (§5: 30 s).
    pub sync: Duration,
}

/// A node: a file server, the lock server, Petal, or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FrangipaniNode {
    /// A file server: the model's server, its script the running client operation.
    FileServer {
        model: ServerCfg<Data>,
        timing: Timing,
    },
    /// The lock server: the model's, once per file; `servers` are the file servers.
    LockServer {
        model: LockServerCfg,
        timing: Timing,
    },
    /// Petal: the model's, once per file.
    Petal { model: PetalCfg },
    /// A client of the file servers (by index), driven by `driver`; it sends a request
    /// again every `retry` until it hears back.
    Client {
        servers: Vec<Id>,
        driver: Id,
        retry: Duration,
    },
}

/// A file at a file server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileState {
    /// The model's server state for this file's block and lock.
    pub model: ServerState<Data>,
    /// Client operations on this file, oldest first; the first is the one running.
    pub pending: VecDeque<(Id, RequestId, Op<Data>)>,
    /// Writes done in the cache and logged, waiting for Petal's `Logged`: (record, client,
    /// request).
    pub unlogged: Vec<(LogRecord<Data>, Id, RequestId)>,
}

/// A file server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileServerState {
    pub files: BTreeMap<FileName, FileState>,
    /// Lease left, in ticks.
    pub lease: Ticks,
    /// The lock server has accepted this server (a first renewal answered).
    pub joined: bool,
    /// The lease ran out or was refused: locks and cache are gone, the server serves no more.
    pub lost: bool,
    /// Logs this server's recovery demon replayed: records applied, by the log's server.
    pub replayed: BTreeMap<usize, u32>,
    /// Petal has answered a ping since its connection last closed (it may have restarted).
    pub petal_up: bool,
    /// The recovery demon's log reads awaiting Petal's answer: (file, log).
    pub demon: BTreeSet<(FileName, Id)>,
    pub sessions: Sessions,
}

impl FileServerState {
    /// Whether the server runs operations: the lock server and Petal have answered, and the
    /// lease has not run out.
    pub fn ready(&self) -> bool {
        self.joined && self.petal_up && !self.lost
    }
}

/// The lock server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockServiceState {
    /// The model's lock server state, one per file (one lock each).
    pub locks: BTreeMap<FileName, LockServerState>,
    /// By file server: its lease runs (it renewed since it joined).
    pub renewed: Vec<bool>,
    /// By file server: its lease expired and its log is not yet all recovered.
    pub expired: Vec<bool>,
    /// By file server: the files whose log replay is under way.
    pub recovering: Vec<BTreeSet<FileName>>,
    /// Logs recovered so far, by file server.
    pub recoveries: Vec<u32>,
}

/// What Petal keeps on disk: each file's block and log regions.
pub type PetalBlocks = BTreeMap<FileName, PetalState<Data>>;

/// A node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    FileServer(FileServerState),
    LockServer(LockServiceState),
    Petal(PetalBlocks),
    /// The call under way.
    Client(Option<(RequestId, FileCall)>),
}

/// Runs a model step on a scratch `Out`, and passes its messages on wrapped with the file's
/// name; the model's timers are the node's own business (the node has timers of its own).
fn wrapped(
    name: &str,
    o: &mut Out<FrangipaniNode>,
    step: impl FnOnce(&mut Out<FrangipaniActor<Data>>),
) {
    let mut inner = Out::new();
    step(&mut inner);
    for c in inner {
        if let Command::Send(dst, msg) = c {
            o.send(
                dst,
                NodeMsg::File {
                    name: name.to_string(),
                    msg,
                },
            );
        }
    }
}

/// Each client's last request at a file server, and its answer once there is one.
pub type Sessions = BTreeMap<Id, (RequestId, Option<FileRet>)>;

/// Answers `client`'s request `seq`, and keeps the answer for a retry of it.
fn reply(
    sessions: &mut Sessions,
    o: &mut Out<FrangipaniNode>,
    client: Id,
    seq: RequestId,
    ret: FileRet,
) {
    if sessions.get(&client).is_none_or(|(last, _)| *last <= seq) {
        sessions.insert(client, (seq, Some(ret.clone())));
    }
    o.send(client, NodeMsg::Client(ClientMsg::Reply { seq, ret }));
}

impl FileState {
    fn new(lease: Ticks) -> Self {
        FileState {
            model: ServerState {
                lock: None,
                wanted: None,
                revoke: None,
                cache: None,
                flushing: false,
                next_op: 0,
                last_read: None,
                lease,
                cut: false,
            },
            pending: VecDeque::new(),
            unlogged: Vec::new(),
        }
    }
}

/// The file server's side of a node.
struct FileServer<'a> {
    me: Id,
    model: &'a ServerCfg<Data>,
    timing: &'a Timing,
}

impl FileServer<'_> {
    /// The model's configuration for the file: its script is the running operation.
    fn cfg(&self, f: &FileState) -> ServerCfg<Data> {
        ServerCfg {
            script: f
                .pending
                .front()
                .map(|(_, _, op)| op.clone())
                .into_iter()
                .collect(),
            ..self.model.clone()
        }
    }

    /// Passes a model step's messages on, wrapped with the file's name. While Petal has not
    /// answered a ping since its connection closed, messages for it are dropped, as a network
    /// would lose them: [`FileServer::resync`] sends again what is still needed.
    fn route(
        &self,
        s: &mut FileServerState,
        name: &str,
        inner: Out<FrangipaniActor<Data>>,
        o: &mut Out<FrangipaniNode>,
    ) {
        for c in inner {
            let Command::Send(dst, msg) = c else { continue };
            match &msg {
                FrangipaniMsg::Recovered { log, applied, .. } => {
                    *s.replayed.entry(usize::from(*log)).or_default() += applied;
                }
                FrangipaniMsg::ReadLog { log } => {
                    s.demon.insert((name.to_string(), *log));
                }
                _ => {}
            }
            if dst == self.model.petal && !s.petal_up {
                continue;
            }
            let name = name.to_string();
            o.send(dst, NodeMsg::File { name, msg });
        }
    }

    /// Steps file `name`'s model with `step`, then answers what completed and starts what
    /// comes next.
    fn step(
        &self,
        s: &mut FileServerState,
        name: &str,
        o: &mut Out<FrangipaniNode>,
        step: impl FnOnce(&ServerCfg<Data>, &mut ServerState<Data>, &mut Out<FrangipaniActor<Data>>),
    ) {
        let lease = if s.lost { 0 } else { s.lease };
        let f = s
            .files
            .entry(name.to_string())
            .or_insert_with(|| FileState::new(lease));
        if !s.lost {
            f.model.lease = lease;
        }
        let cfg = self.cfg(f);
        let mut inner = Out::new();
        step(&cfg, &mut f.model, &mut inner);
        self.route(s, name, inner, o);
        self.settle(s, name, o);
    }

    /// Answers the file's operations that completed and runs the next ones.
    fn settle(&self, s: &mut FileServerState, name: &str, o: &mut Out<FrangipaniNode>) {
        let ready = s.ready();
        loop {
            let Some(f) = s.files.get_mut(name) else {
                return;
            };
            if f.model.next_op == 0 {
                return;
            }
            // The model's script was the one running operation, now done.
            f.model.next_op = 0;
            let Some((client, seq, op)) = f.pending.pop_front() else {
                return;
            };
            match op {
                Op::Read => {
                    let data = f.model.last_read.clone().unwrap_or_default();
                    reply(&mut s.sessions, o, client, seq, FileRet::Data(data));
                }
                Op::Write(value) => {
                    let version = f.model.cache.as_ref().map_or(0, |c| c.version);
                    f.unlogged.push((LogRecord { version, value }, client, seq));
                }
            }
            if !ready || f.pending.is_empty() {
                return;
            }
            let cfg = self.cfg(f);
            let mut inner = Out::new();
            cfg.proceed(&mut f.model, &mut inner);
            self.route(s, name, inner, o);
        }
    }

    /// Runs every file's waiting operations (once the server is ready, or after a lease
    /// renewed from inside the margin), and lets the update demon write what is dirty.
    fn resume(&self, s: &mut FileServerState, o: &mut Out<FrangipaniNode>) {
        if !s.ready() {
            return;
        }
        let names: Vec<FileName> = s.files.keys().cloned().collect();
        for name in names {
            self.step(s, &name, o, |cfg, m, inner| {
                cfg.proceed(m, inner);
                cfg.on_timeout(m, FrangipaniTimer::Sync, inner);
            });
        }
    }

    /// Petal answers again after its connection closed (it restarted): what was on its way
    /// to it, or back, may be lost. Sends again what is still awaited: log records not yet
    /// confirmed, a block write (the lock is still held, so no other server's write can come
    /// between), a block read, a recovery demon's log read.
    fn resync(&self, s: &mut FileServerState, o: &mut Out<FrangipaniNode>) {
        for (name, f) in &mut s.files {
            for (record, _, _) in &f.unlogged {
                let msg = FrangipaniMsg::AppendLog {
                    record: record.clone(),
                };
                let name = name.clone();
                o.send(self.model.petal, NodeMsg::File { name, msg });
            }
            f.model.flushing = false;
        }
        for (name, log) in s.demon.clone() {
            let msg = FrangipaniMsg::ReadLog { log };
            o.send(self.model.petal, NodeMsg::File { name, msg });
        }
        self.resume(s, o);
    }

    /// §6: the lease is gone: no lock and no cached data may be used; waiting operations fail.
    fn lose_lease(&self, s: &mut FileServerState, o: &mut Out<FrangipaniNode>) {
        if s.lost {
            return;
        }
        s.lost = true;
        s.lease = 0;
        for f in s.files.values_mut() {
            // The model's cut server at its lease's last tick: it discards locks and cache.
            f.model.cut = true;
            f.model.lease = 1;
            let cfg = self.cfg(f);
            cfg.on_timeout(&mut f.model, FrangipaniTimer::LeaseTick, &mut Out::new());
            for (client, seq, _) in f.pending.drain(..) {
                reply(
                    &mut s.sessions,
                    o,
                    client,
                    seq,
                    FileRet::Refused(LOST.into()),
                );
            }
        }
    }

    fn on_msg(&self, s: &mut FileServerState, src: Id, msg: NodeMsg, o: &mut Out<FrangipaniNode>) {
        match msg {
            NodeMsg::File { name, msg } => {
                // Only the lock server and Petal speak the protocol to a file server.
                let peer = src == self.model.lock_server || src == self.model.petal;
                if !peer || s.lost {
                    return;
                }
                if let FrangipaniMsg::LogReply { log, .. } = &msg {
                    s.demon.remove(&(name.clone(), *log));
                }
                self.step(s, &name, o, |cfg, m, inner| cfg.on_msg(m, src, msg, inner));
            }
            NodeMsg::Renewed { ok } if src == self.model.lock_server => {
                if !ok {
                    // Refused: at the start the lock server is still recovering this server's
                    // log; later, the lease has expired.
                    if s.joined {
                        self.lose_lease(s, o);
                    }
                    return;
                }
                if s.lost {
                    return;
                }
                let was_ready = s.ready();
                let inside_margin = s.lease <= self.model.margin;
                s.lease = self.timing.lease.saturating_sub(1);
                s.joined = true;
                if inside_margin || !was_ready {
                    self.resume(s, o);
                }
            }
            NodeMsg::Pong if src == self.model.petal && !s.petal_up => {
                s.petal_up = true;
                self.resync(s, o);
            }
            NodeMsg::PeerClosed { peer } if src == self.me && peer == self.model.petal => {
                s.petal_up = false;
            }
            NodeMsg::Logged { name, version } if src == self.model.petal => {
                if let Some(f) = s.files.get_mut(&name) {
                    f.unlogged.retain(|(r, client, seq)| {
                        if r.version == version {
                            reply(&mut s.sessions, o, *client, *seq, FileRet::Written);
                        }
                        r.version != version
                    });
                }
            }
            NodeMsg::Names { client, seq, names } if src == self.model.petal => {
                reply(&mut s.sessions, o, client, seq, FileRet::Names(names));
            }
            NodeMsg::Client(ClientMsg::Request { client, seq, op }) => {
                // A client sends a request again until it hears back (its connection may have
                // been to this server's previous incarnation): answer a retry from the session
                // table, once.
                match s.sessions.get(&client) {
                    Some((last, _)) if seq < *last => return,
                    Some((last, Some(ret))) if seq == *last => {
                        let ret = ret.clone();
                        return o.send(client, NodeMsg::Client(ClientMsg::Reply { seq, ret }));
                    }
                    Some((last, None)) if seq == *last => return,
                    _ => {}
                }
                s.sessions.insert(client, (seq, None));
                if s.lost {
                    let ret = FileRet::Refused(LOST.into());
                    return reply(&mut s.sessions, o, client, seq, ret);
                }
                let (name, op) = match op.op {
                    FileOp::Ls => {
                        return o.send(self.model.petal, NodeMsg::List { client, seq });
                    }
                    FileOp::Read { name } => (name, Op::Read),
                    FileOp::Write { name, data } => (name, Op::Write(data)),
                };
                if name.is_empty() {
                    let ret = FileRet::Refused("empty file name".into());
                    return reply(&mut s.sessions, o, client, seq, ret);
                }
                let lease = s.lease;
                let f = s
                    .files
                    .entry(name.clone())
                    .or_insert_with(|| FileState::new(lease));
                f.pending.push_back((client, seq, op));
                if f.pending.len() == 1 && s.ready() {
                    self.step(s, &name, o, |cfg, m, inner| cfg.proceed(m, inner));
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&self, s: &mut FileServerState, timer: NodeTimer, o: &mut Out<FrangipaniNode>) {
        match timer {
            NodeTimer::LeaseTick => {
                o.set_timer(NodeTimer::LeaseTick, self.timing.tick..self.timing.tick);
                if s.lost {
                    return;
                }
                o.send(self.model.lock_server, NodeMsg::Renew { fresh: !s.joined });
                if !s.petal_up {
                    o.send(self.model.petal, NodeMsg::Ping);
                }
                if s.joined {
                    s.lease = s.lease.saturating_sub(1);
                    if s.lease == 0 {
                        self.lose_lease(s, o);
                    }
                }
            }
            NodeTimer::Sync => {
                o.set_timer(NodeTimer::Sync, self.timing.sync..self.timing.sync);
                if !s.ready() {
                    return;
                }
                let names: Vec<FileName> = s.files.keys().cloned().collect();
                for name in names {
                    self.step(s, &name, o, |cfg, m, inner| {
                        cfg.on_timeout(m, FrangipaniTimer::Sync, inner)
                    });
                }
            }
            NodeTimer::LeaseExpiry(_) | NodeTimer::Retry => {}
        }
    }
}

/// Why a file server whose lease is gone refuses an operation.
pub const LOST: &str = "this file server's lease has expired (§6): its locks and cache are \
    gone and another server recovers its log; restart it";

/// The lock server's side of a node.
struct LockService<'a> {
    model: &'a LockServerCfg,
    timing: &'a Timing,
}

impl LockService<'_> {
    fn index(&self, id: Id) -> Option<usize> {
        self.model.servers.iter().position(|s| *s == id)
    }

    /// Whether server `i` holds a lock, or waits for one, on any file.
    fn holds_any(s: &LockServiceState, i: usize) -> bool {
        s.locks
            .values()
            .any(|l| l.holders[i].is_some() || l.queue.iter().any(|(j, _)| *j == i))
    }

    /// Steps file `name`'s lock with `step`; notes the recoveries it starts.
    fn step(
        &self,
        s: &mut LockServiceState,
        name: &str,
        o: &mut Out<FrangipaniNode>,
        step: impl FnOnce(&LockServerCfg, &mut LockServerState, &mut Out<FrangipaniActor<Data>>),
    ) {
        let n = self.model.servers.len();
        let expired = s.expired.clone();
        let l = s
            .locks
            .entry(name.to_string())
            .or_insert_with(|| LockServerState {
                holders: vec![None; n],
                queue: Vec::new(),
                revoked: vec![false; n],
                expired,
            });
        let mut recover = Vec::new();
        wrapped(name, o, |inner| {
            step(self.model, l, inner);
            for c in inner.iter() {
                if let Command::Send(_, FrangipaniMsg::Recover { log }) = c {
                    recover.push(*log);
                }
            }
        });
        for log in recover {
            if let Some(i) = self.index(log) {
                s.recovering[i].insert(name.to_string());
            }
        }
    }

    /// §6: server `i`'s lease has expired: each file's lock asks a recovery demon to replay
    /// the server's log (the model's `LeaseExpiry`).
    fn expire(&self, s: &mut LockServiceState, i: usize, o: &mut Out<FrangipaniNode>) {
        if s.expired[i] {
            return;
        }
        s.expired[i] = true;
        s.renewed[i] = false;
        let id = self.model.servers[i];
        o.cancel_timer(NodeTimer::LeaseExpiry(id));
        let names: Vec<FileName> = s.locks.keys().cloned().collect();
        for name in names {
            self.step(s, &name, o, |cfg, l, inner| {
                cfg.on_timeout(l, FrangipaniTimer::LeaseExpiry(id), inner)
            });
        }
        self.check_recovered(s, i);
    }

    /// Once every file of server `i`'s log is recovered, the server may join again (a
    /// restarted server, with a fresh renewal).
    fn check_recovered(&self, s: &mut LockServiceState, i: usize) {
        // A file whose lock asked no demon (no other server is up) keeps the log waiting.
        let unasked = s
            .locks
            .iter()
            .any(|(name, l)| l.holders[i].is_some() && !s.recovering[i].contains(name));
        if s.expired[i] && s.recovering[i].is_empty() && !unasked {
            s.expired[i] = false;
            s.recoveries[i] += 1;
            for l in s.locks.values_mut() {
                l.expired[i] = false;
            }
        }
    }

    fn on_msg(&self, s: &mut LockServiceState, src: Id, msg: NodeMsg, o: &mut Out<FrangipaniNode>) {
        match msg {
            NodeMsg::File { name, msg } => {
                let done = match &msg {
                    FrangipaniMsg::Recovered { log, .. } => self.index(*log),
                    _ => None,
                };
                // Only file servers speak the protocol to the lock server, and only one whose
                // lease runs may ask for a lock (a zombie's requests wait for nothing).
                let Some(from) = self.index(src) else { return };
                if matches!(msg, FrangipaniMsg::Request { .. }) && !s.renewed[from] {
                    return;
                }
                self.step(s, &name, o, |cfg, l, inner| cfg.on_msg(l, src, msg, inner));
                if let Some(i) = done {
                    s.recovering[i].remove(&name);
                    self.check_recovered(s, i);
                }
            }
            NodeMsg::Renew { fresh } => {
                let Some(i) = self.index(src) else { return };
                if fresh && !s.expired[i] && Self::holds_any(s, i) {
                    // It died and came back within its lease: its cache is gone, its log is
                    // what is left of its dirty data. Recover it now.
                    self.expire(s, i, o);
                }
                let ok = !s.expired[i] && (fresh || s.renewed[i]);
                if ok {
                    s.renewed[i] = true;
                    let d = self.timing.tick * (u32::from(self.timing.lease) + 1);
                    o.set_timer(NodeTimer::LeaseExpiry(src), d..d);
                }
                o.send(src, NodeMsg::Renewed { ok });
            }
            _ => {}
        }
    }

    fn on_timeout(&self, s: &mut LockServiceState, timer: NodeTimer, o: &mut Out<FrangipaniNode>) {
        if let NodeTimer::LeaseExpiry(id) = timer {
            if let Some(i) = self.index(id) {
                self.expire(s, i, o);
            }
        }
    }
}

fn petal_on_msg(
    model: &PetalCfg,
    s: &mut PetalBlocks,
    src: Id,
    msg: NodeMsg,
    o: &mut Out<FrangipaniNode>,
) {
    match msg {
        NodeMsg::File { name, msg } => {
            if !model.servers.contains(&src) {
                return;
            }
            let logged = match &msg {
                FrangipaniMsg::AppendLog { record } => Some(record.version),
                _ => None,
            };
            let changes = matches!(
                msg,
                FrangipaniMsg::AppendLog { .. } | FrangipaniMsg::Write { .. }
            );
            let fresh = || PetalState {
                version: 0,
                value: Data::new(),
                logs: vec![Vec::new(); model.servers.len()],
            };
            if changes {
                let block = s.entry(name.clone()).or_insert_with(fresh);
                wrapped(&name, o, |inner| model.on_msg(block, src, msg, inner));
                // On disk before any message of this step leaves (the runtime's rule).
                o.save(s.clone());
            } else {
                // A read of a file never written finds the initial block; nothing is stored.
                let mut block = s.get(&name).cloned().unwrap_or_else(fresh);
                wrapped(&name, o, |inner| model.on_msg(&mut block, src, msg, inner));
            }
            if let Some(version) = logged {
                o.send(src, NodeMsg::Logged { name, version });
            }
        }
        NodeMsg::Ping => o.send(src, NodeMsg::Pong),
        NodeMsg::List { client, seq } => {
            let names = s
                .iter()
                .filter(|(_, b)| b.version > 0 || b.logs.iter().any(|l| !l.is_empty()))
                .map(|(n, _)| n.clone())
                .collect();
            o.send(src, NodeMsg::Names { client, seq, names });
        }
        _ => {}
    }
}

impl FrangipaniNode {
    /// The seeded bugs that run on real nodes.
    pub const BUGS: &'static [FrangipaniBug] = &[
        FrangipaniBug::ReleaseWithoutFlush,
        FrangipaniBug::ReplayWithoutVersion,
        FrangipaniBug::GrantWithoutRevoke,
    ];
}

impl Actor for FrangipaniNode {
    type Msg = NodeMsg;
    type Timer = NodeTimer;
    type State = NodeState;
    type Storage = PetalBlocks;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<PetalBlocks>, o: &mut Out<Self>) -> NodeState {
        match self {
            FrangipaniNode::FileServer { timing, .. } => {
                o.set_timer(NodeTimer::LeaseTick, Duration::ZERO..Duration::ZERO);
                o.set_timer(NodeTimer::Sync, timing.sync..timing.sync);
                NodeState::FileServer(FileServerState {
                    files: BTreeMap::new(),
                    lease: 0,
                    joined: false,
                    lost: false,
                    replayed: BTreeMap::new(),
                    petal_up: false,
                    demon: BTreeSet::new(),
                    sessions: Sessions::new(),
                })
            }
            FrangipaniNode::LockServer { model, .. } => {
                let n = model.servers.len();
                NodeState::LockServer(LockServiceState {
                    locks: BTreeMap::new(),
                    renewed: vec![false; n],
                    expired: vec![false; n],
                    recovering: vec![BTreeSet::new(); n],
                    recoveries: vec![0; n],
                })
            }
            FrangipaniNode::Petal { .. } => NodeState::Petal(storage.clone().unwrap_or_default()),
            FrangipaniNode::Client { .. } => NodeState::Client(None),
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<NodeState>, src: Id, msg: NodeMsg, o: &mut Out<Self>) {
        match (self, state.to_mut()) {
            (FrangipaniNode::FileServer { model, timing }, NodeState::FileServer(s)) => {
                FileServer {
                    me: id,
                    model,
                    timing,
                }
                .on_msg(s, src, msg, o)
            }
            (FrangipaniNode::LockServer { model, timing }, NodeState::LockServer(s)) => {
                LockService { model, timing }.on_msg(s, src, msg, o)
            }
            (FrangipaniNode::Petal { model }, NodeState::Petal(s)) => {
                petal_on_msg(model, s, src, msg, o)
            }
            (
                FrangipaniNode::Client {
                    servers,
                    driver,
                    retry,
                },
                NodeState::Client(s),
            ) => match msg {
                NodeMsg::Client(ClientMsg::Invoke { seq, op }) if src == *driver => {
                    let Some(server) = servers.get(op.server).copied() else {
                        let why =
                            format!("no file server {} (there are {})", op.server, servers.len());
                        o.send(
                            *driver,
                            NodeMsg::Client(ClientMsg::Return {
                                seq,
                                ret: FileRet::Refused(why),
                            }),
                        );
                        return;
                    };
                    let request = ClientMsg::Request {
                        client: id,
                        seq,
                        op: op.clone(),
                    };
                    o.send(server, NodeMsg::Client(request));
                    o.set_timer(NodeTimer::Retry, *retry..*retry);
                    *s = Some((seq, op));
                }
                NodeMsg::Client(ClientMsg::Reply { seq, ret })
                    if s.as_ref().is_some_and(|(w, _)| *w == seq) =>
                {
                    o.send(*driver, NodeMsg::Client(ClientMsg::Return { seq, ret }));
                    *s = None;
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeState>, timer: &NodeTimer, o: &mut Out<Self>) {
        match (self, state.to_mut()) {
            (FrangipaniNode::FileServer { model, timing }, NodeState::FileServer(s)) => {
                FileServer {
                    me: id,
                    model,
                    timing,
                }
                .on_timeout(s, *timer, o)
            }
            (FrangipaniNode::Client { servers, retry, .. }, NodeState::Client(Some((seq, op)))) => {
                if let Some(server) = servers.get(op.server) {
                    let request = ClientMsg::Request {
                        client: id,
                        seq: *seq,
                        op: op.clone(),
                    };
                    o.send(*server, NodeMsg::Client(request));
                    o.set_timer(NodeTimer::Retry, *retry..*retry);
                }
            }
            (FrangipaniNode::LockServer { model, timing }, NodeState::LockServer(s)) => {
                LockService { model, timing }.on_timeout(s, *timer, o)
            }
            _ => {}
        }
    }
}

/// A node's role in words, for `cluster status`.
pub fn describe(state: &NodeState) -> Option<String> {
    Some(match state {
        NodeState::FileServer(s) => {
            let dirty = s
                .files
                .values()
                .filter(|f| f.model.cache.as_ref().is_some_and(|c| c.dirty))
                .count();
            let mut line = if s.lost {
                "file server: lease expired".to_string()
            } else if !s.joined {
                "file server: waiting for the lock server".to_string()
            } else {
                format!("file server: {} files, {dirty} dirty", s.files.len())
            };
            for (log, applied) in &s.replayed {
                line.push_str(&format!("; replayed node {log}'s log ({applied} records)"));
            }
            line
        }
        NodeState::LockServer(s) => {
            let held = s
                .locks
                .values()
                .filter(|l| l.holders.iter().any(|h| h.is_some()))
                .count();
            let mut line = format!("lock server: {held} locks held");
            for (i, n) in s.recoveries.iter().enumerate() {
                if *n > 0 {
                    line.push_str(&format!("; recovered node {i}'s log"));
                }
            }
            for (i, e) in s.expired.iter().enumerate() {
                if *e {
                    line.push_str(&format!("; recovering node {i}'s log"));
                }
            }
            line
        }
        NodeState::Petal(blocks) => {
            let records: usize = blocks
                .values()
                .map(|b| b.logs.iter().map(Vec::len).sum::<usize>())
                .sum();
            format!("Petal: {} blocks, {records} log records", blocks.len())
        }
        NodeState::Client(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: usize = 0;
    const B: usize = 1;
    const LOCK_SERVER: usize = 2;
    const PETAL: usize = 3;
    const CLIENT: usize = 9;

    /// The four nodes in one process: FIFO delivery, timers fired by hand, a killed node's
    /// messages lost.
    struct Net {
        nodes: Vec<FrangipaniNode>,
        states: Vec<Option<NodeState>>,
        queue: VecDeque<(Id, Id, NodeMsg)>,
        answers: Vec<(RequestId, FileRet)>,
    }

    impl Net {
        fn new() -> Net {
            let servers = vec![Id::from(A), Id::from(B)];
            let timing = Timing {
                tick: Duration::from_millis(100),
                lease: 10,
                margin: 5,
                sync: Duration::from_secs(60),
            };
            let server = FrangipaniNode::FileServer {
                model: ServerCfg {
                    lock_server: Id::from(LOCK_SERVER),
                    petal: Id::from(PETAL),
                    script: Vec::new(),
                    lease: 10,
                    margin: 5,
                    may_cut: false,
                    bug: None,
                },
                timing: timing.clone(),
            };
            let nodes = vec![
                server.clone(),
                server,
                FrangipaniNode::LockServer {
                    model: LockServerCfg {
                        servers: servers.clone(),
                        bug: None,
                    },
                    timing,
                },
                FrangipaniNode::Petal {
                    model: PetalCfg { servers },
                },
            ];
            let mut net = Net {
                nodes,
                states: Vec::new(),
                queue: VecDeque::new(),
                answers: Vec::new(),
            };
            for i in 0..4 {
                let mut o = Out::new();
                let s = net.nodes[i].on_start(Id::from(i), &None, &mut o);
                net.states.push(Some(s));
                net.apply(i, o);
            }
            for fs in [A, B] {
                net.fire(fs, NodeTimer::LeaseTick);
            }
            net
        }

        fn apply(&mut self, me: usize, o: Out<FrangipaniNode>) {
            for c in o {
                match c {
                    Command::Send(dst, NodeMsg::Client(ClientMsg::Reply { seq, ret }))
                        if usize::from(dst) == CLIENT =>
                    {
                        self.answers.push((seq, ret))
                    }
                    Command::Send(dst, msg) => self.queue.push_back((Id::from(me), dst, msg)),
                    _ => {}
                }
            }
        }

        fn run(&mut self) {
            while let Some((src, dst, msg)) = self.queue.pop_front() {
                let i = usize::from(dst);
                let Some(state) = self.states.get_mut(i).and_then(Option::take) else {
                    continue; // A killed node: the message is lost.
                };
                let mut cow = Cow::Owned(state);
                let mut o = Out::new();
                self.nodes[i].on_msg(dst, &mut cow, src, msg, &mut o);
                self.states[i] = Some(cow.into_owned());
                self.apply(i, o);
            }
        }

        fn fire(&mut self, i: usize, timer: NodeTimer) {
            let state = self.states[i].take().expect("a live node");
            let mut cow = Cow::Owned(state);
            let mut o = Out::new();
            self.nodes[i].on_timeout(Id::from(i), &mut cow, &timer, &mut o);
            self.states[i] = Some(cow.into_owned());
            self.apply(i, o);
            self.run();
        }

        /// Client request `seq` at file server `fs`; its answer, if one came.
        fn call(&mut self, fs: usize, seq: RequestId, op: FileOp) -> Option<FileRet> {
            let op = FileCall { server: fs, op };
            let request = ClientMsg::Request {
                client: Id::from(CLIENT),
                seq,
                op,
            };
            let msg = NodeMsg::Client(request);
            self.queue.push_back((Id::from(CLIENT), Id::from(fs), msg));
            self.run();
            self.answers
                .iter()
                .find(|(s, _)| *s == seq)
                .map(|(_, r)| r.clone())
        }

        fn file_server(&self, i: usize) -> &FileServerState {
            match self.states[i].as_ref() {
                Some(NodeState::FileServer(s)) => s,
                s => panic!("node {i} is a file server: {s:?}"),
            }
        }
    }

    fn write(name: &str, data: &str) -> FileOp {
        FileOp::Write {
            name: name.into(),
            data: data.into(),
        }
    }

    fn read(name: &str) -> FileOp {
        FileOp::Read { name: name.into() }
    }

    /// Reference: §5: a read through one server sees the other's write (the revoke makes the
    /// writer write its dirty block to Petal first).
    #[test]
    fn a_read_at_one_server_sees_the_others_write() {
        let mut net = Net::new();
        assert!(net.file_server(A).ready() && net.file_server(B).ready());
        assert_eq!(net.call(A, 1, write("f", "one")), Some(FileRet::Written));
        assert!(
            net.file_server(A).files["f"]
                .model
                .cache
                .as_ref()
                .unwrap()
                .dirty
        );
        assert_eq!(net.call(B, 2, read("f")), Some(FileRet::Data("one".into())));
        assert_eq!(
            net.call(A, 3, read("g")),
            Some(FileRet::Data(String::new()))
        );
        assert_eq!(
            net.call(B, 4, FileOp::Ls),
            Some(FileRet::Names(vec!["f".into()]))
        );
    }

    /// Reference: §4, §6: `a` dies with a dirty block; `b`'s read waits for the lock, the lock
    /// server finds `a`'s lease expired and `b`'s recovery demon replays `a`'s log, skipping the
    /// record the block already has.
    #[test]
    fn the_survivor_replays_a_dead_servers_log_when_its_lease_expires() {
        let mut net = Net::new();
        assert_eq!(net.call(A, 1, write("f", "one")), Some(FileRet::Written));
        assert_eq!(net.call(B, 2, read("f")), Some(FileRet::Data("one".into())));
        assert_eq!(net.call(A, 3, write("f", "two")), Some(FileRet::Written));
        net.states[A] = None; // kill -9
        assert_eq!(net.call(B, 4, read("f")), None, "a holds the write lock");
        net.fire(LOCK_SERVER, NodeTimer::LeaseExpiry(Id::from(A)));
        assert_eq!(net.answers.last(), Some(&(4, FileRet::Data("two".into()))));
        assert_eq!(net.file_server(B).replayed[&A], 1, "v2 applied, v1 skipped");
        // A retry of an answered request is answered again, not run again.
        net.answers.clear();
        assert_eq!(net.call(B, 4, read("f")), Some(FileRet::Data("two".into())));
    }
}
