//! Causal consistency of a key-value history, by bad patterns.
//!
//! Bouajjani, Enea, Guerraoui & Hamza, "On Verifying Causal Consistency" (POPL 2017). A history
//! is a set of sessions, each a sequence of transactions; a transaction is a sequence of reads
//! and writes (a plain get or put is a transaction of one operation). Every write installs a
//! version of its key that no other write installs (the history is *differentiated*), and a read
//! names the version it saw (0: the initial value), so the write each read reads from is known.
//!
//! - `po`: the order of each session; `wr`: a write before each read of its version.
//! - `co` (causal order): `(po ∪ wr)+`, the least causal order the history allows.
//!
//! For differentiated histories the paper shows (§3, Lemmas 3 to 5) that a history is:
//! - **CC** (causal consistency) iff none of `ThinAirRead`, `CyclicCO`, `WriteCOInitRead` and
//!   `WriteCORead` occurs;
//! - **CM** (causal memory) iff it is CC and, for the last operation `o` of every session, the
//!   relation `hb_o` is acyclic (`CyclicHB`) and orders no write before a read of the initial
//!   value of its key (`WriteHBInitRead`). `hb_o` is the least transitive relation that holds
//!   `co` inside `o`'s causal past and orders `w1` before `w2` (both writing `x`) when `w1 hb_o r`
//!   for a read `r` of `w2` in `o`'s session: that session's reads must all fit one order;
//! - **CCv** (causal convergence, COPS's causal+) iff it is CC and `co ∪ cf` is acyclic
//!   (`CyclicCF`), where `w1 cf w2` when both write one key and some read of `w2` has `w1` in
//!   its causal past: every replica must order `w1` before `w2`, and all converge on one order.
//!
//! [`Level::Tcc`], transactional causal consistency, is CCv with transactions as the units
//! (Biswas & Enea, "On the Complexity of Checking Transactional Consistency", OOPSLA 2019: a
//! commit order extending `(so ∪ wr)+` that explains every read). A read-only transaction such
//! as COPS-GT's `get_trans` must then see one causal snapshot: reading `x` from `w1` while a
//! later `w2` of `x` is in the causal past of any of the transaction's reads is a
//! `WriteCORead`. A transaction's read of a key it wrote itself must see its own last write
//! (`InternalRead`), and nobody may read a version its transaction overwrote
//! (`IntermediateRead`).
//!
//! The checks are polynomial. Every operation's causal past is closed under `po`, so it is a
//! vector clock over sessions: `O(n·k)` time and memory for `n` operations in `k` sessions,
//! and only the last write of a key in each session need be looked at. CM repeats that per
//! session until `hb_o` stops growing. [`brute_force`] checks the definitions themselves by
//! enumerating orders (exponential; for tests).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

pub mod formats;

/// A version of a key: 0 is the initial value, and each write installs its own.
pub type Version = u64;

/// One operation: a read of the version it saw, or a write of the version it installed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub key: String,
    pub kind: Kind,
}

/// Read or write, with the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Read(Version),
    Write(Version),
}

impl Op {
    pub fn read(key: &str, version: Version) -> Op {
        Op {
            key: key.to_string(),
            kind: Kind::Read(version),
        }
    }

    pub fn write(key: &str, version: Version) -> Op {
        Op {
            key: key.to_string(),
            kind: Kind::Write(version),
        }
    }
}

/// A transaction of a session; `id` names it for people (a jsonl id, or an index).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Txn {
    pub id: u64,
    pub session: u64,
    pub ops: Vec<Op>,
}

impl Txn {
    /// A transaction of one operation: a plain get or put.
    pub fn single(id: u64, session: u64, op: Op) -> Txn {
        Txn {
            id,
            session,
            ops: vec![op],
        }
    }
}

/// The bad patterns, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// A read of a version no (committed) write installs.
    ThinAirRead,
    /// A read of a version its own transaction overwrote (transactions only).
    IntermediateRead,
    /// A read of a key its own transaction wrote that does not see that write (transactions).
    InternalRead,
    /// `co` has a cycle: an operation is in its own causal past.
    CyclicCO,
    /// A read of the initial value of a key that a write in its causal past has overwritten.
    WriteCOInitRead,
    /// A read of `w1`'s version although a later write `w2` of the key (`w1 co w2 co r`) is in
    /// its causal past.
    WriteCORead,
    /// CM: `hb_o` orders a write of `x` before a read of `x`'s initial value in `o`'s session.
    WriteHBInitRead,
    /// CM: `hb_o` has a cycle: no one order of writes explains all of a session's reads.
    CyclicHB,
    /// CCv: `co ∪ cf` has a cycle: no single order of writes satisfies every replica.
    CyclicCF,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The consistency level checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Causal consistency, per operation.
    Cc,
    /// Causal memory, per operation.
    Cm,
    /// Causal convergence (causal+), per operation.
    Ccv,
    /// Transactional causal consistency (with convergence), per transaction.
    Tcc,
}

impl Level {
    /// Every level, weakest first (CM and CCv are incomparable).
    pub const ALL: [Level; 4] = [Level::Cc, Level::Cm, Level::Ccv, Level::Tcc];

    pub fn name(self) -> &'static str {
        match self {
            Level::Cc => "cc",
            Level::Cm => "cm",
            Level::Ccv => "ccv",
            Level::Tcc => "tcc",
        }
    }
}

/// An operation of the history: `txn` indexes the history, `op` the transaction's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpRef {
    pub txn: usize,
    pub op: usize,
}

/// A bad pattern found, with the operations involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub pattern: Pattern,
    pub ops: Vec<OpRef>,
    pub explanation: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pattern, self.explanation)
    }
}

/// `op` for people: `s1 T4: w x=3`.
pub fn show(h: &[Txn], at: OpRef) -> String {
    let t = &h[at.txn];
    let op = &t.ops[at.op];
    let (rw, v) = match op.kind {
        Kind::Read(v) => ("r", v),
        Kind::Write(v) => ("w", v),
    };
    format!("s{} T{}: {rw} {}={v}", t.session, t.id, op.key)
}

/// Checks `h` at `level`; the first bad pattern found, strongest first.
pub fn check(h: &[Txn], level: Level) -> Result<(), Violation> {
    let g = Graph::build(h, level == Level::Tcc)?;
    let topo = g.topo_or_cycle(&[], Pattern::CyclicCO)?;
    let vc = g.clocks(&topo, &[]);
    g.write_co_reads(&vc)?;
    match level {
        Level::Cc => Ok(()),
        Level::Cm => g.causal_memory(&vc),
        Level::Ccv | Level::Tcc => {
            let cf = g.conflicts(&vc, |_| true);
            g.topo_or_cycle(&cf, Pattern::CyclicCF).map(|_| ())
        }
    }
}

/// A read of a unit from outside it: key, the writing unit (`None`: the initial value), and
/// the operation.
#[derive(Clone, Copy)]
struct Read {
    key: u32,
    from: Option<u32>,
    at: OpRef,
}

/// The history as units (operations, or transactions for TCC) in sessions, with `po` and `wr`.
struct Graph<'h> {
    h: &'h [Txn],
    /// Per unit: its dense session, its position there, and its operations' range in `h`.
    session: Vec<u32>,
    pos: Vec<u32>,
    first: Vec<OpRef>,
    /// Per unit, its reads from outside it.
    reads: Vec<Vec<Read>>,
    /// Per unit, the keys it writes (its last write of each), and the operation.
    writes: Vec<Vec<(u32, OpRef)>>,
    /// Per session, its units in order.
    units_of: Vec<Vec<u32>>,
    /// Per key, per session that writes it: the positions of the units writing it, ascending.
    writers_of: Vec<Vec<(u32, Vec<u32>)>>,
    /// Successors under `po ∪ wr`.
    next: Adjacency,
    keys: Vec<&'h str>,
    /// Units are transactions (TCC), not operations.
    by_txn: bool,
}

impl<'h> Graph<'h> {
    fn build(h: &'h [Txn], by_txn: bool) -> Result<Graph<'h>, Violation> {
        let mut key_id: HashMap<&str, u32> = HashMap::default();
        let mut keys = Vec::new();
        let mut session_id: HashMap<u64, u32> = HashMap::default();
        let mut g = Graph {
            h,
            session: Vec::new(),
            pos: Vec::new(),
            first: Vec::new(),
            reads: Vec::new(),
            writes: Vec::new(),
            units_of: Vec::new(),
            writers_of: Vec::new(),
            next: Adjacency::new(0, &[]),
            keys: Vec::new(),
            by_txn,
        };
        // Pass 1: units, and the writer of each version (unit, and whether it is the unit's
        // last write of the key).
        let mut writer: HashMap<(u32, Version), (u32, OpRef)> = HashMap::default();
        let mut overwritten: HashMap<(u32, Version), OpRef> = HashMap::default();
        // Per unit, raw reads: (key, version, op), before the writer is known.
        let mut raw_reads: Vec<Vec<(u32, Version, OpRef)>> = Vec::new();
        for (ti, t) in h.iter().enumerate() {
            let next_session = session_id.len() as u32;
            let s = *session_id.entry(t.session).or_insert(next_session);
            if s as usize == g.units_of.len() {
                g.units_of.push(Vec::new());
            }
            let mut own: HashMap<u32, (Version, OpRef)> = HashMap::default();
            for (oi, op) in t.ops.iter().enumerate() {
                let at = OpRef { txn: ti, op: oi };
                let k = *key_id.entry(op.key.as_str()).or_insert_with(|| {
                    keys.push(op.key.as_str());
                    keys.len() as u32 - 1
                });
                if !by_txn || oi == 0 {
                    let u = g.session.len() as u32;
                    g.session.push(s);
                    g.pos.push(g.units_of[s as usize].len() as u32);
                    g.units_of[s as usize].push(u);
                    g.first.push(at);
                    g.reads.push(Vec::new());
                    g.writes.push(Vec::new());
                    raw_reads.push(Vec::new());
                    own.clear();
                }
                let u = g.session.len() as u32 - 1;
                match op.kind {
                    Kind::Write(v) => {
                        if let Some((old, old_at)) = own.insert(k, (v, at)) {
                            overwritten.insert((k, old), old_at);
                            g.writes[u as usize].retain(|(key, _)| *key != k);
                        }
                        g.writes[u as usize].push((k, at));
                        writer.insert((k, v), (u, at));
                    }
                    Kind::Read(v) => match own.get(&k) {
                        Some(&(mine, w_at)) if mine != v => {
                            return Err(Violation {
                                pattern: Pattern::InternalRead,
                                ops: vec![w_at, at],
                                explanation: format!(
                                    "{} does not see {}, its own transaction's last write",
                                    show(h, at),
                                    show(h, w_at)
                                ),
                            })
                        }
                        Some(_) => {}
                        None => raw_reads[u as usize].push((k, v, at)),
                    },
                }
            }
        }
        g.keys = keys;
        for (u, rs) in raw_reads.into_iter().enumerate() {
            for (key, version, at) in rs {
                if let Some(&w_at) = overwritten.get(&(key, version)) {
                    return Err(Violation {
                        pattern: Pattern::IntermediateRead,
                        ops: vec![w_at, at],
                        explanation: format!(
                            "{} reads {}, which its own transaction overwrote",
                            show(h, at),
                            show(h, w_at)
                        ),
                    });
                }
                let from = if version == 0 {
                    None
                } else {
                    match writer.get(&(key, version)) {
                        Some(&(w, w_at)) if w as usize == u => {
                            return Err(Violation {
                                pattern: Pattern::CyclicCO,
                                ops: vec![at, w_at],
                                explanation: format!(
                                    "{} reads {}, which its own transaction writes later",
                                    show(h, at),
                                    show(h, w_at)
                                ),
                            })
                        }
                        Some(&(w, _)) => Some(w),
                        None => {
                            return Err(Violation {
                                pattern: Pattern::ThinAirRead,
                                ops: vec![at],
                                explanation: format!(
                                    "{} reads a version no committed write installs",
                                    show(h, at)
                                ),
                            })
                        }
                    }
                };
                g.reads[u].push(Read { key, from, at });
            }
        }
        // Writers per key and session, and the successor lists.
        g.writers_of = vec![Vec::new(); g.keys.len()];
        let n = g.session.len();
        // Successors, in one array: each unit's readers (ascending), then its `po` successor.
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(2 * n);
        let mut last_reader = vec![u32::MAX; n];
        for u in 0..n {
            for &(k, _) in &g.writes[u] {
                let per = &mut g.writers_of[k as usize];
                let s = g.session[u];
                match per.iter_mut().find(|(t, _)| *t == s) {
                    Some((_, ps)) => ps.push(g.pos[u]),
                    None => per.push((s, vec![g.pos[u]])),
                }
            }
            for r in &g.reads[u] {
                if let Some(w) = r.from {
                    // `u` ascends, so a repeat of `w → u` can only be the last one pushed.
                    if w as usize != u && last_reader[w as usize] != u as u32 {
                        last_reader[w as usize] = u as u32;
                        edges.push((w, u as u32));
                    }
                }
            }
        }
        for units in &g.units_of {
            for pair in units.windows(2) {
                edges.push((pair[0], pair[1]));
            }
        }
        g.next = Adjacency::new(n, &edges);
        Ok(g)
    }

    fn sessions(&self) -> usize {
        self.units_of.len()
    }

    /// A topological order of `po ∪ wr ∪ extra`, or the cycle found, as `pattern`.
    fn topo_or_cycle(&self, extra: &[(u32, u32)], pattern: Pattern) -> Result<Vec<u32>, Violation> {
        let n = self.session.len();
        let more = Adjacency::new(n, extra);
        let succ = |u: usize| self.next.of(u).iter().chain(more.of(u)).copied();
        let mut indegree = vec![0u32; n];
        for u in 0..n {
            for v in succ(u) {
                indegree[v as usize] += 1;
            }
        }
        // Least unit first: close to the history's order, so `clocks` walks its rows mostly
        // forward. Any order leaves the same units on cycles, so the cycle reported is the same.
        let mut queue: BinaryHeap<Reverse<u32>> = (0..n as u32)
            .filter(|u| indegree[*u as usize] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(u)) = queue.pop() {
            order.push(u);
            for v in succ(u as usize) {
                indegree[v as usize] -= 1;
                if indegree[v as usize] == 0 {
                    queue.push(Reverse(v));
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Every unit left has a predecessor left: walk back until one repeats.
        let done = order_set(&order, n);
        let mut pred = vec![u32::MAX; n];
        for u in (0..n).filter(|u| !done[*u]) {
            for v in succ(u).filter(|v| !done[*v as usize]) {
                pred[v as usize] = u as u32;
            }
        }
        let start = (0..n).find(|u| !done[*u]).expect("a unit is left");
        let mut seen = HashMap::default();
        let mut path = Vec::new();
        let mut u = start as u32;
        while !seen.contains_key(&u) {
            seen.insert(u, path.len());
            path.push(u);
            u = pred[u as usize];
        }
        let mut cycle = path[seen[&u]..].to_vec();
        cycle.reverse();
        let least = (0..cycle.len()).min_by_key(|i| cycle[*i]).expect("a cycle");
        cycle.rotate_left(least);
        let what = match pattern {
            Pattern::CyclicCO => "these operations are in each other's causal past",
            Pattern::CyclicCF => "no order of the writes fits every read",
            _ => "one session's reads need these writes in a cycle",
        };
        let more_set: HashSet<(u32, u32)> = extra.iter().copied().collect();
        let label = pattern_edge(pattern);
        let mut text = format!("{what}: {}", self.show_unit(cycle[0]));
        for i in 0..cycle.len() {
            let (a, b) = (cycle[i], cycle[(i + 1) % cycle.len()]);
            let edge = if self.session[a as usize] == self.session[b as usize]
                && self.pos[a as usize] + 1 == self.pos[b as usize]
            {
                "po"
            } else if self.next.of(a as usize).contains(&b) {
                "wr"
            } else if more_set.contains(&(a, b)) {
                label
            } else {
                "?"
            };
            text.push_str(&format!(" -{edge}-> {}", self.show_unit(b)));
        }
        Err(Violation {
            pattern,
            ops: cycle.iter().map(|u| self.first[*u as usize]).collect(),
            explanation: text,
        })
    }

    /// A unit for people: its operation, or its transaction's operations.
    fn show_unit(&self, u: u32) -> String {
        let at = self.first[u as usize];
        let t = &self.h[at.txn];
        if !self.by_txn || t.ops.len() == 1 {
            return show(self.h, at);
        }
        let ops: Vec<String> = (0..t.ops.len())
            .map(|op| {
                let s = show(self.h, OpRef { txn: at.txn, op });
                s.split_once(": ").map_or(s.clone(), |(_, o)| o.to_string())
            })
            .collect();
        format!("s{} T{}: [{}]", t.session, t.id, ops.join(", "))
    }

    /// Vector clocks: `vc[u * k + t]` is how many units of session `t` are in `u`'s causal
    /// past under `po ∪ wr ∪ extra`, visited in `topo` order.
    fn clocks(&self, topo: &[u32], extra: &[(u32, u32)]) -> Vec<u32> {
        let mut vc = Vec::new();
        self.clocks_into(topo, extra, &mut vc);
        vc
    }

    /// [`Graph::clocks`] into `vc`, whose memory is reused (fresh pages cost a fault each).
    fn clocks_into(&self, topo: &[u32], extra: &[(u32, u32)], vc: &mut Vec<u32>) {
        let k = self.sessions();
        let n = self.session.len();
        let more = Adjacency::new(n, extra);
        vc.clear();
        vc.resize(n * k, 0);
        let mut mine = vec![0u32; k];
        for &u in topo {
            let u = u as usize;
            mine.copy_from_slice(&vc[u * k..(u + 1) * k]);
            let s = self.session[u] as usize;
            mine[s] = mine[s].max(self.pos[u] + 1);
            for &v in self.next.of(u).iter().chain(more.of(u)) {
                let row = &mut vc[v as usize * k..(v as usize + 1) * k];
                for (a, b) in row.iter_mut().zip(&mine) {
                    *a = (*a).max(*b);
                }
            }
        }
    }

    /// Whether unit `a` is in the past of unit `b` under the clocks `vc`.
    fn before(&self, vc: &[u32], a: u32, b: u32) -> bool {
        let k = self.sessions();
        self.pos[a as usize] < vc[b as usize * k + self.session[a as usize] as usize]
    }

    /// For each session writing `key`, the last unit writing it inside the past `vc` of `u`.
    fn last_writers<'a>(
        &'a self,
        vc: &'a [u32],
        u: u32,
        key: u32,
    ) -> impl Iterator<Item = u32> + 'a {
        let k = self.sessions();
        self.writers_of[key as usize]
            .iter()
            .filter_map(move |(s, ps)| {
                let bound = vc[u as usize * k + *s as usize];
                let i = ps.partition_point(|p| *p < bound);
                (i > 0).then(|| self.units_of[*s as usize][ps[i - 1] as usize])
            })
    }

    /// The operation of unit `w` that writes `key`.
    fn write_op(&self, w: u32, key: u32) -> OpRef {
        self.writes[w as usize]
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, at)| *at)
            .expect("the unit writes the key")
    }

    /// `WriteCOInitRead` and `WriteCORead` under `co`'s clocks.
    fn write_co_reads(&self, vc: &[u32]) -> Result<(), Violation> {
        for u in 0..self.session.len() as u32 {
            for r in &self.reads[u as usize] {
                for w2 in self.last_writers(vc, u, r.key) {
                    if Some(w2) == r.from {
                        continue;
                    }
                    let w2_at = self.write_op(w2, r.key);
                    match r.from {
                        None => {
                            return Err(Violation {
                                pattern: Pattern::WriteCOInitRead,
                                ops: vec![w2_at, r.at],
                                explanation: format!(
                                    "{} reads the initial value after {} in its causal past",
                                    show(self.h, r.at),
                                    show(self.h, w2_at)
                                ),
                            })
                        }
                        Some(w1) if self.before(vc, w1, w2) => {
                            let w1_at = self.write_op(w1, r.key);
                            return Err(Violation {
                                pattern: Pattern::WriteCORead,
                                ops: vec![w1_at, w2_at, r.at],
                                explanation: format!(
                                    "{} reads {}, which {} overwrote in its causal past",
                                    show(self.h, r.at),
                                    show(self.h, w1_at),
                                    show(self.h, w2_at)
                                ),
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// The edges `w → w1` for each read of `w1` by a unit passing `reader` and each write `w`
    /// of the key in the reader's past under `vc` (the last one per session stands for the
    /// rest, which `po` orders before it).
    fn conflicts(&self, vc: &[u32], reader: impl Fn(u32) -> bool) -> Vec<(u32, u32)> {
        let mut edges = Vec::new();
        for u in 0..self.session.len() as u32 {
            if !reader(u) {
                continue;
            }
            for r in &self.reads[u as usize] {
                let Some(w1) = r.from else { continue };
                for w in self.last_writers(vc, u, r.key) {
                    if w != w1 {
                        edges.push((w, w1));
                    }
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        edges
    }

    /// CM: for each session, grows `hb_o` for its last operation `o` until it is stable,
    /// starting from `co`'s clocks.
    fn causal_memory(&self, co: &[u32]) -> Result<(), Violation> {
        let mut hb = Vec::new();
        for s in 0..self.sessions() as u32 {
            let mut extra: Vec<(u32, u32)> = Vec::new();
            let mut grown = false;
            loop {
                let vc = if grown { &hb } else { co };
                let found = self.conflicts(vc, |u| self.session[u as usize] == s);
                if found.len() == extra.len() {
                    break;
                }
                extra = found;
                let topo = self.topo_or_cycle(&extra, Pattern::CyclicHB)?;
                self.clocks_into(&topo, &extra, &mut hb);
                grown = true;
            }
            let vc = if grown { &hb } else { co };
            for &u in &self.units_of[s as usize] {
                for r in self.reads[u as usize].iter().filter(|r| r.from.is_none()) {
                    if let Some(w) = self.last_writers(vc, u, r.key).next() {
                        let w_at = self.write_op(w, r.key);
                        return Err(Violation {
                            pattern: Pattern::WriteHBInitRead,
                            ops: vec![w_at, r.at],
                            explanation: format!(
                                "{} reads the initial value, but its session's reads order {} before it",
                                show(self.h, r.at),
                                show(self.h, w_at)
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Successor lists in one array (compressed rows), each in the order of `edges`.
struct Adjacency {
    start: Vec<u32>,
    to: Vec<u32>,
}

impl Adjacency {
    fn new(n: usize, edges: &[(u32, u32)]) -> Adjacency {
        let mut start = vec![0u32; n + 1];
        for &(a, _) in edges {
            start[a as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut to = vec![0u32; edges.len()];
        for &(a, b) in edges {
            to[fill[a as usize] as usize] = b;
            fill[a as usize] += 1;
        }
        Adjacency { start, to }
    }

    fn of(&self, u: usize) -> &[u32] {
        &self.to[self.start[u] as usize..self.start[u + 1] as usize]
    }
}

fn pattern_edge(p: Pattern) -> &'static str {
    match p {
        Pattern::CyclicCF => "cf",
        Pattern::CyclicHB => "hb",
        _ => "?",
    }
}

fn order_set(order: &[u32], n: usize) -> Vec<bool> {
    let mut done = vec![false; n];
    for u in order {
        done[*u as usize] = true;
    }
    done
}

/// The definitions, by brute force (exponential; for tests on small histories).
///
/// - CC: `co` is acyclic, every read reads a version some write installs, and for every read
///   `r` some order of the writes in `r`'s causal past, extending `co`, ends (for `r`'s key)
///   with `r`'s version (none: the initial value).
/// - CM: for every session, one order of the writes in the causal past of its last operation
///   and of the session's operations, extending `co`, in which each of the session's reads
///   sees the last write of its key before it.
/// - CCv, TCC: one order of all writes, extending `co`, such that every read sees the last
///   write of its key among those in its causal past.
pub fn brute_force(h: &[Txn], level: Level) -> bool {
    let Ok(g) = Graph::build(h, level == Level::Tcc) else {
        return false;
    };
    let n = g.session.len();
    let Ok(topo) = g.topo_or_cycle(&[], Pattern::CyclicCO) else {
        return false;
    };
    let vc = g.clocks(&topo, &[]);
    let co = |a: u32, b: u32| g.before(&vc, a, b);
    let writes_key = |u: u32, key: u32| g.writes[u as usize].iter().any(|(k, _)| *k == key);
    let is_writer = |u: u32| !g.writes[u as usize].is_empty();
    match level {
        Level::Cc => (0..n as u32).all(|r| {
            g.reads[r as usize].iter().all(|read| {
                let items: Vec<u32> = (0..n as u32)
                    .filter(|w| is_writer(*w) && co(*w, r))
                    .collect();
                orders(&items, &co, &mut |order| {
                    last_before(order, order.len(), read.key, &writes_key) == read.from
                })
            })
        }),
        Level::Cm => g.units_of.iter().all(|units| {
            let o = *units.last().expect("sessions are not empty");
            let items: Vec<u32> = (0..n as u32)
                .filter(|u| (is_writer(*u) && (co(*u, o) || *u == o)) || units.contains(u))
                .collect();
            orders(&items, &co, &mut |order| {
                order.iter().enumerate().all(|(i, u)| {
                    !units.contains(u)
                        || g.reads[*u as usize]
                            .iter()
                            .all(|read| last_before(order, i, read.key, &writes_key) == read.from)
                })
            })
        }),
        Level::Ccv | Level::Tcc => {
            let items: Vec<u32> = (0..n as u32).filter(|w| is_writer(*w)).collect();
            orders(&items, &co, &mut |order| {
                (0..n as u32).all(|r| {
                    g.reads[r as usize].iter().all(|read| {
                        let seen: Vec<u32> = order.iter().copied().filter(|w| co(*w, r)).collect();
                        last_before(&seen, seen.len(), read.key, &writes_key) == read.from
                    })
                })
            })
        }
    }
}

/// The last unit of `order[..end]` writing `key`.
fn last_before(
    order: &[u32],
    end: usize,
    key: u32,
    writes_key: &impl Fn(u32, u32) -> bool,
) -> Option<u32> {
    order[..end]
        .iter()
        .rev()
        .copied()
        .find(|w| writes_key(*w, key))
}

/// Whether some order of `items` extending `co` passes `ok`.
fn orders(
    items: &[u32],
    co: &impl Fn(u32, u32) -> bool,
    ok: &mut impl FnMut(&[u32]) -> bool,
) -> bool {
    fn go(
        items: &[u32],
        co: &impl Fn(u32, u32) -> bool,
        used: &mut [bool],
        order: &mut Vec<u32>,
        ok: &mut impl FnMut(&[u32]) -> bool,
    ) -> bool {
        if order.len() == items.len() {
            return ok(order);
        }
        for k in 0..items.len() {
            if used[k] {
                continue;
            }
            let x = items[k];
            let ready = items.iter().enumerate().all(|(j, y)| used[j] || !co(*y, x));
            if !ready {
                continue;
            }
            used[k] = true;
            order.push(x);
            if go(items, co, used, order, ok) {
                return true;
            }
            order.pop();
            used[k] = false;
        }
        false
    }
    let mut used = vec![false; items.len()];
    go(items, co, &mut used, &mut Vec::new(), ok)
}

#[cfg(test)]
mod tests;
