//! Serializability and strict serializability of transaction histories.
//!
//! Atul Adya, "Weak Consistency: A Generalized Theory and Optimistic Implementations for Distributed
//! Transactions" (MIT PhD thesis, 1999), §3 and §4: a history is serializable (PL-3) when its direct
//! serialization graph (DSG) has no cycle and no transaction read aborted or intermediate data. The
//! DSG has one node per committed transaction and an edge for every direct dependency:
//!
//! - **ww** (write-depends): `Ti` installs a version of `x` and `Tj` installs the next one;
//! - **wr** (read-depends): `Tj` reads the version of `x` that `Ti` installed;
//! - **rw** (anti-depends): `Ti` reads a version of `x` and `Tj` installs the next one.
//!
//! The phenomena, from strongest to weakest, and what [`check_serializable`] reports:
//!
//! - **G0** (write cycles): a cycle of ww edges only.
//! - **G1a** (aborted reads): a committed transaction read a version an aborted one wrote.
//! - **G1b** (intermediate reads): a committed transaction read a version that another transaction
//!   later overwrote itself (not its final write of that key).
//! - **G1c** (circular information flow): a cycle of ww and wr edges.
//! - **G2** (anti-dependency cycles): a cycle with at least one rw edge.
//!
//! Strict serializability (Papadimitriou 1979; Spanner's "external consistency", §4) adds a
//! **real-time** edge `Ti -> Tj` whenever `Ti` ended before `Tj` started
//! ([`check_strict_serializable`]); a cycle through such an edge is [`Anomaly::RealTime`].
//!
//! Every violation comes with evidence: the transactions involved and, for a cycle, a shortest
//! cycle of the strongest class, edge by edge.
//!
//! # Versions
//! Every key starts at version 0 (written by no one). A write installs a version number, unique per
//! key among all writes of the history (aborted and intermediate writes included), and the **version
//! order** of a key is the numeric order of its committed transactions' final writes. A read names
//! the version it observed. Within one transaction, a read of a key it has already written must see
//! its own last write ([`Anomaly::Internal`] otherwise), and such reads make no edges.
//!
//! - [`check_serializable`], [`check_strict_serializable`]: the DSG checker (petgraph's strongly
//!   connected components, then a shortest cycle by breadth-first search).
//! - [`brute_force`]: tries every serial order; for tests on small histories.
//! - [`formats`]: the `jsonl` transaction format read by `checker history --model txn`.

mod brute;
pub mod formats;
pub(crate) mod graph;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use brute::brute_force;
pub use graph::{check_serializable, check_strict_serializable};

/// A transaction's identifier, unique in a history.
pub type TxnId = u64;

/// A version of a key; 0 is the initial version, which no transaction wrote.
pub type Version = u64;

/// One operation of a transaction, in program order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op<K> {
    /// Observed `version` of `key`.
    Read { key: K, version: Version },
    /// Wrote `version` of `key`.
    Write { key: K, version: Version },
}

impl<K> Op<K> {
    pub fn key(&self) -> &K {
        match self {
            Op::Read { key, .. } | Op::Write { key, .. } => key,
        }
    }

    pub fn version(&self) -> Version {
        match self {
            Op::Read { version, .. } | Op::Write { version, .. } => *version,
        }
    }
}

/// A transaction of a history: its operations and whether it committed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Txn<K> {
    pub id: TxnId,
    pub ops: Vec<Op<K>>,
    /// Committed, or aborted. Only committed transactions are nodes of the graph; aborted ones are
    /// kept to recognise reads of their writes (G1a).
    pub committed: bool,
    /// Real time at which the transaction started (its first operation was invoked), for strict
    /// serializability. `None`: unknown, no real-time edges end here.
    pub start: Option<u64>,
    /// Real time at which it ended (its commit was acknowledged). `None`: unknown or still open,
    /// no real-time edges start here.
    pub end: Option<u64>,
}

impl<K> Txn<K> {
    /// A committed transaction without real-time information.
    pub fn committed(id: TxnId, ops: Vec<Op<K>>) -> Self {
        Txn {
            id,
            ops,
            committed: true,
            start: None,
            end: None,
        }
    }

    /// An aborted transaction.
    pub fn aborted(id: TxnId, ops: Vec<Op<K>>) -> Self {
        Txn {
            id,
            ops,
            committed: false,
            start: None,
            end: None,
        }
    }

    /// The same transaction, started at `start` and ended at `end` (real time).
    pub fn during(mut self, start: u64, end: u64) -> Self {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
}

/// `Op::Read` shorthand.
pub fn r<K>(key: K, version: Version) -> Op<K> {
    Op::Read { key, version }
}

/// `Op::Write` shorthand.
pub fn w<K>(key: K, version: Version) -> Op<K> {
    Op::Write { key, version }
}

/// The kind of a dependency edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DepKind {
    /// Write-depends: `to` installed the version of `key` after `from`'s.
    Ww,
    /// Read-depends: `to` read the version of `key` that `from` installed.
    Wr,
    /// Anti-depends: `from` read a version of `key` and `to` installed the next one.
    Rw,
    /// Real time: `from` ended before `to` started.
    Rt,
}

impl fmt::Display for DepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DepKind::Ww => "ww",
            DepKind::Wr => "wr",
            DepKind::Rw => "rw",
            DepKind::Rt => "rt",
        })
    }
}

/// One edge of the serialization graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dep<K> {
    pub from: TxnId,
    pub to: TxnId,
    pub kind: DepKind,
    /// The key of a ww, wr or rw edge; `None` for a real-time edge.
    pub key: Option<K>,
}

impl<K: fmt::Debug> fmt::Display for Dep<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "T{} -{}({:?})-> T{}", self.from, self.kind, k, self.to),
            None => write!(f, "T{} -{}-> T{}", self.from, self.kind, self.to),
        }
    }
}

/// The anomaly a history shows, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Anomaly {
    /// A read of a version that no transaction of the history wrote.
    UnknownVersion,
    /// A read of a key the transaction had written that does not see its own last write.
    Internal,
    /// Write cycle (ww edges only).
    G0,
    /// Aborted read.
    G1a,
    /// Intermediate read.
    G1b,
    /// Circular information flow (ww and wr edges).
    G1c,
    /// Anti-dependency cycle (at least one rw edge).
    G2,
    /// Serializable, but every serial order contradicts real time (a cycle through an rt edge).
    RealTime,
}

impl Anomaly {
    /// Adya's name, or ours for the ones he does not name.
    pub fn name(&self) -> &'static str {
        match self {
            Anomaly::UnknownVersion => "unknown version",
            Anomaly::Internal => "internal inconsistency",
            Anomaly::G0 => "G0 (write cycle)",
            Anomaly::G1a => "G1a (aborted read)",
            Anomaly::G1b => "G1b (intermediate read)",
            Anomaly::G1c => "G1c (circular information flow)",
            Anomaly::G2 => "G2 (anti-dependency cycle)",
            Anomaly::RealTime => "real-time order violated (not strictly serializable)",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a history is not (strictly) serializable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Violation<K> {
    pub anomaly: Anomaly,
    /// For a cycle: its edges in order, the last one returning to the first's `from`. A shortest
    /// cycle among those of this class. Empty for G1a, G1b, internal and unknown-version anomalies.
    pub cycle: Vec<Dep<K>>,
    /// The transactions involved: the cycle's, or the reader then the writer.
    pub txns: Vec<TxnId>,
    /// One line for people.
    pub explanation: String,
}

impl<K: fmt::Debug> fmt::Display for Violation<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.anomaly, self.explanation)?;
        for d in &self.cycle {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
