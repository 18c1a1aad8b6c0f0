//! Bitcoin: proof-of-work chains, the most-work fork choice, transactions that spend outputs
//! once, and a double spend against a merchant, with a private-mining attacker.
//!
//! Satoshi Nakamoto, "Bitcoin: A Peer-to-Peer Electronic Cash System" (2008), §§2, 4, 5, 11.
//!
//! # The protocol
//! Actors ([`model`]): two honest miners (`N0`, `N1`), the attacker (`X2`) and the merchant
//! (`M3`), a full node that does not mine.
//!
//! - **Transactions** (§2). A coin is an output of a transaction; a transaction spends outputs.
//!   The genesis block's coinbase pays the attacker's one coin, and two transactions spend it:
//!   `A` pays the merchant, `B` pays the attacker back (the double spend). A chain in which an
//!   output is spent twice is invalid, and so is a block whose own transactions spend one output
//!   twice.
//! - **Proof-of-work** (§4). A block is `{parent, work, txs}`. Mining is a nondeterministic step:
//!   a miner finds a block on its tip at toy difficulty, easy (work 1) or hard (work 3). A node's
//!   tip is the tip of the valid chain it knows with the most cumulative work ("the longest
//!   chain, which has the greatest proof-of-work effort invested in it"), not the most blocks;
//!   ties go to the smaller block hash (see below). A node that moves to a tip that does not
//!   extend its old one *reorganises*: the blocks it leaves go, and their transactions with
//!   them.
//! - **Network** (§5). Transactions and blocks are broadcast to all nodes and arrive in any
//!   order, after any delay (stateright's unordered network); a block whose parent has not
//!   arrived yet is kept as an orphan until it does. A miner puts into its block the
//!   transactions it has seen that its chain has not spent.
//! - **The attack** (§11). The attacker broadcasts `A`, so the merchant sees it; then it mines in
//!   private, from genesis, a chain whose first block carries `B`, and releases it whenever it
//!   likes. The merchant accepts the payment once `A` is `z` blocks deep in its chain (`z = 0`:
//!   as soon as it sees `A`, valid on its chain). The attacker may also mine one crafted block
//!   on genesis carrying both `A` and `B` (CVE-2018-17144's block), which it broadcasts at once.
//!
//! # Bounds and reductions
//! `--blocks` (default 3, at most 4) blocks are mined in all, by anyone; then mining stops. `--z` (default
//! 1; 0, 1 or 2) is the merchant's confirmations. `--crafted` (default 1) lets the attacker
//! try its crafted block (counted among the blocks). The defaults: 798,864 states, 6.6 s on one
//! thread; `--blocks 4` is far larger.
//!
//! - *Ties.* Bitcoin Core keeps the tip it saw first among tips of equal work, and the next
//!   block breaks the tie (§5). With the budget spent there is no next block, and two nodes
//!   could stay on two tips for ever; here a tie goes to the smaller block hash (a block's id
//!   stands for it), so that every node that knows the same blocks has the same tip.
//! - *No relays.* A miner sends its block to every other node itself, and the attacker sends
//!   `A` and its released blocks to every node: on a complete graph a relay only duplicates a
//!   message. Honest blocks are not sent to the attacker, whose strategy ignores them (it
//!   mines on its own chain from genesis).
//! - *One coin.* Only the output `A` and `B` fight over is modelled; coinbase outputs and fees
//!   are not.
//!
//! # Properties
//! For the honest nodes and the merchant (the attacker follows no rule):
//! - always *each node's tip has the most cumulative work among the valid blocks it knows*
//!   (§4); sometimes *a node reorganises*;
//! - always *no output is spent twice on a node's active chain* (§2); sometimes *a node rejects
//!   a block that spends an output twice within itself*;
//! - always *a payment accepted with z confirmations is not reverted (its chain carries `B`,
//!   not `A`) while the blocks forking off the merchant's chain as it was at acceptance carry
//!   less than z work* (§11, bounded): to leave `A`'s block the merchant must move to a chain
//!   with at least as much work, and the blocks that chain does not share with the old one
//!   carry at least the work of `A`'s block and those after it, at least `z`. §11 counts the
//!   attacker's blocks, of one difficulty, against honest miners who all extend one chain;
//!   here blocks differ in work, and an honest miner that heard the attacker's block first
//!   extends it, so the bound counts the work of every fork. Sometimes *a payment accepted with
//!   z confirmations is reverted, by forks with at least z work*;
//! - sometimes *a double spend against a merchant who accepts 0 confirmations*: it saw `A`
//!   (valid on its chain), and later `B` is on its chain and `A` is not;
//! - eventually *with mining stopped, every honest node and the merchant have the same tip*
//!   (§5; weak fairness for deliveries; every path is finite).
//!
//! # Seeded bugs
//! - `longest-not-heaviest`: fork choice by height. `N0` finds an easy block and `N1` a hard one,
//!   both on genesis; at equal height the tie goes to `N0`'s smaller hash, and `N1` leaves its
//!   own block, with three times the work, for `N0`'s (3 steps; with a third block, two easy
//!   blocks beat a hard one outright). Most cumulative work, only: the z-confirmation bound
//!   still holds, since a longer fork carries at least as much work as it has blocks.
//! - `no-duplicate-input-check` (CVE-2018-17144): a block's transactions are checked against
//!   the outputs unspent before the block, not against each other: the attacker's crafted block
//!   with `A` and `B` is accepted, and the chain spends the coin twice (no output spent twice;
//!   nothing is rejected).
//! - `zero-confirmations`: the merchant accepts as soon as it sees `A`, whatever `z`: the
//!   attacker's released chain carries `B`, and the payment is reverted without any fork (the
//!   z-confirmation property).
//!
//! Over TCP ([`node`]): full nodes with real 80-byte headers at a low target ([`consensus`]),
//! toy transactions, the most-work tip (ties: the first seen, as Core), reorganisations, gossip,
//! mining in bounded batches of nonces on a timer, and a miner that withholds a private chain;
//! `impls::bitcoin` runs them (`cluster bitcoin`, `client bitcoin`).
//!
//! Not modelled: the difficulty adjustment itself (a block's work is chosen, not derived from
//! timestamps), Merkle trees and simplified payment verification (§§7, 8), the incentive
//! (§6), coinbase maturity, more than one coin, and honest nodes that relay.

pub mod consensus;
pub mod model;
pub mod node;

pub use model::{
    BitcoinActor, BitcoinBug, BitcoinCfg, BitcoinModel, Block, BlockId, BtcMsg, BtcTimer,
    NodeState, Role, Tx, Txs, Work,
};

use crate::catalog::{Bug, Param, Params, Spec};

/// The `bitcoin` entry of the checker's registry.
pub struct BitcoinSpec;

impl Spec for BitcoinSpec {
    type Model = BitcoinModel;
    type State = model::BtcModelState;
    type Action = model::BtcAction;

    const NAME: &'static str = "bitcoin";
    const PAPER: &'static str =
        "Nakamoto, Bitcoin: A Peer-to-Peer Electronic Cash System (2008) §§2, 4, 5, 11";
    const SUMMARY: &'static str =
        "Bitcoin: blocks and transactions gossiped with delays, most-work fork choice, a private-mining attacker double-spending against a merchant that waits for z confirmations";
    const PARAMS: &'static [Param] = &[
        Param::int("blocks", "blocks mined in all (then mining stops)", 3, 1, 4),
        Param::int(
            "z",
            "confirmations the merchant waits for before it accepts the payment",
            1,
            0,
            2,
        ),
        Param::int(
            "crafted",
            "1: the attacker may mine one crafted block that spends its coin twice",
            1,
            0,
            1,
        ),
    ];
    const BUGS: &'static [Bug] = &[
        Bug {
            name: BitcoinBug::LongestNotHeaviest.name(),
            breaks: &[model::MOST_WORK],
            help: "fork choice by height: nodes follow the longest chain, not the heaviest",
            params: &[("blocks", "2"), ("crafted", "0")],
        },
        Bug {
            name: BitcoinBug::NoDuplicateInputCheck.name(),
            breaks: &[model::NO_DOUBLE_SPEND, model::REJECTS_DOUBLE_SPEND],
            help: "CVE-2018-17144: a block may spend one output twice (checked against the outputs before the block only)",
            params: &[("blocks", "2")],
        },
        Bug {
            name: BitcoinBug::ZeroConfirmations.name(),
            breaks: &[model::Z_CONFIRMATIONS],
            help: "the merchant accepts the payment as soon as it sees it, whatever z",
            params: &[("blocks", "2"), ("crafted", "0")],
        },
    ];

    fn build(params: &Params, bug: Option<&'static str>) -> BitcoinModel {
        let bug = bug.map(|b| {
            BitcoinBug::from_name(b)
                .unwrap_or_else(|| panic!("model bug: '{b}' is not a BitcoinBug"))
        });
        BitcoinCfg::new(
            params.int("blocks") as u8,
            params.int("z") as u8,
            params.int("crafted") == 1,
            bug,
        )
        .into_model()
    }

    fn fairness() -> Option<crate::catalog::FairClassOf<Self::Model>> {
        Some(model::fair_class)
    }

    fn hash_state<H: std::hash::Hasher>(s: &model::BtcModelState, hasher: &mut H) {
        crate::catalog::hash_actor_state(s, hasher)
    }

    fn actors(s: &model::BtcModelState) -> Option<crate::catalog::ActorsView> {
        Some(crate::catalog::actors_view(s))
    }

    fn view(m: &BitcoinModel, s: &model::BtcModelState) -> Option<String> {
        Some(model::view(m, s))
    }

    fn actor_names(_: &BitcoinModel) -> Option<Vec<String>> {
        Some(model::actor_names())
    }
}

#[cfg(test)]
mod tests;
