//! Header hashing against the physical limit, and the Merkle root of block 413,567:
//! `cargo bench -p models --bench bitcoin_hash` (or `bash bench/bitcoin-hash.sh`).
//!
//! - **The limit**, measured in the same run: one SHA-256 over a 64 MiB buffer, in bytes a
//!   second, and 64 hashes of 1 MiB (in cache); the faster, best of three. SHA-256 works in 64-byte blocks (one compression each). A header hash is a double
//!   SHA-256 of 80 bytes: 80 bytes padded to two blocks, then the 32-byte digest padded to one,
//!   three compressions, so the limit is bytes/s / 192 headers a second. A miner that keeps the
//!   midstate of the header's first 64 bytes (they do not change with the nonce) needs two
//!   compressions a nonce: bytes/s / 128.
//! - **Header hashes**: `consensus::Header::hash` (serialize, double SHA-256) on successive
//!   nonces, best of three; and the node's mining step (hash, then `check_proof_of_work` at the test chain's
//!   target), which is what a miner of `bitcoin::node` does a nonce.
//! - **Block 413,567** (`../shared/data/bitcoin/block413567.raw`, 999,887 bytes, 1,557
//!   transactions): the time to parse it (every txid is a double SHA-256 of the transaction
//!   without its witness), and the time to compute the Merkle root from the txids
//!   (`consensus::merkle_root`: 1,557 leaves, 1,563 pair hashes), each the median of 21 runs;
//!   the root is checked against the header's.
//!
//! Environment: `BITCOIN_DATA` names the directory that holds `block413567.raw`.

use std::hint::black_box;
use std::time::Instant;

use models::bitcoin::consensus::{check_proof_of_work, Block, Hash256, Header};
use models::bitcoin::node::{chain_params, DEFAULT_BITS};
use sha2::{Digest, Sha256};

const BUFFER: usize = 64 << 20;
const HEADERS: u32 = 4_000_000;
const RUNS: usize = 21;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // 1. The raw SHA-256 throughput: one hash over a big buffer (from memory), and 64 hashes
    //    of its first MiB (from cache); the faster of the two, best of three, is the limit.
    let buffer: Vec<u8> = (0..BUFFER).map(|i| (i * 31 + 7) as u8).collect();
    let (mut big, mut cached) = (0f64, 0f64);
    for _ in 0..3 {
        let start = Instant::now();
        black_box(Sha256::digest(black_box(&buffer)));
        big = big.max(BUFFER as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        for _ in 0..64 {
            black_box(Sha256::digest(black_box(&buffer[..1 << 20])));
        }
        cached = cached.max((64 << 20) as f64 / start.elapsed().as_secs_f64());
    }
    let raw = big.max(cached);
    println!(
        "raw SHA-256: {:.1} MB/s over {} MiB, {:.1} MB/s over 1 MiB in cache",
        big / 1e6,
        BUFFER >> 20,
        cached / 1e6
    );
    let limit = raw / 192.0;
    let midstate_limit = raw / 128.0;
    println!("  = {:.0} compressions/s (64-byte blocks)", raw / 64.0);
    println!(
        "limit: {limit:.0} header hashes/s (3 compressions each); {midstate_limit:.0} with a midstate (2)"
    );

    // 2. Header hashes on successive nonces.
    let mut header = Header {
        version: 0x2000_0000,
        prev_blockhash: Hash256([1; 32]),
        merkle_root: Hash256([2; 32]),
        time: 1_231_006_505,
        bits: DEFAULT_BITS,
        nonce: 0,
    };
    let mut rate = 0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut acc = 0u8;
        for nonce in 0..HEADERS {
            header.nonce = nonce;
            acc ^= black_box(header.hash()).0[31];
        }
        black_box(acc);
        rate = rate.max(f64::from(HEADERS) / start.elapsed().as_secs_f64());
    }
    println!(
        "Header::hash: {rate:.0} hashes/s = {:.2} of the limit, {:.2} of the midstate limit",
        rate / limit,
        rate / midstate_limit
    );
    let pow_limit = chain_params(DEFAULT_BITS).pow_limit;
    let start = Instant::now();
    let mut found = 0u32;
    for nonce in 0..HEADERS {
        header.nonce = nonce;
        found += u32::from(check_proof_of_work(header.hash(), header.bits, pow_limit));
    }
    let rate = f64::from(HEADERS) / start.elapsed().as_secs_f64();
    println!(
        "mining step (hash + check_proof_of_work at nBits {DEFAULT_BITS:#010x}): {rate:.0} nonces/s = {:.2} of the limit; {found} blocks found in {HEADERS} nonces (expected {:.0})",
        rate / limit,
        f64::from(HEADERS) / 8192.0
    );

    // 3. Block 413,567.
    let dir = std::env::var("BITCOIN_DATA")
        .unwrap_or_else(|_| format!("{}/../../shared/data/bitcoin", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/block413567.raw");
    let Ok(raw_block) = std::fs::read(&path) else {
        println!("block 413,567: {path} not found (set BITCOIN_DATA)");
        return;
    };
    let mut parse = Vec::new();
    let mut root = Vec::new();
    let mut block = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let b = Block::parse(black_box(&raw_block)).expect("block 413,567 parses");
        parse.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let (r, mutated) = black_box(b.merkle_root());
        root.push(start.elapsed().as_secs_f64());
        assert_eq!(r, b.header.merkle_root, "the header's Merkle root");
        assert!(!mutated);
        block = Some(b);
    }
    let block = block.expect("parsed");
    let (parse, root) = (median(parse), median(root));
    // Leaves and pair hashes: each level of n hashes gives ceil(n / 2).
    let mut pairs = 0;
    let mut n = block.txs.len();
    while n > 1 {
        n = n.div_ceil(2);
        pairs += n;
    }
    println!(
        "block 413,567: {} bytes, {} transactions; hash {}",
        raw_block.len(),
        block.txs.len(),
        block.header.hash()
    );
    println!(
        "  parse (every txid hashed): {:.3} ms = {:.1} MB/s",
        parse * 1e3,
        raw_block.len() as f64 / parse / 1e6
    );
    println!(
        "  Merkle root {} from the txids: {:.3} ms ({pairs} pair hashes, {:.0} hashes/s = {:.2} of the limit for 64-byte double hashes)",
        block.header.merkle_root,
        root * 1e3,
        pairs as f64 / root,
        // A 64-byte input pads to two blocks, its digest to one: three compressions, as a header.
        pairs as f64 / root / limit
    );
    println!("  parse and root: {:.3} ms", (parse + root) * 1e3);
}
