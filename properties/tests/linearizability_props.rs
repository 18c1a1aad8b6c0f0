//! Property tests of the linearizability checker: histories produced by a sequential object with
//! random concurrent overlaps are accepted, an injected impossible read is rejected, and on small
//! random histories the checker agrees with a brute-force search of every order.

use proptest::prelude::*;

use properties::linearizability::spec::{KvInput, KvOp, KvOutput, RegisterInput, RegisterOutput};
use properties::linearizability::{
    check, check_brute_force, CasRegister, History, KvStore, Operation, Register, SequentialSpec,
    Verdict,
};

fn register_input() -> impl Strategy<Value = RegisterInput> {
    prop_oneof![
        Just(RegisterInput::Read),
        (0..4i64).prop_map(RegisterInput::Write),
        (0..4i64, 0..4i64).prop_map(|(from, to)| RegisterInput::Cas { from, to }),
    ]
}

fn kv_input() -> impl Strategy<Value = KvInput> {
    (0..2u64, 0..3u8, 0..3u8).prop_map(|(key, kind, v)| KvInput {
        key,
        op: match kind {
            0 => KvOp::Get,
            1 => KvOp::Put(format!("p{v}")),
            _ => KvOp::Append(format!("a{v}")),
        },
    })
}

/// How one operation of a generated history is observed.
#[derive(Clone, Debug)]
struct Shape {
    /// How long before its linearization point it was called, and how long after it returned.
    before: u64,
    after: u64,
    /// Its result is unknown.
    unknown: bool,
    /// It never returned (stays open to the end).
    open: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        0..25u64,
        0..25u64,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(before, after, unknown, open)| Shape {
            before,
            after,
            unknown,
            open,
        })
}

/// Runs `inputs` sequentially on `spec`, operation i taking effect at time 100 + 10 i, and
/// observes each through its shape: the result is a linearizable history.
fn linearizable_history<S: SequentialSpec>(
    spec: &S,
    inputs: Vec<S::Input>,
    shapes: &[Shape],
    output: impl Fn(&S::State, &S::Input) -> S::Output,
) -> History<S::Input, S::Output> {
    let mut state = spec.init();
    let mut ops = Vec::new();
    for (i, (input, shape)) in inputs.into_iter().zip(shapes).enumerate() {
        let at = 100 + 10 * i as u64;
        let out = output(&state, &input);
        state = spec
            .step(&state, &input, Some(&out))
            .expect("the object accepts its own results");
        ops.push(Operation {
            client: i as u64,
            call: at - shape.before,
            ret: if shape.open {
                u64::MAX
            } else {
                at + shape.after + 1
            },
            input,
            output: (!shape.unknown && !shape.open).then_some(out),
        });
    }
    History::new(ops)
}

fn register_output(state: &Option<i64>, input: &RegisterInput) -> RegisterOutput {
    match input {
        RegisterInput::Read => RegisterOutput::Read(*state),
        RegisterInput::Write(_) => RegisterOutput::Write,
        RegisterInput::Cas { from, .. } => RegisterOutput::Cas(*state == Some(*from)),
    }
}

fn kv_output(state: &str, input: &KvInput) -> KvOutput {
    match input.op {
        KvOp::Get => KvOutput::Get(state.to_string()),
        KvOp::Put(_) => KvOutput::Put,
        KvOp::Append(_) => KvOutput::Append,
    }
}

/// The KV store's state for one key, as the generator needs it: run the whole history's inputs
/// through per-key states.
fn kv_history(inputs: Vec<KvInput>, shapes: &[Shape]) -> History<KvInput, KvOutput> {
    // Each key is its own object; linearize them on one timeline, each key with its own state.
    let mut states: [String; 2] = Default::default();
    let mut ops = Vec::new();
    for (i, (input, shape)) in inputs.into_iter().zip(shapes).enumerate() {
        let at = 100 + 10 * i as u64;
        let state = &mut states[input.key as usize];
        let out = kv_output(state, &input);
        *state = KvStore
            .step(state, &input, Some(&out))
            .expect("accepts its own results");
        ops.push(Operation {
            client: i as u64,
            call: at - shape.before,
            ret: if shape.open {
                u64::MAX
            } else {
                at + shape.after + 1
            },
            input,
            output: (!shape.unknown && !shape.open).then_some(out),
        });
    }
    History::new(ops)
}

fn is_linearizable(v: &Verdict) -> bool {
    match v {
        Verdict::Linearizable => true,
        Verdict::NotLinearizable(_) => false,
        Verdict::Unknown => panic!("no time budget was given"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn histories_of_a_sequential_register_are_linearizable(
        (inputs, shapes) in (1..80usize).prop_flat_map(|n| (
            prop::collection::vec(register_input(), n),
            prop::collection::vec(shape(), n),
        ))
    ) {
        let h = linearizable_history(&CasRegister, inputs, &shapes, register_output);
        prop_assert!(is_linearizable(&check(&CasRegister, &h, None)));
    }

    #[test]
    fn histories_of_a_sequential_kv_store_are_linearizable(
        (inputs, shapes) in (1..80usize).prop_flat_map(|n| (
            prop::collection::vec(kv_input(), n),
            prop::collection::vec(shape(), n),
        ))
    ) {
        let h = kv_history(inputs, &shapes);
        prop_assert!(is_linearizable(&check(&KvStore, &h, None)));
    }

    #[test]
    fn an_impossible_read_is_rejected(
        (inputs, shapes) in (1..60usize).prop_flat_map(|n| (
            prop::collection::vec(register_input(), n),
            prop::collection::vec(shape(), n),
        )),
        at in any::<prop::sample::Index>(),
    ) {
        let mut h = linearizable_history(&CasRegister, inputs, &shapes, register_output);
        // A read, known to have returned, of a value nobody ever wrote.
        let i = at.index(h.len());
        let op = &mut h.ops[i];
        op.input = RegisterInput::Read;
        op.output = Some(RegisterOutput::Read(Some(1_000)));
        if op.ret == u64::MAX {
            op.ret = op.call + 1;
        }
        match check(&CasRegister, &h, None) {
            Verdict::NotLinearizable(f) => prop_assert!(!f.unplaced.is_empty()),
            other => prop_assert!(false, "accepted an impossible read: {other:?}"),
        }
    }

    #[test]
    fn agrees_with_brute_force_on_small_register_histories(
        ops in prop::collection::vec(
            (register_input(), 0..4i64, prop::bool::ANY, 0..30u64, 1..30u64, prop::bool::weighted(0.15)),
            0..7,
        )
    ) {
        let h = History::new(ops.into_iter().enumerate().map(|(i, (input, v, ok, call, len, unknown))| {
            let output = match input {
                RegisterInput::Read => RegisterOutput::Read((v > 0).then_some(v)),
                RegisterInput::Write(_) => RegisterOutput::Write,
                RegisterInput::Cas { .. } => RegisterOutput::Cas(ok),
            };
            Operation { client: i as u64, call, ret: call + len, input, output: (!unknown).then_some(output) }
        }).collect());
        prop_assert_eq!(is_linearizable(&check(&CasRegister, &h, None)), check_brute_force(&CasRegister, &h));
    }

    /// With results unknown and operations open to the end (which the checker leaves out when
    /// no read could show them, `SequentialSpec::unobserved`; the brute force keeps them).
    #[test]
    fn agrees_with_brute_force_on_small_kv_histories(
        ops in prop::collection::vec((kv_input(), 0..6u8, 0..30u64, 1..30u64, 0..8u8), 0..8)
    ) {
        let h = History::new(ops.into_iter().enumerate().map(|(i, (input, v, call, len, fate))| {
            let output = match input.op {
                KvOp::Get => {
                    KvOutput::Get(["", "p1", "a1a2", "p1a1", "a2", "p0a0"][v as usize].to_string())
                }
                KvOp::Put(_) => KvOutput::Put,
                KvOp::Append(_) => KvOutput::Append,
            };
            // 0: open to the end (indefinite); 1: returned, result unknown.
            let ret = if fate == 0 { u64::MAX } else { call + len };
            Operation { client: i as u64, call, ret, input, output: (fate > 1).then_some(output) }
        }).collect());
        prop_assert_eq!(is_linearizable(&check(&KvStore, &h, None)), check_brute_force(&KvStore, &h));
    }

    #[test]
    fn agrees_with_brute_force_on_small_register_histories_with_open_writes(
        ops in prop::collection::vec(
            (prop::bool::ANY, 0..4i64, 0..30u64, 1..30u64, 0..6u8),
            0..8,
        )
    ) {
        let h = History::new(ops.into_iter().enumerate().map(|(i, (write, v, call, len, fate))| {
            let (input, output) = if write {
                (RegisterInput::Write(v), RegisterOutput::Write)
            } else {
                (RegisterInput::Read, RegisterOutput::Read((v > 0).then_some(v)))
            };
            let ret = if fate == 0 { u64::MAX } else { call + len };
            Operation { client: i as u64, call, ret, input, output: (fate > 1).then_some(output) }
        }).collect());
        prop_assert_eq!(is_linearizable(&check(&Register, &h, None)), check_brute_force(&Register, &h));
        prop_assert_eq!(is_linearizable(&check(&CasRegister, &h, None)), check_brute_force(&CasRegister, &h));
    }
}

/// The classic non-linearizable example: a read that sees a write's value, then a later read that
/// sees the old value again (Herlihy & Wing, Figure 1's spirit).
#[test]
fn a_stale_read_after_a_fresh_one_is_not_linearizable() {
    let op = |client, call, ret, input, output| Operation {
        client,
        call,
        ret,
        input,
        output: Some(output),
    };
    let h = History::new(vec![
        op(0, 0, 10, RegisterInput::Write(1), RegisterOutput::Write),
        op(1, 1, 3, RegisterInput::Read, RegisterOutput::Read(Some(1))),
        op(2, 4, 6, RegisterInput::Read, RegisterOutput::Read(None)),
    ]);
    match check(&CasRegister, &h, None) {
        Verdict::NotLinearizable(f) => {
            assert_eq!(f.linearized, vec![0, 1], "write, then the fresh read");
            assert_eq!(f.unplaced, vec![2], "the stale read cannot follow");
        }
        other => panic!("expected not linearizable, got {other:?}"),
    }
    assert!(!check_brute_force(&CasRegister, &h));
    // Without the fresh read it is fine: the stale read goes before the write.
    let h = History::new(vec![h.ops[0].clone(), h.ops[2].clone()]);
    assert_eq!(check(&CasRegister, &h, None), Verdict::Linearizable);
}

/// A budget that runs out gives `Unknown`, never a guess: a history with many concurrent writes and
/// reads of values that force a deep search.
#[test]
fn an_exhausted_budget_is_unknown() {
    // 40 concurrent writes of distinct values, then a read of a value never written, all overlapping:
    // the search must try very many orders before it can conclude.
    let mut ops: Vec<Operation<RegisterInput, RegisterOutput>> = (0..40)
        .map(|i| Operation {
            client: i,
            call: 0,
            ret: 1000,
            input: RegisterInput::Write(i as i64),
            output: Some(RegisterOutput::Write),
        })
        .collect();
    ops.extend((0..40).map(|i| Operation {
        client: 100 + i,
        call: 0,
        ret: 1000,
        input: RegisterInput::Read,
        output: Some(RegisterOutput::Read(Some(i as i64 % 7))),
    }));
    ops.push(Operation {
        client: 999,
        call: 0,
        ret: 1000,
        input: RegisterInput::Read,
        output: Some(RegisterOutput::Read(Some(77))),
    });
    let h = History::new(ops);
    assert_eq!(
        check(
            &CasRegister,
            &h,
            Some(std::time::Duration::from_millis(200))
        ),
        Verdict::Unknown
    );
}
