//! Serializability checking speed on large synthetic histories.
//!
//! `cargo bench -p properties --bench serializability` builds histories of 10,000 and 100,000
//! transactions (8 clients running transactions of 4 operations over 1,000 keys, with overlapping
//! real-time intervals), checks them for serializability and strict serializability, and prints the
//! time of each (best of 3). A second set has one write-skew pair planted in the middle, so that the
//! checker must also find and report a cycle.

use std::time::{Duration, Instant};

use properties::serializability::{
    check_serializable, check_strict_serializable, Anomaly, Op, Txn,
};

/// A serial run of `n` transactions, executed in id order, with real-time intervals that overlap
/// the next few transactions' (as concurrent clients would).
fn history(n: usize, keys: u64, skew_at: Option<usize>) -> Vec<Txn<u64>> {
    let mut installed = vec![0u64; keys as usize];
    let mut next_version = vec![1u64; keys as usize];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut txns = Vec::with_capacity(n);
    for i in 0..n {
        let mut ops = Vec::new();
        let mut own: Vec<(u64, u64)> = Vec::new();
        for _ in 0..4 {
            let k = rand(keys);
            if rand(2) == 0 {
                let v = next_version[k as usize];
                next_version[k as usize] += 1;
                own.retain(|(kk, _)| *kk != k);
                own.push((k, v));
                ops.push(Op::Write { key: k, version: v });
            } else {
                let seen = own
                    .iter()
                    .find(|(kk, _)| *kk == k)
                    .map_or(installed[k as usize], |(_, v)| *v);
                ops.push(Op::Read {
                    key: k,
                    version: seen,
                });
            }
        }
        for (k, v) in own {
            installed[k as usize] = v;
        }
        // Each transaction overlaps the 8 around it: a run of concurrent clients.
        let start = 10 * i as u64;
        txns.push(Txn::committed(i as u64, ops).during(start, start + 75));
    }
    if let Some(at) = skew_at {
        // Two concurrent transactions that read a and b at their current versions and each write
        // one of them: write skew.
        let (a, b) = (keys, keys + 1);
        let t = 10 * at as u64;
        txns.push(
            Txn::committed(
                n as u64,
                vec![
                    Op::Read { key: a, version: 0 },
                    Op::Read { key: b, version: 0 },
                    Op::Write { key: a, version: 1 },
                ],
            )
            .during(t, t + 5),
        );
        txns.push(
            Txn::committed(
                n as u64 + 1,
                vec![
                    Op::Read { key: a, version: 0 },
                    Op::Read { key: b, version: 0 },
                    Op::Write { key: b, version: 1 },
                ],
            )
            .during(t, t + 5),
        );
    }
    txns
}

fn best_of_3(f: impl Fn()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    println!("| transactions | planted anomaly | serializable | strict |");
    println!("|---|---|---|---|");
    for n in [10_000, 100_000] {
        for skew in [None, Some(n / 2)] {
            let h = history(n, 1_000, skew);
            let expect = skew.map(|_| Anomaly::G2);
            let ser = best_of_3(|| {
                assert_eq!(check_serializable(&h).err().map(|v| v.anomaly), expect);
            });
            let strict = best_of_3(|| {
                assert_eq!(
                    check_strict_serializable(&h).err().map(|v| v.anomaly),
                    expect
                );
            });
            println!(
                "| {} | {} | {:.3} s | {:.3} s |",
                h.len(),
                if skew.is_some() { "G2" } else { "none" },
                ser.as_secs_f64(),
                strict.as_secs_f64()
            );
        }
    }
}
