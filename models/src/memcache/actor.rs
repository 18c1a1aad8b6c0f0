//! The web servers, memcache, the gutter, the database and mcsqueal as stateright actors. Each
//! takes its peers from its configuration, never from indices.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{model_timeout, Actor, Id, Out};

use crate::client::{ClientMsg, RequestId};

/// The database's version of the key: 0 at the start, one more for each committed write. A
/// cached item is identified by the version it was read at (its value is that write's).
pub type Version = u64;

/// A lease token (§3.2.1): a 64-bit number in memcached (its CAS value), a counter here.
pub type Token = u64;

crate::seeded_bugs! {
    /// The seeded bugs: each puts back a pitfall the paper's design avoids.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum MemcacheBug {
        /// Memcache without leases: a miss carries no token and every set is stored (§3.2.1's
        /// stale sets and thundering herds).
        NoLeases = "no-leases",
        /// A web server that wrote the database sets its new value in memcache instead of
        /// deleting the key (§2: deletes are idempotent, updates are not).
        UpdateNotDelete = "update-not-delete",
        /// Gutter entries live as long as memcache's: nothing ever removes a stale one (§3.3:
        /// gutter entries expire quickly, which is what spares the gutter invalidations).
        GutterLongTtl = "gutter-long-ttl",
        /// Memcache hands a lease token to every miss, not once per key: a thundering herd of
        /// web servers reads the database at once (§3.2.1).
        LeasePerMiss = "lease-per-miss",
        /// A delete invalidates the lease's token but memcache still counts the lease as
        /// outstanding: the holder's set is refused, and every later get is told to wait for a
        /// set that never comes (memcached releases a lease when its item is deleted or its
        /// lease time runs out, §3.2.1's 10 seconds).
        DeleteKeepsLease = "delete-keeps-lease",
    }
}

/// What a web server does, one operation after another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    /// Read the key, look-aside: memcache first, the database on a miss (Figure 1, left).
    Read,
    /// Write the key: the database first, then delete the key from memcache (Figure 1, right).
    Write,
}

/// Where a web server's get went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pool {
    Memcache,
    /// The gutter pool, used while a memcache server does not answer (§3.3).
    Gutter,
}

/// A cached value: the database's value at `version`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    pub version: Version,
}

/// `v1`: the value of the database's first write.
impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.version)
    }
}

/// The messages of look-aside caching with leases, on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum McMsg {
    /// A web server to memcache or the gutter: get the key. `seq`, in every request of a web
    /// server and echoed in its answer, is over TCP the driver's request id (like the opaque
    /// value of memcached's protocols): a web server that gave up on a request (it went to the
    /// gutter, or its driver moved on) must not take the late answer for its next one's. It is
    /// 0 in the model, where a web server never gives up.
    Get {
        seq: RequestId,
    },
    /// The cache has the key.
    Hit {
        item: Item,
        seq: RequestId,
    },
    /// The cache has not the key. Memcache gives the web server a lease token (§3.2.1), which
    /// entitles it to set the key; the gutter gives none.
    Miss {
        token: Option<Token>,
        seq: RequestId,
    },
    /// Memcache has not the key and has given its lease to another web server recently: wait a
    /// little and get again (§3.2.1, hot spots); by then the lease holder has usually set it.
    Wait {
        seq: RequestId,
    },
    /// No answer from memcache: the server is down (the client's timeout, §3.3). The web server
    /// goes to the gutter pool.
    Failed {
        seq: RequestId,
    },
    /// A web server to memcache (with its lease token) or to the gutter (without): set the key
    /// to what it read from the database.
    Set {
        item: Item,
        token: Option<Token>,
    },
    /// An invalidation (§2, §4.1): from the web server that wrote, and from mcsqueal. `version`
    /// is the write's, for the properties only: a real delete names the key and nothing more.
    Delete {
        version: Version,
    },
    /// `update-not-delete`: the web server that wrote sets its new value, unconditionally.
    Update {
        item: Item,
    },
    /// Over TCP only: the cache has processed a `Delete` (a web server's write returns once
    /// its invalidation is done, so that a history can tell a stale read). `version` is the
    /// delete's: the answer to which write's delete.
    Deleted {
        version: Version,
    },
    /// Over TCP only: the client envelope between a web server and whoever drives it (the
    /// model's web servers take their operations from their configuration).
    Client(ClientMsg<Op, McRet>),
    /// A web server to the database: read the key.
    Read {
        seq: RequestId,
    },
    ReadReply {
        item: Item,
        seq: RequestId,
    },
    /// A web server to the database: write the key (the database numbers the write).
    Write {
        seq: RequestId,
    },
    WriteOk {
        version: Version,
        seq: RequestId,
    },
    /// The database's commit log, which mcsqueal tails (§4.1, Figure 6).
    Commit {
        version: Version,
    },
}

/// What a web server's operation returned, over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum McRet {
    /// A read's version, where it was served from, and whether it was a hit there (otherwise
    /// the database's, read after a miss in `pool`).
    Read {
        version: Version,
        pool: Pool,
        hit: bool,
    },
    /// A write's version, once the database committed it and the web server's delete was done.
    Wrote { version: Version },
}

/// The timers: the model's faults, and over TCP a web server's pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum McTimer {
    /// Memcache's server fails (once): it stops answering and loses what it cached.
    Fail,
    /// It comes back, empty (a cold cache).
    Restart,
    /// A gutter entry's short TTL runs out (§3.3): the gutter's clock ticks past it.
    Expire,
    /// Over TCP: a web server told to wait gets again.
    Retry,
    /// Over TCP: a web server that read the database sets the cache (the time it takes to get
    /// there: the window in which a write's delete may overtake its set).
    Fill,
    /// Over TCP: memcache has not answered a get in time (its server is down, the client's
    /// timeout of §3.3): the web server goes to the gutter.
    Failover,
}

/// A web server over TCP: who drives it, and its real pauses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WebTcp {
    pub driver: Id,
    /// How long a web server told to wait waits before it gets again.
    pub retry: Range<Duration>,
    /// How long after the database's reply its set leaves.
    pub fill: Range<Duration>,
    /// How long it waits for memcache's answer to a get before it goes to the gutter.
    pub failover: Duration,
}

/// A web server: its operations, and where the caches and the database are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WebCfg {
    pub ops: Vec<Op>,
    pub memcache: Id,
    pub gutter: Id,
    pub db: Id,
    pub bug: Option<MemcacheBug>,
    /// Over TCP: its driver and pauses; `None` in the model.
    pub tcp: Option<WebTcp>,
}

/// What a web server is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for `pool`'s answer to a get.
    Getting { pool: Pool },
    /// Reading the database after a miss in `pool`, to set the key there with `token`.
    Filling { pool: Pool, token: Option<Token> },
    /// Waiting for the database to commit its write.
    Writing,
    /// Every operation done.
    Done,
    /// Over TCP: read `item` from the database after a miss in `pool`, the set is to leave.
    Setting {
        pool: Pool,
        token: Option<Token>,
        item: Item,
    },
    /// Over TCP: the write of `version` committed, its delete not yet done.
    Deleting { version: Version },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebState {
    /// The operation under way (or the number of operations, when done).
    pub op: usize,
    pub phase: Phase,
    /// What each finished read returned, in order.
    pub reads: Vec<Version>,
    /// Over TCP: the driver's request under way (0 in the model).
    pub seq: RequestId,
}

impl WebCfg {
    /// Starts operation `op` (or finishes).
    fn begin(&self, op: usize, reads: Vec<Version>, o: &mut Out<MemcacheActor>) -> WebState {
        let phase = match self.ops.get(op) {
            None => Phase::Done,
            Some(op) => self.start(*op, 0, o),
        };
        WebState {
            op,
            phase,
            reads,
            seq: 0,
        }
    }

    /// Sends the first request of `op`, the driver's request `seq`.
    fn start(&self, op: Op, seq: RequestId, o: &mut Out<MemcacheActor>) -> Phase {
        match op {
            Op::Read => {
                self.get(Pool::Memcache, seq, o);
                Phase::Getting {
                    pool: Pool::Memcache,
                }
            }
            Op::Write => {
                o.send(self.db, McMsg::Write { seq });
                Phase::Writing
            }
        }
    }

    /// The operation under way returned `ret`: over TCP, tell the driver and wait for the next.
    fn returned(&self, s: &WebState, ret: McRet, o: &mut Out<MemcacheActor>) -> WebState {
        match &self.tcp {
            Some(tcp) => {
                o.send(
                    tcp.driver,
                    McMsg::Client(ClientMsg::Return { seq: s.seq, ret }),
                );
                WebState {
                    phase: Phase::Done,
                    ..s.clone()
                }
            }
            None => {
                let mut reads = s.reads.clone();
                if let McRet::Read { version, .. } = ret {
                    reads.push(version);
                }
                self.begin(s.op + 1, reads, o)
            }
        }
    }

    /// Gets the key from `pool`; over TCP, with a timeout on memcache's answer.
    fn get(&self, pool: Pool, seq: RequestId, o: &mut Out<MemcacheActor>) {
        o.send(self.pool(pool), McMsg::Get { seq });
        if let (Some(tcp), Pool::Memcache) = (&self.tcp, pool) {
            o.set_timer(McTimer::Failover, tcp.failover..tcp.failover);
        }
    }

    fn pool(&self, pool: Pool) -> Id {
        match pool {
            Pool::Memcache => self.memcache,
            Pool::Gutter => self.gutter,
        }
    }

    fn on_msg(
        &self,
        s: &WebState,
        src: Id,
        msg: McMsg,
        o: &mut Out<MemcacheActor>,
    ) -> Option<WebState> {
        // Over TCP, a late answer to a request this web server gave up on is ignored: one for
        // an earlier request of its driver's, or memcache's to a get it took to the gutter.
        let seq = match msg {
            McMsg::Hit { seq, .. }
            | McMsg::Miss { seq, .. }
            | McMsg::Wait { seq }
            | McMsg::Failed { seq }
            | McMsg::ReadReply { seq, .. }
            | McMsg::WriteOk { seq, .. } => Some(seq),
            _ => None,
        };
        if seq.is_some_and(|seq| seq != s.seq) {
            return None;
        }
        let answer = matches!(
            msg,
            McMsg::Hit { .. } | McMsg::Miss { .. } | McMsg::Wait { .. } | McMsg::Failed { .. }
        );
        if let (true, Phase::Getting { pool }) = (answer, s.phase) {
            if src != self.pool(pool) {
                return None;
            }
            if self.tcp.is_some() && pool == Pool::Memcache {
                o.cancel_timer(McTimer::Failover);
            }
        }
        match (s.phase, msg) {
            // Over TCP: the driver's next operation.
            (_, McMsg::Client(ClientMsg::Invoke { seq, op })) if self.tcp.is_some() => {
                (seq > s.seq).then(|| WebState {
                    op: s.op + 1,
                    phase: self.start(op, seq, o),
                    reads: Vec::new(),
                    seq,
                })
            }
            (Phase::Getting { pool }, McMsg::Hit { item, .. }) => Some(self.returned(
                s,
                McRet::Read {
                    version: item.version,
                    pool,
                    hit: true,
                },
                o,
            )),
            (Phase::Getting { pool }, McMsg::Miss { token, .. }) => {
                o.send(self.db, McMsg::Read { seq: s.seq });
                Some(WebState {
                    phase: Phase::Filling { pool, token },
                    ..s.clone()
                })
            }
            // Hot key: get again (after a short wait, which only reorders steps here).
            (Phase::Getting { pool }, McMsg::Wait { .. }) => {
                match &self.tcp {
                    Some(tcp) => o.set_timer(McTimer::Retry, tcp.retry.clone()),
                    None => o.send(self.pool(pool), McMsg::Get { seq: s.seq }),
                }
                Some(s.clone())
            }
            (
                Phase::Getting {
                    pool: Pool::Memcache,
                },
                McMsg::Failed { .. },
            ) => {
                o.send(self.gutter, McMsg::Get { seq: s.seq });
                Some(WebState {
                    phase: Phase::Getting { pool: Pool::Gutter },
                    ..s.clone()
                })
            }
            // Look-aside: the web server fills the cache with what it read (Figure 1).
            (Phase::Filling { pool, token }, McMsg::ReadReply { item, .. }) => match &self.tcp {
                Some(tcp) => {
                    o.set_timer(McTimer::Fill, tcp.fill.clone());
                    Some(WebState {
                        phase: Phase::Setting { pool, token, item },
                        ..s.clone()
                    })
                }
                None => {
                    o.send(self.pool(pool), McMsg::Set { item, token });
                    let ret = McRet::Read {
                        version: item.version,
                        pool,
                        hit: false,
                    };
                    Some(self.returned(s, ret, o))
                }
            },
            // §2: update the database, then delete the key from the cache.
            (Phase::Writing, McMsg::WriteOk { version, .. }) => {
                let msg = if self.bug == Some(MemcacheBug::UpdateNotDelete) {
                    McMsg::Update {
                        item: Item { version },
                    }
                } else {
                    McMsg::Delete { version }
                };
                o.send(self.memcache, msg);
                if self.tcp.is_some() && self.bug != Some(MemcacheBug::UpdateNotDelete) {
                    return Some(WebState {
                        phase: Phase::Deleting { version },
                        ..s.clone()
                    });
                }
                Some(self.returned(s, McRet::Wrote { version }, o))
            }
            (Phase::Deleting { version }, McMsg::Deleted { version: done }) if done == version => {
                Some(self.returned(s, McRet::Wrote { version }, o))
            }
            _ => None,
        }
    }

    /// Over TCP: a wait is over, or a set is due.
    fn on_timeout(
        &self,
        s: &WebState,
        timer: McTimer,
        o: &mut Out<MemcacheActor>,
    ) -> Option<WebState> {
        match (s.phase, timer) {
            (Phase::Getting { pool }, McTimer::Retry) => {
                self.get(pool, s.seq, o);
                None
            }
            (
                Phase::Getting {
                    pool: Pool::Memcache,
                },
                McTimer::Failover,
            ) => self.on_msg(s, self.memcache, McMsg::Failed { seq: s.seq }, o),
            (Phase::Setting { pool, token, item }, McTimer::Fill) => {
                o.send(self.pool(pool), McMsg::Set { item, token });
                let ret = McRet::Read {
                    version: item.version,
                    pool,
                    hit: false,
                };
                Some(self.returned(s, ret, o))
            }
            _ => None,
        }
    }
}

/// The memcache server that holds the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemcacheCfg {
    /// Whether it fails (once) and comes back.
    pub fails: bool,
    pub bug: Option<MemcacheBug>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemcacheState {
    pub up: bool,
    pub item: Option<Item>,
    /// The outstanding lease tokens for the key: at most one (§3.2.1), unless `lease-per-miss`.
    pub leases: Vec<Token>,
    /// Tokens issued so far: a new one is never an old one, across a restart too.
    pub issued: Token,
    /// For the properties: the newest write whose delete it has processed.
    pub invalidated: Version,
    /// For the properties: it refused a set whose lease a delete had invalidated.
    pub refused: bool,
}

impl MemcacheCfg {
    /// Memcache's answer to `msg` from `src`, and its next state if it changes.
    pub fn on_msg(
        &self,
        s: &MemcacheState,
        src: Id,
        msg: McMsg,
        o: &mut Out<MemcacheActor>,
    ) -> Option<MemcacheState> {
        if !s.up {
            // A down server answers nothing: the web server's timeout is `Failed`.
            if let McMsg::Get { seq } = msg {
                o.send(src, McMsg::Failed { seq });
            }
            return None;
        }
        let no_leases = self.bug == Some(MemcacheBug::NoLeases);
        let mut next = s.clone();
        match msg {
            McMsg::Get { seq } => match s.item {
                Some(item) => o.send(src, McMsg::Hit { item, seq }),
                None if no_leases => o.send(src, McMsg::Miss { token: None, seq }),
                // §3.2.1: one token per key at a time; the others wait.
                None if !s.leases.is_empty() && self.bug != Some(MemcacheBug::LeasePerMiss) => {
                    o.send(src, McMsg::Wait { seq })
                }
                None => {
                    next.issued += 1;
                    next.leases.push(next.issued);
                    o.send(
                        src,
                        McMsg::Miss {
                            token: Some(next.issued),
                            seq,
                        },
                    );
                }
            },
            // §3.2.1: a set is stored only with a token still valid; a delete invalidates it.
            McMsg::Set { item, token } => {
                if no_leases || token.is_some_and(|t| s.leases.contains(&t)) {
                    next.item = Some(item);
                    next.leases.clear();
                } else {
                    next.refused = true;
                }
            }
            McMsg::Delete { version } => {
                next.item = None;
                // `delete-keeps-lease`: the holder's token no longer sets (0 is never issued),
                // but a lease is still out.
                let keep = self.bug == Some(MemcacheBug::DeleteKeepsLease) && !s.leases.is_empty();
                next.leases = if keep { vec![0] } else { Vec::new() };
                next.invalidated = next.invalidated.max(version);
            }
            McMsg::Update { item } => next.item = Some(item),
            _ => return None,
        }
        (next != *s).then_some(next)
    }
}

/// The gutter server (§3.3): a small pool that takes over the gets of a failed memcache server,
/// without leases, and whose entries expire quickly instead of being invalidated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GutterState {
    /// The key's entry, and whether its short TTL is still to run out (`false` only with
    /// `gutter-long-ttl`: an entry that outlives the run).
    pub item: Option<(Item, bool)>,
}

/// A stateright actor of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemcacheActor {
    Web(WebCfg),
    Memcache(MemcacheCfg),
    Gutter {
        bug: Option<MemcacheBug>,
    },
    /// The database: the authoritative value and its version; it tells mcsqueal each commit.
    Database {
        mcsqueal: Id,
    },
    /// The invalidation daemon on the database (§4.1): each commit's delete to memcache.
    Mcsqueal {
        memcache: Id,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum McState {
    Web(WebState),
    Memcache(MemcacheState),
    Gutter(GutterState),
    Database { version: Version },
    Mcsqueal,
}

impl Actor for MemcacheActor {
    type Msg = McMsg;
    type Timer = McTimer;
    type State = McState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> McState {
        match self {
            MemcacheActor::Web(cfg) => McState::Web(cfg.begin(0, Vec::new(), o)),
            MemcacheActor::Memcache(cfg) => {
                if cfg.fails {
                    o.set_timer(McTimer::Fail, model_timeout());
                }
                McState::Memcache(MemcacheState {
                    up: true,
                    item: None,
                    leases: Vec::new(),
                    issued: 0,
                    invalidated: 0,
                    refused: false,
                })
            }
            MemcacheActor::Gutter { .. } => McState::Gutter(GutterState { item: None }),
            MemcacheActor::Database { .. } => McState::Database { version: 0 },
            MemcacheActor::Mcsqueal { .. } => McState::Mcsqueal,
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<McState>, src: Id, msg: McMsg, o: &mut Out<Self>) {
        let next = match (self, &**state) {
            (MemcacheActor::Web(cfg), McState::Web(s)) => {
                cfg.on_msg(s, src, msg, o).map(McState::Web)
            }
            (MemcacheActor::Memcache(cfg), McState::Memcache(s)) => {
                cfg.on_msg(s, src, msg, o).map(McState::Memcache)
            }
            (MemcacheActor::Gutter { bug }, McState::Gutter(s)) => match msg {
                McMsg::Get { seq } => {
                    o.send(
                        src,
                        match s.item {
                            Some((item, _)) => McMsg::Hit { item, seq },
                            None => McMsg::Miss { token: None, seq },
                        },
                    );
                    None
                }
                McMsg::Set { item, .. } => {
                    let expires = *bug != Some(MemcacheBug::GutterLongTtl);
                    if expires {
                        o.set_timer(McTimer::Expire, model_timeout());
                    }
                    Some(McState::Gutter(GutterState {
                        item: Some((item, expires)),
                    }))
                }
                _ => None,
            },
            (MemcacheActor::Database { mcsqueal }, McState::Database { version }) => match msg {
                McMsg::Read { seq } => {
                    o.send(
                        src,
                        McMsg::ReadReply {
                            item: Item { version: *version },
                            seq,
                        },
                    );
                    None
                }
                McMsg::Write { seq } => {
                    let version = version + 1;
                    o.send(src, McMsg::WriteOk { version, seq });
                    o.send(*mcsqueal, McMsg::Commit { version });
                    Some(McState::Database { version })
                }
                _ => None,
            },
            (MemcacheActor::Mcsqueal { memcache }, McState::Mcsqueal) => {
                if let McMsg::Commit { version } = msg {
                    o.send(*memcache, McMsg::Delete { version });
                }
                None
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<McState>, timer: &McTimer, o: &mut Out<Self>) {
        if let (MemcacheActor::Web(cfg), McState::Web(s)) = (self, &**state) {
            if let Some(next) = cfg.on_timeout(s, *timer, o) {
                *state = Cow::Owned(McState::Web(next));
            }
            return;
        }
        let next = match (&**state, timer) {
            (McState::Memcache(s), McTimer::Fail) if s.up => {
                o.set_timer(McTimer::Restart, model_timeout());
                McState::Memcache(MemcacheState {
                    up: false,
                    item: None,
                    leases: Vec::new(),
                    ..s.clone()
                })
            }
            (McState::Memcache(s), McTimer::Restart) if !s.up => McState::Memcache(MemcacheState {
                up: true,
                ..s.clone()
            }),
            (McState::Gutter(_), McTimer::Expire) => McState::Gutter(GutterState { item: None }),
            _ => return,
        };
        *state = Cow::Owned(next);
    }
}
