#!/usr/bin/env bash
# Word count: our MapReduce (2 workers) against PySpark in local mode (2 cores) and against the
# single-threaded Rust reference (`mr sequential`), on the classic lab's eight Gutenberg books and
# on a ~50 MB text made of them. Not run in CI.
#
# Installs PySpark from PyPI if it is missing (Java 17 is expected on the machine). Every run is
# timed as a whole process (Spark's JVM start-up included) and the Spark jobs also report their
# own warm time (the second of two runs in one session), which excludes start-up. The outputs of
# all three are compared: the same words with the same counts.
#
# Environment: MB=50 (size of the big input), RUNS=3 (best of), KEEP_WORK=1 keeps the temp folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
books=("$root"/../shared/data/gutenberg/pg-*.txt)
MB="${MB:-50}"
RUNS="${RUNS:-3}"
work="$(mktemp -d)"
if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory: $work" >&2; else trap 'rm -rf "$work"' EXIT; fi

python3 -c 'import pyspark' 2>/dev/null || python3 -m pip install --quiet pyspark
(cd "$root" && cargo build --release -p impls) >&2
mr="$root/target/release/mr"

# The big input: the books again and again.
big="$work/big.txt"
: > "$big"
while [ "$(stat -c %s "$big")" -lt $((MB * 1024 * 1024)) ]; do cat "${books[@]}" >> "$big"; done
echo "big input: $(( $(stat -c %s "$big") / 1024 / 1024 )) MiB" >&2

now() { date +%s.%N; }
best() { sort -g | head -n 1; }

cat > "$work/spark_wc.py" <<'PY'
import re, sys, time
from operator import add
from pyspark.sql import SparkSession, functions as F
mode, out, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
spark = SparkSession.builder.master("local[2]").appName("wc").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
word = re.compile(r"[^\W\d_]+")
def run():
    if mode == "rdd":
        counts = (spark.sparkContext.textFile(",".join(inputs))
                  .flatMap(word.findall).map(lambda w: (w, 1)).reduceByKey(add).collect())
    else:
        df = spark.read.text(inputs)
        words = df.select(F.explode(F.expr(r"regexp_extract_all(value, '[\\p{L}]+', 0)")).alias("w"))
        counts = [(r["w"], r["count"]) for r in words.groupBy("w").count().collect()]
    return counts
t = time.time(); run(); first = time.time() - t
t = time.time(); counts = run(); warm = time.time() - t
with open(out, "w") as f:
    for w, c in counts:
        f.write(f"{w} {c}\n")
print(f"{first:.3f} {warm:.3f}")
spark.stop()
PY

results="$work/results.tsv"
: > "$results"
for input in books big; do
  if [ "$input" = books ]; then files=("${books[@]}"); else files=("$big"); fi
  # Ours: the whole `mr run`, 2 workers, inputs split into 8 MiB map tasks.
  times=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$work/out"
    t=$(now); "$mr" run --app wc --workers 2 --reduces 4 --split-mb 8 --out "$work/out" --inputs "${files[@]}"; t=$(echo "$(now) - $t" | bc)
    times+=("$t")
  done
  ours=$(printf '%s\n' "${times[@]}" | best)
  sort "$work"/out/mr-out-* > "$work/ours.sorted"
  times=()
  for _ in $(seq "$RUNS"); do
    t=$(now); "$mr" sequential --app wc --out "$work/seq" --inputs "${files[@]}"; t=$(echo "$(now) - $t" | bc)
    times+=("$t")
  done
  seq=$(printf '%s\n' "${times[@]}" | best)
  sort "$work/seq" > "$work/seq.sorted"
  cmp -s "$work/ours.sorted" "$work/seq.sorted" || { echo "$input: our output differs from the sequential one" >&2; exit 1; }
  for mode in rdd df; do
    t=$(now); read -r first warm < <(python3 "$work/spark_wc.py" "$mode" "$work/spark.out" "${files[@]}" 2>/dev/null); t=$(echo "$(now) - $t" | bc)
    sort "$work/spark.out" > "$work/spark.sorted"
    agree=yes; cmp -s "$work/spark.sorted" "$work/seq.sorted" || agree=no
    printf '%s\tpyspark-%s\t%s\t%s\t%s\n' "$input" "$mode" "$warm" "$t" "$agree" >> "$results"
  done
  printf '%s\tours (mr run, 2 workers)\t%s\t%s\tyes\n' "$input" "$ours" "$ours" >> "$results"
  printf '%s\trust sequential (1 thread)\t%s\t%s\tyes\n' "$input" "$seq" "$seq" >> "$results"
done

python3 - "$results" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
ours = {r[0]: float(r[2]) for r in rows if r[1].startswith("ours")}
fmt = "{:<6} {:<28} {:>10} {:>12} {:>14} {:>14}"
print(fmt.format("input", "system", "warm s", "process s", "warm / ours", "same output"))
for inp, system, warm, proc, agree in rows:
    print(fmt.format(inp, system, "%.3f" % float(warm), "%.3f" % float(proc), "%.1f" % (float(warm) / ours[inp]), agree))
print("warm: Spark's second run in one session (no JVM start-up); ours and the sequential baseline are")
print("whole processes (best of RUNS), so the ratio favours Spark.")
PY
