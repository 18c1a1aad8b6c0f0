//! Runs a model with one of stateright's checkers, reports progress on stderr, and turns the result
//! into an [`Outcome`] with honest verdicts: a run cut short by a limit never reports "holds".

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use models::catalog::{Params, Spec};
use stateright::{Checker, Expectation, Model, Path, UniformChooser};

use crate::outcome::{Outcome, PropertyOutcome, Status};

/// The search strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth first: shortest counterexamples (with one thread).
    Bfs,
    /// Depth first: little memory.
    Dfs,
    /// Random walks from the initial states, replayable by seed. Never complete.
    Sim { seed: u64 },
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
            Strategy::Sim { .. } => "sim",
        }
    }
}

/// How to check.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub strategy: Strategy,
    pub threads: usize,
    /// Check states up to this depth (the initial states are depth 1, as in TLC and stateright).
    pub depth: Option<usize>,
    /// Stop after this many generated states.
    pub max_states: Option<usize>,
    pub timeout: Option<Duration>,
    /// Explore representatives of symmetry classes (DFS and simulation only).
    pub symmetry: bool,
    /// Report progress on stderr at most once a second.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: Strategy::Bfs,
            threads: 1,
            depth: None,
            max_states: None,
            timeout: None,
            symmetry: false,
            progress: false,
        }
    }
}

/// Checks `S` with `params` and `bug`. The caller has validated the options (the CLI refuses
/// `--symmetry` with BFS, whose stateright checker ignores it, and for models without symmetry).
pub fn check<S: Spec>(params: &Params, bug: Option<&'static str>, opts: &RunOptions) -> Outcome {
    let model = S::build(params, bug);
    let mut builder = model.checker().threads(opts.threads.max(1));
    if let Some(depth) = opts.depth {
        // stateright checks states whose depth is below the target.
        builder = builder.target_max_depth(depth + 1);
    }
    if let Some(n) = opts.max_states {
        builder = builder.target_state_count(n);
    }
    if let Some(t) = opts.timeout {
        builder = builder.timeout(t);
    }
    if opts.symmetry {
        let representative = S::representative().expect("caller checked has_symmetry");
        builder = builder.symmetry_fn(representative);
    }
    let start = Instant::now();
    let finished = match opts.strategy {
        Strategy::Bfs => finish(builder.spawn_bfs(), start, opts),
        Strategy::Dfs => finish(builder.spawn_dfs(), start, opts),
        Strategy::Sim { seed } => {
            finish(builder.spawn_simulation(seed, UniformChooser), start, opts)
        }
    };
    let mut outcome = finished;
    outcome.model = S::NAME.to_string();
    outcome.params = params
        .iter()
        .map(|(k, v)| (k.to_string(), crate::outcome::value_json(v)))
        .collect();
    outcome.bug = bug.map(str::to_string);
    outcome
}

/// Waits for `checker` while reporting progress, then collects the verdicts.
fn finish<M, C>(checker: C, start: Instant, opts: &RunOptions) -> Outcome
where
    M: Model,
    M::State: std::fmt::Debug + Clone + PartialEq,
    M::Action: std::fmt::Debug + Clone + PartialEq,
    C: Checker<M>,
{
    let mut progress = opts.progress.then(Progress::new);
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(p) = progress.as_mut() {
            p.tick(
                checker.state_count(),
                checker.unique_state_count(),
                checker.max_depth(),
                start,
            );
        }
    }
    let checker = checker.join();
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.finish();
    }

    let model = checker.model();
    let properties = model.properties();
    let mut discoveries = checker.discoveries();
    let generated = checker.state_count();
    let max_depth = checker.max_depth();
    let all_discovered = discoveries.len() == properties.len();
    let cut_short = matches!(opts.strategy, Strategy::Sim { .. })
        || opts.timeout.is_some_and(|t| elapsed >= t)
        || opts.max_states.is_some_and(|n| generated >= n)
        || opts.depth.is_some_and(|d| max_depth > d)
        || all_discovered;
    let complete = !cut_short;

    let properties = properties
        .iter()
        .map(|p| {
            let path = discoveries.remove(p.name);
            let status = match (&p.expectation, path.is_some(), complete) {
                (Expectation::Always | Expectation::Eventually, true, _) => Status::Violated,
                (Expectation::Sometimes, true, _) => Status::Found,
                (_, false, false) => Status::Unknown,
                (Expectation::Always | Expectation::Eventually, false, true) => Status::Holds,
                (Expectation::Sometimes, false, true) => Status::NotFound,
            };
            let (trace, explorer_path, last_state) = match path {
                Some(path) => {
                    let encoded = path.encode(model);
                    let (trace, last) = describe(model, path);
                    (Some(trace), Some(format!("#/steps/{encoded}")), Some(last))
                }
                None => (None, None, None),
            };
            PropertyOutcome {
                name: p.name.to_string(),
                expectation: crate::outcome::expectation_name(&p.expectation).to_string(),
                status,
                trace,
                explorer_path,
                last_state,
            }
        })
        .collect();

    Outcome {
        model: String::new(),
        strategy: opts.strategy.name().to_string(),
        seed: match opts.strategy {
            Strategy::Sim { seed } => Some(seed),
            _ => None,
        },
        params: Default::default(),
        bug: None,
        threads: opts.threads,
        symmetry: opts.symmetry,
        unique_states: checker.unique_state_count(),
        generated_states: generated,
        max_depth,
        elapsed_s: elapsed.as_secs_f64(),
        complete,
        properties,
    }
}

/// The steps of a path as formatted actions, and its last state.
fn describe<M>(model: &M, path: Path<M::State, M::Action>) -> (Vec<String>, String)
where
    M: Model,
    M::State: std::fmt::Debug,
    M::Action: std::fmt::Debug,
{
    let last = format!("{:#?}", path.last_state());
    let steps = path
        .into_actions()
        .iter()
        .map(|a| model.format_action(a))
        .collect();
    (steps, last)
}

/// Progress on stderr: a spinner line on a terminal, plain lines otherwise; at most once a second.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: Option<Instant>,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .expect("static template"),
            );
            bar
        });
        Progress { bar, last: None }
    }

    fn tick(&mut self, states: usize, unique: usize, depth: usize, start: Instant) {
        let now = Instant::now();
        if now.duration_since(start) < Duration::from_secs(1)
            || self
                .last
                .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(now);
        let secs = now.duration_since(start).as_secs_f64();
        let rate = states as f64 / secs;
        let line = format!("{states} states, {unique} unique, depth {depth}, {rate:.0} states/s");
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None => eprintln!("progress: {line}, {secs:.1} s"),
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
