//! Bitcoin as real nodes: a block tree of real 80-byte headers and small transaction lists,
//! proof of work at a low target, the most-work tip, reorganisations, gossip, and a miner that
//! may withhold its blocks (Nakamoto §§2, 4, 5, 11). The runtime (`impls/src/bitcoin.rs`) runs
//! these actors over TCP; the model ([`super::model`]) never builds them, so its state space is
//! unchanged.
//!
//! - **Blocks** (§4). A block is a [`Header`] of [`super::consensus`] (version, previous hash,
//!   Merkle root, time, nBits, nonce: 80 bytes, double SHA-256) and its transactions, whose txids
//!   give the header's Merkle root by [`merkle_root`] (Core's `ComputeMerkleRoot`, mutated lists
//!   refused: CVE-2012-2459). A block is valid when its hash meets its nBits
//!   ([`check_proof_of_work`]), its nBits are those [`get_next_work_required`] demands after its
//!   parent (a regtest-like chain: no retargeting, the genesis nBits are the chain's limit, a
//!   runtime parameter), and its transactions connect (below).
//! - **Transactions** (§2) are toy ones: a transaction spends named outputs and pays new named
//!   outputs (`coin0>merchant`); its txid is the double SHA-256 of its serialization. The first
//!   transaction of a block is its coinbase, which spends nothing and pays the miner a new
//!   output (`reward-N-K`: node N's K-th block, which keeps coinbases, and so blocks, apart). The
//!   genesis coinbase pays `coin0` .. `coin9`. A block's transactions connect when each spends
//!   only outputs unspent before it (none twice) and pays only names not unspent already.
//! - **Fork choice** (§4). A node's tip is that of the valid chain with the most cumulative work
//!   ([`block_proof`] summed: Core's `nChainWork`); of tips of equal work it keeps the one it saw
//!   first, as Core does (`nSequenceId`), where the model breaks ties by the smaller hash (the
//!   model's reduction: with no next block a tie would last for ever). A new tip that does not
//!   extend the old one is a *reorganisation*: the transactions of the blocks left go back to
//!   the memory pool, and those the new chain conflicts with are dropped.
//! - **Gossip** (§5). A node pushes each block it accepts (mined or received) and each
//!   transaction new to its memory pool to its peers; a block whose parent it lacks is kept as an
//!   orphan and its parent asked of the sender ([`BtcNodeMsg::GetBlock`]), so a node that missed
//!   blocks fetches the chain back.
//! - **Mining**. A timer ([`BtcNodeTimer::Mine`]) fires every tick; each firing tries a bounded
//!   batch of nonces (the node's hash rate, nonces per tick) on a block template (the tip, the
//!   memory pool), hashing with the consensus code. No clock and no randomness: header times go
//!   up ten minutes a block from the genesis time, and the nonce search is in order. A node
//!   mines on or off, or until it has found K blocks.
//! - **The attack** (§11). A node told to *withhold* keeps the blocks it mines and the
//!   transactions clients send it to itself: a private chain, released to its peers at a client's
//!   command. A merchant is a client that asks a node for a payment's confirmations.
//!
//! - **Data and fees.** A transaction may carry a data payload (like an `OP_RETURN` output) that
//!   the chain orders but does not read, and a fee; a transaction with a payload may spend and
//!   pay nothing. The miner's template takes the memory pool by fee, highest first (equal fees
//!   in arrival order), a transaction never ahead of one whose output it spends. Blockstack's
//!   name operations ride in such payloads ([`crate::blockstack::node`]), and a Blockstack node
//!   reads a node's active chain from a height on ([`BtcNodeMsg::GetActive`], with a locator as
//!   in `getheaders`).
//!
//! Not here: scripts and signatures (an output is spendable by whoever names it), amounts (a fee
//! is a number the miner sorts by, paid from nowhere), coinbase maturity, timestamps checked against the median time past, headers-first
//! download, and durable storage (a restarted node starts from genesis and fetches the chain
//! back as blocks arrive).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use super::consensus::{
    block_proof, check_proof_of_work, compact_to_target, get_next_work_required, merkle_root,
    sha256d, write_compact_size, BlockInfo, ChainParams, Hash256, Header, U256,
};
use crate::client::{ClientMsg, RequestId};

/// An output's name: whoever names it may spend it.
pub type OutputName = String;

/// The nBits of the test chain unless told otherwise: a target of about 2^243, so a block takes
/// about 8,192 hashes (regtest's 0x207fffff takes two).
pub const DEFAULT_BITS: u32 = 0x1f07_ffff;

/// Nonces a miner tries per tick unless told otherwise.
pub const DEFAULT_RATE: u32 = 256;

/// The genesis block's time (Bitcoin's genesis block's, 2009-01-03).
pub const GENESIS_TIME: u32 = 1_231_006_505;

/// Header times go up by this much a block (Core's `nPowTargetSpacing`).
pub const BLOCK_SPACING: u32 = 600;

/// The most orphans a node keeps (a peer cannot fill its memory with blocks it cannot connect).
pub const MAX_ORPHANS: usize = 1000;

/// The most transactions in a block, and in a memory pool.
pub const MAX_TXS: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Transactions (§2)

/// The largest data payload a transaction carries (Core's default `-datacarriersize`).
pub const MAX_DATA: usize = 83;

/// A toy transaction: spends outputs by name, pays new ones, and may carry a data payload and
/// a fee. A coinbase spends nothing and carries nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tx {
    pub spends: Vec<OutputName>,
    pub pays: Vec<OutputName>,
    /// What the miner sorts by (highest first); not an amount: nothing pays it.
    #[serde(default)]
    pub fee: u64,
    /// An `OP_RETURN`-like payload the chain carries and does not read.
    #[serde(default)]
    pub data: Option<Vec<u8>>,
}

impl Tx {
    /// A transaction that only carries `data`, with `fee`.
    pub fn data(data: Vec<u8>, fee: u64) -> Tx {
        Tx {
            spends: Vec::new(),
            pays: Vec::new(),
            fee,
            data: Some(data),
        }
    }

    pub fn is_coinbase(&self) -> bool {
        self.spends.is_empty() && self.data.is_none()
    }

    /// Compact-size counts, then each name as compact-size length and bytes; then, for a
    /// transaction with a fee or a payload, the fee (8 bytes, little-endian) and the payload
    /// (compact-size length and bytes, length 0 for none). The first part delimits itself, so
    /// a transaction without either serializes as before and no two serialize alike.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for names in [&self.spends, &self.pays] {
            write_compact_size(&mut out, names.len() as u64);
            for n in names {
                write_compact_size(&mut out, n.len() as u64);
                out.extend_from_slice(n.as_bytes());
            }
        }
        if self.fee != 0 || self.data.is_some() {
            out.extend_from_slice(&self.fee.to_le_bytes());
            let data = self.data.as_deref().unwrap_or_default();
            write_compact_size(&mut out, data.len() as u64);
            out.extend_from_slice(data);
        }
        out
    }

    /// The double SHA-256 of the serialization (Core's `GetHash`).
    pub fn txid(&self) -> Hash256 {
        sha256d(&self.serialize())
    }

    /// `IN[,IN..]>OUT[,OUT..]`: spends the named outputs and pays new ones.
    pub fn parse(s: &str) -> Result<Tx, String> {
        let (ins, outs) = s.split_once('>').ok_or_else(|| {
            format!("'{s}' is not a transaction (expected IN[,IN..]>OUT[,OUT..])")
        })?;
        let names = |part: &str| -> Result<Vec<OutputName>, String> {
            part.split(',')
                .map(|n| {
                    if valid_name(n) {
                        Ok(n.to_string())
                    } else {
                        Err(format!("'{n}' is not an output name in '{s}'"))
                    }
                })
                .collect()
        };
        let tx = Tx {
            spends: names(ins)?,
            pays: names(outs)?,
            fee: 0,
            data: None,
        };
        tx.check().map_err(|why| format!("'{s}': {why}"))?;
        Ok(tx)
    }

    /// The checks that need no chain: names, and no output spent or paid twice.
    fn check(&self) -> Result<(), String> {
        if self.pays.is_empty() && self.data.is_none() {
            return Err("pays nothing".into());
        }
        if self.data.as_ref().is_some_and(|d| d.len() > MAX_DATA) {
            return Err(format!("a payload of more than {MAX_DATA} bytes"));
        }
        if self.spends.len() + self.pays.len() > 64 {
            return Err("too many outputs".into());
        }
        if let Some(n) = self
            .spends
            .iter()
            .chain(&self.pays)
            .find(|n| !valid_name(n))
        {
            return Err(format!("bad output name '{n}'"));
        }
        if BTreeSet::from_iter(&self.spends).len() != self.spends.len() {
            return Err("spends an output twice".into());
        }
        if BTreeSet::from_iter(&self.pays).len() != self.pays.len() {
            return Err("pays one name twice".into());
        }
        Ok(())
    }
}

/// `coin0>merchant`; `>` then ` fee 2 data 69643a...` for a transaction that carries data.
impl fmt::Display for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}>{}", self.spends.join(","), self.pays.join(","))?;
        if self.fee != 0 {
            write!(f, " fee {}", self.fee)?;
        }
        if let Some(d) = &self.data {
            write!(f, " data ")?;
            for b in d {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The unspent outputs after a chain (the UTXO set, by name).
pub type Utxos = BTreeSet<OutputName>;

/// Applies `tx` to `utxos` if it connects: its inputs unspent, its outputs new.
fn connect(utxos: &mut Utxos, tx: &Tx) -> Result<(), String> {
    if let Some(n) = tx.spends.iter().find(|n| !utxos.contains(*n)) {
        return Err(format!("{tx} spends {n}, which is not unspent"));
    }
    if let Some(n) = tx.pays.iter().find(|n| utxos.contains(*n)) {
        return Err(format!("{tx} pays {n}, which is unspent already"));
    }
    for n in &tx.spends {
        utxos.remove(n);
    }
    utxos.extend(tx.pays.iter().cloned());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Blocks (§4)

/// A block on the wire: the 80 header bytes and the transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireBlock {
    pub header: Vec<u8>,
    pub txs: Vec<Tx>,
}

/// The Merkle root of `txs`' txids, and whether the list is mutated (CVE-2012-2459).
pub fn txs_root(txs: &[Tx]) -> (Hash256, bool) {
    let ids: Vec<Hash256> = txs.iter().map(Tx::txid).collect();
    merkle_root(&ids)
}

/// The chain's proof-of-work parameters: regtest's, with the limit the genesis nBits give.
pub fn chain_params(bits: u32) -> ChainParams {
    ChainParams {
        name: "workbench",
        pow_limit: compact_to_target(bits).target,
        pow_allow_min_difficulty_blocks: false,
        ..ChainParams::regtest()
    }
}

/// The genesis block of a chain of nBits `bits`: its coinbase pays `coin0` .. `coin9`; its nonce
/// is the first that meets the target (searched up to 2^22; the genesis block is trusted anyway).
pub fn genesis(bits: u32) -> (Header, Vec<Tx>) {
    let txs = vec![Tx {
        spends: Vec::new(),
        pays: (0..10).map(|i| format!("coin{i}")).collect(),
        fee: 0,
        data: None,
    }];
    let mut header = Header {
        version: 1,
        prev_blockhash: Hash256::ZERO,
        merkle_root: txs_root(&txs).0,
        time: GENESIS_TIME,
        bits,
        nonce: 0,
    };
    let limit = chain_params(bits).pow_limit;
    for nonce in 0..1u32 << 22 {
        header.nonce = nonce;
        if check_proof_of_work(header.hash(), bits, limit) {
            break;
        }
    }
    (header, txs)
}

/// A block a node accepted (valid: it is on some chain the node could follow).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub header: Header,
    pub txs: Vec<Tx>,
    pub height: u64,
    /// The work of the chain ending here, genesis included (Core's `nChainWork`).
    pub chain_work: U256,
    /// The order the node accepted it in: of tips of equal work the first seen wins.
    pub seq: u64,
}

/// How a chain's work prints: a decimal number of expected hashes.
pub fn show_work(w: U256) -> String {
    if w.0[1..].iter().all(|l| *l == 0) {
        w.0[0].to_string()
    } else {
        format!("0x{w}")
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// A client's operation at node `node` (its index in the cluster file).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BtcCall {
    pub node: usize,
    pub op: BtcOp,
}

/// The operations of `client bitcoin`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BtcOp {
    /// The node's tip.
    Tip,
    /// Give the node a transaction (it relays it unless it withholds).
    Send(Tx),
    /// Mine on (at this many nonces a tick), off, or until this many blocks are found (the
    /// answer comes then).
    Mine(Mining),
    /// Keep mined blocks, and transactions from clients, to itself (a private chain).
    Withhold,
    /// Send the withheld blocks, and the private transactions not in them, to the peers, and
    /// withhold no more.
    Release,
    /// How deep a transaction is on the node's chain: the merchant's question (§11).
    Confirmations(Tx),
    /// The memory pool, in the order the miner would take it (what a front-runner reads).
    Mempool,
}

/// A miner's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mining {
    Off,
    /// Mine at this many nonces a tick.
    On {
        rate: u32,
    },
    /// Mine until `blocks` more are found, at this many nonces a tick.
    Blocks {
        blocks: u32,
        rate: u32,
    },
}

/// Where a transaction stands on a node's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Confirmations {
    /// In a block of the active chain, this many blocks deep (1: in the tip).
    Confirmed(u64),
    /// In the memory pool: valid on the chain, not yet in a block (0 confirmations).
    Mempool,
    /// An input is spent on the chain by another transaction, or never existed.
    Conflicted,
    /// Not seen.
    Unknown,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BtcRet {
    Tip {
        height: u64,
        /// As Bitcoin displays it, most significant byte first.
        hash: String,
        /// Expected hashes of the chain, genesis included.
        work: String,
        /// Reorganisations so far, and the most blocks one disconnected.
        reorgs: u64,
        deepest_reorg: u64,
        /// Valid blocks it knows, genesis included (on any branch).
        blocks: u64,
    },
    /// The transaction is in the memory pool.
    Sent {
        txid: String,
    },
    Confirmations(Confirmations),
    /// The memory pool in the miner's order.
    Mempool(Vec<Tx>),
    Done(String),
    /// Not done, and why (a definite failure).
    Refused(String),
}

/// The messages between nodes, and with clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BtcNodeMsg {
    /// A block, pushed or asked for.
    Block(WireBlock),
    /// Send me this block (its hash, in internal byte order): the parent of an orphan.
    GetBlock([u8; 32]),
    /// A transaction for the memory pool.
    Tx(Tx),
    /// Send me your active chain after the first block of `locator` on it: my blocks' hashes
    /// (internal byte order), newest first, at heights tip, tip-1, tip-2, tip-4, ... and
    /// genesis last (Core's block locator). A Blockstack node's poll.
    GetActive {
        locator: Vec<[u8; 32]>,
    },
    /// The answer to [`BtcNodeMsg::GetActive`]: the first locator block on the active chain
    /// (genesis if none is), its height, the active chain's next blocks (at most
    /// [`MAX_ACTIVE`]), and the tip's height.
    Active {
        fork: [u8; 32],
        fork_height: u64,
        blocks: Vec<WireBlock>,
        tip_height: u64,
    },
    Client(ClientMsg<BtcCall, BtcRet>),
}

/// The most blocks one [`BtcNodeMsg::Active`] carries.
pub const MAX_ACTIVE: usize = 64;

/// A block locator for the chain `hashes` (genesis first): the ten newest hashes, then hashes
/// at exponentially spaced heights back, then genesis (Core's `GetLocator`).
pub fn locator(hashes: &[Hash256]) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut height = hashes.len() as i64 - 1;
    let mut step = 1;
    while height > 0 {
        out.push(hashes[height as usize].0);
        if out.len() >= 10 {
            step *= 2;
        }
        height -= step;
    }
    if let Some(g) = hashes.first() {
        out.push(g.0);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BtcNodeTimer {
    /// Try the next batch of nonces.
    Mine,
}

// ---------------------------------------------------------------------------------------------
// The node

/// What a node runs with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeParams {
    /// The genesis nBits: the chain's target, which never changes.
    pub bits: u32,
    /// How often the miner tries a batch of nonces.
    pub tick: Duration,
}

/// A node, or a client of the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BtcNode {
    Node {
        peers: Vec<Id>,
        params: NodeParams,
    },
    /// A client of the nodes (by index), driven by `driver`.
    Client {
        nodes: Vec<Id>,
        driver: Id,
    },
}

/// The block a miner is working on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    pub header: Header,
    pub txs: Vec<Tx>,
    /// The next nonce to try (past `u32::MAX`: the time goes up a second and the nonces start
    /// again).
    pub next_nonce: u64,
    /// The memory pool's version the template was made from.
    pub mempool_version: u64,
}

/// A node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    pub me: usize,
    /// Every valid block it knows, genesis included, by hash.
    pub blocks: BTreeMap<Hash256, Entry>,
    /// The active chain by height: `active[0]` is genesis, the last is the tip.
    /// Invariant: the tip has the most work of `blocks` (ties: the first seen).
    pub active: Vec<Hash256>,
    /// The unspent outputs after the tip.
    pub utxos: Utxos,
    /// Blocks whose parent it lacks, by the parent's hash.
    pub orphans: BTreeMap<Hash256, Vec<(Header, Vec<Tx>)>>,
    /// Blocks found invalid (so that they are not asked for or checked again).
    pub invalid: BTreeSet<Hash256>,
    /// Transactions valid on the tip, not in its chain, in arrival order.
    pub mempool: Vec<Tx>,
    pub mempool_version: u64,
    pub next_seq: u64,
    // miner state
    pub mining: Mining,
    pub job: Option<Job>,
    /// Blocks it found.
    pub mined: u64,
    /// Hashes it tried.
    pub hashes: u64,
    /// A client waiting for `Mining::Blocks` to finish.
    pub waiting: Option<(Id, RequestId)>,
    // attacker state
    pub withholding: bool,
    /// Its blocks not yet released, in the order found.
    pub withheld: Vec<Hash256>,
    /// Transactions from clients it keeps to itself (in its memory pool; sent at the release).
    pub private: BTreeSet<Hash256>,
    // counters
    pub reorgs: u64,
    pub deepest_reorg: u64,
    pub rejected: u64,
    pub last_rejected: Option<String>,
}

impl NodeState {
    pub fn tip(&self) -> Hash256 {
        *self.active.last().expect("the active chain holds genesis")
    }

    pub fn tip_entry(&self) -> &Entry {
        &self.blocks[&self.tip()]
    }

    pub fn height(&self) -> u64 {
        self.active.len() as u64 - 1
    }

    /// Where `tx` stands on the active chain.
    pub fn confirmations(&self, tx: &Tx) -> Confirmations {
        let id = tx.txid();
        for (depth, h) in self.active.iter().rev().enumerate() {
            if self.blocks[h].txs.iter().any(|t| t.txid() == id) {
                return Confirmations::Confirmed(depth as u64 + 1);
            }
        }
        if self.mempool.contains(tx) {
            Confirmations::Mempool
        } else if tx.spends.iter().any(|n| !self.utxos.contains(n)) {
            Confirmations::Conflicted
        } else {
            Confirmations::Unknown
        }
    }

    /// The chain ending at `hash` (a known block), genesis first.
    fn chain_to(&self, mut hash: Hash256) -> Vec<Hash256> {
        let mut chain = Vec::new();
        loop {
            chain.push(hash);
            let e = &self.blocks[&hash];
            if e.height == 0 {
                break;
            }
            hash = e.header.prev_blockhash;
        }
        chain.reverse();
        chain
    }

    /// The unspent outputs after the chain ending at `hash`.
    fn utxos_at(&self, hash: Hash256) -> Utxos {
        if hash == self.tip() {
            self.utxos.clone()
        } else {
            self.utxos_at_fresh(hash)
        }
    }

    fn wire(&self, hash: Hash256) -> WireBlock {
        let e = &self.blocks[&hash];
        WireBlock {
            header: e.header.serialize().to_vec(),
            txs: e.txs.clone(),
        }
    }

    fn reject(&mut self, hash: Hash256, why: String) {
        self.rejected += 1;
        self.invalid.insert(hash);
        self.last_rejected = Some(format!("{}: {why}", short(hash)));
    }
}

/// The first 16 hex digits of a hash as displayed.
pub fn short(h: Hash256) -> String {
    h.to_string()[..16].to_string()
}

/// A node's helpers: its peers and parameters.
struct Node<'a> {
    peers: &'a [Id],
    params: &'a NodeParams,
    chain: ChainParams,
}

impl Node<'_> {
    fn broadcast(&self, msg: &BtcNodeMsg, except: Option<Id>, o: &mut Out<BtcNode>) {
        for p in self.peers {
            if Some(*p) != except {
                o.send(*p, msg.clone());
            }
        }
    }

    /// The context-free checks (Core's `CheckBlock`): proof of work, the Merkle root and its
    /// mutation, one coinbase and first, the transactions' own checks.
    fn check_block(&self, header: &Header, txs: &[Tx]) -> Result<(), String> {
        if !check_proof_of_work(header.hash(), header.bits, self.chain.pow_limit) {
            return Err("high-hash: proof of work failed".into());
        }
        let (root, mutated) = txs_root(txs);
        if root != header.merkle_root {
            return Err("bad-txnmrklroot: hashMerkleRoot mismatch".into());
        }
        if mutated {
            return Err("bad-txns-duplicate: duplicate transaction".into());
        }
        if txs.is_empty() || txs.len() > MAX_TXS {
            return Err("bad-blk-length: size limits failed".into());
        }
        if !txs[0].is_coinbase() {
            return Err("bad-cb-missing: first tx is not coinbase".into());
        }
        if txs[1..].iter().any(Tx::is_coinbase) {
            return Err("bad-cb-multiple: more than one coinbase".into());
        }
        txs.iter().try_for_each(Tx::check)
    }

    /// The contextual checks against the parent: nBits as `GetNextWorkRequired` demands, and
    /// the transactions connect to the parent's unspent outputs.
    fn contextual(&self, s: &NodeState, header: &Header, txs: &[Tx]) -> Result<(), String> {
        let parent = &s.blocks[&header.prev_blockhash];
        let chain = s.chain_to(header.prev_blockhash);
        let info = |h: &Hash256| {
            let e = &s.blocks[h];
            BlockInfo {
                height: e.height as i64,
                time: e.header.time,
                bits: e.header.bits,
            }
        };
        let want = get_next_work_required(
            &self.chain,
            info(&chain[chain.len() - 1]),
            header.time,
            |h| chain.get(usize::try_from(h).ok()?).map(info),
        );
        if want != Some(header.bits) {
            return Err(format!(
                "bad-diffbits: nBits {:#010x}, expected {:#010x}",
                header.bits,
                want.unwrap_or(0)
            ));
        }
        debug_assert_eq!(parent.height as usize + 1, chain.len());
        let mut utxos = s.utxos_at(header.prev_blockhash);
        txs.iter()
            .try_for_each(|tx| connect(&mut utxos, tx))
            .map_err(|why| format!("bad-txns-inputs: {why}"))
    }

    /// A block from `src` (`None`: mined here). Returns the blocks accepted, in order (the block
    /// and any orphans it connected), for the caller to relay.
    fn receive_block(
        &self,
        s: &mut NodeState,
        header: Header,
        txs: Vec<Tx>,
        src: Option<Id>,
        o: &mut Out<BtcNode>,
    ) -> Vec<Hash256> {
        let hash = header.hash();
        if s.blocks.contains_key(&hash) || s.invalid.contains(&hash) {
            return Vec::new();
        }
        if let Err(why) = self.check_block(&header, &txs) {
            // A bad transaction list does not make the header invalid: the right list may
            // still come (CVE-2012-2459: Core caches no verdict on a mutated block).
            let header_bad = why.starts_with("high-hash");
            s.reject(hash, why);
            if !header_bad {
                s.invalid.remove(&hash);
            }
            return Vec::new();
        }
        if s.invalid.contains(&header.prev_blockhash) {
            s.reject(hash, "bad-prevblk: its parent is invalid".into());
            return Vec::new();
        }
        if !s.blocks.contains_key(&header.prev_blockhash) {
            // An orphan: keep it, and ask the sender for its parent.
            let count: usize = s.orphans.values().map(Vec::len).sum();
            let waiting = s.orphans.entry(header.prev_blockhash).or_default();
            if count < MAX_ORPHANS && !waiting.iter().any(|(h, _)| h.hash() == hash) {
                waiting.push((header, txs));
            }
            if let Some(src) = src {
                o.send(src, BtcNodeMsg::GetBlock(header.prev_blockhash.0));
            }
            return Vec::new();
        }
        let mut accepted = Vec::new();
        let mut queue = vec![(header, txs)];
        while let Some((header, txs)) = queue.pop() {
            let hash = header.hash();
            if s.blocks.contains_key(&hash) {
                continue;
            }
            let children = s.orphans.remove(&hash).unwrap_or_default();
            if let Err(why) = self.contextual(s, &header, &txs) {
                s.reject(hash, why);
                // Its waiting descendants are invalid too.
                let mut doomed: Vec<Hash256> = children.iter().map(|(h, _)| h.hash()).collect();
                while let Some(d) = doomed.pop() {
                    s.invalid.insert(d);
                    doomed.extend(
                        s.orphans
                            .remove(&d)
                            .unwrap_or_default()
                            .iter()
                            .map(|(h, _)| h.hash()),
                    );
                }
                continue;
            }
            let parent = &s.blocks[&header.prev_blockhash];
            let entry = Entry {
                height: parent.height + 1,
                chain_work: parent.chain_work.wrapping_add(block_proof(header.bits)),
                seq: s.next_seq,
                header,
                txs,
            };
            s.next_seq += 1;
            // 1. The most work wins; on equal work the tip stays (it was seen first).
            let better = entry.chain_work > s.tip_entry().chain_work;
            s.blocks.insert(hash, entry);
            if better {
                set_tip(s, hash);
            }
            accepted.push(hash);
            queue.extend(children);
        }
        accepted
    }

    /// A transaction from `src` (`None`: a client). Ok if it joined the memory pool.
    fn receive_tx(
        &self,
        s: &mut NodeState,
        tx: Tx,
        src: Option<Id>,
        o: &mut Out<BtcNode>,
    ) -> Result<(), String> {
        tx.check()?;
        if tx.is_coinbase() {
            return Err("a coinbase travels only in its block".into());
        }
        if s.mempool.contains(&tx) {
            return Ok(());
        }
        if let Confirmations::Confirmed(_) = s.confirmations(&tx) {
            return Err(format!("{tx} is in the chain already"));
        }
        if s.mempool.len() >= MAX_TXS {
            return Err("the memory pool is full".into());
        }
        let mut utxos = mempool_utxos(s);
        connect(&mut utxos, &tx)?;
        s.mempool.push(tx.clone());
        s.mempool_version += 1;
        if src.is_none() && s.withholding {
            s.private.insert(tx.txid());
        } else {
            self.broadcast(&BtcNodeMsg::Tx(tx), src, o);
        }
        Ok(())
    }

    /// Relays newly accepted blocks, unless they are this node's withheld ones.
    fn relay(&self, s: &NodeState, blocks: &[Hash256], src: Option<Id>, o: &mut Out<BtcNode>) {
        for h in blocks {
            if !s.withheld.contains(h) {
                self.broadcast(&BtcNodeMsg::Block(s.wire(*h)), src, o);
            }
        }
    }

    /// One batch of nonces on the current template.
    fn mine(&self, s: &mut NodeState, o: &mut Out<BtcNode>) {
        let rate = match s.mining {
            Mining::Off => return,
            Mining::On { rate } | Mining::Blocks { rate, .. } => rate,
        };
        let stale = s.job.as_ref().is_none_or(|j| {
            j.header.prev_blockhash != s.tip() || j.mempool_version != s.mempool_version
        });
        if stale {
            s.job = Some(template(s));
        }
        let job = s.job.as_mut().expect("set above");
        let mut found = None;
        for _ in 0..rate {
            if job.next_nonce > u64::from(u32::MAX) {
                job.header.time += 1;
                job.next_nonce = 0;
            }
            job.header.nonce = job.next_nonce as u32;
            job.next_nonce += 1;
            s.hashes += 1;
            if check_proof_of_work(job.header.hash(), job.header.bits, self.chain.pow_limit) {
                found = Some((job.header, job.txs.clone()));
                break;
            }
        }
        let Some((header, txs)) = found else { return };
        s.job = None;
        s.mined += 1;
        let hash = header.hash();
        if s.withholding {
            s.withheld.push(hash);
        }
        let accepted = self.receive_block(s, header, txs, None, o);
        debug_assert_eq!(accepted.first(), Some(&hash), "a mined block is valid");
        self.relay(s, &accepted, None, o);
        if let Mining::Blocks { blocks, rate } = s.mining {
            if blocks <= 1 {
                s.mining = Mining::Off;
                if let Some((client, seq)) = s.waiting.take() {
                    let ret = BtcRet::Done(format!(
                        "mined, tip {} at height {}",
                        short(s.tip()),
                        s.height()
                    ));
                    o.send(client, BtcNodeMsg::Client(ClientMsg::Reply { seq, ret }));
                }
            } else {
                s.mining = Mining::Blocks {
                    blocks: blocks - 1,
                    rate,
                };
            }
        }
    }

    fn on_client(
        &self,
        s: &mut NodeState,
        client: Id,
        seq: RequestId,
        op: BtcOp,
        o: &mut Out<BtcNode>,
    ) {
        let ret = match op {
            BtcOp::Tip => tip_ret(s),
            BtcOp::Send(tx) => match self.receive_tx(s, tx.clone(), None, o) {
                Ok(()) => BtcRet::Sent {
                    txid: tx.txid().to_string(),
                },
                Err(why) => BtcRet::Refused(why),
            },
            BtcOp::Mine(m) => {
                if let Some((c, q)) = s.waiting.take() {
                    let ret = BtcRet::Refused("superseded by another mine command".into());
                    o.send(c, BtcNodeMsg::Client(ClientMsg::Reply { seq: q, ret }));
                }
                let rate_ok = match m {
                    Mining::Off => true,
                    Mining::On { rate } => rate > 0,
                    Mining::Blocks { blocks, rate } => rate > 0 && blocks > 0,
                };
                if !rate_ok {
                    BtcRet::Refused("the rate and the block count must be positive".into())
                } else {
                    s.mining = m;
                    if m != Mining::Off {
                        o.set_timer(BtcNodeTimer::Mine, self.params.tick..self.params.tick);
                    }
                    match m {
                        Mining::Blocks { .. } => {
                            s.waiting = Some((client, seq));
                            return;
                        }
                        Mining::On { rate } => {
                            BtcRet::Done(format!("mining at {rate} nonces a tick"))
                        }
                        Mining::Off => BtcRet::Done("mining off".into()),
                    }
                }
            }
            BtcOp::Withhold => {
                s.withholding = true;
                BtcRet::Done("withholding blocks".into())
            }
            BtcOp::Release => {
                let withheld = std::mem::take(&mut s.withheld);
                for h in &withheld {
                    self.broadcast(&BtcNodeMsg::Block(s.wire(*h)), None, o);
                }
                // Its private transactions not in a block yet go out too.
                for tx in s.mempool.iter().filter(|t| s.private.contains(&t.txid())) {
                    self.broadcast(&BtcNodeMsg::Tx(tx.clone()), None, o);
                }
                s.withholding = false;
                s.private.clear();
                BtcRet::Done(format!("released {} blocks", withheld.len()))
            }
            BtcOp::Confirmations(tx) => BtcRet::Confirmations(s.confirmations(&tx)),
            BtcOp::Mempool => BtcRet::Mempool(by_fee(s)),
        };
        o.send(client, BtcNodeMsg::Client(ClientMsg::Reply { seq, ret }));
    }

    fn on_msg(&self, s: &mut NodeState, src: Id, msg: BtcNodeMsg, o: &mut Out<BtcNode>) {
        match msg {
            BtcNodeMsg::Block(w) => {
                let Ok(header) = Header::parse(&w.header) else {
                    s.rejected += 1;
                    s.last_rejected = Some(format!("a header of {} bytes", w.header.len()));
                    return;
                };
                let accepted = self.receive_block(s, header, w.txs, Some(src), o);
                self.relay(s, &accepted, Some(src), o);
            }
            BtcNodeMsg::GetBlock(h) => {
                let h = Hash256(h);
                if s.blocks.contains_key(&h) && !s.withheld.contains(&h) {
                    o.send(src, BtcNodeMsg::Block(s.wire(h)));
                }
            }
            BtcNodeMsg::Tx(tx) => {
                // A transaction that conflicts with the pool or the chain is dropped (first seen).
                let _ = self.receive_tx(s, tx, Some(src), o);
            }
            BtcNodeMsg::GetActive { locator } => {
                // 1. The first locator block on the active chain is where the asker's chain
                //    and this one part (genesis, which every chain shares, if none is).
                let fork_height = locator
                    .iter()
                    .take(64)
                    .find_map(|h| {
                        let e = s.blocks.get(&Hash256(*h))?;
                        let on_active = s.active.get(e.height as usize) == Some(&Hash256(*h));
                        on_active.then_some(e.height)
                    })
                    .unwrap_or(0);
                let from = fork_height as usize + 1;
                let to = s.active.len().min(from + MAX_ACTIVE);
                let blocks = s.active[from.min(to)..to]
                    .iter()
                    .map(|h| s.wire(*h))
                    .collect();
                let answer = BtcNodeMsg::Active {
                    fork: s.active[fork_height as usize].0,
                    fork_height,
                    blocks,
                    tip_height: s.height(),
                };
                o.send(src, answer);
            }
            BtcNodeMsg::Active { .. } => {}
            BtcNodeMsg::Client(ClientMsg::Request { client, seq, op }) => {
                self.on_client(s, client, seq, op.op, o)
            }
            BtcNodeMsg::Client(_) => {}
        }
    }
}

/// The unspent outputs after the tip and the memory pool.
fn mempool_utxos(s: &NodeState) -> Utxos {
    let mut utxos = s.utxos.clone();
    for tx in &s.mempool {
        connect(&mut utxos, tx).expect("the memory pool connects to the tip");
    }
    utxos
}

/// Moves the tip to `new` (a valid block with more work): the active chain, the unspent
/// outputs, the memory pool (a reorganisation puts the left blocks' transactions back, then
/// drops what no longer connects).
fn set_tip(s: &mut NodeState, new: Hash256) {
    let old_tip = s.tip();
    let new_chain = s.chain_to(new);
    let fork = new_chain
        .iter()
        .zip(&s.active)
        .take_while(|(a, b)| a == b)
        .count();
    let disconnected: Vec<Hash256> = s.active[fork..].to_vec();
    let extends = disconnected.is_empty();
    let mut back: Vec<Tx> = Vec::new();
    if extends {
        for h in &new_chain[fork..] {
            for tx in &s.blocks[h].txs {
                connect(&mut s.utxos, tx).expect("an accepted block connects to its parent");
            }
        }
    } else {
        s.reorgs += 1;
        s.deepest_reorg = s.deepest_reorg.max(disconnected.len() as u64);
        for h in &disconnected {
            back.extend(s.blocks[h].txs.iter().filter(|t| !t.is_coinbase()).cloned());
        }
        s.utxos = s.utxos_at_fresh(new);
    }
    s.active = new_chain;
    // The memory pool again: the left blocks' transactions first, then the pool, each kept if
    // it still connects.
    let candidates: Vec<Tx> = back
        .into_iter()
        .chain(std::mem::take(&mut s.mempool))
        .collect();
    let mut utxos = s.utxos.clone();
    // A transaction that spends nothing connects anywhere: one the new blocks hold stays out.
    let in_chain: BTreeSet<Hash256> = s.active[fork..]
        .iter()
        .flat_map(|h| s.blocks[h].txs.iter().map(Tx::txid))
        .collect();
    for tx in candidates {
        if !s.mempool.contains(&tx)
            && !in_chain.contains(&tx.txid())
            && connect(&mut utxos, &tx).is_ok()
        {
            s.mempool.push(tx);
        }
    }
    s.private
        .retain(|id| s.mempool.iter().any(|t| t.txid() == *id));
    s.mempool_version += 1;
    debug_assert_ne!(old_tip, new);
}

impl NodeState {
    /// The unspent outputs after `hash`, computed from genesis.
    fn utxos_at_fresh(&self, hash: Hash256) -> Utxos {
        let mut utxos = Utxos::new();
        for h in self.chain_to(hash) {
            for tx in &self.blocks[&h].txs {
                connect(&mut utxos, tx).expect("an accepted block's transactions connect");
            }
        }
        utxos
    }
}

/// A block template on the tip: a coinbase paying `reward-ME-K`, then the memory pool (except,
/// for a withholding node, nothing it did not choose: the pool holds only what connects).
fn template(s: &NodeState) -> Job {
    let tip = s.tip_entry();
    let mut txs = vec![Tx {
        spends: Vec::new(),
        pays: vec![format!("reward-{}-{}", s.me, s.mined + 1)],
        fee: 0,
        data: None,
    }];
    txs.extend(by_fee(s).into_iter().take(MAX_TXS - 1));
    let header = Header {
        version: 0x2000_0000,
        prev_blockhash: s.tip(),
        merkle_root: txs_root(&txs).0,
        time: tip.header.time + BLOCK_SPACING,
        bits: tip.header.bits,
        nonce: 0,
    };
    Job {
        header,
        txs,
        next_nonce: 0,
        mempool_version: s.mempool_version,
    }
}

/// The memory pool in the miner's order: by fee, highest first, equal fees in arrival order,
/// and a transaction only once the outputs it spends exist (a child never ahead of its parent).
pub fn by_fee(s: &NodeState) -> Vec<Tx> {
    let mut utxos = s.utxos.clone();
    let mut left: Vec<&Tx> = s.mempool.iter().collect();
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        // 1. The pool connects to the tip in arrival order, so some transaction is ready.
        let ready = |t: &&Tx| t.spends.iter().all(|n| utxos.contains(n));
        let best = left
            .iter()
            .enumerate()
            .filter(|(_, t)| ready(t))
            .max_by_key(|(i, t)| (t.fee, std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
            .expect("the memory pool connects to the tip in arrival order");
        let tx = left.remove(best);
        connect(&mut utxos, tx).expect("a ready transaction of the pool connects");
        order.push(tx.clone());
    }
    order
}

fn tip_ret(s: &NodeState) -> BtcRet {
    BtcRet::Tip {
        height: s.height(),
        hash: s.tip().to_string(),
        work: show_work(s.tip_entry().chain_work),
        reorgs: s.reorgs,
        deepest_reorg: s.deepest_reorg,
        blocks: s.blocks.len() as u64,
    }
}

impl Actor for BtcNode {
    type Msg = BtcNodeMsg;
    type Timer = BtcNodeTimer;
    type State = Option<NodeState>;
    type Storage = ();
    type Random = ();

    fn on_start(&self, id: Id, _: &Option<()>, _o: &mut Out<Self>) -> Option<NodeState> {
        let BtcNode::Node { params, .. } = self else {
            return None;
        };
        let (header, txs) = genesis(params.bits);
        let hash = header.hash();
        let mut utxos = Utxos::new();
        for tx in &txs {
            connect(&mut utxos, tx).expect("the genesis coinbase connects");
        }
        let entry = Entry {
            header,
            txs,
            height: 0,
            chain_work: block_proof(header.bits),
            seq: 0,
        };
        Some(NodeState {
            me: usize::from(id),
            blocks: BTreeMap::from([(hash, entry)]),
            active: vec![hash],
            utxos,
            orphans: BTreeMap::new(),
            invalid: BTreeSet::new(),
            mempool: Vec::new(),
            mempool_version: 0,
            next_seq: 1,
            mining: Mining::Off,
            job: None,
            mined: 0,
            hashes: 0,
            waiting: None,
            withholding: false,
            withheld: Vec::new(),
            private: BTreeSet::new(),
            reorgs: 0,
            deepest_reorg: 0,
            rejected: 0,
            last_rejected: None,
        })
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<Option<NodeState>>,
        src: Id,
        msg: BtcNodeMsg,
        o: &mut Out<Self>,
    ) {
        match self {
            BtcNode::Node { peers, params } => {
                let Some(s) = state.to_mut() else { return };
                let node = Node {
                    peers,
                    params,
                    chain: chain_params(params.bits),
                };
                node.on_msg(s, src, msg, o);
            }
            BtcNode::Client { nodes, driver } => match msg {
                BtcNodeMsg::Client(ClientMsg::Invoke { seq, op }) if src == *driver => {
                    let Some(node) = nodes.get(op.node).copied() else {
                        let why = format!("no node {} (there are {})", op.node, nodes.len());
                        let ret = BtcRet::Refused(why);
                        o.send(*driver, BtcNodeMsg::Client(ClientMsg::Return { seq, ret }));
                        return;
                    };
                    let request = ClientMsg::Request {
                        client: id,
                        seq,
                        op,
                    };
                    o.send(node, BtcNodeMsg::Client(request));
                }
                BtcNodeMsg::Client(ClientMsg::Reply { seq, ret }) => {
                    o.send(*driver, BtcNodeMsg::Client(ClientMsg::Return { seq, ret }));
                }
                _ => {}
            },
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<Option<NodeState>>,
        timer: &BtcNodeTimer,
        o: &mut Out<Self>,
    ) {
        let BtcNode::Node { peers, params } = self else {
            return;
        };
        let Some(s) = state.to_mut() else { return };
        match timer {
            BtcNodeTimer::Mine => {
                let node = Node {
                    peers,
                    params,
                    chain: chain_params(params.bits),
                };
                node.mine(s, o);
                if s.mining != Mining::Off {
                    o.set_timer(BtcNodeTimer::Mine, params.tick..params.tick);
                }
            }
        }
    }
}

/// A node in words, for `cluster status`.
pub fn describe(state: &Option<NodeState>) -> Option<String> {
    let s = state.as_ref()?;
    let mut line = format!(
        "height {} tip {} work {}; mempool {}",
        s.height(),
        short(s.tip()),
        show_work(s.tip_entry().chain_work),
        s.mempool.len()
    );
    match s.mining {
        Mining::Off => {}
        Mining::On { rate } => line.push_str(&format!("; mining {rate}/tick")),
        Mining::Blocks { blocks, rate } => {
            line.push_str(&format!("; mining {blocks} more blocks at {rate}/tick"))
        }
    }
    if s.withholding || !s.withheld.is_empty() {
        line.push_str(&format!("; withholding {} blocks", s.withheld.len()));
    }
    if s.reorgs > 0 {
        line.push_str(&format!(
            "; reorgs {} (deepest {})",
            s.reorgs, s.deepest_reorg
        ));
    }
    if s.rejected > 0 {
        line.push_str(&format!(
            "; rejected {} ({})",
            s.rejected,
            s.last_rejected.as_deref().unwrap_or("")
        ));
    }
    Some(line)
}

#[cfg(test)]
mod tests;
