//! The actors one step at a time (no checker), the Output Requirement's check on its own, then
//! the checker on small configurations. The default's verdicts and counts are pinned in
//! `reports/vmft.json` by the checker crate, and every seeded bug by its `bugs` test.

use std::borrow::Cow;
use std::collections::BTreeSet;

use stateright::actor::{Actor, Command, Id, Out};
use stateright::{Checker, Expectation, Model};

use super::actor::{
    Event, Role, VmCfg, VmState, VmftActor, VmftBug, VmftMsg, VmftState, VmftTimer,
};
use super::model::{self, one_execution, Fault, VmftCfg, BACKUP, CLIENT, DISK, PRIMARY};

type Cmd = Command<VmftMsg, VmftTimer, (), ()>;

fn vm_cfg(primary: bool, bug: Option<VmftBug>) -> VmCfg {
    VmCfg {
        peer: Id::from(if primary { BACKUP } else { PRIMARY }),
        disk: Id::from(DISK),
        client: Id::from(CLIENT),
        primary,
        partition: false,
        bug,
        timing: None,
        alone: false,
    }
}

/// The messages among `cmds`, and whether the replay timer was set.
fn sends(cmds: Out<VmftActor>) -> (Vec<(Id, VmftMsg)>, bool) {
    let mut sent = Vec::new();
    let mut replay = false;
    for c in cmds {
        match c {
            Cmd::Send(dst, m) => sent.push((dst, m)),
            Cmd::SetTimer(VmftTimer::Replay, _) => replay = true,
            _ => {}
        }
    }
    (sent, replay)
}

fn deliver(cfg: &VmCfg, s: &mut VmState, src: usize, msg: VmftMsg) -> Vec<(Id, VmftMsg)> {
    let mut o = Out::new();
    cfg.on_msg(s, Id::from(src), msg, &mut o);
    sends(o).0
}

fn input(seq: u64, x: u64) -> VmftMsg {
    VmftMsg::Input { seq, x }
}

fn output(seq: u64, value: u64) -> (Id, VmftMsg) {
    (Id::from(CLIENT), VmftMsg::Output { seq, value })
}

fn log(seq: u64, event: Event) -> VmftMsg {
    VmftMsg::Log { seq, event }
}

/// Reference: §2.2, the Output Rule: the primary executes and logs the input at once, but holds
/// its output until the backup acknowledges the entry.
#[test]
fn the_primary_holds_output_until_the_log_ack() {
    let cfg = vm_cfg(true, None);
    let mut p = VmState::new(Role::Primary);
    let sent = deliver(&cfg, &mut p, CLIENT, input(1, 2));
    let in1 = Event::Input { seq: 1, x: 2 };
    assert_eq!(sent, vec![(Id::from(BACKUP), log(1, in1))]);
    assert_eq!(p.acc, 2);
    // An interrupt is logged too, and produces no output.
    let mut o = Out::new();
    cfg.on_timeout(&mut p, VmftTimer::Interrupt, &mut o);
    assert_eq!(
        sends(o).0,
        vec![(Id::from(BACKUP), log(2, Event::Interrupt))]
    );
    assert_eq!(p.acc, 3);
    // A copy of input 1 (the client sent it again) is not executed twice.
    assert!(deliver(&cfg, &mut p, CLIENT, input(1, 2)).is_empty());
    // The backup's acknowledgement of entry 1 releases the output of input 1.
    let sent = deliver(&cfg, &mut p, BACKUP, VmftMsg::LogAck { seq: 1 });
    assert_eq!(sent, vec![output(1, 2)]);
    assert_eq!(p.acked, 1);
    // Acknowledging entry 2 (an interrupt) releases nothing more.
    assert!(deliver(&cfg, &mut p, BACKUP, VmftMsg::LogAck { seq: 2 }).is_empty());

    // The seeded bug sends the output at once.
    let cfg = vm_cfg(true, Some(VmftBug::OutputBeforeAck));
    let mut p = VmState::new(Role::Primary);
    let sent = deliver(&cfg, &mut p, CLIENT, input(1, 2));
    assert_eq!(sent, vec![(Id::from(BACKUP), log(1, in1)), output(1, 2)]);
}

/// Reference: §2.1-2.2: the backup acknowledges each entry as it receives it and replays later,
/// taking the interrupt where the log puts it; its outputs are not sent.
#[test]
fn the_backup_acks_on_receipt_and_replays_in_log_order() {
    let cfg = vm_cfg(false, None);
    let mut b = VmState::new(Role::Backup);
    let mut o = Out::new();
    cfg.on_msg(&mut b, Id::from(PRIMARY), log(1, Event::Interrupt), &mut o);
    let (sent, replay) = sends(o);
    assert_eq!(sent, vec![(Id::from(PRIMARY), VmftMsg::LogAck { seq: 1 })]);
    assert!(replay, "the replay timer is set");
    assert_eq!((b.acc, b.replayed), (0, 0), "received, not yet replayed");
    // Its own network input does not reach its machine; an entry out of order is ignored.
    assert!(deliver(&cfg, &mut b, CLIENT, input(1, 2)).is_empty());
    assert!(deliver(&cfg, &mut b, PRIMARY, log(3, Event::Interrupt)).is_empty());
    let in1 = Event::Input { seq: 1, x: 2 };
    assert_eq!(
        deliver(&cfg, &mut b, PRIMARY, log(2, in1)),
        vec![(Id::from(PRIMARY), VmftMsg::LogAck { seq: 2 })]
    );
    let mut o = Out::new();
    cfg.on_timeout(&mut b, VmftTimer::Replay, &mut o);
    assert!(sends(o).0.is_empty(), "a backup's outputs are dropped");
    // The interrupt first, then the input: (0 + 1) * 3 + 2.
    assert_eq!((b.acc, b.replayed, b.inputs_done), (5, 2, 1));
    assert_eq!(b.outputs, vec![(2, 1, 5)]);
}

/// Reference: §2.3: the atomic test-and-set: the first VM to ask wins, the second is refused.
#[test]
fn the_test_and_set_refuses_the_second() {
    let disk = VmftActor::Disk;
    let mut o = Out::new();
    let start = disk.on_start(Id::from(DISK), &None, &mut o);
    let mut state = Cow::Owned(start);
    let ask = |state: &mut Cow<VmftState>, from: usize| {
        let mut o = Out::new();
        disk.on_msg(
            Id::from(DISK),
            state,
            Id::from(from),
            VmftMsg::TestAndSet,
            &mut o,
        );
        sends(o).0
    };
    let won = |from: usize, won: bool| vec![(Id::from(from), VmftMsg::TestAndSetResult { won })];
    assert_eq!(ask(&mut state, BACKUP), won(BACKUP, true));
    assert_eq!(ask(&mut state, PRIMARY), won(PRIMARY, false));
    // Its owner asking again is told the same.
    assert_eq!(ask(&mut state, BACKUP), won(BACKUP, true));
}

/// Reference: §2.3: a suspecting VM asks the disk; the winner goes live (a backup replays its
/// whole log first, sends the outputs it cannot know were sent and takes over the address),
/// the loser halts.
#[test]
fn the_winner_goes_live_and_the_loser_halts() {
    let cfg = vm_cfg(false, None);
    let mut b = VmState::new(Role::Backup);
    let in1 = Event::Input { seq: 1, x: 2 };
    deliver(&cfg, &mut b, PRIMARY, log(1, in1));
    let mut o = Out::new();
    cfg.on_timeout(&mut b, VmftTimer::PeerTimeout, &mut o);
    assert_eq!(sends(o).0, vec![(Id::from(DISK), VmftMsg::TestAndSet)]);
    assert!(b.asked);
    let mut won = b.clone();
    let sent = deliver(
        &cfg,
        &mut won,
        DISK,
        VmftMsg::TestAndSetResult { won: true },
    );
    assert_eq!(won.role, Role::Live);
    assert_eq!(won.replayed, 1, "drained before going live");
    assert_eq!(
        sent,
        vec![output(1, 2), (Id::from(CLIENT), VmftMsg::GoneLive)]
    );
    // Live, it answers a new input at once, and ignores a copy of one it executed.
    assert!(deliver(&cfg, &mut won, CLIENT, input(1, 2)).is_empty());
    assert_eq!(
        deliver(&cfg, &mut won, CLIENT, input(2, 3)),
        vec![output(2, 9)]
    );

    let mut lost = b;
    deliver(
        &cfg,
        &mut lost,
        DISK,
        VmftMsg::TestAndSetResult { won: false },
    );
    assert_eq!(lost.role, Role::Halted);
    assert!(deliver(&cfg, &mut lost, PRIMARY, log(2, Event::Interrupt)).is_empty());

    // The seeded bugs: going live without draining, and without sending the outputs again.
    for (bug, replayed, outputs) in [
        (VmftBug::GoLiveBeforeDrain, 0, vec![]),
        (VmftBug::NoReissueOutput, 1, vec![]),
    ] {
        let cfg = vm_cfg(false, Some(bug));
        let mut b = VmState::new(Role::Backup);
        deliver(&cfg, &mut b, PRIMARY, log(1, in1));
        b.asked = true;
        let sent = deliver(&cfg, &mut b, DISK, VmftMsg::TestAndSetResult { won: true });
        assert_eq!(b.replayed, replayed, "{bug:?}");
        let mut expected = outputs;
        expected.push((Id::from(CLIENT), VmftMsg::GoneLive));
        assert_eq!(sent, expected, "{bug:?}");
    }
}

/// Reference: §2.3: a primary that wins goes live alone and sends the outputs it held.
#[test]
fn a_primary_that_wins_sends_what_it_held() {
    let cfg = vm_cfg(true, None);
    let mut p = VmState::new(Role::Primary);
    deliver(&cfg, &mut p, CLIENT, input(1, 2));
    p.asked = true;
    let sent = deliver(&cfg, &mut p, DISK, VmftMsg::TestAndSetResult { won: true });
    assert_eq!((p.role, sent), (Role::Live, vec![output(1, 2)]));
}

/// The Output Requirement's check: one execution of the inputs in order, with interrupts
/// among them, must give every output.
#[test]
fn outputs_must_come_from_one_execution() {
    let xs = [2, 3];
    let got = |outs: &[(u64, u64)]| outs.iter().copied().collect::<BTreeSet<_>>();
    assert!(one_execution(&got(&[]), &xs, 0));
    assert!(one_execution(&got(&[(1, 2), (2, 9)]), &xs, 0));
    // An interrupt before input 1, or between the inputs.
    assert!(!one_execution(&got(&[(1, 5)]), &xs, 0));
    assert!(one_execution(&got(&[(1, 5)]), &xs, 1));
    assert!(one_execution(&got(&[(1, 2), (2, 12)]), &xs, 1));
    // Input 2 answered from an execution without input 1.
    assert!(!one_execution(&got(&[(1, 2), (2, 3)]), &xs, 1));
    // Two different outputs for one input.
    assert!(!one_execution(&got(&[(1, 2), (1, 5)]), &xs, 1));
}

/// The same check on a long recorded run (the TCP tests' case): the interrupts between two
/// outputs are read off the outputs, so a budget of millions costs nothing, and a gap between
/// outputs is searched.
#[test]
fn one_execution_is_linear_on_a_long_run_with_a_large_budget() {
    let xs: Vec<u64> = (1..=1000).map(|k| k * 7).collect();
    let (mut acc, mut outs) = (0u64, BTreeSet::new());
    for (k, x) in xs.iter().enumerate() {
        for _ in 0..k % 4 {
            acc = Event::Interrupt.apply(acc);
        }
        acc = Event::Input { seq: 0, x: *x }.apply(acc);
        outs.insert((k as u64 + 1, acc));
        assert_eq!(
            model::before_input(acc, *x),
            acc.wrapping_sub(*x).wrapping_mul(0xAAAA_AAAA_AAAA_AAAB)
        );
    }
    let used: usize = (0..1000).map(|k| k % 4).sum();
    assert!(one_execution(&outs, &xs, used));
    assert!(one_execution(&outs, &xs, 1 << 40));
    assert!(!one_execution(&outs, &xs, used - 1));
    // Input 500 answered by a machine that missed input 499.
    let mut wrong = outs.clone();
    let (_, v499) = *wrong.iter().find(|(s, _)| *s == 499).unwrap();
    let (_, v500) = *wrong.iter().find(|(s, _)| *s == 500).unwrap();
    wrong.remove(&(500, v500));
    wrong.insert((
        500,
        Event::Input { seq: 0, x: xs[499] }.apply(model::before_input(v499, xs[498])),
    ));
    assert!(!one_execution(&wrong, &xs, 1 << 20));
    // With outputs missing (gaps), the interrupts before the unanswered inputs are searched.
    let sparse: BTreeSet<_> = outs.iter().filter(|(s, _)| s % 3 == 0).copied().collect();
    assert!(one_execution(&sparse, &xs, used));
    assert!(!one_execution(&sparse, &xs, 0));
}

/// Runs stateright's BFS on `cfg` to the end: the unique and generated state counts, and the
/// `sometimes` properties not found; panics on a violated `always` or `eventually` property.
fn check(cfg: VmftCfg) -> (usize, usize, Vec<&'static str>) {
    let properties = cfg.clone().into_model().properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    let mut missed = Vec::new();
    for p in properties {
        match (p.expectation, found.contains_key(p.name)) {
            (Expectation::Sometimes, false) => missed.push(p.name),
            (Expectation::Sometimes, true) | (_, false) => {}
            (_, true) => panic!("{} violated", p.name),
        }
    }
    (checker.unique_state_count(), checker.state_count(), missed)
}

/// The properties `cfg` violates (or, for a `sometimes`, does not find).
fn broken(cfg: VmftCfg) -> BTreeSet<&'static str> {
    let properties = cfg.clone().into_model().properties();
    let checker = cfg.into_model().checker().spawn_bfs().join();
    let found = checker.discoveries();
    properties
        .into_iter()
        .filter(|p| (p.expectation == Expectation::Sometimes) != found.contains_key(p.name))
        .map(|p| p.name)
        .collect()
}

fn cfg(fault: Fault, inputs: usize, interrupts: usize) -> VmftCfg {
    VmftCfg {
        inputs,
        interrupts,
        fault,
        bug: None,
    }
}

#[test]
fn can_model_vmft() {
    assert_eq!(check(cfg(Fault::None, 2, 1)), (133, 253, vec![]));
    assert_eq!(check(cfg(Fault::Crash, 1, 0)), (62, 91, vec![]));
    assert_eq!(check(cfg(Fault::Crash, 2, 1)), (1_288, 2_301, vec![]));
    assert_eq!(check(cfg(Fault::Partition, 1, 1)), (3_177, 8_581, vec![]));
    assert_eq!(check(cfg(Fault::Either, 2, 0)), (1_267, 2_951, vec![]));
}

#[test]
fn each_seeded_bug_breaks_its_property() {
    let bug = |fault, bug| VmftCfg {
        bug: Some(bug),
        ..cfg(fault, 2, 1)
    };
    assert_eq!(
        broken(bug(Fault::Crash, VmftBug::OutputBeforeAck)),
        BTreeSet::from([
            model::OUTPUT_REQUIREMENT,
            model::OUTPUT_RULE,
            model::HOLDS_OUTPUT
        ])
    );
    assert_eq!(
        broken(bug(Fault::Partition, VmftBug::GoLiveWithoutTestAndSet)),
        BTreeSet::from([
            model::OUTPUT_REQUIREMENT,
            model::AT_MOST_ONE_LIVE,
            model::REFUSED
        ])
    );
    assert_eq!(
        broken(bug(Fault::Crash, VmftBug::GoLiveBeforeDrain)),
        BTreeSet::from([
            model::OUTPUT_REQUIREMENT,
            model::REPLAYS_WHOLE_LOG,
            model::DRAINS_AT_GO_LIVE
        ])
    );
    assert!(
        broken(bug(Fault::Crash, VmftBug::NoReissueOutput)).contains(model::EVERY_INPUT_ANSWERED)
    );
}

/// The shortest split brain: the channel is cut and each VM, suspecting the other, goes live.
#[test]
fn split_brain_without_the_test_and_set() {
    use stateright::actor::ActorModelAction::Timeout;
    let checker = VmftCfg {
        bug: Some(VmftBug::GoLiveWithoutTestAndSet),
        ..cfg(Fault::Partition, 2, 1)
    }
    .into_model()
    .checker()
    .spawn_bfs()
    .join();
    checker.assert_discovery(
        model::AT_MOST_ONE_LIVE,
        vec![
            Timeout(Id::from(PRIMARY), VmftTimer::Partition),
            Timeout(Id::from(PRIMARY), VmftTimer::PeerTimeout),
            Timeout(Id::from(BACKUP), VmftTimer::PeerTimeout),
        ],
    );
}

/// Reference: §2.2, the reason for the Output Rule. With one input the shortest counterexample
/// is the paper's: the primary answers input 1 and crashes before the backup has its entry; the
/// new primary takes an interrupt first, executes the client's copy of input 1, and answers it
/// differently.
#[test]
fn output_before_ack_gives_one_input_two_outputs() {
    let checker = VmftCfg {
        bug: Some(VmftBug::OutputBeforeAck),
        ..cfg(Fault::Crash, 1, 1)
    }
    .into_model()
    .checker()
    .spawn_bfs()
    .join();
    let path = checker
        .discovery(model::OUTPUT_REQUIREMENT)
        .expect("a counterexample");
    let last = path.last_state();
    // 0 * 3 + 2 from the primary; (0 + 1) * 3 + 2 from the new primary.
    assert_eq!(last.history.received, BTreeSet::from([(1, 2), (1, 5)]));
    assert_eq!(model::vm(last, BACKUP).role, Role::Live);
}
