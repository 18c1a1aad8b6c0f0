//! The Wing & Gong / Lowe search, with memoisation and partitioning.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::history::{History, Time};
use super::spec::SequentialSpec;

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Failure),
    /// The time budget ran out before the search finished. Never a guess.
    Unknown,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The partition that is not linearizable (for a key-value store, its key).
    pub partition: u64,
    /// The longest linearization of the partition the search found: indices into the history's
    /// operations, in linearization order.
    pub linearized: Vec<usize>,
    /// The operations that could be linearized next after `linearized` (their calls precede the
    /// first pending return), none of which the specification accepts there.
    pub unplaced: Vec<usize>,
}

/// Checks `history` against `spec`, giving up with [`Verdict::Unknown`] once `budget` has passed.
///
/// Each partition is searched on its own, in parallel. The search memoises visited configurations by
/// a 192-bit fingerprint: a 128-bit Zobrist hash of the set of linearized operations and a 64-bit
/// hash of the state. Memory stays at a few dozen bytes per configuration whatever the state's size;
/// a collision (probability about k²/2¹⁹² for k configurations) could only prune a branch.
pub fn check<S: SequentialSpec>(
    spec: &S,
    history: &History<S::Input, S::Output>,
    budget: Option<Duration>,
) -> Verdict {
    let deadline = budget.map(|b| Instant::now() + b);
    let partitions = partitions(spec, history, true);
    let stop = AtomicBool::new(false);
    let results: Vec<(u64, Part)> = partitions
        .into_par_iter()
        .map(|(key, ops)| {
            let result = search(spec, history, &ops, deadline, &stop);
            if matches!(result, Part::Fail { .. }) {
                stop.store(true, Ordering::Relaxed);
            }
            (key, result)
        })
        .collect();
    let mut unknown = false;
    for (partition, result) in results {
        match result {
            Part::Ok => {}
            Part::Unknown => unknown = true,
            Part::Fail {
                linearized,
                unplaced,
            } => {
                return Verdict::NotLinearizable(Failure {
                    partition,
                    linearized,
                    unplaced,
                })
            }
        }
    }
    if unknown {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    }
}

/// The operations of each partition, as indices into the history; when `prune`, without those
/// whose result is unknown and that [`SequentialSpec::unobserved`] says cannot change the
/// verdict.
fn partitions<S: SequentialSpec>(
    spec: &S,
    history: &History<S::Input, S::Output>,
    prune: bool,
) -> BTreeMap<u64, Vec<usize>> {
    let mut partitions: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        partitions
            .entry(spec.partition(&op.input))
            .or_default()
            .push(i);
    }
    for ops in partitions.values_mut().filter(|_| prune) {
        let outputs: Vec<&S::Output> = ops
            .iter()
            .filter_map(|&i| history.ops[i].output.as_ref())
            .collect();
        ops.retain(|&i| {
            let op = &history.ops[i];
            op.output.is_some() || !spec.unobserved(&op.input, op.ret == Time::MAX, &outputs)
        });
    }
    partitions
}

enum Part {
    Ok,
    Unknown,
    Fail {
        linearized: Vec<usize>,
        unplaced: Vec<usize>,
    },
}

const HEAD: usize = 0;

/// How many events the lookahead looks through for the next pending read.
const LOOKAHEAD: usize = 256;

/// The search over one partition: `ops` are indices into `history.ops`.
fn search<S: SequentialSpec>(
    spec: &S,
    history: &History<S::Input, S::Output>,
    ops: &[usize],
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> Part {
    let n = ops.len();
    // Events in time order; at equal times calls come first, so operations that touch overlap.
    let mut events: Vec<(Time, bool, u32)> = Vec::with_capacity(2 * n);
    for (j, &i) in ops.iter().enumerate() {
        let op = &history.ops[i];
        debug_assert!(op.call < op.ret, "an operation returns after it is called");
        events.push((op.call, false, j as u32));
        events.push((op.ret, true, j as u32));
    }
    events.sort_unstable();

    // A doubly linked list of the events not yet linearized: node 0 is the head, nodes 1..=2n the
    // events, node 2n+1 the tail. Linearizing an operation lifts its call and return out of it.
    let tail = 2 * n + 1;
    let mut next: Vec<usize> = (1..=tail + 1).collect();
    let mut prev: Vec<usize> = (0..=tail).map(|i| i.saturating_sub(1)).collect();
    let mut is_call = vec![false; tail + 1];
    let mut op_of = vec![0usize; tail + 1];
    let mut return_of = vec![0usize; n];
    for (k, &(_, is_return, j)) in events.iter().enumerate() {
        let node = k + 1;
        is_call[node] = !is_return;
        op_of[node] = j as usize;
        if is_return {
            return_of[j as usize] = node;
        }
    }
    let zobrist: Vec<u128> = (0..n as u64).map(zobrist_key).collect();

    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, call: usize| {
        let ret = return_of[op_of[call]];
        next[prev[call]] = next[call];
        prev[next[call]] = prev[call];
        next[prev[ret]] = next[ret];
        prev[next[ret]] = prev[ret];
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, call: usize| {
        let ret = return_of[op_of[call]];
        prev[next[ret]] = ret;
        next[prev[ret]] = ret;
        prev[next[call]] = call;
        next[prev[call]] = call;
    };

    // Lookahead (exact): the next pending result a state must reach, when no operation that
    // may overwrite the state (`SequentialSpec::overwrites`) can be linearized before it. For a
    // key-value store under appends, the next read's value must begin with the state: among
    // concurrent appends only the one the read shows next goes, instead of every order of them
    // being tried and refused at the read.
    let may_reach_next_read = |state: &S::State, next: &[usize]| {
        let mut e = next[HEAD];
        for _ in 0..LOOKAHEAD {
            if e == tail {
                break;
            }
            let op = &history.ops[ops[op_of[e]]];
            if is_call[e] {
                if spec.overwrites(&op.input) {
                    break;
                }
            } else if let Some(decided) = op.output.as_ref().and_then(|o| spec.reaches(state, o)) {
                return decided;
            }
            e = next[e];
        }
        true
    };

    let mut visited: HashSet<(u128, u64), BuildHasherDefault<FingerprintHasher>> =
        HashSet::default();
    // The linearized calls, each with the state before it.
    let mut calls: Vec<(usize, S::State)> = Vec::new();
    let mut best: Option<(Vec<usize>, Vec<usize>)> = None;
    let mut state = spec.init();
    let mut linearized: u128 = 0;
    let mut entry = next[HEAD];
    let mut steps: u64 = 0;
    while entry != tail {
        steps += 1;
        if steps % 4096 == 0
            && (stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d))
        {
            return Part::Unknown;
        }
        if is_call[entry] {
            let j = op_of[entry];
            let op = &history.ops[ops[j]];
            if let Some(after) = spec.step(&state, &op.input, op.output.as_ref()) {
                let fingerprint = linearized ^ zobrist[j];
                if visited.insert((fingerprint, state_hash(&after))) {
                    lift(&mut next, &mut prev, entry);
                    // (Only a step that changes the state looks ahead: a read that is refused
                    // later is the one a failure reports.)
                    if after == state || may_reach_next_read(&after, &next) {
                        calls.push((entry, std::mem::replace(&mut state, after)));
                        linearized = fingerprint;
                        entry = next[HEAD];
                        continue;
                    }
                    unlift(&mut next, &mut prev, entry);
                }
            }
            entry = next[entry];
        } else {
            // The first pending return: its operation could not be linearized before it.
            if best.as_ref().is_none_or(|(l, _)| calls.len() > l.len()) {
                let done = calls.iter().map(|&(c, _)| ops[op_of[c]]).collect();
                let mut candidates = Vec::new();
                let mut e = next[HEAD];
                while is_call[e] {
                    candidates.push(ops[op_of[e]]);
                    e = next[e];
                }
                best = Some((done, candidates));
            }
            let Some((call, before)) = calls.pop() else {
                let (linearized, unplaced) = best.expect("recorded above");
                return Part::Fail {
                    linearized,
                    unplaced,
                };
            };
            state = before;
            linearized ^= zobrist[op_of[call]];
            unlift(&mut next, &mut prev, call);
            entry = next[call];
        }
    }
    Part::Ok
}

/// Two independent 64-bit keys for operation `j` (SplitMix64 of fixed seeds: runs are repeatable).
fn zobrist_key(j: u64) -> u128 {
    let a = splitmix64(j.wrapping_mul(2).wrapping_add(0x243F_6A88_85A3_08D3));
    let b = splitmix64(j.wrapping_mul(2).wrapping_add(0x1319_8A2E_0370_7344));
    (u128::from(a) << 64) | u128::from(b)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fixed-key hash of a state (std's `DefaultHasher::new()` uses fixed keys).
fn state_hash<T: Hash>(state: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

/// The fingerprints are already uniformly random: fold them, do not hash them again.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .rotate_left(23)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }
}

/// A brute-force checker for small histories: tries every order of each partition's operations
/// that respects real time, all of them (nothing pruned). Exponential; for testing [`check`].
pub fn check_brute_force<S: SequentialSpec>(
    spec: &S,
    history: &History<S::Input, S::Output>,
) -> bool {
    let partitions = partitions(spec, history, false);
    partitions.values().all(|ops| {
        let mut used = vec![false; ops.len()];
        brute(spec, history, ops, &mut used, &spec.init())
    })
}

fn brute<S: SequentialSpec>(
    spec: &S,
    history: &History<S::Input, S::Output>,
    ops: &[usize],
    used: &mut [bool],
    state: &S::State,
) -> bool {
    if used.iter().all(|u| *u) {
        return true;
    }
    for k in 0..ops.len() {
        if used[k] {
            continue;
        }
        let op = &history.ops[ops[k]];
        // `op` may go next only if no unused operation returned before it was called.
        let blocked = (0..ops.len()).any(|m| !used[m] && history.ops[ops[m]].ret < op.call);
        if blocked {
            continue;
        }
        if let Some(after) = spec.step(state, &op.input, op.output.as_ref()) {
            used[k] = true;
            if brute(spec, history, ops, used, &after) {
                return true;
            }
            used[k] = false;
        }
    }
    false
}
