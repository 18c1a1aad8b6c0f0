//! Spark's driver and workers as processes (§4, §5.1): the scheduler is the model's driver
//! actor (`models::spark::DriverCfg`, the very code `checker spark` checks) in a node of its
//! own; the workers run tasks on real threads, keep map outputs in local files and serve them
//! to other workers from a data port.
//!
//! What the runtime adds around the model's driver, and nothing else:
//! - a program may run many jobs (one an action). Each job's lineage is cut into a [`Plan`]
//!   by the RDD layer; the driver node runs it with a fresh `DriverState` whose map stages
//!   start from the map outputs still registered from earlier jobs (Spark's skipped stages),
//!   with task attempts numbered on from theirs;
//! - a `LaunchTask` leaves wrapped in a [`Wire::Task`] with what the worker needs to rebuild
//!   the task's lineage: the program's arguments and the results of the earlier jobs
//!   ([`Context::replay`]);
//! - workers send `Heartbeat`s; the driver's `WorkerLost` timer is the model's.
//!
//! The cluster file names the driver (node 0) and the workers (nodes 1..), each worker with a
//! data port in its `[data]` table.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use models::spark::{DriverCfg, DriverOut, DriverState, SparkMsg, SparkTimer, StageOutput};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use super::apps::Program;
use super::rdd::{
    Block, Buckets, Context, Executor, FetchFailed, JobRunner, Plan, Shared, TaskError,
};
use crate::config::ClusterConfig;
use crate::node::Inbox;

/// The driver's id in the cluster file.
pub const DRIVER: usize = 0;

/// Encoded records (a result partition), carried as a hex string in a frame's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Blob(pub Arc<[u8]>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in self.0.iter() {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
        s.serialize_str(&out)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<str>>::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(serde::de::Error::custom("a blob is lowercase hex")),
        };
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom(
                "a blob has an even number of digits",
            ));
        }
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len() / 2);
        for pair in bytes.chunks(2) {
            out.push(digit(pair[0])? << 4 | digit(pair[1])?);
        }
        Ok(Blob(out.into()))
    }
}

/// A run of a program: a number that tells it from other runs on the same workers, and the
/// program's arguments (`pagerank --edges FILE ...`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppRun {
    pub run: u64,
    pub args: Vec<String>,
}

/// The results of a program's jobs so far, one list of result partitions a job.
pub type History = Arc<Vec<Vec<Blob>>>;

/// What driver and workers say to each other (and to themselves).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Wire {
    /// Driver to worker: the model's `LaunchTask`, with what the worker needs to rebuild the
    /// task's lineage. `key`: the stage's shuffle (`u64::MAX`: the result stage).
    Task {
        app: Arc<AppRun>,
        history: History,
        key: u64,
        launch: SparkMsg<Blob>,
    },
    /// The model's other messages (worker to driver), and a finished task's report (from a
    /// worker's task thread to its own node, which sends it on).
    Spark(SparkMsg<Blob>),
    /// From the driver's program to its own node: run this job.
    Submit { plan: Plan, keys: Vec<u64> },
    /// Worker to driver, every little while: the model's `Heartbeat`, and the tasks the
    /// worker holds (queued or running, not yet reported). The driver sends a task again that
    /// it has seen missing from two of them: a launch or a report lost with a connection (the
    /// model's links lose nothing between live actors; this makes the runtime's so).
    Beat { holding: Vec<TaskId> },
}

/// A task as the driver launched it: (run, job, stage, partition, attempt).
pub type TaskId = (u64, usize, u16, u16, u8);

/// The nodes' timers: the model's, and a worker's heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeTimer {
    Spark(SparkTimer),
    Beat,
}

/// How a job ended: its result partitions, or why it was aborted.
pub type Outcome = Result<Vec<Blob>, String>;

/// The driver node: the model's driver actor, one job at a time.
pub struct DriverNode {
    pub workers: Vec<Id>,
    pub lost_after: Duration,
    pub max_failures: u8,
    pub app: Arc<AppRun>,
    outcomes: Mutex<mpsc::Sender<Outcome>>,
    /// Set once every worker of the cluster file has registered.
    all_registered: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

/// What the driver has done, for its report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DriverStats {
    pub jobs: u64,
    pub tasks: u64,
    pub fetch_failures: u64,
    pub workers_lost: u64,
    /// Map tasks launched for an output that had been registered before (§5.1).
    pub resubmitted: u64,
}

/// The driver node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DriverNodeState {
    /// The model's driver for the current job (or the last one).
    pub cfg: DriverCfg,
    pub sched: DriverState<Blob>,
    pub keys: Vec<u64>,
    pub running: bool,
    pub history: History,
    /// Map outputs registered by earlier jobs: shuffle → each map output's worker and attempt.
    pub registry: BTreeMap<u64, Vec<Option<(Id, u8)>>>,
    /// Each shuffle's map outputs ever registered, and launches so far.
    pub attempts: BTreeMap<u64, Vec<u8>>,
    pub ever: BTreeMap<u64, Vec<bool>>,
    /// Running tasks missing from their worker's beats: how many beats so far.
    pub missing: BTreeMap<(u16, u16, u8), u8>,
    pub stats: DriverStats,
}

/// The model driver's sends and timers, as the driver node's.
struct Adapter<'a> {
    o: &'a mut Out<DriverNode>,
    app: &'a Arc<AppRun>,
    history: &'a History,
    keys: &'a [u64],
    launched: Vec<(u16, u16)>,
}

impl DriverOut<Blob> for Adapter<'_> {
    fn send(&mut self, to: Id, msg: SparkMsg<Blob>) {
        match msg {
            SparkMsg::LaunchTask {
                stage, partition, ..
            } => {
                self.launched.push((stage, partition));
                self.o.send(
                    to,
                    Wire::Task {
                        app: self.app.clone(),
                        history: self.history.clone(),
                        key: self.keys[usize::from(stage)],
                        launch: msg,
                    },
                );
            }
            other => self.o.send(to, Wire::Spark(other)),
        }
    }

    fn set_timer(&mut self, timer: SparkTimer, after: Duration) {
        self.o.set_timer(NodeTimer::Spark(timer), after..after);
    }
}

impl DriverNode {
    pub fn new(
        cluster: &ClusterConfig,
        app: AppRun,
        lost_after: Duration,
        max_failures: u8,
    ) -> (DriverNode, mpsc::Receiver<Outcome>) {
        let (tx, rx) = mpsc::channel();
        let workers = cluster
            .nodes
            .keys()
            .copied()
            .filter(|id| usize::from(*id) != DRIVER)
            .collect();
        let node = DriverNode {
            workers,
            lost_after,
            max_failures,
            app: Arc::new(app),
            outcomes: Mutex::new(tx),
            all_registered: Arc::default(),
        };
        (node, rx)
    }

    /// Runs `step` on the model's driver, then keeps the registry in step with it and ends
    /// the job if it is over.
    fn step(
        &self,
        st: &mut DriverNodeState,
        o: &mut Out<DriverNode>,
        step: impl FnOnce(&DriverCfg, &mut DriverState<Blob>, &mut Adapter),
    ) {
        let mut a = Adapter {
            o,
            app: &self.app,
            history: &st.history,
            keys: &st.keys,
            launched: Vec::new(),
        };
        step(&st.cfg, &mut st.sched, &mut a);
        for (stage, p) in std::mem::take(&mut a.launched) {
            st.stats.tasks += 1;
            let key = st.keys[usize::from(stage)];
            if let Some(ever) = st.ever.get(&key) {
                if ever.get(usize::from(p)) == Some(&true) {
                    st.stats.resubmitted += 1;
                }
            }
        }
        // The registry follows the current job's map stages.
        for (i, def) in st.cfg.plan.stages.iter().enumerate() {
            if def.output != StageOutput::Shuffle {
                continue;
            }
            let key = st.keys[i];
            let locs: Vec<Option<(Id, u8)>> = (0..def.partitions)
                .map(|m| DriverCfg::location(&st.sched, i as u16, m))
                .collect();
            let ever = st
                .ever
                .entry(key)
                .or_insert_with(|| vec![false; locs.len()]);
            for (e, l) in ever.iter_mut().zip(&locs) {
                *e |= l.is_some();
            }
            st.registry.insert(key, locs);
            st.attempts.insert(key, st.sched.attempts[i].clone());
        }
        if st.running && (st.sched.done() || st.sched.aborted) {
            st.running = false;
            let outcome = if st.sched.aborted {
                let (stage, p) = st
                    .sched
                    .failures
                    .iter()
                    .enumerate()
                    .find_map(|(s, f)| {
                        f.iter()
                            .position(|n| *n >= self.max_failures)
                            .map(|p| (s, p))
                    })
                    .unwrap_or((0, 0));
                Err(format!(
                    "task {p} of stage {stage} failed {} times (the workers' logs say why)",
                    self.max_failures
                ))
            } else {
                let parts: Vec<Blob> = st.sched.results.iter().flatten().cloned().collect();
                let mut h = (*st.history).clone();
                h.push(parts.clone());
                st.history = Arc::new(h);
                Ok(parts)
            };
            let _ = self.outcomes.lock().expect("outcomes").send(outcome);
        }
    }

    /// Sends again the tasks running on `w` that two of its beats in a row did not list.
    fn resend_missing(
        &self,
        st: &mut DriverNodeState,
        w: Id,
        holding: &[TaskId],
        o: &mut Out<DriverNode>,
    ) {
        if !st.running {
            return;
        }
        let job = st.history.len();
        let mut still = BTreeMap::new();
        for (si, tasks) in st.sched.tasks.iter().enumerate() {
            for (p, t) in tasks.iter().enumerate() {
                let models::spark::TaskState::Running { worker, attempt } = *t else {
                    continue;
                };
                let task = (si as u16, p as u16, attempt);
                if worker != w {
                    if let Some(n) = st.missing.get(&task) {
                        still.insert(task, *n);
                    }
                    continue;
                }
                let id = (self.app.run, job, task.0, task.1, attempt);
                if holding.contains(&id) {
                    continue;
                }
                let n = st.missing.get(&task).copied().unwrap_or(0) + 1;
                if n < 2 {
                    still.insert(task, n);
                    continue;
                }
                tracing::info!(
                    worker = usize::from(w),
                    stage = task.0,
                    partition = task.1,
                    "task missing from its worker: sent again"
                );
                let parents = st.cfg.parents(&st.sched, task.0);
                o.send(
                    w,
                    Wire::Task {
                        app: self.app.clone(),
                        history: st.history.clone(),
                        key: st.keys[si],
                        launch: SparkMsg::LaunchTask {
                            stage: task.0,
                            partition: task.1,
                            attempt,
                            parents,
                        },
                    },
                );
            }
        }
        st.missing = still;
    }

    fn note_registered(&self, st: &DriverNodeState) {
        if st.sched.lost.is_empty() {
            let (done, cv) = &*self.all_registered;
            let mut done = done.lock().expect("registered");
            if !*done {
                *done = true;
                cv.notify_all();
            }
        }
    }

    /// Worker `w` is lost or back empty: what it held is gone from every job's registry.
    fn forget(st: &mut DriverNodeState, w: Id) {
        for locs in st.registry.values_mut() {
            for l in locs.iter_mut() {
                if l.is_some_and(|(at, _)| at == w) {
                    *l = None;
                }
            }
        }
    }

    fn submit(
        &self,
        st: &mut DriverNodeState,
        plan: Plan,
        keys: Vec<u64>,
        o: &mut Out<DriverNode>,
    ) {
        if st.running || keys.len() != plan.stages.len() {
            let _ = self
                .outcomes
                .lock()
                .expect("outcomes")
                .send(Err("a job was submitted while another ran".into()));
            return;
        }
        let cfg = DriverCfg {
            plan,
            workers: self.workers.clone(),
            max_failures: self.max_failures,
            bug: None,
            lost_after: self.lost_after,
        };
        let mut sched: DriverState<Blob> = cfg.initial();
        sched.lost = st.sched.lost.clone();
        st.missing.clear();
        for (i, key) in keys.iter().enumerate() {
            if let Some(locs) = st.registry.get(key) {
                for (m, l) in locs.iter().enumerate() {
                    if let (Some((worker, attempt)), Some(t)) = (l, sched.tasks[i].get_mut(m)) {
                        *t = models::spark::TaskState::Done {
                            worker: *worker,
                            attempt: *attempt,
                        };
                    }
                }
            }
            if let Some(a) = st.attempts.get(key) {
                if a.len() == sched.attempts[i].len() {
                    sched.attempts[i] = a.clone();
                }
            }
        }
        st.cfg = cfg;
        st.sched = sched;
        st.keys = keys;
        st.running = true;
        st.stats.jobs += 1;
        self.step(st, o, |cfg, s, a| cfg.schedule(s, a));
    }
}

impl Actor for DriverNode {
    type Msg = Wire;
    type State = DriverNodeState;
    type Timer = NodeTimer;
    type Random = ();
    type Storage = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> DriverNodeState {
        for w in &self.workers {
            o.set_timer(
                NodeTimer::Spark(SparkTimer::WorkerLost(*w)),
                self.lost_after..self.lost_after,
            );
        }
        let cfg = DriverCfg {
            plan: Plan::default(),
            workers: self.workers.clone(),
            max_failures: self.max_failures,
            bug: None,
            lost_after: self.lost_after,
        };
        // A worker takes tasks once it has registered.
        let mut sched = cfg.initial();
        sched.lost = self.workers.clone();
        DriverNodeState {
            sched,
            cfg,
            keys: Vec::new(),
            running: false,
            history: Arc::new(Vec::new()),
            registry: BTreeMap::new(),
            attempts: BTreeMap::new(),
            ever: BTreeMap::new(),
            missing: BTreeMap::new(),
            stats: DriverStats::default(),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut std::borrow::Cow<DriverNodeState>,
        src: Id,
        msg: Wire,
        o: &mut Out<Self>,
    ) {
        match msg {
            Wire::Submit { plan, keys } if src == id => self.submit(state.to_mut(), plan, keys, o),
            Wire::Spark(m) if self.workers.contains(&src) => {
                let st = state.to_mut();
                let back = matches!(m, SparkMsg::Reregister)
                    || (matches!(m, SparkMsg::Heartbeat) && st.sched.lost.contains(&src));
                if back {
                    Self::forget(st, src);
                }
                if matches!(m, SparkMsg::FetchFailed { .. }) {
                    st.stats.fetch_failures += 1;
                }
                if matches!(m, SparkMsg::Reregister) {
                    tracing::info!(worker = usize::from(src), "worker registered");
                }
                self.step(st, o, |cfg, s, a| cfg.on_msg(s, src, m, a));
                self.note_registered(st);
            }
            Wire::Beat { holding } if self.workers.contains(&src) => {
                let st = state.to_mut();
                if st.sched.lost.contains(&src) {
                    Self::forget(st, src);
                }
                self.step(st, o, |cfg, s, a| {
                    cfg.on_msg(s, src, SparkMsg::Heartbeat, a)
                });
                self.resend_missing(st, src, &holding, o);
                self.note_registered(st);
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<DriverNodeState>,
        timer: &NodeTimer,
        o: &mut Out<Self>,
    ) {
        let NodeTimer::Spark(t) = timer else { return };
        let st = state.to_mut();
        if let SparkTimer::WorkerLost(w) = t {
            if !st.sched.lost.contains(w) {
                tracing::warn!(worker = usize::from(*w), "worker lost: no heartbeat");
                st.stats.workers_lost += 1;
                Self::forget(st, *w);
            }
        }
        self.step(st, o, |cfg, s, a| cfg.on_timeout(s, t, a));
    }
}

/// The program's side of the driver: submits each job to the driver node and waits for it.
pub struct Remote {
    inbox: Inbox<Wire>,
    outcomes: Mutex<mpsc::Receiver<Outcome>>,
}

impl JobRunner for Remote {
    fn run(&self, plan: Plan, keys: Vec<u64>) -> Result<Vec<Vec<u8>>, String> {
        if !self.inbox.deliver(Wire::Submit { plan, keys }) {
            return Err("the driver node has stopped".into());
        }
        let outcome = self
            .outcomes
            .lock()
            .expect("outcomes")
            .recv()
            .map_err(|_| "the driver node has stopped".to_string())?;
        outcome.map(|parts| parts.into_iter().map(|b| b.0.to_vec()).collect())
    }
}

/// How a driver runs.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// A worker silent this long is lost.
    pub lost_after: Duration,
    /// A task's failures that abort the job (Spark's `spark.task.maxFailures`).
    pub max_failures: u8,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            lost_after: Duration::from_secs(2),
            max_failures: 4,
        }
    }
}

/// Runs `program` (with arguments `args`) as the driver of `cluster`: the driver node serves
/// in a thread, the program runs here. Returns the program's output and the driver's stats.
pub fn run_driver<T>(
    cluster: &ClusterConfig,
    args: Vec<String>,
    program: impl FnOnce(&Context) -> T,
    opts: &DriverOptions,
) -> anyhow::Result<(T, DriverStats)> {
    use anyhow::Context as _;
    let me = Id::from(DRIVER);
    let addr = *cluster
        .nodes
        .get(&me)
        .ok_or_else(|| anyhow::anyhow!("the cluster file has no node {DRIVER} (the driver)"))?;
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let run = crate::rng::seed_from_env_or_time();
    let (node, outcomes) = DriverNode::new(
        cluster,
        AppRun { run, args },
        opts.lost_after,
        opts.max_failures,
    );
    if node.workers.is_empty() {
        anyhow::bail!("the cluster file has no workers (nodes 1, 2, ...)");
    }
    let all_registered = node.all_registered.clone();
    let mut nopts = crate::node::NodeOptions::new(me);
    nopts.listen = Some(Arc::new(listener));
    nopts.peers = cluster.nodes.clone();
    nopts.peers.remove(&me);
    let shutdown = crate::node::Shutdown::new();
    let (give, take) = mpsc::channel();
    let stats = Arc::new(Mutex::new(DriverStats::default()));
    let thread = {
        let shutdown = shutdown.clone();
        let stats = stats.clone();
        std::thread::spawn(move || {
            let hooks = crate::node::Hooks {
                describe: None,
                kind: None,
                inbox: Some(Box::new(move |inbox| {
                    let _ = give.send(inbox);
                })),
                ..crate::node::Hooks::default()
            };
            let end = crate::node::run_hooked(
                node,
                nopts,
                None::<crate::storage::JsonFile>,
                shutdown,
                |_| false,
                hooks,
            );
            if let Ok(s) = &end {
                *stats.lock().expect("stats") = s.stats.clone();
            }
            end
        })
    };
    let inbox = take
        .recv()
        .map_err(|_| anyhow::anyhow!("the driver node did not start"))?;
    // Like Spark's `spark.scheduler.maxRegisteredResourcesWaitingTime`: the first job waits
    // for every worker to register, at most `lost_after`, so a slow-starting worker still
    // gets its share of the partitions (and of the cached ones after them).
    {
        let (done, cv) = &*all_registered;
        let done = done.lock().expect("registered");
        let _ = cv
            .wait_timeout_while(done, opts.lost_after, |d| !*d)
            .expect("registered");
    }
    let ctx = Context::remote(Box::new(Remote {
        inbox,
        outcomes: Mutex::new(outcomes),
    }));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program(&ctx)));
    shutdown.trigger();
    let end = thread.join();
    let out = match out {
        Ok(out) => out,
        Err(p) => {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the program panicked".into());
            anyhow::bail!("{why}");
        }
    };
    match end {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => anyhow::bail!("driver node: {e}"),
        Err(_) => anyhow::bail!("the driver node panicked"),
    }
    let stats = stats.lock().expect("stats").clone();
    Ok((out, stats))
}

/// Cached partitions: (rdd, partition) → the partition.
type Cache = HashMap<(usize, usize), Shared>;
/// A job of a run: (run, job).
type JobKey = (u64, usize);

/// A worker's memory and files, shared by its node and its task threads.
pub struct WorkerShared {
    me: Id,
    /// Where map outputs are kept: `RUN-SHUFFLE-MAP-ATTEMPT` files.
    dir: PathBuf,
    /// The other workers' data ports.
    data: BTreeMap<Id, SocketAddr>,
    /// The run the cache belongs to, and its cached partitions.
    cache: Mutex<(u64, Cache)>,
    /// The last lineage rebuilt: (run, job) → its plan and tasks.
    replay: Mutex<Option<(JobKey, Arc<super::rdd::Target>)>>,
    programs: fn(&[String]) -> Result<Program, String>,
    inbox: OnceLock<Inbox<Wire>>,
    /// Tasks received and not yet reported.
    holding: Mutex<std::collections::BTreeSet<TaskId>>,
    /// Exit abruptly once this many tasks have finished (a crash for tests); 0: never.
    exit_after: usize,
    finished: Mutex<usize>,
}

/// A worker node: it takes tasks from the driver, runs them on task threads, and reports
/// back; it sends heartbeats.
pub struct WorkerNode {
    pub driver: Id,
    pub lost_after: Duration,
    shared: Arc<WorkerShared>,
    tasks: Mutex<mpsc::Sender<TaskOrder>>,
}

/// A task as its thread gets it.
struct TaskOrder {
    task: TaskId,
    app: Arc<AppRun>,
    history: History,
    key: u64,
    launch: SparkMsg<Blob>,
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub id: Id,
    /// Its data directory: map outputs go to `DIR/shuffle`, wiped at start.
    pub dir: PathBuf,
    /// Task threads.
    pub slots: usize,
    pub lost_after: Duration,
    /// Exit abruptly once this many tasks have finished (0: never).
    pub exit_after: usize,
}

impl WorkerNode {
    /// A worker of `cluster`, its task threads started and its data port served.
    pub fn start(
        cluster: &ClusterConfig,
        opts: &WorkerOptions,
        programs: fn(&[String]) -> Result<Program, String>,
    ) -> io::Result<WorkerNode> {
        let dir = opts.dir.join("shuffle");
        // A restarted worker has lost its map outputs (no external shuffle service).
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(&dir)?;
        let port = cluster.data.get(&opts.id).copied().ok_or_else(|| {
            io::Error::other(format!(
                "worker {} has no data port in the cluster file's [data] table",
                usize::from(opts.id)
            ))
        })?;
        let shared = Arc::new(WorkerShared {
            me: opts.id,
            dir: dir.clone(),
            data: cluster.data.clone(),
            cache: Mutex::new((0, HashMap::new())),
            replay: Mutex::new(None),
            programs,
            inbox: OnceLock::new(),
            holding: Mutex::new(Default::default()),
            exit_after: opts.exit_after,
            finished: Mutex::new(0),
        });
        serve_blocks(TcpListener::bind(port)?, dir)?;
        let (tx, rx) = mpsc::channel::<TaskOrder>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..opts.slots.max(1) {
            let (rx, shared) = (rx.clone(), shared.clone());
            std::thread::spawn(move || loop {
                let order = match rx.lock().expect("tasks").recv() {
                    Ok(order) => order,
                    Err(_) => return,
                };
                let task = order.task;
                let reply = shared.run_task(order);
                shared.task_finished();
                if let Some(inbox) = shared.inbox.get() {
                    // The report, then (a self-message, not sent on) the task's release.
                    inbox.deliver(Wire::Spark(reply));
                    inbox.deliver(Wire::Beat {
                        holding: vec![task],
                    });
                }
            });
        }
        Ok(WorkerNode {
            driver: Id::from(DRIVER),
            lost_after: opts.lost_after,
            shared,
            tasks: Mutex::new(tx),
        })
    }

    /// Hands the node's inbox to the task threads (give this to [`crate::node::Hooks`]).
    pub fn inbox_hook(&self) -> crate::node::GiveInbox<Wire> {
        let shared = self.shared.clone();
        Box::new(move |inbox| {
            let _ = shared.inbox.set(inbox);
        })
    }

    fn beat(&self) -> std::ops::Range<Duration> {
        let d = self.lost_after / 4;
        d..d
    }
}

impl Actor for WorkerNode {
    type Msg = Wire;
    type State = u64;
    type Timer = NodeTimer;
    type Random = ();
    type Storage = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> u64 {
        o.send(self.driver, Wire::Spark(SparkMsg::Reregister));
        o.set_timer(NodeTimer::Beat, self.beat());
        0
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut std::borrow::Cow<u64>,
        src: Id,
        msg: Wire,
        o: &mut Out<Self>,
    ) {
        match msg {
            Wire::Task {
                app,
                history,
                key,
                launch,
            } if src == self.driver => {
                let SparkMsg::LaunchTask {
                    stage,
                    partition,
                    attempt,
                    ..
                } = launch
                else {
                    return;
                };
                let task = (app.run, history.len(), stage, partition, attempt);
                if !self.shared.holding.lock().expect("holding").insert(task) {
                    return;
                }
                *state.to_mut() += 1;
                let _ = self.tasks.lock().expect("tasks").send(TaskOrder {
                    task,
                    app,
                    history,
                    key,
                    launch,
                });
            }
            // A task thread's report goes on to the driver.
            Wire::Spark(m) if src == id => o.send(self.driver, Wire::Spark(m)),
            Wire::Beat { holding } if src == id => {
                // Done with these: reported above, on the same connection.
                let mut h = self.shared.holding.lock().expect("holding");
                for t in holding {
                    h.remove(&t);
                }
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        _state: &mut std::borrow::Cow<u64>,
        timer: &NodeTimer,
        o: &mut Out<Self>,
    ) {
        if *timer == NodeTimer::Beat {
            let holding = self
                .shared
                .holding
                .lock()
                .expect("holding")
                .iter()
                .copied()
                .collect();
            o.send(self.driver, Wire::Beat { holding });
            o.set_timer(NodeTimer::Beat, self.beat());
        }
    }
}

impl WorkerShared {
    fn task_finished(&self) {
        let mut n = self.finished.lock().expect("finished");
        *n += 1;
        if self.exit_after > 0 && *n >= self.exit_after {
            tracing::warn!(tasks = *n, "exiting, as told (--exit-after)");
            std::process::exit(3);
        }
    }

    /// The lineage of job `history.len()` of `app`: rebuilt by running the program again,
    /// once a job.
    fn target(&self, app: &AppRun, history: &History) -> Result<Arc<super::rdd::Target>, String> {
        let key = (app.run, history.len());
        let mut slot = self.replay.lock().expect("replay");
        if let Some((k, t)) = slot.as_ref() {
            if *k == key {
                return Ok(t.clone());
            }
        }
        let program = (self.programs)(&app.args)?;
        let recorded: Vec<Vec<Vec<u8>>> = history
            .iter()
            .map(|job| job.iter().map(|b| b.0.to_vec()).collect())
            .collect();
        let target = Context::replay(Arc::new(recorded), |ctx| {
            let _ = program(ctx);
        })
        .ok_or_else(|| format!("the program has no job {}", history.len()))?;
        let target = Arc::new(target);
        *slot = Some((key, target.clone()));
        Ok(target)
    }

    /// Runs a task; the report for the driver.
    fn run_task(&self, order: TaskOrder) -> SparkMsg<Blob> {
        let SparkMsg::LaunchTask {
            stage,
            partition,
            attempt,
            parents,
        } = order.launch
        else {
            return SparkMsg::Heartbeat;
        };
        let failed = SparkMsg::TaskFailed {
            stage,
            partition,
            attempt,
        };
        let target = match self.target(&order.app, &order.history) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot rebuild the task's lineage");
                return failed;
            }
        };
        let (si, p) = (usize::from(stage), usize::from(partition));
        if target.keys.get(si) != Some(&order.key) {
            tracing::error!(stage, "the program's stages differ from the driver's");
            return failed;
        }
        // Each input stage's map outputs, by shuffle.
        let mut at: HashMap<usize, Vec<Option<(Id, u8)>>> = HashMap::new();
        let inputs = &target.plan.stages[si].inputs;
        for (input, locs) in inputs.iter().zip(parents) {
            at.insert(target.keys[usize::from(*input)] as usize, locs);
        }
        {
            let mut cache = self.cache.lock().expect("cache");
            if cache.0 != order.app.run {
                *cache = (order.app.run, HashMap::new());
            }
        }
        let exec = RemoteExec {
            w: self,
            run: order.app.run,
            attempt,
            at: &at,
        };
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(&exec, si, p)));
        match ran {
            Ok(Ok(result)) => SparkMsg::TaskDone {
                stage,
                partition,
                attempt,
                result: result.map(|r| Blob(r.into())),
            },
            Ok(Err(TaskError::Fetch(f))) => {
                let input = target
                    .keys
                    .iter()
                    .position(|k| *k == f.shuffle as u64)
                    .unwrap_or(0) as u16;
                let from = at
                    .get(&f.shuffle)
                    .and_then(|l| l.get(f.map).copied().flatten())
                    .map(|(w, _)| w);
                tracing::info!(
                    stage,
                    partition,
                    shuffle = f.shuffle,
                    map = f.map,
                    "fetch failed"
                );
                SparkMsg::FetchFailed {
                    stage,
                    partition,
                    attempt,
                    shuffle: input,
                    map: f.map as u16,
                    from,
                }
            }
            Ok(Err(TaskError::Failed(e))) => {
                tracing::error!(stage, partition, error = %e, "task failed");
                failed
            }
            Err(_) => {
                tracing::error!(stage, partition, "task panicked");
                failed
            }
        }
    }

    fn output_path(&self, run: u64, shuffle: usize, map: usize, attempt: u8) -> PathBuf {
        block_path(&self.dir, run, shuffle as u64, map as u64, attempt)
    }
}

fn block_path(dir: &Path, run: u64, shuffle: u64, map: u64, attempt: u8) -> PathBuf {
    dir.join(format!("{run:016x}-{shuffle}-{map}-{attempt}"))
}

/// A task's view of its worker process.
struct RemoteExec<'a> {
    w: &'a WorkerShared,
    run: u64,
    attempt: u8,
    /// Where each shuffle's map outputs are, as the driver said.
    at: &'a HashMap<usize, Vec<Option<(Id, u8)>>>,
}

impl Executor for RemoteExec<'_> {
    fn cached(&self, rdd: usize, p: usize) -> Option<Shared> {
        let cache = self.w.cache.lock().expect("cache");
        (cache.0 == self.run)
            .then(|| cache.1.get(&(rdd, p)).cloned())
            .flatten()
    }

    fn cache(&self, rdd: usize, p: usize, part: Shared) {
        let mut cache = self.w.cache.lock().expect("cache");
        if cache.0 == self.run {
            cache.1.insert((rdd, p), part);
        }
    }

    fn put_output(
        &self,
        shuffle: usize,
        map: usize,
        out: Arc<dyn Buckets>,
    ) -> Result<(), TaskError> {
        let path = self.w.output_path(self.run, shuffle, map, self.attempt);
        write_blocks(&path, &out.encode())
            .map_err(|e| TaskError::Failed(format!("{}: {e}", path.display())))
    }

    fn fetch(&self, shuffle: usize, map: usize, bucket: usize) -> Result<Block, FetchFailed> {
        let failed = FetchFailed { shuffle, map };
        let (worker, attempt) = self
            .at
            .get(&shuffle)
            .and_then(|l| l.get(map).copied().flatten())
            .ok_or(failed)?;
        let req = [
            self.run,
            shuffle as u64,
            map as u64,
            u64::from(attempt),
            bucket as u64,
        ];
        let got = if worker == self.w.me {
            read_block(&self.w.dir, req)
        } else {
            let addr = self.w.data.get(&worker).ok_or(failed)?;
            fetch_block(*addr, req)
        };
        match got {
            Ok(Some(bytes)) => Ok(Block::Bytes(bytes)),
            Ok(None) => Err(failed),
            Err(e) => {
                tracing::info!(worker = usize::from(worker), error = %e, "fetch failed");
                Err(failed)
            }
        }
    }
}

/// Writes a map output: the number of buckets, their offsets, then the buckets.
fn write_blocks(path: &Path, buckets: &[Vec<u8>]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut w = BufWriter::new(fs::File::create(&tmp)?);
        w.write_all(&(buckets.len() as u64).to_le_bytes())?;
        let mut off = 0u64;
        for b in buckets {
            w.write_all(&off.to_le_bytes())?;
            off += b.len() as u64;
        }
        w.write_all(&off.to_le_bytes())?;
        for b in buckets {
            w.write_all(b)?;
        }
        w.flush()?;
    }
    fs::rename(tmp, path)
}

/// Bucket `req[4]` of map output (run, shuffle, map, attempt) = `req[..4]` in `dir`;
/// `None` if this worker does not have it.
fn read_block(dir: &Path, req: [u64; 5]) -> io::Result<Option<Vec<u8>>> {
    let [run, shuffle, map, attempt, bucket] = req;
    let Ok(attempt) = u8::try_from(attempt) else {
        return Ok(None);
    };
    let mut f = match fs::File::open(block_path(dir, run, shuffle, map, attempt)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let n = read_u64(&mut f)?;
    if bucket >= n {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(8 + 8 * bucket))?;
    let (from, to) = (read_u64(&mut f)?, read_u64(&mut f)?);
    let len = to
        .checked_sub(from)
        .filter(|l| *l <= 1 << 34)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a map output's index is damaged",
            )
        })?;
    f.seek(SeekFrom::Start(8 + 8 * (n + 1) + from))?;
    let mut out = vec![0u8; len as usize];
    f.read_exact(&mut out)?;
    Ok(Some(out))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

const BLOCK_OK: u8 = 0;
const BLOCK_MISSING: u8 = 1;

/// Serves map output blocks from `dir` on `listener`, in background threads.
fn serve_blocks(listener: TcpListener, dir: PathBuf) -> io::Result<()> {
    crate::serve_connections(listener, "block", move |conn| serve_conn(conn, &dir));
    Ok(())
}

fn serve_conn(conn: TcpStream, dir: &Path) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = BufWriter::new(conn);
    loop {
        let mut req = [0u64; 5];
        for (i, x) in req.iter_mut().enumerate() {
            match read_u64(&mut r) {
                Err(e) if i == 0 && e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                other => *x = other?,
            }
        }
        match read_block(dir, req) {
            Ok(Some(bytes)) => {
                w.write_all(&[BLOCK_OK])?;
                w.write_all(&(bytes.len() as u64).to_le_bytes())?;
                w.write_all(&bytes)?;
            }
            Ok(None) => w.write_all(&[BLOCK_MISSING])?,
            Err(e) => {
                tracing::warn!(error = %e, "a map output could not be read");
                w.write_all(&[BLOCK_MISSING])?;
            }
        }
        w.flush()?;
    }
}

/// One block from the data port at `addr` (a connection a fetch; `None`: not there).
fn fetch_block(addr: SocketAddr, req: [u64; 5]) -> io::Result<Option<Vec<u8>>> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut w = BufWriter::new(s.try_clone()?);
    for x in req {
        w.write_all(&x.to_le_bytes())?;
    }
    w.flush()?;
    let mut r = BufReader::new(s);
    let mut status = [0u8; 1];
    r.read_exact(&mut status)?;
    if status[0] != BLOCK_OK {
        return Ok(None);
    }
    let n = read_u64(&mut r)?;
    if n > 1 << 34 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "an oversized block",
        ));
    }
    let mut out = vec![0u8; n as usize];
    r.read_exact(&mut out)?;
    Ok(Some(out))
}

/// Runs a worker of `cluster` until the process is killed.
pub fn run_worker(
    cluster: &ClusterConfig,
    opts: &WorkerOptions,
    programs: fn(&[String]) -> Result<Program, String>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if usize::from(opts.id) == DRIVER || !cluster.nodes.contains_key(&opts.id) {
        anyhow::bail!(
            "worker {} is not a worker of the cluster file (workers are nodes 1, 2, ...)",
            usize::from(opts.id)
        );
    }
    let addr = cluster.nodes[&opts.id];
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let node = WorkerNode::start(cluster, opts, programs)
        .with_context(|| format!("starting worker {}", usize::from(opts.id)))?;
    let mut nopts = crate::node::NodeOptions::new(opts.id);
    nopts.listen = Some(Arc::new(listener));
    nopts.peers = cluster.nodes.clone();
    nopts.peers.remove(&opts.id);
    let hooks = crate::node::Hooks {
        describe: None,
        kind: None,
        inbox: Some(node.inbox_hook()),
        ..crate::node::Hooks::default()
    };
    crate::node::run_hooked(
        node,
        nopts,
        None::<crate::storage::JsonFile>,
        crate::node::Shutdown::new(),
        |_| false,
        hooks,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_travel_as_hex_and_bad_hex_is_refused() {
        let b = Blob(vec![0u8, 1, 0xab, 0xff].into());
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"0001abff\"");
        assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), b);
        for bad in ["\"0g\"", "\"abc\"", "\"AB\"", "12"] {
            assert!(serde_json::from_str::<Blob>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn map_outputs_are_served_by_bucket_and_a_bad_request_gets_nothing() {
        let dir = std::env::temp_dir().join(format!("spark-blocks-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let buckets = vec![b"first".to_vec(), Vec::new(), b"third bucket".to_vec()];
        write_blocks(&block_path(&dir, 7, 3, 1, 2), &buckets).unwrap();
        for (b, want) in buckets.iter().enumerate() {
            let got = read_block(&dir, [7, 3, 1, 2, b as u64]).unwrap();
            assert_eq!(got.as_ref(), Some(want));
        }
        // Another attempt, another run, a bucket beyond the last: not here.
        for req in [
            [7, 3, 1, 1, 0],
            [8, 3, 1, 2, 0],
            [7, 3, 1, 2, 3],
            [7, 3, 1, 300, 0],
        ] {
            assert_eq!(read_block(&dir, req).unwrap(), None, "{req:?}");
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve_blocks(listener, dir.clone()).unwrap();
        assert_eq!(
            fetch_block(addr, [7, 3, 1, 2, 2]).unwrap().unwrap(),
            b"third bucket"
        );
        assert_eq!(fetch_block(addr, [9, 9, 9, 9, 9]).unwrap(), None);
        // A peer that sends half a request and hangs up does not stop the port.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&[1, 2, 3]).unwrap();
        drop(s);
        assert_eq!(
            fetch_block(addr, [7, 3, 1, 2, 0]).unwrap().unwrap(),
            b"first"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
