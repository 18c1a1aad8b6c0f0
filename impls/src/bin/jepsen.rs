//! `jepsen`: a Jepsen-style test of the Raft KV cluster.
//!
//! `jepsen raft --nodes 3 --clients 4 --duration 20 --nemesis kill,partition,loss [--seed N] [--json]`
//!
//! Starts a cluster, runs concurrent clients doing random get/put/append on a few keys, injects
//! faults meanwhile, writes the history (`DIR/history.jsonl`), checks it for linearizability, and
//! prints the verdict, the operation counts and the faults. Exit 0 when the history is
//! linearizable and an operation succeeded after the last fault healed; 1 when it is not
//! linearizable; 2 on bad usage or a failure to run; 3 when the verdict is unknown or nothing
//! succeeded after the faults.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use impls::raft::cluster::sibling_binary;
use impls::raft::jepsen::{run, JepsenOpts, Nemesis};
use impls::raft::Timing;

#[derive(Parser)]
#[command(
    name = "jepsen",
    about = "Fault injection against a local cluster, checked histories"
)]
struct Cli {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Subcommand)]
enum Kind {
    /// The Raft KV cluster.
    Raft {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
        nodes: u16,
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
        clients: u16,
        /// Seconds of workload; faults stop 3 s before the end.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Faults to inject, comma-separated: kill, partition, loss; `none` for none.
        #[arg(long, default_value = "kill,partition,loss")]
        nemesis: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many keys the clients share.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
        keys: u16,
        /// Seconds a client waits for one operation.
        #[arg(long, default_value_t = 2.0)]
        op_timeout: f64,
        /// Where the cluster and the history go.
        #[arg(long, default_value = "jepsen-raft")]
        dir: PathBuf,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Run the nodes with one of the model's seeded bugs (stale-read, ...): the test should
        /// then find the history not linearizable.
        #[arg(long, value_parser = impls::raft::parse_bug)]
        bug: Option<models::raft::RaftBug>,
    },
}

fn main() -> ExitCode {
    impls::raft::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match test(cli.kind) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jepsen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn test(kind: Kind) -> Result<ExitCode> {
    let Kind::Raft {
        nodes,
        clients,
        duration,
        nemesis,
        seed,
        keys,
        op_timeout,
        dir,
        json,
        bug,
    } = kind;
    anyhow::ensure!(
        duration > 0.0 && duration.is_finite(),
        "--duration must be a positive number of seconds"
    );
    anyhow::ensure!(
        op_timeout > 0.0 && op_timeout.is_finite(),
        "--op-timeout must be a positive number of seconds"
    );
    let nemesis: Vec<Nemesis> = if nemesis == "none" {
        Vec::new()
    } else {
        nemesis
            .split(',')
            .map(|s| s.trim().parse().map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?
    };
    let opts = JepsenOpts {
        node_bin: sibling_binary("node"),
        dir,
        nodes: nodes.into(),
        clients: clients.into(),
        duration: Duration::from_secs_f64(duration),
        nemesis,
        seed,
        keys: keys.into(),
        op_timeout: Duration::from_secs_f64(op_timeout),
        timing: Timing {
            election: Duration::from_millis(150)..Duration::from_millis(300),
            heartbeat: Duration::from_millis(30),
            snapshot_every: 200,
            bug,
        },
    };
    let report = run(&opts)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.verdict);
        println!(
            "operations: {} ok, {} failed, {} indefinite; {} ok after the last fault healed",
            report.ok, report.failed, report.indefinite, report.ok_after_heal
        );
        if let Some(f) = &report.failure {
            println!("counterexample: {f}");
        }
        println!("faults: {}", report.faults.len());
        for f in &report.faults {
            println!(
                "  {:6.2}s - {:6.2}s  {:?}: {}",
                f.start, f.healed, f.kind, f.detail
            );
        }
        println!(
            "history: {} ({:.1} s run, checked in {:.2} s)",
            report.history.display(),
            report.seconds,
            report.check_seconds
        );
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else if report.verdict == "not linearizable" {
        ExitCode::FAILURE
    } else {
        ExitCode::from(3)
    })
}
