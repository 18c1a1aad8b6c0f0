//! Distributed transactions: strict two-phase locking at each shard, two-phase commit across
//! shards, and shards that crash and recover from stable storage.
//!
//! Jerome Saltzer and M. Frans Kaashoek, "Principles of Computer System Design" (2009), chapter 9:
//! §9.5.3 (locking disciplines: two-phase locking) and §9.6.3 (multiple-site atomicity: the
//! two-phase commit protocol). Jim Gray and Leslie Lamport, "Consensus on Transaction Commit"
//! (ACM TODS 31(1), 2006), §3 for the messages of two-phase commit: Prepare, Prepared, Commit,
//! Abort. The model of commitment alone, without data or locks, is [`crate::twophase`].
//!
//! # The protocol
//! Two shards hold one key each (`x` on shard 0, `y` on shard 1). Each client is the
//! coordinator of its own transactions, run one after another; transaction `T1` reads `x` and
//! writes `y`, `T2` reads `y` and writes `x` (then they alternate).
//!
//! - **Operations under locks** (§9.5.3). The client sends `Read` and `Write` one at a time to
//!   the shard holding the key. The shard grants a shared lock for a read (and answers the
//!   committed version) or an exclusive lock for a write (buffering it: writes are installed
//!   at commit, so nothing is undone at abort). Locks are *strict*: held until the shard learns
//!   the transaction's outcome. A conflicting request is **refused at once** (no-wait), and the
//!   client aborts: there is no waiting, so no deadlock.
//! - **Phase one** (§9.6.3). The client sends `Prepare` to every participant, naming the keys it
//!   was granted there. A shard that still holds them forces its vote, with the transaction's
//!   record (reads, buffered writes, and so its locks), to stable storage, then answers
//!   `Prepared`. A shard that does not (it restarted since and lost them) aborts and answers
//!   `Aborted`.
//! - **Phase two.** With `Prepared` from every participant the coordinator decides Commit, on
//!   any `Aborted` (or a refused lock) Abort, and sends the decision to every participant. A
//!   shard installs the writes of a committed transaction (each key's version goes up by one)
//!   and releases the locks; on Abort it drops the writes and releases the locks. Both outcomes
//!   go to stable storage.
//! - **Crash recovery.** A shard may crash and restart from its storage. Working transactions
//!   and their locks are gone (the shard votes no for them later); a prepared transaction comes
//!   back prepared, with its locks, and waits for the decision, which its coordinator has sent
//!   or will send (the network loses nothing and keeps a restarting shard's messages, so no
//!   inquiry protocol is needed).
//!
//! Not modelled: coordinator crashes (the coordinator would force its decision to storage
//! before sending it, and a prepared participant would block until it recovers; §9.6.3),
//! message loss, waiting for locks (wait-die, deadlock detection), and garbage collection of
//! outcome records.
//!
//! # Properties
//! - always *atomicity*: no transaction is committed at one shard and aborted at another
//!   (`TCConsistent` per transaction, [`properties::commitment::agreement`]); sometimes *a
//!   transaction commits across two shards*.
//! - always *serializability*: the committed transactions, with the versions their reads saw
//!   and their writes installed, are serializable
//!   ([`properties::serializability::check_serializable`]); sometimes *a committed
//!   transaction reads another's write*.
//! - always *a prepared participant waits for the decision*: a shard that sent Prepared stays
//!   prepared until it learns the coordinator's decision, and then follows it; sometimes *a
//!   participant restarts prepared, then learns the decision*.
//! - sometimes *a transaction aborts*.
//! - eventually *every transaction ends everywhere* (all of this model's paths are acyclic, so
//!   stateright's check and the workbench engine's exact one agree).
//!
//! # Seeded bugs
//! - `early-unlock`: a shard releases a transaction's locks when it votes Prepared instead of at
//!   the outcome. Locking is still two-phase (every lock was acquired before Prepare) but not
//!   strict: the exclusive lock goes before its write is installed, so another transaction
//!   reads the version the first is about to replace. T1 reads x and writes y, T2 reads y
//!   (the old version) and writes x, and both commit: a write skew, a G2 anti-dependency cycle
//!   (*serializability*). Releasing only the shared locks at Prepare, past the lock point, would
//!   be safe here: a reader of y would still be refused until T1's write is installed. It is the
//!   exclusive locks that must be held until the outcome.
//! - `forget-vote`: a restarted shard ignores the yes votes on its storage and aborts those
//!   transactions; the coordinator, which has every yes, commits (*atomicity*, *a prepared
//!   participant waits for the decision*).
//! - `coordinator-commits-on-partial-votes`: the coordinator commits on the first Prepared. A
//!   shard that restarted before Prepare votes Aborted, too late (*atomicity*).
//! - `abort-forgets-participants`: on a refused lock the coordinator sends Abort only to the
//!   shard that refused. A shard that granted an earlier lock keeps the transaction working,
//!   with its lock, forever: the run ends with a transaction that never ended there (*every
//!   transaction ends everywhere*), and §9.6.3's rule that the coordinator informs every
//!   participant is what prevents it.

pub mod actor;
pub mod model;

pub use actor::{TwoPcActor, TwoPcBug, TwoPcMsg};
pub use model::{TwoPcCfg, TwoPcModel};

use crate::catalog::{Bug, Param, Params, Spec};

/// The `twopc` entry of the checker's registry.
pub struct TwoPcSpec;

impl Spec for TwoPcSpec {
    type Model = TwoPcModel;
    type State = model::TwoPcModelState;
    type Action = model::TwoPcAction;

    const NAME: &'static str = "twopc";
    const PAPER: &'static str = "Saltzer & Kaashoek, Principles of Computer System Design §§9.5.3, 9.6.3; Gray & Lamport, Consensus on Transaction Commit §3";
    const SUMMARY: &'static str =
        "Strict two-phase locking on two shards, two-phase commit by the clients, shard crash recovery";
    const PARAMS: &'static [Param] = &[
        Param::int(
            "clients",
            "number of clients, each coordinating its transactions",
            3,
            1,
            3,
        ),
        Param::int(
            "txns",
            "transactions per client, run one after another",
            1,
            1,
            2,
        ),
        Param::int(
            "crashes",
            "shard crashes in all (each restarts from its storage)",
            2,
            0,
            3,
        ),
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: TwoPcBug::EarlyUnlock.name(),
            breaks: &["serializability"],
            help: "locks released at the Prepared vote, not at the outcome",
            params: &[("clients", "2"), ("crashes", "0")],
        },
        Bug {
            name: TwoPcBug::ForgetVote.name(),
            breaks: &["atomicity", "a prepared participant waits for the decision"],
            help: "a restarted shard aborts the transactions it voted Prepared for",
            params: &[("clients", "1"), ("crashes", "1")],
        },
        Bug {
            name: TwoPcBug::CoordinatorCommitsOnPartialVotes.name(),
            breaks: &["atomicity"],
            help: "the coordinator commits on the first Prepared vote",
            params: &[("clients", "1"), ("crashes", "1")],
        },
        Bug {
            name: TwoPcBug::AbortForgetsParticipants.name(),
            breaks: &["every transaction ends everywhere"],
            help: "on a refused lock only the refusing shard hears Abort; the others hold their locks forever",
            params: &[("clients", "2"), ("crashes", "0")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> TwoPcModel {
        let bug = bug.map(|b| {
            TwoPcBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not in TwoPcSpec::BUGS"))
        });
        TwoPcCfg {
            clients: params.int("clients") as usize,
            txns: params.int("txns") as usize,
            crashes: params.int("crashes") as usize,
            bug,
        }
        .into_model()
    }
}

#[cfg(test)]
mod tests;
