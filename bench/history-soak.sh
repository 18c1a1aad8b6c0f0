#!/usr/bin/env bash
# Linearizability at soak scale: the shared 240-second `jepsen raft` soak history (219,702
# operations, 45 indefinite) through `checker history --json` as a user runs it, then
# `cargo bench -p properties --bench soak`: the soak history and a 1,000,000-operation synthetic
# one, each also with one read changed, with time and peak memory.
#
#   bash bench/history-soak.sh [SOAK.jsonl.gz]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
soak=${1:-../shared/data/linearizability/soak/raft-kv-240s.jsonl.gz}
[ -r "$soak" ] || { echo "no soak history at $soak" >&2; exit 2; }
soak=$(realpath "$soak")  # cargo bench runs in the package directory

cargo build --release -q -p checker
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$soak" > "$tmp/soak.jsonl"

echo "checker history --model kv --json (parse and check, one process):"
./target/release/checker history --model kv --format jsonl --json "$tmp/soak.jsonl" \
  | grep -E '"(operations|verdict|elapsed_s|peak_rss_kib)"'
echo
cargo bench -q -p properties --bench soak -- "$soak"
