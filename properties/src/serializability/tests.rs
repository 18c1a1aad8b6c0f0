//! Hand-written histories for every anomaly class, and the graph checker against the brute-force
//! search on random small histories.

use proptest::prelude::*;

use super::*;

type H = Vec<Txn<&'static str>>;

fn anomaly(h: &H) -> Option<Anomaly> {
    check_serializable(h).err().map(|v| v.anomaly)
}

fn strict_anomaly(h: &H) -> Option<Anomaly> {
    check_strict_serializable(h).err().map(|v| v.anomaly)
}

/// The cycle is a closed walk of dependencies of its class, and names its transactions.
fn assert_cycle_well_formed<K: std::fmt::Debug>(v: &Violation<K>) {
    assert!(!v.cycle.is_empty(), "{v}");
    for pair in v.cycle.windows(2) {
        assert_eq!(pair[0].to, pair[1].from, "{v}");
    }
    assert_eq!(v.cycle.last().unwrap().to, v.cycle[0].from, "{v}");
    assert_eq!(v.txns, v.cycle.iter().map(|d| d.from).collect::<Vec<_>>());
    let kinds: Vec<DepKind> = v.cycle.iter().map(|d| d.kind).collect();
    let allowed: &[DepKind] = match v.anomaly {
        Anomaly::G0 => &[DepKind::Ww],
        Anomaly::G1c => &[DepKind::Ww, DepKind::Wr],
        Anomaly::G2 => &[DepKind::Ww, DepKind::Wr, DepKind::Rw],
        Anomaly::RealTime => &[DepKind::Ww, DepKind::Wr, DepKind::Rw, DepKind::Rt],
        other => panic!("{other} has no cycle"),
    };
    assert!(kinds.iter().all(|k| allowed.contains(k)), "{v}");
    let needs = match v.anomaly {
        Anomaly::G1c => Some(DepKind::Wr),
        Anomaly::G2 => Some(DepKind::Rw),
        Anomaly::RealTime => Some(DepKind::Rt),
        _ => None,
    };
    if let Some(k) = needs {
        assert!(kinds.contains(&k), "{v}");
    }
    for d in &v.cycle {
        assert_eq!(d.key.is_none(), d.kind == DepKind::Rt, "{v}");
    }
}

#[test]
fn serial_history_is_serializable_and_strict() {
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1)]).during(0, 1),
        Txn::committed(2, vec![r("x", 1), w("y", 1)]).during(2, 3),
        Txn::committed(3, vec![r("y", 1), r("x", 1), w("x", 2)]).during(4, 5),
        Txn::aborted(4, vec![r("x", 2), w("x", 3)]),
    ];
    assert_eq!(check_serializable(&h), Ok(()));
    assert_eq!(check_strict_serializable(&h), Ok(()));
    assert!(brute_force(&h, true));
}

#[test]
fn concurrent_history_serializes_out_of_commit_order() {
    // T2 read x before T1's write and overlaps T1 in time: serial order T2, T1.
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1)]).during(0, 5),
        Txn::committed(2, vec![r("x", 0), w("y", 1)]).during(1, 6),
    ];
    assert_eq!(check_strict_serializable(&h), Ok(()));
}

#[test]
fn g0_write_cycle() {
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1), w("y", 2)]),
        Txn::committed(2, vec![w("x", 2), w("y", 1)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G0);
    assert_cycle_well_formed(&v);
    assert_eq!(v.cycle.len(), 2);
    assert!(!brute_force(&h, false));
}

#[test]
fn g1a_aborted_read() {
    let h: H = vec![
        Txn::aborted(1, vec![w("x", 1)]),
        Txn::committed(2, vec![r("x", 1)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G1a);
    assert_eq!(v.txns, vec![2, 1]);
    assert!(!brute_force(&h, false));
}

#[test]
fn g1b_intermediate_read() {
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1), w("x", 2)]),
        Txn::committed(2, vec![r("x", 1)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G1b);
    assert!(!brute_force(&h, false));
}

#[test]
fn g1c_circular_information_flow() {
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1), r("y", 1)]),
        Txn::committed(2, vec![w("y", 1), r("x", 1)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G1c);
    assert_cycle_well_formed(&v);
    assert!(!brute_force(&h, false));
}

#[test]
fn g2_write_skew() {
    // Both read x and y at their initial versions; each writes one of them.
    let h: H = vec![
        Txn::committed(1, vec![r("x", 0), r("y", 0), w("x", 1)]),
        Txn::committed(2, vec![r("x", 0), r("y", 0), w("y", 1)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G2);
    assert_cycle_well_formed(&v);
    assert!(v.cycle.iter().all(|d| d.kind == DepKind::Rw));
    assert!(!brute_force(&h, false));
}

#[test]
fn g2_lost_update() {
    let h: H = vec![
        Txn::committed(1, vec![r("x", 0), w("x", 1)]),
        Txn::committed(2, vec![r("x", 0), w("x", 2)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G2);
    assert_cycle_well_formed(&v);
    assert!(!brute_force(&h, false));
}

#[test]
fn real_time_violation_is_serializable_but_not_strict() {
    // T2 starts after T1 committed, yet misses T1's write (a stale read).
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1)]).during(0, 1),
        Txn::committed(2, vec![r("x", 0)]).during(2, 3),
    ];
    assert_eq!(check_serializable(&h), Ok(()));
    let v = check_strict_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::RealTime);
    assert_cycle_well_formed(&v);
    assert_eq!(
        v.cycle,
        vec![
            Dep {
                from: 1,
                to: 2,
                kind: DepKind::Rt,
                key: None
            },
            Dep {
                from: 2,
                to: 1,
                kind: DepKind::Rw,
                key: Some("x")
            },
        ]
    );
    assert!(brute_force(&h, false));
    assert!(!brute_force(&h, true));
}

#[test]
fn real_time_edges_are_transitive_through_the_time_chain() {
    // T1 ends, T3 runs entirely later, T2 later still; T2 reads before T1's write: T1 -rt-> T2.
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1)]).during(0, 1),
        Txn::committed(3, vec![w("z", 1)]).during(3, 4),
        Txn::committed(2, vec![r("x", 0)]).during(6, 7),
    ];
    let v = check_strict_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::RealTime);
    assert_eq!(v.txns, vec![1, 2]);
}

#[test]
fn overlapping_transactions_have_no_real_time_order() {
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1)]).during(0, 2),
        Txn::committed(2, vec![r("x", 0)]).during(2, 3),
    ];
    // T1 ends at 2 and T2 starts at 2: not strictly before, so they are concurrent.
    assert_eq!(check_strict_serializable(&h), Ok(()));
}

#[test]
fn internal_and_unknown_reads() {
    let internal: H = vec![Txn::committed(1, vec![w("x", 1), r("x", 0)])];
    assert_eq!(anomaly(&internal), Some(Anomaly::Internal));
    let unknown: H = vec![Txn::committed(1, vec![r("x", 7)])];
    assert_eq!(anomaly(&unknown), Some(Anomaly::UnknownVersion));
    assert!(!brute_force(&internal, false) && !brute_force(&unknown, false));
}

#[test]
fn the_shortest_cycle_is_reported() {
    // A four-transaction write cycle on x, y, z, u, and a two-transaction one on v.
    let h: H = vec![
        Txn::committed(1, vec![w("x", 1), w("u", 2)]),
        Txn::committed(2, vec![w("x", 2), w("y", 1)]),
        Txn::committed(3, vec![w("y", 2), w("z", 1), w("v", 2)]),
        Txn::committed(4, vec![w("z", 2), w("u", 1), w("v", 1)]),
    ];
    let v = check_serializable(&h).unwrap_err();
    assert_eq!(v.anomaly, Anomaly::G0);
    assert_cycle_well_formed(&v);
    assert_eq!(v.cycle.len(), 2, "{v}");
}

#[test]
fn the_strongest_anomaly_wins() {
    // Both a write cycle (G0) and write skew (G2): G0 is reported.
    let h: H = vec![
        Txn::committed(1, vec![r("a", 0), w("x", 1), w("y", 2), w("b", 1)]),
        Txn::committed(2, vec![r("b", 0), w("x", 2), w("y", 1), w("a", 1)]),
    ];
    assert_eq!(anomaly(&h), Some(Anomaly::G0));
    assert_eq!(strict_anomaly(&h), Some(Anomaly::G0));
}

#[test]
fn malformed_histories_are_rejected_by_validate() {
    let twice: H = vec![
        Txn::committed(1, vec![w("x", 1)]),
        Txn::committed(2, vec![w("x", 1)]),
    ];
    assert!(formats::validate(&twice)
        .unwrap_err()
        .contains("written twice"));
    let zero: H = vec![Txn::committed(1, vec![w("x", 0)])];
    assert!(formats::validate(&zero).is_err());
    let ids: H = vec![Txn::committed(1, vec![]), Txn::aborted(1, vec![])];
    assert!(formats::validate(&ids).is_err());
}

#[test]
fn jsonl_round_trip_and_errors() {
    let text = r#"{"id": 1, "status": "committed", "start": 0, "end": 1, "ops": [["w", "x", 1]]}

{"id": 2, "status": "committed", "start": 2, "end": 3, "ops": [["r", "x", 0]]}
{"id": 3, "status": "aborted", "ops": [["r", "x", 1], ["w", "x", 2]]}
"#;
    let h = formats::parse_jsonl_txns(text).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[2].start, None);
    assert!(!h[2].committed);
    assert_eq!(check_serializable(&h), Ok(()));
    assert_eq!(
        check_strict_serializable(&h).unwrap_err().anomaly,
        Anomaly::RealTime
    );
    for (bad, line, needle) in [
        ("{\"id\": 1}", 1, "status"),
        ("{\"id\": 1, \"status\": \"done\", \"ops\": []}", 1, "status"),
        ("{\"id\": 1, \"status\": \"aborted\", \"ops\": [[\"x\", \"k\", 1]]}", 1, "op 0"),
        ("{\"id\": 1, \"status\": \"aborted\", \"ops\": [[\"r\", 3, 1]]}", 1, "op 0"),
        ("{\"id\": 1, \"status\": \"aborted\", \"start\": -1, \"ops\": []}", 1, "start"),
        ("not json", 1, "invalid JSON"),
        (
            "{\"id\": 1, \"status\": \"aborted\", \"ops\": []}\n{\"id\": 1, \"status\": \"aborted\", \"ops\": []}",
            2,
            "twice",
        ),
        (
            "{\"id\": 1, \"status\": \"aborted\", \"start\": 5, \"end\": 4, \"ops\": []}",
            1,
            "before it starts",
        ),
    ] {
        let e = formats::parse_jsonl_txns(bad).unwrap_err();
        assert_eq!(e.line, line, "{bad}: {e}");
        assert!(e.reason.contains(needle), "{bad}: {e}");
    }
}

/// A random history over `keys` keys: either the execution of a random serial order (each read sees
/// the latest version), possibly with one read changed or two transactions' times swapped, or
/// reads of random versions.
fn history() -> impl Strategy<Value = H> {
    const KEYS: [&str; 3] = ["x", "y", "z"];
    let txn = (
        prop::collection::vec((any::<bool>(), 0..3usize), 1..4),
        prop::bool::weighted(0.8),
        0..6u64,
        0..4u64,
    );
    (
        prop::collection::vec(txn, 1..6),
        any::<bool>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |(specs, serial, pick, pick_version, pick_time, pick_swap)| {
                // Run the transactions one after another; committed writes install versions.
                let mut installed = [0u64; 3];
                let mut next_version = 1;
                let mut all_versions: Vec<(usize, u64)> = Vec::new();
                let mut h: H = Vec::new();
                for (i, (ops, committed, start, len)) in specs.into_iter().enumerate() {
                    let mut own = [None::<u64>; 3];
                    let mut txn_ops = Vec::new();
                    for (write, k) in ops {
                        if write {
                            own[k] = Some(next_version);
                            all_versions.push((k, next_version));
                            txn_ops.push(w(KEYS[k], next_version));
                            next_version += 1;
                        } else {
                            let seen = own[k].unwrap_or(installed[k]);
                            txn_ops.push(r(KEYS[k], seen));
                        }
                    }
                    if committed {
                        for k in 0..3 {
                            if let Some(v) = own[k] {
                                installed[k] = v;
                            }
                        }
                    }
                    let t = Txn {
                        id: i as u64 + 1,
                        ops: txn_ops,
                        committed,
                        start: Some(start + 2 * i as u64),
                        end: Some(start + 2 * i as u64 + len),
                    };
                    h.push(t);
                }
                if !serial {
                    // Change one read to another version of its key (or the initial one).
                    let reads: Vec<(usize, usize)> = h
                        .iter()
                        .enumerate()
                        .flat_map(|(i, t)| {
                            t.ops
                                .iter()
                                .enumerate()
                                .filter(|(_, op)| matches!(op, Op::Read { .. }))
                                .map(move |(j, _)| (i, j))
                        })
                        .collect();
                    if !reads.is_empty() {
                        let (i, j) = reads[pick.index(reads.len())];
                        let key = *h[i].ops[j].key();
                        let k = KEYS.iter().position(|x| *x == key).unwrap();
                        let mut choices: Vec<u64> = all_versions
                            .iter()
                            .filter(|(kk, _)| *kk == k)
                            .map(|(_, v)| *v)
                            .collect();
                        choices.push(0);
                        let version = choices[pick_version.index(choices.len())];
                        h[i].ops[j] = r(key, version);
                    }
                    // Swap the versions two writes of one key install, reads included: the version
                    // order then disagrees with the run (a write cycle if another key agrees).
                    let k = if all_versions.is_empty() {
                        0
                    } else {
                        all_versions[pick_swap.index(all_versions.len())].0
                    };
                    let of_k: Vec<u64> = all_versions
                        .iter()
                        .filter(|(kk, _)| *kk == k)
                        .map(|(_, v)| *v)
                        .collect();
                    if of_k.len() >= 2 {
                        let (a, b) = (of_k[0], of_k[of_k.len() - 1]);
                        for t in &mut h {
                            for op in &mut t.ops {
                                if *op.key() == KEYS[k] {
                                    let v = op.version();
                                    let swapped = if v == a {
                                        b
                                    } else if v == b {
                                        a
                                    } else {
                                        v
                                    };
                                    *op = match op {
                                        Op::Read { key, .. } => r(*key, swapped),
                                        Op::Write { key, .. } => w(*key, swapped),
                                    };
                                }
                            }
                        }
                    }
                    // Swap two transactions' times so that real time disagrees with the run.
                    let a = pick_time.index(h.len());
                    let b = h.len() - 1 - a;
                    let (sa, ea) = (h[a].start, h[a].end);
                    h[a].start = h[b].start;
                    h[a].end = h[b].end;
                    h[b].start = sa;
                    h[b].end = ea;
                }
                h
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn graph_checker_agrees_with_brute_force(h in history()) {
        let ser = check_serializable(&h);
        prop_assert_eq!(ser.is_ok(), brute_force(&h, false), "{:?}\n{:?}", h, ser);
        let strict = check_strict_serializable(&h);
        prop_assert_eq!(strict.is_ok(), brute_force(&h, true), "{:?}\n{:?}", h, strict);
        // Strict serializability implies serializability, and the anomaly is the same unless
        // only real time is violated.
        if let Err(v) = &ser {
            prop_assert_eq!(strict.as_ref().err().map(|s| s.anomaly), Some(v.anomaly));
        }
        for v in [ser.err(), strict.err()].into_iter().flatten() {
            if !v.cycle.is_empty() {
                assert_cycle_well_formed(&v);
            }
        }
    }
}

/// The random histories above are not all of one kind: the comparison covers serializable, merely
/// serializable (not strict), and non-serializable histories of several classes.
#[test]
fn random_histories_cover_every_verdict() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = history();
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..2000 {
        let h = strategy.new_tree(&mut runner).unwrap().current();
        let verdict = match check_strict_serializable(&h) {
            Ok(()) => "strict".to_string(),
            Err(v) => format!("{:?}", v.anomaly),
        };
        *counts.entry(verdict).or_insert(0) += 1;
    }
    for class in ["strict", "RealTime", "G0", "G1a", "G1b", "G1c", "G2"] {
        assert!(
            counts.get(class).copied().unwrap_or(0) >= 10,
            "{class} is rare: {counts:?}"
        );
    }
}
