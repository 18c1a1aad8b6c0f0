//! VMware FT: a primary VM and a backup VM on separate hosts run the same deterministic machine,
//! the backup replaying what the primary logs, so that the backup can take over when the
//! primary fails without the outside world noticing.
//!
//! Daniel J. Scales, Mike Nelson and Ganesh Venkitachalam, "The Design of a Practical System for
//! Fault-Tolerant Virtual Machines" (ACM SIGOPS OSR 44(4), 2010), §§2.1-2.3.
//!
//! # The protocol
//! Actors ([`actor`]): two VMs (`P0` starts as the primary, `B1` as the backup), the shared
//! disk's test-and-set server (`D2`) and a client (`C3`, the external world).
//!
//! - **Deterministic replay** (§2.1). The VM is a deterministic machine whose state depends on
//!   the order of its inputs and of its non-deterministic events: an accumulator, with
//!   `acc = 3 * acc + x` for input `x` and `acc += 1` for a timer interrupt. Where an interrupt
//!   falls among the inputs changes every later output. The primary executes each event as it
//!   comes and records it on the logging channel ([`VmftMsg::Log`], numbered entries); the
//!   backup receives the entries in order, acknowledges each as it receives it
//!   ([`VmftMsg::LogAck`]), and replays them later (it lags), taking the interrupts exactly
//!   where the log says. The backup takes no input and no interrupt of its own, and its outputs
//!   are dropped.
//! - **The FT Protocol** (§2.2). *Output Requirement*: if the backup takes over after a failure
//!   of the primary, it continues in a way entirely consistent with every output the primary
//!   sent. *Output Rule*: the primary may not send an output until the backup has received and
//!   acknowledged the log entry of the operation that produced it. The primary keeps executing
//!   meanwhile; only the output waits. The backup that takes over cannot know whether the
//!   primary sent its last outputs, so it sends them again: a copy is identical, and TCP drops
//!   it (§2.2: FT does not promise an output exactly once across a failover, only outputs
//!   consistent with one execution).
//! - **Detecting and responding to failure** (§2.3). Each VM watches for heartbeats and logging
//!   traffic from the other; a timeout ([`VmftTimer::PeerTimeout`], non-deterministic) makes it
//!   suspect its peer. To go live a VM executes an atomic test-and-set on the shared storage
//!   ([`VmftMsg::TestAndSet`]): the first to set it goes live, every other VM is refused and
//!   halts. A backup that goes live first replays every log entry it has received, then
//!   executes alone, sends the outputs of the inputs it executed, and advertises the primary's
//!   address ([`VmftMsg::GoneLive`]): the client sends its unanswered input there. A primary that
//!   goes live (its backup is silent) leaves logging mode and sends the outputs it held.
//!
//! # Bounds and faults
//! `--inputs` (default 2) client inputs, sent one after another to the VM the client takes for
//! the primary; `--interrupts` (default 1) timer interrupts in all; and one fault (`--fault`):
//! the primary crashes (fail-stop: it stays down, messages to it are lost), or the logging
//! channel between the VMs is cut for good while both VMs keep running (the case that needs the
//! test-and-set: each side sees the other fall silent). The cut is the primary's model-only
//! `Partition` timer: from then on it sends nothing to the backup and ignores what the backup
//! sends, which covers every way messages on a cut channel can be lost. Heartbeats are not
//! messages here: a VM's timeout fires only once its peer has crashed or the channel is cut
//! (with no fault the heartbeats keep it from firing). Links are FIFO (`Network::new_ordered`),
//! like the TCP connections of the logging channel.
//!
//! # Properties
//! - always *Output Requirement* (§2.2): the outputs the client received are those of one
//!   execution of the machine (the inputs in order, with at most the interrupt budget among
//!   them): no input has two different outputs, and no output assumes an input or interrupt the
//!   execution that continued does not have; sometimes *a failover produces output* (the
//!   client receives an output from the VM that started as the backup);
//! - always *Output Rule* (§2.2), a history variable checked on each output a logging primary
//!   sends; sometimes *the primary holds an output until the backup acknowledges its entry*;
//! - always *at most one VM is live* (§2.3); with cuts, sometimes *the test-and-set refuses a
//!   VM, which halts* and *the primary survives a cut channel and goes live alone*;
//! - always *the backup replays its whole log before going live* (§2.3); sometimes *the backup
//!   goes live with log entries still to replay* (and replays them in that step);
//! - eventually *every input gets an output*, under weak fairness (`fairness()`): deliveries,
//!   replays, interrupts and timeouts are fair; the crash and the cut owe nothing. Every path
//!   is finite (inputs, interrupts and the fault are bounded, and a timer that fires past its
//!   budget is not explored), so the workbench's engine decides it exactly.
//!
//! # Seeded bugs
//! - `output-before-ack`: the primary sends an output as soon as it executes the input. It
//!   crashes before the backup has the entry; the backup goes live without that input, and the
//!   client's next output assumes an execution without the input whose output it already has
//!   (the Output Rule, and with it the Output Requirement).
//! - `go-live-without-test-and-set`: a VM that suspects its peer goes live at once. When only
//!   the logging channel is cut both go live: split brain (*at most one VM is live*). The
//!   primary has executed input 1 and answered it; the backup never got the entry, takes over
//!   the client and answers input 2 from an execution without input 1 (*Output Requirement*).
//! - `go-live-before-drain`: the backup goes live without replaying the entries it has
//!   received and acknowledged (*the backup replays its whole log*). The primary may already
//!   have sent their outputs, and the new primary's next output then assumes an execution
//!   without them (*Output Requirement*).
//! - `no-reissue-output`: the backup goes live without sending the outputs of the inputs it
//!   replayed. When the primary crashed after the backup acknowledged an input but before it
//!   sent the output, the client's copy of the input is a duplicate to the new primary, and the
//!   output never comes (§2.2: the backup cannot know whether the output was sent).
//!
//! # Over TCP
//! The same actors run as processes (`impls::vmft`). Their configuration switches on what only
//! a real run needs, all off in the model: real durations ([`VmTiming`]) under which the peer
//! timeout is set again by every message of the logging channel from the peer (the regular
//! interrupts' entries and their acknowledgements are the heartbeats, §2.3); the backup's
//! periodic replay; the primary's resending of unacknowledged entries (a real connection drops
//! messages while it is not up); a primary that goes live advertising its address; a VM that
//! runs alone, unreplicated (`alone`); and a client driven one input at a time that keeps every
//! output, for [`model::one_execution`], the Output Requirement's check that the model uses.
//!
//! Not modelled: the backup's failure (the primary would go live alone: the cut covers it, when
//! the primary wins the test-and-set), starting a new backup after a failover (§2.3), the
//! logging channel's flow control and the backup's lag bound (§3.3), disk IO and its races
//! (§§2.2, 3.4: the model's only device is the network), and more than one client.

pub mod actor;
pub mod model;

pub use actor::{
    ClientCfg, ClientState, DiskState, Event, InputSeq, LogSeq, Role, Value, VmCfg, VmState,
    VmTiming, VmftActor, VmftBug, VmftMsg, VmftState, VmftTimer,
};
pub use model::{Fault, VmftCfg, VmftModel};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

/// The `vmft` entry of the checker's registry.
pub struct VmftSpec;

impl Spec for VmftSpec {
    type Model = VmftModel;
    type State = model::VmftModelState;
    type Action = model::VmftAction;

    const NAME: &'static str = "vmft";
    const PAPER: &'static str = "Scales, Nelson & Venkitachalam, The Design of a Practical System for Fault-Tolerant Virtual Machines (VMware FT, 2010) §§2.1-2.3";
    const SUMMARY: &'static str = "VM-FT: deterministic replay over a logging channel, the Output Rule, failover by test-and-set on shared storage";
    const PARAMS: &'static [Param] = &[
        Param::int(
            "inputs",
            "client inputs, sent one after another",
            2,
            1,
            3,
        ),
        Param::int(
            "interrupts",
            "timer interrupts in all (non-deterministic events the primary logs)",
            1,
            0,
            2,
        ),
        Param {
            name: "fault",
            help: "the one fault: either (a primary crash or a cut logging channel), crash, partition (the logging channel cut, both VMs running), or none",
            kind: ParamKind::Choice {
                choices: Fault::NAMES,
            },
        },
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: VmftBug::OutputBeforeAck.name(),
            breaks: &[
                model::OUTPUT_REQUIREMENT,
                model::OUTPUT_RULE,
                model::HOLDS_OUTPUT,
            ],
            help: "the primary sends an output before the backup acknowledges its log entry",
            params: &[("fault", "crash")],
        },
        Bug {
            name: VmftBug::GoLiveWithoutTestAndSet.name(),
            breaks: &[
                model::OUTPUT_REQUIREMENT,
                model::AT_MOST_ONE_LIVE,
                model::REFUSED,
            ],
            help: "a VM that suspects its peer goes live without the test-and-set: split brain",
            params: &[("fault", "partition")],
        },
        Bug {
            name: VmftBug::GoLiveBeforeDrain.name(),
            breaks: &[
                model::OUTPUT_REQUIREMENT,
                model::REPLAYS_WHOLE_LOG,
                model::DRAINS_AT_GO_LIVE,
            ],
            help: "the backup goes live without replaying the log entries it has received",
            params: &[("fault", "crash")],
        },
        Bug {
            name: VmftBug::NoReissueOutput.name(),
            breaks: &[model::EVERY_INPUT_ANSWERED],
            help: "the new primary does not resend the outputs of the inputs it replayed",
            params: &[("fault", "crash")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> VmftModel {
        let bug = bug.map(|b| {
            VmftBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not a VmftBug"))
        });
        VmftCfg {
            inputs: params.int("inputs") as usize,
            interrupts: params.int("interrupts") as usize,
            fault: Fault::from_name(params.choice("fault"))
                .expect("validated against Fault::NAMES"),
            bug,
        }
        .into_model()
    }

    /// Deliveries and timers are fair, but the cut (the primary's `Partition` timer) is the
    /// environment's choice, like the crash: no run owes it.
    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(|_, a| match a {
            stateright::actor::ActorModelAction::Timeout(_, VmftTimer::Partition) => None,
            a => crate::catalog::actor_fair_class(a),
        })
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::VmftModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::VmftModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &VmftModel, s: &model::VmftModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(m: &VmftModel) -> Option<Vec<String>> {
        Some(model::actor_names(m))
    }

    fn explain(m: &VmftModel, s: &model::VmftModelState, property: &str) -> Option<String> {
        model::explain(m, s, property)
    }
}

#[cfg(test)]
mod tests;
