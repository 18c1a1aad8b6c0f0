#!/usr/bin/env bash
# kazoo's own lock tests (kazoo/tests/test_lock.py from its wheel, 31 tests) against a 3-server
# `cluster zk` built by `cargo test`: a stock ZooKeeper client's recipes on our ensemble.
# Makes kazoo's virtualenv (bench/kazoo/venv.sh) if it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=target/debug
[ -x "$BIN/cluster" ] && [ -x "$BIN/node" ] || cargo build -q -p impls --bin cluster --bin node
# The virtualenv first: installing it loads the machine, and the ensemble's 200 ms failure
# detector should not run under that load.
bash bench/kazoo/venv.sh >/dev/null
DIR=$(mktemp -d "${TMPDIR:-/tmp}/kazoo-lock.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Six ports below Linux's ephemeral range (32768 and up), where no outgoing connection can hold
# one of them.
BASE=$(( (PORT % 10000) + 20000 ))
"$BIN/cluster" zk --dir "$DIR/zk" --base-port "$BASE" >"$DIR/cluster.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 300); do
  "$BIN/cluster" status --dir "$DIR/zk" 2>/dev/null | grep -q "leader of epoch" && break
  sleep 0.1
done
bash bench/kazoo-tests.sh "127.0.0.1:$((BASE + 3)),127.0.0.1:$((BASE + 4)),127.0.0.1:$((BASE + 5))" test_lock.py
