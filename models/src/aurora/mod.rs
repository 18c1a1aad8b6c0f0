//! Amazon Aurora's quorum redo log: a writer that ships only redo records to six storage
//! segments in three availability zones, commits by the volume durable LSN, and a new writer
//! that recovers the volume at the next epoch.
//!
//! Alexandre Verbitski et al., "Amazon Aurora: Design Considerations for High Throughput
//! Cloud-Native Relational Databases" (SIGMOD 2017), §§2.1, 3.2, 3.3, 4.1-4.3.
//!
//! # The protocol
//! Actors ([`actor`]): writers and the storage nodes of one protection group (its six
//! segments, two in each of three zones).
//!
//! - **Redo records only** (§3.2). The writer numbers its records with LSNs; each carries a back
//!   link (the previous LSN of the protection group), its epoch and whether it ends a
//!   mini-transaction (a Consistency Point LSN, CPL). It sends each record to all six segments
//!   (`Write`); a segment stores it and acknowledges (`Ack`, with its segment complete LSN, SCL).
//! - **Quorums** (§2.1). V = 6 copies, a write quorum Vw = 4, a read quorum Vr = 3: a read quorum
//!   meets every write quorum (Vr + Vw > V) and two write quorums meet (Vw > V/2). Writes go on
//!   with a whole zone down (4 left); reads, and so recovery, with a zone and one more down (3).
//! - **VCL and VDL** (§4.2.1). The writer's volume complete LSN (VCL) is the highest LSN below
//!   which every record is at a write quorum; the volume durable LSN (VDL) the highest CPL at or
//!   below it. A commit is acknowledged when the VDL reaches its LSN (§4.2.2). The LSN Allocation
//!   Limit (LAL) keeps the writer from allocating an LSN above VDL + LAL.
//! - **Holes and gossip** (§3.3 step 4). A segment that was unavailable misses records; the back
//!   links show it the holes. When it comes back it asks its peers and the writer for the records
//!   above its SCL (`GossipReq`), stores those it lacks and acknowledges them to their writer.
//! - **Recovery** (§4.3). A new writer takes the next epoch and asks every segment for its state
//!   (`Recover`): from then on a segment refuses writes of an older epoch (`Fenced`: the old
//!   writer stops). From a read quorum's answers it follows the back links from the start,
//!   taking each LSN's record of the newest epoch, up to the last CPL: that is the VDL, and it
//!   truncates everything above it (`Truncate`, and every later write carries the truncation,
//!   so a segment that missed it learns it). Its own records start at VDL + 1.
//! - **Reads** (§4.2.3). The writer reads at a read point (its VDL) from one segment whose SCL
//!   reaches it: the page as of the read point, rebuilt from the records (no read quorum).
//!
//! # The model
//! Writer `W0` starts a new volume at epoch 1; its changes `x = a1`, `x = a2` arrive one at a
//! time (a timer stands for the client), each record its own mini-transaction by default, the
//! second the commit. `W0` may fail at any time; standby `W1` then takes over (with `zombie`,
//! also while `W0` still runs: a failure detector's mistake that the epoch fence must make
//! harmless), recovers at epoch 2 and commits `x = b1`. Each writer reads `x` back at its read
//! point after its commit. The first zone's segments, and for AZ+1 the next segment too, each
//! become unavailable once at any time and come back (their disks survive; what reaches them
//! meanwhile is lost). A segment that comes back asks the writers for what it missed
//! (`CatchUp`); one that finds a hole asks its peers (`GossipReq`) and the writer.
//!
//! Links are ordered, and the model's one reduction is that a write or a reply is delivered
//! in the step that sends it: a broadcast reaches every available segment at once, a reply its
//! sender at once. Which segments a record misses then comes from which are unavailable, not
//! from delays. Without it six segments are out of reach: the default configuration had more
//! than 4.7 million states at depth 10 (23 GB), and even one record per writer without failures
//! more than 7.2 million states after 150 s. A recovery's requests are delivered one by one, so
//! that any read quorum may answer first; so are the catch-up requests with `delayed-catch-up`.
//!
//! # Properties
//! - always *read and write quorums overlap* (§2.1);
//! - always *no acknowledged commit is above the VDL a later recovery computes* (§4.3);
//! - always *after recovery no record of an older epoch remains above the truncation point*
//!   (§4.3), at every segment that knows the truncation;
//! - always *no LSN is allocated above VDL + LAL* (§4.2.1);
//! - always *a read at the read point sees the last change at or below it* (§4.2.3);
//! - sometimes *a commit is acknowledged with a whole zone down*, *recovery computes the VDL with
//!   a zone and one more segment down*, *a recovery truncates a record above the VDL*, *the writer
//!   waits at the LAL*, *a read is answered by one up-to-date segment*, *gossip fills a hole*;
//! - eventually *gossip fills every hole and the VCL reaches the writer's last record* (under
//!   weak fairness: every segment comes back, every message is delivered).
//!
//! # Seeded bugs
//! - `write-quorum-3`: Vw = 3 of 6. A commit at three segments is acknowledged; a recovery
//!   reads the other three and truncates it away.
//! - `no-epoch-fence`: segments take records of any epoch: the standby takes over while the
//!   writer still runs (`zombie`), and the old writer's records land above the new writer's
//!   truncation point (two records with one LSN in the volume); the old writer even
//!   acknowledges a commit above the VDL the recovery computed.
//! - `no-lal`: the writer allocates past the LSN Allocation Limit.
//! - `read-any-segment`: the read goes to the first segment whatever its SCL: one that was down
//!   answers from an old page.
//! - `no-gossip`: a segment never asks for what it missed: its holes stay, and a writer whose
//!   records reached only the segments that were up waits forever.
//!
//! Not found: the issue's `ack-above-hole` (a commit acknowledged while a record below it is
//! short of a write quorum, then truncated away). In this model a segment holds a record above
//! a hole only after it came back, and its request for what it missed goes to the writer ahead
//! of its acknowledgements on the same ordered link: the writer resends the missing record
//! before it counts the acknowledgement above it, so it never sees a quorum above a hole. It
//! needs reordered links, which the reduction above gives up.
//!
//! Not modelled: more than one protection group (LSNs interleave across them; the back links
//! then skip), the protection group's read LSN floor (PGMRPL) and garbage collection, segment
//! repair and membership changes (§2.2), replicas (§4.2.4).

pub mod actor;
pub mod model;

pub use actor::{
    AuroraActor, AuroraBug, AuroraMsg, AuroraState, AuroraStorage, AuroraTimer, Lsn, Quorums,
    Record, SegmentCfg, SegmentState, Shipping, WriterCfg, WriterStart, WriterState, WriterTcp,
};
pub use model::{AuroraCfg, AuroraModel, Failures};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int("segments", "copies V of the protection group, spread over 3 zones", 6, 3, 6),
    Param::int("write-quorum", "write quorum Vw (§2.1)", 4, 1, 6),
    Param::int("read-quorum", "read quorum Vr (§2.1)", 3, 1, 6),
    Param::int(
        "records",
        "redo records each writer writes; the last is its commit",
        2,
        1,
        3,
    ),
    Param::int("mtr", "records per mini-transaction (the last is a CPL)", 1, 1, 3),
    Param::int("lal", "the LSN Allocation Limit (§4.2.1)", 1, 1, 3),
    Param {
        name: "failures",
        help: "segments that become unavailable once and come back: a zone and one more, a zone, none",
        kind: ParamKind::Choice {
            choices: Failures::NAMES,
        },
    },
    Param::int(
        "takeover",
        "the writer may fail and a standby take over at epoch 2 (0 or 1)",
        1,
        0,
        1,
    ),
    Param::int(
        "zombie",
        "the standby may take over while the writer still runs (0 or 1)",
        0,
        0,
        1,
    ),
    Param::int("read-back", "each writer reads its commit back at its read point (0 or 1)", 1, 0, 1),
    Param::int(
        "delayed-catch-up",
        "a segment's request to the writer for what it missed travels instead of being answered at once (0 or 1)",
        0,
        0,
        1,
    ),
];

/// The `aurora` entry of the checker's registry.
pub struct AuroraSpec;

impl Spec for AuroraSpec {
    type Model = AuroraModel;
    type State = model::AuroraModelState;
    type Action = model::AuroraAction;

    const NAME: &'static str = "aurora";
    const PAPER: &'static str =
        "Verbitski et al., Amazon Aurora: Design Considerations for High Throughput Cloud-Native Relational Databases (SIGMOD 2017) §§2.1, 3.3, 4.1-4.3";
    const SUMMARY: &'static str =
        "Aurora: redo records to 6 segments in 3 zones, 4/6 write and 3/6 read quorums, VCL/VDL, recovery at a new epoch";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: AuroraBug::WriteQuorum3.name(),
            breaks: &[
                "read and write quorums overlap: Vr + Vw > V and Vw > V/2 (§2.1)",
                "no acknowledged commit is above the VDL a later recovery computes (§4.3)",
            ],
            help: "writes need 3 of 6 segments: a recovery's read quorum misses the commit",
            params: &[("records", "1"), ("read-back", "0")],
        },
        Bug {
            name: AuroraBug::NoEpochFence.name(),
            breaks: &[
                "after recovery no record of an older epoch remains above the truncation point (§4.3)",
                "no acknowledged commit is above the VDL a later recovery computes (§4.3)",
            ],
            help: "segments take the old writer's records after a recovery",
            params: &[("failures", "none"), ("read-back", "0"), ("zombie", "1")],
        },
        Bug {
            name: AuroraBug::NoLal.name(),
            breaks: &["no LSN is allocated above VDL + LAL (§4.2.1)"],
            help: "the writer allocates LSNs past VDL + LAL",
            params: &[("takeover", "0"), ("read-back", "0")],
        },
        Bug {
            name: AuroraBug::ReadAnySegment.name(),
            breaks: &["a read at the read point sees the last change at or below it (§4.2.3)"],
            help: "a read goes to any segment, not one whose SCL reaches the read point",
            params: &[("takeover", "0"), ("delayed-catch-up", "1")],
        },
        Bug {
            name: AuroraBug::NoGossip.name(),
            breaks: &[
                "gossip fills every hole and the VCL reaches the writer's last record",
                "gossip fills a segment's hole (§4.2.1)",
            ],
            help: "segments never ask for the records they missed",
            params: &[("takeover", "0"), ("read-back", "0")],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(model::fair_class)
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::AuroraModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::AuroraModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &AuroraModel, s: &model::AuroraModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &AuroraModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> AuroraModel {
        let bug = bug.map(|b| {
            AuroraBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not an AuroraBug"))
        });
        AuroraCfg {
            quorums: Quorums {
                v: params.int("segments") as usize,
                vw: params.int("write-quorum") as usize,
                vr: params.int("read-quorum") as usize,
            },
            records: params.int("records") as usize,
            mtr: params.int("mtr") as usize,
            lal: params.int("lal"),
            failures: Failures::from_name(params.choice("failures")).expect("a declared choice"),
            takeover: params.int("takeover") == 1,
            zombie: params.int("zombie") == 1,
            read_back: params.int("read-back") == 1,
            delayed_catch_up: params.int("delayed-catch-up") == 1,
            bug,
        }
        .into_model()
    }
}

#[cfg(test)]
mod tests;
