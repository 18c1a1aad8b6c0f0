//! Causal consistency of a key-value history, by bad patterns.
//!
//! Bouajjani, Enea, Guerraoui & Hamza, "On Verifying Causal Consistency" (POPL 2017). A history
//! is a set of sessions, each a sequence of reads and writes; every write installs a version of
//! its key that no other write installs (the history is *differentiated*), and a read names the
//! version it saw (0: the initial value), so the write each read reads from is known.
//!
//! - `po`: the order of each session; `wr`: a write before each read of its version.
//! - `co` (causal order): `(po ∪ wr)+`, the least causal order the history allows.
//!
//! For differentiated histories, the paper shows (Lemma 3, Theorem 2) that a history is:
//! - **CC** (causal consistency) iff it has none of `CyclicCO`, `WriteCOInitRead`,
//!   `ThinAirRead` and `WriteCORead`;
//! - **CCv** (causal convergence, COPS's causal+) iff it is CC and `CyclicCF` does not occur:
//!   `co ∪ cf` is acyclic, where `w1 cf w2` when both write one key and some read of `w2`'s
//!   version has `w1` in its causal past (every replica must order `w1` before `w2`).
//!
//! The checks here are polynomial: the closure is one search per operation (`O(n·(n + m))`),
//! which suits model checking and small live histories; the [`brute_force_cc`] reference
//! serialises each operation's causal past and is exponential, for tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// A version of a key: 0 is the initial value, and each write installs its own.
pub type Version = u64;

/// One operation of a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub session: usize,
    pub key: String,
    pub kind: Kind,
}

/// A read of the version it saw, or a write of the version it installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Read(Version),
    Write(Version),
}

/// The bad patterns of Bouajjani et al. (POPL 2017, §3), strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// A read of a version no write installs.
    ThinAirRead,
    /// `co` has a cycle: an operation is in its own causal past.
    CyclicCO,
    /// A read of the initial value of a key that a write in its causal past has overwritten.
    WriteCOInitRead,
    /// A read of `w1`'s version although a later write `w2` of the key (`w1 co w2 co r`) is in
    /// its causal past.
    WriteCORead,
    /// `co ∪ cf` has a cycle: no single order of writes satisfies every replica (CCv only).
    CyclicCF,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pattern::ThinAirRead => "ThinAirRead",
            Pattern::CyclicCO => "CyclicCO",
            Pattern::WriteCOInitRead => "WriteCOInitRead",
            Pattern::WriteCORead => "WriteCORead",
            Pattern::CyclicCF => "CyclicCF",
        })
    }
}

/// The consistency level checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Causal consistency.
    Cc,
    /// Causal convergence (causal+).
    Ccv,
}

/// A bad pattern found, with the operations involved (indices into the history).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub pattern: Pattern,
    pub ops: Vec<usize>,
    pub explanation: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pattern, self.explanation)
    }
}

/// `op` for people: `s1: w x=3`.
fn show(op: &Op) -> String {
    match op.kind {
        Kind::Read(v) => format!("s{}: r {}={v}", op.session, op.key),
        Kind::Write(v) => format!("s{}: w {}={v}", op.session, op.key),
    }
}

/// The history's relations: the writer of each version, and each operation's causal past.
struct Relations {
    /// `past[i]`: the operations `j` with `j co i`.
    past: Vec<BTreeSet<usize>>,
}

/// The writer of each (key, version), or the first thin-air read.
fn writers(ops: &[Op]) -> Result<BTreeMap<(&str, Version), usize>, Violation> {
    let mut by_version = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Kind::Write(v) = op.kind {
            by_version.insert((op.key.as_str(), v), i);
        }
    }
    for (i, op) in ops.iter().enumerate() {
        if let Kind::Read(v) = op.kind {
            if v != 0 && !by_version.contains_key(&(op.key.as_str(), v)) {
                return Err(Violation {
                    pattern: Pattern::ThinAirRead,
                    ops: vec![i],
                    explanation: format!("{} reads a version no write installs", show(op)),
                });
            }
        }
    }
    Ok(by_version)
}

/// `po ∪ wr` as successor lists.
fn base_edges(ops: &[Op], writer: &BTreeMap<(&str, Version), usize>) -> Vec<Vec<usize>> {
    let mut next = vec![Vec::new(); ops.len()];
    let mut last: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(prev) = last.insert(op.session, i) {
            next[prev].push(i);
        }
        if let Kind::Read(v) = op.kind {
            if let Some(&w) = writer.get(&(op.key.as_str(), v)) {
                if w != i {
                    next[w].push(i);
                }
            }
        }
    }
    next
}

/// Each operation's causal past under the successor lists `next` (a search back from it).
fn closure(next: &[Vec<usize>]) -> Relations {
    let n = next.len();
    let mut prev = vec![Vec::new(); n];
    for (i, succ) in next.iter().enumerate() {
        for &j in succ {
            prev[j].push(i);
        }
    }
    let past = (0..n)
        .map(|i| {
            let mut seen = BTreeSet::new();
            let mut queue: VecDeque<usize> = prev[i].iter().copied().collect();
            while let Some(j) = queue.pop_front() {
                if seen.insert(j) {
                    queue.extend(prev[j].iter().copied());
                }
            }
            seen
        })
        .collect();
    Relations { past }
}

/// A cycle of `rel` as `pattern`: the operations on a cycle through the first operation that is
/// in its own past.
fn cycle(ops: &[Op], rel: &Relations, pattern: Pattern, what: &str) -> Option<Violation> {
    let i = (0..ops.len()).find(|i| rel.past[*i].contains(i))?;
    let on_cycle: Vec<usize> = rel.past[i]
        .iter()
        .copied()
        .filter(|j| rel.past[*j].contains(&i))
        .collect();
    let shown: Vec<String> = on_cycle.iter().map(|j| show(&ops[*j])).collect();
    Some(Violation {
        pattern,
        ops: on_cycle,
        explanation: format!("{what}: {}", shown.join(", ")),
    })
}

/// Checks `ops` at `level`; the first bad pattern found, strongest first.
pub fn check(ops: &[Op], level: Level) -> Result<(), Violation> {
    let writer = writers(ops)?;
    let next = base_edges(ops, &writer);
    let rel = closure(&next);
    if let Some(v) = cycle(
        ops,
        &rel,
        Pattern::CyclicCO,
        "these operations are in each other's causal past",
    ) {
        return Err(v);
    }
    for (r, op) in ops.iter().enumerate() {
        let Kind::Read(v) = op.kind else { continue };
        let key_writes = rel.past[r]
            .iter()
            .copied()
            .filter(|w| ops[*w].key == op.key && matches!(ops[*w].kind, Kind::Write(_)));
        if v == 0 {
            if let Some(w) = key_writes.clone().next() {
                return Err(Violation {
                    pattern: Pattern::WriteCOInitRead,
                    ops: vec![w, r],
                    explanation: format!(
                        "{} reads the initial value after {} in its causal past",
                        show(op),
                        show(&ops[w])
                    ),
                });
            }
            continue;
        }
        let w1 = writer[&(op.key.as_str(), v)];
        if let Some(w2) = key_writes
            .filter(|w2| *w2 != w1)
            .find(|w2| rel.past[*w2].contains(&w1))
        {
            return Err(Violation {
                pattern: Pattern::WriteCORead,
                ops: vec![w1, w2, r],
                explanation: format!(
                    "{} reads {}, which {} overwrote in its causal past",
                    show(op),
                    show(&ops[w1]),
                    show(&ops[w2])
                ),
            });
        }
    }
    if level == Level::Ccv {
        cyclic_cf(ops, &writer, &next, &rel)?;
    }
    Ok(())
}

/// CCv: `co ∪ cf` must be acyclic.
fn cyclic_cf(
    ops: &[Op],
    writer: &BTreeMap<(&str, Version), usize>,
    next: &[Vec<usize>],
    rel: &Relations,
) -> Result<(), Violation> {
    let mut edges = next.to_vec();
    for (r, op) in ops.iter().enumerate() {
        let Kind::Read(v) = op.kind else { continue };
        let Some(&w2) = writer.get(&(op.key.as_str(), v)) else {
            continue;
        };
        for &w1 in &rel.past[r] {
            if w1 != w2 && ops[w1].key == op.key && matches!(ops[w1].kind, Kind::Write(_)) {
                edges[w1].push(w2);
            }
        }
    }
    match cycle(
        ops,
        &closure(&edges),
        Pattern::CyclicCF,
        "no order of the writes fits every read",
    ) {
        Some(v) => Err(v),
        None => Ok(()),
    }
}

/// The definition of CC, by brute force (exponential; for tests on small histories): `co` is
/// acyclic, every read reads a version some write installs, and for every read `r` some order
/// of `r` and the writes of its causal past, extending `co`, has `r`'s version as the last
/// write of its key before `r` (the initial value if none).
pub fn brute_force_cc(ops: &[Op]) -> bool {
    let Ok(writer) = writers(ops) else {
        return false;
    };
    let rel = closure(&base_edges(ops, &writer));
    if (0..ops.len()).any(|i| rel.past[i].contains(&i)) {
        return false;
    }
    ops.iter().enumerate().all(|(r, op)| {
        let Kind::Read(v) = op.kind else { return true };
        let mut items: Vec<usize> = rel.past[r]
            .iter()
            .copied()
            .filter(|w| matches!(ops[*w].kind, Kind::Write(_)))
            .collect();
        items.push(r);
        let mut order = Vec::new();
        let mut used = vec![false; items.len()];
        extend(ops, &rel, &items, &mut used, &mut order, r, v)
    })
}

/// Whether `order` extends, respecting `co`, to an order of `items` in which read `r` sees
/// version `v` of its key.
fn extend(
    ops: &[Op],
    rel: &Relations,
    items: &[usize],
    used: &mut [bool],
    order: &mut Vec<usize>,
    r: usize,
    v: Version,
) -> bool {
    if order.len() == items.len() {
        let seen = order
            .iter()
            .take_while(|i| **i != r)
            .filter(|i| ops[**i].key == ops[r].key)
            .last()
            .map_or(0, |w| match ops[*w].kind {
                Kind::Write(v) => v,
                Kind::Read(_) => unreachable!("only writes and r are ordered"),
            });
        return seen == v;
    }
    for k in 0..items.len() {
        if used[k] {
            continue;
        }
        let x = items[k];
        // Everything in x's causal past among the items must come first.
        let ready = items
            .iter()
            .enumerate()
            .all(|(j, y)| used[j] || !rel.past[x].contains(y));
        if !ready {
            continue;
        }
        used[k] = true;
        order.push(x);
        if extend(ops, rel, items, used, order, r, v) {
            return true;
        }
        order.pop();
        used[k] = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(session: usize, key: &str, v: Version) -> Op {
        Op {
            session,
            key: key.into(),
            kind: Kind::Write(v),
        }
    }

    fn r(session: usize, key: &str, v: Version) -> Op {
        Op {
            session,
            key: key.into(),
            kind: Kind::Read(v),
        }
    }

    fn pattern(ops: &[Op], level: Level) -> Option<Pattern> {
        check(ops, level).err().map(|v| v.pattern)
    }

    /// COPS §1: Alice removes her boss from an ACL (x), then posts a photo (y); her boss sees
    /// the photo and then reads the old ACL. The photo's causal past holds the ACL change.
    #[test]
    fn the_acl_anomaly_is_a_write_co_read() {
        let h = [
            w(0, "x", 1),
            w(0, "x", 2),
            w(0, "y", 1),
            r(1, "y", 1),
            r(1, "x", 1),
        ];
        let v = check(&h, Level::Cc).unwrap_err();
        assert_eq!(v.pattern, Pattern::WriteCORead);
        assert_eq!(v.ops, vec![0, 1, 4]);
        assert!(v
            .to_string()
            .contains("s1: r x=1 reads s0: w x=1, which s0: w x=2 overwrote"));
        assert!(!brute_force_cc(&h));
    }

    #[test]
    fn each_bad_pattern_is_named() {
        // A read of a version nobody wrote.
        assert_eq!(
            pattern(&[r(0, "x", 7)], Level::Cc),
            Some(Pattern::ThinAirRead)
        );
        // Each session reads the other's later write: a cycle through po and wr.
        let cyclic = [r(0, "x", 1), w(0, "y", 1), r(1, "y", 1), w(1, "x", 1)];
        assert_eq!(pattern(&cyclic, Level::Cc), Some(Pattern::CyclicCO));
        // The initial value read after the session's own write.
        let init = [w(0, "x", 1), r(0, "x", 0)];
        assert_eq!(pattern(&init, Level::Cc), Some(Pattern::WriteCOInitRead));
        // Two sessions write x concurrently; one reader sees 1 then 2, another 2 then 1: each
        // order is causal, but replicas cannot converge on one (CC, not CCv).
        let diverge = [
            w(0, "x", 1),
            w(1, "x", 2),
            r(2, "x", 1),
            r(2, "x", 2),
            r(3, "x", 2),
            r(3, "x", 1),
        ];
        assert_eq!(pattern(&diverge, Level::Cc), None);
        assert_eq!(pattern(&diverge, Level::Ccv), Some(Pattern::CyclicCF));
        assert!(brute_force_cc(&diverge));
        // And a history that is fine at both levels.
        let fine = [
            w(0, "x", 1),
            r(1, "x", 1),
            w(1, "y", 1),
            r(2, "y", 1),
            r(2, "x", 1),
        ];
        assert_eq!(pattern(&fine, Level::Ccv), None);
        assert!(brute_force_cc(&fine));
    }

    /// Small random differentiated histories: 2 keys, up to 3 sessions, up to 7 operations;
    /// each write installs the next version of its key, each read names an existing version
    /// (or the initial one, or, rarely, a version nobody wrote).
    fn history() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec((0usize..3, 0usize..2, 0u8..3, 0u64..4), 1..8).prop_map(|raw| {
            let keys = ["x", "y"];
            let mut written = [0u64; 2];
            raw.into_iter()
                .map(|(session, k, kind, pick)| {
                    if kind == 0 {
                        written[k] += 1;
                        w(session, keys[k], written[k])
                    } else {
                        r(session, keys[k], pick.min(written[k] + 1))
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The bad patterns decide CC exactly as its definition does.
        #[test]
        fn bad_patterns_agree_with_the_definition(h in history()) {
            prop_assert_eq!(check(&h, Level::Cc).is_ok(), brute_force_cc(&h), "{:?}", h);
        }
    }
}
