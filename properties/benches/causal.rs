//! Causal consistency checking speed and memory on histories of a simulated causal store.
//!
//! `cargo bench -p properties --bench causal` simulates a causally consistent key-value store
//! (COPS-like): 4 replicas, 32 sessions (session `s` bound to replica `s % 4`), 1,000 keys. Each
//! step one session, at random, does a get, a put (45% each) or a read-only transaction of 2 to
//! 4 reads (10%), all served from its replica's state at that instant. A put is versioned by a
//! Lamport clock `⟨counter, replica⟩`, mapped to the unique version `counter · 4 + replica`,
//! and replicated to the other replicas with a random delay of 1 to 256 steps. A replica
//! applies a replicated write only once it has arrived and every write it depends on (the
//! writer's replica's applied writes when it wrote) is applied, and keeps the write with the
//! greater Lamport version of each key. The history is therefore CCv (and TCC: the arbitration
//! order is the Lamport order), so the checker has to do the whole job. A second history of each
//! size has one COPS ACL anomaly (`WriteCORead`) planted in the middle.
//!
//! Histories of 10,000 and 100,000 operations are checked at every level (best of 3) and the
//! table gives the operations, sessions, time, verdict and peak memory. Memory: each (history,
//! level) is checked in a child process of its own (this program, run again), which reads
//! `VmHWM` (peak resident set) from `/proc/self/status` once the history is built ("history")
//! and again after the three checks ("peak"). The peak includes the history itself and the
//! generator's leftovers; `peak − history` bounds what the check added.
//!
//! `cargo bench -p properties --bench causal -- --write-jsonl DIR` writes the 100,000-operation
//! history (no anomaly) to `DIR/causal-100000.jsonl` in `checker history --model causal`'s
//! format and exits (for `bench/causal.sh`).

use std::process::Command;
use std::time::{Duration, Instant};

use properties::causal::{check, Level, Op, Pattern, Txn};
use properties::peak_rss_kib;

const REPLICAS: usize = 4;
const SESSIONS: u64 = 32;
const KEYS: u32 = 1_000;
const MAX_DELAY: u64 = 256;

/// A put, as replicated: its key and version, and what a replica needs to apply it.
struct Put {
    key: u32,
    version: u64,
    /// The writer's replica's applied writes per origin when it wrote.
    deps: [u32; REPLICAS],
    /// When it arrives at each replica (its own: at once).
    arrive: [u64; REPLICAS],
}

struct Replica {
    /// Lamport counter: at least that of every write applied here.
    clock: u64,
    /// Per origin replica, how many of its puts are applied here (a prefix of its log).
    applied: [u32; REPLICAS],
    /// Per key, the version with the greatest Lamport timestamp applied here (0: none).
    store: Vec<u64>,
}

impl Replica {
    /// Applies, in causal order, every put that has arrived by `now`.
    fn deliver(&mut self, me: usize, logs: &[Vec<Put>; REPLICAS], now: u64) {
        loop {
            let mut progress = false;
            for (origin, log) in logs.iter().enumerate() {
                if origin == me {
                    continue;
                }
                while let Some(p) = log.get(self.applied[origin] as usize) {
                    let ready = p.arrive[me] <= now
                        && (0..REPLICAS).all(|o| o == origin || self.applied[o] >= p.deps[o]);
                    if !ready {
                        break;
                    }
                    self.applied[origin] += 1;
                    self.clock = self.clock.max(p.version / REPLICAS as u64);
                    let cur = &mut self.store[p.key as usize];
                    *cur = (*cur).max(p.version);
                    progress = true;
                }
            }
            if !progress {
                return;
            }
        }
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, m: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % m
    }
}

fn key(k: u32) -> String {
    format!("k{k}")
}

/// A history of at least `ops` operations from the simulated store, with the ACL anomaly
/// planted halfway when `plant`.
fn history(ops: usize, plant: bool) -> Vec<Txn> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut logs: [Vec<Put>; REPLICAS] = Default::default();
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|_| Replica {
            clock: 0,
            applied: [0; REPLICAS],
            store: vec![0; KEYS as usize],
        })
        .collect();
    let mut txns: Vec<Txn> = Vec::new();
    let mut count = 0;
    let mut planted = !plant;
    let mut now = 0u64;
    while count < ops {
        now += 1;
        if !planted && count >= ops / 2 {
            // COPS §1: session 0 removes the boss from the ACL (a := 2), then posts the photo;
            // session 1 sees the photo, then the old ACL.
            planted = true;
            for (s, op) in [
                (0, Op::write("acl", 1)),
                (0, Op::write("acl", 2)),
                (0, Op::write("photo", 1)),
                (1, Op::read("photo", 1)),
                (1, Op::read("acl", 1)),
            ] {
                txns.push(Txn::single(txns.len() as u64, s, op));
                count += 1;
            }
            continue;
        }
        let session = rng.below(SESSIONS);
        let r = session as usize % REPLICAS;
        replicas[r].deliver(r, &logs, now);
        let roll = rng.below(100);
        let rep = &mut replicas[r];
        let ops = if roll < 10 {
            let n = 2 + rng.below(3) as usize;
            let mut keys: Vec<u32> = Vec::with_capacity(n);
            while keys.len() < n {
                let k = rng.below(KEYS as u64) as u32;
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            keys.iter()
                .map(|k| Op::read(&key(*k), rep.store[*k as usize]))
                .collect()
        } else if roll < 55 {
            let k = rng.below(KEYS as u64) as u32;
            vec![Op::read(&key(k), rep.store[k as usize])]
        } else {
            let k = rng.below(KEYS as u64) as u32;
            rep.clock += 1;
            let version = rep.clock * REPLICAS as u64 + r as u64;
            let deps = rep.applied;
            rep.applied[r] += 1;
            rep.store[k as usize] = rep.store[k as usize].max(version);
            let mut arrive = [now; REPLICAS];
            for (j, a) in arrive.iter_mut().enumerate() {
                if j != r {
                    *a = now + 1 + rng.below(MAX_DELAY);
                }
            }
            logs[r].push(Put {
                key: k,
                version,
                deps,
                arrive,
            });
            vec![Op::write(&key(k), version)]
        };
        count += ops.len();
        txns.push(Txn {
            id: txns.len() as u64,
            session,
            ops,
        });
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

fn level_named(name: &str) -> Level {
    *Level::ALL
        .iter()
        .find(|l| l.name() == name)
        .expect("a level name")
}

/// The child: checks one history at one level and prints `seconds history_kib peak_kib verdict`.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let ops: usize = parts[0].parse().expect("ops");
    let plant = parts[1] == "plant";
    let level = level_named(parts[2]);
    let h = history(ops, plant);
    let before = peak_rss_kib();
    let expect = plant.then_some(Pattern::WriteCORead);
    let time = best_of_3(|| {
        assert_eq!(check(&h, level).err().map(|v| v.pattern), expect);
    });
    let verdict = match check(&h, level) {
        Ok(()) => format!("{} holds", level.name()),
        Err(v) => v.pattern.to_string(),
    };
    println!(
        "{} {before} {} {verdict}",
        time.as_secs_f64(),
        peak_rss_kib()
    );
}

fn write_jsonl(dir: &str) {
    let h = history(100_000, false);
    let mut text = String::new();
    for t in &h {
        let ops: Vec<String> = t
            .ops
            .iter()
            .map(|op| match op.kind {
                properties::causal::Kind::Read(v) => format!("[\"r\", \"{}\", {v}]", op.key),
                properties::causal::Kind::Write(v) => format!("[\"w\", \"{}\", {v}]", op.key),
            })
            .collect();
        text.push_str(&format!(
            "{{\"id\": {}, \"session\": {}, \"status\": \"committed\", \"ops\": [{}]}}\n",
            t.id,
            t.session,
            ops.join(", ")
        ));
    }
    let path = std::path::Path::new(dir).join("causal-100000.jsonl");
    std::fs::write(&path, text).expect("write the history");
    println!("{}", path.display());
}

fn main() {
    if let Ok(spec) = std::env::var("CAUSAL_BENCH_CHILD") {
        return child(&spec);
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-jsonl") {
        return write_jsonl(args.get(i + 1).expect("--write-jsonl DIR"));
    }
    let exe = std::env::current_exe().expect("this program");
    println!("| operations | transactions | sessions | planted | level | time (best of 3) | verdict | history RSS | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in [10_000, 100_000] {
        for plant in [false, true] {
            let h = history(n, plant);
            let ops: usize = h.iter().map(|t| t.ops.len()).sum();
            for level in Level::ALL {
                let spec = format!(
                    "{n},{},{}",
                    if plant { "plant" } else { "none" },
                    level.name()
                );
                let out = Command::new(&exe)
                    .env("CAUSAL_BENCH_CHILD", &spec)
                    .output()
                    .expect("run the child");
                assert!(
                    out.status.success(),
                    "{spec}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8(out.stdout).expect("utf-8");
                let mut f = line.split_whitespace();
                let secs: f64 = f.next().unwrap().parse().unwrap();
                let history_kib: u64 = f.next().unwrap().parse().unwrap();
                let peak_kib: u64 = f.next().unwrap().parse().unwrap();
                let verdict: Vec<&str> = f.collect();
                println!(
                    "| {ops} | {} | {SESSIONS} | {} | {} | {secs:.3} s | {} | {:.0} MiB | {:.0} MiB |",
                    h.len(),
                    if plant { "WriteCORead" } else { "none" },
                    level.name(),
                    verdict.join(" "),
                    history_kib as f64 / 1024.0,
                    peak_kib as f64 / 1024.0
                );
            }
        }
    }
}
