//! Chain replication and CRAQ over TCP: the model's own [`ChainActor`] master, chain nodes and
//! client, described to the runtime by [`ChainService`] (`chain`) and [`CraqService`] (`craq`).
//!
//! - The cluster file's first node is the master; the others are the chain, head first, in id
//!   order. The master is the failure detector (§3 assumes one): it probes the nodes every
//!   [`Tuning::heartbeat`] and removes one that leaves more than `MISSED_PROBES` probes in a row
//!   unanswered, keeping the chain and its number on disk. The papers replicate the master;
//!   here it is one process that keeps its chain.
//! - Nodes keep no history on disk, only how many times they have started. One that starts
//!   again, runs out of its lease, or hears that the master removed it has lost its state (or
//!   may have missed updates): it comes back empty and asks the master to add it at the tail,
//!   and the old tail hands it its history (CR §3, "extending a chain"). So a chain survives
//!   any number of failures, one at a time, as long as one node holds the data.
//! - Links may lose messages (the runtime's `loss` fault): nodes resend what a probe finds
//!   stuck, probes carry the master's chain, and clients ask again (`NodeCfg::resend`).
//! - Client: the model's client actor: writes to the head, reads at the tail (CR) or spread over
//!   the chain (CRAQ); a request unanswered for [`Tuning::timeout`] makes it ask the master for
//!   the chain and send it again.
//! - Jepsen: the key-value workload and linearizability check of [`crate::kv`].

use std::path::Path;
use std::time::Duration;

use models::chain::actor::ChainStorage;
use models::chain::{
    ChainActor, ChainBug, ChainMsg, ChainState, ClientCfg, MasterCfg, Mode, NodeCfg, ReadAt,
};
use models::client::{ClientMsg, RequestId};
use models::raft::kv::{KvOp, KvRet};
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::jepsen::{History, Nemesis};
use crate::kv;
use crate::rng::Rng;
use crate::service::{Checked, Client, Jepsen, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// The master and the chain (head first) of a cluster file: its first id, and the others.
pub fn roles(cluster: &ClusterConfig) -> (Id, Vec<Id>) {
    let mut ids = cluster.nodes.keys().copied();
    let master = ids.next().unwrap_or(Id::from(0));
    (master, ids.collect())
}

fn server(
    mode: Mode,
    cluster: &ClusterConfig,
    id: Id,
    tuning: &Tuning,
    bug: Option<&'static str>,
) -> Result<ChainActor, ServiceError> {
    ServiceError::check_member(cluster, id)?;
    let (master, chain) = roles(cluster);
    if chain.is_empty() {
        return Err(ServiceError::Invalid(
            "a chain needs a master and at least one node (two ids in the cluster file)".into(),
        ));
    }
    let bug = bug
        .map(|b| {
            ChainBug::from_name(b).ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
        })
        .transpose()?;
    Ok(if id == master {
        ChainActor::Master(MasterCfg {
            chain,
            clients: Vec::new(),
            probe: Some(tuning.heartbeat..tuning.heartbeat),
            persist: true,
        })
    } else {
        ChainActor::Node(NodeCfg {
            master,
            chain,
            mode,
            fail_after: None,
            persist: true,
            rejoin: true,
            resend: true,
            // Two probe intervals and a half: it runs out a probe and a half before the master
            // removes the node (after more than `MISSED_PROBES` = 3 probes unanswered).
            lease: Some(tuning.heartbeat * 5 / 2..tuning.heartbeat * 5 / 2),
            bug,
        })
    })
}

/// A chain as `cluster status` shows it: `1 -> 2 -> 3`.
fn show_chain(chain: &[Id]) -> String {
    let ids: Vec<String> = chain.iter().map(|n| usize::from(*n).to_string()).collect();
    ids.join(" -> ")
}

fn describe(state: &ChainState) -> Option<String> {
    match state {
        ChainState::Master(s) => Some(format!("master of chain {}", show_chain(&s.chain))),
        ChainState::Node(s) if s.chain.is_empty() => {
            Some("joining (asked the master to add it at the tail)".into())
        }
        ChainState::Node(s) => {
            let chain = show_chain(&s.chain);
            Some(match s.catching_up {
                Some(_) => format!("catching up at the tail of chain {chain}"),
                None => format!("node of chain {chain}"),
            })
        }
        ChainState::Failed => Some("failed (out of the chain)".into()),
        ChainState::Client(_) => None,
    }
}

/// What a node counts: the reads and writes clients send it, and the version queries it gets
/// as the tail (CRAQ §2.3: a read of a dirty version costs one).
fn kind(msg: &ChainMsg) -> Option<&'static str> {
    match msg {
        ChainMsg::Client(ClientMsg::Request {
            op: KvOp::Get(_), ..
        }) => Some("reads"),
        ChainMsg::Client(ClientMsg::Request { .. }) => Some("writes"),
        ChainMsg::VersionQuery { .. } => Some("version queries"),
        _ => None,
    }
}

fn client(mode: Mode, cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> ChainActor {
    let (master, chain) = roles(cluster);
    ChainActor::Client(ClientCfg {
        chain,
        reads: match mode {
            Mode::Cr => ReadAt::Tail,
            Mode::Craq => ReadAt::Spread,
        },
        ops: Vec::new(),
        driver: Some(driver),
        master,
        retry: Some(tuning.timeout.clone()),
    })
}

fn tuning() -> Tuning {
    Tuning {
        // The client's retry timeout.
        timeout: Duration::from_millis(400)..Duration::from_millis(600),
        // The master's probe interval.
        heartbeat: Duration::from_millis(100),
        snapshot_every: 0,
        ..Tuning::default()
    }
}

macro_rules! chain_service {
    ($name:ident, $mode:expr, $proto:literal, $summary:literal, $bugs:expr) => {
        #[doc = concat!("`", $proto, "` in the service registry.")]
        pub struct $name;

        impl Service for $name {
            type Actor = ChainActor;
            type Msg = ChainMsg;
            type State = ChainState;
            type Store = JsonFile;

            const NAME: &'static str = $proto;
            const SUMMARY: &'static str = $summary;
            const TUNING_HELP: &'static str = "timeout: a client's retry timeout; heartbeat: \
                the master's probe interval (a node missing 3 probes in a row is removed)";

            fn bugs() -> Vec<&'static str> {
                $bugs.iter().map(|b: &ChainBug| b.name()).collect()
            }

            fn tuning() -> Tuning {
                tuning()
            }

            fn server(
                cluster: &ClusterConfig,
                id: Id,
                tuning: &Tuning,
                bug: Option<&'static str>,
                _data_dir: &Path,
            ) -> Result<ChainActor, ServiceError> {
                server($mode, cluster, id, tuning, bug)
            }

            fn store(dir: &Path) -> JsonFile {
                JsonFile(dir.to_path_buf())
            }

            fn describe(state: &ChainState) -> Option<String> {
                describe(state)
            }

            fn kind(msg: &ChainMsg) -> Option<&'static str> {
                kind(msg)
            }
        }

        impl Client for $name {
            type Op = KvOp;
            type Ret = KvRet;
            const OPS_HELP: &'static str = kv::OPS_HELP;

            fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> ChainActor {
                client($mode, cluster, driver, tuning)
            }

            fn invoke(seq: RequestId, op: KvOp) -> (RequestId, ChainMsg) {
                (seq, ChainMsg::Client(ClientMsg::Invoke { seq, op }))
            }

            fn returned(msg: ChainMsg) -> Option<(RequestId, KvRet)> {
                match msg {
                    ChainMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
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

        impl Jepsen for $name {
            fn workload(rng: &mut Rng, keys: usize, id: u64) -> KvOp {
                kv::workload(rng, keys, id)
            }

            fn read_only(op: &KvOp) -> bool {
                kv::read_only(op)
            }

            fn check(history: &History<KvOp, KvRet>, dir: &Path) -> anyhow::Result<Checked> {
                kv::check_history(history, dir)
            }

            fn one_at_a_time() -> Option<Id> {
                Some(Id::from(0))
            }

            fn nemeses() -> &'static [Nemesis] {
                &[
                    Nemesis::Kill,
                    Nemesis::Partition,
                    Nemesis::Loss,
                    Nemesis::Delay,
                ]
            }
        }
    };
}

chain_service!(
    ChainService,
    Mode::Cr,
    "chain",
    "chain replication: writes at the head, reads at the tail (van Renesse & Schneider §§2, 3)",
    [
        ChainBug::ReadAnyReplica,
        ChainBug::NoResend,
        ChainBug::AckBeforeTail,
        ChainBug::ServeBeforeHandover,
        ChainBug::NoHandover
    ]
);

chain_service!(
    CraqService,
    Mode::Craq,
    "craq",
    "CRAQ: chain replication with reads at every node (Terrace & Freedman §2.3)",
    [
        ChainBug::CraqDirtyRead,
        ChainBug::NoResend,
        ChainBug::AckBeforeTail,
        ChainBug::ServeBeforeHandover,
        ChainBug::NoHandover
    ]
);

/// The storage a chain node or master keeps, for tests.
pub fn stored(dir: &Path) -> std::io::Result<Option<ChainStorage>> {
    crate::storage::load(dir)
}
