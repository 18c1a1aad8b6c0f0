//! Memcache at Facebook: look-aside caching with leases, invalidation by delete, and a gutter pool
//! for failed servers, on one key.
//!
//! Rajesh Nishtala et al., "Scaling Memcache at Facebook" (NSDI 2013), §§2, 3.2.1, 3.3, 4.1.
//!
//! # The protocol
//! Actors ([`actor`]): two web servers (`W0`, `W1`, memcache's clients), the memcache server that
//! holds the key (`M2`), a gutter server (`G3`), the database (`D4`) and mcsqueal (`Q5`), the
//! invalidation daemon that tails the database's commits.
//!
//! - **Look-aside** (§2, Figure 1). A read gets the key from memcache; on a miss it reads the
//!   database and sets the key in memcache. A write updates the database, then *deletes* the
//!   key from memcache: deletes, not updates, because deletes are idempotent (two writers'
//!   updates that cross leave the older value behind; two deletes leave nothing).
//! - **Leases** (§3.2.1). A miss comes with a lease token, and a set is stored only while its
//!   token is valid: a delete of the key invalidates it. A web server that read the database
//!   before a write and sets after the write's delete (a *stale set*) is refused. Memcache hands
//!   out one token per key at a time; a get that misses while a token is out is told to *wait*
//!   and get again (*thundering herds*: the lease holder fills the key meanwhile, and the others
//!   then hit instead of all reading the database).
//! - **Invalidation by mcsqueal** (§4.1, Figure 6). The database's commit log carries the keys
//!   a transaction changed; mcsqueal reads it and deletes them from memcache. With the web
//!   server's own delete (for its user's read-after-write) every write is deleted twice, in
//!   any order against the other messages.
//! - **Gutter** (§3.3). A web server whose get gets no answer from memcache (the server is
//!   down) gets again from the gutter pool, fills it from the database on a miss, and sets it
//!   there (no lease). Gutter entries are not invalidated: they expire quickly, which bounds
//!   how long a value a write made stale can be served.
//!
//! # Bounds and faults
//! `--ops` (default 2) operations per web server: `W0` reads then writes, `W1` writes then
//! reads, so two reads (the herd), two writes (crossing invalidations) and a read against a
//! write (the stale set) can each overlap; 2 database writes in all. `--failure` (default 1):
//! memcache's server fails once (it stops answering and loses its contents, leases included)
//! and comes back empty; lease tokens are never reused. The gutter entry's TTL is one tick of
//! its clock, a timer that may fire at any time after the set. Links are FIFO; messages from
//! different senders reorder freely.
//!
//! **The reduction.** An answer to a web server (hit, miss, wait, failed, the database's reply
//! and acknowledgement) and the database's commit record to mcsqueal are delivered in the step
//! that sends them: what the receiver does next is a message that travels, so every order in
//! which requests, sets and deletes reach the caches and the database is still explored.
//!
//! # Properties
//! - always *memcache never keeps a value older than a delete it processed*: a set whose lease
//!   predates the delete is refused (§3.2.1); sometimes *memcache refuses such a set*;
//! - always *with nothing in flight, memcache holds nothing or the database's value, and the
//!   gutter nothing, the database's value or an entry that expires* (no indefinitely stale
//!   data, §2, §3.3); sometimes *memcache holds the database's new value after a write*;
//! - always *at most one lease token per key is outstanding* (§3.2.1); sometimes *a web server
//!   is told to wait*;
//! - sometimes *the gutter answers a get while memcache is down* (§3.3);
//! - eventually *every web server finishes its operations* (weak fairness: a web server told to
//!   wait gets again until the lease holder's set or a delete lets it through).
//!
//! # Seeded bugs
//! - `no-leases`: plain look-aside. `W0` misses and reads `v0`; `W1` writes `v1` and deletes
//!   the key; `W0`'s set of `v0` is stored, and stays (both always properties; no set is ever
//!   refused and nobody waits).
//! - `update-not-delete`: each writer sets its new value. The two writes commit as `v1` and `v2`
//!   but their updates reach memcache in the other order, and `v1` stays. mcsqueal's delete of
//!   `v2` has come before and does not save it.
//! - `gutter-long-ttl`: memcache is down; `W0` fills the gutter with `v0`, `W1` writes `v1`,
//!   and nothing ever removes the gutter's `v0`: a read that fails over is served it forever.
//! - `lease-per-miss`: two misses get two tokens, and both web servers read the database.
//! - `delete-keeps-lease`: `W0` misses and holds the lease; `W1`'s write deletes the key, which
//!   invalidates `W0`'s token (its set is refused) but leaves the lease counted as out: `W1`'s
//!   read is told to wait, again and again, for a set nobody can make (eventually every web
//!   server finishes).
//!
//! Not modelled: more than one key and memcache server (consistent hashing, §3), lease
//! expiry (10 s; a web server that dies holding a lease is not modelled), stale values
//! returned to waiting clients (§3.2.1's "stale" option), regions and remote markers (§5), cold
//! cluster warmup (§4.3), and replication of the database.

pub mod actor;
pub mod model;

pub use actor::{
    GutterState, Item, McMsg, McRet, McState, McTimer, MemcacheActor, MemcacheBug, MemcacheCfg,
    MemcacheState, Op, Phase, Pool, Token, Version, WebCfg, WebState, WebTcp,
};
pub use model::{MemcacheModel, MemcacheModelCfg};

use crate::catalog::{Bug, Param, Params, Spec};

/// The `memcache` entry of the checker's registry.
pub struct MemcacheSpec;

impl Spec for MemcacheSpec {
    type Model = MemcacheModel;
    type State = model::McModelState;
    type Action = model::McAction;

    const NAME: &'static str = "memcache";
    const PAPER: &'static str =
        "Nishtala et al., Scaling Memcache at Facebook (NSDI 2013) §§2, 3.2.1, 3.3, 4.1";
    const SUMMARY: &'static str =
        "Memcache: look-aside caching with lease tokens, deletes from web servers and mcsqueal, a gutter pool while a server is down";
    const PARAMS: &'static [Param] = &[
        Param::int(
            "ops",
            "operations per web server (W0 reads then writes, W1 writes then reads)",
            2,
            1,
            2,
        ),
        Param::int(
            "failure",
            "1: the memcache server fails once and comes back empty (the gutter takes its gets)",
            1,
            0,
            1,
        ),
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: MemcacheBug::NoLeases.name(),
            breaks: &[
                model::NO_OLDER_THAN_DELETE,
                model::REFUSES_STALE_SET,
                model::NO_STALE_AT_REST,
                model::TOLD_TO_WAIT,
            ],
            help: "no lease tokens: a set is always stored, a stale set after a delete persists",
            params: &[("failure", "0")],
        },
        Bug {
            name: MemcacheBug::UpdateNotDelete.name(),
            breaks: &[model::NO_OLDER_THAN_DELETE, model::NO_STALE_AT_REST],
            help: "a writer sets its new value in memcache instead of deleting the key",
            params: &[("failure", "0")],
        },
        Bug {
            name: MemcacheBug::GutterLongTtl.name(),
            breaks: &[model::NO_STALE_AT_REST],
            help: "gutter entries do not expire quickly: a stale one outlives the failure",
            params: &[],
        },
        Bug {
            name: MemcacheBug::LeasePerMiss.name(),
            breaks: &[model::ONE_LEASE, model::TOLD_TO_WAIT],
            help: "a lease token for every miss: a thundering herd reads the database",
            params: &[("failure", "0")],
        },
        Bug {
            name: MemcacheBug::DeleteKeepsLease.name(),
            breaks: &[model::EVERY_OP_DONE],
            help:
                "a delete invalidates the lease's token but not the lease: later gets wait forever",
            params: &[("failure", "0")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> MemcacheModel {
        let bug = bug.map(|b| {
            MemcacheBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not a MemcacheBug"))
        });
        MemcacheModelCfg::new(params.int("ops") as usize, params.int("failure") == 1, bug)
            .into_model()
    }

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(model::fair_class)
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::McModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::McModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &MemcacheModel, s: &model::McModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(_: &MemcacheModel) -> Option<Vec<String>> {
        Some(model::actor_names())
    }
}

#[cfg(test)]
mod tests;
