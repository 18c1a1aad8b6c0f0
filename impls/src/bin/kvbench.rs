//! `kvbench`: put/get throughput and latency of a KV cluster, ours or etcd, with the same load
//! generator: N client threads, each issuing one operation at a time for a fixed time.
//!
//! - `kvbench raft --cluster cluster.toml --clients 16 --op put [--seconds 10]`: our Raft KV
//!   cluster through the model's client actor ([`Driven`]: leader-following, sessions).
//! - `kvbench chain|craq --cluster cluster.toml --clients 16 --op get [--write-rate 100]`: our
//!   chain replication or CRAQ cluster, the same way; `--write-rate` adds one client that puts at
//!   that rate while the others read.
//! - `kvbench etcd --endpoint 127.0.0.1:2379 --clients 16 --op put`: etcd v3 through its JSON
//!   gateway (`POST /v3/kv/put`, `/v3/kv/range`; reads are linearizable, etcd's default), over
//!   keep-alive HTTP/1.1 connections, one per client; with `--cacert CA --cert C --key K`,
//!   HTTPS with a client certificate (etcd's `--client-cert-auth`).
//!
//! Prints one JSON object: the operations completed, the throughput, and the p50/p99 latencies.
//! Keys are drawn uniformly from `--keys` (with the seed the report shows; `IMPLS_SEED` replays
//! it); values have `--value-size` bytes. Gets read keys a warm-up pass wrote first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use impls::chain::{ChainService, CraqService};
use impls::client::{Driven, CLIENT_IDS};
use impls::config::ClusterConfig;
use impls::raft::RaftService;
use impls::rng::{seed_from_env_or_time, Rng};
use impls::service::Client;
use impls::tls::Stream;
use models::raft::kv::{KvOp, KvRet};

#[derive(Parser)]
#[command(
    name = "kvbench",
    about = "Throughput and latency of a KV cluster (ours or etcd)"
)]
struct Cli {
    #[command(subcommand)]
    target: Target,
    #[command(flatten)]
    load: Load,
}

#[derive(clap::Args, Clone)]
struct Load {
    /// Concurrent clients, each with one operation in flight.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4096))]
    clients: u16,
    #[arg(long, global = true, value_enum, default_value_t = Op::Put)]
    op: Op,
    /// Seconds of measurement.
    #[arg(long, global = true, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, global = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    keys: u32,
    #[arg(long, global = true, default_value_t = 8)]
    value_size: usize,
    /// Puts a second issued meanwhile by more clients, one per 50 (reads measured under writes).
    #[arg(long, global = true, default_value_t = 0)]
    write_rate: u32,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Op {
    Put,
    Get,
}

#[derive(Subcommand)]
enum Target {
    /// Our Raft KV cluster.
    Raft {
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Our chain replication cluster (reads at the tail).
    Chain {
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Our CRAQ cluster (reads at every node).
    Craq {
        #[arg(long)]
        cluster: PathBuf,
    },
    /// An etcd v3 member's client URL (host:port), ideally the leader's.
    Etcd {
        #[arg(long)]
        endpoint: SocketAddr,
        /// HTTPS with a client certificate (etcd's `--client-cert-auth`): the authority that
        /// signed the member's certificate, which must name the endpoint's IP address.
        #[arg(long, requires_all = ["cert", "key"])]
        cacert: Option<PathBuf>,
        /// The client certificate, PEM.
        #[arg(long, requires = "cacert")]
        cert: Option<PathBuf>,
        /// The client certificate's key, PEM.
        #[arg(long, requires = "cacert")]
        key: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match bench(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvbench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One client's connection to the system under test.
trait Kv {
    fn put(&mut self, key: &str, value: &str) -> Result<()>;
    fn get(&mut self, key: &str) -> Result<()>;
}

/// A registered KV protocol through the model's client actor.
struct Served<S: Client>(Driven<S>);

impl<S: Client<Op = KvOp, Ret = KvRet>> Kv for Served<S> {
    fn put(&mut self, key: &str, value: &str) -> Result<()> {
        self.0
            .call(KvOp::Put(key.into(), value.into()), Duration::from_secs(10))?;
        Ok(())
    }
    fn get(&mut self, key: &str) -> Result<()> {
        self.0
            .call(KvOp::Get(key.into()), Duration::from_secs(10))?;
        Ok(())
    }
}

/// etcd's JSON gateway over one keep-alive connection, HTTPS when `tls` is set.
struct Etcd {
    addr: SocketAddr,
    reader: BufReader<Stream>,
    writer: Stream,
}

impl Etcd {
    fn connect(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Etcd> {
        let timeout = Duration::from_secs(10);
        let s = match tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                impls::tls::connect_named(config, addr, timeout, name)
            }
            None => impls::tls::tcp_connect(addr, timeout).map(Stream::plain),
        }
        .with_context(|| format!("connecting to etcd at {addr}"))?;
        s.tcp().set_read_timeout(Some(timeout))?;
        Ok(Etcd {
            addr,
            writer: s.try_clone()?,
            reader: BufReader::new(s),
        })
    }

    fn post(&mut self, path: &str, body: &str) -> Result<Vec<u8>> {
        // One write: over TLS, each write is a record of its own.
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.writer.write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("etcd closed the connection");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = Some(v.trim().parse::<usize>()?);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk)?;
                chunk.truncate(n);
                body.extend(chunk);
                if n == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        }
        if status != "200" {
            bail!("etcd answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }
}

impl Kv for Etcd {
    fn put(&mut self, key: &str, value: &str) -> Result<()> {
        let body = format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            base64(key.as_bytes()),
            base64(value.as_bytes())
        );
        self.post("/v3/kv/put", &body).map(drop)
    }
    fn get(&mut self, key: &str) -> Result<()> {
        let body = format!(r#"{{"key":"{}"}}"#, base64(key.as_bytes()));
        self.post("/v3/kv/range", &body).map(drop)
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The messages the cluster's nodes have handled, by kind, summed (nodes that do not answer
/// count nothing; no cluster counts nothing).
fn node_counts(cluster: Option<&ClusterConfig>) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut sum = std::collections::BTreeMap::new();
    let Some(cluster) = cluster else {
        return Ok(sum);
    };
    let tls = cluster.tls(impls::tls::Who::Admin)?;
    for (id, addr) in &cluster.nodes {
        let to = impls::node::AdminTarget {
            tls: tls.as_deref(),
            node: usize::from(*id),
            addr: *addr,
        };
        for (kind, n) in impls::node::query_counts(to).unwrap_or_default() {
            *sum.entry(kind).or_default() += n;
        }
    }
    Ok(sum)
}

/// Opens client `i`'s connection.
type Connect = Arc<dyn Fn(usize) -> Result<Box<dyn Kv>> + Send + Sync>;

/// Clients of the registered KV protocol `S` on the cluster in `cluster`.
fn served<S>(cluster: &std::path::Path) -> Result<Connect>
where
    S: Client<Op = KvOp, Ret = KvRet> + Sync,
    <S::Actor as stateright::actor::Actor>::Timer: std::hash::Hash + Eq,
{
    let config = ClusterConfig::load(cluster)?;
    let run = std::process::id() as usize * 65536;
    Ok(Arc::new(move |i| {
        let client = Driven::<S>::start(&config, &S::tuning(), Some(CLIENT_IDS + run + i))?;
        Ok(Box::new(Served(client)) as Box<dyn Kv>)
    }))
}

fn bench(cli: Cli) -> Result<()> {
    let load = cli.load;
    anyhow::ensure!(
        load.seconds > 0.0 && load.seconds.is_finite(),
        "--seconds must be a positive number"
    );
    let (system, connect): (&str, Connect) = match &cli.target {
        Target::Raft { cluster } => ("raft", served::<RaftService>(cluster)?),
        Target::Chain { cluster } => ("chain", served::<ChainService>(cluster)?),
        Target::Craq { cluster } => ("craq", served::<CraqService>(cluster)?),
        Target::Etcd {
            endpoint,
            cacert,
            cert,
            key,
        } => {
            let endpoint = *endpoint;
            let tls = match (cacert, cert, key) {
                (Some(ca), Some(cert), Some(key)) => Some(
                    impls::tls::client_config_from_files(ca, cert, key).context("etcd's TLS")?,
                ),
                _ => None,
            };
            (
                "etcd",
                Arc::new(move |_| {
                    Ok(Box::new(Etcd::connect(endpoint, tls.as_ref())?) as Box<dyn Kv>)
                }),
            )
        }
    };
    // Our nodes count the messages they handle by kind: the run's share is the difference.
    let nodes: Option<ClusterConfig> = match &cli.target {
        Target::Raft { cluster } | Target::Chain { cluster } | Target::Craq { cluster } => {
            Some(ClusterConfig::load(cluster)?)
        }
        Target::Etcd { .. } => None,
    };
    let value = "v".repeat(load.value_size);
    let keys = u64::from(load.keys);
    let key = move |n: u64| format!("bench-{}", n % keys);
    if load.op == Op::Get {
        // Reads find their keys.
        let mut c = connect(usize::from(load.clients))?;
        for k in 0..keys {
            c.put(&key(k), &value)?;
        }
    }
    let counted_before = node_counts(nodes.as_ref())?;
    // The keys each client draws, replayable with the seed the report shows.
    let seed = seed_from_env_or_time();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(load.seconds);
    let op = load.op;
    // Writes in the background, paced at --write-rate in all, by one writer per 50 writes a
    // second (each has one write in flight, so one alone would be held to 1 / its latency).
    let writers: Vec<_> = if load.write_rate == 0 {
        Vec::new()
    } else {
        let n = load.write_rate.div_ceil(50);
        (0..n)
            .map(|w| {
                let (connect, value) = (connect.clone(), value.clone());
                let rate = f64::from(load.write_rate) / f64::from(n);
                std::thread::spawn(move || -> Result<u64> {
                    let me = usize::from(u16::MAX) + w as usize;
                    let mut c = connect(me)?;
                    let mut rng = Rng::new(seed).fork(me as u64);
                    let mut done = 0u64;
                    while Instant::now() < end {
                        let due = start + Duration::from_secs_f64(done as f64 / rate);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        c.put(&key(rng.next_u64()), &value)?;
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect()
    };
    let threads: Vec<_> = (0..usize::from(load.clients))
        .map(|i| {
            let (connect, value) = (connect.clone(), value.clone());
            std::thread::spawn(move || -> Result<Vec<u32>> {
                let mut c = connect(i)?;
                let mut rng = Rng::new(seed).fork(i as u64);
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let k = key(rng.next_u64());
                    let t = Instant::now();
                    match op {
                        Op::Put => c.put(&k, &value)?,
                        Op::Get => c.get(&k)?,
                    }
                    lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
                Ok(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in threads {
        lat.extend(
            t.join()
                .map_err(|_| anyhow::anyhow!("a client panicked"))??,
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut writes = 0;
    for w in writers {
        writes += w
            .join()
            .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    let mut counted = node_counts(nodes.as_ref())?;
    for (kind, n) in counted_before {
        // (A node that restarted during the run counts from zero again.)
        let after = counted.entry(kind).or_default();
        *after = after.saturating_sub(n);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let report = serde_json::json!({
        "system": system,
        "op": if load.op == Op::Put { "put" } else { "get" },
        "clients": load.clients,
        "seed": seed,
        "ops": lat.len(),
        "seconds": (seconds * 100.0).round() / 100.0,
        "ops_per_s": (lat.len() as f64 / seconds).round(),
        "p50_ms": (pct(0.50) * 1000.0).round() / 1000.0,
        "p99_ms": (pct(0.99) * 1000.0).round() / 1000.0,
        "background_writes_per_s": (writes as f64 / seconds).round(),
        "node_counts": counted,
    });
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
