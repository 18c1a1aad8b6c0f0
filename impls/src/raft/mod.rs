//! The Raft KV service over TCP: the model's own [`RaftActor`] servers and client, run by
//! [`crate::node`], described to the runtime by [`RaftService`].
//!
//! - Servers: a node's actor from the cluster file: its peers are the file's other ids, its
//!   election timeout real milliseconds ([`Tuning::timeout`]), heartbeats to every follower every
//!   [`Tuning::heartbeat`]. Its storage is a checkpoint and a write-ahead log ([`wal`]: one
//!   `fdatasync` per batch of appended entries).
//! - Parallel writes (thesis §10.2.1, [`Tuning::parallel_write`], on by default): the leader's
//!   AppendEntries leave before its own write of the entries is durable ([`leader_append_early`]).
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
    ClientCfg, Heartbeats, RaftActor, RaftBug, RaftState, Reads, Role, ServerCfg, Storage,
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
        leader's lease (thesis §6.4.1); drift-bound: the clock drift a lease allows for; \
        parallel-write: the leader sends AppendEntries while it writes them (§10.2.1)";

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

    /// The leader writes its log in parallel with replication (thesis §10.2.1): its
    /// AppendEntries go out before the batch's save, under [`leader_append_early`]'s rule.
    fn early(tuning: &Tuning) -> Option<crate::node::Early<RaftActor>> {
        tuning
            .parallel_write
            .then_some(leader_append_early as crate::node::Early<RaftActor>)
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

/// Whether a server may send `msg` before its batch's save, given `durable`, the storage it
/// saved (or loaded) before the batch: only a leader's AppendEntries, and only when its term and
/// the entries up to its commit index were already durable. Thesis §10.2.1: "the leader may
/// write to its disk in parallel with replicating to followers"; it may not count itself
/// toward committing an entry until the entry is durable on its own disk.
///
/// Why this is safe on a node ([`crate::node`]):
/// - The leader counts itself only for durable entries. The node loop is single-threaded:
///   after the early sends it saves (one fsync), and only then handles the next batch. A reply
///   acknowledging entries is handled in a later batch than the AppendEntries that carried
///   them, so after the leader's own save of those entries. Without replies the leader can
///   commit alone only when it is the whole quorum (a one-server configuration): then the
///   commit index may cover entries of this very batch, and the check `leader_commit <=
///   durable.log.last_index()` keeps such an AppendEntries (to a server being added) for after
///   the save. Within a term a leader's log only grows (compaction keeps `last_index`), so the
///   durable log is a prefix of the log the message was cut from.
/// - The term is durable. The check `term == durable.current_term` says the leader's term was
///   saved by an earlier batch. With several voters that always holds: a candidate's term is
///   saved before its RequestVote leaves (not early), so it wins in a later batch. A
///   one-server configuration wins in the step that starts the election; its first
///   AppendEntries wait for the save, else a crash before the fsync could let it lead the
///   same term twice with different entries.
/// - A crash before the fsync loses entries only the leader of that term wrote and no one
///   acknowledged to a client (client replies, like every other message, wait for the save):
///   the restarted server is a follower of the same durable term, and its lost entries at most
///   survive on followers, as entries of a leader that crashed do in plain Raft.
/// - Nothing else goes early: votes and RequestVote (a vote and a candidate's own term must be
///   durable first), AppendEntries replies (a follower's acknowledgement means its entries
///   are durable), InstallSnapshot, client replies, configuration replies.
/// - Order: terms only grow, so the batch's last save has the highest term of the batch, at
///   least the durable term an early AppendEntries carries; a leader that steps down later in
///   the batch sent those AppendEntries while it led a durable term, as it would have a batch
///   earlier. Per destination, the node keeps program order ([`crate::node::Hooks::early`]).
pub fn leader_append_early(durable: Option<&Storage>, msg: &RaftMsg) -> bool {
    match (durable, msg) {
        (
            Some(d),
            RaftMsg::AppendEntries {
                term,
                leader_commit,
                ..
            },
        ) => *term == d.current_term && *leader_commit <= d.log.last_index(),
        _ => false,
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
    fn only_a_leaders_append_entries_on_durable_ground_go_early() {
        use models::raft::log::{Entry, EntryKind, Log};
        let noop = |term| Entry {
            term,
            kind: EntryKind::Noop,
        };
        // Durable before the batch: term 3, entries 1 and 2.
        let durable = Storage {
            current_term: 3,
            voted_for: Some(Id::from(0)),
            log: Log {
                snapshot: Default::default(),
                entries: vec![noop(1), noop(3)],
            },
        };
        let append = |term, leader_commit| RaftMsg::AppendEntries {
            term,
            leader_id: Id::from(0),
            prev_log_index: 2,
            prev_log_term: 3,
            entries: vec![noop(term)],
            leader_commit,
            round: 0,
        };
        let early = |m: &RaftMsg| leader_append_early(Some(&durable), m);
        // New entries go out while the leader writes them.
        assert!(early(&append(3, 2)));
        // A term this batch saves (a one-server configuration wins in the step that starts
        // its election) waits.
        assert!(!early(&append(4, 0)));
        // So does a commit index that counts entries not yet durable (a leader alone in its
        // configuration commits without replies).
        assert!(!early(&append(3, 3)));
        assert!(!leader_append_early(None, &append(3, 0)));
        for m in [
            RaftMsg::AppendEntriesReply {
                term: 3,
                success: true,
                match_index: 2,
                round: 0,
            },
            RaftMsg::RequestVote {
                term: 3,
                candidate_id: Id::from(0),
                last_log_index: 2,
                last_log_term: 3,
            },
            RaftMsg::RequestVoteReply {
                term: 3,
                vote_granted: true,
            },
        ] {
            assert!(!early(&m), "{m:?}");
        }
        // Off under `--no-parallel-write`.
        assert!(RaftService::early(&Tuning::default()).is_some());
        let off = Tuning {
            parallel_write: false,
            ..Tuning::default()
        };
        assert!(RaftService::early(&off).is_none());
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
