//! Liveness: `eventually` and leads-to properties decided exactly, with or without weak fairness.
//!
//! A liveness property fails on a path that never reaches its goal and either stops (a state
//! with no successor at all) or loops forever (a *lasso*: a prefix, then a loop). Without
//! fairness every loop counts, so a protocol that retries, times out or heartbeats fails on a
//! loop in which some message is never delivered or some timer never fires. Under **weak
//! fairness** (Lamport, "The Temporal Logic of Actions", 1994, §5.4; TLC's `WF`, Spin's `-f`),
//! a loop counts only if every *fairness class* that is enabled in all of its states is taken
//! somewhere in it. A model names the classes of its actions ([`FairClassOf`]); for an actor
//! model each message in flight is one class and each timer of each actor another, while losing
//! a message and crashing are the environment's choices and owe nothing.
//!
//! # The search
//! 1. The reachable graph, built breadth-first over concrete states (no symmetry): per state its
//!    edges in compressed rows (target, fairness class, action index), the properties'
//!    conditions as bits, and a parent for prefixes. A successor outside the model's boundary is
//!    an edge to nowhere. If its action is fair (a message delivered, a timer fired past a term
//!    bound), the path is *cut off* there, not stuck, and the class counts as enabled: beyond
//!    the bound the model cannot say what happens, so neither a stop there nor a loop that never
//!    takes it is a counterexample. If its action owes nothing (a crash past the crash budget),
//!    it is no successor at all, as in the safety search.
//! 2. Per property, the states where the goal has not held, reachable from the *seeds* (the
//!    initial states for `eventually Q`; every reachable state where `P` holds and `Q` does not
//!    for `P ~> Q`) through such states. A seed-reachable state without any successor is a finite
//!    counterexample.
//! 3. Tarjan's strongly connected components of that subgraph. Under weak fairness one check per
//!    component is exact (for weak, unlike strong, fairness no sub-component can do better): the
//!    loop through all of a component's states and edges is fair iff every class enabled in
//!    all of its states labels one of its internal edges, and any smaller loop keeps those
//!    classes enabled too.
//! 4. The counterexample: the shortest prefix to the component, then a loop from its entry that
//!    visits, for each class enabled at the entry, a state where it is disabled or an edge that
//!    takes it, and returns. It is replayed from action indices like the safety search's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Instant;

use models::catalog::{FairClassOf, LeadsTo};
use stateright::{Model, Path};

use crate::engine::{replay, Options, Recorder, Recording};

/// Which runs count as counterexamples to a liveness property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fairness {
    /// Only runs that are weakly fair to every fairness class of the model.
    Weak,
    /// Every run.
    None,
}

impl Fairness {
    pub fn name(self) -> &'static str {
        match self {
            Fairness::Weak => "weak",
            Fairness::None => "none",
        }
    }
}

/// What the liveness search checks, beyond the model's `eventually` properties.
pub struct Liveness<M: Model> {
    pub fairness: Fairness,
    /// The model's fairness classes; required for [`Fairness::Weak`].
    pub classes: Option<FairClassOf<M>>,
    pub leads_to: Vec<LeadsTo<M>>,
    /// Whether to decide liveness at all (`--skip-liveness` turns it off: the properties stay
    /// undecided, and the search records no graph).
    pub decide: bool,
}

impl<M: Model> Default for Liveness<M> {
    fn default() -> Self {
        Liveness {
            fairness: Fairness::None,
            classes: None,
            leads_to: Vec::new(),
            decide: true,
        }
    }
}

/// A counterexample to a liveness property.
#[derive(Clone, Debug)]
pub struct LivenessDiscovery<S, A> {
    pub path: Path<S, A>,
    /// The index of the path's state at which the loop starts (its last state equals it);
    /// `None` for a path that stops.
    pub cycle_start: Option<usize>,
    /// The fairness classes enabled in every state of the loop, each named by one of its
    /// actions, that the loop takes.
    pub kept_enabled: Vec<A>,
    /// Those enabled in every state of the loop that it never takes: a loop with any is unfair,
    /// found only without fairness.
    pub unfair_to: Vec<A>,
}

/// What the liveness search cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LivenessStats {
    pub states: usize,
    pub edges: usize,
    /// Bytes held by the graph and the component search.
    pub bytes: usize,
    pub seconds: f64,
}

/// The results: counterexamples by property name.
pub struct LivenessReport<S, A> {
    pub discoveries: HashMap<&'static str, LivenessDiscovery<S, A>>,
    pub stats: LivenessStats,
    /// Whether the search ran to its end (not stopped from outside).
    pub complete: bool,
}

const NONE: u32 = u32::MAX;

/// The reachable graph.
struct Graph {
    /// `edges[offsets[n]..offsets[n + 1]]` are state `n`'s.
    offsets: Vec<usize>,
    /// The target state, or [`NONE`] for a successor outside the boundary.
    targets: Vec<u32>,
    /// The fairness class, or [`NONE`] for an action that owes nothing.
    classes: Vec<u32>,
    /// The action's index in `Model::actions`.
    actions: Vec<u16>,
    /// Condition bits per state.
    holds: Vec<u64>,
    /// The state's parent and the action index that led to it; for an initial state, [`NONE`]
    /// and its index among the initial states.
    parent: Vec<u32>,
    via: Vec<u16>,
    /// States at the depth limit, not expanded.
    cut: Vec<bool>,
    /// Each class's key ([`FairClassOf`]'s value).
    keys: Vec<u64>,
}

impl Graph {
    fn len(&self) -> usize {
        self.parent.len()
    }

    fn edges(&self, n: u32) -> std::ops::Range<usize> {
        self.offsets[n as usize]..self.offsets[n as usize + 1]
    }

    fn holds(&self, n: u32, bit: usize) -> bool {
        self.holds[n as usize] >> bit & 1 == 1
    }

    fn bytes(&self) -> usize {
        self.offsets.capacity() * 8
            + (self.targets.capacity() + self.classes.capacity()) * 4
            + self.actions.capacity() * 2
            + self.holds.capacity() * 8
            + self.parent.capacity() * 4
            + self.via.capacity() * 2
            + self.cut.capacity()
            + self.keys.capacity() * 8
    }

    /// The action indices from an initial state to `n`.
    fn indices_to(&self, mut n: u32) -> Vec<usize> {
        let mut out = Vec::new();
        loop {
            out.push(self.via[n as usize] as usize);
            if self.parent[n as usize] == NONE {
                break;
            }
            n = self.parent[n as usize];
        }
        out.reverse();
        out
    }

    /// The distinct fairness classes of state `n`'s actions.
    fn enabled(&self, n: u32) -> Vec<u32> {
        let mut c: Vec<u32> = self.edges(n).map(|e| self.classes[e]).collect();
        c.retain(|&k| k != NONE);
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// The class key of `action` ([`FairClassOf`]), never 0; 0 for an action that owes nothing.
pub(crate) fn class_key<M: Model>(
    classes: Option<FairClassOf<M>>,
    model: &M,
    action: &M::Action,
) -> u64 {
    classes
        .and_then(|f| f(model, action))
        .map_or(0, |k| k.max(1))
}

/// Class keys interned as dense ids, in the order met; key 0 (no class) is [`NONE`].
#[derive(Default)]
struct Interner {
    ids: HashMap<u64, u32, foldhash::fast::FixedState>,
    keys: Vec<u64>,
}

impl Interner {
    fn id(&mut self, key: u64) -> u32 {
        if key == 0 {
            return NONE;
        }
        let keys = &mut self.keys;
        *self.ids.entry(key).or_insert_with(|| {
            keys.push(key);
            keys.len() as u32 - 1
        })
    }
}

/// A condition on states.
pub(crate) type Condition<M> = fn(&M, &<M as Model>::State) -> bool;

/// The liveness properties to decide and the conditions they read, each once.
pub(crate) struct Plan<M: Model> {
    pub conditions: Vec<Condition<M>>,
    /// (name, the bit of the condition that seeds it or `None` for the initial states, the bit
    /// of its goal)
    props: Vec<(&'static str, Option<usize>, usize)>,
}

impl<M: Model> Plan<M> {
    pub fn new(model: &M, live: &Liveness<M>) -> Self {
        let mut plan = Plan {
            conditions: Vec::new(),
            props: Vec::new(),
        };
        if !live.decide {
            return plan;
        }
        for p in model.properties() {
            if p.expectation == stateright::Expectation::Eventually {
                let goal = plan.bit(p.condition);
                plan.props.push((p.name, None, goal));
            }
        }
        for l in &live.leads_to {
            let (from, to) = (plan.bit(l.from), plan.bit(l.to));
            plan.props.push((l.name, Some(from), to));
        }
        assert!(
            plan.conditions.len() <= 64,
            "at most 64 liveness conditions"
        );
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    fn bit(&mut self, c: Condition<M>) -> usize {
        match self
            .conditions
            .iter()
            .position(|&d| d as usize == c as usize)
        {
            Some(i) => i,
            None => {
                self.conditions.push(c);
                self.conditions.len() - 1
            }
        }
    }
}

/// Decides the model's `eventually` properties and `live`'s leads-to properties on a graph of
/// its own (for DFS and symmetry runs, whose search records none).
pub(crate) fn check<M>(
    model: &M,
    opts: &Options<M::State>,
    live: &Liveness<M>,
    plan: &Plan<M>,
) -> LivenessReport<M::State, M::Action>
where
    M: Model,
    M::State: Clone + std::hash::Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    let start = Instant::now();
    let recorder = Recorder {
        conditions: &plan.conditions,
        classes: live.classes,
    };
    match build(model, opts, &recorder) {
        Some(graph) => decide(model, live, plan, &graph, start),
        None => LivenessReport {
            discoveries: HashMap::new(),
            stats: LivenessStats::default(),
            complete: false,
        },
    }
}

/// The same on the graph the breadth-first search recorded; `parent` and `via` are its trace
/// data (a root's parent is [`NONE`]).
pub(crate) fn check_recorded<M>(
    model: &M,
    opts: &Options<M::State>,
    live: &Liveness<M>,
    plan: &Plan<M>,
    rec: Recording,
    parent: Vec<u32>,
    via: Vec<u16>,
) -> LivenessReport<M::State, M::Action>
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq,
{
    let start = Instant::now();
    let n = rec.fps.len();
    assert!(
        n < NONE as usize,
        "the liveness graph holds fewer than 2^32 states"
    );
    let mut ids: HashMap<u64, u32, foldhash::fast::FixedState> = HashMap::default();
    ids.reserve(n);
    for (i, &f) in rec.fps.iter().enumerate() {
        ids.insert(f, i as u32);
    }
    drop(rec.fps);
    let targets: Vec<u32> = rec
        .targets
        .iter()
        .map(|&t| if t == 0 { NONE } else { ids[&t] })
        .collect();
    drop(rec.targets);
    drop(ids);
    let mut interner = Interner::default();
    let classes = rec.classes.iter().map(|&k| interner.id(k)).collect();
    drop(rec.classes);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0);
    for &r in &rec.rows {
        offsets.push(offsets.last().copied().unwrap_or(0) + r as usize);
    }
    let expanded = rec.rows.len();
    let mut holds = rec.bits;
    holds.resize(n, 0);
    // States left unexpanded at the depth limit: no edges, and cut off.
    while offsets.len() < n + 1 {
        offsets.push(targets.len());
    }
    let mut cut = vec![false; n];
    for c in &mut cut[expanded..] {
        *c = true;
    }
    if opts.stop.load(Ordering::Relaxed) {
        return LivenessReport {
            discoveries: HashMap::new(),
            stats: LivenessStats::default(),
            complete: false,
        };
    }
    let graph = Graph {
        offsets,
        targets,
        classes,
        actions: rec.actions,
        holds,
        parent,
        via,
        cut,
        keys: interner.keys,
    };
    decide(model, live, plan, &graph, start)
}

/// Decides each property of `plan` on `graph`.
fn decide<M>(
    model: &M,
    live: &Liveness<M>,
    plan: &Plan<M>,
    graph: &Graph,
    start: Instant,
) -> LivenessReport<M::State, M::Action>
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq,
{
    let mut report = LivenessReport {
        discoveries: HashMap::new(),
        stats: LivenessStats::default(),
        complete: true,
    };
    let mut search_bytes = 0;
    for &(name, seed, goal) in &plan.props {
        let seeds: Vec<u32> = (0..graph.len() as u32)
            .filter(|&n| match seed {
                None => graph.parent[n as usize] == NONE,
                Some(b) => graph.holds(n, b),
            })
            .filter(|&n| !graph.holds(n, goal))
            .collect();
        let (found, bytes) = counterexample(graph, &seeds, goal, live.fairness);
        search_bytes = search_bytes.max(bytes);
        if let Some(lasso) = found {
            let path = replay(model, &lasso.indices);
            // Name each class by one of its actions in the loop's states.
            let mut examples: HashMap<u64, M::Action> = HashMap::new();
            if let Some(k) = lasso.cycle_start {
                let states: Vec<M::State> = path.clone().into_states();
                let mut actions = Vec::new();
                for s in &states[k..] {
                    model.actions(s, &mut actions);
                    for a in actions.drain(..) {
                        let key = class_key(live.classes, model, &a);
                        if key != 0 {
                            examples.entry(key).or_insert(a);
                        }
                    }
                }
            }
            let name_of = |cs: &[u32]| -> Vec<M::Action> {
                cs.iter()
                    .filter_map(|&c| examples.get(&graph.keys[c as usize]).cloned())
                    .collect()
            };
            report.discoveries.insert(
                name,
                LivenessDiscovery {
                    path,
                    cycle_start: lasso.cycle_start,
                    kept_enabled: name_of(&lasso.kept_enabled),
                    unfair_to: name_of(&lasso.unfair_to),
                },
            );
        }
    }
    report.stats = LivenessStats {
        states: graph.len(),
        edges: graph.targets.len(),
        bytes: graph.bytes() + search_bytes,
        seconds: start.elapsed().as_secs_f64(),
    };
    report
}

/// The reachable graph, or `None` if the search was stopped from outside.
fn build<M>(model: &M, opts: &Options<M::State>, r: &Recorder<'_, M>) -> Option<Graph>
where
    M: Model,
    M::State: Clone + std::hash::Hash,
{
    let mut g = Graph {
        offsets: vec![0],
        targets: Vec::new(),
        classes: Vec::new(),
        actions: Vec::new(),
        holds: Vec::new(),
        parent: Vec::new(),
        via: Vec::new(),
        cut: Vec::new(),
        keys: Vec::new(),
    };
    let mut ids: HashMap<u64, u32, foldhash::fast::FixedState> = HashMap::default();
    let mut interner = Interner::default();
    let mut queue: VecDeque<(M::State, usize)> = VecDeque::new();
    let bits = |s: &M::State| r.bits(model, s);
    for (i, s) in model.init_states().into_iter().enumerate() {
        if !model.within_boundary(&s) {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(v) = ids.entry((opts.fingerprint)(&s)) {
            v.insert(g.parent.len() as u32);
            g.parent.push(NONE);
            g.via.push(i as u16);
            g.holds.push(bits(&s));
            queue.push_back((s, 1));
        }
    }
    let mut actions = Vec::new();
    let mut n = 0usize;
    while let Some((state, depth)) = queue.pop_front() {
        n += 1;
        if n % 4096 == 0 && opts.stop.load(Ordering::Relaxed) {
            return None;
        }
        let expand = opts.target_depth.is_none_or(|t| depth < t);
        g.cut.push(!expand);
        if expand {
            let id = g.cut.len() as u32 - 1;
            model.actions(&state, &mut actions);
            for (a, action) in actions.drain(..).enumerate() {
                let class = interner.id(r.class(model, &action));
                let Some(next) = model.next_state(&state, action) else {
                    continue;
                };
                let target = if !model.within_boundary(&next) {
                    NONE
                } else {
                    let fresh = g.parent.len() as u32;
                    let t = *ids.entry((opts.fingerprint)(&next)).or_insert(fresh);
                    if t == fresh {
                        assert!(
                            fresh < NONE - 1,
                            "more states than the liveness graph holds"
                        );
                        g.parent.push(id);
                        g.via.push(a as u16);
                        g.holds.push(bits(&next));
                        queue.push_back((next, depth + 1));
                    }
                    t
                };
                g.targets.push(target);
                g.classes.push(class);
                g.actions.push(a as u16);
            }
        }
        g.offsets.push(g.targets.len());
    }
    g.keys = interner.keys;
    Some(g)
}

/// A counterexample as action indices from an initial state.
struct Lasso {
    indices: Vec<usize>,
    cycle_start: Option<usize>,
    kept_enabled: Vec<u32>,
    unfair_to: Vec<u32>,
}

/// A counterexample to "from every seed, a state where bit `goal` holds follows", and the bytes
/// the search held.
fn counterexample(
    g: &Graph,
    seeds: &[u32],
    goal: usize,
    fairness: Fairness,
) -> (Option<Lasso>, usize) {
    let n = g.len();
    let bad = |s: u32| s != NONE && !g.holds(s, goal);
    // Breadth-first from the seeds through states where the goal has not held.
    let mut from = vec![NONE; n];
    let mut order: Vec<u32> = Vec::new();
    let mut seen = vec![false; n];
    for &s in seeds {
        if !seen[s as usize] {
            seen[s as usize] = true;
            order.push(s);
        }
    }
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        i += 1;
        for e in g.edges(s) {
            let t = g.targets[e];
            if bad(t) && !seen[t as usize] {
                seen[t as usize] = true;
                from[t as usize] = e as u32;
                order.push(t);
            }
        }
    }
    let mut bytes = n * (4 + 1) + order.capacity() * 4;
    // The path from a seed (then from an initial state to the seed) to `s`.
    let prefix = |s: u32| -> Vec<usize> {
        let mut steps = Vec::new();
        let mut cur = s;
        while from[cur as usize] != NONE {
            let e = from[cur as usize] as usize;
            steps.push(g.actions[e] as usize);
            cur = source_of(g, e);
        }
        let mut indices = g.indices_to(cur);
        indices.extend(steps.into_iter().rev());
        indices
    };
    // A state that stops: no successor within the boundary, and none outside it that the
    // system owes (a fair action past a bound cuts the path off: what follows is unknown).
    if let Some(&s) = order.iter().find(|&&s| {
        !g.cut[s as usize]
            && g.edges(s)
                .all(|e| g.targets[e] == NONE && g.classes[e] == NONE)
    }) {
        return (
            Some(Lasso {
                indices: prefix(s),
                cycle_start: None,
                kept_enabled: Vec::new(),
                unfair_to: Vec::new(),
            }),
            bytes,
        );
    }
    // Each state's rank in the breadth-first order, to prefer the component nearest a seed.
    let mut rank = vec![NONE; n];
    for (r, &s) in order.iter().enumerate() {
        rank[s as usize] = r as u32;
    }
    let (comp, best) = components(g, &order, &bad, &rank, fairness);
    bytes += n * 4 * 4;
    let Some((c, entry)) = best else {
        return (None, bytes);
    };
    let in_comp = |s: u32| s != NONE && comp[s as usize] == c;
    let steps = cycle(g, entry, &in_comp, fairness);
    let mut indices = prefix(entry);
    let cycle_start = indices.len() - 1;
    // Judge the loop's fairness over its own states and edges.
    let mut states = vec![entry];
    let mut taken = HashSet::new();
    for &e in &steps {
        taken.insert(g.classes[e]);
        states.push(g.targets[e]);
        indices.push(g.actions[e] as usize);
    }
    let mut kept = g.enabled(entry);
    for &s in &states {
        let here = g.enabled(s);
        kept.retain(|k| here.binary_search(k).is_ok());
    }
    let (kept_enabled, unfair_to) = kept.into_iter().partition(|k| taken.contains(k));
    (
        Some(Lasso {
            indices,
            cycle_start: Some(cycle_start),
            kept_enabled,
            unfair_to,
        }),
        bytes,
    )
}

/// The state whose edge `e` is (a binary search over the rows).
fn source_of(g: &Graph, e: usize) -> u32 {
    (g.offsets.partition_point(|&o| o <= e) - 1) as u32
}

/// Tarjan's strongly connected components of the states in `order` and their edges among states
/// where `bad` holds; each state's component (or [`NONE`]) and the component to report with its
/// entry: a non-trivial one that is fair (or any, without fairness) whose entry ranks first.
fn components(
    g: &Graph,
    order: &[u32],
    bad: &dyn Fn(u32) -> bool,
    rank: &[u32],
    fairness: Fairness,
) -> (Vec<u32>, Option<(u32, u32)>) {
    let n = g.len();
    let mut index = vec![NONE; n];
    let mut low = vec![NONE; n];
    let mut comp = vec![NONE; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut on_stack = vec![false; n];
    let mut next_index = 0u32;
    let mut comps = 0u32;
    let mut best: Option<(u32, u32)> = None;
    let mut calls: Vec<(u32, usize)> = Vec::new();
    for &root in order {
        if index[root as usize] != NONE {
            continue;
        }
        calls.push((root, g.offsets[root as usize]));
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut e)) = calls.last_mut() {
            let end = g.offsets[v as usize + 1];
            let mut descended = false;
            while *e < end {
                let w = g.targets[*e];
                *e += 1;
                if !bad(w) {
                    continue;
                }
                if index[w as usize] == NONE {
                    index[w as usize] = next_index;
                    low[w as usize] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    calls.push((w, g.offsets[w as usize]));
                    descended = true;
                    break;
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
            }
            if descended {
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u as usize] = low[u as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut members = Vec::new();
                loop {
                    let w = stack.pop().expect("Tarjan's stack holds the component");
                    on_stack[w as usize] = false;
                    comp[w as usize] = comps;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                let c = comps;
                comps += 1;
                let internal = |e: usize| {
                    let t = g.targets[e];
                    t != NONE && comp[t as usize] == c
                };
                let looping = members.len() > 1 || g.edges(v).any(|e| g.targets[e] == v);
                if !looping || (fairness == Fairness::Weak && !fair(g, &members, &internal)) {
                    continue;
                }
                let entry = *members
                    .iter()
                    .min_by_key(|&&m| rank[m as usize])
                    .expect("a component has a state");
                if best.is_none_or(|(_, b)| rank[entry as usize] < rank[b as usize]) {
                    best = Some((c, entry));
                }
            }
        }
    }
    (comp, best)
}

/// Whether the loop through all of `members` and their internal edges is weakly fair: every
/// class enabled in all of them labels an internal edge.
fn fair(g: &Graph, members: &[u32], internal: &dyn Fn(usize) -> bool) -> bool {
    let mut count: HashMap<u32, usize> = HashMap::new();
    let mut taken: HashSet<u32> = HashSet::new();
    for &m in members {
        for k in g.enabled(m) {
            *count.entry(k).or_default() += 1;
        }
        for e in g.edges(m) {
            if internal(e) {
                taken.insert(g.classes[e]);
            }
        }
    }
    count
        .into_iter()
        .all(|(k, c)| c < members.len() || taken.contains(&k))
}

/// A loop from `entry` back to it inside the component: without fairness a shortest one; under
/// weak fairness one that, for each class enabled at `entry`, passes a state where the class is
/// disabled or takes an edge of it (the component is fair, so one of the two exists). Edge ids.
fn cycle(g: &Graph, entry: u32, in_comp: &dyn Fn(u32) -> bool, fairness: Fairness) -> Vec<usize> {
    let mut steps: Vec<usize> = Vec::new();
    let mut cur = entry;
    if fairness == Fairness::Weak {
        let mut visited: Vec<u32> = vec![entry];
        for k in g.enabled(entry) {
            let done = steps.iter().any(|&e| g.classes[e] == k)
                || visited
                    .iter()
                    .any(|&s| g.enabled(s).binary_search(&k).is_err());
            if done {
                continue;
            }
            let witness = |s: u32| -> Option<Option<usize>> {
                if g.enabled(s).binary_search(&k).is_err() {
                    return Some(None);
                }
                g.edges(s)
                    .find(|&e| g.classes[e] == k && in_comp(g.targets[e]))
                    .map(Some)
            };
            let (path, end) = bfs(g, cur, in_comp, &witness);
            for &e in &path {
                visited.push(g.targets[e]);
            }
            steps.extend(path);
            cur = end.0;
            if let Some(e) = end.1 {
                steps.push(e);
                cur = g.targets[e];
                visited.push(cur);
            }
        }
    }
    // Back to the entry, in at least one step.
    if cur == entry && steps.is_empty() {
        let first = g
            .edges(entry)
            .find(|&e| in_comp(g.targets[e]))
            .expect("a looping component has an internal edge");
        steps.push(first);
        cur = g.targets[first];
    }
    if cur != entry {
        let (path, _) = bfs(g, cur, in_comp, &|s| (s == entry).then_some(None));
        steps.extend(path);
    }
    steps
}

/// A shortest path inside the component from `start` to a state where `goal` says `Some`:
/// its edges, and the state with what `goal` said.
fn bfs(
    g: &Graph,
    start: u32,
    in_comp: &dyn Fn(u32) -> bool,
    goal: &dyn Fn(u32) -> Option<Option<usize>>,
) -> (Vec<usize>, (u32, Option<usize>)) {
    let mut via: HashMap<u32, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut seen = HashSet::from([start]);
    while let Some(s) = queue.pop_front() {
        if let Some(w) = goal(s) {
            let mut path = Vec::new();
            let mut cur = s;
            while cur != start {
                let e = via[&cur];
                path.push(e);
                cur = source_of(g, e);
            }
            path.reverse();
            return (path, (s, w));
        }
        for e in g.edges(s) {
            let t = g.targets[e];
            if in_comp(t) && seen.insert(t) {
                via.insert(t, e);
                queue.push_back(t);
            }
        }
    }
    unreachable!("a strongly connected component reaches each of its states")
}
