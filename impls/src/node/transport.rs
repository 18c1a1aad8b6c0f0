//! A node's connections: the hello handshake, the accept loop (with its cap), peer writers that
//! reconnect with backoff, and the routes that answer clients on their own connections.

use std::collections::hash_map::Entry;
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use stateright::actor::Id;

use super::faults::{admin, Faults};
use super::{Event, Shared, TcpListener_, QUEUE};
use crate::frame::{read_frame, write_frame};
use crate::tls::{Stream, Who};

/// What a connection's hello says the sender is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A node of the cluster.
    #[default]
    Peer,
    /// A client: any id that is not a node's.
    Client,
    /// A fault injector: sends [`Wire::Admin`] frames.
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
    /// From an administrator: what is your role? Answered with `Status`.
    Query,
    /// The node's role as its service describes it (`leader of term 3`), if it has one.
    Status(Option<String>),
    /// From an administrator: how many messages of each kind have you handled? Answered with
    /// `Counted`.
    CountQuery,
    /// The messages the node has handled since it started, by kind (its service names them).
    Counted(std::collections::BTreeMap<String, u64>),
    /// From an administrator: add (`add`) or remove `server` from the configuration. Answered
    /// with `Changed` once the node's actor answers (a leader: once the change is committed),
    /// or after [`CHANGE_WAIT`].
    Change {
        server: usize,
        add: bool,
    },
    /// The answer to `Change`: done, or not with the leader the node knows of; `unsupported`:
    /// the protocol has no configuration changes.
    Changed {
        ok: bool,
        leader_hint: Option<usize>,
        unsupported: bool,
    },
}

/// How long a node waits for its actor's answer to an administrator's `Change`.
pub const CHANGE_WAIT: Duration = Duration::from_secs(5);

/// A queue of frames to one peer or client, and which connection drains it.
pub(super) struct Route {
    tx: SyncSender<Vec<u8>>,
    /// `None` for a peer's own writer (it reconnects); the connection's number for a connection
    /// that a client opened (the route ends with it).
    conn: Option<u64>,
}

/// The count ([`super::query_counts`]) of bytes a node has queued for its peers.
pub const BYTES_TO_PEERS: &str = "bytes sent to peers";

pub(super) fn encode<M: Serialize>(wire: &Wire<M>) -> Vec<u8> {
    serde_json::to_vec(wire).expect("messages serialise")
}

/// Queues `wire` for `dst`, starting a writer to it if it is a peer with no writer yet; drops it
/// if there is no route, the queue is full, or a partition cuts `dst` off.
pub(super) fn send<M>(shared: &Arc<Shared<M>>, dst: Id, wire: &Wire<M>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    if shared.blocked(dst) {
        return;
    }
    let bytes = encode(wire);
    let mut routes = shared.routes.lock().expect("routes lock");
    let route = match routes.entry(dst) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
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
    let framed = bytes.len() as u64 + 4;
    match route.tx.try_send(bytes) {
        Ok(()) if shared.is_peer(dst) => {
            // Counted at the sender, frame header included (benchmarks compare protocols'
            // bytes on the wire between nodes).
            shared
                .bytes_to_peers
                .fetch_add(framed, std::sync::atomic::Ordering::Relaxed);
        }
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
    let _running = Release::count(&shared.writers);
    let mut conn: Option<BufWriter<Stream>> = None;
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
        if let Err(e) = write_queued(w, frame, &rx) {
            tracing::debug!(to = usize::from(dst), %e, "write failed: connection closed");
            w.get_ref().shutdown();
            conn = None;
        }
    }
}

/// Writes `frame` and whatever is queued behind it, then flushes once.
fn write_queued(
    w: &mut BufWriter<Stream>,
    frame: Vec<u8>,
    rx: &mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    write_frame(w, &frame)?;
    while let Ok(f) = rx.try_recv() {
        write_frame(w, &f)?;
    }
    w.flush()
}

/// Connects to peer `dst` (with TLS, checking that its certificate names it), says hello, and
/// starts reading the connection (the peer's hello, then anything it sends back on it).
fn connect<M>(shared: &Arc<Shared<M>>, dst: Id, addr: SocketAddr) -> std::io::Result<Stream>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let tls = shared.opts.tls.as_deref();
    let server = Who::Node(usize::from(dst));
    let stream = crate::tls::connect(tls, addr, Duration::from_millis(500), server)?;
    stream
        .tcp()
        .set_write_timeout(Some(shared.opts.write_timeout))?;
    let hello = encode(&Wire::<M>::Hello {
        id: usize::from(shared.me),
        role: shared.opts.hello_role,
    });
    write_frame(&mut &stream, &hello)?;
    let reader = stream.try_clone()?;
    let shared = shared.clone();
    std::thread::spawn(move || serve(shared, reader, Some(dst), addr));
    Ok(stream)
}

/// Accepts connections until the node returns, each served by a thread of its own. Beyond
/// `opts.max_conns` open accepted connections, a new one is closed at once with a warning: a
/// flood of connections costs the node no more than that many threads.
pub(super) fn accept_loop<M>(listener: TcpListener_, shared: Arc<Shared<M>>)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    // The listener is non-blocking, so that this loop sees the node return; it may be the
    // caller's, shared with a node started after this one.
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, from)) => {
                if shared.accepted.fetch_add(1, Ordering::SeqCst) >= shared.opts.max_conns {
                    shared.accepted.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!(%from, max_conns = shared.opts.max_conns, "too many connections: refused");
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(shared.opts.write_timeout));
                // Small request/answer frames: do not let Nagle's algorithm hold them.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _slot = Release(&shared.accepted);
                    if let Some(stream) = handshake(&shared, stream, from) {
                        serve(shared.clone(), stream, None, from)
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => tracing::warn!(%e, "accept failed"),
        }
    }
}

/// The server side of an accepted connection's TLS handshake (none in plaintext); `None`, with
/// the reason logged, when the other side has no certificate of the cluster's authority, an
/// expired one, or speaks no TLS.
fn handshake<M>(shared: &Shared<M>, tcp: TcpStream, from: SocketAddr) -> Option<Stream> {
    let Some(tls) = &shared.opts.tls else {
        return Some(Stream::plain(tcp));
    };
    match tls.accept(tcp) {
        Ok(stream) => Some(stream),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // Closed before saying anything (a port probe): nothing to complain about.
            tracing::debug!(%from, %e, "connection closed during its handshake");
            None
        }
        Err(e) => {
            tracing::warn!(%from, reason = %e, "TLS handshake failed: refused");
            None
        }
    }
}

/// Reads one connection: the sender's hello, then its frames, until the connection ends or a
/// frame is bad. `expected` is the peer we connected to (for outgoing connections).
fn serve<M>(shared: Arc<Shared<M>>, stream: Stream, expected: Option<Id>, from: SocketAddr)
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    let max_frame = shared.opts.max_frame;
    let writer = stream.try_clone();
    // Registered so that the node can close it when it returns.
    let number = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    if let Ok(c) = stream.tcp().try_clone() {
        shared.conns.lock().expect("conns lock").insert(number, c);
    }
    let _unregister = Unregister(&shared.conns, number);
    if shared.stopped() {
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
    // The hello is a claim; with TLS, the certificate must back it.
    let who = Who::claimed(usize::from(peer), role);
    if let Err(reason) = reader.get_ref().certifies(who) {
        tracing::warn!(%from, peer = usize::from(peer), ?role, %reason, "hello not backed by the certificate: refused");
        return;
    }
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
    // However the connection ends from here on, a peer's end is reported.
    let _gone = (role == Role::Peer && shared.is_peer(peer)).then(|| PeerGone(&shared, peer));
    let mut conn = None;
    if expected.is_none() {
        // An incoming connection: answer clients (and peers we have no address for) on it, and
        // say who we are. The route comes first, so that a client that has our hello can be
        // answered: another node may answer it (chain replication's tail answers a write sent
        // to the head), and it may do so at once.
        let Ok(writer) = writer else { return };
        let answered_here = role != Role::Admin && !shared.is_peer(peer);
        let mut queue = None;
        if answered_here {
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
            shared.routes.lock().expect("routes lock").insert(
                peer,
                Route {
                    tx,
                    conn: Some(number),
                },
            );
            conn = Some(number);
            queue = Some(rx);
        }
        let hello = encode(&Wire::<M>::Hello {
            id: usize::from(shared.me),
            role: Role::Peer,
        });
        if write_frame(&mut &writer, &hello).is_err() {
            forget_route(&shared, peer, conn);
            return;
        }
        if let Some(rx) = queue {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let _running = Release::count(&shared.writers);
                conn_writer(writer, rx)
            });
        } else if role == Role::Admin {
            admin(&shared, &mut reader, &writer, from, number);
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
            Ok(Wire::Msg(msg)) if shared.membership.is_some_and(|m| (m.admin_only)(&msg)) => {
                tracing::error!(%from, peer = usize::from(peer), "configuration change from a non-administrator: connection closed");
                break;
            }
            Ok(Wire::Msg(msg)) => {
                if shared.events.send(Event::Msg(peer, msg)).is_err() {
                    break;
                }
            }
            Ok(
                Wire::Hello { .. }
                | Wire::Ack
                | Wire::Status(_)
                | Wire::Counted(_)
                | Wire::Changed { .. },
            ) => {}
            Ok(Wire::Admin(_) | Wire::Query | Wire::CountQuery | Wire::Change { .. }) => {
                tracing::error!(%from, peer = usize::from(peer), "fault command from a non-administrator: connection closed");
                break;
            }
            Err(e) => {
                tracing::error!(%from, peer = usize::from(peer), %e, "undecodable message: connection closed");
                break;
            }
        }
    }
    forget_route(&shared, peer, conn);
}

/// Tells the node, when dropped, that a connection with a peer has ended.
struct PeerGone<'a, M>(&'a Shared<M>, Id);

impl<M> Drop for PeerGone<'_, M> {
    fn drop(&mut self) {
        if !self.0.stopped() {
            let _ = self.0.events.send(Event::PeerClosed(self.1));
        }
    }
}

/// Hands an administrator's configuration change to the actor, as a message from the
/// administrator of connection `number`, and waits up to [`CHANGE_WAIT`] for the actor's
/// answer.
pub(super) fn change<M>(shared: &Shared<M>, server: usize, add: bool, number: u64) -> Wire<M>
where
    M: DeserializeOwned,
{
    let Some(membership) = shared.membership else {
        return Wire::Changed {
            ok: false,
            leader_hint: None,
            unsupported: true,
        };
    };
    // An administrator is known by its connection: ids from the top down, clear of nodes' and
    // clients'.
    let admin = Id::from(usize::MAX - number as usize);
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
    let conn = Some(number);
    shared
        .routes
        .lock()
        .expect("routes lock")
        .insert(admin, Route { tx, conn });
    let mut answer = Wire::Changed {
        ok: false,
        leader_hint: None,
        unsupported: false,
    };
    let request = (membership.request)(Id::from(server), add);
    if shared.events.send(Event::Msg(admin, request)).is_ok() {
        let deadline = Instant::now() + CHANGE_WAIT;
        while let Ok(bytes) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let Ok(Wire::Msg(msg)) = serde_json::from_slice::<Wire<M>>(&bytes) else {
                continue;
            };
            if let Some((ok, hint)) = (membership.reply)(&msg) {
                answer = Wire::Changed {
                    ok,
                    leader_hint: hint.map(usize::from),
                    unsupported: false,
                };
                break;
            }
        }
    }
    forget_route(shared, admin, conn);
    answer
}

/// Removes the route to `peer` through connection `conn`, if it is still that one.
fn forget_route<M>(shared: &Shared<M>, peer: Id, conn: Option<u64>) {
    if let Some(n) = conn {
        let mut routes = shared.routes.lock().expect("routes lock");
        if routes.get(&peer).is_some_and(|r| r.conn == Some(n)) {
            routes.remove(&peer);
        }
    }
}

/// Takes one off a count when dropped: a running writer thread, an open accepted connection.
struct Release<'a>(&'a AtomicUsize);

impl<'a> Release<'a> {
    /// Counts one more until the guard is dropped.
    fn count(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Release(n)
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Removes a connection from the node's list when its reader ends.
struct Unregister<'a>(&'a Mutex<std::collections::HashMap<u64, TcpStream>>, u64);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("conns lock").remove(&self.1);
    }
}

/// Writes a client's queue to its connection until the route is dropped or a write fails.
fn conn_writer(stream: Stream, rx: mpsc::Receiver<Vec<u8>>) {
    let mut w = BufWriter::new(stream);
    while let Ok(frame) = rx.recv() {
        if write_queued(&mut w, frame, &rx).is_err() {
            w.get_ref().shutdown();
            return;
        }
    }
}
