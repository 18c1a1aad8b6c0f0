//! The checked model: the two VMs, the shared disk and the client in one `ActorModel` over FIFO
//! links, in the workbench's [`Harness`]: a crash takes the primary down for good (messages to
//! it are lost), and history variables record what the properties need beyond the actors'
//! states (the outputs sent and received, the backup's acknowledgements, the faults).

use std::collections::{BTreeMap, BTreeSet};

use stateright::actor::{ActorModel, ActorModelAction, Envelope, Id, Network};
use stateright::Property;

use super::actor::{
    ClientCfg, ClientState, DiskState, Event, InputSeq, LogSeq, Role, Value, VmCfg, VmState,
    VmftActor, VmftBug, VmftMsg, VmftState, VmftTimer,
};
use crate::harness::{CrashKind, HAction, HState, Harness, Harnessed};

/// The VM that starts as the primary, the one that starts as the backup, the shared disk and
/// the client, by id.
pub const PRIMARY: usize = 0;
pub const BACKUP: usize = 1;
pub const DISK: usize = 2;
pub const CLIENT: usize = 3;

/// The one fault a run may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Either the primary crashes or the logging channel is cut, once.
    Either,
    /// The primary may crash (fail-stop), once.
    Crash,
    /// The logging channel between the VMs may be cut (for good), once; both VMs keep running.
    Partition,
    /// No fault: no failover.
    None,
}

impl Fault {
    /// The names the `--fault` parameter takes, default first.
    pub const NAMES: &'static [&'static str] = &["either", "crash", "partition", "none"];

    pub fn from_name(name: &str) -> Option<Fault> {
        match name {
            "either" => Some(Fault::Either),
            "crash" => Some(Fault::Crash),
            "partition" => Some(Fault::Partition),
            "none" => Some(Fault::None),
            _ => None,
        }
    }

    pub fn crash(self) -> bool {
        matches!(self, Fault::Either | Fault::Crash)
    }

    pub fn partition(self) -> bool {
        matches!(self, Fault::Either | Fault::Partition)
    }
}

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VmftCfg {
    /// Client inputs, sent one after another; input `k` carries the value `k + 1`.
    pub inputs: usize,
    /// Timer interrupts in all (at whichever VM is executing).
    pub interrupts: usize,
    pub fault: Fault,
    pub bug: Option<VmftBug>,
}

impl Default for VmftCfg {
    fn default() -> Self {
        VmftCfg {
            inputs: 2,
            interrupts: 1,
            fault: Fault::Either,
            bug: None,
        }
    }
}

impl VmftCfg {
    /// The inputs' values: input `k` carries `k + 1` (so that no input has the effect of an
    /// interrupt, which adds 1 to 0).
    pub fn input_values(&self) -> Vec<Value> {
        (1..=self.inputs as Value).map(|k| k + 1).collect()
    }

    pub fn into_model(self) -> VmftModel {
        let vm = |primary: bool, peer: usize| {
            VmftActor::Vm(VmCfg {
                peer: Id::from(peer),
                disk: Id::from(DISK),
                client: Id::from(CLIENT),
                primary,
                partition: primary && self.fault.partition(),
                bug: self.bug,
                timing: None,
                alone: false,
            })
        };
        let actors = vec![
            vm(true, BACKUP),
            vm(false, PRIMARY),
            VmftActor::Disk,
            VmftActor::Client(ClientCfg {
                primary: Id::from(PRIMARY),
                inputs: self.input_values(),
                driver: None,
                retry: None,
            }),
        ];
        let crashes = usize::from(self.fault.crash());
        let inner = ActorModel::new(self, VmftHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_out(record_out)
            .record_msg_in(record_in);
        Harness::new(inner, crashes)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VmftHistory {
    /// Faults so far: the primary's crash or the cut, at most one.
    pub faults: u8,
    /// The logging channel is cut.
    pub partitioned: bool,
    /// Timer interrupts taken so far.
    pub interrupts: u8,
    /// The highest log entry the backup has acknowledged.
    pub acked: LogSeq,
    /// Every output sent: (sender, input, value).
    pub sent: BTreeSet<(Id, InputSeq, Value)>,
    /// Every output the client received: (input, value), copies included.
    pub received: BTreeSet<(InputSeq, Value)>,
    /// A primary still logging sent an output whose log entry the backup had not acknowledged.
    pub output_rule_broken: bool,
    /// A backup replayed log entries in the step it went live.
    pub drained_at_go_live: bool,
    /// The client received an output from the VM that started as the backup.
    pub failover_output: bool,
}

pub type VmftModelState = HState<Vmft>;
pub type VmftAction = HAction<Vmft>;

/// The VM-FT model.
pub type VmftModel = Harness<Vmft>;

fn record_out(_: &VmftCfg, h: &VmftHistory, env: Envelope<&VmftMsg>) -> Option<VmftHistory> {
    match env.msg {
        VmftMsg::LogAck { seq } if *seq > h.acked => {
            let mut h = h.clone();
            h.acked = *seq;
            Some(h)
        }
        VmftMsg::Output { seq, value } if !h.sent.contains(&(env.src, *seq, *value)) => {
            let mut h = h.clone();
            h.sent.insert((env.src, *seq, *value));
            Some(h)
        }
        _ => None,
    }
}

fn record_in(_: &VmftCfg, h: &VmftHistory, env: Envelope<&VmftMsg>) -> Option<VmftHistory> {
    let VmftMsg::Output { seq, value } = env.msg else {
        return None;
    };
    let failover = usize::from(env.src) == BACKUP;
    if h.received.contains(&(*seq, *value)) && (h.failover_output || !failover) {
        return None;
    }
    let mut h = h.clone();
    h.received.insert((*seq, *value));
    h.failover_output |= failover;
    Some(h)
}

/// What the history variables need to know about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Partition,
    Interrupt,
    Other,
}

/// The VM-FT model's part of the [`Harness`].
pub struct Vmft;

impl Harnessed for Vmft {
    type Actor = VmftActor;
    type Cfg = VmftCfg;
    type History = VmftHistory;
    type Step = Step;

    /// A crash is fail-stop: the VM stays down and messages to it are lost.
    const CRASH: CrashKind = CrashKind::DownLosing;

    fn step_of(action: &VmftAction) -> Step {
        match action {
            ActorModelAction::Timeout(_, VmftTimer::Partition) => Step::Partition,
            ActorModelAction::Timeout(_, VmftTimer::Interrupt) => Step::Interrupt,
            _ => Step::Other,
        }
    }

    fn crashes(h: &VmftHistory) -> usize {
        usize::from(h.faults)
    }

    fn count_crash(h: &mut VmftHistory) {
        h.faults += 1;
    }

    /// Only the primary crashes (the budget is the one fault).
    fn may_crash(_: &VmftModel, s: &VmftModelState, i: usize) -> bool {
        i < DISK && vm(s, i).role == Role::Primary
    }

    /// A crashed VM never comes back; the channel is cut only if no fault has happened yet;
    /// interrupts within their budget; a VM suspects its peer only once the peer has crashed
    /// or the channel is cut (with no fault, heartbeats keep the timeout from firing).
    fn allow(m: &VmftModel, s: &VmftModelState, a: &VmftAction) -> bool {
        match a {
            ActorModelAction::Recover(_) => false,
            ActorModelAction::Timeout(_, VmftTimer::Partition) => s.history.faults == 0,
            ActorModelAction::Timeout(_, VmftTimer::Interrupt) => {
                usize::from(s.history.interrupts) < m.cfg().interrupts
            }
            ActorModelAction::Timeout(id, VmftTimer::PeerTimeout) => {
                s.history.partitioned || s.crashed[peer(usize::from(*id))]
            }
            _ => true,
        }
    }

    fn record(_: &VmftModel, prev: Option<(&VmftModelState, Step)>, next: &mut VmftModelState) {
        let Some((last, step)) = prev else {
            return;
        };
        match step {
            Step::Partition => {
                next.history.faults += 1;
                next.history.partitioned = true;
            }
            Step::Interrupt => next.history.interrupts += 1,
            Step::Other => {}
        }
        // The Output Rule (§2.2), checked on each output as it is sent.
        let fresh: Vec<(Id, InputSeq)> = next
            .history
            .sent
            .difference(&last.history.sent)
            .map(|(src, seq, _)| (*src, *seq))
            .collect();
        for (src, seq) in fresh {
            let (before, after) = (vm(last, usize::from(src)), vm(next, usize::from(src)));
            if before.role != Role::Primary || after.role != Role::Primary {
                continue;
            }
            let entry = after
                .log
                .iter()
                .position(|e| matches!(e, Event::Input { seq: s, .. } if *s == seq))
                .map_or(LogSeq::MAX, |k| k as LogSeq + 1);
            if entry > next.history.acked {
                next.history.output_rule_broken = true;
            }
        }
        for i in [PRIMARY, BACKUP] {
            let (before, after) = (vm(last, i), vm(next, i));
            if before.role == Role::Backup
                && after.role == Role::Live
                && after.replayed > before.replayed
            {
                next.history.drained_at_go_live = true;
            }
        }
    }

    fn properties(m: &VmftModel) -> Vec<Property<VmftModel>> {
        let cfg = m.cfg();
        let mut props = vec![
            Property::always(OUTPUT_REQUIREMENT, output_requirement),
            Property::always(OUTPUT_RULE, |_, s: &VmftModelState| {
                !s.history.output_rule_broken
            }),
            Property::always(AT_MOST_ONE_LIVE, at_most_one_live),
            Property::always(REPLAYS_WHOLE_LOG, replays_whole_log),
            Property::sometimes(HOLDS_OUTPUT, holds_output),
        ];
        if cfg.fault != Fault::None {
            props.push(Property::sometimes(
                FAILOVER_OUTPUT,
                |_, s: &VmftModelState| s.history.failover_output,
            ));
            props.push(Property::sometimes(
                DRAINS_AT_GO_LIVE,
                |_, s: &VmftModelState| s.history.drained_at_go_live,
            ));
        }
        if cfg.fault.partition() {
            props.push(Property::sometimes(REFUSED, |_, s: &VmftModelState| {
                [PRIMARY, BACKUP]
                    .iter()
                    .any(|i| vm(s, *i).role == Role::Halted)
            }));
            props.push(Property::sometimes(
                PRIMARY_ALONE,
                |_, s: &VmftModelState| vm(s, PRIMARY).role == Role::Live,
            ));
        }
        props.push(Property::eventually(
            EVERY_INPUT_ANSWERED,
            every_input_answered,
        ));
        props
    }
}

pub const OUTPUT_REQUIREMENT: &str =
    "Output Requirement: the client's outputs come from one execution (§2.2)";
pub const OUTPUT_RULE: &str =
    "Output Rule: no output before the backup acknowledges its log entry (§2.2)";
pub const AT_MOST_ONE_LIVE: &str = "at most one VM is live (§2.3)";
pub const REPLAYS_WHOLE_LOG: &str = "the backup replays its whole log before going live (§2.3)";
pub const HOLDS_OUTPUT: &str =
    "the primary holds an output until the backup acknowledges its entry (§2.2)";
pub const FAILOVER_OUTPUT: &str = "a failover produces output (§2.3)";
pub const DRAINS_AT_GO_LIVE: &str = "the backup goes live with log entries still to replay (§2.3)";
pub const REFUSED: &str = "the test-and-set refuses a VM, which halts (§2.3)";
pub const PRIMARY_ALONE: &str = "the primary survives a cut channel and goes live alone (§2.3)";
pub const EVERY_INPUT_ANSWERED: &str = "every input gets an output";

/// The other VM.
pub fn peer(i: usize) -> usize {
    if i == PRIMARY {
        BACKUP
    } else {
        PRIMARY
    }
}

/// VM `i`'s state.
pub fn vm(s: &VmftModelState, i: usize) -> &VmState {
    match &*s.actor_states[i] {
        VmftState::Vm(v) => v,
        _ => panic!("actor {i} is a VM"),
    }
}

pub fn disk(s: &VmftModelState) -> &DiskState {
    match &*s.actor_states[DISK] {
        VmftState::Disk(d) => d,
        _ => panic!("actor {DISK} is the disk"),
    }
}

pub fn client(s: &VmftModelState) -> &ClientState {
    match &*s.actor_states[CLIENT] {
        VmftState::Client(c) => c,
        _ => panic!("actor {CLIENT} is the client"),
    }
}

/// Whether one execution of the deterministic machine (§2.1) — the inputs `xs` in order, with
/// at most `interrupts` timer interrupts among them — produces every output in `received`,
/// and so no input has two different outputs. This is the Output Requirement (§2.2) as the
/// external world sees it: whatever failed over, what it was told is what one VM would have
/// said. The model calls it on its history variable, the TCP tests on the outputs a real client
/// recorded; `xs` must cover every input with an output.
///
/// It walks the outputs in input order. Between two outputs the machine ran the inputs between
/// them, each after some interrupts ([`fewest_interrupts`]); the execution that uses the fewest
/// interrupts in each stretch is the one to try, since the stretches are independent but for
/// the budget. A client sends input `k + 1` only once it has the output of input `k`, so a real
/// client's outputs have no gaps, and then each stretch is one input whose interrupts the
/// outputs determine: the check is linear, whatever the budget.
pub fn one_execution(
    received: &BTreeSet<(InputSeq, Value)>,
    xs: &[Value],
    interrupts: usize,
) -> bool {
    let mut want: BTreeMap<InputSeq, Value> = BTreeMap::new();
    for (seq, value) in received {
        if want.insert(*seq, *value).is_some() {
            return false; // two different outputs for one input
        }
    }
    let (mut acc, mut done, mut left) = (0, 0usize, interrupts as u64);
    for (seq, value) in want {
        let seq = seq as usize;
        if seq <= done || seq > xs.len() {
            return false; // an output for an input that was never sent
        }
        match fewest_interrupts(acc, &xs[done..seq], value, left) {
            Some(used) => left -= used,
            None => return false,
        }
        (acc, done) = (value, seq);
    }
    true
}

/// The multiplicative inverse of 3 modulo 2^64: an input's step (`3 * acc + x`, wrapping) can
/// be undone.
const INVERSE_OF_3: Value = 0xAAAA_AAAA_AAAA_AAAB;

/// The machine's state just before the input `x` that left it at `after`.
pub fn before_input(after: Value, x: Value) -> Value {
    INVERSE_OF_3.wrapping_mul(after.wrapping_sub(x))
}

/// The fewest timer interrupts, at most `left`, that take the machine from `acc` through the
/// inputs `xs` (not empty; interrupts may come before any of them) to `target` just after the
/// last. The interrupts before the last input are determined (`target` fixes the state before
/// it); those before the others are searched, fewest first.
fn fewest_interrupts(acc: Value, xs: &[Value], target: Value, left: u64) -> Option<u64> {
    let (last, firsts) = xs.split_last()?;
    let Some(x) = firsts.first() else {
        let needed = before_input(target, *last).wrapping_sub(acc);
        return (needed <= left).then_some(needed);
    };
    let mut best: Option<u64> = None;
    let mut state = acc;
    for used in 0..=left {
        if best.is_some_and(|b| b <= used) {
            break;
        }
        let after = Event::Input { seq: 0, x: *x }.apply(state);
        if let Some(more) = fewest_interrupts(after, &xs[1..], target, left - used) {
            best = Some(best.map_or(used + more, |b| b.min(used + more)));
        }
        state = Event::Interrupt.apply(state);
    }
    best
}

/// §2.2, the Output Requirement: "if the backup VM ever takes over after a failure of the
/// primary, the backup VM will continue executing in a way that is entirely consistent with
/// all outputs that the primary VM has sent to the external world."
fn output_requirement(m: &VmftModel, s: &VmftModelState) -> bool {
    let cfg = m.cfg();
    one_execution(&s.history.received, &cfg.input_values(), cfg.interrupts)
}

/// §2.3: only the VM that wins the test-and-set goes live; the other halts.
fn at_most_one_live(_: &VmftModel, s: &VmftModelState) -> bool {
    [PRIMARY, BACKUP]
        .iter()
        .filter(|i| vm(s, **i).role == Role::Live)
        .count()
        <= 1
}

/// §2.3: a backup "must continue replaying its execution from the log entries until it has
/// consumed the last log entry" before it goes live: every live VM has executed its whole log.
fn replays_whole_log(_: &VmftModel, s: &VmftModelState) -> bool {
    [PRIMARY, BACKUP].iter().all(|i| {
        let v = vm(s, *i);
        v.role != Role::Live || v.replayed == v.log.len()
    })
}

/// Sometimes: a logging primary has executed an input whose output it has not sent, because
/// the backup has not acknowledged the entry yet.
fn holds_output(_: &VmftModel, s: &VmftModelState) -> bool {
    [PRIMARY, BACKUP].iter().any(|i| {
        let v = vm(s, *i);
        v.role == Role::Primary
            && !s.crashed[*i]
            && v.outputs.iter().any(|(entry, seq, value)| {
                *entry as usize > v.acked && !s.history.sent.contains(&(Id::from(*i), *seq, *value))
            })
    })
}

/// Eventually the client has an output for every input.
fn every_input_answered(m: &VmftModel, s: &VmftModelState) -> bool {
    client(s).outputs.len() == m.cfg().inputs
}

/// The actors' names: the VMs `P0` and `B1` (by the role they start in), the disk `D2`, the
/// client `C3`.
pub fn actor_names(_: &VmftModel) -> Vec<String> {
    vec!["P0".into(), "B1".into(), "D2".into(), "C3".into()]
}

fn event(e: &Event) -> String {
    match e {
        Event::Input { seq, x } => format!("in{seq}={x}"),
        Event::Interrupt => "int".to_string(),
    }
}

/// `s` in the paper's terms: each VM's role, machine state and log (what it has replayed, what
/// the backup has acknowledged, the outputs held), the test-and-set, the client's outputs, and
/// the messages in flight.
pub fn view(m: &VmftModel, s: &VmftModelState) -> String {
    let names = actor_names(m);
    let name = |i: usize| crate::catalog::name_of(&names, i);
    let mut lines = Vec::new();
    for i in [PRIMARY, BACKUP] {
        let v = vm(s, i);
        let log: Vec<String> = v
            .log
            .iter()
            .enumerate()
            .map(|(k, e)| format!("{}:{}", k + 1, event(e)))
            .collect();
        let mut line = format!(
            "{} {:?} acc {} log [{}]",
            name(i),
            v.role,
            v.acc,
            log.join(", ")
        );
        match v.role {
            Role::Primary => {
                line.push_str(&format!(" acked {}", v.acked));
                let held: Vec<String> = v
                    .outputs
                    .iter()
                    .filter(|(entry, seq, value)| {
                        *entry as usize > v.acked
                            && !s.history.sent.contains(&(Id::from(i), *seq, *value))
                    })
                    .map(|(entry, seq, value)| format!("out{seq}={value}@{entry}"))
                    .collect();
                if !held.is_empty() {
                    line.push_str(&format!(" holds [{}]", held.join(", ")));
                }
            }
            _ => line.push_str(&format!(" replayed {}", v.replayed)),
        }
        line.push_str(&format!(" inputs done {}", v.inputs_done));
        if v.asked {
            line.push_str(", asked the test-and-set");
        }
        if v.cut {
            line.push_str(", logging channel cut");
        }
        if s.crashed[i] {
            line.push_str(", CRASHED");
        }
        lines.push(line);
    }
    lines.push(format!(
        "{} test-and-set {}",
        name(DISK),
        match disk(s).owner {
            Some(o) => format!("set by {}", name(usize::from(o))),
            None => "clear".to_string(),
        }
    ));
    let c = client(s);
    let received: Vec<String> = s
        .history
        .received
        .iter()
        .map(|(seq, value)| format!("out{seq}={value}"))
        .collect();
    lines.push(format!(
        "{} {} (primary: {}); received [{}]",
        name(CLIENT),
        if c.next as usize > m.cfg().inputs {
            "done".to_string()
        } else {
            format!("waiting for out{}", c.next)
        },
        name(usize::from(c.primary)),
        received.join(", ")
    ));
    lines.push(crate::catalog::in_flight_line(s, &names, str::to_string));
    lines.join("\n")
}

/// Why `property` fails at `s`, in the paper's terms: the outputs no single execution gives,
/// or the two live VMs.
pub fn explain(m: &VmftModel, s: &VmftModelState, property: &str) -> Option<String> {
    let names = actor_names(m);
    match property {
        OUTPUT_REQUIREMENT => {
            let received = &s.history.received;
            for (seq, value) in received {
                if let Some((_, other)) = received.iter().find(|(q, v)| q == seq && v != value) {
                    return Some(format!(
                        "input {seq} has two different outputs, {value} and {other}"
                    ));
                }
            }
            let cfg = m.cfg();
            let outs: Vec<String> = received
                .iter()
                .map(|(seq, value)| format!("out{seq}={value}"))
                .collect();
            let ins: Vec<String> = cfg
                .input_values()
                .iter()
                .enumerate()
                .map(|(k, x)| format!("in{}={x}", k + 1))
                .collect();
            Some(format!(
                "the client received [{}]: no execution of [{}] in order, with at most {} \
                 interrupt(s) among them, gives them all",
                outs.join(", "),
                ins.join(", "),
                cfg.interrupts
            ))
        }
        AT_MOST_ONE_LIVE => Some(format!(
            "{} and {} are both live (split brain)",
            names[PRIMARY], names[BACKUP]
        )),
        REPLAYS_WHOLE_LOG => [PRIMARY, BACKUP].iter().find_map(|i| {
            let v = vm(s, *i);
            (v.role == Role::Live && v.replayed < v.log.len()).then(|| {
                format!(
                    "{} went live having replayed {} of the {} log entries it received",
                    names[*i],
                    v.replayed,
                    v.log.len()
                )
            })
        }),
        _ => None,
    }
}
