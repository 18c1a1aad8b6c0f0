//! A Jepsen-style test of any registered protocol with clients: concurrent clients run the
//! protocol's workload while a nemesis kills and restarts nodes, partitions the network and makes
//! it lossy and slow; the history is recorded and checked by the same `properties` code the
//! protocol's model uses (linearizability for Raft's KV store, serializability for two-phase
//! commit's transactions).
//!
//! Each client is one session: the model's client actor (one client id, increasing request ids),
//! driven by [`Driven`]. An operation that gets no answer before its deadline is indefinite
//! (`info`) if it may write, and failed if it only reads (a read has no effect, Jepsen's
//! convention); after an indefinite operation the client carries on as a new process of the
//! history, since its old operation stays open to the end.
//!
//! The seed (`--seed`) fixes the workload and the fault schedule; it is printed at the start and
//! in the report, so a run can be repeated (the cluster's own timing still varies).

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

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
}

impl std::fmt::Display for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Nemesis::Kill => "kill",
            Nemesis::Partition => "partition",
            Nemesis::Loss => "loss",
            Nemesis::Delay => "delay",
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
            _ => Err(format!(
                "unknown nemesis '{s}' (expected kill, partition, loss or delay)"
            )),
        }
    }
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
}

impl JepsenReport {
    /// The test passes: the history checks, and the cluster served after the last fault.
    pub fn passed(&self) -> bool {
        self.check.ok && self.ok_after_heal > 0
    }

    /// The history was checked and failed (a verdict, not an unknown).
    pub fn refuted(&self) -> bool {
        !self.check.ok && self.check.verdict != "unknown"
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

/// Runs the test of protocol `S`.
pub fn run<S: Jepsen>(opts: &JepsenOpts) -> anyhow::Result<JepsenReport>
where
    <S::Actor as stateright::actor::Actor>::Timer: std::hash::Hash + Eq,
{
    anyhow::ensure!(opts.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(opts.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(opts.keys >= 1, "--keys must be at least 1");
    let _ = fs::remove_dir_all(&opts.dir);
    tracing::info!(
        protocol = S::NAME,
        seed = opts.seed,
        nemesis = ?opts.nemesis,
        bug = ?opts.bug,
        "jepsen starts"
    );
    let mut cluster = Cluster::start(ClusterSpec {
        protocol: S::NAME.to_string(),
        node_bin: opts.node_bin.clone(),
        dir: opts.dir.clone(),
        nodes: opts.nodes,
        base_port: None,
        tuning: opts.tuning.clone(),
        bug: opts.bug,
        seed: Some(opts.seed),
        capacity: None,
    })?;
    let recorder = Arc::new(Recorder::<S::Op, S::Ret> {
        start: Instant::now(),
        history: Mutex::new(History::default()),
    });
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let end = recorder.start + opts.duration;

    let mut workers = Vec::new();
    let finals = S::final_ops(opts.keys);
    let all_stopped = Arc::new(std::sync::Barrier::new(opts.clients));
    for c in 0..opts.clients {
        let (recorder, counts, stop) = (recorder.clone(), counts.clone(), stop.clone());
        let (finals, all_stopped) = (finals.clone(), all_stopped.clone());
        let (keys, op_timeout, seed) = (opts.keys, opts.op_timeout, opts.seed);
        let mut client = Driven::<S>::start(&cluster.config, &opts.tuning, Some(CLIENT_IDS + c))?;
        workers.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed).fork(c as u64);
            let mut process = c as u64;
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = ((c as u64) << 32) | n;
                let op = S::workload(&mut rng, keys, id);
                let read_only = S::read_only(&op);
                let name = S::show_op(&op);
                let i = recorder.invoke(
                    process,
                    id,
                    op.clone(),
                    format!("process {process}: {name}"),
                );
                match client.call(op, op_timeout) {
                    Ok(ret) => {
                        let shown = format!("process {process}: {name} => {:?}", S::show(&ret));
                        let at = recorder.complete(i, Outcome::Ok(ret), shown);
                        let mut counts = counts.lock().expect("counts lock");
                        counts.ok += 1;
                        counts.ok_times.push(at);
                    }
                    Err(_) if read_only => {
                        let shown = format!("process {process}: {name} => failed");
                        recorder.complete(i, Outcome::Fail, shown);
                        counts.lock().expect("counts lock").failed += 1;
                    }
                    Err(_) => {
                        let shown = format!("process {process}: {name} => indefinite");
                        recorder.complete(i, Outcome::Info, shown);
                        counts.lock().expect("counts lock").indefinite += 1;
                        // The open operation keeps this process busy: carry on as another.
                        process += PROCESS_STRIDE;
                    }
                }
            }
            if finals.is_empty() {
                return;
            }
            // Final operations, once every client has stopped and the nodes have settled.
            all_stopped.wait();
            std::thread::sleep(crate::service::FINAL_SETTLE);
            for (k, op) in finals.into_iter().enumerate() {
                let id = FINAL_OPS | ((c as u64) << 32) | k as u64;
                let name = S::show_op(&op);
                let i = recorder.invoke(
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
                recorder.complete(i, outcome, shown);
            }
        }));
    }

    // The nemesis: quiet, fault, heal, over and over, leaving the last stretch quiet.
    let mut faults = Vec::new();
    let mut rng = Rng::new(opts.seed);
    let quiet_end = opts.duration.saturating_sub(Duration::from_secs(3));
    let since = |t: Instant| t.duration_since(recorder.start).as_secs_f64();
    if !opts.nemesis.is_empty() {
        loop {
            let pause = Duration::from_millis(500 + rng.below(1000));
            let length = Duration::from_millis(1000 + rng.below(2000));
            if recorder.start.elapsed() + pause + length > quiet_end {
                break;
            }
            std::thread::sleep(pause);
            let kind = opts.nemesis[rng.below(opts.nemesis.len() as u64) as usize];
            let start = Instant::now();
            let detail = match kind {
                Nemesis::Kill if S::one_at_a_time().is_some() => {
                    // One node, never the spared one, never the last one serving; it comes
                    // back empty (chain replication: it joins again at the tail).
                    let alive = serving_nodes(&mut cluster, S::one_at_a_time());
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
                Nemesis::Partition if S::one_at_a_time().is_some() => {
                    // Cut one node off (never the spared master, never the last one serving):
                    // its lease runs out and it stops serving, the master removes it, and it
                    // joins again once the partition heals.
                    let alive = serving_nodes(&mut cluster, S::one_at_a_time());
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
                        blocked: Vec::new(),
                        loss: 0.1,
                        max_delay_ms: 27,
                    });
                    std::thread::sleep(length);
                    cluster.set_all(&Faults::default());
                    "10% of messages between nodes lost, the rest delayed 0-27 ms".to_string()
                }
                Nemesis::Delay => {
                    cluster.set_all(&Faults {
                        blocked: Vec::new(),
                        loss: 0.0,
                        max_delay_ms: 27,
                    });
                    std::thread::sleep(length);
                    cluster.set_all(&Faults::default());
                    "messages between nodes delayed 0-27 ms, in order".to_string()
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
    let last_heal = faults.last().map_or(0.0, |f| f.healed);
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
    }
    cluster.stop();
    let seconds = recorder.start.elapsed().as_secs_f64();

    let history = std::mem::take(&mut *recorder.history.lock().expect("history lock"));
    let checked = Instant::now();
    let check = S::check(&history, &opts.dir)?;
    let counts = counts.lock().expect("counts lock");
    let report = JepsenReport {
        protocol: S::NAME,
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
    };
    fs::write(&report.page, crate::viewer::page(&report, &history))?;
    Ok(report)
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
        && !crate::node::query_status(cluster.addr(i))
            .ok()
            .flatten()
            .is_some_and(|s| {
                ["failed", "joining", "catching up"]
                    .iter()
                    .any(|w| s.starts_with(w))
            })
}
