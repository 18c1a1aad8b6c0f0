//! ZooKeeper's client API, its lock recipe, and what its clients may rely on.
//!
//! Patrick Hunt, Mahadev Konar, Flavio Junqueira and Benjamin Reed, "ZooKeeper: Wait-free
//! coordination for Internet-scale systems" (USENIX ATC 2010), §§2.1-2.4 and §4.4 (`sync`).
//!
//! # The model
//! Zab is abstracted as one linearizable log ([`actor`]): the leader orders every write (it
//! checks a `setData`'s expected version against every write ordered before) and sends its
//! log, in order, to the follower. Each server keeps a replica of the tree (the lock's
//! children and one data znode, `/reg`), applies the log in order, answers reads from its
//! replica at once, and keeps its clients' watches; a write is answered by the server it came
//! in at, once that server has applied it, and a refused `setData` takes a zxid as an
//! `ErrorTxn`, as in ZooKeeper. §2.3's FIFO client order: a server holds a session's requests
//! behind the session's write or `sync` in flight. Watch events go out when the transaction
//! that fires them is applied, before the write's reply.
//!
//! Two workloads, explored side by side (the first step of a run picks one; their znodes are
//! disjoint, so interleaving them would only renumber zxids):
//! - **the lock** (`--clients`, two on the leader and one on the follower) runs "Locks without
//!   herd effect" (§2.4) once:
//!   1. `n = create(l + "/lock-", EPHEMERAL|SEQUENTIAL)`;
//!   2. `C = getChildren(l, false)`;
//!   3. if `n` is lowest in `C`, hold the lock (then release it: `delete(n)`);
//!   4. `p` = the node in `C` just before `n`;
//!   5. if `exists(p, true)`, wait for the watch event; 6. go to 2.
//!
//!   The leader may expire a session at any time (`--expiries`): the `closeSession`
//!   transaction deletes the session's ephemeral nodes, and the leader refuses the session's
//!   later requests.
//! - **the registers** (`--registers`): `r0`, on the follower, issues `sync`, `getData(watch)`,
//!   `setData(1, version 0)`, `getData`; `r1`, on the leader, `setData(2, version 0)`, `getData`.
//!   Each issues its next request whenever it likes, answered or not (the asynchronous API
//!   pipelines). `r1` may move its session to another server (`--moves`), carrying the last
//!   zxid it saw and its pending watch (`setWatches`); a server that has not applied that zxid
//!   refuses it, and it tries again. The leader may be deposed once (`--leader-changes`): the
//!   others elect a standby server, which leads the next epoch from the committed log (Zab §4;
//!   the rest of its quorum is not modelled). The deposed leader does not know: its proposals
//!   never commit, but it still answers its follower's `sync` from its frozen log.
//!
//! # Properties
//! - always *the lock recipe has at most one holder (§2.4)* (holders whose session is alive);
//! - always *sequential suffixes are unique and increasing (§2.1)*;
//! - always *ephemerals die with their session (§2.1)*;
//! - always *a change to the lock's children wakes at most one waiter (§2.4)*: "the removal
//!   of a znode only causes one client to wake up, since each znode is watched by exactly one
//!   other client" (no server fires two waiters' watches for one transaction);
//! - always *writes are linearizable (§2.3)*: the history of `setData` calls (expected
//!   version) and returns (new version, or `BadVersion`), each call its own process, checked
//!   against [`properties::linearizability::Znode`];
//! - always *each client's operations take effect in its FIFO order (§2.3)*: a register
//!   client's replies come in its order, and their zxids never go back, across moves too;
//! - always *a watch event reaches a client before it can read the new data (§2.3)*: no reply
//!   shows `/reg` past the version a pending data watch was set at before its event arrives;
//! - sometimes *every client takes the lock in turn*, *a waiter whose predecessor's session
//!   expired waits again on the node below (§2.4)*, *a session expires and its ephemeral node
//!   is removed*, *a waiter is woken only by its predecessor (§2.4: no herd effect)* (a
//!   deletion fires one watch while another waiter's stays), *of two setData with one expected
//!   version, one gets BadVersion (§2.2)*, *a read pipelined behind its client's write sees it
//!   (§2.3)*, *a server refuses a client that has seen a later zxid (§2.3)*, *a client moves to
//!   another server and is served there*, *a watch event reaches its client, which then reads
//!   the new data (§2.3)*;
//! - sometimes *a sync followed by a read is stale across a leader change (§2.3)*: ZooKeeper's
//!   documented behaviour, expected to be found. §4.4: a follower's `sync` is ordered by its
//!   leader, which does not make sure it still leads (no null transaction: "timeouts are set
//!   such that leaders realize they are not leaders before followers abandon them");
//!   ZOOKEEPER-1675 ("Make sync a quorum operation") proposes the fix, opt-in. Here `r1`
//!   writes at the new leader and is answered; then `r0` syncs through the deposed one and
//!   reads the old version.
//!
//! # Seeded bugs
//! - `lock-no-recheck`: the recipe takes the lock as soon as its predecessor vanishes, without
//!   listing the children again: two holders when a waiting predecessor's session expires.
//! - `create-after-close`: the leader orders a create from a session it already closed: the
//!   ephemeral outlives its session (cf. ZOOKEEPER-1208).
//! - `local-sequence`: the follower numbers a sequential node from its own replica, which may
//!   lag: two nodes get one number, and both their clients see themselves lowest.
//! - `herd-effect`: the recipe watches the lock's children (`getChildren(l, true)`) instead of
//!   its predecessor: one release wakes two waiters, and no waiter is ever woken alone.
//! - `version-check-at-follower`: the follower checks `setData`'s expected version against its
//!   lagging replica and forwards the write unconditionally: `r0`'s and `r1`'s writes, both at
//!   version 0, both succeed. Writes are not linearizable.
//! - `read-ahead-of-write`: a server answers a read at once while the session's earlier write
//!   is in flight: `r0`'s last `getData` comes back before its `setData`, at an older zxid.
//! - `reconnect-ahead`: a server accepts a session whose last zxid is ahead of its own: `r1`
//!   writes at the leader, moves to the lagging follower and reads there an older zxid.
//! - `watch-after-reply`: a server sends a write's reply before the watch events it fires:
//!   `r0` reads its own new version before its data watch's event.
//!
//! Not yet modelled: `delete` with a version, the `exists` and `getChildren` watches of the
//! register clients, session expiry of register clients, a second leader change, and the
//! deposed leader's own clients moving on (their writes hang).

pub mod actor;
pub mod model;
#[cfg(test)]
mod tests;

pub use actor::*;
pub use model::{ZkCfg, ZkModel};

use crate::catalog::{Bug, Param, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int("clients", "clients running the lock recipe", 3, 0, 3),
    Param::int(
        "expiries",
        "lock clients' sessions the leader may expire",
        1,
        0,
        2,
    ),
    Param::int(
        "registers",
        "register clients pipelining setData, getData and sync on one znode",
        2,
        0,
        2,
    ),
    Param::int(
        "moves",
        "register sessions moved to another server, in all",
        1,
        0,
        2,
    ),
    Param::int("leader-changes", "times the leader may be deposed", 1, 0, 1),
];

/// The lock recipe's properties and the register clients', named once for the bug table.
const ONE_HOLDER: &str = "the lock recipe has at most one holder (§2.4)";
const LINEARIZABLE: &str = "writes are linearizable (§2.3)";
const FIFO: &str = "each client's operations take effect in its FIFO order (§2.3)";
const WATCH: &str = "a watch event reaches a client before it can read the new data (§2.3)";

/// The `zookeeper` entry of the checker's registry.
pub struct ZkSpec;

impl Spec for ZkSpec {
    type Model = ZkModel;
    type State = model::ZkModelState;
    type Action = model::ZkAction;

    const NAME: &'static str = "zookeeper";
    const PAPER: &'static str =
        "Hunt, Konar, Junqueira & Reed, ZooKeeper (USENIX ATC 2010) §§2.1-2.4, 4.4";
    const SUMMARY: &'static str =
        "ZooKeeper over one log: sessions, the lock recipe, versioned setData, watches, sync across a leader change";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: ZkBug::LockNoRecheck.name(),
            breaks: &[
                ONE_HOLDER,
                "a waiter whose predecessor's session expired waits again on the node below (§2.4)",
            ],
            help: "the recipe takes the lock when its predecessor vanishes, without listing again",
            params: &[("registers", "0")],
        },
        Bug {
            name: ZkBug::CreateAfterClose.name(),
            breaks: &["ephemerals die with their session (§2.1)"],
            help: "the leader orders a create from a session it already closed",
            params: &[("registers", "0")],
        },
        Bug {
            name: ZkBug::LocalSequence.name(),
            breaks: &[
                "sequential suffixes are unique and increasing (§2.1)",
                ONE_HOLDER,
            ],
            help: "the follower numbers sequential nodes from its own, lagging replica",
            params: &[("registers", "0")],
        },
        Bug {
            name: ZkBug::HerdEffect.name(),
            breaks: &[
                "a change to the lock's children wakes at most one waiter (§2.4)",
                "a waiter is woken only by its predecessor (§2.4: no herd effect)",
            ],
            help: "the recipe watches the lock's children: every change wakes every waiter",
            params: &[("registers", "0"), ("expiries", "0")],
        },
        Bug {
            name: ZkBug::VersionCheckAtFollower.name(),
            breaks: &[LINEARIZABLE],
            help: "a follower checks setData's version on its lagging replica, then forwards it unconditionally",
            params: &[("clients", "0"), ("leader-changes", "0"), ("moves", "0")],
        },
        Bug {
            name: ZkBug::ReadAheadOfWrite.name(),
            breaks: &[FIFO],
            help: "a server answers a session's read while the session's earlier write is in flight",
            params: &[("clients", "0"), ("leader-changes", "0"), ("moves", "0")],
        },
        Bug {
            name: ZkBug::ReconnectAhead.name(),
            breaks: &[
                FIFO,
                "a server refuses a client that has seen a later zxid (§2.3)",
            ],
            help: "a server accepts a session whose last seen zxid is ahead of its own",
            params: &[("clients", "0"), ("leader-changes", "0")],
        },
        Bug {
            name: ZkBug::WatchAfterReply.name(),
            breaks: &[WATCH],
            help: "a server sends a write's reply before the watch events it fires",
            params: &[("clients", "0"), ("leader-changes", "0"), ("moves", "0")],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::ZkModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::ZkModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &ZkModel, s: &model::ZkModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &ZkModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(m: &ZkModel, s: &model::ZkModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn build(params: &Params, bug: Option<&'static str>) -> ZkModel {
        let bug = bug.map(|b| {
            ZkBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a ZkBug"))
        });
        ZkCfg {
            clients: params.int("clients") as u8,
            expiries: params.int("expiries") as u8,
            registers: params.int("registers") as u8,
            moves: params.int("moves") as u8,
            leader_changes: params.int("leader-changes") as u8,
            bug,
        }
        .into_model()
    }
}
