//! The runtime on loopback: two actors exchange messages over TCP, a node survives malformed and
//! unknown peers, a restarted node starts from its saved storage, a node closes connections
//! beyond its cap and keeps serving, a shutdown stops an idle node at once, and a peer whose
//! connection ends is reported to the actor.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use impls::frame::{read_frame, write_frame};
use impls::node::{run, NodeOptions, Shutdown};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// Ping-pong up to a limit; the pinger saves the highest count it has seen.
#[derive(Clone)]
struct PingPong {
    peer: Id,
    starts: bool,
    limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
enum Msg {
    Ping(u32),
    Pong(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Retry;

impl Actor for PingPong {
    type Msg = Msg;
    type State = u32;
    type Timer = Retry;
    type Random = ();
    type Storage = u32;

    fn on_start(&self, _id: Id, storage: &Option<u32>, o: &mut Out<Self>) -> u32 {
        let n = storage.unwrap_or(0);
        if self.starts {
            o.send(self.peer, Msg::Ping(n));
            // Messages sent before the peer listens are dropped: retry.
            o.set_timer(Retry, Duration::from_millis(50)..Duration::from_millis(60));
        }
        n
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<u32>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match msg {
            Msg::Ping(n) => o.send(src, Msg::Pong(n)),
            Msg::Pong(n) if n == **state => {
                *state.to_mut() = n + 1;
                o.save(n + 1);
                if n + 1 < self.limit {
                    o.send(src, Msg::Ping(n + 1));
                }
            }
            Msg::Pong(_) => {}
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<u32>, _t: &Retry, o: &mut Out<Self>) {
        if **state < self.limit {
            o.send(self.peer, Msg::Ping(**state));
            o.set_timer(Retry, Duration::from_millis(50)..Duration::from_millis(60));
        }
    }
}

fn listener() -> Arc<TcpListener> {
    Arc::new(TcpListener::bind("127.0.0.1:0").unwrap())
}

#[test]
fn actors_exchange_messages_and_survive_bad_peers_and_restarts() {
    let dir = std::env::temp_dir().join(format!("impls-node-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (l0, l1) = (listener(), listener());
    let (a0, a1) = (l0.local_addr().unwrap(), l1.local_addr().unwrap());
    let stop = Shutdown::new();

    // Node 1 answers pings.
    let mut o1 = NodeOptions::new(Id::from(1));
    o1.listen = Some(l1.clone());
    o1.peers.insert(Id::from(0), a0);
    o1.max_frame = 1024;
    let stop1 = stop.clone();
    let ponger = std::thread::spawn(move || {
        let actor = PingPong {
            peer: Id::from(0),
            starts: false,
            limit: 0,
        };
        run(actor, o1, stop1, |_| false).unwrap()
    });

    // Bad peers first: garbage, an oversized frame, an unknown id. Node 1 must keep serving.
    let mut s = TcpStream::connect(a1).unwrap();
    s.write_all(b"\x00\x00\x00\x05hello").unwrap();
    let mut s = TcpStream::connect(a1).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let mut s = TcpStream::connect(a1).unwrap();
    write_frame(&mut s, br#"{"Hello":{"id":99}}"#).unwrap();
    write_frame(&mut s, br#"{"Msg":{"Ping":0}}"#).unwrap();
    drop(s);

    // Returns the count the pinger started from and the one it ended with.
    let pinger = |limit: u32, listen: Arc<TcpListener>| {
        let mut o0 = NodeOptions::new(Id::from(0));
        o0.listen = Some(listen);
        o0.peers.insert(Id::from(1), a1);
        o0.data_dir = Some(dir.clone());
        let actor = PingPong {
            peer: Id::from(1),
            starts: true,
            limit,
        };
        let first = std::sync::Mutex::new(None);
        let last = run(actor, o0, Shutdown::new(), |n| {
            first.lock().unwrap().get_or_insert(*n);
            *n >= limit
        })
        .unwrap();
        let first = first.lock().unwrap().unwrap();
        (first, last)
    };
    assert_eq!(pinger(5, l0.clone()), (0, 5));
    // A restarted pinger starts from its saved count, not from 0.
    assert_eq!(impls::storage::load::<u32>(&dir).unwrap(), Some(5));
    assert_eq!(pinger(8, l0), (5, 8));

    stop.trigger();
    ponger.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Says hello as client `id` and checks that the node answers a ping on the same connection.
fn ping_as_client(addr: std::net::SocketAddr, id: usize) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write_frame(
        &mut s,
        format!(r#"{{"Hello":{{"id":{id},"role":"Client"}}}}"#).as_bytes(),
    )?;
    write_frame(&mut s, br#"{"Msg":{"Ping":7}}"#)?;
    let mut r = std::io::BufReader::new(s.try_clone()?);
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    for want in [r#""Hello""#, r#"{"Msg":{"Pong":7}}"#] {
        let frame = read_frame(&mut r, 1024)
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad("closed"))?;
        let frame = String::from_utf8_lossy(&frame).into_owned();
        if !frame.contains(want) {
            return Err(bad(&frame));
        }
    }
    Ok(s)
}

/// A ponger that serves clients, stopped by the returned handle.
fn ponger(max_conns: usize) -> (std::net::SocketAddr, Shutdown, std::thread::JoinHandle<u32>) {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let mut o = NodeOptions::new(Id::from(1));
    o.listen = Some(l);
    o.accept_clients = true;
    o.max_conns = max_conns;
    let stop = Shutdown::new();
    let stop1 = stop.clone();
    let actor = PingPong {
        peer: Id::from(0),
        starts: false,
        limit: 0,
    };
    let node = std::thread::spawn(move || run(actor, o, stop1, |_| false).unwrap());
    (addr, stop, node)
}

#[test]
fn connections_beyond_the_cap_are_closed_and_the_node_keeps_serving() {
    let (addr, stop, node) = ponger(2);
    let first = ping_as_client(addr, 100).unwrap();
    let _second = ping_as_client(addr, 101).unwrap();
    // The third is accepted by the kernel, then closed by the node without a hello.
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 16];
    match third.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "the connection over the cap was answered"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the connection over the cap was left open: {e}"
        ),
    }
    // Closing one frees its place for a new client.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ping_as_client(addr, 102).is_err() {
        assert!(std::time::Instant::now() < deadline, "no place freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.trigger();
    node.join().unwrap();
}

#[test]
fn a_triggered_shutdown_wakes_an_idle_node_at_once() {
    let (addr, stop, node) = ponger(8);
    // Up and serving, with no timer set: only the trigger can wake it.
    ping_as_client(addr, 100).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let triggered = std::time::Instant::now();
    stop.trigger();
    node.join().unwrap();
    let took = triggered.elapsed();
    assert!(
        took < Duration::from_millis(200),
        "returned {took:?} after the trigger"
    );
    // A node started with a handle already triggered returns at once too.
    let started = std::time::Instant::now();
    let actor = PingPong {
        peer: Id::from(0),
        starts: false,
        limit: 0,
    };
    run(actor, NodeOptions::new(Id::from(1)), stop, |_| false).unwrap();
    assert!(started.elapsed() < Duration::from_millis(200));
}

/// A node with a capacity handles no more messages a second than it says: 40 pings at 100 a
/// second take at least 0.39 s (the first is free), where they take milliseconds without it.
#[test]
fn a_node_with_a_capacity_handles_no_more_messages_a_second() {
    let time_pings = |capacity: Option<u32>| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        let mut o = NodeOptions::new(Id::from(1));
        o.listen = Some(l);
        o.accept_clients = true;
        o.capacity = capacity;
        let stop = Shutdown::new();
        let node_stop = stop.clone();
        let node = std::thread::spawn(move || {
            let actor = PingPong {
                peer: Id::from(0),
                starts: false,
                limit: 0,
            };
            run(actor, o, node_stop, |_| false).unwrap()
        });
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write_frame(&mut s, br#"{"Hello":{"id":1000,"role":"Client"}}"#).unwrap();
        let started = std::time::Instant::now();
        for n in 0..40 {
            write_frame(&mut s, format!(r#"{{"Msg":{{"Ping":{n}}}}}"#).as_bytes()).unwrap();
        }
        let mut pongs = 0;
        while pongs < 40 {
            let frame = read_frame(&mut s, 1 << 16).unwrap().expect("an answer");
            pongs += usize::from(String::from_utf8_lossy(&frame).contains("Pong"));
        }
        let took = started.elapsed();
        stop.trigger();
        node.join().unwrap();
        took
    };
    let slow = time_pings(Some(100));
    assert!(slow >= Duration::from_millis(380), "{slow:?}");
    let fast = time_pings(None);
    assert!(fast < Duration::from_millis(300), "{fast:?}");
}

/// Remembers the last `Ping` it sent itself.
struct Watch;

impl Actor for Watch {
    type Msg = Msg;
    type State = u32;
    type Timer = Retry;
    type Random = ();
    type Storage = u32;

    fn on_start(&self, _id: Id, _storage: &Option<u32>, _o: &mut Out<Self>) -> u32 {
        0
    }

    fn on_msg(&self, id: Id, state: &mut Cow<u32>, src: Id, msg: Msg, _o: &mut Out<Self>) {
        if let Msg::Ping(n) = msg {
            if src == id {
                *state.to_mut() = n;
            }
        }
    }
}

/// A peer whose connection ends (a killed process) is reported to the actor through the
/// `peer_closed` hook at once; a client's connection is not.
#[test]
fn a_peer_whose_connection_ends_is_reported_to_the_actor() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let mut opts = NodeOptions::new(Id::from(0));
    opts.listen = Some(l);
    opts.peers
        .insert(Id::from(1), listener().local_addr().unwrap());
    opts.accept_clients = true;
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let hooks = impls::node::Hooks {
            peer_closed: Some(|peer: Id| Some(Msg::Ping(100 + usize::from(peer) as u32))),
            ..impls::node::Hooks::default()
        };
        let end = impls::node::run_hooked(
            Watch,
            opts,
            None::<impls::storage::JsonFile>,
            Shutdown::new(),
            |n| *n != 0,
            hooks,
        );
        let _ = done.send(end.unwrap());
    });
    // A client comes and goes: nothing to report.
    let mut client = TcpStream::connect(addr).unwrap();
    write_frame(&mut client, br#"{"Hello":{"id":7,"role":"Client"}}"#).unwrap();
    write_frame(&mut client, br#"{"Msg":{"Ping":5}}"#).unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(100));
    // Peer 1 says hello, then its process dies.
    let mut s = TcpStream::connect(addr).unwrap();
    write_frame(&mut s, br#"{"Hello":{"id":1}}"#).unwrap();
    drop(s);
    let last = result.recv_timeout(Duration::from_secs(10));
    assert_eq!(last, Ok(101), "the actor was not told");
}
