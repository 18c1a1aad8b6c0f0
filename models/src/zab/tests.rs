//! The model's verdicts and state counts on small configurations, and the leader's choice of
//! initial history step by step.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use stateright::actor::{Actor, Command, Id, Out};
use stateright::{Checker, Model};

use super::actor::*;
use super::model::ZabCfg;

fn id(i: usize) -> Id {
    Id::from(i)
}

#[test]
fn can_model_zab() {
    let c = ZabCfg::default().into_model().checker().spawn_bfs().join();
    c.assert_properties();
    assert_eq!(
        (c.unique_state_count(), c.state_count()),
        (154_550, 425_647)
    );
}

#[test]
fn each_bug_breaks_its_property() {
    for (bug, property) in [
        (
            ZabBug::SyncFromAny,
            "a committed transaction is never lost across epochs (§4: primary integrity)",
        ),
        (
            ZabBug::DiffUncommitted,
            "a server delivers only committed transactions (§3)",
        ),
    ] {
        let m = ZabCfg {
            txns: 1,
            crashes: 1,
            bug: Some(bug),
        }
        .into_model();
        let c = m.checker().spawn_bfs().join();
        assert!(
            c.discovery(property).is_some(),
            "{bug:?} does not break '{property}'"
        );
    }
}

/// Zab §4, step l.1.2: of a quorum's ACKEPOCHs the leader takes the log with the highest
/// (currentEpoch, lastZxid), whichever server sent it, and NEWLEADER carries it.
#[test]
fn the_new_leader_takes_the_highest_history_of_its_quorum() {
    let a: ZabActor = ZabActor::new(vec![id(0), id(1), id(2)], None);
    let mut s = ZabState {
        disk: ZabDisk {
            accepted_epoch: 1,
            current_epoch: 1,
            history: im::Vector::new(),
        },
        delivered: 0,
        role: Role::Leading(Box::new(Leader {
            phase: Phase::Discovery,
            epoch: 0,
            infos: BTreeMap::from([(id(0), 1)]),
            ackepochs: BTreeMap::new(),
            synced: BTreeSet::new(),
            forward: BTreeSet::new(),
            acks: BTreeMap::new(),
        })),
    };
    let step = |s: &mut ZabState, src: usize, msg: ZabMsg| {
        let mut o = Out::new();
        let mut c = Cow::Borrowed(&*s);
        a.on_msg(id(0), &mut c, id(src), msg, &mut o);
        *s = c.into_owned();
        o.into_iter()
            .filter_map(|c| match c {
                Command::Send(to, m) => Some((usize::from(to), m)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let sent = step(&mut s, 1, ZabMsg::FollowerInfo { accepted_epoch: 1 });
    assert_eq!(sent, vec![(1, ZabMsg::LeaderInfo { epoch: 2 })]);
    let sent = step(
        &mut s,
        1,
        ZabMsg::AckEpoch {
            epoch: 2,
            current_epoch: 1,
            history: vec![(1, 1)],
        },
    );
    assert_eq!(
        sent,
        vec![(
            1,
            ZabMsg::NewLeader {
                epoch: 2,
                history: vec![(1, 1)]
            }
        )]
    );
    assert_eq!(s.disk.history, im::vector![(1, 1)]);
    assert_eq!(s.disk.current_epoch, 2);
}
