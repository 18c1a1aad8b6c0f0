//! Resilient distributed datasets (Zaharia et al., NSDI 2012), in one process: the API of §2.2
//! and Table 2, lazy until an action, narrow dependencies pipelined in a task, wide ones cut
//! into stages at a hash shuffle (§4), and lost partitions rebuilt from lineage (§5.1).
//!
//! A [`Context`] has a fixed set of workers, each with its own memory: cached partitions and the
//! map outputs of shuffles. Tasks of a stage run in parallel, one thread per worker; partition
//! `p` runs on worker `p mod workers` (a cached partition's worker, §4's preferred locations).
//! [`Context::kill_worker`] wipes a worker's memory, as a crash of its machine would. The
//! scheduler then does what `checker spark` checks: a reduce task whose map output is gone
//! fails its fetch, the map output is unregistered, the parent stage is resubmitted for it, and
//! the reduce task runs again; a lost cached partition is recomputed from its parents.

use rustc_hash::FxHashMap as HashMap;
use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What an RDD may hold.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

/// A key of a pair RDD.
pub trait Key: Data + Hash + Eq + Ord {}
impl<T: Data + Hash + Eq + Ord> Key for T {}

type Shared = Arc<dyn Any + Send + Sync>;

/// A task could not fetch map output `map` of shuffle `shuffle` (Spark's `FetchFailed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchFailed {
    pub shuffle: usize,
    pub map: usize,
}

/// A worker's memory.
#[derive(Default)]
struct Worker {
    cache: HashMap<(usize, usize), Shared>,
    /// Map outputs: (shuffle, map partition) → its buckets.
    outputs: HashMap<(usize, usize), Shared>,
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

struct Inner {
    workers: Vec<Mutex<Worker>>,
    next_id: AtomicUsize,
    /// The map output registry: (shuffle, map partition) → worker.
    registry: Mutex<HashMap<(usize, usize), usize>>,
    /// Cached partitions computed once: (rdd, partition), to tell a recomputation.
    computed: Mutex<std::collections::HashSet<(usize, usize)>>,
    stats: Mutex<Stats>,
    /// Kills this worker when this many more tasks have run (a fault for tests).
    kill_after: Mutex<Option<(usize, usize)>>,
}

/// The driver's handle: creates RDDs and runs jobs.
#[derive(Clone)]
pub struct Context(Arc<Inner>);

impl Context {
    pub fn new(workers: usize) -> Context {
        assert!(workers > 0, "a context needs a worker");
        Context(Arc::new(Inner {
            workers: (0..workers)
                .map(|_| Mutex::new(Worker::default()))
                .collect(),
            next_id: AtomicUsize::new(0),
            registry: Mutex::new(HashMap::default()),
            computed: Mutex::new(Default::default()),
            stats: Mutex::new(Stats::default()),
            kill_after: Mutex::new(None),
        }))
    }

    pub fn workers(&self) -> usize {
        self.0.workers.len()
    }

    fn id(&self) -> usize {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn stats(&self) -> Stats {
        self.0.stats.lock().expect("stats").clone()
    }

    /// Wipes worker `w`'s memory: its cached partitions and map outputs are gone.
    pub fn kill_worker(&self, w: usize) {
        *self.0.workers[w].lock().expect("worker") = Worker::default();
    }

    /// Kills worker `w` once `tasks` more tasks have run (in the middle of a job).
    pub fn kill_after(&self, w: usize, tasks: usize) {
        *self.0.kill_after.lock().expect("kill") = Some((w, tasks));
    }

    fn task_ran(&self) {
        self.0.stats.lock().expect("stats").tasks += 1;
        let mut k = self.0.kill_after.lock().expect("kill");
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

    /// An RDD of `data` cut into `parts` partitions (stable storage: never lost).
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
            compute: Arc::new(move |_, p, _| Ok(read(p))),
            shuffles: Vec::new(),
        }
    }

    /// Runs the map stages `shuffles` need (parents first), each for its missing outputs;
    /// `seen` holds the shuffles already complete in this job.
    fn run_shuffles(
        &self,
        shuffles: &[Arc<dyn ShuffleDep>],
        seen: &mut std::collections::HashSet<usize>,
    ) -> Result<(), FetchFailed> {
        for s in shuffles {
            if seen.contains(&s.id()) {
                continue;
            }
            let missing: Vec<usize> = {
                let reg = self.0.registry.lock().expect("registry");
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
            let results = self.run_tasks(&missing, |m, w| s.run_map(self, m, w));
            for (m, r) in missing.iter().zip(results) {
                r?;
                self.0
                    .registry
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

    /// Runs a job: every partition of `rdd` (§4: the scheduler runs the missing map stages,
    /// then the result tasks; a failed fetch unregisters the map output and resubmits its
    /// stage).
    fn run_job<T: Data>(&self, rdd: &Rdd<T>) -> Vec<Vec<T>> {
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
                    let done = self.run_tasks(&todo, |p, w| (rdd.compute)(self, p, w));
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
            match failed {
                None => return results.into_iter().map(|r| r.expect("computed")).collect(),
                Some(f) => {
                    // §5.1: the map output is gone; its stage is resubmitted for it. The
                    // worker that held it lost its other outputs too: they are unregistered
                    // with it (Spark removes a lost executor's outputs at once).
                    let mut reg = self.0.registry.lock().expect("registry");
                    let at = reg.get(&(f.shuffle, f.map)).copied();
                    let lost: Vec<(usize, usize)> = match at {
                        Some(w) => {
                            let store = self.0.workers[w].lock().expect("worker");
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
                    let mut stats = self.0.stats.lock().expect("stats");
                    stats.fetch_failures += 1;
                    stats.resubmitted += lost.len();
                }
            }
        }
    }
}

/// A partition's computation: from the context, the partition and the worker it runs on.
type Compute<T> = Arc<dyn Fn(&Context, usize, usize) -> Result<Vec<T>, FetchFailed> + Send + Sync>;

/// A shuffle dependency (§4: a wide dependency): its map side.
trait ShuffleDep: Send + Sync {
    fn id(&self) -> usize;
    fn maps(&self) -> usize;
    fn parents(&self) -> Vec<Arc<dyn ShuffleDep>>;
    /// Computes map partition `m` on worker `w` and keeps its buckets there.
    fn run_map(&self, ctx: &Context, m: usize, w: usize) -> Result<(), FetchFailed>;
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
    fn run_map(&self, ctx: &Context, m: usize, w: usize) -> Result<(), FetchFailed> {
        let records = (self.parent.compute)(ctx, m, w)?;
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
        let shared: Shared = Arc::new(buckets);
        ctx.0.workers[w]
            .lock()
            .expect("worker")
            .outputs
            .insert((self.id, m), shared);
        Ok(())
    }
}

impl<K: Key, V: Data> Shuffle<K, V> {
    /// Bucket `p` of every map output, fetched from the workers that hold them.
    fn fetch(ctx: &Context, id: usize, maps: usize, p: usize) -> Result<Vec<(K, V)>, FetchFailed> {
        let mut out = Vec::new();
        for m in 0..maps {
            let at = ctx
                .0
                .registry
                .lock()
                .expect("registry")
                .get(&(id, m))
                .copied();
            let block = at.and_then(|w| {
                ctx.0.workers[w]
                    .lock()
                    .expect("worker")
                    .outputs
                    .get(&(id, m))
                    .cloned()
            });
            let Some(block) = block else {
                return Err(FetchFailed {
                    shuffle: id,
                    map: m,
                });
            };
            let buckets = block
                .downcast_ref::<Vec<Vec<(K, V)>>>()
                .expect("a shuffle's blocks have its type");
            out.extend(buckets[p].iter().cloned());
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
            compute: Arc::new(move |ctx, p, w| Ok(f(parent(ctx, p, w)?))),
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
            compute: Arc::new(move |ctx, p, w| {
                if p < split {
                    a(ctx, p, w)
                } else {
                    b(ctx, p - split, w)
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
            compute: Arc::new(move |ctx, p, w| {
                let hit = ctx.0.workers[w]
                    .lock()
                    .expect("worker")
                    .cache
                    .get(&(id, p))
                    .cloned();
                if let Some(hit) = hit {
                    return Ok(hit
                        .downcast_ref::<Vec<T>>()
                        .expect("a cached partition has its RDD's type")
                        .clone());
                }
                let v = parent(ctx, p, w)?;
                if !ctx.0.computed.lock().expect("computed").insert((id, p)) {
                    ctx.0.stats.lock().expect("stats").recomputed += 1;
                }
                let shared: Shared = Arc::new(v.clone());
                ctx.0.workers[w]
                    .lock()
                    .expect("worker")
                    .cache
                    .insert((id, p), shared);
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
            compute: Arc::new(move |ctx, p, _| Shuffle::<K, V>::fetch(ctx, id, maps, p)),
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
            compute: Arc::new(move |ctx, p, w| {
                let left = ca(ctx, p, w)?;
                let right = cb(ctx, p, w)?;
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
