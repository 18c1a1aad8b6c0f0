#!/usr/bin/env bash
# Read throughput of chain replication (reads at the tail) against CRAQ (reads at every node),
# for chains of 1 to 4 nodes, read-only and with writes mixed in, measured in one run.
#
#   bash bench/craq.sh [SECONDS_PER_RUN] [CAPACITY]        (defaults: 5 s, 2000 messages/s)
#
# Every node of both systems is given the same service capacity (`cluster --capacity`: the most
# messages it handles a second), so that nodes sharing this machine's cores behave like machines
# of their own: what CRAQ's paper measured is how reads scale with the number of machines. The
# load generator is `kvbench` (16 reading clients, one read in flight each, over 100 keys), with
# `--write-rate W` adding clients that write W times a second in all (one per 50 writes a
# second). Prints one table: the ratio of CRAQ's reads to CR's, and the share of CRAQ's reads that
# found their key dirty and cost a version query to the tail (the nodes count both).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-5}
CAP=${2:-2000}
cargo build --release -q -p impls --bin node --bin cluster --bin kvbench
BIN=target/release

WORK=$(mktemp -d)
PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=""; }
trap 'stop; rm -rf "$WORK"' EXIT

# run PROTO NODES WRITE_RATE: the reads a second (and the writes a second achieved).
run() {
  local proto=$1 nodes=$2 rate=$3 dir="$WORK/$1-$2-$3"
  # The cluster file's first node is the master; the chain is the other NODES.
  "$BIN/cluster" "$proto" --nodes $((nodes + 1)) --capacity "$CAP" --dir "$dir" >"$dir.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do [ -f "$dir/cluster.toml" ] && break; sleep 0.1; done
  sleep 1
  "$BIN/kvbench" "$proto" --cluster "$dir/cluster.toml" --op get --clients 16 --keys 100 \
    --seconds "$SECS" --write-rate "$rate"
  stop
}

echo "$SECS s per run, capacity $CAP messages/s per node, 16 reading clients, $(nproc) cores"
printf '%-6s %6s | %12s %12s | %9s | %15s | %s\n' nodes writes/s "CR reads/s" "CRAQ reads/s" "CRAQ/CR" "version queries" "writes/s done (CR, CRAQ)"
for rate in 0 100 250; do
  for nodes in 1 2 3 4; do
    if [ "$rate" -gt 0 ] && [ "$nodes" -ne 3 ]; then continue; fi
    cr=$(run chain "$nodes" "$rate")
    craq=$(run craq "$nodes" "$rate")
    python3 - "$nodes" "$rate" "$cr" "$craq" <<'PY'
import json, sys
nodes, rate, a, b = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
counts = b.get("node_counts", {})
share = counts.get("version queries", 0) / max(counts.get("reads", 0), 1)
print(f"{nodes:<6} {rate:>6} | {a['ops_per_s']:>12.0f} {b['ops_per_s']:>12.0f} | "
      f"{b['ops_per_s'] / a['ops_per_s']:>8.2f}x | {100 * share:>14.2f}% | "
      f"{a['background_writes_per_s']:.0f}, {b['background_writes_per_s']:.0f}")
PY
  done
done
