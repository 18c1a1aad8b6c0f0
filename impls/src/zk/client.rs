//! A small synchronous ZooKeeper client over [`super::jute`]: one session on one server, watch
//! events kept aside as they arrive. [`ZkClient::call`] sends a request and waits for its reply;
//! [`ZkClient::send`] and [`ZkClient::receive`] pipeline several (the server answers a session's
//! requests in the order they were sent, §2.3). For tests and for `jepsen zk`; users bring
//! kazoo or `zkCli.sh`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::jute::{
    self, err, op, AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, Data, Record, Reply,
    ReplyHeader, Request, SetDataRequest, Stat, WatcherEvent,
};

/// An error of a call: the server's code, or the connection's failure.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("ZooKeeper error {0}")]
    Code(i32),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A session on one server.
pub struct ZkClient {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    next_xid: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// The last zxid a reply carried (or, before any, the one the connect request said the
    /// client had seen).
    pub last_zxid: i64,
    /// The session timeout the server granted, in milliseconds.
    pub session_timeout_ms: i32,
    /// Watch events received and not yet taken.
    pub events: Vec<WatcherEvent>,
}

impl ZkClient {
    /// A new session (`session` `None`) or the given one, on the server at `addr`, asking for a
    /// 10-second session timeout.
    pub fn connect(
        addr: SocketAddr,
        timeout: Duration,
        session: Option<(i64, Vec<u8>)>,
    ) -> Result<ZkClient, ZkError> {
        Self::connect_with(addr, timeout, session, 10_000, 0)
    }

    /// [`ZkClient::connect`] asking for a session timeout of `session_timeout_ms`, and telling
    /// the server the last zxid the client has seen: a server that has not got that far refuses
    /// the connection (closes it), so that the session's reads never go back in time.
    pub fn connect_with(
        addr: SocketAddr,
        timeout: Duration,
        session: Option<(i64, Vec<u8>)>,
        session_timeout_ms: i32,
        last_zxid_seen: i64,
    ) -> Result<ZkClient, ZkError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let (session_id, passwd) = session.unwrap_or((0, vec![0; 16]));
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            time_out: session_timeout_ms,
            session_id,
            passwd,
            read_only: false,
        };
        let mut reader = BufReader::new(stream.try_clone()?);
        (&stream).write_all(&req.encode())?;
        let body = jute::read_frame(&mut reader)
            .map_err(|e| ZkError::Protocol(e.to_string()))?
            .ok_or_else(|| ZkError::Protocol("the server closed the connection".into()))?;
        let resp = ConnectResponse::decode(&body).map_err(|e| ZkError::Protocol(e.to_string()))?;
        if resp.time_out <= 0 {
            return Err(ZkError::Code(err::SESSION_EXPIRED));
        }
        Ok(ZkClient {
            stream,
            reader,
            next_xid: 1,
            session_id: resp.session_id,
            passwd: resp.passwd,
            last_zxid: last_zxid_seen,
            session_timeout_ms: resp.time_out,
            events: Vec::new(),
        })
    }

    /// Sends `req` and waits for its reply.
    pub fn call(&mut self, req: Request) -> Result<Reply, ZkError> {
        let sent = self.send(&req)?;
        self.receive(sent)?.result.map_err(ZkError::Code)
    }

    /// Sends `req` without waiting: its reply comes, in order, from [`ZkClient::receive`].
    pub fn send(&mut self, req: &Request) -> Result<Sent, ZkError> {
        let xid = match req {
            Request::Ping => jute::PING_XID,
            Request::Auth(_) => jute::AUTH_XID,
            _ => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        (&self.stream).write_all(&req.encode(xid))?;
        Ok(Sent {
            xid,
            op: req.op_code(),
        })
    }

    /// Waits for the reply to `sent`, the oldest request still unanswered (watch events that
    /// come first are kept in [`ZkClient::events`]).
    pub fn receive(&mut self, sent: Sent) -> Result<Answer, ZkError> {
        loop {
            let body = jute::read_frame(&mut self.reader)
                .map_err(|e| ZkError::Protocol(e.to_string()))?
                .ok_or_else(|| ZkError::Protocol("the server closed the connection".into()))?;
            let head = ReplyHeader::decode(&body[..body.len().min(16)])
                .map_err(|e| ZkError::Protocol(e.to_string()))?;
            if head.xid == jute::NOTIFICATION_XID {
                let ev = jute::decode_notification(&body)
                    .map_err(|e| ZkError::Protocol(e.to_string()))?;
                self.events.push(ev);
                continue;
            }
            let (header, reply) =
                jute::decode_reply(&body, sent.op).map_err(|e| ZkError::Protocol(e.to_string()))?;
            if header.xid != sent.xid {
                return Err(ZkError::Protocol(format!(
                    "a reply to xid {} where {} was expected",
                    header.xid, sent.xid
                )));
            }
            if header.zxid > 0 {
                self.last_zxid = header.zxid;
            }
            return Ok(Answer {
                zxid: header.zxid,
                result: if header.err == err::OK {
                    Ok(reply)
                } else {
                    Err(header.err)
                },
            });
        }
    }

    /// The next watch event, waiting up to `timeout` for one to arrive; `None` if none did.
    pub fn wait_event(&mut self, timeout: Duration) -> Result<Option<WatcherEvent>, ZkError> {
        if !self.events.is_empty() {
            return Ok(Some(self.events.remove(0)));
        }
        let normal = self.stream.read_timeout()?;
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        // Peek without consuming, so that a timeout cannot tear a frame.
        let peeked = self.reader.fill_buf().map(|b| b.is_empty());
        self.stream.set_read_timeout(normal)?;
        match peeked {
            Ok(true) => return Err(ZkError::Protocol("the server closed the connection".into())),
            Ok(false) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        }
        let body = jute::read_frame(&mut self.reader)
            .map_err(|e| ZkError::Protocol(e.to_string()))?
            .ok_or_else(|| ZkError::Protocol("the server closed the connection".into()))?;
        let head = ReplyHeader::decode(&body[..body.len().min(16)])
            .map_err(|e| ZkError::Protocol(e.to_string()))?;
        if head.xid != jute::NOTIFICATION_XID {
            return Err(ZkError::Protocol(format!(
                "a reply to xid {} with no request outstanding",
                head.xid
            )));
        }
        let ev = jute::decode_notification(&body).map_err(|e| ZkError::Protocol(e.to_string()))?;
        Ok(Some(ev))
    }

    /// `ping`: keeps the session alive.
    pub fn ping(&mut self) -> Result<(), ZkError> {
        self.call(Request::Ping).map(|_| ())
    }

    /// `setData`: the node's new stat (`BAD_VERSION` unless `version` is -1 or the node's).
    pub fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ZkError> {
        match self.call(Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        }))? {
            Reply::Stat { stat } => Ok(stat),
            other => Err(unexpected(op::SET_DATA, other)),
        }
    }

    /// `exists`: the node's stat, or `None` if it does not exist; with `watch`, a watch on it
    /// either way.
    pub fn exists(&mut self, path: &str, watch: bool) -> Result<Option<Stat>, ZkError> {
        match self.call(Request::Exists {
            path: path.into(),
            watch,
        }) {
            Ok(Reply::Stat { stat }) => Ok(Some(stat)),
            Ok(other) => Err(unexpected(op::EXISTS, other)),
            Err(ZkError::Code(err::NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `delete`.
    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), ZkError> {
        self.call(Request::Delete(jute::DeleteRequest {
            path: path.into(),
            version,
        }))
        .map(|_| ())
    }

    /// `create`: the path created (with its sequence suffix).
    pub fn create(&mut self, path: &str, data: &[u8], flags: i32) -> Result<String, ZkError> {
        match self.call(Request::Create(CreateRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: jute::open_acl_unsafe(),
            flags,
        }))? {
            Reply::Create { path } => Ok(path),
            other => Err(unexpected(op::CREATE, other)),
        }
    }

    /// A node's data: `None` if it is null.
    pub fn get_data(&mut self, path: &str, watch: bool) -> Result<Data, ZkError> {
        match self.call(Request::GetData {
            path: path.into(),
            watch,
        })? {
            Reply::GetData { data, .. } => Ok(data),
            other => Err(unexpected(op::GET_DATA, other)),
        }
    }

    pub fn get_children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ZkError> {
        match self.call(Request::GetChildren {
            path: path.into(),
            watch,
        })? {
            Reply::GetChildren { children } => Ok(children),
            other => Err(unexpected(op::GET_CHILDREN, other)),
        }
    }

    /// `addauth`: the connection authenticates as `auth` in `scheme` (`digest`:
    /// `user:password`). An unknown scheme is `AUTH_FAILED`, and the server closes the
    /// connection.
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> Result<(), ZkError> {
        self.call(Request::Auth(AuthPacket {
            type_: 0,
            scheme: scheme.into(),
            auth: auth.into(),
        }))
        .map(|_| ())
    }

    /// `sync`: later reads see every write committed before it.
    pub fn sync(&mut self, path: &str) -> Result<(), ZkError> {
        self.call(Request::Sync { path: path.into() }).map(|_| ())
    }

    /// Ends the session: its ephemeral nodes go.
    pub fn close(mut self) -> Result<(), ZkError> {
        self.call(Request::CloseSession).map(|_| ())
    }
}

/// A request sent and not yet answered.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    xid: i32,
    op: i32,
}

/// A reply: the zxid in its header, and the reply or the server's error code.
#[derive(Clone, Debug)]
pub struct Answer {
    pub zxid: i64,
    pub result: Result<Reply, i32>,
}

fn unexpected(op: i32, reply: Reply) -> ZkError {
    ZkError::Protocol(format!("op {op} answered with {reply:?}"))
}
