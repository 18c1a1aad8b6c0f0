//! The `jsonl` format of causal histories: the transaction format of
//! [`crate::serializability::formats`] with one more field per line, `"session"`.
//!
//! ```text
//! {"id": 3, "session": 1, "status": "committed", "ops": [["r", "x", 0], ["w", "y", 4]]}
//! ```
//!
//! - `session`: a non-negative integer; a session's transactions, in file order, are its program
//!   order (a client's operations, one after another);
//! - `id`, `status`, `ops` and the rules on them are the transaction format's (`start` and `end`
//!   are read and ignored). A plain get or put is a transaction of one operation.
//!
//! Versions only name writes here: a version's number says nothing of its order. Aborted
//! transactions are dropped, so a read of one of their versions is a
//! [`ThinAirRead`](super::Pattern::ThinAirRead).

use serde_json::Value as Json;

use super::{Kind, Op, Txn};
use crate::linearizability::formats::ParseError;
use crate::serializability;
use crate::serializability::formats::parse_jsonl_txns_with;

/// Reads a causal history in the `jsonl` format: its committed transactions, in file order. The
/// error names the line and what is wrong with it.
pub fn parse_jsonl_sessions(text: &str) -> Result<Vec<Txn>, ParseError> {
    let txns = parse_jsonl_txns_with(text, |line, map| {
        map.get("session")
            .and_then(Json::as_u64)
            .ok_or_else(|| ParseError {
                line,
                reason: "\"session\" must be a non-negative integer".to_string(),
            })
    })?;
    Ok(txns
        .into_iter()
        .filter(|(t, _)| t.committed)
        .map(|(t, session)| Txn {
            id: t.id,
            session,
            ops: t.ops.into_iter().map(op).collect(),
        })
        .collect())
}

fn op(op: serializability::Op<String>) -> Op {
    match op {
        serializability::Op::Read { key, version } => Op {
            key,
            kind: Kind::Read(version),
        },
        serializability::Op::Write { key, version } => Op {
            key,
            kind: Kind::Write(version),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::{check, Level, Pattern};

    #[test]
    fn sessions_are_read_and_aborted_transactions_dropped() {
        let text = r#"{"id": 1, "session": 0, "status": "committed", "ops": [["w", "x", 1]]}
{"id": 2, "session": 0, "status": "aborted", "ops": [["w", "x", 2]]}

{"id": 3, "session": 7, "status": "committed", "ops": [["r", "x", 2], ["r", "y", 0]]}
"#;
        let h = parse_jsonl_sessions(text).unwrap();
        assert_eq!(
            h,
            vec![
                Txn::single(1, 0, Op::write("x", 1)),
                Txn {
                    id: 3,
                    session: 7,
                    ops: vec![Op::read("x", 2), Op::read("y", 0)],
                },
            ]
        );
        // The aborted write is gone: reading it is reading from thin air.
        let v = check(&h, Level::Cc).unwrap_err();
        assert_eq!(v.pattern, Pattern::ThinAirRead);
    }

    #[test]
    fn a_missing_or_ill_typed_session_names_its_line() {
        for bad in [r#""#, r#""session": -1, "#, r#""session": "a", "#] {
            let text = format!(
                "{{\"id\": 1, \"session\": 0, \"status\": \"committed\", \"ops\": []}}\n\
                 {{\"id\": 2, {bad}\"status\": \"committed\", \"ops\": []}}\n"
            );
            let e = parse_jsonl_sessions(&text).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
            assert!(e.reason.contains("\"session\""), "{}", e.reason);
        }
        // The transaction format's own rules still hold.
        let twice = "{\"id\": 1, \"session\": 0, \"status\": \"committed\", \"ops\": [[\"w\", \"x\", 1]]}\n\
                     {\"id\": 2, \"session\": 1, \"status\": \"committed\", \"ops\": [[\"w\", \"x\", 1]]}\n";
        let e = parse_jsonl_sessions(twice).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("written twice"), "{}", e.reason);
    }
}
