#!/usr/bin/env bash
# Put and get throughput and p50/p99 latency of our 3-node Raft KV cluster and of a 3-member etcd
# cluster, both on 127.0.0.1 with fsync on, in the same run, with the same load generator
# (`kvbench`: N client threads, one operation in flight each). Prints a table and the ratios.
#
#   bash bench/raft-etcd.sh [SECONDS_PER_RUN]      (default 10)
#   BASELINE=DIR bash bench/raft-etcd.sh [SECS]    also runs the `cluster`, `node` and `kvbench`
#                                                  binaries in DIR (an earlier build, e.g. another
#                                                  checkout's target/release) and prints their
#                                                  figures and ours / baseline: a regression check
#                                                  measured in the same run
#
# Installs Debian's etcd-server and etcd-client if etcd is missing. etcd is reached through its
# JSON gateway (HTTP/1.1 keep-alive), at its leader; ours through the Rust client, at its leader.
# Both systems fsync every write before acknowledging it (etcd: its WAL; ours: the Raft storage,
# one fsync per batch of steps).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-10}

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  echo "installing etcd (Debian packages etcd-server, etcd-client)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y etcd-server etcd-client >/dev/null
  # The package starts a system-wide member; this benchmark runs its own.
  $SUDO systemctl stop etcd 2>/dev/null || true
fi
cargo build --release -q -p impls --bin node --bin cluster --bin kvbench
BIN=target/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# etcd: three members, default settings (fsync on).
INITIAL=""
for i in 0 1 2; do INITIAL+="e$i=http://127.0.0.1:$((23800 + i)),"; done
INITIAL=${INITIAL%,}
for i in 0 1 2; do
  etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:$((23790 + i))" \
    --advertise-client-urls "http://127.0.0.1:$((23790 + i))" \
    --listen-peer-urls "http://127.0.0.1:$((23800 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((23800 + i))" \
    --initial-cluster "$INITIAL" --initial-cluster-state new \
    --log-level error >"$WORK/etcd-$i.log" 2>&1 &
  PIDS+=($!)
done
ENDPOINTS="127.0.0.1:23790,127.0.0.1:23791,127.0.0.1:23792"
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
ETCD_LEADER=$(ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint status -w json | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["Status"]["leader"] == m["Status"]["header"]["member_id"]:
        print(m["Endpoint"].replace("http://", ""))')

# Ours: three node processes (and the baseline's, if given).
start_cluster() { # BIN_DIR NAME
  "$1/cluster" raft --nodes 3 --dir "$WORK/$2" >"$WORK/$2.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -f "$WORK/$2/cluster.toml" ] && break; sleep 0.1; done
  sleep 1
}
start_cluster "$BIN" raft
if [ -n "${BASELINE:-}" ]; then
  start_cluster "$BASELINE" base
fi

echo "etcd $(etcd --version | head -1 | awk '{print $3}') leader $ETCD_LEADER; ours: $BIN/cluster raft --nodes 3; $SECS s per run, $(nproc) cores"
printf '%-4s %7s | %10s %8s %8s | %10s %8s %8s | %s\n' op clients "ours op/s" "p50 ms" "p99 ms" "etcd op/s" "p50 ms" "p99 ms" "ours/etcd"
for op in put get; do
  for clients in 1 16; do
    ours=$("$BIN/kvbench" raft --cluster "$WORK/raft/cluster.toml" --op $op --clients $clients --seconds "$SECS")
    theirs=$("$BIN/kvbench" etcd --endpoint "$ETCD_LEADER" --op $op --clients $clients --seconds "$SECS")
    base='null'
    if [ -n "${BASELINE:-}" ]; then
      base=$("$BASELINE/kvbench" raft --cluster "$WORK/base/cluster.toml" --op $op --clients $clients --seconds "$SECS")
    fi
    python3 - "$op" "$clients" "$ours" "$theirs" "$base" <<'PY'
import json, sys
op, clients, a, b, c = sys.argv[1], sys.argv[2], *(json.loads(x) for x in sys.argv[3:6])
line = (f"{op:<4} {clients:>7} | {a['ops_per_s']:>10.0f} {a['p50_ms']:>8.2f} {a['p99_ms']:>8.2f} | "
        f"{b['ops_per_s']:>10.0f} {b['p50_ms']:>8.2f} {b['p99_ms']:>8.2f} | {a['ops_per_s'] / b['ops_per_s']:.2f}x")
if c:
    line += f" | baseline {c['ops_per_s']:>7.0f} op/s, ours/baseline {a['ops_per_s'] / c['ops_per_s']:.2f}x"
print(line)
PY
  done
done
