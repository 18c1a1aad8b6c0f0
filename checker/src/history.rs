//! `checker history`: checks a recorded history for linearizability (register, compare-and-set
//! register, key-value store), a transaction history for (strict) serializability, a history of
//! sessions for causal consistency, or an Elle list-append history for isolation anomalies.

use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

use properties::causal;
use properties::causal::formats::parse_jsonl_sessions;
use properties::linearizability::formats::{
    parse_jepsen, parse_jsonl_kv, parse_jsonl_register, parse_knossos_edn, parse_porcupine_kv,
};
use properties::linearizability::spec::{KvInput, KvOp, KvOutput, RegisterInput, RegisterOutput};
use properties::linearizability::{check, CasRegister, History, KvStore, Register, Verdict};
use properties::list_append;
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
    /// Sessions of transactions (`jsonl` with `"session"`), checked for causal consistency.
    Causal,
    /// Elle's list-append transactions (`edn` or `json`), checked for the anomalies of --level.
    ListAppend,
    /// One key's reads and writes through a look-aside cache (`jsonl`), checked for freshness
    /// (`properties::freshness`: Memcache at Facebook's leases and gutter).
    Cache,
}

/// What a transaction history is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnLevel {
    /// Strict serializability: serializable in an order that respects real time (`start`/`end`).
    Strict,
    /// Serializability (Adya's PL-3): real time ignored.
    Serializable,
}

/// `--level`, whose values depend on the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Txn(TxnLevel),
    Causal(causal::Level),
    ListAppend(list_append::Level),
}

impl Level {
    /// The level named by `--level` for `model` (its default when `None`); `None` for models
    /// that have no levels. An unknown name is a usage error listing the model's levels.
    pub fn parse(model: HistoryModel, name: Option<&str>) -> Result<Option<Level>, HistoryError> {
        let (levels, default): (&[(&str, Level)], &str) = match model {
            HistoryModel::Txn => (
                &[
                    ("strict", Level::Txn(TxnLevel::Strict)),
                    ("serializable", Level::Txn(TxnLevel::Serializable)),
                ],
                "strict",
            ),
            HistoryModel::Causal => (
                &[
                    ("cc", Level::Causal(causal::Level::Cc)),
                    ("cm", Level::Causal(causal::Level::Cm)),
                    ("ccv", Level::Causal(causal::Level::Ccv)),
                    ("tcc", Level::Causal(causal::Level::Tcc)),
                ],
                "ccv",
            ),
            HistoryModel::ListAppend => (
                &[
                    (
                        "strict",
                        Level::ListAppend(list_append::Level::StrictSerializable),
                    ),
                    (
                        "serializable",
                        Level::ListAppend(list_append::Level::Serializable),
                    ),
                    (
                        "snapshot-isolation",
                        Level::ListAppend(list_append::Level::SnapshotIsolation),
                    ),
                    (
                        "repeatable-read",
                        Level::ListAppend(list_append::Level::RepeatableRead),
                    ),
                    (
                        "read-committed",
                        Level::ListAppend(list_append::Level::ReadCommitted),
                    ),
                ],
                "strict",
            ),
            _ => {
                return match name {
                    None => Ok(None),
                    Some(_) => Err(HistoryError::Usage(format!(
                        "--level applies to --model txn, causal and list-append, not {}",
                        model_name(model)
                    ))),
                }
            }
        };
        let name = name.unwrap_or(default);
        match levels.iter().find(|(n, _)| *n == name) {
            Some((_, level)) => Ok(Some(*level)),
            None => Err(HistoryError::Usage(format!(
                "unknown level '{name}' for --model {}; expected one of: {}",
                model_name(model),
                levels
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// How a history file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    Jepsen,
    PorcupineKv,
    Jsonl,
    /// Knossos's EDN: op maps in a vector, or one a line (also Elle's list-append histories).
    Edn,
    /// Elle's JSON list-append histories: objects in an array, or one a line.
    Json,
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

/// An operation of a causal history, described for people.
#[derive(Clone, Debug, Serialize)]
pub struct CausalOpView {
    /// The transaction's `id`.
    pub txn: u64,
    pub session: u64,
    /// `r x=1` (read version 1 of `x`) or `w x=2` (wrote version 2).
    pub op: String,
}

/// Why a causal history falls short of its level.
#[derive(Clone, Debug, Serialize)]
pub struct CausalViolationView {
    /// The bad pattern, as Bouajjani et al. name it: `WriteCORead`, `CyclicCF`, ...
    pub pattern: String,
    /// One line for people, with the cycle's edges (`po`, `wr`, `cf`, `hb`) for a cycle.
    pub explanation: String,
    /// The operations involved, in the explanation's order.
    pub ops: Vec<CausalOpView>,
}

impl std::fmt::Display for CausalViolationView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pattern, self.explanation)
    }
}

/// The violation of a transaction or causal history.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ViolationView {
    Txn(Violation<String>),
    Causal(CausalViolationView),
    Cache(StaleView),
}

/// The first stale read of a cache history.
#[derive(Clone, Debug, Serialize)]
pub struct StaleView {
    /// How many reads were stale.
    pub stale_reads: usize,
    /// The first, in words.
    pub first: String,
}

impl std::fmt::Display for ViolationView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViolationView::Txn(v) => write!(f, "{v}"),
            ViolationView::Causal(v) => write!(f, "{v}"),
            ViolationView::Cache(v) => {
                write!(f, "{} stale reads; the first: {}", v.stale_reads, v.first)
            }
        }
    }
}

/// The `--json` object of `checker history`.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryReport {
    pub file: String,
    pub model: String,
    pub format: String,
    pub operations: usize,
    /// `linearizable`, `not_linearizable` or `unknown`; for transactions `serializable`,
    /// `strict_serializable`, `not_serializable` or `not_strict_serializable`; for causal
    /// histories the level or `not_` and the level: `cc`, `not_cc`, `cm`, `not_cm`, `ccv`,
    /// `not_ccv`, `tcc`, `not_tcc`; for list-append histories likewise: `strict_serializable`,
    /// `serializable`, `snapshot_isolation`, `repeatable_read`, `read_committed`.
    pub verdict: &'static str,
    pub elapsed_s: f64,
    pub failure: Option<FailureView>,
    /// Transaction histories: how many transactions (committed and aborted); causal histories:
    /// how many committed transactions were checked (aborted ones are dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<usize>,
    /// Causal histories: how many sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    /// Transaction histories: the anomaly found, with its cycle; causal histories: the bad
    /// pattern found, with its operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<ViolationView>,
    /// List-append histories: `level`, `valid`, every anomaly found (`anomalies`, each with its
    /// cycle edge by edge) and the names of those the level forbids (`forbidden`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub elle: Option<list_append::Report>,
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
            let sessions = self
                .sessions
                .map_or(String::new(), |k| format!(", {k} sessions"));
            let mut out = format!(
                "{}: {} ({n} transactions, {} operations{sessions}, {:.3} s)\n",
                self.file,
                self.verdict.replace('_', " "),
                self.operations,
                self.elapsed_s
            );
            if let Some(v) = &self.violation {
                out.push_str(&format!("  {v}\n"));
            }
            if let Some(r) = &self.elle {
                out.push_str(&elle_summary(r));
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
        if let Some(v) = &self.violation {
            out.push_str(&format!("  {v}\n"));
        }
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

/// How many findings of one class the human summary shows.
const SHOWN_PER_CLASS: usize = 3;

fn elle_summary(r: &list_append::Report) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < r.anomalies.len() {
        let class = r.anomalies[i].anomaly;
        let n = r.anomalies[i..]
            .iter()
            .take_while(|f| f.anomaly == class)
            .count();
        let verdict = if r.forbidden.contains(&class) {
            "forbidden by"
        } else {
            "allowed by"
        };
        for f in &r.anomalies[i..i + n.min(SHOWN_PER_CLASS)] {
            out.push_str(&format!("  {class} ({verdict} {}): ", r.level));
            if f.cycle.is_empty() {
                out.push_str(&format!("{}\n", f.explanation));
                for t in &f.ops {
                    out.push_str(&format!("    {t}\n"));
                }
                continue;
            }
            for e in &f.cycle {
                out.push_str(&format!("T{} -{}-> ", e.from, e.kind));
            }
            out.push_str(&format!("T{}\n", f.cycle[0].from));
            for e in &f.cycle {
                out.push_str(&format!("    {e}: {}\n", e.why));
            }
            for t in &f.ops {
                out.push_str(&format!("    {t}\n"));
            }
        }
        if n > SHOWN_PER_CLASS {
            out.push_str(&format!("  ... and {} more {class}\n", n - SHOWN_PER_CLASS));
        }
        i += n;
    }
    out
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
        HistoryModel::Causal => "causal",
        HistoryModel::ListAppend => "list-append",
        HistoryModel::Cache => "cache",
    }
}

fn format_name(f: HistoryFormat) -> &'static str {
    match f {
        HistoryFormat::Jepsen => "jepsen",
        HistoryFormat::PorcupineKv => "porcupine-kv",
        HistoryFormat::Jsonl => "jsonl",
        HistoryFormat::Edn => "edn",
        HistoryFormat::Json => "json",
    }
}

/// Reads `path` in `format` (for transaction and causal histories, `jsonl` when `None`; for
/// list-append histories, EDN or JSON as the file looks) and checks it against `model` within
/// `budget`, at `level` (`--level`, see [`Level::parse`]). A register read in EDN starts with
/// `initial` (`--initial`) rather than `nil`.
pub fn check_file(
    model: HistoryModel,
    format: Option<HistoryFormat>,
    path: &Path,
    budget: Option<Duration>,
    level: Option<&str>,
    initial: Option<i64>,
) -> Result<HistoryReport, HistoryError> {
    use HistoryFormat as F;
    use HistoryModel as M;
    let level = Level::parse(model, level)?;
    if model == M::ListAppend {
        if initial.is_some() {
            return Err(HistoryError::Usage(
                "--initial applies to --format edn registers, not list-append".into(),
            ));
        }
        return match format {
            None | Some(F::Edn | F::Json) => check_list_append(path, format, level),
            Some(other) => Err(HistoryError::Usage(format!(
                "list-append histories are read in the edn or json format, not {}",
                format_name(other)
            ))),
        };
    }
    let format = match (model, format) {
        (M::Txn | M::Causal | M::Cache, None) => F::Jsonl,
        (_, Some(format)) => format,
        (_, None) => {
            return Err(HistoryError::Usage(format!(
                "--model {} needs --format ({})",
                model_name(model),
                if model == M::Kv {
                    "porcupine-kv or jsonl"
                } else {
                    "jepsen, edn or jsonl"
                }
            )))
        }
    };
    match (model, format) {
        (M::Txn | M::Causal | M::Cache, F::Jsonl) => {}
        (M::Txn | M::Causal | M::Cache, _) => {
            return Err(HistoryError::Usage(format!(
                "{} histories are read in the jsonl format, not {}",
                model_name(model),
                format_name(format)
            )))
        }
        (_, F::Json) => {
            return Err(HistoryError::Usage(
                "format json holds list-append histories (Elle's JSON)".into(),
            ))
        }
        (M::Kv, F::Jepsen | F::Edn) | (M::Register | M::CasRegister, F::PorcupineKv) => {
            return Err(HistoryError::Usage(format!(
                "format {} holds {} histories, not {}",
                format_name(format),
                if format == F::PorcupineKv {
                    "kv"
                } else {
                    "register or cas-register"
                },
                model_name(model)
            )))
        }
        _ => {}
    }
    if initial.is_some() && format != F::Edn {
        return Err(HistoryError::Usage(
            "--initial applies to --format edn (Knossos's registers)".into(),
        ));
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
    if model == M::Cache {
        return check_cache(file, &text, start);
    }
    match level {
        Some(Level::Txn(level)) => return check_txns(file, &text, level, start),
        Some(Level::Causal(level)) => return check_causal(file, &text, level, start),
        Some(Level::ListAppend(_)) | None => {}
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
            let h = match format {
                F::Jsonl => parse_jsonl_register(&text, cas),
                F::Edn => parse_knossos_edn(&text, cas, initial),
                _ => parse_jepsen(&text, cas),
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
        sessions: None,
        violation: None,
        elle: None,
    })
}

fn check_list_append(
    path: &Path,
    format: Option<HistoryFormat>,
    level: Option<Level>,
) -> Result<HistoryReport, HistoryError> {
    let Some(Level::ListAppend(level)) = level else {
        unreachable!("Level::parse gives list-append a level")
    };
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Read {
        path: file.clone(),
        source,
    })?;
    let start = Instant::now();
    let format = format.map(|f| match f {
        HistoryFormat::Json => list_append::Format::Json,
        _ => list_append::Format::Edn,
    });
    let h = list_append::parse(&text, format).map_err(|source| HistoryError::Malformed {
        path: file.clone(),
        source,
    })?;
    let detected = match format {
        Some(list_append::Format::Json) => "json",
        Some(list_append::Format::Edn) => "edn",
        None => list_append::detect(&text),
    };
    let report = list_append::check(&h, level);
    let (ok, not) = match level {
        list_append::Level::StrictSerializable => {
            ("strict_serializable", "not_strict_serializable")
        }
        list_append::Level::Serializable => ("serializable", "not_serializable"),
        list_append::Level::SnapshotIsolation => ("snapshot_isolation", "not_snapshot_isolation"),
        list_append::Level::RepeatableRead => ("repeatable_read", "not_repeatable_read"),
        list_append::Level::ReadCommitted => ("read_committed", "not_read_committed"),
    };
    Ok(HistoryReport {
        file,
        model: "list-append".to_string(),
        format: detected.to_string(),
        operations: h.operations,
        verdict: if report.valid { ok } else { not },
        elapsed_s: start.elapsed().as_secs_f64(),
        failure: None,
        transactions: Some(h.txns.len()),
        sessions: None,
        violation: None,
        elle: Some(report),
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
        sessions: None,
        violation: result.err().map(ViolationView::Txn),
        elle: None,
    })
}

fn check_cache(file: String, text: &str, start: Instant) -> Result<HistoryReport, HistoryError> {
    use properties::freshness;
    let parsed = freshness::parse_jsonl(text).map_err(|source| HistoryError::Malformed {
        path: file.clone(),
        source,
    })?;
    let verdict = freshness::check(&parsed.ops, parsed.gutter_ttl);
    let violation = verdict.stale.first().map(|s| {
        ViolationView::Cache(StaleView {
            stale_reads: verdict.stale.len(),
            first: format!(
                "{s} (process {} read, process {} wrote)",
                parsed.ops[s.read].process, parsed.ops[s.write].process
            ),
        })
    });
    Ok(HistoryReport {
        file,
        model: "cache".to_string(),
        format: "jsonl".to_string(),
        operations: parsed.ops.len(),
        verdict: if violation.is_none() {
            "fresh"
        } else {
            "not_fresh"
        },
        elapsed_s: start.elapsed().as_secs_f64(),
        failure: None,
        transactions: None,
        sessions: None,
        violation,
        elle: None,
    })
}

fn check_causal(
    file: String,
    text: &str,
    level: causal::Level,
    start: Instant,
) -> Result<HistoryReport, HistoryError> {
    let h = parse_jsonl_sessions(text).map_err(|source| HistoryError::Malformed {
        path: file.clone(),
        source,
    })?;
    let result = causal::check(&h, level);
    let (ok, not) = match level {
        causal::Level::Cc => ("cc", "not_cc"),
        causal::Level::Cm => ("cm", "not_cm"),
        causal::Level::Ccv => ("ccv", "not_ccv"),
        causal::Level::Tcc => ("tcc", "not_tcc"),
    };
    let mut sessions: Vec<u64> = h.iter().map(|t| t.session).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let violation = result.err().map(|v| {
        ViolationView::Causal(CausalViolationView {
            pattern: v.pattern.to_string(),
            explanation: v.explanation,
            ops: v
                .ops
                .iter()
                .map(|at| {
                    let t = &h[at.txn];
                    let op = &t.ops[at.op];
                    let (rw, version) = match op.kind {
                        causal::Kind::Read(v) => ("r", v),
                        causal::Kind::Write(v) => ("w", v),
                    };
                    CausalOpView {
                        txn: t.id,
                        session: t.session,
                        op: format!("{rw} {}={version}", op.key),
                    }
                })
                .collect(),
        })
    });
    Ok(HistoryReport {
        file,
        model: "causal".to_string(),
        format: "jsonl".to_string(),
        operations: h.iter().map(|t| t.ops.len()).sum(),
        verdict: if violation.is_none() { ok } else { not },
        elapsed_s: start.elapsed().as_secs_f64(),
        failure: None,
        transactions: Some(h.len()),
        sessions: Some(sessions.len()),
        violation,
        elle: None,
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
