//! Runs one stateright actor as a node: its messages travel over TCP, its timers take real time,
//! its storage is saved to disk.
//!
//! The node interprets the commands an actor emits in a step (`Out`) the way the model checker
//! does, with these guarantees:
//! - Every `Save` of a step is written (atomically and durably, see [`crate::storage`]) before any
//!   `Send` of the same step.
//! - Messages are framed ([`crate::frame`]) and serialised as JSON. Every connection starts with a
//!   hello frame naming the sender. A node refuses peers it does not know, unless told to accept
//!   any (a MapReduce coordinator accepts workers it has never heard of).
//! - A malformed, oversized or undecodable frame closes that connection with a logged error; the
//!   node keeps serving.
//! - Connections are made lazily, reused in both directions, and re-made after a failure, with
//!   backoff. A message that cannot be written (no route, refused, or the peer stalls longer than
//!   the write timeout) is dropped: the actors are checked under message loss.
//! - Timers fire after a duration drawn from the actor's range; random choices are drawn here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use crate::frame::{read_frame, write_frame, MAX_FRAME};
use crate::storage;

/// What travels in a frame.
#[derive(Serialize, Deserialize)]
enum Wire<M> {
    /// The first frame on a connection, from each side.
    Hello {
        id: usize,
    },
    Msg(M),
}

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: Id,
    /// Where to accept connections; `None` for a node that only connects out.
    pub listen: Option<TcpListener_>,
    /// Addresses of the peers this node may connect to.
    pub peers: BTreeMap<Id, SocketAddr>,
    /// Accept hellos from ids not in `peers` (and answer them on their own connection).
    pub accept_unknown: bool,
    /// Where the actor's storage lives; `None` keeps it in memory.
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

/// Connections by peer id, each usable for writing; readers run on their own threads.
struct Routes {
    streams: Mutex<HashMap<Id, TcpStream>>,
}

/// Runs `actor` until `stop` is set or `done(&state)` holds; returns its last state.
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
    let me = opts.id;
    let (tx, rx) = mpsc::channel::<Event<A::Msg>>();
    let routes = Arc::new(Routes {
        streams: Mutex::new(HashMap::new()),
    });
    let known: Arc<Vec<Id>> = Arc::new(opts.peers.keys().copied().collect());
    if let Some(listener) = opts.listen.clone() {
        listener.set_nonblocking(true).map_err(NodeError::Listen)?;
        let (tx, routes, known, stop) = (tx.clone(), routes.clone(), known.clone(), stop.clone());
        let (accept_unknown, max_frame, write_timeout) =
            (opts.accept_unknown, opts.max_frame, opts.write_timeout);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, from)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_write_timeout(Some(write_timeout));
                        // Small request/answer frames: do not let Nagle's algorithm hold them.
                        let _ = stream.set_nodelay(true);
                        let (tx, routes, known) = (tx.clone(), routes.clone(), known.clone());
                        std::thread::spawn(move || {
                            serve::<A::Msg>(
                                me,
                                stream,
                                None,
                                &known,
                                accept_unknown,
                                max_frame,
                                &routes,
                                &tx,
                                from,
                            )
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => tracing::warn!(%e, "accept failed"),
                }
            }
        });
    }

    let storage: Option<A::Storage> = match &opts.data_dir {
        Some(dir) => storage::load(dir).map_err(NodeError::Storage)?,
        None => None,
    };
    let mut rng = Rng::new(usize::from(me) as u64);
    let mut timers: HashMap<A::Timer, Instant> = HashMap::new();
    let mut last_failure: HashMap<Id, (Instant, Duration)> = HashMap::new();
    let mut out = Out::new();
    let mut state = actor.on_start(me, &storage, &mut out);
    let mut ctx = Ctx {
        opts: &opts,
        routes: &routes,
        tx: &tx,
        known: &known,
        last_failure: &mut last_failure,
    };
    apply(&actor, me, &mut state, out, &mut timers, &mut rng, &mut ctx)?;

    while !stop.load(Ordering::Relaxed) && !done(&state) {
        let now = Instant::now();
        let next = timers.values().min().copied();
        let wait = next
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(Event::Msg(src, msg)) => {
                let mut cow = Cow::Borrowed(&state);
                let mut out = Out::new();
                actor.on_msg(me, &mut cow, src, msg, &mut out);
                if let Cow::Owned(s) = cow {
                    state = s;
                }
                apply(&actor, me, &mut state, out, &mut timers, &mut rng, &mut ctx)?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => unreachable!("the node holds a sender"),
        }
        let now = Instant::now();
        let due: Vec<A::Timer> = timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for timer in due {
            timers.remove(&timer);
            let mut cow = Cow::Borrowed(&state);
            let mut out = Out::new();
            actor.on_timeout(me, &mut cow, &timer, &mut out);
            if let Cow::Owned(s) = cow {
                state = s;
            }
            apply(&actor, me, &mut state, out, &mut timers, &mut rng, &mut ctx)?;
        }
    }
    Ok(state)
}

struct Ctx<'a, M> {
    opts: &'a NodeOptions,
    routes: &'a Arc<Routes>,
    tx: &'a mpsc::Sender<Event<M>>,
    known: &'a Arc<Vec<Id>>,
    last_failure: &'a mut HashMap<Id, (Instant, Duration)>,
}

/// One command of an actor's step.
type Commands<A> =
    Command<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random, <A as Actor>::Storage>;

/// Carries out one step's commands: saves first, then sends, timers and random choices in order.
fn apply<A>(
    actor: &A,
    me: Id,
    state: &mut A::State,
    out: Out<A>,
    timers: &mut HashMap<A::Timer, Instant>,
    rng: &mut Rng,
    ctx: &mut Ctx<'_, A::Msg>,
) -> Result<(), NodeError>
where
    A: Actor,
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
    A::Storage: Serialize,
    A::Timer: Hash + Eq,
{
    let commands: Vec<Commands<A>> = out.into_iter().collect();
    if let Some(dir) = &ctx.opts.data_dir {
        if let Some(last) = commands.iter().rev().find_map(|c| match c {
            Command::Save(s) => Some(s),
            _ => None,
        }) {
            storage::save(dir, last).map_err(NodeError::Storage)?;
        }
    }
    for command in commands {
        match command {
            Command::Save(_) => {}
            Command::Send(dst, msg) => send(me, dst, &Wire::Msg(msg), ctx),
            Command::SetTimer(timer, range) => {
                let span = range.end.saturating_sub(range.start);
                let jitter = Duration::from_nanos(rng.below(span.as_nanos().max(1) as u64));
                timers.insert(timer, Instant::now() + range.start + jitter);
            }
            Command::CancelTimer(timer) => {
                timers.remove(&timer);
            }
            Command::ChooseRandom(_, choices) => {
                if choices.is_empty() {
                    continue;
                }
                let choice = choices[rng.below(choices.len() as u64) as usize].clone();
                let mut cow = Cow::Borrowed(&*state);
                let mut out = Out::new();
                actor.on_random(me, &mut cow, &choice, &mut out);
                if let Cow::Owned(s) = cow {
                    *state = s;
                }
                apply(actor, me, state, out, timers, rng, ctx)?;
            }
        }
    }
    Ok(())
}

/// Writes `wire` to `dst`, over its existing connection or a new one; drops it on failure.
fn send<M>(me: Id, dst: Id, wire: &Wire<M>, ctx: &mut Ctx<'_, M>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let bytes = serde_json::to_vec(wire).expect("messages serialise");
    let existing = ctx
        .routes
        .streams
        .lock()
        .expect("routes lock")
        .get(&dst)
        .and_then(|s| s.try_clone().ok());
    let stream = match existing {
        Some(s) => s,
        None => match connect::<M>(me, dst, ctx) {
            Some(s) => s,
            None => {
                tracing::debug!(to = usize::from(dst), "no route: message dropped");
                return;
            }
        },
    };
    if let Err(e) = write_frame(&mut &stream, &bytes) {
        tracing::debug!(to = usize::from(dst), %e, "write failed: message dropped");
        let _ = stream.shutdown(std::net::Shutdown::Both);
        ctx.routes.streams.lock().expect("routes lock").remove(&dst);
    }
}

/// Connects to `dst` if it has an address and is not backing off; sends our hello and starts
/// reading the connection.
fn connect<M>(me: Id, dst: Id, ctx: &mut Ctx<'_, M>) -> Option<TcpStream>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let addr = *ctx.opts.peers.get(&dst)?;
    let now = Instant::now();
    if let Some((at, backoff)) = ctx.last_failure.get(&dst) {
        if now < *at + *backoff {
            return None;
        }
    }
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Ok(stream) => {
            ctx.last_failure.remove(&dst);
            let _ = stream.set_write_timeout(Some(ctx.opts.write_timeout));
            let _ = stream.set_nodelay(true);
            let hello = serde_json::to_vec(&Wire::<M>::Hello {
                id: usize::from(me),
            })
            .expect("hello serialises");
            write_frame(&mut &stream, &hello).ok()?;
            let reader = stream.try_clone().ok()?;
            ctx.routes
                .streams
                .lock()
                .expect("routes lock")
                .insert(dst, stream.try_clone().ok()?);
            let (tx, routes, known) = (ctx.tx.clone(), ctx.routes.clone(), ctx.known.clone());
            let max_frame = ctx.opts.max_frame;
            std::thread::spawn(move || {
                serve::<M>(
                    me,
                    reader,
                    Some(dst),
                    &known,
                    true,
                    max_frame,
                    &routes,
                    &tx,
                    addr,
                )
            });
            Some(stream)
        }
        Err(e) => {
            let backoff = ctx
                .last_failure
                .get(&dst)
                .map_or(Duration::from_millis(50), |(_, b)| {
                    (*b * 2).min(Duration::from_secs(1))
                });
            ctx.last_failure.insert(dst, (now, backoff));
            tracing::debug!(to = usize::from(dst), %e, "connect failed");
            None
        }
    }
}

/// Reads one connection: the peer's hello, then its messages, until the connection ends or a
/// frame is bad. `expected` is the peer we connected to (for outgoing connections).
#[allow(clippy::too_many_arguments)]
fn serve<M>(
    me: Id,
    stream: TcpStream,
    expected: Option<Id>,
    known: &[Id],
    accept_unknown: bool,
    max_frame: usize,
    routes: &Routes,
    tx: &mpsc::Sender<Event<M>>,
    from: SocketAddr,
) where
    M: Serialize + DeserializeOwned,
{
    // This connection's own address: the route to the peer is removed at the end only if it is
    // still this connection (a newer one may have replaced it meanwhile).
    let local = stream.local_addr().ok();
    let writer = stream.try_clone();
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
    let peer = match hello {
        Some(Wire::Hello { id }) => Id::from(id),
        _ => {
            tracing::warn!(%from, "connection without a hello: closed");
            return;
        }
    };
    if expected.is_some_and(|e| e != peer) || (!accept_unknown && !known.contains(&peer)) {
        tracing::warn!(%from, peer = usize::from(peer), "unknown peer refused");
        return;
    }
    if expected.is_none() {
        // An incoming connection: answer on it, and tell the peer who we are.
        let Ok(writer) = writer else { return };
        let hello = serde_json::to_vec(&Wire::<M>::Hello {
            id: usize::from(me),
        })
        .expect("hello serialises");
        if write_frame(&mut &writer, &hello).is_err() {
            return;
        }
        routes
            .streams
            .lock()
            .expect("routes lock")
            .insert(peer, writer);
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
                if tx.send(Event::Msg(peer, msg)).is_err() {
                    break;
                }
            }
            Ok(Wire::Hello { .. }) => {}
            Err(e) => {
                tracing::error!(%from, peer = usize::from(peer), %e, "undecodable message: connection closed");
                break;
            }
        }
    }
    let mut streams = routes.streams.lock().expect("routes lock");
    if streams
        .get(&peer)
        .is_some_and(|s| s.local_addr().ok() == local)
    {
        streams.remove(&peer);
    }
}

/// A small xorshift generator: timer jitter and random choices need no more.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ time) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
