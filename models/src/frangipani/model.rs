//! The checked model: two file servers, the lock server and Petal in one `ActorModel` over FIFO
//! links, in the workbench's [`Harness`]: a crash takes a file server down for good (messages to
//! it are lost), Petal answers in the step it is asked (a synchronous disk), and history
//! variables record what the properties need beyond the actors' states.

use stateright::actor::{ActorModel, ActorModelAction, Envelope, Id, Network};
use stateright::Property;

use super::actor::{
    FrangipaniActor, FrangipaniBug, FrangipaniMsg, FrangipaniState, FrangipaniTimer, LockServerCfg,
    LockServerState, Mode, Op, PetalCfg, PetalState, ServerCfg, ServerState, Ticks, Value,
};
use crate::harness::{CrashKind, HAction, HState, Harness, Harnessed};

/// The file servers, the lock server and Petal, by id.
pub const SERVERS: [usize; 2] = [0, 1];
pub const LOCK_SERVER: usize = 2;
pub const PETAL: usize = 3;

/// The one fault a run may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Either a file server crashes or one is cut off from the lock service, once.
    Either,
    /// A file server may crash (and stay down), once.
    Crash,
    /// A file server may be cut off from the lock service for good (a zombie), once.
    Cut,
    /// No fault.
    None,
}

impl Fault {
    /// The names the `--fault` parameter takes, default first.
    pub const NAMES: &'static [&'static str] = &["either", "crash", "cut", "none"];

    pub fn from_name(name: &str) -> Option<Fault> {
        match name {
            "either" => Some(Fault::Either),
            "crash" => Some(Fault::Crash),
            "cut" => Some(Fault::Cut),
            "none" => Some(Fault::None),
            _ => None,
        }
    }

    pub fn crash(self) -> bool {
        matches!(self, Fault::Either | Fault::Crash)
    }

    pub fn cut(self) -> bool {
        matches!(self, Fault::Either | Fault::Cut)
    }
}

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrangipaniCfg {
    /// Operations per file server: `FS0` writes 1 (then reads), `FS1` reads (then writes 2).
    pub ops: usize,
    /// A lease's length, in ticks.
    pub lease: Ticks,
    /// The margin a Petal write needs (§6).
    pub margin: Ticks,
    /// The most ticks a block write spends in the network (safe while `delay <= margin`).
    pub delay: Ticks,
    pub fault: Fault,
    pub bug: Option<FrangipaniBug>,
}

impl Default for FrangipaniCfg {
    fn default() -> Self {
        FrangipaniCfg {
            ops: 2,
            lease: 2,
            margin: 1,
            delay: 1,
            fault: Fault::Either,
            bug: None,
        }
    }
}

impl FrangipaniCfg {
    /// Server `i`'s script: `FS0` writes 1 then reads; `FS1` reads then writes 2; the first
    /// `ops` of each.
    pub fn script(&self, i: usize) -> Vec<Op> {
        let all = if i == 0 {
            [Op::Write(1), Op::Read]
        } else {
            [Op::Read, Op::Write(2)]
        };
        all[..self.ops.min(2)].to_vec()
    }

    pub fn into_model(self) -> FrangipaniModel {
        let servers: Vec<Id> = SERVERS.iter().map(|i| Id::from(*i)).collect();
        let mut actors: Vec<FrangipaniActor> = SERVERS
            .iter()
            .map(|i| {
                FrangipaniActor::Server(ServerCfg {
                    lock_server: Id::from(LOCK_SERVER),
                    petal: Id::from(PETAL),
                    script: self.script(*i),
                    lease: self.lease,
                    margin: self.margin,
                    may_cut: self.fault.cut(),
                    bug: self.bug,
                })
            })
            .collect();
        actors.push(FrangipaniActor::LockServer(LockServerCfg {
            servers: servers.clone(),
            bug: self.bug,
        }));
        actors.push(FrangipaniActor::Petal(PetalCfg { servers }));
        let crashes = usize::from(self.fault.crash());
        let inner = ActorModel::new(self, FrangipaniHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_out(record_out)
            .record_msg_in(record_in);
        Harness::new(inner, crashes)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrangipaniHistory {
    /// Faults so far: a crash or a cut, at most one.
    pub faults: u8,
    /// The value of the last completed write (0: the block's initial value), and its server.
    pub last_write: Value,
    pub last_writer: Option<u8>,
    /// A read returned something other than the last completed write.
    pub stale_read: bool,
    /// A read returned the other server's write.
    pub read_other: bool,
    /// Two servers held the read lock at once.
    pub shared: bool,
    /// A revoked server wrote its dirty data to Petal and kept a read lock.
    pub flushed_and_downgraded: bool,
    /// The servers whose leases the lock server found expired (bit per server).
    pub expired: u8,
    /// The logs being recovered (bit per server).
    pub recovering: u8,
    /// A second recovery of a log began while one was under way.
    pub two_recoveries: bool,
    /// A replay wrote a record not newer than the block.
    pub replay_not_newer: bool,
    /// A replay skipped a record the block already had.
    pub replay_skipped: bool,
    /// The log last recovered with at least one record applied.
    pub replayed_log: Option<u8>,
    /// After that, the other server was granted the lock.
    pub survivor_granted: bool,
    /// A server's Petal write arrived after the lock server found its lease expired.
    pub late_write: bool,
}

pub type FrangipaniModelState = HState<Frangipani>;
pub type FrangipaniAction = HAction<Frangipani>;

/// The Frangipani model.
pub type FrangipaniModel = Harness<Frangipani>;

fn bit(id: Id) -> u8 {
    1 << usize::from(id)
}

fn record_out(
    _: &FrangipaniCfg,
    h: &FrangipaniHistory,
    env: Envelope<&FrangipaniMsg>,
) -> Option<FrangipaniHistory> {
    let mut n = h.clone();
    match env.msg {
        FrangipaniMsg::Recover { log } => {
            n.two_recoveries |= h.recovering & bit(*log) != 0;
            n.recovering |= bit(*log);
            n.expired |= bit(*log);
        }
        FrangipaniMsg::Recovered {
            log,
            applied,
            skipped,
        } => {
            n.recovering &= !bit(*log);
            if *applied > 0 {
                n.replayed_log = Some(usize::from(*log) as u8);
            }
            n.replay_skipped |= *skipped > 0;
        }
        FrangipaniMsg::Write {
            version,
            replay: Some((_, block)),
            ..
        } => n.replay_not_newer |= version <= block,
        FrangipaniMsg::Grant { .. } => {
            if h.replayed_log
                .is_some_and(|l| usize::from(l) != usize::from(env.dst))
            {
                n.survivor_granted = true;
            }
        }
        _ => return None,
    }
    (n != *h).then_some(n)
}

fn record_in(
    _: &FrangipaniCfg,
    h: &FrangipaniHistory,
    env: Envelope<&FrangipaniMsg>,
) -> Option<FrangipaniHistory> {
    match env.msg {
        FrangipaniMsg::Write { replay: None, .. }
            if h.expired & bit(env.src) != 0 && !h.late_write =>
        {
            let mut n = h.clone();
            n.late_write = true;
            Some(n)
        }
        _ => None,
    }
}

/// The Frangipani model's part of the [`Harness`].
pub struct Frangipani;

impl Harnessed for Frangipani {
    type Actor = FrangipaniActor;
    type Cfg = FrangipaniCfg;
    type History = FrangipaniHistory;
    type Step = ();

    /// A crash is fail-stop: the server stays down and messages to it are lost.
    const CRASH: CrashKind = CrashKind::DownLosing;

    fn step_of(_: &FrangipaniAction) {}

    fn crashes(h: &FrangipaniHistory) -> usize {
        usize::from(h.faults)
    }

    fn count_crash(h: &mut FrangipaniHistory) {
        h.faults += 1;
    }

    /// Only file servers crash, and not with a block write in flight (the network delivers it
    /// well within the margin, before the lease could run out; a write that lands late is the
    /// cut server's case).
    fn may_crash(_: &FrangipaniModel, s: &FrangipaniModelState, i: usize) -> bool {
        i < LOCK_SERVER && writes_in_flight(s, i).next().is_none()
    }

    /// The lock server and Petal answer at once: their requests and replies are delivered in
    /// the step that sends them, except a file server's block write, which the network may
    /// delay (§6's hazard).
    fn immediate(_: &FrangipaniModel, msg: &FrangipaniMsg) -> bool {
        match msg {
            FrangipaniMsg::Write { replay, .. } => replay.is_some(),
            FrangipaniMsg::AppendLog { .. }
            | FrangipaniMsg::WriteAck { .. }
            | FrangipaniMsg::Read
            | FrangipaniMsg::ReadReply { .. }
            | FrangipaniMsg::ReadLog { .. }
            | FrangipaniMsg::LogReply { .. } => true,
            _ => false,
        }
    }

    /// A crashed server never comes back; a server is cut only if no fault has happened yet;
    /// a cut server's lease ticks down, but never while a write it checked `delay` ticks ago is
    /// still in flight (the network's delay is bounded); the update
    /// demon runs when there is dirty data to write; the lock server finds a lease expired only
    /// once it has run out (the server's clock and the lock server's agree: no drift), or the
    /// server crashed.
    fn allow(m: &FrangipaniModel, s: &FrangipaniModelState, a: &FrangipaniAction) -> bool {
        match a {
            ActorModelAction::Recover(_) => false,
            ActorModelAction::Timeout(_, FrangipaniTimer::Cut) => s.history.faults == 0,
            ActorModelAction::Timeout(id, FrangipaniTimer::LeaseTick) => {
                let i = usize::from(*id);
                let v = server(s, i);
                v.cut
                    && v.lease > 0
                    && writes_in_flight(s, i).all(|checked| checked + 1 - v.lease <= m.cfg().delay)
            }
            ActorModelAction::Timeout(id, FrangipaniTimer::Sync) => {
                let v = server(s, usize::from(*id));
                v.cache.is_some_and(|c| c.dirty) && !v.flushing
            }
            ActorModelAction::Timeout(_, FrangipaniTimer::LeaseExpiry(id)) => {
                let i = usize::from(*id);
                s.crashed[i] || server(s, i).lease == 0
            }
            _ => true,
        }
    }

    fn record(
        m: &FrangipaniModel,
        prev: Option<(&FrangipaniModelState, ())>,
        next: &mut FrangipaniModelState,
    ) {
        let Some((last, ())) = prev else {
            return;
        };
        // The Harness counts crashes; the cut is the other fault.
        if SERVERS
            .iter()
            .any(|i| server(next, *i).cut && !server(last, *i).cut)
        {
            next.history.faults += 1;
        }
        for i in SERVERS {
            let (before, after) = (server(last, i).clone(), server(next, i).clone());
            for k in before.next_op..after.next_op {
                // The operation `k` of server `i` completed in this step.
                let op = m.cfg().script(i)[usize::from(k)];
                match op {
                    Op::Write(v) => {
                        next.history.last_write = v;
                        next.history.last_writer = Some(i as u8);
                    }
                    Op::Read => {
                        let got = after.last_read.expect("a read completed");
                        if got != next.history.last_write {
                            next.history.stale_read = true;
                        }
                        if next
                            .history
                            .last_writer
                            .is_some_and(|w| usize::from(w) != i)
                            && got == next.history.last_write
                        {
                            next.history.read_other = true;
                        }
                    }
                }
            }
            if before.lock == Some(Mode::Write)
                && after.lock == Some(Mode::Read)
                && before.cache.is_some_and(|c| c.dirty)
                && after.cache.is_some_and(|c| !c.dirty)
            {
                next.history.flushed_and_downgraded = true;
            }
        }
        if SERVERS.iter().all(|i| holds(next, *i) == Some(Mode::Read)) {
            next.history.shared = true;
        }
    }

    fn properties(m: &FrangipaniModel) -> Vec<Property<FrangipaniModel>> {
        let cfg = m.cfg();
        let mut props = vec![
            Property::always(NO_CONFLICTING_LOCKS, no_conflicting_locks),
            Property::always(FLUSH_BEFORE_RELEASE, flush_before_release),
            Property::always(READ_LAST_WRITE, |_, s: &FrangipaniModelState| {
                !s.history.stale_read
            }),
            Property::always(REPLAY_NEWER, |_, s: &FrangipaniModelState| {
                !s.history.replay_not_newer && !s.history.two_recoveries
            }),
            Property::always(NO_WRITE_AFTER_EXPIRY, |_, s: &FrangipaniModelState| {
                !s.history.late_write
            }),
            Property::sometimes(SHARED, |_, s: &FrangipaniModelState| s.history.shared),
            Property::sometimes(FLUSHED_AND_DOWNGRADED, |_, s: &FrangipaniModelState| {
                s.history.flushed_and_downgraded
            }),
            Property::sometimes(READ_OTHER, |_, s: &FrangipaniModelState| {
                s.history.read_other
            }),
        ];
        if cfg.fault.crash() {
            props.push(Property::sometimes(
                RECOVERY_THEN_SURVIVOR,
                |_, s: &FrangipaniModelState| {
                    s.history.survivor_granted
                        && s.history
                            .replayed_log
                            .is_some_and(|l| s.crashed[usize::from(l)])
                },
            ));
        }
        if cfg.fault != Fault::None && cfg.ops >= 2 {
            props.push(Property::sometimes(
                REPLAY_SKIPS,
                |_, s: &FrangipaniModelState| s.history.replay_skipped,
            ));
        }
        if cfg.fault.cut() {
            props.push(Property::sometimes(INSIDE_MARGIN, inside_margin));
        }
        props.push(Property::eventually(
            EVERY_REQUEST_GRANTED,
            every_request_granted,
        ));
        props
    }
}

pub const NO_CONFLICTING_LOCKS: &str = "no conflicting locks are held (§6)";
pub const FLUSH_BEFORE_RELEASE: &str =
    "a server writes its dirty data to Petal and invalidates its cache before it gives a lock up (§5)";
pub const READ_LAST_WRITE: &str = "a read returns the last completed write (§5)";
pub const REPLAY_NEWER: &str =
    "log replay applies a record only when its version is newer than the block's, one recovery at a time per log (§4)";
pub const NO_WRITE_AFTER_EXPIRY: &str =
    "no Petal write from a server lands after its lease expired (§6)";
pub const SHARED: &str = "two servers hold the read lock at once (§6)";
pub const FLUSHED_AND_DOWNGRADED: &str =
    "a revoked server writes its dirty data to Petal and keeps a read lock (§5)";
pub const READ_OTHER: &str = "a read returns the other server's write (§5)";
pub const RECOVERY_THEN_SURVIVOR: &str =
    "recovery replays a crashed server's log and the survivor gets the lock (§4, §6)";
pub const REPLAY_SKIPS: &str = "log replay skips a record the block already has (§4)";
pub const INSIDE_MARGIN: &str =
    "a cut-off server's lease runs into the margin with dirty data unwritten (§6)";
pub const EVERY_REQUEST_GRANTED: &str =
    "every lock request of a server that is up and in touch with the lock service is granted";

/// Server `i`'s state.
pub fn server(s: &FrangipaniModelState, i: usize) -> &ServerState {
    match &*s.actor_states[i] {
        FrangipaniState::Server(v) => v,
        _ => panic!("actor {i} is a file server"),
    }
}

pub fn lock_server(s: &FrangipaniModelState) -> &LockServerState {
    match &*s.actor_states[LOCK_SERVER] {
        FrangipaniState::LockServer(l) => l,
        _ => panic!("actor {LOCK_SERVER} is the lock server"),
    }
}

pub fn petal(s: &FrangipaniModelState) -> &PetalState {
    match &*s.actor_states[PETAL] {
        FrangipaniState::Petal(p) => p,
        _ => panic!("actor {PETAL} is Petal"),
    }
}

/// The leases checked by server `i`'s block writes in flight to Petal.
fn writes_in_flight(s: &FrangipaniModelState, i: usize) -> impl Iterator<Item = Ticks> + '_ {
    crate::catalog::in_flight(&s.network).filter_map(move |(src, dst, msg)| match msg {
        FrangipaniMsg::Write {
            checked_lease,
            replay: None,
            ..
        } if usize::from(src) == i && usize::from(dst) == PETAL => Some(*checked_lease),
        _ => None,
    })
}

/// The lock server `i` holds and may use: none if it crashed or its lease ran out.
pub fn holds(s: &FrangipaniModelState, i: usize) -> Option<Mode> {
    let v = server(s, i);
    if s.crashed[i] || v.lease == 0 {
        None
    } else {
        v.lock
    }
}

/// Two servers' locks conflict unless both are read locks.
pub fn conflict(a: Option<Mode>, b: Option<Mode>) -> bool {
    matches!(
        (a, b),
        (Some(Mode::Write), Some(_)) | (Some(_), Some(Mode::Write))
    )
}

/// §6: the lock service grants a write lock to one server, or read locks to several.
fn no_conflicting_locks(_: &FrangipaniModel, s: &FrangipaniModelState) -> bool {
    !conflict(holds(s, SERVERS[0]), holds(s, SERVERS[1]))
}

/// §5: "if a Frangipani server ... is asked to release its write lock or downgrade it to a read
/// lock, it must write the dirty data to disk before complying", and a server that gives up a
/// lock entirely "must invalidate the cache entry". Stated on the state: a server not holding
/// the write lock has no dirty data, and one holding no lock caches nothing.
fn flush_before_release(_: &FrangipaniModel, s: &FrangipaniModelState) -> bool {
    SERVERS.iter().all(|i| {
        let v = server(s, *i);
        s.crashed[*i] || v.lease == 0 || cache_follows_lock(v)
    })
}

/// The cache invariant of one server (§5).
pub fn cache_follows_lock(v: &ServerState) -> bool {
    match (v.lock, v.cache) {
        (_, None) | (Some(Mode::Write), Some(_)) => true,
        (Some(Mode::Read), Some(c)) => !c.dirty,
        (None, Some(_)) => false,
    }
}

/// Sometimes: a cut-off server holds dirty data and its lease is inside the margin, so it may
/// no longer write it (§6).
fn inside_margin(m: &FrangipaniModel, s: &FrangipaniModelState) -> bool {
    SERVERS.iter().any(|i| {
        let v = server(s, *i);
        v.cut
            && v.lease > 0
            && v.lease <= m.cfg().margin
            && !v.flushing
            && v.cache.is_some_and(|c| c.dirty)
    })
}

/// Eventually every server that is up and in touch with the lock service has finished its
/// script: every lock request it made was granted.
fn every_request_granted(m: &FrangipaniModel, s: &FrangipaniModelState) -> bool {
    SERVERS.iter().all(|i| {
        let v = server(s, *i);
        s.crashed[*i] || v.cut || usize::from(v.next_op) == m.cfg().script(*i).len()
    })
}

/// The actors' names: the file servers `FS0` and `FS1`, the lock server `LS2`, Petal `P3`.
pub fn actor_names(_: &FrangipaniModel) -> Vec<String> {
    vec!["FS0".into(), "FS1".into(), "LS2".into(), "P3".into()]
}

fn mode(m: Option<Mode>) -> &'static str {
    match m {
        None => "-",
        Some(Mode::Read) => "R",
        Some(Mode::Write) => "W",
    }
}

/// `s` in the paper's terms: each server's lock, cache, lease and progress; the lock server's
/// holders and queue; Petal's block and logs; what the history has seen; the messages in flight.
pub fn view(m: &FrangipaniModel, s: &FrangipaniModelState) -> String {
    let names = actor_names(m);
    let mut lines = Vec::new();
    for i in SERVERS {
        let v = server(s, i);
        let cache = match v.cache {
            None => "none".to_string(),
            Some(c) => format!(
                "v{}={}{}",
                c.version,
                c.value,
                if c.dirty { " dirty" } else { "" }
            ),
        };
        let mut line = format!(
            "{} lock {} cache {} lease {} ops done {}/{}",
            names[i],
            mode(v.lock),
            cache,
            v.lease,
            v.next_op,
            m.cfg().script(i).len()
        );
        if let Some(w) = v.wanted {
            line.push_str(&format!(", wants {}", mode(Some(w))));
        }
        if v.flushing {
            line.push_str(", flushing");
        }
        if v.cut {
            line.push_str(", CUT OFF");
        }
        if s.crashed[i] {
            line.push_str(", CRASHED");
        }
        lines.push(line);
    }
    let l = lock_server(s);
    let holders: Vec<String> = SERVERS
        .iter()
        .map(|i| format!("{}:{}", names[*i], mode(l.holders[*i])))
        .collect();
    let queue: Vec<String> = l
        .queue
        .iter()
        .map(|(i, md)| format!("{}:{}", names[*i], mode(Some(*md))))
        .collect();
    let expired: Vec<&str> = SERVERS
        .iter()
        .filter(|i| l.expired[**i])
        .map(|i| names[*i].as_str())
        .collect();
    lines.push(format!(
        "{} holders [{}] queue [{}] expired [{}]",
        names[LOCK_SERVER],
        holders.join(", "),
        queue.join(", "),
        expired.join(", ")
    ));
    let p = petal(s);
    let logs: Vec<String> = SERVERS
        .iter()
        .map(|i| {
            let recs: Vec<String> = p.logs[*i]
                .iter()
                .map(|r| format!("v{}={}", r.version, r.value))
                .collect();
            format!("log {} [{}]", names[*i], recs.join(", "))
        })
        .collect();
    lines.push(format!(
        "{} block v{}={}; {}",
        names[PETAL],
        p.version,
        p.value,
        logs.join("; ")
    ));
    lines.push(format!("last completed write {}", s.history.last_write));
    lines.push(crate::catalog::in_flight_line(s, &names, str::to_string));
    lines.join("\n")
}

/// Why `property` fails at `s`, in the paper's terms.
pub fn explain(m: &FrangipaniModel, s: &FrangipaniModelState, property: &str) -> Option<String> {
    let names = actor_names(m);
    match property {
        NO_CONFLICTING_LOCKS => Some(format!(
            "{} holds {} while {} holds {}",
            names[0],
            mode(holds(s, 0)),
            names[1],
            mode(holds(s, 1))
        )),
        FLUSH_BEFORE_RELEASE => SERVERS.iter().find_map(|i| {
            let v = server(s, *i);
            (!s.crashed[*i] && v.lease > 0 && !cache_follows_lock(v)).then(|| {
                format!(
                    "{} holds lock {} with cache {:?}",
                    names[*i],
                    mode(v.lock),
                    v.cache
                )
            })
        }),
        READ_LAST_WRITE => Some(format!(
            "a read returned another value than the last completed write, {}",
            s.history.last_write
        )),
        _ => None,
    }
}
