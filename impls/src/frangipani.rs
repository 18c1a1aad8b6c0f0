//! Frangipani over TCP: the model's file servers, lock server and Petal, run once per file by
//! `models::frangipani::tcp`, and a client of a small file API, described to the runtime by
//! [`FrangipaniService`] (`frangipani`).
//!
//! - The cluster file's four nodes, in id order, are the model's: file servers `a` (node 0)
//!   and `b` (node 1), the lock server (node 2) and Petal (node 3).
//! - Operations (`client frangipani`): `write FS NAME DATA`, `read FS NAME`, `ls FS`, where FS
//!   is `a` or `b`, the file server that runs it. A write is acknowledged once its log record
//!   is on Petal's disk (§4); a read takes the file's read lock (§6) and returns the cached
//!   block or Petal's (§5).
//! - Timing ([`Tuning`]): `heartbeat` is the lease tick (a clerk renews that often),
//!   `session_min` the lease (the margin is half of it, as the paper's 30 s and 15 s), and
//!   `timeout`'s low end the update demon's period (§5: 30 s).
//! - Storage: Petal keeps its blocks and logs on disk; the lock server and the file servers
//!   keep nothing (a restarted file server has its log recovered, then joins again).
//! - No Jepsen test: killing the lock server loses every lock (the paper replicates it). The
//!   faults that matter (kill -9 of a file server with a dirty log, a Petal restart) are in
//!   `tests/frangipani_cluster.rs`, whose histories [`check_history`] checks for
//!   linearizability with `properties`, each file a register.

use std::path::Path;
use std::time::Duration;

use models::client::{ClientMsg, RequestId};
use models::frangipani::tcp::{
    self, FileCall, FileOp, FileRet, FrangipaniNode, NodeMsg, NodeState, Timing,
};
use models::frangipani::{FrangipaniBug, LockServerCfg, PetalCfg, ServerCfg, Ticks};
use models::raft::kv::{KvOp, KvRet};
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::jepsen::{History, Outcome};
use crate::service::{Checked, Client, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// The file servers' names, by index: `a` is node 0, `b` node 1.
pub const FILE_SERVERS: [&str; 2] = ["a", "b"];

/// The file servers, the lock server and Petal of a cluster file, in id order.
pub fn roles(cluster: &ClusterConfig) -> Result<(Vec<Id>, Id, Id), ServiceError> {
    let ids: Vec<Id> = cluster.nodes.keys().copied().collect();
    match ids[..] {
        [a, b, lock_server, petal] => Ok((vec![a, b], lock_server, petal)),
        _ => Err(ServiceError::Invalid(format!(
            "frangipani runs on 4 nodes (file servers a and b, the lock server, Petal); the \
             cluster file has {}",
            ids.len()
        ))),
    }
}

/// The real durations from the tuning.
pub fn timing(tuning: &Tuning) -> Timing {
    let tick = tuning.heartbeat.max(Duration::from_millis(1));
    let ticks = (tuning.session_min.as_millis() / tick.as_millis().max(1)).clamp(4, 250);
    let lease = ticks as Ticks;
    Timing {
        tick,
        lease,
        margin: lease / 2,
        sync: tuning.timeout.start,
    }
}

/// `frangipani` in the service registry.
pub struct FrangipaniService;

impl Service for FrangipaniService {
    type Actor = FrangipaniNode;
    type Msg = NodeMsg;
    type State = NodeState;
    type Store = JsonFile;

    const NAME: &'static str = "frangipani";
    const SUMMARY: &'static str = "Frangipani: two file servers over one Petal, coherent caches \
        under read/write locks, write-ahead logs replayed by version, leases (Thekkath et al. \
        §§4-6)";
    const TUNING_HELP: &'static str = "heartbeat: the lease tick (a file server renews its lease \
        that often); session-min: the lease (the margin is half of it); timeout: its low end is \
        the update demon's period";

    fn nodes() -> Option<usize> {
        Some(4)
    }

    fn bugs() -> Vec<&'static str> {
        FrangipaniNode::BUGS.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            heartbeat: Duration::from_millis(100),
            session_min: Duration::from_millis(1500),
            timeout: Duration::from_millis(1000)..Duration::from_millis(1000),
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<FrangipaniNode, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let (servers, lock_server, petal) = roles(cluster)?;
        let bug = bug
            .map(|b| {
                FrangipaniBug::from_name(b)
                    .filter(|b| FrangipaniNode::BUGS.contains(b))
                    .ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
            })
            .transpose()?;
        let timing = timing(tuning);
        Ok(if id == lock_server {
            FrangipaniNode::LockServer {
                model: LockServerCfg { servers, bug },
                timing,
            }
        } else if id == petal {
            FrangipaniNode::Petal {
                model: PetalCfg { servers },
            }
        } else {
            FrangipaniNode::FileServer {
                model: ServerCfg {
                    lock_server,
                    petal,
                    script: Vec::new(),
                    lease: timing.lease,
                    margin: timing.margin,
                    may_cut: false,
                    bug,
                },
                timing,
            }
        })
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    fn describe(state: &NodeState) -> Option<String> {
        tcp::describe(state)
    }

    /// A file server that loses its connection with Petal (Petal restarted) pings it until it
    /// answers, then sends again what it still awaits (`tcp.rs`).
    fn peer_closed(peer: Id) -> Option<NodeMsg> {
        Some(NodeMsg::PeerClosed { peer })
    }

    fn kind(msg: &NodeMsg) -> Option<&'static str> {
        use models::frangipani::FrangipaniMsg as M;
        match msg {
            NodeMsg::File { msg, .. } => match msg {
                M::Request { .. } => Some("lock requests"),
                M::Revoke { .. } => Some("revokes"),
                M::AppendLog { .. } => Some("log records"),
                M::Write { .. } => Some("block writes"),
                M::Recover { .. } => Some("recoveries"),
                _ => None,
            },
            NodeMsg::Renew { .. } => Some("lease renewals"),
            NodeMsg::Client(ClientMsg::Request { .. }) => Some("client requests"),
            _ => None,
        }
    }
}

impl Client for FrangipaniService {
    type Op = FileCall;
    type Ret = FileRet;
    const OPS_HELP: &'static str = "write FS NAME DATA | read FS NAME | ls FS (FS: a or b)";

    fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> FrangipaniNode {
        let servers = match roles(cluster) {
            Ok((servers, _, _)) => servers,
            Err(_) => Vec::new(),
        };
        FrangipaniNode::Client {
            servers,
            driver,
            retry: tuning.heartbeat * 5,
        }
    }

    fn invoke(seq: RequestId, op: FileCall) -> (RequestId, NodeMsg) {
        (seq, NodeMsg::Client(ClientMsg::Invoke { seq, op }))
    }

    fn returned(msg: NodeMsg) -> Option<(RequestId, FileRet)> {
        match msg {
            NodeMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<FileCall, String> {
        parse_op(words)
    }

    fn show_op(op: &FileCall) -> String {
        let fs = FILE_SERVERS.get(op.server).copied().unwrap_or("?");
        match &op.op {
            FileOp::Write { name, data } => format!("write {fs} {name} {data}"),
            FileOp::Read { name } => format!("read {fs} {name}"),
            FileOp::Ls => format!("ls {fs}"),
        }
    }

    fn show(ret: &FileRet) -> String {
        match ret {
            FileRet::Written => "ok".into(),
            FileRet::Data(d) => d.clone(),
            FileRet::Names(names) => names.join(" "),
            FileRet::Refused(why) => format!("refused: {why}"),
        }
    }
}

/// A file operation from the command line's words: `write FS NAME DATA...` (the data is the
/// rest of the words, joined by spaces), `read FS NAME`, `ls FS`.
pub fn parse_op(words: &[String]) -> Result<FileCall, String> {
    let usage = || format!("expected: {}", FrangipaniService::OPS_HELP);
    let (verb, rest) = words.split_first().ok_or_else(usage)?;
    let (fs, rest) = rest.split_first().ok_or_else(usage)?;
    let server = FILE_SERVERS
        .iter()
        .position(|n| n == fs)
        .ok_or_else(|| format!("unknown file server '{fs}' (the file servers are a and b)"))?;
    let name = |w: &String| {
        if w.is_empty() || w.chars().any(char::is_whitespace) {
            Err(format!("'{w}' is not a file name"))
        } else {
            Ok(w.clone())
        }
    };
    let op = match (verb.as_str(), rest) {
        ("write", [n, data @ ..]) if !data.is_empty() => FileOp::Write {
            name: name(n)?,
            data: data.join(" "),
        },
        ("read", [n]) => FileOp::Read { name: name(n)? },
        ("ls", []) => FileOp::Ls,
        _ => return Err(usage()),
    };
    Ok(FileCall { server, op })
}

/// Checks a history of file operations for linearizability with `properties`: each file is a
/// register (a write a put, a read a get; a file never written reads as empty). `ls` is left
/// out.
pub fn check_history(history: &History<FileCall, FileRet>, dir: &Path) -> anyhow::Result<Checked> {
    let mut kv: History<KvOp, KvRet> = History::default();
    let mut index = vec![None; history.ops.len()];
    for (i, o) in history.ops.iter().enumerate() {
        let op = match &o.op.op {
            FileOp::Write { name, data } => KvOp::Put(name.clone(), data.clone()),
            FileOp::Read { name } => KvOp::Get(name.clone()),
            FileOp::Ls => continue,
        };
        let outcome = match &o.outcome {
            Outcome::Ok(FileRet::Written) => Outcome::Ok(KvRet::Ok),
            Outcome::Ok(FileRet::Data(d)) => Outcome::Ok(KvRet::Value(d.clone())),
            // A refused operation had no effect.
            Outcome::Ok(_) | Outcome::Fail => Outcome::Fail,
            Outcome::Info => Outcome::Info,
            Outcome::Open => Outcome::Open,
        };
        index[i] = Some(kv.ops.len());
        kv.ops.push(crate::jepsen::OpRecord {
            process: o.process,
            id: o.id,
            op,
            outcome,
            invoked: o.invoked,
            completed: o.completed,
            shown: o.shown.clone(),
        });
    }
    for e in &history.events {
        if let Some(op) = index.get(e.op).copied().flatten() {
            kv.events.push(crate::jepsen::HistoryEvent {
                op,
                completes: e.completes,
            });
        }
    }
    crate::kv::check_history(&kv, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_name_a_file_server_and_a_file() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_op(&w("write a notes hello world")),
            Ok(FileCall {
                server: 0,
                op: FileOp::Write {
                    name: "notes".into(),
                    data: "hello world".into()
                }
            })
        );
        assert_eq!(parse_op(&w("read b notes")).map(|c| c.server), Ok(1));
        assert_eq!(parse_op(&w("ls a")).map(|c| c.op), Ok(FileOp::Ls));
        assert!(parse_op(&w("read c notes"))
            .unwrap_err()
            .contains("unknown file server"));
        assert!(parse_op(&w("write a notes")).is_err());
        assert!(parse_op(&w("read a")).is_err());
        assert!(parse_op(&w("delete a notes")).is_err());
        assert!(parse_op(&[]).is_err());
    }

    #[test]
    fn timing_follows_the_tuning() {
        let t = timing(&FrangipaniService::tuning());
        assert_eq!((t.lease, t.margin), (15, 7));
        assert_eq!(t.tick, Duration::from_millis(100));
    }
}
