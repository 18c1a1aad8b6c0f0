//! Bitcoin Core's own vectors (`shared/data/bitcoin/`), mainnet block 413,567, and the corners of
//! the 256-bit arithmetic.

use super::*;
use proptest::prelude::*;

fn data(file: &str) -> String {
    format!(
        "{}/../../shared/data/bitcoin/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(data(file)).unwrap_or_else(|e| panic!("cannot read {file}: {e}"))
}

/// The block hash that `SOURCE.txt` gives for block 413,567.
fn source_block_hash() -> String {
    let text = String::from_utf8(read("SOURCE.txt")).expect("utf-8");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("block hash"))
        .expect("SOURCE.txt names the block hash");
    line.split_whitespace().last().expect("a hash").to_string()
}

fn parse_hex_u32(s: &str) -> u32 {
    let s = s.trim().trim_end_matches('U').trim_start_matches("0x");
    u32::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not hex: {s}"))
}

// --- compact targets ---------------------------------------------------------------------------

/// Every check of `bignum_SetCompact` (arith_uint256_tests.cpp), read from the verbatim C++.
#[test]
fn compact_vectors_of_arith_uint256_tests() {
    let text = String::from_utf8(read("compact_nbits_vectors.cpp.txt")).expect("utf-8");
    let body = text
        .split("BOOST_AUTO_TEST_CASE(bignum_SetCompact)")
        .nth(1)
        .expect("the test case");
    let mut num = U256::ZERO;
    let (mut negative, mut overflow) = (false, false);
    let mut checks = 0;
    let quoted = |l: &str| l.split('"').nth(1).expect("a quoted string").to_string();
    let arg2 = |l: &str| {
        l.rsplit(',')
            .next()
            .expect("two arguments")
            .trim()
            .trim_end_matches(");")
            .trim()
            .to_string()
    };
    for line in body.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("num.SetCompact(") {
            let c = compact_to_target(parse_hex_u32(rest.split(',').next().expect("nbits")));
            (num, negative, overflow) = (c.target, c.negative, c.overflow);
        } else if let Some(rest) = line.strip_prefix("num = ") {
            num = U256::from_u64(parse_hex_u32(rest.trim_end_matches(';')) as u64);
        } else if line.contains("num.GetHex()") {
            assert_eq!(num.to_string(), quoted(line), "{line}");
            checks += 1;
        } else if line.contains("num.GetCompact(true)") {
            assert_eq!(
                target_to_compact(num, true),
                parse_hex_u32(&arg2(line)),
                "{line}"
            );
            checks += 1;
        } else if line.contains("num.GetCompact()") {
            assert_eq!(
                target_to_compact(num, false),
                parse_hex_u32(&arg2(line)),
                "{line}"
            );
            checks += 1;
        } else if line.starts_with("BOOST_CHECK_EQUAL(fNegative") {
            assert_eq!(negative, arg2(line) == "true", "{line}");
            checks += 1;
        } else if line.starts_with("BOOST_CHECK_EQUAL(fOverflow") {
            assert_eq!(overflow, arg2(line) == "true", "{line}");
            checks += 1;
        }
    }
    // 19 SetCompact blocks of 4 checks, the 0x80 check, and the last block's 2 flags.
    assert_eq!(checks, 4 * 19 + 1 + 2);
}

#[test]
fn compact_round_trips_the_mainnet_and_regtest_limits() {
    assert_eq!(ChainParams::mainnet().pow_limit_bits(), 0x1d00ffff);
    assert_eq!(ChainParams::regtest().pow_limit_bits(), 0x207fffff);
    assert_eq!(
        compact_to_target(0x1d00ffff).target,
        U256::from_hex("00000000ffff0000000000000000000000000000000000000000000000000000").unwrap()
    );
}

// --- proof of work and retargeting -------------------------------------------------------------

fn retarget_vectors() -> serde_json::Value {
    serde_json::from_slice(&read("pow_retarget_vectors.json")).expect("json")
}

/// The four `CalculateNextWorkRequired` vectors of pow_tests.cpp, each also through
/// `GetNextWorkRequired` with the window's first block as the only ancestor known, and the ±1
/// checks of `PermittedDifficultyTransition`.
#[test]
fn retarget_vectors_of_pow_tests() {
    let v = retarget_vectors();
    let params = ChainParams::mainnet();
    let p = &v["params"];
    assert_eq!(
        params.pow_target_timespan,
        p["nPowTargetTimespan"].as_i64().unwrap()
    );
    assert_eq!(
        params.pow_target_spacing,
        p["nPowTargetSpacing"].as_i64().unwrap()
    );
    assert_eq!(
        params.difficulty_adjustment_interval(),
        p["interval"].as_i64().unwrap()
    );
    assert_eq!(
        params.pow_limit,
        U256::from_hex(p["powLimit"].as_str().unwrap()).unwrap()
    );
    let vectors = v["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    let (mut permitted, mut refused) = (0, 0);
    for t in vectors {
        let name = t["name"].as_str().unwrap();
        let first_time = t["first_nTime"].as_i64().unwrap();
        let last_time = t["last_nTime"].as_i64().unwrap();
        let last_height = t["last_height"].as_i64().unwrap();
        let last_bits = parse_hex_u32(t["last_nBits"].as_str().unwrap());
        let expected = parse_hex_u32(t["expected_nBits"].as_str().unwrap());
        let got = calculate_next_work_required(&params, last_bits, last_time, first_time);
        assert_eq!(got, expected, "{name}: {got:#010x}");

        let last = BlockInfo {
            height: last_height,
            time: last_time as u32,
            bits: last_bits,
        };
        let first_height = last_height - 2015;
        let ancestor = |h: i64| {
            (h == first_height).then_some(BlockInfo {
                height: h,
                time: first_time as u32,
                bits: last_bits,
            })
        };
        assert_eq!(
            get_next_work_required(&params, last, last_time as u32 + 600, ancestor),
            Some(expected),
            "{name}"
        );
        assert_eq!(
            get_next_work_required(&params, last, last_time as u32 + 600, |_| None),
            None,
            "{name}: the window's first block is needed"
        );

        assert!(permitted_difficulty_transition(
            &params,
            last_height + 1,
            last_bits,
            expected
        ));
        permitted += 1;
        if let Some(invalid) = t["invalid_nBits"].as_str() {
            let invalid = parse_hex_u32(invalid);
            assert!(
                !permitted_difficulty_transition(&params, last_height + 1, last_bits, invalid),
                "{name}: {invalid:#010x} must not be permitted"
            );
            refused += 1;
        }
    }
    assert_eq!((permitted, refused), (4, 2));
}

/// Off a retarget height nBits must not change, on mainnet; regtest keeps its nBits anyway.
#[test]
fn no_retarget_between_boundaries() {
    let main = ChainParams::mainnet();
    assert!(permitted_difficulty_transition(
        &main, 2017, 0x1d00ffff, 0x1d00ffff
    ));
    assert!(!permitted_difficulty_transition(
        &main, 2017, 0x1d00ffff, 0x1d00fffe
    ));
    let last = BlockInfo {
        height: 2016,
        time: 1000,
        bits: 0x1c05a3f4,
    };
    assert_eq!(
        get_next_work_required(&main, last, 1600, |_| None),
        Some(0x1c05a3f4)
    );
    let reg = ChainParams::regtest();
    assert_eq!(
        calculate_next_work_required(&reg, 0x207fffff, 1_000_000, 0),
        0x207fffff
    );
}

/// Testnet's 20-minute rule and the walk back over min-difficulty blocks (`GetNextWorkRequired`).
#[test]
fn min_difficulty_blocks_on_chains_that_allow_them() {
    let params = ChainParams {
        pow_no_retargeting: false,
        ..ChainParams::regtest()
    };
    let limit = params.pow_limit_bits();
    let chain = [
        BlockInfo {
            height: 2016,
            time: 0,
            bits: 0x1d00ffff,
        },
        BlockInfo {
            height: 2017,
            time: 600,
            bits: 0x1d00ffff,
        },
        BlockInfo {
            height: 2018,
            time: 3000,
            bits: limit,
        },
    ];
    let ancestor = |h: i64| chain.iter().find(|b| b.height == h).copied();
    // Late: the limit. On time: the last block not mined under the special rule.
    assert_eq!(
        get_next_work_required(&params, chain[2], 3000 + 1201, ancestor),
        Some(limit)
    );
    assert_eq!(
        get_next_work_required(&params, chain[2], 3000 + 1200, ancestor),
        Some(0x1d00ffff)
    );
}

/// The `CheckProofOfWork` cases of pow_tests.cpp that must fail, and the ones that pass.
#[test]
fn check_proof_of_work_cases_of_pow_tests() {
    let v = retarget_vectors();
    assert_eq!(
        v["check_proof_of_work_must_fail"].as_array().unwrap().len(),
        5
    );
    let limit = ChainParams::mainnet().pow_limit;
    let hash_of = |n: U256| Hash256(n.to_le_bytes());
    let one = hash_of(U256::ONE);
    // Negative target.
    assert!(!check_proof_of_work(
        one,
        target_to_compact(limit, true),
        limit
    ));
    // Overflow.
    assert!(!check_proof_of_work(one, !0x0080_0000, limit));
    // Target above the pow limit.
    assert!(!check_proof_of_work(
        one,
        target_to_compact(limit.wrapping_mul_u64(2), false),
        limit
    ));
    // Hash above the target.
    assert!(!check_proof_of_work(
        hash_of(limit.wrapping_mul_u64(2)),
        target_to_compact(limit, false),
        limit
    ));
    // Zero target.
    assert!(!check_proof_of_work(
        hash_of(U256::ZERO),
        target_to_compact(U256::ZERO, false),
        limit
    ));
    // And the boundary: a hash equal to the target passes.
    let t = compact_to_target(0x1d00ffff).target;
    assert!(check_proof_of_work(hash_of(t), 0x1d00ffff, limit));
    assert!(!check_proof_of_work(
        hash_of(t.wrapping_add(U256::ONE)),
        0x1d00ffff,
        limit
    ));
    assert!(proof_of_work_error(hash_of(t), 0x1d00ffff, limit).is_none());
    assert!(proof_of_work_error(one, !0x0080_0000, limit)
        .unwrap()
        .contains("overflows"));
}

// --- headers -----------------------------------------------------------------------------------

const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

/// Mainnet's genesis header: its hash, its proof of work, and Core's chainwork for height 0.
#[test]
fn genesis_header_hash_and_work() {
    let h = Header::from_hex(GENESIS).unwrap();
    assert_eq!(hex_encode(&h.serialize()), GENESIS);
    assert_eq!(
        h.hash().to_string(),
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    );
    assert_eq!(
        (h.version, h.time, h.bits, h.nonce),
        (1, 1231006505, 0x1d00ffff, 2083236893)
    );
    assert!(check_proof_of_work(
        h.hash(),
        h.bits,
        ChainParams::mainnet().pow_limit
    ));
    // `getblockheader` of block 0: chainwork 0x100010001.
    assert_eq!(block_proof(h.bits), U256::from_u64(0x1_0001_0001));
    assert_eq!(
        Hash256::from_display_hex(&h.hash().to_string()).unwrap(),
        h.hash()
    );
}

#[test]
fn block_proof_of_invalid_and_extreme_targets() {
    assert_eq!(block_proof(0), U256::ZERO);
    assert_eq!(block_proof(0x04923456), U256::ZERO); // negative
    assert_eq!(block_proof(0xff123456), U256::ZERO); // overflow
                                                     // Target 2^255 - 1 (regtest's limit): two hashes expected.
    assert_eq!(block_proof(0x207fffff), U256::from_u64(2));
    // Target 1: 2^255.
    assert_eq!(block_proof(0x01010000), U256::ONE << 255);
}

#[test]
fn malformed_headers_are_errors() {
    assert!(matches!(
        Header::from_hex("00"),
        Err(ParseError::Length { got: 1, .. })
    ));
    assert!(matches!(Header::from_hex("zz"), Err(ParseError::Hex(_))));
    assert!(matches!(Header::from_hex("0"), Err(ParseError::Hex(_))));
    assert!(matches!(
        Header::from_hex(&format!("{GENESIS}00")),
        Err(ParseError::Length { got: 81, .. })
    ));
}

// --- block 413,567 -----------------------------------------------------------------------------

/// The raw block parses into 1,557 transactions and serializes back to the same bytes; the
/// Merkle root of the txids is the header's and the header hashes to the block hash SOURCE.txt
/// gives.
#[test]
fn block_413567_parses_and_its_root_and_hash_match() {
    let raw = read("block413567.raw");
    let block = Block::parse(&raw).expect("block 413,567 parses");
    assert_eq!(block.txs.len(), 1557);
    assert_eq!(block.serialize(), raw);
    assert_eq!(block.stripped_size(), raw.len());
    assert!(block.txs[0].is_coinbase());
    assert!(block
        .txs
        .iter()
        .all(|t| !t.has_witness && t.txid == t.wtxid));
    let (root, mutated) = block.merkle_root();
    assert_eq!(root, block.header.merkle_root);
    assert!(!mutated);
    assert!(root.to_string().starts_with("64a50c64") && root.to_string().ends_with("ce05"));
    assert_eq!(block.header.hash().to_string(), source_block_hash());
    assert_eq!(
        block.header.hash().to_string(),
        "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069"
    );
    assert_eq!(check_block(&block, &ChainParams::mainnet()), Ok(()));
}

/// CVE-2012-2459: the block with its last transaction repeated has the same Merkle root, is
/// flagged mutated, and `CheckBlock` rejects it as `bad-txns-duplicate`.
#[test]
fn block_413567_with_its_last_tx_repeated_is_rejected() {
    let raw = read("block413567.raw");
    let mut block = Block::parse(&raw).unwrap();
    let last = block.txs.last().unwrap().clone();
    block.txs.push(last);
    let mutated_raw = block.serialize();
    let parsed = Block::parse(&mutated_raw).expect("the mutated copy parses");
    assert_eq!(parsed.txs.len(), 1558);
    assert_eq!(
        parsed.header.hash(),
        Block::parse(&raw).unwrap().header.hash()
    );
    let (root, mutated) = parsed.merkle_root();
    assert_eq!(root, parsed.header.merkle_root, "same root");
    assert!(mutated);
    assert_eq!(
        check_block(&parsed, &ChainParams::mainnet()),
        Err(BlockError::Duplicate)
    );
}

#[test]
fn block_413567_with_a_changed_tx_or_header_is_rejected() {
    let raw = read("block413567.raw");
    let block = Block::parse(&raw).unwrap();
    let params = ChainParams::mainnet();
    let mut swapped = block.clone();
    swapped.txs.swap(1, 2);
    assert_eq!(
        check_block(&swapped, &params),
        Err(BlockError::BadMerkleRoot)
    );
    let mut no_coinbase = block.clone();
    no_coinbase.txs.remove(0);
    no_coinbase.header.merkle_root = no_coinbase.merkle_root().0;
    assert_eq!(
        check_block(&no_coinbase, &params),
        Err(BlockError::HighHash)
    );
    let mut bad_nonce = block.clone();
    bad_nonce.header.nonce ^= 1;
    assert_eq!(check_block(&bad_nonce, &params), Err(BlockError::HighHash));
    // Regtest's easy target lets us re-stamp the header and reach the later checks.
    let reg = ChainParams::regtest();
    let mut h = no_coinbase.header;
    h.bits = 0x207fffff;
    while !check_proof_of_work(h.hash(), h.bits, reg.pow_limit) {
        h.nonce += 1;
    }
    no_coinbase.header = h;
    assert_eq!(
        check_block(&no_coinbase, &reg),
        Err(BlockError::CoinbaseMissing)
    );
}

/// Every truncation of the block is an error, never a panic.
#[test]
fn truncated_blocks_are_errors() {
    let raw = read("block413567.raw");
    for len in [
        0,
        1,
        79,
        80,
        81,
        82,
        200,
        1000,
        raw.len() / 2,
        raw.len() - 1,
    ] {
        assert!(Block::parse(&raw[..len]).is_err(), "length {len}");
    }
    let mut longer = raw.clone();
    longer.push(0);
    assert_eq!(Block::parse(&longer), Err(ParseError::TrailingBytes(1)));
}

// --- transactions ------------------------------------------------------------------------------

/// A one-input, one-output segwit transaction in the BIP 144 form, and its legacy form.
fn segwit_tx(witness_items: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
    let ins: Vec<u8> = [
        &[1u8][..],
        &[7; 32],
        &0u32.to_le_bytes(),
        &[0],
        &u32::MAX.to_le_bytes(),
    ]
    .concat();
    let outs: Vec<u8> = [&[1u8][..], &5000u64.to_le_bytes(), &[2, 0x51, 0x52]].concat();
    let mut witness = Vec::new();
    write_compact_size(&mut witness, witness_items.len() as u64);
    for item in witness_items {
        write_compact_size(&mut witness, item.len() as u64);
        witness.extend_from_slice(item);
    }
    let version = 2i32.to_le_bytes();
    let lock = 0u32.to_le_bytes();
    let full = [&version[..], &[0, 1], &ins, &outs, &witness, &lock].concat();
    let legacy = [&version[..], &ins, &outs, &lock].concat();
    (full, legacy)
}

#[test]
fn segwit_txid_excludes_the_witness() {
    let (full, legacy) = segwit_tx(&[b"signature", b"key"]);
    let tx = Transaction::parse(&full).unwrap();
    assert!(tx.has_witness);
    assert_eq!(tx.txid, sha256d(&legacy));
    assert_eq!(tx.wtxid, sha256d(&full));
    assert_ne!(tx.txid, tx.wtxid);
    assert_eq!(tx.stripped_size, legacy.len());
    assert_eq!(tx.output_values, vec![5000]);
    let plain = Transaction::parse(&legacy).unwrap();
    assert_eq!((plain.txid, plain.has_witness), (tx.txid, false));
}

#[test]
fn malformed_transactions_are_errors() {
    let (empty_witness, _) = segwit_tx(&[]);
    assert_eq!(
        Transaction::parse(&empty_witness),
        Err(ParseError::SuperfluousWitness)
    );
    let (mut bad_flags, _) = segwit_tx(&[b"x"]);
    bad_flags[5] = 3;
    assert_eq!(
        Transaction::parse(&bad_flags),
        Err(ParseError::UnknownTxFlags(2))
    );
    // 0xfd followed by a value that fits in one byte.
    let non_canonical = [&2i32.to_le_bytes()[..], &[0xfd, 0x01, 0x00]].concat();
    assert_eq!(
        Transaction::parse(&non_canonical),
        Err(ParseError::NonCanonicalSize(4))
    );
    let huge = [&2i32.to_le_bytes()[..], &[0xfe, 0, 0, 0, 0x10]].concat();
    assert_eq!(
        Transaction::parse(&huge),
        Err(ParseError::SizeTooLarge(0x1000_0000))
    );
    let (full, _) = segwit_tx(&[b"sig"]);
    for len in 0..full.len() {
        assert!(Transaction::parse(&full[..len]).is_err(), "length {len}");
    }
}

// --- Merkle roots ------------------------------------------------------------------------------

#[test]
fn merkle_root_of_an_odd_level_equals_the_repeated_one() {
    let h = |n: u8| sha256d(&[n]);
    assert_eq!(merkle_root(&[]), (Hash256::ZERO, false));
    assert_eq!(merkle_root(&[h(1)]), (h(1), false));
    let (abc, m1) = merkle_root(&[h(1), h(2), h(3)]);
    let (abcc, m2) = merkle_root(&[h(1), h(2), h(3), h(3)]);
    assert_eq!((abc, m1, m2), (abcc, false, true));
    // A repetition at an upper level: [a b c d e f e f] against [a b c d e f].
    let six: Vec<_> = (1..=6).map(h).collect();
    let eight: Vec<_> = [&six[..], &six[4..6]].concat();
    let (r6, m6) = merkle_root(&six);
    let (r8, m8) = merkle_root(&eight);
    assert_eq!((r6, m6, m8), (r8, false, true));
}

// --- U256 --------------------------------------------------------------------------------------

fn u(v: u128) -> U256 {
    U256([v as u64, (v >> 64) as u64, 0, 0])
}

#[test]
fn u256_shifts_and_hex() {
    assert_eq!(U256::ONE << 256, U256::ZERO);
    assert_eq!(U256::MAX >> 256, U256::ZERO);
    assert_eq!((U256::ONE << 200) >> 200, U256::ONE);
    assert_eq!((U256::ONE << 255).bits(), 256);
    assert_eq!(U256::MAX.checked_div(U256::MAX), Some(U256::ONE));
    assert_eq!(U256::ONE.checked_div(U256::ZERO), None);
    assert_eq!(U256::MAX.checked_add(U256::ONE), None);
    let x =
        U256::from_hex("1234560000000000000000000000000000000000000000000000000000000000").unwrap();
    assert_eq!(
        x.to_string(),
        "1234560000000000000000000000000000000000000000000000000000000000"
    );
    assert_eq!(U256::from_le_bytes(x.to_le_bytes()), x);
    assert!(U256::from_hex("").is_err() && U256::from_hex(&"f".repeat(65)).is_err());
}

proptest! {
    /// On values below 2^128 the arithmetic agrees with u128's.
    #[test]
    fn u256_agrees_with_u128(a in any::<u128>(), b in 1..=u128::MAX, s in 0u32..128, m in any::<u32>()) {
        prop_assert_eq!(u(a).checked_div(u(b)), Some(u(a / b)));
        prop_assert_eq!(u(a).cmp(&u(b)), a.cmp(&b));
        prop_assert_eq!(u(a) >> s, u(a >> s));
        prop_assert_eq!((u(a) << s) >> s, u(a));
        prop_assert_eq!(u(a).wrapping_sub(u(a)), U256::ZERO);
        let (a64, m64) = (a as u64 as u128, m as u128);
        prop_assert_eq!(u(a64).wrapping_mul_u64(m as u64), u(a64 * m64));
        prop_assert_eq!(u(a / 2).wrapping_add(u(b / 2)), u(a / 2 + b / 2));
        prop_assert_eq!(u(a).bits(), 128 - a.leading_zeros());
    }

    /// GetCompact then SetCompact keeps the target to its top 23 bits and never sets the sign.
    #[test]
    fn compact_round_trip(limbs in any::<[u64; 4]>(), shift in 0u32..256) {
        let t = U256(limbs) >> shift;
        let c = target_to_compact(t, false);
        let back = compact_to_target(c);
        prop_assert!(!back.negative && !back.overflow);
        prop_assert!(back.target <= t);
        prop_assert_eq!(target_to_compact(back.target, false), c);
    }
}
