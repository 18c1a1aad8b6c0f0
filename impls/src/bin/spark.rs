//! `spark`: Spark's RDDs on this machine.
//!
//! - `spark run [--workers W] [--slots S] [--out FILE] [--kill-worker N --after-tasks T
//!   [--restart]] -- APP ARGS...`: a local cluster (W worker processes; the driver is this
//!   process) runs the program APP (`pagerank --edges FILE ...`, `mr --inputs FILES...`).
//!   `--kill-worker` makes worker N exit abruptly after T tasks, mid-job, and `--restart`
//!   starts it again.
//! - `spark driver --cluster FILE [--out FILE] -- APP ARGS...` and
//!   `spark worker --cluster FILE --id N --dir DIR [--slots S]`: the same, one process each.
//!   The cluster file names the driver (node 0) and the workers (1, 2, ...) and gives each
//!   worker a data port (its `[data]` table), where other workers fetch its map outputs.
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
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use impls::config::ClusterConfig;
use impls::spark::apps::{self, Output, APPS_HELP};
use impls::spark::cluster::{self, DriverOptions, DriverStats, WorkerOptions};
use impls::spark::pagerank::{pagerank, parse_edges, Options};
use impls::spark::rdd::Context;
use impls::supervisor::Supervisor;
use stateright::actor::Id;

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

/// Options of the driver.
#[derive(clap::Args, Clone)]
struct DriverArgs {
    /// Declare a worker lost after this many milliseconds without a heartbeat.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    lost_after_ms: u64,
    /// A task's failures that abort its job (Spark's spark.task.maxFailures).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=100))]
    max_failures: u8,
    /// Write the program's output here: `vertex rank` or `key value` lines.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program on a local cluster: worker processes, and the driver in this process.
    #[command(after_help = format!("APP: {APPS_HELP}"))]
    Run {
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
        workers: u64,
        /// Task threads a worker.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        slots: u64,
        /// Make this worker (1..=W) exit abruptly after --after-tasks tasks.
        #[arg(long, requires = "after_tasks")]
        kill_worker: Option<u64>,
        #[arg(long, requires = "kill_worker")]
        after_tasks: Option<u64>,
        /// Start the killed worker again.
        #[arg(long, requires = "kill_worker")]
        restart: bool,
        /// Where the workers' data directories and logs go (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        driver: DriverArgs,
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        app: Vec<String>,
    },
    /// Run the driver of a cluster and a program on it.
    #[command(after_help = format!("APP: {APPS_HELP}"))]
    Driver {
        #[arg(long)]
        cluster: PathBuf,
        #[command(flatten)]
        driver: DriverArgs,
        #[arg(last = true, required = true)]
        app: Vec<String>,
    },
    /// Run a worker of a cluster.
    Worker {
        #[arg(long)]
        cluster: PathBuf,
        #[arg(long)]
        id: usize,
        /// Its data directory (map outputs go to DIR/shuffle, wiped at start).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        slots: u64,
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
        lost_after_ms: u64,
        /// Exit abruptly after this many tasks (a crash, for tests).
        #[arg(long)]
        exit_after: Option<u64>,
    },
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

/// Runs `app` as the driver of `cluster`; prints a summary and writes the output.
fn drive(cluster: &ClusterConfig, app: Vec<String>, d: &DriverArgs) -> Result<()> {
    apps::check_inputs(&app).map_err(|e| anyhow::anyhow!(e))?;
    let program = apps::program(&app).map_err(|e| anyhow::anyhow!(e))?;
    let opts = DriverOptions {
        lost_after: Duration::from_millis(d.lost_after_ms),
        max_failures: d.max_failures,
    };
    let start = Instant::now();
    let (out, stats) = cluster::run_driver(cluster, app, |ctx| program(ctx), &opts)?;
    let out = out.map_err(|e| anyhow::anyhow!(e))?;
    let secs = start.elapsed().as_secs_f64();
    let DriverStats {
        jobs,
        tasks,
        fetch_failures,
        workers_lost,
        resubmitted,
    } = stats;
    let what = match &out {
        Output::Ranks(r) => format!("{} vertices, {} iterations", r.ranks.len(), r.iterations),
        Output::Pairs(p) => format!("{} keys", p.len()),
    };
    eprintln!(
        "{what}, {secs:.3} s, {jobs} jobs, {tasks} tasks, {fetch_failures} fetch failures, {workers_lost} workers lost, {resubmitted} map outputs resubmitted"
    );
    if let Some(path) = &d.out {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
        );
        match &out {
            Output::Ranks(r) => {
                for (v, rank) in &r.ranks {
                    writeln!(w, "{v} {rank:.17e}")?;
                }
            }
            Output::Pairs(p) => {
                for (k, v) in p {
                    writeln!(w, "{k} {v}")?;
                }
            }
        }
        w.flush()?;
    }
    Ok(())
}

/// `spark run`: the cluster file, the worker processes, and the driver here.
#[allow(clippy::too_many_arguments)]
fn run_local(
    workers: u64,
    slots: u64,
    kill: Option<(u64, u64)>,
    restart: bool,
    dir: Option<PathBuf>,
    d: &DriverArgs,
    app: Vec<String>,
) -> Result<()> {
    apps::program(&app).map_err(|e| anyhow::anyhow!(e))?;
    if let Some((w, _)) = kill {
        if w == 0 || w > workers {
            bail!("--kill-worker {w}: the workers are 1..={workers}");
        }
    }
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = TempDir::new()?;
            tmp.0.clone()
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = workers as usize;
    let ports = impls::cluster::free_ports(2 * n + 1)?;
    let addr = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    // Spark's own runtime is plaintext (`insecure = true` in its cluster file).
    let mut cfg = ClusterConfig::default();
    cfg.nodes.insert(Id::from(0), addr(ports[0]));
    for i in 1..=n {
        cfg.nodes.insert(Id::from(i), addr(ports[i]));
        cfg.data.insert(Id::from(i), addr(ports[n + i]));
    }
    let cluster_file = dir.join("cluster.toml");
    std::fs::write(&cluster_file, cfg.to_toml())?;
    let exe = std::env::current_exe()?;
    let mut sup = Supervisor::new();
    for i in 1..=n {
        let (exe, cluster_file, dir) = (exe.clone(), cluster_file.clone(), dir.clone());
        let exit_after = kill.filter(|(w, _)| *w as usize == i).map(|(_, t)| t);
        let starts = std::sync::atomic::AtomicU32::new(0);
        let lost = d.lost_after_ms;
        sup.add(
            format!("worker {i}"),
            Box::new(move || {
                let mut c = std::process::Command::new(&exe);
                c.arg("worker")
                    .arg("--cluster")
                    .arg(&cluster_file)
                    .arg("--id")
                    .arg(i.to_string())
                    .arg("--dir")
                    .arg(dir.join(format!("worker-{i}")))
                    .arg("--slots")
                    .arg(slots.to_string())
                    .arg("--lost-after-ms")
                    .arg(lost.to_string());
                // Only its first life ends early.
                if starts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                    if let Some(t) = exit_after {
                        c.arg("--exit-after").arg(t.to_string());
                    }
                }
                let log = std::fs::File::create(dir.join(format!("worker-{i}.log")))?;
                c.stderr(log).stdout(std::process::Stdio::null());
                Ok(c)
            }),
        );
    }
    for i in 0..n {
        sup.start(i)?;
    }
    let sup = std::sync::Arc::new(std::sync::Mutex::new(sup));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (sup, stop) = (sup.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let mut s = sup.lock().expect("supervisor");
                for i in 0..s.len() {
                    if s.exited(i).is_some() && restart {
                        let _ = s.start(i);
                    }
                }
            }
        })
    };
    let result = drive(&cfg, app, d);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    let mut sup = sup.lock().expect("supervisor");
    if result.is_ok() {
        let workers: Vec<String> = (0..sup.len())
            .map(|i| {
                sup.pid(i)
                    .and_then(|pid| peak_mb(&format!("/proc/{pid}/status")))
                    .map_or("?".into(), |m| format!("{m:.0}"))
            })
            .collect();
        let me = peak_mb("/proc/self/status").map_or("?".into(), |m| format!("{m:.0}"));
        eprintln!(
            "peak memory: driver {me} MB, workers {} MB",
            workers.join(" + ")
        );
    }
    sup.stop();
    result
}

/// A process's peak resident memory in MB (`VmHWM` of its /proc status file).
fn peak_mb(status: &str) -> Option<f64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let d = std::env::temp_dir().join(format!(
            "spark-run-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&d)?;
        Ok(TempDir(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            workers,
            slots,
            kill_worker,
            after_tasks,
            restart,
            dir,
            driver,
            app,
        } => run_local(
            workers,
            slots,
            kill_worker.zip(after_tasks),
            restart,
            dir,
            &driver,
            app,
        )?,
        Command::Driver {
            cluster,
            driver,
            app,
        } => {
            let cfg = ClusterConfig::load(&cluster)?;
            drive(&cfg, app, &driver)?;
        }
        Command::Worker {
            cluster,
            id,
            dir,
            slots,
            lost_after_ms,
            exit_after,
        } => {
            let cfg = ClusterConfig::load(&cluster)?;
            let opts = WorkerOptions {
                id: Id::from(id),
                dir,
                slots: slots as usize,
                lost_after: Duration::from_millis(lost_after_ms),
                exit_after: exit_after.unwrap_or(0) as usize,
            };
            cluster::run_worker(&cfg, &opts, apps::program)?;
        }
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
            let o = Options::parse(&variant, tol, iterations as usize, partitions as usize)
                .map_err(|e| anyhow::anyhow!(e))?;
            let loaded = start.elapsed();
            let ctx = Context::new(workers as usize);
            if let Some(n) = kill_worker_after {
                if workers < 2 {
                    bail!("--kill-worker-after needs at least 2 workers");
                }
                ctx.kill_after(1, n);
            }
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
