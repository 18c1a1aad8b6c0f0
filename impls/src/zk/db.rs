//! A server's ZooKeeper database and its client port: the data tree its Zab actor delivers
//! into, and the client connections that read it and wait for their writes.
//!
//! Each client connection has a reader thread (decodes requests) and a writer thread (writes
//! replies and watch events in the order they were queued). A session's requests take effect in
//! the order it sent them (§2.3, FIFO client order), as in ZooKeeper's `CommitProcessor`: a
//! read is answered at once from the local tree unless a write of the same session is still
//! in flight, in which case it waits behind that write and is answered when the write is
//! applied. Writes go to the leader through the server's actor ([`ZkMsg::Local`]); each
//! delivered transaction is applied here, in zxid order, and answers the connection waiting
//! for it. Watch events are queued when the transaction that fires them is applied, before any
//! later reply: a client sees the event before it can read the new data (§2.3).
//!
//! Each connection has its auth ids ([`super::auth`]; ZooKeeper's `ServerCnxn.authInfo`):
//! `ip:<address>`, then what its auth packets add. A write carries the ids its connection had
//! when it sent it, in its txn, and every server checks the write's ACLs against them where it
//! applies it; a read is checked here, against the ids its connection had when it sent it. An
//! auth packet takes effect at once, for the requests after it, as in ZooKeeper; its reply keeps
//! its place in the session's order (ZooKeeper sends it at once, ahead of replies still due, but
//! kazoo takes an auth reply to answer its oldest pending request). One with a scheme that has
//! no provider is answered `AUTH_FAILED` at once, and the connection closes, as in ZooKeeper.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write as _};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::auth;
use super::jute::{
    self, err, perms, AuthPacket, ConnectRequest, ConnectResponse, Id, Record, Reply, ReplyHeader,
    Request,
};
use super::server::{now_ms, ZkMsg};
use super::tree::{DataTree, Txn, TxnOp};
use crate::node::Inbox;

/// What `srvr` and `envi` report as the version (clients parse its first three numbers).
pub const VERSION: &str = "3.8.0-workbench";

/// ZooKeeper's default session timeout bounds: 2 and 20 ticks of its 2-second `tickTime`
/// (`node zk --session-min-ms` lowers the first, as ZooKeeper's `minSessionTimeout` does).
pub const MIN_SESSION_MS: i32 = 4_000;
pub const MAX_SESSION_MS: i32 = 40_000;

/// A transaction as a server's log holds it: the write, and which connection waits for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Write {
    /// The server whose client sent it (only that server answers it).
    pub origin: usize,
    /// The request's xid in its session.
    pub xid: i32,
    pub txn: Txn,
}

/// What a connection waits for, in its session's order.
enum Waiting {
    /// Its session's `createSession`, to answer the connect request.
    Connect(ConnectResponse),
    /// A write: answered when it is applied.
    Write(i32),
    /// A read behind a write, and the ids its connection had when it came.
    Read {
        xid: i32,
        request: Request,
        auth: Vec<Id>,
    },
}

struct Conn {
    /// Tells connections of one session apart (a client that reconnects replaces its old one).
    gen: u64,
    out: mpsc::Sender<Vec<u8>>,
    stream: TcpStream,
    /// The client's address: what `addauth ip` adds.
    peer: IpAddr,
    /// The ids the connection has authenticated as (`ServerCnxn.authInfo`).
    auth: Vec<Id>,
    waiting: VecDeque<Waiting>,
}

/// The data tree, what has been applied to it, and the client connections.
#[derive(Default)]
pub struct Db {
    tree: DataTree,
    applied: usize,
    last: Option<i64>,
    serving: bool,
    mode: &'static str,
    me: usize,
    inbox: Option<Inbox<ZkMsg>>,
    conns: HashMap<i64, Conn>,
    touched: HashSet<i64>,
    next_gen: u64,
    next_session: i64,
    /// `digest:` ids equal to this one are the super user's too ([`auth::authenticate`]).
    super_digest: Option<String>,
    /// The session timeouts granted: a client's request is clamped into this range.
    session_ms: (i32, i32),
}

impl Db {
    pub fn new(me: usize) -> Self {
        let t = now_ms();
        Db {
            me,
            // ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`: the server id in the
            // top byte, the clock below it.
            next_session: ((t << 24) as u64 >> 8) as i64 | ((me as i64) << 56),
            session_ms: (MIN_SESSION_MS, MAX_SESSION_MS),
            ..Db::default()
        }
    }

    /// The super user's digest (`user:base64(sha1)`), or none.
    pub fn set_super_digest(&mut self, digest: Option<String>) {
        self.super_digest = digest;
    }

    /// The shortest session timeout granted (ZooKeeper's `minSessionTimeout`), in milliseconds;
    /// the longest stays [`MAX_SESSION_MS`] (or this, if longer).
    pub fn set_min_session_ms(&mut self, ms: i32) {
        let ms = ms.max(1);
        self.session_ms = (ms, MAX_SESSION_MS.max(ms));
    }

    pub fn set_inbox(&mut self, inbox: Inbox<ZkMsg>) {
        self.inbox = Some(inbox);
    }

    /// How many delivered transactions are applied.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// The zxid of the last one applied.
    pub fn last_applied(&self) -> Option<i64> {
        self.last
    }

    /// A snapshot of the tree as the applied txns left it.
    pub fn snapshot(&self) -> super::tree::Snapshot {
        self.tree.snapshot()
    }

    /// The number of nodes in the tree.
    pub fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    /// The log was compacted: the txns applied so far are now its first `entries` entries
    /// (one snapshot).
    pub fn compacted(&mut self, entries: usize) {
        self.applied = entries;
    }

    /// Starts over with an empty tree (the server's log changed under it).
    pub fn reset(&mut self) {
        self.tree = DataTree::default();
        self.applied = 0;
        self.last = None;
        self.close_all();
    }

    /// The server's mode (`leader`, `follower`, `looking`) and whether the client port
    /// serves; turning it off drops every client connection, as a ZooKeeper server does when
    /// it loses its leader (clients reconnect elsewhere).
    pub fn set_role(&mut self, mode: &'static str, serving: bool) {
        if self.serving && !serving {
            self.close_all();
        }
        self.mode = mode;
        self.serving = serving;
    }

    fn close_all(&mut self) {
        for (session, c) in self.conns.drain() {
            let _ = c.stream.shutdown(Shutdown::Both);
            self.tree.remove_session_watches(session);
        }
    }

    /// Sessions whose clients were heard from since the last call.
    pub fn take_touched(&mut self) -> Vec<i64> {
        self.touched.drain().collect()
    }

    /// Every live session and its timeout in milliseconds.
    pub fn sessions(&self) -> Vec<(i64, i32)> {
        self.tree
            .sessions()
            .map(|(id, s)| (id, s.timeout_ms))
            .collect()
    }

    /// Applies the next delivered transaction: answers the connection that waits for it and
    /// queues the watch events it fires.
    pub fn apply(&mut self, zxid: i64, w: &Write) {
        let applied = self.tree.apply(zxid, &w.txn);
        self.applied += 1;
        self.last = Some(zxid);
        for (session, event) in &applied.events {
            if let Some(c) = self.conns.get(session) {
                let _ = c.out.send(jute::notification(event));
            }
        }
        let session = w.txn.session;
        let closes = matches!(w.txn.op, TxnOp::CloseSession);
        let Some(c) = self.conns.get_mut(&session) else {
            return;
        };
        match c.waiting.front() {
            Some(Waiting::Connect(_))
                if w.origin == self.me && matches!(w.txn.op, TxnOp::CreateSession { .. }) =>
            {
                let Some(Waiting::Connect(resp)) = c.waiting.pop_front() else {
                    unreachable!("matched")
                };
                let _ = c.out.send(resp.encode());
            }
            Some(Waiting::Write(xid)) if w.origin == self.me && *xid == w.xid => {
                c.waiting.pop_front();
                let _ = c.out.send(encode(w.xid, zxid, applied.reply));
            }
            _ if closes => {
                // The session expired or was closed through another server: its connection
                // here is stale.
                let c = self.conns.remove(&session).expect("present");
                let _ = c.stream.shutdown(Shutdown::Both);
                return;
            }
            _ => return,
        }
        if closes {
            // The reply goes out, then the connection closes.
            let c = self.conns.remove(&session).expect("present");
            drop(c.out);
            let _ = c.stream.shutdown(Shutdown::Read);
            return;
        }
        self.drain_reads(session);
    }

    /// Answers the reads waiting at the front of a session's queue.
    fn drain_reads(&mut self, session: i64) {
        loop {
            let Some(c) = self.conns.get_mut(&session) else {
                return;
            };
            if !matches!(c.waiting.front(), Some(Waiting::Read { .. })) {
                return;
            }
            let Some(Waiting::Read { xid, request, auth }) = c.waiting.pop_front() else {
                unreachable!("matched")
            };
            let bytes = self.read(session, xid, &request, &auth);
            if let Some(c) = self.conns.get(&session) {
                let _ = c.out.send(bytes);
            }
        }
    }

    /// A read's reply, from the local tree (watches registered for the session), for a
    /// connection with the ids `auth`.
    fn read(&mut self, session: i64, xid: i32, req: &Request, auth: &[Id]) -> Vec<u8> {
        let zxid = self.last.unwrap_or(0);
        let w = |watch: bool| watch.then_some(session);
        let result: Result<Reply, i32> = match req {
            Request::Ping => Ok(Reply::Empty),
            Request::Exists { path, watch } => self
                .tree
                .exists(path, w(*watch))
                .map(|stat| Reply::Stat { stat }),
            // The ACL first: a read refused sets no watch.
            Request::GetData { path, watch } => self
                .tree
                .permits(path, perms::READ, auth)
                .and_then(|()| self.tree.get_data(path, w(*watch)))
                .map(|(data, stat)| Reply::GetData { data, stat }),
            Request::GetChildren { path, watch } => self
                .tree
                .permits(path, perms::READ, auth)
                .and_then(|()| self.tree.get_children(path, w(*watch)))
                .map(|(children, _)| Reply::GetChildren { children }),
            Request::GetChildren2 { path, watch } => self
                .tree
                .permits(path, perms::READ, auth)
                .and_then(|()| self.tree.get_children(path, w(*watch)))
                .map(|(children, stat)| Reply::GetChildren2 { children, stat }),
            Request::GetAcl { path } => self
                .tree
                .get_acl(path, auth)
                .map(|(acl, stat)| Reply::GetAcl { acl, stat }),
            Request::GetAllChildrenNumber { path } => self
                .tree
                .permits(path, perms::READ, auth)
                .and_then(|()| self.tree.all_children_number(path))
                .map(|n| Reply::GetAllChildrenNumber { n }),
            Request::GetEphemerals { prefix_path } => Ok(Reply::GetEphemerals {
                paths: self
                    .tree
                    .ephemerals(session)
                    .into_iter()
                    .filter(|p| p.starts_with(prefix_path.as_str()))
                    .collect(),
            }),
            Request::SetWatches(sw) => {
                return self.set_watches(
                    session,
                    xid,
                    sw.relative_zxid,
                    &sw.data_watches,
                    &sw.exist_watches,
                    &sw.child_watches,
                )
            }
            Request::SetWatches2(sw) => {
                return self.set_watches(
                    session,
                    xid,
                    sw.relative_zxid,
                    &sw.data_watches,
                    &sw.exist_watches,
                    &sw.child_watches,
                )
            }
            Request::WhoAmI => Ok(Reply::WhoAmI(auth::client_infos(auth))),
            // Its ids were added when it came ([`Db::authenticate`]); ZooKeeper's reply has
            // zxid 0.
            Request::Auth(_) => return encode(xid, 0, Ok(Reply::Empty)),
            _ => Err(err::UNIMPLEMENTED),
        };
        encode(xid, zxid, result)
    }

    /// `setWatches`: the watches a reconnecting client had, registered again; the events it
    /// missed go out first.
    fn set_watches(
        &mut self,
        session: i64,
        xid: i32,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
    ) -> Vec<u8> {
        let zxid = self.last.unwrap_or(0);
        let mut out = Vec::new();
        for ev in self
            .tree
            .set_watches(session, relative_zxid, data, exist, child)
        {
            out.extend(jute::notification(&ev));
        }
        out.extend(encode(xid, zxid, Ok(Reply::Empty)));
        out
    }
}

/// A reply, framed.
fn encode(xid: i32, zxid: i64, reply: Result<Reply, i32>) -> Vec<u8> {
    match reply {
        Ok(r) => r.encode(&ReplyHeader { xid, zxid, err: 0 }),
        Err(err) => Reply::Empty.encode(&ReplyHeader { xid, zxid, err }),
    }
}

/// The client port: serves one connection until it closes.
pub fn serve(db: Arc<Mutex<Db>>, stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    // ZooKeeper's four-letter words come where a frame's length would.
    let mut first = [0u8; 4];
    reader.read_exact(&mut first)?;
    if let Some(cmd) = FOUR_LETTER_WORDS.iter().find(|w| w.as_bytes() == first) {
        let answer = db.lock().expect("db lock").four_letter(cmd);
        let mut s = stream;
        s.write_all(answer.as_bytes())?;
        return s.shutdown(Shutdown::Both);
    }
    let len = i32::from_be_bytes(first);
    if len < 0 || len as usize > jute::MAX_BUFFER {
        return Err(std::io::Error::other(format!(
            "a connect request of {len} bytes"
        )));
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body)?;
    let req = ConnectRequest::decode(&body).map_err(std::io::Error::other)?;
    // The writer: replies and events in the order they are queued; it ends, closing the
    // connection, once every sender is gone (a refused connect's answer still goes out).
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut w = stream.try_clone()?;
    std::thread::spawn(move || {
        for bytes in rx {
            if w.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = w.shutdown(Shutdown::Both);
    });
    let Some((session, gen)) = db.lock().expect("db lock").connect(&req, &stream, tx)? else {
        return Ok(());
    };
    let result = (|| loop {
        let Some(body) = jute::read_frame(&mut reader).map_err(std::io::Error::other)? else {
            return Ok(());
        };
        let (header, request) = jute::decode_request(&body).map_err(std::io::Error::other)?;
        if !db
            .lock()
            .expect("db lock")
            .request(session, gen, header.xid, request)
        {
            return Ok(());
        }
    })();
    db.lock().expect("db lock").disconnect(session, gen);
    result
}

/// The four-letter words a server answers (ZooKeeper's `FourLetterCommands`).
const FOUR_LETTER_WORDS: &[&str] = &["ruok", "srvr", "stat", "envi", "conf", "mntr"];

impl Db {
    /// A connect request: a new session (answered once its `createSession` is applied), or a
    /// session the client had, if the password matches. `None`: refused and answered.
    fn connect(
        &mut self,
        req: &ConnectRequest,
        stream: &TcpStream,
        out: mpsc::Sender<Vec<u8>>,
    ) -> std::io::Result<Option<(i64, u64)>> {
        if !self.serving {
            // ZooKeeper closes the socket: "ZooKeeperServer not running".
            return Ok(None);
        }
        let last = self.last.unwrap_or(0);
        if req.last_zxid_seen > last {
            // The client has seen more than this server: its reads would go back in time.
            tracing::info!(
                client = format!("{:#x}", req.last_zxid_seen),
                ours = format!("{last:#x}"),
                "refusing a client that has seen a later zxid"
            );
            return Ok(None);
        }
        let timeout = req.time_out.clamp(self.session_ms.0, self.session_ms.1);
        self.next_gen += 1;
        let gen = self.next_gen;
        let peer = stream.peer_addr()?.ip();
        let mut conn = Conn {
            gen,
            out,
            stream: stream.try_clone()?,
            peer,
            auth: auth::connection_ids(peer),
            waiting: VecDeque::new(),
        };
        let session = if req.session_id == 0 {
            self.next_session += 1;
            let session = self.next_session;
            let passwd = session_password(session);
            conn.waiting.push_back(Waiting::Connect(ConnectResponse {
                protocol_version: 0,
                time_out: timeout,
                session_id: session,
                passwd: passwd.clone(),
                read_only: false,
            }));
            self.submit(Write {
                origin: self.me,
                xid: 0,
                txn: Txn {
                    session,
                    time_ms: now_ms(),
                    auth: Vec::new(),
                    op: TxnOp::CreateSession {
                        timeout_ms: timeout,
                        passwd,
                    },
                },
            });
            session
        } else {
            let known = self.tree.session(req.session_id);
            let resp = match known {
                Some(known) if known.passwd == req.passwd => ConnectResponse {
                    protocol_version: 0,
                    time_out: known.timeout_ms,
                    session_id: req.session_id,
                    passwd: known.passwd.clone(),
                    read_only: false,
                },
                _ => {
                    // Expired (or never was): a zero timeout tells the client.
                    let resp = ConnectResponse {
                        protocol_version: 0,
                        time_out: 0,
                        session_id: 0,
                        passwd: vec![0; 16],
                        read_only: false,
                    };
                    let _ = conn.out.send(resp.encode());
                    drop(conn.out);
                    return Ok(None);
                }
            };
            let _ = conn.out.send(resp.encode());
            req.session_id
        };
        if let Some(old) = self.conns.insert(session, conn) {
            let _ = old.stream.shutdown(Shutdown::Both);
        }
        self.touched.insert(session);
        Ok(Some((session, gen)))
    }

    /// One request of a connected session; false when the connection should close.
    fn request(&mut self, session: i64, gen: u64, xid: i32, request: Request) -> bool {
        if self.conns.get(&session).is_none_or(|c| c.gen != gen) {
            return false;
        }
        self.touched.insert(session);
        let now = now_ms();
        if let Request::Auth(packet) = &request {
            if !self.authenticate(session, xid, packet) {
                return false;
            }
        }
        let Some(op) = TxnOp::from_request(&request) else {
            let c = self.conns.get_mut(&session).expect("checked");
            let auth = c.auth.clone();
            if c.waiting.is_empty() {
                let bytes = self.read(session, xid, &request, &auth);
                let _ = self.conns[&session].out.send(bytes);
            } else {
                c.waiting.push_back(Waiting::Read { xid, request, auth });
            }
            return true;
        };
        let c = self.conns.get_mut(&session).expect("checked");
        c.waiting.push_back(Waiting::Write(xid));
        let auth = c.auth.clone();
        self.submit(Write {
            origin: self.me,
            xid,
            txn: Txn {
                session,
                time_ms: now,
                auth,
                op,
            },
        });
        true
    }

    /// An auth packet: its ids join the connection's at once (its reply waits its turn, as a
    /// read). False, with `AUTH_FAILED` sent, when the scheme has no provider: the connection
    /// closes (`ZooKeeperServer.processPacket`).
    fn authenticate(&mut self, session: i64, xid: i32, packet: &AuthPacket) -> bool {
        let c = self.conns.get_mut(&session).expect("checked by the caller");
        match auth::authenticate(
            &packet.scheme,
            &packet.auth,
            c.peer,
            self.super_digest.as_deref(),
        ) {
            Ok(ids) => {
                auth::add_ids(&mut c.auth, ids);
                true
            }
            Err(code) => {
                tracing::info!(
                    session = format!("{session:#x}"),
                    scheme = packet.scheme,
                    "auth failed: no provider for the scheme; closing the connection"
                );
                let _ = c.out.send(encode(xid, 0, Err(code)));
                false
            }
        }
    }

    fn submit(&self, w: Write) {
        if let Some(inbox) = &self.inbox {
            inbox.deliver(ZkMsg::Local(w));
        }
    }

    /// A connection closed: its watches go (the client sets them again when it reconnects);
    /// its session lives on until it expires or is closed.
    fn disconnect(&mut self, session: i64, gen: u64) {
        if self.conns.get(&session).is_some_and(|c| c.gen == gen) {
            self.conns.remove(&session);
            self.tree.remove_session_watches(session);
        }
    }

    fn four_letter(&self, cmd: &str) -> String {
        let zxid = self.last.unwrap_or(0);
        match cmd {
            "ruok" => "imok".into(),
            "envi" => format!(
                "Environment:\nzookeeper.version={VERSION}\nhost.name=localhost\n\
                 server.id={}\n",
                self.me
            ),
            "conf" => format!("serverId={}\n", self.me),
            "mntr" => format!(
                "zk_version\t{VERSION}\nzk_server_state\t{}\nzk_znode_count\t{}\n\
                 zk_num_alive_connections\t{}\n",
                self.mode,
                self.tree.node_count(),
                self.conns.len()
            ),
            // srvr, stat
            _ => format!(
                "Zookeeper version: {VERSION}\nLatency min/avg/max: 0/0/0\nReceived: 0\n\
                 Sent: 0\nConnections: {}\nOutstanding: 0\nZxid: {zxid:#x}\nMode: {}\n\
                 Node count: {}\n",
                self.conns.len(),
                self.mode,
                self.tree.node_count()
            ),
        }
    }
}

/// A session's password: ZooKeeper derives it from the session id and a server secret; any
/// value the client cannot guess will do, and every server must accept it.
fn session_password(session: i64) -> Vec<u8> {
    let mut x = session as u64 ^ 0x9e37_79b9_7f4a_7c15 ^ now_ms() as u64;
    (0..16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
