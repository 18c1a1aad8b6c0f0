//! Bitcoin nodes as real processes on loopback (issue 25): three full nodes that mine real
//! headers at a low target. Reference: Nakamoto §4 (the most-work chain), §5 (nodes converge on
//! one chain once a block breaks a tie), §11 (a private chain with more work, released, takes
//! over; a merchant that waits for z confirmations).
//!
//! The races are set so that the outcomes do not depend on luck: who mines, and how many
//! blocks, is the test's choice (`mine N blocks K`); the hashing, the headers, the gossip and the
//! fork choice are the nodes'.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::bitcoin::BitcoinService;
use impls::client::Driven;
use impls::cluster::{Cluster, ClusterSpec};
use impls::service::{Client, Service};
use models::bitcoin::node::{BtcCall, BtcOp, BtcRet, Confirmations, Mining, Tx};

const HONEST: [usize; 2] = [0, 1];
const ATTACKER: usize = 2;
/// The merchant asks node 0.
const MERCHANT: usize = 0;

fn start(name: &str) -> Cluster {
    let dir = std::env::temp_dir().join(format!("bitcoin-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Cluster::start(ClusterSpec {
        protocol: "bitcoin".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir,
        nodes: 3,
        base_port: None,
        tuning: BitcoinService::tuning(),
        bug: None,
        seed: None,
        capacity: None,
    })
    .unwrap()
}

struct Btc(Driven<BitcoinService>);

impl Btc {
    fn new(cluster: &Cluster) -> Btc {
        Btc(Driven::start(&cluster.config, &BitcoinService::tuning(), None).unwrap())
    }

    fn call(&mut self, node: usize, op: BtcOp) -> BtcRet {
        let shown = BitcoinService::show_op(&BtcCall {
            node,
            op: op.clone(),
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        // The first call may race the nodes' start: try again until one answers.
        loop {
            match self.0.call(
                BtcCall {
                    node,
                    op: op.clone(),
                },
                Duration::from_secs(5),
            ) {
                Ok(ret) => return ret,
                Err(e) if Instant::now() > deadline => panic!("{shown}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn tip(&mut self, node: usize) -> (u64, String, u64) {
        match self.call(node, BtcOp::Tip) {
            BtcRet::Tip {
                height,
                hash,
                reorgs,
                ..
            } => (height, hash, reorgs),
            other => panic!("tip {node}: {other:?}"),
        }
    }

    /// The valid blocks node `node` knows.
    fn known(&mut self, node: usize) -> u64 {
        match self.call(node, BtcOp::Tip) {
            BtcRet::Tip { blocks, .. } => blocks,
            other => panic!("tip {node}: {other:?}"),
        }
    }

    /// Waits (at most 5 s) until node `node` knows `blocks` blocks.
    fn wait_known(&mut self, node: usize, blocks: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.known(node) < blocks {
            assert!(
                Instant::now() < deadline,
                "node {node} never knew {blocks} blocks"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn send(&mut self, node: usize, tx: &str) {
        let ret = self.call(node, BtcOp::Send(Tx::parse(tx).unwrap()));
        assert!(
            matches!(ret, BtcRet::Sent { .. }),
            "send {node} {tx}: {ret:?}"
        );
    }

    fn mine(&mut self, node: usize, blocks: u32) {
        let ret = self.call(node, BtcOp::Mine(Mining::Blocks { blocks, rate: 256 }));
        assert!(matches!(ret, BtcRet::Done(_)), "mine {node}: {ret:?}");
    }

    fn confirmations(&mut self, node: usize, tx: &str) -> Confirmations {
        match self.call(node, BtcOp::Confirmations(Tx::parse(tx).unwrap())) {
            BtcRet::Confirmations(c) => c,
            other => panic!("confirmations {node} {tx}: {other:?}"),
        }
    }

    /// Waits (at most 5 s) until every node has node `leader`'s tip, and returns it.
    fn converge(&mut self, leader: usize) -> (u64, String) {
        self.converge_of(leader, &[0, 1, 2])
    }

    /// Waits (at most 5 s) until `nodes` have node `leader`'s tip, and returns it.
    fn converge_of(&mut self, leader: usize, nodes: &[usize]) -> (u64, String) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (h, tip, _) = self.tip(leader);
            let tips: Vec<String> = nodes.iter().map(|i| self.tip(*i).1).collect();
            if tips.iter().all(|t| *t == tip) {
                return (h, tip);
            }
            assert!(Instant::now() < deadline, "no convergence: {tips:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// §4, §5: three miners at once fork now and then; with mining stopped, one more block breaks
/// any tie and every node follows the one most-work tip. Junk frames stop no node.
#[test]
fn nodes_converge_on_one_most_work_tip() {
    let mut cluster = start("converge");
    let mut c = Btc::new(&cluster);
    c.send(0, "coin5>alice");
    for i in 0..3 {
        let ret = c.call(i, BtcOp::Mine(Mining::On { rate: 256 }));
        assert!(matches!(ret, BtcRet::Done(_)), "{ret:?}");
    }
    for node in 0..3 {
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0, 0, 0, 5, b'j', b'u', b'n', b'k', b'!', 0xff]);
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0xff; 64]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        c.call(i, BtcOp::Mine(Mining::Off));
    }
    c.mine(1, 1);
    let (height, _) = c.converge(1);
    assert!(
        height >= 3,
        "three miners for 1.5 s found only {height} blocks"
    );
    for i in 0..3 {
        assert!(matches!(
            c.confirmations(i, "coin5>alice"),
            Confirmations::Confirmed(_)
        ));
    }
    // Bad operations: one line saying why, exit 2.
    for (words, says) in [
        (
            &["tip", "7"][..],
            "no node 7 (the cluster has nodes 0 to 2)",
        ),
        (&["send", "0", "coin0"], "not a transaction"),
        (&["mine", "0", "fast"], "expected: tip N"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_client"))
            .arg("bitcoin")
            .arg("--cluster")
            .arg(&cluster.config_path)
            .args(words)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {err}");
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{words:?}: {err}"
        );
    }
    cluster.stop();
}

/// §4: a withheld chain with more work, released, reorganises every other node onto it.
#[test]
fn a_released_private_chain_with_more_work_reorganises_every_node() {
    let mut cluster = start("reorg");
    let mut c = Btc::new(&cluster);
    c.mine(0, 1);
    c.converge(0);
    c.call(ATTACKER, BtcOp::Withhold);
    c.mine(ATTACKER, 3);
    c.mine(HONEST[1], 2);
    c.converge_of(HONEST[1], &HONEST);
    let (h0, honest_tip, _) = c.tip(0);
    assert_eq!(h0, 3, "the private blocks stay private");
    assert_eq!(c.tip(ATTACKER).0, 4);
    let ret = c.call(ATTACKER, BtcOp::Release);
    assert_eq!(ret, BtcRet::Done("released 3 blocks".into()));
    let (height, tip) = c.converge(ATTACKER);
    assert_eq!(height, 4);
    assert_ne!(tip, honest_tip);
    for i in HONEST {
        let (_, _, reorgs) = c.tip(i);
        assert_eq!(reorgs, 1, "node {i}");
    }
    cluster.stop();
}

/// The attack of §11, the same both times: the attacker (node 2) keeps `coin0>back` to itself,
/// pays the merchant with `coin0>merchant`, mines two blocks in private (the first carries
/// its double spend) while the honest nodes mine until the merchant has its z confirmations,
/// then releases them.
fn double_spend(name: &str, z: u64) -> (Confirmations, Confirmations) {
    let mut cluster = start(name);
    let mut c = Btc::new(&cluster);
    let (pay, back) = ("coin0>merchant", "coin0>back");
    c.call(ATTACKER, BtcOp::Withhold);
    c.send(ATTACKER, back);
    c.send(MERCHANT, pay);
    c.mine(ATTACKER, 2);
    // The merchant: 0 confirmations is the payment in its memory pool, valid on its chain. The
    // honest nodes mine until it accepts, and at least the block that carries the payment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut accepted = None;
    loop {
        let conf = c.confirmations(MERCHANT, pay);
        let depth = match conf {
            Confirmations::Mempool => 0,
            Confirmations::Confirmed(n) => n,
            other => panic!("the payment is {other:?}"),
        };
        if depth >= z && accepted.is_none() {
            accepted = Some(conf);
        }
        if accepted.is_some() && depth >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no confirmations");
        c.mine(HONEST[0], 1);
    }
    c.converge_of(MERCHANT, &HONEST);
    let known: Vec<u64> = HONEST.iter().map(|i| c.known(*i)).collect();
    c.call(ATTACKER, BtcOp::Release);
    // Every honest node has the two released blocks; the attacker's node keeps its own chain
    // on a tie, so only the honest ones must agree.
    for (i, k) in HONEST.iter().zip(known) {
        c.wait_known(*i, k + 2);
    }
    c.converge_of(MERCHANT, &HONEST);
    let after = c.confirmations(MERCHANT, pay);
    cluster.stop();
    (accepted.expect("accepted"), after)
}

/// §11 with z = 0: the merchant accepts the payment from its memory pool; the released private
/// chain (two blocks against the one that carries the payment) reorganises the merchant's node,
/// and the payment is double-spent.
#[test]
fn a_double_spend_against_zero_confirmations_succeeds() {
    let (accepted, after) = double_spend("zero-conf", 0);
    assert_eq!(accepted, Confirmations::Mempool);
    assert_eq!(after, Confirmations::Conflicted, "the payment is reverted");
}

/// §11 with z = 2: the merchant waits for two blocks; the private chain has no more work than
/// its chain, so the merchant's node keeps its chain (the first seen) and the payment stands.
#[test]
fn the_same_double_spend_against_two_confirmations_fails() {
    let (accepted, after) = double_spend("two-conf", 2);
    assert_eq!(accepted, Confirmations::Confirmed(2));
    assert_eq!(after, Confirmations::Confirmed(2), "the payment stands");
}
