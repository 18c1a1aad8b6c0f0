//! Linearizability at soak scale: long histories with indefinite operations, time and memory.
//!
//! `cargo bench -p properties --bench soak [-- FILE]` checks
//! - FILE, default the shared 240-second `jepsen raft` soak history
//!   (`../shared/data/linearizability/soak/raft-kv-240s.jsonl.gz`, read through `gzip -dc` when
//!   it ends in `.gz`): 219,702 operations on 3 keys, 45 of them indefinite;
//! - the same history with one read changed (a token dropped from a read in its middle), which
//!   must be found not linearizable;
//! - a synthetic history of 1,000,000 operations on 3 keys, 8 overlapping clients, Jepsen's
//!   unique `client.n ` append tokens, and an indefinite operation every 2,000 (half of them
//!   take effect, half never do), and the same with one read changed.
//!
//! Each line: the verdict, seconds to check (parse excluded) and the process's peak resident
//! memory after the check (Linux's `VmHWM`, reset before each history through
//! `/proc/self/clear_refs`, so each figure is that history's own peak).

use std::path::{Path, PathBuf};
use std::time::Instant;

use properties::linearizability::formats::parse_jsonl_kv;
use properties::linearizability::spec::{KvInput, KvOp, KvOutput};
use properties::linearizability::{check, History, KvStore, Operation, Verdict};
use properties::peak_rss_kib;

type Kv = History<KvInput, KvOutput>;

fn main() {
    let file = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/linearizability/soak/raft-kv-240s.jsonl.gz")
        });
    let text = read(&file);
    let start = Instant::now();
    let (soak, _) = parse_jsonl_kv(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    drop(text);
    println!(
        "{}: {} operations, parsed in {:.3} s",
        file.display(),
        soak.len(),
        start.elapsed().as_secs_f64()
    );
    run("soak history", &soak, true);
    run("soak, one read changed", &plant(soak), false);

    let synthetic = synthetic(1_000_000);
    let indefinite = synthetic.ops.iter().filter(|o| o.ret == u64::MAX).count();
    println!(
        "synthetic: {} operations on 3 keys, {indefinite} indefinite",
        synthetic.len()
    );
    run("synthetic", &synthetic, true);
    run("synthetic, one read changed", &plant(synthetic), false);
}

/// Checks `h`, prints the figures, and asserts the verdict.
fn run(name: &str, h: &Kv, linearizable: bool) {
    // Resets the peak resident set to the current one (Linux 4.0+; ignored elsewhere).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = Instant::now();
    let verdict = check(&KvStore, h, None);
    let secs = start.elapsed().as_secs_f64();
    let shown = match &verdict {
        Verdict::Linearizable => "linearizable".to_string(),
        Verdict::NotLinearizable(f) => format!(
            "not linearizable (key {}, {} operations linearized)",
            f.partition,
            f.linearized.len()
        ),
        Verdict::Unknown => "unknown".to_string(),
    };
    println!(
        "  {name}: {shown} in {secs:.3} s, peak RSS {} MiB",
        peak_rss_kib() / 1024
    );
    assert_eq!(
        verdict == Verdict::Linearizable,
        linearizable,
        "{name}: {shown}"
    );
}

fn read(file: &Path) -> String {
    if file.extension().is_some_and(|e| e == "gz") {
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("gzip -dc {}: {e}", file.display()));
        assert!(out.status.success(), "gzip -dc {} failed", file.display());
        String::from_utf8(out.stdout).expect("a UTF-8 history")
    } else {
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }
}

/// `h` with one read changed: the first read past the middle that returned two or more tokens
/// loses its second.
fn plant(mut h: Kv) -> Kv {
    let mid = h.ops.iter().map(|o| o.call).max().unwrap_or(0) / 2;
    let mut order: Vec<usize> = (0..h.len()).collect();
    order.sort_by_key(|&i| h.ops[i].call);
    let victim = order
        .into_iter()
        .find(|&i| {
            let op = &h.ops[i];
            op.call >= mid
                && matches!(&op.output, Some(KvOutput::Get(v)) if v.split_whitespace().count() >= 2)
        })
        .expect("a read of two tokens past the middle");
    if let Some(KvOutput::Get(v)) = &mut h.ops[victim].output {
        let tokens: Vec<&str> = v.split_whitespace().collect();
        let kept: String = tokens
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != 1)
            .map(|(_, t)| format!("{t} "))
            .collect();
        *v = kept;
    }
    h
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` operations of 8 clients on 3 keys, as `jepsen` records them: gets, puts (one write in
/// ten) and appends of unique tokens `client.n `; each takes effect at a point inside its
/// window, and windows overlap their neighbours'. Every 2,000th operation is indefinite: open
/// to the end with its result unknown; the odd ones take effect (later reads show them), the
/// even ones never do.
fn synthetic(n: usize) -> Kv {
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    let mut values = [String::new(), String::new(), String::new()];
    let mut ops = Vec::with_capacity(n);
    for i in 0..n {
        let at = 100 + 10 * i as u64;
        let client = i as u64 % 8;
        let key = rng.next() % 3;
        let value = &mut values[key as usize];
        let token = format!("{client}.{i} ");
        let indefinite = i % 2_000 == 1_999;
        let takes_effect = !indefinite || (i / 2_000) % 2 == 1;
        let (op, output) = match rng.next() % 20 {
            0..=8 => (KvOp::Get, KvOutput::Get(value.clone())),
            9 | 10 => {
                if takes_effect {
                    *value = token.clone();
                }
                (KvOp::Put(token), KvOutput::Put)
            }
            _ => {
                if takes_effect {
                    value.push_str(&token);
                }
                (KvOp::Append(token), KvOutput::Append)
            }
        };
        ops.push(Operation {
            client,
            call: at - rng.next() % 35,
            ret: if indefinite {
                u64::MAX
            } else {
                at + 1 + rng.next() % 35
            },
            input: KvInput { key, op },
            output: (!indefinite).then_some(output),
        });
    }
    History::new(ops)
}
