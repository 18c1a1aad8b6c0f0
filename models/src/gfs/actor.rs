//! GFS's messages and actors: the master (§2.6, §3.1, §4.5), a chunkserver (§3.1, §3.3) and a
//! client doing one record append (§3.3). The master's decisions here are the ones the real
//! `gfs master` makes; the chunkserver's placement rule ([`place`]) and mutation rule
//! ([`apply`]) are the ones the real chunkserver applies to its chunk files.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};

/// A chunk handle: globally unique, chosen by the master when it creates the chunk (§2.6).
pub type Handle = u64;
/// A chunk version number (§4.5).
pub type Version = u64;
/// A byte offset in a chunk (in the model, a slot: a record is a few slots long).
pub type Offset = u64;

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
    /// Parts `0..parts` of record `rec` (all of it, unless a seeded bug truncates it).
    Record { rec: u8, parts: u8 },
    /// `len` slots of padding.
    Pad { len: u8 },
}

impl Write {
    fn slots(self) -> Vec<Slot> {
        match self {
            Write::Record { rec, parts } => {
                (0..parts).map(|part| Slot::Data { rec, part }).collect()
            }
            Write::Pad { len } => vec![Slot::Pad; len as usize],
        }
    }
}

/// A replica of a chunk on a chunkserver's disk: its version number and its contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Replica {
    pub version: Version,
    /// Which lease round this replica last took part in: a ghost the properties read (a
    /// replica that missed a round is stale, §4.5, whatever its version says).
    pub epoch: u32,
    pub data: Vec<Slot>,
}

/// A chunkserver's disk: its replicas. Shared, so that the checker's copies of a state share
/// it until the chunkserver writes.
pub type Disk = Arc<BTreeMap<Handle, Replica>>;

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
    /// Client to master (§3.1 step 1): which chunkserver holds the lease on chunk `chunk` of the
    /// file, creating the chunk if it is the next one. `refused`: the primary that did not
    /// answer or said it was not primary (the client suspects its lease is gone).
    FindLease {
        chunk: u32,
        refused: Option<Id>,
    },
    /// Master to client (§3.1 step 2): the primary and the secondaries. `epoch` is a ghost:
    /// the lease round the master answers in (see [`Replica::epoch`]).
    LeaseIs {
        chunk: u32,
        handle: Handle,
        version: Version,
        epoch: u32,
        primary: Id,
        secondaries: Vec<Id>,
    },
    /// Master to client: the file may not grow to chunk `chunk` (the model's bound).
    FileFull {
        chunk: u32,
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
    /// Client to primary (§3.3): append record `rec`, `len` slots long.
    RecordAppend {
        handle: Handle,
        rec: u8,
        len: u8,
    },
    /// Primary to client: appended at `offset` on every replica.
    AppendOk {
        handle: Handle,
        offset: Offset,
    },
    /// Primary to client: the chunk is padded; retry on the next chunk (§3.3).
    RetryNextChunk {
        handle: Handle,
    },
    /// Primary to client: a secondary failed; the region is inconsistent, retry (§3.3).
    AppendFailed {
        handle: Handle,
    },
    /// A chunkserver without the lease to a client.
    NotPrimary {
        handle: Handle,
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
    /// The secondary has no replica at `version` (a stale primary, or a deleted replica).
    MutateFailed {
        handle: Handle,
        offset: Offset,
    },
    /// A restarted chunkserver to the master (§4.5): its chunks and their versions.
    Report {
        chunks: Vec<(Handle, Version)>,
    },
    /// Master to chunkserver: the replica at `version` or older is stale; delete it (garbage
    /// collection, §4.4). A replica that has recorded a newer version since keeps it.
    Delete {
        handle: Handle,
        version: Version,
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
    /// Chunkserver: its lease on this chunk ends (the primary did not extend it, §3.1).
    LeaseEnd(Handle),
    /// Chunkserver (primary): stop waiting for the secondaries of the append at this offset.
    MutateTimeout(Handle, Offset),
    /// Client: the primary did not answer.
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
    /// How many chunks the file may have (the model's bound; unbounded over TCP).
    pub max_chunks: u32,
    /// Lease length by the master's clock; the primary's is shorter (§3.1). Only timers use it.
    pub lease: Duration,
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
}

/// A lease being granted (§4.5): the new version is being recorded by the replicas.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Granting {
    pub chunk: u32,
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
    /// The file's chunks, in order (one file: the namespace of the model).
    pub chunks: Vec<ChunkMeta>,
    pub granting: Option<Granting>,
    /// Clients waiting for a lease on a chunk: `(client, chunk)`.
    pub parked: Vec<(Id, u32)>,
    /// The chunkservers it has stopped hearing from, until they report again.
    pub down: Vec<Id>,
}

impl MasterCfg {
    fn start(&self, o: &mut Out<GfsActor>) -> MasterState {
        for cs in &self.chunkservers {
            o.set_timer(GfsTimer::Silent(*cs), self.lease..self.lease);
        }
        MasterState::default()
    }

    /// Answers `client` about `chunk` if the chunk has a lease; otherwise parks it and starts
    /// a lease round if none is under way.
    fn find_lease(
        &self,
        s: &mut MasterState,
        client: Id,
        chunk: u32,
        refused: Option<Id>,
        o: &mut Out<GfsActor>,
    ) {
        if chunk >= self.max_chunks {
            o.send(client, GfsMsg::FileFull { chunk });
            return;
        }
        if chunk as usize == s.chunks.len() {
            // A new chunk, on every chunkserver that is up (§4.2 placement is not modelled).
            let handle = s.chunks.len() as Handle + 1;
            let locations = self
                .chunkservers
                .iter()
                .copied()
                .filter(|c| !s.down.contains(c))
                .collect();
            s.chunks.push(ChunkMeta {
                handle,
                version: 0,
                epoch: 0,
                locations,
                lease: None,
                last_primary: None,
                revoking: false,
                granted: 0,
            });
        }
        let Some(meta) = s.chunks.get(chunk as usize) else {
            // A chunk beyond the next one: the client skipped ahead; it waits (never happens
            // with this client, which moves one chunk at a time).
            return;
        };
        if meta.revoking {
            // Its next lease is on the way.
            if !s.parked.contains(&(client, chunk)) {
                s.parked.push((client, chunk));
                s.parked.sort();
            }
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
                        chunk,
                        handle: meta.handle,
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
        if !s.parked.contains(&(client, chunk)) {
            s.parked.push((client, chunk));
            s.parked.sort();
        }
        if s.granting.is_none() && s.chunks[chunk as usize].lease.is_none() {
            self.start_grant(s, chunk, o);
        }
    }

    /// §4.5: "Whenever the master grants a new lease on a chunk, it increases the chunk version
    /// number and informs the up-to-date replicas."
    fn start_grant(&self, s: &mut MasterState, chunk: u32, o: &mut Out<GfsActor>) {
        let meta = &mut s.chunks[chunk as usize];
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
                    handle: meta.handle,
                    version,
                    epoch,
                },
            );
        }
        s.granting = Some(Granting {
            chunk,
            version,
            epoch,
            acked: Vec::new(),
            waiting: meta.locations.clone(),
            primary: None,
        });
        o.set_timer(GfsTimer::GrantTimeout, self.lease / 4..self.lease / 2);
    }

    /// The replicas that recorded the version are the up-to-date ones; one becomes primary.
    fn choose_primary(&self, s: &mut MasterState, o: &mut Out<GfsActor>) {
        let Some(g) = s.granting.as_mut() else {
            return;
        };
        if g.acked.is_empty() || g.primary.is_some() {
            return;
        }
        if g.acked.iter().any(|r| s.down.contains(r)) {
            // A replica that recorded the version went down: the version must be held by
            // exactly the lease's replicas, or it comes back looking up to date without the
            // lease's mutations. The round starts over at a newer version without it.
            let (chunk, version, epoch) = (g.chunk, g.version, g.epoch);
            s.granting = None;
            let meta = &mut s.chunks[chunk as usize];
            meta.version = version;
            meta.epoch = epoch;
            self.start_grant(s, chunk, o);
            return;
        }
        let meta = &mut s.chunks[g.chunk as usize];
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
        // Now the timer waits for the primary's answer.
        o.set_timer(GfsTimer::GrantTimeout, self.lease / 4..self.lease / 2);
        o.send(
            primary,
            GfsMsg::Grant {
                handle: meta.handle,
                version: meta.version,
                secondaries: acked.into_iter().filter(|r| *r != primary).collect(),
            },
        );
    }

    /// The primary holds the lease: answer the parked clients.
    fn granted(&self, s: &mut MasterState, o: &mut Out<GfsActor>) {
        let Some(g) = s.granting.take() else {
            return;
        };
        let Some(primary) = g.primary else {
            return;
        };
        o.cancel_timer(GfsTimer::GrantTimeout);
        let meta = &mut s.chunks[g.chunk as usize];
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
        let parked = std::mem::take(&mut s.parked);
        for (client, chunk) in parked {
            if chunk == g.chunk {
                self.find_lease(s, client, chunk, None, o);
            } else {
                s.parked.push((client, chunk));
            }
        }
        self.next_grant(s, o);
    }

    /// A chunkserver is down (§4.3): it is no longer a location of its chunks, and a lease
    /// that has it as a secondary is revoked, so that the next lease, at a new version, leaves
    /// it out (and it is stale when it comes back, §4.5).
    fn silent(&self, s: &mut MasterState, cs: Id, o: &mut Out<GfsActor>) {
        if s.down.contains(&cs) {
            return;
        }
        s.down.push(cs);
        s.down.sort();
        let in_round = s
            .granting
            .as_ref()
            .filter(|g| g.acked.contains(&cs) && g.primary.is_some_and(|p| p != cs))
            .map(|g| g.chunk);
        for (i, meta) in s.chunks.iter_mut().enumerate() {
            let had = meta.locations.contains(&cs);
            meta.locations.retain(|r| *r != cs);
            if in_round == Some(i as u32) {
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
    fn next_grant(&self, s: &mut MasterState, o: &mut Out<GfsActor>) {
        if s.granting.is_some() {
            return;
        }
        let next = s
            .parked
            .iter()
            .map(|(_, c)| *c)
            .find(|c| s.chunks.get(*c as usize).is_some_and(|m| m.lease.is_none()));
        if let Some(chunk) = next {
            self.start_grant(s, chunk, o);
        }
    }

    fn on_msg(&self, s: &mut MasterState, src: Id, msg: GfsMsg, o: &mut Out<GfsActor>) {
        match msg {
            GfsMsg::FindLease { chunk, refused } => self.find_lease(s, src, chunk, refused, o),
            GfsMsg::VersionOk { handle, version } => {
                let Some(g) = s.granting.as_mut() else {
                    return;
                };
                let meta = &s.chunks[g.chunk as usize];
                if meta.handle != handle || g.version != version || !g.waiting.contains(&src) {
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
                let ours = s.granting.as_ref().is_some_and(|g| {
                    g.primary == Some(src) && s.chunks[g.chunk as usize].handle == handle
                });
                if ours {
                    self.granted(s, o);
                }
            }
            GfsMsg::Report { chunks } => {
                if s.down.contains(&src) {
                    s.down.retain(|r| *r != src);
                    o.set_timer(GfsTimer::Silent(src), self.lease..self.lease);
                }
                for (handle, version) in chunks {
                    let Some(meta) = s.chunks.iter_mut().find(|m| m.handle == handle) else {
                        o.send(src, GfsMsg::Delete { handle, version });
                        continue;
                    };
                    if version < meta.version {
                        // §4.5: "the master removes stale replicas in its regular garbage
                        // collection".
                        meta.locations.retain(|r| *r != src);
                        o.send(src, GfsMsg::Delete { handle, version });
                    } else if !meta.locations.contains(&src) {
                        meta.locations.push(src);
                        meta.locations.sort();
                    }
                }
            }
            GfsMsg::Revoked { handle, version } => {
                let Some(meta) = s.chunks.iter_mut().find(|m| m.handle == handle) else {
                    return;
                };
                if meta.revoking && meta.version == version && meta.lease == Some(src) {
                    meta.revoking = false;
                    meta.lease = None;
                    o.cancel_timer(GfsTimer::LeaseRunOut(handle));
                    self.next_grant(s, o);
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&self, s: &mut MasterState, timer: &GfsTimer, o: &mut Out<GfsActor>) {
        match timer {
            GfsTimer::LeaseRunOut(handle) => {
                let Some(meta) = s.chunks.iter_mut().find(|m| m.handle == *handle) else {
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
                    let meta = &mut s.chunks[g.chunk as usize];
                    meta.lease = Some(primary);
                    meta.last_primary = Some(primary);
                    o.set_timer(GfsTimer::LeaseRunOut(meta.handle), self.lease..self.lease);
                }
            },
            _ => {}
        }
    }
}

/// A chunkserver's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkserverCfg {
    pub master: Id,
    /// Chunk size in slots (64 MB of bytes over TCP, §2.5).
    pub chunk_size: u64,
    /// Lease length by the primary's clock.
    pub lease: Duration,
    /// How long a primary waits for its secondaries.
    pub mutate_timeout: Duration,
    pub bug: Option<GfsBug>,
}

/// An append the primary has ordered and waits for the secondaries to apply.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pending {
    pub client: Id,
    pub handle: Handle,
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
pub struct ChunkserverState {
    pub replicas: BTreeMap<Handle, Replica>,
    pub leases: BTreeMap<Handle, Lease>,
    pub pending: Vec<Pending>,
}

impl ChunkserverCfg {
    fn start(&self, storage: &Option<Disk>, o: &mut Out<GfsActor>) -> ChunkserverState {
        match storage {
            // A new chunkserver: its (empty) disk, so that a restart finds one and reports.
            None => {
                o.save(Disk::default());
                ChunkserverState::default()
            }
            // Restarted: report the chunks on disk and their versions (§4.5).
            Some(replicas) => {
                let chunks = replicas.iter().map(|(h, r)| (*h, r.version)).collect();
                o.send(self.master, GfsMsg::Report { chunks });
                ChunkserverState {
                    replicas: (**replicas).clone(),
                    ..ChunkserverState::default()
                }
            }
        }
    }

    fn save(s: &ChunkserverState, o: &mut Out<GfsActor>) {
        o.save(Arc::new(s.replicas.clone()));
    }

    /// The primary's side of record append (§3.3).
    fn record_append(
        &self,
        s: &mut ChunkserverState,
        client: Id,
        handle: Handle,
        rec: u8,
        len: u8,
        o: &mut Out<GfsActor>,
    ) {
        let (Some(lease), Some(replica)) = (s.leases.get(&handle), s.replicas.get_mut(&handle))
        else {
            o.send(client, GfsMsg::NotPrimary { handle });
            return;
        };
        let used = replica.data.len() as u64;
        let (offset, write) = match place(used, u64::from(len), self.chunk_size) {
            Placement::At(offset) => (offset, Write::Record { rec, parts: len }),
            Placement::Pad { from, len: fit } if self.bug == Some(GfsBug::NoPadding) => {
                if fit == 0 {
                    // Exactly full: nothing to split.
                    o.send(client, GfsMsg::RetryNextChunk { handle });
                    return;
                }
                // The part that fits here; the rest would go to the next chunk.
                (
                    from,
                    Write::Record {
                        rec,
                        parts: fit as u8,
                    },
                )
            }
            Placement::Pad { from, len } => {
                let write = Write::Pad { len: len as u8 };
                if len > 0 {
                    apply(&mut replica.data, from, &write.slots());
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
                o.send(client, GfsMsg::RetryNextChunk { handle });
                return;
            }
        };
        apply(&mut replica.data, offset, &write.slots());
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
            o.send(client, GfsMsg::AppendOk { handle, offset });
        } else {
            s.pending.push(Pending {
                client,
                handle,
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
        s: &mut ChunkserverState,
        src: Id,
        handle: Handle,
        offset: Offset,
        ok: bool,
        o: &mut Out<GfsActor>,
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
                o.send(p.client, GfsMsg::AppendOk { handle, offset });
            }
        } else {
            let p = s.pending.remove(i);
            o.cancel_timer(GfsTimer::MutateTimeout(handle, offset));
            o.send(p.client, GfsMsg::AppendFailed { handle });
        }
    }

    fn on_msg(&self, s: &mut ChunkserverState, src: Id, msg: GfsMsg, o: &mut Out<GfsActor>) {
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
                self.record_append(s, src, handle, rec, len, o)
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
                        apply(&mut r.data, offset, &write.slots());
                        Self::save(s, o);
                        if !pad {
                            o.send(src, GfsMsg::MutateOk { handle, offset });
                        }
                    }
                    _ if !pad => o.send(src, GfsMsg::MutateFailed { handle, offset }),
                    _ => {}
                }
            }
            GfsMsg::MutateOk { handle, offset } => self.answered(s, src, handle, offset, true, o),
            GfsMsg::MutateFailed { handle, offset } => {
                self.answered(s, src, handle, offset, false, o)
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
            _ => {}
        }
    }

    fn on_timeout(&self, s: &mut ChunkserverState, timer: &GfsTimer, o: &mut Out<GfsActor>) {
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
                let msg = if self.bug == Some(GfsBug::AckOnPartial) {
                    GfsMsg::AppendOk {
                        handle: p.handle,
                        offset: p.offset,
                    }
                } else {
                    GfsMsg::AppendFailed { handle: p.handle }
                };
                o.send(p.client, msg);
            }
            _ => {}
        }
    }
}

/// A client's configuration: one record append, then a look at where its chunk lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCfg {
    pub master: Id,
    /// The record this client appends (`A` is 0) and its length in slots.
    pub rec: u8,
    pub len: u8,
    /// Retries after a failed attempt (§3.3: "the client retries the operation").
    pub retries: u8,
    pub timeout: Duration,
}

/// Where a client is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
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

/// A client's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientState {
    pub phase: Phase,
    /// The chunk it appends to: the file's last, as far as it knows.
    pub chunk: u32,
    /// Failed attempts so far.
    pub failures: u8,
    /// Where its record was appended: `(chunk, offset)`.
    pub appended: Option<(u32, Offset)>,
}

impl ClientCfg {
    fn start(&self, o: &mut Out<GfsActor>) -> ClientState {
        o.send(
            self.master,
            GfsMsg::FindLease {
                chunk: 0,
                refused: None,
            },
        );
        ClientState {
            phase: Phase::Lookup,
            chunk: 0,
            failures: 0,
            appended: None,
        }
    }

    /// A failed attempt: retry, telling the master which primary failed, or give up.
    fn failed(&self, s: &mut ClientState, refused: Option<Id>, o: &mut Out<GfsActor>) {
        o.cancel_timer(GfsTimer::NoAnswer);
        s.failures += 1;
        if s.failures > self.retries {
            s.phase = Phase::Failed;
            return;
        }
        s.phase = Phase::Backoff { refused };
        o.set_timer(GfsTimer::Backoff, self.timeout..self.timeout);
    }

    fn on_msg(&self, s: &mut ClientState, src: Id, msg: GfsMsg, o: &mut Out<GfsActor>) {
        let current = match s.phase {
            Phase::Appending { handle, primary } => Some((handle, primary)),
            _ => None,
        };
        let from_primary = |h: Handle| current == Some((h, src));
        match msg {
            GfsMsg::LeaseIs {
                chunk,
                handle,
                primary,
                ..
            } if s.phase == Phase::Lookup && chunk == s.chunk => {
                s.phase = Phase::Appending { handle, primary };
                o.send(
                    primary,
                    GfsMsg::RecordAppend {
                        handle,
                        rec: self.rec,
                        len: self.len,
                    },
                );
                o.set_timer(GfsTimer::NoAnswer, self.timeout..self.timeout);
            }
            GfsMsg::FileFull { chunk } if s.phase == Phase::Lookup && chunk == s.chunk => {
                s.phase = Phase::Failed;
            }
            GfsMsg::AppendOk { handle, offset } if from_primary(handle) => {
                o.cancel_timer(GfsTimer::NoAnswer);
                s.appended = Some((s.chunk, offset));
                s.phase = Phase::Done;
            }
            GfsMsg::RetryNextChunk { handle } if from_primary(handle) => {
                o.cancel_timer(GfsTimer::NoAnswer);
                s.chunk += 1;
                s.phase = Phase::Lookup;
                o.send(
                    self.master,
                    GfsMsg::FindLease {
                        chunk: s.chunk,
                        refused: None,
                    },
                );
            }
            GfsMsg::AppendFailed { handle } if from_primary(handle) => self.failed(s, None, o),
            // A lease the client was told of has gone: not a failed append (nothing was
            // written), so ask again, telling the master whose lease it found gone.
            GfsMsg::NotPrimary { handle } if from_primary(handle) => {
                o.cancel_timer(GfsTimer::NoAnswer);
                s.phase = Phase::Lookup;
                o.send(
                    self.master,
                    GfsMsg::FindLease {
                        chunk: s.chunk,
                        refused: Some(src),
                    },
                );
            }
            _ => {}
        }
    }

    fn on_timeout(&self, s: &mut ClientState, timer: &GfsTimer, o: &mut Out<GfsActor>) {
        match (timer, &s.phase) {
            (GfsTimer::NoAnswer, Phase::Appending { primary, .. }) => {
                let primary = *primary;
                self.failed(s, Some(primary), o);
            }
            (GfsTimer::Backoff, Phase::Backoff { refused }) => {
                let refused = *refused;
                s.phase = Phase::Lookup;
                o.send(
                    self.master,
                    GfsMsg::FindLease {
                        chunk: s.chunk,
                        refused,
                    },
                );
            }
            _ => {}
        }
    }
}

/// An actor of the model: the master, a chunkserver or a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GfsActor {
    Master(MasterCfg),
    Chunkserver(ChunkserverCfg),
    Client(ClientCfg),
}

/// An actor's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GfsState {
    Master(MasterState),
    Chunkserver(ChunkserverState),
    Client(ClientState),
}

impl Actor for GfsActor {
    type Msg = GfsMsg;
    type Timer = GfsTimer;
    type State = GfsState;
    /// A chunkserver's replicas; the master's state is not saved in the model (it does not
    /// crash there; over TCP its operation log keeps it).
    type Storage = Disk;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<Self::Storage>, o: &mut Out<Self>) -> GfsState {
        match self {
            GfsActor::Master(cfg) => GfsState::Master(cfg.start(o)),
            GfsActor::Chunkserver(cfg) => GfsState::Chunkserver(cfg.start(storage, o)),
            GfsActor::Client(cfg) => GfsState::Client(cfg.start(o)),
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<GfsState>, src: Id, msg: GfsMsg, o: &mut Out<Self>) {
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

    fn on_timeout(&self, _id: Id, state: &mut Cow<GfsState>, timer: &GfsTimer, o: &mut Out<Self>) {
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
