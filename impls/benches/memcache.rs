//! Memcache at Facebook's leases against a thundering herd (§3.2.1: "a lease reduced peak
//! database query rates from 17K/s to 1.3K/s"), and the get throughput of a lease get on a real
//! memcached.
//!
//! 1. **Herd.** Two `memcache` clusters side by side on this machine, one with memcached's
//!    leases and one with `--bug no-leases` (plain look-aside), in alternating rounds. Each
//!    round: `MEMCACHE_BENCH_READERS` web servers (the model's, over TCP) read the one hot key
//!    in a loop while one more writes it every `MEMCACHE_BENCH_WRITE_MS`: every write deletes
//!    the key, and the readers that miss before it is filled again read the database. Reported:
//!    the database's reads a second (node 2's count of `Read`s), reads answered a second.
//! 2. **Gets.** One memcached with the key set; `MEMCACHE_BENCH_CONNS` connections, one thread
//!    each, for `MEMCACHE_BENCH_SECONDS`: the web servers' lease get (`mg k v c N10`, a hit)
//!    against a plain text-protocol `get k` client, and `memcaslap` (libmemcached-tools) with
//!    the same connections if it is installed.
//!
//! `bash bench/memcache.sh`, or `cargo bench -p impls --bench memcache`. Environment:
//! `MEMCACHE_BENCH_SECONDS` (4), `MEMCACHE_BENCH_ROUNDS` (3), `MEMCACHE_BENCH_READERS` (8),
//! `MEMCACHE_BENCH_WRITE_MS` (10), `MEMCACHE_BENCH_CONNS` (4).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use impls::client::Driven;
use impls::cluster::{sibling_binary, Cluster, ClusterSpec};
use impls::memcache::{start_memcached, MemcacheService, Meta, DATABASE, KEY};
use impls::service::Service;
use models::memcache::Op;

fn env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("memcache bench: {name}={v:?} is not a number");
            std::process::exit(2)
        }),
        Err(_) => default,
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("memcache bench: {what}: {e}");
    std::process::exit(1)
}

fn start(bug: Option<&'static str>) -> anyhow::Result<Cluster> {
    let name = bug.unwrap_or("leases");
    let dir = std::env::temp_dir().join(format!("memcache-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = Cluster::start(ClusterSpec {
        protocol: MemcacheService::NAME.into(),
        node_bin: sibling_binary("node"),
        dir,
        nodes: 4,
        base_port: None,
        tuning: MemcacheService::tuning(),
        bug,
        seed: Some(1),
        capacity: None,
    })?;
    Ok(cluster)
}

fn database_reads(cluster: &Cluster) -> u64 {
    cluster
        .query_counts(DATABASE)
        .ok()
        .and_then(|c| c.get("database reads").copied())
        .unwrap_or(0)
}

struct Herd {
    db_reads: u64,
    reads: u64,
    writes: u64,
    seconds: f64,
}

fn herd(cluster: &Cluster, seconds: u64, readers: u64, write_every: Duration) -> Herd {
    let tuning = MemcacheService::tuning();
    let connect = || {
        Driven::<MemcacheService>::start(&cluster.config, &tuning, None)
            .unwrap_or_else(|e| fail("a web server", e))
    };
    let mut web: Vec<_> = (0..=readers).map(|_| connect()).collect();
    for w in &mut web {
        w.call(Op::Read, Duration::from_secs(5))
            .unwrap_or_else(|e| fail("warm-up read", e));
    }
    let before = database_reads(cluster);
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut writer = web.pop().expect("a writer");
    let (reads, writes) = std::thread::scope(|scope| {
        let readers: Vec<_> = web
            .into_iter()
            .map(|mut w| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < end {
                        if w.call(Op::Read, Duration::from_secs(2)).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        let mut writes = 0u64;
        let mut next = Instant::now();
        while Instant::now() < end {
            if writer.call(Op::Write, Duration::from_secs(2)).is_ok() {
                writes += 1;
            }
            next += write_every;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let reads: u64 = readers
            .into_iter()
            .map(|h| h.join().expect("a reader"))
            .sum();
        (reads, writes)
    });
    let seconds = start.elapsed().as_secs_f64();
    Herd {
        db_reads: database_reads(cluster) - before,
        reads,
        writes,
        seconds,
    }
}

/// A plain text-protocol client: `get k`.
fn plain_get(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>) -> std::io::Result<()> {
    stream.write_all(b"get k\r\n")?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if let Some(rest) = line.strip_prefix("VALUE ") {
        let len: usize = rest
            .split_whitespace()
            .nth(2)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut data = vec![0; len + 2];
        reader.read_exact(&mut data)?;
        line.clear();
        reader.read_line(&mut line)?;
    }
    if line.trim_end() != "END" {
        return Err(std::io::Error::other(format!("get answered {line:?}")));
    }
    Ok(())
}

fn gets(addr: SocketAddr, conns: u64, seconds: u64, lease: bool) -> f64 {
    let end = Instant::now() + Duration::from_secs(seconds);
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..conns)
            .map(|_| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    if lease {
                        let mut m = Meta::connect(addr, Duration::from_secs(1))
                            .unwrap_or_else(|e| fail("connect", e));
                        while Instant::now() < end {
                            for _ in 0..100 {
                                m.lease_get(KEY, 10)
                                    .unwrap_or_else(|e| fail("lease get", e));
                            }
                            n += 100;
                        }
                    } else {
                        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| fail("connect", e));
                        s.set_nodelay(true).ok();
                        let mut r = BufReader::new(s.try_clone().expect("clone"));
                        while Instant::now() < end {
                            for _ in 0..100 {
                                plain_get(&mut s, &mut r).unwrap_or_else(|e| fail("get", e));
                            }
                            n += 100;
                        }
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a getter"))
            .sum()
    });
    total as f64 / seconds as f64
}

/// memcaslap's operations a second with `conns` connections: gets (and one set in 10,000) of
/// 16-byte keys and 4-byte values it sets first.
fn memcaslap(addr: SocketAddr, conns: u64, seconds: u64) -> Option<f64> {
    let cfg = std::env::temp_dir().join(format!("memcaslap-{}.cfg", std::process::id()));
    std::fs::write(
        &cfg,
        "key\n16 16 1\nvalue\n4 4 1\ncmd\n0 0.0001\n1 0.9999\n",
    )
    .ok()?;
    let out = std::process::Command::new("memcaslap")
        .arg(format!("--servers={addr}"))
        .arg(format!("--threads={}", conns.min(2)))
        .arg(format!("--concurrency={conns}"))
        .arg(format!("--time={seconds}s"))
        .arg(format!("--cfg_cmd={}", cfg.display()))
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    // "Run time: 4.0s Ops: 123456 TPS: 30864 Net_rate: ..."
    text.lines()
        .find(|l| l.starts_with("Run time:"))
        .and_then(|l| l.split("TPS: ").nth(1))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds = env("MEMCACHE_BENCH_SECONDS", 4).max(1);
    let rounds = env("MEMCACHE_BENCH_ROUNDS", 3).max(1);
    let readers = env("MEMCACHE_BENCH_READERS", 8).max(1);
    let write_ms = env("MEMCACHE_BENCH_WRITE_MS", 10).max(1);
    let conns = env("MEMCACHE_BENCH_CONNS", 4).max(1);
    if !sibling_binary("node").exists() {
        fail(
            "no node binary beside the benchmark",
            "cargo bench builds it",
        );
    }
    println!(
        "memcache bench: {rounds} rounds of {seconds} s; herd: {readers} readers, a write every {write_ms} ms; gets: {conns} connections; node binary {}",
        sibling_binary("node").file_name().map(PathBuf::from).unwrap_or_default().display()
    );
    let clusters = [
        (
            "leases",
            start(None).unwrap_or_else(|e| fail("leases cluster", e)),
        ),
        (
            "no-leases",
            start(Some("no-leases")).unwrap_or_else(|e| fail("no-leases cluster", e)),
        ),
    ];
    let mut db: [Vec<f64>; 2] = Default::default();
    let mut served: [Vec<f64>; 2] = Default::default();
    for r in 0..rounds {
        for (m, (name, cluster)) in clusters.iter().enumerate() {
            let h = herd(cluster, seconds, readers, Duration::from_millis(write_ms));
            let rate = h.db_reads as f64 / h.seconds;
            println!(
                "round {r} {name:<9} {:>7.0} database reads/s, {:>7.0} reads answered/s, {:>5.0} writes/s ({:.2} database reads a write)",
                rate,
                h.reads as f64 / h.seconds,
                h.writes as f64 / h.seconds,
                h.db_reads as f64 / h.writes.max(1) as f64
            );
            db[m].push(rate);
            served[m].push(h.reads as f64 / h.seconds);
        }
    }
    drop(clusters);
    let port = impls::cluster::free_ports(1).unwrap_or_else(|e| fail("a port", e))[0];
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = start_memcached(addr).unwrap_or_else(|e| fail("memcached", e));
    let mut m = Meta::connect(addr, Duration::from_secs(1)).unwrap_or_else(|e| fail("connect", e));
    m.set(KEY, b"1", None, 0).unwrap_or_else(|e| fail("set", e));
    let mut lease = Vec::new();
    let mut plain = Vec::new();
    // The clusters' processes gone before the clock starts; the order alternates.
    std::thread::sleep(Duration::from_secs(1));
    for r in 0..rounds {
        let (l, p) = if r % 2 == 0 {
            let l = gets(addr, conns, seconds, true);
            (l, gets(addr, conns, seconds, false))
        } else {
            let p = gets(addr, conns, seconds, false);
            (gets(addr, conns, seconds, true), p)
        };
        println!("round {r} gets: lease get {l:>9.0}/s, plain get {p:>9.0}/s");
        lease.push(l);
        plain.push(p);
    }
    let slap = memcaslap(addr, conns, seconds);
    let _ = child.kill();
    let _ = child.wait();
    let (l, p) = (median(lease), median(plain));
    let (with, without) = (median(db[0].clone()), median(db[1].clone()));
    println!("| measure (median of {rounds}) | leases | no leases (plain look-aside) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| database reads/s, hot key, a write every {write_ms} ms | {with:.0} | {without:.0} | {:.3} |",
        with / without.max(1.0)
    );
    println!(
        "| reads answered/s ({readers} web servers) | {:.0} | {:.0} | {:.2} |",
        median(served[0].clone()),
        median(served[1].clone()),
        median(served[0].clone()) / median(served[1].clone()).max(1.0)
    );
    println!("| gets/s on memcached, {conns} connections | lease get (mg k v c N10) {l:.0} | plain get {p:.0} | {:.2} |", l / p);
    match slap {
        Some(s) => println!(
            "memcaslap, {conns} connections, get-only: {s:.0} ops/s (lease get {:.2}x)",
            l / s
        ),
        None => println!("memcaslap: not installed (libmemcached-tools) or no TPS line"),
    }
}
