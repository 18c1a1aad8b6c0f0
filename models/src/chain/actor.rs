//! The master, the chain nodes and the key-value client as stateright actors. They take their
//! peers from their configuration and from the master's [`ChainMsg::Chain`] messages only (never
//! from indices), so that the same actors can run over TCP.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use crate::client::{ClientMsg, RequestId};
use crate::raft::kv::{KvData, KvOp, KvRet};

/// The chain-wide sequence number of an update, from 1, assigned by the head. It is also CRAQ's
/// version number: version `v` of a key is the value update `v` wrote.
pub type SeqNo = u64;

/// An update as it travels down the chain: the head has already run the operation, so the update
/// carries the key's new value (every node applies it the same way, §2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Update {
    pub seq_no: SeqNo,
    /// The client and its request id: the tail answers the client, and a head asked again for a
    /// request it already has (the client resent it after a reconfiguration) does not run it twice.
    pub client: Id,
    pub req: RequestId,
    pub key: String,
    pub value: String,
}

/// The messages of chain replication (§§2, 3) and CRAQ (§2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChainMsg {
    /// The workbench's client envelope: `Request` from a client to a node (writes to the head;
    /// CR reads to the tail, CRAQ reads to any node), `Reply` from the node that answers, and the
    /// driver's `Invoke` and `Return` over TCP.
    Client(ClientMsg<KvOp, KvRet>),
    /// An update forwarded from a node to its successor (§2), or resent to a new successor after
    /// a middle node failed (§3).
    Update(Update),
    /// From the tail back towards the head: every update up to `seq_no` has reached the tail, so
    /// each node prunes it from `Sent` (§3) and, in CRAQ, marks its versions clean (§2.3).
    Ack {
        seq_no: SeqNo,
    },
    /// CRAQ §2.3: a node whose newest version of `key` is dirty asks the tail for the committed
    /// version number, to answer client `client`'s read `req`.
    VersionQuery {
        key: String,
        client: Id,
        req: RequestId,
    },
    /// The tail's answer: `version` is the newest version of `key` it has (0: never written).
    VersionReply {
        key: String,
        version: SeqNo,
        client: Id,
        req: RequestId,
    },
    /// To the master: `node` has failed (the failure detector's report, §3). In the model the
    /// failing node sends it itself as it stops; over TCP the master's failure detector would.
    NodeFailed {
        node: Id,
    },
    /// From the master to every node and client: the chain, head first (§3).
    Chain {
        chain: Vec<Id>,
    },
    /// Client to master over TCP: which is the chain? (A client whose request went unanswered
    /// asks; the master answers `Chain` and tells it of later chains too.)
    GetChain,
    /// The master's failure detector over TCP (§3 assumes one): a probe, and a node's answer.
    /// A node that misses [`MISSED_PROBES`] probes in a row is taken for failed.
    Ping,
    Pong,
}

/// How many probes in a row a node may leave unanswered before the master's failure detector
/// reports it failed (over TCP).
pub const MISSED_PROBES: u8 = 3;

/// What a node or the master keeps on disk over TCP (the model keeps nothing: `persist` off).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainStorage {
    /// The master's chain: a master that restarts does not forget whom it removed (the papers
    /// replicate the master; one process that keeps its chain on disk stands in for it here).
    Master { chain: Vec<Id> },
    /// A node has started: one that starts again is a fail-stop node restarting, and stays out
    /// of the chain (rejoining is "extending a chain", §3, which is not implemented).
    Node,
}

/// Timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChainTimer {
    /// The node fails (model checking only: it stops for good and reports its failure).
    Fail,
    /// The master probes the chain's nodes (its failure detector, over TCP).
    Probe,
    /// A client's request has gone unanswered: ask the master for the chain and send it again
    /// (over TCP, where messages to a dead node are lost).
    Retry,
    /// A node has not been probed by the master for its lease's length (over TCP: it is cut
    /// off, and the master is about to remove it): it stops, before the master reconfigures.
    Lease,
}

crate::seeded_bugs! {
    /// The seeded bugs (pitfalls the papers warn about).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ChainBug {
        /// CRAQ: a node answers a read with its dirty version without asking the tail (§2.3).
        CraqDirtyRead = "craq-dirty-read",
        /// The predecessor of a failed middle node does not resend its `Sent` updates to its new
        /// successor (CR §3): an update is lost.
        NoResend = "no-resend",
        /// CR: any node answers reads from its own history, not only the tail (§2; the reason
        /// CRAQ asks the tail about dirty versions).
        ReadAnyReplica = "read-any-replica",
        /// The head answers a write as soon as it has it, before the tail does (CR §2: the
        /// tail sends the reply).
        AckBeforeTail = "ack-before-tail",
    }
}

/// Chain replication or CRAQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// van Renesse & Schneider: reads at the tail.
    Cr,
    /// Terrace & Freedman: reads at any node, clean or confirmed with the tail.
    Craq,
}

/// Where a client sends its reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReadAt {
    /// The tail (CR §2).
    Tail,
    /// Spread over the chain (CRAQ §2.3): request `seq` goes to the node `(seq - 1) mod length`
    /// positions from the head.
    Spread,
}

/// The master's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MasterCfg {
    /// The initial chain, head first.
    pub chain: Vec<Id>,
    /// Who hears of a new chain besides its nodes.
    pub clients: Vec<Id>,
    /// The failure detector's probe interval (over TCP); `None`: nodes report their own
    /// failures (the model).
    pub probe: Option<Range<Duration>>,
    /// Keep the chain on disk, and tell a node removed from the chain so (over TCP, where a
    /// probe can miss a node that is only slow: it must stop serving).
    pub persist: bool,
}

/// A chain node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeCfg {
    pub master: Id,
    /// The initial chain, head first; later chains come from the master.
    pub chain: Vec<Id>,
    pub mode: Mode,
    /// When the node fails (fail-stop). Model checking only (`model_timeout()`); `None` live.
    pub fail_after: Option<Range<Duration>>,
    /// Mark its start on disk, so that a restart is a failed node that stays out (over TCP).
    pub persist: bool,
    /// Over TCP: how long a probe from the master keeps the node serving. A node cut off from
    /// the master stops when it runs out, which must be before the master removes it (after
    /// more than [`MISSED_PROBES`] probes), so that no node removed from the chain still
    /// answers a client that has not heard of the new chain. `None`: the model's fail-stop
    /// nodes need none.
    pub lease: Option<Range<Duration>>,
    pub bug: Option<ChainBug>,
}

/// A client's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    /// The initial chain, head first; later chains come from the master.
    pub chain: Vec<Id>,
    pub reads: ReadAt,
    /// The operations to run, one after another (request `j + 1` is `ops[j]`); empty for a
    /// client driven over TCP.
    pub ops: Vec<KvOp>,
    /// Who hands the client operations ([`ClientMsg::Invoke`]) and hears their results
    /// ([`ClientMsg::Return`]): the runtime's driver over TCP; `None` in the model.
    pub driver: Option<Id>,
    /// The master, asked for the chain when a request goes unanswered.
    pub master: Id,
    /// How long a request may go unanswered before the client asks the master and sends it
    /// again (over TCP); `None`: never (the model's links lose nothing).
    pub retry: Option<Range<Duration>>,
}

/// The master, a chain node or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChainActor {
    Master(MasterCfg),
    Node(NodeCfg),
    Client(ClientCfg),
}

/// The master's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MasterState {
    /// The chain, head first, without the nodes reported failed.
    pub chain: Vec<Id>,
    /// Clients that asked for the chain (over TCP): they hear of later chains too.
    pub asked: std::collections::BTreeSet<Id>,
    /// Probes each node has left unanswered in a row (over TCP).
    pub silent: std::collections::BTreeMap<Id, u8>,
}

/// A chain node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// The chain as this node last heard it, head first.
    pub chain: Vec<Id>,
    /// `Hist_i` (§3): the updates applied here, in order. Invariant: `hist[k].seq_no == k + 1`.
    pub hist: Vec<Update>,
    /// The updates `hist[..acked]` are known to have reached the tail; `Sent_i` (§3) is
    /// `hist[acked..]`, and a key's versions there are CRAQ's dirty ones (§2.3).
    /// Invariant: `acked <= hist.len()`; at the tail `acked == hist.len()`.
    pub acked: SeqNo,
    /// CRAQ reads waiting for the tail's committed version: `(client, req, key)`.
    pub queries: Vec<(Id, RequestId, String)>,
    /// Messages that arrived before this node learned its new role: a write for the head, a CR
    /// read or a version query for the tail, sent by someone who heard of the new chain first.
    /// Such a node is about to take the role: the head and tail change only by removals.
    pub deferred: Vec<(Id, ChainMsg)>,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The request id of the operation in flight, or of the last one when idle (0: none yet).
    pub seq: RequestId,
    /// The operation in flight; `None` when idle.
    pub op: Option<KvOp>,
    /// The node the request in flight went to.
    pub at: Option<Id>,
    /// The chain as this client last heard it, head first.
    pub chain: Vec<Id>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChainState {
    Master(MasterState),
    Node(NodeState),
    /// A failed node: it has stopped for good (fail-stop, §3) and keeps nothing.
    Failed,
    Client(ClientState),
}

/// `id`'s predecessor and successor in `chain`.
fn neighbours(chain: &[Id], id: Id) -> (Option<Id>, Option<Id>) {
    match chain.iter().position(|n| *n == id) {
        Some(i) => (
            i.checked_sub(1).map(|p| chain[p]),
            chain.get(i + 1).copied(),
        ),
        None => (None, None),
    }
}

impl NodeState {
    pub fn pred(&self, id: Id) -> Option<Id> {
        neighbours(&self.chain, id).0
    }

    pub fn succ(&self, id: Id) -> Option<Id> {
        neighbours(&self.chain, id).1
    }

    pub fn is_head(&self, id: Id) -> bool {
        self.chain.first() == Some(&id)
    }

    pub fn is_tail(&self, id: Id) -> bool {
        self.chain.last() == Some(&id)
    }

    /// The last update applied here (0: none).
    pub fn last(&self) -> SeqNo {
        self.hist.len() as SeqNo
    }

    /// `Sent_i`: forwarded, not yet known to have reached the tail.
    pub fn sent(&self) -> &[Update] {
        &self.hist[self.acked as usize..]
    }

    /// The newest version of `key` among `hist[..upto]` (0: never written).
    pub fn version_upto(&self, key: &str, upto: SeqNo) -> SeqNo {
        self.hist[..upto as usize]
            .iter()
            .rev()
            .find(|u| u.key == key)
            .map_or(0, |u| u.seq_no)
    }

    /// The newest version of `key`, clean or dirty.
    pub fn newest(&self, key: &str) -> SeqNo {
        self.version_upto(key, self.last())
    }

    /// CRAQ's clean version of `key`: the newest known to have reached the tail.
    pub fn clean(&self, key: &str) -> SeqNo {
        self.version_upto(key, self.acked)
    }

    /// Whether the newest version of `key` is dirty.
    pub fn dirty(&self, key: &str) -> bool {
        self.sent().iter().any(|u| u.key == key)
    }

    /// The value of version `version` (0: the initial, empty value).
    pub fn value(&self, version: SeqNo) -> String {
        match version {
            0 => String::new(),
            v => self.hist[v as usize - 1].value.clone(),
        }
    }
}

fn reply(o: &mut Out<ChainActor>, client: Id, seq: RequestId, ret: KvRet) {
    o.send(client, ChainMsg::Client(ClientMsg::Reply { seq, ret }));
}

impl MasterCfg {
    fn start(&self, storage: &Option<ChainStorage>, o: &mut Out<ChainActor>) -> MasterState {
        if let Some(probe) = &self.probe {
            o.set_timer(ChainTimer::Probe, probe.clone());
        }
        let chain = match storage {
            Some(ChainStorage::Master { chain }) => chain.clone(),
            _ => self.chain.clone(),
        };
        MasterState {
            chain,
            asked: Default::default(),
            silent: Default::default(),
        }
    }

    fn on_msg(
        &self,
        s: &MasterState,
        src: Id,
        msg: ChainMsg,
        o: &mut Out<ChainActor>,
    ) -> Option<MasterState> {
        match msg {
            ChainMsg::NodeFailed { node } => self.remove(s, node, o),
            ChainMsg::GetChain => {
                o.send(
                    src,
                    ChainMsg::Chain {
                        chain: s.chain.clone(),
                    },
                );
                let mut next = s.clone();
                next.asked.insert(src);
                Some(next)
            }
            ChainMsg::Pong => {
                let mut next = s.clone();
                next.silent.remove(&src);
                Some(next)
            }
            _ => None,
        }
    }

    /// §3: the master removes the failed node and tells the others (the new head, the new
    /// tail, the neighbours of a middle node, and the clients). It never removes the last node:
    /// the papers assume that not all of a chain fails.
    fn remove(&self, s: &MasterState, node: Id, o: &mut Out<ChainActor>) -> Option<MasterState> {
        if !s.chain.contains(&node) || s.chain.len() == 1 {
            return None;
        }
        let chain: Vec<Id> = s.chain.iter().copied().filter(|n| *n != node).collect();
        let told = chain.iter().chain(&self.clients).chain(&s.asked);
        // Over TCP the removed node hears it too: a node taken for failed that is only slow
        // stops serving (a client that has not heard of the new chain might still ask it).
        let removed = self.persist.then_some(&node);
        for dst in told.chain(removed) {
            o.send(
                *dst,
                ChainMsg::Chain {
                    chain: chain.clone(),
                },
            );
        }
        if self.persist {
            o.save(ChainStorage::Master {
                chain: chain.clone(),
            });
        }
        let mut next = s.clone();
        next.chain = chain;
        next.silent.remove(&node);
        Some(next)
    }

    /// The failure detector (over TCP): a node that has left [`MISSED_PROBES`] probes in a row
    /// unanswered has failed; then every node of the chain is probed again.
    fn on_probe(&self, s: &MasterState, o: &mut Out<ChainActor>) -> MasterState {
        let mut next = s.clone();
        for n in &s.chain {
            *next.silent.entry(*n).or_default() += 1;
        }
        let failed: Vec<Id> = next
            .silent
            .iter()
            .filter(|(_, missed)| **missed > MISSED_PROBES)
            .map(|(n, _)| *n)
            .collect();
        for node in failed {
            if let Some(after) = self.remove(&next, node, o) {
                next = after;
            }
        }
        for n in &next.chain {
            o.send(*n, ChainMsg::Ping);
        }
        if let Some(probe) = &self.probe {
            o.set_timer(ChainTimer::Probe, probe.clone());
        }
        next
    }
}

impl NodeCfg {
    pub fn start(&self, o: &mut Out<ChainActor>) -> NodeState {
        if let Some(after) = &self.fail_after {
            o.set_timer(ChainTimer::Fail, after.clone());
        }
        if self.persist {
            o.save(ChainStorage::Node);
        }
        if let Some(lease) = &self.lease {
            o.set_timer(ChainTimer::Lease, lease.clone());
        }
        NodeState {
            chain: self.chain.clone(),
            hist: Vec::new(),
            acked: 0,
            queries: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// Handles `msg`; the caller keeps `s` only if it changed.
    pub fn on_msg(
        &self,
        id: Id,
        s: &mut NodeState,
        src: Id,
        msg: ChainMsg,
        o: &mut Out<ChainActor>,
    ) {
        match msg {
            ChainMsg::Client(ClientMsg::Request { client, seq, op }) => match op {
                KvOp::Get(key) => self.on_read(id, s, client, seq, key, o),
                op => self.on_write(id, s, client, seq, op, o),
            },
            // 1. FIFO links deliver a predecessor's updates in order, so the next one is
            //    `last + 1`. 2. Anything older is ignored: a resent update this node already has
            //    (§3: the predecessor of a failed node resends all of `Sent`), or one the failed
            //    head had sent before the new head ran the client's resent request.
            ChainMsg::Update(u) if u.seq_no == s.last() + 1 => {
                s.hist.push(u.clone());
                self.forward(id, s, u, o);
            }
            ChainMsg::Ack { seq_no } => {
                let seq_no = seq_no.min(s.last());
                if seq_no > s.acked {
                    s.acked = seq_no;
                    if let Some(pred) = s.pred(id) {
                        o.send(pred, ChainMsg::Ack { seq_no });
                    }
                }
            }
            ChainMsg::VersionQuery { key, client, req } => {
                if s.is_tail(id) {
                    let version = s.newest(&key);
                    o.send(
                        src,
                        ChainMsg::VersionReply {
                            key,
                            version,
                            client,
                            req,
                        },
                    );
                } else {
                    s.deferred
                        .push((src, ChainMsg::VersionQuery { key, client, req }));
                }
            }
            ChainMsg::VersionReply {
                key,
                version,
                client,
                req,
            } => {
                let q = (client, req, key);
                if let Some(i) = s.queries.iter().position(|x| *x == q) {
                    s.queries.remove(i);
                    // The tail's history is a prefix of this node's (Update Propagation), so
                    // this node has version `version`.
                    reply(o, client, req, KvRet::Value(s.value(version)));
                }
            }
            ChainMsg::Chain { chain } => self.on_chain(id, s, chain, o),
            ChainMsg::Ping => {
                if let Some(lease) = &self.lease {
                    o.set_timer(ChainTimer::Lease, lease.clone());
                }
                o.send(src, ChainMsg::Pong);
            }
            _ => {}
        }
    }

    /// §2: the head runs a write, and the update goes down the chain.
    fn on_write(
        &self,
        id: Id,
        s: &mut NodeState,
        client: Id,
        seq: RequestId,
        op: KvOp,
        o: &mut Out<ChainActor>,
    ) {
        if !s.is_head(id) {
            let request = ClientMsg::Request { client, seq, op };
            s.deferred.push((client, ChainMsg::Client(request)));
            return;
        }
        // Resent after a reconfiguration, and already in the chain: the tail answers it.
        if s.hist.iter().any(|u| u.client == client && u.req == seq) {
            return;
        }
        let key = match &op {
            KvOp::Put(k, _) | KvOp::Append(k, _) | KvOp::Get(k) => k.clone(),
        };
        let mut data = KvData::default();
        data.0.insert(key.clone(), s.value(s.newest(&key)));
        data.invoke(&op);
        let u = Update {
            seq_no: s.last() + 1,
            client,
            req: seq,
            value: data.0.remove(&key).expect("just written"),
            key,
        };
        s.hist.push(u.clone());
        if self.bug == Some(ChainBug::AckBeforeTail) {
            reply(o, client, seq, KvRet::Ok);
        }
        self.forward(id, s, u, o);
    }

    /// Sends `u` (just applied) to the successor; at the tail the update is committed: the tail
    /// answers the client and the ack goes back (§2, §3).
    fn forward(&self, id: Id, s: &mut NodeState, u: Update, o: &mut Out<ChainActor>) {
        match s.succ(id) {
            Some(next) => o.send(next, ChainMsg::Update(u)),
            None => {
                s.acked = s.last();
                reply(o, u.client, u.req, KvRet::Ok);
                if let Some(pred) = s.pred(id) {
                    o.send(pred, ChainMsg::Ack { seq_no: u.seq_no });
                }
            }
        }
    }

    /// CR §2: the tail answers reads. CRAQ §2.3: any node answers with its clean version, and
    /// a node whose newest version is dirty asks the tail which version is committed.
    fn on_read(
        &self,
        id: Id,
        s: &mut NodeState,
        client: Id,
        seq: RequestId,
        key: String,
        o: &mut Out<ChainActor>,
    ) {
        let local = s.is_tail(id)
            || match self.mode {
                Mode::Cr => self.bug == Some(ChainBug::ReadAnyReplica),
                Mode::Craq => !s.dirty(&key) || self.bug == Some(ChainBug::CraqDirtyRead),
            };
        if local {
            reply(o, client, seq, KvRet::Value(s.value(s.newest(&key))));
        } else if self.mode == Mode::Craq {
            let tail = *s.chain.last().expect("a chain has a node");
            o.send(
                tail,
                ChainMsg::VersionQuery {
                    key: key.clone(),
                    client,
                    req: seq,
                },
            );
            s.queries.push((client, seq, key));
        } else {
            let request = ClientMsg::Request {
                client,
                seq,
                op: KvOp::Get(key),
            };
            s.deferred.push((client, ChainMsg::Client(request)));
        }
    }

    /// §3: a new chain from the master.
    fn on_chain(&self, id: Id, s: &mut NodeState, chain: Vec<Id>, o: &mut Out<ChainActor>) {
        let old = std::mem::replace(&mut s.chain, chain);
        let (old_pred, old_succ) = neighbours(&old, id);
        let (pred, succ) = (s.pred(id), s.succ(id));
        let old_acked = s.acked;
        // 1. Failure of a middle node: its predecessor resends `Sent` to the new successor,
        //    which ignores what it already has (§3, Figure 4).
        if succ != old_succ && self.bug != Some(ChainBug::NoResend) {
            if let Some(next) = succ {
                for u in s.sent() {
                    o.send(next, ChainMsg::Update(u.clone()));
                }
            }
        }
        // 2. Failure of the tail: its predecessor is the new tail, and what it has sent is now
        //    at the tail. Its clients may not have been answered: answer them (a client takes
        //    the first answer to its request only).
        if succ.is_none() && old_succ.is_some() {
            for u in s.sent() {
                reply(o, u.client, u.req, KvRet::Ok);
            }
            s.acked = s.last();
            for (client, req, key) in std::mem::take(&mut s.queries) {
                reply(o, client, req, KvRet::Value(s.value(s.newest(&key))));
            }
        }
        // 3. A new predecessor learns how much of its `Sent` has reached the tail: the acks
        //    this node sent the failed one are lost with it. So does the old one, if this
        //    node's became the tail.
        if let Some(pred) = pred {
            if s.acked > 0 && (Some(pred) != old_pred || s.acked > old_acked) {
                o.send(pred, ChainMsg::Ack { seq_no: s.acked });
            }
        }
        // 4. A new tail: ask it again (the failed tail may not have answered).
        if s.chain.last() != old.last() && succ.is_some() {
            let tail = *s.chain.last().expect("a chain has a node");
            for (client, req, key) in &s.queries {
                o.send(
                    tail,
                    ChainMsg::VersionQuery {
                        key: key.clone(),
                        client: *client,
                        req: *req,
                    },
                );
            }
        }
        // 5. What waited for this node's new role.
        for (src, msg) in std::mem::take(&mut s.deferred) {
            self.on_msg(id, s, src, msg, o);
        }
    }
}

impl ClientCfg {
    /// Where the request in flight goes.
    pub fn target(&self, s: &ClientState) -> Option<Id> {
        let op = s.op.as_ref()?;
        let chain = &s.chain;
        Some(match (op, self.reads) {
            (KvOp::Get(_), ReadAt::Tail) => *chain.last()?,
            (KvOp::Get(_), ReadAt::Spread) => chain[(s.seq as usize - 1) % chain.len()],
            _ => *chain.first()?,
        })
    }

    /// Sends the request in flight to its target, and notes where it went.
    fn send_current(&self, id: Id, s: &mut ClientState, o: &mut Out<ChainActor>) {
        s.at = self.target(s);
        if let (Some(dst), Some(op)) = (s.at, &s.op) {
            let request = ClientMsg::Request {
                client: id,
                seq: s.seq,
                op: op.clone(),
            };
            o.send(dst, ChainMsg::Client(request));
            if let Some(retry) = &self.retry {
                o.set_timer(ChainTimer::Retry, retry.clone());
            }
        }
    }

    /// Over TCP: the request went unanswered (its node may be dead, or the request lost): ask
    /// the master for the chain, and send the request again (the head runs a write once).
    pub fn on_retry(
        &self,
        id: Id,
        s: &ClientState,
        o: &mut Out<ChainActor>,
    ) -> Option<ClientState> {
        s.op.as_ref()?;
        o.send(self.master, ChainMsg::GetChain);
        let mut next = s.clone();
        self.send_current(id, &mut next, o);
        Some(next)
    }

    pub fn start(&self, id: Id, o: &mut Out<ChainActor>) -> ClientState {
        let s = ClientState {
            seq: 0,
            op: None,
            at: None,
            chain: self.chain.clone(),
        };
        self.next_op(id, s, o)
    }

    /// Moves on to the configuration's next operation, if any, and sends it.
    fn next_op(&self, id: Id, s: ClientState, o: &mut Out<ChainActor>) -> ClientState {
        match self.ops.get(s.seq as usize) {
            Some(op) => {
                let mut next = ClientState {
                    seq: s.seq + 1,
                    op: Some(op.clone()),
                    ..s
                };
                self.send_current(id, &mut next, o);
                next
            }
            None => {
                if self.retry.is_some() {
                    o.cancel_timer(ChainTimer::Retry);
                }
                ClientState {
                    op: None,
                    at: None,
                    ..s
                }
            }
        }
    }

    pub fn on_msg(
        &self,
        id: Id,
        s: &ClientState,
        src: Id,
        msg: ChainMsg,
        o: &mut Out<ChainActor>,
    ) -> Option<ClientState> {
        match msg {
            ChainMsg::Client(ClientMsg::Invoke { seq, op })
                if Some(src) == self.driver && seq > s.seq =>
            {
                let mut next = ClientState {
                    seq,
                    op: Some(op),
                    at: None,
                    chain: s.chain.clone(),
                };
                self.send_current(id, &mut next, o);
                Some(next)
            }
            ChainMsg::Client(ClientMsg::Reply { seq, ret }) if s.op.is_some() && seq == s.seq => {
                if let Some(driver) = self.driver {
                    o.send(driver, ChainMsg::Client(ClientMsg::Return { seq, ret }));
                }
                let idle = ClientState {
                    op: None,
                    at: None,
                    ..s.clone()
                };
                Some(self.next_op(id, idle, o))
            }
            // §3: the master tells the clients the new chain. A request to a node that has left
            // it may be lost: send it again (the head runs a write at most once).
            ChainMsg::Chain { chain } => {
                let mut next = ClientState { chain, ..s.clone() };
                if s.at.is_some_and(|t| !next.chain.contains(&t)) {
                    self.send_current(id, &mut next, o);
                }
                Some(next)
            }
            _ => None,
        }
    }
}

impl Actor for ChainActor {
    type Msg = ChainMsg;
    type Timer = ChainTimer;
    type State = ChainState;
    /// Nothing in the model (a failed node stops for good, fail-stop); over TCP the master's
    /// chain, and a node's mark that it has started ([`ChainStorage`]).
    type Storage = ChainStorage;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<ChainStorage>, o: &mut Out<Self>) -> ChainState {
        match (self, storage) {
            (ChainActor::Master(cfg), _) => ChainState::Master(cfg.start(storage, o)),
            // A node that starts again failed before: it stays out (fail-stop, §3).
            (ChainActor::Node(_), Some(ChainStorage::Node)) => ChainState::Failed,
            (ChainActor::Node(cfg), _) => ChainState::Node(cfg.start(o)),
            (ChainActor::Client(cfg), _) => ChainState::Client(cfg.start(id, o)),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<ChainState>,
        src: Id,
        msg: ChainMsg,
        o: &mut Out<Self>,
    ) {
        let next = match (self, &**state) {
            (ChainActor::Master(cfg), ChainState::Master(s)) => {
                cfg.on_msg(s, src, msg, o).map(ChainState::Master)
            }
            // Removed from the chain while alive (over TCP: taken for failed): it stops.
            (ChainActor::Node(_), ChainState::Node(_)) if matches!(&msg, ChainMsg::Chain { chain } if !chain.contains(&id)) => {
                Some(ChainState::Failed)
            }
            (ChainActor::Node(cfg), ChainState::Node(s)) => {
                let mut next = s.clone();
                cfg.on_msg(id, &mut next, src, msg, o);
                (next != *s).then_some(ChainState::Node(next))
            }
            (ChainActor::Client(cfg), ChainState::Client(s)) => {
                cfg.on_msg(id, s, src, msg, o).map(ChainState::Client)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<ChainState>,
        timer: &ChainTimer,
        o: &mut Out<Self>,
    ) {
        let next = match (self, &**state, timer) {
            (ChainActor::Node(cfg), ChainState::Node(_), ChainTimer::Fail) => {
                // Fail-stop: the node halts for good; the failure detector tells the master.
                o.send(cfg.master, ChainMsg::NodeFailed { node: id });
                Some(ChainState::Failed)
            }
            // Cut off from the master past its lease: it stops (and so stays silent to probes).
            (ChainActor::Node(_), ChainState::Node(_), ChainTimer::Lease) => {
                Some(ChainState::Failed)
            }
            (ChainActor::Master(cfg), ChainState::Master(s), ChainTimer::Probe) => {
                Some(ChainState::Master(cfg.on_probe(s, o)))
            }
            (ChainActor::Client(cfg), ChainState::Client(s), ChainTimer::Retry) => {
                cfg.on_retry(id, s, o).map(ChainState::Client)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }
}
