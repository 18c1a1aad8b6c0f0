//! Bitcoin over TCP: the nodes of `models::bitcoin::node` (real headers and blocks at a low
//! target, the most-work tip, reorganisations, gossip, mining in batches of nonces), described
//! to the runtime by [`BitcoinService`] (`bitcoin`).
//!
//! - Every node of the cluster file is a full node and a miner; each gossips to all the others.
//! - Operations (`client bitcoin`), each at node N: `tip N`, `send N TX` (TX is
//!   `IN[,IN..]>OUT[,OUT..]`, e.g. `coin0>merchant`), `mine N on [RATE]`, `mine N off`,
//!   `mine N blocks K [RATE]` (answers once K blocks are found), `withhold N` (keep mined
//!   blocks and client transactions private), `release N`, `confirmations N TX` (the merchant's
//!   question: `3`, `0 (in the memory pool)`, `conflicted`, `unknown`).
//! - Tuning ([`Tuning`]): `pow_bits` is the chain's nBits (`--pow-bits`, default 0x1f07ffff:
//!   about 8,192 hashes a block), `heartbeat` the mining tick; a miner tries RATE nonces a tick
//!   (256 unless told otherwise), so RATE sets its share of the hash power.
//! - Storage: none; a restarted node starts from genesis and fetches the chain back from the
//!   first block it hears of.
//! - No Jepsen test: the interesting histories (a double spend and the reorganisation that
//!   undoes it) are in `tests/bitcoin_cluster.rs`.

use std::path::Path;
use std::time::Duration;

use models::bitcoin::node::{
    self, BtcCall, BtcNode, BtcNodeMsg, BtcOp, BtcRet, Confirmations, Mining, NodeParams,
    NodeState, Tx, DEFAULT_RATE,
};
use models::client::{ClientMsg, RequestId};
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::service::{Client, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// `bitcoin` in the service registry.
pub struct BitcoinService;

impl Service for BitcoinService {
    type Actor = BtcNode;
    type Msg = BtcNodeMsg;
    type State = Option<NodeState>;
    type Store = JsonFile;

    const NAME: &'static str = "bitcoin";
    const SUMMARY: &'static str = "Bitcoin: nodes gossip real headers and blocks at a low \
        target, mine, follow the most-work chain and reorganise; a miner may withhold a private \
        chain (Nakamoto §§2, 4, 5, 11)";
    const TUNING_HELP: &'static str = "pow-bits: the chain's nBits (its target); heartbeat: the \
        mining tick (a miner tries its rate of nonces each tick)";

    fn bugs() -> Vec<&'static str> {
        Vec::new()
    }

    fn tuning() -> Tuning {
        Tuning {
            heartbeat: Duration::from_millis(10),
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        _bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<BtcNode, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        Ok(BtcNode::Node {
            peers: cluster.nodes.keys().copied().filter(|p| *p != id).collect(),
            params: NodeParams {
                bits: tuning.pow_bits,
                tick: tuning.heartbeat.max(Duration::from_millis(1)),
            },
        })
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    fn describe(state: &Option<NodeState>) -> Option<String> {
        node::describe(state)
    }

    fn kind(msg: &BtcNodeMsg) -> Option<&'static str> {
        match msg {
            BtcNodeMsg::Block(_) => Some("blocks"),
            BtcNodeMsg::GetBlock(_) => Some("block requests"),
            BtcNodeMsg::Tx(_) => Some("transactions"),
            BtcNodeMsg::GetActive { .. } => Some("chain requests"),
            BtcNodeMsg::Active { .. } => None,
            BtcNodeMsg::Client(ClientMsg::Request { .. }) => Some("client requests"),
            BtcNodeMsg::Client(_) => None,
        }
    }
}

impl Client for BitcoinService {
    type Op = BtcCall;
    type Ret = BtcRet;
    const OPS_HELP: &'static str = "tip N | send N TX | mine N on [RATE] | mine N off | mine N \
        blocks K [RATE] | withhold N | release N | confirmations N TX | mempool N (TX: IN[,IN..]>OUT[,OUT..], \
        e.g. coin0>merchant; RATE: nonces a tick)";

    fn client(cluster: &ClusterConfig, driver: Id, _tuning: &Tuning) -> BtcNode {
        BtcNode::Client {
            nodes: cluster.nodes.keys().copied().collect(),
            driver,
        }
    }

    fn invoke(seq: RequestId, op: BtcCall) -> (RequestId, BtcNodeMsg) {
        (seq, BtcNodeMsg::Client(ClientMsg::Invoke { seq, op }))
    }

    fn returned(msg: BtcNodeMsg) -> Option<(RequestId, BtcRet)> {
        match msg {
            BtcNodeMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<BtcCall, String> {
        parse_op(words)
    }

    fn check_op(cluster: &ClusterConfig, op: &BtcCall) -> Result<(), String> {
        let n = cluster.nodes.len();
        if op.node < n {
            Ok(())
        } else {
            Err(format!(
                "no node {} (the cluster has nodes 0 to {})",
                op.node,
                n.saturating_sub(1)
            ))
        }
    }

    fn show_op(op: &BtcCall) -> String {
        let n = op.node;
        match &op.op {
            BtcOp::Tip => format!("tip {n}"),
            BtcOp::Send(tx) => format!("send {n} {tx}"),
            BtcOp::Mine(Mining::Off) => format!("mine {n} off"),
            BtcOp::Mine(Mining::On { rate }) => format!("mine {n} on {rate}"),
            BtcOp::Mine(Mining::Blocks { blocks, rate }) => {
                format!("mine {n} blocks {blocks} {rate}")
            }
            BtcOp::Withhold => format!("withhold {n}"),
            BtcOp::Release => format!("release {n}"),
            BtcOp::Confirmations(tx) => format!("confirmations {n} {tx}"),
            BtcOp::Mempool => format!("mempool {n}"),
        }
    }

    fn show(ret: &BtcRet) -> String {
        match ret {
            BtcRet::Tip {
                height,
                hash,
                work,
                reorgs,
                deepest_reorg,
                blocks,
            } => format!(
                "height {height} tip {hash} work {work} reorgs {reorgs} deepest {deepest_reorg} \
                 blocks {blocks}"
            ),
            BtcRet::Sent { txid } => format!("sent {txid}"),
            BtcRet::Confirmations(c) => match c {
                Confirmations::Confirmed(n) => n.to_string(),
                Confirmations::Mempool => "0 (in the memory pool)".into(),
                Confirmations::Conflicted => "conflicted".into(),
                Confirmations::Unknown => "unknown".into(),
            },
            BtcRet::Mempool(txs) if txs.is_empty() => "empty".into(),
            BtcRet::Mempool(txs) => txs
                .iter()
                .map(|t| format!("{} {t}", node::short(t.txid())))
                .collect::<Vec<_>>()
                .join("\n"),
            BtcRet::Done(what) => what.clone(),
            BtcRet::Refused(why) => format!("refused: {why}"),
        }
    }
}

/// An operation from the command line's words (see [`BitcoinService::OPS_HELP`]).
pub fn parse_op(words: &[String]) -> Result<BtcCall, String> {
    let usage = || format!("expected: {}", BitcoinService::OPS_HELP);
    let (verb, rest) = words.split_first().ok_or_else(usage)?;
    let (n, rest) = rest.split_first().ok_or_else(usage)?;
    let node: usize = n
        .parse()
        .map_err(|_| format!("'{n}' is not a node number"))?;
    let count = |w: &String, what: &str| -> Result<u32, String> {
        w.parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("'{w}' is not a positive number of {what}"))
    };
    let rate = |w: Option<&String>| w.map_or(Ok(DEFAULT_RATE), |w| count(w, "nonces a tick"));
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    let op = match (verb.as_str(), &words[..]) {
        ("tip", []) => BtcOp::Tip,
        ("send", [tx]) => BtcOp::Send(Tx::parse(tx)?),
        ("mine", ["off"]) => BtcOp::Mine(Mining::Off),
        ("mine", ["on"]) | ("mine", ["on", _]) => BtcOp::Mine(Mining::On {
            rate: rate(rest.get(1))?,
        }),
        ("mine", ["blocks", _]) | ("mine", ["blocks", _, _]) => BtcOp::Mine(Mining::Blocks {
            blocks: count(&rest[1], "blocks")?,
            rate: rate(rest.get(2))?,
        }),
        ("withhold", []) => BtcOp::Withhold,
        ("release", []) => BtcOp::Release,
        ("confirmations", [tx]) => BtcOp::Confirmations(Tx::parse(tx)?),
        ("mempool", []) => BtcOp::Mempool,
        _ => return Err(usage()),
    };
    Ok(BtcCall { node, op })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn operations_name_a_node_and_bad_ones_are_explained() {
        assert_eq!(
            parse_op(&w("send 1 coin0>merchant")),
            Ok(BtcCall {
                node: 1,
                op: BtcOp::Send(Tx::parse("coin0>merchant").unwrap())
            })
        );
        assert_eq!(
            parse_op(&w("mine 2 blocks 3")).map(|c| c.op),
            Ok(BtcOp::Mine(Mining::Blocks {
                blocks: 3,
                rate: DEFAULT_RATE
            }))
        );
        assert_eq!(
            parse_op(&w("mine 0 on 64")).map(|c| c.op),
            Ok(BtcOp::Mine(Mining::On { rate: 64 }))
        );
        for (bad, says) in [
            ("tip x", "not a node number"),
            ("mine 0 on 0", "positive"),
            ("mine 0 blocks", "expected"),
            ("send 0 coin0", "not a transaction"),
            ("steal 0", "expected"),
            ("tip", "expected"),
        ] {
            let e = parse_op(&w(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
