//! The segment's and the recovery's computations on their own, then the checker on small
//! configurations. The defaults'
//! verdicts and counts are pinned in `reports/aurora.json` by the checker crate, and every
//! seeded bug by its `bugs` test.

use std::collections::BTreeMap;

use stateright::actor::Id;
use stateright::{Checker, Model};

use super::actor::{Record, SegmentState, Truncation, WriterCfg};
use super::model::{AuroraCfg, Failures};

fn record(lsn: u64, epoch: u64, cpl: bool) -> Record {
    Record {
        lsn,
        prev: lsn - 1,
        epoch,
        writer: Id::from(0),
        cpl,
        key: "x".into(),
        value: format!("v{lsn}e{epoch}"),
        client: None,
    }
}

fn segment(records: &[Record]) -> SegmentState {
    SegmentState {
        up: true,
        epoch: 1,
        truncation: None,
        writer: Id::from(0),
        records: records.iter().map(|r| (r.lsn, r.clone())).collect(),
        page: None,
    }
}

/// Reference: §4.2.1: a segment's SCL follows back links from the start; a record it cannot
/// reach so is above a hole.
#[test]
fn a_segments_complete_lsn_stops_at_its_first_hole() {
    let s = segment(&[record(1, 1, true), record(2, 1, true), record(4, 1, true)]);
    assert_eq!(s.scl(), 2);
    assert!(s.has_hole());
    assert!(!segment(&[record(1, 1, true)]).has_hole());
    // The page as of a read point: the last change at or below it.
    assert_eq!(s.read("x", 3).as_deref(), Some("v2e1"));
    assert_eq!(s.read("x", 0), None);
}

/// Reference: §4.3: recovery takes, for each LSN, the newest epoch's record among a read
/// quorum's, follows the back links, and stops at the last CPL: the VDL.
#[test]
fn recovery_computes_the_vdl_from_a_read_quorum() {
    let answer = |rs: &[Record]| (rs.to_vec(), None::<Truncation>);
    // Records 1 and 2 at one segment, 3 (not a CPL) at another; 4 above a hole.
    let answers: BTreeMap<Id, _> = [
        (
            Id::from(2),
            answer(&[record(1, 1, true), record(2, 1, true)]),
        ),
        (Id::from(3), answer(&[record(3, 1, false)])),
        (
            Id::from(4),
            answer(&[record(1, 1, true), record(5, 1, true)]),
        ),
    ]
    .into_iter()
    .collect();
    let (vdl, chain) = WriterCfg::recovered(&answers);
    assert_eq!(vdl, 2, "3 is not a consistency point, 5 lies above a hole");
    assert_eq!(chain.len(), 2);
    // A truncation a segment reports rules out the older epoch's records above it.
    let mut answers = answers;
    answers.insert(
        Id::from(5),
        (
            vec![record(1, 1, true)],
            Some(Truncation { epoch: 2, above: 1 }),
        ),
    );
    assert_eq!(WriterCfg::recovered(&answers).0, 1);
}

/// Small configurations: verdicts (stateright's own BFS) and unique state counts (a search that
/// tells states apart by equality: stateright's fingerprints merge states whose timers differ
/// only in which neighbour holds one, see `catalog::hash_actor_state`).
#[test]
fn small_configurations_pass_with_pinned_counts() {
    let run = |cfg: AuroraCfg| {
        let exact = crate::catalog::count_exactly(&cfg.clone().into_model(), None);
        let c = cfg.into_model().checker().threads(1).spawn_bfs().join();
        c.assert_properties();
        exact
    };
    let no_failures = AuroraCfg {
        failures: Failures::None,
        ..AuroraCfg::default()
    };
    let one_zone_no_takeover = AuroraCfg {
        failures: Failures::Zone,
        takeover: false,
        ..AuroraCfg::default()
    };
    let zombie = AuroraCfg {
        failures: Failures::None,
        zombie: true,
        read_back: false,
        ..AuroraCfg::default()
    };
    let counts = [run(no_failures), run(one_zone_no_takeover), run(zombie)];
    assert_eq!(counts, [578, 80, 7696]);
}
