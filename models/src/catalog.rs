//! How a model tells the `checker` CLI what it is: its name, the paper and section it follows,
//! its parameters with their defaults and ranges, and its seeded bugs.
//!
//! A model file implements [`Spec`] for a unit struct; the CLI's registry holds one line per model.
//! Everything the CLI prints (`checker list`, `--help`, reports, the README table) comes from here
//! and from the model's own `properties()`.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};

use stateright::Model;

/// A model parameter, given on the command line as `--<name> <value>`.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Flag name without dashes, e.g. `rms`.
    pub name: &'static str,
    /// One line for `--help` and `checker list`.
    pub help: &'static str,
    pub kind: ParamKind,
}

/// The values a [`Param`] accepts.
#[derive(Clone, Copy, Debug)]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Int { default: u64, min: u64, max: u64 },
    /// One of the listed names; the first is the default.
    Choice { choices: &'static [&'static str] },
}

impl Param {
    /// An integer parameter in `min..=max`.
    pub const fn int(
        name: &'static str,
        help: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Param {
        Param {
            name,
            help,
            kind: ParamKind::Int { default, min, max },
        }
    }

    /// The parameter's default value.
    pub fn default_value(&self) -> Value {
        match self.kind {
            ParamKind::Int { default, .. } => Value::Int(default),
            ParamKind::Choice { choices } => Value::Choice(choices[0]),
        }
    }

    /// Parses a command-line value; the error names the valid values.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        match self.kind {
            ParamKind::Int { min, max, .. } => match text.parse::<u64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(Value::Int(v)),
                _ => Err(format!("expected an integer in {min}..={max}")),
            },
            ParamKind::Choice { choices } => choices
                .iter()
                .find(|c| **c == text)
                .map(|c| Value::Choice(c))
                .ok_or_else(|| format!("expected one of {}", choices.join(", "))),
        }
    }
}

/// A parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Int(u64),
    Choice(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Choice(c) => f.write_str(c),
        }
    }
}

/// The parameter values of one run, every declared parameter present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<&'static str, Value>);

impl Params {
    /// The defaults of `params`.
    pub fn defaults(params: &[Param]) -> Self {
        Params(params.iter().map(|p| (p.name, p.default_value())).collect())
    }

    pub fn set(&mut self, name: &'static str, value: Value) {
        self.0.insert(name, value);
    }

    /// The integer parameter `name`. Panics if the model did not declare it as an integer:
    /// that is a bug in the model file, not bad input (input is validated by [`Param::parse`]).
    pub fn int(&self, name: &str) -> u64 {
        match self.0.get(name) {
            Some(Value::Int(v)) => *v,
            other => panic!("model bug: integer parameter '{name}' not declared (found {other:?})"),
        }
    }

    /// The choice parameter `name`; panics like [`Params::int`].
    pub fn choice(&self, name: &str) -> &'static str {
        match self.0.get(name) {
            Some(Value::Choice(c)) => c,
            other => panic!("model bug: choice parameter '{name}' not declared (found {other:?})"),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}

/// A seeded bug: a configuration that re-introduces a pitfall the paper warns about, which the
/// checker must catch.
#[derive(Clone, Copy, Debug)]
pub struct Bug {
    /// Name for `--bug`, kebab-case: the model's bug enum's `name()` (see [`crate::seeded_bugs!`]).
    pub name: &'static str,
    /// The properties the bug breaks, exactly as the model's `properties()` names them: in its
    /// own configuration, these and only these come out other than expected (an `always` or
    /// `eventually` property violated, a `sometimes` property not found). A test in the checker
    /// runs every bug of every model to the end and compares.
    pub breaks: &'static [&'static str],
    /// What the bug does.
    pub help: &'static str,
    /// The smallest configuration that shows the bug: parameter values that replace the
    /// defaults when the bug is seeded (command-line flags still override them).
    pub params: &'static [(&'static str, &'static str)],
}

impl Bug {
    /// `defaults` with this bug's configuration applied. Panics on a parameter the model does
    /// not declare or a value out of range: a bug in the model file (a test checks every bug).
    pub fn configure(&self, declared: &[Param], defaults: &Params) -> Params {
        let mut params = defaults.clone();
        for (name, text) in self.params {
            let p = declared
                .iter()
                .find(|p| p.name == *name)
                .unwrap_or_else(|| {
                    panic!("model bug: bug '{}' sets undeclared '{name}'", self.name)
                });
            let value = p.parse(text).unwrap_or_else(|e| {
                panic!("model bug: bug '{}' sets --{name} {text}: {e}", self.name)
            });
            params.set(p.name, value);
        }
        params
    }
}

/// Declares a model's bug enum with each bug's `--bug` name written once, next to its variant:
///
/// ```
/// models::seeded_bugs! {
///     /// The seeded bugs.
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum MyBug {
///         /// The leader forgets to persist its vote.
///         ForgetVote = "forget-vote",
///     }
/// }
/// assert_eq!(MyBug::ForgetVote.name(), "forget-vote");
/// assert_eq!(MyBug::from_name("forget-vote"), Some(MyBug::ForgetVote));
/// assert_eq!(MyBug::ALL, &[MyBug::ForgetVote]);
/// ```
///
/// `name` is a `const fn`, so a [`Spec::BUGS`] table names each bug by its variant.
#[macro_export]
macro_rules! seeded_bugs {
    (
        $(#[$attr:meta])*
        $vis:vis enum $enum:ident {
            $( $(#[$vattr:meta])* $variant:ident = $name:literal, )+
        }
    ) => {
        $(#[$attr])*
        $vis enum $enum {
            $( $(#[$vattr])* $variant, )+
        }

        impl $enum {
            /// Every bug, in declaration order.
            pub const ALL: &'static [$enum] = &[$($enum::$variant),+];

            /// The bug's name, as `--bug` takes it.
            pub const fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)+
                }
            }

            /// The bug of this name.
            pub fn from_name(name: &str) -> Option<$enum> {
                Self::ALL.iter().copied().find(|b| b.name() == name)
            }
        }
    };
}

/// A function from a state to the representative of its symmetry class.
pub type Representative<S> = fn(&S) -> S;

/// The weak-fairness class of an action: actions of one class are "the same step" for
/// fairness, and a run that keeps some class enabled without ever taking it is unfair and is
/// not a counterexample to a liveness property. `None`: the action is the environment's choice
/// (a crash, a lost message) and no run owes it to anyone.
pub type FairClassOf<M> = fn(&M, &<M as Model>::Action) -> Option<u64>;

/// A leads-to property `from ~> to` (Lamport, "The Temporal Logic of Actions", 1994): every state
/// where `from` holds is followed, then or later, by one where `to` holds.
pub struct LeadsTo<M: Model> {
    pub name: &'static str,
    pub from: fn(&M, &M::State) -> bool,
    pub to: fn(&M, &M::State) -> bool,
}

/// The fairness classes of an actor model's actions: delivering one message (sender, receiver
/// and message) is one class, firing one timer of one actor another; losing a message, crashing
/// and recovering are the environment's choices and owe nothing.
pub fn actor_fair_class<Msg: Hash, Timer: Hash, Random>(
    action: &stateright::actor::ActorModelAction<Msg, Timer, Random>,
) -> Option<u64> {
    use stateright::actor::ActorModelAction as A;
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match action {
        A::Deliver { src, dst, msg } => (0u8, src, dst, msg).hash(&mut h),
        A::Timeout(id, timer) => (1u8, id, timer).hash(&mut h),
        // One class per random choice, whichever value it takes.
        A::SelectRandom { actor, key, .. } => (2u8, actor, key).hash(&mut h),
        A::Drop(_) | A::Crash(_) | A::Recover(_) => return None,
    }
    Some(h.finish())
}

/// What the `checker` CLI needs to know about a model.
pub trait Spec: 'static {
    /// The stateright model this spec builds.
    type Model: Model<State = Self::State, Action = Self::Action> + Send + Sync + 'static;
    type State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static;
    type Action: Clone + Debug + PartialEq + Send + Sync + 'static;

    /// Registry name, the CLI's subcommand: `checker <NAME>`.
    const NAME: &'static str;
    /// The paper (or specification) and section the model follows.
    const PAPER: &'static str;
    /// One line on what is modelled.
    const SUMMARY: &'static str;
    const PARAMS: &'static [Param];
    const BUGS: &'static [Bug];
    /// The depth to which the checked-in baseline (`reports/<NAME>.json`) explores the default
    /// configuration: `None` (the default) to the end, `Some(d)` for a model too large for that,
    /// whose baseline then pins a breadth-first check of every state up to depth `d`.
    const BASELINE_DEPTH: Option<usize> = None;

    /// Builds the model for `params` (every declared parameter present and in range), with the
    /// named bug seeded (`bug` is one of [`Spec::BUGS`] or `None`).
    fn build(params: &Params, bug: Option<&'static str>) -> Self::Model;

    /// A representative of a state's symmetry class, used by `--symmetry`; `None` when the model
    /// has no symmetry reduction. It must be canonical: equivalent states map to equal states.
    fn representative() -> Option<Representative<Self::State>> {
        None
    }

    /// Feeds `state` to `hasher` for the fingerprint that identifies it: its `Hash` by default.
    /// An actor model overrides it with [`hash_actor_state`], since stateright's `Hash` of an
    /// `ActorModelState` feeds the same bytes for two states whose timers differ only in which
    /// of two neighbouring actors holds one.
    fn hash_state<H: Hasher>(state: &Self::State, hasher: &mut H) {
        state.hash(hasher)
    }

    /// The actors of `state`, for the trace viewer's space-time diagram; `None` for a model that
    /// is not an actor model. [`actors_view`] gives it for any `ActorModelState`.
    fn actors(_state: &Self::State) -> Option<ActorsView> {
        None
    }

    /// `state` in the paper's terms, one line per actor and then what the properties read (Raft:
    /// `S1 Leader t1 voted S1 log [1:t1 Put x=1] commit 1`): the CLI prints it for a
    /// counterexample's last state and, after each step, the lines the step changed. `None`: the
    /// state's `Debug` is all there is.
    fn view(_model: &Self::Model, _state: &Self::State) -> Option<String> {
        None
    }

    /// The actors' names by role, in id order (Raft: `S0`, `S1`, `S2`, `C3`): the CLI writes
    /// them for `Id(n)` in the steps it prints. `None`: ids stay as they are.
    fn actor_names(_model: &Self::Model) -> Option<Vec<String>> {
        None
    }

    /// The weak-fairness classes of the model's actions ([`actor_fair_class`] for an actor
    /// model); `None`: the model declares none, and its liveness is checked without fairness.
    fn fairness() -> Option<FairClassOf<Self::Model>> {
        None
    }

    /// The model's leads-to properties, checked like its `eventually` ones.
    fn leads_to(_model: &Self::Model) -> Vec<LeadsTo<Self::Model>> {
        Vec::new()
    }

    /// Why `property` fails at `state`, in the paper's terms (the two leaders of one term, the
    /// dependency cycle): printed with a counterexample. `None`: the property's name says it all.
    fn explain(_model: &Self::Model, _state: &Self::State, _property: &str) -> Option<String> {
        None
    }
}

/// What the trace viewer draws of an actor model's state: each actor's state as text (its
/// `Debug`), and the messages in flight as (sender, receiver, message) with the message as
/// stateright's `format_action` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorsView {
    pub actors: Vec<String>,
    pub in_flight: Vec<(usize, usize, String)>,
}

/// Every message in flight on `network`, first in its channel or not: `(src, dst, msg)`.
pub fn in_flight<M>(
    network: &stateright::actor::Network<M>,
) -> Box<dyn Iterator<Item = (stateright::actor::Id, stateright::actor::Id, &M)> + '_>
where
    M: Eq + std::hash::Hash,
{
    use stateright::actor::Network;
    match network {
        // (stateright 0.31's `iter_all` never moves past the second message of an ordered
        // channel: it loops forever. The channels are walked here instead.)
        Network::Ordered(channels) => Box::new(
            channels
                .iter()
                .flat_map(|((src, dst), msgs)| msgs.iter().map(move |m| (*src, *dst, m))),
        ),
        network => Box::new(network.iter_all().map(|e| (e.src, e.dst, e.msg))),
    }
}

/// The [`ActorsView`] of an actor model's state.
/// Feeds an actor model's state to `hasher` so that distinct states feed distinct bytes.
///
/// stateright's `Hash` for `ActorModelState` hashes its `timers_set` (a `Vec` of `Timers`, one
/// per actor) as the vector's length and then each actor's timers as their sorted hashes, with
/// no count: actor 0 with timer `t` and actor 1 with none feed exactly what actor 0 with none
/// and actor 1 with `t` feed. Two such states get one fingerprint, and a checker that keeps
/// fingerprints only (ours, and stateright's) explores one of them: Aurora's two segments of
/// a zone, one failed and back and the other about to fail, or the other way round. Here each
/// actor's timers (and random choices) are preceded by their number.
pub fn hash_actor_state<A, Hi, H>(s: &stateright::actor::ActorModelState<A, Hi>, hasher: &mut H)
where
    A: stateright::actor::Actor,
    Hi: Hash,
    H: Hasher,
{
    s.actor_states.hash(hasher);
    s.history.hash(hasher);
    hasher.write_usize(s.timers_set.len());
    for timers in &s.timers_set {
        hasher.write_usize(timers.iter().count());
        timers.hash(hasher);
    }
    hasher.write_usize(s.random_choices.len());
    for choices in &s.random_choices {
        hasher.write_usize(choices.map.len());
        choices.hash(hasher);
    }
    s.network.hash(hasher);
    s.crashed.hash(hasher);
    s.actor_storages.hash(hasher);
}

/// The unique states of a breadth-first search of `model` up to `depth` (the initial states
/// are depth 1; states one deeper are counted, not expanded), or to the end, telling states
/// apart by equality, not fingerprints: slow, for tests of the checkers' counts.
pub fn count_exactly<M>(model: &M, depth: Option<usize>) -> usize
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
{
    // Buckets by the state's own `Hash`, then equality within a bucket.
    let mut seen: std::collections::HashMap<u64, Vec<M::State>> = Default::default();
    let mut insert = |s: &M::State| {
        let mut h = std::hash::DefaultHasher::new();
        s.hash(&mut h);
        let bucket = seen.entry(h.finish()).or_default();
        let new = !bucket.contains(s);
        if new {
            bucket.push(s.clone());
        }
        new
    };
    let mut level: Vec<M::State> = Vec::new();
    for s in model.init_states() {
        if model.within_boundary(&s) && insert(&s) {
            level.push(s);
        }
    }
    let mut unique = level.len();
    let mut actions = Vec::new();
    let mut expanded = 0;
    while !level.is_empty() && depth.is_none_or(|d| expanded < d) {
        expanded += 1;
        let mut next_level = Vec::new();
        for s in &level {
            model.actions(s, &mut actions);
            for a in actions.drain(..) {
                if let Some(next) = model.next_state(s, a) {
                    if model.within_boundary(&next) && insert(&next) {
                        next_level.push(next);
                    }
                }
            }
        }
        unique += next_level.len();
        level = next_level;
    }
    unique
}

pub fn actors_view<A, H>(s: &stateright::actor::ActorModelState<A, H>) -> ActorsView
where
    A: stateright::actor::Actor,
    A::State: Debug,
    A::Msg: Debug,
{
    let in_flight = in_flight(&s.network)
        .map(|(src, dst, m)| (usize::from(src), usize::from(dst), format!("{m:?}")))
        .collect();
    ActorsView {
        actors: s.actor_states.iter().map(|a| format!("{a:#?}")).collect(),
        in_flight,
    }
}

/// Actor `i`'s name in `names` (a model's [`Spec::actor_names`]), or `#i` past their end.
pub fn name_of(names: &[String], i: usize) -> String {
    names.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
}

/// The last line of a model's [`Spec::view`]: the messages in flight, each `S0→S1 ...` with the
/// message as `brief` writes it (from its `Debug`), or `in flight: nothing`.
pub fn in_flight_line<A, H>(
    s: &stateright::actor::ActorModelState<A, H>,
    names: &[String],
    brief: impl Fn(&str) -> String,
) -> String
where
    A: stateright::actor::Actor,
    A::State: Debug,
    A::Msg: Debug,
{
    let msgs: Vec<String> = actors_view(s)
        .in_flight
        .into_iter()
        .map(|(src, dst, msg)| {
            format!(
                "{}→{} {}",
                name_of(names, src),
                name_of(names, dst),
                brief(&msg)
            )
        })
        .collect();
    if msgs.is_empty() {
        "in flight: nothing".to_string()
    } else {
        format!("in flight: {}", msgs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::hash_actor_state;
    use crate::aurora::model::AuroraCfg;
    use std::hash::{DefaultHasher, Hash, Hasher};

    fn std_hash<T: Hash>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    fn actor_hash<A: stateright::actor::Actor, H: Hash>(
        s: &stateright::actor::ActorModelState<A, H>,
    ) -> u64 {
        let mut h = DefaultHasher::new();
        hash_actor_state(s, &mut h);
        h.finish()
    }

    /// A timer that moves from one actor to its neighbour: stateright's `Hash` does not see it,
    /// [`hash_actor_state`] does.
    #[test]
    fn a_timer_moved_to_a_neighbour_changes_the_hash() {
        use crate::aurora::actor::AuroraTimer;
        use stateright::Model;
        let model = AuroraCfg::default().into_model();
        let init = model.init_states().remove(0);
        let (seg, next) = (2, 3);
        let mut a = init.clone();
        let mut b = init.clone();
        for t in [&mut a, &mut b] {
            t.timers_set[seg].cancel_all();
            t.timers_set[next].cancel_all();
        }
        a.timers_set[seg].set(AuroraTimer::Fail);
        b.timers_set[next].set(AuroraTimer::Fail);
        assert!(a != b);
        assert_eq!(std_hash(&a), std_hash(&b));
        assert_ne!(actor_hash(&a), actor_hash(&b));
    }
}
