#!/usr/bin/env bash
# The cost of deciding liveness under weak fairness, against the safety-only run of the same
# model, with the same binary, alternately (so that both see the same machine load):
#   safety   target/release/checker MODEL --skip-liveness --json   (always and sometimes only)
#   liveness target/release/checker MODEL --json                   (the same, plus eventually and
#                                                                   leads-to, weak fairness)
# It prints, per run, wall seconds and peak memory (maximum resident set size, from
# /usr/bin/time), the liveness graph's states, edges and bytes and the seconds spent deciding on
# it, then the medians and the ratio of the medians.
#
# Not run in CI.  Needs /usr/bin/time (Debian's `time`) and python3.
#
# Environment:
#   MODEL=raft     the registered model (its default configuration)
#   RUNS=3         runs of each
#   ARGS=""        extra flags for both (e.g. "--threads 1")
#
# Example: MODEL=twopc RUNS=5 bash bench/liveness.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
MODEL="${MODEL:-raft}"
RUNS="${RUNS:-3}"
ARGS="${ARGS:-}"

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
(cd "$root" && cargo build --release -q -p checker)
bin="$root/target/release/checker"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for i in $(seq 1 "$RUNS"); do
    for kind in safety liveness; do
        flags=""
        [ "$kind" = safety ] && flags="--skip-liveness"
        # Exit 3 (liveness left undecided) is expected of the safety-only run.
        /usr/bin/time -f "%e %M" -o "$work/$kind.$i.time" \
            "$bin" "$MODEL" $flags $ARGS --json --quiet > "$work/$kind.$i.json" || true
    done
done

python3 - "$work" "$RUNS" "$MODEL" <<'EOF'
import json, statistics, sys
work, runs, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {"safety": [], "liveness": []}
print(f"{model}: {runs} runs each, alternately")
print(f"{'run':<10} {'wall s':>8} {'peak MB':>8} {'states':>10} {'graph states':>13} {'edges':>11} {'graph MB':>9} {'deciding s':>11}")
for i in range(1, runs + 1):
    for kind in ("safety", "liveness"):
        wall, kb = open(f"{work}/{kind}.{i}.time").read().split()[-2:]
        out = json.load(open(f"{work}/{kind}.{i}.json"))
        live = out.get("liveness") or {}
        rows[kind].append((float(wall), int(kb) / 1024))
        print(f"{kind:<10} {float(wall):>8.2f} {int(kb)/1024:>8.0f} {out['unique_states']:>10} "
              f"{live.get('states', '-'):>13} {live.get('edges', '-'):>11} "
              f"{(live['bytes'] / 2**20) if live else 0:>9.1f} {live.get('elapsed_s', 0):>11.2f}")
s = statistics.median(w for w, _ in rows["safety"])
l = statistics.median(w for w, _ in rows["liveness"])
sm = statistics.median(m for _, m in rows["safety"])
lm = statistics.median(m for _, m in rows["liveness"])
print(f"median wall: safety {s:.2f} s, with liveness {l:.2f} s: x{l / s:.2f}")
print(f"median peak memory: safety {sm:.0f} MB, with liveness {lm:.0f} MB: x{lm / sm:.2f}")
EOF
