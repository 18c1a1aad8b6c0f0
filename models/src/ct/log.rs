//! A CT log: the Merkle tree it keeps, the tree heads it signs (RFC 6962 §3.5), the promises it
//! gives for new entries (signed certificate timestamps, §3.2), and the behaviours of a log that
//! cheats, for the gossip model.
//!
//! Time is logical: a tree head's timestamp is its tree size and a promise's is the leaf index, so
//! that the same code runs in the model (which has no clocks) and over TCP.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::merkle::{leaf_hash, Hash, MerkleLog};

/// The log's key pair, from a fixed seed in its configuration.
pub fn signing_key(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

/// A signed tree head: RFC 6962 §3.5 `TreeHeadSignature` over (version, `tree_hash`, timestamp,
/// tree_size, sha256_root_hash), signed with Ed25519 (RFC 9162 allows it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    pub timestamp: u64,
    pub root_hash: Hash,
    pub signature: [u8; 64],
}

impl fmt::Debug for SignedTreeHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "STH(size {}, root {:02x}{:02x}{:02x}{:02x})",
            self.tree_size,
            self.root_hash[0],
            self.root_hash[1],
            self.root_hash[2],
            self.root_hash[3]
        )
    }
}

/// `digitally-signed struct { Version version = v1; SignatureType signature_type = tree_hash;
/// uint64 timestamp; uint64 tree_size; opaque sha256_root_hash[32]; } TreeHeadSignature`.
fn tree_head_signature_input(timestamp: u64, tree_size: u64, root: &Hash) -> [u8; 50] {
    let mut m = [0u8; 50];
    m[0] = 0; // v1
    m[1] = 1; // tree_hash
    m[2..10].copy_from_slice(&timestamp.to_be_bytes());
    m[10..18].copy_from_slice(&tree_size.to_be_bytes());
    m[18..].copy_from_slice(root);
    m
}

impl SignedTreeHead {
    pub fn sign(key: &SigningKey, tree_size: u64, root_hash: Hash) -> Self {
        let timestamp = tree_size;
        let signature = key
            .sign(&tree_head_signature_input(timestamp, tree_size, &root_hash))
            .to_bytes();
        SignedTreeHead {
            tree_size,
            timestamp,
            root_hash,
            signature,
        }
    }

    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let msg = tree_head_signature_input(self.timestamp, self.tree_size, &self.root_hash);
        key.verify(&msg, &Signature::from_bytes(&self.signature))
            .is_ok()
    }
}

/// A log's promise to include an entry (RFC 6962 §3.2, a signed certificate timestamp), here
/// naming the leaf index it will have.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Promise {
    pub leaf_hash: Hash,
    pub leaf_index: u64,
    pub signature: [u8; 64],
}

impl fmt::Debug for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Promise(leaf {})", self.leaf_index)
    }
}

fn promise_input(leaf_hash: &Hash, leaf_index: u64) -> [u8; 42] {
    let mut m = [0u8; 42];
    m[0] = 0; // v1
    m[1] = 0; // certificate_timestamp
    m[2..10].copy_from_slice(&leaf_index.to_be_bytes());
    m[10..].copy_from_slice(leaf_hash);
    m
}

impl Promise {
    pub fn sign(key: &SigningKey, leaf_hash: Hash, leaf_index: u64) -> Self {
        let signature = key.sign(&promise_input(&leaf_hash, leaf_index)).to_bytes();
        Promise {
            leaf_hash,
            leaf_index,
            signature,
        }
    }

    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key.verify(
            &promise_input(&self.leaf_hash, self.leaf_index),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

/// How a log behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    /// One append-only tree for everyone.
    Honest,
    /// A split view: clients are shown one of two trees that share a prefix. The second view also
    /// holds an entry of the log's own, so the two views differ in size as well as in content.
    SplitView,
    /// It promises to include the first client's entry, but appends a different one in its place
    /// and lies about the inclusion proof.
    BrokenPromise,
}

/// The entry every view starts with.
pub const GENESIS: &[u8] = b"genesis";
/// The entry a split-view log adds to its second view only.
pub const FORK_ENTRY: &[u8] = b"fork";
/// The entry a promise-breaking log appends in place of the one it promised.
pub const SUBSTITUTE: &[u8] = b"substitute";

/// The state of a log: its behaviour (chosen at start when the configuration allows several) and
/// the trees it shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogState {
    pub behaviour: Option<Behaviour>,
    /// One tree, or two for a split view. Invariant: every view starts with [`GENESIS`].
    pub views: Vec<MerkleLog>,
}

impl LogState {
    /// A log that has not chosen its behaviour yet.
    pub fn new() -> Self {
        let mut genesis = MerkleLog::new();
        genesis.append(GENESIS);
        LogState {
            behaviour: None,
            views: vec![genesis],
        }
    }

    /// Takes on `behaviour`.
    pub fn choose(&mut self, behaviour: Behaviour) {
        self.behaviour = Some(behaviour);
        if behaviour == Behaviour::SplitView {
            let mut second = self.views[0].clone();
            second.append(FORK_ENTRY);
            self.views.push(second);
        }
    }

    /// The view shown to the client with index `client` (0-based among the clients).
    pub fn view_of(&self, client: usize) -> usize {
        client % self.views.len()
    }

    /// Adds an entry for `client`; returns the promise to sign (leaf hash, index).
    pub fn add_entry(&mut self, client: usize, data: &[u8]) -> (Hash, u64) {
        let hash = leaf_hash(data);
        let v = self.view_of(client);
        if self.behaviour == Some(Behaviour::BrokenPromise) && client == 0 {
            let index = self.views[v].append(SUBSTITUTE);
            return (hash, index);
        }
        (hash, self.views[v].append_leaf_hash(hash))
    }

    /// The newest tree head of `client`'s view.
    pub fn head(&self, client: usize) -> (u64, Hash) {
        let view = &self.views[self.view_of(client)];
        let size = view.size();
        (size, view.root(size).expect("size of the view"))
    }

    /// A consistency proof between `first` and `second` for `client`. A cheating log that cannot
    /// give a true one answers with a proof from another view (which will not verify).
    pub fn consistency(&self, client: usize, first: u64, second: u64) -> Vec<Hash> {
        let own = self.view_of(client);
        let order = std::iter::once(own).chain((0..self.views.len()).filter(|v| *v != own));
        for v in order {
            if let Ok(proof) = self.views[v].consistency_proof(first, second) {
                return proof;
            }
        }
        Vec::new()
    }

    /// An inclusion proof of `hash` at `tree_size` for `client`: the leaf index and audit path.
    /// A log that does not hold the entry (it broke its promise) lies: it claims the newest leaf of
    /// that tree, which is where the substitute went, and gives that leaf's genuine path, so only
    /// verifying the path against the promised hash exposes it.
    pub fn inclusion(&self, client: usize, hash: &Hash, tree_size: u64) -> (u64, Vec<Hash>) {
        let view = &self.views[self.view_of(client)];
        let index = (0..tree_size.min(view.size()))
            .find(|i| view.leaf_hash(*i).as_ref() == Some(hash))
            .unwrap_or(tree_size.saturating_sub(1));
        (
            index,
            view.inclusion_proof(index, tree_size).unwrap_or_default(),
        )
    }

    /// Whether a head of size `size` and root `root` is a head of some view of this log, and
    /// which: the ground truth the properties compare with.
    pub fn views_with(&self, size: u64, root: &Hash) -> impl Iterator<Item = usize> + '_ {
        let root = *root;
        (0..self.views.len()).filter(move |v| self.views[*v].root(size).ok() == Some(root))
    }
}

impl Default for LogState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_bind_the_fields() {
        let key = signing_key([7; 32]);
        let sth = SignedTreeHead::sign(&key, 3, [1; 32]);
        assert!(sth.verify(&key.verifying_key()));
        let mut forged = sth;
        forged.tree_size = 4;
        assert!(!forged.verify(&key.verifying_key()));
        assert!(!sth.verify(&signing_key([8; 32]).verifying_key()));
        let p = Promise::sign(&key, [2; 32], 5);
        assert!(p.verify(&key.verifying_key()));
        let mut moved = p;
        moved.leaf_index = 6;
        assert!(!moved.verify(&key.verifying_key()));
    }

    #[test]
    fn a_split_view_log_shows_two_trees() {
        let mut log = LogState::new();
        log.choose(Behaviour::SplitView);
        log.add_entry(0, b"a");
        log.add_entry(1, b"b");
        let (s0, r0) = log.head(0);
        let (s1, r1) = log.head(1);
        assert_eq!((s0, s1), (2, 3));
        assert_eq!(log.views_with(s0, &r0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(log.views_with(s1, &r1).collect::<Vec<_>>(), vec![1]);
    }
}
