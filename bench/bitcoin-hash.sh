#!/usr/bin/env bash
# Bitcoin header hashing against the physical limit, and the Merkle root of mainnet block
# 413,567, in one run (`models/benches/bitcoin_hash.rs`):
#
#   bash bench/bitcoin-hash.sh
#
# - The limit: raw SHA-256 throughput measured in the same run (one hash over a 64 MiB buffer,
#   and 64 hashes of 1 MiB in cache; the faster), divided by the 3 compressions (192 bytes) a
#   double SHA-256 of an 80-byte header costs; and by 2 for a miner that keeps the midstate of
#   the header's first 64 bytes.
# - Header hashes/s of the consensus code (`Header::hash`) on successive nonces, and of a node's
#   mining step (hash, then the proof-of-work check at the test chain's target).
# - Block 413,567 (../shared/data/bitcoin/block413567.raw, or $BITCOIN_DATA/block413567.raw):
#   parse time (every txid hashed) and the Merkle root from the txids, medians of 21 runs.
#
# Not run in CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
cargo bench -q -p models --bench bitcoin_hash
