//! Property checkers that more than one model, and recorded histories from live clusters, reuse.
//!
//! - [`causal`]: causal consistency (CC), causal memory (CM), causal convergence (CCv, COPS's
//!   causal+) and transactional causal consistency (TCC) of a key-value history, by the bad
//!   patterns of Bouajjani et al. (POPL 2017), and a reader for its `jsonl` histories.
//! - [`commitment`]: the agreement property of atomic commitment, shared by the two-phase commit
//!   specifications (`twophase`, `tcommit`) and by the transactional models that run 2PC.
//! - [`edn`]: a reader for EDN, the notation Jepsen, Knossos and Elle write histories in.
//! - [`freshness`]: a look-aside cache's freshness (Memcache at Facebook): no read older than a
//!   write whose delete was done before it began, but a gutter read within its TTL.
//! - [`list_append`]: Elle's list-append checker (Kingsbury & Alvaro, VLDB 2020): version orders
//!   inferred from reads of lists, Adya's anomalies (G0 to G2-item, with real-time variants) and
//!   the consistency models they rule out, for Jepsen's EDN and Elle's JSON histories.
//! - [`linearizability`]: a Wing & Gong / Lowe linearizability checker with memoisation and
//!   P-compositionality, for histories of thousands of operations, with the sequential specifications
//!   of a register, a compare-and-set register, a get/put/append key-value store and ZooKeeper's versioned znodes, and readers for
//!   Jepsen logs, Porcupine's KV logs and the workbench's own `jsonl` histories.
//! - [`zookeeper`]: ZooKeeper's FIFO client order (§2.3) on a session's replies, and mutual
//!   exclusion of the lock recipe (§2.4) on the committed transaction log.

pub mod causal;
pub mod commitment;
pub mod edn;
pub mod freshness;
pub mod linearizability;
pub mod list_append;
pub mod serializability;
pub mod zookeeper;

/// This process's peak resident memory so far, in KiB (Linux's `VmHWM`; 0 where there is none):
/// what `checker history --json` and the benchmarks report.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
