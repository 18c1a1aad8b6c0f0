//! Two-phase commit, as Lamport's TwoPhase specification states it.
//!
//! Jim Gray and Leslie Lamport, "Consensus on Transaction Commit" (ACM TODS 31(1), 2006), §4 "Two-Phase
//! Commit", and the TLA+ specification `TwoPhase.tla` that accompanies it. This file ports that
//! specification action for action, so that the checker's state counts can be compared with TLC's and
//! Spin's: with 3 resource managers there are 288 distinct states and 1,146 generated states, exactly as
//! TLC reports.
//!
//! # The protocol
//! A transaction manager (TM) coordinates N resource managers (RMs). Each RM may decide on its own to
//! abort while it is still `working`; or it *prepares*, sending a `Prepared` message to the TM. Once the
//! TM has received `Prepared` from every RM it may commit, broadcasting `Commit`; it may abort at any time
//! before that, broadcasting `Abort`. An RM that has prepared can no longer abort on its own: it waits for
//! the TM's decision. Messages are never lost and never removed from `msgs`, so a message set models
//! broadcast and retransmission alike.
//!
//! # State (the TLA+ variables)
//! `rmState`, `tmState`, `tmPrepared` and `msgs`. The state is packed into words (two bits per RM, one
//! bit per RM in each set) so that a state is a small `Copy` value: the benchmark explores tens of
//! millions of them.
//!
//! # Properties
//! - always `TPTypeOK`: the type invariant. The packed encoding only means something for RMs `0..N`;
//!   `TPTypeOK` checks that nothing names an RM outside `RM` (for instance a `Prepared` message for a
//!   resource manager that does not exist).
//! - always `TCConsistent`: no RM has committed while another has aborted (the paper's consistency
//!   condition, §2; [`properties::commitment::agreement`]).
//! - sometimes: every RM committed; every RM aborted; the TM holds `Prepared` from every RM
//!   (`tmPrepared = RM`, the largest value the type allows).
//!
//! # Seeded bugs
//! - `tm-commits-early`: `TMCommit` no longer waits for `tmPrepared = RM`; an RM still `working` can
//!   then abort on its own while another commits (`TCConsistent`).
//! - `rm-aborts-after-prepare`: `RMChooseToAbort` is enabled for a `prepared` RM, breaking the promise
//!   a `Prepared` message makes (`TCConsistent`).
//! - `prepared-wrong-rm`: `RMPrepare(r)` sends `Prepared` naming the next RM (an off-by-one), so the
//!   last RM's message names an RM outside `RM` (`TPTypeOK`) and the TM can never commit ("all
//!   committed" is not reachable).

use std::fmt;

use properties::commitment::{agreement, all_decided, Decision};
use stateright::{Model, Property};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

/// A resource manager, `0..N` (the TLA+ constant `RM`).
pub type Rm = usize;

/// Most resource managers the packed state can hold (two bits each in a `u32`).
pub const MAX_RMS: usize = 16;

/// `rmState[r]`: `{"working", "prepared", "committed", "aborted"}`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum RmState {
    Working = 0,
    Prepared = 1,
    Committed = 2,
    Aborted = 3,
}

impl RmState {
    fn from_bits(bits: u32) -> Self {
        match bits & 0b11 {
            0 => RmState::Working,
            1 => RmState::Prepared,
            2 => RmState::Committed,
            _ => RmState::Aborted,
        }
    }

    /// The decision this state records, for the commitment properties.
    pub fn decision(self) -> Option<Decision> {
        match self {
            RmState::Committed => Some(Decision::Commit),
            RmState::Aborted => Some(Decision::Abort),
            RmState::Working | RmState::Prepared => None,
        }
    }
}

/// `tmState`: `{"init", "committed", "aborted"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TmState {
    Init,
    Committed,
    Aborted,
}

/// A state of TwoPhase: the four TLA+ variables.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TwoPhaseState {
    /// How many RMs there are (`Cardinality(RM)`); constant, kept so a state prints itself.
    rms: u8,
    /// `rmState`: RM `r` at bits `2r..2r+2` (see [`RmState`]).
    /// Invariant (`TPTypeOK`): no bits at or above `2N`.
    rm_state: u32,
    tm_state: TmState,
    /// `tmPrepared`, a set of RMs: bit `r`. Invariant (`TPTypeOK`): a subset of `RM`.
    tm_prepared: u32,
    /// The `[type |-> "Prepared", rm |-> r]` messages in `msgs`: bit `r`.
    /// Invariant (`TPTypeOK`): a subset of `RM`.
    msgs_prepared: u32,
    /// `[type |-> "Commit"] \in msgs`.
    msg_commit: bool,
    /// `[type |-> "Abort"] \in msgs`.
    msg_abort: bool,
}

impl TwoPhaseState {
    /// `TPInit` for `rms` resource managers.
    pub fn init(rms: usize) -> Self {
        TwoPhaseState {
            rms: rms as u8,
            rm_state: 0, // every RM "working"
            tm_state: TmState::Init,
            tm_prepared: 0,
            msgs_prepared: 0,
            msg_commit: false,
            msg_abort: false,
        }
    }

    pub fn rm(&self, r: Rm) -> RmState {
        RmState::from_bits(self.rm_state >> (2 * r))
    }

    fn set_rm(&mut self, r: Rm, s: RmState) {
        self.rm_state = (self.rm_state & !(0b11 << (2 * r))) | ((s as u32) << (2 * r));
    }

    pub fn tm_state(&self) -> TmState {
        self.tm_state
    }

    pub fn tm_prepared(&self, r: Rm) -> bool {
        self.tm_prepared & (1 << r) != 0
    }

    pub fn prepared_msg(&self, r: Rm) -> bool {
        self.msgs_prepared & (1 << r) != 0
    }
}

impl fmt::Debug for TwoPhaseState {
    /// One line in the spec's terms, RMs numbered from 0 (also under `{:#?}`: a state reads best
    /// whole), e.g. `rmState = [prepared, working, working], tmState = init, tmPrepared = {0},
    /// msgs = {Prepared(0)}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rms = usize::from(self.rms);
        let states: Vec<&str> = (0..rms)
            .map(|r| match self.rm(r) {
                RmState::Working => "working",
                RmState::Prepared => "prepared",
                RmState::Committed => "committed",
                RmState::Aborted => "aborted",
            })
            .collect();
        let set = |mask: u32| -> Vec<String> {
            (0..32)
                .filter(|r| mask & (1 << r) != 0)
                .map(|r| r.to_string())
                .collect()
        };
        let mut msgs: Vec<String> = set(self.msgs_prepared)
            .into_iter()
            .map(|r| format!("Prepared({r})"))
            .collect();
        if self.msg_commit {
            msgs.push("Commit".into());
        }
        if self.msg_abort {
            msgs.push("Abort".into());
        }
        let tm = match self.tm_state {
            TmState::Init => "init",
            TmState::Committed => "committed",
            TmState::Aborted => "aborted",
        };
        write!(
            f,
            "rmState = [{}], tmState = {tm}, tmPrepared = {{{}}}, msgs = {{{}}}",
            states.join(", "),
            set(self.tm_prepared).join(", "),
            msgs.join(", ")
        )
    }
}

/// The TLA+ actions of `TPNext`, one per action instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::enum_variant_names)]
pub enum TwoPhaseAction {
    /// The TM receives a `Prepared` message from RM `r`.
    TMRcvPrepared(Rm),
    /// The TM commits: it has `Prepared` from every RM.
    TMCommit,
    /// The TM spontaneously aborts.
    TMAbort,
    /// RM `r` prepares and tells the TM.
    RMPrepare(Rm),
    /// RM `r`, still working, spontaneously aborts.
    RMChooseToAbort(Rm),
    /// RM `r` receives the TM's `Commit`.
    RMRcvCommitMsg(Rm),
    /// RM `r` receives the TM's `Abort`.
    RMRcvAbortMsg(Rm),
}

crate::seeded_bugs! {
    /// The seeded bugs, see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum TwoPhaseBug {
        TmCommitsEarly = "tm-commits-early",
        RmAbortsAfterPrepare = "rm-aborts-after-prepare",
        PreparedWrongRm = "prepared-wrong-rm",
    }
}

/// TwoPhase with `rms` resource managers.
#[derive(Clone, Debug)]
pub struct TwoPhase {
    pub rms: usize,
    pub bug: Option<TwoPhaseBug>,
}

impl TwoPhase {
    pub fn new(rms: usize) -> Self {
        assert!(
            (1..=MAX_RMS).contains(&rms),
            "TwoPhase supports 1..={MAX_RMS} RMs"
        );
        TwoPhase { rms, bug: None }
    }

    pub fn with_bug(self, bug: TwoPhaseBug) -> Self {
        TwoPhase {
            bug: Some(bug),
            ..self
        }
    }

    /// The set `RM` as a bit mask.
    fn all_rms(&self) -> u32 {
        (1u32 << self.rms) - 1
    }

    fn decisions(&self, s: &TwoPhaseState) -> impl Iterator<Item = Option<Decision>> + '_ {
        let s = *s;
        (0..self.rms).map(move |r| s.rm(r).decision())
    }
}

impl Model for TwoPhase {
    type State = TwoPhaseState;
    type Action = TwoPhaseAction;

    fn init_states(&self) -> Vec<Self::State> {
        vec![TwoPhaseState::init(self.rms)]
    }

    /// Lists exactly the enabled action instances, so that every listed action yields a successor
    /// (possibly the same state, which TLC also counts as generated).
    fn actions(&self, s: &Self::State, actions: &mut Vec<Self::Action>) {
        use TwoPhaseAction::*;
        let bug = self.bug;
        if s.tm_state == TmState::Init {
            // TMCommit == tmState = "init" /\ tmPrepared = RM /\ ...
            if s.tm_prepared == self.all_rms() || bug == Some(TwoPhaseBug::TmCommitsEarly) {
                actions.push(TMCommit);
            }
            // TMAbort == tmState = "init" /\ ...
            actions.push(TMAbort);
        }
        for r in 0..self.rms {
            // TMRcvPrepared(r) == tmState = "init" /\ [type |-> "Prepared", rm |-> r] \in msgs
            if s.tm_state == TmState::Init && s.prepared_msg(r) {
                actions.push(TMRcvPrepared(r));
            }
            match s.rm(r) {
                // RMPrepare(r) and RMChooseToAbort(r) == rmState[r] = "working" /\ ...
                RmState::Working => {
                    actions.push(RMPrepare(r));
                    actions.push(RMChooseToAbort(r));
                }
                RmState::Prepared if bug == Some(TwoPhaseBug::RmAbortsAfterPrepare) => {
                    actions.push(RMChooseToAbort(r));
                }
                _ => {}
            }
            // RMRcvCommitMsg(r) == [type |-> "Commit"] \in msgs /\ ...
            if s.msg_commit {
                actions.push(RMRcvCommitMsg(r));
            }
            // RMRcvAbortMsg(r) == [type |-> "Abort"] \in msgs /\ ...
            if s.msg_abort {
                actions.push(RMRcvAbortMsg(r));
            }
        }
    }

    fn next_state(&self, s: &Self::State, action: Self::Action) -> Option<Self::State> {
        use TwoPhaseAction::*;
        let mut n = *s;
        match action {
            TMRcvPrepared(r) => n.tm_prepared |= 1 << r,
            TMCommit => {
                n.tm_state = TmState::Committed;
                n.msg_commit = true;
            }
            TMAbort => {
                n.tm_state = TmState::Aborted;
                n.msg_abort = true;
            }
            RMPrepare(r) => {
                n.set_rm(r, RmState::Prepared);
                let named = if self.bug == Some(TwoPhaseBug::PreparedWrongRm) {
                    r + 1
                } else {
                    r
                };
                n.msgs_prepared |= 1 << named;
            }
            RMChooseToAbort(r) | RMRcvAbortMsg(r) => n.set_rm(r, RmState::Aborted),
            RMRcvCommitMsg(r) => n.set_rm(r, RmState::Committed),
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("TPTypeOK", |m: &TwoPhase, s: &TwoPhaseState| {
                let outside = !m.all_rms();
                u64::from(s.rm_state) >> (2 * m.rms) == 0
                    && s.tm_prepared & outside == 0
                    && s.msgs_prepared & outside == 0
            }),
            Property::always("TCConsistent", |m: &TwoPhase, s: &TwoPhaseState| {
                agreement(m.decisions(s))
            }),
            Property::sometimes("all committed", |m: &TwoPhase, s: &TwoPhaseState| {
                all_decided(m.decisions(s), Decision::Commit)
            }),
            Property::sometimes("all aborted", |m: &TwoPhase, s: &TwoPhaseState| {
                all_decided(m.decisions(s), Decision::Abort)
            }),
            Property::sometimes("tmPrepared = RM", |m: &TwoPhase, s: &TwoPhaseState| {
                s.tm_prepared == m.all_rms()
            }),
        ]
    }
}

/// The canonical representative of a state under permutations of `RM` (all RMs are alike): the
/// per-RM triples (`rmState[r]`, `r \in tmPrepared`, `Prepared(r) \in msgs`) sorted. Sorting whole
/// triples makes it canonical: two states that differ by a permutation sort to the same triples.
pub fn representative(s: &TwoPhaseState) -> TwoPhaseState {
    let rms = usize::from(s.rms);
    let mut triples = [0u8; MAX_RMS];
    for (r, t) in triples[..rms].iter_mut().enumerate() {
        *t = ((s.rm_state >> (2 * r)) as u8 & 0b11) << 2
            | ((s.tm_prepared >> r) as u8 & 1) << 1
            | ((s.msgs_prepared >> r) as u8 & 1);
    }
    triples[..rms].sort_unstable();
    let mut n = *s;
    // Bits outside `RM` (only a seeded bug sets them) are kept as they are.
    n.rm_state &= !(((1u64 << (2 * rms)) - 1) as u32);
    n.tm_prepared &= !((1u32 << rms) - 1);
    n.msgs_prepared &= !((1u32 << rms) - 1);
    for (r, t) in triples[..rms].iter().enumerate() {
        n.rm_state |= u32::from(t >> 2) << (2 * r);
        n.tm_prepared |= u32::from((t >> 1) & 1) << r;
        n.msgs_prepared |= u32::from(t & 1) << r;
    }
    n
}

/// `--rms N`: the number of resource managers, the TLA+ constant `RM` (shared with `tcommit`).
pub const RMS_PARAM: Param = Param {
    name: "rms",
    help: "number of resource managers (the TLA+ constant RM)",
    kind: ParamKind::Int {
        default: 3,
        min: 1,
        max: MAX_RMS as u64,
    },
};

/// `checker twophase`.
pub struct TwoPhaseSpec;

impl Spec for TwoPhaseSpec {
    type Model = TwoPhase;
    type State = TwoPhaseState;
    type Action = TwoPhaseAction;

    const NAME: &'static str = "twophase";
    const PAPER: &'static str =
        "Gray & Lamport, Consensus on Transaction Commit §4; Lamport's TwoPhase.tla";
    const SUMMARY: &'static str =
        "Two-phase commit: a transaction manager and N resource managers over a message set";
    const PARAMS: &'static [Param] = &[RMS_PARAM];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: TwoPhaseBug::TmCommitsEarly.name(),
            breaks: &["TCConsistent"],
            help: "TMCommit does not wait for Prepared from every RM",
            params: &[],
        },
        Bug {
            name: TwoPhaseBug::RmAbortsAfterPrepare.name(),
            breaks: &["TCConsistent"],
            help: "a prepared RM may still abort on its own",
            params: &[],
        },
        Bug {
            name: TwoPhaseBug::PreparedWrongRm.name(),
            breaks: &["TPTypeOK", "all committed", "tmPrepared = RM"],
            help: "RMPrepare(r) names RM r+1 in its Prepared message",
            params: &[],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> TwoPhase {
        let model = TwoPhase::new(params.int("rms") as usize);
        match bug {
            None => model,
            Some(b) => model.with_bug(
                TwoPhaseBug::from_name(b)
                    .unwrap_or_else(|| panic!("model bug: '{b}' is not in TwoPhaseSpec::BUGS")),
            ),
        }
    }

    fn representative() -> Option<crate::catalog::Representative<TwoPhaseState>> {
        Some(representative)
    }
}

#[cfg(test)]
mod tests {
    use super::TwoPhaseAction::*;
    use super::*;
    use stateright::Checker;

    #[test]
    fn matches_tlc_counts_with_three_rms() {
        // TLC on TwoPhase.tla with RM = {r1, r2, r3}: 1146 states generated, 288 distinct.
        let checker = TwoPhase::new(3).checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 288);
        assert_eq!(checker.state_count(), 1146);

        let checker = TwoPhase::new(3).checker().spawn_dfs().join();
        assert_eq!(checker.unique_state_count(), 288);
        assert_eq!(checker.state_count(), 1146);
    }

    #[test]
    fn counts_grow_as_tlc_reports() {
        // Distinct states for N = 1..=5 as TLC reports them for TwoPhase.tla.
        for (rms, distinct) in [(1, 12), (2, 56), (3, 288), (4, 1_568), (5, 8_832)] {
            let checker = TwoPhase::new(rms).checker().spawn_bfs().join();
            checker.assert_properties();
            assert_eq!(checker.unique_state_count(), distinct, "rms = {rms}");
        }
    }

    /// Every RM prepares, the TM collects the votes and commits, and RM 0 learns it.
    fn prepare_all_and_commit() -> Vec<TwoPhaseAction> {
        vec![
            RMPrepare(0),
            RMPrepare(1),
            RMPrepare(2),
            TMRcvPrepared(0),
            TMRcvPrepared(1),
            TMRcvPrepared(2),
            TMCommit,
            RMRcvCommitMsg(0),
        ]
    }

    #[test]
    fn can_commit_after_every_rm_prepares() {
        let checker = TwoPhase::new(3).checker().spawn_bfs().join();
        checker.assert_discovery(
            "all committed",
            [
                prepare_all_and_commit(),
                vec![RMRcvCommitMsg(1), RMRcvCommitMsg(2)],
            ]
            .concat(),
        );
    }

    #[test]
    fn symmetry_reduction_is_canonical_and_smaller() {
        let full = TwoPhase::new(3).checker().spawn_dfs().join();
        let reduced = TwoPhase::new(3)
            .checker()
            .symmetry_fn(representative)
            .spawn_dfs()
            .join();
        reduced.assert_properties();
        assert!(reduced.unique_state_count() < full.unique_state_count());
        // The same count with two threads: the representative is canonical.
        let reduced2 = TwoPhase::new(3)
            .checker()
            .threads(2)
            .symmetry_fn(representative)
            .spawn_dfs()
            .join();
        assert_eq!(reduced.unique_state_count(), reduced2.unique_state_count());
        assert_eq!(reduced.unique_state_count(), 80);
    }

    #[test]
    fn representative_is_invariant_under_permutation() {
        let mut a = TwoPhaseState::init(3);
        a.set_rm(0, RmState::Prepared);
        a.msgs_prepared = 0b001;
        a.tm_prepared = 0b001;
        a.set_rm(2, RmState::Aborted);
        let mut b = TwoPhaseState::init(3);
        b.set_rm(1, RmState::Prepared);
        b.msgs_prepared = 0b010;
        b.tm_prepared = 0b010;
        b.set_rm(0, RmState::Aborted);
        assert_ne!(a, b);
        assert_eq!(representative(&a), representative(&b));
    }

    fn check_bug(bug: TwoPhaseBug) -> impl Checker<TwoPhase> {
        TwoPhase::new(3).with_bug(bug).checker().spawn_bfs().join()
    }

    #[test]
    fn catches_tm_commits_early() {
        let checker = check_bug(TwoPhaseBug::TmCommitsEarly);
        let path = checker.discovery("TCConsistent").expect("counterexample");
        checker.assert_discovery("TCConsistent", path.into_actions());
        assert!(checker.discovery("TPTypeOK").is_none());
    }

    #[test]
    fn catches_rm_aborts_after_prepare() {
        let checker = check_bug(TwoPhaseBug::RmAbortsAfterPrepare);
        // The shortest counterexample: all prepare, the TM commits, one RM learns it, another
        // (prepared) aborts on its own.
        checker.assert_discovery(
            "TCConsistent",
            [prepare_all_and_commit(), vec![RMChooseToAbort(1)]].concat(),
        );
    }

    #[test]
    fn catches_prepared_wrong_rm() {
        let checker = check_bug(TwoPhaseBug::PreparedWrongRm);
        checker.assert_discovery("TPTypeOK", vec![RMPrepare(2)]);
        assert!(checker.discovery("all committed").is_none());
        assert!(checker.discovery("TCConsistent").is_none());
    }
}
