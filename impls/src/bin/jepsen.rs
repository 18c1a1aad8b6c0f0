//! `jepsen PROTOCOL`: a Jepsen-style test of a registered protocol's local cluster.
//!
//! `jepsen raft --nodes 3 --clients 4 --duration 20 --nemesis kill,partition,loss [--seed N]
//! [--bug NAME] [--json]`
//!
//! Starts a cluster, runs concurrent clients (the model's client actors) doing the protocol's
//! workload, injects faults meanwhile, writes the history into DIR, checks it with the same
//! `properties` code the model uses, and prints the verdict, the operation counts and the faults.
//! The run's page, `DIR/history.html`, draws the history and the faults on a timeline.
//! The seed and the nemesis are echoed first (and in `--json`), so a run can be repeated. Exit 0
//! when the history checks and an operation succeeded after the last fault healed; 1 when it
//! does not check (the failure names the operations); 2 on bad usage or a failure to run; 3 when
//! the verdict is unknown or nothing succeeded after the faults.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use impls::cluster::sibling_binary;
use impls::jepsen::{JepsenOpts, Nemesis};
use impls::service::{self, parse_ms_range};

#[derive(Parser)]
#[command(
    name = "jepsen",
    version,
    about = "Fault injection against a local cluster, checked histories",
    after_help = service::protocols_help(service::Listing::Tested)
)]
struct Cli {
    /// The protocol (see the list below).
    protocol: String,
    /// How many nodes: by default 3, or the number the protocol always runs on (aurora 7,
    /// memcache 4), which it runs on whatever this says.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: Option<u16>,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    clients: u16,
    /// Seconds of workload; faults stop 3 s before the end.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Faults to inject, comma-separated: kill (kill -9, then a restart from disk), partition,
    /// loss, delay, pause (SIGSTOP one node, SIGCONT at heal), membership (Raft: remove a node,
    /// then add it back), clock (skew every clock by up to 10%, half the time with the leader
    /// cut off); `none` for none. By default the
    /// protocol's own set (chain replication's nodes are fail-stop on reliable links: kill,
    /// partition, delay; zk: kill, partition, pause); every protocol also takes pause.
    #[arg(long)]
    nemesis: Option<String>,
    /// Fixes the workload and the fault schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many keys the clients share.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    keys: u16,
    /// Seconds a client waits for one operation.
    #[arg(long, default_value_t = 2.0)]
    op_timeout: f64,
    /// The protocol's timeout on the nodes, LOW-HIGH milliseconds (Raft: the election timeout).
    #[arg(long, value_parser = parse_ms_range)]
    timeout_ms: Option<std::ops::Range<Duration>>,
    /// Where the cluster and the history go; by default jepsen-PROTOCOL.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Run the nodes with one of the model's seeded bugs: the test should then find the history
    /// does not check. zk's `lock-no-recheck` is a bug of its lock clients (the nodes run
    /// without it).
    #[arg(long)]
    bug: Option<String>,
    /// Run the cluster in plaintext instead of mutual TLS (to measure what TLS costs).
    #[arg(long)]
    insecure: bool,
    /// Raft: Gets under the leader's lease (thesis §6.4.1) instead of ReadIndex.
    #[arg(long)]
    lease_reads: bool,
    /// Raft: the clock drift, in percent, a leader allows for when it sizes its lease.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=90))]
    drift_bound: Option<u32>,
}

fn main() -> ExitCode {
    impls::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match test(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jepsen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn test(cli: Cli) -> Result<ExitCode> {
    let p = service::find(&cli.protocol).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        cli.duration > 0.0 && cli.duration.is_finite(),
        "--duration must be a positive number of seconds"
    );
    anyhow::ensure!(
        cli.op_timeout > 0.0 && cli.op_timeout.is_finite(),
        "--op-timeout must be a positive number of seconds"
    );
    let nemesis_text = cli.nemesis.clone().unwrap_or_else(|| {
        let names: Vec<String> = p.nemeses().iter().map(ToString::to_string).collect();
        names.join(",")
    });
    let nemesis: Vec<Nemesis> = if nemesis_text == "none" {
        Vec::new()
    } else {
        nemesis_text
            .split(',')
            .map(|s| s.trim().parse().map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?
    };
    let bug = service::parse_bug_flag(p, cli.bug.as_deref())?;
    let mut tuning = p.jepsen_tuning();
    if let Some(t) = cli.timeout_ms {
        tuning.timeout = t;
    }
    tuning.lease_reads |= cli.lease_reads;
    if let Some(d) = cli.drift_bound {
        tuning.drift_bound = d;
    }
    let opts = JepsenOpts {
        node_bin: sibling_binary("node"),
        dir: cli
            .dir
            .unwrap_or_else(|| PathBuf::from(format!("jepsen-{}", p.name()))),
        nodes: p
            .nodes()
            .unwrap_or_else(|| cli.nodes.map_or(3, usize::from)),
        clients: cli.clients.into(),
        duration: Duration::from_secs_f64(cli.duration),
        nemesis,
        seed: cli.seed,
        keys: cli.keys.into(),
        op_timeout: Duration::from_secs_f64(cli.op_timeout),
        tuning,
        bug,
        insecure: cli.insecure,
    };
    if cli.insecure && !cli.json {
        eprintln!("jepsen: --insecure: the cluster runs in plaintext, without authentication");
    }
    if !cli.json {
        println!(
            "jepsen {}: seed {}, nemesis {}, {} nodes, {} clients, {} s{}",
            p.name(),
            opts.seed,
            nemesis_text,
            opts.nodes,
            opts.clients,
            cli.duration,
            bug.map_or(String::new(), |b| format!(", bug {b}"))
        );
    }
    let report = p.jepsen(&opts)?;
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.check.verdict);
        if let Some(f) = &report.check.failure {
            println!("counterexample: {f}");
        }
        println!(
            "operations: {} ok, {} failed, {} indefinite; {} ok after the last fault healed",
            report.ok, report.failed, report.indefinite, report.ok_after_heal
        );
        println!("faults: {}", report.faults.len());
        for f in &report.faults {
            println!(
                "  {:6.2}s - {:6.2}s  {:?}: {}",
                f.start, f.healed, f.kind, f.detail
            );
        }
        for e in &report.expectations {
            println!(
                "  step {} ({}): {} {} ({})",
                e.step,
                e.what,
                e.expect,
                if e.held { "held" } else { "DID NOT HOLD" },
                e.detail
            );
        }
        println!(
            "history: {} ({:.1} s run, checked in {:.2} s)",
            report.check.file.display(),
            report.seconds,
            report.check_seconds
        );
        println!("page: {}", report.page.display());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else if report.refuted() {
        ExitCode::FAILURE
    } else {
        ExitCode::from(3)
    })
}
