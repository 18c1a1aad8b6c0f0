//! The checked model: the driver and two workers in one `ActorModel`, in the workbench's
//! [`Harness`]. Links are FIFO. A crash takes a worker down for a while
//! ([`CrashKind::DownLosing`]): its memory (cached partitions, map outputs, running tasks) is
//! gone, messages to it are lost, and when it comes back it registers again. Time is not
//! modelled; the harness allows a timeout only when what it waits for can no longer come:
//! - the driver declares a worker lost (`WorkerLost`, missed heartbeats) only while it is down;
//! - a task gives up a fetch (`FetchTimeout`) only when neither the request nor its answer is
//!   on its way (the holder was down when it arrived, or crashed with it).

use stateright::actor::{ActorModel, ActorModelAction, Id, Network};
use stateright::Property;

use super::actor::{
    DriverCfg, DriverState, Job, Part, Rec, SparkActor, SparkBug, SparkMsg, SparkState, SparkTimer,
    StageId, StageOutput, WorkerCfg, WorkerState, HEARTBEAT,
};
use crate::harness::{CrashKind, HAction, HState, Harness, Harnessed};

/// The driver's id; the workers follow.
pub const DRIVER: usize = 0;
/// Workers in the model.
pub const WORKERS: usize = 2;

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SparkCfg {
    pub job: Job,
    /// Worker crashes (each loses the worker's memory).
    pub crashes: usize,
    pub bug: Option<SparkBug>,
}

impl Default for SparkCfg {
    fn default() -> Self {
        SparkCfg {
            job: Job::WordCount,
            crashes: 1,
            bug: None,
        }
    }
}

impl SparkCfg {
    pub fn into_model(self) -> SparkModel {
        let driver = Id::from(DRIVER);
        let workers: Vec<Id> = (1..=WORKERS).map(Id::from).collect();
        let mut actors = vec![SparkActor::Driver(DriverCfg {
            plan: self.job.plan(),
            workers: workers.clone(),
            // One failure a crash can cause, and one more.
            max_failures: self.crashes as u8 + 1,
            bug: self.bug,
            lost_after: HEARTBEAT,
        })];
        for _ in &workers {
            actors.push(SparkActor::Worker(WorkerCfg {
                driver,
                job: self.job,
                bug: self.bug,
            }));
        }
        let crashes = self.crashes;
        let inner = ActorModel::new(self, SparkHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]));
        Harness::new(inner, crashes)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SparkHistory {
    pub crashes: usize,
}

pub type SparkModelState = HState<Spark>;
pub type SparkAction = HAction<Spark>;
pub type SparkModel = Harness<Spark>;

/// The Spark model's part of the [`Harness`].
pub struct Spark;

impl Harnessed for Spark {
    type Actor = SparkActor;
    type Cfg = SparkCfg;
    type History = SparkHistory;
    type Step = ();

    fn step_of(_: &SparkAction) {}

    fn crashes(h: &SparkHistory) -> usize {
        h.crashes
    }

    fn count_crash(h: &mut SparkHistory) {
        h.crashes += 1;
    }

    const CRASH: CrashKind = CrashKind::DownLosing;

    /// A worker may crash.
    fn may_crash(_: &SparkModel, s: &SparkModelState, index: usize) -> bool {
        worker(s, index).is_some()
    }

    fn allow(_: &SparkModel, s: &SparkModelState, action: &SparkAction) -> bool {
        match action {
            ActorModelAction::Timeout(_, SparkTimer::WorkerLost(w)) => s.crashed[usize::from(*w)],
            ActorModelAction::Timeout(id, SparkTimer::FetchTimeout(stage, p, attempt)) => {
                fetch_lost(s, *id, (*stage, *p, *attempt))
            }
            _ => true,
        }
    }

    fn record(_: &SparkModel, _: Option<(&SparkModelState, ())>, _: &mut SparkModelState) {}

    fn properties(m: &SparkModel) -> Vec<Property<SparkModel>> {
        let mut props = vec![
            Property::always(
                "the collected result equals the failure-free result (§2.1)",
                |m: &SparkModel, s: &SparkModelState| wrong_result(m, s).is_none(),
            ),
            Property::always(
                "a task runs only when its parents are available (§4)",
                |_, s: &SparkModelState| orphan_launch(s).is_none(),
            ),
            Property::sometimes(
                "a lost shuffle output makes the scheduler resubmit the parent stage (§5.1)",
                |m: &SparkModel, s: &SparkModelState| resubmitted(m, s),
            ),
            Property::sometimes(
                "the job completes after a worker crash (§5.1)",
                |_, s: &SparkModelState| driver(s).done() && s.history.crashes > 0,
            ),
        ];
        if m.cfg().job == Job::PageRank {
            props.push(Property::sometimes(
                "a lost cached partition is recomputed from its lineage (§2.1)",
                |_, s: &SparkModelState| workers(s).any(|w| w.recomputed),
            ));
        }
        props.push(Property::eventually(
            "the job completes",
            |_, s: &SparkModelState| driver(s).done(),
        ));
        props
    }
}

fn worker(s: &SparkModelState, index: usize) -> Option<&WorkerState> {
    match s.actor_states.get(index).map(|a| &**a) {
        Some(SparkState::Worker(w)) => Some(w),
        _ => None,
    }
}

/// The driver's state.
pub fn driver(s: &SparkModelState) -> &DriverState {
    match &*s.actor_states[DRIVER] {
        SparkState::Driver(d) => d,
        _ => unreachable!("actor 0 is the driver"),
    }
}

/// The workers, in order.
pub fn workers(s: &SparkModelState) -> impl Iterator<Item = &WorkerState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        SparkState::Worker(w) => Some(w),
        _ => None,
    })
}

/// Whether task (stage, partition, attempt) on worker `id` waits for a block that can no
/// longer come: neither its `Fetch` nor the answer is on its way.
fn fetch_lost(s: &SparkModelState, id: Id, (stage, p, attempt): (StageId, Part, u8)) -> bool {
    let Some(w) = worker(s, usize::from(id)) else {
        return false;
    };
    let Some(run) = w
        .running
        .iter()
        .find(|r| (r.stage, r.partition, r.attempt) == (stage, p, attempt))
    else {
        return false;
    };
    let task = (stage, p, attempt);
    run.got.iter().enumerate().any(|(m, got)| {
        let from = run.from[m].0;
        got.is_none()
            && !crate::catalog::in_flight(&s.network).any(|(src, dst, msg)| match msg {
                SparkMsg::Fetch { map, task: t, .. } => {
                    (src, dst) == (id, from) && usize::from(*map) == m && *t == task
                }
                SparkMsg::FetchReply { map, task: t, .. } => {
                    (src, dst) == (from, id) && usize::from(*map) == m && *t == task
                }
                _ => false,
            })
    })
}

/// The job is done and its result is not the failure-free one: (got, expected).
pub fn wrong_result(m: &SparkModel, s: &SparkModelState) -> Option<(Vec<Rec>, Vec<Rec>)> {
    let d = driver(s);
    if !d.done() {
        return None;
    }
    let (got, want) = (d.collected(), m.cfg().job.expected());
    (got != want).then_some((got, want))
}

/// A task launched without a registered location for one of its parent map outputs:
/// (stage, partition, missing map output).
pub fn orphan_launch(s: &SparkModelState) -> Option<(StageId, Part, usize)> {
    crate::catalog::in_flight(&s.network).find_map(|(_, _, msg)| match msg {
        SparkMsg::LaunchTask {
            stage,
            partition,
            parents,
            ..
        } => parents
            .iter()
            .flatten()
            .position(Option::is_none)
            .map(|m| (*stage, *partition, m)),
        _ => None,
    })
}

/// A map stage's output was lost and one of its tasks run again.
fn resubmitted(m: &SparkModel, s: &SparkModelState) -> bool {
    let d = driver(s);
    d.resubmitted
        && m.cfg().job.plan().stages.iter().enumerate().any(|(i, st)| {
            st.output == StageOutput::Shuffle && d.attempts[i].iter().any(|a| *a > 1)
        })
}

/// The actors' names: `driver`, `w1`, `w2`.
pub fn actor_names(_: &SparkModel) -> Vec<String> {
    let mut names = vec!["driver".to_string()];
    names.extend((1..=WORKERS).map(|i| format!("w{i}")));
    names
}

/// A state in the paper's terms: each stage's tasks at the driver, each worker's map outputs,
/// cached partitions and waiting tasks.
pub fn view(m: &SparkModel, s: &SparkModelState) -> String {
    let names = actor_names(m);
    let d = driver(s);
    let mut lines = Vec::new();
    for (i, tasks) in d.tasks.iter().enumerate() {
        let ts: Vec<String> = tasks
            .iter()
            .enumerate()
            .map(|(p, t)| format!("p{p} {t:?} (attempts {})", d.attempts[i][p]))
            .collect();
        lines.push(format!("driver: stage {i}: {}", ts.join(", ")));
    }
    lines.push(format!(
        "driver: results {:?}{}{}",
        d.results,
        if d.lost.is_empty() {
            String::new()
        } else {
            format!(", lost {:?}", d.lost)
        },
        if d.aborted { ", ABORTED" } else { "" }
    ));
    for (i, a) in s.actor_states.iter().enumerate() {
        if let SparkState::Worker(w) = &**a {
            let outs: Vec<String> = w
                .outputs
                .iter()
                .map(|((st, mp), b)| format!("map {st}.{mp} {b:?}"))
                .collect();
            lines.push(format!(
                "{}{}: outputs [{}] cached {:?} waiting {:?}",
                names[i],
                if s.crashed[i] { " (down)" } else { "" },
                outs.join(", "),
                w.cache.keys().collect::<Vec<_>>(),
                w.running
                    .iter()
                    .map(|r| (r.stage, r.partition, r.attempt))
                    .collect::<Vec<_>>()
            ));
        }
    }
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// Why a property fails.
pub fn explain(m: &SparkModel, s: &SparkModelState, property: &str) -> Option<String> {
    if property.starts_with("the collected result") {
        let (got, want) = wrong_result(m, s)?;
        return Some(format!(
            "the job collected {got:?}, but without failures it collects {want:?}"
        ));
    }
    if property.starts_with("a task runs only") {
        let (stage, p, map) = orphan_launch(s)?;
        return Some(format!(
            "the driver launched stage {stage}'s task for partition {p} although map output {map} of its parent stage is registered nowhere"
        ));
    }
    None
}
