//! ZooKeeper's client guarantees (Hunt et al., "ZooKeeper: Wait-free coordination for
//! Internet-scale systems", USENIX ATC 2010), checked on recorded histories. Linearizable writes
//! (§2.3) are [`crate::linearizability`]'s job, with the [`crate::linearizability::Znode`]
//! specification; this module has the other two properties a live run checks:
//!
//! - [`check_fifo`], **FIFO client order** (§2.3): "all requests from a given client are
//!   executed in the order that they were sent by the client". Seen from the client, in the
//!   order it issued its operations in one session: the zxids its replies carry never go
//!   backwards (also when the session moves to another server, which is what the connect
//!   handshake's `lastZxidSeen` is for); a read sees the session's own earlier writes; and the
//!   versions it sees of a znode never go back.
//! - [`check_lock`], **the lock recipe has at most one holder** (§2.4, "Locks without herd
//!   effect"), judged in ZooKeeper's own order rather than in real time: every write made in the
//!   critical section, at its zxid, must come from the session whose lock node is then the
//!   lowest child of the lock node. A holder that was paused past its session timeout has lost
//!   its node and its session, so its later writes cannot commit; real time would blame the
//!   recipe for its belief that it still holds, the commit order does not.
//!
//! Both take what the caller has already put in order (issue order per session; the committed
//! log in zxid order) and name the operations or transactions of a violation by the indices
//! and names the caller gave them.

use std::collections::{BTreeMap, HashMap};

/// What one operation of a session did, as its reply said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOpKind {
    /// `getData` of a znode: the version it read.
    Read { znode: u64, version: i32 },
    /// `setData` of a znode: the version it made, or `None` for `BadVersion` (no change).
    Write { znode: u64, version: Option<i32> },
    /// Any other operation with a reply (only its zxid is checked).
    Other,
}

/// One operation of a session with a reply: the zxid in the reply's header and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOp {
    pub session: i64,
    /// The reply header's zxid: the write's own zxid, or for a read the last zxid the answering
    /// server had applied.
    pub zxid: i64,
    pub kind: SessionOpKind,
    /// The caller's name for the operation, used in a violation's description.
    pub index: usize,
}

/// Which rule of FIFO client order a history breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FifoRule {
    /// A later operation's reply carries an earlier zxid: the session went back in time.
    ZxidWentBack,
    /// A read missed the session's own earlier write (read-your-writes).
    ReadMissedOwnWrite,
    /// A read saw an older version of a znode than an earlier read of the session (monotonic
    /// reads).
    ReadWentBack,
    /// A write made a version no later than one the session had already seen.
    WriteBeforeSeen,
}

impl std::fmt::Display for FifoRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FifoRule::ZxidWentBack => "a reply's zxid went back",
            FifoRule::ReadMissedOwnWrite => "a read missed the session's own write",
            FifoRule::ReadWentBack => "a read went back to an older version",
            FifoRule::WriteBeforeSeen => "a write landed before a version the session saw",
        })
    }
}

/// A violation of FIFO client order: the two operations, by their [`SessionOp::index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FifoViolation {
    pub rule: FifoRule,
    pub session: i64,
    pub earlier: usize,
    pub later: usize,
    pub detail: String,
}

/// What a FIFO check covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FifoSummary {
    pub sessions: usize,
    pub ops: usize,
    /// Reads that followed an earlier write of their own session to the same znode.
    pub reads_after_own_write: usize,
}

/// Checks FIFO client order. `ops` holds each session's operations in the order the session
/// issued them (sessions may interleave); operations whose outcome is unknown are left out.
pub fn check_fifo(ops: &[SessionOp]) -> Result<FifoSummary, FifoViolation> {
    // Per session: the last reply's (zxid, index); per (session, znode): the highest version
    // seen, the index that showed it, and whether it was the session's own write.
    let mut last: HashMap<i64, (i64, usize)> = HashMap::new();
    let mut seen: HashMap<(i64, u64), (i32, usize, bool)> = HashMap::new();
    let mut summary = FifoSummary::default();
    for op in ops {
        summary.ops += 1;
        let violation = |rule, earlier: usize, detail: String| FifoViolation {
            rule,
            session: op.session,
            earlier,
            later: op.index,
            detail,
        };
        if let Some(&(zxid, earlier)) = last.get(&op.session) {
            if op.zxid < zxid {
                return Err(violation(
                    FifoRule::ZxidWentBack,
                    earlier,
                    format!("zxid {:#x} after {zxid:#x}", op.zxid),
                ));
            }
        } else {
            summary.sessions += 1;
        }
        last.insert(op.session, (op.zxid, op.index));
        match op.kind {
            SessionOpKind::Read { znode, version } => {
                if let Some(&(max, earlier, own)) = seen.get(&(op.session, znode)) {
                    if own {
                        summary.reads_after_own_write += 1;
                    }
                    if version < max {
                        let rule = if own {
                            FifoRule::ReadMissedOwnWrite
                        } else {
                            FifoRule::ReadWentBack
                        };
                        return Err(violation(
                            rule,
                            earlier,
                            format!("znode {znode}: version {version} after version {max}"),
                        ));
                    }
                    if version == max {
                        continue;
                    }
                }
                seen.insert((op.session, znode), (version, op.index, false));
            }
            SessionOpKind::Write {
                znode,
                version: Some(version),
            } => {
                if let Some(&(max, earlier, _)) = seen.get(&(op.session, znode)) {
                    if version <= max {
                        return Err(violation(
                            FifoRule::WriteBeforeSeen,
                            earlier,
                            format!("znode {znode}: the write made version {version}, after version {max} was seen"),
                        ));
                    }
                }
                seen.insert((op.session, znode), (version, op.index, true));
            }
            SessionOpKind::Write { version: None, .. } | SessionOpKind::Other => {}
        }
    }
    Ok(summary)
}

/// A committed transaction that matters to the lock recipe, in zxid order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockEvent {
    /// A child of the lock node was created (`lock-0000000007`), ephemeral, owned by `session`.
    Created {
        zxid: i64,
        node: String,
        session: i64,
    },
    /// A child of the lock node was deleted.
    Deleted { zxid: i64, node: String },
    /// A session ended (closed or expired): its ephemeral nodes went with it.
    SessionClosed { zxid: i64, session: i64 },
    /// A write in the critical section, by `session`, naming its `client`.
    Write {
        zxid: i64,
        session: i64,
        client: String,
    },
}

/// Two holders: a critical-section write by a session whose node was not the lowest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwoHolders {
    pub zxid: i64,
    pub session: i64,
    pub client: String,
    /// The writer's own lock node, if it had one.
    pub own: Option<String>,
    /// The lowest lock node at the write, and its session, if any.
    pub lowest: Option<(String, i64)>,
}

impl std::fmt::Display for TwoHolders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the critical-section write at zxid {:#x} by {} (session {:#x}, ",
            self.zxid, self.client, self.session
        )?;
        match &self.own {
            Some(n) => write!(f, "node {n})")?,
            None => write!(f, "no lock node)")?,
        }
        match &self.lowest {
            Some((n, s)) => write!(f, " while {n} of session {s:#x} was the lowest"),
            None => write!(f, " while nobody held the lock"),
        }
    }
}

/// What a lock check covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockSummary {
    /// Critical-section writes checked.
    pub writes: usize,
    /// Distinct lock nodes that wrote: how often the lock changed hands.
    pub holds: usize,
    /// Lock nodes removed by their session's end rather than by a delete: waiters or holders
    /// whose session expired.
    pub expired_nodes: usize,
}

/// Checks mutual exclusion of the lock recipe on the committed transactions, in zxid order.
pub fn check_lock(events: &[LockEvent]) -> Result<LockSummary, TwoHolders> {
    // The lock node's children, ordered by name (the sequence suffix is fixed-width), and
    // their owners.
    let mut children: BTreeMap<String, i64> = BTreeMap::new();
    let mut wrote: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut summary = LockSummary::default();
    for e in events {
        match e {
            LockEvent::Created { node, session, .. } => {
                children.insert(node.clone(), *session);
            }
            LockEvent::Deleted { node, .. } => {
                children.remove(node);
            }
            LockEvent::SessionClosed { session, .. } => {
                let before = children.len();
                children.retain(|_, s| s != session);
                summary.expired_nodes += before - children.len();
            }
            LockEvent::Write {
                zxid,
                session,
                client,
            } => {
                summary.writes += 1;
                let lowest = children.iter().next().map(|(n, s)| (n.clone(), *s));
                match &lowest {
                    Some((n, s)) if s == session => {
                        if wrote.insert(n.clone()) {
                            summary.holds += 1;
                        }
                    }
                    _ => {
                        return Err(TwoHolders {
                            zxid: *zxid,
                            session: *session,
                            client: client.clone(),
                            own: children
                                .iter()
                                .find(|(_, s)| *s == session)
                                .map(|(n, _)| n.clone()),
                            lowest,
                        })
                    }
                }
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(session: i64, zxid: i64, znode: u64, version: i32, index: usize) -> SessionOp {
        SessionOp {
            session,
            zxid,
            kind: SessionOpKind::Read { znode, version },
            index,
        }
    }

    fn write(session: i64, zxid: i64, znode: u64, version: Option<i32>, index: usize) -> SessionOp {
        SessionOp {
            session,
            zxid,
            kind: SessionOpKind::Write { znode, version },
            index,
        }
    }

    #[test]
    fn a_session_that_reads_its_writes_in_order_passes() {
        let ops = [
            write(1, 10, 0, Some(1), 0),
            read(2, 9, 0, 0, 1),
            read(1, 12, 0, 1, 2),
            write(2, 13, 0, None, 3),
            read(2, 13, 0, 2, 4),
            write(1, 14, 0, Some(3), 5),
            read(1, 14, 0, 3, 6),
            SessionOp {
                session: 1,
                zxid: 14,
                kind: SessionOpKind::Other,
                index: 7,
            },
        ];
        let s = check_fifo(&ops).unwrap();
        assert_eq!(s.sessions, 2);
        assert_eq!(s.ops, 8);
        assert_eq!(s.reads_after_own_write, 2);
    }

    #[test]
    fn a_reply_with_an_earlier_zxid_breaks_fifo_order() {
        // Moved to a server that is behind: its reply's zxid is older than the last one seen.
        let ops = [read(1, 20, 0, 2, 0), read(1, 18, 1, 0, 1)];
        let v = check_fifo(&ops).unwrap_err();
        assert_eq!(v.rule, FifoRule::ZxidWentBack);
        assert_eq!((v.earlier, v.later, v.session), (0, 1, 1));
    }

    #[test]
    fn a_read_that_misses_its_own_write_or_goes_back_is_caught() {
        let ops = [write(1, 10, 0, Some(4), 0), read(1, 10, 0, 3, 1)];
        let v = check_fifo(&ops).unwrap_err();
        assert_eq!(v.rule, FifoRule::ReadMissedOwnWrite);
        assert_eq!((v.earlier, v.later), (0, 1));
        let ops = [read(1, 10, 0, 4, 0), read(1, 11, 0, 3, 1)];
        assert_eq!(check_fifo(&ops).unwrap_err().rule, FifoRule::ReadWentBack);
        // Another session's older read is no violation.
        let ops = [read(1, 10, 0, 4, 0), read(2, 11, 0, 3, 1)];
        assert!(check_fifo(&ops).is_ok());
        // A write cannot make a version the session has already seen.
        let ops = [read(1, 10, 0, 4, 0), write(1, 11, 0, Some(4), 1)];
        assert_eq!(
            check_fifo(&ops).unwrap_err().rule,
            FifoRule::WriteBeforeSeen
        );
    }

    fn created(zxid: i64, n: u32, session: i64) -> LockEvent {
        LockEvent::Created {
            zxid,
            node: format!("lock-{n:010}"),
            session,
        }
    }

    fn cs(zxid: i64, session: i64) -> LockEvent {
        LockEvent::Write {
            zxid,
            session,
            client: format!("client {session}"),
        }
    }

    #[test]
    fn the_lock_passing_in_sequence_order_passes() {
        let events = [
            created(1, 0, 10),
            created(2, 1, 11),
            cs(3, 10),
            created(4, 2, 12),
            cs(5, 10),
            LockEvent::Deleted {
                zxid: 6,
                node: "lock-0000000000".into(),
            },
            // 11's waiter expired: 12 waits again on 10's successor... which is gone too, so
            // 12 is lowest and holds.
            LockEvent::SessionClosed {
                zxid: 7,
                session: 11,
            },
            cs(8, 12),
        ];
        let s = check_lock(&events).unwrap();
        assert_eq!(
            s,
            LockSummary {
                writes: 3,
                holds: 2,
                expired_nodes: 1
            }
        );
    }

    #[test]
    fn a_waiter_that_holds_when_its_predecessor_expires_is_a_second_holder() {
        // lock-no-recheck: 12 watched 11; 11's session expired and 12 took the lock without
        // listing again, while 10 still held it.
        let events = [
            created(1, 0, 10),
            created(2, 1, 11),
            created(3, 2, 12),
            cs(4, 10),
            LockEvent::SessionClosed {
                zxid: 5,
                session: 11,
            },
            cs(6, 12),
        ];
        let v = check_lock(&events).unwrap_err();
        assert_eq!(v.zxid, 6);
        assert_eq!(v.session, 12);
        assert_eq!(v.own.as_deref(), Some("lock-0000000002"));
        assert_eq!(v.lowest, Some(("lock-0000000000".into(), 10)));
        assert!(
            v.to_string().contains("lock-0000000000 of session 0xa"),
            "{v}"
        );
    }

    #[test]
    fn a_write_without_a_lock_node_is_caught() {
        // A holder whose session expired while it was paused: were its write to commit (it
        // cannot, its session is gone), it would hold nothing.
        let events = [
            created(1, 0, 10),
            LockEvent::SessionClosed {
                zxid: 2,
                session: 10,
            },
            cs(3, 10),
        ];
        let v = check_lock(&events).unwrap_err();
        assert_eq!((v.own, v.lowest), (None, None));
    }
}
