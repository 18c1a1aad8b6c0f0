//! Spark: RDD lineage and the recovery of lost partitions and shuffle outputs.
//!
//! Matei Zaharia et al., "Resilient Distributed Datasets: A Fault-Tolerant Abstraction for
//! In-Memory Cluster Computing" (NSDI 2012).
//!
//! # The problem (§2.1, §4, §5.1)
//! An RDD is not replicated. It is rebuilt: "an RDD has enough information about how it was
//! derived from other datasets (its lineage) to compute its partitions from data in stable
//! storage". Dependencies are *narrow* (each child partition needs one parent partition: `map`,
//! `filter`, a join of co-partitioned RDDs) or *wide* (a child partition needs every parent
//! partition: `reduceByKey`, `groupByKey`). The scheduler cuts a job into stages at wide
//! dependencies. A stage's tasks pipeline its narrow transformations, and its map tasks leave
//! their shuffle output on their worker (§4). When a worker dies, its cached partitions are
//! recomputed from their parents. Its shuffle outputs are gone too: the reduce tasks that fetch
//! them fail, and the scheduler resubmits the parent stage for the lost map outputs before it
//! runs them again (§5.1: "if a task fails, we re-run it on another node as long as its stage's
//! parents are still available. If some stages have become unavailable (e.g., because an output
//! from the 'map side' of a shuffle was lost), we resubmit tasks to compute the missing
//! partitions in parallel").
//!
//! # The model
//! Actors ([`actor`]): a driver (the DAG scheduler: stages, the registry of map outputs, the
//! results) and two workers (map outputs, cached partitions, shuffle fetches from each other).
//! Stable storage is the configuration: it never fails. Jobs (`--job`):
//! - `wordcount`: input (2 partitions) → `map` (narrow) → `reduceByKey` (wide) → `collect`;
//! - `pagerank`: two iterations of §3.2.2's PageRank on three vertices, the links RDD
//!   partitioned and persisted, the ranks co-partitioned with it (the join is narrow): three
//!   stages;
//! - `repartition`: input → `repartition(2)` → `collect`, a round-robin shuffle whose output
//!   depends on the order a task reads its input in (here, on the attempt).
//!
//! One worker may crash: it is down for a while and loses its memory. The driver declares it
//! lost when its heartbeats stop, or when it registers again; either way the driver forgets the
//! map outputs and tasks it had, and runs them again (a task lost with its worker has not
//! failed). A task that fails `crashes + 1` times (a failed fetch, a failed computation)
//! aborts the job.
//!
//! # Properties
//! - always *the collected result equals the failure-free result (§2.1)*;
//! - always *a task runs only when its parents are available (§4)*: no task is launched while a
//!   map output of its parent stage is registered nowhere;
//! - sometimes *a lost shuffle output makes the scheduler resubmit the parent stage (§5.1)*,
//!   *the job completes after a worker crash*, and (PageRank) *a lost cached partition is
//!   recomputed from its lineage (§2.1)*;
//! - eventually *the job completes*.
//!
//! # Seeded bugs
//! - `narrow-recovery-for-wide`: a reduce task whose fetch failed is run again at once, as if
//!   its dependency were narrow, without resubmitting the parent stage (breaks "parents are
//!   available", and the job runs out of attempts).
//! - `indeterminate-retry`: a lost map output of the round-robin stage is recomputed alone, and
//!   the result partitions computed from its old output are kept. The new attempt assigns
//!   records differently, so some are lost and some collected twice (SPARK-23207: "returns
//!   931532, instead of 1000000"). Spark's fix, which the driver follows, is to recompute every
//!   result that read the indeterminate stage.
//! - `persist-is-durable`: a persisted RDD's lineage is dropped. A cached partition lost with
//!   its worker cannot be recomputed, and the job never completes.
//!
//! Not modelled: speculative tasks, the external shuffle service, checkpointing (§5.4), and
//! partial results of an aborted job.

pub mod actor;
pub mod model;
#[cfg(test)]
mod tests;

pub use actor::*;
pub use model::{SparkCfg, SparkModel};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

const PARAMS: &[Param] = &[
    Param {
        name: "job",
        help: "wordcount (map, reduceByKey), pagerank (2 iterations on 3 vertices), repartition (round robin)",
        kind: ParamKind::Choice {
            choices: Job::NAMES,
        },
    },
    Param::int(
        "crashes",
        "worker crashes: down for a while, its memory lost",
        1,
        0,
        2,
    ),
];

/// The `spark` entry of the checker's registry.
pub struct SparkSpec;

impl Spec for SparkSpec {
    type Model = SparkModel;
    type State = model::SparkModelState;
    type Action = model::SparkAction;

    const NAME: &'static str = "spark";
    const PAPER: &'static str =
        "Zaharia et al., Resilient Distributed Datasets (NSDI 2012) §§2.1, 3.2.2, 4, 5.1";
    const SUMMARY: &'static str =
        "Spark: stages cut at wide dependencies, lost partitions rebuilt from lineage, lost shuffle outputs resubmitted";
    const PARAMS: &'static [Param] = PARAMS;
    const BUGS: &'static [Bug] = &[
        Bug {
            name: SparkBug::NarrowRecoveryForWide.name(),
            breaks: &[
                "a task runs only when its parents are available (§4)",
                "the job completes",
            ],
            help: "a reduce task whose fetch failed is rerun at once, without resubmitting the \
                   parent stage",
            params: &[("job", "wordcount")],
        },
        Bug {
            name: SparkBug::IndeterminateRetry.name(),
            breaks: &["the collected result equals the failure-free result (§2.1)"],
            help: "a lost output of the round-robin stage is recomputed alone and the results \
                   read from the old one are kept (SPARK-23207)",
            params: &[("job", "repartition")],
        },
        Bug {
            name: SparkBug::PersistIsDurable.name(),
            breaks: &[
                "a lost cached partition is recomputed from its lineage (§2.1)",
                "the job completes",
            ],
            help: "a persisted RDD's lineage is dropped: a lost cached partition cannot be \
                   recomputed",
            params: &[("job", "pagerank")],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::SparkModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::SparkModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &SparkModel, s: &model::SparkModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &SparkModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(m: &SparkModel, s: &model::SparkModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }

    fn build(params: &Params, bug: Option<&'static str>) -> SparkModel {
        let bug = bug.map(|b| {
            SparkBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a SparkBug"))
        });
        SparkCfg {
            job: Job::from_name(params.choice("job")).expect("a declared job"),
            crashes: params.int("crashes") as usize,
            bug,
        }
        .into_model()
    }
}
