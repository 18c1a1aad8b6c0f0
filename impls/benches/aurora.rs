//! Aurora's network traffic (Figure 2 and §3.2 of Verbitski et al.): commits a second and
//! bytes sent per commit for the log-shipping writer (`aurora`: one redo record to six segments,
//! committed at a write quorum of four) against the mirrored baseline (`aurora-mirrored`: the
//! whole 8 KiB page to six replicas, committed when all six have it), in alternating rounds of
//! one run on this machine. Bytes are counted at the sender (every node's frames to its peers,
//! frame headers included), minus what the nodes sent before the round's first put.
//!
//! `bash bench/aurora.sh`, or `cargo bench -p impls --bench aurora`. Environment:
//! `AURORA_BENCH_SECONDS` (5) of puts a round, `AURORA_BENCH_CLIENTS` (4) clients with one
//! put in flight each, `AURORA_BENCH_ROUNDS` (3), `AURORA_BENCH_KEYS` (100).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::aurora::{AuroraService, MirroredService};
use impls::client::Driven;
use impls::cluster::{sibling_binary, Cluster, ClusterSpec};
use impls::node::BYTES_TO_PEERS;
use impls::service::Client;

fn env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("aurora bench: {name}={v:?} is not a number");
            std::process::exit(2)
        }),
        Err(_) => default,
    }
}

struct Round {
    commits: u64,
    seconds: f64,
    bytes: u64,
}

fn bytes_sent(cluster: &Cluster) -> u64 {
    (0..cluster.len())
        .map(|i| {
            cluster
                .query_counts(i)
                .ok()
                .and_then(|c| c.get(BYTES_TO_PEERS).copied())
                .unwrap_or(0)
        })
        .sum()
}

fn round<S: Client>(seconds: u64, clients: u64, keys: u64) -> anyhow::Result<Round>
where
    <S::Actor as stateright::actor::Actor>::Timer: std::hash::Hash + Eq,
{
    let dir = std::env::temp_dir().join(format!("aurora-bench-{}-{}", S::NAME, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = Cluster::start(ClusterSpec {
        protocol: S::NAME.into(),
        node_bin: sibling_binary("node"),
        dir: dir.clone(),
        nodes: 7,
        base_port: None,
        tuning: S::tuning(),
        bug: None,
        seed: Some(1),
        capacity: None,
    })?;
    let ready = Instant::now();
    while !cluster
        .query_status(0)
        .ok()
        .flatten()
        .is_some_and(|s| s.starts_with("writer of epoch 1"))
    {
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(10),
            "the writer did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut drivers = Vec::new();
    for _ in 0..clients {
        drivers.push(Driven::<S>::start(&cluster.config, &S::tuning(), None)?);
    }
    // Connections up and the first record through before the clock starts.
    for d in &mut drivers {
        d.call(
            S::parse_op(&["put".into(), "warm".into(), "up".into()]).map_err(anyhow::Error::msg)?,
            Duration::from_secs(5),
        )
        .map_err(|e| anyhow::anyhow!("warm-up put: {e}"))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = bytes_sent(&cluster);
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let commits: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = drivers
            .into_iter()
            .enumerate()
            .map(|(c, mut d)| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < end {
                        let key = format!("k{}", (n * 7 + c as u64) % keys);
                        let value = format!("{c}.{n:06}");
                        let op = S::parse_op(&["put".into(), key, value]).expect("a put parses");
                        if d.call(op, Duration::from_secs(5)).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    // The last acknowledgements of the segments that were not in the quorum.
    std::thread::sleep(Duration::from_millis(300));
    let bytes = bytes_sent(&cluster) - before;
    cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Round {
        commits,
        seconds: elapsed,
        bytes,
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds = env("AURORA_BENCH_SECONDS", 5);
    let clients = env("AURORA_BENCH_CLIENTS", 4).max(1);
    let rounds = env("AURORA_BENCH_ROUNDS", 3).max(1);
    let keys = env("AURORA_BENCH_KEYS", 100).max(1);
    if !sibling_binary("node").exists() {
        eprintln!("aurora bench: no node binary beside the benchmark (cargo bench builds it)");
        std::process::exit(2);
    }
    println!(
        "aurora bench: {rounds} rounds of {seconds} s, {clients} clients, {keys} keys, node binary {}",
        sibling_binary("node").file_name().map(PathBuf::from).unwrap_or_default().display()
    );
    let mut results: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    for r in 0..rounds {
        for (m, name) in ["aurora", "aurora-mirrored"].iter().enumerate() {
            let got = if m == 0 {
                round::<AuroraService>(seconds, clients, keys)
            } else {
                round::<MirroredService>(seconds, clients, keys)
            };
            let got = match got {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("aurora bench: {name}: {e:#}");
                    std::process::exit(1);
                }
            };
            let rate = got.commits as f64 / got.seconds;
            let per = got.bytes as f64 / got.commits.max(1) as f64;
            println!(
                "round {r} {name:<16} {:>7} commits in {:.2} s: {rate:>8.0} commits/s, {per:>8.0} bytes sent per commit",
                got.commits, got.seconds
            );
            results[m].0.push(rate);
            results[m].1.push(per);
        }
    }
    let (log_rate, log_bytes) = (median(results[0].0.clone()), median(results[0].1.clone()));
    let (page_rate, page_bytes) = (median(results[1].0.clone()), median(results[1].1.clone()));
    println!("| mode | commits/s (median) | bytes sent per commit (median) |");
    println!("|---|---|---|");
    println!("| aurora: redo records, 4/6 quorum | {log_rate:.0} | {log_bytes:.0} |");
    println!("| mirrored: 8 KiB pages, 6/6 | {page_rate:.0} | {page_bytes:.0} |");
    println!(
        "log shipping: {:.2}x the commits/s, {:.3}x the bytes per commit",
        log_rate / page_rate,
        log_bytes / page_bytes
    );
}
