//! Elle list-append and Knossos register checking speed, and peak memory.
//!
//! `cargo bench -p properties --bench list_append` generates a list-append history of 100,000
//! operations (EDN text, 50,000 transactions of 1 to 4 micro-ops by 16 concurrent processes over
//! 5 active keys, each key retired after 32 appends as Jepsen's generator does, with a few
//! aborted and indeterminate transactions), executed atomically at completion time, so strictly
//! serializable by construction. It times reading the EDN and checking it (strict
//! serializability, the level with the most searches), then once more with one read-skew pair
//! planted (a G-single cycle to find and report). Before them, Knossos's `memstress3-9.edn` and
//! `cas-failure.edn` go through the compare-and-set register checker, when the shared data is
//! there. Each line gives the best of 3 runs and the process's peak resident memory so far
//! (`VmHWM` in `/proc/self/status`; the Knossos samples run first, so that theirs is their own).
//! `-- --write-edn DIR` writes the history to `DIR/list-append-100000.edn` instead.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use properties::linearizability::formats::parse_knossos_edn;
use properties::linearizability::{check as linearizable, CasRegister, Verdict};
use properties::list_append::{check, parse_edn, Anomaly, Level};

const OPERATIONS: usize = 100_000;
const PROCESSES: u64 = 16;
const ACTIVE_KEYS: usize = 5;
const APPENDS_PER_KEY: u64 = 32;

struct Rng(u64);

impl Rng {
    fn below(&mut self, m: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % m
    }
}

enum Planned {
    Append(u64, u64),
    Read(u64),
}

fn mops(planned: &[Planned], state: Option<&HashMap<u64, Vec<u64>>>) -> String {
    let mut out = String::from("[");
    for (i, m) in planned.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match (m, state) {
            (Planned::Append(k, v), _) => write!(out, "[:append {k} {v}]").unwrap(),
            (Planned::Read(k), None) => write!(out, "[:r {k} nil]").unwrap(),
            (Planned::Read(k), Some(s)) => {
                let vs: Vec<String> = s
                    .get(k)
                    .map(|l| l.iter().map(u64::to_string).collect())
                    .unwrap_or_default();
                write!(out, "[:r {k} [{}]]", vs.join(" ")).unwrap();
            }
        }
    }
    out.push(']');
    out
}

/// How the generated history departs from a strictly serializable execution.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Not at all.
    Serial,
    /// Two more transactions in the middle: one appends to two fresh keys, the other, concurrent
    /// with it, reads one before and one after the append (read skew, one G-single).
    Skew,
    /// One transaction in 10 reads a snapshot taken when it was invoked (and its own appends), as
    /// snapshot isolation without its write-conflict check: anomalies everywhere.
    Snapshot,
}

/// The history's EDN text: `ops` op maps, one a line.
fn history(ops: usize, variant: Variant) -> String {
    let skew = variant == Variant::Skew;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut text = String::with_capacity(ops * 60);
    let mut state: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut active: Vec<u64> = (0..ACTIVE_KEYS as u64).collect();
    let mut next_key = ACTIVE_KEYS as u64;
    let mut appends: HashMap<u64, u64> = HashMap::new();
    type Snapshot = HashMap<u64, Vec<u64>>;
    let mut open: Vec<Option<(Vec<Planned>, Option<Snapshot>)>> =
        (0..PROCESSES).map(|_| None).collect();
    let mut index = 0usize;
    let mut planted = !skew;
    while index < ops {
        if !planted && index >= ops / 2 {
            planted = true;
            let (a, b) = (1_000_000_000, 1_000_000_001);
            for line in [
                format!("{{:index {index}, :type :invoke, :process 100, :f :txn, :value [[:append {a} 1] [:append {b} 1]]}}"),
                format!("{{:index {}, :type :invoke, :process 101, :f :txn, :value [[:r {a} nil] [:r {b} nil]]}}", index + 1),
                format!("{{:index {}, :type :ok, :process 101, :f :txn, :value [[:r {a} []] [:r {b} [1]]]}}", index + 2),
                format!("{{:index {}, :type :ok, :process 100, :f :txn, :value [[:append {a} 1] [:append {b} 1]]}}", index + 3),
            ] {
                text.push_str(&line);
                text.push('\n');
            }
            index += 4;
            continue;
        }
        let p = rng.below(PROCESSES);
        match open[p as usize].take() {
            None => {
                let n = 1 + rng.below(4);
                let mut planned = Vec::new();
                for _ in 0..n {
                    let slot = rng.below(ACTIVE_KEYS as u64) as usize;
                    let k = active[slot];
                    if rng.below(2) == 0 {
                        let count = appends.entry(k).or_insert(0);
                        *count += 1;
                        planned.push(Planned::Append(k, *count));
                        if *count == APPENDS_PER_KEY {
                            active[slot] = next_key;
                            next_key += 1;
                        }
                    } else {
                        planned.push(Planned::Read(k));
                    }
                }
                writeln!(
                    text,
                    "{{:index {index}, :type :invoke, :process {p}, :f :txn, :value {}}}",
                    mops(&planned, None)
                )
                .unwrap();
                let snapshot = (variant == Variant::Snapshot && rng.below(10) == 0).then(|| {
                    planned
                        .iter()
                        .map(|m| match m {
                            Planned::Append(k, _) | Planned::Read(k) => *k,
                        })
                        .map(|k| (k, state.get(&k).cloned().unwrap_or_default()))
                        .collect()
                });
                open[p as usize] = Some((planned, snapshot));
            }
            Some((planned, mut snapshot)) => {
                let roll = rng.below(100);
                let ty = match roll {
                    0..=1 => "fail",
                    2 => "info",
                    _ => "ok",
                };
                let value = if ty == "fail" {
                    mops(&planned, None)
                } else {
                    // Executed atomically now: reads see the state, then appends apply, in
                    // program order.
                    let mut shown = String::from("[");
                    for (i, m) in planned.iter().enumerate() {
                        if i > 0 {
                            shown.push(' ');
                        }
                        match m {
                            Planned::Append(k, v) => {
                                state.entry(*k).or_default().push(*v);
                                if let Some(own) = snapshot.as_mut() {
                                    own.entry(*k).or_default().push(*v);
                                }
                                write!(shown, "[:append {k} {v}]").unwrap();
                            }
                            Planned::Read(k) if ty == "ok" => {
                                let one = [Planned::Read(*k)];
                                let r = mops(&one, Some(snapshot.as_ref().unwrap_or(&state)));
                                shown.push_str(&r[1..r.len() - 1]);
                            }
                            Planned::Read(k) => write!(shown, "[:r {k} nil]").unwrap(),
                        }
                    }
                    shown.push(']');
                    shown
                };
                writeln!(
                    text,
                    "{{:index {index}, :type :{ty}, :process {p}, :f :txn, :value {value}}}"
                )
                .unwrap();
            }
        }
        index += 1;
    }
    text
}

fn best_of_3(mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// The peak resident set size so far, from `/proc/self/status` (`None` off Linux).
fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", kb / 1024.0))
}

fn main() {
    // `-- --write-edn DIR`: write the generated history (`DIR/list-append-100000.edn`) and stop,
    // to time `checker history --model list-append` on it.
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--write-edn") {
        let dir = Path::new(args.get(at + 1).expect("--write-edn DIR"));
        let path = dir.join(format!("list-append-{OPERATIONS}.edn"));
        std::fs::write(&path, history(OPERATIONS, Variant::Serial)).expect("write the history");
        println!("wrote {}", path.display());
        return;
    }
    println!("| history | operations | parse | check | peak memory |");
    println!("|---|---|---|---|---|");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/jepsen");
    for (file, linearizable_expected) in [("memstress3-9.edn", true), ("cas-failure.edn", false)] {
        let Ok(text) = std::fs::read_to_string(data.join(file)) else {
            println!("| {file} | (not found: skipped) | | | |");
            continue;
        };
        let mut h = None;
        let parse = best_of_3(|| h = Some(parse_knossos_edn(&text, true, None).expect(file)));
        let h = h.unwrap();
        let mut verdict = None;
        let checking = best_of_3(|| verdict = Some(linearizable(&CasRegister, &h, None)));
        assert_eq!(
            matches!(verdict, Some(Verdict::Linearizable)),
            linearizable_expected,
            "{file}"
        );
        println!(
            "| {file} (cas-register) | {} | {:.2} ms | {:.2} ms | {} |",
            h.len(),
            parse.as_secs_f64() * 1e3,
            checking.as_secs_f64() * 1e3,
            peak_memory().unwrap_or_else(|| "?".into())
        );
    }
    for variant in [Variant::Serial, Variant::Skew, Variant::Snapshot] {
        let text = history(OPERATIONS, variant);
        let mut h = None;
        let parse = best_of_3(|| {
            drop(h.take()); // one history at a time, for the peak memory
            h = Some(parse_edn(&text).expect("generated EDN"));
        });
        let h = h.unwrap();
        let mut found = Vec::new();
        let checking = best_of_3(|| {
            let r = check(&h, Level::StrictSerializable);
            found = r.anomalies.iter().map(|f| f.anomaly).collect();
        });
        let mut classes: Vec<&str> = found.iter().map(|a| a.name()).collect();
        classes.dedup();
        match variant {
            Variant::Serial => assert!(found.is_empty(), "{classes:?}"),
            Variant::Skew => assert_eq!(found, [Anomaly::GSingle]),
            Variant::Snapshot => assert!(found.contains(&Anomaly::GSingle), "{classes:?}"),
        }
        println!(
            "| list-append{} ({:.1} MB of EDN, {} transactions) | {} | {:.3} s | {:.3} s | {} |",
            match variant {
                Variant::Serial => String::new(),
                Variant::Skew => ", read skew planted".to_string(),
                Variant::Snapshot => format!(", 1 in 10 reads a snapshot: {}", classes.join(", ")),
            },
            text.len() as f64 / 1e6,
            h.txns.len(),
            h.operations,
            parse.as_secs_f64(),
            checking.as_secs_f64(),
            peak_memory().unwrap_or_else(|| "?".into())
        );
    }
}
