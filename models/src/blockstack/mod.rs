//! Blockstack's naming system (BNS): names registered by operations embedded in a blockchain's
//! transactions, and replayed by every Blockstack node into the same name database.
//!
//! Muneeb Ali, Jude Nelson, Ryan Shea & Michael J. Freedman, "Blockstack: A Global Naming and
//! Storage System Secured by Blockchains" (USENIX ATC 2016): the lessons from Namecoin (§2),
//! the blockchain layer and virtualchain (§3.2), and the naming operations of BNS (§3).
//!
//! # Zooko's triangle
//! A name can be *human-meaningful*, *secure* (only its owner can change what it maps to) and
//! *decentralised* (no authority hands names out), and Zooko's conjecture was that a system gets
//! two of the three. Namecoin, and Blockstack after it (§2), get all three by making the name
//! database the result of a log that everyone agrees on: the blockchain orders the operations
//! and the first valid registration of a name wins. Security then rests on every node replaying
//! the same operations the same way (below); decentralisation on the blockchain's own
//! consensus. The triangle is the motivation, not a property: nothing here checks it.
//!
//! # Virtualchain and consensus hashes (§3.2)
//! Blockstack does not run its own blockchain. Its operations ride in ordinary transactions of
//! an underlying chain (Bitcoin), which orders them but does not understand them: it accepts
//! a NAME_REGISTRATION of a name already taken as readily as any payment. *Virtualchain* is the
//! layer that reads the chain block by block and feeds each block's name operations, in the
//! block's order, to a deterministic state machine, which accepts or rejects each one against
//! the name database as of that point. Every node that replays the same blocks therefore holds
//! the same database. When the chain reorganises, a node rolls back to the fork point and
//! replays the new blocks.
//!
//! After each block a node computes a *consensus hash*: a hash of the operations it accepted in
//! the block together with earlier consensus hashes at exponentially spaced heights (`h-1`,
//! `h-2`, `h-4`, ...), a skip list over the history. Two nodes with the same consensus hash at
//! a height have accepted the same operations up to it. Clients put a recent consensus hash in
//! their operations (here in NAME_PREORDER, as BNS does), so that an operation built by a
//! client on another fork, or on a stale view, is rejected rather than applied to a history
//! its author never saw. The model hashes with SHA-256 cut to 32 bits over a canonical
//! encoding of each operation (not the real wire format) and leaves out the Merkle tree over
//! the block's operations: the hash covers them in order.
//!
//! # Preorder, then register: front-running (§2, §3)
//! A NAME_REGISTRATION reveals the name it registers, and it sits in the mempool, where anyone
//! can read it, before a miner puts it in a block. Miners order a block's transactions as they
//! like, by fee in practice. A front-runner, Mallory, who sees Alice's registration can send
//! her own registration of the same name with a higher fee and have it mined first: a one-step
//! registration gives her the name. BNS makes registration two steps:
//!
//! 1. NAME_PREORDER carries `H(name ‖ script ‖ register address)` (and a consensus hash): it
//!    commits to the name and to its future owner without revealing either.
//! 2. NAME_REGISTRATION reveals the name; it is valid only if a NAME_PREORDER in an *earlier*
//!    block, not yet expired, carries the hash of this name with this registrant.
//!
//! When Mallory reads the name in Alice's registration, Alice's preorder is already in the chain
//! and Mallory has none: any preorder Mallory sends now lands in a later block than Alice's
//! registration can, so her registration fails whatever its fee. The hash must cover the owner:
//! a hash of the name alone (`preorder-without-owner`) is matched by Mallory's registration as
//! well as Alice's. Preorders expire (144 blocks in BNS; 2 here), so that a preorder cannot
//! hold a name in reserve for ever. Once registered, a name changes only by NAME_UPDATE (its
//! zone file hash) and NAME_TRANSFER (a new owner), each valid only from the current owner.
//!
//! # The model
//! Actors: the chain `Chain` (its mempool and the miner), two or three BNS nodes `N1`, `N2`
//! (`--nodes`), Alice and Mallory. One name, `alice.id`.
//!
//! - **The chain.** Transactions sent to the chain wait in its mempool. Mining is a
//!   nondeterministic step that puts the whole mempool in a block, ordered by fee (highest
//!   first; equal fees in arrival order), while the budget of `--blocks` blocks lasts; empty
//!   blocks are mined too (they are what expires a preorder). Each block goes to every node.
//!   Once (`--reorg 1`), the chain reorganises by one block: its tip is orphaned, its
//!   transactions go back to the mempool, and a competing block at the same height, mined from
//!   the mempool as it now is, takes its place (and counts against the budget). The chain is
//!   one actor that decides the best chain: the reorganisation is what a node sees of a
//!   competing branch that won.
//! - **The nodes.** A node processes the blocks in the chain's order (a FIFO link): a block one
//!   above its tip extends its chain, a block at its tip's height replaces the tip (the
//!   reorganisation): the node rolls back and replays. `N1` is Alice's node: after each block
//!   it tells her its latest consensus hash and where her name stands.
//! - **Alice** preorders `alice.id` when she likes, with her node's latest consensus hash (the
//!   genesis one before any block), registers once her node shows the preorder accepted, and
//!   updates the name's zone file once her node shows her as the owner. Fee 1.
//! - **Mallory** watches the mempool. When she sees Alice's NAME_REGISTRATION she sends her own
//!   registration of the name and a NAME_TRANSFER of it to herself, with fee 2: they outbid
//!   Alice's. She may also preorder `alice.id` herself at any time, with the genesis consensus
//!   hash (a squatter who guessed the name): then her registration is legitimate if it comes
//!   first, and a reorganisation can reorder the two registrations.
//!
//! # Properties
//! - always *at most one owner per name on every node*; sometimes *a NAME_REGISTRATION of a
//!   name already registered is rejected*;
//! - always *nodes that processed the same blocks have equal name databases and consensus
//!   hashes* (§3.2); sometimes *a node rolls back an orphaned block whose operations it had
//!   accepted*;
//! - always *a name is registered only by the principal whose earlier, unexpired NAME_PREORDER
//!   committed to it* (checked against what each preorder's sender committed to, a ghost field
//!   the nodes never read); sometimes *Mallory sees Alice's NAME_REGISTRATION before it is
//!   mined*, *Mallory's NAME_REGISTRATION is mined ahead of Alice's, by fee, and rejected*, *a
//!   NAME_REGISTRATION is rejected because its preorder expired*, *a NAME_PREORDER whose
//!   consensus hash is not recent on the node's chain is rejected*;
//! - always *only a name's owner updates or transfers it*; sometimes *a NAME_TRANSFER by a
//!   principal who does not own the name is rejected*, *the owner's NAME_UPDATE is applied*.
//!
//! # Seeded bugs
//! - `one-step-register`: NAME_REGISTRATION needs no preorder. Mallory's registration, seen in
//!   the mempool and outbidding Alice's, is mined ahead of it in the same block and takes the
//!   name.
//! - `preorder-without-owner`: the preorder hash is `H(name)`: Mallory's registration, ahead of
//!   Alice's by fee, matches Alice's preorder and takes the name with it.
//! - `no-reorg-rollback`: a node checks each block against the database as of the block's
//!   parent (virtualchain keeps one per block), but applies what it accepts to its working
//!   database in place and never rewinds it: after the reorganisation it keeps the orphaned
//!   block's registration as well as the new one. Two owners of `alice.id` on one node, and a
//!   database that differs from a node that replayed the same chain.
//! - `no-owner-check`: NAME_UPDATE and NAME_TRANSFER are applied from anyone: Mallory's
//!   NAME_TRANSFER takes Alice's name.
//!
//! Not modelled: the storage layers (Atlas, zone files and Gaia: only a zone file's hash is
//! kept), namespaces and their pricing, name renewal and revocation, fees as payments, the
//! underlying chain's proof-of-work (see the `bitcoin` model), and clients other than Alice
//! and Mallory.
//!
//! # Over TCP
//! [`node`] runs BNS nodes as real processes (`cluster blockstack`): the operations ride in the
//! data payloads of the Bitcoin transactions of [`crate::bitcoin::node`], whose miners order
//! their memory pools by fee and whose proof of work, gossip and reorganisations are real; a
//! BNS node polls one Bitcoin node for its active chain and moves by this file's virtualchain
//! step ([`NodeState::follow`]: the same [`apply_block`], [`replay`], [`consensus_hash`] and
//! [`committed_hash`], and the same seeded bugs). The properties are functions of a node's
//! state ([`one_owner_per_name`], [`same_blocks_same_database`], [`registrations_preordered`],
//! [`only_owners_change`]) that the model and the cluster tests both call. There, names are
//! any (up to 37 characters) and heights unbounded by the model's budget; the principals are
//! still Alice and Mallory, and nothing signs a payload.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stateright::actor::{model_timeout, Actor, ActorModel, ActorModelAction, Id, Network, Out};
use stateright::Property;

use crate::catalog::{Bug, Param, Params, Spec};
use crate::harness::{HAction, HState, Harness, Harnessed};

pub mod node;

crate::seeded_bugs! {
    /// The seeded bugs: each takes away one of BNS's defences.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BlockstackBug {
        /// NAME_REGISTRATION is valid without a NAME_PREORDER (Namecoin's naive one-step
        /// registration): the front-runner wins by fee.
        OneStepRegister = "one-step-register",
        /// The preorder hash omits the owner (`H(name)`): any registration of the name matches
        /// any preorder of it.
        PreorderWithoutOwner = "preorder-without-owner",
        /// A node does not rewind its working name database on a reorganisation.
        NoReorgRollback = "no-reorg-rollback",
        /// NAME_UPDATE and NAME_TRANSFER are applied whoever sends them.
        NoOwnerCheck = "no-owner-check",
    }
}

// ---------------------------------------------------------------------------------------------
// Names, principals, hashes

/// The longest name (BNS: 37 characters, the namespace's included).
pub const MAX_NAME: usize = 37;

/// A name, `alice.id`: 1 to [`MAX_NAME`] bytes of `a-z`, `0-9`, `.`, `-`, `_`, kept inline so
/// that operations stay `Copy`. It compares, hashes apart, prints and serializes as its text.
/// (The model has one; the nodes of [`node`] take any.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    len: u8,
    bytes: [u8; MAX_NAME],
}

impl Name {
    /// `s` as a name; panics (at compile time, for a constant) unless it is one.
    pub const fn from_static(s: &'static str) -> Name {
        match Name::from_bytes(s.as_bytes()) {
            Some(n) => n,
            None => panic!("not a name"),
        }
    }

    /// The name these bytes spell, if they spell one.
    pub const fn from_bytes(b: &[u8]) -> Option<Name> {
        if b.is_empty() || b.len() > MAX_NAME {
            return None;
        }
        let mut bytes = [0u8; MAX_NAME];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if !(c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'.'
                || c == b'-'
                || c == b'_')
            {
                return None;
            }
            bytes[i] = c;
            i += 1;
        }
        Some(Name {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn parse(s: &str) -> Result<Name, String> {
        Name::from_bytes(s.as_bytes()).ok_or_else(|| {
            format!("'{s}' is not a name (1 to {MAX_NAME} of a-z 0-9 . - _, like alice.id)")
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("a name is ASCII")
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// `"alice.id"`, as the text would print.
impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The one name both principals want.
pub const NAME: Name = Name::from_static("alice.id");

/// A block height; genesis is 0.
pub type Height = u32;

/// A consensus hash (§3.2), 32 bits of a SHA-256.
pub type ConsensusHash = u32;

/// A NAME_PREORDER's commitment, 32 bits of a SHA-256.
pub type PreorderHash = u32;

/// A registration is valid in the 2 blocks after its preorder's (BNS: 144, a day of blocks).
pub const PREORDER_TTL: Height = 2;

/// A NAME_PREORDER's consensus hash must be that of one of the 2 blocks before its own (genesis
/// counts as height 0).
pub const CONSENSUS_HASH_WINDOW: Height = 2;

/// Who signs transactions. A principal's address is both its script and its register address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Principal {
    Alice,
    Mallory,
}

impl Principal {
    /// The fee on each of its transactions: Mallory outbids Alice.
    pub fn fee(self) -> u8 {
        match self {
            Principal::Alice => 1,
            Principal::Mallory => 2,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Principal::Alice => b'A',
            Principal::Mallory => b'M',
        }
    }

    fn from_byte(b: u8) -> Option<Principal> {
        match b {
            b'A' => Some(Principal::Alice),
            b'M' => Some(Principal::Mallory),
            _ => None,
        }
    }

    /// `alice`, `mallory`.
    pub fn name(self) -> &'static str {
        match self {
            Principal::Alice => "alice",
            Principal::Mallory => "mallory",
        }
    }

    pub fn parse(s: &str) -> Result<Principal, String> {
        [Principal::Alice, Principal::Mallory]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("'{s}' is not a principal (alice, mallory)"))
    }
}

/// SHA-256 over length-prefixed parts, cut to its first 32 bits.
fn sha256_32(parts: &[&[u8]]) -> u32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u32).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The NAME_PREORDER hash `H(name ‖ script ‖ register address)`; with `preorder-without-owner`
/// (`owner` is `None`), `H(name)`.
pub fn preorder_hash(name: Name, owner: Option<Principal>) -> PreorderHash {
    match owner {
        Some(p) => sha256_32(&[name.as_bytes(), &[p.byte()], &[p.byte()]]),
        None => sha256_32(&[name.as_bytes()]),
    }
}

/// The preorder hash that commits `owner` to `name`, by the protocol's rule: without the
/// owner under `preorder-without-owner`.
pub fn committed_hash(bug: Option<BlockstackBug>, name: Name, owner: Principal) -> PreorderHash {
    match bug {
        Some(BlockstackBug::PreorderWithoutOwner) => preorder_hash(name, None),
        _ => preorder_hash(name, Some(owner)),
    }
}

/// The consensus hash of genesis (height 0), which every client knows.
pub fn genesis_consensus_hash() -> ConsensusHash {
    sha256_32(&[b"genesis"])
}

/// §3.2: the consensus hash at `height`: a hash of the operations accepted in its block, in
/// order, and of the consensus hashes at `height - 1`, `height - 2`, `height - 4`, ...
/// (`earlier[h]` is the consensus hash at height `h`).
pub fn consensus_hash(height: Height, accepted: &[Tx], earlier: &[ConsensusHash]) -> ConsensusHash {
    let ops: Vec<Vec<u8>> = accepted.iter().map(Tx::encode).collect();
    let mut prior = Vec::new();
    let mut back = 1usize;
    while back <= height as usize {
        prior.extend(earlier[height as usize - back].to_be_bytes());
        back *= 2;
    }
    let mut parts: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
    parts.push(&prior);
    sha256_32(&parts)
}

// ---------------------------------------------------------------------------------------------
// Operations and messages

/// A name operation, as a transaction of the underlying chain carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    NamePreorder {
        hash: PreorderHash,
        consensus_hash: ConsensusHash,
        /// Ghost: the name and register address the hash commits to (its preimage). No node
        /// reads it; the properties do.
        commits_to: (Name, Principal),
    },
    /// Registers `name` to its sender (the register address of its preorder).
    NameRegistration {
        name: Name,
    },
    NameUpdate {
        name: Name,
        zonefile_hash: u8,
    },
    NameTransfer {
        name: Name,
        recipient: Principal,
    },
}

/// A transaction: a name operation, its sender (who signed it) and its fee.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tx {
    pub sender: Principal,
    pub fee: u8,
    pub op: Op,
}

impl Tx {
    fn new(sender: Principal, op: Op) -> Tx {
        Tx {
            sender,
            fee: sender.fee(),
            op,
        }
    }

    /// What the chain carries of it (the consensus hash covers these bytes; the ghost field is
    /// not on the chain).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.sender.byte(), self.fee];
        match self.op {
            Op::NamePreorder {
                hash,
                consensus_hash,
                ..
            } => {
                b.push(b'?');
                b.extend(hash.to_be_bytes());
                b.extend(consensus_hash.to_be_bytes());
            }
            Op::NameRegistration { name } => {
                b.push(b':');
                b.extend(name.as_bytes());
            }
            Op::NameUpdate {
                name,
                zonefile_hash,
            } => {
                b.push(b'+');
                b.extend(name.as_bytes());
                b.push(zonefile_hash);
            }
            Op::NameTransfer { name, recipient } => {
                b.push(b'>');
                b.extend(name.as_bytes());
                b.push(recipient.byte());
            }
        }
        b
    }

    /// [`Tx::encode`], then for a NAME_PREORDER its ghost preimage (the name, then the
    /// principal): what a payload on a real chain carries ([`node::payload`]), so that the
    /// properties can be checked on real nodes. The consensus hash does not cover the ghost.
    pub fn encode_with_ghost(&self) -> Vec<u8> {
        let mut b = self.encode();
        if let Op::NamePreorder { commits_to, .. } = self.op {
            b.extend(commits_to.0.as_bytes());
            b.push(commits_to.1.byte());
        }
        b
    }

    /// The transaction [`Tx::encode_with_ghost`] wrote, or `None` for bytes it cannot have
    /// written. A NAME_PREORDER without its ghost decodes with the ghost of its sender and the
    /// name `?` (not a name: no registration matches it for the property).
    pub fn decode(b: &[u8]) -> Option<Tx> {
        let [sender, fee, kind, rest @ ..] = b else {
            return None;
        };
        let sender = Principal::from_byte(*sender)?;
        let u32_at = |i: usize| Some(u32::from_be_bytes(rest.get(i..i + 4)?.try_into().ok()?));
        // The name and the byte after it (update, transfer, a preorder's ghost).
        let name_then_byte = |b: &[u8]| {
            let (last, name) = b.split_last()?;
            Some((Name::from_bytes(name)?, *last))
        };
        let op = match kind {
            b'?' => {
                let ghost = &rest.get(8..)?;
                let commits_to = if ghost.is_empty() {
                    (UNKNOWN_NAME, sender)
                } else {
                    let (name, p) = name_then_byte(ghost)?;
                    (name, Principal::from_byte(p)?)
                };
                Op::NamePreorder {
                    hash: u32_at(0)?,
                    consensus_hash: u32_at(4)?,
                    commits_to,
                }
            }
            b':' => Op::NameRegistration {
                name: Name::from_bytes(rest)?,
            },
            b'+' => {
                let (name, zonefile_hash) = name_then_byte(rest)?;
                Op::NameUpdate {
                    name,
                    zonefile_hash,
                }
            }
            b'>' => {
                let (name, p) = name_then_byte(rest)?;
                Op::NameTransfer {
                    name,
                    recipient: Principal::from_byte(p)?,
                }
            }
            _ => return None,
        };
        Some(Tx {
            sender,
            fee: *fee,
            op,
        })
    }
}

/// The ghost of a NAME_PREORDER whose preimage nobody told (`?` is not a valid name).
const UNKNOWN_NAME: Name = Name {
    len: 1,
    bytes: {
        let mut b = [0u8; MAX_NAME];
        b[0] = b'?';
        b
    },
};

/// `Alice NAME_PREORDER(#1a2b3c4d, ch #..) fee 1`.
impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ", self.sender)?;
        match self.op {
            Op::NamePreorder {
                hash,
                consensus_hash,
                commits_to,
            } => write!(
                f,
                "NAME_PREORDER(#{hash:08x}={}+{:?}, ch #{consensus_hash:08x})",
                commits_to.0, commits_to.1
            )?,
            Op::NameRegistration { name } => write!(f, "NAME_REGISTRATION({name})")?,
            Op::NameUpdate {
                name,
                zonefile_hash,
            } => write!(f, "NAME_UPDATE({name}, zonefile {zonefile_hash})")?,
            Op::NameTransfer { name, recipient } => {
                write!(f, "NAME_TRANSFER({name} to {recipient:?})")?
            }
        }
        write!(f, " fee {}", self.fee)
    }
}

/// A block of the underlying chain: its number among the blocks mined (its hash, in the
/// model), its height and its transactions in the miner's order.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Block {
    /// Its hash, in the model its number; on real nodes the first 8 bytes of its Bitcoin hash.
    pub id: u64,
    pub height: Height,
    pub txs: Vec<Tx>,
}

/// `b2@h1 [..]`.
impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}@h{} {:?}", self.id, self.height, self.txs)
    }
}

/// What the actors send.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BsMsg {
    /// A client's transaction, to the chain's mempool.
    Tx(Tx),
    /// The chain's best chain, to each node, after each block it mines; `version` is the
    /// number of blocks mined so far (later announcements have larger numbers).
    BestChain { version: u8, blocks: Vec<Block> },
    /// The late node asks for the best chain (it gets every block after it, too).
    GetChain,
    /// A transaction that entered the mempool, to Mallory, who watches it.
    Mempool(Tx),
    /// Alice's node, after each block: its latest consensus hash, whether it holds an
    /// unconsumed preorder of Alice's, and the name's owner.
    Tip {
        consensus_hash: ConsensusHash,
        preordered: bool,
        owner: Option<Principal>,
    },
}

/// `BestChain v3 [b1 b3]` (the blocks' contents are in the chain's view), `Tx(..)`.
impl fmt::Debug for BsMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BsMsg::Tx(tx) => write!(f, "Tx({tx:?})"),
            BsMsg::BestChain { version, blocks } => {
                let ids: Vec<String> = blocks.iter().map(|b| format!("b{}", b.id)).collect();
                write!(f, "BestChain v{version} [{}]", ids.join(" "))
            }
            BsMsg::GetChain => write!(f, "GetChain"),
            BsMsg::Mempool(tx) => write!(f, "Mempool({tx:?})"),
            BsMsg::Tip {
                consensus_hash,
                preordered,
                owner,
            } => write!(
                f,
                "Tip(ch #{consensus_hash:08x}, preordered {preordered}, owner {owner:?})"
            ),
        }
    }
}

/// The nondeterministic steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BsTimer {
    /// The chain mines a block from its mempool.
    Mine,
    /// The chain orphans its tip for a competing block at the same height (once).
    Reorg,
    /// A principal sends its NAME_PREORDER of `alice.id`.
    Preorder,
    /// The late node joins: it asks the chain for its best chain.
    Join,
}

// ---------------------------------------------------------------------------------------------
// The name database and its replay (virtualchain's state machine)

/// A registered name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NameRecord {
    pub name: Name,
    pub owner: Principal,
    pub zonefile_hash: Option<u8>,
}

/// An accepted NAME_PREORDER not yet consumed by a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Preorder {
    pub hash: PreorderHash,
    pub sender: Principal,
    pub height: Height,
    /// Ghost (see [`Op::NamePreorder`]).
    pub commits_to: (Name, Principal),
}

/// A node's name database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NameDb {
    /// Invariant (correct nodes): at most one record per name.
    pub records: Vec<NameRecord>,
    pub preorders: Vec<Preorder>,
}

impl NameDb {
    pub fn owner(&self, name: Name) -> Option<Principal> {
        self.records
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.owner)
    }

    /// Applies an operation already judged valid (the database as it stands is not consulted
    /// again: a working database that was never rewound takes it as it is).
    fn commit(&mut self, tx: &Tx, height: Height, preorder: Option<Preorder>) {
        match tx.op {
            Op::NamePreorder {
                hash, commits_to, ..
            } => self.preorders.push(Preorder {
                hash,
                sender: tx.sender,
                height,
                commits_to,
            }),
            Op::NameRegistration { name } => {
                if let Some(p) = preorder {
                    self.preorders.retain(|q| *q != p);
                }
                self.records.push(NameRecord {
                    name,
                    owner: tx.sender,
                    zonefile_hash: None,
                });
            }
            Op::NameUpdate {
                name,
                zonefile_hash,
            } => {
                if let Some(r) = self.records.iter_mut().find(|r| r.name == name) {
                    r.zonefile_hash = Some(zonefile_hash);
                }
            }
            Op::NameTransfer { name, recipient } => {
                if let Some(r) = self.records.iter_mut().find(|r| r.name == name) {
                    r.owner = recipient;
                }
            }
        }
    }
}

/// An operation a node applied (ghost, for the properties): what the database said when it
/// was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Applied {
    pub height: Height,
    pub tx: Tx,
    /// The name's owner before it (registrations: `None`).
    pub owner_before: Option<Principal>,
    /// The preorder a registration consumed.
    pub preorder: Option<Preorder>,
}

/// Why an operation was rejected (the sometimes properties read these).
pub mod seen {
    pub const NAME_TAKEN: u8 = 1;
    pub const PREORDER_EXPIRED: u8 = 2;
    pub const STALE_CONSENSUS_HASH: u8 = 4;
    pub const NOT_OWNER: u8 = 8;
    pub const FRONT_RUN_REJECTED: u8 = 16;
    pub const ROLLED_BACK_OPS: u8 = 32;
    pub const OWNER_UPDATED: u8 = 64;
}

/// What replaying one block gave.
#[derive(Clone, Debug, Default)]
pub struct BlockOutcome {
    /// The operations accepted, in order, each registration with the preorder it consumed.
    pub accepted: Vec<(Tx, Option<Preorder>)>,
    pub applied: Vec<Applied>,
    /// [`seen`] bits.
    pub seen: u8,
}

impl BlockOutcome {
    /// The accepted operations, which the consensus hash covers.
    pub fn txs(&self) -> Vec<Tx> {
        self.accepted.iter().map(|(t, _)| *t).collect()
    }
}

/// Virtualchain's state machine: checks each operation of `block`, in the block's order,
/// against `db` (the database as of the block's parent) and applies the valid ones to it.
/// `chs` holds the consensus hashes up to the parent's height.
pub fn apply_block(
    db: &mut NameDb,
    chs: &[ConsensusHash],
    block: &Block,
    bug: Option<BlockstackBug>,
) -> BlockOutcome {
    let h = block.height;
    let mut out = BlockOutcome::default();
    for (i, tx) in block.txs.iter().enumerate() {
        let mut preorder = None;
        let mut owner_before = None;
        let valid = match tx.op {
            Op::NamePreorder { consensus_hash, .. } => {
                // 1. The consensus hash ties the preorder to this fork, recently.
                let from = h.saturating_sub(CONSENSUS_HASH_WINDOW);
                let recent = (from..h).any(|c| chs[c as usize] == consensus_hash);
                if !recent {
                    out.seen |= seen::STALE_CONSENSUS_HASH;
                }
                recent
            }
            Op::NameRegistration { name } => {
                if db.owner(name).is_some() {
                    // 2. The first valid registration of a name wins.
                    out.seen |= seen::NAME_TAKEN;
                    false
                } else {
                    // 3. A preorder of this name *with this registrant*, in an earlier block,
                    //    not expired (`one-step-register`: consumed if there is one, but not
                    //    required).
                    let hash = committed_hash(bug, name, tx.sender);
                    let matching = db
                        .preorders
                        .iter()
                        .filter(|p| p.hash == hash && p.height < h);
                    let live = matching.clone().find(|p| h <= p.height + PREORDER_TTL);
                    if live.is_none() && matching.count() > 0 {
                        out.seen |= seen::PREORDER_EXPIRED;
                    }
                    preorder = live.copied();
                    preorder.is_some() || bug == Some(BlockstackBug::OneStepRegister)
                }
            }
            Op::NameUpdate { name, .. } | Op::NameTransfer { name, .. } => {
                owner_before = db.owner(name);
                match owner_before {
                    None => false,
                    Some(o) if o == tx.sender || bug == Some(BlockstackBug::NoOwnerCheck) => {
                        if o == tx.sender && matches!(tx.op, Op::NameUpdate { .. }) {
                            out.seen |= seen::OWNER_UPDATED;
                        }
                        true
                    }
                    Some(_) => {
                        if matches!(tx.op, Op::NameTransfer { .. }) {
                            out.seen |= seen::NOT_OWNER;
                        }
                        false
                    }
                }
            }
        };
        if valid {
            db.commit(tx, h, preorder);
            out.accepted.push((*tx, preorder));
            if !matches!(tx.op, Op::NamePreorder { .. }) {
                out.applied.push(Applied {
                    height: h,
                    tx: *tx,
                    owner_before,
                    preorder,
                });
            }
        } else if tx.sender == Principal::Mallory
            && matches!(tx.op, Op::NameRegistration { .. })
            && block.txs[i + 1..].iter().any(|t| {
                t.sender == Principal::Alice && matches!(t.op, Op::NameRegistration { .. })
            })
        {
            out.seen |= seen::FRONT_RUN_REJECTED;
        }
    }
    out
}

/// The database, consensus hashes (genesis first) and applied operations of `blocks` replayed
/// from genesis.
pub fn replay(
    blocks: &[Block],
    bug: Option<BlockstackBug>,
) -> (NameDb, Vec<ConsensusHash>, Vec<Applied>) {
    let mut db = NameDb::default();
    let mut chs = vec![genesis_consensus_hash()];
    let mut log = Vec::new();
    for b in blocks {
        let out = apply_block(&mut db, &chs, b, bug);
        chs.push(consensus_hash(b.height, &out.txs(), &chs));
        log.extend(out.applied);
    }
    (db, chs, log)
}

// ---------------------------------------------------------------------------------------------
// The actors' states

/// The underlying chain: its best chain and its mempool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChainState {
    /// The best chain, genesis left out: `blocks[i]` is at height `i + 1`.
    pub blocks: Vec<Block>,
    /// Transactions not yet in a block, in arrival order.
    pub mempool: Vec<Tx>,
    /// Blocks mined, orphans included (a block's id is its number).
    pub mined: u8,
    /// The block the reorganisation orphaned.
    pub orphaned: Option<Block>,
    /// The late node has joined (it hears of every block since).
    pub late_joined: bool,
}

/// A BNS node (the model's, and virtualchain's state on a real one: [`node::BnsNodeState`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeState {
    /// The latest announcement of the chain's it has processed.
    pub version: u8,
    /// The blocks it has processed, in chain order (genesis left out).
    pub chain: Vec<Block>,
    /// Its working name database.
    /// Invariant (correct nodes): `replay(chain).0`.
    pub db: NameDb,
    /// The consensus hash at each height of `chain`, genesis first.
    pub consensus_hashes: Vec<ConsensusHash>,
    /// Ghost: the operations it applied, in order (a correct node forgets those of an orphaned
    /// block).
    pub applied: Vec<Applied>,
    /// Ghost: [`seen`] bits, for the sometimes properties; never cleared.
    pub seen: u8,
}

impl NodeState {
    /// A node that has processed no block.
    pub fn genesis() -> NodeState {
        NodeState {
            version: 0,
            chain: Vec::new(),
            db: NameDb::default(),
            consensus_hashes: vec![genesis_consensus_hash()],
            applied: Vec::new(),
            seen: 0,
        }
    }

    /// Virtualchain (§3.2): the node's chain becomes its first `common` blocks, then `blocks`
    /// (in order, from height `common + 1`). The model's nodes and the real ones
    /// ([`node`]) both move by this step.
    pub fn follow(
        &mut self,
        common: usize,
        blocks: impl IntoIterator<Item = Block>,
        bug: Option<BlockstackBug>,
    ) {
        // 2. Roll back to the fork point: the orphaned blocks go, and what they did with them.
        let rolled_back = self.chain.len() > common;
        if rolled_back && self.applied.iter().any(|a| a.height as usize > common) {
            self.seen |= seen::ROLLED_BACK_OPS;
        }
        self.chain.truncate(common);
        // 3. Check each new block against the database as of its parent: the working
        //    database on an extension, a replay of the chain up to the fork point after a
        //    rollback.
        let (mut snapshot, mut chs, mut applied) = if rolled_back {
            replay(&self.chain, bug)
        } else {
            (
                self.db.clone(),
                self.consensus_hashes.clone(),
                self.applied.clone(),
            )
        };
        for block in blocks {
            let out = apply_block(&mut snapshot, &chs, &block, bug);
            chs.push(consensus_hash(block.height, &out.txs(), &chs));
            self.seen |= out.seen;
            if bug == Some(BlockstackBug::NoReorgRollback) {
                // 4'. The bug: what the block accepted goes into the working database as it
                //     stands, the orphaned block's effects and all.
                for (tx, preorder) in &out.accepted {
                    self.db.commit(tx, block.height, *preorder);
                }
                self.applied.extend(out.applied);
            } else {
                applied.extend(out.applied);
            }
            self.chain.push(block);
        }
        if bug != Some(BlockstackBug::NoReorgRollback) {
            // 4. The working database is the replay of the chain.
            self.db = snapshot;
            self.applied = applied;
        }
        self.consensus_hashes = chs;
    }
}

/// Alice's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AliceStep {
    /// Not yet preordered.
    Start,
    /// NAME_PREORDER sent.
    SentPreorder,
    /// NAME_REGISTRATION sent.
    SentRegistration,
    /// NAME_UPDATE sent.
    SentUpdate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AliceState {
    pub step: AliceStep,
    /// Her node's latest consensus hash (kept until she preorders).
    pub consensus_hash: ConsensusHash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MalloryState {
    /// She has sent her own NAME_PREORDER of `alice.id`.
    pub preordered: bool,
    /// Ghost: she has read Alice's NAME_REGISTRATION in the mempool (and answered it).
    pub saw_registration: bool,
}

/// Every actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BsState {
    Chain(ChainState),
    Node(NodeState),
    Alice(AliceState),
    Mallory(MalloryState),
}

// ---------------------------------------------------------------------------------------------
// The actors

/// An actor of the model and what it knows of the others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockstackActor {
    Chain {
        /// The nodes that follow it from the start.
        nodes: Vec<Id>,
        /// The node that joins later (the last one).
        late: Id,
        mallory: Id,
        reorg: bool,
    },
    Node {
        /// The client it reports to (Alice, for the first node).
        client: Option<Id>,
        /// It joins later: it asks the chain for its best chain when it likes.
        late: bool,
        bug: Option<BlockstackBug>,
    },
    Alice {
        chain: Id,
        bug: Option<BlockstackBug>,
    },
    Mallory {
        chain: Id,
        /// Whether she may preorder the name herself.
        squat: bool,
        bug: Option<BlockstackBug>,
    },
}

impl BlockstackActor {
    /// The chain mines a block at `height` from its mempool, by fee (highest first; the sort
    /// is stable, so equal fees keep arrival order), and announces it.
    fn mine(&self, s: &mut ChainState, o: &mut Out<Self>) {
        let BlockstackActor::Chain { nodes, late, .. } = self else {
            unreachable!("only the chain mines")
        };
        let mut txs = std::mem::take(&mut s.mempool);
        txs.sort_by_key(|t| std::cmp::Reverse(t.fee));
        s.mined += 1;
        let block = Block {
            id: u64::from(s.mined),
            height: s.blocks.len() as Height + 1,
            txs,
        };
        s.blocks.push(block);
        let late = s.late_joined.then_some(*late);
        for n in nodes.iter().chain(late.iter()) {
            o.send(
                *n,
                BsMsg::BestChain {
                    version: s.mined,
                    blocks: s.blocks.clone(),
                },
            );
        }
    }

    /// A node adopts the chain's best chain `blocks` (announcement number `version`).
    fn node_on_best_chain(
        &self,
        s: &mut NodeState,
        version: u8,
        blocks: Vec<Block>,
        client: Option<Id>,
        bug: Option<BlockstackBug>,
        o: &mut Out<Self>,
    ) {
        // 1. Announcements arrive in any order; one older than what the node has seen is
        //    stale (a node that was behind skips straight to the best chain).
        if version <= s.version {
            return;
        }
        s.version = version;
        let common = s
            .chain
            .iter()
            .zip(&blocks)
            .take_while(|(a, b)| a.id == b.id)
            .count();
        s.follow(common, blocks.into_iter().skip(common), bug);
        if let Some(client) = client {
            o.send(
                client,
                BsMsg::Tip {
                    consensus_hash: *s.consensus_hashes.last().expect("genesis is there"),
                    preordered: s.db.preorders.iter().any(|p| p.sender == Principal::Alice),
                    owner: s.db.owner(NAME),
                },
            );
        }
    }
}

impl Actor for BlockstackActor {
    type Msg = BsMsg;
    type Timer = BsTimer;
    type State = BsState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _: &Option<()>, o: &mut Out<Self>) -> BsState {
        match self {
            BlockstackActor::Chain { reorg, .. } => {
                o.set_timer(BsTimer::Mine, model_timeout());
                if *reorg {
                    o.set_timer(BsTimer::Reorg, model_timeout());
                }
                BsState::Chain(ChainState {
                    blocks: Vec::new(),
                    mempool: Vec::new(),
                    mined: 0,
                    orphaned: None,
                    late_joined: false,
                })
            }
            BlockstackActor::Node { late, .. } => {
                if *late {
                    o.set_timer(BsTimer::Join, model_timeout());
                }
                BsState::Node(NodeState::genesis())
            }
            BlockstackActor::Alice { .. } => {
                o.set_timer(BsTimer::Preorder, model_timeout());
                BsState::Alice(AliceState {
                    step: AliceStep::Start,
                    consensus_hash: genesis_consensus_hash(),
                })
            }
            BlockstackActor::Mallory { squat, .. } => {
                if *squat {
                    o.set_timer(BsTimer::Preorder, model_timeout());
                }
                BsState::Mallory(MalloryState {
                    preordered: false,
                    saw_registration: false,
                })
            }
        }
    }

    fn on_msg(&self, _: Id, state: &mut Cow<BsState>, _: Id, msg: BsMsg, o: &mut Out<Self>) {
        match (self, &**state, msg) {
            (BlockstackActor::Chain { mallory, .. }, BsState::Chain(s), BsMsg::Tx(tx)) => {
                let mut s = s.clone();
                s.mempool.push(tx);
                // Mallory reads the mempool; a registration is the one operation that reveals
                // a name.
                if tx.sender != Principal::Mallory && matches!(tx.op, Op::NameRegistration { .. }) {
                    o.send(*mallory, BsMsg::Mempool(tx));
                }
                *state = Cow::Owned(BsState::Chain(s));
            }
            (BlockstackActor::Chain { late, .. }, BsState::Chain(s), BsMsg::GetChain) => {
                let mut s = s.clone();
                s.late_joined = true;
                o.send(
                    *late,
                    BsMsg::BestChain {
                        version: s.mined,
                        blocks: s.blocks.clone(),
                    },
                );
                *state = Cow::Owned(BsState::Chain(s));
            }
            (
                BlockstackActor::Node { client, bug, .. },
                BsState::Node(s),
                BsMsg::BestChain { version, blocks },
            ) => {
                if version <= s.version {
                    return; // Stale (see `node_on_best_chain`).
                }
                let mut s = s.clone();
                self.node_on_best_chain(&mut s, version, blocks, *client, *bug, o);
                *state = Cow::Owned(BsState::Node(s));
            }
            (
                BlockstackActor::Alice { chain, .. },
                BsState::Alice(s),
                BsMsg::Tip {
                    consensus_hash,
                    preordered,
                    owner,
                },
            ) => {
                let mut s = *s;
                match s.step {
                    AliceStep::Start => s.consensus_hash = consensus_hash,
                    // She registers once her node shows her preorder accepted...
                    AliceStep::SentPreorder if preordered => {
                        let op = Op::NameRegistration { name: NAME };
                        o.send(*chain, BsMsg::Tx(Tx::new(Principal::Alice, op)));
                        s.step = AliceStep::SentRegistration;
                    }
                    // ... and points the name at her zone file once it shows her as owner.
                    AliceStep::SentRegistration if owner == Some(Principal::Alice) => {
                        let op = Op::NameUpdate {
                            name: NAME,
                            zonefile_hash: 1,
                        };
                        o.send(*chain, BsMsg::Tx(Tx::new(Principal::Alice, op)));
                        s.step = AliceStep::SentUpdate;
                    }
                    _ => {}
                }
                if BsState::Alice(s) != **state {
                    *state = Cow::Owned(BsState::Alice(s));
                }
            }
            (BlockstackActor::Mallory { chain, .. }, BsState::Mallory(s), BsMsg::Mempool(tx)) => {
                if s.saw_registration {
                    return;
                }
                // The front-run: the name is out; her own registration and a transfer to
                // herself, each outbidding Alice.
                let Op::NameRegistration { name } = tx.op else {
                    return;
                };
                let reg = Tx::new(Principal::Mallory, Op::NameRegistration { name });
                let transfer = Op::NameTransfer {
                    name,
                    recipient: Principal::Mallory,
                };
                o.send(*chain, BsMsg::Tx(reg));
                o.send(*chain, BsMsg::Tx(Tx::new(Principal::Mallory, transfer)));
                let mut s = *s;
                s.saw_registration = true;
                *state = Cow::Owned(BsState::Mallory(s));
            }
            _ => {}
        }
    }

    fn on_timeout(&self, _: Id, state: &mut Cow<BsState>, timer: &BsTimer, o: &mut Out<Self>) {
        match (self, &**state, timer) {
            (BlockstackActor::Node { .. }, BsState::Node(_), BsTimer::Join) => {
                // A node that was not running (or was behind) syncs the chain as it now is.
                o.send(Id::from(CHAIN), BsMsg::GetChain);
            }
            (BlockstackActor::Chain { .. }, BsState::Chain(s), BsTimer::Mine) => {
                let mut s = s.clone();
                self.mine(&mut s, o);
                o.set_timer(BsTimer::Mine, model_timeout());
                *state = Cow::Owned(BsState::Chain(s));
            }
            (BlockstackActor::Chain { .. }, BsState::Chain(s), BsTimer::Reorg) => {
                let mut s = s.clone();
                // The tip is orphaned; its transactions are back in the mempool, ahead of
                // those that came since, and a competing block takes its height.
                let orphan = s
                    .blocks
                    .pop()
                    .expect("the model reorganises a non-empty chain");
                let mut mempool = orphan.txs.clone();
                mempool.append(&mut s.mempool);
                s.mempool = mempool;
                s.orphaned = Some(orphan);
                self.mine(&mut s, o);
                *state = Cow::Owned(BsState::Chain(s));
            }
            (BlockstackActor::Alice { chain, bug }, BsState::Alice(s), BsTimer::Preorder) => {
                let op = Op::NamePreorder {
                    hash: committed_hash(*bug, NAME, Principal::Alice),
                    consensus_hash: s.consensus_hash,
                    commits_to: (NAME, Principal::Alice),
                };
                o.send(*chain, BsMsg::Tx(Tx::new(Principal::Alice, op)));
                let mut s = *s;
                s.step = AliceStep::SentPreorder;
                *state = Cow::Owned(BsState::Alice(s));
            }
            (
                BlockstackActor::Mallory { chain, bug, .. },
                BsState::Mallory(s),
                BsTimer::Preorder,
            ) => {
                let op = Op::NamePreorder {
                    hash: committed_hash(*bug, NAME, Principal::Mallory),
                    consensus_hash: genesis_consensus_hash(),
                    commits_to: (NAME, Principal::Mallory),
                };
                o.send(*chain, BsMsg::Tx(Tx::new(Principal::Mallory, op)));
                let mut s = *s;
                s.preordered = true;
                *state = Cow::Owned(BsState::Mallory(s));
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// The actors, by id: the chain, the nodes, then Alice and Mallory.
pub const CHAIN: usize = 0;
pub const FIRST_NODE: usize = 1;

pub const ONE_OWNER: &str = "at most one owner per name on every node";
pub const NAME_TAKEN: &str = "a NAME_REGISTRATION of a name already registered is rejected";
pub const SAME_DATABASE: &str =
    "nodes that processed the same blocks have equal name databases and consensus hashes (§3.2)";
pub const ROLLED_BACK: &str =
    "a node rolls back an orphaned block whose operations it had accepted, and replays (§3.2)";
pub const PREORDERED_REGISTRANT: &str =
    "a name is registered only by the principal whose earlier, unexpired NAME_PREORDER committed to it";
pub const MALLORY_SEES: &str = "Mallory sees Alice's NAME_REGISTRATION before it is mined";
pub const FRONT_RUN_REJECTED: &str =
    "Mallory's NAME_REGISTRATION is mined ahead of Alice's, by fee, and rejected";
pub const PREORDER_EXPIRED: &str = "a NAME_REGISTRATION is rejected because its preorder expired";
pub const STALE_CONSENSUS_HASH: &str =
    "a NAME_PREORDER whose consensus hash is not recent on the node's chain is rejected (§3.2)";
pub const OWNER_ONLY: &str = "only a name's owner updates or transfers it";
pub const NOT_OWNER_REJECTED: &str =
    "a NAME_TRANSFER by a principal who does not own the name is rejected";
pub const OWNER_UPDATES: &str = "the owner's NAME_UPDATE is applied";

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockstackCfg {
    /// Blocks mined in all (the reorganisation's competing block included).
    pub max_blocks: u8,
    /// BNS nodes.
    pub nodes: usize,
    /// Whether the chain reorganises once, by one block.
    pub reorg: bool,
    /// Whether Mallory may preorder the name herself.
    pub squat: bool,
    pub bug: Option<BlockstackBug>,
}

impl BlockstackCfg {
    pub fn new(max_blocks: u8, nodes: usize, reorg: bool, squat: bool) -> Self {
        BlockstackCfg {
            max_blocks,
            nodes,
            reorg,
            squat,
            bug: None,
        }
    }

    pub fn bug(self, bug: Option<BlockstackBug>) -> Self {
        BlockstackCfg { bug, ..self }
    }

    pub fn into_model(self) -> BlockstackModel {
        let nodes: Vec<Id> = (0..self.nodes).map(|i| Id::from(FIRST_NODE + i)).collect();
        let alice = Id::from(FIRST_NODE + self.nodes);
        let mallory = Id::from(FIRST_NODE + self.nodes + 1);
        let chain = Id::from(CHAIN);
        let (late, early) = nodes.split_last().expect("at least two nodes");
        let mut actors = vec![BlockstackActor::Chain {
            nodes: early.to_vec(),
            late: *late,
            mallory,
            reorg: self.reorg,
        }];
        for i in 0..self.nodes {
            actors.push(BlockstackActor::Node {
                client: (i == 0).then_some(alice),
                late: i + 1 == self.nodes,
                bug: self.bug,
            });
        }
        actors.push(BlockstackActor::Alice {
            chain,
            bug: self.bug,
        });
        actors.push(BlockstackActor::Mallory {
            chain,
            squat: self.squat,
            bug: self.bug,
        });
        let inner = ActorModel::new(self, ())
            .actors(actors)
            .init_network(Network::new_ordered([]));
        Harness::new(inner, 0)
    }
}

pub type BsModelState = HState<Blockstack>;
pub type BsAction = HAction<Blockstack>;
pub type BlockstackModel = Harness<Blockstack>;

/// The Blockstack model's part of the [`Harness`].
pub struct Blockstack;

impl Harnessed for Blockstack {
    type Actor = BlockstackActor;
    type Cfg = BlockstackCfg;
    type History = ();
    type Step = ();

    fn step_of(_: &BsAction) {}

    fn crashes(_: &()) -> usize {
        0
    }

    fn count_crash(_: &mut ()) {}

    fn may_crash(_: &BlockstackModel, _: &BsModelState, _: usize) -> bool {
        false
    }

    /// Mining stops when the block budget is spent; the reorganisation needs a block to orphan.
    fn allow(m: &BlockstackModel, s: &BsModelState, a: &BsAction) -> bool {
        let c = chain(s);
        match a {
            ActorModelAction::Timeout(_, BsTimer::Mine) => c.mined < m.cfg().max_blocks,
            ActorModelAction::Timeout(_, BsTimer::Reorg) => {
                c.mined < m.cfg().max_blocks && !c.blocks.is_empty()
            }
            _ => true,
        }
    }

    fn record(_: &BlockstackModel, _: Option<(&BsModelState, ())>, _: &mut BsModelState) {}

    /// Alice hears from her node in the step that processed the block: when she reacts
    /// matters (her transactions travel to the mempool like anyone's), not when her own node
    /// tells her.
    fn immediate(_: &BlockstackModel, msg: &BsMsg) -> bool {
        matches!(msg, BsMsg::Tip { .. })
    }

    fn properties(_: &BlockstackModel) -> Vec<Property<BlockstackModel>> {
        vec![
            Property::always(ONE_OWNER, |_, s: &BsModelState| {
                nodes(s).all(|(_, n)| one_owner_per_name(n))
            }),
            Property::sometimes(NAME_TAKEN, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::NAME_TAKEN)
            }),
            Property::always(SAME_DATABASE, |_, s: &BsModelState| {
                nodes(s).all(|(_, a)| nodes(s).all(|(_, b)| same_blocks_same_database(a, b)))
            }),
            Property::sometimes(ROLLED_BACK, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::ROLLED_BACK_OPS)
            }),
            Property::always(PREORDERED_REGISTRANT, |_, s: &BsModelState| {
                nodes(s).all(|(_, n)| registrations_preordered(n))
            }),
            Property::sometimes(MALLORY_SEES, |_, s: &BsModelState| {
                mallory(s).saw_registration
                    && chain(s).mempool.iter().any(|t| {
                        t.sender == Principal::Alice && matches!(t.op, Op::NameRegistration { .. })
                    })
            }),
            Property::sometimes(FRONT_RUN_REJECTED, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::FRONT_RUN_REJECTED)
            }),
            Property::sometimes(PREORDER_EXPIRED, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::PREORDER_EXPIRED)
            }),
            Property::sometimes(STALE_CONSENSUS_HASH, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::STALE_CONSENSUS_HASH)
            }),
            Property::always(OWNER_ONLY, |_, s: &BsModelState| {
                nodes(s).all(|(_, n)| only_owners_change(n))
            }),
            Property::sometimes(NOT_OWNER_REJECTED, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::NOT_OWNER)
            }),
            Property::sometimes(OWNER_UPDATES, |_, s: &BsModelState| {
                seen_on_a_node(s, seen::OWNER_UPDATED)
            }),
        ]
    }
}

/// [`ONE_OWNER`] on one node: at most one owner for each name it records.
pub fn one_owner_per_name(n: &NodeState) -> bool {
    n.db.records
        .iter()
        .all(|r| owners(&n.db, r.name).len() <= 1)
}

/// [`SAME_DATABASE`] for two nodes: if they processed the same blocks, they hold the same
/// database and consensus hashes.
pub fn same_blocks_same_database(a: &NodeState, b: &NodeState) -> bool {
    a.chain != b.chain || (a.db == b.db && a.consensus_hashes == b.consensus_hashes)
}

/// [`PREORDERED_REGISTRANT`] on one node: every registration it applied was preordered by its
/// registrant ([`preordered_by_registrant`]).
pub fn registrations_preordered(n: &NodeState) -> bool {
    n.applied.iter().all(preordered_by_registrant)
}

/// [`OWNER_ONLY`] on one node: every update and transfer it applied came from the owner.
pub fn only_owners_change(n: &NodeState) -> bool {
    n.applied.iter().all(|a| match a.tx.op {
        Op::NameUpdate { .. } | Op::NameTransfer { .. } => a.owner_before == Some(a.tx.sender),
        _ => true,
    })
}

/// The distinct owners a database records for `name`.
pub fn owners(db: &NameDb, name: Name) -> Vec<Principal> {
    let mut owners: Vec<Principal> = db
        .records
        .iter()
        .filter(|r| r.name == name)
        .map(|r| r.owner)
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Some node has seen what the [`seen`] bit `bit` stands for.
fn seen_on_a_node(s: &BsModelState, bit: u8) -> bool {
    nodes(s).any(|(_, n)| n.seen & bit != 0)
}

/// A registration's preorder: sent by the registrant, committing to this name and registrant
/// (its ghost preimage, not its hash), in an earlier block, at most [`PREORDER_TTL`] before.
pub fn preordered_by_registrant(a: &Applied) -> bool {
    let Op::NameRegistration { name } = a.tx.op else {
        return true;
    };
    a.preorder.is_some_and(|p| {
        p.sender == a.tx.sender
            && p.commits_to == (name, a.tx.sender)
            && p.height < a.height
            && a.height <= p.height + PREORDER_TTL
    })
}

pub fn chain(s: &BsModelState) -> &ChainState {
    match &*s.actor_states[CHAIN] {
        BsState::Chain(c) => c,
        other => panic!("actor {CHAIN} is the chain, not {other:?}"),
    }
}

/// The nodes, with their ids.
pub fn nodes(s: &BsModelState) -> impl Iterator<Item = (usize, &NodeState)> + Clone {
    s.actor_states
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match &**a {
            BsState::Node(n) => Some((i, n)),
            _ => None,
        })
}

pub fn alice(s: &BsModelState) -> &AliceState {
    s.actor_states
        .iter()
        .find_map(|a| match &**a {
            BsState::Alice(a) => Some(a),
            _ => None,
        })
        .expect("Alice is an actor")
}

pub fn mallory(s: &BsModelState) -> &MalloryState {
    s.actor_states
        .iter()
        .find_map(|a| match &**a {
            BsState::Mallory(m) => Some(m),
            _ => None,
        })
        .expect("Mallory is an actor")
}

/// `Chain`, `N1`, `N2`, `Alice`, `Mallory`.
pub fn actor_names(m: &BlockstackModel) -> Vec<String> {
    let mut names = vec!["Chain".to_string()];
    names.extend((0..m.cfg().nodes).map(|i| format!("N{}", i + 1)));
    names.push("Alice".to_string());
    names.push("Mallory".to_string());
    names
}

/// A node's database and latest consensus hash, as the view writes them.
pub fn db_line(n: &NodeState) -> String {
    let records: Vec<String> =
        n.db.records
            .iter()
            .map(|r| match r.zonefile_hash {
                Some(z) => format!("{} owner {:?} zonefile {z}", r.name, r.owner),
                None => format!("{} owner {:?}", r.name, r.owner),
            })
            .collect();
    let preorders: Vec<String> =
        n.db.preorders
            .iter()
            .map(|p| format!("{:?}@h{}", p.sender, p.height))
            .collect();
    format!(
        "names [{}] preorders [{}] ch #{:08x}",
        records.join(", "),
        preorders.join(", "),
        n.consensus_hashes.last().expect("genesis is there"),
    )
}

/// `s` in the paper's terms: the chain and its mempool, each node's chain, database and
/// latest consensus hash, the clients, the messages in flight.
pub fn view(m: &BlockstackModel, s: &BsModelState) -> String {
    let names = actor_names(m);
    let mut lines = Vec::new();
    let c = chain(s);
    let ids = |blocks: &[Block]| -> String {
        let ids: Vec<String> = blocks.iter().map(|b| format!("b{}", b.id)).collect();
        format!("[{}]", ids.join(" "))
    };
    let mut line = format!(
        "Chain {} mempool {:?} (mined {} of {})",
        ids(&c.blocks),
        c.mempool,
        c.mined,
        m.cfg().max_blocks
    );
    if let Some(o) = &c.orphaned {
        line += &format!("; orphaned b{}", o.id);
    }
    lines.push(line);
    for b in &c.blocks {
        lines.push(format!("  {b:?}"));
    }
    if let Some(o) = &c.orphaned {
        lines.push(format!("  orphan {o:?}"));
    }
    for (i, n) in nodes(s) {
        let waiting = i == m.cfg().nodes && !c.late_joined;
        lines.push(format!(
            "{} chain {} {}{}",
            names[i],
            ids(&n.chain),
            db_line(n),
            if waiting { " (not joined yet)" } else { "" }
        ));
    }
    lines.push(match alice(s).step {
        AliceStep::Start => "Alice has sent nothing".to_string(),
        AliceStep::SentPreorder => "Alice has sent NAME_PREORDER".to_string(),
        AliceStep::SentRegistration => {
            "Alice has sent NAME_PREORDER, NAME_REGISTRATION".to_string()
        }
        AliceStep::SentUpdate => {
            "Alice has sent NAME_PREORDER, NAME_REGISTRATION, NAME_UPDATE".to_string()
        }
    });
    let ml = mallory(s);
    lines.push(format!(
        "Mallory {}{}",
        if ml.preordered {
            "preordered alice.id"
        } else {
            "no preorder"
        },
        if ml.saw_registration {
            "; saw Alice's NAME_REGISTRATION and answered it"
        } else {
            ""
        }
    ));
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// Why `property` fails at `state`, in BNS's terms.
pub fn explain(m: &BlockstackModel, s: &BsModelState, property: &str) -> Option<String> {
    let names = actor_names(m);
    match property {
        ONE_OWNER => nodes(s)
            .find(|(_, n)| owners(&n.db, NAME).len() > 1)
            .map(|(i, n)| {
                let owners: Vec<String> =
                    owners(&n.db, NAME).iter().map(|o| format!("{o:?}")).collect();
                format!("{} has {} owners of {NAME}: {}", names[i], owners.len(), owners.join(" and "))
            }),
        SAME_DATABASE => nodes(s).find_map(|(i, a)| {
            nodes(s)
                .find(|(j, b)| *j > i && a.chain == b.chain && (a.db != b.db || a.consensus_hashes != b.consensus_hashes))
                .map(|(j, b)| {
                    format!(
                        "{} and {} processed the same blocks; {} holds {}, {} holds {}",
                        names[i],
                        names[j],
                        names[i],
                        db_line(a),
                        names[j],
                        db_line(b)
                    )
                })
        }),
        PREORDERED_REGISTRANT => nodes(s).find_map(|(i, n)| {
            n.applied
                .iter()
                .find(|a| !preordered_by_registrant(a))
                .map(|a| match a.preorder {
                    None => format!("{} applied {:?} at h{} with no preorder", names[i], a.tx, a.height),
                    Some(p) => format!(
                        "{} applied {:?} at h{} with the preorder {:?} sent at h{}, which committed {} to {:?}",
                        names[i], a.tx, a.height, p.sender, p.height, p.commits_to.0, p.commits_to.1
                    ),
                })
        }),
        OWNER_ONLY => nodes(s).find_map(|(i, n)| {
            n.applied
                .iter()
                .find(|a| {
                    matches!(a.tx.op, Op::NameUpdate { .. } | Op::NameTransfer { .. })
                        && a.owner_before != Some(a.tx.sender)
                })
                .map(|a| format!("{} applied {:?} at h{}; the owner was {:?}", names[i], a.tx, a.height, a.owner_before))
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The checker's entry

/// The `blockstack` entry of the checker's registry.
pub struct BlockstackSpec;

impl Spec for BlockstackSpec {
    type Model = BlockstackModel;
    type State = BsModelState;
    type Action = BsAction;

    const NAME: &'static str = "blockstack";
    const PAPER: &'static str =
        "Ali, Nelson, Shea & Freedman, Blockstack: A Global Naming and Storage System Secured by Blockchains (USENIX ATC 2016) §§2, 3.2, 3";
    const SUMMARY: &'static str =
        "Blockstack's BNS: name operations in a chain whose miners order by fee, replayed by virtualchain nodes with consensus hashes; preorder-then-register against a front-runner; a one-block reorganisation";
    const PARAMS: &'static [Param] = &[
        Param::int(
            "blocks",
            "blocks mined in all (the reorganisation's included)",
            4,
            1,
            5,
        ),
        Param::int("nodes", "BNS nodes replaying the chain", 2, 2, 3),
        Param::int(
            "reorg",
            "1: the chain reorganises once, by one block",
            1,
            0,
            1,
        ),
        Param::int(
            "squat",
            "1: Mallory may preorder the name herself (with the genesis consensus hash)",
            1,
            0,
            1,
        ),
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: BlockstackBug::OneStepRegister.name(),
            breaks: &[PREORDERED_REGISTRANT, FRONT_RUN_REJECTED],
            help: "NAME_REGISTRATION needs no preorder: Mallory front-runs Alice's with a higher fee",
            params: &[("blocks", "3"), ("reorg", "0"), ("squat", "0")],
        },
        Bug {
            name: BlockstackBug::PreorderWithoutOwner.name(),
            breaks: &[PREORDERED_REGISTRANT],
            help: "the preorder hash omits the owner: Mallory's registration matches Alice's preorder",
            params: &[("blocks", "3"), ("reorg", "0"), ("squat", "0")],
        },
        Bug {
            name: BlockstackBug::NoReorgRollback.name(),
            breaks: &[ONE_OWNER, SAME_DATABASE],
            help: "nodes do not rewind their name database on a reorganisation: they diverge, and two owners appear",
            params: &[("blocks", "3")],
        },
        Bug {
            name: BlockstackBug::NoOwnerCheck.name(),
            breaks: &[OWNER_ONLY, NOT_OWNER_REJECTED],
            help: "NAME_UPDATE and NAME_TRANSFER are applied from anyone: Mallory transfers Alice's name to herself",
            params: &[("blocks", "4"), ("reorg", "0"), ("squat", "0")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> BlockstackModel {
        let bug = bug.map(|b| {
            BlockstackBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not a BlockstackBug"))
        });
        BlockstackCfg::new(
            params.int("blocks") as u8,
            params.int("nodes") as usize,
            params.int("reorg") == 1,
            params.int("squat") == 1,
        )
        .bug(bug)
        .into_model()
    }

    fn hash_state<H: std::hash::Hasher>(s: &BsModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &BsModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &BlockstackModel, s: &BsModelState) -> Option<String> {
        Some(view(m, s))
    }

    fn actor_names(m: &BlockstackModel) -> Option<Vec<String>> {
        Some(actor_names(m))
    }

    fn explain(m: &BlockstackModel, s: &BsModelState, property: &str) -> Option<String> {
        explain(m, s, property)
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use stateright::actor::{Actor, Id, Out};
    use stateright::{Checker, Model};

    use super::*;

    fn preorder(who: Principal, ch: ConsensusHash, bug: Option<BlockstackBug>) -> Tx {
        Tx::new(
            who,
            Op::NamePreorder {
                hash: committed_hash(bug, NAME, who),
                consensus_hash: ch,
                commits_to: (NAME, who),
            },
        )
    }

    fn register(who: Principal) -> Tx {
        Tx::new(who, Op::NameRegistration { name: NAME })
    }

    fn transfer(who: Principal, to: Principal) -> Tx {
        Tx::new(
            who,
            Op::NameTransfer {
                name: NAME,
                recipient: to,
            },
        )
    }

    fn block(id: u64, height: Height, txs: &[Tx]) -> Block {
        Block {
            id,
            height,
            txs: txs.to_vec(),
        }
    }

    fn owner_after(blocks: &[Block], bug: Option<BlockstackBug>) -> Option<Principal> {
        replay(blocks, bug).0.owner(NAME)
    }

    /// Reference: §3, preorder then register. Mallory's registration outbids Alice's and is
    /// first in the block, but only Alice preordered: Alice gets the name. Without the
    /// preorder rule, or with a hash that omits the owner, Mallory does.
    #[test]
    fn preorder_then_register_defeats_the_front_runner() {
        let g = genesis_consensus_hash();
        for (bug, winner) in [
            (None, Principal::Alice),
            (Some(BlockstackBug::OneStepRegister), Principal::Mallory),
            (
                Some(BlockstackBug::PreorderWithoutOwner),
                Principal::Mallory,
            ),
        ] {
            let blocks = [
                block(1, 1, &[preorder(Principal::Alice, g, bug)]),
                block(
                    2,
                    2,
                    &[register(Principal::Mallory), register(Principal::Alice)],
                ),
            ];
            assert_eq!(owner_after(&blocks, bug), Some(winner), "{bug:?}");
            let (_, _, applied) = replay(&blocks, bug);
            assert_eq!(
                applied.iter().all(preordered_by_registrant),
                bug.is_none(),
                "{bug:?}"
            );
        }
    }

    /// Reference: §3. A registration in the same block as its preorder is too early; one
    /// more than two blocks after it is too late.
    #[test]
    fn a_registration_needs_an_earlier_unexpired_preorder() {
        let g = genesis_consensus_hash();
        let pre = block(1, 1, &[preorder(Principal::Alice, g, None)]);
        let same = block(
            1,
            1,
            &[
                preorder(Principal::Alice, g, None),
                register(Principal::Alice),
            ],
        );
        assert_eq!(owner_after(&[same], None), None);
        let empty = |id, h| block(id, h, &[]);
        let in_time = [
            pre.clone(),
            empty(2, 2),
            block(3, 3, &[register(Principal::Alice)]),
        ];
        assert_eq!(owner_after(&in_time, None), Some(Principal::Alice));
        let late = [
            pre,
            empty(2, 2),
            empty(3, 3),
            block(4, 4, &[register(Principal::Alice)]),
        ];
        assert_eq!(owner_after(&late, None), None);
    }

    /// Reference: §3.2. Consensus hashes cover the accepted operations and the history: two
    /// forks that differ at height 1 differ at every later height, and a preorder that names
    /// one fork's consensus hash is rejected on the other.
    #[test]
    fn a_consensus_hash_binds_a_preorder_to_its_fork() {
        let g = genesis_consensus_hash();
        let a = [block(1, 1, &[preorder(Principal::Mallory, g, None)])];
        let b = [block(2, 1, &[])];
        let (_, chs_a, _) = replay(&a, None);
        let (_, chs_b, _) = replay(&b, None);
        assert_eq!(chs_a[0], chs_b[0]);
        assert_ne!(chs_a[1], chs_b[1]);
        let later = block(3, 2, &[preorder(Principal::Alice, chs_a[1], None)]);
        let on_a = replay(&[a[0].clone(), later.clone()], None).0;
        let on_b = replay(&[b[0].clone(), later], None).0;
        assert!(on_a.preorders.iter().any(|p| p.sender == Principal::Alice));
        assert!(on_b.preorders.is_empty());
        // Deterministic: the same blocks, the same hashes.
        assert_eq!(replay(&a, None).1, chs_a);
    }

    /// Reference: §3. Mallory's NAME_TRANSFER of Alice's name is rejected, Alice's own is
    /// applied; with `no-owner-check`, Mallory's is applied.
    #[test]
    fn only_the_owner_transfers() {
        let g = genesis_consensus_hash();
        let registered = [
            block(1, 1, &[preorder(Principal::Alice, g, None)]),
            block(2, 2, &[register(Principal::Alice)]),
        ];
        let with = |tx: Tx, bug| {
            let mut blocks = registered.to_vec();
            blocks.push(block(3, 3, &[tx]));
            owner_after(&blocks, bug)
        };
        let steal = transfer(Principal::Mallory, Principal::Mallory);
        assert_eq!(with(steal, None), Some(Principal::Alice));
        assert_eq!(
            with(steal, Some(BlockstackBug::NoOwnerCheck)),
            Some(Principal::Mallory)
        );
        let give = transfer(Principal::Alice, Principal::Mallory);
        assert_eq!(with(give, None), Some(Principal::Mallory));
    }

    fn deliver(actor: &BlockstackActor, s: &mut BsState, version: u8, blocks: &[Block]) {
        let mut state = Cow::Borrowed(&*s);
        let msg = BsMsg::BestChain {
            version,
            blocks: blocks.to_vec(),
        };
        actor.on_msg(Id::from(1), &mut state, Id::from(0), msg, &mut Out::new());
        *s = state.into_owned();
    }

    /// Reference: §3.2, virtualchain. Alice's registration is in the orphaned block, Mallory's
    /// (she preordered too) comes first in the block that replaces it: a node rolls back and
    /// ends with Mallory as the owner, as a node that never saw the orphan does. Without the
    /// rollback it keeps both owners.
    #[test]
    fn a_node_rolls_back_an_orphaned_block() {
        let g = genesis_consensus_hash();
        let b1 = block(
            1,
            1,
            &[
                preorder(Principal::Mallory, g, None),
                preorder(Principal::Alice, g, None),
            ],
        );
        let orphan = block(2, 2, &[register(Principal::Alice)]);
        let winner = block(
            3,
            2,
            &[register(Principal::Mallory), register(Principal::Alice)],
        );
        for bug in [None, Some(BlockstackBug::NoReorgRollback)] {
            let actor = BlockstackActor::Node {
                client: None,
                late: false,
                bug,
            };
            let mut s = actor.on_start(Id::from(1), &None, &mut Out::new());
            deliver(&actor, &mut s, 2, &[b1.clone(), orphan.clone()]);
            deliver(&actor, &mut s, 3, &[b1.clone(), winner.clone()]);
            let BsState::Node(n) = s else {
                panic!("a node's state")
            };
            let (db, chs, _) = replay(&[b1.clone(), winner.clone()], None);
            assert_eq!(n.consensus_hashes, chs);
            assert!(n.seen & seen::ROLLED_BACK_OPS != 0);
            if bug.is_none() {
                assert_eq!(n.db, db);
                assert_eq!(owners(&n.db, NAME), [Principal::Mallory]);
            } else {
                assert_ne!(n.db, db);
                assert_eq!(owners(&n.db, NAME), [Principal::Alice, Principal::Mallory]);
            }
        }
    }

    /// Small configurations: verdicts (stateright's own BFS) and unique state counts (a
    /// search that tells states apart by equality). The defaults are pinned in
    /// `reports/blockstack.json` by the checker crate.
    #[test]
    fn small_configurations_pass_with_pinned_counts() {
        let run = |cfg: BlockstackCfg| {
            let exact = crate::catalog::count_exactly(&cfg.clone().into_model(), None);
            let c = cfg.into_model().checker().threads(1).spawn_bfs().join();
            for p in [ONE_OWNER, SAME_DATABASE, PREORDERED_REGISTRANT, OWNER_ONLY] {
                assert!(c.discovery(p).is_none(), "{p}");
            }
            exact
        };
        let counts = [
            run(BlockstackCfg::new(2, 2, false, false)),
            run(BlockstackCfg::new(3, 2, true, true)),
        ];
        assert_eq!(counts, [530, 41_563]);
    }

    /// Each seeded bug, in its own configuration, breaks the `always` properties it names and
    /// no other (the checker's `bugs` test checks the examples too, with its own engine).
    #[test]
    fn each_bug_breaks_exactly_the_properties_it_names() {
        use crate::catalog::Spec;
        let always = [ONE_OWNER, SAME_DATABASE, PREORDERED_REGISTRANT, OWNER_ONLY];
        let expected: [(BlockstackBug, &[&str]); 4] = [
            (BlockstackBug::OneStepRegister, &[PREORDERED_REGISTRANT]),
            (
                BlockstackBug::PreorderWithoutOwner,
                &[PREORDERED_REGISTRANT],
            ),
            (BlockstackBug::NoReorgRollback, &[ONE_OWNER, SAME_DATABASE]),
            (BlockstackBug::NoOwnerCheck, &[OWNER_ONLY]),
        ];
        for (bug, breaks) in expected {
            let spec = BlockstackSpec::BUGS
                .iter()
                .find(|b| b.name == bug.name())
                .expect("every bug is in the spec");
            let params = spec.configure(
                BlockstackSpec::PARAMS,
                &Params::defaults(BlockstackSpec::PARAMS),
            );
            let m = BlockstackSpec::build(&params, Some(bug.name()));
            let c = m.checker().threads(1).spawn_bfs().join();
            for p in always {
                assert_eq!(
                    c.discovery(p).is_some(),
                    breaks.contains(&p),
                    "{}: {p}",
                    bug.name()
                );
            }
        }
    }
}
