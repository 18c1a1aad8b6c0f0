//! Where a GFS node keeps its actor's storage: the master's operation log and checkpoints
//! (§2.6.3), or a chunkserver's chunk files ([`super::chunks`]).
//!
//! The master's metadata (namespace, each file's chunks, each chunk's version) is saved as an
//! operation log: each save appends the changes since the last one, one JSON line each, and
//! syncs the log before it returns (§2.6.3: "respond to a client operation only after flushing
//! the corresponding log record to disk"). Every [`CHECKPOINT_EVERY`] records the whole
//! metadata is written as a checkpoint (atomically) and the log starts over, so that a restart
//! replays a short log. A torn last line (a crash during a save that never returned) is
//! dropped; any other damage is an error.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use models::gfs::{ChunkData, FileId, GfsDisk, Handle, MasterDisk, Replica, Version};
use serde::{Deserialize, Serialize};

use super::chunks::ChunkDir;
use super::Tail;
use crate::storage::Store;

/// Log records between checkpoints.
pub const CHECKPOINT_EVERY: usize = 1000;

/// One change to the master's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Op {
    /// Path `path` names `file`, or (`None`) nothing.
    Name {
        path: String,
        file: Option<FileId>,
    },
    /// File `file` has these chunks, or (`None`) does not exist.
    Chunks {
        file: FileId,
        handles: Option<Vec<Handle>>,
    },
    /// Chunk `handle` is at `version`, or (`None`) gone.
    Version {
        handle: Handle,
        version: Option<Version>,
    },
    Next {
        file: FileId,
        handle: Handle,
    },
}

fn apply(d: &mut MasterDisk, op: Op) {
    match op {
        Op::Name {
            path,
            file: Some(f),
        } => {
            d.names.insert(path, f);
        }
        Op::Name { path, file: None } => {
            d.names.remove(&path);
        }
        Op::Chunks {
            file,
            handles: Some(h),
        } => {
            d.files.insert(file, h);
        }
        Op::Chunks {
            file,
            handles: None,
        } => {
            d.files.remove(&file);
        }
        Op::Version {
            handle,
            version: Some(v),
        } => {
            d.versions.insert(handle, v);
        }
        Op::Version {
            handle,
            version: None,
        } => {
            d.versions.remove(&handle);
        }
        Op::Next { file, handle } => {
            d.next_file = file;
            d.next_handle = handle;
        }
    }
}

/// The records that turn `a` into `b`.
fn diff(a: &MasterDisk, b: &MasterDisk) -> Vec<Op> {
    fn changes<K: Ord + Clone, V: PartialEq + Clone>(
        a: &BTreeMap<K, V>,
        b: &BTreeMap<K, V>,
        mut out: impl FnMut(K, Option<V>),
    ) {
        for (k, v) in b {
            if a.get(k) != Some(v) {
                out(k.clone(), Some(v.clone()));
            }
        }
        for k in a.keys().filter(|k| !b.contains_key(k)) {
            out(k.clone(), None);
        }
    }
    let mut ops = Vec::new();
    changes(&a.names, &b.names, |path, file| {
        ops.push(Op::Name { path, file })
    });
    changes(&a.files, &b.files, |file, handles| {
        ops.push(Op::Chunks { file, handles })
    });
    changes(&a.versions, &b.versions, |handle, version| {
        ops.push(Op::Version { handle, version })
    });
    if (a.next_file, a.next_handle) != (b.next_file, b.next_handle) {
        ops.push(Op::Next {
            file: b.next_file,
            handle: b.next_handle,
        });
    }
    ops
}

/// The master's operation log and checkpoint in a directory.
pub struct MasterLog {
    dir: PathBuf,
    last: MasterDisk,
    log: Option<File>,
    records: usize,
}

impl MasterLog {
    fn log_path(dir: &Path) -> PathBuf {
        dir.join("master.log")
    }

    fn checkpoint_path(dir: &Path) -> PathBuf {
        dir.join("master.checkpoint")
    }

    /// Whether `dir` holds a master's metadata.
    pub fn exists(dir: &Path) -> bool {
        Self::log_path(dir).exists() || Self::checkpoint_path(dir).exists()
    }

    /// The metadata in `dir`: the checkpoint, then the log replayed on it; and the log's
    /// records and length up to its last whole record.
    pub fn load(dir: &Path) -> io::Result<(MasterDisk, usize, u64)> {
        let bad = |p: &Path, m: String| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {m}", p.display()))
        };
        let cp = Self::checkpoint_path(dir);
        let mut d = match fs::read(&cp) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(&cp, e.to_string()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => MasterDisk::default(),
            Err(e) => return Err(e),
        };
        let lp = Self::log_path(dir);
        let text = match fs::read(&lp) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        let mut records = 0;
        let mut valid = 0u64;
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Op>(line) {
                Ok(op) if !last => {
                    apply(&mut d, op);
                    records += 1;
                    valid += line.len() as u64 + 1;
                }
                // The last line, not ended: a save a crash cut short, never acknowledged.
                _ if last => {}
                Err(e) => return Err(bad(&lp, format!("record {}: {e}", i + 1))),
                Ok(_) => unreachable!("handled above"),
            }
        }
        Ok((d, records, valid))
    }

    fn open(dir: &Path) -> io::Result<MasterLog> {
        let (last, records) = if Self::exists(dir) {
            let (d, records, valid) = Self::load(dir)?;
            // Drop a torn last record, so that the next one starts on a line of its own.
            if let Ok(log) = OpenOptions::new().write(true).open(Self::log_path(dir)) {
                if log.metadata()?.len() > valid {
                    log.set_len(valid)?;
                    log.sync_all()?;
                }
            }
            (d, records)
        } else {
            (MasterDisk::default(), 0)
        };
        Ok(MasterLog {
            dir: dir.to_path_buf(),
            last,
            log: None,
            records,
        })
    }

    fn save(&mut self, d: &MasterDisk) -> io::Result<()> {
        let ops = diff(&self.last, d);
        if ops.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)?;
        if self.records + ops.len() > CHECKPOINT_EVERY {
            let bytes = serde_json::to_vec(d).map_err(io::Error::other)?;
            crate::storage::write_atomic(&Self::checkpoint_path(&self.dir), &bytes)?;
            let log = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(Self::log_path(&self.dir))?;
            log.sync_all()?;
            self.log = None;
            self.records = 0;
            self.last = d.clone();
            return Ok(());
        }
        if self.log.is_none() {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(Self::log_path(&self.dir))?;
            self.log = Some(log);
        }
        let mut bytes = Vec::new();
        for op in &ops {
            serde_json::to_writer(&mut bytes, op).map_err(io::Error::other)?;
            bytes.push(b'\n');
        }
        let log = self.log.as_mut().expect("opened");
        log.write_all(&bytes)?;
        log.sync_data()?;
        self.records += ops.len();
        self.last = d.clone();
        Ok(())
    }
}

/// What a chunkserver last saved: its chunks' versions.
struct ChunkIndex {
    dir: Arc<ChunkDir>,
    versions: BTreeMap<Handle, Version>,
}

/// A GFS node's store: the master's log, or a chunkserver's chunks, whichever it saves.
pub struct GfsStore {
    dir: PathBuf,
    master: Option<MasterLog>,
    chunks: Option<ChunkIndex>,
}

impl GfsStore {
    pub fn new(dir: &Path) -> GfsStore {
        GfsStore {
            dir: dir.to_path_buf(),
            master: None,
            chunks: None,
        }
    }
}

impl Store<GfsDisk<Tail>> for GfsStore {
    fn load(&mut self) -> io::Result<Option<GfsDisk<Tail>>> {
        if MasterLog::exists(&self.dir) {
            let log = MasterLog::open(&self.dir)?;
            let d = log.last.clone();
            self.master = Some(log);
            return Ok(Some(GfsDisk::Master(d)));
        }
        let dir = ChunkDir::open(&self.dir);
        if !dir.path().exists() {
            return Ok(None);
        }
        let mut replicas = BTreeMap::new();
        let mut versions = BTreeMap::new();
        for (h, version, len) in dir.load()? {
            versions.insert(h, version);
            replicas.insert(
                h,
                Replica {
                    version,
                    epoch: 0,
                    data: Tail::copied(len),
                },
            );
        }
        self.chunks = Some(ChunkIndex { dir, versions });
        Ok(Some(GfsDisk::Chunkserver(Arc::new(replicas))))
    }

    fn save(&mut self, storage: &GfsDisk<Tail>) -> io::Result<()> {
        match storage {
            GfsDisk::Master(d) => {
                if self.master.is_none() {
                    self.master = Some(MasterLog::open(&self.dir)?);
                }
                self.master.as_mut().expect("opened").save(d)
            }
            GfsDisk::Chunkserver(replicas) => {
                let index = self.chunks.get_or_insert_with(|| ChunkIndex {
                    dir: ChunkDir::open(&self.dir),
                    versions: BTreeMap::new(),
                });
                fs::create_dir_all(index.dir.path())?;
                // Data first (its checksums with it), then versions: a version is never on
                // disk ahead of the writes made under the version before it.
                index.dir.sync()?;
                for (h, r) in replicas.iter() {
                    if index.versions.get(h) != Some(&r.version) {
                        index.dir.set_version(*h, r.version)?;
                        index.versions.insert(*h, r.version);
                    }
                }
                let gone: Vec<Handle> = index
                    .versions
                    .keys()
                    .filter(|h| !replicas.contains_key(h))
                    .copied()
                    .collect();
                for h in gone {
                    index.dir.delete(h)?;
                    index.versions.remove(&h);
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(n: u64) -> MasterDisk {
        let mut d = MasterDisk {
            next_file: 1,
            next_handle: n + 1,
            ..MasterDisk::default()
        };
        d.names.insert("/a".into(), 0);
        d.files.insert(0, (1..=n).collect());
        for h in 1..=n {
            d.versions.insert(h, h % 3 + 1);
        }
        d
    }

    #[test]
    fn the_operation_log_replays_checkpoints_and_drops_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("gfs-oplog-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut log = MasterLog::open(&dir).unwrap();
        // Enough saves to pass a checkpoint, and a removal after it.
        for n in 1..=(CHECKPOINT_EVERY as u64 / 2 + 10) {
            log.save(&disk(n)).unwrap();
        }
        assert!(MasterLog::checkpoint_path(&dir).exists());
        let mut last = disk(CHECKPOINT_EVERY as u64 / 2 + 10);
        last.names.remove("/a");
        last.files.remove(&0);
        log.save(&last).unwrap();
        assert_eq!(MasterLog::load(&dir).unwrap().0, last);
        // A crash mid-save: half a record at the end is dropped, and the next save goes on.
        let mut f = OpenOptions::new()
            .append(true)
            .open(MasterLog::log_path(&dir))
            .unwrap();
        f.write_all(b"{\"Name\":{\"pa").unwrap();
        assert_eq!(MasterLog::load(&dir).unwrap().0, last);
        let mut log = MasterLog::open(&dir).unwrap();
        let mut next = last.clone();
        next.names.insert("/b".into(), 1);
        log.save(&next).unwrap();
        assert_eq!(MasterLog::load(&dir).unwrap().0, next);
        // Damage before the end is an error, not a fresh start.
        let text = fs::read_to_string(MasterLog::log_path(&dir)).unwrap();
        fs::write(MasterLog::log_path(&dir), format!("garbage\n{text}")).unwrap();
        let e = MasterLog::load(&dir).unwrap_err();
        assert!(e.to_string().contains("record 1"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
