//! A ZooKeeper server's disk: its epochs (`acceptedEpoch`, `currentEpoch`, as ZooKeeper's
//! files of those names) and its transaction log.
//!
//! - `epochs.json`: the two epochs, replaced atomically ([`write_atomic`]).
//! - `log`: one record per transaction, `[length u32][FNV-1a 64][bincode entry]`, appended and
//!   fsynced before the save returns (ZooKeeper's `FileTxnLog`: a follower ACKs only what is on
//!   disk). Replay stops at the first short record or bad checksum: a record torn by a crash was
//!   never acknowledged. A log that changes other than at its end (a TRUNC or a new history
//!   from NEWLEADER) is rewritten whole, atomically.

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
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The transaction log in the data directory `dir`, as a restart would replay it (`jepsen
    /// zk` reads a server's log after the run). It may end with proposals never committed.
    pub fn read_log(dir: &Path) -> std::io::Result<Vec<ZkEntry>> {
        Self::replay(&dir.join("log"))
    }

    /// The log's entries, up to the first torn record.
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
        let history = Self::replay(&self.log_path())?;
        // Drop a torn tail for good, so that appends follow the last whole record.
        self.rewrite(&history)?;
        self.epochs = Some(epochs);
        self.len = history.len();
        self.last = history.last().map(Entry::zxid);
        Ok(Some(ZabDisk {
            accepted_epoch: epochs.accepted_epoch,
            current_epoch: epochs.current_epoch,
            history: history.into_iter().collect(),
        }))
    }

    fn save(&mut self, d: &ZabDisk<ZkEntry>) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let appended = self.log.is_some()
            && d.history.len() >= self.len
            && (self.len == 0 || d.history.get(self.len - 1).map(Entry::zxid) == self.last);
        if appended {
            if d.history.len() > self.len {
                let mut buf = Vec::new();
                for e in d.history.skip(self.len).iter() {
                    record(e, &mut buf)?;
                }
                let f = self.log.as_mut().expect("checked");
                f.write_all(&buf)?;
                f.sync_data()?;
            }
        } else {
            self.rewrite(&d.history)?;
        }
        self.len = d.history.len();
        self.last = d.history.last().map(Entry::zxid);
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
