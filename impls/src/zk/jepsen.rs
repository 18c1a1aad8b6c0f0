//! `jepsen zk`: the ZooKeeper ensemble under kills, partitions and pauses, with clients that
//! speak ZooKeeper's own protocol ([`super::client`]), checked for the three guarantees of Hunt
//! et al. §2.3-2.4 by `properties`:
//!
//! 1. **Linearizable writes.** Register clients `setData` the znodes `/jepsen/r0..` with unique
//!    values, unconditionally (version -1) or conditionally on the version they last saw, and
//!    `getData` them. The `setData`s, with their invocations and completions in real time, are
//!    checked against [`Znode`] by [`properties::linearizability::check`]; a timeout or a lost
//!    connection leaves a write indefinite. Reads are served from the local replica and are
//!    not linearizable (§2.3), so they stay out of that history.
//! 2. **FIFO client order.** Each register client pipelines up to three requests in its
//!    session; the replies' zxids, the versions read and the versions written are checked in
//!    issue order by [`properties::zookeeper::check_fifo`], across reconnections to other
//!    servers (the client tells the new server the last zxid it saw).
//! 3. **The lock recipe never has two holders** (§2.4, "Locks without herd effect"). Lock
//!    clients create an ephemeral sequential `/jepsen/lock/lock-`, list the children, hold the
//!    lock if their node is lowest, else set an `exists` watch on the node just below and list
//!    again when it fires. A holder writes its name to `/jepsen/lock-data` (the critical
//!    section) for a while, then deletes its node. Lock clients use a short session
//!    ([`LOCK_SESSION`]) and, at random, stop pinging for longer than it while they wait or hold
//!    (a garbage-collection pause), so the leader expires their sessions and deletes their
//!    nodes. Mutual exclusion is judged in ZooKeeper's order, not in real time: after the run
//!    (faults healed, the ensemble settled, one final write), a server's transaction log is read
//!    from its data directory up to the final write, replayed through the data tree, and every
//!    committed critical-section write must come from the session whose node is then lowest
//!    ([`properties::zookeeper::check_lock`]). A paused holder that lost its session still
//!    believes it holds, but its writes can no longer commit.
//!
//! `--bug lock-no-recheck` is a bug of the lock clients, not of the servers (the nodes run
//! without it, and `node zk` refuses it): a waiter takes the lock as soon as its predecessor's
//! node goes, without listing the children again. When the predecessor was a waiter whose
//! session expired, the node below it still holds, and the check finds two holders.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use properties::linearizability::{
    check, History as LinHistory, Operation, Verdict, Znode, ZnodeInput, ZnodeOp, ZnodeOutput,
};
use properties::zookeeper::{check_fifo, check_lock, LockEvent, SessionOp, SessionOpKind};
use serde_json::json;

use super::client::{ZkClient, ZkError};
use super::jute::{err, event, Reply, Request, SetDataRequest};
use super::server::zxid64;
use super::store::ZkStore;
use super::tree::{DataTree, TxnOp};
use super::ZkService;
use crate::cluster::Cluster;
use crate::config::ClusterConfig;
use crate::jepsen::{
    run_workload, Ctx, History, JepsenOpts, JepsenReport, Nemesis, Outcome, Workload,
    PROCESS_STRIDE,
};
use crate::rng::Rng;
use crate::service::{Checked, NodeArgs, Protocol, ServerOnly, Service, Tuning};

/// The client-side bug: hold the lock when the predecessor's node goes, without listing again.
pub const LOCK_NO_RECHECK: &str = "lock-no-recheck";

/// The lock clients' session timeout. The servers grant it under `jepsen zk`'s tuning
/// (`session_min` 200 ms); a lock client pings every third of it.
pub const LOCK_SESSION: Duration = Duration::from_millis(800);

/// How a lock client's "GC pause" goes: the chance that it pauses when it starts to wait, or
/// while it holds, and for how long (past [`LOCK_SESSION`], so that its session expires).
const WAITER_PAUSE_CHANCE: f64 = 0.4;
const HOLDER_PAUSE_CHANCE: f64 = 0.1;
const PAUSE: std::ops::Range<Duration> = Duration::from_millis(1_400)..Duration::from_millis(2_000);
/// How long a holder holds the lock, writing every [`WRITE_EVERY`].
const HOLD: std::ops::Range<Duration> = Duration::from_millis(200)..Duration::from_millis(1_000);
const WRITE_EVERY: Duration = Duration::from_millis(60);

/// The most requests a register client has outstanding in its session.
const PIPELINE: usize = 3;

const ROOT: &str = "/jepsen";
const LOCK: &str = "/jepsen/lock";
const LOCK_DATA: &str = "/jepsen/lock-data";
const FINAL: &str = "/jepsen/final";

fn register(k: usize) -> String {
    format!("{ROOT}/r{k}")
}

/// An operation of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkOp {
    /// `setData(/jepsen/rK, data, version)`.
    SetData {
        znode: usize,
        data: i64,
        version: i32,
    },
    /// `getData(/jepsen/rK)`.
    GetData { znode: usize },
    /// The lock recipe, from the create to holding the lock.
    Acquire,
    /// A write in the critical section.
    Write,
    /// The holder's delete of its node.
    Release,
}

/// What an operation's reply said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkResult {
    /// `setData` made this version.
    Version(i32),
    /// `setData` was refused with `BadVersion`.
    BadVersion,
    /// `getData` read this value (`None`: never written) at this version.
    Read {
        data: Option<i64>,
        version: i32,
    },
    /// The lock is held, with this node.
    Held(String),
    Done,
}

/// An operation's result: the session it ran in, the zxid of its reply, what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkRet {
    pub session: i64,
    pub zxid: i64,
    pub result: ZkResult,
}

fn show_op(op: &ZkOp) -> String {
    match op {
        ZkOp::SetData {
            znode,
            data,
            version,
        } => format!("setData r{znode} {data} v{version}"),
        ZkOp::GetData { znode } => format!("getData r{znode}"),
        ZkOp::Acquire => "acquire".into(),
        ZkOp::Write => "write lock-data".into(),
        ZkOp::Release => "release".into(),
    }
}

fn show(ret: &ZkRet) -> String {
    let what = match &ret.result {
        ZkResult::Version(v) => format!("v{v}"),
        ZkResult::BadVersion => "BadVersion".into(),
        ZkResult::Read { data, version } => match data {
            Some(d) => format!("{d} v{version}"),
            None => format!("nil v{version}"),
        },
        ZkResult::Held(node) => format!("held {node}"),
        ZkResult::Done => "ok".into(),
    };
    format!("{what} (session {:#x}, zxid {:#x})", ret.session, ret.zxid)
}

/// A client's session, moved from server to server: it reconnects to the next server when its
/// connection fails, telling it the last zxid it saw; a server that is behind, or not serving,
/// refuses, and the next is tried.
struct Session {
    servers: Vec<SocketAddr>,
    next: usize,
    conn: Option<ZkClient>,
    id: Option<(i64, Vec<u8>)>,
    last_zxid: i64,
    timeout_ms: i32,
    op_timeout: Duration,
}

/// Why a session has no connection.
enum Lost {
    /// The session expired: a new one is needed.
    Expired,
    /// No server took it in time.
    Unavailable,
}

impl Session {
    fn new(
        servers: Vec<SocketAddr>,
        first: usize,
        timeout: Duration,
        op_timeout: Duration,
    ) -> Self {
        Session {
            next: first % servers.len().max(1),
            servers,
            conn: None,
            id: None,
            last_zxid: 0,
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            op_timeout,
        }
    }

    /// A connection, made (to the next server, round robin) if there is none; gives up after
    /// one round of the servers.
    fn connect(&mut self) -> Result<&mut ZkClient, Lost> {
        if self.conn.is_none() {
            let c = self.reconnect()?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn reconnect(&mut self) -> Result<ZkClient, Lost> {
        for _ in 0..self.servers.len() {
            let addr = self.servers[self.next];
            self.next = (self.next + 1) % self.servers.len();
            match ZkClient::connect_with(
                addr,
                self.op_timeout,
                self.id.clone(),
                self.timeout_ms,
                self.last_zxid,
            ) {
                Ok(c) => {
                    self.id = Some((c.session_id, c.passwd.clone()));
                    return Ok(c);
                }
                Err(ZkError::Code(err::SESSION_EXPIRED)) => {
                    self.id = None;
                    return Err(Lost::Expired);
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        Err(Lost::Unavailable)
    }

    /// Drops the connection (the session lives on at the servers until it expires).
    fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            self.last_zxid = self.last_zxid.max(c.last_zxid);
        }
    }

    /// Walks away from the session: no more pings, so the leader expires it and its ephemeral
    /// nodes go; the next [`Session::connect`] makes a new one.
    fn abandon(&mut self) {
        self.conn = None;
        self.id = None;
        self.last_zxid = 0;
    }
}

/// One client of the run: a register client or a lock client.
pub struct ZkWorker {
    servers: Vec<SocketAddr>,
    lock: bool,
}

/// The workload of `jepsen zk`.
pub struct ZkWorkload {
    /// The zxid of the final write, once made: the committed log is read up to it.
    final_zxid: Mutex<Option<i64>>,
}

impl ZkWorkload {
    fn register_clients(opts: &JepsenOpts) -> usize {
        opts.clients
    }

    /// Enough for a queue behind the holder in which a paused waiter has nodes on both sides.
    fn lock_clients(opts: &JepsenOpts) -> usize {
        opts.clients.max(5)
    }

    fn bugged(opts: &JepsenOpts) -> bool {
        opts.bug == Some(LOCK_NO_RECHECK)
    }
}

/// The client ports of the cluster's servers.
fn client_ports(config: &ClusterConfig) -> Vec<SocketAddr> {
    config.data.values().copied().collect()
}

/// A session on any server, retrying until `deadline`.
fn any_session(servers: &[SocketAddr], deadline: Instant) -> anyhow::Result<ZkClient> {
    let mut i = 0;
    loop {
        match ZkClient::connect_with(
            servers[i % servers.len()],
            Duration::from_secs(2),
            None,
            10_000,
            0,
        ) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => {
                anyhow::bail!("no ZooKeeper server takes a session: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
        i += 1;
    }
}

impl Workload for ZkWorkload {
    type Op = ZkOp;
    type Ret = ZkRet;
    type Client = ZkWorker;

    fn protocol(&self) -> &'static str {
        ZkService::NAME
    }

    fn node_bug(&self, opts: &JepsenOpts) -> Option<&'static str> {
        opts.bug.filter(|b| *b != LOCK_NO_RECHECK)
    }

    fn clients(&self, opts: &JepsenOpts) -> usize {
        Self::register_clients(opts) + Self::lock_clients(opts)
    }

    fn connect(&self, cluster: &Cluster, opts: &JepsenOpts, c: usize) -> anyhow::Result<ZkWorker> {
        let servers = client_ports(&cluster.config);
        anyhow::ensure!(!servers.is_empty(), "the cluster has no client ports");
        if c == 0 {
            // The znodes the clients use, made once the ensemble serves.
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut s = any_session(&servers, deadline)?;
            let mut paths = vec![
                ROOT.to_string(),
                LOCK.into(),
                LOCK_DATA.into(),
                FINAL.into(),
            ];
            paths.extend((0..opts.keys).map(register));
            for p in paths {
                loop {
                    match s.create(&p, b"", 0) {
                        Ok(_) | Err(ZkError::Code(err::NODE_EXISTS)) => break,
                        Err(e) if Instant::now() >= deadline => {
                            anyhow::bail!("creating {p}: {e}")
                        }
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(50));
                            s = any_session(&servers, deadline)?;
                        }
                    }
                }
            }
            let _ = s.close();
        }
        Ok(ZkWorker {
            servers,
            lock: c >= Self::register_clients(opts),
        })
    }

    fn run_client(&self, w: ZkWorker, c: usize, opts: &JepsenOpts, ctx: &Ctx<ZkOp, ZkRet>) {
        let rng = Rng::new(opts.seed).fork(c as u64);
        if w.lock {
            lock_client(w, c, opts, rng, ctx, Self::bugged(opts))
        } else {
            register_client(w, c, opts, rng, ctx)
        }
    }

    fn finish(&self, cluster: &mut Cluster, _: &JepsenOpts) -> anyhow::Result<()> {
        // The ensemble settles, then one write: everything before it in a server's log that
        // holds it is committed.
        std::thread::sleep(crate::service::FINAL_SETTLE);
        let servers = client_ports(&cluster.config);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let attempt = any_session(&servers, deadline).and_then(|mut s| {
                let sent = s
                    .send(&Request::SetData(SetDataRequest {
                        path: FINAL.into(),
                        data: Some(b"final".to_vec()),
                        version: -1,
                    }))
                    .map_err(anyhow::Error::from)?;
                let answer = s.receive(sent)?;
                answer
                    .result
                    .map_err(|code| anyhow::anyhow!("error {code}"))?;
                let _ = s.close();
                Ok(answer.zxid)
            });
            match attempt {
                Ok(zxid) => {
                    *self.final_zxid.lock().expect("lock") = Some(zxid);
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(%e, "no final write");
                    return Ok(());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn check(
        &self,
        history: &History<ZkOp, ZkRet>,
        cluster: &Cluster,
        opts: &JepsenOpts,
    ) -> anyhow::Result<Checked> {
        let file = opts.dir.join("history.jsonl");
        write_history(history, &file)?;
        let final_zxid = *self.final_zxid.lock().expect("lock");
        let dirs: Vec<std::path::PathBuf> =
            (0..cluster.len()).map(|i| cluster.data_dir(i)).collect();
        let timed = |f: &dyn Fn() -> Part| {
            let t = Instant::now();
            let mut part = f();
            if part.ok == Some(true) && part.verdict.ends_with(')') {
                part.verdict.pop();
                part.verdict += &format!("; checked in {:.2} s)", t.elapsed().as_secs_f64());
            }
            part
        };
        let parts = [
            timed(&|| check_writes(history)),
            timed(&|| check_order(history)),
            timed(&|| check_mutex(history, &dirs, final_zxid)),
        ];
        Ok(combine(&parts, file))
    }
}

/// One property's outcome.
struct Part {
    /// The verdict's words: `writes linearizable (1,204 setData)`.
    verdict: String,
    /// `Some(true)` passed, `Some(false)` failed, `None` unknown.
    ok: Option<bool>,
    /// Why it failed or is unknown, naming the operations.
    failure: Option<String>,
}

/// The report's check: passed if every property passed; a failed property is named first.
fn combine(parts: &[Part], file: std::path::PathBuf) -> Checked {
    let failed: Vec<&Part> = parts.iter().filter(|p| p.ok == Some(false)).collect();
    let unknown: Vec<&Part> = parts.iter().filter(|p| p.ok.is_none()).collect();
    let all = |ps: &[&Part]| {
        ps.iter()
            .filter_map(|p| p.failure.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !failed.is_empty() {
        Checked {
            verdict: failed
                .iter()
                .map(|p| p.verdict.clone())
                .collect::<Vec<_>>()
                .join("; "),
            ok: false,
            failure: Some(all(&failed)),
            file,
        }
    } else if !unknown.is_empty() {
        Checked {
            verdict: "unknown".into(),
            ok: false,
            failure: Some(all(&unknown)),
            file,
        }
    } else {
        Checked {
            verdict: parts
                .iter()
                .map(|p| p.verdict.clone())
                .collect::<Vec<_>>()
                .join("; "),
            ok: true,
            failure: None,
            file,
        }
    }
}

/// Property 1: the `setData`s against [`Znode`], in real time.
fn check_writes(history: &History<ZkOp, ZkRet>) -> Part {
    let mut ops = Vec::new();
    let mut index = Vec::new();
    let mut open: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (t, e) in history.events.iter().enumerate() {
        let op = &history.ops[e.op];
        let ZkOp::SetData {
            znode,
            data,
            version,
        } = op.op
        else {
            continue;
        };
        if matches!(op.outcome, Outcome::Fail) {
            // A write that surely did not take effect takes no part (none do: a write whose
            // reply never came is indefinite).
            continue;
        }
        if !e.completes {
            open.insert(e.op, ops.len());
            index.push(e.op);
            ops.push(Operation {
                client: op.process,
                call: t as u64,
                ret: u64::MAX,
                input: ZnodeInput {
                    znode: znode as u64,
                    op: ZnodeOp::SetData { data, version },
                },
                output: None,
            });
            continue;
        }
        let Some(&i) = open.get(&e.op) else { continue };
        match &op.outcome {
            Outcome::Ok(ret) => {
                ops[i].ret = t as u64;
                ops[i].output = Some(ZnodeOutput::SetData(match ret.result {
                    ZkResult::Version(v) => Some(v),
                    _ => None,
                }));
            }
            // Open to the end of the history, its result unknown.
            Outcome::Fail | Outcome::Info | Outcome::Open => {}
        }
    }
    let n = ops.len();
    let verdict = check(
        &Znode,
        &LinHistory::new(ops),
        Some(Duration::from_secs(120)),
    );
    let show = |i: &usize| {
        index
            .get(*i)
            .map_or_else(|| format!("operation {i}"), |&o| history.ops[o].describe())
    };
    match verdict {
        Verdict::Linearizable => Part {
            verdict: format!("writes linearizable ({n} setData)"),
            ok: Some(true),
            failure: None,
        },
        Verdict::Unknown => Part {
            verdict: "writes: unknown".into(),
            ok: None,
            failure: Some(format!(
                "linearizability of {n} setData: the search ran out of time"
            )),
        },
        Verdict::NotLinearizable(f) => Part {
            verdict: "writes not linearizable".into(),
            ok: Some(false),
            failure: Some(format!(
                "linearizable writes (§2.3): znode r{}: {} setData linearized; none of these fits next: {}",
                f.partition,
                f.linearized.len(),
                f.unplaced.iter().map(show).collect::<Vec<_>>().join("; ")
            )),
        },
    }
}

/// Property 2: each session's replies in issue order.
fn check_order(history: &History<ZkOp, ZkRet>) -> Part {
    let ops: Vec<SessionOp> = history
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| {
            let Outcome::Ok(ret) = &op.outcome else {
                return None;
            };
            let kind = match (&op.op, &ret.result) {
                (ZkOp::SetData { znode, .. }, ZkResult::Version(v)) => SessionOpKind::Write {
                    znode: *znode as u64,
                    version: Some(*v),
                },
                (ZkOp::SetData { znode, .. }, _) => SessionOpKind::Write {
                    znode: *znode as u64,
                    version: None,
                },
                (ZkOp::GetData { znode }, ZkResult::Read { version, .. }) => SessionOpKind::Read {
                    znode: *znode as u64,
                    version: *version,
                },
                (ZkOp::Write, _) => SessionOpKind::Other,
                _ => return None,
            };
            Some(SessionOp {
                session: ret.session,
                zxid: ret.zxid,
                kind,
                index: i,
            })
        })
        .collect();
    match check_fifo(&ops) {
        Ok(s) => Part {
            verdict: format!(
                "FIFO client order ({} sessions, {} replies, {} reads after their own write)",
                s.sessions, s.ops, s.reads_after_own_write
            ),
            ok: Some(true),
            failure: None,
        },
        Err(v) => Part {
            verdict: "FIFO client order broken".into(),
            ok: Some(false),
            failure: Some(format!(
                "FIFO client order (§2.3): session {:#x}: {}: {}; {}; {}",
                v.session,
                v.rule,
                v.detail,
                history.ops[v.earlier].describe(),
                history.ops[v.later].describe()
            )),
        },
    }
}

/// Property 3: the lock recipe's mutual exclusion, on the committed log of a server.
fn check_mutex(
    history: &History<ZkOp, ZkRet>,
    dirs: &[std::path::PathBuf],
    final_zxid: Option<i64>,
) -> Part {
    let unknown = |why: String| Part {
        verdict: "lock: unknown".into(),
        ok: None,
        failure: Some(format!("the lock recipe (§2.4): {why}")),
    };
    let Some(final_zxid) = final_zxid else {
        return unknown(
            "no final write committed after the run, so no log is known committed".into(),
        );
    };
    let log = dirs.iter().find_map(|d| {
        let log = ZkStore::read_log(d).ok()?;
        let end = log.iter().position(|e| zxid64(e.zxid) == final_zxid)?;
        Some((d, log.into_iter().take(end + 1).collect::<Vec<_>>()))
    });
    let Some((dir, log)) = log else {
        return unknown(format!(
            "no server's log holds the final write {final_zxid:#x}"
        ));
    };
    let events = lock_events(&log);
    match check_lock(&events) {
        Ok(s) if s.writes == 0 => unknown("no critical-section write was committed".into()),
        Ok(s) => Part {
            verdict: format!(
                "one lock holder ({} critical-section writes in {} holds, {} lock nodes removed by expiry; log of {})",
                s.writes,
                s.holds,
                s.expired_nodes,
                dir.display()
            ),
            ok: Some(true),
            failure: None,
        },
        Err(two) => {
            // The recorded operation of the offending write, if its client heard back.
            let op = history
                .ops
                .iter()
                .find(|o| matches!(&o.outcome, Outcome::Ok(r) if r.zxid == two.zxid && o.op == ZkOp::Write))
                .map(|o| format!("; {}", o.describe()))
                .unwrap_or_default();
            Part {
                verdict: "two lock holders".into(),
                ok: Some(false),
                failure: Some(format!("the lock recipe (§2.4) had two holders: {two}{op}")),
            }
        }
    }
}

/// The committed transactions that matter to the lock, found by replaying the log through the
/// data tree (only those that succeeded).
fn lock_events(log: &[super::server::ZkEntry]) -> Vec<LockEvent> {
    let mut tree = DataTree::new();
    let prefix = format!("{LOCK}/");
    let mut events = Vec::new();
    for e in log {
        let zxid = zxid64(e.zxid);
        let txn = &e.txn.txn;
        let applied = tree.apply(zxid, txn);
        if applied.reply.is_err() {
            continue;
        }
        match (&txn.op, &applied.reply) {
            (TxnOp::Create(_), Ok(Reply::Create { path }))
            | (TxnOp::Create2(_), Ok(Reply::Create2 { path, .. })) => {
                if let Some(node) = path.strip_prefix(&prefix) {
                    events.push(LockEvent::Created {
                        zxid,
                        node: node.to_string(),
                        session: txn.session,
                    });
                }
            }
            (TxnOp::Delete(d), _) => {
                if let Some(node) = d.path.strip_prefix(&prefix) {
                    events.push(LockEvent::Deleted {
                        zxid,
                        node: node.to_string(),
                    });
                }
            }
            (TxnOp::CloseSession, _) => events.push(LockEvent::SessionClosed {
                zxid,
                session: txn.session,
            }),
            (TxnOp::SetData(s), _) if s.path == LOCK_DATA => events.push(LockEvent::Write {
                zxid,
                session: txn.session,
                client: s
                    .data
                    .as_deref()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .unwrap_or_default(),
            }),
            _ => {}
        }
    }
    events
}

/// `DIR/history.jsonl`: one line per invocation and completion.
fn write_history(history: &History<ZkOp, ZkRet>, file: &Path) -> anyhow::Result<()> {
    let mut text = String::new();
    for e in &history.events {
        let op = &history.ops[e.op];
        let (f, znode, value, version) = match &op.op {
            ZkOp::SetData {
                znode,
                data,
                version,
            } => ("setData", Some(*znode), Some(*data), Some(*version)),
            ZkOp::GetData { znode } => ("getData", Some(*znode), None, None),
            ZkOp::Acquire => ("acquire", None, None, None),
            ZkOp::Write => ("write", None, None, None),
            ZkOp::Release => ("release", None, None, None),
        };
        let line = match (e.completes, &op.outcome) {
            (false, _) => json!({"process": op.process, "type": "invoke", "f": f,
                "znode": znode, "value": value, "version": version}),
            (true, Outcome::Ok(ret)) => json!({"process": op.process, "type": "ok", "f": f,
                "znode": znode, "result": show(ret), "session": ret.session, "zxid": ret.zxid}),
            (true, Outcome::Fail) => json!({"process": op.process, "type": "fail", "f": f}),
            (true, Outcome::Info | Outcome::Open) => {
                json!({"process": op.process, "type": "info", "f": f})
            }
        };
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(file, text)?;
    Ok(())
}

/// A register client: batches of up to [`PIPELINE`] `setData`s and `getData`s, pipelined in
/// its session.
fn register_client(w: ZkWorker, c: usize, opts: &JepsenOpts, mut rng: Rng, ctx: &Ctx<ZkOp, ZkRet>) {
    // The session outlives a request that waits out a fault.
    let timeout = (opts.op_timeout * 3).max(Duration::from_secs(4));
    let mut session = Session::new(w.servers, c, timeout, opts.op_timeout);
    let mut known = vec![0i32; opts.keys];
    // One history process per pipeline slot; a slot whose operation went indefinite moves on.
    let mut slots: Vec<u64> = (0..PIPELINE as u64)
        .map(|j| c as u64 + PROCESS_STRIDE * j)
        .collect();
    let mut next_gen = PIPELINE as u64;
    let mut n: u64 = 0;
    while !ctx.stopped() {
        let conn = match session.connect() {
            Ok(conn) => conn,
            Err(Lost::Expired) => {
                session.abandon();
                continue;
            }
            Err(Lost::Unavailable) => continue,
        };
        let sid = conn.session_id;
        let batch = 1 + rng.below(PIPELINE as u64) as usize;
        let mut sent = Vec::with_capacity(batch);
        let mut broken = false;
        for (j, slot) in slots.iter_mut().enumerate().take(batch) {
            n += 1;
            let id = ((c as u64) << 32) | n;
            let znode = rng.below(opts.keys as u64) as usize;
            let roll = rng.below(10);
            let op = match roll {
                0..=3 => ZkOp::GetData { znode },
                4..=6 => ZkOp::SetData {
                    znode,
                    data: id as i64,
                    version: -1,
                },
                _ => ZkOp::SetData {
                    znode,
                    data: id as i64,
                    version: known[znode],
                },
            };
            let request = match &op {
                ZkOp::GetData { znode } => Request::GetData {
                    path: register(*znode),
                    watch: false,
                },
                ZkOp::SetData {
                    znode,
                    data,
                    version,
                } => Request::SetData(SetDataRequest {
                    path: register(*znode),
                    data: Some(data.to_string().into_bytes()),
                    version: *version,
                }),
                _ => unreachable!("a register client's ops"),
            };
            let process = *slot;
            let name = show_op(&op);
            let i = ctx.invoke(
                process,
                id,
                op.clone(),
                format!("process {process}: {name}"),
            );
            match conn.send(&request) {
                Ok(s) => sent.push((j, i, op, name, s)),
                Err(_) => {
                    end_unknown(ctx, i, &op, process, &name);
                    if !matches!(op, ZkOp::GetData { .. }) {
                        *slot = c as u64 + PROCESS_STRIDE * next_gen;
                        next_gen += 1;
                    }
                    broken = true;
                    break;
                }
            }
        }
        for (j, i, op, name, s) in sent {
            let process = slots[j];
            let answer = if broken { None } else { conn.receive(s).ok() };
            let Some(answer) = answer else {
                broken = true;
                end_unknown(ctx, i, &op, process, &name);
                if !matches!(op, ZkOp::GetData { .. }) {
                    slots[j] = c as u64 + PROCESS_STRIDE * next_gen;
                    next_gen += 1;
                }
                continue;
            };
            let result = match (&op, answer.result) {
                (ZkOp::SetData { znode, .. }, Ok(Reply::Stat { stat })) => {
                    known[*znode] = stat.version;
                    Some(ZkResult::Version(stat.version))
                }
                (ZkOp::SetData { .. }, Err(err::BAD_VERSION)) => Some(ZkResult::BadVersion),
                (ZkOp::GetData { znode }, Ok(Reply::GetData { data, stat })) => {
                    known[*znode] = stat.version;
                    let data = data
                        .filter(|d| !d.is_empty())
                        .and_then(|d| String::from_utf8_lossy(&d).parse::<i64>().ok());
                    Some(ZkResult::Read {
                        data,
                        version: stat.version,
                    })
                }
                _ => None,
            };
            match result {
                Some(result) => {
                    let ret = ZkRet {
                        session: sid,
                        zxid: answer.zxid,
                        result,
                    };
                    let shown = format!("process {process}: {name} => {}", show(&ret));
                    ctx.ok(i, ret, shown);
                }
                None => {
                    // An error code (the session expired under it): unknown for a write.
                    end_unknown(ctx, i, &op, process, &name);
                    if !matches!(op, ZkOp::GetData { .. }) {
                        slots[j] = c as u64 + PROCESS_STRIDE * next_gen;
                        next_gen += 1;
                    }
                }
            }
        }
        if broken {
            session.disconnect();
        }
    }
    if let Some(c) = session.conn.take() {
        let _ = c.close();
    }
}

/// Ends an operation whose reply never came: a read failed, a write is indefinite.
fn end_unknown(ctx: &Ctx<ZkOp, ZkRet>, i: usize, op: &ZkOp, process: u64, name: &str) {
    match op {
        ZkOp::GetData { .. } => ctx.fail(i, format!("process {process}: {name} => failed")),
        _ => ctx.info(i, format!("process {process}: {name} => indefinite")),
    }
}

/// How a lock client's attempt ended.
enum Attempt {
    /// Held, wrote, released.
    Done,
    /// The session was lost (expired, or its connection failed): start again with a new one.
    Lost,
    /// The run is over.
    Stopped,
}

/// A lock client: the recipe over and over, each attempt in a session of its own when the
/// last one was lost.
fn lock_client(
    w: ZkWorker,
    c: usize,
    _opts: &JepsenOpts,
    mut rng: Rng,
    ctx: &Ctx<ZkOp, ZkRet>,
    bugged: bool,
) {
    let op_timeout = LOCK_SESSION * 2 / 3;
    let mut session = Session::new(w.servers, c, LOCK_SESSION, op_timeout);
    let name = format!("lock client {c}");
    let mut process = c as u64;
    let mut n: u64 = 0;
    while !ctx.stopped() {
        match lock_once(
            &mut session,
            &name,
            c,
            &mut n,
            &mut process,
            &mut rng,
            ctx,
            bugged,
        ) {
            Attempt::Done => {}
            Attempt::Lost => session.abandon(),
            Attempt::Stopped => break,
        }
    }
    if let Some(c) = session.conn.take() {
        let _ = c.close();
    }
}

/// One turn of §2.4's recipe: create, list, wait (maybe pausing), hold (writing), release.
#[allow(clippy::too_many_arguments)]
fn lock_once(
    session: &mut Session,
    name: &str,
    c: usize,
    n: &mut u64,
    process: &mut u64,
    rng: &mut Rng,
    ctx: &Ctx<ZkOp, ZkRet>,
    bugged: bool,
) -> Attempt {
    let ping_every = LOCK_SESSION / 3;
    let conn = match session.connect() {
        Ok(conn) => conn,
        Err(Lost::Expired) => return Attempt::Lost,
        Err(Lost::Unavailable) => return Attempt::Done,
    };
    let sid = conn.session_id;
    let mut next_id = || {
        *n += 1;
        ((c as u64) << 32) | *n
    };
    let p = *process;
    let i = ctx.invoke(p, next_id(), ZkOp::Acquire, format!("process {p}: acquire"));
    let lost = |ctx: &Ctx<ZkOp, ZkRet>, process: &mut u64, why: &str| {
        ctx.info(i, format!("process {p}: acquire => indefinite ({why})"));
        *process += PROCESS_STRIDE;
        Attempt::Lost
    };
    let path = match conn.create(&format!("{LOCK}/lock-"), name.as_bytes(), 3) {
        Ok(path) => path,
        Err(_) => return lost(ctx, process, "create"),
    };
    let mine = path.trim_start_matches(&format!("{LOCK}/")).to_string();
    // 1. List; 2. hold if lowest; 3. else watch the node just below and wait for it to go.
    let zxid = loop {
        let mut children = match conn.get_children(LOCK, false) {
            Ok(ch) => ch,
            Err(_) => return lost(ctx, process, "getChildren"),
        };
        children.sort();
        let Some(at) = children.iter().position(|ch| *ch == mine) else {
            return lost(ctx, process, "its node is gone");
        };
        if at == 0 {
            break conn.last_zxid;
        }
        let below = format!("{LOCK}/{}", children[at - 1]);
        match conn.exists(&below, true) {
            Ok(None) if bugged => break conn.last_zxid,
            Ok(None) => continue,
            Ok(Some(_)) => {}
            Err(_) => return lost(ctx, process, "exists"),
        }
        if rng.unit() < WAITER_PAUSE_CHANCE {
            // A GC pause while waiting: no pings, so the session expires.
            std::thread::sleep(rng.within(&PAUSE));
        }
        // Wait for the watch, pinging.
        let woke = loop {
            if ctx.stopped() {
                ctx.fail(i, format!("process {p}: acquire => failed (the run ended)"));
                return Attempt::Stopped;
            }
            match conn.wait_event(ping_every) {
                Ok(Some(ev)) if ev.type_ == event::NODE_DELETED && ev.path == below => break true,
                Ok(Some(_)) => {}
                Ok(None) => {
                    if conn.ping().is_err() {
                        break false;
                    }
                }
                Err(_) => break false,
            }
        };
        if !woke {
            return lost(
                ctx,
                process,
                "the session or its connection was lost while waiting",
            );
        }
        if bugged {
            // lock-no-recheck: the predecessor is gone, so the lock must be ours.
            break conn.last_zxid;
        }
    };
    let ret = ZkRet {
        session: sid,
        zxid,
        result: ZkResult::Held(mine.clone()),
    };
    let shown = format!("process {p}: acquire => {}", show(&ret));
    ctx.ok(i, ret, shown);

    // The critical section: write our name until the hold is over.
    let hold_until = Instant::now() + rng.within(&HOLD);
    let mut pause_at = (rng.unit() < HOLDER_PAUSE_CHANCE)
        .then(|| Instant::now() + rng.within(&(Duration::ZERO..HOLD.start)));
    while Instant::now() < hold_until && !ctx.stopped() {
        if pause_at.is_some_and(|t| Instant::now() >= t) {
            pause_at = None;
            // A GC pause while holding: the session expires, the node goes, and the next
            // write cannot commit.
            std::thread::sleep(rng.within(&PAUSE));
        }
        let p = *process;
        let i = ctx.invoke(
            p,
            next_id(),
            ZkOp::Write,
            format!("process {p}: write lock-data"),
        );
        let sent = conn.send(&Request::SetData(SetDataRequest {
            path: LOCK_DATA.into(),
            data: Some(name.as_bytes().to_vec()),
            version: -1,
        }));
        let answer = sent.and_then(|s| conn.receive(s));
        match answer {
            Ok(a) if a.result.is_ok() => {
                let ret = ZkRet {
                    session: sid,
                    zxid: a.zxid,
                    result: ZkResult::Done,
                };
                let shown = format!("process {p}: write lock-data => {}", show(&ret));
                ctx.ok(i, ret, shown);
            }
            _ => {
                ctx.info(i, format!("process {p}: write lock-data => indefinite"));
                *process += PROCESS_STRIDE;
                return Attempt::Lost;
            }
        }
        std::thread::sleep(WRITE_EVERY);
    }
    let p = *process;
    let i = ctx.invoke(p, next_id(), ZkOp::Release, format!("process {p}: release"));
    match conn.delete(&path, -1) {
        Ok(()) => {
            let ret = ZkRet {
                session: sid,
                zxid: conn.last_zxid,
                result: ZkResult::Done,
            };
            let shown = format!("process {p}: release => {}", show(&ret));
            ctx.ok(i, ret, shown);
            Attempt::Done
        }
        Err(_) => {
            ctx.info(i, format!("process {p}: release => indefinite"));
            *process += PROCESS_STRIDE;
            Attempt::Lost
        }
    }
}

/// Runs `jepsen zk`.
pub fn run(opts: &JepsenOpts) -> anyhow::Result<JepsenReport> {
    run_workload(
        opts,
        &ZkWorkload {
            final_zxid: Mutex::new(None),
        },
    )
}

/// The faults `jepsen zk` injects by default; it takes `loss` and `delay` too.
const ZK_NEMESES: &[Nemesis] = &[Nemesis::Kill, Nemesis::Partition, Nemesis::Pause];

/// The registry's `zk`: the ensemble's servers ([`ZkService`]), and `jepsen zk`.
pub struct ZkProtocol;

const SERVERS: ServerOnly<ZkService> = ServerOnly::<ZkService>::NEW;

impl Protocol for ZkProtocol {
    fn name(&self) -> &'static str {
        SERVERS.name()
    }
    fn summary(&self) -> &'static str {
        SERVERS.summary()
    }
    /// Zab's bugs, which the servers run, and the lock clients' `lock-no-recheck`.
    fn bugs(&self) -> Vec<&'static str> {
        let mut bugs = SERVERS.bugs();
        bugs.push(LOCK_NO_RECHECK);
        bugs
    }
    fn tuning(&self) -> Tuning {
        SERVERS.tuning()
    }
    fn jepsen_tuning(&self) -> Tuning {
        SERVERS.jepsen_tuning()
    }
    fn tuning_help(&self) -> &'static str {
        SERVERS.tuning_help()
    }
    fn nodes(&self) -> Option<usize> {
        SERVERS.nodes()
    }
    fn data_ports(&self) -> bool {
        SERVERS.data_ports()
    }
    fn ops_help(&self) -> Option<&'static str> {
        None
    }
    fn run_node(&self, args: &NodeArgs) -> anyhow::Result<()> {
        SERVERS.run_node(args)
    }
    fn call(
        &self,
        _: &ClusterConfig,
        _: &[String],
        _: Duration,
    ) -> anyhow::Result<Result<String, crate::client::Indefinite>> {
        anyhow::bail!("zk has no client operations here: use zkCli.sh or kazoo on a client port")
    }
    fn nemeses(&self) -> &'static [Nemesis] {
        ZK_NEMESES
    }
    fn jepsen(&self, opts: &JepsenOpts) -> anyhow::Result<JepsenReport> {
        // Every fault: the servers' links are TCP between processes like any protocol's.
        crate::service::check_nemeses("zk", Nemesis::ALL, &opts.nemesis)?;
        // A leader leaves discovery when a follower's FOLLOWERINFO makes a quorum: alone, it
        // never hears one (`cluster zk --nodes 1` does not serve either).
        anyhow::ensure!(
            opts.nodes >= 2,
            "jepsen zk needs at least 2 nodes (a one-server ensemble never leaves discovery)"
        );
        anyhow::ensure!(
            opts.tuning.snapshot_every == 0,
            "jepsen zk replays a server's whole log: its servers must not snapshot (snapshot_every 0)"
        );
        run(opts)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::zk::db::Write;
    use crate::zk::jute::{open_acl_unsafe, CreateRequest};
    use crate::zk::server::ZkEntry;
    use crate::zk::tree::Txn;

    /// A log as a server keeps it: one entry per transaction, zxids (1, 1), (1, 2), ...
    fn log(txns: Vec<(i64, TxnOp)>) -> Vec<ZkEntry> {
        txns.into_iter()
            .enumerate()
            .map(|(i, (session, op))| ZkEntry {
                zxid: (1, i as u32 + 1),
                txn: Arc::new(Write {
                    origin: 0,
                    xid: 0,
                    txn: Txn {
                        session,
                        time_ms: 0,
                        auth: Vec::new(),
                        op,
                    },
                }),
            })
            .collect()
    }

    fn create(path: &str, flags: i32) -> TxnOp {
        TxnOp::Create(CreateRequest {
            path: path.into(),
            data: Some(Vec::new()),
            acl: open_acl_unsafe(),
            flags,
        })
    }

    fn session() -> TxnOp {
        TxnOp::CreateSession {
            timeout_ms: 800,
            passwd: vec![0; 16],
        }
    }

    fn write(client: &str) -> TxnOp {
        TxnOp::SetData(SetDataRequest {
            path: LOCK_DATA.into(),
            data: Some(client.as_bytes().to_vec()),
            version: -1,
        })
    }

    /// The replay keeps what committed and succeeded: a `setData` refused by the tree (its
    /// session already closed) is no critical-section write.
    #[test]
    fn the_log_replay_finds_two_holders_and_skips_failed_writes() {
        let mut txns = vec![
            (1, session()),
            (1, create(ROOT, 0)),
            (1, create(LOCK, 0)),
            (1, create(LOCK_DATA, 0)),
            (2, session()),
            (3, session()),
            (4, session()),
            (2, create(&format!("{LOCK}/lock-"), 3)),
            (3, create(&format!("{LOCK}/lock-"), 3)),
            (4, create(&format!("{LOCK}/lock-"), 3)),
            (2, write("lock client 2")),
            (3, TxnOp::CloseSession),
            // A write of the expired session: refused (SESSION_EXPIRED), not counted.
            (3, write("lock client 3")),
        ];
        let events = lock_events(&log(txns.clone()));
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, LockEvent::Write { .. }))
                .count(),
            1
        );
        let s = check_lock(&events).unwrap();
        assert_eq!((s.writes, s.holds, s.expired_nodes), (1, 1, 1));
        // lock-no-recheck: 4 wakes when 3's node goes, and writes while 2 still holds.
        txns.push((4, write("lock client 4")));
        let two = check_lock(&lock_events(&log(txns))).unwrap_err();
        assert_eq!(two.client, "lock client 4");
        assert_eq!(two.own.as_deref(), Some("lock-0000000002"));
        assert_eq!(two.lowest, Some(("lock-0000000000".into(), 2)));
        assert_eq!(two.zxid, zxid64((1, 14)));
    }

    #[test]
    fn a_failed_property_is_named_before_an_unknown_one() {
        let part = |verdict: &str, ok, failure: Option<&str>| Part {
            verdict: verdict.into(),
            ok,
            failure: failure.map(str::to_string),
        };
        let file = std::path::PathBuf::from("h");
        let c = combine(
            &[
                part("writes linearizable (3 setData)", Some(true), None),
                part("lock: unknown", None, Some("no final write")),
                part(
                    "two lock holders",
                    Some(false),
                    Some("the lock recipe (§2.4) ..."),
                ),
            ],
            file.clone(),
        );
        assert!(!c.ok);
        assert_eq!(c.verdict, "two lock holders");
        assert_eq!(c.failure.as_deref(), Some("the lock recipe (§2.4) ..."));
        let c = combine(
            &[
                part("writes linearizable (3 setData)", Some(true), None),
                part("lock: unknown", None, Some("no final write")),
            ],
            file,
        );
        assert_eq!((c.ok, c.verdict.as_str()), (false, "unknown"));
    }
}
