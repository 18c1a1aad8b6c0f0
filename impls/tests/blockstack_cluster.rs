//! Blockstack's BNS as real processes on loopback: Bitcoin nodes 0, 1, 2 mine real blocks whose
//! transactions carry name operations; BNS nodes 3 and 4 tail Bitcoin nodes 0 and 1 and replay
//! them (virtualchain). Reference: Ali et al. §3 (preorder, then register: the front-runner who
//! reads Alice's NAME_REGISTRATION in the memory pool and outbids it loses, unless registration
//! is one step), §3.2 (nodes that processed the same blocks agree on the database and the
//! consensus hashes; a reorganisation is rolled back and replayed).
//!
//! The model's properties are checked on the live nodes' states with the model's own functions
//! (`models::blockstack::{one_owner_per_name, same_blocks_same_database, ...}`). Who mines, and
//! how many blocks, is the test's choice, so no outcome depends on luck.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::blockstack::{parse_op, BlockstackService};
use impls::client::Driven;
use impls::cluster::{Cluster, ClusterSpec};
use impls::service::{Client, Service};
use models::bitcoin::node::{BtcOp, BtcRet, Tx as BtcTx};
use models::blockstack::node::{name_op, BnsCall, BnsNodeState, BnsOp, BnsRet};
use models::blockstack::{
    one_owner_per_name, only_owners_change, registrations_preordered, replay,
    same_blocks_same_database, seen, Op, Principal,
};

/// The BNS nodes (3 tails Bitcoin node 0, 4 tails Bitcoin node 1).
const BNS: [usize; 2] = [3, 4];
/// Nonces a tick when a test mines: about 4 ticks a block.
const RATE: u32 = 2048;

fn start(name: &str, bug: Option<&'static str>) -> Cluster {
    let dir =
        std::env::temp_dir().join(format!("blockstack-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Cluster::start(ClusterSpec {
        protocol: "blockstack".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir,
        nodes: 5,
        base_port: None,
        tuning: BlockstackService::tuning(),
        bug,
        seed: None,
        capacity: None,
    })
    .unwrap()
}

struct Bs(Driven<BlockstackService>);

impl Bs {
    fn new(cluster: &Cluster) -> Bs {
        Bs(Driven::start(&cluster.config, &BlockstackService::tuning(), None).unwrap())
    }

    fn call(&mut self, call: BnsCall) -> BnsRet {
        let shown = BlockstackService::show_op(&call);
        let deadline = Instant::now() + Duration::from_secs(10);
        // The first call may race the nodes' start: try again until one answers.
        loop {
            match self.0.call(call.clone(), Duration::from_secs(5)) {
                Ok(ret) => return ret,
                Err(e) if Instant::now() > deadline => panic!("{shown}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// An operation as `client blockstack` takes it.
    fn run(&mut self, words: &str) -> BnsRet {
        let words: Vec<String> = words.split(' ').map(String::from).collect();
        self.call(parse_op(&words).unwrap())
    }

    fn sent(&mut self, words: &str) {
        let ret = self.run(words);
        assert!(
            matches!(ret, BnsRet::Btc(BtcRet::Sent { .. })),
            "{words}: {ret:?}"
        );
    }

    fn mine(&mut self, node: usize, blocks: u32) {
        let ret = self.run(&format!("mine {node} blocks {blocks} {RATE}"));
        assert!(matches!(ret, BnsRet::Btc(BtcRet::Done(_))), "{ret:?}");
    }

    fn node(&mut self, k: usize) -> BnsNodeState {
        match self.run(&format!("node {k}")) {
            BnsRet::Node(s) => *s,
            other => panic!("node {k}: {other:?}"),
        }
    }

    fn mempool(&mut self, node: usize) -> Vec<BtcTx> {
        match self.run(&format!("mempool {node}")) {
            BnsRet::Btc(BtcRet::Mempool(txs)) => txs,
            other => panic!("mempool {node}: {other:?}"),
        }
    }

    /// Waits (at most 5 s) until Bitcoin node `node`'s memory pool holds `n` transactions.
    fn wait_mempool(&mut self, node: usize, n: usize) -> Vec<BtcTx> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let txs = self.mempool(node);
            if txs.len() >= n {
                return txs;
            }
            assert!(Instant::now() < deadline, "mempool {node}: {txs:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most 5 s) until every BNS node has processed `height` blocks, the same ones.
    fn wait_bns(&mut self, height: u64) -> Vec<BnsNodeState> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let states: Vec<BnsNodeState> = BNS.iter().map(|k| self.node(*k)).collect();
            if states
                .iter()
                .all(|s| s.height() == height && s.hashes == states[0].hashes)
            {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "BNS nodes never all reached height {height}: {:?}",
                states.iter().map(|s| s.height()).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn owner(&mut self, k: usize) -> Option<Principal> {
        match self.run(&format!("whois {k} alice.id")) {
            BnsRet::Whois { owner, .. } => owner,
            other => panic!("whois {k}: {other:?}"),
        }
    }

    /// The consensus hash `whois` shows at BNS node `k`, as the client types it back.
    fn consensus_hash(&mut self, k: usize) -> String {
        match self.run(&format!("whois {k} alice.id")) {
            BnsRet::Whois { consensus_hash, .. } => format!("{consensus_hash:08x}"),
            other => panic!("whois {k}: {other:?}"),
        }
    }
}

/// The model's properties, and its invariant (the working database is the replay of the
/// chain), on live BNS nodes; `preordered`: whether registrations had their preorders.
fn check_model_properties(states: &[BnsNodeState], bug: Option<&str>, preordered: bool) {
    let bug = bug.and_then(models::blockstack::BlockstackBug::from_name);
    for s in states {
        assert!(one_owner_per_name(&s.node), "{s:?}");
        assert!(only_owners_change(&s.node), "{s:?}");
        assert_eq!(registrations_preordered(&s.node), preordered, "{s:?}");
        let (db, chs, _) = replay(&s.node.chain, bug);
        assert_eq!(s.node.db, db);
        assert_eq!(s.node.consensus_hashes, chs);
        for t in states {
            assert!(same_blocks_same_database(&s.node, &t.node));
        }
    }
}

/// Alice preorders `alice.id` (mined), then registers; Mallory reads the registration in
/// Bitcoin node 1's memory pool and sends her own registration and a transfer to herself, at a
/// higher fee; node 0 mines them all in one block. Returns the BNS nodes' states after it, and
/// the memory pool's order before it.
fn front_run(cluster: &Cluster) -> (Vec<BnsNodeState>, Vec<BtcTx>) {
    let mut c = Bs::new(cluster);
    c.wait_bns(0);
    let ch = c.consensus_hash(3);
    c.sent(&format!("preorder 0 alice alice.id 1 {ch}"));
    c.mine(0, 1);
    let states = c.wait_bns(1);
    assert!(states.iter().all(|s| s.node.db.preorders.len() == 1));
    c.sent("register 0 alice alice.id 1");
    // Mallory watches the memory pool of the node she uses.
    let seen = c.wait_mempool(1, 1);
    let op = name_op(&seen[0]).expect("a name operation");
    assert_eq!(op.sender, Principal::Alice);
    let Op::NameRegistration { name } = op.op else {
        panic!("{op:?}")
    };
    c.sent(&format!("register 1 mallory {name} 2"));
    c.sent(&format!("transfer 1 mallory {name} mallory 2"));
    let order = c.wait_mempool(0, 3);
    c.mine(0, 1);
    (c.wait_bns(2), order)
}

/// Reference: §3. Mallory's registration is mined ahead of Alice's (higher fee) and rejected:
/// she has no preorder. Every BNS node says Alice owns the name.
#[test]
fn preorder_then_register_defeats_the_front_runner() {
    let mut cluster = start("front-run", None);
    let (states, order) = front_run(&cluster);
    let senders: Vec<Principal> = order
        .iter()
        .map(|t| name_op(t).expect("a name op").sender)
        .collect();
    assert_eq!(
        senders,
        [Principal::Mallory, Principal::Mallory, Principal::Alice],
        "the miner's order is by fee"
    );
    let mut c = Bs::new(&cluster);
    for k in BNS {
        assert_eq!(c.owner(k), Some(Principal::Alice));
    }
    for s in &states {
        assert!(s.node.seen & seen::FRONT_RUN_REJECTED != 0);
        // Mallory's block order: her registration, her transfer, Alice's registration.
        assert_eq!(s.node.chain[1].txs.len(), 3);
    }
    check_model_properties(&states, None, true);
    cluster.stop();
}

/// The same race under `--bug one-step-register`: Mallory's registration needs no preorder,
/// comes first by fee, and takes the name on every BNS node (the model's "a name is registered
/// only by the principal whose preorder committed to it" fails on the live nodes).
#[test]
fn one_step_registration_lets_the_front_runner_win() {
    let bug = "one-step-register";
    let mut cluster = start("one-step", Some(bug));
    let (states, _) = front_run(&cluster);
    let mut c = Bs::new(&cluster);
    for k in BNS {
        assert_eq!(c.owner(k), Some(Principal::Mallory));
    }
    check_model_properties(&states, Some(bug), false);
    cluster.stop();
}

/// Reference: §3.2. Bitcoin node 2 mines a longer private chain; Alice registers on the public
/// one (both BNS nodes agree she owns the name); node 2 releases its chain, Bitcoin nodes 0 and
/// 1 reorganise, and the BNS nodes roll back to genesis and replay: no owner. Alice's
/// operations are back in the memory pool, and mined again they fail: her preorder names a
/// consensus hash of the orphaned fork's history that is no longer recent.
/// Bitcoin node 2 mines three blocks in private; Alice preorders and registers `alice.id` on
/// the public chain (two blocks), and both BNS nodes say she owns it; node 2 releases its
/// chain, and the BNS nodes wait until they have processed it.
fn release_a_longer_private_chain(c: &mut Bs) -> (Vec<BnsNodeState>, Vec<BnsNodeState>) {
    c.wait_bns(0);
    let ret = c.run("withhold 2");
    assert!(matches!(ret, BnsRet::Btc(BtcRet::Done(_))), "{ret:?}");
    c.mine(2, 3);
    let ch = c.consensus_hash(3);
    c.sent(&format!("preorder 0 alice alice.id 1 {ch}"));
    c.mine(0, 1);
    c.wait_bns(1);
    c.sent("register 0 alice alice.id 1");
    c.mine(0, 1);
    let before = c.wait_bns(2);
    for k in BNS {
        assert_eq!(c.owner(k), Some(Principal::Alice));
    }
    let ret = c.run("release 2");
    assert!(matches!(ret, BnsRet::Btc(BtcRet::Done(_))), "{ret:?}");
    (before, c.wait_bns(3))
}

/// Reference: §3.2. The Bitcoin nodes reorganise onto the released chain, and the BNS nodes
/// roll back two blocks to genesis and replay: no owner. Alice's operations are back in the
/// memory pool, and mined again they fail: her preorder names a consensus hash of the
/// orphaned fork's history that is no longer recent.
#[test]
fn a_released_withheld_chain_rolls_the_bns_nodes_back() {
    let mut cluster = start("reorg", None);
    let mut c = Bs::new(&cluster);
    let (before, after) = release_a_longer_private_chain(&mut c);
    check_model_properties(&before, None, true);
    for s in &after {
        assert_eq!(s.rollbacks, 1, "{s:?}");
        assert_eq!(s.deepest_rollback, 2);
        assert!(s.node.seen & seen::ROLLED_BACK_OPS != 0);
        assert!(s.node.db.records.is_empty() && s.node.db.preorders.is_empty());
    }
    check_model_properties(&after, None, true);
    // Alice's two operations went back to the pool; mined again, both fail.
    assert_eq!(c.wait_mempool(0, 2).len(), 2);
    c.mine(0, 1);
    let last = c.wait_bns(4);
    for s in &last {
        assert!(s.node.seen & seen::STALE_CONSENSUS_HASH != 0);
        assert!(s.node.db.records.is_empty());
    }
    check_model_properties(&last, None, true);
    cluster.stop();
}

/// The same reorganisation under `--bug no-reorg-rollback`: the BNS nodes keep the orphaned
/// registration (Alice still owns the name on a chain that never registered it), and BNS node
/// 4, restarted, replays the same blocks from genesis into another database: the model's
/// *nodes that processed the same blocks have equal name databases* fails on the live nodes.
#[test]
fn without_the_rollback_nodes_with_the_same_blocks_disagree() {
    let mut cluster = start("no-rollback", Some("no-reorg-rollback"));
    let mut c = Bs::new(&cluster);
    let (_, after) = release_a_longer_private_chain(&mut c);
    for (k, s) in BNS.iter().zip(&after) {
        assert_eq!(c.owner(*k), Some(Principal::Alice));
        assert_eq!(s.rollbacks, 1);
    }
    cluster.kill(4);
    cluster.restart(4).unwrap();
    // A fresh client: the old one's connection to node 4 died with it.
    let mut c = Bs::new(&cluster);
    let fresh = c.wait_bns(3);
    assert_eq!(c.owner(3), Some(Principal::Alice));
    assert_eq!(c.owner(4), None);
    assert_eq!(fresh[0].hashes, fresh[1].hashes, "the same blocks");
    assert!(!same_blocks_same_database(&fresh[0].node, &fresh[1].node));
    cluster.stop();
}

/// Junk frames to every node change nothing, and bad operations get one line and exit 2.
#[test]
fn junk_frames_change_nothing_and_bad_operations_are_refused() {
    let mut cluster = start("junk", None);
    let mut c = Bs::new(&cluster);
    c.sent("register 0 alice alice.id 1");
    c.mine(0, 1);
    let before = c.wait_bns(1);
    for node in 0..5 {
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0, 0, 0, 5, b'j', b'u', b'n', b'k', b'!', 0xff]);
        let mut s = std::net::TcpStream::connect(cluster.addr(node)).unwrap();
        let _ = s.write_all(&[0xff; 64]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = c.wait_bns(1);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.node, a.node);
        assert_eq!(b.hashes, a.hashes);
    }
    // One step registration is off: Alice's registration without a preorder was rejected.
    assert_eq!(c.owner(3), None);
    let tip = c.call(BnsCall {
        node: 0,
        op: BnsOp::Btc(BtcOp::Tip),
    });
    assert!(
        matches!(tip, BnsRet::Btc(BtcRet::Tip { height: 1, .. })),
        "{tip:?}"
    );
    for (words, says) in [
        (&["whois", "0", "alice.id"][..], "node 0 is a Bitcoin node"),
        (&["mempool", "3"], "node 3 is a BNS node"),
        (&["whois", "9", "alice.id"], "no node 9"),
        (
            &["register", "0", "eve", "alice.id", "1"],
            "not a principal",
        ),
        (&["preorder", "0", "alice", "alice.id", "1"], "expected"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_client"))
            .arg("blockstack")
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
