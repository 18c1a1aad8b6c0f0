//! `kv`: a client of the Raft KV cluster.
//!
//! `kv --cluster cluster.toml put K V | get K | append K V`
//!
//! Sends the command with a fresh client id and sequence number 1, follows `NotLeader` redirects,
//! and retries on another server after a timeout, until `--timeout` seconds have passed. Prints the
//! value read (`get`; nothing for a key never written) or `ok`. Exits 1 when no server answered in
//! time (the command may or may not take effect), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use impls::config::ClusterConfig;
use impls::raft::client::KvClient;
use models::raft::kv::{KvOp, KvRet};

#[derive(Parser)]
#[command(name = "kv", about = "A client of the Raft KV cluster")]
struct Cli {
    /// The cluster file.
    #[arg(long)]
    cluster: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    #[command(subcommand)]
    op: Op,
}

#[derive(Subcommand)]
enum Op {
    /// Sets KEY to VALUE.
    Put { key: String, value: String },
    /// Prints KEY's value.
    Get { key: String },
    /// Appends VALUE to KEY's value.
    Append { key: String, value: String },
}

fn main() -> ExitCode {
    impls::raft::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match call(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kv: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn call(cli: Cli) -> Result<ExitCode> {
    anyhow::ensure!(
        cli.timeout > 0.0 && cli.timeout.is_finite(),
        "--timeout must be a positive number of seconds"
    );
    let cluster = ClusterConfig::load(&cli.cluster)?;
    anyhow::ensure!(!cluster.nodes.is_empty(), "the cluster file lists no nodes");
    let op = match cli.op {
        Op::Put { key, value } => KvOp::Put(key, value),
        Op::Get { key } => KvOp::Get(key),
        Op::Append { key, value } => KvOp::Append(key, value),
    };
    let mut client = KvClient::new(&cluster);
    match client.call(op, Duration::from_secs_f64(cli.timeout)) {
        Ok(KvRet::Ok) => println!("ok"),
        Ok(KvRet::Value(Some(v))) => println!("{v}"),
        Ok(KvRet::Value(None)) => {}
        Err(e) => {
            eprintln!("kv: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
