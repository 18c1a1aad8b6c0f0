//! Elle's list-append checker: isolation anomalies of a history of transactions over lists.
//!
//! Kyle Kingsbury and Peter Alvaro, "Elle: Inferring Isolation Anomalies from Experimental
//! Observations" (VLDB 2020). Each transaction appends unique elements to lists and reads whole
//! lists, so that every read reveals the order in which the database applied the appends it saw:
//! reads are *recoverable* and lists are *traceable*. From them Elle infers, for each key, the
//! version order (the longest read, of which every other read must be a prefix), then Adya's
//! dependencies between transactions (§4 of the paper):
//!
//! - **ww**: `Tj` appended the element right after `Ti`'s in the version order of a key. An append
//!   no read saw still comes after the last element any read saw (Elle's
//!   `previously-appended-element`).
//! - **wr**: `Tj` read a list whose last element `Ti` appended.
//! - **rw**: `Ti` read a list, and `Tj` appended the element that comes after its last one (or the
//!   first element, for a read of the empty list).
//! - **rt** (real time): `Ti` completed before `Tj` was invoked, for strict serializability; time
//!   is the ops' `:index` when every op has one, or else their order in the file.
//!
//! When two transactions are linked by more than one kind of edge, the strongest (ww, then wr,
//! then rw) stands for the pair, so that a cycle is named by what it cannot avoid.
//!
//! Anomalies found, with Elle's names ([`Anomaly`]):
//! - not cycles: `G1a` (aborted read: a read saw an element a `:fail` transaction appended),
//!   `G1b` (intermediate read: a read ended with an element that was not its writer's last
//!   append to the key), `internal` (a transaction's read disagrees with its own earlier appends
//!   and reads), `duplicate-elements` (a read saw an element twice), `incompatible-order` (two
//!   reads of a key of which neither is a prefix of the other);
//! - cycles: `G0` (ww edges only), `G1c` (ww and wr, at least one wr), `G-single` (exactly one
//!   rw), `G-nonadjacent` (two or more rw, no two adjacent), `G2-item` (two or more rw, two of them
//!   adjacent), and each with `-realtime` when the cycle needs an rt edge (searched only when its
//!   plain variant was not found: Elle's `G-single` implies `G-single-realtime`, and so on).
//!
//! A history passes a consistency model ([`Level`]) when none of the anomalies the model forbids
//! is found ([`Level::forbids`]).
//!
//! Histories are read from EDN ([`parse_edn`]) or Elle's JSON ([`parse_json`]): op maps
//! `{:index I, :type :invoke|:ok|:fail|:info, :process P, :f :txn, :value [[:append k v] [:r k
//! [v1 ...]] ...]}`. An invocation is paired with the next completion of its process (without
//! `:process`, with the earliest open invocation without one); `:fail` means the transaction
//! aborted, `:info` (or no completion) that it may or may not have committed: its appends count,
//! its reads do not.

mod check;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

pub use check::{anomalies, check, dependencies};
pub use parse::{detect, parse, parse_edn, parse_json, Format};

use crate::serializability::DepKind;

/// A key or an element: an integer, or any other EDN/JSON value, written as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Atom {
    Int(i64),
    Other(String),
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Int(i) => write!(f, "{i}"),
            Atom::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for Atom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Atom::Int(i) => s.serialize_i64(*i),
            Atom::Other(o) => s.serialize_str(o),
        }
    }
}

/// A micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mop {
    Append(Atom, Atom),
    /// A read: `None` for an unknown result (`nil` in an invocation or an `:info` completion;
    /// in an `:ok` one, `nil` is the empty list).
    Read(Atom, Option<Vec<Atom>>),
}

impl fmt::Display for Mop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mop::Append(k, v) => write!(f, "[:append {k} {v}]"),
            Mop::Read(k, None) => write!(f, "[:r {k} nil]"),
            Mop::Read(k, Some(vs)) => write!(f, "[:r {k} {}]", list(vs)),
        }
    }
}

/// `[1 2 3]`.
pub fn list(vs: &[Atom]) -> String {
    let items: Vec<String> = vs.iter().map(Atom::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Aborted: its appends did not happen.
    Fail,
    /// Indeterminate: it may or may not have committed.
    Info,
}

/// One transaction: an invocation and its completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// `T1`, `T2`, ... in the order of invocation: its position in [`History::txns`] plus one
    /// (the checker relies on it).
    pub id: u64,
    /// The `:index` of its invocation (or of its completion when it has no invocation).
    pub index: Option<i64>,
    pub process: Option<i64>,
    pub status: Status,
    /// The micro-operations as completed (an `:ok` completion fills in the reads).
    pub mops: Vec<Mop>,
    /// When it was invoked (`None`: no invocation in the history).
    pub invoked: Option<u64>,
    /// When it completed (`None`: `:info` or no completion: no real-time edge leaves it).
    pub completed: Option<u64>,
    /// The line of its completion (or invocation) in the file.
    pub line: usize,
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{} = {{", self.id)?;
        if let Some(i) = self.index {
            write!(f, ":index {i}, ")?;
        }
        if let Some(p) = self.process {
            write!(f, ":process {p}, ")?;
        }
        let status = match self.status {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Info => "info",
        };
        let mops: Vec<String> = self.mops.iter().map(Mop::to_string).collect();
        write!(f, ":type :{status}, :value [{}]}}", mops.join(" "))
    }
}

/// A list-append history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub txns: Vec<Txn>,
    /// How many op maps the file held.
    pub operations: usize,
    /// Whether times (`invoked`, `completed`) are the ops' `:index` (every op had one), rather
    /// than their positions in the file.
    pub times_are_indices: bool,
}

/// An anomaly, by Elle's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anomaly {
    G0,
    G1a,
    G1b,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
    G0Realtime,
    G1cRealtime,
    GSingleRealtime,
    GNonadjacentRealtime,
    G2ItemRealtime,
    Internal,
    DuplicateElements,
    IncompatibleOrder,
}

impl Anomaly {
    pub fn name(self) -> &'static str {
        match self {
            Anomaly::G0 => "G0",
            Anomaly::G1a => "G1a",
            Anomaly::G1b => "G1b",
            Anomaly::G1c => "G1c",
            Anomaly::GSingle => "G-single",
            Anomaly::GNonadjacent => "G-nonadjacent",
            Anomaly::G2Item => "G2-item",
            Anomaly::G0Realtime => "G0-realtime",
            Anomaly::G1cRealtime => "G1c-realtime",
            Anomaly::GSingleRealtime => "G-single-realtime",
            Anomaly::GNonadjacentRealtime => "G-nonadjacent-realtime",
            Anomaly::G2ItemRealtime => "G2-item-realtime",
            Anomaly::Internal => "internal",
            Anomaly::DuplicateElements => "duplicate-elements",
            Anomaly::IncompatibleOrder => "incompatible-order",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Anomaly {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A consistency model a history is checked against.
///
/// What each forbids is Elle's table (`elle.consistency-model`: `direct-proscribed-anomalies`,
/// expanded along its `models` hierarchy and `implied-anomalies`), after Adya's PL levels,
/// restricted to the anomalies this checker finds:
///
/// - read committed (Adya's PL-2, which implies PL-1): `G1` (`G1a`, `G1b`, `G1c`; `G0` implies
///   `G1c`, `incompatible-order` implies `G1a`) and PL-1's `G0` and `duplicate-elements`;
/// - repeatable read (PL-2.99): read committed's, and `G2-item`. Our cycles are all over items,
///   so our `G-single` is Elle's `G-single-item` and our `G-nonadjacent` its
///   `G-nonadjacent-item`, both of which imply `G2-item` (Adya: a G2-item cycle has one or more
///   item anti-dependency edges);
/// - snapshot isolation: read committed's, `internal`, and `G-single` and `G-nonadjacent` (Elle:
///   generalised SI forbids every cycle whose rw edges are never adjacent), but not `G2-item`
///   (write skew);
/// - serializable (PL-3): every anomaly above;
/// - strict serializable (PL-SS): serializable's and the `-realtime` cycles (`G1c-realtime`,
///   `G2-realtime` and what implies them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    StrictSerializable,
    Serializable,
    SnapshotIsolation,
    RepeatableRead,
    ReadCommitted,
}

impl Level {
    /// Whether a history with `anomaly` violates this model.
    pub fn forbids(self, anomaly: Anomaly) -> bool {
        use Anomaly as A;
        let read_committed = matches!(
            anomaly,
            A::G0 | A::G1a | A::G1b | A::G1c | A::IncompatibleOrder | A::DuplicateElements
        );
        let item_cycle = matches!(anomaly, A::GSingle | A::GNonadjacent | A::G2Item);
        let realtime = matches!(
            anomaly,
            A::G0Realtime
                | A::G1cRealtime
                | A::GSingleRealtime
                | A::GNonadjacentRealtime
                | A::G2ItemRealtime
        );
        match self {
            Level::ReadCommitted => read_committed,
            Level::RepeatableRead => read_committed || item_cycle,
            Level::SnapshotIsolation => {
                read_committed || matches!(anomaly, A::Internal | A::GSingle | A::GNonadjacent)
            }
            Level::Serializable => read_committed || item_cycle || anomaly == A::Internal,
            Level::StrictSerializable => {
                read_committed || item_cycle || realtime || anomaly == A::Internal
            }
        }
    }

    /// `strict-serializable`, `serializable`, ...
    pub fn name(self) -> &'static str {
        match self {
            Level::StrictSerializable => "strict-serializable",
            Level::Serializable => "serializable",
            Level::SnapshotIsolation => "snapshot-isolation",
            Level::RepeatableRead => "repeatable-read",
            Level::ReadCommitted => "read-committed",
        }
    }
}

/// One edge of a cycle, with the elements that justify it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: u64,
    pub to: u64,
    pub kind: DepKind,
    /// The key, for ww, wr and rw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Atom>,
    /// The sentence Elle would write: `T3 observed T2's append of 8 to key 255`.
    pub why: String,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "T{} -{}({k})-> T{}", self.from, self.kind, self.to),
            None => write!(f, "T{} -{}-> T{}", self.from, self.kind, self.to),
        }
    }
}

/// An anomaly found, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub anomaly: Anomaly,
    /// The transactions involved, in the order of the cycle (or of the explanation).
    pub txns: Vec<u64>,
    /// For a cycle, its edges in order, each with its justification; empty otherwise.
    pub cycle: Vec<Edge>,
    /// What happened, for people.
    pub explanation: String,
    /// Each transaction of `txns`, as an op map: `T2 = {:index 2, :type :ok, :value [...]}`.
    pub ops: Vec<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.anomaly)?;
        if self.cycle.is_empty() {
            return f.write_str(&self.explanation);
        }
        for e in &self.cycle {
            write!(f, "T{} -{}-> ", e.from, e.kind)?;
        }
        write!(f, "T{}", self.cycle[0].from)?;
        for e in &self.cycle {
            write!(f, "\n    {e}: {}", e.why)?;
        }
        for t in &self.ops {
            write!(f, "\n    {t}")?;
        }
        Ok(())
    }
}

/// The outcome of a check: every anomaly found (one finding per anomaly class and, for
/// non-cycles, per case), and whether the level holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub level: &'static str,
    /// Whether no anomaly the level forbids was found.
    pub valid: bool,
    /// The findings, strongest class first.
    pub anomalies: Vec<Finding>,
    /// The names of the classes found that the level forbids.
    pub forbidden: Vec<Anomaly>,
}
