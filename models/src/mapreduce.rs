//! MapReduce's coordinator and workers.
//!
//! Jeffrey Dean and Sanjay Ghemawat, "MapReduce: Simplified Data Processing on Large Clusters"
//! (OSDI 2004): §3.1 execution overview, §3.3 fault tolerance (re-execution of the tasks of a worker
//! that stops answering, atomic commits of task outputs by rename), §3.6 backup tasks (stragglers).
//! The job is word count, as in the paper's §2.1 example.
//!
//! # Actors
//! - The coordinator (the paper's master) hands out map tasks, then, once every map task is done,
//!   reduce tasks. It parks a worker's request while no task is idle and answers it when one
//!   becomes idle or the job ends (then the answer is `Exit`). It re-assigns a task whose worker has
//!   not reported within a timeout; the timeout may fire at any time, so the model covers crashed
//!   workers and stragglers alike (§3.3, §3.6).
//! - The workers ask for a task, read their input from the file system, and write their output
//!   under a temporary name, then rename it to the final name (`mr-<m>-<r>` for map task m and
//!   reduce partition r; `mr-out-<r>` for reduce task r), and report. A renamed file appears whole
//!   or not at all, so a duplicate execution cannot expose a partial or doubled output (§3.3).
//! - The file system (GFS in the paper) is an actor too: it writes, renames and reads files, and
//!   acknowledges each operation. Over TCP the same messages would be served by a real directory.
//!
//! Workers crash (stateright's `max_crashes`) and recover with their storage: an incarnation
//! counter, which bounds how often a worker restarts so the state space stays finite. The network
//! keeps each channel in order (TCP-like) but interleaves channels freely.
//!
//! # Properties
//! - always "no reduce task before every map task is done" (§3.1 step 4 and 5).
//! - always "final outputs are the sequential result": each `mr-out-r`, once visible, holds exactly
//!   the counts a sequential word count gives for partition r, so it is never replaced by a
//!   different one.
//! - sometimes "the job can complete"; "the job completes after a worker crash"; "a task runs twice".
//! - eventually "the job eventually completes", with at most W-1 workers crashed (decided exactly by
//!   the workbench's engine; this model has no cycles, since workers wait for answers instead of
//!   polling, so `--engine stateright`, which checks acyclic paths only, agrees).
//!
//! # Seeded bugs
//! - `no-reassign`: the coordinator never re-runs a task whose worker went quiet; after a crash the
//!   job cannot complete (eventually).
//! - `reduce-early`: reduce tasks are handed out as soon as no map task is idle, before every map
//!   task is done (the reduce property, and the outputs).
//! - `non-atomic-output`: outputs are appended straight to their final names, so a duplicate
//!   execution doubles them (final outputs are the sequential result).
//! - `accept-stale-replies`: a worker takes any read reply for the answer to its current read. A
//!   reply sent to its previous incarnation, before a crash, then feeds a new task the wrong input
//!   (final outputs). The checker found this one in the first version of this model.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use stateright::actor::{Actor, ActorModel, ActorModelState, Id, Network, Out};
use stateright::Expectation;

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

/// A word, abstracted to a small symbol.
pub type Word = u8;
/// The contents of a file: (key, value) pairs in the order they were written.
pub type Contents = Vec<(Word, u32)>;

/// A task: map task m, or reduce task r.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Task {
    Map(usize),
    Reduce(usize),
}

/// The reduce partition of a word: the paper's `hash(key) mod R`.
pub fn partition(word: Word, reduces: usize) -> usize {
    usize::from(word) % reduces
}

/// The name of an input split.
pub fn input_name(m: usize) -> String {
    format!("pg-{m}.txt")
}

/// The name of map task m's output for partition r.
pub fn intermediate_name(m: usize, r: usize) -> String {
    format!("mr-{m}-{r}")
}

/// The name of reduce task r's output.
pub fn output_name(r: usize) -> String {
    format!("mr-out-{r}")
}

/// The messages.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum MrMsg {
    /// Worker to coordinator: give me a task.
    RequestTask,
    /// Coordinator to worker: run `task` on these files (a map task's input split; a reduce task's
    /// intermediate files, one per map task), for `reduces` partitions.
    Assign {
        task: Task,
        inputs: Vec<String>,
        reduces: usize,
    },
    /// Coordinator to worker: the job is done.
    Exit,
    /// Worker to coordinator: this task's output is in place; give me another task.
    TaskDone(Task),
    /// To the file system: read these files.
    Read(Vec<String>),
    /// Writes a file; acknowledged with `Done` if `ack`.
    Write {
        name: String,
        contents: Contents,
        ack: bool,
    },
    /// Appends to a file, creating it; acknowledged with `Done` if `ack`.
    Append {
        name: String,
        contents: Contents,
        ack: bool,
    },
    /// Renames a file, replacing the target; acknowledged with `Done`.
    Rename { from: String, to: String },
    /// From the file system: the files read (`None` for a missing one), with their names, so that
    /// a reply meant for a worker's previous incarnation is not taken for the answer to a new read.
    ReadReply {
        names: Vec<String>,
        contents: Vec<Option<Contents>>,
    },
    /// From the file system: this file's last operation is done.
    Done(String),
}

/// The coordinator's timer: re-assign this task if it is still in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MrTimer {
    Reassign(Task),
}

/// A task's state at the coordinator (§3.2: idle, in-progress, completed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    Idle,
    InProgress(Id),
    Completed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorState {
    pub maps: Vec<TaskState>,
    pub reduces: Vec<TaskState>,
    /// How many times each task was handed out (maps, then reduces).
    pub attempts: Vec<u8>,
    /// Workers whose request is parked until a task is idle.
    pub waiting: Vec<Id>,
}

impl CoordinatorState {
    fn all_maps_completed(&self) -> bool {
        self.maps.iter().all(|t| *t == TaskState::Completed)
    }

    pub fn done(&self) -> bool {
        self.all_maps_completed() && self.reduces.iter().all(|t| *t == TaskState::Completed)
    }
}

/// What a worker is doing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// Asked for a task.
    Asking,
    /// Reading the task's inputs, these files.
    Reading {
        task: Task,
        reduces: usize,
        names: Vec<String>,
    },
    /// Waiting for the file system to acknowledge the task's outputs, by name.
    Writing {
        task: Task,
        unacknowledged: Vec<String>,
    },
    Exited,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MrState {
    Coordinator(CoordinatorState),
    Fs(BTreeMap<String, Contents>),
    /// A worker, with its incarnation (how many times it has started).
    Worker(WorkerState, u8),
}

crate::seeded_bugs! {
    /// The seeded bugs, see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MrBug {
        NoReassign = "no-reassign",
        ReduceEarly = "reduce-early",
        NonAtomicOutput = "non-atomic-output",
        AcceptStaleReplies = "accept-stale-replies",
    }
}

/// An actor with its configuration.
#[derive(Clone, Debug)]
pub enum MrActor {
    Coordinator {
        /// The input splits, one per map task.
        inputs: Vec<String>,
        reduces: usize,
        /// How many times a task may be re-assigned: the number of worker failures the job is
        /// configured to tolerate. A falsely suspected worker is alive and still reports, so with at
        /// most that many failures a task always keeps a live assignee.
        reassignments: u8,
        /// How long a task may run before it is handed to another worker.
        task_timeout: Range<Duration>,
        bug: Option<MrBug>,
    },
    /// The file system, with the input splits it starts with.
    Fs { inputs: Vec<Contents> },
    Worker {
        coordinator: Id,
        fs: Id,
        bug: Option<MrBug>,
    },
}

impl MrActor {
    /// Hands idle tasks to parked workers; answers `Exit` to them once the job is done.
    fn dispatch(&self, c: &mut CoordinatorState, o: &mut Out<Self>) {
        let MrActor::Coordinator {
            inputs,
            reduces,
            reassignments,
            task_timeout,
            bug,
        } = self
        else {
            unreachable!("only the coordinator dispatches");
        };
        if c.done() {
            for w in c.waiting.drain(..) {
                o.send(w, MrMsg::Exit);
            }
            return;
        }
        while !c.waiting.is_empty() {
            let map = c.maps.iter().position(|t| *t == TaskState::Idle);
            let reduces_open =
                c.all_maps_completed() || (*bug == Some(MrBug::ReduceEarly) && map.is_none());
            let task = match map {
                Some(m) => Task::Map(m),
                None if reduces_open => {
                    match c.reduces.iter().position(|t| *t == TaskState::Idle) {
                        Some(r) => Task::Reduce(r),
                        None => return,
                    }
                }
                None => return,
            };
            let w = c.waiting.remove(0);
            let maps = inputs.len();
            let (slot, index, files) = match task {
                Task::Map(m) => (&mut c.maps[m], m, vec![inputs[m].clone()]),
                Task::Reduce(r) => (
                    &mut c.reduces[r],
                    maps + r,
                    (0..maps).map(|m| intermediate_name(m, r)).collect(),
                ),
            };
            *slot = TaskState::InProgress(w);
            c.attempts[index] = c.attempts[index].saturating_add(1);
            o.send(
                w,
                MrMsg::Assign {
                    task,
                    inputs: files,
                    reduces: *reduces,
                },
            );
            if *bug != Some(MrBug::NoReassign) && c.attempts[index] <= *reassignments {
                o.set_timer(MrTimer::Reassign(task), task_timeout.clone());
            }
        }
    }

    /// Sends a task's outputs to the file system: under a temporary name, then renamed (§3.3); or,
    /// with `non-atomic-output`, appended straight to the final name in two halves. The channel to
    /// the file system is in order, so only the last operation on each file is acknowledged.
    fn write_outputs(
        &self,
        me: Id,
        fs: Id,
        task: Task,
        outputs: Vec<(String, Contents)>,
        o: &mut Out<Self>,
    ) -> WorkerState {
        let MrActor::Worker { bug, .. } = self else {
            unreachable!("only workers write outputs")
        };
        let unacknowledged = outputs.iter().map(|(name, _)| name.clone()).collect();
        for (name, contents) in outputs {
            if *bug == Some(MrBug::NonAtomicOutput) {
                let (first, second) = contents.split_at(contents.len() / 2);
                for (part, ack) in [(first, false), (second, true)] {
                    let contents = part.to_vec();
                    let name = name.clone();
                    o.send(
                        fs,
                        MrMsg::Append {
                            name,
                            contents,
                            ack,
                        },
                    );
                }
            } else {
                // A temporary name of this worker's own (the lab's `ioutil.TempFile`).
                let tmp = format!("{name}.tmp-{}", usize::from(me));
                let write = MrMsg::Write {
                    name: tmp.clone(),
                    contents,
                    ack: false,
                };
                o.send(fs, write);
                o.send(
                    fs,
                    MrMsg::Rename {
                        from: tmp,
                        to: name,
                    },
                );
            }
        }
        WorkerState::Writing {
            task,
            unacknowledged,
        }
    }
}

/// Word count's map: each word of the split, with count 1 (§2.1).
fn map_words(split: &Contents) -> Vec<(Word, u32)> {
    split
        .iter()
        .flat_map(|&(w, n)| std::iter::repeat_n((w, 1), n as usize))
        .collect()
}

/// Word count's reduce: the total per word, in word order.
fn reduce_counts(pairs: impl IntoIterator<Item = (Word, u32)>) -> Contents {
    let mut counts: BTreeMap<Word, u32> = BTreeMap::new();
    for (w, n) in pairs {
        *counts.entry(w).or_default() += n;
    }
    counts.into_iter().collect()
}

/// The output a task writes from the contents it read.
fn run_task(task: Task, reduces: usize, read: Vec<Contents>) -> Vec<(String, Contents)> {
    match task {
        Task::Map(m) => {
            let pairs = map_words(&read[0]);
            (0..reduces)
                .map(|r| {
                    let part = pairs
                        .iter()
                        .copied()
                        .filter(|(w, _)| partition(*w, reduces) == r)
                        .collect();
                    (intermediate_name(m, r), part)
                })
                .collect()
        }
        Task::Reduce(r) => vec![(output_name(r), reduce_counts(read.concat()))],
    }
}

impl Actor for MrActor {
    type Msg = MrMsg;
    type State = MrState;
    type Timer = MrTimer;
    type Random = ();
    type Storage = u8;

    fn on_start(&self, _id: Id, storage: &Option<u8>, o: &mut Out<Self>) -> MrState {
        match self {
            MrActor::Coordinator {
                inputs, reduces, ..
            } => MrState::Coordinator(CoordinatorState {
                maps: vec![TaskState::Idle; inputs.len()],
                reduces: vec![TaskState::Idle; *reduces],
                attempts: vec![0; inputs.len() + reduces],
                waiting: Vec::new(),
            }),
            MrActor::Fs { inputs } => MrState::Fs(
                inputs
                    .iter()
                    .enumerate()
                    .map(|(m, c)| (input_name(m), c.clone()))
                    .collect(),
            ),
            MrActor::Worker { coordinator, .. } => {
                let incarnation = storage.map_or(1, |n| n + 1);
                o.save(incarnation);
                o.send(*coordinator, MrMsg::RequestTask);
                MrState::Worker(WorkerState::Asking, incarnation)
            }
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<MrState>, src: Id, msg: MrMsg, o: &mut Out<Self>) {
        match (self, state.to_mut(), msg) {
            (MrActor::Coordinator { .. }, MrState::Coordinator(c), msg) => {
                if let MrMsg::TaskDone(task) = msg {
                    let slot = match task {
                        Task::Map(m) => &mut c.maps[m],
                        Task::Reduce(r) => &mut c.reduces[r],
                    };
                    // A late report of a re-assigned task is as good as any other: its output
                    // was renamed into place whole.
                    *slot = TaskState::Completed;
                    o.cancel_timer(MrTimer::Reassign(task));
                } else if msg != MrMsg::RequestTask {
                    return;
                }
                if !c.waiting.contains(&src) {
                    c.waiting.push(src);
                }
                self.dispatch(c, o);
            }
            (MrActor::Fs { .. }, MrState::Fs(files), msg) => match msg {
                MrMsg::Read(names) => {
                    let contents = names.iter().map(|n| files.get(n).cloned()).collect();
                    o.send(src, MrMsg::ReadReply { names, contents });
                }
                MrMsg::Write {
                    name,
                    contents,
                    ack,
                } => {
                    files.insert(name.clone(), contents);
                    if ack {
                        o.send(src, MrMsg::Done(name));
                    }
                }
                MrMsg::Append {
                    name,
                    contents,
                    ack,
                } => {
                    files.entry(name.clone()).or_default().extend(contents);
                    if ack {
                        o.send(src, MrMsg::Done(name));
                    }
                }
                MrMsg::Rename { from, to } => {
                    if let Some(contents) = files.remove(&from) {
                        files.insert(to.clone(), contents);
                    }
                    o.send(src, MrMsg::Done(to));
                }
                _ => {}
            },
            (
                MrActor::Worker {
                    fs,
                    coordinator,
                    bug,
                },
                MrState::Worker(w, _),
                msg,
            ) => match (msg, &mut *w) {
                (MrMsg::Exit, _) => *w = WorkerState::Exited,
                (
                    MrMsg::Assign {
                        task,
                        inputs: names,
                        reduces,
                    },
                    WorkerState::Asking,
                ) => {
                    o.send(*fs, MrMsg::Read(names.clone()));
                    *w = WorkerState::Reading {
                        task,
                        reduces,
                        names,
                    };
                }
                (
                    MrMsg::ReadReply { names, contents },
                    WorkerState::Reading {
                        task,
                        reduces,
                        names: expected,
                    },
                ) if names == *expected || *bug == Some(MrBug::AcceptStaleReplies) => {
                    let read = contents
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect();
                    let outputs = run_task(*task, *reduces, read);
                    *w = self.write_outputs(id, src, *task, outputs, o);
                }
                (
                    MrMsg::Done(name),
                    WorkerState::Writing {
                        task,
                        unacknowledged,
                    },
                ) if unacknowledged.contains(&name) => {
                    unacknowledged.retain(|n| *n != name);
                    if unacknowledged.is_empty() {
                        o.send(*coordinator, MrMsg::TaskDone(*task));
                        *w = WorkerState::Asking;
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<MrState>, timer: &MrTimer, o: &mut Out<Self>) {
        let MrTimer::Reassign(task) = *timer;
        if let MrState::Coordinator(c) = state.to_mut() {
            let slot = match task {
                Task::Map(m) => &mut c.maps[m],
                Task::Reduce(r) => &mut c.reduces[r],
            };
            if matches!(slot, TaskState::InProgress(_)) {
                *slot = TaskState::Idle;
                self.dispatch(c, o);
            }
        }
    }
}

/// The model's configuration.
#[derive(Clone, Debug)]
pub struct MrCfg {
    pub maps: usize,
    pub reduces: usize,
    pub workers: usize,
    pub crashes: usize,
    pub bug: Option<MrBug>,
}

pub type MrModel = ActorModel<MrActor, MrCfg>;
pub type MrModelState = ActorModelState<MrActor>;

/// The coordinator and the file system run at these ids; workers after them.
const COORDINATOR: usize = 0;
const FS: usize = 1;

/// The actors' names: the coordinator, the file system, the workers `W2`...
pub fn actor_names(cfg: &MrCfg) -> Vec<String> {
    (0..2 + cfg.workers)
        .map(|i| match i {
            COORDINATOR => "Coordinator".to_string(),
            FS => "FS".to_string(),
            i => format!("W{i}"),
        })
        .collect()
}

/// `s` in the paper's terms (§3.1-3.3): each task's state at the coordinator (idle, in
/// progress at a worker, completed) and how often it was handed out, the files in the file
/// system, each worker's phase, and the messages in flight.
pub fn view(cfg: &MrCfg, s: &MrModelState) -> String {
    let names = actor_names(cfg);
    let name = |i: usize| crate::catalog::name_of(&names, i);
    let task = |t: &TaskState| match t {
        TaskState::Idle => "idle".to_string(),
        TaskState::InProgress(w) => format!("at {}", name(usize::from(*w))),
        TaskState::Completed => "done".to_string(),
    };
    let mut lines = Vec::new();
    for (i, actor) in s.actor_states.iter().enumerate() {
        lines.push(match &**actor {
            MrState::Coordinator(c) => {
                let maps: Vec<String> = c
                    .maps
                    .iter()
                    .enumerate()
                    .map(|(m, t)| format!("map {m} {} (x{})", task(t), c.attempts[m]))
                    .collect();
                let reduces: Vec<String> = c
                    .reduces
                    .iter()
                    .enumerate()
                    .map(|(r, t)| {
                        format!("reduce {r} {} (x{})", task(t), c.attempts[c.maps.len() + r])
                    })
                    .collect();
                format!(
                    "{} {}",
                    name(i),
                    maps.into_iter()
                        .chain(reduces)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            MrState::Fs(files) => {
                let files: Vec<String> = files
                    .iter()
                    .map(|(f, words)| {
                        let words: Vec<String> =
                            words.iter().map(|(w, n)| format!("{w}:{n}")).collect();
                        format!("{f} [{}]", words.join(" "))
                    })
                    .collect();
                format!("{} {}", name(i), files.join(", "))
            }
            MrState::Worker(w, incarnation) => format!("{} (start {incarnation}) {w:?}", name(i)),
        });
    }
    lines.push(crate::catalog::in_flight_line(s, &names, str::to_string));
    lines.join("\n")
}

impl MrCfg {
    /// Input split m: a few words, overlapping with the next split's, so that reduce tasks combine
    /// the output of several map tasks.
    pub fn input(m: usize) -> Contents {
        let (a, b) = ((m % 3) as Word, ((m + 1) % 3) as Word);
        vec![(a, 2), (b, 1)]
    }

    /// What a sequential word count writes to `mr-out-r`.
    pub fn expected(&self, r: usize) -> Contents {
        reduce_counts(
            (0..self.maps)
                .flat_map(|m| map_words(&Self::input(m)))
                .filter(|(w, _)| partition(*w, self.reduces) == r),
        )
    }

    pub fn into_model(self) -> MrModel {
        let mut actors = vec![
            MrActor::Coordinator {
                inputs: (0..self.maps).map(input_name).collect(),
                reduces: self.reduces,
                reassignments: self.crashes as u8,
                task_timeout: Duration::from_secs(10)..Duration::from_secs(20),
                bug: self.bug,
            },
            MrActor::Fs {
                inputs: (0..self.maps).map(Self::input).collect(),
            },
        ];
        for _ in 0..self.workers {
            actors.push(MrActor::Worker {
                coordinator: Id::from(COORDINATOR),
                fs: Id::from(FS),
                bug: self.bug,
            });
        }
        let crashes = self.crashes;
        ActorModel::new(self, ())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .max_crashes(crashes)
            .within_boundary(|cfg, s| {
                // Only workers crash (a failed master aborts the job, §3.3; the file system is
                // GFS, replicated), and at most `crashes` times in all: a restart counts in the
                // worker's incarnation, a worker still down counts once.
                let restarts: usize = workers(s).map(|(_, n)| usize::from(n - 1)).sum();
                let down = s.crashed.iter().filter(|c| **c).count();
                !s.crashed[COORDINATOR] && !s.crashed[FS] && restarts + down <= cfg.crashes
            })
            .property(
                Expectation::Always,
                "no reduce task before every map task is done",
                |_, s| {
                    let c = coordinator(s);
                    c.all_maps_completed() || c.reduces.iter().all(|t| *t == TaskState::Idle)
                },
            )
            .property(
                Expectation::Always,
                "final outputs are the sequential result",
                |model, s| {
                    let cfg = &model.cfg;
                    (0..cfg.reduces).all(|r| {
                        files(s)
                            .get(&output_name(r))
                            .is_none_or(|c| *c == cfg.expected(r))
                    })
                },
            )
            .property(Expectation::Sometimes, "the job can complete", |_, s| {
                coordinator(s).done()
            })
            .property(
                Expectation::Sometimes,
                "the job completes after a worker crash",
                |_, s| {
                    coordinator(s).done()
                        && (s.crashed.iter().any(|c| *c) || workers(s).any(|(_, n)| n > 1))
                },
            )
            .property(Expectation::Sometimes, "a task runs twice", |_, s| {
                coordinator(s).attempts.iter().any(|a| *a > 1)
            })
            .property(
                Expectation::Eventually,
                "the job eventually completes",
                |_, s| coordinator(s).done(),
            )
    }
}

fn coordinator(s: &MrModelState) -> &CoordinatorState {
    match &*s.actor_states[COORDINATOR] {
        MrState::Coordinator(c) => c,
        _ => unreachable!("actor 0 is the coordinator"),
    }
}

fn files(s: &MrModelState) -> &BTreeMap<String, Contents> {
    match &*s.actor_states[FS] {
        MrState::Fs(f) => f,
        _ => unreachable!("actor 1 is the file system"),
    }
}

/// Each worker's state and incarnation.
fn workers(s: &MrModelState) -> impl Iterator<Item = (&WorkerState, u8)> {
    s.actor_states[FS + 1..].iter().map(|a| match &**a {
        MrState::Worker(w, n) => (w, *n),
        _ => unreachable!("actors 2.. are workers"),
    })
}

/// `checker mapreduce`.
pub struct MapReduceSpec;

impl Spec for MapReduceSpec {
    type Model = MrModel;
    type State = MrModelState;
    type Action = stateright::actor::ActorModelAction<MrMsg, MrTimer, ()>;

    const NAME: &'static str = "mapreduce";
    const PAPER: &'static str = "Dean & Ghemawat, MapReduce (OSDI 2004) §§3.1, 3.3, 3.6";
    const SUMMARY: &'static str =
        "A coordinator re-running the tasks of crashed or slow workers; outputs committed by rename";
    const PARAMS: &'static [Param] = &[
        Param {
            name: "maps",
            help: "number of map tasks (input splits)",
            kind: ParamKind::Int {
                default: 2,
                min: 1,
                max: 4,
            },
        },
        Param {
            name: "reduces",
            help: "number of reduce tasks (R)",
            kind: ParamKind::Int {
                default: 1,
                min: 1,
                max: 3,
            },
        },
        Param {
            name: "workers",
            help: "number of workers",
            kind: ParamKind::Int {
                default: 2,
                min: 1,
                max: 4,
            },
        },
        Param {
            name: "crashes",
            help:
                "how many workers may be down at once (at most workers - 1 for the job to finish)",
            kind: ParamKind::Int {
                default: 1,
                min: 0,
                max: 3,
            },
        },
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: MrBug::NoReassign.name(),
            breaks: &["the job eventually completes", "a task runs twice"],
            help: "a quiet worker's task is never re-run: after a crash the job cannot complete",
            params: &[],
        },
        Bug {
            name: MrBug::ReduceEarly.name(),
            breaks: &[
                "no reduce task before every map task is done",
                "final outputs are the sequential result",
            ],
            help: "reduce tasks start before every map task is done",
            params: &[],
        },
        Bug {
            name: MrBug::AcceptStaleReplies.name(),
            breaks: &["final outputs are the sequential result"],
            help: "a restarted worker takes a reply meant for its previous incarnation",
            params: &[],
        },
        Bug {
            name: MrBug::NonAtomicOutput.name(),
            breaks: &["final outputs are the sequential result"],
            help: "outputs are appended to their final names, so a duplicate run doubles them",
            params: &[],
        },
    ];

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| crate::catalog::actor_fair_class(a))
    }

    fn hash_state<H: std::hash::Hasher>(s: &MrModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &MrModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &MrModel, s: &MrModelState) -> Option<String> {
        Some(view(&m.cfg, s))
    }

    fn actor_names(m: &MrModel) -> Option<Vec<String>> {
        Some(actor_names(&m.cfg))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> MrModel {
        let bug = bug.map(|b| {
            MrBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not in MapReduceSpec::BUGS"))
        });
        MrCfg {
            maps: params.int("maps") as usize,
            reduces: params.int("reduces") as usize,
            workers: params.int("workers") as usize,
            crashes: params.int("crashes") as usize,
            bug,
        }
        .into_model()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::{Checker, Model};

    fn cfg(bug: Option<MrBug>) -> MrCfg {
        MrCfg {
            maps: 2,
            reduces: 1,
            workers: 2,
            crashes: 1,
            bug,
        }
    }

    #[test]
    fn word_count_matches_the_sequential_result() {
        let c = cfg(None);
        // Splits "0 0 1" and "1 1 2": one partition holds every count.
        assert_eq!(c.expected(0), vec![(0, 2), (1, 3), (2, 1)]);
        let c = MrCfg { reduces: 2, ..c };
        assert_eq!(c.expected(0), vec![(0, 2), (2, 1)]);
        assert_eq!(c.expected(1), vec![(1, 3)]);
    }

    #[test]
    fn the_job_survives_crashes_and_stragglers() {
        let checker = cfg(None).into_model().checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 49_187);
    }

    fn failing(bug: MrBug) -> Vec<&'static str> {
        let checker = cfg(Some(bug)).into_model().checker().spawn_bfs().join();
        checker
            .model()
            .properties()
            .iter()
            .filter(|p| p.expectation != Expectation::Sometimes)
            .filter(|p| checker.discovery(p.name).is_some())
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn catches_no_reassign() {
        assert_eq!(
            failing(MrBug::NoReassign),
            vec!["the job eventually completes"]
        );
    }

    #[test]
    fn catches_reduce_early() {
        assert!(
            failing(MrBug::ReduceEarly).contains(&"no reduce task before every map task is done")
        );
    }

    #[test]
    fn catches_accept_stale_replies() {
        assert!(
            failing(MrBug::AcceptStaleReplies).contains(&"final outputs are the sequential result")
        );
    }

    #[test]
    fn catches_non_atomic_output() {
        assert!(
            failing(MrBug::NonAtomicOutput).contains(&"final outputs are the sequential result")
        );
    }
}
