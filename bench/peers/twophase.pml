/*
 * Two-phase commit: a Promela rendering of Lamport's TwoPhase.tla
 * (bench/peers/TwoPhase.tla), written so that Spin explores exactly the
 * TLA+ state graph:
 *
 *   - one process whose `do` loop has one option per TLA+ action instance
 *     (TMCommit, TMAbort, and TMRcvPrepared(r), RMPrepare(r),
 *     RMChooseToAbort(r), RMRcvCommitMsg(r), RMRcvAbortMsg(r) for each r);
 *   - each option is a single `d_step { guard -> effect }`, so one Spin
 *     transition is one TLA+ step and no intermediate state is stored;
 *   - the process is back at the loop head after every step, so its program
 *     counter adds nothing to the state count: Spin's "states, stored"
 *     equals TLC's "distinct states found", and "transitions" equals TLC's
 *     "states generated" (both count the initial state and every successor,
 *     including steps that lead back to the same state);
 *   - the loop is labelled end: (TwoPhase has no deadlock anyway).
 *
 * The number of resource managers is the macro N (1 .. MAX_N below):
 *     spin -DN=8 -a twophase.pml
 *     cc -O2 -DSAFETY -DNOREDUCE -o pan pan.c && ./pan -m100000
 * (NOREDUCE: no partial-order reduction, so every state is stored.)
 * Resource manager r is numbered 0 .. N-1 here (r1 .. rN in the TLA+ cfg).
 */

#ifndef N
#define N 3
#endif
/* RM_ACTIONS(r) is written out below for r < MAX_N. */
#define MAX_N 12
#if N < 1 || N > MAX_N
#error "N must be between 1 and MAX_N"
#endif

/* rmState[r] values */
#define WORKING   0
#define PREPARED  1
#define COMMITTED 2
#define ABORTED   3

byte rmState[N];            /* rmState: all WORKING (0) initially          */
bool tmDone;                /* tmState: false = "init", true = "done"      */
unsigned tmPrepared  : N;   /* tmPrepared: bit r set iff r \in tmPrepared  */
unsigned msgPrepared : N;   /* msgs: bit r set iff                         */
                            /*   [type |-> "Prepared", rm |-> r] \in msgs  */
bool msgCommit;             /* msgs: [type |-> "Commit"] \in msgs          */
bool msgAbort;              /* msgs: [type |-> "Abort"] \in msgs           */

#define ALL_RMS  ((1 << N) - 1)
#define HAS(set, r)  (((set) >> (r)) & 1)

/* Scratch variables for the invariant check; `hidden` keeps them out of
 * the state vector. */
hidden byte i;
hidden byte seen;

/* TPTypeOK (range of rmState; the other conjuncts hold by the types above)
 * and TCConsistent (no RM aborted while another one committed).  Run at the
 * end of every action that writes rmState; the other actions leave
 * rmState unchanged, and the initial state (all WORKING) satisfies both. */
inline check_invariants() {
    seen = 0;
    i = 0;
    do
    :: i < N ->
        assert(rmState[i] <= ABORTED);
        seen = seen | (1 << rmState[i]);
        i++
    :: else -> break
    od;
    assert(!(HAS(seen, ABORTED) && HAS(seen, COMMITTED)))
}

/* The five actions indexed by resource manager r, as `do` options. */
#define RM_ACTIONS(r) \
    /* TMRcvPrepared(r) */                                                 \
    :: d_step { !tmDone && HAS(msgPrepared, r) ->                          \
                tmPrepared = tmPrepared | (1 << (r)) }                     \
    /* RMPrepare(r) */                                                     \
    :: d_step { rmState[r] == WORKING ->                                   \
                rmState[r] = PREPARED;                                     \
                msgPrepared = msgPrepared | (1 << (r));                    \
                check_invariants() }                                       \
    /* RMChooseToAbort(r) */                                               \
    :: d_step { rmState[r] == WORKING ->                                   \
                rmState[r] = ABORTED;                                      \
                check_invariants() }                                       \
    /* RMRcvCommitMsg(r): enabled whenever "Commit" was sent */            \
    :: d_step { msgCommit ->                                               \
                rmState[r] = COMMITTED;                                    \
                check_invariants() }                                       \
    /* RMRcvAbortMsg(r): enabled whenever "Abort" was sent */              \
    :: d_step { msgAbort ->                                                \
                rmState[r] = ABORTED;                                      \
                check_invariants() }

/* TPNext: TMCommit \/ TMAbort \/ \E r \in RM : <the five actions of r>. */
active proctype TwoPhase()
{
end:
    do
    /* TMCommit */
    :: d_step { !tmDone && tmPrepared == ALL_RMS ->
                tmDone = true;
                msgCommit = true }
    /* TMAbort */
    :: d_step { !tmDone ->
                tmDone = true;
                msgAbort = true }
    RM_ACTIONS(0)
#if N > 1
    RM_ACTIONS(1)
#endif
#if N > 2
    RM_ACTIONS(2)
#endif
#if N > 3
    RM_ACTIONS(3)
#endif
#if N > 4
    RM_ACTIONS(4)
#endif
#if N > 5
    RM_ACTIONS(5)
#endif
#if N > 6
    RM_ACTIONS(6)
#endif
#if N > 7
    RM_ACTIONS(7)
#endif
#if N > 8
    RM_ACTIONS(8)
#endif
#if N > 9
    RM_ACTIONS(9)
#endif
#if N > 10
    RM_ACTIONS(10)
#endif
#if N > 11
    RM_ACTIONS(11)
#endif
    od
}
