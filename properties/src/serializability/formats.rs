//! The `jsonl` transaction format, and the well-formedness rules every history must follow.
//!
//! One transaction per line:
//!
//! ```text
//! {"id": 3, "status": "committed", "start": 10, "end": 25, "ops": [["r", "x", 0], ["w", "x", 4]]}
//! ```
//!
//! - `id`: a non-negative integer, unique in the file;
//! - `status`: `"committed"` or `"aborted"`;
//! - `start`, `end` (optional): real times (any unit, integers) at which the transaction started
//!   and ended, for strict serializability; `end` must not come before `start`;
//! - `ops`: in program order, `["r", KEY, VERSION]` for a read that observed `VERSION` of the string
//!   `KEY` (0: the initial version) and `["w", KEY, VERSION]` for a write that installed it. A version
//!   is a positive integer unique among the writes of its key; committed transactions' final writes
//!   are installed in increasing version order.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

use serde_json::Value as Json;

use super::{Op, Txn};
use crate::linearizability::formats::ParseError;

/// Checks the rules of the module documentation that do not depend on the encoding: unique ids, no
/// write of version 0, unique versions per key, `start <= end`.
pub fn validate<K: Debug + Eq + Hash>(txns: &[Txn<K>]) -> Result<(), String> {
    let mut rules = Rules::default();
    txns.iter().try_for_each(|t| rules.add(t))
}

/// The rules, checked one transaction at a time.
struct Rules<'a, K> {
    ids: HashSet<u64>,
    /// Per key, the writer of each version.
    versions: HashMap<&'a K, HashMap<u64, u64>>,
}

impl<K> Default for Rules<'_, K> {
    fn default() -> Self {
        Rules {
            ids: HashSet::new(),
            versions: HashMap::new(),
        }
    }
}

impl<'a, K: Debug + Eq + Hash> Rules<'a, K> {
    fn add(&mut self, t: &'a Txn<K>) -> Result<(), String> {
        if !self.ids.insert(t.id) {
            return Err(format!("transaction id {} appears twice", t.id));
        }
        if let (Some(s), Some(e)) = (t.start, t.end) {
            if e < s {
                return Err(format!("T{} ends ({e}) before it starts ({s})", t.id));
            }
        }
        for op in &t.ops {
            if let Op::Write { key, version } = op {
                if *version == 0 {
                    return Err(format!(
                        "T{} writes version 0 of {key:?}, the initial version",
                        t.id
                    ));
                }
                let writers = self.versions.entry(key).or_default();
                if let Some(other) = writers.insert(*version, t.id) {
                    return Err(format!(
                        "version {version} of {key:?} is written twice (T{other} and T{})",
                        t.id
                    ));
                }
            }
        }
        Ok(())
    }
}

fn err(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        line,
        reason: reason.into(),
    }
}

/// Reads a history in the `jsonl` format; the error names the line and what is wrong with it.
pub fn parse_jsonl_txns(text: &str) -> Result<Vec<Txn<String>>, ParseError> {
    let txns = parse_jsonl_txns_with(text, |_, _| Ok(()))?;
    Ok(txns.into_iter().map(|(t, ())| t).collect())
}

/// Reads a history in the `jsonl` format whose lines carry more fields, which `extra` reads from
/// each line's object (given the line number, for its errors). Formats built on this one, such as
/// [`crate::causal::formats`], share its fields and rules.
pub fn parse_jsonl_txns_with<T>(
    text: &str,
    mut extra: impl FnMut(usize, &JsonObject) -> Result<T, ParseError>,
) -> Result<Vec<(Txn<String>, T)>, ParseError> {
    let mut txns = Vec::new();
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let map = parse_object(line, raw)?;
        let t = parse_txn(line, &map)?;
        txns.push((t, extra(line, &map)?));
        lines.push(line);
    }
    let mut rules = Rules::default();
    for ((t, _), line) in txns.iter().zip(&lines) {
        rules.add(t).map_err(|e| err(*line, e))?;
    }
    Ok(txns)
}

/// One line's JSON object.
pub type JsonObject = serde_json::Map<String, Json>;

fn parse_object(line: usize, raw: &str) -> Result<JsonObject, ParseError> {
    let v: Json = serde_json::from_str(raw).map_err(|e| err(line, format!("invalid JSON: {e}")))?;
    match v {
        Json::Object(map) => Ok(map),
        _ => Err(err(line, "expected a JSON object")),
    }
}

fn parse_txn(line: usize, map: &JsonObject) -> Result<Txn<String>, ParseError> {
    let id = map
        .get("id")
        .and_then(Json::as_u64)
        .ok_or_else(|| err(line, "\"id\" must be a non-negative integer"))?;
    let committed = match map.get("status").and_then(Json::as_str) {
        Some("committed") => true,
        Some("aborted") => false,
        _ => return Err(err(line, "\"status\" must be \"committed\" or \"aborted\"")),
    };
    let time = |field: &str| match map.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| err(line, format!("\"{field}\" must be a non-negative integer"))),
    };
    let (start, end) = (time("start")?, time("end")?);
    let ops_json = map
        .get("ops")
        .and_then(Json::as_array)
        .ok_or_else(|| err(line, "\"ops\" must be an array"))?;
    let mut ops = Vec::with_capacity(ops_json.len());
    for (k, op) in ops_json.iter().enumerate() {
        let bad = || {
            err(
                line,
                format!("op {k}: expected [\"r\" or \"w\", key string, version integer]"),
            )
        };
        let parts = op.as_array().filter(|p| p.len() == 3).ok_or_else(bad)?;
        let key = parts[1].as_str().ok_or_else(bad)?.to_string();
        let version = parts[2].as_u64().ok_or_else(bad)?;
        ops.push(match parts[0].as_str() {
            Some("r") => Op::Read { key, version },
            Some("w") => Op::Write { key, version },
            _ => return Err(bad()),
        });
    }
    Ok(Txn {
        id,
        ops,
        committed,
        start,
        end,
    })
}
