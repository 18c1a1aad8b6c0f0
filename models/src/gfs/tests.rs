//! The placement rule, a chunkserver and the master one step at a time (no checker), then the
//! checker on small shapes. The default's verdicts and counts are pinned in `reports/gfs.json`
//! by the checker crate, and every seeded bug by its `bugs` test.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use stateright::actor::{Actor, Command, Id, Out};
use stateright::{Checker, Expectation, Model};

use super::actor::{
    apply, place, ChunkserverCfg, GfsActor, GfsMsg, GfsState, GfsTimer, MasterCfg, Placement,
    Replica, Slot, Write,
};
use super::model::GfsCfg;

const A0: Slot = Slot::Data { rec: 0, part: 0 };
const A1: Slot = Slot::Data { rec: 0, part: 1 };
const B0: Slot = Slot::Data { rec: 1, part: 0 };
const LEASE: Duration = Duration::from_secs(60);

fn id(i: usize) -> Id {
    Id::from(i)
}

fn sent(o: Out<GfsActor>) -> Vec<(Id, GfsMsg)> {
    o.into_iter()
        .filter_map(|c: Command<GfsMsg, GfsTimer, (), _>| match c {
            Command::Send(dst, m) => Some((dst, m)),
            _ => None,
        })
        .collect()
}

/// Delivers `msg` from `src` to `actor` in `state`; returns what it sent.
fn deliver(actor: &GfsActor, state: &mut GfsState, src: Id, msg: GfsMsg) -> Vec<(Id, GfsMsg)> {
    let mut o = Out::new();
    let mut cow = Cow::Borrowed(&*state);
    actor.on_msg(id(9), &mut cow, src, msg, &mut o);
    *state = cow.into_owned();
    sent(o)
}

fn fire(actor: &GfsActor, state: &mut GfsState, timer: GfsTimer) -> Vec<(Id, GfsMsg)> {
    let mut o = Out::new();
    let mut cow = Cow::Borrowed(&*state);
    actor.on_timeout(id(9), &mut cow, &timer, &mut o);
    *state = cow.into_owned();
    sent(o)
}

fn chunkserver() -> GfsActor {
    GfsActor::Chunkserver(ChunkserverCfg {
        master: id(0),
        chunk_size: 3,
        lease: LEASE,
        mutate_timeout: LEASE / 6,
        heartbeat: None,
        bug: None,
        data: std::marker::PhantomData,
    })
}

fn master() -> GfsActor {
    GfsActor::Master(MasterCfg {
        chunkservers: vec![id(1), id(2), id(3)],
        files: vec!["log".into()],
        max_chunks: 2,
        replication: 3,
        lease: LEASE,
        tick: None,
        persist: false,
        bug: None,
    })
}

fn start(actor: &GfsActor, storage: Option<super::actor::Disk>) -> (GfsState, Vec<(Id, GfsMsg)>) {
    let mut o = Out::new();
    let storage = storage.map(super::actor::GfsDisk::Chunkserver);
    let s = actor.on_start(id(9), &storage, &mut o);
    (s, sent(o))
}

/// §3.3: a record that fits goes at the end; one that does not pads the chunk to its end.
#[test]
fn the_primary_places_a_record_or_pads() {
    assert_eq!(place(0, 2, 3), Placement::At(0));
    assert_eq!(place(1, 2, 3), Placement::At(1));
    assert_eq!(place(2, 2, 3), Placement::Pad { from: 2, len: 1 });
    assert_eq!(place(3, 1, 3), Placement::Pad { from: 3, len: 0 });
    // A secondary writes at the primary's offset, leaving a hole where it missed a mutation.
    let mut data = vec![];
    apply(&mut data, 2, &[B0]);
    assert_eq!(data, vec![Slot::Hole, Slot::Hole, B0]);
    apply(&mut data, 0, &[A0, A1]);
    assert_eq!(data, vec![A0, A1, B0]);
}

/// §3.3 and §4.5: the primary orders its secondaries at its offset; a secondary at another
/// version refuses, and the append fails; a record that does not fit is padded and the client
/// sent to the next chunk.
#[test]
fn a_primary_appends_pads_and_fails() {
    let cs = chunkserver();
    let (mut primary, _) = start(&cs, None);
    let new_version = GfsMsg::NewVersion {
        handle: 1,
        version: 1,
        epoch: 1,
    };
    assert_eq!(
        deliver(&cs, &mut primary, id(0), new_version.clone()),
        vec![(
            id(0),
            GfsMsg::VersionOk {
                handle: 1,
                version: 1
            }
        )]
    );
    let grant = GfsMsg::Grant {
        handle: 1,
        version: 1,
        secondaries: vec![id(2)],
    };
    assert_eq!(
        deliver(&cs, &mut primary, id(0), grant),
        vec![(id(0), GfsMsg::GrantOk { handle: 1 })]
    );
    let append = |rec, len| GfsMsg::RecordAppend {
        handle: 1,
        rec,
        len,
    };
    let mutate = GfsMsg::Mutate {
        handle: 1,
        version: 1,
        offset: 0,
        write: Write::Record { rec: 0, len: 2 },
    };
    assert_eq!(
        deliver(&cs, &mut primary, id(4), append(0, 2)),
        vec![(id(2), mutate.clone())]
    );

    // The secondary missed the version: it refuses, and the client is told to retry.
    let (mut secondary, _) = start(&cs, None);
    let refused = deliver(&cs, &mut secondary, id(1), mutate.clone());
    assert_eq!(
        refused,
        vec![(
            id(1),
            GfsMsg::MutateFailed {
                handle: 1,
                offset: 0
            }
        )]
    );
    let failed = GfsMsg::MutateFailed {
        handle: 1,
        offset: 0,
    };
    assert_eq!(
        deliver(&cs, &mut primary, id(2), failed),
        vec![(id(4), GfsMsg::AppendFailed { handle: 1, rec: 0 })]
    );

    // The retry lands after the failed region; then a two-slot record no longer fits.
    deliver(&cs, &mut secondary, id(0), new_version);
    let out = deliver(&cs, &mut primary, id(5), append(1, 1));
    assert_eq!(out.len(), 1);
    assert_eq!(
        deliver(&cs, &mut secondary, id(1), out[0].1.clone()),
        vec![(
            id(1),
            GfsMsg::MutateOk {
                handle: 1,
                offset: 2
            }
        )]
    );
    let GfsState::Chunkserver(c) = &secondary else {
        unreachable!()
    };
    assert_eq!(c.replicas[&1].data, vec![Slot::Hole, Slot::Hole, B0]);
    // The chunk is full (the failed A, then B): A goes to the next chunk, nothing to pad.
    assert_eq!(
        deliver(&cs, &mut primary, id(4), append(0, 2)),
        vec![(id(4), GfsMsg::RetryNextChunk { handle: 1, rec: 0 })]
    );
}

/// §3.3: a record that does not fit in what is left of the chunk: the primary pads the rest,
/// orders its secondaries to pad at the same offset, and sends the client to the next chunk.
#[test]
fn a_record_that_does_not_fit_pads_the_chunk() {
    let cs = chunkserver();
    let (mut primary, _) = start(&cs, None);
    let new_version = GfsMsg::NewVersion {
        handle: 1,
        version: 1,
        epoch: 1,
    };
    deliver(&cs, &mut primary, id(0), new_version);
    let grant = GfsMsg::Grant {
        handle: 1,
        version: 1,
        secondaries: vec![id(2)],
    };
    deliver(&cs, &mut primary, id(0), grant);
    let append = GfsMsg::RecordAppend {
        handle: 1,
        rec: 0,
        len: 2,
    };
    deliver(&cs, &mut primary, id(4), append.clone());
    assert_eq!(
        deliver(&cs, &mut primary, id(4), append),
        vec![
            (
                id(2),
                GfsMsg::Mutate {
                    handle: 1,
                    version: 1,
                    offset: 2,
                    write: Write::Pad { len: 1 },
                }
            ),
            (id(4), GfsMsg::RetryNextChunk { handle: 1, rec: 0 }),
        ]
    );
    let GfsState::Chunkserver(c) = &primary else {
        unreachable!()
    };
    assert_eq!(c.replicas[&1].data, vec![A0, A1, Slot::Pad]);
    // A secondary pads without answering: nothing waits for it.
    let (mut secondary, _) = start(&cs, None);
    deliver(
        &cs,
        &mut secondary,
        id(0),
        GfsMsg::NewVersion {
            handle: 1,
            version: 1,
            epoch: 1,
        },
    );
    let pad = GfsMsg::Mutate {
        handle: 1,
        version: 1,
        offset: 2,
        write: Write::Pad { len: 1 },
    };
    assert_eq!(deliver(&cs, &mut secondary, id(1), pad), vec![]);
    let GfsState::Chunkserver(c) = &secondary else {
        unreachable!()
    };
    assert_eq!(c.replicas[&1].data, vec![Slot::Hole, Slot::Hole, Slot::Pad]);
}

/// §4.5: a chunkserver that was down reports an old version; the master drops it from the
/// chunk's locations and has it deleted. A report of the current version puts it back.
#[test]
fn the_master_collects_a_stale_replica() {
    let m = master();
    let (mut s, _) = start(&m, None);
    let find = GfsMsg::FindLease {
        file: 0,
        chunk: 0,
        refused: None,
    };
    let round = deliver(&m, &mut s, id(4), find);
    assert_eq!(round.len(), 3, "NewVersion to every chunkserver: {round:?}");
    for cs in 1..=3 {
        deliver(
            &m,
            &mut s,
            id(cs),
            GfsMsg::VersionOk {
                handle: 1,
                version: 1,
            },
        );
    }
    deliver(&m, &mut s, id(1), GfsMsg::GrantOk { handle: 1 });
    // The lease ran out; a second round at version 2 leaves cs3 out (it is down).
    fire(&m, &mut s, GfsTimer::LeaseRunOut(1));
    fire(&m, &mut s, GfsTimer::Silent(id(3)));
    let find = GfsMsg::FindLease {
        file: 0,
        chunk: 0,
        refused: None,
    };
    let round = deliver(&m, &mut s, id(5), find);
    let to: Vec<Id> = round.iter().map(|(dst, _)| *dst).collect();
    assert_eq!(to, vec![id(1), id(2)]);
    for cs in 1..=2 {
        deliver(
            &m,
            &mut s,
            id(cs),
            GfsMsg::VersionOk {
                handle: 1,
                version: 2,
            },
        );
    }
    let stale = deliver(
        &m,
        &mut s,
        id(3),
        GfsMsg::Report {
            chunks: vec![(1, 1)],
        },
    );
    assert_eq!(
        stale,
        vec![(
            id(3),
            GfsMsg::Delete {
                handle: 1,
                version: 1
            }
        )]
    );
    let GfsState::Master(ms) = &s else {
        unreachable!()
    };
    assert_eq!(ms.chunks[&1].locations, vec![id(1), id(2)]);
    assert!(ms.down.is_empty());
    // A deletion meant for version 1 spares a replica that has recorded version 2 since.
    let cs = chunkserver();
    let mut replicas = BTreeMap::new();
    replicas.insert(
        1,
        Replica {
            version: 2,
            epoch: 2,
            data: vec![A0, A1],
        },
    );
    let (mut c, report) = start(&cs, Some(std::sync::Arc::new(replicas)));
    assert_eq!(
        report,
        vec![(
            id(0),
            GfsMsg::Report {
                chunks: vec![(1, 2)]
            }
        )]
    );
    deliver(
        &cs,
        &mut c,
        id(0),
        GfsMsg::Delete {
            handle: 1,
            version: 1,
        },
    );
    let GfsState::Chunkserver(c) = &c else {
        unreachable!()
    };
    assert_eq!(c.replicas[&1].data, vec![A0, A1]);
}

/// A replica that recorded the new version and then went down must not come back looking up
/// to date: the master starts the round over at a newer version without it.
#[test]
fn a_replica_down_during_a_round_gets_a_newer_version_round() {
    let m = master();
    let (mut s, _) = start(&m, None);
    deliver(
        &m,
        &mut s,
        id(4),
        GfsMsg::FindLease {
            file: 0,
            chunk: 0,
            refused: None,
        },
    );
    deliver(
        &m,
        &mut s,
        id(1),
        GfsMsg::VersionOk {
            handle: 1,
            version: 1,
        },
    );
    fire(&m, &mut s, GfsTimer::Silent(id(1)));
    deliver(
        &m,
        &mut s,
        id(2),
        GfsMsg::VersionOk {
            handle: 1,
            version: 1,
        },
    );
    let again = deliver(
        &m,
        &mut s,
        id(3),
        GfsMsg::VersionOk {
            handle: 1,
            version: 1,
        },
    );
    let expected: Vec<(Id, GfsMsg)> = [2, 3]
        .into_iter()
        .map(|cs| {
            (
                id(cs),
                GfsMsg::NewVersion {
                    handle: 1,
                    version: 2,
                    epoch: 2,
                },
            )
        })
        .collect();
    assert_eq!(again, expected);
}

/// Checks `cfg` to the end, asserts that every property is as expected, and returns the unique
/// and generated state counts.
fn check(cfg: GfsCfg) -> (usize, usize) {
    let properties = cfg.clone().into_model().properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    for p in properties {
        assert_eq!(
            found.contains_key(p.name),
            p.expectation == Expectation::Sometimes,
            "{}",
            p.name
        );
    }
    (checker.unique_state_count(), checker.state_count())
}

/// One client, one crash: every property as expected (the default, with two clients, is pinned
/// by `reports/gfs.json`).
#[test]
fn can_model_gfs() {
    let one = GfsCfg {
        clients: 1,
        ..GfsCfg::default()
    };
    assert_eq!(check(one), (9_685, 29_091));
}
