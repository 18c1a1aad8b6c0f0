#!/usr/bin/env bash
# Front-running a BNS registration (Blockstack §3) on a local cluster (`cluster blockstack`):
# Bitcoin nodes 0, 1, 2 mine real blocks at a low target; BNS nodes 3 and 4 tail Bitcoin nodes
# 0 and 1 and replay the name operations the blocks' transactions carry (virtualchain, §3.2).
#
#   bash bench/blockstack-front-run.sh
#
# The same race twice, on fresh clusters: Alice preorders `alice.id` (with BNS node 3's
# consensus hash) and node 0 mines it; Alice sends her NAME_REGISTRATION (fee 1); Mallory
# reads it in Bitcoin node 1's memory pool and sends her own registration of the name and a
# NAME_TRANSFER to herself, each with fee 2; node 0 mines one block, which orders them by fee:
# Mallory's first.
#   - the protocol as BNS has it: Mallory has no preorder, her registration is rejected, and
#     every BNS node says Alice owns the name;
#   - `--bug one-step-register` (NAME_REGISTRATION needs no preorder, as in a naive one-step
#     scheme): Mallory's registration, first in the block, takes the name.
# Who mines, and how many blocks, is the script's choice: the outcome does not depend on luck.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q -p impls --bin node --bin cluster --bin client
BIN="${CARGO_TARGET_DIR:-target}/release"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/blockstack-demo.XXXXXX")
PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=""; }
trap 'stop; rm -rf "$WORK"' EXIT

say() { printf '%s\n' "$*"; }
ask() { "$BIN/client" blockstack --cluster "$WORK/cluster/cluster.toml" "$@"; }
run() { # a client operation, printed with its answer
  local out
  out=$(ask "$@")
  printf '  %-44s -> %s\n' "$*" "${out//$'\n'/$'\n'                                                 }"
}
height() { # height K: BNS node K's height
  ask whois "$1" alice.id | sed 's/.*height \([0-9]*\) .*/\1/'
}
wait_height() { # wait_height H: both BNS nodes at height H
  for _ in $(seq 200); do
    [ "$(height 3)" = "$1" ] && [ "$(height 4)" = "$1" ] && return
    sleep 0.02
  done
  say "BNS nodes never reached height $1" >&2
  exit 1
}

race() {
  local bug=$1
  stop
  rm -rf "$WORK/cluster"
  local flags=()
  [ -n "$bug" ] && flags=(--bug "$bug")
  "$BIN/cluster" blockstack --nodes 5 --dir "$WORK/cluster" "${flags[@]}" >"$WORK/cluster.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do [ -f "$WORK/cluster/cluster.toml" ] && break; sleep 0.1; done
  for _ in $(seq 100); do ask whois 4 alice.id >/dev/null 2>&1 && break; sleep 0.1; done
  say ""
  say "=== ${bug:-the protocol as BNS has it (preorder, then register)} ==="
  local ch
  ch=$(ask whois 3 alice.id | sed 's/.*consensus //')
  say "Alice preorders alice.id with BNS node 3's consensus hash, and node 0 mines it:"
  run preorder 0 alice alice.id 1 "$ch"
  run mine 0 blocks 1 2048
  wait_height 1
  say "Alice registers:"
  run register 0 alice alice.id 1
  say "Mallory watches Bitcoin node 1's memory pool:"
  for _ in $(seq 100); do ask mempool 1 | grep -q NAME_REGISTRATION && break; sleep 0.02; done
  run mempool 1
  say "Mallory outbids Alice's registration, and transfers the name to herself:"
  run register 1 mallory alice.id 2
  run transfer 1 mallory alice.id mallory 2
  for _ in $(seq 100); do [ "$(ask mempool 0 | wc -l)" -ge 3 ] && break; sleep 0.02; done
  say "node 0's memory pool, in the miner's order (by fee):"
  run mempool 0
  run mine 0 blocks 1 2048
  wait_height 2
  run whois 3 alice.id
  run whois 4 alice.id
  run node 4
  local owner
  owner=$(ask whois 3 alice.id | sed -n 's/.*owner \([a-z]*\).*/\1/p')
  if [ "$owner" = mallory ]; then
    say "RESULT ${bug:-correct}: front-run SUCCEEDED; Mallory owns alice.id"
  else
    say "RESULT ${bug:-correct}: front-run FAILED; ${owner:-nobody} owns alice.id"
  fi
}

race ""
race one-step-register
