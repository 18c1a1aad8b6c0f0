//! The runtime's client: the model's own client actor, run as a node that connects to the
//! servers as a client, and driven through the client envelope (`models::client`).
//!
//! [`Driven::call`] is the operation queue: it sends the actor `Invoke` with the next request id
//! and waits for its `Return`. Everything else (the request to a server, redirects, retries on
//! another server after a timeout, the session's request ids) is the checked actor's code.
//! A call that gets no result before its deadline is [`Indefinite`]: the actor abandons it at the
//! next call, but a server may still run it once.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use models::client::RequestId;
use stateright::actor::{Actor, Id};

use crate::config::ClusterConfig;
use crate::node::{inbox, run_hooked, Hooks, Inject, NodeOptions, Role, Shutdown};
use crate::service::{Client, Tuning};

/// Client ids start here, far above any server's.
pub const CLIENT_IDS: usize = 1 << 40;

/// The driver's id as the client actor sees it: no node has it.
const DRIVER: usize = usize::MAX;

/// The operation's outcome is unknown: no result before the deadline. It may or may not take
/// effect (Jepsen's `:info`).
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}: the operation may or may not take effect")]
pub struct Indefinite(pub Duration);

/// A client of protocol `S`: its client actor running in a thread of its own.
pub struct Driven<S: Client> {
    id: Id,
    seq: RequestId,
    inject: Inject<S::Msg>,
    returns: mpsc::Receiver<S::Msg>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl<S: Client> Driven<S>
where
    <S::Actor as Actor>::Timer: std::hash::Hash + Eq,
{
    /// Starts a client of `cluster` with id `id` (at least [`CLIENT_IDS`]; two clients must
    /// never share one), or a fresh random id.
    pub fn start(
        cluster: &ClusterConfig,
        tuning: &Tuning,
        id: Option<usize>,
    ) -> std::io::Result<Self> {
        if cluster.nodes.is_empty() {
            return Err(std::io::Error::other("the cluster file lists no nodes"));
        }
        let id = Id::from(id.unwrap_or_else(fresh_id));
        let driver = Id::from(DRIVER);
        let actor = S::client(cluster, driver, tuning);
        let mut opts = NodeOptions::new(id);
        opts.peers = cluster.nodes.clone();
        opts.hello_role = Role::Client;
        let (inject, events) = inbox();
        let (tx, returns) = mpsc::channel();
        let hooks = Hooks {
            describe: None,
            driver: Some((driver, tx)),
            inbox: Some((inject.clone(), events)),
        };
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name(format!("client-{}", usize::from(id)))
            .spawn(move || {
                if let Err(e) = run_hooked(actor, opts, None::<S::Store>, stop, |_| false, hooks) {
                    tracing::error!(%e, "client node stopped");
                }
            })?;
        Ok(Driven {
            id,
            seq: 0,
            inject,
            returns,
            shutdown,
            thread: Some(thread),
        })
    }

    pub fn id(&self) -> usize {
        usize::from(self.id)
    }

    /// Runs `op`: the client actor sends it, follows redirects and retries, until it returns or
    /// `timeout` has passed.
    pub fn call(&mut self, op: S::Op, timeout: Duration) -> Result<S::Ret, Indefinite> {
        self.seq += 1;
        let deadline = Instant::now() + timeout;
        let (seq, invoke) = S::invoke(self.seq, op);
        if !self.inject.send(Id::from(DRIVER), invoke) {
            return Err(Indefinite(timeout));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.returns.recv_timeout(left) {
                Ok(msg) => match S::returned(msg) {
                    Some((s, ret)) if s == seq => return Ok(ret),
                    // A late result of an abandoned call.
                    _ => {}
                },
                Err(_) => return Err(Indefinite(timeout)),
            }
        }
    }
}

impl<S: Client> Drop for Driven<S> {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A random client id (so that a new process never reuses a session).
fn fresh_id() -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mix = (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    CLIENT_IDS + (mix >> 24) as usize
}
