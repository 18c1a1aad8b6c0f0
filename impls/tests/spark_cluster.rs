//! Spark as real processes on loopback (`spark run`): a driver whose scheduler is the model's
//! driver actor, and worker processes, one of which exits abruptly in the middle of a job.
//! PageRank equals networkx's definition within 1e-9 per vertex and word count equals
//! `mr sequential`, whether or not a worker was killed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use impls::spark::pagerank::{networkx_reference, parse_edges, random_graph};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spark-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shared_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel)
}

/// Runs `spark run ARGS`; its stderr, or a panic with it if the run failed.
fn spark_run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_spark"))
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "spark run {args:?} failed:\n{err}");
    err
}

fn ranks(path: &Path) -> BTreeMap<u64, f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let (v, r) = l.split_once(' ').unwrap();
            (v.parse().unwrap(), r.parse().unwrap())
        })
        .collect()
}

fn assert_close(got: &BTreeMap<u64, f64>, want: &BTreeMap<u64, f64>, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: vertices");
    for (v, w) in want {
        let g = got[v];
        assert!((g - w).abs() < 1e-9, "{what}: vertex {v}: {g} vs {w}");
    }
}

#[test]
fn pagerank_on_worker_processes_equals_networkx_with_and_without_a_killed_worker() {
    let dir = scratch("pagerank");
    let followers = shared_data("pagerank/spark_graphx_followers.txt");
    let generated = dir.join("graph.txt");
    let edges = random_graph(300, 2000, 11);
    let text: String = edges.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    std::fs::write(&generated, text).unwrap();
    for (graph, name) in [(&followers, "followers"), (&generated, "generated")] {
        let want = networkx_reference(
            &parse_edges(&std::fs::read_to_string(graph).unwrap()).unwrap(),
            0.85,
            1e-12,
        );
        let kills: [&[&str]; 3] = [
            &[],
            &["--kill-worker", "2", "--after-tasks", "30"],
            &["--kill-worker", "1", "--after-tasks", "50", "--restart"],
        ];
        for kill in kills {
            let out = dir.join("ranks.txt");
            let mut args: Vec<&str> = vec!["--workers", "2", "--lost-after-ms", "800"];
            args.extend_from_slice(kill);
            let out_s = out.to_str().unwrap().to_string();
            let graph_s = graph.to_str().unwrap().to_string();
            args.extend_from_slice(&["--out", &out_s, "--", "pagerank", "--edges", &graph_s]);
            args.extend_from_slice(&["--partitions", "4"]);
            let summary = spark_run(&args);
            let what = format!("{name} {kill:?}");
            assert_close(&ranks(&out), &want, &what);
            if kill.is_empty() {
                assert!(summary.contains(" 0 workers lost"), "{what}: {summary}");
            } else {
                // The lost worker's map outputs were made again (§5.1).
                assert!(
                    !summary.contains(" 0 map outputs resubmitted"),
                    "{what}: {summary}"
                );
            }
        }
    }
}

#[test]
fn word_count_on_worker_processes_equals_mr_sequential() {
    let dir = scratch("wordcount");
    let inputs = [
        shared_data("gutenberg/pg-being_ernest.txt"),
        shared_data("gutenberg/pg-frankenstein.txt"),
    ];
    let want_path = dir.join("sequential.txt");
    impls::mapreduce::sequential(&impls::mapreduce::apps::WordCount, &inputs, &want_path).unwrap();
    let want = std::fs::read_to_string(&want_path).unwrap();
    for kill in [&[][..], &["--kill-worker", "1", "--after-tasks", "2"][..]] {
        let out = dir.join("counts.txt");
        let (a, b) = (inputs[0].to_str().unwrap(), inputs[1].to_str().unwrap());
        let mut args: Vec<&str> = vec!["--workers", "2", "--lost-after-ms", "800"];
        args.extend_from_slice(kill);
        let out_s = out.to_str().unwrap().to_string();
        args.extend_from_slice(&["--out", &out_s, "--", "mr", "--inputs", a, b]);
        args.extend_from_slice(&["--partitions", "3"]);
        spark_run(&args);
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(
            got == want,
            "word count on worker processes ({kill:?}) differs from mr sequential"
        );
    }
}

#[test]
fn bad_input_is_a_one_line_error() {
    let dir = scratch("bad");
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "1 2\nx 3\n").unwrap();
    let bad_s = bad.to_str().unwrap();
    let missing = dir.join("missing.txt");
    let cases: [(&[&str], &str); 4] = [
        (&["--", "pagerank", "--edges", bad_s], "line 2"),
        (
            &["--", "pagerank", "--edges", missing.to_str().unwrap()],
            "missing.txt",
        ),
        (&["--", "sort", "--inputs", bad_s], "sort"),
        (
            &[
                "--kill-worker",
                "3",
                "--after-tasks",
                "1",
                "--",
                "pagerank",
                "--edges",
                bad_s,
            ],
            "--kill-worker 3",
        ),
    ];
    for (args, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_spark"))
            .arg("run")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
