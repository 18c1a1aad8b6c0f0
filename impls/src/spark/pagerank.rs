//! PageRank on RDDs (§3.2.2): the links RDD partitioned by vertex and persisted, the ranks
//! co-partitioned with it, so each iteration's join is narrow and only the contributions are
//! shuffled.
//!
//! Two definitions:
//! - [`Variant::Networkx`] (the default): networkx's `pagerank(G, alpha)`: ranks sum to 1, start
//!   at 1/N, a dangling vertex's rank is spread over all vertices, and the iteration stops when
//!   the L1 change is below `N * tol` (at most `max_iter` iterations);
//! - [`Variant::Spark`]: the Spark example's `0.15 + 0.85 * Σ contributions`, ranks from 1.0,
//!   for a fixed number of iterations; a vertex nobody links to drops out, as in the example.

use std::collections::BTreeMap;

use super::rdd::{Context, Rdd};

/// Which PageRank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Networkx,
    Spark,
}

/// How to run it.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub variant: Variant,
    pub alpha: f64,
    /// Networkx: stop when the L1 change is below `N * tol`.
    pub tol: f64,
    /// Networkx: at most this many iterations; Spark: exactly this many.
    pub iterations: usize,
    pub partitions: usize,
}

impl Options {
    /// The options a command line names: `variant` is `networkx` or `spark`, `tol` positive.
    pub fn parse(
        variant: &str,
        tol: f64,
        iterations: usize,
        partitions: usize,
    ) -> Result<Options, String> {
        let variant = match variant {
            "networkx" => Variant::Networkx,
            "spark" => Variant::Spark,
            other => return Err(format!("'{other}': the variants are networkx and spark")),
        };
        if !(tol > 0.0 && tol.is_finite()) {
            return Err("--tol must be a positive number".into());
        }
        Ok(Options {
            variant,
            tol,
            iterations,
            partitions,
            ..Options::default()
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            variant: Variant::Networkx,
            alpha: 0.85,
            tol: 1e-12,
            iterations: 1000,
            partitions: 4,
        }
    }
}

/// The result: each vertex's rank, and the iterations run.
#[derive(Clone, Debug)]
pub struct Ranks {
    pub ranks: BTreeMap<u64, f64>,
    pub iterations: usize,
}

/// A vertex's out-links, shared rather than copied by every join.
type Links = std::sync::Arc<[u64]>;

/// PageRank of the graph of `edges` (duplicates count once, as in a networkx `DiGraph`).
pub fn pagerank(ctx: &Context, edges: Rdd<(u64, u64)>, o: Options) -> Ranks {
    let parts = o.partitions;
    // links: each vertex (sources and destinations alike) and its distinct out-links.
    let links: Rdd<(u64, Links)> = edges
        .flat_map(|(s, d)| [(s, Some(d)), (d, None)])
        .group_by_key(parts)
        .map_values(|ds: Vec<Option<u64>>| {
            let mut out: Vec<u64> = ds.into_iter().flatten().collect();
            out.sort_unstable();
            out.dedup();
            Links::from(out)
        })
        .persist();
    match o.variant {
        Variant::Networkx => networkx(ctx, &links, o),
        Variant::Spark => spark(&links, o),
    }
}

fn networkx(_ctx: &Context, links: &Rdd<(u64, Links)>, o: Options) -> Ranks {
    let parts = o.partitions;
    let n = links.count() as f64;
    let alpha = o.alpha;
    let mut ranks: Rdd<(u64, f64)> = links.map_values(move |_| 1.0 / n).persist();
    let mut iterations = 0;
    while iterations < o.iterations {
        iterations += 1;
        let joined = links.join(&ranks).persist();
        let dangling: f64 = joined
            .filter(|(_, (ds, _))| ds.is_empty())
            .map(|(_, (_, r))| r)
            .reduce(|a, b| a + b)
            .unwrap_or(0.0);
        let contribs = joined.flat_map(|(v, (ds, r))| {
            let share = r / ds.len().max(1) as f64;
            // Every vertex is kept, with no contribution if nobody links to it.
            let ds = ds.clone();
            std::iter::once((v, 0.0)).chain((0..ds.len()).map(move |i| (ds[i], share)))
        });
        let base = alpha * dangling / n + (1.0 - alpha) / n;
        let next = contribs
            .reduce_by_key(|a, b| a + b, parts)
            .map_values(move |s| alpha * s + base)
            .persist();
        let err: f64 = next
            .join(&ranks)
            .map(|(_, (a, b))| (a - b).abs())
            .reduce(|a, b| a + b)
            .unwrap_or(0.0);
        ranks = next;
        if err < n * o.tol {
            break;
        }
    }
    Ranks {
        ranks: ranks.collect().into_iter().collect(),
        iterations,
    }
}

fn spark(links: &Rdd<(u64, Links)>, o: Options) -> Ranks {
    let parts = o.partitions;
    let mut ranks: Rdd<(u64, f64)> = links.map_values(|_| 1.0);
    for _ in 0..o.iterations {
        let contribs = links.join(&ranks).flat_map(|(_, (ds, r))| {
            let share = r / ds.len().max(1) as f64;
            ds.iter().map(move |d| (*d, share)).collect::<Vec<_>>()
        });
        ranks = contribs
            .reduce_by_key(|a, b| a + b, parts)
            .map_values(|s| 0.15 + 0.85 * s)
            .persist();
    }
    Ranks {
        ranks: ranks.collect().into_iter().collect(),
        iterations: o.iterations,
    }
}

/// A seeded random directed graph: `edges` distinct edges among `vertices` vertices, no
/// self-loops (`edges` must be below `vertices * (vertices - 1)`).
pub fn random_graph(vertices: u64, edges: usize, seed: u64) -> Vec<(u64, u64)> {
    let mut rng = crate::rng::Rng::new(seed);
    let mut set = std::collections::HashSet::with_capacity(edges);
    let mut out = Vec::with_capacity(edges);
    while out.len() < edges {
        let (a, b) = (rng.below(vertices), rng.below(vertices));
        if a != b && set.insert((a, b)) {
            out.push((a, b));
        }
    }
    out
}

/// The edges of a text file of `src dst` lines (`#` comments and blank lines skipped).
pub fn parse_edges(text: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(a), Some(b)) = (it.next(), it.next()) else {
            return Err(format!("line {}: expected `src dst`", i + 1));
        };
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("line {}: '{s}' is not a vertex number", i + 1))
        };
        out.push((num(a)?, num(b)?));
    }
    Ok(out)
}

/// networkx's `pagerank` (its power iteration) written out directly on a plain adjacency
/// list: the reference the RDD runtime is checked against, here and in the cluster tests.
pub fn networkx_reference(edges: &[(u64, u64)], alpha: f64, tol: f64) -> BTreeMap<u64, f64> {
    let mut out: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (s, d) in edges {
        out.entry(*s).or_default().push(*d);
        out.entry(*d).or_default();
    }
    for v in out.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    let n = out.len() as f64;
    let mut x: BTreeMap<u64, f64> = out.keys().map(|v| (*v, 1.0 / n)).collect();
    for _ in 0..1000 {
        let dangling: f64 = out
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(v, _)| x[v])
            .sum();
        let mut next: BTreeMap<u64, f64> = out
            .keys()
            .map(|v| (*v, alpha * dangling / n + (1.0 - alpha) / n))
            .collect();
        for (v, ds) in &out {
            for d in ds {
                *next.get_mut(d).unwrap() += alpha * x[v] / ds.len() as f64;
            }
        }
        let err: f64 = next.iter().map(|(v, r)| (r - x[v]).abs()).sum();
        x = next;
        if err < n * tol {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// networkx 3.6.1, `pagerank(G, alpha=0.85, tol=1e-12, max_iter=1000)` of a `DiGraph` of
    /// Spark's GraphX sample `followers.txt` (`../shared/data/pagerank/`).
    const NETWORKX_FOLLOWERS: [(u64, f64); 6] = [
        (1, 0.24324324324445992),
        (2, 0.23175675675553997),
        (3, 0.16666666666666663),
        (4, 0.025),
        (6, 0.11695906432748537),
        (7, 0.2163742690058479),
    ];

    fn followers() -> Vec<(u64, u64)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/pagerank/spark_graphx_followers.txt");
        parse_edges(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn pagerank_equals_networkx_on_the_graphx_sample() {
        let ctx = Context::new(2);
        let r = pagerank(&ctx, ctx.parallelize(followers(), 2), Options::default());
        let reference = networkx_reference(&followers(), 0.85, 1e-12);
        assert_eq!(r.ranks.len(), NETWORKX_FOLLOWERS.len());
        for (v, want) in NETWORKX_FOLLOWERS {
            for (got, who) in [(r.ranks[&v], "runtime"), (reference[&v], "reference")] {
                assert!(
                    (got - want).abs() < 1e-9,
                    "vertex {v}: {who} {got} vs networkx {want}"
                );
            }
        }
    }

    #[test]
    fn pagerank_equals_the_power_iteration_with_and_without_a_lost_worker() {
        let edges = random_graph(300, 2000, 11);
        let want = networkx_reference(&edges, 0.85, 1e-12);
        for kill in [None, Some(40)] {
            let ctx = Context::new(2);
            if let Some(after) = kill {
                ctx.kill_after(1, after);
            }
            let o = Options {
                partitions: 4,
                ..Options::default()
            };
            let r = pagerank(&ctx, ctx.parallelize(edges.clone(), 4), o);
            assert_eq!(r.ranks.len(), want.len());
            for (v, w) in &want {
                assert!(
                    (r.ranks[v] - w).abs() < 1e-9,
                    "vertex {v}: {} vs {w}",
                    r.ranks[v]
                );
            }
            if kill.is_some() {
                let s = ctx.stats();
                assert!(
                    s.recomputed > 0 && s.resubmitted > 0,
                    "the kill cost nothing: {s:?}"
                );
            }
        }
    }

    #[test]
    fn the_spark_example_variant_matches_its_formula() {
        // 0→1, 0→2, 1→2, 2→0: the model's PageRank (`checker spark --job pagerank`).
        let ctx = Context::new(2);
        let edges = ctx.parallelize(vec![(0, 1), (0, 2), (1, 2), (2, 0)], 2);
        let o = Options {
            variant: Variant::Spark,
            iterations: 2,
            ..Options::default()
        };
        let r = pagerank(&ctx, edges, o);
        let want = [(0, 1.36125), (1, 0.575), (2, 1.06375)];
        for (v, w) in want {
            assert!((r.ranks[&v] - w).abs() < 1e-12, "{v}: {}", r.ranks[&v]);
        }
        assert!(parse_edges("1 2\n# c\n\nx 3\n")
            .unwrap_err()
            .contains("line 4"));
    }
}
