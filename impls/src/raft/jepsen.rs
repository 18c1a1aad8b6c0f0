//! A Jepsen-style test of the Raft KV cluster: concurrent clients run random get/put/append
//! operations on a few keys while a nemesis kills and restarts nodes, partitions the network and
//! makes it lossy and slow; the history is written as `jsonl` and checked for linearizability by
//! the same checker the workbench uses on recorded histories.
//!
//! Each client is one session (one client id, increasing sequence numbers). An operation that gets
//! no answer before its deadline is indefinite (`info`) if it writes, and failed if it reads (a read
//! has no effect, Jepsen's convention); after an indefinite operation the client carries on as a new
//! process of the history, since its old operation stays open to the end.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use models::raft::kv::{KvOp, KvRet};
use properties::linearizability::formats::parse_jsonl_kv;
use properties::linearizability::{check, KvStore, Verdict};
use serde::Serialize;
use serde_json::json;

use super::client::{KvClient, CLIENT_IDS};
use super::cluster::{Cluster, ClusterSpec};
use super::Timing;
use crate::node::Faults;
use crate::rng::Rng;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Nemesis {
    /// `kill -9` some nodes (one, a majority or all), restart them later from their data
    /// directories.
    Kill,
    /// Cut a minority of the nodes off from the rest.
    Partition,
    /// Drop 10% of the messages between nodes and delay the others by up to 27 ms.
    Loss,
}

impl std::str::FromStr for Nemesis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kill" => Ok(Nemesis::Kill),
            "partition" => Ok(Nemesis::Partition),
            "loss" => Ok(Nemesis::Loss),
            _ => Err(format!(
                "unknown nemesis '{s}' (expected kill, partition or loss)"
            )),
        }
    }
}

/// How to run the test.
#[derive(Clone, Debug)]
pub struct JepsenOpts {
    pub node_bin: PathBuf,
    pub dir: PathBuf,
    pub nodes: usize,
    pub clients: usize,
    pub duration: Duration,
    pub nemesis: Vec<Nemesis>,
    pub seed: u64,
    pub keys: usize,
    /// How long a client waits for one operation.
    pub op_timeout: Duration,
    pub timing: Timing,
}

/// One injected fault and when (seconds since the start).
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    pub kind: Nemesis,
    pub detail: String,
    pub start: f64,
    pub healed: f64,
}

/// The outcome.
#[derive(Clone, Debug, Serialize)]
pub struct JepsenReport {
    /// `linearizable`, `not linearizable` or `unknown` (the checker's time ran out).
    pub verdict: String,
    pub ok: usize,
    pub failed: usize,
    pub indefinite: usize,
    /// Operations that succeeded after the last fault healed.
    pub ok_after_heal: usize,
    pub faults: Vec<FaultRecord>,
    pub history: PathBuf,
    pub seconds: f64,
    pub check_seconds: f64,
    /// For a history that is not linearizable: the key and the operations that could not be placed.
    pub failure: Option<String>,
}

impl JepsenReport {
    /// The test passes: linearizable, and the cluster served after the last fault.
    pub fn passed(&self) -> bool {
        self.verdict == "linearizable" && self.ok_after_heal > 0
    }
}

/// The history's events, in real-time order (the order they were recorded in under the lock).
struct Recorder {
    start: Instant,
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    fn record(&self, process: u64, ty: &str, f: &str, key: &str, value: Option<&str>) -> f64 {
        let line = json!({"process": process, "type": ty, "f": f, "key": key, "value": value});
        let mut lines = self.lines.lock().expect("history lock");
        lines.push(line.to_string());
        self.start.elapsed().as_secs_f64()
    }
}

#[derive(Default)]
struct Counts {
    ok: usize,
    failed: usize,
    indefinite: usize,
    /// Completion times of successful operations.
    ok_times: Vec<f64>,
}

/// Runs the test.
pub fn run(opts: &JepsenOpts) -> anyhow::Result<JepsenReport> {
    anyhow::ensure!(opts.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(opts.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(opts.keys >= 1, "--keys must be at least 1");
    let _ = fs::remove_dir_all(&opts.dir);
    let mut cluster = Cluster::start(ClusterSpec {
        node_bin: opts.node_bin.clone(),
        dir: opts.dir.clone(),
        nodes: opts.nodes,
        base_port: None,
        timing: opts.timing.clone(),
    })?;
    let recorder = Arc::new(Recorder {
        start: Instant::now(),
        lines: Mutex::new(Vec::new()),
    });
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let end = recorder.start + opts.duration;

    let workers: Vec<_> = (0..opts.clients)
        .map(|c| {
            let (config, recorder, counts, stop) = (
                cluster.config.clone(),
                recorder.clone(),
                counts.clone(),
                stop.clone(),
            );
            let (keys, op_timeout, seed) = (opts.keys, opts.op_timeout, opts.seed);
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed).fork(c as u64);
                let mut client = KvClient::with_id(&config, CLIENT_IDS + c);
                client.attempt_timeout = Duration::from_millis(300);
                let mut process = c as u64;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("k{}", rng.below(keys as u64));
                    let value = format!("{c}.{n} ");
                    // Mostly reads and appends: an append keeps every earlier write visible in
                    // the value, so a lost write shows; a put wipes the slate.
                    let (f, op) = match rng.below(10) {
                        0..=3 => ("get", KvOp::Get(key.clone())),
                        4 => ("put", KvOp::Put(key.clone(), value.clone())),
                        _ => ("append", KvOp::Append(key.clone(), value.clone())),
                    };
                    let arg = (f != "get").then_some(value.as_str());
                    recorder.record(process, "invoke", f, &key, arg);
                    match client.call(op, op_timeout) {
                        Ok(ret) => {
                            let read = match ret {
                                KvRet::Value(v) => Some(v.unwrap_or_default()),
                                KvRet::Ok => None,
                            };
                            let shown = if f == "get" { read.as_deref() } else { arg };
                            let at = recorder.record(process, "ok", f, &key, shown);
                            let mut counts = counts.lock().expect("counts lock");
                            counts.ok += 1;
                            counts.ok_times.push(at);
                        }
                        Err(_) if f == "get" => {
                            recorder.record(process, "fail", f, &key, None);
                            counts.lock().expect("counts lock").failed += 1;
                        }
                        Err(_) => {
                            recorder.record(process, "info", f, &key, arg);
                            counts.lock().expect("counts lock").indefinite += 1;
                            // The open operation keeps this process busy: carry on as another.
                            process += PROCESS_STRIDE;
                        }
                    }
                }
            })
        })
        .collect();

    // The nemesis: quiet, fault, heal, over and over, leaving the last stretch quiet.
    let mut faults = Vec::new();
    let mut rng = Rng::new(opts.seed);
    let quiet_end = opts.duration.saturating_sub(Duration::from_secs(3));
    let since = |t: Instant| t.duration_since(recorder.start).as_secs_f64();
    if !opts.nemesis.is_empty() {
        loop {
            let pause = Duration::from_millis(500 + rng.below(1000));
            let length = Duration::from_millis(1000 + rng.below(2000));
            if recorder.start.elapsed() + pause + length > quiet_end {
                break;
            }
            std::thread::sleep(pause);
            let kind = opts.nemesis[rng.below(opts.nemesis.len() as u64) as usize];
            let start = Instant::now();
            let detail = match kind {
                Nemesis::Kill => {
                    // Any number of nodes, up to all of them: a minority, a majority (the
                    // cluster stops until they return) or a full-cluster crash.
                    let count = 1 + rng.below(opts.nodes as u64) as usize;
                    let mut victims: Vec<usize> = Vec::new();
                    while victims.len() < count {
                        let i = rng.below(opts.nodes as u64) as usize;
                        if !victims.contains(&i) {
                            victims.push(i);
                        }
                    }
                    victims.sort_unstable();
                    for &i in &victims {
                        cluster.kill(i);
                    }
                    std::thread::sleep(length);
                    for &i in &victims {
                        cluster.restart(i)?;
                    }
                    format!("kill -9 nodes {victims:?}, restarted")
                }
                Nemesis::Partition => {
                    let minority = opts.nodes.saturating_sub(1) / 2;
                    let mut side: Vec<usize> = Vec::new();
                    // Half the time, cut off the leader (as a probe read finds it): the case
                    // where a stale leader may still answer.
                    if minority > 0 && rng.below(2) == 0 {
                        let mut probe = KvClient::with_id(&cluster.config, CLIENT_IDS + 1_000_000);
                        if probe
                            .call(KvOp::Get("k0".into()), Duration::from_secs(1))
                            .is_ok()
                        {
                            side.push(usize::from(probe.leader()));
                        }
                    }
                    while side.len() < minority.max(1).min(opts.nodes) {
                        let i = rng.below(opts.nodes as u64) as usize;
                        if !side.contains(&i) {
                            side.push(i);
                        }
                    }
                    side.sort_unstable();
                    cluster.partition(&side);
                    std::thread::sleep(length);
                    cluster.set_all(&Faults::default());
                    format!("nodes {side:?} cut off from the rest")
                }
                Nemesis::Loss => {
                    cluster.set_all(&Faults {
                        blocked: Vec::new(),
                        loss: 0.1,
                        max_delay_ms: 27,
                    });
                    std::thread::sleep(length);
                    cluster.set_all(&Faults::default());
                    "10% of messages between nodes lost, the rest delayed 0-27 ms".to_string()
                }
            };
            tracing::info!(?kind, %detail, "fault healed");
            faults.push(FaultRecord {
                kind,
                detail,
                start: since(start),
                healed: since(Instant::now()),
            });
        }
    }
    let last_heal = faults.last().map_or(0.0, |f| f.healed);
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
    }
    cluster.stop();
    let seconds = recorder.start.elapsed().as_secs_f64();

    let lines = std::mem::take(&mut *recorder.lines.lock().expect("history lock"));
    let mut text = lines.join("\n");
    text.push('\n');
    let history_path = opts.dir.join("history.jsonl");
    fs::write(&history_path, &text)?;
    let checked = Instant::now();
    let (history, names) = parse_jsonl_kv(&text)
        .map_err(|e| anyhow::anyhow!("the recorded history does not parse: {e}"))?;
    let (verdict, failure) = match check(&KvStore, &history, Some(Duration::from_secs(120))) {
        Verdict::Linearizable => ("linearizable", None),
        Verdict::Unknown => ("unknown", None),
        Verdict::NotLinearizable(f) => (
            "not linearizable",
            Some(format!(
                "key {:?}: {} operations linearized, none of operations {:?} fits next",
                names.get(f.partition as usize).cloned().unwrap_or_default(),
                f.linearized.len(),
                f.unplaced
            )),
        ),
    };
    let counts = counts.lock().expect("counts lock");
    Ok(JepsenReport {
        verdict: verdict.to_string(),
        ok: counts.ok,
        failed: counts.failed,
        indefinite: counts.indefinite,
        ok_after_heal: counts.ok_times.iter().filter(|t| **t > last_heal).count(),
        faults,
        history: history_path,
        seconds,
        check_seconds: checked.elapsed().as_secs_f64(),
        failure,
    })
}

/// Process numbers of one client are its index plus multiples of this.
const PROCESS_STRIDE: u64 = 1 << 20;
