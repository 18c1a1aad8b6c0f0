//! `checker history`: checks a recorded history for linearizability (register, compare-and-set
//! register, key-value store) or a transaction history for (strict) serializability.

use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

use properties::linearizability::formats::{
    parse_jepsen, parse_jsonl_kv, parse_jsonl_register, parse_porcupine_kv,
};
use properties::linearizability::spec::{KvInput, KvOp, KvOutput, RegisterInput, RegisterOutput};
use properties::linearizability::{check, CasRegister, History, KvStore, Register, Verdict};
use properties::serializability::formats::parse_jsonl_txns;
use properties::serializability::{check_serializable, check_strict_serializable, Violation};
use serde::Serialize;

/// The sequential object a history is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryModel {
    Register,
    CasRegister,
    Kv,
    /// Transactions (`jsonl` only), checked for strict serializability or serializability.
    Txn,
}

/// What a transaction history is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TxnLevel {
    /// Strict serializability: serializable in an order that respects real time (`start`/`end`).
    Strict,
    /// Serializability (Adya's PL-3): real time ignored.
    Serializable,
}

/// How a history file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    Jepsen,
    PorcupineKv,
    Jsonl,
}

/// Why a history could not be checked (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Malformed {
        path: String,
        source: properties::linearizability::formats::ParseError,
    },
}

/// One operation, described for people.
#[derive(Clone, Debug, Serialize)]
pub struct OpView {
    pub process: u64,
    pub call: u64,
    /// `None` for an operation still open at the end of the history.
    #[serde(rename = "return")]
    pub ret: Option<u64>,
    pub op: String,
}

/// Why a history is not linearizable, described for people.
#[derive(Clone, Debug, Serialize)]
pub struct FailureView {
    /// The key of the failing partition (KV histories), or `null`.
    pub partition: Option<String>,
    /// The longest linearization found, in order.
    pub linearized: Vec<OpView>,
    /// The operations none of which could come next.
    pub unplaced: Vec<OpView>,
}

/// The `--json` object of `checker history`.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryReport {
    pub file: String,
    pub model: String,
    pub format: String,
    pub operations: usize,
    /// `linearizable`, `not_linearizable` or `unknown`; for transactions `serializable`,
    /// `strict_serializable`, `not_serializable` or `not_strict_serializable`.
    pub verdict: &'static str,
    pub elapsed_s: f64,
    pub failure: Option<FailureView>,
    /// Transaction histories: how many transactions (committed and aborted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<usize>,
    /// Transaction histories: the anomaly found, with its cycle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<Violation<String>>,
}

impl HistoryReport {
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            "unknown" => 3,
            v if v.starts_with("not_") => 1,
            _ => 0,
        }
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        if let Some(n) = self.transactions {
            let mut out = format!(
                "{}: {} ({n} transactions, {} operations, {:.3} s)\n",
                self.file,
                self.verdict.replace('_', " "),
                self.operations,
                self.elapsed_s
            );
            if let Some(v) = &self.violation {
                out.push_str(&format!("  {v}\n"));
            }
            return out;
        }
        let mut out = format!(
            "{}: {} ({}, {} operations, {:.3} s)\n",
            self.file,
            self.verdict.replace('_', " "),
            self.model,
            self.operations,
            self.elapsed_s
        );
        if let Some(f) = &self.failure {
            if let Some(key) = &f.partition {
                out.push_str(&format!("  key {key:?} is not linearizable\n"));
            }
            out.push_str(&format!(
                "  longest linearizable prefix: {} operations, ending with:\n",
                f.linearized.len()
            ));
            let tail = f.linearized.len().saturating_sub(3);
            for op in &f.linearized[tail..] {
                out.push_str(&format!("    {}\n", op_line(op)));
            }
            out.push_str("  none of these can come next:\n");
            for op in &f.unplaced {
                out.push_str(&format!("    {}\n", op_line(op)));
            }
        }
        if self.verdict == "unknown" {
            out.push_str("  the time budget ran out before the search finished\n");
        }
        out
    }
}

fn op_line(op: &OpView) -> String {
    format!(
        "process {}: {}  [call {}, return {}]",
        op.process,
        op.op,
        op.call,
        op.ret.map_or("never".to_string(), |r| r.to_string())
    )
}

fn model_name(m: HistoryModel) -> &'static str {
    match m {
        HistoryModel::Register => "register",
        HistoryModel::CasRegister => "cas-register",
        HistoryModel::Kv => "kv",
        HistoryModel::Txn => "txn",
    }
}

fn format_name(f: HistoryFormat) -> &'static str {
    match f {
        HistoryFormat::Jepsen => "jepsen",
        HistoryFormat::PorcupineKv => "porcupine-kv",
        HistoryFormat::Jsonl => "jsonl",
    }
}

/// Reads `path` in `format` and checks it against `model` within `budget` (`level` for
/// transaction histories).
pub fn check_file(
    model: HistoryModel,
    format: HistoryFormat,
    path: &Path,
    budget: Option<Duration>,
    level: TxnLevel,
) -> Result<HistoryReport, HistoryError> {
    use HistoryFormat as F;
    use HistoryModel as M;
    match (model, format) {
        (M::Txn, F::Jsonl) => {}
        (M::Txn, _) => {
            return Err(HistoryError::Usage(format!(
                "txn histories are read in the jsonl format, not {}",
                format_name(format)
            )))
        }
        (M::Kv, F::Jepsen) | (M::Register | M::CasRegister, F::PorcupineKv) => {
            return Err(HistoryError::Usage(format!(
                "format {} holds {} histories, not {}",
                format_name(format),
                if format == F::Jepsen {
                    "register or cas-register"
                } else {
                    "kv"
                },
                model_name(model)
            )))
        }
        _ => {}
    }
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Read {
        path: file.clone(),
        source,
    })?;
    let malformed = |source| HistoryError::Malformed {
        path: file.clone(),
        source,
    };
    let start = Instant::now();
    if model == M::Txn {
        return check_txns(file, &text, level, start);
    }
    let cas = model == M::CasRegister;
    let (operations, verdict, failure) = match (model, format) {
        (M::Kv, _) => {
            let (h, keys) = if format == F::Jsonl {
                parse_jsonl_kv(&text)
            } else {
                parse_porcupine_kv(&text)
            }
            .map_err(malformed)?;
            let verdict = check(&KvStore, &h, budget);
            let failure = describe(&h, &verdict, describe_kv, |p| {
                Some(keys[p as usize].clone())
            });
            (h.len(), verdict, failure)
        }
        _ => {
            let h = if format == F::Jsonl {
                parse_jsonl_register(&text, cas)
            } else {
                parse_jepsen(&text, cas)
            }
            .map_err(malformed)?;
            let verdict = if cas {
                check(&CasRegister, &h, budget)
            } else {
                check(&Register, &h, budget)
            };
            let failure = describe(&h, &verdict, describe_register, |_| None);
            (h.len(), verdict, failure)
        }
    };
    Ok(HistoryReport {
        file,
        model: model_name(model).to_string(),
        format: format_name(format).to_string(),
        operations,
        verdict: match verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable(_) => "not_linearizable",
            Verdict::Unknown => "unknown",
        },
        elapsed_s: start.elapsed().as_secs_f64(),
        failure,
        transactions: None,
        violation: None,
    })
}

fn check_txns(
    file: String,
    text: &str,
    level: TxnLevel,
    start: Instant,
) -> Result<HistoryReport, HistoryError> {
    let txns = parse_jsonl_txns(text).map_err(|source| HistoryError::Malformed {
        path: file.clone(),
        source,
    })?;
    let (result, ok, not) = match level {
        TxnLevel::Strict => (
            check_strict_serializable(&txns),
            "strict_serializable",
            "not_strict_serializable",
        ),
        TxnLevel::Serializable => (
            check_serializable(&txns),
            "serializable",
            "not_serializable",
        ),
    };
    Ok(HistoryReport {
        file,
        model: "txn".to_string(),
        format: "jsonl".to_string(),
        operations: txns.iter().map(|t| t.ops.len()).sum(),
        verdict: if result.is_ok() { ok } else { not },
        elapsed_s: start.elapsed().as_secs_f64(),
        failure: None,
        transactions: Some(txns.len()),
        violation: result.err(),
    })
}

fn describe<I, O>(
    h: &History<I, O>,
    verdict: &Verdict,
    op: fn(&I, Option<&O>) -> String,
    partition: impl Fn(u64) -> Option<String>,
) -> Option<FailureView> {
    let Verdict::NotLinearizable(f) = verdict else {
        return None;
    };
    let view = |&i: &usize| {
        let o = &h.ops[i];
        OpView {
            process: o.client,
            call: o.call,
            ret: (o.ret != u64::MAX).then_some(o.ret),
            op: op(&o.input, o.output.as_ref()),
        }
    };
    Some(FailureView {
        partition: partition(f.partition),
        linearized: f.linearized.iter().map(view).collect(),
        unplaced: f.unplaced.iter().map(view).collect(),
    })
}

fn describe_register(input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
    let call = match input {
        RegisterInput::Read => "read".to_string(),
        RegisterInput::Write(v) => format!("write {v}"),
        RegisterInput::Cas { from, to } => format!("cas {from} -> {to}"),
    };
    let result = match output {
        None => "?".to_string(),
        Some(RegisterOutput::Read(None)) => "nil".to_string(),
        Some(RegisterOutput::Read(Some(v))) => v.to_string(),
        Some(RegisterOutput::Write) => "ok".to_string(),
        Some(RegisterOutput::Cas(ok)) => if *ok { "ok" } else { "fail" }.to_string(),
    };
    format!("{call} => {result}")
}

fn describe_kv(input: &KvInput, output: Option<&KvOutput>) -> String {
    let call = match &input.op {
        KvOp::Get => "get".to_string(),
        KvOp::Put(v) => format!("put {v:?}"),
        KvOp::Append(v) => format!("append {v:?}"),
    };
    let result = match output {
        None => "?".to_string(),
        Some(KvOutput::Get(v)) => format!("{v:?}"),
        Some(_) => "ok".to_string(),
    };
    format!("{call} => {result}")
}
