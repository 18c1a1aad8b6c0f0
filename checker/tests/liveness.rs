//! Liveness under weak fairness (`checker::liveness`): an unfair loop is a counterexample only
//! without fairness, a fair loop is one under both, a stop is one under both, a bound cuts a path
//! off only where the action past it is fair, and leads-to is decided from every state where its
//! premise holds. Each on a model small enough to read, through both of the engine's ways of
//! building the graph (recorded by BFS, rebuilt after DFS).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use checker::engine::{self, Options, Stats};
use checker::liveness::{Fairness, Liveness};
use models::catalog::LeadsTo;
use stateright::{Model, Property};

fn run<M>(
    model: &M,
    fairness: Fairness,
    classes: fn(&M, &M::Action) -> Option<u64>,
    leads_to: Vec<LeadsTo<M>>,
    dfs: bool,
) -> engine::Report<M::State, M::Action>
where
    M: Model + Sync,
    M::State: Clone + std::hash::Hash + PartialEq + Send + Sync,
    M::Action: Clone + PartialEq,
{
    let opts = Options {
        dfs,
        threads: 2,
        target_depth: None,
        max_states: None,
        first_failure: false,
        symmetry: None,
        fingerprint: engine::fingerprint::<M::State>,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let live = Liveness {
        fairness,
        classes: Some(classes),
        leads_to,
        decide: true,
    };
    let report = engine::search_live(model, &opts, &Stats::default(), &live);
    assert!(report.exhausted);
    report
}

/// A client sends a request and retransmits it on a timer until the server's reply arrives; the
/// request may also be delivered. Retransmitting while the request is in flight changes nothing,
/// so the timer can fire forever while the request waits: a loop that is unfair to the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Rpc {
    /// The client's retransmission timer fires.
    Retransmit,
    /// The network delivers the request and the server replies.
    Deliver,
    /// The network loses the request (the environment's choice: no fairness owed).
    Lose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RpcState {
    in_flight: bool,
    replied: bool,
}

struct Retry {
    lossy: bool,
}

impl Model for Retry {
    type State = RpcState;
    type Action = Rpc;

    fn init_states(&self) -> Vec<RpcState> {
        vec![RpcState {
            in_flight: true,
            replied: false,
        }]
    }

    fn actions(&self, s: &RpcState, actions: &mut Vec<Rpc>) {
        if s.replied {
            return;
        }
        actions.push(Rpc::Retransmit);
        if s.in_flight {
            actions.push(Rpc::Deliver);
            if self.lossy {
                actions.push(Rpc::Lose);
            }
        }
    }

    fn next_state(&self, s: &RpcState, a: Rpc) -> Option<RpcState> {
        Some(match a {
            Rpc::Retransmit => RpcState {
                in_flight: true,
                ..*s
            },
            Rpc::Deliver => RpcState {
                in_flight: false,
                replied: true,
            },
            Rpc::Lose => RpcState {
                in_flight: false,
                ..*s
            },
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::eventually(
            "the client gets its reply",
            |_, s: &RpcState| s.replied,
        )]
    }
}

fn rpc_classes(_: &Retry, a: &Rpc) -> Option<u64> {
    match a {
        Rpc::Retransmit => Some(1),
        Rpc::Deliver => Some(2),
        Rpc::Lose => None,
    }
}

#[test]
fn an_unfair_loop_is_reported_without_fairness_only() {
    for dfs in [false, true] {
        let model = Retry { lossy: false };
        let none = run(&model, Fairness::None, rpc_classes, vec![], dfs);
        let lasso = &none.discoveries["the client gets its reply"];
        // The timer fires forever on the first state, the request never delivered.
        assert_eq!(lasso.cycle_start, Some(0));
        assert_eq!(lasso.path.clone().into_actions(), vec![Rpc::Retransmit]);
        assert_eq!(
            lasso.unfair_to,
            vec![Rpc::Deliver],
            "the loop starves the delivery"
        );
        assert_eq!(lasso.kept_enabled, vec![Rpc::Retransmit]);

        let weak = run(&model, Fairness::Weak, rpc_classes, vec![], dfs);
        assert!(weak.discoveries.is_empty(), "dfs={dfs}");
        let stats = weak.liveness.expect("the liveness search ran");
        assert_eq!((stats.states, stats.edges), (2, 2));
    }
}

#[test]
fn a_loop_fair_to_every_class_is_reported_under_weak_fairness() {
    // With loss, the request is lost and retransmitted forever: each class enabled throughout
    // the loop (the timer) is taken, and the delivery is disabled whenever the request is lost.
    for dfs in [false, true] {
        let model = Retry { lossy: true };
        let weak = run(&model, Fairness::Weak, rpc_classes, vec![], dfs);
        let lasso = &weak.discoveries["the client gets its reply"];
        let states = lasso.path.clone().into_states();
        let k = lasso.cycle_start.expect("a loop");
        assert_eq!(states.last(), states.get(k));
        assert!(states[k..].iter().any(|s| !s.in_flight), "{states:?}");
        assert!(lasso.unfair_to.is_empty());
        assert_eq!(lasso.kept_enabled, vec![Rpc::Retransmit]);
    }
}

/// A counter that goes 0 -> 1 -> 2 -> 0, and from 2 may exit to 3 and stop. The exit is enabled
/// only at 2, so the loop does not keep it enabled: weak fairness does not force it (strong
/// fairness would), and "reaches 3" fails under both.
struct Counter;

impl Model for Counter {
    type State = u8;
    type Action = u8;

    fn init_states(&self) -> Vec<u8> {
        vec![0]
    }

    fn actions(&self, s: &u8, actions: &mut Vec<u8>) {
        match *s {
            0 | 1 => actions.push(s + 1),
            2 => actions.extend([0, 3]),
            _ => {}
        }
    }

    fn next_state(&self, _: &u8, a: u8) -> Option<u8> {
        Some(a)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::eventually("reaches 3", |_, s| *s == 3),
            Property::eventually("reaches 2", |_, s| *s == 2),
        ]
    }
}

fn each_step(_: &Counter, a: &u8) -> Option<u64> {
    Some(u64::from(*a))
}

#[test]
fn weak_fairness_does_not_force_an_intermittently_enabled_exit() {
    for dfs in [false, true] {
        let weak = run(&Counter, Fairness::Weak, each_step, vec![], dfs);
        let lasso = &weak.discoveries["reaches 3"];
        assert_eq!(lasso.path.clone().into_states(), vec![0, 1, 2, 0]);
        assert_eq!(lasso.cycle_start, Some(0));
        assert!(lasso.kept_enabled.is_empty() && lasso.unfair_to.is_empty());
        assert!(!weak.discoveries.contains_key("reaches 2"));
    }
}

#[test]
fn leads_to_is_decided_from_every_state_where_its_premise_holds() {
    // From 1 the counter reaches 2 on every path; from 2 it need not come back to 1 (it may
    // exit to 3 and stop): "1 ~> 2" holds and "2 ~> 1" fails on the stop at 3.
    let leads_to = || {
        vec![
            LeadsTo {
                name: "1 leads to 2",
                from: |_: &Counter, s: &u8| *s == 1,
                to: |_: &Counter, s: &u8| *s == 2,
            },
            LeadsTo {
                name: "2 leads to 1",
                from: |_: &Counter, s: &u8| *s == 2,
                to: |_: &Counter, s: &u8| *s == 1,
            },
        ]
    };
    for dfs in [false, true] {
        let report = run(&Counter, Fairness::Weak, each_step, leads_to(), dfs);
        assert!(!report.discoveries.contains_key("1 leads to 2"));
        let stop = &report.discoveries["2 leads to 1"];
        assert_eq!(stop.cycle_start, None);
        assert_eq!(stop.path.clone().into_states(), vec![0, 1, 2, 3]);
    }
}

/// A timer counts up to a bound that the model's boundary sets: past it the model says nothing.
/// A stop there is no counterexample when the step past the bound is fair (the path is cut
/// off), and is one when it is the environment's (a crash past the crash budget).
struct Bounded {
    fair: bool,
}

impl Model for Bounded {
    type State = u8;
    type Action = u8;

    fn init_states(&self) -> Vec<u8> {
        vec![0]
    }

    fn actions(&self, s: &u8, actions: &mut Vec<u8>) {
        actions.push(s + 1);
    }

    fn next_state(&self, _: &u8, a: u8) -> Option<u8> {
        Some(a)
    }

    fn within_boundary(&self, s: &u8) -> bool {
        *s <= 3
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::eventually("reaches 10", |_, s| *s == 10)]
    }
}

#[test]
fn a_fair_step_past_the_boundary_cuts_a_path_off_and_an_unfair_one_ends_it() {
    let fair = run(
        &Bounded { fair: true },
        Fairness::Weak,
        |m, _| m.fair.then_some(7),
        vec![],
        false,
    );
    assert!(fair.discoveries.is_empty());
    let unfair = run(
        &Bounded { fair: false },
        Fairness::Weak,
        |m, _| m.fair.then_some(7),
        vec![],
        false,
    );
    let stop = &unfair.discoveries["reaches 10"];
    assert_eq!(stop.cycle_start, None);
    assert_eq!(stop.path.clone().into_states(), vec![0, 1, 2, 3]);
}

/// Raft's election property, stated without a bound: with no crash or loss a leader is elected,
/// under weak fairness, on a configuration small enough for a test; `no-election-retry` (a
/// candidate that lost arms no new timeout) still breaks it, on a run that stops.
#[test]
fn raft_elects_a_leader_under_weak_fairness_and_no_election_retry_breaks_it() {
    use checker::{RunOptions, Status, Strategy};
    use models::catalog::Params;
    const ELECTED: &str = models::raft::model::EVENTUALLY_ELECTED;
    let raft = checker::find("raft").expect("raft is registered");
    // The bug's configuration: three servers, all of which may stand in one term, no clients,
    // no crashes (44,279 states).
    let bug = raft
        .bugs()
        .iter()
        .find(|b| b.name == "no-election-retry")
        .unwrap();
    let params = bug.configure(raft.params(), &Params::defaults(raft.params()));
    let opts = RunOptions {
        strategy: Strategy::Bfs,
        threads: 2,
        ..RunOptions::default()
    };
    let outcome = raft.check(&params, None, &opts);
    assert_eq!(outcome.fairness.as_deref(), Some("weak"));
    let elected = outcome
        .properties
        .iter()
        .find(|p| p.name == ELECTED)
        .unwrap();
    assert_eq!(elected.status, Status::Holds);

    let outcome = raft.check(&params, Some(bug.name), &opts);
    let elected = outcome
        .properties
        .iter()
        .find(|p| p.name == ELECTED)
        .unwrap();
    assert_eq!(elected.status, Status::Violated);
    assert_eq!(
        elected.cycle_start, None,
        "the run stops: no timer is armed"
    );
}

/// twopc's leads-to: a prepared participant learns the decision in the default configuration,
/// and `commit-to-last-voter` leaves one prepared for ever.
#[test]
fn twopc_prepared_participants_learn_the_decision() {
    use checker::{RunOptions, Status, Strategy};
    use models::catalog::Params;
    const LEARNS: &str = models::twopc::model::PREPARED_LEARNS;
    let twopc = checker::find("twopc").expect("twopc is registered");
    let opts = RunOptions {
        strategy: Strategy::Bfs,
        threads: 2,
        ..RunOptions::default()
    };
    let bug = twopc
        .bugs()
        .iter()
        .find(|b| b.name == "commit-to-last-voter")
        .unwrap();
    let params = bug.configure(twopc.params(), &Params::defaults(twopc.params()));
    let fine = twopc.check(&params, None, &opts);
    let p = fine.properties.iter().find(|p| p.name == LEARNS).unwrap();
    assert_eq!(
        (p.expectation.as_str(), p.status),
        ("leads-to", Status::Holds)
    );
    let broken = twopc.check(&params, Some(bug.name), &opts);
    let p = broken.properties.iter().find(|p| p.name == LEARNS).unwrap();
    assert_eq!(p.status, Status::Violated);
    assert!(
        p.trace.as_ref().is_some_and(|t| t.len() == 9),
        "{:?}",
        p.trace
    );
}
