//! A node's checks and fork choice on their own, then the checker on small configurations. The
//! defaults' verdicts and counts are pinned in `reports/bitcoin.json` by the checker crate, and
//! every seeded bug by its `bugs` test.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};
use stateright::{Checker, Model};

use super::model::{
    self, BitcoinActor, BitcoinBug, BitcoinCfg, Block, BlockId, BtcMsg, NodeState, Role, Tx, Txs,
    GENESIS,
};

fn honest(bug: Option<BitcoinBug>) -> (BitcoinActor, NodeState) {
    let actor = BitcoinActor {
        role: Role::Honest,
        peers: Vec::new(),
        z: 1,
        bug,
    };
    let mut o = Out::new();
    let s = actor.on_start(Id::from(0), &None, &mut o);
    (actor, s)
}

fn block(miner: u8, seq: u8, parent: BlockId, work: u8, txs: &[Tx]) -> Block {
    Block {
        id: BlockId { miner, seq },
        parent,
        work,
        txs: Txs::of(txs),
    }
}

fn deliver(actor: &BitcoinActor, s: &mut NodeState, b: Block) {
    let mut state = Cow::Borrowed(&*s);
    actor.on_msg(
        Id::from(0),
        &mut state,
        Id::from(1),
        BtcMsg::Block(b),
        &mut Out::new(),
    );
    *s = state.into_owned();
}

/// Reference: §4. A hard block (work 3) outweighs two easy ones (work 2 in all), whichever
/// arrives first, and an orphan waits for its parent; by height, the two easy ones win.
#[test]
fn the_tip_has_the_most_work_not_the_most_blocks() {
    let hard = block(1, 1, GENESIS, 3, &[]);
    let easy1 = block(2, 1, GENESIS, 1, &[]);
    let easy2 = block(2, 2, easy1.id, 1, &[]);
    for bug in [None, Some(BitcoinBug::LongestNotHeaviest)] {
        let (actor, mut s) = honest(bug);
        deliver(&actor, &mut s, easy2);
        assert_eq!(s.tip, GENESIS, "an orphan is not a tip");
        deliver(&actor, &mut s, hard);
        assert_eq!(s.tip, hard.id);
        deliver(&actor, &mut s, easy1);
        let expected = if bug.is_none() { hard.id } else { easy2.id };
        assert_eq!(s.tip, expected, "{bug:?}");
    }
}

/// Reference: §2 and CVE-2018-17144. A block whose own transactions spend the coin twice is
/// rejected; without the duplicate-input check it becomes the tip, and its chain spends twice.
#[test]
fn a_block_that_spends_an_output_twice_is_rejected() {
    let crafted = block(2, 1, GENESIS, 1, &[Tx::A, Tx::B]);
    let (actor, mut s) = honest(None);
    deliver(&actor, &mut s, crafted);
    assert!(s.rejected && s.tip == GENESIS && s.blocks.is_empty());

    let (actor, mut s) = honest(Some(BitcoinBug::NoDuplicateInputCheck));
    deliver(&actor, &mut s, crafted);
    assert_eq!(s.tip, crafted.id);
    assert!(model::spends_twice(&s.active()));
    // A chain that spends the coin in two blocks is invalid even with the bug.
    let b = block(2, 1, GENESIS, 1, &[Tx::B]);
    let a = block(1, 1, b.id, 1, &[Tx::A]);
    assert!(!model::valid_chain(
        &[&a, &b],
        Some(BitcoinBug::NoDuplicateInputCheck)
    ));
}

/// Small configurations: verdicts (stateright's own BFS) and unique state counts (a search
/// that tells states apart by equality).
#[test]
fn small_configurations_pass_with_pinned_counts() {
    let run = |cfg: BitcoinCfg, check: bool| {
        let exact = crate::catalog::count_exactly(&cfg.clone().into_model(), None);
        if check {
            let c = cfg.into_model().checker().threads(1).spawn_bfs().join();
            c.assert_properties();
        }
        exact
    };
    let counts = [
        run(BitcoinCfg::new(1, 1, false, None), false),
        run(BitcoinCfg::new(2, 0, true, None), true),
        run(BitcoinCfg::new(2, 1, true, None), true),
    ];
    assert_eq!(counts, [408, 21_212, 21_352]);
}

/// Reference: §11. A merchant that accepts on sight is paid with `A`, and the attacker's one
/// released block carries `B`: no fork at all, and the payment is gone.
#[test]
fn zero_confirmations_lose_the_payment_to_one_block() {
    let m = BitcoinCfg::new(1, 1, false, Some(BitcoinBug::ZeroConfirmations)).into_model();
    let c = m.checker().threads(1).spawn_bfs().join();
    let path = c
        .discovery(model::Z_CONFIRMATIONS)
        .expect("the payment is reverted");
    let last = path.last_state();
    assert_eq!(model::merchant(last).accepted, Some(GENESIS));
    assert_eq!(model::fork_work(last), 0);
}
