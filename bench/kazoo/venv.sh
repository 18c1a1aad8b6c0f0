#!/usr/bin/env bash
# Prints the path of a Python that has kazoo and its test dependencies (requirements.txt beside
# this file), making the virtualenv first if it is missing or stale. The virtualenv lives in
# .venv-zk/ at the top of the work tree (gitignored), or in $ZK_VENV.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv=$(realpath -m "${ZK_VENV:-$here/../../.venv-zk}")
req="$here/requirements.txt"
stamp="$venv/.requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
  echo "venv: installing $req into $venv" >&2
  python3 -m venv "$venv" >&2 || { echo "venv: python3 -m venv failed" >&2; exit 2; }
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 \
    || { echo "venv: pip install -r $req failed" >&2; exit 2; }
  cp "$req" "$stamp"
fi
echo "$(cd "$venv" && pwd)/bin/python"
