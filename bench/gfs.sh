#!/usr/bin/env bash
# GFS record-append throughput with 1, 4 and 16 concurrent clients, 3 replicas, on loopback,
# against the physical limit measured in the same run on the same file system.
#
#   bash bench/gfs.sh [SECONDS_PER_RUN] [RECORD_BYTES]        (defaults: 10 s, 65536)
#
# A cluster of a master and three chunkservers (`cluster gfs --nodes 4`, 64 MB chunks) runs on
# this machine, so all three replicas write to this one disk: every byte a client appends is
# written three times. The limit is the disk's sequential write throughput divided by 3. Two
# measurements of the disk, with `dd` in the cluster's directory:
#   - streaming: 1 GiB in 1 MiB writes, one fdatasync at the end (the disk's bandwidth);
#   - synced: RECORD_BYTES writes, each with O_DSYNC (every write durable before the next,
#     the policy of a chunkserver that answered each append alone).
# A chunkserver makes a step's writes durable before it answers (data, then checksums); writes
# that arrive together share one sync. Prints MB/s of acknowledged appends and their ratio to
# each limit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-10}
BYTES=${2:-65536}
cargo build --release -q -p impls --bin node --bin cluster --bin gfs
BIN=target/release

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gfs-bench.XXXXXX")
PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=""; }
trap 'stop; rm -rf "$WORK"' EXIT

# dd's MB/s (decimal megabytes) from its last line.
dd_rate() {
  dd "$@" 2>&1 | tail -1 | python3 -c '
import re, sys
line = sys.stdin.read()
m = re.search(r"([0-9.]+) s, ([0-9.]+) ([kMG]?B)/s", line)
secs, rate, unit = float(m.group(1)), float(m.group(2)), m.group(3)
print(rate * {"kB": 1e-3, "MB": 1, "GB": 1e3, "B": 1e-6}[unit])'
}
stream=$(dd_rate if=/dev/zero of="$WORK/dd" bs=1M count=1024 conv=fdatasync)
rm -f "$WORK/dd"
synced=$(dd_rate if=/dev/zero of="$WORK/dd" bs="$BYTES" count=$((256 * 1024 * 1024 / BYTES)) oflag=dsync)
rm -f "$WORK/dd"

"$BIN/cluster" gfs --nodes 4 --dir "$WORK/cluster" >"$WORK/cluster.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -f "$WORK/cluster/cluster.toml" ] && break; sleep 0.1; done
sleep 1

echo "$(nproc) cores; disk: ${stream} MB/s streaming, ${synced} MB/s with a sync per ${BYTES}-byte write"
echo "3 replicas on this one disk: limits $(python3 -c "print(f'{$stream/3:.1f}')") and $(python3 -c "print(f'{$synced/3:.1f}')") MB/s"
printf '%-8s %10s %8s %12s | %14s %14s\n' clients appended failed "MB/s" "/ stream limit" "/ synced limit"
for clients in 1 4 16; do
  line=$("$BIN/gfs" --cluster "$WORK/cluster/cluster.toml" bench --path "/bench-$clients" \
    --clients "$clients" --seconds "$SECS" --record-bytes "$BYTES")
  python3 - "$line" "$stream" "$synced" <<'PY'
import sys
f = sys.argv[1].split()
kv = dict(zip(f[0::2], f[1::2]))
mbs = float(kv["MB/s"])
stream, synced = float(sys.argv[2]) / 3, float(sys.argv[3]) / 3
print(f"{kv['clients']:<8} {kv['appended']:>10} {kv['failed']:>8} {mbs:>12.1f} | "
      f"{mbs / stream:>13.2f}x {mbs / synced:>13.2f}x")
PY
done
"$BIN/gfs" --cluster "$WORK/cluster/cluster.toml" fsck /bench-16 | head -3
