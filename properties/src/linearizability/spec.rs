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

    /// Whether an operation whose result is unknown can be left out of its partition without
    /// changing the verdict, given `outputs`, every known result in the partition. Two cases
    /// qualify, and the search drops them (soak histories carry many):
    /// - it never changes the state (a read): it is accepted anywhere in its window, and nothing
    ///   sees it;
    /// - it is still open at the end of the history (indefinite) and no result in `outputs`
    ///   could show its effect: a linearization with it has no read between it and whatever
    ///   erases its effect, so it stays one without it; and one without it takes it as its last
    ///   operation.
    ///
    /// The default keeps everything.
    ///
    /// ([`SequentialSpec::overwrites`] and [`SequentialSpec::reaches`] are the search's
    /// lookahead.)
    fn unobserved(
        &self,
        _input: &Self::Input,
        _indefinite: bool,
        _outputs: &[&Self::Output],
    ) -> bool {
        false
    }

    /// Whether `input` may replace the state by one that does not extend it (a put; not an
    /// append or a read). The default: every operation may.
    fn overwrites(&self, _input: &Self::Input) -> bool {
        true
    }

    /// Whether operations that do not overwrite can take `state` to one where a read gives
    /// `later`: `Some(false)` only when none can; `None` when `later` says nothing of the state
    /// (a write's acknowledgement). The search drops a step to a state that cannot reach the
    /// next pending read's result with nothing that overwrites in between.
    fn reaches(&self, _state: &Self::State, _later: &Self::Output) -> Option<bool> {
        None
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

            /// A read, or an indefinite write no read returned. With compare-and-set, a write
            /// is seen by a failed compare-and-set too: only reads go.
            fn unobserved(
                &self,
                input: &RegisterInput,
                indefinite: bool,
                outputs: &[&RegisterOutput],
            ) -> bool {
                match input {
                    RegisterInput::Read => true,
                    RegisterInput::Write(v) if indefinite && !$cas => !outputs
                        .iter()
                        .any(|o| **o == RegisterOutput::Read(Some(*v))),
                    _ => false,
                }
            }

            fn overwrites(&self, input: &RegisterInput) -> bool {
                !matches!(input, RegisterInput::Read)
            }

            fn reaches(&self, state: &Option<i64>, later: &RegisterOutput) -> Option<bool> {
                match later {
                    RegisterOutput::Read(v) => Some(v == state),
                    _ => None,
                }
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

    /// A get; an indefinite put of `v` that no get's value begins with, and an indefinite
    /// append of `v` that no get's value contains (until a put, the value begins with a put's
    /// and contains every append's since).
    fn unobserved(&self, input: &KvInput, indefinite: bool, outputs: &[&KvOutput]) -> bool {
        let seen = |f: &dyn Fn(&str) -> bool| {
            outputs.iter().any(|o| match o {
                KvOutput::Get(r) => f(r),
                _ => false,
            })
        };
        match &input.op {
            KvOp::Get => true,
            KvOp::Append(v) if v.is_empty() => true,
            KvOp::Put(v) if indefinite && !v.is_empty() => !seen(&|r| r.starts_with(v.as_str())),
            KvOp::Append(v) if indefinite => !seen(&|r| r.contains(v.as_str())),
            _ => false,
        }
    }

    fn overwrites(&self, input: &KvInput) -> bool {
        matches!(input.op, KvOp::Put(_))
    }

    /// Appends only extend a value: a later read's value begins with the state.
    fn reaches(&self, state: &String, later: &KvOutput) -> Option<bool> {
        match later {
            KvOutput::Get(r) => Some(r.starts_with(state.as_str())),
            _ => None,
        }
    }
}

/// An operation on one of ZooKeeper's znodes (Hunt et al., §2.2): `setData` with an expected
/// version (`-1`: any) and `getData`. Znodes are numbered by whoever builds the history; each
/// starts with no data at version 0, as a znode created empty does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZnodeInput {
    pub znode: u64,
    pub op: ZnodeOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZnodeOp {
    /// `setData(path, data, version)`: write `data` if the znode's version is `version`, or
    /// whatever it is for `-1`.
    SetData { data: i64, version: i32 },
    /// `getData(path)`.
    GetData,
}

/// A znode's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZnodeOutput {
    /// The new version (`Stat.version`) after a `setData`, or `None` for `BadVersion` (-103).
    SetData(Option<i32>),
    /// The data (`None`: none written yet) and its version.
    GetData { data: Option<i64>, version: i32 },
}

/// ZooKeeper's znodes under `setData` and `getData`, partitioned by znode: its state is one
/// znode's data and version. ZooKeeper promises linearizable writes (§2.3), so a history of
/// `setData`s must pass; `getData` is served from the local replica and is linearizable only
/// for a history whose reads followed a `sync` and no leader changed (§2.3's caveat).
#[derive(Clone, Copy, Debug, Default)]
pub struct Znode;

impl SequentialSpec for Znode {
    type State = (Option<i64>, i32);
    type Input = ZnodeInput;
    type Output = ZnodeOutput;

    fn init(&self) -> (Option<i64>, i32) {
        (None, 0)
    }

    fn step(
        &self,
        &(data, version): &(Option<i64>, i32),
        input: &ZnodeInput,
        output: Option<&ZnodeOutput>,
    ) -> Option<(Option<i64>, i32)> {
        match (&input.op, output) {
            (
                ZnodeOp::SetData {
                    data: new,
                    version: expected,
                },
                output,
            ) => {
                let matches = *expected == -1 || *expected == version;
                let next = if matches {
                    (Some(*new), version + 1)
                } else {
                    (data, version)
                };
                match output {
                    None => Some(next),
                    Some(ZnodeOutput::SetData(Some(v))) => {
                        (matches && *v == version + 1).then_some(next)
                    }
                    Some(ZnodeOutput::SetData(None)) => (!matches).then_some(next),
                    Some(ZnodeOutput::GetData { .. }) => None,
                }
            }
            (ZnodeOp::GetData, None) => Some((data, version)),
            (
                ZnodeOp::GetData,
                Some(ZnodeOutput::GetData {
                    data: d,
                    version: v,
                }),
            ) => (*d == data && *v == version).then_some((data, version)),
            (ZnodeOp::GetData, Some(ZnodeOutput::SetData(_))) => None,
        }
    }

    fn partition(&self, input: &ZnodeInput) -> u64 {
        input.znode
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

    #[test]
    fn znode_versions_as_zookeeper_counts_them() {
        let s = Znode;
        let set = |data, version| ZnodeInput {
            znode: 3,
            op: ZnodeOp::SetData { data, version },
        };
        assert_eq!(s.partition(&set(1, -1)), 3);
        // An unconditional write bumps the version; a conditional one only at its version.
        assert_eq!(
            s.step(
                &(None, 0),
                &set(5, -1),
                Some(&ZnodeOutput::SetData(Some(1)))
            ),
            Some((Some(5), 1))
        );
        assert_eq!(
            s.step(
                &(Some(5), 1),
                &set(6, 1),
                Some(&ZnodeOutput::SetData(Some(2)))
            ),
            Some((Some(6), 2))
        );
        assert_eq!(
            s.step(
                &(Some(5), 1),
                &set(6, 0),
                Some(&ZnodeOutput::SetData(Some(1)))
            ),
            None
        );
        assert_eq!(
            s.step(&(Some(5), 1), &set(6, 0), Some(&ZnodeOutput::SetData(None))),
            Some((Some(5), 1))
        );
        // Two writes with one expected version cannot both succeed.
        let after = s
            .step(&(None, 0), &set(1, 0), Some(&ZnodeOutput::SetData(Some(1))))
            .unwrap();
        assert_eq!(
            s.step(&after, &set(2, 0), Some(&ZnodeOutput::SetData(Some(1)))),
            None
        );
        let get = ZnodeInput {
            znode: 3,
            op: ZnodeOp::GetData,
        };
        let read = |data, version| ZnodeOutput::GetData { data, version };
        assert_eq!(
            s.step(&(Some(6), 2), &get, Some(&read(Some(6), 2))),
            Some((Some(6), 2))
        );
        assert_eq!(s.step(&(Some(6), 2), &get, Some(&read(Some(5), 1))), None);
    }
}
