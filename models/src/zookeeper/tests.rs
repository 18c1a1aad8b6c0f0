//! The model's verdicts and state counts on small configurations, each seeded bug against
//! exactly the property it names, and the `setData` history check on its own.

use std::collections::BTreeSet;

use stateright::{Checker, Expectation, Model};

use super::model::{writes_linearizable, WriteEvent, ZkCfg, ZkModel};
use super::{ZkBug, ZkSpec};
use crate::catalog::{Params, Spec};

const ONE_HOLDER: &str = "the lock recipe has at most one holder (§2.4)";

fn lock(clients: u8, expiries: u8, bug: Option<ZkBug>) -> ZkModel {
    ZkCfg {
        clients,
        expiries,
        registers: 0,
        moves: 0,
        leader_changes: 0,
        bug,
    }
    .into_model()
}

#[test]
fn can_model_zookeeper() {
    // Two lock clients: everything holds; the "waits again" case needs a third client.
    let c = lock(2, 1, None).checker().spawn_bfs().join();
    assert_eq!((c.unique_state_count(), c.state_count()), (4_405, 10_295));
    for always in [
        ONE_HOLDER,
        "sequential suffixes are unique and increasing (§2.1)",
        "ephemerals die with their session (§2.1)",
    ] {
        assert!(c.discovery(always).is_none(), "{always}");
    }
    assert!(c.discovery("every client takes the lock in turn").is_some());
}

/// The register workload alone, with its move and its leader change: every property as
/// expected, the stale `sync` among them.
#[test]
fn can_model_the_register_clients() {
    let m = ZkCfg {
        clients: 0,
        ..ZkCfg::default()
    }
    .into_model();
    let c = m.checker().spawn_dfs().join();
    c.assert_properties();
    assert_eq!(c.unique_state_count(), 231_187);
    assert!(c
        .discovery("a sync followed by a read is stale across a leader change (§2.3)")
        .is_some());
}

/// Runs `bug` in its own configuration (`Bug::params`) to the end.
fn run(bug: ZkBug) -> (ZkModel, impl Checker<ZkModel>) {
    let spec = ZkSpec::BUGS
        .iter()
        .find(|b| b.name == bug.name())
        .expect("every ZkBug is in the table");
    let params = spec.configure(ZkSpec::PARAMS, &Params::defaults(ZkSpec::PARAMS));
    // (`checker()` takes the model: one to check, one to list the properties.)
    let c = ZkSpec::build(&params, Some(bug.name()))
        .checker()
        .spawn_dfs()
        .join();
    (ZkSpec::build(&params, Some(bug.name())), c)
}

/// Each register bug, and the herd effect, breaks exactly the properties its entry names:
/// the `always` ones violated, the `sometimes` ones out of reach.
#[test]
fn each_bug_breaks_exactly_its_property() {
    for bug in [
        ZkBug::VersionCheckAtFollower,
        ZkBug::ReadAheadOfWrite,
        ZkBug::ReconnectAhead,
        ZkBug::WatchAfterReply,
        ZkBug::HerdEffect,
    ] {
        let breaks: BTreeSet<&str> = ZkSpec::BUGS
            .iter()
            .find(|b| b.name == bug.name())
            .expect("in the table")
            .breaks
            .iter()
            .copied()
            .collect();
        let (m, c) = run(bug);
        let mut violated = BTreeSet::new();
        for p in m.properties() {
            let found = c.discovery(p.name).is_some();
            match p.expectation {
                Expectation::Always if found => {
                    violated.insert(p.name);
                }
                Expectation::Sometimes if breaks.contains(p.name) => {
                    assert!(!found, "{bug:?} still reaches '{}'", p.name);
                }
                _ => {}
            }
        }
        let named: BTreeSet<&str> = m
            .properties()
            .iter()
            .filter(|p| p.expectation == Expectation::Always && breaks.contains(p.name))
            .map(|p| p.name)
            .collect();
        assert_eq!(violated, named, "{bug:?}");
    }
}

/// The lock's bugs break their property (depth-first, stopping once every property has a
/// discovery; the checker's own test runs them to the end and compares all properties).
#[test]
fn the_lock_bugs_break_their_property() {
    for (bug, clients, property) in [
        (ZkBug::LockNoRecheck, 3, ONE_HOLDER),
        // (The follower's client: the leader drops a closed session's own requests.)
        (
            ZkBug::CreateAfterClose,
            2,
            "ephemerals die with their session (§2.1)",
        ),
        (
            ZkBug::LocalSequence,
            2,
            "sequential suffixes are unique and increasing (§2.1)",
        ),
    ] {
        let c = lock(clients, 1, Some(bug)).checker().spawn_dfs().join();
        assert!(c.discovery(property).is_some(), "{bug:?}: {property}");
    }
}

/// §2.2: two `setData`s with one expected version cannot both succeed; one that returns
/// `BadVersion` took no effect.
#[test]
fn two_writes_at_one_version_are_not_linearizable() {
    let call = |client, data| WriteEvent::Call {
        client,
        xid: 1,
        data,
        version: 0,
    };
    let ret = |client, version| WriteEvent::Return {
        client,
        xid: 1,
        version,
    };
    let both = [call(0, 1), call(1, 2), ret(1, Some(1)), ret(0, Some(2))];
    assert!(!writes_linearizable(&both));
    let one = [call(0, 1), call(1, 2), ret(1, Some(1)), ret(0, None)];
    assert!(writes_linearizable(&one));
    // A write still open may or may not have taken effect.
    let open = [call(0, 1), ret(0, Some(1)), call(1, 2)];
    assert!(writes_linearizable(&open));
}
