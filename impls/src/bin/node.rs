//! `node PROTOCOL`: one server of a cluster of a registered protocol (`node --help` lists them):
//! the model's actor over TCP.
//!
//! `node raft --config cluster.toml --id N --data-dir DIR [--timeout-ms 300-600]
//! [--heartbeat-ms 50] [--snapshot-every 1000] [--no-parallel-write] [--bug NAME] [--seed N] [--admin]
//! [--tls-dir DIR | --insecure]`
//!
//! Listens on its address in the cluster file, talks to the other nodes there, serves clients
//! (any other id), keeps its storage in DIR (saved before any message that depends on it is
//! sent), and with `--admin` takes fault commands (partitions, loss, delay) and status queries.
//! Runs until killed; a restart on the same DIR recovers from what was saved. Logs go to stderr
//! (`RUST_LOG`); role changes (`became leader of term 3`) and injected faults at info.
//! Connections are mutual TLS with `node-N.pem` from the cluster file's directory (or
//! `--tls-dir`); `--insecure` (or `insecure = true` in the cluster file) is plaintext, with a
//! warning at start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use impls::service::{self, parse_ms_range, NodeArgs};

#[derive(Parser)]
#[command(
    name = "node",
    version,
    about = "A server of a registered protocol (the checked model's actor) over TCP",
    after_help = service::protocols_help(service::Listing::All)
)]
struct Cli {
    /// The protocol (see the list below).
    protocol: String,
    /// The cluster file: `[nodes]` id = "host:port".
    #[arg(long)]
    config: PathBuf,
    /// This node's id in the cluster file.
    #[arg(long)]
    id: usize,
    /// Where this node's storage lives.
    #[arg(long)]
    data_dir: PathBuf,
    /// The protocol's timeout, LOW-HIGH milliseconds (Raft: the election timeout, §5.2).
    #[arg(long, alias = "election-ms", value_parser = parse_ms_range)]
    timeout_ms: Option<std::ops::Range<std::time::Duration>>,
    /// A leader's heartbeat interval, milliseconds (Raft).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_ms: Option<u64>,
    /// Snapshot after this many applied entries; 0 never (Raft §7).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Raft: Gets go through the log like writes, instead of ReadIndex (thesis §6.4).
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
    /// Raft: the leader's AppendEntries wait for its own write of the entries instead of
    /// leaving while it writes them (thesis §10.2.1's parallel write, on by default).
    #[arg(long)]
    no_parallel_write: bool,
    /// Raft: keys and client sessions per InstallSnapshot chunk (Figure 13; 4096 by default).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_chunk: Option<u64>,
    /// Raft: the initial configuration is the first N nodes of the cluster file (thesis §4).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    members: Option<u16>,
    /// GFS's chunk size in bytes (§2.5; 64 MB by default).
    #[arg(long, value_parser = clap::value_parser!(u64).range(4096..=(1 << 32)))]
    chunk_bytes: Option<u64>,
    /// The shortest session timeout a ZooKeeper server grants, milliseconds (4000 by default).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    session_min_ms: Option<u64>,
    /// A Bitcoin chain's nBits in hex (its genesis block's: the target never changes).
    #[arg(long, value_parser = service::parse_bits)]
    pow_bits: Option<u32>,
    /// Run with one of the model's seeded bugs (for tests that must catch it).
    #[arg(long)]
    bug: Option<String>,
    /// The seed of the node's random draws (timers, injected faults); logged when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Handle at most this many messages a second (a benchmark's per-node service capacity:
    /// nodes sharing a machine behave like machines of their own).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    capacity: Option<u32>,
    /// Accept fault commands (partitions, loss, delay) and status queries from administrators.
    #[arg(long)]
    admin: bool,
    #[command(flatten)]
    tls: impls::tls::TlsFlags,
}

fn main() -> ExitCode {
    impls::init_tracing("info");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match serve(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let p = service::find(&cli.protocol).map_err(anyhow::Error::msg)?;
    let mut tuning = p.tuning();
    if let Some(t) = cli.timeout_ms {
        tuning.timeout = t;
    }
    if let Some(h) = cli.heartbeat_ms {
        tuning.heartbeat = std::time::Duration::from_millis(h);
    }
    if let Some(n) = cli.snapshot_every {
        tuning.snapshot_every = n;
    }
    tuning.log_reads |= cli.log_reads;
    tuning.lease_reads |= cli.lease_reads;
    if let Some(d) = cli.drift_bound {
        tuning.drift_bound = d;
    }
    tuning.parallel_write &= !cli.no_parallel_write;
    if let Some(n) = cli.snapshot_chunk {
        tuning.snapshot_chunk = n;
    }
    if let Some(m) = cli.members {
        tuning.members = Some(m.into());
    }
    if let Some(n) = cli.chunk_bytes {
        tuning.chunk_bytes = n;
    }
    if let Some(bits) = cli.pow_bits {
        tuning.pow_bits = bits;
    }
    if let Some(ms) = cli.session_min_ms {
        tuning.session_min = std::time::Duration::from_millis(ms);
    }
    let bug = service::parse_bug_flag(p, cli.bug.as_deref())?;
    p.run_node(&NodeArgs {
        config: cli.config,
        id: cli.id,
        data_dir: cli.data_dir,
        tuning,
        bug,
        admin: cli.admin,
        seed: cli.seed,
        capacity: cli.capacity,
        tls: cli.tls,
    })
}
