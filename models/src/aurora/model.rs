//! The checked model: two writers (the first, and a standby that takes over at the next epoch)
//! and the six segments of one protection group in one `ActorModel` over ordered links, in the
//! workbench's [`Harness`] (zone failures are the segments' own `Fail` and `Restart` timers, not
//! the harness's crashes), with history variables for what the properties read.

use stateright::actor::{model_timeout, ActorModel, ActorModelAction, Id, Network};
use stateright::Property;

use super::actor::{
    AuroraActor, AuroraBug, AuroraMsg, AuroraState, AuroraTimer, Epoch, Lsn, Quorums, SegmentCfg,
    SegmentState, WriterCfg, WriterStart, WriterState,
};
use crate::harness::{HAction, HState, Harness, Harnessed};

/// The first writer runs at id 0, the standby at 1, the segments after them.
pub const WRITER: usize = 0;
pub const STANDBY: usize = 1;
pub const FIRST_SEGMENT: usize = 2;

/// The key the writers change.
pub const KEY: &str = "x";

/// How many availability zones the segments are spread over (§2.1: 3, 2 copies in each).
pub const ZONES: usize = 3;

/// Which segments become unavailable (each once, and comes back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failures {
    None,
    /// The segments of one zone.
    Zone,
    /// The segments of one zone and one more (§2.1: "AZ+1").
    ZonePlusOne,
}

impl Failures {
    pub const NAMES: &'static [&'static str] = &["zone+1", "zone", "none"];

    pub fn from_name(name: &str) -> Option<Failures> {
        match name {
            "none" => Some(Failures::None),
            "zone" => Some(Failures::Zone),
            "zone+1" => Some(Failures::ZonePlusOne),
            _ => None,
        }
    }
}

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuroraCfg {
    pub quorums: Quorums,
    /// Changes each writer makes: its transaction's records; the last is the commit.
    pub records: usize,
    /// Records per mini-transaction.
    pub mtr: usize,
    /// The LSN Allocation Limit.
    pub lal: Lsn,
    pub failures: Failures,
    /// Whether the first writer fails and the standby takes over (once).
    pub takeover: bool,
    /// Whether the standby may take over while the first writer still runs (a failure
    /// detector's mistake), not only once it has failed.
    pub zombie: bool,
    /// Whether each writer reads its commit back at the read point.
    pub read_back: bool,
    /// Whether a segment's request to the writer for what it missed travels (or is answered
    /// in the step that sends it).
    pub delayed_catch_up: bool,
    pub bug: Option<AuroraBug>,
}

impl Default for AuroraCfg {
    fn default() -> Self {
        AuroraCfg {
            quorums: Quorums { v: 6, vw: 4, vr: 3 },
            records: 2,
            mtr: 1,
            lal: 1,
            failures: Failures::ZonePlusOne,
            takeover: true,
            zombie: false,
            read_back: true,
            delayed_catch_up: false,
            bug: None,
        }
    }
}

impl AuroraCfg {
    pub fn segment_ids(&self) -> Vec<Id> {
        (0..self.quorums.v)
            .map(|i| Id::from(FIRST_SEGMENT + i))
            .collect()
    }

    /// Segment `i`'s zone (segments are numbered zone by zone).
    pub fn zone(&self, i: usize) -> usize {
        i * ZONES / self.quorums.v
    }

    /// The segments that fail: the first zone's, and for AZ+1 the next one.
    pub fn failing(&self) -> Vec<usize> {
        let zone: Vec<usize> = (0..self.quorums.v).filter(|i| self.zone(*i) == 0).collect();
        match self.failures {
            Failures::None => Vec::new(),
            Failures::Zone => zone,
            Failures::ZonePlusOne => {
                let next = zone.len();
                zone.into_iter().chain([next]).collect()
            }
        }
    }

    /// Writer `w`'s changes: `x = a1, a2, ...` for the first, `x = b1` for the standby (its
    /// commit after the recovery).
    fn changes(&self, w: usize) -> Vec<(String, String)> {
        let (tag, n) = if w == WRITER {
            ('a', self.records)
        } else {
            ('b', 1)
        };
        (1..=n)
            .map(|i| (KEY.to_string(), format!("{tag}{i}")))
            .collect()
    }

    pub fn into_model(mut self) -> AuroraModel {
        if self.bug == Some(AuroraBug::WriteQuorum3) {
            self.quorums.vw = 3;
        }
        let segments = self.segment_ids();
        let writer = |w: usize, start: WriterStart| {
            AuroraActor::Writer(WriterCfg {
                me: Id::from(w),
                segments: segments.clone(),
                quorums: self.quorums,
                lal: self.lal,
                start,
                changes: self.changes(w),
                mtr: self.mtr,
                read_back: self.read_back,
                takeover_after: (w == STANDBY && self.takeover).then(model_timeout),
                crash_after: (w == WRITER && self.takeover).then(model_timeout),
                bug: self.bug,
                tcp: None,
            })
        };
        let mut actors = vec![
            writer(WRITER, WriterStart::Fresh),
            writer(STANDBY, WriterStart::Standby { epoch: 2 }),
        ];
        let failing = self.failing();
        for (i, id) in segments.iter().enumerate() {
            // Gossip peers: the segments at the same place in the other zones.
            let per_zone = self.quorums.v / ZONES;
            let peers = (1..ZONES)
                .map(|z| segments[(i + z * per_zone) % segments.len()])
                .filter(|p| p != id)
                .collect();
            actors.push(AuroraActor::Segment(SegmentCfg {
                peers,
                writers: vec![Id::from(WRITER), Id::from(STANDBY)],
                fail_after: failing.contains(&i).then(model_timeout),
                bug: self.bug,
                tcp: None,
            }));
        }
        let inner = ActorModel::new(self, AuroraHistory::default())
            .actors(actors)
            .init_network(Network::new_ordered([]))
            .record_msg_in(record_in);
        Harness::new(inner, 0)
    }
}

/// A peer's gossip reaches a segment: it asked because it had a hole (writers' resends come
/// from writers).
fn record_in(
    _: &AuroraCfg,
    h: &AuroraHistory,
    env: stateright::actor::Envelope<&AuroraMsg>,
) -> Option<AuroraHistory> {
    let from_peer = usize::from(env.src) >= FIRST_SEGMENT;
    if matches!(env.msg, AuroraMsg::GossipRecords { .. }) && from_peer && !h.hole_filled {
        let mut h = h.clone();
        h.hole_filled = true;
        return Some(h);
    }
    None
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AuroraHistory {
    /// Every commit a writer acknowledged: (its epoch, its LSN).
    pub acked: Vec<(Epoch, Lsn)>,
    /// Every recovery: (its epoch, the VDL it computed).
    pub recoveries: Vec<(Epoch, Lsn)>,
    /// A commit was acknowledged while a whole zone was unavailable.
    pub acked_zone_down: bool,
    /// A recovery computed its VDL while a zone and one more segment were unavailable.
    pub recovered_zone_plus_one_down: bool,
    /// A truncation removed a record from a segment.
    pub truncated: bool,
    /// A peer's gossip reached a segment with a hole.
    pub hole_filled: bool,
}

pub type AuroraModelState = HState<Aurora>;
pub type AuroraAction = HAction<Aurora>;

/// The Aurora model.
pub type AuroraModel = Harness<Aurora>;

/// The Aurora model's part of the [`Harness`].
pub struct Aurora;

/// What the history variables need to know about a step: its actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step(Option<Id>);

impl Harnessed for Aurora {
    type Actor = AuroraActor;
    type Cfg = AuroraCfg;
    type History = AuroraHistory;
    type Step = Step;

    fn step_of(action: &AuroraAction) -> Step {
        match action {
            ActorModelAction::Deliver { dst, .. } => Step(Some(*dst)),
            ActorModelAction::Timeout(id, _) => Step(Some(*id)),
            _ => Step(None),
        }
    }

    /// Zone failures are the segments' timers, not the harness's crashes.
    fn crashes(_: &AuroraHistory) -> usize {
        0
    }

    fn count_crash(_: &mut AuroraHistory) {}

    fn may_crash(_: &AuroraModel, _: &AuroraModelState, _: usize) -> bool {
        false
    }

    /// Writes and replies are delivered in the step that sends them: a broadcast reaches every
    /// available segment at once, and a reply its sender at once (the model's one reduction:
    /// which segments a record misses comes from which are unavailable, not from delays; a
    /// segment that is down loses what reaches it). Requests that start something are delivered
    /// one by one: a recovery's (any read quorum may answer first) and a segment's request to
    /// the writer for what it missed, with `delayed_catch_up` (so that a writer may acknowledge
    /// above a hole, fail or read before it comes; it multiplies the states by more than three).
    fn immediate(m: &AuroraModel, msg: &AuroraMsg) -> bool {
        match msg {
            AuroraMsg::Recover { .. } => false,
            AuroraMsg::CatchUp { .. } => !m.cfg().delayed_catch_up,
            _ => true,
        }
    }

    /// The standby takes over once the writer has failed (the failure detector is right),
    /// or at any time with `zombie`.
    fn allow(m: &AuroraModel, s: &AuroraModelState, a: &AuroraAction) -> bool {
        match a {
            ActorModelAction::Timeout(_, AuroraTimer::Takeover) => {
                m.cfg().zombie
                    || matches!(&*s.actor_states[WRITER], AuroraState::Writer(w) if w.phase == super::actor::Phase::Crashed)
            }
            _ => true,
        }
    }

    fn record(
        m: &AuroraModel,
        prev: Option<(&AuroraModelState, Step)>,
        next: &mut AuroraModelState,
    ) {
        let Some((last, _)) = prev else {
            return;
        };
        // (Immediate replies change other actors in the same step: every actor is compared.)
        for i in 0..next.actor_states.len() {
            match (&*last.actor_states[i], &*next.actor_states[i]) {
                (AuroraState::Writer(a), AuroraState::Writer(b)) => {
                    if a.committed.is_none() {
                        if let Some(c) = b.committed {
                            next.history.acked.push((b.epoch, c));
                            if zone_down(m, next) {
                                next.history.acked_zone_down = true;
                            }
                        }
                    }
                    if a.recovered_vdl.is_none() {
                        if let Some(v) = b.recovered_vdl {
                            next.history.recoveries.push((b.epoch, v));
                            if zone_plus_one_down(m, next) {
                                next.history.recovered_zone_plus_one_down = true;
                            }
                        }
                    }
                }
                // A record of an older epoch gone (a newer one may have taken its LSN).
                (AuroraState::Segment(a), AuroraState::Segment(b))
                    if a.records
                        .values()
                        .any(|r| b.records.get(&r.lsn).is_none_or(|now| now.epoch > r.epoch)) =>
                {
                    next.history.truncated = true;
                }
                _ => {}
            }
        }
    }

    fn properties(m: &AuroraModel) -> Vec<Property<AuroraModel>> {
        let cfg = m.cfg();
        let mut props = vec![
            Property::always(
                "read and write quorums overlap: Vr + Vw > V and Vw > V/2 (§2.1)",
                |m: &AuroraModel, _| m.cfg().quorums.overlap(),
            ),
            Property::always(
                "no acknowledged commit is above the VDL a later recovery computes (§4.3)",
                no_acked_commit_lost,
            ),
            Property::always(
                "after recovery no record of an older epoch remains above the truncation point (§4.3)",
                no_stale_record_above_truncation,
            ),
            Property::always(
                "no LSN is allocated above VDL + LAL (§4.2.1)",
                lsn_within_lal,
            ),
        ];
        if cfg.read_back {
            props.push(Property::always(
                "a read at the read point sees the last change at or below it (§4.2.3)",
                reads_see_their_point,
            ));
        }
        // (The examples below need unavailable segments: without them every record is at
        // every segment at once.)
        let failures = cfg.failures != Failures::None;
        if failures {
            props.push(Property::sometimes(
                "a commit is acknowledged with a whole zone down (§2.1)",
                |_, s: &AuroraModelState| s.history.acked_zone_down,
            ));
        }
        if cfg.failures == Failures::ZonePlusOne && cfg.takeover {
            props.push(Property::sometimes(
                "recovery computes the VDL with a zone and one more segment down (§2.1, §4.3)",
                |_, s: &AuroraModelState| s.history.recovered_zone_plus_one_down,
            ));
        }
        if cfg.takeover && failures {
            props.push(Property::sometimes(
                "a recovery truncates a record above the VDL (§4.3)",
                |_, s: &AuroraModelState| s.history.truncated,
            ));
        }
        // (With one zone down every record reaches a write quorum at once.)
        let az_plus_one = cfg.failures == Failures::ZonePlusOne;
        if az_plus_one && cfg.records > cfg.lal as usize {
            props.push(Property::sometimes(
                "the writer waits at the LSN Allocation Limit (§4.2.1)",
                waits_at_lal,
            ));
        }
        if cfg.read_back {
            props.push(Property::sometimes(
                "a read is answered by one up-to-date segment (§4.2.3)",
                |_, s: &AuroraModelState| {
                    writers(s).any(|w| matches!(w.read, Some((_, _, Some(_)))))
                },
            ));
        }
        if az_plus_one {
            props.push(Property::sometimes(
                "gossip fills a segment's hole (§4.2.1)",
                |_, s: &AuroraModelState| s.history.hole_filled,
            ));
        }
        props.push(Property::eventually(
            "gossip fills every hole and the VCL reaches the writer's last record",
            all_durable,
        ));
        props
    }
}

/// The writers' states.
pub fn writers(s: &AuroraModelState) -> impl Iterator<Item = &WriterState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        AuroraState::Writer(w) => Some(w),
        _ => None,
    })
}

/// The segments' states, in zone order.
pub fn segments(s: &AuroraModelState) -> impl Iterator<Item = &SegmentState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        AuroraState::Segment(seg) => Some(seg),
        _ => None,
    })
}

/// Whether every segment of the first zone is unavailable.
fn zone_down(m: &AuroraModel, s: &AuroraModelState) -> bool {
    let cfg = m.cfg();
    segments(s)
        .enumerate()
        .filter(|(i, _)| cfg.zone(*i) == 0)
        .all(|(_, seg)| !seg.up)
}

/// Whether the first zone and one more segment are unavailable.
fn zone_plus_one_down(m: &AuroraModel, s: &AuroraModelState) -> bool {
    zone_down(m, s) && segments(s).filter(|seg| !seg.up).count() > m.cfg().quorums.v / ZONES
}

/// §4.3: a commit acknowledged at LSN `c` in some epoch is at or below the VDL that every
/// recovery of a later epoch computes.
fn no_acked_commit_lost(_: &AuroraModel, s: &AuroraModelState) -> bool {
    let h = &s.history;
    h.acked
        .iter()
        .all(|(ec, c)| h.recoveries.iter().all(|(er, vdl)| er <= ec || c <= vdl))
}

/// §4.3: a segment that knows a truncation keeps no record of an older epoch above its point.
fn no_stale_record_above_truncation(_: &AuroraModel, s: &AuroraModelState) -> bool {
    segments(s).all(|seg| match seg.truncation {
        Some(t) => seg
            .records
            .values()
            .all(|r| r.lsn <= t.above || r.epoch >= t.epoch),
        None => true,
    })
}

/// §4.2.1: every LSN a writer allocated is at most its VDL (when it allocated it) plus the LAL.
fn lsn_within_lal(m: &AuroraModel, s: &AuroraModelState) -> bool {
    writers(s).all(|w| last_lsn(w) <= w.vdl + m.cfg().lal)
}

/// The last LSN a writer allocated (its base if none).
pub fn last_lsn(w: &WriterState) -> Lsn {
    w.log.last().map_or(w.base, |(r, _)| r.lsn)
}

/// A writer with changes left cannot allocate the next LSN: it waits for the VDL.
fn waits_at_lal(m: &AuroraModel, s: &AuroraModelState) -> bool {
    writers(s).any(|w| {
        w.phase == super::actor::Phase::Active
            && w.next_change < w.arrived
            && last_lsn(w) + 1 > w.vdl + m.cfg().lal
    })
}

/// §4.2.3: a writer's answered read of `x` at read point `p` returns the change of its last
/// record at or below `p` that changed `x` (when it made one: below its base the recovered
/// volume's value is not kept).
fn reads_see_their_point(_: &AuroraModel, s: &AuroraModelState) -> bool {
    writers(s).all(|w| {
        let Some((_, point, Some(got))) = &w.read else {
            return true;
        };
        let expected = w
            .log
            .iter()
            .rev()
            .find(|(r, _)| r.lsn <= *point && r.key == KEY)
            .map(|(r, _)| r.value.clone());
        expected.is_none() || *got == expected
    })
}

/// The writer of the newest epoch that is writing: every segment is up and has no hole, and
/// that writer has allocated all its changes, with its VCL at the last of them.
fn all_durable(_: &AuroraModel, s: &AuroraModelState) -> bool {
    let current = writers(s)
        .filter(|w| w.phase == super::actor::Phase::Active)
        .max_by_key(|w| w.epoch);
    segments(s).all(|seg| seg.up && !seg.has_hole())
        && current.is_some_and(|w| {
            w.next_change == w.arrived && w.vcl == last_lsn(w) && w.committed.is_some()
        })
}

/// The actors' names: the writers `W0` and `W1`, the segments by zone: `A2`, `A3`, `B4`, ...
pub fn actor_names(m: &AuroraModel) -> Vec<String> {
    let cfg = m.cfg();
    let mut names = vec![format!("W{WRITER}"), format!("W{STANDBY}")];
    for i in 0..cfg.quorums.v {
        let zone = (b'A' + cfg.zone(i) as u8) as char;
        names.push(format!("{zone}{}", FIRST_SEGMENT + i));
    }
    names
}

/// One record as the view writes it: `2:x=a2/e1` (`*` marks a CPL).
fn brief(r: &super::actor::Record) -> String {
    format!(
        "{}{}:{}={}/e{}",
        r.lsn,
        if r.cpl { "*" } else { "" },
        r.key,
        r.value,
        r.epoch
    )
}

/// `s` in the paper's terms: each writer's epoch, phase, VCL and VDL, its records with the
/// segments that acknowledged them, its commit and read; each segment's availability, epoch,
/// truncation, SCL and records; the messages in flight.
pub fn view(m: &AuroraModel, s: &AuroraModelState) -> String {
    let names = actor_names(m);
    let name = |i: usize| crate::catalog::name_of(&names, i);
    let mut lines = Vec::new();
    for (i, actor) in s.actor_states.iter().enumerate() {
        lines.push(match &**actor {
            AuroraState::Writer(w) => {
                let log: Vec<String> = w
                    .log
                    .iter()
                    .map(|(r, acks)| {
                        let acks: Vec<String> =
                            acks.iter().map(|a| name(usize::from(*a))).collect();
                        format!("{} acked by [{}]", brief(r), acks.join(" "))
                    })
                    .collect();
                let mut line = format!(
                    "{} {:?} epoch {} VCL {} VDL {} log [{}]",
                    name(i),
                    match &w.phase {
                        super::actor::Phase::Recovering { answers } => {
                            format!("Recovering ({} answers)", answers.len())
                        }
                        p => format!("{p:?}"),
                    },
                    w.epoch,
                    w.vcl,
                    w.vdl,
                    log.join(", ")
                );
                if let Some(v) = w.recovered_vdl {
                    line.push_str(&format!(" recovered VDL {v}"));
                }
                if let Some(c) = w.committed {
                    line.push_str(&format!(" commit {c} acknowledged"));
                }
                if let Some((at, point, answer)) = &w.read {
                    line.push_str(&format!(" read at {point} from {}", name(usize::from(*at))));
                    if let Some(v) = answer {
                        line.push_str(&format!(" = {}", v.as_deref().unwrap_or("nothing")));
                    }
                }
                line.replace("\"", "")
            }
            AuroraState::Segment(seg) => {
                let records: Vec<String> = seg.records.values().map(brief).collect();
                let mut line = format!(
                    "{} {} epoch {} SCL {} [{}]",
                    name(i),
                    if seg.up { "up" } else { "DOWN" },
                    seg.epoch,
                    seg.scl(),
                    records.join(", ")
                );
                if let Some(t) = seg.truncation {
                    line.push_str(&format!(" truncated above {} at e{}", t.above, t.epoch));
                }
                line
            }
            AuroraState::Client(_) => format!("{} client", name(i)),
        });
    }
    lines.push(crate::catalog::in_flight_line(s, &names, |m| {
        m.replace("Record { ", "{ ")
            .replace(", client: None", "")
            .replace("\"", "")
    }));
    lines.join("\n")
}

/// Timers are fair except the failures themselves.
pub fn fair_class(_: &AuroraModel, a: &AuroraAction) -> Option<u64> {
    match a {
        ActorModelAction::Timeout(_, AuroraTimer::Fail | AuroraTimer::Crash) => None,
        a => crate::catalog::actor_fair_class(a),
    }
}
