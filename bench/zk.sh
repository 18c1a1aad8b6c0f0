#!/usr/bin/env bash
# Our ZooKeeper ensemble (`cluster zk`, release build) and a real ZooKeeper 3.8 ensemble
# (Debian's package, bench/zk-real.sh), side by side in one run on loopback, measured by the
# same stock client and code (bench/zk-load.py, kazoo): synchronous sets from one client,
# asynchronous sets with 64 outstanding, then `kill -9` of the leader and the time until a
# survivor leads and until a write succeeds again through a client on a surviving follower.
# Both ensembles fsync their logs before acknowledging (ZooKeeper: forceSync=yes).
#
#   bash bench/zk.sh [SECONDS]          (default 10 seconds per load phase)
#
# Prints each side's table, then the ratios (ours / ZooKeeper; for failover, ZooKeeper / ours,
# so that above 1 is better for us).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-10}
cargo build --release -q -p impls --bin cluster --bin node
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zk-bench.XXXXXX")
OURS_PID=
cleanup() {
  [ -n "$OURS_PID" ] && kill "$OURS_PID" 2>/dev/null && wait "$OURS_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== ZooKeeper 3.8 (bench/zk-real.sh)"
bash bench/zk-real.sh python3 bench/zk-load.py --seconds "$SECS" --json "$WORK/real.json"

echo
echo "== ours (cluster zk)"
BASE=${ZK_BENCH_PORT:-25000}
target/release/cluster zk --no-restart --dir "$WORK/ours" --base-port "$BASE" >"$WORK/ours.log" 2>&1 &
OURS_PID=$!
HOSTS="127.0.0.1:$((BASE + 3)),127.0.0.1:$((BASE + 4)),127.0.0.1:$((BASE + 5))"
for _ in $(seq 100); do
  target/release/cluster status --dir "$WORK/ours" 2>/dev/null | grep -q "leader of epoch" && break
  sleep 0.1
done
python3 bench/zk-load.py --hosts "$HOSTS" --seconds "$SECS" --json "$WORK/ours.json"

echo
python3 - "$WORK/real.json" "$WORK/ours.json" <<'PY'
import json, sys
real, ours = (json.load(open(p)) for p in sys.argv[1:3])
def row(name, key, better_low=False):
    r, o = real.get(key), ours.get(key)
    if r is None or o is None:
        print("%-28s %12s %12s %8s" % (name, r, o, "-"))
        return
    ratio = r / o if better_low else o / r
    fmt = "%12.3f" if better_low else "%12.0f"
    print(("%-28s " + fmt + " " + fmt + " %7.2fx") % (name, r, o, ratio))
print("%-28s %12s %12s %8s" % ("", "ZooKeeper", "ours", "ratio"))
row("sync sets/s", "sync_ops_per_sec")
row("async sets/s (window 64)", "async_ops_per_sec")
row("new leader after kill (s)", "leader_secs", True)
row("first write after kill (s)", "write_secs", True)
PY
