//! Memcache at Facebook over TCP, on a real memcached: the model's web servers, database and
//! mcsqueal as nodes and clients, and memcached 1.6 as memcache and the gutter pool, described
//! to the runtime by [`MemcacheService`] (`memcache`).
//!
//! - The cluster file's four nodes, in id order: memcache (0), the gutter (1), the database (2)
//!   and mcsqueal (3). Nodes 0 and 1 are [`Cache`]s: each starts a memcached of its own on its
//!   data port (`[data]` in the cluster file; it dies with the node) and carries the model's
//!   cache messages to it. The web servers are clients (`client memcache read`, `jepsen
//!   memcache`): the model's [`WebCfg`] with a driver.
//! - Leases (§3.2.1) are memcached's own, in its meta protocol ([`Meta`]): a get is
//!   `mg KEY v c N10`: a hit, or an empty item with the flag `W` (this client won the lease; the
//!   item's CAS value is the token), or `Z` (another client holds it: wait). A set with the
//!   token is `ms KEY LEN C<token>`: `EX` or `NF` when a delete, `md KEY I`, bumped the CAS in
//!   between (a stale set, refused). A delete marks the item stale, and the next get wins a new
//!   lease (`X W`).
//! - The gutter (§3.3) is the second memcached, used by a web server whose get gets no answer
//!   from memcache in [`Tuning::heartbeat`] × 4; its entries live [`GUTTER_TTL`] and are never
//!   invalidated.
//! - Over TCP a write returns once the database committed it and memcache processed the web
//!   server's delete (`Deleted`), so that a history shows stale reads: [`MemcacheService`]'s
//!   check is `properties::freshness` (no read older than a write that returned before it began,
//!   except a gutter read within its TTL). `--bug no-leases` runs plain look-aside (`mg KEY v`,
//!   `ms KEY LEN`, `md KEY`): a web server that read the database before a write and sets after
//!   its deletes leaves the old value in memcache.
//! - The window between a web server's database read and its set is [`Tuning::timeout`]: how
//!   long a loaded web server takes (the race's window).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use models::client::{ClientMsg, RequestId};
use models::memcache::{
    Item, McMsg, McRet, McState, McTimer, MemcacheActor, MemcacheBug, Op, Pool, WebCfg, WebTcp,
};
use stateright::actor::{Actor, Id, Out};

use crate::config::ClusterConfig;
use crate::jepsen::{Expect, History, Outcome, PlanStep};
use crate::rng::Rng;
use crate::service::{Checked, Client, Jepsen, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// The one key the web servers read and write (the model's key; a hot key).
pub const KEY: &str = "k";

/// How long a lease lives in memcached if its holder never sets (§3.2.1: "10 seconds").
pub const LEASE_TTL: u32 = 10;

/// A gutter entry's time to live, in seconds (§3.3: "a few" seconds, short).
pub const GUTTER_TTL: u32 = 1;

/// The nodes, by id.
pub const MEMCACHE: usize = 0;
pub const GUTTER: usize = 1;
pub const DATABASE: usize = 2;
pub const MCSQUEAL: usize = 3;

/// What a lease get found (§3.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Hit(Vec<u8>),
    /// A miss; with leases, the token this client won (the item's CAS value).
    Miss(Option<u64>),
    /// Another client holds the key's lease: wait and get again.
    Wait,
}

/// A connection to memcached, in its meta protocol (memcached 1.6).
pub struct Meta {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Meta {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Meta> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Meta {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// One command in one write (one segment on the wire).
    fn send(&mut self, cmd: &[u8]) -> io::Result<()> {
        self.writer.write_all(cmd)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "memcached closed the connection",
            ));
        }
        let line = line.trim_end().to_string();
        if line.starts_with("CLIENT_ERROR") || line.starts_with("SERVER_ERROR") || line == "ERROR" {
            return Err(bad(format!("memcached: {line}")));
        }
        Ok(line)
    }

    /// A meta get's answer: the value and the flags, `None` for `EN` (a miss).
    fn value(&mut self) -> io::Result<Option<(Vec<u8>, Vec<String>)>> {
        let line = self.line()?;
        if line == "EN" {
            return Ok(None);
        }
        let mut words = line.split(' ');
        if words.next() != Some("VA") {
            return Err(bad(format!("memcached answered a get with {line:?}")));
        }
        let len: usize = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| bad(format!("memcached: no length in {line:?}")))?;
        let flags = words.map(str::to_string).collect();
        let mut data = vec![0; len + 2];
        self.reader.read_exact(&mut data)?;
        data.truncate(len);
        Ok(Some((data, flags)))
    }

    /// `mg KEY v c N<lease_ttl>`: a hit, a miss with the lease won, or wait (§3.2.1).
    pub fn lease_get(&mut self, key: &str, lease_ttl: u32) -> io::Result<Got> {
        self.send(format!("mg {key} v c N{lease_ttl}\r\n").as_bytes())?;
        let Some((data, flags)) = self.value()? else {
            return Ok(Got::Miss(None));
        };
        let has = |f: &str| flags.iter().any(|x| x == f);
        if has("W") {
            let token = flags
                .iter()
                .find_map(|f| f.strip_prefix('c').and_then(|c| c.parse().ok()))
                .ok_or_else(|| bad(format!("memcached: a won lease without a CAS: {flags:?}")))?;
            return Ok(Got::Miss(Some(token)));
        }
        // `Z`: another client won the lease; `X` alone: a stale item whose lease is out.
        if has("Z") || has("X") {
            return Ok(Got::Wait);
        }
        Ok(Got::Hit(data))
    }

    /// `mg KEY v`: plain look-aside, no lease.
    pub fn get(&mut self, key: &str) -> io::Result<Option<Vec<u8>>> {
        self.send(format!("mg {key} v\r\n").as_bytes())?;
        Ok(self.value()?.map(|(data, _)| data))
    }

    /// `ms KEY LEN T<ttl> [C<token>]`: whether it was stored (a token a delete invalidated is
    /// refused: `EX`, or `NF` once the item is gone).
    pub fn set(
        &mut self,
        key: &str,
        value: &[u8],
        token: Option<u64>,
        ttl: u32,
    ) -> io::Result<bool> {
        let cas = token.map(|t| format!(" C{t}")).unwrap_or_default();
        let mut cmd = format!("ms {key} {} T{ttl}{cas}\r\n", value.len()).into_bytes();
        cmd.extend_from_slice(value);
        cmd.extend_from_slice(b"\r\n");
        self.send(&cmd)?;
        match self.line()?.as_str() {
            "HD" => Ok(true),
            "EX" | "NF" | "NS" => Ok(false),
            other => Err(bad(format!("memcached answered a set with {other:?}"))),
        }
    }

    /// `md KEY I T<lease_ttl>` (invalidate: the item turns stale, its CAS changes, so that
    /// outstanding tokens no longer set) or `md KEY` (a plain delete).
    pub fn delete(&mut self, key: &str, invalidate: Option<u32>) -> io::Result<()> {
        match invalidate {
            Some(ttl) => self.send(format!("md {key} I T{ttl}\r\n").as_bytes())?,
            None => self.send(format!("md {key}\r\n").as_bytes())?,
        }
        match self.line()?.as_str() {
            "HD" | "NF" => Ok(()),
            other => Err(bad(format!("memcached answered a delete with {other:?}"))),
        }
    }

    /// memcached's `version`.
    pub fn version(&mut self) -> io::Result<String> {
        self.writer.write_all(b"version\r\n")?;
        Ok(self.line()?.trim_start_matches("VERSION ").to_string())
    }

    /// memcached's process id (`stats`): a restarted memcached numbers its CAS values from 1
    /// again, so a token is only good for the process that issued it.
    pub fn pid(&mut self) -> io::Result<u64> {
        self.writer.write_all(b"stats\r\n")?;
        let mut pid = None;
        loop {
            let line = self.line()?;
            if line == "END" {
                return pid.ok_or_else(|| bad("memcached's stats have no pid".into()));
            }
            if let Some(p) = line.strip_prefix("STAT pid ") {
                pid = p.parse().ok();
            }
        }
    }
}

/// Starts memcached on `addr` (loopback), to die with this process, and waits until it answers.
pub fn start_memcached(addr: SocketAddr) -> Result<std::process::Child, String> {
    let port = addr.port().to_string();
    let args = [
        "-p",
        &port,
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-m",
        "64",
        "-t",
        "2",
        "-u",
        "root",
    ];
    // setpriv's parent-death signal: a node killed with -9 takes its memcached with it.
    let child = std::process::Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "memcached"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .or_else(|_| {
            std::process::Command::new("memcached")
                .args(args)
                .stdin(std::process::Stdio::null())
                .spawn()
        })
        .map_err(|e| {
            format!(
                "cannot start memcached ({e}): memcache runs on memcached 1.6 (Debian's memcached)"
            )
        })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(mut m) = Meta::connect(addr, Duration::from_millis(200)) {
            if m.version().is_ok() {
                return Ok(child);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("memcached did not answer on {addr} within 5 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Node 0 or 1: memcached on the node's data port, spoken to in the model's cache messages.
pub struct Cache {
    pub pool: Pool,
    pub addr: SocketAddr,
    /// memcached's leases (memcache, unless `no-leases`); the gutter has none.
    pub leases: bool,
    /// Sets' time to live in seconds: 0 (none) for memcache, [`GUTTER_TTL`] for the gutter.
    pub ttl: u32,
    /// The connection, and the memcached process it reaches.
    conn: Mutex<Option<(Meta, u64)>>,
}

/// A lease token as the web servers hold it: memcached's CAS value, and (in the bits above
/// [`CAS_BITS`]) which memcached process issued it.
const CAS_BITS: u32 = 40;

/// What a cache node has done, for `cluster status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CacheState {
    pub hits: u64,
    pub misses: u64,
    pub waits: u64,
    pub stored: u64,
    pub refused: u64,
    pub deletes: u64,
    pub errors: u64,
}

impl Cache {
    pub fn new(pool: Pool, addr: SocketAddr, leases: bool, ttl: u32) -> Cache {
        Cache {
            pool,
            addr,
            leases,
            ttl,
            conn: Mutex::new(None),
        }
    }

    /// Runs `f` on memcached, told which memcached process it is.
    fn call<T>(&self, f: impl FnOnce(&mut Meta, u64) -> io::Result<T>) -> io::Result<T> {
        let mut conn = self.conn.lock().expect("memcached connection");
        if conn.is_none() {
            let mut m = Meta::connect(self.addr, Duration::from_millis(200))?;
            let pid = m.pid()?;
            *conn = Some((m, pid));
        }
        let (m, pid) = conn.as_mut().expect("connected");
        let pid = *pid;
        let out = f(m, pid);
        if out.is_err() {
            *conn = None;
        }
        out
    }

    /// The model's cache message `msg` from `src`, done on memcached.
    fn on_msg(&self, s: &CacheState, src: Id, msg: McMsg, o: &mut Out<McNode>) -> CacheState {
        let mut next = s.clone();
        let result = match msg {
            McMsg::Get { seq } => {
                let got = if self.leases {
                    self.call(|m, pid| {
                        Ok(match m.lease_get(KEY, LEASE_TTL)? {
                            Got::Miss(Some(cas)) => Got::Miss(Some(token(pid, cas))),
                            got => got,
                        })
                    })
                } else {
                    self.call(|m, _| m.get(KEY))
                        .map(|v| v.map_or(Got::Miss(None), Got::Hit))
                };
                got.map(|got| {
                    let answer = match got {
                        Got::Hit(data) => match parse_version(&data) {
                            Some(version) => {
                                next.hits += 1;
                                McMsg::Hit {
                                    item: Item { version },
                                    seq,
                                }
                            }
                            // Not a value of ours: with leases, an item being filled (wait
                            // for it: a miss without a token would invite a set without one).
                            None if self.leases => {
                                next.waits += 1;
                                McMsg::Wait { seq }
                            }
                            None => {
                                next.misses += 1;
                                McMsg::Miss { token: None, seq }
                            }
                        },
                        Got::Miss(token) => {
                            next.misses += 1;
                            McMsg::Miss { token, seq }
                        }
                        Got::Wait => {
                            next.waits += 1;
                            McMsg::Wait { seq }
                        }
                    };
                    o.send(src, answer);
                })
            }
            McMsg::Set { item, token } => {
                let value = item.version.to_string();
                let leases = self.leases;
                self.call(|m, pid| match (leases, token) {
                    // With leases, a set without a token, or with a token of another memcached
                    // process, is refused: a restarted server holds no lease (the model's
                    // tokens are never reused).
                    (true, None) => Ok(false),
                    (true, Some(t)) if t >> CAS_BITS != pid_bits(pid) => Ok(false),
                    (true, Some(t)) => m.set(KEY, value.as_bytes(), Some(t & CAS_MASK), self.ttl),
                    (false, _) => m.set(KEY, value.as_bytes(), None, self.ttl),
                })
                .map(|stored| {
                    if stored {
                        next.stored += 1;
                    } else {
                        next.refused += 1;
                    }
                })
            }
            McMsg::Update { item } => {
                let value = item.version.to_string();
                self.call(|m, _| m.set(KEY, value.as_bytes(), None, self.ttl))
                    .map(|_| next.stored += 1)
            }
            McMsg::Delete { version } => {
                let invalidate = self.leases.then_some(LEASE_TTL);
                self.call(|m, _| m.delete(KEY, invalidate)).map(|()| {
                    next.deletes += 1;
                    o.send(src, McMsg::Deleted { version });
                })
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            // memcached is down: a get is answered `Failed` (the gutter takes it, §3.3); a
            // delete or a set is lost with the contents (the server comes back empty).
            tracing::warn!(error = %e, "memcached");
            next.errors += 1;
            if let McMsg::Get { seq } = msg {
                o.send(src, McMsg::Failed { seq });
            }
        }
        next
    }
}

const CAS_MASK: u64 = (1 << CAS_BITS) - 1;

fn pid_bits(pid: u64) -> u64 {
    pid & ((1 << (64 - CAS_BITS)) - 1)
}

fn token(pid: u64, cas: u64) -> u64 {
    (pid_bits(pid) << CAS_BITS) | (cas & CAS_MASK)
}

fn parse_version(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.parse().ok()
}

/// A memcache node: one of the model's actors (a web server, the database, mcsqueal), or a
/// cache in front of memcached.
pub enum McNode {
    Model(MemcacheActor),
    Cache(Cache),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum McNodeState {
    Model(McState),
    Cache(CacheState),
}

impl Actor for McNode {
    type Msg = McMsg;
    type State = McNodeState;
    type Timer = McTimer;
    type Storage = ();
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<()>, o: &mut Out<Self>) -> McNodeState {
        match self {
            McNode::Model(a) => {
                let mut inner = Out::new();
                let s = a.on_start(id, storage, &mut inner);
                forward(inner, o);
                McNodeState::Model(s)
            }
            McNode::Cache(_) => McNodeState::Cache(CacheState::default()),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut std::borrow::Cow<McNodeState>,
        src: Id,
        msg: McMsg,
        o: &mut Out<Self>,
    ) {
        match (self, &**state) {
            (McNode::Model(a), McNodeState::Model(s)) => {
                let mut inner = Out::new();
                let mut s = std::borrow::Cow::Borrowed(s);
                a.on_msg(id, &mut s, src, msg, &mut inner);
                forward(inner, o);
                if let std::borrow::Cow::Owned(s) = s {
                    *state = std::borrow::Cow::Owned(McNodeState::Model(s));
                }
            }
            (McNode::Cache(c), McNodeState::Cache(s)) => {
                let next = c.on_msg(s, src, msg, o);
                if next != *s {
                    *state = std::borrow::Cow::Owned(McNodeState::Cache(next));
                }
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut std::borrow::Cow<McNodeState>,
        timer: &McTimer,
        o: &mut Out<Self>,
    ) {
        if let (McNode::Model(a), McNodeState::Model(s)) = (self, &**state) {
            let mut inner = Out::new();
            let mut s = std::borrow::Cow::Borrowed(s);
            a.on_timeout(id, &mut s, timer, &mut inner);
            forward(inner, o);
            if let std::borrow::Cow::Owned(s) = s {
                *state = std::borrow::Cow::Owned(McNodeState::Model(s));
            }
        }
    }
}

/// The model actor's commands, as the node's.
fn forward(inner: Out<MemcacheActor>, o: &mut Out<McNode>) {
    use stateright::actor::Command;
    for c in inner {
        match c {
            Command::Send(to, m) => o.send(to, m),
            Command::SetTimer(t, d) => o.set_timer(t, d),
            Command::CancelTimer(t) => o.cancel_timer(t),
            Command::ChooseRandom(..) | Command::Save(_) => {}
        }
    }
}

/// The seeded bugs that run on real nodes: memcache without leases, a gutter whose entries do
/// not expire.
const BUGS: &[MemcacheBug] = &[MemcacheBug::NoLeases, MemcacheBug::GutterLongTtl];

fn node_ids(cluster: &ClusterConfig) -> Result<[Id; 4], ServiceError> {
    let ids: Vec<Id> = cluster.nodes.keys().copied().collect();
    let want: Vec<Id> = (0..4).map(Id::from).collect();
    if ids != want {
        return Err(ServiceError::Invalid(format!(
            "memcache runs on nodes 0-3 (memcache, the gutter, the database, mcsqueal); the \
             cluster file has {}",
            ids.len()
        )));
    }
    Ok([want[0], want[1], want[2], want[3]])
}

/// `memcache` in the service registry.
pub struct MemcacheService;

impl Service for MemcacheService {
    type Actor = McNode;
    type Msg = McMsg;
    type State = McNodeState;
    type Store = JsonFile;

    const NAME: &'static str = "memcache";
    const SUMMARY: &'static str =
        "Memcache at Facebook: web servers with leases on a real memcached, a gutter memcached, a database and mcsqueal";
    const TUNING_HELP: &'static str = "timeout: how long a web server takes from its database \
        read to its set (the race's window); heartbeat: how long a web server told to wait \
        waits, and a quarter of how long it waits for memcache before it goes to the gutter";
    const DATA_PORTS: bool = true;

    fn nodes() -> Option<usize> {
        Some(4)
    }

    fn bugs() -> Vec<&'static str> {
        BUGS.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(1)..Duration::from_millis(5),
            heartbeat: Duration::from_millis(2),
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        _tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<McNode, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let [_, _, _, mcsqueal] = node_ids(cluster)?;
        let bug = bug
            .map(|b| {
                MemcacheBug::from_name(b)
                    .filter(|b| BUGS.contains(b))
                    .ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
            })
            .transpose()?;
        let cache = |pool: Pool, leases: bool, ttl: u32| {
            let addr = *cluster.data.get(&id).ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "node {} runs memcached on its data port: the cluster file has none ([data])",
                    usize::from(id)
                ))
            })?;
            let child = start_memcached(addr).map_err(ServiceError::Invalid)?;
            // It lives as long as the node (and dies with it).
            std::mem::forget(child);
            Ok(McNode::Cache(Cache::new(pool, addr, leases, ttl)))
        };
        match usize::from(id) {
            MEMCACHE => cache(Pool::Memcache, bug != Some(MemcacheBug::NoLeases), 0),
            GUTTER => {
                let ttl = if bug == Some(MemcacheBug::GutterLongTtl) {
                    0
                } else {
                    GUTTER_TTL
                };
                cache(Pool::Gutter, false, ttl)
            }
            DATABASE => Ok(McNode::Model(MemcacheActor::Database { mcsqueal })),
            _ => Ok(McNode::Model(MemcacheActor::Mcsqueal {
                memcache: Id::from(MEMCACHE),
            })),
        }
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    fn describe(state: &McNodeState) -> Option<String> {
        match state {
            McNodeState::Cache(c) => Some(format!(
                "cache: {} hits, {} misses, {} waits, {} sets stored, {} refused, {} deletes",
                c.hits, c.misses, c.waits, c.stored, c.refused, c.deletes
            )),
            McNodeState::Model(McState::Database { version }) => {
                Some(format!("database at v{version}"))
            }
            McNodeState::Model(McState::Mcsqueal) => Some("mcsqueal".into()),
            McNodeState::Model(_) => None,
        }
    }

    fn kind(msg: &McMsg) -> Option<&'static str> {
        match msg {
            McMsg::Read { .. } => Some("database reads"),
            McMsg::Write { .. } => Some("database writes"),
            McMsg::Get { .. } => Some("gets"),
            McMsg::Set { .. } => Some("sets"),
            McMsg::Delete { .. } => Some("deletes"),
            _ => None,
        }
    }
}

impl Client for MemcacheService {
    type Op = Op;
    type Ret = McRet;
    const OPS_HELP: &'static str = "read | write";

    fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> McNode {
        let _ = cluster;
        McNode::Model(MemcacheActor::Web(WebCfg {
            ops: Vec::new(),
            memcache: Id::from(MEMCACHE),
            gutter: Id::from(GUTTER),
            db: Id::from(DATABASE),
            bug: None,
            tcp: Some(WebTcp {
                driver,
                retry: tuning.heartbeat..tuning.heartbeat * 2,
                fill: tuning.timeout.clone(),
                failover: tuning.heartbeat * 4,
            }),
        }))
    }

    fn invoke(seq: RequestId, op: Op) -> (RequestId, McMsg) {
        (seq, McMsg::Client(ClientMsg::Invoke { seq, op }))
    }

    fn returned(msg: McMsg) -> Option<(RequestId, McRet)> {
        match msg {
            McMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<Op, String> {
        match words {
            [w] if w == "read" => Ok(Op::Read),
            [w] if w == "write" => Ok(Op::Write),
            _ => Err(format!(
                "memcache takes read or write (of the one key), not {:?}",
                words.join(" ")
            )),
        }
    }

    fn show_op(op: &Op) -> String {
        match op {
            Op::Read => "read".into(),
            Op::Write => "write".into(),
        }
    }

    fn show(ret: &McRet) -> String {
        match ret {
            McRet::Read { version, pool, hit } => {
                let pool = match pool {
                    Pool::Memcache => "memcache",
                    Pool::Gutter => "gutter",
                };
                if *hit {
                    format!("v{version} (a hit in {pool})")
                } else {
                    format!("v{version} (the database's, after a miss in {pool})")
                }
            }
            McRet::Wrote { version } => format!("wrote v{version}"),
        }
    }
}

/// The kill plan: memcache's server fails (the gutter takes its gets), comes back empty, and
/// fails again (a gutter entry from the first failure must have expired by then).
const PLAN: &[PlanStep] = &[
    PlanStep {
        down: &[],
        what: "all up",
        expect: &[Expect::ReadsAnswered, Expect::WritesAcknowledged],
    },
    PlanStep {
        down: &[MEMCACHE],
        what: "memcache down: gets go to the gutter",
        expect: &[Expect::ReadsAnswered],
    },
    PlanStep {
        down: &[],
        what: "memcache back, empty",
        expect: &[Expect::ReadsAnswered, Expect::WritesAcknowledged],
    },
    PlanStep {
        down: &[MEMCACHE],
        what: "memcache down again",
        expect: &[Expect::ReadsAnswered],
    },
];

/// How much older than a returned write a gutter read may be: its TTL, and the time a web
/// server takes to set what it read (the gutter's TTL starts at the set).
/// memcached's clock ticks once a second, so an item may outlive its TTL by up to a second.
pub fn gutter_slack(tuning: &Tuning) -> f64 {
    f64::from(2 * GUTTER_TTL) + tuning.timeout.end.as_secs_f64() + 0.5
}

/// The history as `properties::freshness` reads it (and writes it as `jsonl` beside it).
pub fn freshness_ops(history: &History<Op, McRet>) -> Vec<properties::freshness::CacheOp> {
    use properties::freshness::{Access, CacheOp, Served};
    history
        .ops
        .iter()
        .filter_map(|op| {
            let Outcome::Ok(ret) = &op.outcome else {
                return None;
            };
            let access = match *ret {
                McRet::Read { version, pool, hit } => Access::Read {
                    version,
                    served: match (pool, hit) {
                        (_, false) => Served::Database,
                        (Pool::Memcache, true) => Served::Memcache,
                        (Pool::Gutter, true) => Served::Gutter,
                    },
                },
                McRet::Wrote { version } => Access::Write { version },
            };
            Some(CacheOp {
                process: op.process,
                access,
                invoked: op.invoked,
                returned: op.completed?,
            })
        })
        .collect()
}

/// Writes `history` in `properties::freshness`'s `jsonl` format (`checker history --model
/// cache` reads it).
pub fn write_jsonl(history: &History<Op, McRet>, tuning: &Tuning, file: &Path) -> io::Result<()> {
    let mut out = String::new();
    for e in &history.events {
        let op = &history.ops[e.op];
        let f = MemcacheService::show_op(&op.op);
        let line = match (e.completes, &op.outcome) {
            (false, _) => serde_json::json!({"process": op.process, "type": "invoke", "f": f,
                "time": op.invoked}),
            (true, Outcome::Ok(ret)) => {
                let time = op.completed.unwrap_or(op.invoked);
                match *ret {
                    McRet::Read { version, pool, hit } => {
                        let served = match (pool, hit) {
                            (_, false) => "database",
                            (Pool::Memcache, true) => "memcache",
                            (Pool::Gutter, true) => "gutter",
                        };
                        let mut line = serde_json::json!({"process": op.process, "type": "ok",
                            "f": f, "value": version, "served": served, "time": time});
                        if served == "gutter" {
                            line["ttl"] = serde_json::json!(gutter_slack(tuning));
                        }
                        line
                    }
                    McRet::Wrote { version } => serde_json::json!({"process": op.process,
                        "type": "ok", "f": f, "value": version, "time": time}),
                }
            }
            (true, outcome) => {
                let ty = if *outcome == Outcome::Fail {
                    "fail"
                } else {
                    "info"
                };
                serde_json::json!({"process": op.process, "type": ty, "f": f,
                    "time": op.completed.unwrap_or(op.invoked)})
            }
        };
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(file, out)
}

impl Jepsen for MemcacheService {
    /// Reads (two in three) and writes of the one key: a hot key under a write storm.
    fn workload(rng: &mut Rng, _keys: usize, _id: u64) -> Op {
        if rng.below(3) == 0 {
            Op::Write
        } else {
            Op::Read
        }
    }

    fn read_only(op: &Op) -> bool {
        *op == Op::Read
    }

    /// Freshness (`properties::freshness`): no read older than a write that returned before it
    /// began (its delete done), but a gutter read within the gutter's TTL.
    fn check(history: &History<Op, McRet>, dir: &Path) -> anyhow::Result<Checked> {
        let file = dir.join("history.jsonl");
        write_jsonl(history, &MemcacheService::jepsen_tuning(), &file)?;
        let ops = freshness_ops(history);
        let verdict =
            properties::freshness::check(&ops, gutter_slack(&MemcacheService::jepsen_tuning()));
        let by_index: BTreeMap<usize, &properties::freshness::CacheOp> =
            ops.iter().enumerate().collect();
        let failure = verdict.stale.first().map(|s| {
            format!(
                "{} stale reads of {}; the first: {s} (process {} read, process {} wrote)",
                verdict.stale.len(),
                verdict.reads,
                by_index[&s.read].process,
                by_index[&s.write].process
            )
        });
        Ok(Checked {
            verdict: if verdict.stale.is_empty() {
                "fresh".into()
            } else {
                "stale reads".into()
            },
            ok: verdict.stale.is_empty(),
            failure,
            file,
        })
    }

    fn kill_plan() -> &'static [PlanStep] {
        PLAN
    }

    fn nemeses() -> &'static [crate::jepsen::Nemesis] {
        &[crate::jepsen::Nemesis::Kill]
    }
}
