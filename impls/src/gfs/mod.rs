//! GFS over TCP: the model's master and chunkservers (`models::gfs`), the very actors
//! `checker gfs` checks, as `node gfs` processes, with real chunk files (§2.5), data pushed
//! outside the control messages (§3.2), checksums (§5.2), heartbeats (§2.6.2), re-replication
//! (§4.3), garbage collection (§4.4) and a master operation log (§2.6.3).
//!
//! Node 0 of the cluster file is the master; every other node is a chunkserver with a data port
//! (the cluster file's `[data]` table). What the runtime adds to the actors, and nothing else:
//! - a chunkserver's actor keeps each replica's length and last write ([`Tail`]); the runtime
//!   carries the write out on the chunk's file with the bytes the client pushed, and refuses
//!   (as a failed append or mutation, which the actor's protocol already handles) a write whose
//!   data was never pushed; it copies a chunk from another chunkserver before the actor records
//!   the copy (`Replicate`);
//! - a client pushes its record to every replica of the chunk before its actor's
//!   `RecordAppend` leaves (§3.2), and reads go straight to a chunkserver's data port.

pub mod chunks;
pub mod client;
pub mod store;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use models::client::RequestId;
use models::gfs::{
    Bytes, ChunkData, ChunkserverCfg, ClientCfg, GfsActor, GfsBug, GfsDisk, GfsMsg, GfsOp, GfsRet,
    GfsState, GfsTimer, Handle, MasterCfg, NsOp, Offset, RecId, Write,
};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use crate::config::ClusterConfig;
use crate::service::{Client, Service, ServiceError, Tuning};
use chunks::{ChunkDir, DataClient};

/// A real replica as its chunkserver's actor sees it: how long it is, and the last write made
/// to it, which the runtime carries out on the chunk's file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tail {
    pub used: u64,
    pub last: Option<(Offset, Write)>,
}

impl ChunkData for Tail {
    fn used(&self) -> u64 {
        self.used
    }
    fn write(&mut self, offset: Offset, write: Write) {
        self.used = self.used.max(offset + write.len());
        self.last = Some((offset, write));
    }
    fn copied(len: u64) -> Self {
        Tail {
            used: len,
            last: None,
        }
    }
}

/// The master's index in the cluster file.
pub const MASTER_INDEX: usize = 0;

/// The master's id.
pub fn master() -> Id {
    Id::from(MASTER_INDEX)
}

/// A GFS node: the model's actor, and what the runtime does around it.
pub enum GfsNode {
    Master(GfsActor<Tail>),
    Chunkserver {
        inner: GfsActor<Tail>,
        dir: Arc<ChunkDir>,
        data: BTreeMap<Id, SocketAddr>,
        fetch: Mutex<DataClient>,
    },
    Client {
        inner: GfsActor<Tail>,
        data: BTreeMap<Id, SocketAddr>,
        push: Mutex<DataClient>,
    },
}

/// A node's state: its actor's, and what a client's runtime remembers to push data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GfsNodeState {
    pub inner: GfsState<Tail>,
    /// A client's last word on each chunk's replicas (from `LeaseIs`).
    pub replicas: BTreeMap<Handle, Vec<Id>>,
    /// A client's record being appended.
    pub record: Option<(RecId, Bytes)>,
}

impl GfsNode {
    fn inner(&self) -> &GfsActor<Tail> {
        match self {
            GfsNode::Master(a) => a,
            GfsNode::Chunkserver { inner, .. } | GfsNode::Client { inner, .. } => inner,
        }
    }

    fn wrap(inner: Out<GfsActor<Tail>>, o: &mut Out<Self>) {
        for c in inner {
            match c {
                Command::Send(dst, msg) => o.send(dst, msg),
                Command::SetTimer(t, d) => o.set_timer(t, d),
                Command::CancelTimer(t) => o.cancel_timer(t),
                Command::Save(s) => o.save(s),
                Command::ChooseRandom(k, c) => o.choose_random(k, c),
            }
        }
    }

    /// A chunkserver's runtime before its actor sees `msg`: `Some(msg)` to hand on (perhaps
    /// completed), `None` when the runtime has answered it.
    fn before_chunkserver(
        &self,
        state: &GfsNodeState,
        src: Id,
        msg: GfsMsg,
        o: &mut Out<Self>,
    ) -> Option<GfsMsg> {
        let GfsNode::Chunkserver {
            inner: GfsActor::Chunkserver(cfg),
            dir,
            data,
            fetch,
        } = self
        else {
            return Some(msg);
        };
        let GfsState::Chunkserver(cs) = &state.inner else {
            return Some(msg);
        };
        match msg {
            GfsMsg::RecordAppend { handle, rec, len }
                if cs.leases.contains_key(&handle)
                    && (len > cfg.chunk_size / 4 || dir.pushed(rec, len).is_none()) =>
            {
                // §3.3: a record is at most a quarter of a chunk; and the data must have been
                // pushed (§3.2). Either way nothing is written and the client retries.
                o.send(src, GfsMsg::AppendFailed { handle, rec });
                None
            }
            GfsMsg::Mutate {
                handle,
                offset,
                write: Write::Record { rec, len },
                ..
            } if dir.pushed(rec, len).is_none() => {
                o.send(src, GfsMsg::MutateFailed { handle, offset });
                None
            }
            GfsMsg::Replicate {
                handle,
                version,
                from,
                ..
            } => {
                // §4.3: "instructing some chunkserver to copy the chunk data directly from an
                // existing valid replica".
                let Some(addr) = data.get(&from) else {
                    tracing::warn!(from = usize::from(from), "no data port to copy from");
                    return None;
                };
                let copied = fetch
                    .lock()
                    .expect("fetch lock")
                    .read(*addr, handle, 0, u64::MAX)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        dir.install(handle, &bytes)
                            .map(|()| bytes.len() as u64)
                            .map_err(|e| e.to_string())
                    });
                match copied {
                    Ok(len) => {
                        tracing::info!(chunk = handle, len, from = usize::from(from), "copied");
                        Some(GfsMsg::Replicate {
                            handle,
                            version,
                            from,
                            len,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(chunk = handle, error = %e, "copy failed");
                        None
                    }
                }
            }
            msg => Some(msg),
        }
    }

    /// A chunkserver's runtime after its actor's step on a replica: the write it made, on the
    /// chunk's file.
    fn after_chunkserver(
        &self,
        before: Option<(Offset, Write)>,
        after: &GfsNodeState,
        handle: Handle,
    ) {
        let GfsNode::Chunkserver { dir, .. } = self else {
            return;
        };
        let Some((offset, write)) = last_write(after, handle) else {
            return;
        };
        if before == Some((offset, write)) {
            return;
        }
        let written = match write {
            Write::Record { rec, len } => match dir.pushed(rec, len) {
                Some(bytes) => {
                    dir.forget(rec);
                    dir.write(handle, offset, &bytes[..len as usize])
                }
                None => Err(std::io::Error::other(format!("record {rec} is not here"))),
            },
            Write::Pad { len } => dir.write(handle, offset, &vec![0u8; len as usize]),
        };
        if let Err(e) = written {
            // A chunkserver that cannot write its disk stops; the master re-replicates.
            tracing::error!(chunk = handle, error = %e, "cannot write a chunk; stopping");
            std::process::exit(1);
        }
    }

    /// A client's runtime after its actor's step: each `RecordAppend` it sends goes after the
    /// record's data has been pushed to the chunk's replicas (§3.2).
    fn push_before_append(&self, state: &GfsNodeState, out: &Out<GfsActor<Tail>>) {
        let GfsNode::Client { data, push, .. } = self else {
            return;
        };
        for c in out.iter() {
            let Command::Send(_, GfsMsg::RecordAppend { handle, rec, .. }) = c else {
                continue;
            };
            let Some((r, bytes)) = &state.record else {
                continue;
            };
            if r != rec {
                continue;
            }
            let mut push = push.lock().expect("push lock");
            for id in state.replicas.get(handle).into_iter().flatten() {
                let Some(addr) = data.get(id) else { continue };
                if let Err(e) = push.push(*addr, *rec, &bytes.0) {
                    // The replica will refuse the write and the append be retried.
                    tracing::debug!(replica = usize::from(*id), error = %e, "push failed");
                }
            }
        }
    }

    fn step(
        &self,
        id: Id,
        state: &mut Cow<GfsNodeState>,
        o: &mut Out<Self>,
        f: impl FnOnce(&GfsActor<Tail>, &mut Cow<GfsState<Tail>>, &mut Out<GfsActor<Tail>>),
    ) {
        let _ = id;
        let mut inner = Cow::Borrowed(&state.inner);
        let mut out = Out::new();
        f(self.inner(), &mut inner, &mut out);
        if let Cow::Owned(next) = inner {
            state.to_mut().inner = next;
        }
        self.push_before_append(state, &out);
        Self::wrap(out, o);
    }
}

impl Actor for GfsNode {
    type Msg = GfsMsg;
    type State = GfsNodeState;
    type Timer = GfsTimer;
    type Storage = GfsDisk<Tail>;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<Self::Storage>, o: &mut Out<Self>) -> Self::State {
        let mut out = Out::new();
        let inner = self.inner().on_start(id, storage, &mut out);
        Self::wrap(out, o);
        GfsNodeState {
            inner,
            replicas: BTreeMap::new(),
            record: None,
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        src: Id,
        msg: GfsMsg,
        o: &mut Out<Self>,
    ) {
        match &msg {
            GfsMsg::Invoke {
                op: GfsOp::Append { rec, data, .. },
                ..
            } => state.to_mut().record = Some((*rec, data.clone())),
            GfsMsg::LeaseIs {
                handle,
                primary,
                secondaries,
                ..
            } if matches!(self, GfsNode::Client { .. }) => {
                let mut all = vec![*primary];
                all.extend(secondaries);
                state.to_mut().replicas.insert(*handle, all);
            }
            _ => {}
        }
        let Some(msg) = self.before_chunkserver(state, src, msg, o) else {
            return;
        };
        let written = match &msg {
            GfsMsg::RecordAppend { handle, .. } | GfsMsg::Mutate { handle, .. } => Some(*handle),
            _ => None,
        };
        let before = written.and_then(|h| last_write(state, h));
        self.step(id, state, o, |a, s, out| a.on_msg(id, s, src, msg, out));
        if let Some(h) = written {
            self.after_chunkserver(before, state, h);
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        timer: &GfsTimer,
        o: &mut Out<Self>,
    ) {
        self.step(id, state, o, |a, s, out| a.on_timeout(id, s, timer, out));
    }
}

/// A chunkserver's last write to chunk `handle`, as its actor recorded it.
fn last_write(s: &GfsNodeState, handle: Handle) -> Option<(Offset, Write)> {
    match &s.inner {
        GfsState::Chunkserver(c) => c.replicas.get(&handle).and_then(|r| r.data.last),
        _ => None,
    }
}

/// GFS in the service registry.
pub struct GfsService;

/// How long a driven client waits for an answer before it asks again or retries.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// A driven client's retries of a failed append.
const CLIENT_RETRIES: u8 = 8;

fn data_ports(cluster: &ClusterConfig) -> Result<BTreeMap<Id, SocketAddr>, ServiceError> {
    for id in cluster.nodes.keys().filter(|id| **id != master()) {
        if !cluster.data.contains_key(id) {
            return Err(ServiceError::Invalid(format!(
                "chunkserver {} has no data port in the cluster file's [data] table",
                usize::from(*id)
            )));
        }
    }
    Ok(cluster.data.clone())
}

impl Service for GfsService {
    type Actor = GfsNode;
    type Msg = GfsMsg;
    type State = GfsNodeState;
    type Store = store::GfsStore;

    const NAME: &'static str = "gfs";
    const SUMMARY: &'static str =
        "GFS (§3): node 0 is the master, the others chunkservers with data ports";
    const TUNING_HELP: &'static str = "--timeout-ms: the lease (§3.1); --heartbeat-ms: HeartBeats (§2.6.2); --chunk-bytes: the chunk size (§2.5)";
    const DATA_PORTS: bool = true;

    fn bugs() -> Vec<&'static str> {
        GfsBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_secs(4)..Duration::from_secs(4),
            heartbeat: Duration::from_millis(500),
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        data_dir: &Path,
    ) -> Result<GfsNode, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let bug = bug.and_then(GfsBug::from_name);
        let lease = tuning.timeout.start;
        if id == master() {
            return Ok(GfsNode::Master(GfsActor::Master(MasterCfg {
                chunkservers: cluster
                    .nodes
                    .keys()
                    .copied()
                    .filter(|i| *i != master())
                    .collect(),
                files: Vec::new(),
                max_chunks: u32::MAX,
                replication: 3,
                lease,
                tick: Some(tuning.heartbeat * 2),
                persist: true,
                bug,
            })));
        }
        let data = data_ports(cluster)?;
        let dir = ChunkDir::open(data_dir);
        chunks::serve(data[&id], dir.clone())
            .map_err(|e| ServiceError::Invalid(format!("data port {}: {e}", data[&id])))?;
        Ok(GfsNode::Chunkserver {
            inner: GfsActor::Chunkserver(ChunkserverCfg {
                master: master(),
                chunk_size: tuning.chunk_bytes,
                // The primary's lease is shorter than the master's (§3.1: clock drift).
                lease: lease * 3 / 4,
                mutate_timeout: CLIENT_TIMEOUT,
                heartbeat: Some(tuning.heartbeat),
                bug,
                data: std::marker::PhantomData,
            }),
            dir,
            data,
            fetch: Mutex::new(DataClient::default()),
        })
    }

    fn store(dir: &Path) -> store::GfsStore {
        store::GfsStore::new(dir)
    }

    fn kind(msg: &GfsMsg) -> Option<&'static str> {
        Some(match msg {
            GfsMsg::RecordAppend { .. } => "RecordAppend",
            GfsMsg::Mutate { .. } => "Mutate",
            GfsMsg::Report { .. } => "Report",
            GfsMsg::FindLease { .. } => "FindLease",
            GfsMsg::Namespace { .. } => "Namespace",
            _ => return None,
        })
    }

    fn describe(state: &GfsNodeState) -> Option<String> {
        Some(match &state.inner {
            GfsState::Master(m) if m.recovering => "master, waiting out old leases".into(),
            GfsState::Master(m) => format!(
                "master of {} files, {} chunks",
                m.files.len(),
                m.chunks.len()
            ),
            GfsState::Chunkserver(c) => format!(
                "chunkserver of {} chunks, primary of {}",
                c.replicas.len(),
                c.leases.len()
            ),
            GfsState::Client(_) => return None,
        })
    }
}

/// Unique record ids for a client: its id, then a count.
pub fn record_id(client: usize, n: u64) -> RecId {
    ((client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(n)
}

impl Client for GfsService {
    type Op = GfsOp;
    type Ret = GfsRet;
    const OPS_HELP: &'static str =
        "create PATH | append PATH TEXT | open PATH | rm PATH | mv FROM TO | ls [PREFIX]";

    fn client(cluster: &ClusterConfig, driver: Id, _tuning: &Tuning) -> GfsNode {
        let _ = driver;
        GfsNode::Client {
            inner: GfsActor::Client(ClientCfg {
                master: master(),
                append: None,
                retries: CLIENT_RETRIES,
                timeout: CLIENT_TIMEOUT,
            }),
            data: cluster.data.clone(),
            push: Mutex::new(DataClient::default()),
        }
    }

    fn invoke(seq: RequestId, op: GfsOp) -> (RequestId, GfsMsg) {
        (seq, GfsMsg::Invoke { seq, op })
    }

    fn returned(msg: GfsMsg) -> Option<(RequestId, GfsRet)> {
        match msg {
            GfsMsg::Return { seq, ret } => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<GfsOp, String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        Ok(match w.as_slice() {
            ["create", path] => GfsOp::Master(NsOp::Create(path.to_string())),
            ["open", path] => GfsOp::Master(NsOp::Open(path.to_string())),
            ["rm", path] => GfsOp::Master(NsOp::Remove(path.to_string())),
            ["mv", from, to] => GfsOp::Master(NsOp::Rename(from.to_string(), to.to_string())),
            ["ls"] => GfsOp::Master(NsOp::List(String::new())),
            ["ls", prefix] => GfsOp::Master(NsOp::List(prefix.to_string())),
            ["append", path, text @ ..] if !text.is_empty() => {
                let rec = record_id(
                    std::process::id() as usize,
                    crate::rng::seed_from_env_or_time(),
                );
                GfsOp::Append {
                    path: path.to_string(),
                    rec,
                    data: Bytes(client::frame_record(rec, text.join(" ").as_bytes()).into()),
                }
            }
            _ => {
                return Err(format!(
                    "not a gfs operation: '{}' (expected {})",
                    w.join(" "),
                    Self::OPS_HELP
                ))
            }
        })
    }

    fn show_op(op: &GfsOp) -> String {
        match op {
            GfsOp::Append { path, data, .. } => format!("append {path} ({} bytes)", data.0.len()),
            GfsOp::Master(NsOp::Create(p)) => format!("create {p}"),
            GfsOp::Master(NsOp::Open(p)) => format!("open {p}"),
            GfsOp::Master(NsOp::Remove(p)) => format!("rm {p}"),
            GfsOp::Master(NsOp::List(p)) => format!("ls {p}"),
            GfsOp::Master(NsOp::Rename(a, b)) => format!("mv {a} {b}"),
        }
    }

    fn show(ret: &GfsRet) -> String {
        match ret {
            GfsRet::Created { file } => format!("created (file {file})"),
            GfsRet::Appended { chunk, offset } => {
                format!("appended at chunk {chunk} offset {offset}")
            }
            GfsRet::Chunks { chunks, .. } => chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let at: Vec<String> = c
                        .locations
                        .iter()
                        .map(|l| usize::from(*l).to_string())
                        .collect();
                    format!(
                        "chunk {i}: handle {} v{} on [{}]",
                        c.handle,
                        c.version,
                        at.join(" ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            GfsRet::Removed => "done".into(),
            GfsRet::Listing { files } => files
                .iter()
                .map(|(p, n)| format!("{p}\t{n} chunks"))
                .collect::<Vec<_>>()
                .join("\n"),
            GfsRet::Failed { why } => format!("failed: {why}"),
        }
    }
}
