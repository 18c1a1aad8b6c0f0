//! The checked model: two honest miners, the attacker and the merchant in one `ActorModel` over
//! an unordered network, in the workbench's [`Harness`]. Read top to bottom: blocks and
//! transactions, messages, a node's state, the actor, the properties, the model.

use std::borrow::Cow;
use std::fmt;

use stateright::actor::{model_timeout, Actor, ActorModel, ActorModelAction, Id, Network, Out};
use stateright::Property;

use crate::harness::{HAction, HState, Harness, Harnessed};

crate::seeded_bugs! {
    /// The seeded bugs: each puts back a pitfall the paper (or Bitcoin's history) warns about.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BitcoinBug {
        /// Fork choice by height: a node follows the longest chain, counted in blocks, not the
        /// one with the most proof-of-work (§4: "the longest chain, which has the greatest
        /// proof-of-work effort invested in it"; blocks of different difficulty differ).
        LongestNotHeaviest = "longest-not-heaviest",
        /// CVE-2018-17144: a block's transactions are checked against the outputs unspent
        /// before the block, not against each other, so one block may spend an output twice.
        NoDuplicateInputCheck = "no-duplicate-input-check",
        /// The merchant hands over the goods as soon as it sees the payment, whatever `z` says.
        ZeroConfirmations = "zero-confirmations",
    }
}

// ---------------------------------------------------------------------------------------------
// Blocks and transactions (§2, §4)

/// A block's proof-of-work: the expected number of hashes it took (1 or 3 at the toy
/// difficulties here; a chain's work is the sum over its blocks).
pub type Work = u8;

/// The works a miner may find a block at: an easy block and a hard one (a difficulty three
/// times higher). With at most four blocks, a lighter chain can be longer only if one block
/// outweighs two.
pub const WORKS: [Work; 2] = [1, 3];

/// A block's hash, in the model: who mined it and its number among that miner's blocks.
/// Ties between tips of equal work go to the smaller id (the smaller hash).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId {
    pub miner: u8,
    pub seq: u8,
}

/// The genesis block: every node knows it; its coinbase is the attacker's coin.
pub const GENESIS: BlockId = BlockId {
    miner: u8::MAX,
    seq: 0,
};

/// `G`, or `b0.1` for node 0's first block.
impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == GENESIS {
            write!(f, "G")
        } else {
            write!(f, "b{}.{}", self.miner, self.seq)
        }
    }
}

/// The two conflicting transactions (§2): both spend the one output of the genesis coinbase,
/// which belongs to the attacker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tx {
    /// The attacker pays the merchant.
    A,
    /// The attacker pays the same coin back to itself: the double spend.
    B,
}

impl Tx {
    pub const ALL: [Tx; 2] = [Tx::A, Tx::B];

    /// The output it spends: both spend output 0, the genesis coinbase's.
    pub fn input(self) -> u8 {
        0
    }

    fn bit(self) -> u8 {
        match self {
            Tx::A => 1,
            Tx::B => 2,
        }
    }
}

/// A set of transactions.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Txs(u8);

impl Txs {
    pub const NONE: Txs = Txs(0);

    pub fn of(txs: &[Tx]) -> Txs {
        Txs(txs.iter().fold(0, |b, t| b | t.bit()))
    }

    pub fn contains(self, tx: Tx) -> bool {
        self.0 & tx.bit() != 0
    }

    pub fn with(self, tx: Tx) -> Txs {
        Txs(self.0 | tx.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = Tx> {
        Tx::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

/// `{A,B}`.
impl fmt::Debug for Txs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.iter().map(|t| format!("{t:?}")).collect();
        write!(f, "{{{}}}", names.join(","))
    }
}

/// A block (§4): its parent's hash, its proof-of-work and its transactions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub id: BlockId,
    pub parent: BlockId,
    pub work: Work,
    pub txs: Txs,
}

/// `b0.1<-G w3 {A}`.
impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}<-{:?} w{} {:?}",
            self.id, self.parent, self.work, self.txs
        )
    }
}

/// Whether a block's own transactions spend no output twice (Bitcoin's `CheckBlock`, which
/// needs no chain: the check CVE-2018-17144 skipped).
pub fn no_duplicate_inputs(b: &Block) -> bool {
    let mut spent = 0u8;
    for tx in b.txs.iter() {
        if spent & (1 << tx.input()) != 0 {
            return false;
        }
        spent |= 1 << tx.input();
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Messages and timers (§5)

/// What nodes gossip (§5: "new transactions are broadcast to all nodes", "when a node finds a
/// proof-of-work, it broadcasts the block to all nodes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BtcMsg {
    Tx(Tx),
    Block(Block),
}

/// The nondeterministic steps of the miners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BtcTimer {
    /// The node finds a proof-of-work of `work` on its tip (§4); toy difficulty: any miner,
    /// at any time, while the model's block budget lasts.
    Mine { work: Work },
    /// The attacker mines a crafted block on genesis that spends its coin twice, A and B, and
    /// broadcasts it (CVE-2018-17144's block).
    MineCrafted,
    /// The attacker releases the blocks it has withheld.
    Release,
}

// ---------------------------------------------------------------------------------------------
// A node's state

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Mines on its tip and broadcasts each block it finds.
    Honest,
    /// Pays the merchant with A, mines privately on a chain of its own that spends the coin
    /// with B, and releases that chain when it likes (§11).
    Attacker,
    /// A full node that does not mine: it waits for `z` confirmations of A.
    Merchant,
}

/// One node's view (the same struct for every role; the role-specific fields stay empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// Every block it has mined or received that passed the context-free checks, orphans (a
    /// parent not yet received) included, sorted by id. Genesis is implicit.
    pub blocks: Vec<Block>,
    /// The tip of its active chain.
    /// Invariant (honest nodes and the merchant): the heaviest valid chain of `blocks`.
    pub tip: BlockId,
    /// The transactions it has seen (its memory pool, and those in its chain).
    pub seen: Txs,
    /// Blocks it mined (the block budget counts them over all nodes).
    pub mined: u8,
    /// It refused a block that spends an output twice within itself (§2).
    pub rejected: bool,
    // attacker state
    /// Its private blocks not yet released.
    pub withheld: Vec<BlockId>,
    /// It has mined its crafted block.
    pub crafted: bool,
    // merchant state
    /// Its tip when it accepted the payment with `z` confirmations.
    pub accepted: Option<BlockId>,
    /// Its tip when a merchant that accepts 0 confirmations would have accepted: A seen, and
    /// valid on its chain.
    pub zero_conf: Option<BlockId>,
}

impl NodeState {
    fn new() -> Self {
        NodeState {
            blocks: Vec::new(),
            tip: GENESIS,
            seen: Txs::NONE,
            mined: 0,
            rejected: false,
            withheld: Vec::new(),
            crafted: false,
            accepted: None,
            zero_conf: None,
        }
    }

    pub fn block(&self, id: BlockId) -> Option<&Block> {
        self.blocks.iter().find(|b| b.id == id)
    }

    /// The chain ending at `id`, tip first, genesis left out; `None` if a block on the way is
    /// missing (an orphan).
    pub fn chain(&self, id: BlockId) -> Option<Vec<&Block>> {
        chain_in(&self.blocks, id)
    }

    /// The active chain, tip first (genesis left out).
    pub fn active(&self) -> Vec<&Block> {
        self.chain(self.tip)
            .expect("the tip's chain is connected: fork choice picks connected chains")
    }

    /// The transactions of the active chain.
    pub fn chain_txs(&self) -> Txs {
        self.active()
            .iter()
            .fold(Txs::NONE, |t, b| Txs(t.0 | b.txs.0))
    }

    fn insert(&mut self, b: Block) -> bool {
        match self.blocks.binary_search(&b) {
            Ok(_) => false,
            Err(at) => {
                self.blocks.insert(at, b);
                true
            }
        }
    }
}

/// The chain ending at `id` among `blocks`, tip first; `None` if it has a gap.
pub fn chain_in(blocks: &[Block], mut id: BlockId) -> Option<Vec<&Block>> {
    let mut chain = Vec::new();
    while id != GENESIS {
        let b = blocks.iter().find(|b| b.id == id)?;
        chain.push(b);
        id = b.parent;
    }
    Some(chain)
}

pub fn work_of(chain: &[&Block]) -> u32 {
    chain.iter().map(|b| u32::from(b.work)).sum()
}

/// Whether `chain` (tip first) spends no output twice (§2, Bitcoin's `ConnectBlock`): each
/// transaction's input is unspent before its block, and, unless `no-duplicate-input-check`,
/// not spent by an earlier transaction of the same block.
pub fn valid_chain(chain: &[&Block], bug: Option<BitcoinBug>) -> bool {
    let mut spent = 0u8;
    for b in chain.iter().rev() {
        let mut in_block = 0u8;
        for tx in b.txs.iter() {
            let bit = 1 << tx.input();
            if spent & bit != 0 {
                return false;
            }
            if in_block & bit != 0 && bug != Some(BitcoinBug::NoDuplicateInputCheck) {
                return false;
            }
            in_block |= bit;
        }
        spent |= in_block;
    }
    true
}

/// Whether `chain` spends some output twice (whatever the node's checks said).
pub fn spends_twice(chain: &[&Block]) -> bool {
    let mut spent = 0u8;
    for b in chain {
        for tx in b.txs.iter() {
            let bit = 1 << tx.input();
            if spent & bit != 0 {
                return true;
            }
            spent |= bit;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The actor

/// A node of the model: its role, its peers and the merchant's `z`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BitcoinActor {
    pub role: Role,
    /// Whom it broadcasts to.
    pub peers: Vec<Id>,
    /// The confirmations the merchant waits for (§11's z).
    pub z: u8,
    pub bug: Option<BitcoinBug>,
}

impl BitcoinActor {
    /// §4: the tip of the valid, connected chain with the most work (ties: the smaller hash);
    /// with `longest-not-heaviest`, the one with the most blocks.
    fn fork_choice(&self, s: &NodeState) -> BlockId {
        let by_height = self.bug == Some(BitcoinBug::LongestNotHeaviest);
        let mut best = (0u32, std::cmp::Reverse(GENESIS));
        for b in &s.blocks {
            let Some(chain) = s.chain(b.id) else { continue };
            if !valid_chain(&chain, self.bug) {
                continue;
            }
            let score = if by_height {
                chain.len() as u32
            } else {
                work_of(&chain)
            };
            best = best.max((score, std::cmp::Reverse(b.id)));
        }
        best.1 .0
    }

    /// The block a miner assembles on its tip: the transactions it has seen that its chain
    /// does not contain and whose inputs are unspent there (first seen first).
    fn template(&self, s: &NodeState, work: Work) -> Block {
        let chain = s.active();
        let mut spent: u8 = chain
            .iter()
            .flat_map(|b| b.txs.iter())
            .fold(0, |m, t| m | 1 << t.input());
        let mut txs = Txs::NONE;
        let candidates = match self.role {
            // The attacker's private chain carries its double spend, never the payment.
            Role::Attacker => Txs::of(&[Tx::B]),
            _ => s.seen,
        };
        for tx in candidates.iter() {
            if spent & (1 << tx.input()) == 0 {
                txs = txs.with(tx);
                spent |= 1 << tx.input();
            }
        }
        Block {
            id: BlockId {
                miner: 0, // set by the caller
                seq: s.mined + 1,
            },
            parent: s.tip,
            work,
            txs,
        }
    }

    /// The merchant looks at its chain again: A's confirmations (§11: the blocks from A's block
    /// to the tip; 0 while A is only in its memory pool and valid on its chain).
    fn merchant_check(&self, s: &mut NodeState) {
        if self.role != Role::Merchant {
            return;
        }
        let chain = s.active();
        let confirmations = match chain.iter().position(|b| b.txs.contains(Tx::A)) {
            Some(depth) => Some(depth + 1),
            None => {
                let spent = chain.iter().any(|b| b.txs.iter().any(|t| t.input() == 0));
                (s.seen.contains(Tx::A) && !spent).then_some(0)
            }
        };
        let Some(confirmations) = confirmations else {
            return;
        };
        if s.zero_conf.is_none() {
            s.zero_conf = Some(s.tip);
        }
        let z = if self.bug == Some(BitcoinBug::ZeroConfirmations) {
            0
        } else {
            self.z
        };
        if s.accepted.is_none() && confirmations >= usize::from(z) {
            s.accepted = Some(s.tip);
        }
    }

    fn broadcast(&self, msg: BtcMsg, o: &mut Out<Self>) {
        for p in &self.peers {
            o.send(*p, msg);
        }
    }
}

impl Actor for BitcoinActor {
    type Msg = BtcMsg;
    type Timer = BtcTimer;
    type State = NodeState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _: &Option<()>, o: &mut Out<Self>) -> NodeState {
        let mut s = NodeState::new();
        match self.role {
            Role::Honest => {
                for work in WORKS {
                    o.set_timer(BtcTimer::Mine { work }, model_timeout());
                }
            }
            Role::Attacker => {
                // It pays the merchant, where everyone sees it (§5), and keeps B to itself.
                s.seen = Txs::of(&[Tx::A, Tx::B]);
                self.broadcast(BtcMsg::Tx(Tx::A), o);
                for work in WORKS {
                    o.set_timer(BtcTimer::Mine { work }, model_timeout());
                }
                o.set_timer(BtcTimer::MineCrafted, model_timeout());
            }
            Role::Merchant => {}
        }
        s
    }

    fn on_msg(&self, _: Id, state: &mut Cow<NodeState>, _: Id, msg: BtcMsg, _: &mut Out<Self>) {
        if self.role == Role::Attacker {
            return; // It follows its own chain (and hears nothing: see the peers).
        }
        let mut s = (**state).clone();
        match msg {
            BtcMsg::Tx(tx) => s.seen = s.seen.with(tx),
            BtcMsg::Block(b) => {
                // 1. Context-free checks first (`CheckBlock`): a block that spends an output
                //    twice within itself is invalid whatever chain it is on.
                if !no_duplicate_inputs(&b) && self.bug != Some(BitcoinBug::NoDuplicateInputCheck) {
                    s.rejected = true;
                } else {
                    // 2. An orphan is kept until its parent arrives.
                    s.insert(b);
                    // 3. Its transactions are seen too (a block relays them).
                    for tx in b.txs.iter() {
                        s.seen = s.seen.with(tx);
                    }
                    s.tip = self.fork_choice(&s);
                }
            }
        }
        self.merchant_check(&mut s);
        if s != **state {
            *state = Cow::Owned(s);
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeState>, timer: &BtcTimer, o: &mut Out<Self>) {
        let mut s = (**state).clone();
        let miner = usize::from(id) as u8;
        match *timer {
            BtcTimer::Mine { work } => {
                let mut b = self.template(&s, work);
                b.id.miner = miner;
                s.mined += 1;
                s.insert(b);
                s.tip = b.id;
                if self.role == Role::Attacker {
                    // Withheld: the private chain of §11.
                    s.withheld.push(b.id);
                    o.set_timer(BtcTimer::Release, model_timeout());
                } else {
                    self.broadcast(BtcMsg::Block(b), o);
                }
                o.set_timer(BtcTimer::Mine { work }, model_timeout());
            }
            BtcTimer::MineCrafted => {
                let b = Block {
                    id: BlockId {
                        miner,
                        seq: s.mined + 1,
                    },
                    parent: GENESIS,
                    work: WORKS[0],
                    txs: Txs::of(&[Tx::A, Tx::B]),
                };
                s.mined += 1;
                s.crafted = true;
                s.insert(b);
                self.broadcast(BtcMsg::Block(b), o);
            }
            BtcTimer::Release => {
                for id in std::mem::take(&mut s.withheld) {
                    let b = *s.block(id).expect("a withheld block is one of its own");
                    self.broadcast(BtcMsg::Block(b), o);
                }
            }
        }
        *state = Cow::Owned(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// The actors, by id: two honest miners, the attacker, the merchant.
pub const HONEST: [usize; 2] = [0, 1];
pub const ATTACKER: usize = 2;
pub const MERCHANT: usize = 3;

pub const MOST_WORK: &str =
    "each node's tip has the most cumulative work among the valid blocks it knows (§4)";
pub const REORGANISATION: &str = "a node reorganises: its new tip does not extend its old one (§4)";
pub const NO_DOUBLE_SPEND: &str = "no output is spent twice on a node's active chain (§2)";
pub const REJECTS_DOUBLE_SPEND: &str =
    "a node rejects a block that spends an output twice within itself (§2)";
pub const Z_CONFIRMATIONS: &str =
    "a payment accepted with z confirmations is not reverted while the blocks forking off the merchant's chain carry less than z work (§11)";
pub const Z_REVERTED: &str =
    "a payment accepted with z confirmations is reverted, by forks with at least z work (§11)";
pub const ZERO_CONF_DOUBLE_SPEND: &str =
    "a double spend against a merchant who accepts 0 confirmations: it saw A, and B is on its chain (§11)";
pub const SAME_TIP: &str =
    "with mining stopped, every honest node and the merchant have the same tip (§5)";

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BitcoinCfg {
    /// Blocks mined in all, by every miner (the crafted block included).
    pub max_blocks: u8,
    /// The confirmations the merchant waits for.
    pub z: u8,
    /// Whether the attacker tries its crafted block (A and B in one block).
    pub crafted: bool,
    pub bug: Option<BitcoinBug>,
}

impl BitcoinCfg {
    pub fn new(max_blocks: u8, z: u8, crafted: bool, bug: Option<BitcoinBug>) -> Self {
        BitcoinCfg {
            max_blocks,
            z,
            crafted,
            bug,
        }
    }

    pub fn into_model(self) -> BitcoinModel {
        let node = |role, peers: &[usize]| BitcoinActor {
            role,
            peers: peers.iter().map(|p| Id::from(*p)).collect(),
            z: self.z,
            bug: self.bug,
        };
        // The reduction: honest blocks go to the honest nodes and the merchant, not to the
        // attacker, which mines on its own chain whatever it hears; nobody relays (every node
        // hears a block from its miner directly, on a complete graph).
        let actors = vec![
            node(Role::Honest, &[1, MERCHANT]),
            node(Role::Honest, &[0, MERCHANT]),
            node(Role::Attacker, &[0, 1, MERCHANT]),
            node(Role::Merchant, &[]),
        ];
        let inner = ActorModel::new(self, BtcHistory::default())
            .actors(actors)
            .init_network(Network::new_unordered_nonduplicating([]));
        Harness::new(inner, 0)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BtcHistory {
    /// An honest node or the merchant moved to a tip that does not extend its old one.
    pub reorganised: bool,
}

pub type BtcModelState = HState<Bitcoin>;
pub type BtcAction = HAction<Bitcoin>;
pub type BitcoinModel = Harness<Bitcoin>;

/// The Bitcoin model's part of the [`Harness`].
pub struct Bitcoin;

impl Harnessed for Bitcoin {
    type Actor = BitcoinActor;
    type Cfg = BitcoinCfg;
    type History = BtcHistory;
    type Step = ();

    fn step_of(_: &BtcAction) {}

    fn crashes(_: &BtcHistory) -> usize {
        0
    }

    fn count_crash(_: &mut BtcHistory) {}

    fn may_crash(_: &BitcoinModel, _: &BtcModelState, _: usize) -> bool {
        false
    }

    /// Mining stops when the block budget is spent; the crafted block is the attacker's once.
    fn allow(m: &BitcoinModel, s: &BtcModelState, a: &BtcAction) -> bool {
        match a {
            ActorModelAction::Timeout(_, BtcTimer::Mine { .. }) => mined(s) < m.cfg().max_blocks,
            ActorModelAction::Timeout(id, BtcTimer::MineCrafted) => {
                m.cfg().crafted
                    && mined(s) < m.cfg().max_blocks
                    && !node(s, usize::from(*id)).crafted
            }
            _ => true,
        }
    }

    fn record(_: &BitcoinModel, prev: Option<(&BtcModelState, ())>, next: &mut BtcModelState) {
        let Some((prev, ())) = prev else { return };
        if next.history.reorganised {
            return;
        }
        let reorganised = watchers().any(|i| {
            let (old, new) = (node(prev, i).tip, node(next, i));
            old != new.tip && !new.active().iter().any(|b| b.id == old) && old != GENESIS
        });
        if reorganised {
            next.history.reorganised = true;
        }
    }

    fn properties(_: &BitcoinModel) -> Vec<Property<BitcoinModel>> {
        vec![
            Property::always(MOST_WORK, most_work),
            Property::sometimes(REORGANISATION, |_, s: &BtcModelState| s.history.reorganised),
            Property::always(NO_DOUBLE_SPEND, |_, s: &BtcModelState| {
                watchers().all(|i| !spends_twice(&node(s, i).active()))
            }),
            Property::sometimes(REJECTS_DOUBLE_SPEND, |_, s: &BtcModelState| {
                watchers().any(|i| node(s, i).rejected)
            }),
            Property::always(Z_CONFIRMATIONS, |m, s: &BtcModelState| {
                !reverted(s, merchant(s).accepted) || fork_work(s) >= u32::from(m.cfg().z)
            }),
            Property::sometimes(Z_REVERTED, |_, s: &BtcModelState| {
                reverted(s, merchant(s).accepted)
            }),
            Property::sometimes(ZERO_CONF_DOUBLE_SPEND, |_, s: &BtcModelState| {
                reverted(s, merchant(s).zero_conf)
            }),
            Property::eventually(SAME_TIP, |_, s: &BtcModelState| {
                watchers().all(|i| node(s, i).tip == node(s, HONEST[0]).tip)
            }),
        ]
    }
}

/// The honest nodes and the merchant: the nodes that follow the protocol's checks.
pub fn watchers() -> impl Iterator<Item = usize> + Clone {
    HONEST.into_iter().chain([MERCHANT])
}

pub fn node(s: &BtcModelState, i: usize) -> &NodeState {
    &s.actor_states[i]
}

pub fn merchant(s: &BtcModelState) -> &NodeState {
    node(s, MERCHANT)
}

/// Blocks mined so far, by every miner.
pub fn mined(s: &BtcModelState) -> u8 {
    s.actor_states.iter().map(|n| n.mined).sum()
}

/// Every block mined so far (each is in its miner's `blocks`).
pub fn all_blocks(s: &BtcModelState) -> Vec<Block> {
    let mut all: Vec<Block> = s
        .actor_states
        .iter()
        .flat_map(|n| n.blocks.iter().copied())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// §4 at each honest node and the merchant: no valid connected chain it knows has more work
/// than its active chain.
fn most_work(m: &BitcoinModel, s: &BtcModelState) -> bool {
    watchers().all(|i| {
        let n = node(s, i);
        let tip = work_of(&n.active());
        n.blocks.iter().all(|b| {
            n.chain(b.id)
                .filter(|c| valid_chain(c, m.cfg().bug))
                .is_none_or(|c| work_of(&c) <= tip)
        })
    })
}

/// The merchant accepted A at `at`, and now its chain carries B and not A.
fn reverted(s: &BtcModelState, at: Option<BlockId>) -> bool {
    let txs = merchant(s).chain_txs();
    at.is_some() && txs.contains(Tx::B) && !txs.contains(Tx::A)
}

/// The work of the blocks that fork off the merchant's chain as it was when it accepted: the
/// blocks neither on that chain nor extending it. (A reorganisation away from a block needs
/// forks with at least the work on and after it: §11's race, in work.)
pub fn fork_work(s: &BtcModelState) -> u32 {
    let Some(at) = merchant(s).accepted else {
        return 0;
    };
    let all = all_blocks(s);
    let on_chain: Vec<BlockId> = chain_in(&all, at)
        .expect("every block's ancestors are mined")
        .iter()
        .map(|b| b.id)
        .collect();
    all.iter()
        .filter(|b| {
            let chain = chain_in(&all, b.id).expect("every block's ancestors are mined");
            let extends = at == GENESIS || chain.iter().any(|c| c.id == at);
            !on_chain.contains(&b.id) && !extends
        })
        .map(|b| u32::from(b.work))
        .sum()
}

/// The actors' names: `N0`, `N1` (honest miners), `X2` (the attacker), `M3` (the merchant).
pub fn actor_names() -> Vec<String> {
    ["N0", "N1", "X2", "M3"]
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// `s` in the paper's terms: each node's active chain, other blocks, what it has seen; the
/// merchant's acceptance; the messages in flight.
pub fn view(m: &BitcoinModel, s: &BtcModelState) -> String {
    let names = actor_names();
    let mut lines = Vec::new();
    for (i, n) in s.actor_states.iter().enumerate() {
        let chain = n.chain(n.tip).unwrap_or_default();
        let ids: Vec<String> = chain.iter().rev().map(|b| format!("{b:?}")).collect();
        let off: Vec<String> = n
            .blocks
            .iter()
            .filter(|b| !chain.iter().any(|c| c.id == b.id))
            .map(|b| format!("{b:?}"))
            .collect();
        let mut line = format!(
            "{} tip {:?} (work {}) chain [{}]",
            names[i],
            n.tip,
            work_of(&chain),
            ids.join(", ")
        );
        if !off.is_empty() {
            line += &format!(" off-chain [{}]", off.join(", "));
        }
        line += &format!(" seen {:?}", n.seen);
        if !n.withheld.is_empty() {
            line += &format!(" withheld {:?}", n.withheld);
        }
        if n.rejected {
            line += " rejected a double-spending block";
        }
        if i == MERCHANT {
            match n.accepted {
                Some(at) => line += &format!("; accepted A (z={}) at {at:?}", m.cfg().z),
                None => line += &format!("; waiting for A (z={})", m.cfg().z),
            }
        }
        lines.push(line);
    }
    lines.push(format!(
        "mined {} of {}; fork work since acceptance {}",
        mined(s),
        m.cfg().max_blocks,
        fork_work(s)
    ));
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// Deliveries are fair; mining, the crafted block and the release are the miners' choices.
pub fn fair_class(_: &BitcoinModel, a: &BtcAction) -> Option<u64> {
    match a {
        ActorModelAction::Timeout(..) => None,
        a => crate::catalog::actor_fair_class(a),
    }
}
