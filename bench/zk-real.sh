#!/usr/bin/env bash
# A real 3-server ZooKeeper 3.8 ensemble (Debian's `zookeeper` package) on 127.0.0.1, in a
# temporary directory, as the reference that stock clients are run against before our
# `cluster zk`. Every server fsyncs its log before acknowledging (forceSync=yes); the admin
# server is off and every four-letter word is allowed.
#
#   bash bench/zk-real.sh                 start, print the connect string, wait for Ctrl-C
#   bash bench/zk-real.sh CMD [ARGS...]   start, run CMD with the variables below set, stop;
#                                         exits with CMD's status
#   bash bench/zk-real.sh ctl stop|kill|start|pid N
#                                         from inside CMD: SIGTERM, SIGKILL or restart server
#                                         N (1-3, data kept), or print its process id
#
# CMD sees ZK_HOSTS (the connect string, client ports ZK_BASE_PORT+1..+3, default 22181-22183),
# ZK_DIR (configs, logs, and zkN/pid for each server), ZK_LOCAL_SESSIONS, and ZK_SERVER_CMD, a
# command template that stops and restarts a server, for bench/kazoo/conftest.py. Quorum ports are
# ZK_BASE_PORT+701.., election ports ZK_BASE_PORT+1701... ZK_KEEP=1 keeps ZK_DIR.
#
# The configuration follows kazoo's own test harness (kazoo/testing/harness.py), so that kazoo's
# tests meet the server they were written for: reconfigEnabled=true, localSessionsEnabled=false,
# read-only mode allowed, and the digest super user "super" with password "test".
# ZK_LOCAL_SESSIONS=true turns local sessions on, as kazoo's harness does for its read-only test.
#
# Example: bash bench/zk-real.sh bash -c 'bench/kazoo-tests.sh "$ZK_HOSTS"'
set -euo pipefail
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

BASE=${ZK_BASE_PORT:-22180}
LOCAL_SESSIONS=${ZK_LOCAL_SESSIONS:-false}
N=3
JARS=/usr/share/java
MAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain

die() { echo "zk-real: $*" >&2; exit 2; }

# A live process, not a zombie waiting for a parent that does not reap it.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# Starts server $1 from its run.sh in the background and records its pid.
launch() {
  local d="$ZK_DIR/zk$1"
  bash "$d/run.sh" </dev/null >>"$d/server.log" 2>&1 &
  echo "$!" >"$d/pid"
  # Not a job of this shell: a server killed on purpose (bench/zk-load.py) is no error here.
  disown "$!"
}

# Sends signal $2 to server $1 and waits until it has gone (SIGKILL after 10 s).
halt() {
  local pid
  pid=$(cat "$ZK_DIR/zk$1/pid" 2>/dev/null) || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

if [ "${1:-}" = ctl ]; then
  action=${2:-}; i=${3:-}
  [ -n "${ZK_DIR:-}" ] || die "ctl: ZK_DIR is not set (run ctl from a command given to zk-real.sh)"
  [ -f "$ZK_DIR/zk$i/run.sh" ] || die "ctl: no server '$i' in $ZK_DIR"
  case "$action" in
    stop) halt "$i" TERM ;;
    kill) halt "$i" KILL ;;
    pid) cat "$ZK_DIR/zk$i/pid" ;;
    start)
      pid=$(cat "$ZK_DIR/zk$i/pid" 2>/dev/null || true)
      if [ -z "$pid" ] || ! alive "$pid"; then
        launch "$i"
        # Back when its client port accepts connections (it may not have a quorum yet).
        for _ in $(seq 300); do
          (exec 3<>"/dev/tcp/127.0.0.1/$((BASE + i))") 2>/dev/null && break
          sleep 0.1
        done
      fi ;;
    *) die "ctl: unknown action '$action' (stop, kill, start, pid)" ;;
  esac
  exit 0
fi

if [ ! -f "$JARS/zookeeper.jar" ]; then
  echo "zk-real: installing Debian's zookeeper package" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y zookeeper >/dev/null \
    || die "apt-get install zookeeper failed"
fi
command -v java >/dev/null || die "no java on PATH"
# zookeeper.jar names its dependencies in its manifest's Class-Path; slf4j-simple writes the
# server log to stderr, which goes to ZK_DIR/zkN/server.log.
CP="$JARS/zookeeper.jar:$JARS/slf4j-simple.jar"
[ -f "$JARS/slf4j-simple.jar" ] || CP="$JARS/zookeeper.jar"
case "$LOCAL_SESSIONS" in true|false) ;; *) die "ZK_LOCAL_SESSIONS must be true or false" ;; esac

# Four-letter word over bash's /dev/tcp: fourlw PORT WORD.
fourlw() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf %s "$2" >&3 && cat <&3' _ "$1" "$2" \
    2>/dev/null || true
}

for i in $(seq "$N"); do
  for p in $((BASE + i)) $((BASE + 700 + i)) $((BASE + 1700 + i)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p is already in use (another ensemble? set ZK_BASE_PORT)"
    fi
  done
done

ZK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/zk-real.XXXXXX")
# The servers' current pids, restarted ones included.
pids() { cat "$ZK_DIR"/zk*/pid 2>/dev/null || true; }
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in $(pids); do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local up=0
    for p in $(pids); do alive "$p" && up=1; done
    [ "$up" -eq 0 ] && break
    sleep 0.1
  done
  for p in $(pids); do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${ZK_KEEP:-0}" = 1 ]; then echo "zk-real: kept $ZK_DIR" >&2; else rm -rf "$ZK_DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SERVERS=""
for i in $(seq "$N"); do
  SERVERS+="server.$i=127.0.0.1:$((BASE + 700 + i)):$((BASE + 1700 + i)):participant;127.0.0.1:$((BASE + i))"$'\n'
done
HOSTS=""
for i in $(seq "$N"); do
  d="$ZK_DIR/zk$i"
  mkdir -p "$d/data" "$d/log"
  echo "$i" >"$d/data/myid"
  cat >"$d/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
dataLogDir=$d/log
forceSync=yes
standaloneEnabled=false
admin.enableServer=false
4lw.commands.whitelist=*
reconfigEnabled=true
localSessionsEnabled=$LOCAL_SESSIONS
localSessionsUpgradingEnabled=$LOCAL_SESSIONS
maxClientCnxns=0
$SERVERS
EOF
  # The superDigest is kazoo's harness's: user "super", password "test".
  cat >"$d/run.sh" <<EOF
exec java -Xmx256m -XX:+UseSerialGC -Dfile.encoding=UTF-8 -Dreadonlymode.enabled=true \\
  -Dzookeeper.log.dir='$d' -Dorg.slf4j.simpleLogger.defaultLogLevel=info \\
  -Dorg.slf4j.simpleLogger.showDateTime=true -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \\
  -Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU= \\
  -cp '$CP' $MAIN '$d/zoo.cfg'
EOF
  launch "$i"
  HOSTS+="127.0.0.1:$((BASE + i)),"
done
HOSTS=${HOSTS%,}

# Up when one server says "Mode: leader" and the others "Mode: follower".
deadline=$((SECONDS + 60))
while :; do
  leaders=0; followers=0
  for i in $(seq "$N"); do
    mode=$(fourlw $((BASE + i)) srvr | sed -n 's/^Mode: //p')
    case "$mode" in leader) leaders=$((leaders + 1)) ;; follower) followers=$((followers + 1)) ;; esac
  done
  [ "$leaders" -eq 1 ] && [ "$followers" -eq $((N - 1)) ] && break
  for i in $(seq "$N"); do
    alive "$(cat "$ZK_DIR/zk$i/pid")" \
      || die "server $i exited during start-up; see $ZK_DIR/zk$i/server.log"
  done
  [ "$SECONDS" -lt "$deadline" ] || die "no leader after 60 s; logs in $ZK_DIR/zk*/server.log"
  sleep 0.2
done
version=$(fourlw $((BASE + 1)) srvr | sed -n 's/^Zookeeper version: \([^,-]*\).*/\1/p')

export ZK_HOSTS=$HOSTS ZK_DIR ZK_SERVER_CMD="bash '$SELF' ctl {action} {index}" \
  ZK_LOCAL_SESSIONS=$LOCAL_SESSIONS
echo "zk-real: ZooKeeper $version ensemble up, pids $(pids | tr '\n' ' ')" >&2
echo "$HOSTS"

if [ "$#" -eq 0 ]; then
  echo "zk-real: Ctrl-C stops it" >&2
  while :; do
    up=0
    for p in $(pids); do alive "$p" && up=1; done
    [ "$up" -eq 1 ] || die "every server has exited"
    sleep 0.5
  done
else
  set +e
  "$@"
  rc=$?
  set -e
  exit "$rc"
fi
