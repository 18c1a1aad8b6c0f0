//! COPS over TCP: the model's own [`CopsActor`] store nodes, one per data centre, and client
//! libraries, described to the runtime by [`CopsService`] (`cops`).
//!
//! - Every node of the cluster file is a data centre's store (the nodes in id order are data
//!   centres 0, 1, ...), holding every key. Nodes keep their store in memory: COPS replicates
//!   within a data centre (§5.2), which this runtime does not, so the nemesis never kills one.
//! - Replication between data centres is asynchronous (§4.3). The runtime's partitions and
//!   loss drop messages between nodes, so a node acknowledges each replicated put and resends
//!   those not acknowledged every [`Tuning::heartbeat`]; a put that was cut off arrives when the
//!   partition heals, after others sent later (the reordering §4.3's `dep_check` is for).
//! - A client is the model's client library, attached to one data centre (its id picks one),
//!   driven one operation at a time.
//! - Jepsen: puts of unique values, gets and two-key `get_trans` over a few keys. The history,
//!   one session per client process, is checked by `properties::causal` at CCv (causal+) and,
//!   with each `get_trans` as one transaction, at TCC. After the run every client reads every
//!   key with `get_trans`, once replication has settled: the data centres must agree.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use models::client::{ClientMsg, RequestId};
use models::cops::{
    key_name, ClientCfg, CopsActor, CopsBug, CopsMsg, CopsOp, CopsRet, CopsState, Key, NodeCfg,
    Seen,
};
use properties::causal::{self, Level, Op, Txn};
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::jepsen::{History, Nemesis, Outcome, FINAL_OPS};
use crate::rng::Rng;
use crate::service::{Checked, Client, Jepsen, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// `cops` in the service registry.
pub struct CopsService;

/// The data centres' nodes, in id order.
fn data_centres(cluster: &ClusterConfig) -> Vec<Id> {
    cluster.nodes.keys().copied().collect()
}

impl Service for CopsService {
    type Actor = CopsActor;
    type Msg = CopsMsg;
    type State = CopsState;
    type Store = JsonFile;

    const NAME: &'static str = "cops";
    const SUMMARY: &'static str =
        "COPS: causal+ across data centres by dependencies and dep_check (Lloyd et al. §§3, 4)";
    const TUNING_HELP: &'static str =
        "heartbeat: a node's interval for resending replicated puts not yet acknowledged";

    fn bugs() -> Vec<&'static str> {
        CopsBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(300)..Duration::from_millis(600),
            heartbeat: Duration::from_millis(100),
            snapshot_every: 0,
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<CopsActor, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let dcs = data_centres(cluster);
        if dcs.len() > 9 {
            return Err(ServiceError::Invalid(format!(
                "COPS runs at most 9 data centres here, not {}",
                dcs.len()
            )));
        }
        let bug = bug
            .map(|b| {
                CopsBug::from_name(b)
                    .ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
            })
            .transpose()?;
        let dc = dcs.iter().position(|d| *d == id).expect("a member") as u8;
        Ok(CopsActor::Node(NodeCfg {
            dc,
            peers: dcs.into_iter().filter(|d| *d != id).collect(),
            resend: Some(tuning.heartbeat),
            bug,
        }))
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    /// The store's role, logged when it changes: whether replicated puts wait for
    /// `dep_check`, and whether puts wait for a peer's acknowledgement.
    fn describe(state: &CopsState) -> Option<String> {
        let CopsState::Node(n) = state else {
            return None;
        };
        let mut text = "data centre store".to_string();
        if !n.pending.is_empty() {
            text.push_str(", puts waiting for dep_check");
        }
        if !n.unacked.is_empty() {
            text.push_str(", puts not yet acknowledged");
        }
        Some(text)
    }

    fn kind(msg: &CopsMsg) -> Option<&'static str> {
        match msg {
            CopsMsg::PutAfter { .. } => Some("puts"),
            CopsMsg::GetByVersion { .. } => Some("gets"),
            CopsMsg::Replicate { .. } => Some("replicated puts"),
            _ => None,
        }
    }
}

/// `x`, `y`, `z`, `k3`, ... or a number.
fn parse_key(word: &str) -> Result<Key, String> {
    match word {
        "x" => Ok(0),
        "y" => Ok(1),
        "z" => Ok(2),
        _ => word
            .strip_prefix('k')
            .unwrap_or(word)
            .parse()
            .map_err(|_| format!("'{word}' is not a key (x, y, z, k3, k4, ... up to k255)")),
    }
}

fn show_seen(seen: &Option<Seen>) -> String {
    seen.map_or("initial".to_string(), |s| {
        format!("{} (version {})", s.value, s.version)
    })
}

impl Client for CopsService {
    type Op = CopsOp;
    type Ret = CopsRet;
    const OPS_HELP: &'static str = "put KEY VALUE | get KEY | get_trans KEY... (keys x, y, z, k3, ...; values positive integers)";

    fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> CopsActor {
        Self::client_for(cluster, driver, tuning, driver)
    }

    /// Client `me` at data centre `me mod n`.
    fn client_for(cluster: &ClusterConfig, driver: Id, _tuning: &Tuning, me: Id) -> CopsActor {
        let dcs = data_centres(cluster);
        CopsActor::Client(ClientCfg {
            node: dcs[usize::from(me) % dcs.len()],
            ops: Vec::new(),
            driver: Some(driver),
            bug: None,
        })
    }

    fn invoke(seq: RequestId, op: CopsOp) -> (RequestId, CopsMsg) {
        (seq, CopsMsg::Client(ClientMsg::Invoke { seq, op }))
    }

    fn returned(msg: CopsMsg) -> Option<(RequestId, CopsRet)> {
        match msg {
            CopsMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<CopsOp, String> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["put", k, v] => {
                let value: u64 = v
                    .parse()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| format!("'{v}' is not a positive integer value"))?;
                Ok(CopsOp::Put(parse_key(k)?, value))
            }
            ["get", k] => Ok(CopsOp::Get(parse_key(k)?)),
            ["get_trans", keys @ ..] if !keys.is_empty() => Ok(CopsOp::GetTrans(
                keys.iter()
                    .map(|k| parse_key(k))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(format!("expected {}", Self::OPS_HELP)),
        }
    }

    fn show_op(op: &CopsOp) -> String {
        match op {
            CopsOp::Put(k, v) => format!("put {} {v}", key_name(*k)),
            CopsOp::Get(k) => format!("get {}", key_name(*k)),
            CopsOp::GetTrans(keys) => {
                let names: Vec<String> = keys.iter().map(|k| key_name(*k)).collect();
                format!("get_trans {}", names.join(" "))
            }
        }
    }

    fn show(ret: &CopsRet) -> String {
        match ret {
            CopsRet::Put(v) => format!("ok (version {v})"),
            CopsRet::Get(seen) => show_seen(seen),
            CopsRet::GetTrans(read) => {
                let shown: Vec<String> = read
                    .iter()
                    .map(|(k, s)| format!("{}={}", key_name(*k), show_seen(s)))
                    .collect();
                shown.join(" ")
            }
        }
    }
}

impl Jepsen for CopsService {
    /// Puts of a unique value (40%), gets (45%) and two-key `get_trans` (15%).
    fn workload(rng: &mut Rng, keys: usize, id: u64) -> CopsOp {
        let key = |rng: &mut Rng| rng.below(keys.min(256) as u64) as Key;
        match rng.below(20) {
            0..=7 => CopsOp::Put(key(rng), id),
            8..=16 => CopsOp::Get(key(rng)),
            _ => {
                let a = key(rng);
                let b = key(rng);
                if a == b {
                    CopsOp::Get(a)
                } else {
                    CopsOp::GetTrans(vec![a.min(b), a.max(b)])
                }
            }
        }
    }

    fn read_only(op: &CopsOp) -> bool {
        !matches!(op, CopsOp::Put(..))
    }

    /// Every key, with `get_trans`, once replication has settled.
    fn final_ops(keys: usize) -> Vec<CopsOp> {
        vec![CopsOp::GetTrans((0..keys.min(256) as Key).collect())]
    }

    fn check(history: &History<CopsOp, CopsRet>, dir: &Path) -> anyhow::Result<Checked> {
        let (txns, described) = sessions(history);
        let file = dir.join("history.jsonl");
        std::fs::write(&file, jsonl(&txns))?;
        let explain = |v: causal::Violation| {
            let ops: Vec<&str> = v.ops.iter().map(|at| described[at.txn].as_str()).collect();
            format!("{v} [{}]", ops.join("; "))
        };
        for (level, name) in [
            (Level::Ccv, "causal+ (CCv)"),
            (Level::Tcc, "get_trans snapshots (TCC)"),
        ] {
            if let Err(v) = causal::check(&txns, level) {
                return Ok(Checked {
                    verdict: format!("not {name}"),
                    ok: false,
                    failure: Some(explain(v)),
                    file,
                });
            }
        }
        if let Some(why) = diverged(history) {
            return Ok(Checked {
                verdict: "not convergent".into(),
                ok: false,
                failure: Some(why),
                file,
            });
        }
        Ok(Checked {
            verdict: "causal+ (CCv and TCC), and the data centres converged".into(),
            ok: true,
            failure: None,
            file,
        })
    }

    /// COPS's data centres are replicated within (§5.2); these nodes keep their stores in
    /// memory, so they are cut off, never killed.
    fn nemeses() -> &'static [Nemesis] {
        &[Nemesis::Partition, Nemesis::Loss, Nemesis::Delay]
    }
}

/// The history as `properties::causal` transactions, one session per process (a client
/// carries on as a new process after an indefinite put, which may take effect any time), and
/// each transaction described as the history names it. A put's version for the checker is its
/// unique value; failed reads are left out, and a put that never answered is kept (it may have
/// taken effect).
fn sessions(history: &History<CopsOp, CopsRet>) -> (Vec<Txn>, Vec<String>) {
    let mut txns = Vec::new();
    let mut described = Vec::new();
    let seen = |s: &Option<Seen>| s.map_or(0, |s| s.value);
    for op in &history.ops {
        let ops = match (&op.op, &op.outcome) {
            (CopsOp::Put(k, v), Outcome::Ok(_) | Outcome::Info | Outcome::Open) => {
                vec![Op::write(&key_name(*k), *v)]
            }
            (CopsOp::Get(k), Outcome::Ok(CopsRet::Get(s))) => {
                vec![Op::read(&key_name(*k), seen(s))]
            }
            (_, Outcome::Ok(CopsRet::GetTrans(read))) => read
                .iter()
                .map(|(k, s)| Op::read(&key_name(*k), seen(s)))
                .collect(),
            _ => continue,
        };
        txns.push(Txn {
            id: op.id,
            session: op.process,
            ops,
        });
        described.push(op.describe());
    }
    (txns, described)
}

/// The history in the `jsonl` format of `checker history --model causal`.
fn jsonl(txns: &[Txn]) -> String {
    let mut out = String::new();
    for t in txns {
        let ops: Vec<serde_json::Value> = t
            .ops
            .iter()
            .map(|op| match op.kind {
                causal::Kind::Read(v) => serde_json::json!(["r", op.key, v]),
                causal::Kind::Write(v) => serde_json::json!(["w", op.key, v]),
            })
            .collect();
        out.push_str(
            &serde_json::json!({"id": t.id, "session": t.session, "status": "committed", "ops": ops})
                .to_string(),
        );
        out.push('\n');
    }
    out
}

/// Whether the final reads (each client's `get_trans` of every key, after the run) disagree,
/// and how; a final read that did not return makes the check impossible, which is also a
/// failure.
fn diverged(history: &History<CopsOp, CopsRet>) -> Option<String> {
    let finals: Vec<_> = history
        .ops
        .iter()
        .filter(|op| op.id & FINAL_OPS != 0)
        .collect();
    if finals.is_empty() {
        return Some("no final reads were made".into());
    }
    let mut views: BTreeMap<Vec<(Key, u64)>, Vec<String>> = BTreeMap::new();
    for op in &finals {
        let Outcome::Ok(CopsRet::GetTrans(read)) = &op.outcome else {
            return Some(format!("a final read did not return: {}", op.describe()));
        };
        let view = read
            .iter()
            .map(|(k, s)| (*k, s.map_or(0, |s| s.value)))
            .collect();
        views.entry(view).or_default().push(op.describe());
    }
    if views.len() == 1 {
        return None;
    }
    let shown: Vec<String> = views.values().map(|ops| ops[0].clone()).collect();
    Some(format!(
        "after replication settled, data centres show different values: {}",
        shown.join(" / ")
    ))
}
