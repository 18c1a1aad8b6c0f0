//! `node`: one server of a Raft KV cluster: the model's `RaftActor` over TCP.
//!
//! `node --config cluster.toml --id N --data-dir DIR [--election-ms 300-600] [--heartbeat-ms 50]
//! [--snapshot-every 1000] [--admin]`
//!
//! Listens on its address in the cluster file, talks to the other nodes there, serves clients
//! (any other id), keeps its Raft storage in DIR (saved before any message that depends on it is
//! sent; a checkpoint and a write-ahead log, see `impls::raft::wal`), and with `--admin` takes fault commands (partitions, loss, delay) for tests. Runs until
//! killed; a restart on the same DIR recovers from what was saved. Logs go to stderr (`RUST_LOG`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use impls::config::ClusterConfig;
use impls::node::{run_with, NodeOptions, Shutdown};
use impls::raft::wal::RaftWal;
use impls::raft::{init_tracing, parse_ms_range, server, Timing};
use stateright::actor::Id;

#[derive(Parser)]
#[command(
    name = "node",
    about = "A Raft KV server (the checked model's actor) over TCP"
)]
struct Cli {
    /// The cluster file: `[nodes]` id = "host:port".
    #[arg(long)]
    config: PathBuf,
    /// This node's id in the cluster file.
    #[arg(long)]
    id: usize,
    /// Where this node's Raft storage lives.
    #[arg(long)]
    data_dir: PathBuf,
    /// The randomised election timeout, LOW-HIGH milliseconds (§5.2).
    #[arg(long, default_value = "300-600", value_parser = parse_ms_range)]
    election_ms: std::ops::Range<std::time::Duration>,
    /// The leader's heartbeat interval, milliseconds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_ms: u64,
    /// Snapshot after this many applied entries; 0 never (§7).
    #[arg(long, default_value_t = 1000)]
    snapshot_every: u64,
    /// Run with one of the model's seeded bugs (for tests that must catch it).
    #[arg(long, value_parser = impls::raft::parse_bug)]
    bug: Option<models::raft::RaftBug>,
    /// Accept fault commands (partitions, loss, delay) from administrator connections.
    #[arg(long)]
    admin: bool,
}

fn main() -> ExitCode {
    init_tracing("info");
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

fn serve(cli: Cli) -> Result<()> {
    let cluster = ClusterConfig::load(&cli.config)?;
    let id = Id::from(cli.id);
    let timing = Timing {
        election: cli.election_ms,
        heartbeat: std::time::Duration::from_millis(cli.heartbeat_ms),
        snapshot_every: cli.snapshot_every,
        bug: cli.bug,
    };
    if let Some(bug) = cli.bug {
        tracing::warn!(bug = bug.name(), "running with a seeded bug");
    }
    let actor = server(&cluster, id, &timing)?;
    let addr = cluster.nodes[&id];
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let mut opts = NodeOptions::new(id);
    opts.listen = Some(Arc::new(listener));
    opts.peers = cluster.nodes.clone();
    opts.peers.remove(&id);
    opts.accept_clients = true;
    opts.accept_admin = cli.admin;
    let store = RaftWal::new(cli.data_dir);
    tracing::info!(id = cli.id, %addr, "serving");
    run_with(actor, opts, Some(store), Shutdown::new(), |_| false)?;
    Ok(())
}
