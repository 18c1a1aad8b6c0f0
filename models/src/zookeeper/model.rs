//! The checked model: a leader and a follower (Zab abstracted as the leader's one log, sent in
//! order to the follower), a standby that leads the next epoch, the lock recipe's clients and
//! the register clients, in one `ActorModel`. Links are FIFO. The leader may expire a lock
//! client's session at any time, at most `--expiries` times; it may be deposed once
//! (`--leader-changes`); register clients may move, at most `--moves` times in all.
//!
//! The two workloads touch disjoint znodes and are explored side by side, not interleaved:
//! the first step of a run belongs to one of them (a lock client's request or an expiry, or a
//! register client's step or the leader change), and the run keeps to it. Interleaving them
//! would only renumber zxids, which no property of the other workload reads, at the price of
//! the product of the two state spaces.

use std::collections::BTreeMap;

use properties::linearizability::{
    check, History, Operation, Verdict, Znode, ZnodeInput, ZnodeOp, ZnodeOutput,
};
use stateright::actor::{ActorModel, ActorModelAction, Envelope, Id, Network};
use stateright::Property;

use super::actor::{
    Client, ClientState, Connection, Data, Op, Recipe, RegisterState, Ret, Role, ServerState, Txn,
    Version, Xid, ZkActor, ZkBug, ZkMsg, ZkState, ZkTimer,
};
use crate::harness::{HAction, HState, Harness, Harnessed};

/// The leader's id; the follower is 1, the standby 2, the clients follow.
pub const LEADER: usize = 0;
pub const FOLLOWER: usize = 1;
pub const STANDBY: usize = 2;
pub const SERVERS: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZkCfg {
    /// Clients running the lock recipe.
    pub clients: u8,
    pub expiries: u8,
    /// Register clients (`setData`, `getData`, `sync` on `/reg`).
    pub registers: u8,
    /// Sessions moved to another server, in all.
    pub moves: u8,
    /// Whether the leader may be deposed (0 or 1).
    pub leader_changes: u8,
    pub bug: Option<ZkBug>,
}

impl Default for ZkCfg {
    fn default() -> Self {
        ZkCfg {
            clients: 3,
            expiries: 1,
            registers: 2,
            moves: 1,
            leader_changes: 1,
            bug: None,
        }
    }
}

/// Register client `r`'s first server and program. `r0`, on the follower: `sync`, then
/// `getData` with a watch, then a conditional `setData`, then `getData`. `r1`, on the leader:
/// a conditional `setData` with the same expected version, then `getData`.
pub fn register_script(r: u8) -> (usize, Vec<Op>) {
    match r {
        0 => (
            FOLLOWER,
            vec![
                Op::Sync,
                Op::GetData { watch: true },
                Op::SetData {
                    data: 1,
                    version: 0,
                },
                Op::GetData { watch: false },
            ],
        ),
        _ => (
            LEADER,
            vec![
                Op::SetData {
                    data: 2,
                    version: 0,
                },
                Op::GetData { watch: false },
            ],
        ),
    }
}

impl ZkCfg {
    pub fn into_model(self) -> ZkModel {
        let servers: Vec<Id> = (0..SERVERS).map(Id::from).collect();
        let epoch: Vec<Id> = vec![Id::from(LEADER), Id::from(FOLLOWER)];
        let home = |i: usize| -> Vec<Client> {
            let lock = (0..self.clients).filter(|c| usize::from(*c) % 2 == i);
            let regs = (0..self.registers)
                .filter(|r| register_script(*r).0 == i)
                .map(|r| self.clients + r);
            lock.chain(regs).collect()
        };
        let mut actors: Vec<ZkActor> = (0..SERVERS)
            .map(|i| ZkActor::Server {
                leader: Id::from(LEADER),
                standby: Id::from(STANDBY),
                servers: epoch.clone(),
                first_client: SERVERS,
                clients: self.clients,
                home: home(i),
                leader_change: self.registers > 0 && self.leader_changes > 0,
                bug: self.bug,
            })
            .collect();
        for c in 0..usize::from(self.clients) {
            actors.push(ZkActor::Client {
                server: epoch[c % 2],
                bug: self.bug,
            });
        }
        for r in 0..self.registers {
            let (server, script) = register_script(r);
            actors.push(ZkActor::Register {
                server: servers[server],
                // Only `r1` moves: to the follower (whose replica may lag what it saw at the
                // leader) or to the next epoch's leader.
                servers: if r == 1 { servers.clone() } else { Vec::new() },
                script,
            });
        }
        let inner = ActorModel::new(self, ZkHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_out(record_out)
            .record_msg_in(record_in);
        Harness::new(inner, 0)
    }
}

/// Which clients a run exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    Lock,
    Registers,
}

/// An event of the `setData` history, in real-time order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WriteEvent {
    Call {
        client: Client,
        xid: Xid,
        data: Data,
        version: Version,
    },
    /// The new version, or `None` for `BadVersion`.
    Return {
        client: Client,
        xid: Xid,
        version: Option<Version>,
    },
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZkHistory {
    pub expiries: u8,
    /// The workload of this run, once its first step is taken.
    pub workload: Option<Workload>,
    /// Sessions moved.
    pub moves: u8,
    /// Every `setData` called and returned.
    pub writes: Vec<WriteEvent>,
    /// The `setData` history is not linearizable against [`Znode`].
    pub writes_not_linearizable: bool,
    /// The highest version a successful `setData` returned to its client.
    pub acked_version: Version,
    /// Each client's last `sync`, with the highest version acknowledged when it was issued.
    pub syncs: BTreeMap<Client, Version>,
    /// A read after a `sync` returned a version below one acknowledged before the `sync`.
    pub stale_read: bool,
    /// A lock node's deletion fired exactly one watch while another waiter's stayed (§2.4).
    pub lone_wake: bool,
    /// One change to the lock's children fired the watches of two waiters at one server.
    pub herd: bool,
}

/// The register client that `id` is, as its session number, if it is one.
fn register_of(cfg: &ZkCfg, id: Id) -> Option<Client> {
    let first = SERVERS + usize::from(cfg.clients);
    let r = usize::from(id).checked_sub(first)?;
    (r < usize::from(cfg.registers)).then(|| cfg.clients + r as u8)
}

/// A register client's `setData` is the call of a write; its `sync` sets the bar its later
/// reads are held to.
fn record_out(cfg: &ZkCfg, h: &ZkHistory, env: Envelope<&ZkMsg>) -> Option<ZkHistory> {
    let client = register_of(cfg, env.src)?;
    match env.msg {
        ZkMsg::Request {
            xid,
            op: Op::SetData { data, version },
        } => {
            let mut h = h.clone();
            h.writes.push(WriteEvent::Call {
                client,
                xid: *xid,
                data: *data,
                version: *version,
            });
            Some(h)
        }
        ZkMsg::Request { op: Op::Sync, .. } => {
            let mut h = h.clone();
            h.syncs.insert(client, h.acked_version);
            Some(h)
        }
        _ => None,
    }
}

/// A `setData`'s reply is its return; a read's reply is held to the client's last `sync`.
fn record_in(cfg: &ZkCfg, h: &ZkHistory, env: Envelope<&ZkMsg>) -> Option<ZkHistory> {
    let client = register_of(cfg, env.dst)?;
    let ZkMsg::Reply { xid, ret, .. } = env.msg else {
        return None;
    };
    match ret {
        Ret::Stat(_) | Ret::BadVersion => {
            let open = h.writes.iter().any(
                |e| matches!(e, WriteEvent::Call { client: c, xid: x, .. } if *c == client && x == xid),
            ) && !h.writes.iter().any(
                |e| matches!(e, WriteEvent::Return { client: c, xid: x, .. } if *c == client && x == xid),
            );
            if !open {
                return None;
            }
            let mut h = h.clone();
            let version = ret.version();
            h.writes.push(WriteEvent::Return {
                client,
                xid: *xid,
                version,
            });
            if let Some(v) = version {
                h.acked_version = h.acked_version.max(v);
            }
            if !h.writes_not_linearizable && !writes_linearizable(&h.writes) {
                h.writes_not_linearizable = true;
            }
            Some(h)
        }
        Ret::Data { version, .. } => {
            let floor = *h.syncs.get(&client)?;
            (*version < floor && !h.stale_read).then(|| {
                let mut h = h.clone();
                h.stale_read = true;
                h
            })
        }
        _ => None,
    }
}

/// The `setData` history as [`properties::linearizability`] takes it: each call is its own
/// process (a client pipelines), timed by its position in the history.
pub fn write_history(writes: &[WriteEvent]) -> History<ZnodeInput, ZnodeOutput> {
    let mut ops = Vec::new();
    for (i, e) in writes.iter().enumerate() {
        let WriteEvent::Call {
            client,
            xid,
            data,
            version,
        } = e
        else {
            continue;
        };
        let ret = writes.iter().enumerate().find_map(|(j, e)| match e {
            WriteEvent::Return {
                client: c,
                xid: x,
                version: v,
            } if c == client && x == xid => Some((j, *v)),
            _ => None,
        });
        ops.push(Operation {
            client: u64::from(*client) << 8 | u64::from(*xid),
            call: i as u64,
            ret: ret.map_or(u64::MAX, |(j, _)| j as u64),
            input: ZnodeInput {
                znode: 0,
                op: ZnodeOp::SetData {
                    data: i64::from(*data),
                    version: *version,
                },
            },
            output: ret.map(|(_, v)| ZnodeOutput::SetData(v)),
        });
    }
    History::new(ops)
}

/// §2.3 Linearizable writes: the `setData` history against a single znode.
pub fn writes_linearizable(writes: &[WriteEvent]) -> bool {
    check(&Znode, &write_history(writes), None) == Verdict::Linearizable
}

pub type ZkModelState = HState<Zk>;
pub type ZkAction = HAction<Zk>;
pub type ZkModel = Harness<Zk>;

pub struct Zk;

fn server(s: &ZkModelState, i: usize) -> &ServerState {
    match &*s.actor_states[i] {
        ZkState::Server(x) => x,
        _ => unreachable!("actors 0, 1 and 2 are servers"),
    }
}

/// The lock clients, in order.
pub fn clients(s: &ZkModelState) -> impl Iterator<Item = &ClientState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        ZkState::Client(c) => Some(c),
        _ => None,
    })
}

/// The register clients, in order.
pub fn registers(s: &ZkModelState) -> impl Iterator<Item = &RegisterState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        ZkState::Register(r) => Some(r),
        _ => None,
    })
}

fn closed(s: &ZkModelState, c: u8) -> bool {
    server(s, LEADER)
        .log
        .contains(&Txn::CloseSession { client: c })
}

/// Clients that believe they hold the lock while their lock node is alive in the log's order
/// (a holder whose session expired, or whose delete is ordered, holds nothing).
pub fn holders(s: &ZkModelState) -> Vec<usize> {
    // The tree as the whole log leaves it: the writes' order is the log's.
    let mut tree = BTreeMap::new();
    for t in &server(s, LEADER).log {
        match t {
            Txn::Create { client, seq } => {
                tree.insert(*seq, *client);
            }
            Txn::Delete { seq } => {
                tree.remove(seq);
            }
            Txn::CloseSession { client } => tree.retain(|_, c| c != client),
            Txn::SetData { .. } | Txn::Error => {}
        }
    }
    clients(s)
        .enumerate()
        .filter(|(i, c)| {
            matches!(c.recipe, Recipe::Holding | Recipe::Releasing)
                && !closed(s, *i as u8)
                && c.node.is_some_and(|n| tree.contains_key(&n))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The sequence numbers the leader gave, in log order.
pub fn sequence(s: &ZkModelState) -> Vec<u8> {
    server(s, LEADER)
        .log
        .iter()
        .filter_map(|t| match t {
            Txn::Create { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// A server with an ephemeral node whose session it has closed: (server, node, client).
pub fn orphan(s: &ZkModelState) -> Option<(usize, u8, u8)> {
    (0..SERVERS).find_map(|i| {
        let r = &server(s, i).replica;
        r.children
            .iter()
            .find(|(_, c)| r.closed.contains(c))
            .map(|(n, c)| (i, *n, *c))
    })
}

/// A register client refused by a serving server that has not seen its last zxid.
fn refused_ahead(s: &ZkModelState) -> bool {
    registers(s).any(|r| {
        let sv = server(s, usize::from(r.server));
        r.connection == Connection::Disconnected
            && sv.role != Role::Looking
            && r.last_zxid > sv.replica.applied
    })
}

/// The workload an action belongs to (`None`: either).
pub fn workload(action: &ZkAction) -> Option<Workload> {
    let lock_op = |op: &Op| {
        matches!(
            op,
            Op::Create | Op::GetChildren { .. } | Op::Exists(_) | Op::Delete(_)
        )
    };
    let of = |lock: bool| {
        Some(if lock {
            Workload::Lock
        } else {
            Workload::Registers
        })
    };
    match action {
        ActorModelAction::Deliver { msg, .. } => of(match msg {
            ZkMsg::Request { op, .. } | ZkMsg::Forward { op, .. } => lock_op(op),
            ZkMsg::Commit { txn, .. } => matches!(
                txn,
                Txn::Create { .. } | Txn::Delete { .. } | Txn::CloseSession { .. }
            ),
            ZkMsg::Reply { ret, .. } => matches!(
                ret,
                Ret::Created(_) | Ret::Children(_) | Ret::Exists(_) | Ret::Deleted
            ),
            ZkMsg::NodeDeleted(_) | ZkMsg::NodeChildrenChanged | ZkMsg::Expired => true,
            ZkMsg::Sync { .. }
            | ZkMsg::NodeDataChanged
            | ZkMsg::Connect { .. }
            | ZkMsg::Connected
            | ZkMsg::Refused
            | ZkMsg::NewLeader { .. } => false,
        }),
        ActorModelAction::Timeout(_, t) => of(matches!(t, ZkTimer::Expire(_) | ZkTimer::Release)),
        _ => None,
    }
}

/// What the history variables need to know about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    expiry: bool,
    connected: bool,
    workload: Option<Workload>,
}

/// The lock watches at a server of clients whose session `now` has not closed: (client,
/// node), the child watches as node `u8::MAX`.
fn lock_watches(s: &ServerState, now: &ServerState) -> Vec<(Client, u8)> {
    let r = &s.replica;
    r.watches
        .iter()
        .copied()
        .chain(r.child_watches.iter().map(|c| (*c, u8::MAX)))
        .filter(|(c, _)| !now.replica.closed.contains(c))
        .collect()
}

impl Harnessed for Zk {
    type Actor = ZkActor;
    type Cfg = ZkCfg;
    type History = ZkHistory;
    type Step = Step;

    fn step_of(action: &ZkAction) -> Step {
        Step {
            expiry: matches!(action, ActorModelAction::Timeout(_, ZkTimer::Expire(_))),
            connected: matches!(
                action,
                ActorModelAction::Deliver {
                    msg: ZkMsg::Connected,
                    ..
                }
            ),
            workload: workload(action),
        }
    }

    fn crashes(_: &ZkHistory) -> usize {
        0
    }

    fn count_crash(_: &mut ZkHistory) {}

    fn may_crash(_: &ZkModel, _: &ZkModelState, _: usize) -> bool {
        false
    }

    fn allow(m: &ZkModel, s: &ZkModelState, action: &ZkAction) -> bool {
        if let (Some(run), Some(w)) = (s.history.workload, workload(action)) {
            if run != w {
                return false;
            }
        }
        match action {
            ActorModelAction::Timeout(_, ZkTimer::Expire(c)) => {
                s.history.expiries < m.cfg().expiries && !closed(s, *c)
            }
            ActorModelAction::Timeout(_, ZkTimer::Move(_)) => s.history.moves < m.cfg().moves,
            _ => true,
        }
    }

    fn record(_: &ZkModel, prev: Option<(&ZkModelState, Step)>, next: &mut ZkModelState) {
        let Some((prev, step)) = prev else { return };
        if step.expiry {
            next.history.expiries += 1;
        }
        if step.connected {
            next.history.moves += 1;
        }
        if next.history.workload.is_none() {
            next.history.workload = step.workload;
        }
        // §2.4 without herd effect: a deletion wakes the one waiter watching the node.
        if step.workload == Some(Workload::Lock) {
            for i in 0..SERVERS {
                let (a, b) = (server(prev, i), server(next, i));
                if b.replica.applied == a.replica.applied {
                    continue;
                }
                // (A closed session's watches go without firing.)
                let after = lock_watches(b, b);
                let fired = lock_watches(a, b)
                    .iter()
                    .filter(|w| !after.contains(w))
                    .count();
                if fired == 1 && !after.is_empty() {
                    next.history.lone_wake = true;
                }
                if fired > 1 {
                    next.history.herd = true;
                }
            }
        }
    }

    fn properties(m: &ZkModel) -> Vec<Property<ZkModel>> {
        let mut ps = Vec::new();
        if m.cfg().clients > 0 {
            ps.extend([
                Property::always(
                    "the lock recipe has at most one holder (§2.4)",
                    |_, s: &ZkModelState| holders(s).len() <= 1,
                ),
                Property::always(
                    "sequential suffixes are unique and increasing (§2.1)",
                    |_, s: &ZkModelState| sequence(s).windows(2).all(|w| w[0] < w[1]),
                ),
                Property::always(
                    "ephemerals die with their session (§2.1)",
                    |_, s: &ZkModelState| orphan(s).is_none(),
                ),
                Property::always(
                    "a change to the lock's children wakes at most one waiter (§2.4)",
                    |_, s: &ZkModelState| !s.history.herd,
                ),
                Property::sometimes(
                    "every client takes the lock in turn",
                    |_, s: &ZkModelState| clients(s).all(|c| c.recipe == Recipe::Done),
                ),
                Property::sometimes(
                    "a waiter whose predecessor's session expired waits again on the node below (§2.4)",
                    |_, s: &ZkModelState| clients(s).any(|c| c.rewaited),
                ),
                Property::sometimes(
                    "a session expires and its ephemeral node is removed",
                    |_, s: &ZkModelState| {
                        (0..SERVERS).any(|i| {
                            let r = &server(s, i).replica;
                            !r.closed.is_empty() && r.applied > 0
                        }) && clients(s).any(|c| c.recipe == Recipe::Dead && c.node.is_some())
                    },
                ),
                Property::sometimes(
                    "a waiter is woken only by its predecessor (§2.4: no herd effect)",
                    |_, s: &ZkModelState| s.history.lone_wake,
                ),
            ]);
        }
        if m.cfg().registers > 0 {
            ps.extend([
                Property::always("writes are linearizable (§2.3)", |_, s: &ZkModelState| {
                    !s.history.writes_not_linearizable
                }),
                Property::always(
                    "each client's operations take effect in its FIFO order (§2.3)",
                    |_, s: &ZkModelState| registers(s).all(|r| !r.out_of_order),
                ),
                Property::always(
                    "a watch event reaches a client before it can read the new data (§2.3)",
                    |_, s: &ZkModelState| registers(s).all(|r| !r.data_before_event),
                ),
                Property::sometimes(
                    "of two setData with one expected version, one gets BadVersion (§2.2)",
                    |_, s: &ZkModelState| {
                        let returned = |ok: bool| {
                            s.history.writes.iter().any(|e| {
                                matches!(e, WriteEvent::Return { version, .. } if version.is_some() == ok)
                            })
                        };
                        returned(true) && returned(false)
                    },
                ),
                Property::sometimes(
                    "a read pipelined behind its client's write sees it (§2.3)",
                    |_, s: &ZkModelState| registers(s).any(|r| r.read_saw_own_write),
                ),
                Property::sometimes(
                    "a server refuses a client that has seen a later zxid (§2.3)",
                    |_, s: &ZkModelState| refused_ahead(s),
                ),
                Property::sometimes(
                    "a client moves to another server and is served there",
                    |_, s: &ZkModelState| registers(s).any(|r| r.served_after_move),
                ),
                Property::sometimes(
                    "a watch event reaches its client, which then reads the new data (§2.3)",
                    |_, s: &ZkModelState| registers(s).any(|r| r.notified_then_read),
                ),
                Property::sometimes(
                    "a sync followed by a read is stale across a leader change (§2.3)",
                    |_, s: &ZkModelState| s.history.stale_read && server(s, LEADER).deposed,
                ),
            ]);
        }
        ps
    }
}

pub fn actor_names(m: &ZkModel) -> Vec<String> {
    let mut names = vec![
        "leader".to_string(),
        "follower".to_string(),
        "standby".to_string(),
    ];
    names.extend((0..m.cfg().clients).map(|c| format!("c{c}")));
    names.extend((0..m.cfg().registers).map(|r| format!("r{r}")));
    names
}

pub fn view(m: &ZkModel, s: &ZkModelState) -> String {
    let names = actor_names(m);
    let mut lines = Vec::new();
    for (i, name) in names.iter().enumerate().take(SERVERS) {
        let x = server(s, i);
        let r = &x.replica;
        lines.push(format!(
            "{}: {:?}{}, applied {}, /lock children {:?} (node → client), watches {:?}, /reg {:?} v{} (watches {:?}){}{}",
            name,
            x.role,
            if x.deposed { " (deposed)" } else { "" },
            r.applied,
            r.children,
            r.watches,
            r.data,
            r.version,
            r.data_watches,
            if x.queue.values().any(|q| !q.is_empty()) {
                format!(", waiting {:?}", x.queue)
            } else {
                String::new()
            },
            if x.role == Role::Leading {
                format!(", log {:?}", x.log)
            } else {
                String::new()
            }
        ));
    }
    for (i, c) in clients(s).enumerate() {
        lines.push(format!("c{i}: {:?}, node {:?}", c.recipe, c.node));
    }
    for (i, r) in registers(s).enumerate() {
        lines.push(format!(
            "r{i}: {:?} to {}, issued {}, answered {}, last zxid {}, watch {:?}",
            r.connection,
            crate::catalog::name_of(&names, usize::from(r.server)),
            r.issued,
            r.answered,
            r.last_zxid,
            r.watch,
        ));
    }
    if !s.history.writes.is_empty() {
        lines.push(format!("setData history: {:?}", s.history.writes));
    }
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

pub fn explain(m: &ZkModel, s: &ZkModelState, property: &str) -> Option<String> {
    if property.starts_with("the lock recipe") {
        let h = holders(s);
        return (h.len() > 1).then(|| format!("clients {h:?} hold the lock, their sessions alive"));
    }
    if property.starts_with("sequential suffixes") {
        return Some(format!(
            "the leader numbered the lock's children {:?}",
            sequence(s)
        ));
    }
    if property.starts_with("ephemerals die") {
        let (i, n, c) = orphan(s)?;
        return Some(format!(
            "server {i} has lock-{n:010} of client c{c}, whose session it closed"
        ));
    }
    if property.starts_with("writes are linearizable") {
        return Some(format!(
            "no single znode answers this setData history (call: expected version; return: \
             new version, None for BadVersion): {:?}",
            s.history.writes
        ));
    }
    let names = actor_names(m);
    let first = SERVERS + usize::from(m.cfg().clients);
    if property.starts_with("each client's operations") {
        let (i, r) = registers(s).enumerate().find(|(_, r)| r.out_of_order)?;
        return Some(format!(
            "{} got a reply out of its order or behind zxid {} it had seen (at {})",
            names[first + i],
            r.last_zxid,
            crate::catalog::name_of(&names, usize::from(r.server)),
        ));
    }
    if property.starts_with("a watch event reaches a client") {
        let (i, _) = registers(s)
            .enumerate()
            .find(|(_, r)| r.data_before_event)?;
        return Some(format!(
            "{} read /reg's new version before its watch event arrived",
            names[first + i]
        ));
    }
    None
}
