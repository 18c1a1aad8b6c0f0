//! A blocking KV client that speaks the model client's protocol (§8): every operation is a
//! `Request { client, seq, op }` with the client's id and its next sequence number; a `NotLeader`
//! answer redirects it to the hinted leader (or the next server); a server that does not answer in
//! time is given up for the next one, with the same sequence number, so that the session table
//! runs a retried command once.

use std::collections::HashMap;
use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use models::raft::kv::{KvOp, KvRet, Seq};
use models::raft::RaftMsg;
use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::frame::{read_frame, write_frame, MAX_FRAME};
use crate::node::{Role, Wire};

/// Client ids start here, far above any server's.
pub const CLIENT_IDS: usize = 1 << 40;

/// The operation's outcome is unknown: no server answered before the deadline. It may or may not
/// take effect (Jepsen's `:info`).
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}: the operation may or may not take effect")]
pub struct Indefinite(pub Duration);

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

/// A client of a Raft KV cluster.
pub struct KvClient {
    id: Id,
    seq: Seq,
    servers: Vec<(Id, SocketAddr)>,
    target: usize,
    conns: HashMap<usize, Conn>,
    /// How long to wait for one server before trying the next.
    pub attempt_timeout: Duration,
}

impl KvClient {
    /// A client with a fresh id (random, so that a new process never reuses a session).
    pub fn new(cluster: &ClusterConfig) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mix =
            (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self::with_id(cluster, CLIENT_IDS + (mix >> 24) as usize)
    }

    /// A client with id `id` (at least [`CLIENT_IDS`]); two clients must never share an id.
    pub fn with_id(cluster: &ClusterConfig, id: usize) -> Self {
        let servers: Vec<(Id, SocketAddr)> = cluster.nodes.iter().map(|(i, a)| (*i, *a)).collect();
        KvClient {
            id: Id::from(id),
            seq: 0,
            target: id % servers.len().max(1),
            servers,
            conns: HashMap::new(),
            attempt_timeout: Duration::from_millis(500),
        }
    }

    pub fn id(&self) -> usize {
        usize::from(self.id)
    }

    /// The server that answered last (the leader, as far as this client knows).
    pub fn leader(&self) -> Id {
        self.servers[self.target].0
    }

    /// Runs `op`, retrying until `timeout` has passed.
    pub fn call(&mut self, op: KvOp, timeout: Duration) -> Result<KvRet, Indefinite> {
        assert!(!self.servers.is_empty(), "a cluster has servers");
        self.seq += 1;
        let seq = self.seq;
        let deadline = Instant::now() + timeout;
        let request = serde_json::to_vec(&Wire::Msg(RaftMsg::Request {
            client: self.id,
            seq,
            op,
        }))
        .expect("requests serialise");
        while Instant::now() < deadline {
            let t = self.target;
            let Some(conn) = self.conn(t) else {
                self.target = (t + 1) % self.servers.len();
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            if write_frame(&mut conn.writer, &request).is_err() {
                self.drop_conn(t);
                continue;
            }
            match self.await_answer(t, seq, deadline) {
                Answer::Done(ret) => return Ok(ret),
                Answer::Redirect(hint) => {
                    let hinted = hint.and_then(|h| self.servers.iter().position(|(i, _)| *i == h));
                    self.target = match hinted {
                        Some(h) if h != t => h,
                        _ => {
                            // No leader known (an election is on): do not spin.
                            std::thread::sleep(Duration::from_millis(20));
                            (t + 1) % self.servers.len()
                        }
                    };
                }
                Answer::GiveUp => {
                    self.drop_conn(t);
                    self.target = (t + 1) % self.servers.len();
                }
            }
        }
        Err(Indefinite(timeout))
    }

    fn await_answer(&mut self, t: usize, seq: Seq, deadline: Instant) -> Answer {
        let until = deadline.min(Instant::now() + self.attempt_timeout);
        let Some(conn) = self.conns.get_mut(&t) else {
            return Answer::GiveUp;
        };
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Answer::GiveUp;
            }
            // A timeout in the middle of a frame loses the stream's framing: the connection is
            // dropped whenever a read fails.
            if conn.reader.get_ref().set_read_timeout(Some(left)).is_err() {
                return Answer::GiveUp;
            }
            let frame = match read_frame(&mut conn.reader, MAX_FRAME) {
                Ok(Some(f)) => f,
                _ => return Answer::GiveUp,
            };
            match serde_json::from_slice::<Wire<RaftMsg>>(&frame) {
                Ok(Wire::Msg(RaftMsg::Reply { seq: s, ret })) if s == seq => {
                    return Answer::Done(ret)
                }
                Ok(Wire::Msg(RaftMsg::NotLeader {
                    seq: s,
                    leader_hint,
                })) if s == seq => return Answer::Redirect(leader_hint),
                // Answers to earlier attempts, hellos.
                Ok(_) => {}
                Err(_) => return Answer::GiveUp,
            }
        }
    }

    fn conn(&mut self, t: usize) -> Option<&mut Conn> {
        if !self.conns.contains_key(&t) {
            let addr = self.servers[t].1;
            let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
            stream.set_nodelay(true).ok()?;
            stream
                .set_write_timeout(Some(Duration::from_secs(1)))
                .ok()?;
            let mut writer = stream.try_clone().ok()?;
            let hello = serde_json::to_vec(&Wire::<RaftMsg>::Hello {
                id: usize::from(self.id),
                role: Role::Client,
            })
            .expect("hello serialises");
            write_frame(&mut writer, &hello).ok()?;
            let reader = BufReader::new(stream);
            self.conns.insert(t, Conn { writer, reader });
        }
        self.conns.get_mut(&t)
    }

    fn drop_conn(&mut self, t: usize) {
        if let Some(c) = self.conns.remove(&t) {
            let _ = c.writer.shutdown(std::net::Shutdown::Both);
        }
    }
}

enum Answer {
    Done(KvRet),
    Redirect(Option<Id>),
    GiveUp,
}
