//! `mr`: MapReduce over TCP on this machine.
//!
//! - `mr coordinator --inputs FILES... --reduces R --out DIR [--listen ADDR]`
//! - `mr worker --coordinator ADDR --app APP [--pattern P]` (works in its current folder)
//! - `mr run --app APP --inputs FILES... --reduces R --workers W --out DIR`: the coordinator and W
//!   worker processes; exits 0 when the job is done and every worker has exited.
//! - `mr sequential --app APP --inputs FILES... --out FILE`: the single-process reference.
//! - `--gfs CLUSTER` (of `run` and `worker`): the inputs are GFS files (`gfs put`), one map
//!   task per chunk, read from the worker's own chunkserver when it holds a replica; the
//!   outputs are committed to GFS as `GFS_OUT/mr-out-R` (`gfs get` reads them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use impls::config::ClusterConfig;
use impls::mapreduce::{apps, sequential, Chaos, CoordinatorService, Job, Worker, WorkerPhase};
use impls::node::{run, NodeOptions, Shutdown};
use impls::service::{self, NodeArgs, Tuning};
use impls::supervisor::Supervisor;
use models::mapreduce::output_name;
use stateright::actor::Id;

#[derive(Parser)]
#[command(
    name = "mr",
    about = "MapReduce (Dean & Ghemawat, OSDI 2004) over TCP on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct AppArgs {
    /// The application: wc, indexer or grep.
    #[arg(long)]
    app: String,
    /// The pattern of grep.
    #[arg(long)]
    pattern: Option<String>,
}

/// GFS as the job's file system.
#[derive(Args, Clone)]
struct GfsArgs {
    /// Read the inputs from GFS and write the outputs there: the GFS cluster file. The inputs
    /// are then GFS paths, split one map task per chunk.
    #[arg(long)]
    gfs: Option<PathBuf>,
    /// Where the outputs go in GFS: GFS_OUT/mr-out-R.
    #[arg(long, default_value = "/mr")]
    gfs_out: String,
}

/// Options of the workers, for `worker` and for the workers `run` starts.
#[derive(Args, Clone)]
struct WorkerArgs {
    /// Exit or stall at random before tasks (crash tests); `run` restarts workers that exit.
    #[arg(long)]
    crash: bool,
    /// The longest stall of --crash, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    max_delay_ms: u64,
    /// Extra milliseconds each task takes (parallelism tests).
    #[arg(long, default_value_t = 0)]
    slow_ms: u64,
    /// Append task start and end times to this file.
    #[arg(long)]
    log: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the coordinator.
    Coordinator {
        /// Input files, or byte ranges of them written `PATH@START+LEN`.
        #[arg(long, num_args = 1.., required = true)]
        inputs: Vec<String>,
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        reduces: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
        /// Seconds a task may run before it is given to another worker.
        #[arg(long, default_value_t = 10.0)]
        task_timeout: f64,
    },
    /// Run a worker in the current folder.
    Worker {
        #[arg(long)]
        coordinator: SocketAddr,
        #[command(flatten)]
        app: AppArgs,
        #[command(flatten)]
        worker: WorkerArgs,
        #[command(flatten)]
        gfs: GfsArgs,
        /// The GFS chunkserver on this worker's machine (its id in the cluster file).
        #[arg(long)]
        near: Option<usize>,
    },
    /// Run a whole job: the coordinator and the workers as processes.
    Run {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long, num_args = 1.., required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        reduces: u64,
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
        workers: u64,
        #[command(flatten)]
        gfs: GfsArgs,
        #[arg(long)]
        out: PathBuf,
        /// Inputs larger than this many MiB are split at line ends into several map tasks.
        #[arg(long, default_value_t = 16)]
        split_mb: u64,
        #[arg(long, default_value_t = 10.0)]
        task_timeout: f64,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// The sequential reference: one process, every pair in memory.
    Sequential {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long, num_args = 1.., required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mr: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn app_of(a: &AppArgs) -> Result<Arc<dyn apps::App>> {
    apps::by_name(&a.app, a.pattern.as_deref())
        .map(Arc::from)
        .map_err(anyhow::Error::msg)
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Coordinator {
            inputs,
            reduces,
            out,
            listen,
            task_timeout,
        } => coordinator(&inputs, reduces as usize, &out, listen, task_timeout),
        Cmd::Worker {
            coordinator,
            app,
            worker: w,
            gfs,
            near,
        } => {
            let gfs = match &gfs.gfs {
                Some(path) => {
                    let cluster = ClusterConfig::load(path)?;
                    let client = impls::gfs::client::GfsClient::connect(&cluster)
                        .context("connecting to GFS")?;
                    Some(impls::mapreduce::GfsIo {
                        client: std::sync::Mutex::new(client),
                        near: near.map(Id::from),
                        out_prefix: gfs.gfs_out.clone(),
                    })
                }
                None => None,
            };
            let worker = Worker {
                coordinator: Id::from(0),
                app: app_of(&app)?,
                dir: std::env::current_dir()?,
                chaos: w.crash.then_some(Chaos {
                    max_delay: Duration::from_millis(w.max_delay_ms),
                }),
                slow: Duration::from_millis(w.slow_ms),
                log: w.log,
                gfs,
            };
            // A worker id nobody else has: the coordinator answers it on its own connection.
            let id = 1 + (std::process::id() as usize) * 1024 + (now_nanos() % 1024) as usize;
            let mut opts = NodeOptions::new(Id::from(id));
            opts.peers.insert(Id::from(0), coordinator);
            run(worker, opts, Shutdown::new(), |s| *s == WorkerPhase::Exited)?;
            Ok(())
        }
        Cmd::Run {
            app,
            inputs,
            reduces,
            workers,
            gfs,
            out,
            split_mb,
            task_timeout,
            worker,
        } => {
            app_of(&app)?;
            launch(Launch {
                app,
                gfs,
                inputs,
                reduces: reduces as usize,
                workers: workers as usize,
                out,
                split_bytes: split_mb << 20,
                task_timeout,
                worker,
            })
        }
        Cmd::Sequential { app, inputs, out } => sequential(&*app_of(&app)?, &inputs, &out)
            .with_context(|| format!("writing {}", out.display())),
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn coordinator(
    inputs: &[String],
    reduces: usize,
    out: &Path,
    listen: SocketAddr,
    task_timeout: f64,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // Workers run in other folders: hand them absolute paths (keeping any byte range).
    let inputs: Vec<String> = inputs
        .iter()
        .map(|i| {
            if i.starts_with("gfs:") {
                return Ok(i.clone());
            }
            let (path, range) = match i.rsplit_once('@') {
                Some((p, r)) if r.contains('+') => (p, Some(r)),
                _ => (i.as_str(), None),
            };
            let path = std::fs::canonicalize(path).with_context(|| format!("input {path}"))?;
            Ok(match range {
                Some(r) => format!("{}@{r}", path.display()),
                None => path.display().to_string(),
            })
        })
        .collect::<Result<_>>()?;
    if !(task_timeout > 0.0 && task_timeout.is_finite()) {
        bail!("--task-timeout must be a positive number of seconds");
    }
    // The registry's coordinator (`node mapreduce`) runs the job kept in its data directory:
    // the output folder, where the workers commit their files.
    Job {
        inputs,
        reduces,
        task_timeout_s: task_timeout,
    }
    .write(out)
    .with_context(|| format!("writing the job into {}", out.display()))?;
    let mut cluster = ClusterConfig::default();
    cluster.nodes.insert(Id::from(0), listen);
    let config = out.join("mr-cluster.toml");
    std::fs::write(&config, cluster.to_toml())?;
    service::serve::<CoordinatorService>(&NodeArgs {
        config,
        id: 0,
        data_dir: out.to_path_buf(),
        tuning: Tuning::default(),
        bug: None,
        admin: false,
        seed: None,
        capacity: None,
        tls: Default::default(),
    })?;
    for r in 0..reduces {
        let path = out.join(output_name(r));
        if !path.exists() {
            bail!(
                "{} is missing although reduce task {r} reported",
                path.display()
            );
        }
    }
    Ok(())
}

struct Launch {
    app: AppArgs,
    gfs: GfsArgs,
    inputs: Vec<PathBuf>,
    reduces: usize,
    workers: usize,
    out: PathBuf,
    split_bytes: u64,
    task_timeout: f64,
    worker: WorkerArgs,
}

/// The input splits: each input, or for one larger than `limit` bytes, byte ranges of about
/// `limit` bytes that end at line ends (found by reading around each cut, not the whole file).
fn split_inputs(inputs: &[PathBuf], limit: u64) -> Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut splits = Vec::new();
    for input in inputs {
        let input =
            std::fs::canonicalize(input).with_context(|| format!("input {}", input.display()))?;
        let len = std::fs::metadata(&input)?.len();
        if len <= limit {
            splits.push(input.display().to_string());
            continue;
        }
        let mut f = std::fs::File::open(&input)?;
        let mut start = 0u64;
        while start < len {
            let mut end = (start + limit).min(len);
            // Move the cut to just after the next line end.
            let mut buf = [0u8; 4096];
            'cut: while end < len {
                f.seek(SeekFrom::Start(end))?;
                let n = f.read(&mut buf)?;
                if n == 0 {
                    end = len;
                    break;
                }
                for (i, b) in buf[..n].iter().enumerate() {
                    if *b == b'\n' {
                        end += i as u64 + 1;
                        break 'cut;
                    }
                }
                end += n as u64;
            }
            splits.push(impls::mapreduce::split_name(&input, start, end - start));
            start = end;
        }
    }
    Ok(splits)
}

fn launch(l: Launch) -> Result<()> {
    std::fs::create_dir_all(&l.out).with_context(|| format!("creating {}", l.out.display()))?;
    let out = std::fs::canonicalize(&l.out)?;
    let (inputs, chunkservers) = match &l.gfs.gfs {
        Some(cluster) => gfs_splits(cluster, &l.inputs)?,
        None => (split_inputs(&l.inputs, l.split_bytes)?, 0),
    };
    let _ = std::fs::remove_file(out.join("mr-locality"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let exe = std::env::current_exe()?;
    let mut procs = Supervisor::new();
    let coordinator = {
        let (exe, addr, out, inputs) = (exe.clone(), addr.clone(), out.clone(), inputs.clone());
        let (reduces, task_timeout) = (l.reduces, l.task_timeout);
        procs.add(
            "coordinator",
            Box::new(move || {
                let mut c = Command::new(&exe);
                c.arg("coordinator")
                    .args([
                        "--reduces",
                        &reduces.to_string(),
                        "--listen",
                        &addr,
                        "--task-timeout",
                        &task_timeout.to_string(),
                    ])
                    .arg("--out")
                    .arg(&out)
                    .arg("--inputs")
                    .args(&inputs);
                Ok(c)
            }),
        )
    };
    procs.start(coordinator)?;
    // Start the workers once the coordinator listens, so that their first requests are not lost
    // to a refused connection (they would be asked again, a few hundred milliseconds later).
    let ready_by = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if procs.exited(coordinator).is_some() || Instant::now() > ready_by {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let workers: Vec<usize> = (0..l.workers)
        .map(|i| {
            let (exe, addr, out, app, worker, gfs) = (
                exe.clone(),
                addr.clone(),
                out.clone(),
                l.app.clone(),
                l.worker.clone(),
                l.gfs.clone(),
            );
            procs.add(
                format!("worker {i}"),
                Box::new(move || {
                    let mut c = Command::new(&exe);
                    c.current_dir(&out)
                        .args(["worker", "--coordinator", &addr, "--app", &app.app])
                        .args([
                            "--max-delay-ms",
                            &worker.max_delay_ms.to_string(),
                            "--slow-ms",
                            &worker.slow_ms.to_string(),
                        ]);
                    if let Some(p) = &app.pattern {
                        c.args(["--pattern", p]);
                    }
                    if worker.crash {
                        c.arg("--crash");
                    }
                    if let Some(cluster) = &gfs.gfs {
                        // Worker i shares a machine with chunkserver 1 + i mod their number.
                        c.arg("--gfs")
                            .arg(std::path::absolute(cluster)?)
                            .args(["--gfs-out", &gfs.gfs_out])
                            .args(["--near", &(1 + i % chunkservers.max(1)).to_string()]);
                    }
                    if let Some(log) = &worker.log {
                        c.arg("--log").arg(std::path::absolute(log)?);
                    }
                    Ok(c)
                }),
            )
        })
        .collect();
    for &w in &workers {
        procs.start(w)?;
    }
    let status = loop {
        if let Some(status) = procs.exited(coordinator) {
            break status;
        }
        for &w in &workers {
            // A crashing worker that exited is started again (the lab's crash test).
            if l.worker.crash && procs.exited(w).is_some_and(|s| !s.success()) {
                procs.start(w)?;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Workers exit by themselves once told the job is done; wait for them, then give up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stuck = 0;
    for &w in &workers {
        loop {
            if procs.exited(w).is_some() {
                break;
            }
            if Instant::now() > deadline {
                procs.kill(w);
                stuck += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if !status.success() {
        bail!("the coordinator failed ({status})");
    }
    if stuck > 0 {
        bail!("{stuck} workers did not exit after the job was done");
    }
    if l.gfs.gfs.is_some() {
        let log = std::fs::read_to_string(out.join("mr-locality")).unwrap_or_default();
        let local = log.lines().filter(|l| *l == "local").count();
        eprintln!(
            "{} map splits from GFS: {local} read from the worker's own chunkserver, {} from another",
            inputs.len(),
            log.lines().count() - local
        );
    }
    Ok(())
}

/// The map splits of GFS files: one per chunk (§3.4 of MapReduce: "GFS divides each file into
/// 64 MB blocks"), each without the records whose last copy is in a later chunk (so that a
/// record duplicated by a retried append is counted once; every replica of a chunk is read,
/// since an earlier, failed copy may be on some replicas only); and the number of
/// chunkservers.
fn gfs_splits(cluster: &Path, inputs: &[PathBuf]) -> Result<(Vec<String>, usize)> {
    let config = ClusterConfig::load(cluster)?;
    let mut c = impls::gfs::client::GfsClient::connect(&config).context("connecting to GFS")?;
    let mut splits = Vec::new();
    for input in inputs {
        let path = input.to_string_lossy();
        let chunks = c
            .open(&path)
            .with_context(|| format!("opening {path} in GFS"))?;
        // Per chunk, the ids on any of its replicas; per id, the last chunk it is in.
        let mut ids: Vec<std::collections::BTreeSet<u64>> = Vec::new();
        let mut last: std::collections::HashMap<u64, usize> = Default::default();
        for (i, info) in chunks.iter().enumerate() {
            let mut here = std::collections::BTreeSet::new();
            let mut read = false;
            for loc in &info.locations {
                if let Ok(bytes) = c.read_replica(info.handle, *loc) {
                    read = true;
                    here.extend(
                        impls::gfs::client::scan(i as u32, &bytes)
                            .iter()
                            .map(|r| r.id),
                    );
                }
            }
            if !read {
                bail!("{path}: no replica of chunk {i} could be read");
            }
            for id in &here {
                last.insert(*id, i);
            }
            ids.push(here);
        }
        for (i, here) in ids.iter().enumerate() {
            let skip: Vec<u64> = here.iter().copied().filter(|id| last[id] > i).collect();
            splits.push(impls::mapreduce::gfs_split_name(&path, i, &skip));
        }
    }
    if splits.is_empty() {
        bail!("the GFS inputs have no chunks");
    }
    Ok((splits, config.nodes.len().saturating_sub(1)))
}
