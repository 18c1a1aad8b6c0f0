//! `client PROTOCOL`: one operation against a cluster of a registered protocol, run by the
//! model's own client actor.
//!
//! `client raft --cluster cluster.toml [--tls-dir DIR | --insecure] put K V | get K | append K V`
//!
//! With TLS (unless the cluster file says `insecure = true`), it presents `client.pem` from the
//! cluster file's directory.
//!
//! The client actor sends the operation with a fresh client id and request id 1, follows
//! redirects, and retries on another server after a timeout, until `--timeout` seconds have
//! passed. Prints the result (`ok`, or the value read; a key never written reads as an empty
//! line). Exits 1 when no result came in time (the operation may or may not take effect), 2 on
//! bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use impls::config::ClusterConfig;
use impls::service;

#[derive(Parser)]
#[command(
    name = "client",
    version,
    about = "One operation against a cluster, by the model's client actor",
    after_help = service::protocols_help(service::Listing::Operations)
)]
struct Cli {
    /// The protocol (see the list below).
    protocol: String,
    /// The cluster file.
    #[arg(long)]
    cluster: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The operation and its arguments (see the list below).
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
    op: Vec<String>,
    #[command(flatten)]
    tls: impls::tls::TlsFlags,
}

fn main() -> ExitCode {
    impls::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match call(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("client: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn call(cli: Cli) -> Result<ExitCode> {
    anyhow::ensure!(
        cli.timeout > 0.0 && cli.timeout.is_finite(),
        "--timeout must be a positive number of seconds"
    );
    let p = service::find(&cli.protocol).map_err(anyhow::Error::msg)?;
    let mut cluster = ClusterConfig::load(&cli.cluster)?;
    cli.tls.apply(&mut cluster);
    anyhow::ensure!(!cluster.nodes.is_empty(), "the cluster file lists no nodes");
    match p.call(&cluster, &cli.op, Duration::from_secs_f64(cli.timeout))? {
        Ok(shown) => println!("{shown}"),
        Err(e) => {
            eprintln!("client: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
