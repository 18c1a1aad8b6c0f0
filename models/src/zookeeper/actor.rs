//! ZooKeeper's client API over one linearizable log. Servers: the leader (which orders every
//! write, Zab abstracted as one log), a follower, and a standby that leads the next epoch once
//! the leader is deposed. Each keeps a replica of the tree, applies the log in order, serves
//! reads from its replica and keeps its clients' watches. Two kinds of client: the lock
//! recipe's (§2.4, "Locks without herd effect"), and register clients that pipeline
//! `setData`, `getData` and `sync` on one data znode and may move to another server.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// A lock node's sequence number: `/lock/lock-%010d`.
pub type Seq = u8;
/// A client's index (its session is the client's own): the lock clients first, then the
/// register clients.
pub type Client = u8;
/// A request's number in its client's session.
pub type Xid = u8;
/// A transaction's id: its position in the log (Zab's epochs are implicit: the next leader
/// continues the deposed one's committed log, so positions order zxids).
pub type Zxid = u8;
/// The data znode's contents.
pub type Data = u8;
/// The data znode's `Stat.version`; `-1` in a `setData` means any version (§2.2).
pub type Version = i32;

/// A transaction of the log (a write, once the leader ordered it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Txn {
    /// `create("/lock/lock-", EPHEMERAL | SEQUENTIAL)`: the leader gave it sequence `seq`.
    Create {
        client: Client,
        seq: Seq,
    },
    Delete {
        seq: Seq,
    },
    /// The session expired: its ephemeral nodes go with it (§2.1).
    CloseSession {
        client: Client,
    },
    /// `setData("/reg", data, _)`, which the leader found at the expected version: the znode's
    /// version becomes `version`.
    SetData {
        data: Data,
        version: Version,
    },
    /// A write the leader refused (`BadVersion`): ZooKeeper's `ErrorTxn`, which takes a zxid
    /// like any transaction and changes nothing.
    Error,
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    Create,
    /// `getChildren(l, watch)`: only the herd-effect recipe watches the children.
    GetChildren {
        watch: bool,
    },
    /// `exists(node, watch = true)`.
    Exists(Seq),
    Delete(Seq),
    /// `setData("/reg", data, version)`.
    SetData {
        data: Data,
        version: Version,
    },
    /// `getData("/reg", watch)`.
    GetData {
        watch: bool,
    },
    /// `sync("/reg")`: the reads after it see every write committed before it was issued
    /// (§2.2), within one leader's reign.
    Sync,
}

impl Op {
    /// Whether the leader orders it.
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Create | Op::Delete(_) | Op::SetData { .. })
    }

    /// Whether a server answers it from its replica.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::GetChildren { .. } | Op::Exists(_) | Op::GetData { .. }
        )
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ret {
    Created(Seq),
    Children(Vec<Seq>),
    Exists(bool),
    Deleted,
    /// `setData` succeeded: the new `Stat.version`.
    Stat(Version),
    /// `setData`'s expected version was not the znode's.
    BadVersion,
    Data {
        data: Option<Data>,
        version: Version,
    },
    Synced,
}

impl Ret {
    /// The data znode's version the answer shows, if any.
    pub fn version(&self) -> Option<Version> {
        match self {
            Ret::Stat(v) | Ret::Data { version: v, .. } => Some(*v),
            _ => None,
        }
    }
}

/// Where a write came in: the server that answers it, the client and its request.
pub type Origin = (Id, Client, Xid);

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZkMsg {
    Request {
        xid: Xid,
        op: Op,
    },
    /// A server sends a client's write (or `sync`) to its leader (`seq`: a sequence number the
    /// server chose itself, only under `local-sequence`).
    Forward {
        client: Client,
        xid: Xid,
        op: Op,
        seq: Option<Seq>,
    },
    /// The leader's log, in order, to the follower.
    Commit {
        zxid: Zxid,
        txn: Txn,
        origin: Option<Origin>,
    },
    /// The leader's answer to a forwarded `sync`, behind every commit it sent before (the
    /// `SYNC` packet of ZooKeeper's leader).
    Sync {
        client: Client,
        xid: Xid,
    },
    /// The reply header carries the zxid the server had applied (`ReplyHeader.zxid`).
    Reply {
        xid: Xid,
        ret: Ret,
        zxid: Zxid,
    },
    /// A watch fired: the node is gone.
    NodeDeleted(Seq),
    /// A child watch fired: the lock's children changed.
    NodeChildrenChanged,
    /// A data watch fired: `/reg` changed.
    NodeDataChanged,
    /// The session expired.
    Expired,
    /// A client moves its session here: `ConnectRequest.lastZxidSeen`, and whether it had a
    /// data watch pending (`setWatches`, which the client library sends on reconnect).
    Connect {
        last_zxid: Zxid,
        watch: bool,
    },
    Connected,
    /// The server closed the connection: it has not seen the client's last zxid (or it is not
    /// serving).
    Refused,
    /// Zab's NEWLEADER, abstracted: the standby leads the next epoch with this log, every
    /// committed transaction (Zab §4).
    NewLeader {
        log: Vec<Txn>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZkTimer {
    /// The leader expires this client's session (it stopped hearing from it).
    Expire(Client),
    /// A lock holder is done and releases the lock.
    Release,
    /// A register client issues its next operation, whether or not the previous one has been
    /// answered (ZooKeeper's asynchronous API pipelines).
    Issue,
    /// A register client moves its session to this server (its connection broke).
    Move(usize),
    /// The ensemble elects the standby: the leader is deposed and does not know it yet.
    LeaderChange,
}

crate::seeded_bugs! {
    /// The seeded bugs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ZkBug {
        /// The recipe takes the lock as soon as its predecessor vanishes, without listing the
        /// children again.
        LockNoRecheck = "lock-no-recheck",
        /// The leader orders a create of a session that has already expired: the ephemeral
        /// outlives its session (cf. ZOOKEEPER-1208).
        CreateAfterClose = "create-after-close",
        /// The follower numbers sequential nodes itself, from its replica's counter, instead
        /// of the leader.
        LocalSequence = "local-sequence",
        /// A follower checks `setData`'s expected version against its own, lagging replica and
        /// forwards the write unconditionally.
        VersionCheckAtFollower = "version-check-at-follower",
        /// A server answers a session's read at once, while the session's earlier write is
        /// still on its way through the leader.
        ReadAheadOfWrite = "read-ahead-of-write",
        /// A server accepts a session whose last seen zxid is ahead of its own.
        ReconnectAhead = "reconnect-ahead",
        /// A server sends a write's reply before the watch events the write fires.
        WatchAfterReply = "watch-after-reply",
        /// The recipe watches the lock's children (`getChildren(l, true)`) instead of its
        /// predecessor: every change wakes every waiter (§2.4's herd effect).
        HerdEffect = "herd-effect",
    }
}

/// A server's replica: the lock's children (sequence → owner), the next sequence number, the
/// data znode, the log applied so far, and the watches of its clients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Replica {
    pub children: BTreeMap<Seq, Client>,
    pub next_seq: Seq,
    /// Invariant: `applied` is the zxid of the last transaction applied.
    pub applied: Zxid,
    pub closed: BTreeSet<Client>,
    /// Exists-watches: (client, node).
    pub watches: BTreeSet<(Client, Seq)>,
    /// Child watches on the lock (`getChildren(l, true)`, only under `herd-effect`).
    pub child_watches: BTreeSet<Client>,
    /// `/reg`: its data (`None`: created empty), `Stat.version`, and the zxid of its last
    /// change (`Stat.mzxid`).
    pub data: Option<Data>,
    pub version: Version,
    pub mzxid: Zxid,
    /// Data watches on `/reg` (`getData(_, true)`).
    pub data_watches: BTreeSet<Client>,
}

/// A watch event for a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    NodeDeleted(Seq),
    ChildrenChanged,
    NodeDataChanged,
}

/// A server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Leading,
    Following,
    /// Not part of an epoch yet: it serves no client.
    Looking,
}

/// A server's state; a leader also holds the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerState {
    pub role: Role,
    /// The ensemble has elected another leader: this leader's proposals can no longer reach a
    /// quorum, so it commits nothing more. It does not know, and still answers its follower.
    pub deposed: bool,
    pub replica: Replica,
    pub log: Vec<Txn>,
    /// The clients connected here.
    pub sessions: BTreeSet<Client>,
    /// Each session's requests waiting, in its order, behind its write or `sync` in flight
    /// (ZooKeeper's CommitProcessor): the head is the request in flight.
    pub queue: BTreeMap<Client, Vec<(Xid, Op)>>,
}

/// A client's place in the recipe (§2.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recipe {
    /// 1. `n = create(l + "/lock-", EPHEMERAL | SEQUENTIAL)`.
    Creating,
    /// 2. `C = getChildren(l, false)`.
    Listing,
    /// 5. `if exists(p, true)`: waiting for the answer.
    Checking(Seq),
    /// 5. wait for the watch event of `p`.
    Waiting(Seq),
    Holding,
    Releasing,
    Done,
    /// Its session expired.
    Dead,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientState {
    pub recipe: Recipe,
    pub node: Option<Seq>,
    pub xid: Xid,
    /// The last list follows a watch event.
    pub woken: bool,
    /// Woken by a predecessor's deletion while a lower node remained (a ghost).
    pub rewaited: bool,
}

/// A register client's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Connection {
    Connected,
    /// It sent `Connect` to `server` and waits for the answer.
    Connecting,
    /// Refused: it will try again.
    Disconnected,
}

/// A register client: its script's progress, what it has seen, and what the properties read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegisterState {
    /// The server it is connected (or connecting) to; it ignores every other server (their
    /// connections are closed).
    pub server: Id,
    pub connection: Connection,
    /// Requests sent (the script's first `issued` operations; `xid` = index + 1).
    pub issued: Xid,
    pub answered: Xid,
    /// The xid of the last reply, and the highest zxid seen in one.
    pub last_xid: Xid,
    pub last_zxid: Zxid,
    /// The data watch: the version it was set at, and whether its event has arrived.
    pub watch: Option<(Version, bool)>,
    /// A reply came out of the client's order, or went back in zxid (§2.3 broken).
    pub out_of_order: bool,
    /// A reply showed `/reg` changed while the data watch's event had not arrived.
    pub data_before_event: bool,
    /// The watch's event arrived, then a reply showed the new data.
    pub notified_then_read: bool,
    /// A read was issued while an earlier write of its own was unanswered: its xid.
    pub pipelined_read: Option<Xid>,
    /// That read was answered after the write, and saw it.
    pub read_saw_own_write: bool,
    /// It was served by a server it moved to.
    pub moved: bool,
    pub served_after_move: bool,
}

/// The actors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZkActor {
    Server {
        /// The leader of the first epoch (the follower's leader throughout).
        leader: Id,
        /// The server that leads the next epoch.
        standby: Id,
        /// The first epoch's servers (the leader sends its log to the others).
        servers: Vec<Id>,
        /// The clients: client `c` is actor `first_client + c`.
        first_client: usize,
        /// Lock clients `0..clients` may expire (the leader's timers).
        clients: Client,
        /// The clients that connect here first.
        home: Vec<Client>,
        /// Whether the leader may be deposed.
        leader_change: bool,
        bug: Option<ZkBug>,
    },
    Client {
        server: Id,
        bug: Option<ZkBug>,
    },
    Register {
        server: Id,
        /// The servers it may move to (none: it stays).
        servers: Vec<Id>,
        script: Vec<Op>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZkState {
    Server(ServerState),
    Client(ClientState),
    Register(RegisterState),
}

const TICK: Duration = Duration::from_millis(100);

impl Replica {
    /// Applies the next transaction; the watch events it fires: (client, event).
    fn apply(&mut self, txn: &Txn) -> Vec<(Client, Event)> {
        self.applied += 1;
        let mut fired = Vec::new();
        let gone: Vec<Seq> = match txn {
            Txn::Create { client, seq } => {
                self.children.insert(*seq, *client);
                self.next_seq = self.next_seq.max(seq + 1);
                Vec::new()
            }
            Txn::Delete { seq } => self
                .children
                .remove(seq)
                .map(|_| *seq)
                .into_iter()
                .collect(),
            Txn::CloseSession { client } => {
                self.closed.insert(*client);
                let gone: Vec<Seq> = self
                    .children
                    .iter()
                    .filter(|(_, c)| *c == client)
                    .map(|(s, _)| *s)
                    .collect();
                for s in &gone {
                    self.children.remove(s);
                }
                self.watches.retain(|(c, _)| c != client);
                self.child_watches.remove(client);
                gone
            }
            Txn::SetData { data, version } => {
                self.data = Some(*data);
                self.version = *version;
                self.mzxid = self.applied;
                fired.extend(
                    self.data_watches
                        .iter()
                        .map(|c| (*c, Event::NodeDataChanged)),
                );
                self.data_watches.clear();
                Vec::new()
            }
            Txn::Error => Vec::new(),
        };
        if matches!(txn, Txn::Create { .. }) || !gone.is_empty() {
            fired.extend(
                std::mem::take(&mut self.child_watches)
                    .into_iter()
                    .map(|c| (c, Event::ChildrenChanged)),
            );
        }
        let deleted: Vec<(Client, Seq)> = self
            .watches
            .iter()
            .filter(|(_, s)| gone.contains(s))
            .copied()
            .collect();
        for w in &deleted {
            self.watches.remove(w);
        }
        fired.extend(deleted.iter().map(|(c, s)| (*c, Event::NodeDeleted(*s))));
        fired
    }

    /// A read's answer.
    fn read(&mut self, c: Client, op: &Op) -> Ret {
        match op {
            Op::GetChildren { watch } => {
                if *watch {
                    self.child_watches.insert(c);
                }
                Ret::Children(self.children.keys().copied().collect())
            }
            Op::Exists(n) => {
                let there = self.children.contains_key(n);
                if there {
                    self.watches.insert((c, *n));
                }
                Ret::Exists(there)
            }
            Op::GetData { watch } => {
                if *watch {
                    self.data_watches.insert(c);
                }
                Ret::Data {
                    data: self.data,
                    version: self.version,
                }
            }
            _ => unreachable!("only reads are answered from the replica"),
        }
    }
}

impl ServerState {
    /// Whether this server orders writes (a deposed leader still thinks it does).
    fn leads(&self) -> bool {
        self.role == Role::Leading
    }
}

impl ZkActor {
    fn client_id(first_client: usize, c: Client) -> Id {
        Id::from(first_client + usize::from(c))
    }

    fn server_msg(&self, me: Id, s: &mut ServerState, src: Id, msg: ZkMsg, o: &mut Out<Self>) {
        let ZkActor::Server {
            leader,
            standby,
            first_client,
            bug,
            ..
        } = self
        else {
            return;
        };
        let client_of = |id: Id| -> Option<Client> {
            usize::from(id)
                .checked_sub(*first_client)
                .and_then(|c| Client::try_from(c).ok())
        };
        match msg {
            ZkMsg::Request { xid, op } => {
                let Some(c) = client_of(src) else { return };
                if s.replica.closed.contains(&c) || !s.sessions.contains(&c) {
                    return;
                }
                // §2.3 FIFO client order: a request waits behind its session's write or sync
                // in flight.
                let busy = s.queue.get(&c).is_some_and(|q| !q.is_empty());
                if op.is_read() && (!busy || *bug == Some(ZkBug::ReadAheadOfWrite)) {
                    self.answer(s, src, c, xid, &op, o);
                    return;
                }
                if busy || (s.leads() && s.deposed && op.is_write()) {
                    // (A deposed leader's proposal never reaches a quorum: it hangs.)
                    s.queue.entry(c).or_default().push((xid, op));
                    return;
                }
                if s.leads() {
                    match op {
                        Op::Sync => self.reply(s, src, xid, Ret::Synced, o),
                        _ => self.order(me, s, c, (me, c, xid), op, None, o),
                    }
                    return;
                }
                // A follower: the write goes to the leader.
                let mut op = op;
                if let Op::SetData { data, version } = op {
                    if *bug == Some(ZkBug::VersionCheckAtFollower) {
                        if version != -1 && version != s.replica.version {
                            self.reply(s, src, xid, Ret::BadVersion, o);
                            return;
                        }
                        op = Op::SetData { data, version: -1 };
                    }
                }
                let seq = (*bug == Some(ZkBug::LocalSequence) && op == Op::Create)
                    .then_some(s.replica.next_seq);
                s.queue.entry(c).or_default().push((xid, op.clone()));
                o.send(
                    *leader,
                    ZkMsg::Forward {
                        client: c,
                        xid,
                        op,
                        seq,
                    },
                );
            }
            ZkMsg::Forward {
                client,
                xid,
                op,
                seq,
            } if s.leads() => {
                if op == Op::Sync {
                    // Behind every commit already sent to this follower (FIFO links). A deposed
                    // leader answers from its frozen log: it does not know (§2.3's caveat).
                    o.send(src, ZkMsg::Sync { client, xid });
                    return;
                }
                // A deposed leader's proposals never reach a quorum: the write hangs.
                if !s.deposed {
                    self.order(me, s, client, (src, client, xid), op, seq, o);
                }
            }
            ZkMsg::Commit { zxid, txn, origin }
                if s.role == Role::Following && zxid == s.replica.applied + 1 =>
            {
                self.apply(me, s, &txn, origin, o);
            }
            ZkMsg::Sync { client, xid } if s.role == Role::Following => {
                let head = s.queue.get(&client).and_then(|q| q.first()).cloned();
                if head == Some((xid, Op::Sync)) {
                    s.queue.get_mut(&client).expect("head exists").remove(0);
                    self.reply(
                        s,
                        Self::client_id(*first_client, client),
                        xid,
                        Ret::Synced,
                        o,
                    );
                    self.drain(s, client, o);
                }
            }
            ZkMsg::Connect { last_zxid, watch } => {
                let Some(c) = client_of(src) else { return };
                // A server that has not seen the client's last zxid would take it back in
                // time: it refuses, and the client tries again, here or elsewhere.
                let behind = last_zxid > s.replica.applied && *bug != Some(ZkBug::ReconnectAhead);
                if s.role == Role::Looking || behind {
                    o.send(src, ZkMsg::Refused);
                    return;
                }
                s.sessions.insert(c);
                s.queue.remove(&c);
                o.send(src, ZkMsg::Connected);
                // setWatches: fire at once what changed since the client's last zxid.
                if watch {
                    if s.replica.mzxid > last_zxid {
                        o.send(src, ZkMsg::NodeDataChanged);
                    } else {
                        s.replica.data_watches.insert(c);
                    }
                }
            }
            ZkMsg::NewLeader { log } if me == *standby && s.role == Role::Looking => {
                for txn in &log {
                    s.replica.apply(txn);
                }
                s.log = log;
                s.role = Role::Leading;
            }
            _ => {}
        }
    }

    /// Answers a read from this server's replica.
    fn answer(&self, s: &mut ServerState, to: Id, c: Client, xid: Xid, op: &Op, o: &mut Out<Self>) {
        let ret = s.replica.read(c, op);
        self.reply(s, to, xid, ret, o);
    }

    fn reply(&self, s: &ServerState, to: Id, xid: Xid, ret: Ret, o: &mut Out<Self>) {
        o.send(
            to,
            ZkMsg::Reply {
                xid,
                ret,
                zxid: s.replica.applied,
            },
        );
    }

    /// Answers the requests that waited behind the session's write or sync now done, up to
    /// its next one in flight.
    fn drain(&self, s: &mut ServerState, c: Client, o: &mut Out<Self>) {
        let ZkActor::Server { first_client, .. } = self else {
            return;
        };
        let to = Self::client_id(*first_client, c);
        while let Some((xid, op)) = s.queue.get(&c).and_then(|q| q.first()).cloned() {
            if !op.is_read() {
                return;
            }
            s.queue.get_mut(&c).expect("head exists").remove(0);
            self.answer(s, to, c, xid, &op, o);
        }
    }

    /// The leader orders a write: the transaction it becomes, appended to the log.
    #[allow(clippy::too_many_arguments)]
    fn order(
        &self,
        me: Id,
        s: &mut ServerState,
        client: Client,
        origin: Origin,
        op: Op,
        seq: Option<Seq>,
        o: &mut Out<Self>,
    ) {
        let ZkActor::Server { bug, .. } = self else {
            return;
        };
        // The leader orders writes; a closed session's requests are refused (§2.1).
        let closed = s.log.contains(&Txn::CloseSession { client });
        if closed && *bug != Some(ZkBug::CreateAfterClose) {
            return;
        }
        let txn = match op {
            Op::Create => {
                // The parent's counter numbers sequential children (§2.1).
                let next = s
                    .log
                    .iter()
                    .filter(|t| matches!(t, Txn::Create { .. }))
                    .count() as Seq;
                Txn::Create {
                    client,
                    seq: seq.unwrap_or(next),
                }
            }
            Op::Delete(seq) => Txn::Delete { seq },
            // The leader checks the version against every write ordered before (§2.2's
            // conditional update).
            Op::SetData { data, version } => {
                if version == -1 || version == s.replica.version {
                    Txn::SetData {
                        data,
                        version: s.replica.version + 1,
                    }
                } else {
                    Txn::Error
                }
            }
            _ => return,
        };
        self.append(me, s, txn, Some(origin), o);
    }

    /// Applies the next transaction of the log to this server's replica; fires the watches
    /// it triggers, tells an expired client, and answers the write if it came in here.
    fn apply(
        &self,
        me: Id,
        s: &mut ServerState,
        txn: &Txn,
        origin: Option<Origin>,
        o: &mut Out<Self>,
    ) {
        let ZkActor::Server {
            first_client, bug, ..
        } = self
        else {
            return;
        };
        let to = |c: Client| Self::client_id(*first_client, c);
        let events: Vec<(Client, ZkMsg)> = s
            .replica
            .apply(txn)
            .into_iter()
            .filter(|(c, _)| s.sessions.contains(c))
            .map(|(c, e)| {
                let msg = match e {
                    Event::NodeDeleted(n) => ZkMsg::NodeDeleted(n),
                    Event::ChildrenChanged => ZkMsg::NodeChildrenChanged,
                    Event::NodeDataChanged => ZkMsg::NodeDataChanged,
                };
                (c, msg)
            })
            .collect();
        // §2.3: a client sees a watch event before any answer that reflects the change.
        if *bug != Some(ZkBug::WatchAfterReply) {
            for (c, e) in &events {
                o.send(to(*c), e.clone());
            }
        }
        if let Txn::CloseSession { client } = txn {
            if s.sessions.contains(client) {
                o.send(to(*client), ZkMsg::Expired);
            }
        }
        if let Some((_, c, xid)) = origin.filter(|(server, ..)| *server == me) {
            let ret = match txn {
                Txn::Create { seq, .. } => Ret::Created(*seq),
                Txn::SetData { version, .. } => Ret::Stat(*version),
                Txn::Error => Ret::BadVersion,
                _ => Ret::Deleted,
            };
            self.reply(s, to(c), xid, ret, o);
            let head = s.queue.get(&c).and_then(|q| q.first()).map(|(x, _)| *x);
            if head == Some(xid) {
                s.queue.get_mut(&c).expect("head exists").remove(0);
                self.drain(s, c, o);
            }
        }
        if *bug == Some(ZkBug::WatchAfterReply) {
            for (c, e) in events {
                o.send(to(c), e);
            }
        }
    }

    /// The leader orders `txn`: appends it to the log, applies it, and sends it on to the
    /// other servers of its epoch (the next epoch's leader has no modelled followers).
    fn append(
        &self,
        me: Id,
        s: &mut ServerState,
        txn: Txn,
        origin: Option<Origin>,
        o: &mut Out<Self>,
    ) {
        let ZkActor::Server {
            servers, standby, ..
        } = self
        else {
            return;
        };
        s.log.push(txn.clone());
        let zxid = s.log.len() as Zxid;
        self.apply(me, s, &txn, origin, o);
        if me == *standby {
            return;
        }
        for sv in servers.iter().filter(|sv| **sv != me) {
            o.send(
                *sv,
                ZkMsg::Commit {
                    zxid,
                    txn: txn.clone(),
                    origin,
                },
            );
        }
    }

    fn client_msg(&self, s: &mut ClientState, msg: ZkMsg, o: &mut Out<Self>) {
        let ZkActor::Client { server, bug } = self else {
            return;
        };
        let herd = *bug == Some(ZkBug::HerdEffect);
        let mut ask = |s: &mut ClientState, op: Op| {
            s.xid += 1;
            o.send(*server, ZkMsg::Request { xid: s.xid, op });
        };
        match (msg, s.recipe.clone()) {
            (ZkMsg::Expired, _) => s.recipe = Recipe::Dead,
            (_, Recipe::Dead) => {}
            (
                ZkMsg::Reply {
                    ret: Ret::Created(n),
                    ..
                },
                Recipe::Creating,
            ) => {
                s.node = Some(n);
                s.recipe = Recipe::Listing;
                ask(s, Op::GetChildren { watch: herd });
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Children(cs),
                    ..
                },
                Recipe::Listing,
            ) => {
                let Some(me) = s.node else { return };
                // 3. if n is the lowest node in C, exit: the lock is held.
                let woken = std::mem::take(&mut s.woken);
                match cs.iter().filter(|c| **c < me).max() {
                    None => {
                        s.recipe = Recipe::Holding;
                        o.set_timer(ZkTimer::Release, TICK..TICK);
                    }
                    Some(p) if herd => {
                        // The list set a child watch: wait for any change to the children.
                        if woken {
                            s.rewaited = true;
                        }
                        s.recipe = Recipe::Waiting(*p);
                    }
                    Some(p) => {
                        if woken {
                            s.rewaited = true;
                        }
                        // 4. p = the node in C ordered just before n.
                        s.recipe = Recipe::Checking(*p);
                        ask(s, Op::Exists(*p));
                    }
                }
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Exists(true),
                    ..
                },
                Recipe::Checking(p),
            ) => {
                s.recipe = Recipe::Waiting(p);
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Exists(false),
                    ..
                },
                Recipe::Checking(_),
            ) => {
                s.recipe = Recipe::Listing;
                ask(s, Op::GetChildren { watch: herd });
            }
            (ZkMsg::NodeDeleted(n), Recipe::Waiting(p)) if n == p => self.wake(s, o),
            (ZkMsg::NodeChildrenChanged, Recipe::Waiting(_)) if herd => self.wake(s, o),
            (
                ZkMsg::Reply {
                    ret: Ret::Deleted, ..
                },
                Recipe::Releasing,
            ) => s.recipe = Recipe::Done,
            _ => {}
        }
    }

    /// The watched node is gone (or, in the herd-effect recipe, the children changed).
    fn wake(&self, s: &mut ClientState, o: &mut Out<Self>) {
        let ZkActor::Client { server, bug } = self else {
            return;
        };
        if *bug == Some(ZkBug::LockNoRecheck) {
            s.recipe = Recipe::Holding;
            o.set_timer(ZkTimer::Release, TICK..TICK);
            return;
        }
        // 6. goto 2.
        s.woken = true;
        s.recipe = Recipe::Listing;
        s.xid += 1;
        let watch = *bug == Some(ZkBug::HerdEffect);
        o.send(
            *server,
            ZkMsg::Request {
                xid: s.xid,
                op: Op::GetChildren { watch },
            },
        );
    }

    fn register_msg(&self, s: &mut RegisterState, src: Id, msg: ZkMsg) {
        let ZkActor::Register { script, .. } = self else {
            return;
        };
        if src != s.server {
            return; // a closed connection
        }
        match msg {
            ZkMsg::Connected if s.connection == Connection::Connecting => {
                s.connection = Connection::Connected;
                s.moved = true;
            }
            ZkMsg::Refused if s.connection == Connection::Connecting => {
                s.connection = Connection::Disconnected;
            }
            ZkMsg::NodeDataChanged => {
                if let Some((v, _)) = s.watch {
                    s.watch = Some((v, true));
                }
            }
            ZkMsg::Reply { xid, ret, zxid } if s.connection == Connection::Connected => {
                s.answered += 1;
                // §2.3: a client's operations take effect in its order, and what it reads
                // never goes back in time.
                if xid < s.last_xid || zxid < s.last_zxid {
                    s.out_of_order = true;
                }
                s.last_xid = s.last_xid.max(xid);
                s.last_zxid = s.last_zxid.max(zxid);
                if s.moved {
                    s.served_after_move = true;
                }
                if let (Some((set_at, fired)), Some(v)) = (s.watch, ret.version()) {
                    if v > set_at {
                        if fired {
                            s.notified_then_read = true;
                        } else {
                            s.data_before_event = true;
                        }
                        s.watch = None;
                    }
                }
                let op = &script[usize::from(xid) - 1];
                if let (Op::GetData { watch: true }, Some(v)) = (op, ret.version()) {
                    s.watch = Some((v, false));
                }
                if s.pipelined_read == Some(xid) {
                    // It waited for its session's earlier write: it must see it.
                    let wrote = script[..usize::from(xid) - 1]
                        .iter()
                        .any(|op| matches!(op, Op::SetData { .. }));
                    if wrote && ret.version().is_some_and(|v| v > 0) {
                        s.read_saw_own_write = true;
                    }
                }
            }
            _ => {}
        }
    }

    fn register_timeout(&self, s: &mut RegisterState, timer: &ZkTimer, o: &mut Out<Self>) {
        let ZkActor::Register {
            servers, script, ..
        } = self
        else {
            return;
        };
        match timer {
            ZkTimer::Issue if s.connection == Connection::Connected => {
                let op = script[usize::from(s.issued)].clone();
                // Is an earlier write of its own unanswered?
                let unanswered_write = script[usize::from(s.answered)..usize::from(s.issued)]
                    .iter()
                    .any(|op| matches!(op, Op::SetData { .. }));
                s.issued += 1;
                if op.is_read() && unanswered_write && s.pipelined_read.is_none() {
                    s.pipelined_read = Some(s.issued);
                }
                o.send(s.server, ZkMsg::Request { xid: s.issued, op });
                if usize::from(s.issued) < script.len() {
                    o.set_timer(ZkTimer::Issue, TICK..TICK);
                }
            }
            // Its connection broke: it moves with no request outstanding, carrying the last
            // zxid it saw and its watch.
            ZkTimer::Move(i)
                if servers[*i] != s.server && s.connection != Connection::Connecting
                    || s.connection == Connection::Disconnected =>
            {
                if s.connection == Connection::Connected && s.answered < s.issued {
                    o.set_timer(timer.clone(), TICK..TICK);
                    return;
                }
                s.server = servers[*i];
                s.connection = Connection::Connecting;
                s.moved = false;
                o.send(
                    s.server,
                    ZkMsg::Connect {
                        last_zxid: s.last_zxid,
                        watch: s.watch.is_some_and(|(_, fired)| !fired),
                    },
                );
                o.set_timer(timer.clone(), TICK..TICK);
            }
            _ => o.set_timer(timer.clone(), TICK..TICK),
        }
    }
}

impl Actor for ZkActor {
    type Msg = ZkMsg;
    type State = ZkState;
    type Timer = ZkTimer;
    type Storage = ();
    type Random = ();

    fn on_start(&self, id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> ZkState {
        match self {
            ZkActor::Server {
                leader,
                standby,
                clients,
                home,
                leader_change,
                ..
            } => {
                if id == *leader {
                    for c in 0..*clients {
                        o.set_timer(ZkTimer::Expire(c), TICK..TICK);
                    }
                    if *leader_change {
                        o.set_timer(ZkTimer::LeaderChange, TICK..TICK);
                    }
                }
                ZkState::Server(ServerState {
                    role: if id == *leader {
                        Role::Leading
                    } else if id == *standby {
                        Role::Looking
                    } else {
                        Role::Following
                    },
                    deposed: false,
                    replica: Replica::default(),
                    log: Vec::new(),
                    sessions: home.iter().copied().collect(),
                    queue: BTreeMap::new(),
                })
            }
            ZkActor::Client { server, .. } => {
                o.send(
                    *server,
                    ZkMsg::Request {
                        xid: 1,
                        op: Op::Create,
                    },
                );
                ZkState::Client(ClientState {
                    recipe: Recipe::Creating,
                    node: None,
                    xid: 1,
                    woken: false,
                    rewaited: false,
                })
            }
            ZkActor::Register {
                server,
                servers,
                script,
            } => {
                if !script.is_empty() {
                    o.set_timer(ZkTimer::Issue, TICK..TICK);
                }
                for i in 0..servers.len() {
                    o.set_timer(ZkTimer::Move(i), TICK..TICK);
                }
                ZkState::Register(RegisterState {
                    server: *server,
                    connection: Connection::Connected,
                    issued: 0,
                    answered: 0,
                    last_xid: 0,
                    last_zxid: 0,
                    watch: None,
                    out_of_order: false,
                    data_before_event: false,
                    notified_then_read: false,
                    pipelined_read: None,
                    read_saw_own_write: false,
                    moved: false,
                    served_after_move: false,
                })
            }
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<ZkState>, src: Id, msg: ZkMsg, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match &mut next {
            ZkState::Server(s) => self.server_msg(id, s, src, msg, o),
            ZkState::Client(c) => self.client_msg(c, msg, o),
            ZkState::Register(r) => self.register_msg(r, src, msg),
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<ZkState>, timer: &ZkTimer, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match (&mut next, timer, self) {
            (ZkState::Server(s), ZkTimer::Expire(c), ZkActor::Server { .. })
                if !s.log.contains(&Txn::CloseSession { client: *c }) =>
            {
                self.append(id, s, Txn::CloseSession { client: *c }, None, o);
            }
            (ZkState::Server(s), ZkTimer::LeaderChange, ZkActor::Server { standby, .. })
                if !s.deposed =>
            {
                // The other servers elect the standby, which syncs the committed log (Zab §4);
                // this leader has lost its quorum and has not noticed.
                s.deposed = true;
                o.send(*standby, ZkMsg::NewLeader { log: s.log.clone() });
            }
            (ZkState::Client(c), ZkTimer::Release, ZkActor::Client { server, .. })
                if c.recipe == Recipe::Holding =>
            {
                if let Some(n) = c.node {
                    c.recipe = Recipe::Releasing;
                    c.xid += 1;
                    o.send(
                        *server,
                        ZkMsg::Request {
                            xid: c.xid,
                            op: Op::Delete(n),
                        },
                    );
                }
            }
            (ZkState::Register(r), timer, ZkActor::Register { .. }) => {
                self.register_timeout(r, timer, o)
            }
            _ => {}
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }
}
