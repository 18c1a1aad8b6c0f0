//! Spark's messages and actors: the driver's DAG scheduler (§4, §5.1) and the workers that run
//! tasks, keep shuffle outputs and cached partitions in memory, and serve shuffle fetches.
//! The jobs' data and computation are in [`Job`]: what a task computes from its inputs is a
//! pure function, so that a recomputed partition is the same partition (the lineage of §2.1),
//! except where a job is indeterminate by design (`repartition`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// A record: a key and a value.
pub type Rec = (u8, i64);
/// A stage's number.
pub type StageId = u16;
/// A partition's number.
pub type Part = u16;

/// Ranks are fixed-point numbers with this scale (integer arithmetic keeps every
/// recomputation bit-for-bit equal).
pub const SCALE: i64 = 1_000_000;

/// The job the driver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Job {
    /// `input.flatMap(words).map(w => (w, 1)).reduceByKey(_ + _).collect()` (§2.2.1, §3).
    WordCount,
    /// Two iterations of PageRank on three vertices (§3.2.2): the links RDD is partitioned by
    /// vertex and persisted, the ranks are co-partitioned with it, so the join is narrow.
    PageRank,
    /// `input.repartition(2).collect()`: a round-robin shuffle whose assignment depends on
    /// the order a task sees its input in, which differs between attempts (SPARK-23207).
    Repartition,
}

impl Job {
    pub const NAMES: &'static [&'static str] = &["wordcount", "pagerank", "repartition"];

    pub fn from_name(name: &str) -> Option<Job> {
        match name {
            "wordcount" => Some(Job::WordCount),
            "pagerank" => Some(Job::PageRank),
            "repartition" => Some(Job::Repartition),
            _ => None,
        }
    }

    /// The stages: each reads stable storage or the shuffle output of the stage before it,
    /// and ends in a shuffle or in the result.
    pub fn plan(self) -> Plan {
        let stage = |inputs: Vec<StageId>, output| StageDef {
            inputs,
            output,
            partitions: PARTITIONS as Part,
            // A round-robin repartition of input whose order is not fixed (SPARK-23207).
            indeterminate: self == Job::Repartition && output == StageOutput::Shuffle,
        };
        let stages = match self {
            Job::WordCount | Job::Repartition => vec![
                stage(vec![], StageOutput::Shuffle),
                stage(vec![0], StageOutput::Result),
            ],
            Job::PageRank => vec![
                stage(vec![], StageOutput::Shuffle),
                stage(vec![0], StageOutput::Shuffle),
                stage(vec![1], StageOutput::Result),
            ],
        };
        Plan { stages }
    }

    /// The stage whose shuffle output `stage` reads, if any (each of the model's stages reads
    /// one at most).
    pub fn input_of(self, stage: StageId) -> Option<StageId> {
        self.plan().stages[usize::from(stage)]
            .inputs
            .first()
            .copied()
    }

    /// Whether a stage reads the persisted links RDD (PageRank's join).
    pub fn reads_links(self, stage: StageId) -> bool {
        self == Job::PageRank && stage < 2
    }

    /// Input partition `p` in stable storage (HDFS in the paper).
    pub fn input(self, p: Part) -> Vec<Rec> {
        match (self, p) {
            // "a b a" and "b c": words as keys.
            (Job::WordCount, 0) => vec![(b'a', 0), (b'b', 0), (b'a', 0)],
            (Job::WordCount, _) => vec![(b'b', 0), (b'c', 0)],
            (Job::Repartition, 0) => vec![(1, 0), (2, 0), (3, 0)],
            (Job::Repartition, _) => vec![(4, 0), (5, 0)],
            // Link lines `src dst`, partitioned by source vertex (mod 2): 0→1, 0→2, 2→0; 1→2.
            (Job::PageRank, 0) => vec![(0, 1), (0, 2), (2, 0)],
            (Job::PageRank, _) => vec![(1, 2)],
        }
    }

    /// The links RDD's partition `p` computed from stable storage: each vertex's out-links
    /// (`links = lines.map(parse).groupByKey()`, pre-partitioned).
    pub fn links(self, p: Part) -> Links {
        let mut links: Links = BTreeMap::new();
        for (src, dst) in self.input(p) {
            links.entry(src).or_default().push(dst as u8);
        }
        links
    }

    /// The task of `stage` for partition `p`, attempt `attempt`: its output from its input
    /// records (stable input, or the shuffle blocks fetched for `p`) and the links partition.
    pub fn compute(
        self,
        stage: StageId,
        p: Part,
        attempt: u8,
        input: Vec<Rec>,
        links: Option<&Links>,
    ) -> Output {
        let buckets = |recs: Vec<Rec>| {
            let mut b = vec![Vec::new(); PARTITIONS];
            for (k, v) in recs {
                b[usize::from(k) % PARTITIONS].push((k, v));
            }
            Output::Buckets(b)
        };
        let sum = |recs: Vec<Rec>| {
            let mut m: BTreeMap<u8, i64> = BTreeMap::new();
            for (k, v) in recs {
                *m.entry(k).or_default() += v;
            }
            m
        };
        match (self, stage) {
            (Job::WordCount, 0) => buckets(input.into_iter().map(|(w, _)| (w, 1)).collect()),
            (Job::WordCount, _) => Output::Result(sum(input).into_iter().collect()),
            (Job::Repartition, 0) => {
                // Round robin from a start that depends on the order the task saw its input
                // in: here, on the attempt.
                let mut b = vec![Vec::new(); PARTITIONS];
                for (i, r) in input.into_iter().enumerate() {
                    b[(i + usize::from(attempt) + usize::from(p)) % PARTITIONS].push(r);
                }
                Output::Buckets(b)
            }
            (Job::Repartition, _) => Output::Result(input),
            (Job::PageRank, s) => {
                // Iteration 1 starts from rank 1.0; later ones from the contributions fetched.
                let ranks: BTreeMap<u8, i64> = match links {
                    Some(links) if s == 0 => links.keys().map(|v| (*v, SCALE)).collect(),
                    _ => rank_of_sums(sum(input)),
                };
                let Some(links) = links.filter(|_| s < 2) else {
                    return Output::Result(ranks.into_iter().collect());
                };
                // contribs = links.join(ranks).flatMap { (dests, rank) => dests.map(d => (d, rank / n)) }
                let mut contribs = Vec::new();
                for (v, dests) in links {
                    if let Some(r) = ranks.get(v) {
                        for d in dests {
                            contribs.push((*d, r / dests.len() as i64));
                        }
                    }
                }
                buckets(contribs)
            }
        }
    }

    /// The result without failures: every stage run once, in order.
    pub fn expected(self) -> Vec<Rec> {
        let plan = self.plan();
        let mut outputs: Vec<Vec<Vec<Vec<Rec>>>> = Vec::new();
        let mut result = Vec::new();
        for (s, def) in plan.stages.iter().enumerate() {
            let mut stage_out = Vec::new();
            for p in 0..PARTITIONS as Part {
                let input = match def.inputs.first() {
                    None => self.input(p),
                    Some(parent) => outputs[usize::from(*parent)]
                        .iter()
                        .flat_map(|b: &Vec<Vec<Rec>>| b[usize::from(p)].clone())
                        .collect(),
                };
                let links = self.links(p);
                match self.compute(s as StageId, p, 0, input, Some(&links)) {
                    Output::Buckets(b) => stage_out.push(b),
                    Output::Result(r) => result.extend(r),
                }
            }
            outputs.push(stage_out);
        }
        result.sort();
        result
    }
}

/// PageRank's ranks from the sums of contributions (§3.2.2: `0.15 + 0.85 * sum`).
fn rank_of_sums(sums: BTreeMap<u8, i64>) -> BTreeMap<u8, i64> {
    sums.into_iter()
        .map(|(v, s)| (v, SCALE * 15 / 100 + s * 85 / 100))
        .collect()
}

/// A map output as its worker keeps it: the attempt that wrote it, and one block per reduce
/// partition.
pub type MapOutput = (u8, Vec<Vec<Rec>>);

/// A vertex's out-links.
pub type Links = BTreeMap<u8, Vec<u8>>;

/// Partitions of every RDD in the model.
pub const PARTITIONS: usize = 2;

/// What a stage produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StageOutput {
    /// Map output for the next stage's shuffle, kept by the worker.
    Shuffle,
    /// The job's result, sent to the driver.
    Result,
}

/// A stage (§4): its tasks pipeline narrow transformations, from stable storage or from the
/// shuffle outputs of the stages it reads, to a shuffle output or the job's result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageDef {
    /// The earlier stages whose shuffle outputs its tasks fetch (wide dependencies); none for
    /// a stage that reads stable storage.
    pub inputs: Vec<StageId>,
    pub output: StageOutput,
    /// Its tasks: one a partition.
    pub partitions: Part,
    /// Whether its output depends on the attempt (a round-robin repartition of input whose
    /// order is not fixed, SPARK-23207): a lost output then invalidates every result read
    /// from the old one.
    pub indeterminate: bool,
}

/// A job's stages, each after the stages it reads: what the DAG scheduler runs. The model
/// builds one from its [`Job`]; the runtime cuts one from an RDD's lineage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plan {
    pub stages: Vec<StageDef>,
}

/// What a task produced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// One block per reduce partition.
    Buckets(Vec<Vec<Rec>>),
    Result(Vec<Rec>),
}

/// The messages. `R` is a result partition: the model's records, or the runtime's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SparkMsg<R = Vec<Rec>> {
    /// Driver to worker: run `stage`'s task for `partition`. `parents`: for each stage it reads
    /// (in the order of [`StageDef::inputs`]), where each map output is and which attempt
    /// wrote it (`None`: not registered).
    LaunchTask {
        stage: StageId,
        partition: Part,
        attempt: u8,
        parents: Vec<Vec<Option<(Id, u8)>>>,
    },
    /// Worker to worker, for task `task` (stage, partition, attempt): block `bucket` of map
    /// output `map` of shuffle `shuffle`, as attempt `map_attempt` wrote it.
    Fetch {
        task: (StageId, Part, u8),
        shuffle: StageId,
        map: Part,
        map_attempt: u8,
    },
    /// The block, or `None` when the worker does not have that output (lost in a crash, or
    /// replaced by another attempt's).
    FetchReply {
        task: (StageId, Part, u8),
        shuffle: StageId,
        map: Part,
        data: Option<Vec<Rec>>,
    },
    /// Worker to driver: the task succeeded; a map task's output is at the sender, a result
    /// task's result is `result`.
    TaskDone {
        stage: StageId,
        partition: Part,
        attempt: u8,
        result: Option<R>,
    },
    /// Worker to driver: the task could not fetch map output `map` of shuffle `shuffle`
    /// from `from` (§5.1 of the paper; Spark's `FetchFailed`).
    FetchFailed {
        stage: StageId,
        partition: Part,
        attempt: u8,
        shuffle: StageId,
        map: Part,
        from: Option<Id>,
    },
    /// Worker to driver: the task failed (a cached partition it needs is gone and cannot be
    /// recomputed: only under `persist-is-durable`).
    TaskFailed {
        stage: StageId,
        partition: Part,
        attempt: u8,
    },
    /// A restarted worker to the driver: everything it held is gone.
    Reregister,
    /// A worker to the driver, every little while: it is alive. The model leaves heartbeats
    /// out (its driver's `WorkerLost` timer may fire at any time, which covers both a crash
    /// and a false suspicion); real workers send them.
    Heartbeat,
}

/// The timers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SparkTimer {
    /// Driver: no heartbeat from this worker for a while: it is lost.
    WorkerLost(Id),
    /// Worker: a fetch of this task (stage, partition, attempt) can no longer be answered.
    FetchTimeout(StageId, Part, u8),
}

crate::seeded_bugs! {
    /// The seeded bugs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum SparkBug {
        /// A lost shuffle output is recovered like a lost narrow parent: only the failed
        /// reduce task is run again, without resubmitting the parent stage.
        NarrowRecoveryForWide = "narrow-recovery-for-wide",
        /// An indeterminate stage's lost map output is recomputed alone, and the result
        /// partitions already computed from the old output are kept (SPARK-23207).
        IndeterminateRetry = "indeterminate-retry",
        /// A persisted RDD's lineage is dropped: a lost cached partition cannot be recomputed.
        PersistIsDurable = "persist-is-durable",
    }
}

// A task that fails `max_failures` times (a failed fetch, a failed computation) aborts the
// job (Spark's `spark.task.maxFailures`, 4 by default). A task lost with its worker is not a
// failure of the task and does not count, as in Spark.

/// A task's state at the driver.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// Not run, or its output was lost.
    Pending,
    Running {
        worker: Id,
        attempt: u8,
    },
    /// Done; a map task's output, written by attempt `attempt`, is registered at `worker`.
    Done {
        worker: Id,
        attempt: u8,
    },
}

/// The driver's state: the DAG scheduler's view of each stage's tasks (and so of the map
/// output registry), the results, the workers it knows to be lost.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DriverState<R = Vec<Rec>> {
    pub tasks: Vec<Vec<TaskState>>,
    /// Launches of each task so far (the next attempt's number).
    pub attempts: Vec<Vec<u8>>,
    /// Failures of each task so far.
    pub failures: Vec<Vec<u8>>,
    pub results: Vec<Option<R>>,
    pub lost: Vec<Id>,
    /// A ghost for a property: a stage whose output was lost was resubmitted (§5.1).
    pub resubmitted: bool,
    /// The job was aborted (a task out of attempts).
    pub aborted: bool,
}

impl<R> DriverState<R> {
    /// Every result partition is in.
    pub fn done(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(Option::is_some)
    }
}

impl DriverState {
    /// The collected result, sorted.
    pub fn collected(&self) -> Vec<Rec> {
        let mut all: Vec<Rec> = self.results.iter().flatten().flatten().copied().collect();
        all.sort();
        all
    }
}

/// The driver's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DriverCfg {
    pub plan: Plan,
    pub workers: Vec<Id>,
    /// A task's failures that abort the job.
    pub max_failures: u8,
    pub bug: Option<SparkBug>,
    /// How long a worker may stay silent before it is declared lost.
    pub lost_after: Duration,
}

/// What the driver's steps need of the actor they run in: the model's [`SparkActor`], or the
/// runtime's driver node (whose results are bytes).
pub trait DriverOut<R> {
    fn send(&mut self, to: Id, msg: SparkMsg<R>);
    fn set_timer(&mut self, timer: SparkTimer, after: Duration);
}

impl DriverOut<Vec<Rec>> for Out<SparkActor> {
    fn send(&mut self, to: Id, msg: SparkMsg) {
        Out::send(self, to, msg);
    }
    fn set_timer(&mut self, timer: SparkTimer, after: Duration) {
        Out::set_timer(self, timer, after..after);
    }
}

impl DriverCfg {
    /// The state before any task is launched.
    pub fn initial<R>(&self) -> DriverState<R> {
        let stages = &self.plan.stages;
        let per_stage = |x| {
            stages
                .iter()
                .map(|st| vec![x; usize::from(st.partitions)])
                .collect::<Vec<_>>()
        };
        let results = stages
            .iter()
            .rev()
            .find(|st| st.output == StageOutput::Result)
            .map_or(0, |st| usize::from(st.partitions));
        DriverState {
            tasks: stages
                .iter()
                .map(|st| vec![TaskState::Pending; usize::from(st.partitions)])
                .collect(),
            attempts: per_stage(0),
            failures: per_stage(0),
            results: (0..results).map(|_| None).collect(),
            lost: Vec::new(),
            resubmitted: false,
            aborted: false,
        }
    }

    fn start(&self, o: &mut impl DriverOut<Vec<Rec>>) -> DriverState {
        let mut s = self.initial();
        for w in &self.workers {
            o.set_timer(SparkTimer::WorkerLost(*w), self.lost_after);
        }
        self.schedule(&mut s, o);
        s
    }

    /// Where map output `map` of stage `stage` is registered, and its attempt.
    pub fn location<R>(s: &DriverState<R>, stage: StageId, map: Part) -> Option<(Id, u8)> {
        match s.tasks[usize::from(stage)][usize::from(map)] {
            TaskState::Done { worker, attempt } => Some((worker, attempt)),
            _ => None,
        }
    }

    /// Where the map outputs of each stage `stage` reads are: a `LaunchTask`'s `parents`.
    pub fn parents<R>(&self, s: &DriverState<R>, stage: StageId) -> Vec<Vec<Option<(Id, u8)>>> {
        self.plan.stages[usize::from(stage)]
            .inputs
            .iter()
            .map(|parent| {
                (0..self.plan.stages[usize::from(*parent)].partitions)
                    .map(|m| Self::location(s, *parent, m))
                    .collect()
            })
            .collect()
    }

    /// Whether every map output of stage `stage` is registered.
    fn available<R>(&self, s: &DriverState<R>, stage: StageId) -> bool {
        (0..self.plan.stages[usize::from(stage)].partitions)
            .all(|m| Self::location(s, stage, m).is_some())
    }

    /// Launches the pending tasks of every stage whose parents are available (§4: "the
    /// scheduler ... launches tasks to compute missing partitions from each stage until it has
    /// computed the target RDD").
    pub fn schedule<R>(&self, s: &mut DriverState<R>, o: &mut impl DriverOut<R>) {
        if s.aborted || s.done() {
            return;
        }
        for (stage, def) in self.plan.stages.iter().enumerate() {
            if !def.inputs.iter().all(|i| self.available(s, *i)) {
                continue;
            }
            for p in 0..def.partitions {
                if s.tasks[stage][usize::from(p)] == TaskState::Pending {
                    self.launch(s, stage as StageId, p, o);
                }
            }
        }
    }

    /// Launches `stage`'s task for partition `p` on a live worker (the partition's own, if it
    /// is alive: where a persisted partition was cached, §4's preferred locations).
    fn launch<R>(
        &self,
        s: &mut DriverState<R>,
        stage: StageId,
        p: Part,
        o: &mut impl DriverOut<R>,
    ) {
        let (si, pi) = (usize::from(stage), usize::from(p));
        if s.aborted {
            return;
        }
        let live: Vec<Id> = self
            .workers
            .iter()
            .copied()
            .filter(|w| !s.lost.contains(w))
            .collect();
        let Some(worker) = live
            .iter()
            .copied()
            .find(|w| *w == self.workers[pi % self.workers.len()])
            .or_else(|| live.get(pi % live.len().max(1)).copied())
        else {
            return;
        };
        let parents = self.parents(s, stage);
        let attempt = s.attempts[si][pi];
        s.attempts[si][pi] = attempt.saturating_add(1);
        s.tasks[si][pi] = TaskState::Running { worker, attempt };
        o.send(
            worker,
            SparkMsg::LaunchTask {
                stage,
                partition: p,
                attempt,
                parents,
            },
        );
    }

    /// Map outputs were lost (of `stage`, partitions `maps`): they are unregistered, and the
    /// stage is resubmitted for them (§5.1). For an indeterminate stage, every result computed
    /// from its old output is discarded too (Spark's fix for SPARK-23207).
    fn outputs_lost<R>(&self, s: &mut DriverState<R>, stage: StageId, maps: &[Part]) {
        if maps.is_empty() {
            return;
        }
        for m in maps {
            s.tasks[usize::from(stage)][usize::from(*m)] = TaskState::Pending;
        }
        s.resubmitted = true;
        if self.plan.stages[usize::from(stage)].indeterminate
            && self.bug != Some(SparkBug::IndeterminateRetry)
        {
            for (i, st) in self.plan.stages.iter().enumerate() {
                if st.output == StageOutput::Result && st.inputs.contains(&stage) {
                    for p in 0..usize::from(st.partitions) {
                        s.results[p] = None;
                        s.tasks[i][p] = TaskState::Pending;
                    }
                }
            }
        }
    }

    /// A worker is lost (its heartbeats stopped, or it came back empty): its map outputs and
    /// its running tasks are gone.
    fn worker_lost<R>(&self, s: &mut DriverState<R>, w: Id, o: &mut impl DriverOut<R>) {
        for (stage, def) in self.plan.stages.iter().enumerate() {
            for p in 0..usize::from(def.partitions) {
                if matches!(s.tasks[stage][p], TaskState::Running { worker, .. } if worker == w) {
                    s.tasks[stage][p] = TaskState::Pending;
                }
            }
            if def.output == StageOutput::Shuffle {
                let maps: Vec<Part> = (0..def.partitions)
                    .filter(|m| {
                        Self::location(s, stage as StageId, *m).is_some_and(|(l, _)| l == w)
                    })
                    .collect();
                self.outputs_lost(s, stage as StageId, &maps);
            }
        }
        self.schedule(s, o);
    }

    /// Counts a failure of a task; the job is aborted at `max_failures`.
    fn failed<R>(&self, s: &mut DriverState<R>, stage: StageId, p: Part) {
        let f = &mut s.failures[usize::from(stage)][usize::from(p)];
        *f = f.saturating_add(1);
        if *f >= self.max_failures {
            s.aborted = true;
        }
    }

    fn current<R>(s: &DriverState<R>, stage: StageId, p: Part, attempt: u8) -> bool {
        matches!(s.tasks.get(usize::from(stage)).and_then(|t| t.get(usize::from(p))),
            Some(TaskState::Running { attempt: a, .. }) if *a == attempt)
    }

    /// A worker that is back: what it held is gone, and it may be given tasks again.
    fn rejoined<R>(&self, s: &mut DriverState<R>, w: Id, o: &mut impl DriverOut<R>) {
        if !s.lost.contains(&w) {
            self.worker_lost(s, w, o);
        }
        s.lost.retain(|l| *l != w);
        o.set_timer(SparkTimer::WorkerLost(w), self.lost_after);
        self.schedule(s, o);
    }

    /// The driver's step on a message from `src`.
    pub fn on_msg<R>(
        &self,
        s: &mut DriverState<R>,
        src: Id,
        msg: SparkMsg<R>,
        o: &mut impl DriverOut<R>,
    ) {
        if !self.workers.contains(&src) {
            return;
        }
        match msg {
            SparkMsg::TaskDone {
                stage,
                partition,
                attempt,
                result,
            } if Self::current(s, stage, partition, attempt) => {
                let is_result = self.plan.stages[usize::from(stage)].output == StageOutput::Result;
                if is_result && result.is_none() {
                    return;
                }
                s.tasks[usize::from(stage)][usize::from(partition)] = TaskState::Done {
                    worker: src,
                    attempt,
                };
                if let Some(r) = result.filter(|_| is_result) {
                    if let Some(slot) = s.results.get_mut(usize::from(partition)) {
                        *slot = Some(r);
                    }
                }
                self.schedule(s, o);
            }
            SparkMsg::FetchFailed {
                stage,
                partition,
                attempt,
                shuffle,
                map,
                from,
            } if Self::current(s, stage, partition, attempt) => {
                s.tasks[usize::from(stage)][usize::from(partition)] = TaskState::Pending;
                self.failed(s, stage, partition);
                // The map output is gone from where it was registered.
                let known = s
                    .tasks
                    .get(usize::from(shuffle))
                    .is_some_and(|t| usize::from(map) < t.len());
                if known && Self::location(s, shuffle, map).map(|(l, _)| l) == from {
                    self.outputs_lost(s, shuffle, &[map]);
                }
                if self.bug == Some(SparkBug::NarrowRecoveryForWide) {
                    // As for a narrow dependency: run the failed task again at once.
                    self.launch(s, stage, partition, o);
                }
                self.schedule(s, o);
            }
            SparkMsg::TaskFailed {
                stage,
                partition,
                attempt,
            } if Self::current(s, stage, partition, attempt) => {
                s.tasks[usize::from(stage)][usize::from(partition)] = TaskState::Pending;
                self.failed(s, stage, partition);
                self.schedule(s, o);
            }
            SparkMsg::Reregister => self.rejoined(s, src, o),
            // A heartbeat puts off the worker's loss; one from a worker already declared lost
            // (it was paused, or cut off) brings it back as a new worker.
            SparkMsg::Heartbeat if s.lost.contains(&src) => self.rejoined(s, src, o),
            SparkMsg::Heartbeat => o.set_timer(SparkTimer::WorkerLost(src), self.lost_after),
            _ => {}
        }
    }

    /// The driver's step on a timer.
    pub fn on_timeout<R>(
        &self,
        s: &mut DriverState<R>,
        timer: &SparkTimer,
        o: &mut impl DriverOut<R>,
    ) {
        if let SparkTimer::WorkerLost(w) = timer {
            if !s.lost.contains(w) {
                s.lost.push(*w);
                s.lost.sort();
                self.worker_lost(s, *w, o);
            }
        }
    }
}

/// How long the driver waits for a heartbeat, a worker for a fetch (only timers use it).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// A task waiting for its shuffle blocks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Running {
    pub stage: StageId,
    pub partition: Part,
    pub attempt: u8,
    /// Per map output of the parent stage: where it is fetched from (and which attempt's),
    /// and the block, once in.
    pub from: Vec<(Id, u8)>,
    pub got: Vec<Option<Vec<Rec>>>,
}

/// A worker's state: all in memory, all lost in a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkerState {
    /// Map outputs it holds: `(stage, map partition)` → the attempt that wrote it, and one
    /// block per reduce partition.
    pub outputs: BTreeMap<(StageId, Part), MapOutput>,
    /// Cached partitions of the persisted links RDD (§2.1 `persist`).
    pub cache: BTreeMap<Part, Links>,
    pub running: Vec<Running>,
    /// A ghost for a property: a cached partition was recomputed from its lineage.
    pub recomputed: bool,
}

/// A worker's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerCfg {
    pub driver: Id,
    pub job: Job,
    pub bug: Option<SparkBug>,
}

impl WorkerCfg {
    /// The links partition a task needs: cached, or recomputed from stable storage through
    /// its lineage (`None` under `persist-is-durable`, which dropped the lineage).
    fn links(&self, s: &mut WorkerState, p: Part, attempt: u8) -> Option<Links> {
        if let Some(l) = s.cache.get(&p) {
            return Some(l.clone());
        }
        // A first computation is from storage either way; a recomputation needs lineage.
        if attempt > 0 && self.bug == Some(SparkBug::PersistIsDurable) {
            return None;
        }
        let l = self.job.links(p);
        if attempt > 0 {
            s.recomputed = true;
        }
        s.cache.insert(p, l.clone());
        Some(l)
    }

    /// Runs a task whose inputs are all here.
    fn finish(
        &self,
        s: &mut WorkerState,
        (stage, p, attempt): (StageId, Part, u8),
        input: Vec<Rec>,
        o: &mut Out<SparkActor>,
    ) {
        let links = if self.job.reads_links(stage) {
            match self.links(s, p, attempt) {
                Some(l) => Some(l),
                None => {
                    o.send(
                        self.driver,
                        SparkMsg::TaskFailed {
                            stage,
                            partition: p,
                            attempt,
                        },
                    );
                    return;
                }
            }
        } else {
            None
        };
        let result = match self.job.compute(stage, p, attempt, input, links.as_ref()) {
            Output::Buckets(b) => {
                s.outputs.insert((stage, p), (attempt, b));
                None
            }
            Output::Result(r) => Some(r),
        };
        o.send(
            self.driver,
            SparkMsg::TaskDone {
                stage,
                partition: p,
                attempt,
                result,
            },
        );
    }

    fn launch(
        &self,
        s: &mut WorkerState,
        me: Id,
        (stage, p, attempt): (StageId, Part, u8),
        parents: Vec<Vec<Option<(Id, u8)>>>,
        o: &mut Out<SparkActor>,
    ) {
        let Some(shuffle) = self.job.input_of(stage) else {
            let input = self.job.input(p);
            self.finish(s, (stage, p, attempt), input, o);
            return;
        };
        let parents = parents.into_iter().next().unwrap_or_default();
        let mut run = Running {
            stage,
            partition: p,
            attempt,
            from: Vec::new(),
            got: Vec::new(),
        };
        for (m, loc) in parents.iter().enumerate() {
            let m = m as Part;
            let Some(loc) = *loc else {
                // Nowhere to fetch it from.
                o.send(
                    self.driver,
                    SparkMsg::FetchFailed {
                        stage,
                        partition: p,
                        attempt,
                        shuffle,
                        map: m,
                        from: None,
                    },
                );
                return;
            };
            run.from.push(loc);
            if loc.0 == me {
                match s.outputs.get(&(shuffle, m)).filter(|(a, _)| *a == loc.1) {
                    Some((_, b)) => run.got.push(Some(b[usize::from(p)].clone())),
                    None => {
                        o.send(
                            self.driver,
                            SparkMsg::FetchFailed {
                                stage,
                                partition: p,
                                attempt,
                                shuffle,
                                map: m,
                                from: Some(me),
                            },
                        );
                        return;
                    }
                }
            } else {
                run.got.push(None);
            }
        }
        for (m, (loc, map_attempt)) in run.from.iter().enumerate() {
            if *loc != me {
                o.send(
                    *loc,
                    SparkMsg::Fetch {
                        task: (stage, p, attempt),
                        shuffle,
                        map: m as Part,
                        map_attempt: *map_attempt,
                    },
                );
                o.set_timer(
                    SparkTimer::FetchTimeout(stage, p, attempt),
                    HEARTBEAT..HEARTBEAT,
                );
            }
        }
        self.progress(s, run, o);
    }

    /// A task with all its blocks runs; one still waiting is kept.
    fn progress(&self, s: &mut WorkerState, run: Running, o: &mut Out<SparkActor>) {
        if run.got.iter().all(Option::is_some) {
            o.cancel_timer(SparkTimer::FetchTimeout(
                run.stage,
                run.partition,
                run.attempt,
            ));
            let input = run.got.into_iter().flatten().flatten().collect();
            self.finish(s, (run.stage, run.partition, run.attempt), input, o);
        } else {
            s.running.push(run);
            s.running.sort_by_key(|r| (r.stage, r.partition, r.attempt));
        }
    }

    fn on_msg(&self, s: &mut WorkerState, me: Id, src: Id, msg: SparkMsg, o: &mut Out<SparkActor>) {
        match msg {
            SparkMsg::LaunchTask {
                stage,
                partition,
                attempt,
                parents,
            } => self.launch(s, me, (stage, partition, attempt), parents, o),
            SparkMsg::Fetch {
                task,
                shuffle,
                map,
                map_attempt,
            } => {
                let data = s
                    .outputs
                    .get(&(shuffle, map))
                    .filter(|(a, _)| *a == map_attempt)
                    .map(|(_, b)| b[usize::from(task.1)].clone());
                o.send(
                    src,
                    SparkMsg::FetchReply {
                        task,
                        shuffle,
                        map,
                        data,
                    },
                );
            }
            SparkMsg::FetchReply {
                task,
                shuffle,
                map,
                data,
            } => {
                let waiting = |r: &Running| {
                    (r.stage, r.partition, r.attempt) == task
                        && r.from[usize::from(map)].0 == src
                        && r.got[usize::from(map)].is_none()
                };
                let _ = shuffle;
                let Some(i) = s.running.iter().position(waiting) else {
                    return;
                };
                let mut run = s.running.remove(i);
                match data {
                    Some(block) => {
                        run.got[usize::from(map)] = Some(block);
                        self.progress(s, run, o);
                    }
                    None => {
                        o.cancel_timer(SparkTimer::FetchTimeout(
                            run.stage,
                            run.partition,
                            run.attempt,
                        ));
                        o.send(
                            self.driver,
                            SparkMsg::FetchFailed {
                                stage: run.stage,
                                partition: run.partition,
                                attempt: run.attempt,
                                shuffle,
                                map,
                                from: Some(src),
                            },
                        )
                    }
                }
            }
            _ => {}
        }
    }

    /// A fetch whose answer can no longer come (its worker crashed): the task fails it.
    fn on_timeout(&self, s: &mut WorkerState, timer: &SparkTimer, o: &mut Out<SparkActor>) {
        let SparkTimer::FetchTimeout(stage, p, attempt) = *timer else {
            return;
        };
        let Some(i) = s
            .running
            .iter()
            .position(|r| (r.stage, r.partition, r.attempt) == (stage, p, attempt))
        else {
            return;
        };
        let run = s.running.remove(i);
        let Some(shuffle) = self.job.input_of(run.stage) else {
            return;
        };
        let map = run.got.iter().position(Option::is_none).unwrap_or(0);
        o.send(
            self.driver,
            SparkMsg::FetchFailed {
                stage: run.stage,
                partition: run.partition,
                attempt: run.attempt,
                shuffle,
                map: map as Part,
                from: Some(run.from[map].0),
            },
        );
    }
}

/// An actor: the driver or a worker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SparkActor {
    Driver(DriverCfg),
    Worker(WorkerCfg),
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SparkState {
    Driver(DriverState),
    Worker(WorkerState),
}

impl Actor for SparkActor {
    type Msg = SparkMsg;
    type Timer = SparkTimer;
    type State = SparkState;
    /// A worker's mark that it has run before: a restart re-registers.
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<()>, o: &mut Out<Self>) -> SparkState {
        match self {
            SparkActor::Driver(cfg) => SparkState::Driver(cfg.start(o)),
            SparkActor::Worker(cfg) => {
                if storage.is_some() {
                    o.send(cfg.driver, SparkMsg::Reregister);
                } else {
                    o.save(());
                }
                SparkState::Worker(WorkerState::default())
            }
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<SparkState>,
        src: Id,
        msg: SparkMsg,
        o: &mut Out<Self>,
    ) {
        let mut next = (**state).clone();
        match (self, &mut next) {
            (SparkActor::Driver(cfg), SparkState::Driver(s)) => cfg.on_msg(s, src, msg, o),
            (SparkActor::Worker(cfg), SparkState::Worker(s)) => cfg.on_msg(s, id, src, msg, o),
            _ => return,
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<SparkState>,
        timer: &SparkTimer,
        o: &mut Out<Self>,
    ) {
        let mut next = (**state).clone();
        match (self, &mut next) {
            (SparkActor::Driver(cfg), SparkState::Driver(s)) => cfg.on_timeout(s, timer, o),
            (SparkActor::Worker(cfg), SparkState::Worker(s)) => cfg.on_timeout(s, timer, o),
            _ => return,
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }
}
