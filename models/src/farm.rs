//! FaRM's distributed transactions: optimistic concurrency control over primary-backup replicated
//! objects, and what happens to them when a primary fails.
//!
//! Aleksandar Dragojević, Dushyanth Narayanan, Edmund B. Nightingale, Matthew Renzelmann, Alex
//! Shamis, Anirudh Badam, Miguel Castro, "No compromises: distributed transactions with consistency,
//! availability, and performance", SOSP 2015. Section and figure numbers below are that paper's.
//!
//! # The protocol (§4, Figure 4)
//! Objects live in regions; each region has a primary and backups on other machines (§3). A
//! transaction's coordinator **executes** it with one-sided RDMA reads at the primaries, recording
//! each object's version, and buffers its writes. Then it commits:
//!
//! 1. **LOCK**: a LOCK record to the primary of every written object, which locks the object if its
//!    version is still the one the transaction read and nobody holds its lock, and replies whether it
//!    did. A failed lock aborts the transaction: ABORT records release the locks taken.
//! 2. **VALIDATE**: the coordinator re-reads the versions of the objects it read but did not write;
//!    a changed version, or a lock held, aborts the transaction.
//! 3. **COMMIT-BACKUP**: a record with the new values to every backup of a written object, each
//!    acked by the backup's NIC.
//! 4. **COMMIT-PRIMARY**: only once *every* COMMIT-BACKUP is acked, a record to each primary, which
//!    later processes it: installs the value with the version incremented and unlocks. The
//!    coordinator reports the commit to the application once one COMMIT-PRIMARY is acked.
//! 5. **TRUNCATE**: lazily, the coordinator truncates the records; a backup applies the update to
//!    its copy when its record is truncated.
//!
//! The serializability argument at the end of §4: a committed read-write transaction is serialized
//! where it holds all its write locks, since locking (written objects) and validation (read ones)
//! prove that every version it saw is still current there; that point lies between its start and
//! the report of its commit, so the order is strict. And waiting for all COMMIT-BACKUP acks before
//! COMMIT-PRIMARY is what makes a reported write survive a primary failure.
//!
//! # Failure recovery (§5)
//! When a primary fails, reconfiguration (§5.2) promotes a backup of its region. Transaction state
//! recovery (§5.3) then decides the transactions whose commit spans the change from the records
//! the surviving replicas hold: a COMMIT-BACKUP record at the promoted backup votes commit-backup,
//! and the transaction commits (its record is applied); a region where no replica holds a record
//! votes unknown, and the transaction aborts. The coordinator learns the decision and reports it.
//!
//! # What is modelled
//! Objects `x` and `y`, each alone in its region, each with a primary and one backup on machines of
//! their own. Up to three coordinators, each running one transaction:
//!
//! - T1 reads `x` and `y` and writes `y`; T2 reads `x` and `y` and writes `x`. Each reads the object
//!   the other writes, so only VALIDATE stands between them and write skew.
//! - T3 reads and writes `y`, so that T1 and T3 can fail to LOCK.
//!
//! Execution reads and VALIDATE are one-sided RDMA reads: one step each, at the primary. LOCK,
//! COMMIT-BACKUP, COMMIT-PRIMARY, ABORT, TRUNCATE and their replies and acks are messages that arrive
//! in any order. A primary acks a COMMIT-PRIMARY record when it is in its log (the NIC's hardware
//! ack) and processes it in a later step, so a commit can be reported before the write is installed.
//! Up to `failures` primaries fail, each at any moment; a failure, the promotion of its backup and
//! the recovery of the transactions in commit on its region are one step (recovering regions are
//! blocked meanwhile, §5.3). A promoted backup is the region's only replica from then on: the model
//! adds no new backup.
//!
//! Messages in flight to or from the failed primary or the promoted backup are dropped at the
//! failure: each belongs to a transaction writing that object, which recovery decides then unless
//! it was already reported (a TRUNCATE, an ABORT).
//!
//! Left out: coordinator failures, failures of backups alone, read-only transactions, allocation,
//! leases and the configuration manager. Every transaction writes exactly one object, so §5.3's vote
//! is the vote of that object's region. §5.3 also counts a transaction as recovering when the
//! primary of an object it only read has changed; here it simply validates at the promoted backup,
//! which after recovery holds every committed write and no lock: more permissive, no less safe.
//! The LOCK record carries only the version to check; the new value travels in COMMIT-BACKUP and
//! COMMIT-PRIMARY.
//!
//! # Properties
//! - always **strict serializability (§4)**: the history of reads and writes, with the versions
//!   they saw and installed and when each transaction started and was reported, passes
//!   [`properties::serializability::check_strict_serializable`]. A transaction counts as committed
//!   once it has sent COMMIT-PRIMARY (its writes may then be visible) or recovery committed it.
//! - always **no committed write lost (§5)**: every write of a transaction reported committed is at
//!   its object's current primary, installed or superseded (version at least its own), or logged
//!   there awaiting processing.
//! - sometimes: every transaction commits; a transaction aborts at LOCK; one aborts at VALIDATE; a
//!   promoted backup takes over with a write already reported committed, from its COMMIT-BACKUP
//!   record; recovery commits a transaction from that record before its coordinator reported it;
//!   recovery aborts a transaction whose lock died with its primary.
//!
//! # Seeded bugs
//! - `skip-validation`: no VALIDATE, so T1 and T2 both commit on the versions of `x` and `y` they
//!   read: write skew, a G2 cycle (strict serializability).
//! - `commit-primary-before-backup`: COMMIT-PRIMARY goes out with COMMIT-BACKUP instead of after its
//!   ack; the commit is reported, the primary fails before the backup has the record, and the
//!   promoted backup knows nothing of the write (no committed write lost).

use std::collections::BTreeSet;

use properties::serializability::{check_strict_serializable, Op, Txn};
use stateright::{Model, Property};

use crate::catalog::{Bug, Param, ParamKind, Params, Spec};

/// An object, alone in its region (§3): [`X`] or [`Y`].
pub type Obj = usize;
pub const X: Obj = 0;
pub const Y: Obj = 1;
/// Objects by name, for histories and explanations.
pub const OBJECT_NAMES: [&str; 2] = ["x", "y"];

/// A transaction, named by its coordinator: 0 is T1.
pub type TxnIdx = usize;

/// An object's version number (§4), incremented by every write that is installed.
pub type Version = u8;

/// Real time, as a logical clock that moves only when a transaction starts and when its outcome is
/// reported to the application: all that strict serializability compares.
pub type Time = u8;

/// The most transactions of the workload.
pub const MAX_TXNS: usize = 3;

/// An object at one replica: its header's version and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Object {
    pub version: Version,
    /// Each transaction writes its own name, so a value says which write it is; `None` is the
    /// initial value.
    pub value: Option<TxnIdx>,
}

impl Object {
    pub const INITIAL: Object = Object {
        version: 0,
        value: None,
    };

    /// The version's name in the history: the version number and the writer, so that it stays
    /// unique per write even when a lost write's version number is installed again (only under
    /// `commit-primary-before-backup`), and still orders a key's writes by version number.
    pub fn history_version(self) -> u64 {
        match self.value {
            None => 0,
            Some(t) => u64::from(self.version) * (MAX_TXNS as u64 + 1) + t as u64 + 1,
        }
    }
}

/// One transaction's program: what execution reads, in order, and the one object it writes (a
/// write needs the version that its read saw, for LOCK).
#[derive(Clone, Copy, Debug)]
pub struct Program {
    pub reads: &'static [Obj],
    pub write: Obj,
}

impl Program {
    /// The objects VALIDATE checks: read but not written, in program order.
    fn read_only(&self) -> impl Iterator<Item = Obj> + '_ {
        self.reads.iter().copied().filter(move |o| *o != self.write)
    }
}

/// T1, T2, T3: see the module documentation.
pub const WORKLOAD: [Program; MAX_TXNS] = [
    Program {
        reads: &[X, Y],
        write: Y,
    },
    Program {
        reads: &[X, Y],
        write: X,
    },
    Program {
        reads: &[Y],
        write: Y,
    },
];

/// Where a coordinator is in Figure 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Execution: reading, writes buffered.
    Execute,
    /// LOCK sent to the primary of the written object; waiting for its reply.
    Lock,
    /// The lock is held; validating the read-only objects one by one.
    Validate,
    /// COMMIT-BACKUP sent; waiting for the backup's ack.
    CommitBackup,
    /// COMMIT-PRIMARY sent; waiting for the primary's ack.
    CommitPrimary,
    /// Reported committed to the application.
    Committed,
    /// Reported aborted to the application.
    Aborted(AbortedAt),
}

/// Why a transaction aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortedAt {
    /// The written object's version had changed, or it was locked.
    Lock,
    /// A read-only object's version had changed, or it was locked.
    Validate,
    /// Transaction state recovery found no record of it at the promoted backup (§5.3).
    Recovery,
}

/// A coordinator and the one transaction it runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator {
    pub phase: Phase,
    /// What execution read: `read[i]` is the object `reads[i]` of its program as it was then.
    pub read: Vec<Object>,
    /// How many read-only objects have been validated.
    /// Invariant: `validated <= program.read_only().count()`.
    pub validated: usize,
    /// When the first read was issued.
    pub start: Option<Time>,
    /// When the outcome was reported to the application.
    pub end: Option<Time>,
}

impl Coordinator {
    fn new() -> Self {
        Coordinator {
            phase: Phase::Execute,
            read: Vec::new(),
            validated: 0,
            start: None,
            end: None,
        }
    }

    /// What execution saw of `obj`, which the program reads.
    fn seen(&self, program: &Program, obj: Obj) -> Object {
        let i = program
            .reads
            .iter()
            .position(|o| *o == obj)
            .expect("validated and written objects are read first");
        self.read[i]
    }

    /// The value the transaction writes: its own name, at the version after the one it read.
    fn new_value(&self, t: TxnIdx, program: &Program) -> Object {
        Object {
            version: self.seen(program, program.write).version + 1,
            value: Some(t),
        }
    }
}

/// A region holding one object: its primary and its backup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// The primary's copy: what reads, LOCK and VALIDATE see.
    pub object: Object,
    /// The lock bit of the object's header, with its holder.
    pub lock: Option<TxnIdx>,
    /// COMMIT-PRIMARY records in the primary's log, acked but not yet processed.
    pub log: Vec<(TxnIdx, Object)>,
    /// `None` once the backup has been promoted to primary.
    pub backup: Option<Backup>,
}

/// A backup of a region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Backup {
    /// The backup's copy, updated when a record is truncated.
    pub object: Object,
    /// COMMIT-BACKUP records in its log, not yet truncated.
    pub log: Vec<(TxnIdx, Object)>,
}

/// Log records written to other machines, and their replies and acks (§4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// To the primary of `obj`: lock it if its version is still `version`.
    Lock {
        txn: TxnIdx,
        obj: Obj,
        version: Version,
    },
    /// The primary's answer to LOCK.
    LockReply { txn: TxnIdx, obj: Obj, ok: bool },
    /// To the backup of `obj`: the transaction's new value.
    CommitBackup { txn: TxnIdx, obj: Obj, new: Object },
    /// The backup NIC's ack of COMMIT-BACKUP.
    CommitBackupAck { txn: TxnIdx, obj: Obj },
    /// To the primary of `obj`: install the new value and unlock.
    CommitPrimary { txn: TxnIdx, obj: Obj, new: Object },
    /// The primary NIC's ack of COMMIT-PRIMARY (the record is logged, maybe not processed).
    CommitPrimaryAck { txn: TxnIdx, obj: Obj },
    /// To the primary of `obj`: release the transaction's lock.
    Abort { txn: TxnIdx, obj: Obj },
    /// To the backup of `obj`: apply and drop the transaction's record.
    Truncate { txn: TxnIdx, obj: Obj },
}

impl Msg {
    /// The object whose region sends or receives it.
    pub fn obj(&self) -> Obj {
        match *self {
            Msg::Lock { obj, .. }
            | Msg::LockReply { obj, .. }
            | Msg::CommitBackup { obj, .. }
            | Msg::CommitBackupAck { obj, .. }
            | Msg::CommitPrimary { obj, .. }
            | Msg::CommitPrimaryAck { obj, .. }
            | Msg::Abort { obj, .. }
            | Msg::Truncate { obj, .. } => obj,
        }
    }
}

/// A state of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FarmState {
    /// Indexed by [`Obj`].
    pub regions: Vec<Region>,
    /// Indexed by [`TxnIdx`].
    pub coordinators: Vec<Coordinator>,
    /// Messages in flight; any of them may arrive next.
    pub network: BTreeSet<Msg>,
    pub now: Time,
    /// Primaries failed so far.
    pub failures: u8,
    /// History: bit `t` is set when a promoted backup took over with the write of transaction `t`,
    /// already reported committed, from its COMMIT-BACKUP record: the write survived its primary
    /// through the backup's log.
    pub carried_writes: u8,
    /// History: bit `t` is set when transaction recovery committed transaction `t` from its
    /// COMMIT-BACKUP record before the coordinator had reported it.
    pub recovery_commits: u8,
}

/// The steps of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FarmAction {
    /// Execution: the coordinator reads the next object of its program at its primary. After the
    /// last read the application commits and LOCK goes out.
    Read(TxnIdx),
    /// VALIDATE: the coordinator re-reads the header of its next read-only object at its primary.
    Validate(TxnIdx),
    /// A message arrives.
    Deliver(Msg),
    /// The primary of `Obj` processes the transaction's COMMIT-PRIMARY record: installs the value
    /// and unlocks.
    Install(Obj, TxnIdx),
    /// The primary of `Obj` fails; its backup is promoted and recovers the transactions (§5).
    PrimaryFails(Obj),
}

crate::seeded_bugs! {
    /// The seeded bugs, see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FarmBug {
        SkipValidation = "skip-validation",
        CommitPrimaryBeforeBackup = "commit-primary-before-backup",
    }
}

/// The model: the first `txns` transactions of [`WORKLOAD`], up to `failures` primary failures.
#[derive(Clone, Debug)]
pub struct Farm {
    pub txns: usize,
    pub failures: u8,
    pub bug: Option<FarmBug>,
}

impl Farm {
    pub fn new(txns: usize, failures: u8) -> Self {
        assert!(txns <= MAX_TXNS, "the workload has {MAX_TXNS} transactions");
        assert!(
            usize::from(failures) <= OBJECT_NAMES.len(),
            "each region's primary fails at most once (it has one backup)"
        );
        Farm {
            txns,
            failures,
            bug: None,
        }
    }

    /// Validation passed (or was skipped): COMMIT-BACKUP, and COMMIT-PRIMARY once it is acked.
    fn commit_backup(&self, s: &mut FarmState, t: TxnIdx) {
        let program = &WORKLOAD[t];
        let obj = program.write;
        let new = s.coordinators[t].new_value(t, program);
        let has_backup = s.regions[obj].backup.is_some();
        if has_backup {
            s.network.insert(Msg::CommitBackup { txn: t, obj, new });
        }
        if has_backup && self.bug != Some(FarmBug::CommitPrimaryBeforeBackup) {
            s.coordinators[t].phase = Phase::CommitBackup;
        } else {
            // A promoted region has no backup left to wait for.
            s.network.insert(Msg::CommitPrimary { txn: t, obj, new });
            s.coordinators[t].phase = Phase::CommitPrimary;
        }
    }

    /// The lock is held: validate, unless there is nothing to validate (or the bug skips it).
    fn locked(&self, s: &mut FarmState, t: TxnIdx) {
        let nothing_to_validate = WORKLOAD[t].read_only().next().is_none();
        if nothing_to_validate || self.bug == Some(FarmBug::SkipValidation) {
            self.commit_backup(s, t);
        } else {
            s.coordinators[t].phase = Phase::Validate;
        }
    }
}

/// Reports the outcome to the application.
fn report(s: &mut FarmState, t: TxnIdx, phase: Phase) {
    let c = &mut s.coordinators[t];
    c.phase = phase;
    c.end = Some(s.now);
    s.now += 1;
}

impl Model for Farm {
    type State = FarmState;
    type Action = FarmAction;

    fn init_states(&self) -> Vec<FarmState> {
        let region = Region {
            object: Object::INITIAL,
            lock: None,
            log: Vec::new(),
            backup: Some(Backup {
                object: Object::INITIAL,
                log: Vec::new(),
            }),
        };
        vec![FarmState {
            regions: vec![region; OBJECT_NAMES.len()],
            coordinators: vec![Coordinator::new(); self.txns],
            network: BTreeSet::new(),
            now: 0,
            failures: 0,
            carried_writes: 0,
            recovery_commits: 0,
        }]
    }

    fn actions(&self, s: &FarmState, actions: &mut Vec<FarmAction>) {
        for (t, c) in s.coordinators.iter().enumerate() {
            match c.phase {
                Phase::Execute => actions.push(FarmAction::Read(t)),
                Phase::Validate => actions.push(FarmAction::Validate(t)),
                _ => {}
            }
        }
        actions.extend(s.network.iter().map(|m| FarmAction::Deliver(*m)));
        for (obj, region) in s.regions.iter().enumerate() {
            actions.extend(region.log.iter().map(|(t, _)| FarmAction::Install(obj, *t)));
        }
        if s.failures < self.failures {
            for (obj, region) in s.regions.iter().enumerate() {
                if region.backup.is_some() {
                    actions.push(FarmAction::PrimaryFails(obj));
                }
            }
        }
    }

    fn next_state(&self, s: &FarmState, action: FarmAction) -> Option<FarmState> {
        let mut n = s.clone();
        match action {
            FarmAction::Read(t) => {
                let program = &WORKLOAD[t];
                let c = &mut n.coordinators[t];
                if c.read.is_empty() {
                    c.start = Some(n.now);
                    n.now += 1;
                }
                let obj = program.reads[c.read.len()];
                // A one-sided read of the primary's copy; a locked object reads as its committed
                // version, and LOCK or VALIDATE will notice the lock.
                c.read.push(n.regions[obj].object);
                if c.read.len() == program.reads.len() {
                    // Execution is over: LOCK at the primary of the written object (step 1).
                    c.phase = Phase::Lock;
                    let version = c.seen(program, program.write).version;
                    n.network.insert(Msg::Lock {
                        txn: t,
                        obj: program.write,
                        version,
                    });
                }
            }
            FarmAction::Validate(t) => {
                // Step 2: the version must be the one execution read, and nobody may hold the
                // lock (a locked object is about to change).
                let program = &WORKLOAD[t];
                let c = &n.coordinators[t];
                let obj = program
                    .read_only()
                    .nth(c.validated)
                    .expect("Validate is offered only while objects remain");
                let region = &n.regions[obj];
                if region.lock.is_none() && region.object.version == c.seen(program, obj).version {
                    n.coordinators[t].validated += 1;
                    if n.coordinators[t].validated == program.read_only().count() {
                        self.commit_backup(&mut n, t);
                    }
                } else {
                    n.network.insert(Msg::Abort {
                        txn: t,
                        obj: program.write,
                    });
                    report(&mut n, t, Phase::Aborted(AbortedAt::Validate));
                }
            }
            FarmAction::Deliver(msg) => {
                n.network.remove(&msg);
                match msg {
                    Msg::Lock { txn, obj, version } => {
                        let region = &mut n.regions[obj];
                        let ok = region.lock.is_none() && region.object.version == version;
                        if ok {
                            region.lock = Some(txn);
                        }
                        n.network.insert(Msg::LockReply { txn, obj, ok });
                    }
                    Msg::LockReply { txn, ok, .. } => {
                        if ok {
                            self.locked(&mut n, txn);
                        } else {
                            // The only lock it asked for was refused: nothing to release.
                            report(&mut n, txn, Phase::Aborted(AbortedAt::Lock));
                        }
                    }
                    Msg::CommitBackup { txn, obj, new } => {
                        let backup = n.regions[obj]
                            .backup
                            .as_mut()
                            .expect("messages to a promoted backup were dropped (§5.2)");
                        backup.log.push((txn, new));
                        n.network.insert(Msg::CommitBackupAck { txn, obj });
                    }
                    Msg::CommitBackupAck { txn, obj } => {
                        // Step 4: every backup has acked (there is one), so COMMIT-PRIMARY. Under
                        // `commit-primary-before-backup` it went out already.
                        if n.coordinators[txn].phase == Phase::CommitBackup {
                            let new = n.coordinators[txn].new_value(txn, &WORKLOAD[txn]);
                            n.network.insert(Msg::CommitPrimary { txn, obj, new });
                            n.coordinators[txn].phase = Phase::CommitPrimary;
                        }
                    }
                    Msg::CommitPrimary { txn, obj, new } => {
                        // Logged; the NIC acks at once, the CPU processes it later (Install).
                        n.regions[obj].log.push((txn, new));
                        n.network.insert(Msg::CommitPrimaryAck { txn, obj });
                    }
                    Msg::CommitPrimaryAck { txn, obj } => {
                        report(&mut n, txn, Phase::Committed);
                        // Step 5, lazily: the backup applies the record when it is truncated.
                        if n.regions[obj].backup.is_some() {
                            n.network.insert(Msg::Truncate { txn, obj });
                        }
                    }
                    Msg::Abort { txn, obj } => {
                        let region = &mut n.regions[obj];
                        if region.lock == Some(txn) {
                            region.lock = None;
                        }
                    }
                    Msg::Truncate { txn, obj } => {
                        let backup = n.regions[obj]
                            .backup
                            .as_mut()
                            .expect("messages to a promoted backup were dropped (§5.2)");
                        // Under `commit-primary-before-backup` the record may not be there yet.
                        if let Some(i) = backup.log.iter().position(|(t, _)| *t == txn) {
                            let (_, new) = backup.log.remove(i);
                            if new.version > backup.object.version {
                                backup.object = new;
                            }
                        }
                    }
                }
            }
            FarmAction::Install(obj, t) => {
                let region = &mut n.regions[obj];
                let i = region
                    .log
                    .iter()
                    .position(|(u, _)| *u == t)
                    .expect("Install is offered for logged records");
                let (_, new) = region.log.remove(i);
                region.object = new;
                if region.lock == Some(t) {
                    region.lock = None;
                }
            }
            FarmAction::PrimaryFails(obj) => {
                n.failures += 1;
                // Messages to or from the failed primary or the promoted backup are dropped: each
                // belongs to a transaction that recovery decides below, or that was already
                // reported (TRUNCATE, ABORT).
                n.network.retain(|m| m.obj() != obj);
                let backup = n.regions[obj]
                    .backup
                    .take()
                    .expect("only a region with a backup can fail over");
                // §5.3: the promoted backup's COMMIT-BACKUP records vote commit-backup, so their
                // transactions commit and the records are applied; the locks and the primary's
                // log died with it.
                let mut object = backup.object;
                for (_, new) in &backup.log {
                    if new.version > object.version {
                        object = *new;
                    }
                }
                let region = &mut n.regions[obj];
                region.object = object;
                region.lock = None;
                region.log.clear();
                // The transactions whose commit on this region was under way: committed if the
                // backup holds their record, else aborted (no replica knows them: vote unknown).
                // A transaction reported committed without a record there was truncated (its
                // write is in the backup's copy), or lost under `commit-primary-before-backup`.
                let mut reported = false;
                for (t, c) in n.coordinators.iter_mut().enumerate() {
                    if WORKLOAD[t].write != obj
                        || matches!(c.phase, Phase::Execute | Phase::Aborted(_))
                    {
                        continue;
                    }
                    let logged = backup.log.iter().any(|(u, _)| *u == t);
                    match (logged, c.phase == Phase::Committed) {
                        (true, true) => n.carried_writes |= 1 << t,
                        (true, false) => {
                            n.recovery_commits |= 1 << t;
                            c.phase = Phase::Committed;
                            c.end = Some(n.now);
                            reported = true;
                        }
                        (false, false) => {
                            c.phase = Phase::Aborted(AbortedAt::Recovery);
                            c.end = Some(n.now);
                            reported = true;
                        }
                        (false, true) => {}
                    }
                }
                if reported {
                    n.now += 1;
                }
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("strict serializability (§4)", |m: &Farm, s: &FarmState| {
                check_strict_serializable(&history(m, s)).is_ok()
            }),
            Property::always("no committed write lost (§5)", no_committed_write_lost),
            Property::sometimes("every transaction commits", |_, s: &FarmState| {
                s.coordinators.iter().all(|c| c.phase == Phase::Committed)
            }),
            Property::sometimes("a transaction aborts at LOCK", |_, s: &FarmState| {
                aborted_at(s, AbortedAt::Lock)
            }),
            Property::sometimes("a transaction aborts at VALIDATE", |_, s: &FarmState| {
                aborted_at(s, AbortedAt::Validate)
            }),
            Property::sometimes(
                "a promoted backup takes over with a reported write",
                |_, s: &FarmState| s.carried_writes != 0,
            ),
            Property::sometimes(
                "recovery commits a transaction from its COMMIT-BACKUP record",
                |_, s: &FarmState| s.recovery_commits != 0,
            ),
            Property::sometimes(
                "recovery aborts a transaction whose lock died with its primary",
                |_, s: &FarmState| aborted_at(s, AbortedAt::Recovery),
            ),
        ]
    }
}

fn aborted_at(s: &FarmState, at: AbortedAt) -> bool {
    s.coordinators.iter().any(|c| c.phase == Phase::Aborted(at))
}

/// The history so far, for the serializability checker: every transaction that has read something,
/// with the versions it read and the one it writes. It is committed once it has sent COMMIT-PRIMARY
/// (from then on its write may be visible at the primary, and recovery would commit it) or was
/// reported committed; with its end, the time of that report. The others have installed nothing.
pub fn history(m: &Farm, s: &FarmState) -> Vec<Txn<&'static str>> {
    (0..m.txns)
        .filter(|t| !s.coordinators[*t].read.is_empty())
        .map(|t| {
            let c = &s.coordinators[t];
            let program = &WORKLOAD[t];
            let mut ops: Vec<Op<&'static str>> = program
                .reads
                .iter()
                .zip(&c.read)
                .map(|(obj, seen)| Op::Read {
                    key: OBJECT_NAMES[*obj],
                    version: seen.history_version(),
                })
                .collect();
            if c.phase != Phase::Execute {
                ops.push(Op::Write {
                    key: OBJECT_NAMES[program.write],
                    version: c.new_value(t, program).history_version(),
                });
            }
            let committed = matches!(c.phase, Phase::CommitPrimary | Phase::Committed);
            Txn {
                id: t as u64 + 1,
                ops,
                committed,
                start: c.start.map(u64::from),
                end: if committed {
                    c.end.map(u64::from)
                } else {
                    None
                },
            }
        })
        .collect()
}

/// §5: every write of a transaction reported committed is at its object's current primary
/// (installed, or superseded by a later version) or logged there awaiting processing. Checked in
/// every state, so a write is caught the moment it is lost.
fn no_committed_write_lost(_: &Farm, s: &FarmState) -> bool {
    s.coordinators.iter().enumerate().all(|(t, c)| {
        if c.phase != Phase::Committed {
            return true;
        }
        let program = &WORKLOAD[t];
        let new = c.new_value(t, program);
        let region = &s.regions[program.write];
        region.object.version >= new.version || region.log.iter().any(|(u, _)| *u == t)
    })
}

/// `checker farm`.
pub struct FarmSpec;

impl Spec for FarmSpec {
    type Model = Farm;
    type State = FarmState;
    type Action = FarmAction;

    const NAME: &'static str = "farm";
    const PAPER: &'static str = "Dragojević et al., No compromises: distributed transactions with consistency, availability, and performance (FaRM, SOSP 2015) §§4, 5";
    const SUMMARY: &'static str =
        "Optimistic transactions (LOCK, VALIDATE, COMMIT-BACKUP, COMMIT-PRIMARY) over primary-backup objects; a primary fails";
    const PARAMS: &'static [Param] = &[
        Param {
            name: "txns",
            help: "transactions: T1 (r x, r y, w y), T2 (r x, r y, w x), T3 (r y, w y)",
            kind: ParamKind::Int {
                default: 3,
                min: 1,
                max: MAX_TXNS as u64,
            },
        },
        Param {
            name: "failures",
            help: "primaries that fail (each region's at most once; its backup is promoted)",
            kind: ParamKind::Int {
                default: 1,
                min: 0,
                max: 2,
            },
        },
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: FarmBug::SkipValidation.name(),
            breaks: &["strict serializability (§4)"],
            help: "no VALIDATE: write skew between T1 and T2, a G2 cycle",
            params: &[("txns", "2"), ("failures", "0")],
        },
        Bug {
            name: FarmBug::CommitPrimaryBeforeBackup.name(),
            breaks: &["no committed write lost (§5)"],
            help: "COMMIT-PRIMARY is sent without waiting for COMMIT-BACKUP acks; the primary fails and the reported write is lost",
            params: &[("txns", "1"), ("failures", "1")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> Farm {
        let mut model = Farm::new(params.int("txns") as usize, params.int("failures") as u8);
        model.bug = bug.map(|b| {
            FarmBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not in FarmSpec::BUGS"))
        });
        model
    }
}

#[cfg(test)]
mod tests {
    use super::FarmAction::*;
    use super::Msg::*;
    use super::*;
    use properties::serializability::Anomaly;
    use stateright::Checker;

    const ALWAYS: [&str; 2] = [
        "strict serializability (§4)",
        "no committed write lost (§5)",
    ];

    /// Takes `steps` from the initial state, each of which must be enabled.
    fn run(model: &Farm, steps: &[FarmAction]) -> FarmState {
        run_from(model, model.init_states().remove(0), steps)
    }

    fn buggy(txns: usize, failures: u8, bug: FarmBug) -> Farm {
        let mut model = Farm::new(txns, failures);
        model.bug = Some(bug);
        model
    }

    fn new(version: Version, t: TxnIdx) -> Object {
        Object {
            version,
            value: Some(t),
        }
    }

    /// T1 and T2 execute concurrently on the initial versions and both lock.
    const BOTH_LOCK: [FarmAction; 8] = [
        Read(0),
        Read(0),
        Read(1),
        Read(1),
        Deliver(Lock {
            txn: 0,
            obj: Y,
            version: 0,
        }),
        Deliver(Lock {
            txn: 1,
            obj: X,
            version: 0,
        }),
        Deliver(LockReply {
            txn: 0,
            obj: Y,
            ok: true,
        }),
        Deliver(LockReply {
            txn: 1,
            obj: X,
            ok: true,
        }),
    ];

    /// T1 alone, through VALIDATE.
    const T1_VALIDATED: [FarmAction; 5] = [
        Read(0),
        Read(0),
        Deliver(Lock {
            txn: 0,
            obj: Y,
            version: 0,
        }),
        Deliver(LockReply {
            txn: 0,
            obj: Y,
            ok: true,
        }),
        Validate(0),
    ];

    #[test]
    fn default_configuration_holds_and_reaches_every_example() {
        let checker = Farm::new(3, 1).checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 171_942);
        assert_eq!(checker.state_count(), 433_110);
    }

    // Reference: §4, VALIDATE; the serializability argument at the end of §4.
    #[test]
    fn validation_catches_write_skew() {
        let model = Farm::new(2, 0);
        let s = run(&model, &BOTH_LOCK);
        // Each validates the object the other holds locked: both abort.
        let s = run_from(&model, s, &[Validate(0), Validate(1)]);
        for c in &s.coordinators {
            assert_eq!(c.phase, Phase::Aborted(AbortedAt::Validate));
        }
        assert!(check_strict_serializable(&history(&model, &s)).is_ok());
    }

    /// Takes `steps` from `s`, each of which must be enabled.
    fn run_from(model: &Farm, mut s: FarmState, steps: &[FarmAction]) -> FarmState {
        for step in steps {
            let mut enabled = Vec::new();
            model.actions(&s, &mut enabled);
            assert!(enabled.contains(step), "{step:?} is not enabled in {s:#?}");
            s = model
                .next_state(&s, *step)
                .expect("every step changes the state");
        }
        s
    }

    #[test]
    fn skip_validation_commits_write_skew() {
        let checker = buggy(2, 0, FarmBug::SkipValidation)
            .checker()
            .spawn_bfs()
            .join();
        let mut path = BOTH_LOCK.to_vec();
        path.extend([
            Deliver(CommitBackup {
                txn: 0,
                obj: Y,
                new: new(1, 0),
            }),
            Deliver(CommitBackupAck { txn: 0, obj: Y }),
            Deliver(CommitBackup {
                txn: 1,
                obj: X,
                new: new(1, 1),
            }),
            Deliver(CommitBackupAck { txn: 1, obj: X }),
        ]);
        checker.assert_discovery("strict serializability (§4)", path.clone());
        assert!(checker.discovery("no committed write lost (§5)").is_none());
        // Both are past their commit point having read the other's object at version 0: G2.
        let model = checker.model();
        let s = run(model, &path);
        let violation = check_strict_serializable(&history(model, &s)).unwrap_err();
        assert_eq!(violation.anomaly, Anomaly::G2, "{violation}");
    }

    // Reference: §4 step 4 and §5: all COMMIT-BACKUPs are acked before COMMIT-PRIMARY, so a
    // reported write is at the backup when its primary fails.
    #[test]
    fn a_reported_write_survives_its_primary() {
        let model = Farm::new(1, 1);
        let mut steps = T1_VALIDATED.to_vec();
        steps.extend([
            Deliver(CommitBackup {
                txn: 0,
                obj: Y,
                new: new(1, 0),
            }),
            Deliver(CommitBackupAck { txn: 0, obj: Y }),
            Deliver(CommitPrimary {
                txn: 0,
                obj: Y,
                new: new(1, 0),
            }),
            Deliver(CommitPrimaryAck { txn: 0, obj: Y }),
        ]);
        let s = run(&model, &steps);
        assert_eq!(s.coordinators[0].phase, Phase::Committed);
        // Reported, not yet installed: the primary still holds the lock and the record.
        assert_eq!(s.regions[Y].lock, Some(0));
        assert_eq!(s.regions[Y].object, Object::INITIAL);
        let s = run_from(&model, s, &[PrimaryFails(Y)]);
        assert_eq!(s.regions[Y].object, new(1, 0));
        assert!(s.regions[Y].backup.is_none());
        assert_eq!(s.carried_writes, 1);
        assert!(no_committed_write_lost(&model, &s));
    }

    // Reference: §5.3: a COMMIT-BACKUP record at the promoted backup commits the transaction; with
    // none, its lock died with the primary and it aborts.
    #[test]
    fn recovery_decides_by_the_backups_log() {
        let model = Farm::new(1, 1);
        let mut steps = T1_VALIDATED.to_vec();
        steps.push(Deliver(CommitBackup {
            txn: 0,
            obj: Y,
            new: new(1, 0),
        }));
        let s = run(&model, &steps);
        let committed = run_from(&model, s.clone(), &[PrimaryFails(Y)]);
        assert_eq!(committed.coordinators[0].phase, Phase::Committed);
        assert_eq!(committed.regions[Y].object, new(1, 0));
        assert_eq!(committed.recovery_commits, 1);
        assert!(committed.network.is_empty());

        let s = run(&model, &T1_VALIDATED);
        let aborted = run_from(&model, s, &[PrimaryFails(Y)]);
        assert_eq!(
            aborted.coordinators[0].phase,
            Phase::Aborted(AbortedAt::Recovery)
        );
        assert_eq!(aborted.regions[Y].object, Object::INITIAL);
        assert_eq!(aborted.regions[Y].lock, None);
    }

    #[test]
    fn commit_primary_before_backup_loses_a_reported_write() {
        let checker = buggy(1, 1, FarmBug::CommitPrimaryBeforeBackup)
            .checker()
            .spawn_bfs()
            .join();
        let mut path = T1_VALIDATED.to_vec();
        path.extend([
            Deliver(CommitPrimary {
                txn: 0,
                obj: Y,
                new: new(1, 0),
            }),
            Deliver(CommitPrimaryAck { txn: 0, obj: Y }),
            PrimaryFails(Y),
        ]);
        checker.assert_discovery("no committed write lost (§5)", path.clone());
        let s = run(checker.model(), &path);
        assert_eq!(s.coordinators[0].phase, Phase::Committed);
        assert_eq!(s.regions[Y].object, Object::INITIAL);
    }

    #[test]
    fn bug_configurations_hold_without_their_bug() {
        for (txns, failures) in [(2, 0), (1, 1)] {
            let checker = Farm::new(txns, failures).checker().spawn_bfs().join();
            for name in ALWAYS {
                assert!(
                    checker.discovery(name).is_none(),
                    "{name} fails with {txns} transactions and {failures} failures"
                );
            }
        }
    }

    #[test]
    fn both_failures_hold() {
        let checker = Farm::new(3, 2).checker().spawn_bfs().join();
        checker.assert_properties();
    }

    #[test]
    fn history_versions_are_unique_per_write_and_ordered_by_version() {
        assert_eq!(Object::INITIAL.history_version(), 0);
        let all: Vec<u64> = (1..=3)
            .flat_map(|v| (0..MAX_TXNS).map(move |t| new(v, t).history_version()))
            .collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    }
}
