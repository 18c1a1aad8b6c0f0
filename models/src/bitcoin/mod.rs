//! Bitcoin (Nakamoto, "Bitcoin: A Peer-to-Peer Electronic Cash System", 2008).

pub mod consensus;
