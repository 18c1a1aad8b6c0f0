//! The checked model: the master, three chunkservers and the clients in one `ActorModel`, in the
//! workbench's [`Harness`]. Links are FIFO. Time is not modelled; what the paper's clocks
//! guarantee is an order of events, and the harness allows only those orders:
//!
//! - the master's lease runs out after the primary's (§3.1: the primary's lease is shorter by
//!   the clock drift), so the master's `LeaseRunOut` waits until no live chunkserver holds the
//!   lease and no grant of it is in flight (the `early-lease` bug lifts this);
//! - a timeout fires only when the answer it waits for can no longer come: the request or its
//!   answer was lost to a chunkserver that is down;
//! - the master notices that a chunkserver is down (`Silent`) only when it is, and a client's
//!   backoff outlasts that: it retries once the master has noticed every chunkserver down;
//! - a primary's lease ends without being extended at most `expiries` times.
//!
//! A crash takes a chunkserver down for a while ([`CrashKind::DownLosing`]): messages to it
//! are lost, and it restarts from its disk.

use stateright::actor::{ActorModel, ActorModelAction, Id, Network};
use stateright::Property;

use super::actor::{
    ChunkserverCfg, ChunkserverState, ClientCfg, ClientState, GfsActor, GfsBug, GfsMsg, GfsState,
    GfsTimer, Handle, MasterCfg, MasterState, Phase, Slot,
};
use crate::harness::{CrashKind, HAction, HState, Harness, Harnessed};
use std::time::Duration;

/// The master's id; chunkservers follow, then clients.
pub const MASTER: usize = 0;
/// Chunkservers in the model (§2.2: three replicas by default).
pub const CHUNKSERVERS: usize = 3;
/// Slots in a chunk: record A (two slots) and record B (one) fit together, and a retried A does
/// not fit after a failed one, so padding is reachable.
pub const CHUNK_SLOTS: u64 = 3;
/// Record lengths, by client: A is 2 slots, B is 1.
pub const RECORD_LEN: [u8; 2] = [2, 1];

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GfsCfg {
    /// Clients, 1 or 2: client `i` appends record `i` (A, B).
    pub clients: usize,
    /// How many chunks the file may have.
    pub chunks: u32,
    /// Chunkserver crashes (each a restart from its disk).
    pub crashes: usize,
    /// Leases that end without being extended.
    pub expiries: u8,
    /// Retries after a failed attempt, per client.
    pub retries: u8,
    pub bug: Option<GfsBug>,
}

impl Default for GfsCfg {
    fn default() -> Self {
        GfsCfg {
            clients: 2,
            chunks: 2,
            crashes: 1,
            expiries: 0,
            retries: 1,
            bug: None,
        }
    }
}

/// Timer lengths do not matter to the model; these are only there for `set_timer`.
const LEASE: Duration = Duration::from_secs(60);

impl GfsCfg {
    pub fn into_model(self) -> GfsModel {
        let master = Id::from(MASTER);
        let chunkservers: Vec<Id> = (1..=CHUNKSERVERS).map(Id::from).collect();
        let mut actors = vec![GfsActor::Master(MasterCfg {
            chunkservers: chunkservers.clone(),
            files: vec!["log".into()],
            max_chunks: self.chunks,
            replication: CHUNKSERVERS,
            lease: LEASE,
            tick: None,
            persist: false,
            bug: self.bug,
        })];
        for _ in &chunkservers {
            actors.push(GfsActor::Chunkserver(ChunkserverCfg {
                master,
                chunk_size: CHUNK_SLOTS,
                lease: LEASE,
                mutate_timeout: LEASE / 6,
                heartbeat: None,
                bug: self.bug,
                data: std::marker::PhantomData,
            }));
        }
        for (i, len) in RECORD_LEN.iter().enumerate().take(self.clients) {
            actors.push(GfsActor::Client(ClientCfg {
                master,
                append: Some((i as u64, u64::from(*len))),
                retries: self.retries,
                timeout: LEASE / 3,
            }));
        }
        let crashes = self.crashes;
        let inner = ActorModel::new(self, GfsHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]));
        Harness::new(inner, crashes)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GfsHistory {
    pub crashes: usize,
    /// Leases that ended without being extended.
    pub expiries: u8,
    /// A stale replica was deleted on the master's word (§4.5).
    pub collected: bool,
}

pub type GfsModelState = HState<Gfs>;
pub type GfsAction = HAction<Gfs>;

/// The GFS model.
pub type GfsModel = Harness<Gfs>;

/// What the history variables need to know about a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    LeaseEnd,
    Delete(Id),
    Other,
}

/// The GFS model's part of the [`Harness`].
pub struct Gfs;

impl Harnessed for Gfs {
    type Actor = GfsActor;
    type Cfg = GfsCfg;
    type History = GfsHistory;
    type Step = Step;

    fn step_of(action: &GfsAction) -> Step {
        match action {
            ActorModelAction::Timeout(_, GfsTimer::LeaseEnd(_)) => Step::LeaseEnd,
            ActorModelAction::Deliver {
                dst,
                msg: GfsMsg::Delete { .. },
                ..
            } => Step::Delete(*dst),
            _ => Step::Other,
        }
    }

    fn crashes(h: &GfsHistory) -> usize {
        h.crashes
    }

    fn count_crash(h: &mut GfsHistory) {
        h.crashes += 1;
    }

    const CRASH: CrashKind = CrashKind::DownLosing;

    /// A chunkserver may crash.
    fn may_crash(_: &GfsModel, s: &GfsModelState, index: usize) -> bool {
        chunkserver(s, index).is_some()
    }

    fn allow(m: &GfsModel, s: &GfsModelState, action: &GfsAction) -> bool {
        let cfg = m.cfg();
        match action {
            ActorModelAction::Timeout(id, timer) => match timer {
                GfsTimer::LeaseRunOut(h) => {
                    cfg.bug == Some(GfsBug::EarlyLease) || lease_gone(s, *h)
                }
                GfsTimer::GrantTimeout => grant_stuck(s),
                GfsTimer::LeaseEnd(_) => s.history.expiries < cfg.expiries,
                GfsTimer::MutateTimeout(h, o) => mutate_stuck(s, *id, *h, *o),
                GfsTimer::NoAnswer => append_lost(s, *id),
                // The master notices a chunkserver is down only when it is.
                GfsTimer::Silent(cs) => s.crashed[usize::from(*cs)],
                // Only set over TCP.
                GfsTimer::Tick | GfsTimer::Recovered | GfsTimer::HeartBeat => false,
                // A client backs off longer than the master takes to notice a chunkserver
                // down (HeartBeat timeouts are shorter than retry backoffs).
                GfsTimer::Backoff => (0..s.crashed.len())
                    .filter(|i| s.crashed[*i])
                    .all(|i| master(s).down.contains(&Id::from(i))),
            },
            _ => true,
        }
    }

    fn record(_: &GfsModel, prev: Option<(&GfsModelState, Step)>, next: &mut GfsModelState) {
        let Some((last, step)) = prev else {
            return;
        };
        match step {
            Step::LeaseEnd => {
                let ended =
                    |s: &GfsModelState| -> usize { chunkservers(s).map(|c| c.leases.len()).sum() };
                if ended(next) < ended(last) {
                    next.history.expiries += 1;
                }
            }
            Step::Delete(dst) => {
                let held = |s: &GfsModelState| {
                    chunkserver(s, usize::from(dst)).map_or(0, |c| c.replicas.len())
                };
                if held(next) < held(last) {
                    next.history.collected = true;
                }
            }
            Step::Other => {}
        }
    }

    fn properties(_: &GfsModel) -> Vec<Property<GfsModel>> {
        vec![
            Property::always(
                "at most one primary holds a lease on a chunk (§3.1)",
                |_, s: &GfsModelState| one_primary(s),
            ),
            Property::always(
                "an append acknowledged at offset o is at o on every up-to-date replica (§3.3)",
                |_, s: &GfsModelState| acked_on_up_to_date(s).is_none(),
            ),
            Property::always(
                "the master never hands a client a stale replica (§4.5)",
                |_, s: &GfsModelState| stale_handed(s).is_none(),
            ),
            Property::always(
                "every acknowledged record is in the file at least once (§3.3)",
                |_, s: &GfsModelState| lost_record(s).is_none(),
            ),
            Property::sometimes(
                "a second lease is granted on a chunk, at a new version (§3.1, §4.5)",
                |_, s: &GfsModelState| master(s).chunks.values().any(|c| c.granted >= 2),
            ),
            Property::sometimes(
                "an append fails on a replica, is retried and succeeds (§3.3)",
                |_, s: &GfsModelState| {
                    clients(s).any(|c| c.failures > 0 && c.appended.is_some())
                },
            ),
            Property::sometimes(
                "a stale replica is found and deleted (§4.5)",
                |_, s: &GfsModelState| s.history.collected,
            ),
            Property::sometimes(
                "a record appears twice with padding between (Table 1: defined interspersed with inconsistent)",
                |_, s: &GfsModelState| duplicated_around_padding(s),
            ),
            Property::eventually(
                "every append succeeds once faults stop (§3.3)",
                |_, s: &GfsModelState| {
                    clients(s).all(|c| c.phase == Phase::Done)
                },
            ),
        ]
    }
}

fn chunkserver(s: &GfsModelState, index: usize) -> Option<&ChunkserverState> {
    match s.actor_states.get(index).map(|a| &**a) {
        Some(GfsState::Chunkserver(c)) => Some(c),
        _ => None,
    }
}

/// The master's state.
pub fn master(s: &GfsModelState) -> &MasterState {
    match &*s.actor_states[MASTER] {
        GfsState::Master(m) => m,
        _ => unreachable!("actor 0 is the master"),
    }
}

/// The chunkservers, in order.
pub fn chunkservers(s: &GfsModelState) -> impl Iterator<Item = &ChunkserverState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        GfsState::Chunkserver(c) => Some(c),
        _ => None,
    })
}

/// The chunkservers that are up, with their ids' indexes: only they hold leases (a crashed
/// process holds nothing; its replicas are on its disk).
pub fn live_chunkservers(s: &GfsModelState) -> impl Iterator<Item = (usize, &ChunkserverState)> {
    s.actor_states
        .iter()
        .enumerate()
        .filter(|(i, _)| !s.crashed[*i])
        .filter_map(|(i, a)| match &**a {
            GfsState::Chunkserver(c) => Some((i, c)),
            _ => None,
        })
}

/// The clients, in order.
pub fn clients(s: &GfsModelState) -> impl Iterator<Item = &ClientState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        GfsState::Client(c) => Some(c),
        _ => None,
    })
}

/// Whether some message in flight, first in its channel or not, satisfies `f(src, dst, msg)`.
fn in_flight(s: &GfsModelState, mut f: impl FnMut(Id, Id, &GfsMsg) -> bool) -> bool {
    crate::catalog::in_flight(&s.network).any(|(src, dst, m)| f(src, dst, m))
}

/// No chunkserver holds a lease on `h`, and none is on its way: the primary's clock has run
/// out, so the master's may.
fn lease_gone(s: &GfsModelState, h: Handle) -> bool {
    !live_chunkservers(s).any(|(_, c)| c.leases.contains_key(&h))
        && !in_flight(
            s,
            |_, _, m| matches!(m, GfsMsg::Grant { handle, .. } if *handle == h),
        )
}

/// The lease round cannot go on: every replica the master still waits for lost its
/// `NewVersion` (the timeout is long enough for a live replica to answer), or the chosen
/// primary lost its `Grant`.
fn grant_stuck(s: &GfsModelState) -> bool {
    let Some(g) = &master(s).granting else {
        return false;
    };
    if let Some(p) = g.primary {
        return !in_flight(s, |src, dst, m| {
            (dst == p && matches!(m, GfsMsg::Grant { .. }))
                || (src == p && matches!(m, GfsMsg::GrantOk { .. }))
        });
    }
    !g.waiting.is_empty()
        && g.waiting.iter().all(|r| {
            !in_flight(s, |src, dst, m| {
                (dst == *r && matches!(m, GfsMsg::NewVersion { .. }))
                    || (src == *r && matches!(m, GfsMsg::VersionOk { .. }))
            })
        })
}

/// The secondaries the primary `id` still waits for on its append at `(handle, offset)` will
/// never answer (the timeout is long enough for a live secondary to answer).
fn mutate_stuck(s: &GfsModelState, id: Id, handle: Handle, offset: u64) -> bool {
    let Some(c) = chunkserver(s, usize::from(id)) else {
        return false;
    };
    let Some(p) = c
        .pending
        .iter()
        .find(|p| (p.handle, p.offset) == (handle, offset))
    else {
        return false;
    };
    p.waiting.iter().all(|r| {
        !in_flight(s, |src, dst, m| match m {
            GfsMsg::Mutate {
                handle: h,
                offset: o,
                ..
            } => src == id && dst == *r && (*h, *o) == (handle, offset),
            GfsMsg::MutateOk {
                handle: h,
                offset: o,
            }
            | GfsMsg::MutateFailed {
                handle: h,
                offset: o,
            } => src == *r && dst == id && (*h, *o) == (handle, offset),
            _ => false,
        })
    })
}

/// Client `id`'s append will never be answered: the request or the answer was lost, and the
/// primary is not working on it.
fn append_lost(s: &GfsModelState, id: Id) -> bool {
    let Some(GfsState::Client(c)) = s.actor_states.get(usize::from(id)).map(|a| &**a) else {
        return false;
    };
    let Phase::Appending { handle, primary } = c.phase else {
        return false;
    };
    let working = !s.crashed[usize::from(primary)]
        && chunkserver(s, usize::from(primary)).is_some_and(|p| {
            p.pending
                .iter()
                .any(|q| q.client == id && q.handle == handle)
        });
    let talking = in_flight(s, |src, dst, m| {
        (src == id && dst == primary && matches!(m, GfsMsg::RecordAppend { .. }))
            || (src == primary
                && dst == id
                && matches!(
                    m,
                    GfsMsg::AppendOk { .. }
                        | GfsMsg::AppendFailed { .. }
                        | GfsMsg::NotPrimary { .. }
                        | GfsMsg::RetryNextChunk { .. }
                ))
    });
    !working && !talking
}

/// Each chunk has at most one chunkserver that holds a lease on it.
fn one_primary(s: &GfsModelState) -> bool {
    master(s).chunks.values().all(|meta| {
        live_chunkservers(s)
            .filter(|(_, c)| c.leases.contains_key(&meta.handle))
            .count()
            <= 1
    })
}

/// What each client has appended: `(client index, handle, offset)`.
fn acknowledged(s: &GfsModelState) -> Vec<(usize, Handle, u64)> {
    let m = master(s);
    clients(s)
        .enumerate()
        .filter_map(|(i, c)| {
            let (chunk, offset) = c.appended?;
            Some((i, m.handle(c.file, chunk)?, offset))
        })
        .collect()
}

/// Whether `data` holds client `i`'s record whole at `offset` (the parts a chunk can hold).
fn holds(data: &[Slot], i: usize, offset: u64, whole: bool) -> bool {
    (0..RECORD_LEN[i]).all(|part| {
        let at = offset as usize + part as usize;
        if at as u64 >= CHUNK_SLOTS && !whole {
            return true;
        }
        data.get(at) == Some(&Slot::Data { rec: i as u8, part })
    })
}

/// An acknowledged append missing from an up-to-date replica (its version is the master's):
/// `(client, chunkserver index)`.
pub fn acked_on_up_to_date(s: &GfsModelState) -> Option<(usize, usize)> {
    let m = master(s);
    for (i, h, offset) in acknowledged(s) {
        let meta = m.chunks.get(&h)?;
        for (j, c) in chunkservers(s).enumerate() {
            if let Some(r) = c.replicas.get(&h) {
                if r.version == meta.version && !holds(&r.data, i, offset, false) {
                    return Some((i, j));
                }
            }
        }
    }
    None
}

/// A lease answer on its way to a client that names a replica which missed a lease round
/// the answer is from: `(client, chunkserver id)`. (Rounds only grow, so a replica stale now
/// was stale when the master answered.)
pub fn stale_handed(s: &GfsModelState) -> Option<(usize, Id)> {
    let mut found = None;
    in_flight(s, |_, dst, m| {
        let GfsMsg::LeaseIs {
            handle,
            epoch,
            primary,
            secondaries,
            ..
        } = m
        else {
            return false;
        };
        let stale = std::iter::once(primary).chain(secondaries).find(|r| {
            chunkserver(s, usize::from(**r))
                .and_then(|c| c.replicas.get(handle))
                .is_some_and(|rep| rep.epoch < *epoch)
        });
        if let Some(r) = stale {
            found = Some((usize::from(dst) - MASTER - 1 - CHUNKSERVERS, *r));
        }
        stale.is_some()
    });
    found
}

/// An acknowledged record whole at its offset on no replica: the client.
pub fn lost_record(s: &GfsModelState) -> Option<usize> {
    acknowledged(s).into_iter().find_map(|(i, h, offset)| {
        let whole = chunkservers(s)
            .filter_map(|c| c.replicas.get(&h))
            .any(|r| holds(&r.data, i, offset, true));
        (!whole).then_some(i)
    })
}

/// Some replica's file (its chunks in order) has a record start, padding, and the same record
/// start again.
fn duplicated_around_padding(s: &GfsModelState) -> bool {
    chunkservers(s).any(|c| {
        let file: Vec<Slot> = c.replicas.values().flat_map(|r| r.data.clone()).collect();
        (0..2u8).any(|rec| {
            let start = Slot::Data { rec, part: 0 };
            let Some(first) = file.iter().position(|x| *x == start) else {
                return false;
            };
            let Some(last) = file.iter().rposition(|x| *x == start) else {
                return false;
            };
            first < last && file[first..last].contains(&Slot::Pad)
        })
    })
}

/// The actors' names: `master`, `cs1`..`cs3`, `A`, `B`.
pub fn actor_names(m: &GfsModel) -> Vec<String> {
    let mut names = vec!["master".to_string()];
    names.extend((1..=CHUNKSERVERS).map(|i| format!("cs{i}")));
    names.extend((0..m.cfg().clients).map(|i| format!("client {}", (b'A' + i as u8) as char)));
    names
}

/// A state in the paper's terms: the master's chunks, each chunkserver's replicas (version and
/// slots: `A0 A1` a record, `#` padding, `_` a hole), leases and pending appends, the clients.
pub fn view(m: &GfsModel, s: &GfsModelState) -> String {
    let names = actor_names(m);
    let name = |id: &Id| names[usize::from(*id)].clone();
    let mut lines = Vec::new();
    let ms = master(s);
    for (i, c) in ms.chunks.values().enumerate() {
        let locs: Vec<String> = c.locations.iter().map(name).collect();
        lines.push(format!(
            "master: chunk {i} handle {} v{} round {} on [{}]{}",
            c.handle,
            c.version,
            c.epoch,
            locs.join(" "),
            c.lease
                .map_or(String::new(), |p| format!(", lease {}", name(&p)))
        ));
    }
    if let Some(g) = &ms.granting {
        lines.push(format!(
            "master: granting handle {} v{}, recorded by {:?}, waiting for {:?}",
            g.handle, g.version, g.acked, g.waiting
        ));
    }
    for (i, a) in s.actor_states.iter().enumerate() {
        match &**a {
            GfsState::Chunkserver(c) => {
                let mut line = format!("{}:", names[i]);
                if s.crashed[i] {
                    line.push_str(" down, on disk:");
                }
                for (h, r) in &c.replicas {
                    let slots: Vec<String> = r.data.iter().map(|x| format!("{x:?}")).collect();
                    line.push_str(&format!(" chunk {h} v{} [{}]", r.version, slots.join(" ")));
                    if !s.crashed[i] && c.leases.contains_key(h) {
                        line.push_str(" primary");
                    }
                }
                for p in c.pending.iter().filter(|_| !s.crashed[i]) {
                    line.push_str(&format!(
                        ", {}'s append at {} waits for {:?}",
                        name(&p.client),
                        p.offset,
                        p.waiting
                    ));
                }
                lines.push(line);
            }
            GfsState::Client(c) => lines.push(format!(
                "{}: chunk {} failures {} {:?}{}",
                names[i],
                c.chunk,
                c.failures,
                c.phase,
                c.appended.map_or(String::new(), |(ch, o)| format!(
                    ", appended at chunk {ch} offset {o}"
                ))
            )),
            GfsState::Master(_) => {}
        }
    }
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// Why a property fails, naming the record, the offset and the replica.
pub fn explain(m: &GfsModel, s: &GfsModelState, property: &str) -> Option<String> {
    let names = actor_names(m);
    let rec = |i: usize| (b'A' + i as u8) as char;
    if property.starts_with("at most one primary") {
        let ms = master(s);
        for meta in ms.chunks.values() {
            let holders: Vec<String> = live_chunkservers(s)
                .filter(|(_, c)| c.leases.contains_key(&meta.handle))
                .map(|(j, _)| names[j].clone())
                .collect();
            if holders.len() > 1 {
                return Some(format!(
                    "{} each hold a lease on chunk handle {}: two primaries order mutations",
                    holders.join(" and "),
                    meta.handle
                ));
            }
        }
        return None;
    }
    if property.starts_with("an append acknowledged") {
        let (i, j) = acked_on_up_to_date(s)?;
        let (chunk, offset) = clients(s).nth(i)?.appended?;
        return Some(format!(
            "record {} was acknowledged at chunk {chunk} offset {offset}, but {} has the chunk's current version without it there",
            rec(i),
            names[j + 1]
        ));
    }
    if property.starts_with("the master never hands") {
        let (i, r) = stale_handed(s)?;
        return Some(format!(
            "the master is telling client {1} that {0} holds the chunk, but {0} missed a lease round (§4.5)",
            names[usize::from(r)],
            rec(i)
        ));
    }
    if property.starts_with("every acknowledged record") {
        let i = lost_record(s)?;
        let (chunk, offset) = clients(s).nth(i)?.appended?;
        return Some(format!(
            "record {} was acknowledged at chunk {chunk} offset {offset}, but no replica holds it whole there",
            rec(i)
        ));
    }
    None
}
