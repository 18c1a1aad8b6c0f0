//! `spark`: Spark's RDDs on this machine (for now, workers are threads of this process).
//!
//! - `spark pagerank --edges FILE | --random V,E,SEED [--iterations N] [--partitions P]
//!   [--workers W] [--variant networkx|spark] [--tol T] [--kill-worker-after TASKS] [--out FILE]`:
//!   PageRank (§3.2.2) with the links persisted and co-partitioned with the ranks. `networkx`
//!   (the default) is networkx's definition: it stops when the L1 change is below N * tol, or
//!   after N iterations. `spark` is the Spark example's unnormalised `0.15 + 0.85 * Σ`.
//!   Prints a summary line; `--out` writes `vertex rank` lines.
//! - `spark random-graph V,E,SEED --out FILE`: the seeded random graph, as `src dst` lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use impls::spark::pagerank::{pagerank, parse_edges, Options, Variant};
use impls::spark::rdd::Context;

#[derive(Parser)]
#[command(
    name = "spark",
    version,
    about = "Spark's RDDs and PageRank (Zaharia et al., NSDI 2012)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// PageRank of a graph.
    Pagerank {
        /// A file of `src dst` lines.
        #[arg(long, conflicts_with = "random")]
        edges: Option<PathBuf>,
        /// A seeded random graph: VERTICES,EDGES,SEED (distinct edges, no self-loops).
        #[arg(long)]
        random: Option<String>,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        iterations: u64,
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
        partitions: u64,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
        workers: u64,
        #[arg(long, default_value = "networkx", value_parser = ["networkx", "spark"])]
        variant: String,
        #[arg(long, default_value_t = 1e-12)]
        tol: f64,
        /// Kill worker 1's memory after this many tasks (a lost worker mid-job).
        #[arg(long)]
        kill_worker_after: Option<usize>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a seeded random graph.
    RandomGraph {
        /// VERTICES,EDGES,SEED.
        spec: String,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    impls::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spark: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// VERTICES,EDGES,SEED.
fn parse_spec(spec: &str) -> Result<(u64, usize, u64)> {
    let parts: Vec<&str> = spec.split(',').collect();
    let [v, e, s] = parts.as_slice() else {
        bail!("'{spec}': expected VERTICES,EDGES,SEED");
    };
    let (v, e, s): (u64, usize, u64) = (
        v.parse().context("vertices")?,
        e.parse().context("edges")?,
        s.parse().context("seed")?,
    );
    if v < 2 || e as u64 > v * (v - 1) {
        bail!("'{spec}': {e} distinct edges without self-loops need more than {v} vertices");
    }
    Ok((v, e, s))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::RandomGraph { spec, out } => {
            let (v, e, seed) = parse_spec(&spec)?;
            let mut text = String::new();
            for (a, b) in impls::spark::pagerank::random_graph(v, e, seed) {
                text.push_str(&format!("{a} {b}\n"));
            }
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
        }
        Command::Pagerank {
            edges,
            random,
            iterations,
            partitions,
            workers,
            variant,
            tol,
            kill_worker_after,
            out,
        } => {
            let start = Instant::now();
            let edges = match (edges, random) {
                (Some(path), None) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    parse_edges(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                }
                (None, Some(spec)) => {
                    let (v, e, seed) = parse_spec(&spec)?;
                    impls::spark::pagerank::random_graph(v, e, seed)
                }
                _ => bail!("give --edges FILE or --random V,E,SEED"),
            };
            if !(tol > 0.0 && tol.is_finite()) {
                bail!("--tol must be a positive number");
            }
            let loaded = start.elapsed();
            let ctx = Context::new(workers as usize);
            if let Some(n) = kill_worker_after {
                if workers < 2 {
                    bail!("--kill-worker-after needs at least 2 workers");
                }
                ctx.kill_after(1, n);
            }
            let o = Options {
                variant: if variant == "spark" {
                    Variant::Spark
                } else {
                    Variant::Networkx
                },
                tol,
                iterations: iterations as usize,
                partitions: partitions as usize,
                ..Options::default()
            };
            let n_edges = edges.len();
            let parts = partitions as usize;
            let r = pagerank(&ctx, ctx.parallelize(edges, parts), o);
            let stats = ctx.stats();
            eprintln!(
                "{} vertices, {n_edges} edges, {} iterations, {:.3} s ({:.3} s to load), {} tasks, {} map outputs resubmitted, {} cached partitions recomputed",
                r.ranks.len(),
                r.iterations,
                start.elapsed().as_secs_f64(),
                loaded.as_secs_f64(),
                stats.tasks,
                stats.resubmitted,
                stats.recomputed
            );
            if let Some(path) = out {
                let mut w = std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("writing {}", path.display()))?,
                );
                for (v, rank) in &r.ranks {
                    writeln!(w, "{v} {rank:.17e}")?;
                }
                w.flush()?;
            }
        }
    }
    Ok(())
}
