#!/usr/bin/env bash
# A long crash soak for the MapReduce runtime (the CI test runs one short crash job): runs word
# count and the indexer over the classic lab's books ROUNDS times with workers that exit or stall at
# random (`mr run --crash`), and checks every output against the sequential reference.
# Not run in CI. Environment: ROUNDS=20, WORKERS=3, TIMEOUT=1 (seconds before a task is re-assigned).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
books=("$root"/../shared/data/gutenberg/pg-*.txt)
ROUNDS="${ROUNDS:-20}"
WORKERS="${WORKERS:-3}"
TIMEOUT="${TIMEOUT:-1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$root" && cargo build --release -p impls) >&2
mr="$root/target/release/mr"

for app in wc indexer; do
  "$mr" sequential --app "$app" --out "$work/seq-$app" --inputs "${books[@]}"
  sort "$work/seq-$app" > "$work/seq-$app.sorted"
done

failed=0
for round in $(seq "$ROUNDS"); do
  for app in wc indexer; do
    rm -rf "$work/out"
    start=$(date +%s.%N)
    if ! "$mr" run --app "$app" --crash --task-timeout "$TIMEOUT" --max-delay-ms 3000 \
        --workers "$WORKERS" --reduces 5 --out "$work/out" --inputs "${books[@]}" 2>/dev/null; then
      echo "round $round $app: mr run failed"; failed=$((failed + 1)); continue
    fi
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    if cmp -s <(sort "$work"/out/mr-out-*) "$work/seq-$app.sorted"; then
      printf 'round %d %s: ok (%.1f s)\n' "$round" "$app" "$secs"
    else
      echo "round $round $app: OUTPUT DIFFERS"; failed=$((failed + 1))
    fi
  done
done
echo "$((ROUNDS * 2 - failed)) passed, $failed failed"
[ "$failed" = 0 ]
