//! Transaction commit, the specification that two-phase commit implements.
//!
//! Jim Gray and Leslie Lamport, "Consensus on Transaction Commit" (ACM TODS 31(1), 2006), §2 "Transaction
//! Commit", and the TLA+ specification `TCommit.tla`. There are no messages and no transaction manager:
//! each resource manager (RM) is `working`, `prepared`, `committed` or `aborted`, and may decide to commit
//! only when every RM is prepared (or committed), and to abort only when none has committed. With 3 RMs
//! TLC reports 34 distinct and 94 generated states; this port reproduces both.
//!
//! # Properties
//! - always `TCConsistent`: no RM has committed while another has aborted
//!   ([`properties::commitment::agreement`]).
//! - sometimes: every RM committed; every RM aborted.
//!
//! `TCTypeOK` is not listed: `rmState` is a Rust enum here, so the type checker proves it.
//!
//! # Seeded bugs
//! - `commit-without-all-prepared`: `canCommit` only asks that the deciding RM itself be prepared, so
//!   one RM commits while another, still working, aborts (`TCConsistent`).
//! - `abort-after-commit`: `notCommitted` is dropped from the abort decision, so a prepared RM aborts
//!   after another has committed (`TCConsistent`).

use properties::commitment::{agreement, all_decided, Decision};
use stateright::{Model, Property};

use crate::catalog::{Bug, Param, Params, Spec};
use crate::twophase::{Rm, RmState, RMS_PARAM};

/// A state of TCommit: `rmState`.
pub type TCommitState = Vec<RmState>;

/// The actions of `TCNext`. `Decide(r)` has two disjuncts; each is its own action here, as TLC splits
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TCommitAction {
    /// `Prepare(r)`: a working RM prepares.
    Prepare(Rm),
    /// `Decide(r)`, first disjunct: a prepared RM commits when `canCommit`.
    DecideCommit(Rm),
    /// `Decide(r)`, second disjunct: a working or prepared RM aborts when `notCommitted`.
    DecideAbort(Rm),
}

crate::seeded_bugs! {
    /// The seeded bugs, see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum TCommitBug {
        CommitWithoutAllPrepared = "commit-without-all-prepared",
        AbortAfterCommit = "abort-after-commit",
    }
}

/// TCommit with `rms` resource managers.
#[derive(Clone, Debug)]
pub struct TCommit {
    pub rms: usize,
    pub bug: Option<TCommitBug>,
}

impl TCommit {
    pub fn new(rms: usize) -> Self {
        TCommit { rms, bug: None }
    }

    /// `canCommit == \A r \in RM : rmState[r] \in {"prepared", "committed"}`.
    fn can_commit(&self, s: &TCommitState, deciding: Rm) -> bool {
        if self.bug == Some(TCommitBug::CommitWithoutAllPrepared) {
            return s[deciding] == RmState::Prepared;
        }
        s.iter()
            .all(|r| matches!(r, RmState::Prepared | RmState::Committed))
    }

    /// `notCommitted == \A r \in RM : rmState[r] # "committed"`.
    fn not_committed(&self, s: &TCommitState) -> bool {
        self.bug == Some(TCommitBug::AbortAfterCommit) || s.iter().all(|r| *r != RmState::Committed)
    }
}

fn decisions(s: &TCommitState) -> impl Iterator<Item = Option<Decision>> + '_ {
    s.iter().map(|r| r.decision())
}

impl Model for TCommit {
    type State = TCommitState;
    type Action = TCommitAction;

    fn init_states(&self) -> Vec<Self::State> {
        // TCInit == rmState = [r \in RM |-> "working"]
        vec![vec![RmState::Working; self.rms]]
    }

    fn actions(&self, s: &Self::State, actions: &mut Vec<Self::Action>) {
        for r in 0..self.rms {
            // Prepare(r) == rmState[r] = "working" /\ ...
            if s[r] == RmState::Working {
                actions.push(TCommitAction::Prepare(r));
            }
            // Decide(r) == \/ rmState[r] = "prepared" /\ canCommit /\ ...
            if s[r] == RmState::Prepared && self.can_commit(s, r) {
                actions.push(TCommitAction::DecideCommit(r));
            }
            //              \/ rmState[r] \in {"working", "prepared"} /\ notCommitted /\ ...
            if matches!(s[r], RmState::Working | RmState::Prepared) && self.not_committed(s) {
                actions.push(TCommitAction::DecideAbort(r));
            }
        }
    }

    fn next_state(&self, s: &Self::State, action: Self::Action) -> Option<Self::State> {
        let mut n = s.clone();
        match action {
            TCommitAction::Prepare(r) => n[r] = RmState::Prepared,
            TCommitAction::DecideCommit(r) => n[r] = RmState::Committed,
            TCommitAction::DecideAbort(r) => n[r] = RmState::Aborted,
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("TCConsistent", |_: &TCommit, s: &TCommitState| {
                agreement(decisions(s))
            }),
            Property::sometimes("all committed", |_: &TCommit, s: &TCommitState| {
                all_decided(decisions(s), Decision::Commit)
            }),
            Property::sometimes("all aborted", |_: &TCommit, s: &TCommitState| {
                all_decided(decisions(s), Decision::Abort)
            }),
        ]
    }
}

/// `checker tcommit`.
pub struct TCommitSpec;

impl Spec for TCommitSpec {
    type Model = TCommit;
    type State = TCommitState;
    type Action = TCommitAction;

    const NAME: &'static str = "tcommit";
    const PAPER: &'static str =
        "Gray & Lamport, Consensus on Transaction Commit §2; Lamport's TCommit.tla";
    const SUMMARY: &'static str =
        "Transaction commit: N resource managers agree to commit or abort (no messages)";
    const PARAMS: &'static [Param] = &[RMS_PARAM];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: TCommitBug::CommitWithoutAllPrepared.name(),
            breaks: &["TCConsistent"],
            help: "canCommit only checks the deciding RM",
            params: &[],
        },
        Bug {
            name: TCommitBug::AbortAfterCommit.name(),
            breaks: &["TCConsistent"],
            help: "an RM may abort after another committed",
            params: &[],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> TCommit {
        let mut model = TCommit::new(params.int("rms") as usize);
        model.bug = bug.map(|b| {
            TCommitBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not in TCommitSpec::BUGS"))
        });
        model
    }
}

#[cfg(test)]
mod tests {
    use super::TCommitAction::*;
    use super::*;
    use stateright::Checker;

    #[test]
    fn matches_tlc_counts_with_three_rms() {
        // TLC on TCommit.tla with RM = {r1, r2, r3}: 94 states generated, 34 distinct.
        let checker = TCommit::new(3).checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 34);
        assert_eq!(checker.state_count(), 94);
    }

    #[test]
    fn commits_only_after_all_prepare() {
        let checker = TCommit::new(3).checker().spawn_bfs().join();
        checker.assert_discovery(
            "all committed",
            vec![
                Prepare(0),
                Prepare(1),
                Prepare(2),
                DecideCommit(0),
                DecideCommit(1),
                DecideCommit(2),
            ],
        );
    }

    #[test]
    fn catches_commit_without_all_prepared() {
        let mut model = TCommit::new(3);
        model.bug = Some(TCommitBug::CommitWithoutAllPrepared);
        let checker = model.checker().spawn_bfs().join();
        checker.assert_discovery(
            "TCConsistent",
            vec![DecideAbort(0), Prepare(1), DecideCommit(1)],
        );
    }

    #[test]
    fn catches_abort_after_commit() {
        let mut model = TCommit::new(3);
        model.bug = Some(TCommitBug::AbortAfterCommit);
        let checker = model.checker().spawn_bfs().join();
        checker.assert_discovery(
            "TCConsistent",
            vec![
                Prepare(0),
                Prepare(1),
                Prepare(2),
                DecideCommit(0),
                DecideAbort(1),
            ],
        );
    }
}
