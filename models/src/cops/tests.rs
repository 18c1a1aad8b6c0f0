//! The node and the client library one step at a time (no checker), then the checker on the
//! issue's two-data-centre shape. The default's verdicts and counts are pinned in
//! `reports/cops.json` by the checker crate, and every seeded bug by its `bugs` test.

use stateright::actor::{Command, Id, Out};
use stateright::{Checker, Expectation, Model};

use super::actor::{
    ClientCfg, CopsActor, CopsMsg, CopsOp, NodeCfg, NodeState, Stored, Version, Waiting,
};
use super::model::CopsCfg;
use super::{CopsBug, Seen};

fn v(counter: u64, dc: u8) -> Version {
    Version { counter, dc }
}

fn sent(o: Out<CopsActor>) -> Vec<(Id, CopsMsg)> {
    o.into_iter()
        .filter_map(|c: Command<CopsMsg, super::CopsTimer, (), ()>| match c {
            Command::Send(dst, m) => Some((dst, m)),
            _ => None,
        })
        .collect()
}

fn replicate(key: u8, version: Version, nearest: Vec<(u8, Version)>) -> CopsMsg {
    CopsMsg::Replicate {
        key,
        stored: Stored {
            version,
            value: version.number(),
            deps: nearest.clone(),
            nearest,
        },
    }
}

/// §4.3: the photo arrives before the ACL change it depends on. It waits for `dep_check`,
/// the clock still moves past it, and both apply, in order, when the ACL change comes.
#[test]
fn a_replicated_put_waits_for_its_dependency() {
    let cfg = NodeCfg {
        dc: 1,
        peers: vec![Id::from(0)],
        resend: None,
        bug: None,
    };
    let mut s = NodeState::default();
    let step = |s: &mut NodeState, msg: CopsMsg| {
        let mut o = Out::new();
        if !cfg.answer(s, Id::from(0), &msg, &mut o) {
            cfg.on_msg(s, Id::from(0), msg, &mut o);
        }
    };
    step(&mut s, replicate(1, v(2, 0), vec![(0, v(1, 0))]));
    assert!(s.current.is_empty());
    assert_eq!(s.clock, 2);
    let photo = Stored {
        version: v(2, 0),
        value: 20,
        deps: vec![(0, v(1, 0))],
        nearest: vec![(0, v(1, 0))],
    };
    assert_eq!(
        s.pending.clone().into_iter().collect::<Vec<_>>(),
        vec![((1, v(2, 0)), photo)]
    );
    assert_eq!(
        s.waiting_for.get(&(0, v(1, 0))),
        Some(&[(1, v(2, 0))].into())
    );
    step(&mut s, replicate(0, v(1, 0), vec![]));
    assert!(s.pending.is_empty() && s.waiting_for.is_empty());
    assert_eq!(s.current.get(&0), Some(&v(1, 0)));
    assert_eq!(s.current.get(&1), Some(&v(2, 0)));
    // A local put now gets a version past both (§4.1).
    step(
        &mut s,
        CopsMsg::PutAfter {
            seq: 1,
            key: 0,
            value: 7,
            deps: vec![(1, v(2, 0))],
            nearest: vec![(1, v(2, 0))],
        },
    );
    assert_eq!(s.current.get(&0), Some(&v(3, 1)));
    // Last-writer-wins: an older concurrent version is kept but not shown.
    step(&mut s, replicate(0, v(2, 0), vec![]));
    assert_eq!(s.current.get(&0), Some(&v(3, 1)));
    assert!(s.versions.contains_key(&(0, v(2, 0))));
}

/// §4.6: round 1 reads the old ACL and the new photo; the photo depends on the new ACL, so
/// round 2 fetches it by version. With the seeded bug round 1 is returned as it is.
#[test]
fn get_trans_fetches_what_round_one_read_too_old() {
    for (bug, round2) in [(None, true), (Some(CopsBug::SingleRoundGetTrans), false)] {
        let cfg = ClientCfg {
            node: Id::from(1),
            ops: vec![CopsOp::GetTrans(vec![0, 1])],
            driver: None,
            bug,
        };
        let mut o = Out::new();
        let s = <CopsActor as stateright::actor::Actor>::on_start(
            &CopsActor::Client(cfg.clone()),
            Id::from(3),
            &None,
            &mut o,
        );
        let super::CopsState::Client(s) = s else {
            panic!("a client")
        };
        assert_eq!(sent(o).len(), 2, "round 1 asks for both keys at once");
        let ok = |key, version: Option<Version>, deps: Vec<(u8, Version)>, round| CopsMsg::GetOk {
            seq: 1,
            round,
            key,
            seen: version.map(|version| Seen {
                version,
                value: version.number(),
            }),
            deps,
        };
        let mut o = Out::new();
        let s = cfg
            .on_msg(&s, Id::from(1), ok(0, None, vec![], 1), &mut o)
            .unwrap();
        let s = cfg
            .on_msg(
                &s,
                Id::from(1),
                ok(1, Some(v(2, 0)), vec![(0, v(1, 0))], 1),
                &mut o,
            )
            .unwrap();
        let asked = sent(o);
        if !round2 {
            assert_eq!(s.done.len(), 1);
            assert!(asked.is_empty());
            continue;
        }
        assert!(matches!(s.waiting, Waiting::Trans { round: 2, .. }));
        assert_eq!(
            asked,
            vec![(
                Id::from(1),
                CopsMsg::GetByVersion {
                    seq: 1,
                    round: 2,
                    key: 0,
                    version: Some(v(1, 0))
                }
            )]
        );
        let mut o = Out::new();
        let s = cfg
            .on_msg(&s, Id::from(1), ok(0, Some(v(1, 0)), vec![], 2), &mut o)
            .unwrap();
        assert_eq!(
            s.done[0].1,
            super::CopsRet::GetTrans(vec![
                (
                    0,
                    Some(Seen {
                        version: v(1, 0),
                        value: 10
                    })
                ),
                (
                    1,
                    Some(Seen {
                        version: v(2, 0),
                        value: 20
                    })
                )
            ])
        );
        assert_eq!(s.context, vec![(0, v(1, 0)), (1, v(2, 0))]);
    }
}

/// Checks `cfg` to the end, asserts that every property is as expected, and returns the unique
/// and generated state counts.
fn check(cfg: CopsCfg) -> (usize, usize) {
    let properties = cfg.clone().into_model().properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    for p in properties {
        let discovered = found.contains_key(p.name);
        assert_eq!(
            discovered,
            p.expectation == Expectation::Sometimes,
            "{}",
            p.name
        );
    }
    (checker.unique_state_count(), checker.state_count())
}

/// The shape (two data centres, `x` and `y`), and the shapes in between; the default
/// (three and three) is pinned by `reports/cops.json`.
#[test]
fn can_model_cops() {
    let cfg = |dcs, keys| CopsCfg {
        dcs,
        keys,
        ..CopsCfg::default()
    };
    assert_eq!(check(cfg(2, 2)), (523, 1_160));
    assert_eq!(check(cfg(2, 3)), (2_553, 7_502));
}
