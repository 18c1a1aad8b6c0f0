#!/usr/bin/env bash
# End to end, as a user sees it: `checker history --model causal` (release build) on the
# 100,000-operation history of `cargo bench -p properties --bench causal` (a simulated causal
# store: 4 replicas, 32 sessions, 1,000 keys; no anomaly), written as jsonl. Reading and
# parsing the file are included in the time.
#
#   bash bench/causal.sh            (environment: LEVELS="ccv" RUNS=3)
#
# Prints, per level, the wall time of the whole process (best of RUNS), its peak RSS (from
# /usr/bin/time when present) and the last run's summary line (its time: parsing and checking).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-3}
LEVELS=${LEVELS:-ccv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo bench -q -p properties --bench causal -- --write-jsonl "$work" >/dev/null
cargo build -q --release -p checker
file="$work/causal-100000.jsonl"
checker=target/release/checker
echo "$(basename "$file"): $(wc -l <"$file") transactions, $(du -k "$file" | cut -f1) KiB"

for level in $LEVELS; do
  best=""
  for _ in $(seq "$RUNS"); do
    start=$(date +%s%N)
    if [ -x /usr/bin/time ]; then
      /usr/bin/time -f "%M" -o "$work/rss" "$checker" history --model causal --level "$level" "$file" >"$work/out"
    else
      "$checker" history --model causal --level "$level" "$file" >"$work/out"
      echo "?" >"$work/rss"
    fi
    ms=$((($(date +%s%N) - start) / 1000000))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  rss=$(tail -1 "$work/rss")
  [ "$rss" != "?" ] && rss="$((rss / 1024)) MiB"
  printf '%-4s %5d ms wall (best of %d), peak RSS %s\n     %s\n' "$level" "$best" "$RUNS" "$rss" \
    "$(head -1 "$work/out" | sed "s|$work/||")"
done
