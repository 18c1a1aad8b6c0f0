//! The model's verdicts and state counts, and the recipe's answer to a vanished predecessor.

use stateright::{Checker, Model};

use super::model::ZkCfg;
use super::ZkBug;

const ONE_HOLDER: &str = "the lock recipe has at most one holder (§2.4)";

#[test]
fn can_model_zookeeper() {
    // Two clients: everything holds; the "waits again" case needs a third client.
    let c = ZkCfg {
        clients: 2,
        expiries: 1,
        bug: None,
    }
    .into_model()
    .checker()
    .spawn_bfs()
    .join();
    assert_eq!((c.unique_state_count(), c.state_count()), (4_616, 11_063));
    for always in [
        ONE_HOLDER,
        "sequential suffixes are unique and increasing (§2.1)",
        "ephemerals die with their session (§2.1)",
    ] {
        assert!(c.discovery(always).is_none(), "{always}");
    }
    assert!(c.discovery("every client takes the lock in turn").is_some());
}

/// §2.4: a waiter whose predecessor vanished must list the children again; taking the lock
/// at once gives two holders when the predecessor was a waiter whose session expired.
#[test]
fn the_lock_needs_its_recheck() {
    let check = |bug| {
        ZkCfg {
            clients: 3,
            expiries: 1,
            bug,
        }
        .into_model()
        .checker()
        .spawn_bfs()
        .join()
    };
    // The default configuration's counts and verdicts are the baseline (`reports/`).
    let c = check(Some(ZkBug::LockNoRecheck));
    assert!(c.discovery(ONE_HOLDER).is_some());
}
