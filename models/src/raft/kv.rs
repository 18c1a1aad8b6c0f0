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

/// What an operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvRet {
    /// Put and Append.
    Ok,
    /// Get: the value, `None` if the key is absent.
    Value(Option<String>),
}

/// A command in the log: client `client`'s `seq`-th operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Command {
    pub client: Id,
    pub seq: Seq,
    pub op: KvOp,
}

/// The store's data without sessions: what a linearizable store must behave like.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvData(pub BTreeMap<String, String>);

impl KvData {
    /// Runs `op`.
    pub fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Put(k, v) => {
                self.0.insert(k.clone(), v.clone());
                KvRet::Ok
            }
            KvOp::Get(k) => KvRet::Value(self.0.get(k).cloned()),
            KvOp::Append(k, v) => {
                self.0.entry(k.clone()).or_default().push_str(v);
                KvRet::Ok
            }
        }
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
        assert_eq!(m.apply(&get), KvRet::Value(Some("a".into())));
        // A late duplicate of seq 1 after seq 2 does not run either.
        m.apply(&append);
        assert_eq!(m.data.0["x"], "a");
        assert_eq!(
            m.applied(Id::from(7), 2),
            Some(&KvRet::Value(Some("a".into())))
        );
        assert_eq!(m.applied(Id::from(7), 1), None);
    }
}
