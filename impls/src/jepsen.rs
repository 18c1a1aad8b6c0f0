//! A Jepsen-style test of any registered protocol with clients: concurrent clients run the
//! protocol's workload while a nemesis kills and restarts nodes, partitions the network, makes
//! it lossy and slow, and pauses processes; the history is recorded and checked by the same
//! `properties` code the protocol's model uses (linearizability for Raft's KV store,
//! serializability for two-phase commit's transactions).
//!
//! [`run_workload`] is the part every protocol shares: the cluster, the nemesis's schedule, the
//! recorded history and the report. A [`Workload`] is the part that differs: what the clients do
//! and how the history is checked. [`ActorWorkload`] is the workload of every protocol whose
//! clients are its model's client actors ([`Jepsen`], [`run`]); ZooKeeper's clients speak
//! ZooKeeper's own protocol instead ([`crate::zk::jepsen`]).
//!
//! In an [`ActorWorkload`], each client is one session: the model's client actor (one client
//! id, increasing request ids), driven by [`Driven`]. An operation that gets no answer before
//! its deadline is indefinite (`info`) if it may write, and failed if it only reads (a read has
//! no effect, Jepsen's convention); after an indefinite operation the client carries on as a new
//! process of the history, since its old operation stays open to the end.
//!
//! The seed (`--seed`) fixes the workload and the fault schedule; it is printed at the start and
//! in the report, so a run can be repeated (the cluster's own timing still varies).

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use stateright::actor::Id;

use crate::client::{Driven, CLIENT_IDS};
use crate::cluster::{Cluster, ClusterSpec};
use crate::node::Faults;
use crate::rng::Rng;
use crate::service::{Checked, Jepsen, Tuning};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Nemesis {
    /// `kill -9` some nodes (one, a majority or all), restart them later from their data
    /// directories.
    Kill,
    /// Cut a minority of the nodes off from the rest.
    Partition,
    /// Drop 10% of the messages between nodes and delay the others by up to 27 ms.
    Loss,
    /// Delay every message between nodes by up to 27 ms, in order (a slow network).
    Delay,
    /// `SIGSTOP` one node's process (half the time the leader's), `SIGCONT` when the fault
    /// heals: a long garbage-collection pause, or a VM that was descheduled. The node's peers
    /// and clients see it vanish, and it wakes up believing what it believed before.
    Pause,
    /// Remove a node from the configuration (half the time the leader, which steps down once
    /// the change commits), then add it back (Raft's single-server changes, thesis §4).
    Membership,
    /// Every node's clock runs fast or slow by up to [`CLOCK_SKEW_PERCENT`] (within Raft's
    /// default lease drift bound, thesis §6.4.1), and half the time the leader is cut off from
    /// the rest meanwhile: a new leader is elected on skewed clocks while the old one may still
    /// hold a lease.
    Clock,
}

/// The most, in percent, that the clock nemesis skews a node's clock.
pub const CLOCK_SKEW_PERCENT: i32 = 10;

impl Nemesis {
    /// Every fault, in the order `--help` lists them.
    pub const ALL: &'static [Nemesis] = &[
        Nemesis::Kill,
        Nemesis::Partition,
        Nemesis::Loss,
        Nemesis::Delay,
        Nemesis::Pause,
        Nemesis::Membership,
        Nemesis::Clock,
    ];
}

impl std::fmt::Display for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Nemesis::Kill => "kill",
            Nemesis::Partition => "partition",
            Nemesis::Loss => "loss",
            Nemesis::Delay => "delay",
            Nemesis::Pause => "pause",
            Nemesis::Membership => "membership",
            Nemesis::Clock => "clock",
        })
    }
}

impl std::str::FromStr for Nemesis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kill" => Ok(Nemesis::Kill),
            "partition" => Ok(Nemesis::Partition),
            "loss" => Ok(Nemesis::Loss),
            "delay" => Ok(Nemesis::Delay),
            "pause" => Ok(Nemesis::Pause),
            "membership" => Ok(Nemesis::Membership),
            "clock" => Ok(Nemesis::Clock),
            _ => Err(format!(
                "unknown nemesis '{s}' (expected kill, partition, loss, delay or pause)"
            )),
        }
    }
}

/// What a step of a kill plan ([`PlanStep`]) expects of the operations invoked during it
/// (from [`PLAN_GRACE`] after it starts) and completed before it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// At least one write is acknowledged.
    WritesAcknowledged,
    /// No write is acknowledged.
    NoWritesAcknowledged,
    /// At least one read is answered.
    ReadsAnswered,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expect::WritesAcknowledged => "writes acknowledged",
            Expect::NoWritesAcknowledged => "no write acknowledged",
            Expect::ReadsAnswered => "reads answered",
        })
    }
}

/// One step of a protocol's kill plan ([`Jepsen::kill_plan`]): the nodes down during it (a node
/// down in the step before and not in this one is restarted from its data directory when the
/// step starts), and what the step expects of the clients' operations.
#[derive(Clone, Copy, Debug)]
pub struct PlanStep {
    pub down: &'static [usize],
    /// The step in words: `a zone down`.
    pub what: &'static str,
    pub expect: &'static [Expect],
}

/// How long after a plan step starts operations count for its expectations: acknowledgements
/// already on their way land, and a restarted node comes up.
pub const PLAN_GRACE: f64 = 0.5;

/// Whether a plan step's expectation held.
#[derive(Clone, Debug, Serialize)]
pub struct Expectation {
    /// The step's index in the plan, and what it was.
    pub step: usize,
    pub what: String,
    pub expect: Expect,
    pub held: bool,
    /// The operations that count: `3 writes acknowledged`.
    pub detail: String,
}

/// How to run the test.
#[derive(Clone, Debug)]
pub struct JepsenOpts {
    pub node_bin: PathBuf,
    pub dir: PathBuf,
    pub nodes: usize,
    pub clients: usize,
    pub duration: Duration,
    pub nemesis: Vec<Nemesis>,
    pub seed: u64,
    pub keys: usize,
    /// How long a client waits for one operation.
    pub op_timeout: Duration,
    pub tuning: Tuning,
    /// A seeded bug the nodes run with.
    pub bug: Option<&'static str>,
    /// Run the cluster in plaintext ([`Cluster::start_plain`]) instead of mutual TLS.
    pub insecure: bool,
}

/// One injected fault and when (seconds since the start).
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    pub kind: Nemesis,
    pub detail: String,
    pub start: f64,
    pub healed: f64,
}

/// The outcome.
#[derive(Clone, Debug, Serialize)]
pub struct JepsenReport {
    pub protocol: &'static str,
    pub seed: u64,
    pub nemesis: Vec<Nemesis>,
    pub bug: Option<&'static str>,
    /// The check's verdict, its file and, when it failed, why (naming the operations).
    pub check: Checked,
    pub ok: usize,
    pub failed: usize,
    pub indefinite: usize,
    /// Operations that succeeded after the last fault healed.
    pub ok_after_heal: usize,
    pub faults: Vec<FaultRecord>,
    pub seconds: f64,
    pub check_seconds: f64,
    /// The page of the run (`DIR/history.html`, see [`crate::viewer`]).
    pub page: PathBuf,
    /// The kill plan's expectations ([`Jepsen::kill_plan`]), if the protocol has one.
    pub expectations: Vec<Expectation>,
}

impl JepsenReport {
    /// The test passes: the history checks, and the cluster served after the last fault.
    pub fn passed(&self) -> bool {
        self.check.ok && self.ok_after_heal > 0 && self.expectations.iter().all(|e| e.held)
    }

    /// The history was checked and failed (a verdict, not an unknown), or a kill plan's
    /// expectation did not hold.
    pub fn refuted(&self) -> bool {
        (!self.check.ok && self.check.verdict != "unknown")
            || self.expectations.iter().any(|e| !e.held)
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<R> {
    /// It returned `R`.
    Ok(R),
    /// It did not take effect (a read that timed out).
    Fail,
    /// Unknown: it may take effect at any time until the end of the history.
    Info,
    /// Still running when the history ended.
    Open,
}

/// One operation of the history.
#[derive(Clone, Debug)]
pub struct OpRecord<O, R> {
    /// The history's process: a client, renumbered after each indefinite operation.
    pub process: u64,
    /// A number unique in the run (the workload's id for the operation).
    pub id: u64,
    pub op: O,
    pub outcome: Outcome<R>,
    /// Seconds since the start: invoked, and completed (`None` while open).
    pub invoked: f64,
    pub completed: Option<f64>,
    /// The operation and its result as a failed check names them: `process 3: get k0 => ""`.
    pub shown: String,
}

impl<O, R> OpRecord<O, R> {
    pub fn describe(&self) -> String {
        self.shown.clone()
    }
}

/// An invocation or a completion, in the real-time order they were recorded in.
#[derive(Clone, Copy, Debug)]
pub struct HistoryEvent {
    /// Index into [`History::ops`].
    pub op: usize,
    /// Whether this is the completion (else the invocation).
    pub completes: bool,
}

/// A recorded history: the operations, and their invocations and completions in real-time
/// order.
#[derive(Clone, Debug)]
pub struct History<O, R> {
    pub ops: Vec<OpRecord<O, R>>,
    pub events: Vec<HistoryEvent>,
}

impl<O, R> Default for History<O, R> {
    fn default() -> Self {
        History {
            ops: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// The history being recorded: events are ordered by the lock.
struct Recorder<O, R> {
    start: Instant,
    history: Mutex<History<O, R>>,
}

impl<O, R> Recorder<O, R> {
    fn invoke(&self, process: u64, id: u64, op: O, shown: String) -> usize {
        let mut h = self.history.lock().expect("history lock");
        let i = h.ops.len();
        h.ops.push(OpRecord {
            process,
            id,
            op,
            outcome: Outcome::Open,
            invoked: self.start.elapsed().as_secs_f64(),
            completed: None,
            shown,
        });
        h.events.push(HistoryEvent {
            op: i,
            completes: false,
        });
        i
    }

    fn complete(&self, i: usize, outcome: Outcome<R>, shown: String) -> f64 {
        let mut h = self.history.lock().expect("history lock");
        let at = self.start.elapsed().as_secs_f64();
        let op = &mut h.ops[i];
        op.outcome = outcome;
        op.completed = Some(at);
        op.shown = shown;
        h.events.push(HistoryEvent {
            op: i,
            completes: true,
        });
        at
    }
}

#[derive(Default)]
struct Counts {
    ok: usize,
    failed: usize,
    indefinite: usize,
    /// Completion times of successful operations.
    ok_times: Vec<f64>,
}

/// Process numbers of one client are its index plus multiples of this.
pub(crate) const PROCESS_STRIDE: u64 = 1 << 20;

/// Set in the ids of the final operations ([`Jepsen::final_ops`]).
pub const FINAL_OPS: u64 = 1 << 63;

/// The per-protocol half of a test: what its clients do, and the check of what they recorded.
/// The other half, the same for every protocol, is [`run_workload`]: the cluster, the nemesis's
/// schedule, the history's recording and the report.
pub trait Workload: Sync {
    type Op: Clone + Send + 'static;
    type Ret: Clone + Send + 'static;
    /// One client's connection to the cluster, made before the faults begin.
    type Client: Send;

    /// The registry name of the protocol the nodes run.
    fn protocol(&self) -> &'static str;
    /// The seeded bug the nodes run with: by default the run's.
    fn node_bug(&self, opts: &JepsenOpts) -> Option<&'static str> {
        opts.bug
    }
    /// How many client threads run.
    fn clients(&self, opts: &JepsenOpts) -> usize {
        opts.clients
    }
    /// Client `c`'s connection.
    fn connect(
        &self,
        cluster: &Cluster,
        opts: &JepsenOpts,
        c: usize,
    ) -> anyhow::Result<Self::Client>;
    /// Client `c`'s loop, in a thread of its own: operations recorded through `ctx` until
    /// [`Ctx::stopped`]. Process numbers of client `c` are `c` plus multiples of
    /// [`PROCESS_STRIDE`].
    fn run_client(
        &self,
        client: Self::Client,
        c: usize,
        opts: &JepsenOpts,
        ctx: &Ctx<Self::Op, Self::Ret>,
    );
    /// Runs once the clients have stopped and the last fault has healed, before the nodes
    /// stop (`jepsen zk`'s final write); nothing by default.
    fn finish(&self, cluster: &mut Cluster, opts: &JepsenOpts) -> anyhow::Result<()> {
        let _ = (cluster, opts);
        Ok(())
    }
    /// Writes the history into `opts.dir` and checks it (the nodes have stopped; their data
    /// directories are still there).
    fn check(
        &self,
        history: &History<Self::Op, Self::Ret>,
        cluster: &Cluster,
        opts: &JepsenOpts,
    ) -> anyhow::Result<Checked>;
    /// See [`Jepsen::one_at_a_time`].
    fn one_at_a_time(&self) -> Option<Id> {
        None
    }
    /// See [`Jepsen::kill_plan`].
    fn kill_plan(&self) -> &'static [PlanStep] {
        &[]
    }
    /// Whether `op` only reads (for a kill plan's expectations).
    fn read_only(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }
}

/// What a client thread records through: the history, the counts, and whether to stop.
pub struct Ctx<O, R> {
    recorder: Recorder<O, R>,
    counts: Mutex<Counts>,
    stop: AtomicBool,
    all_stopped: std::sync::Barrier,
}

impl<O, R> Ctx<O, R> {
    /// Whether the workload is over.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.recorder.start.elapsed().as_secs_f64()
    }

    /// Records an invocation by `process`; the index names it when it completes.
    pub fn invoke(&self, process: u64, id: u64, op: O, shown: String) -> usize {
        self.recorder.invoke(process, id, op, shown)
    }

    /// Operation `i` returned `ret`.
    pub fn ok(&self, i: usize, ret: R, shown: String) {
        let at = self.recorder.complete(i, Outcome::Ok(ret), shown);
        let mut counts = self.counts.lock().expect("counts lock");
        counts.ok += 1;
        counts.ok_times.push(at);
    }

    /// Operation `i` did not take effect.
    pub fn fail(&self, i: usize, shown: String) {
        self.recorder.complete(i, Outcome::Fail, shown);
        self.counts.lock().expect("counts lock").failed += 1;
    }

    /// Operation `i`'s outcome is unknown.
    pub fn info(&self, i: usize, shown: String) {
        self.recorder.complete(i, Outcome::Info, shown);
        self.counts.lock().expect("counts lock").indefinite += 1;
    }

    /// Completes operation `i` without counting it (the final operations).
    pub fn complete_uncounted(&self, i: usize, outcome: Outcome<R>, shown: String) {
        self.recorder.complete(i, outcome, shown);
    }

    /// Waits until every client thread has called this (each must, or none).
    pub fn wait_all_stopped(&self) {
        self.all_stopped.wait();
    }
}

/// The workload of a protocol whose clients are the model's client actors ([`Jepsen`]).
pub struct ActorWorkload<S>(std::marker::PhantomData<fn() -> S>);

impl<S> ActorWorkload<S> {
    pub const NEW: Self = ActorWorkload(std::marker::PhantomData);
}

impl<S: Jepsen> Workload for ActorWorkload<S>
where
    <S::Actor as stateright::actor::Actor>::Timer: std::hash::Hash + Eq,
{
    type Op = S::Op;
    type Ret = S::Ret;
    type Client = Driven<S>;

    fn protocol(&self) -> &'static str {
        S::NAME
    }

    fn connect(&self, cluster: &Cluster, opts: &JepsenOpts, c: usize) -> anyhow::Result<Driven<S>> {
        Ok(Driven::<S>::start(
            &cluster.config,
            &opts.tuning,
            Some(CLIENT_IDS + c),
        )?)
    }

    fn run_client(
        &self,
        mut client: Driven<S>,
        c: usize,
        opts: &JepsenOpts,
        ctx: &Ctx<S::Op, S::Ret>,
    ) {
        let (keys, op_timeout) = (opts.keys, opts.op_timeout);
        let mut rng = Rng::new(opts.seed).fork(c as u64);
        let mut process = c as u64;
        let mut n: u64 = 0;
        while !ctx.stopped() {
            n += 1;
            let id = ((c as u64) << 32) | n;
            let op = S::workload(&mut rng, keys, id);
            let read_only = S::read_only(&op);
            let name = S::show_op(&op);
            let i = ctx.invoke(
                process,
                id,
                op.clone(),
                format!("process {process}: {name}"),
            );
            match client.call(op, op_timeout) {
                Ok(ret) => {
                    let shown = format!("process {process}: {name} => {:?}", S::show(&ret));
                    ctx.ok(i, ret, shown);
                }
                Err(_) if read_only => {
                    ctx.fail(i, format!("process {process}: {name} => failed"));
                }
                Err(_) => {
                    ctx.info(i, format!("process {process}: {name} => indefinite"));
                    // The open operation keeps this process busy: carry on as another.
                    process += PROCESS_STRIDE;
                }
            }
        }
        let finals = S::final_ops(keys);
        if finals.is_empty() {
            return;
        }
        // Final operations, once every client has stopped and the nodes have settled.
        ctx.wait_all_stopped();
        std::thread::sleep(crate::service::FINAL_SETTLE);
        for (k, op) in finals.into_iter().enumerate() {
            let id = FINAL_OPS | ((c as u64) << 32) | k as u64;
            let name = S::show_op(&op);
            let i = ctx.invoke(
                process,
                id,
                op.clone(),
                format!("process {process}: {name}"),
            );
            let (outcome, shown) = match client.call(op, op_timeout) {
                Ok(ret) => {
                    let shown = format!("process {process}: {name} => {:?}", S::show(&ret));
                    (Outcome::Ok(ret), shown)
                }
                Err(_) => (
                    Outcome::Info,
                    format!("process {process}: {name} => indefinite"),
                ),
            };
            ctx.complete_uncounted(i, outcome, shown);
        }
    }

    fn check(
        &self,
        history: &History<S::Op, S::Ret>,
        _: &Cluster,
        opts: &JepsenOpts,
    ) -> anyhow::Result<Checked> {
        S::check(history, &opts.dir)
    }

    fn one_at_a_time(&self) -> Option<Id> {
        S::one_at_a_time()
    }

    fn kill_plan(&self) -> &'static [PlanStep] {
        S::kill_plan()
    }

    fn read_only(&self, op: &S::Op) -> bool {
        S::read_only(op)
    }
}

/// Runs the test of protocol `S`, whose clients are its model's client actors.
pub fn run<S: Jepsen>(opts: &JepsenOpts) -> anyhow::Result<JepsenReport>
where
    <S::Actor as stateright::actor::Actor>::Timer: std::hash::Hash + Eq,
{
    run_workload(opts, &ActorWorkload::<S>::NEW)
}

/// Runs a test: starts the cluster, runs `workload`'s clients while the nemesis injects faults,
/// then checks the history with the workload's check and writes the run's page.
pub fn run_workload<W: Workload>(opts: &JepsenOpts, workload: &W) -> anyhow::Result<JepsenReport> {
    anyhow::ensure!(opts.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(opts.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(opts.keys >= 1, "--keys must be at least 1");
    let _ = fs::remove_dir_all(&opts.dir);
    let protocol = workload.protocol();
    tracing::info!(
        protocol,
        seed = opts.seed,
        nemesis = ?opts.nemesis,
        bug = ?opts.bug,
        "jepsen starts"
    );
    let start = if opts.insecure {
        Cluster::start_plain
    } else {
        Cluster::start
    };
    let mut cluster = start(ClusterSpec {
        protocol: protocol.to_string(),
        node_bin: opts.node_bin.clone(),
        dir: opts.dir.clone(),
        nodes: opts.nodes,
        base_port: None,
        tuning: opts.tuning.clone(),
        bug: workload.node_bug(opts),
        seed: Some(opts.seed),
        capacity: None,
    })?;
    let clients = workload.clients(opts);
    let mut connections = Vec::with_capacity(clients);
    for c in 0..clients {
        connections.push(workload.connect(&cluster, opts, c)?);
    }
    let ctx = Ctx::<W::Op, W::Ret> {
        recorder: Recorder {
            start: Instant::now(),
            history: Mutex::new(History::default()),
        },
        counts: Mutex::new(Counts::default()),
        stop: AtomicBool::new(false),
        all_stopped: std::sync::Barrier::new(clients),
    };
    let start = ctx.recorder.start;
    let end = start + opts.duration;

    let mut faults = Vec::new();
    let nemesis = std::thread::scope(|scope| {
        let workers: Vec<_> = connections
            .into_iter()
            .enumerate()
            .map(|(c, client)| {
                let ctx = &ctx;
                scope.spawn(move || workload.run_client(client, c, opts, ctx))
            })
            .collect();
        let plan = workload.kill_plan();
        let result = if !plan.is_empty() && opts.nemesis.contains(&Nemesis::Kill) {
            run_plan(&mut cluster, opts, plan, start, &mut faults)
        } else {
            nemesis(
                &mut cluster,
                opts,
                workload.one_at_a_time(),
                start,
                &mut faults,
            )
        };
        if result.is_ok() {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        ctx.stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        }
        result
    });
    nemesis?;
    let last_heal = faults.last().map_or(0.0, |f: &FaultRecord| f.healed);
    workload.finish(&mut cluster, opts)?;
    cluster.stop();
    let seconds = start.elapsed().as_secs_f64();

    let history = std::mem::take(&mut *ctx.recorder.history.lock().expect("history lock"));
    let checked = Instant::now();
    let check = workload.check(&history, &cluster, opts)?;
    let counts = ctx.counts.lock().expect("counts lock");
    let expectations = if opts.nemesis.contains(&Nemesis::Kill) {
        plan_expectations(workload, &history, &faults)
    } else {
        Vec::new()
    };
    let report = JepsenReport {
        protocol,
        seed: opts.seed,
        nemesis: opts.nemesis.clone(),
        bug: opts.bug,
        check,
        ok: counts.ok,
        failed: counts.failed,
        indefinite: counts.indefinite,
        ok_after_heal: counts.ok_times.iter().filter(|t| **t > last_heal).count(),
        faults,
        seconds,
        check_seconds: checked.elapsed().as_secs_f64(),
        page: opts.dir.join(crate::viewer::PAGE_FILE),
        expectations,
    };
    fs::write(&report.page, crate::viewer::page(&report, &history))?;
    Ok(report)
}

/// A protocol's kill plan instead of the random nemesis: after a quiet second, each step in
/// turn for an equal share of the run (1 to 2 s; the last 3 s stay quiet) but at least two
/// operation timeouts and a second (the run takes longer if need be), then every node runs
/// again. Each step is one fault record (kind `kill`), ending when the next starts.
fn run_plan(
    cluster: &mut Cluster,
    opts: &JepsenOpts,
    plan: &[PlanStep],
    t0: Instant,
    faults: &mut Vec<FaultRecord>,
) -> anyhow::Result<()> {
    let since = |t: Instant| t.duration_since(t0).as_secs_f64();
    let room = opts.duration.saturating_sub(Duration::from_secs(4));
    // Long enough for each client to see an operation time out and invoke another within the
    // step (a write that cannot be acknowledged holds its client for the operation timeout).
    let hold = (room / plan.len() as u32)
        .clamp(Duration::from_secs(1), Duration::from_secs(2))
        .max(opts.op_timeout * 2 + Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(1));
    let mut down: Vec<usize> = Vec::new();
    for (i, step) in plan.iter().enumerate() {
        anyhow::ensure!(
            step.down.iter().all(|n| *n < cluster.len()),
            "kill plan step {i} names a node the cluster does not have"
        );
        let start = Instant::now();
        for &n in step.down.iter().filter(|n| !down.contains(n)) {
            cluster.kill(n);
        }
        for &n in down.iter().filter(|n| !step.down.contains(n)) {
            cluster.restart(n)?;
        }
        down = step.down.to_vec();
        std::thread::sleep(hold);
        let detail = format!("{}: nodes {:?} down", step.what, step.down);
        tracing::info!(%detail, "plan step over");
        faults.push(FaultRecord {
            kind: Nemesis::Kill,
            detail,
            start: since(start),
            healed: since(Instant::now()),
        });
    }
    for &n in &down {
        cluster.restart(n)?;
    }
    if let Some(last) = faults.last_mut() {
        last.healed = since(Instant::now());
    }
    Ok(())
}

/// Whether each step of the workload's kill plan got what it expects: the operations invoked
/// from [`PLAN_GRACE`] after the step started and completed before it ended.
fn plan_expectations<W: Workload>(
    workload: &W,
    history: &History<W::Op, W::Ret>,
    faults: &[FaultRecord],
) -> Vec<Expectation> {
    let plan = workload.kill_plan();
    let mut out = Vec::new();
    for (i, (step, fault)) in plan.iter().zip(faults).enumerate() {
        let during = |o: &&OpRecord<W::Op, W::Ret>| {
            o.invoked >= fault.start + PLAN_GRACE
                && o.completed.is_some_and(|c| c <= fault.healed)
                && matches!(o.outcome, Outcome::Ok(_))
        };
        let writes = history
            .ops
            .iter()
            .filter(during)
            .filter(|o| !workload.read_only(&o.op))
            .count();
        let reads = history
            .ops
            .iter()
            .filter(during)
            .filter(|o| workload.read_only(&o.op))
            .count();
        for &expect in step.expect {
            let held = match expect {
                Expect::WritesAcknowledged => writes > 0,
                Expect::NoWritesAcknowledged => writes == 0,
                Expect::ReadsAnswered => reads > 0,
            };
            out.push(Expectation {
                step: i,
                what: step.what.to_string(),
                expect,
                held,
                detail: format!("{writes} writes acknowledged, {reads} reads answered"),
            });
        }
    }
    out
}

/// The nemesis: quiet, fault, heal, over and over, leaving the last 3 s quiet. Each fault is
/// healed before the next; a fault that cannot be healed (a node that does not restart) ends
/// the run with an error.
fn nemesis(
    cluster: &mut Cluster,
    opts: &JepsenOpts,
    one_at_a_time: Option<Id>,
    t0: Instant,
    faults: &mut Vec<FaultRecord>,
) -> anyhow::Result<()> {
    let mut rng = Rng::new(opts.seed);
    let quiet_end = opts.duration.saturating_sub(Duration::from_secs(3));
    let since = |t: Instant| t.duration_since(t0).as_secs_f64();
    if opts.nemesis.is_empty() {
        return Ok(());
    }
    loop {
        let pause = Duration::from_millis(500 + rng.below(1000));
        let length = Duration::from_millis(1000 + rng.below(2000));
        if t0.elapsed() + pause + length > quiet_end {
            return Ok(());
        }
        std::thread::sleep(pause);
        let kind = opts.nemesis[rng.below(opts.nemesis.len() as u64) as usize];
        let start = Instant::now();
        let detail = match kind {
            Nemesis::Kill if one_at_a_time.is_some() => {
                // One node, never the spared one, never the last one serving; it comes
                // back empty (chain replication: it joins again at the tail).
                let alive = serving_nodes(cluster, one_at_a_time);
                if alive.len() <= 1 {
                    std::thread::sleep(length);
                    "no kill: one node serving".to_string()
                } else {
                    let victim = alive[rng.below(alive.len() as u64) as usize];
                    cluster.kill(victim);
                    std::thread::sleep(length);
                    cluster.restart(victim)?;
                    format!("kill -9 node {victim}, restarted (it joins again, empty)")
                }
            }
            Nemesis::Kill => {
                // Any number of nodes, up to all of them: a minority, a majority (the
                // cluster stops until they return) or a full-cluster crash.
                let count = 1 + rng.below(opts.nodes as u64) as usize;
                let mut victims: Vec<usize> = Vec::new();
                while victims.len() < count {
                    let i = rng.below(opts.nodes as u64) as usize;
                    if !victims.contains(&i) {
                        victims.push(i);
                    }
                }
                victims.sort_unstable();
                for &i in &victims {
                    cluster.kill(i);
                }
                std::thread::sleep(length);
                for &i in &victims {
                    cluster.restart(i)?;
                }
                format!("kill -9 nodes {victims:?}, restarted")
            }
            Nemesis::Partition if one_at_a_time.is_some() => {
                // Cut one node off (never the spared master, never the last one serving):
                // its lease runs out and it stops serving, the master removes it, and it
                // joins again once the partition heals.
                let alive = serving_nodes(cluster, one_at_a_time);
                if alive.len() <= 1 {
                    std::thread::sleep(length);
                    "no partition: one node serving".to_string()
                } else {
                    let side = [alive[rng.below(alive.len() as u64) as usize]];
                    cluster.partition(&side);
                    std::thread::sleep(length);
                    cluster.set_all(&Faults::default());
                    format!(
                        "node {} cut off from the rest (it stops serving, then joins again)",
                        side[0]
                    )
                }
            }
            Nemesis::Partition => {
                let minority = opts.nodes.saturating_sub(1) / 2;
                let mut side: Vec<usize> = Vec::new();
                // Half the time, cut off the leader (as a probe read finds it): the case
                // where a stale leader may still answer.
                if minority > 0 && rng.below(2) == 0 {
                    side.extend(cluster.leader());
                }
                while side.len() < minority.max(1).min(opts.nodes) {
                    let i = rng.below(opts.nodes as u64) as usize;
                    if !side.contains(&i) {
                        side.push(i);
                    }
                }
                side.sort_unstable();
                cluster.partition(&side);
                std::thread::sleep(length);
                cluster.set_all(&Faults::default());
                format!("nodes {side:?} cut off from the rest")
            }
            Nemesis::Loss => {
                cluster.set_all(&Faults {
                    loss: 0.1,
                    max_delay_ms: 27,
                    ..Faults::default()
                });
                std::thread::sleep(length);
                cluster.set_all(&Faults::default());
                "10% of messages between nodes lost, the rest delayed 0-27 ms".to_string()
            }
            Nemesis::Delay => {
                cluster.set_all(&Faults {
                    max_delay_ms: 27,
                    ..Faults::default()
                });
                std::thread::sleep(length);
                cluster.set_all(&Faults::default());
                "messages between nodes delayed 0-27 ms, in order".to_string()
            }
            Nemesis::Clock => {
                let span = 2 * CLOCK_SKEW_PERCENT as u64 + 1;
                let skews: Vec<i32> = (0..opts.nodes)
                    .map(|_| rng.below(span) as i32 - CLOCK_SKEW_PERCENT)
                    .collect();
                let cut = if rng.below(2) == 0 {
                    cluster.leader()
                } else {
                    None
                };
                for (i, skew) in skews.iter().enumerate() {
                    let blocked = match cut {
                        Some(l) if l == i => (0..opts.nodes).filter(|j| *j != l).collect(),
                        Some(l) => vec![l],
                        None => Vec::new(),
                    };
                    let _ = cluster.set_faults(
                        i,
                        &Faults {
                            blocked,
                            clock_skew_percent: *skew,
                            ..Faults::default()
                        },
                    );
                }
                std::thread::sleep(length);
                cluster.set_all(&Faults::default());
                match cut {
                    Some(l) => format!("clocks skewed {skews:?} percent, leader {l} cut off"),
                    None => format!("clocks skewed {skews:?} percent"),
                }
            }
            Nemesis::Membership => {
                // A node out of the configuration and back: half the time the leader.
                let victim = match cluster.leader() {
                    Some(l) if rng.below(2) == 0 => l,
                    _ => rng.below(opts.nodes as u64) as usize,
                };
                let wait = Duration::from_secs(5);
                let removed = cluster.change(victim, false, wait);
                std::thread::sleep(length);
                // Add it back whatever happened, until it is in (a cluster left short of a
                // node would bear fewer faults for the rest of the run).
                let added = (0..3)
                    .map(|_| cluster.change(victim, true, wait))
                    .find(|r| r.is_ok())
                    .unwrap_or_else(|| cluster.change(victim, true, wait));
                match (removed, added) {
                    (Ok(()), Ok(())) => format!("node {victim} removed, then added back"),
                    (removed, added) => format!(
                        "node {victim}: removal {}, addition {}",
                        outcome(&removed),
                        outcome(&added)
                    ),
                }
            }
            Nemesis::Pause => {
                // One node: for a fail-stop protocol a serving one, never the spared one;
                // otherwise half the time the leader (a paused leader that wakes up still
                // thinks it leads), else any.
                let victim = if one_at_a_time.is_some() {
                    let alive = serving_nodes(cluster, one_at_a_time);
                    (alive.len() > 1).then(|| alive[rng.below(alive.len() as u64) as usize])
                } else {
                    let leader = if rng.below(2) == 0 {
                        cluster.leader()
                    } else {
                        None
                    };
                    Some(leader.unwrap_or_else(|| rng.below(opts.nodes as u64) as usize))
                };
                match victim {
                    None => {
                        std::thread::sleep(length);
                        "no pause: one node serving".to_string()
                    }
                    Some(victim) => {
                        let paused = cluster.pause(victim);
                        std::thread::sleep(length);
                        // Resume it whatever happened: a node left stopped would stall the
                        // rest of the run.
                        cluster.resume(victim)?;
                        match paused {
                            Ok(()) => format!("node {victim} paused (SIGSTOP), then resumed"),
                            Err(e) => format!("node {victim} not paused: {e}"),
                        }
                    }
                }
            }
        };
        tracing::info!(?kind, %detail, "fault healed");
        faults.push(FaultRecord {
            kind,
            detail,
            start: since(start),
            healed: since(Instant::now()),
        });
    }
}

/// A configuration change's outcome, for a fault's record.
fn outcome(r: &std::io::Result<()>) -> String {
    match r {
        Ok(()) => "committed".to_string(),
        Err(e) => format!("not committed ({e})"),
    }
}

/// The nodes a fail-stop nemesis may take: those serving, but the spared one.
fn serving_nodes(cluster: &mut Cluster, spared: Option<stateright::actor::Id>) -> Vec<usize> {
    let spared = spared.map(usize::from);
    (0..cluster.len())
        .filter(|i| Some(*i) != spared && serving(cluster, *i))
        .collect()
}

/// Whether node `i` runs and serves: not stopped on its own (a fail-stop node that lost its
/// lease still runs, and says `failed` when asked), nor waiting to be added or caught up.
fn serving(cluster: &mut Cluster, i: usize) -> bool {
    cluster.is_running(i)
        && !cluster.query_status(i).ok().flatten().is_some_and(|s| {
            ["failed", "joining", "catching up"]
                .iter()
                .any(|w| s.starts_with(w))
        })
}
