------------------------------ MODULE TwoPhase ------------------------------
(***************************************************************************)
(* Two-phase commit, after Lamport's TwoPhase.tla (TLA+ examples): a       *)
(* transaction manager (TM) and a set RM of resource managers that talk    *)
(* through a set of messages msgs.  Messages are never removed, so a      *)
(* message that was sent once may be received any number of times.        *)
(*                                                                         *)
(* This is the peer model for bench/twophase.sh.  The action names and the *)
(* shape of TPNext follow the original spec, because TLC's "states        *)
(* generated" count depends on how Next is split into disjuncts.  The      *)
(* consistency invariant of the TCommit spec (TCConsistent) is stated here *)
(* directly instead of through INSTANCE TCommit, so the module stands on   *)
(* its own.  bench/twophase.sh writes one .cfg per N with                  *)
(* RM = {r1, ..., rN} (model values).                                      *)
(***************************************************************************)
CONSTANT RM            \* the set of resource managers

VARIABLES
  rmState,             \* rmState[r]: state of resource manager r
  tmState,             \* state of the transaction manager: "init" or "done"
  tmPrepared,          \* the RMs whose "Prepared" message the TM has received
  msgs                 \* every message sent so far

vars == <<rmState, tmState, tmPrepared, msgs>>

Messages ==
  [type : {"Prepared"}, rm : RM] \cup [type : {"Commit", "Abort"}]

TPTypeOK ==
  /\ rmState \in [RM -> {"working", "prepared", "committed", "aborted"}]
  /\ tmState \in {"init", "done"}
  /\ tmPrepared \subseteq RM
  /\ msgs \subseteq Messages

\* No RM has aborted while another one has committed (TCommit's invariant).
TCConsistent ==
  \A r1, r2 \in RM : ~ /\ rmState[r1] = "aborted"
                       /\ rmState[r2] = "committed"

TPInit ==
  /\ rmState = [r \in RM |-> "working"]
  /\ tmState = "init"
  /\ tmPrepared = {}
  /\ msgs = {}

-----------------------------------------------------------------------------
(* Transaction manager actions *)

\* The TM receives a "Prepared" message from r.
TMRcvPrepared(r) ==
  /\ tmState = "init"
  /\ [type |-> "Prepared", rm |-> r] \in msgs
  /\ tmPrepared' = tmPrepared \cup {r}
  /\ UNCHANGED <<rmState, tmState, msgs>>

\* The TM commits once every RM has reported "Prepared".
TMCommit ==
  /\ tmState = "init"
  /\ tmPrepared = RM
  /\ tmState' = "done"
  /\ msgs' = msgs \cup {[type |-> "Commit"]}
  /\ UNCHANGED <<rmState, tmPrepared>>

\* The TM may abort at any time while it is still undecided.
TMAbort ==
  /\ tmState = "init"
  /\ tmState' = "done"
  /\ msgs' = msgs \cup {[type |-> "Abort"]}
  /\ UNCHANGED <<rmState, tmPrepared>>

-----------------------------------------------------------------------------
(* Resource manager actions *)

\* A working RM prepares and tells the TM so.
RMPrepare(r) ==
  /\ rmState[r] = "working"
  /\ rmState' = [rmState EXCEPT ![r] = "prepared"]
  /\ msgs' = msgs \cup {[type |-> "Prepared", rm |-> r]}
  /\ UNCHANGED <<tmState, tmPrepared>>

\* A working RM may decide on its own to abort.
RMChooseToAbort(r) ==
  /\ rmState[r] = "working"
  /\ rmState' = [rmState EXCEPT ![r] = "aborted"]
  /\ UNCHANGED <<tmState, tmPrepared, msgs>>

\* An RM receives the TM's "Commit" message (enabled whenever it was sent).
RMRcvCommitMsg(r) ==
  /\ [type |-> "Commit"] \in msgs
  /\ rmState' = [rmState EXCEPT ![r] = "committed"]
  /\ UNCHANGED <<tmState, tmPrepared, msgs>>

\* An RM receives the TM's "Abort" message (enabled whenever it was sent).
RMRcvAbortMsg(r) ==
  /\ [type |-> "Abort"] \in msgs
  /\ rmState' = [rmState EXCEPT ![r] = "aborted"]
  /\ UNCHANGED <<tmState, tmPrepared, msgs>>

TPNext ==
  \/ TMCommit \/ TMAbort
  \/ \E r \in RM :
       \/ TMRcvPrepared(r) \/ RMPrepare(r) \/ RMChooseToAbort(r)
       \/ RMRcvCommitMsg(r) \/ RMRcvAbortMsg(r)

TPSpec == TPInit /\ [][TPNext]_vars
=============================================================================
