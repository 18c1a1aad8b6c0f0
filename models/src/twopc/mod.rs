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
//!   any `Aborted` (or a refused lock, or its timeout) Abort, records the decision, and sends it
//!   to every participant. A
//!   shard installs the writes of a committed transaction (each key's version goes up by one)
//!   and releases the locks; on Abort it drops the writes and releases the locks. Both outcomes
//!   go to stable storage.
//! - **Crash recovery.** A shard may crash and restart from its storage. Working transactions
//!   and their locks are gone (the shard votes no for them later); a prepared transaction comes
//!   back prepared, with its locks and its coordinator's name, and waits for the decision.
//!
//! # Messages lost (§9.6.3)
//! Over TCP a message to a killed or cut-off shard is lost, and an actor that only waits would
//! wait forever. Each waiting actor has a timer ([`TwoPcTimer`]; real durations from its
//! configuration, [`COORDINATOR_TIMEOUT`] and [`PARTICIPANT_TIMEOUT`] live):
//!
//! - **Coordinator timeout.** A client whose current transaction is undecided (executing or
//!   preparing) decides Abort (a coordinator may abort unilaterally until it has decided) and
//!   sends Abort to every shard the transaction touched, the one with an operation outstanding
//!   included.
//! - **Participant timeout.** A shard's timer is armed while it has working or prepared
//!   transactions. It aborts the working ones on its own (allowed before the vote; their locks
//!   go), and for each prepared one sends `Inquire` to its coordinator, again at each timeout.
//!   A prepared participant never aborts on its own: that is the price of two-phase commit, and
//!   `abort-after-vote` below is what happens otherwise.
//! - **Outcome records.** The coordinator keeps its decisions (`decided`) and answers an
//!   inquiry from them with Commit or Abort. An inquiry about its current, undecided
//!   transaction gets no answer: the coordinator's own timeout bounds the wait, and its decision
//!   then goes to every participant; aborting at a participant's inquiry would let a
//!   participant's clock abort transactions whose votes are only slow.
//! - **Repeated messages.** A Prepare for a transaction already prepared is answered Prepared
//!   again, one already aborted Aborted again; a second Commit or Abort changes nothing.
//!
//! # Live runs
//! A client accepts transactions at run time from a local driver: `Begin(TxnSpec)` queues one
//! (the client starts it when idle), and `Outcome { txn, decision }` goes back to the driver when
//! the coordinator decides. In the model the queue is filled from the configuration at start,
//! through the same code. A live shard is [`TwoPcActor::live_shard`], a live client
//! [`TwoPcActor::live_client`]; the runtime persists a shard's [`ShardState`] storage before it
//! sends the messages of the same step.
//!
//! Not modelled: coordinator crashes (the coordinator would force its decision to storage
//! before sending it, and a prepared participant would block until it recovers; §9.6.3),
//! waiting for locks (wait-die, deadlock detection), and garbage collection of outcome records
//! (live, `decided` and the shards' records grow for ever).
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
//! - sometimes *a transaction aborts*; with timeouts, sometimes *a coordinator times out and
//!   aborts*; with timeouts over a lossy network, sometimes *a prepared participant learns the
//!   decision by inquiry* (its decision message was lost, and the coordinator sends it once).
//! - Liveness. Every timer firing is counted against the `timeouts` budget, and a crash against
//!   `crashes`, so all of this model's paths are acyclic and stateright's check and the
//!   workbench engine's exact one agree. Neither assumes fairness, and under unfair loss no
//!   transaction need ever end (every inquiry may be lost). So:
//!   - ordered network (any timeouts), or unordered without timeouts: eventually *every
//!     transaction ends everywhere*;
//!   - unordered or lossy with timeouts: eventually *every transaction ends everywhere, unless
//!     the timeouts run out*: no run stops with a transaction open while a timer could still
//!     fire, i.e. whatever was lost or overtaken, some timer that moves the transaction on is
//!     armed. (Over an unordered network a coordinator's Abort may overtake its own operation,
//!     which then takes a lock at a shard that no one will tell: the shard's timeout frees it.)
//!   - lossy without timeouts: no liveness property (the actors would wait forever).
//! - Leads-to (§9.6.3), under weak fairness: *a prepared participant learns the decision*: from
//!   every state where a shard is prepared and undecided, a state follows where none is (with
//!   the same budget escape as above over an unordered or lossy network with timeouts).

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
//! - `abort-after-vote`: on its timeout a shard aborts its prepared transactions as well as its
//!   working ones, instead of inquiring: the Commit that was merely late finds it aborted while
//!   the other shard commits (*atomicity*, *a prepared participant waits for the decision*).
//!   §9.6.3: once PREPARED, a participant can neither commit nor abort on its own.
//! - `commit-to-last-voter`: on the last Prepared the coordinator sends Commit only to the shard
//!   whose vote completed the set; the other participant stays prepared forever (*a prepared
//!   participant learns the decision*, *every transaction ends everywhere*). §9.6.3: the
//!   coordinator sends its decision to every participant.

pub mod actor;
pub mod model;

pub use actor::{
    ClientCfg, ShardCfg, ShardState, TwoPcActor, TwoPcBug, TwoPcMsg, TwoPcTimer, TxnOp, TxnSpec,
    COORDINATOR_TIMEOUT, PARTICIPANT_TIMEOUT,
};
pub use model::{TwoPcCfg, TwoPcModel};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};
use crate::harness::NetworkKind;

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
        Param {
            name: "network",
            help: "ordered (FIFO per pair, as over TCP), unordered, or lossy (unordered, any message may be lost)",
            kind: ParamKind::Choice {
                choices: NetworkKind::NAMES,
            },
        },
        Param::int(
            "timeouts",
            "timer firings in all (coordinator and participant timeouts); 0: no timers",
            0,
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
        Bug {
            name: TwoPcBug::CommitToLastVoter.name(),
            breaks: &[
                "every transaction ends everywhere",
                model::PREPARED_LEARNS,
            ],
            help: "on the last Prepared vote only that voter hears Commit; the others stay prepared",
            params: &[("clients", "1"), ("crashes", "0")],
        },
        Bug {
            name: TwoPcBug::AbortAfterVote.name(),
            breaks: &["atomicity", "a prepared participant waits for the decision"],
            help: "on its timeout a shard aborts its prepared transactions too, instead of inquiring",
            params: &[("clients", "1"), ("crashes", "0"), ("timeouts", "1")],
        },
    ];

    fn explain(m: &TwoPcModel, s: &model::TwoPcModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn view(m: &TwoPcModel, s: &model::TwoPcModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &TwoPcModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn leads_to(m: &TwoPcModel) -> Vec<crate::catalog::LeadsTo<TwoPcModel>> {
        model::leads_to(m)
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::TwoPcModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::TwoPcModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> TwoPcModel {
        let bug = bug.map(|b| {
            TwoPcBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not in TwoPcSpec::BUGS"))
        });
        TwoPcCfg {
            clients: params.int("clients") as usize,
            txns: params.int("txns") as usize,
            crashes: params.int("crashes") as usize,
            network: NetworkKind::from_name(params.choice("network"))
                .expect("validated against NetworkKind::NAMES"),
            timeouts: params.int("timeouts") as usize,
            bug,
        }
        .into_model()
    }
}

#[cfg(test)]
mod tests;
