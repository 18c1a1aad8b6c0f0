#!/usr/bin/env bash
# Put and get throughput and p50/p99 latency of our 3-node Raft KV cluster and of a 3-member etcd
# cluster, both on 127.0.0.1 with fsync on, in the same run, with the same load generator
# (`kvbench`: N client threads, one operation in flight each). Prints a table and the ratios:
# first both in plaintext (`cluster raft --insecure`; etcd over http), then both with mutual TLS
# (ours by default; etcd with client and peer certificates, `--client-cert-auth` and
# `--peer-client-cert-auth`), and what TLS costs each (TLS / plaintext). Gets are ReadIndex in
# the plain and tls rows; the lease rows are ours in plaintext with `--lease-reads` (thesis
# §6.4.1) against etcd's plaintext gets.
#
#   bash bench/raft-etcd.sh [SECONDS_PER_RUN]      (default 10)
#   BASELINE=DIR bash bench/raft-etcd.sh [SECS]    also runs the `cluster`, `node` and `kvbench`
#                                                  binaries in DIR (an earlier build, e.g. another
#                                                  checkout's target/release) and prints their
#                                                  figures and ours / baseline: a regression check
#                                                  measured in the same run
#
# Installs Debian's etcd-server and etcd-client if etcd is missing. etcd is reached through its
# JSON gateway (HTTP/1.1 keep-alive), at its leader; ours through the Rust client, at its leader.
# Both systems fsync every write before acknowledging it (etcd: its WAL; ours: the Raft storage,
# one fsync per batch of steps).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-10}

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  echo "installing etcd (Debian packages etcd-server, etcd-client)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y etcd-server etcd-client >/dev/null
  # The package starts a system-wide member; this benchmark runs its own.
  $SUDO systemctl stop etcd 2>/dev/null || true
fi
command -v openssl >/dev/null || { echo "raft-etcd.sh: needs openssl (etcd's certificates)" >&2; exit 2; }
cargo build --release -q -p impls --bin node --bin cluster --bin kvbench
BIN=${CARGO_TARGET_DIR:-target}/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# etcd's certificates: an authority and one certificate naming 127.0.0.1, for its members (as
# servers and as peers' clients) and for kvbench and etcdctl (as clients).
T="$WORK/etcd-tls"
mkdir -p "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=raft-etcd bench CA" -keyout "$T/ca-key.pem" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=etcd" \
  -keyout "$T/etcd-key.pem" -out "$T/etcd.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\nbasicConstraints=CA:FALSE\n' >"$T/ext"
openssl x509 -req -in "$T/etcd.csr" -CA "$T/ca.pem" -CAkey "$T/ca-key.pem" -CAcreateserial \
  -days 2 -extfile "$T/ext" -out "$T/etcd.pem" 2>/dev/null
CERTS=(--cacert "$T/ca.pem" --cert "$T/etcd.pem" --key "$T/etcd-key.pem")

# etcd: three members, default settings (fsync on); in plaintext (client ports 23790-2) and
# with mutual TLS between members and to clients (24790-2).
start_etcd() { # NAME SCHEME CLIENT_PORT PEER_PORT [TLS FLAGS...]
  local name=$1 scheme=$2 cport=$3 pport=$4
  shift 4
  local initial=""
  for i in 0 1 2; do initial+="$name$i=$scheme://127.0.0.1:$((pport + i)),"; done
  for i in 0 1 2; do
    etcd --name "$name$i" --data-dir "$WORK/$name-$i" \
      --listen-client-urls "$scheme://127.0.0.1:$((cport + i))" \
      --advertise-client-urls "$scheme://127.0.0.1:$((cport + i))" \
      --listen-peer-urls "$scheme://127.0.0.1:$((pport + i))" \
      --initial-advertise-peer-urls "$scheme://127.0.0.1:$((pport + i))" \
      --initial-cluster "${initial%,}" --initial-cluster-state new --initial-cluster-token "$name" \
      "$@" --log-level error >"$WORK/$name-$i.log" 2>&1 &
    PIDS+=($!)
  done
}
etcd_leader() { # SCHEME CLIENT_PORT [ETCDCTL TLS FLAGS...]
  local scheme=$1 cport=$2
  shift 2
  local endpoints="$scheme://127.0.0.1:$cport,$scheme://127.0.0.1:$((cport + 1)),$scheme://127.0.0.1:$((cport + 2))"
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "$@" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "$@" endpoint status -w json | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["Status"]["leader"] == m["Status"]["header"]["member_id"]:
        print(m["Endpoint"].split("://")[1])'
}
start_etcd e http 23790 23800
start_etcd t https 24790 24800 \
  --cert-file "$T/etcd.pem" --key-file "$T/etcd-key.pem" --client-cert-auth --trusted-ca-file "$T/ca.pem" \
  --peer-cert-file "$T/etcd.pem" --peer-key-file "$T/etcd-key.pem" --peer-client-cert-auth \
  --peer-trusted-ca-file "$T/ca.pem"
ETCD_LEADER=$(etcd_leader http 23790)
ETCD_TLS_LEADER=$(etcd_leader https 24790 "${CERTS[@]}")

# Ours: three node processes in plaintext, three with mutual TLS (and the baseline's, if given).
start_cluster() { # BIN_DIR NAME [FLAGS...]
  local bin=$1 name=$2
  shift 2
  "$bin/cluster" raft --nodes 3 --dir "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -f "$WORK/$name/cluster.toml" ] && break; sleep 0.1; done
  sleep 1
}
start_cluster "$BIN" raft --insecure
start_cluster "$BIN" raft-tls
# Gets under the leader's lease (thesis §6.4.1) instead of ReadIndex, in plaintext: the `lease`
# rows, against the same etcd (whose linearizable reads are ReadIndex).
start_cluster "$BIN" raft-lease --insecure --lease-reads
if [ -n "${BASELINE:-}" ]; then
  start_cluster "$BASELINE" base
fi

echo "etcd $(etcd --version | head -1 | awk '{print $3}') leaders $ETCD_LEADER (http), $ETCD_TLS_LEADER (https); ours: $BIN/cluster raft --nodes 3 [--insecure]; $SECS s per run, $(nproc) cores"
printf '%-4s %7s %-5s | %10s %8s %8s | %10s %8s %8s | %9s\n' op clients wire "ours op/s" "p50 ms" "p99 ms" "etcd op/s" "p50 ms" "p99 ms" "ours/etcd"
for op in put get; do
  for clients in 1 16; do
    ours=$("$BIN/kvbench" raft --cluster "$WORK/raft/cluster.toml" --op $op --clients $clients --seconds "$SECS")
    theirs=$("$BIN/kvbench" etcd --endpoint "$ETCD_LEADER" --op $op --clients $clients --seconds "$SECS")
    ours_tls=$("$BIN/kvbench" raft --cluster "$WORK/raft-tls/cluster.toml" --op $op --clients $clients --seconds "$SECS")
    theirs_tls=$("$BIN/kvbench" etcd --endpoint "$ETCD_TLS_LEADER" "${CERTS[@]}" --op $op --clients $clients --seconds "$SECS")
    base='null'
    if [ -n "${BASELINE:-}" ]; then
      base=$("$BASELINE/kvbench" raft --cluster "$WORK/base/cluster.toml" --op $op --clients $clients --seconds "$SECS")
    fi
    lease='null'
    if [ "$op" = get ]; then
      lease=$("$BIN/kvbench" raft --cluster "$WORK/raft-lease/cluster.toml" --op $op --clients $clients --seconds "$SECS")
    fi
    python3 - "$op" "$clients" "$ours" "$theirs" "$ours_tls" "$theirs_tls" "$base" "$lease" <<'PY'
import json, sys
op, clients = sys.argv[1], sys.argv[2]
a, b, at, bt, c, l = (json.loads(x) for x in sys.argv[3:9])
def row(wire, a, b):
    return (f"{op:<4} {clients:>7} {wire:<5} | {a['ops_per_s']:>10.0f} {a['p50_ms']:>8.2f} {a['p99_ms']:>8.2f} | "
            f"{b['ops_per_s']:>10.0f} {b['p50_ms']:>8.2f} {b['p99_ms']:>8.2f} | {a['ops_per_s'] / b['ops_per_s']:>8.2f}x")
line = row("plain", a, b)
if c:
    line += f" | baseline {c['ops_per_s']:>7.0f} op/s, ours/baseline {a['ops_per_s'] / c['ops_per_s']:.2f}x"
print(line)
print(row("tls", at, bt) + f" | TLS/plain: ours {at['ops_per_s'] / a['ops_per_s']:.2f}x, etcd {bt['ops_per_s'] / b['ops_per_s']:.2f}x")
if l:
    print(row("lease", l, b) + f" | lease/ReadIndex: {l['ops_per_s'] / a['ops_per_s']:.2f}x")
PY
  done
done
