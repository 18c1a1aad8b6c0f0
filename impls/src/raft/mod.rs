//! The Raft KV service over TCP: the model's own [`RaftActor`] servers, run by [`crate::node`].
//!
//! - [`server`]: a node's actor from the cluster file: its peers are the file's other ids, its
//!   timeouts real milliseconds ([`Timing`]), heartbeats to every follower every interval.
//! - [`client`]: a blocking client speaking the model client's protocol: the same `Request`
//!   messages with a client id and sequence numbers, redirects on `NotLeader`, retries of the same
//!   sequence number on another server after a timeout.
//! - [`cluster`]: starts and stops `node` processes on 127.0.0.1, kills and restarts them, and
//!   sets their injected faults.
//! - [`wal`]: the server's storage as a checkpoint and a write-ahead log (one `fdatasync` per
//!   batch of appended entries).
//! - [`jepsen`]: concurrent clients and a nemesis against a cluster, and the history's check.

pub mod client;
pub mod cluster;
pub mod jepsen;
pub mod wal;

use std::ops::Range;
use std::time::Duration;

use models::raft::actor::{Heartbeats, RaftActor, RaftBug, ServerCfg};
use stateright::actor::Id;

use crate::config::ClusterConfig;

/// A server's real timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The randomised election timeout (§5.2).
    pub election: Range<Duration>,
    /// The leader's AppendEntries interval; well under the election timeout (§5.6: broadcast
    /// time ≪ election timeout).
    pub heartbeat: Duration,
    /// Snapshot after this many applied entries (§7).
    pub snapshot_every: u64,
    /// A seeded bug of the model (`checker list` names them), to show that the Jepsen-style test
    /// catches it on a real cluster.
    pub bug: Option<RaftBug>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            election: Duration::from_millis(300)..Duration::from_millis(600),
            heartbeat: Duration::from_millis(50),
            snapshot_every: 1000,
            bug: None,
        }
    }
}

/// Why a server cannot be built from a cluster file.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("node {0} is not in the cluster file (its ids: {1})")]
    UnknownId(usize, String),
}

/// The actor of server `id` of `cluster`.
pub fn server(cluster: &ClusterConfig, id: Id, timing: &Timing) -> Result<RaftActor, ServerError> {
    if !cluster.nodes.contains_key(&id) {
        let ids: Vec<String> = cluster
            .nodes
            .keys()
            .map(|i| usize::from(*i).to_string())
            .collect();
        return Err(ServerError::UnknownId(usize::from(id), ids.join(", ")));
    }
    Ok(RaftActor::Server(ServerCfg {
        peers: cluster.nodes.keys().copied().filter(|p| *p != id).collect(),
        election_timeout: timing.election.clone(),
        heartbeat: timing.heartbeat,
        snapshot_every: timing.snapshot_every,
        heartbeats: Heartbeats::Every,
        bug: timing.bug,
    }))
}

/// Parses `LOW-HIGH` milliseconds (`300-600`) or one number of milliseconds.
pub fn parse_ms_range(s: &str) -> Result<Range<Duration>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("'{s}' is not LOW-HIGH milliseconds"))
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(s)?, num(s)?),
    };
    if lo == 0 || hi < lo {
        return Err(format!("'{s}': need 0 < LOW <= HIGH"));
    }
    Ok(Duration::from_millis(lo)..Duration::from_millis(hi))
}

/// Parses a seeded bug's name.
pub fn parse_bug(name: &str) -> Result<RaftBug, String> {
    RaftBug::from_name(name).ok_or_else(|| {
        format!("unknown bug '{name}' (`checker list` shows raft's bugs, e.g. stale-read)")
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_ranges_parse_or_explain() {
        assert_eq!(
            parse_ms_range("150-300").unwrap(),
            Duration::from_millis(150)..Duration::from_millis(300)
        );
        assert_eq!(
            parse_ms_range("50").unwrap().start,
            Duration::from_millis(50)
        );
        assert!(parse_ms_range("300-150").is_err());
        assert!(parse_ms_range("0").is_err());
        assert!(parse_ms_range("soon").unwrap_err().contains("milliseconds"));
    }

    #[test]
    fn a_server_knows_its_peers_from_the_cluster_file() {
        let c = ClusterConfig::parse(
            "c",
            "[nodes]\n0 = \"127.0.0.1:1\"\n1 = \"127.0.0.1:2\"\n2 = \"127.0.0.1:3\"\n",
        )
        .unwrap();
        let RaftActor::Server(cfg) = server(&c, Id::from(1), &Timing::default()).unwrap() else {
            panic!("a server");
        };
        assert_eq!(cfg.peers, vec![Id::from(0), Id::from(2)]);
        assert!(server(&c, Id::from(5), &Timing::default())
            .unwrap_err()
            .to_string()
            .contains("0, 1, 2"));
    }
}
