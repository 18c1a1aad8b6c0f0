//! The Raft server's storage on disk as a checkpoint and a write-ahead log, like etcd's snapshot
//! and WAL files: a step that appends entries writes only those entries and fsyncs once
//! (`fdatasync` of a preallocated file), instead of rewriting the whole log.
//!
//! - `checkpoint.json`: a whole [`Storage`] with its generation number, replaced atomically
//!   (temporary file, fsync, rename, directory fsync). Written on the first save, whenever the
//!   snapshot changes (§7: the log was compacted or a snapshot installed), and when the WAL is
//!   full.
//! - `wal-G`: the changes since checkpoint G, one record per save: the term, the vote, how many
//!   entries after the snapshot are kept (a conflict truncates, §5.3), and the entries appended.
//!   A record is `[length u32][FNV-1a 64 of generation and payload][JSON payload]`; replay stops at
//!   the first record that is short, fails its checksum or belongs to another generation, so a
//!   write torn by a crash is simply not there (it was never acknowledged: the save had not
//!   returned). A new checkpoint renames the old WAL file to the new generation and overwrites it
//!   from the start, keeping its preallocated blocks.
//!
//! Guarantee, as for [`crate::storage`]: when `save` returns, the storage is durable, and a crash
//! at any point leaves the storage of the last completed save.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use models::raft::actor::Storage;
use models::raft::log::{Entry, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

use crate::storage::{write_atomic, Store};

/// Bytes preallocated for a WAL file; a WAL that would outgrow it is folded into a checkpoint.
pub const WAL_BYTES: u64 = 4 << 20;

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    generation: u64,
    storage: Storage,
}

#[derive(Serialize, Deserialize)]
struct Record {
    current_term: Term,
    voted_for: Option<Id>,
    /// Entries after the snapshot kept from before.
    keep: usize,
    append: Vec<Entry>,
}

/// The write-ahead-log store of one server.
pub struct RaftWal {
    dir: PathBuf,
    generation: u64,
    /// What the last save left on disk.
    prev: Option<Storage>,
    wal: Option<File>,
    /// Where the next record goes.
    pos: u64,
}

fn fnv(generation: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in generation.to_le_bytes().iter().chain(bytes) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

impl RaftWal {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RaftWal {
            dir: dir.into(),
            generation: 0,
            prev: None,
            wal: None,
            pos: 0,
        }
    }

    fn wal_path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("wal-{generation}"))
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    /// Writes a checkpoint of `s` as the next generation and starts its WAL empty.
    fn checkpoint(&mut self, s: &Storage) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let next = self.generation + 1;
        let bytes = serde_json::to_vec(&Checkpoint {
            generation: next,
            storage: s.clone(),
        })
        .map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join("checkpoint.json"), &bytes)?;
        // Reuse the old WAL file's blocks: its records carry the old generation and no longer
        // replay.
        let old = self.wal_path(self.generation);
        let new = self.wal_path(next);
        if self.wal.is_some() && old.exists() {
            fs::rename(&old, &new)?;
        } else {
            let mut f = File::create(&new)?;
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..(WAL_BYTES >> 20) {
                f.write_all(&zeros)?;
            }
            f.sync_all()?;
        }
        self.sync_dir()?;
        self.wal = Some(File::options().read(true).write(true).open(&new)?);
        self.generation = next;
        self.pos = 0;
        Ok(())
    }

    fn append(&mut self, record: &Record) -> std::io::Result<bool> {
        let payload = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        let len = 12 + payload.len() as u64;
        if self.pos + len > WAL_BYTES {
            return Ok(false);
        }
        let mut buf = Vec::with_capacity(len as usize);
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&fnv(self.generation, &payload).to_le_bytes());
        buf.extend_from_slice(&payload);
        let f = self.wal.as_mut().expect("a checkpoint opened the WAL");
        f.seek(SeekFrom::Start(self.pos))?;
        f.write_all(&buf)?;
        f.sync_data()?;
        self.pos += len;
        Ok(true)
    }
}

/// What is on disk: the checkpoint's generation, the storage after replaying its WAL, and where
/// the WAL's valid records end.
struct OnDisk {
    generation: u64,
    storage: Storage,
    end: u64,
}

fn replay(dir: &Path) -> std::io::Result<Option<OnDisk>> {
    let path = dir.join("checkpoint.json");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let c: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
    let mut s = c.storage;
    let wal_path = dir.join(format!("wal-{}", c.generation));
    let mut data = Vec::new();
    match File::open(&wal_path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)?;
        }
        // The checkpoint was written, its WAL not yet: nothing to replay.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut pos = 0usize;
    while pos + 12 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(data[pos + 4..pos + 12].try_into().expect("8 bytes"));
        let Some(payload) = data.get(pos + 12..pos + 12 + len) else {
            break;
        };
        if len == 0 || fnv(c.generation, payload) != sum {
            break;
        }
        let r: Record = serde_json::from_slice(payload).map_err(|e| corrupt(&wal_path, e))?;
        if r.keep > s.log.entries.len() {
            return Err(corrupt(&wal_path, "a record keeps entries the log lacks"));
        }
        s.current_term = r.current_term;
        s.voted_for = r.voted_for;
        s.log.entries.truncate(r.keep);
        s.log.entries.extend(r.append);
        pos += 12 + len;
    }
    Ok(Some(OnDisk {
        generation: c.generation,
        storage: s,
        end: pos as u64,
    }))
}

impl RaftWal {
    /// The storage in `dir`, read without changing anything (a live node's, say).
    pub fn read(dir: &Path) -> std::io::Result<Option<Storage>> {
        Ok(replay(dir)?.map(|d| d.storage))
    }
}

impl Store<Storage> for RaftWal {
    fn load(&mut self) -> std::io::Result<Option<Storage>> {
        let Some(d) = replay(&self.dir)? else {
            return Ok(None);
        };
        self.generation = d.generation;
        let wal_path = self.wal_path(d.generation);
        if !wal_path.exists() {
            let mut f = File::create(&wal_path)?;
            f.write_all(&vec![0u8; 1 << 20])?;
            f.sync_all()?;
            self.sync_dir()?;
        }
        // Stale generations left by a crash in the middle of a checkpoint.
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(g) = name
                .strip_prefix("wal-")
                .and_then(|g| g.parse::<u64>().ok())
            {
                if g != d.generation {
                    let _ = fs::remove_file(self.dir.join(&*name));
                }
            }
        }
        self.wal = Some(File::options().read(true).write(true).open(&wal_path)?);
        self.pos = d.end;
        self.prev = Some(d.storage.clone());
        Ok(Some(d.storage))
    }

    fn save(&mut self, s: &Storage) -> std::io::Result<()> {
        let Some(prev) = &self.prev else {
            self.checkpoint(s)?;
            self.prev = Some(s.clone());
            return Ok(());
        };
        if prev.log.snapshot != s.log.snapshot {
            self.checkpoint(s)?;
            self.prev = Some(s.clone());
            return Ok(());
        }
        let keep = prev
            .log
            .entries
            .iter()
            .zip(&s.log.entries)
            .take_while(|(a, b)| a == b)
            .count();
        if keep == prev.log.entries.len()
            && keep == s.log.entries.len()
            && (prev.current_term, prev.voted_for) == (s.current_term, s.voted_for)
        {
            return Ok(());
        }
        let record = Record {
            current_term: s.current_term,
            voted_for: s.voted_for,
            keep,
            append: s.log.entries[keep..].to_vec(),
        };
        if !self.append(&record)? {
            self.checkpoint(s)?;
        }
        let prev = self.prev.as_mut().expect("checked");
        prev.current_term = s.current_term;
        prev.voted_for = s.voted_for;
        prev.log.entries.truncate(keep);
        prev.log.entries.extend_from_slice(&s.log.entries[keep..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::raft::kv::{Command, KvOp};
    use models::raft::log::EntryKind;
    use proptest::prelude::*;

    fn entry(term: Term, n: u64) -> Entry {
        Entry {
            term,
            kind: EntryKind::Command(Command {
                client: Id::from(1usize << 40),
                seq: n,
                op: KvOp::Put("k".into(), n.to_string()),
            }),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("raft-wal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn saves_replay_after_a_restart_and_a_torn_tail_is_ignored() {
        let d = dir("replay");
        let mut w = RaftWal::new(&d);
        assert_eq!(w.load().unwrap(), None);
        let mut s = Storage::default();
        w.save(&s).unwrap();
        s.current_term = 1;
        s.voted_for = Some(Id::from(0));
        s.log
            .entries
            .extend([entry(1, 1), entry(1, 2), entry(1, 3)]);
        w.save(&s).unwrap();
        // A conflict: the last two entries are replaced (§5.3).
        s.current_term = 2;
        s.log.entries.truncate(1);
        s.log.entries.push(entry(2, 4));
        w.save(&s).unwrap();
        let mut again = RaftWal::new(&d);
        assert_eq!(again.load().unwrap().as_ref(), Some(&s));
        // A torn record after the last complete one: garbage in the preallocated space.
        let pos = again.pos;
        let mut f = File::options().write(true).open(d.join("wal-1")).unwrap();
        f.seek(SeekFrom::Start(pos)).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, b'{'])
            .unwrap();
        drop(f);
        assert_eq!(RaftWal::new(&d).load().unwrap().as_ref(), Some(&s));
        // A compaction writes a new checkpoint; the old generation's records do not replay.
        let mut w = RaftWal::new(&d);
        w.load().unwrap();
        s.log.compact(1, Default::default());
        w.save(&s).unwrap();
        s.log.entries.push(entry(2, 5));
        w.save(&s).unwrap();
        assert_eq!(RaftWal::new(&d).load().unwrap().as_ref(), Some(&s));
        assert!(d.join("wal-2").exists() && !d.join("wal-1").exists());
        fs::write(d.join("checkpoint.json"), b"{oops").unwrap();
        assert!(RaftWal::new(&d).load().is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any sequence of term changes, appends, truncations and compactions reads back as the
        /// last storage saved.
        #[test]
        fn any_history_of_saves_reads_back(steps in prop::collection::vec((0u8..4, 0usize..4), 1..25)) {
            let d = dir("prop");
            let mut w = RaftWal::new(&d);
            let mut s = Storage::default();
            let mut n = 0;
            for (kind, k) in steps {
                match kind {
                    0 => s.current_term += 1,
                    1 => for _ in 0..=k { n += 1; s.log.entries.push(entry(s.current_term, n)); },
                    2 => { let keep = s.log.entries.len().saturating_sub(k); s.log.entries.truncate(keep); }
                    _ => {
                        let upto = s.log.first_index() + k as u64;
                        if upto <= s.log.last_index() && upto >= s.log.first_index() {
                            s.log.compact(upto, Default::default());
                        }
                    }
                }
                w.save(&s).unwrap();
                let back = RaftWal::new(&d).load().unwrap();
                prop_assert_eq!(back.as_ref(), Some(&s));
            }
            fs::remove_dir_all(&d).unwrap();
        }
    }
}
