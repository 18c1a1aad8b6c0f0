//! Reading list-append histories: Elle's EDN (as Jepsen writes `history.edn`) and its JSON form.

use std::collections::{HashMap, VecDeque};

use serde_json::Value as Json;

use super::{Atom, History, Mop, Status, Txn};
use crate::edn::{for_each_op, Edn, EdnError};
use crate::linearizability::formats::ParseError;

/// How a list-append history is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// EDN op maps, in a vector or one a line.
    Edn,
    /// JSON objects, in an array or one a line.
    Json,
}

fn err(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        line,
        reason: reason.into(),
    }
}

/// Reads `text` in `format`, or in the format it looks like when `None`: JSON when its first op
/// opens with `{"`, EDN otherwise.
pub fn parse(text: &str, format: Option<Format>) -> Result<History, ParseError> {
    match format.unwrap_or_else(|| guess(text)) {
        Format::Edn => parse_edn(text),
        Format::Json => parse_json(text),
    }
}

/// The format `text` looks like: `"json"` when its first op opens with `{"`, `"edn"` otherwise.
pub fn detect(text: &str) -> &'static str {
    match guess(text) {
        Format::Edn => "edn",
        Format::Json => "json",
    }
}

fn guess(text: &str) -> Format {
    let mut rest = text.trim_start();
    if let Some(r) = rest.strip_prefix('[') {
        rest = r.trim_start();
    }
    match rest.strip_prefix('{') {
        Some(r) if r.trim_start().starts_with('"') => Format::Json,
        _ => Format::Edn,
    }
}

/// Reads an EDN list-append history.
pub fn parse_edn(text: &str) -> Result<History, ParseError> {
    // One op map at a time: a history's EDN tree is many times the size of its transactions.
    let mut raw = Vec::new();
    let mut operations = 0;
    for_each_op(text, |line, op| {
        operations += 1;
        if let Some(r) = raw_op(line, &op)? {
            raw.push(r);
        }
        Ok::<(), ParseError>(())
    })?;
    build(raw, operations)
}

/// Reads Elle's JSON form: one object a line, or an array of objects, with the fields of the EDN
/// op maps (`"type": "ok"`, `"value": [["append", 1, 2], ["r", 1, [2]]]`).
pub fn parse_json(text: &str) -> Result<History, ParseError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut ops = Vec::new();
    if text.trim_start().starts_with('[') {
        let all: Vec<Json> =
            serde_json::from_str(text).map_err(|e| err(e.line(), e.to_string()))?;
        let starts = array_element_offsets(text);
        for (i, v) in all.into_iter().enumerate() {
            let line = starts.get(i).map_or(0, |o| line_of(*o));
            ops.push((line, to_edn(v)));
        }
    } else {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Json>();
        let mut offset = 0;
        while let Some(next) = stream.next() {
            let start = offset + text[offset..].len() - text[offset..].trim_start().len();
            let v = next.map_err(|e| err(e.line(), e.to_string()))?;
            ops.push((line_of(start), to_edn(v)));
            offset = stream.byte_offset();
        }
    }
    let mut raw = Vec::with_capacity(ops.len());
    for (line, op) in &ops {
        if let Some(r) = raw_op(*line, op)? {
            raw.push(r);
        }
    }
    build(raw, ops.len())
}

impl From<EdnError> for ParseError {
    fn from(e: EdnError) -> Self {
        err(e.line, e.reason)
    }
}

/// Where each element of the top-level JSON array `text` starts (for line numbers).
fn array_element_offsets(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut escaped, mut expecting) = (0usize, false, false, false);
    for (i, c) in text.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && expecting && !c.is_whitespace() && c != ']' {
            out.push(i);
            expecting = false;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    out
}

/// A JSON value as the EDN the op reader takes: object keys become keywords.
fn to_edn(v: Json) -> Edn {
    match v {
        Json::Null => Edn::Nil,
        Json::Bool(b) => Edn::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Edn::Int(i),
            None => Edn::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Edn::Str(s),
        Json::Array(items) => Edn::Vector(items.into_iter().map(to_edn).collect()),
        Json::Object(fields) => Edn::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Edn::Keyword(k), to_edn(v)))
                .collect(),
        ),
    }
}

/// A keyword's name, or a string (JSON's spelling of a keyword).
fn word(v: &Edn) -> Option<&str> {
    match v {
        Edn::Keyword(s) | Edn::Str(s) => Some(s),
        _ => None,
    }
}

fn atom(v: &Edn) -> Atom {
    match v {
        Edn::Int(i) => Atom::Int(*i),
        Edn::Str(s) => Atom::Other(s.clone()),
        other => Atom::Other(other.to_string()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Invoke,
    Complete(Status),
}

struct RawOp {
    line: usize,
    process: Option<i64>,
    ty: Type,
    index: Option<i64>,
    mops: Vec<Mop>,
}

fn read_mops(line: usize, value: Option<&Edn>, ok: bool) -> Result<Vec<Mop>, ParseError> {
    let items = match value {
        None | Some(Edn::Nil) => return Ok(Vec::new()),
        Some(v) => v
            .items()
            .ok_or_else(|| err(line, format!(":value {v} is not a vector of micro-ops")))?,
    };
    let mut out = Vec::with_capacity(items.len());
    for m in items {
        let parts = m.items().unwrap_or(&[]);
        let bad = || {
            err(
                line,
                format!("micro-op {m} is neither [:append k v] nor [:r k [v ...]]"),
            )
        };
        let [f, k, v] = parts else {
            return Err(bad());
        };
        out.push(match word(f) {
            Some("append") => Mop::Append(atom(k), atom(v)),
            Some("r") => match v {
                Edn::Nil => Mop::Read(atom(k), ok.then(Vec::new)),
                _ => Mop::Read(
                    atom(k),
                    Some(v.items().ok_or_else(bad)?.iter().map(atom).collect()),
                ),
            },
            _ => return Err(bad()),
        });
    }
    Ok(out)
}

fn raw_op(line: usize, op: &Edn) -> Result<Option<RawOp>, ParseError> {
    if !matches!(op, Edn::Map(_) | Edn::Tagged(..)) {
        return Err(err(line, format!("an op must be a map, not {op}")));
    }
    let process = match op.get("process") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Int(p)) => Some(*p),
        // Jepsen's nemesis and other non-client processes.
        Some(Edn::Keyword(_) | Edn::Str(_)) => return Ok(None),
        Some(other) => {
            return Err(err(
                line,
                format!(":process {other} is not a process number"),
            ))
        }
    };
    match op.get("f") {
        None => {}
        Some(f) if word(f) == Some("txn") => {}
        Some(other) => {
            return Err(err(
                line,
                format!("unknown :f {other} (a list-append op is a :txn)"),
            ))
        }
    }
    let ty = match op.get("type").and_then(word) {
        Some("invoke") => Type::Invoke,
        Some("ok") => Type::Complete(Status::Ok),
        Some("fail") => Type::Complete(Status::Fail),
        Some("info") => Type::Complete(Status::Info),
        Some(other) => {
            return Err(err(
                line,
                format!(":type :{other} is not :invoke, :ok, :fail or :info"),
            ))
        }
        None => return Err(err(line, "missing :type")),
    };
    let index = match op.get("index") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Int(i)) => Some(*i),
        Some(other) => return Err(err(line, format!(":index {other} is not an integer"))),
    };
    let mops = read_mops(line, op.get("value"), ty == Type::Complete(Status::Ok))?;
    Ok(Some(RawOp {
        line,
        process,
        ty,
        index,
        mops,
    }))
}

/// Whether `done` is what `invoked` became: the same micro-ops, reads filled in.
fn same_shape(invoked: &[Mop], done: &[Mop]) -> bool {
    invoked.len() == done.len()
        && invoked.iter().zip(done).all(|(a, b)| match (a, b) {
            (Mop::Append(k, v), Mop::Append(k2, v2)) => k == k2 && v == v2,
            (Mop::Read(k, _), Mop::Read(k2, _)) => k == k2,
            _ => false,
        })
}

/// Pairs invocations and completions into transactions; `operations` is how many op maps the
/// file held.
fn build(raw: Vec<RawOp>, operations: usize) -> Result<History, ParseError> {
    let by_index = !raw.is_empty() && raw.iter().all(|r| r.index.is_some());
    let mut txns: Vec<Txn> = Vec::new();
    let mut open: HashMap<i64, usize> = HashMap::new();
    let mut open_anonymous: VecDeque<usize> = VecDeque::new();
    for (pos, r) in raw.into_iter().enumerate() {
        let time = if by_index {
            r.index.unwrap_or(0).max(0) as u64
        } else {
            pos as u64
        };
        match r.ty {
            Type::Invoke => {
                let slot = txns.len();
                if let Some(p) = r.process {
                    if let Some(&prev) = open.get(&p) {
                        return Err(err(
                            r.line,
                            format!(
                                "process {p} invoked a transaction before its invocation on line \
                                 {} completed",
                                txns[prev].line
                            ),
                        ));
                    }
                    open.insert(p, slot);
                } else {
                    open_anonymous.push_back(slot);
                }
                txns.push(Txn {
                    id: slot as u64 + 1,
                    index: r.index,
                    process: r.process,
                    status: Status::Info,
                    mops: r.mops,
                    invoked: Some(time),
                    completed: None,
                    line: r.line,
                });
            }
            Type::Complete(status) => {
                let slot = match r.process {
                    Some(p) => open.remove(&p),
                    None => open_anonymous.pop_front(),
                };
                let Some(slot) = slot else {
                    // A completion without its invocation (a history of completions only).
                    txns.push(Txn {
                        id: txns.len() as u64 + 1,
                        index: r.index,
                        process: r.process,
                        status,
                        mops: r.mops,
                        invoked: None,
                        completed: (status == Status::Ok).then_some(time),
                        line: r.line,
                    });
                    continue;
                };
                let t = &mut txns[slot];
                if !r.mops.is_empty() || status == Status::Ok {
                    if !same_shape(&t.mops, &r.mops) {
                        return Err(err(
                            r.line,
                            format!(
                                "this completion's :value does not match its invocation's (line {})",
                                t.line
                            ),
                        ));
                    }
                    t.mops = r.mops;
                }
                t.status = status;
                t.completed = (status != Status::Info).then_some(time);
                t.line = r.line;
            }
        }
    }
    // Appends are unique per key: Elle's traceability rests on it.
    let mut appended: HashMap<(&Atom, &Atom), &Txn> = HashMap::new();
    for t in &txns {
        for m in &t.mops {
            if let Mop::Append(k, v) = m {
                if let Some(first) = appended.insert((k, v), t) {
                    return Err(err(
                        t.line,
                        format!(
                            "element {v} is appended to key {k} twice (also on line {}): \
                             appends must be unique",
                            first.line
                        ),
                    ));
                }
            }
        }
    }
    Ok(History {
        txns,
        operations,
        times_are_indices: by_index,
    })
}
