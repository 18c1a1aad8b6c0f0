//! Runs a model with one of stateright's checkers, reports progress on stderr, and turns the result
//! into an [`Outcome`] with honest verdicts: a run cut short by a limit never reports "holds".

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use models::catalog::{Params, Spec};
use stateright::{Checker, Expectation, Model, Path, Property, UniformChooser};

use crate::engine;
pub use crate::liveness::Fairness;
use crate::liveness::Liveness;
use crate::outcome::{Outcome, PropertyOutcome, Status};

/// The search strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth first, level by level (stateright keeps the last violating state it meets in a
    /// block, so a counterexample can be a few steps longer than the shortest).
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

/// Which exploration engine runs BFS and DFS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The workbench's own ([`crate::engine`]): fingerprints, parent ids, exact `eventually`.
    Ours,
    /// stateright's own checkers (simulation always uses stateright's).
    Stateright,
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Ours => "ours",
            Engine::Stateright => "stateright",
        }
    }
}

/// How to check.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub strategy: Strategy,
    pub engine: Engine,
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
    /// Stop at the first counterexample (an `always` or `eventually` property violated).
    pub first_failure: bool,
    /// Shorten counterexamples to `always` properties by removing steps ([`crate::minimise`]).
    /// Always done for simulations and DFS, whose paths are not shortest.
    pub minimise: bool,
    /// The fairness liveness properties are decided under; `None`: weak where the model declares
    /// fairness classes ([`Spec::fairness`]), else none.
    pub fairness: Option<Fairness>,
    /// Leave `eventually` and leads-to properties undecided (no liveness graph).
    pub skip_liveness: bool,
}

impl RunOptions {
    /// Whether counterexamples are minimised: when asked, and for simulations and DFS.
    pub fn minimises(&self) -> bool {
        self.minimise || !matches!(self.strategy, Strategy::Bfs)
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: Strategy::Bfs,
            engine: Engine::Ours,
            threads: 1,
            depth: None,
            max_states: None,
            timeout: None,
            symmetry: false,
            progress: false,
            first_failure: false,
            minimise: false,
            fairness: None,
            skip_liveness: false,
        }
    }
}

/// Checks `S` with `params` and `bug`. The caller has validated the options (the CLI refuses
/// `--symmetry` with BFS, whose stateright checker ignores it, and for models without symmetry).
pub fn check<S: Spec>(params: &Params, bug: Option<&'static str>, opts: &RunOptions) -> Outcome {
    let mut outcome = match (opts.engine, opts.strategy) {
        (Engine::Ours, Strategy::Bfs | Strategy::Dfs) => check_ours::<S>(params, bug, opts),
        _ => check_stateright::<S>(params, bug, opts),
    };
    outcome.model = S::NAME.to_string();
    outcome.params = params
        .iter()
        .map(|(k, v)| (k.to_string(), crate::outcome::value_json(v)))
        .collect();
    outcome.bug = bug.map(str::to_string);
    if let Some(b) = bug.and_then(|b| S::BUGS.iter().find(|x| x.name == b)) {
        outcome.bug_breaks = b.breaks.iter().map(|n| n.to_string()).collect();
    }
    // The depth was the only limit: the summary can say "no violation up to depth N".
    let exhaustive = matches!(opts.strategy, Strategy::Bfs | Strategy::Dfs)
        && opts.max_states.is_none()
        && opts.timeout.is_none()
        && !opts.first_failure;
    if exhaustive {
        outcome.depth_limit = opts.depth;
    }
    // The evidence of each violation, from the model, at the counterexample's last state.
    let model = S::build(params, bug);
    for p in &mut outcome.properties {
        if p.status.as_expected() {
            continue;
        }
        let Some(path) = p
            .explorer_path
            .as_deref()
            .and_then(|l| l.strip_prefix("#/steps/"))
        else {
            continue;
        };
        let Ok(states) = crate::explorer::parse_path(path)
            .and_then(|indices| crate::explorer::walk_all(&model, &indices))
        else {
            continue;
        };
        // Actors by role in the steps: `S1 → RequestVote {..} → S2`.
        if let (Some(names), Some(trace)) = (S::actor_names(&model), p.trace.as_mut()) {
            for step in trace.iter_mut() {
                *step = name_actors(step, &names);
            }
        }
        let last = states.last().expect("a path has a state");
        p.evidence = S::explain(&model, last, &p.name);
        // The paper's view of the last state, and the lines of it each step changed.
        let names = S::actor_names(&model).unwrap_or_default();
        let views: Option<Vec<String>> = states
            .iter()
            .map(|s| S::view(&model, s).map(|v| name_actors(&v, &names)))
            .collect();
        if let Some(views) = views {
            p.changes = Some(
                views
                    .windows(2)
                    .map(|w| changed_lines(&w[0], &w[1]))
                    .collect(),
            );
            p.view = views.last().cloned();
        }
    }
    outcome
}

/// Checks with the workbench's engine.
fn check_ours<S: Spec>(params: &Params, bug: Option<&'static str>, opts: &RunOptions) -> Outcome {
    let model = S::build(params, bug);
    let stop = Arc::new(AtomicBool::new(false));
    let eopts = engine::Options {
        dfs: opts.strategy == Strategy::Dfs,
        threads: opts.threads.max(1),
        // Checked up to depth d: states at depth d + 1 are generated, not checked.
        target_depth: opts.depth.map(|d| d + 1),
        max_states: opts.max_states,
        first_failure: opts.first_failure,
        symmetry: if opts.symmetry {
            S::representative()
        } else {
            None
        },
        fingerprint: |s| engine::fingerprint_by(s, S::hash_state),
        stop: Arc::clone(&stop),
    };
    let fairness = fairness_of::<S>(opts);
    let live = Liveness {
        fairness,
        classes: S::fairness(),
        leads_to: S::leads_to(&model),
        decide: !opts.skip_liveness,
    };
    let stats = engine::Stats::default();
    let start = Instant::now();
    let (report, stopped) = std::thread::scope(|scope| {
        let search = scope.spawn(|| engine::search_live(&model, &eopts, &stats, &live));
        let stopped = watch(
            || search.is_finished(),
            || {
                (
                    stats.generated.load(Ordering::Relaxed),
                    stats.unique.load(Ordering::Relaxed),
                    stats.max_depth.load(Ordering::Relaxed),
                )
            },
            &stop,
            start,
            opts,
        );
        let report = search.join().expect("the search does not panic");
        (report, stopped)
    });
    let elapsed = start.elapsed();
    let properties = model.properties();
    let mut discoveries = report.discoveries;
    let cut_short = stopped
        || !report.exhausted
        || opts.max_states.is_some_and(|n| report.generated >= n)
        || opts.depth.is_some_and(|d| report.max_depth > d);
    let complete = !cut_short;
    let names = S::actor_names(&model).unwrap_or_default();
    let describe_classes = |actions: Vec<S::Action>| -> Vec<String> {
        actions
            .iter()
            .map(|a| name_actors(&model.format_action(a), &names))
            .collect()
    };
    let mut properties: Vec<PropertyOutcome> = properties
        .iter()
        .map(|p| {
            let found = discoveries.remove(p.name);
            let (cycle_start, kept, unfair) = match &found {
                Some(d) => (d.cycle_start, d.kept_enabled.clone(), d.unfair_to.clone()),
                None => (None, Vec::new(), Vec::new()),
            };
            let mut outcome =
                property_outcome(&model, p, found.map(|d| d.path), complete, opts.minimises());
            outcome.cycle_start = cycle_start;
            outcome.kept_enabled = describe_classes(kept);
            outcome.unfair_to = describe_classes(unfair);
            outcome
        })
        .collect();
    // The leads-to properties, decided like `eventually`.
    for l in &live.leads_to {
        let found = discoveries.remove(l.name);
        let shape = Property::<S::Model>::eventually(l.name, l.to);
        let (cycle_start, kept, unfair) = match &found {
            Some(d) => (d.cycle_start, d.kept_enabled.clone(), d.unfair_to.clone()),
            None => (None, Vec::new(), Vec::new()),
        };
        let mut outcome = property_outcome(&model, &shape, found.map(|d| d.path), complete, false);
        outcome.expectation = "leads-to".to_string();
        outcome.cycle_start = cycle_start;
        outcome.kept_enabled = describe_classes(kept);
        outcome.unfair_to = describe_classes(unfair);
        properties.push(outcome);
    }
    if opts.skip_liveness {
        for p in properties
            .iter_mut()
            .filter(|p| matches!(p.expectation.as_str(), "eventually" | "leads-to"))
        {
            p.status = Status::Unknown;
        }
    }
    let has_liveness = !live.leads_to.is_empty()
        || model
            .properties()
            .iter()
            .any(|p| p.expectation == Expectation::Eventually);
    Outcome {
        model: String::new(),
        strategy: opts.strategy.name().to_string(),
        seed: None,
        params: Default::default(),
        bug: None,
        engine: Engine::Ours.name().to_string(),
        threads: opts.threads.max(1),
        symmetry: opts.symmetry,
        unique_states: report.unique,
        generated_states: report.generated,
        max_depth: report.max_depth,
        elapsed_s: elapsed.as_secs_f64(),
        complete,
        properties,
        table_bytes: Some(report.table_bytes),
        bug_breaks: Vec::new(),
        depth_limit: None,
        fairness: has_liveness.then(|| fairness.name().to_string()),
        liveness: report.liveness.map(|l| crate::outcome::LivenessFigures {
            states: l.states,
            edges: l.edges,
            bytes: l.bytes,
            elapsed_s: l.seconds,
        }),
    }
}

/// The fairness `opts` asks for, or the model's default: weak where it declares classes.
pub fn fairness_of<S: Spec>(opts: &RunOptions) -> Fairness {
    match opts.fairness {
        Some(f) => f,
        None if S::fairness().is_some() => Fairness::Weak,
        None => Fairness::None,
    }
}

/// `text` with each `Id(n)` written as `names[n]`.
fn name_actors(text: &str, names: &[String]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("Id(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let end = after.find(')').unwrap_or(0);
        match after[..end]
            .parse::<usize>()
            .ok()
            .and_then(|n| names.get(n))
        {
            Some(name) => {
                out.push_str(name);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("Id(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The lines of `after` that are not in `before` (as a multiset).
fn changed_lines(before: &str, after: &str) -> Vec<String> {
    let mut left: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in before.lines() {
        *left.entry(l).or_default() += 1;
    }
    after
        .lines()
        .filter(|l| match left.get_mut(l) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(str::to_string)
        .collect()
}

/// A property's verdict, with its discovery (if any) described for people and for the explorer.
fn property_outcome<M>(
    model: &M,
    p: &Property<M>,
    path: Option<Path<M::State, M::Action>>,
    complete: bool,
    minimise: bool,
) -> PropertyOutcome
where
    M: Model,
    M::State: std::fmt::Debug + PartialEq + Clone,
    M::Action: std::fmt::Debug + PartialEq + Clone,
{
    let status = status(&p.expectation, path.is_some(), complete);
    let mut minimised_from = None;
    let path = match path {
        Some(path) if minimise && p.expectation == Expectation::Always => {
            let (shorter, before) = crate::minimise::minimise(model, p, path);
            let after = shorter.clone().into_actions().len();
            minimised_from = (after < before).then_some(before);
            Some(shorter)
        }
        path => path,
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
        cycle_start: None,
        evidence: None,
        minimised_from,
        view: None,
        changes: None,
        kept_enabled: Vec::new(),
        unfair_to: Vec::new(),
    }
}

/// A property's verdict from whether it was discovered and whether the run was complete.
fn status(expectation: &Expectation, discovered: bool, complete: bool) -> Status {
    match (expectation, discovered, complete) {
        (Expectation::Always | Expectation::Eventually, true, _) => Status::Violated,
        (Expectation::Sometimes, true, _) => Status::Found,
        (_, false, false) => Status::Unknown,
        (Expectation::Always | Expectation::Eventually, false, true) => Status::Holds,
        (Expectation::Sometimes, false, true) => Status::NotFound,
    }
}

/// Checks with stateright's own checkers.
fn check_stateright<S: Spec>(
    params: &Params,
    bug: Option<&'static str>,
    opts: &RunOptions,
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let model =
        Stoppable::new(S::build(params, bug), Arc::clone(&stop)).with_fairness(S::fairness());
    let mut builder = model.checker().threads(opts.threads.max(1));
    if let Some(depth) = opts.depth {
        // stateright checks states whose depth is below the target.
        builder = builder.target_max_depth(depth + 1);
    }
    if let Some(n) = opts.max_states {
        builder = builder.target_state_count(n);
    }
    if let (Some(t), Strategy::Sim { .. }) = (opts.timeout, opts.strategy) {
        // The simulation checker honours its timeout between walks. BFS and DFS are stopped
        // through `stop` instead: their threads consult stateright's timeout only when their own
        // queue runs dry, which on one thread is the end of the search.
        builder = builder.timeout(t);
    }
    if opts.first_failure {
        builder = builder.finish_when(stateright::HasDiscoveries::AnyFailures);
    }
    if opts.symmetry {
        let representative = S::representative().expect("caller checked has_symmetry");
        builder = builder.symmetry_fn(representative);
    }
    let start = Instant::now();
    match opts.strategy {
        Strategy::Bfs => finish(builder.spawn_bfs(), &stop, start, opts),
        Strategy::Dfs => finish(builder.spawn_dfs(), &stop, start, opts),
        Strategy::Sim { seed } => finish(
            builder.spawn_simulation(seed, UniformChooser),
            &stop,
            start,
            opts,
        ),
    }
}

/// A model that behaves as `inner` until `stop` is set, and then offers no more actions, so that
/// stateright's checkers drain their queues and finish.
pub struct Stoppable<M: Model> {
    inner: M,
    properties: Vec<Property<M>>,
    stop: Arc<AtomicBool>,
    /// The model's fairness classes, if it declares them.
    classes: Option<models::catalog::FairClassOf<M>>,
}

/// The most properties a model may have: [`Stoppable`] forwards each through a fn pointer of its
/// own, and stateright's properties are plain `fn`s that cannot capture which one they forward.
pub const MAX_PROPERTIES: usize = 32;

impl<M: Model> Stoppable<M> {
    pub fn new(inner: M, stop: Arc<AtomicBool>) -> Self {
        let properties = inner.properties();
        assert!(
            properties.len() <= MAX_PROPERTIES,
            "a model may have at most {MAX_PROPERTIES} properties"
        );
        Stoppable {
            inner,
            properties,
            stop,
            classes: None,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Declares the model's fairness classes, for [`Stoppable::cut_off`].
    pub fn with_fairness(mut self, classes: Option<models::catalog::FairClassOf<M>>) -> Self {
        self.classes = classes;
        self
    }

    /// Whether a fair action of `s` leads past the boundary.
    fn cut_off(&self, s: &M::State) -> bool {
        let Some(class) = self.classes else {
            return false;
        };
        let mut actions = Vec::new();
        self.inner.actions(s, &mut actions);
        actions.into_iter().any(|a| {
            class(&self.inner, &a).is_some()
                && self
                    .inner
                    .next_state(s, a)
                    .is_some_and(|n| !self.inner.within_boundary(&n))
        })
    }
}

/// Property `I` of the wrapped model. An `eventually` property also counts as satisfied where a
/// fair action leads past the model's boundary: the path is cut off there, not stuck, as our
/// engine's liveness search has it ([`crate::liveness`]).
fn forward<M: Model, const I: usize>(m: &Stoppable<M>, s: &M::State) -> bool {
    let p = &m.properties[I];
    (p.condition)(&m.inner, s) || (p.expectation == Expectation::Eventually && m.cut_off(s))
}

macro_rules! forwarders {
    ($($i:literal)*) => { [$(forward::<M, $i> as fn(&Stoppable<M>, &M::State) -> bool),*] };
}

impl<M: Model> Model for Stoppable<M> {
    type State = M::State;
    type Action = M::Action;

    fn init_states(&self) -> Vec<Self::State> {
        self.inner.init_states()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        if !self.stopped() {
            self.inner.actions(state, actions);
        }
    }

    fn next_state(&self, state: &Self::State, action: Self::Action) -> Option<Self::State> {
        self.inner.next_state(state, action)
    }

    fn format_action(&self, action: &Self::Action) -> String
    where
        Self::Action: std::fmt::Debug,
    {
        self.inner.format_action(action)
    }

    fn format_step(&self, state: &Self::State, action: Self::Action) -> Option<String>
    where
        Self::State: std::fmt::Debug,
    {
        self.inner.format_step(state, action)
    }

    fn as_svg(&self, path: Path<Self::State, Self::Action>) -> Option<String> {
        self.inner.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let conditions: [fn(&Self, &M::State) -> bool; MAX_PROPERTIES] = forwarders!(
            0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        );
        self.properties
            .iter()
            .zip(conditions)
            .map(|(p, condition)| Property {
                expectation: p.expectation.clone(),
                name: p.name,
                condition,
            })
            .collect()
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        self.inner.within_boundary(state)
    }
}

/// Waits for `checker` while reporting progress and enforcing the timeout, then collects the
/// verdicts.
fn finish<M, C>(checker: C, stop: &AtomicBool, start: Instant, opts: &RunOptions) -> Outcome
where
    M: Model,
    M::State: std::fmt::Debug + Clone + PartialEq,
    M::Action: std::fmt::Debug + Clone + PartialEq,
    C: Checker<M>,
{
    let stopped = watch(
        || checker.is_done(),
        || {
            (
                checker.state_count(),
                checker.unique_state_count(),
                checker.max_depth(),
            )
        },
        stop,
        start,
        opts,
    );
    let checker = checker.join();
    let elapsed = start.elapsed();
    // Paths are rebuilt by replaying actions: the model must offer them again.
    stop.store(false, Ordering::Relaxed);

    let model = checker.model();
    let properties = model.properties();
    let mut discoveries = checker.discoveries();
    if stopped {
        // After the stop every queued state looked terminal, so an `eventually` counterexample
        // found then may be an artefact: keep only those that are terminal in the real model.
        for p in &properties {
            if p.expectation == Expectation::Eventually {
                if let Some(path) = discoveries.get(p.name) {
                    if !is_eventually_counterexample(model, p, path) {
                        discoveries.remove(p.name);
                    }
                }
            }
        }
    }
    let generated = checker.state_count();
    let max_depth = checker.max_depth();
    let all_discovered = discoveries.len() == properties.len();
    let cut_short = matches!(opts.strategy, Strategy::Sim { .. })
        || stopped
        || opts.max_states.is_some_and(|n| generated >= n)
        || opts.depth.is_some_and(|d| max_depth > d)
        || all_discovered
        || (opts.first_failure
            && properties.iter().any(|p| {
                p.expectation != Expectation::Sometimes && discoveries.contains_key(p.name)
            }));
    let complete = !cut_short;

    let properties = properties
        .iter()
        .map(|p| {
            let found = discoveries.remove(p.name);
            property_outcome(model, p, found, complete, opts.minimises())
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
        engine: Engine::Stateright.name().to_string(),
        threads: opts.threads,
        symmetry: opts.symmetry,
        unique_states: checker.unique_state_count(),
        generated_states: generated,
        max_depth,
        elapsed_s: elapsed.as_secs_f64(),
        complete,
        properties,
        table_bytes: None,
        bug_breaks: Vec::new(),
        depth_limit: None,
        fairness: None,
        liveness: None,
    }
}

/// Waits until `done()`, reporting progress from `counts()` (generated, unique, depth) and
/// setting `stop` once the timeout has passed; returns whether it did.
fn watch(
    done: impl Fn() -> bool,
    counts: impl Fn() -> (usize, usize, usize),
    stop: &AtomicBool,
    start: Instant,
    opts: &RunOptions,
) -> bool {
    let mut progress = opts.progress.then(Progress::new);
    let mut stopped = false;
    while !done() {
        std::thread::sleep(Duration::from_millis(20));
        if !stopped && opts.timeout.is_some_and(|t| start.elapsed() >= t) {
            stop.store(true, Ordering::Relaxed);
            stopped = true;
        }
        if let Some(p) = progress.as_mut() {
            let (generated, unique, depth) = counts();
            p.tick(generated, unique, depth, start);
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    stopped
}

/// Whether `path` is a genuine counterexample to the `eventually` property `p`: the condition
/// never holds on it and its last state has no successor.
fn is_eventually_counterexample<M: Model>(
    model: &M,
    p: &Property<M>,
    path: &Path<M::State, M::Action>,
) -> bool
where
    M::State: Clone,
    M::Action: Clone,
{
    let states = path.clone().into_states();
    if states.iter().any(|s| (p.condition)(model, s)) {
        return false;
    }
    let last = states.last().expect("a path has a state");
    let mut actions = Vec::new();
    model.actions(last, &mut actions);
    actions.into_iter().all(|a| {
        model
            .next_state(last, a)
            .is_none_or(|n| !model.within_boundary(&n))
    })
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

/// The process's resident memory in MB, where the system says (Linux's `/proc/self/statm`).
fn resident_mb() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096 / (1 << 20))
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
        let memory = resident_mb().map_or(String::new(), |mb| format!(", {mb} MB"));
        let line =
            format!("{states} states, {unique} unique, depth {depth}, {rate:.0} states/s{memory}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use models::catalog::{Bug, Param, ParamKind};

    /// A counter that climbs from 0 to `limit` and stops there; `eventually` it reaches 10.
    struct Climb {
        limit: u64,
    }

    impl Model for Climb {
        type State = u64;
        type Action = ();

        fn init_states(&self) -> Vec<u64> {
            vec![0]
        }

        fn actions(&self, s: &u64, actions: &mut Vec<()>) {
            if *s < self.limit {
                actions.push(());
            }
        }

        fn next_state(&self, s: &u64, _: ()) -> Option<u64> {
            Some(s + 1)
        }

        fn properties(&self) -> Vec<Property<Self>> {
            vec![
                Property::eventually("reaches 10", |_, s| *s == 10),
                Property::eventually("reaches 2^40", |_, s| *s == 1 << 40),
                Property::always("below 2^50", |_, s| *s < 1 << 50),
            ]
        }
    }

    struct ClimbSpec;

    impl Spec for ClimbSpec {
        type Model = Climb;
        type State = u64;
        type Action = ();
        const NAME: &'static str = "climb";
        const PAPER: &'static str = "test";
        const SUMMARY: &'static str = "test";
        const PARAMS: &'static [Param] = &[Param {
            name: "limit",
            help: "where the climb ends",
            kind: ParamKind::Int {
                default: 5,
                min: 0,
                max: u64::MAX,
            },
        }];
        const BUGS: &'static [Bug] = &[];

        fn build(params: &Params, _: Option<&'static str>) -> Climb {
            Climb {
                limit: params.int("limit"),
            }
        }
    }

    fn run(limit: u64, opts: RunOptions) -> Outcome {
        let mut params = Params::defaults(ClimbSpec::PARAMS);
        params.set("limit", models::catalog::Value::Int(limit));
        check::<ClimbSpec>(&params, None, &opts)
    }

    #[test]
    fn a_path_that_ends_short_of_the_goal_violates_eventually() {
        let o = run(5, RunOptions::default());
        assert!(o.complete);
        assert_eq!(o.properties[0].status, Status::Violated);
        assert_eq!(o.properties[0].trace.as_ref().unwrap().len(), 5);
        assert_eq!(o.properties[1].status, Status::Violated);
        assert_eq!(o.properties[2].status, Status::Holds);

        let o = run(20, RunOptions::default());
        assert_eq!(o.properties[0].status, Status::Holds);
        assert_eq!(o.properties[1].status, Status::Violated);
    }

    #[test]
    fn a_timeout_stops_one_thread_and_leaves_no_false_counterexample() {
        // When the run is stopped, the last state climbed looks terminal to stateright, which then
        // "finds" a path that never reaches 2^40: that must not be reported as a counterexample.
        for strategy in [Strategy::Bfs, Strategy::Dfs] {
            let opts = RunOptions {
                strategy,
                timeout: Some(Duration::from_millis(200)),
                ..RunOptions::default()
            };
            let start = Instant::now();
            let o = run(u64::MAX, opts);
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{strategy:?} did not stop"
            );
            assert!(!o.complete);
            // Reached 10 long before the stop: holds on every path seen, but undecided.
            assert_eq!(o.properties[0].status, Status::Unknown, "{strategy:?}");
            assert_eq!(o.properties[1].status, Status::Unknown, "{strategy:?}");
            assert_eq!(o.properties[2].status, Status::Unknown, "{strategy:?}");
            assert_eq!(o.exit_code(), crate::outcome::EXIT_INCOMPLETE);
        }
    }
}
