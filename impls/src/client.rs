//! The runtime's client: the model's own client actor, run in the caller's thread and driven
//! through the client envelope (`models::client`).
//!
//! [`Driven::call`] is the operation queue: it hands the actor the driver's message (`Invoke`,
//! or the protocol's equivalent) with the next request id, then runs the actor's steps (its
//! messages to the servers, the servers' answers, its timers) until the actor sends the driver the
//! result. Everything else (the request to a server, redirects, retries on another server after a
//! timeout, the session's request ids) is the checked actor's code. A call that gets no result
//! before its deadline is [`Indefinite`]: the actor abandons it at the next call, but a server may
//! still run it once.
//!
//! The actor runs in the caller's thread, not in a node of its own (`crate::node`), so that a
//! request costs no thread hand-offs but the reply's: the calling thread writes the request frame
//! itself, and a reader thread per server connection passes answers back. Like the node, it
//! connects to a server lazily (as a client: `Role::Client` in its hello), treats a message it
//! cannot write as lost (the model allows it), and draws timer durations from the actor's ranges.
//! When the cluster speaks TLS it presents the cluster's client certificate ([`crate::tls`]),
//! which no node takes as a peer's or an administrator's.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use models::client::RequestId;
use stateright::actor::{Actor, Command, Id, Out};

use crate::config::ClusterConfig;
use crate::frame::{read_frame, write_frame, MAX_FRAME};
use crate::node::{Role, Wire};
use crate::rng::Rng;
use crate::service::{Client, Tuning};
use crate::tls::{Stream, Tls, Who};

/// Client ids start here, far above any server's.
pub const CLIENT_IDS: usize = 1 << 40;

/// The driver's id as the client actor sees it: no node has it.
const DRIVER: usize = usize::MAX;

/// After a failed connection to a server, messages to it are dropped for this long before the
/// client tries again (the actor's retry timer moves it on to another server meanwhile).
const RECONNECT: Duration = Duration::from_millis(100);

/// The operation's outcome is unknown: no result before the deadline. It may or may not take
/// effect (Jepsen's `:info`).
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}: the operation may or may not take effect")]
pub struct Indefinite(pub Duration);

/// A connection to one server: the calling thread writes; a reader thread passes answers on.
struct Conn {
    writer: BufWriter<Stream>,
}

/// A client of protocol `S`: its client actor, run in the caller's thread.
pub struct Driven<S: Client> {
    id: Id,
    seq: RequestId,
    actor: S::Actor,
    /// `Some` but during a step.
    state: Option<S::State>,
    timers: HashMap<<S::Actor as Actor>::Timer, Instant>,
    servers: BTreeMap<Id, SocketAddr>,
    /// The client certificate, when the cluster speaks TLS.
    tls: Option<Arc<Tls>>,
    conns: HashMap<Id, Conn>,
    /// When a connection to a server last failed.
    failed: HashMap<Id, Instant>,
    /// Answers from the servers' reader threads.
    inbox: mpsc::Receiver<(Id, S::Msg)>,
    inbox_tx: mpsc::Sender<(Id, S::Msg)>,
    /// What the actor sent its driver, not yet taken.
    returns: VecDeque<S::Msg>,
    rng: Rng,
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
        let tls = cluster.tls(Who::Client)?;
        let id = Id::from(id.unwrap_or_else(fresh_id));
        let actor = S::client_for(cluster, Id::from(DRIVER), tuning, id);
        let (inbox_tx, inbox) = mpsc::channel();
        let mut client = Self {
            id,
            seq: 0,
            state: None,
            timers: HashMap::new(),
            servers: cluster.nodes.clone(),
            tls,
            conns: HashMap::new(),
            failed: HashMap::new(),
            inbox,
            inbox_tx,
            returns: VecDeque::new(),
            rng: Rng::new(crate::rng::seed_from_env_or_time()).fork(usize::from(id) as u64),
            actor,
        };
        // Connect to every server now: in some protocols a node other than the one asked
        // answers (chain replication's tail answers writes sent to the head), and a node can
        // only answer a client on a connection the client opened.
        let servers: Vec<Id> = client.servers.keys().copied().collect();
        for dst in servers {
            client.ensure_conn(dst);
        }
        let mut out = Out::new();
        client.state = Some(client.actor.on_start(id, &None, &mut out));
        client.take(out);
        Ok(client)
    }

    pub fn id(&self) -> usize {
        usize::from(self.id)
    }

    /// The client actor's state (what it has recorded, for a test's check).
    pub fn state(&self) -> &S::State {
        self.state.as_ref().expect("the client holds its state")
    }

    /// Runs `op`: the client actor sends it, follows redirects and retries, until it returns or
    /// `timeout` has passed.
    pub fn call(&mut self, op: S::Op, timeout: Duration) -> Result<S::Ret, Indefinite> {
        self.seq += 1;
        let deadline = Instant::now() + timeout;
        let (seq, invoke) = S::invoke(self.seq, op);
        self.returns.clear();
        self.step(|actor, id, cow, out| actor.on_msg(id, cow, Id::from(DRIVER), invoke, out));
        loop {
            while let Some(msg) = self.returns.pop_front() {
                if let Some((s, ret)) = S::returned(msg) {
                    if s == seq {
                        return Ok(ret);
                    }
                }
                // Else a late result of an abandoned call.
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Indefinite(timeout));
            }
            let next = self.timers.values().min().copied().unwrap_or(deadline);
            match self
                .inbox
                .recv_timeout(next.min(deadline).saturating_duration_since(now))
            {
                Ok((src, msg)) => {
                    self.step(|actor, id, cow, out| actor.on_msg(id, cow, src, msg, out));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.fire_timers(),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    unreachable!("the client holds a sender")
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<_> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for timer in due {
            self.timers.remove(&timer);
            self.step(|actor, id, cow, out| actor.on_timeout(id, cow, &timer, out));
        }
    }

    /// Runs one step of the actor on the state it owns, then carries out its commands.
    fn step(&mut self, f: impl FnOnce(&S::Actor, Id, &mut Cow<'_, S::State>, &mut Out<S::Actor>)) {
        let mut cow = Cow::Owned(self.state.take().expect("the client holds its state"));
        let mut out = Out::new();
        f(&self.actor, self.id, &mut cow, &mut out);
        self.state = Some(cow.into_owned());
        self.take(out);
    }

    fn take(&mut self, out: Out<S::Actor>) {
        for command in out {
            match command {
                Command::Send(dst, msg) if dst == Id::from(DRIVER) => self.returns.push_back(msg),
                Command::Send(dst, msg) => self.send(dst, &msg),
                Command::SetTimer(timer, range) => {
                    let at = Instant::now() + self.rng.within(&range);
                    self.timers.insert(timer, at);
                }
                Command::CancelTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Command::ChooseRandom(_, choices) => {
                    if let Some(choice) = self.rng.pick(&choices).cloned() {
                        self.step(|actor, id, cow, out| actor.on_random(id, cow, &choice, out));
                    }
                }
                // A client keeps nothing on disk: it is a new session after a restart.
                Command::Save(_) => {}
            }
        }
    }

    /// Writes `msg` to server `dst`, connecting first if need be; a message that cannot be
    /// written is lost.
    fn send(&mut self, dst: Id, msg: &S::Msg) {
        let bytes = serde_json::to_vec(&Wire::Msg(msg)).expect("messages serialise");
        if !self.ensure_conn(dst) {
            return;
        }
        let conn = self.conns.get_mut(&dst).expect("connected above");
        let written = write_frame(&mut conn.writer, &bytes).and_then(|()| conn.writer.flush());
        if let Err(e) = written {
            tracing::debug!(to = usize::from(dst), %e, "write failed: message lost");
            self.drop_conn(dst);
        }
    }

    /// Whether a connection to `dst` is open, opening one if none is and none failed lately.
    fn ensure_conn(&mut self, dst: Id) -> bool {
        if self.conns.contains_key(&dst) {
            return true;
        }
        if self
            .failed
            .get(&dst)
            .is_some_and(|t| t.elapsed() < RECONNECT)
        {
            return false;
        }
        match self.connect(dst) {
            Ok(conn) => {
                self.conns.insert(dst, conn);
                true
            }
            Err(e) => {
                tracing::debug!(to = usize::from(dst), %e, "connect failed: message lost");
                self.failed.insert(dst, Instant::now());
                false
            }
        }
    }

    fn connect(&mut self, dst: Id) -> std::io::Result<Conn> {
        let addr = *self
            .servers
            .get(&dst)
            .ok_or_else(|| std::io::Error::other("no such server"))?;
        let server = Who::Node(usize::from(dst));
        let stream = crate::tls::connect(
            self.tls.as_deref(),
            addr,
            Duration::from_millis(300),
            server,
        )?;
        stream
            .tcp()
            .set_write_timeout(Some(Duration::from_secs(1)))?;
        let hello = serde_json::to_vec(&Wire::<()>::Hello {
            id: usize::from(self.id),
            role: Role::Client,
        })
        .expect("hellos serialise");
        write_frame(&mut &stream, &hello)?;
        // The server's hello says it can answer this client (its route back is in place).
        stream
            .tcp()
            .set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        match read_frame(&mut reader, MAX_FRAME).map_err(std::io::Error::other)? {
            Some(frame)
                if matches!(
                    serde_json::from_slice::<Wire<()>>(&frame),
                    Ok(Wire::Hello { .. })
                ) => {}
            _ => return Err(std::io::Error::other("no hello from the server")),
        }
        stream.tcp().set_read_timeout(None)?;
        let reader = reader;
        let tx = self.inbox_tx.clone();
        std::thread::Builder::new()
            .name(format!(
                "client-{}-from-{}",
                usize::from(self.id),
                usize::from(dst)
            ))
            .spawn(move || read_answers::<S::Msg>(reader, dst, tx))?;
        Ok(Conn {
            writer: BufWriter::new(stream),
        })
    }

    fn drop_conn(&mut self, dst: Id) {
        if let Some(c) = self.conns.remove(&dst) {
            c.writer.get_ref().shutdown();
        }
    }
}

/// Passes a server's answers on until its connection ends or sends a bad frame.
fn read_answers<M: serde::de::DeserializeOwned>(
    mut r: BufReader<Stream>,
    from: Id,
    tx: mpsc::Sender<(Id, M)>,
) {
    while let Ok(Some(frame)) = read_frame(&mut r, MAX_FRAME) {
        match serde_json::from_slice::<Wire<M>>(&frame) {
            Ok(Wire::Msg(msg)) => {
                if tx.send((from, msg)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(from = usize::from(from), %e, "undecodable answer: connection closed");
                return;
            }
        }
    }
}

impl<S: Client> Drop for Driven<S> {
    fn drop(&mut self) {
        for (_, c) in self.conns.drain() {
            c.writer.get_ref().shutdown();
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
