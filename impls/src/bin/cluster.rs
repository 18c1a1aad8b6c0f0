//! `cluster`: a local Raft KV cluster of `node` processes.
//!
//! `cluster raft --nodes 3 [--dir DIR] [--base-port P]`
//!
//! Writes `DIR/cluster.toml`, starts one `node` per id on 127.0.0.1 (data in `DIR/node-N/`, logs in
//! `DIR/node-N.log`), prints their addresses, and on Ctrl-C (or SIGTERM) stops them. Restarting on
//! the same DIR and ports recovers the data. Use `kv --cluster DIR/cluster.toml ...` to talk to it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use impls::raft::cluster::{sibling_binary, Cluster, ClusterSpec};
use impls::raft::{parse_ms_range, Timing};

#[derive(Parser)]
#[command(
    name = "cluster",
    about = "Start a local cluster of nodes; Ctrl-C stops it"
)]
struct Cli {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Subcommand)]
enum Kind {
    /// A Raft KV cluster.
    Raft {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
        nodes: u16,
        /// Where the cluster file, data and logs go.
        #[arg(long, default_value = "raft-cluster")]
        dir: PathBuf,
        /// Node i listens on this port + i; by default, free ports (with the same ports, a
        /// restarted cluster finds its data again).
        #[arg(long)]
        base_port: Option<u16>,
        /// The election timeout, LOW-HIGH milliseconds.
        #[arg(long, default_value = "300-600", value_parser = parse_ms_range)]
        election_ms: std::ops::Range<Duration>,
        /// Snapshot after this many applied entries.
        #[arg(long, default_value_t = 1000)]
        snapshot_every: u64,
    },
}

fn main() -> ExitCode {
    impls::raft::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match launch(cli.kind) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn launch(kind: Kind) -> Result<()> {
    let Kind::Raft {
        nodes,
        dir,
        base_port,
        election_ms,
        snapshot_every,
    } = kind;
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("installing the Ctrl-C handler")?;
    let mut cluster = Cluster::start(ClusterSpec {
        node_bin: sibling_binary("node"),
        dir: dir.clone(),
        nodes: nodes.into(),
        base_port,
        timing: Timing {
            election: election_ms,
            snapshot_every,
            ..Timing::default()
        },
    })
    .with_context(|| format!("starting the cluster in {}", dir.display()))?;
    for i in 0..cluster.len() {
        println!("node {i} {}", cluster.addr(i));
    }
    println!("cluster file {}", cluster.config_path.display());
    println!("Ctrl-C stops the cluster");
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for i in 0..cluster.len() {
                    if !cluster.is_running(i) {
                        eprintln!("cluster: node {i} exited; restarting it");
                        cluster.restart(i)?;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    cluster.stop();
    eprintln!("cluster: stopped");
    Ok(())
}
