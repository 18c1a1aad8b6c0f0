//! The web explorer tells the truth about the state it shows: a seeded bug's counterexample,
//! opened through the link the CLI prints, is shown violating its property at its last state
//! (and not before), over the explorer's HTTP API.

use std::io::{Read, Write};
use std::net::TcpStream;

use checker::run::Engine;
use checker::{find, RunOptions, Status, Strategy};
use models::catalog::Params;

/// `GET path` from the explorer at `addr`: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    // HTTP/1.0: the reply comes whole, not in chunks.
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let code = reply[9..12].parse().unwrap();
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code, body.to_string())
}

#[test]
fn a_counterexample_opened_in_the_explorer_is_violated_at_its_last_state() {
    let raft = find("raft").unwrap();
    let bug = raft
        .bugs()
        .iter()
        .find(|b| b.name == "forget-vote")
        .unwrap();
    let params = bug.configure(raft.params(), &Params::defaults(raft.params()));
    let opts = RunOptions {
        engine: Engine::Ours,
        strategy: Strategy::Bfs,
        threads: 2,
        first_failure: true,
        ..RunOptions::default()
    };
    let outcome = raft.check(&params, Some(bug.name), &opts);
    let violated = outcome
        .properties
        .iter()
        .find(|p| p.status == Status::Violated)
        .expect("forget-vote breaks a property");
    assert_eq!(violated.name, "Election Safety");
    let link = violated.explorer_path.clone().unwrap();
    let path = link.strip_prefix("#/steps/").unwrap();

    let server = checker::explorer::bind("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap().to_string();
    std::thread::spawn(move || raft.explore(&params, Some(bug.name), server));

    let (code, page) = get(&addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains("Properties at"));
    let (code, body) = get(&addr, &format!("/api/path/{path}"));
    assert_eq!(code, 200, "{body}");
    let view: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let steps = view["steps"].as_array().unwrap();
    let verdict = |step: &serde_json::Value| {
        step["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Election Safety")
            .map(|p| p["here"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(verdict(steps.last().unwrap()), "violated");
    // Breadth-first: the shortest path, so every state before the last is safe.
    for step in &steps[..steps.len() - 1] {
        assert_eq!(verdict(step), "holds");
    }
    // A path that does not exist is a clear 400, not a crash.
    let (code, body) = get(&addr, "/api/path/0/999");
    assert_eq!(code, 400);
    assert!(body.contains("no action 999"), "{body}");
}
