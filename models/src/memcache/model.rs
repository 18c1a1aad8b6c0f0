//! The checked model: two web servers, memcache, the gutter, the database and mcsqueal in one
//! `ActorModel` over FIFO links, in the workbench's [`Harness`], with history variables for
//! what the properties read beyond the actors' states.

use stateright::actor::{ActorModel, ActorModelAction, Envelope, Id, Network};
use stateright::Property;

use super::actor::{
    GutterState, McMsg, McState, McTimer, MemcacheActor, MemcacheBug, MemcacheCfg, MemcacheState,
    Op, Phase, Version, WebCfg, WebState,
};
use crate::harness::{HAction, HState, Harness, Harnessed};

/// The actors, by id: two web servers, then the caches, the database and mcsqueal.
pub const WEB: [usize; 2] = [0, 1];
pub const MEMCACHE: usize = 2;
pub const GUTTER: usize = 3;
pub const DATABASE: usize = 4;
pub const MCSQUEAL: usize = 5;

pub const NO_OLDER_THAN_DELETE: &str =
    "memcache never keeps a value older than a delete it processed: a set whose lease predates the delete is refused (§3.2.1)";
pub const REFUSES_STALE_SET: &str =
    "memcache refuses a set whose lease a delete invalidated (§3.2.1)";
pub const NO_STALE_AT_REST: &str =
    "with nothing in flight, memcache holds nothing or the database's value, and the gutter nothing, the database's value or an entry that expires (§2, §3.3)";
pub const FILLED_AT_REST: &str =
    "with nothing in flight after a write, memcache holds the database's new value (§3.2.1)";
pub const ONE_LEASE: &str = "at most one lease token per key is outstanding (§3.2.1)";
pub const TOLD_TO_WAIT: &str = "a web server is told to wait and get again (§3.2.1)";
pub const GUTTER_HIT: &str = "the gutter answers a get while memcache is down (§3.3)";
pub const EVERY_OP_DONE: &str = "every web server finishes its operations";

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemcacheModelCfg {
    /// Each web server's operations, in order.
    pub ops: [Vec<Op>; 2],
    /// Whether the memcache server fails once (and comes back empty).
    pub failure: bool,
    pub bug: Option<MemcacheBug>,
}

impl MemcacheModelCfg {
    /// `ops` operations per web server: the first reads then writes, the second writes then
    /// reads (so that two reads, two writes, and a read against a write can each overlap).
    pub fn new(ops: usize, failure: bool, bug: Option<MemcacheBug>) -> Self {
        let take = |script: [Op; 2]| script.into_iter().take(ops).collect();
        MemcacheModelCfg {
            ops: [take([Op::Read, Op::Write]), take([Op::Write, Op::Read])],
            failure,
            bug,
        }
    }

    pub fn into_model(self) -> MemcacheModel {
        let mut actors: Vec<MemcacheActor> = self
            .ops
            .iter()
            .map(|ops| {
                MemcacheActor::Web(WebCfg {
                    ops: ops.clone(),
                    memcache: Id::from(MEMCACHE),
                    gutter: Id::from(GUTTER),
                    db: Id::from(DATABASE),
                    bug: self.bug,
                    tcp: None,
                })
            })
            .collect();
        actors.push(MemcacheActor::Memcache(MemcacheCfg {
            fails: self.failure,
            bug: self.bug,
        }));
        actors.push(MemcacheActor::Gutter { bug: self.bug });
        actors.push(MemcacheActor::Database {
            mcsqueal: Id::from(MCSQUEAL),
        });
        actors.push(MemcacheActor::Mcsqueal {
            memcache: Id::from(MEMCACHE),
        });
        let inner = ActorModel::new(self, McHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_in(record_in);
        Harness::new(inner, 0)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct McHistory {
    /// A web server was told to wait.
    pub waited: bool,
    /// The gutter answered a get with a hit.
    pub gutter_hit: bool,
}

fn record_in(_: &MemcacheModelCfg, h: &McHistory, env: Envelope<&McMsg>) -> Option<McHistory> {
    let mut next = h.clone();
    match env.msg {
        McMsg::Wait { .. } => next.waited = true,
        McMsg::Hit { .. } if usize::from(env.src) == GUTTER => next.gutter_hit = true,
        _ => return None,
    }
    (next != *h).then_some(next)
}

pub type McModelState = HState<Memcache>;
pub type McAction = HAction<Memcache>;
pub type MemcacheModel = Harness<Memcache>;

/// The memcache model's part of the [`Harness`].
pub struct Memcache;

impl Harnessed for Memcache {
    type Actor = MemcacheActor;
    type Cfg = MemcacheModelCfg;
    type History = McHistory;
    type Step = ();

    fn step_of(_: &McAction) {}

    /// The memcache server's failure is its own timer, not the harness's crash.
    fn crashes(_: &McHistory) -> usize {
        0
    }

    fn count_crash(_: &mut McHistory) {}

    fn may_crash(_: &MemcacheModel, _: &McModelState, _: usize) -> bool {
        false
    }

    fn record(_: &MemcacheModel, _: Option<(&McModelState, ())>, _: &mut McModelState) {}

    /// Answers to a web server reach it in the step that sends them (what it does next is
    /// another message, which travels): only when a request reaches a server, and when a set
    /// or a delete reaches memcache, matters to the others.
    fn immediate(_: &MemcacheModel, msg: &McMsg) -> bool {
        matches!(
            msg,
            McMsg::Hit { .. }
                | McMsg::Miss { .. }
                | McMsg::Wait { .. }
                | McMsg::Failed { .. }
                | McMsg::ReadReply { .. }
                | McMsg::WriteOk { .. }
                | McMsg::Commit { .. }
        )
    }

    fn properties(m: &MemcacheModel) -> Vec<Property<MemcacheModel>> {
        let mut props = vec![
            Property::always(NO_OLDER_THAN_DELETE, |_, s: &McModelState| {
                let mc = memcache(s);
                mc.item.is_none_or(|i| i.version >= mc.invalidated)
            }),
            Property::sometimes(REFUSES_STALE_SET, |_, s: &McModelState| memcache(s).refused),
            Property::always(NO_STALE_AT_REST, no_stale_at_rest),
            Property::sometimes(FILLED_AT_REST, |_, s: &McModelState| {
                let db = database(s);
                at_rest(s) && db > 0 && memcache(s).item.is_some_and(|i| i.version == db)
            }),
            Property::always(ONE_LEASE, |_, s: &McModelState| {
                memcache(s).leases.len() <= 1
            }),
        ];
        // (A web server waits for another's lease, and hits a gutter entry another set: it
        // takes two that read.)
        let two_readers = m.cfg().ops.iter().all(|ops| ops.contains(&Op::Read));
        if two_readers {
            props.push(Property::sometimes(TOLD_TO_WAIT, |_, s: &McModelState| {
                s.history.waited
            }));
        }
        if m.cfg().failure && two_readers {
            props.push(Property::sometimes(GUTTER_HIT, |_, s: &McModelState| {
                s.history.gutter_hit
            }));
        }
        props.push(Property::eventually(
            EVERY_OP_DONE,
            |_, s: &McModelState| webs(s).all(|w| w.phase == Phase::Done),
        ));
        props
    }
}

/// The web servers' states.
pub fn webs(s: &McModelState) -> impl Iterator<Item = &WebState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        McState::Web(w) => Some(w),
        _ => None,
    })
}

pub fn memcache(s: &McModelState) -> &MemcacheState {
    match &*s.actor_states[MEMCACHE] {
        McState::Memcache(m) => m,
        other => unreachable!("actor {MEMCACHE} is memcache, not {other:?}"),
    }
}

pub fn gutter(s: &McModelState) -> &GutterState {
    match &*s.actor_states[GUTTER] {
        McState::Gutter(g) => g,
        other => unreachable!("actor {GUTTER} is the gutter, not {other:?}"),
    }
}

/// The database's version of the key.
pub fn database(s: &McModelState) -> Version {
    match &*s.actor_states[DATABASE] {
        McState::Database { version } => *version,
        other => unreachable!("actor {DATABASE} is the database, not {other:?}"),
    }
}

/// Nothing in flight and every web server done: no write, set or invalidation is under way.
pub fn at_rest(s: &McModelState) -> bool {
    s.network.len() == 0 && webs(s).all(|w| w.phase == Phase::Done)
}

/// §2, §3.3: at rest, what the caches hold is the database's value, or nothing; the gutter may
/// hold an old value only until its TTL runs out. (Memcache's failure is a timer that may still
/// fire: it only empties the cache.)
fn no_stale_at_rest(_: &MemcacheModel, s: &McModelState) -> bool {
    if !at_rest(s) {
        return true;
    }
    let db = database(s);
    memcache(s).item.is_none_or(|i| i.version == db)
        && gutter(s)
            .item
            .is_none_or(|(i, expires)| i.version == db || expires)
}

/// The actors' names: `W0`, `W1`, `M2` (memcache), `G3` (gutter), `D4`, `Q5` (mcsqueal).
pub fn actor_names() -> Vec<String> {
    ["W0", "W1", "M2", "G3", "D4", "Q5"]
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// `s` in the paper's terms: each web server's operation and phase, the caches' contents and
/// leases, the database's version, the messages in flight.
pub fn view(m: &MemcacheModel, s: &McModelState) -> String {
    let names = actor_names();
    let mut lines = Vec::new();
    for (i, w) in webs(s).enumerate() {
        let op = m.cfg().ops[i]
            .get(w.op)
            .map_or("done".to_string(), |op| format!("{op:?} (op {})", w.op + 1));
        let reads: Vec<String> = w.reads.iter().map(|v| format!("v{v}")).collect();
        lines.push(format!(
            "{} {op} {:?} read [{}]",
            names[i],
            w.phase,
            reads.join(" ")
        ));
    }
    let mc = memcache(s);
    lines.push(format!(
        "{} {} item {} leases {:?} (tokens issued {}) invalidated through v{}{}",
        names[MEMCACHE],
        if mc.up { "up" } else { "DOWN" },
        mc.item.map_or("-".to_string(), |i| format!("{i:?}")),
        mc.leases,
        mc.issued,
        mc.invalidated,
        if mc.refused {
            ", refused a stale set"
        } else {
            ""
        }
    ));
    lines.push(format!(
        "{} item {}",
        names[GUTTER],
        match gutter(s).item {
            None => "-".to_string(),
            Some((i, true)) => format!("{i:?} (expires)"),
            Some((i, false)) => format!("{i:?} (never expires)"),
        }
    ));
    lines.push(format!("{} v{}", names[DATABASE], database(s)));
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// Deliveries and timers are fair, except memcache's failure (the environment's choice).
pub fn fair_class(_: &MemcacheModel, a: &McAction) -> Option<u64> {
    match a {
        ActorModelAction::Timeout(_, McTimer::Fail) => None,
        a => crate::catalog::actor_fair_class(a),
    }
}
