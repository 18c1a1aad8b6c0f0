//! Zab: ZooKeeper's atomic broadcast.
//!
//! Flavio Junqueira, Benjamin Reed and Marco Serafini, "Zab: High-performance broadcast for
//! primary-backup systems" (DSN 2011), and Zab 1.0 as ZooKeeper runs it (Hunt et al., "ZooKeeper:
//! Wait-free coordination for Internet-scale systems", USENIX ATC 2010).
//!
//! # The protocol (Zab §4)
//! A leader of a new epoch goes through three phases with a quorum of followers:
//! - **discovery**: each follower sends FOLLOWERINFO with the epoch it last accepted; the leader
//!   picks a new epoch above all of a quorum's and sends LEADERINFO; each follower accepts it
//!   (on disk) and answers ACKEPOCH with its current epoch and log. The leader takes as initial
//!   history the log of the quorum member with the highest (currentEpoch, lastZxid);
//! - **synchronisation**: NEWLEADER makes each follower's log the initial history (DIFF, TRUNC
//!   or SNAP in ZooKeeper); a follower logs it and acknowledges; once a quorum has, the
//!   initial history is committed and the leader sends UPTODATE;
//! - **broadcast**: the leader proposes each client write with the next zxid (PROPOSAL); a
//!   follower logs it and answers ACK; once a quorum has logged it the leader sends COMMIT, and
//!   each server delivers its log in order up to there.
//!
//! A follower that joins an established leader goes through the same steps alone.
//!
//! # The model
//! Three servers ([`actor`]); leader election abstracted to "a quorum picks the server with the
//! highest (epoch, zxid)" ([`model`]); at most two epochs, `--txns` client writes in all and
//! `--crashes` crashes (a restart from disk).
//!
//! # Properties
//! - always *a server delivers only committed transactions (§3)*;
//! - always *committed transactions are delivered in one order by every server (total order,
//!   agreement)*;
//! - always *a committed transaction is never lost across epochs (§4: primary integrity)*;
//! - always *each server's log is in zxid order (primary order)*;
//! - sometimes *every server delivers a transaction*, *a new leader synchronises a follower
//!   that missed a commit*, *a leader of a later epoch delivers a transaction of an earlier
//!   one*.
//!
//! # Seeded bugs
//! - `sync-from-any`: the new leader takes its initial history from the quorum member with the
//!   lowest (currentEpoch, lastZxid): a committed write is lost.
//! - `diff-uncommitted`: a follower delivers what NEWLEADER brings at once, before a quorum has
//!   it (cf. ZOOKEEPER-3911): it delivers a proposal that was never committed.
//! - `commit-without-quorum`: the leader commits a proposal as soon as it has logged it; a new
//!   epoch's quorum may lack it, and the next epoch's transactions are delivered in its place
//!   (breaks total order and primary integrity; needs `--txns 2`).
//!
//! Not modelled: the election's own messages, snapshots, the client API (`checker zookeeper`).

pub mod actor;
pub mod model;
#[cfg(test)]
mod tests;

pub use actor::*;
pub use model::{ZabCfg, ZabModel};

use crate::catalog::{Bug, Param, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int(
        "txns",
        "client writes proposed in all, over every epoch",
        1,
        0,
        3,
    ),
    Param::int(
        "crashes",
        "server crashes, each a restart from disk",
        1,
        0,
        2,
    ),
];

/// The `zab` entry of the checker's registry.
pub struct ZabSpec;

impl Spec for ZabSpec {
    type Model = ZabModel;
    type State = model::ZabModelState;
    type Action = model::ZabAction;

    const NAME: &'static str = "zab";
    const PAPER: &'static str =
        "Junqueira, Reed & Serafini, Zab (DSN 2011) §§3, 4; Zab 1.0 in ZooKeeper";
    const SUMMARY: &'static str =
        "Zab: discovery, synchronisation and broadcast; committed transactions survive leader changes";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: ZabBug::SyncFromAny.name(),
            breaks: &[
                "a committed transaction is never lost across epochs (§4: primary integrity)",
            ],
            help: "the new leader takes its initial history from the quorum member with the \
                   lowest (currentEpoch, lastZxid)",
            params: &[("txns", "1")],
        },
        Bug {
            name: ZabBug::DiffUncommitted.name(),
            breaks: &["a server delivers only committed transactions (§3)"],
            help: "a follower delivers what NEWLEADER brings before a quorum has it \
                   (cf. ZOOKEEPER-3911)",
            params: &[("txns", "1")],
        },
        Bug {
            name: ZabBug::CommitWithoutQuorum.name(),
            breaks: &[
                "committed transactions are delivered in one order by every server (total order, agreement)",
                "a committed transaction is never lost across epochs (§4: primary integrity)",
            ],
            help: "the leader commits a proposal as soon as it has logged it, without a quorum \
                   of ACKs: the next epoch's quorum may lack it",
            params: &[("txns", "2")],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::ZabModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::ZabModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &ZabModel, s: &model::ZabModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &ZabModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(m: &ZabModel, s: &model::ZabModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn build(params: &Params, bug: Option<&'static str>) -> ZabModel {
        let bug = bug.map(|b| {
            ZabBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a ZabBug"))
        });
        ZabCfg {
            txns: params.int("txns") as u8,
            crashes: params.int("crashes") as usize,
            bug,
        }
        .into_model()
    }
}
