//! The `checker` binary as a user types it: verdicts, exit codes, JSON, usage errors, limits,
//! simulation seeds, symmetry and the explorer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(args)
        .output()
        .expect("run checker")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// Runs with `--json --quiet` and parses stdout, which must be exactly one JSON object.
fn json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--json", "--quiet"]);
    let out = checker(&all);
    let v: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", stdout(&out)));
    (code(&out), v)
}

fn status_of<'a>(v: &'a Value, property: &str) -> &'a str {
    v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == property)
        .unwrap_or_else(|| panic!("no property {property}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn default_twophase_run_matches_tlc_and_exits_zero() {
    let (code, v) = json(&["twophase"]);
    assert_eq!(code, 0, "{v}");
    for key in [
        "model",
        "strategy",
        "params",
        "bug",
        "unique_states",
        "generated_states",
        "max_depth",
        "elapsed_s",
        "complete",
        "properties",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["model"], "twophase");
    assert_eq!(v["strategy"], "bfs");
    assert_eq!(v["params"]["rms"], 3);
    assert!(v["bug"].is_null());
    assert_eq!(v["unique_states"], 288);
    assert_eq!(v["generated_states"], 1146);
    assert_eq!(v["complete"], true);
    assert_eq!(status_of(&v, "TCConsistent"), "holds");
    assert_eq!(status_of(&v, "all committed"), "found");
    for p in v["properties"].as_array().unwrap() {
        assert!(p.get("trace").is_some(), "trace key present: {p}");
        assert!(["always", "sometimes", "eventually"].contains(&p["expectation"].as_str().unwrap()));
    }
}

#[test]
fn model_parameters_change_the_state_space() {
    let (code, v) = json(&["twophase", "--rms", "4", "--dfs", "--threads", "1"]);
    assert_eq!(code, 0);
    assert_eq!(v["strategy"], "dfs");
    assert_eq!(v["unique_states"], 1568);
    let (code, v) = json(&["tcommit"]);
    assert_eq!(code, 0);
    assert_eq!(v["unique_states"], 34);
    assert_eq!(v["generated_states"], 94);
}

/// Every seeded bug, through the CLI: exit 1, a counterexample to a property the bug's `breaks`
/// names (checker/tests/bugs.rs checks the whole list), and an explorer path for it.
#[test]
fn every_seeded_bug_is_caught_with_a_counterexample() {
    let list: Value = serde_json::from_str(&stdout(&checker(&["list", "--json"]))).unwrap();
    let mut checked = 0;
    for model in list.as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        for bug in model["bugs"].as_array().unwrap() {
            let breaks: Vec<&str> = bug["breaks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_str().unwrap())
                .collect();
            let bug = bug["name"].as_str().unwrap();
            if (name, bug) == ("raft", "commit-previous-term") {
                // Two minutes and 3 GB (Figure 8 needs four terms): its own test in the models
                // crate checks it once.
                continue;
            }
            // The bug's own configuration applies: the JSON names it.
            let (code, v) = json(&[name, "--bug", bug, "--threads", "1", "--first-failure"]);
            assert_eq!(code, 1, "{name} --bug {bug} must exit 1: {v}");
            assert_eq!(v["bug"], bug);
            let violated: Vec<&Value> = v["properties"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["status"] == "violated")
                .collect();
            assert!(!violated.is_empty(), "{name} --bug {bug}: nothing violated");
            for p in violated {
                let property = p["name"].as_str().unwrap();
                assert!(
                    breaks.contains(&property),
                    "{name} --bug {bug}: {property:?} is not in {breaks:?}"
                );
                let trace = p["trace"]
                    .as_array()
                    .expect("a violated property has a trace");
                // The initial state's index, then one action index per step (a model with
                // several initial states, like spanner's clock offsets, starts past 0).
                let steps = p["explorer_path"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("#/steps/")
                    .expect("an explorer fragment");
                assert!(steps.split('/').all(|i| i.parse::<usize>().is_ok()));
                // (A property violated in an initial state, such as a wrong quorum size, has
                // no steps: the path is the initial state's index alone.)
                assert_eq!(steps.split('/').count(), trace.len() + 1);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "expected the seeded bugs of twophase and tcommit"
    );
}

#[test]
fn human_summary_numbers_the_counterexample_steps() {
    let out = checker(&[
        "twophase",
        "--bug",
        "prepared-wrong-rm",
        "--threads",
        "1",
        "--quiet",
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(text.contains("violated   always     TPTypeOK"), "{text}");
    assert!(text.contains("counterexample to \"TPTypeOK\""), "{text}");
    assert!(text.contains("  1. RMPrepare("), "{text}");
    assert!(text.contains("http://localhost:3000/#/steps/0/"), "{text}");
    assert!(text.contains("--bug prepared-wrong-rm --explore"), "{text}");
    // The missing example is reported too.
    assert!(
        text.contains("not_found  sometimes  all committed"),
        "{text}"
    );
}

#[test]
fn list_shows_papers_parameters_properties_and_bugs() {
    let out = checker(&["list"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for needle in [
        "twophase",
        "tcommit",
        "TwoPhase.tla",
        "--rms N",
        "default 3",
        "always     TCConsistent",
        "sometimes  all committed",
        "--bug tm-commits-early",
        "breaks \"TCConsistent\"",
        "breaks \"TPTypeOK\", \"all committed\" and \"tmPrepared = RM\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let v: Value = serde_json::from_str(&stdout(&checker(&["list", "--json"]))).unwrap();
    let twophase = &v[0];
    assert_eq!(twophase["name"], "twophase");
    assert_eq!(twophase["params"][0]["name"], "rms");
    assert_eq!(twophase["params"][0]["default"], 3);
    assert_eq!(twophase["symmetry"], true);
    assert_eq!(twophase["properties"][0]["expectation"], "always");
    assert_eq!(twophase["bugs"][0]["breaks"][0], "TCConsistent");
}

#[test]
fn help_describes_each_subcommand_and_version_prints_the_version() {
    let out = checker(&["--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(!text.contains("Options shared"), "{text}");
    assert!(!text.contains("`checker history`"), "{text}");
    // (A subcommand's line: its name, padded to the longest name, and its summary.)
    let line = |name: &str, summary: &str| {
        text.lines().any(|l| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') && rest.trim_start().starts_with(summary))
        })
    };
    assert!(line("raft", "Leader election, log replication"), "{text}");
    assert!(line("history", "Check a recorded history"), "{text}");
    assert!(text.contains("-V, --version"), "{text}");
    let out = checker(&["raft", "--help"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("Ongaro & Ousterhout"));
    for flag in ["--version", "-V"] {
        let out = checker(&[flag]);
        assert_eq!(code(&out), 0);
        assert_eq!(
            stdout(&out).trim(),
            format!("checker {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn usage_errors_exit_two_with_one_line_naming_valid_values() {
    let cases: &[(&[&str], &str)] = &[
        (&["paxos"], "twophase, tcommit"),
        (&["twophase", "--rms", "0"], "1..=16"),
        (&["twophase", "--rms", "x"], "1..=16"),
        (&["twophase", "--bug", "nope"], "tm-commits-early"),
        (&["twophase", "--threads", "0"], "--threads"),
        (&["twophase", "--frobnicate"], "--frobnicate"),
        (&["twophase", "--bfs", "--dfs"], "--dfs"),
        (&["twophase", "--seed", "3"], "--sim"),
        (&["twophase", "--timeout", "-1"], "seconds"),
        (&["twophase", "--timeout", "0"], "seconds"),
        (
            &["twophase", "--bfs", "--symmetry", "--engine", "stateright"],
            "--dfs or --sim",
        ),
        (&["twophase", "--engine", "spin"], "stateright"),
        (&["tcommit", "--symmetry"], "no symmetry"),
        (
            &["twophase", "--rms", "4", "--write-report"],
            "default configuration",
        ),
    ];
    for (args, needle) in cases {
        let out = checker(args);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} should mention {needle:?}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn runs_cut_short_by_a_limit_exit_three_and_say_unknown() {
    for args in [
        &["twophase", "--max-states", "10"][..],
        &["twophase", "--depth", "3"][..],
        &["twophase", "--rms", "14", "--timeout", "0.3"][..],
    ] {
        let (code, v) = json(args);
        assert_eq!(code, 3, "{args:?}: {v}");
        assert_eq!(v["complete"], false);
        assert_eq!(status_of(&v, "TCConsistent"), "unknown", "{args:?}");
    }
    // Unexpected results still win over a cut-short run: a violation is definite.
    let (code, v) = json(&["twophase", "--bug", "prepared-wrong-rm", "--depth", "3"]);
    assert_eq!(code, 1);
    assert_eq!(status_of(&v, "TPTypeOK"), "violated");
}

#[test]
fn simulation_prints_its_seed_and_is_never_complete() {
    let out = checker(&[
        "twophase",
        "--sim",
        "--seed",
        "7",
        "--max-states",
        "5000",
        "--json",
        "--quiet",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("simulation seed: 7"));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["strategy"], "sim");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["complete"], false);

    let out = checker(&["twophase", "--sim", "--max-states", "100", "--quiet"]);
    assert!(stderr(&out).contains("simulation seed: "));

    let (code, v) = json(&[
        "twophase",
        "--sim",
        "--seed",
        "1",
        "--bug",
        "tm-commits-early",
        "--timeout",
        "2",
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(status_of(&v, "TCConsistent"), "violated");
}

#[test]
fn symmetry_reduces_twophase_under_bfs_and_dfs() {
    let (code, v) = json(&["twophase", "--symmetry"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["strategy"], "bfs");
    assert_eq!(v["engine"], "ours");
    assert_eq!(v["symmetry"], true);
    assert_eq!(v["unique_states"], 80);
    let (_, v) = json(&["twophase", "--symmetry", "--dfs", "--threads", "1"]);
    assert_eq!(v["unique_states"], 80);
    // stateright's engine honours symmetry under DFS only, and switches to it.
    let (_, v) = json(&["twophase", "--symmetry", "--engine", "stateright"]);
    assert_eq!(v["strategy"], "dfs");
    assert_eq!(v["engine"], "stateright");
    assert_eq!(v["unique_states"], 80);
}

#[test]
fn explore_serves_the_web_explorer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(["twophase", "--explore", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            write!(s, "GET /api/path/0 HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if !body.is_empty() {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "explorer did not answer");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"),
        "{body}"
    );
    assert!(body.contains("rmState"), "{body}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("http://{addr}/")));

    // A busy address is a clear error, not a panic.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = checker(&["twophase", "--explore", &addr]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot serve the explorer"));
}

fn porcupine(file: &str) -> String {
    format!(
        "{}/../../shared/data/linearizability/porcupine/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A file in the system's temporary folder, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("checker-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn history_checks_jepsen_and_porcupine_files() {
    let out = checker(&[
        "history",
        "--model",
        "cas-register",
        "--format",
        "jepsen",
        &porcupine("jepsen/etcd_000.log"),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("not linearizable"), "{text}");
    assert!(text.contains("none of these can come next"), "{text}");

    let out = checker(&[
        "history",
        "--model",
        "cas-register",
        "--format",
        "jepsen",
        &porcupine("jepsen/etcd_002.log"),
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verdict"], "linearizable");
    assert_eq!(v["model"], "cas-register");
    assert!(v["operations"].as_u64().unwrap() > 0);
    assert!(v["elapsed_s"].as_f64().is_some());
    assert!(v["failure"].is_null());

    let out = checker(&[
        "history",
        "--model",
        "kv",
        "--format",
        "porcupine-kv",
        &porcupine("kv/c50-bad.txt"),
        "--json",
    ]);
    assert_eq!(code(&out), 1);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verdict"], "not_linearizable");
    assert!(v["failure"]["partition"].is_string());
    assert!(!v["failure"]["unplaced"].as_array().unwrap().is_empty());
}

#[test]
fn history_reads_jsonl_and_reports_bad_input_with_exit_two() {
    let ok = TempFile::new(
        "ok.jsonl",
        r#"{"process":0,"type":"invoke","f":"put","key":"x","value":"1"}
{"process":1,"type":"invoke","f":"get","key":"x","value":null}
{"process":0,"type":"ok","f":"put","key":"x","value":"1"}
{"process":1,"type":"ok","f":"get","key":"x","value":"1"}
{"process":1,"type":"invoke","f":"append","key":"x","value":"2"}
{"process":1,"type":"info","f":"append","key":"x","value":"2"}
"#,
    );
    let (code_ok, v) = {
        let out = checker(&[
            "history",
            "--model",
            "kv",
            "--format",
            "jsonl",
            ok.path(),
            "--json",
        ]);
        (
            code(&out),
            serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        )
    };
    assert_eq!(code_ok, 0, "{v}");
    assert_eq!(v["operations"], 3);

    let stale = TempFile::new(
        "stale.jsonl",
        r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":null}
"#,
    );
    let out = checker(&[
        "history",
        "--model",
        "register",
        "--format",
        "jsonl",
        stale.path(),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));

    let bad = TempFile::new(
        "bad.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n",
    );
    let out = checker(&[
        "history",
        "--model",
        "register",
        "--format",
        "jsonl",
        bad.path(),
    ]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains(":") && err.contains("line 2"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    for args in [
        &["history", "--model", "kv", "--format", "jepsen", bad.path()][..],
        &[
            "history",
            "--model",
            "nope",
            "--format",
            "jsonl",
            bad.path(),
        ][..],
        &[
            "history",
            "--model",
            "kv",
            "--format",
            "jsonl",
            "/no/such/file",
        ][..],
    ] {
        let out = checker(args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn history_budget_exhausted_is_unknown_exit_three() {
    // Many concurrent writes and a read of a value nobody wrote: the search cannot finish in time.
    let mut text = String::new();
    for p in 0..40 {
        text.push_str(&format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p}}}\n"
        ));
    }
    for p in 40..80 {
        text.push_str(&format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n"
        ));
    }
    text.push_str("{\"process\":99,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n");
    for p in 0..40 {
        text.push_str(&format!(
            "{{\"process\":{p},\"type\":\"ok\",\"f\":\"write\",\"value\":{p}}}\n"
        ));
    }
    for p in 40..80 {
        text.push_str(&format!(
            "{{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":{}}}\n",
            p % 7
        ));
    }
    text.push_str("{\"process\":99,\"type\":\"ok\",\"f\":\"read\",\"value\":77}\n");
    let hard = TempFile::new("hard.jsonl", &text);
    let out = checker(&[
        "history",
        "--model",
        "register",
        "--format",
        "jsonl",
        hard.path(),
        "--timeout",
        "0.3",
        "--json",
    ]);
    assert_eq!(code(&out), 3, "{}", stdout(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verdict"], "unknown");
}

fn merkle_vectors() -> String {
    format!(
        "{}/../../shared/data/merkle/rfc6962_published.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn merkle_verify_agrees_with_every_published_vector() {
    let out = checker(&["merkle", "verify", &merkle_vectors()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    let last = text.lines().last().unwrap();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    let passed: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 40, "{last}");
    assert!(!text.contains("FAIL"));

    let out = checker(&["merkle", "verify", &merkle_vectors(), "--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["failed"], 0);
    assert_eq!(v["passed"].as_u64().unwrap() as usize, passed);
}

#[test]
fn merkle_verify_catches_a_tampered_vector_and_rejects_malformed_files() {
    let text = std::fs::read_to_string(merkle_vectors()).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    // Claim that an invalid case is valid, and corrupt a root.
    v["inclusion_proofs"][0]["valid"] = Value::Bool(true);
    let root8 = v["roots"]["8"].as_str().unwrap().replace('5', "6");
    v["roots"]["8"] = Value::String(root8);
    let tampered = TempFile::new("tampered.json", &v.to_string());
    let out = checker(&["merkle", "verify", tampered.path()]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert_eq!(text.matches("FAIL").count(), 2, "{text}");
    assert!(text.trim_end().ends_with("2 failed"), "{text}");

    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("leaves");
    let mut bad_hex =
        serde_json::from_str::<Value>(&std::fs::read_to_string(merkle_vectors()).unwrap()).unwrap();
    bad_hex["consistency_proofs"][1]["path"][0] = Value::String("zz".into());
    for (name, body, needle) in [
        ("missing.json", missing.to_string(), "\"leaves\""),
        ("badhex.json", bad_hex.to_string(), "consistency_proofs[1]"),
        ("notjson.json", "{".to_string(), "invalid JSON"),
    ] {
        let f = TempFile::new(name, &body);
        let out = checker(&["merkle", "verify", f.path()]);
        assert_eq!(code(&out), 2, "{name}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{name}: {err}");
    }
    let out = checker(&["merkle", "verify", "/no/such/file.json"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn history_checks_transactions_for_strict_serializability() {
    // T2 starts after T1 ended but reads x before T1's write: serializable (T2, T1), not strictly.
    let stale = TempFile::new(
        "stale-txn.jsonl",
        r#"{"id": 1, "status": "committed", "start": 0, "end": 1, "ops": [["w", "x", 1]]}
{"id": 2, "status": "committed", "start": 2, "end": 3, "ops": [["r", "x", 0], ["w", "y", 1]]}
{"id": 3, "status": "aborted", "start": 2, "end": 4, "ops": [["w", "x", 2]]}
"#,
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "history",
            "--model",
            "txn",
            "--format",
            "jsonl",
            stale.path(),
        ];
        args.extend(extra);
        let out = checker(&args);
        (code(&out), stdout(&out), stderr(&out))
    };
    let (c, out, _) = run(&["--json"]);
    assert_eq!(c, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "not_strict_serializable");
    assert_eq!(v["transactions"], 3);
    assert_eq!(v["violation"]["anomaly"], "RealTime");
    assert_eq!(v["violation"]["txns"], serde_json::json!([1, 2]));
    let (c, out, _) = run(&["--level", "serializable"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains(": serializable (3 transactions"), "{out}");

    let skew = TempFile::new(
        "skew.jsonl",
        r#"{"id": 1, "status": "committed", "ops": [["r", "x", 0], ["r", "y", 0], ["w", "x", 1]]}
{"id": 2, "status": "committed", "ops": [["r", "x", 0], ["r", "y", 0], ["w", "y", 1]]}
"#,
    );
    let out = checker(&[
        "history",
        "--model",
        "txn",
        "--format",
        "jsonl",
        skew.path(),
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("G2 (anti-dependency cycle)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("T1 -rw(\"y\")-> T2"),
        "{}",
        stdout(&out)
    );

    // Bad input: exit 2 with the line and the reason.
    let twice = TempFile::new(
        "twice.jsonl",
        "{\"id\": 1, \"status\": \"committed\", \"ops\": [[\"w\", \"x\", 1]]}\n{\"id\": 2, \"status\": \"committed\", \"ops\": [[\"w\", \"x\", 1]]}\n",
    );
    let out = checker(&[
        "history",
        "--model",
        "txn",
        "--format",
        "jsonl",
        twice.path(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert!(stderr(&out).contains("written twice"), "{}", stderr(&out));
    let out = checker(&[
        "history",
        "--model",
        "txn",
        "--format",
        "jepsen",
        skew.path(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("jsonl"), "{}", stderr(&out));
}

/// A causal history file written from one transaction per line, `SESSION: OP, OP, ..`, each
/// `OP` being `r KEY V` or `w KEY V`; transaction ids count from 1.
fn causal_file(name: &str, txns: &str) -> TempFile {
    let mut text = String::new();
    for (i, line) in txns
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let (session, ops) = line.split_once(':').expect("SESSION: OPS");
        let ops: Vec<String> = ops
            .split(',')
            .map(|op| {
                let part: Vec<&str> = op.split_whitespace().collect();
                format!("[\"{}\", \"{}\", {}]", part[0], part[1], part[2])
            })
            .collect();
        text.push_str(&format!(
            "{{\"id\": {}, \"session\": {}, \"status\": \"committed\", \"ops\": [{}]}}\n",
            i + 1,
            session.trim(),
            ops.join(", ")
        ));
    }
    TempFile::new(name, &text)
}

/// `checker history --model causal FILE --level LEVEL`: exit code and stdout.
fn causal(file: &TempFile, level: &str) -> (i32, String) {
    let out = checker(&[
        "history",
        "--model",
        "causal",
        "--level",
        level,
        file.path(),
    ]);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    (code(&out), stdout(&out))
}

/// A look-aside cache's history (`jepsen memcache`'s format): a read that begins after a write
/// returned and returns an older version is stale, unless the gutter served it within its ttl.
#[test]
fn history_checks_a_cache_history_for_freshness() {
    let lines = |reads: &[(&str, f64)]| {
        let mut text = String::from(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"time\":0.0}\n\
             {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1,\"time\":0.1}\n",
        );
        for (i, (served, at)) in reads.iter().enumerate() {
            text.push_str(&format!(
                "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"time\":{at}}}\n\
                 {{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":0,\"served\":\"{served}\",\"ttl\":1.0,\"time\":{at}}}\n",
                p = i + 1
            ));
        }
        text
    };
    let fresh = TempFile::new("cache-fresh.jsonl", &lines(&[("gutter", 0.5)]));
    let out = checker(&["history", "--model", "cache", fresh.path()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(": fresh (cache, 2 operations"),
        "{}",
        stdout(&out)
    );
    let stale = TempFile::new(
        "cache-stale.jsonl",
        &lines(&[("gutter", 2.0), ("memcache", 0.2)]),
    );
    let out = checker(&["history", "--model", "cache", stale.path()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(": not fresh (cache, 3 operations"), "{text}");
    assert!(
        text.contains("2 stale reads; the first: a read served by gutter returned v0 1.900 s after the write of v1"),
        "{text}"
    );
    let bad = TempFile::new(
        "cache-bad.jsonl",
        "{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"time\":0}\n",
    );
    let out = checker(&["history", "--model", "cache", bad.path()]);
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("line 1: process 0 completes an operation it did not invoke"));
}

#[test]
fn history_checks_a_causal_history_at_every_level() {
    // Session 1 reads x=1 then writes y; session 2 sees y=1, hence x=1, then overwrites x in a
    // transaction; session 0 sees the overwrite.
    let fine = causal_file(
        "causal-ok.jsonl",
        "0: w x 1
         1: r x 1
         1: w y 1
         2: r y 1, r x 1, w x 2
         0: r x 2",
    );
    for level in ["cc", "cm", "ccv", "tcc"] {
        let (c, out) = causal(&fine, level);
        assert_eq!(c, 0, "{level}: {out}");
        assert!(
            out.contains(&format!(
                ": {level} (5 transactions, 7 operations, 3 sessions, "
            )),
            "{out}"
        );
    }
    // The default level is ccv, and the format jsonl.
    let out = checker(&["history", "--model", "causal", fine.path()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(": ccv ("), "{}", stdout(&out));
}

/// Each bad pattern of Bouajjani et al., at the weakest level that sees it (the histories of
/// `properties/src/causal/tests.rs`): exit 1, the verdict and the pattern on an indented line.
#[test]
fn history_names_each_causal_bad_pattern() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("thin-air", "cc", "ThinAirRead", "0: r x 7"),
        (
            "cyclic-co",
            "cc",
            "CyclicCO",
            "0: r x 1
             0: w y 1
             1: r y 1
             1: w x 1",
        ),
        ("init-read", "cc", "WriteCOInitRead", "0: w x 1\n0: r x 0"),
        // COPS §1: Alice removes her boss from the ACL (x), then posts a photo (y); the boss
        // sees the photo, then the old ACL.
        (
            "acl",
            "cc",
            "WriteCORead",
            "0: w x 1
             0: w x 2
             0: w y 1
             1: r y 1
             1: r x 1",
        ),
        // One session sees x go 1, 2, 1 again.
        (
            "come-back",
            "cm",
            "CyclicHB",
            "0: w x 1
             1: w x 2
             2: r x 1
             2: r x 2
             2: r x 1",
        ),
        (
            "hb-init",
            "cm",
            "WriteHBInitRead",
            "0: w x 1
             0: w y 2
             0: w x 2
             1: w y 1
             2: r y 1
             2: r x 0
             2: r x 2
             2: r y 1",
        ),
        // Two readers see the concurrent writes of x in opposite orders.
        (
            "disagree",
            "ccv",
            "CyclicCF",
            "0: w x 1
             1: w x 2
             2: r x 1
             2: r x 2
             3: r x 2
             3: r x 1",
        ),
        // COPS-GT §4.6: a get_trans that returns the old x and a y that depends on the new x.
        (
            "mixed-snapshot",
            "tcc",
            "WriteCORead",
            "0: w x 1
             0: w x 2
             0: w y 1
             1: r x 1, r y 1",
        ),
        ("internal", "tcc", "InternalRead", "0: w x 1, r x 0"),
        (
            "draft",
            "tcc",
            "IntermediateRead",
            "0: w x 1, w x 2\n1: r x 1",
        ),
    ];
    let weaker = |level| match level {
        "cm" | "ccv" => Some("cc"),
        "tcc" => Some("ccv"),
        _ => None,
    };
    for (name, level, pattern, txns) in cases {
        let file = causal_file(&format!("causal-{name}.jsonl"), txns);
        let (c, out) = causal(&file, level);
        assert_eq!(c, 1, "{name}: {out}");
        assert!(out.contains(&format!(": not {level} (")), "{name}: {out}");
        let second = out.lines().nth(1).unwrap_or_default();
        assert!(
            second.starts_with(&format!("  {pattern}: ")),
            "{name}: {out}"
        );
        // Only the hand-picked level sees it (for the last three, `cc` reads operations one
        // at a time and still finds something else or nothing).
        if let Some(weaker) = weaker(level).filter(|_| !["internal", "draft"].contains(name)) {
            let (c, out) = causal(&file, weaker);
            assert_eq!(c, 0, "{name} at {weaker}: {out}");
        }
    }
}

#[test]
fn history_causal_json_names_the_pattern_and_its_operations() {
    let acl = causal_file(
        "causal-acl-json.jsonl",
        "0: w x 1
         0: w x 2
         0: w y 1
         1: r y 1
         1: r x 1",
    );
    let (c, v) = {
        let out = checker(&["history", "--model", "causal", acl.path(), "--json"]);
        (
            code(&out),
            serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        )
    };
    assert_eq!(c, 1, "{v}");
    assert_eq!(v["model"], "causal");
    assert_eq!(v["verdict"], "not_ccv");
    assert_eq!(v["transactions"], 5);
    assert_eq!(v["operations"], 5);
    assert_eq!(v["sessions"], 2);
    assert!(v["elapsed_s"].as_f64().is_some());
    assert_eq!(v["violation"]["pattern"], "WriteCORead");
    assert_eq!(
        v["violation"]["ops"],
        serde_json::json!([
            {"txn": 1, "session": 0, "op": "w x=1"},
            {"txn": 2, "session": 0, "op": "w x=2"},
            {"txn": 5, "session": 1, "op": "r x=1"},
        ])
    );
    assert!(
        v["violation"]["explanation"]
            .as_str()
            .unwrap()
            .contains("overwrote in its causal past"),
        "{v}"
    );
}

#[test]
fn history_causal_bad_input_exits_two_with_one_line() {
    let no_session = TempFile::new(
        "causal-no-session.jsonl",
        "{\"id\": 1, \"session\": 0, \"status\": \"committed\", \"ops\": [[\"w\", \"x\", 1]]}\n\
         {\"id\": 2, \"status\": \"committed\", \"ops\": [[\"r\", \"x\", 1]]}\n",
    );
    let ok = causal_file("causal-fine.jsonl", "0: w x 1");
    let cases: &[(&[&str], &str)] = &[
        (
            &["history", "--model", "causal", no_session.path()],
            "line 2: \"session\"",
        ),
        (
            &["history", "--model", "causal", "--level", "rc", ok.path()],
            "expected one of: cc, cm, ccv, tcc",
        ),
        (
            &["history", "--model", "txn", "--level", "ccv", ok.path()],
            "expected one of: strict, serializable",
        ),
        (
            &[
                "history",
                "--model",
                "causal",
                "--format",
                "jepsen",
                ok.path(),
            ],
            "jsonl",
        ),
        (
            &["history", "--model", "kv", "--level", "cc", ok.path()],
            "--level",
        ),
    ];
    for (args, needle) in cases {
        let out = checker(args);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} should say {needle:?}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    assert!(stderr(&checker(cases[0].0)).contains(no_session.path()));
}

/// A seeded bug's summary leads with the property the bug names, says why it is violated in the
/// paper's terms, and does not call the examples its small configuration cannot reach failures.
#[test]
fn a_bug_summary_names_its_target_and_shows_the_evidence() {
    let out = checker(&["raft", "--bug", "forget-vote", "--quiet"]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let first = text
        .lines()
        .find(|l| l.starts_with("  violated") || l.starts_with("  holds"))
        .unwrap();
    assert!(
        first.contains("Election Safety  <- the bug's target: broken, as expected"),
        "{text}"
    );
    assert!(
        text.contains("why: term 1 has 2 leaders: S0 and S1"),
        "{text}"
    );
    // Steps name actors by role and show what they changed, in Raft's terms (TLC-style).
    assert!(text.contains("2. S0 → RequestVote { term: 1"), "{text}");
    assert!(
        text.contains("~ S1 Leader (match [0, 0]) t1 voted S1 log [1:t1 no-op] commit 0"),
        "{text}"
    );
    assert!(text.contains("~ leaders so far: t1 S0, t1 S1"), "{text}");
    assert!(
        text.contains(
            "a follower installs a snapshot  (not reached in the bug's small configuration)"
        ),
        "{text}"
    );
    assert!(
        text.contains("result: the bug breaks what it names (Election Safety), and nothing else"),
        "{text}"
    );
    // The serializability checker's cycle, for two-phase commit's early unlock, and the step
    // where the second transaction writes a key the first (prepared) has read.
    let out = checker(&["twopc", "--bug", "early-unlock", "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("why: G2"), "{text}");
    assert!(
        text.contains("~ Shard 0 [x@v0]; T1 Prepared (r x@v0); T2 Working (w x)"),
        "{text}"
    );
    // CRAQ's dirty read: the tail has nothing yet and answers the read with the empty value.
    let out = checker(&["craq", "--bug", "craq-dirty-read", "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("N2 Hist [] acked 0 (chain N1→N2, epoch 0)"),
        "{text}"
    );
    assert!(
        text.contains("N1 → Client(Reply { seq: 1, ret: Value(\"a\") }) → C4"),
        "{text}"
    );
}

/// `--depth N` says what it checked: no violation up to depth N.
#[test]
fn a_depth_bound_run_says_what_it_checked() {
    let out = checker(&["chain", "--depth", "4", "--quiet"]);
    assert_eq!(code(&out), 3);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("max depth 4,"), "{text}");
    assert!(
        text.contains("linearizable client history  (no violation up to depth 4)"),
        "{text}"
    );
    assert!(
        text.contains("result: no counterexample up to depth 4"),
        "{text}"
    );
}

/// `--html FILE` writes the counterexample as a page whose data says who sent what when: the
/// vote that makes a second leader in Raft's forget-vote bug is drawn from the step that sent it.
#[test]
fn html_writes_a_space_time_diagram_of_the_counterexample() {
    let dir = std::env::temp_dir().join(format!("checker-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("raft.html");
    let out = checker(&[
        "raft",
        "--bug",
        "forget-vote",
        "--quiet",
        "--html",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    let page = std::fs::read_to_string(&file).unwrap();
    let start = page
        .find(r#"<script id="data" type="application/json">"#)
        .unwrap();
    let json = &page[start..];
    let json = &json[json.find('>').unwrap() + 1..json.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(data["header"]["property"], "Election Safety");
    assert!(data["header"]["evidence"]
        .as_str()
        .unwrap()
        .contains("S0 and S1"));
    assert_eq!(data["actors"], serde_json::json!(["S0", "S1", "S2"]));
    let steps = data["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    let last = &steps[7];
    assert_eq!(last["kind"], "deliver");
    assert_eq!(
        (last["src"].as_u64(), last["actor"].as_u64()),
        (Some(2), Some(1))
    );
    // Server 2's vote was sent when it handled step 6's RequestVote.
    assert_eq!(last["sent_at"].as_u64(), Some(6));
    assert_eq!(last["violated"], serde_json::json!(["Election Safety"]));
    assert_eq!(steps[4]["kind"], "crash");
    assert_eq!(steps[6]["violated"], serde_json::json!([]));
    // A model that is not an actor model gets its steps and states, without a diagram.
    let file = dir.join("twophase.html");
    let out = checker(&[
        "twophase",
        "--bug",
        "tm-commits-early",
        "--quiet",
        "--html",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("TCConsistent"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A random walk's counterexample is minimised: the steps the violation does not need (and
/// the steps that change nothing, which a simulation records) are removed.
#[test]
fn a_simulation_counterexample_is_minimised() {
    let out = checker(&[
        "raft",
        "--bug",
        "forget-vote",
        "--sim",
        "--seed",
        "1",
        "--threads",
        "1",
        "--first-failure",
        "--timeout",
        "30",
        "--quiet",
    ]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("steps walked at random"), "{text}");
    // BFS's shortest counterexample has 7 steps; the walk's is cut down to as few.
    assert!(
        text.contains("counterexample to \"Election Safety\" (always), 7 steps (minimised from"),
        "{text}"
    );
    assert!(text.contains("why: term 1 has 2 leaders"), "{text}");
}

fn jepsen_edn(file: &str) -> String {
    format!(
        "{}/../../shared/data/jepsen/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Knossos's EDN register histories: the linearizable one exits 0, the other 1 and names what
/// cannot come next; `--initial` only with EDN, and a list-append history is malformed here.
#[test]
fn history_checks_knossos_edn_files() {
    let edn = |file: &str, extra: &[&str]| {
        let path = jepsen_edn(file);
        let mut args = vec!["history", "--model", "cas-register", "--format", "edn"];
        args.extend_from_slice(extra);
        args.push(&path);
        checker(&args)
    };
    let out = edn("memstress3-9.edn", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("linearizable (cas-register, 316 operations"));
    let out = edn("cas-failure.edn", &["--json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stdout(&out).contains("\"verdict\": \"not_linearizable\""));
    let out = edn("paper-example.edn", &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("line 1: missing :process"),
        "{}",
        stderr(&out)
    );

    let out = checker(&[
        "history",
        "--model",
        "cas-register",
        "--format",
        "jepsen",
        "--initial",
        "0",
        &jepsen_edn("cas-failure.edn"),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--initial applies to --format edn"));
}

/// Elle's list-append histories: the paper's example is G-single (not strict serializable, nor
/// anything down to read committed), si-without-g-single is G2-item (snapshot isolated, not
/// repeatable read); Elle's JSON form reads the same; bad input exits 2 with one line.
#[test]
fn history_checks_elle_list_append_files() {
    let run = |file: &str, extra: &[&str]| {
        let path = jepsen_edn(file);
        let mut args = vec!["history", "--model", "list-append", "--format", "edn"];
        args.extend_from_slice(extra);
        args.push(&path);
        checker(&args)
    };
    let out = run("paper-example.edn", &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("not strict serializable (4 transactions, 8 operations"));
    assert!(
        text.contains("G-single (forbidden by strict-serializable): T2 -wr-> T3 -ww-> T4 -rw-> T2"),
        "{text}"
    );
    assert!(text.contains("T4 -rw(255)-> T2: T4 did not observe T2's append of 8 to 255"));
    let out = run("paper-example.edn", &["--level", "read-committed"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));

    for (level, exit) in [
        ("strict", 1),
        ("serializable", 1),
        ("snapshot-isolation", 0),
        ("repeatable-read", 1),
        ("read-committed", 0),
    ] {
        let out = run("si-without-g-single.edn", &["--level", level]);
        assert_eq!(code(&out), exit, "{level}: {}", stdout(&out));
        assert!(stdout(&out).contains("G2-item ("), "{}", stdout(&out));
    }
    let out = run(
        "si-without-g-single.edn",
        &["--level", "repeatable-read", "--json"],
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verdict"], "not_repeatable_read");
    assert_eq!(v["forbidden"], serde_json::json!(["G2-item"]));
    assert_eq!(v["anomalies"][0]["anomaly"], "G2-item");
    assert_eq!(v["anomalies"][0]["cycle"][0]["kind"], "rw");

    let json = TempFile::new(
        "append.json",
        r#"[{"index": 0, "type": "invoke", "process": 0, "value": [["append", 1, 1], ["r", 2, null]]},
 {"index": 1, "type": "invoke", "process": 1, "value": [["append", 2, 1], ["r", 1, null]]},
 {"index": 2, "type": "ok", "process": 0, "value": [["append", 1, 1], ["r", 2, null]]},
 {"index": 3, "type": "ok", "process": 1, "value": [["append", 2, 1], ["r", 1, null]]}]
"#,
    );
    for format in [&["--format", "json"][..], &[]] {
        let mut args = vec!["history", "--model", "list-append"];
        args.extend_from_slice(format);
        args.extend(["--level", "serializable", json.path()]);
        let out = checker(&args);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert!(stdout(&out).contains("G2-item (forbidden by serializable): T1 -rw-> T2 -rw-> T1"));
    }

    let out = run("cas-failure.edn", &[]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("line 1: unknown :f :read"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let broken = TempFile::new("broken.edn", "{:type :ok, :value [[:append 1 2]\n");
    let out = checker(&["history", "--model", "list-append", broken.path()]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
    let out = run("paper-example.edn", &["--level", "snapshot"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("snapshot-isolation, repeatable-read, read-committed"));
}
