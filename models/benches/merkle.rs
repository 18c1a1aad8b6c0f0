//! Merkle log speed: `cargo bench -p models --bench merkle`.
//!
//! Appends 1,000,000 leaves of 32 bytes, then makes and verifies 100,000 inclusion proofs and
//! 100,000 consistency proofs at random sizes, and compares with the raw SHA-256 throughput of this
//! machine measured in the same run (65-byte inputs, the size of a node hash's input). An append
//! costs one leaf hash and on average one node hash, so the goal is appends within 2x of the time
//! of two raw hashes; a proof should cost O(log n) hashes.

use std::hint::black_box;
use std::time::Instant;

use models::ct::merkle::{verify_consistency, verify_inclusion, MerkleLog};
use sha2::{Digest, Sha256};

const LEAVES: u64 = 1_000_000;
const PROOFS: u64 = 100_000;

fn main() {
    // Raw SHA-256 on a node-sized input.
    let input = [7u8; 65];
    let start = Instant::now();
    let mut acc = [0u8; 32];
    for i in 0..LEAVES {
        let mut h = Sha256::new();
        h.update(&input[..64]);
        h.update([i as u8]);
        acc = h.finalize().into();
    }
    black_box(acc);
    let raw_s = start.elapsed().as_secs_f64();
    let raw_rate = LEAVES as f64 / raw_s;
    println!("raw SHA-256 (65-byte inputs): {raw_rate:.0} hashes/s");

    let leaves: Vec<[u8; 32]> = (0..LEAVES)
        .map(|i| {
            let mut l = [0u8; 32];
            l[..8].copy_from_slice(&i.to_le_bytes());
            l
        })
        .collect();
    let start = Instant::now();
    let mut log = MerkleLog::new();
    for l in &leaves {
        log.append(l);
    }
    let append_s = start.elapsed().as_secs_f64();
    // Each append: one leaf hash, and one node hash per completed subtree (n - 1 in all).
    let hashes = 2 * LEAVES - 1;
    println!(
        "append {LEAVES} leaves: {append_s:.3} s, {:.0} appends/s, {:.0} hashes/s = {:.2}x the time of raw hashing",
        LEAVES as f64 / append_s,
        hashes as f64 / append_s,
        append_s / (hashes as f64 / raw_rate)
    );

    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let queries: Vec<(u64, u64)> = (0..PROOFS)
        .map(|_| {
            let size = 1 + rand(LEAVES);
            (rand(size), size)
        })
        .collect();
    let roots: Vec<_> = queries.iter().map(|&(_, s)| log.root(s).unwrap()).collect();

    let start = Instant::now();
    let mut total_len = 0;
    for (&(index, size), root) in queries.iter().zip(&roots) {
        let proof = log.inclusion_proof(index, size).unwrap();
        total_len += proof.len();
        verify_inclusion(index, size, &log.leaf_hash(index).unwrap(), &proof, root).unwrap();
    }
    let inclusion_s = start.elapsed().as_secs_f64();
    report("inclusion", inclusion_s, total_len, raw_rate);

    let root_n = log.root(LEAVES).unwrap();
    let start = Instant::now();
    let mut total_len = 0;
    for (&(_, size), root) in queries.iter().zip(&roots) {
        let proof = log.consistency_proof(size, LEAVES).unwrap();
        total_len += proof.len();
        verify_consistency(size, LEAVES, root, &root_n, &proof).unwrap();
    }
    let consistency_s = start.elapsed().as_secs_f64();
    report("consistency", consistency_s, total_len, raw_rate);
    println!("log2(1,000,000) = {:.1}", (LEAVES as f64).log2());
}

fn report(kind: &str, secs: f64, total_len: usize, raw_rate: f64) {
    println!(
        "{PROOFS} {kind} proofs made and verified: {secs:.3} s, {:.0} proofs/s, {:.1} hashes per path on average, make + verify cost {:.1} raw hashes per proof",
        PROOFS as f64 / secs,
        total_len as f64 / PROOFS as f64,
        secs * raw_rate / PROOFS as f64
    );
}
