//! Chain replication and CRAQ: a key-value store replicated on a chain of nodes, with a master
//! that reconfigures the chain when a node fails.
//!
//! Robbert van Renesse and Fred B. Schneider, "Chain Replication for Supporting High Throughput
//! and Availability" (OSDI 2004), §§2, 3 ("CR" below); Jeff Terrace and Michael J. Freedman,
//! "Object Storage on CRAQ: High-throughput chain replication for read-mostly workloads" (USENIX
//! ATC 2009), §§2.3, 2.4 ("CRAQ"). The registry has two entries on one model: `chain` (CR) and
//! `craq`.
//!
//! # The protocol
//! Actors ([`actor`]): a master, the chain nodes, and clients. Every actor takes its peers from
//! its configuration and from the master's [`ChainMsg::Chain`] messages, never from indices.
//!
//! - **Writes** (CR §2). A client sends its write to the head. The head runs it on its newest
//!   value, numbers the resulting update (`seq_no`, chain-wide, from 1) and forwards it; each
//!   node applies the next update (its `Hist`) and forwards it to its successor. The tail
//!   answers the client and sends an `Ack` back up the chain; each node prunes its `Sent` set
//!   (the updates it forwarded that have not reached the tail) and passes the ack on.
//! - **Reads.** CR (§2): at the tail, from its history. CRAQ (§2.3): at any node; clients spread
//!   their reads over the chain. A node whose newest version of the key is clean (not in its
//!   `Sent`) answers it; one whose newest version is dirty asks the tail for the committed
//!   version number (`VersionQuery`) and answers with that version, which it has.
//! - **Failures** (CR §3). Nodes are fail-stop: a failed node stops for good, and the master
//!   learns of it (in the model the failing node reports itself as it stops; over TCP a failure
//!   detector would). The master removes it and sends the new chain to the remaining nodes and
//!   to the clients. Then:
//!   - *head failed*: its successor is the head; requests only the old head had are lost, and
//!     their clients send them again to the new head, which runs a request at most once;
//!   - *tail failed*: its predecessor is the tail; what it had sent has now reached the tail, so
//!     it answers those clients (they take the first answer) and acks back;
//!   - *middle node failed*: its predecessor resends all of `Sent` to its new successor, which
//!     applies only the updates it lacks (§3, Figure 4), and the successor sends its new
//!     predecessor its ack level (the acks it had sent the failed node are lost).
//!
//!   A node that gets a request for a role it does not have yet (a write at a node that is
//!   about to become the head, a CR read or version query at one about to become the tail)
//!   keeps it until the master's message arrives. Links are FIFO (`Network::new_ordered`), as
//!   both papers assume; messages a node sent before it failed are still delivered, and those
//!   sent to it are lost.
//! - **Extending a chain** (CR §3; `rejoins`). A failed node may come back, empty, and ask the
//!   master to `Join`; the master adds it at the tail (removing it first if it is still in the
//!   chain). The old tail, on hearing of the new chain, sends it a [`ChainMsg::Handover`] with
//!   its history, then forwards updates to it as to any successor, and passes on CR reads and
//!   version queries from clients that still take it for the tail. The new node serves nothing
//!   until the handover arrives; if its predecessor changes first (the old tail failed), it
//!   starts again and asks to join once more.
//! - **Chain numbers.** The master numbers its chains (`epoch`) and everyone ignores an older
//!   one. A node takes an update only from its predecessor, or from a node that knows a newer
//!   chain than its own (the sender is then its predecessor): a node with an old chain would
//!   otherwise send an update past the node added since, and the tail would have an update the
//!   node before it lacks.
//!
//! # The workload
//! One key `x`. Client 0 writes `a` and then reads; client 1 reads twice (in CRAQ at the head
//! and then at the next node); client 2 writes `c` and then reads. A client's request id `n`
//! goes, when reads are spread, to the node `n - 1` positions from the head.
//!
//! # Properties
//! - always *linearizable client history* (stateright's `LinearizabilityTester` against the
//!   key-value store the Raft model uses, [`crate::raft::kv::KvData`]);
//! - always *Update Propagation Invariant* (CR §3): for live nodes `i <= j` (in the master's
//!   chain), `Hist_j ⪯ Hist_i`;
//! - always *Inprocess Requests Invariant* (CR §3): for a live node `i` and the next live node
//!   `j`, `Hist_i = Hist_j ⊕ Sent_i`;
//! - always *acknowledged writes survive reconfiguration*: a write acknowledged to its client is
//!   in the tail's history, whatever has failed;
//! - always (CRAQ) *no clean version is newer than the tail's*;
//! - sometimes *a write is acknowledged*; with three nodes and a failure, *a middle node fails
//!   and its predecessor resends*; with a rejoin, *a node added at the tail gets the old tail's
//!   history*; in CRAQ, *a non-tail node answers a read itself* and *a node asks the tail for
//!   the committed version*;
//! - eventually *every operation returns, every version is clean and every node that came back
//!   serves* (failures and rejoins are counted, so every path of this model is acyclic, and the
//!   workbench's engine decides it exactly).
//!
//! The invariants range over the nodes that serve: in the master's chain, and not waiting for a
//! handover (until it arrives the old tail is the tail).
//!
//! # Seeded bugs
//! - `craq-dirty-read` (CRAQ): a node answers with its dirty version without asking the tail.
//! - `no-resend`: the predecessor of a failed middle node does not resend `Sent`: the update is
//!   lost, the client is never answered and the chain stalls behind the gap.
//! - `read-any-replica` (CR): any node answers reads, and clients spread them: a read at the
//!   head sees a write the tail has not, and a later read at the tail does not (the reason for
//!   CRAQ's version query).
//! - `ack-before-tail`: the head answers a write at once; a read at the tail then misses it,
//!   and the acknowledged write is not at the tail.
//! - `serve-before-handover`: a node added at the tail answers reads before the old tail's
//!   history reaches it: it answers from an empty store.
//! - `no-handover`: the old tail never sends the node added after it its history: the new
//!   node waits forever, and the chain never serves from it.
//!
//! Over TCP the same actors also resend what lost messages leave stuck (`NodeCfg::resend`, off
//! here: these links lose nothing) and retry client requests on a timeout.
//!
//! Not modelled: a master that fails (the papers replicate it with Paxos), lost messages and
//! client retries, a rejoined node failing again, CRAQ's multi-object and wide-area extensions
//! (§§2.4, 3) and its eventual-consistency read modes.

pub mod actor;
pub mod model;

pub use actor::{
    ChainActor, ChainBug, ChainMsg, ChainState, ChainTimer, ClientCfg, ClientState, MasterCfg,
    MasterState, Mode, NodeCfg, NodeState, ReadAt, SeqNo, Update,
};
pub use model::{ChainCfg, ChainModel};

use crate::catalog::{Bug, Param, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int("nodes", "chain nodes", 3, 2, 4),
    Param::int(
        "clients",
        "clients (0 writes a then reads; 1 reads twice; 2 writes c then reads)",
        2,
        1,
        3,
    ),
    Param::int(
        "failures",
        "node failures in all (fail-stop; at most nodes - 1)",
        1,
        0,
        3,
    ),
    Param::int(
        "rejoins",
        "failed nodes that come back empty and join at the tail (CR §3, extending a chain)",
        0,
        0,
        1,
    ),
];

fn build(mode: Mode, params: &Params, bug: Option<&'static str>) -> ChainModel {
    let bug = bug.map(|b| {
        ChainBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a ChainBug"))
    });
    ChainCfg {
        mode,
        nodes: params.int("nodes") as usize,
        clients: params.int("clients") as usize,
        failures: params.int("failures") as usize,
        rejoins: params.int("rejoins") as usize,
        bug,
    }
    .into_model()
}

/// The seeded bugs both entries take.
const NO_RESEND: Bug = Bug {
    name: ChainBug::NoResend.name(),
    breaks: &[
        "every operation returns, every version is clean and every node that came back serves",
        "a middle node fails and its predecessor resends (CR §3)",
    ],
    help: "after a middle node fails its predecessor does not resend Sent: a lost update",
    params: &[("nodes", "3"), ("clients", "1"), ("failures", "1")],
};

const ACK_BEFORE_TAIL: Bug = Bug {
    name: ChainBug::AckBeforeTail.name(),
    breaks: &[
        "linearizable client history",
        "acknowledged writes survive reconfiguration",
    ],
    help: "the head acknowledges a write before the tail has it",
    params: &[("nodes", "2"), ("clients", "1"), ("failures", "0")],
};

const SERVE_BEFORE_HANDOVER: Bug = Bug {
    name: ChainBug::ServeBeforeHandover.name(),
    breaks: &["linearizable client history"],
    help: "a node added at the tail serves reads before it has the old tail's history",
    params: &[
        ("nodes", "2"),
        ("clients", "1"),
        ("failures", "1"),
        ("rejoins", "1"),
    ],
};

const NO_HANDOVER: Bug = Bug {
    name: ChainBug::NoHandover.name(),
    breaks: &[
        "every operation returns, every version is clean and every node that came back serves",
        "a node added at the tail gets the old tail's history (CR §3)",
    ],
    help: "the old tail never hands its history to the node added after it",
    params: &[
        ("nodes", "2"),
        ("clients", "1"),
        ("failures", "1"),
        ("rejoins", "1"),
    ],
};

/// The `chain` entry of the checker's registry: chain replication.
pub struct ChainSpec;

impl Spec for ChainSpec {
    type Model = ChainModel;
    type State = model::ChainModelState;
    type Action = model::ChainAction;

    const NAME: &'static str = "chain";
    const PAPER: &'static str =
        "van Renesse & Schneider, Chain Replication for Supporting High Throughput and Availability (OSDI 2004) §§2, 3";
    const SUMMARY: &'static str =
        "Chain replication: writes at the head, reads at the tail, fail-stop nodes removed by a master";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        NO_RESEND,
        Bug {
            name: ChainBug::ReadAnyReplica.name(),
            breaks: &["linearizable client history"],
            help: "any node answers reads: a stale read after a dirty one",
            params: &[("nodes", "2"), ("clients", "2"), ("failures", "0")],
        },
        ACK_BEFORE_TAIL,
        SERVE_BEFORE_HANDOVER,
        NO_HANDOVER,
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::ChainModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::ChainModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &ChainModel, s: &model::ChainModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &ChainModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> ChainModel {
        build(Mode::Cr, params, bug)
    }
}

/// The `craq` entry of the checker's registry: chain replication with apportioned queries.
pub struct CraqSpec;

impl Spec for CraqSpec {
    type Model = ChainModel;
    type State = model::ChainModelState;
    type Action = model::ChainAction;

    const NAME: &'static str = "craq";
    const PAPER: &'static str =
        "Terrace & Freedman, Object Storage on CRAQ (USENIX ATC 2009) §§2.3, 2.4; van Renesse & Schneider §3";
    const SUMMARY: &'static str =
        "CRAQ: reads at any node, clean versions answered locally, dirty ones confirmed with the tail";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: ChainBug::CraqDirtyRead.name(),
            breaks: &[
                "linearizable client history",
                "a node asks the tail for the committed version (CRAQ §2.3)",
            ],
            help: "a node answers with its dirty version without asking the tail",
            params: &[("nodes", "2"), ("clients", "2"), ("failures", "0")],
        },
        NO_RESEND,
        ACK_BEFORE_TAIL,
        SERVE_BEFORE_HANDOVER,
        NO_HANDOVER,
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::ChainModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::ChainModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &ChainModel, s: &model::ChainModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &ChainModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> ChainModel {
        build(Mode::Craq, params, bug)
    }
}

#[cfg(test)]
mod tests;
