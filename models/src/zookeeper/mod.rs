//! ZooKeeper's client API and its lock recipe.
//!
//! Patrick Hunt, Mahadev Konar, Flavio Junqueira and Benjamin Reed, "ZooKeeper: Wait-free
//! coordination for Internet-scale systems" (USENIX ATC 2010), §§2.1-2.4.
//!
//! # The model
//! Zab is abstracted as one linearizable log ([`actor`]): the leader orders every write and
//! sends its log, in order, to both servers (itself and a follower). Each server keeps a
//! replica of the lock's children, applies the log in order, answers reads from its replica,
//! and keeps its clients' watches; a write is answered by the client's server once it has
//! applied it. Sessions: the leader may expire a client's session at any time (it stopped
//! hearing from the client); the `closeSession` transaction deletes the session's ephemeral
//! nodes, and the leader refuses the session's later requests. Clients (`--clients`, each
//! connected to one server) run "Locks without herd effect" (§2.4) once:
//! 1. `n = create(l + "/lock-", EPHEMERAL|SEQUENTIAL)`;
//! 2. `C = getChildren(l, false)`;
//! 3. if `n` is lowest in `C`, hold the lock (then release it: `delete(n)`);
//! 4. `p` = the node in `C` just before `n`;
//! 5. if `exists(p, true)`, wait for the watch event; 6. go to 2.
//!
//! # Properties
//! - always *the lock recipe has at most one holder (§2.4)* (holders whose session is alive);
//! - always *sequential suffixes are unique and increasing (§2.1)*;
//! - always *ephemerals die with their session (§2.1)*;
//! - sometimes *every client takes the lock in turn*, *a waiter whose predecessor's session
//!   expired waits again on the node below (§2.4)*, *a session expires and its ephemeral node
//!   is removed*.
//!
//! # Seeded bugs
//! - `lock-no-recheck`: the recipe takes the lock as soon as its predecessor vanishes, without
//!   listing the children again: two holders when a waiting predecessor's session expires.
//! - `create-after-close`: the leader orders a create from a session it already closed: the
//!   ephemeral outlives its session (cf. ZOOKEEPER-1208).
//! - `local-sequence`: the follower numbers a sequential node from its own replica, which may
//!   lag: two nodes get one number, and both their clients see themselves lowest.
//!
//! Not yet modelled: leader changes (and so `sync`'s documented staleness across them), a
//! client reconnecting to another server (`reconnect-ahead`), data and versions (`setData`),
//! watches other than `exists`.

pub mod actor;
pub mod model;
#[cfg(test)]
mod tests;

pub use actor::*;
pub use model::{ZkCfg, ZkModel};

use crate::catalog::{Bug, Param, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int("clients", "clients running the lock recipe", 3, 0, 3),
    Param::int("expiries", "lock clients' sessions the leader may expire", 1, 0, 2),
    Param::int(
        "registers",
        "register clients pipelining setData, getData and sync on one znode",
        2,
        0,
        2,
    ),
    Param::int("moves", "register sessions moved to another server, in all", 1, 0, 2),
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
        "Hunt, Konar, Junqueira & Reed, ZooKeeper (USENIX ATC 2010) §§2.1-2.4";
    const SUMMARY: &'static str =
        "ZooKeeper: sessions, ephemeral sequential nodes, watches and the lock recipe over one log";
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
            breaks: &["a waiter is woken only by its predecessor (§2.4: no herd effect)"],
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
