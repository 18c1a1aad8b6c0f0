//! The programs `spark driver` and `spark run` run, from their arguments. The driver and every
//! worker build the same program from the same arguments: the driver runs it, a worker reruns
//! it to rebuild a task's lineage ([`super::rdd::Context::replay`]). Inputs are read lazily,
//! partition by partition, from files every process can read (the paper's stable storage).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use super::pagerank::{pagerank, Options, Ranks};
use super::rdd::Context;
use crate::mapreduce::apps;

/// What a program computed.
#[derive(Clone, Debug)]
pub enum Output {
    Ranks(Ranks),
    /// `(key, value)` pairs sorted by key (a MapReduce app's output).
    Pairs(Vec<(String, String)>),
}

/// A program: what it computes with a context.
pub type Program = Arc<dyn Fn(&Context) -> Result<Output, String> + Send + Sync>;

#[derive(Parser)]
#[command(name = "APP", no_binary_name = true)]
struct AppCli {
    #[command(subcommand)]
    app: AppCmd,
}

#[derive(Subcommand, Clone, Debug)]
enum AppCmd {
    /// PageRank (§3.2.2) of the graph in a file of `src dst` lines.
    Pagerank {
        #[arg(long)]
        edges: PathBuf,
        /// networkx: at most this many; spark: exactly this many.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        iterations: u64,
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
        partitions: u64,
        /// networkx (ranks sum to 1, dangling mass spread) or spark (`0.15 + 0.85 * Σ`).
        #[arg(long, default_value = "networkx", value_parser = ["networkx", "spark"])]
        variant: String,
        /// networkx: stop when the L1 change is below N * tol.
        #[arg(long, default_value_t = 1e-12)]
        tol: f64,
    },
    /// A MapReduce application on RDDs: word count (`wc`), `indexer` or `grep`.
    Mr {
        #[arg(long, default_value = "wc")]
        app: String,
        #[arg(long)]
        pattern: Option<String>,
        #[arg(long, num_args = 1.., required = true)]
        inputs: Vec<PathBuf>,
        /// Reduce partitions.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
        partitions: u64,
    },
}

/// The apps' usage, for `--help`.
pub const APPS_HELP: &str = "pagerank --edges FILE [--iterations N] [--partitions P] \
[--variant networkx|spark] [--tol T] | mr [--app wc|indexer|grep] [--pattern P] --inputs FILES... \
[--partitions R]";

/// The program `args` name, or why they name none.
pub fn program(args: &[String]) -> Result<Program, String> {
    let cli = AppCli::try_parse_from(args).map_err(|e| {
        let text = e.to_string();
        text.lines().next().unwrap_or("bad arguments").to_string()
    })?;
    match cli.app {
        AppCmd::Pagerank {
            edges,
            iterations,
            partitions,
            variant,
            tol,
        } => {
            let o = Options::parse(&variant, tol, iterations as usize, partitions as usize)?;
            Ok(Arc::new(move |ctx: &Context| {
                let lines = ctx
                    .text_file(std::slice::from_ref(&edges), o.partitions)
                    .map_err(|e| format!("{}: {e}", edges.display()))?;
                let edges = lines.flat_map(|line: String| edge_of(&line));
                Ok(Output::Ranks(pagerank(ctx, edges, o)))
            }))
        }
        AppCmd::Mr {
            app,
            pattern,
            inputs,
            partitions,
        } => {
            let app: Arc<dyn apps::App> = apps::by_name(&app, pattern.as_deref())?.into();
            Ok(Arc::new(move |ctx: &Context| {
                super::run_app(ctx, app.clone(), &inputs, partitions as usize)
                    .map(Output::Pairs)
                    .map_err(|e| e.to_string())
            }))
        }
    }
}

/// The edge on a `src dst` line (none for a blank line or a `#` comment). A malformed line
/// fails its task: check files with [`super::pagerank::parse_edges`] first for a clear error.
fn edge_of(line: &str) -> Option<(u64, u64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut it = line.split_whitespace();
    let num = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok());
    match (num(it.next()), num(it.next())) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => panic!("'{line}' is not a `src dst` line"),
    }
}

/// Checks a program's inputs before a run, for a one-line error rather than failed tasks.
pub fn check_inputs(args: &[String]) -> Result<(), String> {
    let cli = AppCli::try_parse_from(args).map_err(|e| {
        e.to_string()
            .lines()
            .next()
            .unwrap_or("bad arguments")
            .to_string()
    })?;
    match cli.app {
        AppCmd::Pagerank { edges, .. } => {
            let text =
                std::fs::read_to_string(&edges).map_err(|e| format!("{}: {e}", edges.display()))?;
            super::pagerank::parse_edges(&text)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", edges.display()))
        }
        AppCmd::Mr { inputs, .. } => inputs.iter().try_for_each(|p| {
            std::fs::metadata(p)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", p.display()))
        }),
    }
}
