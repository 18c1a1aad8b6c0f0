#!/usr/bin/env bash
# Memcache at Facebook on real memcached: database reads a second under a
# thundering herd (one hot key, readers, a write storm) with memcached's leases
# and without (`--bug no-leases`), two clusters side by side in alternating
# rounds; then gets a second of the web servers' lease get against a plain
# text-protocol get, and memcaslap if libmemcached-tools is installed.
#
# Not run in CI. Needs memcached 1.6 (Debian's memcached).
#
# Environment:
#   MEMCACHE_BENCH_SECONDS=4   seconds a round
#   MEMCACHE_BENCH_ROUNDS=3    rounds
#   MEMCACHE_BENCH_READERS=8   web servers reading the hot key
#   MEMCACHE_BENCH_WRITE_MS=10 a write every this many milliseconds
#   MEMCACHE_BENCH_CONNS=4     connections for the get throughput
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
command -v memcached >/dev/null || { echo "memcache bench: needs memcached (apt-get install memcached)" >&2; exit 2; }
cargo bench -q -p impls --bench memcache
