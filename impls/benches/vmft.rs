//! `bench/vmft.sh`: inputs a second, one at a time with their outputs, through the replicated
//! machine (primary and backup, the Output Rule) and the same machine alone (a cluster of one
//! node: live from the start, no logging), in alternating rounds of one run.
//! `VMFT_BENCH_INPUTS` per round (default 20000), `VMFT_BENCH_ROUNDS` (default 5).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use impls::cluster::{Cluster, ClusterSpec};
use impls::service::Service;
use impls::vmft::{VmftService, World};

fn start(name: &str, nodes: usize) -> anyhow::Result<Cluster> {
    let dir = std::env::temp_dir().join(format!("vmft-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Cluster::start(ClusterSpec {
        protocol: "vmft".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir,
        nodes,
        base_port: None,
        tuning: VmftService::tuning(),
        bug: None,
        seed: None,
        capacity: None,
    })?)
}

fn env(key: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{key}={v}: expected a positive number")),
        Err(_) => Ok(default),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run() -> anyhow::Result<()> {
    let inputs = env("VMFT_BENCH_INPUTS", 20000)?.max(1);
    let rounds = env("VMFT_BENCH_ROUNDS", 5)?.max(1);
    let replicated = start("ft", 3)?;
    let alone = start("alone", 1)?;
    println!(
        "vmft bench: {inputs} inputs a round, {rounds} rounds, interrupts every {:?}",
        VmftService::tuning().heartbeat
    );
    let mut worlds = [World::new(&replicated.config)?, World::new(&alone.config)?];
    let mut rates = [Vec::new(), Vec::new()];
    for w in &mut worlds {
        w.inputs(200)?; // warm up
    }
    for round in 1..=rounds {
        for (k, w) in worlds.iter_mut().enumerate() {
            let t = Instant::now();
            w.inputs(inputs)?;
            let rate = inputs as f64 / t.elapsed().as_secs_f64();
            println!(
                "round {round} {:<12} {rate:>9.0} inputs/s",
                ["replicated", "unreplicated"][k]
            );
            rates[k].push(rate);
        }
    }
    for w in &worlds {
        w.output_requirement().map_err(|e| anyhow::anyhow!(e))?;
    }
    let (ft, solo) = (median(&mut rates[0]), median(&mut rates[1]));
    println!("median: replicated {ft:.0} inputs/s, unreplicated {solo:.0} inputs/s");
    println!(
        "replicated / unreplicated = {:.2} ({:.0}% fewer inputs a second)",
        ft / solo,
        100.0 * (1.0 - ft / solo)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmft bench: {e}");
            ExitCode::FAILURE
        }
    }
}
