//! Blockstack over TCP: BNS nodes (`models::blockstack::node`) that tail the Bitcoin nodes of
//! `models::bitcoin::node` and replay the name operations their blocks carry, in one cluster
//! described to the runtime by [`BlockstackService`] (`blockstack`).
//!
//! - Roles, as memcache and Aurora mix them: nodes 0, 1, 2 are Bitcoin full nodes and miners
//!   (gossiping among themselves), the rest BNS nodes. BNS node `k` tails Bitcoin node
//!   `(k - 3) % 2`: node 2 is a Bitcoin node no BNS node reads (the tests' withholding
//!   miner). Five nodes unless told otherwise; at least four.
//! - Operations (`client blockstack`): name operations, each sent as PRINCIPAL (`alice`,
//!   `mallory`) with FEE (0-255) to Bitcoin node N, which orders its memory pool by fee:
//!   `preorder N WHO NAME FEE CH [without-owner]` (CH: a recent consensus hash, from `whois`;
//!   `without-owner` hashes the name alone, as clients of `preorder-without-owner` do),
//!   `register N WHO NAME FEE`, `update N WHO NAME ZONEFILE FEE`, `transfer N WHO NAME TO FEE`;
//!   the Bitcoin node's own `tip`, `mempool` (name operations decoded), `mine`, `withhold`,
//!   `release`, `send`, `confirmations`; and at BNS node N `whois N NAME` (owner, zone file
//!   hash, the node's height and consensus hash) and `node N` (its processed chain, database
//!   and rollbacks).
//! - Seeded bugs: the model's four (`--bug`), which the BNS nodes' replay runs with.
//! - Tuning: `pow_bits` and `heartbeat` as for `bitcoin` (the mining tick); a BNS node polls
//!   its Bitcoin node every two heartbeats.
//! - Storage: none (a restarted BNS node replays the chain from genesis).
//! - No Jepsen test: the histories that matter (the front-run, with and without
//!   `one-step-register`, and a reorganisation rolled back) are in `tests/blockstack_cluster.rs`,
//!   which checks the model's properties on the live nodes' states.

use std::path::Path;
use std::time::Duration;

use models::bitcoin::node::{self as btc, BtcNode, BtcNodeMsg, BtcOp, BtcRet, NodeParams};
use models::blockstack::node::{
    self as bns, carrier, name_op, BnsActor, BnsCall, BnsMsg, BnsOp, BnsRet, BnsState,
};
use models::blockstack::{
    committed_hash, BlockstackBug, ConsensusHash, Name, Op, Principal, Tx as NameTx,
};
use models::client::{ClientMsg, RequestId};
use stateright::actor::Id;

use crate::bitcoin::BitcoinService;
use crate::config::ClusterConfig;
use crate::service::{Client, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// Nodes 0, 1, 2 are Bitcoin nodes; the rest are BNS nodes.
pub const BITCOIN_NODES: usize = 3;

/// The Bitcoin node BNS node `k` tails.
pub fn tails(k: usize) -> usize {
    (k - BITCOIN_NODES) % 2
}

/// `blockstack` in the service registry.
pub struct BlockstackService;

impl Service for BlockstackService {
    type Actor = BnsActor;
    type Msg = BnsMsg;
    type State = BnsState;
    type Store = JsonFile;

    const NAME: &'static str = "blockstack";
    const SUMMARY: &'static str = "Blockstack's BNS: name operations in Bitcoin transactions, \
        mined by fee; BNS nodes tail a Bitcoin node's chain, replay it (virtualchain) and roll \
        back on a reorganisation (Ali et al. §§2, 3.2, 3)";
    const TUNING_HELP: &'static str = "pow-bits: the Bitcoin chain's nBits; heartbeat: the \
        mining tick (a BNS node polls its Bitcoin node every two)";

    fn bugs() -> Vec<&'static str> {
        BlockstackBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        BitcoinService::tuning()
    }

    fn nodes() -> Option<usize> {
        Some(5)
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<BnsActor, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let n = cluster.nodes.len();
        let contiguous = cluster.nodes.keys().copied().eq((0..n).map(Id::from));
        if n <= BITCOIN_NODES || !contiguous {
            return Err(ServiceError::Invalid(format!(
                "blockstack runs on nodes 0 to N-1, N at least {}: Bitcoin nodes 0 to {}, then \
                 BNS nodes (the cluster file has {n} nodes)",
                BITCOIN_NODES + 1,
                BITCOIN_NODES - 1
            )));
        }
        let tick = tuning.heartbeat.max(Duration::from_millis(1));
        let k = usize::from(id);
        if k < BITCOIN_NODES {
            return Ok(BnsActor::Bitcoin(BtcNode::Node {
                peers: (0..BITCOIN_NODES)
                    .filter(|p| *p != k)
                    .map(Id::from)
                    .collect(),
                params: NodeParams {
                    bits: tuning.pow_bits,
                    tick,
                },
            }));
        }
        Ok(BnsActor::Bns {
            bitcoin: Id::from(tails(k)),
            bits: tuning.pow_bits,
            poll: tick * 2,
            bug: bug.map(|b| BlockstackBug::from_name(b).expect("the runtime checked the bug")),
        })
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    fn describe(state: &BnsState) -> Option<String> {
        bns::describe(state)
    }

    fn kind(msg: &BnsMsg) -> Option<&'static str> {
        match msg {
            BnsMsg::Btc(m) => BitcoinService::kind(m).or(match m {
                BtcNodeMsg::Active { .. } => Some("chain answers"),
                _ => None,
            }),
            BnsMsg::Client(ClientMsg::Request { .. }) => Some("client requests"),
            BnsMsg::Client(_) => None,
        }
    }
}

impl Client for BlockstackService {
    type Op = BnsCall;
    type Ret = BnsRet;
    const OPS_HELP: &'static str = "at Bitcoin node N: preorder N WHO NAME FEE CH \
        [without-owner] | register N WHO NAME FEE | update N WHO NAME ZONEFILE FEE | transfer N \
        WHO NAME TO FEE | mempool N | tip N | mine N blocks K [RATE] | withhold N | release N \
        (and the other bitcoin operations); at BNS node N: whois N NAME | node N (WHO, TO: alice, \
        mallory; FEE, ZONEFILE: 0-255; CH: a consensus hash from whois)";

    fn client(cluster: &ClusterConfig, driver: Id, _tuning: &Tuning) -> BnsActor {
        BnsActor::Client {
            nodes: cluster.nodes.keys().copied().collect(),
            driver,
        }
    }

    fn invoke(seq: RequestId, op: BnsCall) -> (RequestId, BnsMsg) {
        (seq, BnsMsg::Client(ClientMsg::Invoke { seq, op }))
    }

    fn returned(msg: BnsMsg) -> Option<(RequestId, BnsRet)> {
        match msg {
            BnsMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<BnsCall, String> {
        parse_op(words)
    }

    fn check_op(cluster: &ClusterConfig, op: &BnsCall) -> Result<(), String> {
        let n = cluster.nodes.len();
        if op.node >= n {
            return Err(format!(
                "no node {} (the cluster has nodes 0 to {})",
                op.node,
                n.saturating_sub(1)
            ));
        }
        match (&op.op, op.node < BITCOIN_NODES) {
            (BnsOp::Btc(_), false) => Err(format!(
                "node {} is a BNS node; this operation goes to a Bitcoin node (0 to {})",
                op.node,
                BITCOIN_NODES - 1
            )),
            (BnsOp::Whois(_) | BnsOp::Node, true) => Err(format!(
                "node {} is a Bitcoin node; this operation goes to a BNS node ({} to {})",
                op.node,
                BITCOIN_NODES,
                n - 1
            )),
            _ => Ok(()),
        }
    }

    fn show_op(op: &BnsCall) -> String {
        let n = op.node;
        match &op.op {
            BnsOp::Btc(BtcOp::Send(tx)) => match name_op(tx) {
                Some(t) => format!("{} {n} {}", verb(&t), show_name_op(&t)),
                None => format!("send {n} {tx}"),
            },
            BnsOp::Btc(b) => BitcoinService::show_op(&btc::BtcCall {
                node: n,
                op: b.clone(),
            }),
            BnsOp::Whois(name) => format!("whois {n} {name}"),
            BnsOp::Node => format!("node {n}"),
        }
    }

    fn show(ret: &BnsRet) -> String {
        match ret {
            BnsRet::Btc(BtcRet::Mempool(txs)) if !txs.is_empty() => txs
                .iter()
                .map(|t| match name_op(t) {
                    Some(op) => format!("{} {op:?}", btc::short(t.txid())),
                    None => format!("{} {t}", btc::short(t.txid())),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            BnsRet::Btc(r) => BitcoinService::show(r),
            BnsRet::Whois {
                name,
                owner,
                zonefile_hash,
                height,
                consensus_hash,
            } => {
                let who = match (owner, zonefile_hash) {
                    (None, _) => "not registered".to_string(),
                    (Some(o), None) => format!("owner {}, no zone file", o.name()),
                    (Some(o), Some(z)) => format!("owner {}, zone file hash {z}", o.name()),
                };
                format!("{name}: {who}; height {height} consensus {consensus_hash:08x}")
            }
            BnsRet::Node(s) => {
                let names: Vec<String> = s
                    .node
                    .db
                    .records
                    .iter()
                    .map(|r| format!("{}={}", r.name, r.owner.name()))
                    .collect();
                format!(
                    "height {} tip {} consensus {:08x}; names [{}]; preorders {}; rollbacks {} \
                     (deepest {})",
                    s.height(),
                    btc::short(models::bitcoin::consensus::Hash256(
                        *s.hashes.last().expect("genesis")
                    )),
                    s.consensus_hash(),
                    names.join(" "),
                    s.node.db.preorders.len(),
                    s.rollbacks,
                    s.deepest_rollback
                )
            }
            BnsRet::Refused(why) => format!("refused: {why}"),
        }
    }
}

/// The verb of a name operation.
fn verb(t: &NameTx) -> &'static str {
    match t.op {
        Op::NamePreorder { .. } => "preorder",
        Op::NameRegistration { .. } => "register",
        Op::NameUpdate { .. } => "update",
        Op::NameTransfer { .. } => "transfer",
    }
}

/// A name operation's words after the node: `alice alice.id 1`.
fn show_name_op(t: &NameTx) -> String {
    let who = t.sender.name();
    let fee = t.fee;
    match t.op {
        Op::NamePreorder {
            consensus_hash,
            commits_to,
            ..
        } => format!("{who} {} {fee} {consensus_hash:08x}", commits_to.0),
        Op::NameRegistration { name } => format!("{who} {name} {fee}"),
        Op::NameUpdate {
            name,
            zonefile_hash,
        } => format!("{who} {name} {zonefile_hash} {fee}"),
        Op::NameTransfer { name, recipient } => {
            format!("{who} {name} {} {fee}", recipient.name())
        }
    }
}

/// An operation from the command line's words (see [`BlockstackService::OPS_HELP`]).
pub fn parse_op(words: &[String]) -> Result<BnsCall, String> {
    let usage = || format!("expected: {}", BlockstackService::OPS_HELP);
    let (verb, rest) = words.split_first().ok_or_else(usage)?;
    let (n, args) = rest.split_first().ok_or_else(usage)?;
    let node: usize = n
        .parse()
        .map_err(|_| format!("'{n}' is not a node number"))?;
    let byte = |w: &str, what: &str| -> Result<u8, String> {
        w.parse::<u8>()
            .map_err(|_| format!("'{w}' is not a {what} (0 to 255)"))
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let send = |sender: &str, fee: &str, op: Op| -> Result<BnsOp, String> {
        let tx = NameTx {
            sender: Principal::parse(sender)?,
            fee: byte(fee, "fee")?,
            op,
        };
        Ok(BnsOp::Btc(BtcOp::Send(carrier(&tx))))
    };
    let op = match (verb.as_str(), &args[..]) {
        ("preorder", [who, name, fee, ch, rest @ ..]) if rest.len() <= 1 => {
            let owner = Principal::parse(who)?;
            let name = Name::parse(name)?;
            let bug = match rest {
                [] => None,
                ["without-owner"] => Some(BlockstackBug::PreorderWithoutOwner),
                [other] => return Err(format!("'{other}': expected without-owner or nothing")),
                _ => unreachable!("at most one word, by the guard"),
            };
            let consensus_hash = parse_consensus_hash(ch)?;
            let op = Op::NamePreorder {
                hash: committed_hash(bug, name, owner),
                consensus_hash,
                commits_to: (name, owner),
            };
            send(who, fee, op)?
        }
        ("register", [who, name, fee]) => send(
            who,
            fee,
            Op::NameRegistration {
                name: Name::parse(name)?,
            },
        )?,
        ("update", [who, name, zonefile, fee]) => send(
            who,
            fee,
            Op::NameUpdate {
                name: Name::parse(name)?,
                zonefile_hash: byte(zonefile, "zone file hash")?,
            },
        )?,
        ("transfer", [who, name, to, fee]) => send(
            who,
            fee,
            Op::NameTransfer {
                name: Name::parse(name)?,
                recipient: Principal::parse(to)?,
            },
        )?,
        ("whois", [name]) => BnsOp::Whois(Name::parse(name)?),
        ("node", []) => BnsOp::Node,
        ("preorder" | "register" | "update" | "transfer" | "whois" | "node", _) => {
            return Err(usage())
        }
        _ => {
            let b = crate::bitcoin::parse_op(words).map_err(|e| {
                if e.starts_with("expected") {
                    usage()
                } else {
                    e
                }
            })?;
            BnsOp::Btc(b.op)
        }
    };
    Ok(BnsCall { node, op })
}

/// A consensus hash as `whois` prints it: 8 hex digits.
fn parse_consensus_hash(s: &str) -> Result<ConsensusHash, String> {
    let digits = s.strip_prefix('#').unwrap_or(s);
    if digits.len() != 8 {
        return Err(format!("'{s}' is not a consensus hash (8 hex digits)"));
    }
    u32::from_str_radix(digits, 16)
        .map_err(|_| format!("'{s}' is not a consensus hash (8 hex digits)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn name_operations_parse_and_bad_ones_are_explained() {
        let call = parse_op(&w("register 0 mallory alice.id 2")).unwrap();
        assert_eq!(call.node, 0);
        let BnsOp::Btc(BtcOp::Send(tx)) = &call.op else {
            panic!("{call:?}")
        };
        assert_eq!(tx.fee, 2);
        let op = name_op(tx).unwrap();
        assert_eq!(op.sender, Principal::Mallory);
        assert_eq!(
            BlockstackService::show_op(&call),
            "register 0 mallory alice.id 2"
        );
        let pre = parse_op(&w("preorder 1 alice alice.id 1 0a0b0c0d")).unwrap();
        assert_eq!(
            BlockstackService::show_op(&pre),
            "preorder 1 alice alice.id 1 0a0b0c0d"
        );
        assert_eq!(
            parse_op(&w("whois 3 alice.id")).unwrap().op,
            BnsOp::Whois(Name::parse("alice.id").unwrap())
        );
        assert_eq!(
            parse_op(&w("mempool 0")).unwrap().op,
            BnsOp::Btc(BtcOp::Mempool)
        );
        for (bad, says) in [
            ("register 0 eve alice.id 1", "not a principal"),
            ("register 0 alice Alice.ID 1", "not a name"),
            ("register 0 alice alice.id 300", "not a fee"),
            ("preorder 0 alice alice.id 1 xyz", "consensus hash"),
            ("preorder 0 alice alice.id 1", "expected"),
            ("whois x alice.id", "not a node number"),
            ("steal 0", "expected"),
            ("", "expected"),
        ] {
            let e = parse_op(&w(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
