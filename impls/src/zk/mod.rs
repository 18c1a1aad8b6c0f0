//! ZooKeeper, as a library a server is built on: stock clients (kazoo, `zkCli.sh` of ZooKeeper
//! 3.8) talk to it. No sockets, threads or clocks here: bytes in, bytes out, and a data tree that
//! every server applies in zxid order.
//!
//! - [`jute`]: the wire protocol: frames, jute records, requests and replies, watch
//!   notifications, op and error codes.
//! - [`tree`]: ZooKeeper's `DataTree`: znodes, sessions and their ephemeral nodes, one-shot
//!   watches, and the transactions that change them, with ZooKeeper's stats and error codes.

pub mod jute;
pub mod tree;
