//! The TCP runtime that drives the same stateright actors the models check, and the runtimes of the
//! data-processing papers built on it.
//!
//! - [`frame`]: length-prefixed frames, with a size limit, over any byte stream.
//! - [`config`]: a cluster file (TOML) mapping actor ids to socket addresses.
//! - [`storage`]: an actor's `Save`d storage, and [`storage::write_atomic`], the one way files are
//!   replaced here (temp file, fsync, rename, directory fsync).
//! - [`rng`]: the seeded random generator of the runtime, the Jepsen-style test and the load
//!   generator; a run logs its seed so that it can be replayed.
//! - [`node`]: runs one actor: its messages over TCP, its timers with real durations, its storage.
//! - [`service`]: the service registry: for each protocol that runs over TCP, its server actors,
//!   store, client operations, workload and history check. The binaries `node`, `cluster`,
//!   `client`, `jepsen` take a protocol's name and find it there.
//! - [`client`]: the runtime's client: the model's client actor, driven by an operation queue.
//! - [`supervisor`]: local processes started, watched, killed and restarted.
//! - [`tls`]: who may speak to a node: mutual TLS, the cluster's certificate authority.
//! - [`cluster`]: a local cluster of `node` processes: start, kill, restart, faults, status.
//! - [`jepsen`]: concurrent clients and a nemesis against a cluster, and the history's check.
//! - [`viewer`]: the page of a `jepsen` run: its operations and faults on a timeline, the
//!   operations a failed check names, the latency over time.
//! - [`kv`]: a key-value store's client side (operations, workload, the linearizability check),
//!   shared by the KV protocols.
//! - [`raft`]: the Raft KV service (Raft's entry in the registry) and its write-ahead log.
//! - [`chain`]: chain replication and CRAQ (their entries in the registry): a master that
//!   detects failures, fail-stop chain nodes, the model's client.
//! - [`twopc`]: two-phase locking and two-phase commit (its entry in the registry): shards,
//!   coordinating clients, and the strict-serializability check of a live history.
//! - [`mapreduce`]: the MapReduce runtime: the model's coordinator over TCP, real workers, apps.
//! - [`memcache`]: Memcache at Facebook (its entry in the registry): the model's web servers,
//!   database and mcsqueal, with two real memcached (memcache, with its meta-protocol leases,
//!   and the gutter) behind cache nodes; a history check of freshness.
//! - [`spark`]: Spark's RDDs, in one process for now, and PageRank on them.
//! - [`gfs`]: GFS (its entry in the registry): the model's master and chunkservers over TCP,
//!   chunk files with checksums, data ports, the client library and `gfs fsck`.
//! - [`vmft`]: VMware FT (its entry in the registry): the model's primary and backup VMs and
//!   test-and-set server over TCP, real heartbeats, and the Output Requirement's check of the
//!   outputs a client received.
//! - [`aurora`]: Amazon Aurora (its entry in the registry, and the mirrored baseline's): the
//!   model's writer and six storage segments over TCP, clients' puts committed at the VDL, reads
//!   at one segment, recovery at a new epoch, and a fixed kill plan for `jepsen aurora`.
//! - [`frangipani`]: Frangipani (its entry in the registry): the model's file servers, lock
//!   server and Petal over TCP, once per file, with real leases, Petal on disk, and a file API.
//! - [`bitcoin`]: Bitcoin (its entry in the registry): full nodes that mine real headers at a
//!   low target, gossip blocks, follow the most-work chain and reorganise; a miner may withhold
//!   a private chain, and a merchant asks for confirmations.
//! - [`zk`]: ZooKeeper's wire protocol and data tree, for a server that stock clients talk to.

pub mod aurora;
pub mod bitcoin;
pub mod blockstack;
pub mod chain;
pub mod client;
pub mod cluster;
pub mod config;
pub mod cops;
pub mod frame;
pub mod frangipani;
pub mod gfs;
pub mod jepsen;
pub mod kv;
pub mod mapreduce;
pub mod memcache;
pub mod node;
pub mod raft;
pub mod rng;
pub mod service;
pub mod spark;
pub mod storage;
pub mod supervisor;
pub mod tls;
pub mod twopc;
pub mod viewer;
pub mod vmft;
pub mod zk;

/// Sets up `tracing` for a binary: to stderr, `RUST_LOG` or else `default`.
pub fn init_tracing(default: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
}

/// The command line of a binary, or the exit code to leave with: 0 after `--help` or `--version`
/// (printed), 2 after a usage error (explained on stderr).
pub fn parse_args<T: clap::Parser>() -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}

/// Serves each connection `listener` accepts in a thread of its own, with `serve`, for as long
/// as the process runs: the data ports of GFS's chunkservers and Spark's workers. A connection
/// that ends in an error is logged (at debug: a peer that hangs up is not news) and closed.
pub fn serve_connections(
    listener: std::net::TcpListener,
    what: &'static str,
    serve: impl Fn(std::net::TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) {
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let serve = serve.clone();
            std::thread::spawn(move || {
                if let Err(e) = serve(conn) {
                    tracing::debug!(error = %e, "{what} connection closed");
                }
            });
        }
    });
}
