#!/usr/bin/env bash
# Runs kazoo's own test suite (the tests shipped in its wheel, kazoo/tests) against a running
# ZooKeeper ensemble, through the harness stand-in in bench/kazoo/conftest.py, and prints
# passed/failed/skipped counts for each test file, with the reason for every failure and skip.
#
#   bash bench/kazoo-tests.sh HOSTS [TESTFILE[::TEST]...] [-- PYTEST-ARGS...]
#   bash bench/kazoo-tests.sh real  [TESTFILE...]      starts a real ZooKeeper 3.8 ensemble
#                                                      with bench/zk-real.sh and runs there
#
# HOSTS is a connect string, e.g. 127.0.0.1:22181,127.0.0.1:22182,127.0.0.1:22183. TESTFILEs are
# names in kazoo/tests (default test_lock.py). ZK_TRACE_OPS=FILE also writes the requests, error
# codes, watch events and four-letter words the tests used (see bench/kazoo/conftest.py).
# ZK_TEST_TIMEOUT is the limit for one test in seconds (default 180); ZK_TEST_LOG=FILE keeps
# pytest's own output (tracebacks). With HOSTS=real, tests that stop and restart a server run
# too (ZK_SERVER_CMD, see bench/zk-real.sh); with other HOSTS they are skipped unless it is set.
#
# Exit status: 0 if nothing failed, 1 if a test failed or errored, 2 on a usage or set-up error.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ "$#" -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac

if [ "$1" = real ]; then
  shift
  exec bash "$ROOT/bench/zk-real.sh" bash -c \
    'exec bash "$0" "$ZK_HOSTS" "$@"' "${BASH_SOURCE[0]}" "$@"
fi

HOSTS=$1; shift
FILES=(); PYARGS=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --) shift; PYARGS+=("$@"); break ;;
    -*) PYARGS+=("$1") ;;
    *) FILES+=("$1") ;;
  esac
  shift
done
[ "${#FILES[@]}" -gt 0 ] || FILES=(test_lock.py)

PY=$(bash "$ROOT/bench/kazoo/venv.sh")
TESTS=$("$PY" -c 'import os, kazoo.tests as t; print(os.path.dirname(t.__file__))' 2>/dev/null) \
  || { echo "kazoo-tests: the installed kazoo has no kazoo/tests" >&2; exit 2; }
VERSION=$("$PY" -c 'import kazoo.version as v; print(v.__version__)')
TARGETS=()
for f in "${FILES[@]}"; do
  [ -f "$TESTS/${f%%::*}" ] || { echo "kazoo-tests: no $f in kazoo $VERSION's tests ($TESTS)" >&2; exit 2; }
  TARGETS+=("$TESTS/$f")
done

# Fail fast on an unreachable ensemble rather than once per test.
"$PY" - "$HOSTS" <<'EOF' || exit 2
import logging, sys
from kazoo.client import KazooClient
logging.getLogger("kazoo").setLevel(logging.CRITICAL)
zk = KazooClient(hosts=sys.argv[1], timeout=10)
try:
    zk.start(timeout=15)
except Exception as e:
    sys.exit("kazoo-tests: cannot connect to %s: %s" % (sys.argv[1], e))
zk.stop(); zk.close()
EOF

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kazoo-tests.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "kazoo-tests: kazoo $VERSION against $HOSTS: ${FILES[*]}" >&2
set +e
ZK_HOSTS=$HOSTS PYTHONPATH="$ROOT/bench/kazoo${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" -m pytest -p conftest -p no:cacheprovider --rootdir "$TESTS" \
  --timeout "${ZK_TEST_TIMEOUT:-180}" -q -rfEs --junitxml "$WORK/junit.xml" \
  "${PYARGS[@]}" "${TARGETS[@]}" >"$WORK/pytest.log" 2>&1
rc=$?
set -e
[ -z "${ZK_TEST_LOG:-}" ] || cp "$WORK/pytest.log" "$ZK_TEST_LOG"
if [ ! -s "$WORK/junit.xml" ]; then
  cat "$WORK/pytest.log" >&2
  echo "kazoo-tests: pytest exited $rc without a report" >&2
  exit 2
fi
if [ "$rc" -gt 1 ]; then
  tail -n 30 "$WORK/pytest.log" >&2
else
  sed -n '/^=* ZooKeeper wire trace/,/^=* short test summary/p' "$WORK/pytest.log" | sed '$d' >&2
fi

# One row for each file, then the failures and skips with their first line of reason.
"$PY" - "$WORK/junit.xml" <<'EOF'
import collections, sys, xml.etree.ElementTree as ET
rows = collections.OrderedDict()
notes = []
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    parts = case.get("classname", "").split(".")
    f = next((p + ".py" for p in parts if p.startswith("test_")), case.get("classname"))
    cls = parts[-1] if parts and not parts[-1].startswith("test_") else ""
    r = rows.setdefault(f, collections.Counter())
    outcome = "passed"
    for tag in ("failure", "error", "skipped"):
        el = case.find(tag)
        if el is not None:
            outcome = {"failure": "failed", "error": "errors"}.get(tag, tag)
            msg = (el.get("message") or el.text or "").strip().splitlines()
            notes.append("%-7s %s::%s%s: %s" % (outcome, f, cls + "::" if cls else "", case.get("name"),
                                                  msg[0][:160] if msg else ""))
            break
    r[outcome] += 1
cols = ("passed", "failed", "errors", "skipped")
print("%-24s %7s %7s %7s %7s" % (("file",) + cols))
total = collections.Counter()
for f, r in rows.items():
    total.update(r)
    print("%-24s %7d %7d %7d %7d" % ((f,) + tuple(r[c] for c in cols)))
for n in notes:
    print("  " + n)
print("%d passed, %d failed, %d skipped" % (total["passed"], total["failed"] + total["errors"], total["skipped"]))
EOF
[ "$rc" -eq 0 ] && exit 0 || exit 1
