//! Runs one stateright actor as a node: its messages travel over TCP, its timers take real time,
//! its storage is saved to disk.
//!
//! The node interprets the commands an actor emits in a step (`Out`) the way the model checker
//! does, with these guarantees:
//! - **Save before send.** Every `Save` is written (atomically and durably, see
//!   [`crate::storage`]) before any `Send` of the same step leaves the node. The node runs the
//!   steps of all the events already waiting (up to [`MAX_BATCH`]) one after another, saves the
//!   last storage they produced once, then sends their messages: a group commit, one fsync for
//!   many steps. Holding messages back a little is a delay the model already allows.
//!   A service may let some messages leave before the save ([`Hooks::early`]): those that
//!   depend only on storage already durable from earlier batches (Raft's leader writes its log
//!   in parallel with replication, thesis §10.2.1). The loop is single-threaded, so whatever
//!   answers such a message is handled in a later batch, after this batch's save returned.
//! - **Frames.** Messages are framed ([`crate::frame`]) and serialised as JSON. Every connection
//!   starts with a hello frame naming the sender and what it is: a peer (an id in the cluster
//!   file), a client (an id that is not), or an administrator. A node refuses peers it does not
//!   know, clients unless it serves them, and administrators unless it takes fault commands.
//!   With [`NodeOptions::tls`], connections are mutual TLS and a hello must match the sender's
//!   certificate ([`crate::tls`]).
//! - **Bad input.** A malformed, oversized or undecodable frame closes that connection with a
//!   logged error; the node keeps serving.
//! - **Connections.** A node connects to a peer lazily, when it first sends to it, from a writer
//!   thread of its own with a bounded queue ([`QUEUE`] frames); it reconnects after a failure
//!   with exponential backoff (50 ms to 1 s). Clients and peers without an address are answered on
//!   the connection they opened. A message that cannot be queued or written (no route, a full
//!   queue, a refused connection, a peer that stalls past the write timeout) is dropped: the actors
//!   are checked under message loss.
//!   At most [`NodeOptions::max_conns`] accepted connections are open at once; beyond that a new
//!   one is closed with a logged warning.
//! - **Timers and choices.** Timers fire after a duration drawn from the actor's range; random
//!   choices are drawn here, from one [`Rng`] seeded by [`NodeOptions::seed`] (or, if unset, by
//!   [`crate::rng::seed_from_env_or_time`]). The node logs its seed when it starts.
//! - **Capacity.** With [`NodeOptions::capacity`], the node handles at most that many messages a
//!   second; the rest wait in its queue.
//! - **Stopping.** A node returns when its `done` predicate holds or its [`Shutdown`] is
//!   triggered; a trigger wakes it at once.
//! - **Faults.** An administrator connection can set [`Faults`]: peers to cut off (both
//!   directions, a network partition), and a loss rate and a delay for the messages that arrive
//!   from peers (the classic lab's unreliable network). Delays keep each peer's messages in
//!   order, as TCP does. Clients are never cut off.
//!
//! The event loop and its steps are here; the connections (the hello, the accept loop, peer
//! writers, client routes) are in `transport.rs`, the fault commands in `faults.rs`, and the
//! handle that stops a node in `shutdown.rs`.

mod faults;
mod shutdown;
mod transport;

pub use faults::{
    change_membership, query_counts, query_status, set_faults, AdminTarget, ChangeAnswer, Faults,
};
pub use shutdown::Shutdown;
pub use transport::BYTES_TO_PEERS;
pub use transport::{Role, Wire};

use std::borrow::Cow;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::Hash;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use crate::frame::MAX_FRAME;
use crate::rng::Rng;
use crate::storage;
use transport::Route;

/// The most events whose steps share one save.
pub const MAX_BATCH: usize = 1024;
/// The most frames waiting to be written to one connection.
pub const QUEUE: usize = 4096;
/// How long an idle node waits before it evaluates its `done` predicate again (for predicates
/// that depend on the clock; a [`Shutdown`] wakes it at once).
const IDLE: Duration = Duration::from_secs(1);

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: Id,
    /// Where to accept connections; `None` for a node that only connects out.
    pub listen: Option<TcpListener_>,
    /// Addresses of the peers this node may connect to.
    pub peers: BTreeMap<Id, SocketAddr>,
    /// Accept hellos from any id, as a peer or a client, and answer it on its own connection (a
    /// MapReduce coordinator accepts workers it has never heard of).
    pub accept_unknown: bool,
    /// Accept clients: ids that are not peers, answered on their own connection.
    pub accept_clients: bool,
    /// Accept fault commands from administrator connections.
    pub accept_admin: bool,
    /// Where [`run`] keeps the actor's storage (as one JSON file); `None` keeps it in memory.
    pub data_dir: Option<PathBuf>,
    pub max_frame: usize,
    /// How long a write may block before the message is dropped and the connection closed.
    pub write_timeout: Duration,
    /// The most accepted connections open at once; beyond it a new connection is closed at once.
    pub max_conns: usize,
    /// The seed of the node's random draws (timers, injected faults, random choices); `None`
    /// draws one with [`crate::rng::seed_from_env_or_time`]. Logged at start, to replay a run.
    pub seed: Option<u64>,
    /// What this node says it is on the connections it opens: a client runs as a node that
    /// connects to the servers as [`Role::Client`].
    pub hello_role: Role,
    /// A service capacity: the most messages the node handles a second (`None`: as many as it
    /// can). Messages beyond it wait their turn, so that nodes sharing a machine behave like
    /// nodes on machines of their own with this capacity each (a benchmark's setting).
    pub capacity: Option<u32>,
    /// This node's certificate and the cluster's authority: every connection, in and out, is
    /// mutual TLS and a hello is believed only when the certificate names its sender
    /// ([`crate::tls`]). `None`: plaintext, every hello is believed.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

/// A listener shared with the caller, so that tests can bind port 0 and learn the port first.
pub type TcpListener_ = Arc<TcpListener>;

impl NodeOptions {
    pub fn new(id: Id) -> Self {
        NodeOptions {
            id,
            listen: None,
            peers: BTreeMap::new(),
            accept_unknown: false,
            accept_clients: false,
            accept_admin: false,
            data_dir: None,
            max_frame: MAX_FRAME,
            write_timeout: Duration::from_secs(2),
            max_conns: 1024,
            seed: None,
            hello_role: Role::Peer,
            capacity: None,
            tls: None,
        }
    }
}

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(std::io::Error),
    #[error("listener: {0}")]
    Listen(std::io::Error),
}

/// What a node's event loop receives.
enum Event<M> {
    /// A message and its sender.
    Msg(Id, M),
    /// From the node's [`Shutdown`]: wakes the loop, which then sees it triggered.
    Wake,
    /// A connection with this peer ended (it closed, reset or sent garbage): what a ZooKeeper
    /// follower hears when its leader's process dies, long before a timeout would tell it.
    PeerClosed(Id),
}

/// What the node's threads share.
struct Shared<M> {
    me: Id,
    opts: NodeOptions,
    routes: Mutex<HashMap<Id, Route>>,
    faults: Mutex<Faults>,
    events: mpsc::Sender<Event<M>>,
    /// Set when the node returns: its threads end.
    stop: AtomicBool,
    /// Accepted connections open (see [`NodeOptions::max_conns`]).
    accepted: AtomicUsize,
    /// Open connections by number, shut down when the node returns so that their readers end.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    /// Writer threads still running.
    writers: AtomicUsize,
    /// The node's role, as [`Hooks::describe`] last put it.
    status: Mutex<Option<String>>,
    /// The messages handled so far, by [`Hooks::kind`].
    counts: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// [`BYTES_TO_PEERS`], counted on every send without the counts' lock.
    bytes_to_peers: AtomicU64,
    membership: Option<Membership<M>>,
}

impl<M> Shared<M> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn is_peer(&self, id: Id) -> bool {
        self.opts.peers.contains_key(&id)
    }

    fn blocked(&self, id: Id) -> bool {
        self.is_peer(id)
            && self
                .faults
                .lock()
                .expect("faults lock")
                .blocked
                .contains(&usize::from(id))
    }
}

/// Runs `actor` until `shutdown` is triggered or `done(&state)` holds; returns its last state. Its
/// storage is a [`storage::JsonFile`] in `opts.data_dir`, if set.
pub fn run<A>(
    actor: A,
    opts: NodeOptions,
    shutdown: Shutdown,
    done: impl Fn(&A::State) -> bool,
) -> Result<A::State, NodeError>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Storage: Serialize + DeserializeOwned,
    A::Timer: Hash + Eq,
{
    let store = opts.data_dir.clone().map(storage::JsonFile);
    run_with(actor, opts, store, shutdown, done)
}

/// [`run`] with a store of the caller's choice (`None`: in memory only).
pub fn run_with<A, S>(
    actor: A,
    opts: NodeOptions,
    store: Option<S>,
    shutdown: Shutdown,
    done: impl Fn(&A::State) -> bool,
) -> Result<A::State, NodeError>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Timer: Hash + Eq,
    S: storage::Store<A::Storage>,
{
    run_hooked(actor, opts, store, shutdown, done, Hooks::default())
}

/// A node's role in words, from its state.
pub type Describe<A> = fn(&<A as Actor>::State) -> Option<String>;

/// The kind of a message, for counting (`None`: not counted).
pub type Kind<A> = fn(&<A as Actor>::Msg) -> Option<&'static str>;

/// The message, if any, a node gives its own actor when a connection with a peer ends.
pub type PeerClosed<A> = fn(Id) -> Option<<A as Actor>::Msg>;

/// Whether a message may leave before its batch's save, given the storage already durable (the
/// last one saved, or loaded at start; `None` if there is none). See [`Hooks::early`].
pub type Early<A> = fn(Option<&<A as Actor>::Storage>, &<A as Actor>::Msg) -> bool;

/// The count ([`query_counts`]) of messages sent before their batch's save ([`Hooks::early`]).
pub const SENT_EARLY: &str = "sent before save";

/// Configuration changes an administrator may ask of a node (`cluster add N`, Raft's
/// AddServer and RemoveServer): the message that asks for one, what a reply says, and which
/// messages only an administrator may send (a client or a peer that sends one is cut off).
pub struct Membership<M> {
    /// The request to add (`true`) or remove a server.
    pub request: fn(Id, bool) -> M,
    /// A reply's outcome: done, or not, with the leader the node knows of.
    pub reply: fn(&M) -> Option<ChangeReply>,
    pub admin_only: fn(&M) -> bool,
}

/// What a node's answer to a configuration change says: done, and the leader it knows of.
pub type ChangeReply = (bool, Option<Id>);

impl<M> Clone for Membership<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Membership<M> {}

/// What a caller may add to a node beyond its actor.
pub struct Hooks<A: Actor> {
    /// The node's role in words (`leader of term 3`), logged at info when it changes
    /// (`became leader of term 3`) and answered to an administrator's `Query` (`cluster status`).
    pub describe: Option<Describe<A>>,
    /// The kind of each message the node handles: the node counts them by kind, for an
    /// administrator's `CountQuery` ([`query_counts`]; benchmarks use it).
    pub kind: Option<Kind<A>>,
    /// Called once the node runs, with an [`Inbox`]: how work the actor handed to threads of
    /// its own (a Spark worker's tasks) comes back to it as messages.
    pub inbox: Option<GiveInbox<A::Msg>>,
    /// Called when a connection with a peer ends; the message it makes is delivered to the
    /// actor as if the node had sent it to itself (a failure detector faster than timeouts).
    pub peer_closed: Option<PeerClosed<A>>,
    /// Configuration changes, for protocols that have them.
    pub membership: Option<Membership<A::Msg>>,
    /// Messages that may leave before the batch's save instead of after it. A message sent
    /// early must be safe to send even if the node crashes before the save completes: it may
    /// depend on what is already durable (the hook's first argument), not on what this batch
    /// saves. Whatever answers it is handled in a later batch, after the save, since the loop is
    /// single-threaded. Each destination's messages still leave in the order the steps sent
    /// them: a message goes early only if every earlier message of the batch to the same
    /// destination did too. `None`: every message waits for the save.
    pub early: Option<Early<A>>,
}

/// Takes a node's [`Inbox`] once the node runs.
pub type GiveInbox<M> = Box<dyn FnOnce(Inbox<M>)>;

/// Delivers messages to a running node's actor as if it had sent them to itself.
pub struct Inbox<M> {
    me: Id,
    events: mpsc::Sender<Event<M>>,
}

impl<M> Clone for Inbox<M> {
    fn clone(&self) -> Self {
        Inbox {
            me: self.me,
            events: self.events.clone(),
        }
    }
}

impl<M> Inbox<M> {
    /// Queues `msg` for the actor; false once the node has returned.
    pub fn deliver(&self, msg: M) -> bool {
        self.events.send(Event::Msg(self.me, msg)).is_ok()
    }
}

impl<A: Actor> Default for Hooks<A> {
    fn default() -> Self {
        Hooks {
            describe: None,
            kind: None,
            inbox: None,
            peer_closed: None,
            membership: None,
            early: None,
        }
    }
}

/// [`run_with`] with [`Hooks`].
pub fn run_hooked<A, S>(
    actor: A,
    opts: NodeOptions,
    mut store: Option<S>,
    shutdown: Shutdown,
    done: impl Fn(&A::State) -> bool,
    hooks: Hooks<A>,
) -> Result<A::State, NodeError>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Timer: Hash + Eq,
    S: storage::Store<A::Storage>,
{
    let me = opts.id;
    let (tx, rx) = mpsc::channel::<Event<A::Msg>>();
    let describe = hooks.describe;
    let shared = Arc::new(Shared {
        status: Mutex::new(None),
        counts: Mutex::new(Default::default()),
        bytes_to_peers: AtomicU64::new(0),
        membership: hooks.membership,
        me,
        opts: opts.clone(),
        routes: Mutex::new(HashMap::new()),
        faults: Mutex::new(Faults::default()),
        events: tx,
        stop: AtomicBool::new(false),
        accepted: AtomicUsize::new(0),
        conns: Mutex::new(HashMap::new()),
        writers: AtomicUsize::new(0),
        next_conn: AtomicU64::new(0),
    });
    if let Some(listener) = opts.listen.clone() {
        listener.set_nonblocking(true).map_err(NodeError::Listen)?;
        let shared = shared.clone();
        std::thread::spawn(move || transport::accept_loop(listener, shared));
    }
    // The node's threads stop with it, whichever way it returns.
    let _threads = StopThreads(shared.clone());
    if let Some(give) = hooks.inbox {
        give(Inbox {
            me,
            events: shared.events.clone(),
        });
    }
    let wake = shared.events.clone();
    let _wake = shutdown.on_trigger(move || {
        let _ = wake.send(Event::Wake);
    });
    let seed = opts.seed.unwrap_or_else(crate::rng::seed_from_env_or_time);
    tracing::info!(node = usize::from(me), seed, "random seed");

    let storage: Option<A::Storage> = match &mut store {
        Some(store) => store.load().map_err(NodeError::Storage)?,
        None => None,
    };
    let mut node = Node::<A, S> {
        actor: &actor,
        me,
        rng: Rng::new(seed).fork(usize::from(me) as u64),
        timers: HashMap::new(),
        delayed: BinaryHeap::new(),
        delayed_seq: 0,
        save: None,
        sends: Vec::new(),
        shared: &shared,
        store,
        next_slot: Instant::now(),
        released: HashMap::new(),
        kind: hooks.kind,
        peer_closed: hooks.peer_closed,
        early: hooks.early,
        durable: None,
    };
    let mut out = Out::new();
    // `Some` but for the moment a step has it (see [`step`]).
    let mut state = Some(actor.on_start(me, &storage, &mut out));
    if node.early.is_some() {
        node.durable = storage;
    }
    node.take(&mut state, out);
    node.commit()?;
    let observe = |state: &Option<A::State>| {
        let Some(describe) = describe else { return };
        let now = describe(state.as_ref().expect("the node holds its state"));
        let mut status = shared.status.lock().expect("status lock");
        if *status != now {
            if let Some(role) = &now {
                tracing::info!(node = usize::from(me), "became {role}");
            }
            *status = now;
        }
    };
    observe(&state);

    while !shutdown.is_triggered() && !done(state.as_ref().expect("the node holds its state")) {
        let now = Instant::now();
        let next = [
            node.timers.values().min().copied(),
            node.delayed.peek().map(|d| d.at),
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = next
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(IDLE)
            .min(IDLE);
        match rx.recv_timeout(wait) {
            Ok(event) => {
                node.slot(true);
                node.event(&mut state, event);
                // The batch ends early when the capacity is spent: its messages leave, then the
                // next event waits for its slot.
                for _ in 1..MAX_BATCH {
                    if !node.slot(false) {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(event) => node.event(&mut state, event),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => unreachable!("the node holds a sender"),
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => unreachable!("the node holds a sender"),
        }
        let now = Instant::now();
        while node.delayed.peek().is_some_and(|d| d.at <= now) {
            let d = node.delayed.pop().expect("peeked");
            node.deliver(&mut state, d.src, d.msg);
        }
        let due: Vec<A::Timer> = node
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for timer in due {
            node.timers.remove(&timer);
            let mut out = Out::new();
            step(&mut state, |cow| {
                actor.on_timeout(me, cow, &timer, &mut out)
            });
            node.take(&mut state, out);
        }
        node.commit()?;
        observe(&state);
    }
    Ok(state.expect("the node holds its state"))
}

/// Runs one step on the state the node owns: the actor gets it as `Cow::Owned` and may change it
/// in place (the checker lends states instead, and an actor then copies on write).
fn step<S: Clone>(state: &mut Option<S>, f: impl FnOnce(&mut Cow<'_, S>)) {
    let mut cow = Cow::Owned(state.take().expect("the node holds its state"));
    f(&mut cow);
    *state = Some(cow.into_owned());
}

/// Ends the node's threads when it returns: the listener and the peer writers see the flag, the
/// client writers lose their queues, the readers their connections.
struct StopThreads<M>(Arc<Shared<M>>);

impl<M> Drop for StopThreads<M> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        // Writers drain their queues, then see them closed; give them a moment to do so (the
        // last step's messages, such as a coordinator's goodbyes, should leave).
        self.0.routes.lock().expect("routes lock").clear();
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.0.writers.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for (_, c) in self.0.conns.lock().expect("conns lock").drain() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A message from a peer held back by an injected delay.
struct Delayed<M> {
    at: Instant,
    seq: u64,
    src: Id,
    msg: M,
}

impl<M> PartialEq for Delayed<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<M> Eq for Delayed<M> {}
impl<M> PartialOrd for Delayed<M> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Delayed<M> {
    // The heap is a max-heap: the earliest message is the greatest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The actor loop's state besides the actor's own: timers, delayed messages, and the batch of
/// steps not yet committed (the last storage they saved and the messages they sent).
struct Node<'a, A: Actor, S> {
    actor: &'a A,
    me: Id,
    rng: Rng,
    timers: HashMap<A::Timer, Instant>,
    delayed: BinaryHeap<Delayed<A::Msg>>,
    delayed_seq: u64,
    save: Option<A::Storage>,
    sends: Sends<A::Msg>,
    shared: &'a Arc<Shared<A::Msg>>,
    store: Option<S>,
    /// When the next event may be handled, under [`NodeOptions::capacity`].
    next_slot: Instant,
    /// When the last message held back from each peer is released (delays keep order).
    released: HashMap<Id, Instant>,
    /// What [`Hooks::kind`] says a message is, for the counts.
    kind: Option<Kind<A>>,
    peer_closed: Option<PeerClosed<A>>,
    early: Option<Early<A>>,
    /// The last storage saved (or loaded at start), kept only for [`Hooks::early`].
    durable: Option<A::Storage>,
}

impl<A, S> Node<'_, A, S>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Timer: Hash + Eq,
    S: storage::Store<A::Storage>,
{
    /// A message from a reader thread: dropped, delayed or delivered as the faults say.
    fn event(&mut self, state: &mut Option<A::State>, event: Event<A::Msg>) {
        let (src, msg) = match event {
            Event::Msg(src, msg) => (src, msg),
            Event::PeerClosed(peer) => {
                if let Some(msg) = self.peer_closed.and_then(|f| f(peer)) {
                    self.deliver(state, self.me, msg);
                }
                return;
            }
            Event::Wake => return,
        };
        if self.shared.is_peer(src) {
            // Read under the lock, without copying the blocked list (this is every message).
            let (blocked, loss, max_delay_ms) = {
                let f = self.shared.faults.lock().expect("faults lock");
                (
                    f.blocked.contains(&usize::from(src)),
                    f.loss,
                    f.max_delay_ms,
                )
            };
            if blocked {
                return;
            }
            if loss > 0.0 && self.rng.unit() < loss {
                tracing::trace!(from = usize::from(src), "message lost (injected)");
                return;
            }
            // A delayed message is held, and so is every later one from the same peer until it
            // is out: delays keep each channel in order, as a slow TCP link does.
            let now = Instant::now();
            let behind = self.released.get(&src).copied().filter(|t| *t > now);
            if max_delay_ms > 0 || behind.is_some() {
                let delay = Duration::from_micros(self.rng.below(max_delay_ms * 1000 + 1));
                let at = (now + delay).max(behind.unwrap_or(now));
                self.released.insert(src, at);
                self.delayed_seq += 1;
                self.delayed.push(Delayed {
                    at,
                    seq: self.delayed_seq,
                    src,
                    msg,
                });
                return;
            }
        }
        self.deliver(state, src, msg);
    }

    fn deliver(&mut self, state: &mut Option<A::State>, src: Id, msg: A::Msg) {
        if let Some(kind) = self.kind.and_then(|kind| kind(&msg)) {
            *self
                .shared
                .counts
                .lock()
                .expect("counts lock")
                .entry(kind)
                .or_default() += 1;
        }
        let mut out = Out::new();
        let (actor, me) = (self.actor, self.me);
        step(state, |cow| actor.on_msg(me, cow, src, msg, &mut out));
        self.take(state, out);
    }

    /// Takes one step's commands into the batch: the storage to save and the messages to send
    /// wait for [`Node::commit`]; timers and random choices take effect now.
    fn take(&mut self, state: &mut Option<A::State>, out: Out<A>) {
        for command in out {
            match command {
                Command::Save(s) => self.save = Some(s),
                Command::Send(dst, msg) => self.sends.push((dst, msg)),
                Command::SetTimer(timer, range) => {
                    let mut after = self.rng.within(&range);
                    let skew = self
                        .shared
                        .faults
                        .lock()
                        .expect("faults lock")
                        .clock_skew_percent;
                    if skew != 0 {
                        // A fast clock counts a duration out in less real time.
                        after = after * 100 / (100 + skew.clamp(-90, 900)) as u32;
                    }
                    let at = Instant::now() + after;
                    self.timers.insert(timer, at);
                }
                Command::CancelTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Command::ChooseRandom(_, choices) => {
                    let Some(choice) = self.rng.pick(&choices).cloned() else {
                        continue;
                    };
                    let mut out = Out::new();
                    let (actor, me) = (self.actor, self.me);
                    step(state, |cow| actor.on_random(me, cow, &choice, &mut out));
                    self.take(state, out);
                }
            }
        }
    }

    /// Takes a slot of the node's capacity for the next event: waits for one if `wait`, else
    /// says whether one is free now. Always free without a capacity.
    fn slot(&mut self, wait: bool) -> bool {
        let Some(capacity) = self.shared.opts.capacity else {
            return true;
        };
        let now = Instant::now();
        if self.next_slot > now {
            if !wait {
                return false;
            }
            std::thread::sleep(self.next_slot - now);
        }
        let interval = Duration::from_secs(1) / capacity.max(1);
        self.next_slot = self.next_slot.max(now) + interval;
        true
    }

    /// Ends the batch: sends the messages that may leave early ([`Hooks::early`]), saves its
    /// last storage, then sends the rest.
    fn commit(&mut self) -> Result<(), NodeError> {
        let mut sends = std::mem::take(&mut self.sends);
        if let Some(s) = self.save.take() {
            if let Some(early) = self.early {
                let durable = self.durable.as_ref();
                let (now, later) = split_early(sends, |m| early(durable, m));
                if !now.is_empty() {
                    *self
                        .shared
                        .counts
                        .lock()
                        .expect("counts lock")
                        .entry(SENT_EARLY)
                        .or_default() += now.len() as u64;
                }
                for (dst, msg) in now {
                    transport::send(self.shared, dst, &Wire::Msg(msg));
                }
                sends = later;
            }
            if let Some(store) = &mut self.store {
                store.save(&s).map_err(NodeError::Storage)?;
            }
            if self.early.is_some() {
                self.durable = Some(s);
            }
        }
        for (dst, msg) in sends {
            transport::send(self.shared, dst, &Wire::Msg(msg));
        }
        Ok(())
    }
}

/// A batch's messages and their destinations, in the order its steps sent them.
type Sends<M> = Vec<(Id, M)>;

/// Splits a batch's messages into those that leave before its save (`early` holds, and every
/// earlier message of the batch to the same destination leaves early too) and the rest, each
/// part in the order the steps sent them: each destination receives its messages in program
/// order, as without the split.
fn split_early<M>(sends: Sends<M>, early: impl Fn(&M) -> bool) -> (Sends<M>, Sends<M>) {
    let mut held: Vec<Id> = Vec::new();
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for (dst, msg) in sends {
        if !held.contains(&dst) && early(&msg) {
            now.push((dst, msg));
        } else {
            if !held.contains(&dst) {
                held.push(dst);
            }
            later.push((dst, msg));
        }
    }
    (now, later)
}

#[cfg(test)]
mod tests {
    use super::split_early;
    use stateright::actor::Id;

    /// Messages are (destination, early?, label).
    #[test]
    fn early_messages_leave_first_without_reordering_a_destination() {
        let sends: Vec<(Id, (bool, &str))> = vec![
            (Id::from(1), (true, "a1")),
            (Id::from(2), (false, "b1")),
            (Id::from(2), (true, "b2")),
            (Id::from(1), (true, "a2")),
            (Id::from(3), (true, "c1")),
            (Id::from(1), (false, "a3")),
            (Id::from(1), (true, "a4")),
        ];
        let (now, later) = split_early(sends, |m| m.0);
        let labels = |v: Vec<(Id, (bool, &'static str))>| -> Vec<&str> {
            v.into_iter().map(|(_, m)| m.1).collect()
        };
        // b2 waits behind b1, a4 behind a3: each destination keeps its order.
        assert_eq!(labels(now), ["a1", "a2", "c1"]);
        assert_eq!(labels(later), ["b1", "b2", "a3", "a4"]);
    }
}
