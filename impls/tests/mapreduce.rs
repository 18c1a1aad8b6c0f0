//! MapReduce over TCP, in the spirit of the classic lab's test script: results equal the sequential
//! reference, workers really run in parallel, map tasks run once when nobody fails, workers exit
//! when the job is done, and crashing or stalling workers still give the exact output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn books() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/gutenberg");
    let mut books: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("gutenberg books")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "txt")
                && p.file_name().unwrap().to_str().unwrap().starts_with("pg-")
        })
        .collect();
    books.sort();
    assert_eq!(books.len(), 8, "the classic lab's eight books");
    books
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mr-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mr(args: &[&str], inputs: &[PathBuf]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mr"))
        .args(args)
        .arg("--inputs")
        .args(inputs)
        .output()
        .expect("run mr")
}

/// All `key value` lines of the outputs, sorted (the lab's `sort mr-out*`).
fn sorted_lines(files: impl IntoIterator<Item = PathBuf>) -> Vec<String> {
    let mut lines: Vec<String> = files
        .into_iter()
        .flat_map(|f| {
            std::fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

fn outputs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("mr-out-")
        })
        .collect()
}

fn check_app(name: &str, app: &[&str], reduces: &str, extra: &[&str]) {
    let dir = scratch(name);
    let out = dir.join("out");
    let seq = dir.join("seq");
    let mut args = vec![
        "run",
        "--workers",
        "3",
        "--reduces",
        reduces,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(["--app", app[0]]);
    if app.len() > 1 {
        args.extend(["--pattern", app[1]]);
    }
    args.extend(extra);
    let run = mr(&args, &books());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut seq_args = vec![
        "sequential",
        "--out",
        seq.to_str().unwrap(),
        "--app",
        app[0],
    ];
    if app.len() > 1 {
        seq_args.extend(["--pattern", app[1]]);
    }
    let s = mr(&seq_args, &books());
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let got = sorted_lines(outputs(&out));
    let want = sorted_lines([seq]);
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len(), "{app:?}: line counts differ");
    assert!(
        got == want,
        "{app:?}: the parallel output differs from the sequential one"
    );
    assert_eq!(outputs(&out).len(), reduces.parse::<usize>().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn word_count_equals_the_sequential_result() {
    check_app("wc", &["wc"], "10", &[]);
}

#[test]
fn indexer_equals_the_sequential_result() {
    check_app("indexer", &["indexer"], "4", &[]);
}

#[test]
fn grep_equals_the_sequential_result() {
    check_app("grep", &["grep", "whale"], "3", &[]);
}

/// The task log: (start or end, task, worker pid, millis).
fn log_entries(log: &Path) -> Vec<(String, String, u32, u128)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// Whether two different workers ran tasks of this kind at overlapping times.
fn overlapped(entries: &[(String, String, u32, u128)], kind: &str) -> bool {
    let mut spans: BTreeMap<(String, u32), (u128, u128)> = BTreeMap::new();
    for (what, task, pid, at) in entries.iter().filter(|e| e.1.starts_with(kind)) {
        let span = spans.entry((task.clone(), *pid)).or_insert((0, u128::MAX));
        if what == "start" {
            span.0 = *at;
        } else {
            span.1 = *at;
        }
    }
    let spans: Vec<(&u32, &(u128, u128))> = spans.iter().map(|((_, pid), s)| (pid, s)).collect();
    spans
        .iter()
        .any(|(p, a)| spans.iter().any(|(q, b)| p != q && a.0 < b.1 && b.0 < a.1))
}

#[test]
fn workers_run_in_parallel_and_each_map_runs_once_without_failures() {
    let dir = scratch("parallel");
    let out = dir.join("out");
    let log = dir.join("tasks.log");
    let run = mr(
        &[
            "run",
            "--app",
            "wc",
            "--workers",
            "2",
            "--reduces",
            "2",
            "--slow-ms",
            "300",
            "--out",
            out.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ],
        &books()[..4],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let entries = log_entries(&log);
    assert!(
        overlapped(&entries, "Map"),
        "map tasks never overlapped: {entries:?}"
    );
    assert!(
        overlapped(&entries, "Reduce"),
        "reduce tasks never overlapped: {entries:?}"
    );
    for m in 0..4 {
        let starts = entries
            .iter()
            .filter(|e| e.0 == "start" && e.1 == format!("Map({m})"))
            .count();
        assert_eq!(starts, 1, "map task {m} ran {starts} times");
    }
    // Reduce tasks start only after every map task ended.
    let last_map_end = entries
        .iter()
        .filter(|e| e.0 == "end" && e.1.starts_with("Map"))
        .map(|e| e.3)
        .max()
        .unwrap();
    let first_reduce = entries
        .iter()
        .filter(|e| e.0 == "start" && e.1.starts_with("Reduce"))
        .map(|e| e.3)
        .min()
        .unwrap();
    assert!(first_reduce >= last_map_end);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn crashing_and_stalling_workers_still_give_the_exact_output() {
    // Workers exit before a third of their tasks and stall up to 1.5 s before another third; the
    // coordinator re-assigns after 1 s; the launcher restarts workers that exit.
    check_app(
        "crash",
        &["wc"],
        "4",
        &["--crash", "--task-timeout", "1", "--max-delay-ms", "1500"],
    );
}

#[test]
fn bad_arguments_are_errors() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let bad_app = mr(
        &[
            "run",
            "--app",
            "sort",
            "--workers",
            "1",
            "--reduces",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &books()[..1],
    );
    assert!(!bad_app.status.success());
    assert!(String::from_utf8_lossy(&bad_app.stderr).contains("unknown app"));
    let missing = mr(
        &[
            "run",
            "--app",
            "wc",
            "--workers",
            "1",
            "--reduces",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &[dir.join("no-such-book.txt")],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-book.txt"));
    std::fs::remove_dir_all(&dir).unwrap();
}
