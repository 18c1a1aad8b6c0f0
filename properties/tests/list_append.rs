//! Elle's list-append histories in `../shared/data/jepsen/` (EDN), checked at every consistency
//! model against the verdicts their source gives: `paper-example.edn` (the paper's Figure 1) is
//! not strict serializable, `si-without-g-single.edn` has a G2-item cycle: snapshot isolated, but
//! not repeatable read.

use std::path::{Path, PathBuf};

use properties::list_append::{check, dependencies, parse_edn, Anomaly, History, Level, Report};

fn data(file: &str) -> History {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/jepsen");
    parse_edn(&std::fs::read_to_string(path.join(file)).expect(file)).expect(file)
}

fn at(h: &History, level: Level) -> Report {
    check(h, level)
}

fn names(r: &Report) -> Vec<Anomaly> {
    r.anomalies.iter().map(|f| f.anomaly).collect()
}

/// The verdict at each level, strongest first: strict, serializable, snapshot isolation,
/// repeatable read, read committed.
fn verdicts(h: &History) -> [bool; 5] {
    [
        Level::StrictSerializable,
        Level::Serializable,
        Level::SnapshotIsolation,
        Level::RepeatableRead,
        Level::ReadCommitted,
    ]
    .map(|l| at(h, l).valid)
}

#[test]
fn the_papers_example_is_g_single() {
    let h = data("paper-example.edn");
    assert_eq!(h.txns.len(), 4);
    let r = at(&h, Level::StrictSerializable);
    assert_eq!(names(&r), [Anomaly::GSingle]);
    let cycle: Vec<String> = r.anomalies[0].cycle.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        cycle,
        ["T2 -wr(255)-> T3", "T3 -ww(256)-> T4", "T4 -rw(255)-> T2"]
    );
    let why: Vec<&str> = r.anomalies[0]
        .cycle
        .iter()
        .map(|e| e.why.as_str())
        .collect();
    assert_eq!(
        why,
        [
            "T3 observed T2's append of 8 to key 255",
            "T4 appended 3 after T3 appended 4 to 256",
            "T4 did not observe T2's append of 8 to 255"
        ]
    );
    assert_eq!(verdicts(&h), [false, false, false, false, true]);
}

#[test]
fn si_without_g_single_is_g2_item() {
    let h = data("si-without-g-single.edn");
    assert_eq!(h.txns.len(), 4);
    // The edges the file's comments list.
    let mut edges: Vec<String> = dependencies(&h).iter().map(|e| e.to_string()).collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            "T1 -wr(9)-> T4",
            "T1 -ww(9)-> T3",
            "T2 -rw(9)-> T1",
            "T3 -rw(6)-> T4",
            "T3 -rw(8)-> T2",
            "T4 -rw(9)-> T3"
        ]
    );
    let r = at(&h, Level::SnapshotIsolation);
    assert!(r.valid);
    assert_eq!(names(&r), [Anomaly::G2Item, Anomaly::GSingleRealtime]);
    let cycle: Vec<String> = r.anomalies[0].cycle.iter().map(|e| e.to_string()).collect();
    assert_eq!(cycle, ["T3 -rw(6)-> T4", "T4 -rw(9)-> T3"]);
    let rr = at(&h, Level::RepeatableRead);
    assert_eq!(rr.forbidden, [Anomaly::G2Item]);
    let strict = at(&h, Level::StrictSerializable);
    assert_eq!(
        strict.forbidden,
        [Anomaly::G2Item, Anomaly::GSingleRealtime]
    );
    assert_eq!(verdicts(&h), [false, false, true, false, true]);
}
