//! `checker <model> --html FILE`: a counterexample as one self-contained HTML page.
//!
//! For an actor model the page draws a space-time (Lamport) diagram: one vertical line per
//! actor, time going down one row per step, each delivered message an arrow from the step that
//! sent it to the step that delivered it, timers and crashes marked, and the steps that violate
//! an `always` property ringed in red. Beside it, the state after the selected step: each
//! actor's state, the ones the step changed open and highlighted, and the whole state with its
//! changed lines highlighted. Other models get the steps and the states.
//!
//! Which step sent a message comes from the network itself: a message in flight after step `k`
//! that was not before it was sent at step `k`, so a delivery is matched to the latest such
//! send of the same message between the same actors.

use std::collections::HashMap;
use std::fmt::Debug;

use models::catalog::Spec;
use serde::Serialize;
use stateright::{Expectation, Model};

/// What the page says about the run besides the path.
#[derive(Clone, Debug, Serialize)]
pub struct Header {
    pub model: String,
    pub paper: String,
    pub params: String,
    pub bug: Option<String>,
    /// The property the path is a counterexample (or example) to, and its expectation.
    pub property: String,
    pub expectation: String,
    /// The model's explanation of the violation, if it gives one.
    pub evidence: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
struct Step {
    /// The action, as the CLI prints it (`None` for the initial state).
    action: Option<String>,
    /// `init`, `deliver`, `timeout`, `crash` or `other`.
    kind: &'static str,
    /// The actor that takes the step.
    actor: Option<usize>,
    /// For a delivery: the sender, and the step that sent the message.
    src: Option<usize>,
    sent_at: Option<usize>,
    /// The message delivered, as printed in the action.
    msg: Option<String>,
    /// The `always` properties this state violates.
    violated: Vec<String>,
    /// Each actor's state, for actor models.
    actors: Option<Vec<String>>,
    /// The whole state.
    state: String,
    /// The state in the paper's terms, where the model gives a view.
    view: Option<String>,
}

#[derive(Serialize)]
struct Page<'a> {
    header: &'a Header,
    actors: Vec<String>,
    steps: Vec<Step>,
}

/// The first `Id(n)` in `text`.
fn first_id(text: &str) -> Option<usize> {
    let rest = &text[text.find("Id(")? + 3..];
    rest[..rest.find(')')?].parse().ok()
}

/// `Id(a) → msg → Id(b)` (stateright's delivery) as `(a, msg, b)`.
fn delivery(text: &str) -> Option<(usize, String, usize)> {
    let (src, rest) = text.split_once(" → ")?;
    let (msg, dst) = rest.rsplit_once(" → ")?;
    Some((first_id(src)?, msg.to_string(), first_id(dst)?))
}

/// An actor's name from its state's text: `Server(ServerState {..})` at index 2 is `Server 2`.
fn actor_name(i: usize, state: &str) -> String {
    let kind: String = state
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if kind.is_empty() {
        format!("actor {i}")
    } else {
        format!("{kind} {i}")
    }
}

/// The page for the path `indices` (stateright's encoding) of `model`.
pub fn render<S: Spec>(
    model: &S::Model,
    indices: &[usize],
    header: &Header,
) -> Result<String, String>
where
    S::State: Debug,
    S::Action: Debug,
{
    let always: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .collect();
    let violated = |s: &S::State| -> Vec<String> {
        always
            .iter()
            .filter(|p| !(p.condition)(model, s))
            .map(|p| p.name.to_string())
            .collect()
    };
    let walked = crate::explorer::walk_steps(model, indices)?;
    let views: Vec<Option<String>> = walked.iter().map(|(_, s)| S::view(model, s)).collect();
    let states: Vec<_> = walked
        .into_iter()
        .map(|(action, state)| {
            let text = format!("{state:#?}");
            (action, S::actors(&state), violated(&state), text)
        })
        .collect();

    // Sends: what each step put in flight that was not in flight before it.
    let mut sends: Vec<HashMap<(usize, usize, String), usize>> = Vec::new();
    let mut before: HashMap<(usize, usize, String), usize> = HashMap::new();
    for (_, view, _, _) in &states {
        let mut now: HashMap<(usize, usize, String), usize> = HashMap::new();
        for m in view.iter().flat_map(|v| v.in_flight.iter()) {
            *now.entry(m.clone()).or_default() += 1;
        }
        let sent = now
            .iter()
            .filter_map(|(m, n)| {
                let extra = n.saturating_sub(before.get(m).copied().unwrap_or(0));
                (extra > 0).then(|| (m.clone(), extra))
            })
            .collect();
        sends.push(sent);
        before = now;
    }

    let mut steps = Vec::new();
    for (k, ((action, view, violated, text), paper)) in states.into_iter().zip(views).enumerate() {
        let (kind, actor, src, sent_at, msg) = match action.as_deref() {
            None => ("init", None, None, None, None),
            Some(a) => match delivery(a) {
                Some((src, msg, dst)) => {
                    let key = (src, dst, msg.clone());
                    // The latest earlier step that sent this message and whose send is not
                    // matched yet (the initial state's messages count as step 0's).
                    let sent_at = (0..k)
                        .rev()
                        .find(|j| sends[*j].get(&key).is_some_and(|n| *n > 0));
                    if let Some(j) = sent_at {
                        *sends[j].get_mut(&key).expect("found") -= 1;
                    }
                    ("deliver", Some(dst), Some(src), sent_at, Some(msg))
                }
                None if a.starts_with("Timeout") => ("timeout", first_id(a), None, None, None),
                None if a.starts_with("Crash") => ("crash", first_id(a), None, None, None),
                None => ("other", first_id(a), None, None, None),
            },
        };
        steps.push(Step {
            action,
            kind,
            actor,
            src,
            sent_at,
            msg,
            violated,
            actors: view.map(|v| v.actors),
            state: text,
            view: paper,
        });
    }
    let actors = match (
        S::actor_names(model),
        steps.first().and_then(|s| s.actors.as_ref()),
    ) {
        (Some(names), Some(_)) => names,
        (_, actors) => actors
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, s)| actor_name(i, s))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let page = Page {
        header,
        actors,
        steps,
    };
    // `</` cannot close the script element the data sits in.
    let data = serde_json::to_string(&page)
        .expect("pages serialise")
        .replace("</", "<\\/");
    Ok(TEMPLATE.replace("/*DATA*/null", &data))
}

const TEMPLATE: &str = include_str!("trace.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_and_actor_names_parse() {
        assert_eq!(
            delivery("Id(0) → RequestVote { term: 1 } → Id(2)"),
            Some((0, "RequestVote { term: 1 }".to_string(), 2))
        );
        assert_eq!(delivery("Timeout(Id(1), Election)"), None);
        assert_eq!(first_id("Timeout(Id(1), Election)"), Some(1));
        assert_eq!(actor_name(2, "Server(\n    ServerState {"), "Server 2");
        assert_eq!(actor_name(4, "{}"), "actor 4");
    }
}
