#!/usr/bin/env bash
# A private-mining double spend (Nakamoto §11) against a merchant on a local cluster of three
# Bitcoin nodes (`cluster bitcoin`): real headers at a low target (nBits 0x1f07ffff, about 8,192
# hashes a block), gossip, the most-work chain.
#
#   bash bench/bitcoin-double-spend.sh
#
# Node 0 is the merchant's node, nodes 0 and 1 the honest miners, node 2 the attacker. The
# attack, run twice on fresh clusters, is the same both times: the attacker keeps
# `coin0>back` to itself (`withhold`), pays the merchant with `coin0>merchant`, mines two
# blocks in private (the first carries its double spend), and releases them once the merchant
# has accepted. Meanwhile the honest nodes mine until the merchant accepts, and at least the
# block that carries the payment.
#   - z = 0: the merchant accepts the payment from its memory pool; the private chain (two
#     blocks) has more work than the honest one (one block, with the payment): every node
#     reorganises onto it, and the payment is conflicted: the merchant was paid with a coin
#     that is now the attacker's again.
#   - z = 2: the merchant waits for two blocks; the private chain has no more work than the
#     honest one, so every honest node keeps the chain it saw first, and the payment stands.
#     (With a third private block, found before the release, the attack would succeed: z
#     confirmations resist an attacker who cannot out-mine z blocks, §11.)
# Who mines, and how many blocks, is the script's choice, so that the outcome does not depend
# on luck; the hashing, the gossip and the fork choice are the nodes'.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q -p impls --bin node --bin cluster --bin client
BIN="${CARGO_TARGET_DIR:-target}/release"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bitcoin-demo.XXXXXX")
PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=""; }
trap 'stop; rm -rf "$WORK"' EXIT

say() { printf '%s\n' "$*"; }
run() { # run NAME ARGS...: a client operation, printed with its answer
  local out
  out=$("$BIN/client" bitcoin --cluster "$WORK/cluster/cluster.toml" "$@")
  printf '  %-36s -> %s\n' "$*" "$out"
}
ask() { "$BIN/client" bitcoin --cluster "$WORK/cluster/cluster.toml" "$@"; }
field() { # field NAME LINE: the word after NAME
  awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$2"
}

attack() {
  local z=$1
  stop
  rm -rf "$WORK/cluster"
  "$BIN/cluster" bitcoin --nodes 3 --dir "$WORK/cluster" >"$WORK/cluster.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do [ -f "$WORK/cluster/cluster.toml" ] && break; sleep 0.1; done
  for _ in $(seq 100); do ask tip 2 >/dev/null 2>&1 && break; sleep 0.1; done
  say ""
  say "=== the merchant accepts the payment with z = $z confirmations ==="
  say "the attacker keeps its double spend to itself, then pays the merchant:"
  run withhold 2
  run send 2 'coin0>back'
  run send 0 'coin0>merchant'
  say "the attacker mines two blocks in private:"
  run mine 2 blocks 2
  run tip 2
  run tip 0
  local accepted=""
  while :; do
    local conf
    conf=$(ask confirmations 0 'coin0>merchant')
    local depth=${conf%% *}
    say "  merchant: coin0>merchant has $conf confirmations"
    if [ -z "$accepted" ] && [ "$depth" -ge "$z" ]; then
      accepted=yes
      say "  merchant: accepted with $depth confirmations; ships the goods"
    fi
    if [ -n "$accepted" ] && [ "$depth" -ge 1 ]; then break; fi
    say "the honest node 0 mines a block:"
    run mine 0 blocks 1
  done
  local before
  before=$(ask tip 0)
  local known0
  known0=$(field blocks "$before")
  say "the attacker releases its private chain:"
  run release 2
  for _ in $(seq 100); do
    [ "$(field blocks "$(ask tip 0)")" -ge $((known0 + 2)) ] && break
    sleep 0.05
  done
  sleep 0.2
  run tip 0
  run tip 1
  run tip 2
  local after
  after=$(ask confirmations 0 'coin0>merchant')
  say "  merchant: coin0>merchant now has: $after"
  say "  merchant: coin0>back (the double spend) has: $(ask confirmations 0 'coin0>back')"
  say "  node 0: $(grep -o 'reorgs [0-9]* deepest [0-9]*' <<<"$(ask tip 0)")"
  if [ "$after" = conflicted ]; then
    say "RESULT z=$z: double spend SUCCEEDED; the reorganisation undid the payment"
  else
    say "RESULT z=$z: double spend FAILED; the payment stands"
  fi
}

attack 0
attack 2
