//! BNS as real nodes: Blockstack nodes that tail a Bitcoin node's active chain and replay the
//! name operations its blocks carry (§3.2, virtualchain). The runtime (`impls/src/blockstack.rs`)
//! runs these actors over TCP, in one cluster with the Bitcoin nodes of
//! [`crate::bitcoin::node`]; the model ([`super`]) never builds them, so its state space is
//! unchanged.
//!
//! - **Operations in transactions.** A name operation rides in an ordinary Bitcoin
//!   transaction's data payload ([`payload`]: the magic `id`, the operation as [`Tx::encode`]
//!   writes it, which the consensus hash covers, then for a NAME_PREORDER its ghost preimage),
//!   with the operation's fee as the transaction's. The Bitcoin nodes neither read nor check
//!   it: they order it by fee like any transaction, and a txid and a Merkle root cover it.
//! - **Tailing the chain.** A BNS node polls its Bitcoin node on a timer
//!   ([`BtcNodeMsg::GetActive`] with a block locator of the chain it has processed) and gets the
//!   active chain's blocks after the fork point. It checks that they link to what it has and
//!   that their Merkle roots cover their transactions, reads the name operations out of them
//!   ([`name_op`]) in block order, and hands them to the model's virtualchain step
//!   ([`NodeState::follow`]): the same replay, name database, consensus hashes and seeded bugs
//!   as the model's nodes. A fork point below its tip is a reorganisation: it rolls back to the
//!   fork point and replays.
//! - **Roles.** One actor type for the cluster: a Bitcoin full node (the model's
//!   [`BtcNode`], whose messages and timers are wrapped), a BNS node, or a client of both.
//!
//! Not here: the Bitcoin node is trusted (as a Blockstack node trusts its `bitcoind`: no
//! proof of work is checked by the BNS node), principals are the model's two (a payload names
//! its sender: there are no signatures), and a BNS node keeps nothing on disk (a restarted one
//! replays the chain from genesis).

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use super::{Block, BlockstackBug, ConsensusHash, Height, Name, NodeState, Principal, Tx};
use crate::bitcoin::consensus::Header;
use crate::bitcoin::node::{
    self as btc, locator, txs_root, BtcCall, BtcNode, BtcNodeMsg, BtcNodeTimer, BtcOp, BtcRet,
    WireBlock,
};
use crate::client::{ClientMsg, RequestId};

/// The first bytes of a Blockstack payload (Blockstack's `OP_RETURN` outputs start `id`).
pub const MAGIC: &[u8; 2] = b"id";

/// The data payload that carries `tx`: the magic, then [`Tx::encode_with_ghost`].
pub fn payload(tx: &Tx) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend(tx.encode_with_ghost());
    b
}

/// The Bitcoin transaction that carries `tx`, with its fee.
pub fn carrier(tx: &Tx) -> btc::Tx {
    btc::Tx::data(payload(tx), u64::from(tx.fee))
}

/// The name operation a Bitcoin transaction carries: a payload that starts with the magic and
/// decodes, and whose fee is the transaction's. Anything else is not a name operation (the
/// chain carries it; BNS ignores it).
pub fn name_op(tx: &btc::Tx) -> Option<Tx> {
    let data = tx.data.as_deref()?.strip_prefix(MAGIC.as_slice())?;
    Tx::decode(data).filter(|op| u64::from(op.fee) == tx.fee)
}

// ---------------------------------------------------------------------------------------------
// Messages

/// A client's operation at node `node` (its index in the cluster file).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BnsCall {
    pub node: usize,
    pub op: BnsOp,
}

/// The operations of `client blockstack`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BnsOp {
    /// An operation at a Bitcoin node (a name operation is a `Send` of its [`carrier`]).
    Btc(BtcOp),
    /// A BNS node: a name's owner and zone file hash, and its height and consensus hash.
    Whois(Name),
    /// A BNS node's whole state (the tests check the model's properties on it).
    Node,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BnsRet {
    Btc(BtcRet),
    Whois {
        name: Name,
        owner: Option<Principal>,
        zonefile_hash: Option<u8>,
        height: u64,
        consensus_hash: ConsensusHash,
    },
    Node(Box<BnsNodeState>),
    /// Not done, and why (a definite failure).
    Refused(String),
}

/// The cluster's messages: the Bitcoin nodes' own, and the clients'.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BnsMsg {
    Btc(BtcNodeMsg),
    Client(ClientMsg<BnsCall, BnsRet>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BnsTimer {
    Btc(BtcNodeTimer),
    /// A BNS node asks its Bitcoin node for the active chain.
    Poll,
}

// ---------------------------------------------------------------------------------------------
// The BNS node

/// A BNS node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BnsNodeState {
    /// Virtualchain's state: the model's node (its processed blocks, name database, consensus
    /// hashes, and the ghosts its properties read).
    pub node: NodeState,
    /// The Bitcoin hash of genesis and of each block of `node.chain`, in internal byte order.
    /// Invariant: `hashes.len() == node.chain.len() + 1`.
    pub hashes: Vec<[u8; 32]>,
    /// Reorganisations it rolled back, and the most blocks one took away.
    pub rollbacks: u64,
    pub deepest_rollback: u64,
    /// Answers it threw away (stale, or blocks that do not link or whose root is wrong).
    pub ignored: u64,
}

impl BnsNodeState {
    pub fn height(&self) -> u64 {
        self.node.chain.len() as u64
    }

    pub fn consensus_hash(&self) -> ConsensusHash {
        *self
            .node
            .consensus_hashes
            .last()
            .expect("genesis has a consensus hash")
    }

    /// The node's answer to `whois NAME`.
    pub fn whois(&self, name: Name) -> BnsRet {
        let record = self.node.db.records.iter().find(|r| r.name == name);
        BnsRet::Whois {
            name,
            owner: record.map(|r| r.owner),
            zonefile_hash: record.and_then(|r| r.zonefile_hash),
            height: self.height(),
            consensus_hash: self.consensus_hash(),
        }
    }

    /// The active chain after `fork` (at `fork_height`), from the Bitcoin node: checked, read,
    /// and followed. Returns whether anything changed.
    fn on_active(
        &mut self,
        fork: [u8; 32],
        fork_height: u64,
        blocks: &[WireBlock],
        tip_height: u64,
        bug: Option<BlockstackBug>,
    ) -> bool {
        // 1. The fork point must be a block this node has: an answer to an older poll, after
        //    the node moved, is stale.
        let Some(fh) = usize::try_from(fork_height)
            .ok()
            .filter(|h| self.hashes.get(*h) == Some(&fork))
        else {
            self.ignored += 1;
            return false;
        };
        // 2. The blocks must link, each to the one before, and carry the transactions their
        //    headers commit to.
        let mut prev = fork;
        let mut read = Vec::with_capacity(blocks.len());
        for w in blocks {
            let Ok(header) = Header::parse(&w.header) else {
                self.ignored += 1;
                return false;
            };
            if header.prev_blockhash.0 != prev || txs_root(&w.txs).0 != header.merkle_root {
                self.ignored += 1;
                return false;
            }
            prev = header.hash().0;
            read.push((prev, w));
        }
        // 3. A locator is sparse: blocks after its fork point may be ones the node has.
        let mut common = fh;
        let mut new = read.as_slice();
        while let Some(((hash, _), rest)) = new.split_first() {
            if self.hashes.get(common + 1) != Some(hash) {
                break;
            }
            common += 1;
            new = rest;
        }
        let ours = self.node.chain.len();
        // 4. Nothing new, unless the Bitcoin node's chain ends below this node's tip (a
        //    shorter chain with more work, or a restarted node): then roll back to it.
        let shorter = new.is_empty() && tip_height < ours as u64 && common == fh;
        if new.is_empty() && !shorter {
            return false;
        }
        let Ok(top) = Height::try_from(common + new.len()) else {
            self.ignored += 1;
            return false;
        };
        debug_assert!(top as usize >= common);
        if common < ours {
            self.rollbacks += 1;
            self.deepest_rollback = self.deepest_rollback.max((ours - common) as u64);
        }
        let next: Vec<Block> = new
            .iter()
            .enumerate()
            .map(|(i, (hash, w))| Block {
                id: u64::from_le_bytes(hash[..8].try_into().expect("8 bytes")),
                height: (common + 1 + i) as Height,
                txs: w.txs.iter().filter_map(name_op).collect(),
            })
            .collect();
        self.node.follow(common, next, bug);
        self.hashes.truncate(common + 1);
        self.hashes.extend(new.iter().map(|(h, _)| *h));
        debug_assert_eq!(self.hashes.len(), self.node.chain.len() + 1);
        true
    }
}

// ---------------------------------------------------------------------------------------------
// The actors

/// A node of the cluster, or a client of its nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BnsActor {
    /// A Bitcoin full node (and miner).
    Bitcoin(BtcNode),
    /// A BNS node that tails Bitcoin node `bitcoin`, whose chain has the genesis nBits `bits`.
    Bns {
        bitcoin: Id,
        bits: u32,
        poll: Duration,
        bug: Option<BlockstackBug>,
    },
    /// A client of the nodes (by index), driven by `driver`.
    Client { nodes: Vec<Id>, driver: Id },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BnsState {
    Bitcoin(Box<Option<btc::NodeState>>),
    Bns(BnsNodeState),
    Client,
}

/// The Bitcoin node's commands, as the cluster's: a reply to a client becomes a reply of the
/// cluster's clients.
fn forward(inner: Out<BtcNode>, o: &mut Out<BnsActor>) {
    for c in inner {
        match c {
            Command::Send(to, BtcNodeMsg::Client(ClientMsg::Reply { seq, ret })) => {
                let ret = BnsRet::Btc(ret);
                o.send(to, BnsMsg::Client(ClientMsg::Reply { seq, ret }))
            }
            Command::Send(to, m) => o.send(to, BnsMsg::Btc(m)),
            Command::SetTimer(t, d) => o.set_timer(BnsTimer::Btc(t), d),
            Command::CancelTimer(t) => o.cancel_timer(BnsTimer::Btc(t)),
            Command::ChooseRandom(..) | Command::Save(_) => {}
        }
    }
}

/// Runs the Bitcoin node `a` on `msg`.
fn bitcoin_on_msg(
    a: &BtcNode,
    id: Id,
    state: &mut Cow<BnsState>,
    src: Id,
    msg: BtcNodeMsg,
    o: &mut Out<BnsActor>,
) {
    let BnsState::Bitcoin(s) = &**state else {
        return;
    };
    let mut inner = Out::new();
    let mut s = Cow::Borrowed(&**s);
    a.on_msg(id, &mut s, src, msg, &mut inner);
    forward(inner, o);
    if let Cow::Owned(s) = s {
        *state = Cow::Owned(BnsState::Bitcoin(Box::new(s)));
    }
}

fn reply(o: &mut Out<BnsActor>, client: Id, seq: RequestId, ret: BnsRet) {
    o.send(client, BnsMsg::Client(ClientMsg::Reply { seq, ret }));
}

impl Actor for BnsActor {
    type Msg = BnsMsg;
    type Timer = BnsTimer;
    type State = BnsState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<()>, o: &mut Out<Self>) -> BnsState {
        match self {
            BnsActor::Bitcoin(a) => {
                let mut inner = Out::new();
                let s = a.on_start(id, storage, &mut inner);
                forward(inner, o);
                BnsState::Bitcoin(Box::new(s))
            }
            BnsActor::Bns { bits, poll, .. } => {
                o.set_timer(BnsTimer::Poll, *poll..*poll);
                BnsState::Bns(BnsNodeState {
                    node: NodeState::genesis(),
                    hashes: vec![btc::genesis(*bits).0.hash().0],
                    rollbacks: 0,
                    deepest_rollback: 0,
                    ignored: 0,
                })
            }
            BnsActor::Client { .. } => BnsState::Client,
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<BnsState>, src: Id, msg: BnsMsg, o: &mut Out<Self>) {
        match (self, msg) {
            (BnsActor::Bitcoin(a), BnsMsg::Btc(m)) => bitcoin_on_msg(a, id, state, src, m, o),
            (BnsActor::Bitcoin(a), BnsMsg::Client(ClientMsg::Request { client, seq, op })) => {
                match op.op {
                    BnsOp::Btc(inner) => {
                        let op = BtcCall {
                            node: op.node,
                            op: inner,
                        };
                        let m = BtcNodeMsg::Client(ClientMsg::Request { client, seq, op });
                        bitcoin_on_msg(a, id, state, src, m, o)
                    }
                    _ => {
                        let why = format!("node {} is a Bitcoin node, not a BNS node", op.node);
                        reply(o, client, seq, BnsRet::Refused(why))
                    }
                }
            }
            (BnsActor::Bns { bitcoin, bug, .. }, msg) => {
                let BnsState::Bns(s) = &**state else { return };
                match msg {
                    BnsMsg::Btc(BtcNodeMsg::Active {
                        fork,
                        fork_height,
                        blocks,
                        tip_height,
                    }) if src == *bitcoin => {
                        let mut next = s.clone();
                        if next.on_active(fork, fork_height, &blocks, tip_height, *bug)
                            || next.ignored != s.ignored
                        {
                            *state = Cow::Owned(BnsState::Bns(next));
                        }
                    }
                    BnsMsg::Client(ClientMsg::Request { client, seq, op }) => {
                        let ret = match op.op {
                            BnsOp::Whois(name) => s.whois(name),
                            BnsOp::Node => BnsRet::Node(Box::new(s.clone())),
                            BnsOp::Btc(_) => BnsRet::Refused(format!(
                                "node {} is a BNS node, not a Bitcoin node",
                                op.node
                            )),
                        };
                        reply(o, client, seq, ret)
                    }
                    _ => {}
                }
            }
            (BnsActor::Client { nodes, driver }, msg) => match msg {
                BnsMsg::Client(ClientMsg::Invoke { seq, op }) if src == *driver => {
                    let Some(node) = nodes.get(op.node).copied() else {
                        let why = format!("no node {} (there are {})", op.node, nodes.len());
                        let ret = BnsRet::Refused(why);
                        o.send(*driver, BnsMsg::Client(ClientMsg::Return { seq, ret }));
                        return;
                    };
                    let request = ClientMsg::Request {
                        client: id,
                        seq,
                        op,
                    };
                    o.send(node, BnsMsg::Client(request));
                }
                BnsMsg::Client(ClientMsg::Reply { seq, ret }) => {
                    o.send(*driver, BnsMsg::Client(ClientMsg::Return { seq, ret }));
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<BnsState>, timer: &BnsTimer, o: &mut Out<Self>) {
        match (self, &**state, timer) {
            (BnsActor::Bitcoin(a), BnsState::Bitcoin(s), BnsTimer::Btc(t)) => {
                let mut inner = Out::new();
                let mut s = Cow::Borrowed(&**s);
                a.on_timeout(id, &mut s, t, &mut inner);
                forward(inner, o);
                if let Cow::Owned(s) = s {
                    *state = Cow::Owned(BnsState::Bitcoin(Box::new(s)));
                }
            }
            (BnsActor::Bns { bitcoin, poll, .. }, BnsState::Bns(s), BnsTimer::Poll) => {
                let hashes: Vec<_> = s
                    .hashes
                    .iter()
                    .map(|h| crate::bitcoin::consensus::Hash256(*h))
                    .collect();
                let ask = BtcNodeMsg::GetActive {
                    locator: locator(&hashes),
                };
                o.send(*bitcoin, BnsMsg::Btc(ask));
                o.set_timer(BnsTimer::Poll, *poll..*poll);
            }
            _ => {}
        }
    }
}

/// A node in words, for `cluster status`.
pub fn describe(state: &BnsState) -> Option<String> {
    match state {
        BnsState::Bitcoin(s) => btc::describe(s).map(|d| format!("bitcoin: {d}")),
        BnsState::Bns(s) => {
            let mut line = format!(
                "bns: height {} consensus {:08x}; names {}, preorders {}",
                s.height(),
                s.consensus_hash(),
                s.node.db.records.len(),
                s.node.db.preorders.len()
            );
            if s.rollbacks > 0 {
                line.push_str(&format!(
                    "; rollbacks {} (deepest {})",
                    s.rollbacks, s.deepest_rollback
                ));
            }
            Some(line)
        }
        BnsState::Client => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockstack::{committed_hash, genesis_consensus_hash, replay, Op, NAME};

    fn preorder(who: Principal) -> Tx {
        Tx {
            sender: who,
            fee: 1,
            op: Op::NamePreorder {
                hash: committed_hash(None, NAME, who),
                consensus_hash: genesis_consensus_hash(),
                commits_to: (NAME, who),
            },
        }
    }

    /// A name operation survives its trip through a Bitcoin transaction, ghost and all; a
    /// payload whose fee is not the transaction's, or without the magic, is not one.
    #[test]
    fn name_operations_ride_in_bitcoin_transactions() {
        let ops = [
            preorder(Principal::Alice),
            Tx {
                sender: Principal::Mallory,
                fee: 2,
                op: Op::NameRegistration { name: NAME },
            },
            Tx {
                sender: Principal::Alice,
                fee: 3,
                op: Op::NameUpdate {
                    name: NAME,
                    zonefile_hash: 7,
                },
            },
            Tx {
                sender: Principal::Mallory,
                fee: 2,
                op: Op::NameTransfer {
                    name: NAME,
                    recipient: Principal::Mallory,
                },
            },
        ];
        for op in ops {
            let tx = carrier(&op);
            assert_eq!(name_op(&tx), Some(op));
            assert_eq!(tx.fee, u64::from(op.fee));
            let mut cheap = tx.clone();
            cheap.fee += 1;
            assert_eq!(name_op(&cheap), None);
            let mut other = tx.clone();
            other.data = Some(op.encode());
            assert_eq!(name_op(&other), None);
        }
    }

    /// The node's state after following blocks is the model's replay of them.
    #[test]
    fn following_blocks_is_the_models_replay() {
        let (header, _) = btc::genesis(btc::DEFAULT_BITS);
        let mut s = BnsNodeState {
            node: NodeState::genesis(),
            hashes: vec![header.hash().0],
            rollbacks: 0,
            deepest_rollback: 0,
            ignored: 0,
        };
        // A stale answer (a fork point it lacks) is ignored.
        assert!(!s.on_active([7; 32], 0, &[], 0, None));
        assert_eq!(s.ignored, 1);
        let b1 = Block {
            id: 1,
            height: 1,
            txs: vec![preorder(Principal::Alice)],
        };
        s.node.follow(0, vec![b1.clone()], None);
        let (db, chs, _) = replay(&[b1], None);
        assert_eq!(s.node.db, db);
        assert_eq!(s.node.consensus_hashes, chs);
    }
}
