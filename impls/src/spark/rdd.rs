//! Resilient distributed datasets (Zaharia et al., NSDI 2012): the API of §2.2 and Table 2,
//! lazy until an action, narrow dependencies pipelined in a task, wide ones cut into stages at
//! a hash shuffle (§4), and lost partitions rebuilt from lineage (§5.1).
//!
//! A [`Context`] runs its jobs in one of two ways:
//! - **in this process** ([`Context::new`]): a fixed set of workers, each a thread with its own
//!   memory (cached partitions and the map outputs of shuffles). Partition `p` runs on worker
//!   `p mod workers` (a cached partition's worker, §4's preferred locations).
//!   [`Context::kill_worker`] wipes a worker's memory, as a crash of its machine would. The
//!   scheduler then does what `checker spark` checks: a reduce task whose map output is gone
//!   fails its fetch, the map output is unregistered, the parent stage is resubmitted for it,
//!   and the reduce task runs again; a lost cached partition is recomputed from its parents;
//! - **on worker processes** ([`Context::remote`]): each action's lineage is cut into a
//!   [`Plan`] (the stages and the shuffles they read) that the model's driver actor schedules
//!   over TCP (`spark::cluster`). A worker rebuilds the same lineage by running the same
//!   program in a [`Context::replay`], which answers the actions before the job it needs with
//!   the results the driver recorded, and stops at that job: the program is the closure Spark
//!   would ship.
//!
//! A task sees its worker through an [`Executor`]: the cache, its map outputs, and the fetch
//! of other map outputs.

use rustc_hash::FxHashMap as HashMap;
use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use models::spark::{Plan, StageDef, StageOutput};

/// What an RDD may hold: cloned within a worker, encoded between processes.
pub trait Data: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Data for T {}

/// A key of a pair RDD.
pub trait Key: Data + Hash + Eq + Ord {}
impl<T: Data + Hash + Eq + Ord> Key for T {}

/// A partition kept in a worker's memory (its type is its RDD's).
pub type Shared = Arc<dyn Any + Send + Sync>;

/// A task could not fetch map output `map` of shuffle `shuffle` (Spark's `FetchFailed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchFailed {
    pub shuffle: usize,
    pub map: usize,
}

/// Why a task did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    Fetch(FetchFailed),
    /// Anything else: a block that does not decode, a disk that refuses a map output.
    Failed(String),
}

impl From<FetchFailed> for TaskError {
    fn from(f: FetchFailed) -> Self {
        TaskError::Fetch(f)
    }
}

/// Encodes records for a shuffle block, a result or a replayed action.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).expect("records encode")
}

/// Decodes what [`encode`] wrote.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TaskError> {
    bincode::deserialize(bytes)
        .map_err(|e| TaskError::Failed(format!("a block does not decode: {e}")))
}

/// A map task's output: one bucket for each reduce partition.
pub trait Buckets: Send + Sync {
    /// Each bucket, encoded.
    fn encode(&self) -> Vec<Vec<u8>>;
    fn as_any(&self) -> &dyn Any;
}

impl<K: Key, V: Data> Buckets for Vec<Vec<(K, V)>> {
    fn encode(&self) -> Vec<Vec<u8>> {
        self.iter().map(encode).collect()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A fetched bucket: shared from this process's memory, or bytes from another worker.
pub enum Block {
    Shared(Arc<dyn Buckets>),
    Bytes(Vec<u8>),
}

/// The worker a task runs on: its memory, and the shuffle outputs it can fetch.
pub trait Executor: Sync {
    /// Partition `p` of persisted RDD `rdd`, if this worker holds it.
    fn cached(&self, rdd: usize, p: usize) -> Option<Shared>;
    fn cache(&self, rdd: usize, p: usize, part: Shared);
    /// Keeps map output `map` of shuffle `shuffle` on this worker.
    fn put_output(
        &self,
        shuffle: usize,
        map: usize,
        out: Arc<dyn Buckets>,
    ) -> Result<(), TaskError>;
    /// Bucket `bucket` of map output `map` of shuffle `shuffle`, from wherever it is.
    fn fetch(&self, shuffle: usize, map: usize, bucket: usize) -> Result<Block, FetchFailed>;
}

/// A worker's memory (in-process workers).
#[derive(Default)]
struct Worker {
    cache: HashMap<(usize, usize), Shared>,
    /// Map outputs: (shuffle, map partition) → its buckets.
    outputs: HashMap<(usize, usize), Arc<dyn Buckets>>,
}

/// What the scheduler did, for tests and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub tasks: usize,
    /// Map tasks run again because their output was lost.
    pub resubmitted: usize,
    /// Cached partitions recomputed because they were lost.
    pub recomputed: usize,
    pub fetch_failures: usize,
}

/// In-process workers and their scheduler.
struct Local {
    workers: Vec<Mutex<Worker>>,
    /// The map output registry: (shuffle, map partition) → worker.
    registry: Mutex<HashMap<(usize, usize), usize>>,
    /// Cached partitions computed once: (rdd, partition), to tell a recomputation.
    computed: Mutex<std::collections::HashSet<(usize, usize)>>,
    stats: Mutex<Stats>,
    /// Kills this worker when this many more tasks have run (a fault for tests).
    kill_after: Mutex<Option<(usize, usize)>>,
}

/// Runs jobs on worker processes: the driver's side of [`Context::remote`].
pub trait JobRunner: Send + Sync {
    /// Runs the job of `plan`, whose stage `i` is shuffle `keys[i]`'s map stage (the last:
    /// the result stage, key `u64::MAX`); each result partition encoded, or why it failed.
    fn run(&self, plan: Plan, keys: Vec<u64>) -> Result<Vec<Vec<u8>>, String>;
}

/// The job a replay stopped at: its plan, and how a worker runs each of its tasks.
pub struct Target {
    pub plan: Plan,
    pub keys: Vec<u64>,
    shuffles: Vec<Arc<dyn ShuffleDep>>,
    result: ResultTask,
}

/// A result task: its partition, encoded.
type ResultTask = Arc<dyn Fn(&dyn Executor, usize) -> Result<Vec<u8>, TaskError> + Send + Sync>;

impl Target {
    /// Runs task `p` of stage `stage`: a map task keeps its output on `exec`, a result task
    /// returns its partition encoded.
    pub fn run(
        &self,
        exec: &dyn Executor,
        stage: usize,
        p: usize,
    ) -> Result<Option<Vec<u8>>, TaskError> {
        match self.shuffles.get(stage) {
            Some(dep) => dep.run_map(exec, p).map(|()| None),
            None if stage == self.shuffles.len() => (self.result)(exec, p).map(Some),
            None => Err(TaskError::Failed(format!("the job has no stage {stage}"))),
        }
    }
}

/// The panic payload that stops a replay at its target job.
struct ReplayStop;

/// A worker's rerun of the program up to one job.
struct Replay {
    /// Each earlier job's result partitions, as the driver recorded them.
    history: Arc<Vec<Vec<Vec<u8>>>>,
    next: AtomicUsize,
    target: Mutex<Option<Target>>,
}

enum Backend {
    Local(Local),
    Remote(Box<dyn JobRunner>),
    Replay(Replay),
}

struct Inner {
    backend: Backend,
    next_id: AtomicUsize,
}

/// The driver's handle: creates RDDs and runs jobs.
#[derive(Clone)]
pub struct Context(Arc<Inner>);

impl Context {
    /// A context whose workers are `workers` threads of this process.
    pub fn new(workers: usize) -> Context {
        assert!(workers > 0, "a context needs a worker");
        Context::with(Backend::Local(Local {
            workers: (0..workers)
                .map(|_| Mutex::new(Worker::default()))
                .collect(),
            registry: Mutex::new(HashMap::default()),
            computed: Mutex::new(Default::default()),
            stats: Mutex::new(Stats::default()),
            kill_after: Mutex::new(None),
        }))
    }

    /// A context whose jobs `runner` runs on worker processes.
    pub fn remote(runner: Box<dyn JobRunner>) -> Context {
        Context::with(Backend::Remote(runner))
    }

    /// Runs `program` as a worker does to rebuild the lineage of the job after those in
    /// `history` (whose recorded results the earlier actions return); `None` if the program
    /// ends before that job.
    pub fn replay(
        history: Arc<Vec<Vec<Vec<u8>>>>,
        program: impl FnOnce(&Context),
    ) -> Option<Target> {
        let ctx = Context::with(Backend::Replay(Replay {
            history,
            next: AtomicUsize::new(0),
            target: Mutex::new(None),
        }));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program(&ctx)));
        if let Err(payload) = run {
            if !payload.is::<ReplayStop>() {
                std::panic::resume_unwind(payload);
            }
        }
        let Backend::Replay(r) = &ctx.0.backend else {
            unreachable!("a replay context")
        };
        let target = r.target.lock().expect("replay").take();
        target
    }

    fn with(backend: Backend) -> Context {
        Context(Arc::new(Inner {
            backend,
            next_id: AtomicUsize::new(0),
        }))
    }

    fn local(&self) -> &Local {
        match &self.0.backend {
            Backend::Local(l) => l,
            _ => panic!("only a context of in-process workers has this"),
        }
    }

    pub fn workers(&self) -> usize {
        match &self.0.backend {
            Backend::Local(l) => l.workers.len(),
            _ => 0,
        }
    }

    fn id(&self) -> usize {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn stats(&self) -> Stats {
        match &self.0.backend {
            Backend::Local(l) => l.stats.lock().expect("stats").clone(),
            _ => Stats::default(),
        }
    }

    /// Wipes worker `w`'s memory: its cached partitions and map outputs are gone.
    pub fn kill_worker(&self, w: usize) {
        *self.local().workers[w].lock().expect("worker") = Worker::default();
    }

    /// Kills worker `w` once `tasks` more tasks have run (in the middle of a job).
    pub fn kill_after(&self, w: usize, tasks: usize) {
        *self.local().kill_after.lock().expect("kill") = Some((w, tasks));
    }

    fn task_ran(&self) {
        let l = self.local();
        l.stats.lock().expect("stats").tasks += 1;
        let mut k = l.kill_after.lock().expect("kill");
        if let Some((w, n)) = *k {
            if n <= 1 {
                *k = None;
                drop(k);
                self.kill_worker(w);
            } else {
                *k = Some((w, n - 1));
            }
        }
    }

    /// An RDD of `data` cut into `parts` partitions (stable storage: never lost). Worker
    /// processes rebuild `data` by running the program again: give them inputs read lazily
    /// ([`Context::source`], [`Context::text_file`]) rather than large vectors.
    pub fn parallelize<T: Data>(&self, data: Vec<T>, parts: usize) -> Rdd<T> {
        let parts = parts.max(1);
        let chunk = data.len().div_ceil(parts).max(1);
        let pieces: Vec<Arc<Vec<T>>> = (0..parts)
            .map(|p| {
                let from = (p * chunk).min(data.len());
                let to = ((p + 1) * chunk).min(data.len());
                Arc::new(data[from..to].to_vec())
            })
            .collect();
        self.source(parts, move |p| pieces[p].as_ref().clone())
    }

    /// An RDD whose partition `p` is `read(p)` from stable storage.
    pub fn source<T: Data>(
        &self,
        parts: usize,
        read: impl Fn(usize) -> Vec<T> + Send + Sync + 'static,
    ) -> Rdd<T> {
        Rdd {
            ctx: self.clone(),
            id: self.id(),
            parts,
            partitioned: None,
            compute: Arc::new(move |_, p| Ok(read(p))),
            shuffles: Vec::new(),
        }
    }

    /// The lines of `paths`, in at least `parts` partitions of about equal bytes, each cut at
    /// line ends (a partition owns the lines that start in its byte range, as Hadoop's
    /// `TextInputFormat` does). A file that cannot be read fails the task that reads it.
    pub fn text_file(
        &self,
        paths: &[std::path::PathBuf],
        parts: usize,
    ) -> std::io::Result<Rdd<String>> {
        let mut splits: Vec<(std::path::PathBuf, u64, u64)> = Vec::new();
        let sizes: Vec<u64> = paths
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()))
            .collect::<std::io::Result<_>>()?;
        let total: u64 = sizes.iter().sum();
        let per = total.div_ceil(parts.max(1) as u64).max(1);
        for (path, size) in paths.iter().zip(sizes) {
            let mut start = 0;
            while start < size || (size == 0 && start == 0) {
                let len = per.min(size - start);
                splits.push((path.clone(), start, len));
                start += len.max(1);
            }
        }
        let splits = Arc::new(splits);
        Ok(Rdd {
            ctx: self.clone(),
            id: self.id(),
            parts: splits.len(),
            partitioned: None,
            compute: Arc::new(move |_, p| {
                let (path, start, len) = &splits[p];
                read_lines(path, *start, *len)
                    .map_err(|e| TaskError::Failed(format!("{}: {e}", path.display())))
            }),
            shuffles: Vec::new(),
        })
    }

    /// Runs the map stages `shuffles` need (parents first), each for its missing outputs;
    /// `seen` holds the shuffles already complete in this job.
    fn run_shuffles(
        &self,
        shuffles: &[Arc<dyn ShuffleDep>],
        seen: &mut std::collections::HashSet<usize>,
    ) -> Result<(), TaskError> {
        let l = self.local();
        for s in shuffles {
            if seen.contains(&s.id()) {
                continue;
            }
            let missing: Vec<usize> = {
                let reg = l.registry.lock().expect("registry");
                (0..s.maps())
                    .filter(|m| !reg.contains_key(&(s.id(), *m)))
                    .collect()
            };
            if missing.is_empty() {
                // Complete: its parents are not needed (the lineage is cut here).
                seen.insert(s.id());
                continue;
            }
            self.run_shuffles(&s.parents(), seen)?;
            let results = self.run_tasks(&missing, |m, w| s.run_map(&self.on(w), m));
            for (m, r) in missing.iter().zip(results) {
                r?;
                l.registry
                    .lock()
                    .expect("registry")
                    .insert((s.id(), *m), self.worker_of(*m));
            }
            seen.insert(s.id());
        }
        Ok(())
    }

    fn worker_of(&self, p: usize) -> usize {
        p % self.workers()
    }

    /// In-process worker `w` as a task's executor.
    fn on(&self, w: usize) -> LocalExec<'_> {
        LocalExec { ctx: self, w }
    }

    /// Runs `task(p, worker)` for each partition, the tasks of each worker in a thread of its
    /// own; the results in partition order.
    fn run_tasks<R: Send>(
        &self,
        parts: &[usize],
        task: impl Fn(usize, usize) -> R + Sync,
    ) -> Vec<R> {
        let mut out: Vec<Option<R>> = (0..parts.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.workers())
                .map(|w| {
                    let task = &task;
                    let mine: Vec<(usize, usize)> = parts
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| self.worker_of(**p) == w)
                        .map(|(i, p)| (i, *p))
                        .collect();
                    scope.spawn(move || {
                        mine.into_iter()
                            .map(|(i, p)| {
                                let r = task(p, w);
                                self.task_ran();
                                (i, r)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, r) in h.join().expect("a task panicked") {
                    out[i] = Some(r);
                }
            }
        });
        out.into_iter()
            .map(|r| r.expect("every task ran"))
            .collect()
    }

    /// Runs a job: every partition of `rdd`.
    fn run_job<T: Data>(&self, rdd: &Rdd<T>) -> Vec<Vec<T>> {
        match &self.0.backend {
            Backend::Local(_) => self.run_local(rdd),
            Backend::Remote(runner) => {
                let (plan, keys, _) = plan_of(rdd);
                let parts = runner
                    .run(plan, keys)
                    .unwrap_or_else(|e| panic!("job aborted: {e}"));
                parts
                    .iter()
                    .map(|b| decode(b).unwrap_or_else(|e| panic!("a result partition: {e:?}")))
                    .collect()
            }
            Backend::Replay(r) => {
                let job = r.next.fetch_add(1, Ordering::Relaxed);
                match r.history.get(job) {
                    Some(parts) => parts
                        .iter()
                        .map(|b| decode(b).unwrap_or_else(|e| panic!("a recorded result: {e:?}")))
                        .collect(),
                    None => {
                        let (plan, keys, shuffles) = plan_of(rdd);
                        let compute = rdd.compute.clone();
                        *r.target.lock().expect("replay") = Some(Target {
                            plan,
                            keys,
                            shuffles,
                            result: Arc::new(move |exec, p| Ok(encode(&compute(exec, p)?))),
                        });
                        std::panic::resume_unwind(Box::new(ReplayStop))
                    }
                }
            }
        }
    }

    /// A job on in-process workers (§4: the scheduler runs the missing map stages, then the
    /// result tasks; a failed fetch unregisters the map output and resubmits its stage).
    fn run_local<T: Data>(&self, rdd: &Rdd<T>) -> Vec<Vec<T>> {
        let l = self.local();
        let parts: Vec<usize> = (0..rdd.parts).collect();
        let mut results: Vec<Option<Vec<T>>> = vec![None; rdd.parts];
        loop {
            let failed = match self.run_shuffles(&rdd.shuffles, &mut Default::default()) {
                Err(f) => Some(f),
                Ok(()) => {
                    let todo: Vec<usize> = parts
                        .iter()
                        .copied()
                        .filter(|p| results[*p].is_none())
                        .collect();
                    let done = self.run_tasks(&todo, |p, w| (rdd.compute)(&self.on(w), p));
                    let mut failed = None;
                    for (p, r) in todo.into_iter().zip(done) {
                        match r {
                            Ok(v) => results[p] = Some(v),
                            Err(f) => failed = Some(f),
                        }
                    }
                    failed
                }
            };
            let f = match failed {
                None => return results.into_iter().map(|r| r.expect("computed")).collect(),
                Some(TaskError::Fetch(f)) => f,
                Some(TaskError::Failed(e)) => panic!("a task failed: {e}"),
            };
            // §5.1: the map output is gone; its stage is resubmitted for it. The worker that
            // held it lost its other outputs too: they are unregistered with it (Spark removes
            // a lost executor's outputs at once).
            let mut reg = l.registry.lock().expect("registry");
            let at = reg.get(&(f.shuffle, f.map)).copied();
            let lost: Vec<(usize, usize)> = match at {
                Some(w) => {
                    let store = l.workers[w].lock().expect("worker");
                    reg.iter()
                        .filter(|(k, v)| **v == w && !store.outputs.contains_key(k))
                        .map(|(k, _)| *k)
                        .collect()
                }
                None => vec![(f.shuffle, f.map)],
            };
            for k in &lost {
                reg.remove(k);
            }
            drop(reg);
            let mut stats = l.stats.lock().expect("stats");
            stats.fetch_failures += 1;
            stats.resubmitted += lost.len();
        }
    }
}

/// The lines that start in bytes `start..start + len` of `path` (the first line only if
/// `start` is 0 or follows a line end), through the end of the last such line.
fn read_lines(path: &std::path::Path, start: u64, len: u64) -> std::io::Result<Vec<String>> {
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
    let mut f = BufReader::new(std::fs::File::open(path)?);
    let mut pos = start;
    let mut line = Vec::new();
    if start > 0 {
        // The line that began before `start` belongs to the split before.
        f.seek(SeekFrom::Start(start - 1))?;
        let mut prev = [0u8; 1];
        f.read_exact(&mut prev)?;
        if prev[0] != b'\n' {
            pos += f.read_until(b'\n', &mut line)? as u64;
        }
    }
    let mut out = Vec::new();
    while pos < start + len {
        line.clear();
        let n = f.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        out.push(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(out)
}

/// A job's plan: the shuffles `rdd` depends on, parents first, each a map stage, then the
/// result stage; the key of each stage (its shuffle's id; `u64::MAX` for the result).
fn plan_of<T>(rdd: &Rdd<T>) -> (Plan, Vec<u64>, Vec<Arc<dyn ShuffleDep>>) {
    fn visit(
        deps: &[Arc<dyn ShuffleDep>],
        order: &mut Vec<Arc<dyn ShuffleDep>>,
        seen: &mut std::collections::HashSet<usize>,
    ) {
        for d in deps {
            if seen.insert(d.id()) {
                visit(&d.parents(), order, seen);
                order.push(d.clone());
            }
        }
    }
    let mut order = Vec::new();
    visit(&rdd.shuffles, &mut order, &mut Default::default());
    let index: HashMap<usize, u16> = order
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id(), u16::try_from(i).expect("at most 65535 stages")))
        .collect();
    let inputs = |deps: &[Arc<dyn ShuffleDep>]| -> Vec<u16> {
        let mut v: Vec<u16> = deps.iter().map(|d| index[&d.id()]).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let parts = |n: usize| u16::try_from(n).expect("at most 65535 partitions");
    let mut stages: Vec<StageDef> = order
        .iter()
        .map(|d| StageDef {
            inputs: inputs(&d.parents()),
            output: StageOutput::Shuffle,
            partitions: parts(d.maps()),
            indeterminate: false,
        })
        .collect();
    stages.push(StageDef {
        inputs: inputs(&rdd.shuffles),
        output: StageOutput::Result,
        partitions: parts(rdd.parts),
        indeterminate: false,
    });
    let mut keys: Vec<u64> = order.iter().map(|d| d.id() as u64).collect();
    keys.push(u64::MAX);
    (Plan { stages }, keys, order)
}

/// An in-process worker as a task's executor.
struct LocalExec<'a> {
    ctx: &'a Context,
    w: usize,
}

impl Executor for LocalExec<'_> {
    fn cached(&self, rdd: usize, p: usize) -> Option<Shared> {
        let l = self.ctx.local();
        l.workers[self.w]
            .lock()
            .expect("worker")
            .cache
            .get(&(rdd, p))
            .cloned()
    }

    fn cache(&self, rdd: usize, p: usize, part: Shared) {
        let l = self.ctx.local();
        if !l.computed.lock().expect("computed").insert((rdd, p)) {
            l.stats.lock().expect("stats").recomputed += 1;
        }
        l.workers[self.w]
            .lock()
            .expect("worker")
            .cache
            .insert((rdd, p), part);
    }

    fn put_output(
        &self,
        shuffle: usize,
        map: usize,
        out: Arc<dyn Buckets>,
    ) -> Result<(), TaskError> {
        let l = self.ctx.local();
        l.workers[self.w]
            .lock()
            .expect("worker")
            .outputs
            .insert((shuffle, map), out);
        Ok(())
    }

    fn fetch(&self, shuffle: usize, map: usize, _bucket: usize) -> Result<Block, FetchFailed> {
        let l = self.ctx.local();
        let at = l
            .registry
            .lock()
            .expect("registry")
            .get(&(shuffle, map))
            .copied();
        at.and_then(|w| {
            l.workers[w]
                .lock()
                .expect("worker")
                .outputs
                .get(&(shuffle, map))
                .cloned()
        })
        .map(Block::Shared)
        .ok_or(FetchFailed { shuffle, map })
    }
}

/// A partition's computation, on the executor of the task that needs it.
type Compute<T> = Arc<dyn Fn(&dyn Executor, usize) -> Result<Vec<T>, TaskError> + Send + Sync>;

/// A shuffle dependency (§4: a wide dependency): its map side.
trait ShuffleDep: Send + Sync {
    fn id(&self) -> usize;
    fn maps(&self) -> usize;
    fn parents(&self) -> Vec<Arc<dyn ShuffleDep>>;
    /// Computes map partition `m` and keeps its buckets on the executor.
    fn run_map(&self, exec: &dyn Executor, m: usize) -> Result<(), TaskError>;
}

struct Shuffle<K, V> {
    id: usize,
    parent: Rdd<(K, V)>,
    buckets: usize,
    /// A map-side combiner (`reduceByKey`), if any.
    combine: Option<Arc<dyn Fn(V, V) -> V + Send + Sync>>,
}

/// Adds `(k, v)` to `m`, combining with the value already there.
fn combine_into<K: Key, V: Data>(m: &mut HashMap<K, V>, k: K, v: V, f: &dyn Fn(V, V) -> V) {
    use std::collections::hash_map::Entry;
    match m.entry(k) {
        Entry::Occupied(mut e) => {
            let slot = e.get_mut();
            *slot = f(slot.clone(), v);
        }
        Entry::Vacant(e) => {
            e.insert(v);
        }
    }
}

/// The bucket of key `k` among `n` (a hash partitioner that does not depend on the process).
pub fn bucket_of<K: Hash>(k: &K, n: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    k.hash(&mut h);
    (h.finish() % n as u64) as usize
}

impl<K: Key, V: Data> ShuffleDep for Shuffle<K, V> {
    fn id(&self) -> usize {
        self.id
    }
    fn maps(&self) -> usize {
        self.parent.parts
    }
    fn parents(&self) -> Vec<Arc<dyn ShuffleDep>> {
        self.parent.shuffles.clone()
    }
    fn run_map(&self, exec: &dyn Executor, m: usize) -> Result<(), TaskError> {
        let records = (self.parent.compute)(exec, m)?;
        let mut buckets: Vec<Vec<(K, V)>> = vec![Vec::new(); self.buckets];
        match &self.combine {
            Some(f) => {
                let mut maps: Vec<HashMap<K, V>> = vec![HashMap::default(); self.buckets];
                for (k, v) in records {
                    let b = bucket_of(&k, self.buckets);
                    combine_into(&mut maps[b], k, v, &**f);
                }
                for (b, map) in maps.into_iter().enumerate() {
                    buckets[b] = map.into_iter().collect();
                }
            }
            None => {
                for (k, v) in records {
                    buckets[bucket_of(&k, self.buckets)].push((k, v));
                }
            }
        }
        exec.put_output(self.id, m, Arc::new(buckets))
    }
}

impl<K: Key, V: Data> Shuffle<K, V> {
    /// Bucket `p` of every map output, fetched from the workers that hold them.
    fn fetch(
        exec: &dyn Executor,
        id: usize,
        maps: usize,
        p: usize,
    ) -> Result<Vec<(K, V)>, TaskError> {
        let mut out = Vec::new();
        for m in 0..maps {
            match exec.fetch(id, m, p)? {
                Block::Shared(b) => {
                    let buckets = b
                        .as_any()
                        .downcast_ref::<Vec<Vec<(K, V)>>>()
                        .expect("a shuffle's blocks have its type");
                    out.extend(buckets[p].iter().cloned());
                }
                Block::Bytes(bytes) => out.extend(decode::<Vec<(K, V)>>(&bytes)?),
            }
        }
        Ok(out)
    }
}

/// A resilient distributed dataset: its partitions, how to compute each (its lineage), and
/// the shuffles it depends on.
pub struct Rdd<T> {
    ctx: Context,
    id: usize,
    parts: usize,
    /// Hash-partitioned into this many partitions by key (`partitionBy`, `reduceByKey`).
    partitioned: Option<usize>,
    compute: Compute<T>,
    shuffles: Vec<Arc<dyn ShuffleDep>>,
}

impl<T> Clone for Rdd<T> {
    fn clone(&self) -> Self {
        Rdd {
            ctx: self.ctx.clone(),
            id: self.id,
            parts: self.parts,
            partitioned: self.partitioned,
            compute: self.compute.clone(),
            shuffles: self.shuffles.clone(),
        }
    }
}

impl<T: Data> Rdd<T> {
    pub fn partitions(&self) -> usize {
        self.parts
    }

    /// A narrow transformation of each partition (§2.2: lineage kept, pipelined in a task).
    fn narrow<U: Data>(
        &self,
        keep_partitioner: bool,
        f: impl Fn(Vec<T>) -> Vec<U> + Send + Sync + 'static,
    ) -> Rdd<U> {
        let parent = self.compute.clone();
        Rdd {
            ctx: self.ctx.clone(),
            id: self.ctx.id(),
            parts: self.parts,
            partitioned: if keep_partitioner {
                self.partitioned
            } else {
                None
            },
            compute: Arc::new(move |exec, p| Ok(f(parent(exec, p)?))),
            shuffles: self.shuffles.clone(),
        }
    }

    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Rdd<U> {
        self.narrow(false, move |v| v.into_iter().map(&f).collect())
    }

    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Rdd<T> {
        self.narrow(true, move |v| v.into_iter().filter(|x| f(x)).collect())
    }

    pub fn flat_map<U: Data, I: IntoIterator<Item = U>>(
        &self,
        f: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> Rdd<U> {
        self.narrow(false, move |v| v.into_iter().flat_map(&f).collect())
    }

    pub fn map_partitions<U: Data>(
        &self,
        f: impl Fn(Vec<T>) -> Vec<U> + Send + Sync + 'static,
    ) -> Rdd<U> {
        self.narrow(false, f)
    }

    /// The partitions of both (a narrow dependency on each).
    pub fn union(&self, other: &Rdd<T>) -> Rdd<T> {
        let (a, b, split) = (self.compute.clone(), other.compute.clone(), self.parts);
        let mut shuffles = self.shuffles.clone();
        shuffles.extend(other.shuffles.iter().cloned());
        Rdd {
            ctx: self.ctx.clone(),
            id: self.ctx.id(),
            parts: self.parts + other.parts,
            partitioned: None,
            compute: Arc::new(move |exec, p| {
                if p < split {
                    a(exec, p)
                } else {
                    b(exec, p - split)
                }
            }),
            shuffles,
        }
    }

    /// Keeps each partition in its worker's memory once computed (§2.1 `persist`); a lost one
    /// is recomputed from its lineage.
    pub fn persist(&self) -> Rdd<T> {
        let parent = self.compute.clone();
        let id = self.ctx.id();
        Rdd {
            ctx: self.ctx.clone(),
            id,
            parts: self.parts,
            partitioned: self.partitioned,
            compute: Arc::new(move |exec, p| {
                if let Some(hit) = exec.cached(id, p) {
                    return Ok(hit
                        .downcast_ref::<Vec<T>>()
                        .expect("a cached partition has its RDD's type")
                        .clone());
                }
                let v = parent(exec, p)?;
                exec.cache(id, p, Arc::new(v.clone()));
                Ok(v)
            }),
            shuffles: self.shuffles.clone(),
        }
    }

    pub fn cache(&self) -> Rdd<T> {
        self.persist()
    }

    /// The partitions, in order.
    pub fn collect_partitions(&self) -> Vec<Vec<T>> {
        self.ctx.run_job(self)
    }

    pub fn collect(&self) -> Vec<T> {
        self.collect_partitions().into_iter().flatten().collect()
    }

    pub fn count(&self) -> usize {
        self.map_partitions(|v| vec![v.len()])
            .collect()
            .into_iter()
            .sum()
    }

    pub fn reduce(&self, f: impl Fn(T, T) -> T + Send + Sync + Clone + 'static) -> Option<T> {
        let g = f.clone();
        self.map_partitions(move |v| v.into_iter().reduce(&g).into_iter().collect())
            .collect()
            .into_iter()
            .reduce(f)
    }

    /// Writes each partition as `dir/part-NNNNN`, one `Debug` line a record.
    pub fn save_as_text_file(&self, dir: &std::path::Path) -> std::io::Result<()>
    where
        T: std::fmt::Display,
    {
        std::fs::create_dir_all(dir)?;
        for (p, part) in self.collect_partitions().into_iter().enumerate() {
            let mut text = String::new();
            for x in part {
                text.push_str(&x.to_string());
                text.push('\n');
            }
            crate::storage::write_atomic(&dir.join(format!("part-{p:05}")), text.as_bytes())?;
        }
        Ok(())
    }
}

impl<K: Key, V: Data> Rdd<(K, V)> {
    /// A hash shuffle into `parts` partitions, with an optional map-side combiner.
    fn shuffle(
        &self,
        parts: usize,
        combine: Option<Arc<dyn Fn(V, V) -> V + Send + Sync>>,
    ) -> Rdd<(K, V)> {
        let dep = Arc::new(Shuffle {
            id: self.ctx.id(),
            parent: self.clone(),
            buckets: parts,
            combine,
        });
        let (id, maps) = (dep.id, self.parts);
        Rdd {
            ctx: self.ctx.clone(),
            id: self.ctx.id(),
            parts,
            partitioned: Some(parts),
            compute: Arc::new(move |exec, p| Shuffle::<K, V>::fetch(exec, id, maps, p)),
            shuffles: vec![dep],
        }
    }

    /// Hash-partitioned by key into `parts` partitions (a wide dependency).
    pub fn partition_by(&self, parts: usize) -> Rdd<(K, V)> {
        if self.partitioned == Some(parts) {
            return self.clone();
        }
        self.shuffle(parts, None)
    }

    pub fn map_values<U: Data>(&self, f: impl Fn(V) -> U + Send + Sync + 'static) -> Rdd<(K, U)> {
        self.narrow(true, move |v| {
            v.into_iter().map(|(k, x)| (k, f(x))).collect()
        })
    }

    pub fn reduce_by_key(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        parts: usize,
    ) -> Rdd<(K, V)> {
        let f: Arc<dyn Fn(V, V) -> V + Send + Sync> = Arc::new(f);
        let g = f.clone();
        self.shuffle(parts, Some(f)).narrow(true, move |v| {
            let mut m: HashMap<K, V> =
                HashMap::with_capacity_and_hasher(v.len(), Default::default());
            for (k, x) in v {
                combine_into(&mut m, k, x, &*g);
            }
            m.into_iter().collect()
        })
    }

    pub fn group_by_key(&self, parts: usize) -> Rdd<(K, Vec<V>)> {
        self.partition_by(parts).narrow(true, |v| {
            let mut m: HashMap<K, Vec<V>> = HashMap::default();
            for (k, x) in v {
                m.entry(k).or_default().push(x);
            }
            m.into_iter().collect()
        })
    }

    /// The pairs of both with equal keys. Narrow when both are hash-partitioned alike (§3.2.2:
    /// PageRank's links and ranks); otherwise both are shuffled to that partitioning first.
    pub fn join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, W))> {
        let parts = self.partitioned.unwrap_or(self.parts.max(other.parts));
        let (a, b) = (self.partition_by(parts), other.partition_by(parts));
        let (ca, cb) = (a.compute.clone(), b.compute.clone());
        let mut shuffles = a.shuffles.clone();
        shuffles.extend(b.shuffles.iter().cloned());
        Rdd {
            ctx: self.ctx.clone(),
            id: self.ctx.id(),
            parts,
            partitioned: Some(parts),
            compute: Arc::new(move |exec, p| {
                let left = ca(exec, p)?;
                let right = cb(exec, p)?;
                let mut by_key: HashMap<K, Vec<W>> = HashMap::default();
                for (k, x) in right {
                    by_key.entry(k).or_default().push(x);
                }
                let mut out = Vec::new();
                for (k, v) in left {
                    if let Some(ws) = by_key.get(&k) {
                        for x in ws {
                            out.push((k.clone(), (v.clone(), x.clone())));
                        }
                    }
                }
                Ok(out)
            }),
            shuffles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ctx: &Context) -> Rdd<String> {
        let text = "the cat sat on the mat the end a cat";
        ctx.parallelize(text.split(' ').map(str::to_string).collect(), 3)
    }

    #[test]
    fn word_count_is_lazy_pipelined_and_shuffled() {
        let ctx = Context::new(2);
        let counts = words(&ctx)
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b, 2);
        assert_eq!(ctx.stats().tasks, 0, "lazy until an action");
        let mut got = counts.collect();
        got.sort();
        assert_eq!(got[0], ("a".to_string(), 1));
        assert!(got.contains(&("the".to_string(), 3)));
        assert_eq!(got.len(), 7);
        // 3 map tasks and 2 result tasks.
        assert_eq!(ctx.stats().tasks, 5);
        assert_eq!(words(&ctx).filter(|w| w.len() == 3).count(), 8);
        assert_eq!(words(&ctx).map(|w| w.len()).reduce(|a, b| a + b), Some(27));
        let g = words(&ctx).map(|w| (w.len(), w)).group_by_key(2).collect();
        assert_eq!(g.iter().map(|(_, v)| v.len()).sum::<usize>(), 10);
        let u = words(&ctx).union(&words(&ctx));
        assert_eq!((u.partitions(), u.count()), (6, 20));
    }

    #[test]
    fn a_lost_shuffle_output_resubmits_its_stage_and_the_result_is_unchanged() {
        let ctx = Context::new(2);
        let counts = words(&ctx)
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b, 2);
        let mut want = counts.collect();
        want.sort();
        // Worker 1 dies after the map stage of a second job (3 map tasks), before the
        // reduce tasks fetch: its map output is gone.
        let again = words(&ctx)
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b, 2);
        ctx.kill_after(1, 3);
        let mut got = again.collect();
        got.sort();
        assert_eq!(got, want);
        let s = ctx.stats();
        assert!(s.fetch_failures >= 1 && s.resubmitted >= 1, "{s:?}");
    }

    #[test]
    fn a_lost_cached_partition_is_recomputed_from_lineage() {
        let ctx = Context::new(2);
        let links = ctx
            .parallelize(vec![(1u32, 2u32), (2, 3), (3, 1), (4, 1)], 2)
            .partition_by(2)
            .persist();
        let first = links.count();
        ctx.kill_worker(0);
        ctx.kill_worker(1);
        assert_eq!(links.count(), first);
        assert_eq!(ctx.stats().recomputed, 2);
        // A join of co-partitioned RDDs adds no shuffle (§3.2.2).
        let ranks = links.map_values(|_| 1.0f64);
        let joined = links.join(&ranks);
        assert_eq!(
            joined.shuffles.len(),
            links.shuffles.len() + ranks.shuffles.len()
        );
        assert_eq!(joined.count(), 4);
    }
}
