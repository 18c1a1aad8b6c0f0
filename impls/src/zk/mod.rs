//! A ZooKeeper ensemble that stock ZooKeeper clients use: each server runs the model's Zab
//! actor ([`models::zab`]) over TCP, keeps a transaction log on disk, and speaks ZooKeeper's
//! client protocol on its data port (`cluster zk`, `node zk`).
//!
//! - [`jute`]: the wire format of ZooKeeper's clients (the jute records of `zookeeper.jute`).
//! - [`tree`]: the data tree every server applies the delivered transactions to.
//! - [`auth`]: who a client connection is, and what ACLs let it do; the super user
//!   ([`auth::SUPER_DIGEST_VAR`]).
//! - [`server`]: the server actor: Zab, leader election, pings, sessions.
//! - [`db`]: the tree as a server holds it, and its client port.
//! - [`store`]: the epochs and the transaction log on disk.
//! - [`client`]: a small client over jute, with pipelined requests.
//! - [`jepsen`]: `jepsen zk`: register and lock clients under faults, checked for linearizable
//!   writes, FIFO client order and the lock recipe's single holder.

pub mod auth;
pub mod client;
pub mod db;
pub mod jepsen;
pub mod jute;
pub mod server;
pub mod store;
pub mod tree;

use std::path::Path;
use std::time::Duration;

use models::zab::ZabBug;
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::service::{Service, ServiceError, Tuning};
use server::{ZkMsg, ZkServer, ZkState};

/// The `zk` service: a ZooKeeper ensemble. Its nodes' data ports are ZooKeeper client ports.
pub struct ZkService;

impl Service for ZkService {
    type Actor = ZkServer;
    type Msg = ZkMsg;
    type State = ZkState;
    type Store = store::ZkStore;

    const NAME: &'static str = "zk";
    const SUMMARY: &'static str =
        "ZooKeeper: Zab between the servers, ZooKeeper's client protocol on each data port";
    const TUNING_HELP: &'static str = "--heartbeat-ms: the tick (pings, election notifications); \
         --timeout-ms: how long a silent leader or a lost quorum is borne (syncLimit); \
         --snapshot-every: delivered txns between snapshots of the tree (snapCount; 0: never); \
         --session-min-ms: the shortest session timeout granted (minSessionTimeout)";
    const DATA_PORTS: bool = true;

    fn bugs() -> Vec<&'static str> {
        ZabBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(200)..Duration::from_millis(200),
            heartbeat: Duration::from_millis(20),
            // ZooKeeper's snapCount is 100,000; its snapshots are taken by another thread,
            // ours between two steps.
            snapshot_every: 10_000,
            ..Tuning::default()
        }
    }

    /// Sessions as short as [`jepsen::LOCK_SESSION`]'s, so that a paused lock client's session
    /// expires within a short run.
    fn jepsen_tuning() -> Tuning {
        Tuning {
            session_min: Duration::from_millis(200),
            // The lock check replays a server's whole log, which a snapshot would cut short.
            snapshot_every: 0,
            ..Self::tuning()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<ZkServer, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let Some(client_port) = cluster.data.get(&id).copied() else {
            return Err(ServiceError::Invalid(format!(
                "node {} has no client port (the cluster file's [data] table)",
                usize::from(id)
            )));
        };
        let tick = tuning.heartbeat.max(Duration::from_millis(1));
        let limit = (tuning.timeout.start.as_millis() / tick.as_millis()).max(2) as u32;
        let servers: Vec<Id> = cluster.nodes.keys().copied().collect();
        let bug = match bug {
            None => None,
            Some(name) => Some(ZabBug::from_name(name).ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "'{name}' is not a bug of the servers (it is one of `jepsen zk`'s lock clients)"
                ))
            })?),
        };
        let server =
            ZkServer::new(id, servers, bug, tick, limit).with_snap_count(tuning.snapshot_every);
        {
            let mut db = server.db.lock().expect("db lock");
            db.set_super_digest(auth::super_digest_from_env());
            db.set_min_session_ms(tuning.session_min.as_millis().min(i32::MAX as u128) as i32);
        }
        let listener = std::net::TcpListener::bind(client_port)
            .map_err(|e| ServiceError::Invalid(format!("client port {client_port}: {e}")))?;
        let db = server.db.clone();
        crate::serve_connections(listener, "client", move |s| db::serve(db.clone(), s));
        Ok(server)
    }

    fn store(dir: &Path) -> store::ZkStore {
        store::ZkStore::new(dir)
    }

    fn describe(state: &ZkState) -> Option<String> {
        Some(server::describe(state))
    }

    fn inbox(actor: &ZkServer) -> Option<crate::node::GiveInbox<ZkMsg>> {
        let db = actor.db.clone();
        Some(Box::new(move |inbox| {
            db.lock().expect("db lock").set_inbox(inbox)
        }))
    }

    fn peer_closed(peer: Id) -> Option<ZkMsg> {
        Some(ZkMsg::PeerClosed(usize::from(peer)))
    }

    fn kind(msg: &ZkMsg) -> Option<&'static str> {
        Some(match msg {
            ZkMsg::Zab(models::zab::ZabMsg::Proposal { .. }) => "PROPOSAL",
            ZkMsg::Zab(models::zab::ZabMsg::Commit { .. }) => "COMMIT",
            ZkMsg::Request(_) => "REQUEST",
            ZkMsg::NewLeaderDiff { tail, .. } if tail.first().is_some_and(|e| e.is_snapshot()) => {
                "SNAP"
            }
            ZkMsg::NewLeaderDiff { .. } => "DIFF",
            _ => return None,
        })
    }
}
