//! GFS's client library: records, the operations (through the model's client actor, driven),
//! reads from the chunkservers' data ports, and `fsck`.
//!
//! Record append gives at-least-once semantics with padding and duplicates (§3.3), so, as the
//! paper's applications do (§2.7.2: "Each record prepared by the writer contains extra
//! information like checksums so that its validity can be verified... unique identifiers"),
//! every record is framed: a magic number, its length, a CRC-32, its id and the payload, padded
//! to 8 bytes. A reader scans a chunk at 8-byte steps, keeps what verifies, and skips padding
//! and garbage; duplicates share an id.

use std::collections::BTreeMap;
use std::time::Duration;

use models::gfs::{Bytes, ChunkInfo, FileId, GfsOp, GfsRet, Handle, NsOp, Offset, RecId};
use stateright::actor::Id;

use super::chunks::{DataClient, ReadError};
use super::{record_id, GfsService};
use crate::client::Driven;
use crate::config::ClusterConfig;

/// A record's header: magic, payload length, CRC-32 of id and payload, id.
pub const HEADER: usize = 4 + 4 + 4 + 8;
const MAGIC: [u8; 4] = *b"GFSr";

/// The bytes a record of `payload` appends: header, payload, zeros to a multiple of 8.
pub fn frame_record(id: RecId, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len() + 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&id.to_le_bytes());
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    out
}

/// The record at `at` of `chunk`, if one verifies there: its id, payload and framed length.
pub fn record_at(chunk: &[u8], at: usize) -> Option<(RecId, &[u8], usize)> {
    let head = chunk.get(at..at + HEADER)?;
    if head[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[8..12].try_into().ok()?);
    let id = u64::from_le_bytes(head[12..20].try_into().ok()?);
    let payload = chunk.get(at + HEADER..at + HEADER + len)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&id.to_le_bytes());
    h.update(payload);
    if h.finalize() != crc {
        return None;
    }
    Some((id, payload, (HEADER + len).div_ceil(8) * 8))
}

/// A record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: RecId,
    pub payload: Vec<u8>,
    pub chunk: u32,
    pub offset: Offset,
}

/// The records in one chunk replica, in order.
pub fn scan(chunk_index: u32, bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER <= bytes.len() {
        match record_at(bytes, at) {
            Some((id, payload, len)) => {
                out.push(Record {
                    id,
                    payload: payload.to_vec(),
                    chunk: chunk_index,
                    offset: at as u64,
                });
                at += len;
            }
            None => at += 8,
        }
    }
    out
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GfsError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Indefinite(#[from] crate::client::Indefinite),
    #[error("chunk {0}: no replica could be read ({1})")]
    Unreadable(Handle, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A GFS client: the model's client actor for the control flow, the data ports for data.
pub struct GfsClient {
    driven: Driven<GfsService>,
    data: DataClient,
    cluster: ClusterConfig,
    appended: u64,
    /// How long an operation may take before it is indefinite.
    pub timeout: Duration,
}

impl GfsClient {
    pub fn connect(cluster: &ClusterConfig) -> std::io::Result<GfsClient> {
        use crate::service::Service;
        let driven = Driven::<GfsService>::start(cluster, &GfsService::tuning(), None)?;
        Ok(GfsClient {
            driven,
            data: DataClient::default(),
            cluster: cluster.clone(),
            appended: 0,
            timeout: Duration::from_secs(30),
        })
    }

    pub fn id(&self) -> usize {
        self.driven.id()
    }

    fn call(&mut self, op: GfsOp) -> Result<GfsRet, GfsError> {
        match self.driven.call(op, self.timeout)? {
            GfsRet::Failed { why } => Err(GfsError::Failed(why)),
            ret => Ok(ret),
        }
    }

    fn ns(&mut self, op: NsOp) -> Result<GfsRet, GfsError> {
        self.call(GfsOp::Master(op))
    }

    pub fn create(&mut self, path: &str) -> Result<FileId, GfsError> {
        match self.ns(NsOp::Create(path.into()))? {
            GfsRet::Created { file } => Ok(file),
            other => Err(GfsError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    pub fn remove(&mut self, path: &str) -> Result<(), GfsError> {
        self.ns(NsOp::Remove(path.into())).map(|_| ())
    }

    /// Renames `from` to `to`, atomically replacing a file named `to`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), GfsError> {
        self.ns(NsOp::Rename(from.into(), to.into())).map(|_| ())
    }

    /// Appends `text` as records of at most [`TEXT_RECORD`] bytes cut after line ends (a
    /// longer line is a record of its own), so that a record never splits a line.
    pub fn put_text(&mut self, path: &str, text: &[u8]) -> Result<usize, GfsError> {
        let mut n = 0;
        for record in text_records(text) {
            self.append(path, record)?;
            n += 1;
        }
        Ok(n)
    }

    /// The file's contents: the payloads of its records, each record once (its last copy:
    /// the attempt that was acknowledged, §3.3), in file order.
    pub fn read_text(&mut self, path: &str) -> Result<Vec<u8>, GfsError> {
        let records = self.read_records(path)?;
        Ok(last_copies(&records)
            .into_iter()
            .flat_map(|r| r.payload.iter().copied())
            .collect())
    }

    /// The files under `prefix` and their chunk counts.
    pub fn list(&mut self, prefix: &str) -> Result<Vec<(String, u32)>, GfsError> {
        match self.ns(NsOp::List(prefix.into()))? {
            GfsRet::Listing { files } => Ok(files),
            other => Err(GfsError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    /// The file's chunks and their replicas.
    pub fn open(&mut self, path: &str) -> Result<Vec<ChunkInfo>, GfsError> {
        match self.ns(NsOp::Open(path.into()))? {
            GfsRet::Chunks { chunks, .. } => Ok(chunks),
            other => Err(GfsError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    /// Appends a record (§3.3): at least once, at an offset GFS chooses. Returns where, and
    /// the record's id.
    pub fn append(&mut self, path: &str, payload: &[u8]) -> Result<(u32, Offset, RecId), GfsError> {
        self.appended += 1;
        let rec = record_id(self.id(), self.appended);
        let data = Bytes(frame_record(rec, payload).into());
        match self.call(GfsOp::Append {
            path: path.into(),
            rec,
            data,
        })? {
            GfsRet::Appended { chunk, offset } => Ok((chunk, offset, rec)),
            other => Err(GfsError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    /// One replica of a chunk's bytes, from the first location that serves it whole (§5.2: a
    /// replica that fails its checksums sends the reader to another).
    pub fn read_chunk(&mut self, chunk: &ChunkInfo) -> Result<Vec<u8>, GfsError> {
        let mut why = String::from("no locations");
        for loc in &chunk.locations {
            match self.read_replica(chunk.handle, *loc) {
                Ok(bytes) => return Ok(bytes),
                Err(e) => why = format!("{}: {e}", usize::from(*loc)),
            }
        }
        Err(GfsError::Unreadable(chunk.handle, why))
    }

    /// Chunk `h`'s bytes on chunkserver `loc`.
    pub fn read_replica(&mut self, h: Handle, loc: Id) -> Result<Vec<u8>, ReadError> {
        let addr = *self.cluster.data.get(&loc).ok_or(ReadError::NoChunk)?;
        self.data.read(addr, h, 0, u64::MAX)
    }

    /// Every record in the file, duplicates included, in file order.
    pub fn read_records(&mut self, path: &str) -> Result<Vec<Record>, GfsError> {
        let chunks = self.open(path)?;
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let bytes = self.read_chunk(c)?;
            out.extend(scan(i as u32, &bytes));
        }
        Ok(out)
    }
}

/// The largest record payload [`GfsClient::put_text`] makes: with its header, 8 KB, so that
/// it fits chunks of 32 KB and more (a record is at most a quarter of a chunk, §3.3).
pub const TEXT_RECORD: usize = (8 << 10) - HEADER - 8;

/// `text` cut into records of at most [`TEXT_RECORD`] bytes after line ends.
pub fn text_records(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let limit = (start + TEXT_RECORD).min(text.len());
        let end = if limit == text.len() {
            limit
        } else {
            match text[start..limit].iter().rposition(|b| *b == b'\n') {
                Some(i) => start + i + 1,
                // One long line: to its end.
                None => text[limit..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(text.len(), |i| limit + i + 1),
            }
        };
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// Each record once: its last copy in file order. A retried append's earlier copies may be
/// on some replicas and not others; its last, acknowledged copy is on all of them (§3.3), so
/// this choice does not depend on which replica was read.
pub fn last_copies(records: &[Record]) -> Vec<&Record> {
    let mut last: std::collections::HashMap<RecId, usize> = Default::default();
    for (i, r) in records.iter().enumerate() {
        last.insert(r.id, i);
    }
    records
        .iter()
        .enumerate()
        .filter(|(i, r)| last[&r.id] == *i)
        .map(|(_, r)| r)
        .collect()
}

/// The kinds of region of Table 1, as `fsck` finds them across a chunk's replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Region {
    /// The same verified record on every replica.
    Defined,
    /// The same bytes on every replica, zeros: padding (§3.3).
    Padding,
    /// The same bytes on every replica, but not a record.
    Undefined,
    /// Different bytes on different replicas (a failed mutation).
    Inconsistent,
}

/// What `fsck` found in one chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkCheck {
    pub handle: Handle,
    /// The replicas the master lists, and those that could be read.
    pub locations: Vec<Id>,
    pub readable: Vec<Id>,
    /// Bytes by kind of region, and the number of separate regions of each kind.
    pub bytes: BTreeMap<Region, u64>,
    pub regions: BTreeMap<Region, u64>,
    /// The ids of the records in defined regions, in order.
    pub records: Vec<RecId>,
}

/// Classifies a chunk's replicas (Table 1).
pub fn classify(replicas: &[Vec<u8>]) -> Vec<(Region, u64, u64, Option<RecId>)> {
    let end = replicas.iter().map(Vec::len).max().unwrap_or(0);
    let same = |from: usize, to: usize| {
        let first = replicas[0].get(from..to);
        first.is_some() && replicas.iter().all(|r| r.get(from..to) == first)
    };
    let mut out: Vec<(Region, u64, u64, Option<RecId>)> = Vec::new();
    let mut at = 0;
    while at < end {
        let found = replicas.iter().find_map(|r| record_at(r, at));
        let (region, len, id) = match found {
            Some((id, _, len)) if same(at, at + len) => (Region::Defined, len, Some(id)),
            Some((_, _, len)) => (Region::Inconsistent, len, None),
            None => {
                let to = (at + 8).min(end);
                let region = if !same(at, to) {
                    Region::Inconsistent
                } else if replicas[0][at..to].iter().all(|b| *b == 0) {
                    Region::Padding
                } else {
                    Region::Undefined
                };
                (region, to - at, None)
            }
        };
        match out.last_mut() {
            Some(last) if id.is_none() && last.3.is_none() && last.0 == region => {
                last.2 += len as u64;
            }
            _ => out.push((region, at as u64, len as u64, id)),
        }
        at += len;
    }
    out
}

/// What `fsck` found in a file.
#[derive(Clone, Debug, Default)]
pub struct FileCheck {
    pub path: String,
    pub chunks: Vec<ChunkCheck>,
    /// Record ids found more than once in defined regions, and how many extra copies.
    pub duplicates: u64,
}

/// Checks every file under `prefix`: reads every replica of every chunk and classifies the
/// regions (Table 1).
pub fn fsck(client: &mut GfsClient, prefix: &str) -> Result<Vec<FileCheck>, GfsError> {
    let mut files = Vec::new();
    for (path, _) in client.list(prefix)? {
        let mut check = FileCheck {
            path: path.clone(),
            ..FileCheck::default()
        };
        let mut seen: BTreeMap<RecId, u64> = BTreeMap::new();
        for info in client.open(&path)? {
            let mut c = ChunkCheck {
                handle: info.handle,
                locations: info.locations.clone(),
                ..ChunkCheck::default()
            };
            let mut replicas = Vec::new();
            for loc in &info.locations {
                if let Ok(bytes) = client.read_replica(info.handle, *loc) {
                    c.readable.push(*loc);
                    replicas.push(bytes);
                }
            }
            if !replicas.is_empty() {
                for (region, _, len, id) in classify(&replicas) {
                    *c.bytes.entry(region).or_default() += len;
                    *c.regions.entry(region).or_default() += 1;
                    if let Some(id) = id {
                        c.records.push(id);
                        *seen.entry(id).or_default() += 1;
                    }
                }
            }
            check.chunks.push(c);
        }
        check.duplicates = seen.values().map(|n| n - 1).sum();
        files.push(check);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_frame_scan_and_skip_padding_and_garbage() {
        let a = frame_record(1, b"alpha");
        let b = frame_record(2, b"");
        assert_eq!(a.len() % 8, 0);
        let mut chunk = a.clone();
        chunk.extend_from_slice(&[0u8; 24]);
        chunk.extend_from_slice(&b);
        // A corrupt copy of a: same magic, a flipped payload byte; skipped.
        let mut bad = a.clone();
        bad[HEADER] ^= 1;
        chunk.extend_from_slice(&bad);
        chunk.extend_from_slice(&a);
        let got: Vec<(RecId, Vec<u8>, Offset)> = scan(0, &chunk)
            .into_iter()
            .map(|r| (r.id, r.payload, r.offset))
            .collect();
        let at_b = a.len() as u64 + 24;
        let at_a2 = at_b + b.len() as u64 + bad.len() as u64;
        assert_eq!(
            got,
            vec![
                (1, b"alpha".to_vec(), 0),
                (2, vec![], at_b),
                (1, b"alpha".to_vec(), at_a2)
            ]
        );
    }

    #[test]
    fn fsck_classifies_regions_as_table_1() {
        let a = frame_record(1, b"record one");
        let b = frame_record(2, b"record two");
        // Replica 1: a, b, padding. Replica 2: a, a hole where b failed, padding.
        let mut r1 = a.clone();
        r1.extend_from_slice(&b);
        r1.extend_from_slice(&[0u8; 16]);
        let mut r2 = a.clone();
        r2.extend_from_slice(&vec![0u8; b.len()]);
        r2.extend_from_slice(&[0u8; 16]);
        let regions: Vec<(Region, u64, u64)> = classify(&[r1, r2])
            .into_iter()
            .map(|(r, at, len, _)| (r, at, len))
            .collect();
        let la = a.len() as u64;
        let lb = b.len() as u64;
        assert_eq!(
            regions,
            vec![
                (Region::Defined, 0, la),
                (Region::Inconsistent, la, lb),
                (Region::Padding, la + lb, 16),
            ]
        );
        // The same non-record bytes everywhere: consistent but undefined.
        let junk = vec![7u8; 16];
        assert_eq!(classify(&[junk.clone(), junk])[0].0, Region::Undefined);
    }
}
