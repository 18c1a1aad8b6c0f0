//! The workbench's own exploration engine for any [`stateright::Model`].
//!
//! stateright's BFS keeps the whole action path of every queued state (about 1-2 KB a state), ignores
//! symmetry, and checks `eventually` on acyclic paths only. This engine keeps, per unique state, a
//! 64-bit fingerprint in an open-addressing set, a parent id and an action index; nothing else
//! survives a state's expansion. Counterexamples are rebuilt by replaying action indices from the
//! initial state and validated with [`Path::from_actions`].
//!
//! - **BFS** (default) is level-synchronous: each level's frontier is cut into chunks that a
//!   [`rayon`] pool expands in parallel, inserting successors into a lock-free visited set
//!   (compare-and-swap on the empty slot). The next level is the chunks' outputs in chunk order,
//!   so ids, and with one thread traces, are deterministic, and a first discovery is a shortest one.
//! - **DFS** runs on one thread with a stack of states.
//! - **Counts** follow stateright exactly: `generated` counts the initial states within the boundary
//!   and every successor within the boundary; `unique` the distinct fingerprints; a depth limit
//!   `target` leaves states at depth `target` unchecked and unexpanded (the initial states are depth
//!   1). A successor for which `next_state` returns `None` is not a transition.
//! - **Symmetry**: with a representative function, the fingerprint is the representative's; the
//!   state explored (and replayed) is the original.
//! - **Liveness** (`eventually`, leads-to) is decided after the search by [`crate::liveness`],
//!   under weak fairness or none, on the reachable graph: with liveness properties the BFS records
//!   each state's condition bits and edges as it expands it ([`Recording`]); DFS and symmetry runs
//!   leave the graph to a second exploration over concrete states.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use stateright::{Expectation, Model, Path};

/// A state's fingerprint; never 0, which marks an empty slot.
pub type Fingerprint = u64;

/// The hasher fingerprints are taken with: foldhash with a fixed seed.
pub fn hasher() -> foldhash::fast::FoldHasher {
    const SEED: u64 = 0x5747_0b5e_c4e4_1a5d;
    foldhash::fast::FixedState::with_seed(SEED).build_hasher()
}

/// The fingerprint of `value` through its `Hash`.
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> Fingerprint {
    fingerprint_by(value, |v, h| v.hash(h))
}

/// The fingerprint of `value` as `feed` writes it to the [`hasher`].
pub fn fingerprint_by<T: ?Sized>(
    value: &T,
    feed: impl FnOnce(&T, &mut foldhash::fast::FoldHasher),
) -> Fingerprint {
    let mut h = hasher();
    feed(value, &mut h);
    match h.finish() {
        0 => 1,
        h => h,
    }
}

/// How to search.
#[derive(Clone)]
pub struct Options<S> {
    pub dfs: bool,
    /// Worker threads for BFS (DFS uses one).
    pub threads: usize,
    /// stateright's `target_max_depth`: states at this depth are counted but neither checked nor
    /// expanded.
    pub target_depth: Option<usize>,
    /// Stop once this many states have been generated.
    pub max_states: Option<usize>,
    /// Stop at the first violated `always` or `eventually` property.
    pub first_failure: bool,
    /// Explore one state per symmetry class.
    pub symmetry: Option<fn(&S) -> S>,
    /// A state's fingerprint: [`fingerprint`] unless the state's `Hash` can feed two distinct
    /// states to a hasher as the same bytes (stateright's actor states do).
    pub fingerprint: fn(&S) -> Fingerprint,
    /// Set from outside to stop the search (a timeout).
    pub stop: Arc<AtomicBool>,
}

/// Counters, updated while the search runs, for progress reports.
#[derive(Debug, Default)]
pub struct Stats {
    pub generated: AtomicUsize,
    pub unique: AtomicUsize,
    pub max_depth: AtomicUsize,
}

/// What a property's discovery looks like.
#[derive(Clone, Debug)]
pub struct Discovery<S, A> {
    pub path: Path<S, A>,
    /// For an `eventually` counterexample that loops: the index of the path's state at which the
    /// cycle starts (the path's last state equals it, and the steps from there repeat forever).
    pub cycle_start: Option<usize>,
    /// For a loop: the fairness classes enabled in all its states that it takes, and those it
    /// never takes (see [`crate::liveness`]), each named by one of its actions.
    pub kept_enabled: Vec<A>,
    pub unfair_to: Vec<A>,
}

/// The result of a search.
pub struct Report<S, A> {
    pub generated: usize,
    pub unique: usize,
    pub max_depth: usize,
    /// Whether the search ran to its end (every state within the depth limit expanded).
    pub exhausted: bool,
    /// Discoveries by property name.
    pub discoveries: HashMap<&'static str, Discovery<S, A>>,
    /// Bytes held by the visited set and the trace data (parents, action indices).
    pub table_bytes: usize,
    /// What deciding the liveness properties cost, when the model has any.
    pub liveness: Option<crate::liveness::LivenessStats>,
}

/// The visited set: open addressing over fingerprints, linear probing, compare-and-swap inserts.
struct Table {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

impl Table {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.next_power_of_two().max(1 << 16);
        Table {
            slots: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            mask: capacity - 1,
        }
    }

    /// Inserts `fp`; true when it was not there.
    #[inline]
    fn insert(&self, fp: Fingerprint) -> bool {
        let mut i = (fp as usize) & self.mask;
        let mut probes = 0;
        loop {
            let cur = self.slots[i].load(Ordering::Relaxed);
            if cur == fp {
                return false;
            }
            if cur == 0 {
                match self.slots[i].compare_exchange(0, fp, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return true,
                    Err(now) if now == fp => return false,
                    Err(_) => {}
                }
            }
            i = (i + 1) & self.mask;
            probes += 1;
            assert!(probes <= self.mask, "visited set full");
        }
    }

    fn capacity(&self) -> usize {
        self.mask + 1
    }

    fn grown(&self) -> Table {
        let bigger = Table::new(self.capacity() * 2);
        for slot in self.slots.iter() {
            let fp = slot.load(Ordering::Relaxed);
            if fp != 0 {
                bigger.insert(fp);
            }
        }
        bigger
    }
}

/// The visited set with its size; grown (under the write lock) past 3/4 load.
struct Visited {
    table: RwLock<Table>,
    len: AtomicUsize,
}

impl Visited {
    fn new() -> Self {
        Visited {
            table: RwLock::new(Table::new(1 << 20)),
            len: AtomicUsize::new(0),
        }
    }

    /// Adds `inserted` to the size and grows the table if it is more than 3/4 full. Called between
    /// chunks: a chunk inserts at most a few hundred thousand states, which the last quarter holds.
    fn settle(&self, inserted: usize) {
        let len = self.len.fetch_add(inserted, Ordering::Relaxed) + inserted;
        let cap = self.table.read().expect("visited set lock").capacity();
        if len * 4 > cap * 3 {
            let mut table = self.table.write().expect("visited set lock");
            if len * 4 > table.capacity() * 3 {
                *table = table.grown();
            }
        }
    }

    fn bytes(&self) -> usize {
        self.table.read().expect("visited set lock").capacity() * 8
    }
}

/// Per unique state, in id order: its parent's id and the index of the action that produced it.
/// A root's parent is `ROOT` and its action is the index of its initial state.
struct Parents {
    narrow: Vec<u32>,
    /// Used instead of `narrow` once ids no longer fit 32 bits.
    wide: Option<Vec<u64>>,
    action: Vec<u16>,
}

const ROOT: u64 = u64::MAX;

impl Parents {
    fn new() -> Self {
        Parents {
            narrow: Vec::new(),
            wide: None,
            action: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.action.len()
    }

    fn push(&mut self, parent: u64, action: usize) {
        let action = u16::try_from(action).expect("a state with more than 65,535 actions");
        if self.wide.is_none() && parent != ROOT && parent >= u64::from(u32::MAX) {
            let wide = self
                .narrow
                .drain(..)
                .map(|p| if p == u32::MAX { ROOT } else { u64::from(p) })
                .collect();
            self.narrow = Vec::new();
            self.wide = Some(wide);
        }
        match &mut self.wide {
            Some(w) => w.push(parent),
            None => self.narrow.push(if parent == ROOT {
                u32::MAX
            } else {
                parent as u32
            }),
        }
        self.action.push(action);
    }

    fn parent(&self, id: u64) -> u64 {
        match &self.wide {
            Some(w) => w[id as usize],
            None => match self.narrow[id as usize] {
                u32::MAX => ROOT,
                p => u64::from(p),
            },
        }
    }

    /// The initial state's index, then the action indices that lead to state `id`.
    fn indices(&self, mut id: u64) -> Vec<usize> {
        let mut out = Vec::new();
        loop {
            out.push(self.action[id as usize] as usize);
            match self.parent(id) {
                ROOT => break,
                p => id = p,
            }
        }
        out.reverse();
        out
    }

    /// Each state's parent (`u32::MAX` for a root) and action index, by id; the liveness graph
    /// holds no more than 32-bit ids.
    fn into_narrow(self) -> (Vec<u32>, Vec<u16>) {
        assert!(
            self.wide.is_none(),
            "the liveness graph holds at most 2^32 states"
        );
        (self.narrow, self.action)
    }

    /// Bytes in use (a vector's unused capacity is never touched, so it is not resident).
    fn bytes(&self) -> usize {
        self.narrow.len() * 4
            + self.wide.as_ref().map_or(0, |w| w.len() * 8)
            + self.action.len() * 2
    }
}

/// Rebuilds the path of initial-state index then action indices, validated by stateright.
pub fn replay<M: Model>(model: &M, indices: &[usize]) -> Path<M::State, M::Action>
where
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq,
{
    let init = model.init_states()[indices[0]].clone();
    let mut state = init.clone();
    let mut actions = Vec::with_capacity(indices.len() - 1);
    let mut buf = Vec::new();
    for &i in &indices[1..] {
        buf.clear();
        model.actions(&state, &mut buf);
        let action = buf.swap_remove(i);
        state = model
            .next_state(&state, action.clone())
            .expect("a replayed action changes the state");
        actions.push(action);
    }
    Path::from_actions(model, init, &actions).expect("a rebuilt path replays in the model")
}

/// Which properties are found, by the smallest id that shows each.
struct Found {
    ids: Vec<Option<u64>>,
}

impl Found {
    fn note(&mut self, i: usize, id: u64) {
        if self.ids[i].is_none_or(|old| id < old) {
            self.ids[i] = Some(id);
        }
    }

    fn merge(&mut self, other: &Found) {
        for (i, id) in other.ids.iter().enumerate() {
            if let Some(id) = id {
                self.note(i, *id);
            }
        }
    }
}

/// What the breadth-first search records for [`crate::liveness`] when the model has liveness
/// properties, so that their graph costs no second exploration: every unique state's
/// fingerprint (in id order) and, per expanded state (in id order), its condition bits and its
/// edges.
#[derive(Default)]
pub(crate) struct Recording {
    pub fps: Vec<Fingerprint>,
    pub bits: Vec<u64>,
    /// Each expanded state's number of edges.
    pub rows: Vec<u32>,
    /// Each edge's target, or 0 for a successor outside the boundary.
    pub targets: Vec<Fingerprint>,
    /// Each edge's fairness class key, or 0 for an action that owes nothing.
    pub classes: Vec<u64>,
    pub actions: Vec<u16>,
}

impl Recording {
    fn append(&mut self, mut other: Recording) {
        self.fps.append(&mut other.fps);
        self.bits.append(&mut other.bits);
        self.rows.append(&mut other.rows);
        self.targets.append(&mut other.targets);
        self.classes.append(&mut other.classes);
        self.actions.append(&mut other.actions);
    }
}

/// What the search evaluates on each state for [`Recording`].
pub(crate) struct Recorder<'a, M: Model> {
    pub conditions: &'a [fn(&M, &M::State) -> bool],
    pub classes: Option<models::catalog::FairClassOf<M>>,
}

impl<M: Model> Recorder<'_, M> {
    /// The condition bits of `state`.
    pub fn bits(&self, model: &M, state: &M::State) -> u64 {
        self.conditions
            .iter()
            .enumerate()
            .fold(0u64, |b, (i, c)| b | (u64::from(c(model, state)) << i))
    }

    /// The class key of `action`: 0 for none.
    pub fn class(&self, model: &M, action: &M::Action) -> u64 {
        crate::liveness::class_key(self.classes, model, action)
    }
}

/// Searches `model` and decides its properties.
pub fn search<M>(model: &M, opts: &Options<M::State>, stats: &Stats) -> Report<M::State, M::Action>
where
    M: Model + Sync,
    M::State: Clone + Hash + PartialEq + Send + Sync,
    M::Action: Clone + PartialEq,
{
    search_live(model, opts, stats, &crate::liveness::Liveness::default())
}

/// [`search`], with the liveness properties decided as `live` says: its fairness and its
/// leads-to properties besides the model's `eventually` ones.
pub fn search_live<M>(
    model: &M,
    opts: &Options<M::State>,
    stats: &Stats,
    live: &crate::liveness::Liveness<M>,
) -> Report<M::State, M::Action>
where
    M: Model + Sync,
    M::State: Clone + Hash + PartialEq + Send + Sync,
    M::Action: Clone + PartialEq,
{
    let properties = model.properties();
    let fp = |s: &M::State| match opts.symmetry {
        Some(rep) => (opts.fingerprint)(&rep(s)),
        None => (opts.fingerprint)(s),
    };
    let visited = Visited::new();
    let mut parents = Parents::new();
    let mut found = Found {
        ids: vec![None; properties.len()],
    };

    // With liveness properties, breadth-first search over concrete states records the graph
    // they are decided on (DFS and symmetry leave it to a second exploration).
    let plan = crate::liveness::Plan::new(model, live);
    let recorder = (!plan.is_empty() && !opts.dfs && opts.symmetry.is_none()).then(|| Recorder {
        conditions: &plan.conditions,
        classes: live.classes,
    });
    let mut recording = Recording::default();

    // Depth 1: the initial states within the boundary.
    let mut frontier: Vec<M::State> = Vec::new();
    {
        let table = visited.table.read().expect("visited set lock");
        let mut inserted = 0;
        for (i, s) in model.init_states().into_iter().enumerate() {
            if !model.within_boundary(&s) {
                continue;
            }
            stats.generated.fetch_add(1, Ordering::Relaxed);
            if table.insert(fp(&s)) {
                inserted += 1;
                parents.push(ROOT, i);
                recording.fps.push(fp(&s));
                frontier.push(s);
            }
        }
        drop(table);
        visited.settle(inserted);
        stats.unique.store(parents.len(), Ordering::Relaxed);
    }

    // `eventually` properties are decided after the search, so with any of them it runs to the end.
    let has_eventually = !plan.is_empty();
    let decided = |found: &Found| {
        let all = !has_eventually && found.ids.iter().all(Option::is_some);
        let failed = opts.first_failure
            && properties
                .iter()
                .zip(&found.ids)
                .any(|(p, id)| id.is_some() && p.expectation == Expectation::Always);
        all || failed
    };
    let cut = |stats: &Stats| {
        opts.stop.load(Ordering::Relaxed)
            || opts
                .max_states
                .is_some_and(|n| stats.generated.load(Ordering::Relaxed) >= n)
    };

    let ctx = Ctx {
        model,
        opts,
        stats,
        visited: &visited,
        fp: &fp,
        decided: &decided,
        cut: &cut,
    };
    let mut exhausted = if opts.dfs {
        dfs(&ctx, &mut parents, &mut found, frontier)
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads.max(1))
            .build()
            .expect("a thread pool");
        pool.install(|| {
            bfs(
                &ctx,
                &mut parents,
                &mut found,
                frontier,
                recorder.as_ref().map(|r| (r, &mut recording)),
            )
        })
    };

    let mut discoveries = HashMap::new();
    for (p, id) in properties.iter().zip(&found.ids) {
        if let Some(id) = id {
            let path = replay(model, &parents.indices(*id));
            discoveries.insert(
                p.name,
                Discovery {
                    path,
                    cycle_start: None,
                    kept_enabled: Vec::new(),
                    unfair_to: Vec::new(),
                },
            );
        }
    }
    let table_bytes = visited.bytes() + parents.bytes();
    drop(visited);
    let mut liveness = None;
    if exhausted
        && has_eventually
        && !(opts.first_failure && has_failure(&properties, &discoveries))
    {
        let live = match recorder {
            Some(_) => {
                let (parent, via) = parents.into_narrow();
                crate::liveness::check_recorded(model, opts, live, &plan, recording, parent, via)
            }
            None => crate::liveness::check(model, opts, live, &plan),
        };
        for (name, d) in live.discoveries {
            discoveries.insert(
                name,
                Discovery {
                    path: d.path,
                    cycle_start: d.cycle_start,
                    kept_enabled: d.kept_enabled,
                    unfair_to: d.unfair_to,
                },
            );
        }
        liveness = Some(live.stats);
        if !live.complete {
            exhausted = false;
        }
    }
    Report {
        table_bytes,
        generated: stats.generated.load(Ordering::Relaxed),
        unique: stats.unique.load(Ordering::Relaxed),
        max_depth: stats.max_depth.load(Ordering::Relaxed),
        exhausted,
        discoveries,
        liveness,
    }
}

fn has_failure<M: Model, S, A>(
    properties: &[stateright::Property<M>],
    discoveries: &HashMap<&'static str, Discovery<S, A>>,
) -> bool {
    properties
        .iter()
        .any(|p| p.expectation != Expectation::Sometimes && discoveries.contains_key(p.name))
}

/// Checks the `always` and `sometimes` properties of state `id`.
fn check_state<M: Model>(
    model: &M,
    properties: &[stateright::Property<M>],
    state: &M::State,
    id: u64,
    found: &mut Found,
) {
    for (i, p) in properties.iter().enumerate() {
        match p.expectation {
            Expectation::Always if !(p.condition)(model, state) => found.note(i, id),
            Expectation::Sometimes if (p.condition)(model, state) => found.note(i, id),
            _ => {}
        }
    }
}

/// What both searches share: the model, the options, the counters, the visited set, the
/// fingerprint function and the two stopping rules.
struct Ctx<'a, M: Model, F> {
    model: &'a M,
    opts: &'a Options<M::State>,
    stats: &'a Stats,
    visited: &'a Visited,
    fp: &'a F,
    /// Every property decided, or (with `first_failure`) an `always` violated.
    decided: &'a (dyn Fn(&Found) -> bool + Sync),
    /// Stopped from outside, or `max_states` reached.
    cut: &'a (dyn Fn(&Stats) -> bool + Sync),
}

impl<M: Model, F> Clone for Ctx<'_, M, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Model, F> Copy for Ctx<'_, M, F> {}

/// The frontier is expanded in chunks of this many states.
const CHUNK: usize = 512;

fn bfs<M, F>(
    ctx: &Ctx<'_, M, F>,
    parents: &mut Parents,
    found: &mut Found,
    roots: Vec<M::State>,
    mut record: Option<(&Recorder<'_, M>, &mut Recording)>,
) -> bool
where
    M: Model + Sync,
    M::State: Clone + Hash + Send + Sync,
    F: Fn(&M::State) -> Fingerprint + Sync,
{
    let Ctx {
        model,
        opts,
        stats,
        visited,
        fp,
        decided,
        cut,
    } = *ctx;
    let properties = model.properties();
    let mut depth = 1;
    let mut base = 0u64;
    // The frontier in chunks, each consumed (its states dropped) as it is expanded.
    let mut frontier: Vec<Vec<M::State>> = split(roots);
    while frontier.iter().any(|c| !c.is_empty()) {
        stats.max_depth.store(depth, Ordering::Relaxed);
        if opts.target_depth.is_some_and(|t| depth >= t) {
            return true;
        }
        let mut bases = Vec::with_capacity(frontier.len());
        for chunk in &frontier {
            bases.push(base);
            base += chunk.len() as u64;
        }
        type Out<S> = (Vec<S>, Vec<(u64, usize)>, Found, Recording);
        let recorder = record.as_ref().map(|(r, _)| *r);
        let outputs: Vec<Out<M::State>> = frontier
            .into_par_iter()
            .zip(bases)
            .map(|(chunk, chunk_base)| {
                let mut states = Vec::new();
                let mut links = Vec::new();
                let mut local = Found {
                    ids: vec![None; properties.len()],
                };
                let mut rec = Recording::default();
                if cut(stats) {
                    return (states, links, local, rec);
                }
                let table = visited.table.read().expect("visited set lock");
                let mut actions = Vec::new();
                let mut generated = 0;
                for (k, state) in chunk.into_iter().enumerate() {
                    let id = chunk_base + k as u64;
                    check_state(model, &properties, &state, id, &mut local);
                    model.actions(&state, &mut actions);
                    let Some(r) = recorder else {
                        for (a, action) in actions.drain(..).enumerate() {
                            let Some(next) = model.next_state(&state, action) else {
                                continue;
                            };
                            if !model.within_boundary(&next) {
                                continue;
                            }
                            generated += 1;
                            if table.insert(fp(&next)) {
                                states.push(next);
                                links.push((id, a));
                            }
                        }
                        continue;
                    };
                    // The same, recording the state's bits and edges for the liveness search.
                    rec.bits.push(r.bits(model, &state));
                    let before = rec.targets.len();
                    for (a, action) in actions.drain(..).enumerate() {
                        let class = r.class(model, &action);
                        let Some(next) = model.next_state(&state, action) else {
                            continue;
                        };
                        let target = if model.within_boundary(&next) {
                            generated += 1;
                            let f = fp(&next);
                            if table.insert(f) {
                                rec.fps.push(f);
                                states.push(next);
                                links.push((id, a));
                            }
                            f
                        } else {
                            0
                        };
                        rec.targets.push(target);
                        rec.classes.push(class);
                        rec.actions.push(a as u16);
                    }
                    rec.rows.push((rec.targets.len() - before) as u32);
                }
                drop(table);
                stats.generated.fetch_add(generated, Ordering::Relaxed);
                stats.unique.fetch_add(states.len(), Ordering::Relaxed);
                visited.settle(states.len());
                (states, links, local, rec)
            })
            .collect();
        let mut next = Vec::with_capacity(outputs.len());
        for (states, links, local, rec) in outputs {
            if let Some((_, recording)) = record.as_mut() {
                recording.append(rec);
            }
            found.merge(&local);
            for (parent, action) in links {
                parents.push(parent, action);
            }
            next.extend(split(states));
        }
        frontier = next;
        if cut(stats) || decided(found) {
            return false;
        }
        depth += 1;
    }
    true
}

/// Cuts `states` into chunks of at most [`CHUNK`], in order.
fn split<S>(mut states: Vec<S>) -> Vec<Vec<S>> {
    let mut chunks = Vec::new();
    while states.len() > CHUNK {
        // From the end, so that each state moves once.
        let tail = states.split_off((states.len() - 1) / CHUNK * CHUNK);
        chunks.push(tail);
    }
    chunks.push(states);
    chunks.reverse();
    chunks
}

fn dfs<M, F>(
    ctx: &Ctx<'_, M, F>,
    parents: &mut Parents,
    found: &mut Found,
    roots: Vec<M::State>,
) -> bool
where
    M: Model,
    M::State: Clone + Hash,
    F: Fn(&M::State) -> Fingerprint,
{
    let Ctx {
        model,
        opts,
        stats,
        visited,
        fp,
        decided,
        cut,
    } = *ctx;
    let properties = model.properties();
    // (state, id, depth); the roots have ids 0.. in order.
    let mut stack: Vec<(M::State, u64, usize)> = roots
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, i as u64, 1))
        .rev()
        .collect();
    let mut actions = Vec::new();
    let mut since_check = 0usize;
    let mut pending_inserts = 0usize;
    while let Some((state, id, depth)) = stack.pop() {
        if depth > stats.max_depth.load(Ordering::Relaxed) {
            stats.max_depth.store(depth, Ordering::Relaxed);
        }
        if opts.target_depth.is_some_and(|t| depth >= t) {
            continue;
        }
        check_state(model, &properties, &state, id, found);
        let table = visited.table.read().expect("visited set lock");
        model.actions(&state, &mut actions);
        let mut children = Vec::new();
        for (a, action) in actions.drain(..).enumerate() {
            let Some(next) = model.next_state(&state, action) else {
                continue;
            };
            if !model.within_boundary(&next) {
                continue;
            }
            stats.generated.fetch_add(1, Ordering::Relaxed);
            if table.insert(fp(&next)) {
                let child = parents.len() as u64;
                parents.push(id, a);
                children.push((next, child, depth + 1));
            }
        }
        drop(table);
        pending_inserts += children.len();
        stats.unique.store(parents.len(), Ordering::Relaxed);
        // Explore the first action's successor first.
        stack.extend(children.into_iter().rev());
        since_check += 1;
        if since_check >= 1024 {
            since_check = 0;
            visited.settle(std::mem::take(&mut pending_inserts));
            if cut(stats) || decided(found) {
                return false;
            }
        }
    }
    visited.settle(pending_inserts);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_ids_widen_past_32_bits_and_keep_every_trace() {
        let mut p = Parents::new();
        p.push(ROOT, 2);
        p.push(0, 5);
        p.push(1, 7);
        assert!(p.wide.is_none());
        // A parent id that does not fit 32 bits switches to wide ids without losing the others.
        p.push(u64::from(u32::MAX) + 9, 1);
        assert!(p.wide.is_some() && p.narrow.is_empty());
        assert_eq!(p.indices(2), vec![2, 5, 7]);
        assert_eq!(p.parent(3), u64::from(u32::MAX) + 9);
        assert_eq!(p.parent(0), ROOT);
    }

    #[test]
    fn the_visited_set_grows_and_forgets_nothing() {
        let v = Visited::new();
        let n = 3 << 20;
        for chunk in (1..=n as u64).collect::<Vec<_>>().chunks(4096) {
            let table = v.table.read().unwrap();
            let inserted = chunk
                .iter()
                .filter(|&&i| table.insert(fingerprint(&i)))
                .count();
            drop(table);
            v.settle(inserted);
        }
        assert_eq!(v.len.load(Ordering::Relaxed), n);
        let table = v.table.read().unwrap();
        assert!(table.capacity() >= n * 4 / 3);
        assert!((1..=n as u64).all(|i| !table.insert(fingerprint(&i))));
    }
}
