//! The checked model: three servers in one `ActorModel`, in the workbench's [`Harness`]. Links
//! are FIFO (Zab assumes TCP, §3). A crash restarts a server from its disk in one step.
//!
//! Leader election is abstracted, as the bound allows: a looking server's `Lead`
//! timer fires only when a quorum of looking servers could elect it, that is when it has the
//! highest vote (currentEpoch, lastZxid, id) among a quorum of looking servers, and no new
//! epoch would pass [`MAX_EPOCH`]; its `Follow(l)` timer fires only when `l` leads. A
//! follower gives up (`LeaderLost`) when its leader no longer leads; a leader gives up
//! (`QuorumLost`) when fewer than a quorum follow it. A client's write (`Propose`) reaches an
//! established leader while fewer than `txns` have been proposed in all.

use stateright::actor::{ActorModel, ActorModelAction, Id, Network};
use stateright::Property;
use std::collections::BTreeSet;

use super::actor::{
    Epoch, Phase, Role, ZabActor, ZabBug, ZabMsg, ZabState, ZabTimer, Zxid, MAX_EPOCH,
};
use crate::harness::{CrashKind, HAction, HState, Harness, Harnessed};

/// Servers in the model.
pub const SERVERS: usize = 3;

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZabCfg {
    /// Client writes proposed in all, over every epoch.
    pub txns: u8,
    /// Server crashes (each a restart from disk).
    pub crashes: usize,
    pub bug: Option<ZabBug>,
}

impl Default for ZabCfg {
    fn default() -> Self {
        ZabCfg {
            txns: 1,
            crashes: 1,
            bug: None,
        }
    }
}

impl ZabCfg {
    pub fn into_model(self) -> ZabModel {
        let servers: Vec<Id> = (0..SERVERS).map(Id::from).collect();
        let bug = self.bug;
        let actors: Vec<ZabActor> = servers
            .iter()
            .map(|_| ZabActor::new(servers.clone(), bug))
            .collect();
        let crashes = self.crashes;
        let inner = ActorModel::new(self, ZabHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]));
        Harness::new(inner, crashes)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZabHistory {
    pub crashes: usize,
    pub proposals: u8,
    /// Transactions a leader has committed (a quorum logged them).
    pub committed: BTreeSet<Zxid>,
    /// The longest sequence of transactions delivered by any server so far.
    pub order: Vec<Zxid>,
    /// Two servers delivered sequences of which neither is a prefix of the other.
    pub conflict: Option<(Vec<Zxid>, Vec<Zxid>)>,
    /// A NEWLEADER brought a follower a committed transaction it had missed.
    pub synced_missed: bool,
    /// A leader of a later epoch delivered a transaction of an earlier one.
    pub carried: bool,
}

pub type ZabModelState = HState<Zab>;
pub type ZabAction = HAction<Zab>;
pub type ZabModel = Harness<Zab>;

/// The Zab model's part of the [`Harness`].
pub struct Zab;

/// What a step was, for the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Propose,
    /// A NEWLEADER delivered to this server.
    NewLeader(usize),
    Other,
}

/// The servers' states.
pub fn servers(s: &ZabModelState) -> impl Iterator<Item = &ZabState> {
    s.actor_states.iter().map(|a| &**a)
}

fn vote(s: &ZabModelState, i: usize) -> (Epoch, Zxid, usize) {
    s.actor_states[i].disk.vote(Id::from(i))
}

impl Harnessed for Zab {
    type Actor = ZabActor;
    type Cfg = ZabCfg;
    type History = ZabHistory;
    type Step = Step;

    fn step_of(action: &ZabAction) -> Step {
        match action {
            ActorModelAction::Timeout(_, ZabTimer::Propose) => Step::Propose,
            ActorModelAction::Deliver {
                dst,
                msg: ZabMsg::NewLeader { .. },
                ..
            } => Step::NewLeader(usize::from(*dst)),
            _ => Step::Other,
        }
    }

    fn crashes(h: &ZabHistory) -> usize {
        h.crashes
    }

    fn count_crash(h: &mut ZabHistory) {
        h.crashes += 1;
    }

    const CRASH: CrashKind = CrashKind::Restart;

    fn may_crash(_: &ZabModel, _: &ZabModelState, _: usize) -> bool {
        true
    }

    fn allow(m: &ZabModel, s: &ZabModelState, action: &ZabAction) -> bool {
        let ActorModelAction::Timeout(id, timer) = action else {
            return true;
        };
        let i = usize::from(*id);
        let me = &s.actor_states[i];
        match timer {
            ZabTimer::Lead => {
                let looking: Vec<usize> = (0..SERVERS)
                    .filter(|j| s.actor_states[*j].role == Role::Looking)
                    .collect();
                let below = looking
                    .iter()
                    .filter(|j| vote(s, **j) <= vote(s, i))
                    .count();
                let epochs_left = servers(s).all(|x| x.disk.accepted_epoch < MAX_EPOCH);
                me.role == Role::Looking && below > SERVERS / 2 && epochs_left
            }
            ZabTimer::Follow(l) => {
                me.role == Role::Looking
                    && matches!(s.actor_states[usize::from(*l)].role, Role::Leading(_))
            }
            ZabTimer::Propose => s.history.proposals < m.cfg().txns,
            ZabTimer::LeaderLost => match me.role {
                Role::Following { leader, .. } => {
                    !matches!(s.actor_states[usize::from(leader)].role, Role::Leading(_))
                }
                _ => false,
            },
            ZabTimer::QuorumLost => {
                let following = servers(s)
                    .filter(|x| matches!(x.role, Role::Following { leader, .. } if leader == *id))
                    .count();
                matches!(me.role, Role::Leading(_)) && following < SERVERS / 2
            }
        }
    }

    fn record(_: &ZabModel, prev: Option<(&ZabModelState, Step)>, next: &mut ZabModelState) {
        let mut h = next.history.clone();
        if let Some((_, Step::Propose)) = prev {
            h.proposals += 1;
        }
        for x in servers(next) {
            if let Some(l) = x.leader() {
                if l.phase == Phase::Broadcast {
                    h.committed.extend(x.delivered().copied());
                    if x.delivered().any(|z| z.0 < l.epoch && z.0 > 0) && l.epoch > 1 {
                        h.carried = true;
                    }
                }
            }
        }
        for x in servers(next) {
            let d: Vec<Zxid> = x.delivered().copied().collect();
            let d = d.as_slice();
            if d.starts_with(&h.order) {
                h.order = d.to_vec();
            } else if !h.order.starts_with(d) && h.conflict.is_none() {
                h.conflict = Some((h.order.clone(), d.to_vec()));
            }
        }
        if let Some((p, Step::NewLeader(i))) = prev {
            let (before, after) = (
                &p.actor_states[i].disk.history,
                &next.actor_states[i].disk.history,
            );
            if h.committed
                .iter()
                .any(|z| !before.contains(z) && after.contains(z))
            {
                h.synced_missed = true;
            }
        }
        if h != next.history {
            next.history = h;
        }
    }

    fn properties(_: &ZabModel) -> Vec<Property<ZabModel>> {
        vec![
            Property::always(
                "a server delivers only committed transactions (§3)",
                |_, s: &ZabModelState| uncommitted_delivery(s).is_none(),
            ),
            Property::always(
                "committed transactions are delivered in one order by every server (total order, agreement)",
                |_, s: &ZabModelState| s.history.conflict.is_none(),
            ),
            Property::always(
                "a committed transaction is never lost across epochs (§4: primary integrity)",
                |_, s: &ZabModelState| lost_commit(s).is_none(),
            ),
            Property::always(
                "each server's log is in zxid order (primary order)",
                |_, s: &ZabModelState| servers(s).all(|x| x.disk.history.iter().zip(x.disk.history.iter().skip(1)).all(|(a, b)| a < b)),
            ),
            Property::sometimes(
                "every server delivers a transaction",
                |_, s: &ZabModelState| servers(s).all(|x| x.delivered > 0),
            ),
            Property::sometimes(
                "a new leader synchronises a follower that missed a commit",
                |_, s: &ZabModelState| s.history.synced_missed,
            ),
            Property::sometimes(
                "a leader of a later epoch delivers a transaction of an earlier one",
                |_, s: &ZabModelState| s.history.carried,
            ),
        ]
    }
}

/// A server that delivered a transaction no leader committed: (server, zxid).
pub fn uncommitted_delivery(s: &ZabModelState) -> Option<(usize, Zxid)> {
    servers(s).enumerate().find_map(|(i, x)| {
        x.delivered()
            .find(|z| !s.history.committed.contains(z))
            .map(|z| (i, *z))
    })
}

/// A leader past discovery whose log lacks a transaction committed in an earlier epoch:
/// (leader, its epoch, zxid).
pub fn lost_commit(s: &ZabModelState) -> Option<(usize, Epoch, Zxid)> {
    servers(s).enumerate().find_map(|(i, x)| {
        let l = x.leader()?;
        if l.phase == Phase::Discovery {
            return None;
        }
        s.history
            .committed
            .iter()
            .find(|z| z.0 < l.epoch && !x.disk.history.contains(z))
            .map(|z| (i, l.epoch, *z))
    })
}

/// The actors' names: `s0`, `s1`, `s2`.
pub fn actor_names(_: &ZabModel) -> Vec<String> {
    (0..SERVERS).map(|i| format!("s{i}")).collect()
}

/// A state in the paper's terms: each server's role, epochs, log and delivered prefix.
pub fn view(m: &ZabModel, s: &ZabModelState) -> String {
    let names = actor_names(m);
    let mut lines = Vec::new();
    for (i, x) in servers(s).enumerate() {
        let role = match &x.role {
            Role::Looking => "looking".to_string(),
            Role::Following { leader, phase } => {
                format!("following {} ({phase:?})", names[usize::from(*leader)])
            }
            Role::Leading(l) => format!("leading epoch {} ({:?})", l.epoch, l.phase),
        };
        lines.push(format!(
            "{}: {role}; acceptedEpoch {} currentEpoch {}; log {:?}, delivered {}",
            names[i], x.disk.accepted_epoch, x.disk.current_epoch, x.disk.history, x.delivered
        ));
    }
    lines.push(format!("committed {:?}", s.history.committed));
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// Why a property fails.
pub fn explain(_: &ZabModel, s: &ZabModelState, property: &str) -> Option<String> {
    if property.starts_with("a server delivers only") {
        let (i, z) = uncommitted_delivery(s)?;
        return Some(format!(
            "s{i} delivered {z:?}, which no leader has committed: no quorum had logged it"
        ));
    }
    if property.starts_with("committed transactions are delivered in one order") {
        let (a, b) = s.history.conflict.clone()?;
        return Some(format!("one server delivered {a:?}, another {b:?}"));
    }
    if property.starts_with("a committed transaction is never lost") {
        let (i, e, z) = lost_commit(s)?;
        return Some(format!(
            "s{i} leads epoch {e} without {z:?}, which was committed in epoch {}",
            z.0
        ));
    }
    None
}
