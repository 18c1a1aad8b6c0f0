//! Frangipani: file servers that share one virtual disk (Petal), keep their caches coherent with
//! a distributed lock service, log their metadata updates to Petal ahead of writing them, and
//! recover a failed server by replaying its log.
//!
//! Chandramohan A. Thekkath, Timothy Mann and Edward K. Lee, "Frangipani: A Scalable Distributed
//! File System" (SOSP 1997), §§4-6.
//!
//! # The protocol
//! Actors ([`actor`]): two file servers (`FS0`, `FS1`), the lock server (`LS2`) and Petal (`P3`),
//! over FIFO links. One block (a metadata block, with its version number) and its lock.
//!
//! - **Locks** (§6). Read/write locks: many readers or one writer. A server's clerk sends
//!   `Request`; the lock server `Grant`s it when no other server holds a conflicting mode, and
//!   otherwise sends the holder a `Revoke` (asking it to downgrade to a read lock, or to release
//!   entirely), which the holder answers with `Release` once it has complied. Requests are
//!   served first come, first served.
//! - **Cache coherence** (§5). A server caches the block under its lock. A write goes to the
//!   cache (dirty) with the next version number. Before it gives up a write lock, or downgrades
//!   it, a server writes its dirty data to Petal; a server that gives up a lock entirely
//!   invalidates its cached copy. The update demon (`Sync`) also writes dirty data back at any
//!   time (§5: every 30 seconds).
//! - **Logging and recovery** (§4). Every update's log record (the new version and value) goes
//!   to the server's own log region in Petal before the block itself; a write completes when
//!   its record is in Petal (the model logs synchronously, as an `fsync` would). When a
//!   server's lease expires, the lock server asks a recovery demon on the other server to replay
//!   its log (`Recover`), one recovery per log, once: the demon reads the log and the block and
//!   writes each record whose version is newer than the block's (§4: "a record is replayed only
//!   if its version is greater than the block's version"), then tells the lock server
//!   (`Recovered`), which drops the failed server's locks and grants waiting requests.
//! - **Leases** (§6). A server holds its locks under a lease, renewed while it is in touch with
//!   the lock service. Time is an abstract clock of lease ticks (`LeaseTick`): a server in touch
//!   renews in time, so only a server cut off from the lock service sees its lease run down
//!   (`--lease` ticks, default 2). Before any write to Petal, log or block, a server checks that
//!   its lease is valid and will be for `--margin` more ticks (default 1; the paper's 30 s lease
//!   and 15 s margin). At zero it discards its locks and cache. The lock server finds a lease
//!   expired only once it has run out, or the server crashed (no clock drift), and then starts
//!   recovery.
//!
//! # Bounds, faults and reductions
//! `--ops` (default 2) operations per server: `FS0` writes 1 (then reads), `FS1` reads (then
//! writes 2). One fault (`--fault`): a file server crashes (fail-stop: it stays down, messages
//! to it are lost), or one is cut off from the lock service for good while it can still reach
//! Petal (a zombie). The reductions:
//! - Petal answers in the step it is asked (the Harness's immediate delivery): its replies, log
//!   appends, reads and a demon's replay writes. Petal is one synchronous disk here; what matters
//!   of its timing is the one delay §6 worries about, that of a server's block write, which
//!   the network may hold. A lease tick is not explored while a write checked `--delay` ticks
//!   ago (default 1) is still in flight: the network's delay is bounded, and a margin at least
//!   as long covers it, the paper's assumption. `--margin 0` lets a write land late.
//! - A server does not crash with a block write in flight (that write lands before its lease
//!   could run out; a write landing late is the zombie's case, which the cut explores).
//! - The update demon runs only when there is dirty data to write; a tick only at a cut server.
//!
//! # Properties
//! - always *no conflicting locks are held* (§6), counting a lock only at a server that is up
//!   and whose lease has not run out; sometimes *two servers hold the read lock at once*;
//! - always *a server writes its dirty data to Petal and invalidates its cache before it gives
//!   a lock up* (§5), as an invariant of each server's state: without the write lock no dirty
//!   data, without a lock no cached copy; sometimes *a revoked server writes its dirty data to
//!   Petal and keeps a read lock*;
//! - always *a read returns the last completed write*, a history variable; sometimes *a read
//!   returns the other server's write*;
//! - always *log replay applies a record only when its version is newer than the block's, one
//!   recovery at a time per log* (§4); sometimes *recovery replays a crashed server's log and the
//!   survivor gets the lock*, and *log replay skips a record the block already
//!   has*;
//! - always *no Petal write from a server lands after its lease expired* (§6), as the lock
//!   server saw it (it has started recovery); sometimes *a cut-off server's lease runs into the
//!   margin with dirty data unwritten*;
//! - eventually *every lock request of a server that is up and in touch with the lock service
//!   is granted*, under weak fairness: deliveries and timers are fair, the crash and the cut owe
//!   nothing. Every path is finite, so the workbench's engine decides it exactly.
//!
//! # Seeded bugs
//! - `release-without-flush`: a revoked server gives the lock up at once, its dirty data
//!   unwritten and its copy still cached: the other server reads the old block from Petal (a
//!   stale read).
//! - `replay-without-version`: the recovery demon replays every record: after `FS1` has written
//!   2 (version 2), `FS0` crashes, and the replay of its record (version 1) puts 1 back (a lost
//!   update).
//! - `write-after-lease-expiry`: the lease check before a Petal write omits the margin; a cut-off
//!   server's write checked with one tick left is still in the network when the lease runs out,
//!   the lock server recovers the log and gives the lock away, and the zombie's write lands.
//! - `grant-without-revoke`: the lock server grants a conflicting request at once.
//! - `no-lease-expiry`: the lock server never reclaims a failed server's locks: a crashed
//!   writer's lock is never granted again.
//!
//! Not modelled: more than one block and lock (the paper's locks cover files and directories,
//! and a log record may touch several blocks), lease renewal messages (a server in touch
//! renews in time), clock drift, log trimming and the log's circular buffer, Petal's own
//! replication, and a failed server coming back.
//!
//! Over TCP ([`tcp`]), the same actors run once per file, with lease renewals on a clock,
//! operations from clients, Petal on disk and a restarted server that joins again; the block's
//! contents are a type parameter ([`actor::Contents`]: a [`Value`] here, a string there).

pub mod actor;
pub mod model;
pub mod tcp;

pub use actor::{
    Cached, FrangipaniActor, FrangipaniBug, FrangipaniMsg, FrangipaniState, FrangipaniTimer,
    LockServerCfg, LockServerState, LogRecord, Mode, Op, PetalCfg, PetalState, ServerCfg,
    ServerState, Ticks, Value, Version,
};
pub use model::{Fault, FrangipaniCfg, FrangipaniModel};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

/// The `frangipani` entry of the checker's registry.
pub struct FrangipaniSpec;

impl Spec for FrangipaniSpec {
    type Model = FrangipaniModel;
    type State = model::FrangipaniModelState;
    type Action = model::FrangipaniAction;

    const NAME: &'static str = "frangipani";
    const PAPER: &'static str =
        "Thekkath, Mann & Lee, Frangipani: A Scalable Distributed File System (SOSP 1997) §§4-6";
    const SUMMARY: &'static str = "Frangipani: read/write locks with revoke, cache coherence, write-ahead logs in Petal replayed by version, leases with a margin";
    const PARAMS: &'static [Param] = &[
        Param::int(
            "ops",
            "operations per server: FS0 writes 1 (then reads), FS1 reads (then writes 2)",
            2,
            1,
            2,
        ),
        Param::int("lease", "a lease's length, in ticks", 2, 1, 3),
        Param::int(
            "margin",
            "lease ticks a Petal write needs left (§6)",
            1,
            0,
            2,
        ),
        Param::int(
            "delay",
            "the most lease ticks a block write spends in the network",
            1,
            0,
            2,
        ),
        Param {
            name: "fault",
            help: "the one fault: either (a file server crashes or is cut off from the lock service), crash, cut, or none",
            kind: ParamKind::Choice {
                choices: Fault::NAMES,
            },
        },
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: FrangipaniBug::ReleaseWithoutFlush.name(),
            breaks: &[
                model::FLUSH_BEFORE_RELEASE,
                model::READ_LAST_WRITE,
                model::FLUSHED_AND_DOWNGRADED,
            ],
            help: "a revoked server gives the lock up without writing its dirty data or invalidating its cache",
            params: &[("fault", "none")],
        },
        Bug {
            name: FrangipaniBug::ReplayWithoutVersion.name(),
            breaks: &[model::REPLAY_NEWER, model::REPLAY_SKIPS],
            help: "the recovery demon replays every log record, whatever the block's version",
            params: &[("fault", "crash")],
        },
        Bug {
            name: FrangipaniBug::WriteAfterLeaseExpiry.name(),
            breaks: &[model::NO_WRITE_AFTER_EXPIRY],
            help: "a server checks its lease before a Petal write without the margin",
            params: &[("fault", "cut")],
        },
        Bug {
            name: FrangipaniBug::GrantWithoutRevoke.name(),
            breaks: &[model::NO_CONFLICTING_LOCKS, model::READ_LAST_WRITE],
            help: "the lock server grants a conflicting lock without revoking the holder's",
            params: &[("fault", "none")],
        },
        Bug {
            name: FrangipaniBug::NoLeaseExpiry.name(),
            breaks: &[
                model::EVERY_REQUEST_GRANTED,
                model::RECOVERY_THEN_SURVIVOR,
            ],
            help: "the lock server never reclaims the locks of a server whose lease expired",
            params: &[("fault", "crash")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> FrangipaniModel {
        let bug = bug.map(|b| {
            FrangipaniBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not a FrangipaniBug"))
        });
        FrangipaniCfg {
            ops: params.int("ops") as usize,
            lease: params.int("lease") as Ticks,
            margin: params.int("margin") as Ticks,
            delay: params.int("delay") as Ticks,
            fault: Fault::from_name(params.choice("fault"))
                .expect("validated against Fault::NAMES"),
            bug,
        }
        .into_model()
    }

    /// Deliveries and timers are fair, but the cut (a server's `Cut` timer) is the
    /// environment's choice, like the crash: no run owes it.
    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| match a {
            stateright::actor::ActorModelAction::Timeout(_, FrangipaniTimer::Cut) => None,
            a => crate::catalog::actor_fair_class(a),
        })
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::FrangipaniModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::FrangipaniModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &FrangipaniModel, s: &model::FrangipaniModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &FrangipaniModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(
        m: &FrangipaniModel,
        s: &model::FrangipaniModelState,
        property: &str,
    ) -> Option<String> {
        model::explain(m, s, property)
    }
}

#[cfg(test)]
mod tests;
