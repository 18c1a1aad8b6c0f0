//! Raft: leader election, log replication, persistence and crash recovery, log compaction, and a
//! linearizable key-value store on top.
//!
//! Diego Ongaro and John Ousterhout, "In Search of an Understandable Consensus Algorithm
//! (Extended Version)", 2014. Section numbers below are that paper's.
//!
//! # What is modelled
//! Servers and clients are stateright actors ([`actor`]) in one `ActorModel` ([`model`]); the same
//! actors run as TCP processes in `impls`.
//!
//! - **Leader election** (§5.2). A follower or candidate whose election timer fires starts an
//!   election in the next term; votes go to the first candidate of a term whose log is at least
//!   as up to date as the voter's (§5.4.1). A candidate with a majority leads; a higher term
//!   seen in any message turns anyone into a follower.
//! - **Log replication** (§5.3). AppendEntries carries the previous entry's index and term; a
//!   follower rejects it when its log does not match there, deletes a conflicting entry and all
//!   that follow, and appends. The leader counts replicas to commit only entries of its own term
//!   (§5.4.2, Figure 8); earlier entries are committed with them.
//! - **Persistence and crashes** (Figure 2). `currentTerm`, `votedFor` and the log are saved
//!   before any reply that depends on them; a crash restarts a server from its storage.
//! - **Log compaction** (§7, Figure 13). A server snapshots its state machine after applying
//!   `snapshot-every` entries; a leader sends InstallSnapshot to a follower that needs entries it
//!   has discarded, in chunks of `snapshot-chunk` state-machine items (0: one chunk; Figure 13's
//!   `offset` and `done`), which the follower collects in order and installs on the last.
//! - **The leader's no-op** (§8). A new leader appends a blank entry of its term at once, so it
//!   commits an entry of its own term, and with it every earlier one (§5.4.2), without waiting
//!   for a client, and learns which entries are committed.
//! - **Clients** (§8). Commands carry a client id and a sequence number, so that each runs at most
//!   once however often it is retried; clients follow `Redirect`s and retry elsewhere after a
//!   timeout. Clients speak the workbench's client envelope ([`crate::client::ClientMsg`]), so
//!   the same client actor runs over TCP, driven by the runtime.
//! - **Reads without the log** (§8; Ongaro's thesis §6.4, ReadIndex), the default (`--reads
//!   read-index`; `--reads log` puts a Get in the log like a Put). The leader takes the commit
//!   index, or its no-op's index if that is not committed yet, as the read index; starts a round
//!   of heartbeats (AppendEntries carries a `round`, echoed in the reply); once a majority,
//!   itself included, has acknowledged that round or a later one, it knows it still led when
//!   the Get arrived; once its state machine has applied the read index, it answers. A retried
//!   Get waiting already is not started twice.
//! - **Lease reads** (thesis §6.4.1), with `--reads lease`. Once a majority acknowledges a
//!   round of heartbeats, the leader holds a lease until its timer, armed when the round
//!   began, runs out, and answers Gets at the read index without a round of their own; without
//!   a lease a Get takes the ReadIndex path, and its round renews the lease. The lease lasts the
//!   minimum election timeout shortened for the clock drift the leaders allow for
//!   (`--drift-bound`, percent). The model has no clocks, only the order in which timers fire,
//!   and drift decides that order: while a leader's lease timer runs, a server that received a
//!   round of it cannot reach the end of its minimum election timeout, unless the world's
//!   clocks drift more than the leaders allow for (`--clock-drift` above `--drift-bound`).
//! - **The guard against disruptive servers** (thesis §4.2.3), with `--guard 1` and always with
//!   lease reads: within the minimum election timeout of hearing from a leader (its own timer,
//!   armed at every AppendEntries or InstallSnapshot of the leader and at a restart) a server
//!   neither updates its term nor grants its vote for a RequestVote, and a leader ignores
//!   RequestVote; a follower's election timer ends after that timeout. Leases are safe because
//!   of it: the majority that acknowledged a lease votes for no one until the lease is over.
//!   The end of the minimum election timeout and of a lease are explored only when something
//!   can follow from them (the server may campaign or has a RequestVote waiting; a Get or a
//!   server held back is waiting), which changes no outcome and keeps the state space small.
//! - **Membership changes** (Ongaro's thesis §4, single-server changes), with `--members N`
//!   (the first N servers form the initial configuration) and `--changes add|remove|remove-two`
//!   (administrator actors ask for them). A configuration is a log entry that takes effect when
//!   appended; every majority (votes, commits, ReadIndex rounds) is of the configuration in
//!   effect; a leader takes one change at a time, catches an added server up before appending
//!   its configuration (§4.2.1), appends a change only once an entry of its term (its no-op) is
//!   committed (the 2015 fix), answers the administrator once it commits, and steps down if it
//!   removed itself (§4.2.2). A server outside its configuration does not start elections.
//!   Snapshots keep the configuration (§5.1).
//! - **The network**: ordered per channel without loss (TCP-like, the default), unordered, or
//!   unordered and lossy. Which followers a heartbeat repeats to is a parameter ([`Heartbeats`]);
//!   the `raft-tcp` registry entry ([`RaftTcpSpec`]) is configured as the TCP cluster runs.
//!
//! # Properties
//! History variables beside the actors record who led which term and which entries were
//! committed, as in the TLA+ specification of Raft.
//! - always *Election Safety*: at most one leader per term (§5.2, Figure 3).
//! - always *Leader Append-Only*: a leader never deletes or overwrites entries of its log (§5.3).
//! - always *Log Matching*: two logs with an entry of the same index and term are identical up
//!   to it (§5.3).
//! - always *Leader Completeness*: a leader holds every entry committed in an earlier term
//!   (§5.4).
//! - always *State Machine Safety*: no two servers commit different entries at one index (§5.4.3).
//! - always *linearizable client history*: the clients' operations, checked with stateright's
//!   `LinearizabilityTester` against a sequential key-value store (§8).
//! - always *committed entries are never lost across crashes*: each committed entry is on a
//!   majority's stable storage (Figure 2).
//! - always *a server's state machine is the committed entries applied in order* (§5.3, §7: a
//!   snapshot stands for the entries it replaces).
//! - sometimes: a leader is elected; an entry is committed; a follower installs a snapshot; a Get
//!   returns another client's Put; a leader is elected after a crash; a leader answers a Get
//!   without the log once a majority acknowledges a later heartbeat (with ReadIndex); a
//!   configuration change commits (with changes); a leader that removed itself steps down; a
//!   leader answers a Get under its lease (with lease reads); a server that heard from a leader
//!   within the minimum election timeout ignores a RequestVote (with the guard).
//!   *committed entries are never lost across crashes* counts the majority in the configuration
//!   the entry was committed in.
//! - eventually, with no crash or loss, a leader is elected: decided by the workbench's engine
//!   under weak fairness (every message delivered, every armed timer fired, unless disabled); a
//!   path that reaches the term, log or channel bound is cut off there, not a counterexample.
//!
//! # Seeded bugs
//! Each breaks the properties its `Bug::breaks` names, and only those (checked to the end by the
//! checker's tests).
//! - `commit-previous-term`: the leader commits an older term's entry by counting replicas
//!   (Figure 8): *Leader Completeness*, *State Machine Safety*, *committed entries are never
//!   lost across crashes*. The counterexample needs four terms.
//! - `forget-vote`: `currentTerm` and `votedFor` are not persisted, so a restarted server votes
//!   twice in a term: *Election Safety*.
//! - `vote-any-log`: votes without the up-to-date check (§5.4.1): *Leader Completeness*.
//! - `no-truncate`: a follower keeps a conflicting entry (§5.3): *State Machine Safety*,
//!   *committed entries are never lost across crashes*.
//! - `read-index-without-heartbeat`: the leader answers a Get once its state machine reaches
//!   the read index, without the round of heartbeats (§8): a leader cut off by a newer one
//!   answers from its old state, after the new leader committed and acknowledged a Put:
//!   *linearizable client history* (and the ReadIndex example never happens). Its configuration
//!   uses `--workload read-after-write` (client 0 Gets twice, client 1 Puts once), the smallest
//!   history where a read must see a write it did not overlap.
//! - `lease-without-drift-bound`: the lease lasts the whole minimum election timeout, as if
//!   clocks did not drift: a follower whose clock runs fast votes for a new leader, which
//!   commits and acknowledges a Put, while the old leader still answers Gets from its lease:
//!   *linearizable client history*. The same pitfall without the bug: `--drift-bound 5
//!   --clock-drift 10`.
//! - `snapshot-off-by-one`: InstallSnapshot keeps the log from the last included index instead of
//!   after it (§7): *Log Matching*, *State Machine Safety*, and the state machine no longer
//!   follows the log.
//! - `partial-snapshot`: a follower installs a snapshot sent in chunks (`--snapshot-chunk 1`)
//!   before its last chunk (Figure 13's `done`): its state machine misses the items still to
//!   come: *a server's state machine is the committed entries applied in order*.
//! - `ignore-stale-term`: AppendEntries from an older term is processed (Figure 2, receiver step
//!   1): *Leader Append-Only*, *State Machine Safety*, *committed entries are never lost across
//!   crashes*.
//! - `volatile-log`: the log is not persisted before acknowledging: *committed entries are never
//!   lost across crashes*.
//! - `no-election-retry`: a candidate whose election fails arms no new timeout, so a split vote
//!   lasts forever (§5.2): the eventually property.
//!
//! `no-noop-before-change` (a leader appends a configuration change before an entry of its term
//! commits, the single-server change bug of raft-dev, 2015) is a bug of the actors, shown by a
//! test that drives four servers by hand through its scenario (`tests.rs`), and runs on the
//! nodes; it is not in the checker's registry: the smallest configuration that reaches it (four
//! servers, three terms, two changes, two messages in flight per channel) was not exhausted at
//! 11.1 million states (depth 21, no violation yet), and with one message in flight per channel
//! it cannot happen (its messages cross).
//!
//! # Left out
//! Joint consensus (§6: the model makes single-server changes, thesis §4); leadership transfer
//! (thesis §3.10, which the guard of §4.2.3 would let through); bytes in snapshot chunks
//! (chunks count state-machine items); expiry of client sessions (§8 keeps them for ever here);
//! real time (timers fire in any order, but for the order drift imposes on leases; see the
//! README's `raft-tcp` section for what that does and does not cover). A leader starts at most
//! [`model::MAX_ROUND`] rounds of heartbeats for reads in a term (a boundary).

pub mod actor;
pub mod kv;
pub mod log;
pub mod model;

pub use actor::{Heartbeats, RaftActor, RaftBug, RaftMsg, RaftTimer, Reads};
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
const fn params(d: Defaults) -> [Param; 23] {
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
        Param::int(
            "snapshot-chunk",
            "state-machine items (keys, sessions) per InstallSnapshot chunk (0: one chunk)",
            0,
            0,
            4,
        ),
        Param {
            name: "reads",
            help: READS_HELP,
            kind: ParamKind::Choice {
                choices: &["read-index", "lease", "log"],
            },
        },
        Param::int(
            "guard",
            "1: a server ignores RequestVote within the minimum election timeout of hearing from \
            a leader (thesis §4.2.3; always with lease reads)",
            0,
            0,
            1,
        ),
        Param::int(
            "drift-bound",
            "clock drift in percent that leaders allow for when they size their leases",
            10,
            0,
            50,
        ),
        Param::int(
            "clock-drift",
            "clock drift in percent of the modelled world: a lease outlasts the followers' \
            minimum election timeout unless drift-bound covers it",
            10,
            0,
            50,
        ),
        Param::int(
            "noop",
            "1: a new leader appends a no-op at the start of its term (§8); 0: it does not",
            1,
            0,
            1,
        ),
        Param {
            name: "workload",
            help: "alternate: each client Puts and Gets in turn (ops each); read-after-write: \
                client 0 Gets twice, client 1 Puts once",
            kind: ParamKind::Choice {
                choices: &["alternate", "read-after-write"],
            },
        },
        Param::int(
            "members",
            "servers in the initial configuration, the first N (0: all); the others wait to be added",
            0,
            0,
            5,
        ),
        Param {
            name: "changes",
            help: CHANGES_HELP,
            kind: ParamKind::Choice {
                choices: &["none", "add", "remove", "remove-two"],
            },
        },
    ]
}

const CHANGES_HELP: &str = "configuration changes asked by administrators (thesis §4.1): none; \
    add (the first server outside the configuration, asked of S0); remove (S0, asked of S0); \
    remove-two (the last server, asked of S0, and the one before it, asked of S1)";

const READS_HELP: &str = "how a leader answers Get: read-index (a round of heartbeats, thesis \
    §6.4), lease (no round while a lease holds, §6.4.1), log (an entry)";

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
                ("noop", "0"),
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
                ("max-log", "1"),
            ],
        },
        Bug {
            name: RaftBug::VoteAnyLog.name(),
            breaks: &[
                "Leader Completeness",
                "State Machine Safety",
                "committed entries are never lost across crashes",
            ],
            help: "votes are granted without the up-to-date check of §5.4.1",
            params: &[("clients", "1"), ("crashes", "0")],
        },
        Bug {
            name: RaftBug::NoTruncate.name(),
            breaks: &[
                "Log Matching",
                "State Machine Safety",
                "committed entries are never lost across crashes",
            ],
            help: "a follower keeps a conflicting entry instead of deleting it and all that follow",
            params: &[
                ("clients", "1"),
                ("crashes", "0"),
                ("client-retries", "1"),
                ("max-log", "2"),
                ("max-in-flight", "2"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::ReadIndexWithoutHeartbeat.name(),
            breaks: &["linearizable client history", model::READ_INDEX_SERVED],
            help: "ReadIndex without its round of heartbeats: a deposed leader answers a stale Get",
            params: &[
                ("workload", "read-after-write"),
                ("crashes", "0"),
                ("spurious-timeouts", "1"),
                ("max-log", "3"),
                ("max-in-flight", "2"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::LeaseWithoutDriftBound.name(),
            breaks: &["linearizable client history"],
            help: "the lease ignores clock drift: a deposed leader answers a stale Get from it",
            params: &[
                ("reads", "lease"),
                ("workload", "read-after-write"),
                ("crashes", "0"),
                ("spurious-timeouts", "1"),
                ("max-log", "3"),
                ("max-in-flight", "1"),
                ("snapshot-every", "0"),
            ],
        },
        Bug {
            name: RaftBug::SnapshotOffByOne.name(),
            breaks: &[
                "Log Matching",
                "State Machine Safety",
                model::MACHINE_FOLLOWS_LOG,
            ],
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
            name: RaftBug::PartialSnapshot.name(),
            breaks: &[model::MACHINE_FOLLOWS_LOG],
            help: "a follower installs a snapshot before its last chunk (Figure 13's done)",
            params: &[
                ("clients", "1"),
                ("heartbeats", "behind"),
                ("crashes", "0"),
                ("max-term", "1"),
                ("candidates", "1"),
                ("max-in-flight", "1"),
                ("snapshot-chunk", "1"),
            ],
        },
        Bug {
            name: RaftBug::IgnoreStaleTerm.name(),
            breaks: &[
                "Leader Append-Only",
                "Log Matching",
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

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::RaftModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::RaftModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> RaftModel {
        build(params, bug)
    }

    fn explain(m: &RaftModel, s: &model::RaftModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn view(m: &RaftModel, s: &model::RaftModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &RaftModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
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

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::RaftModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::RaftModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> RaftModel {
        build(params, bug)
    }

    fn explain(m: &RaftModel, s: &model::RaftModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }
}

const PAPER: &str = concat!(
    "Ongaro & Ousterhout, ",
    "In Search of an Understandable Consensus Algorithm (extended) §§5, 7, 8; ",
    "Ongaro's thesis §§4, 6.4"
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
        snapshot_chunk: params.int("snapshot-chunk"),
        reads: match params.choice("reads") {
            "log" => Reads::Log,
            "lease" => Reads::Lease,
            _ => Reads::ReadIndex,
        },
        guard: params.int("guard") == 1,
        drift_bound: params.int("drift-bound") as u32,
        clock_drift: params.int("clock-drift") as u32,
        noop: params.int("noop") == 1,
        workload: match params.choice("workload") {
            "read-after-write" => model::Workload::ReadAfterWrite,
            _ => model::Workload::Alternate,
        },
        members: params.int("members") as usize,
        changes: match params.choice("changes") {
            "add" => model::Changes::Add,
            "remove" => model::Changes::Remove,
            "remove-two" => model::Changes::RemoveTwo,
            _ => model::Changes::None,
        },
        bug,
    }
    .into_model()
}

#[cfg(test)]
mod tests;
