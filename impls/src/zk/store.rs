//! A ZooKeeper server's disk: its epochs (`acceptedEpoch`, `currentEpoch`, as ZooKeeper's
//! files of those names), its latest snapshot and its transaction log.
//!
//! - `epochs.json`: the two epochs, replaced atomically ([`write_atomic`]).
//! - `snapshot.<zxid in hex>`: when the log in memory starts with a snapshot entry (the server
//!   compacted it, or a leader sent one), that entry, as one record, written atomically
//!   before the log that follows it; older snapshots are removed after.
//! - `log`: one record per transaction after the snapshot, `[length u32][FNV-1a 64][bincode
//!   entry]`, appended and fsynced before the save returns (ZooKeeper's `FileTxnLog`: a
//!   follower ACKs only what is on disk). Replay stops at the first short record or bad
//!   checksum: a record torn by a crash was never acknowledged. A log that changes other than
//!   at its end (a TRUNC, a new history from NEWLEADER, a compaction) is rewritten whole,
//!   atomically.
//!
//! Loading takes the snapshot with the highest zxid and the log's transactions after it, so a
//! crash between writing a snapshot and rewriting the log loses nothing: the old log's
//! transactions up to the snapshot are the ones it holds.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use models::zab::{Entry, ZabDisk, Zxid};
use serde::{Deserialize, Serialize};

use super::server::ZkEntry;
use crate::storage::{write_atomic, Store};

#[derive(Serialize, Deserialize, PartialEq, Clone, Copy)]
struct Epochs {
    accepted_epoch: u32,
    current_epoch: u32,
}

/// A server's [`Store`].
pub struct ZkStore {
    dir: PathBuf,
    /// What the last save left: its epochs, its log's length and last zxid.
    epochs: Option<Epochs>,
    len: usize,
    last: Option<Zxid>,
    log: Option<File>,
    /// The zxid of the snapshot on disk, if any.
    snapshot: Option<Zxid>,
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn record(e: &ZkEntry, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let payload = bincode::serialize(e).map_err(std::io::Error::other)?;
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&fnv(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    Ok(())
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

impl ZkStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ZkStore {
            dir: dir.into(),
            epochs: None,
            len: 0,
            last: None,
            log: None,
            snapshot: None,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The transaction log in the data directory `dir`, as a restart would replay it (`jepsen
    /// zk` reads a server's log after the run). It may end with proposals never committed, and
    /// it holds only the transactions after the latest snapshot: `jepsen zk` runs its servers
    /// without snapshots so that the log is the whole history.
    pub fn read_log(dir: &Path) -> std::io::Result<Vec<ZkEntry>> {
        Self::replay(&dir.join("log"))
    }

    /// The entries of a file of records, up to the first torn record.
    fn replay(path: &Path) -> std::io::Result<Vec<ZkEntry>> {
        let mut data = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut data)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 12 <= data.len() {
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            let sum = u64::from_le_bytes(data[pos + 4..pos + 12].try_into().expect("8 bytes"));
            let Some(payload) = data.get(pos + 12..pos + 12 + len) else {
                break;
            };
            if fnv(payload) != sum {
                break;
            }
            let e: ZkEntry = bincode::deserialize(payload).map_err(|e| corrupt(path, e))?;
            if out.last().is_some_and(|l: &ZkEntry| l.zxid >= e.zxid) {
                return Err(corrupt(path, "the log's zxids do not increase"));
            }
            out.push(e);
            pos += 12 + len;
        }
        Ok(out)
    }

    /// The snapshot files in the directory, by zxid.
    fn snapshots(&self) -> std::io::Result<Vec<(i64, PathBuf)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("snapshot.")) else {
                continue;
            };
            if let Ok(z) = i64::from_str_radix(hex, 16) {
                out.push((z, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The latest whole snapshot on disk.
    fn load_snapshot(&self) -> std::io::Result<Option<ZkEntry>> {
        for (_, path) in self.snapshots()?.into_iter().rev() {
            let mut entries = Self::replay(&path)?;
            if entries.len() == 1 && entries[0].is_snapshot() {
                return Ok(entries.pop());
            }
            // A snapshot that is not whole was never the one a log followed.
            tracing::warn!(path = %path.display(), "a torn snapshot is ignored");
        }
        Ok(None)
    }

    /// Writes the snapshot `e` (unless it is the one on disk) before the log that follows it.
    fn write_snapshot(&mut self, e: &ZkEntry) -> std::io::Result<()> {
        if self.snapshot == Some(e.zxid) {
            return Ok(());
        }
        let mut buf = Vec::new();
        record(e, &mut buf)?;
        let name = format!("snapshot.{:x}", super::server::zxid64(e.zxid));
        write_atomic(&self.dir.join(name), &buf)?;
        self.snapshot = Some(e.zxid);
        Ok(())
    }

    /// Removes the snapshots other than the current one (once the log that follows it is on
    /// disk).
    fn purge_snapshots(&self) -> std::io::Result<()> {
        let keep = self.snapshot.map(super::server::zxid64);
        for (z, path) in self.snapshots()? {
            if Some(z) != keep {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    fn rewrite<'a>(
        &mut self,
        history: impl IntoIterator<Item = &'a ZkEntry>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for e in history {
            record(e, &mut buf)?;
        }
        write_atomic(&self.log_path(), &buf)?;
        self.log = Some(File::options().append(true).open(self.log_path())?);
        Ok(())
    }
}

impl Store<ZabDisk<ZkEntry>> for ZkStore {
    fn load(&mut self) -> std::io::Result<Option<ZabDisk<ZkEntry>>> {
        let path = self.dir.join("epochs.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let epochs: Epochs = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
        let snapshot = self.load_snapshot()?;
        let mut log = Self::replay(&self.log_path())?;
        if let Some(s) = &snapshot {
            log.retain(|e| e.zxid > s.zxid);
        }
        // Drop a torn tail (and what the snapshot covers) for good, so that appends follow
        // the last whole record.
        self.rewrite(&log)?;
        self.snapshot = snapshot.as_ref().map(|s| s.zxid);
        self.purge_snapshots()?;
        self.epochs = Some(epochs);
        self.len = log.len();
        self.last = log.last().map(Entry::zxid);
        Ok(Some(ZabDisk {
            accepted_epoch: epochs.accepted_epoch,
            current_epoch: epochs.current_epoch,
            history: snapshot.into_iter().chain(log).collect(),
        }))
    }

    fn save(&mut self, d: &ZabDisk<ZkEntry>) -> std::io::Result<()> {
        if self.log.is_none() {
            // Once: a save that appends runs for every batch of proposals.
            fs::create_dir_all(&self.dir)?;
        }
        let snapshot = d.history.front().filter(|e| e.is_snapshot());
        let log = d.history.skip(usize::from(snapshot.is_some()));
        let appended = self.log.is_some()
            && snapshot.map(|s| s.zxid) == self.snapshot
            && log.len() >= self.len
            && (self.len == 0 || log.get(self.len - 1).map(Entry::zxid) == self.last);
        if appended {
            if log.len() > self.len {
                let mut buf = Vec::new();
                for e in log.skip(self.len).iter() {
                    record(e, &mut buf)?;
                }
                let f = self.log.as_mut().expect("checked");
                f.write_all(&buf)?;
                f.sync_data()?;
            }
        } else {
            match snapshot {
                Some(s) => self.write_snapshot(s)?,
                None => self.snapshot = None,
            }
            self.rewrite(&log)?;
            self.purge_snapshots()?;
        }
        self.len = log.len();
        self.last = log.last().map(Entry::zxid);
        let epochs = Epochs {
            accepted_epoch: d.accepted_epoch,
            current_epoch: d.current_epoch,
        };
        if self.epochs != Some(epochs) {
            let bytes = serde_json::to_vec(&epochs).map_err(std::io::Error::other)?;
            write_atomic(&self.dir.join("epochs.json"), &bytes)?;
            self.epochs = Some(epochs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::zk::db::Write;
    use crate::zk::tree::{DataTree, Txn, TxnOp};

    fn txn(counter: u32) -> ZkEntry {
        ZkEntry::noop((1, counter))
    }

    fn snapshot(counter: u32) -> ZkEntry {
        ZkEntry {
            zxid: (1, counter),
            txn: Arc::new(Write {
                origin: 0,
                xid: 0,
                txn: Txn {
                    session: 0,
                    time_ms: 0,
                    auth: Vec::new(),
                    op: TxnOp::Snapshot(DataTree::new().snapshot()),
                },
            }),
        }
    }

    fn disk(history: Vec<ZkEntry>) -> ZabDisk<ZkEntry> {
        ZabDisk {
            accepted_epoch: 1,
            current_epoch: 1,
            history: history.into_iter().collect(),
        }
    }

    fn zxids(d: &ZabDisk<ZkEntry>) -> Vec<(u32, bool)> {
        d.history
            .iter()
            .map(|e| (e.zxid.1, e.is_snapshot()))
            .collect()
    }

    #[test]
    fn a_compacted_log_is_a_snapshot_file_and_the_txns_after_it() {
        let dir = std::env::temp_dir().join(format!("zk-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut store = ZkStore::new(&dir);
        store.save(&disk((1..=5).map(txn).collect())).unwrap();
        // Compacted at 3: a snapshot file, and a log of 4 and 5.
        let compacted = disk(vec![snapshot(3), txn(4), txn(5)]);
        store.save(&compacted).unwrap();
        store
            .save(&disk(vec![snapshot(3), txn(4), txn(5), txn(6)]))
            .unwrap();
        let loaded = ZkStore::new(&dir).load().unwrap().unwrap();
        assert_eq!(
            zxids(&loaded),
            [(3, true), (4, false), (5, false), (6, false)]
        );
        assert!(dir.join("snapshot.100000003").exists());

        // A crash after a newer snapshot was written but before the log was rewritten: the
        // log's txns up to the snapshot are dropped on load, the later ones kept.
        let mut buf = Vec::new();
        record(&snapshot(5), &mut buf).unwrap();
        write_atomic(&dir.join("snapshot.100000005"), &buf).unwrap();
        let mut store = ZkStore::new(&dir);
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(zxids(&loaded), [(5, true), (6, false)]);
        assert!(!dir.join("snapshot.100000003").exists());

        // A torn snapshot is passed over for the one before it.
        write_atomic(&dir.join("snapshot.100000006"), &buf[..buf.len() - 1]).unwrap();
        let loaded = ZkStore::new(&dir).load().unwrap().unwrap();
        assert_eq!(zxids(&loaded), [(5, true), (6, false)]);

        // A history without a snapshot (a leader that never compacted sent its whole log)
        // replaces the snapshot.
        let mut store = ZkStore::new(&dir);
        store.load().unwrap();
        store.save(&disk((1..=7).map(txn).collect())).unwrap();
        assert!(store.snapshots().unwrap().is_empty());
        let loaded = ZkStore::new(&dir).load().unwrap().unwrap();
        assert_eq!(zxids(&loaded).len(), 7);
        let _ = fs::remove_dir_all(&dir);
    }
}
