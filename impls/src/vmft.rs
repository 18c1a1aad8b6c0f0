//! VMware FT over TCP: the model's own [`VmftActor`] VMs, test-and-set server and client,
//! described to the runtime by [`VmftService`] (`vmft`).
//!
//! - The cluster file's nodes, in id order, are the VM that starts as the primary, the VM that
//!   starts as the backup, and the shared disk's test-and-set server. A cluster file with one
//!   node runs the primary alone, live from the start, with no backup and no logging: the same
//!   machine unreplicated, for comparison (`bench/vmft.sh`).
//! - The actors' model-only timers (the cut) are off; [`VmTiming`] gives them real durations.
//!   The machine takes a timer interrupt every [`Tuning::heartbeat`], and its log entry keeps the
//!   logging channel busy; each VM sets its peer timeout ([`Tuning::timeout`]) again on every
//!   message of the channel from its peer (entries at the backup, acknowledgements at the
//!   primary), so a VM that hears nothing for that long, because its peer died, is paused or is
//!   cut off, asks the test-and-set (§2.3: "the logging traffic should be regular and never
//!   stop for a functioning guest OS"). The backup replays what it has received every
//!   heartbeat (it lags), and replays the rest when it goes live.
//! - Nothing is kept on disk: a VM that dies stays dead (starting a new backup, §2.3, is not
//!   modelled), and the test-and-set server keeps its flag in memory.
//! - Client: the model's client actor, driven one input at a time. It has the well-known id
//!   [`EXTERNAL_WORLD`]: the VMs send their outputs (and the new primary its `GoneLive`) there,
//!   as a VM sends packets to the network. It keeps every output it receives, from either VM,
//!   and [`output_requirement`] checks them with the model's own [`one_execution`].
//! - No Jepsen test: the machine has one input stream, numbered by one external world, where
//!   `jepsen` runs several clients with a key-value workload, and its nemeses restart what they
//!   kill, which VM-FT does not do (a dead primary is replaced by a new backup, not restarted).
//!   The faults that matter (kill -9 and SIGSTOP of the primary) are in `tests/vmft_cluster.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use models::client::RequestId;
use models::vmft::model::one_execution;
use models::vmft::{
    ClientCfg, InputSeq, Role, Value, VmCfg, VmTiming, VmftActor, VmftBug, VmftMsg, VmftState,
};
use stateright::actor::Id;

use crate::client::CLIENT_IDS;
use crate::config::ClusterConfig;
use crate::service::{Client, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// The external world's id: the one client the VMs send their outputs to.
pub const EXTERNAL_WORLD: usize = CLIENT_IDS;

/// The primary, the backup and the test-and-set server of a cluster file, in id order; a
/// cluster of one node has only the primary (unreplicated).
pub fn roles(cluster: &ClusterConfig) -> Result<(Id, Option<(Id, Id)>), ServiceError> {
    let ids: Vec<Id> = cluster.nodes.keys().copied().collect();
    match ids[..] {
        [primary] => Ok((primary, None)),
        [primary, backup, disk] => Ok((primary, Some((backup, disk)))),
        _ => Err(ServiceError::Invalid(format!(
            "vmft runs on 3 nodes (primary, backup, test-and-set server) or on 1 (the primary \
             alone, unreplicated); the cluster file has {}",
            ids.len()
        ))),
    }
}

fn timing(tuning: &Tuning) -> VmTiming {
    VmTiming {
        interrupt: tuning.heartbeat..tuning.heartbeat,
        replay: tuning.heartbeat..tuning.heartbeat,
        peer_timeout: tuning.timeout.clone(),
        resend: tuning.heartbeat * 5..tuning.heartbeat * 5,
    }
}

/// `vmft` in the service registry.
pub struct VmftService;

impl Service for VmftService {
    type Actor = VmftActor;
    type Msg = VmftMsg;
    type State = VmftState;
    type Store = JsonFile;

    const NAME: &'static str = "vmft";
    const SUMMARY: &'static str =
        "VMware FT: a primary and a backup VM, deterministic replay over a \
        logging channel, the Output Rule, failover by test-and-set (Scales et al. §§2.1-2.3)";
    const TUNING_HELP: &'static str = "timeout: how long a VM hears nothing on the logging \
        channel before it asks the test-and-set (and the client's wait before it tries the other \
        VM); heartbeat: the period of the machine's timer interrupts (their log entries keep the \
        channel busy) and of the backup's replay";

    fn bugs() -> Vec<&'static str> {
        VmftBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(300)..Duration::from_millis(400),
            heartbeat: Duration::from_millis(10),
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<VmftActor, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let bug = bug
            .map(|b| {
                VmftBug::from_name(b)
                    .ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
            })
            .transpose()?;
        let (primary, rest) = roles(cluster)?;
        let vm = |peer: Id, disk: Id, alone: bool| {
            VmftActor::Vm(VmCfg {
                peer,
                disk,
                client: Id::from(EXTERNAL_WORLD),
                primary: id == primary,
                partition: false,
                bug,
                timing: Some(timing(tuning)),
                alone,
            })
        };
        Ok(match rest {
            None => vm(primary, primary, true),
            Some((_, disk)) if id == disk => VmftActor::Disk,
            Some((backup, disk)) if id == primary => vm(backup, disk, false),
            Some((_, disk)) => vm(primary, disk, false),
        })
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    fn kind(msg: &VmftMsg) -> Option<&'static str> {
        match msg {
            VmftMsg::Input { .. } => Some("inputs"),
            VmftMsg::Log { .. } => Some("log entries"),
            VmftMsg::LogAck { .. } => Some("log acks"),
            VmftMsg::TestAndSet => Some("test-and-sets"),
            _ => None,
        }
    }

    fn describe(state: &VmftState) -> Option<String> {
        describe(state)
    }
}

/// A node's role as `cluster status` shows it (and the node logs when it changes): `primary`,
/// `backup`, `live`, `halted: lost the test-and-set`, or the test-and-set's flag.
pub fn describe(state: &VmftState) -> Option<String> {
    Some(match state {
        VmftState::Vm(v) => match v.role {
            Role::Primary => "primary".to_string(),
            Role::Backup => "backup".to_string(),
            Role::Live => "live".to_string(),
            Role::Halted => "halted: lost the test-and-set".to_string(),
        },
        VmftState::Disk(d) => match d.owner {
            Some(owner) => format!("test-and-set: set by {}", usize::from(owner)),
            None => "test-and-set: clear".to_string(),
        },
        VmftState::Client(_) => return None,
    })
}

/// An input of the external world: its number (from 1, one after another) and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    pub seq: InputSeq,
    pub x: Value,
}

impl Client for VmftService {
    type Op = Input;
    type Ret = Value;
    const OPS_HELP: &'static str = "input SEQ X (the SEQ-th input, from 1, carrying the number X: \
        prints the machine's output; an input already executed is ignored, as a copy)";

    fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> VmftActor {
        let ids: Vec<Id> = cluster.nodes.keys().copied().collect();
        let vms = match roles(cluster) {
            Ok((primary, Some((backup, _)))) => vec![primary, backup],
            Ok((primary, None)) => vec![primary],
            Err(_) => ids,
        };
        VmftActor::Client(ClientCfg {
            primary: vms.first().copied().unwrap_or(Id::from(0)),
            inputs: Vec::new(),
            driver: Some(driver),
            retry: Some((vms, tuning.timeout.clone())),
        })
    }

    fn client_id() -> Option<usize> {
        Some(EXTERNAL_WORLD)
    }

    fn invoke(_seq: RequestId, op: Input) -> (RequestId, VmftMsg) {
        (
            op.seq,
            VmftMsg::Invoke {
                seq: op.seq,
                x: op.x,
            },
        )
    }

    fn returned(msg: VmftMsg) -> Option<(RequestId, Value)> {
        match msg {
            VmftMsg::Return { seq, value } => Some((seq, value)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<Input, String> {
        let num = |w: &String| {
            w.parse::<u64>()
                .map_err(|_| format!("'{w}' is not a number"))
        };
        match words {
            [op, seq, x] if op == "input" => {
                let seq = num(seq)?;
                if seq == 0 {
                    return Err("inputs are numbered from 1".into());
                }
                Ok(Input { seq, x: num(x)? })
            }
            _ => Err(format!("expected: {}", Self::OPS_HELP)),
        }
    }

    fn show_op(op: &Input) -> String {
        format!("input {} {}", op.seq, op.x)
    }

    fn show(ret: &Value) -> String {
        ret.to_string()
    }
}

/// Every output a driven client received: (input, output, the VM that sent it).
pub fn received(state: &VmftState) -> &[(InputSeq, Value, Id)] {
    match state {
        VmftState::Client(c) => &c.received,
        _ => &[],
    }
}

/// §2.2, the Output Requirement, on the outputs a real client received: one execution of the
/// inputs `xs` (input `k` carried `xs[k - 1]`), with at most `interrupts` timer interrupts
/// among them, gives them all. The model's own check ([`one_execution`]) on the recorded
/// outputs. `Err` names the input whose output no such execution gives.
pub fn output_requirement(
    received: &[(InputSeq, Value, Id)],
    xs: &[Value],
    interrupts: usize,
) -> Result<(), String> {
    let all: BTreeSet<(InputSeq, Value)> = received.iter().map(|(s, v, _)| (*s, *v)).collect();
    if one_execution(&all, xs, interrupts) {
        return Ok(());
    }
    // The first prefix of the outputs that fails names the culprit.
    let mut prefix = BTreeSet::new();
    for (seq, value, from) in received {
        prefix.insert((*seq, *value));
        if !one_execution(&prefix, xs, interrupts) {
            return Err(format!(
                "output {value} of input {seq} (from node {}) is not consistent with the \
                 outputs received before it: no one execution gives them all",
                usize::from(*from)
            ));
        }
    }
    Err("no one execution gives every output".into())
}

/// Input `k` carries `7 k + 1`: the inputs the tests and the benchmark send.
pub fn x_of(seq: InputSeq) -> Value {
    7 * seq + 1
}

/// The external world of the tests and the benchmark: sends inputs `1, 2, ...` (carrying
/// [`x_of`]) one after another, each when the last one's output came, and keeps every output
/// it receives.
pub struct World {
    client: crate::client::Driven<VmftService>,
    next: InputSeq,
    started: std::time::Instant,
}

impl World {
    /// The external world of the cluster described by `cluster`.
    pub fn new(cluster: &ClusterConfig) -> std::io::Result<World> {
        let client = crate::client::Driven::<VmftService>::start(
            cluster,
            &VmftService::tuning(),
            Some(EXTERNAL_WORLD),
        )?;
        Ok(World {
            client,
            next: 1,
            started: std::time::Instant::now(),
        })
    }

    /// Sends the next input and waits up to `timeout` for its output.
    pub fn input(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let seq = self.next;
        let out = self
            .client
            .call(Input { seq, x: x_of(seq) }, timeout)
            .map_err(|e| anyhow::anyhow!("input {seq}: {e}"))?;
        self.next += 1;
        Ok(out)
    }

    /// Sends `n` inputs, one after another.
    pub fn inputs(&mut self, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            self.input(Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// Sends inputs for `d`.
    pub fn inputs_for(&mut self, d: Duration) -> anyhow::Result<()> {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until {
            self.input(Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// Every output received: (input, output, the VM that sent it).
    pub fn received(&self) -> &[(InputSeq, Value, Id)] {
        received(self.client.state())
    }

    /// The Output Requirement on everything received, with as many interrupts as the VMs can
    /// have taken since the start (one every heartbeat, at most).
    pub fn output_requirement(&self) -> Result<(), String> {
        let period = VmftService::tuning().heartbeat.as_millis().max(1) as usize;
        let budget = 2 * (self.started.elapsed().as_millis() as usize / period) + 10;
        let xs: Vec<Value> = (1..self.next + 1).map(x_of).collect();
        output_requirement(self.received(), &xs, budget)
    }

    /// How many outputs node `node` sent.
    pub fn answered_by(&self, node: usize) -> usize {
        self.received()
            .iter()
            .filter(|(_, _, from)| usize::from(*from) == node)
            .count()
    }
}
