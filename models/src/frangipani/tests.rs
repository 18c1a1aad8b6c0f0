//! The actors one step at a time (no checker), the pure helpers, then the checker on small
//! configurations. The default's verdicts and counts are pinned in `reports/frangipani.json` by
//! the checker crate, and every seeded bug by its `bugs` test.

use std::collections::BTreeSet;

use stateright::actor::{Command, Id, Out};
use stateright::{Checker, Expectation, Model};

use super::actor::{
    Cached, FrangipaniActor, FrangipaniBug, FrangipaniMsg, FrangipaniTimer, LockServerCfg,
    LogRecord, Mode, Op, ServerCfg, ServerState,
};
use super::model::{self, cache_follows_lock, conflict, Fault, FrangipaniCfg, LOCK_SERVER, PETAL};

type Cmd = Command<FrangipaniMsg, FrangipaniTimer, (), ()>;

fn server_cfg(script: Vec<Op>, bug: Option<FrangipaniBug>) -> ServerCfg {
    ServerCfg {
        lock_server: Id::from(LOCK_SERVER),
        petal: Id::from(PETAL),
        script,
        lease: 2,
        margin: 1,
        may_cut: false,
        bug,
    }
}

fn sends(o: Out<FrangipaniActor>) -> Vec<(Id, FrangipaniMsg)> {
    o.into_iter()
        .filter_map(|c| match c {
            Cmd::Send(dst, m) => Some((dst, m)),
            _ => None,
        })
        .collect()
}

fn deliver(
    cfg: &ServerCfg,
    s: &mut ServerState,
    src: usize,
    msg: FrangipaniMsg,
) -> Vec<(Id, FrangipaniMsg)> {
    let mut o = Out::new();
    cfg.on_msg(s, Id::from(src), msg, &mut o);
    sends(o)
}

fn to_petal(msg: FrangipaniMsg) -> (Id, FrangipaniMsg) {
    (Id::from(PETAL), msg)
}

fn to_ls(msg: FrangipaniMsg) -> (Id, FrangipaniMsg) {
    (Id::from(LOCK_SERVER), msg)
}

/// A server started on `script`, and what it sent.
fn started(cfg: &ServerCfg) -> (ServerState, Vec<(Id, FrangipaniMsg)>) {
    let mut o = Out::new();
    let s = cfg.start(&mut o);
    (s, sends(o))
}

/// Reference: §4, §5: a write asks for the write lock, reads the block, writes the cache with
/// the next version and logs the record in Petal; a revoke makes it write the dirty block
/// first, and a release of the whole lock invalidates the cache.
#[test]
fn a_writer_logs_then_flushes_before_it_releases() {
    let cfg = server_cfg(vec![Op::Write(1)], None);
    let (mut s, sent) = started(&cfg);
    assert_eq!(
        sent,
        vec![to_ls(FrangipaniMsg::Request { mode: Mode::Write })]
    );
    let sent = deliver(
        &cfg,
        &mut s,
        LOCK_SERVER,
        FrangipaniMsg::Grant { mode: Mode::Write },
    );
    assert_eq!(sent, vec![to_petal(FrangipaniMsg::Read)]);
    let sent = deliver(
        &cfg,
        &mut s,
        PETAL,
        FrangipaniMsg::ReadReply {
            version: 0,
            value: 0,
        },
    );
    let record = LogRecord {
        version: 1,
        value: 1,
    };
    assert_eq!(sent, vec![to_petal(FrangipaniMsg::AppendLog { record })]);
    assert_eq!(
        s.cache,
        Some(Cached {
            version: 1,
            value: 1,
            dirty: true
        })
    );
    // The revoke: the dirty block goes to Petal first; the lock stays.
    let sent = deliver(
        &cfg,
        &mut s,
        LOCK_SERVER,
        FrangipaniMsg::Revoke { keep: None },
    );
    assert_eq!(
        sent,
        vec![to_petal(FrangipaniMsg::Write {
            version: 1,
            value: 1,
            checked_lease: 2,
            replay: None
        })]
    );
    assert_eq!(s.lock, Some(Mode::Write));
    // Written: the cache is invalidated and the lock released.
    let sent = deliver(
        &cfg,
        &mut s,
        PETAL,
        FrangipaniMsg::WriteAck {
            version: 1,
            replay: false,
        },
    );
    assert_eq!(sent, vec![to_ls(FrangipaniMsg::Release { keep: None })]);
    assert_eq!((s.lock, s.cache), (None, None));

    // The seeded bug releases at once, dirty copy kept.
    let cfg = server_cfg(vec![Op::Write(1)], Some(FrangipaniBug::ReleaseWithoutFlush));
    let (mut s, _) = started(&cfg);
    deliver(
        &cfg,
        &mut s,
        LOCK_SERVER,
        FrangipaniMsg::Grant { mode: Mode::Write },
    );
    deliver(
        &cfg,
        &mut s,
        PETAL,
        FrangipaniMsg::ReadReply {
            version: 0,
            value: 0,
        },
    );
    let sent = deliver(
        &cfg,
        &mut s,
        LOCK_SERVER,
        FrangipaniMsg::Revoke {
            keep: Some(Mode::Read),
        },
    );
    assert_eq!(
        sent,
        vec![to_ls(FrangipaniMsg::Release {
            keep: Some(Mode::Read)
        })]
    );
    assert!(!cache_follows_lock(&s));
}

/// Reference: §4: the recovery demon replays a record only if its version is newer than the
/// block's.
#[test]
fn recovery_replays_only_newer_records() {
    let replay = |bug| {
        let cfg = server_cfg(vec![], bug);
        let (mut s, _) = started(&cfg);
        let log = Id::from(0);
        assert_eq!(
            deliver(&cfg, &mut s, LOCK_SERVER, FrangipaniMsg::Recover { log }),
            vec![to_petal(FrangipaniMsg::ReadLog { log })]
        );
        let records = vec![
            LogRecord {
                version: 1,
                value: 1,
            },
            LogRecord {
                version: 3,
                value: 5,
            },
        ];
        deliver(
            &cfg,
            &mut s,
            PETAL,
            FrangipaniMsg::LogReply {
                log,
                records,
                version: 2,
            },
        )
    };
    let write = |version, value, block| {
        to_petal(FrangipaniMsg::Write {
            version,
            value,
            checked_lease: 2,
            replay: Some((Id::from(0), block)),
        })
    };
    let done = |applied, skipped| {
        to_ls(FrangipaniMsg::Recovered {
            log: Id::from(0),
            applied,
            skipped,
        })
    };
    assert_eq!(replay(None), vec![write(3, 5, 2), done(1, 1)]);
    assert_eq!(
        replay(Some(FrangipaniBug::ReplayWithoutVersion)),
        vec![write(1, 1, 2), write(3, 5, 1), done(2, 0)]
    );
}

/// Reference: §6: a Petal write needs the lease valid for the margin more; the seeded bug only
/// checks it has not expired.
#[test]
fn the_lease_check_keeps_a_margin() {
    let cfg = server_cfg(vec![], None);
    let (mut s, _) = started(&cfg);
    assert!(cfg.may_write_petal(&s));
    s.lease = 1;
    assert!(!cfg.may_write_petal(&s));
    let bug = server_cfg(vec![], Some(FrangipaniBug::WriteAfterLeaseExpiry));
    assert!(bug.may_write_petal(&s));
    s.lease = 0;
    assert!(!bug.may_write_petal(&s));
}

/// Reference: §6: the lock server revokes a conflicting lock, asking a writer to downgrade for a
/// reader, and grants once the holder releases.
#[test]
fn the_lock_server_revokes_then_grants() {
    let cfg = LockServerCfg {
        servers: vec![Id::from(0), Id::from(1)],
        bug: None,
    };
    let mut o = Out::new();
    let mut s = cfg.start(&mut o);
    let step = |s: &mut _, src: usize, msg| {
        let mut o = Out::new();
        cfg.on_msg(s, Id::from(src), msg, &mut o);
        sends(o)
    };
    let grant = |to: usize, mode| (Id::from(to), FrangipaniMsg::Grant { mode });
    assert_eq!(
        step(&mut s, 0, FrangipaniMsg::Request { mode: Mode::Write }),
        vec![grant(0, Mode::Write)]
    );
    assert_eq!(
        step(&mut s, 1, FrangipaniMsg::Request { mode: Mode::Read }),
        vec![(
            Id::from(0),
            FrangipaniMsg::Revoke {
                keep: Some(Mode::Read)
            }
        )]
    );
    assert_eq!(
        step(
            &mut s,
            0,
            FrangipaniMsg::Release {
                keep: Some(Mode::Read)
            }
        ),
        vec![grant(1, Mode::Read)]
    );
    assert_eq!(s.holders, vec![Some(Mode::Read), Some(Mode::Read)]);
}

#[test]
fn helpers() {
    assert!(conflict(Some(Mode::Write), Some(Mode::Read)));
    assert!(conflict(Some(Mode::Read), Some(Mode::Write)));
    assert!(!conflict(Some(Mode::Read), Some(Mode::Read)));
    assert!(!conflict(Some(Mode::Write), None));
    let c = |dirty| {
        Some(Cached {
            version: 1,
            value: 1,
            dirty,
        })
    };
    let state = |lock, cache| ServerState {
        lock,
        wanted: None,
        revoke: None,
        cache,
        flushing: false,
        next_op: 0,
        last_read: None,
        lease: 2,
        cut: false,
    };
    assert!(cache_follows_lock(&state(Some(Mode::Write), c(true))));
    assert!(cache_follows_lock(&state(Some(Mode::Read), c(false))));
    assert!(!cache_follows_lock(&state(Some(Mode::Read), c(true))));
    assert!(!cache_follows_lock(&state(None, c(false))));
    assert!(cache_follows_lock(&state(None, None)));
    let cfg = FrangipaniCfg::default();
    assert_eq!(cfg.script(0), vec![Op::Write(1), Op::Read]);
    assert_eq!(cfg.script(1), vec![Op::Read, Op::Write(2)]);
    assert_eq!(FrangipaniCfg { ops: 1, ..cfg }.script(1), vec![Op::Read]);
}

/// Runs stateright's BFS on `cfg` to the end: the unique states (counted by equality) and the
/// properties not as expected.
fn check(cfg: FrangipaniCfg) -> (usize, BTreeSet<&'static str>) {
    let model = cfg.clone().into_model();
    let exact = crate::catalog::count_exactly(&model, None);
    let properties = model.properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    let broken = properties
        .into_iter()
        .filter(|p| (p.expectation == Expectation::Sometimes) != found.contains_key(p.name))
        .map(|p| p.name)
        .collect();
    (exact, broken)
}

fn cfg(ops: usize, fault: Fault) -> FrangipaniCfg {
    FrangipaniCfg {
        ops,
        fault,
        ..FrangipaniCfg::default()
    }
}

#[test]
fn can_model_frangipani() {
    assert_eq!(check(cfg(1, Fault::None)), (25, BTreeSet::new()));
    assert_eq!(check(cfg(1, Fault::Crash)), (244, BTreeSet::new()));
    assert_eq!(check(cfg(2, Fault::Cut)), (1_069, BTreeSet::new()));
}

/// §6: without the margin (`--margin 0`) the lease check is the seeded bug's: a write in flight
/// lands after the lease expired.
#[test]
fn margin_zero_lets_a_zombie_write_land_late() {
    let (_, broken) = check(FrangipaniCfg {
        margin: 0,
        ..cfg(1, Fault::Cut)
    });
    assert_eq!(
        broken,
        BTreeSet::from([model::NO_WRITE_AFTER_EXPIRY, model::INSIDE_MARGIN])
    );
}
