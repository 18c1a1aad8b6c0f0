#!/usr/bin/env bash
# Amazon Aurora over TCP: commits a second and bytes sent per commit for the
# log-shipping writer (one redo record to six segments, committed at a write
# quorum of four) against the mirrored baseline of Figure 2 (the whole 8 KiB
# page to six replicas, committed when all six have it), in alternating rounds
# of one run. Prints each round, then a table of medians.
#
# Not run in CI.
#
# Environment:
#   AURORA_BENCH_SECONDS=5   seconds of puts a round
#   AURORA_BENCH_CLIENTS=4   clients, one put in flight each
#   AURORA_BENCH_ROUNDS=3    rounds (each round runs both)
#   AURORA_BENCH_KEYS=100    keys the puts spread over
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
cargo bench -q -p impls --bench aurora
