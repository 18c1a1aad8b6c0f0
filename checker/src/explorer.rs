//! The workbench's web explorer: walk a model's states by hand from its initial states, with
//! every property evaluated *at the state shown*.
//!
//! stateright ships an explorer too, but its per-state panel shows the verdicts of a background
//! checker that explores only when asked, and marks a state with a violation only when that
//! checker's own discovery passes through it: a violating state reached by the CLI's path is
//! shown as "Safety holds". Here a state's panel says what the property's condition says of that
//! state, and every step of the path says which `always` properties it violates.
//!
//! Paths are stateright's encoding (the initial state's index, then each action's index among
//! `Model::actions` of the state before it), so the CLI's `#/steps/...` links open the same path.
//!
//! API (JSON): `GET /api/model` (name, parameters, bug, properties) and `GET /api/path/I/A/B/...`
//! (the states along the path, each with its action, its properties' verdicts and its text, and
//! the actions enabled at the last one). `GET /` is the page.

use std::fmt::Debug;
use std::io::Cursor;

use serde::Serialize;
use stateright::{Expectation, Model};
use tiny_http::{Header, Request, Response, Server};

/// What the page shows of a model besides its states.
#[derive(Clone, Debug, Serialize)]
pub struct About {
    pub model: String,
    pub paper: String,
    pub params: Vec<(String, String)>,
    pub bug: Option<String>,
}

/// A property's verdict at one state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub name: String,
    pub expectation: &'static str,
    /// `holds` or `violated` (always), `example` or `no example` (sometimes), `satisfied` or
    /// `not yet` (eventually: decided over paths, so this says only what holds here).
    pub here: &'static str,
}

/// One state of a path.
#[derive(Clone, Debug, Serialize)]
pub struct StepView {
    /// The action that led here (`None` for the initial state).
    pub action: Option<String>,
    /// The state, in full.
    pub state: String,
    /// The state in the paper's terms, where the model gives a view.
    pub view: Option<String>,
    pub properties: Vec<Verdict>,
}

/// An action enabled at the last state of a path.
#[derive(Clone, Debug, Serialize)]
pub struct NextView {
    pub index: usize,
    pub action: String,
    /// Whether it changes nothing (the model returns no next state).
    pub ignored: bool,
}

/// A path and what may follow it.
#[derive(Clone, Debug, Serialize)]
pub struct PathView {
    pub steps: Vec<StepView>,
    pub next: Vec<NextView>,
}

fn expectation(e: &Expectation) -> &'static str {
    match e {
        Expectation::Always => "always",
        Expectation::Sometimes => "sometimes",
        Expectation::Eventually => "eventually",
    }
}

/// Every property of `model` evaluated at `state`.
pub fn verdicts<M: Model>(model: &M, state: &M::State) -> Vec<Verdict> {
    model
        .properties()
        .into_iter()
        .map(|p| {
            let holds = (p.condition)(model, state);
            let here = match (&p.expectation, holds) {
                (Expectation::Always, true) => "holds",
                (Expectation::Always, false) => "violated",
                (Expectation::Sometimes, true) => "example",
                (Expectation::Sometimes, false) => "no example",
                (Expectation::Eventually, true) => "satisfied",
                (Expectation::Eventually, false) => "not yet",
            };
            Verdict {
                name: p.name.to_string(),
                expectation: expectation(&p.expectation),
                here,
            }
        })
        .collect()
}

/// The last state of the path `indices` (stateright's encoding), or why there is none.
pub fn walk<M: Model>(model: &M, indices: &[usize]) -> Result<M::State, String>
where
    M::State: Clone,
    M::Action: Debug,
{
    walk_all(model, indices)?
        .pop()
        .ok_or_else(|| "an empty path".to_string())
}

/// Every state of the path `indices`, the initial one first.
pub fn walk_all<M: Model>(model: &M, indices: &[usize]) -> Result<Vec<M::State>, String>
where
    M::State: Clone,
    M::Action: Debug,
{
    Ok(walk_steps(model, indices)?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// A step of a path: the action that led to it, as printed, and the state after it.
pub type Walked<M> = (Option<String>, <M as Model>::State);

/// Every step of the path `indices`: the action that led to it, as the CLI prints it (`None`
/// for the initial state), and the state after it.
pub fn walk_steps<M: Model>(model: &M, indices: &[usize]) -> Result<Vec<Walked<M>>, String>
where
    M::State: Clone,
    M::Action: Debug,
{
    let (&first, rest) = indices
        .split_first()
        .ok_or("a path starts with an initial state's index")?;
    let init = model
        .init_states()
        .into_iter()
        .nth(first)
        .ok_or_else(|| format!("no initial state {first}"))?;
    let mut steps = vec![(None, init)];
    for (k, &i) in rest.iter().enumerate() {
        let state = &steps.last().expect("a path has a state").1;
        let mut actions = Vec::new();
        model.actions(state, &mut actions);
        let action = actions
            .into_iter()
            .nth(i)
            .ok_or_else(|| format!("step {}: no action {i}", k + 1))?;
        let shown = model.format_action(&action).to_string().replace('\n', " ");
        // (A simulation's path can hold an action that changes nothing.)
        let next = model
            .next_state(state, action)
            .unwrap_or_else(|| state.clone());
        steps.push((Some(shown), next));
    }
    Ok(steps)
}

/// A model's view of a state in the paper's terms ([`models::catalog::Spec::view`]).
pub type View<M> = fn(&M, &<M as Model>::State) -> Option<String>;

/// The states along the path `indices` (stateright's encoding), or why there is none.
pub fn path_view<M>(model: &M, indices: &[usize], view: View<M>) -> Result<PathView, String>
where
    M: Model,
    M::State: Debug + Clone,
    M::Action: Debug,
{
    let walked = walk_steps(model, indices)?;
    let state = &walked.last().expect("a path has a state").1;
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    let next = actions
        .into_iter()
        .enumerate()
        .map(|(index, a)| NextView {
            index,
            action: model.format_action(&a).to_string().replace('\n', " "),
            ignored: model.next_state(state, a).is_none(),
        })
        .collect();
    let steps = walked
        .into_iter()
        .map(|(action, state)| StepView {
            action,
            state: format!("{state:#?}"),
            view: view(model, &state),
            properties: verdicts(model, &state),
        })
        .collect();
    Ok(PathView { steps, next })
}

/// Parses `0/3/1` (slashes at either end allowed).
pub fn parse_path(s: &str) -> Result<Vec<usize>, String> {
    s.trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| format!("'{p}' in a path is not an index"))
        })
        .collect()
}

/// Binds `addr` (`localhost:3000`; port 0 picks a free one).
pub fn bind(addr: &str) -> Result<Server, String> {
    Server::http(addr).map_err(|e| format!("cannot serve the explorer on {addr}: {e}"))
}

/// Serves `model` on `server` until the process ends.
pub fn serve<M>(server: Server, model: M, about: About, view: View<M>)
where
    M: Model,
    M::State: Debug + Clone,
    M::Action: Debug,
{
    for request in server.incoming_requests() {
        respond(request, &model, &about, view);
    }
}

fn respond<M>(request: Request, model: &M, about: &About, view: View<M>)
where
    M: Model,
    M::State: Debug + Clone,
    M::Action: Debug,
{
    let url = request.url().to_string();
    let json = |body: String| reply(200, "application/json", body.into_bytes());
    let response = if url == "/" || url.starts_with("/#") || url == "/index.html" {
        reply(200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec())
    } else if url == "/api/model" {
        let properties: Vec<(&str, &str)> = model
            .properties()
            .iter()
            .map(|p| (p.name, expectation(&p.expectation)))
            .collect();
        json(serde_json::json!({ "about": about, "properties": properties }).to_string())
    } else if let Some(path) = url.strip_prefix("/api/path/") {
        match parse_path(path).and_then(|p| path_view(model, &p, view)) {
            Ok(view) => json(serde_json::to_string(&view).expect("views serialise")),
            Err(e) => reply(400, "text/plain; charset=utf-8", e.into_bytes()),
        }
    } else {
        reply(404, "text/plain; charset=utf-8", b"not found".to_vec())
    };
    let _ = request.respond(response);
}

/// A response with a length (not chunked), so that any HTTP client reads it.
fn reply(code: u16, content_type: &str, body: Vec<u8>) -> Response<Cursor<Vec<u8>>> {
    let header = Header::from_bytes("Content-Type", content_type).expect("a valid header");
    let length = body.len();
    Response::new(
        code.into(),
        vec![header],
        Cursor::new(body),
        Some(length),
        None,
    )
}

const PAGE: &str = include_str!("explorer.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_or_without_slashes() {
        assert_eq!(parse_path("0/3/1"), Ok(vec![0, 3, 1]));
        assert_eq!(parse_path("/0/3/1/"), Ok(vec![0, 3, 1]));
        assert!(parse_path("0/x").is_err());
    }
}
