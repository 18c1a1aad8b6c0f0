//! A stateright [`ActorModel`] wrapped the way the workbench's actor models need it, so that a new
//! model does not copy the wrapping:
//!
//! - **Crashes** within a budget of crashes in all, for the actors the model allows to crash (a
//!   filter that sees the state), of the kind the model says ([`Harnessed::CRASH`]). By
//!   default a crash is a restart from stable storage in one step (stateright's `Crash`, then
//!   `Recover`): an actor that is down for a while is, to everyone else, an actor that takes no
//!   steps for a while, which the interleavings already cover, and messages to it wait in
//!   their channels. Where what others do while it is down matters (they move on without it,
//!   and its connections reset, so messages to it are lost), it stays down until a later
//!   `Recover` step instead.
//! - **History variables** updated after every step from a small `Copy` summary of it (so that
//!   the step's action, message and all, is not cloned), and a filter on the inner model's
//!   actions (e.g. a budget of timeouts).
//! - **The explorer**: `format_action`, `format_step` and `as_svg` forwarded to the inner model.
//!
//! A model implements [`Harnessed`] on a unit type and is `Harness<ThatType>`.

use std::fmt::Debug;
use std::hash::Hash;

use stateright::actor::{
    Actor, ActorModel, ActorModelAction, ActorModelState, LossyNetwork, Network,
};
use stateright::{Model, Path, Property};

/// How the network treats messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// Each channel delivers in order, none is lost (TCP-like); channels interleave freely.
    Ordered,
    /// Messages are delivered in any order, none is lost.
    Unordered,
    /// Messages are delivered in any order or lost.
    Lossy,
}

impl NetworkKind {
    /// The names the `--network` parameter takes, default first.
    pub const NAMES: &'static [&'static str] = &["ordered", "unordered", "lossy"];

    /// The kind named `name` (one of [`NetworkKind::NAMES`]).
    pub fn from_name(name: &str) -> Option<NetworkKind> {
        match name {
            "ordered" => Some(NetworkKind::Ordered),
            "unordered" => Some(NetworkKind::Unordered),
            "lossy" => Some(NetworkKind::Lossy),
            _ => None,
        }
    }

    /// The initial (empty) network of this kind.
    pub fn network<M: Clone + Debug + Eq + Hash + Ord>(self) -> Network<M> {
        match self {
            NetworkKind::Ordered => Network::new_ordered([]),
            NetworkKind::Unordered | NetworkKind::Lossy => {
                Network::new_unordered_nonduplicating([])
            }
        }
    }

    /// Whether messages may be lost.
    pub fn lossy(self) -> LossyNetwork {
        if self == NetworkKind::Lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        }
    }
}

/// The state and action of a harnessed model.
pub type HState<H> = ActorModelState<<H as Harnessed>::Actor, <H as Harnessed>::History>;
pub type HAction<H> = ActorModelAction<
    <<H as Harnessed>::Actor as Actor>::Msg,
    <<H as Harnessed>::Actor as Actor>::Timer,
    <<H as Harnessed>::Actor as Actor>::Random,
>;

/// What a model tells the [`Harness`].
pub trait Harnessed: Sized + Send + Sync + 'static {
    type Actor: Actor<Msg: Ord, Timer: Ord> + Send + Sync + 'static;
    type Cfg: Send + Sync + 'static;
    type History: Clone + Debug + Hash + Eq + Send + Sync + 'static;
    /// What the history variables need to know about a step.
    type Step: Copy;

    /// The summary of `action`, taken before it runs.
    fn step_of(action: &HAction<Self>) -> Self::Step;

    /// How many crashes the history has counted.
    fn crashes(h: &Self::History) -> usize;

    /// Counts one more crash.
    fn count_crash(h: &mut Self::History);

    /// Whether actor `index` may crash (restart) in `state`; the budget is checked apart.
    fn may_crash(m: &Harness<Self>, state: &HState<Self>, index: usize) -> bool;

    /// Whether the inner model's `action` is explored in `state` (default: all are).
    fn allow(_m: &Harness<Self>, _state: &HState<Self>, _action: &HAction<Self>) -> bool {
        true
    }

    /// Updates the history variables of `next`, reached from `prev` by a step summarised as
    /// `step` (`None`: `next` is an initial state). A crash is already counted.
    fn record(
        m: &Harness<Self>,
        prev: Option<(&HState<Self>, Self::Step)>,
        next: &mut HState<Self>,
    );

    fn properties(m: &Harness<Self>) -> Vec<Property<Harness<Self>>>;

    fn within_boundary(_m: &Harness<Self>, _state: &HState<Self>) -> bool {
        true
    }

    /// What a crash is; default: a restart in one step, messages to the actor wait.
    const CRASH: CrashKind = CrashKind::Restart;

    /// Whether `msg` is delivered in the step that sent it (default: none is). A model makes a
    /// reply immediate when only the time at which its sender learns of it, not its order
    /// against other steps, could matter: an acknowledgement of a write to one of six
    /// replicas, say. That cuts the interleavings of a request's replies from `3^n` to `2^n`.
    /// A reply to an actor that is down is dropped.
    fn immediate(_m: &Harness<Self>, _msg: &<Self::Actor as Actor>::Msg) -> bool {
        false
    }
}

/// What a crash is in a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// A restart from storage in one step; the messages on their way to the actor wait.
    Restart,
    /// The actor is down until a later `Recover` step (a restart from storage). The messages
    /// on their way to it when it crashes, and those sent to it while it is down, are lost.
    DownLosing,
}

/// An actor model with crash-as-restart, history variables and a forwarded explorer view.
pub struct Harness<H: Harnessed> {
    pub inner: ActorModel<H::Actor, H::Cfg, H::History>,
    /// Crashes in all (each a restart).
    pub max_crashes: usize,
}

impl<H: Harnessed> Harness<H> {
    pub fn new(inner: ActorModel<H::Actor, H::Cfg, H::History>, max_crashes: usize) -> Self {
        Harness { inner, max_crashes }
    }

    pub fn cfg(&self) -> &H::Cfg {
        &self.inner.cfg
    }

    /// `state` without the messages in flight to the actors `to` picks.
    fn lose_messages_to(
        &self,
        mut state: HState<H>,
        to: impl Fn(stateright::actor::Id) -> bool,
    ) -> Option<HState<H>> {
        // (On an ordered network only a channel's first message is deliverable, so this drops
        // them until none is left.)
        loop {
            let lost: Vec<_> = state
                .network
                .iter_deliverable()
                .filter(|e| to(e.dst))
                .map(|e| e.to_cloned_msg())
                .collect();
            if lost.is_empty() {
                return Some(state);
            }
            for env in lost {
                state = self.inner.next_state(&state, ActorModelAction::Drop(env))?;
            }
        }
    }
}

impl<H: Harnessed> Harness<H> {
    /// `state` after delivering every [`Harnessed::immediate`] message at the head of its
    /// channel, and those they send, in the network's order.
    fn deliver_immediate(&self, mut state: HState<H>) -> HState<H> {
        loop {
            let Some(env) = state
                .network
                .iter_deliverable()
                .find(|e| H::immediate(self, e.msg))
                .map(|e| e.to_cloned_msg())
            else {
                return state;
            };
            let deliver = ActorModelAction::Deliver {
                src: env.src,
                dst: env.dst,
                msg: env.msg.clone(),
            };
            state = match self.inner.next_state(&state, deliver) {
                Some(next) => next,
                None => self
                    .inner
                    .next_state(&state, ActorModelAction::Drop(env))
                    .expect("a drop always takes a step"),
            };
        }
    }
}

impl<H: Harnessed> Model for Harness<H> {
    type State = HState<H>;
    type Action = HAction<H>;

    fn init_states(&self) -> Vec<Self::State> {
        let mut states = self.inner.init_states();
        for s in &mut states {
            H::record(self, None, s);
        }
        states
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.inner.actions(state, actions);
        // stateright lists an actor's timers in its hash set's order, which differs from one
        // copy of a state to another; paths are action indices, so the order must not.
        let timers = actions
            .iter()
            .position(|a| matches!(a, ActorModelAction::Timeout(..)));
        if let Some(first) = timers {
            let end = actions[first..]
                .iter()
                .position(|a| !matches!(a, ActorModelAction::Timeout(..)))
                .map_or(actions.len(), |n| first + n);
            actions[first..end].sort_by(|a, b| match (a, b) {
                (ActorModelAction::Timeout(i, t), ActorModelAction::Timeout(j, u)) => {
                    (i, t).cmp(&(j, u))
                }
                _ => std::cmp::Ordering::Equal,
            });
        }
        actions.retain(|a| H::allow(self, state, a));
        if H::crashes(&state.history) < self.max_crashes {
            actions.extend(
                (0..state.actor_states.len())
                    .filter(|i| !state.crashed[*i] && H::may_crash(self, state, *i))
                    .map(|i| ActorModelAction::Crash(i.into())),
            );
        }
    }

    fn next_state(&self, last: &Self::State, action: Self::Action) -> Option<Self::State> {
        let step = H::step_of(&action);
        let next = match action {
            // A crash restarts the actor from its storage in one step, or takes it down until
            // a `Recover` step, losing the messages on their way to it.
            ActorModelAction::Crash(id) => {
                let down = self.inner.next_state(last, ActorModelAction::Crash(id))?;
                let mut next = match H::CRASH {
                    CrashKind::Restart => self
                        .inner
                        .next_state(&down, ActorModelAction::Recover(id))?,
                    CrashKind::DownLosing => self.lose_messages_to(down, |dst| dst == id)?,
                };
                H::count_crash(&mut next.history);
                next
            }
            action => {
                let next = self.inner.next_state(last, action)?;
                if H::CRASH == CrashKind::DownLosing && next.crashed.contains(&true) {
                    let crashed = next.crashed.clone();
                    self.lose_messages_to(next, |dst| crashed[usize::from(dst)])?
                } else {
                    next
                }
            }
        };
        let mut next = self.deliver_immediate(next);
        H::record(self, Some((last, step)), &mut next);
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        self.inner.format_action(action)
    }

    fn format_step(&self, last: &Self::State, action: Self::Action) -> Option<String> {
        self.inner.format_step(last, action)
    }

    fn as_svg(&self, path: Path<Self::State, Self::Action>) -> Option<String> {
        self.inner.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        H::properties(self)
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        H::within_boundary(self, state)
    }
}
