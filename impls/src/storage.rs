//! An actor's storage on disk, and the one way this crate replaces a file: [`write_atomic`].
//!
//! Guarantee: when [`save`] returns, the new storage is on disk whole (written to a temporary file,
//! fsynced, renamed over the old one, and the directory fsynced), and a crash at any point leaves
//! either the old storage or the new one, never a mix. The node saves a step's storage before it
//! sends any message of that step, so no peer ever hears of state a crash could lose (etcd's rule:
//! persist the hard state before sending).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{de::DeserializeOwned, Serialize};

/// Where a node keeps its actor's storage: [`JsonFile`] for any actor, or a store that knows the
/// storage's shape (the Raft log's write-ahead log). `save` returns once the storage is durable.
pub trait Store<S> {
    /// The storage last saved, if any.
    fn load(&mut self) -> std::io::Result<Option<S>>;
    fn save(&mut self, storage: &S) -> std::io::Result<()>;
}

/// The whole storage as one JSON file, replaced atomically ([`save`], [`load`]).
pub struct JsonFile(pub PathBuf);

impl<S: Serialize + DeserializeOwned> Store<S> for JsonFile {
    fn load(&mut self) -> std::io::Result<Option<S>> {
        load(&self.0)
    }
    fn save(&mut self, storage: &S) -> std::io::Result<()> {
        save(&self.0, storage)
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join("storage.json")
}

/// Replaces the file at `path` with `bytes`, whole and durably: writes a temporary file in the same
/// folder, fsyncs it, renames it over `path`, and fsyncs the folder. A crash at any point leaves
/// the old file or the new one, never a mix; readers never see a partly written file. Writers of
/// the same path in other threads or processes each use a temporary file of their own, and the
/// last rename wins. On an error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "a file path expected")
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)?.sync_all()
}

/// Writes `storage` atomically and durably into `dir` ([`write_atomic`]).
pub fn save<S: Serialize>(dir: &Path, storage: &S) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(storage).map_err(std::io::Error::other)?;
    write_atomic(&path(dir), &bytes)
}

/// The storage last saved in `dir`, if any. A corrupt file is an error, not a fresh start: starting
/// over would forget promises the node made (votes, acknowledged writes).
pub fn load<S: DeserializeOwned>(dir: &Path) -> std::io::Result<Option<S>> {
    match fs::read(path(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path(dir).display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_replace_atomically_and_corruption_is_an_error() {
        let dir = std::env::temp_dir().join(format!("impls-storage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(load::<u32>(&dir).unwrap(), None);
        save(&dir, &7u32).unwrap();
        save(&dir, &8u32).unwrap();
        assert_eq!(load::<u32>(&dir).unwrap(), Some(8));
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "a temporary file was left"
        );
        fs::write(dir.join("storage.json"), b"{oops").unwrap();
        assert!(load::<u32>(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_atomic_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("impls-write-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        write_atomic(&file, &[b'a'; 10_000]).unwrap();
        write_atomic(&file, b"short").unwrap();
        // Replaced, not overwritten in place: no tail of the longer old contents.
        assert_eq!(fs::read(&file).unwrap(), b"short");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
        // A failed write leaves no temporary either (and the old file as it was).
        assert!(write_atomic(&dir.join("no-such-dir").join("g"), b"x").is_err());
        assert!(
            write_atomic(&dir, b"x").is_err(),
            "a directory cannot be replaced"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
