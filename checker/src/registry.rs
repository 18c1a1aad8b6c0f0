//! Every model the CLI knows. Adding a model: implement [`models::catalog::Spec`] in its file and add
//! one line to [`MODELS`]. The order here is the order of `checker list` and of the README table.

use std::marker::PhantomData;

use models::catalog::{Bug, Param, Params, Spec};
use stateright::Model;

use crate::outcome::Outcome;
use crate::run::{self, RunOptions};

/// The registered models.
pub static MODELS: &[&dyn Protocol] = &[
    &Registered::<models::twophase::TwoPhaseSpec>::NEW,
    &Registered::<models::tcommit::TCommitSpec>::NEW,
    &Registered::<models::ct::gossip::CtSpec>::NEW,
    &Registered::<models::mapreduce::MapReduceSpec>::NEW,
    &Registered::<models::raft::RaftSpec>::NEW,
    &Registered::<models::raft::RaftTcpSpec>::NEW,
    &Registered::<models::twopc::TwoPcSpec>::NEW,
    &Registered::<models::spanner::SpannerSpec>::NEW,
    &Registered::<models::farm::FarmSpec>::NEW,
    &Registered::<models::chain::ChainSpec>::NEW,
    &Registered::<models::chain::CraqSpec>::NEW,
    &Registered::<models::cops::CopsSpec>::NEW,
    &Registered::<models::gfs::GfsSpec>::NEW,
    &Registered::<models::spark::SparkSpec>::NEW,
    &Registered::<models::zab::ZabSpec>::NEW,
    &Registered::<models::zookeeper::ZkSpec>::NEW,
    &Registered::<models::aurora::AuroraSpec>::NEW,
    &Registered::<models::vmft::VmftSpec>::NEW,
    &Registered::<models::memcache::MemcacheSpec>::NEW,
    &Registered::<models::frangipani::FrangipaniSpec>::NEW,
    &Registered::<models::bitcoin::BitcoinSpec>::NEW,
    &Registered::<models::blockstack::BlockstackSpec>::NEW,
];

/// Looks a model up by its registry name.
pub fn find(name: &str) -> Option<&'static dyn Protocol> {
    MODELS.iter().copied().find(|p| p.name() == name)
}

/// A registered model, with its concrete types erased so that the CLI can hold a list of them.
pub trait Protocol: Sync {
    fn name(&self) -> &'static str;
    fn paper(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn params(&self) -> &'static [Param];
    fn bugs(&self) -> &'static [Bug];
    /// Whether `--symmetry` is available.
    fn has_symmetry(&self) -> bool;
    /// Whether the model declares fairness classes (`--fairness weak` is available).
    fn has_fairness(&self) -> bool;
    /// The depth the baseline in reports/ explores to; `None`: to the end.
    fn baseline_depth(&self) -> Option<usize>;
    /// The properties of the default configuration, in the model's order, then its leads-to
    /// properties: each with its kind (`always`, `sometimes`, `eventually`, `leads-to`).
    fn properties(&self) -> Vec<(&'static str, &'static str)>;
    /// Checks the model with `params` and the named bug seeded.
    fn check(&self, params: &Params, bug: Option<&'static str>, opts: &RunOptions) -> Outcome;
    /// The unique states a breadth-first search up to `depth` (as `--depth`) counts when it
    /// tells states apart by equality, not fingerprints: slow, for tests of the fingerprints.
    fn count_exactly(&self, params: &Params, depth: usize) -> usize;
    /// For an actor model, whether its fingerprints come from its own `hash_state` (which
    /// writes each actor's timer count) rather than stateright's ambiguous `Hash`: its initial
    /// state's two fingerprints differ. `None` for a model that is not an actor model.
    fn fingerprints_actor_states(&self) -> Option<bool>;
    /// The trace viewer's page ([`crate::trace_html`]) for the path `path` (`0/3/1`).
    fn trace_html(
        &self,
        params: &Params,
        bug: Option<&'static str>,
        path: &str,
        header: &crate::trace_html::Header,
    ) -> Result<String, String>;
    /// Serves the workbench's web explorer ([`crate::explorer`]) on `server`; blocks while it
    /// serves.
    fn explore(&self, params: &Params, bug: Option<&'static str>, server: tiny_http::Server);
}

/// The [`Protocol`] of a [`Spec`].
pub struct Registered<S>(PhantomData<fn() -> S>);

impl<S> Registered<S> {
    pub const NEW: Self = Registered(PhantomData);
}

impl<S: Spec> Protocol for Registered<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn paper(&self) -> &'static str {
        S::PAPER
    }

    fn summary(&self) -> &'static str {
        S::SUMMARY
    }

    fn params(&self) -> &'static [Param] {
        S::PARAMS
    }

    fn bugs(&self) -> &'static [Bug] {
        S::BUGS
    }

    fn has_symmetry(&self) -> bool {
        S::representative().is_some()
    }

    fn has_fairness(&self) -> bool {
        S::fairness().is_some()
    }

    fn baseline_depth(&self) -> Option<usize> {
        S::BASELINE_DEPTH
    }

    fn properties(&self) -> Vec<(&'static str, &'static str)> {
        let model = S::build(&Params::defaults(S::PARAMS), None);
        let mut all: Vec<(&'static str, &'static str)> = model
            .properties()
            .into_iter()
            .map(|p| (p.name, crate::outcome::expectation_name(&p.expectation)))
            .collect();
        all.extend(S::leads_to(&model).iter().map(|l| (l.name, "leads-to")));
        all
    }

    fn check(&self, params: &Params, bug: Option<&'static str>, opts: &RunOptions) -> Outcome {
        run::check::<S>(params, bug, opts)
    }

    fn count_exactly(&self, params: &Params, depth: usize) -> usize {
        models::catalog::count_exactly(&S::build(params, None), Some(depth))
    }

    fn fingerprints_actor_states(&self) -> Option<bool> {
        let model = S::build(&Params::defaults(S::PARAMS), None);
        let init = model.init_states().into_iter().next()?;
        S::actors(&init)?;
        Some(
            crate::engine::fingerprint(&init)
                != crate::engine::fingerprint_by(&init, S::hash_state),
        )
    }

    fn trace_html(
        &self,
        params: &Params,
        bug: Option<&'static str>,
        path: &str,
        header: &crate::trace_html::Header,
    ) -> Result<String, String> {
        let indices = crate::explorer::parse_path(path)?;
        crate::trace_html::render::<S>(&S::build(params, bug), &indices, header)
    }

    fn explore(&self, params: &Params, bug: Option<&'static str>, server: tiny_http::Server) {
        let about = crate::explorer::About {
            model: S::NAME.to_string(),
            paper: S::PAPER.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            bug: bug.map(str::to_string),
        };
        crate::explorer::serve(server, S::build(params, bug), about, S::view);
    }
}
