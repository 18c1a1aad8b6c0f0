//! Spark's runtime (Zaharia et al., NSDI 2012): resilient distributed datasets ([`rdd`]) and
//! PageRank on them ([`pagerank`]). The scheduler follows the rules `checker spark` checks
//! (stages cut at shuffles, lost map outputs resubmitted, lost cached partitions recomputed
//! from lineage); its workers are threads of one process with memories of their own.
//! Running the driver and workers as processes, with the model's driver actor as the
//! scheduler, is the next step (issue 20).

pub mod pagerank;
pub mod rdd;
