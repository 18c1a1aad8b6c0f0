//! GFS's messages and actors: the master (§2.6, §3.1, §4.5), a chunkserver (§3.1, §3.3) and a
//! client doing one record append (§3.3). The master's decisions here are the ones the real
//! `gfs master` makes; the chunkserver's placement rule ([`place`]) and mutation rule
//! ([`apply`]) are the ones the real chunkserver applies to its chunk files.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use std::hash::Hash;
use std::marker::PhantomData;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

use crate::client::RequestId;

/// A chunk handle: globally unique, chosen by the master when it creates the chunk (§2.6).
pub type Handle = u64;
/// A chunk version number (§4.5).
pub type Version = u64;
/// A byte offset in a chunk (in the model, a slot: a record is a few slots long).
pub type Offset = u64;
/// A file's number, given by the master when it creates the file (the model has one file, 0).
pub type FileId = u32;
/// A record's id: the client names the data it pushed to the replicas by it (§3.2), and the
/// primary's and secondaries' writes name it too.
pub type RecId = u64;

/// What one slot of a chunk replica holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Slot {
    /// Nothing written here on this replica: a mutation it missed (an inconsistent region).
    Hole,
    /// Padding (§3.3): the primary filled the rest of the chunk.
    Pad,
    /// Part `part` of record `rec`.
    Data { rec: u8, part: u8 },
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::Hole => write!(f, "_"),
            Slot::Pad => write!(f, "#"),
            Slot::Data { rec, part } => write!(f, "{}{}", (b'A' + rec) as char, part),
        }
    }
}

/// What a mutation writes at its offset (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Write {
    /// The first `len` bytes (slots) of record `rec` (all of it, unless a seeded bug truncates
    /// it): the data the client pushed under that id.
    Record { rec: RecId, len: u64 },
    /// `len` bytes (slots) of padding.
    Pad { len: u64 },
}

impl Write {
    /// How long the write is.
    pub fn len(self) -> u64 {
        match self {
            Write::Record { len, .. } | Write::Pad { len } => len,
        }
    }

    /// Whether it writes nothing.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    fn slots(self) -> Vec<Slot> {
        match self {
            Write::Record { rec, len } => (0..len)
                .map(|part| Slot::Data {
                    rec: rec as u8,
                    part: part as u8,
                })
                .collect(),
            Write::Pad { len } => vec![Slot::Pad; len as usize],
        }
    }
}

/// A replica's contents as the chunkserver actor sees them. The model keeps every slot
/// ([`Slots`]); a real chunkserver keeps the length and the last write, which its runtime
/// carries out on the chunk's file (`impls::gfs`).
pub trait ChunkData:
    Clone + fmt::Debug + Default + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// How far the chunk is filled: where the primary appends next (§3.3).
    fn used(&self) -> u64;
    /// Writes `write` at `offset`; a gap before it is a hole.
    fn write(&mut self, offset: Offset, write: Write);
    /// A whole replica `len` long copied from another chunkserver (re-replication, §4.3).
    fn copied(len: u64) -> Self;
}

/// The model's chunk contents: one [`Slot`] per offset.
pub type Slots = Vec<Slot>;

impl ChunkData for Slots {
    fn used(&self) -> u64 {
        self.len() as u64
    }
    fn write(&mut self, offset: Offset, write: Write) {
        apply(self, offset, &write.slots());
    }
    fn copied(len: u64) -> Self {
        vec![Slot::Hole; len as usize]
    }
}

/// A replica of a chunk on a chunkserver's disk: its version number and its contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Replica<D: ChunkData = Slots> {
    pub version: Version,
    /// Which lease round this replica last took part in: a ghost the properties read (a
    /// replica that missed a round is stale, §4.5, whatever its version says).
    pub epoch: u32,
    pub data: D,
}

/// A chunkserver's disk: its replicas. Shared, so that the checker's copies of a state share
/// it until the chunkserver writes.
pub type Disk<D = Slots> = Arc<BTreeMap<Handle, Replica<D>>>;

/// What the master keeps on disk (§2.6.3, §4.5): the namespace, each file's chunks and each
/// chunk's version. Not where the chunks are: it asks the chunkservers (§2.6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MasterDisk {
    pub names: BTreeMap<String, FileId>,
    pub files: BTreeMap<FileId, Vec<Handle>>,
    pub versions: BTreeMap<Handle, Version>,
    pub next_file: FileId,
    pub next_handle: Handle,
}

/// An actor's storage: the master's metadata or a chunkserver's replicas.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum GfsDisk<D: ChunkData = Slots> {
    Master(MasterDisk),
    Chunkserver(Disk<D>),
}

/// A client's data, shared and not copied (over TCP it is pushed to the replicas, §3.2, and
/// never travels in a control message).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bytes(pub Arc<[u8]>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// An operation a driven client runs (over TCP: `gfs create|append|read|ls|rm`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GfsOp {
    /// Record append (§3.3) of `data` to the file at `path`, as record `rec`.
    Append {
        path: String,
        rec: RecId,
        data: Bytes,
    },
    /// A namespace operation, run by the master.
    Master(NsOp),
}

/// The master's namespace operations (§2.6, §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NsOp {
    Create(String),
    /// The file's chunks and where they are (for reads, §2.4).
    Open(String),
    Remove(String),
    /// The files whose path starts with the prefix, and their chunk counts.
    List(String),
    /// Renames a file, atomically replacing any file of the new name (MapReduce commits its
    /// outputs so, §3.3 of that paper).
    Rename(String, String),
}

/// A chunk of a file: its handle, version and up-to-date replicas (§2.6.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkInfo {
    pub handle: Handle,
    pub version: Version,
    pub locations: Vec<Id>,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GfsRet {
    Created {
        file: FileId,
    },
    /// Appended as chunk `chunk` of the file, at `offset`.
    Appended {
        chunk: u32,
        offset: Offset,
    },
    Chunks {
        file: FileId,
        chunks: Vec<ChunkInfo>,
    },
    Removed,
    Listing {
        files: Vec<(String, u32)>,
    },
    Failed {
        why: String,
    },
}

/// Where the primary puts a record of `len` on a chunk of `size` that holds `used` (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// It fits: append at this offset.
    At(Offset),
    /// It does not: pad from `used` to the end, and the client retries on the next chunk.
    Pad { from: Offset, len: u64 },
}

/// The primary's rule (§3.3): "The primary checks to see if appending the record to the current
/// chunk would cause the chunk to exceed the maximum size. If so, it pads the chunk to the
/// maximum size, tells secondaries to do the same, and replies to the client indicating that the
/// operation should be retried on the next chunk."
pub fn place(used: u64, len: u64, size: u64) -> Placement {
    if used + len > size {
        Placement::Pad {
            from: used,
            len: size.saturating_sub(used),
        }
    } else {
        Placement::At(used)
    }
}

/// Writes `slots` at `offset` of `data`, filling a gap before it with holes: a secondary writes
/// at the primary's offset whatever it missed before (§3.1: "the same serial number order").
pub fn apply(data: &mut Vec<Slot>, offset: Offset, slots: &[Slot]) {
    let offset = offset as usize;
    if data.len() < offset {
        data.resize(offset, Slot::Hole);
    }
    for (i, s) in slots.iter().enumerate() {
        if offset + i < data.len() {
            data[offset + i] = *s;
        } else {
            data.push(*s);
        }
    }
}

/// The messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GfsMsg {
    /// Client to master (§3.1 step 1): which chunkserver holds the lease on chunk `chunk` of
    /// file `file`, creating the chunk if it is the next one. `refused`: the primary that did
    /// not answer or said it was not primary (the client suspects its lease is gone).
    FindLease {
        file: FileId,
        chunk: u32,
        refused: Option<Id>,
    },
    /// Master to client (§3.1 step 2): the primary and the secondaries. `epoch` is a ghost:
    /// the lease round the master answers in (see [`Replica::epoch`]).
    LeaseIs {
        file: FileId,
        chunk: u32,
        handle: Handle,
        version: Version,
        epoch: u32,
        primary: Id,
        secondaries: Vec<Id>,
    },
    /// Master to client: the file may not grow to chunk `chunk` (the model's bound).
    FileFull {
        file: FileId,
        chunk: u32,
    },
    /// Master to client: there is no such file (it was removed).
    NoSuchFile {
        file: FileId,
    },
    /// Master to the up-to-date replicas before a lease (§4.5): record version `version`,
    /// creating the chunk if it is new. `epoch` is a ghost (see [`Replica::epoch`]).
    NewVersion {
        handle: Handle,
        version: Version,
        epoch: u32,
    },
    /// A replica has recorded `version` of `handle`.
    VersionOk {
        handle: Handle,
        version: Version,
    },
    /// Master to the chosen primary (§3.1): a lease on `handle` at `version`, and the replicas
    /// to forward mutations to.
    Grant {
        handle: Handle,
        version: Version,
        secondaries: Vec<Id>,
    },
    /// The primary holds the lease: the master may tell clients.
    GrantOk {
        handle: Handle,
    },
    /// Master to primary (§3.1: "the master may sometimes try to revoke a lease before it
    /// expires"): give up the lease at `version` (here: one of its replicas is down).
    Revoke {
        handle: Handle,
        version: Version,
    },
    /// The primary holds no lease at `version` any more.
    Revoked {
        handle: Handle,
        version: Version,
    },
    /// Client to primary (§3.3): append record `rec`, `len` long (pushed beforehand, §3.2).
    RecordAppend {
        handle: Handle,
        rec: RecId,
        len: u64,
    },
    /// Primary to client: record `rec` appended at `offset` on every replica.
    AppendOk {
        handle: Handle,
        rec: RecId,
        offset: Offset,
    },
    /// Primary to client: the chunk is padded; retry on the next chunk (§3.3).
    RetryNextChunk {
        handle: Handle,
        rec: RecId,
    },
    /// Primary to client: a secondary failed; the region is inconsistent, retry (§3.3).
    AppendFailed {
        handle: Handle,
        rec: RecId,
    },
    /// A chunkserver without the lease to a client.
    NotPrimary {
        handle: Handle,
        rec: RecId,
    },
    /// Primary to secondary (§3.1 step 6): write at `offset`, in the primary's order.
    Mutate {
        handle: Handle,
        version: Version,
        offset: Offset,
        write: Write,
    },
    MutateOk {
        handle: Handle,
        offset: Offset,
    },
    /// The secondary has no replica at `version` (a stale primary, or a deleted replica), or
    /// (over TCP) not the data.
    MutateFailed {
        handle: Handle,
        offset: Offset,
    },
    /// Chunkserver to master: its chunks and their versions. Sent when it restarts (§4.5) and,
    /// over TCP, as its HeartBeat (§2.6.2).
    Report {
        chunks: Vec<(Handle, Version)>,
    },
    /// Master to chunkserver: the replica at `version` or older is stale; delete it (garbage
    /// collection, §4.4). A replica that has recorded a newer version since keeps it.
    Delete {
        handle: Handle,
        version: Version,
    },
    /// Master to chunkserver (re-replication, §4.3): copy chunk `handle` at `version` from
    /// `from`. Over TCP the runtime copies the file and fills in its length `len`.
    Replicate {
        handle: Handle,
        version: Version,
        from: Id,
        len: u64,
    },
    /// Client to master: a namespace operation (over TCP).
    Namespace {
        seq: RequestId,
        op: NsOp,
    },
    /// Master to client: what it returned.
    NamespaceReply {
        seq: RequestId,
        ret: GfsRet,
    },
    /// Driver to a driven client (over TCP): run `op` as request `seq` (`models::client`).
    Invoke {
        seq: RequestId,
        op: GfsOp,
    },
    /// A driven client to its driver: request `seq` returned `ret`.
    Return {
        seq: RequestId,
        ret: GfsRet,
    },
}

/// The timers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GfsTimer {
    /// Master: the lease on this chunk has run out by the master's clock.
    LeaseRunOut(Handle),
    /// Master: stop waiting for replicas to record a new version.
    GrantTimeout,
    /// Master: no HeartBeat from this chunkserver for a while (§2.6.2): it is down.
    Silent(Id),
    /// Master (over TCP): look for chunks with too few replicas (§4.3).
    Tick,
    /// Master (over TCP), restarted: every lease it may have granted before has run out.
    Recovered,
    /// Chunkserver: its lease on this chunk ends (the primary did not extend it, §3.1).
    LeaseEnd(Handle),
    /// Chunkserver (primary): stop waiting for the secondaries of the append at this offset.
    MutateTimeout(Handle, Offset),
    /// Chunkserver (over TCP): time for a HeartBeat (§2.6.2).
    HeartBeat,
    /// Client: the primary (or, for a namespace operation, the master) did not answer.
    NoAnswer,
    /// Client: wait a little before retrying a failed append.
    Backoff,
}

crate::seeded_bugs! {
    /// The seeded bugs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum GfsBug {
        /// The master's lease runs out before the primary's does (its lease period is shorter),
        /// so it grants a new lease while the old primary still acts.
        EarlyLease = "early-lease",
        /// The master does not increase the version number on a new lease (§4.5).
        NoVersionBump = "no-version-bump",
        /// The primary acknowledges an append although a secondary failed it.
        AckOnPartial = "ack-on-partial",
        /// The primary writes a record that does not fit up to the end of the chunk instead of
        /// padding it: the record is split across chunks.
        NoPadding = "no-padding",
    }
}

/// The master's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MasterCfg {
    pub chunkservers: Vec<Id>,
    /// The files it starts with (the model's one file; none over TCP).
    pub files: Vec<String>,
    /// How many chunks a file may have (the model's bound; unbounded over TCP).
    pub max_chunks: u32,
    /// Replicas a chunk should have (§4.2, three by default).
    pub replication: usize,
    /// Lease length by the master's clock; the primary's is shorter (§3.1). Only timers use it.
    pub lease: Duration,
    /// How often it looks for chunks to re-replicate (§4.3); `None`: never (the model).
    pub tick: Option<Duration>,
    /// Whether it saves its metadata (over TCP; in the model the master does not crash).
    pub persist: bool,
    pub bug: Option<GfsBug>,
}

/// What the master knows of a chunk (§2.6).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkMeta {
    pub handle: Handle,
    pub version: Version,
    /// The lease rounds completed (a ghost for the properties; see [`Replica::epoch`]).
    pub epoch: u32,
    /// The up-to-date replicas.
    pub locations: Vec<Id>,
    /// The primary, until the lease runs out by the master's clock.
    pub lease: Option<Id>,
    /// The primary of the last lease, so that a new lease goes to the next replica.
    pub last_primary: Option<Id>,
    /// The lease is being revoked: clients wait for the next one.
    pub revoking: bool,
    /// Leases granted on the chunk (a ghost, for the properties).
    pub granted: u32,
    /// A chunkserver copying the chunk (§4.3), and the ticks it has had; no lease meanwhile.
    pub cloning: Option<(Id, u8)>,
}

/// A lease being granted (§4.5): the new version is being recorded by the replicas.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Granting {
    pub handle: Handle,
    pub version: Version,
    /// The round's number (a ghost, see [`Replica::epoch`]).
    pub epoch: u32,
    pub acked: Vec<Id>,
    pub waiting: Vec<Id>,
    /// The primary chosen, once the replicas have the version, until it has the lease.
    pub primary: Option<Id>,
}

/// The master's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MasterState {
    /// The namespace: path names and their files (§4.1).
    pub names: BTreeMap<String, FileId>,
    /// Each file's chunks, in order.
    pub files: BTreeMap<FileId, Vec<Handle>>,
    pub chunks: BTreeMap<Handle, ChunkMeta>,
    pub next_file: FileId,
    pub next_handle: Handle,
    pub granting: Option<Granting>,
    /// Clients waiting for a lease on a chunk: `(client, file, chunk)`.
    pub parked: Vec<(Id, FileId, u32)>,
    /// The chunkservers it has stopped hearing from, until they report again.
    pub down: Vec<Id>,
    /// Restarted, and leases it may have granted before may still run (over TCP).
    pub recovering: bool,
}

impl MasterState {
    /// Chunk `chunk` of file `file`.
    pub fn handle(&self, file: FileId, chunk: u32) -> Option<Handle> {
        self.files.get(&file)?.get(chunk as usize).copied()
    }

    /// What it keeps on disk.
    pub fn disk(&self) -> MasterDisk {
        MasterDisk {
            names: self.names.clone(),
            files: self.files.clone(),
            versions: self
                .chunks
                .values()
                .map(|m| (m.handle, m.version))
                .collect(),
            next_file: self.next_file,
            next_handle: self.next_handle,
        }
    }
}

impl MasterCfg {
    fn start<D: ChunkData>(
        &self,
        storage: &Option<GfsDisk<D>>,
        o: &mut Out<GfsActor<D>>,
    ) -> MasterState {
        for cs in &self.chunkservers {
            o.set_timer(GfsTimer::Silent(*cs), self.lease..self.lease);
        }
        if let Some(tick) = self.tick {
            o.set_timer(GfsTimer::Tick, tick..tick);
        }
        let mut s = MasterState {
            next_handle: 1,
            ..MasterState::default()
        };
        if let Some(GfsDisk::Master(d)) = storage {
            // Restarted (§2.6.3): the metadata from the operation log; where the chunks are
            // it learns from the chunkservers' reports; leases it may have granted run out
            // before it grants new ones.
            s.names = d.names.clone();
            s.files = d.files.clone();
            s.next_file = d.next_file;
            s.next_handle = d.next_handle;
            for (h, v) in &d.versions {
                s.chunks.insert(*h, ChunkMeta::new(*h, *v, Vec::new()));
            }
            s.recovering = true;
            o.set_timer(GfsTimer::Recovered, self.lease..self.lease);
            return s;
        }
        for name in &self.files {
            s.names.insert(name.clone(), s.next_file);
            s.files.insert(s.next_file, Vec::new());
            s.next_file += 1;
        }
        s
    }

    fn persist<D: ChunkData>(&self, s: &MasterState, o: &mut Out<GfsActor<D>>) {
        if self.persist {
            o.save(GfsDisk::Master(s.disk()));
        }
    }

    /// Where a new chunk goes (§4.2): the `replication` chunkservers that are up and hold
    /// the fewest chunks.
    fn place_new(&self, s: &MasterState) -> Vec<Id> {
        let mut up: Vec<(usize, Id)> = self
            .chunkservers
            .iter()
            .filter(|c| !s.down.contains(c))
            .map(|c| {
                let held = s
                    .chunks
                    .values()
                    .filter(|m| m.locations.contains(c))
                    .count();
                (held, *c)
            })
            .collect();
        up.sort();
        let mut chosen: Vec<Id> = up
            .into_iter()
            .take(self.replication)
            .map(|(_, c)| c)
            .collect();
        chosen.sort();
        chosen
    }

    fn park(s: &mut MasterState, client: Id, file: FileId, chunk: u32) {
        if !s.parked.contains(&(client, file, chunk)) {
            s.parked.push((client, file, chunk));
            s.parked.sort();
        }
    }

    /// Answers `client` about chunk `chunk` of `file` if the chunk has a lease; otherwise
    /// parks it and starts a lease round if none is under way.
    fn find_lease<D: ChunkData>(
        &self,
        s: &mut MasterState,
        client: Id,
        (file, chunk): (FileId, u32),
        refused: Option<Id>,
        o: &mut Out<GfsActor<D>>,
    ) {
        let Some(handles) = s.files.get(&file) else {
            o.send(client, GfsMsg::NoSuchFile { file });
            return;
        };
        if chunk >= self.max_chunks {
            o.send(client, GfsMsg::FileFull { file, chunk });
            return;
        }
        if s.recovering {
            Self::park(s, client, file, chunk);
            return;
        }
        if chunk as usize == handles.len() {
            // A new chunk (§4.2).
            let handle = s.next_handle;
            s.next_handle += 1;
            let locations = self.place_new(s);
            s.chunks
                .insert(handle, ChunkMeta::new(handle, 0, locations));
            s.files.get_mut(&file).expect("the file").push(handle);
            self.persist(s, o);
        }
        let Some(handle) = s.handle(file, chunk) else {
            // A chunk beyond the next one: the client skipped ahead; it waits (never happens
            // with this client, which moves one chunk at a time).
            return;
        };
        let meta = &s.chunks[&handle];
        if meta.revoking || meta.cloning.is_some() {
            // Its next lease comes once the old one is revoked or the copy is made.
            Self::park(s, client, file, chunk);
            return;
        }
        match meta.lease {
            // The lease holder failed this client, but the master cannot tell a dead primary
            // from a slow one: it waits for the lease to run out (§3.1).
            Some(p) if refused == Some(p) => {}
            Some(primary) => {
                let secondaries = meta
                    .locations
                    .iter()
                    .copied()
                    .filter(|r| *r != primary)
                    .collect();
                o.send(
                    client,
                    GfsMsg::LeaseIs {
                        file,
                        chunk,
                        handle,
                        version: meta.version,
                        epoch: meta.epoch,
                        primary,
                        secondaries,
                    },
                );
                return;
            }
            None => {}
        }
        Self::park(s, client, file, chunk);
        if s.granting.is_none() && s.chunks[&handle].lease.is_none() {
            self.start_grant(s, handle, o);
        }
    }

    /// §4.5: "Whenever the master grants a new lease on a chunk, it increases the chunk version
    /// number and informs the up-to-date replicas."
    fn start_grant<D: ChunkData>(
        &self,
        s: &mut MasterState,
        handle: Handle,
        o: &mut Out<GfsActor<D>>,
    ) {
        let meta = &s.chunks[&handle];
        if meta.locations.is_empty() {
            // No replica is known to be up to date (a restarted master that has not heard
            // from them yet, or every replica lost): the clients wait for reports.
            return;
        }
        let version = if self.bug == Some(GfsBug::NoVersionBump) && meta.version > 0 {
            meta.version
        } else {
            meta.version + 1
        };
        let epoch = meta.epoch + 1;
        for r in &meta.locations {
            o.send(
                *r,
                GfsMsg::NewVersion {
                    handle,
                    version,
                    epoch,
                },
            );
        }
        s.granting = Some(Granting {
            handle,
            version,
            epoch,
            acked: Vec::new(),
            waiting: meta.locations.clone(),
            primary: None,
        });
        o.set_timer(GfsTimer::GrantTimeout, self.lease / 4..self.lease / 2);
    }

    /// The replicas that recorded the version are the up-to-date ones; one becomes primary.
    fn choose_primary<D: ChunkData>(&self, s: &mut MasterState, o: &mut Out<GfsActor<D>>) {
        let Some(g) = s.granting.as_mut() else {
            return;
        };
        if g.primary.is_some() {
            return;
        }
        if g.acked.is_empty() {
            if self.tick.is_some() {
                // Over TCP: nobody answered; give up the round, and the parked clients'
                // retries start another.
                s.granting = None;
                self.next_grant(s, o);
            }
            return;
        }
        let Some(meta) = s.chunks.get_mut(&g.handle) else {
            // The file was removed meanwhile.
            s.granting = None;
            self.next_grant(s, o);
            return;
        };
        if g.acked.iter().any(|r| s.down.contains(r)) {
            // A replica that recorded the version went down: the version must be held by
            // exactly the lease's replicas, or it comes back looking up to date without the
            // lease's mutations. The round starts over at a newer version without it.
            let (handle, version, epoch) = (g.handle, g.version, g.epoch);
            s.granting = None;
            meta.version = version;
            meta.epoch = epoch;
            self.persist(s, o);
            self.start_grant(s, handle, o);
            return;
        }
        let mut acked = g.acked.clone();
        acked.sort();
        meta.version = g.version;
        meta.epoch = g.epoch;
        meta.locations = acked.clone();
        // The next replica after the last primary, so that leases move around.
        let primary = match meta.last_primary {
            Some(last) => *acked.iter().find(|r| **r > last).unwrap_or(&acked[0]),
            None => acked[0],
        };
        g.primary = Some(primary);
        g.waiting.clear();
        let (handle, version) = (meta.handle, meta.version);
        self.persist(s, o);
        // Now the timer waits for the primary's answer.
        o.set_timer(GfsTimer::GrantTimeout, self.lease / 4..self.lease / 2);
        o.send(
            primary,
            GfsMsg::Grant {
                handle,
                version,
                secondaries: acked.into_iter().filter(|r| *r != primary).collect(),
            },
        );
    }

    /// The primary holds the lease: answer the parked clients.
    fn granted<D: ChunkData>(&self, s: &mut MasterState, o: &mut Out<GfsActor<D>>) {
        let Some(g) = s.granting.take() else {
            return;
        };
        let Some(primary) = g.primary else {
            return;
        };
        o.cancel_timer(GfsTimer::GrantTimeout);
        let Some(meta) = s.chunks.get_mut(&g.handle) else {
            self.next_grant(s, o);
            return;
        };
        meta.lease = Some(primary);
        meta.last_primary = Some(primary);
        meta.granted += 1;
        let lease = if self.bug == Some(GfsBug::EarlyLease) {
            self.lease / 4
        } else {
            self.lease
        };
        o.set_timer(GfsTimer::LeaseRunOut(meta.handle), lease..lease);
        if meta.revoking {
            // A replica went down during the round: this lease goes at once.
            o.send(
                primary,
                GfsMsg::Revoke {
                    handle: meta.handle,
                    version: meta.version,
                },
            );
            return;
        }
        self.answer_parked(s, Some(g.handle), o);
        self.next_grant(s, o);
    }

    /// Runs the parked clients' requests again: those waiting for chunk `handle`, or all.
    fn answer_parked<D: ChunkData>(
        &self,
        s: &mut MasterState,
        handle: Option<Handle>,
        o: &mut Out<GfsActor<D>>,
    ) {
        let parked = std::mem::take(&mut s.parked);
        for (client, file, chunk) in parked {
            if handle.is_none() || s.handle(file, chunk) == handle {
                self.find_lease(s, client, (file, chunk), None, o);
            } else {
                s.parked.push((client, file, chunk));
            }
        }
    }

    /// A chunkserver is down (§4.3): it is no longer a location of its chunks, and a lease
    /// that has it as a secondary is revoked, so that the next lease, at a new version, leaves
    /// it out (and it is stale when it comes back, §4.5).
    fn silent<D: ChunkData>(&self, s: &mut MasterState, cs: Id, o: &mut Out<GfsActor<D>>) {
        if s.down.contains(&cs) {
            return;
        }
        s.down.push(cs);
        s.down.sort();
        let in_round = s
            .granting
            .as_ref()
            .filter(|g| g.acked.contains(&cs) && g.primary.is_some_and(|p| p != cs))
            .map(|g| g.handle);
        for meta in s.chunks.values_mut() {
            let had = meta.locations.contains(&cs);
            meta.locations.retain(|r| *r != cs);
            if in_round == Some(meta.handle) {
                // The lease being granted has it as a secondary: revoked once granted.
                meta.revoking = true;
                continue;
            }
            match meta.lease {
                Some(p) if had && p != cs && !meta.revoking => {
                    meta.revoking = true;
                    o.send(
                        p,
                        GfsMsg::Revoke {
                            handle: meta.handle,
                            version: meta.version,
                        },
                    );
                }
                _ => {}
            }
        }
    }

    /// Starts a lease round for a chunk some parked client waits for, if none is under way.
    fn next_grant<D: ChunkData>(&self, s: &mut MasterState, o: &mut Out<GfsActor<D>>) {
        if s.granting.is_some() || s.recovering {
            return;
        }
        let next = s
            .parked
            .iter()
            .filter_map(|(_, f, c)| s.handle(*f, *c))
            .find(|h| {
                s.chunks.get(h).is_some_and(|m| {
                    m.lease.is_none() && m.cloning.is_none() && !m.locations.is_empty()
                })
            });
        if let Some(handle) = next {
            self.start_grant(s, handle, o);
        }
    }

    /// A chunkserver's report (at restart, §4.5, and over TCP its HeartBeat, §2.6.2).
    fn report<D: ChunkData>(
        &self,
        s: &mut MasterState,
        src: Id,
        chunks: Vec<(Handle, Version)>,
        o: &mut Out<GfsActor<D>>,
    ) {
        s.down.retain(|r| *r != src);
        o.set_timer(GfsTimer::Silent(src), self.lease..self.lease);
        let mut changed = false;
        let mut cloned = false;
        for (handle, version) in chunks {
            let in_round = s.granting.as_ref().is_some_and(|g| g.handle == handle);
            let Some(meta) = s.chunks.get_mut(&handle) else {
                // A chunk of no file (§4.4: an orphan, or of a removed file).
                o.send(src, GfsMsg::Delete { handle, version });
                continue;
            };
            if version < meta.version {
                // §4.5: "the master removes stale replicas in its regular garbage
                // collection".
                meta.locations.retain(|r| *r != src);
                o.send(src, GfsMsg::Delete { handle, version });
                continue;
            }
            if version > meta.version && !in_round {
                // §4.5: "If the master sees a version number greater than the one in its
                // records, the master assumes that it failed when granting the lease and so
                // takes the higher version to be up-to-date."
                meta.version = version;
                meta.locations.clear();
                changed = true;
            }
            if meta.cloning.is_some_and(|(c, _)| c == src) && version == meta.version {
                meta.cloning = None;
                cloned = true;
            }
            if !meta.locations.contains(&src) {
                meta.locations.push(src);
                meta.locations.sort();
            }
        }
        if changed {
            self.persist(s, o);
        }
        if cloned || self.tick.is_some() {
            self.next_grant(s, o);
        }
    }

    /// Over TCP: chunks with fewer replicas than they should have are copied (§4.3), one
    /// at a time per chunk, from an up-to-date replica to the chunkserver holding fewest.
    fn tick<D: ChunkData>(&self, s: &mut MasterState, o: &mut Out<GfsActor<D>>) {
        if let Some(tick) = self.tick {
            o.set_timer(GfsTimer::Tick, tick..tick);
        }
        if s.recovering {
            return;
        }
        let mut freed = false;
        let handles: Vec<Handle> = s.chunks.keys().copied().collect();
        for handle in handles {
            let meta = &s.chunks[&handle];
            if let Some((c, ticks)) = meta.cloning {
                // A copy gets a few ticks; then another chunkserver tries.
                let meta = s.chunks.get_mut(&handle).expect("the chunk");
                if ticks >= 3 {
                    meta.cloning = None;
                    freed = true;
                } else {
                    meta.cloning = Some((c, ticks + 1));
                }
                continue;
            }
            let busy = meta.lease.is_some()
                || meta.revoking
                || s.granting.as_ref().is_some_and(|g| g.handle == handle);
            if busy || meta.locations.is_empty() || meta.locations.len() >= self.replication {
                continue;
            }
            let from = meta.locations[0];
            let (version, locations) = (meta.version, meta.locations.clone());
            let target = self
                .place_new(s)
                .into_iter()
                .chain(
                    self.chunkservers
                        .iter()
                        .copied()
                        .filter(|c| !s.down.contains(c)),
                )
                .find(|c| !locations.contains(c));
            let Some(to) = target else {
                continue;
            };
            s.chunks.get_mut(&handle).expect("the chunk").cloning = Some((to, 0));
            o.send(
                to,
                GfsMsg::Replicate {
                    handle,
                    version,
                    from,
                    len: 0,
                },
            );
        }
        if freed {
            self.next_grant(s, o);
        }
    }

    /// Forgets a removed file. Its chunks are collected lazily (§4.4): the chunkservers that
    /// report them are told to delete them.
    fn drop_file<D: ChunkData>(s: &mut MasterState, file: FileId, o: &mut Out<GfsActor<D>>) {
        for h in s.files.remove(&file).unwrap_or_default() {
            s.chunks.remove(&h);
        }
        let (gone, kept): (Vec<_>, Vec<_>) = s.parked.drain(..).partition(|(_, f, _)| *f == file);
        s.parked = kept;
        for (client, _, _) in gone {
            o.send(client, GfsMsg::NoSuchFile { file });
        }
    }

    /// A namespace operation (§4.1).
    fn namespace<D: ChunkData>(
        &self,
        s: &mut MasterState,
        op: NsOp,
        o: &mut Out<GfsActor<D>>,
    ) -> GfsRet {
        let failed = |why: String| GfsRet::Failed { why };
        match op {
            NsOp::Create(path) => {
                if s.names.contains_key(&path) {
                    return failed(format!("{path} exists"));
                }
                let file = s.next_file;
                s.next_file += 1;
                s.names.insert(path, file);
                s.files.insert(file, Vec::new());
                self.persist(s, o);
                GfsRet::Created { file }
            }
            NsOp::Open(path) => {
                let Some(file) = s.names.get(&path).copied() else {
                    return failed(format!("no such file: {path}"));
                };
                let chunks = s.files[&file]
                    .iter()
                    .map(|h| {
                        let m = &s.chunks[h];
                        ChunkInfo {
                            handle: *h,
                            version: m.version,
                            locations: m.locations.clone(),
                        }
                    })
                    .collect();
                GfsRet::Chunks { file, chunks }
            }
            NsOp::Remove(path) => {
                let Some(file) = s.names.remove(&path) else {
                    return failed(format!("no such file: {path}"));
                };
                Self::drop_file(s, file, o);
                self.persist(s, o);
                GfsRet::Removed
            }
            NsOp::Rename(from, to) => {
                let Some(file) = s.names.remove(&from) else {
                    return failed(format!("no such file: {from}"));
                };
                if let Some(old) = s.names.insert(to, file) {
                    Self::drop_file(s, old, o);
                }
                self.persist(s, o);
                GfsRet::Removed
            }
            NsOp::List(prefix) => GfsRet::Listing {
                files: s
                    .names
                    .range(prefix.clone()..)
                    .take_while(|(p, _)| p.starts_with(&prefix))
                    .map(|(p, f)| (p.clone(), s.files[f].len() as u32))
                    .collect(),
            },
        }
    }

    fn on_msg<D: ChunkData>(
        &self,
        s: &mut MasterState,
        src: Id,
        msg: GfsMsg,
        o: &mut Out<GfsActor<D>>,
    ) {
        match msg {
            GfsMsg::FindLease {
                file,
                chunk,
                refused,
            } => self.find_lease(s, src, (file, chunk), refused, o),
            GfsMsg::VersionOk { handle, version } => {
                let Some(g) = s.granting.as_mut() else {
                    return;
                };
                if g.handle != handle || g.version != version || !g.waiting.contains(&src) {
                    return;
                }
                g.waiting.retain(|r| *r != src);
                g.acked.push(src);
                g.acked.sort();
                if g.waiting.is_empty() {
                    self.choose_primary(s, o);
                }
            }
            GfsMsg::GrantOk { handle } => {
                let ours = s
                    .granting
                    .as_ref()
                    .is_some_and(|g| g.primary == Some(src) && g.handle == handle);
                if ours {
                    self.granted(s, o);
                }
            }
            GfsMsg::Report { chunks } => self.report(s, src, chunks, o),
            GfsMsg::Revoked { handle, version } => {
                let Some(meta) = s.chunks.get_mut(&handle) else {
                    return;
                };
                if meta.revoking && meta.version == version && meta.lease == Some(src) {
                    meta.revoking = false;
                    meta.lease = None;
                    o.cancel_timer(GfsTimer::LeaseRunOut(handle));
                    self.next_grant(s, o);
                }
            }
            GfsMsg::Namespace { seq, op } => {
                let ret = self.namespace(s, op, o);
                o.send(src, GfsMsg::NamespaceReply { seq, ret });
            }
            _ => {}
        }
    }

    fn on_timeout<D: ChunkData>(
        &self,
        s: &mut MasterState,
        timer: &GfsTimer,
        o: &mut Out<GfsActor<D>>,
    ) {
        match timer {
            GfsTimer::LeaseRunOut(handle) => {
                let Some(meta) = s.chunks.get_mut(handle) else {
                    return;
                };
                meta.lease = None;
                meta.revoking = false;
                self.next_grant(s, o);
            }
            GfsTimer::Silent(cs) => self.silent(s, *cs, o),
            GfsTimer::GrantTimeout => match s.granting.as_ref().and_then(|g| g.primary) {
                None => self.choose_primary(s, o),
                // The chosen primary did not confirm: it may hold the lease or not. The master
                // cannot tell, so it waits for the lease to run out before the next round.
                Some(primary) => {
                    let g = s.granting.take().expect("a round is under way");
                    if let Some(meta) = s.chunks.get_mut(&g.handle) {
                        meta.lease = Some(primary);
                        meta.last_primary = Some(primary);
                        o.set_timer(GfsTimer::LeaseRunOut(meta.handle), self.lease..self.lease);
                    }
                }
            },
            GfsTimer::Tick => self.tick(s, o),
            GfsTimer::Recovered => {
                s.recovering = false;
                self.answer_parked(s, None, o);
                self.next_grant(s, o);
            }
            _ => {}
        }
    }
}

impl ChunkMeta {
    fn new(handle: Handle, version: Version, locations: Vec<Id>) -> Self {
        ChunkMeta {
            handle,
            version,
            epoch: 0,
            locations,
            lease: None,
            last_primary: None,
            revoking: false,
            granted: 0,
            cloning: None,
        }
    }
}

/// A chunkserver's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkserverCfg<D: ChunkData = Slots> {
    pub master: Id,
    /// Chunk size in slots (64 MB of bytes over TCP, §2.5).
    pub chunk_size: u64,
    /// Lease length by the primary's clock.
    pub lease: Duration,
    /// How long a primary waits for its secondaries.
    pub mutate_timeout: Duration,
    /// How often it reports to the master (§2.6.2); `None`: only when it restarts (the model).
    pub heartbeat: Option<Duration>,
    pub bug: Option<GfsBug>,
    pub data: PhantomData<fn() -> D>,
}

/// An append the primary has ordered and waits for the secondaries to apply.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pending {
    pub client: Id,
    pub handle: Handle,
    pub rec: RecId,
    pub offset: Offset,
    pub waiting: Vec<Id>,
}

/// A lease held: the chunk's secondaries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    pub version: Version,
    pub secondaries: Vec<Id>,
}

/// A chunkserver's state: its replicas (on disk), and its leases and pending appends (in
/// memory, lost in a crash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ChunkserverState<D: ChunkData = Slots> {
    pub replicas: BTreeMap<Handle, Replica<D>>,
    pub leases: BTreeMap<Handle, Lease>,
    pub pending: Vec<Pending>,
}

impl<D: ChunkData> ChunkserverState<D> {
    /// Its chunks and their versions, as it reports them.
    pub fn report(&self) -> Vec<(Handle, Version)> {
        self.replicas.iter().map(|(h, r)| (*h, r.version)).collect()
    }
}

impl<D: ChunkData> ChunkserverCfg<D> {
    fn start(&self, storage: &Option<GfsDisk<D>>, o: &mut Out<GfsActor<D>>) -> ChunkserverState<D> {
        if let Some(beat) = self.heartbeat {
            o.set_timer(GfsTimer::HeartBeat, beat..beat);
        }
        match storage {
            // Restarted: report the chunks on disk and their versions (§4.5).
            Some(GfsDisk::Chunkserver(replicas)) => {
                let s = ChunkserverState {
                    replicas: (**replicas).clone(),
                    ..ChunkserverState::default()
                };
                o.send(self.master, GfsMsg::Report { chunks: s.report() });
                s
            }
            // A new chunkserver: its (empty) disk, so that a restart finds one and reports.
            _ => {
                o.save(GfsDisk::Chunkserver(Disk::default()));
                ChunkserverState::default()
            }
        }
    }

    fn save(s: &ChunkserverState<D>, o: &mut Out<GfsActor<D>>) {
        o.save(GfsDisk::Chunkserver(Arc::new(s.replicas.clone())));
    }

    /// The primary's side of record append (§3.3).
    fn record_append(
        &self,
        s: &mut ChunkserverState<D>,
        client: Id,
        (handle, rec, len): (Handle, RecId, u64),
        o: &mut Out<GfsActor<D>>,
    ) {
        let (Some(lease), Some(replica)) = (s.leases.get(&handle), s.replicas.get_mut(&handle))
        else {
            o.send(client, GfsMsg::NotPrimary { handle, rec });
            return;
        };
        let used = replica.data.used();
        let (offset, write) = match place(used, len, self.chunk_size) {
            Placement::At(offset) => (offset, Write::Record { rec, len }),
            Placement::Pad { from, len: fit } if self.bug == Some(GfsBug::NoPadding) => {
                if fit == 0 {
                    // Exactly full: nothing to split.
                    o.send(client, GfsMsg::RetryNextChunk { handle, rec });
                    return;
                }
                // The part that fits here; the rest would go to the next chunk.
                (from, Write::Record { rec, len: fit })
            }
            Placement::Pad { from, len } => {
                let write = Write::Pad { len };
                if len > 0 {
                    replica.data.write(from, write);
                    let lease = lease.clone();
                    Self::save(s, o);
                    for r in &lease.secondaries {
                        o.send(
                            *r,
                            GfsMsg::Mutate {
                                handle,
                                version: lease.version,
                                offset: from,
                                write,
                            },
                        );
                    }
                }
                o.send(client, GfsMsg::RetryNextChunk { handle, rec });
                return;
            }
        };
        replica.data.write(offset, write);
        let lease = lease.clone();
        Self::save(s, o);
        for r in &lease.secondaries {
            o.send(
                *r,
                GfsMsg::Mutate {
                    handle,
                    version: lease.version,
                    offset,
                    write,
                },
            );
        }
        if lease.secondaries.is_empty() {
            o.send(
                client,
                GfsMsg::AppendOk {
                    handle,
                    rec,
                    offset,
                },
            );
        } else {
            s.pending.push(Pending {
                client,
                handle,
                rec,
                offset,
                waiting: lease.secondaries.clone(),
            });
            o.set_timer(
                GfsTimer::MutateTimeout(handle, offset),
                self.mutate_timeout..self.mutate_timeout,
            );
        }
    }

    /// A secondary's answer to a pending append.
    fn answered(
        &self,
        s: &mut ChunkserverState<D>,
        src: Id,
        (handle, offset): (Handle, Offset),
        ok: bool,
        o: &mut Out<GfsActor<D>>,
    ) {
        let Some(i) = s
            .pending
            .iter()
            .position(|p| p.handle == handle && p.offset == offset && p.waiting.contains(&src))
        else {
            return;
        };
        if ok || self.bug == Some(GfsBug::AckOnPartial) {
            s.pending[i].waiting.retain(|r| *r != src);
            if s.pending[i].waiting.is_empty() {
                let p = s.pending.remove(i);
                o.cancel_timer(GfsTimer::MutateTimeout(handle, offset));
                o.send(
                    p.client,
                    GfsMsg::AppendOk {
                        handle,
                        rec: p.rec,
                        offset,
                    },
                );
            }
        } else {
            let p = s.pending.remove(i);
            o.cancel_timer(GfsTimer::MutateTimeout(handle, offset));
            o.send(p.client, GfsMsg::AppendFailed { handle, rec: p.rec });
        }
    }

    fn on_msg(&self, s: &mut ChunkserverState<D>, src: Id, msg: GfsMsg, o: &mut Out<GfsActor<D>>) {
        match msg {
            GfsMsg::NewVersion {
                handle,
                version,
                epoch,
            } => {
                let replica = s.replicas.entry(handle).or_default();
                if version >= replica.version {
                    replica.version = version;
                    replica.epoch = replica.epoch.max(epoch);
                    Self::save(s, o);
                    o.send(src, GfsMsg::VersionOk { handle, version });
                }
            }
            GfsMsg::Grant {
                handle,
                version,
                secondaries,
            } if s
                .replicas
                .get(&handle)
                .is_some_and(|r| r.version == version) =>
            {
                s.leases.insert(
                    handle,
                    Lease {
                        version,
                        secondaries,
                    },
                );
                o.set_timer(GfsTimer::LeaseEnd(handle), self.lease..self.lease);
                o.send(src, GfsMsg::GrantOk { handle });
            }
            GfsMsg::RecordAppend { handle, rec, len } => {
                self.record_append(s, src, (handle, rec, len), o)
            }
            GfsMsg::Revoke { handle, version } => {
                if s.leases.get(&handle).is_some_and(|l| l.version == version) {
                    s.leases.remove(&handle);
                    o.cancel_timer(GfsTimer::LeaseEnd(handle));
                }
                o.send(src, GfsMsg::Revoked { handle, version });
            }
            GfsMsg::Mutate {
                handle,
                version,
                offset,
                write,
            } => {
                let pad = matches!(write, Write::Pad { .. });
                match s.replicas.get_mut(&handle) {
                    Some(r) if r.version == version => {
                        r.data.write(offset, write);
                        Self::save(s, o);
                        if !pad {
                            o.send(src, GfsMsg::MutateOk { handle, offset });
                        }
                    }
                    _ if !pad => o.send(src, GfsMsg::MutateFailed { handle, offset }),
                    _ => {}
                }
            }
            GfsMsg::MutateOk { handle, offset } => self.answered(s, src, (handle, offset), true, o),
            GfsMsg::MutateFailed { handle, offset } => {
                self.answered(s, src, (handle, offset), false, o)
            }
            GfsMsg::Delete { handle, version } => {
                let stale = s
                    .replicas
                    .get(&handle)
                    .is_some_and(|r| r.version <= version);
                if stale {
                    s.replicas.remove(&handle);
                    s.leases.remove(&handle);
                    Self::save(s, o);
                }
            }
            GfsMsg::Replicate {
                handle,
                version,
                len,
                ..
            } => {
                // The runtime has copied the chunk's data (§4.3); record it, and tell the
                // master.
                if s.replicas.get(&handle).is_none_or(|r| r.version < version) {
                    s.replicas.insert(
                        handle,
                        Replica {
                            version,
                            epoch: 0,
                            data: D::copied(len),
                        },
                    );
                    s.leases.remove(&handle);
                    Self::save(s, o);
                }
                o.send(src, GfsMsg::Report { chunks: s.report() });
            }
            _ => {}
        }
    }

    fn on_timeout(&self, s: &mut ChunkserverState<D>, timer: &GfsTimer, o: &mut Out<GfsActor<D>>) {
        match timer {
            GfsTimer::LeaseEnd(handle) => {
                s.leases.remove(handle);
            }
            GfsTimer::MutateTimeout(handle, offset) => {
                let Some(i) = s
                    .pending
                    .iter()
                    .position(|p| (p.handle, p.offset) == (*handle, *offset))
                else {
                    return;
                };
                let p = s.pending.remove(i);
                let (handle, rec, offset) = (p.handle, p.rec, p.offset);
                let msg = if self.bug == Some(GfsBug::AckOnPartial) {
                    GfsMsg::AppendOk {
                        handle,
                        rec,
                        offset,
                    }
                } else {
                    GfsMsg::AppendFailed { handle, rec }
                };
                o.send(p.client, msg);
            }
            GfsTimer::HeartBeat => {
                if let Some(beat) = self.heartbeat {
                    o.set_timer(GfsTimer::HeartBeat, beat..beat);
                }
                o.send(self.master, GfsMsg::Report { chunks: s.report() });
            }
            _ => {}
        }
    }
}

/// A client's configuration. In the model it appends one record, `rec`, `len` slots long, to
/// file 0; over TCP it is driven: it runs the operations its driver invokes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    pub master: Id,
    /// The model's record (`A` is 0) and its length in slots; `None` for a driven client.
    pub append: Option<(RecId, u64)>,
    /// Retries after a failed attempt (§3.3: "the client retries the operation").
    pub retries: u8,
    pub timeout: Duration,
}

/// Where a client is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// A driven client with nothing to do.
    Idle,
    /// Waiting for the master's answer to a namespace operation (opening the file before an
    /// append is one).
    Asking(NsOp),
    /// Asking the master for the lease on the chunk.
    Lookup,
    /// Waiting for the primary.
    Appending { handle: Handle, primary: Id },
    /// Waiting to retry after a failed attempt; `refused`: the primary that did not answer.
    Backoff { refused: Option<Id> },
    /// Appended.
    Done,
    /// Out of retries, or out of chunks.
    Failed,
}

/// The operation a driven client runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Request {
    pub seq: RequestId,
    pub driver: Id,
    /// For an append: the record and its length.
    pub append: Option<(RecId, u64)>,
}

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientState {
    pub phase: Phase,
    /// The file it appends to, and the chunk: the file's last, as far as it knows.
    pub file: FileId,
    pub chunk: u32,
    /// Failed attempts so far.
    pub failures: u8,
    /// Where its record was appended: `(chunk, offset)`.
    pub appended: Option<(u32, Offset)>,
    /// A driven client's operation.
    pub request: Option<Request>,
    /// A driven client's cache (§2.4: "The client caches this information"): the file it
    /// last appended to, its last chunk, and that chunk's primary while it holds.
    pub cache: Option<Cached>,
}

/// What a driven client caches of a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cached {
    pub path: String,
    pub file: FileId,
    pub chunk: u32,
    pub lease: Option<(Handle, Id)>,
}

impl ClientCfg {
    fn start<D: ChunkData>(&self, o: &mut Out<GfsActor<D>>) -> ClientState {
        let mut s = ClientState {
            phase: Phase::Idle,
            file: 0,
            chunk: 0,
            failures: 0,
            appended: None,
            request: None,
            cache: None,
        };
        if self.append.is_some() {
            self.lookup(&mut s, None, o);
        }
        s
    }

    /// The record being appended and its length.
    fn record(&self, s: &ClientState) -> Option<(RecId, u64)> {
        match &s.request {
            Some(r) => r.append,
            None => self.append,
        }
    }

    fn lookup<D: ChunkData>(
        &self,
        s: &mut ClientState,
        refused: Option<Id>,
        o: &mut Out<GfsActor<D>>,
    ) {
        s.phase = Phase::Lookup;
        o.send(
            self.master,
            GfsMsg::FindLease {
                file: s.file,
                chunk: s.chunk,
                refused,
            },
        );
        if s.request.is_some() {
            o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
        }
    }

    /// The operation has ended: a driven client tells its driver.
    fn finish<D: ChunkData>(&self, s: &mut ClientState, ret: GfsRet, o: &mut Out<GfsActor<D>>) {
        s.phase = match ret {
            GfsRet::Appended { .. } => Phase::Done,
            GfsRet::Failed { .. } if self.append.is_some() => Phase::Failed,
            _ => Phase::Idle,
        };
        o.cancel_timer(GfsTimer::NoAnswer);
        if let Some(r) = s.request.take() {
            o.send(r.driver, GfsMsg::Return { seq: r.seq, ret });
            s.phase = Phase::Idle;
        }
    }

    /// A failed attempt: retry, telling the master which primary failed, or give up.
    fn failed<D: ChunkData>(
        &self,
        s: &mut ClientState,
        refused: Option<Id>,
        o: &mut Out<GfsActor<D>>,
    ) {
        o.cancel_timer(GfsTimer::NoAnswer);
        s.failures += 1;
        if s.failures > self.retries {
            let why = format!("append failed {} times", s.failures);
            self.finish(s, GfsRet::Failed { why }, o);
            return;
        }
        s.phase = Phase::Backoff { refused };
        o.set_timer(GfsTimer::Backoff, self.timeout..self.timeout);
    }

    fn invoke<D: ChunkData>(
        &self,
        s: &mut ClientState,
        driver: Id,
        seq: RequestId,
        op: GfsOp,
        o: &mut Out<GfsActor<D>>,
    ) {
        // A new operation abandons the old one (`models::client`).
        o.cancel_timer(GfsTimer::Backoff);
        s.failures = 0;
        s.appended = None;
        let (ns, append) = match op {
            GfsOp::Append { path, rec, data } => {
                (NsOp::Open(path), Some((rec, data.0.len() as u64)))
            }
            GfsOp::Master(op) => (op, None),
        };
        s.request = Some(Request {
            seq,
            driver,
            append,
        });
        if let (NsOp::Open(path), Some((rec, len)), Some(c)) = (&ns, append, &s.cache) {
            if c.path == *path {
                // A cached file: straight to its last chunk, and to its primary if known.
                s.file = c.file;
                s.chunk = c.chunk;
                match c.lease {
                    Some((handle, primary)) => {
                        s.phase = Phase::Appending { handle, primary };
                        o.send(primary, GfsMsg::RecordAppend { handle, rec, len });
                        o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
                    }
                    None => self.lookup(s, None, o),
                }
                return;
            }
        }
        s.phase = Phase::Asking(ns.clone());
        o.send(self.master, GfsMsg::Namespace { seq, op: ns });
        o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
    }

    /// Forgets the cached primary (it failed, or the lease is gone).
    fn forget_lease(s: &mut ClientState) {
        if let Some(c) = &mut s.cache {
            c.lease = None;
        }
    }

    fn on_msg<D: ChunkData>(
        &self,
        s: &mut ClientState,
        src: Id,
        msg: GfsMsg,
        o: &mut Out<GfsActor<D>>,
    ) {
        let current = match s.phase {
            Phase::Appending { handle, primary } => Some((handle, primary)),
            _ => None,
        };
        let rec = self.record(s).map(|(r, _)| r);
        let from_primary = |h: Handle, r: RecId| current == Some((h, src)) && rec == Some(r);
        match msg {
            GfsMsg::Invoke { seq, op } => self.invoke(s, src, seq, op, o),
            GfsMsg::NamespaceReply { seq, ret }
                if s.request.as_ref().is_some_and(|r| r.seq == seq)
                    && matches!(s.phase, Phase::Asking(_)) =>
            {
                match (ret, self.record(s)) {
                    // Opened for an append: to the file's last chunk.
                    (GfsRet::Chunks { file, chunks }, Some(_)) => {
                        o.cancel_timer(GfsTimer::NoAnswer);
                        s.file = file;
                        s.chunk = chunks.len().saturating_sub(1) as u32;
                        if let Phase::Asking(NsOp::Open(path)) = &s.phase {
                            s.cache = Some(Cached {
                                path: path.clone(),
                                file,
                                chunk: s.chunk,
                                lease: None,
                            });
                        }
                        self.lookup(s, None, o);
                    }
                    (ret, _) => self.finish(s, ret, o),
                }
            }
            GfsMsg::LeaseIs {
                file,
                chunk,
                handle,
                primary,
                ..
            } if s.phase == Phase::Lookup && (file, chunk) == (s.file, s.chunk) => {
                let Some((rec, len)) = self.record(s) else {
                    return;
                };
                s.phase = Phase::Appending { handle, primary };
                if let Some(c) = s
                    .cache
                    .as_mut()
                    .filter(|c| (c.file, c.chunk) == (file, chunk))
                {
                    c.lease = Some((handle, primary));
                }
                o.send(primary, GfsMsg::RecordAppend { handle, rec, len });
                o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
            }
            GfsMsg::FileFull { file, chunk }
                if s.phase == Phase::Lookup && (file, chunk) == (s.file, s.chunk) =>
            {
                self.finish(
                    s,
                    GfsRet::Failed {
                        why: format!("the file may not grow to chunk {chunk}"),
                    },
                    o,
                );
            }
            GfsMsg::NoSuchFile { file }
                if s.file == file
                    && matches!(
                        s.phase,
                        Phase::Lookup | Phase::Appending { .. } | Phase::Backoff { .. }
                    ) =>
            {
                if let (Some(c), Some(r)) = (s.cache.take(), &s.request) {
                    // The cached file was removed: the path may name a new one.
                    let op = NsOp::Open(c.path);
                    o.send(
                        self.master,
                        GfsMsg::Namespace {
                            seq: r.seq,
                            op: op.clone(),
                        },
                    );
                    s.phase = Phase::Asking(op);
                    o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
                    return;
                }
                self.finish(
                    s,
                    GfsRet::Failed {
                        why: "the file was removed".into(),
                    },
                    o,
                );
            }
            GfsMsg::AppendOk {
                handle,
                rec,
                offset,
            } if from_primary(handle, rec) => {
                s.appended = Some((s.chunk, offset));
                let chunk = s.chunk;
                self.finish(s, GfsRet::Appended { chunk, offset }, o);
            }
            GfsMsg::RetryNextChunk { handle, rec } if from_primary(handle, rec) => {
                o.cancel_timer(GfsTimer::NoAnswer);
                s.chunk += 1;
                if let Some(c) = s.cache.as_mut().filter(|c| c.file == s.file) {
                    c.chunk = c.chunk.max(s.chunk);
                    c.lease = None;
                }
                self.lookup(s, None, o);
            }
            GfsMsg::AppendFailed { handle, rec } if from_primary(handle, rec) => {
                Self::forget_lease(s);
                self.failed(s, None, o)
            }
            // A lease the client was told of has gone: not a failed append (nothing was
            // written), so ask again, telling the master whose lease it found gone.
            GfsMsg::NotPrimary { handle, rec } if from_primary(handle, rec) => {
                o.cancel_timer(GfsTimer::NoAnswer);
                Self::forget_lease(s);
                self.lookup(s, Some(src), o);
            }
            _ => {}
        }
    }

    fn on_timeout<D: ChunkData>(
        &self,
        s: &mut ClientState,
        timer: &GfsTimer,
        o: &mut Out<GfsActor<D>>,
    ) {
        match (timer, &s.phase) {
            (GfsTimer::NoAnswer, Phase::Appending { primary, .. }) => {
                let primary = *primary;
                Self::forget_lease(s);
                self.failed(s, Some(primary), o);
            }
            // Over TCP: the master did not answer; ask again.
            (GfsTimer::NoAnswer, Phase::Asking(op)) => {
                if let Some(r) = &s.request {
                    o.send(
                        self.master,
                        GfsMsg::Namespace {
                            seq: r.seq,
                            op: op.clone(),
                        },
                    );
                    o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
                }
            }
            (GfsTimer::NoAnswer, Phase::Lookup) => self.lookup(s, None, o),
            (GfsTimer::Backoff, Phase::Backoff { refused }) => {
                let refused = *refused;
                self.lookup(s, refused, o);
            }
            _ => {}
        }
    }
}

/// An actor of the model: the master, a chunkserver or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GfsActor<D: ChunkData = Slots> {
    Master(MasterCfg),
    Chunkserver(ChunkserverCfg<D>),
    Client(ClientCfg),
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum GfsState<D: ChunkData = Slots> {
    Master(MasterState),
    Chunkserver(ChunkserverState<D>),
    Client(ClientState),
}

impl<D: ChunkData> Actor for GfsActor<D> {
    type Msg = GfsMsg;
    type Timer = GfsTimer;
    type State = GfsState<D>;
    /// A chunkserver's replicas, or (over TCP) the master's metadata; in the model the master
    /// does not crash and saves nothing.
    type Storage = GfsDisk<D>;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<Self::Storage>, o: &mut Out<Self>) -> GfsState<D> {
        match self {
            GfsActor::Master(cfg) => GfsState::Master(cfg.start(storage, o)),
            GfsActor::Chunkserver(cfg) => GfsState::Chunkserver(cfg.start(storage, o)),
            GfsActor::Client(cfg) => GfsState::Client(cfg.start(o)),
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut Cow<GfsState<D>>,
        src: Id,
        msg: GfsMsg,
        o: &mut Out<Self>,
    ) {
        let mut next = (**state).clone();
        match (self, &mut next) {
            (GfsActor::Master(cfg), GfsState::Master(s)) => cfg.on_msg(s, src, msg, o),
            (GfsActor::Chunkserver(cfg), GfsState::Chunkserver(s)) => cfg.on_msg(s, src, msg, o),
            (GfsActor::Client(cfg), GfsState::Client(s)) => cfg.on_msg(s, src, msg, o),
            _ => return,
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<GfsState<D>>,
        timer: &GfsTimer,
        o: &mut Out<Self>,
    ) {
        let mut next = (**state).clone();
        match (self, &mut next) {
            (GfsActor::Master(cfg), GfsState::Master(s)) => cfg.on_timeout(s, timer, o),
            (GfsActor::Chunkserver(cfg), GfsState::Chunkserver(s)) => cfg.on_timeout(s, timer, o),
            (GfsActor::Client(cfg), GfsState::Client(s)) => cfg.on_timeout(s, timer, o),
            _ => return,
        }
        if next != **state {
            *state.to_mut() = next;
        }
    }
}
