//! Readers for recorded histories.
//!
//! - **Jepsen etcd logs** ([`parse_jepsen`]): `INFO  jepsen.util - P :TYPE :F VALUE` lines of a
//!   register that starts as `nil`, as Porcupine and Knossos read them: `:invoke` opens an operation,
//!   `:ok` closes it with its result, `:fail :cas` is a compare-and-set that did not match (it returned
//!   false), `:fail :read` is a read whose result is unknown, `:fail` of a write did not happen, and
//!   `:info` leaves the operation open to the end of the history (it may or may not take effect).
//! - **Knossos EDN histories** ([`parse_knossos_edn`]): op maps `{:process P, :type :invoke,
//!   :f :cas, :value [1 2]}` in one vector (or one a line), as Knossos and Jepsen write them, with
//!   the same meanings as Jepsen's logs; the register starts as `nil` unless told otherwise.
//! - **Porcupine KV logs** ([`parse_porcupine_kv`]): EDN maps
//!   `{:process P, :type :invoke, :f :append, :key "K", :value "V"}` with `:get`, `:put` and `:append`
//!   on string keys whose values start as `""`.
//! - **jsonl**, the workbench's own format ([`parse_jsonl_register`], [`parse_jsonl_kv`]): one JSON
//!   object per line, `{"process": 3, "type": "invoke"|"ok"|"fail"|"info", "f": F, "key": K,
//!   "value": V}`, with the Jepsen meanings of the types. Register histories use `f` = `read` (value
//!   `null` on invoke, the integer read or `null` on `ok`), `write` (an integer) and `cas` (`[from,
//!   to]`; `ok` means it took effect, `fail` that it did not match); `key` is absent. KV histories use
//!   `f` = `get` (value `null` on invoke, the string read on `ok`), `put` and `append` (a string), with a
//!   string `key`. Lines are in real-time order: an event's position is its time.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::history::{Completion, History, HistoryBuilder};
use super::spec::{KvInput, KvOp, KvOutput, RegisterInput, RegisterOutput};

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

fn err(line: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        line,
        reason: reason.into(),
    }
}

/// The non-blank lines of a history, with their 1-based numbers.
fn event_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, raw)| (i + 1, raw))
        .filter(|(_, raw)| !raw.trim().is_empty())
}

/// The event types of Jepsen histories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

/// A register history with the keys of a KV history: `keys[k]` names partition `k`.
pub type KvHistory = (History<KvInput, KvOutput>, Vec<String>);

fn register_f(input: &RegisterInput) -> &'static str {
    match input {
        RegisterInput::Read => "read",
        RegisterInput::Write(_) => "write",
        RegisterInput::Cas { .. } => "cas",
    }
}

fn kv_f(op: &KvOp) -> &'static str {
    match op {
        KvOp::Get => "get",
        KvOp::Put(_) => "put",
        KvOp::Append(_) => "append",
    }
}

/// Applies one register event to `b`. `value` is the event's value as read from the line.
fn register_event(
    b: &mut HistoryBuilder<RegisterInput, RegisterOutput>,
    line: usize,
    process: u64,
    ty: EventType,
    f: &str,
    value: RegValue,
    cas_allowed: bool,
) -> Result<(), ParseError> {
    if ty == EventType::Invoke {
        let input = match (f, value) {
            ("read", _) => RegisterInput::Read,
            ("write", RegValue::Int(v)) => RegisterInput::Write(v),
            ("cas", RegValue::Pair(from, to)) if cas_allowed => RegisterInput::Cas { from, to },
            ("cas", _) if !cas_allowed => {
                return Err(err(
                    line,
                    "a plain register has no cas: use the cas-register model",
                ))
            }
            _ => return Err(err(line, format!("invalid value for an invoked {f}"))),
        };
        return b
            .invoke(process, input)
            .map_err(|e| err(line, e.to_string()));
    }
    let open = b.open_input(process).ok_or_else(|| {
        err(
            line,
            format!("process {process} completes an operation it never invoked"),
        )
    })?;
    if register_f(open) != f {
        return Err(err(
            line,
            format!(
                "process {process} invoked a {} but completes a {f}",
                register_f(open)
            ),
        ));
    }
    let completion = match (ty, f, value) {
        (EventType::Info, _, _) => Completion::Indefinite,
        (EventType::Ok, "read", RegValue::Nil) => Completion::Ok(RegisterOutput::Read(None)),
        (EventType::Ok, "read", RegValue::Int(v)) => Completion::Ok(RegisterOutput::Read(Some(v))),
        (EventType::Ok, "write", _) => Completion::Ok(RegisterOutput::Write),
        (EventType::Ok, "cas", _) => Completion::Ok(RegisterOutput::Cas(true)),
        (EventType::Fail, "cas", _) => Completion::Ok(RegisterOutput::Cas(false)),
        (EventType::Fail, "read", _) => Completion::Unknown,
        (EventType::Fail, "write", _) => Completion::Failed,
        _ => return Err(err(line, format!("invalid value for a completed {f}"))),
    };
    b.complete(process, completion)
        .map_err(|e| err(line, e.to_string()))
}

#[derive(Clone, Copy, Debug)]
enum RegValue {
    Nil,
    Int(i64),
    Pair(i64, i64),
    Other,
}

/// Reads a Jepsen etcd log (see the module documentation). `cas_allowed`: a compare-and-set
/// register (`false` rejects `:cas` operations).
pub fn parse_jepsen(
    text: &str,
    cas_allowed: bool,
) -> Result<History<RegisterInput, RegisterOutput>, ParseError> {
    let mut b = HistoryBuilder::new();
    for (line, raw) in event_lines(text) {
        let rest = raw
            .split_once("jepsen.util - ")
            .map(|(_, r)| r)
            .ok_or_else(|| {
                err(
                    line,
                    "not a Jepsen event (expected `INFO  jepsen.util - P :type :f value`)",
                )
            })?;
        // Fields are separated by tabs or runs of spaces (both occur in Jepsen's logs); the value
        // of a cas, `[1 2]`, contains a space itself.
        let mut fields = rest.split_whitespace();
        let (Some(process), Some(ty), Some(f)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(err(
                line,
                "expected `P :type :f value` after `jepsen.util - `",
            ));
        };
        let value = fields.collect::<Vec<_>>().join(" ");
        let value = value.as_str();
        let process: u64 = process
            .parse()
            .map_err(|_| err(line, format!("process '{process}' is not a number")))?;
        let ty = ty
            .strip_prefix(':')
            .and_then(EventType::parse)
            .ok_or_else(|| err(line, format!("unknown event type '{ty}'")))?;
        let f = f
            .strip_prefix(':')
            .filter(|f| ["read", "write", "cas"].contains(f))
            .ok_or_else(|| {
                err(
                    line,
                    format!("unknown operation '{f}' (expected :read, :write or :cas)"),
                )
            })?;
        let value = if value == "nil" {
            RegValue::Nil
        } else if let Ok(v) = value.parse() {
            RegValue::Int(v)
        } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            let nums: Vec<&str> = inner.split_whitespace().collect();
            match nums[..] {
                [a, b] => match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) => RegValue::Pair(a, b),
                    _ => return Err(err(line, format!("invalid cas value '{value}'"))),
                },
                _ => return Err(err(line, format!("invalid cas value '{value}'"))),
            }
        } else {
            RegValue::Other
        };
        register_event(&mut b, line, process, ty, f, value, cas_allowed)?;
    }
    Ok(b.finish())
}

/// The process that writes a Knossos history's `--initial` value before anything else.
pub const INITIAL_PROCESS: u64 = u64::MAX;

/// Reads a Knossos register history in EDN (see the module documentation): op maps with
/// `:process`, `:type`, `:f` and `:value`, in a vector or one a line. Ops of processes that are
/// not integers (Jepsen's `:nemesis`) are left out. With `initial`, the register starts with
/// that value rather than `nil`: a write of it by [`INITIAL_PROCESS`] completes before the
/// first op.
pub fn parse_knossos_edn(
    text: &str,
    cas_allowed: bool,
    initial: Option<i64>,
) -> Result<History<RegisterInput, RegisterOutput>, ParseError> {
    use crate::edn::{read_ops, Edn};
    let ops = read_ops(text).map_err(|e| err(e.line, e.reason))?;
    let mut b = HistoryBuilder::new();
    if let Some(v) = initial {
        b.invoke(INITIAL_PROCESS, RegisterInput::Write(v))
            .and_then(|()| b.complete(INITIAL_PROCESS, Completion::Ok(RegisterOutput::Write)))
            .map_err(|e| err(0, e.to_string()))?;
    }
    for (line, op) in ops {
        if !matches!(op, Edn::Map(_) | Edn::Tagged(..)) {
            return Err(err(line, format!("an op must be a map, not {op}")));
        }
        let field = |name: &str| {
            op.get(name)
                .ok_or_else(|| err(line, format!("missing :{name}")))
        };
        let process = match field("process")? {
            Edn::Int(p) if *p >= 0 => *p as u64,
            Edn::Keyword(_) => continue,
            other => {
                return Err(err(
                    line,
                    format!(":process {other} is not a process number"),
                ))
            }
        };
        let ty = match field("type")? {
            Edn::Keyword(t) => EventType::parse(t),
            _ => None,
        }
        .ok_or_else(|| err(line, ":type must be :invoke, :ok, :fail or :info"))?;
        let f = match field("f")? {
            Edn::Keyword(f) if ["read", "write", "cas"].contains(&f.as_str()) => f.as_str(),
            other => {
                return Err(err(
                    line,
                    format!("unknown :f {other} (expected :read, :write or :cas)"),
                ))
            }
        };
        let value = match op.get("value").unwrap_or(&Edn::Nil) {
            Edn::Nil => RegValue::Nil,
            Edn::Int(v) => RegValue::Int(*v),
            Edn::Vector(pair) | Edn::List(pair) => match pair[..] {
                [Edn::Int(a), Edn::Int(b)] => RegValue::Pair(a, b),
                _ => RegValue::Other,
            },
            _ => RegValue::Other,
        };
        register_event(&mut b, line, process, ty, f, value, cas_allowed)?;
    }
    Ok(b.finish())
}

/// Interns KV keys as partition numbers.
#[derive(Default)]
struct Keys {
    ids: HashMap<String, u64>,
    names: Vec<String>,
}

impl Keys {
    fn id(&mut self, key: &str) -> u64 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.names.len() as u64;
        self.names.push(key.to_string());
        self.ids.insert(key.to_string(), id);
        id
    }
}

/// One event of a KV history, as read from a line.
struct KvEvent<'a> {
    line: usize,
    process: u64,
    ty: EventType,
    f: &'a str,
    key: &'a str,
    value: Option<String>,
}

fn kv_event(
    b: &mut HistoryBuilder<KvInput, KvOutput>,
    keys: &mut Keys,
    event: KvEvent<'_>,
) -> Result<(), ParseError> {
    let KvEvent {
        line,
        process,
        ty,
        f,
        key,
        value,
    } = event;
    if ty == EventType::Invoke {
        let op = match (f, value) {
            ("get", _) => KvOp::Get,
            ("put", Some(v)) => KvOp::Put(v),
            ("append", Some(v)) => KvOp::Append(v),
            _ => return Err(err(line, format!("an invoked {f} needs a string value"))),
        };
        let input = KvInput {
            key: keys.id(key),
            op,
        };
        return b
            .invoke(process, input)
            .map_err(|e| err(line, e.to_string()));
    }
    let open = b.open_input(process).ok_or_else(|| {
        err(
            line,
            format!("process {process} completes an operation it never invoked"),
        )
    })?;
    if kv_f(&open.op) != f || keys.names[open.key as usize] != key {
        return Err(err(
            line,
            format!(
                "process {process} invoked {} on key {:?} but completes {f} on key {key:?}",
                kv_f(&open.op),
                keys.names[open.key as usize]
            ),
        ));
    }
    let completion = match (ty, f) {
        (EventType::Info, _) => Completion::Indefinite,
        (EventType::Ok, "get") => Completion::Ok(KvOutput::Get(value.unwrap_or_default())),
        (EventType::Ok, "put") => Completion::Ok(KvOutput::Put),
        (EventType::Ok, "append") => Completion::Ok(KvOutput::Append),
        (EventType::Fail, "get") => Completion::Unknown,
        (EventType::Fail, _) => Completion::Failed,
        _ => return Err(err(line, format!("invalid completion of {f}"))),
    };
    b.complete(process, completion)
        .map_err(|e| err(line, e.to_string()))
}

/// Reads a Porcupine KV log (see the module documentation). Returns the history and the key names.
pub fn parse_porcupine_kv(text: &str) -> Result<KvHistory, ParseError> {
    let mut b = HistoryBuilder::new();
    let mut keys = Keys::default();
    for (line, raw) in event_lines(text) {
        let fields = parse_edn_map(raw).map_err(|reason| err(line, reason))?;
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
                .ok_or_else(|| err(line, format!("missing :{name}")))
        };
        let process: u64 = match get("process")? {
            Edn::Token(t) => t
                .parse()
                .map_err(|_| err(line, format!(":process '{t}' is not a number")))?,
            _ => return Err(err(line, ":process is not a number")),
        };
        let ty = match get("type")? {
            Edn::Token(t) => t.strip_prefix(':').and_then(EventType::parse),
            _ => None,
        }
        .ok_or_else(|| err(line, ":type must be :invoke, :ok, :fail or :info"))?;
        let f = match get("f")? {
            Edn::Token(t) => t
                .strip_prefix(':')
                .filter(|f| ["get", "put", "append"].contains(f)),
            _ => None,
        }
        .ok_or_else(|| err(line, ":f must be :get, :put or :append"))?;
        let key = match get("key")? {
            Edn::Str(s) => s.clone(),
            _ => return Err(err(line, ":key must be a string")),
        };
        let value = match get("value")? {
            Edn::Str(s) => Some(s.clone()),
            Edn::Token(t) if t == "nil" => None,
            _ => return Err(err(line, ":value must be a string or nil")),
        };
        let event = KvEvent {
            line,
            process,
            ty,
            f,
            key: &key,
            value,
        };
        kv_event(&mut b, &mut keys, event)?;
    }
    Ok((b.finish(), keys.names))
}

#[derive(Debug)]
enum Edn {
    Str(String),
    Token(String),
}

/// Parses a flat EDN map of keywords to strings or bare tokens: `{:a 1, :b "x", :c :d}`.
fn parse_edn_map(line: &str) -> Result<Vec<(String, Edn)>, String> {
    let inner = line
        .trim()
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .ok_or("expected an EDN map {...}")?;
    let mut chars = inner.chars().peekable();
    let mut fields = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(c) = chars.next() else { break };
        if c != ':' {
            return Err(format!("expected a keyword, found '{c}'"));
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let value = match chars.peek() {
            Some('"') => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(c) => s.push(c),
                            None => return Err("unterminated string".into()),
                        },
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                Edn::Str(s)
            }
            Some(_) => {
                let mut t = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == ',' {
                        break;
                    }
                    t.push(c);
                    chars.next();
                }
                Edn::Token(t)
            }
            None => return Err(format!("keyword :{name} has no value")),
        };
        fields.push((name, value));
    }
    Ok(fields)
}

/// The fields every jsonl event has.
fn jsonl_event(
    line: usize,
    raw: &str,
) -> Result<(serde_json::Map<String, Json>, u64, EventType, String), ParseError> {
    let v: Json = serde_json::from_str(raw).map_err(|e| err(line, format!("invalid JSON: {e}")))?;
    let Json::Object(map) = v else {
        return Err(err(line, "expected a JSON object"));
    };
    let process = map
        .get("process")
        .and_then(Json::as_u64)
        .ok_or_else(|| err(line, "\"process\" must be a non-negative integer"))?;
    let ty = map
        .get("type")
        .and_then(Json::as_str)
        .and_then(EventType::parse)
        .ok_or_else(|| {
            err(
                line,
                "\"type\" must be \"invoke\", \"ok\", \"fail\" or \"info\"",
            )
        })?;
    let f = map
        .get("f")
        .and_then(Json::as_str)
        .ok_or_else(|| err(line, "\"f\" must be a string"))?
        .to_string();
    Ok((map, process, ty, f))
}

/// Reads a register history in the jsonl format (see the module documentation).
pub fn parse_jsonl_register(
    text: &str,
    cas_allowed: bool,
) -> Result<History<RegisterInput, RegisterOutput>, ParseError> {
    let mut b = HistoryBuilder::new();
    for (line, raw) in event_lines(text) {
        let (map, process, ty, f) = jsonl_event(line, raw)?;
        if !["read", "write", "cas"].contains(&f.as_str()) {
            return Err(err(
                line,
                format!("unknown \"f\" {f:?} (expected read, write or cas)"),
            ));
        }
        let value = match map.get("value") {
            None | Some(Json::Null) => RegValue::Nil,
            Some(Json::Number(n)) => n.as_i64().map_or(RegValue::Other, RegValue::Int),
            Some(Json::Array(a)) => match (
                a.first().and_then(Json::as_i64),
                a.get(1).and_then(Json::as_i64),
            ) {
                (Some(from), Some(to)) if a.len() == 2 => RegValue::Pair(from, to),
                _ => RegValue::Other,
            },
            Some(_) => RegValue::Other,
        };
        register_event(&mut b, line, process, ty, &f, value, cas_allowed)?;
    }
    Ok(b.finish())
}

/// Reads a KV history in the jsonl format (see the module documentation).
pub fn parse_jsonl_kv(text: &str) -> Result<KvHistory, ParseError> {
    let mut b = HistoryBuilder::new();
    let mut keys = Keys::default();
    for (line, raw) in event_lines(text) {
        let (map, process, ty, f) = jsonl_event(line, raw)?;
        if !["get", "put", "append"].contains(&f.as_str()) {
            return Err(err(
                line,
                format!("unknown \"f\" {f:?} (expected get, put or append)"),
            ));
        }
        let key = map
            .get("key")
            .and_then(Json::as_str)
            .ok_or_else(|| err(line, "\"key\" must be a string"))?;
        let value = match map.get("value") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => return Err(err(line, "\"value\" must be a string or null")),
        };
        let event = KvEvent {
            line,
            process,
            ty,
            f: &f,
            key,
            value,
        };
        kv_event(&mut b, &mut keys, event)?;
    }
    Ok((b.finish(), keys.names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jepsen_events_as_porcupine_does() {
        let log = "INFO  jepsen.util - 0\t:invoke\t:write\t3\n\
                   INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n\
                   INFO  jepsen.util - 0\t:ok\t:write\t3\n\
                   INFO  jepsen.util - 1\t:fail\t:cas\t[3 4]\n\
                   INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 2\t:info\t:read\t:timed-out\n";
        let h = parse_jepsen(log, true).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h.ops[0].input, RegisterInput::Write(3));
        assert_eq!((h.ops[0].call, h.ops[0].ret), (1, 3));
        assert_eq!(h.ops[1].output, Some(RegisterOutput::Cas(false)));
        assert_eq!(h.ops[2].ret, u64::MAX);
        assert_eq!(h.ops[2].output, None);
    }

    #[test]
    fn jepsen_errors_name_the_line() {
        let e =
            parse_jepsen("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nhello\n", true).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_jepsen("INFO  jepsen.util - 0\t:ok\t:read\t3\n", true).unwrap_err();
        assert!(e.reason.contains("never invoked"), "{e}");
        let e = parse_jepsen("INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\n", false).unwrap_err();
        assert!(e.reason.contains("cas-register"), "{e}");
        let e = parse_jepsen(
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1\n",
            true,
        )
        .unwrap_err();
        assert!(e.reason.contains("invoked a read"), "{e}");
    }

    #[test]
    fn reads_porcupine_kv_maps() {
        let log = "{:process 1, :type :invoke, :f :append, :key \"k\", :value \"x 1 0 y\"}\n\
                   {:process 2, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                   {:process 1, :type :ok, :f :append, :key \"k\", :value \"x 1 0 y\"}\n\
                   {:process 2, :type :ok, :f :get, :key \"k\", :value \"x 1 0 y\"}\n";
        let (h, keys) = parse_porcupine_kv(log).unwrap();
        assert_eq!(keys, vec!["k".to_string()]);
        assert_eq!(h.ops[1].output, Some(KvOutput::Get("x 1 0 y".into())));
        let e = parse_porcupine_kv("{:process 1, :type :invoke}\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains(":f"), "{e}");
    }

    #[test]
    fn reads_jsonl() {
        let log = r#"{"process":0,"type":"invoke","f":"cas","value":[1,2]}
{"process":0,"type":"ok","f":"cas","value":[1,2]}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":2}
"#;
        let h = parse_jsonl_register(log, true).unwrap();
        assert_eq!(h.ops[0].input, RegisterInput::Cas { from: 1, to: 2 });
        assert_eq!(h.ops[1].output, Some(RegisterOutput::Read(Some(2))));
        let kv = r#"{"process":0,"type":"invoke","f":"put","key":"a","value":"1"}
{"process":0,"type":"info","f":"put","key":"a","value":"1"}
"#;
        let (h, _) = parse_jsonl_kv(kv).unwrap();
        assert_eq!(h.ops[0].ret, u64::MAX);
        let e = parse_jsonl_kv("{\"process\":0}\n{oops\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_jsonl_kv("\n{oops\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("invalid JSON"));
    }
}
