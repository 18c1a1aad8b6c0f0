//! Shortening a counterexample to an `always` property by removing steps, as DSLabs' event
//! removal does: a step is dropped when the steps left still replay from the same initial state
//! (each action enabled where it is taken) and still reach a state that violates the property.
//! Chunks go first (halves, quarters, ...), then single steps, until no step can go.
//!
//! A random walk's counterexample carries every step the walk took; most have nothing to do
//! with the violation. BFS paths are already shortest and are left alone.

use stateright::{Model, Path, Property};

/// The actions of `path` replayed from `init`, cut at the first state violating `p`; `None` if
/// an action is not enabled where it is taken or no state violates `p`.
fn replay<M>(model: &M, p: &Property<M>, init: &M::State, actions: &[M::Action]) -> Option<usize>
where
    M: Model,
    M::State: Clone,
    M::Action: PartialEq + Clone,
{
    let mut state = init.clone();
    if !(p.condition)(model, &state) {
        return Some(0);
    }
    for (k, action) in actions.iter().enumerate() {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        let taken = enabled.into_iter().find(|a| a == action)?;
        // An action that changes nothing (a simulation records them) leaves the state.
        if let Some(next) = model.next_state(&state, taken) {
            state = next;
        }
        if !(p.condition)(model, &state) {
            return Some(k + 1);
        }
    }
    None
}

/// `path`, a counterexample to the `always` property `p`, with every step removed that the
/// violation does not need. Returns the path and its length before.
pub fn minimise<M>(
    model: &M,
    p: &Property<M>,
    path: Path<M::State, M::Action>,
) -> (Path<M::State, M::Action>, usize)
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: PartialEq + Clone,
{
    let steps = path.clone().into_vec();
    let before = steps.len() - 1;
    let init = steps[0].0.clone();
    let mut actions: Vec<M::Action> = steps.into_iter().filter_map(|(_, a)| a).collect();
    match replay(model, p, &init, &actions) {
        Some(n) => actions.truncate(n),
        // Not a replayable counterexample (it should always be): leave it as it is.
        None => return (path, before),
    }
    let mut chunk = actions.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        let mut removed = false;
        while start < actions.len() {
            let end = (start + chunk).min(actions.len());
            let candidate: Vec<M::Action> = actions[..start]
                .iter()
                .chain(&actions[end..])
                .cloned()
                .collect();
            match replay(model, p, &init, &candidate) {
                Some(n) => {
                    actions = candidate;
                    actions.truncate(n);
                    removed = true;
                }
                None => start = end,
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    match Path::from_actions(model, init, actions.iter()) {
        Some(shorter) => (shorter, before),
        None => (path, before),
    }
}
