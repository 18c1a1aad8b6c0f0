//! `checker bitcoin headers FILE` as a user types it: regtest chains mined here (nBits
//! 0x207fffff takes about two tries a header), a competing `fork:` branch, invalid lines, and the
//! real mainnet header of block 413,567.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use models::bitcoin::consensus::{
    check_proof_of_work, sha256d, Block, ChainParams, Hash256, Header,
};
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

/// Writes `lines` to a file of the test's own.
fn file(name: &str, lines: &[String]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("bitcoin-headers-{}-{name}.txt", std::process::id()));
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the headers file");
    path
}

fn run(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["bitcoin", "headers", path.to_str().expect("utf-8 path")];
    args.extend(extra);
    checker(&args)
}

/// A regtest header on `prev`, mined at nBits `bits`; `tag` makes sibling headers differ.
fn mine(prev: Hash256, time: u32, bits: u32, tag: &str) -> Header {
    let mut h = Header {
        version: 0x2000_0000,
        prev_blockhash: prev,
        merkle_root: sha256d(tag.as_bytes()),
        time,
        bits,
        nonce: 0,
    };
    while !check_proof_of_work(h.hash(), h.bits, ChainParams::regtest().pow_limit) {
        h.nonce += 1;
    }
    h
}

/// `n` regtest headers on `prev`, ten minutes apart.
fn branch(prev: &Header, n: usize, tag: &str) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for i in 0..n {
        let p = out.last().unwrap_or(prev);
        out.push(mine(
            p.hash(),
            p.time + 600,
            0x207fffff,
            &format!("{tag}{i}"),
        ));
    }
    out
}

fn hex(h: &Header) -> String {
    h.serialize().iter().map(|b| format!("{b:02x}")).collect()
}

fn genesis() -> Header {
    mine(Hash256::ZERO, 1_296_688_602, 0x207fffff, "root")
}

/// Root and main branch of 3 (heights 0-3), then a fork off height 1 of `fork_len` headers.
fn forked_file(name: &str, fork_len: usize) -> (PathBuf, Vec<Header>, Vec<Header>) {
    let root = genesis();
    let main = [vec![root], branch(&root, 3, "main")].concat();
    let fork = branch(&main[1], fork_len, "fork");
    let mut lines: Vec<String> = vec!["# a regtest chain and a competing branch".into()];
    lines.extend(main.iter().map(hex));
    lines.extend(fork.iter().map(|h| format!("fork: {}", hex(h))));
    (file(name, &lines), main, fork)
}

#[test]
fn regtest_fork_with_more_work_is_the_tip() {
    let (path, _, fork) = forked_file("more-work", 4);
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("hash: {}", fork[3].hash())),
        "{text}"
    );
    // Root at 0, fork from height 1: its fourth header is at height 5. Lines: comment, 4 main,
    // then the fork's 4 at lines 6-9.
    assert!(
        text.contains("most-work tip: line 9 (fork), height 5 above the first header"),
        "{text}"
    );
    assert!(
        text.contains("8 headers valid on regtest (4 on fork: lines, 2 tips)"),
        "{text}"
    );

    let out = run(&path, &["--chain", "regtest", "--json"]);
    assert_eq!(code(&out), 0);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(v["valid"], true);
    assert_eq!(v["tip"]["height_above_first"], 5);
    assert_eq!(v["tip"]["on_fork"], true);
    // Six headers of two expected hashes each (GetBlockProof of 0x207fffff).
    assert_eq!(v["tip"]["chain_work"], format!("{:064x}", 12));
    let _ = std::fs::remove_file(path);
}

#[test]
fn regtest_equal_work_keeps_the_branch_listed_first() {
    let (path, main, _) = forked_file("tie", 2);
    let out = run(&path, &["--chain", "regtest", "--height", "100"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("hash: {}", main[3].hash())),
        "{text}"
    );
    assert!(
        text.contains("line 5, height 3 above the first header (height 103)"),
        "{text}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn invalid_proof_of_work_names_its_line() {
    let root = genesis();
    let mut chain = [vec![root], branch(&root, 2, "main")].concat();
    let mut bad = mine(chain[2].hash(), chain[2].time + 600, 0x207fffff, "bad");
    while check_proof_of_work(bad.hash(), bad.bits, ChainParams::regtest().pow_limit) {
        bad.nonce += 1;
    }
    chain.push(bad);
    let path = file("bad-pow", &chain.iter().map(hex).collect::<Vec<_>>());
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 4: invalid header: proof of work: hash"),
        "{err}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn broken_links_name_their_line() {
    let root = genesis();
    let chain = [vec![root], branch(&root, 2, "main")].concat();
    let orphan = mine(sha256d(b"nowhere"), root.time + 600, 0x207fffff, "orphan");
    let mut lines: Vec<String> = chain.iter().map(hex).collect();
    lines.push(hex(&orphan));
    let path = file("orphan", &lines);
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("line 4: invalid header: its previous block"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("is not an earlier header"));

    // A plain line that does not extend the previous plain line must be marked fork:.
    let sibling = mine(chain[1].hash(), chain[1].time + 600, 0x207fffff, "sibling");
    let mut lines: Vec<String> = chain.iter().map(hex).collect();
    lines.push(hex(&sibling));
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("line 4: invalid header: it extends line 2 and not line 3"),
        "{}",
        stderr(&out)
    );
    lines[3] = format!("fork:{}", lines[3]);
    std::fs::write(&path, lines.join("\n")).unwrap();
    assert_eq!(code(&run(&path, &["--chain", "regtest"])), 0);

    // A header listed twice.
    lines.push(hex(&chain[2]));
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("line 5: invalid header:")
            && stderr(&out).contains("repeats the header of line 3")
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn wrong_nbits_is_refused_even_with_valid_work() {
    // 0x2000ffff is a harder target than regtest's 0x207fffff: the work is valid, the nBits not.
    let root = genesis();
    let harder = mine(root.hash(), root.time + 600, 0x2000ffff, "harder");
    let path = file("nbits", &[hex(&root), hex(&harder)]);
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "line 2: invalid header: nBits at height 1: 0x2000ffff is not the required 0x207fffff"
        ),
        "{err}"
    );
    // On mainnet rules the regtest headers are above the proof-of-work limit.
    let out = run(&path, &[]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("line 1: invalid header: proof of work: nBits 0x207fffff is easier than the proof-of-work limit"), "{}", stderr(&out));
    let _ = std::fs::remove_file(path);
}

fn block_413567_header() -> Header {
    let raw = std::fs::read(format!(
        "{}/../../shared/data/bitcoin/block413567.raw",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("block413567.raw");
    Block::parse(&raw).expect("the block parses").header
}

#[test]
fn mainnet_block_413567_header_alone_is_valid() {
    let header = block_413567_header();
    let path = file("mainnet", &[hex(&header)]);
    let out = run(&path, &["--height", "413567", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["tip"]["hash"],
        "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069"
    );
    assert_eq!(v["tip"]["height"], 413567);
    assert_eq!(v["tip"]["height_above_first"], 0);
    assert_eq!(v["chain"], "main");
    assert_eq!(
        v["tip"]["chain_work"],
        models::bitcoin::consensus::block_proof(header.bits).to_string()
    );

    // One changed nonce and the work is gone.
    let mut tampered = header;
    tampered.nonce ^= 1;
    std::fs::write(&path, format!("\n{}\n", hex(&tampered))).unwrap();
    let out = run(&path, &[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("line 2: invalid header: proof of work: hash"),
        "{}",
        stderr(&out)
    );
    let out = run(&path, &["--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["valid"].clone(), v["line"].clone()),
        (Value::Bool(false), 2.into())
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn usage_and_malformed_input() {
    // Usage and IO errors: exit 2, one line.
    for args in [
        vec!["bitcoin", "headers"],
        vec!["bitcoin", "headers", "/nonexistent/headers.txt"],
        vec!["bitcoin", "headers", "x", "--chain", "testnet9"],
        vec!["bitcoin", "headers", "x", "--height", "-1"],
    ] {
        let out = checker(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = checker(&["bitcoin", "headers", "--help"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("--chain"));

    // An empty file is a usage error; a malformed line is an invalid header.
    let path = file("malformed", &["# only a comment".into()]);
    assert_eq!(code(&run(&path, &[])), 2);
    let root = hex(&genesis());
    for (line, why) in [
        ("zz", "not a header: bad hex"),
        ("00", "not a header: header is 1 bytes, expected 80"),
        ("fork:", "not a header"),
    ] {
        std::fs::write(&path, format!("{root}\n{line}\n")).unwrap();
        let out = run(&path, &["--chain", "regtest"]);
        assert_eq!(code(&out), 1, "{line}");
        assert!(
            stderr(&out).contains(&format!("line 2: invalid header: {why}")),
            "{}",
            stderr(&out)
        );
    }
    std::fs::write(&path, format!("fork: {root}\n")).unwrap();
    let out = run(&path, &["--chain", "regtest"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("line 1: invalid header: the first header cannot be a fork: line")
    );
    let _ = std::fs::remove_file(path);
}
