//! The replicated state machine: a key-value store with Put / Get / Append, and the client
//! sessions that make every command take effect at most once (Raft §8: "the state machine tracks
//! the latest serial number processed for each client, along with the associated response").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use stateright::semantics::SequentialSpec;

/// A client's serial number for its commands, from 1.
pub type Seq = u64;

/// An operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOp {
    Put(String, String),
    Get(String),
    /// Appends to the key's value (an absent key counts as empty).
    Append(String, String),
}

impl KvOp {
    /// The operation in a model's view of a state: `Put x=1`, `Append x+=1`, `Get x`.
    pub fn brief(&self) -> String {
        match self {
            KvOp::Put(k, v) => format!("Put {k}={v}"),
            KvOp::Append(k, v) => format!("Append {k}+={v}"),
            KvOp::Get(k) => format!("Get {k}"),
        }
    }
}

/// What an operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvRet {
    /// Put and Append.
    Ok,
    /// Get: the value; a key never written reads as `""`.
    Value(String),
}

/// A command in the log: client `client`'s `seq`-th operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Command {
    pub client: Id,
    pub seq: Seq,
    pub op: KvOp,
}

/// The store's data without sessions: what a linearizable store must behave like.
///
/// Each key follows [`properties::linearizability::KvStore`], the specification that live
/// histories are checked against (`checker history --model kv`, `jepsen raft`): a key's value
/// starts as `""`, Put replaces it, Append extends it, Get reads it. The model's clients and a
/// live cluster's are held to one specification, not two that might disagree on a key never
/// written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvData(pub BTreeMap<String, String>);

impl KvData {
    /// Runs `op`.
    pub fn invoke(&mut self, op: &KvOp) -> KvRet {
        use properties::linearizability::spec::{KvInput, KvOp as SpecOp};
        use properties::linearizability::{KvStore, SequentialSpec};
        let (key, input) = match op {
            KvOp::Put(k, v) => (k, SpecOp::Put(v.clone())),
            KvOp::Get(k) => (k, SpecOp::Get),
            KvOp::Append(k, v) => (k, SpecOp::Append(v.clone())),
        };
        let before = self.0.get(key).cloned().unwrap_or_else(|| KvStore.init());
        let input = KvInput { key: 0, op: input };
        let after = KvStore
            .step(&before, &input, None)
            .expect("every operation is enabled in every state of the store");
        match op {
            KvOp::Get(_) => KvRet::Value(after),
            KvOp::Put(..) | KvOp::Append(..) => {
                self.0.insert(key.clone(), after);
                KvRet::Ok
            }
        }
    }
}

impl KvData {
    /// Answers a Get without changing (or copying) the store: what [`KvData::invoke`] returns
    /// for it. Panics on a write, which a read path never sees.
    pub fn read(&self, op: &KvOp) -> KvRet {
        use properties::linearizability::spec::{KvInput, KvOp as SpecOp};
        use properties::linearizability::{KvStore, SequentialSpec};
        let KvOp::Get(key) = op else {
            panic!("read of a write: {op:?}");
        };
        let value = self.0.get(key).cloned().unwrap_or_else(|| KvStore.init());
        let input = KvInput {
            key: 0,
            op: SpecOp::Get,
        };
        KvRet::Value(
            KvStore
                .step(&value, &input, None)
                .expect("a Get is enabled in every state"),
        )
    }
}

/// The sequential specification the clients' history is checked against.
impl SequentialSpec for KvData {
    type Op = KvOp;
    type Ret = KvRet;

    fn invoke(&mut self, op: &KvOp) -> KvRet {
        KvData::invoke(self, op)
    }
}

/// The state machine of a server: the data and, per client, its latest applied serial number
/// with the response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvMachine {
    pub data: KvData,
    pub sessions: BTreeMap<Id, (Seq, KvRet)>,
}

impl KvMachine {
    /// Applies a committed command. A command whose serial number the client's session has
    /// already passed is a duplicate (the client retried it) and does not run again; it returns
    /// the recorded response.
    pub fn apply(&mut self, cmd: &Command) -> KvRet {
        if let Some((seq, ret)) = self.sessions.get(&cmd.client) {
            if *seq >= cmd.seq {
                return ret.clone();
            }
        }
        let ret = self.data.invoke(&cmd.op);
        self.sessions.insert(cmd.client, (cmd.seq, ret.clone()));
        ret
    }

    /// How many items the machine holds: its keys and its client sessions. InstallSnapshot sends
    /// a snapshot in chunks of items (Figure 13's `offset` counts items).
    pub fn items(&self) -> u64 {
        (self.data.0.len() + self.sessions.len()) as u64
    }

    /// At most `count` items from `offset`: keys in order, then sessions in order.
    pub fn chunk(&self, offset: u64, count: u64) -> KvMachine {
        let (offset, count) = (offset as usize, count as usize);
        let keys = self.data.0.len();
        KvMachine {
            data: KvData(
                self.data
                    .0
                    .iter()
                    .skip(offset)
                    .take(count)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            sessions: self
                .sessions
                .iter()
                .skip(offset.saturating_sub(keys))
                .take(count.saturating_sub(keys.saturating_sub(offset)))
                .map(|(c, s)| (*c, s.clone()))
                .collect(),
        }
    }

    /// Adds a chunk's items.
    pub fn merge(&mut self, chunk: &KvMachine) {
        self.data
            .0
            .extend(chunk.data.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.sessions
            .extend(chunk.sessions.iter().map(|(c, s)| (*c, s.clone())));
    }

    /// The response to client `client`'s `seq`-th command if it has been applied and is the
    /// latest one of that client.
    pub fn applied(&self, client: Id, seq: Seq) -> Option<&KvRet> {
        match self.sessions.get(&client) {
            Some((s, ret)) if *s == seq => Some(ret),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use properties::linearizability::spec::{KvInput, KvOp as SpecOp, KvOutput};
    use properties::linearizability::{KvStore, SequentialSpec};
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = KvOp> {
        let key = prop::sample::select(vec!["a", "b"]).prop_map(String::from);
        let value = prop::sample::select(vec!["", "1", "22"]).prop_map(String::from);
        prop_oneof![
            key.clone().prop_map(KvOp::Get),
            (key.clone(), value.clone()).prop_map(|(k, v)| KvOp::Put(k, v)),
            (key, value).prop_map(|(k, v)| KvOp::Append(k, v)),
        ]
    }

    proptest! {
        /// The model's store and the live checker's specification agree on every sequence of
        /// operations, a key never written included: each result the model returns is the one
        /// the specification accepts, key by key.
        #[test]
        fn the_model_store_and_the_live_specification_agree(ops in prop::collection::vec(op(), 0..12)) {
            let mut model = KvData::default();
            let mut spec: BTreeMap<String, String> = BTreeMap::new();
            for op in &ops {
                let ret = model.invoke(op);
                let (key, input, output) = match (op, &ret) {
                    (KvOp::Get(k), KvRet::Value(v)) => (k, SpecOp::Get, KvOutput::Get(v.clone())),
                    (KvOp::Put(k, v), KvRet::Ok) => (k, SpecOp::Put(v.clone()), KvOutput::Put),
                    (KvOp::Append(k, v), KvRet::Ok) => (k, SpecOp::Append(v.clone()), KvOutput::Append),
                    _ => panic!("{op:?} returned {ret:?}"),
                };
                let state = spec.get(key).cloned().unwrap_or_else(|| KvStore.init());
                let next = KvStore.step(&state, &KvInput { key: 0, op: input }, Some(&output));
                prop_assert!(next.is_some(), "the specification refuses {op:?} => {ret:?} in {state:?}");
                spec.insert(key.clone(), next.unwrap());
            }
        }
    }

    #[test]
    fn a_machine_in_chunks_of_items_merges_back_whole() {
        let mut m = KvMachine::default();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            m.apply(&cmd(i, 1, KvOp::Put(k.to_string(), "v".into())));
        }
        assert_eq!(m.items(), 6);
        for count in 1..=7 {
            let mut whole = KvMachine::default();
            let mut offset = 0;
            while offset < m.items() {
                let chunk = m.chunk(offset, count);
                offset += chunk.items();
                whole.merge(&chunk);
            }
            assert_eq!(whole, m, "chunks of {count}");
        }
    }

    #[test]
    fn a_key_never_written_reads_empty() {
        assert_eq!(
            KvData::default().invoke(&KvOp::Get("k".into())),
            KvRet::Value(String::new())
        );
        assert_eq!(
            KvData::default().read(&KvOp::Get("k".into())),
            KvRet::Value(String::new())
        );
    }

    fn cmd(client: usize, seq: Seq, op: KvOp) -> Command {
        Command {
            client: Id::from(client),
            seq,
            op,
        }
    }

    #[test]
    fn a_retried_command_takes_effect_once() {
        let mut m = KvMachine::default();
        let append = cmd(7, 1, KvOp::Append("x".into(), "a".into()));
        assert_eq!(m.apply(&append), KvRet::Ok);
        assert_eq!(m.apply(&append), KvRet::Ok);
        let get = cmd(7, 2, KvOp::Get("x".into()));
        assert_eq!(m.apply(&get), KvRet::Value("a".into()));
        // A late duplicate of seq 1 after seq 2 does not run either.
        m.apply(&append);
        assert_eq!(m.data.0["x"], "a");
        assert_eq!(m.applied(Id::from(7), 2), Some(&KvRet::Value("a".into())));
        assert_eq!(m.applied(Id::from(7), 1), None);
    }
}
