//! `gfs`: GFS's processes and its client.
//!
//! - `gfs master --config C --data-dir D` and `gfs chunkserver --config C --id N --data-dir D`
//!   run node 0 (the master) or chunkserver N of the cluster file (as `node gfs` does);
//!   `cluster gfs --nodes 4` runs a master and three chunkservers locally.
//! - `gfs --cluster C create PATH | append PATH [TEXT...] | read PATH | ls [PREFIX] | rm PATH |
//!   mv FROM TO | put LOCAL PATH | get PATH | fsck [PREFIX] | bench`: the client. `append` without TEXT appends each line of stdin as a record;
//!   `read` prints each record once (`--all`: duplicates too, with where they are); `fsck`
//!   prints each chunk's replicas and its regions as Table 1 names them.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use impls::config::ClusterConfig;
use impls::gfs::client::{fsck, GfsClient, Region};
use impls::gfs::GfsService;
use impls::service::{self, NodeArgs, Service};

#[derive(Parser)]
#[command(
    name = "gfs",
    version,
    about = "GFS: a master, chunkservers, and the client"
)]
struct Cli {
    /// The cluster file (for the client commands).
    #[arg(long, global = true)]
    cluster: Option<PathBuf>,
    /// Give up on an operation after this many seconds.
    #[arg(long, global = true, default_value_t = 30.0)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Serve {
    /// The cluster file: `[nodes]` (0 is the master) and `[data]` (the chunkservers' data
    /// ports).
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    data_dir: PathBuf,
    /// The lease (§3.1), milliseconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(100..))]
    lease_ms: Option<u64>,
    /// HeartBeat interval (§2.6.2), milliseconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..))]
    heartbeat_ms: Option<u64>,
    /// The chunk size in bytes (§2.5).
    #[arg(long, value_parser = clap::value_parser!(u64).range(4096..=(1 << 32)))]
    chunk_bytes: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the master (node 0 of the cluster file).
    Master(Serve),
    /// Run chunkserver N of the cluster file.
    Chunkserver {
        #[arg(long)]
        id: usize,
        #[command(flatten)]
        serve: Serve,
    },
    /// Create an empty file.
    Create { path: String },
    /// Append a record (TEXT), or each line of stdin as a record.
    Append { path: String, text: Vec<String> },
    /// Print the file's records, each once (`--all`: every copy, with chunk and offset).
    Read {
        path: String,
        #[arg(long)]
        all: bool,
    },
    /// The files under PREFIX and their chunk counts.
    Ls {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Remove a file (its chunks are collected lazily, §4.4).
    Rm { path: String },
    /// Rename a file, replacing any file of the new name.
    Mv { from: String, to: String },
    /// Create PATH and append the local file LOCAL to it as records of whole lines.
    Put { local: PathBuf, path: String },
    /// Print the file's contents: each record once, in order.
    Get { path: String },
    /// Read every replica of every chunk and classify its regions (Table 1).
    Fsck {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Record-append throughput: CLIENTS clients append RECORD_BYTES records to PATH for
    /// SECONDS (`bench/gfs.sh` runs it).
    Bench {
        #[arg(long, default_value = "/bench")]
        path: String,
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
        clients: u16,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u64).range(1..=(16 << 20)))]
        record_bytes: u64,
    },
}

fn main() -> ExitCode {
    impls::init_tracing("warn");
    let cli: Cli = match impls::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gfs: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(s: Serve, id: usize) -> Result<ExitCode> {
    let mut tuning = GfsService::tuning();
    if let Some(ms) = s.lease_ms {
        tuning.timeout = Duration::from_millis(ms)..Duration::from_millis(ms);
    }
    if let Some(ms) = s.heartbeat_ms {
        tuning.heartbeat = Duration::from_millis(ms);
    }
    if let Some(n) = s.chunk_bytes {
        tuning.chunk_bytes = n;
    }
    service::serve::<GfsService>(&NodeArgs {
        config: s.config,
        id,
        data_dir: s.data_dir,
        tuning,
        bug: None,
        admin: true,
        seed: None,
        capacity: None,
        tls: Default::default(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `clients` appenders for `seconds`: the appends acknowledged and failed, and the time.
fn bench(cli: &Cli, path: &str, clients: u16, seconds: f64, bytes: u64) -> Result<(u64, u64, f64)> {
    let cluster = ClusterConfig::load(cli.cluster.as_ref().expect("checked"))?;
    let payload: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let start = std::time::Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let results: Vec<Result<(u64, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (cluster, payload) = (&cluster, &payload);
                scope.spawn(move || -> Result<(u64, u64)> {
                    let mut c = GfsClient::connect(cluster)?;
                    let (mut done, mut failed) = (0, 0);
                    while std::time::Instant::now() < until {
                        match c.append(path, payload) {
                            Ok(_) => done += 1,
                            Err(_) => failed += 1,
                        }
                    }
                    Ok((done, failed))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench client panicked"))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let (mut done, mut failed) = (0, 0);
    for r in results {
        let (d, f) = r?;
        done += d;
        failed += f;
    }
    Ok((done, failed, secs))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let client = |cli: &Cli| -> Result<GfsClient> {
        let Some(path) = &cli.cluster else {
            bail!("the client commands need --cluster FILE");
        };
        let cluster = ClusterConfig::load(path)?;
        let mut c = GfsClient::connect(&cluster).context("connecting")?;
        if !(cli.timeout > 0.0 && cli.timeout.is_finite()) {
            bail!("--timeout must be a positive number of seconds");
        }
        c.timeout = Duration::from_secs_f64(cli.timeout);
        Ok(c)
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    match cli.command {
        Command::Master(s) => return serve(s, impls::gfs::MASTER_INDEX),
        Command::Chunkserver { id, serve: s } => {
            if id == impls::gfs::MASTER_INDEX {
                bail!("node {id} is the master; chunkservers are the other nodes");
            }
            return serve(s, id);
        }
        Command::Create { ref path } => {
            let file = client(&cli)?.create(path)?;
            writeln!(out, "created {path} (file {file})")?;
        }
        Command::Append { ref path, ref text } => {
            let mut c = client(&cli)?;
            let one = |c: &mut GfsClient, payload: &[u8], out: &mut dyn Write| -> Result<()> {
                let (chunk, offset, _) = c.append(path, payload)?;
                writeln!(out, "appended at chunk {chunk} offset {offset}")?;
                Ok(())
            };
            if text.is_empty() {
                for line in std::io::stdin().lock().lines() {
                    one(&mut c, line?.as_bytes(), &mut out)?;
                }
            } else {
                one(&mut c, text.join(" ").as_bytes(), &mut out)?;
            }
        }
        Command::Read { ref path, all } => {
            let records = client(&cli)?.read_records(path)?;
            let mut seen = std::collections::HashSet::new();
            for r in records {
                let text = String::from_utf8_lossy(&r.payload);
                if all {
                    writeln!(out, "{}\t{}\t{:016x}\t{text}", r.chunk, r.offset, r.id)?;
                } else if seen.insert(r.id) {
                    writeln!(out, "{text}")?;
                }
            }
        }
        Command::Ls { ref prefix } => {
            for (p, n) in client(&cli)?.list(prefix)? {
                writeln!(out, "{p}\t{n} chunks")?;
            }
        }
        Command::Rm { ref path } => {
            client(&cli)?.remove(path)?;
            writeln!(out, "removed {path}")?;
        }
        Command::Mv { ref from, ref to } => {
            client(&cli)?.rename(from, to)?;
            writeln!(out, "renamed {from} to {to}")?;
        }
        Command::Put {
            ref local,
            ref path,
        } => {
            let text =
                std::fs::read(local).with_context(|| format!("reading {}", local.display()))?;
            let mut c = client(&cli)?;
            c.create(path)?;
            let n = c.put_text(path, &text)?;
            writeln!(out, "{path}: {} bytes in {n} records", text.len())?;
        }
        Command::Get { ref path } => {
            let text = client(&cli)?.read_text(path)?;
            out.write_all(&text)?;
        }
        Command::Bench {
            ref path,
            clients,
            seconds,
            record_bytes,
        } => {
            if !(seconds > 0.0 && seconds.is_finite()) {
                bail!("--seconds must be a positive number");
            }
            let mut c = client(&cli)?;
            match c.create(path) {
                Ok(_) => {}
                Err(impls::gfs::client::GfsError::Failed(why)) if why.ends_with("exists") => {}
                Err(e) => return Err(e.into()),
            }
            let (done, failed, secs) = bench(&cli, path, clients, seconds, record_bytes)?;
            writeln!(
                out,
                "clients {clients} record_bytes {record_bytes} appended {done} failed {failed} seconds {secs:.2} MB/s {:.1}",
                (done * record_bytes) as f64 / secs / 1e6
            )?;
        }
        Command::Fsck { ref prefix } => {
            let files = fsck(&mut client(&cli)?, prefix)?;
            let mut healthy = true;
            for f in &files {
                writeln!(
                    out,
                    "{}: {} chunks, {} duplicate records",
                    f.path,
                    f.chunks.len(),
                    f.duplicates
                )?;
                for (i, c) in f.chunks.iter().enumerate() {
                    let ids = |v: &[stateright::actor::Id]| {
                        v.iter()
                            .map(|i| usize::from(*i).to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    let regions: Vec<String> = [
                        (Region::Defined, "defined"),
                        (Region::Padding, "padding"),
                        (Region::Undefined, "consistent but undefined"),
                        (Region::Inconsistent, "inconsistent"),
                    ]
                    .iter()
                    .filter_map(|(r, name)| {
                        let n = c.regions.get(r)?;
                        Some(format!("{name} {n} ({} bytes)", c.bytes[r]))
                    })
                    .collect();
                    writeln!(
                        out,
                        "  chunk {i} handle {}: replicas [{}], readable [{}]; {}",
                        c.handle,
                        ids(&c.locations),
                        ids(&c.readable),
                        if regions.is_empty() {
                            "empty".into()
                        } else {
                            regions.join(", ")
                        }
                    )?;
                    if c.readable.is_empty() {
                        healthy = false;
                    }
                }
            }
            if !healthy {
                writeln!(out, "some chunk has no readable replica")?;
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
