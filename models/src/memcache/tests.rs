//! Memcache's lease rules on their own, then the checker on small configurations. The
//! defaults' verdicts and counts are pinned in `reports/memcache.json` by the checker crate,
//! and every seeded bug by its `bugs` test.

use stateright::actor::{Command, Id, Out};
use stateright::{Checker, Model};

use super::actor::{
    Item, McMsg, McRet, McState, McTimer, MemcacheActor, MemcacheBug, MemcacheCfg, MemcacheState,
    Op, Phase, Pool, WebCfg, WebState, WebTcp,
};
use super::model::MemcacheModelCfg;
use crate::client::ClientMsg;

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
        deliver(&cfg, &mut s, 0, McMsg::Get { seq: 0 }),
        Some(McMsg::Miss {
            token: Some(1),
            seq: 0
        })
    );
    assert_eq!(
        deliver(&cfg, &mut s, 1, McMsg::Get { seq: 0 }),
        Some(McMsg::Wait { seq: 0 })
    );
    deliver(&cfg, &mut s, 1, McMsg::Delete { version: 1 });
    let stale = McMsg::Set {
        item: Item { version: 0 },
        token: Some(1),
    };
    assert_eq!(deliver(&cfg, &mut s, 0, stale), None);
    assert!(s.refused && s.item.is_none());
    assert_eq!(
        deliver(&cfg, &mut s, 1, McMsg::Get { seq: 0 }),
        Some(McMsg::Miss {
            token: Some(2),
            seq: 0
        })
    );
    let fresh = McMsg::Set {
        item: Item { version: 1 },
        token: Some(2),
    };
    deliver(&cfg, &mut s, 1, fresh);
    assert_eq!(
        deliver(&cfg, &mut s, 0, McMsg::Get { seq: 0 }),
        Some(McMsg::Hit {
            item: Item { version: 1 },
            seq: 0
        })
    );
    assert!(s.leases.is_empty());
}

/// Without leases the same stale set is stored; with a token per miss two are outstanding.
#[test]
fn the_seeded_bugs_store_the_stale_set_and_hand_out_two_tokens() {
    let (cfg, mut s) = server(Some(MemcacheBug::NoLeases));
    assert_eq!(
        deliver(&cfg, &mut s, 0, McMsg::Get { seq: 0 }),
        Some(McMsg::Miss {
            token: None,
            seq: 0
        })
    );
    deliver(&cfg, &mut s, 1, McMsg::Delete { version: 1 });
    let stale = McMsg::Set {
        item: Item { version: 0 },
        token: None,
    };
    deliver(&cfg, &mut s, 0, stale);
    assert_eq!(s.item, Some(Item { version: 0 }));

    let (cfg, mut s) = server(Some(MemcacheBug::LeasePerMiss));
    deliver(&cfg, &mut s, 0, McMsg::Get { seq: 0 });
    deliver(&cfg, &mut s, 1, McMsg::Get { seq: 0 });
    assert_eq!(s.leases, vec![1, 2]);
}

/// A web server over TCP, driven by node 9, waiting for memcache's answer to its driver's
/// request 2 (memcache is node 0, the gutter 1, the database 2).
fn web_over_tcp() -> (MemcacheActor, std::borrow::Cow<'static, McState>) {
    use std::time::Duration;
    let web = MemcacheActor::Web(WebCfg {
        ops: Vec::new(),
        memcache: Id::from(0),
        gutter: Id::from(1),
        db: Id::from(2),
        bug: None,
        tcp: Some(WebTcp {
            driver: Id::from(9),
            retry: Duration::from_millis(2)..Duration::from_millis(4),
            fill: Duration::from_millis(1)..Duration::from_millis(5),
            failover: Duration::from_millis(8),
        }),
    });
    let s = McState::Web(WebState {
        op: 1,
        phase: Phase::Getting {
            pool: Pool::Memcache,
        },
        reads: Vec::new(),
        seq: 2,
    });
    (web, std::borrow::Cow::Owned(s))
}

/// What the web server sent when it got `msg` from `src` (or its `timer` went off).
fn step(
    web: &MemcacheActor,
    s: &mut std::borrow::Cow<'static, McState>,
    src: usize,
    msg: Option<McMsg>,
    timer: Option<McTimer>,
) -> Vec<(Id, McMsg)> {
    use stateright::actor::Actor;
    let mut o: Out<MemcacheActor> = Out::new();
    match (msg, timer) {
        (Some(msg), _) => web.on_msg(Id::from(3), s, Id::from(src), msg, &mut o),
        (None, Some(t)) => web.on_timeout(Id::from(3), s, &t, &mut o),
        (None, None) => {}
    }
    o.into_iter()
        .filter_map(|c| match c {
            Command::Send(to, m) => Some((to, m)),
            _ => None,
        })
        .collect()
}

/// Over TCP a web server gives up on memcache (it goes to the gutter after `failover`) and its
/// driver gives up on it (a new request): a late answer to the abandoned request must not be
/// taken for the new one's. A memcache hit from before a write, delivered late, was a stale
/// read after the write returned (found by the kill plan of `impls/tests/memcache_real.rs`
/// around memcache's restart).
#[test]
fn over_tcp_a_late_answer_to_an_abandoned_request_is_ignored() {
    let (web, mut s) = web_over_tcp();
    let old = Item { version: 1 };
    // An answer to the driver's request 1: ignored, and the web server still waits.
    let late = McMsg::Hit { item: old, seq: 1 };
    assert!(step(&web, &mut s, 0, Some(late), None).is_empty());
    // Memcache is slow: the web server goes to the gutter...
    let sent = step(&web, &mut s, 0, None, Some(McTimer::Failover));
    assert_eq!(sent, vec![(Id::from(1), McMsg::Get { seq: 2 })]);
    // ... and memcache's late answer to this very request is not the gutter's.
    let late = McMsg::Hit { item: old, seq: 2 };
    assert!(step(&web, &mut s, 0, Some(late), None).is_empty());
    let gutter = McMsg::Miss {
        token: None,
        seq: 2,
    };
    let sent = step(&web, &mut s, 1, Some(gutter), None);
    assert_eq!(sent, vec![(Id::from(2), McMsg::Read { seq: 2 })]);
    // A database reply to another request is not this one's either.
    let other = McMsg::ReadReply { item: old, seq: 1 };
    assert!(step(&web, &mut s, 2, Some(other), None).is_empty());

    // A write: the delete of an earlier write done late does not return this one.
    let invoke = McMsg::Client(ClientMsg::Invoke {
        seq: 3,
        op: Op::Write,
    });
    let sent = step(&web, &mut s, 9, Some(invoke), None);
    assert_eq!(sent, vec![(Id::from(2), McMsg::Write { seq: 3 })]);
    let ok = McMsg::WriteOk { version: 7, seq: 3 };
    let sent = step(&web, &mut s, 2, Some(ok), None);
    assert_eq!(sent, vec![(Id::from(0), McMsg::Delete { version: 7 })]);
    let earlier = McMsg::Deleted { version: 6 };
    assert!(step(&web, &mut s, 0, Some(earlier), None).is_empty());
    let sent = step(&web, &mut s, 0, Some(McMsg::Deleted { version: 7 }), None);
    let ret = McMsg::Client(ClientMsg::Return {
        seq: 3,
        ret: McRet::Wrote { version: 7 },
    });
    assert_eq!(sent, vec![(Id::from(9), ret)]);
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
