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
//! - **Frames.** Messages are framed ([`crate::frame`]) and serialised as JSON. Every connection
//!   starts with a hello frame naming the sender and what it is: a peer (an id in the cluster
//!   file), a client (an id that is not), or an administrator. A node refuses peers it does not
//!   know, clients unless it serves them, and administrators unless it takes fault commands.
//! - **Bad input.** A malformed, oversized or undecodable frame closes that connection with a
//!   logged error; the node keeps serving.
//! - **Connections.** A node connects to a peer lazily, when it first sends to it, from a writer
//!   thread of its own with a bounded queue ([`QUEUE`] frames); it reconnects after a failure
//!   with exponential backoff (50 ms to 1 s). Clients and peers without an address are answered on
//!   the connection they opened. A message that cannot be queued or written (no route, a full
//!   queue, a refused connection, a peer that stalls past the write timeout) is dropped: the actors
//!   are checked under message loss.
//! - **Timers and choices.** Timers fire after a duration drawn from the actor's range; random
//!   choices are drawn here.
//! - **Faults.** An administrator connection can set [`Faults`]: peers to cut off (both
//!   directions, a network partition), and a loss rate and a delay for the messages that arrive
//!   from peers (the classic lab's unreliable network). Clients are never cut off.

use std::borrow::Cow;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::Hash;
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use crate::frame::{read_frame, write_frame, MAX_FRAME};
use crate::storage;

/// The most events whose steps share one save.
pub const MAX_BATCH: usize = 1024;
/// The most frames waiting to be written to one connection.
pub const QUEUE: usize = 4096;

/// What a connection's hello says the sender is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A node of the cluster.
    #[default]
    Peer,
    /// A client: any id that is not a node's.
    Client,
    /// A fault injector: sends [`Admin`] frames.
    Admin,
}

/// What travels in a frame.
#[derive(Serialize, Deserialize)]
pub enum Wire<M> {
    /// The first frame on a connection, from each side.
    Hello {
        id: usize,
        #[serde(default)]
        role: Role,
    },
    Msg(M),
    /// From an administrator; answered with `Ack`.
    Admin(Faults),
    Ack,
}

/// The faults a node injects, as set by an administrator. The default is none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Peers whose messages are dropped, to and from: one side of a partition.
    pub blocked: Vec<usize>,
    /// The probability that a message from a peer is dropped.
    pub loss: f64,
    /// Messages from peers are held for a uniformly random time up to this many milliseconds.
    pub max_delay_ms: u64,
}

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

enum Event<M> {
    Msg(Id, M),
}

/// A queue of frames to one peer or client, and which connection drains it.
struct Route {
    tx: SyncSender<Vec<u8>>,
    /// `None` for a peer's own writer (it reconnects); the connection's number for a connection
    /// that a client opened (the route ends with it).
    conn: Option<u64>,
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
    /// Open connections by number, shut down when the node returns so that their readers end.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    /// Writer threads still running.
    writers: AtomicUsize,
}

impl<M> Shared<M> {
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

/// Runs `actor` until `stop` is set or `done(&state)` holds; returns its last state. Its storage
/// is a [`storage::JsonFile`] in `opts.data_dir`, if set.
pub fn run<A>(
    actor: A,
    opts: NodeOptions,
    stop: Arc<AtomicBool>,
    done: impl Fn(&A::State) -> bool,
) -> Result<A::State, NodeError>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Storage: Serialize + DeserializeOwned,
    A::Timer: Hash + Eq,
{
    let store = opts.data_dir.clone().map(storage::JsonFile);
    run_with(actor, opts, store, stop, done)
}

/// [`run`] with a store of the caller's choice (`None`: in memory only).
pub fn run_with<A, S>(
    actor: A,
    opts: NodeOptions,
    mut store: Option<S>,
    stop: Arc<AtomicBool>,
    done: impl Fn(&A::State) -> bool,
) -> Result<A::State, NodeError>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Timer: Hash + Eq,
    S: storage::Store<A::Storage>,
{
    let me = opts.id;
    let (tx, rx) = mpsc::channel::<Event<A::Msg>>();
    let shared = Arc::new(Shared {
        me,
        opts: opts.clone(),
        routes: Mutex::new(HashMap::new()),
        faults: Mutex::new(Faults::default()),
        events: tx,
        stop: AtomicBool::new(false),
        conns: Mutex::new(HashMap::new()),
        writers: AtomicUsize::new(0),
        next_conn: AtomicU64::new(0),
    });
    if let Some(listener) = opts.listen.clone() {
        listener.set_nonblocking(true).map_err(NodeError::Listen)?;
        let shared = shared.clone();
        std::thread::spawn(move || accept_loop(listener, shared));
    }
    // The node's threads stop with it, whichever way it returns.
    let _threads = StopThreads(shared.clone());
    let stopped = || stop.load(Ordering::Relaxed);

    let storage: Option<A::Storage> = match &mut store {
        Some(store) => store.load().map_err(NodeError::Storage)?,
        None => None,
    };
    let mut node = Node::<A, S> {
        actor: &actor,
        me,
        rng: Rng::new(usize::from(me) as u64),
        timers: HashMap::new(),
        delayed: BinaryHeap::new(),
        delayed_seq: 0,
        save: None,
        sends: Vec::new(),
        shared: &shared,
        store,
    };
    let mut out = Out::new();
    // `Some` but for the moment a step has it (see [`step`]).
    let mut state = Some(actor.on_start(me, &storage, &mut out));
    node.take(&mut state, out);
    node.commit()?;

    while !stopped() && !done(state.as_ref().expect("the node holds its state")) {
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
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(event) => {
                node.event(&mut state, event);
                for _ in 1..MAX_BATCH {
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
    sends: Vec<(Id, A::Msg)>,
    shared: &'a Arc<Shared<A::Msg>>,
    store: Option<S>,
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
        let Event::Msg(src, msg) = event;
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
            if max_delay_ms > 0 {
                let delay = Duration::from_micros(self.rng.below(max_delay_ms * 1000 + 1));
                self.delayed_seq += 1;
                self.delayed.push(Delayed {
                    at: Instant::now() + delay,
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
                    let span = range.end.saturating_sub(range.start);
                    let jitter =
                        Duration::from_nanos(self.rng.below(span.as_nanos().max(1) as u64));
                    self.timers
                        .insert(timer, Instant::now() + range.start + jitter);
                }
                Command::CancelTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Command::ChooseRandom(_, choices) => {
                    if choices.is_empty() {
                        continue;
                    }
                    let choice = choices[self.rng.below(choices.len() as u64) as usize].clone();
                    let mut out = Out::new();
                    let (actor, me) = (self.actor, self.me);
                    step(state, |cow| actor.on_random(me, cow, &choice, &mut out));
                    self.take(state, out);
                }
            }
        }
    }

    /// Ends the batch: saves its last storage, then sends its messages.
    fn commit(&mut self) -> Result<(), NodeError> {
        if let Some(s) = self.save.take() {
            if let Some(store) = &mut self.store {
                store.save(&s).map_err(NodeError::Storage)?;
            }
        }
        for (dst, msg) in std::mem::take(&mut self.sends) {
            send(self.shared, dst, &Wire::Msg(msg));
        }
        Ok(())
    }
}

fn encode<M: Serialize>(wire: &Wire<M>) -> Vec<u8> {
    serde_json::to_vec(wire).expect("messages serialise")
}

/// Queues `wire` for `dst`, starting a writer to it if it is a peer with no writer yet; drops it
/// if there is no route, the queue is full, or a partition cuts `dst` off.
fn send<M>(shared: &Arc<Shared<M>>, dst: Id, wire: &Wire<M>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    if shared.blocked(dst) {
        return;
    }
    let bytes = encode(wire);
    let mut routes = shared.routes.lock().expect("routes lock");
    let route = match routes.entry(dst) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let Some(addr) = shared.opts.peers.get(&dst).copied() else {
                tracing::debug!(to = usize::from(dst), "no route: message dropped");
                return;
            };
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            let writer = shared.clone();
            std::thread::spawn(move || peer_writer(writer, dst, addr, rx));
            e.insert(Route { tx, conn: None })
        }
    };
    match route.tx.try_send(bytes) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            tracing::debug!(to = usize::from(dst), "send queue full: message dropped");
        }
        Err(TrySendError::Disconnected(_)) => {
            tracing::debug!(to = usize::from(dst), "connection gone: message dropped");
            routes.remove(&dst);
        }
    }
}

/// Writes the frames queued for peer `dst`, connecting (and reconnecting, with backoff) as
/// needed. Frames that arrive while the peer is unreachable are dropped.
fn peer_writer<M>(shared: Arc<Shared<M>>, dst: Id, addr: SocketAddr, rx: mpsc::Receiver<Vec<u8>>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let _running = Running::new(&shared.writers);
    let mut conn: Option<BufWriter<TcpStream>> = None;
    let mut retry_at = Instant::now();
    let mut backoff = Duration::from_millis(50);
    // Ends when the node drops the queue's sender (it returned), once the queue is drained.
    while let Ok(frame) = rx.recv() {
        if conn.is_none() {
            if Instant::now() < retry_at {
                continue;
            }
            match connect(&shared, dst, addr) {
                Ok(stream) => {
                    backoff = Duration::from_millis(50);
                    conn = Some(BufWriter::new(stream));
                }
                Err(e) => {
                    tracing::debug!(to = usize::from(dst), %e, "connect failed");
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let w = conn.as_mut().expect("connected");
        // Write what is queued behind this frame too, then flush once.
        let mut result = write_frame_buffered(w, &frame);
        while result.is_ok() {
            match rx.try_recv() {
                Ok(f) => result = write_frame_buffered(w, &f),
                Err(_) => break,
            }
        }
        if let Err(e) = result.and_then(|()| w.flush()) {
            tracing::debug!(to = usize::from(dst), %e, "write failed: connection closed");
            let _ = w.get_ref().shutdown(std::net::Shutdown::Both);
            conn = None;
        }
    }
}

fn write_frame_buffered(w: &mut BufWriter<TcpStream>, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too long"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)
}

/// Connects to peer `dst`, says hello, and starts reading the connection (the peer's hello, then
/// anything it sends back on it).
fn connect<M>(shared: &Arc<Shared<M>>, dst: Id, addr: SocketAddr) -> std::io::Result<TcpStream>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_write_timeout(Some(shared.opts.write_timeout))?;
    stream.set_nodelay(true)?;
    let hello = encode(&Wire::<M>::Hello {
        id: usize::from(shared.me),
        role: Role::Peer,
    });
    write_frame(&mut &stream, &hello)?;
    let reader = stream.try_clone()?;
    let shared = shared.clone();
    std::thread::spawn(move || serve(shared, reader, Some(dst), addr));
    Ok(stream)
}

fn accept_loop<M>(listener: TcpListener_, shared: Arc<Shared<M>>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, from)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(shared.opts.write_timeout));
                // Small request/answer frames: do not let Nagle's algorithm hold them.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                std::thread::spawn(move || serve(shared, stream, None, from));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => tracing::warn!(%e, "accept failed"),
        }
    }
}

/// Reads one connection: the sender's hello, then its frames, until the connection ends or a
/// frame is bad. `expected` is the peer we connected to (for outgoing connections).
fn serve<M>(shared: Arc<Shared<M>>, stream: TcpStream, expected: Option<Id>, from: SocketAddr)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let max_frame = shared.opts.max_frame;
    let writer = stream.try_clone();
    // Registered so that the node can close it when it returns.
    let number = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    if let Ok(c) = stream.try_clone() {
        shared.conns.lock().expect("conns lock").insert(number, c);
    }
    let _unregister = Unregister(&shared.conns, number);
    if shared.stop.load(Ordering::Relaxed) {
        return;
    }
    let mut reader = BufReader::new(stream);
    let hello = match read_frame(&mut reader, max_frame) {
        Ok(Some(bytes)) => serde_json::from_slice::<Wire<M>>(&bytes).ok(),
        Ok(None) => {
            // Closed before saying anything (a port probe): nothing to complain about.
            tracing::debug!(%from, "connection closed before its hello");
            return;
        }
        Err(_) => None,
    };
    let (peer, role) = match hello {
        Some(Wire::Hello { id, role }) => (Id::from(id), role),
        _ => {
            tracing::warn!(%from, "connection without a hello: closed");
            return;
        }
    };
    let opts = &shared.opts;
    let allowed = match (expected, role) {
        (Some(e), _) => e == peer,
        (None, _) if opts.accept_unknown => role != Role::Admin || opts.accept_admin,
        (None, Role::Peer) => shared.is_peer(peer),
        (None, Role::Client) => opts.accept_clients && !shared.is_peer(peer),
        (None, Role::Admin) => opts.accept_admin,
    };
    if !allowed {
        tracing::warn!(%from, peer = usize::from(peer), ?role, "refused");
        return;
    }
    let mut conn = None;
    if expected.is_none() {
        // An incoming connection: say who we are; answer clients (and peers we have no address
        // for) on it.
        let Ok(writer) = writer else { return };
        let hello = encode(&Wire::<M>::Hello {
            id: usize::from(shared.me),
            role: Role::Peer,
        });
        if write_frame(&mut &writer, &hello).is_err() {
            return;
        }
        if role != Role::Admin && !shared.is_peer(peer) {
            let n = number;
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
            shared
                .routes
                .lock()
                .expect("routes lock")
                .insert(peer, Route { tx, conn: Some(n) });
            conn = Some(n);
            let shared = shared.clone();
            std::thread::spawn(move || {
                let _running = Running::new(&shared.writers);
                conn_writer(writer, rx)
            });
        } else if role == Role::Admin {
            admin(&shared, &mut reader, &writer, from);
            return;
        }
    }
    loop {
        let frame = match read_frame(&mut reader, max_frame) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(%from, peer = usize::from(peer), %e, "bad frame: connection closed");
                break;
            }
        };
        match serde_json::from_slice::<Wire<M>>(&frame) {
            Ok(Wire::Msg(msg)) => {
                if shared.events.send(Event::Msg(peer, msg)).is_err() {
                    break;
                }
            }
            Ok(Wire::Hello { .. } | Wire::Ack) => {}
            Ok(Wire::Admin(_)) => {
                tracing::error!(%from, peer = usize::from(peer), "fault command from a non-administrator: connection closed");
                break;
            }
            Err(e) => {
                tracing::error!(%from, peer = usize::from(peer), %e, "undecodable message: connection closed");
                break;
            }
        }
    }
    if let Some(n) = conn {
        let mut routes = shared.routes.lock().expect("routes lock");
        if routes.get(&peer).is_some_and(|r| r.conn == Some(n)) {
            routes.remove(&peer);
        }
    }
}

/// Counts a running writer thread.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Running(n)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Removes a connection from the node's list when its reader ends.
struct Unregister<'a>(&'a Mutex<HashMap<u64, TcpStream>>, u64);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("conns lock").remove(&self.1);
    }
}

/// Writes a client's queue to its connection until the route is dropped or a write fails.
fn conn_writer(stream: TcpStream, rx: mpsc::Receiver<Vec<u8>>) {
    let mut w = BufWriter::new(stream);
    while let Ok(frame) = rx.recv() {
        let mut result = write_frame_buffered(&mut w, &frame);
        while result.is_ok() {
            match rx.try_recv() {
                Ok(f) => result = write_frame_buffered(&mut w, &f),
                Err(_) => break,
            }
        }
        if result.and_then(|()| w.flush()).is_err() {
            let _ = w.get_ref().shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Serves an administrator: each `Admin` frame replaces the node's faults and is acknowledged.
fn admin<M>(
    shared: &Shared<M>,
    reader: &mut BufReader<TcpStream>,
    writer: &TcpStream,
    from: SocketAddr,
) where
    M: Serialize + DeserializeOwned,
{
    loop {
        let Ok(Some(frame)) = read_frame(reader, shared.opts.max_frame) else {
            return;
        };
        match serde_json::from_slice::<Wire<M>>(&frame) {
            Ok(Wire::Admin(faults)) => {
                let valid = (0.0..=1.0).contains(&faults.loss);
                if valid {
                    tracing::info!(?faults, "faults set");
                    *shared.faults.lock().expect("faults lock") = faults;
                } else {
                    tracing::error!(%from, loss = faults.loss, "loss rate outside [0, 1]: closed");
                    return;
                }
                if write_frame(&mut &*writer, &encode(&Wire::<M>::Ack)).is_err() {
                    return;
                }
            }
            _ => {
                tracing::error!(%from, "bad administrator frame: connection closed");
                return;
            }
        }
    }
}

/// Sets the faults of the node listening at `addr`, and waits for its acknowledgement.
pub fn set_faults(addr: SocketAddr, faults: &Faults) -> std::io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_nodelay(true)?;
    let hello = encode(&Wire::<()>::Hello {
        id: 0,
        role: Role::Admin,
    });
    write_frame(&mut &stream, &hello)?;
    write_frame(&mut &stream, &encode(&Wire::<()>::Admin(faults.clone())))?;
    let mut r = BufReader::new(&stream);
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    // The node's hello, then the acknowledgement.
    for expect_ack in [false, true] {
        let frame = read_frame(&mut r, 1 << 16)
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad("connection closed (faults refused?)"))?;
        match serde_json::from_slice::<Wire<()>>(&frame) {
            Ok(Wire::Hello { .. }) if !expect_ack => {}
            Ok(Wire::Ack) if expect_ack => {}
            _ => return Err(bad("unexpected answer to a fault command")),
        }
    }
    Ok(())
}

/// A small xorshift generator: timer jitter, injected faults and random choices need no more.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ time) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
