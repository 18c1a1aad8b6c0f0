//! Merkle hash trees as Certificate Transparency defines them: RFC 6962 §2.1, restated as RFC 9162
//! §2.1 (hashing §2.1.1, inclusion proofs §2.1.3, consistency proofs §2.1.4).
//!
//! `MTH({}) = SHA-256()`, `MTH({d}) = SHA-256(0x00 || d)`, and for n > 1 with k the largest power of
//! two smaller than n, `MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`.
//!
//! [`MerkleLog`] is an append-only log that keeps the hash of every complete subtree, so appending
//! costs one leaf hash plus on average one node hash, and a root of any size or a proof costs
//! O(log n) hashes. The verifiers follow RFC 9162's algorithms exactly, with the conventions of the
//! reference implementation (transparency-dev/merkle): a consistency proof from size 0 is rejected,
//! equal sizes need an empty proof, and a hash that is not 32 bytes is rejected.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256()`: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// Why a proof could not be made or did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("size {size} is larger than the tree ({tree} leaves)")]
    SizeBeyondTree { size: u64, tree: u64 },
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs 0 < size1 <= size2, got {size1} and {size2}")]
    BadSizes { size1: u64, size2: u64 },
    #[error("a hash is {0} bytes, not 32")]
    HashLength(usize),
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof for equal sizes must be empty")]
    NonEmptyForEqualSizes,
    #[error("the computed root does not match")]
    RootMismatch,
}

/// An append-only Merkle log.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct MerkleLog {
    /// `levels[k][i]` is the root of the complete subtree over leaves `[i 2^k, (i+1) 2^k)`.
    /// Invariant: `levels[k].len() == levels[0].len() >> k`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleLog {
    pub fn new() -> Self {
        MerkleLog::default()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf with this data; returns its index.
    pub fn append(&mut self, data: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(data))
    }

    /// Appends a leaf by its leaf hash; returns its index.
    pub fn append_leaf_hash(&mut self, hash: Hash) -> u64 {
        let index = self.size();
        let mut node = hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(node);
            let len = self.levels[level].len();
            if len % 2 == 1 {
                break;
            }
            // A subtree of 2^(level+1) leaves just completed.
            node = node_hash(&self.levels[level][len - 2], &self.levels[level][len - 1]);
            level += 1;
        }
        index
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(index as usize).copied()
    }

    /// `MTH(D[0:size])`, the root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        })
    }

    /// `MTH(D[start:start+len])` for a subtree of the RFC's recursion (len > 0). A complete aligned
    /// subtree is a lookup; otherwise the right edge is hashed, O(log len) hashes.
    fn subtree(&self, start: u64, len: u64) -> Hash {
        if len.is_power_of_two() && start % len == 0 {
            let level = len.trailing_zeros() as usize;
            return self.levels[level][(start >> level) as usize];
        }
        let k = split(len);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, len - k))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeBeyondTree {
                size,
                tree: self.size(),
            });
        }
        Ok(())
    }

    /// The inclusion proof (audit path) of leaf `index` in the tree of size `size`: RFC 9162
    /// §2.1.3.1, `PATH(m, D[n])`, leaf-level sibling first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Ok(path)
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n == 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// The consistency proof between the trees of sizes `size1` and `size2`: RFC 9162 §2.1.4.1,
    /// `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`. Empty for equal sizes; size 0 is rejected.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size2)?;
        if size1 == 0 || size1 > size2 {
            return Err(ProofError::BadSizes { size1, size2 });
        }
        let mut proof = Vec::new();
        self.subproof(size1, 0, size2, true, &mut proof);
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, complete: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !complete {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, complete, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

impl std::fmt::Debug for MerkleLog {
    /// The size and the first bytes of the root: the levels are not for reading.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let root = self.root(self.size()).expect("own size");
        write!(
            f,
            "MerkleLog(size {}, root {:02x}{:02x}{:02x}{:02x})",
            self.size(),
            root[0],
            root[1],
            root[2],
            root[3]
        )
    }
}

fn as_hash(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::HashLength(bytes.len()))
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of size `size` with root `root`: RFC 9162
/// §2.1.3.2.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    let root = as_hash(root)?;
    let mut r = as_hash(leaf_hash)?;
    // 1. If leaf_index >= tree_size, fail.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // 2. fn = leaf_index, sn = tree_size - 1.
    let (mut f, mut s) = (index, size - 1);
    // 4. For each value p in the inclusion_path array:
    for p in proof {
        let p = as_hash(p.as_ref())?;
        // a. If sn is 0, stop the iteration and fail the proof verification.
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f & 1 == 1 || f == s {
            r = node_hash(&p, &r);
            // If LSB(fn) is not set, right-shift both fn and sn equally until either LSB(fn) is
            // set or fn is 0.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        // c. Finally, right-shift both fn and sn one time.
        f >>= 1;
        s >>= 1;
    }
    // 5. Compare sn to 0 and r against the root hash.
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of size `size1` with root `root1` is a prefix of the tree of size `size2`
/// with root `root2`: RFC 9162 §2.1.4.2.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[P],
) -> Result<(), ProofError> {
    let root1 = as_hash(root1)?;
    let root2 = as_hash(root2)?;
    let proof: Vec<Hash> = proof
        .iter()
        .map(|p| as_hash(p.as_ref()))
        .collect::<Result<_, _>>()?;
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::BadSizes { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyForEqualSizes);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    let path: Vec<Hash> = if size1.is_power_of_two() {
        std::iter::once(root1).chain(proof).collect()
    } else {
        proof
    };
    // 3. Set fn to first - 1 and sn to second - 1.
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let (mut fr, mut sr) = (path[0], path[0]);
    // 6. For each subsequent value c in the consistency_path array:
    for c in &path[1..] {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // If LSB(fn) is not set, then right-shift both fn and sn equally until either LSB(fn)
            // is set or fn is 0.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        f >>= 1;
        s >>= 1;
    }
    // 7. Verify fr == first_hash, sr == second_hash and sn == 0.
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != root1 || sr != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `MTH` straight from the RFC's recursive definition.
    fn reference_root(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn log_of(n: u64) -> (MerkleLog, Vec<Vec<u8>>) {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut log = MerkleLog::new();
        for l in &leaves {
            log.append(l);
        }
        (log, leaves)
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let (log, leaves) = log_of(70);
        for size in 0..=70 {
            assert_eq!(
                log.root(size).unwrap(),
                reference_root(&leaves[..size as usize])
            );
        }
        assert!(log.root(71).is_err());
    }

    #[test]
    fn rejects_what_rfc9162_rejects() {
        let (log, _) = log_of(8);
        let root = log.root(8).unwrap();
        assert_eq!(
            log.consistency_proof(0, 8),
            Err(ProofError::BadSizes { size1: 0, size2: 8 })
        );
        let empty: [Hash; 0] = [];
        assert!(verify_consistency(0, 8, &empty_root(), &root, &empty).is_err());
        assert_eq!(
            verify_consistency(8, 8, &root, &root, &[root]),
            Err(ProofError::NonEmptyForEqualSizes)
        );
        assert_eq!(verify_consistency(8, 8, &root, &root, &empty), Ok(()));
        assert_eq!(
            verify_inclusion(0, 8, &[0u8; 31], &empty, &root),
            Err(ProofError::HashLength(31))
        );
        assert!(matches!(
            verify_inclusion(8, 8, &log.leaf_hash(0).unwrap(), &empty, &root),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(log.inclusion_proof(8, 8).is_err());
    }

    fn mutate(proof: &mut Vec<Hash>, how: u8, at: usize, bit: u8) {
        match how {
            0 if !proof.is_empty() => {
                let i = at % proof.len();
                proof[i][(bit as usize) % 32] ^= 1 << (bit % 8);
            }
            1 if !proof.is_empty() => {
                proof.remove(at % proof.len());
            }
            _ => proof.insert(at % (proof.len() + 1), [bit; 32]),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_generated_proof_verifies_and_every_mutation_fails(
            n in 1..2000u64, m in any::<prop::sample::Index>(), i in any::<prop::sample::Index>(),
            how in 0..3u8, at in any::<usize>(), bit in any::<u8>(),
        ) {
            let (log, _) = log_of(n);
            let m = 1 + m.index(n as usize) as u64; // 1..=n
            let i = i.index(m as usize) as u64; // 0..m
            let root_m = log.root(m).unwrap();
            let root_n = log.root(n).unwrap();

            let mut inclusion = log.inclusion_proof(i, m).unwrap();
            prop_assert!(inclusion.len() <= 64 - (m.leading_zeros() as usize) + 1);
            let leaf = log.leaf_hash(i).unwrap();
            prop_assert_eq!(verify_inclusion(i, m, &leaf, &inclusion, &root_m), Ok(()));
            mutate(&mut inclusion, how, at, bit);
            prop_assert!(verify_inclusion(i, m, &leaf, &inclusion, &root_m).is_err());

            let mut consistency = log.consistency_proof(m, n).unwrap();
            prop_assert_eq!(verify_consistency(m, n, &root_m, &root_n, &consistency), Ok(()));
            mutate(&mut consistency, how, at, bit);
            prop_assert!(verify_consistency(m, n, &root_m, &root_n, &consistency).is_err());
        }
    }
}
