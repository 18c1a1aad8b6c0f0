//! Raft: leader election, log replication, persistence and crash recovery, log compaction, and a
//! linearizable key-value store on top.
//!
//! Diego Ongaro and John Ousterhout, "In Search of an Understandable Consensus Algorithm
//! (Extended Version)", 2014. Section numbers below are that paper's.

pub mod actor;
pub mod kv;
pub mod log;
pub mod model;

pub use actor::{Heartbeats, RaftActor, RaftBug, RaftMsg, RaftTimer};
pub use model::{NetworkKind, RaftCfg, RaftModel};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

const HEARTBEATS_HELP: &str =
    "followers a leader's heartbeat repeats to: auto (lossy: behind, else off), behind, every, off";
const SPURIOUS_HELP: &str =
    "election timeouts in all of followers that heard from their leader (delayed heartbeats)";

/// The defaults that differ between [`RaftSpec`] and [`RaftTcpSpec`]. A choice parameter's
/// default is its first choice.
struct Defaults {
    network: &'static [&'static str],
    heartbeats: &'static [&'static str],
    crashing: &'static [&'static str],
    spurious_timeouts: u64,
    candidates: u64,
    client_retries: u64,
    max_term: u64,
}

/// The parameters of both registry entries, with their defaults.
const fn params(d: Defaults) -> [Param; 14] {
    [
        Param::int("servers", "number of servers", 3, 1, 5),
        Param::int("clients", "number of clients", 2, 0, 3),
        Param::int(
            "ops",
            "operations per client (Put and Get of one key, in turn)",
            1,
            0,
            3,
        ),
        Param {
            name: "network",
            help:
                "ordered: per-channel FIFO, no loss (TCP-like); unordered; lossy: unordered, lossy",
            kind: ParamKind::Choice { choices: d.network },
        },
        Param {
            name: "heartbeats",
            help: HEARTBEATS_HELP,
            kind: ParamKind::Choice {
                choices: d.heartbeats,
            },
        },
        Param::int(
            "crashes",
            "server crashes in all (each restarts from storage)",
            1,
            0,
            4,
        ),
        Param {
            name: "crashing",
            help: "which servers crash: leaders, or any server",
            kind: ParamKind::Choice {
                choices: d.crashing,
            },
        },
        Param::int(
            "spurious-timeouts",
            SPURIOUS_HELP,
            d.spurious_timeouts,
            0,
            4,
        ),
        Param::int(
            "candidates",
            "how many servers may start elections (the first N)",
            d.candidates,
            1,
            5,
        ),
        Param::int(
            "client-retries",
            "timeouts a client may retry one operation after",
            d.client_retries,
            0,
            4,
        ),
        Param::int(
            "max-term",
            "boundary: highest term explored",
            d.max_term,
            1,
            6,
        ),
        Param::int(
            "max-log",
            "boundary: longest log explored (snapshot included)",
            2,
            0,
            6,
        ),
        Param::int(
            "max-in-flight",
            "boundary: most messages in flight on one channel",
            3,
            1,
            8,
        ),
        Param::int(
            "snapshot-every",
            "snapshot after this many applied entries (0: never)",
            1,
            0,
            6,
        ),
    ]
}

/// The `raft` entry of the checker's registry: the model on bounds that keep an exhaustive
/// check to about 3 million states.
pub struct RaftSpec;

impl Spec for RaftSpec {
    type Model = RaftModel;
    type State = model::RaftModelState;
    type Action = model::RaftAction;

    const NAME: &'static str = "raft";
    const PAPER: &'static str = PAPER;
    const SUMMARY: &'static str =
        "Leader election, log replication, crash recovery, snapshots and a linearizable KV store";
    const PARAMS: &'static [Param] = &params(Defaults {
        network: &["ordered", "unordered", "lossy"],
        heartbeats: &["auto", "behind", "every", "off"],
        crashing: &["leaders", "any"],
        spurious_timeouts: 0,
        candidates: 2,
        client_retries: 0,
        max_term: 2,
    });
    const BUGS: &'static [Bug] = &[
        Bug {
            name: RaftBug::CommitPreviousTerm.name(),
            breaks: &[
                "Leader Completeness",
                "State Machine Safety",
                "committed entries are never lost across crashes",
            ],
            help: "the leader commits an older term's entry by counting replicas (Figure 8)",
            params: &[
                ("clients", "1"),
                ("crashes", "0"),
                ("client-retries", "1"),
                ("max-term", "4"),
                ("max-log", "1"),
                ("max-in-flight", "2"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::ForgetVote.name(),
            breaks: &["Election Safety"],
            help: "currentTerm and votedFor are not persisted: a restarted server votes twice",
            params: &[
                ("clients", "0"),
                ("crashing", "any"),
                ("max-term", "1"),
                ("max-log", "0"),
            ],
        },
        Bug {
            name: RaftBug::VoteAnyLog.name(),
            breaks: &["Leader Completeness"],
            help: "votes are granted without the up-to-date check of §5.4.1",
            params: &[("clients", "1"), ("crashes", "0")],
        },
        Bug {
            name: RaftBug::NoTruncate.name(),
            breaks: &[
                "State Machine Safety",
                "committed entries are never lost across crashes",
            ],
            help: "a follower keeps a conflicting entry instead of deleting it and all that follow",
            params: &[
                ("clients", "1"),
                ("crashes", "0"),
                ("client-retries", "1"),
                ("max-log", "1"),
                ("max-in-flight", "2"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::StaleRead.name(),
            breaks: &["linearizable client history"],
            help: "a leader answers Get from its own state without checking it still leads",
            params: &[
                ("ops", "2"),
                ("crashes", "0"),
                ("spurious-timeouts", "1"),
                ("max-in-flight", "1"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::SnapshotOffByOne.name(),
            breaks: &["Log Matching", "State Machine Safety"],
            help: "InstallSnapshot keeps the log from the last included index, not after it",
            params: &[
                ("clients", "1"),
                ("ops", "2"),
                ("heartbeats", "behind"),
                ("crashes", "0"),
                ("max-term", "1"),
                ("candidates", "1"),
                ("max-in-flight", "1"),
            ],
        },
        Bug {
            name: RaftBug::IgnoreStaleTerm.name(),
            breaks: &[
                "Leader Append-Only",
                "State Machine Safety",
                "committed entries are never lost across crashes",
            ],
            help: "AppendEntries from an older term is processed, not rejected",
            params: &[
                ("clients", "1"),
                ("crashes", "0"),
                ("client-retries", "1"),
                ("spurious-timeouts", "1"),
                ("max-in-flight", "2"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::VolatileLog.name(),
            breaks: &["committed entries are never lost across crashes"],
            help: "the log is not persisted before acknowledging",
            params: &[
                ("clients", "1"),
                ("crashes", "0"),
                ("max-term", "1"),
                ("candidates", "1"),
            ],
        },
        Bug {
            name: RaftBug::NoElectionRetry.name(),
            breaks: &[model::EVENTUALLY_ELECTED],
            help:
                "a candidate whose election fails arms no new election timeout: a split vote lasts",
            params: &[("clients", "0"), ("crashes", "0"), ("candidates", "3")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> RaftModel {
        build(params, bug)
    }
}

/// The `raft-tcp` entry of the checker's registry: the same model, configured as the servers
/// run over TCP (`impls::raft`): heartbeats to every follower every interval, messages lost
/// (a dropped connection loses its frames) or reordered across channels, clients that retry
/// after a timeout, any server crashing, every server a candidate, and election timeouts that
/// fire even when a leader is heard from (a delayed heartbeat). Too large to explore to the
/// end: its baseline is a BFS to [`RaftTcpSpec::BASELINE_DEPTH`], and a seeded simulation
/// covers deeper paths (README, reports/bounded/).
pub struct RaftTcpSpec;

impl Spec for RaftTcpSpec {
    type Model = RaftModel;
    type State = model::RaftModelState;
    type Action = model::RaftAction;

    const NAME: &'static str = "raft-tcp";
    const PAPER: &'static str = PAPER;
    const SUMMARY: &'static str =
        "Raft as it runs over TCP: lossy network, heartbeats to every follower, clients that retry";
    const PARAMS: &'static [Param] = &params(Defaults {
        network: &["lossy", "ordered", "unordered"],
        heartbeats: &["every", "auto", "behind", "off"],
        crashing: &["any", "leaders"],
        spurious_timeouts: 1,
        candidates: 3,
        client_retries: 2,
        max_term: 3,
    });
    const BUGS: &'static [Bug] = &[];
    const BASELINE_DEPTH: Option<usize> = Some(6);

    fn build(params: &Params, bug: Option<&'static str>) -> RaftModel {
        build(params, bug)
    }
}

const PAPER: &str = concat!(
    "Ongaro & Ousterhout, ",
    "In Search of an Understandable Consensus Algorithm (extended) §§5, 7, 8"
);

/// The model of `params` (either entry's) with `bug` seeded.
fn build(params: &Params, bug: Option<&'static str>) -> RaftModel {
    let bug = bug.map(|b| {
        RaftBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not in RaftSpec::BUGS"))
    });
    RaftCfg {
        servers: params.int("servers") as usize,
        clients: params.int("clients") as usize,
        ops: params.int("ops") as usize,
        network: match params.choice("network") {
            "unordered" => NetworkKind::Unordered,
            "lossy" => NetworkKind::Lossy,
            _ => NetworkKind::Ordered,
        },
        heartbeats: match params.choice("heartbeats") {
            "behind" => Some(Heartbeats::Behind),
            "every" => Some(Heartbeats::Every),
            "off" => Some(Heartbeats::Off),
            _ => None,
        },
        crashes: params.int("crashes") as usize,
        crash_leaders_only: params.choice("crashing") == "leaders",
        client_retries: params.int("client-retries") as u8,
        spurious_timeouts: params.int("spurious-timeouts") as u8,
        candidates: params.int("candidates") as usize,
        max_term: params.int("max-term"),
        max_log: params.int("max-log"),
        max_in_flight: params.int("max-in-flight") as usize,
        snapshot_every: params.int("snapshot-every"),
        bug,
    }
    .into_model()
}

#[cfg(test)]
mod tests;
