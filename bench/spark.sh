#!/usr/bin/env bash
# PageRank (networkx's definition: alpha 0.85, dangling mass spread uniformly) on a seeded
# random directed graph, side by side: our RDD runtime (`spark run`: the driver and 2 worker
# processes on this machine), networkx, and PySpark DataFrames (local[2]), in one run. Checks
# that the ranks agree.
#
#   bash bench/spark.sh [VERTICES] [EDGES] [ITERATIONS]     (defaults: 100000 1000000 20)
#
# - ours, fixed: ITERATIONS iterations; PySpark runs the same iterations, and its ranks must
#   equal ours within 1e-9 per vertex.
# - ours, converged: until the L1 change is below N * 1e-12, as networkx's
#   `pagerank(G, alpha=0.85, tol=1e-12)`, whose ranks must equal ours within 1e-9 per vertex.
# Times are wall seconds of the whole run, loading the graph included; networkx's load
# (building the DiGraph) is shown apart. Peak resident memory: ours is the sum of the driver's
# and the workers' peaks (`spark run` reports them); the peers' is from /usr/bin/time (the
# largest process of the run).
# Installs networkx, numpy, scipy and pyspark from PyPI if they are missing (PySpark needs a JVM).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
V=${1:-100000}
E=${2:-1000000}
ITER=${3:-20}
cargo build --release -q -p impls --bin spark
BIN=target/release/spark
for m in networkx numpy scipy pyspark; do
  python3 -c "import $m" 2>/dev/null || pip install -q "$m"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spark-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$BIN" random-graph "$V,$E,1" --out "$WORK/graph.txt"

# timed NAME CMD...: runs CMD, keeps its wall seconds and peak memory in $WORK/NAME.time.
timed() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$WORK/$name.time" "$@" 2>"$WORK/$name.err" || {
    cat "$WORK/$name.err" >&2
    exit 1
  }
}

timed ours-fixed "$BIN" run --workers 2 --out "$WORK/ours-fixed.txt" -- \
  pagerank --edges "$WORK/graph.txt" --partitions 4 --iterations "$ITER" --tol 1e-300
timed ours-conv "$BIN" run --workers 2 --out "$WORK/ours-conv.txt" -- \
  pagerank --edges "$WORK/graph.txt" --partitions 4 --tol 1e-12

cat >"$WORK/nx.py" <<'PY'
import sys, time
import networkx as nx
t0 = time.time()
G = nx.DiGraph()
with open(sys.argv[1]) as f:
    G.add_edges_from((int(a), int(b)) for a, b in (l.split() for l in f))
t1 = time.time()
pr = nx.pagerank(G, alpha=0.85, tol=1e-12, max_iter=1000)
t2 = time.time()
with open(sys.argv[2], "w") as out:
    for v in sorted(pr):
        out.write(f"{v} {pr[v]!r}\n")
print(f"load {t1 - t0:.2f} s, pagerank {t2 - t1:.2f} s", file=sys.stderr)
PY
timed networkx python3 "$WORK/nx.py" "$WORK/graph.txt" "$WORK/nx.txt"

cat >"$WORK/df.py" <<'PY'
import sys, time
from pyspark.sql import SparkSession, functions as F
path, iters, outp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spark = (SparkSession.builder.master("local[2]").appName("pagerank")
         .config("spark.sql.shuffle.partitions", "4").config("spark.ui.enabled", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
alpha = 0.85
edges = (spark.read.csv(path, sep=" ").toDF("src", "dst")
         .select(F.col("src").cast("long").alias("src"), F.col("dst").cast("long").alias("dst"))
         .distinct())
verts = edges.select(F.col("src").alias("v")).union(edges.select(F.col("dst").alias("v"))).distinct().cache()
n = verts.count()
deg = edges.groupBy("src").agg(F.count("*").alias("deg"))
e = edges.join(deg, "src").cache()
ranks = verts.withColumn("r", F.lit(1.0 / n)).cache()
for _ in range(iters):
    dangling = (ranks.join(deg, ranks.v == deg.src, "left_anti").agg(F.sum("r")).first()[0]) or 0.0
    contribs = (e.join(ranks, e.src == ranks.v)
                .select(F.col("dst").alias("v"), (F.col("r") / F.col("deg")).alias("c"))
                .groupBy("v").agg(F.sum("c").alias("s")))
    base = alpha * dangling / n + (1 - alpha) / n
    ranks = (verts.join(contribs, "v", "left")
             .select("v", (alpha * F.coalesce(F.col("s"), F.lit(0.0)) + F.lit(base)).alias("r"))
             .localCheckpoint())
with open(outp, "w") as out:
    for row in sorted(ranks.collect()):
        out.write(f"{row.v} {row.r!r}\n")
spark.stop()
PY
timed pyspark python3 "$WORK/df.py" "$WORK/graph.txt" "$ITER" "$WORK/df.txt"

python3 - "$WORK" "$V" "$E" "$ITER" <<'PY'
import sys
w, v, e, it = sys.argv[1:]
def ranks(name):
    return {int(a): float(b) for a, b in (l.split() for l in open(f"{w}/{name}.txt"))}
def diff(a, b):
    assert a.keys() == b.keys(), f"different vertices: {len(a)} vs {len(b)}"
    return max(abs(a[k] - b[k]) for k in a)
def t(name):
    secs, kb = open(f"{w}/{name}.time").read().split()
    return float(secs), int(kb) / 1024
def ours(name):
    # "peak memory: driver D MB, workers A + B MB"
    secs = t(name)[0]
    line = [l for l in open(f"{w}/{name}.err") if l.startswith("peak memory")][0]
    nums = [float(x) for x in line.replace(",", " ").split() if x.replace(".", "").isdigit()]
    return secs, sum(nums)
d_nx = diff(ranks("ours-conv"), ranks("nx"))
d_df = diff(ranks("ours-fixed"), ranks("df"))
ours_f, ours_c, nx_, df = ours("ours-fixed"), ours("ours-conv"), t("networkx"), t("pyspark")
conv = open(f"{w}/ours-conv.err").read().split(",")[1].strip()
print(f"{v} vertices, {e} edges; networkx: {open(w + '/networkx.err').read().strip()}; ours converged in {conv}")
print(f"| run | ours | peer | peer / ours | max rank difference |")
print(f"|---|---|---|---|---|")
print(f"| {it} iterations vs PySpark DataFrame local[2] | {ours_f[0]:.2f} s, {ours_f[1]:.0f} MB | {df[0]:.2f} s, {df[1]:.0f} MB | {df[0] / ours_f[0]:.1f}x | {d_df:.1e} |")
print(f"| to tol 1e-12 vs networkx | {ours_c[0]:.2f} s, {ours_c[1]:.0f} MB | {nx_[0]:.2f} s, {nx_[1]:.0f} MB | {nx_[0] / ours_c[0]:.1f}x | {d_nx:.1e} |")
assert d_nx < 1e-9 and d_df < 1e-9, "ranks differ"
PY
