//! The two VMs, the shared disk's test-and-set and the client as stateright actors. Each takes
//! its peers from its configuration, never from indices.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{model_timeout, Actor, Id, Out};

/// The client's number for an input, from 1; inputs are sent one after another.
pub type InputSeq = u64;

/// A log entry's number on the logging channel, from 1 (§2.2).
pub type LogSeq = u64;

/// The deterministic machine's accumulator, an input's value, an output.
pub type Value = u64;

/// What the deterministic machine executes (§2.1): a client's input, or a timer interrupt.
/// Where an interrupt falls among the inputs changes the state: the primary records it, and the
/// backup replays it at the same point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Event {
    /// Client input `seq`, carrying the value `x`; the VM answers with its new accumulator.
    Input { seq: InputSeq, x: Value },
    /// A timer interrupt, taken at some point of the execution: non-deterministic.
    Interrupt,
}

impl Event {
    /// The machine's step: an input multiplies by 3 and adds `x`, an interrupt adds 1, so the
    /// state depends on where the interrupts fall among the inputs.
    pub fn apply(self, acc: Value) -> Value {
        match self {
            Event::Input { x, .. } => acc.wrapping_mul(3).wrapping_add(x),
            Event::Interrupt => acc.wrapping_add(1),
        }
    }
}

/// The messages of VM-FT.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VmftMsg {
    /// Client to the VM it takes for the primary: input `seq` (a network packet in, §2.2).
    Input { seq: InputSeq, x: Value },
    /// A VM to the client: the output of input `seq` (a network packet out). After a failover
    /// the same output may come twice, from both VMs; TCP drops the copy (§2.2).
    Output { seq: InputSeq, value: Value },
    /// Primary to backup on the logging channel: entry `seq` is `event` (§2.1, §2.2).
    Log { seq: LogSeq, event: Event },
    /// Backup to primary: it has received (logged) entry `seq` and every one before (§2.2).
    LogAck { seq: LogSeq },
    /// A VM that suspects its peer to the shared disk: the atomic test-and-set (§2.3).
    TestAndSet,
    /// The disk's answer: `won` if this VM set it first (it may go live), else the other VM
    /// has gone live and this one must halt.
    TestAndSetResult { won: bool },
    /// The new primary to the client: it has gone live (§2.3: it advertises the primary's MAC
    /// address, so packets now reach it). The client sends its unanswered input again.
    GoneLive,
    /// Over TCP only: a driver to the client actor (the client envelope's `Invoke`): send input
    /// `seq` carrying `x`.
    Invoke { seq: InputSeq, x: Value },
    /// Over TCP only: the client actor to its driver: input `seq`'s output is `value`.
    Return { seq: InputSeq, value: Value },
}

/// Timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VmftTimer {
    /// A timer interrupt at the executing VM (non-deterministic, within a budget).
    Interrupt,
    /// The backup replays the entries it has received but not executed (it lags, §2.2).
    Replay,
    /// Nothing heard from the peer for too long (heartbeats and logging traffic, §2.3): in the
    /// model it fires only once the peer has crashed or the logging channel is cut.
    PeerTimeout,
    /// Model checking only: the logging channel between the VMs is cut at this VM's end.
    Partition,
    /// Over TCP only: something unanswered for a while is sent again. At the client: the input
    /// with no output yet (to the next VM). At the primary: the log entries the backup has not
    /// acknowledged, when no acknowledgement came since the last tick (a connection that was
    /// not up yet, or a full send queue, drops messages; the model's channel loses none).
    Retry,
}

crate::seeded_bugs! {
    /// The seeded bugs (pitfalls the paper warns about).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum VmftBug {
        /// The primary sends an output as soon as it executes the input, before the backup
        /// has acknowledged the log entry (§2.2, the Output Rule).
        OutputBeforeAck = "output-before-ack",
        /// A VM that suspects its peer goes live without the test-and-set on shared storage
        /// (§2.3): split brain when only the logging channel is cut.
        GoLiveWithoutTestAndSet = "go-live-without-test-and-set",
        /// The backup goes live without first replaying the log entries it has received
        /// (§2.3: it must consume the last log entry first).
        GoLiveBeforeDrain = "go-live-before-drain",
        /// The backup goes live without sending the outputs of the inputs it executed from the
        /// log: it assumes the old primary sent them all (§2.2: it cannot know).
        NoReissueOutput = "no-reissue-output",
    }
}

/// A VM's role (§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Executing, recording every event on the logging channel, holding each output until the
    /// backup acknowledges its entry.
    Primary,
    /// Receiving and acknowledging log entries, replaying them; its outputs are dropped.
    Backup,
    /// Gone live after winning the test-and-set: executing alone, no logging, outputs at once.
    Live,
    /// Lost the test-and-set: the other VM is live, so this one halts ("commits suicide").
    Halted,
}

/// A VM's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VmCfg {
    /// The other VM, at the far end of the logging channel.
    pub peer: Id,
    /// The shared storage's test-and-set server.
    pub disk: Id,
    /// The external world: where outputs go.
    pub client: Id,
    /// Whether this VM starts as the primary.
    pub primary: bool,
    /// Model checking only: the logging channel may be cut at this VM (its `Partition` timer).
    pub partition: bool,
    pub bug: Option<VmftBug>,
    /// Real durations, over TCP; `None` in the model (`model_timeout()`, and the harness lets
    /// the peer timeout fire only after a fault). With them the peer timeout is a real failure
    /// detector: it is set again on every message of the logging channel from the peer (log
    /// entries at the backup, acknowledgements at the primary), which the regular timer
    /// interrupts keep flowing (§2.3), so it fires only when the peer falls silent.
    pub timing: Option<VmTiming>,
    /// Over TCP only, for comparison: the VM runs alone from the start, live, with no backup
    /// and no logging (the unreplicated machine).
    pub alone: bool,
}

/// A VM's real durations over TCP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VmTiming {
    /// Between two timer interrupts of the executing VM: their log entries are the logging
    /// channel's regular traffic (§2.3).
    pub interrupt: Range<Duration>,
    /// Between two replays of the backup: it lags behind the primary by up to this much.
    pub replay: Range<Duration>,
    /// How long a VM hears nothing on the logging channel before it suspects its peer. The
    /// first wait, from the start, is `STARTUP_GRACE` times longer: the other VM may not be
    /// up yet.
    pub peer_timeout: Range<Duration>,
    /// How often the primary checks that its entries are being acknowledged, and sends the
    /// unacknowledged ones again if not.
    pub resend: Range<Duration>,
}

/// Over TCP, how many peer timeouts a VM waits for its peer at the start.
pub const STARTUP_GRACE: u32 = 5;

/// A VM's state: the hypervisor's (role, log) and the deterministic machine's (`acc`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VmState {
    pub role: Role,
    /// The deterministic machine's state.
    pub acc: Value,
    /// The logging channel's entries: sent (primary) or received (backup). Entry `k` is
    /// `log[k - 1]`. A live VM logs nothing more.
    pub log: Vec<Event>,
    /// How many entries of `log` this VM has executed. Invariant: `replayed <= log.len()`; a
    /// primary executes as it logs (`replayed == log.len()`), a backup lags.
    pub replayed: usize,
    /// Primary: the entries the backup has acknowledged. Invariant: `acked <= log.len()`.
    pub acked: usize,
    /// The highest input executed (inputs arrive in order): one at or below it is a copy.
    pub inputs_done: InputSeq,
    /// The output of each input executed from the log: (entry, input, value). A primary sends
    /// one when the backup acknowledges its entry (the Output Rule); a backup that goes live
    /// sends them all (it cannot know which the primary sent).
    pub outputs: Vec<(LogSeq, InputSeq, Value)>,
    /// Asked the disk's test-and-set, waiting for the answer.
    pub asked: bool,
    /// Model checking only: the logging channel is cut at this VM; it sends nothing to its peer
    /// and ignores what comes from it.
    pub cut: bool,
    /// Over TCP only, at the primary: `acked` at the last `Retry` tick.
    pub acked_at_tick: usize,
}

/// The shared disk's test-and-set (§2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiskState {
    /// The VM that set it first (it went live); `None`: not set.
    pub owner: Option<Id>,
}

/// A client's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    /// The VM it first takes for the primary.
    pub primary: Id,
    /// The values of its inputs, sent one after another (input `k` is `inputs[k - 1]`).
    pub inputs: Vec<Value>,
    /// Over TCP: the driver that hands it inputs ([`VmftMsg::Invoke`]) and hears their outputs
    /// ([`VmftMsg::Return`]); `None` in the model, where it sends `inputs`.
    pub driver: Option<Id>,
    /// Over TCP: the VMs, and how long an input may go unanswered before the client sends it
    /// to the next of them (a new client does not know which VM went live).
    pub retry: Option<(Vec<Id>, Range<Duration>)>,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The VM it takes for the primary (the last to announce it went live).
    pub primary: Id,
    /// The input in flight, from 1; `inputs.len() + 1` when all are answered.
    pub next: InputSeq,
    /// The first output received for each input: `outputs[k - 1]` answers input `k`. A
    /// driven client (over TCP) keeps `received` instead.
    pub outputs: Vec<Value>,
    /// A driven client: the value of the input in flight, `None` when it has its output.
    pub pending: Option<Value>,
    /// A driven client: every output received, copies and late ones included, in order
    /// (what the model's history variable records), with the VM that sent it.
    pub received: Vec<(InputSeq, Value, Id)>,
}

/// A VM, the shared disk, or the client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VmftActor {
    Vm(VmCfg),
    Disk,
    Client(ClientCfg),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VmftState {
    Vm(VmState),
    Disk(DiskState),
    Client(ClientState),
}

impl VmState {
    /// A VM that has executed nothing.
    pub fn new(role: Role) -> Self {
        VmState {
            role,
            acc: 0,
            log: Vec::new(),
            replayed: 0,
            acked: 0,
            inputs_done: 0,
            outputs: Vec::new(),
            asked: false,
            cut: false,
            acked_at_tick: 0,
        }
    }

    /// Whether it executes inputs and takes interrupts (primary or live).
    pub fn executing(&self) -> bool {
        matches!(self.role, Role::Primary | Role::Live)
    }
}

impl VmCfg {
    /// A timer's duration: the real one over TCP, `model_timeout()` in the model.
    fn after(&self, real: fn(&VmTiming) -> &Range<Duration>) -> Range<Duration> {
        self.timing
            .as_ref()
            .map_or_else(model_timeout, |t| real(t).clone())
    }

    fn interrupt_after(&self) -> Range<Duration> {
        self.after(|t| &t.interrupt)
    }

    fn peer_timeout_after(&self) -> Range<Duration> {
        self.after(|t| &t.peer_timeout)
    }

    /// Over TCP, logging traffic from the peer: it is alive, so the timeout starts again.
    fn heard_from_peer(&self, o: &mut Out<VmftActor>) {
        if self.timing.is_some() {
            o.set_timer(VmftTimer::PeerTimeout, self.peer_timeout_after());
        }
    }

    pub fn start(&self, o: &mut Out<VmftActor>) -> VmState {
        if self.alone {
            o.set_timer(VmftTimer::Interrupt, self.interrupt_after());
            return VmState::new(Role::Live);
        }
        match &self.timing {
            None => o.set_timer(VmftTimer::PeerTimeout, model_timeout()),
            Some(t) => {
                let grace =
                    t.peer_timeout.start * STARTUP_GRACE..t.peer_timeout.end * STARTUP_GRACE;
                o.set_timer(VmftTimer::PeerTimeout, grace);
                if self.primary {
                    o.set_timer(VmftTimer::Retry, t.resend.clone());
                } else {
                    // The backup replays on a period of its own (see `VmftTimer::Replay`).
                    o.set_timer(VmftTimer::Replay, t.replay.clone());
                }
            }
        }
        if self.primary {
            o.set_timer(VmftTimer::Interrupt, self.interrupt_after());
            if self.partition {
                o.set_timer(VmftTimer::Partition, model_timeout());
            }
            VmState::new(Role::Primary)
        } else {
            VmState::new(Role::Backup)
        }
    }

    /// Sends on the logging channel, unless it is cut.
    fn send_peer(&self, s: &VmState, msg: VmftMsg, o: &mut Out<VmftActor>) {
        if !s.cut {
            o.send(self.peer, msg);
        }
    }

    fn output(&self, seq: InputSeq, value: Value, o: &mut Out<VmftActor>) {
        o.send(self.client, VmftMsg::Output { seq, value });
    }

    /// The primary executes `event` and records it on the logging channel (§2.2); the output
    /// of an input waits for the backup's acknowledgement (the Output Rule).
    fn execute_and_log(&self, s: &mut VmState, event: Event, o: &mut Out<VmftActor>) {
        s.acc = event.apply(s.acc);
        s.log.push(event);
        s.replayed = s.log.len();
        let entry = s.log.len() as LogSeq;
        self.send_peer(s, VmftMsg::Log { seq: entry, event }, o);
        if let Event::Input { seq, .. } = event {
            s.inputs_done = seq;
            s.outputs.push((entry, seq, s.acc));
            if self.bug == Some(VmftBug::OutputBeforeAck) {
                self.output(seq, s.acc, o);
            }
        }
    }

    /// A live VM executes `event` alone: no log, its output at once.
    fn execute_live(&self, s: &mut VmState, event: Event, o: &mut Out<VmftActor>) {
        s.acc = event.apply(s.acc);
        if let Event::Input { seq, .. } = event {
            s.inputs_done = seq;
            self.output(seq, s.acc, o);
        }
    }

    /// The backup executes every entry it has received and not yet executed, in log order
    /// (§2.1: deterministic replay); the outputs are computed, not sent.
    fn replay(&self, s: &mut VmState) {
        while s.replayed < s.log.len() {
            let event = s.log[s.replayed];
            s.acc = event.apply(s.acc);
            s.replayed += 1;
            if let Event::Input { seq, .. } = event {
                s.inputs_done = seq;
                s.outputs.push((s.replayed as LogSeq, seq, s.acc));
            }
        }
    }

    /// Sends the held outputs whose entries are among the first `upto`.
    fn release(&self, s: &VmState, upto: usize, o: &mut Out<VmftActor>) {
        if self.bug == Some(VmftBug::OutputBeforeAck) {
            return; // already sent
        }
        // `outputs` is in entry order: skip those already released without scanning them.
        let from = s
            .outputs
            .partition_point(|(entry, _, _)| *entry as usize <= s.acked);
        for (entry, seq, value) in &s.outputs[from..] {
            if *entry as usize > upto {
                break;
            }
            self.output(*seq, *value, o);
        }
    }

    /// Goes live (§2.3), having won the test-and-set.
    fn go_live(&self, s: &mut VmState, o: &mut Out<VmftActor>) {
        s.asked = false;
        match s.role {
            // The primary leaves logging mode: with no backup, nothing to wait for.
            // Over TCP it also advertises its address: the external world may have moved to
            // the other VM (the model's client never has when this VM wins the test-and-set).
            Role::Primary => {
                self.release(s, s.log.len(), o);
                s.acked = s.log.len();
                s.role = Role::Live;
                if self.timing.is_some() {
                    o.send(self.client, VmftMsg::GoneLive);
                }
            }
            // The backup first consumes every entry it has received (1), then executes alone
            // (2). It cannot know which outputs the primary sent before it failed, so it sends
            // them all (3): a copy the client already has is identical, and TCP drops it. Then
            // it takes over the primary's address (4).
            Role::Backup => {
                if self.bug != Some(VmftBug::GoLiveBeforeDrain) {
                    self.replay(s); // (1)
                }
                s.role = Role::Live; // (2)
                o.cancel_timer(VmftTimer::Replay);
                o.set_timer(VmftTimer::Interrupt, self.interrupt_after());
                if self.bug != Some(VmftBug::NoReissueOutput) {
                    for (_, seq, value) in &s.outputs {
                        self.output(*seq, *value, o); // (3)
                    }
                }
                o.send(self.client, VmftMsg::GoneLive); // (4)
            }
            Role::Live | Role::Halted => {}
        }
    }

    /// Lost the test-and-set: the other VM is live.
    fn halt(&self, s: &mut VmState, o: &mut Out<VmftActor>) {
        s.asked = false;
        s.role = Role::Halted;
        for t in [
            VmftTimer::Interrupt,
            VmftTimer::Replay,
            VmftTimer::PeerTimeout,
            VmftTimer::Partition,
        ] {
            o.cancel_timer(t);
        }
    }

    pub fn on_msg(&self, s: &mut VmState, src: Id, msg: VmftMsg, o: &mut Out<VmftActor>) {
        if s.role == Role::Halted || (s.cut && src == self.peer) {
            return;
        }
        match msg {
            VmftMsg::Input { seq, x } if seq > s.inputs_done => match s.role {
                Role::Primary => self.execute_and_log(s, Event::Input { seq, x }, o),
                Role::Live => self.execute_live(s, Event::Input { seq, x }, o),
                // A backup's network input comes only from the log.
                Role::Backup | Role::Halted => {}
            },
            // The backup takes the entries in order (the channel is FIFO), acknowledges each
            // as it receives it, and replays later (§2.2).
            VmftMsg::Log { seq, event }
                if s.role == Role::Backup && seq as usize == s.log.len() + 1 =>
            {
                s.log.push(event);
                o.send(src, VmftMsg::LogAck { seq });
                if self.timing.is_none() {
                    o.set_timer(VmftTimer::Replay, model_timeout());
                }
                self.heard_from_peer(o);
            }
            // Over TCP, an entry sent again that the backup already has: it acknowledges what
            // it has (one sent again after a loss, past what it has, is ignored until the
            // primary sends the missing ones).
            VmftMsg::Log { seq, .. }
                if self.timing.is_some()
                    && s.role == Role::Backup
                    && seq as usize <= s.log.len() =>
            {
                o.send(
                    src,
                    VmftMsg::LogAck {
                        seq: s.log.len() as LogSeq,
                    },
                );
                self.heard_from_peer(o);
            }
            VmftMsg::LogAck { seq } if s.role == Role::Primary && seq as usize > s.acked => {
                self.release(s, seq as usize, o);
                s.acked = seq as usize;
                self.heard_from_peer(o);
            }
            // Over TCP, any traffic on the channel shows the peer alive: an entry past a gap
            // (the primary sends the missing ones again), an acknowledgement already had.
            VmftMsg::Log { .. } if self.timing.is_some() && s.role == Role::Backup => {
                self.heard_from_peer(o);
            }
            VmftMsg::LogAck { .. } if self.timing.is_some() && s.role == Role::Primary => {
                self.heard_from_peer(o);
            }
            VmftMsg::TestAndSetResult { won } if s.asked && src == self.disk => {
                if won {
                    self.go_live(s, o);
                } else {
                    self.halt(s, o);
                }
            }
            _ => {}
        }
    }

    pub fn on_timeout(&self, s: &mut VmState, timer: VmftTimer, o: &mut Out<VmftActor>) {
        match timer {
            VmftTimer::Interrupt if s.executing() => {
                if s.role == Role::Primary {
                    self.execute_and_log(s, Event::Interrupt, o);
                } else {
                    self.execute_live(s, Event::Interrupt, o);
                }
                o.set_timer(VmftTimer::Interrupt, self.interrupt_after());
            }
            VmftTimer::Replay if s.role == Role::Backup => {
                self.replay(s);
                if let Some(t) = &self.timing {
                    o.set_timer(VmftTimer::Replay, t.replay.clone());
                }
            }
            // The peer is silent: ask the shared disk whether this VM may go live (§2.3).
            VmftTimer::PeerTimeout if matches!(s.role, Role::Primary | Role::Backup) => {
                if self.bug == Some(VmftBug::GoLiveWithoutTestAndSet) {
                    self.go_live(s, o);
                } else {
                    s.asked = true;
                    o.send(self.disk, VmftMsg::TestAndSet);
                    // Over TCP, ask again if no answer comes (the disk answers its owner the
                    // same every time).
                    if self.timing.is_some() {
                        o.set_timer(VmftTimer::PeerTimeout, self.peer_timeout_after());
                    }
                }
            }
            VmftTimer::Partition => s.cut = true,
            VmftTimer::Retry if s.role == Role::Primary => {
                if s.acked < s.log.len() && s.acked == s.acked_at_tick {
                    for (k, event) in s.log.iter().enumerate().skip(s.acked) {
                        let seq = k as LogSeq + 1;
                        self.send_peer(s, VmftMsg::Log { seq, event: *event }, o);
                    }
                }
                s.acked_at_tick = s.acked;
                if let Some(t) = &self.timing {
                    o.set_timer(VmftTimer::Retry, t.resend.clone());
                }
            }
            _ => {}
        }
    }
}

impl ClientCfg {
    fn send(&self, s: &ClientState, o: &mut Out<VmftActor>) {
        let x = match self.driver {
            Some(_) => s.pending,
            None => self.inputs.get(s.next as usize - 1).copied(),
        };
        if let Some(x) = x {
            o.send(s.primary, VmftMsg::Input { seq: s.next, x });
            if let Some((_, after)) = &self.retry {
                o.set_timer(VmftTimer::Retry, after.clone());
            }
        }
    }

    pub fn start(&self, o: &mut Out<VmftActor>) -> ClientState {
        let s = ClientState {
            primary: self.primary,
            next: 1,
            outputs: Vec::new(),
            pending: None,
            received: Vec::new(),
        };
        self.send(&s, o);
        s
    }

    pub fn on_msg(&self, s: &mut ClientState, src: Id, msg: VmftMsg, o: &mut Out<VmftActor>) {
        if let Some(driver) = self.driver {
            return self.on_driven(driver, s, src, msg, o);
        }
        match msg {
            // The answer to the input in flight: take it, send the next. A copy of an output
            // already taken is dropped (the model's history keeps every output received).
            VmftMsg::Output { seq, value } if seq == s.next => {
                s.outputs.push(value);
                s.next += 1;
                self.send(s, o);
            }
            // The primary's address moved: the input in flight goes to the new primary.
            VmftMsg::GoneLive => {
                s.primary = src;
                self.send(s, o);
            }
            _ => {}
        }
    }

    /// Over TCP: the driver hands it one input at a time, and hears its first output. Every
    /// output that comes is kept in `received`, for the Output Requirement's check.
    fn on_driven(
        &self,
        driver: Id,
        s: &mut ClientState,
        src: Id,
        msg: VmftMsg,
        o: &mut Out<VmftActor>,
    ) {
        match msg {
            VmftMsg::Invoke { seq, x } if src == driver => {
                s.next = seq;
                s.pending = Some(x);
                self.send(s, o);
            }
            VmftMsg::Output { seq, value } => {
                s.received.push((seq, value, src));
                if seq == s.next && s.pending.is_some() {
                    s.pending = None;
                    o.cancel_timer(VmftTimer::Retry);
                    o.send(driver, VmftMsg::Return { seq, value });
                }
            }
            VmftMsg::GoneLive => {
                s.primary = src;
                self.send(s, o);
            }
            _ => {}
        }
    }

    /// Over TCP: no output for a while; the input goes to the next VM (one that is not live
    /// ignores it).
    pub fn on_timeout(&self, s: &mut ClientState, timer: VmftTimer, o: &mut Out<VmftActor>) {
        if let (VmftTimer::Retry, Some((vms, _))) = (timer, &self.retry) {
            if s.pending.is_some() && !vms.is_empty() {
                let at = vms
                    .iter()
                    .position(|v| *v == s.primary)
                    .map_or(0, |k| k + 1);
                s.primary = vms[at % vms.len()];
                self.send(s, o);
            }
        }
    }
}

impl VmftActor {
    /// Whether it runs over TCP (real durations, a driver), where steps change the state in
    /// place.
    fn in_place(&self) -> bool {
        match self {
            VmftActor::Vm(cfg) => cfg.timing.is_some() || cfg.alone,
            VmftActor::Client(cfg) => cfg.driver.is_some(),
            VmftActor::Disk => false,
        }
    }
}

impl Actor for VmftActor {
    type Msg = VmftMsg;
    type Timer = VmftTimer;
    type State = VmftState;
    type Storage = ();
    type Random = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> VmftState {
        match self {
            VmftActor::Vm(cfg) => VmftState::Vm(cfg.start(o)),
            VmftActor::Disk => VmftState::Disk(DiskState { owner: None }),
            VmftActor::Client(cfg) => VmftState::Client(cfg.start(o)),
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<VmftState>,
        src: Id,
        msg: VmftMsg,
        o: &mut Out<Self>,
    ) {
        // Over TCP a state that grows with the run (the log) is stepped in place, not cloned
        // and compared as the model does (a no-op step must leave the model's state borrowed).
        if self.in_place() {
            match (self, state.to_mut()) {
                (VmftActor::Vm(cfg), VmftState::Vm(s)) => cfg.on_msg(s, src, msg, o),
                (VmftActor::Client(cfg), VmftState::Client(s)) => cfg.on_msg(s, src, msg, o),
                _ => {}
            }
            return;
        }
        let next = match (self, &**state) {
            (VmftActor::Vm(cfg), VmftState::Vm(s)) => {
                let mut next = s.clone();
                cfg.on_msg(&mut next, src, msg, o);
                (next != *s).then_some(VmftState::Vm(next))
            }
            // The atomic test-and-set: the first VM to ask sets it and may go live; every
            // other is refused (§2.3). Asked again by its owner, it answers the same.
            (VmftActor::Disk, VmftState::Disk(d)) => match msg {
                VmftMsg::TestAndSet => {
                    let owner = d.owner.unwrap_or(src);
                    o.send(src, VmftMsg::TestAndSetResult { won: owner == src });
                    (d.owner.is_none()).then_some(VmftState::Disk(DiskState { owner: Some(owner) }))
                }
                _ => None,
            },
            (VmftActor::Client(cfg), VmftState::Client(s)) => {
                let mut next = s.clone();
                cfg.on_msg(&mut next, src, msg, o);
                (next != *s).then_some(VmftState::Client(next))
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<VmftState>,
        timer: &VmftTimer,
        o: &mut Out<Self>,
    ) {
        if self.in_place() {
            match (self, state.to_mut()) {
                (VmftActor::Vm(cfg), VmftState::Vm(s)) => cfg.on_timeout(s, *timer, o),
                (VmftActor::Client(cfg), VmftState::Client(s)) => cfg.on_timeout(s, *timer, o),
                _ => {}
            }
            return;
        }
        match (self, &**state) {
            (VmftActor::Vm(cfg), VmftState::Vm(s)) => {
                let mut next = s.clone();
                cfg.on_timeout(&mut next, *timer, o);
                if next != *s {
                    *state = Cow::Owned(VmftState::Vm(next));
                }
            }
            (VmftActor::Client(cfg), VmftState::Client(s)) => {
                let mut next = s.clone();
                cfg.on_timeout(&mut next, *timer, o);
                if next != *s {
                    *state = Cow::Owned(VmftState::Client(next));
                }
            }
            _ => {}
        }
    }
}
