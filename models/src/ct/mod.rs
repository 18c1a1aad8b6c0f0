//! Certificate Transparency: Laurie, Langley and Kasper, RFC 6962 (2013), and its successor RFC 9162
//! (2021); the 6.824 reading is the CT overview "Certificate Transparency" (Laurie, CACM 2014).
//!
//! A CT log is an append-only Merkle tree of certificates. The log signs its tree heads; anyone can
//! ask for a proof that an entry is in the tree (inclusion) and that a later tree extends an earlier
//! one (consistency). A log that shows different trees to different clients (a split view, or fork)
//! is caught when clients compare, or gossip, the heads they were shown.
//!
//! - [`merkle`]: the Merkle tree, its proofs and their verification (RFC 9162 §2.1).
//! - [`log`]: signed tree heads, promises, and a log's state, honest or cheating.
//! - [`gossip`]: the model: a log that may split its view or break a promise, and monitors that
//!   verify its proofs and gossip its heads (`checker ct`).

pub mod gossip;
pub mod log;
pub mod merkle;
