//! A key-value store's client side over TCP, shared by the protocols whose clients run the
//! workbench's `KvOp`s (Raft's store today; chain replication's next): the operations as
//! `client` takes and prints them, a Jepsen workload, and the linearizability check of a history
//! against [`KvStore`], the specification the models' `KvData` follows too.

use std::path::Path;
use std::time::Duration;

use models::raft::kv::{KvOp, KvRet};
use properties::linearizability::formats::parse_jsonl_kv;
use properties::linearizability::{check, KvStore, Verdict};
use serde_json::json;

use crate::jepsen::{History, Outcome};
use crate::rng::Rng;
use crate::service::Checked;

/// The operations, for `--help`.
pub const OPS_HELP: &str = "put KEY VALUE | get KEY | append KEY VALUE";

/// An operation from the command line's words (`put k v`).
pub fn parse_op(words: &[String]) -> Result<KvOp, String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["put", k, v] => Ok(KvOp::Put(k.to_string(), v.to_string())),
        ["get", k] => Ok(KvOp::Get(k.to_string())),
        ["append", k, v] => Ok(KvOp::Append(k.to_string(), v.to_string())),
        _ => Err(format!(
            "'{}' is not an operation (expected {OPS_HELP})",
            words.join(" ")
        )),
    }
}

/// An operation as a history names it.
pub fn show_op(op: &KvOp) -> String {
    match op {
        KvOp::Put(k, v) => format!("put {k} {v:?}"),
        KvOp::Get(k) => format!("get {k}"),
        KvOp::Append(k, v) => format!("append {k} {v:?}"),
    }
}

/// A result as `client` prints it.
pub fn show(ret: &KvRet) -> String {
    match ret {
        KvRet::Ok => "ok".into(),
        KvRet::Value(v) => v.clone(),
    }
}

/// Whether `op` only reads.
pub fn read_only(op: &KvOp) -> bool {
    matches!(op, KvOp::Get(_))
}

/// Mostly reads and appends: an append keeps every earlier write visible in the value, so a
/// lost write shows; a put wipes the slate. Values name their writer and are unique.
pub fn workload(rng: &mut Rng, keys: usize, id: u64) -> KvOp {
    let key = format!("k{}", rng.below(keys as u64));
    let value = format!("{}.{} ", id >> 32, id & 0xffff_ffff);
    match rng.below(10) {
        0..=3 => KvOp::Get(key),
        4 => KvOp::Put(key, value),
        _ => KvOp::Append(key, value),
    }
}

/// Writes the history as `DIR/history.jsonl` (`checker history --format jsonl`) and checks it
/// for linearizability against [`KvStore`], key by key.
pub fn check_history(history: &History<KvOp, KvRet>, dir: &Path) -> anyhow::Result<Checked> {
    let mut lines = Vec::with_capacity(history.events.len());
    for e in &history.events {
        let op = &history.ops[e.op];
        let (f, key, arg) = match &op.op {
            KvOp::Get(k) => ("get", k, None),
            KvOp::Put(k, v) => ("put", k, Some(v.as_str())),
            KvOp::Append(k, v) => ("append", k, Some(v.as_str())),
        };
        let (ty, value) = match (e.completes, &op.outcome) {
            (false, _) => ("invoke", arg),
            (true, Outcome::Ok(KvRet::Value(v))) => ("ok", Some(v.as_str())),
            (true, Outcome::Ok(KvRet::Ok)) => ("ok", arg),
            (true, Outcome::Fail) => ("fail", arg),
            (true, Outcome::Info | Outcome::Open) => ("info", arg),
        };
        lines.push(
            json!({"process": op.process, "type": ty, "f": f, "key": key, "value": value})
                .to_string(),
        );
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let file = dir.join("history.jsonl");
    std::fs::write(&file, &text)?;
    let (parsed, names) = parse_jsonl_kv(&text)
        .map_err(|e| anyhow::anyhow!("the recorded history does not parse: {e}"))?;
    let verdict = check(&KvStore, &parsed, Some(Duration::from_secs(120)));
    let show = |i: &usize| {
        history
            .ops
            .get(*i)
            .map_or_else(|| format!("operation {i}"), |o| o.describe())
    };
    Ok(match verdict {
        Verdict::Linearizable => Checked {
            verdict: "linearizable".into(),
            ok: true,
            failure: None,
            file,
        },
        Verdict::Unknown => Checked {
            verdict: "unknown".into(),
            ok: false,
            failure: None,
            file,
        },
        Verdict::NotLinearizable(f) => Checked {
            verdict: "not linearizable".into(),
            ok: false,
            failure: Some(format!(
                "key {:?}: {} operations linearized; none of these fits next: {}",
                names.get(f.partition as usize).cloned().unwrap_or_default(),
                f.linearized.len(),
                f.unplaced.iter().map(show).collect::<Vec<_>>().join("; ")
            )),
            file,
        },
    })
}
