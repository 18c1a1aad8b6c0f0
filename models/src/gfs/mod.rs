//! GFS: record append under leases and chunk version numbers.
//!
//! Sanjay Ghemawat, Howard Gobioff and Shun-Tak Leung, "The Google File System" (SOSP 2003).
//!
//! # The problem (§2.7, §3.3)
//! Many clients append records to one file at once (producer-consumer queues, MapReduce
//! outputs). GFS does not make them agree on an order first: each record is appended
//! *atomically at least once*, at an offset GFS chooses. The price is in Table 1: a region may
//! be *defined* (every replica has the record), *inconsistent* (an append that failed on some
//! replica), or padding; a record may appear more than once. Readers skip padding and
//! duplicates with checksums and unique ids.
//!
//! # The protocol
//! Actors ([`actor`]): the master, three chunkservers, and clients that each append one record.
//!
//! - **Leases** (§3.1). For each chunk the master grants a lease to one replica, the primary,
//!   which picks the order of mutations. A lease runs out unless extended; the master does not
//!   grant another until the old one has run out by its clock, even if the primary does not
//!   answer, and it may revoke a lease before then.
//! - **Version numbers** (§4.5). Before a new lease the master increases the chunk's version and
//!   tells the up-to-date replicas, which record it. A chunkserver that is down misses it; when
//!   it comes back and reports its chunks, the master sees the old version, treats the replica
//!   as stale, and has it deleted.
//! - **Record append** (§3.3). The client asks the master for the primary of the file's last
//!   chunk and sends it the record. If the record does not fit, the primary pads the chunk to
//!   its end, has the secondaries do the same, and tells the client to retry on the next chunk.
//!   Otherwise it writes at the end of its replica and orders the secondaries to write at that
//!   offset. If a secondary fails, the append fails, and the client retries: the record may be
//!   written again further on, and the failed region stays inconsistent.
//! - **Failure detection** (§2.6.2, §4.3). The master stops hearing HeartBeats from a chunkserver
//!   that is down: it takes it off its chunks' locations and revokes a lease that has it as a
//!   secondary, so that the next lease, at a new version, leaves it out. Clients back off before
//!   retrying for longer than the master takes to notice.
//!
//! Two rules the model found, which the paper leaves implicit:
//! - a replica that recorded a round's version and then went down must not keep that version
//!   while the lease goes to the others (it would come back looking up to date without their
//!   mutations): the master starts the round over at a newer version;
//! - a deletion order names the version found stale, so that a replica which has recorded a
//!   newer version since (its report was overtaken) keeps its chunk.
//!
//! # The workload
//! One file of up to two chunks of three slots. Client A appends a record of two slots, client B
//! one of one slot: both fit in a chunk, but after a failed A there is no room for A again, so
//! the chunk is padded. Links are FIFO. One chunkserver, any of the three, may crash: it is down
//! for a while (the messages on their way to it, and those sent to it meanwhile, are lost) and
//! restarts from its disk. Each client retries once. Optionally (`--expiries`), a primary's
//! lease ends without extension.
//!
//! # Properties
//! - always *at most one primary holds a lease on a chunk (§3.1)*;
//! - always *an append acknowledged at offset o is at o on every up-to-date replica (§3.3)*:
//!   up to date is the master's current version;
//! - always *the master never hands a client a stale replica (§4.5)*: a lease answer on its way
//!   names a replica that missed a lease round (a ghost count of rounds, kept whether or not
//!   versions are bumped);
//! - always *every acknowledged record is in the file at least once (§3.3)*, whole in one
//!   chunk, duplicates and padding allowed;
//! - sometimes *a second lease is granted*, *an append fails on a replica, is retried and
//!   succeeds*, *a stale replica is found and deleted*, *a record appears twice with padding
//!   between (Table 1's "defined interspersed with inconsistent")*;
//! - eventually *every append succeeds once faults stop*: the model's paths are finite.
//!
//! # Seeded bugs
//! - `early-lease`: the master's lease runs out before the primary's: it grants a lease to
//!   another replica while the old primary still acts. Two primaries pick offsets independently;
//!   their appends fail on each other's secondaries until the file is full.
//! - `no-version-bump`: a new lease keeps the version. A chunkserver down during the lease round
//!   comes back with the "current" version, the master puts it back on the chunk's replicas,
//!   and it is handed to clients without the records appended while it was away.
//! - `ack-on-partial`: the primary acknowledges an append although a secondary failed it.
//! - `no-padding`: a record that does not fit is written up to the end of the chunk (the rest
//!   would go to the next): no chunk holds it whole.
//!
//! Not modelled: the data flow apart from the control flow (§3.2: here the primary's order
//! carries the record), master failure and its operation log (§5.1.3), re-replication (§4.3),
//! lease extensions (a lease that ends is the fault), writes at offsets, snapshots, reads.

pub mod actor;
pub mod model;
#[cfg(test)]
mod tests;

pub use actor::*;
pub use model::{GfsCfg, GfsModel};

use crate::catalog::{Bug, Param, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int(
        "clients",
        "clients appending: A (2 slots), then B (1 slot)",
        2,
        1,
        2,
    ),
    Param::int(
        "chunks",
        "chunks the file may grow to (3 slots each)",
        2,
        1,
        3,
    ),
    Param::int(
        "crashes",
        "chunkserver crashes: down for a while (messages to it are lost), then a restart from disk",
        1,
        0,
        1,
    ),
    Param::int(
        "expiries",
        "leases that end without being extended",
        0,
        0,
        2,
    ),
    Param::int(
        "retries",
        "retries after a failed append, per client",
        1,
        0,
        3,
    ),
];

/// The `gfs` entry of the checker's registry.
pub struct GfsSpec;

impl Spec for GfsSpec {
    type Model = GfsModel;
    type State = model::GfsModelState;
    type Action = model::GfsAction;

    const NAME: &'static str = "gfs";
    const PAPER: &'static str =
        "Ghemawat, Gobioff & Leung, The Google File System (SOSP 2003) §§2.7, 3.1, 3.3, 4.5";
    const SUMMARY: &'static str =
        "GFS: record append by a leased primary, padding, retries, and stale replicas found by version";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: GfsBug::EarlyLease.name(),
            breaks: &[
                "at most one primary holds a lease on a chunk (§3.1)",
                "every append succeeds once faults stop (§3.3)",
            ],
            help: "the master's lease runs out before the primary's: two primaries, whose \
                   appends fail on each other's secondaries until the file is full",
            // No fault is needed: a second client asking after the early run-out does it.
            params: &[("clients", "2"), ("chunks", "1"), ("crashes", "0")],
        },
        Bug {
            name: GfsBug::NoVersionBump.name(),
            breaks: &[
                "the master never hands a client a stale replica (§4.5)",
                "an append acknowledged at offset o is at o on every up-to-date replica (§3.3)",
            ],
            help: "a new lease keeps the version: a replica that was down comes back looking \
                   up to date, without the records appended meanwhile",
            params: &[("clients", "1"), ("crashes", "1")],
        },
        Bug {
            name: GfsBug::AckOnPartial.name(),
            breaks: &[
                "an append acknowledged at offset o is at o on every up-to-date replica (§3.3)",
            ],
            help: "the primary acknowledges although a secondary failed",
            params: &[("clients", "1"), ("crashes", "1")],
        },
        Bug {
            name: GfsBug::NoPadding.name(),
            breaks: &["every acknowledged record is in the file at least once (§3.3)"],
            help: "a record that does not fit is split across chunks instead of padded",
            params: &[("clients", "1"), ("crashes", "1")],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::GfsModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::GfsModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &GfsModel, s: &model::GfsModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &GfsModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(m: &GfsModel, s: &model::GfsModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn build(params: &Params, bug: Option<&'static str>) -> GfsModel {
        let bug = bug.map(|b| {
            GfsBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a GfsBug"))
        });
        GfsCfg {
            clients: params.int("clients") as usize,
            chunks: params.int("chunks") as u32,
            crashes: params.int("crashes") as usize,
            expiries: params.int("expiries") as u8,
            retries: params.int("retries") as u8,
            bug,
        }
        .into_model()
    }
}
