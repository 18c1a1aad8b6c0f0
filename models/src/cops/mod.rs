//! COPS: causal+ consistency for a geo-replicated key-value store.
//!
//! Wyatt Lloyd, Michael J. Freedman, Michael Kaminsky and David G. Andersen, "Don't Settle for
//! Eventual: Scalable Causal Consistency for Wide-Area Storage with COPS" (SOSP 2011).
//!
//! # The problem (§1)
//! Alice removes her boss from the access list of her album (`x`), then posts a photo (`y`).
//! Each write goes to her own data centre and is replicated to the others asynchronously, in any
//! order. If her boss's data centre applies the photo first, he sees the photo and then the old
//! access list: the photo depended on the ACL change, and he saw one without the other.
//!
//! # The protocol
//! Actors ([`actor`]): a store node per data centre (here one node holds every key; in COPS a
//! data centre's keys are partitioned over nodes, and `dep_check` goes to the node of the
//! dependency's key) and a client library per session.
//!
//! - **Versions** (§4.1). A put's version is a Lamport timestamp ⟨counter, data centre⟩: the
//!   node increments its clock for each local put and moves it past every version it
//!   receives. Versions are totally ordered, and a version is greater than every version its
//!   writer could have seen.
//! - **Dependencies** (§4.2). The client library keeps a context: the versions the session
//!   read, and its last put. A put carries the context's *nearest* dependencies
//!   (`put_after`), and then the context is the put alone: it stands for everything before it.
//! - **Replication** (§4.3). The local node applies a put at once, answers, and sends it to the
//!   other data centres with its version and dependencies. A remote node applies it only after
//!   `dep_check` finds every dependency applied locally; until then it waits.
//! - **Convergent conflict handling** (§3). Concurrent puts of a key are ordered by version,
//!   and each data centre shows the greatest (last-writer-wins): all converge.
//! - **Get transactions** (COPS-GT, §4.6). Nodes keep old versions with their dependencies.
//!   `get_trans` reads the newest version of each key in a first round; for each key, the
//!   causally correct version is the newest of what was read and of what the values read
//!   depend on; a second round fetches the keys round 1 read too old, by version.
//!
//! # The workload
//! Two data centres. Alice, at data centre 0, puts `x` then `y` (the ACL, then the photo; with
//! three keys, then a comment `z`). Her boss, at data centre 1, takes a `get_trans` of every key
//! (`get-trans`), reads the newest key and then the others (the photo, then the ACL), and puts
//! `x` himself (`conflict`), concurrently with Alice's unless he has seen it. With three data
//! centres (`dcs`), Carol at the third reads the newest key and then `x`: her data centre gets
//! Alice's puts and the boss's, each in any order, and the boss's depends on what he read.
//!
//! # Properties
//! - always *causal+ client history (CCv)*: the sessions' operations, read one at a time,
//!   through `properties::causal` at level CCv (causal convergence, the paper's causal+);
//! - always *get_trans returns a causally consistent snapshot (§4.6)*: the same history with
//!   each `get_trans` as one transaction, at level TCC;
//! - always *convergent conflict handling*: with no replication in flight or waiting, both
//!   data centres show the same version of every key;
//! - always *a version is greater than its dependencies (§4.1)*;
//! - sometimes *a reader sees the photo and then the ACL change it depends on*, *a replicated
//!   put waits for a dependency*, *two concurrent puts conflict and last-writer-wins keeps one*,
//!   *get_trans needs its second round*;
//! - eventually *every operation returns and every put reaches every data centre* (the
//!   model's paths are finite, so the engine decides it exactly).
//!
//! # Seeded bugs
//! - `no-deps`: puts replicate without dependencies. The boss's data centre applies the photo
//!   before the ACL change, and he sees the photo and then the old ACL (`WriteCOInitRead` at
//!   CCv).
//! - `wall-clock-versions`: a node's counter is its own (no Lamport update on receipt) and ties
//!   keep what is there (no data-centre tie break): both data centres give their put of `x`
//!   version 1, each keeps its own, and they never converge; and a put made after reading a
//!   remote version gets a smaller version than its dependency.
//! - `no-wake`: a put that waits for a dependency is not looked at again when the dependency
//!   arrives: it never becomes visible there (the eventually property).
//! - `single-round-get-trans`: `get_trans` returns its first round: the old ACL with the new
//!   photo (`WriteCORead` at TCC; each read alone is causal).
//!
//! Not modelled: more than one node per data centre (so `dep_check` is local), node and data
//! centre failures (§5.2), garbage collection of old versions and dependencies (§5.1), and
//! conflict handlers other than last-writer-wins.

pub mod actor;
pub mod model;

pub use actor::{
    key_name, ClientCfg, ClientState, CopsActor, CopsBug, CopsMsg, CopsOp, CopsRet, CopsState,
    CopsTimer, Dep, Key, NodeCfg, NodeState, Seen, Stored, Value, Version, Waiting,
};
pub use model::{CopsCfg, CopsModel};

use crate::catalog::{Bug, Param, Params, Spec};

const PARAMS: &[Param] = &[
    Param::int(
        "dcs",
        "data centres: Alice at DC0, her boss at DC1, Carol reading at DC2",
        3,
        2,
        3,
    ),
    Param::int("keys", "keys: x, y, z (Alice puts each in turn)", 3, 2, 3),
    Param::int(
        "get-trans",
        "whether the boss starts with a get_trans of every key (COPS-GT, §4.6)",
        1,
        0,
        1,
    ),
    Param::int(
        "conflict",
        "whether the boss ends with a put of x, concurrent with Alice's",
        1,
        0,
        1,
    ),
];

/// The `cops` entry of the checker's registry.
pub struct CopsSpec;

impl Spec for CopsSpec {
    type Model = CopsModel;
    type State = model::CopsModelState;
    type Action = model::CopsAction;

    const NAME: &'static str = "cops";
    const PAPER: &'static str =
        "Lloyd, Freedman, Kaminsky & Andersen, Don't Settle for Eventual: Scalable Causal Consistency for Wide-Area Storage with COPS (SOSP 2011) §§3, 4";
    const SUMMARY: &'static str =
        "COPS: causal+ across two data centres by Lamport versions, dependencies, dep_check and get_trans";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: CopsBug::NoDeps.name(),
            breaks: &["causal+ client history (CCv)"],
            help: "puts replicate without dependencies: the photo is seen before the ACL change",
            params: &[("dcs", "2"), ("keys", "2"), ("get-trans", "0"), ("conflict", "0")],
        },
        Bug {
            name: CopsBug::WallClockVersions.name(),
            breaks: &[
                "convergent conflict handling: with nothing in flight the data centres agree",
                "a version is greater than its dependencies (§4.1)",
            ],
            help: "no Lamport update on receipt and no tie break: the data centres diverge",
            params: &[("dcs", "2"), ("keys", "2"), ("get-trans", "0")],
        },
        Bug {
            name: CopsBug::SingleRoundGetTrans.name(),
            breaks: &[
                "get_trans returns a causally consistent snapshot (§4.6)",
                "get_trans needs its second round (§4.6)",
            ],
            help: "get_trans returns its first round: a mixed snapshot",
            params: &[("dcs", "2"), ("keys", "2"), ("conflict", "0")],
        },
        Bug {
            name: CopsBug::NearestDepsGetTrans.name(),
            breaks: &["get_trans returns a causally consistent snapshot (§4.6)"],
            help: "values keep only their nearest dependencies: get_trans misses a dependency's dependency",
            params: &[("dcs", "2"), ("keys", "3"), ("conflict", "0")],
        },
        Bug {
            name: CopsBug::NoWake.name(),
            breaks: &["every operation returns and every put reaches every data centre"],
            help: "a put waiting for a dependency is not re-checked when it arrives: it waits for good",
            params: &[("dcs", "2"), ("keys", "2"), ("get-trans", "0"), ("conflict", "0")],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::CopsModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::CopsModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &CopsModel, s: &model::CopsModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &CopsModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(m: &CopsModel, s: &model::CopsModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn build(params: &Params, bug: Option<&'static str>) -> CopsModel {
        let bug = bug.map(|b| {
            CopsBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a CopsBug"))
        });
        CopsCfg {
            dcs: params.int("dcs") as usize,
            keys: params.int("keys") as usize,
            get_trans: params.int("get-trans") == 1,
            conflict: params.int("conflict") == 1,
            bug,
        }
        .into_model()
    }
}

#[cfg(test)]
mod tests;
