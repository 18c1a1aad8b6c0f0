//! Atomic commitment: the agreement property.
//!
//! Gray and Lamport, "Consensus on Transaction Commit" (2006), §2: the resource managers of a
//! distributed transaction must agree on its outcome. The TLA+ specifications state it as
//! `TCConsistent == \A r1, r2 \in RM : ~ /\ rmState[r1] = "aborted" /\ rmState[r2] = "committed"`
//! (TCommit.tla, TwoPhase.tla). Bernstein, Hadzilacos and Goodman call it AC1: all processes that
//! reach a decision reach the same one.

/// The outcome a participant has reached, if any.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Decision {
    Commit,
    Abort,
}

/// AC1 / `TCConsistent`: no participant has committed while another has aborted.
///
/// `decisions` yields each participant's decision, `None` for one that has not decided yet.
/// Undecided participants never break agreement.
pub fn agreement<I>(decisions: I) -> bool
where
    I: IntoIterator<Item = Option<Decision>>,
{
    let mut seen: Option<Decision> = None;
    for decision in decisions.into_iter().flatten() {
        match seen {
            None => seen = Some(decision),
            Some(first) if first != decision => return false,
            Some(_) => {}
        }
    }
    true
}

/// Whether every participant has reached `decision` (the interesting end states that a
/// `sometimes` property pairs with [`agreement`]).
pub fn all_decided<I>(decisions: I, decision: Decision) -> bool
where
    I: IntoIterator<Item = Option<Decision>>,
{
    decisions.into_iter().all(|d| d == Some(decision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decision() -> impl Strategy<Value = Option<Decision>> {
        prop_oneof![
            Just(None),
            Just(Some(Decision::Commit)),
            Just(Some(Decision::Abort))
        ]
    }

    #[test]
    fn agreement_rejects_commit_beside_abort() {
        use Decision::*;
        assert!(agreement([None, None]));
        assert!(agreement([Some(Commit), None, Some(Commit)]));
        assert!(agreement([Some(Abort), None]));
        assert!(!agreement([Some(Commit), None, Some(Abort)]));
        assert!(!agreement([Some(Abort), Some(Commit)]));
    }

    #[test]
    fn all_decided_needs_every_participant() {
        use Decision::*;
        assert!(all_decided([Some(Commit), Some(Commit)], Commit));
        assert!(!all_decided([Some(Commit), None], Commit));
        assert!(!all_decided([Some(Abort), Some(Abort)], Commit));
    }

    proptest! {
        /// `agreement` is exactly the pairwise statement of TCConsistent.
        #[test]
        fn agreement_matches_pairwise_definition(ds in proptest::collection::vec(decision(), 0..8)) {
            let pairwise = ds.iter().all(|a| ds.iter().all(|b| {
                !(*a == Some(Decision::Abort) && *b == Some(Decision::Commit))
            }));
            prop_assert_eq!(agreement(ds.iter().copied()), pairwise);
        }
    }
}
