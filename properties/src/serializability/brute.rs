//! The reference checker: search the serial orders of the committed transactions.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use super::{Op, Txn, Version};

/// Whether some serial order of the committed transactions of `txns` explains the history: run one
/// after another, every read sees the latest version installed before it (or the transaction's own
/// last write), and each key's versions are installed in increasing order. With `real_time`, the
/// order must also put a transaction that ended before another started first.
///
/// A depth-first search over orders, remembering the sets of transactions already found to lead
/// nowhere (the state after a set is the same whatever order ran it). Exponential: for tests on
/// histories of up to about 20 transactions.
pub fn brute_force<K: Clone + Eq + Hash>(txns: &[Txn<K>], real_time: bool) -> bool {
    let committed: Vec<&Txn<K>> = txns.iter().filter(|t| t.committed).collect();
    assert!(committed.len() <= 24, "brute force is for small histories");
    let mut dead = HashSet::new();
    search(&committed, real_time, 0, &mut HashMap::new(), &mut dead)
}

fn search<'a, K: Clone + Eq + Hash>(
    txns: &[&'a Txn<K>],
    real_time: bool,
    done: u32,
    installed: &mut HashMap<&'a K, Version>,
    dead: &mut HashSet<u32>,
) -> bool {
    if done.count_ones() as usize == txns.len() {
        return true;
    }
    if dead.contains(&done) {
        return false;
    }
    for (i, t) in txns.iter().enumerate() {
        if done & (1 << i) != 0 {
            continue;
        }
        // Real time: nothing still to run may have ended before `t` started.
        let must_wait = real_time
            && txns.iter().enumerate().any(|(j, u)| {
                j != i
                    && done & (1 << j) == 0
                    && matches!((u.end, t.start), (Some(e), Some(s)) if e < s)
            });
        if must_wait {
            continue;
        }
        let Some(writes) = run(t, installed) else {
            continue;
        };
        let saved: Vec<(&K, Option<Version>)> = writes
            .iter()
            .map(|(k, _)| (*k, installed.get(*k).copied()))
            .collect();
        for (k, v) in &writes {
            installed.insert(k, *v);
        }
        if search(txns, real_time, done | (1 << i), installed, dead) {
            return true;
        }
        for (k, v) in saved {
            match v {
                Some(v) => installed.insert(k, v),
                None => installed.remove(k),
            };
        }
    }
    dead.insert(done);
    false
}

/// Runs `t` against the installed versions: its final writes if every read is explained and every
/// write installs a newer version, else `None`.
fn run<'a, K: Eq + Hash>(
    t: &'a Txn<K>,
    installed: &HashMap<&'a K, Version>,
) -> Option<Vec<(&'a K, Version)>> {
    let mut own: HashMap<&K, Version> = HashMap::new();
    for op in &t.ops {
        match op {
            Op::Read { key, version } => {
                let seen = own
                    .get(key)
                    .or_else(|| installed.get(key))
                    .copied()
                    .unwrap_or(0);
                if seen != *version {
                    return None;
                }
            }
            Op::Write { key, version } => {
                own.insert(key, *version);
            }
        }
    }
    let writes: Vec<(&K, Version)> = own.into_iter().collect();
    for (k, v) in &writes {
        if *v <= installed.get(k).copied().unwrap_or(0) {
            return None;
        }
    }
    Some(writes)
}
