//! ZooKeeper's wire protocol, as stock clients speak it (kazoo, `zkCli.sh` and the Java client of
//! ZooKeeper 3.8): jute records (`zookeeper-jute/src/main/resources/zookeeper.jute`) in frames.
//!
//! # Frames and records
//! Every message, either way, is a frame: a big-endian `i32` length, then that many bytes
//! ([`read_frame`], [`frame`]). A server refuses a frame longer than `jute.maxbuffer`
//! ([`MAX_BUFFER`]), as `NIOServerCnxn.readLength` does. A frame's body is a sequence of jute
//! records, each one its fields in declaration order with no tags or padding
//! (`BinaryOutputArchive`): `int` is 4 bytes, `long` 8, `boolean` 1, `ustring` and `buffer` an
//! `int` length then the bytes, `vector` an `int` count then the items; a length of -1 is null.
//!
//! # A session's conversation (`ClientCnxn`)
//! 1. The client's first frame is a [`ConnectRequest`], with no header; the server answers with a
//!    [`ConnectResponse`].
//! 2. Every later frame is a [`RequestHeader`] (the client's `xid` and an [`op`] code), then the
//!    op's record: a [`Request`]. The server answers with a [`ReplyHeader`] (the same `xid`, the
//!    last zxid it applied, an [`err`] code) and, when the code is `OK`, the op's response: a
//!    [`Reply`]. Replies go out in the order of the requests.
//! 3. Between replies, the server may send a watch's [`notification`]: a reply header with xid -1,
//!    then a [`WatcherEvent`]. Pings, auth packets and `setWatches` use the xids -2, -4 and -8.
//!
//! # Here, and not here
//! - Decoding never panics. A truncated or malformed body is a [`JuteError`], and no claimed
//!   length makes the reader allocate more than the bytes it has left.
//! - A znode's data is nullable ([`Data`]): `create` and `setData` may send a null buffer
//!   (kazoo's `create(path, None)`, `zkCli.sh`'s `create /a`), which ZooKeeper keeps and gives
//!   back in `getData`'s reply as null, apart from empty. Elsewhere null and empty are one
//!   value: a null `ustring`, `buffer` or `vector` decodes as empty, and is never encoded.
//!   Trailing bytes after a request are ignored, as ZooKeeper does.
//! - An op that [`decode_request`] does not know is [`Request::Unknown`], which a server answers
//!   with `UNIMPLEMENTED`: reconfig, SASL, `multiRead`, TTL creates, `addWatch` (persistent
//!   watches), `checkWatches` and `removeWatches`.
//! - A client that leaves out [`ConnectRequest::read_only`] (before 3.4) gets it in the
//!   [`ConnectResponse`] all the same; ZooKeeper would leave it out (`isOldClient`).

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::frame::FrameError;

/// The largest frame a server accepts: `jute.maxbuffer`'s default, 1 MB - 1.
pub const MAX_BUFFER: usize = 0xfffff;

/// The xid of a watch notification (`ClientCnxn.NOTIFICATION_XID`).
pub const NOTIFICATION_XID: i32 = -1;
/// The xid of a ping and its reply.
pub const PING_XID: i32 = -2;
/// The xid of an auth packet and its reply.
pub const AUTH_XID: i32 = -4;
/// The xid of the `setWatches` a client sends after it reconnects.
pub const SET_WATCHES_XID: i32 = -8;

/// Op codes (`ZooDefs.OpCode`).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Error codes of a [`ReplyHeader`] (`KeeperException.Code`).
pub mod err {
    pub const OK: i32 = 0;
    pub const SYSTEM_ERROR: i32 = -1;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const DATA_INCONSISTENCY: i32 = -3;
    pub const CONNECTION_LOSS: i32 = -4;
    pub const MARSHALLING_ERROR: i32 = -5;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const OPERATION_TIMEOUT: i32 = -7;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const UNKNOWN_SESSION: i32 = -12;
    pub const NEW_CONFIG_NO_QUORUM: i32 = -13;
    pub const RECONFIG_IN_PROGRESS: i32 = -14;
    pub const API_ERROR: i32 = -100;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const SESSION_EXPIRED: i32 = -112;
    pub const INVALID_CALLBACK: i32 = -113;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const SESSION_MOVED: i32 = -118;
    pub const NOT_READ_ONLY: i32 = -119;
    pub const EPHEMERAL_ON_LOCAL_SESSION: i32 = -120;
    pub const NO_WATCHER: i32 = -121;
    pub const REQUEST_TIMEOUT: i32 = -122;
    pub const RECONFIG_DISABLED: i32 = -123;
    pub const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;
    pub const QUOTA_EXCEEDED: i32 = -125;
    pub const THROTTLED: i32 = -127;
}

/// A [`WatcherEvent`]'s type (`Watcher.Event.EventType`).
pub mod event {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// A [`WatcherEvent`]'s state: the session's, as the client sees it (`Watcher.Event.KeeperState`).
pub mod state {
    pub const DISCONNECTED: i32 = 0;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const EXPIRED: i32 = -112;
    pub const CLOSED: i32 = 7;
}

/// The bits of an [`Acl`]'s `perms` (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// Why bytes are not a frame or a record.
#[derive(Debug, thiserror::Error)]
pub enum JuteError {
    #[error("jute: record ends early")]
    Truncated,
    #[error("jute: bad length {0}")]
    BadLength(i32),
    #[error("jute: op {0} has no place in a multi")]
    BadMultiOp(i32),
    #[error("jute: {0}")]
    Frame(#[from] FrameError),
}

/// A znode's data: `None` is a null buffer (length -1), which ZooKeeper stores and returns as
/// null, apart from `Some(vec![])`.
pub type Data = Option<Vec<u8>>;

/// Reads one frame: `Ok(None)` at a clean end of stream (between frames), an error for a length
/// below 0 or above [`MAX_BUFFER`] (read as a `u32`, a negative length is above it).
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, JuteError> {
    Ok(crate::frame::read_frame(r, MAX_BUFFER)?)
}

/// `body` as a frame: its length, then itself.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    crate::frame::write_frame(&mut out, body).expect("a Vec takes any write");
    out
}

/// A cursor over a frame's body.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if n > self.buf.len() {
            return Err(JuteError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JuteError> {
        Ok(self.take(N)?.try_into().expect("take gives N bytes"))
    }

    pub fn int(&mut self) -> Result<i32, JuteError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn long(&mut self) -> Result<i64, JuteError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Any byte but 0 is true (`DataInput.readBoolean`).
    pub fn bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// A length or a count: -1 (null) is 0. It is at most the bytes left, since every item of a
    /// vector takes a byte at least: a claimed length never allocates more than the frame holds.
    fn len(&mut self) -> Result<usize, JuteError> {
        Ok(self.nullable_len()?.unwrap_or(0))
    }

    /// A length, `None` for -1 (null).
    fn nullable_len(&mut self) -> Result<Option<usize>, JuteError> {
        match self.int()? {
            -1 => Ok(None),
            n if n < -1 => Err(JuteError::BadLength(n)),
            n if n as usize > self.remaining() => Err(JuteError::Truncated),
            n => Ok(Some(n as usize)),
        }
    }

    pub fn buffer(&mut self) -> Result<Vec<u8>, JuteError> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }

    /// A buffer that may be null (`BinaryInputArchive.readBuffer`).
    pub fn nullable_buffer(&mut self) -> Result<Data, JuteError> {
        match self.nullable_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// Bytes that are not UTF-8 are replaced, as Java's `new String(b, UTF_8)` does.
    pub fn ustring(&mut self) -> Result<String, JuteError> {
        let n = self.len()?;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    pub fn vector<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, JuteError>,
    ) -> Result<Vec<T>, JuteError> {
        let n = self.len()?;
        (0..n).map(|_| item(self)).collect()
    }

    pub fn read<T: Record>(&mut self) -> Result<T, JuteError> {
        T::read(self)
    }
}

/// A frame's body being written.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn int(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn long(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    /// A length or a count. Panics past `i32::MAX`, which no frame can carry anyway.
    fn len(&mut self, n: usize) {
        self.int(i32::try_from(n).expect("a jute length fits an i32"));
    }

    pub fn buffer(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    /// A null buffer is the length -1 alone.
    pub fn nullable_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.buffer(v),
            None => self.int(-1),
        }
    }

    pub fn ustring(&mut self, v: &str) {
        self.buffer(v.as_bytes());
    }

    pub fn vector<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        for i in items {
            item(self, i);
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn into_frame(self) -> Vec<u8> {
        frame(&self.buf)
    }
}

/// A jute record, read and written field by field in declaration order.
pub trait Record: Sized {
    fn read(r: &mut Reader) -> Result<Self, JuteError>;
    fn write(&self, w: &mut Writer);

    /// The record from a frame body that holds it alone.
    fn decode(body: &[u8]) -> Result<Self, JuteError> {
        Reader::new(body).read()
    }

    /// The record alone, framed.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_frame()
    }
}

impl Record for i32 {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.int()
    }
    fn write(&self, w: &mut Writer) {
        w.int(*self)
    }
}

impl Record for i64 {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.long()
    }
    fn write(&self, w: &mut Writer) {
        w.long(*self)
    }
}

impl Record for bool {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.bool()
    }
    fn write(&self, w: &mut Writer) {
        w.bool(*self)
    }
}

impl Record for String {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.ustring()
    }
    fn write(&self, w: &mut Writer) {
        w.ustring(self)
    }
}

/// `Vec<u8>` is a jute `buffer`; any other `Vec` (below) is a `vector`.
impl Record for Vec<u8> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.buffer()
    }
    fn write(&self, w: &mut Writer) {
        w.buffer(self)
    }
}

/// A nullable `buffer`: znode data ([`Data`]).
impl Record for Option<Vec<u8>> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.nullable_buffer()
    }
    fn write(&self, w: &mut Writer) {
        w.nullable_buffer(self.as_deref())
    }
}

impl<T: Record> Record for Vec<T> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.vector(T::read)
    }
    fn write(&self, w: &mut Writer) {
        w.vector(self, |w, item| item.write(w))
    }
}

/// Structs whose fields, in order, are a jute record's.
macro_rules! records {
    ($($(#[$attr:meta])* $name:ident { $($(#[$fattr:meta])* $field:ident: $ty:ty,)* })*) => {$(
        $(#[$attr])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct $name {
            $($(#[$fattr])* pub $field: $ty,)*
        }

        impl Record for $name {
            fn read(r: &mut Reader) -> Result<Self, JuteError> {
                Ok($name { $($field: r.read()?,)* })
            }
            fn write(&self, w: &mut Writer) {
                $(self.$field.write(w);)*
            }
        }
    )*};
}

records! {
    /// An `ACL` with its `Id` inline: who (`scheme:id`, such as `world:anyone` or
    /// `digest:user:hash`) may do what ([`perms`]).
    Acl {
        perms: i32,
        scheme: String,
        id: String,
    }

    /// A node's `Stat`, as clients see it.
    #[derive(Copy)]
    Stat {
        /// The zxid of the create.
        czxid: i64,
        /// The zxid of the last create or setData.
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        /// setDatas since the create.
        version: i32,
        /// Changes to the children: creates and deletes.
        cversion: i32,
        /// setACLs since the create.
        aversion: i32,
        /// The owning session of an ephemeral node, or 0.
        ephemeral_owner: i64,
        /// 0 for null data.
        data_length: i32,
        num_children: i32,
        /// The zxid of the last change to the children.
        pzxid: i64,
    }

    /// Who a connection is (ZooKeeper's `Id`): a scheme and an id in it, such as
    /// `ip:127.0.0.1` or `digest:user:hash` (see [`super::auth`]).
    Id {
        scheme: String,
        id: String,
    }

    /// Who a connection is, in a `whoAmI` reply.
    ClientInfo {
        auth_scheme: String,
        user: String,
    }

    /// What a watch reports: an [`event`] on a path.
    WatcherEvent {
        type_: i32,
        state: i32,
        path: String,
    }

    RequestHeader {
        xid: i32,
        type_: i32,
    }

    ReplyHeader {
        xid: i32,
        zxid: i64,
        err: i32,
    }

    /// Precedes each op of a multi, and each of its results; one with `done` ends them.
    MultiHeader {
        type_: i32,
        done: bool,
        err: i32,
    }

    /// `create`, `create2` and `createContainer`. Flags: 0 persistent, 1 ephemeral, 2 persistent
    /// sequential, 3 ephemeral sequential, 4 container, 5 and 6 persistent (sequential) with TTL.
    CreateRequest {
        path: String,
        data: Data,
        acl: Vec<Acl>,
        flags: i32,
    }

    /// Version -1 matches any version, here and in the other requests.
    DeleteRequest {
        path: String,
        version: i32,
    }

    SetDataRequest {
        path: String,
        data: Data,
        version: i32,
    }

    CheckVersionRequest {
        path: String,
        version: i32,
    }

    SetAclRequest {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    }

    /// The watches a client had when it lost its connection, sent again on the next one.
    SetWatches {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
    }

    /// [`SetWatches`] with persistent watches, which a client sends only when it has some.
    SetWatches2 {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
        persistent_watches: Vec<String>,
        persistent_recursive_watches: Vec<String>,
    }

    /// `addauth`: `type_` is unused (0).
    AuthPacket {
        type_: i32,
        scheme: String,
        auth: Vec<u8>,
    }
}

impl MultiHeader {
    /// The header that ends a multi request or response.
    pub const END: MultiHeader = MultiHeader {
        type_: -1,
        done: true,
        err: -1,
    };
}

/// `world:anyone` may do anything (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        scheme: "world".into(),
        id: "anyone".into(),
    }]
}

/// A session's first request. `read_only` (may the client talk to a server cut off from the
/// quorum) is a last byte that clients before 3.4 leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    /// 0 for a new session; else the session to resume, with its `passwd`.
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: bool,
}

impl Record for ConnectRequest {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(ConnectRequest {
            protocol_version: r.int()?,
            last_zxid_seen: r.long()?,
            time_out: r.int()?,
            session_id: r.long()?,
            passwd: r.buffer()?,
            read_only: r.remaining() > 0 && r.bool()?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.int(self.protocol_version);
        w.long(self.last_zxid_seen);
        w.int(self.time_out);
        w.long(self.session_id);
        w.buffer(&self.passwd);
        w.bool(self.read_only);
    }
}

/// The answer to a [`ConnectRequest`]: the session, or `time_out` 0 and `session_id` 0 when
/// the session to resume has expired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: bool,
}

impl Record for ConnectResponse {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(ConnectResponse {
            protocol_version: r.int()?,
            time_out: r.int()?,
            session_id: r.long()?,
            passwd: r.buffer()?,
            read_only: r.remaining() > 0 && r.bool()?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.int(self.protocol_version);
        w.int(self.time_out);
        w.long(self.session_id);
        w.buffer(&self.passwd);
        w.bool(self.read_only);
    }
}

/// A request after the [`RequestHeader`]. The writes carry records, which the data tree's
/// transactions reuse; the reads carry their fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Create(CreateRequest),
    /// `create` whose reply has the new node's stat too.
    Create2(CreateRequest),
    /// Answered as `create2`. ZooKeeper makes the node a container whatever the flags say.
    CreateContainer(CreateRequest),
    Delete(DeleteRequest),
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData(SetDataRequest),
    GetAcl {
        path: String,
    },
    SetAcl(SetAclRequest),
    GetChildren {
        path: String,
        watch: bool,
    },
    /// `getChildren` whose reply has the node's stat too.
    GetChildren2 {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    Check(CheckVersionRequest),
    /// Ops applied all or none: only `Create`, `Create2`, `CreateContainer`, `Delete`,
    /// `SetData` and `Check`.
    Multi(Vec<Request>),
    CloseSession,
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Auth(AuthPacket),
    GetEphemerals {
        prefix_path: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    WhoAmI,
    /// An op this module does not decode: the server answers `UNIMPLEMENTED`.
    Unknown(i32),
}

/// A request from a frame body: its header, and the op after it.
pub fn decode_request(body: &[u8]) -> Result<(RequestHeader, Request), JuteError> {
    let mut r = Reader::new(body);
    let header: RequestHeader = r.read()?;
    let request = Request::read_op(header.type_, &mut r)?;
    Ok((header, request))
}

/// The items of a multi request or response, each after its header, up to the header that is
/// `done`. Each turn takes 9 bytes at least: the loop ends with the bytes.
fn read_multi<T>(
    r: &mut Reader,
    mut item: impl FnMut(&MultiHeader, &mut Reader) -> Result<T, JuteError>,
) -> Result<Vec<T>, JuteError> {
    let mut items = Vec::new();
    loop {
        let header: MultiHeader = r.read()?;
        if header.done {
            return Ok(items);
        }
        items.push(item(&header, r)?);
    }
}

impl Request {
    pub fn op_code(&self) -> i32 {
        match self {
            Request::Create(_) => op::CREATE,
            Request::Create2(_) => op::CREATE2,
            Request::CreateContainer(_) => op::CREATE_CONTAINER,
            Request::Delete(_) => op::DELETE,
            Request::Exists { .. } => op::EXISTS,
            Request::GetData { .. } => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl { .. } => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren { .. } => op::GET_CHILDREN,
            Request::GetChildren2 { .. } => op::GET_CHILDREN2,
            Request::Sync { .. } => op::SYNC,
            Request::Ping => op::PING,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::CloseSession => op::CLOSE_SESSION,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::Auth(_) => op::AUTH,
            Request::GetEphemerals { .. } => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber { .. } => op::GET_ALL_CHILDREN_NUMBER,
            Request::WhoAmI => op::WHO_AM_I,
            Request::Unknown(op) => *op,
        }
    }

    /// The request with its header, framed.
    pub fn encode(&self, xid: i32) -> Vec<u8> {
        let mut w = Writer::new();
        RequestHeader {
            xid,
            type_: self.op_code(),
        }
        .write(&mut w);
        self.write_op(&mut w);
        w.into_frame()
    }

    fn read_op(type_: i32, r: &mut Reader) -> Result<Request, JuteError> {
        Ok(match type_ {
            op::CREATE => Request::Create(r.read()?),
            op::CREATE2 => Request::Create2(r.read()?),
            op::CREATE_CONTAINER => Request::CreateContainer(r.read()?),
            op::DELETE => Request::Delete(r.read()?),
            op::EXISTS => Request::Exists {
                path: r.read()?,
                watch: r.read()?,
            },
            op::GET_DATA => Request::GetData {
                path: r.read()?,
                watch: r.read()?,
            },
            op::SET_DATA => Request::SetData(r.read()?),
            op::GET_ACL => Request::GetAcl { path: r.read()? },
            op::SET_ACL => Request::SetAcl(r.read()?),
            op::GET_CHILDREN => Request::GetChildren {
                path: r.read()?,
                watch: r.read()?,
            },
            op::GET_CHILDREN2 => Request::GetChildren2 {
                path: r.read()?,
                watch: r.read()?,
            },
            op::SYNC => Request::Sync { path: r.read()? },
            op::PING => Request::Ping,
            op::CHECK => Request::Check(r.read()?),
            op::MULTI => Request::Multi(read_multi(r, |header, r| match header.type_ {
                op::CREATE
                | op::CREATE2
                | op::CREATE_CONTAINER
                | op::DELETE
                | op::SET_DATA
                | op::CHECK => Request::read_op(header.type_, r),
                other => Err(JuteError::BadMultiOp(other)),
            })?),
            op::CLOSE_SESSION => Request::CloseSession,
            op::SET_WATCHES => Request::SetWatches(r.read()?),
            op::SET_WATCHES2 => Request::SetWatches2(r.read()?),
            op::AUTH => Request::Auth(r.read()?),
            op::GET_EPHEMERALS => Request::GetEphemerals {
                prefix_path: r.read()?,
            },
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber { path: r.read()? },
            op::WHO_AM_I => Request::WhoAmI,
            other => Request::Unknown(other),
        })
    }

    fn write_op(&self, w: &mut Writer) {
        match self {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => c.write(w),
            Request::Delete(d) => d.write(w),
            Request::Exists { path, watch }
            | Request::GetData { path, watch }
            | Request::GetChildren { path, watch }
            | Request::GetChildren2 { path, watch } => {
                path.write(w);
                watch.write(w);
            }
            Request::SetData(s) => s.write(w),
            Request::GetAcl { path }
            | Request::Sync { path }
            | Request::GetEphemerals { prefix_path: path }
            | Request::GetAllChildrenNumber { path } => path.write(w),
            Request::SetAcl(s) => s.write(w),
            Request::Check(c) => c.write(w),
            Request::Multi(ops) => {
                for op in ops {
                    MultiHeader {
                        type_: op.op_code(),
                        done: false,
                        err: -1,
                    }
                    .write(w);
                    op.write_op(w);
                }
                MultiHeader::END.write(w);
            }
            Request::SetWatches(s) => s.write(w),
            Request::SetWatches2(s) => s.write(w),
            Request::Auth(a) => a.write(w),
            Request::Ping | Request::CloseSession | Request::WhoAmI | Request::Unknown(_) => {}
        }
    }
}

/// One op's result in a multi's reply (`OpResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    Create {
        path: String,
    },
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    /// A multi that fails has only these: `OK` for the ops before the one that failed, its code
    /// for it, `RUNTIME_INCONSISTENCY` for the ops after it (`DataTree.processTxn`).
    Error {
        err: i32,
    },
}

impl OpResult {
    fn op_code(&self) -> i32 {
        match self {
            OpResult::Create { .. } => op::CREATE,
            OpResult::Create2 { .. } => op::CREATE2,
            OpResult::Delete => op::DELETE,
            OpResult::SetData { .. } => op::SET_DATA,
            OpResult::Check => op::CHECK,
            OpResult::Error { .. } => op::ERROR,
        }
    }

    fn read(header: &MultiHeader, r: &mut Reader) -> Result<OpResult, JuteError> {
        Ok(match header.type_ {
            op::CREATE => OpResult::Create { path: r.read()? },
            op::CREATE2 => OpResult::Create2 {
                path: r.read()?,
                stat: r.read()?,
            },
            op::DELETE => OpResult::Delete,
            op::SET_DATA => OpResult::SetData { stat: r.read()? },
            op::CHECK => OpResult::Check,
            op::ERROR => OpResult::Error { err: r.read()? },
            other => return Err(JuteError::BadMultiOp(other)),
        })
    }

    fn write(&self, w: &mut Writer) {
        let err = match self {
            OpResult::Error { err } => *err,
            _ => err::OK,
        };
        MultiHeader {
            type_: self.op_code(),
            done: false,
            err,
        }
        .write(w);
        match self {
            OpResult::Create { path } => path.write(w),
            OpResult::Create2 { path, stat } => {
                path.write(w);
                stat.write(w);
            }
            OpResult::SetData { stat } => stat.write(w),
            OpResult::Error { err } => err.write(w),
            OpResult::Delete | OpResult::Check => {}
        }
    }
}

/// A reply after the [`ReplyHeader`], when the header's code is `OK`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Create {
        path: String,
    },
    /// To `create2` and `createContainer`.
    Create2 {
        path: String,
        stat: Stat,
    },
    /// To `exists`, `setData`, `setACL` and `check`.
    Stat {
        stat: Stat,
    },
    GetData {
        data: Data,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    GetChildren2 {
        children: Vec<String>,
        stat: Stat,
    },
    GetAcl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    Sync {
        path: String,
    },
    /// A multi that fails still has the header's code `OK` (`FinalRequestProcessor`): the
    /// failure is in the results.
    Multi(Vec<OpResult>),
    GetAllChildrenNumber {
        n: i32,
    },
    GetEphemerals {
        paths: Vec<String>,
    },
    WhoAmI(Vec<ClientInfo>),
    /// To `delete`, `ping`, `closeSession`, `setWatches` and `auth`.
    Empty,
}

impl Reply {
    /// The header and, if its code is `OK`, the reply: framed.
    pub fn encode(&self, header: &ReplyHeader) -> Vec<u8> {
        let mut w = Writer::new();
        header.write(&mut w);
        if header.err == err::OK {
            self.write(&mut w);
        }
        w.into_frame()
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Reply::Create { path } | Reply::Sync { path } => path.write(w),
            Reply::Create2 { path, stat } => {
                path.write(w);
                stat.write(w);
            }
            Reply::Stat { stat } => stat.write(w),
            Reply::GetData { data, stat } => {
                data.write(w);
                stat.write(w);
            }
            Reply::GetChildren { children } => children.write(w),
            Reply::GetChildren2 { children, stat } => {
                children.write(w);
                stat.write(w);
            }
            Reply::GetAcl { acl, stat } => {
                acl.write(w);
                stat.write(w);
            }
            Reply::Multi(results) => {
                for result in results {
                    result.write(w);
                }
                MultiHeader::END.write(w);
            }
            Reply::GetAllChildrenNumber { n } => n.write(w),
            Reply::GetEphemerals { paths } => paths.write(w),
            Reply::WhoAmI(infos) => infos.write(w),
            Reply::Empty => {}
        }
    }
}

/// A reply from a frame body, given the op of the request it answers: its header, and the reply
/// ([`Reply::Empty`] when the header's code is not `OK`).
pub fn decode_reply(body: &[u8], expected_op: i32) -> Result<(ReplyHeader, Reply), JuteError> {
    let mut r = Reader::new(body);
    let header: ReplyHeader = r.read()?;
    if header.err != err::OK {
        return Ok((header, Reply::Empty));
    }
    let reply = match expected_op {
        op::CREATE => Reply::Create { path: r.read()? },
        op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => Reply::Create2 {
            path: r.read()?,
            stat: r.read()?,
        },
        op::EXISTS | op::SET_DATA | op::SET_ACL | op::CHECK => Reply::Stat { stat: r.read()? },
        op::GET_DATA => Reply::GetData {
            data: r.read()?,
            stat: r.read()?,
        },
        op::GET_CHILDREN => Reply::GetChildren {
            children: r.read()?,
        },
        op::GET_CHILDREN2 => Reply::GetChildren2 {
            children: r.read()?,
            stat: r.read()?,
        },
        op::GET_ACL => Reply::GetAcl {
            acl: r.read()?,
            stat: r.read()?,
        },
        op::SYNC => Reply::Sync { path: r.read()? },
        op::MULTI => Reply::Multi(read_multi(&mut r, OpResult::read)?),
        op::GET_ALL_CHILDREN_NUMBER => Reply::GetAllChildrenNumber { n: r.read()? },
        op::GET_EPHEMERALS => Reply::GetEphemerals { paths: r.read()? },
        op::WHO_AM_I => Reply::WhoAmI(r.read()?),
        _ => Reply::Empty,
    };
    Ok((header, reply))
}

/// A watch's event as the server sends it: a reply header with xid -1 and zxid -1, then the
/// event; framed.
pub fn notification(ev: &WatcherEvent) -> Vec<u8> {
    let mut w = Writer::new();
    ReplyHeader {
        xid: NOTIFICATION_XID,
        zxid: -1,
        err: err::OK,
    }
    .write(&mut w);
    ev.write(&mut w);
    w.into_frame()
}

/// The event of a frame body whose reply header has xid -1.
pub fn decode_notification(body: &[u8]) -> Result<WatcherEvent, JuteError> {
    let mut r = Reader::new(body);
    let _: ReplyHeader = r.read()?;
    r.read()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The body of the one frame in `bytes`.
    fn body(bytes: &[u8]) -> Vec<u8> {
        let mut r = bytes;
        let body = read_frame(&mut r).unwrap().unwrap();
        assert!(r.is_empty());
        body
    }

    fn create(path: &str, data: Option<&[u8]>, flags: i32) -> CreateRequest {
        CreateRequest {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            acl: open_acl_unsafe(),
            flags,
        }
    }

    /// Frames that kazoo 2.11 writes (`kazoo.protocol.serialization`, framed as
    /// `ConnectionHandler._submit` does), and what they say.
    fn kazoo_requests() -> Vec<(&'static str, i32, Request)> {
        vec![
            (
                "000000390000000100000001000000082f6c6f636b2f6e2d000000026869000000010000001f\
                 00000005776f726c6400000006616e796f6e6500000003",
                1,
                Request::Create(create("/lock/n-", Some(b"hi"), 3)),
            ),
            (
                "00000031000000020000000f000000022f6100000000000000010000001f00000005776f726c\
                 6400000006616e796f6e6500000000",
                2,
                Request::Create2(create("/a", Some(b""), 0)),
            ),
            (
                "000000120000000300000002000000022f61ffffffff",
                3,
                Request::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
            ),
            (
                "0000000f0000000400000003000000022f6101",
                4,
                Request::Exists {
                    path: "/a".into(),
                    watch: true,
                },
            ),
            (
                "0000000f0000000500000004000000022f6100",
                5,
                Request::GetData {
                    path: "/a".into(),
                    watch: false,
                },
            ),
            (
                "000000190000000600000005000000022f610000000378797a00000007",
                6,
                Request::SetData(SetDataRequest {
                    path: "/a".into(),
                    data: Some(b"xyz".to_vec()),
                    version: 7,
                }),
            ),
            (
                "0000000e0000000700000008000000012f01",
                7,
                Request::GetChildren {
                    path: "/".into(),
                    watch: true,
                },
            ),
            (
                "00000017000000080000000c0000000a2f7a6f6f6b656570657200",
                8,
                Request::GetChildren2 {
                    path: "/zookeeper".into(),
                    watch: false,
                },
            ),
            (
                "0000000e0000000900000009000000022f61",
                9,
                Request::Sync { path: "/a".into() },
            ),
            (
                "0000000e0000000a00000006000000022f61",
                10,
                Request::GetAcl { path: "/a".into() },
            ),
            (
                "000000460000000b00000007000000022f61000000010000001f000000066469676573740000\
                 001e753a4a7137774d79412f7732566435574944414b6475344f49494645513d00000000",
                11,
                Request::SetAcl(SetAclRequest {
                    path: "/a".into(),
                    acl: vec![Acl {
                        perms: perms::ALL,
                        scheme: "digest".into(),
                        id: "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=".into(),
                    }],
                    version: 0,
                }),
            ),
            (
                "000000820000000c0000000e0000000100ffffffff000000022f740000000176000000010000\
                 001f00000005776f726c6400000006616e796f6e65000000000000000d00ffffffff00000002\
                 2f74000000000000000500ffffffff000000022f740000000177ffffffff0000000200ffffff\
                 ff000000022f74ffffffffffffffff01ffffffff",
                12,
                Request::Multi(vec![
                    Request::Create(create("/t", Some(b"v"), 0)),
                    Request::Check(CheckVersionRequest {
                        path: "/t".into(),
                        version: 0,
                    }),
                    Request::SetData(SetDataRequest {
                        path: "/t".into(),
                        data: Some(b"w".to_vec()),
                        version: -1,
                    }),
                    Request::Delete(DeleteRequest {
                        path: "/t".into(),
                        version: -1,
                    }),
                ]),
            ),
            (
                "0000001dfffffffc00000064000000000000000664696765737400000003753a70",
                AUTH_XID,
                Request::Auth(AuthPacket {
                    type_: 0,
                    scheme: "digest".into(),
                    auth: b"u:p".to_vec(),
                }),
            ),
            ("00000008fffffffe0000000b", PING_XID, Request::Ping),
            ("000000080000000dfffffff5", 13, Request::CloseSession),
            // `create("/n", None)` and `set("/n", None)`: null data, length -1.
            (
                "000000310000000e00000001000000022f6effffffff000000010000001f00000005776f726c\
                 6400000006616e796f6e6500000000",
                14,
                Request::Create(create("/n", None, 0)),
            ),
            (
                "000000160000000f00000005000000022f6effffffffffffffff",
                15,
                Request::SetData(SetDataRequest {
                    path: "/n".into(),
                    data: None,
                    version: -1,
                }),
            ),
        ]
    }

    /// `getData`'s reply keeps null and empty apart, as kazoo's `read_buffer` reads them.
    #[test]
    fn null_data_is_not_empty_data() {
        let header = ReplyHeader {
            xid: 1,
            zxid: 2,
            err: err::OK,
        };
        let null = Reply::GetData {
            data: None,
            stat: Stat::default(),
        };
        let empty = Reply::GetData {
            data: Some(vec![]),
            stat: Stat::default(),
        };
        let (null_bytes, empty_bytes) = (body(&null.encode(&header)), body(&empty.encode(&header)));
        assert_eq!(null_bytes[16..20], [0xff; 4]);
        assert_eq!(empty_bytes[16..20], [0; 4]);
        assert_eq!(decode_reply(&null_bytes, op::GET_DATA).unwrap().1, null);
        assert_eq!(decode_reply(&empty_bytes, op::GET_DATA).unwrap().1, empty);
    }

    #[test]
    fn kazoo_requests_decode_and_encode_byte_for_byte() {
        for (hex, xid, request) in kazoo_requests() {
            let bytes = unhex(hex);
            let (header, decoded) = decode_request(&body(&bytes)).unwrap();
            assert_eq!(header.xid, xid);
            assert_eq!(header.type_, request.op_code());
            assert_eq!(decoded, request);
            assert_eq!(request.encode(xid), bytes, "{request:?}");
        }
    }

    #[test]
    fn kazoo_connect_request_round_trips() {
        let bytes = unhex(
            "0000002d000000000000000000000000000027100000000000000000000000100000000000000000\
             000000000000000000",
        );
        let connect = ConnectRequest::decode(&body(&bytes)).unwrap();
        assert_eq!(
            connect,
            ConnectRequest {
                time_out: 10_000,
                passwd: vec![0; 16],
                ..Default::default()
            }
        );
        assert_eq!(connect.encode(), bytes);
    }

    #[test]
    fn a_connect_request_without_read_only_is_an_old_clients() {
        let connect = ConnectRequest {
            session_id: 7,
            passwd: b"secret".to_vec(),
            read_only: true,
            ..Default::default()
        };
        let body = body(&connect.encode());
        let old = ConnectRequest::decode(&body[..body.len() - 1]).unwrap();
        assert_eq!(
            old,
            ConnectRequest {
                read_only: false,
                ..connect.clone()
            }
        );
        assert_eq!(ConnectRequest::decode(&body).unwrap(), connect);
    }

    #[test]
    fn a_failed_reply_is_its_header_alone() {
        let header = ReplyHeader {
            xid: 5,
            zxid: 9,
            err: err::NO_NODE,
        };
        let bytes = Reply::Stat {
            stat: Stat::default(),
        }
        .encode(&header);
        assert_eq!(bytes.len(), 4 + 16);
        assert_eq!(
            decode_reply(&body(&bytes), op::EXISTS).unwrap(),
            (header, Reply::Empty)
        );
    }

    /// A failed multi as `FinalRequestProcessor` sends it, laid out by hand from
    /// `MultiResponse.serialize`: an `ErrorResult` for each op, header code `OK`.
    #[test]
    fn a_failed_multi_is_error_results() {
        let reply = Reply::Multi(vec![
            OpResult::Error { err: err::OK },
            OpResult::Error {
                err: err::NODE_EXISTS,
            },
            OpResult::Error {
                err: err::RUNTIME_INCONSISTENCY,
            },
        ]);
        let header = ReplyHeader {
            xid: 3,
            zxid: 10,
            err: err::OK,
        };
        let expected = unhex(
            "00000003000000000000000a00000000\
             ffffffff000000000000000000\
             ffffffff00ffffff92ffffff92\
             ffffffff00fffffffefffffffe\
             ffffffff01ffffffff",
        );
        assert_eq!(body(&reply.encode(&header)), expected);
        assert_eq!(decode_reply(&expected, op::MULTI).unwrap(), (header, reply));
    }

    #[test]
    fn a_notification_has_xid_minus_one() {
        let ev = WatcherEvent {
            type_: event::NODE_DELETED,
            state: state::SYNC_CONNECTED,
            path: "/a".into(),
        };
        let bytes = notification(&ev);
        assert_eq!(
            bytes,
            unhex("0000001effffffffffffffffffffffff000000000000000200000003000000022f61")
        );
        assert_eq!(decode_notification(&body(&bytes)).unwrap(), ev);
    }

    #[test]
    fn unknown_ops_decode_and_bad_ones_do_not() {
        let unknown = Request::Unknown(op::RECONFIG).encode(1);
        assert_eq!(
            decode_request(&body(&unknown)).unwrap().1,
            Request::Unknown(op::RECONFIG)
        );
        // A getData inside a multi: only multiRead may carry one.
        let mut w = Writer::new();
        RequestHeader {
            xid: 1,
            type_: op::MULTI,
        }
        .write(&mut w);
        MultiHeader {
            type_: op::GET_DATA,
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.ustring("/a");
        w.bool(false);
        MultiHeader::END.write(&mut w);
        assert!(matches!(
            decode_request(&w.into_bytes()),
            Err(JuteError::BadMultiOp(op::GET_DATA))
        ));
    }

    #[test]
    fn malformed_lengths_are_errors() {
        // A path of length -2, then one that claims more bytes than there are.
        for len in ["fffffffe", "7fffffff", "00000003"] {
            let bytes = unhex(&format!("0000000100000004{len}2f61"));
            assert!(decode_request(&bytes).is_err(), "{len}");
        }
        // A vector (getChildren's reply) of a billion children in 8 bytes.
        let bytes = unhex("00000001000000000000000100000000400000002f612f62");
        assert!(decode_reply(&bytes, op::GET_CHILDREN).is_err());
    }

    #[test]
    fn frames_past_max_buffer_or_negative_are_errors() {
        let huge = ((MAX_BUFFER + 1) as u32).to_be_bytes();
        assert!(read_frame(&mut &huge[..]).is_err());
        assert!(read_frame(&mut &unhex("ffffffff")[..]).is_err());
        assert!(read_frame(&mut &unhex("0000000501")[..]).is_err());
        assert!(read_frame(&mut &unhex("0000")[..]).is_err());
        assert!(read_frame(&mut &[][..]).unwrap().is_none());
        let most = frame(&vec![7; MAX_BUFFER]);
        assert_eq!(
            read_frame(&mut &most[..]).unwrap().unwrap().len(),
            MAX_BUFFER
        );
    }

    fn path() -> impl Strategy<Value = String> {
        "(/[a-zé0-9]{0,3}){0,3}"
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..6)
    }

    /// Null, empty or not.
    fn data() -> impl Strategy<Value = Data> {
        proptest::option::of(bytes())
    }

    fn paths() -> impl Strategy<Value = Vec<String>> {
        vec(path(), 0..3)
    }

    fn acl() -> impl Strategy<Value = Vec<Acl>> {
        vec(
            (any::<i32>(), "[a-z]{0,6}", "[a-z:]{0,6}").prop_map(|(perms, scheme, id)| Acl {
                perms,
                scheme,
                id,
            }),
            0..3,
        )
    }

    fn stat() -> impl Strategy<Value = Stat> {
        (
            (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
            (any::<i32>(), any::<i32>(), any::<i32>()),
            (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
        )
            .prop_map(
                |(
                    (czxid, mzxid, ctime, mtime),
                    (version, cversion, aversion),
                    (ephemeral_owner, data_length, num_children, pzxid),
                )| Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner,
                    data_length,
                    num_children,
                    pzxid,
                },
            )
    }

    fn create_request() -> impl Strategy<Value = CreateRequest> {
        (path(), data(), acl(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
            path,
            data,
            acl,
            flags,
        })
    }

    /// The ops a multi may carry.
    fn multi_op() -> impl Strategy<Value = Request> {
        prop_oneof![
            create_request().prop_map(Request::Create),
            create_request().prop_map(Request::Create2),
            create_request().prop_map(Request::CreateContainer),
            (path(), any::<i32>())
                .prop_map(|(path, version)| Request::Delete(DeleteRequest { path, version })),
            (path(), data(), any::<i32>()).prop_map(|(path, data, version)| {
                Request::SetData(SetDataRequest {
                    path,
                    data,
                    version,
                })
            }),
            (path(), any::<i32>())
                .prop_map(|(path, version)| Request::Check(CheckVersionRequest { path, version })),
        ]
    }

    fn path_watch() -> impl Strategy<Value = (String, bool)> {
        (path(), any::<bool>())
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            multi_op(),
            path_watch().prop_map(|(path, watch)| Request::Exists { path, watch }),
            path_watch().prop_map(|(path, watch)| Request::GetData { path, watch }),
            path_watch().prop_map(|(path, watch)| Request::GetChildren { path, watch }),
            path_watch().prop_map(|(path, watch)| Request::GetChildren2 { path, watch }),
            path().prop_map(|path| Request::GetAcl { path }),
            (path(), acl(), any::<i32>()).prop_map(|(path, acl, version)| Request::SetAcl(
                SetAclRequest { path, acl, version }
            )),
            path().prop_map(|path| Request::Sync { path }),
            path().prop_map(|prefix_path| Request::GetEphemerals { prefix_path }),
            path().prop_map(|path| Request::GetAllChildrenNumber { path }),
            vec(multi_op(), 0..4).prop_map(Request::Multi),
            (any::<i64>(), paths(), paths(), paths()).prop_map(|(z, d, e, c)| {
                Request::SetWatches(SetWatches {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                })
            }),
            (any::<i64>(), paths(), paths(), paths(), paths(), paths()).prop_map(
                |(z, d, e, c, p, r)| Request::SetWatches2(SetWatches2 {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                })
            ),
            (any::<i32>(), "[a-z]{0,6}", bytes()).prop_map(|(type_, scheme, auth)| {
                Request::Auth(AuthPacket {
                    type_,
                    scheme,
                    auth,
                })
            }),
            Just(Request::Ping),
            Just(Request::CloseSession),
            Just(Request::WhoAmI),
            prop_oneof![
                Just(op::RECONFIG),
                Just(op::SASL),
                Just(op::ADD_WATCH),
                200..300i32
            ]
            .prop_map(Request::Unknown),
        ]
    }

    fn op_result() -> impl Strategy<Value = OpResult> {
        prop_oneof![
            path().prop_map(|path| OpResult::Create { path }),
            (path(), stat()).prop_map(|(path, stat)| OpResult::Create2 { path, stat }),
            Just(OpResult::Delete),
            stat().prop_map(|stat| OpResult::SetData { stat }),
            Just(OpResult::Check),
            any::<i32>().prop_map(|err| OpResult::Error { err }),
        ]
    }

    /// A reply, and an op it answers.
    fn reply() -> impl Strategy<Value = (Reply, i32)> {
        prop_oneof![
            path().prop_map(|path| (Reply::Create { path }, op::CREATE)),
            (path(), stat()).prop_map(|(path, stat)| (Reply::Create2 { path, stat }, op::CREATE2)),
            (
                stat(),
                prop_oneof![
                    Just(op::EXISTS),
                    Just(op::SET_DATA),
                    Just(op::SET_ACL),
                    Just(op::CHECK)
                ]
            )
                .prop_map(|(stat, op)| (Reply::Stat { stat }, op)),
            (data(), stat()).prop_map(|(data, stat)| (Reply::GetData { data, stat }, op::GET_DATA)),
            paths().prop_map(|children| (Reply::GetChildren { children }, op::GET_CHILDREN)),
            (paths(), stat()).prop_map(|(children, stat)| (
                Reply::GetChildren2 { children, stat },
                op::GET_CHILDREN2
            )),
            (acl(), stat()).prop_map(|(acl, stat)| (Reply::GetAcl { acl, stat }, op::GET_ACL)),
            path().prop_map(|path| (Reply::Sync { path }, op::SYNC)),
            vec(op_result(), 0..4).prop_map(|results| (Reply::Multi(results), op::MULTI)),
            any::<i32>().prop_map(|n| (
                Reply::GetAllChildrenNumber { n },
                op::GET_ALL_CHILDREN_NUMBER
            )),
            paths().prop_map(|paths| (Reply::GetEphemerals { paths }, op::GET_EPHEMERALS)),
            vec(("[a-z]{0,4}", "[a-z.0-9]{0,9}"), 0..3).prop_map(|infos| (
                Reply::WhoAmI(
                    infos
                        .into_iter()
                        .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                        .collect()
                ),
                op::WHO_AM_I
            )),
            prop_oneof![
                Just(op::DELETE),
                Just(op::PING),
                Just(op::CLOSE_SESSION),
                Just(op::SET_WATCHES),
                Just(op::AUTH)
            ]
            .prop_map(|op| (Reply::Empty, op)),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip_and_fail_when_cut(request in request(), xid in any::<i32>()) {
            let body = body(&request.encode(xid));
            let (header, decoded) = decode_request(&body).unwrap();
            prop_assert_eq!(header, RequestHeader { xid, type_: request.op_code() });
            prop_assert_eq!(&decoded, &request);
            for cut in 0..body.len() {
                prop_assert!(decode_request(&body[..cut]).is_err(), "cut at {}", cut);
            }
        }

        #[test]
        fn replies_round_trip_and_fail_when_cut(
            (reply, op) in reply(), xid in any::<i32>(), zxid in any::<i64>()
        ) {
            let header = ReplyHeader { xid, zxid, err: err::OK };
            let body = body(&reply.encode(&header));
            prop_assert_eq!(decode_reply(&body, op).unwrap(), (header, reply));
            for cut in 0..body.len() {
                prop_assert!(decode_reply(&body[..cut], op).is_err(), "cut at {}", cut);
            }
        }

        #[test]
        fn connects_round_trip(
            (protocol_version, last_zxid_seen, time_out, session_id) in
                (any::<i32>(), any::<i64>(), any::<i32>(), any::<i64>()),
            passwd in bytes(),
            read_only in any::<bool>(),
        ) {
            let request = ConnectRequest {
                protocol_version, last_zxid_seen, time_out, session_id,
                passwd: passwd.clone(), read_only,
            };
            prop_assert_eq!(ConnectRequest::decode(&body(&request.encode())).unwrap(), request);
            let response = ConnectResponse {
                protocol_version, time_out, session_id, passwd, read_only,
            };
            prop_assert_eq!(ConnectResponse::decode(&body(&response.encode())).unwrap(), response);
        }

        /// Random bytes never panic a decoder.
        #[test]
        fn random_bytes_are_decoded_or_rejected(
            bytes in vec(any::<u8>(), 0..96), op in -12..110i32
        ) {
            let _ = decode_request(&bytes);
            let _ = decode_reply(&bytes, op);
            let _ = ConnectRequest::decode(&bytes);
            let _ = decode_notification(&bytes);
        }
    }
}
