//! One small hand-written history per anomaly class, with the exact cycle Elle would name.

use super::*;

/// A history of concurrent transactions: every invocation first (process `i` for the `i`-th),
/// then every completion, so that no real-time edge links them. `(type, value)` per transaction.
fn concurrent(txns: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (_, value)) in txns.iter().enumerate() {
        out.push_str(&format!(
            "{{:process {i}, :type :invoke, :f :txn, :value {value}}}\n"
        ));
    }
    for (i, (ty, value)) in txns.iter().enumerate() {
        out.push_str(&format!(
            "{{:process {i}, :type :{ty}, :f :txn, :value {value}}}\n"
        ));
    }
    out
}

/// A history of transactions one after the other (no `:process`): each completes before the
/// next is invoked.
fn sequential(txns: &[(&str, &str)]) -> String {
    txns.iter()
        .map(|(ty, value)| {
            format!("{{:type :invoke, :value {value}}}\n{{:type :{ty}, :value {value}}}\n")
        })
        .collect()
}

fn run(text: &str) -> Vec<Finding> {
    anomalies(&parse_edn(text).expect("a well-formed history"))
}

fn names(found: &[Finding]) -> Vec<&'static str> {
    found.iter().map(|f| f.anomaly.name()).collect()
}

fn cycle(f: &Finding) -> Vec<String> {
    f.cycle.iter().map(Edge::to_string).collect()
}

#[test]
fn g0_is_a_cycle_of_appends() {
    let found = run(&concurrent(&[
        ("ok", "[[:append :x 1] [:append :y 2]]"),
        ("ok", "[[:append :x 2] [:append :y 1]]"),
        ("ok", "[[:r :x [1 2]] [:r :y [1 2]]]"),
    ]));
    assert_eq!(names(&found), ["G0"]);
    assert_eq!(cycle(&found[0]), ["T1 -ww(:x)-> T2", "T2 -ww(:y)-> T1"]);
    assert_eq!(
        found[0].cycle[1].why,
        "T1 appended 2 after T2 appended 1 to :y"
    );
}

#[test]
fn g1a_is_a_read_of_an_aborted_append() {
    let found = run(&concurrent(&[
        ("fail", "[[:append :x 1]]"),
        ("ok", "[[:r :x [1]]]"),
    ]));
    assert_eq!(names(&found), ["G1a"]);
    assert_eq!(found[0].txns, [2, 1]);
    assert!(found[0]
        .explanation
        .contains("T1 appended and then aborted"));
}

#[test]
fn g1b_is_a_read_of_an_intermediate_append() {
    // T2 saw T1's state between its two appends: also a cycle with one rw edge.
    let found = run(&concurrent(&[
        ("ok", "[[:append :x 1] [:append :x 2]]"),
        ("ok", "[[:r :x [1]]]"),
        ("ok", "[[:r :x [1 2]]]"),
    ]));
    assert_eq!(names(&found), ["G1b", "G-single"]);
    assert_eq!(found[0].txns, [2, 1]);
    assert_eq!(cycle(&found[1]), ["T1 -wr(:x)-> T2", "T2 -rw(:x)-> T1"]);
}

#[test]
fn g1c_is_a_cycle_of_appends_and_reads() {
    let found = run(&concurrent(&[
        ("ok", "[[:append :x 1] [:r :y [1]]]"),
        ("ok", "[[:append :y 1] [:r :x [1]]]"),
    ]));
    assert_eq!(names(&found), ["G1c"]);
    assert_eq!(cycle(&found[0]), ["T1 -wr(:x)-> T2", "T2 -wr(:y)-> T1"]);
    assert_eq!(
        found[0].cycle[0].why,
        "T2 observed T1's append of 1 to key :x"
    );
}

#[test]
fn g_single_is_a_cycle_with_one_anti_dependency() {
    // Read skew: T2 sees T1's append to y but not its append to x.
    let found = run(&concurrent(&[
        ("ok", "[[:append :x 1] [:append :y 1]]"),
        ("ok", "[[:r :x nil] [:r :y [1]]]"),
    ]));
    assert_eq!(names(&found), ["G-single"]);
    assert_eq!(cycle(&found[0]), ["T1 -wr(:y)-> T2", "T2 -rw(:x)-> T1"]);
    assert_eq!(
        found[0].cycle[1].why,
        "T2 observed the initial (nil) state of :x, which T1 created by appending 1"
    );
}

#[test]
fn g2_item_is_a_cycle_with_adjacent_anti_dependencies() {
    // Write skew.
    let found = run(&concurrent(&[
        ("ok", "[[:r :x nil] [:append :y 1]]"),
        ("ok", "[[:r :y nil] [:append :x 1]]"),
    ]));
    assert_eq!(names(&found), ["G2-item"]);
    assert_eq!(cycle(&found[0]), ["T1 -rw(:x)-> T2", "T2 -rw(:y)-> T1"]);
    let h = parse_edn(&concurrent(&[
        ("ok", "[[:r :x nil] [:append :y 1]]"),
        ("ok", "[[:r :y nil] [:append :x 1]]"),
    ]))
    .unwrap();
    assert!(check(&h, Level::SnapshotIsolation).valid);
    assert!(!check(&h, Level::RepeatableRead).valid);
    assert!(!check(&h, Level::Serializable).valid);
    assert!(check(&h, Level::ReadCommitted).valid);
}

#[test]
fn g_nonadjacent_has_no_two_anti_dependencies_in_a_row() {
    let text = concurrent(&[
        ("ok", "[[:r :a nil] [:r :d [1]]]"),
        ("ok", "[[:append :a 1] [:append :b 1]]"),
        ("ok", "[[:r :b [1]] [:r :c nil]]"),
        ("ok", "[[:append :c 1] [:append :d 1]]"),
    ]);
    let found = run(&text);
    assert_eq!(names(&found), ["G-nonadjacent"]);
    assert_eq!(
        cycle(&found[0]),
        [
            "T1 -rw(:a)-> T2",
            "T2 -wr(:b)-> T3",
            "T3 -rw(:c)-> T4",
            "T4 -wr(:d)-> T1"
        ]
    );
    let h = parse_edn(&text).unwrap();
    let r = check(&h, Level::SnapshotIsolation);
    assert!(!r.valid);
    assert_eq!(r.forbidden, [Anomaly::GNonadjacent]);
}

#[test]
fn realtime_variants_need_a_real_time_edge() {
    // T2 starts after T1 completed, yet misses T1's append: serializable, not strictly.
    let text = sequential(&[("ok", "[[:append :x 1]]"), ("ok", "[[:r :x nil]]")]);
    let found = run(&text);
    assert_eq!(names(&found), ["G-single-realtime"]);
    assert_eq!(cycle(&found[0]), ["T1 -rt-> T2", "T2 -rw(:x)-> T1"]);
    assert_eq!(
        found[0].cycle[0].why,
        "T1 completed (op 1) before T2 was invoked (op 2)"
    );
    let h = parse_edn(&text).unwrap();
    assert!(check(&h, Level::Serializable).valid);
    let strict = check(&h, Level::StrictSerializable);
    assert!(!strict.valid);
    assert_eq!(strict.forbidden, [Anomaly::GSingleRealtime]);

    // T1 reads what T2, invoked after T1 completed, appends: G1c against real time.
    let found = run(&sequential(&[
        ("ok", "[[:r :x [1]]]"),
        ("ok", "[[:append :x 1]]"),
    ]));
    assert_eq!(names(&found), ["G1c-realtime"]);
    assert_eq!(cycle(&found[0]), ["T1 -rt-> T2", "T2 -wr(:x)-> T1"]);

    // T2, invoked after T1 completed, appended to x before T1 did.
    let found = run(&sequential(&[
        ("ok", "[[:append :x 1]]"),
        ("ok", "[[:append :x 2]]"),
        ("ok", "[[:r :x [2 1]]]"),
    ]));
    assert_eq!(names(&found), ["G0-realtime"]);
    assert_eq!(cycle(&found[0]), ["T1 -rt-> T2", "T2 -ww(:x)-> T1"]);
}

#[test]
fn incompatible_orders_print_both_reads() {
    let found = run(&concurrent(&[
        ("ok", "[[:append :x 1]]"),
        ("ok", "[[:append :x 2]]"),
        ("ok", "[[:r :x [1 2]]]"),
        ("ok", "[[:r :x [2 1]]]"),
    ]));
    assert_eq!(names(&found), ["incompatible-order"]);
    assert_eq!(
        found[0].explanation,
        "key :x: T4 read [2 1] and T3 read [1 2], and neither is a prefix of the other"
    );
}

#[test]
fn internal_reads_must_agree_with_the_transaction_itself() {
    let found = run(&concurrent(&[("ok", "[[:append :x 1] [:r :x []]]")]));
    assert_eq!(names(&found), ["internal"]);
    assert_eq!(
        found[0].explanation,
        "T1 read [] of key :x, but its own earlier micro-ops imply [... 1]"
    );
    let found = run(&concurrent(&[
        ("ok", "[[:r :x [5]] [:append :x 1] [:r :x [5 1]]]"),
        ("ok", "[[:append :x 5]]"),
    ]));
    assert!(found.is_empty(), "{found:?}");
    let found = run(&concurrent(&[
        ("ok", "[[:r :x [5]] [:append :x 1] [:r :x [5 2]]]"),
        ("ok", "[[:append :x 5]]"),
    ]));
    assert_eq!(names(&found), ["internal"]);
    assert_eq!(
        found[0].explanation,
        "T1 read [5 2] of key :x, but its own earlier micro-ops imply [5 1]"
    );
}

#[test]
fn duplicate_elements_are_reported() {
    let found = run(&concurrent(&[
        ("ok", "[[:append :x 1]]"),
        ("ok", "[[:r :x [1 1]]]"),
    ]));
    assert_eq!(names(&found), ["duplicate-elements"]);
    assert_eq!(
        found[0].explanation,
        "T2 read [1 1] of key :x: 1 more than once"
    );
}

#[test]
fn an_indeterminate_append_may_be_read_and_a_serial_history_is_clean() {
    let text = "{:process 0, :type :invoke, :f :txn, :value [[:append 1 1]]}\n\
                {:process 0, :type :info, :f :txn, :value [[:append 1 1]]}\n\
                {:process 1, :type :invoke, :f :txn, :value [[:r 1 nil] [:append 1 2]]}\n\
                {:process 1, :type :ok, :f :txn, :value [[:r 1 [1]] [:append 1 2]]}\n\
                {:process 1, :type :invoke, :f :txn, :value [[:r 1 nil]]}\n\
                {:process 1, :type :ok, :f :txn, :value [[:r 1 [1 2]]]}\n";
    let h = parse_edn(text).unwrap();
    assert_eq!(h.txns.len(), 3);
    assert_eq!(h.txns[0].status, Status::Info);
    assert_eq!(h.txns[0].completed, None);
    assert!(anomalies(&h).is_empty());
    assert!(check(&h, Level::StrictSerializable).valid);
}

#[test]
fn json_reads_like_edn() {
    let edn = "{:index 0, :type :invoke, :process 0, :value [[:append 1 2] [:r 1 nil]]}\n\
               {:index 1, :type :ok, :process 0, :value [[:append 1 2] [:r 1 [2]]]}\n";
    let lines = "{\"index\": 0, \"type\": \"invoke\", \"process\": 0, \"value\": [[\"append\", 1, 2], [\"r\", 1, null]]}\n\
                 {\"index\": 1, \"type\": \"ok\", \"process\": 0, \"value\": [[\"append\", 1, 2], [\"r\", 1, [2]]]}\n";
    let array = format!("[{}]", lines.trim_end().replace('\n', ",\n"));
    let want = parse_edn(edn).unwrap();
    assert!(want.times_are_indices);
    assert_eq!(parse_json(lines).unwrap(), want);
    assert_eq!(parse(lines, None).unwrap(), want);
    assert_eq!(parse(&array, None).unwrap(), want);
    let e = parse_json("[{\"type\": \"ok\", \"value\": []},\n {\"type\": \"oops\"}]").unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn malformed_histories_say_where() {
    let e = |text: &str| parse_edn(text).unwrap_err().to_string();
    assert_eq!(e("{:value []}"), "line 1: missing :type");
    assert!(e("{:type :ok, :value [[:write 1 2]]}").starts_with("line 1: micro-op [:write 1 2]"));
    assert!(e("{:type :ok, :f :read, :value 1}").contains("unknown :f :read"));
    assert!(
        e("{:type :ok, :value [[:append 1 2]]}\n{:type :ok, :value [[:append 1 2]]}")
            .contains("element 2 is appended to key 1 twice")
    );
    assert!(e("{:process 1, :type :invoke, :value [[:append 1 2]]}\n\
               {:process 1, :type :ok, :value [[:append 1 3]]}")
    .contains("does not match its invocation's (line 1)"));
    assert!(e("[{:type :ok").contains("line 1"));
}

#[test]
fn levels_follow_elles_table() {
    use Anomaly as A;
    let all = [
        A::G0,
        A::G1a,
        A::G1b,
        A::G1c,
        A::GSingle,
        A::GNonadjacent,
        A::G2Item,
        A::G0Realtime,
        A::G1cRealtime,
        A::GSingleRealtime,
        A::GNonadjacentRealtime,
        A::G2ItemRealtime,
        A::Internal,
        A::DuplicateElements,
        A::IncompatibleOrder,
    ];
    let forbidden = |l: Level| -> Vec<&str> {
        all.iter()
            .filter(|a| l.forbids(**a))
            .map(|a| a.name())
            .collect()
    };
    let rc = [
        "G0",
        "G1a",
        "G1b",
        "G1c",
        "duplicate-elements",
        "incompatible-order",
    ];
    assert_eq!(forbidden(Level::ReadCommitted), rc);
    assert_eq!(
        forbidden(Level::RepeatableRead),
        [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single",
            "G-nonadjacent",
            "G2-item",
            "duplicate-elements",
            "incompatible-order"
        ]
    );
    assert_eq!(
        forbidden(Level::SnapshotIsolation),
        [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single",
            "G-nonadjacent",
            "internal",
            "duplicate-elements",
            "incompatible-order"
        ]
    );
    assert_eq!(forbidden(Level::Serializable).len(), 10);
    assert!(!Level::Serializable.forbids(A::GSingleRealtime));
    assert_eq!(forbidden(Level::StrictSerializable).len(), all.len());
}
