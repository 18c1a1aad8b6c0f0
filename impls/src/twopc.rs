//! Two-phase locking and two-phase commit over TCP: the model's own [`TwoPcActor`] shards and
//! coordinating clients, described to the runtime by [`TwoPcService`].
//!
//! - Shards: the nodes of the cluster file. The store's keys are the letters `a` to `z`; key `j`
//!   (`a` is 0) lives on the `j mod n`-th node of `n`. A shard keeps its [`ShardState`] (committed
//!   versions and every transaction's record, votes included) in one JSON file, saved before any
//!   message of the same step leaves, so a `kill -9` and restart brings prepared transactions back
//!   with their locks (§9.6.3).
//! - Client: the model's coordinator (a client coordinates its own transactions), driven by
//!   [`crate::client::Driven`]: `Begin(TxnSpec)` runs a transaction, `Outcome` reports the
//!   decision. Its timeout aborts a transaction that stalls; a prepared shard that hears no
//!   decision inquires of it.
//! - Jepsen: random transactions of two to four reads and writes over a few keys. The history
//!   is checked for strict serializability with [`check_strict_serializable`], the checker the
//!   model's serializability property uses: each committed transaction with the versions its
//!   reads saw and its writes installed, and the real-time interval its client saw. The versions
//!   are the shards' own records, read from their storage at the end of the run (a committed
//!   write's version is installed at the shard and never sent to the client); the outcomes and
//!   times are what the clients saw. A transaction committed at one shard and aborted at another
//!   fails the check as well (atomicity).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use models::client::RequestId;
use models::twopc::actor::{
    Key, ShardState, TwoPcActor, TwoPcBug, TwoPcMsg, TwoPcState, TxnOp, TxnSpec,
};
use models::twophase::RmState;
use properties::commitment::Decision;
use properties::serializability::{check_strict_serializable, Op, Txn};
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::jepsen::{History, Outcome};
use crate::rng::Rng;
use crate::service::{Checked, Client, Jepsen, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// The store's keys.
pub const KEYS: &[Key] = &[
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's',
    't', 'u', 'v', 'w', 'x', 'y', 'z',
];

/// The shard that holds each key: key `j` on the `j mod n`-th node.
pub fn shard_of(cluster: &ClusterConfig) -> BTreeMap<Key, Id> {
    let ids: Vec<Id> = cluster.nodes.keys().copied().collect();
    KEYS.iter()
        .enumerate()
        .map(|(j, k)| (*k, ids[j % ids.len()]))
        .collect()
}

/// Two-phase commit's entry in the service registry.
pub struct TwoPcService;

impl Service for TwoPcService {
    type Actor = TwoPcActor;
    type Msg = TwoPcMsg;
    type State = TwoPcState;
    type Store = JsonFile;

    const NAME: &'static str = "twopc";
    const SUMMARY: &'static str =
        "strict two-phase locking on shards, two-phase commit by the clients (S&K §§9.5.3, 9.6.3)";
    const TUNING_HELP: &'static str =
        "timeout: a shard's participant timeout and the clients' coordinator timeout";

    fn bugs() -> Vec<&'static str> {
        TwoPcBug::ALL.iter().map(|b| b.name()).collect()
    }

    fn tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(500)..Duration::from_millis(1000),
            ..Tuning::default()
        }
    }

    fn jepsen_tuning() -> Tuning {
        Tuning {
            timeout: Duration::from_millis(300)..Duration::from_millis(600),
            ..Tuning::default()
        }
    }

    fn server(
        cluster: &ClusterConfig,
        id: Id,
        tuning: &Tuning,
        bug: Option<&'static str>,
        _data_dir: &Path,
    ) -> Result<TwoPcActor, ServiceError> {
        ServiceError::check_member(cluster, id)?;
        let keys: Vec<Key> = shard_of(cluster)
            .into_iter()
            .filter(|(_, s)| *s == id)
            .map(|(k, _)| k)
            .collect();
        let mut actor = TwoPcActor::live_shard(keys);
        if let TwoPcActor::Shard(cfg) = &mut actor {
            cfg.timeout = Some(tuning.timeout.clone());
            cfg.bug = bug.map(parse_bug).transpose()?;
        }
        Ok(actor)
    }

    fn store(dir: &Path) -> JsonFile {
        JsonFile(dir.to_path_buf())
    }

    fn describe(state: &TwoPcState) -> Option<String> {
        match state {
            TwoPcState::Shard(s) => {
                let keys: String = s.versions.keys().collect();
                Some(format!("shard of keys {keys}"))
            }
            TwoPcState::Client(_) => None,
        }
    }
}

fn parse_bug(name: &str) -> Result<TwoPcBug, ServiceError> {
    TwoPcBug::from_name(name).ok_or_else(|| ServiceError::Invalid(format!("unknown bug {name}")))
}

impl Client for TwoPcService {
    /// A transaction: its id (unique across clients) and its operations.
    type Op = TxnSpec;
    /// The coordinator's decision.
    type Ret = Decision;
    const OPS_HELP: &'static str = "r:KEY | w:KEY ... (one transaction, keys a-z; e.g. r:a w:b)";

    fn client(cluster: &ClusterConfig, _driver: Id, tuning: &Tuning) -> TwoPcActor {
        let mut actor = TwoPcActor::live_client(shard_of(cluster));
        if let TwoPcActor::Client(cfg) = &mut actor {
            cfg.timeout = Some(tuning.timeout.clone());
        }
        actor
    }

    fn invoke(_seq: RequestId, txn: TxnSpec) -> (RequestId, TwoPcMsg) {
        (txn.id, TwoPcMsg::Begin(txn))
    }

    fn returned(msg: TwoPcMsg) -> Option<(RequestId, Decision)> {
        match msg {
            TwoPcMsg::Outcome { txn, decision } => Some((txn, decision)),
            _ => None,
        }
    }

    fn parse_op(words: &[String]) -> Result<TxnSpec, String> {
        let bad = |w: &str| {
            format!(
                "'{w}' is not an operation (expected {})",
                TwoPcService::OPS_HELP
            )
        };
        let mut ops = Vec::new();
        for w in words {
            let (kind, key) = w.split_once(':').ok_or_else(|| bad(w))?;
            let mut chars = key.chars();
            let (Some(key), None) = (chars.next(), chars.next()) else {
                return Err(bad(w));
            };
            if !KEYS.contains(&key) {
                return Err(bad(w));
            }
            ops.push(match kind {
                "r" => TxnOp::Read(key),
                "w" => TxnOp::Write(key),
                _ => return Err(bad(w)),
            });
        }
        if ops.is_empty() {
            return Err(bad(""));
        }
        // A fresh id, so that a new process never reuses a transaction's.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Ok(TxnSpec {
            id: (nanos ^ (u64::from(std::process::id()) << 40)) >> 1 | 1 << 62,
            ops,
        })
    }

    fn show_op(txn: &TxnSpec) -> String {
        let ops: Vec<String> = txn
            .ops
            .iter()
            .map(|op| match op {
                TxnOp::Read(k) => format!("r:{k}"),
                TxnOp::Write(k) => format!("w:{k}"),
            })
            .collect();
        format!("T{} [{}]", txn.id, ops.join(" "))
    }

    fn show(decision: &Decision) -> String {
        match decision {
            Decision::Commit => "committed".into(),
            Decision::Abort => "aborted".into(),
        }
    }
}

impl Jepsen for TwoPcService {
    /// One to three keys, each read, written, or read and then written (a read-modify-write):
    /// read-write conflicts on one key (lost update's shape) and across shards (write skew's)
    /// are common.
    fn workload(rng: &mut Rng, keys: usize, id: u64) -> TxnSpec {
        let keys = keys.clamp(1, KEYS.len());
        let n = (1 + rng.below(3) as usize).min(keys);
        let mut chosen: Vec<Key> = Vec::new();
        while chosen.len() < n {
            let k = KEYS[rng.below(keys as u64) as usize];
            if !chosen.contains(&k) {
                chosen.push(k);
            }
        }
        let mut ops = Vec::new();
        for k in chosen {
            match rng.below(3) {
                0 => ops.push(TxnOp::Read(k)),
                1 => ops.push(TxnOp::Write(k)),
                _ => ops.extend([TxnOp::Read(k), TxnOp::Write(k)]),
            }
        }
        TxnSpec { id, ops }
    }

    fn read_only(_: &TxnSpec) -> bool {
        // Even a read-only transaction's outcome is the coordinator's: a timed-out one may
        // still commit.
        false
    }

    fn check(history: &History<TxnSpec, Decision>, dir: &Path) -> anyhow::Result<Checked> {
        let cluster = ClusterConfig::load(&dir.join("cluster.toml"))?;
        let mut shards: Vec<ShardState> = Vec::new();
        for id in cluster.nodes.keys() {
            let node_dir = dir.join(format!("node-{}", usize::from(*id)));
            if let Some(s) = crate::storage::load::<ShardState>(&node_dir)? {
                shards.push(s);
            }
        }
        let (txns, broken) = transactions(history, &shards);
        let file = dir.join("history.jsonl");
        write_history(&file, &txns)?;
        let show = |id: u64| {
            history
                .ops
                .iter()
                .find(|o| o.id == id)
                .map_or_else(|| format!("T{id}"), |o| o.describe())
        };
        if let Some((id, why)) = broken {
            return Ok(Checked {
                verdict: "not atomic".into(),
                ok: false,
                failure: Some(format!("{why}: {}", show(id))),
                file,
            });
        }
        Ok(match check_strict_serializable(&txns) {
            Ok(()) => Checked {
                verdict: "strict serializable".into(),
                ok: true,
                failure: None,
                file,
            },
            Err(v) => {
                let named: Vec<String> = v.txns.iter().map(|t| show(*t)).collect();
                Checked {
                    verdict: format!("not strict serializable ({:?})", v.anomaly),
                    ok: false,
                    failure: Some(format!(
                        "{}: {}; {}",
                        v.anomaly,
                        if v.cycle.is_empty() {
                            v.explanation.clone()
                        } else {
                            v.cycle
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        named.join("; ")
                    )),
                    file,
                }
            }
        })
    }
}

/// The history for the serializability checker: every transaction some shard decided, with its
/// reads and installed writes from the shards' records, committed if a shard committed it, and
/// the real-time interval its client saw (microseconds; open at the end for a timed-out one).
/// Also the first transaction committed at one shard and aborted at another, if any.
fn transactions(
    history: &History<TxnSpec, Decision>,
    shards: &[ShardState],
) -> (Vec<Txn<Key>>, Option<(u64, String)>) {
    let micros = |s: f64| (s * 1e6) as u64;
    let client: BTreeMap<u64, _> = history.ops.iter().map(|o| (o.id, o)).collect();
    let ids: BTreeSet<u64> = shards.iter().flat_map(|s| s.txns.keys().copied()).collect();
    let mut broken = None;
    let mut txns = Vec::new();
    for id in ids {
        let records: Vec<_> = shards.iter().filter_map(|s| s.txns.get(&id)).collect();
        let committed = records.iter().any(|p| p.state == RmState::Committed);
        let aborted = records.iter().any(|p| p.state == RmState::Aborted);
        let told = client.get(&id).map(|o| &o.outcome);
        if broken.is_none() {
            if committed && aborted {
                broken = Some((id, "committed at one shard, aborted at another".to_string()));
            } else if told == Some(&Outcome::Ok(Decision::Commit)) && aborted {
                broken = Some((id, "reported committed, aborted at a shard".to_string()));
            } else if told == Some(&Outcome::Ok(Decision::Abort)) && committed {
                broken = Some((id, "reported aborted, committed at a shard".to_string()));
            }
        }
        if !committed && told != Some(&Outcome::Ok(Decision::Commit)) {
            continue;
        }
        let mut ops = Vec::new();
        for p in &records {
            ops.extend(p.reads.iter().map(|(key, version)| Op::Read {
                key: *key,
                version: *version,
            }));
        }
        for p in &records {
            ops.extend(
                p.writes
                    .iter()
                    .filter_map(|(key, v)| v.map(|version| Op::Write { key: *key, version })),
            );
        }
        let o = client.get(&id);
        txns.push(Txn {
            id,
            ops,
            committed: true,
            start: o.map(|o| micros(o.invoked)),
            end: o.and_then(|o| match o.outcome {
                Outcome::Ok(_) => o.completed.map(micros),
                _ => None,
            }),
        });
    }
    (txns, broken)
}

/// Writes the transactions in `checker history --model txn`'s format.
fn write_history(file: &Path, txns: &[Txn<Key>]) -> std::io::Result<()> {
    let mut text = String::new();
    for t in txns {
        let ops: Vec<serde_json::Value> = t
            .ops
            .iter()
            .map(|op| match op {
                Op::Read { key, version } => serde_json::json!(["r", key.to_string(), version]),
                Op::Write { key, version } => serde_json::json!(["w", key.to_string(), version]),
            })
            .collect();
        let mut line = serde_json::json!({"id": t.id, "status": "committed", "ops": ops});
        if let Some(s) = t.start {
            line["start"] = s.into();
        }
        if let Some(e) = t.end {
            line["end"] = e.into();
        }
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(file, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(n: usize) -> ClusterConfig {
        let mut c = ClusterConfig::default();
        for i in 0..n {
            c.nodes
                .insert(Id::from(i), ([127, 0, 0, 1], 1000 + i as u16).into());
        }
        c
    }

    #[test]
    fn keys_spread_over_the_shards_and_every_shard_holds_some() {
        let m = shard_of(&cluster(3));
        assert_eq!(m.len(), KEYS.len());
        assert_eq!(m[&'a'], Id::from(0));
        assert_eq!(m[&'b'], Id::from(1));
        assert_eq!(m[&'d'], Id::from(0));
        let TwoPcActor::Shard(s) = TwoPcService::server(
            &cluster(3),
            Id::from(2),
            &Tuning::default(),
            None,
            Path::new("."),
        )
        .unwrap() else {
            panic!("a shard");
        };
        assert!(s.keys.contains(&'c') && !s.keys.contains(&'a'));
    }

    #[test]
    fn transactions_parse_from_words_or_explain() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let t = TwoPcService::parse_op(&w("r:a w:b")).unwrap();
        assert_eq!(t.ops, vec![TxnOp::Read('a'), TxnOp::Write('b')]);
        assert!(TwoPcService::parse_op(&w("r:A"))
            .unwrap_err()
            .contains("r:KEY"));
        assert!(TwoPcService::parse_op(&w("x:a")).is_err());
        assert!(TwoPcService::parse_op(&w("r:ab")).is_err());
    }

    #[test]
    fn workloads_touch_the_first_keys_and_read_before_they_write() {
        let mut rng = Rng::new(3);
        let mut read_modify_writes = 0;
        for id in 1..200 {
            let t = TwoPcService::workload(&mut rng, 4, id);
            assert_eq!(t.id, id);
            assert!((1..=6).contains(&t.ops.len()));
            assert!(t.ops.iter().all(|o| o.key() <= 'd'));
            for (i, op) in t.ops.iter().enumerate() {
                if let TxnOp::Read(k) = op {
                    assert!(!t.ops[..i].contains(&TxnOp::Write(*k)), "{t:?}");
                    read_modify_writes += usize::from(t.ops[i..].contains(&TxnOp::Write(*k)));
                }
            }
        }
        assert!(read_modify_writes > 20);
    }
}
