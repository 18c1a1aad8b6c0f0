//! Split-view (fork) attacks on a CT log, and the gossip that catches them.
//!
//! RFC 6962 §5.3 and RFC 9162 §8.1 leave it to monitors and auditors to detect a log that shows
//! different trees to different clients; "Gossiping in CT" (Nordberg, Gillmor, Ritter, 2015 draft)
//! has clients exchange the signed tree heads they have seen. This model runs one log and N
//! monitors, all real: the log keeps real Merkle trees and signs real Ed25519 tree heads, the
//! monitors verify real signatures and proofs.
//!
//! # The protocol
//! Each monitor submits an entry (`add-chain`, §4.1) and gets a promise (an SCT); asks for the tree
//! head (`get-sth`, §4.3) and trusts the first one (trust on first use); checks that its entry is in
//! that tree (`get-proof-by-hash`, §4.5); gossips the head to the other monitors; and follows the log
//! by asking once more for its newest head, which it accepts only with a consistency proof from the
//! head it holds. A monitor
//! that receives a head compares it with its own: equal sizes must have equal roots; otherwise it
//! asks the log for a consistency proof (`get-sth-consistency`, §4.4) between the smaller and the
//! larger and verifies it, adopting the larger head if it is newer. Two signed heads that no proof
//! reconciles, or a broken promise, are evidence of misbehaviour.
//!
//! The log chooses at start (a stateright random choice) to be honest, to split its view (a second
//! tree with an entry of its own, shown to every other monitor), or to break its promise to the
//! first monitor. Messages may be reordered; none is lost. Time is logical (see [`super::log`]).
//!
//! # Properties
//! - always "accepted heads are consistent": no monitor accepts a head inconsistent with a head it
//!   accepted earlier (ground truth: both are heads of one tree the log keeps).
//! - always "gossiped forks leave evidence": once a monitor has checked a gossiped head that is
//!   forked from its own, it holds evidence (two signed heads with no valid consistency proof).
//! - always "included entries are in the tree": an entry a monitor believes included is in the tree
//!   of the head it checked it against.
//! - always "an honest log is never accused".
//! - eventually "a misbehaving log is caught" (decided exactly by the workbench's engine; the model
//!   has no cycles, so `--engine stateright`, which checks acyclic paths only, agrees).
//! - sometimes: a monitor moves to a newer head; a fork is detected; a broken promise is detected;
//!   an honest log's heads are all accepted.
//!
//! # Seeded bugs
//! - `no-gossip`: monitors keep their heads to themselves; a split view goes undetected (eventually).
//! - `skip-consistency-check`: a monitor adopts a larger gossiped head without a consistency proof
//!   (accepted heads consistent; gossiped forks leave evidence).
//! - `accept-any-inclusion`: inclusion proofs are not verified (included entries are in the tree).
//! - `compare-roots-only`: a gossiped head is compared by root alone, whatever its size, so an
//!   honest log that has grown is accused (an honest log is never accused).

use std::borrow::Cow;

use ed25519_dalek::{SigningKey, VerifyingKey};
use stateright::actor::{Actor, ActorModel, ActorModelState, Id, Network, Out};

use super::log::{signing_key, Behaviour, LogState, Promise, SignedTreeHead};
use super::merkle::{verify_consistency, verify_inclusion, Hash};
use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

/// The messages: RFC 6962 §4's API between monitors and the log, and gossip between monitors.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtMsg {
    /// `add-chain`: submit an entry.
    AddEntry {
        data: Vec<u8>,
    },
    /// The log's promise to include it.
    AddEntryResponse(Promise),
    /// `get-sth`.
    GetSth,
    GetSthResponse(SignedTreeHead),
    /// `get-sth-consistency`.
    GetSthConsistency {
        first: u64,
        second: u64,
    },
    GetSthConsistencyResponse {
        first: u64,
        second: u64,
        consistency: Vec<Hash>,
    },
    /// `get-proof-by-hash`.
    GetProofByHash {
        hash: Hash,
        tree_size: u64,
    },
    GetProofByHashResponse {
        tree_size: u64,
        leaf_index: u64,
        audit_path: Vec<Hash>,
    },
    /// A tree head passed from one monitor to another.
    Gossip(SignedTreeHead),
}

/// The first bytes of a hash, enough to tell hashes apart in a trace.
fn short(h: &Hash) -> String {
    h[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn shorts(hs: &[Hash]) -> String {
    hs.iter().map(short).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Debug for CtMsg {
    /// Traces print hashes by their first four bytes and entries as text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtMsg::AddEntry { data } => write!(f, "AddEntry({:?})", String::from_utf8_lossy(data)),
            CtMsg::AddEntryResponse(p) => write!(f, "AddEntryResponse({p:?})"),
            CtMsg::GetSth => write!(f, "GetSth"),
            CtMsg::GetSthResponse(h) => write!(f, "GetSthResponse({h:?})"),
            CtMsg::GetSthConsistency { first, second } => {
                write!(f, "GetSthConsistency({first} -> {second})")
            }
            CtMsg::GetSthConsistencyResponse {
                first,
                second,
                consistency,
            } => write!(
                f,
                "GetSthConsistencyResponse({first} -> {second}: [{}])",
                shorts(consistency)
            ),
            CtMsg::GetProofByHash { hash, tree_size } => {
                write!(f, "GetProofByHash({} in size {tree_size})", short(hash))
            }
            CtMsg::GetProofByHashResponse {
                tree_size,
                leaf_index,
                audit_path,
            } => write!(
                f,
                "GetProofByHashResponse(leaf {leaf_index} in size {tree_size}: [{}])",
                shorts(audit_path)
            ),
            CtMsg::Gossip(h) => write!(f, "Gossip({h:?})"),
        }
    }
}

/// What became of a gossiped head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// Waiting for the monitor's own head, or for a consistency proof.
    Pending,
    /// Consistent with the head it was compared with.
    Consistent,
    /// Forked from it: evidence was recorded.
    Inconsistent,
}

/// Evidence that the log misbehaved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// Two heads signed by the log that no consistency proof reconciles.
    SplitView(SignedTreeHead, SignedTreeHead),
    /// A promise the log's signed head does not keep.
    BrokenPromise(Promise, SignedTreeHead),
}

/// Where a monitor's own entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inclusion {
    NotChecked,
    /// Asked for a proof against the head of this size.
    Requested(u64),
    /// Believed included in the head of this size.
    Verified(u64),
}

/// A monitor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MonitorState {
    pub promise: Option<Promise>,
    /// Heads accepted, oldest first. Invariant (correct monitor): each extends the previous one.
    pub accepted: Vec<SignedTreeHead>,
    /// Gossiped heads, each with the head it is checked against (its own current head when the
    /// check started) and the outcome.
    pub gossip: Vec<(SignedTreeHead, Option<SignedTreeHead>, Check)>,
    pub inclusion: Inclusion,
    pub evidence: Vec<Evidence>,
    /// Following the log: a newer head from the log waiting for its consistency proof against
    /// the head accepted before it. `Some((new, previous))`.
    pub following: Option<(SignedTreeHead, SignedTreeHead)>,
    /// Whether it has polled the log for a newer head (once, after checking its entry).
    pub polled: bool,
}

/// The state of an actor. stateright keeps each actor's state behind an `Arc` of its own, so the
/// size difference between the variants costs one allocation's slack, not a copy per step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::large_enum_variant)]
pub enum CtState {
    Log(LogState),
    Monitor(MonitorState),
}

crate::seeded_bugs! {
    /// The seeded bugs, see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CtBug {
        NoGossip = "no-gossip",
        SkipConsistencyCheck = "skip-consistency-check",
        AcceptAnyInclusion = "accept-any-inclusion",
        CompareRootsOnly = "compare-roots-only",
    }
}

/// An actor of the model: the log or a monitor, with the configuration it runs with.
#[derive(Clone)]
pub enum CtActor {
    Log {
        key: SigningKey,
        /// The behaviours it may choose from at start.
        behaviours: Vec<Behaviour>,
        /// The monitors, in order: a monitor's index selects its view.
        clients: Vec<Id>,
    },
    Monitor {
        log: Id,
        log_key: VerifyingKey,
        peers: Vec<Id>,
        /// The entry it submits.
        entry: Vec<u8>,
        bug: Option<CtBug>,
    },
}

impl Actor for CtActor {
    type Msg = CtMsg;
    type State = CtState;
    type Timer = ();
    type Random = Behaviour;
    type Storage = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> CtState {
        match self {
            CtActor::Log { behaviours, .. } => {
                let mut log = LogState::new();
                if let [only] = behaviours[..] {
                    log.choose(only);
                } else {
                    o.choose_random("behaviour", behaviours.clone());
                }
                CtState::Log(log)
            }
            CtActor::Monitor { log, entry, .. } => {
                o.send(
                    *log,
                    CtMsg::AddEntry {
                        data: entry.clone(),
                    },
                );
                CtState::Monitor(MonitorState {
                    promise: None,
                    accepted: Vec::new(),
                    gossip: Vec::new(),
                    inclusion: Inclusion::NotChecked,
                    evidence: Vec::new(),
                    following: None,
                    polled: false,
                })
            }
        }
    }

    fn on_random(&self, _id: Id, state: &mut Cow<CtState>, random: &Behaviour, _o: &mut Out<Self>) {
        if let CtState::Log(log) = state.to_mut() {
            log.choose(*random);
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<CtState>, src: Id, msg: CtMsg, o: &mut Out<Self>) {
        match self {
            CtActor::Log { key, clients, .. } => {
                let CtState::Log(log) = &**state else { return };
                // Requests wait until the log has chosen how to behave.
                if log.behaviour.is_none() {
                    return;
                }
                let Some(client) = clients.iter().position(|c| *c == src) else {
                    return;
                };
                match msg {
                    CtMsg::AddEntry { data } => {
                        let CtState::Log(log) = state.to_mut() else {
                            return;
                        };
                        let (hash, index) = log.add_entry(client, &data);
                        o.send(
                            src,
                            CtMsg::AddEntryResponse(Promise::sign(key, hash, index)),
                        );
                    }
                    CtMsg::GetSth => {
                        let (size, root) = log.head(client);
                        o.send(
                            src,
                            CtMsg::GetSthResponse(SignedTreeHead::sign(key, size, root)),
                        );
                    }
                    CtMsg::GetSthConsistency { first, second } => {
                        let consistency = log.consistency(client, first, second);
                        o.send(
                            src,
                            CtMsg::GetSthConsistencyResponse {
                                first,
                                second,
                                consistency,
                            },
                        );
                    }
                    CtMsg::GetProofByHash { hash, tree_size } => {
                        let (leaf_index, audit_path) = log.inclusion(client, &hash, tree_size);
                        o.send(
                            src,
                            CtMsg::GetProofByHashResponse {
                                tree_size,
                                leaf_index,
                                audit_path,
                            },
                        );
                    }
                    _ => {}
                }
            }
            CtActor::Monitor {
                log,
                log_key,
                peers,
                bug,
                ..
            } => {
                let CtState::Monitor(m) = &**state else {
                    return;
                };
                match msg {
                    CtMsg::AddEntryResponse(promise)
                        if m.promise.is_none() && promise.verify(log_key) =>
                    {
                        let CtState::Monitor(m) = state.to_mut() else {
                            return;
                        };
                        m.promise = Some(promise);
                        o.send(*log, CtMsg::GetSth);
                    }
                    CtMsg::GetSthResponse(head) if m.accepted.is_empty() => {
                        if !head.verify(log_key) {
                            return;
                        }
                        let CtState::Monitor(m) = state.to_mut() else {
                            return;
                        };
                        // Trust on first use.
                        m.accepted.push(head);
                        if *bug != Some(CtBug::NoGossip) {
                            o.broadcast(peers, &CtMsg::Gossip(head));
                        }
                        let promise = m.promise.expect("asked for the head after the promise");
                        if promise.leaf_index < head.tree_size {
                            m.inclusion = Inclusion::Requested(head.tree_size);
                            o.send(
                                *log,
                                CtMsg::GetProofByHash {
                                    hash: promise.leaf_hash,
                                    tree_size: head.tree_size,
                                },
                            );
                        } else {
                            // The head was issued after the promise but does not hold the entry
                            // (the maximum merge delay is zero here).
                            m.evidence.push(Evidence::BrokenPromise(promise, head));
                        }
                        for i in 0..m.gossip.len() {
                            start_check(m, i, *log, *bug, o);
                        }
                    }
                    CtMsg::GetSthResponse(head) if m.polled && m.following.is_none() => {
                        if !head.verify(log_key) {
                            return;
                        }
                        let CtState::Monitor(m) = state.to_mut() else {
                            return;
                        };
                        let previous = *m.accepted.last().expect("polled after accepting");
                        if head.tree_size == previous.tree_size {
                            if head.root_hash != previous.root_hash {
                                m.evidence.push(Evidence::SplitView(previous, head));
                            }
                        } else if head.tree_size > previous.tree_size {
                            if *bug == Some(CtBug::SkipConsistencyCheck) {
                                m.accepted.push(head);
                            } else {
                                m.following = Some((head, previous));
                                o.send(
                                    *log,
                                    CtMsg::GetSthConsistency {
                                        first: previous.tree_size,
                                        second: head.tree_size,
                                    },
                                );
                            }
                        }
                    }
                    CtMsg::GetProofByHashResponse {
                        tree_size,
                        leaf_index,
                        audit_path,
                    } if m.inclusion == Inclusion::Requested(tree_size) => {
                        let CtState::Monitor(m) = state.to_mut() else {
                            return;
                        };
                        let promise = m.promise.expect("requested after the promise");
                        let head = *m
                            .accepted
                            .iter()
                            .find(|h| h.tree_size == tree_size)
                            .expect("requested against an accepted head");
                        let verified = *bug == Some(CtBug::AcceptAnyInclusion)
                            || (leaf_index == promise.leaf_index
                                && verify_inclusion(
                                    leaf_index,
                                    tree_size,
                                    &promise.leaf_hash,
                                    &audit_path,
                                    &head.root_hash,
                                )
                                .is_ok());
                        if verified {
                            m.inclusion = Inclusion::Verified(tree_size);
                        } else {
                            m.inclusion = Inclusion::NotChecked;
                            m.evidence.push(Evidence::BrokenPromise(promise, head));
                        }
                        // Follow the log: ask once more for its newest head.
                        if !m.polled {
                            m.polled = true;
                            o.send(*log, CtMsg::GetSth);
                        }
                    }
                    CtMsg::Gossip(head) => {
                        if !head.verify(log_key) || m.gossip.iter().any(|(g, _, _)| *g == head) {
                            return;
                        }
                        let CtState::Monitor(m) = state.to_mut() else {
                            return;
                        };
                        m.gossip.push((head, None, Check::Pending));
                        if !m.accepted.is_empty() {
                            start_check(m, m.gossip.len() - 1, *log, *bug, o);
                        }
                    }
                    CtMsg::GetSthConsistencyResponse {
                        first,
                        second,
                        consistency,
                    } => {
                        let CtState::Monitor(m) = state.to_mut() else {
                            return;
                        };
                        if let Some((new, previous)) = m.following {
                            if (previous.tree_size, new.tree_size) == (first, second) {
                                m.following = None;
                                let ok = verify_consistency(
                                    first,
                                    second,
                                    &previous.root_hash,
                                    &new.root_hash,
                                    &consistency,
                                )
                                .is_ok();
                                if !ok {
                                    m.evidence.push(Evidence::SplitView(previous, new));
                                } else if new.tree_size
                                    > m.accepted.last().expect("accepted").tree_size
                                {
                                    m.accepted.push(new);
                                }
                            }
                        }
                        for i in 0..m.gossip.len() {
                            let (g, against, check) = m.gossip[i];
                            let Some(own) = against else { continue };
                            let (small, large) = if g.tree_size < own.tree_size {
                                (g, own)
                            } else {
                                (own, g)
                            };
                            if check != Check::Pending
                                || (small.tree_size, large.tree_size) != (first, second)
                            {
                                continue;
                            }
                            let ok = verify_consistency(
                                first,
                                second,
                                &small.root_hash,
                                &large.root_hash,
                                &consistency,
                            )
                            .is_ok();
                            resolve(m, i, ok);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Starts checking gossiped head `i` against the monitor's current head.
fn start_check(m: &mut MonitorState, i: usize, log: Id, bug: Option<CtBug>, o: &mut Out<CtActor>) {
    let (g, _, check) = m.gossip[i];
    if check != Check::Pending {
        return;
    }
    let own = *m
        .accepted
        .last()
        .expect("checks start once a head is accepted");
    m.gossip[i].1 = Some(own);
    if bug == Some(CtBug::CompareRootsOnly) {
        resolve(m, i, g.root_hash == own.root_hash);
        return;
    }
    if g.tree_size == own.tree_size {
        resolve(m, i, g.root_hash == own.root_hash);
    } else if bug == Some(CtBug::SkipConsistencyCheck) {
        resolve(m, i, true);
    } else {
        let (first, second) = if g.tree_size < own.tree_size {
            (g.tree_size, own.tree_size)
        } else {
            (own.tree_size, g.tree_size)
        };
        o.send(log, CtMsg::GetSthConsistency { first, second });
    }
}

/// Records the outcome of checking gossiped head `i`; a consistent larger head is adopted.
fn resolve(m: &mut MonitorState, i: usize, consistent: bool) {
    let (g, against, _) = m.gossip[i];
    let own = against.expect("resolved after the check started");
    if consistent {
        m.gossip[i].2 = Check::Consistent;
        if g.tree_size > m.accepted.last().expect("accepted").tree_size {
            m.accepted.push(g);
        }
    } else {
        m.gossip[i].2 = Check::Inconsistent;
        m.evidence.push(Evidence::SplitView(own, g));
    }
}

/// The model's configuration.
#[derive(Clone, Debug)]
pub struct CtCfg {
    pub monitors: usize,
    pub behaviours: Vec<Behaviour>,
    pub bug: Option<CtBug>,
}

/// The model's state.
pub type CtModelState = ActorModelState<CtActor>;
/// The model.
pub type CtModel = ActorModel<CtActor, CtCfg>;

/// The log's key seed: the model's log signs with a fixed key.
const LOG_SEED: [u8; 32] = [42; 32];

impl CtCfg {
    pub fn into_model(self) -> CtModel {
        let key = signing_key(LOG_SEED);
        let log = Id::from(0);
        let monitors: Vec<Id> = (1..=self.monitors).map(Id::from).collect();
        let mut actors = vec![CtActor::Log {
            key: key.clone(),
            behaviours: self.behaviours.clone(),
            clients: monitors.clone(),
        }];
        for (i, me) in monitors.iter().enumerate() {
            actors.push(CtActor::Monitor {
                log,
                log_key: key.verifying_key(),
                peers: monitors.iter().copied().filter(|p| p != me).collect(),
                entry: format!("entry of monitor {i}").into_bytes(),
                bug: self.bug,
            });
        }
        ActorModel::new(self, ())
            .actors(actors)
            .init_network(Network::new_unordered_nonduplicating([]))
            .property(
                stateright::Expectation::Always,
                "accepted heads are consistent",
                |_, s| {
                    let log = log_of(s);
                    monitors_of(s).all(|m| {
                        m.accepted
                            .iter()
                            .all(|a| m.accepted.iter().all(|b| consistent(log, a, b)))
                    })
                },
            )
            .property(
                stateright::Expectation::Always,
                "gossiped forks leave evidence",
                |_, s| {
                    let log = log_of(s);
                    monitors_of(s).all(|m| {
                        m.gossip
                            .iter()
                            .all(|(g, against, check)| match (against, check) {
                                (Some(own), Check::Consistent | Check::Inconsistent) => {
                                    consistent(log, g, own) || !m.evidence.is_empty()
                                }
                                _ => true,
                            })
                    })
                },
            )
            .property(
                stateright::Expectation::Always,
                "included entries are in the tree",
                |_, s| {
                    let log = log_of(s);
                    monitors_of(s).all(|m| match (m.inclusion, m.promise) {
                        (Inclusion::Verified(size), Some(p)) => {
                            let head = m.accepted.iter().find(|h| h.tree_size == size);
                            head.is_some_and(|h| {
                                log.views_with(size, &h.root_hash).any(|v| {
                                    log.views[v].leaf_hash(p.leaf_index) == Some(p.leaf_hash)
                                })
                            })
                        }
                        _ => true,
                    })
                },
            )
            .property(
                stateright::Expectation::Always,
                "an honest log is never accused",
                |_, s| {
                    log_of(s).behaviour != Some(Behaviour::Honest)
                        || monitors_of(s).all(|m| m.evidence.is_empty())
                },
            )
            .property(
                stateright::Expectation::Eventually,
                "a misbehaving log is caught",
                |_, s| {
                    log_of(s).behaviour == Some(Behaviour::Honest)
                        || monitors_of(s).any(|m| !m.evidence.is_empty())
                },
            )
            .property(
                stateright::Expectation::Sometimes,
                "a monitor moves to a newer head",
                |_, s| monitors_of(s).any(|m| m.accepted.len() >= 2),
            )
            .property(
                stateright::Expectation::Sometimes,
                "a fork is detected",
                |_, s| {
                    monitors_of(s).any(|m| {
                        m.evidence
                            .iter()
                            .any(|e| matches!(e, Evidence::SplitView(..)))
                    })
                },
            )
            .property(
                stateright::Expectation::Sometimes,
                "a broken promise is detected",
                |_, s| {
                    monitors_of(s).any(|m| {
                        m.evidence
                            .iter()
                            .any(|e| matches!(e, Evidence::BrokenPromise(..)))
                    })
                },
            )
            .property(
                stateright::Expectation::Sometimes,
                "an honest log's heads are all accepted",
                |_, s| {
                    log_of(s).behaviour == Some(Behaviour::Honest)
                        && monitors_of(s).all(|m| {
                            matches!(m.inclusion, Inclusion::Verified(_))
                                && m.evidence.is_empty()
                                && !m.gossip.is_empty()
                                && m.gossip.iter().all(|(_, _, c)| *c == Check::Consistent)
                        })
                },
            )
    }
}

fn log_of(s: &CtModelState) -> &LogState {
    match &*s.actor_states[0] {
        CtState::Log(log) => log,
        CtState::Monitor(_) => unreachable!("actor 0 is the log"),
    }
}

fn monitors_of(s: &CtModelState) -> impl Iterator<Item = &MonitorState> {
    s.actor_states[1..].iter().map(|a| match &**a {
        CtState::Monitor(m) => m,
        CtState::Log(_) => unreachable!("actors 1.. are monitors"),
    })
}

/// Ground truth: both heads are heads of one tree the log keeps.
fn consistent(log: &LogState, a: &SignedTreeHead, b: &SignedTreeHead) -> bool {
    log.views_with(a.tree_size, &a.root_hash)
        .any(|v| log.views_with(b.tree_size, &b.root_hash).any(|w| v == w))
}

/// `checker ct`.
pub struct CtSpec;

impl Spec for CtSpec {
    type Model = CtModel;
    type State = CtModelState;
    type Action = stateright::actor::ActorModelAction<CtMsg, (), Behaviour>;

    const NAME: &'static str = "ct";
    const PAPER: &'static str =
        "Certificate Transparency, RFC 6962 §§2.1, 3.5, 4, 5.3 / RFC 9162 §8.1; CT gossip draft";
    const SUMMARY: &'static str =
        "A CT log that may split its view or break a promise, and monitors that gossip tree heads";
    const PARAMS: &'static [Param] = &[
        Param {
            name: "monitors",
            help: "number of monitors (clients that gossip)",
            kind: ParamKind::Int {
                default: 2,
                min: 2,
                max: 3,
            },
        },
        Param {
            name: "log",
            help: "how the log behaves; `either` lets it choose at start",
            kind: ParamKind::Choice {
                choices: &["either", "honest", "split-view", "broken-promise"],
            },
        },
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: CtBug::NoGossip.name(),
            breaks: &[
                "a misbehaving log is caught",
                "a fork is detected",
                "an honest log's heads are all accepted",
            ],
            help: "monitors never exchange heads: forks go undetected",
            params: &[],
        },
        Bug {
            name: CtBug::SkipConsistencyCheck.name(),
            breaks: &[
                "accepted heads are consistent",
                "gossiped forks leave evidence",
                "a misbehaving log is caught",
                "a fork is detected",
            ],
            help: "a larger gossiped head is adopted without a consistency proof",
            params: &[],
        },
        Bug {
            name: CtBug::AcceptAnyInclusion.name(),
            breaks: &[
                "included entries are in the tree",
                "a misbehaving log is caught",
                "a broken promise is detected",
            ],
            help: "inclusion proofs are not verified",
            params: &[],
        },
        Bug {
            name: CtBug::CompareRootsOnly.name(),
            breaks: &["an honest log is never accused"],
            help: "gossiped heads are compared by root whatever their size",
            params: &[],
        },
    ];

    fn hash_state<H: std::hash::Hasher>(s: &CtModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &CtModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn build(params: &Params, bug: Option<&'static str>) -> CtModel {
        let behaviours = match params.choice("log") {
            "honest" => vec![Behaviour::Honest],
            "split-view" => vec![Behaviour::SplitView],
            "broken-promise" => vec![Behaviour::BrokenPromise],
            _ => vec![
                Behaviour::Honest,
                Behaviour::SplitView,
                Behaviour::BrokenPromise,
            ],
        };
        let bug = bug.map(|b| {
            CtBug::from_name(b).unwrap_or_else(|| panic!("model bug: '{b}' is not in CtSpec::BUGS"))
        });
        CtCfg {
            monitors: params.int("monitors") as usize,
            behaviours,
            bug,
        }
        .into_model()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::{Checker, Model};

    fn model(bug: Option<CtBug>) -> CtModel {
        CtCfg {
            monitors: 2,
            behaviours: vec![
                Behaviour::Honest,
                Behaviour::SplitView,
                Behaviour::BrokenPromise,
            ],
            bug,
        }
        .into_model()
    }

    #[test]
    fn gossip_catches_every_misbehaviour() {
        let checker = model(None).checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 4135);
    }

    fn violated(bug: CtBug) -> Vec<&'static str> {
        let checker = model(Some(bug)).checker().spawn_bfs().join();
        let m = checker.model();
        m.properties()
            .iter()
            .filter(|p| p.expectation != stateright::Expectation::Sometimes)
            .filter(|p| checker.discovery(p.name).is_some())
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn catches_no_gossip() {
        assert_eq!(
            violated(CtBug::NoGossip),
            vec!["a misbehaving log is caught"]
        );
    }

    #[test]
    fn catches_skip_consistency_check() {
        let v = violated(CtBug::SkipConsistencyCheck);
        assert!(v.contains(&"accepted heads are consistent"), "{v:?}");
        assert!(v.contains(&"gossiped forks leave evidence"), "{v:?}");
    }

    #[test]
    fn catches_accept_any_inclusion() {
        // The broken promise then goes unnoticed as well.
        assert_eq!(
            violated(CtBug::AcceptAnyInclusion),
            vec![
                "included entries are in the tree",
                "a misbehaving log is caught"
            ]
        );
    }

    #[test]
    fn catches_compare_roots_only() {
        assert!(violated(CtBug::CompareRootsOnly).contains(&"an honest log is never accused"));
    }
}
