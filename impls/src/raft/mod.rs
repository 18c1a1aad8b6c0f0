//! The Raft KV service over TCP: the model's own [`RaftActor`] servers and client, run by
//! [`crate::node`], described to the runtime by [`RaftService`].
//!
//! - Servers: a node's actor from the cluster file: its peers are the file's other ids, its
//!   election timeout real milliseconds ([`Tuning::timeout`]), heartbeats to every follower every
//!   [`Tuning::heartbeat`]. Its storage is a checkpoint and a write-ahead log ([`wal`]: one
//!   `fdatasync` per batch of appended entries).
//! - Client: the model's client actor, driven by [`crate::client::Driven`]: the same `Request`
//!   messages with a client id and request ids, redirects on `Redirect`, retries of the same
//!   request id on the next server after a timeout (the session table runs a retried command
//!   once).
//! - Jepsen: random get/put/append on a few keys; the history is checked for linearizability
//!   against `KvStore`, the specification the model's store follows too ([`crate::kv`]).

pub mod wal;

use std::path::Path;
use std::time::Duration;

use models::client::{ClientMsg, RequestId};
use models::raft::actor::{
    ClientCfg, Heartbeats, RaftActor, RaftBug, RaftState, Reads, Role, ServerCfg,
};
use models::raft::kv::{KvOp, KvRet};
use models::raft::RaftMsg;
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::jepsen::History;
use crate::kv;
use crate::rng::Rng;
use crate::service::{Checked, Client, Jepsen, Service, ServiceError, Tuning};

/// Raft's entry in the service registry.
pub struct RaftService;

impl Service for RaftService {
    type Actor = RaftActor;
    type Msg = RaftMsg;
    type State = RaftState;
    type Store = wal::RaftWal;

    const NAME: &'static str = "raft";
    const SUMMARY: &'static str = "a linearizable key-value store on Raft (§§5, 7, 8)";
    const TUNING_HELP: &'static str = "timeout: the randomised election timeout (§5.2); \
        heartbeat: the leader's AppendEntries interval; snapshot-every: entries between snapshots; \
        snapshot-chunk: keys and sessions per InstallSnapshot chunk; \
        log-reads: Gets through the log instead of ReadIndex; lease-reads: Gets under the \
        leader's lease (thesis §6.4.1); drift-bound: the clock drift a lease allows for";

    fn bugs() -> Vec<&'static str> {
        RaftBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<RaftActor, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let bug = bug
            .map(|b| {
                RaftBug::from_name(b)
                    .ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
            })
            .transpose()?;
        Ok(RaftActor::Server(ServerCfg {
            peers: cluster.nodes.keys().copied().filter(|p| *p != id).collect(),
            members: cluster
                .nodes
                .keys()
                .copied()
                .take(tuning.members.unwrap_or(usize::MAX))
                .collect(),
            // Only administrators send them: the runtime cuts off a client or a peer that
            // does ([`RaftService::membership`]).
            accept_changes: true,
            election_timeout: tuning.timeout.clone(),
            heartbeat: tuning.heartbeat,
            snapshot_every: tuning.snapshot_every,
            snapshot_chunk: tuning.snapshot_chunk.max(1),
            heartbeats: Heartbeats::Every,
            reads: if tuning.log_reads {
                Reads::Log
            } else if tuning.lease_reads {
                Reads::Lease
            } else {
                Reads::ReadIndex
            },
            guard: true,
            drift_bound: tuning.drift_bound,
            noop: true,
            bug,
        }))
    }

    fn jepsen_tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(150)..Duration::from_millis(300),
            heartbeat: Duration::from_millis(30),
            snapshot_every: 200,
            ..Tuning::default()
        }
    }

    fn store(dir: &Path) -> wal::RaftWal {
        wal::RaftWal::new(dir)
    }

    /// AddServer and RemoveServer (thesis §4.1), from administrators only.
    fn membership() -> Option<crate::node::Membership<RaftMsg>> {
        Some(crate::node::Membership {
            request: |server, add| {
                if add {
                    RaftMsg::AddServer { new_server: server }
                } else {
                    RaftMsg::RemoveServer { old_server: server }
                }
            },
            reply: |msg| match msg {
                RaftMsg::ServerChangeReply {
                    ok, leader_hint, ..
                } => Some((*ok, *leader_hint)),
                _ => None,
            },
            admin_only: |msg| {
                matches!(
                    msg,
                    RaftMsg::AddServer { .. } | RaftMsg::RemoveServer { .. }
                )
            },
        })
    }

    fn describe(state: &RaftState) -> Option<String> {
        let RaftState::Server(s) = state else {
            return None;
        };
        let term = s.current_term;
        Some(match &s.role {
            Role::Leader { .. } => format!("leader of term {term}"),
            Role::Candidate { .. } => format!("candidate in term {term}"),
            Role::Follower { leader: Some(l) } => {
                format!("follower in term {term} (leader {})", usize::from(*l))
            }
            Role::Follower { leader: None } => format!("follower in term {term}"),
        })
    }
}

impl Client for RaftService {
    type Op = KvOp;
    type Ret = KvRet;
    const OPS_HELP: &'static str = kv::OPS_HELP;

    fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> RaftActor {
        RaftActor::Client(ClientCfg {
            servers: cluster.nodes.keys().copied().collect(),
            ops: Vec::new(),
            retry_timeout: tuning.timeout.clone(),
            max_retries: None,
            driver: Some(driver),
        })
    }

    fn invoke(seq: RequestId, op: KvOp) -> (RequestId, RaftMsg) {
        (seq, RaftMsg::Client(ClientMsg::Invoke { seq, op }))
    }

    fn returned(msg: RaftMsg) -> Option<(RequestId, KvRet)> {
        match msg {
            RaftMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<KvOp, String> {
        kv::parse_op(words)
    }

    fn show_op(op: &KvOp) -> String {
        kv::show_op(op)
    }

    fn show(ret: &KvRet) -> String {
        kv::show(ret)
    }
}

impl Jepsen for RaftService {
    fn nemeses() -> &'static [crate::jepsen::Nemesis] {
        use crate::jepsen::Nemesis;
        &[
            Nemesis::Kill,
            Nemesis::Partition,
            Nemesis::Loss,
            Nemesis::Delay,
            Nemesis::Membership,
            Nemesis::Clock,
        ]
    }

    fn workload(rng: &mut Rng, keys: usize, id: u64) -> KvOp {
        kv::workload(rng, keys, id)
    }

    fn read_only(op: &KvOp) -> bool {
        kv::read_only(op)
    }

    fn check(history: &History<KvOp, KvRet>, dir: &Path) -> anyhow::Result<Checked> {
        kv::check_history(history, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_knows_its_peers_from_the_cluster_file() {
        let c = ClusterConfig::parse(
            "c",
            "[nodes]\n0 = \"127.0.0.1:1\"\n1 = \"127.0.0.1:2\"\n2 = \"127.0.0.1:3\"\n",
        )
        .unwrap();
        let RaftActor::Server(cfg) =
            RaftService::server(&c, Id::from(1), &Tuning::default(), None, Path::new(".")).unwrap()
        else {
            panic!("a server");
        };
        assert_eq!(cfg.peers, vec![Id::from(0), Id::from(2)]);
        assert!(
            RaftService::server(&c, Id::from(5), &Tuning::default(), None, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("0, 1, 2")
        );
    }

    #[test]
    fn client_operations_parse_or_explain() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            RaftService::parse_op(&w("put k v")),
            Ok(KvOp::Put("k".into(), "v".into()))
        );
        assert_eq!(
            RaftService::parse_op(&w("get k")),
            Ok(KvOp::Get("k".into()))
        );
        assert!(RaftService::parse_op(&w("cas k 1 2"))
            .unwrap_err()
            .contains("put KEY VALUE"));
    }
}
