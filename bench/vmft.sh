#!/usr/bin/env bash
# VM-FT over TCP: inputs a second through the replicated machine (a primary
# and a backup on loopback, every output held until the backup acknowledges
# its log entry: the Output Rule) against the same machine alone (a cluster
# file of one node: live from the start, no logging), side by side in
# alternating rounds of one run. Prints each round, the medians and their
# ratio.
#
# The client sends one input at a time and waits for its output, so this
# measures the latency the Output Rule adds to each output (one round trip
# on the logging channel), not the primary's execution, which for this
# machine (an accumulator) costs nothing.
#
# Not run in CI.
#
# Environment:
#   VMFT_BENCH_INPUTS=20000  inputs a round
#   VMFT_BENCH_ROUNDS=5      rounds (each round runs both)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
cargo bench -q -p impls --bench vmft
