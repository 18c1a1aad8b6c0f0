//! The direct serialization graph and its cycles.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{Anomaly, Dep, DepKind, Op, Txn, TxnId, Version, Violation};

/// The bound on the nodes of one strongly connected component from which a shortest cycle is
/// searched: beyond it, the cycle reported is the shortest through one of the first this many.
const CYCLE_SEARCH_STARTS: usize = 256;

/// Checks that the committed transactions of `txns` are serializable (Adya's PL-3): no aborted or
/// intermediate reads and no cycle of ww, wr and rw dependencies. Returns the strongest anomaly
/// found, with a shortest cycle of its class as evidence.
///
/// # Panics
/// If two writes of one key install the same version, a transaction writes version 0, or two
/// committed transactions share an id: the history is malformed ([`super::formats::validate`]
/// says so as an error for recorded histories, and checks the rest of the rules too).
pub fn check_serializable<K>(txns: &[Txn<K>]) -> Result<(), Violation<K>>
where
    K: Clone + Debug + Eq + Hash,
{
    check(txns, false)
}

/// Checks strict serializability: serializability with the real-time order added, so that a
/// transaction that ended before another started is serialized before it (external consistency).
/// A history that is serializable only against real time is [`Anomaly::RealTime`].
///
/// # Panics
/// As [`check_serializable`].
pub fn check_strict_serializable<K>(txns: &[Txn<K>]) -> Result<(), Violation<K>>
where
    K: Clone + Debug + Eq + Hash,
{
    check(txns, true)
}

/// Where a version came from.
#[derive(Clone, Copy)]
struct Written {
    /// Index of the writer in the history.
    txn: usize,
    /// The writer's last write of the key (the version it installs if it commits).
    last: bool,
}

fn check<K>(txns: &[Txn<K>], real_time: bool) -> Result<(), Violation<K>>
where
    K: Clone + Debug + Eq + Hash,
{
    // Every write, and each key's version order (committed final writes, by version).
    let mut written: HashMap<(&K, Version), Written> = HashMap::new();
    let mut order: HashMap<&K, Vec<(Version, usize)>> = HashMap::new();
    for (i, t) in txns.iter().enumerate() {
        let mut last: HashMap<&K, Version> = HashMap::new();
        for op in &t.ops {
            if let Op::Write { key, version } = op {
                let earlier = written.insert(
                    (key, *version),
                    Written {
                        txn: i,
                        last: false,
                    },
                );
                // The rules `formats::validate` reports as errors for recorded histories; a model
                // that breaks them has a bug.
                assert!(
                    *version != 0 && earlier.is_none(),
                    "malformed history: T{} writes version {version} of {key:?}, which is 0 or \
                     written twice",
                    t.id
                );
                last.insert(key, *version);
            }
        }
        for (key, version) in last {
            written
                .get_mut(&(key, version))
                .expect("just inserted")
                .last = true;
            if t.committed {
                order.entry(key).or_default().push((version, i));
            }
        }
    }
    for versions in order.values_mut() {
        versions.sort_unstable();
    }

    // Reads: internal consistency, aborted and intermediate reads, and the wr and rw edges.
    let mut first: [Option<Violation<K>>; 4] = [None, None, None, None];
    let mut note = |slot: usize, v: Violation<K>| {
        if first[slot].is_none() {
            first[slot] = Some(v);
        }
    };
    let mut deps: Vec<Dep<K>> = Vec::new();
    for (j, t) in txns.iter().enumerate().filter(|(_, t)| t.committed) {
        let mut own: HashMap<&K, Version> = HashMap::new();
        for op in &t.ops {
            let (key, version) = match op {
                Op::Write { key, version } => {
                    own.insert(key, *version);
                    continue;
                }
                Op::Read { key, version } => (key, *version),
            };
            if let Some(&mine) = own.get(key) {
                if mine != version {
                    note(
                        1,
                        not_a_cycle(
                            Anomaly::Internal,
                            vec![t.id],
                            format!(
                                "T{} wrote version {mine} of {key:?}, then read version {version}",
                                t.id
                            ),
                        ),
                    );
                }
                continue;
            }
            let versions = order.get(key).map(Vec::as_slice).unwrap_or(&[]);
            if version != 0 {
                let Some(w) = written.get(&(key, version)).copied() else {
                    note(
                        0,
                        not_a_cycle(
                            Anomaly::UnknownVersion,
                            vec![t.id],
                            format!(
                                "T{} read version {version} of {key:?}, which no transaction wrote",
                                t.id
                            ),
                        ),
                    );
                    continue;
                };
                let writer = &txns[w.txn];
                if w.txn == j {
                    note(
                        1,
                        not_a_cycle(
                            Anomaly::Internal,
                            vec![t.id],
                            format!(
                                "T{} read version {version} of {key:?} before writing it",
                                t.id
                            ),
                        ),
                    );
                    continue;
                }
                if !writer.committed {
                    note(2, not_a_cycle(Anomaly::G1a, vec![t.id, writer.id], format!(
                                "T{} read version {version} of {key:?}, written by T{}, which aborted",
                                t.id, writer.id
                            )));
                    continue;
                }
                if !w.last {
                    note(3, not_a_cycle(Anomaly::G1b, vec![t.id, writer.id], format!(
                                "T{} read version {version} of {key:?}, which T{} overwrote before it committed",
                                t.id, writer.id
                            )));
                    continue;
                }
                deps.push(Dep {
                    from: writer.id,
                    to: t.id,
                    kind: DepKind::Wr,
                    key: Some(key.clone()),
                });
            }
            // The next version after the one read, if another transaction installed it.
            let next = versions.partition_point(|(v, _)| *v <= version);
            if let Some(&(_, k)) = versions.get(next) {
                if k != j {
                    deps.push(Dep {
                        from: t.id,
                        to: txns[k].id,
                        kind: DepKind::Rw,
                        key: Some(key.clone()),
                    });
                }
            }
        }
    }
    for (key, versions) in &order {
        for pair in versions.windows(2) {
            deps.push(Dep {
                from: txns[pair[0].1].id,
                to: txns[pair[1].1].id,
                kind: DepKind::Ww,
                key: Some((*key).clone()),
            });
        }
    }

    let [unknown, internal, g1a, g1b] = first;
    if let Some(v) = unknown.or(internal) {
        return Err(v);
    }
    let committed: Vec<&Txn<K>> = txns.iter().filter(|t| t.committed).collect();
    let graph = Dsg::new(&committed, &deps, real_time);
    let dependencies = [DepKind::Ww, DepKind::Wr, DepKind::Rw];
    // Most histories have no cycle: one look at the whole graph spares the per-class searches.
    let cyclic = graph.has_cycle(&dependencies);
    if cyclic {
        if let Some(v) = graph.cycle(Anomaly::G0, &[DepKind::Ww]) {
            return Err(v);
        }
    }
    if let Some(v) = g1a.or(g1b) {
        return Err(v);
    }
    if cyclic {
        if let Some(v) = graph.cycle(Anomaly::G1c, &[DepKind::Ww, DepKind::Wr]) {
            return Err(v);
        }
        if let Some(v) = graph.cycle(Anomaly::G2, &dependencies) {
            return Err(v);
        }
    }
    if real_time {
        let all = [DepKind::Ww, DepKind::Wr, DepKind::Rw, DepKind::Rt];
        if let Some(v) = graph.cycle(Anomaly::RealTime, &all) {
            return Err(v);
        }
    }
    Ok(())
}

/// A violation that is not a cycle: a read of aborted, intermediate, unknown or the wrong own data.
fn not_a_cycle<K>(anomaly: Anomaly, txns: Vec<TxnId>, explanation: String) -> Violation<K> {
    Violation {
        anomaly,
        cycle: vec![],
        txns,
        explanation,
    }
}

/// A node of the graph: a committed transaction, or a point in real time. Time points keep the
/// real-time order linear in size: `Ti -> end_i -> ... -> t -> Tj` for the latest end `t` before
/// `Tj` started, instead of an edge for every pair.
#[derive(Clone, Copy, Debug)]
enum Node {
    Txn(usize),
    Time,
}

/// An edge: a dependency (index into `deps`), or a step of the real-time chain.
#[derive(Clone, Copy, Debug)]
enum Edge {
    Dep(usize),
    /// Into or along the time chain (free), or out of it into a transaction (a real-time hop).
    Time {
        hop: bool,
    },
}

/// The serialization graph of a history, searched for cycles: the DSG's dependencies plus, when
/// asked for, real time as a chain of time points. Also used by [`crate::list_append`].
pub(crate) struct Dsg<'a, K> {
    txns: &'a [&'a Txn<K>],
    deps: &'a [Dep<K>],
    index: HashMap<TxnId, usize>,
    /// Time-chain nodes and edges, `(from, to, edge)`, with `from`/`to` as node positions:
    /// `0..txns.len()` are transactions, then the time points in increasing order.
    time_edges: Vec<(usize, usize, Edge)>,
    time_points: usize,
}

impl<'a, K: Clone + Debug> Dsg<'a, K> {
    /// The graph of `deps` between the transactions `txns` (their ids must be distinct), with the
    /// real-time order from their `start`/`end` when `real_time`.
    pub(crate) fn new(txns: &'a [&'a Txn<K>], deps: &'a [Dep<K>], real_time: bool) -> Self {
        let index: HashMap<TxnId, usize> =
            txns.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        assert_eq!(
            index.len(),
            txns.len(),
            "malformed history: two committed transactions share an id"
        );
        let mut time_edges = Vec::new();
        let mut ends: Vec<u64> = Vec::new();
        if real_time {
            ends = txns.iter().filter_map(|t| t.end).collect();
            ends.sort_unstable();
            ends.dedup();
            let n = txns.len();
            for w in 0..ends.len().saturating_sub(1) {
                time_edges.push((n + w, n + w + 1, Edge::Time { hop: false }));
            }
            for (i, t) in txns.iter().enumerate() {
                if let Some(end) = t.end {
                    let p = ends.binary_search(&end).expect("every end is a point");
                    time_edges.push((i, n + p, Edge::Time { hop: false }));
                }
                if let Some(start) = t.start {
                    // The latest end strictly before this start.
                    let p = ends.partition_point(|e| *e < start);
                    if p > 0 {
                        time_edges.push((n + p - 1, i, Edge::Time { hop: true }));
                    }
                }
            }
        }
        Dsg {
            txns,
            deps,
            index,
            time_edges,
            time_points: ends.len(),
        }
    }

    /// The graph of the dependencies of `kinds` (and the time chain if `Rt` is among them).
    fn graph(&self, kinds: &[DepKind]) -> DiGraph<Node, Edge> {
        let mut g: DiGraph<Node, Edge> = DiGraph::new();
        for i in 0..self.txns.len() {
            g.add_node(Node::Txn(i));
        }
        for (e, d) in self.deps.iter().enumerate() {
            if kinds.contains(&d.kind) && d.from != d.to {
                let (a, b) = (self.index[&d.from], self.index[&d.to]);
                g.add_edge(NodeIndex::new(a), NodeIndex::new(b), Edge::Dep(e));
            }
        }
        if kinds.contains(&DepKind::Rt) {
            for _ in 0..self.time_points {
                g.add_node(Node::Time);
            }
            for &(a, b, e) in &self.time_edges {
                g.add_edge(NodeIndex::new(a), NodeIndex::new(b), e);
            }
        }
        g
    }

    /// Whether the dependencies of `kinds` form a cycle.
    pub(crate) fn has_cycle(&self, kinds: &[DepKind]) -> bool {
        tarjan_scc(&self.graph(kinds))
            .iter()
            .any(|scc| scc.len() > 1)
    }

    /// A shortest cycle using only dependencies of `kinds` (real time if `Rt` is among them).
    fn cycle(&self, anomaly: Anomaly, kinds: &[DepKind]) -> Option<Violation<K>> {
        let deps = self.shortest_cycle(kinds, Rule::ANY)?;
        Some(violation(anomaly, deps))
    }

    /// A shortest cycle using only dependencies of `kinds` (real time if `Rt` is among them) that
    /// also satisfies `rule`, as its edges (a run through the time chain is one rt edge), starting
    /// at the smallest transaction id. Searched from at most [`CYCLE_SEARCH_STARTS`] transactions
    /// of each strongly connected component: those an edge the rule asks for leaves (rw) or
    /// enters (rt), so that every cycle of the class passes through one of them.
    pub(crate) fn shortest_cycle(&self, kinds: &[DepKind], rule: Rule) -> Option<Vec<Dep<K>>> {
        let g = self.graph(kinds);
        let mut best: Option<Vec<(NodeIndex, Edge)>> = None;
        for scc in tarjan_scc(&g) {
            if scc.len() < 2 {
                continue;
            }
            let mut member = vec![false; g.node_count()];
            for n in &scc {
                member[n.index()] = true;
            }
            let marked = |n: NodeIndex| -> bool {
                if rule.rw != RwRule::Any && rule.rw != RwRule::None {
                    g.edges(n).any(|e| {
                        member[e.target().index()]
                            && matches!(*e.weight(), Edge::Dep(d) if self.deps[d].kind == DepKind::Rw)
                    })
                } else if rule.need.contains(&DepKind::Rt) {
                    g.edges_directed(n, petgraph::Direction::Incoming)
                        .any(|e| matches!(*e.weight(), Edge::Time { hop: true }))
                } else {
                    true
                }
            };
            let starts = scc
                .iter()
                .filter(|n| matches!(g[**n], Node::Txn(_)) && marked(**n))
                .take(CYCLE_SEARCH_STARTS);
            for &start in starts {
                // Only a cycle shorter than the best so far is of use: the search stops there.
                let bound = best.as_ref().map_or(usize::MAX, |b| hops(b));
                if let Some(c) = shortest_cycle(&g, self.deps, &member, start, rule, bound) {
                    if hops(&c) < bound {
                        best = Some(c);
                    }
                }
            }
        }
        best.map(|c| self.cycle_deps(&g, &c))
    }

    /// The cycle as dependencies, each run through the time chain folded into one rt edge,
    /// starting at the smallest transaction id.
    fn cycle_deps(&self, g: &DiGraph<Node, Edge>, cycle: &[(NodeIndex, Edge)]) -> Vec<Dep<K>> {
        let txn_id = |n: NodeIndex| match g[n] {
            Node::Txn(i) => self.txns[i].id,
            Node::Time => unreachable!("a hop out of the time chain ends at a transaction"),
        };
        let mut deps: Vec<Dep<K>> = Vec::new();
        let mut rt_from: Option<TxnId> = None;
        for (k, &(from, edge)) in cycle.iter().enumerate() {
            match edge {
                Edge::Dep(d) => deps.push(self.deps[d].clone()),
                Edge::Time { hop: false } => {
                    if matches!(g[from], Node::Txn(_)) {
                        rt_from = Some(txn_id(from));
                    }
                }
                Edge::Time { hop: true } => {
                    // The cycle starts at a transaction, so a run never wraps around.
                    let to = cycle.get(k + 1).map_or(cycle[0].0, |(n, _)| *n);
                    deps.push(Dep {
                        from: rt_from
                            .take()
                            .expect("a run into the time chain came first"),
                        to: txn_id(to),
                        kind: DepKind::Rt,
                        key: None,
                    });
                }
            }
        }
        // Start at the smallest transaction id, so that a cycle is always written the same way.
        let first = (0..deps.len()).min_by_key(|&k| deps[k].from).unwrap_or(0);
        deps.rotate_left(first);
        deps
    }
}

/// The violation of class `anomaly` that the cycle `deps` shows.
fn violation<K>(anomaly: Anomaly, deps: Vec<Dep<K>>) -> Violation<K> {
    let txns: Vec<TxnId> = deps.iter().map(|d| d.from).collect();
    let explanation = format!(
        "a cycle of {} transactions: {}",
        txns.len(),
        txns.iter()
            .chain(txns.first())
            .map(|t| format!("T{t}"))
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    Violation {
        anomaly,
        cycle: deps,
        txns,
        explanation,
    }
}

/// How many rw edges a cycle has, and how they sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RwRule {
    /// Any number.
    Any,
    /// None.
    None,
    /// Exactly one (Adya's G-single).
    One,
    /// Two or more, no two of them adjacent, the last and the first counting as adjacent (Elle's
    /// G-nonadjacent).
    Nonadjacent,
    /// Two or more, at least two of them adjacent.
    Adjacent,
}

/// What a cycle must contain besides using only the allowed kinds of edges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    /// Kinds of which the cycle has at least one edge (`Rt`: at least one real-time hop).
    pub(crate) need: &'static [DepKind],
    pub(crate) rw: RwRule,
}

impl Rule {
    /// Any cycle.
    pub(crate) const ANY: Rule = Rule {
        need: &[],
        rw: RwRule::Any,
    };
}

/// A search state: the node, plus what the path from the start has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    node: NodeIndex,
    /// Kinds seen (bit per `DepKind`), only those the rule needs.
    seen: u8,
    /// rw edges so far, capped at 2.
    rw: u8,
    /// Whether the last edge was rw.
    last_rw: bool,
    /// The first edge: unknown yet (0), not rw (1), rw (2).
    first: u8,
    /// Whether two rw edges were adjacent.
    adjacent: bool,
}

fn bit(kind: DepKind) -> u8 {
    1 << (kind as u8)
}

/// The state after `edge` from `s` to `to`, or `None` when the rule forbids the step.
fn step<K>(deps: &[Dep<K>], rule: Rule, s: State, to: NodeIndex, edge: Edge) -> Option<State> {
    let kind = match edge {
        Edge::Dep(d) => Some(deps[d].kind),
        Edge::Time { hop: true } => Some(DepKind::Rt),
        Edge::Time { hop: false } => None,
    };
    let mut n = State { node: to, ..s };
    let is_rw = kind == Some(DepKind::Rw);
    if n.first == 0 {
        n.first = if is_rw { 2 } else { 1 };
    }
    if is_rw {
        if rule.rw == RwRule::None || (rule.rw == RwRule::One && s.rw >= 1) {
            return None;
        }
        if s.last_rw {
            if rule.rw == RwRule::Nonadjacent {
                return None;
            }
            n.adjacent = true;
        }
        n.rw = (s.rw + 1).min(2);
        n.last_rw = true;
    } else {
        n.last_rw = false;
    }
    if let Some(k) = kind {
        if rule.need.contains(&k) {
            n.seen |= bit(k);
        }
    }
    // Forget what the rule does not look at, so that the search has fewer states.
    match rule.rw {
        RwRule::Any | RwRule::None => (n.rw, n.last_rw, n.first, n.adjacent) = (0, false, 0, false),
        RwRule::One => (n.last_rw, n.first, n.adjacent) = (false, 0, false),
        RwRule::Nonadjacent | RwRule::Adjacent => {}
    }
    Some(n)
}

/// Whether a path in state `s` back at the start closes a cycle the rule accepts.
fn accepts(rule: Rule, s: State) -> bool {
    let need = rule.need.iter().fold(0, |m, k| m | bit(*k));
    if s.seen & need != need {
        return false;
    }
    let wraps = s.last_rw && s.first == 2;
    match rule.rw {
        RwRule::Any => true,
        RwRule::None => s.rw == 0,
        RwRule::One => s.rw == 1,
        RwRule::Nonadjacent => s.rw >= 2 && !wraps,
        RwRule::Adjacent => s.rw >= 2 && (s.adjacent || wraps),
    }
}

/// The weight of an edge in transaction-to-transaction hops.
fn weight(e: Edge) -> usize {
    match e {
        Edge::Time { hop: false } => 0,
        _ => 1,
    }
}

fn hops(cycle: &[(NodeIndex, Edge)]) -> usize {
    cycle.iter().map(|(_, e)| weight(*e)).sum()
}

/// A shortest cycle through `start` inside the component `member` that `rule` accepts, as (node,
/// edge leaving it) pairs beginning at `start`: a 0-1 breadth-first search (time-chain steps cost
/// nothing) over (node, what the path has seen), given up at paths of `bound` hops.
fn shortest_cycle<K>(
    g: &DiGraph<Node, Edge>,
    deps: &[Dep<K>],
    member: &[bool],
    start: NodeIndex,
    rule: Rule,
    bound: usize,
) -> Option<Vec<(NodeIndex, Edge)>> {
    let origin = State {
        node: start,
        seen: 0,
        rw: 0,
        last_rw: false,
        first: 0,
        adjacent: false,
    };
    let mut dist: HashMap<State, usize> = HashMap::new();
    let mut parent: HashMap<State, (State, Edge)> = HashMap::new();
    let mut back: Option<(usize, State, Edge)> = None;
    let mut queue = VecDeque::new();
    dist.insert(origin, 0);
    queue.push_back((origin, 0));
    while let Some((u, du)) = queue.pop_front() {
        if dist.get(&u).is_some_and(|d| *d < du) {
            continue; // a stale entry: reached more cheaply since
        }
        if du >= bound || back.as_ref().is_some_and(|(len, _, _)| du >= *len) {
            break;
        }
        for e in g.edges(u.node) {
            let v = e.target();
            if !member[v.index()] {
                continue;
            }
            let Some(next) = step(deps, rule, u, v, *e.weight()) else {
                continue;
            };
            let w = weight(*e.weight());
            if v == start {
                if accepts(rule, next) && back.as_ref().is_none_or(|(len, _, _)| du + w < *len) {
                    back = Some((du + w, u, *e.weight()));
                }
                continue;
            }
            if dist.get(&next).is_none_or(|d| du + w < *d) {
                dist.insert(next, du + w);
                parent.insert(next, (u, *e.weight()));
                if w == 0 {
                    queue.push_front((next, du));
                } else {
                    queue.push_back((next, du + w));
                }
            }
        }
    }
    let (_, mut u, edge) = back?;
    let mut path = vec![(u.node, edge)];
    while u != origin {
        let (p, e) = parent[&u];
        path.push((p.node, e));
        u = p;
    }
    path.reverse();
    Some(path)
}
