//! Linearizability checking speed and memory, on the data Porcupine's own tests use.
//!
//! `cargo bench -p properties --bench porcupine [-- DIR]` checks every Jepsen etcd history (`jepsen/
//! etcd_*.log`) and the c50 KV histories in DIR (default `../shared/data/linearizability/porcupine`)
//! and prints the total time, best of 5 runs; then checks synthetic histories of 100,000 operations
//! (a CAS register and a 10-key KV store, 8 overlapping clients) and prints time and peak memory.
//! Porcupine, the reference, checks all 103 of its etcd histories in about 0.44 s on this kind of
//! machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use properties::linearizability::formats::{parse_jepsen, parse_porcupine_kv};
use properties::linearizability::spec::{KvInput, KvOp, KvOutput, RegisterInput, RegisterOutput};
use properties::linearizability::{check, CasRegister, History, KvStore, Operation, Verdict};
use properties::peak_rss_kib;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/linearizability/porcupine")
        });
    let mut etcd: Vec<PathBuf> = std::fs::read_dir(dir.join("jepsen"))
        .expect("jepsen/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    etcd.sort();
    let etcd: Vec<(String, String)> = etcd
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let kv: Vec<(String, String)> = ["c50-ok.txt", "c50-bad.txt"]
        .iter()
        .map(|f| {
            let p = dir.join("kv").join(f);
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();

    let (etcd_s, etcd_bad) = best_of(5, || {
        etcd.iter()
            .filter(|(name, text)| {
                let h = parse_jepsen(text, true).unwrap_or_else(|e| panic!("{name}: {e}"));
                !linearizable(check(&CasRegister, &h, None))
            })
            .count()
    });
    println!(
        "etcd: {} histories ({} not linearizable), parse + check: {:.3} s (best of 5)",
        etcd.len(),
        etcd_bad,
        etcd_s
    );
    let (kv_s, kv_bad) = best_of(5, || {
        kv.iter()
            .filter(|(name, text)| {
                let (h, _) = parse_porcupine_kv(text).unwrap_or_else(|e| panic!("{name}: {e}"));
                !linearizable(check(&KvStore, &h, None))
            })
            .count()
    });
    println!(
        "kv c50: {} histories ({} not linearizable), parse + check: {:.3} s (best of 5)",
        kv.len(),
        kv_bad,
        kv_s
    );
    println!("total: {:.3} s", etcd_s + kv_s);

    let before = peak_rss_kib();
    let h = cas_history(100_000);
    let start = Instant::now();
    let v = check(&CasRegister, &h, Some(Duration::from_secs(600)));
    println!(
        "synthetic cas register, {} ops: {:?} in {:.3} s, peak RSS {} MiB (was {} MiB)",
        h.len(),
        verdict_name(&v),
        start.elapsed().as_secs_f64(),
        peak_rss_kib() / 1024,
        before / 1024
    );
    let h = kv_history(100_000, 10);
    let start = Instant::now();
    let v = check(&KvStore, &h, Some(Duration::from_secs(600)));
    println!(
        "synthetic kv (10 keys, appends), {} ops: {:?} in {:.3} s, peak RSS {} MiB",
        h.len(),
        verdict_name(&v),
        start.elapsed().as_secs_f64(),
        peak_rss_kib() / 1024
    );
}

fn linearizable(v: Verdict) -> bool {
    match v {
        Verdict::Linearizable => true,
        Verdict::NotLinearizable(_) => false,
        Verdict::Unknown => unreachable!("no budget"),
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable(_) => "not linearizable",
        Verdict::Unknown => "unknown",
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f());
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, last.expect("at least one run"))
}

/// A deterministic pseudo-random sequence (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` operations of 8 clients on a CAS register, each taking effect at a point inside its window;
/// windows overlap their neighbours'.
fn cas_history(n: usize) -> History<RegisterInput, RegisterOutput> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut state: Option<i64> = None;
    let ops = (0..n)
        .map(|i| {
            let at = 100 + 10 * i as u64;
            let (input, output) = match rng.next() % 3 {
                0 => (RegisterInput::Read, RegisterOutput::Read(state)),
                1 => {
                    let v = (rng.next() % 5) as i64;
                    state = Some(v);
                    (RegisterInput::Write(v), RegisterOutput::Write)
                }
                _ => {
                    let (from, to) = ((rng.next() % 5) as i64, (rng.next() % 5) as i64);
                    let ok = state == Some(from);
                    if ok {
                        state = Some(to);
                    }
                    (RegisterInput::Cas { from, to }, RegisterOutput::Cas(ok))
                }
            };
            Operation {
                client: i as u64 % 8,
                call: at - rng.next() % 35,
                ret: at + 1 + rng.next() % 35,
                input,
                output: Some(output),
            }
        })
        .collect();
    History::new(ops)
}

/// `n` get/put/append operations on `keys` keys, as [`cas_history`] builds them.
fn kv_history(n: usize, keys: u64) -> History<KvInput, KvOutput> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut values = vec![String::new(); keys as usize];
    let ops = (0..n)
        .map(|i| {
            let at = 100 + 10 * i as u64;
            let key = rng.next() % keys;
            let value = &mut values[key as usize];
            let (op, output) = match rng.next() % 3 {
                0 => (KvOp::Get, KvOutput::Get(value.clone())),
                1 => {
                    *value = format!("p{i}");
                    (KvOp::Put(value.clone()), KvOutput::Put)
                }
                _ => {
                    let a = format!("x{i}y");
                    value.push_str(&a);
                    if value.len() > 4096 {
                        // Keep values bounded, like a real store's: the next put resets them.
                        value.clear();
                        value.push_str(&a);
                        return Operation {
                            client: i as u64 % 8,
                            call: at - rng.next() % 35,
                            ret: at + 1 + rng.next() % 35,
                            input: KvInput {
                                key,
                                op: KvOp::Put(a),
                            },
                            output: Some(KvOutput::Put),
                        };
                    }
                    (KvOp::Append(a), KvOutput::Append)
                }
            };
            Operation {
                client: i as u64 % 8,
                call: at - rng.next() % 35,
                ret: at + 1 + rng.next() % 35,
                input: KvInput { key, op },
                output: Some(output),
            }
        })
        .collect();
    History::new(ops)
}
