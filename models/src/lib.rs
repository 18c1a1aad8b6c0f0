//! Pure state machines of the protocols from the classic distributed-systems papers, as
//! [`stateright`] models. No sockets, threads, clocks or randomness: every choice is stateright's.
//!
//! # A tour
//! - [`catalog`]: the [`catalog::Spec`] trait through which the `checker` CLI finds a model, its
//!   parameters and its seeded bugs. Adding a protocol is one file here plus one registry line in
//!   the `checker` crate.
//! - [`client`]: the client envelope (request ids, redirects, a driver's operations) that the
//!   models' client actors speak, in the checker and over TCP.
//! - [`harness`]: the wrapper of a stateright actor model shared by the actor models: a crash is
//!   a restart from storage, history variables follow each step, the explorer sees the inner model.
//! - [`twophase`]: Lamport's TwoPhase specification of two-phase commit (Gray and Lamport,
//!   "Consensus on Transaction Commit", §4), ported action for action from `TwoPhase.tla`.
//! - [`ct`]: Certificate Transparency (RFC 6962/9162): Merkle trees and their proofs.
//! - [`mapreduce`]: MapReduce's coordinator and workers (Dean & Ghemawat §3), word count.
//! - [`raft`]: Raft (Ongaro & Ousterhout, extended version §§5, 7, 8): election, replication, crash
//!   recovery, snapshots and a linearizable key-value store; the workbench's headline model.
//! - [`tcommit`]: the TCommit specification of transaction commit itself (same paper, §2), of which
//!   TwoPhase is an implementation.
//! - [`twopc`]: distributed transactions: strict two-phase locking on two shards and two-phase
//!   commit by the clients, with shard crashes (Saltzer & Kaashoek §§9.5.3, 9.6.3).
//! - [`spanner`]: Spanner's TrueTime, two-phase locking and commit across Paxos groups, commit
//!   wait and snapshot reads at a lagging replica's safe time (Corbett et al., OSDI 2012, §§3, 4).
//! - [`farm`]: FaRM's optimistic distributed transactions (Dragojević et al., SOSP 2015, §§4, 5):
//!   LOCK, VALIDATE, COMMIT-BACKUP, COMMIT-PRIMARY over primary-backup objects, and a primary failure.
//! - [`chain`]: chain replication (van Renesse & Schneider, OSDI 2004, §§2, 3) and CRAQ (Terrace &
//!   Freedman, ATC 2009, §2.3): a key-value store on a chain of fail-stop nodes, a master that
//!   reconfigures it, and reads at the tail or, in CRAQ, at any node.
//! - [`cops`]: COPS (Lloyd et al., SOSP 2011, §§3, 4): causal+ across two data centres by
//!   Lamport versions, nearest dependencies, `dep_check` and COPS-GT's `get_trans`.
//! - [`gfs`]: GFS (Ghemawat, Gobioff & Leung, SOSP 2003, §§3.1, 3.3, 4.5): record append by a
//!   leased primary, padding and retries, and stale replicas found by chunk version numbers.
//! - [`spark`]: Spark (Zaharia et al., NSDI 2012, §§2.1, 4, 5.1): stages cut at wide
//!   dependencies, lost partitions recomputed from lineage, lost shuffle outputs resubmitted.
//! - [`aurora`]: Amazon Aurora's quorum redo log (Verbitski et al., SIGMOD 2017, §§2.1, 4.1-4.3):
//!   six segments in three zones, 4/6 write and 3/6 read quorums, VCL and VDL, holes filled by
//!   gossip, and recovery at a new epoch that truncates above the VDL.
//! - [`zab`]: Zab (Junqueira, Reed & Serafini, DSN 2011, §4): discovery, synchronisation and
//!   broadcast; committed transactions delivered in one order and never lost across epochs.
//! - [`zookeeper`]: ZooKeeper's API over one log (Hunt et al., ATC 2010, §§2.1-2.4, 4.4):
//!   sessions, ephemeral sequential nodes, watches, the lock recipe without herd effect, and
//!   pipelined `setData`/`getData`/`sync` with versions, moves and a leader change.
//! - [`vmft`]: VMware FT (Scales, Nelson & Venkitachalam, 2010, §§2.1-2.3): a primary and a
//!   backup VM kept in step by deterministic replay over a logging channel, the Output Rule, and
//!   failover through an atomic test-and-set on shared storage.
//! - [`frangipani`]: Frangipani (Thekkath, Mann & Lee, SOSP 1997, §§4-6): read/write locks with
//!   revoke and release, caches flushed before a lock is given up, write-ahead logs in Petal
//!   replayed by version number, and leases with a margin against zombie writes; its TCP
//!   nodes (`frangipani::tcp`) run the same actors once per file.
//! - [`bitcoin`]: Bitcoin (Nakamoto 2008, §§2, 4, 5, 11): blocks and transactions gossiped with
//!   delays, the most-work fork choice, and a private-mining attacker's double spend against a
//!   merchant that waits for z confirmations; and its consensus code (`bitcoin::consensus`, §§4,
//!   7): block headers, compact targets, proof of work, difficulty retargeting, chain work and
//!   Merkle roots, ported from Bitcoin Core; its TCP nodes (`bitcoin::node`) keep a tree of real
//!   blocks at a low target, mine in batches of nonces, reorganise, and may withhold a chain.
//! - [`blockstack`]: Blockstack's BNS (Ali et al., ATC 2016, §§2, 3.2, 3): name operations in a
//!   chain whose miner orders by fee, replayed by virtualchain nodes with consensus hashes;
//!   preorder-then-register against a front-runner; its TCP nodes (`blockstack::node`) tail a
//!   `bitcoin::node` chain whose transactions carry the operations, with the model's replay.

pub mod aurora;
pub mod bitcoin;
pub mod blockstack;
pub mod catalog;
pub mod chain;
pub mod client;
pub mod cops;
pub mod ct;
pub mod farm;
pub mod frangipani;
pub mod gfs;
pub mod harness;
pub mod mapreduce;
pub mod memcache;
pub mod raft;
pub mod spanner;
pub mod spark;
pub mod tcommit;
pub mod twopc;
pub mod twophase;
pub mod vmft;
pub mod zab;
pub mod zookeeper;
