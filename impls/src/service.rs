//! The service registry: what the runtime needs to know to run a protocol's actors as TCP
//! nodes, call them from a client, and test them with faults.
//!
//! A protocol's TCP side is one [`Service`] (its server actors, its durable store, its seeded
//! bugs) and, when clients call it, a [`Client`] (its operations, the model's client actor that
//! runs them, how results read) and a [`Jepsen`] (a workload and the check of a recorded
//! history, by the same `properties` code its model uses). [`SERVICES`] holds one line per
//! protocol; the binaries `node`, `cluster`, `client`, `jepsen` look a protocol up there by name.
//!
//! Adding a protocol: implement the traits next to its runtime code (see `raft.rs`, `twopc.rs`),
//! then add one line to [`SERVICES`].

use std::fmt::Debug;
use std::hash::Hash;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use models::client::RequestId;
use serde::{de::DeserializeOwned, Serialize};
use stateright::actor::{Actor, Id};

use crate::config::ClusterConfig;
use crate::jepsen::{History, JepsenOpts, JepsenReport, Nemesis, PlanStep};
use crate::rng::Rng;
use crate::storage::Store;

/// The real durations and sizes a protocol's actors run with. Each protocol uses the ones it
/// has and says which in [`Service::TUNING_HELP`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// The protocol's main timeout, drawn from this range: Raft's randomised election timeout
    /// (§5.2), two-phase commit's participant and coordinator timeouts.
    pub timeout: Range<Duration>,
    /// A leader's heartbeat interval (Raft).
    pub heartbeat: Duration,
    /// Snapshot after this many applied entries; 0 never (Raft §7).
    pub snapshot_every: u64,
    /// Raft: keys and client sessions per InstallSnapshot chunk (Figure 13).
    pub snapshot_chunk: u64,
    /// GFS's chunk size in bytes (§2.5: 64 MB).
    pub chunk_bytes: u64,
    /// The shortest session timeout a ZooKeeper server grants (`minSessionTimeout`; 4 s, two of
    /// ZooKeeper's default 2-second ticks).
    pub session_min: Duration,
    /// The nBits of a Bitcoin chain's genesis block: its target, which never changes.
    pub pow_bits: u32,
    /// Raft: Gets go through the log like writes, instead of ReadIndex (thesis §6.4).
    pub log_reads: bool,
    /// Raft: Gets under the leader's lease when it holds one (thesis §6.4.1), else ReadIndex.
    pub lease_reads: bool,
    /// Raft: the clock drift, in percent, a leader allows for when it sizes its lease.
    pub drift_bound: u32,
    /// Raft: the initial configuration is the first N nodes (`None`: all); the others wait to
    /// be added (`cluster add N`, thesis §4).
    pub members: Option<usize>,
    /// Raft: the leader sends AppendEntries before its own write of the entries is durable,
    /// writing its log in parallel with replication (thesis §10.2.1); it counts itself toward
    /// a commit only once its write is done.
    pub parallel_write: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            timeout: Duration::from_millis(300)..Duration::from_millis(600),
            heartbeat: Duration::from_millis(50),
            snapshot_every: 1000,
            snapshot_chunk: 4096,
            chunk_bytes: 64 << 20,
            session_min: Duration::from_millis(4_000),
            pow_bits: models::bitcoin::node::DEFAULT_BITS,
            log_reads: false,
            lease_reads: false,
            drift_bound: 10,
            members: None,
            parallel_write: true,
        }
    }
}

/// Why a node cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("node {0} is not in the cluster file (its ids: {1})")]
    UnknownId(usize, String),
    #[error("{0}")]
    Invalid(String),
}

impl ServiceError {
    /// An error unless `id` is one of `cluster`'s nodes.
    pub fn check_member(cluster: &ClusterConfig, id: Id) -> Result<(), Self> {
        if cluster.nodes.contains_key(&id) {
            Ok(())
        } else {
            Err(Self::unknown_id(cluster, id))
        }
    }

    /// `id` is not one of `cluster`'s nodes.
    pub fn unknown_id(cluster: &ClusterConfig, id: Id) -> Self {
        let ids: Vec<String> = cluster
            .nodes
            .keys()
            .map(|i| usize::from(*i).to_string())
            .collect();
        ServiceError::UnknownId(usize::from(id), ids.join(", "))
    }
}

/// A protocol's server side over TCP.
pub trait Service: 'static {
    /// The model's actor: servers (and, for a [`Client`], the client) are values of it.
    type Actor: Actor<Msg = Self::Msg, State = Self::State, Timer: Hash + Eq + Send>
        + Send
        + 'static;
    type Msg: Clone + Debug + Serialize + DeserializeOwned + Send + 'static;
    type State: Clone + Debug + Send + 'static;
    /// Where a server keeps its actor's storage.
    type Store: Store<<Self::Actor as Actor>::Storage> + Send + 'static;

    /// The registry name: `node NAME`, `cluster NAME`, ...
    const NAME: &'static str;
    /// One line for `--help` listings.
    const SUMMARY: &'static str;

    /// Which [`Tuning`] fields the protocol uses, for `--help`.
    const TUNING_HELP: &'static str;

    /// The model's seeded bugs that run on real nodes (`node --bug`, `jepsen --bug`).
    fn bugs() -> Vec<&'static str>;

    /// The tuning a local cluster runs with unless told otherwise.
    fn tuning() -> Tuning {
        Tuning::default()
    }

    /// The tuning `jepsen` runs with: faster, so that a short test sees many faults.
    fn jepsen_tuning() -> Tuning {
        Self::tuning()
    }

    /// Whether a server accepts connections from ids not in the cluster file (a MapReduce
    /// coordinator hears from workers it has never heard of).
    const ACCEPT_UNKNOWN: bool = false;

    /// Whether each server also has a data port (the cluster file's `[data]` table): GFS's
    /// chunkservers take pushed data and serve reads there (§3.2).
    const DATA_PORTS: bool = false;

    /// The actor of node `id` of `cluster`, with `bug` (one of [`Service::bugs`]) seeded;
    /// `data_dir` is its data directory (where a service may keep its job description).
    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        data_dir: &Path,
    ) -> Result<Self::Actor, ServiceError>;

    /// A server's durable store in `dir`.
    fn store(dir: &Path) -> Self::Store;

    /// A server's role in words (`leader of term 3`), logged when it changes and shown by
    /// `cluster status`; `None` for a protocol whose servers have no roles.
    /// The kind of a message a server handles, counted by the node for an administrator
    /// ([`crate::node::query_counts`], `cluster status`, benchmarks); `None`: not counted.
    fn kind(_msg: &Self::Msg) -> Option<&'static str> {
        None
    }

    fn describe(_state: &Self::State) -> Option<String> {
        None
    }

    /// Configuration changes an administrator may ask for (`cluster add N`, `cluster remove
    /// N`); `None`: the protocol has none.
    fn membership() -> Option<crate::node::Membership<Self::Msg>> {
        None
    }

    /// The messages a server may send before its batch's save ([`crate::node::Hooks::early`]),
    /// under `tuning`; `None` by default: every message waits for the save.
    fn early(_tuning: &Tuning) -> Option<crate::node::Early<Self::Actor>> {
        None
    }

    /// The message a server gives itself when a connection with peer `peer` ends (a process
    /// that died closes its connections at once); `None` by default: timeouts decide.
    fn peer_closed(_peer: Id) -> Option<Self::Msg> {
        None
    }

    /// Takes the node's [`crate::node::Inbox`] once it runs, for a server whose own threads
    /// hand its actor work (a ZooKeeper server's client port); `None` by default.
    fn inbox(_actor: &Self::Actor) -> Option<crate::node::GiveInbox<Self::Msg>> {
        None
    }

    /// The number of nodes the protocol always runs on (Aurora: a writer and six segments):
    /// `cluster` starts that many unless told otherwise, `jepsen` whatever `--nodes` says;
    /// `None` (any number) by default.
    fn nodes() -> Option<usize> {
        None
    }

    /// Whether a server's work is done, so that its process may exit: `Some(grace)` once it
    /// is, to exit after `grace` more (at once for `Some(ZERO)`); `None` for a server that runs
    /// until it is killed.
    fn finished(_state: &Self::State) -> Option<Duration> {
        None
    }
}

/// A protocol that clients call: its operations, and the model's own client actor that runs
/// them over TCP, driven through the client envelope (`models::client`).
pub trait Client: Service {
    type Op: Clone + Debug + Send + 'static;
    type Ret: Clone + Debug + Send + 'static;
    /// The operations `client NAME` takes, for `--help`: `put KEY VALUE | get KEY | ...`.
    const OPS_HELP: &'static str;

    /// The model's client actor for `cluster`, driven by `driver`.
    fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> Self::Actor;
    /// The client actor of client `me` (its id in the cluster): by default [`Client::client`];
    /// a protocol whose clients differ by id overrides it (COPS attaches each client to one
    /// data centre).
    fn client_for(cluster: &ClusterConfig, driver: Id, tuning: &Tuning, me: Id) -> Self::Actor {
        let _ = me;
        Self::client(cluster, driver, tuning)
    }
    /// The id a one-off client (`client NAME`) takes: by default a fresh random one; a
    /// protocol whose servers answer one well-known client names it (VM-FT's external world).
    fn client_id() -> Option<usize> {
        None
    }
    /// The driver's message that invokes `op` as the driver's request `seq`, and the request id
    /// the result will carry (`seq`, or an id the operation names itself, such as a transaction
    /// id unique across clients).
    fn invoke(seq: RequestId, op: Self::Op) -> (RequestId, Self::Msg);
    /// The result in a message the client actor sent its driver.
    fn returned(msg: Self::Msg) -> Option<(RequestId, Self::Ret)>;
    /// An operation from the command line's words (`put k v`).
    fn parse_op(words: &[String]) -> Result<Self::Op, String>;
    /// Whether a parsed operation makes sense for `cluster` (a node it names is there), checked
    /// before `client` sends it; by default every operation does.
    fn check_op(cluster: &ClusterConfig, op: &Self::Op) -> Result<(), String> {
        let _ = (cluster, op);
        Ok(())
    }
    /// An operation as a history names it: `get k0`.
    fn show_op(op: &Self::Op) -> String;
    /// A result as `client` prints it.
    fn show(ret: &Self::Ret) -> String;
}

/// A protocol that `jepsen` tests: a workload, and the check of the recorded history.
pub trait Jepsen: Client {
    /// The next operation of a workload over `keys` keys; `id` is unique in the run (for
    /// unique values or transaction ids).
    fn workload(rng: &mut Rng, keys: usize, id: u64) -> Self::Op;
    /// Whether `op` has no effect: a read that times out failed, where a write is indefinite.
    fn read_only(op: &Self::Op) -> bool;
    /// Operations each client runs after the workload, once every client has stopped and the
    /// nodes have had [`FINAL_SETTLE`] to settle (Jepsen's final reads), with
    /// [`crate::jepsen::FINAL_OPS`] set in their ids; none by default.
    fn final_ops(keys: usize) -> Vec<Self::Op> {
        let _ = keys;
        Vec::new()
    }
    /// Writes the history to `dir` in the protocol's format and checks it with `properties`.
    fn check(history: &History<Self::Op, Self::Ret>, dir: &Path) -> anyhow::Result<Checked>;

    /// For a protocol whose nodes keep no state on disk (chain replication: a node that comes
    /// back has lost its state and copies it from a live one), `Some(spared)`: the nemesis
    /// kills or cuts off one node at a time, never node `spared` (the master, which the papers
    /// replicate), and only while another node serves. `None`: any nodes, up to all of them.
    /// Either way a killed node is restarted when the fault heals.
    fn one_at_a_time() -> Option<Id> {
        None
    }

    /// A fixed schedule of kills that replaces the random `kill` nemesis, each step with what
    /// it expects of the operations during it (Aurora: a zone down and writes go on; a zone and
    /// one more down and writes stop while reads go on); none by default.
    fn kill_plan() -> &'static [PlanStep] {
        &[]
    }

    /// The faults `jepsen` injects unless told otherwise; it refuses others but `pause`, which
    /// every protocol takes ([`accepts_nemesis`]).
    fn nemeses() -> &'static [Nemesis] {
        &[
            Nemesis::Kill,
            Nemesis::Partition,
            Nemesis::Loss,
            Nemesis::Delay,
        ]
    }
}

/// How long the nodes are left alone before the final operations ([`Jepsen::final_ops`]).
pub const FINAL_SETTLE: Duration = Duration::from_secs(1);

/// What a history check found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Checked {
    /// `linearizable`, `not linearizable`, `serializable`, `not serializable`, or `unknown`.
    pub verdict: String,
    /// Whether the history passed.
    pub ok: bool,
    /// Why it did not, naming the operations.
    pub failure: Option<String>,
    /// Where the history was written.
    pub file: std::path::PathBuf,
}

/// A registered protocol, its types erased so that the binaries can hold a list of them.
pub trait Protocol: Sync {
    fn name(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn bugs(&self) -> Vec<&'static str>;
    fn tuning(&self) -> Tuning;
    fn jepsen_tuning(&self) -> Tuning;
    fn tuning_help(&self) -> &'static str;
    /// Whether its servers have data ports ([`Service::DATA_PORTS`]).
    fn data_ports(&self) -> bool;
    /// The operations `client` takes; `None` for a protocol without clients.
    fn ops_help(&self) -> Option<&'static str>;
    /// Runs node `args.id` until it is killed (`node NAME`).
    fn run_node(&self, args: &NodeArgs) -> anyhow::Result<()>;
    /// Runs one operation (`client NAME WORDS`) and returns its result as printed.
    fn call(
        &self,
        cluster: &ClusterConfig,
        words: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Result<String, crate::client::Indefinite>>;
    /// The faults `jepsen` injects by default and accepts (none for a protocol without clients).
    fn nemeses(&self) -> &'static [Nemesis];
    /// The number of nodes the protocol always runs on ([`Service::nodes`]).
    fn nodes(&self) -> Option<usize>;
    /// Runs a Jepsen-style test (`jepsen NAME`).
    fn jepsen(&self, opts: &JepsenOpts) -> anyhow::Result<JepsenReport>;
}

/// The [`Protocol`] of a [`Service`] without clients.
pub struct ServerOnly<S>(std::marker::PhantomData<fn() -> S>);

impl<S> ServerOnly<S> {
    pub const NEW: Self = ServerOnly(std::marker::PhantomData);
}

/// The [`Protocol`] of a service with clients and a Jepsen test.
pub struct Full<S>(std::marker::PhantomData<fn() -> S>);

impl<S> Full<S> {
    pub const NEW: Self = Full(std::marker::PhantomData);
}

macro_rules! service_basics {
    () => {
        fn name(&self) -> &'static str {
            S::NAME
        }
        fn summary(&self) -> &'static str {
            S::SUMMARY
        }
        fn bugs(&self) -> Vec<&'static str> {
            S::bugs()
        }
        fn tuning(&self) -> Tuning {
            S::tuning()
        }
        fn jepsen_tuning(&self) -> Tuning {
            S::jepsen_tuning()
        }
        fn tuning_help(&self) -> &'static str {
            S::TUNING_HELP
        }
        fn data_ports(&self) -> bool {
            S::DATA_PORTS
        }
        fn run_node(&self, args: &NodeArgs) -> anyhow::Result<()> {
            serve::<S>(args)
        }
        fn nodes(&self) -> Option<usize> {
            S::nodes()
        }
    };
}

impl<S> Protocol for ServerOnly<S>
where
    S: Service,
    <S::Actor as Actor>::Timer: Hash + Eq,
{
    service_basics!();

    fn ops_help(&self) -> Option<&'static str> {
        None
    }

    fn call(
        &self,
        _: &ClusterConfig,
        _: &[String],
        _: Duration,
    ) -> anyhow::Result<Result<String, crate::client::Indefinite>> {
        anyhow::bail!("{} has no client operations", S::NAME)
    }

    fn jepsen(&self, _: &JepsenOpts) -> anyhow::Result<JepsenReport> {
        anyhow::bail!("{} has no Jepsen test", S::NAME)
    }

    fn nemeses(&self) -> &'static [Nemesis] {
        &[]
    }
}

impl<S> Protocol for Full<S>
where
    S: Jepsen,
    <S::Actor as Actor>::Timer: Hash + Eq,
{
    service_basics!();

    fn ops_help(&self) -> Option<&'static str> {
        Some(S::OPS_HELP)
    }

    fn call(
        &self,
        cluster: &ClusterConfig,
        words: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Result<String, crate::client::Indefinite>> {
        call_once::<S>(cluster, words, timeout)
    }

    fn jepsen(&self, opts: &JepsenOpts) -> anyhow::Result<JepsenReport> {
        check_nemeses(S::NAME, S::nemeses(), &opts.nemesis)?;
        match S::nodes() {
            Some(nodes) if nodes != opts.nodes => crate::jepsen::run::<S>(&JepsenOpts {
                nodes,
                ..opts.clone()
            }),
            _ => crate::jepsen::run::<S>(opts),
        }
    }

    fn nemeses(&self) -> &'static [Nemesis] {
        S::nemeses()
    }
}

/// Whether a protocol whose default faults are `defaults` takes `n`: its defaults, and `pause`,
/// which every protocol takes (a paused node is one that is slow to answer, which any protocol
/// must bear).
pub fn accepts_nemesis(defaults: &[Nemesis], n: Nemesis) -> bool {
    defaults.contains(&n) || n == Nemesis::Pause
}

/// An error naming the first of `asked` that protocol `name` does not take.
pub fn check_nemeses(name: &str, defaults: &[Nemesis], asked: &[Nemesis]) -> anyhow::Result<()> {
    if let Some(n) = asked.iter().find(|n| !accepts_nemesis(defaults, **n)) {
        let mut names: Vec<String> = defaults.iter().map(|n| n.to_string()).collect();
        if !defaults.contains(&Nemesis::Pause) {
            names.push(Nemesis::Pause.to_string());
        }
        anyhow::bail!(
            "{name} does not take the nemesis '{n}' (it takes {})",
            names.join(", ")
        );
    }
    Ok(())
}

/// Runs one operation, from the command line's words, by a fresh client of protocol `S`.
fn call_once<S: Client>(
    cluster: &ClusterConfig,
    words: &[String],
    timeout: Duration,
) -> anyhow::Result<Result<String, crate::client::Indefinite>>
where
    <S::Actor as Actor>::Timer: Hash + Eq,
{
    let op = S::parse_op(words).map_err(anyhow::Error::msg)?;
    S::check_op(cluster, &op).map_err(anyhow::Error::msg)?;
    let mut client = crate::client::Driven::<S>::start(cluster, &S::tuning(), S::client_id())?;
    Ok(client.call(op, timeout).map(|ret| S::show(&ret)))
}

/// The [`Protocol`] of a service with clients but no Jepsen test (GFS: its histories are
/// checked by reading the file back, `gfs fsck` and the append test).
pub struct WithClients<S>(std::marker::PhantomData<fn() -> S>);

impl<S> WithClients<S> {
    pub const NEW: Self = WithClients(std::marker::PhantomData);
}

impl<S> Protocol for WithClients<S>
where
    S: Client,
    <S::Actor as Actor>::Timer: Hash + Eq,
{
    service_basics!();

    fn ops_help(&self) -> Option<&'static str> {
        Some(S::OPS_HELP)
    }

    fn call(
        &self,
        cluster: &ClusterConfig,
        words: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Result<String, crate::client::Indefinite>> {
        call_once::<S>(cluster, words, timeout)
    }

    fn jepsen(&self, _: &JepsenOpts) -> anyhow::Result<JepsenReport> {
        anyhow::bail!("{} has no Jepsen test", S::NAME)
    }

    fn nemeses(&self) -> &'static [Nemesis] {
        &[]
    }
}

/// The registered protocols, in the order `--help` lists them.
pub static SERVICES: &[&dyn Protocol] = &[
    &Full::<crate::raft::RaftService>::NEW,
    &Full::<crate::twopc::TwoPcService>::NEW,
    &Full::<crate::chain::ChainService>::NEW,
    &Full::<crate::chain::CraqService>::NEW,
    &Full::<crate::cops::CopsService>::NEW,
    &ServerOnly::<crate::mapreduce::CoordinatorService>::NEW,
    &WithClients::<crate::gfs::GfsService>::NEW,
    &WithClients::<crate::vmft::VmftService>::NEW,
    &Full::<crate::aurora::AuroraService>::NEW,
    &WithClients::<crate::aurora::MirroredService>::NEW,
    &Full::<crate::memcache::MemcacheService>::NEW,
    &WithClients::<crate::frangipani::FrangipaniService>::NEW,
    &WithClients::<crate::bitcoin::BitcoinService>::NEW,
    &WithClients::<crate::blockstack::BlockstackService>::NEW,
    &crate::zk::jepsen::ZkProtocol,
];

/// How `node NAME` runs a server.
#[derive(Clone, Debug)]
pub struct NodeArgs {
    /// The cluster file.
    pub config: std::path::PathBuf,
    pub id: usize,
    pub data_dir: std::path::PathBuf,
    pub tuning: Tuning,
    pub bug: Option<&'static str>,
    /// Take fault commands and status queries from administrator connections.
    pub admin: bool,
    /// The seed of the node's random draws; `None`: from the environment or the clock (logged).
    pub seed: Option<u64>,
    /// The most messages a second the node handles (`NodeOptions::capacity`).
    pub capacity: Option<u32>,
    /// `--tls-dir` and `--insecure`, over the cluster file's choice.
    pub tls: crate::tls::TlsFlags,
}

/// Runs server `args.id` of protocol `S` until the process is killed (or its work is
/// [`Service::finished`]): its actor from the cluster file, its store in its data directory,
/// clients accepted.
pub fn serve<S>(args: &NodeArgs) -> anyhow::Result<()>
where
    S: Service,
    <S::Actor as Actor>::Timer: Hash + Eq,
{
    use anyhow::Context;
    let mut cluster = ClusterConfig::load(&args.config)?;
    args.tls.apply(&mut cluster);
    let id = Id::from(args.id);
    let actor = S::server(&cluster, id, &args.tuning, args.bug, &args.data_dir)?;
    let tls = cluster.tls(crate::tls::Who::Node(args.id))?;
    if tls.is_none() {
        tracing::warn!("plaintext (--insecure, or `insecure = true` in the cluster file): no authentication, any process that reaches this node may speak for a peer, a client or an administrator");
    }
    if let Some(bug) = args.bug {
        tracing::warn!(bug, "running with a seeded bug");
    }
    let addr = cluster.nodes[&id];
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let mut opts = crate::node::NodeOptions::new(id);
    opts.listen = Some(std::sync::Arc::new(listener));
    opts.peers = cluster.nodes.clone();
    opts.peers.remove(&id);
    opts.accept_clients = true;
    opts.accept_admin = args.admin;
    opts.accept_unknown = S::ACCEPT_UNKNOWN;
    opts.seed = args.seed;
    opts.capacity = args.capacity;
    opts.tls = tls;
    tracing::info!(protocol = S::NAME, id = args.id, %addr, "serving");
    let finished_at = std::sync::Mutex::new(None::<std::time::Instant>);
    let hooks = crate::node::Hooks {
        describe: Some(S::describe),
        kind: Some(S::kind),
        inbox: S::inbox(&actor),
        peer_closed: Some(S::peer_closed),
        membership: S::membership(),
        early: S::early(&args.tuning),
    };
    crate::node::run_hooked(
        actor,
        opts,
        Some(S::store(&args.data_dir)),
        crate::node::Shutdown::new(),
        |s| {
            let Some(grace) = S::finished(s) else {
                return false;
            };
            let mut at = finished_at.lock().expect("lock");
            at.get_or_insert_with(std::time::Instant::now).elapsed() >= grace
        },
        hooks,
    )?;
    Ok(())
}

/// Looks a protocol up by name; the error names the registered ones.
pub fn find(name: &str) -> Result<&'static dyn Protocol, String> {
    SERVICES
        .iter()
        .copied()
        .find(|p| p.name() == name)
        .ok_or_else(|| format!("unknown protocol '{name}' (known: {})", names().join(", ")))
}

/// The registered protocols' names.
pub fn names() -> Vec<&'static str> {
    SERVICES.iter().map(|p| p.name()).collect()
}

/// Parses a seeded bug's name for protocol `p`; the error names the bugs that run on nodes.
pub fn parse_bug(p: &dyn Protocol, name: &str) -> Result<&'static str, String> {
    p.bugs().into_iter().find(|b| *b == name).ok_or_else(|| {
        if p.bugs().is_empty() {
            format!("{} has no seeded bugs that run on nodes", p.name())
        } else {
            format!(
                "unknown bug '{name}' for {} (its bugs: {})",
                p.name(),
                p.bugs().join(", ")
            )
        }
    })
}

/// Which registered protocols a binary's `--help` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Every protocol, with its summary (`node`, `cluster`).
    All,
    /// Those with a Jepsen test, with their summaries (`jepsen`).
    Tested,
    /// Those with clients, with their operations (`client`).
    Operations,
}

/// The registered protocols, for a binary's `--help`.
pub fn protocols_help(listing: Listing) -> String {
    let mut s = String::from(match listing {
        Listing::All => "Protocols:\n",
        Listing::Tested => "Protocols with a Jepsen test:\n",
        Listing::Operations => "Protocols and their operations:\n",
    });
    for p in SERVICES {
        let text = match (listing, p.ops_help()) {
            (Listing::All, _) => p.summary(),
            (Listing::Tested, _) if !p.nemeses().is_empty() => p.summary(),
            (Listing::Operations, Some(ops)) => ops,
            _ => continue,
        };
        s.push_str(&format!("  {:<10} {text}\n", p.name()));
    }
    s
}

/// Parses an optional `--bug NAME` for protocol `p`.
pub fn parse_bug_flag(
    p: &dyn Protocol,
    name: Option<&str>,
) -> anyhow::Result<Option<&'static str>> {
    name.map(|b| parse_bug(p, b))
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// Parses compact nBits in hex (`0x1f07ffff` or `1f07ffff`).
pub fn parse_bits(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bits = u32::from_str_radix(digits, 16)
        .map_err(|_| format!("'{s}' is not nBits in hex (like 0x1f07ffff)"))?;
    let c = models::bitcoin::consensus::compact_to_target(bits);
    // At most about 2^24 hashes a block: the genesis block is mined when a node starts.
    let easiest = !models::bitcoin::consensus::U256::ZERO >> 24;
    if c.negative || c.overflow || c.target.is_zero() || c.target < easiest {
        return Err(format!(
            "nBits {s}: need a positive target of at least 2^232 (a block in at most about 2^24 hashes)"
        ));
    }
    Ok(bits)
}

/// Parses `LOW-HIGH` milliseconds (`300-600`) or one number of milliseconds.
pub fn parse_ms_range(s: &str) -> Result<Range<Duration>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("'{s}' is not LOW-HIGH milliseconds"))
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(s)?, num(s)?),
    };
    if lo == 0 || hi < lo {
        return Err(format!("'{s}': need 0 < LOW <= HIGH"));
    }
    Ok(Duration::from_millis(lo)..Duration::from_millis(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_ranges_parse_or_explain() {
        assert_eq!(
            parse_ms_range("150-300").unwrap(),
            Duration::from_millis(150)..Duration::from_millis(300)
        );
        assert_eq!(
            parse_ms_range("50").unwrap().start,
            Duration::from_millis(50)
        );
        assert!(parse_ms_range("300-150").is_err());
        assert!(parse_ms_range("0").is_err());
        assert!(parse_ms_range("soon").unwrap_err().contains("milliseconds"));
    }

    #[test]
    fn protocols_are_found_by_name_and_unknown_ones_are_named() {
        assert_eq!(find("raft").unwrap().name(), "raft");
        let e = find("paxos").err().unwrap();
        assert!(e.contains("raft"), "{e}");
        let raft = find("raft").unwrap();
        assert_eq!(
            parse_bug(raft, "read-index-without-heartbeat"),
            Ok("read-index-without-heartbeat")
        );
        assert!(parse_bug(raft, "nope")
            .unwrap_err()
            .contains("read-index-without-heartbeat"));
    }
}
