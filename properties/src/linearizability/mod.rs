//! Linearizability of recorded histories.
//!
//! Herlihy and Wing, "Linearizability: A Correctness Condition for Concurrent Objects" (1990): a history
//! is linearizable when every operation appears to take effect at one instant between its invocation
//! and its response, in an order that a sequential specification accepts. Operations whose outcome is
//! unknown (a timeout, Jepsen's `:info`) may or may not have taken effect: they stay open to the end of
//! the history and their result is not checked.
//!
//! The checker ([`check`]) is the search of Wing and Gong (1993) as improved by Lowe ("Testing for
//! linearizability", 2017) and used by Porcupine and Knossos: walk the history's call and return events
//! in time order, linearize any call that comes before the first pending return and that the
//! specification accepts, backtrack at a return whose call could not be linearized, and never visit the
//! same (set of linearized operations, state) pair twice. Histories are split by
//! [`SequentialSpec::partition`] (Herlihy and Wing's locality, "P-compositionality" in Lowe's terms) and
//! the parts are checked independently, in parallel.
//!
//! - [`history`]: operations and histories, and a builder from invoke/complete events.
//! - [`spec`]: the sequential-specification trait and the register, compare-and-set register and
//!   key-value specifications.
//! - [`formats`]: readers for Jepsen etcd logs, Porcupine's KV logs and the `jsonl` format.

pub mod formats;
pub mod history;
pub mod spec;
mod wgl;

pub use history::{Completion, History, HistoryBuilder, Operation};
pub use spec::{
    CasRegister, KvStore, Register, SequentialSpec, Znode, ZnodeInput, ZnodeOp, ZnodeOutput,
};
pub use wgl::{check, check_brute_force, Failure, Verdict};
