//! The node actors in one process: messages delivered in order by hand, timers fired by hand.

use std::collections::VecDeque;

use stateright::actor::Command;

use super::*;

/// An easy target: about 16 hashes a block, so that tests mine in microseconds.
const BITS: u32 = 0x200f_ffff;

struct Net {
    nodes: Vec<BtcNode>,
    states: Vec<Option<NodeState>>,
    queue: VecDeque<(Id, Id, BtcNodeMsg)>,
    replies: Vec<BtcRet>,
}

const CLIENT: usize = 99;

impl Net {
    fn new(n: usize) -> Net {
        let ids: Vec<Id> = (0..n).map(Id::from).collect();
        let params = NodeParams {
            bits: BITS,
            tick: Duration::from_millis(10),
        };
        let nodes: Vec<BtcNode> = ids
            .iter()
            .map(|me| BtcNode::Node {
                peers: ids.iter().copied().filter(|p| p != me).collect(),
                params: params.clone(),
            })
            .collect();
        let states = nodes
            .iter()
            .enumerate()
            .map(|(i, a)| a.on_start(Id::from(i), &None, &mut Out::new()))
            .collect();
        Net {
            nodes,
            states,
            queue: VecDeque::new(),
            replies: Vec::new(),
        }
    }

    fn apply(&mut self, me: usize, o: Out<BtcNode>) {
        for c in o {
            if let Command::Send(dst, msg) = c {
                if usize::from(dst) == CLIENT {
                    if let BtcNodeMsg::Client(ClientMsg::Reply { ret, .. }) = msg {
                        self.replies.push(ret);
                    }
                } else {
                    self.queue.push_back((Id::from(me), dst, msg));
                }
            }
        }
    }

    fn run(&mut self) {
        while let Some((src, dst, msg)) = self.queue.pop_front() {
            let i = usize::from(dst);
            let mut o = Out::new();
            let mut cow = Cow::Owned(self.states[i].take());
            self.nodes[i].on_msg(dst, &mut cow, src, msg, &mut o);
            self.states[i] = cow.into_owned();
            self.apply(i, o);
        }
    }

    fn call(&mut self, i: usize, op: BtcOp) -> BtcRet {
        let msg = BtcNodeMsg::Client(ClientMsg::Request {
            client: Id::from(CLIENT),
            seq: 1,
            op: BtcCall { node: i, op },
        });
        self.queue.push_back((Id::from(CLIENT), Id::from(i), msg));
        self.run();
        self.replies.pop().expect("an answer")
    }

    /// Node `i` mines `k` blocks (its timer fired until it has), then the network settles.
    fn mine(&mut self, i: usize, k: u32) {
        let mined = self.state(i).mined;
        self.call(i, BtcOp::Mine(Mining::On { rate: 4 }));
        while self.state(i).mined < mined + u64::from(k) {
            let mut o = Out::new();
            let mut cow = Cow::Owned(self.states[i].take());
            self.nodes[i].on_timeout(Id::from(i), &mut cow, &BtcNodeTimer::Mine, &mut o);
            self.states[i] = cow.into_owned();
            self.apply(i, o);
            self.run();
        }
        self.call(i, BtcOp::Mine(Mining::Off));
    }

    fn state(&self, i: usize) -> &NodeState {
        self.states[i].as_ref().expect("a node")
    }
}

fn tx(s: &str) -> Tx {
    Tx::parse(s).unwrap()
}

#[test]
fn transactions_parse_and_bad_ones_are_refused() {
    assert_eq!(
        tx("coin0,coin1>merchant"),
        Tx {
            spends: vec!["coin0".into(), "coin1".into()],
            pays: vec!["merchant".into()],
            fee: 0,
            data: None,
        }
    );
    assert_eq!(tx("coin0>a,b").to_string(), "coin0>a,b");
    for bad in ["coin0", ">x", "coin0>", "a,a>b", "a>b b", "a>b,b"] {
        assert!(Tx::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_genesis_block_meets_its_target_and_every_node_has_it() {
    let (header, txs) = genesis(DEFAULT_BITS);
    assert!(check_proof_of_work(
        header.hash(),
        DEFAULT_BITS,
        chain_params(DEFAULT_BITS).pow_limit
    ));
    assert_eq!(header.merkle_root, txs_root(&txs).0);
    let net = Net::new(2);
    assert_eq!(net.state(0).tip(), net.state(1).tip());
}

/// §4, §5: blocks mined at one node reach the others, which check them and follow.
#[test]
fn mined_blocks_are_gossiped_and_followed() {
    let mut net = Net::new(3);
    net.call(0, BtcOp::Send(tx("coin0>merchant")));
    assert_eq!(net.state(2).mempool, vec![tx("coin0>merchant")]);
    net.mine(0, 2);
    for i in 0..3 {
        assert_eq!(net.state(i).height(), 2);
        assert_eq!(net.state(i).tip(), net.state(0).tip());
        assert_eq!(
            net.state(i).confirmations(&tx("coin0>merchant")),
            Confirmations::Confirmed(2)
        );
        assert!(net.state(i).mempool.is_empty());
    }
}

/// §11: a withheld chain with more work, released, reorganises every node, and the payment
/// it double-spends is conflicted; one with equal work does not (the first seen stays).
#[test]
fn a_released_heavier_private_chain_reorganises_and_double_spends() {
    let mut net = Net::new(3);
    net.call(2, BtcOp::Withhold);
    assert!(matches!(
        net.call(2, BtcOp::Send(tx("coin0>back"))),
        BtcRet::Sent { .. }
    ));
    assert_eq!(net.state(0).mempool, vec![], "a withholding node keeps it");
    net.call(0, BtcOp::Send(tx("coin0>merchant")));
    assert_eq!(
        net.state(2).mempool,
        vec![tx("coin0>back")],
        "the conflict is dropped"
    );
    net.mine(2, 2);
    assert_eq!(net.state(0).height(), 0, "withheld");
    net.mine(1, 1);
    let pay = tx("coin0>merchant");
    assert_eq!(
        net.state(0).confirmations(&pay),
        Confirmations::Confirmed(1)
    );
    assert_eq!(net.state(2).height(), 2, "its own chain has more work");
    net.call(2, BtcOp::Release);
    for i in 0..3 {
        let s = net.state(i);
        assert_eq!(s.height(), 2);
        assert_eq!(s.confirmations(&pay), Confirmations::Conflicted);
        assert_eq!(
            s.confirmations(&tx("coin0>back")),
            Confirmations::Confirmed(2)
        );
    }
    assert_eq!((net.state(0).reorgs, net.state(0).deepest_reorg), (1, 1));

    // Equal work: the merchant's chain, seen first, stays.
    net.call(2, BtcOp::Withhold);
    net.call(2, BtcOp::Send(tx("coin1>back")));
    net.call(0, BtcOp::Send(tx("coin1>merchant")));
    net.mine(2, 2);
    net.mine(0, 2);
    net.call(2, BtcOp::Release);
    let pay = tx("coin1>merchant");
    assert_eq!(
        net.state(0).confirmations(&pay),
        Confirmations::Confirmed(2)
    );
    assert_eq!(
        net.state(1).confirmations(&pay),
        Confirmations::Confirmed(2)
    );
    assert_eq!(net.state(0).reorgs, 1);
}

/// Bad blocks are refused and counted, and stop nothing: a wrong Merkle root (and the right
/// block after it is still taken), a header of the wrong size, a double spend; an orphan waits
/// for its parent, fetched from the sender.
#[test]
fn bad_blocks_are_refused_and_orphans_fetch_their_parents() {
    let mut net = Net::new(2);
    let params = NodeParams {
        bits: BITS,
        tick: Duration::from_millis(10),
    };
    let connected = net.nodes[0].clone();
    // Node 0 mines alone: node 1 hears nothing.
    net.nodes[0] = BtcNode::Node {
        peers: vec![],
        params,
    };
    net.mine(0, 1);
    let good = net.state(0).wire(net.state(0).tip());
    let header = Header::parse(&good.header).unwrap();
    let send = |net: &mut Net, w: WireBlock| {
        net.queue
            .push_back((Id::from(0), Id::from(1), BtcNodeMsg::Block(w)));
        net.run();
    };
    let mut w = good.clone();
    w.txs.push(tx("coin0>x"));
    send(&mut net, w);
    let mut w = good.clone();
    w.header.pop();
    send(&mut net, w);
    assert_eq!(net.state(1).rejected, 2);
    send(&mut net, good);
    assert_eq!(
        net.state(1).height(),
        1,
        "the right block after a mutated one"
    );
    // A block spending coin0 twice, with valid proof of work.
    let txs = vec![
        Tx {
            spends: vec![],
            pays: vec!["reward-9-1".into()],
            fee: 0,
            data: None,
        },
        tx("coin0>x"),
        tx("coin0>y"),
    ];
    let mut h = Header {
        prev_blockhash: header.hash(),
        merkle_root: txs_root(&txs).0,
        time: header.time + BLOCK_SPACING,
        ..header
    };
    let limit = chain_params(BITS).pow_limit;
    while !check_proof_of_work(h.hash(), BITS, limit) {
        h.nonce += 1;
    }
    let txs_block = WireBlock {
        header: h.serialize().to_vec(),
        txs,
    };
    send(&mut net, txs_block);
    assert_eq!(net.state(1).rejected, 3, "{:?}", net.state(1).last_rejected);
    assert_eq!(net.state(1).height(), 1);

    // Node 0 mines two more alone, then one connected: node 1 fetches the two back.
    net.mine(0, 2);
    assert_eq!(net.state(1).height(), 1);
    net.nodes[0] = connected;
    net.mine(0, 1);
    assert_eq!(net.state(1).height(), 4);
    assert_eq!(net.state(1).tip(), net.state(0).tip());
}

/// A withholding node's client transactions stay private until the release, which sends those
/// still in its memory pool.
#[test]
fn private_transactions_go_out_at_the_release() {
    let mut net = Net::new(2);
    net.call(1, BtcOp::Withhold);
    net.call(1, BtcOp::Send(tx("coin3>later")));
    assert!(net.state(0).mempool.is_empty());
    assert_eq!(
        net.call(1, BtcOp::Release),
        BtcRet::Done("released 0 blocks".into())
    );
    assert_eq!(net.state(0).mempool, vec![tx("coin3>later")]);
    assert!(net.state(1).private.is_empty());
}

/// The miner takes the memory pool by fee, highest first, equal fees in arrival order, and a
/// child only after its parent; the block carries the payloads, and the active chain is read
/// back from a locator (a Blockstack node's poll).
#[test]
fn the_miner_orders_by_fee_and_the_active_chain_is_read_from_a_locator() {
    let mut net = Net::new(2);
    let with_fee = |s: &str, fee| Tx { fee, ..tx(s) };
    let sent = [
        with_fee("coin0>x", 1),
        Tx::data(b"id:first".to_vec(), 3),
        with_fee("x>y", 5),
        Tx::data(b"id:second".to_vec(), 3),
    ];
    for t in &sent {
        assert!(matches!(
            net.call(0, BtcOp::Send(t.clone())),
            BtcRet::Sent { .. }
        ));
    }
    let order = [&sent[1], &sent[3], &sent[0], &sent[2]].map(|t| t.clone());
    assert_eq!(net.call(1, BtcOp::Mempool), BtcRet::Mempool(order.to_vec()));
    net.mine(0, 1);
    let tip = net.state(0).tip_entry();
    assert_eq!(tip.txs[1..], order);
    assert!(net.state(1).mempool.is_empty(), "mined: out of the pool");
    // A poll from genesis gets the one block; from the tip, nothing.
    let s = net.state(1);
    let poll = |locator: Vec<[u8; 32]>, net: &mut Net| {
        let msg = BtcNodeMsg::GetActive { locator };
        let mut o = Out::new();
        let mut cow = Cow::Owned(net.states[1].take());
        net.nodes[1].on_msg(Id::from(1), &mut cow, Id::from(CLIENT), msg, &mut o);
        net.states[1] = cow.into_owned();
        o.into_iter()
            .find_map(|c| match c {
                Command::Send(
                    _,
                    BtcNodeMsg::Active {
                        fork_height,
                        blocks,
                        ..
                    },
                ) => Some((fork_height, blocks.len())),
                _ => None,
            })
            .expect("an answer")
    };
    let genesis = locator(&s.active[..1]);
    let tip_locator = locator(&s.active);
    assert_eq!(poll(genesis, &mut net), (0, 1));
    assert_eq!(poll(tip_locator, &mut net), (1, 0));
}
