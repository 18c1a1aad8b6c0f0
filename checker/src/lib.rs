//! The workbench's model checker front end: a registry of models, a runner around stateright's
//! checkers with progress and honest verdicts, the report baselines in `reports/`, and the `checker`
//! CLI built on them.
//!
//! - [`registry`]: every model the CLI knows, one line each, behind the object-safe [`Protocol`].
//! - [`run`]: runs a model with BFS, DFS or simulation and returns an [`Outcome`].
//! - [`outcome`]: verdicts, counterexample traces, the human summary and the `--json` object.
//! - [`reports`]: the checked-in baselines in `reports/` and the README's model table.
//! - [`history`]: `checker history`, the linearizability check of recorded histories.
//! - [`bitcoin_headers`]: `checker bitcoin headers`, a file of Bitcoin block headers validated and
//!   its most-work tip found.
//! - [`merkle_vectors`]: `checker merkle verify`, our Merkle tree against published vectors.

pub mod bitcoin_headers;
pub mod engine;
pub mod explorer;
pub mod history;
pub mod liveness;
pub mod merkle_vectors;
pub mod minimise;
pub mod outcome;
pub mod registry;
pub mod reports;
pub mod run;
pub mod trace_html;

pub use outcome::{Outcome, PropertyOutcome, Status};
pub use registry::{find, Protocol, MODELS};
pub use run::{RunOptions, Strategy};
