//! The writer and the storage nodes (segments) as stateright actors. They take their peers from
//! their configuration only (never from indices), so that the same actors can run over TCP.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{model_timeout, Actor, Id, Out};

use crate::client::{ClientMsg, RequestId};
use crate::raft::kv::{KvOp, KvRet};

/// A log sequence number (§4.1): the writer numbers its redo records from 1, one protection
/// group here, so a record's back link is the LSN before it.
pub type Lsn = u64;

/// A volume epoch (§4.3): each writer that recovers the volume takes the next one, and storage
/// nodes refuse the requests of an older one.
pub type Epoch = u64;

/// A redo log record (§4.1). Only records cross the network between the writer and storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Record {
    pub lsn: Lsn,
    /// The back link: the LSN of the previous record of the protection group (§4.2.1), by which
    /// a segment finds the holes in what it has.
    pub prev: Lsn,
    /// The epoch of the writer that made it.
    pub epoch: Epoch,
    /// The writer that made it, which the segment acknowledges (over TCP a writer keeps its id
    /// across restarts; in the model a second writer takes over).
    pub writer: Id,
    /// Whether it ends a mini-transaction: a Consistency Point LSN (CPL, §4.2.1).
    pub cpl: bool,
    /// The page change it redoes: a key of the writer's table and its new value.
    pub key: String,
    pub value: String,
    /// Over TCP, the client request it carries out (its client and request id), so that a
    /// recovered writer knows which requests its log already holds and runs a client's retry
    /// at most once; `None` in the model.
    #[serde(default)]
    pub client: Option<(Id, RequestId)>,
}

/// A truncation range (§4.3): the recovery of epoch `epoch` truncated every record of an older
/// epoch above `above` (its VDL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Truncation {
    pub epoch: Epoch,
    pub above: Lsn,
}

/// The messages between the writer and the storage nodes (§§4.2, 4.3) and among storage nodes
/// (gossip, §3.3 step 4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuroraMsg {
    /// Writer to every segment: a redo record, and the truncation its epoch's recovery made
    /// (a segment that missed the recovery learns it so).
    Write {
        record: Record,
        truncation: Option<Truncation>,
    },
    /// Segment to the record's writer: the record is durable here. `scl` is the segment's
    /// complete LSN (SCL) after it, which the writer's reads use to pick an up-to-date segment.
    Ack { lsn: Lsn, epoch: Epoch, scl: Lsn },
    /// Segment to a writer of an older epoch than the segment knows: refused (§4.3).
    Fenced { epoch: Epoch },
    /// A segment with a hole asks its peers for the records above its SCL (§3.3: gossip).
    GossipReq { scl: Lsn },
    /// A segment that comes back asks the writers for the records of theirs above its SCL
    /// that it has not acknowledged.
    CatchUp { scl: Lsn },
    /// A peer's answer: the records it has above that SCL, and the truncation it knows.
    GossipRecords {
        records: Vec<Record>,
        truncation: Option<Truncation>,
    },
    /// A recovering writer of epoch `epoch` to every segment (§4.3): from now on refuse older
    /// epochs, and send me what you have.
    Recover { epoch: Epoch },
    /// A segment's answer: its records and the truncation it knows.
    RecoverState {
        epoch: Epoch,
        records: Vec<Record>,
        truncation: Option<Truncation>,
    },
    /// The recovered writer to every segment: truncate the records of older epochs above `above`.
    Truncate { truncation: Truncation },
    /// A read of `key` at read point `point` (§4.2.3): from one segment whose SCL is at least
    /// `point`.
    Read { key: String, point: Lsn },
    /// The segment's answer: the value of `key` as of `point` (`None`: never written).
    ReadReply {
        key: String,
        point: Lsn,
        value: Option<String>,
    },
    /// Over TCP only: a client's `Put` or `Get` at the writer, and its answer (the client
    /// envelope, `models::client`). The model's changes come from the writer's configuration.
    Client(ClientMsg<KvOp, KvRet>),
    /// Over TCP only, the mirrored baseline of Figure 2 ([`Shipping::Pages`]): the writer's
    /// whole page after change `lsn`, to every replica, which stores it and acknowledges with
    /// an `Ack`.
    Page {
        lsn: Lsn,
        epoch: Epoch,
        page: String,
    },
}

/// Timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuroraTimer {
    /// A standby writer decides the writer has failed and takes over (model checking: once, at
    /// any time, so also while the old writer still runs).
    Takeover,
    /// A storage node becomes unavailable (its zone loses power; model checking only). Its
    /// disk survives.
    Fail,
    /// It comes back.
    Restart,
    /// The writer's instance fails (model checking only; over TCP its process is killed): it
    /// stops, and what it sent is still on its way.
    Crash,
    /// The writer's next change arrives (model checking; over TCP a client's request).
    Change,
    /// Over TCP only: the writer sends again what is not yet acknowledged (a connection that
    /// is not up yet, or a node that was down, loses messages; the model's links lose none
    /// but a failed segment's) and retries its recovery's requests.
    Resend,
    /// Over TCP only: a segment with a hole asks its peers and the writer again (§3.3 step 4).
    Gossip,
}

crate::seeded_bugs! {
    /// The paper's pitfalls, seeded (`--bug`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum AuroraBug {
        /// Quorums of 3 of 6 for writes (as for reads): a read quorum can miss a write.
        WriteQuorum3 = "write-quorum-3",
        /// Segments take records of any epoch: the old writer's writes land after a recovery.
        NoEpochFence = "no-epoch-fence",
        /// The writer allocates LSNs without the LSN Allocation Limit.
        NoLal = "no-lal",
        /// A read goes to any segment, not one whose SCL reaches the read point.
        ReadAnySegment = "read-any-segment",
        /// Segments never gossip: a hole stays a hole.
        NoGossip = "no-gossip",
    }
}

/// The quorum sizes (§2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quorums {
    /// Copies of each segment: V.
    pub v: usize,
    /// Write quorum: Vw.
    pub vw: usize,
    /// Read quorum: Vr.
    pub vr: usize,
}

impl Quorums {
    /// §2.1: a read quorum meets every write quorum (Vr + Vw > V), and two write quorums meet
    /// (Vw > V/2).
    pub fn overlap(self) -> bool {
        self.vr + self.vw > self.v && 2 * self.vw > self.v
    }
}

/// A writer's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WriterCfg {
    /// Its own id, which its records carry (segments acknowledge the record's writer).
    pub me: Id,
    /// The protection group's segments, in zone order.
    pub segments: Vec<Id>,
    pub quorums: Quorums,
    /// The LSN Allocation Limit (§4.2.1): no LSN above VDL + LAL.
    pub lal: Lsn,
    /// What it does when it starts:
    pub start: WriterStart,
    /// The page changes it writes when it is the writer (model checking; over TCP a driver's
    /// requests), each `(key, value)`: record `i` of them ends a mini-transaction when
    /// `(i + 1) % mtr == 0` or it is the last; the last is the transaction's commit.
    pub changes: Vec<(String, String)>,
    /// Records per mini-transaction.
    pub mtr: usize,
    /// Read the committed key back at the read point once the commit is acknowledged.
    pub read_back: bool,
    /// When it decides the writer before it failed (a standby), or `None`.
    pub takeover_after: Option<Range<Duration>>,
    /// When it fails (model checking), or `None`.
    pub crash_after: Option<Range<Duration>>,
    pub bug: Option<AuroraBug>,
    /// Over TCP: clients' requests and real timers; `None` in the model, where none of it is
    /// reachable.
    pub tcp: Option<WriterTcp>,
}

/// The most records a writer sends again at each [`AuroraTimer::Resend`].
const RESEND_AT_MOST: usize = 512;

/// What a writer does over TCP only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WriterTcp {
    /// How often it sends again what is not acknowledged ([`AuroraTimer::Resend`]).
    pub resend: Duration,
    /// What crosses the network for each change.
    pub shipping: Shipping,
}

/// What the writer sends its replicas for each change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shipping {
    /// Aurora (§3.2): one redo record, to the six segments; committed at a write quorum.
    Log,
    /// The mirrored baseline of Figure 2: the whole page of `page_bytes` bytes (the writer's
    /// table, padded), to every replica; committed when every replica has it.
    Pages { page_bytes: usize },
}

/// A client's `Get` waiting at the writer (§4.2.3): its read point, and the segment asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingRead {
    pub client: Id,
    pub seq: RequestId,
    pub key: String,
    pub point: Lsn,
    /// The segment it went to, once one whose SCL reaches the read point is known.
    pub at: Option<Id>,
    /// How many times it was sent before.
    pub tries: usize,
}

/// A writer's clients over TCP (always empty in the model).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Serving {
    /// Puts with a record, by LSN: answered once the VDL reaches it (§4.2.2).
    pub pending: BTreeMap<Lsn, (Id, RequestId)>,
    /// Puts waiting for an LSN under the LSN Allocation Limit (§4.2.1).
    pub queued: Vec<(Id, RequestId, String, String)>,
    /// Gets waiting for their segment's answer.
    pub reads: Vec<PendingRead>,
    /// The mirrored baseline's table (its page), and the values committed so far (its reads).
    pub table: BTreeMap<String, String>,
    pub committed_table: BTreeMap<String, String>,
    /// Each client's last put with a record, and its LSN: a retry of it is not run again
    /// (a session table, rebuilt from the log by recovery).
    pub sessions: BTreeMap<Id, (RequestId, Lsn)>,
}

/// How a writer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriterStart {
    /// The first writer of a new volume: epoch 1, nothing to recover.
    Fresh,
    /// A standby: it waits for its `Takeover` timer and then recovers at `epoch`.
    Standby { epoch: Epoch },
    /// Recover at once, at the epoch after the one it kept on disk (over TCP).
    Recover,
}

/// A storage node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentCfg {
    /// The peers it asks to fill a hole (§3.3: gossip): segments in the other zones.
    pub peers: Vec<Id>,
    /// The writers. A segment that comes back asks them for what it missed (the writer
    /// resends the records of its epoch that the segment has not acknowledged); over TCP
    /// there is one, which keeps its id across restarts.
    pub writers: Vec<Id>,
    /// When it becomes unavailable (model checking), or `None`.
    pub fail_after: Option<Range<Duration>>,
    pub bug: Option<AuroraBug>,
    /// Over TCP: keep the records on disk (so a restarted segment comes back with its log),
    /// and ask again for what it misses every this often; `None` in the model.
    pub tcp: Option<Duration>,
}

/// The actors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuroraActor {
    Writer(WriterCfg),
    Segment(SegmentCfg),
    /// Over TCP only: a client that sends its driver's `Put`s and `Get`s to the writer, and
    /// sends an unanswered one again (same request id) every `retry`.
    Client {
        writer: Id,
        driver: Id,
        retry: Duration,
    },
}

/// What a writer is doing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting to take over.
    Standby,
    /// Reading a read quorum (§4.3): the answers so far, by segment.
    Recovering {
        answers: BTreeMap<Id, (Vec<Record>, Option<Truncation>)>,
    },
    /// The writer of its epoch.
    Active,
    /// Refused by a segment that knows a newer epoch: it stops.
    Deposed,
    /// Failed (model checking).
    Crashed,
}

/// A writer's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WriterState {
    pub epoch: Epoch,
    pub phase: Phase,
    /// The truncation its recovery made (`None` for the first writer).
    pub truncation: Option<Truncation>,
    /// Every LSN up to `base` was durable when it became the writer (its recovery's VDL).
    pub base: Lsn,
    /// The records it allocated (above `base`), and for each the segments that acknowledged it.
    pub log: Vec<(Record, Vec<Id>)>,
    /// How many of its changes have arrived.
    pub arrived: usize,
    /// How many of its changes it has allocated records for.
    pub next_change: usize,
    /// The volume complete LSN: every record up to it is at a write quorum (§4.2.1).
    pub vcl: Lsn,
    /// The volume durable LSN: the highest CPL at or below the VCL (§4.2.1).
    pub vdl: Lsn,
    /// The commit it acknowledged, if it did (its LSN).
    pub committed: Option<Lsn>,
    /// The SCL each segment last reported.
    pub scl: BTreeMap<Id, Lsn>,
    /// Its read at the read point: where it sent it, and the answer.
    pub read: Option<(Id, Lsn, Option<Option<String>>)>,
    /// The VDL its recovery computed, if it recovered.
    pub recovered_vdl: Option<Lsn>,
    /// Its clients (over TCP only).
    pub serving: Box<Serving>,
}

/// What a node keeps on disk: a writer its epoch, a segment (over TCP only) its state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuroraStorage {
    Writer { epoch: Epoch },
    Segment(SegmentState),
}

/// A storage node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentState {
    /// Whether it is available (model checking: a zone failure takes it down, its disk
    /// survives).
    pub up: bool,
    /// The newest epoch it knows: it refuses writes of older ones.
    pub epoch: Epoch,
    /// The newest truncation it knows.
    pub truncation: Option<Truncation>,
    /// The writer of the newest epoch it knows, which it asks for what it missed.
    pub writer: Id,
    /// Its redo records, by LSN.
    pub records: BTreeMap<Lsn, Record>,
    /// The mirrored baseline's copy of the page, and the change it is as of (over TCP only).
    pub page: Option<(Lsn, String)>,
}

impl SegmentState {
    /// The segment complete LSN (SCL, §4.2.1): the highest LSN up to which it has every record,
    /// following back links from the start.
    pub fn scl(&self) -> Lsn {
        let mut at = 0;
        for r in self.records.values() {
            if r.prev != at {
                break;
            }
            at = r.lsn;
        }
        at
    }

    /// Whether it has a hole: a record whose back link it cannot follow.
    pub fn has_hole(&self) -> bool {
        self.records.keys().next_back().copied().unwrap_or(0) > self.scl()
    }

    /// The value of `key` as of read point `point`: its change in the last record at or below
    /// `point` that has one (the page rebuilt from redo records, §3.2).
    pub fn read(&self, key: &str, point: Lsn) -> Option<String> {
        self.records
            .range(..=point)
            .rev()
            .find(|(_, r)| r.key == key)
            .map(|(_, r)| r.value.clone())
    }

    /// Applies `t` if it is newer than the truncation it knows: drops the records of older
    /// epochs above its point (§4.3).
    fn truncate(&mut self, t: Truncation) {
        if self.truncation.is_some_and(|old| old.epoch >= t.epoch) {
            return;
        }
        self.truncation = Some(t);
        self.epoch = self.epoch.max(t.epoch);
        self.records
            .retain(|lsn, r| *lsn <= t.above || r.epoch >= t.epoch);
    }

    /// Whether the truncation it knows rules `r` out.
    fn truncated(&self, r: &Record) -> bool {
        self.truncation
            .is_some_and(|t| r.epoch < t.epoch && r.lsn > t.above)
    }
}

/// A state of any actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuroraState {
    Writer(WriterState),
    Segment(SegmentState),
    /// A client over TCP: its request waiting for an answer.
    Client(Option<(RequestId, KvOp)>),
}

impl WriterCfg {
    fn is(&self, bug: AuroraBug) -> bool {
        self.bug == Some(bug)
    }

    fn start(&self, storage: &Option<AuroraStorage>, o: &mut Out<AuroraActor>) -> WriterState {
        let mut s = WriterState {
            epoch: 1,
            phase: Phase::Active,
            truncation: None,
            base: 0,
            log: Vec::new(),
            arrived: 0,
            next_change: 0,
            vcl: 0,
            vdl: 0,
            committed: None,
            scl: BTreeMap::new(),
            read: None,
            recovered_vdl: None,
            serving: Box::default(),
        };
        if let Some(tcp) = &self.tcp {
            o.set_timer(AuroraTimer::Resend, tcp.resend..tcp.resend);
        }
        match (self.start, storage) {
            (WriterStart::Recover, stored) => {
                let epoch = match stored {
                    Some(AuroraStorage::Writer { epoch }) => *epoch,
                    _ => 0,
                } + 1;
                self.recover(&mut s, epoch, o);
            }
            (WriterStart::Standby { epoch }, _) => {
                s.epoch = epoch;
                s.phase = Phase::Standby;
                if let Some(after) = &self.takeover_after {
                    o.set_timer(AuroraTimer::Takeover, after.clone());
                }
            }
            (WriterStart::Fresh, _) => {
                o.save(AuroraStorage::Writer { epoch: 1 });
                if let Some(after) = &self.crash_after {
                    o.set_timer(AuroraTimer::Crash, after.clone());
                }
                self.changes_arrive(o);
            }
        }
        s
    }

    /// Starts recovery at `epoch` (§4.3): fence the older epochs and read a read quorum.
    fn recover(&self, s: &mut WriterState, epoch: Epoch, o: &mut Out<AuroraActor>) {
        s.epoch = epoch;
        s.phase = Phase::Recovering {
            answers: BTreeMap::new(),
        };
        o.save(AuroraStorage::Writer { epoch });
        for seg in &self.segments {
            o.send(*seg, AuroraMsg::Recover { epoch });
        }
    }

    /// Waits for the next of its changes (model checking: a timer stands for a client).
    fn changes_arrive(&self, o: &mut Out<AuroraActor>) {
        if !self.changes.is_empty() {
            o.set_timer(AuroraTimer::Change, model_timeout());
        }
    }

    /// Sends the records its changes need while the LSN Allocation Limit allows (§4.2.1: no
    /// LSN above VDL + LAL).
    fn allocate(&self, s: &mut WriterState, o: &mut Out<AuroraActor>) {
        while s.phase == Phase::Active && s.next_change < s.arrived {
            let lsn = s.base + s.log.len() as Lsn + 1;
            if lsn > s.vdl + self.lal && !self.is(AuroraBug::NoLal) {
                return;
            }
            let i = s.next_change;
            let (key, value) = self.changes[i].clone();
            let record = Record {
                lsn,
                prev: lsn - 1,
                epoch: s.epoch,
                writer: self.me,
                cpl: (i + 1) % self.mtr == 0 || i + 1 == self.changes.len(),
                key,
                value,
                client: None,
            };
            for seg in &self.segments {
                o.send(
                    *seg,
                    AuroraMsg::Write {
                        record: record.clone(),
                        truncation: s.truncation,
                    },
                );
            }
            s.log.push((record, Vec::new()));
            s.next_change += 1;
        }
    }

    /// The write quorum; the mirrored baseline waits for every replica.
    fn vw(&self) -> usize {
        match self.pages() {
            Some(_) => self.segments.len(),
            None => self.quorums.vw,
        }
    }

    /// The page size when it ships whole pages (the mirrored baseline over TCP).
    fn pages(&self) -> Option<usize> {
        match &self.tcp {
            Some(WriterTcp {
                shipping: Shipping::Pages { page_bytes },
                ..
            }) => Some(*page_bytes),
            _ => None,
        }
    }

    /// Sends `record` to `to` (every segment if `None`): the redo record, or in the mirrored
    /// baseline the whole page as it is now.
    fn ship(&self, s: &WriterState, record: &Record, to: Option<Id>, o: &mut Out<AuroraActor>) {
        let dsts = to.map_or_else(|| self.segments.clone(), |d| vec![d]);
        match self.pages() {
            None => {
                for d in dsts {
                    o.send(
                        d,
                        AuroraMsg::Write {
                            record: record.clone(),
                            truncation: s.truncation,
                        },
                    );
                }
            }
            Some(page_bytes) => {
                let mut page: String = s
                    .serving
                    .table
                    .iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect();
                if page.len() < page_bytes {
                    page.push_str(&" ".repeat(page_bytes - page.len()));
                }
                for d in dsts {
                    o.send(
                        d,
                        AuroraMsg::Page {
                            lsn: record.lsn,
                            epoch: s.epoch,
                            page: page.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Over TCP: a record of its own for the change `key = value`, shipped; its LSN. Each is
    /// a mini-transaction of its own (a CPL).
    fn new_record(
        &self,
        s: &mut WriterState,
        key: String,
        value: String,
        client: Option<(Id, RequestId)>,
        o: &mut Out<AuroraActor>,
    ) -> Lsn {
        let lsn = s.base + s.log.len() as Lsn + 1;
        if self.pages().is_some() {
            s.serving.table.insert(key.clone(), value.clone());
        }
        let record = Record {
            lsn,
            prev: lsn - 1,
            epoch: s.epoch,
            writer: self.me,
            cpl: true,
            key,
            value,
            client,
        };
        if let Some((c, seq)) = client {
            s.serving.sessions.insert(c, (seq, lsn));
        }
        self.ship(s, &record, None, o);
        s.log.push((record, Vec::new()));
        lsn
    }

    /// Over TCP: records for the queued puts while the LSN Allocation Limit allows (§4.2.1).
    fn allocate_requests(&self, s: &mut WriterState, o: &mut Out<AuroraActor>) {
        while s.phase == Phase::Active && !s.serving.queued.is_empty() {
            let lsn = s.base + s.log.len() as Lsn + 1;
            if lsn > s.vdl + self.lal && !self.is(AuroraBug::NoLal) {
                return;
            }
            let (client, seq, key, value) = s.serving.queued.remove(0);
            let lsn = self.new_record(s, key, value, Some((client, seq)), o);
            s.serving.pending.insert(lsn, (client, seq));
        }
    }

    /// Over TCP: sends each waiting `Get` to a segment whose SCL reaches its read point
    /// (§4.2.3: one segment, no read quorum), spreading them over the eligible ones.
    fn dispatch_reads(&self, s: &mut WriterState, o: &mut Out<AuroraActor>) {
        let n = self.segments.len();
        for read in s.serving.reads.iter_mut().filter(|r| r.at.is_none()) {
            let first = read.seq as usize + read.tries;
            let at = if self.is(AuroraBug::ReadAnySegment) {
                self.segments.get(first % n).copied()
            } else {
                (0..n)
                    .map(|i| self.segments[(i + first) % n])
                    .find(|seg| s.scl.get(seg).is_some_and(|scl| *scl >= read.point))
            };
            if let Some(at) = at {
                read.at = Some(at);
                o.send(
                    at,
                    AuroraMsg::Read {
                        key: read.key.clone(),
                        point: read.point,
                    },
                );
            }
        }
    }

    /// Over TCP: answers the puts the VDL has reached (§4.2.2), sends the waiting reads,
    /// allocates for the queued puts, and forgets the records every segment has (the
    /// writer keeps a record until then, to send it again).
    fn serve_clients(&self, s: &mut WriterState, o: &mut Out<AuroraActor>) {
        let later = s.serving.pending.split_off(&(s.vdl + 1));
        let durable = std::mem::replace(&mut s.serving.pending, later);
        for (lsn, (client, seq)) in durable {
            if self.pages().is_some() {
                if let Some((r, _)) = lsn
                    .checked_sub(s.base + 1)
                    .and_then(|i| s.log.get(i as usize))
                {
                    s.serving
                        .committed_table
                        .insert(r.key.clone(), r.value.clone());
                }
            }
            o.send(
                client,
                AuroraMsg::Client(ClientMsg::Reply {
                    seq,
                    ret: KvRet::Ok,
                }),
            );
        }
        self.dispatch_reads(s, o);
        self.allocate_requests(s, o);
        let everywhere = s
            .log
            .iter()
            .take_while(|(r, acks)| acks.len() == self.segments.len() && r.lsn <= s.vdl)
            .count();
        if everywhere > 0 {
            s.base = s.log[everywhere - 1].0.lsn;
            s.log.drain(..everywhere);
        }
    }

    /// Over TCP, every [`WriterTcp::resend`]: the recovery's requests to the segments that
    /// have not answered, each record to the segments that have not acknowledged it, and each
    /// read to another segment.
    fn resend(&self, s: &mut WriterState, o: &mut Out<AuroraActor>) {
        let Some(tcp) = &self.tcp else { return };
        o.set_timer(AuroraTimer::Resend, tcp.resend..tcp.resend);
        match &s.phase {
            Phase::Recovering { answers } => {
                for seg in self
                    .segments
                    .iter()
                    .filter(|seg| !answers.contains_key(seg))
                {
                    o.send(*seg, AuroraMsg::Recover { epoch: s.epoch });
                }
            }
            Phase::Active => {
                for (r, acks) in s.log.iter().take(RESEND_AT_MOST) {
                    for seg in self.segments.iter().filter(|seg| !acks.contains(seg)) {
                        self.ship(s, r, Some(*seg), o);
                    }
                }
                for read in s.serving.reads.iter_mut().filter(|r| r.at.is_some()) {
                    // Unanswered (the segment may be down): the next attempt starts its
                    // search at the next segment.
                    read.at = None;
                    read.tries += 1;
                }
                self.dispatch_reads(s, o);
            }
            _ => {}
        }
    }

    /// Recomputes VCL and VDL (§4.2.1), acknowledges the commit once VDL reaches it, reads it
    /// back, and allocates what the LAL now allows.
    fn advance(&self, s: &mut WriterState, o: &mut Out<AuroraActor>) {
        let vw = self.vw();
        // Acknowledgements only add, so the VCL only grows within an epoch: the scan starts
        // where it is rather than at the first record.
        let mut vcl = s.vcl.max(s.base);
        let mut vdl = s.vdl.max(s.base);
        for (r, acks) in &s.log[(vcl - s.base) as usize..] {
            if acks.len() < vw {
                break;
            }
            vcl = r.lsn;
            if r.cpl {
                vdl = vdl.max(r.lsn);
            }
        }
        s.vcl = vcl;
        s.vdl = vdl;
        if s.committed.is_none() && s.next_change == self.changes.len() {
            if let Some((commit, _)) = s.log.last() {
                if s.vdl >= commit.lsn {
                    s.committed = Some(commit.lsn);
                }
            }
        }
        if let (Some(_), None, true) = (s.committed, &s.read, self.read_back) {
            let (key, _) = self.changes.last().expect("a commit has a change").clone();
            let point = s.vdl;
            // §4.2.3: a segment whose SCL reaches the read point has every record up to it.
            let at = if self.is(AuroraBug::ReadAnySegment) {
                self.segments.first().copied()
            } else {
                self.segments
                    .iter()
                    .find(|seg| s.scl.get(seg).is_some_and(|scl| *scl >= point))
                    .copied()
            };
            if let Some(at) = at {
                o.send(at, AuroraMsg::Read { key, point });
                s.read = Some((at, point, None));
            }
        }
        if self.tcp.is_some() {
            self.serve_clients(s, o);
        }
        self.allocate(s, o);
    }

    /// Computes the VDL from a read quorum's answers (§4.3): the records they have, the newest
    /// epoch's for each LSN and none that a known truncation ruled out, followed by back links
    /// from the start; the VDL is the last CPL on that chain. Returns the records up to it too.
    pub fn recovered(
        answers: &BTreeMap<Id, (Vec<Record>, Option<Truncation>)>,
    ) -> (Lsn, Vec<Record>) {
        let truncation = answers.values().filter_map(|(_, t)| *t).max();
        let mut by_lsn: BTreeMap<Lsn, &Record> = BTreeMap::new();
        for r in answers.values().flat_map(|(rs, _)| rs) {
            if truncation.is_some_and(|t| r.epoch < t.epoch && r.lsn > t.above) {
                continue;
            }
            if by_lsn.get(&r.lsn).is_none_or(|old| old.epoch < r.epoch) {
                by_lsn.insert(r.lsn, r);
            }
        }
        let mut chain = Vec::new();
        let mut at = 0;
        for r in by_lsn.values() {
            if r.prev != at {
                break;
            }
            at = r.lsn;
            chain.push((*r).clone());
        }
        let vdl = chain
            .iter()
            .filter(|r| r.cpl)
            .map(|r| r.lsn)
            .max()
            .unwrap_or(0);
        chain.retain(|r| r.lsn <= vdl);
        (vdl, chain)
    }

    fn on_msg(
        &self,
        s: &WriterState,
        src: Id,
        msg: AuroraMsg,
        o: &mut Out<AuroraActor>,
    ) -> Option<WriterState> {
        let mut s = s.clone();
        match msg {
            AuroraMsg::Ack { lsn, epoch, scl } if epoch == s.epoch => {
                s.scl.insert(src, scl);
                if lsn > s.base {
                    let (_, acks) = s.log.get_mut((lsn - s.base - 1) as usize)?;
                    if !acks.contains(&src) {
                        acks.push(src);
                        acks.sort();
                    }
                }
                if s.phase == Phase::Active {
                    self.advance(&mut s, o);
                }
            }
            AuroraMsg::Fenced { epoch } if epoch > s.epoch => {
                s.phase = Phase::Deposed;
            }
            AuroraMsg::RecoverState {
                epoch,
                records,
                truncation,
            } if epoch == s.epoch => {
                let Phase::Recovering { answers } = &mut s.phase else {
                    return None;
                };
                answers.insert(src, (records, truncation));
                if answers.len() < self.quorums.vr {
                    return Some(s);
                }
                let (vdl, chain) = Self::recovered(answers);
                let truncation = Truncation {
                    epoch: s.epoch,
                    above: vdl,
                };
                s.phase = Phase::Active;
                s.truncation = Some(truncation);
                s.recovered_vdl = Some(vdl);
                s.base = vdl;
                s.vcl = vdl;
                s.vdl = vdl;
                self.changes_arrive(o);
                if self.tcp.is_some() {
                    // Over TCP, a first record of the new epoch (an empty change, which no
                    // client's key names) carries the truncation to the segments, and their
                    // acknowledgements tell which of them reads may go to.
                    for read in &mut s.serving.reads {
                        read.point = vdl;
                    }
                    for r in chain.iter().rev() {
                        if let Some((c, seq)) = r.client {
                            s.serving.sessions.entry(c).or_insert((seq, r.lsn));
                        }
                    }
                    // Puts that arrived during the recovery and are in the log already (a
                    // client's retry) are answered, not run again.
                    let sessions = s.serving.sessions.clone();
                    s.serving
                        .queued
                        .retain(|(c, seq, _, _)| match sessions.get(c) {
                            Some((done, _)) if seq <= done => {
                                if seq == done {
                                    let ret = KvRet::Ok;
                                    let reply = ClientMsg::Reply { seq: *seq, ret };
                                    o.send(*c, AuroraMsg::Client(reply));
                                }
                                false
                            }
                            _ => true,
                        });
                    self.new_record(&mut s, String::new(), String::new(), None, o);
                    self.allocate_requests(&mut s, o);
                }
            }
            // A segment that came back asks the writer too: it resends what that segment has
            // not acknowledged above its SCL (the writer has every record of its epoch).
            AuroraMsg::CatchUp { scl } if s.phase == Phase::Active => {
                let records: Vec<Record> = s
                    .log
                    .iter()
                    .filter(|(r, acks)| r.lsn > scl && !acks.contains(&src))
                    .map(|(r, _)| r.clone())
                    .collect();
                if !records.is_empty() {
                    o.send(
                        src,
                        AuroraMsg::GossipRecords {
                            records,
                            truncation: s.truncation,
                        },
                    );
                }
                return None;
            }
            AuroraMsg::Client(ClientMsg::Request { client, seq, op })
                if self.tcp.is_some()
                    && matches!(s.phase, Phase::Active | Phase::Recovering { .. }) =>
            {
                match op {
                    KvOp::Put(key, value) => {
                        // A retry: answered if its record is durable, else it waits for it.
                        if let Some((done, lsn)) = s.serving.sessions.get(&client) {
                            if seq == *done && *lsn <= s.vdl {
                                let ret = KvRet::Ok;
                                o.send(client, AuroraMsg::Client(ClientMsg::Reply { seq, ret }));
                            }
                            if seq <= *done {
                                return None;
                            }
                        }
                        if s.serving.queued.iter().any(|q| (q.0, q.1) == (client, seq)) {
                            return None;
                        }
                        s.serving.queued.push((client, seq, key, value));
                        self.allocate_requests(&mut s, o);
                    }
                    // The mirrored baseline reads its own committed table (its buffer cache).
                    KvOp::Get(key) if self.pages().is_some() => {
                        let value = s.serving.committed_table.get(&key).cloned();
                        let ret = KvRet::Value(value.unwrap_or_default());
                        o.send(client, AuroraMsg::Client(ClientMsg::Reply { seq, ret }));
                        return None;
                    }
                    KvOp::Get(_)
                        if s.serving
                            .reads
                            .iter()
                            .any(|r| (r.client, r.seq) == (client, seq)) =>
                    {
                        return None;
                    }
                    KvOp::Get(key) => {
                        // Recovering: the read point is the VDL the recovery computes.
                        let point = s.vdl;
                        s.serving.reads.push(PendingRead {
                            client,
                            seq,
                            key,
                            point,
                            at: None,
                            tries: 0,
                        });
                        self.dispatch_reads(&mut s, o);
                    }
                    // Not a change this table takes: no answer.
                    KvOp::Append(..) => return None,
                }
            }
            AuroraMsg::ReadReply { key, point, value } if self.tcp.is_some() => {
                let before = s.serving.reads.len();
                s.serving.reads.retain(|r| {
                    let answered = r.at == Some(src) && r.key == key && r.point == point;
                    if answered {
                        let ret = KvRet::Value(value.clone().unwrap_or_default());
                        o.send(
                            r.client,
                            AuroraMsg::Client(ClientMsg::Reply { seq: r.seq, ret }),
                        );
                    }
                    !answered
                });
                if s.serving.reads.len() == before {
                    return None;
                }
            }
            AuroraMsg::ReadReply { point, value, .. } => match &mut s.read {
                Some((at, p, answer @ None)) if *at == src && *p == point => *answer = Some(value),
                _ => return None,
            },
            _ => return None,
        }
        Some(s)
    }
}

impl SegmentCfg {
    fn is(&self, bug: AuroraBug) -> bool {
        self.bug == Some(bug)
    }

    fn start(&self, storage: &Option<AuroraStorage>, o: &mut Out<AuroraActor>) -> SegmentState {
        if let Some(after) = &self.fail_after {
            o.set_timer(AuroraTimer::Fail, after.clone());
        }
        if let Some(every) = self.tcp {
            o.set_timer(AuroraTimer::Gossip, every..every);
            // Restarted over TCP: back with its log, it asks the writer for what it missed.
            if let Some(AuroraStorage::Segment(saved)) = storage {
                let mut s = saved.clone();
                s.up = true;
                for w in &self.writers {
                    o.send(*w, AuroraMsg::CatchUp { scl: s.scl() });
                }
                return s;
            }
        }
        SegmentState {
            up: true,
            epoch: 0,
            truncation: None,
            writer: self.writers.first().copied().unwrap_or(Id::from(0)),
            records: BTreeMap::new(),
            page: None,
        }
    }

    /// Stores `r` unless a fence or a truncation refuses it; `true` if it is new here.
    fn store(&self, s: &mut SegmentState, r: Record) -> bool {
        if s.truncated(&r) && !self.is(AuroraBug::NoEpochFence) {
            return false;
        }
        match s.records.get(&r.lsn) {
            Some(old) if *old == r => false,
            Some(old) if old.epoch > r.epoch && !self.is(AuroraBug::NoEpochFence) => false,
            _ => {
                s.records.insert(r.lsn, r);
                true
            }
        }
    }

    /// A record it cannot follow back to its SCL opens a hole: it asks its peers for what lies
    /// above its SCL (§3.3 step 4: gossip with peers to fill in gaps), and the writer it knows
    /// (whose records a peer may not have yet).
    fn gossip_if_new_hole(&self, s: &SegmentState, before: bool, o: &mut Out<AuroraActor>) {
        if s.has_hole() && !before && !self.is(AuroraBug::NoGossip) {
            for p in &self.peers {
                o.send(*p, AuroraMsg::GossipReq { scl: s.scl() });
            }
            o.send(s.writer, AuroraMsg::CatchUp { scl: s.scl() });
        }
    }

    fn on_msg(
        &self,
        s: &SegmentState,
        src: Id,
        msg: AuroraMsg,
        o: &mut Out<AuroraActor>,
    ) -> Option<SegmentState> {
        if !s.up {
            // Unavailable: what reaches it is lost.
            return None;
        }
        let mut s = s.clone();
        match msg {
            AuroraMsg::Write { record, truncation } => {
                if record.epoch < s.epoch && !self.is(AuroraBug::NoEpochFence) {
                    o.send(src, AuroraMsg::Fenced { epoch: s.epoch });
                    return None;
                }
                if let Some(t) = truncation {
                    s.truncate(t);
                }
                if record.epoch >= s.epoch {
                    s.writer = src;
                }
                s.epoch = s.epoch.max(record.epoch);
                let (lsn, epoch) = (record.lsn, record.epoch);
                let hole = s.has_hole();
                self.store(&mut s, record);
                self.gossip_if_new_hole(&s, hole, o);
                o.send(
                    src,
                    AuroraMsg::Ack {
                        lsn,
                        epoch,
                        scl: s.scl(),
                    },
                );
            }
            AuroraMsg::GossipReq { scl } => {
                let records: Vec<Record> =
                    s.records.range(scl + 1..).map(|(_, r)| r.clone()).collect();
                if !records.is_empty() {
                    o.send(
                        src,
                        AuroraMsg::GossipRecords {
                            records,
                            truncation: s.truncation,
                        },
                    );
                }
                return None;
            }
            AuroraMsg::GossipRecords {
                records,
                truncation,
            } => {
                if let Some(t) = truncation {
                    s.truncate(t);
                }
                let hole = s.has_hole();
                for r in records {
                    let (lsn, epoch, writer) = (r.lsn, r.epoch, r.writer);
                    if self.store(&mut s, r) && epoch >= s.epoch {
                        let scl = s.scl();
                        o.send(writer, AuroraMsg::Ack { lsn, epoch, scl });
                    }
                }
                self.gossip_if_new_hole(&s, hole, o);
            }
            AuroraMsg::Recover { epoch } => {
                if epoch >= s.epoch {
                    s.writer = src;
                }
                s.epoch = s.epoch.max(epoch);
                o.send(
                    src,
                    AuroraMsg::RecoverState {
                        epoch,
                        records: s.records.values().cloned().collect(),
                        truncation: s.truncation,
                    },
                );
            }
            AuroraMsg::Truncate { truncation } => s.truncate(truncation),
            // The mirrored baseline: the whole page replaces the replica's copy.
            AuroraMsg::Page { lsn, epoch, page } if self.tcp.is_some() => {
                if epoch < s.epoch {
                    o.send(src, AuroraMsg::Fenced { epoch: s.epoch });
                    return None;
                }
                s.epoch = epoch;
                if s.page.as_ref().is_none_or(|(at, _)| *at < lsn) {
                    s.page = Some((lsn, page));
                }
                o.send(
                    src,
                    AuroraMsg::Ack {
                        lsn,
                        epoch,
                        scl: lsn,
                    },
                );
            }
            AuroraMsg::Read { key, point } => {
                let value = s.read(&key, point);
                o.send(src, AuroraMsg::ReadReply { key, point, value });
                return None;
            }
            _ => return None,
        }
        Some(s)
    }

    fn on_timeout(
        &self,
        s: &SegmentState,
        timer: AuroraTimer,
        o: &mut Out<AuroraActor>,
    ) -> Option<SegmentState> {
        let mut s = s.clone();
        match timer {
            AuroraTimer::Fail if s.up => {
                s.up = false;
                o.set_timer(AuroraTimer::Restart, model_timeout());
            }
            AuroraTimer::Gossip => {
                let every = self.tcp?;
                o.set_timer(AuroraTimer::Gossip, every..every);
                if s.has_hole() && !self.is(AuroraBug::NoGossip) {
                    for p in &self.peers {
                        o.send(*p, AuroraMsg::GossipReq { scl: s.scl() });
                    }
                    o.send(s.writer, AuroraMsg::CatchUp { scl: s.scl() });
                }
                return None;
            }
            AuroraTimer::Restart if !s.up => {
                s.up = true;
                // Back: ask the writers for what it missed.
                if !self.is(AuroraBug::NoGossip) {
                    for w in &self.writers {
                        o.send(*w, AuroraMsg::CatchUp { scl: s.scl() });
                    }
                }
            }
            _ => return None,
        }
        Some(s)
    }
}

impl Actor for AuroraActor {
    type Msg = AuroraMsg;
    type Timer = AuroraTimer;
    type State = AuroraState;
    /// A writer's epoch; over TCP, a segment's log too.
    type Storage = AuroraStorage;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<AuroraStorage>, o: &mut Out<Self>) -> AuroraState {
        match self {
            AuroraActor::Writer(cfg) => AuroraState::Writer(cfg.start(storage, o)),
            AuroraActor::Segment(cfg) => AuroraState::Segment(cfg.start(storage, o)),
            AuroraActor::Client { .. } => AuroraState::Client(None),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<AuroraState>,
        src: Id,
        msg: AuroraMsg,
        o: &mut Out<Self>,
    ) {
        let next = match (self, &**state) {
            (AuroraActor::Writer(cfg), AuroraState::Writer(s))
                if !matches!(s.phase, Phase::Deposed | Phase::Crashed) =>
            {
                cfg.on_msg(s, src, msg, o).map(AuroraState::Writer)
            }
            (AuroraActor::Segment(cfg), AuroraState::Segment(s)) => {
                let next = cfg.on_msg(s, src, msg, o);
                if let (Some(next), Some(_)) = (&next, cfg.tcp) {
                    // Over TCP its log is on disk before its acknowledgements leave (the
                    // runtime saves a step's storage before it sends).
                    if next != s {
                        o.save(AuroraStorage::Segment(next.clone()));
                    }
                }
                next.map(AuroraState::Segment)
            }
            (
                AuroraActor::Client {
                    writer,
                    driver,
                    retry,
                },
                AuroraState::Client(waiting),
            ) => match msg {
                AuroraMsg::Client(ClientMsg::Invoke { seq, op }) if src == *driver => {
                    let client = id;
                    o.send(
                        *writer,
                        AuroraMsg::Client(ClientMsg::Request {
                            client,
                            seq,
                            op: op.clone(),
                        }),
                    );
                    o.set_timer(AuroraTimer::Resend, *retry..*retry);
                    Some(AuroraState::Client(Some((seq, op))))
                }
                AuroraMsg::Client(ClientMsg::Reply { seq, ret })
                    if waiting.as_ref().is_some_and(|(w, _)| *w == seq) =>
                {
                    o.send(*driver, AuroraMsg::Client(ClientMsg::Return { seq, ret }));
                    o.cancel_timer(AuroraTimer::Resend);
                    Some(AuroraState::Client(None))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<AuroraState>,
        timer: &AuroraTimer,
        o: &mut Out<Self>,
    ) {
        let next = match (self, &**state, timer) {
            (AuroraActor::Writer(_), AuroraState::Writer(s), AuroraTimer::Crash)
                if s.phase != Phase::Crashed =>
            {
                let mut s = s.clone();
                s.phase = Phase::Crashed;
                Some(AuroraState::Writer(s))
            }
            (AuroraActor::Writer(cfg), AuroraState::Writer(s), AuroraTimer::Change)
                if s.phase == Phase::Active && s.arrived < cfg.changes.len() =>
            {
                let mut s = s.clone();
                s.arrived += 1;
                if s.arrived < cfg.changes.len() {
                    o.set_timer(AuroraTimer::Change, model_timeout());
                }
                cfg.allocate(&mut s, o);
                Some(AuroraState::Writer(s))
            }
            (
                AuroraActor::Client { writer, retry, .. },
                AuroraState::Client(Some((seq, op))),
                AuroraTimer::Resend,
            ) => {
                let request = ClientMsg::Request {
                    client: id,
                    seq: *seq,
                    op: op.clone(),
                };
                o.send(*writer, AuroraMsg::Client(request));
                o.set_timer(AuroraTimer::Resend, *retry..*retry);
                None
            }
            (AuroraActor::Writer(cfg), AuroraState::Writer(s), AuroraTimer::Resend)
                if cfg.tcp.is_some() && !matches!(s.phase, Phase::Deposed | Phase::Crashed) =>
            {
                let mut s = s.clone();
                cfg.resend(&mut s, o);
                Some(AuroraState::Writer(s))
            }
            (AuroraActor::Writer(cfg), AuroraState::Writer(s), AuroraTimer::Takeover)
                if s.phase == Phase::Standby =>
            {
                let mut s = s.clone();
                let epoch = s.epoch;
                cfg.recover(&mut s, epoch, o);
                Some(AuroraState::Writer(s))
            }
            (AuroraActor::Segment(cfg), AuroraState::Segment(s), t) => {
                cfg.on_timeout(s, *t, o).map(AuroraState::Segment)
            }
            _ => None,
        };
        if let Some(next) = next {
            *state = Cow::Owned(next);
        }
    }
}
