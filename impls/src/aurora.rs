//! Amazon Aurora over TCP: the model's own [`AuroraActor`] writer and storage segments, and a
//! client that sends them `Put`s and `Get`s, described to the runtime by [`AuroraService`]
//! (`aurora`) and, for the benchmark, the mirrored baseline of Figure 2 ([`MirroredService`],
//! `aurora-mirrored`).
//!
//! - The cluster file's seven nodes, in id order, are the writer and the six segments of one
//!   protection group (PG), two in each of three zones: nodes 1-2, 3-4 and 5-6 (§2.1).
//! - Only redo records cross the network (§3.2). A client's `Put(key, value)` becomes one record,
//!   a mini-transaction of its own (a CPL); the client hears back when the VDL reaches its LSN
//!   (§4.2.2). A `Get(key)` is read at the read point, the writer's VDL when it arrives, from one
//!   segment whose SCL reaches it (§4.2.3), which rebuilds the value from its records; no quorum
//!   read. The LSN Allocation Limit is the paper's 10 million (§4.2.1).
//! - Real timers, off in the model: the writer sends a record again to the segments that have not
//!   acknowledged it, and a read to another segment, every [`Tuning::heartbeat`]; a segment with
//!   a hole asks its peers and the writer again as often (§3.3 step 4).
//! - Storage: a segment saves its records, epoch and truncation (the runtime's store, on disk
//!   before its acknowledgement leaves), so that a segment killed and restarted comes back with
//!   its log and asks the writer for what it missed. The writer saves its epoch: started again, it
//!   recovers at the next one (§4.3): `Recover` to the segments, a read quorum's records, the VDL,
//!   everything above it truncated, then it serves clients.
//! - Jepsen ([`AuroraService::kill_plan`]): a zone down (writes go on), a zone and one more
//!   (writes stop, reads go on), the writer killed with three segments down and recovered from
//!   the other three; the history is checked for linearizability by `properties` and for
//!   acknowledged writes lost ([`lost_writes`]).
//! - The mirrored baseline ships the writer's whole page (its table, padded to
//!   [`PAGE_BYTES`]) to every replica and commits when all of them have it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use models::aurora::{
    AuroraActor, AuroraBug, AuroraMsg, AuroraState, Quorums, SegmentCfg, Shipping, WriterCfg,
    WriterStart, WriterTcp,
};
use models::client::{ClientMsg, RequestId};
use models::raft::kv::{KvOp, KvRet};
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::jepsen::{Expect, History, Nemesis, Outcome, PlanStep};
use crate::kv;
use crate::rng::Rng;
use crate::service::{Checked, Client, Jepsen, Service, ServiceError, Tuning};
use crate::storage::JsonFile;

/// The segments of the protection group: V = 6, in three zones of two (§2.1).
pub const SEGMENTS: usize = 6;
const ZONES: usize = 3;

/// The mirrored baseline's page size.
pub const PAGE_BYTES: usize = 8192;

/// The LSN Allocation Limit (§4.2.1: "currently set to 10 million").
pub const LAL: u64 = 10_000_000;

/// The writer and the segments of a cluster file, in id order.
pub fn roles(cluster: &ClusterConfig) -> Result<(Id, Vec<Id>), ServiceError> {
    let ids: Vec<Id> = cluster.nodes.keys().copied().collect();
    match ids.split_first() {
        Some((writer, segments)) if segments.len() == SEGMENTS => Ok((*writer, segments.to_vec())),
        _ => Err(ServiceError::Invalid(format!(
            "aurora runs on 7 nodes (a writer and {SEGMENTS} segments in 3 zones); the cluster \
             file has {}",
            ids.len()
        ))),
    }
}

/// The seeded bugs that run on real nodes.
const BUGS: &[AuroraBug] = &[
    AuroraBug::WriteQuorum3,
    AuroraBug::ReadAnySegment,
    AuroraBug::NoEpochFence,
];

fn server(
    shipping: Shipping,
    cluster: &ClusterConfig,
    id: Id,
    tuning: &Tuning,
    bug: Option<&'static str>,
) -> Result<AuroraActor, ServiceError> {
    ServiceError::check_member(cluster, id)?;
    let (writer, segments) = roles(cluster)?;
    let bug = bug
        .map(|b| {
            AuroraBug::from_name(b)
                .filter(|b| BUGS.contains(b))
                .ok_or_else(|| ServiceError::Invalid(format!("unknown bug {b}")))
        })
        .transpose()?;
    if id == writer {
        let vw = if bug == Some(AuroraBug::WriteQuorum3) {
            3
        } else {
            4
        };
        return Ok(AuroraActor::Writer(WriterCfg {
            me: writer,
            segments,
            quorums: Quorums { v: 6, vw, vr: 3 },
            lal: LAL,
            start: WriterStart::Recover,
            changes: Vec::new(),
            mtr: 1,
            read_back: false,
            takeover_after: None,
            crash_after: None,
            bug,
            tcp: Some(WriterTcp {
                resend: tuning.heartbeat,
                shipping,
            }),
        }));
    }
    // Gossip peers: the segments at the same place in the other zones (as in the model).
    let i = segments.iter().position(|s| *s == id).expect("a member");
    let per_zone = SEGMENTS / ZONES;
    let peers = (1..ZONES)
        .map(|z| segments[(i + z * per_zone) % SEGMENTS])
        .collect();
    Ok(AuroraActor::Segment(SegmentCfg {
        peers,
        writers: vec![writer],
        fail_after: None,
        bug,
        tcp: Some(tuning.heartbeat),
    }))
}

fn tuning() -> Tuning {
    Tuning {
        heartbeat: Duration::from_millis(100),
        snapshot_every: 0,
        ..Tuning::default()
    }
}

/// A node's role, as `cluster status` shows it (and the node logs when it changes).
fn describe(state: &AuroraState) -> Option<String> {
    use models::aurora::actor::Phase;
    match state {
        AuroraState::Writer(w) => Some(match &w.phase {
            Phase::Recovering { .. } => format!("writer recovering at epoch {}", w.epoch),
            Phase::Active => match w.recovered_vdl {
                Some(vdl) => format!("writer of epoch {} (recovered VDL {vdl})", w.epoch),
                None => format!("writer of epoch {}", w.epoch),
            },
            Phase::Deposed => format!("deposed writer of epoch {}", w.epoch),
            Phase::Standby | Phase::Crashed => format!("{:?}", w.phase).to_lowercase(),
        }),
        AuroraState::Segment(s) => Some(format!("segment of epoch {}", s.epoch)),
        AuroraState::Client(_) => None,
    }
}

fn kind(msg: &AuroraMsg) -> Option<&'static str> {
    match msg {
        AuroraMsg::Write { .. } => Some("redo records"),
        AuroraMsg::Page { .. } => Some("pages"),
        AuroraMsg::Ack { .. } => Some("acks"),
        AuroraMsg::Read { .. } => Some("segment reads"),
        AuroraMsg::Client(ClientMsg::Request { .. }) => Some("client requests"),
        AuroraMsg::GossipReq { .. } | AuroraMsg::CatchUp { .. } => Some("gossip requests"),
        _ => None,
    }
}

/// An operation from the command line's words: `put KEY VALUE` or `get KEY` (no appends: a
/// record is a page change to one value).
pub fn parse_op(words: &[String]) -> Result<KvOp, String> {
    match kv::parse_op(words)? {
        KvOp::Append(..) => Err("aurora takes put KEY VALUE and get KEY, not append".into()),
        KvOp::Put(k, _) | KvOp::Get(k) if k.is_empty() => Err("a key must not be empty".into()),
        op => Ok(op),
    }
}

macro_rules! aurora_service {
    ($name:ident, $shipping:expr, $proto:literal, $summary:literal) => {
        #[doc = concat!("`", $proto, "` in the service registry.")]
        pub struct $name;

        impl Service for $name {
            type Actor = AuroraActor;
            type Msg = AuroraMsg;
            type State = AuroraState;
            type Store = JsonFile;

            const NAME: &'static str = $proto;
            const SUMMARY: &'static str = $summary;
            const TUNING_HELP: &'static str = "heartbeat: how often the writer sends again what \
                is not acknowledged (and a read to another segment), and a segment with a hole \
                asks again";

            fn bugs() -> Vec<&'static str> {
                BUGS.iter().map(|b| b.name()).collect()
            }

            fn tuning() -> Tuning {
                tuning()
            }

            fn nodes() -> Option<usize> {
                Some(1 + SEGMENTS)
            }

            fn server(
                cluster: &ClusterConfig,
                id: Id,
                tuning: &Tuning,
                bug: Option<&'static str>,
                _data_dir: &Path,
            ) -> Result<AuroraActor, ServiceError> {
                server($shipping, cluster, id, tuning, bug)
            }

            fn store(dir: &Path) -> JsonFile {
                JsonFile(dir.to_path_buf())
            }

            fn describe(state: &AuroraState) -> Option<String> {
                describe(state)
            }

            fn kind(msg: &AuroraMsg) -> Option<&'static str> {
                kind(msg)
            }
        }

        impl Client for $name {
            type Op = KvOp;
            type Ret = KvRet;
            const OPS_HELP: &'static str = "put KEY VALUE | get KEY";

            fn client(cluster: &ClusterConfig, driver: Id, tuning: &Tuning) -> AuroraActor {
                let writer = cluster.nodes.keys().next().copied().unwrap_or(Id::from(0));
                AuroraActor::Client {
                    writer,
                    driver,
                    retry: tuning.timeout.start,
                }
            }

            fn invoke(seq: RequestId, op: KvOp) -> (RequestId, AuroraMsg) {
                (seq, AuroraMsg::Client(ClientMsg::Invoke { seq, op }))
            }

            fn returned(msg: AuroraMsg) -> Option<(RequestId, KvRet)> {
                match msg {
                    AuroraMsg::Client(ClientMsg::Return { seq, ret }) => Some((seq, ret)),
                    _ => None,
                }
            }

            fn parse_op(words: &[String]) -> Result<KvOp, String> {
                parse_op(words)
            }

            fn show_op(op: &KvOp) -> String {
                kv::show_op(op)
            }

            fn show(ret: &KvRet) -> String {
                kv::show(ret)
            }
        }
    };
}

aurora_service!(
    AuroraService,
    Shipping::Log,
    "aurora",
    "Amazon Aurora: redo records to 6 segments in 3 zones, 4/6 write quorum, commit at the VDL, \
     recovery at a new epoch (Verbitski et al. §§2.1, 3.2, 4.2, 4.3)"
);

aurora_service!(
    MirroredService,
    Shipping::Pages {
        page_bytes: PAGE_BYTES
    },
    "aurora-mirrored",
    "Aurora's baseline of Figure 2: the writer ships whole 8 KiB pages to 6 replicas and \
     commits when all have them (for the benchmark)"
);

/// The kill plan of `jepsen aurora` (node 0 the writer; zones {1, 2}, {3, 4}, {5, 6}).
const PLAN: &[PlanStep] = &[
    PlanStep {
        down: &[5, 6],
        what: "a zone down (segments 5, 6)",
        expect: &[Expect::WritesAcknowledged],
    },
    PlanStep {
        down: &[4, 5, 6],
        what: "a zone and one more down (segments 4, 5, 6)",
        expect: &[Expect::NoWritesAcknowledged, Expect::ReadsAnswered],
    },
    PlanStep {
        down: &[0, 1, 2, 3],
        what: "the writer killed, segments 1-3 down, 4-6 back",
        expect: &[],
    },
    PlanStep {
        down: &[1, 2, 3],
        what: "the writer restarted: it recovers from segments 4-6",
        expect: &[Expect::NoWritesAcknowledged, Expect::ReadsAnswered],
    },
];

impl Jepsen for AuroraService {
    /// Puts of a unique value (half) and gets.
    fn workload(rng: &mut Rng, keys: usize, id: u64) -> KvOp {
        let key = format!("k{}", rng.below(keys as u64));
        if rng.below(2) == 0 {
            KvOp::Put(key, format!("{}.{}", id >> 32, id & 0xffff_ffff))
        } else {
            KvOp::Get(key)
        }
    }

    fn read_only(op: &KvOp) -> bool {
        kv::read_only(op)
    }

    /// Every key, read once the faults have healed and the writer has recovered.
    fn final_ops(keys: usize) -> Vec<KvOp> {
        (0..keys).map(|k| KvOp::Get(format!("k{k}"))).collect()
    }

    /// Linearizability (`properties`), then no acknowledged write lost.
    fn check(history: &History<KvOp, KvRet>, dir: &Path) -> anyhow::Result<Checked> {
        let mut checked = kv::check_history(history, dir)?;
        if let Err(lost) = lost_writes(history) {
            checked.ok = false;
            if checked.verdict == "linearizable" {
                checked.verdict = "acknowledged write lost".into();
            }
            checked.failure = Some(match checked.failure {
                Some(f) => format!("{f}; {lost}"),
                None => lost,
            });
        }
        Ok(checked)
    }

    fn kill_plan() -> &'static [PlanStep] {
        PLAN
    }

    fn nemeses() -> &'static [Nemesis] {
        &[Nemesis::Kill]
    }
}

/// No acknowledged write lost: the last read of each key (the final reads) sees the last
/// acknowledged put of that key or a put not known to be older. A read that sees a put
/// completed before the last acknowledged one was invoked, or sees nothing after an
/// acknowledged put, lost it. `Err` names the key and both puts.
pub fn lost_writes(history: &History<KvOp, KvRet>) -> Result<(), String> {
    let mut last_ack: BTreeMap<&str, (f64, f64, &str)> = BTreeMap::new();
    let mut puts: BTreeMap<(&str, &str), (f64, Option<f64>)> = BTreeMap::new();
    let mut last_read: BTreeMap<&str, (f64, &str)> = BTreeMap::new();
    for o in &history.ops {
        match (&o.op, &o.outcome) {
            (KvOp::Put(k, v), outcome) => {
                let done = matches!(outcome, Outcome::Ok(_))
                    .then_some(o.completed)
                    .flatten();
                puts.insert((k, v), (o.invoked, done));
                if let Some(done) = done {
                    if last_ack.get(k.as_str()).is_none_or(|(d, _, _)| *d < done) {
                        last_ack.insert(k, (done, o.invoked, v));
                    }
                }
            }
            (KvOp::Get(k), Outcome::Ok(KvRet::Value(v))) => {
                let done = o.completed.unwrap_or(o.invoked);
                if last_read.get(k.as_str()).is_none_or(|(d, _)| *d < done) {
                    last_read.insert(k, (done, v));
                }
            }
            _ => {}
        }
    }
    for (key, (acked_at, acked_invoked, acked)) in &last_ack {
        let Some((read_at, seen)) = last_read.get(key) else {
            continue;
        };
        if read_at < acked_at {
            continue;
        }
        let older = match puts.get(&(*key, *seen)) {
            None => true,
            Some((_, Some(done))) => done < acked_invoked,
            Some((_, None)) => false,
        };
        if older {
            return Err(format!(
                "key {key}: the put of {acked:?} was acknowledged at {acked_at:.3} s, yet the \
                 read at {read_at:.3} s sees {seen:?}: the acknowledged write was lost"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_puts_and_gets_of_named_keys() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_op(&w("put x 1")),
            Ok(KvOp::Put("x".into(), "1".into()))
        );
        assert_eq!(parse_op(&w("get x")), Ok(KvOp::Get("x".into())));
        assert!(parse_op(&w("append x 1"))
            .unwrap_err()
            .contains("not append"));
        assert!(parse_op(&w("get")).is_err());
    }
}
