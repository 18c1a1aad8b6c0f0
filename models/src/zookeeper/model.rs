//! The checked model: a leader and a follower (Zab abstracted as the leader's one log, sent
//! in order to both), and clients that each run the lock recipe once, in one `ActorModel`.
//! Links are FIFO. The leader may expire a session at any time (it stops hearing from the
//! client), at most `--expiries` times.

use stateright::actor::{ActorModel, ActorModelAction, Id, Network};
use stateright::Property;

use super::actor::{ClientState, Recipe, ServerState, Txn, ZkActor, ZkBug, ZkState, ZkTimer};
use crate::harness::{HAction, HState, Harness, Harnessed};

/// The leader's id; the follower is 1, the clients follow.
pub const LEADER: usize = 0;
pub const SERVERS: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZkCfg {
    pub clients: u8,
    pub expiries: u8,
    pub bug: Option<ZkBug>,
}

impl Default for ZkCfg {
    fn default() -> Self {
        ZkCfg {
            clients: 3,
            expiries: 1,
            bug: None,
        }
    }
}

impl ZkCfg {
    pub fn into_model(self) -> ZkModel {
        let servers: Vec<Id> = (0..SERVERS).map(Id::from).collect();
        let mut actors: Vec<ZkActor> = servers
            .iter()
            .map(|_| ZkActor::Server {
                leader: Id::from(LEADER),
                servers: servers.clone(),
                first_client: SERVERS,
                clients: self.clients,
                bug: self.bug,
            })
            .collect();
        for c in 0..usize::from(self.clients) {
            actors.push(ZkActor::Client {
                server: servers[c % SERVERS],
                bug: self.bug,
            });
        }
        let inner = ActorModel::new(self, ZkHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]));
        Harness::new(inner, 0)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZkHistory {
    pub expiries: u8,
}

pub type ZkModelState = HState<Zk>;
pub type ZkAction = HAction<Zk>;
pub type ZkModel = Harness<Zk>;

pub struct Zk;

fn server(s: &ZkModelState, i: usize) -> &ServerState {
    match &*s.actor_states[i] {
        ZkState::Server(x) => x,
        _ => unreachable!("actors 0 and 1 are servers"),
    }
}

/// The clients, in order.
pub fn clients(s: &ZkModelState) -> impl Iterator<Item = &ClientState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        ZkState::Client(c) => Some(c),
        _ => None,
    })
}

fn closed(s: &ZkModelState, c: u8) -> bool {
    server(s, LEADER)
        .log
        .contains(&Txn::CloseSession { client: c })
}

/// Clients that believe they hold the lock while their lock node is alive in the log's order
/// (a holder whose session expired, or whose delete is ordered, holds nothing).
pub fn holders(s: &ZkModelState) -> Vec<usize> {
    // The tree as the whole log leaves it: the writes' order is the log's.
    let mut tree = std::collections::BTreeMap::new();
    for t in &server(s, LEADER).log {
        match t {
            Txn::Create { client, seq } => {
                tree.insert(*seq, *client);
            }
            Txn::Delete { seq } => {
                tree.remove(seq);
            }
            Txn::CloseSession { client } => tree.retain(|_, c| c != client),
        }
    }
    clients(s)
        .enumerate()
        .filter(|(i, c)| {
            matches!(c.recipe, Recipe::Holding | Recipe::Releasing)
                && !closed(s, *i as u8)
                && c.node.is_some_and(|n| tree.contains_key(&n))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The sequence numbers the leader gave, in log order.
pub fn sequence(s: &ZkModelState) -> Vec<u8> {
    server(s, LEADER)
        .log
        .iter()
        .filter_map(|t| match t {
            Txn::Create { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// A server with an ephemeral node whose session it has closed: (server, node, client).
pub fn orphan(s: &ZkModelState) -> Option<(usize, u8, u8)> {
    (0..SERVERS).find_map(|i| {
        let r = &server(s, i).replica;
        r.children
            .iter()
            .find(|(_, c)| r.closed.contains(c))
            .map(|(n, c)| (i, *n, *c))
    })
}

impl Harnessed for Zk {
    type Actor = ZkActor;
    type Cfg = ZkCfg;
    type History = ZkHistory;
    type Step = bool;

    fn step_of(action: &ZkAction) -> bool {
        matches!(action, ActorModelAction::Timeout(_, ZkTimer::Expire(_)))
    }

    fn crashes(_: &ZkHistory) -> usize {
        0
    }

    fn count_crash(_: &mut ZkHistory) {}

    fn may_crash(_: &ZkModel, _: &ZkModelState, _: usize) -> bool {
        false
    }

    fn allow(m: &ZkModel, s: &ZkModelState, action: &ZkAction) -> bool {
        match action {
            ActorModelAction::Timeout(_, ZkTimer::Expire(c)) => {
                s.history.expiries < m.cfg().expiries && !closed(s, *c)
            }
            _ => true,
        }
    }

    fn record(_: &ZkModel, prev: Option<(&ZkModelState, bool)>, next: &mut ZkModelState) {
        if let Some((_, true)) = prev {
            next.history.expiries += 1;
        }
    }

    fn properties(_: &ZkModel) -> Vec<Property<ZkModel>> {
        vec![
            Property::always(
                "the lock recipe has at most one holder (§2.4)",
                |_, s: &ZkModelState| holders(s).len() <= 1,
            ),
            Property::always(
                "sequential suffixes are unique and increasing (§2.1)",
                |_, s: &ZkModelState| sequence(s).windows(2).all(|w| w[0] < w[1]),
            ),
            Property::always(
                "ephemerals die with their session (§2.1)",
                |_, s: &ZkModelState| orphan(s).is_none(),
            ),
            Property::sometimes(
                "every client takes the lock in turn",
                |_, s: &ZkModelState| clients(s).all(|c| c.recipe == Recipe::Done),
            ),
            Property::sometimes(
                "a waiter whose predecessor's session expired waits again on the node below (§2.4)",
                |_, s: &ZkModelState| clients(s).any(|c| c.rewaited),
            ),
            Property::sometimes(
                "a session expires and its ephemeral node is removed",
                |_, s: &ZkModelState| {
                    (0..SERVERS).any(|i| {
                        let r = &server(s, i).replica;
                        !r.closed.is_empty() && r.applied > 0
                    }) && clients(s).any(|c| c.recipe == Recipe::Dead && c.node.is_some())
                },
            ),
        ]
    }
}

pub fn actor_names(m: &ZkModel) -> Vec<String> {
    let mut names = vec!["leader".to_string(), "follower".to_string()];
    names.extend((0..m.cfg().clients).map(|c| format!("c{c}")));
    names
}

pub fn view(m: &ZkModel, s: &ZkModelState) -> String {
    let names = actor_names(m);
    let mut lines = Vec::new();
    for (i, name) in names.iter().enumerate().take(SERVERS) {
        let x = server(s, i);
        lines.push(format!(
            "{}: /lock children {:?} (node → client), applied {}, watches {:?}{}",
            name,
            x.replica.children,
            x.replica.applied,
            x.replica.watches,
            if i == LEADER {
                format!(", log {:?}", x.log)
            } else {
                String::new()
            }
        ));
    }
    for (i, c) in clients(s).enumerate() {
        lines.push(format!("c{i}: {:?}, node {:?}", c.recipe, c.node));
    }
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

pub fn explain(_: &ZkModel, s: &ZkModelState, property: &str) -> Option<String> {
    if property.starts_with("the lock recipe") {
        let h = holders(s);
        return (h.len() > 1).then(|| format!("clients {h:?} hold the lock, their sessions alive"));
    }
    if property.starts_with("sequential suffixes") {
        return Some(format!(
            "the leader numbered the lock's children {:?}",
            sequence(s)
        ));
    }
    if property.starts_with("ephemerals die") {
        let (i, n, c) = orphan(s)?;
        return Some(format!(
            "server {i} has lock-{n:010} of client c{c}, whose session it closed"
        ));
    }
    None
}
