//! The client envelope: how a client actor talks to a replicated service, and how whoever drives
//! the client hands it operations and hears their results.
//!
//! In the spirit of stateright's `RegisterMsg`: every request carries the client's id and a
//! request id (a serial number, from 1, increasing), every answer names the request it answers,
//! and a server that is not the one to ask redirects the client. The same client actor runs in
//! two worlds:
//! - **In a model**, a client takes its operations from its configuration, one after another,
//!   and the model records invocations and returns as history variables.
//! - **Over TCP**, a driver (the runtime's operation queue: `client`, `jepsen` and the load
//!   generator) sends the client actor [`ClientMsg::Invoke`] with the next operation and waits
//!   for [`ClientMsg::Return`]. A driver that stops waiting (a timeout: the operation is
//!   indefinite) invokes its next operation with a higher request id; the client abandons the old
//!   one, whose late answers it ignores.
//!
//! A protocol's message type wraps the envelope in a variant of its own (Raft:
//! `RaftMsg::Client`), next to its internal messages.

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// A client's serial number for its requests, from 1. A server's session table runs a retried
/// request (same client, same id) at most once.
pub type RequestId = u64;

/// The client envelope: a driver's operations, a client's requests, the servers' answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientMsg<Op, Ret> {
    /// Driver to client actor: run `op` as request `seq` (higher than any before).
    Invoke { seq: RequestId, op: Op },
    /// Client to server.
    Request { client: Id, seq: RequestId, op: Op },
    /// Server to client: request `seq` took effect (once) and returned `ret`.
    Reply { seq: RequestId, ret: Ret },
    /// Server to client: ask another server; `leader_hint` is the one it believes leads.
    Redirect {
        seq: RequestId,
        leader_hint: Option<Id>,
    },
    /// Client actor to driver: request `seq` returned `ret`.
    Return { seq: RequestId, ret: Ret },
}

impl<Op, Ret> ClientMsg<Op, Ret> {
    /// The request this message is about.
    pub fn seq(&self) -> RequestId {
        match self {
            ClientMsg::Invoke { seq, .. }
            | ClientMsg::Request { seq, .. }
            | ClientMsg::Reply { seq, .. }
            | ClientMsg::Redirect { seq, .. }
            | ClientMsg::Return { seq, .. } => *seq,
        }
    }
}
