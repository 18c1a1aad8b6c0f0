//! `cluster`: a local cluster of `node` processes of a registered protocol, and the commands
//! that inspect and steer it from another shell.
//!
//! - `cluster PROTOCOL --nodes 3 [--dir DIR] [--base-port P] [--no-restart] [--bug NAME] ...`
//!   writes `DIR/cluster.toml`, starts one `node PROTOCOL` per id on 127.0.0.1 (data in
//!   `DIR/node-N/`, logs in `DIR/node-N.log`), prints their addresses, restarts a node that exits
//!   (saying so on stderr) unless `--no-restart` or `cluster kill` keeps it down, and on Ctrl-C (or
//!   SIGTERM) stops them. Restarting on the same DIR and ports recovers the data.
//! - `cluster status [--dir DIR]`: each node's address, pid, up or down, and its role where the
//!   protocol has roles (`leader of term 3`).
//! - `cluster kill N [--dir DIR]`: `kill -9` node N and keep it down.
//! - `cluster start N [--dir DIR]`: let node N run again (the running `cluster` restarts it).
//! - `cluster add N [--dir DIR]`, `cluster remove N [--dir DIR]`: add node N to the
//!   configuration, or remove it (Raft, thesis §4: `cluster raft --nodes 4 --members 3` starts
//!   node 3 outside it); returns once the leader has committed the change.
//!
//! Talk to it with `client PROTOCOL --cluster DIR/cluster.toml ...`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use impls::cluster::{down_path, pid_path, sibling_binary, Cluster, ClusterSpec};
use impls::config::ClusterConfig;
use impls::node::{query_counts, query_status, AdminTarget};
use impls::service::{self, parse_ms_range};
use impls::tls::Who;

#[derive(Parser)]
#[command(
    name = "cluster",
    version,
    about = "A local cluster of nodes of a registered protocol; Ctrl-C stops it",
    override_usage = "cluster <PROTOCOL> [OPTIONS]\n       cluster status [--dir DIR]\n       cluster kill <N> [--dir DIR]\n       cluster start <N> [--dir DIR]\n       cluster add|remove <N> [--dir DIR]",
    after_help = service::protocols_help(service::Listing::All)
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Each node's address, pid, up or down, and role.
    Status {
        #[arg(long, default_value = "raft-cluster")]
        dir: PathBuf,
    },
    /// `kill -9` node N of a running cluster and keep it down until `cluster start N`.
    Kill {
        n: usize,
        #[arg(long, default_value = "raft-cluster")]
        dir: PathBuf,
    },
    /// Let node N of a running cluster run again.
    Start {
        n: usize,
        #[arg(long, default_value = "raft-cluster")]
        dir: PathBuf,
    },
    /// Add node N to the configuration (Raft: AddServer, thesis §4); waits for the commit.
    Add {
        n: usize,
        #[arg(long, default_value = "raft-cluster")]
        dir: PathBuf,
    },
    /// Remove node N from the configuration (Raft: RemoveServer); waits for the commit.
    Remove {
        n: usize,
        #[arg(long, default_value = "raft-cluster")]
        dir: PathBuf,
    },
    /// Run a cluster of PROTOCOL (the first word is the protocol's name).
    #[command(external_subcommand)]
    Run(Vec<String>),
}

#[derive(Parser)]
#[command(name = "cluster PROTOCOL", no_binary_name = true)]
struct RunArgs {
    protocol: String,
    #[command(flatten)]
    opts: RunOpts,
}

#[derive(Args)]
struct RunOpts {
    /// How many nodes: by default 3, or the number the protocol always runs on (aurora 7,
    /// memcache 4, blockstack 5).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: Option<u16>,
    /// Where the cluster file, data and logs go; by default PROTOCOL-cluster.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Node i listens on this port + i; by default, free ports (with the same ports, a
    /// restarted cluster finds its data again).
    #[arg(long)]
    base_port: Option<u16>,
    /// Leave a node that exits down instead of restarting it.
    #[arg(long)]
    no_restart: bool,
    /// The protocol's timeout, LOW-HIGH milliseconds (Raft: the election timeout).
    #[arg(long, alias = "election-ms", value_parser = parse_ms_range)]
    timeout_ms: Option<std::ops::Range<Duration>>,
    /// Snapshot after this many applied entries (Raft).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Raft: Gets go through the log like writes, instead of ReadIndex.
    #[arg(long, conflicts_with = "lease_reads")]
    log_reads: bool,
    /// Raft: a leader that holds a lease answers Gets without a round of heartbeats (thesis
    /// §6.4.1); safe only while clocks drift by at most --drift-bound.
    #[arg(long)]
    lease_reads: bool,
    /// Raft: the clock drift, in percent, a leader allows for when it sizes its lease (10 by
    /// default).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=90))]
    drift_bound: Option<u32>,
    /// Raft: the leader's AppendEntries wait for its own write of the entries (no parallel
    /// write, thesis §10.2.1).
    #[arg(long)]
    no_parallel_write: bool,
    /// Raft: the initial configuration is the first N nodes; the others wait for `cluster add`.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    members: Option<u16>,
    /// GFS's chunk size in bytes (§2.5; 64 MB by default).
    #[arg(long, value_parser = clap::value_parser!(u64).range(4096..=(1 << 32)))]
    chunk_bytes: Option<u64>,
    /// A Bitcoin chain's nBits in hex (its genesis block's: the target never changes).
    #[arg(long, value_parser = service::parse_bits)]
    pow_bits: Option<u32>,
    /// Run every node with one of the model's seeded bugs.
    #[arg(long)]
    bug: Option<String>,
    /// Each node handles at most this many messages a second (`node --capacity`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    capacity: Option<u32>,
    /// Plaintext instead of mutual TLS: any process that reaches a port may speak for a node,
    /// a client or an administrator (for reading traffic, and for tests).
    #[arg(long)]
    insecure: bool,
}

fn main() -> ExitCode {
    impls::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Status { dir } => status(&dir),
        Command::Kill { n, dir } => kill(&dir, n),
        Command::Start { n, dir } => start(&dir, n),
        Command::Add { n, dir } => change(&dir, n, true),
        Command::Remove { n, dir } => change(&dir, n, false),
        Command::Run(words) => match RunArgs::try_parse_from(&words) {
            Ok(args) => launch(args),
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn launch(args: RunArgs) -> Result<()> {
    let p = service::find(&args.protocol).map_err(anyhow::Error::msg)?;
    let o = args.opts;
    let dir = o
        .dir
        .unwrap_or_else(|| PathBuf::from(format!("{}-cluster", p.name())));
    let mut tuning = p.tuning();
    if let Some(t) = o.timeout_ms {
        tuning.timeout = t;
    }
    if let Some(n) = o.snapshot_every {
        tuning.snapshot_every = n;
    }
    tuning.log_reads |= o.log_reads;
    tuning.lease_reads |= o.lease_reads;
    if let Some(d) = o.drift_bound {
        tuning.drift_bound = d;
    }
    tuning.parallel_write &= !o.no_parallel_write;
    if let Some(m) = o.members {
        tuning.members = Some(m.into());
    }
    if let Some(n) = o.chunk_bytes {
        tuning.chunk_bytes = n;
    }
    if let Some(bits) = o.pow_bits {
        tuning.pow_bits = bits;
    }
    let bug = service::parse_bug_flag(p, o.bug.as_deref())?;
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("installing the Ctrl-C handler")?;
    let nodes = o.nodes.map_or(p.nodes().unwrap_or(3), usize::from);
    // Markers of an earlier run do not keep nodes down.
    for i in 0..nodes {
        let _ = std::fs::remove_file(down_path(&dir, i));
    }
    let start = if o.insecure {
        eprintln!("cluster: --insecure: plaintext, no authentication; any process that reaches these ports may speak for a node, a client or an administrator");
        Cluster::start_plain
    } else {
        Cluster::start
    };
    let mut cluster = start(ClusterSpec {
        protocol: p.name().to_string(),
        node_bin: sibling_binary("node"),
        dir: dir.clone(),
        nodes,
        base_port: o.base_port,
        tuning,
        bug,
        seed: None,
        capacity: o.capacity,
    })
    .with_context(|| format!("starting the cluster in {}", dir.display()))?;
    for i in 0..cluster.len() {
        println!("node {i} {}", cluster.addr(i));
    }
    println!("cluster file {}", cluster.config_path.display());
    if !o.insecure {
        println!("mutual TLS: certificates in {}", dir.display());
    }
    println!("Ctrl-C stops the cluster");
    let mut said_down = vec![false; cluster.len()];
    loop {
        match rx.recv_timeout(Duration::from_millis(300)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        for (i, said) in said_down.iter_mut().enumerate() {
            if cluster.is_running(i) {
                *said = false;
                continue;
            }
            let kept_down = down_path(&dir, i).exists();
            if kept_down || o.no_restart {
                if !*said {
                    let why = if kept_down {
                        format!("kept down; `cluster start {i}` lets it run again")
                    } else {
                        "--no-restart: left down".to_string()
                    };
                    eprintln!("cluster: node {i} is down ({why})");
                    *said = true;
                }
                // A kill from another shell leaves the child for us to reap.
                cluster.kill(i);
                continue;
            }
            if *said {
                eprintln!("cluster: node {i} may run again; starting it");
            } else {
                eprintln!("cluster: node {i} exited; restarting it");
            }
            cluster.restart(i)?;
            eprintln!(
                "cluster: node {i} restarted (pid {})",
                cluster.pid(i).unwrap_or(0)
            );
        }
    }
    cluster.stop();
    eprintln!("cluster: stopped");
    Ok(())
}

fn config(dir: &Path) -> Result<ClusterConfig> {
    ClusterConfig::load(&dir.join("cluster.toml"))
        .with_context(|| format!("no cluster in {} (give --dir)", dir.display()))
}

/// The pid in node `i`'s pid file, if its process is alive.
fn live_pid(dir: &Path, i: usize) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_path(dir, i))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn status(dir: &Path) -> Result<()> {
    let config = config(dir)?;
    let tls = config.tls(Who::Admin)?;
    for (id, addr) in &config.nodes {
        let i = usize::from(*id);
        let pid = live_pid(dir, i);
        let to = AdminTarget {
            tls: tls.as_deref(),
            node: i,
            addr: *addr,
        };
        let role = query_status(to);
        let up = pid.is_some() && role.is_ok();
        let pid = pid.map_or("-".to_string(), |p| p.to_string());
        let mut detail = match (&role, down_path(dir, i).exists()) {
            (_, true) => "kept down (cluster start to run it again)".to_string(),
            (Ok(Some(r)), _) => r.clone(),
            (Ok(None), _) => String::new(),
            (Err(_), _) => String::new(),
        };
        // What it has handled since it started, where its service counts messages.
        let counts = if up {
            query_counts(to).unwrap_or_default()
        } else {
            Default::default()
        };
        if !counts.is_empty() {
            let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            detail = format!("{detail}; handled {}", counts.join(", "));
        }
        println!(
            "node {i}  {addr:<21}  pid {pid:<8}  {:<4}  {detail}",
            if up { "up" } else { "down" }
        );
    }
    Ok(())
}

fn kill(dir: &Path, n: usize) -> Result<()> {
    let config = config(dir)?;
    anyhow::ensure!(
        config.nodes.contains_key(&stateright::actor::Id::from(n)),
        "the cluster has no node {n}"
    );
    std::fs::write(down_path(dir, n), b"")?;
    match live_pid(dir, n) {
        Some(pid) => {
            let status = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .context("running kill")?;
            anyhow::ensure!(status.success(), "kill -9 {pid} failed");
            println!("node {n} (pid {pid}) killed; it stays down until `cluster start {n}`");
        }
        None => println!("node {n} is not running; it stays down until `cluster start {n}`"),
    }
    Ok(())
}

/// Adds or removes node `n` from the configuration, through the leader.
fn change(dir: &Path, n: usize, add: bool) -> Result<()> {
    let config = config(dir)?;
    anyhow::ensure!(
        config.nodes.contains_key(&stateright::actor::Id::from(n)),
        "the cluster has no node {n}"
    );
    let tls = config.tls(Who::Admin)?;
    let addrs: Vec<_> = config.nodes.values().copied().collect();
    let admin = |i: usize| AdminTarget {
        tls: tls.as_deref(),
        node: i,
        addr: addrs[i],
    };
    impls::cluster::change_configuration(addrs.len(), &admin, 0, n, add, Duration::from_secs(20))
        .with_context(|| format!("{} node {n}", if add { "adding" } else { "removing" }))?;
    println!(
        "node {n} {} the configuration (committed)",
        if add { "added to" } else { "removed from" }
    );
    Ok(())
}

fn start(dir: &Path, n: usize) -> Result<()> {
    let config = config(dir)?;
    anyhow::ensure!(
        config.nodes.contains_key(&stateright::actor::Id::from(n)),
        "the cluster has no node {n}"
    );
    match std::fs::remove_file(down_path(dir, n)) {
        Ok(()) => println!("node {n} may run again; the running cluster restarts it"),
        Err(_) => println!("node {n} was not kept down"),
    }
    Ok(())
}
