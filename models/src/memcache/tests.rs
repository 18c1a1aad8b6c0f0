//! Memcache's lease rules on their own, then the checker on small configurations. The
//! defaults' verdicts and counts are pinned in `reports/memcache.json` by the checker crate,
//! and every seeded bug by its `bugs` test.

use stateright::actor::{Command, Id, Out};
use stateright::{Checker, Model};

use super::actor::{Item, McMsg, MemcacheActor, MemcacheBug, MemcacheCfg, MemcacheState};
use super::model::MemcacheModelCfg;

fn server(bug: Option<MemcacheBug>) -> (MemcacheCfg, MemcacheState) {
    let cfg = MemcacheCfg { fails: false, bug };
    let s = MemcacheState {
        up: true,
        item: None,
        leases: Vec::new(),
        issued: 0,
        invalidated: 0,
        refused: false,
    };
    (cfg, s)
}

/// Delivers `msg` from web server `from`: memcache's answer (if any) and its next state.
fn deliver(cfg: &MemcacheCfg, s: &mut MemcacheState, from: usize, msg: McMsg) -> Option<McMsg> {
    let mut o: Out<MemcacheActor> = Out::new();
    if let Some(next) = cfg.on_msg(s, Id::from(from), msg, &mut o) {
        *s = next;
    }
    o.into_iter().find_map(|c| match c {
        Command::Send(_, m) => Some(m),
        _ => None,
    })
}

/// Reference: §3.2.1. A miss gets a token and the next miss is told to wait; a delete
/// invalidates the token, so the holder's set (of what it read before the write) is refused;
/// the next miss gets a new token, whose set is stored and then hit.
#[test]
fn a_delete_invalidates_the_lease_and_the_stale_set_is_refused() {
    let (cfg, mut s) = server(None);
    assert_eq!(
        deliver(&cfg, &mut s, 0, McMsg::Get),
        Some(McMsg::Miss { token: Some(1) })
    );
    assert_eq!(deliver(&cfg, &mut s, 1, McMsg::Get), Some(McMsg::Wait));
    deliver(&cfg, &mut s, 1, McMsg::Delete { version: 1 });
    let stale = McMsg::Set {
        item: Item { version: 0 },
        token: Some(1),
    };
    assert_eq!(deliver(&cfg, &mut s, 0, stale), None);
    assert!(s.refused && s.item.is_none());
    assert_eq!(
        deliver(&cfg, &mut s, 1, McMsg::Get),
        Some(McMsg::Miss { token: Some(2) })
    );
    let fresh = McMsg::Set {
        item: Item { version: 1 },
        token: Some(2),
    };
    deliver(&cfg, &mut s, 1, fresh);
    assert_eq!(
        deliver(&cfg, &mut s, 0, McMsg::Get),
        Some(McMsg::Hit {
            item: Item { version: 1 }
        })
    );
    assert!(s.leases.is_empty());
}

/// Without leases the same stale set is stored; with a token per miss two are outstanding.
#[test]
fn the_seeded_bugs_store_the_stale_set_and_hand_out_two_tokens() {
    let (cfg, mut s) = server(Some(MemcacheBug::NoLeases));
    assert_eq!(
        deliver(&cfg, &mut s, 0, McMsg::Get),
        Some(McMsg::Miss { token: None })
    );
    deliver(&cfg, &mut s, 1, McMsg::Delete { version: 1 });
    let stale = McMsg::Set {
        item: Item { version: 0 },
        token: None,
    };
    deliver(&cfg, &mut s, 0, stale);
    assert_eq!(s.item, Some(Item { version: 0 }));

    let (cfg, mut s) = server(Some(MemcacheBug::LeasePerMiss));
    deliver(&cfg, &mut s, 0, McMsg::Get);
    deliver(&cfg, &mut s, 1, McMsg::Get);
    assert_eq!(s.leases, vec![1, 2]);
}

/// Small configurations: verdicts (stateright's own BFS) and unique state counts (a search
/// that tells states apart by equality).
#[test]
fn small_configurations_pass_with_pinned_counts() {
    let run = |cfg: MemcacheModelCfg| {
        let exact = crate::catalog::count_exactly(&cfg.clone().into_model(), None);
        let c = cfg.into_model().checker().threads(1).spawn_bfs().join();
        c.assert_properties();
        exact
    };
    let counts = [
        run(MemcacheModelCfg::new(1, false, None)),
        run(MemcacheModelCfg::new(1, true, None)),
        run(MemcacheModelCfg::new(2, false, None)),
    ];
    assert_eq!(counts, [43, 295, 725]);
}
