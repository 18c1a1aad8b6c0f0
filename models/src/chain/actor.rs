//! The master, the chain nodes and the key-value client as stateright actors. They take their
//! peers from their configuration and from the master's [`ChainMsg::Chain`] messages only (never
//! from indices), so that the same actors can run over TCP.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{model_timeout, Actor, Id, Out};

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
    /// a middle node failed (§3), by a node that knows chain `epoch`. A node takes updates from
    /// its predecessor only, or from a node that knows a newer chain (which makes it the
    /// predecessor): one with an older chain may skip a node added since.
    Update {
        update: Update,
        epoch: u64,
    },
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
    /// From the master to every node and client: the chain, head first, and its number (§3).
    /// The master numbers its chains from 0 (the configuration's) up; everyone ignores a chain
    /// older than the one it has.
    Chain {
        chain: Vec<Id>,
        epoch: u64,
    },
    /// Client to master over TCP: which is the chain? (A client asks as it starts and when a
    /// request goes unanswered; the master answers `Chain` and tells it of later chains too.)
    GetChain,
    /// A node that has failed and come back empty asks the master to add it at the tail (CR §3,
    /// "extending a chain"). `incarnation` counts the node's starts (kept on disk over TCP): a
    /// `Join` repeated in the same incarnation is answered with the chain again, one from a new
    /// incarnation of a node still in the chain has the node removed first (it lost its state).
    Join {
        incarnation: u64,
    },
    /// CR §3, extending a chain: the old tail sends the node added after it the updates known
    /// to have reached the tail (`Hist_T`, all of it when it sends as the tail), as of chain
    /// `epoch`. Its `Sent` updates follow as `Update`s.
    Handover {
        epoch: u64,
        hist: Vec<Update>,
    },
    /// Over TCP, from a node added at the tail that has no handover yet (it may have been lost)
    /// to its predecessor: send it (again).
    NeedHandover,
    /// The master's failure detector over TCP (§3 assumes one): a probe, carrying the master's
    /// chain (a node that missed a `Chain` message learns it so), and a node's answer. A node
    /// that misses [`MISSED_PROBES`] probes in a row is taken for failed.
    Ping {
        chain: Vec<Id>,
        epoch: u64,
    },
    Pong,
}

/// How many probes in a row a node may leave unanswered before the master's failure detector
/// reports it failed (over TCP).
pub const MISSED_PROBES: u8 = 3;

/// What a node or the master keeps on disk over TCP (the model keeps nothing: `persist` off).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainStorage {
    /// The master's chain and its number: a master that restarts does not forget whom it
    /// removed or added (the papers replicate the master; one process that keeps its chain on
    /// disk stands in for it here).
    Master { chain: Vec<Id>, epoch: u64 },
    /// A node has started `incarnation + 1` times. One that starts again has lost its state
    /// (it keeps no history on disk): it joins again, empty, at the tail (CR §3).
    Node { incarnation: u64 },
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
    /// off, and the master is about to remove it): it stops serving, before the master
    /// reconfigures, and asks to join again.
    Lease,
    /// A failed node comes back, empty, and asks to join (model checking only, within a budget).
    Rejoin,
    /// A joining node has not been added yet: it asks again (over TCP).
    Join,
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
        /// A node added at the tail serves reads and version queries before the old tail's
        /// history has reached it (CR §3: the old tail stays the tail until it has sent
        /// `Hist_T`).
        ServeBeforeHandover = "serve-before-handover",
        /// The old tail never sends the node added after it its history (CR §3): the new node
        /// waits for it forever and never serves.
        NoHandover = "no-handover",
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
    /// Count its starts on disk ([`ChainStorage::Node`]), so that a restart is a node that lost
    /// its state (over TCP).
    pub persist: bool,
    /// A node that fails comes back empty and joins at the tail (CR §3, "extending a chain"):
    /// in the model after its `Rejoin` timer, within the budget; over TCP when it restarts, when
    /// its lease runs out, or when the master removed it while it lived.
    pub rejoin: bool,
    /// Over TCP, where the runtime's fault injection loses messages: on each probe a node whose
    /// `Sent` has not shrunk since the last one resends it; a node answers an update it already
    /// has with its ack level; the head answers a write asked again that has reached the tail;
    /// a node added at the tail asks for its handover until it has it. Off in the model, whose
    /// links lose nothing.
    pub resend: bool,
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
    /// The chain's number: how many times the master has changed it.
    pub epoch: u64,
    /// The incarnation in which each node last joined (see [`ChainMsg::Join`]).
    pub joined: std::collections::BTreeMap<Id, u64>,
}

/// A chain node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// The chain as this node last heard it, head first: empty while the node is joining (it
    /// is not in the chain yet).
    pub chain: Vec<Id>,
    /// The number of that chain.
    pub epoch: u64,
    /// `Hist_i` (§3): the updates applied here, in order. Invariant: `hist[k].seq_no == k + 1`.
    pub hist: Vec<Update>,
    /// The updates `hist[..acked]` are known to have reached the tail; `Sent_i` (§3) is
    /// `hist[acked..]`, and a key's versions there are CRAQ's dirty ones (§2.3).
    /// Invariant: `acked <= hist.len()`; at the tail `acked == hist.len()`.
    pub acked: SeqNo,
    /// CRAQ reads waiting for the tail's committed version: `(client, req, key)`.
    pub queries: Vec<(Id, RequestId, String)>,
    /// Messages that arrived before this node learned its new role: a write for the head, a CR
    /// read or a version query for the tail, sent by someone who heard of the new chain first;
    /// and, while the node joins or waits for its handover, every request.
    pub deferred: Vec<(Id, ChainMsg)>,
    /// Added at the tail in chain `epoch` (CR §3), and waiting for the old tail's
    /// [`ChainMsg::Handover`]: until then it serves nothing.
    pub catching_up: Option<u64>,
    /// This node was the tail when a node was added after it: a CR read or a version query
    /// that reaches it (from someone who has not heard of the new chain) goes on to the tail.
    pub handed_over: bool,
    /// How many times this node has started or joined again ([`ChainMsg::Join`]).
    pub incarnation: u64,
    /// Over TCP: `acked` at the last probe (a `Sent` that has not shrunk since is resent).
    pub probed_acked: SeqNo,
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
    /// The chain as this client last heard it, head first, and its number.
    pub chain: Vec<Id>,
    pub epoch: u64,
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
    /// A node with nothing yet, not in any chain.
    pub fn empty(incarnation: u64) -> Self {
        NodeState {
            chain: Vec::new(),
            epoch: 0,
            hist: Vec::new(),
            acked: 0,
            queries: Vec::new(),
            deferred: Vec::new(),
            catching_up: None,
            handed_over: false,
            incarnation,
            probed_acked: 0,
        }
    }

    /// Whether this node is in the chain it knows (not joining).
    pub fn member(&self, id: Id) -> bool {
        self.chain.contains(&id)
    }

    /// Whether this node serves: in the chain and not waiting for a handover.
    pub fn serving(&self, id: Id) -> bool {
        self.member(id) && self.catching_up.is_none()
    }

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

/// CRAQ §2.3, at the tail: the newest version of `key` is the committed one.
fn answer_version_query(
    s: &NodeState,
    asker: Id,
    key: String,
    client: Id,
    req: RequestId,
    o: &mut Out<ChainActor>,
) {
    let version = s.newest(&key);
    let reply = ChainMsg::VersionReply {
        key,
        version,
        client,
        req,
    };
    o.send(asker, reply);
}

fn reply(o: &mut Out<ChainActor>, client: Id, seq: RequestId, ret: KvRet) {
    o.send(client, ChainMsg::Client(ClientMsg::Reply { seq, ret }));
}

impl MasterCfg {
    fn start(&self, storage: &Option<ChainStorage>, o: &mut Out<ChainActor>) -> MasterState {
        if let Some(probe) = &self.probe {
            o.set_timer(ChainTimer::Probe, probe.clone());
        }
        let (chain, epoch) = match storage {
            Some(ChainStorage::Master { chain, epoch }) => (chain.clone(), *epoch),
            _ => (self.chain.clone(), 0),
        };
        MasterState {
            chain,
            asked: Default::default(),
            silent: Default::default(),
            epoch,
            joined: Default::default(),
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
            ChainMsg::Join { incarnation } => self.join(s, src, incarnation, o),
            ChainMsg::GetChain => {
                o.send(
                    src,
                    ChainMsg::Chain {
                        chain: s.chain.clone(),
                        epoch: s.epoch,
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

    /// Makes `chain` the next chain: tells the nodes in it, the clients, and `also`, and keeps
    /// it on disk over TCP.
    fn announce(
        &self,
        s: &MasterState,
        chain: Vec<Id>,
        also: Option<Id>,
        o: &mut Out<ChainActor>,
    ) -> MasterState {
        let epoch = s.epoch + 1;
        let told = chain.iter().chain(&self.clients).chain(&s.asked);
        for dst in told.chain(also.as_ref()) {
            o.send(
                *dst,
                ChainMsg::Chain {
                    chain: chain.clone(),
                    epoch,
                },
            );
        }
        if self.persist {
            o.save(ChainStorage::Master {
                chain: chain.clone(),
                epoch,
            });
        }
        let mut next = s.clone();
        next.chain = chain;
        next.epoch = epoch;
        next
    }

    /// §3: the master removes the failed node and tells the others (the new head, the new
    /// tail, the neighbours of a middle node, and the clients). It never removes the last node:
    /// the papers assume that not all of a chain fails.
    fn remove(&self, s: &MasterState, node: Id, o: &mut Out<ChainActor>) -> Option<MasterState> {
        if !s.chain.contains(&node) || s.chain.len() == 1 {
            return None;
        }
        let chain: Vec<Id> = s.chain.iter().copied().filter(|n| *n != node).collect();
        // Over TCP the removed node hears it too: a node taken for failed that is only slow
        // stops serving (a client that has not heard of the new chain might still ask it).
        let mut next = self.announce(s, chain, self.persist.then_some(node), o);
        next.silent.remove(&node);
        Some(next)
    }

    /// CR §3, extending a chain: a node of the configuration that came back empty is added at
    /// the tail. A node still in the chain has failed since it was added: it is removed first
    /// (unless it is all that is left of the chain: its updates are lost, which the papers
    /// assume never happens). A `Join` repeated by the incarnation already added gets the chain
    /// again.
    fn join(
        &self,
        s: &MasterState,
        node: Id,
        incarnation: u64,
        o: &mut Out<ChainActor>,
    ) -> Option<MasterState> {
        if !self.chain.contains(&node) {
            return None;
        }
        let mut next = s.clone();
        if s.chain.contains(&node) {
            if s.joined.get(&node) == Some(&incarnation) {
                let chain = s.chain.clone();
                o.send(
                    node,
                    ChainMsg::Chain {
                        chain,
                        epoch: s.epoch,
                    },
                );
                return None;
            }
            next = self.remove(s, node, o)?;
        }
        let mut chain = next.chain.clone();
        chain.push(node);
        let mut next = self.announce(&next, chain, None, o);
        next.joined.insert(node, incarnation);
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
            o.send(
                *n,
                ChainMsg::Ping {
                    chain: next.chain.clone(),
                    epoch: next.epoch,
                },
            );
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
            o.save(ChainStorage::Node { incarnation: 0 });
        }
        if let Some(lease) = &self.lease {
            o.set_timer(ChainTimer::Lease, lease.clone());
        }
        NodeState {
            chain: self.chain.clone(),
            ..NodeState::empty(0)
        }
    }

    /// The node comes back empty (as incarnation `incarnation`) and asks the master to add it
    /// at the tail (CR §3); over TCP it asks again until it is added, and keeps no lease until
    /// it is probed.
    pub fn rejoin(&self, incarnation: u64, o: &mut Out<ChainActor>) -> NodeState {
        o.send(self.master, ChainMsg::Join { incarnation });
        if self.persist {
            o.save(ChainStorage::Node { incarnation });
        }
        if let Some(every) = &self.lease {
            o.cancel_timer(ChainTimer::Lease);
            o.set_timer(ChainTimer::Join, every.clone());
        }
        NodeState::empty(incarnation)
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
        // Joining: a chain with this node in it makes it a member. Requests, a handover and
        // updates wait (the old tail may hear of the new chain first; an update is taken later
        // only from the predecessor, or from a node that knows a newer chain).
        if !s.member(id) {
            match msg {
                ChainMsg::Chain { chain, epoch } | ChainMsg::Ping { chain, epoch }
                    if chain.contains(&id) =>
                {
                    self.on_chain(id, s, chain, epoch, o)
                }
                msg @ (ChainMsg::Client(_)
                | ChainMsg::VersionQuery { .. }
                | ChainMsg::Handover { .. }
                | ChainMsg::Update { .. }) => s.deferred.push((src, msg)),
                _ => {}
            }
            return;
        }
        // Added at the tail, and waiting for the old tail's history: it serves nothing yet.
        if let Some(entered) = s.catching_up {
            match msg {
                ChainMsg::Handover { epoch, hist }
                    if epoch >= entered && s.pred(id) == Some(src) =>
                {
                    s.hist = hist;
                    s.acked = s.last();
                    s.catching_up = None;
                    if s.acked > 0 {
                        o.send(src, ChainMsg::Ack { seq_no: s.acked });
                    }
                    for (src, msg) in std::mem::take(&mut s.deferred) {
                        self.on_msg(id, s, src, msg, o);
                    }
                }
                ChainMsg::Chain { chain, epoch } => self.on_chain(id, s, chain, epoch, o),
                ChainMsg::Ping { chain, epoch } => {
                    self.on_ping(id, s, src, chain, epoch, o);
                }
                ChainMsg::Client(ClientMsg::Request {
                    client,
                    seq,
                    op: KvOp::Get(key),
                }) if self.bug == Some(ChainBug::ServeBeforeHandover) => {
                    self.on_read(id, s, client, seq, key, o)
                }
                ChainMsg::VersionQuery { key, client, req }
                    if self.bug == Some(ChainBug::ServeBeforeHandover) =>
                {
                    answer_version_query(s, src, key, client, req, o)
                }
                msg @ (ChainMsg::Client(_)
                | ChainMsg::VersionQuery { .. }
                | ChainMsg::Update { .. }) => s.deferred.push((src, msg)),
                _ => {}
            }
            return;
        }
        match msg {
            ChainMsg::Client(ClientMsg::Request { client, seq, op }) => match op {
                KvOp::Get(key) => self.on_read(id, s, client, seq, key, o),
                op => self.on_write(id, s, client, seq, op, o),
            },
            // 1. FIFO links deliver a predecessor's updates in order, so the next one is
            //    `last + 1`. 2. Anything older is ignored: a resent update this node already has
            //    (§3: the predecessor of a failed node resends all of `Sent`), or one the failed
            //    head had sent before the new head ran the client's resent request. Over TCP
            //    (`resend`) it is answered with this node's ack level: the resend may be there
            //    because an ack was lost.
            ChainMsg::Update { update: u, epoch }
                if u.seq_no == s.last() + 1 && (s.pred(id) == Some(src) || epoch > s.epoch) =>
            {
                s.hist.push(u.clone());
                self.forward(id, s, u, o);
            }
            ChainMsg::Update { update: u, .. }
                if self.resend && u.seq_no <= s.last() && s.acked > 0 =>
            {
                o.send(src, ChainMsg::Ack { seq_no: s.acked });
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
                    answer_version_query(s, src, key, client, req, o);
                } else if s.handed_over {
                    // The asker's tail was this node: ask the tail for it, and answer the
                    // client from here.
                    self.ask_tail(s, client, req, key, o);
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
                // (A node has every version the tail has, but for a reply to a query from its
                // previous life, which it no longer has.)
                if let Some(i) = s
                    .queries
                    .iter()
                    .position(|x| *x == q && version <= s.last())
                {
                    s.queries.remove(i);
                    // The tail's history is a prefix of this node's (Update Propagation), so
                    // this node has version `version`.
                    reply(o, client, req, KvRet::Value(s.value(version)));
                }
            }
            ChainMsg::Chain { chain, epoch } => self.on_chain(id, s, chain, epoch, o),
            ChainMsg::Ping { chain, epoch } => self.on_ping(id, s, src, chain, epoch, o),
            // A node added after this one has no handover: send it (again), and `Sent` after it.
            ChainMsg::NeedHandover if s.succ(id) == Some(src) => self.hand_over(s, src, o),
            _ => {}
        }
    }

    /// A probe from the master: a newer chain in it is taken as if the master had sent it, the
    /// lease is renewed, and over TCP what may have been lost is sent again.
    fn on_ping(
        &self,
        id: Id,
        s: &mut NodeState,
        src: Id,
        chain: Vec<Id>,
        epoch: u64,
        o: &mut Out<ChainActor>,
    ) {
        self.on_chain(id, s, chain, epoch, o);
        if let Some(lease) = &self.lease {
            o.set_timer(ChainTimer::Lease, lease.clone());
        }
        o.send(src, ChainMsg::Pong);
        if !self.resend {
            return;
        }
        if s.catching_up.is_some() {
            if let Some(pred) = s.pred(id) {
                o.send(pred, ChainMsg::NeedHandover);
            }
        } else if s.acked == s.probed_acked {
            if let Some(next) = s.succ(id) {
                for u in s.sent() {
                    o.send(
                        next,
                        ChainMsg::Update {
                            update: u.clone(),
                            epoch: s.epoch,
                        },
                    );
                }
            }
        }
        s.probed_acked = s.acked;
    }

    /// CR §3, extending a chain: this node (the tail when `next` was added) sends `next` the
    /// updates known to have reached the tail, then its `Sent` ones (none, if it is still the
    /// tail of its own chain when it sends).
    fn hand_over(&self, s: &NodeState, next: Id, o: &mut Out<ChainActor>) {
        if self.bug == Some(ChainBug::NoHandover) {
            return;
        }
        o.send(
            next,
            ChainMsg::Handover {
                epoch: s.epoch,
                hist: s.hist[..s.acked as usize].to_vec(),
            },
        );
        for u in s.sent() {
            o.send(
                next,
                ChainMsg::Update {
                    update: u.clone(),
                    epoch: s.epoch,
                },
            );
        }
    }

    /// Asks the tail for the committed version of `key`, for client `client`'s read `req`, to
    /// answer it from here.
    fn ask_tail(
        &self,
        s: &mut NodeState,
        client: Id,
        req: RequestId,
        key: String,
        o: &mut Out<ChainActor>,
    ) {
        let tail = *s.chain.last().expect("a chain has a node");
        o.send(
            tail,
            ChainMsg::VersionQuery {
                key: key.clone(),
                client,
                req,
            },
        );
        let q = (client, req, key);
        if !s.queries.contains(&q) {
            s.queries.push(q);
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
        // Resent after a reconfiguration, and already in the chain: the tail answers it. Over
        // TCP the tail's answer may have been lost: once the write has reached the tail, the
        // head answers it.
        if let Some(u) = s.hist.iter().find(|u| u.client == client && u.req == seq) {
            if self.resend && u.seq_no <= s.acked {
                reply(o, client, seq, KvRet::Ok);
            }
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
            Some(next) => o.send(
                next,
                ChainMsg::Update {
                    update: u,
                    epoch: s.epoch,
                },
            ),
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
            self.ask_tail(s, client, seq, key, o);
        } else {
            let request = ChainMsg::Client(ClientMsg::Request {
                client,
                seq,
                op: KvOp::Get(key),
            });
            // The client still takes this node for the tail, as it was until a node was added
            // after it: the read goes on to the tail. It waits here too, in case that node
            // fails and this one is the tail again.
            if s.handed_over {
                o.send(
                    *s.chain.last().expect("a chain has a node"),
                    request.clone(),
                );
            }
            s.deferred.push((client, request));
        }
    }

    /// §3: a new chain from the master (chains it has seen already are ignored).
    fn on_chain(
        &self,
        id: Id,
        s: &mut NodeState,
        chain: Vec<Id>,
        epoch: u64,
        o: &mut Out<ChainActor>,
    ) {
        if epoch <= s.epoch && s.member(id) {
            return;
        }
        s.epoch = epoch;
        let old = std::mem::replace(&mut s.chain, chain);
        // 0. Added at the tail (CR §3, extending a chain): wait for the old tail's history. A
        //    node added but not caught up that gets a new predecessor will not get it (its
        //    old predecessor failed): it starts again and asks to join once more.
        if !old.contains(&id) {
            s.catching_up = Some(epoch);
            for (src, msg) in std::mem::take(&mut s.deferred) {
                self.on_msg(id, s, src, msg, o);
            }
            return;
        }
        let (old_pred, old_succ) = neighbours(&old, id);
        let (pred, succ) = (s.pred(id), s.succ(id));
        if s.catching_up.is_some() {
            if pred != old_pred {
                *s = self.rejoin(s.incarnation + 1, o);
            }
            return;
        }
        let old_acked = s.acked;
        // 1. Failure of a middle node: its predecessor resends `Sent` to the new successor,
        //    which ignores what it already has (§3, Figure 4). Extending the chain: the old
        //    tail hands its history over to the new one.
        if let Some(next) = succ.filter(|n| Some(*n) != old_succ) {
            if old_succ.is_none() && !old.contains(&next) {
                self.hand_over(s, next, o);
                s.handed_over = true;
            } else if self.bug != Some(ChainBug::NoResend) {
                for u in s.sent() {
                    o.send(
                        next,
                        ChainMsg::Update {
                            update: u.clone(),
                            epoch: s.epoch,
                        },
                    );
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
        if succ.is_none() {
            s.handed_over = false;
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

/// Whether `msg` is a newer chain without member `id` in it: the master removed `id`.
fn removed(id: Id, s: &NodeState, msg: &ChainMsg) -> bool {
    match msg {
        ChainMsg::Chain { chain, epoch } | ChainMsg::Ping { chain, epoch } => {
            s.member(id) && *epoch > s.epoch && !chain.contains(&id)
        }
        _ => false,
    }
}

impl NodeCfg {
    /// The node stops serving: it comes back empty and joins again, or stays out.
    fn stop(&self, s: &NodeState, o: &mut Out<ChainActor>) -> ChainState {
        if self.rejoin {
            ChainState::Node(self.rejoin(s.incarnation + 1, o))
        } else {
            ChainState::Failed
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
        // Over TCP the client asks the master at once, so that it hears of every later chain.
        if self.retry.is_some() {
            o.send(self.master, ChainMsg::GetChain);
        }
        let s = ClientState {
            seq: 0,
            op: None,
            at: None,
            chain: self.chain.clone(),
            epoch: 0,
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
                    ..s.clone()
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
            ChainMsg::Chain { chain, epoch } if epoch > s.epoch => {
                let mut next = ClientState {
                    chain,
                    epoch,
                    ..s.clone()
                };
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
            // A node that starts again failed before and lost its state: it joins again at the
            // tail, or stays out (fail-stop, §3).
            (ChainActor::Node(cfg), Some(ChainStorage::Node { incarnation })) => {
                if cfg.rejoin {
                    ChainState::Node(cfg.rejoin(incarnation + 1, o))
                } else {
                    ChainState::Failed
                }
            }
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
            // Removed from the chain while alive (over TCP: taken for failed): it stops
            // serving, and joins again empty or stays out.
            (ChainActor::Node(cfg), ChainState::Node(s)) if removed(id, s, &msg) => {
                Some(cfg.stop(s, o))
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
                // Fail-stop: the node halts; the failure detector tells the master. It may
                // come back empty later.
                o.send(cfg.master, ChainMsg::NodeFailed { node: id });
                if cfg.rejoin {
                    o.set_timer(ChainTimer::Rejoin, model_timeout());
                }
                Some(ChainState::Failed)
            }
            (ChainActor::Node(cfg), ChainState::Failed, ChainTimer::Rejoin) => {
                Some(ChainState::Node(cfg.rejoin(1, o)))
            }
            // Cut off from the master past its lease: it stops serving (and so stays silent
            // to probes), and joins again empty or stays out.
            (ChainActor::Node(cfg), ChainState::Node(s), ChainTimer::Lease) if s.member(id) => {
                Some(cfg.stop(s, o))
            }
            (ChainActor::Node(cfg), ChainState::Node(s), ChainTimer::Join) if !s.member(id) => {
                o.send(
                    cfg.master,
                    ChainMsg::Join {
                        incarnation: s.incarnation,
                    },
                );
                if let Some(every) = &cfg.lease {
                    o.set_timer(ChainTimer::Join, every.clone());
                }
                None
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
