//! ZooKeeper's client API over one linearizable log, and the lock recipe of §2.4 as the
//! clients' program. Servers: the leader (which orders every write, Zab abstracted as one log)
//! and a follower; both keep a replica of the tree, apply the log in order, serve reads from
//! their replica and keep their clients' watches. Clients run "Locks without herd effect".

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// A lock node's sequence number: `/lock/lock-%010d`.
pub type Seq = u8;
/// A client's index (its session is the client's own).
pub type Client = u8;
/// A request's number in its client's session.
pub type Xid = u8;

/// A transaction of the log (a write, once the leader ordered it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Txn {
    /// `create("/lock/lock-", EPHEMERAL | SEQUENTIAL)`: the leader gave it sequence `seq`.
    Create {
        client: Client,
        seq: Seq,
    },
    Delete {
        seq: Seq,
    },
    /// The session expired: its ephemeral nodes go with it (§2.1).
    CloseSession {
        client: Client,
    },
}

/// An operation of the lock recipe.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    Create,
    GetChildren,
    /// `exists(node, watch = true)`.
    Exists(Seq),
    Delete(Seq),
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ret {
    Created(Seq),
    Children(Vec<Seq>),
    Exists(bool),
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZkMsg {
    Request {
        xid: Xid,
        op: Op,
    },
    /// A server sends a client's write to the leader (`seq`: a sequence number the server
    /// chose itself, only under `local-sequence`).
    Forward {
        client: Client,
        xid: Xid,
        op: Op,
        seq: Option<Seq>,
    },
    /// The leader's log, in order, to each server; `origin` is the request it answers.
    Commit {
        zxid: u8,
        txn: Txn,
        origin: Option<(Client, Xid)>,
    },
    Reply {
        xid: Xid,
        ret: Ret,
    },
    /// A watch fired: the node is gone.
    NodeDeleted(Seq),
    /// The session expired.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZkTimer {
    /// The leader expires this client's session (it stopped hearing from it).
    Expire(Client),
    /// A lock holder is done and releases the lock.
    Release,
}

crate::seeded_bugs! {
    /// The seeded bugs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ZkBug {
        /// The recipe takes the lock as soon as its predecessor vanishes, without listing the
        /// children again.
        LockNoRecheck = "lock-no-recheck",
        /// The leader orders a create of a session that has already expired: the ephemeral
        /// outlives its session (cf. ZOOKEEPER-1208).
        CreateAfterClose = "create-after-close",
        /// The follower numbers sequential nodes itself, from its replica's counter, instead
        /// of the leader.
        LocalSequence = "local-sequence",
    }
}

/// A server's replica: the lock's children (sequence → owner), the next sequence number, the
/// log applied so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Replica {
    pub children: BTreeMap<Seq, Client>,
    pub next_seq: Seq,
    pub applied: u8,
    pub closed: BTreeSet<Client>,
    /// Exists-watches: (client, node).
    pub watches: BTreeSet<(Client, Seq)>,
}

/// A server's state; the leader also holds the log and the sessions it closed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerState {
    pub replica: Replica,
    pub log: Vec<Txn>,
}

/// A client's place in the recipe (§2.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recipe {
    /// 1. `n = create(l + "/lock-", EPHEMERAL | SEQUENTIAL)`.
    Creating,
    /// 2. `C = getChildren(l, false)`.
    Listing,
    /// 5. `if exists(p, true)`: waiting for the answer.
    Checking(Seq),
    /// 5. wait for the watch event of `p`.
    Waiting(Seq),
    Holding,
    Releasing,
    Done,
    /// Its session expired.
    Dead,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientState {
    pub recipe: Recipe,
    pub node: Option<Seq>,
    pub xid: Xid,
    /// The last list follows a watch event.
    pub woken: bool,
    /// Woken by a predecessor's deletion while a lower node remained (a ghost).
    pub rewaited: bool,
}

/// The actors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZkActor {
    Server {
        leader: Id,
        servers: Vec<Id>,
        /// The clients: client `c` is actor `first_client + c`.
        first_client: usize,
        clients: Client,
        bug: Option<ZkBug>,
    },
    Client {
        server: Id,
        bug: Option<ZkBug>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZkState {
    Server(ServerState),
    Client(ClientState),
}

const TICK: Duration = Duration::from_millis(100);

impl Replica {
    /// Applies the next transaction; the watches it fires: (client, node).
    fn apply(&mut self, txn: &Txn) -> Vec<(Client, Seq)> {
        self.applied += 1;
        let gone: Vec<Seq> = match txn {
            Txn::Create { client, seq } => {
                self.children.insert(*seq, *client);
                self.next_seq = self.next_seq.max(seq + 1);
                Vec::new()
            }
            Txn::Delete { seq } => self
                .children
                .remove(seq)
                .map(|_| *seq)
                .into_iter()
                .collect(),
            Txn::CloseSession { client } => {
                self.closed.insert(*client);
                let gone: Vec<Seq> = self
                    .children
                    .iter()
                    .filter(|(_, c)| *c == client)
                    .map(|(s, _)| *s)
                    .collect();
                for s in &gone {
                    self.children.remove(s);
                }
                self.watches.retain(|(c, _)| c != client);
                gone
            }
        };
        let fired: Vec<(Client, Seq)> = self
            .watches
            .iter()
            .filter(|(_, s)| gone.contains(s))
            .copied()
            .collect();
        for w in &fired {
            self.watches.remove(w);
        }
        fired
    }
}

impl ZkActor {
    fn client_id(first_client: usize, c: Client) -> Id {
        Id::from(first_client + usize::from(c))
    }

    fn server_msg(&self, me: Id, s: &mut ServerState, src: Id, msg: ZkMsg, o: &mut Out<Self>) {
        let ZkActor::Server {
            leader,
            servers,
            first_client,
            bug,
            ..
        } = self
        else {
            return;
        };
        let client_of = |id: Id| -> Option<Client> {
            usize::from(id)
                .checked_sub(*first_client)
                .and_then(|c| Client::try_from(c).ok())
        };
        match msg {
            ZkMsg::Request { xid, op } => {
                let Some(c) = client_of(src) else { return };
                if s.replica.closed.contains(&c) {
                    return;
                }
                let ret = match &op {
                    Op::GetChildren => {
                        Some(Ret::Children(s.replica.children.keys().copied().collect()))
                    }
                    Op::Exists(n) => {
                        let there = s.replica.children.contains_key(n);
                        if there {
                            s.replica.watches.insert((c, *n));
                        }
                        Some(Ret::Exists(there))
                    }
                    Op::Create | Op::Delete(_) => None,
                };
                let seq = (*bug == Some(ZkBug::LocalSequence) && op == Op::Create)
                    .then_some(s.replica.next_seq);
                match ret {
                    Some(ret) => o.send(src, ZkMsg::Reply { xid, ret }),
                    None => o.send(
                        *leader,
                        ZkMsg::Forward {
                            client: c,
                            xid,
                            op,
                            seq,
                        },
                    ),
                }
            }
            ZkMsg::Forward {
                client,
                xid,
                op,
                seq,
            } if me == *leader => {
                // The leader orders writes; a closed session's requests are refused (§2.1).
                let closed = s.log.contains(&Txn::CloseSession { client });
                if closed && *bug != Some(ZkBug::CreateAfterClose) {
                    return;
                }
                let txn = match op {
                    Op::Create => {
                        // The parent's counter numbers sequential children (§2.1).
                        let next = s
                            .log
                            .iter()
                            .filter(|t| matches!(t, Txn::Create { .. }))
                            .count() as Seq;
                        Txn::Create {
                            client,
                            seq: seq.unwrap_or(next),
                        }
                    }
                    Op::Delete(seq) => Txn::Delete { seq },
                    _ => return,
                };
                self.append(me, s, servers, txn, Some((client, xid)), o);
            }
            ZkMsg::Commit { zxid, txn, origin } if zxid == s.replica.applied + 1 => {
                self.apply(me, s, &txn, origin, o);
            }
            _ => {}
        }
    }

    /// Applies the next transaction of the log to this server's replica; fires the watches
    /// it triggers, tells an expired client, and answers the write's client, each only if
    /// the client is connected here.
    fn apply(
        &self,
        me: Id,
        s: &mut ServerState,
        txn: &Txn,
        origin: Option<(Client, Xid)>,
        o: &mut Out<Self>,
    ) {
        let ZkActor::Server { first_client, .. } = self else {
            return;
        };
        let to = |c: Client| Self::client_id(*first_client, c);
        for (c, n) in s.replica.apply(txn) {
            if self.serves(me, to(c)) {
                o.send(to(c), ZkMsg::NodeDeleted(n));
            }
        }
        if let Txn::CloseSession { client } = txn {
            if self.serves(me, to(*client)) {
                o.send(to(*client), ZkMsg::Expired);
            }
        }
        if let Some((c, xid)) = origin {
            let ret = match txn {
                Txn::Create { seq, .. } => Ret::Created(*seq),
                _ => Ret::Deleted,
            };
            if self.serves(me, to(c)) {
                o.send(to(c), ZkMsg::Reply { xid, ret });
            }
        }
    }

    /// Whether server `me` is the one client `c` is connected to (the model fixes it).
    fn serves(&self, me: Id, c: Id) -> bool {
        let ZkActor::Server {
            servers,
            first_client,
            ..
        } = self
        else {
            return false;
        };
        let i = usize::from(c) - first_client;
        servers[i % servers.len()] == me
    }

    /// The leader orders `txn`: appends it to the log, applies it, and sends it on to the
    /// other servers.
    fn append(
        &self,
        me: Id,
        s: &mut ServerState,
        servers: &[Id],
        txn: Txn,
        origin: Option<(Client, Xid)>,
        o: &mut Out<Self>,
    ) {
        s.log.push(txn.clone());
        let zxid = s.log.len() as u8;
        self.apply(me, s, &txn, origin, o);
        for sv in servers.iter().filter(|sv| **sv != me) {
            o.send(
                *sv,
                ZkMsg::Commit {
                    zxid,
                    txn: txn.clone(),
                    origin,
                },
            );
        }
    }

    fn client_msg(&self, s: &mut ClientState, msg: ZkMsg, o: &mut Out<Self>) {
        let ZkActor::Client { server, bug } = self else {
            return;
        };
        let mut ask = |s: &mut ClientState, op: Op| {
            s.xid += 1;
            o.send(*server, ZkMsg::Request { xid: s.xid, op });
        };
        match (msg, s.recipe.clone()) {
            (ZkMsg::Expired, _) => s.recipe = Recipe::Dead,
            (_, Recipe::Dead) => {}
            (
                ZkMsg::Reply {
                    ret: Ret::Created(n),
                    ..
                },
                Recipe::Creating,
            ) => {
                s.node = Some(n);
                s.recipe = Recipe::Listing;
                ask(s, Op::GetChildren);
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Children(cs),
                    ..
                },
                Recipe::Listing,
            ) => {
                let Some(me) = s.node else { return };
                // 3. if n is the lowest node in C, exit: the lock is held.
                let woken = std::mem::take(&mut s.woken);
                match cs.iter().filter(|c| **c < me).max() {
                    None => {
                        s.recipe = Recipe::Holding;
                        o.set_timer(ZkTimer::Release, TICK..TICK);
                    }
                    Some(p) => {
                        if woken {
                            s.rewaited = true;
                        }
                        // 4. p = the node in C ordered just before n.
                        s.recipe = Recipe::Checking(*p);
                        ask(s, Op::Exists(*p));
                    }
                }
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Exists(true),
                    ..
                },
                Recipe::Checking(p),
            ) => {
                s.recipe = Recipe::Waiting(p);
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Exists(false),
                    ..
                },
                Recipe::Checking(_),
            ) => {
                s.recipe = Recipe::Listing;
                ask(s, Op::GetChildren);
            }
            (ZkMsg::NodeDeleted(n), Recipe::Waiting(p)) if n == p => {
                if *bug == Some(ZkBug::LockNoRecheck) {
                    s.recipe = Recipe::Holding;
                    o.set_timer(ZkTimer::Release, TICK..TICK);
                } else {
                    // 6. goto 2.
                    s.woken = true;
                    s.recipe = Recipe::Listing;
                    ask(s, Op::GetChildren);
                }
            }
            (
                ZkMsg::Reply {
                    ret: Ret::Deleted, ..
                },
                Recipe::Releasing,
            ) => s.recipe = Recipe::Done,
            _ => {}
        }
    }
}

impl Actor for ZkActor {
    type Msg = ZkMsg;
    type State = ZkState;
    type Timer = ZkTimer;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> ZkState {
        match self {
            ZkActor::Server {
                leader, clients, ..
            } => {
                if _id == *leader {
                    for c in 0..*clients {
                        o.set_timer(ZkTimer::Expire(c), TICK..TICK);
                    }
                }
                ZkState::Server(ServerState {
                    replica: Replica::default(),
                    log: Vec::new(),
                })
            }
            ZkActor::Client { server, .. } => {
                o.send(
                    *server,
                    ZkMsg::Request {
                        xid: 1,
                        op: Op::Create,
                    },
                );
                ZkState::Client(ClientState {
                    recipe: Recipe::Creating,
                    node: None,
                    xid: 1,
                    woken: false,
                    rewaited: false,
                })
            }
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<ZkState>, src: Id, msg: ZkMsg, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match &mut next {
            ZkState::Server(s) => self.server_msg(id, s, src, msg, o),
            ZkState::Client(c) => self.client_msg(c, msg, o),
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<ZkState>, timer: &ZkTimer, o: &mut Out<Self>) {
        let mut next = (**state).clone();
        match (&mut next, timer, self) {
            (ZkState::Server(s), ZkTimer::Expire(c), ZkActor::Server { servers, .. })
                if !s.log.contains(&Txn::CloseSession { client: *c }) =>
            {
                self.append(_id, s, servers, Txn::CloseSession { client: *c }, None, o);
            }
            (ZkState::Client(c), ZkTimer::Release, ZkActor::Client { server, .. })
                if c.recipe == Recipe::Holding =>
            {
                if let Some(n) = c.node {
                    c.recipe = Recipe::Releasing;
                    c.xid += 1;
                    o.send(
                        *server,
                        ZkMsg::Request {
                            xid: c.xid,
                            op: Op::Delete(n),
                        },
                    );
                }
            }
            _ => {}
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }
}
