//! Inferring the version orders, the dependencies and the anomalies of a list-append history.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{list, Anomaly, Atom, Edge, Finding, History, Level, Mop, Report, Status, Txn};
use crate::serializability::graph::{Dsg, Rule, RwRule};
use crate::serializability::{self as ser, Dep, DepKind};

/// Checks `history` against `level`: finds every anomaly (see the module documentation) and says
/// which the level forbids.
pub fn check(history: &History, level: Level) -> Report {
    let anomalies = anomalies(history);
    let mut forbidden: Vec<Anomaly> = anomalies
        .iter()
        .map(|f| f.anomaly)
        .filter(|a| level.forbids(*a))
        .collect();
    forbidden.dedup();
    Report {
        level: level.name(),
        valid: forbidden.is_empty(),
        anomalies,
        forbidden,
    }
}

/// What justifies an edge: the key, the element the edge is about and the one before it.
#[derive(Clone, Debug)]
struct Why<'a> {
    key: &'a Atom,
    /// The element read last (wr), or appended (ww, rw).
    element: &'a Atom,
    /// The element appended just before `element` (ww), or read last (rw; `None`: the read saw
    /// the empty list).
    before: Option<&'a Atom>,
}

/// Every anomaly of `history`, strongest class first; a cycle class once (a shortest cycle),
/// other classes once per case.
pub fn anomalies(history: &History) -> Vec<Finding> {
    let (mut found, edges) = infer(history);
    found.extend(cycles(history, &edges));
    found.sort_by_key(|f| f.anomaly);
    for f in &mut found {
        f.ops = f
            .txns
            .iter()
            .map(|id| history.txns[*id as usize - 1].to_string())
            .collect();
    }
    found
}

/// The ww, wr and rw dependencies Elle infers from `history` (one per ordered pair of
/// transactions: the strongest), each with the elements that justify it; real time is left out.
pub fn dependencies(history: &History) -> Vec<Edge> {
    infer(history)
        .1
        .iter()
        .map(|(&(a, b), (kind, why))| edge(history.txns[a].id, history.txns[b].id, *kind, why))
        .collect()
}

/// The findings that are not cycles, and the dependencies by pair of transaction positions.
type Edges<'a> = BTreeMap<(usize, usize), (DepKind, Why<'a>)>;

fn infer(history: &History) -> (Vec<Finding>, Edges<'_>) {
    let txns = &history.txns;
    let mut found: Vec<Finding> = Vec::new();
    let ok = |t: &&Txn| t.status == Status::Ok;

    // Within one transaction: duplicates and internal consistency.
    for t in txns.iter().filter(ok) {
        let mut state: HashMap<&Atom, (bool, Vec<&Atom>)> = HashMap::new();
        let mut internal = false;
        for m in &t.mops {
            match m {
                Mop::Append(k, v) => state.entry(k).or_insert((false, Vec::new())).1.push(v),
                Mop::Read(_, None) => {}
                Mop::Read(k, Some(vs)) => {
                    let mut seen = HashSet::new();
                    let dups: Vec<String> = vs
                        .iter()
                        .filter(|v| !seen.insert(*v))
                        .map(Atom::to_string)
                        .collect();
                    if !dups.is_empty() {
                        found.push(single(
                            Anomaly::DuplicateElements,
                            vec![t.id],
                            format!(
                                "T{} read {} of key {k}: {} more than once",
                                t.id,
                                list(vs),
                                dups.join(", ")
                            ),
                        ));
                    }
                    if let Some((known, expected)) = state.get(k) {
                        let got: Vec<&Atom> = vs.iter().collect();
                        let bad = if *known {
                            got != *expected
                        } else {
                            !got.ends_with(expected)
                        };
                        if bad && !internal {
                            internal = true;
                            let shown: Vec<String> =
                                expected.iter().map(|a| a.to_string()).collect();
                            found.push(single(
                                Anomaly::Internal,
                                vec![t.id],
                                format!(
                                    "T{} read {} of key {k}, but its own earlier micro-ops imply \
                                     [{}{}]",
                                    t.id,
                                    list(vs),
                                    if *known { "" } else { "... " },
                                    shown.join(" ")
                                ),
                            ));
                        }
                    }
                    state.insert(k, (true, vs.iter().collect()));
                }
            }
        }
    }

    // Who appended what; which appends were not their writer's last to the key.
    let mut writer: HashMap<(&Atom, &Atom), usize> = HashMap::new();
    let mut intermediate: HashSet<(&Atom, &Atom)> = HashSet::new();
    for (i, t) in txns.iter().enumerate() {
        let mut last: HashMap<&Atom, &Atom> = HashMap::new();
        for m in &t.mops {
            if let Mop::Append(k, v) = m {
                writer.insert((k, v), i);
                if let Some(prev) = last.insert(k, v) {
                    intermediate.insert((k, prev));
                }
            }
        }
    }

    // The committed reads, each key's longest read, and incompatible orders.
    let mut reads: Vec<(usize, &Atom, &[Atom])> = Vec::new();
    for (i, t) in txns.iter().enumerate().filter(|(_, t)| ok(t)) {
        for m in &t.mops {
            if let Mop::Read(k, Some(vs)) = m {
                reads.push((i, k, vs));
            }
        }
    }
    let mut longest: HashMap<&Atom, (usize, &[Atom])> = HashMap::new();
    for &(i, k, vs) in &reads {
        let e = longest.entry(k).or_insert((i, vs));
        if vs.len() > e.1.len() {
            *e = (i, vs);
        }
    }
    let mut incompatible: HashSet<&Atom> = HashSet::new();
    for &(i, k, vs) in &reads {
        let (j, long) = longest[k];
        if !long.starts_with(vs) && incompatible.insert(k) {
            found.push(single(
                Anomaly::IncompatibleOrder,
                vec![txns[i].id, txns[j].id],
                format!(
                    "key {k}: T{} read {} and T{} read {}, and neither is a prefix of the other",
                    txns[i].id,
                    list(vs),
                    txns[j].id,
                    list(long)
                ),
            ));
        }
    }
    // Version orders: the distinct elements of the longest read, by position.
    let mut position: HashMap<(&Atom, &Atom), usize> = HashMap::new();
    let mut order: HashMap<&Atom, Vec<&Atom>> = HashMap::new();
    for (k, (_, vs)) in &longest {
        let o = order.entry(k).or_default();
        for v in vs.iter() {
            if !position.contains_key(&(*k, v)) {
                position.insert((k, v), o.len());
                o.push(v);
            }
        }
    }

    // Aborted and intermediate reads.
    for &(i, k, vs) in &reads {
        let t = &txns[i];
        if let Some((e, w)) = vs.iter().find_map(|e| {
            writer
                .get(&(k, e))
                .filter(|w| txns[**w].status == Status::Fail)
                .map(|w| (e, &txns[*w]))
        }) {
            found.push(single(
                Anomaly::G1a,
                vec![t.id, w.id],
                format!(
                    "T{} read {} of key {k}, with {e}, which T{} appended and then aborted",
                    t.id,
                    list(vs),
                    w.id
                ),
            ));
        }
        if let Some(e) = vs.last() {
            if let Some(&w) = writer.get(&(k, e)) {
                if w != i && txns[w].status != Status::Fail && intermediate.contains(&(k, e)) {
                    found.push(single(
                        Anomaly::G1b,
                        vec![t.id, txns[w].id],
                        format!(
                            "T{} read {} of key {k}, ending with {e}, which T{} appended to {k} \
                             before appending again",
                            t.id,
                            list(vs),
                            txns[w].id
                        ),
                    ));
                }
            }
        }
    }

    // Dependencies, one per ordered pair of transactions: the strongest kind (ww, wr, rw).
    let in_graph = |i: usize| txns[i].status != Status::Fail;
    let mut edges: Edges = BTreeMap::new();
    let mut link = |from: usize, to: usize, kind: DepKind, why| {
        if from == to {
            return;
        }
        let e = edges.entry((from, to)).or_insert((kind, Why::clone(&why)));
        if kind < e.0 {
            *e = (kind, why);
        }
    };
    // Readers of each state: (key, last element read or None for the empty list).
    let mut readers: HashMap<(&Atom, Option<&Atom>), Vec<usize>> = HashMap::new();
    for &(i, k, vs) in &reads {
        readers.entry((k, vs.last())).or_default().push(i);
        if let Some(e) = vs.last() {
            if let Some(&w) = writer.get(&(k, e)) {
                if in_graph(w) {
                    let why = Why {
                        key: k,
                        element: e,
                        before: None,
                    };
                    link(w, i, DepKind::Wr, why);
                }
            }
        }
    }
    for (i, t) in txns.iter().enumerate().filter(|(i, _)| in_graph(*i)) {
        for m in &t.mops {
            let Mop::Append(k, v) = m else { continue };
            let o = order.get(k).map(Vec::as_slice).unwrap_or(&[]);
            // The element appended just before: from the version order, or, for an append no
            // read saw, the last element any read saw.
            let before: Option<&Atom> = match position.get(&(k, v)) {
                Some(0) => None,
                Some(&p) => Some(o[p - 1]),
                None => o.last().copied(),
            };
            let why = Why {
                key: k,
                element: v,
                before,
            };
            if let Some(b) = before {
                if let Some(&w) = writer.get(&(k, b)) {
                    if in_graph(w) {
                        link(w, i, DepKind::Ww, why.clone());
                    }
                }
            }
            for &r in readers.get(&(k, before)).map(Vec::as_slice).unwrap_or(&[]) {
                link(r, i, DepKind::Rw, why.clone());
            }
        }
    }

    (found, edges)
}

fn single(anomaly: Anomaly, txns: Vec<u64>, explanation: String) -> Finding {
    Finding {
        anomaly,
        txns,
        cycle: Vec::new(),
        explanation,
        ops: Vec::new(),
    }
}

/// A cycle class: its name, the edges it may use and what it must contain.
struct Class {
    anomaly: Anomaly,
    kinds: &'static [DepKind],
    rule: Rule,
}

const WW: &[DepKind] = &[DepKind::Ww];
const WW_WR: &[DepKind] = &[DepKind::Ww, DepKind::Wr];
const ALL: &[DepKind] = &[DepKind::Ww, DepKind::Wr, DepKind::Rw];
const WW_RT: &[DepKind] = &[DepKind::Ww, DepKind::Rt];
const WW_WR_RT: &[DepKind] = &[DepKind::Ww, DepKind::Wr, DepKind::Rt];
const ALL_RT: &[DepKind] = &[DepKind::Ww, DepKind::Wr, DepKind::Rw, DepKind::Rt];

/// The cycle classes, each followed by its real-time variant.
const CLASSES: [(Class, Class); 5] = [
    (
        Class {
            anomaly: Anomaly::G0,
            kinds: WW,
            rule: Rule {
                need: &[],
                rw: RwRule::None,
            },
        },
        Class {
            anomaly: Anomaly::G0Realtime,
            kinds: WW_RT,
            rule: Rule {
                need: &[DepKind::Rt],
                rw: RwRule::None,
            },
        },
    ),
    (
        Class {
            anomaly: Anomaly::G1c,
            kinds: WW_WR,
            rule: Rule {
                need: &[DepKind::Wr],
                rw: RwRule::None,
            },
        },
        Class {
            anomaly: Anomaly::G1cRealtime,
            kinds: WW_WR_RT,
            rule: Rule {
                need: &[DepKind::Wr, DepKind::Rt],
                rw: RwRule::None,
            },
        },
    ),
    (
        Class {
            anomaly: Anomaly::GSingle,
            kinds: ALL,
            rule: Rule {
                need: &[],
                rw: RwRule::One,
            },
        },
        Class {
            anomaly: Anomaly::GSingleRealtime,
            kinds: ALL_RT,
            rule: Rule {
                need: &[DepKind::Rt],
                rw: RwRule::One,
            },
        },
    ),
    (
        Class {
            anomaly: Anomaly::GNonadjacent,
            kinds: ALL,
            rule: Rule {
                need: &[],
                rw: RwRule::Nonadjacent,
            },
        },
        Class {
            anomaly: Anomaly::GNonadjacentRealtime,
            kinds: ALL_RT,
            rule: Rule {
                need: &[DepKind::Rt],
                rw: RwRule::Nonadjacent,
            },
        },
    ),
    (
        Class {
            anomaly: Anomaly::G2Item,
            kinds: ALL,
            rule: Rule {
                need: &[],
                rw: RwRule::Adjacent,
            },
        },
        Class {
            anomaly: Anomaly::G2ItemRealtime,
            kinds: ALL_RT,
            rule: Rule {
                need: &[DepKind::Rt],
                rw: RwRule::Adjacent,
            },
        },
    ),
];

/// A shortest cycle of each class, with the real-time variant of a class searched only when the
/// class itself has none.
fn cycles(history: &History, edges: &BTreeMap<(usize, usize), (DepKind, Why<'_>)>) -> Vec<Finding> {
    let txns = &history.txns;
    let nodes: Vec<ser::Txn<usize>> = txns
        .iter()
        .filter(|t| t.status != Status::Fail)
        .map(|t| ser::Txn {
            id: t.id,
            ops: Vec::new(),
            committed: true,
            start: t.invoked,
            end: t.completed,
        })
        .collect();
    let refs: Vec<&ser::Txn<usize>> = nodes.iter().collect();
    // The key of a dependency is the pair's position in `edges`, to find its justification.
    let keyed: Vec<&(DepKind, Why<'_>)> = edges.values().collect();
    let deps: Vec<Dep<usize>> = edges
        .iter()
        .enumerate()
        .map(|(n, ((from, to), (kind, _)))| Dep {
            from: txns[*from].id,
            to: txns[*to].id,
            kind: *kind,
            key: Some(n),
        })
        .collect();
    let graph = Dsg::new(&refs, &deps, true);
    let mut found = Vec::new();
    if !graph.has_cycle(ALL_RT) {
        return found;
    }
    let plain = graph.has_cycle(ALL);
    for (class, realtime) in &CLASSES {
        let cycle = if plain {
            graph.shortest_cycle(class.kinds, class.rule)
        } else {
            None
        };
        let (anomaly, cycle) = match cycle {
            Some(c) => (class.anomaly, c),
            None => match graph.shortest_cycle(realtime.kinds, realtime.rule) {
                Some(c) => (realtime.anomaly, c),
                None => continue,
            },
        };
        found.push(finding(history, anomaly, &cycle, &keyed));
    }
    found
}

/// The dependency `a -kind-> b`, with the sentence Elle would write for it.
fn edge(a: u64, b: u64, kind: DepKind, why: &Why<'_>) -> Edge {
    let (k, e) = (why.key, why.element);
    let text = match (kind, why.before) {
        (DepKind::Wr, _) => format!("T{b} observed T{a}'s append of {e} to key {k}"),
        (DepKind::Ww, Some(p)) => format!("T{b} appended {e} after T{a} appended {p} to {k}"),
        (DepKind::Rw, None) => format!(
            "T{a} observed the initial (nil) state of {k}, which T{b} created by appending {e}"
        ),
        _ => format!("T{a} did not observe T{b}'s append of {e} to {k}"),
    };
    Edge {
        from: a,
        to: b,
        kind,
        key: Some(k.clone()),
        why: text,
    }
}

fn finding(
    history: &History,
    anomaly: Anomaly,
    cycle: &[Dep<usize>],
    keyed: &[&(DepKind, Why<'_>)],
) -> Finding {
    let txn = |id: u64| &history.txns[id as usize - 1];
    let clock = if history.times_are_indices {
        "index"
    } else {
        "op"
    };
    let edges: Vec<Edge> = cycle
        .iter()
        .map(|d| {
            let (a, b) = (d.from, d.to);
            match d.key {
                Some(n) => {
                    let (kind, why) = keyed[n];
                    edge(a, b, *kind, why)
                }
                None => Edge {
                    from: a,
                    to: b,
                    kind: DepKind::Rt,
                    key: None,
                    why: format!(
                        "T{a} completed ({clock} {}) before T{b} was invoked ({clock} {})",
                        txn(a).completed.unwrap_or(0),
                        txn(b).invoked.unwrap_or(0)
                    ),
                },
            }
        })
        .collect();
    let ids: Vec<u64> = edges.iter().map(|e| e.from).collect();
    let path: Vec<String> = ids
        .iter()
        .chain(ids.first())
        .map(|id| format!("T{id}"))
        .collect();
    Finding {
        anomaly,
        explanation: format!(
            "a cycle of {} transactions: {}",
            ids.len(),
            path.join(" -> ")
        ),
        txns: ids,
        cycle: edges,
        ops: Vec::new(),
    }
}
