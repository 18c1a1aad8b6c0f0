//! Sequential specifications: what a single copy of the object would answer.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of an object.
pub trait SequentialSpec: Sync {
    type State: Clone + Eq + Hash + Send;
    type Input: Debug + Sync;
    type Output: Debug + Sync;

    /// The object's initial state.
    fn init(&self) -> Self::State;

    /// The state after `input` is applied to `state`, if `output` is a result the object may give
    /// there; `None` if it may not. An unknown `output` (`None`) accepts any result.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// The partition of an operation: operations of different partitions never affect each other
    /// (for a key-value store, its key), so each partition is checked on its own.
    fn partition(&self, _input: &Self::Input) -> u64 {
        0
    }
}

/// An operation on a register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    Read,
    Write(i64),
    /// Compare-and-set: write `to` if the value is `from`.
    Cas {
        from: i64,
        to: i64,
    },
}

/// A register's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// The value read; `None` for a register never written (Jepsen's `nil`).
    Read(Option<i64>),
    Write,
    /// Whether the compare-and-set took effect.
    Cas(bool),
}

/// A read/write register that starts unwritten (`nil`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

/// A read/write/compare-and-set register that starts unwritten: Jepsen's etcd register.
#[derive(Clone, Copy, Debug, Default)]
pub struct CasRegister;

fn register_step(
    state: &Option<i64>,
    input: &RegisterInput,
    output: Option<&RegisterOutput>,
    cas_allowed: bool,
) -> Option<Option<i64>> {
    match (input, output) {
        (RegisterInput::Read, None) => Some(*state),
        (RegisterInput::Read, Some(RegisterOutput::Read(v))) => (v == state).then_some(*state),
        (RegisterInput::Write(v), None | Some(RegisterOutput::Write)) => Some(Some(*v)),
        (RegisterInput::Cas { from, to }, output) if cas_allowed => {
            let matches = *state == Some(*from);
            let next = if matches { Some(*to) } else { *state };
            match output {
                None => Some(next),
                Some(RegisterOutput::Cas(ok)) => (*ok == matches).then_some(next),
                Some(_) => None,
            }
        }
        _ => None,
    }
}

/// The two registers differ only in whether `cas` is allowed.
macro_rules! register_spec {
    ($spec:ty, $cas:expr) => {
        impl SequentialSpec for $spec {
            type State = Option<i64>;
            type Input = RegisterInput;
            type Output = RegisterOutput;

            fn init(&self) -> Option<i64> {
                None
            }

            fn step(
                &self,
                state: &Option<i64>,
                input: &RegisterInput,
                output: Option<&RegisterOutput>,
            ) -> Option<Option<i64>> {
                register_step(state, input, output, $cas)
            }
        }
    };
}

register_spec!(Register, false);
register_spec!(CasRegister, true);

/// An operation on a key-value store. Keys are numbered by whoever builds the history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvInput {
    pub key: u64,
    pub op: KvOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    Get,
    Put(String),
    Append(String),
}

/// A key-value store's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// The value read; a key never written reads as `""`.
    Get(String),
    Put,
    Append,
}

/// A get/put/append key-value store whose values start as `""` (the classic lab's KV service),
/// partitioned by key: its state is the value of one key.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvStore;

impl SequentialSpec for KvStore {
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &KvInput, output: Option<&KvOutput>) -> Option<String> {
        match (&input.op, output) {
            (KvOp::Get, None) => Some(state.clone()),
            (KvOp::Get, Some(KvOutput::Get(v))) => (v == state).then(|| state.clone()),
            (KvOp::Put(v), None | Some(KvOutput::Put)) => Some(v.clone()),
            (KvOp::Append(v), None | Some(KvOutput::Append)) => {
                let mut next = String::with_capacity(state.len() + v.len());
                next.push_str(state);
                next.push_str(v);
                Some(next)
            }
            _ => None,
        }
    }

    fn partition(&self, input: &KvInput) -> u64 {
        input.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_register_follows_etcd() {
        let s = CasRegister;
        let cas = RegisterInput::Cas { from: 1, to: 2 };
        assert_eq!(
            s.step(&Some(1), &cas, Some(&RegisterOutput::Cas(true))),
            Some(Some(2))
        );
        assert_eq!(
            s.step(&Some(1), &cas, Some(&RegisterOutput::Cas(false))),
            None
        );
        assert_eq!(
            s.step(&Some(3), &cas, Some(&RegisterOutput::Cas(false))),
            Some(Some(3))
        );
        assert_eq!(s.step(&None, &cas, None), Some(None));
        assert_eq!(s.step(&Some(1), &cas, None), Some(Some(2)));
        assert_eq!(
            s.step(
                &None,
                &RegisterInput::Read,
                Some(&RegisterOutput::Read(None))
            ),
            Some(None)
        );
        assert_eq!(
            s.step(
                &Some(4),
                &RegisterInput::Read,
                Some(&RegisterOutput::Read(None))
            ),
            None
        );
        // A plain register has no compare-and-set.
        assert_eq!(Register.step(&Some(1), &cas, None), None);
    }

    #[test]
    fn kv_appends_and_reads_per_key() {
        let s = KvStore;
        let append = KvInput {
            key: 7,
            op: KvOp::Append("x".into()),
        };
        assert_eq!(s.partition(&append), 7);
        let a = s.step(&"ab".to_string(), &append, Some(&KvOutput::Append));
        assert_eq!(a.as_deref(), Some("abx"));
        let get = KvInput {
            key: 7,
            op: KvOp::Get,
        };
        assert!(s
            .step(&"abx".into(), &get, Some(&KvOutput::Get("ab".into())))
            .is_none());
        assert!(s.step(&"abx".into(), &get, Some(&KvOutput::Put)).is_none());
    }
}
