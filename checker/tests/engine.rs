//! Our exploration engine against stateright's checkers: the same counts and verdicts on every
//! registered model, discoveries that replay, exact `eventually` with lassos, and the same counts
//! whatever the thread count or strategy under symmetry.

use checker::engine::{self, Options, Stats};
use checker::run::Engine;
use checker::{RunOptions, Status, Strategy, MODELS};
use models::catalog::Params;
use stateright::{Checker, Model, Property};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn opts(engine: Engine, strategy: Strategy, threads: usize) -> RunOptions {
    RunOptions {
        engine,
        strategy,
        threads,
        ..RunOptions::default()
    }
}

/// Every registered model's default configuration: our BFS finds stateright's unique and generated
/// counts, depth and verdicts, and each discovery is a path stateright replays (the CLI encodes it
/// for the explorer through `Path::encode`, after `Path::from_actions` validated it). Raft, whose
/// stateright run takes over a minute, is compared through its baseline in reports/, which
/// stateright's BFS wrote (the reports test).
/// Models compared with stateright's checker up to a depth only: complete, they take minutes
/// (gfs: 1,517,685 states to depth 73, about 90 s with stateright on 2 cores; aurora: 291,607
/// states, 15 s in a release build) or, with stateright's single thread, several seconds each
/// (bitcoin, zookeeper, craq, cops: 4.7-8.1 s in a release build); the reports test still
/// checks their full counts against the baselines.
const COMPARE_DEPTH: &[(&str, usize)] = &[
    ("gfs", 25),
    ("aurora", 12),
    ("bitcoin", 8),
    ("zookeeper", 14),
    ("craq", 14),
    ("cops", 18),
];

#[test]
fn every_model_has_stateright_counts_and_verdicts() {
    for m in MODELS.iter().filter(|m| !UNCOMPARED.contains(&m.name())) {
        let params = Params::defaults(m.params());
        // A model too large to explore to the end is compared to its baseline depth, and a
        // model slow to explore with stateright's single-threaded checker to a smaller one.
        let depth = m.baseline_depth().or_else(|| {
            COMPARE_DEPTH
                .iter()
                .find(|(name, _)| *name == m.name())
                .map(|(_, d)| *d)
        });
        let ours = m.check(
            &params,
            None,
            &RunOptions {
                depth,
                ..opts(Engine::Ours, Strategy::Bfs, 2)
            },
        );
        let theirs = m.check(
            &params,
            None,
            &RunOptions {
                depth,
                ..opts(Engine::Stateright, Strategy::Bfs, 1)
            },
        );
        if STATERIGHT_MERGES.contains(&m.name()) {
            assert!(ours.unique_states > theirs.unique_states, "{}", m.name());
        } else {
            assert_eq!(ours.unique_states, theirs.unique_states, "{}", m.name());
            assert_eq!(
                ours.generated_states,
                theirs.generated_states,
                "{}",
                m.name()
            );
        }
        assert_eq!(ours.max_depth, theirs.max_depth, "{}", m.name());
        assert_eq!(ours.complete, theirs.complete, "{}", m.name());
        assert!(ours.complete || depth.is_some(), "{}", m.name());
        for (a, b) in ours.properties.iter().zip(&theirs.properties) {
            assert_eq!((&a.name, a.status), (&b.name, b.status), "{}", m.name());
            if a.status == Status::Found {
                let path = a.explorer_path.as_deref().expect("a discovery has a path");
                assert!(path.starts_with("#/steps/"), "{path}");
                // Breadth first and level by level: never longer than stateright's.
                assert!(
                    a.trace.as_ref().unwrap().len() <= b.trace.as_ref().unwrap().len(),
                    "{}: {}",
                    m.name(),
                    a.name
                );
            }
        }
    }
}

/// Models left out of the comparisons with stateright: raft (its own test, the largest).
const UNCOMPARED: &[&str] = &["raft"];

/// Models whose states stateright's checkers merge: two states whose timers differ only in which
/// of two neighbouring actors holds one hash alike through stateright's `Hash` (see
/// `models::catalog::hash_actor_state`), and stateright keeps fingerprints only. Aurora's
/// segments of a zone: one failed and back while the other is still to fail, and the other way
/// round. Our engine fingerprints them apart and counts what full equality counts (below).
const STATERIGHT_MERGES: &[&str] = &["aurora"];

/// Every actor model fingerprints its states through `hash_state`, not stateright's `Hash`.
#[test]
fn every_actor_model_fingerprints_each_actors_timers() {
    let actor_models: Vec<&str> = MODELS
        .iter()
        .filter(|m| m.fingerprints_actor_states().is_some())
        .map(|m| m.name())
        .collect();
    assert!(actor_models.contains(&"aurora") && actor_models.contains(&"raft"));
    for m in MODELS.iter() {
        assert_ne!(m.fingerprints_actor_states(), Some(false), "{}", m.name());
    }
}

/// Every model, breadth first to depth 7: our unique count is the count of a search that tells
/// states apart by equality, with every thread count; stateright's too except where it merges
/// distinct states.
#[test]
fn fingerprints_tell_apart_what_equality_tells_apart() {
    const DEPTH: usize = 7;
    for m in MODELS.iter() {
        let params = Params::defaults(m.params());
        let exact = m.count_exactly(&params, DEPTH);
        for threads in [1, 2] {
            let ours = m.check(
                &params,
                None,
                &RunOptions {
                    depth: Some(DEPTH),
                    ..opts(Engine::Ours, Strategy::Bfs, threads)
                },
            );
            assert_eq!(ours.unique_states, exact, "{} with {threads}", m.name());
        }
        let theirs = m.check(
            &params,
            None,
            &RunOptions {
                depth: Some(DEPTH),
                ..opts(Engine::Stateright, Strategy::Bfs, 1)
            },
        );
        if STATERIGHT_MERGES.contains(&m.name()) {
            assert!(theirs.unique_states < exact, "{}", m.name());
        } else {
            assert_eq!(theirs.unique_states, exact, "{}", m.name());
        }
    }
}

/// Every seeded bug of every model but raft and those whose states stateright merges: the same
/// verdicts as stateright (but an `eventually` broken by a lasso, which stateright misses), with
/// a counterexample no longer than stateright's.
#[test]
fn every_seeded_bug_is_caught_as_stateright_catches_it() {
    for m in MODELS
        .iter()
        .filter(|m| !UNCOMPARED.contains(&m.name()) && !STATERIGHT_MERGES.contains(&m.name()))
    {
        for bug in m.bugs() {
            let params = bug.configure(m.params(), &Params::defaults(m.params()));
            let ours = m.check(
                &params,
                Some(bug.name),
                &opts(Engine::Ours, Strategy::Bfs, 2),
            );
            let theirs = m.check(
                &params,
                Some(bug.name),
                &opts(Engine::Stateright, Strategy::Bfs, 1),
            );
            assert_eq!(ours.unique_states, theirs.unique_states, "{}", bug.name);
            for (a, b) in ours.properties.iter().zip(&theirs.properties) {
                // stateright's `eventually` sees only paths that end: a lasso (a cycle that
                // never reaches the condition) is ours alone.
                let lasso = a.cycle_start.is_some() && b.status == Status::Holds;
                if a.expectation == "eventually" && a.status == Status::Violated && lasso {
                    continue;
                }
                assert_eq!(a.status, b.status, "{} {}", bug.name, a.name);
                if a.status == Status::Violated && a.expectation == "always" {
                    assert!(
                        a.trace.as_ref().unwrap().len() <= b.trace.as_ref().unwrap().len(),
                        "{} {}",
                        bug.name,
                        a.name
                    );
                }
            }
        }
    }
}

#[test]
fn counts_do_not_depend_on_threads_or_on_the_strategy_under_symmetry() {
    let farm = checker::find("farm").unwrap();
    let params = Params::defaults(farm.params());
    let one = farm.check(&params, None, &opts(Engine::Ours, Strategy::Bfs, 1));
    let two = farm.check(&params, None, &opts(Engine::Ours, Strategy::Bfs, 2));
    let dfs = farm.check(&params, None, &opts(Engine::Ours, Strategy::Dfs, 1));
    for o in [&two, &dfs] {
        assert_eq!(
            (o.unique_states, o.generated_states),
            (one.unique_states, one.generated_states)
        );
    }
    assert_eq!(one.max_depth, two.max_depth);
    // With one thread, traces are deterministic.
    let again = farm.check(&params, None, &opts(Engine::Ours, Strategy::Bfs, 1));
    assert_eq!(one.properties, again.properties);

    let twophase = checker::find("twophase").unwrap();
    let mut params = Params::defaults(twophase.params());
    params.set("rms", models::catalog::Value::Int(5));
    let sym = |strategy, threads| {
        let o = twophase.check(
            &params,
            None,
            &RunOptions {
                symmetry: true,
                ..opts(Engine::Ours, strategy, threads)
            },
        );
        (o.unique_states, o.generated_states)
    };
    let bfs = sym(Strategy::Bfs, 2);
    assert_eq!(bfs, sym(Strategy::Dfs, 1));
    assert_eq!(bfs, sym(Strategy::Bfs, 1));
    let full = twophase.check(&params, None, &opts(Engine::Ours, Strategy::Bfs, 2));
    assert!(bfs.0 < full.unique_states, "symmetry reduces: {bfs:?}");
    // stateright's DFS with the same representative agrees.
    let theirs = twophase.check(
        &params,
        None,
        &RunOptions {
            symmetry: true,
            ..opts(Engine::Stateright, Strategy::Dfs, 1)
        },
    );
    assert_eq!(bfs, (theirs.unique_states, theirs.generated_states));
}

/// A counter that goes 0 -> 1 -> 2 -> 0 forever, or from 2 to 3 and stops: "eventually 3" fails on
/// the loop, and "eventually 1 or more" holds everywhere.
struct Loop {
    exit: bool,
}

impl Model for Loop {
    type State = u8;
    type Action = u8;

    fn init_states(&self) -> Vec<u8> {
        vec![0]
    }

    fn actions(&self, s: &u8, actions: &mut Vec<u8>) {
        match *s {
            0 | 1 => actions.push(s + 1),
            2 => {
                actions.push(0);
                if self.exit {
                    actions.push(3);
                }
            }
            _ => {}
        }
    }

    fn next_state(&self, _: &u8, a: u8) -> Option<u8> {
        Some(a)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::eventually("reaches 3", |_, s| *s == 3),
            Property::eventually("leaves 0", |_, s| *s >= 1),
            Property::always("below 4", |_, s| *s < 4),
        ]
    }
}

fn ours<M>(model: &M) -> engine::Report<M::State, M::Action>
where
    M: Model + Sync,
    M::State: Clone + std::hash::Hash + PartialEq + Send + Sync,
    M::Action: Clone + PartialEq,
{
    let opts = Options {
        dfs: false,
        threads: 1,
        target_depth: None,
        max_states: None,
        first_failure: false,
        symmetry: None,
        fingerprint: engine::fingerprint::<M::State>,
        stop: Arc::new(AtomicBool::new(false)),
    };
    engine::search(model, &opts, &Stats::default())
}

#[test]
fn eventually_is_violated_by_a_cycle_that_stateright_misses() {
    for exit in [false, true] {
        let model = Loop { exit };
        let report = ours(&model);
        let lasso = &report.discoveries["reaches 3"];
        assert_eq!(lasso.cycle_start, Some(0), "exit={exit}");
        let states = lasso.path.clone().into_states();
        assert_eq!(states, vec![0, 1, 2, 0]);
        assert!(!report.discoveries.contains_key("leaves 0"));
        assert!(!report.discoveries.contains_key("below 4"));

        let theirs = model.checker().spawn_bfs().join();
        assert!(
            theirs.discovery("reaches 3").is_none(),
            "stateright sees no violation on acyclic paths"
        );
    }
}

/// A path that ends before the condition holds is a finite counterexample, found by both.
#[test]
fn eventually_agrees_with_stateright_on_acyclic_models() {
    struct Climb;
    impl Model for Climb {
        type State = u8;
        type Action = u8;
        fn init_states(&self) -> Vec<u8> {
            vec![0]
        }
        fn actions(&self, s: &u8, actions: &mut Vec<u8>) {
            if *s < 5 {
                actions.push(1);
                actions.push(2);
            }
        }
        fn next_state(&self, s: &u8, a: u8) -> Option<u8> {
            Some(s + a)
        }
        fn properties(&self) -> Vec<Property<Self>> {
            vec![
                Property::eventually("reaches 5 or more", |_, s| *s >= 5),
                Property::eventually("reaches exactly 6", |_, s| *s == 6),
            ]
        }
    }
    let report = ours(&Climb);
    let theirs = Climb.checker().spawn_bfs().join();
    assert!(!report.discoveries.contains_key("reaches 5 or more"));
    assert!(theirs.discovery("reaches 5 or more").is_none());
    let ce = &report.discoveries["reaches exactly 6"];
    assert_eq!(ce.cycle_start, None);
    let last = *ce.path.last_state();
    assert!(last == 5, "a dead end short of 6: {last}");
    assert!(theirs.discovery("reaches exactly 6").is_some());
    assert_eq!(report.unique, theirs.unique_state_count());
    assert_eq!(report.generated, theirs.state_count());
}

#[test]
fn the_cli_prints_a_lasso() {
    // The twophase model has no eventually property; the CLI prints lassos through the same
    // outcome code that this checks directly.
    let o = checker::outcome::Outcome {
        model: "m".into(),
        strategy: "bfs".into(),
        seed: None,
        params: Default::default(),
        bug: None,
        engine: "ours".into(),
        threads: 1,
        symmetry: false,
        unique_states: 3,
        generated_states: 3,
        max_depth: 3,
        elapsed_s: 0.0,
        table_bytes: None,
        complete: true,
        properties: vec![checker::PropertyOutcome {
            name: "reaches 3".into(),
            expectation: "eventually".into(),
            status: Status::Violated,
            trace: Some(vec!["1".into(), "2".into(), "0".into()]),
            explorer_path: Some("#/steps/0/0/0/0".into()),
            last_state: Some("0".into()),
            cycle_start: Some(0),
            evidence: None,
            minimised_from: None,
            view: None,
            changes: None,
            kept_enabled: Vec::new(),
            unfair_to: Vec::new(),
        }],
        bug_breaks: Vec::new(),
        depth_limit: None,
        fairness: None,
        liveness: None,
    };
    let text = o.summary("checker m");
    assert!(text.contains("steps 1..3 repeat"), "{text}");
    assert!(text.contains("no fairness"), "{text}");
}
