//! ZooKeeper's `DataTree`: the znodes and the sessions, changed by transactions that every
//! server applies in zxid order, and each server's own one-shot watches.
//!
//! # Transactions
//! A [`Txn`] is a write as the leader ordered it: the session that asked, the leader's clock, the
//! op. [`DataTree::apply`] is deterministic, so replicas that apply the same txns at the same
//! zxids are equal ([`DataTree::digest`]). In ZooKeeper the leader's `PrepRequestProcessor` checks
//! a write against the tree as it will be, and turns it into a txn that `DataTree.processTxn`
//! then applies; `apply` does both, with the checks in ZooKeeper's order, so a write fails with
//! the code ZooKeeper gives it:
//! - create: flags (`BAD_ARGUMENTS`; TTL `UNIMPLEMENTED`), session (`SESSION_EXPIRED`), a '/' and
//!   no NUL (`BAD_ARGUMENTS`), the ACL (`INVALID_ACL`), the parent (`NO_NODE`), CREATE on the
//!   parent (`NO_AUTH`), then the sequential suffix, the whole path (`BAD_ARGUMENTS`),
//!   `NODE_EXISTS`, an ephemeral parent (`NO_CHILDREN_FOR_EPHEMERALS`). So `/a/` is refused
//!   unless sequential: then it names `/a`'s child `0000000003`. And creating `/` is
//!   `NODE_EXISTS`.
//! - delete: session, a '/', no NUL and not one of ZooKeeper's own nodes (`/`, `/zookeeper`,
//!   `/zookeeper/quota`, `/zookeeper/config`: `BAD_ARGUMENTS`), the parent (`NO_NODE`), DELETE
//!   on the parent (`NO_AUTH`), the node (`NO_NODE`), the version (`BAD_VERSION`), children
//!   (`NOT_EMPTY`).
//! - setData, check, setACL: session, path, (setACL: the ACL), node, the permission (WRITE,
//!   READ, ADMIN: `NO_AUTH`), version.
//! - A multi is all or nothing: its ops apply in turn, each to the tree the ones before it left,
//!   and the first that fails undoes them all. Its reply is then an error result for every op,
//!   `OK` before the failed one, the failure's code for it, `RUNTIME_INCONSISTENCY` after.
//! - CreateSession registers a session; CloseSession deletes its ephemeral nodes (firing their
//!   watches), drops its watches and forgets it.
//!
//! # Stats (`DataNode.copyStat`)
//! A node keeps the number of children it ever had created (`StatPersisted.cversion`), which is
//! the suffix of its next sequential child (`%010d`). Clients see `2 * creates - children`: the
//! creates and the deletes. So the sequence goes on after deletes (`n-0000000000`,
//! `n-0000000001`, delete the first, `n-0000000002`), and `/`, with one child it never created,
//! shows cversion -1.
//!
//! # Watches (`WatchManager`)
//! Watches belong to the server the session is connected to, not to the replicated state: they
//! are not in a snapshot, nor in [`DataTree::digest`]. Each is one-shot: the change that fires it
//! removes it. Data watches (`getData`; `exists`, even on a missing node) hear `NodeCreated`,
//! `NodeDataChanged` and `NodeDeleted`; child watches (`getChildren`) hear
//! `NodeChildrenChanged` and `NodeDeleted`. A session hears a deletion once.
//!
//! # ACLs
//! A txn carries the ids of the connection that sent it ([`Txn::auth`]), and the checks above
//! are made against them where the txn is applied: every server decides alike, as ZooKeeper's
//! leader alone does in `PrepRequestProcessor`. Reads are checked by the server that answers
//! them ([`DataTree::permits`], [`DataTree::get_acl`]). What each op asks for, and how ids and
//! ACLs match, is in [`super::auth`].
//!
//! # Here, and not here
//! - Containers (flag 4) are made, owned by `i64::MIN` as ZooKeeper stores them (clients see 0),
//!   but never reaped: there is no `ContainerManager`. TTL nodes are `UNIMPLEMENTED`, as in a
//!   ZooKeeper without `zookeeper.extendedTypesEnabled`.
//! - No quotas, no persistent watches, and `/zookeeper/config` stays empty (a standalone server's).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::auth;
use super::jute::{
    err, event, open_acl_unsafe, perms, state, Acl, CheckVersionRequest, CreateRequest, Data,
    DeleteRequest, Id, OpResult, Reply, Request, SetAclRequest, SetDataRequest, Stat, WatcherEvent,
};

pub type SessionId = i64;
pub type Zxid = i64;

/// The ephemeral owner of a container (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
const CONTAINER_OWNER: SessionId = i64::MIN;
/// Create flags of a container node.
const CONTAINER_FLAGS: i32 = 4;

/// A write, as the leader ordered it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txn {
    pub session: SessionId,
    /// The leader's clock when it ordered the write: the ctime and mtime it sets.
    pub time_ms: i64,
    /// The ids of the connection that sent it, when it sent it (ZooKeeper's
    /// `Request.authInfo`): its ACL checks are made against these.
    pub auth: Vec<Id>,
    pub op: TxnOp,
}

/// The op of a [`Txn`]: a client's write, or a session's start or end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnOp {
    CreateSession {
        timeout_ms: i32,
        passwd: Vec<u8>,
    },
    CloseSession,
    /// Replied with the path.
    Create(CreateRequest),
    /// Replied with the path and the stat: `create2` and `createContainer`.
    Create2(CreateRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    /// A version check, inside a multi.
    Check(CheckVersionRequest),
    SetAcl(SetAclRequest),
    /// Only `Create`, `Create2`, `Delete`, `SetData` and `Check`; any other op makes the whole
    /// multi a `MARSHALLING_ERROR`, as ZooKeeper's decoder would.
    Multi(Vec<TxnOp>),
    /// Changes nothing: the reply leaves once the writes before it are applied.
    Sync {
        path: String,
    },
    /// The nodes and sessions as they were after every txn up to this entry's zxid: the first
    /// entry of a compacted log (ZooKeeper's `snapshot.<zxid>` file; a follower too far behind
    /// gets it in a SNAP). Never sent by a client.
    Snapshot(Snapshot),
}

/// A snapshot of the nodes and sessions. ZooKeeper's is fuzzy (taken while txns apply, then
/// made good by replaying the log from where it began); this one is taken between two txns.
#[derive(Clone, Serialize, Deserialize)]
pub struct Snapshot(pub std::sync::Arc<DataTree>);

impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Snapshot {}

/// Cheap and consistent with equality: equal trees have as many nodes.
impl std::hash::Hash for Snapshot {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.node_count().hash(h)
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot({} nodes, {} sessions)",
            self.0.node_count(),
            self.0.sessions.len()
        )
    }
}

impl TxnOp {
    /// The txn of a write request; `None` for a read (or an op that is not a write).
    /// A `createContainer` becomes a `Create2` with the container flag, whatever its flags said.
    pub fn from_request(request: &Request) -> Option<TxnOp> {
        Some(match request {
            Request::Create(c) => TxnOp::Create(c.clone()),
            Request::Create2(c) => TxnOp::Create2(c.clone()),
            Request::CreateContainer(c) => TxnOp::Create2(CreateRequest {
                flags: CONTAINER_FLAGS,
                ..c.clone()
            }),
            Request::Delete(d) => TxnOp::Delete(d.clone()),
            Request::SetData(s) => TxnOp::SetData(s.clone()),
            Request::Check(c) => TxnOp::Check(c.clone()),
            Request::SetAcl(s) => TxnOp::SetAcl(s.clone()),
            Request::Multi(ops) => {
                TxnOp::Multi(ops.iter().map(TxnOp::from_request).collect::<Option<_>>()?)
            }
            Request::Sync { path } => TxnOp::Sync { path: path.clone() },
            Request::CloseSession => TxnOp::CloseSession,
            _ => return None,
        })
    }

    fn in_multi(&self) -> bool {
        matches!(
            self,
            TxnOp::Create(_)
                | TxnOp::Create2(_)
                | TxnOp::Delete(_)
                | TxnOp::SetData(_)
                | TxnOp::Check(_)
        )
    }
}

/// What a txn did: the reply for the session that asked (or its error code), and the watch
/// events it fired, for the sessions that set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub reply: Result<Reply, i32>,
    pub events: Vec<(SessionId, WatcherEvent)>,
}

/// A session, as its `CreateSession` registered it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub timeout_ms: i32,
    pub passwd: Vec<u8>,
    /// Invariant: the paths of the nodes whose ephemeral owner is this session.
    ephemerals: BTreeSet<String>,
}

/// A node's stat as the server keeps it (`StatPersisted`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StatPersisted {
    czxid: Zxid,
    mzxid: Zxid,
    ctime: i64,
    mtime: i64,
    version: i32,
    /// Creates of children, ever: not what clients see (see [`Node::stat`]).
    cversion: i32,
    aversion: i32,
    ephemeral_owner: SessionId,
    pzxid: Zxid,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Node {
    /// Null (`None`) when the create or the last setData sent null: kept apart from empty.
    data: Data,
    acl: Vec<Acl>,
    stat: StatPersisted,
    children: BTreeSet<String>,
}

impl Node {
    /// The stat as clients see it (`DataNode.copyStat`).
    fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            // Every create but those of the children still here has had its delete.
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: if is_ephemeral(s.ephemeral_owner) {
                s.ephemeral_owner
            } else {
                0
            },
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// Owned by a session, as opposed to persistent (0) or a container.
fn is_ephemeral(owner: SessionId) -> bool {
    owner != 0 && owner != CONTAINER_OWNER
}

/// The sessions watching each path.
type WatchTable = BTreeMap<String, BTreeSet<SessionId>>;

#[derive(Clone, Debug, Default)]
struct Watches {
    /// `getData` and `exists`: one table, as in ZooKeeper's server.
    data: WatchTable,
    /// `getChildren`.
    child: WatchTable,
}

fn watch(table: &mut WatchTable, path: &str, session: SessionId) {
    table.entry(path.to_string()).or_default().insert(session);
}

/// The parts of a txn every op needs.
#[derive(Clone, Copy)]
struct At<'a> {
    zxid: Zxid,
    session: SessionId,
    time_ms: i64,
    auth: &'a [Id],
}

/// A change that fires watches: an [`event`] type and its path.
type Change = (i32, String);

/// The nodes and sessions every server has (serialized, they are a snapshot), and this
/// server's watches (not serialized).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataTree {
    /// Invariant: holds `/`, and each other node's parent, which lists it among its children.
    nodes: BTreeMap<String, Node>,
    sessions: BTreeMap<SessionId, Session>,
    #[serde(skip)]
    watches: Watches,
    /// During a multi: each node as it was before each of the multi's writes to it.
    #[serde(skip)]
    journal: Option<Vec<(String, Option<Node>)>>,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// Replicas are equal when their nodes and sessions are: watches are each server's own.
impl PartialEq for DataTree {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes && self.sessions == other.sessions
    }
}

impl Eq for DataTree {}

impl DataTree {
    /// A new ZooKeeper's tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`
    /// (readable by anyone, aversion -1), all with empty data and stats of zeros (`DataTree()`).
    pub fn new() -> Self {
        let node = |children: &[&str]| Node {
            data: Some(Vec::new()),
            acl: open_acl_unsafe(),
            children: children.iter().map(|c| c.to_string()).collect(),
            ..Node::default()
        };
        let config = Node {
            data: Some(Vec::new()),
            acl: vec![Acl {
                perms: perms::READ,
                ..open_acl_unsafe()[0].clone()
            }],
            stat: StatPersisted {
                aversion: -1,
                ..StatPersisted::default()
            },
            ..Node::default()
        };
        DataTree {
            nodes: BTreeMap::from([
                ("/".into(), node(&["zookeeper"])),
                ("/zookeeper".into(), node(&["config", "quota"])),
                ("/zookeeper/quota".into(), node(&[])),
                ("/zookeeper/config".into(), config),
            ]),
            sessions: BTreeMap::new(),
            watches: Watches::default(),
            journal: None,
        }
    }

    /// Applies `txn` at `zxid`: what every server does with each committed txn, in zxid order.
    pub fn apply(&mut self, zxid: Zxid, txn: &Txn) -> Applied {
        let at = At {
            zxid,
            session: txn.session,
            time_ms: txn.time_ms,
            auth: &txn.auth,
        };
        let mut changes = Vec::new();
        let reply = self.apply_op(at, &txn.op, &mut changes);
        Applied {
            reply,
            events: self.fire(changes),
        }
    }

    fn apply_op(&mut self, at: At, op: &TxnOp, changes: &mut Vec<Change>) -> Result<Reply, i32> {
        match op {
            TxnOp::CreateSession { timeout_ms, passwd } => {
                let session = self.sessions.entry(at.session).or_default();
                session.timeout_ms = *timeout_ms;
                session.passwd = passwd.clone();
                Ok(Reply::Empty)
            }
            TxnOp::CloseSession => {
                self.close_session(at, changes);
                Ok(Reply::Empty)
            }
            TxnOp::Create(c) => self
                .create(at, c, changes)
                .map(|(path, _)| Reply::Create { path }),
            TxnOp::Create2(c) => self
                .create(at, c, changes)
                .map(|(path, stat)| Reply::Create2 { path, stat }),
            TxnOp::Delete(d) => self.delete(at, d, changes).map(|()| Reply::Empty),
            TxnOp::SetData(s) => self
                .set_data(at, s, changes)
                .map(|stat| Reply::Stat { stat }),
            TxnOp::Check(c) => self.check(at, c).map(|stat| Reply::Stat { stat }),
            TxnOp::SetAcl(s) => self.set_acl(at, s).map(|stat| Reply::Stat { stat }),
            TxnOp::Multi(ops) => self.multi(at, ops, changes),
            TxnOp::Sync { path } => Ok(Reply::Sync { path: path.clone() }),
            TxnOp::Snapshot(snap) => {
                self.nodes = snap.0.nodes.clone();
                self.sessions = snap.0.sessions.clone();
                Ok(Reply::Empty)
            }
        }
    }

    /// `PrepRequestProcessor.pRequest2TxnCreate`, then `DataTree.createNode`.
    fn create(
        &mut self,
        at: At,
        req: &CreateRequest,
        changes: &mut Vec<Change>,
    ) -> Result<(String, Stat), i32> {
        // `CreateMode.fromFlag`; TTLs need `zookeeper.extendedTypesEnabled`.
        let (sequential, owner) = match req.flags {
            0 => (false, 0),
            1 => (false, at.session),
            2 => (true, 0),
            3 => (true, at.session),
            CONTAINER_FLAGS => (false, CONTAINER_OWNER),
            5 | 6 => return Err(err::UNIMPLEMENTED),
            _ => return Err(err::BAD_ARGUMENTS),
        };
        self.check_session(at.session)?;
        let (parent, _) = split(&req.path).ok_or(err::BAD_ARGUMENTS)?;
        let acl = auth::fixup(&req.acl, at.auth)?;
        let parent_node = self.nodes.get(parent).ok_or(err::NO_NODE)?;
        auth::check(&parent_node.acl, perms::CREATE, at.auth)?;
        let parent_stat = parent_node.stat;
        let path = match sequential {
            true => format!("{}{:010}", req.path, parent_stat.cversion),
            false => req.path.clone(),
        };
        validate_path(&path)?;
        if self.nodes.contains_key(&path) {
            return Err(err::NODE_EXISTS);
        }
        if is_ephemeral(parent_stat.ephemeral_owner) {
            return Err(err::NO_CHILDREN_FOR_EPHEMERALS);
        }

        let (parent, name) = split(&path).expect("validated above");
        let p = self.node_mut(parent);
        p.children.insert(name.to_string());
        p.stat.cversion = p.stat.cversion.wrapping_add(1);
        p.stat.pzxid = at.zxid;
        let node = Node {
            data: req.data.clone(),
            acl,
            stat: StatPersisted {
                czxid: at.zxid,
                mzxid: at.zxid,
                pzxid: at.zxid,
                ctime: at.time_ms,
                mtime: at.time_ms,
                ephemeral_owner: owner,
                ..StatPersisted::default()
            },
            children: BTreeSet::new(),
        };
        let stat = node.stat();
        changes.push((event::NODE_CREATED, path.clone()));
        changes.push((event::NODE_CHILDREN_CHANGED, parent.to_string()));
        self.insert(path.clone(), node);
        Ok((path, stat))
    }

    /// `PrepRequestProcessor.pRequest2Txn` for `delete`.
    fn delete(
        &mut self,
        at: At,
        req: &DeleteRequest,
        changes: &mut Vec<Change>,
    ) -> Result<(), i32> {
        self.check_session(at.session)?;
        let (parent, _) = split(&req.path)
            .filter(|_| !is_special(&req.path))
            .ok_or(err::BAD_ARGUMENTS)?;
        let parent = self.nodes.get(parent).ok_or(err::NO_NODE)?;
        auth::check(&parent.acl, perms::DELETE, at.auth)?;
        let node = self.nodes.get(&req.path).ok_or(err::NO_NODE)?;
        next_version(node.stat.version, req.version)?;
        if !node.children.is_empty() {
            return Err(err::NOT_EMPTY);
        }
        self.remove_node(at.zxid, &req.path, changes);
        Ok(())
    }

    /// `DataTree.deleteNode`: no checks. The parent's cversion stays: it counts creates.
    fn remove_node(&mut self, zxid: Zxid, path: &str, changes: &mut Vec<Change>) {
        let (parent, name) = split(path).expect("a node's path has a parent");
        let p = self.node_mut(parent);
        p.children.remove(name);
        p.stat.pzxid = p.stat.pzxid.max(zxid);
        self.remove(path);
        changes.push((event::NODE_DELETED, path.to_string()));
        changes.push((event::NODE_CHILDREN_CHANGED, parent.to_string()));
    }

    fn set_data(
        &mut self,
        at: At,
        req: &SetDataRequest,
        changes: &mut Vec<Change>,
    ) -> Result<Stat, i32> {
        self.check_session(at.session)?;
        validate_path(&req.path)?;
        let node = self.nodes.get(&req.path).ok_or(err::NO_NODE)?;
        auth::check(&node.acl, perms::WRITE, at.auth)?;
        let version = next_version(node.stat.version, req.version)?;
        let node = self.node_mut(&req.path);
        node.data = req.data.clone();
        node.stat.version = version;
        node.stat.mzxid = at.zxid;
        node.stat.mtime = at.time_ms;
        let stat = node.stat();
        changes.push((event::NODE_DATA_CHANGED, req.path.clone()));
        Ok(stat)
    }

    fn check(&mut self, at: At, req: &CheckVersionRequest) -> Result<Stat, i32> {
        self.check_session(at.session)?;
        validate_path(&req.path)?;
        let node = self.nodes.get(&req.path).ok_or(err::NO_NODE)?;
        auth::check(&node.acl, perms::READ, at.auth)?;
        next_version(node.stat.version, req.version)?;
        Ok(node.stat())
    }

    /// Changes the ACL and its version, nothing else: no mzxid, no watch.
    fn set_acl(&mut self, at: At, req: &SetAclRequest) -> Result<Stat, i32> {
        self.check_session(at.session)?;
        validate_path(&req.path)?;
        let acl = auth::fixup(&req.acl, at.auth)?;
        let node = self.nodes.get(&req.path).ok_or(err::NO_NODE)?;
        auth::check(&node.acl, perms::ADMIN, at.auth)?;
        let aversion = next_version(node.stat.aversion, req.version)?;
        let node = self.node_mut(&req.path);
        node.acl = acl;
        node.stat.aversion = aversion;
        Ok(node.stat())
    }

    /// ZooKeeper checks each op of a multi against the tree as the ops before it left it
    /// (`PrepRequestProcessor`'s pending changes), and the first failure fails them all
    /// (`DataTree.processTxn`). Here the ops apply in turn, and the journal undoes them.
    fn multi(&mut self, at: At, ops: &[TxnOp], changes: &mut Vec<Change>) -> Result<Reply, i32> {
        if !ops.iter().all(TxnOp::in_multi) {
            return Err(err::MARSHALLING_ERROR);
        }
        self.journal = Some(Vec::new());
        let mut applied = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        let mut failed = None;
        for (i, op) in ops.iter().enumerate() {
            let result = match op {
                TxnOp::Create(c) => self
                    .create(at, c, &mut applied)
                    .map(|(path, _)| OpResult::Create { path }),
                TxnOp::Create2(c) => self
                    .create(at, c, &mut applied)
                    .map(|(path, stat)| OpResult::Create2 { path, stat }),
                TxnOp::Delete(d) => self.delete(at, d, &mut applied).map(|()| OpResult::Delete),
                TxnOp::SetData(s) => self
                    .set_data(at, s, &mut applied)
                    .map(|stat| OpResult::SetData { stat }),
                TxnOp::Check(c) => self.check(at, c).map(|_| OpResult::Check),
                _ => unreachable!("in_multi is checked above"),
            };
            match result {
                Ok(result) => results.push(result),
                Err(code) => {
                    failed = Some((i, code));
                    break;
                }
            }
        }
        let journal = self.journal.take().expect("set above");
        let Some((failed, code)) = failed else {
            changes.append(&mut applied);
            return Ok(Reply::Multi(results));
        };
        self.rollback(journal);
        let err = |i: usize| match i.cmp(&failed) {
            std::cmp::Ordering::Less => err::OK,
            std::cmp::Ordering::Equal => code,
            std::cmp::Ordering::Greater => err::RUNTIME_INCONSISTENCY,
        };
        Ok(Reply::Multi(
            (0..ops.len())
                .map(|i| OpResult::Error { err: err(i) })
                .collect(),
        ))
    }

    /// `DataTree.killSession`. The session's own watches go first: it will hear nothing more.
    fn close_session(&mut self, at: At, changes: &mut Vec<Change>) {
        let Some(session) = self.sessions.get(&at.session) else {
            return;
        };
        let ephemerals = session.ephemerals.clone();
        self.remove_session_watches(at.session);
        for path in &ephemerals {
            self.remove_node(at.zxid, path, changes);
        }
        self.sessions.remove(&at.session);
    }

    /// `SessionTracker.checkSession`: a write from a session that is not (or no longer) here.
    fn check_session(&self, session: SessionId) -> Result<(), i32> {
        match self.sessions.contains_key(&session) {
            true => Ok(()),
            false => Err(err::SESSION_EXPIRED),
        }
    }

    // Every write to `nodes` goes through these three, which keep the journal of a multi and
    // the sessions' lists of ephemerals.

    fn insert(&mut self, path: String, node: Node) {
        self.journal(&path);
        self.index(&path, &node, true);
        self.nodes.insert(path, node);
    }

    fn remove(&mut self, path: &str) {
        self.journal(path);
        let node = self.nodes.remove(path).expect("removed nodes exist");
        self.index(path, &node, false);
    }

    /// A node to change in place: not its ephemeral owner.
    fn node_mut(&mut self, path: &str) -> &mut Node {
        self.journal(path);
        self.nodes.get_mut(path).expect("changed nodes exist")
    }

    fn journal(&mut self, path: &str) {
        if let Some(journal) = &mut self.journal {
            journal.push((path.to_string(), self.nodes.get(path).cloned()));
        }
    }

    /// Adds an ephemeral node to its session's list, or removes it.
    fn index(&mut self, path: &str, node: &Node, add: bool) {
        let owner = node.stat.ephemeral_owner;
        if !is_ephemeral(owner) {
            return;
        }
        let session = self
            .sessions
            .get_mut(&owner)
            .expect("ephemerals have a session");
        match add {
            true => session.ephemerals.insert(path.to_string()),
            false => session.ephemerals.remove(path),
        };
    }

    /// Puts every node in the journal back as it was, the last write undone first.
    fn rollback(&mut self, journal: Vec<(String, Option<Node>)>) {
        for (path, before) in journal.into_iter().rev() {
            if let Some(now) = self.nodes.remove(&path) {
                self.index(&path, &now, false);
            }
            if let Some(before) = before {
                self.index(&path, &before, true);
                self.nodes.insert(path, before);
            }
        }
    }

    /// `WatchManager.triggerWatch`: each change fires the watches on its path, and removes them.
    fn fire(&mut self, changes: Vec<Change>) -> Vec<(SessionId, WatcherEvent)> {
        let mut events = Vec::new();
        for (type_, path) in changes {
            let mut sessions = BTreeSet::new();
            if type_ != event::NODE_CHILDREN_CHANGED {
                sessions.extend(self.watches.data.remove(&path).unwrap_or_default());
            }
            if type_ == event::NODE_CHILDREN_CHANGED || type_ == event::NODE_DELETED {
                sessions.extend(self.watches.child.remove(&path).unwrap_or_default());
            }
            events.extend(sessions.into_iter().map(|session| {
                let ev = WatcherEvent {
                    type_,
                    state: state::SYNC_CONNECTED,
                    path: path.clone(),
                };
                (session, ev)
            }));
        }
        events
    }

    /// A node's data and stat, and a data watch for `watcher` if the node exists.
    pub fn get_data(
        &mut self,
        path: &str,
        watcher: Option<SessionId>,
    ) -> Result<(Data, Stat), i32> {
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        let found = (node.data.clone(), node.stat());
        if let Some(session) = watcher {
            watch(&mut self.watches.data, path, session);
        }
        Ok(found)
    }

    /// A node's stat, and a data watch for `watcher` whether the node exists or not: on a
    /// missing node, it waits for `NodeCreated` (`DataTree.statNode`).
    pub fn exists(&mut self, path: &str, watcher: Option<SessionId>) -> Result<Stat, i32> {
        if path.contains('\0') {
            return Err(err::BAD_ARGUMENTS);
        }
        if let Some(session) = watcher {
            watch(&mut self.watches.data, path, session);
        }
        self.nodes.get(path).map(Node::stat).ok_or(err::NO_NODE)
    }

    /// A node's children (sorted) and stat, and a child watch for `watcher` if the node exists.
    pub fn get_children(
        &mut self,
        path: &str,
        watcher: Option<SessionId>,
    ) -> Result<(Vec<String>, Stat), i32> {
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        let found = (node.children.iter().cloned().collect(), node.stat());
        if let Some(session) = watcher {
            watch(&mut self.watches.child, path, session);
        }
        Ok(found)
    }

    /// `NO_NODE`, or `NO_AUTH` unless `ids` may do one of `perm`'s bits on the node: the check
    /// before a read (`FinalRequestProcessor`).
    pub fn permits(&self, path: &str, perm: i32, ids: &[Id]) -> Result<(), i32> {
        let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
        auth::check(&node.acl, perm, ids)
    }

    /// A node's ACL and stat, for `ids` with READ or ADMIN; without ADMIN the digests' hashes
    /// are hidden (`FinalRequestProcessor`'s getACL).
    pub fn get_acl(&self, path: &str, ids: &[Id]) -> Result<(Vec<Acl>, Stat), i32> {
        self.permits(path, perms::READ | perms::ADMIN, ids)?;
        let node = &self.nodes[path];
        let acl = match auth::check(&node.acl, perms::ADMIN, ids) {
            Ok(()) => node.acl.clone(),
            Err(_) => auth::redact(node.acl.clone()),
        };
        Ok((acl, node.stat()))
    }

    /// The number of a node's descendants (`DataTree.getAllChildrenNumber`).
    pub fn all_children_number(&self, path: &str) -> Result<i32, i32> {
        if !self.nodes.contains_key(path) {
            return Err(err::NO_NODE);
        }
        if path == "/" {
            return Ok(self.nodes.len() as i32 - 1);
        }
        let prefix = format!("{path}/");
        let under = self.nodes.range(prefix.clone()..);
        Ok(under.take_while(|(p, _)| p.starts_with(&prefix)).count() as i32)
    }

    /// Registers again the watches a client had before it reconnected, and returns the events
    /// it missed meanwhile instead of the watches they would have fired (`DataTree.setWatches`):
    /// changes after `relative_zxid`, the last zxid the client saw.
    pub fn set_watches(
        &mut self,
        session: SessionId,
        relative_zxid: Zxid,
        data: &[String],
        exist: &[String],
        child: &[String],
    ) -> Vec<WatcherEvent> {
        let mut due = Vec::new();
        let mut missed = |type_, path: &str| {
            due.push(WatcherEvent {
                type_,
                state: state::SYNC_CONNECTED,
                path: path.to_string(),
            })
        };
        for path in data {
            match self.nodes.get(path) {
                None => missed(event::NODE_DELETED, path),
                Some(n) if n.stat.mzxid > relative_zxid => missed(event::NODE_DATA_CHANGED, path),
                Some(_) => watch(&mut self.watches.data, path, session),
            }
        }
        for path in exist {
            match self.nodes.contains_key(path) {
                true => missed(event::NODE_CREATED, path),
                false => watch(&mut self.watches.data, path, session),
            }
        }
        for path in child {
            match self.nodes.get(path) {
                None => missed(event::NODE_DELETED, path),
                Some(n) if n.stat.pzxid > relative_zxid => {
                    missed(event::NODE_CHILDREN_CHANGED, path)
                }
                Some(_) => watch(&mut self.watches.child, path, session),
            }
        }
        due
    }

    /// Forgets a session's watches: its connection to this server is gone.
    pub fn remove_session_watches(&mut self, session: SessionId) {
        for table in [&mut self.watches.data, &mut self.watches.child] {
            table.retain(|_, sessions| {
                sessions.remove(&session);
                !sessions.is_empty()
            });
        }
    }

    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, &Session)> {
        self.sessions.iter().map(|(id, s)| (*id, s))
    }

    /// The paths of a session's ephemeral nodes, sorted.
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.sessions
            .get(&session)
            .map(|s| s.ephemerals.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A snapshot of the nodes and sessions (not this server's watches).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(std::sync::Arc::new(DataTree {
            nodes: self.nodes.clone(),
            sessions: self.sessions.clone(),
            watches: Watches::default(),
            journal: None,
        }))
    }

    /// The number of nodes, `/` and ZooKeeper's own included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A hash of the nodes and sessions (FNV-1a over their bincode): equal on replicas that
    /// applied the same txns.
    pub fn digest(&self) -> u64 {
        let bytes = bincode::serialize(&(&self.nodes, &self.sessions)).expect("a tree serializes");
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

/// The parent's path and the name, split at the last '/' as ZooKeeper does (`/a` is a child of
/// `/`). `None` without a '/', or with a NUL (`PrepRequestProcessor.validatePathForCreate`).
fn split(path: &str) -> Option<(&str, &str)> {
    if path.contains('\0') {
        return None;
    }
    let i = path.rfind('/')?;
    Some((if i == 0 { "/" } else { &path[..i] }, &path[i + 1..]))
}

/// ZooKeeper's own nodes, which no one deletes (`DataTree.isSpecialPath`).
fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

/// `PathUtils.validatePath`: absolute, no trailing '/', no empty, `.` or `..` names, and no
/// control, private-use or non-BMP characters (Java sees those as surrogates).
fn validate_path(path: &str) -> Result<(), i32> {
    let valid_name = |name: &str| {
        !matches!(name, "" | "." | "..")
            && !name.chars().any(|c| {
                matches!(c, '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}')
                    || c >= '\u{fff0}'
            })
    };
    match path.strip_prefix('/') {
        Some("") => Ok(()),
        Some(rest) if rest.split('/').all(valid_name) => Ok(()),
        _ => Err(err::BAD_ARGUMENTS),
    }
}

/// `PrepRequestProcessor.checkAndIncVersion`: the version after the write, if `expected` is
/// the current one or -1.
fn next_version(current: i32, expected: i32) -> Result<i32, i32> {
    match expected == -1 || expected == current {
        true => Ok(current.wrapping_add(1)),
        false => Err(err::BAD_VERSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALICE: SessionId = 0x1000;
    const BOB: SessionId = 0x2000;

    /// A tree, the zxid of its last txn, and the sessions `ALICE` and `BOB`.
    struct Zk {
        tree: DataTree,
        zxid: Zxid,
    }

    impl Zk {
        fn new() -> Zk {
            let mut zk = Zk {
                tree: DataTree::new(),
                zxid: 0,
            };
            for session in [ALICE, BOB] {
                let create = TxnOp::CreateSession {
                    timeout_ms: 10_000,
                    passwd: vec![1; 16],
                };
                zk.run(session, create).reply.unwrap();
            }
            zk
        }

        fn run(&mut self, session: SessionId, op: TxnOp) -> Applied {
            self.run_as(session, &[], op)
        }

        /// `op` from a connection with the ids `auth`.
        fn run_as(&mut self, session: SessionId, auth: &[Id], op: TxnOp) -> Applied {
            self.zxid += 1;
            let txn = Txn {
                session,
                time_ms: 1000 * self.zxid,
                auth: auth.to_vec(),
                op,
            };
            self.tree.apply(self.zxid, &txn)
        }

        /// The path created, or the error.
        fn create(&mut self, session: SessionId, path: &str, flags: i32) -> Result<String, i32> {
            match self.run(session, create(path, flags)).reply? {
                Reply::Create { path } => Ok(path),
                other => panic!("{other:?}"),
            }
        }

        fn stat(&mut self, path: &str) -> Stat {
            self.tree.exists(path, None).unwrap()
        }

        fn children(&mut self, path: &str) -> Vec<String> {
            self.tree.get_children(path, None).unwrap().0
        }
    }

    fn create(path: &str, flags: i32) -> TxnOp {
        TxnOp::Create(CreateRequest {
            path: path.into(),
            data: Some(b"x".to_vec()),
            acl: open_acl_unsafe(),
            flags,
        })
    }

    fn delete(path: &str, version: i32) -> TxnOp {
        TxnOp::Delete(DeleteRequest {
            path: path.into(),
            version,
        })
    }

    fn set_data(path: &str, data: &[u8], version: i32) -> TxnOp {
        TxnOp::SetData(SetDataRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        })
    }

    fn ev(type_: i32, path: &str) -> WatcherEvent {
        WatcherEvent {
            type_,
            state: state::SYNC_CONNECTED,
            path: path.into(),
        }
    }

    /// The invariants on `DataTree`'s fields.
    fn check_invariants(tree: &DataTree) {
        assert!(tree.nodes.contains_key("/"));
        for (path, node) in &tree.nodes {
            for child in &node.children {
                let child = if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                };
                assert!(tree.nodes.contains_key(&child), "{child}");
            }
            if let Some((parent, name)) = split(path).filter(|_| path != "/") {
                assert!(tree.nodes[parent].children.contains(name), "{path}");
            }
        }
        for (id, session) in &tree.sessions {
            let owned: BTreeSet<String> = tree
                .nodes
                .iter()
                .filter(|(_, n)| n.stat.ephemeral_owner == *id)
                .map(|(p, _)| p.clone())
                .collect();
            assert_eq!(session.ephemerals, owned);
        }
    }

    #[test]
    fn a_new_tree_is_a_new_zookeepers() {
        let mut zk = Zk::new();
        assert_eq!(zk.children("/"), ["zookeeper"]);
        assert_eq!(zk.children("/zookeeper"), ["config", "quota"]);
        assert_eq!(zk.stat("/").cversion, -1);
        assert_eq!(zk.stat("/zookeeper").cversion, -2);
        let (acl, stat) = zk.tree.get_acl("/zookeeper/config", &[]).unwrap();
        assert_eq!((acl[0].perms, stat.aversion), (perms::READ, -1));
        assert_eq!(zk.tree.all_children_number("/").unwrap(), 3);
        assert_eq!(zk.tree.node_count(), 4);
    }

    /// `DataTree.createNode`, `deleteNode` and `setData`.
    #[test]
    fn stats_change_as_in_zookeeper() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/a", 0).unwrap();
        let a = zk.stat("/a");
        let z = zk.zxid;
        assert_eq!((a.czxid, a.mzxid, a.pzxid), (z, z, z));
        assert_eq!((a.ctime, a.mtime), (1000 * z, 1000 * z));
        assert_eq!((a.version, a.cversion, a.data_length), (0, 0, 1));
        let root = zk.stat("/");
        assert_eq!((root.cversion, root.pzxid, root.num_children), (0, z, 2));

        let reply = zk.run(BOB, set_data("/a", b"hello", 0)).reply.unwrap();
        let Reply::Stat { stat } = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(stat, zk.stat("/a"));
        assert_eq!(
            (stat.version, stat.mzxid, stat.mtime),
            (1, zk.zxid, 1000 * zk.zxid)
        );
        assert_eq!((stat.czxid, stat.data_length), (z, 5));

        zk.create(ALICE, "/a/b", 1).unwrap();
        assert_eq!(zk.stat("/a/b").ephemeral_owner, ALICE);
        zk.run(ALICE, delete("/a/b", -1)).reply.unwrap();
        let a = zk.stat("/a");
        assert_eq!((a.cversion, a.pzxid, a.num_children), (2, zk.zxid, 0));
        assert_eq!(a.mzxid, z + 1);
    }

    /// `DataNode.copyStat`: null data has length 0, and stays null (kazoo's
    /// `test_create_null_data`, `test_set_null_data`).
    #[test]
    fn null_data_is_kept_apart_from_empty() {
        let mut zk = Zk::new();
        let null = |path: &str| {
            TxnOp::Create(CreateRequest {
                path: path.into(),
                data: None,
                acl: open_acl_unsafe(),
                flags: 0,
            })
        };
        zk.run(ALICE, null("/null")).reply.unwrap();
        zk.create(ALICE, "/x", 0).unwrap();
        zk.run(ALICE, set_data("/x", b"", -1)).reply.unwrap();
        let set_null = TxnOp::SetData(SetDataRequest {
            path: "/y".into(),
            data: None,
            version: -1,
        });
        zk.create(ALICE, "/y", 0).unwrap();
        zk.run(ALICE, set_null).reply.unwrap();
        let (data, stat) = zk.tree.get_data("/null", None).unwrap();
        assert_eq!((data, stat.data_length), (None, 0));
        assert_eq!(zk.tree.get_data("/x", None).unwrap().0, Some(vec![]));
        assert_eq!(zk.tree.get_data("/y", None).unwrap().0, None);
        assert_eq!(zk.tree.get_data("/", None).unwrap().0, Some(vec![]));
        let snapshot: DataTree =
            bincode::deserialize(&bincode::serialize(&zk.tree).unwrap()).unwrap();
        assert_eq!(snapshot, zk.tree);
        assert_ne!(
            snapshot.nodes["/null"].data, snapshot.nodes["/x"].data,
            "null and empty survive a snapshot apart"
        );
    }

    #[test]
    fn sequential_names_count_creates_not_children() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/q", 0).unwrap();
        assert_eq!(zk.create(ALICE, "/q/n-", 2).unwrap(), "/q/n-0000000000");
        assert_eq!(zk.create(BOB, "/q/n-", 3).unwrap(), "/q/n-0000000001");
        zk.run(ALICE, delete("/q/n-0000000000", -1)).reply.unwrap();
        assert_eq!(zk.create(ALICE, "/q/n-", 2).unwrap(), "/q/n-0000000002");
        // A sequential path may end in '/': the name is the number alone.
        assert_eq!(zk.create(ALICE, "/q/", 2).unwrap(), "/q/0000000003");
        assert_eq!(zk.stat("/q").cversion, 2 * 4 - 3);
    }

    #[test]
    fn writes_fail_with_zookeepers_codes() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/a", 0).unwrap();
        zk.create(ALICE, "/a/b", 0).unwrap();
        zk.create(ALICE, "/e", 1).unwrap();
        let bad_acl = |acl: Vec<Acl>| {
            TxnOp::Create(CreateRequest {
                path: "/acl".into(),
                acl,
                ..Default::default()
            })
        };
        let acl = |scheme: &str, id: &str| Acl {
            perms: perms::ALL,
            scheme: scheme.into(),
            id: id.into(),
        };
        let cases = [
            (ALICE, create("/missing/b", 0), err::NO_NODE),
            (ALICE, create("/a", 0), err::NODE_EXISTS),
            (ALICE, create("/", 0), err::NODE_EXISTS),
            (BOB, create("/e/child", 0), err::NO_CHILDREN_FOR_EPHEMERALS),
            (ALICE, create("a", 0), err::BAD_ARGUMENTS),
            (ALICE, create("/a/", 0), err::BAD_ARGUMENTS),
            // The parent is looked up before the path is checked: `/a/` is not there.
            (ALICE, create("/a//b", 0), err::NO_NODE),
            (ALICE, create("/a/..", 0), err::BAD_ARGUMENTS),
            (ALICE, create("/a/\u{1}", 0), err::BAD_ARGUMENTS),
            (ALICE, create("/a/\u{1F600}", 0), err::BAD_ARGUMENTS),
            (ALICE, create("/a/b\0", 0), err::BAD_ARGUMENTS),
            (ALICE, create("/c", 7), err::BAD_ARGUMENTS),
            (ALICE, create("/c", 5), err::UNIMPLEMENTED),
            (0x999, create("/c", 0), err::SESSION_EXPIRED),
            (0x999, create("/c", 1), err::SESSION_EXPIRED),
            (ALICE, bad_acl(vec![]), err::INVALID_ACL),
            (
                ALICE,
                bad_acl(vec![acl("world", "someone")]),
                err::INVALID_ACL,
            ),
            (ALICE, bad_acl(vec![acl("auth", "")]), err::INVALID_ACL),
            (
                ALICE,
                bad_acl(vec![acl("digest", "user")]),
                err::INVALID_ACL,
            ),
            (
                ALICE,
                bad_acl(vec![acl("ip", "10.0.0.256")]),
                err::INVALID_ACL,
            ),
            (
                ALICE,
                bad_acl(vec![acl("ip", "10.0.0.1/33")]),
                err::INVALID_ACL,
            ),
            (ALICE, delete("/a", -1), err::NOT_EMPTY),
            (ALICE, delete("/a/b", 3), err::BAD_VERSION),
            (ALICE, delete("/a/c", -1), err::NO_NODE),
            (ALICE, delete("/x/c", -1), err::NO_NODE),
            (ALICE, delete("/", -1), err::BAD_ARGUMENTS),
            (ALICE, delete("/zookeeper", -1), err::BAD_ARGUMENTS),
            (ALICE, delete("a", -1), err::BAD_ARGUMENTS),
            (0x999, delete("/a/b", -1), err::SESSION_EXPIRED),
            (ALICE, set_data("/a", b"", 1), err::BAD_VERSION),
            (ALICE, set_data("/nope", b"", -1), err::NO_NODE),
            (ALICE, set_data("/a/", b"", -1), err::BAD_ARGUMENTS),
        ];
        for (session, op, code) in cases {
            let before = zk.tree.clone();
            assert_eq!(zk.run(session, op.clone()).reply, Err(code), "{op:?}");
            assert_eq!(zk.tree, before);
        }
        let good = [
            acl("digest", "user:hash="),
            acl("ip", "10.0.0.0/8"),
            acl("world", "anyone"),
            acl("world", "anyone"),
        ];
        assert!(zk.run(ALICE, bad_acl(good.to_vec())).reply.is_ok());
        assert_eq!(zk.tree.get_acl("/acl", &[]).unwrap().0, good[..3]);
    }

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    fn create_with(path: &str, acl: Vec<Acl>) -> TxnOp {
        TxnOp::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl,
            flags: 0,
        })
    }

    fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> TxnOp {
        TxnOp::SetAcl(SetAclRequest {
            path: path.into(),
            acl,
            version,
        })
    }

    /// kazoo's `TestAuthentication` and `test_create_makepath_incompatible_acls`: nodes that
    /// only their creator's digest may use. Each write is refused in ZooKeeper's order of checks,
    /// and changes nothing.
    #[test]
    fn acls_guard_writes_in_zookeepers_order() {
        let mut zk = Zk::new();
        let alice = [id("ip", "127.0.0.1"), id("digest", "alice:h=")];
        let eve = [id("ip", "127.0.0.1"), id("digest", "eve:e=")];
        let root = [id("super", ""), id("digest", "super:s=")];
        let creator = || vec![acl(perms::ALL, "auth", "")];
        let alices = acl(perms::ALL, "digest", "alice:h=");
        zk.run_as(ALICE, &alice, create_with("/a", creator()))
            .reply
            .unwrap();
        zk.run_as(ALICE, &alice, create_with("/a/b", creator()))
            .reply
            .unwrap();
        assert_eq!(
            zk.tree.get_acl("/a", &alice).unwrap().0,
            vec![alices.clone()]
        );

        let check = |path: &str| {
            TxnOp::Check(CheckVersionRequest {
                path: path.into(),
                version: 7,
            })
        };
        let cases = [
            (&eve[..], create("/a/c", 0), err::NO_AUTH),
            // CREATE on the parent comes before NODE_EXISTS, the parent itself before it.
            (&eve, create("/a/b", 0), err::NO_AUTH),
            (&eve, create("/a/x/y", 0), err::NO_NODE),
            // An `auth:` entry with no digest to stand for, before the parent is looked at.
            (&eve[..1], create_with("/a/c", creator()), err::INVALID_ACL),
            // DELETE on the parent comes before the node is looked up.
            (&eve, delete("/a/b", -1), err::NO_AUTH),
            (&eve, delete("/a/nope", -1), err::NO_AUTH),
            // `/` lets anyone delete `/a`, but it has a child.
            (&eve, delete("/a", -1), err::NOT_EMPTY),
            // WRITE, READ and ADMIN come before the version.
            (&eve, set_data("/a", b"", 5), err::NO_AUTH),
            (&eve, check("/a"), err::NO_AUTH),
            (&eve, set_acl("/a", open_acl_unsafe(), 5), err::NO_AUTH),
        ];
        for (ids, op, code) in cases {
            let before = zk.tree.clone();
            assert_eq!(zk.run_as(BOB, ids, op.clone()).reply, Err(code), "{op:?}");
            assert_eq!(zk.tree, before);
        }
        // A multi fails at its first op eve may not do.
        let multi = TxnOp::Multi(vec![create("/m", 0), set_data("/a/b", b"", -1)]);
        let errors = [err::OK, err::NO_AUTH].map(|err| OpResult::Error { err });
        assert_eq!(
            zk.run_as(BOB, &eve, multi).reply,
            Ok(Reply::Multi(errors.to_vec()))
        );

        // Reads, at the server the client is connected to.
        assert_eq!(
            zk.tree.permits("/a/b", perms::READ, &eve),
            Err(err::NO_AUTH)
        );
        assert_eq!(
            zk.tree.permits("/a/nope", perms::READ, &eve),
            Err(err::NO_NODE)
        );
        assert_eq!(zk.tree.permits("/a/b", perms::READ, &alice), Ok(()));
        assert_eq!(zk.tree.permits("/a/b", perms::READ, &root), Ok(()));
        assert_eq!(zk.tree.get_acl("/a", &eve), Err(err::NO_AUTH));

        // alice, and the super user, may do it all; getACL hides the hash from readers
        // without ADMIN.
        let readable = vec![acl(perms::READ, "world", "anyone"), alices.clone()];
        zk.run_as(ALICE, &alice, set_acl("/a/b", readable.clone(), 0))
            .reply
            .unwrap();
        let (shown, stat) = zk.tree.get_acl("/a/b", &eve).unwrap();
        assert_eq!(stat.aversion, 1);
        assert_eq!(shown[1], acl(perms::ALL, "digest", "alice:x"));
        assert_eq!(zk.tree.get_acl("/a/b", &alice).unwrap().0, readable);
        assert_eq!(zk.tree.get_acl("/a/b", &root).unwrap().0, readable);
        zk.run_as(BOB, &root, set_data("/a/b", b"su", -1))
            .reply
            .unwrap();
        zk.run_as(BOB, &alice, create("/a/c", 0)).reply.unwrap();
        zk.run_as(BOB, &root, delete("/a/c", -1)).reply.unwrap();
        zk.run_as(ALICE, &alice, delete("/a/b", -1)).reply.unwrap();
        zk.run_as(ALICE, &eve, delete("/a", -1)).reply.unwrap();
        // ZooKeeper's own config node is read-only.
        assert_eq!(
            zk.run(ALICE, create("/zookeeper/config/x", 0)).reply,
            Err(err::NO_AUTH)
        );
        check_invariants(&zk.tree);
    }

    #[test]
    fn a_failed_multi_changes_nothing_and_says_which_op_failed() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/e", 1).unwrap();
        zk.tree.get_children("/", Some(BOB)).unwrap();
        let before = zk.tree.clone();
        let multi = TxnOp::Multi(vec![
            create("/m", 0),
            delete("/e", -1),
            create("/m/c", 2),
            set_data("/nope", b"", -1),
            create("/n", 0),
        ]);
        let applied = zk.run(ALICE, multi);
        let codes = [
            err::OK,
            err::OK,
            err::OK,
            err::NO_NODE,
            err::RUNTIME_INCONSISTENCY,
        ];
        let errors = codes.map(|err| OpResult::Error { err }).to_vec();
        assert_eq!(applied.reply, Ok(Reply::Multi(errors)));
        assert!(applied.events.is_empty());
        assert_eq!(zk.tree, before);
        assert_eq!(zk.tree.ephemerals(ALICE), ["/e"]);
        check_invariants(&zk.tree);
        let children_changed = (BOB, ev(event::NODE_CHILDREN_CHANGED, "/"));
        assert_eq!(
            zk.run(ALICE, create("/later", 0)).events,
            [children_changed]
        );
    }

    #[test]
    fn a_multi_applies_each_op_to_what_the_ones_before_left() {
        let mut zk = Zk::new();
        zk.tree.exists("/m", Some(BOB)).unwrap_err();
        let multi = TxnOp::Multi(vec![
            create("/m", 0),
            create("/m/s-", 2),
            create("/m/s-", 2),
            TxnOp::Check(CheckVersionRequest {
                path: "/m".into(),
                version: 0,
            }),
            set_data("/m", b"v", 0),
            delete("/m/s-0000000000", -1),
            TxnOp::Create2(CreateRequest {
                path: "/m/t".into(),
                acl: open_acl_unsafe(),
                ..Default::default()
            }),
        ]);
        let applied = zk.run(ALICE, multi);
        let Ok(Reply::Multi(results)) = applied.reply else {
            panic!("{applied:?}")
        };
        assert_eq!(
            results[..4],
            [
                OpResult::Create { path: "/m".into() },
                OpResult::Create {
                    path: "/m/s-0000000000".into()
                },
                OpResult::Create {
                    path: "/m/s-0000000001".into()
                },
                OpResult::Check,
            ]
        );
        assert_eq!(
            results[4],
            OpResult::SetData {
                stat: Stat {
                    num_children: 2,
                    cversion: 2 * 2 - 2,
                    ..zk.stat("/m")
                }
            }
        );
        assert_eq!(results[5], OpResult::Delete);
        assert!(
            matches!(&results[6], OpResult::Create2 { path, stat } if path == "/m/t" && stat.czxid == zk.zxid)
        );
        assert_eq!(applied.events, [(BOB, ev(event::NODE_CREATED, "/m"))]);
        assert_eq!(zk.children("/m"), ["s-0000000001", "t"]);
        assert_eq!(
            zk.run(ALICE, TxnOp::Multi(vec![TxnOp::Sync { path: "/".into() }]))
                .reply,
            Err(err::MARSHALLING_ERROR)
        );
    }

    #[test]
    fn watches_fire_once() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/a", 0).unwrap();
        zk.tree.get_data("/a", Some(BOB)).unwrap();
        zk.tree.get_data("/a", Some(BOB)).unwrap();
        zk.tree.exists("/a", Some(ALICE)).unwrap();
        let applied = zk.run(ALICE, set_data("/a", b"1", -1));
        let changed = ev(event::NODE_DATA_CHANGED, "/a");
        assert_eq!(applied.events, [(ALICE, changed.clone()), (BOB, changed)]);
        assert!(zk.run(ALICE, set_data("/a", b"2", -1)).events.is_empty());
    }

    #[test]
    fn exists_watches_a_missing_node_and_get_data_does_not() {
        let mut zk = Zk::new();
        assert_eq!(zk.tree.exists("/a", Some(BOB)), Err(err::NO_NODE));
        assert_eq!(zk.tree.get_data("/a", Some(ALICE)), Err(err::NO_NODE));
        assert_eq!(zk.tree.get_children("/a", Some(ALICE)), Err(err::NO_NODE));
        zk.tree.get_children("/", Some(ALICE)).unwrap();
        let applied = zk.run(ALICE, create("/a", 0));
        assert_eq!(
            applied.events,
            [
                (BOB, ev(event::NODE_CREATED, "/a")),
                (ALICE, ev(event::NODE_CHILDREN_CHANGED, "/")),
            ]
        );
    }

    #[test]
    fn a_delete_is_heard_once_by_each_watcher() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/a", 0).unwrap();
        zk.tree.get_data("/a", Some(BOB)).unwrap();
        zk.tree.get_children("/a", Some(BOB)).unwrap();
        zk.tree.get_children("/a", Some(ALICE)).unwrap();
        zk.tree.get_children("/", Some(BOB)).unwrap();
        let applied = zk.run(ALICE, delete("/a", 0));
        assert_eq!(
            applied.events,
            [
                (ALICE, ev(event::NODE_DELETED, "/a")),
                (BOB, ev(event::NODE_DELETED, "/a")),
                (BOB, ev(event::NODE_CHILDREN_CHANGED, "/")),
            ]
        );
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals_and_fires_their_watches() {
        let mut zk = Zk::new();
        zk.create(ALICE, "/lock", 0).unwrap();
        let first = zk.create(ALICE, "/lock/n-", 3).unwrap();
        let second = zk.create(BOB, "/lock/n-", 3).unwrap();
        zk.create(ALICE, "/e", 1).unwrap();
        assert_eq!(zk.tree.ephemerals(ALICE), ["/e", first.as_str()]);
        zk.tree.exists(&first, Some(BOB)).unwrap();
        zk.tree.get_children("/lock", Some(ALICE)).unwrap();

        let applied = zk.run(ALICE, TxnOp::CloseSession);
        assert_eq!(applied.reply, Ok(Reply::Empty));
        assert_eq!(applied.events, [(BOB, ev(event::NODE_DELETED, &first))]);
        assert_eq!(zk.children("/lock"), [&second[6..]]);
        assert!(zk.tree.exists("/e", None).is_err());
        assert!(zk.tree.session(ALICE).is_none());
        assert!(zk.tree.ephemerals(ALICE).is_empty());
        assert_eq!(zk.create(ALICE, "/f", 1), Err(err::SESSION_EXPIRED));
        check_invariants(&zk.tree);
    }

    #[test]
    fn set_watches_reports_what_a_client_missed() {
        let mut zk = Zk::new();
        for path in ["/same", "/changed", "/gone", "/parent"] {
            zk.create(ALICE, path, 0).unwrap();
        }
        let seen = zk.zxid;
        zk.run(ALICE, set_data("/changed", b"new", -1));
        zk.run(ALICE, delete("/gone", -1));
        zk.create(ALICE, "/parent/kid", 0).unwrap();
        zk.create(ALICE, "/born", 0).unwrap();
        let paths = |ps: &[&str]| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let due = zk.tree.set_watches(
            BOB,
            seen,
            &paths(&["/same", "/changed", "/gone"]),
            &paths(&["/born", "/unborn"]),
            &paths(&["/same", "/parent", "/gone"]),
        );
        assert_eq!(
            due,
            [
                ev(event::NODE_DATA_CHANGED, "/changed"),
                ev(event::NODE_DELETED, "/gone"),
                ev(event::NODE_CREATED, "/born"),
                ev(event::NODE_CHILDREN_CHANGED, "/parent"),
                ev(event::NODE_DELETED, "/gone"),
            ]
        );
        // What was not missed is watched again.
        assert_eq!(
            zk.run(ALICE, set_data("/same", b"", -1)).events,
            [(BOB, ev(event::NODE_DATA_CHANGED, "/same"))]
        );
        assert_eq!(
            zk.run(ALICE, create("/unborn", 0)).events,
            [(BOB, ev(event::NODE_CREATED, "/unborn"))]
        );
        zk.tree.remove_session_watches(BOB);
        assert!(zk.run(ALICE, create("/same/kid", 0)).events.is_empty());
    }

    #[test]
    fn requests_become_txns() {
        let container = CreateRequest {
            path: "/c".into(),
            acl: open_acl_unsafe(),
            ..Default::default()
        };
        let txn = TxnOp::from_request(&Request::CreateContainer(container.clone())).unwrap();
        let mut zk = Zk::new();
        let Ok(Reply::Create2 { stat, .. }) = zk.run(ALICE, txn).reply else {
            panic!()
        };
        assert_eq!(stat.ephemeral_owner, 0);
        zk.create(BOB, "/c/kid", 1).unwrap();
        assert_eq!(
            TxnOp::from_request(&Request::GetData {
                path: "/c".into(),
                watch: false
            }),
            None
        );
        let multi = Request::Multi(vec![Request::Create(container.clone())]);
        assert_eq!(
            TxnOp::from_request(&multi),
            Some(TxnOp::Multi(vec![TxnOp::Create(container)]))
        );
    }

    fn any_op() -> impl Strategy<Value = TxnOp> {
        let path = prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z"]);
        let single = prop_oneof![
            (path.clone(), 0..4i32).prop_map(|(p, flags)| create(p, flags)),
            (path.clone(), -1..2i32).prop_map(|(p, v)| delete(p, v)),
            (path.clone(), -1..2i32).prop_map(|(p, v)| set_data(p, b"d", v)),
            (path, -1..2i32).prop_map(|(p, version)| TxnOp::Check(CheckVersionRequest {
                path: p.into(),
                version
            })),
        ];
        prop_oneof![
            4 => single.clone(),
            1 => prop::collection::vec(single, 1..4).prop_map(TxnOp::Multi),
            1 => Just(TxnOp::CloseSession),
            1 => Just(TxnOp::CreateSession { timeout_ms: 1, passwd: vec![] }),
        ]
    }

    proptest! {
        /// Replicas that apply the same txns agree, through a snapshot too; a write that fails
        /// changes nothing; the invariants hold after every txn.
        #[test]
        fn replicas_agree_and_failures_change_nothing(
            txns in prop::collection::vec((prop::sample::select(vec![ALICE, BOB]), any_op()), 0..40)
        ) {
            let mut zk = Zk::new();
            let mut replica = DataTree::new();
            let mut zxid = 0;
            for session in [ALICE, BOB] {
                zxid += 1;
                let txn = Txn { session, time_ms: 0, auth: vec![], op: TxnOp::CreateSession { timeout_ms: 10_000, passwd: vec![1; 16] } };
                replica.apply(zxid, &txn);
            }
            prop_assert_eq!(&replica, &zk.tree);
            for (i, (session, op)) in txns.into_iter().enumerate() {
                let before = zk.tree.clone();
                let applied = zk.run(session, op.clone());
                let txn = Txn { session, time_ms: 1000 * zk.zxid, auth: vec![], op };
                prop_assert_eq!(&replica.apply(zk.zxid, &txn).reply, &applied.reply);
                let failed = applied.reply.is_err()
                    || matches!(&applied.reply, Ok(Reply::Multi(r)) if r.iter().any(|r| matches!(r, OpResult::Error { .. })));
                if failed {
                    prop_assert_eq!(&zk.tree, &before);
                }
                check_invariants(&zk.tree);
                if i % 7 == 0 {
                    replica = bincode::deserialize(&bincode::serialize(&replica).unwrap()).unwrap();
                }
                prop_assert_eq!(replica.digest(), zk.tree.digest());
                prop_assert_eq!(&replica, &zk.tree);
            }
        }
    }
}
