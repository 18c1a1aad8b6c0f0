//! A small synchronous ZooKeeper client over [`super::jute`]: one session on one server, one
//! request at a time, watch events kept aside as they arrive. For tests and for `jepsen zk`;
//! users bring kazoo or `zkCli.sh`.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::jute::{
    self, err, op, AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, Data, Record, Reply,
    ReplyHeader, Request, WatcherEvent,
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
    /// The last zxid a reply carried.
    pub last_zxid: i64,
    /// Watch events received and not yet taken.
    pub events: Vec<WatcherEvent>,
}

impl ZkClient {
    /// A new session (`session` `None`) or the given one, on the server at `addr`.
    pub fn connect(
        addr: SocketAddr,
        timeout: Duration,
        session: Option<(i64, Vec<u8>)>,
    ) -> Result<ZkClient, ZkError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let (session_id, passwd) = session.unwrap_or((0, vec![0; 16]));
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
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
            last_zxid: 0,
            events: Vec::new(),
        })
    }

    /// Sends `req` and waits for its reply.
    pub fn call(&mut self, req: Request) -> Result<Reply, ZkError> {
        let xid = match req {
            Request::Ping => jute::PING_XID,
            Request::Auth(_) => jute::AUTH_XID,
            _ => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        let op = req.op_code();
        (&self.stream).write_all(&req.encode(xid))?;
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
                jute::decode_reply(&body, op).map_err(|e| ZkError::Protocol(e.to_string()))?;
            if header.xid != xid {
                return Err(ZkError::Protocol(format!(
                    "a reply to xid {} where {xid} was expected",
                    header.xid
                )));
            }
            if header.zxid > 0 {
                self.last_zxid = header.zxid;
            }
            if header.err != err::OK {
                return Err(ZkError::Code(header.err));
            }
            return Ok(reply);
        }
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

fn unexpected(op: i32, reply: Reply) -> ZkError {
    ZkError::Protocol(format!("op {op} answered with {reply:?}"))
}
