//! Spanner: TrueTime, commit wait and snapshot reads.
//!
//! James C. Corbett et al., "Spanner: Google's Globally-Distributed Database" (OSDI 2012). Section
//! numbers below are that paper's.
//!
//! # What is modelled
//! - **TrueTime (§3, Table 1).** Absolute time `now` advances by `Tick` actions, one tick at a
//!   time, up to a bound. Every node reads a local clock that is off absolute time by a fixed
//!   offset of at most ε, chosen nondeterministically in the initial state. `TT.now()` on a node is
//!   the interval `[local - ε, local + ε]`, which therefore always contains `now`, and
//!   `TT.after(t)` is `TT.now().earliest > t`. Absolute time starts at 2ε so that no clock reads a
//!   negative time.
//! - **Paxos groups.** Two groups, each modelled as one reliable leader (the paper's "leader
//!   replica"), holding one key each: `x` in group 0, `y` in group 1. A leader's state is its Paxos
//!   log. Every Paxos write carries a timestamp, and a leader assigns them in increasing order
//!   (§4.1.2, "monotonicity"), so the leader's last timestamp is its log's last.
//! - **Read-write transactions (§4.1.2; the protocol's details in §4.2.1)** use two-phase locking at the leaders and, across groups,
//!   two-phase commit driven by the client. Reads take read locks at the leader and return its
//!   latest committed version; writes are buffered at the client. At commit, each
//!   non-coordinator participant leader takes its write locks, chooses a prepare timestamp larger
//!   than any it has assigned, and logs a prepare record (`Prepare`). The coordinator leader takes
//!   its write locks and, having heard from every participant, chooses the commit timestamp `s`:
//!   no less than every prepare timestamp, no less than `TT.now().latest`, greater than any it has
//!   assigned; it logs the commit record (`Commit`). Then **commit wait**: no replica applies the
//!   commit record, and the client is not told, until `TT.after(s)` holds (`FinishCommitWait`).
//!   Only then does the coordinator apply, release its locks, reply, and send `s` to the
//!   participants, which log the outcome, apply at `s` and release theirs (`LogCommit`).
//! - **Read-only transactions (§4.1.3, §4.1.4, §4.2.2)** run at a replica that holds a copy of both groups
//!   and lags behind their leaders: it applies each group's Paxos log in order (`Apply`). A
//!   read-only transaction takes `s_read = TT.now().latest` at the replica (`BeginReadOnly`) and
//!   is served (`ServeReadOnly`) once `s_read <= t_safe`, where `t_safe = min(t_safe^Paxos,
//!   t_safe^TM)` over both groups: `t_safe^Paxos` is the timestamp of the highest-applied Paxos
//!   write, and `t_safe^TM` is one less than the smallest prepare timestamp of a transaction
//!   prepared but not yet committed at the replica. It reads, from multi-version storage, the
//!   newest version of each key with timestamp `<= s_read`.
//! - **MinNextTS (§4.2.4).** Without writes, `t_safe^Paxos` would never pass a leader's last
//!   write. A leader may promise that its next Paxos write will have a timestamp above
//!   `TT.now().latest` (`AdvanceMinNextTs`); the promise is a log entry, so the lagging replica
//!   learns it in order and advances `t_safe^Paxos` to it.
//!
//! The transactions: `T1` writes `x` and `y` (cross-group, group 0 coordinates), `T2` reads `y`
//! and writes it back (group 1 alone), and the read-only transactions read `x` and `y`. Commit
//! timestamps are the versions of the multi-version store, and the history handed to the
//! serializability checker uses them as version numbers.
//!
//! Three choices keep the state space small (about 1.3 million states by default) without
//! losing a behaviour that the properties can tell apart:
//! - A read-write transaction starts with its first step at a leader. An earlier start would
//!   only take real-time edges out of the history, so it cannot hide a violation.
//! - The replica applies log entries only while a read-only transaction waits. What a read sees
//!   depends only on the prefix applied when it is served, and every prefix reachable before it
//!   began is still reachable while it waits (logs only grow, and an entry that may be applied
//!   stays so).
//! - A leader logs a MinNextTS promise only while a read waits for a safe time its last
//!   timestamp has not reached (the paper's leaders advance MinNextTS periodically; the model
//!   explores the advances that can unblock a read).
//!
//! Left out: Paxos itself (a group is one reliable leader), leader leases and their
//! disjointness, failures and aborts (no wound-wait: without aborts two-phase locking here cannot
//! deadlock, as `T2` locks one key), schema changes, and clock drift (an offset is fixed per run).
//!
//! # Properties
//! - always "Start (§4.1.2)": a commit timestamp is no less than the absolute time at which the
//!   coordinator received the commit request, `s >= t_abs(e_server)`.
//! - always "Commit Wait (§4.1.2)": a commit timestamp is less than the absolute time at which the
//!   client is told of the commit, `s < t_abs(e_commit)`.
//! - always "external consistency (§4.1.2)": the history (committed read-write transactions and
//!   served read-only ones, with their start and end in absolute time) is strictly serializable:
//!   [`properties::serializability::check_strict_serializable`]. Real time is the tick: `Ti`
//!   precedes `Tj` when `Ti` ended at an earlier tick than the one `Tj` started at.
//! - always "snapshot reads see a consistent cut (§4.1.3)": a served read-only transaction saw, for
//!   each key, exactly the newest committed write with timestamp `<= s_read`.
//! - sometimes: a commit wait that waits; a cross-group transaction commits; a snapshot read waits
//!   for safe time, then is served; a snapshot read sees a cross-group commit.
//!
//! # Seeded bugs
//! - `no-commit-wait`: the coordinator applies and replies as soon as it chooses `s`. A
//!   coordinator whose clock runs ahead chooses an `s` in the future, and a read-only transaction
//!   that starts after the reply, on a replica whose clock is behind, reads at an `s_read < s`
//!   and misses the write (Commit Wait, external consistency).
//! - `timestamp-from-local-clock`: nodes ignore ε and take their local clock for absolute time:
//!   `TT.now() = [local, local]`, so `s` and `s_read` are local clock readings and commit wait
//!   ends when the local clock passes `s` (Start, Commit Wait; with ε = 2, external
//!   consistency: with ε = 1 and whole ticks the error is too small to reorder two transactions
//!   that are one tick apart).
//! - `read-before-safe-time`: the replica forgets `t_safe^TM` and serves a read once
//!   `t_safe^Paxos` has passed `s_read`, while a transaction prepared at a smaller timestamp may
//!   still commit: the read sees `T1`'s write of `x` but not of `y` (consistent cut, external
//!   consistency).

use std::fmt;

use properties::serializability::{check_strict_serializable, Op, Txn, TxnId};
use stateright::{Model, Property};

use crate::catalog::{Bug, Param, Params, Spec};

/// Absolute time, in ticks of the model clock.
pub type Time = u8;
/// A Paxos write, prepare, commit or read timestamp. A commit timestamp is also the version
/// number its writes install; 0 is the initial version of every key.
pub type Timestamp = u8;
/// A Paxos group, identified by its index.
pub type Group = usize;
/// A read-write transaction, identified by its index in [`RW_TXNS`].
pub type RwIdx = usize;

/// How many Paxos groups there are.
pub const GROUPS: usize = 2;

/// A key. Key `x` lives in group 0, key `y` in group 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    X,
    Y,
}

impl Key {
    pub const ALL: [Key; 2] = [Key::X, Key::Y];

    /// The Paxos group that holds the key.
    pub fn group(self) -> Group {
        self as usize
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Key::X => "x",
            Key::Y => "y",
        })
    }
}

/// A node with a clock: a group's leader, or the replica that serves read-only transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Leader(Group),
    Replica,
}

impl Node {
    /// The nodes, in the order of [`SpannerState::offsets`].
    pub const ALL: [Node; 3] = [Node::Leader(0), Node::Leader(1), Node::Replica];

    fn index(self) -> usize {
        match self {
            Node::Leader(g) => g,
            Node::Replica => GROUPS,
        }
    }
}

/// `TT.now()` (§3, Table 1): an interval `[earliest, latest]` guaranteed to contain the absolute
/// time at which it was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtInterval {
    pub earliest: i16,
    pub latest: i16,
}

impl TtInterval {
    /// `TT.after(t)`: true if `t` has definitely passed.
    pub fn after(&self, t: Timestamp) -> bool {
        self.earliest > i16::from(t)
    }

    /// Whether the interval contains absolute time `t`: TrueTime's guarantee.
    pub fn contains(&self, t: Time) -> bool {
        (self.earliest..=self.latest).contains(&i16::from(t))
    }
}

/// A read-write transaction's program: the keys it reads (in order, under read locks) and the
/// keys it writes (buffered at the client until commit), and its coordinator group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwSpec {
    pub reads: &'static [Key],
    pub writes: &'static [Key],
    pub coordinator: Group,
}

impl RwSpec {
    /// Whether the transaction reads or writes a key of group `g`.
    pub fn touches(&self, g: Group) -> bool {
        self.reads.iter().chain(self.writes).any(|k| k.group() == g)
    }

    /// The participant groups other than the coordinator: those that prepare.
    pub fn prepares(&self) -> impl Iterator<Item = Group> + '_ {
        (0..GROUPS).filter(move |&g| g != self.coordinator && self.touches(g))
    }

    /// Whether the transaction spans more than one group.
    pub fn cross_group(&self) -> bool {
        self.prepares().next().is_some()
    }
}

/// The read-write transactions, `T1` then `T2`; the model runs the first `txns` of them.
pub const RW_TXNS: [RwSpec; 2] = [
    // T1: cross-group, writes x (group 0, the coordinator) and y (group 1).
    RwSpec {
        reads: &[],
        writes: &[Key::X, Key::Y],
        coordinator: 0,
    },
    // T2: reads y and writes it back, in group 1 alone.
    RwSpec {
        reads: &[Key::Y],
        writes: &[Key::Y],
        coordinator: 1,
    },
];

/// What a Paxos write records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A participant's prepare record (§4.2.1); the entry's timestamp is the prepare timestamp.
    Prepare(RwIdx),
    /// A commit record: the transaction's writes in this group take effect at version `s`. In the
    /// coordinator's log the entry's timestamp is `s`; in a participant's it is the next
    /// timestamp of that leader, at least `s`.
    Commit { txn: RwIdx, s: Timestamp },
    /// A MinNextTS promise (§4.2.4): the entry's timestamp is `MinNextTS(n) - 1`, the safe time a
    /// replica reaches by applying it.
    MinNextTs,
}

/// A Paxos write: its timestamp and what it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub ts: Timestamp,
    pub kind: EntryKind,
}

/// The commit timestamp the coordinator chose, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitTs {
    pub s: Timestamp,
    /// `t_abs(e_server)`: the absolute time at which the coordinator chose `s`.
    pub server_at: Time,
}

/// A read-write transaction's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RwTxn {
    /// Absolute time of its first step at a leader, where it starts.
    pub start: Option<Time>,
    /// The versions its reads saw, in the order of [`RwSpec::reads`]; a read lock is held on each
    /// key read until the group commits.
    pub reads: Vec<Timestamp>,
    /// Each non-coordinator participant's prepare timestamp, once prepared.
    /// Invariant: a prepared group holds the write locks of the transaction's keys there.
    pub prepared: [Option<Timestamp>; GROUPS],
    pub commit: Option<CommitTs>,
    /// `t_abs(e_commit)`: absolute time at which commit wait ended and the client was told.
    /// Invariant: `end.is_some()` implies `commit.is_some()`.
    pub end: Option<Time>,
    /// Participants that have logged the commit record and released their locks.
    pub logged: [bool; GROUPS],
}

/// A read-only transaction's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoTxn {
    Idle,
    /// Waiting at the replica until `s_read <= t_safe`.
    Waiting {
        start: Time,
        s_read: Timestamp,
        /// Whether `t_safe < s_read` when it began: it had to wait for safe time.
        blocked: bool,
    },
    /// Served: the version of `x` and `y` it read.
    Served {
        start: Time,
        end: Time,
        s_read: Timestamp,
        reads: [Timestamp; 2],
        waited: bool,
    },
}

/// `s` in the paper's terms (§4): absolute time and the clocks' offsets, each group leader's
/// Paxos log (timestamp and record), each read-write transaction's progress (start, the
/// versions it read, prepare timestamps, the commit timestamp `s` and when it was chosen, when
/// commit wait ended), and the read-only transactions.
pub fn view(s: &SpannerState) -> String {
    let t = |t: &Option<Time>| t.map_or("-".to_string(), |t| t.to_string());
    let mut lines = vec![format!("time {}; clock offsets {:?}", s.now, s.offsets)];
    for (g, log) in s.logs.iter().enumerate() {
        let entries: Vec<String> = log
            .iter()
            .map(|e| match e.kind {
                EntryKind::Prepare(i) => format!("{}:Prepare T{i}", e.ts),
                EntryKind::Commit { txn, s } => format!("{}:Commit T{txn} s={s}", e.ts),
                EntryKind::MinNextTs => format!("{}:MinNextTS", e.ts),
            })
            .collect();
        lines.push(format!(
            "group {g} log [{}], replica applied {}",
            entries.join(", "),
            s.applied[g]
        ));
    }
    for (i, tx) in s.rw.iter().enumerate() {
        let prepared: Vec<String> = tx
            .prepared
            .iter()
            .map(|p| p.map_or("-".to_string(), |p| p.to_string()))
            .collect();
        let commit = tx.commit.map_or("-".to_string(), |c| {
            format!("s={} chosen at {}", c.s, c.server_at)
        });
        lines.push(format!(
            "T{i} start {} reads {:?} prepared [{}] commit {commit} commit wait ended {} logged {:?}",
            t(&tx.start),
            tx.reads,
            prepared.join(", "),
            t(&tx.end),
            tx.logged
        ));
    }
    for (i, ro) in s.ro.iter().enumerate() {
        lines.push(format!("read-only {i} {ro:?}"));
    }
    lines.join("\n")
}

/// A state of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpannerState {
    /// Absolute time.
    pub now: Time,
    /// Each node's clock offset from absolute time, `|offset| <= ε`, in the order of [`Node::ALL`].
    pub offsets: [i8; 3],
    /// Each group leader's Paxos log. Invariant: timestamps strictly increase along a log.
    pub logs: [Vec<Entry>; GROUPS],
    pub rw: Vec<RwTxn>,
    /// How many entries of each group's log the replica has applied.
    pub applied: [usize; GROUPS],
    pub ro: Vec<RoTxn>,
}

/// An action: a tick of absolute time, or one protocol step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpannerAction {
    /// Absolute time advances by one tick.
    Tick,
    /// The next read of transaction `i`: a read lock and the latest version at the key's leader.
    Read(RwIdx),
    /// Participant leader `g` takes write locks, chooses a prepare timestamp and logs it.
    Prepare(RwIdx, Group),
    /// The coordinator leader takes write locks, chooses `s` and logs the commit record.
    Commit(RwIdx),
    /// `TT.after(s)` at the coordinator: it applies, releases its locks, replies to the client
    /// and sends `s` to the participants.
    FinishCommitWait(RwIdx),
    /// Participant leader `g` logs the commit record, applies at `s` and releases its locks.
    LogCommit(RwIdx, Group),
    /// Leader `g` promises a MinNextTS above `TT.now().latest` (§4.2.4).
    AdvanceMinNextTs(Group),
    /// The replica applies the next entry of group `g`'s log.
    Apply(Group),
    /// Read-only transaction `r` takes `s_read = TT.now().latest` at the replica.
    BeginReadOnly(usize),
    /// The replica serves read-only transaction `r` at `s_read` (once `s_read <= t_safe`).
    ServeReadOnly(usize),
}

crate::seeded_bugs! {
    /// The seeded bugs, see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SpannerBug {
        NoCommitWait = "no-commit-wait",
        TimestampFromLocalClock = "timestamp-from-local-clock",
        ReadBeforeSafeTime = "read-before-safe-time",
    }
}

/// The model: its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanner {
    /// TrueTime's uncertainty bound ε, in ticks.
    pub epsilon: u8,
    /// How many ticks absolute time may advance.
    pub ticks: u8,
    /// How many read-write transactions run: the first of [`RW_TXNS`].
    pub txns: usize,
    /// How many read-only transactions run.
    pub read_only: usize,
    /// How many MinNextTS promises each leader may log.
    pub min_next_ts: usize,
    pub bug: Option<SpannerBug>,
}

impl Default for Spanner {
    fn default() -> Self {
        Spanner {
            epsilon: 1,
            ticks: 4,
            txns: 2,
            read_only: 1,
            min_next_ts: 1,
            bug: None,
        }
    }
}

impl Spanner {
    /// The absolute time of the initial state: 2ε, so that no clock reads a negative time.
    pub fn epoch(&self) -> Time {
        2 * self.epsilon
    }

    /// `TT.now()` on `node`: `[local - ε, local + ε]` around its local clock (with the
    /// `timestamp-from-local-clock` bug, `[local, local]`).
    pub fn tt_now(&self, s: &SpannerState, node: Node) -> TtInterval {
        let local = i16::from(s.now) + i16::from(s.offsets[node.index()]);
        let eps = if self.bug == Some(SpannerBug::TimestampFromLocalClock) {
            0
        } else {
            i16::from(self.epsilon)
        };
        TtInterval {
            earliest: local - eps,
            latest: local + eps,
        }
    }

    /// The last timestamp leader `g` assigned (0 if none): every later one is greater.
    fn last_ts(s: &SpannerState, g: Group) -> Timestamp {
        s.logs[g].last().map_or(0, |e| e.ts)
    }

    /// Leader `g` logs a Paxos write. Monotonicity (§4.1.2): its timestamp exceeds every
    /// timestamp the leader has assigned.
    fn log(s: &mut SpannerState, g: Group, ts: Timestamp, kind: EntryKind) {
        assert!(ts > Self::last_ts(s, g), "Paxos write timestamps increase");
        s.logs[g].push(Entry { ts, kind });
    }

    /// Whether transaction `i` has committed in group `g` and released its locks there.
    fn released(s: &SpannerState, i: RwIdx, g: Group) -> bool {
        if RW_TXNS[i].coordinator == g {
            s.rw[i].end.is_some()
        } else {
            s.rw[i].logged[g]
        }
    }

    /// Whether transaction `i` holds a read lock on `k`.
    fn holds_read(s: &SpannerState, i: RwIdx, k: Key) -> bool {
        RW_TXNS[i].reads[..s.rw[i].reads.len()].contains(&k) && !Self::released(s, i, k.group())
    }

    /// Whether transaction `i` holds a write lock on `k`: taken at prepare (a participant) or at
    /// commit (the coordinator), released once the group commits.
    fn holds_write(s: &SpannerState, i: RwIdx, k: Key) -> bool {
        let t = &s.rw[i];
        let g = k.group();
        let taken = if RW_TXNS[i].coordinator == g {
            t.commit.is_some()
        } else {
            t.prepared[g].is_some()
        };
        RW_TXNS[i].writes.contains(&k) && taken && !Self::released(s, i, g)
    }

    /// Two-phase locking: whether transaction `i` may take a read (or write) lock on `k`.
    fn can_lock(&self, s: &SpannerState, i: RwIdx, k: Key, write: bool) -> bool {
        (0..self.txns).filter(|&j| j != i).all(|j| {
            // A write lock excludes every other lock; a read lock, only write locks.
            let conflicts = Self::holds_write(s, j, k) || (write && Self::holds_read(s, j, k));
            !conflicts
        })
    }

    /// Whether transaction `i` may take the write locks of its keys in group `g`.
    fn can_lock_writes(&self, s: &SpannerState, i: RwIdx, g: Group) -> bool {
        RW_TXNS[i]
            .writes
            .iter()
            .filter(|k| k.group() == g)
            .all(|&k| self.can_lock(s, i, k, true))
    }

    /// The latest committed version of `k` at its leader.
    fn leader_version(&self, s: &SpannerState, k: Key) -> Timestamp {
        (0..self.txns)
            .filter(|&i| RW_TXNS[i].writes.contains(&k) && Self::released(s, i, k.group()))
            .filter_map(|i| s.rw[i].commit.map(|c| c.s))
            .max()
            .unwrap_or(0)
    }

    /// The newest version of `k` with timestamp `<= at` in the replica's multi-version store.
    fn replica_version(s: &SpannerState, k: Key, at: Timestamp) -> Timestamp {
        let g = k.group();
        s.logs[g][..s.applied[g]]
            .iter()
            .filter_map(|e| match e.kind {
                EntryKind::Commit { txn, s } if RW_TXNS[txn].writes.contains(&k) && s <= at => {
                    Some(s)
                }
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// The replica's safe time (§4.1.3): `min(t_safe^Paxos, t_safe^TM)` over every group
    /// (`t_safe^Paxos` alone with the `read-before-safe-time` bug).
    pub fn t_safe(&self, s: &SpannerState) -> Timestamp {
        (0..GROUPS)
            .map(|g| {
                let applied = &s.logs[g][..s.applied[g]];
                // t_safe^Paxos: the timestamp of the highest-applied Paxos write.
                let paxos = applied.last().map_or(0, |e| e.ts);
                // t_safe^TM: below every prepared transaction whose commit is not yet applied.
                let tm = applied
                    .iter()
                    .filter_map(|e| match e.kind {
                        EntryKind::Prepare(txn)
                            if !applied.iter().any(
                                |c| matches!(c.kind, EntryKind::Commit { txn: t, .. } if t == txn),
                            ) =>
                        {
                            Some(e.ts - 1)
                        }
                        _ => None,
                    })
                    .min();
                match tm {
                    Some(tm) if self.bug != Some(SpannerBug::ReadBeforeSafeTime) => paxos.min(tm),
                    _ => paxos,
                }
            })
            .min()
            .expect("there are groups")
    }

    /// Whether the replica may apply entry `e`: a commit record waits for commit wait to end.
    fn appliable(s: &SpannerState, e: &Entry) -> bool {
        match e.kind {
            EntryKind::Commit { txn, .. } => s.rw[txn].end.is_some(),
            _ => true,
        }
    }

    /// The history so far: committed read-write transactions (`T1`, `T2`) and served read-only
    /// ones (numbered after them), with start and end in absolute time.
    pub fn history(&self, s: &SpannerState) -> Vec<Txn<Key>> {
        let mut h = Vec::new();
        for (i, t) in s.rw.iter().enumerate() {
            let (Some(c), Some(end)) = (t.commit, t.end) else {
                continue;
            };
            let spec = &RW_TXNS[i];
            let reads = spec
                .reads
                .iter()
                .zip(&t.reads)
                .map(|(&key, &version)| Op::Read {
                    key,
                    version: u64::from(version),
                });
            let writes = spec.writes.iter().map(|&key| Op::Write {
                key,
                version: u64::from(c.s),
            });
            h.push(Txn {
                id: i as TxnId + 1,
                ops: reads.chain(writes).collect(),
                committed: true,
                start: t.start.map(u64::from),
                end: Some(u64::from(end)),
            });
        }
        for (r, ro) in s.ro.iter().enumerate() {
            if let RoTxn::Served {
                start, end, reads, ..
            } = *ro
            {
                h.push(Txn {
                    id: (self.txns + r) as TxnId + 1,
                    ops: Key::ALL
                        .iter()
                        .zip(reads)
                        .map(|(&key, v)| Op::Read {
                            key,
                            version: u64::from(v),
                        })
                        .collect(),
                    committed: true,
                    start: Some(u64::from(start)),
                    end: Some(u64::from(end)),
                });
            }
        }
        h
    }

    /// The newest committed write of `k` with timestamp `<= at`: what a snapshot read at `at`
    /// must see.
    fn committed_version(&self, s: &SpannerState, k: Key, at: Timestamp) -> Timestamp {
        (0..self.txns)
            .filter(|&i| RW_TXNS[i].writes.contains(&k) && s.rw[i].end.is_some())
            .filter_map(|i| s.rw[i].commit.map(|c| c.s))
            .filter(|&v| v <= at)
            .max()
            .unwrap_or(0)
    }
}

impl Model for Spanner {
    type State = SpannerState;
    type Action = SpannerAction;

    fn init_states(&self) -> Vec<SpannerState> {
        let eps = self.epsilon as i8;
        let mut states = Vec::new();
        for a in -eps..=eps {
            for b in -eps..=eps {
                for c in -eps..=eps {
                    states.push(SpannerState {
                        now: self.epoch(),
                        offsets: [a, b, c],
                        logs: Default::default(),
                        rw: vec![RwTxn::default(); self.txns],
                        applied: [0; GROUPS],
                        ro: vec![RoTxn::Idle; self.read_only],
                    });
                }
            }
        }
        states
    }

    fn actions(&self, s: &SpannerState, actions: &mut Vec<SpannerAction>) {
        use SpannerAction::*;
        if s.now < self.epoch() + self.ticks {
            actions.push(Tick);
        }
        for (i, t) in s.rw.iter().enumerate() {
            let spec = &RW_TXNS[i];
            if t.reads.len() < spec.reads.len() {
                if self.can_lock(s, i, spec.reads[t.reads.len()], false) {
                    actions.push(Read(i));
                }
            } else if t.commit.is_none() {
                for g in spec.prepares() {
                    if t.prepared[g].is_none() && self.can_lock_writes(s, i, g) {
                        actions.push(Prepare(i, g));
                    }
                }
                // The coordinator has heard from every participant.
                if spec.prepares().all(|g| t.prepared[g].is_some())
                    && self.can_lock_writes(s, i, spec.coordinator)
                {
                    actions.push(Commit(i));
                }
            } else if t.end.is_none() {
                let c = t.commit.expect("checked above");
                let tt = self.tt_now(s, Node::Leader(spec.coordinator));
                if tt.after(c.s) || self.bug == Some(SpannerBug::NoCommitWait) {
                    actions.push(FinishCommitWait(i));
                }
            } else {
                for g in spec.prepares() {
                    if !t.logged[g] {
                        actions.push(LogCommit(i, g));
                    }
                }
            }
        }
        // The replica's progress matters only to the reads waiting on it (see `Apply`).
        let waiting = s.ro.iter().filter_map(|r| match *r {
            RoTxn::Waiting { s_read, .. } => Some(s_read),
            _ => None,
        });
        if let Some(s_read) = waiting.max() {
            for g in 0..GROUPS {
                let promised = s.logs[g]
                    .iter()
                    .filter(|e| e.kind == EntryKind::MinNextTs)
                    .count();
                let last = Self::last_ts(s, g);
                let latest = self.tt_now(s, Node::Leader(g)).latest;
                if promised < self.min_next_ts && last < s_read && latest > i16::from(last) {
                    actions.push(AdvanceMinNextTs(g));
                }
            }
            for g in 0..GROUPS {
                if let Some(e) = s.logs[g].get(s.applied[g]) {
                    if Self::appliable(s, e) {
                        actions.push(Apply(g));
                    }
                }
            }
        }
        for (r, ro) in s.ro.iter().enumerate() {
            match *ro {
                RoTxn::Idle => actions.push(BeginReadOnly(r)),
                RoTxn::Waiting { s_read, .. } if s_read <= self.t_safe(s) => {
                    actions.push(ServeReadOnly(r))
                }
                _ => {}
            }
        }
    }

    fn next_state(&self, s: &SpannerState, action: SpannerAction) -> Option<SpannerState> {
        use SpannerAction::*;
        let mut n = s.clone();
        if let Read(i) | Prepare(i, _) | Commit(i) = action {
            // A transaction starts with its first step at a leader: an earlier start would
            // only take real-time edges away from the history.
            n.rw[i].start.get_or_insert(s.now);
        }
        match action {
            Tick => n.now += 1,
            Read(i) => {
                // §4.2.1: the leader "acquires read locks and then reads the most recent data".
                let k = RW_TXNS[i].reads[s.rw[i].reads.len()];
                let v = self.leader_version(s, k);
                n.rw[i].reads.push(v);
            }
            Prepare(i, g) => {
                // §4.2.1: "It then chooses a prepare timestamp that must be larger than any
                // timestamps it has assigned to previous transactions (to preserve
                // monotonicity), and logs a prepare record through Paxos."
                let p = Self::last_ts(s, g) + 1;
                n.rw[i].prepared[g] = Some(p);
                Self::log(&mut n, g, p, EntryKind::Prepare(i));
            }
            Commit(i) => {
                // §4.2.1: s must be (1) >= every prepare timestamp, (2) >= TT.now().latest at
                // the time the coordinator received the commit message, (3) > any timestamp the
                // leader has assigned.
                let c = RW_TXNS[i].coordinator;
                let latest = self.tt_now(s, Node::Leader(c)).latest;
                let latest = Timestamp::try_from(latest).expect("clocks start at 2ε >= ε");
                let prepared = s.rw[i]
                    .prepared
                    .iter()
                    .flatten()
                    .copied()
                    .max()
                    .unwrap_or(0);
                let ts = latest.max(prepared).max(Self::last_ts(s, c) + 1);
                n.rw[i].commit = Some(CommitTs {
                    s: ts,
                    server_at: s.now,
                });
                Self::log(&mut n, c, ts, EntryKind::Commit { txn: i, s: ts });
            }
            FinishCommitWait(i) => n.rw[i].end = Some(s.now),
            LogCommit(i, g) => {
                let c = s.rw[i].commit.expect("commit wait is over");
                n.rw[i].logged[g] = true;
                let ts = c.s.max(Self::last_ts(s, g) + 1);
                Self::log(&mut n, g, ts, EntryKind::Commit { txn: i, s: c.s });
            }
            AdvanceMinNextTs(g) => {
                let latest = self.tt_now(s, Node::Leader(g)).latest;
                let ts = Timestamp::try_from(latest).expect("clocks start at 2ε >= ε");
                Self::log(&mut n, g, ts, EntryKind::MinNextTs);
            }
            Apply(g) => n.applied[g] += 1,
            BeginReadOnly(r) => {
                // §4.1.4, §4.2.2: s_read = TT.now().latest.
                let latest = self.tt_now(s, Node::Replica).latest;
                let s_read = Timestamp::try_from(latest).expect("clocks start at 2ε >= ε");
                n.ro[r] = RoTxn::Waiting {
                    start: s.now,
                    s_read,
                    blocked: self.t_safe(s) < s_read,
                };
            }
            ServeReadOnly(r) => {
                let RoTxn::Waiting {
                    start,
                    s_read,
                    blocked,
                } = s.ro[r]
                else {
                    unreachable!("only a waiting read is served");
                };
                n.ro[r] = RoTxn::Served {
                    start,
                    end: s.now,
                    s_read,
                    reads: Key::ALL.map(|k| Self::replica_version(s, k, s_read)),
                    waited: blocked,
                };
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("Start (§4.1.2)", start_rule),
            Property::always("Commit Wait (§4.1.2)", commit_wait_rule),
            Property::always("external consistency (§4.1.2)", external_consistency),
            Property::always(
                "snapshot reads see a consistent cut (§4.1.3)",
                consistent_cut,
            ),
            Property::sometimes("a commit wait waits", |_, s: &SpannerState| {
                s.rw.iter().any(|t| match (t.commit, t.end) {
                    (Some(c), Some(end)) => end > c.server_at,
                    _ => false,
                })
            }),
            Property::sometimes(
                "a cross-group transaction commits",
                |_, s: &SpannerState| {
                    s.rw.iter().enumerate().any(|(i, t)| {
                        let spec = &RW_TXNS[i];
                        spec.cross_group()
                            && t.end.is_some()
                            && spec.prepares().all(|g| t.logged[g])
                    })
                },
            ),
            Property::sometimes(
                "a snapshot read waits for safe time, then is served",
                |_, s: &SpannerState| {
                    s.ro.iter()
                        .any(|r| matches!(r, RoTxn::Served { waited: true, .. }))
                },
            ),
            Property::sometimes(
                "a snapshot read sees a cross-group commit",
                |_, s: &SpannerState| {
                    s.ro.iter().any(|r| match r {
                        RoTxn::Served { reads, .. } => s.rw.iter().enumerate().any(|(i, t)| {
                            RW_TXNS[i].cross_group()
                                && t.commit.is_some_and(|c| reads.contains(&c.s))
                        }),
                        _ => false,
                    })
                },
            ),
        ]
    }
}

/// §4.1.2 Start: "The coordinator leader for a write Ti assigns a commit timestamp si no less
/// than the value of TT.now().latest, computed after e_i^server", so `si >= t_abs(e_i^server)`.
fn start_rule(_: &Spanner, s: &SpannerState) -> bool {
    s.rw.iter()
        .all(|t| t.commit.is_none_or(|c| c.s >= c.server_at))
}

/// §4.1.2 Commit Wait: "Commit wait ensures that si is less than the absolute commit time of Ti,
/// or si < t_abs(e_i^commit)".
fn commit_wait_rule(_: &Spanner, s: &SpannerState) -> bool {
    s.rw.iter().all(|t| match (t.commit, t.end) {
        (Some(c), Some(end)) => c.s < end,
        _ => true,
    })
}

/// §4.1.2 external consistency: "if the start of a transaction T2 occurs after the commit of a
/// transaction T1, then the commit timestamp of T2 must be greater than the commit timestamp of
/// T1", checked as strict serializability of the history in absolute time.
fn external_consistency(m: &Spanner, s: &SpannerState) -> bool {
    check_strict_serializable(&m.history(s)).is_ok()
}

/// §4.1.3: a read at `s_read` sees exactly the writes with timestamps `<= s_read`.
fn consistent_cut(m: &Spanner, s: &SpannerState) -> bool {
    s.ro.iter().all(|r| match *r {
        RoTxn::Served { s_read, reads, .. } => Key::ALL
            .iter()
            .zip(reads)
            .all(|(&k, v)| v == m.committed_version(s, k, s_read)),
        _ => true,
    })
}

/// `checker spanner`.
pub struct SpannerSpec;

impl Spec for SpannerSpec {
    type Model = Spanner;
    type State = SpannerState;
    type Action = SpannerAction;

    const NAME: &'static str = "spanner";
    const PAPER: &'static str =
        "Corbett et al., Spanner: Google's Globally-Distributed Database (OSDI 2012) §§3, 4.1, 4.2";
    const SUMMARY: &'static str =
        "TrueTime, 2PL and 2PC across Paxos groups, commit wait, snapshot reads at safe time";
    const PARAMS: &'static [Param] = &[
        Param::int(
"epsilon", "TrueTime's uncertainty bound ε, in ticks", 1, 0, 2),
        Param::int(
"ticks", "how many ticks absolute time may advance", 4, 0, 8),
        Param::int(
            "txns",
            "read-write transactions: T1 (writes x and y, cross-group), then T2 (reads and writes y)",
            2,
            0,
            2,
        ),
        Param::int(
"read-only", "read-only transactions at the replica", 1, 0, 2),
        Param::int(
"min-next-ts", "MinNextTS promises each leader may log", 1, 0, 3),
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: SpannerBug::NoCommitWait.name(),
            breaks: &["Commit Wait (§4.1.2)", "external consistency (§4.1.2)"],
            help: "the coordinator replies before TT.after(s)",
            params: &[("ticks", "1")],
        },
        Bug {
            name: SpannerBug::TimestampFromLocalClock.name(),
            breaks: &[
                "Start (§4.1.2)",
                "Commit Wait (§4.1.2)",
                "external consistency (§4.1.2)",
            ],
            help: "nodes ignore ε: s, s_read and commit wait use the local clock",
            params: &[("epsilon", "2"), ("ticks", "2")],
        },
        Bug {
            name: SpannerBug::ReadBeforeSafeTime.name(),
            breaks: &[
                "snapshot reads see a consistent cut (§4.1.3)",
                "external consistency (§4.1.2)",
            ],
            help: "the replica ignores t_safe^TM: a read misses a prepared write below s_read",
            params: &[("ticks", "3"), ("txns", "1")],
        },
    ];

    fn view(_: &Spanner, s: &SpannerState) -> Option<String> {
        Some(view(s))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> Spanner {
        let bug = bug.map(|b| {
            SpannerBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not in SpannerSpec::BUGS"))
        });
        Spanner {
            epsilon: params.int("epsilon") as u8,
            ticks: params.int("ticks") as u8,
            txns: params.int("txns") as usize,
            read_only: params.int("read-only") as usize,
            min_next_ts: params.int("min-next-ts") as usize,
            bug,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use stateright::{Checker, HasDiscoveries};

    use super::SpannerAction::*;
    use super::*;

    /// The initial state with clock offsets `offsets` (leader 0, leader 1, replica).
    fn init(m: &Spanner, offsets: [i8; 3]) -> SpannerState {
        m.init_states()
            .into_iter()
            .find(|s| s.offsets == offsets)
            .expect("offsets within ε")
    }

    /// Takes `actions` in turn, each of which must be enabled.
    fn run(m: &Spanner, mut s: SpannerState, actions: &[SpannerAction]) -> SpannerState {
        for &a in actions {
            assert!(
                enabled(m, &s).contains(&a),
                "{a:?} is not enabled in {s:#?}"
            );
            s = m.next_state(&s, a).expect("every action changes the state");
        }
        s
    }

    fn enabled(m: &Spanner, s: &SpannerState) -> Vec<SpannerAction> {
        let mut actions = Vec::new();
        m.actions(s, &mut actions);
        actions
    }

    fn ticks(n: usize) -> Vec<SpannerAction> {
        vec![Tick; n]
    }

    #[test]
    fn truetime_intervals_contain_absolute_time() {
        // §3: TT.now() returns an interval guaranteed to contain the absolute time of the call.
        let m = Spanner {
            epsilon: 2,
            ..Spanner::default()
        };
        assert_eq!(
            m.init_states().len(),
            125,
            "every offset in -ε..=ε on 3 nodes"
        );
        for s in m.init_states() {
            for node in Node::ALL {
                let tt = m.tt_now(&s, node);
                assert!(tt.contains(s.now), "{node:?} {tt:?} at {}", s.now);
                assert_eq!(tt.latest - tt.earliest, 4, "width 2ε");
            }
        }
        // With ε ignored, a clock that is off does not contain absolute time.
        let bad = Spanner {
            bug: Some(SpannerBug::TimestampFromLocalClock),
            ..m
        };
        let s = init(&bad, [1, 0, -1]);
        assert!(!bad.tt_now(&s, Node::Leader(0)).contains(s.now));
        assert!(bad.tt_now(&s, Node::Leader(1)).contains(s.now));
    }

    #[test]
    fn commit_wait_lasts_more_than_two_epsilon() {
        // §4.1.2: s >= TT.now().latest, then wait until TT.after(s): at least 2ε, here 2ε + 1
        // ticks of whole time, whatever the coordinator's clock offset.
        let m = Spanner::default();
        for offset in [-1, 0, 1] {
            let s = run(&m, init(&m, [0, offset, 0]), &[Read(1), Commit(1)]);
            let c = s.rw[1].commit.unwrap();
            assert_eq!(i16::from(c.s), i16::from(s.now) + i16::from(offset) + 1);
            let s = run(&m, s, &ticks(2));
            assert!(!enabled(&m, &s).contains(&FinishCommitWait(1)));
            let s = run(&m, s, &[Tick, FinishCommitWait(1)]);
            assert_eq!(s.rw[1].end, Some(c.server_at + 3));
            assert!(c.s < s.rw[1].end.unwrap(), "Commit Wait");
        }
    }

    #[test]
    fn two_phase_locking_orders_conflicting_transactions() {
        // T2 holds a read lock on y: T1's participant cannot prepare (take y's write lock) until
        // T2 commits, and then prepares above T2's commit timestamp (monotonicity, §4.1.2).
        let m = Spanner::default();
        let s = run(&m, init(&m, [0, 0, 0]), &[Read(1)]);
        assert!(!enabled(&m, &s).contains(&Prepare(0, 1)));
        let s = run(&m, s, &[Commit(1)]);
        assert!(!enabled(&m, &s).contains(&Prepare(0, 1)));
        let s = run(&m, s, &ticks(3));
        let s = run(&m, s, &[FinishCommitWait(1), Prepare(0, 1)]);
        assert!(s.rw[0].prepared[1].unwrap() > s.rw[1].commit.unwrap().s);
        // T1 now holds y's write lock: T2 could not read y.
        assert!(Spanner::holds_write(&s, 0, Key::Y));
        assert!(!m.can_lock(&s, 1, Key::Y, false));
    }

    #[test]
    fn a_snapshot_read_waits_for_a_prepared_transaction() {
        // §4.1.3: t_safe^TM is below the prepare timestamp of a prepared transaction, so a read
        // at a later s_read waits until the commit is applied, then sees both of T1's writes.
        let m = Spanner::default();
        let s = run(
            &m,
            init(&m, [0, 0, 1]),
            &[Prepare(0, 1), Commit(0), BeginReadOnly(0)],
        );
        let RoTxn::Waiting { s_read, .. } = s.ro[0] else {
            panic!("the read waits");
        };
        let s1 = s.rw[0].commit.unwrap().s;
        assert!(s1 <= s_read, "s_read = {s_read}, s = {s1}");
        // Group 0 applies T1's commit record and a MinNextTS promise past s_read; group 1 its
        // prepare record and a promise past s_read: t_safe^Paxos has passed s_read in both
        // groups, t_safe^TM has not in group 1.
        let s = run(&m, s, &ticks(3));
        let s = run(
            &m,
            s,
            &[FinishCommitWait(0), Apply(0), AdvanceMinNextTs(0), Apply(0)],
        );
        let s = run(&m, s, &[Apply(1), AdvanceMinNextTs(1), Apply(1)]);
        assert!(s.logs.iter().all(|log| log.last().unwrap().ts >= s_read));
        assert!(m.t_safe(&s) < s_read);
        assert!(
            !enabled(&m, &s).contains(&ServeReadOnly(0)),
            "T1 still prepared in group 1"
        );
        let forgetful = Spanner {
            bug: Some(SpannerBug::ReadBeforeSafeTime),
            ..m.clone()
        };
        assert!(forgetful.t_safe(&s) >= s_read, "the bug would serve it now");
        let s = run(&m, s, &[LogCommit(0, 1), Apply(1), ServeReadOnly(0)]);
        let RoTxn::Served { reads, waited, .. } = s.ro[0] else {
            panic!("served");
        };
        assert_eq!(reads, [s1, s1]);
        assert!(waited);
        assert!(consistent_cut(&m, &s) && external_consistency(&m, &s));
    }

    #[test]
    fn default_configuration_holds() {
        let checker = Spanner::default().checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 1_271_144);
        assert_eq!(checker.state_count(), 2_578_784);
    }

    /// Checks the bug's own configuration (`SpannerSpec::BUGS`) until `property` is violated.
    fn catch(bug: SpannerBug, property: &'static str) -> impl Checker<Spanner> {
        let b = SpannerSpec::BUGS
            .iter()
            .find(|b| b.name == bug.name())
            .expect("every bug is listed");
        let params = b.configure(SpannerSpec::PARAMS, &Params::defaults(SpannerSpec::PARAMS));
        let checker = SpannerSpec::build(&params, Some(bug.name()))
            .checker()
            .finish_when(HasDiscoveries::AllOf(BTreeSet::from([property])))
            .spawn_bfs()
            .join();
        checker.assert_any_discovery(property);
        checker
    }

    #[test]
    fn catches_no_commit_wait() {
        // T2's coordinator runs a tick ahead: s = 4 at absolute time 2, and the client is told at
        // once. A read-only transaction starts a tick later on a replica a tick behind: s_read = 3
        // < 4, so it misses T2's write although T2 ended before it started.
        let checker = catch(SpannerBug::NoCommitWait, "external consistency (§4.1.2)");
        checker.assert_discovery(
            "external consistency (§4.1.2)",
            vec![
                Read(1),
                Commit(1),
                FinishCommitWait(1),
                Tick,
                BeginReadOnly(0),
                AdvanceMinNextTs(0),
                Apply(0),
                Apply(1),
                ServeReadOnly(0),
            ],
        );
        checker.assert_discovery(
            "Commit Wait (§4.1.2)",
            vec![Read(1), Commit(1), FinishCommitWait(1)],
        );
    }

    #[test]
    fn catches_timestamp_from_local_clock() {
        // ε = 2. T2's coordinator is 2 ticks ahead and takes s = 6 from its clock at absolute time
        // 4; its "commit wait" ends when its clock passes 6, at absolute time 5. A read begins at
        // 6 on a replica 2 ticks behind: s_read = 4 < 6 misses T2.
        let checker = catch(
            SpannerBug::TimestampFromLocalClock,
            "external consistency (§4.1.2)",
        );
        let mut path = vec![Read(1), Commit(1), Tick, FinishCommitWait(1), Tick];
        path.extend([
            BeginReadOnly(0),
            AdvanceMinNextTs(0),
            Apply(0),
            Apply(1),
            ServeReadOnly(0),
        ]);
        checker.assert_discovery("external consistency (§4.1.2)", path);
        // A coordinator whose clock is behind takes s below absolute time.
        checker.assert_discovery("Start (§4.1.2)", vec![Read(1), Commit(1)]);
    }

    #[test]
    fn catches_read_before_safe_time() {
        // T1 is prepared in group 1, committed in group 0: a read served on t_safe^Paxos alone
        // sees T1's x but not its y.
        let checker = catch(
            SpannerBug::ReadBeforeSafeTime,
            "snapshot reads see a consistent cut (§4.1.3)",
        );
        let mut path = vec![Prepare(0, 1), Commit(0)];
        path.extend(ticks(3));
        path.extend([
            FinishCommitWait(0),
            BeginReadOnly(0),
            Apply(0),
            AdvanceMinNextTs(0),
            Apply(0),
            Apply(1),
            AdvanceMinNextTs(1),
            Apply(1),
            ServeReadOnly(0),
        ]);
        checker.assert_discovery("snapshot reads see a consistent cut (§4.1.3)", path.clone());
        checker.assert_discovery("external consistency (§4.1.2)", path);
    }
}
