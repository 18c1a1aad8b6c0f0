//! The checked model: two data centres' nodes and their client libraries in one `ActorModel`
//! over a network that delays and reorders everything, in the workbench's [`Harness`] (no
//! crashes: COPS's data centres are replicated within themselves, §5).

use std::collections::BTreeSet;

use properties::causal::{self, Level, Op, Txn};
use stateright::actor::{ActorModel, ActorModelAction, Id, Network};
use stateright::Property;

use super::actor::{
    key_name, ClientCfg, ClientState, CopsActor, CopsBug, CopsMsg, CopsOp, CopsRet, CopsState, Key,
    NodeCfg, NodeState, Seen, Value, Version, Waiting,
};
use crate::harness::{HAction, HState, Harness, Harnessed};

/// A model configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CopsCfg {
    /// Data centres, 2 or 3: node `dc` runs at id `dc`, and client `i` (at data centre `i`)
    /// at id `dcs + i`.
    pub dcs: usize,
    /// Keys, 2 or 3: `x`, `y`, `z`.
    pub keys: usize,
    /// Whether the reader starts with a `get_trans` of every key (COPS-GT, §4.6).
    pub get_trans: bool,
    /// Whether the reader ends with a put of `x`, concurrent with the writer's unless it has
    /// seen it.
    pub conflict: bool,
    pub bug: Option<CopsBug>,
}

impl Default for CopsCfg {
    fn default() -> Self {
        CopsCfg {
            dcs: 2,
            keys: 3,
            get_trans: true,
            conflict: true,
            bug: None,
        }
    }
}

impl CopsCfg {
    /// The writer (data centre 0), COPS §1: Alice removes her boss from the ACL (`x`), then
    /// posts the photo (`y`); with three keys, a comment on it (`z`).
    pub fn writer_ops(&self) -> Vec<CopsOp> {
        (0..self.keys as Key)
            .map(|k| CopsOp::Put(k, Value::from(k) + 1))
            .collect()
    }

    /// The reader (data centre 1): her boss takes a snapshot of every key (`get_trans`), reads
    /// the newest key and then the others, newest first (the photo, then the ACL), and writes
    /// `x` himself.
    pub fn reader_ops(&self) -> Vec<CopsOp> {
        let keys: Vec<Key> = (0..self.keys as Key).collect();
        let mut ops = Vec::new();
        if self.get_trans {
            ops.push(CopsOp::GetTrans(keys.clone()));
        }
        ops.extend(keys.iter().rev().map(|k| CopsOp::Get(*k)));
        if self.conflict {
            ops.push(CopsOp::Put(0, 100));
        }
        ops
    }

    /// The onlooker (data centre 2, when there are three): reads the newest key and then `x`,
    /// as the boss does, after both data centres' puts have travelled on to hers.
    pub fn onlooker_ops(&self) -> Vec<CopsOp> {
        vec![CopsOp::Get(self.keys as Key - 1), CopsOp::Get(0)]
    }

    /// Each client's operations, client `i` at data centre `i`.
    pub fn client_ops(&self) -> Vec<Vec<CopsOp>> {
        let mut ops = vec![self.writer_ops(), self.reader_ops()];
        if self.dcs > 2 {
            ops.push(self.onlooker_ops());
        }
        ops
    }

    pub fn into_model(self) -> CopsModel {
        let mut actors = Vec::new();
        for dc in 0..self.dcs {
            actors.push(CopsActor::Node(NodeCfg {
                dc: dc as u8,
                peers: (0..self.dcs).filter(|p| *p != dc).map(Id::from).collect(),
                resend: None,
                bug: self.bug,
            }));
        }
        for (dc, ops) in self.client_ops().into_iter().enumerate() {
            actors.push(CopsActor::Client(ClientCfg {
                node: Id::from(dc),
                ops,
                driver: None,
                bug: self.bug,
            }));
        }
        let inner = ActorModel::new(self, CopsHistory::default())
            .actors(actors)
            .init_network(Network::new_unordered_nonduplicating([]));
        Harness::new(inner, 0)
    }
}

/// History variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CopsHistory {
    /// A replicated put arrived at a node whose visible version of the key was newer and
    /// concurrent with it, and last-writer-wins kept the other.
    pub lww: bool,
}

pub type CopsModelState = HState<Cops>;
pub type CopsAction = HAction<Cops>;

/// The COPS model.
pub type CopsModel = Harness<Cops>;

/// What the history variables need to know about a step: a message delivered to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    ToNode(Id),
    Other,
}

/// The COPS model's part of the [`Harness`].
pub struct Cops;

impl Harnessed for Cops {
    type Actor = CopsActor;
    type Cfg = CopsCfg;
    type History = CopsHistory;
    type Step = Step;

    fn step_of(action: &CopsAction) -> Step {
        match action {
            ActorModelAction::Deliver {
                dst,
                msg: CopsMsg::Replicate { .. },
                ..
            } => Step::ToNode(*dst),
            _ => Step::Other,
        }
    }

    fn crashes(_: &CopsHistory) -> usize {
        0
    }

    fn count_crash(_: &mut CopsHistory) {}

    fn may_crash(_: &CopsModel, _: &CopsModelState, _: usize) -> bool {
        false
    }

    /// A version newly applied at a node that is not the visible one lost to a newer,
    /// concurrent one (one that followed it causally would have listed it, and been applied
    /// after it).
    fn record(_: &CopsModel, prev: Option<(&CopsModelState, Step)>, next: &mut CopsModelState) {
        let Some((last, Step::ToNode(at))) = prev else {
            return;
        };
        if next.history.lww {
            return;
        }
        let (Some(before), Some(after)) = (node(last, at), node(next, at)) else {
            return;
        };
        let lost = after.versions.keys().any(|(k, v)| {
            !before.versions.contains_key(&(*k, *v)) && after.current.get(k) != Some(v)
        });
        if lost {
            next.history.lww = true;
        }
    }

    fn properties(m: &CopsModel) -> Vec<Property<CopsModel>> {
        let cfg = m.cfg();
        let mut props = vec![
            Property::always("causal+ client history (CCv)", |_, s: &CopsModelState| {
                causal::check(&history(s), Level::Ccv).is_ok()
            }),
            Property::always(
                "convergent conflict handling: with nothing in flight the data centres agree",
                converged_when_quiet,
            ),
            Property::always(
                "a version is greater than its dependencies (§4.1)",
                |_, s: &CopsModelState| {
                    nodes(s).all(|n| {
                        n.versions
                            .iter()
                            .all(|((_, v), (_, deps))| deps.iter().all(|(_, d)| d < v))
                    })
                },
            ),
            Property::sometimes(
                "a reader sees the photo and then the ACL change it depends on",
                |m: &CopsModel, s: &CopsModelState| sees_dependency(m, s),
            ),
            Property::sometimes(
                "a replicated put waits for a dependency (dep_check, §4.3)",
                |_, s: &CopsModelState| nodes(s).any(|n| !n.pending.is_empty()),
            ),
            Property::eventually(
                "every operation returns and every put reaches every data centre",
                |m: &CopsModel, s: &CopsModelState| {
                    let ops = m.cfg().client_ops().into_iter().map(|o| o.len());
                    let puts: usize = clients(s)
                        .flat_map(|c| &c.done)
                        .filter(|(op, _)| matches!(op, CopsOp::Put(..)))
                        .count();
                    clients(s).zip(ops).all(|(c, n)| c.done.len() == n)
                        && nodes(s).all(|n| n.versions.len() == puts)
                },
            ),
        ];
        if cfg.conflict {
            props.push(Property::sometimes(
                "two concurrent puts conflict and last-writer-wins keeps one",
                |_, s: &CopsModelState| s.history.lww,
            ));
        }
        if cfg.get_trans {
            props.push(Property::always(
                "get_trans returns a causally consistent snapshot (§4.6)",
                |_, s: &CopsModelState| causal::check(&history(s), Level::Tcc).is_ok(),
            ));
            props.push(Property::sometimes(
                "get_trans needs its second round (§4.6)",
                |_, s: &CopsModelState| {
                    clients(s).any(|c| matches!(c.waiting, Waiting::Trans { round: 2, .. }))
                },
            ));
        }
        props
    }
}

fn node(s: &CopsModelState, id: Id) -> Option<&NodeState> {
    match &*s.actor_states[usize::from(id)] {
        CopsState::Node(n) => Some(n),
        CopsState::Client(_) => None,
    }
}

/// The data centres' nodes, in order.
pub fn nodes(s: &CopsModelState) -> impl Iterator<Item = &NodeState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        CopsState::Node(n) => Some(n),
        CopsState::Client(_) => None,
    })
}

/// The client libraries, in order (the writer, then the reader).
pub fn clients(s: &CopsModelState) -> impl Iterator<Item = &ClientState> {
    s.actor_states.iter().filter_map(|a| match &**a {
        CopsState::Client(c) => Some(c),
        CopsState::Node(_) => None,
    })
}

/// The clients' operations as a `properties::causal` history: one session per client library
/// (client `i` at data centre `i`), a transaction per completed operation (a `get_trans` reads
/// every key in one), and a put its node has applied but not yet answered.
pub fn history(s: &CopsModelState) -> Vec<Txn> {
    let nodes: Vec<&NodeState> = nodes(s).collect();
    let mut h = Vec::new();
    for (session, c) in clients(s).enumerate() {
        let mut push = |ops| {
            h.push(Txn {
                id: h.len() as u64,
                session: session as u64,
                ops,
            })
        };
        for (op, ret) in &c.done {
            push(session_ops(op, ret));
        }
        if let (Some(CopsOp::Put(k, _)), Waiting::Put) = (&c.op, &c.waiting) {
            let answered = |v: &Version| {
                c.done
                    .iter()
                    .any(|(_, ret)| matches!(ret, CopsRet::Put(w) if w == v))
            };
            let applied = nodes[session]
                .versions
                .keys()
                .find(|(key, v)| key == k && usize::from(v.dc) == session && !answered(v));
            if let Some((_, v)) = applied {
                push(vec![Op::write(&key_name(*k), v.number())]);
            }
        }
    }
    h
}

/// An operation and its result as `properties::causal` operations.
pub fn session_ops(op: &CopsOp, ret: &CopsRet) -> Vec<Op> {
    let number = |v: Option<Seen>| v.map_or(0, |s| s.version.number());
    match (op, ret) {
        (CopsOp::Put(k, _), CopsRet::Put(v)) => vec![Op::write(&key_name(*k), v.number())],
        (CopsOp::Get(k), CopsRet::Get(v)) => vec![Op::read(&key_name(*k), number(*v))],
        (CopsOp::GetTrans(_), CopsRet::GetTrans(read)) => read
            .iter()
            .map(|(k, v)| Op::read(&key_name(*k), number(*v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// With no replication in flight and none waiting, every data centre shows the same
/// version of every key.
fn converged_when_quiet(_: &CopsModel, s: &CopsModelState) -> bool {
    let replicating = s
        .network
        .iter_deliverable()
        .any(|e| matches!(e.msg, CopsMsg::Replicate { .. }));
    if replicating || nodes(s).any(|n| !n.pending.is_empty()) {
        return true;
    }
    let mut views = nodes(s).map(|n| &n.current);
    let first = views.next();
    views.all(|v| Some(v) == first)
}

/// The reader read the newest key written, and afterwards the first key at the writer's
/// version: what the dependency guaranteed.
fn sees_dependency(m: &CopsModel, s: &CopsModelState) -> bool {
    let last = m.cfg().keys as Key - 1;
    let Some(reader) = clients(s).nth(1) else {
        return false;
    };
    let saw_last = reader
        .done
        .iter()
        .position(|(op, ret)| *op == CopsOp::Get(last) && matches!(ret, CopsRet::Get(Some(_))));
    saw_last.is_some_and(|i| {
        reader.done[i..].iter().any(|(op, ret)| {
            *op == CopsOp::Get(0) && matches!(ret, CopsRet::Get(Some(seen)) if seen.version.dc == 0)
        })
    })
}

/// The actors' names: `DC0`, `DC1` (, `DC2`), then `Alice`, `Boss` (and `Carol`).
pub fn actor_names(m: &CopsModel) -> Vec<String> {
    let dcs = m.cfg().dcs;
    let mut names: Vec<String> = (0..dcs).map(|d| format!("DC{d}")).collect();
    names.extend(
        ["Alice", "Boss", "Carol"]
            .iter()
            .take(dcs)
            .map(|n| n.to_string()),
    );
    names
}

/// A state in the paper's terms: each node's visible versions, clock and waiting puts; each
/// client's context and what it has done; then what is in flight.
pub fn view(m: &CopsModel, s: &CopsModelState) -> String {
    let names = actor_names(m);
    let mut lines = Vec::new();
    let deps = |ds: &[(Key, Version)]| {
        let shown: Vec<String> = ds
            .iter()
            .map(|(k, v)| format!("{}@{v}", key_name(*k)))
            .collect();
        format!("[{}]", shown.join(" "))
    };
    for (i, a) in s.actor_states.iter().enumerate() {
        let line = match &**a {
            CopsState::Node(n) => {
                let current: Vec<String> = n
                    .current
                    .iter()
                    .map(|(k, v)| format!("{}@{v}", key_name(*k)))
                    .collect();
                let mut line = format!(
                    "{} clock {} shows {}",
                    names[i],
                    n.clock,
                    if current.is_empty() {
                        "nothing".to_string()
                    } else {
                        current.join(" ")
                    }
                );
                let older: BTreeSet<String> = n
                    .versions
                    .keys()
                    .filter(|(k, v)| n.current.get(k) != Some(v))
                    .map(|(k, v)| format!("{}@{v}", key_name(*k)))
                    .collect();
                if !older.is_empty() {
                    line.push_str(&format!(
                        ", keeps {}",
                        older.into_iter().collect::<Vec<_>>().join(" ")
                    ));
                }
                for ((k, _), p) in &n.pending {
                    line.push_str(&format!(
                        ", {}@{} waits for {}",
                        key_name(*k),
                        p.version,
                        deps(&p.nearest)
                    ));
                }
                line
            }
            CopsState::Client(c) => {
                let done: Vec<String> = c.done.iter().map(|(op, ret)| brief(op, ret)).collect();
                format!(
                    "{} context {} nearest {} done {}",
                    names[i],
                    deps(&c.context),
                    deps(&c.nearest),
                    if done.is_empty() {
                        "nothing".to_string()
                    } else {
                        done.join("; ")
                    }
                )
            }
        };
        lines.push(line);
    }
    lines.push(crate::catalog::in_flight_line(s, &names, |m| m.to_string()));
    lines.join("\n")
}

/// `put x -> 1.0`, `get y -> 2.0`, `get_trans x=0 y=2.0`.
fn brief(op: &CopsOp, ret: &CopsRet) -> String {
    let v = |v: &Option<Seen>| v.map_or("0".to_string(), |s| s.version.to_string());
    match (op, ret) {
        (CopsOp::Put(k, _), CopsRet::Put(ver)) => format!("put {} -> {ver}", key_name(*k)),
        (CopsOp::Get(k), CopsRet::Get(ver)) => format!("get {} -> {}", key_name(*k), v(ver)),
        (_, CopsRet::GetTrans(read)) => {
            let shown: Vec<String> = read
                .iter()
                .map(|(k, ver)| format!("{}={}", key_name(*k), v(ver)))
                .collect();
            format!("get_trans {}", shown.join(" "))
        }
        _ => format!("{op:?} -> {ret:?}"),
    }
}

/// Why a property fails, in the paper's terms: the bad pattern and its operations, the key
/// the data centres disagree on, or the version smaller than a dependency.
pub fn explain(m: &CopsModel, s: &CopsModelState, property: &str) -> Option<String> {
    let names = actor_names(m);
    if property.starts_with("convergent") {
        let all: Vec<&NodeState> = nodes(s).collect();
        let first = all.first()?;
        for (i, n) in all.iter().enumerate().skip(1) {
            let keys: BTreeSet<&Key> = first.current.keys().chain(n.current.keys()).collect();
            for k in keys {
                let (a, b) = (first.current.get(k), n.current.get(k));
                if a != b {
                    let show = |v: Option<&Version>| {
                        v.map_or("the initial value".to_string(), |v| {
                            format!("{}@{v}", key_name(*k))
                        })
                    };
                    return Some(format!(
                        "nothing is in flight, but {} shows {} and {} shows {}",
                        names[0],
                        show(a),
                        names[i],
                        show(b)
                    ));
                }
            }
        }
        return None;
    }
    if property.starts_with("a version is greater") {
        for (i, n) in nodes(s).enumerate() {
            for ((k, v), (_, deps)) in &n.versions {
                if let Some((dk, dv)) = deps.iter().find(|(_, d)| d >= v) {
                    return Some(format!(
                        "{} holds {}@{v}, which depends on {}@{dv}",
                        names[i],
                        key_name(*k),
                        key_name(*dk)
                    ));
                }
            }
        }
        return None;
    }
    let level = if property.starts_with("causal+") {
        Level::Ccv
    } else if property.starts_with("get_trans") {
        Level::Tcc
    } else {
        return None;
    };
    let v = causal::check(&history(s), level).err()?;
    Some(readable_versions(&v.to_string()))
}

/// `r x=31` as `r x@3.1`: the history's version numbers as the versions they stand for.
fn readable_versions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<u64>() {
            Ok(0) => out.push_str("=initial"),
            Ok(n) => out.push_str(&format!("@{}", Version::from_number(n))),
            Err(_) => out.push('='),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}
